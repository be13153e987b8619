"""Lambda entry point of the jobs function: ``lambdas.jobs.handler.handler``.

Two deliveries: an SQS batch of the jobs queue (manifests and outcome events; Powertools'
partial batch response: a failed message comes back after its visibility timeout and reaches
the dead-letter queue after ``maxReceiveCount``), and the schedule's event (the sweep; a failed
run is not retried, the next run is). ``lambdas.jobs.logic`` has what happens and why it is
exactly once.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)

from lambdas.common.logs import function_logger
from lambdas.common.tracing import traced
from lambdas.jobs.clients import (
    DynamoJobLedger,
    DynamoRecordReader,
    S3JobObjects,
    create_clients,
)
from lambdas.jobs.config import JobsConfig
from lambdas.jobs.events import ManifestObject, is_schedule, parse_message
from lambdas.jobs.logic import Jobs

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = function_logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@cache
def jobs() -> Jobs:
    config = JobsConfig.from_environ(os.environ)
    dynamodb, s3 = create_clients()
    return Jobs(
        settings=config.settings,
        ledger=DynamoJobLedger(dynamodb, config.jobs_table),
        objects=S3JobObjects(s3),
        records=DynamoRecordReader(dynamodb, config.table_name),
        logger=logger,
        now=lambda: datetime.now(UTC),
    )


def handle_message(record: SQSRecord) -> None:
    for message in parse_message(record.body):
        if isinstance(message, ManifestObject):
            jobs().start(message.bucket, message.key, message.version_id)
        else:
            jobs().count_outcome(message.inference_id)


@logger.inject_lambda_context(clear_state=True)
@traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if is_schedule(event):
        summary = jobs().sweep()
        if summary.get("errors"):
            raise RuntimeError(f"the sweep failed for {summary['errors']} job(s)")
        return summary
    return process_partial_response(
        event=event, record_handler=handle_message, processor=processor, context=context
    )
