"""The SQS event source mapping (``QueueSourceSpec``), as Lambda runs it.

It long-polls the queue with the queue's
visibility timeout, gathers up to ``batch_size`` messages within the batching window, invokes
the handler with a real SQS event, then deletes what succeeded: everything if the invocation
succeeded, all but the ``batchItemFailures`` with ``ReportBatchItemFailures`` (read as Lambda
reads it, see ``failed_item_ids``), nothing if it raised, crashed or timed out. Failed messages
reappear after the visibility timeout. Pollers scale like Lambda's: one to start, one more
each time a batch comes back full, one fewer after an empty poll, never more than
``maximum_concurrency`` (so never more batches in flight).

Dead letters are the queue's to move, as on AWS: a receive that finds a message already
received ``maxReceiveCount`` times moves it to the dead-letter queue instead, in one step. The
runner only makes a message that failed its last allowed receive visible at once, so that the
next receive moves it (AWS waits out the visibility timeout first; the end state is the same).
A runner that moved messages itself would be a second mover: when a handler outlived its
visibility timeout, the queue would move the message too and leave two copies. ``start()``
refuses a spec whose dead-letter queue or ``max_receive_count`` is not the queue's redrive
policy.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from asyncinfer.local.lambda_runner.event_shapes import failed_item_ids, receive_count, sqs_record
from asyncinfer.local.lambda_runner.pool import Invocation, Outcome, WorkerPool
from asyncinfer.local.lambda_runner.source import (
    MAX_MESSAGES_PER_RECEIVE,
    PAUSE_AFTER_AWS_ERROR_SECONDS,
    Counters,
)
from asyncinfer.local.provision.spec import QueueSourceSpec

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

    from asyncinfer.local.faults import DuplicateDelivery

logger = logging.getLogger(__name__)


class QueueSource:
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
        self.counters = Counters(spec.queue_url, spec.function.name)
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
            QueueUrl=self.spec.queue_url, AttributeNames=["QueueArn", "RedrivePolicy"]
        )["Attributes"]
        self._queue_arn = attributes["QueueArn"]
        self._check_redrive_policy(attributes.get("RedrivePolicy"))
        self._add_poller()

    def _check_redrive_policy(self, policy: str | None) -> None:
        """The spec's dead-letter settings must be the queue's: the queue moves dead letters."""
        spec = self.spec
        expected = None
        if spec.dead_letter_queue_url is not None:
            target = self._sqs.get_queue_attributes(
                QueueUrl=spec.dead_letter_queue_url, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
            expected = (target, spec.max_receive_count)
        actual = None
        if policy:
            redrive = json.loads(policy)
            actual = (redrive.get("deadLetterTargetArn"), int(redrive.get("maxReceiveCount", 0)))
        if actual != expected:
            raise ValueError(
                f"{spec.queue_url}: the queue's redrive policy (dead-letter queue, maxReceiveCount)"
                f" is {actual}, the event source's {expected}: they must agree, since the queue"
                " moves dead letters"
            )

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
                self._stopping.wait(PAUSE_AFTER_AWS_ERROR_SECONDS)
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
                MaxNumberOfMessages=min(MAX_MESSAGES_PER_RECEIVE, spec.batch_size - len(batch)),
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=spec.visibility_timeout_seconds,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not received and window_ends is None:
                return []  # one empty poll: let the poller check for stop and scale-in
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
            retried=sum(1 for m in messages if receive_count(m) > 1),
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
        exhausted = [m for m in failed if receive_count(m) >= self.spec.max_receive_count]
        if exhausted and self.spec.dead_letter_queue_url:
            self._hand_to_redrive(exhausted)

    def _failed_ids(self, invocation: Invocation, message_ids: list[str]) -> set[str]:
        if not invocation.succeeded:
            return set(message_ids)
        if not self.spec.report_batch_item_failures:
            return set()
        return failed_item_ids(invocation.response, message_ids)

    def _delete(self, messages: list[MessageTypeDef]) -> None:
        for chunk in _chunks(messages):
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

    def _hand_to_redrive(self, messages: list[MessageTypeDef]) -> None:
        """Messages that failed their last allowed receive: visible at once, for the queue to
        move at the next receive. One the queue moved already (its handler outlived the
        visibility timeout) refuses its receipt handle, and one this call misses reappears after
        its visibility timeout: either way the queue moves each exactly once."""
        for chunk in _chunks(messages):
            try:
                result = self._sqs.change_message_visibility_batch(
                    QueueUrl=self.spec.queue_url,
                    Entries=[
                        {
                            "Id": str(index),
                            "ReceiptHandle": message["ReceiptHandle"],
                            "VisibilityTimeout": 0,
                        }
                        for index, message in enumerate(chunk)
                    ],
                )
            except (BotoCoreError, ClientError):
                logger.exception("making failed messages of %s visible failed", self.spec.queue_url)
                continue
            for failure in result.get("Failed", []):
                logger.info(
                    "a failed message of %s was not made visible (%s): the queue moved it already"
                    " or moves it after its visibility timeout",
                    self.spec.queue_url,
                    failure["Code"],
                )
        for message in messages:
            logger.warning(
                "%s: message %s failed on receive %d of %d: the queue moves it to the dead-letter"
                " queue",
                self.spec.function.name,
                message["MessageId"],
                receive_count(message),
                self.spec.max_receive_count,
            )
        self.counters.add(moved_to_dlq=len(messages))


def _chunks(messages: list[MessageTypeDef]) -> list[list[MessageTypeDef]]:
    """SQS batch calls take at most ten entries."""
    return [
        messages[start : start + MAX_MESSAGES_PER_RECEIVE]
        for start in range(0, len(messages), MAX_MESSAGES_PER_RECEIVE)
    ]
