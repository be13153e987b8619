"""The local event runner: Lambda's SQS event source mappings, SNS→Lambda delivery and
EventBridge schedules.

``EventRunner`` reads queues on the moto server and invokes the real handlers in worker
processes (see ``pool`` and ``worker``), with the semantics the deployed stack gets from AWS:
an SQS event source mapping per ``QueueSourceSpec`` (``sqs``), SNS → Lambda delivery per
``TopicSourceSpec`` (``sns``), a scheduled rule per ``ScheduleSourceSpec`` (``schedule``); each
is an ``EventSource`` (``source``).


``stop()`` stops polling, lets in-flight invocations finish until its timeout, then kills the
workers still running: their messages reappear (SQS batches after the visibility timeout, as on
AWS; SNS deliveries at once, since their long local visibility timeout is an artefact of
emulating retries on a queue). No worker process outlives ``stop()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from asyncinfer.local.faults import DuplicateDelivery
from asyncinfer.local.lambda_runner.execution import lambda_environment
from asyncinfer.local.lambda_runner.pool import WorkerPool
from asyncinfer.local.lambda_runner.schedule import ScheduleSource
from asyncinfer.local.lambda_runner.sns import TopicSource
from asyncinfer.local.lambda_runner.source import (
    MAX_VISIBILITY_TIMEOUT_SECONDS,
    EventSource,
    SourceStats,
)
from asyncinfer.local.lambda_runner.sqs import QueueSource
from asyncinfer.local.provision.spec import (
    FunctionSpec,
    QueueSourceSpec,
    ScheduleSourceSpec,
    TopicSourceSpec,
)

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

SourceSpec = QueueSourceSpec | TopicSourceSpec | ScheduleSourceSpec

# Lambda runs asynchronous invocations (SNS -> Lambda) as fast as the function's concurrency
# allows: its reserved concurrency, or else the account's unreserved pool, 1,000 by default
# ("Lambda function scaling" and "Configuring reserved concurrency", Lambda developer guide,
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html). Locally each concurrent
# invocation is a worker process of about 70 MB, so a topic source runs at most this many.
ACCOUNT_CONCURRENCY = 1000
LOCAL_ASYNC_CONCURRENCY_CAP = 8


class EventRunner:
    """Delivers queue and topic events to the handlers, as Lambda does for the deployed stack."""

    def __init__(
        self,
        sources: Sequence[SourceSpec],
        aws_endpoint_url: str,
        region: str,
        base_environment: Mapping[str, str],
        log_dir: Path | str,
        *,
        async_concurrency: int | None = None,
        async_retry_backoff_seconds: float = 1.0,
        failure_destinations: Collection[str] = (),
        poll_wait_seconds: int = 1,
        init_timeout_seconds: float = 30.0,
        duplicate_delivery_rate: float = 0.0,
        seed: int | None = None,
    ) -> None:
        """``base_environment`` (endpoints, fake credentials) is what every function gets under
        its own variables; handler output goes to ``log_dir/<function name>.log``;
        ``async_concurrency`` bounds the concurrent invocations of each topic source (None:
        the function's concurrency, ``async_concurrency_of``);
        ``failure_destinations`` lists the dead-letter queues of topic sources that are a
        function's async on-failure destination (they get Lambda's invocation records);
        ``duplicate_delivery_rate`` (a fault knob, 0-1, draws seeded by ``seed``) is the share
        of first receives, from the ingest queue and the topic delivery queues alike, that are
        sent back to their queue once more, as at-least-once delivery may do."""
        if async_concurrency is not None and async_concurrency < 1:
            raise ValueError(f"async_concurrency must be at least 1, got {async_concurrency}")
        if not 1 <= poll_wait_seconds <= 20:
            raise ValueError(f"poll_wait_seconds must be 1-20, got {poll_wait_seconds}")
        for source in sources:
            _validate(source)
        self._sources_specs = list(sources)
        self._region = region
        self._base_environment = dict(base_environment)
        self._log_dir = Path(log_dir)
        self._async_concurrency = async_concurrency
        self._async_retry_backoff_seconds = async_retry_backoff_seconds
        self._failure_destinations = frozenset(failure_destinations)
        self._poll_wait_seconds = poll_wait_seconds
        self._init_timeout_seconds = init_timeout_seconds
        self._stopping = threading.Event()
        self._sources: list[EventSource] = []
        self._started = False
        self._stopped = False
        functions = _functions_by_name(sources)
        self._pools = {name: self._pool(function) for name, function in functions.items()}
        self._sqs, self._sns = self._clients(aws_endpoint_url, functions)
        self._duplicator = DuplicateDelivery(self._sqs, duplicate_delivery_rate, seed)

    def _pool(self, function: FunctionSpec) -> WorkerPool:
        return WorkerPool(
            function,
            environment=lambda_environment(function, self._base_environment, self._region),
            region=self._region,
            log_path=self._log_dir / f"{function.name}.log",
            max_workers=self._worker_cap(function.name),
            init_timeout_seconds=self._init_timeout_seconds,
        )

    def _clients(
        self, aws_endpoint_url: str, functions: Mapping[str, FunctionSpec]
    ) -> tuple[SQSClient, SNSClient]:
        session = boto3.session.Session(
            aws_access_key_id=self._base_environment.get("AWS_ACCESS_KEY_ID", "local"),
            aws_secret_access_key=self._base_environment.get("AWS_SECRET_ACCESS_KEY", "local"),
            aws_session_token=self._base_environment.get("AWS_SESSION_TOKEN"),
            region_name=self._region,
        )
        config = Config(
            max_pool_connections=max(10, 2 * sum(self._worker_cap(name) for name in functions)),
            connect_timeout=5,
            read_timeout=self._poll_wait_seconds + 30,
            retries={"mode": "standard", "max_attempts": 3},
        )
        sqs: SQSClient = session.client("sqs", endpoint_url=aws_endpoint_url, config=config)
        sns: SNSClient = session.client("sns", endpoint_url=aws_endpoint_url, config=config)
        return sqs, sns

    def start(self) -> None:
        """Check the wiring (queues exist, topics deliver to them) and start polling."""
        if self._started:
            raise RuntimeError("the runner was already started")
        self._started = True
        self._log_dir.mkdir(parents=True, exist_ok=True)
        try:
            for spec in self._sources_specs:
                source = self._make_source(spec)
                self._sources.append(source)
                source.start()
        except BaseException:
            self.stop(timeout=5)
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling, finish in-flight invocations within ``timeout``, abandon the rest."""
        if self._stopped:
            return
        self._stopped = True
        deadline = time.monotonic() + timeout
        self._stopping.set()
        for source in self._sources:
            source.join(deadline)
        for pool in self._pools.values():
            pool.close(max(deadline - time.monotonic(), 0.0))
        # Killed workers unblock their threads at once; an AWS call in flight ends within its
        # own timeout, and the threads are daemons anyway.
        for source in self._sources:
            source.join(time.monotonic() + 5)
        for source in self._sources:
            source.close()
        self._sqs.close()
        self._sns.close()

    def stats(self) -> dict[str, SourceStats]:
        """Per source (queue URL or topic ARN), the counters since ``start()``."""
        return {source.key: source.counters.snapshot() for source in self._sources}

    def kill_worker(self, function_name: str) -> bool:
        """SIGKILL one worker of the function in the middle of an invocation (a fault knob).

        Its invocation fails as a Lambda crash would. Returns False if no worker was busy.
        """
        if function_name not in self._pools:
            raise ValueError(f"no function named {function_name!r} in this runner")
        return self._pools[function_name].kill_busy_worker()

    def _make_source(self, spec: SourceSpec) -> EventSource:
        pool = self._pools[spec.function.name]
        if isinstance(spec, ScheduleSourceSpec):
            return ScheduleSource(
                spec,
                pool=pool,
                stopping=self._stopping,
                region=self._region,
                retry_backoff_seconds=self._async_retry_backoff_seconds,
            )
        if isinstance(spec, QueueSourceSpec):
            return QueueSource(
                spec,
                sqs=self._sqs,
                pool=pool,
                stopping=self._stopping,
                region=self._region,
                poll_wait_seconds=self._poll_wait_seconds,
                duplicator=self._duplicator,
            )
        return TopicSource(
            spec,
            sqs=self._sqs,
            sns=self._sns,
            pool=pool,
            stopping=self._stopping,
            region=self._region,
            concurrency=self._topic_concurrency(spec.function),
            retry_backoff_seconds=self._async_retry_backoff_seconds,
            failure_destination=spec.dead_letter_queue_url in self._failure_destinations,
            poll_wait_seconds=self._poll_wait_seconds,
            init_timeout_seconds=self._init_timeout_seconds,
            duplicator=self._duplicator,
        )

    def _worker_cap(self, function_name: str) -> int:
        """Enough warm workers for every source of the function at full concurrency."""
        return sum(
            spec.maximum_concurrency
            if isinstance(spec, QueueSourceSpec)
            else 1  # a schedule runs one invocation at a time
            if isinstance(spec, ScheduleSourceSpec)
            else self._topic_concurrency(spec.function)
            for spec in self._sources_specs
            if spec.function.name == function_name
        )

    def _topic_concurrency(self, function: FunctionSpec) -> int:
        if self._async_concurrency is not None:
            return self._async_concurrency
        return async_concurrency_of(function)


def async_concurrency_of(function: FunctionSpec) -> int:
    """How many asynchronous invocations of ``function`` run at once: its reserved
    concurrency, or the account's, within what a laptop holds (a reserved concurrency of 0,
    which throttles every invocation on AWS, is not emulated: it runs one at a time)."""
    reserved = function.reserved_concurrency
    available = ACCOUNT_CONCURRENCY if reserved is None else reserved
    return max(1, min(available, LOCAL_ASYNC_CONCURRENCY_CAP))


def _validate(spec: SourceSpec) -> None:
    function = spec.function
    if function.timeout_seconds < 1 or function.memory_mb < 1:
        raise ValueError(f"function {function.name!r}: timeout and memory must be positive")
    if "." not in function.handler:
        raise ValueError(f"function {function.name!r}: handler must be module.function")
    if isinstance(spec, QueueSourceSpec):
        if not 1 <= spec.batch_size <= 10_000:
            raise ValueError(f"{spec.queue_url}: batch_size must be 1-10000")
        if spec.batching_window_seconds < 0:
            raise ValueError(f"{spec.queue_url}: batching_window_seconds must not be negative")
        if spec.maximum_concurrency < 1:
            raise ValueError(f"{spec.queue_url}: maximum_concurrency must be at least 1")
        if spec.dead_letter_queue_url and spec.max_receive_count < 1:
            raise ValueError(f"{spec.queue_url}: max_receive_count must be at least 1")
        if not 0 <= spec.visibility_timeout_seconds <= MAX_VISIBILITY_TIMEOUT_SECONDS:
            raise ValueError(f"{spec.queue_url}: visibility_timeout_seconds must be 0-43200")
        if spec.visibility_timeout_seconds < function.timeout_seconds:
            logger.warning(
                "%s: visibility timeout %d s is shorter than the timeout of %s (%d s): AWS "
                "refuses such a mapping, and messages may be handled twice at once",
                spec.queue_url,
                spec.visibility_timeout_seconds,
                function.name,
                function.timeout_seconds,
            )
    elif spec.max_attempts < 1:  # a topic or a schedule
        key = spec.topic_arn if isinstance(spec, TopicSourceSpec) else spec.rule_arn
        raise ValueError(f"{key}: max_attempts must be at least 1")


def _functions_by_name(sources: Sequence[SourceSpec]) -> dict[str, FunctionSpec]:
    functions: dict[str, FunctionSpec] = {}
    for source in sources:
        known = functions.setdefault(source.function.name, source.function)
        if known != source.function:
            raise ValueError(f"two different functions are both named {source.function.name!r}")
    return functions
