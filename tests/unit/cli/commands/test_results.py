"""`results`: statuses merged newest first, windows, prefixes, pages, and the three formats."""

from __future__ import annotations

import csv
import io
import json
from itertools import pairwise
from typing import Any

import pytest

from asyncinfer.cli.render import RECORD_FIELDS
from lambdas.common.records import FailureStage, Status, inference_id_for
from tests.unit.cli.conftest import Invoke, Pipeline, at, one_line_error, stored

# (id, status, key, updated offset in seconds)
RECORDS = [
    ("1" * 64, Status.COMPLETED, "in/a.json", 10),
    ("2" * 64, Status.FAILED, "in/b.json", 20),
    ("3" * 64, Status.SUBMITTED, "other/c.json", 30),
    ("4" * 64, Status.PENDING, "in/d.json", 40),
    ("5" * 64, Status.COMPLETED, "other/e.json", 50),
    ("6" * 64, Status.COMPLETED, "in/f.json", 60),
    ("7" * 64, Status.FAILED, "in/g.json", 70),
]
NEWEST_FIRST = [inference_id for inference_id, *_ in reversed(RECORDS)]


@pytest.fixture
def populated(pipeline: Pipeline) -> Pipeline:
    for inference_id, status, key, updated in RECORDS:
        stored(
            pipeline.store,
            inference_id,
            status,
            key=key,
            submitted=updated - 5,
            completed=updated if status in (Status.COMPLETED, Status.FAILED) else None,
            updated=updated,
            latency_ms=900,
            failure_reason="bad input" if status == Status.FAILED else None,
            failure_stage=FailureStage.INFERENCE if status == Status.FAILED else None,
        )
    return pipeline


def json_ids(result: Any) -> list[str]:
    assert result.exit_code == 0, result.output
    return [record["inference_id"] for record in json.loads(result.stdout)]


def next_token(result: Any) -> str | None:
    for line in result.stderr.splitlines():
        if line.startswith("next page: --next-token "):
            return line.removeprefix("next page: --next-token ")
    return None


def test_every_status_merged_newest_first(cli: Invoke, populated: Pipeline) -> None:
    result = cli("results", "--json")

    assert json_ids(result) == NEWEST_FIRST
    assert next_token(result) is None


def test_status_filter(cli: Invoke, populated: Pipeline) -> None:
    assert json_ids(cli("results", "--status", "failed", "--json")) == ["7" * 64, "2" * 64]
    assert json_ids(cli("results", "--status", "COMPLETED,SUBMITTED", "--json")) == [
        "6" * 64,
        "5" * 64,
        "3" * 64,
        "1" * 64,
    ]


def test_time_window_and_prefix(cli: Invoke, populated: Pipeline) -> None:
    window = cli("results", "--since", at(20), "--until", at(50), "--json")
    prefixed = cli("results", "--prefix", "other/", "--json")

    # layout 1 by updated_at; layout 2 by the time the record was filed under its class: the
    # outcome's for finished records, the claim's (5 s before the update here) for open ones
    assert json_ids(window) == ["5" * 64, "4" * 64, "3" * 64, "2" * 64]
    assert json_ids(prefixed) == ["5" * 64, "3" * 64]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ((), NEWEST_FIRST),
        (("--prefix", "in/"), ["7" * 64, "6" * 64, "4" * 64, "2" * 64, "1" * 64]),
        (("--status", "COMPLETED", "--since", at(15)), ["6" * 64, "5" * 64]),
    ],
)
def test_pages_join_up_to_the_whole_listing(
    cli: Invoke, populated: Pipeline, options: tuple[str, ...], expected: list[str]
) -> None:
    seen: list[str] = []
    token: str | None = None
    for _ in range(len(RECORDS) + 1):
        paging = ("--next-token", token) if token else ()
        result = cli("results", "--limit", "2", *options, *paging, "--json")
        page = json_ids(result)
        assert len(page) <= 2
        seen.extend(page)
        token = next_token(result)
        if token is None:
            break
    assert seen == expected


def test_csv_parses_with_a_header(cli: Invoke, populated: Pipeline) -> None:
    result = cli("results", "--csv", "--status", "FAILED")

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert tuple(csv.DictReader(io.StringIO(result.stdout)).fieldnames or ()) == RECORD_FIELDS
    assert [row["inference_id"] for row in rows] == ["7" * 64, "2" * 64]
    assert rows[0]["failure_reason"] == "bad input"
    assert rows[0]["input_location"] == "s3://input-bucket/in/g.json"


def test_table_shows_the_records(cli: Invoke, populated: Pipeline) -> None:
    result = cli("results", "--limit", "3")

    assert result.exit_code == 0, result.output
    for inference_id in NEWEST_FIRST[:3]:
        assert inference_id in result.stdout
    assert "bad input" in result.stdout
    assert next_token(result) is not None


def test_empty_listing_is_an_empty_json_array(cli: Invoke, pipeline: Pipeline) -> None:
    result = cli("results", "--json")

    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--status", "DONE"), "invalid --status 'DONE'"),
        (("--json", "--csv"), "choose one of --json and --csv"),
        (("--since", "yesterday-ish"), "invalid --since 'yesterday-ish'"),
        (("--next-token", "garbage!"), "invalid --next-token"),
        (("--limit", "0"), "Invalid value for '--limit'"),
    ],
)
def test_invalid_arguments_are_one_line(
    offline_cli: Invoke, arguments: tuple[str, ...], message: str
) -> None:
    result = offline_cli("results", *arguments)

    assert result.exit_code == 252
    assert message in one_line_error(result)


def test_a_token_only_continues_its_own_listing(cli: Invoke, populated: Pipeline) -> None:
    token = next_token(cli("results", "--limit", "1"))
    assert token is not None

    result = cli("results", "--limit", "1", "--status", "FAILED", "--next-token", token)

    assert result.exit_code == 252
    assert "--next-token belongs to a listing with other" in one_line_error(result)


@pytest.mark.parametrize("width", [80, 120, 160, 220])
def test_the_table_fits_the_terminal_and_never_cuts_an_id(width: int) -> None:
    from rich.console import Console

    from asyncinfer.cli.render import records_table
    from lambdas.common.records import InferenceRecord

    inference_id = inference_id_for("input-bucket", "a.json", "v1", None)
    record = InferenceRecord(
        inference_id=inference_id,
        status=Status.FAILED,
        input_key="a/very/long/key/" * 6 + "input.json",
        updated_at=at(0),
        failure_reason="x " * 200,
        failure_stage=FailureStage.INFERENCE,
    )
    console = Console(width=width, record=True)

    console.print(records_table([record], width=width))

    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= width
    whole = any(inference_id in line for line in lines)
    folded = any(
        inference_id[:32] in line and inference_id[32:] in below for line, below in pairwise(lines)
    )
    assert whole or folded
