"""What the runtime tests share: a moto server standing in for S3 and SNS (each topic read
through an SQS subscription), the model servers, the runtimes they start and their clients."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from asyncinfer.local.faults import FaultSettings
from asyncinfer.local.provision.spec import EndpointSpec
from asyncinfer.local.sagemaker.model_server import ModelServer
from asyncinfer.local.sagemaker.state import LocalRuntime
from lambdas.common.clock import utc_now
from tests.moto_server import moto_endpoint

REGION = "us-east-1"
BUCKET = "runtime-e2e"
ENDPOINT = "demo-endpoint"
SETOSA_CSV = b"5.1,3.5,1.4,0.2\n"
WAIT_SECONDS = 10.0


def aws_client(service: str, endpoint_url: str, config: Config | None = None) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=config,
    )


class Inbox:
    """The notifications published to one topic, read from its SQS subscription."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.seen: list[dict[str, Any]] = []

    def wait_for(
        self, matches: Callable[[dict[str, Any]], bool], timeout: float = WAIT_SECONDS
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for message in self.seen:
                if matches(message):
                    return message
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching notification within {timeout}s: {self.seen}")
            self._receive()

    def for_inference(self, inference_id: str, timeout: float = WAIT_SECONDS) -> dict[str, Any]:
        return self.wait_for(lambda message: message.get("inferenceId") == inference_id, timeout)

    def has(self, inference_id: str) -> bool:
        self._receive(wait_seconds=0)
        return any(message.get("inferenceId") == inference_id for message in self.seen)

    def _receive(self, wait_seconds: int = 1) -> None:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        )
        for message in response.get("Messages", []):
            envelope = json.loads(message["Body"])
            self.seen.append(json.loads(envelope["Message"]))
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@dataclass
class Aws:
    endpoint_url: str
    s3: Any
    success: Inbox
    errors: Inbox
    success_topic_arn: str
    error_topic_arn: str

    def read(self, location: str) -> tuple[bytes, str]:
        bucket, key = location.removeprefix("s3://").split("/", 1)
        response = self.s3.get_object(Bucket=bucket, Key=key)
        return response["Body"].read(), response["ContentType"]

    def exists(self, location: str) -> bool:
        bucket, prefix = location.removeprefix("s3://").split("/", 1)
        listing = self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        return bool(listing["KeyCount"] > 0)

    def put_input(self, key: str, body: bytes) -> str:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return f"s3://{BUCKET}/{key}"


@contextmanager
def local_aws() -> Iterator[Aws]:
    """The moto server with the bucket, both topics and an inbox each; stopped on exit."""
    with moto_endpoint() as endpoint_url:
        clients = {name: aws_client(name, endpoint_url) for name in ("s3", "sns", "sqs")}
        clients["s3"].create_bucket(Bucket=BUCKET)
        inboxes: dict[str, Inbox] = {}
        topics: dict[str, str] = {}
        for name in ("success", "errors"):
            topic_arn = clients["sns"].create_topic(Name=f"runtime-{name}")["TopicArn"]
            queue_url = clients["sqs"].create_queue(QueueName=f"runtime-{name}")["QueueUrl"]
            queue_arn = clients["sqs"].get_queue_attributes(
                QueueUrl=queue_url, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
            clients["sns"].subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
            inboxes[name] = Inbox(clients["sqs"], queue_url)
            topics[name] = topic_arn
        yield Aws(
            endpoint_url=endpoint_url,
            s3=clients["s3"],
            success=inboxes["success"],
            errors=inboxes["errors"],
            success_topic_arn=topics["success"],
            error_topic_arn=topics["errors"],
        )


@contextmanager
def model_server(**options: Any) -> Iterator[ModelServer]:
    """A model server on a free port (the demo model unless ``options`` say otherwise), ready."""
    server = ModelServer(port=0, **options)
    server.start()
    assert server.wait_until_ready(60)
    yield server
    server.stop()


class GatedModel:
    """A model entry point whose predictions wait until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0

    def model_fn(self, model_dir: str) -> None:
        return None

    def input_fn(self, input_data: bytes, content_type: str | None) -> bytes:
        return input_data

    def predict_fn(self, data: bytes, model: None) -> bytes:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            self.gate.wait(WAIT_SECONDS)
        finally:
            with self.lock:
                self.active -= 1
        return data

    def output_fn(self, prediction: bytes, accept: str | None) -> tuple[bytes, str]:
        return prediction, "application/octet-stream"

    def wait_active(self, count: int) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while self.active < count:
            assert time.monotonic() < deadline, f"{self.active} of {count} predictions started"
            time.sleep(0.01)


@contextmanager
def gated_model_server() -> Iterator[tuple[GatedModel, ModelServer]]:
    """A model server in front of a ``GatedModel``; on exit the gate opens and the server stops."""
    model = GatedModel()
    server = ModelServer(port=0, entry_point=model)
    server.start()
    assert server.wait_until_ready(10)
    yield model, server
    model.gate.set()
    server.stop()


RuntimeFactory = Callable[..., LocalRuntime]


def endpoint_spec(aws: Aws, model_url: str, **overrides: Any) -> EndpointSpec:
    endpoint = EndpointSpec(
        name=ENDPOINT,
        output_path=f"s3://{BUCKET}/outputs",
        failure_path=f"s3://{BUCKET}/failures/",
        success_topic_arn=aws.success_topic_arn,
        error_topic_arn=aws.error_topic_arn,
        include_response_body=False,
        max_concurrent_invocations_per_instance=2,
        instance_count=1,
        model_url=model_url,
    )
    return replace(endpoint, **overrides)


@contextmanager
def runtime_factory(aws: Aws, demo_model: ModelServer) -> Iterator[RuntimeFactory]:
    """Starts runtimes on the endpoint (the demo model's unless told otherwise); stops them all
    on exit."""
    started: list[LocalRuntime] = []

    def make(
        model_url: str | None = None,
        faults: FaultSettings | None = None,
        clock: Callable[[], datetime] = utc_now,
        **overrides: Any,
    ) -> LocalRuntime:
        endpoint = endpoint_spec(aws, model_url or demo_model.url, **overrides)
        runtime = LocalRuntime(endpoint, aws.endpoint_url, REGION, faults=faults, clock=clock)
        runtime.start()
        started.append(runtime)
        return runtime

    yield make
    for runtime in started:
        runtime.stop()


def sagemaker(runtime: LocalRuntime, validate: bool = True) -> Any:
    """A plain boto3 client, without retries so that each call is one request."""
    return aws_client(
        "sagemaker-runtime",
        runtime.url,
        Config(retries={"total_max_attempts": 1}, parameter_validation=validate),
    )


def admin(runtime: LocalRuntime, path: str, body: dict[str, Any] | None = None) -> Any:
    """GETs an admin resource, or POSTs ``body`` (JSON) to it."""
    request = urllib.request.Request(
        f"{runtime.admin_url}/{path}",
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=WAIT_SECONDS) as response:
        return json.loads(response.read())


def error_of(call: Callable[[], Any]) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )
