"""The review of the records the previous release filed in its write-once shards.

This release files open records under ``OPEN#<shard>``, where the reconciler finds them
directly (``Reconciler._drain``). The release before filed every record under its bare shard
(``00``..``15``) by ``status_time``, the claim's time, and never moved it; a record it left open
stays there until its outcome (written by this release) moves it. The index does not say which
of them are still open, so the reconciler reads each record there once, ``delay`` after its
claim (``delay`` = the ``SUBMITTED`` window, TTL + invocation timeout + margin: no record can
be overdue earlier; a ``PENDING`` record's window is longer). No record enters those shards any
more, so once the review has passed the deploy by ``delay`` and the records it deferred, each
run's review is a few empty Queries (and the review can go in a later release):

* terminal (nearly all): nothing to do;
* open and overdue: settled (``Reconciler.settle``, the same path as layout 1's);
* open, not yet overdue (a ``PENDING`` record whose message may still be redriven, or one
  submitted long after its claim): ``status_time`` is moved to its deadline minus ``delay``
  (``RecordStore.review_later``), where a later run finds it exactly when it can be overdue.

Progress: a run reviews ``(reviewed_until, now - delay]`` in every shard, in slices of at most
``slice_length`` (oldest first), and after each slice reviewed in all shards without error it
moves ``reviewed_until`` (the state table) to the slice's end. A failure, the settlement budget
or the time left stops the run before that: the next run reviews the slice again, which only
costs reads (every write is guarded by the record as read). Nothing claimed later can fall
behind ``reviewed_until``: a claim, a take-over and an outcome that creates an item file it at
their own time, and ``review_later`` moves records forward only.

Reads: one eventually consistent item read per file (0.5 read units for an item up to 4 KB)
plus its index entry; bench/cost.py counts them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from lambdas.common.clock import format_timestamp, parse_timestamp
from lambdas.common.contract import WRITE_ONCE_PARTITIONS
from lambdas.common.records import TERMINAL_STATUSES, InferenceRecord, Status
from lambdas.common.store import OutcomeGuard
from lambdas.reconciler.logic import RunReport, Settlement

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

    from lambdas.common.deadlines import DeadlineRules
    from lambdas.reconciler.clients import ReviewState, ShardWindow

# A slice is what one run can surely review in all shards: at 1,000 files a second, 300,000
# item reads, about 3,000 BatchGetItem calls.
REVIEW_SLICE = timedelta(minutes=5)
MAX_SLICE = timedelta(days=1)
ONE_MILLISECOND = timedelta(milliseconds=1)
Settle = Callable[[InferenceRecord, datetime], Settlement]


class Deferrer(Protocol):
    def review_later(self, inference_id: str, guard: OutcomeGuard, review_time: str) -> bool: ...

    def get(self, inference_id: str) -> InferenceRecord | None: ...


@dataclass
class _Run:
    now: datetime
    settle: Settle
    report: RunReport
    budget: int
    out_of_time: Callable[[], bool]


@dataclass(frozen=True, kw_only=True)
class Review:
    index: ShardWindow
    state: ReviewState
    store: Deferrer
    rules: DeadlineRules
    logger: Logger
    slice_length: timedelta = REVIEW_SLICE

    @property
    def delay(self) -> timedelta:
        window = self.rules.window(Status.SUBMITTED)
        if window is None:  # pragma: no cover - SUBMITTED always has a window
            raise ValueError("no SUBMITTED window")
        return window

    def run(
        self,
        now: datetime,
        settle: Settle,
        report: RunReport,
        budget: int,
        out_of_time: Callable[[], bool],
    ) -> int:
        """Reviews what is due, slice by slice; returns the settlement budget left."""
        run = _Run(now, settle, report, budget, out_of_time)
        end = format_timestamp(now - self.delay)
        lower = self.state.load()
        length = self.slice_length
        while lower is None or lower < end:
            upper = end
            if lower is not None:
                upper = min(end, format_timestamp(parse_timestamp(lower) + length))
            read_before = report.read
            if not self._slice((lower, upper), run) or not self.state.save(upper, lower):
                report.complete = False
                break
            lower = upper
            # a quiet stretch (a stack idle overnight, a reconciler that was off) is crossed
            # in longer slices; a run always starts short, so a busy slice always completes
            quiet = report.read == read_before
            length = min(length * 2, MAX_SLICE) if quiet else self.slice_length
        return run.budget

    def _slice(self, window: tuple[str | None, str], run: _Run) -> bool:
        """Reviews one slice in every shard; True when nothing was left undone."""
        done = True
        for shard in WRITE_ONCE_PARTITIONS:
            start_key = None
            while True:
                if run.out_of_time():
                    return False
                ids, start_key = self.index.ids(shard, window, start_key)
                run.report.pages += 1
                records = self.index.records(ids)
                for inference_id in ids:
                    record = records.get(inference_id)
                    if record is None or record.status in TERMINAL_STATUSES:
                        run.report.read += 1
                        continue  # gone (TTL) or finished: nearly every record
                    if run.budget <= 0:
                        return False
                    run.report.read += 1
                    run.budget -= 1
                    settlement = self._review(record, run)
                    run.report.add(settlement)
                    done = done and settlement is not Settlement.ERROR
                if start_key is None:
                    break
        return done

    def _review(self, record: InferenceRecord, run: _Run) -> Settlement:
        """Settles or defers an open record; once more if it changed while being looked at
        (a record that changed and is still open was claimed again, or submitted since)."""
        current: InferenceRecord | None = record
        for _ in range(2):
            if current is None or current.status in TERMINAL_STATUSES:
                return Settlement.UNCHANGED
            if self.rules.overdue(current, run.now):
                settlement = run.settle(current, run.now)
            else:
                settlement = self._defer(current, run.now)
            if settlement is not Settlement.UNCHANGED:
                return settlement
            current = self.store.get(record.inference_id)
        if current is None or current.status in TERMINAL_STATUSES:
            return Settlement.UNCHANGED
        run.report.errors.append(f"{record.inference_id}: changed twice while being reviewed")
        return Settlement.ERROR

    def _defer(self, record: InferenceRecord, now: datetime) -> Settlement:
        deadline = self.rules.deadline(record)
        if deadline is None or record.updated_at is None:
            self.logger.warning(
                "An open record without times: cannot judge its deadline",
                extra={"inference_id": record.inference_id},
            )
            return Settlement.NOT_DUE
        # strictly after this run's window, so it is never reviewed twice in one run
        review_at = max(deadline - self.delay, now - self.delay + ONE_MILLISECOND)
        guard = OutcomeGuard(Status(record.status), record.updated_at)
        if self.store.review_later(record.inference_id, guard, format_timestamp(review_at)):
            return Settlement.DEFERRED
        return Settlement.UNCHANGED
