"""The shapes of Lambda's events and records, built from what SQS and SNS return.

Pure functions: the SQS and SNS event sources (``sqs``, ``sns``) and the duplicate-delivery
fault knob build on them, and tests and benchmarks use them to build the events Lambda sends.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from asyncinfer.local.lambda_runner.execution import FUNCTION_VERSION
from lambdas.common.clock import format_timestamp, utc_now

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueOutputTypeDef,
        MessageAttributeValueTypeDef,
        MessageTypeDef,
    )

    from asyncinfer.local.lambda_runner.pool import Invocation

_ERROR_MESSAGE_LIMIT = 1024  # Lambda truncates ErrorMessage in DLQ attributes to 1 KB
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
        "timestamp": format_timestamp(utc_now()),
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


def receive_count(message: MessageTypeDef) -> int:
    return int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))


def sendable_attribute(
    value: MessageAttributeValueOutputTypeDef,
) -> MessageAttributeValueTypeDef:
    attribute: MessageAttributeValueTypeDef = {"DataType": value["DataType"]}
    if "StringValue" in value:
        attribute["StringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["BinaryValue"] = value["BinaryValue"]
    return attribute


def error_attributes(
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
