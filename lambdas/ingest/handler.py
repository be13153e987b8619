"""Lambda entry point of the ingest function: ``lambdas.ingest.handler.handler``.

Accepts an SQS batch of S3 notifications (the stack's wiring; answers with Powertools' partial
batch response) or a direct S3 -> Lambda event (raises after processing every record when any
needs a retry, so Lambda's asynchronous retries deliver the event again). See
``lambdas.ingest.logic`` for what happens to each object version and for the inference id.

An event travels one way: ``batch`` (one invocation's submissions) parses and selects with
``events``, submits each version with ``logic``, which calls AWS through ``clients``.

The container's collaborators (validated config, botocore clients, the submission thread pool)
are built on the first invocation and reused: a bad environment fails that invocation with an
error naming the variable. The import loads the SDK (``clients``) and Powertools' logger,
metrics and batch processor; the configuration, pydantic, the submission engine (``batch``,
``events``, ``logic``, the record store) and the Tracer are loaded by the first invocation,
with the collector paused (``lambdas.common.collector``): a cold start pays for them there
(bench/RESULTS.md, cold imports).
"""

from __future__ import annotations

import gc

gc.disable()  # the imports below allocate only long-lived objects: collecting is wasted CPU

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics

# Before anything imports pydantic: once pydantic is loaded, importing Powertools' batch utility
# also builds its parser models (SQS, Kinesis, DynamoDB, Kafka records), about 20 ms of CPU.
from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType

from lambdas.common.collector import collector_paused
from lambdas.common.logs import function_logger
from lambdas.common.tracing import traced
from lambdas.ingest.attributes import xray_trace_id
from lambdas.ingest.clients import (
    S3InputReader,
    S3ObjectInspector,
    SageMakerAsyncInvoker,
    create_clients,
    manifest_forwarder,
)
from lambdas.ingest.telemetry import InvocationTelemetry

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Executor

    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from lambdas.ingest.config import IngestConfig
    from lambdas.ingest.logic import Submitter

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
    forward_manifests: Callable[[str], None] | None = None


@cache
@collector_paused()
def runtime() -> Runtime:
    from lambdas.common.records import InferenceRecord
    from lambdas.common.store import RecordStore
    from lambdas.ingest.config import IngestConfig
    from lambdas.ingest.logic import Submitter

    config = IngestConfig.from_environ(os.environ)
    # The record's schema is built on first use (defer_build); build it here, before the
    # submission threads race to: older pydantic (the layer's may be) does not lock that build.
    InferenceRecord.model_rebuild()
    # On a session that finds the shipped sagemaker-runtime model first: the runtime's own
    # botocore does not know S3OutputPathExtension, Filename or Body (service_models.py).
    clients = create_clients(max_pool_connections=config.submit_concurrency)
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
    forward = manifest_forwarder(config.jobs_queue_url) if config.jobs_queue_url else None
    return Runtime(config=config, submitter=submitter, executor=executor, forward_manifests=forward)


def ingest(
    event: dict[str, Any],
    context: LambdaContext,
    runtime: Runtime,
    telemetry: InvocationTelemetry,
) -> PartialItemFailureResponse | None:
    """Process one invocation's event with the given collaborators."""
    from lambdas.ingest.batch import BatchSubmission, process_event

    submission = BatchSubmission(
        config=runtime.config,
        submitter=runtime.submitter,
        executor=runtime.executor,
        telemetry=telemetry,
        logger=logger,
        trace_id=xray_trace_id(os.environ.get("_X_AMZN_TRACE_ID")),
        remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000,
        forward_manifests=runtime.forward_manifests,
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


gc.freeze()  # what the import loaded stays out of every later collection too
gc.enable()
