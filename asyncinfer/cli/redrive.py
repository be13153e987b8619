"""``redrive``: dead letters back to where they came from, never deleting before the copy is sent.

Sources and where their messages go:

* the ingest DLQ holds S3 event messages: back to the ingest queue, body and attributes as-is;
* the success/error subscription DLQs hold SNS envelopes: in local mode back to the topic's
  delivery queue (as-is), otherwise the envelope's ``Message`` is published to its ``TopicArn``;
* the results function's async-failure destination holds Lambda invocation records whose
  ``requestPayload`` is the original SNS event: each record's ``Sns.Message`` is published
  again to its ``TopicArn`` (or, in local mode, its envelope is sent to the delivery queue).

Duplicates this may cause are harmless: ingest and results writes are idempotent.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import unquote_plus

from asyncinfer.cli.errors import AwsCallError, cli_error_for
from asyncinfer.cli.messaging import OutgoingMessage, QueueMessage, Queues, Topics
from lambdas.common.contract import LocalOutput, StackOutput
from lambdas.common.records import inference_id_for

HOLD_SECONDS = 300  # how long a message we looked at stays invisible while the run goes on
IDLE_ROUNDS = 3  # receives in a row that bring nothing new before the queue counts as drained
QUEUE_NAMES = ("ingest", "success", "error", "results")  # what `--queue` accepts


class SourceKind(StrEnum):
    INGEST = "ingest"
    TOPIC_DLQ = "topic-dlq"
    LAMBDA_FAILURES = "lambda-failures"


@dataclass(frozen=True)
class RedriveSource:
    name: str
    queue_url: str
    kind: SourceKind
    destination: str  # shown to the user
    destination_queue: str | None = None  # ingest queue, or a local topic delivery queue
    topic_arn: str | None = None  # where raw (non-envelope) messages of a topic DLQ go
    delivery_queues: Mapping[str, str] = field(default_factory=dict)  # topic ARN -> queue


@dataclass(frozen=True)
class Copy:
    body: str
    queue_url: str | None = None
    topic_arn: str | None = None
    subject: str | None = None
    queue_attributes: Mapping[str, Any] = field(default_factory=dict)
    topic_attributes: Mapping[str, Any] = field(default_factory=dict)
    inference_id: str | None = None


class UnroutableMessage(ValueError):
    """A dead letter whose destination cannot be told: it stays where it is."""


@dataclass(frozen=True)
class MovedMessage:
    message_id: str  # the dead letter's SQS message id
    inference_ids: tuple[str, ...]  # the inferences it concerns, when the body names them


@dataclass
class RedriveReport:
    source: RedriveSource
    dry_run: bool
    moved: list[MovedMessage] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (message id, why)
    failed: list[tuple[str, str]] = field(default_factory=list)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise UnroutableMessage(f"not JSON: {error}") from error
    if not isinstance(value, dict):
        raise UnroutableMessage("not a JSON object")
    return value


def _notification_inference_id(message: str) -> str | None:
    try:
        value = json.loads(message)
    except ValueError:
        return None
    inference_id = value.get("inferenceId") if isinstance(value, dict) else None
    return inference_id if isinstance(inference_id, str) else None


def _s3_event_inference_ids(body: str) -> Iterator[str]:
    try:
        event = json.loads(body)
    except ValueError:
        return
    records = event.get("Records") if isinstance(event, dict) else None
    for record in records if isinstance(records, list) else []:
        s3 = record.get("s3", {}) if isinstance(record, dict) else {}
        bucket = s3.get("bucket", {}).get("name")
        target = s3.get("object", {})
        if not bucket or "key" not in target:
            continue
        try:
            yield inference_id_for(
                bucket, unquote_plus(target["key"]), target.get("versionId"), target.get("eTag")
            )
        except ValueError:
            continue


def _topic_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """SNS-event/envelope attributes (``Type``/``Value``) in Publish's shape."""
    converted: dict[str, Any] = {}
    for name, value in attributes.items():
        data_type = str(value.get("Type", "String"))
        if data_type.startswith("Binary"):
            converted[name] = {
                "DataType": data_type,
                "BinaryValue": base64.b64decode(value.get("Value", "")),
            }
        else:
            converted[name] = {"DataType": data_type, "StringValue": str(value.get("Value", ""))}
    return converted


def _envelope_from_lambda_record(sns: Mapping[str, Any]) -> dict[str, Any]:
    """A Lambda SNS record's ``Sns`` object in the JSON shape SNS delivers to SQS."""
    renamed = {"SigningCertUrl": "SigningCertURL", "UnsubscribeUrl": "UnsubscribeURL"}
    return {renamed.get(name, name): value for name, value in sns.items()}


def copies_for(source: RedriveSource, message: QueueMessage) -> list[Copy]:
    if source.kind is SourceKind.INGEST:
        if source.destination_queue is None:
            raise UnroutableMessage("no ingest queue")
        ids = list(_s3_event_inference_ids(message.body))
        return [
            Copy(
                body=message.body,
                queue_url=source.destination_queue,
                queue_attributes=message.attributes,
                inference_id=ids[0] if len(ids) == 1 else None,
            )
        ]
    if source.kind is SourceKind.TOPIC_DLQ:
        return [_topic_dlq_copy(source, message)]
    return _lambda_failure_copies(source, message)


def _topic_dlq_copy(source: RedriveSource, message: QueueMessage) -> Copy:
    if source.destination_queue is not None:  # local mode: the delivery queue takes it as-is
        try:
            notification = _json_object(message.body).get("Message")
        except UnroutableMessage:  # moved all the same: the delivery queue is its source
            notification = None
        return Copy(
            body=message.body,
            queue_url=source.destination_queue,
            queue_attributes=message.attributes,
            inference_id=_notification_inference_id(notification)
            if isinstance(notification, str)
            else None,
        )
    document = _json_object(message.body)
    if isinstance(document.get("Message"), str) and isinstance(document.get("TopicArn"), str):
        return Copy(
            body=document["Message"],
            topic_arn=document["TopicArn"],
            subject=document.get("Subject") or None,
            topic_attributes=_topic_attributes(document.get("MessageAttributes") or {}),
            inference_id=_notification_inference_id(document["Message"]),
        )
    if source.topic_arn is not None:  # raw message delivery: the body is the notification
        return Copy(
            body=message.body,
            topic_arn=source.topic_arn,
            inference_id=_notification_inference_id(message.body),
        )
    raise UnroutableMessage("neither an SNS envelope nor a known topic")


def _lambda_failure_copies(source: RedriveSource, message: QueueMessage) -> list[Copy]:
    document = _json_object(message.body)
    payload = document.get("requestPayload")
    records = payload.get("Records") if isinstance(payload, dict) else None
    if not isinstance(records, list) or not records:
        raise UnroutableMessage("no requestPayload.Records (not a Lambda failure record)")
    copies: list[Copy] = []
    for record in records:
        sns = record.get("Sns") if isinstance(record, dict) else None
        if (
            not isinstance(sns, dict)
            or not isinstance(sns.get("Message"), str)
            or not isinstance(sns.get("TopicArn"), str)
        ):
            raise UnroutableMessage("a record without Sns.Message and Sns.TopicArn")
        inference_id = _notification_inference_id(sns["Message"])
        delivery_queue = source.delivery_queues.get(sns["TopicArn"])
        if delivery_queue is not None:
            copies.append(
                Copy(
                    body=json.dumps(_envelope_from_lambda_record(sns)),
                    queue_url=delivery_queue,
                    inference_id=inference_id,
                )
            )
        else:
            copies.append(
                Copy(
                    body=sns["Message"],
                    topic_arn=sns["TopicArn"],
                    subject=sns.get("Subject") or None,
                    topic_attributes=_topic_attributes(sns.get("MessageAttributes") or {}),
                    inference_id=inference_id,
                )
            )
    return copies


def _moved(message: QueueMessage, copies: list[Copy]) -> MovedMessage:
    ids = tuple(copy.inference_id for copy in copies if copy.inference_id)
    return MovedMessage(message.message_id, ids)


class Redriver:
    def __init__(
        self,
        queues: Queues,
        topics: Topics,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._queues = queues
        self._topics = topics
        self._sleep = sleep

    def run(self, source: RedriveSource, *, dry_run: bool) -> RedriveReport:
        """Drain ``source`` once. Every message looked at and not moved is made visible again
        at the end; a moved message is deleted only after all its copies were accepted."""
        report = RedriveReport(source, dry_run)
        seen: set[str] = set()
        held: list[str] = []
        idle_rounds = 0
        try:
            while idle_rounds < IDLE_ROUNDS:
                batch = self._queues.receive(source.queue_url, visibility_timeout=HOLD_SECONDS)
                fresh = [message for message in batch if message.message_id not in seen]
                held.extend(
                    message.receipt_handle for message in batch if message.message_id in seen
                )
                if not fresh:
                    if not batch and self._queues.depth(source.queue_url).visible == 0:
                        break
                    idle_rounds += 1
                    self._sleep(0.1 * idle_rounds)
                    continue
                idle_rounds = 0
                seen.update(message.message_id for message in fresh)
                held.extend(self._move(source, fresh, report, dry_run=dry_run))
        finally:
            if held:
                self._queues.release(source.queue_url, held)
        return report

    def _move(
        self,
        source: RedriveSource,
        messages: list[QueueMessage],
        report: RedriveReport,
        *,
        dry_run: bool,
    ) -> list[str]:
        """Copy then delete one received batch; returns the receipts to release."""
        keep: list[str] = []
        planned: list[tuple[QueueMessage, list[Copy]]] = []
        for message in messages:
            try:
                copies = copies_for(source, message)
            except UnroutableMessage as reason:
                report.skipped.append((message.message_id, str(reason)))
                keep.append(message.receipt_handle)
                continue
            planned.append((message, copies))
        if dry_run:
            for message, copies in planned:
                report.moved.append(_moved(message, copies))
                keep.append(message.receipt_handle)
            return keep
        errors = self._send(planned)
        done: list[str] = []
        for message, copies in planned:
            error = errors.get(message.message_id)
            if error is not None:
                report.failed.append((message.message_id, error))
                keep.append(message.receipt_handle)
                continue
            report.moved.append(_moved(message, copies))
            done.append(message.receipt_handle)
        self._queues.delete(source.queue_url, done)
        return keep

    def _send(self, planned: list[tuple[QueueMessage, list[Copy]]]) -> dict[str, str]:
        """Send every copy; returns message id -> error for the messages not fully copied."""
        errors: dict[str, str] = {}
        by_queue: dict[str, list[tuple[str, Copy]]] = {}
        for message, copies in planned:
            for copy in copies:
                if copy.queue_url is not None:
                    by_queue.setdefault(copy.queue_url, []).append((message.message_id, copy))
                else:
                    try:
                        self._topics.publish(
                            copy.topic_arn or "",
                            copy.body,
                            subject=copy.subject,
                            attributes=copy.topic_attributes,
                        )
                    except AwsCallError as error:
                        errors[message.message_id] = cli_error_for(error).format_message()
        for queue_url, entries in by_queue.items():
            outgoing = [OutgoingMessage(copy.body, copy.queue_attributes) for _, copy in entries]
            try:
                rejected = self._queues.send(queue_url, outgoing)
            except AwsCallError as error:
                reason = cli_error_for(error).format_message()
                errors.update((message_id, reason) for message_id, _ in entries)
                continue
            for position in rejected:
                errors[entries[position][0]] = f"{queue_url} rejected the copy"
        return errors


# Per topic: its ``--queue`` name, then the outputs naming the topic, local mode's delivery
# queue for it, and its subscription's dead-letter queue.
TOPIC_OUTPUTS = (
    ("success", StackOutput.SUCCESS_TOPIC_ARN, LocalOutput.SUCCESS_DELIVERY_QUEUE_URL,
     StackOutput.SUCCESS_DEAD_LETTER_QUEUE_URL),
    ("error", StackOutput.ERROR_TOPIC_ARN, LocalOutput.ERROR_DELIVERY_QUEUE_URL,
     StackOutput.ERROR_DEAD_LETTER_QUEUE_URL),
)  # fmt: skip


def sources_from_outputs(outputs: Mapping[str, str]) -> dict[str, RedriveSource]:
    """The dead-letter queues a target lists, keyed by the names ``--queue`` accepts.

    Local mode lists its topic delivery queues (``SuccessDeliveryQueueUrl``,
    ``ErrorDeliveryQueueUrl``): dead letters of a topic go back there instead of through SNS.
    """
    sources: dict[str, RedriveSource] = {}
    ingest_dlq = outputs.get(StackOutput.INGEST_DEAD_LETTER_QUEUE_URL)
    ingest_queue = outputs.get(StackOutput.INGEST_QUEUE_URL)
    if ingest_dlq and ingest_queue:
        sources["ingest"] = RedriveSource(
            name="ingest DLQ",
            queue_url=ingest_dlq,
            kind=SourceKind.INGEST,
            destination="ingest queue",
            destination_queue=ingest_queue,
        )
    delivery_queues: dict[str, str] = {}
    for name, topic_output, delivery_output, dlq_output in TOPIC_OUTPUTS:
        topic = outputs.get(topic_output)
        delivery = outputs.get(delivery_output)
        if topic and delivery:
            delivery_queues[topic] = delivery
        dlq = outputs.get(dlq_output)
        if not dlq:
            continue
        sources[name] = RedriveSource(
            name=f"{name} DLQ",
            queue_url=dlq,
            kind=SourceKind.TOPIC_DLQ,
            destination=f"{name} delivery queue" if delivery else f"{name} topic",
            destination_queue=delivery,
            topic_arn=topic,
        )
    failures = outputs.get(StackOutput.RESULTS_FAILURE_QUEUE_URL)
    if failures:
        sources["results"] = RedriveSource(
            name="results failures",
            queue_url=failures,
            kind=SourceKind.LAMBDA_FAILURES,
            destination="topic delivery queues" if delivery_queues else "their topics",
            delivery_queues=delivery_queues,
        )
    return sources
