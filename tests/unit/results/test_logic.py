"""The processor with injected fakes: what reaches the store, best-effort reads, error policy."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools import Metrics
from botocore.exceptions import ClientError
from pydantic import ValidationError

from lambdas.common.notification import InferenceFailed, parse_notification
from lambdas.common.outcomes import Disposition, MalformedNotificationError, outcome_record
from lambdas.common.outputs import OutputObject, OutputUnavailableError
from lambdas.common.records import InferenceRecord, Status
from lambdas.results import handler as results_handler
from lambdas.results.config import ResultsConfig
from lambdas.results.envelope import SageMakerSnsEvent
from lambdas.results.logic import NotificationProcessor, UnprocessedNotificationsError
from tests.unit.results.events import (
    ENDPOINT_NAME,
    EVENT_TIME,
    FAILURE_LOCATION,
    OUTPUT_LOCATION,
    failure,
    sns_event,
    success,
    with_response_body,
)

NOW = datetime(2026, 11, 21, 10, 0, 5, tzinfo=UTC)


@dataclass
class RecordingStore:
    """Accepts every outcome, as a table without a newer one would."""

    written: list[InferenceRecord] = field(default_factory=list)

    def record_outcome(self, record: InferenceRecord) -> InferenceRecord | None:
        self.written.append(record)
        return record


class ThrottledStore:
    def record_outcome(self, record: InferenceRecord) -> InferenceRecord | None:
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
            "UpdateItem",
        )


@dataclass
class FakeOutputs:
    objects: dict[str, OutputObject] = field(default_factory=dict)
    reads: list[tuple[str, int]] = field(default_factory=list)

    def read_small(self, location: str, max_bytes: int) -> OutputObject:
        self.reads.append((location, max_bytes))
        if location not in self.objects:
            raise OutputUnavailableError(f"AccessDenied: {location}")
        return self.objects[location]


def config(**overrides: str) -> ResultsConfig:
    return ResultsConfig.from_environ(
        {"TABLE_NAME": "results", "ENDPOINT_NAME": ENDPOINT_NAME} | overrides
    )


def processor(
    store: Any, outputs: FakeOutputs, metrics: Metrics, **overrides: str
) -> NotificationProcessor:
    return NotificationProcessor(
        config=config(**overrides),
        store=store,
        outputs=outputs,
        metrics=metrics,
        logger=results_handler.logger,
        clock=lambda: NOW,
    )


def message(notification: dict[str, Any]) -> str:
    return json.dumps(notification)


def test_configured_limit_is_passed_to_the_reader(metrics: Metrics) -> None:
    store = RecordingStore()
    outputs = FakeOutputs({OUTPUT_LOCATION: OutputObject(5, "text/plain", b"rose\n")})

    disposition = processor(
        store, outputs, metrics, INLINE_RESULT_MAX_BYTES="2048"
    ).process_message(message(success(response_content_type="text/plain")))

    assert disposition == Disposition.COMPLETED
    assert outputs.reads == [(OUTPUT_LOCATION, 2048)]
    [record] = store.written
    assert (record.result, record.result_encoding) == ("rose\n", "utf-8")
    assert record.updated_at == "2026-11-21T10:00:05.000Z"
    assert record.expires_at == int(NOW.timestamp()) + 90 * 86400


def test_object_over_the_limit_is_noted(metrics: Metrics) -> None:
    store = RecordingStore()
    outputs = FakeOutputs({OUTPUT_LOCATION: OutputObject(10**9, "application/json", None)})

    processor(store, outputs, metrics).process_message(message(success()))

    assert store.written[0].result is None
    assert store.written[0].result_encoding == "omitted:too-large"


def test_denied_read_records_the_outcome_without_result(metrics: Metrics) -> None:
    store = RecordingStore()

    disposition = processor(store, FakeOutputs(), metrics).process_message(message(success()))

    assert disposition == Disposition.COMPLETED
    assert store.written[0].status == Status.COMPLETED
    assert store.written[0].result is None
    assert store.written[0].result_encoding is None


@pytest.mark.parametrize(
    "response_body",
    [
        {"content": "%%% not base64 %%%", "encoding": "BASE64"},
        {"content": "e30=", "encoding": "GZIP"},
        {"message": "Response too large to include"},
    ],
)
def test_unusable_response_body_falls_back_to_the_output_object(
    metrics: Metrics, response_body: dict[str, str]
) -> None:
    store = RecordingStore()
    outputs = FakeOutputs({OUTPUT_LOCATION: OutputObject(2, "application/json", b"{}")})

    processor(store, outputs, metrics).process_message(
        message(success() | {"responseBody": response_body})
    )

    assert outputs.reads == [(OUTPUT_LOCATION, 16384)]
    assert store.written[0].result == "{}"


def test_failure_response_body_is_kept_and_nothing_is_read(metrics: Metrics) -> None:
    store = RecordingStore()
    outputs = FakeOutputs()
    notification = with_response_body(
        failure(failure_location=FAILURE_LOCATION), b"model raised ValueError"
    )

    disposition = processor(store, outputs, metrics).process_message(message(notification))

    assert disposition == Disposition.FAILED
    assert outputs.reads == []
    assert store.written[0].result == "model raised ValueError"
    assert store.written[0].failure_location == FAILURE_LOCATION


def test_inline_reads_disabled(metrics: Metrics) -> None:
    store = RecordingStore()
    outputs = FakeOutputs({OUTPUT_LOCATION: OutputObject(2, "application/json", b"{}")})

    processor(store, outputs, metrics, INLINE_RESULT_MAX_BYTES="0").process_message(
        message(success())
    )

    assert outputs.reads == []
    assert store.written[0].result_encoding is None


def test_failure_without_received_time() -> None:
    notification = parse_notification(
        message({k: v for k, v in failure().items() if k != "receivedTime"})
    )
    assert isinstance(notification, InferenceFailed)

    record = outcome_record(notification, now=NOW, retention_days=0, inline=None)

    assert record.received_at is None
    assert record.latency_ms is None
    assert record.created_at == EVENT_TIME
    assert record.expires_at is None
    assert record.failure_stage == "inference"


def test_malformed_message_raises_its_own_error(metrics: Metrics) -> None:
    with pytest.raises(MalformedNotificationError) as raised:
        processor(RecordingStore(), FakeOutputs(), metrics).process_message("{")

    assert isinstance(raised.value.__cause__, ValidationError)


def test_throttled_write_fails_the_event(
    metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    event = SageMakerSnsEvent.model_validate(sns_event(failure()))

    with pytest.raises(UnprocessedNotificationsError) as raised:
        processor(ThrottledStore(), FakeOutputs(), metrics).process_records(event.Records)

    [(_, error)] = raised.value.failures
    assert isinstance(error, ClientError)
    assert error.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert raised.value.__cause__ is error
    [logged] = [
        record
        for record in caplog.records
        if record.levelno == logging.ERROR
        and record.getMessage().startswith("Outcome not recorded")
    ]
    assert logged.exc_info is not None
    assert logged.exc_info[1] is error


def test_every_record_of_an_event_is_processed(metrics: Metrics) -> None:
    store = RecordingStore()
    event = SageMakerSnsEvent.model_validate(
        sns_event(failure(inference_id="a" * 64), failure(inference_id="b" * 64))
    )

    dispositions = processor(store, FakeOutputs(), metrics).process_records(event.Records)

    assert dispositions == [Disposition.FAILED, Disposition.FAILED]
    assert [record.inference_id for record in store.written] == ["a" * 64, "b" * 64]


@pytest.mark.parametrize(
    ("environment", "problem"),
    [
        ({"ENDPOINT_NAME": "e"}, "TABLE_NAME"),
        ({"TABLE_NAME": "t"}, "ENDPOINT_NAME"),
        ({"TABLE_NAME": "t", "ENDPOINT_NAME": "e", "RETENTION_DAYS": "-1"}, "RETENTION_DAYS"),
        (
            {"TABLE_NAME": "t", "ENDPOINT_NAME": "e", "INLINE_RESULT_MAX_BYTES": "65537"},
            "INLINE_RESULT_MAX_BYTES",
        ),
        (
            {"TABLE_NAME": "t", "ENDPOINT_NAME": "e", "INLINE_RESULT_MAX_BYTES": "lots"},
            "INLINE_RESULT_MAX_BYTES",
        ),
    ],
)
def test_invalid_environment_is_rejected(environment: dict[str, str], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        ResultsConfig.from_environ(environment)


def test_environment_defaults() -> None:
    parsed = ResultsConfig.from_environ({"TABLE_NAME": "t", "ENDPOINT_NAME": "e", "PATH": "/bin"})

    assert (parsed.retention_days, parsed.inline_result_max_bytes) == (90, 16384)
