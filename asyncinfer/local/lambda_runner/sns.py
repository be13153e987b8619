"""SNS → Lambda (``TopicSourceSpec``): a topic's notifications as async invocations.

The topic delivers to an SQS queue (raw delivery
off); each envelope becomes a real SNS event with one record, invoked asynchronously with
bounded concurrency. A failed invocation is retried as Lambda retries async invocations (up to
``max_attempts`` attempts in all, backoff doubling from ``async_retry_backoff_seconds``
instead of one and two minutes), then it goes to ``dead_letter_queue_url``: as the Lambda
invocation record Lambda writes to an on-failure destination (``requestPayload`` = the SNS
event, ``responsePayload`` = the last error) if that queue is one of ``failure_destinations``,
otherwise as the envelope itself, as a subscription DLQ holds it, with the last error in
Lambda's DLQ attributes (``RequestID``, ``ErrorCode``, ``ErrorMessage``). A message is deleted
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from asyncinfer.local.lambda_runner.event_shapes import (
    async_failure_record,
    error_attributes,
    parse_sns_envelope,
    sns_event,
)
from asyncinfer.local.lambda_runner.execution import function_arn
from asyncinfer.local.lambda_runner.pool import Invocation, Outcome, WorkerPool
from asyncinfer.local.lambda_runner.source import (
    MAX_MESSAGES_PER_RECEIVE,
    MAX_VISIBILITY_TIMEOUT_SECONDS,
    PAUSE_AFTER_AWS_ERROR_SECONDS,
    Counters,
)
from asyncinfer.local.provision.spec import TopicSourceSpec

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef, MessageTypeDef

    from asyncinfer.local.faults import DuplicateDelivery

logger = logging.getLogger(__name__)


class TopicSource:
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
        self.counters = Counters(spec.topic_arn, spec.function.name)
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
            MAX_VISIBILITY_TIMEOUT_SECONDS,
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
            while granted < MAX_MESSAGES_PER_RECEIVE and self._slots.acquire(blocking=False):
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
                self._stopping.wait(PAUSE_AFTER_AWS_ERROR_SECONDS)
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
            self._dead_letter(message, message["Body"], error_attributes(str(error)))
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
        self._retries_exhausted(message, event, invocation)

    def _retries_exhausted(
        self, message: MessageTypeDef, event: Mapping[str, Any], invocation: Invocation
    ) -> None:
        """Every attempt failed: on to the on-failure destination or the subscription DLQ."""
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
            attributes = error_attributes(last_error, invocation.request_id)
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
