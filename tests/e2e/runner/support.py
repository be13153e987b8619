"""What the event runner tests share: a moto server, the spy handlers' records (tests/e2e/
handlers/spy.py), the queues and messages they work on, and a runner that must leave no
process behind."""

from __future__ import annotations

import json
import multiprocessing
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from asyncinfer.local.aws.iam import admin_session
from asyncinfer.local.lambda_runner.runner import EventRunner, SourceSpec
from asyncinfer.local.provision.spec import FunctionSpec, QueueSourceSpec
from tests.e2e.children import child_pids

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

REGION = "us-east-1"
ACCOUNT = "123456789012"
SQS_HANDLER = "tests.e2e.handlers.spy.sqs_handler"
WAIT_SECONDS = 30.0


def session() -> boto3.session.Session:
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


def redrive_policy(sqs: SQSClient, dead_letter_queue_url: str, max_receive_count: int) -> str:
    """A queue's RedrivePolicy attribute, as the template sets it."""
    target = queue_arn(sqs, dead_letter_queue_url)
    return json.dumps({"deadLetterTargetArn": target, "maxReceiveCount": max_receive_count})


def messages_left(sqs: SQSClient, queue_url: str) -> int:
    """Visible plus in-flight messages."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


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
