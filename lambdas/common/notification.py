"""SageMaker's asynchronous-inference notifications, as published to the SNS topics.

The models are strict about what the results function relies on (a missing required field, an
unknown ``eventName`` or ``invocationStatus`` or an unparseable timestamp is a validation
error) and tolerant of everything else: fields AWS adds later are ignored, and every field the
API documents as optional is optional here, so no notification SageMaker can publish ends in
the failure queue.

Required on every result: ``eventSource`` = ``aws:sagemaker``, ``eventName`` =
``InferenceResult``, ``eventTime``, ``invocationStatus``, ``inferenceId`` and
``requestParameters.endpointName`` (the function routes on it). A ``Completed`` result also
needs ``receivedTime`` and ``responseParameters.outputLocation``; a ``Failed`` one needs
``failureReason``.

Optional, each with the shape that omits it:

* ``requestParameters.inputLocation``: absent when the request sent its payload inline
  (``Body``, 2026) instead of an ``InputLocation``; the record then keeps the input location the
  ingest function wrote (or none, for a request this pipeline did not send).
* ``requestParameters.accept`` / ``customAttributes``: absent when the request had none;
  ``contentType``: SageMaker fills in its default, tolerated when missing.
* ``responseParameters``: absent on a failure without a failure object (AWS's own failure
  examples); its ``contentType`` may be missing.
* a ``Failed`` result's ``receivedTime``: tolerated when missing (recorded without queue time).
* ``responseBody``: only with ``IncludeInferenceResponseIn``; ``awsRegion`` is ignored.

The SNS event that carries them is ``lambdas.results.envelope``'s. Each ``Message`` stays a
string there and is validated here on its own, so one malformed message does not stop the
others of the same event.

Every model here defers building its schema (``defer_build``) to its first use, in the first
invocation: a container builds the ones its notifications need, not all of them at import.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter
from pydantic.alias_generators import to_camel

from lambdas.common.clock import parse_timestamp
from lambdas.common.records import INFERENCE_ID_MAX_LENGTH

RESPONSE_BODY_BASE64 = "BASE64"


def _timestamp(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("a timestamp is an ISO-8601 string")  # pydantic reports ValueErrors
    return parse_timestamp(value)


Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]


class _SageMakerModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, extra="ignore", frozen=True, defer_build=True
    )


class RequestParameters(_SageMakerModel):
    endpoint_name: str = Field(min_length=1)
    # Absent for a request sent with an inline Body (no InputLocation).
    input_location: str | None = Field(default=None, min_length=1)
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None


class ResponseBody(_SageMakerModel):
    """The inference response itself, present with ``IncludeInferenceResponseIn`` (<= 128 KB)."""

    content: str | None = None
    encoding: str | None = None
    message: str | None = None


class CompletedResponseParameters(_SageMakerModel):
    output_location: str = Field(min_length=1)
    content_type: str | None = None


class FailedResponseParameters(_SageMakerModel):
    failure_location: str | None = None
    content_type: str | None = None


class _InferenceResult(_SageMakerModel):
    event_source: Literal["aws:sagemaker"]
    event_name: Literal["InferenceResult"]
    event_version: str
    event_time: Timestamp
    inference_id: str = Field(min_length=1, max_length=INFERENCE_ID_MAX_LENGTH)
    request_parameters: RequestParameters
    response_body: ResponseBody | None = None


class InferenceCompleted(_InferenceResult):
    invocation_status: Literal["Completed"]
    received_time: Timestamp
    response_parameters: CompletedResponseParameters


class InferenceFailed(_InferenceResult):
    invocation_status: Literal["Failed"]
    failure_reason: str = Field(min_length=1)
    received_time: Timestamp | None = None
    response_parameters: FailedResponseParameters | None = None


InferenceResult = Annotated[
    InferenceCompleted | InferenceFailed, Field(discriminator="invocation_status")
]


class TestNotification(_SageMakerModel):
    """Sent once after an endpoint is created or updated, to check the topic: not a result."""

    __test__ = False  # a notification model, not a pytest test class

    event_source: Literal["aws:sagemaker"]
    event_name: Literal["TestNotification"]
    event_version: str


Notification = Annotated[InferenceResult | TestNotification, Field(discriminator="event_name")]
NOTIFICATION_ADAPTER: TypeAdapter[Notification] = TypeAdapter(
    Notification, config=ConfigDict(defer_build=True)
)


def parse_notification(message: str) -> InferenceCompleted | InferenceFailed | TestNotification:
    """Validates one SNS ``Message``; raises ``pydantic.ValidationError`` (bad JSON included)."""
    return NOTIFICATION_ADAPTER.validate_json(message)
