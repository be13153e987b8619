"""``watch``: one snapshot of the pipeline — counts, rates, latency percentiles, queue depths."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from asyncinfer.cli.access.messaging import Queues
from asyncinfer.cli.access.table import ResultsTable, TimeWindow
from lambdas.common.clock import format_timestamp, parse_timestamp
from lambdas.common.records import TERMINAL_STATUSES, InferenceRecord, Status

DETAIL_ATTRIBUTES = (
    "inference_id",
    "status",
    "updated_at",
    "submitted_at",
    "completed_at",
    "latency_ms",
)
PAGE_SIZE = 1000


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p95: float
    samples: int


@dataclass(frozen=True)
class QueueReport:
    name: str
    url: str
    visible: int
    in_flight: int
    dead_letter: bool


@dataclass(frozen=True)
class Snapshot:
    taken_at: str
    window_seconds: float
    rate_window_seconds: float
    counts: dict[str, int]
    submitted_per_second: float
    completed_per_second: float
    end_to_end_ms: Percentiles | None
    inference_ms: Percentiles | None
    queues: list[QueueReport]
    sampled: bool  # latency and rates come from the newest `max_records` records only

    @property
    def dead_letters(self) -> int:
        return sum(queue.visible + queue.in_flight for queue in self.queues if queue.dead_letter)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (always one of the observed values)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(math.ceil(fraction * len(ordered)), 1)
    return ordered[rank - 1]


def summarize_latency(values: Sequence[float]) -> Percentiles | None:
    if not values:
        return None
    return Percentiles(percentile(values, 0.50), percentile(values, 0.95), len(values))


def _milliseconds_between(start: str, end: str) -> float:
    return (parse_timestamp(end) - parse_timestamp(start)).total_seconds() * 1000.0


def summarize(
    records: Sequence[InferenceRecord],
    counts: dict[str, int],
    queues: list[QueueReport],
    *,
    now: datetime,
    window: timedelta,
    rate_window: timedelta,
    sampled: bool,
) -> Snapshot:
    rate_start = format_timestamp(now - rate_window)
    completed = [record for record in records if record.status == Status.COMPLETED]
    end_to_end = [
        _milliseconds_between(record.submitted_at, record.completed_at)
        for record in completed
        if record.submitted_at and record.completed_at
    ]
    inference = [float(record.latency_ms) for record in completed if record.latency_ms is not None]
    submitted_recently = sum(
        1 for record in records if record.submitted_at and record.submitted_at >= rate_start
    )
    finished_recently = sum(
        1
        for record in records
        if record.status in TERMINAL_STATUSES
        and record.completed_at
        and record.completed_at >= rate_start
    )
    seconds = rate_window.total_seconds()
    return Snapshot(
        taken_at=format_timestamp(now),
        window_seconds=window.total_seconds(),
        rate_window_seconds=seconds,
        counts=counts,
        submitted_per_second=submitted_recently / seconds,
        completed_per_second=finished_recently / seconds,
        end_to_end_ms=summarize_latency(end_to_end),
        inference_ms=summarize_latency(inference),
        queues=queues,
        sampled=sampled,
    )


def take_snapshot(
    table: ResultsTable,
    queues: Queues,
    queue_urls: Sequence[tuple[str, str, bool]],
    *,
    now: datetime,
    window: timedelta,
    rate_window: timedelta,
    max_records: int,
) -> Snapshot:
    """Counts by status over ``window`` (``ResultsTable.count_by_status``), and the
    newest records of that window for latency and rates. ``queue_urls``: (name, url, is_dlq)."""
    counted = TimeWindow(since=format_timestamp(now - window))
    counts = table.count_by_status(counted)
    detail_window = TimeWindow(since=format_timestamp(now - max(window, rate_window)))
    records: list[InferenceRecord] = []
    sampled = False
    for status in Status:
        start_key: dict[str, str] | None = None
        taken = 0
        while True:
            page = table.status_page(
                status,
                detail_window,
                limit=min(PAGE_SIZE, max_records - taken),
                start_key=start_key,
                projection=DETAIL_ATTRIBUTES,
            )
            records.extend(page.records)
            taken += len(page.records)
            start_key = page.last_key
            if start_key is None:
                break
            if taken >= max_records:
                sampled = True
                break
    reports = [
        QueueReport(name, url, depth.visible, depth.in_flight, dead_letter)
        for name, url, dead_letter in queue_urls
        for depth in (queues.depth(url),)
    ]
    return summarize(
        records,
        counts,
        reports,
        now=now,
        window=window,
        rate_window=rate_window,
        sampled=sampled,
    )
