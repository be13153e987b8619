"""What becomes of a request that goes wrong in the local SageMaker async runtime: the model's
rejections, missing inputs, unwritable outputs, the TTL, the invocation timeout and the
concurrency cap, then the faults injected through its settings and its admin API."""

from __future__ import annotations

import time
import urllib.error
from datetime import UTC, datetime, timedelta

import pytest
from botocore.config import Config

from asyncinfer.local.faults import FaultSettings
from asyncinfer.local.sagemaker.model_server import ModelServer
from asyncinfer.local.sagemaker.state import LocalRuntime
from tests.e2e.runtime.support import (
    BUCKET,
    ENDPOINT,
    REGION,
    SETOSA_CSV,
    WAIT_SECONDS,
    Aws,
    GatedModel,
    RuntimeFactory,
    admin,
    aws_client,
    endpoint_spec,
    error_of,
    sagemaker,
)

pytestmark = pytest.mark.e2e


class FakeClock:
    """The runtime's clock, which a test can move forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


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
