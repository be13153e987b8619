"""A failure reason as the record keeps it: bounded and readable, whatever the model answers
(the whole answer stays in the failure object and the endpoint's log)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from asyncinfer.local.aws.eventbridge import put_events_refusal
from asyncinfer.local.aws.pipes import render
from lambdas.common.contract import DETAIL_TYPE_FAILED, EVENTS_SOURCE
from lambdas.common.notification import InferenceFailed, parse_notification
from lambdas.common.outcomes import outcome_record
from lambdas.common.reasons import FAILURE_REASON_MAX_CHARS, readable_reason
from lambdas.common.records import InferenceRecord
from stacks.events_out import detail_template
from tests.unit.results import events

RECORD_MAX_BYTES = 24 * 1024
# the scikit-learn image's 500, as SageMaker reports it (docs/cli.md)
SKLEARN_500 = (
    'ClientError: Received server error (500) from model with message "<!DOCTYPE HTML PUBLIC '
    '"-//W3C//DTD HTML 3.2 Final//EN">\n<title>500 Internal Server Error</title>\n'
    "<h1>Internal Server Error</h1>\n<p>The server encountered an internal error and was "
    "unable to complete your request. Either the server is overloaded or there is an error in "
    'the application.</p>\n". See the SageMaker Endpoint logs in your account for more '
    "information."
)


def failed_record(reason: str, **request: str) -> InferenceRecord:
    notification = events.failure(failure_location=events.FAILURE_LOCATION)
    notification["failureReason"] = reason
    notification["requestParameters"] |= request
    parsed = parse_notification(json.dumps(notification))
    assert isinstance(parsed, InferenceFailed)
    return outcome_record(parsed, now=datetime.now(UTC), retention_days=90, inline=None)


def item_bytes(record: InferenceRecord) -> int:
    """DynamoDB's item size: attribute names and values in UTF-8 (numbers counted as text)."""
    return sum(
        len(name.encode()) + len(str(value).encode()) for name, value in record.attributes().items()
    )


def test_a_100_kb_reason_keeps_its_head_and_tail_within_the_bound() -> None:
    reason = "start of the model's answer " + "x" * 100_000 + " end of the model's answer"
    kept = failed_record(reason).failure_reason
    assert kept is not None
    assert len(kept) <= FAILURE_REASON_MAX_CHARS
    assert kept.startswith("start of the model's answer")
    assert kept.endswith("end of the model's answer")
    assert "characters cut: the whole reason is in the failure object" in kept


def test_no_record_without_its_result_exceeds_24_kb_whatever_the_model_answers() -> None:
    longest = {  # SageMaker's own limits: 1,024 characters of custom attributes, S3 keys
        "customAttributes": "a" * 1024,
        "inputLocation": f"s3://{'b' * 63}/{'k' * 1024}",
        "contentType": "c" * 1024,
        "accept": "d" * 1024,
    }
    for answer in ("é" * 100_000, "<html><body>" + "<p>\U0001d4c1</p>" * 30_000 + "</body></html>"):
        record = failed_record(answer, **longest)
        assert item_bytes(record) <= RECORD_MAX_BYTES


def test_an_html_page_reads_as_text() -> None:
    kept = readable_reason(SKLEARN_500)
    assert "<" not in kept
    assert kept == (
        'ClientError: Received server error (500) from model with message "500 Internal '
        "Server Error - Internal Server Error - The server encountered an internal error and "
        "was unable to complete your request. Either the server is overloaded or there is an "
        'error in the application.". See the SageMaker Endpoint logs in your account for '
        "more information."
    )
    plain = "ValueError: x < 3 and y > 2 are both required"  # not a page: left as it is
    assert readable_reason(plain) == plain


def stream_record(record: InferenceRecord) -> dict[str, Any]:
    image = {name: {"S": str(value)} for name, value in record.attributes().items()}
    return {
        "eventName": "MODIFY",
        "dynamodb": {"Keys": {"inference_id": image["inference_id"]}, "NewImage": image},
    }


def test_ten_failures_with_100_kb_answers_fit_one_put_events_call() -> None:
    """The pipes send a batch of 10 records in one PutEvents call (256 KB at most)."""
    record = failed_record("x" * 100_000)
    detail = render(detail_template(), stream_record(record))
    entry = {"Source": EVENTS_SOURCE, "DetailType": DETAIL_TYPE_FAILED, "Detail": detail}
    assert put_events_refusal([entry] * 10) is None
