"""What the ingest function does with one S3 record: decide, describe, claim, submit, record.

Inference id (clients can compute it from an upload's response)::

    sha256("s3://{bucket}/{key}?versionId={version_id}")   # versioned object
    sha256("s3://{bucket}/{key}?etag={etag}")              # no version id, or version "null"

as 64 lower-case hex characters, with the key decoded (as stored in S3) and the ETag without
quotes; see ``lambdas.common.records.inference_id_for``. One object version therefore always
maps to one inference id, however often its event is delivered.

Flow for one object version (``Submitter.submit``):

1. Claim the version in the results table (a ``PENDING`` item with a lease that outlives this
   invocation). A submitted or finished version is a duplicate delivery: skipped. A live claim
   of a concurrent delivery: reported for a later retry. An expired claim (an attempt that
   crashed between claiming and recording its outcome) is taken over with the same id; if
   that attempt had already invoked, the endpoint sees the id twice (at-least-once), and the
   results function still keeps one record. The writes that settle the claim (``SUBMITTED``,
   ``FAILED``) are tried again through a table outage (throttling, a 5xx, no answer) while the
   invocation's time allows (``_persist``); a permanent error (a missing table, denied access)
   is not. So only a crash, or an outage outlasting the invocation, between
   SageMaker's answer and that write leaves a claim whose request was sent.
2. Prepare (``lambdas.ingest.prepare``): size (from the event) within ``MAX_INPUT_BYTES``. An
   input of at most ``inline_input_max_bytes`` is read at the announced version and sent as
   ``Body``, so the endpoint processes exactly the uploaded bytes; a larger one goes by
   ``InputLocation`` (within 1024 characters), and the object must still be the version the
   event names (SageMaker reads the *current* object when it processes the request). A
   version that can no longer be read, or was overwritten before a by-location submission,
   custom attributes beyond the API's 1024 visible US-ASCII characters: each records
   ``FAILED`` at stage ``ingest`` with a reason, and is never retried. With
   ``output_naming = input`` the request names the output's folder and file.
3. ``InvokeEndpointAsync`` with the inference id. ``ValidationError`` records ``FAILED`` with
   SageMaker's message. Throttling, 5xx, ``ModelNotReady`` and connection errors are retried
   with full-jitter exponential backoff while the invocation's remaining time allows; then
   the version is left ``PENDING`` (its lease expires) and reported for a later retry. (A
   read timeout is retried too: SageMaker may then queue the request twice, both with the
   same inference id, so the results table still holds one record for the version.)
4. Record ``SUBMITTED`` with the output and failure locations from the response (never
   guessed: ``input_location`` stays ``s3://bucket/key`` whichever way the bytes travelled).

Powertools' idempotency utility is deliberately not used: the record is the idempotency
record. The conditional claim on the inference id, with its lease, is stronger than the
utility's cache: it knows a version submitted or finished by any earlier delivery however old,
tells a live concurrent attempt from a crashed one, and lets a redelivery take over a crashed
attempt with the same inference id, where the cache would only replay or expire a stored
response. And a second table for the utility would double the writes for every object.

Record selection lives next to the event models (``events``), the request attributes in
``attributes``, and what the SDK's errors mean in the data-access layer (``clients``): this
module sees only the project's own exceptions.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING

from lambdas.common.backoff import Backoff
from lambdas.common.clock import format_timestamp, utc_now
from lambdas.common.records import InferenceRecord, Status, expiry_epoch
from lambdas.common.store import ClaimOutcome, ClaimWriteError, RecordStore
from lambdas.ingest.clients import (
    INVOKE_ATTEMPT_MAX_SECONDS,
    AsyncInvoker,
    InvocationRejectedError,
    InvocationRetryableError,
    ObjectInspector,
)
from lambdas.ingest.prepare import Preparer, Rejection
from lambdas.ingest.values import InvocationRequest

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

    from lambdas.ingest.config import IngestConfig
    from lambdas.ingest.events import ObjectVersion
    from lambdas.ingest.payload import InputReader

# Time kept in hand when deciding whether another attempt fits: one attempt at its slowest,
# plus the DynamoDB write that records it and the metrics flush.
RESERVE_SECONDS = INVOKE_ATTEMPT_MAX_SECONDS + 3.0
# A first attempt starts with at least this much time left (a claim, a HeadObject, one call
# and a write usually take well under a second). Even a short function timeout submits; if
# the invocation is cut short anyway, the claim's lease expires and the redelivery takes over.
MINIMUM_START_SECONDS = 2.0
# A claim's lease outlives the invocation by this much, so clock skew between containers
# cannot let a second attempt take over a claim whose owner is still running. The ingest
# queue's visibility timeout (6x the function timeout) is far longer, so a redelivery always
# finds the lease of a crashed attempt expired.
LEASE_MARGIN_SECONDS = 10
# A write to the claim is not tried again with less than this left: it must land before the
# lease (the invocation's end plus LEASE_MARGIN_SECONDS) can pass.
WRITE_RESERVE_SECONDS = 1.0
BACKOFF_BASE_SECONDS = 0.2
BACKOFF_CAP_SECONDS = 5.0


class Outcome(StrEnum):
    SUBMITTED = "submitted"  # invoked, record SUBMITTED
    REJECTED = "rejected"  # record FAILED at ingest, never retried
    DUPLICATE = "duplicate"  # already submitted or finished: nothing done
    IN_PROGRESS = "in_progress"  # a concurrent delivery holds a live claim: retry later
    DEFERRED = "deferred"  # not submitted in this invocation (retries exhausted the time)


@dataclass(frozen=True)
class SubmitResult:
    outcome: Outcome
    inference_id: str
    retries: int = 0
    reason: str | None = None

    @property
    def needs_retry(self) -> bool:
        return self.outcome in (Outcome.IN_PROGRESS, Outcome.DEFERRED)


class Submitter:
    """Submits object versions, one call per version; safe to share between threads."""

    def __init__(
        self,
        *,
        config: IngestConfig,
        store: RecordStore,
        inspector: ObjectInspector,
        reader: InputReader,
        invoker: AsyncInvoker,
        logger: Logger,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        backoff: Backoff | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._preparer = Preparer(config=config, inspector=inspector, reader=reader)
        self._invoker = invoker
        self._logger = logger
        self._clock = clock
        self._sleep = sleep
        self._backoff = backoff or Backoff(BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS)

    def submit(
        self, target: ObjectVersion, *, trace_id: str, remaining_seconds: Callable[[], float]
    ) -> SubmitResult:
        """Run the whole flow for one version (see the module docstring).

        ``remaining_seconds`` is the invocation's remaining time; ``trace_id`` goes into the
        custom attributes. Infrastructure errors other than the classified SageMaker ones
        propagate (the caller leaves the message for a retry).
        """
        inference_id = target.inference_id
        if remaining_seconds() < MINIMUM_START_SECONDS:
            return SubmitResult(
                Outcome.DEFERRED, inference_id, reason="too little time left in this invocation"
            )
        now = self._clock()
        record = self._pending_record(target, now)
        token = uuid.uuid4().hex
        epoch = int(now.timestamp())
        lease_until = epoch + math.ceil(remaining_seconds()) + LEASE_MARGIN_SECONDS
        claim = self._store.claim(record, token=token, lease_until=lease_until, now=epoch)
        if claim.outcome is ClaimOutcome.ALREADY_DONE:
            status = claim.existing.status if claim.existing else "unknown"
            self._logger.info("duplicate delivery skipped", extra={"stored_status": status})
            return SubmitResult(Outcome.DUPLICATE, inference_id)
        if claim.outcome is ClaimOutcome.IN_PROGRESS:
            self._logger.info("another delivery holds a live claim; retrying later")
            return SubmitResult(
                Outcome.IN_PROGRESS, inference_id, reason="claimed by a concurrent delivery"
            )
        if claim.outcome is ClaimOutcome.TAKEN_OVER:
            self._logger.warning("took over the expired claim of an attempt that stopped early")

        prepared = self._preparer.prepare(target, trace_id)
        if isinstance(prepared, Rejection):
            if prepared.input_size is not None:
                record = record.model_copy(update={"input_size": prepared.input_size})
            return self._reject(record, token, prepared.reason, remaining_seconds)
        record = record.model_copy(
            update={
                "content_type": prepared.content_type,
                "custom_attributes": prepared.custom_attributes,
                "input_size": prepared.input_size,
            }
        )
        request = InvocationRequest(
            endpoint_name=self._config.endpoint_name,
            inference_id=inference_id,
            content_type=prepared.content_type,
            accept=self._config.accept,
            custom_attributes=prepared.custom_attributes,
            request_ttl_seconds=self._config.request_ttl_seconds,
            invocation_timeout_seconds=self._config.invocation_timeout_seconds,
            input_location=prepared.input_location,
            body=prepared.body,
            output_path_extension=prepared.output_path_extension,
            filename=prepared.filename,
        )
        return self._invoke(request, record, token, remaining_seconds)

    def _pending_record(self, target: ObjectVersion, now: datetime) -> InferenceRecord:
        """The claim's record: what the event and the configuration tell about the version."""
        stamp = format_timestamp(now)
        return InferenceRecord(
            inference_id=target.inference_id,
            status=Status.PENDING,
            input_location=target.input_location,
            input_bucket=target.bucket,
            input_key=target.key,
            input_version=target.version_id,
            input_size=target.size,
            accept=self._config.accept,
            endpoint_name=self._config.endpoint_name,
            created_at=stamp,
            updated_at=stamp,
            expires_at=expiry_epoch(now, self._config.retention_days),
        )

    def _invoke(
        self,
        request: InvocationRequest,
        record: InferenceRecord,
        token: str,
        remaining_seconds: Callable[[], float],
    ) -> SubmitResult:
        retries = 0
        while True:
            try:
                response = self._invoker.invoke(request)
                break
            except InvocationRejectedError as error:
                reason = f"SageMaker rejected the request: {error}"
                return self._reject(record, token, reason, remaining_seconds, retries=retries)
            except InvocationRetryableError as error:
                delay = self._backoff.delay(retries)
                if remaining_seconds() - delay < RESERVE_SECONDS:
                    self._logger.warning(
                        "not submitted in this invocation; the message will be retried",
                        extra={"retries": retries, "error": str(error)},
                    )
                    return SubmitResult(Outcome.DEFERRED, record.inference_id, retries, str(error))
                self._logger.info(
                    "retrying InvokeEndpointAsync",
                    extra={"retry": retries + 1, "delay_s": round(delay, 3), "error": str(error)},
                )
                self._sleep(delay)
                retries += 1
        stamp = format_timestamp(self._clock())
        submitted = record.model_copy(
            update={
                "submitted_at": stamp,
                "updated_at": stamp,
                "output_location": response.output_location,
                "failure_location": response.failure_location,
            }
        )
        recorded = partial(self._store.mark_submitted, submitted, token=token)
        if not self._persist(recorded, remaining_seconds):
            self._logger.info("the result was recorded first; filled in the ingest fields")
        # DEBUG: the happy path is the record itself (SUBMITTED, with its locations) and the
        # FilesSubmitted metric; a line per file would be most of the function's log bytes.
        self._logger.debug(
            "submitted",
            extra={"output_location": response.output_location, "retries": retries},
        )
        return SubmitResult(Outcome.SUBMITTED, record.inference_id, retries)

    def _persist(self, write: Callable[[], bool], remaining_seconds: Callable[[], float]) -> bool:
        """A write that settles our claim (``write``), tried again through a table outage while
        the invocation's time allows: once the claim's lease passes, a redelivery takes the
        version over and, for a request already accepted, sends it again. Returns the
        write's answer; its last error propagates."""
        attempt = 0
        while True:
            try:
                return write()
            except ClaimWriteError as error:
                delay = self._backoff.delay(attempt)
                if remaining_seconds() - delay < WRITE_RESERVE_SECONDS:
                    raise
                self._logger.info(
                    "retrying a write to the claim",
                    extra={"retry": attempt + 1, "error": str(error)},
                )
                self._sleep(delay)
                attempt += 1

    def _reject(
        self,
        record: InferenceRecord,
        token: str,
        reason: str,
        remaining_seconds: Callable[[], float],
        *,
        retries: int = 0,
    ) -> SubmitResult:
        failed_at = format_timestamp(self._clock())
        failed = partial(
            self._store.mark_failed, record, token=token, reason=reason, failed_at=failed_at
        )
        if not self._persist(failed, remaining_seconds):
            self._logger.info("the result was recorded first; filled in the ingest fields")
        self._logger.warning("rejected at ingest", extra={"failure_reason": reason})
        return SubmitResult(Outcome.REJECTED, record.inference_id, retries, reason)
