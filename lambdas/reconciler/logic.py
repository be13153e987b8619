"""Settles records that are not terminal past their deadline (``lambdas.common.deadlines``).

For each overdue record (found oldest first, a page at a time, through layout 1's ``by_status``
index or layout 2's ``OPEN#nn`` partitions of ``by_status_shard``, and for what the previous
release left in its write-once shards by the review of ``lambdas/reconciler/review.py``):

* ``SUBMITTED`` with an output object at the ``output_location`` ingest recorded: SageMaker
  finished, its notification was lost. The reconciler hands the outcome recorder the results
  function uses too (``lambdas.common.outcomes.OutcomeRecorder``) the success notification
  SageMaker would have sent (``eventTime`` = the object's LastModified, ``receivedTime`` =
  ``submitted_at``), so the outcome is recorded by the very same code: the same record, inline
  result and conditional monotonic write.
* ``SUBMITTED`` with a failure object at ``failure_location``: the same, as an error
  notification whose ``failureReason`` is the object's text (SageMaker stores the failure
  response payload there).
* neither, or ``PENDING`` (its messages can no longer exist): ``FAILED`` with
  ``failure_stage = expired``, ``completed_at`` = now, and a reason naming the deadline.

Which wins against a real notification that arrives later: the store's one rule, the newest
``completed_at`` (SageMaker's ``eventTime``). An outcome found in S3 carries the object's own
time, so the late notification of the same object refines the timing fields at most, never the
outcome. An expiry carries the time it was decided, after every moment SageMaker can report for
the request, so a late notification changes nothing: an expired record stays expired.

Every write is guarded by the status and ``updated_at`` the reconciler read (``OutcomeGuard``):
whatever happened to a record since (a result, a redriven ingest message taking over a claim)
wins, and the reconciler leaves it alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from lambdas.common.clock import format_timestamp, utc_now
from lambdas.common.deadlines import PENDING_MARGIN
from lambdas.common.outcomes import Disposition, OutcomeRecorder
from lambdas.common.outputs import OutputReader
from lambdas.common.records import FailureStage, InferenceRecord, Status, expiry_epoch
from lambdas.common.s3uri import split_s3_location
from lambdas.common.store import OutcomeGuard
from lambdas.reconciler.clients import (
    FoundObject,
    ObjectProbe,
    OverdueIndex,
    ReconcilerAwsError,
)
from lambdas.reconciler.config import ReconcilerConfig
from lambdas.reconciler.telemetry import ENDPOINT_DIMENSION, Metric

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

FAILURE_TEXT_MAX_BYTES = 1024


class OutcomeWriter(Protocol):
    def record_outcome(
        self, record: InferenceRecord, *, guard: OutcomeGuard | None = None
    ) -> InferenceRecord | None: ...


class Settlement(StrEnum):
    COMPLETED = "completed"  # an output object was found
    FAILED = "failed"  # a failure object was found
    EXPIRED = "expired"  # nothing was found by the deadline
    UNCHANGED = "unchanged"  # the record changed since it was read: left as it is
    NOT_DUE = "not_due"  # its own deadline has not passed
    DEFERRED = "deferred"  # not yet overdue: filed for review at its deadline (review.py)
    ERROR = "error"  # S3 or the table failed: tried again at the next run


@dataclass
class RunReport:
    read: int = 0
    pages: int = 0
    settled: dict[Settlement, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    complete: bool = True  # False when a page budget or the time left stopped the run

    def count(self, settlement: Settlement) -> int:
        return self.settled.get(settlement, 0)

    def add(self, settlement: Settlement) -> None:
        self.settled[settlement] = self.count(settlement) + 1


class _GuardedStore:
    """The recorder's store, writing only if the record is still as the reconciler read it."""

    def __init__(self, store: OutcomeWriter, guard: OutcomeGuard) -> None:
        self._store = store
        self._guard = guard

    def record_outcome(self, record: InferenceRecord) -> InferenceRecord | None:
        return self._store.record_outcome(record, guard=self._guard)


class ReviewWalk(Protocol):
    """The review of the sharded status index (``lambdas.reconciler.review.Review``)."""

    def run(
        self,
        now: datetime,
        settle: Callable[[InferenceRecord, datetime], Settlement],
        report: RunReport,
        budget: int,
        out_of_time: Callable[[], bool],
    ) -> int: ...


def _never() -> bool:
    return False


@dataclass(frozen=True, kw_only=True)
class Reconciler:
    """Settles overdue records; built once per container (``handler.reconciler``), with the
    handler's ``metrics`` and ``logger`` injected as the results function's recorder is."""

    config: ReconcilerConfig
    index: OverdueIndex
    probe: ObjectProbe
    store: OutcomeWriter
    outputs: OutputReader
    metrics: Metrics
    logger: Logger
    clock: Callable[[], datetime] = utc_now
    out_of_time: Callable[[], bool] = _never
    # layout 2: ``index`` drains the OPEN#nn partitions, and the review reads what the previous
    # release filed in its write-once shards; layout 1: None, ``index`` finds them all itself
    review: ReviewWalk | None = None

    def run(self, out_of_time: Callable[[], bool] | None = None) -> RunReport:
        """One pass over both statuses, bounded by ``max_records`` and the time left
        (``out_of_time``, per invocation; the instance's own by default)."""
        if out_of_time is not None:
            return replace(self, out_of_time=out_of_time).run()
        now = self.clock()
        report = RunReport()
        # the dimension the alarm and the widget select (the outcomes' metrics have it)
        self.metrics.set_default_dimensions(**{ENDPOINT_DIMENSION: self.config.endpoint_name})
        budget = self.config.max_records
        for status in (Status.SUBMITTED, Status.PENDING):
            budget = self._drain(status, now, budget, report)
        if self.review is not None:
            budget = self.review.run(
                now,
                lambda record, moment: self._settle_logged(record, moment, report),
                report,
                budget,
                self.out_of_time,
            )
        settled = sum(report.count(s) for s in (Settlement.COMPLETED, Settlement.FAILED))
        settled += report.count(Settlement.EXPIRED)
        self.metrics.add_metric(
            name=Metric.INFERENCES_SETTLED, unit=MetricUnit.Count, value=settled
        )
        self.metrics.add_metric(
            name=Metric.INFERENCES_EXPIRED,
            unit=MetricUnit.Count,
            value=report.count(Settlement.EXPIRED),
        )
        self.logger.info(
            "Reconciler run done",
            extra={
                "read": report.read,
                "pages": report.pages,
                "settled": {name.value: count for name, count in report.settled.items()},
                "errors": len(report.errors),
                "complete": report.complete,
            },
        )
        return report

    def _drain(self, status: Status, now: datetime, budget: int, report: RunReport) -> int:
        cutoff = self.config.rules.cutoff(status, now)
        if cutoff is None:
            return budget
        start_key: dict[str, AttributeValueTypeDef] | None = None
        while True:
            if budget <= 0 or self.out_of_time():
                report.complete = False
                return budget
            page = self.index.page(status, cutoff, min(self.config.page_size, budget), start_key)
            report.pages += 1
            for record in page.records:
                report.read += 1
                budget -= 1
                report.add(self._settle_logged(record, now, report))
            if page.next_key is None:
                return budget
            start_key = page.next_key

    def _settle_logged(
        self, record: InferenceRecord, now: datetime, report: RunReport
    ) -> Settlement:
        logger = self.logger
        with logger.append_context_keys(
            inference_id=record.inference_id, correlation_id=record.inference_id
        ):
            try:
                settlement = self.settle(record, now)
            except ReconcilerAwsError as error:
                logger.warning(
                    "Not settled: tried again at the next run", extra={"error": str(error)}
                )
                report.errors.append(f"{record.inference_id}: {error}")
                return Settlement.ERROR
            except Exception as error:  # one record never stops the run; the run then fails
                logger.exception("Not settled: tried again at the next run")
                report.errors.append(f"{record.inference_id}: {type(error).__name__}: {error}")
                return Settlement.ERROR
            logger.info(
                "Reconciled",
                extra={"settlement": settlement.value, "inference_id": record.inference_id},
            )
            return settlement

    def settle(self, record: InferenceRecord, now: datetime) -> Settlement:
        """Settle one record that the index returned as possibly overdue."""
        if not self.config.rules.overdue(record, now) or record.updated_at is None:
            return Settlement.NOT_DUE
        guard = OutcomeGuard(Status(record.status), record.updated_at)
        if record.status == Status.SUBMITTED:
            found = self._from_objects(record, guard)
            if found is not None:
                return found
        return self._expire(record, guard, now)

    def _from_objects(self, record: InferenceRecord, guard: OutcomeGuard) -> Settlement | None:
        output = self._find(record.output_location)
        if output is not None:
            message = self._notification(record, output, failure_reason=None)
            return self._apply(message, guard, Settlement.COMPLETED)
        failure = self._find(record.failure_location)
        if failure is not None:
            text = self.probe.read_text(failure.location, FAILURE_TEXT_MAX_BYTES).strip()
            reason = (
                f"{text or '(empty failure object)'} (read from {failure.location}: the error "
                "notification never arrived)"
            )
            message = self._notification(record, failure, failure_reason=reason)
            return self._apply(message, guard, Settlement.FAILED)
        return None

    def _readable(self, location: str | None) -> bool:
        parts = split_s3_location(location) if location else None
        return (
            parts is not None
            and bool(self.config.output_bucket)
            and (parts[0] == self.config.output_bucket)
        )

    def _find(self, location: str | None) -> FoundObject | None:
        if location is None or not self._readable(location):
            return None
        return self.probe.find(location)

    def _notification(
        self, record: InferenceRecord, found: FoundObject, *, failure_reason: str | None
    ) -> str:
        """The notification SageMaker sent, or would have, for what it wrote to S3."""
        request = {
            # this stack's endpoint, even for a record of an endpoint replaced since: the
            # evidence is the object in S3, and the record keeps its own endpoint_name
            "endpointName": self.config.endpoint_name,
            "inputLocation": record.input_location,
            "contentType": record.content_type,
            "accept": record.accept,
            "customAttributes": record.custom_attributes,
        }
        message: dict[str, Any] = {
            "eventSource": "aws:sagemaker",
            "eventName": "InferenceResult",
            "eventVersion": "1.0",
            "eventTime": format_timestamp(found.last_modified),
            "receivedTime": record.submitted_at or record.updated_at,
            "inferenceId": record.inference_id,
            "requestParameters": {k: v for k, v in request.items() if v is not None},
        }
        if failure_reason is None:
            message["invocationStatus"] = "Completed"
            response = {"outputLocation": found.location, "contentType": found.content_type}
        else:
            message["invocationStatus"] = "Failed"
            message["failureReason"] = failure_reason
            response = {"failureLocation": found.location, "contentType": found.content_type}
        message["responseParameters"] = {k: v for k, v in response.items() if v is not None}
        return json.dumps(message)

    def _apply(self, message: str, guard: OutcomeGuard, settled: Settlement) -> Settlement:
        recorder = OutcomeRecorder(
            config=self.config,
            store=_GuardedStore(self.store, guard),
            outputs=self.outputs,
            metrics=self.metrics,
            clock=self.clock,
            logger=self.logger,
        )
        disposition = recorder.process_message(message)
        if disposition in (Disposition.COMPLETED, Disposition.FAILED):
            return settled
        return Settlement.UNCHANGED

    def _expire(self, record: InferenceRecord, guard: OutcomeGuard, now: datetime) -> Settlement:
        stamp = format_timestamp(now)
        expired = record.model_copy(
            update={
                "status": Status.FAILED,
                "failure_stage": FailureStage.EXPIRED,
                "failure_reason": self._expiry_reason(record),
                "completed_at": stamp,
                "updated_at": stamp,
                "expires_at": expiry_epoch(now, self.config.retention_days),
            }
        )
        if self.store.record_outcome(expired, guard=guard) is None:
            return Settlement.UNCHANGED
        return Settlement.EXPIRED

    def _expiry_reason(self, record: InferenceRecord) -> str:
        rules = self.config.rules
        deadline = rules.deadline(record)
        shown = format_timestamp(deadline) if deadline else "unknown"
        if record.status == Status.PENDING:
            return (
                f"expired: never submitted by the deadline {shown} (last claimed at "
                f"{record.updated_at}, + ingest queue retention "
                f"{rules.ingest_queue_retention_seconds} s + dead-letter retention "
                f"{rules.dead_letter_retention_seconds} s + margin "
                f"{int(PENDING_MARGIN.total_seconds())} s: no ingest message can remain)"
            )
        checked = [
            location
            for location in (record.output_location, record.failure_location)
            if location and self._readable(location)
        ]
        found = (
            f"nothing at {' or '.join(checked)}"
            if checked
            else "output and failure locations not readable by the reconciler, not checked"
        )
        return (
            f"expired: no outcome by the deadline {shown} (submitted_at {record.submitted_at} "
            f"+ RequestTTLSeconds {rules.request_ttl_seconds} s + InvocationTimeoutSeconds "
            f"{rules.invocation_timeout_seconds} s + margin "
            f"{int(rules.submitted_margin.total_seconds())} s); {found}"
        )
