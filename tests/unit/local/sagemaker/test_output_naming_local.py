"""Local mode's runtime with the 2026 members, as the ingest function will send them.

The wire: the headers botocore sends for ``S3OutputPathExtension``/``Filename`` and an inline
``Body`` (tests/unit/ingest/test_service_models.py proves the Lambda runtime's botocore sends
them). The runtime writes the output under ``<S3OutputPath>/<extension>/<Filename>`` and
publishes a notification without ``inputLocation`` for a Body request, which the results
function records.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from asyncinfer.local.sagemaker import publisher, wire
from lambdas.common.notification import InferenceCompleted, parse_notification
from lambdas.common.outcomes import outcome_record
from lambdas.common.output_naming import decode_extension, output_name

OUTPUT_PATH = "s3://output-bucket/async-out"
FAILURE_PATH = "s3://output-bucket/async-failures"
RECEIVED = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def invoke(key: str, *, body: bytes | None, input_location: str | None) -> wire.AcceptedInvocation:
    inference_id = hashlib.sha256(key.encode()).hexdigest()
    name = output_name(key, inference_id)
    headers = {
        wire.INFERENCE_ID_HEADER: inference_id,
        wire.CONTENT_TYPE_HEADER: "application/json",
        wire.FILENAME_HEADER: name.filename,
    }
    if name.extension is not None:
        headers[wire.OUTPUT_PATH_EXTENSION_HEADER] = name.extension
    if input_location is not None:
        headers[wire.INPUT_LOCATION_HEADER] = input_location
    request = wire.parse_invocation("endpoint", headers, body or b"")
    return wire.accept_invocation(request, OUTPUT_PATH, FAILURE_PATH, RECEIVED)


@pytest.mark.parametrize(
    ("key", "folder"),
    [
        ("a/b/photo.json", "a/b"),
        ("with space/and+plus/x.json", "with!20space/and!2Bplus"),
        ("per%cent/ünï/x.json", "per!25cent/!C3!BCn!C3!AF"),
        ("bang!/tilde~/x.json", "bang!21/tilde!7E"),
    ],
)
def test_an_object_under_a_folder_gets_its_output_under_the_same_folder(
    key: str, folder: str
) -> None:
    invocation = invoke(key, body=b"{}", input_location=None)
    inference_id = hashlib.sha256(key.encode()).hexdigest()
    assert invocation.output_location == f"{OUTPUT_PATH}/{folder}/{inference_id[:28]}.out"
    assert decode_extension(folder) == key.rpartition("/")[0]


def test_a_key_without_folder_lands_directly_under_the_output_path() -> None:
    invocation = invoke("top.json", body=b"{}", input_location=None)
    inference_id = hashlib.sha256(b"top.json").hexdigest()
    assert invocation.output_location == f"{OUTPUT_PATH}/{inference_id[:28]}.out"


def test_a_body_requests_notification_has_no_input_location_and_is_recorded() -> None:
    invocation = invoke("a/b/photo.json", body=b'{"x": 1}', input_location=None)
    notification = publisher.success_notification(
        invocation,
        region="us-east-1",
        event_time=RECEIVED,
        response_content_type="application/json",
    )
    assert "inputLocation" not in notification["requestParameters"]

    parsed = parse_notification(json.dumps(notification))
    assert isinstance(parsed, InferenceCompleted)
    record = outcome_record(parsed, now=RECEIVED, retention_days=1, inline=None)
    assert record.output_location == invocation.output_location
    assert record.input_location is None


def test_a_location_request_keeps_its_input_location() -> None:
    location = "s3://input-bucket/a/b/photo.json"
    invocation = invoke("a/b/photo.json", body=None, input_location=location)
    notification = publisher.success_notification(
        invocation,
        region="us-east-1",
        event_time=RECEIVED,
        response_content_type="application/json",
    )
    assert notification["requestParameters"]["inputLocation"] == location
    assert notification["responseParameters"]["outputLocation"].startswith(f"{OUTPUT_PATH}/a/b/")
