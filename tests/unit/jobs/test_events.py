"""The jobs function's messages: manifests from either input mode, outcomes from the bus."""

from __future__ import annotations

import json

import pytest

from lambdas.jobs.events import (
    MalformedMessageError,
    ManifestObject,
    Outcome,
    is_schedule,
    parse_message,
)
from lambdas.jobs.manifest import job_name


def test_an_s3_notification_names_its_decoded_key_and_version() -> None:
    body = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": "in"},
                    "object": {"key": "jobs/batch+7.manifest.json", "versionId": "v1"},
                },
            },
            {"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "in"}, "object": {}}},
        ]
    }
    assert parse_message(json.dumps(body)) == [
        ManifestObject(bucket="in", key="jobs/batch 7.manifest.json", version_id="v1")
    ]


def test_an_eventbridge_object_created_event_keeps_its_key() -> None:
    body = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": "in"}, "object": {"key": "jobs/a+b.manifest.json"}},
    }
    assert parse_message(json.dumps(body)) == [
        ManifestObject(bucket="in", key="jobs/a+b.manifest.json", version_id=None)
    ]


@pytest.mark.parametrize("detail_type", ["Inference Completed", "Inference Failed"])
def test_an_outcome_event_names_its_inference(detail_type: str) -> None:
    body = {"source": "asyncinfer", "detail-type": detail_type, "detail": {"inference_id": "ab"}}
    assert parse_message(json.dumps(body)) == [Outcome(inference_id="ab")]


def test_a_test_event_is_nothing() -> None:
    assert parse_message(json.dumps({"Event": "s3:TestEvent", "Bucket": "in"})) == []


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({"source": "other", "detail-type": "x", "detail": {}}),
        json.dumps({"source": "asyncinfer", "detail-type": "Inference Failed", "detail": {}}),
    ],
)
def test_anything_else_is_malformed(body: str) -> None:
    with pytest.raises(MalformedMessageError):
        parse_message(body)


def test_the_schedule_is_told_apart() -> None:
    assert is_schedule({"source": "aws.events", "detail-type": "Scheduled Event"})
    assert not is_schedule({"Records": []})


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("jobs/batch-7.manifest.json", "batch-7"),
        ("jobs/a/b.manifest.json", None),  # no folders in a name
        ("jobs/.manifest.json", None),
        ("other/x.manifest.json", None),
        ("jobs/x.json", None),
    ],
)
def test_job_names(key: str, name: str | None) -> None:
    assert job_name(key, "jobs/") == name
