"""The local event runner against a real moto server, with real worker processes.

The handlers (tests/e2e/handlers/spy.py) record every cold start and invocation into a spy
file and behave as each message tells them, so these tests see exactly what Lambda's event
source mappings and SNS delivery would hand the functions, and what becomes of each message.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import multiprocessing
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import SnsModel, SqsModel
from moto.server import ThreadedMotoServer

from asyncinfer.local.aws.iam import admin_session
from asyncinfer.local.lambda_runner.event_shapes import failed_item_ids
from asyncinfer.local.lambda_runner.runner import EventRunner, SourceSpec
from asyncinfer.local.provision.spec import FunctionSpec, QueueSourceSpec, TopicSourceSpec
from tests.e2e.children import child_pids

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
ACCOUNT = "123456789012"
SQS_HANDLER = "tests.e2e.handlers.spy.sqs_handler"
SNS_HANDLER = "tests.e2e.handlers.spy.sns_handler"
WAIT_SECONDS = 30.0


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def sqs(endpoint: str) -> SQSClient:
    client: SQSClient = _session().client("sqs", endpoint_url=endpoint)
    return client


@pytest.fixture(scope="module")
def sns(endpoint: str) -> SNSClient:
    client: SNSClient = _session().client("sns", endpoint_url=endpoint)
    return client


def _session() -> boto3.session.Session:
    return admin_session(REGION)


class Spy:
    """Reads what the spy handlers recorded."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def entries(self, kind: str) -> list[dict[str, Any]]:
        path = self.directory / "spy.jsonl"
        if not path.exists():
            return []
        lines = path.read_text(encoding="utf-8").splitlines()
        return [entry for entry in map(json.loads, lines) if entry["kind"] == kind]

    def invocations(self, function_name: str | None = None) -> list[dict[str, Any]]:
        return [
            entry
            for entry in self.entries("invocation")
            if function_name in (None, entry["context"]["function_name"])
        ]

    def sqs_deliveries(self, function_name: str | None = None) -> dict[str, list[int]]:
        """Message id in the body → the receive counts it was delivered with."""
        deliveries: dict[str, list[int]] = {}
        for invocation in self.invocations(function_name):
            for record in invocation["event"]["Records"]:
                receive_count = int(record["attributes"]["ApproximateReceiveCount"])
                deliveries.setdefault(json.loads(record["body"])["id"], []).append(receive_count)
        return deliveries

    def sns_attempts(self) -> dict[str, int]:
        attempts: dict[str, int] = {}
        for invocation in self.invocations():
            instruction = json.loads(invocation["event"]["Records"][0]["Sns"]["Message"])
            attempts[instruction["id"]] = attempts.get(instruction["id"], 0) + 1
        return attempts

    def max_concurrency(self) -> int:
        state: dict[str, int] = json.loads((self.directory / "concurrency.json").read_text())
        return state["max"]


@pytest.fixture
def spy(tmp_path: Path) -> Spy:
    return Spy(tmp_path / "spy")


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def function(
    spy: Spy, name: str = "fn", handler: str = SQS_HANDLER, timeout_seconds: int = 30
) -> FunctionSpec:
    return FunctionSpec(
        name=name,
        handler=handler,
        environment={"SPY_DIR": str(spy.directory), "POWERTOOLS_SERVICE_NAME": name},
        timeout_seconds=timeout_seconds,
        memory_mb=256,
    )


def create_queue(
    sqs: SQSClient, visibility_timeout: int = 30, redrive_policy: str | None = None
) -> str:
    attributes: dict[QueueAttributeNameType, str] = {"VisibilityTimeout": str(visibility_timeout)}
    if redrive_policy is not None:
        attributes["RedrivePolicy"] = redrive_policy
    name = f"q-{uuid.uuid4().hex[:12]}"
    return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]


def queue_arn(sqs: SQSClient, queue_url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


def messages_left(sqs: SQSClient, queue_url: str) -> int:
    """Visible plus in-flight messages."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def in_flight(sqs: SQSClient, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


def drain(sqs: SQSClient, queue_url: str) -> list[dict[str, Any]]:
    """Every message now visible on a queue (a DLQ, say), read without deleting."""
    received = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=1,
        VisibilityTimeout=30,
        MessageAttributeNames=["All"],
    )
    return [dict(message) for message in received.get("Messages", [])]


def send(
    sqs: SQSClient,
    queue_url: str,
    instruction: dict[str, Any],
    attributes: dict[str, MessageAttributeValueTypeDef] | None = None,
) -> None:
    sqs.send_message(
        QueueUrl=queue_url, MessageBody=json.dumps(instruction), MessageAttributes=attributes or {}
    )


def queue_source(
    queue_url: str,
    fn: FunctionSpec,
    *,
    batch_size: int = 10,
    window: int = 0,
    concurrency: int = 2,
    visibility_timeout: int = 30,
    dead_letter_queue_url: str | None = None,
    max_receive_count: int = 5,
    report_batch_item_failures: bool = True,
) -> QueueSourceSpec:
    return QueueSourceSpec(
        queue_url=queue_url,
        dead_letter_queue_url=dead_letter_queue_url,
        max_receive_count=max_receive_count,
        visibility_timeout_seconds=visibility_timeout,
        batch_size=batch_size,
        batching_window_seconds=window,
        maximum_concurrency=concurrency,
        report_batch_item_failures=report_batch_item_failures,
        function=fn,
    )


@contextmanager
def running(
    sources: list[SourceSpec], endpoint: str, tmp_path: Path, **options: Any
) -> Iterator[EventRunner]:
    """A started runner; on exit it is stopped and must leave no process behind."""
    children_before = child_pids()
    runner = EventRunner(
        sources,
        aws_endpoint_url=endpoint,
        region=REGION,
        base_environment={
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": "http://127.0.0.1:9",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": REGION,
        },
        log_dir=tmp_path / "logs",
        **options,
    )
    runner.start()
    try:
        yield runner
    finally:
        runner.stop(timeout=5)
    assert not [
        child for child in multiprocessing.active_children() if child.name.startswith("lambda:")
    ]
    assert child_pids() <= children_before


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}]}, {"a", "b"}),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, {"a", "b"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"a", "b"}),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, {"a", "b"}),
        ({"batchItemFailures": [{"messageId": "a"}]}, {"a", "b"}),
        ({"batchItemFailures": "a"}, {"a", "b"}),
        ("ok", {"a", "b"}),
    ],
)
def test_partial_batch_responses_are_read_as_lambda_reads_them(
    response: object, failed: set[str]
) -> None:
    assert failed_item_ids(response, ["a", "b"]) == failed


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


def test_partial_batch_failure_deletes_only_successes_and_dead_letters_the_rest(
    endpoint: str, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    dead_letter_queue = create_queue(sqs)
    # The redrive policy as the template sets it: the runner moves the message itself, once.
    redrive = json.dumps(
        {"deadLetterTargetArn": queue_arn(sqs, dead_letter_queue), "maxReceiveCount": 2}
    )
    queue_url = create_queue(sqs, visibility_timeout=1, redrive_policy=redrive)
    send(sqs, queue_url, {"id": "ok-1", "action": "ok"})
    send(sqs, queue_url, {"id": "ok-2", "action": "ok"})
    send(sqs, queue_url, {"id": "fails-once", "action": "fail", "until": 2})
    send(
        sqs,
        queue_url,
        {"id": "always-fails", "action": "fail"},
        {"origin": {"DataType": "String", "StringValue": "test"}},
    )
    source = queue_source(
        queue_url,
        function(spy),
        window=0,
        concurrency=1,
        visibility_timeout=1,
        dead_letter_queue_url=dead_letter_queue,
        max_receive_count=2,
    )
    with running([source], endpoint, tmp_path) as runner:
        wait_for(lambda: messages_left(sqs, queue_url) == 0, "the source queue to empty")
    stats = runner.stats()[queue_url]

    assert spy.sqs_deliveries() == {
        "ok-1": [1],
        "ok-2": [1],
        "fails-once": [1, 2],
        "always-fails": [1, 2],
    }
    dead_letters = drain(sqs, dead_letter_queue)
    assert [json.loads(m["Body"])["id"] for m in dead_letters] == ["always-fails"]
    assert dead_letters[0]["MessageAttributes"]["origin"]["StringValue"] == "test"
    assert (stats.succeeded, stats.failed, stats.retried, stats.moved_to_dlq) == (3, 3, 2, 1)


def test_a_message_received_too_often_is_dead_lettered_without_an_invocation(
    endpoint: str, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    dead_letter_queue = create_queue(sqs)
    queue_url = create_queue(sqs)  # no redrive policy in moto: the runner does the move
    send(sqs, queue_url, {"id": "worn-out", "action": "ok"})
    for _ in range(3):  # received three times, never deleted (a consumer that went away)
        sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=0)
    source = queue_source(
        queue_url, function(spy), dead_letter_queue_url=dead_letter_queue, max_receive_count=2
    )
    with running([source], endpoint, tmp_path) as runner:
        wait_for(lambda: messages_left(sqs, dead_letter_queue) == 1, "the dead-letter move")
    stats = runner.stats()[queue_url]

    assert messages_left(sqs, queue_url) == 0
    assert spy.invocations() == []
    assert (stats.batches, stats.moved_to_dlq) == (0, 1)


@pytest.mark.parametrize("action", ["raise", "bogus", "crash"])
def test_a_failed_invocation_redelivers_the_whole_batch(
    action: str, endpoint: str, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    queue_url = create_queue(sqs, visibility_timeout=1)
    send(sqs, queue_url, {"id": "innocent", "action": "ok"})
    send(sqs, queue_url, {"id": "culprit", "action": action, "until": 2})
    source = queue_source(
        queue_url, function(spy), batch_size=2, window=1, concurrency=1, visibility_timeout=1
    )
    with running([source], endpoint, tmp_path) as runner:
        wait_for(lambda: messages_left(sqs, queue_url) == 0, "both messages to succeed")
    stats = runner.stats()[queue_url]

    assert spy.sqs_deliveries() == {"innocent": [1, 2], "culprit": [1, 2]}
    assert (stats.failed, stats.succeeded) == (2, 2)
    crashed = action == "crash"
    assert stats.worker_restarts == int(crashed)
    # A crashed worker is replaced by a new one, which imports the handler again.
    assert len(spy.entries("init")) == 1 + int(crashed)
    if crashed:
        log = (tmp_path / "logs" / "fn.log").read_text()
        assert "Runtime exited with error: exit status 3" in log


def test_a_handler_past_its_timeout_is_killed_and_its_batch_redelivered(
    endpoint: str, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    queue_url = create_queue(sqs, visibility_timeout=2)
    send(sqs, queue_url, {"id": "slow", "action": "hang", "until": 2})
    source = queue_source(
        queue_url, function(spy, timeout_seconds=2), concurrency=1, visibility_timeout=2
    )
    with running([source], endpoint, tmp_path) as runner:
        wait_for(lambda: messages_left(sqs, queue_url) == 0, "the retry to succeed")
    stats = runner.stats()[queue_url]

    hung, retried = spy.invocations()
    assert not Path(f"/proc/{hung['pid']}").exists()
    assert retried["pid"] != hung["pid"]
    assert spy.sqs_deliveries() == {"slow": [1, 2]}
    assert (stats.failed, stats.succeeded, stats.worker_restarts) == (1, 1, 1)
    assert "Task timed out after 2.00 seconds" in (tmp_path / "logs" / "fn.log").read_text()


def test_kill_worker_fails_the_batch_as_a_crash_would(
    endpoint: str, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    queue_url = create_queue(sqs, visibility_timeout=1)
    source = queue_source(queue_url, function(spy), concurrency=1, visibility_timeout=1)
    with running([source], endpoint, tmp_path) as runner:
        assert not runner.kill_worker("fn")  # nothing in flight yet
        send(sqs, queue_url, {"id": "victim", "action": "hold", "hold": 60, "until": 2})
        wait_for(lambda: len(spy.invocations()) == 1, "the handler to start")
        assert runner.kill_worker("fn")
        wait_for(lambda: messages_left(sqs, queue_url) == 0, "the redelivery to succeed")
    stats = runner.stats()[queue_url]

    assert spy.sqs_deliveries() == {"victim": [1, 2]}
    assert (stats.failed, stats.succeeded, stats.worker_restarts) == (1, 1, 1)
    assert (
        "Runtime exited with error: signal: SIGKILL" in (tmp_path / "logs" / "fn.log").read_text()
    )


def test_a_handler_that_cannot_be_loaded_fails_its_batch_like_an_init_error(
    endpoint: str, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    dead_letter_queue = create_queue(sqs)
    queue_url = create_queue(sqs)
    send(sqs, queue_url, {"id": "orphan", "action": "ok"})
    fn = function(spy, handler="tests.e2e.handlers.spy.no_such_handler")
    source = queue_source(
        queue_url, fn, dead_letter_queue_url=dead_letter_queue, max_receive_count=1
    )
    with running([source], endpoint, tmp_path):
        wait_for(lambda: messages_left(sqs, dead_letter_queue) == 1, "the dead-letter move")

    assert spy.invocations() == []
    log = (tmp_path / "logs" / "fn.log").read_text()
    assert "[ERROR] Runtime.HandlerNotFound: Handler 'no_such_handler' missing" in log


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


def create_topic_with_delivery_queue(sns: SNSClient, sqs: SQSClient) -> tuple[str, str, str]:
    """A topic and an SQS queue subscribed to it (raw delivery off), as the lead wires them."""
    topic_arn = sns.create_topic(Name=f"t-{uuid.uuid4().hex[:12]}")["TopicArn"]
    delivery_queue = create_queue(sqs)
    subscription_arn = sns.subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn(sqs, delivery_queue)
    )["SubscriptionArn"]
    return topic_arn, delivery_queue, subscription_arn


def topic_source(
    topic_arn: str, delivery_queue: str, fn: FunctionSpec, dead_letter_queue: str | None
) -> TopicSourceSpec:
    return TopicSourceSpec(
        topic_arn=topic_arn,
        delivery_queue_url=delivery_queue,
        dead_letter_queue_url=dead_letter_queue,
        max_attempts=3,
        function=fn,
    )


def test_sns_envelopes_become_sns_lambda_events(
    endpoint: str, sns: SNSClient, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    topic_arn, delivery_queue, subscription_arn = create_topic_with_delivery_queue(sns, sqs)
    with_extras = sns.publish(
        TopicArn=topic_arn,
        Message=json.dumps({"id": "with-extras", "action": "ok"}),
        Subject="result",
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "success"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x01"},
        },
    )["MessageId"]
    plain = sns.publish(TopicArn=topic_arn, Message=json.dumps({"id": "plain", "action": "ok"}))[
        "MessageId"
    ]
    fn = function(spy, name="results-fn", handler=SNS_HANDLER)
    with running([topic_source(topic_arn, delivery_queue, fn, None)], endpoint, tmp_path) as runner:
        wait_for(lambda: runner.stats()[topic_arn].succeeded == 2, "both notifications")
        wait_for(lambda: messages_left(sqs, delivery_queue) == 0, "the delivery queue to empty")

    events = {
        json.loads(i["event"]["Records"][0]["Sns"]["Message"])["id"]: i["event"]
        for i in spy.invocations()
    }
    assert set(events) == {"with-extras", "plain"}
    for event in events.values():
        SnsModel.model_validate(event)
        assert len(event["Records"]) == 1
        record = event["Records"][0]
        assert record["EventSource"] == "aws:sns"
        assert record["EventVersion"] == "1.0"
        assert record["EventSubscriptionArn"] == subscription_arn
        notification = record["Sns"]
        assert notification["Type"] == "Notification"
        assert notification["TopicArn"] == topic_arn
        assert notification["SigningCertUrl"].startswith("https://sns.")
        assert notification["UnsubscribeUrl"].startswith("https://sns.")
        assert "Action=Unsubscribe" in notification["UnsubscribeUrl"]
        assert notification["Signature"]
        assert notification["SignatureVersion"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", notification["Timestamp"])
        assert "SigningCertURL" not in notification
        assert "UnsubscribeURL" not in notification
    extras = events["with-extras"]["Records"][0]["Sns"]
    assert extras["MessageId"] == with_extras
    assert extras["Subject"] == "result"
    assert extras["MessageAttributes"] == {
        "kind": {"Type": "String", "Value": "success"},
        "blob": {"Type": "Binary", "Value": base64.b64encode(b"\x01").decode()},
    }
    plain_notification = events["plain"]["Records"][0]["Sns"]
    assert plain_notification["MessageId"] == plain
    assert plain_notification["Subject"] is None
    assert plain_notification["MessageAttributes"] == {}


@pytest.mark.parametrize(
    "failure_destination", [False, True], ids=["subscription-dlq", "on-failure-destination"]
)
def test_sns_failures_are_retried_then_dead_lettered(
    failure_destination: bool,
    *,
    endpoint: str,
    sns: SNSClient,
    sqs: SQSClient,
    spy: Spy,
    tmp_path: Path,
) -> None:
    topic_arn, delivery_queue, _ = create_topic_with_delivery_queue(sns, sqs)
    dead_letter_queue = create_queue(sqs)
    doomed = sns.publish(
        TopicArn=topic_arn, Message=json.dumps({"id": "doomed", "action": "raise"})
    )["MessageId"]
    sns.publish(
        TopicArn=topic_arn, Message=json.dumps({"id": "flaky", "action": "raise", "until": 2})
    )
    sqs.send_message(QueueUrl=delivery_queue, MessageBody="not an SNS envelope")
    fn = function(spy, name="results-fn", handler=SNS_HANDLER)
    source = topic_source(topic_arn, delivery_queue, fn, dead_letter_queue)
    with running(
        [source],
        endpoint,
        tmp_path,
        async_retry_backoff_seconds=0.05,
        failure_destinations=[dead_letter_queue] if failure_destination else [],
    ) as runner:
        wait_for(lambda: messages_left(sqs, delivery_queue) == 0, "every notification settled")
    stats = runner.stats()[topic_arn]

    assert spy.sns_attempts() == {"doomed": 3, "flaky": 2}
    assert (stats.succeeded, stats.retried, stats.moved_to_dlq) == (1, 3, 2)
    assert stats.failed == 3 + 1 + 1  # doomed's attempts, flaky's first, the non-envelope
    dead_letters = {m["Body"]: m for m in drain(sqs, dead_letter_queue)}
    assert len(dead_letters) == 2
    not_an_envelope = dead_letters.pop("not an SNS envelope")
    assert "not JSON" in not_an_envelope["MessageAttributes"]["ErrorMessage"]["StringValue"]
    [(body, dead_letter)] = dead_letters.items()
    if not failure_destination:  # a subscription DLQ: the envelope as the delivery queue held it
        envelope = json.loads(body)
        assert (envelope["MessageId"], envelope["TopicArn"]) == (doomed, topic_arn)
        attributes = dead_letter["MessageAttributes"]
        assert attributes["ErrorMessage"]["StringValue"] == "RuntimeError: told to raise"
        assert attributes["ErrorCode"]["StringValue"] == "200"
        assert uuid.UUID(attributes["RequestID"]["StringValue"])
        return
    record = json.loads(body)  # what Lambda sends an on-failure destination
    last_attempt = [
        i for i in spy.invocations() if i["event"]["Records"][0]["Sns"]["MessageId"] == doomed
    ][-1]
    assert record["version"] == "1.0"
    assert record["requestContext"] == {
        "requestId": last_attempt["context"]["aws_request_id"],
        "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:results-fn:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == last_attempt["event"]
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    response = record["responsePayload"]
    assert (response["errorType"], response["errorMessage"]) == ("RuntimeError", "told to raise")
    assert any("spy.py" in line for line in response["stackTrace"])
    assert "MessageAttributes" not in dead_letter


def test_start_refuses_a_delivery_queue_not_subscribed_to_its_topic(
    endpoint: str, sns: SNSClient, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    topic_arn = sns.create_topic(Name=f"t-{uuid.uuid4().hex[:12]}")["TopicArn"]
    source = topic_source(topic_arn, create_queue(sqs), function(spy, handler=SNS_HANDLER), None)
    with pytest.raises(ValueError, match="is not subscribed to"):  # noqa: SIM117
        with running([source], endpoint, tmp_path):
            pass


def test_stop_abandons_in_flight_work_and_leaves_no_process_behind(
    endpoint: str, sns: SNSClient, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    queue_url = create_queue(sqs, visibility_timeout=2)
    send(sqs, queue_url, {"id": "queued", "action": "hold", "hold": 60})
    topic_arn, delivery_queue, _ = create_topic_with_delivery_queue(sns, sqs)
    sns.publish(
        TopicArn=topic_arn, Message=json.dumps({"id": "notified", "action": "hold", "hold": 60})
    )
    sources: list[SourceSpec] = [
        queue_source(queue_url, function(spy, "queue-fn"), visibility_timeout=2),
        topic_source(topic_arn, delivery_queue, function(spy, "topic-fn", SNS_HANDLER), None),
    ]
    children_before = child_pids()
    with running(sources, endpoint, tmp_path) as runner:
        wait_for(lambda: len(spy.invocations()) == 2, "both handlers to be busy")
        worker_pids = {invocation["pid"] for invocation in spy.invocations()}
        runner.stop(timeout=1)
    stats = runner.stats()

    assert child_pids() <= children_before
    assert not any(Path(f"/proc/{pid}").exists() for pid in worker_pids)
    assert stats[queue_url].abandoned == 1
    assert stats[topic_arn].abandoned == 1
    # The notification is given back at once; the SQS batch reappears after its visibility
    # timeout, as on AWS.
    assert len(drain(sqs, delivery_queue)) == 1
    wait_for(lambda: len(drain(sqs, queue_url)) == 1, "the abandoned batch to reappear", 10)
