"""The local event runner: Lambda's SQS event source mappings and SNS→Lambda delivery.

``EventRunner`` reads queues on the moto server and invokes the real handlers in worker
processes (see ``workers``), with the semantics the deployed stack gets from AWS:

* **SQS event source mapping** (``QueueSourceSpec``): long-polls the queue with the queue's
  visibility timeout, gathers up to ``batch_size`` messages within the batching window, invokes
  the handler with a real SQS event, then deletes what succeeded: everything if the invocation
  succeeded, all but the ``batchItemFailures`` with ``ReportBatchItemFailures`` (read as Lambda
  reads it, see ``failed_item_ids``), nothing if it raised, crashed or timed out. Failed messages
  reappear after the visibility timeout. A message that fails on its ``max_receive_count``-th
  receive is moved to the dead-letter queue by the runner itself (SQS would move it on the next
  receive attempt, one visibility timeout later; the end state is the same, and the move does not
  depend on moto's redrive); a message received more often than that (left over from a stopped
  runner) is moved on receipt, as SQS does. Pollers scale like Lambda's: one to start, one more
  each time a batch comes back full, one fewer after an empty poll, never more than
  ``maximum_concurrency`` (so never more batches in flight).
* **SNS → Lambda** (``TopicSourceSpec``): the topic delivers to an SQS queue (raw delivery
  off); each envelope becomes a real SNS event with one record, invoked asynchronously with
  bounded concurrency. A failed invocation is retried as Lambda retries async invocations (up to
  ``max_attempts`` attempts in all, backoff doubling from ``async_retry_backoff_seconds``
  instead of one and two minutes), then it goes to ``dead_letter_queue_url``: as the Lambda
  invocation record Lambda writes to an on-failure destination (``requestPayload`` = the SNS
  event, ``responsePayload`` = the last error) if that queue is one of ``failure_destinations``,
  otherwise as the envelope itself, as a subscription DLQ holds it, with the last error in
  Lambda's DLQ attributes (``RequestID``, ``ErrorCode``, ``ErrorMessage``). A message is deleted
  from the delivery queue only after success or after that move.

``stop()`` stops polling, lets in-flight invocations finish until its timeout, then kills the
workers still running: their messages reappear (SQS batches after the visibility timeout, as on
AWS; SNS deliveries at once, since their long local visibility timeout is an artefact of
emulating retries on a queue). No worker process outlives ``stop()``.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import random
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from asyncinfer.local.spec import FunctionSpec, QueueSourceSpec, TopicSourceSpec
from asyncinfer.local.workers import (
    FUNCTION_VERSION,
    Invocation,
    Outcome,
    WorkerPool,
    function_arn,
    lambda_environment,
)

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueOutputTypeDef,
        MessageAttributeValueTypeDef,
        MessageTypeDef,
    )

logger = logging.getLogger(__name__)

SourceSpec = QueueSourceSpec | TopicSourceSpec

_MAX_MESSAGES_PER_RECEIVE = 10  # SQS ReceiveMessage limit
_MAX_VISIBILITY_TIMEOUT_SECONDS = 43_200  # SQS limit: 12 hours
_ERROR_MESSAGE_LIMIT = 1024  # Lambda truncates ErrorMessage in DLQ attributes to 1 KB
_PAUSE_AFTER_AWS_ERROR_SECONDS = 1.0
# The system attributes a Lambda SQS record carries (when SQS returns them).
_SQS_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "AWSTraceHeader",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "DeadLetterQueueSourceArn",
)
_SNS_ENVELOPE_REQUIRED = ("Type", "MessageId", "TopicArn", "Message", "Timestamp")


@dataclass(frozen=True)
class SourceStats:
    """Counters of one source since ``start()``.

    ``batches`` counts invocations; ``messages_delivered`` the records handed to the handler
    (redeliveries and retries included); ``succeeded`` the messages done with;
    ``failed`` failed deliveries (each redelivery or attempt counts); ``retried`` deliveries
    that were a redelivery (SQS) or a retry attempt (SNS); ``moved_to_dlq`` messages moved to
    the dead-letter queue; ``dropped`` SNS messages that exhausted their attempts with no
    dead-letter queue (Lambda discards those); ``abandoned`` messages given back untouched (at
    ``stop()``, or when their dead-letter queue cannot be reached); ``worker_restarts`` workers
    lost to a crash, a kill or a timeout; ``duplicated`` copies sent back to the queue by the
    ``duplicate_delivery_rate`` fault knob.
    """

    source: str
    function_name: str
    batches: int = 0
    messages_delivered: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    moved_to_dlq: int = 0
    dropped: int = 0
    abandoned: int = 0
    worker_restarts: int = 0
    duplicated: int = 0


_COUNTERS = tuple(f.name for f in fields(SourceStats) if f.name not in ("source", "function_name"))


class _Counters:
    def __init__(self, source: str, function_name: str) -> None:
        self._source = source
        self._function_name = function_name
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(_COUNTERS, 0)

    def add(self, **increments: int) -> None:
        with self._lock:
            for name, increment in increments.items():
                self._counts[name] += increment

    def snapshot(self) -> SourceStats:
        with self._lock:
            return SourceStats(
                source=self._source, function_name=self._function_name, **self._counts
            )


def failed_item_ids(response: object, message_ids: Sequence[str]) -> set[str]:
    """The messages to keep after a successful invocation, read as Lambda reads the response.

    Complete success: ``None``, an object without ``batchItemFailures``, or a null or empty
    list. Complete failure (every message kept): a response that is not an object, a
    ``batchItemFailures`` that is not a list, or an entry whose ``itemIdentifier`` is missing,
    null, empty, or not a message of the batch.
    """
    everything = set(message_ids)
    if response is None:
        return set()
    if not isinstance(response, dict):
        return everything
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return everything
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in everything:
            return everything
        failed.add(identifier)
    return failed


def sqs_record(message: MessageTypeDef, queue_arn: str, region: str) -> dict[str, Any]:
    """One record of a Lambda SQS event, from a ReceiveMessage result."""
    system_attributes = message.get("Attributes", {})
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            name: system_attributes[name]
            for name in _SQS_RECORD_ATTRIBUTES
            if name in system_attributes
        },
        "messageAttributes": {
            name: _lambda_message_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update({"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region})
    return record


def _lambda_message_attribute(value: MessageAttributeValueOutputTypeDef) -> dict[str, Any]:
    attribute: dict[str, Any] = {}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    attribute["stringListValues"] = list(value.get("StringListValues", []))
    attribute["binaryListValues"] = [
        base64.b64encode(item).decode("ascii") for item in value.get("BinaryListValues", [])
    ]
    attribute["dataType"] = value["DataType"]
    return attribute


def parse_sns_envelope(body: str) -> dict[str, Any]:
    """The SNS notification an SQS subscription delivers (raw delivery off); ValueError if not."""
    try:
        envelope = json.loads(body)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"delivery queue message is not JSON, so not an SNS envelope "
            f"(is raw message delivery on?): {error}"
        ) from None
    if not isinstance(envelope, dict):
        raise ValueError("delivery queue message is not an SNS envelope (not a JSON object)")
    missing = [name for name in _SNS_ENVELOPE_REQUIRED if name not in envelope]
    if missing:
        raise ValueError(
            f"delivery queue message is not an SNS envelope: missing {', '.join(missing)} "
            "(is raw message delivery on?)"
        )
    if envelope["Type"] != "Notification":
        raise ValueError(f"SNS message of type {envelope['Type']!r} is not a notification")
    return envelope


def sns_event(envelope: Mapping[str, Any], subscription_arn: str) -> dict[str, Any]:
    """The Lambda SNS event for one notification (note the renamed URL fields)."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": envelope["Type"],
                    "MessageId": envelope["MessageId"],
                    "TopicArn": envelope["TopicArn"],
                    "Subject": envelope.get("Subject"),
                    "Message": envelope["Message"],
                    "Timestamp": envelope["Timestamp"],
                    "SignatureVersion": envelope.get("SignatureVersion"),
                    "Signature": envelope.get("Signature"),
                    "SigningCertUrl": envelope.get("SigningCertURL"),
                    "UnsubscribeUrl": envelope.get("UnsubscribeURL"),
                    "MessageAttributes": envelope.get("MessageAttributes", {}),
                },
            }
        ]
    }


def async_failure_record(
    event: Mapping[str, Any], invocation: Invocation, *, function_arn: str, attempts: int
) -> dict[str, Any]:
    """What Lambda sends an on-failure destination once an async event's retries are spent."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "requestContext": {
            "requestId": invocation.request_id,
            "functionArn": f"{function_arn}:{FUNCTION_VERSION}",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": FUNCTION_VERSION,
            "functionError": "Unhandled",
        },
        "responsePayload": {
            "errorMessage": invocation.error_message,
            "errorType": invocation.error_type,
            "requestId": invocation.request_id,
            "stackTrace": list(invocation.stack_trace),
        },
    }


def _receive_count(message: MessageTypeDef) -> int:
    return int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))


class DuplicateDelivery:
    """The at-least-once fault knob: sends a copy of a received message back to its queue.

    Only a message's first receive is considered, and copies are never copied again, so each
    original is delivered at most twice by this knob (plus any redelivery after a failure).
    For a topic's delivery queue the copy carries the same SNS envelope (same ``MessageId``),
    which is what a duplicate SNS delivery looks like.
    """

    def __init__(self, sqs: SQSClient, rate: float, seed: int | None) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"duplicate_delivery_rate must be 0-1, got {rate}")
        self._sqs = sqs
        self._rate = rate
        self._random = random.Random(seed)  # noqa: S311 (fault draws, not secrets)
        self._lock = threading.Lock()
        self._copies: set[str] = set()

    def maybe_duplicate(self, queue_url: str, message: MessageTypeDef) -> bool:
        """Sends a copy of a first-received original at the configured rate; True if it did."""
        if self._rate <= 0 or _receive_count(message) > 1:
            return False
        with self._lock:
            if message["MessageId"] in self._copies or self._random.random() >= self._rate:
                return False
        attributes = {
            name: _sendable_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        }
        try:
            copy = self._sqs.send_message(
                QueueUrl=queue_url, MessageBody=message["Body"], MessageAttributes=attributes
            )
        except (BotoCoreError, ClientError):
            logger.exception("sending a duplicate to %s failed", queue_url)
            return False
        with self._lock:
            self._copies.add(copy["MessageId"])
        return True


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
        async_concurrency: int = 4,
        async_retry_backoff_seconds: float = 1.0,
        failure_destinations: Collection[str] = (),
        poll_wait_seconds: int = 1,
        init_timeout_seconds: float = 30.0,
        duplicate_delivery_rate: float = 0.0,
        seed: int | None = None,
    ) -> None:
        """``base_environment`` (endpoints, fake credentials) is what every function gets under
        its own variables; handler output goes to ``log_dir/<function name>.log``;
        ``async_concurrency`` bounds the concurrent invocations of each topic source;
        ``failure_destinations`` lists the dead-letter queues of topic sources that are a
        function's async on-failure destination (they get Lambda's invocation records);
        ``duplicate_delivery_rate`` (a fault knob, 0-1, draws seeded by ``seed``) is the share
        of first receives, from the ingest queue and the topic delivery queues alike, that are
        sent back to their queue once more, as at-least-once delivery may do."""
        if async_concurrency < 1:
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
        self._sources: list[_QueueSource | _TopicSource] = []
        self._started = False
        self._stopped = False
        functions = _functions_by_name(sources)
        self._pools = {
            name: WorkerPool(
                function,
                environment=lambda_environment(function, self._base_environment, region),
                region=region,
                log_path=self._log_dir / f"{name}.log",
                max_workers=self._worker_cap(name),
                init_timeout_seconds=init_timeout_seconds,
            )
            for name, function in functions.items()
        }
        session = boto3.session.Session(
            aws_access_key_id=self._base_environment.get("AWS_ACCESS_KEY_ID", "local"),
            aws_secret_access_key=self._base_environment.get("AWS_SECRET_ACCESS_KEY", "local"),
            aws_session_token=self._base_environment.get("AWS_SESSION_TOKEN"),
            region_name=region,
        )
        config = Config(
            max_pool_connections=max(10, 2 * sum(self._worker_cap(name) for name in functions)),
            connect_timeout=5,
            read_timeout=poll_wait_seconds + 30,
            retries={"mode": "standard", "max_attempts": 3},
        )
        self._sqs: SQSClient = session.client("sqs", endpoint_url=aws_endpoint_url, config=config)
        self._sns: SNSClient = session.client("sns", endpoint_url=aws_endpoint_url, config=config)
        self._duplicator = DuplicateDelivery(self._sqs, duplicate_delivery_rate, seed)

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

    def _make_source(self, spec: SourceSpec) -> _QueueSource | _TopicSource:
        pool = self._pools[spec.function.name]
        if isinstance(spec, QueueSourceSpec):
            return _QueueSource(
                spec,
                sqs=self._sqs,
                pool=pool,
                stopping=self._stopping,
                region=self._region,
                poll_wait_seconds=self._poll_wait_seconds,
                duplicator=self._duplicator,
            )
        return _TopicSource(
            spec,
            sqs=self._sqs,
            sns=self._sns,
            pool=pool,
            stopping=self._stopping,
            region=self._region,
            concurrency=self._async_concurrency,
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
            else self._async_concurrency
            for spec in self._sources_specs
            if spec.function.name == function_name
        )


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
        if not 0 <= spec.visibility_timeout_seconds <= _MAX_VISIBILITY_TIMEOUT_SECONDS:
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
    elif spec.max_attempts < 1:
        raise ValueError(f"{spec.topic_arn}: max_attempts must be at least 1")


def _functions_by_name(sources: Sequence[SourceSpec]) -> dict[str, FunctionSpec]:
    functions: dict[str, FunctionSpec] = {}
    for source in sources:
        known = functions.setdefault(source.function.name, source.function)
        if known != source.function:
            raise ValueError(f"two different functions are both named {source.function.name!r}")
    return functions


class _QueueSource:
    """One SQS event source mapping: scaling pollers, each invoking one batch at a time."""

    def __init__(
        self,
        spec: QueueSourceSpec,
        *,
        sqs: SQSClient,
        pool: WorkerPool,
        stopping: threading.Event,
        region: str,
        poll_wait_seconds: int,
        duplicator: DuplicateDelivery,
    ) -> None:
        self.spec = spec
        self.key = spec.queue_url
        self._duplicator = duplicator
        self.counters = _Counters(spec.queue_url, spec.function.name)
        self._sqs = sqs
        self._pool = pool
        self._stopping = stopping
        self._region = region
        self._poll_wait_seconds = poll_wait_seconds
        self._lock = threading.Lock()
        self._pollers = 0
        self._threads: list[threading.Thread] = []
        self._queue_arn = ""

    def start(self) -> None:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.spec.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]
        self._queue_arn = attributes["QueueArn"]
        self._add_poller()

    def join(self, deadline: float) -> None:
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))

    def close(self) -> None:
        """Nothing to release: pollers end with the runner's stop event."""

    def _add_poller(self) -> None:
        with self._lock:
            if self._pollers >= self.spec.maximum_concurrency or self._stopping.is_set():
                return
            self._pollers += 1
            self._threads = [thread for thread in self._threads if thread.is_alive()]
            thread = threading.Thread(
                target=self._poll,
                name=f"poller:{self.spec.function.name}:{len(self._threads)}",
                daemon=True,
            )
            self._threads.append(thread)
        thread.start()

    def _retire_spare_poller(self) -> bool:
        with self._lock:
            if self._pollers > 1:
                self._pollers -= 1
                return True
            return False

    def _poll(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = self._gather()
            except Exception:
                logger.exception("receiving from %s failed", self.spec.queue_url)
                self._stopping.wait(_PAUSE_AFTER_AWS_ERROR_SECONDS)
                continue
            if not messages:
                if self._retire_spare_poller():
                    return
                continue
            if len(messages) >= self.spec.batch_size:
                self._add_poller()
            try:
                self._process(messages)
            except Exception:
                logger.exception(
                    "a batch of %s could not be processed: it will be delivered again",
                    self.spec.queue_url,
                )
        with self._lock:
            self._pollers -= 1

    def _gather(self) -> list[MessageTypeDef]:
        """Up to batch_size messages, within the batching window once the first one arrived.

        A message whose visibility timeout ran out while the window was open can come back
        during the same gathering: the batch keeps its latest copy (the receipt handle that
        can still delete it).
        """
        spec = self.spec
        batch: dict[str, MessageTypeDef] = {}
        window_ends: float | None = None
        while len(batch) < spec.batch_size and not self._stopping.is_set():
            wait_seconds = self._poll_wait_seconds
            if window_ends is not None:
                remaining = window_ends - time.monotonic()
                if remaining <= 0:
                    break
                # WaitTimeSeconds is whole seconds: short-poll through the window's last second.
                wait_seconds = min(wait_seconds, math.floor(remaining))
            received = self._sqs.receive_message(
                QueueUrl=spec.queue_url,
                MaxNumberOfMessages=min(_MAX_MESSAGES_PER_RECEIVE, spec.batch_size - len(batch)),
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=spec.visibility_timeout_seconds,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not received and window_ends is None:
                return []  # one empty poll: let the poller check for stop and scale-in
            worn_out = [m for m in received if _receive_count(m) > spec.max_receive_count]
            if worn_out and spec.dead_letter_queue_url:
                self._move_to_dead_letter_queue(worn_out)
                received = [m for m in received if m not in worn_out]
            batch.update((message["MessageId"], message) for message in received)
            if not batch:
                continue
            if window_ends is None:
                if spec.batching_window_seconds == 0:
                    break
                window_ends = time.monotonic() + spec.batching_window_seconds
            if not received and wait_seconds == 0:
                self._stopping.wait(min(0.1, max(window_ends - time.monotonic(), 0.0)))
        return list(batch.values())

    def _process(self, messages: list[MessageTypeDef]) -> None:
        if self._stopping.is_set():
            # Not invoked yet: give nothing to a runner that is going away.
            self.counters.add(abandoned=len(messages))
            return
        duplicated = sum(
            self._duplicator.maybe_duplicate(self.spec.queue_url, message) for message in messages
        )
        self.counters.add(duplicated=duplicated)
        event = {"Records": [sqs_record(m, self._queue_arn, self._region) for m in messages]}
        self.counters.add(
            batches=1,
            messages_delivered=len(messages),
            retried=sum(1 for m in messages if _receive_count(m) > 1),
        )
        invocation = self._pool.invoke(event)
        if invocation.outcome is Outcome.ABANDONED:
            self.counters.add(abandoned=len(messages))
            return
        if invocation.worker_lost:
            self.counters.add(worker_restarts=1)
        keep = self._failed_ids(invocation, [m["MessageId"] for m in messages])
        done = [m for m in messages if m["MessageId"] not in keep]
        failed = [m for m in messages if m["MessageId"] in keep]
        if failed:
            logger.info(
                "%s: %d of %d messages failed (%s: %s)",
                self.spec.function.name,
                len(failed),
                len(messages),
                invocation.error_type or "batchItemFailures",
                invocation.error_message or "",
            )
        self._delete(done)
        self.counters.add(succeeded=len(done), failed=len(failed))
        exhausted = [m for m in failed if _receive_count(m) >= self.spec.max_receive_count]
        if exhausted and self.spec.dead_letter_queue_url:
            self._move_to_dead_letter_queue(exhausted)

    def _failed_ids(self, invocation: Invocation, message_ids: list[str]) -> set[str]:
        if not invocation.succeeded:
            return set(message_ids)
        if not self.spec.report_batch_item_failures:
            return set()
        return failed_item_ids(invocation.response, message_ids)

    def _delete(self, messages: list[MessageTypeDef]) -> None:
        for start in range(0, len(messages), _MAX_MESSAGES_PER_RECEIVE):
            chunk = messages[start : start + _MAX_MESSAGES_PER_RECEIVE]
            try:
                result = self._sqs.delete_message_batch(
                    QueueUrl=self.spec.queue_url,
                    Entries=[
                        {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                        for index, message in enumerate(chunk)
                    ],
                )
            except (BotoCoreError, ClientError):
                # They reappear and are delivered again: at-least-once, as on AWS.
                logger.exception("deleting from %s failed", self.spec.queue_url)
                continue
            for failure in result.get("Failed", []):
                logger.warning(
                    "could not delete a message from %s: %s",
                    self.spec.queue_url,
                    failure.get("Message", failure["Code"]),
                )

    def _move_to_dead_letter_queue(self, messages: list[MessageTypeDef]) -> None:
        dead_letter_queue_url = self.spec.dead_letter_queue_url
        assert dead_letter_queue_url is not None
        for message in messages:
            attributes = {
                name: _sendable_attribute(value)
                for name, value in message.get("MessageAttributes", {}).items()
            }
            try:
                self._sqs.send_message(
                    QueueUrl=dead_letter_queue_url,
                    MessageBody=message["Body"],
                    MessageAttributes=attributes,
                )
                self._sqs.delete_message(
                    QueueUrl=self.spec.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
            except (BotoCoreError, ClientError):
                logger.exception("moving a message to %s failed", dead_letter_queue_url)
                continue
            logger.warning(
                "%s: message %s moved to the dead-letter queue after %d receives",
                self.spec.function.name,
                message["MessageId"],
                _receive_count(message),
            )
            self.counters.add(moved_to_dlq=1)


def _sendable_attribute(
    value: MessageAttributeValueOutputTypeDef,
) -> MessageAttributeValueTypeDef:
    attribute: MessageAttributeValueTypeDef = {"DataType": value["DataType"]}
    if "StringValue" in value:
        attribute["StringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["BinaryValue"] = value["BinaryValue"]
    return attribute


class _TopicSource:
    """SNS → Lambda for one topic: async invocations of one notification each, with retries."""

    def __init__(
        self,
        spec: TopicSourceSpec,
        *,
        sqs: SQSClient,
        sns: SNSClient,
        pool: WorkerPool,
        stopping: threading.Event,
        region: str,
        concurrency: int,
        retry_backoff_seconds: float,
        failure_destination: bool,
        poll_wait_seconds: int,
        init_timeout_seconds: float,
        duplicator: DuplicateDelivery,
    ) -> None:
        self.spec = spec
        self.key = spec.topic_arn
        self._duplicator = duplicator
        self.counters = _Counters(spec.topic_arn, spec.function.name)
        self._sqs = sqs
        self._sns = sns
        self._pool = pool
        self._stopping = stopping
        self._concurrency = concurrency
        self._retry_backoff_seconds = retry_backoff_seconds
        self._failure_destination = failure_destination
        self._function_arn = function_arn(region, spec.function.name)
        self._poll_wait_seconds = poll_wait_seconds
        self._slots = threading.BoundedSemaphore(concurrency)
        self._executor = ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix=f"sns:{spec.function.name}"
        )
        self._receiver: threading.Thread | None = None
        self._subscription_arn = ""
        # Hidden for as long as every attempt may take, so no one else sees it meanwhile.
        attempt_seconds = spec.function.timeout_seconds + init_timeout_seconds
        backoff_seconds = retry_backoff_seconds * (2 ** max(spec.max_attempts - 1, 0))
        self._visibility_timeout = min(
            math.ceil(spec.max_attempts * attempt_seconds + backoff_seconds + 60),
            _MAX_VISIBILITY_TIMEOUT_SECONDS,
        )

    def start(self) -> None:
        self._subscription_arn = self._find_subscription()
        self._receiver = threading.Thread(
            target=self._receive_loop, name=f"sns-receiver:{self.spec.function.name}", daemon=True
        )
        self._receiver.start()

    def join(self, deadline: float) -> None:
        if self._receiver is not None:
            self._receiver.join(max(deadline - time.monotonic(), 0.0))
        # Deliveries hold one slot each: all slots back means none is running.
        acquired = 0
        while acquired < self._concurrency:
            if not self._slots.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
                break
            acquired += 1
        for _ in range(acquired):
            self._slots.release()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _find_subscription(self) -> str:
        queue_arn = self._sqs.get_queue_attributes(
            QueueUrl=self.spec.delivery_queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        paginator = self._sns.get_paginator("list_subscriptions_by_topic")
        for page in paginator.paginate(TopicArn=self.spec.topic_arn):
            for subscription in page.get("Subscriptions", []):
                if subscription.get("Protocol") == "sqs" and subscription.get("Endpoint") == (
                    queue_arn
                ):
                    return subscription["SubscriptionArn"]
        raise ValueError(
            f"the delivery queue {self.spec.delivery_queue_url} is not subscribed to "
            f"{self.spec.topic_arn}: no notification would ever reach {self.spec.function.name}"
        )

    def _receive_loop(self) -> None:
        while not self._stopping.is_set():
            if not self._slots.acquire(timeout=self._poll_wait_seconds):
                continue
            granted = 1
            while granted < _MAX_MESSAGES_PER_RECEIVE and self._slots.acquire(blocking=False):
                granted += 1
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self.spec.delivery_queue_url,
                    MaxNumberOfMessages=granted,
                    WaitTimeSeconds=self._poll_wait_seconds,
                    VisibilityTimeout=self._visibility_timeout,
                    MessageSystemAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:
                logger.exception("receiving from %s failed", self.spec.delivery_queue_url)
                messages = []
                self._stopping.wait(_PAUSE_AFTER_AWS_ERROR_SECONDS)
            for _ in range(granted - len(messages)):
                self._slots.release()
            for message in messages:
                self._executor.submit(self._deliver_in_slot, message)

    def _deliver_in_slot(self, message: MessageTypeDef) -> None:
        try:
            self._deliver(message)
        except Exception:
            logger.exception("delivering a notification to %s failed", self.spec.function.name)
        finally:
            self._slots.release()

    def _deliver(self, message: MessageTypeDef) -> None:
        if self._duplicator.maybe_duplicate(self.spec.delivery_queue_url, message):
            self.counters.add(duplicated=1)
        try:
            envelope = parse_sns_envelope(message["Body"])
        except ValueError as error:
            logger.error("%s: %s", self.spec.delivery_queue_url, error)
            self.counters.add(failed=1)
            self._dead_letter(message, message["Body"], _error_attributes(str(error)))
            return
        event = sns_event(envelope, self._subscription_arn)
        invocation: Invocation | None = None
        for attempt in range(1, self.spec.max_attempts + 1):
            backoff = self._retry_backoff_seconds * 2 ** (attempt - 2) if attempt > 1 else 0
            if self._stopping.wait(backoff):
                self._abandon(message)
                return
            self.counters.add(batches=1, messages_delivered=1, retried=int(attempt > 1))
            invocation = self._pool.invoke(event)
            if invocation.outcome is Outcome.ABANDONED:
                self._abandon(message)
                return
            if invocation.worker_lost:
                self.counters.add(worker_restarts=1)
            if invocation.succeeded:
                self._delete(message)
                self.counters.add(succeeded=1)
                return
            self.counters.add(failed=1)
            logger.info(
                "%s: attempt %d of %d failed for %s (%s: %s)",
                self.spec.function.name,
                attempt,
                self.spec.max_attempts,
                envelope["MessageId"],
                invocation.error_type,
                invocation.error_message,
            )
        assert invocation is not None
        if self._failure_destination:
            record = async_failure_record(
                event,
                invocation,
                function_arn=self._function_arn,
                attempts=self.spec.max_attempts,
            )
            self._dead_letter(message, json.dumps(record), {})
        else:
            last_error = f"{invocation.error_type}: {invocation.error_message}"
            attributes = _error_attributes(last_error, invocation.request_id)
            self._dead_letter(message, message["Body"], attributes)

    def _dead_letter(
        self,
        message: MessageTypeDef,
        body: str,
        attributes: Mapping[str, MessageAttributeValueTypeDef],
    ) -> None:
        """Move a message that failed for good, or drop it if there is nowhere to move it."""
        dead_letter_queue_url = self.spec.dead_letter_queue_url
        if dead_letter_queue_url is None:
            logger.error(
                "%s: message %s of %s dropped: there is no dead-letter queue",
                self.spec.function.name,
                message["MessageId"],
                self.spec.delivery_queue_url,
            )
            self._delete(message)
            self.counters.add(dropped=1)
            return
        try:
            self._sqs.send_message(
                QueueUrl=dead_letter_queue_url, MessageBody=body, MessageAttributes=attributes
            )
        except (BotoCoreError, ClientError):
            logger.exception("moving a notification to %s failed", dead_letter_queue_url)
            self._abandon(message)
            return
        logger.warning(
            "%s: notification %s moved to %s",
            self.spec.function.name,
            message["MessageId"],
            dead_letter_queue_url,
        )
        self._delete(message)
        self.counters.add(moved_to_dlq=1)

    def _delete(self, message: MessageTypeDef) -> None:
        try:
            self._sqs.delete_message(
                QueueUrl=self.spec.delivery_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        except (BotoCoreError, ClientError):
            logger.exception("deleting from %s failed", self.spec.delivery_queue_url)

    def _abandon(self, message: MessageTypeDef) -> None:
        """Give the message back at once, to whoever reads the delivery queue next."""
        self.counters.add(abandoned=1)
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self.spec.delivery_queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0,
            )
        except (BotoCoreError, ClientError):
            logger.exception("releasing a message of %s failed", self.spec.delivery_queue_url)


def _error_attributes(
    error_message: str, request_id: str | None = None
) -> dict[str, MessageAttributeValueTypeDef]:
    """The attributes Lambda puts on a message it sends to a function's dead-letter queue.

    ``ErrorCode`` is the status of the Invoke call: 200 for errors of the function itself.
    """
    attributes: dict[str, MessageAttributeValueTypeDef] = {
        "ErrorCode": {"DataType": "Number", "StringValue": "200"},
        "ErrorMessage": {
            "DataType": "String",
            "StringValue": error_message[:_ERROR_MESSAGE_LIMIT] or "error",
        },
    }
    if request_id:
        attributes["RequestID"] = {"DataType": "String", "StringValue": request_id}
    return attributes
