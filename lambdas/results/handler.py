"""Lambda entry point of the results function: ``lambdas.results.handler.handler``.

SageMaker's async-inference notifications (SNS) -> the results table; see
``lambdas.results.logic`` for the ordering and failure policy.

The environment is validated and the AWS clients are created on the first invocation and then
kept for the container's life; importing this module does neither, which keeps the import
chain short and lets the module load without the function's environment.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING

import boto3
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.parser import event_parser

from lambdas.common.logs import function_logger
from lambdas.common.store import RecordStore
from lambdas.common.tracing import traced
from lambdas.results.clients import S3OutputReader, create_clients
from lambdas.results.config import ResultsConfig
from lambdas.results.logic import NotificationProcessor
from lambdas.results.notification import SageMakerSnsEvent

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = function_logger()
metrics = Metrics()


@cache
def processor() -> NotificationProcessor:
    """The container's processor (config, clients); cached, so built once per container."""
    config = ResultsConfig.from_environ(os.environ)
    clients = create_clients(boto3.session.Session())
    return NotificationProcessor(
        config=config,
        store=RecordStore(clients.dynamodb, config.table_name),
        outputs=S3OutputReader(clients.s3),
        metrics=metrics,
        logger=logger,
    )


@logger.inject_lambda_context(clear_state=True)
@traced
@metrics.log_metrics
@event_parser(model=SageMakerSnsEvent)
def handler(event: SageMakerSnsEvent, context: LambdaContext) -> None:
    processor().process_records(event.Records)
