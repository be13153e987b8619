"""One invocation's submissions: concurrent, deduplicated, counted, and mapped to retries.

SQS batches go through Powertools' ``AsyncBatchProcessor``: each message is one record
handler coroutine, so the partial-failure response (``batchItemFailures``) and its semantics
are Powertools'. A message fails, and comes back after its visibility timeout, when it is
malformed (it ends in the dead-letter queue after ``maxReceiveCount``) or when any object
version it names needs a retry; its other versions are idempotent on the retry.

The blocking work (DynamoDB, S3, SageMaker) runs on a thread pool of ``SUBMIT_CONCURRENCY``
workers created once per container: the pool is the bound, and a batch of ten costs about one
submission's latency. ``asyncio.to_thread`` is not used because the loop's default executor
has ``cpu_count + 4`` workers (6 on a 2-vCPU function), whatever the configured concurrency.
Each submission runs in a copy of the current context, so its logging keys (thread-safe
Powertools keys in a ``ContextVar``) belong to it alone.

Identical object versions within one invocation are submitted once: later copies wait for the
first and count as duplicates when it is done, or need a retry when it does.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import async_process_partial_response

from lambdas.ingest.events import (
    EventKind,
    Ignored,
    IgnoreReason,
    MalformedEventError,
    ObjectVersion,
    S3EventNotification,
    S3TestEvent,
    event_kind,
    names_manifest,
    parse_notification,
    select_object,
)
from lambdas.ingest.logic import Outcome, SubmitResult, Submitter
from lambdas.ingest.telemetry import InvocationTelemetry, Metric

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from lambdas.ingest.config import IngestConfig

_OUTCOME_METRICS = {
    Outcome.SUBMITTED: Metric.FILES_SUBMITTED,
    Outcome.REJECTED: Metric.INGEST_REJECTED,
    Outcome.DUPLICATE: Metric.DUPLICATES_SKIPPED,
    Outcome.DEFERRED: Metric.SUBMIT_FAILURES,
}


class RetryLaterError(Exception):
    """Some object versions of a message or event were not submitted; deliver it again."""

    def __init__(self, pending: list[SubmitResult]) -> None:
        self.pending = pending
        summary = ", ".join(
            f"{result.inference_id} ({result.outcome}: {result.reason})" for result in pending
        )
        super().__init__(f"{len(pending)} object version(s) need a retry: {summary}")


class BatchSubmission:
    """The submissions of one invocation. Use from one event loop; not reusable."""

    def __init__(
        self,
        *,
        config: IngestConfig,
        submitter: Submitter,
        executor: Executor,
        telemetry: InvocationTelemetry,
        logger: Logger,
        trace_id: str | None,
        remaining_seconds: Callable[[], float],
        forward_manifests: Callable[[str], None] | None = None,
    ) -> None:
        """``forward_manifests``: sends a message naming a job's manifest to the jobs queue
        (set when this function's notification covers the manifests: stacks/jobs.py)."""
        self._config = config
        self._submitter = submitter
        self._executor = executor
        self._telemetry = telemetry
        self._logger = logger
        self._trace_id = trace_id
        self._remaining_seconds = remaining_seconds
        self._started: dict[str, asyncio.Future[SubmitResult]] = {}
        self._forward_manifests = forward_manifests

    async def submit_message(self, record: SQSRecord) -> None:
        """Powertools record handler: raising marks the message as a batch item failure."""
        try:
            notification = parse_notification(record.body)
            if self._forward_manifests is not None and names_manifest(
                notification, self._config.jobs_prefix
            ):
                # before the submissions: a failed forward retries the message, and its
                # submissions are idempotent
                await asyncio.get_running_loop().run_in_executor(
                    self._executor, self._forward_manifests, record.body
                )
            results = await self.submit_notification(notification)
        except MalformedEventError as error:
            self._logger.error(
                "malformed message: not an S3 event notification; it will reach the DLQ",
                extra={"message_id": record.message_id, "error": str(error), "body": record.body},
            )
            raise
        pending = [result for result in results if result.needs_retry]
        if pending:
            retry = RetryLaterError(pending)
            self._logger.warning(
                "message returned to the queue for a retry",
                extra={"message_id": record.message_id, "error": str(retry)},
            )
            raise retry

    async def submit_notification(
        self, notification: S3EventNotification | S3TestEvent
    ) -> list[SubmitResult]:
        """Submit every selected version a notification names, concurrently."""
        if isinstance(notification, S3TestEvent):
            self._ignore(
                Ignored(IgnoreReason.TEST_EVENT, f"s3:TestEvent for {notification.bucket}")
            )
            return []
        targets: list[tuple[str, ObjectVersion]] = []
        for record in notification.records:
            selected = select_object(record, self._config)
            if isinstance(selected, Ignored):
                self._ignore(selected)
            else:
                # Computed before anything starts: a record without version id and ETag makes
                # the whole message malformed (MalformedEventError), not half-processed.
                targets.append((selected.inference_id, selected))
        return list(await asyncio.gather(*(self._submit_once(*target) for target in targets)))

    async def _submit_once(self, inference_id: str, target: ObjectVersion) -> SubmitResult:
        first = self._started.get(inference_id)
        if first is not None:
            earlier = await first
            if earlier.needs_retry:
                return earlier
            self._telemetry.count(Metric.DUPLICATES_SKIPPED)
            self._logger.info(
                "duplicate within the batch skipped",
                extra={"inference_id": inference_id, "input_location": target.input_location},
            )
            return SubmitResult(Outcome.DUPLICATE, inference_id)
        loop = asyncio.get_running_loop()
        started: asyncio.Future[SubmitResult] = loop.create_future()
        self._started[inference_id] = started
        context = contextvars.copy_context()
        try:
            result = await loop.run_in_executor(
                self._executor, context.run, self._submit_blocking, inference_id, target
            )
        except BaseException:
            # Copies waiting for this one must fail with it, not wait forever.
            started.set_exception(RuntimeError(f"the submission of {inference_id} was cut short"))
            raise
        started.set_result(result)
        self._count(result)
        return result

    def _submit_blocking(self, inference_id: str, target: ObjectVersion) -> SubmitResult:
        """Runs on a worker thread, in its own logging context."""
        self._logger.thread_safe_append_keys(
            inference_id=inference_id,
            input_location=target.input_location,
            correlation_id=inference_id,
        )
        try:
            return self._submitter.submit(
                target,
                trace_id=self._trace_id or inference_id,
                remaining_seconds=self._remaining_seconds,
            )
        except Exception as error:  # one record's fault never fails the others
            self._logger.exception("submission failed; the message will be retried")
            return SubmitResult(Outcome.DEFERRED, inference_id, reason=repr(error))

    def _count(self, result: SubmitResult) -> None:
        metric = _OUTCOME_METRICS.get(result.outcome)
        if metric is not None:
            self._telemetry.count(metric)
        if result.retries:
            self._telemetry.count(Metric.SUBMIT_RETRIES, result.retries)

    def _ignore(self, ignored: Ignored) -> None:
        self._telemetry.ignored(ignored.reason.value)
        self._logger.info(
            "event ignored", extra={"reason": ignored.reason, "detail": ignored.detail}
        )


def process_event(
    event: dict[str, Any],
    submission: BatchSubmission,
    processor: AsyncBatchProcessor,
    context: LambdaContext,
) -> PartialItemFailureResponse | None:
    """Either delivery: Powertools' partial batch response for an SQS batch, None for a direct
    S3 event. Raises ``MalformedEventError`` for an event that is neither."""
    if event_kind(event) is EventKind.SQS_BATCH:
        return _process_sqs_batch(event, submission, processor, context)
    _process_direct_event(event, submission)
    return None


def _process_sqs_batch(
    event: dict[str, Any],
    submission: BatchSubmission,
    processor: AsyncBatchProcessor,
    context: LambdaContext,
) -> PartialItemFailureResponse:
    """Powertools' partial batch response for an SQS event."""
    return async_process_partial_response(
        event=event, record_handler=submission.submit_message, processor=processor, context=context
    )


def _process_direct_event(event: dict[str, Any], submission: BatchSubmission) -> None:
    """A direct S3 -> Lambda event: submit every record, then raise ``RetryLaterError`` if any
    version needs a retry, so Lambda's asynchronous retries deliver the event again (the
    versions already submitted are duplicates then). A malformed event raises
    ``MalformedEventError``: retrying cannot fix it, and Lambda's on-failure destination
    keeps it."""
    notification = parse_notification(event)
    results = asyncio.run(submission.submit_notification(notification))
    pending = [result for result in results if result.needs_retry]
    if pending:
        raise RetryLaterError(pending)
