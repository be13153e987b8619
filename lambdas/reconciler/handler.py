"""Reconciler function: on a schedule, settles records that are not terminal past their deadline.

The event (an EventBridge scheduled event) carries nothing the function needs: every run looks
at the table as it is. A run ends before the next one starts (its timeout is at most the
schedule's interval) and a failed run is not retried: the next scheduled run is the retry.
Overlapping runs would still be safe, since every write is guarded by the record as read.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from botocore.config import Config

from lambdas.common.store import RecordStore
from lambdas.common.tracing import traced
from lambdas.reconciler.clients import S3ObjectProbe, StatusIndex
from lambdas.reconciler.config import ReconcilerConfig
from lambdas.reconciler.logic import Reconciler, RunReport
from lambdas.results.clients import S3OutputReader

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()

S3_CLIENT_CONFIG = Config(
    connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
)
DYNAMODB_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})
# Stop starting pages with less time than this left: a page of writes, then the metrics flush.
RESERVE_MILLISECONDS = 20_000


class ReconcileErrorsError(Exception):
    """Some records could not be checked; raised after the run so the Errors alarm sees it."""


@cache
def clients() -> tuple[ReconcilerConfig, StatusIndex, S3ObjectProbe, RecordStore, S3OutputReader]:
    config = ReconcilerConfig.from_environ(os.environ)
    dynamodb = boto3.client("dynamodb", config=DYNAMODB_CLIENT_CONFIG)
    s3 = boto3.client("s3", config=S3_CLIENT_CONFIG)
    return (
        config,
        StatusIndex(dynamodb, config.table_name, config.status_index),
        S3ObjectProbe(s3),
        RecordStore(dynamodb, config.table_name),
        S3OutputReader(s3),
    )


def summary(report: RunReport) -> dict[str, Any]:
    return {
        "read": report.read,
        "pages": report.pages,
        "settled": {name.value: count for name, count in report.settled.items()},
        "errors": len(report.errors),
        "complete": report.complete,
    }


@logger.inject_lambda_context(clear_state=True)
@traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config, index, probe, store, outputs = clients()
    report = Reconciler(
        config=config,
        index=index,
        probe=probe,
        store=store,
        outputs=outputs,
        metrics=metrics,
        out_of_time=lambda: context.get_remaining_time_in_millis() < RESERVE_MILLISECONDS,
    ).run()
    if report.errors:
        raise ReconcileErrorsError(
            f"{len(report.errors)} records not checked: {'; '.join(report.errors[:5])}"
        )
    return summary(report)
