"""The results function end to end: SNS Lambda events in, items in the (moto) results table."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import ValidationError

from lambdas.common.clock import parse_timestamp
from lambdas.common.records import InferenceRecord, Status
from lambdas.common.store import ClaimOutcome, RecordStore
from lambdas.results import handler as results_handler
from lambdas.results.logic import UnprocessedNotificationsError
from tests.conftest import TABLE_NAME
from tests.unit.results.conftest import FakeLambdaContext, Invoke, emitted_metrics, metric_values
from tests.unit.results.events import (
    ENDPOINT_NAME,
    ERROR_TOPIC_ARN,
    EVENT_TIME,
    FAILURE_LOCATION,
    FAILURE_REASON,
    INFERENCE_ID,
    INPUT_BUCKET,
    INPUT_KEY,
    INPUT_LOCATION,
    LATER_EVENT_TIME,
    OUTPUT_BUCKET,
    OUTPUT_LOCATION,
    RECEIVED_TIME,
    TEST_NOTIFICATION,
    failure,
    sns_event,
    success,
    with_response_body,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

# Invocations that only ignore or deduplicate publish no outcome metric, which Powertools warns of.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

OUTPUT_KEY = OUTPUT_LOCATION.removeprefix(f"s3://{OUTPUT_BUCKET}/")
PREDICTION = b'{"label": "rose", "score": 0.97}'


def put_output(s3: S3Client, body: bytes, content_type: str = "application/json") -> None:
    s3.put_object(Bucket=OUTPUT_BUCKET, Key=OUTPUT_KEY, Body=body, ContentType=content_type)


def stored(store: RecordStore, inference_id: str = INFERENCE_ID) -> InferenceRecord:
    record = store.get(inference_id)
    assert record is not None
    return record


def raw_item(dynamodb: Any, inference_id: str = INFERENCE_ID) -> dict[str, Any]:
    item: dict[str, Any] = dynamodb.get_item(
        TableName=TABLE_NAME, Key={"inference_id": {"S": inference_id}}, ConsistentRead=True
    )["Item"]
    return item


def item_count(dynamodb: Any) -> int:
    count: int = dynamodb.scan(TableName=TABLE_NAME, Select="COUNT")["Count"]
    return count


def pending_claim() -> InferenceRecord:
    return InferenceRecord(
        inference_id=INFERENCE_ID,
        status=Status.PENDING,
        input_location=INPUT_LOCATION,
        input_bucket=INPUT_BUCKET,
        input_key=INPUT_KEY,
        input_version="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
        input_size=2048,
        created_at="2026-11-21T09:59:59.000Z",
        updated_at="2026-11-21T09:59:59.000Z",
    )


def test_success_completes_the_record_with_the_inline_result(
    invoke: Invoke, store: RecordStore, s3: S3Client, capsys: pytest.CaptureFixture[str]
) -> None:
    put_output(s3, PREDICTION)
    before = datetime.now(UTC)

    invoke(sns_event(success()))

    record = stored(store)
    assert record.status == Status.COMPLETED
    assert record.output_location == OUTPUT_LOCATION
    assert record.response_content_type == "application/json"
    assert record.received_at == RECEIVED_TIME
    assert record.completed_at == EVENT_TIME
    assert record.latency_ms == 2875
    assert record.result == PREDICTION.decode()
    assert record.result_encoding == "utf-8"
    assert (record.input_location, record.input_bucket, record.input_key) == (
        INPUT_LOCATION,
        INPUT_BUCKET,
        INPUT_KEY,
    )
    assert record.endpoint_name == ENDPOINT_NAME
    assert (record.content_type, record.accept) == ("application/json", "application/json")
    assert record.custom_attributes == "tenant=blue"
    assert record.failure_reason is None
    assert record.updated_at is not None
    assert parse_timestamp(record.updated_at) >= before - timedelta(milliseconds=1)
    assert record.expires_at is not None
    retention = datetime.fromtimestamp(record.expires_at, UTC) - before
    assert timedelta(days=90) - timedelta(minutes=1) < retention <= timedelta(days=90, minutes=1)

    metrics = emitted_metrics(capsys.readouterr().out)
    assert metric_values(metrics, "InferencesCompleted") == [1]
    assert metric_values(metrics, "InferenceLatency") == [2875]
    assert metric_values(metrics, "EndToEndLatency") == []  # no submitted_at known
    completed = next(metric for metric in metrics if metric.name == "InferencesCompleted")
    assert completed.dimensions["EndpointName"] == ENDPOINT_NAME


def test_failure_without_response_parameters(
    invoke: Invoke, store: RecordStore, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke(sns_event(failure(), topic_arn=ERROR_TOPIC_ARN))

    record = stored(store)
    assert record.status == Status.FAILED
    assert record.failure_reason == FAILURE_REASON
    assert record.failure_stage == "inference"
    assert record.failure_location is None
    assert record.output_location is None
    assert record.completed_at == EVENT_TIME
    assert record.latency_ms == 2875
    assert record.result is None
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metric_values(metrics, "InferencesFailed") == [1]
    assert metric_values(metrics, "InferencesCompleted") == []
    assert metric_values(metrics, "InferenceLatency") == []


def test_failure_with_failure_location(invoke: Invoke, store: RecordStore) -> None:
    invoke(sns_event(failure(failure_location=FAILURE_LOCATION), topic_arn=ERROR_TOPIC_ARN))

    record = stored(store)
    assert record.status == Status.FAILED
    assert record.failure_location == FAILURE_LOCATION
    assert record.response_content_type == "text/plain; charset=utf-8"


def test_response_body_is_the_result_and_s3_is_not_read(
    invoke: Invoke, store: RecordStore, s3: S3Client
) -> None:
    put_output(s3, b'{"from": "s3"}')

    invoke(sns_event(with_response_body(success(), PREDICTION)))

    record = stored(store)
    assert record.result == PREDICTION.decode()
    assert record.result_encoding == "utf-8"


def test_test_notification_is_ignored_and_counted(
    invoke: Invoke, dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke(sns_event(TEST_NOTIFICATION))

    assert item_count(dynamodb) == 0
    metrics = emitted_metrics(capsys.readouterr().out)
    [ignored] = [metric for metric in metrics if metric.name == "TestNotificationsIgnored"]
    assert ignored.values == [1]
    assert "EndpointName" not in ignored.dimensions


def test_notification_for_another_endpoint_is_ignored_and_counted(
    invoke: Invoke, dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke(sns_event(success(endpoint_name="someone-elses-endpoint")))

    assert item_count(dynamodb) == 0
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metric_values(metrics, "UnknownEndpointIgnored") == [1]
    assert metric_values(metrics, "InferencesCompleted") == []


def test_duplicate_delivery_has_one_effect_and_counts_once(
    invoke: Invoke, dynamodb: Any, s3: S3Client, capsys: pytest.CaptureFixture[str]
) -> None:
    put_output(s3, PREDICTION)
    event = sns_event(success())

    invoke(event)
    first = raw_item(dynamodb)
    invoke(event)

    assert raw_item(dynamodb) == first  # not even updated_at moved: the second write was refused
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metric_values(metrics, "InferencesCompleted") == [1]
    assert metric_values(metrics, "InferenceLatency") == [2875]


def test_older_success_after_newer_failure_leaves_failed(
    invoke: Invoke, store: RecordStore, s3: S3Client
) -> None:
    put_output(s3, PREDICTION)
    invoke(sns_event(failure(event_time=LATER_EVENT_TIME), topic_arn=ERROR_TOPIC_ARN))
    invoke(sns_event(success(event_time=EVENT_TIME)))

    record = stored(store)
    assert record.status == Status.FAILED
    assert record.completed_at == LATER_EVENT_TIME
    assert record.output_location is None
    assert record.result is None


def test_newer_failure_after_older_success_wins(
    invoke: Invoke, store: RecordStore, s3: S3Client
) -> None:
    put_output(s3, PREDICTION)
    invoke(sns_event(success(event_time=EVENT_TIME)))
    invoke(sns_event(failure(event_time=LATER_EVENT_TIME), topic_arn=ERROR_TOPIC_ARN))

    record = stored(store)
    assert record.status == Status.FAILED
    assert record.completed_at == LATER_EVENT_TIME
    assert record.failure_reason == FAILURE_REASON
    assert record.result is None  # outcome fields belong to the newest outcome only
    assert record.response_content_type is None


def test_result_before_ingest_record_creates_a_complete_record(
    invoke: Invoke, store: RecordStore, s3: S3Client
) -> None:
    put_output(s3, PREDICTION)

    invoke(sns_event(success()))

    record = stored(store)
    assert record.status == Status.COMPLETED
    assert record.input_location == INPUT_LOCATION
    assert record.endpoint_name == ENDPOINT_NAME
    assert record.content_type == "application/json"
    assert record.custom_attributes == "tenant=blue"
    assert record.created_at == RECEIVED_TIME  # so it is listed by the input-location index
    late_claim = store.claim(pending_claim(), token="t", lease_until=2_000_000_000, now=1)
    assert late_claim.outcome == ClaimOutcome.ALREADY_DONE
    assert stored(store).status == Status.COMPLETED


def test_late_submitted_write_backfills_without_regressing(
    invoke: Invoke, store: RecordStore, s3: S3Client
) -> None:
    put_output(s3, PREDICTION)
    claim = pending_claim()
    assert store.claim(claim, token="t1", lease_until=2_000_000_000, now=1).owned

    invoke(sns_event(success()))
    submitted = claim.model_copy(update={"submitted_at": "2026-11-21T10:00:00.100Z"})
    assert store.mark_submitted(submitted, token="t1") is False

    record = stored(store)
    assert record.status == Status.COMPLETED
    assert record.submitted_at == "2026-11-21T10:00:00.100Z"
    assert record.created_at == claim.created_at  # ingest's, written first, is kept
    assert record.input_version == claim.input_version
    assert record.result == PREDICTION.decode()


def test_end_to_end_latency_from_the_submitted_record(
    invoke: Invoke, store: RecordStore, s3: S3Client, capsys: pytest.CaptureFixture[str]
) -> None:
    put_output(s3, PREDICTION)
    claim = pending_claim()
    store.claim(claim, token="t1", lease_until=2_000_000_000, now=1)
    store.mark_submitted(
        claim.model_copy(update={"submitted_at": "2026-11-21T10:00:00.125Z"}), token="t1"
    )

    invoke(sns_event(success()))

    assert stored(store).status == Status.COMPLETED
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metric_values(metrics, "EndToEndLatency") == [3000]
    assert metric_values(metrics, "InferenceLatency") == [2875]


def test_malformed_json_is_logged_raw_and_raised(
    invoke: Invoke, dynamodb: Any, caplog: pytest.LogCaptureFixture
) -> None:
    raw = '{"eventName": "InferenceResult", "inferenceId": '

    with pytest.raises(UnprocessedNotificationsError, match="1 of 1 notifications"):
        invoke(sns_event(raw))

    assert item_count(dynamodb) == 0
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert any(getattr(record, "raw_message", None) == raw for record in errors)


@pytest.mark.parametrize(
    ("description", "notification"),
    [
        ("success without outputLocation", success() | {"responseParameters": {}}),
        (
            "failure without failureReason",
            {k: v for k, v in failure().items() if k != "failureReason"},
        ),
        ("without inferenceId", {k: v for k, v in success().items() if k != "inferenceId"}),
        ("without eventTime", {k: v for k, v in success().items() if k != "eventTime"}),
        ("unknown invocationStatus", success() | {"invocationStatus": "Expired"}),
        ("unparseable eventTime", success() | {"eventTime": "yesterday"}),
        ("another event source", success() | {"eventSource": "aws:s3"}),
    ],
)
def test_invalid_notification_raises(
    invoke: Invoke, dynamodb: Any, description: str, notification: dict[str, Any]
) -> None:
    with pytest.raises(UnprocessedNotificationsError):
        invoke(sns_event(notification))
    assert item_count(dynamodb) == 0, description


def test_unknown_extra_fields_are_tolerated(
    invoke: Invoke, store: RecordStore, s3: S3Client
) -> None:
    put_output(s3, PREDICTION)
    notification = success() | {"newTopLevelField": {"nested": True}, "eventVersion": "1.1"}
    notification["requestParameters"] |= {"inferenceComponentName": "ic-1"}
    notification["responseParameters"] |= {"outputSize": 31}

    invoke(sns_event(notification))

    assert stored(store).status == Status.COMPLETED


def test_output_over_the_inline_limit_is_not_stored(
    invoke: Invoke, store: RecordStore, s3: S3Client
) -> None:
    put_output(s3, b'{"values": [' + b"0, " * 10_000 + b"0]}")

    invoke(sns_event(success()))

    record = stored(store)
    assert record.status == Status.COMPLETED
    assert record.result is None
    assert record.result_encoding == "omitted:too-large"


def test_binary_output_is_stored_as_base64(
    invoke: Invoke, store: RecordStore, s3: S3Client
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    put_output(s3, png, content_type="image/png")

    invoke(sns_event(success(response_content_type="image/png")))

    record = stored(store)
    assert record.result_encoding == "base64"
    assert record.result is not None
    assert base64.b64decode(record.result) == png


def test_empty_output_is_stored_as_empty_text(
    invoke: Invoke, store: RecordStore, s3: S3Client
) -> None:
    put_output(s3, b"", content_type="text/plain")

    invoke(sns_event(success(response_content_type="text/plain")))

    record = stored(store)
    assert (record.result, record.result_encoding) == ("", "utf-8")


def test_missing_output_object_still_records_the_outcome(
    invoke: Invoke, store: RecordStore, caplog: pytest.LogCaptureFixture
) -> None:
    invoke(sns_event(success()))  # nothing was written at OUTPUT_LOCATION: S3 answers 404

    record = stored(store)
    assert record.status == Status.COMPLETED
    assert record.output_location == OUTPUT_LOCATION
    assert record.result is None
    assert record.result_encoding is None
    assert any(
        record.levelno == logging.WARNING and getattr(record, "output_location", None)
        for record in caplog.records
    )


def test_inline_reads_disabled_reads_nothing(
    invoke: Invoke, store: RecordStore, s3: S3Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INLINE_RESULT_MAX_BYTES", "0")
    put_output(s3, PREDICTION)

    invoke(sns_event(success()))

    record = stored(store)
    assert record.result is None
    assert record.result_encoding is None


def test_retention_zero_keeps_records_forever(
    invoke: Invoke, store: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETENTION_DAYS", "0")

    invoke(sns_event(failure(), topic_arn=ERROR_TOPIC_ARN))

    assert stored(store).expires_at is None


def test_one_malformed_record_fails_the_event_after_the_others_are_applied(
    invoke: Invoke, store: RecordStore, s3: S3Client, capsys: pytest.CaptureFixture[str]
) -> None:
    put_output(s3, PREDICTION)
    other_id = "1e" * 32
    event = sns_event(success(), "not json at all", failure(inference_id=other_id))

    with pytest.raises(UnprocessedNotificationsError, match="1 of 3 notifications") as raised:
        invoke(event)

    assert stored(store).status == Status.COMPLETED
    assert stored(store, other_id).status == Status.FAILED
    [(message_id, _)] = raised.value.failures
    assert message_id == event["Records"][1]["Sns"]["MessageId"]
    metrics = emitted_metrics(capsys.readouterr().out)  # flushed although the invocation failed
    assert metric_values(metrics, "InferencesCompleted") == [1]
    assert metric_values(metrics, "InferencesFailed") == [1]

    with pytest.raises(UnprocessedNotificationsError):  # Lambda's retry: no double counting
        invoke(event)
    retried = emitted_metrics(capsys.readouterr().out)
    assert metric_values(retried, "InferencesCompleted") == []
    assert metric_values(retried, "InferencesFailed") == []


def test_event_that_is_not_an_sns_event_raises(invoke: Invoke) -> None:
    with pytest.raises(ValidationError):
        invoke({"Records": [{"eventSource": "aws:s3"}]})


def test_table_write_errors_propagate(
    invoke: Invoke, store: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TABLE_NAME", "no-such-table")

    with pytest.raises(UnprocessedNotificationsError, match="ResourceNotFoundException"):
        invoke(sns_event(failure(), topic_arn=ERROR_TOPIC_ARN))


def test_timestamps_are_normalized(invoke: Invoke, store: RecordStore) -> None:
    notification = failure(
        event_time="2026-11-21T10:00:03.1Z", received_time="2026-11-21T10:00:00+00:00"
    )

    invoke(sns_event(json.dumps(notification), topic_arn=ERROR_TOPIC_ARN))

    record = stored(store)
    assert record.completed_at == "2026-11-21T10:00:03.100Z"
    assert record.received_at == "2026-11-21T10:00:00.000Z"
    assert record.latency_ms == 3100


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The function's log lines as Powertools formats them (context keys included)."""
    stream = io.StringIO()
    sink = logging.StreamHandler(stream)
    sink.setFormatter(results_handler.logger.registered_formatter)
    target = logging.getLogger(results_handler.logger.name)
    target.addHandler(sink)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    target.removeHandler(sink)


def test_a_completed_outcome_logs_nothing_at_info_and_a_failed_one_says_why(
    invoke: Invoke, s3: S3Client, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    put_output(s3, PREDICTION)
    invoke(sns_event(success()))
    # the happy path: no line (the record holds the outcome; the metrics count it)
    assert log_lines() == []

    invoke(sns_event(failure(inference_id="1e" * 32)))
    [failed] = log_lines()
    assert failed["level"] == "INFO"
    assert failed["message"] == "Inference failed"
    assert failed["failure_reason"] == FAILURE_REASON
    assert failed["inference_id"] == failed["correlation_id"] == "1e" * 32
    assert failed["function_request_id"] == FakeLambdaContext().aws_request_id
    # what the log group already says is left out
    redundant = {"function_name", "function_arn", "function_memory_size", "service", "cold_start"}
    assert not redundant & set(failed)
