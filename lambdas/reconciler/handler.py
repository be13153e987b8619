"""Lambda entry point of the reconciler function: ``lambdas.reconciler.handler.handler``.

On a schedule, settles records that are not terminal past their deadline; see
``lambdas.reconciler.logic`` for how.

The event (an EventBridge scheduled event) carries nothing the function needs: every run looks
at the table as it is. A run ends before the next one starts (its timeout is at most the
schedule's interval) and a failed run is not retried: the next scheduled run is the retry.
Overlapping runs would still be safe, since every write is guarded by the record as read.

The environment is validated and the AWS clients are created on the first invocation and then
kept for the container's life; importing this module does neither.
"""

from __future__ import annotations

import gc

gc.disable()  # the imports below allocate only long-lived objects: collecting is wasted CPU

import os
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics

from lambdas.common.collector import collector_paused
from lambdas.common.contract import STATUS_SHARD_INDEX
from lambdas.common.logs import function_logger
from lambdas.common.outputs import S3OutputReader, create_clients
from lambdas.common.store import RecordStore
from lambdas.common.tracing import traced
from lambdas.reconciler.clients import S3ObjectProbe, StateTable, StatusIndex
from lambdas.reconciler.config import ReconcilerConfig
from lambdas.reconciler.logic import Reconciler, RunReport
from lambdas.reconciler.review import Review

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = function_logger()
metrics = Metrics()

# Stop starting pages with less time than this left: a page of writes, then the metrics flush.
RESERVE_MILLISECONDS = 20_000


class ReconcileErrorsError(Exception):
    """Some records could not be checked; raised after the run so the Errors alarm sees it."""


@cache
@collector_paused()
def reconciler() -> Reconciler:
    """The container's reconciler (config, clients); cached, so built once per container."""
    config = ReconcilerConfig.from_environ(os.environ)
    clients = create_clients()
    s3 = clients.create_s3()  # every run probes inputs: one client for the probe and the reader
    store = RecordStore(clients.dynamodb, config.table_name)
    index = StatusIndex(clients.dynamodb, config.table_name, config.status_index)
    review = None
    if config.status_index == STATUS_SHARD_INDEX and config.state_table:
        review = Review(
            index=index,
            state=StateTable(clients.dynamodb, config.state_table),
            store=store,
            rules=config.rules,
            logger=logger,
        )
    return Reconciler(
        config=config,
        index=index,
        probe=S3ObjectProbe(s3),
        store=store,
        outputs=S3OutputReader(lambda: s3),
        metrics=metrics,
        logger=logger,
        review=review,
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
    report = reconciler().run(
        out_of_time=lambda: context.get_remaining_time_in_millis() < RESERVE_MILLISECONDS
    )
    if report.errors:
        raise ReconcileErrorsError(
            f"{len(report.errors)} records not checked: {'; '.join(report.errors[:5])}"
        )
    return summary(report)


gc.freeze()  # what the import loaded stays out of every later collection too
gc.enable()
