"""Every notification shape the API can produce becomes a record; none ends in the failure queue.

A request sent with an inline ``Body`` (2026) has no ``requestParameters.inputLocation``; every
field the API documents as optional may be missing (DESIGN.md, "SNS notification").
"""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING, Any

import pytest

from lambdas.common.notification import InferenceCompleted, InferenceFailed, parse_notification
from lambdas.common.records import InferenceRecord, Status
from lambdas.common.store import RecordStore
from tests.unit.results.conftest import Invoke
from tests.unit.results.events import (
    ENDPOINT_NAME,
    ERROR_TOPIC_ARN,
    FAILURE_LOCATION,
    FAILURE_REASON,
    INFERENCE_ID,
    INPUT_BUCKET,
    INPUT_KEY,
    INPUT_LOCATION,
    OUTPUT_BUCKET,
    OUTPUT_LOCATION,
    failure,
    sns_event,
    success,
    with_response_body,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

PREDICTION = b'{"label": "rose"}'
OPTIONAL_REQUEST_FIELDS = ("accept", "contentType", "customAttributes", "inputLocation")


def inline_body_success() -> dict[str, Any]:
    """A success for a request sent with Body: requestParameters has no inputLocation."""
    notification = success()
    del notification["requestParameters"]["inputLocation"]
    return notification


def inline_body_failure(*, failure_location: str | None = None) -> dict[str, Any]:
    notification = failure(failure_location=failure_location)
    del notification["requestParameters"]["inputLocation"]
    return notification


def without(notification: dict[str, Any], *request_fields: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(notification))
    for name in request_fields:
        copy["requestParameters"].pop(name, None)
    return copy


def test_a_body_success_parses_without_input_location() -> None:
    parsed = parse_notification(json.dumps(inline_body_success()))
    assert isinstance(parsed, InferenceCompleted)
    assert parsed.request_parameters.input_location is None
    assert parsed.response_parameters.output_location == OUTPUT_LOCATION


def test_a_body_failure_parses_without_input_location() -> None:
    parsed = parse_notification(json.dumps(inline_body_failure()))
    assert isinstance(parsed, InferenceFailed)
    assert parsed.request_parameters.input_location is None
    assert parsed.response_parameters is None


@pytest.mark.parametrize(
    "missing",
    [
        combination
        for size in range(len(OPTIONAL_REQUEST_FIELDS) + 1)
        for combination in itertools.combinations(OPTIONAL_REQUEST_FIELDS, size)
    ],
    ids=lambda combination: "-".join(combination) or "all-present",
)
@pytest.mark.parametrize("status", ["Completed", "Failed"])
def test_every_combination_of_optional_request_fields_parses(
    missing: tuple[str, ...], status: str
) -> None:
    base = success() if status == "Completed" else failure(failure_location=FAILURE_LOCATION)
    parsed = parse_notification(json.dumps(without(base, *missing)))
    assert parsed.request_parameters.endpoint_name == ENDPOINT_NAME  # type: ignore[union-attr]


def test_the_response_content_type_is_optional() -> None:
    notification = success()
    del notification["responseParameters"]["contentType"]
    parsed = parse_notification(json.dumps(notification))
    assert isinstance(parsed, InferenceCompleted)
    assert parsed.response_parameters.content_type is None


def test_a_body_success_becomes_a_record_without_an_ingest_record(
    invoke: Invoke, store: RecordStore, s3: S3Client
) -> None:
    s3.put_object(
        Bucket=OUTPUT_BUCKET,
        Key=OUTPUT_LOCATION.removeprefix(f"s3://{OUTPUT_BUCKET}/"),
        Body=PREDICTION,
    )
    invoke(sns_event(with_response_body(inline_body_success(), PREDICTION)))

    record = store.get(INFERENCE_ID)
    assert record is not None
    assert record.status == Status.COMPLETED
    assert record.input_location is None
    assert record.input_bucket is None
    assert record.output_location == OUTPUT_LOCATION
    assert record.result == PREDICTION.decode()


def test_a_body_success_keeps_the_input_location_ingest_wrote(
    invoke: Invoke, store: RecordStore
) -> None:
    claim = InferenceRecord(
        inference_id=INFERENCE_ID,
        status=Status.PENDING,
        input_location=INPUT_LOCATION,
        input_bucket=INPUT_BUCKET,
        input_key=INPUT_KEY,
        input_version="v1",
        input_size=17,
        created_at="2026-11-21T09:59:59.000Z",
        updated_at="2026-11-21T09:59:59.000Z",
    )
    assert store.claim(claim, token="t", lease_until=2_000_000_000, now=1).owned
    store.mark_submitted(claim.model_copy(update={"submitted_at": claim.created_at}), token="t")

    invoke(sns_event(with_response_body(inline_body_success(), PREDICTION)))

    record = store.get(INFERENCE_ID)
    assert record is not None
    assert record.status == Status.COMPLETED
    assert record.input_location == INPUT_LOCATION
    assert record.input_key == INPUT_KEY
    assert record.input_version == "v1"


@pytest.mark.parametrize("failure_location", [None, FAILURE_LOCATION])
def test_a_body_failure_becomes_a_failed_record(
    invoke: Invoke, store: RecordStore, failure_location: str | None
) -> None:
    invoke(
        sns_event(inline_body_failure(failure_location=failure_location), topic_arn=ERROR_TOPIC_ARN)
    )

    record = store.get(INFERENCE_ID)
    assert record is not None
    assert record.status == Status.FAILED
    assert record.failure_reason == FAILURE_REASON
    assert record.failure_location == failure_location
    assert record.input_location is None


def test_the_most_minimal_success_is_recorded(invoke: Invoke, store: RecordStore) -> None:
    """Only what the function routes and records on: no optional field at all."""
    notification = without(success(), *OPTIONAL_REQUEST_FIELDS)
    del notification["awsRegion"]
    notification["responseParameters"] = {"outputLocation": OUTPUT_LOCATION}

    invoke(sns_event(notification))

    record = store.get(INFERENCE_ID)
    assert record is not None
    assert record.status == Status.COMPLETED
    assert record.output_location == OUTPUT_LOCATION
    assert record.content_type is None
