"""The pipeline's resources in moto, a CloudFormation stack that lists them as outputs, and a
runner for the CLI against that stack."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from asyncinfer.cli.access.clients import new_session
from asyncinfer.cli.app import app
from lambdas.common.clock import format_timestamp
from lambdas.common.contract import (
    INPUT_KEYS_INDEX,
    INPUT_LOCATION_INDEX,
    STATUS_INDEX,
    STATUS_SHARD_INDEX,
    StackOutput,
)
from lambdas.common.records import FailureStage, InferenceRecord, Status
from lambdas.common.store import RecordStore
from tests.conftest import REGION, create_results_table

STACK_NAME = "AsyncInference"
NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Pipeline:
    """Names and URLs of the resources, and clients to inspect them."""

    outputs: dict[str, str]
    s3: Any
    sqs: Any
    sns: Any
    dynamodb: Any

    @property
    def bucket(self) -> str:
        return self.outputs[StackOutput.INPUT_BUCKET_NAME]

    @property
    def output_bucket(self) -> str:
        return self.outputs[StackOutput.OUTPUT_BUCKET_NAME]

    @property
    def store(self) -> RecordStore:
        return RecordStore(self.dynamodb, self.outputs[StackOutput.RESULTS_TABLE_NAME])


LAYOUT_1 = (INPUT_LOCATION_INDEX, STATUS_INDEX)
LAYOUT_2 = (INPUT_KEYS_INDEX, STATUS_SHARD_INDEX)


def create_pipeline(
    endpoint_url: str | None = None,
    *,
    versioned: bool = True,
    indexes: tuple[str, str] = LAYOUT_1,
) -> Pipeline:
    """Everything the CLI reads or writes, created as the stack defines it (names aside)."""

    session = new_session(region=REGION)  # shares the parsed service models with the CLI

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint_url)

    s3, sqs, sns, dynamodb = client("s3"), client("sqs"), client("sns"), client("dynamodb")
    s3.create_bucket(Bucket="input-bucket")
    if versioned:
        s3.put_bucket_versioning(
            Bucket="input-bucket", VersioningConfiguration={"Status": "Enabled"}
        )
    s3.create_bucket(Bucket="output-bucket")
    create_results_table(dynamodb, "results")
    queues = {
        name: sqs.create_queue(QueueName=name)["QueueUrl"]
        for name in ("ingest", "ingest-dlq", "success-dlq", "error-dlq", "results-failures")
    }
    topics = {name: sns.create_topic(Name=name)["TopicArn"] for name in ("success", "error")}
    outputs = {
        StackOutput.INPUT_BUCKET_NAME: "input-bucket",
        StackOutput.OUTPUT_BUCKET_NAME: "output-bucket",
        StackOutput.RESULTS_TABLE_NAME: "results",
        StackOutput.INPUT_LOCATION_INDEX_NAME: indexes[0],
        StackOutput.STATUS_INDEX_NAME: indexes[1],
        StackOutput.INGEST_QUEUE_URL: queues["ingest"],
        StackOutput.INGEST_DEAD_LETTER_QUEUE_URL: queues["ingest-dlq"],
        StackOutput.SUCCESS_TOPIC_ARN: topics["success"],
        StackOutput.ERROR_TOPIC_ARN: topics["error"],
        StackOutput.SUCCESS_DEAD_LETTER_QUEUE_URL: queues["success-dlq"],
        StackOutput.ERROR_DEAD_LETTER_QUEUE_URL: queues["error-dlq"],
        StackOutput.RESULTS_FAILURE_QUEUE_URL: queues["results-failures"],
        StackOutput.RESULTS_FUNCTION_NAME: "results-function",
        StackOutput.ENDPOINT_NAME: "demo-endpoint",
        StackOutput.OUTPUT_PATH: "s3://output-bucket/outputs",
        StackOutput.FAILURE_PATH: "s3://output-bucket/failures",
    }
    return Pipeline(outputs, s3, sqs, sns, dynamodb)


def create_stack(
    outputs: dict[str, str], name: str = STACK_NAME, endpoint_url: str | None = None
) -> None:
    template = {
        "Resources": {"Handle": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    new_session(region=REGION).client("cloudformation", endpoint_url=endpoint_url).create_stack(
        StackName=name, TemplateBody=json.dumps(template)
    )


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No state file of a real local mode, no stack from the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASYNCINFER_LOCAL_DIR", str(tmp_path / ".local"))
    monkeypatch.delenv("ASYNCINFER_STACK", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("COLUMNS", "240")
    return tmp_path


@pytest.fixture(params=[LAYOUT_1, LAYOUT_2], ids=["layout1", "layout2"])
def pipeline(moto_aws: None, isolated: Path, request: pytest.FixtureRequest) -> Pipeline:
    """Every CLI test runs against both layouts' indexes (the outputs name the ones to read)."""
    resources = create_pipeline(indexes=request.param)
    create_stack(resources.outputs)
    return resources


Invoke = Callable[..., Any]


@pytest.fixture
def cli(pipeline: Pipeline) -> Invoke:
    """Run the CLI against the stack: ``cli("status", id)``."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Any:
        return runner.invoke(app, ["--stack", STACK_NAME, *args], input=input)

    return invoke


@pytest.fixture
def offline_cli(aws_credentials: None, isolated: Path) -> Invoke:
    """For errors found before any AWS call: a stray call fails fast (nothing listens)."""
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(
            app, ["--stack", STACK_NAME, "--endpoint-url", "http://127.0.0.1:9", *args]
        )

    return invoke


def one_line_error(result: Any) -> str:
    """The error contract: one line on stderr, no traceback, nothing else."""
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in lines if line.startswith("asyncinfer: error: ")]
    assert len(errors) == 1, result.stderr
    assert lines[-1] == errors[0]
    return errors[0].removeprefix("asyncinfer: error: ")


def at(seconds: float) -> str:
    return format_timestamp(NOW + timedelta(seconds=seconds))


def stored(
    store: RecordStore,
    inference_id: str,
    status: Status,
    *,
    key: str = "inputs/a.json",
    bucket: str = "input-bucket",
    submitted: float = 0.0,
    completed: float | None = None,
    latency_ms: int | None = None,
    updated: float | None = None,
    output_location: str | None = None,
    failure_location: str | None = None,
    failure_reason: str | None = None,
    failure_stage: FailureStage | None = None,
    result: str | None = None,
) -> InferenceRecord:
    """Write one record as the pipeline would, through the store's conditional writes."""
    last = updated if updated is not None else (completed if completed is not None else submitted)
    record = InferenceRecord(
        inference_id=inference_id,
        status=Status.PENDING,
        input_location=f"s3://{bucket}/{key}",
        input_bucket=bucket,
        input_key=key,
        input_version="v1",
        content_type="application/json",
        endpoint_name="demo-endpoint",
        created_at=at(submitted),
        updated_at=at(submitted if status != Status.PENDING else last),
    )
    token = f"token-{inference_id}"
    now = int(NOW.timestamp())
    assert store.claim(record, token=token, lease_until=now + 900, now=now).owned
    if status == Status.PENDING:
        return record
    submitted_record = record.model_copy(
        update={"status": Status.SUBMITTED, "submitted_at": at(submitted), "updated_at": at(last)}
    )
    if status == Status.FAILED and failure_stage == FailureStage.INGEST:
        assert store.mark_failed(
            record, token=token, reason=failure_reason or "rejected", failed_at=at(last)
        )
        return record
    assert store.mark_submitted(submitted_record, token=token)
    if status == Status.SUBMITTED:
        return submitted_record
    outcome = submitted_record.model_copy(
        update={
            "status": status,
            "completed_at": at(completed if completed is not None else last),
            "received_at": at(submitted),
            "latency_ms": latency_ms,
            "output_location": output_location,
            "failure_location": failure_location,
            "failure_reason": failure_reason,
            "failure_stage": failure_stage,
            "result": result,
            "updated_at": at(last),
        }
    )
    written = store.record_outcome(outcome)
    assert written is not None
    return written


@pytest.fixture
def many_files(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    (folder / "nested" / "deeper").mkdir(parents=True)
    (folder / "a.json").write_text('{"x": 1}')
    (folder / "b.csv").write_text("1,2\n")
    (folder / "nested" / "c.json").write_text('{"x": 3}')
    (folder / "nested" / "deeper" / "red flower.json").write_text('{"x": 4}')
    (folder / "notes.txt").write_text("not an input")
    return folder
