"""The local event runner's SQS event source mappings against a real moto server, with real
worker processes: the events, contexts and environment the handlers get, their logs as Lambda
filters them, batch sizes and batching windows, and the concurrency cap."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel

from asyncinfer.local.lambda_runner.runner import SourceSpec
from tests.e2e.runner.support import (
    ACCOUNT,
    REGION,
    Spy,
    create_queue,
    function,
    messages_left,
    queue_arn,
    queue_source,
    running,
    send,
    wait_for,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.e2e


def in_flight(sqs: SQSClient, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_sqs_events_contexts_and_environment_are_lambdas(
    endpoint: str, sqs: SQSClient, spy: Spy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_TEST_CANARY", "the runner's own environment")
    queue_url = create_queue(sqs)
    fn = function(spy, name="ingest-fn")
    send(
        sqs,
        queue_url,
        {"id": "with-attributes", "action": "ok"},
        {
            "kind": {"DataType": "String", "StringValue": "png"},
            "size": {"DataType": "Number", "StringValue": "42"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
        },
    )
    send(sqs, queue_url, {"id": "plain", "action": "ok"})

    with running([queue_source(queue_url, fn, window=1)], endpoint, tmp_path) as runner:
        wait_for(lambda: len(spy.sqs_deliveries()) == 2, "both messages to be handled")
        wait_for(lambda: messages_left(sqs, queue_url) == 0, "the queue to be emptied")
        send(sqs, queue_url, {"id": "later", "action": "ok"})
        wait_for(lambda: messages_left(sqs, queue_url) == 0, "the later message to be handled")
    stats = runner.stats()[queue_url]

    invocations = spy.invocations()
    records = [record for invocation in invocations for record in invocation["event"]["Records"]]
    for invocation in invocations:
        SqsModel.model_validate(invocation["event"])
    by_id = {json.loads(record["body"])["id"]: record for record in records}
    assert set(by_id) == {"with-attributes", "plain", "later"}
    record = by_id["with-attributes"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queue_arn(sqs, queue_url)
    assert record["awsRegion"] == REGION
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(
        record["attributes"]
    )
    assert record["messageAttributes"] == {
        "kind": {
            "stringValue": "png",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        },
        "size": {
            "stringValue": "42",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Number",
        },
        "blob": {
            "binaryValue": base64.b64encode(b"\x00\xff").decode(),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        },
    }
    assert by_id["plain"]["messageAttributes"] == {}

    context = invocations[0]["context"]
    assert context["function_name"] == "ingest-fn"
    assert context["function_version"] == "$LATEST"
    assert context["memory_limit_in_mb"] == "256"
    assert (
        context["invoked_function_arn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ingest-fn"
    )
    assert context["log_group_name"] == "/aws/lambda/ingest-fn"
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", context["log_stream_name"])
    assert uuid.UUID(context["aws_request_id"])
    assert 0 < context["remaining_ms"] <= 30_000

    environment = invocations[0]["environment"]
    assert environment["AWS_ENDPOINT_URL"] == endpoint
    assert environment["AWS_ACCESS_KEY_ID"] == "local"
    assert environment["SPY_DIR"] == str(spy.directory)
    assert environment["AWS_LAMBDA_FUNCTION_NAME"] == "ingest-fn"
    assert environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert environment["AWS_REGION"] == REGION
    assert environment["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert "AWS_LAMBDA_LOG_LEVEL" not in environment  # text format: Lambda filters nothing
    assert "RUNNER_TEST_CANARY" not in environment
    trace_ids = {invocation["environment"]["_X_AMZN_TRACE_ID"] for invocation in invocations}
    assert len(trace_ids) == len(invocations)
    assert all(
        re.match(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};", t) for t in trace_ids
    )

    # One warm worker served every invocation: imported once, reused.
    assert len(spy.entries("init")) == 1
    assert {invocation["pid"] for invocation in invocations} == {spy.entries("init")[0]["pid"]}
    log = (tmp_path / "logs" / "ingest-fn.log").read_text()
    assert "handled ['later']" in log
    assert "START RequestId: " in log
    assert "REPORT RequestId: " in log
    assert stats.succeeded == 3
    assert stats.failed == 0
    assert stats.messages_delivered == 3


def test_json_logs_reach_the_log_file_as_lambda_filters_them(
    endpoint: str, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    """Application level WARN, system level WARN: what CloudWatch Logs would receive."""
    queue_url = create_queue(sqs)
    fn = dataclasses.replace(
        function(spy, name="filtered-fn"),
        log_format="JSON",
        application_log_level="WARN",
        system_log_level="WARN",
    )
    send(sqs, queue_url, {"id": "logs", "action": "log"})

    with running([queue_source(queue_url, fn)], endpoint, tmp_path):
        wait_for(lambda: messages_left(sqs, queue_url) == 0, "the message to be handled")

    log = (tmp_path / "logs" / "filtered-fn.log").read_text()
    kept = [line for line in log.splitlines() if line.strip()]
    assert any('"spy ERROR"' in line for line in kept)
    assert any('"spy root warning"' in line and '"level": "WARN"' in line for line in kept)
    # below WARN: DEBUG and INFO lines, and every line Lambda files as INFO (a metrics
    # document, plain text, a line whose timestamp is not RFC 3339)
    for dropped in ("spy DEBUG", "spy INFO", "spy undated", "spy_metric", "spy plain text"):
        assert dropped not in log
    assert "spy root debug" not in log
    assert "handled" not in log
    # system level WARN: no START, END or REPORT line
    assert "RequestId" not in log
    environment = spy.invocations()[0]["environment"]
    assert environment["AWS_LAMBDA_LOG_FORMAT"] == "JSON"
    assert environment["AWS_LAMBDA_LOG_LEVEL"] == "WARN"


def test_batch_size_and_batching_window_are_honoured(
    endpoint: str, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    sized_queue = create_queue(sqs)
    windowed_queue = create_queue(sqs)
    for index in range(7):
        send(sqs, sized_queue, {"id": f"sized-{index}", "action": "ok"})
    sources: list[SourceSpec] = [
        # One poller, so the batches are cut from the 7 waiting messages: 3, 3, then 1.
        queue_source(sized_queue, function(spy, "sized"), batch_size=3, window=1, concurrency=1),
        queue_source(
            windowed_queue, function(spy, "windowed"), batch_size=5, window=20, concurrency=1
        ),
    ]
    with running(sources, endpoint, tmp_path):
        send(sqs, windowed_queue, {"id": "first", "action": "ok"})
        # The poller holds the first message while its window is open...
        wait_for(lambda: in_flight(sqs, windowed_queue) == 1, "the first message to be received")
        # ...so the next four join its batch, which is then full and goes at once.
        for index in range(4):
            send(sqs, windowed_queue, {"id": f"next-{index}", "action": "ok"})
        wait_for(lambda: messages_left(sqs, windowed_queue) == 0, "the windowed batch")
        wait_for(lambda: messages_left(sqs, sized_queue) == 0, "the sized batches")

    sized_batches = [len(i["event"]["Records"]) for i in spy.invocations("sized")]
    assert sized_batches == [3, 3, 1]
    windowed_batches = [len(i["event"]["Records"]) for i in spy.invocations("windowed")]
    assert windowed_batches == [5]


def test_concurrency_scales_out_but_never_exceeds_the_cap(
    endpoint: str, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    queue_url = create_queue(sqs)
    for index in range(8):
        send(sqs, queue_url, {"id": f"m{index}", "action": "hold", "hold": 0.4})
    source = queue_source(queue_url, function(spy), batch_size=1, concurrency=2)
    with running([source], endpoint, tmp_path) as runner:
        wait_for(lambda: runner.stats()[queue_url].succeeded == 8, "all eight messages")

    assert spy.max_concurrency() == 2
