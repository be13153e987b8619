"""The local SageMaker async runtime on loopback, driven by plain boto3 and the AWS CLI.

A moto server stands in for S3 and SNS; each topic has an SQS subscription so the tests read
the notifications the runtime publishes. The demo model server answers for real; tests that
need a slow or blocking model use a gated one.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from asyncinfer.local.faults import FaultSettings
from asyncinfer.local.provision.spec import EndpointSpec
from asyncinfer.local.sagemaker.model_server import ModelServer, ServingStack
from asyncinfer.local.sagemaker.state import LocalRuntime
from lambdas.common.clock import utc_now

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
BUCKET = "runtime-e2e"
ENDPOINT = "demo-endpoint"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
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


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint_url = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
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
    server.stop()


@pytest.fixture(scope="module")
def demo_model() -> Iterator[ModelServer]:
    server = ModelServer(port=0)
    server.start()
    assert server.wait_until_ready(60)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def toolkit_model() -> Iterator[ModelServer]:
    """The demo model behind the inference toolkit's serving stack, which answers a model's
    client error with its own status: the path where SageMaker reports a 4xx from the model."""
    server = ModelServer(port=0, serving_stack=ServingStack.INFERENCE_TOOLKIT)
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


@pytest.fixture
def gated_model() -> Iterator[tuple[GatedModel, ModelServer]]:
    model = GatedModel()
    server = ModelServer(port=0, entry_point=model)
    server.start()
    assert server.wait_until_ready(10)
    yield model, server
    model.gate.set()
    server.stop()


class FakeClock:
    """The runtime's clock, which a test can move forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


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


@pytest.fixture
def make_runtime(aws: Aws, demo_model: ModelServer) -> Iterator[RuntimeFactory]:
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


# the happy path


def test_boto3_invoke_completes_with_output_and_notification(
    aws: Aws, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime()
    location = aws.put_input("inputs/red flower.csv", SETOSA_CSV)

    response = sagemaker(runtime).invoke_endpoint_async(
        EndpointName=ENDPOINT,
        InputLocation=location,
        ContentType="text/csv",
        Accept="application/json",
        CustomAttributes="trace=abc",
        InferenceId="happy-1",
        RequestTTLSeconds=600,
        InvocationTimeoutSeconds=30,
    )

    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert response["InferenceId"] == "happy-1"
    # Without Filename the name is based on the inference id (the model's documentation).
    assert response["OutputLocation"] == f"s3://{BUCKET}/outputs/happy-1.out"
    assert response["FailureLocation"] == f"s3://{BUCKET}/failures/happy-1-error.out"

    notification = aws.success.for_inference("happy-1")
    assert set(notification) == {
        "awsRegion",
        "eventTime",
        "receivedTime",
        "invocationStatus",
        "requestParameters",
        "responseParameters",
        "inferenceId",
        "eventVersion",
        "eventSource",
        "eventName",
    }
    assert notification["awsRegion"] == REGION
    assert notification["invocationStatus"] == "Completed"
    assert notification["requestParameters"] == {
        "accept": "application/json",
        "contentType": "text/csv",
        "customAttributes": "trace=abc",
        "endpointName": ENDPOINT,
        "inputLocation": location,
    }
    assert notification["responseParameters"] == {
        "contentType": "application/json",
        "outputLocation": response["OutputLocation"],
    }
    assert (notification["eventVersion"], notification["eventSource"]) == ("1.0", "aws:sagemaker")
    assert notification["eventName"] == "InferenceResult"
    assert TIMESTAMP.fullmatch(notification["eventTime"])
    assert TIMESTAMP.fullmatch(notification["receivedTime"])
    assert notification["receivedTime"] <= notification["eventTime"]

    body, content_type = aws.read(response["OutputLocation"])
    assert content_type == "application/json"
    assert json.loads(body)["predictions"][0]["label"] == "setosa"
    assert not aws.exists(response["FailureLocation"])
    stats = runtime.stats()
    assert (stats["accepted"], stats["completed"], stats["failed"]) == (1, 1, 0)


def test_generates_an_inference_id_and_includes_the_response_when_configured(
    aws: Aws, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime(include_response_body=True)
    location = aws.put_input("inputs/flower.json", b'{"instances": [[6.9, 3.2, 5.7, 2.3]]}')

    response = sagemaker(runtime).invoke_endpoint_async(
        EndpointName=ENDPOINT, InputLocation=location, ContentType="application/json"
    )

    assert re.fullmatch(UUID, response["InferenceId"])
    notification = aws.success.for_inference(response["InferenceId"])
    assert "accept" not in notification["requestParameters"]
    assert "customAttributes" not in notification["requestParameters"]
    content = base64.b64decode(notification["responseBody"]["content"])
    assert notification["responseBody"]["encoding"] == "BASE64"
    assert content == aws.read(response["OutputLocation"])[0]
    assert json.loads(content)["predictions"][0]["label"] == "virginica"


# failures


def test_model_rejection_writes_the_failure_object_and_notifies(
    aws: Aws, make_runtime: RuntimeFactory, toolkit_model: ModelServer
) -> None:
    runtime = make_runtime(model_url=toolkit_model.url)
    location = aws.put_input("inputs/short-row.csv", b"5.1,3.5\n")

    response = sagemaker(runtime).invoke_endpoint_async(
        EndpointName=ENDPOINT, InputLocation=location, ContentType="text/csv", InferenceId="bad-1"
    )

    notification = aws.errors.for_inference("bad-1")
    assert notification["invocationStatus"] == "Failed"
    assert "Received client error (400) from model" in notification["failureReason"]
    assert "expected 4 values" in notification["failureReason"]
    assert notification["responseParameters"] == {"failureLocation": response["FailureLocation"]}
    assert notification["requestParameters"]["inputLocation"] == location
    assert notification["eventName"] == "InferenceResult"
    body, content_type = aws.read(response["FailureLocation"])
    # the failure object is the model's error response as the toolkit answers it: text, with
    # the model's message first (asyncinfer/local/sagemaker/model_server.py error_response)
    assert content_type.startswith("text/plain")
    assert "expected 4 values" in body.decode()
    assert not aws.exists(response["OutputLocation"])
    assert not aws.success.has("bad-1")
    assert runtime.stats()["failed"] == 1


def test_a_missing_input_object_fails_without_a_failure_object(
    aws: Aws, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime()

    response = sagemaker(runtime).invoke_endpoint_async(
        EndpointName=ENDPOINT,
        InputLocation=f"s3://{BUCKET}/inputs/never-uploaded.csv",
        ContentType="text/csv",
        InferenceId="missing-1",
    )

    notification = aws.errors.for_inference("missing-1")
    assert "NoSuchKey" in notification["failureReason"]
    assert "responseParameters" not in notification
    assert not aws.exists(response["FailureLocation"])


def test_unreachable_model_fails_with_a_reason(aws: Aws, make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime(model_url="http://127.0.0.1:9")
    location = aws.put_input("inputs/unreachable.csv", SETOSA_CSV)

    response = sagemaker(runtime).invoke_endpoint_async(
        EndpointName=ENDPOINT, InputLocation=location, ContentType="text/csv", InferenceId="gone-1"
    )

    notification = aws.errors.for_inference("gone-1")
    assert "Could not reach the model" in notification["failureReason"]
    assert notification["responseParameters"] == {"failureLocation": response["FailureLocation"]}


def test_an_unwritable_output_path_fails_the_request(
    aws: Aws, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime(output_path="s3://no-such-bucket/outputs")
    location = aws.put_input("inputs/unwritable.csv", SETOSA_CSV)

    sagemaker(runtime).invoke_endpoint_async(
        EndpointName=ENDPOINT, InputLocation=location, ContentType="text/csv", InferenceId="lost-1"
    )

    notification = aws.errors.for_inference("lost-1")
    assert (
        "Could not write the output to s3://no-such-bucket/outputs/"
        in (notification["failureReason"])
    )
    assert "NoSuchBucket" in notification["failureReason"]


def test_rejects_an_endpoint_spec_without_s3_paths(aws: Aws, demo_model: ModelServer) -> None:
    endpoint = endpoint_spec(aws, demo_model.url, output_path="/tmp/outputs")

    with pytest.raises(ValueError, match="not an s3:// URI: /tmp/outputs"):
        LocalRuntime(endpoint, aws.endpoint_url, REGION)


def test_request_ttl_expiry_fails_the_request(
    aws: Aws, make_runtime: RuntimeFactory, gated_model: tuple[GatedModel, ModelServer]
) -> None:
    model, model_server = gated_model
    clock = FakeClock()
    runtime = make_runtime(
        model_url=model_server.url, max_concurrent_invocations_per_instance=1, clock=clock
    )
    client = sagemaker(runtime)
    location = aws.put_input("inputs/ttl.csv", SETOSA_CSV)
    client.invoke_endpoint_async(
        EndpointName=ENDPOINT, InputLocation=location, InferenceId="ttl-blocker"
    )
    model.wait_active(1)

    client.invoke_endpoint_async(
        EndpointName=ENDPOINT, InputLocation=location, InferenceId="ttl-1", RequestTTLSeconds=60
    )
    clock.offset = timedelta(seconds=61)
    model.gate.set()

    notification = aws.errors.for_inference("ttl-1")
    assert notification["failureReason"].startswith("Request has expired")
    assert "RequestTTLSeconds (60)" in notification["failureReason"]
    assert "responseParameters" not in notification
    aws.success.for_inference("ttl-blocker")
    assert runtime.wait_idle(WAIT_SECONDS)
    stats = runtime.stats()
    assert (stats["expired"], stats["completed"], stats["failed"]) == (1, 1, 0)


def test_invocation_timeout_fails_the_request(
    aws: Aws, make_runtime: RuntimeFactory, gated_model: tuple[GatedModel, ModelServer]
) -> None:
    _, model_server = gated_model
    runtime = make_runtime(model_url=model_server.url)
    location = aws.put_input("inputs/slow.csv", SETOSA_CSV)

    response = sagemaker(runtime).invoke_endpoint_async(
        EndpointName=ENDPOINT,
        InputLocation=location,
        InferenceId="slow-1",
        InvocationTimeoutSeconds=1,
    )

    notification = aws.errors.for_inference("slow-1")
    assert (
        "did not answer within the invocation timeout (1 seconds)"
        in (notification["failureReason"])
    )
    assert notification["responseParameters"] == {"failureLocation": response["FailureLocation"]}
    body, content_type = aws.read(response["FailureLocation"])
    assert content_type == "text/plain"
    assert body.decode() == notification["failureReason"]


def test_concurrency_is_capped_at_max_invocations_times_instances(
    aws: Aws, make_runtime: RuntimeFactory, gated_model: tuple[GatedModel, ModelServer]
) -> None:
    model, model_server = gated_model
    runtime = make_runtime(
        model_url=model_server.url, max_concurrent_invocations_per_instance=1, instance_count=2
    )
    client = sagemaker(runtime)
    location = aws.put_input("inputs/many.csv", SETOSA_CSV)

    for number in range(5):
        client.invoke_endpoint_async(
            EndpointName=ENDPOINT, InputLocation=location, InferenceId=f"cap-{number}"
        )
    model.wait_active(2)

    stats = runtime.stats()
    assert (stats["workers"], stats["in_flight"], stats["queue_depth"]) == (2, 2, 3)
    model.gate.set()
    assert runtime.wait_idle(WAIT_SECONDS)
    stats = runtime.stats()
    assert (stats["completed"], stats["max_in_flight"], model.peak) == (5, 2, 2)
    assert (stats["in_flight"], stats["queue_depth"]) == (0, 0)


# validation: every rejection is a ClientError with the modelled code


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"EndpointName": "nope"}, "Endpoint nope of account 123456789012 not found."),
        ({"InputLocation": None}, "InputLocation is required"),
        ({"InputLocation": "bucket/key.csv"}, "at 'inputLocation' failed to satisfy constraint"),
        ({"InputLocation": f"s3://{BUCKET}"}, "does not name an object"),
        ({"InputLocation": f"s3://{BUCKET}/" + "k" * 1010}, "less than or equal to 1024"),
        ({"CustomAttributes": "a" * 1025}, "at 'customAttributes'"),
        ({"CustomAttributes": "caf\u00e9"}, "visible US-ASCII"),
        ({"InferenceId": ""}, "at 'inferenceId'"),
        ({"InferenceId": "i" * 65}, "less than or equal to 64"),
        ({"InferenceId": "del\x7f"}, "at 'inferenceId'"),
        ({"RequestTTLSeconds": 59}, "greater than or equal to 60"),
        ({"RequestTTLSeconds": 21601}, "less than or equal to 21600"),
        ({"InvocationTimeoutSeconds": 0}, "greater than or equal to 1"),
        ({"InvocationTimeoutSeconds": 3601}, "less than or equal to 3600"),
        ({"Body": b"1,2,3,4"}, "mutually exclusive"),
    ],
)
def test_invalid_requests_are_validation_errors(
    aws: Aws, make_runtime: RuntimeFactory, overrides: dict[str, Any], message: str
) -> None:
    runtime = make_runtime()
    arguments = {"EndpointName": ENDPOINT, "InputLocation": f"s3://{BUCKET}/inputs/x.csv"}
    arguments.update(overrides)
    arguments = {name: value for name, value in arguments.items() if value is not None}

    code, status, text = error_of(
        lambda: sagemaker(runtime, validate=False).invoke_endpoint_async(**arguments)
    )

    assert (code, status) == ("ValidationError", 400)
    assert message in text
    stats = runtime.stats()
    assert (stats["accepted"], stats["rejected"]) == (0, {"ValidationError": 1})


# the AWS CLI


def aws_cli(runtime: LocalRuntime, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("aws")),
            "sagemaker-runtime",
            "invoke-endpoint-async",
            "--endpoint-url",
            runtime.url,
            "--region",
            REGION,
            "--output",
            "json",
            *arguments,
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


def test_the_aws_cli_invokes_the_endpoint(aws: Aws, make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime()
    location = aws.put_input("inputs/cli input.csv", SETOSA_CSV)

    result = aws_cli(
        runtime,
        "--endpoint-name",
        ENDPOINT,
        "--input-location",
        location,
        "--content-type",
        "text/csv",
        "--inference-id",
        "cli-1",
    )

    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["InferenceId"] == "cli-1"
    assert printed["OutputLocation"] == f"s3://{BUCKET}/outputs/cli-1.out"
    notification = aws.success.for_inference("cli-1")
    assert notification["responseParameters"]["outputLocation"] == printed["OutputLocation"]


def test_the_aws_cli_reports_validation_errors(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime()

    result = aws_cli(
        runtime, "--endpoint-name", "nope", "--input-location", f"s3://{BUCKET}/inputs/x.csv"
    )

    assert result.returncode != 0
    assert "(ValidationError)" in result.stderr
    assert "Endpoint nope of account 123456789012 not found." in result.stderr


# fault injection


def test_throttling_is_a_throttling_exception(aws: Aws, make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime(faults=FaultSettings(throttle_rate=1.0))
    location = aws.put_input("inputs/throttled.csv", SETOSA_CSV)

    code, status, _ = error_of(
        lambda: sagemaker(runtime).invoke_endpoint_async(
            EndpointName=ENDPOINT, InputLocation=location
        )
    )

    assert (code, status) == ("ThrottlingException", 429)
    assert runtime.stats()["rejected"] == {"ThrottlingException": 1}


def test_boto3_retries_a_throttled_call(aws: Aws, make_runtime: RuntimeFactory) -> None:
    # With seed 1 the first draw (0.13) throttles at rate 0.5 and the second (0.85) does not.
    runtime = make_runtime(faults=FaultSettings(throttle_rate=0.5, seed=1))
    location = aws.put_input("inputs/retried.csv", SETOSA_CSV)
    client = aws_client(
        "sagemaker-runtime", runtime.url, Config(retries={"mode": "standard", "max_attempts": 3})
    )

    response = client.invoke_endpoint_async(
        EndpointName=ENDPOINT, InputLocation=location, InferenceId="retried-1"
    )

    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    stats = runtime.stats()
    assert (stats["requests"], stats["accepted"]) == (2, 1)
    assert stats["rejected"] == {"ThrottlingException": 1}


def test_error_rate_answers_5xx(aws: Aws, make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime(faults=FaultSettings(error_rate=1.0, seed=3))
    client = sagemaker(runtime)

    codes = {
        error_of(
            lambda: client.invoke_endpoint_async(
                EndpointName=ENDPOINT, InputLocation=f"s3://{BUCKET}/inputs/x.csv"
            )
        )[:2]
        for _ in range(12)
    }

    assert codes == {("ServiceUnavailable", 503), ("InternalFailure", 500)}


def test_a_down_window_set_through_the_admin_api(aws: Aws, make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime()
    client = sagemaker(runtime)
    location = aws.put_input("inputs/down.csv", SETOSA_CSV)

    faults = admin(runtime, "faults", {"down_for_seconds": 300})
    assert faults["down_until"] is not None
    code, status, message = error_of(
        lambda: client.invoke_endpoint_async(EndpointName=ENDPOINT, InputLocation=location)
    )
    assert (code, status) == ("ServiceUnavailable", 503)
    assert "unavailable until" in message

    admin(runtime, "faults", {"down_error": "ModelNotReadyException"})
    code, status, _ = error_of(
        lambda: client.invoke_endpoint_async(EndpointName=ENDPOINT, InputLocation=location)
    )
    assert (code, status) == ("ModelNotReadyException", 429)

    admin(runtime, "faults", {"down_until": None})
    response = client.invoke_endpoint_async(EndpointName=ENDPOINT, InputLocation=location)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert admin(runtime, "faults")["down_until"] is None


def test_admin_api_rejects_bad_fault_settings(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime()

    for body in ({"throttle_rate": 2}, {"no_such_knob": 1}, {"down_for_seconds": "soon"}):
        with pytest.raises(urllib.error.HTTPError) as raised:
            admin(runtime, "faults", body)
        assert raised.value.code == 400
        raised.value.close()
    assert runtime.faults == FaultSettings()


def test_added_latency_delays_every_call(aws: Aws, make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime(faults=FaultSettings(added_latency_ms=300))
    location = aws.put_input("inputs/latency.csv", SETOSA_CSV)

    started = time.monotonic()
    sagemaker(runtime).invoke_endpoint_async(EndpointName=ENDPOINT, InputLocation=location)

    assert time.monotonic() - started >= 0.3


def test_model_failure_injection_fails_inferences(aws: Aws, make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime(faults=FaultSettings(model_failure_rate=1.0))
    location = aws.put_input("inputs/injected.csv", SETOSA_CSV)

    response = sagemaker(runtime).invoke_endpoint_async(
        EndpointName=ENDPOINT, InputLocation=location, InferenceId="injected-1"
    )

    notification = aws.errors.for_inference("injected-1")
    assert "Received server error (500)" in notification["failureReason"]
    assert "injected model failure" in aws.read(response["FailureLocation"])[0].decode()


def test_lost_notifications_and_injected_expiry_set_through_the_admin_api(
    aws: Aws, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime()
    client = sagemaker(runtime)
    location = aws.put_input("inputs/knobs.csv", SETOSA_CSV)
    assert admin(runtime, "faults", {"drop_notification_rate": 1.0})["drop_notification_rate"] == 1

    lost = client.invoke_endpoint_async(
        EndpointName=ENDPOINT, InputLocation=location, InferenceId="lost-1", ContentType="text/csv"
    )
    assert runtime.wait_idle(WAIT_SECONDS)
    # the output is written as usual, only its notification never leaves
    assert aws.read(lost["OutputLocation"])[0]
    stats = admin(runtime, "stats")
    assert stats["notifications_dropped"] == 1
    assert stats["dropped_notification_ids"] == ["lost-1"]

    admin(runtime, "faults", {"drop_notification_rate": 0.0, "expire_rate": 1.0})
    expired = client.invoke_endpoint_async(
        EndpointName=ENDPOINT, InputLocation=location, InferenceId="expired-1"
    )
    notification = aws.errors.for_inference("expired-1")
    assert notification["failureReason"].startswith("Request has expired")
    assert "responseParameters" not in notification
    assert runtime.wait_idle(WAIT_SECONDS)
    assert not aws.exists(expired["OutputLocation"])
    assert not aws.exists(expired["FailureLocation"])
    stats = admin(runtime, "stats")
    assert (stats["expired"], stats["expired_inference_ids"]) == (1, ["expired-1"])
    assert not aws.success.has("lost-1")


# stats, notifications, lifecycle


def test_stats_count_accepted_invocations_per_inference_id(
    aws: Aws, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime()
    client = sagemaker(runtime)
    location = aws.put_input("inputs/twice.csv", SETOSA_CSV)

    for inference_id in ("once", "twice", "twice"):
        client.invoke_endpoint_async(
            EndpointName=ENDPOINT, InputLocation=location, InferenceId=inference_id
        )

    stats = admin(runtime, "stats")
    assert stats["accepted_per_inference_id"] == {"once": 1, "twice": 2}
    assert stats["duplicate_inference_ids"] == ["twice"]
    assert stats["requests"] == 3
    runtime.wait_idle(WAIT_SECONDS)
    reset = admin(runtime, "reset", {})
    assert (reset["requests"], reset["accepted"], reset["completed"]) == (0, 0, 0)
    assert reset["accepted_per_inference_id"] == {}


def test_publishes_the_test_notification_to_both_topics(
    aws: Aws, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime()

    runtime.publish_test_notifications()

    expected = {
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "TestNotification",
    }
    assert aws.success.wait_for(lambda message: message == expected) == expected
    assert aws.errors.wait_for(lambda message: message == expected) == expected


def runtime_threads(before: set[threading.Thread]) -> set[str]:
    """The runtime's threads started since ``before`` that are still alive (servers it talked
    to, like moto and the model server, keep their own connection threads a moment longer)."""
    started = set(threading.enumerate()) - before
    return {thread.name for thread in started if thread.name.startswith("sagemaker-runtime")}


def test_stop_abandons_work_and_leaves_no_thread(
    aws: Aws, gated_model: tuple[GatedModel, ModelServer]
) -> None:
    model, model_server = gated_model
    before = set(threading.enumerate())
    runtime = LocalRuntime(endpoint_spec(aws, model_server.url), aws.endpoint_url, REGION)
    runtime.start()
    client = sagemaker(runtime)
    location = aws.put_input("inputs/abandoned.csv", SETOSA_CSV)

    def invoke(inference_id: str) -> None:
        client.invoke_endpoint_async(
            EndpointName=ENDPOINT, InputLocation=location, InferenceId=inference_id
        )

    # Both workers first finish a request, so each holds a kept-alive model connection.
    invoke("warm-0")
    invoke("warm-1")
    model.wait_active(2)
    model.gate.set()
    assert runtime.wait_idle(WAIT_SECONDS)
    model.gate.clear()
    for number in range(4):
        invoke(f"abandoned-{number}")
    model.wait_active(2)

    runtime.stop(timeout=5)

    assert runtime_threads(before) == set()
    stats = runtime.stats()
    assert (stats["completed"], stats["abandoned"]) == (2, 4)
    assert (stats["in_flight"], stats["queue_depth"]) == (0, 0)
    assert not aws.errors.has("abandoned-0")


def test_stop_with_drain_finishes_queued_work(aws: Aws, demo_model: ModelServer) -> None:
    endpoint = endpoint_spec(aws, demo_model.url, max_concurrent_invocations_per_instance=1)
    before = set(threading.enumerate())
    runtime = LocalRuntime(endpoint, aws.endpoint_url, REGION)
    runtime.start()
    client = sagemaker(runtime)
    location = aws.put_input("inputs/drained.csv", SETOSA_CSV)
    for number in range(3):
        client.invoke_endpoint_async(
            EndpointName=ENDPOINT,
            InputLocation=location,
            ContentType="text/csv",
            InferenceId=f"drained-{number}",
        )

    runtime.stop(drain=True, timeout=WAIT_SECONDS)

    assert runtime_threads(before) == set()
    assert runtime.stats()["completed"] == 3
    for number in range(3):
        aws.success.for_inference(f"drained-{number}")


def test_runs_as_a_module(aws: Aws, demo_model: ModelServer) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "asyncinfer.local.sagemaker",
            "--aws-endpoint-url",
            aws.endpoint_url,
            "--endpoint-name",
            ENDPOINT,
            "--output-path",
            f"s3://{BUCKET}/outputs",
            "--failure-path",
            f"s3://{BUCKET}/failures",
            "--success-topic-arn",
            aws.success_topic_arn,
            "--error-topic-arn",
            aws.error_topic_arn,
            "--model-url",
            demo_model.url,
            "--faults",
            '{"seed": 1}',
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline().split()
        assert ready[0] == "READY", ready
        client = aws_client("sagemaker-runtime", f"http://127.0.0.1:{ready[1]}")
        location = aws.put_input("inputs/module.csv", SETOSA_CSV)
        client.invoke_endpoint_async(
            EndpointName=ENDPOINT,
            InputLocation=location,
            ContentType="text/csv",
            InferenceId="module-1",
        )
        aws.success.for_inference("module-1")

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=WAIT_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
