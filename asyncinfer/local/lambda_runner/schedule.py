"""EventBridge schedule → Lambda (``ScheduleSourceSpec``): a rule's ``rate(...)`` as invocations.

At every period the source invokes the function with the event EventBridge sends for a
scheduled rule (``scheduled_event``; EventBridge User Guide, "Creating a rule that runs on a
schedule", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-rule-schedule.html,
and "Amazon EventBridge events", .../eb-events-structure.html):

    {"version": "0", "id": <uuid>, "detail-type": "Scheduled Event", "source": "aws.events",
     "account": <account>, "time": <UTC, seconds, Z>, "region": <region>,
     "resources": [<rule ARN>], "detail": {}}

EventBridge invokes a Lambda target asynchronously, so a failed run is retried as Lambda
retries async invocations: ``max_attempts`` in all (1 + the function's EventInvokeConfig
``MaximumRetryAttempts``; the reconciler's is 0: the next run is its retry), backoff doubling
from ``retry_backoff_seconds`` instead of one and two minutes. A run that fails every attempt
has no on-failure destination here: it is dropped (counted) as Lambda drops it.

Differences from AWS, on purpose: the first run comes one period after ``start()``; and runs do
not overlap: a tick that falls while a run (with its retries) is still going is skipped and
counted, where EventBridge would invoke again. The stack keeps a run shorter than the rate
(the reconciler's timeout is at most its interval), so with the template's rate both agree; a
local speed-up (``LocalOptions.schedule_period_seconds``) shorter than a run only skips ticks.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import datetime
from typing import Any

from asyncinfer.local.constants import ACCOUNT_ID
from asyncinfer.local.lambda_runner.pool import Outcome, WorkerPool
from asyncinfer.local.lambda_runner.source import Counters
from asyncinfer.local.provision.spec import ScheduleSourceSpec
from lambdas.common.clock import utc_now

logger = logging.getLogger(__name__)


def scheduled_event(
    rule_arn: str, region: str, moment: datetime, account: str = ACCOUNT_ID
) -> dict[str, Any]:
    """The event EventBridge delivers to a target of a scheduled rule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class ScheduleSource:
    """One scheduled rule: invokes its function every ``period_seconds``, one run at a time.

    Counters: ``batches`` and ``messages_delivered`` count invocations (attempts),
    ``succeeded`` runs that ended well, ``failed`` failed attempts, ``retried`` retry attempts,
    ``dropped`` runs that failed every attempt, ``abandoned`` runs cut by ``stop()``,
    ``worker_restarts`` workers lost; ``skipped_ticks`` ticks that fell during a run.
    """

    def __init__(
        self,
        spec: ScheduleSourceSpec,
        *,
        pool: WorkerPool,
        stopping: threading.Event,
        region: str,
        retry_backoff_seconds: float,
    ) -> None:
        if spec.period_seconds <= 0:
            raise ValueError(f"{spec.rule_arn}: the schedule period must be positive")
        if spec.max_attempts < 1:
            raise ValueError(f"{spec.rule_arn}: max_attempts must be at least 1")
        self.spec = spec
        self.key = spec.rule_arn
        self.counters = Counters(spec.rule_arn, spec.function.name)
        self._pool = pool
        self._stopping = stopping
        self._region = region
        self._retry_backoff_seconds = retry_backoff_seconds
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._skipped = 0
        self._runs = 0

    @property
    def skipped_ticks(self) -> int:
        with self._lock:
            return self._skipped

    @property
    def runs(self) -> int:
        """Runs started so far (each counted once, whatever its attempts)."""
        with self._lock:
            return self._runs

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name=f"schedule:{self.spec.function.name}", daemon=True
        )
        self._thread.start()

    def join(self, deadline: float) -> None:
        if self._thread is not None:
            self._thread.join(max(deadline - time.monotonic(), 0.0))

    def close(self) -> None:
        """Nothing to release: the thread ends with the shared stop event."""

    def _loop(self) -> None:
        period = self.spec.period_seconds
        next_tick = time.monotonic() + period
        while not self._stopping.wait(max(next_tick - time.monotonic(), 0.0)):
            self._run_once()
            next_tick += period
            now = time.monotonic()
            if next_tick <= now:
                missed = int((now - next_tick) // period) + 1
                next_tick += missed * period
                with self._lock:
                    self._skipped += missed

    def _run_once(self) -> None:
        with self._lock:
            self._runs += 1
        event = scheduled_event(self.spec.rule_arn, self._region, utc_now())
        for attempt in range(1, self.spec.max_attempts + 1):
            backoff = self._retry_backoff_seconds * 2 ** (attempt - 2) if attempt > 1 else 0
            if self._stopping.wait(backoff):
                self.counters.add(abandoned=1)
                return
            self.counters.add(batches=1, messages_delivered=1, retried=int(attempt > 1))
            invocation = self._pool.invoke(event)
            if invocation.outcome is Outcome.ABANDONED:
                self.counters.add(abandoned=1)
                return
            if invocation.worker_lost:
                self.counters.add(worker_restarts=1)
            if invocation.succeeded:
                self.counters.add(succeeded=1)
                return
            self.counters.add(failed=1)
            logger.info(
                "%s: scheduled run attempt %d of %d failed (%s: %s)",
                self.spec.function.name,
                attempt,
                self.spec.max_attempts,
                invocation.error_type,
                invocation.error_message,
            )
        logger.warning(
            "%s: scheduled run dropped after %d attempts: the next tick is the retry",
            self.spec.function.name,
            self.spec.max_attempts,
        )
        self.counters.add(dropped=1)
