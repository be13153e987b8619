"""`status` (one record, or every inference of an input) and `fetch` (output or failure)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from lambdas.common.records import FailureStage, Status
from tests.unit.cli.conftest import Invoke, Pipeline, one_line_error, stored

FIRST = "a" * 64
SECOND = "b" * 64
MISSING = "c" * 64


def test_status_by_id_human_view(cli: Invoke, pipeline: Pipeline) -> None:
    stored(
        pipeline.store,
        FIRST,
        Status.COMPLETED,
        completed=2.5,
        latency_ms=800,
        output_location="s3://output-bucket/outputs/1.out",
        result='{"label": "setosa"}',
    )

    result = cli("status", FIRST)

    assert result.exit_code == 0, result.output
    assert FIRST in result.stdout
    assert "COMPLETED" in result.stdout
    assert "s3://output-bucket/outputs/1.out" in result.stdout
    assert '{"label": "setosa"}' in result.stdout
    assert re.search(r"end_to_end +2\.50 s", result.stdout)


def test_status_by_id_json(cli: Invoke, pipeline: Pipeline) -> None:
    stored(
        pipeline.store,
        FIRST,
        Status.FAILED,
        completed=1,
        failure_reason="bad input",
        failure_stage=FailureStage.INFERENCE,
    )

    result = cli("status", FIRST, "--json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["inference_id"] == FIRST
    assert document["status"] == "FAILED"
    assert document["failure_reason"] == "bad input"
    assert document["failure_stage"] == "inference"


def test_status_of_an_input_lists_every_inference_newest_first(
    cli: Invoke, pipeline: Pipeline
) -> None:
    stored(pipeline.store, FIRST, Status.COMPLETED, key="in/x.json", submitted=0, completed=1)
    stored(pipeline.store, SECOND, Status.SUBMITTED, key="in/x.json", submitted=10)
    stored(pipeline.store, MISSING, Status.COMPLETED, key="in/other.json", completed=3)

    by_uri = cli("status", "s3://input-bucket/in/x.json", "--json")
    by_key = cli("status", "in/x.json", "--json")
    human = cli("status", "in/x.json")

    assert by_uri.exit_code == 0, by_uri.output
    assert [record["inference_id"] for record in json.loads(by_uri.stdout)] == [SECOND, FIRST]
    assert json.loads(by_key.stdout) == json.loads(by_uri.stdout)
    assert human.exit_code == 0
    assert human.stdout.index(SECOND) < human.stdout.index(FIRST)


def test_status_not_found_is_one_line(cli: Invoke, pipeline: Pipeline) -> None:
    by_id = cli("status", MISSING)
    by_key = cli("status", "never/uploaded.json")

    assert by_id.exit_code == 254
    assert one_line_error(by_id) == f"inference {MISSING} not found"
    assert by_key.exit_code == 254
    assert one_line_error(by_key) == "no inference found for s3://input-bucket/never/uploaded.json"


def test_status_when_the_table_is_missing(cli: Invoke, pipeline: Pipeline) -> None:
    pipeline.dynamodb.delete_table(TableName="results")

    result = cli("status", FIRST)

    assert result.exit_code == 254
    assert one_line_error(result) == "table results not found (ResourceNotFoundException)"


def test_fetch_output_to_a_file_and_to_stdout(
    cli: Invoke, pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.s3.put_object(Bucket="output-bucket", Key="outputs/1.out", Body=b'{"label": 2}')
    stored(
        pipeline.store,
        FIRST,
        Status.COMPLETED,
        completed=1,
        output_location="s3://output-bucket/outputs/1.out",
    )
    destination = tmp_path / "result.json"

    to_file = cli("fetch", FIRST, "--output", str(destination))
    to_stdout = cli("fetch", FIRST)

    assert to_file.exit_code == 0, to_file.output
    assert destination.read_bytes() == b'{"label": 2}'
    assert to_stdout.exit_code == 0
    assert to_stdout.stdout_bytes == b'{"label": 2}'
    assert [path.name for path in tmp_path.iterdir()] == ["result.json"]


def test_fetch_failure_object_of_a_failed_inference(cli: Invoke, pipeline: Pipeline) -> None:
    pipeline.s3.put_object(Bucket="output-bucket", Key="failures/1.err", Body=b"model error")
    stored(
        pipeline.store,
        FIRST,
        Status.FAILED,
        completed=1,
        failure_reason="model error",
        failure_stage=FailureStage.INFERENCE,
        failure_location="s3://output-bucket/failures/1.err",
    )

    result = cli("fetch", FIRST)

    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == b"model error"


def test_fetch_of_an_ingest_failure_says_why_there_is_nothing(
    cli: Invoke, pipeline: Pipeline
) -> None:
    stored(
        pipeline.store,
        FIRST,
        Status.FAILED,
        failure_reason="input larger than 1 GB",
        failure_stage=FailureStage.INGEST,
    )

    result = cli("fetch", FIRST)

    assert result.exit_code == 1
    assert one_line_error(result) == (
        f"inference {FIRST} FAILED at ingest with no failure object: input larger than 1 GB"
    )


def test_fetch_before_the_result_and_of_an_unknown_id(cli: Invoke, pipeline: Pipeline) -> None:
    stored(pipeline.store, FIRST, Status.SUBMITTED)

    in_flight = cli("fetch", FIRST)
    unknown = cli("fetch", MISSING)

    assert in_flight.exit_code == 1
    assert one_line_error(in_flight) == f"inference {FIRST} is SUBMITTED: no output yet"
    assert unknown.exit_code == 254
    assert one_line_error(unknown) == f"inference {MISSING} not found"


def test_fetch_when_the_output_object_is_gone(
    cli: Invoke, pipeline: Pipeline, tmp_path: Path
) -> None:
    stored(
        pipeline.store,
        FIRST,
        Status.COMPLETED,
        completed=1,
        output_location="s3://output-bucket/outputs/gone.out",
    )

    result = cli("fetch", FIRST, "-o", str(tmp_path / "out.json"))

    assert result.exit_code == 254
    assert one_line_error(result) == (
        "object s3://output-bucket/outputs/gone.out not found (NoSuchKey)"
    )
    assert list(tmp_path.iterdir()) == []


def test_user_text_is_shown_literally_not_as_markup(cli: Invoke, pipeline: Pipeline) -> None:
    stored(
        pipeline.store,
        FIRST,
        Status.FAILED,
        key="in/[bold]x.json",
        completed=1,
        failure_reason="features must be [4] numbers",
        failure_stage=FailureStage.INFERENCE,
    )

    detail = cli("status", FIRST)
    listing = cli("results")

    assert "features must be [4] numbers" in detail.stdout
    assert "s3://input-bucket/in/[bold]x.json" in detail.stdout
    assert "[inference] features must be [4] numbers" in listing.stdout


def test_fetch_falls_back_to_the_inline_result(cli: Invoke, pipeline: Pipeline) -> None:
    stored(pipeline.store, FIRST, Status.COMPLETED, completed=1, result='{"label": 0}')
    pipeline.dynamodb.update_item(
        TableName="results",
        Key={"inference_id": {"S": FIRST}},
        UpdateExpression="SET result_encoding = :encoding",
        ExpressionAttributeValues={":encoding": {"S": "utf-8"}},
    )

    result = cli("fetch", FIRST)

    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == b'{"label": 0}'
