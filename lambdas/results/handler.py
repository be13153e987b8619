"""Results function: SageMaker async-inference notifications (SNS) -> the results table.

The environment is validated and the AWS clients are created on the first invocation and then
kept for the container's life; importing this module does neither, which keeps the import
chain short and lets the module load without the function's environment.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.parser import event_parser
from botocore.config import Config

from lambdas.common.store import RecordStore
from lambdas.common.tracing import traced
from lambdas.results.config import ResultsConfig
from lambdas.results.logic import NotificationProcessor
from lambdas.results.notification import SageMakerSnsEvent
from lambdas.results.outputs import S3OutputReader

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()

# Reading an inline result is optional: fail fast instead of holding the invocation up.
S3_CLIENT_CONFIG = Config(
    connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 2}
)
# A throttled write is retried here first; past that the invocation fails and Lambda's
# asynchronous retries (then the on-failure destination) take over.
DYNAMODB_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


@cache
def processor() -> NotificationProcessor:
    """The container's processor (config, clients); cached, so built once per container."""
    config = ResultsConfig.from_environ(os.environ)
    return NotificationProcessor(
        config=config,
        store=RecordStore(
            boto3.client("dynamodb", config=DYNAMODB_CLIENT_CONFIG), config.table_name
        ),
        outputs=S3OutputReader(boto3.client("s3", config=S3_CLIENT_CONFIG)),
        metrics=metrics,
    )


@logger.inject_lambda_context(clear_state=True)
@traced
@metrics.log_metrics
@event_parser(model=SageMakerSnsEvent)
def handler(event: SageMakerSnsEvent, context: LambdaContext) -> None:
    processor().process_records(event.Records)
