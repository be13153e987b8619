"""When a record that is not terminal is overdue: the rule the reconciler settles by and the CLI
reports by.

* ``SUBMITTED``: SageMaker drops a request that waited in its queue longer than
  ``RequestTTLSeconds`` and stops one that ran longer than ``InvocationTimeoutSeconds``, and
  writes the output or failure object as it finishes. So past
  ``submitted_at + RequestTTLSeconds + InvocationTimeoutSeconds + margin`` every
  object it will ever write for the request exists; the margin (``SUBMITTED_MARGIN``, 30
  minutes, unless ``submitted_margin`` says otherwise: the reconciler's
  ``SUBMITTED_MARGIN_SECONDS``) covers clock skew and SageMaker's own lag between finishing and
  writing.
* ``PENDING``: ingest's claim. Its message may still sit on the ingest queue, or on the ingest
  dead-letter queue waiting for ``asyncinfer redrive``, and a redelivery must still be able to
  submit it. No such message outlives ``ingest queue retention + dead-letter retention`` counted
  from the last claim (every attempt that claims rewrites ``updated_at``; SQS never keeps a
  message past its queue's retention period), so the deadline is
  ``updated_at + ingest retention + dead-letter retention + PENDING_MARGIN``.
* ``COMPLETED`` / ``FAILED``: terminal, no deadline.

This module ships in every function's asset: standard library and ``records`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from lambdas.common.clock import parse_timestamp
from lambdas.common.contract import (
    INVOCATION_TIMEOUT_SECONDS_DEFAULT,
    REQUEST_TTL_SECONDS_DEFAULT,
    Env,
)
from lambdas.common.records import InferenceRecord, Status

SUBMITTED_MARGIN = timedelta(minutes=30)
# The reconciler's variables that set deadlines (the stack also outputs them for the CLI).
DEADLINE_SETTINGS = (
    Env.REQUEST_TTL_SECONDS,
    Env.INVOCATION_TIMEOUT_SECONDS,
    Env.INGEST_QUEUE_RETENTION_SECONDS,
    Env.DEAD_LETTER_RETENTION_SECONDS,
    Env.SUBMITTED_MARGIN_SECONDS,
)
PENDING_MARGIN = timedelta(days=1)
# The stack's queue retentions (stacks/ingest.py, stacks/queues.py); the stack passes its
# values to the reconciler, these are what the CLI assumes.
INGEST_QUEUE_RETENTION_SECONDS_DEFAULT = 4 * 24 * 3600
DEAD_LETTER_RETENTION_SECONDS_DEFAULT = 14 * 24 * 3600


@dataclass(frozen=True)
class DeadlineRules:
    request_ttl_seconds: int = REQUEST_TTL_SECONDS_DEFAULT
    invocation_timeout_seconds: int = INVOCATION_TIMEOUT_SECONDS_DEFAULT
    ingest_queue_retention_seconds: int = INGEST_QUEUE_RETENTION_SECONDS_DEFAULT
    dead_letter_retention_seconds: int = DEAD_LETTER_RETENTION_SECONDS_DEFAULT
    submitted_margin: timedelta = SUBMITTED_MARGIN

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> DeadlineRules:
        """From the reconciler's deadline variables (``DEADLINE_SETTINGS``, by ``Env`` name),
        as the stack's ``ReconcileDeadlines`` output carries them; absent ones keep defaults."""

        def seconds(name: Env, default: int) -> int:
            return int(settings.get(name, default))

        return cls(
            request_ttl_seconds=seconds(Env.REQUEST_TTL_SECONDS, REQUEST_TTL_SECONDS_DEFAULT),
            invocation_timeout_seconds=seconds(
                Env.INVOCATION_TIMEOUT_SECONDS, INVOCATION_TIMEOUT_SECONDS_DEFAULT
            ),
            ingest_queue_retention_seconds=seconds(
                Env.INGEST_QUEUE_RETENTION_SECONDS, INGEST_QUEUE_RETENTION_SECONDS_DEFAULT
            ),
            dead_letter_retention_seconds=seconds(
                Env.DEAD_LETTER_RETENTION_SECONDS, DEAD_LETTER_RETENTION_SECONDS_DEFAULT
            ),
            submitted_margin=timedelta(
                seconds=seconds(Env.SUBMITTED_MARGIN_SECONDS, int(SUBMITTED_MARGIN.total_seconds()))
            ),
        )

    def window(self, status: Status) -> timedelta | None:
        """How long after its last write a record of this status may stay as it is."""
        if status == Status.SUBMITTED:
            seconds = self.request_ttl_seconds + self.invocation_timeout_seconds
            return timedelta(seconds=seconds) + self.submitted_margin
        if status == Status.PENDING:
            seconds = self.ingest_queue_retention_seconds + self.dead_letter_retention_seconds
            return timedelta(seconds=seconds) + PENDING_MARGIN
        return None

    def cutoff(self, status: Status, now: datetime) -> datetime | None:
        """Records of ``status`` last written before this moment are overdue."""
        window = self.window(status)
        return None if window is None else now - window

    def deadline(self, record: InferenceRecord) -> datetime | None:
        """The moment ``record`` is overdue; None for a terminal record (or one with no time)."""
        status = Status(record.status)
        window = self.window(status)
        if window is None:
            return None
        since = record.submitted_at if status == Status.SUBMITTED else None
        since = since or record.updated_at or record.created_at
        return parse_timestamp(since) + window if since else None

    def overdue(self, record: InferenceRecord, now: datetime) -> bool:
        deadline = self.deadline(record)
        return deadline is not None and deadline <= now
