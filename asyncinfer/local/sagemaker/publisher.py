"""The SNS notifications SageMaker publishes when an asynchronous inference ends (the
``InferenceResult`` messages) and after it creates an endpoint (``TestNotification``)."""

from __future__ import annotations

import base64
import http
from datetime import datetime
from typing import Any

from asyncinfer.local.sagemaker.wire import AcceptedInvocation
from lambdas.common.clock import format_timestamp

NOTIFICATION_RESPONSE_BODY_MAX_BYTES = 128 * 1024


def _request_parameters(invocation: AcceptedInvocation) -> dict[str, str]:
    request = invocation.request
    parameters: dict[str, str] = {}
    if request.accept is not None:
        parameters["accept"] = request.accept
    parameters["contentType"] = invocation.content_type
    if request.custom_attributes is not None:
        parameters["customAttributes"] = request.custom_attributes
    parameters["endpointName"] = request.endpoint_name
    if request.input_location is not None:
        parameters["inputLocation"] = request.input_location
    return parameters


def success_notification(
    invocation: AcceptedInvocation,
    *,
    region: str,
    event_time: datetime,
    response_content_type: str,
    response_body: bytes | None = None,
    response_status: int = 200,
) -> dict[str, Any]:
    """The ``InferenceResult`` message SageMaker publishes to the success topic.

    ``response_body`` is given when the endpoint config includes the response in success
    notifications; it is added only when it is at most 128 KB, as SageMaker does.
    """
    notification: dict[str, Any] = {
        "awsRegion": region,
        "eventTime": format_timestamp(event_time),
        "receivedTime": format_timestamp(invocation.received_at),
        "invocationStatus": "Completed",
        "requestParameters": _request_parameters(invocation),
        "responseParameters": {
            "contentType": response_content_type,
            "outputLocation": invocation.output_location,
        },
    }
    if response_body is not None and len(response_body) <= NOTIFICATION_RESPONSE_BODY_MAX_BYTES:
        notification["responseBody"] = {
            "content": base64.b64encode(response_body).decode("ascii"),
            "encoding": "BASE64",
            "message": http.HTTPStatus(response_status).phrase,
        }
    notification.update(_event_fields(invocation.inference_id))
    return notification


def failure_notification(
    invocation: AcceptedInvocation,
    *,
    region: str,
    event_time: datetime,
    failure_reason: str,
    failure_location: str | None,
) -> dict[str, Any]:
    """The ``InferenceResult`` message SageMaker publishes to the error topic.

    ``responseParameters.failureLocation`` is there only when a failure object was written.
    """
    notification: dict[str, Any] = {
        "awsRegion": region,
        "eventTime": format_timestamp(event_time),
        "receivedTime": format_timestamp(invocation.received_at),
        "invocationStatus": "Failed",
        "failureReason": failure_reason,
        "requestParameters": _request_parameters(invocation),
    }
    if failure_location is not None:
        notification["responseParameters"] = {"failureLocation": failure_location}
    notification.update(_event_fields(invocation.inference_id))
    return notification


def _event_fields(inference_id: str) -> dict[str, str]:
    return {
        "inferenceId": inference_id,
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    }


def endpoint_test_notification() -> dict[str, str]:
    """What SageMaker publishes to both topics after it creates or updates the endpoint."""
    return {"eventVersion": "1.0", "eventSource": "aws:sagemaker", "eventName": "TestNotification"}
