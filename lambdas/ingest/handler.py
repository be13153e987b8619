"""Lambda entry point of the ingest function: ``lambdas.ingest.handler.handler``.

Accepts an SQS batch of S3 notifications (the stack's wiring; answers with Powertools' partial
batch response) or a direct S3 -> Lambda event (raises after processing every record when any
needs a retry, so Lambda's asynchronous retries deliver the event again). See
``lambdas.ingest.logic`` for what happens to each object version and for the inference id.

An event travels one way: ``batch`` (one invocation's submissions) parses and selects with
``events``, submits each version with ``logic``, which calls AWS through ``clients``.

The container's collaborators (validated config, boto3 clients, the submission thread pool)
are built on the first invocation and reused: a bad environment fails that invocation with an
error naming the variable. Nothing heavy is imported here.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType

from lambdas.common.logs import function_logger
from lambdas.common.store import RecordStore
from lambdas.common.tracing import traced
from lambdas.ingest.attributes import xray_trace_id
from lambdas.ingest.batch import BatchSubmission, process_event
from lambdas.ingest.clients import (
    S3InputReader,
    S3ObjectInspector,
    SageMakerAsyncInvoker,
    create_clients,
)
from lambdas.ingest.config import IngestConfig
from lambdas.ingest.logic import Submitter
from lambdas.ingest.service_models import botocore_session
from lambdas.ingest.telemetry import InvocationTelemetry

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = function_logger()
metrics = Metrics()
# Every failed message is listed in batchItemFailures, even when all of them failed: the
# handler itself never fails because of the records it was given.
processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@dataclass(frozen=True)
class Runtime:
    """What one container keeps between invocations."""

    config: IngestConfig
    submitter: Submitter
    executor: Executor


@cache
def runtime() -> Runtime:
    config = IngestConfig.from_environ(os.environ)
    # The shipped sagemaker-runtime model first: the runtime's own botocore does not know
    # S3OutputPathExtension, Filename or Body (lambdas/ingest/service_models.py).
    session = boto3.session.Session(botocore_session=botocore_session())
    clients = create_clients(session, max_pool_connections=config.submit_concurrency)
    submitter = Submitter(
        config=config,
        store=RecordStore(clients.dynamodb, config.table_name),
        inspector=S3ObjectInspector(clients.s3),
        reader=S3InputReader(clients.s3),
        invoker=SageMakerAsyncInvoker(clients.sagemaker_runtime),
        logger=logger,
    )
    executor = ThreadPoolExecutor(
        max_workers=config.submit_concurrency, thread_name_prefix="submit"
    )
    return Runtime(config=config, submitter=submitter, executor=executor)


def ingest(
    event: dict[str, Any],
    context: LambdaContext,
    runtime: Runtime,
    telemetry: InvocationTelemetry,
) -> PartialItemFailureResponse | None:
    """Process one invocation's event with the given collaborators."""
    submission = BatchSubmission(
        config=runtime.config,
        submitter=runtime.submitter,
        executor=runtime.executor,
        telemetry=telemetry,
        logger=logger,
        trace_id=xray_trace_id(os.environ.get("_X_AMZN_TRACE_ID")),
        remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    return process_event(event, submission, processor, context)


@logger.inject_lambda_context(clear_state=True)
@traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse | None:
    telemetry = InvocationTelemetry()
    try:
        return ingest(event, context, runtime(), telemetry)
    finally:
        telemetry.publish(metrics)
