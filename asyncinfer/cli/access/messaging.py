"""Data access for the CLI's SQS queues and Lambda functions (``watch`` and ``redrive``)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asyncinfer.cli.access.clients import calling

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import (
        DeleteMessageBatchRequestEntryTypeDef,
        MessageAttributeValueOutputTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

SQS_BATCH_MAX = 10


@dataclass(frozen=True)
class QueueDepth:
    visible: int
    in_flight: int


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    receipt_handle: str
    body: str
    attributes: Mapping[str, MessageAttributeValueOutputTypeDef]


@dataclass(frozen=True)
class OutgoingMessage:
    body: str
    attributes: Mapping[str, MessageAttributeValueOutputTypeDef]


class Queues:
    def __init__(self, client: SQSClient) -> None:
        self._client = client

    def depth(self, url: str) -> QueueDepth:
        with calling(f"queue {url}"):
            attributes = self._client.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
        return QueueDepth(
            visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
            in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )

    def receive(self, url: str, *, visibility_timeout: int) -> list[QueueMessage]:
        with calling(f"queue {url}"):
            response = self._client.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=SQS_BATCH_MAX,
                VisibilityTimeout=visibility_timeout,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
            )
        return [
            QueueMessage(
                message_id=message["MessageId"],
                receipt_handle=message["ReceiptHandle"],
                body=message.get("Body", ""),
                attributes=message.get("MessageAttributes", {}),
            )
            for message in response.get("Messages", [])
        ]

    def send(self, url: str, messages: Sequence[OutgoingMessage]) -> list[int]:
        """Send in batches; returns the positions of the messages SQS did not accept."""
        failed: list[int] = []
        for start in range(0, len(messages), SQS_BATCH_MAX):
            entries: list[SendMessageBatchRequestEntryTypeDef] = []
            for offset, message in enumerate(messages[start : start + SQS_BATCH_MAX]):
                entry: SendMessageBatchRequestEntryTypeDef = {
                    "Id": str(start + offset),
                    "MessageBody": message.body,
                }
                if message.attributes:
                    entry["MessageAttributes"] = {
                        name: _sendable_attribute(value)
                        for name, value in message.attributes.items()
                    }
                entries.append(entry)
            with calling(f"queue {url}"):
                response = self._client.send_message_batch(QueueUrl=url, Entries=entries)
            failed.extend(int(entry["Id"]) for entry in response.get("Failed", []))
        return failed

    def delete(self, url: str, receipt_handles: Sequence[str]) -> None:
        for entries in _handle_batches(receipt_handles):
            with calling(f"queue {url}"):
                self._client.delete_message_batch(QueueUrl=url, Entries=entries)

    def release(self, url: str, receipt_handles: Sequence[str]) -> None:
        """Make received messages visible again at once (nothing was done with them)."""
        for entries in _handle_batches(receipt_handles):
            with calling(f"queue {url}"):
                self._client.change_message_visibility_batch(
                    QueueUrl=url,
                    Entries=[{**entry, "VisibilityTimeout": 0} for entry in entries],
                )


def _handle_batches(
    receipt_handles: Sequence[str],
) -> Iterator[list[DeleteMessageBatchRequestEntryTypeDef]]:
    """Receipt handles in batches of at most ``SQS_BATCH_MAX``, each with its position as Id."""
    for start in range(0, len(receipt_handles), SQS_BATCH_MAX):
        chunk = receipt_handles[start : start + SQS_BATCH_MAX]
        yield [{"Id": str(index), "ReceiptHandle": handle} for index, handle in enumerate(chunk)]


def _sendable_attribute(value: MessageAttributeValueOutputTypeDef) -> Any:
    return {
        name: value[name] for name in ("DataType", "StringValue", "BinaryValue") if name in value
    }


class Functions:
    def __init__(self, client: Any) -> None:
        self._client = client

    def invoke_async(self, function_name: str, event: Mapping[str, Any]) -> None:
        """Lambda ``Invoke`` with ``InvocationType=Event``: queued with the function's own
        retries and on-failure destination, as an invocation by SNS is."""
        with calling(f"function {function_name}"):
            self._client.invoke(
                FunctionName=function_name,
                InvocationType="Event",
                Payload=json.dumps(event).encode(),
            )
