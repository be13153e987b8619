"""The bad input corpus: each input has one defined outcome, and no batch ever crashes.

Outcomes: processed (COMPLETED, or FAILED at inference when the model refuses the bytes),
FAILED at ingest with a reason (never retried), skipped with a log line and an EMF metric
(no record), or, for what cannot even be parsed, kept in the results failure queue.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest

from lambdas.common.records import InferenceRecord, inference_id_for
from tests.reliability.support import (
    IRIS_ROWS,
    Harness,
    emf_documents,
    iris_csv,
    metric_total,
    running_pipeline,
    s3_event,
    summarized,
    wait_quiet,
    wait_terminal,
    wait_until,
)

pytestmark = pytest.mark.reliability
METADATA_CONTEXT = {"metadata_attributes": '["note","owner"]'}

ROW = iris_csv(IRIS_ROWS[0])
INPUT_LOCATION_LIMIT = 1024
S3_KEY_LIMIT_BYTES = 1024
# Over inline_input_max_bytes (128,000 by default): sent by InputLocation, so its limit applies.
LARGE_ROWS = ROW * (128_000 // len(ROW) + 1)
TWO_GIB = 2 * 1024**3
FOREIGN_BUCKET = "a-bucket-the-stack-does-not-own"


@pytest.fixture(scope="module")
def corpus_ids() -> list[str]:
    """The inference ids of the corpus, filled by ``uploads``, counted for the summary."""
    return []


def observed_bad_inputs(harness: Harness, corpus_ids: list[str]) -> int:
    """Bad inputs as the pipeline reports having handled them: corpus records it FAILED,
    events the ingest function ignored, notifications the results function ignored, and
    deliveries that exhausted their retries into a dead-letter queue."""
    failed = sum(
        1
        for record in harness.records(corpus_ids).values()
        if record is not None and record.status == "FAILED"
    )
    ingest_log = harness.function_log("ingest")
    results_log = harness.function_log("results")
    return (
        failed
        + metric_total(ingest_log, "EventsIgnored")
        + metric_total(results_log, "TestNotificationsIgnored")
        + metric_total(results_log, "UnknownEndpointIgnored")
        + harness.runner_total("moved_to_dlq")
    )


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory, corpus_ids: list[str]) -> Iterator[Harness]:
    with (
        running_pipeline(
            tmp_path_factory.mktemp("corpus"),
            context=METADATA_CONTEXT,
        ) as running,
        summarized(
            running, corpus_ids, faults_injected=lambda: observed_bad_inputs(running, corpus_ids)
        ),
    ):
        yield running


@pytest.fixture(scope="module")
def uploads(harness: Harness, corpus_ids: list[str]) -> dict[str, str]:
    """Name of the case -> inference id; uploads first, then waits once for all of them."""
    prefix = f"s3://{harness.bucket}/"
    fitting_key = "corpus/long-" + "k" * (INPUT_LOCATION_LIMIT - len(prefix) - 16) + ".csv"
    too_long_key = "corpus/too-long-" + "k" * (S3_KEY_LIMIT_BYTES - 20) + ".csv"
    too_long_inline_key = "corpus/too-long-inline-" + "k" * (S3_KEY_LIMIT_BYTES - 27) + ".csv"
    assert len(prefix + too_long_inline_key) > INPUT_LOCATION_LIMIT
    assert len(prefix + fitting_key) <= INPUT_LOCATION_LIMIT
    assert len(too_long_key.encode()) <= S3_KEY_LIMIT_BYTES
    assert len(prefix + too_long_key) > INPUT_LOCATION_LIMIT
    cases = {
        "spaces": harness.put("corpus/red flower one.csv", ROW),
        "plus": harness.put("corpus/a+b=c.csv", ROW),
        "percent": harness.put("corpus/100% sure %41.csv", ROW),
        "unicode": harness.put("corpus/fleur-ü-花-🌸.csv", ROW),
        "long_key": harness.put(fitting_key, ROW),
        "input_location_too_long": harness.put(too_long_key, LARGE_ROWS),
        # A small input travels inline (Body): no InputLocation, so no 1024-character limit.
        "long_location_inline": harness.put(too_long_inline_key, ROW),
        "zero_bytes": harness.put("corpus/empty.csv", b""),
        "unknown_extension": harness.put("corpus/flower.xyz", ROW),
        "unknown_extension_typed": harness.put("corpus/typed.xyz", ROW, content_type="text/csv"),
        "metadata_overflow": harness.put("corpus/noisy.csv", ROW, metadata={"note": "n" * 1100}),
        "non_ascii_metadata": harness.put(
            "corpus/zoe.csv", ROW, metadata={"owner": "=?UTF-8?B?em/Dqw==?="}
        ),
    }
    # Reported by the event as over 1 GB (no need to store 1 GB): refused before any read.
    huge = s3_event(
        harness.bucket,
        "corpus/huge.bin",
        size=TWO_GIB,
        version_id="reported-huge-version",
        region=harness.spec.region,
    )
    harness.sqs.send_message(QueueUrl=harness.spec.ingest.queue_url, MessageBody=json.dumps(huge))
    cases["over_one_gib"] = inference_id_for(
        harness.bucket, "corpus/huge.bin", "reported-huge-version", None
    )
    corpus_ids.extend(cases.values())
    return cases


@pytest.fixture(scope="module")
def outcomes(harness: Harness, uploads: dict[str, str]) -> dict[str, InferenceRecord]:
    records = wait_terminal(harness, uploads.values(), timeout=90)
    return {case: records[inference_id] for case, inference_id in uploads.items()}


@pytest.mark.parametrize(
    "case",
    [
        "spaces",
        "plus",
        "percent",
        "unicode",
        "long_key",
        "unknown_extension_typed",
        "long_location_inline",
    ],
)
def test_awkward_keys_are_processed_with_the_decoded_key(
    case: str, outcomes: dict[str, InferenceRecord], harness: Harness
) -> None:
    record = outcomes[case]
    assert record.status == "COMPLETED", record.failure_reason
    assert record.input_key is not None
    assert record.input_location == f"s3://{harness.bucket}/{record.input_key}"
    # The key as stored (decoded), not as the event spelled it.
    head = harness.s3.head_object(Bucket=harness.bucket, Key=record.input_key)
    assert head["ContentLength"] == len(ROW)


def test_an_input_location_over_1024_characters_fails_at_ingest(
    outcomes: dict[str, InferenceRecord],
) -> None:
    record = outcomes["input_location_too_long"]
    assert record.status == "FAILED"
    assert record.failure_stage == "ingest"
    assert record.failure_reason is not None
    assert "1024" in record.failure_reason


def test_an_object_reported_over_one_gib_fails_at_ingest(
    outcomes: dict[str, InferenceRecord],
) -> None:
    record = outcomes["over_one_gib"]
    assert record.status == "FAILED"
    assert record.failure_stage == "ingest"
    assert record.failure_reason is not None
    assert str(TWO_GIB) in record.failure_reason or "large" in record.failure_reason.lower()


def test_metadata_overflowing_the_custom_attributes_fails_at_ingest(
    outcomes: dict[str, InferenceRecord],
) -> None:
    record = outcomes["metadata_overflow"]
    assert record.status == "FAILED"
    assert record.failure_stage == "ingest"
    assert record.failure_reason is not None
    assert "custom" in record.failure_reason.lower()


def test_non_ascii_metadata_is_sent_encoded(outcomes: dict[str, InferenceRecord]) -> None:
    record = outcomes["non_ascii_metadata"]
    assert record.status == "COMPLETED", record.failure_reason
    assert record.custom_attributes is not None
    assert record.custom_attributes.isascii()
    assert "owner=zo%C3%AB" in record.custom_attributes


@pytest.mark.parametrize("case", ["zero_bytes", "unknown_extension"])
def test_bytes_the_model_cannot_read_fail_at_inference(
    case: str, outcomes: dict[str, InferenceRecord]
) -> None:
    record = outcomes[case]
    assert record.status == "FAILED"
    assert record.failure_stage == "inference"
    assert record.failure_reason


def send_to_ingest(harness: Harness, body: dict[str, Any]) -> None:
    harness.sqs.send_message(QueueUrl=harness.spec.ingest.queue_url, MessageBody=json.dumps(body))


def test_skipped_events_leave_no_record_but_a_log_line_and_a_metric(
    harness: Harness, outcomes: dict[str, InferenceRecord]
) -> None:
    folder = harness.s3.put_object(Bucket=harness.bucket, Key="corpus/a folder/", Body=b"")
    send_to_ingest(
        harness,
        {
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": "2026-11-21T00:00:00.000Z",
            "Bucket": harness.bucket,
            "RequestId": "LOCAL",
            "HostId": "LOCAL",
        },
    )
    send_to_ingest(
        harness,
        s3_event(
            FOREIGN_BUCKET,
            quote_plus("someone else's/file.csv"),
            size=10,
            version_id="v1",
            region=harness.spec.region,
        ),
    )
    wait_quiet(harness, timeout=60)
    log = harness.function_log("ingest")
    reasons = {document.get("reason") for document in emf_documents(log, "EventsIgnored")}
    assert {"folder_marker", "test_event", "foreign_bucket"} <= reasons
    folder_id = inference_id_for(
        harness.bucket, "corpus/a folder/", folder.get("VersionId"), folder["ETag"]
    )
    foreign_id = inference_id_for(FOREIGN_BUCKET, "someone else's/file.csv", "v1", None)
    assert harness.records([folder_id, foreign_id]) == {folder_id: None, foreign_id: None}
    ingest_stats = harness.pipeline.runner.stats()[harness.spec.ingest.queue_url]  # type: ignore[union-attr]
    # Never a crashed batch: no worker died and nothing reached the DLQ. A message may still be
    # reported for a retry when a cold start on a loaded machine leaves the 3 s function too
    # little time to submit (the designed deferral); its retry then succeeded.
    assert ingest_stats.worker_restarts == 0
    assert ingest_stats.moved_to_dlq == 0
    assert ingest_stats.failed == ingest_stats.retried


def success_notification(endpoint_name: str, inference_id: str, bucket: str) -> dict[str, Any]:
    return {
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-21T00:00:01.000Z",
        "receivedTime": "2026-11-21T00:00:00.000Z",
        "invocationStatus": "Completed",
        "requestParameters": {
            "contentType": "text/csv",
            "endpointName": endpoint_name,
            "inputLocation": f"s3://{bucket}/elsewhere.csv",
        },
        "responseParameters": {
            "contentType": "application/json",
            "outputLocation": f"s3://{bucket}/out/x.out",
        },
        "inferenceId": inference_id,
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    }


def test_notifications_that_are_not_ours_are_skipped_and_garbage_is_kept(
    harness: Harness, outcomes: dict[str, InferenceRecord]
) -> None:
    # The topic's policy lets only the endpoint's execution role publish (under IAM, local
    # mode applies it): these notifications come from a caller with that role.
    endpoint_role = harness.pipeline.role_credentials.get("endpoint")
    credentials = (
        endpoint_role.environment()
        if endpoint_role is not None
        else {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
    )
    session = boto3.session.Session(
        region_name=harness.spec.region,
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials.get("AWS_SESSION_TOKEN"),
    )
    sns = session.client("sns", endpoint_url=harness.spec.aws_endpoint_url)
    topic = harness.spec.outputs["SuccessTopicArn"]
    stranger_id = "f" * 64
    sns.publish(
        TopicArn=topic,
        Message=json.dumps(
            {"eventVersion": "1.0", "eventSource": "aws:sagemaker", "eventName": "TestNotification"}
        ),
    )
    sns.publish(
        TopicArn=topic,
        Message=json.dumps(success_notification("someone-elses-endpoint", stranger_id, "b")),
    )
    garbage = "this is {not a SageMaker notification"
    sns.publish(TopicArn=topic, Message=garbage)
    failure_queue = harness.spec.outputs["ResultsFailureQueueUrl"]
    # Garbage fails every attempt (Lambda's async retries), then lands in the failure queue.
    wait_until(
        lambda: harness.queue_depth(failure_queue) == 1,
        timeout=60,
        what="the malformed notification to reach the results failure queue",
    )
    wait_quiet(harness, timeout=60)
    log = harness.function_log("results")
    assert emf_documents(log, "TestNotificationsIgnored")
    assert emf_documents(log, "UnknownEndpointIgnored")
    assert harness.records([stranger_id]) == {stranger_id: None}
    message = harness.sqs.receive_message(QueueUrl=failure_queue, WaitTimeSeconds=1)["Messages"][0]
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestPayload"]["Records"][0]["Sns"]["Message"] == garbage
    # Expected and inspected: an operator deletes such a dead letter rather than redriving it.
    harness.sqs.delete_message(QueueUrl=failure_queue, ReceiptHandle=message["ReceiptHandle"])
    assert sum(harness.dead_letter_depths().values()) == 0
