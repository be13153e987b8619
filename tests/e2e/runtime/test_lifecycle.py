"""The local SageMaker async runtime's own life: its stats and their reset, the test
notification, stopping with work in flight (abandoned or drained) and running as a module."""

from __future__ import annotations

import signal
import threading

import pytest

from asyncinfer.local.sagemaker.model_server import ModelServer
from asyncinfer.local.sagemaker.state import LocalRuntime
from tests.e2e.children import running_module
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
    sagemaker,
)

pytestmark = pytest.mark.e2e


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
    with running_module(
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
    ) as (process, port):
        client = aws_client("sagemaker-runtime", f"http://127.0.0.1:{port}")
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
