"""The InvokeEndpointAsync wire protocol: validation, result locations, notifications."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

import pytest

from asyncinfer.local.sagemaker import publisher, wire
from asyncinfer.local.sagemaker.wire import ApiError, InvocationRequest
from tests.documented import NOTIFICATION_KEYS

RECEIVED = datetime(2026, 11, 21, 10, 0, 0, 455000, tzinfo=UTC)
FINISHED = datetime(2026, 11, 21, 10, 0, 1, 608000, tzinfo=UTC)
LOCATION = "s3://input-bucket/incoming/red flower.csv"


def parse(headers: dict[str, str], body: bytes = b"", endpoint: str = "ep") -> InvocationRequest:
    return wire.parse_invocation(endpoint, headers, body)


def rejection(headers: dict[str, str], body: bytes = b"", endpoint: str = "ep") -> str:
    with pytest.raises(ApiError) as raised:
        parse(headers, body, endpoint)
    assert raised.value.code == "ValidationError"
    assert raised.value.status == 400
    return raised.value.message


def test_parses_every_header_case_insensitively() -> None:
    request = parse(
        {
            "x-amzn-sagemaker-inputlocation": LOCATION,
            "X-AMZN-SAGEMAKER-CONTENT-TYPE": "text/csv",
            "X-Amzn-SageMaker-Accept": "application/json",
            "X-Amzn-SageMaker-Custom-Attributes": "trace=abc; tenant=7",
            "X-Amzn-SageMaker-Inference-Id": "my id-1",
            "X-Amzn-SageMaker-RequestTTLSeconds": "60",
            "X-Amzn-SageMaker-InvocationTimeoutSeconds": "3600",
        }
    )

    assert request == InvocationRequest(
        endpoint_name="ep",
        inference_id="my id-1",
        content_type="text/csv",
        accept="application/json",
        custom_attributes="trace=abc; tenant=7",
        input_location=LOCATION,
        body=None,
        request_ttl_seconds=60,
        invocation_timeout_seconds=3600,
        output_path_extension=None,
        filename=None,
    )


def test_applies_sagemaker_defaults() -> None:
    request = parse({wire.INPUT_LOCATION_HEADER: LOCATION})

    assert request.request_ttl_seconds == 21600
    assert request.invocation_timeout_seconds == 900
    assert request.inference_id is None
    assert request.content_type is None


def test_accepts_an_inline_body_instead_of_an_input_location() -> None:
    request = parse({}, body=b"5.1,3.5,1.4,0.2")

    assert request.body == b"5.1,3.5,1.4,0.2"
    assert request.input_location is None


def header(name: str, value: str) -> dict[str, str]:
    return {wire.INPUT_LOCATION_HEADER: LOCATION, name: value}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            header(wire.REQUEST_TTL_HEADER, "59"),
            "1 validation error detected: Value '59' at 'requestTTLSeconds' failed to satisfy "
            "constraint: Member must have value greater than or equal to 60",
        ),
        (
            header(wire.REQUEST_TTL_HEADER, "21601"),
            "Member must have value less than or equal to 21600",
        ),
        (header(wire.REQUEST_TTL_HEADER, "1h"), "at 'requestTTLSeconds'"),
        (
            header(wire.INVOCATION_TIMEOUT_HEADER, "0"),
            "Value '0' at 'invocationTimeoutSeconds' failed to satisfy constraint: Member must "
            "have value greater than or equal to 1",
        ),
        (
            header(wire.INVOCATION_TIMEOUT_HEADER, "3601"),
            "Member must have value less than or equal to 3600",
        ),
        (header(wire.INVOCATION_TIMEOUT_HEADER, "2.5"), "Member must be an integer"),
        (header(wire.INFERENCE_ID_HEADER, ""), "have length greater than or equal to 1"),
        (header(wire.INFERENCE_ID_HEADER, "x" * 65), "less than or equal to 64"),
        (header(wire.INFERENCE_ID_HEADER, " leading"), r"\A\S[\p{Print}]*\z"),
        (header(wire.INFERENCE_ID_HEADER, "tab\there"), r"\A\S[\p{Print}]*\z"),
        (header(wire.INFERENCE_ID_HEADER, "caf\u00e9"), r"\A\S[\p{Print}]*\z"),
        (
            header(wire.CUSTOM_ATTRIBUTES_HEADER, "a" * 1025),
            "Value at 'customAttributes' failed to satisfy constraint: Member must have length "
            "less than or equal to 1024",
        ),
        (header(wire.CUSTOM_ATTRIBUTES_HEADER, "caf\u00e9"), "visible US-ASCII"),
        (header(wire.CUSTOM_ATTRIBUTES_HEADER, "bell\x07"), "visible US-ASCII"),
        (header(wire.CONTENT_TYPE_HEADER, "text/\u00e9"), r"at 'contentType'"),
        (header(wire.ACCEPT_HEADER, "a" * 1025), "at 'accept'"),
        ({wire.INPUT_LOCATION_HEADER: "bucket/key"}, "at 'inputLocation'"),
        (
            {wire.INPUT_LOCATION_HEADER: "s3://b/" + "k" * 1018},
            "Member must have length less than or equal to 1024",
        ),
        ({wire.INPUT_LOCATION_HEADER: "s3://bucket"}, "does not name an object"),
        ({wire.INPUT_LOCATION_HEADER: "s3://bucket/"}, "does not name an object"),
        (
            {wire.INPUT_LOCATION_HEADER: "https://bucket.s3.amazonaws.com/key"},
            "reads s3://bucket/key locations",
        ),
        (header(wire.OUTPUT_PATH_EXTENSION_HEADER, "s3:/x"), "at 's3OutputPathExtension'"),
        (header(wire.FILENAME_HEADER, "a.b.c"), "at 'filename'"),
        (header(wire.FILENAME_HEADER, "x" * 33), "at 'filename'"),
        ({}, "InputLocation is required"),
    ],
)
def test_rejects_what_sagemaker_rejects(headers: dict[str, str], expected: str) -> None:
    assert expected in rejection(headers)


def test_rejects_a_malformed_endpoint_name() -> None:
    message = rejection({wire.INPUT_LOCATION_HEADER: LOCATION}, endpoint="bad_name")

    assert "at 'endpointName'" in message


def test_rejects_an_inline_body_over_128000_bytes() -> None:
    message = rejection({}, body=b"x" * 128_001)

    assert "Value at 'body' failed to satisfy constraint" in message


def test_rejects_both_a_body_and_an_input_location() -> None:
    message = rejection({wire.INPUT_LOCATION_HEADER: LOCATION}, body=b"1,2,3,4")

    assert "mutually exclusive" in message


def test_reports_every_violation_at_once() -> None:
    message = rejection(
        {
            wire.INPUT_LOCATION_HEADER: LOCATION,
            wire.REQUEST_TTL_HEADER: "1",
            wire.INVOCATION_TIMEOUT_HEADER: "0",
        }
    )

    assert message.startswith("2 validation errors detected: ")
    assert "'requestTTLSeconds'" in message
    assert "'invocationTimeoutSeconds'" in message


def test_errors_carry_the_code_botocore_reads() -> None:
    error = wire.endpoint_not_found("nope", "123456789012")

    assert error.message == "Endpoint nope of account 123456789012 not found."
    assert error.headers()["X-Amzn-ErrorType"].split(":")[0] == "ValidationError"
    assert error.body() == {"message": error.message}
    assert ApiError(wire.THROTTLING_EXCEPTION, "Rate exceeded").status == 429
    assert ApiError(wire.SERVICE_UNAVAILABLE, "down").status == 503
    assert ApiError(wire.INTERNAL_FAILURE, "oops").status == 500
    assert ApiError(wire.MODEL_NOT_READY, "loading").status == 429


def test_without_filename_the_names_are_based_on_the_inference_id() -> None:
    """The model: "If not specified, Amazon SageMaker AI generates a filename based on the
    inference ID" (and generates the id when none is given)."""
    request = parse({wire.INPUT_LOCATION_HEADER: LOCATION})

    accepted = wire.accept_invocation(request, "s3://out/results/", "s3://out/failed", RECEIVED)

    assert re.fullmatch(r"[0-9a-f-]{36}", accepted.inference_id)
    assert accepted.output_location == f"s3://out/results/{accepted.inference_id}.out"
    assert accepted.failure_location == f"s3://out/failed/{accepted.inference_id}-error.out"

    given = accepted_invocation(**{wire.INFERENCE_ID_HEADER: "happy-1"})
    assert given.output_location == "s3://out/results/happy-1.out"
    odd = accepted_invocation(**{wire.INFERENCE_ID_HEADER: "a b/../c"})
    name = odd.output_location.removeprefix("s3://out/results/").removesuffix(".out")
    assert re.fullmatch(r"[0-9a-f-]{36}", name)
    assert odd.failure_location == f"s3://out/failed/{name}-error.out"


def test_path_extension_and_filename_shape_the_locations() -> None:
    request = parse(
        {
            wire.INPUT_LOCATION_HEADER: LOCATION,
            wire.INFERENCE_ID_HEADER: "given",
            wire.OUTPUT_PATH_EXTENSION_HEADER: "tenant-7/",
            wire.FILENAME_HEADER: "result.json",
        }
    )

    accepted = wire.accept_invocation(request, "s3://out/results", "s3://out/failed", RECEIVED)

    assert accepted.inference_id == "given"
    assert accepted.output_location == "s3://out/results/tenant-7/result.json"
    # The model documents both members for the response payload only.
    assert accepted.failure_location == "s3://out/failed/given-error.out"


def accepted_invocation(**headers: str) -> wire.AcceptedInvocation:
    request = parse({wire.INPUT_LOCATION_HEADER: LOCATION, **headers})
    return wire.accept_invocation(request, "s3://out/results", "s3://out/failed", RECEIVED)


def test_success_notification_has_sagemakers_exact_shape() -> None:
    invocation = accepted_invocation(
        **{
            wire.CONTENT_TYPE_HEADER: "text/csv",
            wire.ACCEPT_HEADER: "application/json",
            wire.CUSTOM_ATTRIBUTES_HEADER: "k=v",
            wire.INFERENCE_ID_HEADER: "id-1",
        }
    )

    notification = publisher.success_notification(
        invocation,
        region="us-east-1",
        event_time=FINISHED,
        response_content_type="application/json",
    )

    assert notification == {
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-21T10:00:01.608Z",
        "receivedTime": "2026-11-21T10:00:00.455Z",
        "invocationStatus": "Completed",
        "requestParameters": {
            "accept": "application/json",
            "contentType": "text/csv",
            "customAttributes": "k=v",
            "endpointName": "ep",
            "inputLocation": LOCATION,
        },
        "responseParameters": {
            "contentType": "application/json",
            "outputLocation": invocation.output_location,
        },
        "inferenceId": "id-1",
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    }
    assert list(notification) == NOTIFICATION_KEYS
    assert list(notification["requestParameters"]) == [
        "accept",
        "contentType",
        "customAttributes",
        "endpointName",
        "inputLocation",
    ]


def test_optional_request_parameters_are_left_out() -> None:
    invocation = accepted_invocation()

    notification = publisher.success_notification(
        invocation, region="eu-west-1", event_time=FINISHED, response_content_type="text/plain"
    )

    assert notification["requestParameters"] == {
        "contentType": "application/octet-stream",
        "endpointName": "ep",
        "inputLocation": LOCATION,
    }


def test_response_body_is_included_up_to_128_kb() -> None:
    invocation = accepted_invocation()
    small = b'{"predictions": []}'

    with_body = publisher.success_notification(
        invocation,
        region="us-east-1",
        event_time=FINISHED,
        response_content_type="application/json",
        response_body=small,
    )
    too_large = publisher.success_notification(
        invocation,
        region="us-east-1",
        event_time=FINISHED,
        response_content_type="application/json",
        response_body=b"x" * (128 * 1024 + 1),
    )

    assert with_body["responseBody"] == {
        "content": base64.b64encode(small).decode(),
        "encoding": "BASE64",
        "message": "OK",
    }
    assert "responseBody" not in too_large


def test_failure_notification_names_the_failure_object_when_there_is_one() -> None:
    invocation = accepted_invocation(**{wire.INFERENCE_ID_HEADER: "id-2"})

    with_object = publisher.failure_notification(
        invocation,
        region="us-east-1",
        event_time=FINISHED,
        failure_reason="ClientError: Received client error (400) from model",
        failure_location=invocation.failure_location,
    )
    without_object = publisher.failure_notification(
        invocation,
        region="us-east-1",
        event_time=FINISHED,
        failure_reason="Request has expired",
        failure_location=None,
    )

    assert with_object["invocationStatus"] == "Failed"
    assert with_object["failureReason"] == "ClientError: Received client error (400) from model"
    assert with_object["responseParameters"] == {"failureLocation": invocation.failure_location}
    assert with_object["inferenceId"] == "id-2"
    assert with_object["eventName"] == "InferenceResult"
    assert "responseParameters" not in without_object


def test_test_notification_is_sagemakers() -> None:
    assert publisher.endpoint_test_notification() == {
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "TestNotification",
    }
