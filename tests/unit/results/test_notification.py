"""The notification models: strict on what is used, tolerant of what AWS adds later."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from lambdas.common.notification import (
    InferenceCompleted,
    InferenceFailed,
    TestNotification,
    parse_notification,
)
from lambdas.results.envelope import SageMakerSnsEvent
from tests.unit.results.events import (
    FAILURE_LOCATION,
    INFERENCE_ID,
    INPUT_LOCATION,
    OUTPUT_LOCATION,
    TEST_NOTIFICATION,
    failure,
    sns_event,
    success,
    with_response_body,
)


def parse(notification: dict[str, Any]) -> InferenceCompleted | InferenceFailed | TestNotification:
    return parse_notification(json.dumps(notification))


def test_success_shape() -> None:
    notification = parse(success())

    assert isinstance(notification, InferenceCompleted)
    assert notification.inference_id == INFERENCE_ID
    assert notification.event_time == datetime(2026, 11, 21, 10, 0, 3, 125000, tzinfo=UTC)
    assert notification.received_time == datetime(2026, 11, 21, 10, 0, 0, 250000, tzinfo=UTC)
    assert notification.request_parameters.input_location == INPUT_LOCATION
    assert notification.request_parameters.custom_attributes == "tenant=blue"
    assert notification.response_parameters.output_location == OUTPUT_LOCATION
    assert notification.response_body is None


def test_failure_shapes() -> None:
    bare = parse(failure())
    located = parse(failure(failure_location=FAILURE_LOCATION))

    assert isinstance(bare, InferenceFailed)
    assert bare.response_parameters is None
    assert isinstance(located, InferenceFailed)
    assert located.response_parameters is not None
    assert located.response_parameters.failure_location == FAILURE_LOCATION


def test_failure_in_the_documented_minimal_shape() -> None:
    """AWS's failure example: no contentType, no responseParameters."""
    notification = failure()
    notification["requestParameters"] = {
        "endpointName": "async-endpoint",
        "inputLocation": INPUT_LOCATION,
    }

    parsed = parse(notification)

    assert isinstance(parsed, InferenceFailed)
    assert parsed.request_parameters.content_type is None


def test_response_body() -> None:
    parsed = parse(with_response_body(success(), b"{}"))

    assert isinstance(parsed, InferenceCompleted)
    assert parsed.response_body is not None
    assert parsed.response_body.encoding == "BASE64"
    assert parsed.response_body.content == "e30="


def test_test_notification() -> None:
    assert isinstance(parse(TEST_NOTIFICATION), TestNotification)


def test_extra_fields_are_ignored() -> None:
    notification = success() | {"futureField": [1, 2]}
    notification["responseParameters"] |= {"outputSize": 12}

    assert isinstance(parse(notification), InferenceCompleted)


@pytest.mark.parametrize(
    "message",
    [
        "",
        "not json",
        "[]",
        json.dumps(success() | {"invocationStatus": "Pending"}),
        json.dumps(success() | {"eventName": "SomethingElse"}),
        json.dumps(success() | {"inferenceId": "x" * 65}),
        json.dumps(success() | {"receivedTime": None}),
        json.dumps({k: v for k, v in success().items() if k != "requestParameters"}),
        json.dumps(failure() | {"failureReason": ""}),
    ],
)
def test_invalid_messages_raise(message: str) -> None:
    with pytest.raises(ValidationError):
        parse_notification(message)


def test_sns_envelope_keeps_each_message_as_text() -> None:
    event = SageMakerSnsEvent.model_validate(sns_event(success(), "not json"))

    assert [record.Sns.Message for record in event.Records][1] == "not json"
    assert event.Records[0].Sns.TopicArn.endswith(":async-success")
