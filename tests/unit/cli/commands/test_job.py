"""`asyncinfer jobs` and `asyncinfer job status|wait|results|submit` against moto."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from asyncinfer.cli.app import app
from lambdas.common.contract import StackOutput
from lambdas.jobs.clients import DynamoJobLedger
from lambdas.jobs.model import JobHeader, JobStatus
from tests.unit.cli.conftest import (
    STACK_NAME,
    Invoke,
    Pipeline,
    create_pipeline,
    create_stack,
    one_line_error,
)
from tests.unit.jobs.test_clients import create_jobs_table

JOBS_TABLE = "jobs"


@pytest.fixture
def pipeline(moto_aws: None, isolated: Path) -> Pipeline:
    resources = create_pipeline()
    create_jobs_table(resources.dynamodb, JOBS_TABLE)
    resources.outputs[StackOutput.JOBS_TABLE_NAME] = JOBS_TABLE
    resources.outputs[StackOutput.JOBS_PREFIX] = "jobs/"
    create_stack(resources.outputs)
    return resources


@pytest.fixture
def cli(pipeline: Pipeline) -> Invoke:
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, ["--stack", STACK_NAME, *args])

    return invoke


def a_job(pipeline: Pipeline, name: str, status: JobStatus, created: str, **values: Any) -> None:
    ledger = DynamoJobLedger(pipeline.dynamodb, JOBS_TABLE)
    ledger.create(
        JobHeader(
            job_name=name,
            status=JobStatus.STARTING,
            manifest_location=f"s3://input-bucket/jobs/{name}.manifest.json",
            manifest_version="v1",
            created_at=created,
            deadline_at=2_000_000_000,
        )
    )
    ledger.add_members(name, {0: 2, 1: 1}, [])
    if status is not JobStatus.STARTING:
        ledger.transition(name, JobStatus.STARTING, status, values)


def results_file(pipeline: Pipeline, name: str, lines: list[dict[str, Any]]) -> str:
    key = f"jobs/{name}/results.jsonl"
    body = "".join(json.dumps(line) + "\n" for line in lines)
    pipeline.s3.put_object(Bucket="output-bucket", Key=key, Body=body.encode())
    return f"s3://output-bucket/{key}"


LINES = [
    {"key": "b/1.json", "status": "COMPLETED", "result": '{"y": 1}', "failure_stage": None},
    {"key": "b/2.json", "status": "FAILED", "failure_stage": "job", "failure_reason": "no such"},
]


def test_jobs_are_listed_newest_first(cli: Invoke, pipeline: Pipeline) -> None:
    a_job(pipeline, "older", JobStatus.OPEN, "2026-01-01T00:00:00.000Z", total=3)
    a_job(pipeline, "newer", JobStatus.OPEN, "2026-01-02T00:00:00.000Z", total=1)
    result = cli("jobs", "--json")
    assert result.exit_code == 0, result.output
    assert [job["job_name"] for job in json.loads(result.stdout)] == ["newer", "older"]


def test_status_shows_counts_and_progress(cli: Invoke, pipeline: Pipeline) -> None:
    a_job(pipeline, "open", JobStatus.OPEN, "2026-01-01T00:00:00.000Z", total=4)
    result = cli("job", "status", "open", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["status"], document["total"], document["awaited"]) == ("OPEN", 4, 3)
    assert document["counted"] == 0


def test_an_unknown_job_is_a_service_error(cli: Invoke) -> None:
    result = cli("job", "status", "nope")
    assert result.exit_code == 254
    assert "job nope not found" in one_line_error(result)


def test_results_as_jsonl_and_csv(cli: Invoke, pipeline: Pipeline, tmp_path: Path) -> None:
    location = results_file(pipeline, "done", LINES)
    values = {"total": 2, "completed": 1, "failed": 1, "results_location": location}
    a_job(pipeline, "done", JobStatus.OPEN, "2026-01-01T00:00:00.000Z")
    DynamoJobLedger(pipeline.dynamodb, JOBS_TABLE).transition(
        "done", JobStatus.OPEN, JobStatus.COMPLETED, values
    )
    result = cli("job", "results", "done")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["key"] for line in result.stdout.splitlines()] == [
        "b/1.json",
        "b/2.json",
    ]
    target = tmp_path / "done.csv"
    result = cli("job", "results", "done", "--format", "csv", "-o", str(target))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [(row["key"], row["status"], row["failure_reason"]) for row in rows] == [
        ("b/1.json", "COMPLETED", ""),
        ("b/2.json", "FAILED", "no such"),
    ]
    wait = cli("job", "wait", "done", "--timeout", "5")
    assert wait.exit_code == 0, wait.output
    assert location in wait.stdout


def test_results_of_an_open_job_are_not_there_yet(cli: Invoke, pipeline: Pipeline) -> None:
    a_job(pipeline, "open", JobStatus.OPEN, "2026-01-01T00:00:00.000Z")
    result = cli("job", "results", "open")
    assert result.exit_code == 1
    assert "no results file yet" in one_line_error(result)
    waited = cli("job", "wait", "open", "--timeout", "1", "--interval", "0.2")
    assert waited.exit_code == 2


def test_waiting_for_a_failed_job_exits_1_with_its_reason(cli: Invoke, pipeline: Pipeline) -> None:
    a_job(pipeline, "bad", JobStatus.FAILED, "2026-01-01T00:00:00.000Z", reason="not JSON")
    result = cli("job", "wait", "bad")
    assert result.exit_code == 1
    assert "not JSON" in one_line_error(result)


def test_submit_uploads_the_files_then_their_manifest(
    cli: Invoke, pipeline: Pipeline, tmp_path: Path
) -> None:
    folder = tmp_path / "flowers"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.json").write_text("{}")
    (folder / "sub" / "b.json").write_text("{}")
    single = tmp_path / "c.csv"
    single.write_text("1,2")
    result = cli("job", "submit", "batch-1", str(folder), str(single))
    assert result.exit_code == 0, result.output
    manifest = json.loads(
        pipeline.s3.get_object(Bucket="input-bucket", Key="jobs/batch-1.manifest.json")[
            "Body"
        ].read()
    )
    assert manifest == [
        {"prefix": "s3://input-bucket/batch-1/"},
        "a.json",
        "sub/b.json",
        "c.csv",
    ]
    for key in ("batch-1/a.json", "batch-1/sub/b.json", "batch-1/c.csv"):
        pipeline.s3.head_object(Bucket="input-bucket", Key=key)


def test_submit_refuses_a_bad_name(cli: Invoke, tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    result = cli("job", "submit", "no/slashes", str(tmp_path / "a.json"))
    assert result.exit_code == 252
