"""Lambda entry point of the results function: ``lambdas.results.handler.handler``.

SageMaker's async-inference notifications (SNS) -> the results table; see
``lambdas.common.outcomes`` for the ordering and failure policy.

The environment is validated and the AWS clients are created on the first invocation and then
kept for the container's life; importing this module does neither, which keeps the import
chain short and lets the module load without the function's environment. The import loads the
SDK (``clients``), Powertools' logger, metrics and parser, and pydantic with the SNS event model
the parser decorator takes (``envelope``); the configuration, the processing code (``logic``,
``notification``, the record store) and the Tracer are loaded by the first invocation, with
the collector paused (``lambdas.common.collector``): a cold start pays for them there
(bench/RESULTS.md, cold imports).
"""

from __future__ import annotations

import gc

gc.disable()  # the imports below allocate only long-lived objects: collecting is wasted CPU

import os
from functools import cache
from typing import TYPE_CHECKING

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.parser import event_parser

from lambdas.common.collector import collector_paused
from lambdas.common.logs import function_logger
from lambdas.common.outputs import S3OutputReader, create_clients
from lambdas.common.tracing import traced
from lambdas.results.envelope import SageMakerSnsEvent

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from lambdas.results.logic import NotificationProcessor

logger = function_logger()
metrics = Metrics()


@cache
@collector_paused()
def processor() -> NotificationProcessor:
    """The container's processor (config, clients); cached, so built once per container."""
    from lambdas.common.store import RecordStore
    from lambdas.results.config import ResultsConfig
    from lambdas.results.logic import NotificationProcessor

    config = ResultsConfig.from_environ(os.environ)
    clients = create_clients()
    return NotificationProcessor(
        config=config,
        store=RecordStore(clients.dynamodb, config.table_name),
        outputs=S3OutputReader(clients.create_s3),
        metrics=metrics,
        logger=logger,
    )


@logger.inject_lambda_context(clear_state=True)
@traced
@metrics.log_metrics
@event_parser(model=SageMakerSnsEvent)
def handler(event: SageMakerSnsEvent, context: LambdaContext) -> None:
    processor().process_records(event.Records)


gc.freeze()  # what the import loaded stays out of every later collection too
gc.enable()
