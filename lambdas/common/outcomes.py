"""Recording an outcome: the results function's notifications, and the reconciler's outcomes
found in S3, become terminal records in the results table through this one code.

Ordering: an outcome is applied only when no outcome with the same or a later ``eventTime``
(stored as ``completed_at``) is stored, which ``RecordStore.record_outcome`` enforces with one
conditional write. So a duplicate SNS delivery changes nothing (and counts no metric twice), an
older notification never overwrites a newer one, and a notification that arrives before the
ingest record creates the record from what the notification carries.

Failure policy: a message that cannot be parsed, or whose write fails, raises (the results
function then fails its invocation after every other record of the event was processed, so
Lambda's asynchronous retries and then the on-failure destination keep it). Reading the output
object for an inline result is best effort: if it fails the outcome is recorded without
``result``.

Metrics of outcomes go to the handler's Powertools ``Metrics`` with the ``EndpointName``
dimension; ignored notifications concern no endpoint of ours and are emitted without it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from pydantic import Field, ValidationError

from lambdas.common.clock import format_timestamp, parse_timestamp, utc_now
from lambdas.common.contract import INLINE_RESULT_CAP_BYTES, Env
from lambdas.common.environment import EnvironmentSettings
from lambdas.common.inline import TOO_LARGE, InlineResult, encode_inline
from lambdas.common.notification import (
    RESPONSE_BODY_BASE64,
    CompletedResponseParameters,
    InferenceCompleted,
    InferenceFailed,
    ResponseBody,
    TestNotification,
    parse_notification,
)
from lambdas.common.outputs import OutputReader, OutputUnavailableError
from lambdas.common.records import FailureStage, InferenceRecord, Status, expiry_epoch
from lambdas.common.s3uri import split_s3_location

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics

ENDPOINT_DIMENSION = "EndpointName"


class OutcomeMetric(StrEnum):
    INFERENCES_COMPLETED = "InferencesCompleted"
    INFERENCES_FAILED = "InferencesFailed"
    INFERENCE_LATENCY = "InferenceLatency"
    END_TO_END_LATENCY = "EndToEndLatency"
    TEST_NOTIFICATIONS_IGNORED = "TestNotificationsIgnored"
    UNKNOWN_ENDPOINT_IGNORED = "UnknownEndpointIgnored"


class OutcomeConfig(EnvironmentSettings):
    """The settings of recording an outcome, read from the same variables by the results
    function and the reconciler (each field's alias is its environment variable).

    ``INLINE_RESULT_MAX_BYTES`` limits reads of output objects from S3 (0 = never read). Above
    64 KiB it is rejected rather than silently clamped: the stored form of a result never
    exceeds that cap, so a larger read limit could only waste reads. A response body that
    SageMaker includes in the notification costs no read and is kept up to the same cap.
    """

    table_name: str = Field(alias=Env.TABLE_NAME, min_length=1)
    endpoint_name: str = Field(alias=Env.ENDPOINT_NAME, min_length=1)
    retention_days: int = Field(default=90, alias=Env.RETENTION_DAYS, ge=0)
    inline_result_max_bytes: int = Field(
        default=16384, alias=Env.INLINE_RESULT_MAX_BYTES, ge=0, le=INLINE_RESULT_CAP_BYTES
    )


class OutcomeStore(Protocol):
    def record_outcome(self, record: InferenceRecord) -> InferenceRecord | None: ...


class Disposition(StrEnum):
    """What became of one notification."""

    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    UNCHANGED = "UNCHANGED"  # a duplicate, or older than the stored outcome
    TEST_NOTIFICATION = "TEST_NOTIFICATION"
    UNKNOWN_ENDPOINT = "UNKNOWN_ENDPOINT"


class MalformedNotificationError(ValueError):
    """The message is not a SageMaker notification this code understands."""


def millis_between(start: datetime, end: datetime) -> int:
    return (end - start) // timedelta(milliseconds=1)


def outcome_record(
    notification: InferenceCompleted | InferenceFailed,
    *,
    now: datetime,
    retention_days: int,
    inline: InlineResult | None,
) -> InferenceRecord:
    """The terminal record a notification describes.

    It is complete enough to stand alone when the ingest record is missing: input location,
    endpoint, content type, accept and custom attributes come from ``requestParameters``, and
    ``created_at`` is SageMaker's ``receivedTime`` (the store keeps ingest's value when there is
    one, so the record still shows up in the by-input-location index).
    """
    request = notification.request_parameters
    # No inputLocation: the request carried its payload inline (Body).
    input_parts = split_s3_location(request.input_location) if request.input_location else None
    received = notification.received_time
    if isinstance(notification, InferenceCompleted):
        status = Status.COMPLETED
        response_content_type = notification.response_parameters.content_type
        output_location = notification.response_parameters.output_location
        failure_location = failure_reason = failure_stage = None
    else:
        status = Status.FAILED
        response = notification.response_parameters
        response_content_type = response.content_type if response else None
        output_location = None
        failure_location = response.failure_location if response else None
        failure_reason = notification.failure_reason
        failure_stage = FailureStage.INFERENCE
    return InferenceRecord(
        inference_id=notification.inference_id,
        status=status,
        input_location=request.input_location,
        input_bucket=input_parts[0] if input_parts else None,
        input_key=input_parts[1] if input_parts else None,
        content_type=request.content_type,
        accept=request.accept,
        custom_attributes=request.custom_attributes,
        endpoint_name=request.endpoint_name,
        output_location=output_location,
        failure_location=failure_location,
        failure_reason=failure_reason,
        failure_stage=failure_stage,
        created_at=format_timestamp(received or notification.event_time),
        received_at=format_timestamp(received) if received else None,
        completed_at=format_timestamp(notification.event_time),
        latency_ms=millis_between(received, notification.event_time) if received else None,
        response_content_type=response_content_type,
        result=inline.result if inline else None,
        result_encoding=inline.encoding if inline else None,
        updated_at=format_timestamp(now),
        expires_at=expiry_epoch(now, retention_days),
    )


def decode_response_body(body: ResponseBody, logger: Logger) -> bytes | None:
    """The bytes of an included inference response; None (logged) when it cannot be used."""
    if body.content is None:
        # Every output over the notification's limit arrives this way: not worth a line each.
        logger.debug("Notification carries no response content", extra={"detail": body.message})
        return None
    if (body.encoding or "").upper() != RESPONSE_BODY_BASE64:
        logger.warning("Response body encoding not supported", extra={"encoding": body.encoding})
        return None
    try:
        return base64.b64decode(body.content, validate=True)
    except binascii.Error as error:
        logger.warning("Response body is not valid base64", extra={"error": str(error)})
        return None


class OutcomeRecorder:
    """Applies notifications to the table and reports them as logs and metrics.

    Metrics of outcomes (``InferencesCompleted``, ``InferencesFailed``, ``InferenceLatency``,
    ``EndToEndLatency``) go to ``metrics`` with the ``EndpointName`` dimension; latencies are
    recorded for completed inferences only, so timeouts and crashes do not skew them. Ignored
    notifications are counted with ``single_metric`` (``TestNotificationsIgnored``,
    ``UnknownEndpointIgnored``) without that dimension: they concern no endpoint of ours.
    """

    def __init__(
        self,
        *,
        config: OutcomeConfig,
        store: OutcomeStore,
        outputs: OutputReader,
        metrics: Metrics,
        logger: Logger,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._config = config
        self._store = store
        self._outputs = outputs
        self._metrics = metrics
        self._logger = logger
        self._clock = clock
        metrics.set_default_dimensions(**{ENDPOINT_DIMENSION: config.endpoint_name})

    def process_message(self, message: str) -> Disposition:
        """Parses one SNS ``Message`` and applies it."""
        try:
            notification = parse_notification(message)
        except ValidationError as error:
            self._logger.error(
                "Malformed notification",
                extra={"raw_message": message, "validation_error": str(error)},
            )
            raise MalformedNotificationError(str(error)) from error
        if isinstance(notification, TestNotification):
            self._logger.info("TestNotification ignored")
            self._count_ignored(OutcomeMetric.TEST_NOTIFICATIONS_IGNORED)
            return Disposition.TEST_NOTIFICATION
        endpoint_name = notification.request_parameters.endpoint_name
        if endpoint_name != self._config.endpoint_name:
            self._logger.warning(
                "Notification for another endpoint ignored",
                extra={"endpoint_name": endpoint_name, "inference_id": notification.inference_id},
            )
            self._count_ignored(OutcomeMetric.UNKNOWN_ENDPOINT_IGNORED)
            return Disposition.UNKNOWN_ENDPOINT
        inference_id = notification.inference_id
        with self._logger.append_context_keys(
            inference_id=inference_id, correlation_id=inference_id
        ):
            try:
                return self._apply(notification)
            except Exception:
                self._logger.exception(
                    "Outcome not recorded: the invocation fails so Lambda retries it"
                )
                raise

    def _apply(self, notification: InferenceCompleted | InferenceFailed) -> Disposition:
        record = outcome_record(
            notification,
            now=self._clock(),
            retention_days=self._config.retention_days,
            inline=self._inline_result(notification),
        )
        stored = self._store.record_outcome(record)
        if stored is None:
            self._logger.info(
                "Duplicate or older notification: nothing changed",
                extra={"status": record.status, "completed_at": record.completed_at},
            )
            return Disposition.UNCHANGED
        self._log_outcome(record)
        if record.status == Status.FAILED:
            self._metrics.add_metric(
                name=OutcomeMetric.INFERENCES_FAILED.value, unit=MetricUnit.Count, value=1
            )
            return Disposition.FAILED
        self._metrics.add_metric(
            name=OutcomeMetric.INFERENCES_COMPLETED.value, unit=MetricUnit.Count, value=1
        )
        if record.latency_ms is not None:
            self._metrics.add_metric(
                name=OutcomeMetric.INFERENCE_LATENCY.value,
                unit=MetricUnit.Milliseconds,
                value=record.latency_ms,
            )
        if stored.submitted_at:
            # Lambda's and SageMaker's clocks differ slightly: a very fast inference may
            # appear to finish before it was submitted.
            end_to_end = millis_between(
                parse_timestamp(stored.submitted_at), notification.event_time
            )
            self._metrics.add_metric(
                name=OutcomeMetric.END_TO_END_LATENCY.value,
                unit=MetricUnit.Milliseconds,
                value=max(end_to_end, 0),
            )
        return Disposition.COMPLETED

    def _log_outcome(self, record: InferenceRecord) -> None:
        """A failed inference is one INFO line with its reason; a completed one is DEBUG only:
        the record holds every outcome, and a line per file would be most of the log bytes."""
        if record.status == Status.FAILED:
            self._logger.info(
                "Inference failed",
                extra={
                    "failure_stage": record.failure_stage,
                    "failure_reason": record.failure_reason,
                    "failure_location": record.failure_location,
                },
            )
            return
        self._logger.debug(
            "Outcome recorded",
            extra={
                "status": record.status,
                "latency_ms": record.latency_ms,
                "result_encoding": record.result_encoding,
            },
        )

    def _inline_result(
        self, notification: InferenceCompleted | InferenceFailed
    ) -> InlineResult | None:
        """The included response body if any, else (for a success, when configured) the
        output object if it is small enough."""
        response_content_type = (
            notification.response_parameters.content_type
            if notification.response_parameters
            else None
        )
        if notification.response_body is not None:
            body = decode_response_body(notification.response_body, self._logger)
            if body is not None:
                return encode_inline(body, response_content_type)
        if isinstance(notification, InferenceCompleted) and self._config.inline_result_max_bytes:
            return self._read_output(notification.response_parameters)
        return None

    def _read_output(self, response: CompletedResponseParameters) -> InlineResult | None:
        try:
            output = self._outputs.read_small(
                response.output_location, self._config.inline_result_max_bytes
            )
        except OutputUnavailableError as error:
            self._logger.warning(
                "Output object not readable: outcome recorded without an inline result",
                extra={"output_location": response.output_location, "error": str(error)},
            )
            return None
        if output.body is None:
            return TOO_LARGE
        return encode_inline(output.body, response.content_type or output.content_type)

    def _count_ignored(self, metric: OutcomeMetric) -> None:
        with single_metric(
            name=metric.value,
            unit=MetricUnit.Count,
            value=1,
            namespace=self._metrics.namespace,
        ):
            pass
