"""SageMaker notifications and the SNS Lambda events that carry them, in their verbatim shapes."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"
ENDPOINT_NAME = "async-endpoint"
INPUT_BUCKET = "input-bucket"
OUTPUT_BUCKET = "output-bucket"
INFERENCE_ID = "0f" * 32
INPUT_KEY = "images/red flower.json"
INPUT_LOCATION = f"s3://{INPUT_BUCKET}/{INPUT_KEY}"
OUTPUT_LOCATION = f"s3://{OUTPUT_BUCKET}/out/8d1f6a52-2d2c-4b84-b1a0-63b0f2c3a6d1.out"
FAILURE_LOCATION = f"s3://{OUTPUT_BUCKET}/failures/8d1f6a52-2d2c-4b84-b1a0-63b0f2c3a6d1-error.out"
SUCCESS_TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:async-success"
ERROR_TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:async-error"
RECEIVED_TIME = "2026-11-21T10:00:00.250Z"
EVENT_TIME = "2026-11-21T10:00:03.125Z"
LATER_EVENT_TIME = "2026-11-21T10:05:00.000Z"
FAILURE_REASON = (
    "ClientError: Received server error (500) from model. See the SageMaker Endpoint logs in "
    "your account for more information."
)


def request_parameters(endpoint_name: str = ENDPOINT_NAME) -> dict[str, str]:
    return {
        "accept": "application/json",
        "contentType": "application/json",
        "customAttributes": "tenant=blue",
        "endpointName": endpoint_name,
        "inputLocation": INPUT_LOCATION,
    }


def success(
    *,
    inference_id: str = INFERENCE_ID,
    event_time: str = EVENT_TIME,
    received_time: str = RECEIVED_TIME,
    output_location: str = OUTPUT_LOCATION,
    response_content_type: str = "application/json",
    endpoint_name: str = ENDPOINT_NAME,
) -> dict[str, Any]:
    return {
        "awsRegion": REGION,
        "eventTime": event_time,
        "receivedTime": received_time,
        "invocationStatus": "Completed",
        "requestParameters": request_parameters(endpoint_name),
        "responseParameters": {
            "contentType": response_content_type,
            "outputLocation": output_location,
        },
        "inferenceId": inference_id,
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    }


def failure(
    *,
    inference_id: str = INFERENCE_ID,
    event_time: str = EVENT_TIME,
    received_time: str = RECEIVED_TIME,
    failure_location: str | None = None,
) -> dict[str, Any]:
    """Without ``failure_location`` there is no ``responseParameters`` at all."""
    notification: dict[str, Any] = {
        "awsRegion": REGION,
        "eventTime": event_time,
        "receivedTime": received_time,
        "invocationStatus": "Failed",
        "failureReason": FAILURE_REASON,
        "requestParameters": request_parameters(),
        "inferenceId": inference_id,
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    }
    if failure_location is not None:
        notification["responseParameters"] = {
            "contentType": "text/plain; charset=utf-8",
            "failureLocation": failure_location,
        }
    return notification


def with_response_body(notification: dict[str, Any], content: bytes) -> dict[str, Any]:
    return notification | {
        "responseBody": {
            "content": base64.b64encode(content).decode("ascii"),
            "encoding": "BASE64",
            "message": "response body included",
        }
    }


TEST_NOTIFICATION: dict[str, Any] = {
    "eventVersion": "1.0",
    "eventSource": "aws:sagemaker",
    "eventName": "TestNotification",
}


def sns_record(message: str, *, topic_arn: str = SUCCESS_TOPIC_ARN) -> dict[str, Any]:
    message_id = str(uuid.uuid4())
    subscription_arn = f"{topic_arn}:{uuid.uuid4()}"
    return {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription_arn,
        "Sns": {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": topic_arn,
            "Subject": None,
            "Message": message,
            "Timestamp": "2026-11-21T10:00:03.200Z",
            "SignatureVersion": "1",
            "Signature": "tcc6faL2yUC6dgZdmrwh1Y4cGa/ebXEkAi6RibDsvpi+tE/1+82j...65r==",
            "SigningCertUrl": (
                f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-0000000000.pem"
            ),
            "UnsubscribeUrl": (
                f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe"
                f"&SubscriptionArn={subscription_arn}"
            ),
            "MessageAttributes": {},
        },
    }


def sns_event(*messages: str | dict[str, Any], topic_arn: str = SUCCESS_TOPIC_ARN) -> Any:
    """The Lambda event as JSON text decoded, exactly as the runtime hands it to the handler.

    A dict message is serialized as SageMaker publishes it; a string is sent as it is.
    """
    records = [
        sns_record(
            message if isinstance(message, str) else json.dumps(message), topic_arn=topic_arn
        )
        for message in messages
    ]
    return json.loads(json.dumps({"Records": records}))
