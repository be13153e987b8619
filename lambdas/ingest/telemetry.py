"""The ingest function's metrics, counted per invocation and published once at its end.

Counting happens on the event loop's thread only (worker threads return results, they never
touch the counters), and publishing hands the totals to Powertools ``Metrics`` on the handler's
thread, so the shared EMF metric set is never written concurrently. Every invocation publishes
every counter, zeros included, so alarms see data points rather than gaps.
"""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit, single_metric

if TYPE_CHECKING:
    from aws_lambda_powertools.metrics import Metrics


class Metric(StrEnum):
    FILES_SUBMITTED = "FilesSubmitted"
    DUPLICATES_SKIPPED = "DuplicatesSkipped"
    INGEST_REJECTED = "IngestRejected"
    SUBMIT_RETRIES = "SubmitRetries"
    SUBMIT_FAILURES = "SubmitFailures"
    EVENTS_IGNORED = "EventsIgnored"


REASON_DIMENSION = "reason"


class InvocationTelemetry:
    def __init__(self) -> None:
        self.counts: Counter[Metric] = Counter()
        self.ignored_by_reason: Counter[str] = Counter()

    def count(self, metric: Metric, value: int = 1) -> None:
        self.counts[metric] += value

    def ignored(self, reason: str) -> None:
        self.ignored_by_reason[reason] += 1

    def publish(self, metrics: Metrics) -> None:
        """Add the totals to ``metrics`` (flushed by ``log_metrics``); ``EventsIgnored`` is
        emitted per reason, with the reason as a dimension, in its own EMF document."""
        for metric in Metric:
            if metric is not Metric.EVENTS_IGNORED:
                metrics.add_metric(
                    name=metric.value, unit=MetricUnit.Count, value=self.counts[metric]
                )
        for reason, total in sorted(self.ignored_by_reason.items()):
            with single_metric(
                name=Metric.EVENTS_IGNORED.value,
                unit=MetricUnit.Count,
                value=total,
                namespace=metrics.namespace,
                default_dimensions=metrics.default_dimensions,
            ) as ignored:
                ignored.add_dimension(name=REASON_DIMENSION, value=reason)
