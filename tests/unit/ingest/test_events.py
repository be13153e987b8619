"""Parsing the events the function receives, as S3 and moto actually write them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.common.records import inference_id_for
from lambdas.ingest.events import (
    EventKind,
    MalformedEventError,
    ObjectVersion,
    S3EventNotification,
    S3TestEvent,
    event_kind,
    parse_notification,
)
from tests.unit.ingest.support import (
    notification,
    s3_record,
    s3_test_event,
    sqs_event,
    sqs_record,
)


@pytest.mark.parametrize("as_moto", [False, True], ids=["aws", "moto"])
def test_a_notification_parses_with_or_without_sequencer_and_identity(as_moto: bool) -> None:
    record = s3_record("in", "a/b.json", size=42, etag="e1", version_id="v1", as_moto=as_moto)
    parsed = parse_notification(json.dumps(notification(record)))
    assert isinstance(parsed, S3EventNotification)
    target = ObjectVersion.from_record(parsed.records[0])
    assert target == ObjectVersion(
        bucket="in",
        key="a/b.json",
        version_id="v1",
        etag="e1",
        size=42,
        sequencer=None if as_moto else "0066A8D0E77DE42BC5",
    )
    assert parsed.records[0].event_name == "ObjectCreated:Put"


@pytest.mark.parametrize(
    ("key", "encoded"),
    [
        ("red flower.jpg", "red+flower.jpg"),
        ("a+b.json", "a%2Bb.json"),
        ("100%.csv", "100%25.csv"),
        ("données/été 2026.json", "donn%C3%A9es/%C3%A9t%C3%A9+2026.json"),
        ("日本/画像.png", "%E6%97%A5%E6%9C%AC/%E7%94%BB%E5%83%8F.png"),
        ("a/b/c/d/e/f/g/h.txt", "a/b/c/d/e/f/g/h.txt"),
        ("odd chars/&$@=;:,?.json", "odd+chars/%26%24%40%3D%3B%3A%2C%3F.json"),
    ],
)
def test_keys_are_decoded_as_s3_encodes_them(key: str, encoded: str) -> None:
    record = s3_record("in", key)
    assert record["s3"]["object"]["key"] == encoded
    parsed = parse_notification(notification(record))
    assert isinstance(parsed, S3EventNotification)
    target = ObjectVersion.from_record(parsed.records[0])
    assert target.key == key
    assert target.input_location == f"s3://in/{key}"


def test_moto_encodes_slashes_too_and_decoding_still_gives_the_key() -> None:
    record = s3_record("in", "deep/prefix/file name.json")
    record["s3"]["object"]["key"] = "deep%2Fprefix%2Ffile+name.json"  # quote_plus, as moto does
    parsed = parse_notification(notification(record))
    assert isinstance(parsed, S3EventNotification)
    assert ObjectVersion.from_record(parsed.records[0]).key == "deep/prefix/file name.json"


def test_the_inference_id_follows_the_documented_formula() -> None:
    versioned = ObjectVersion("in", "a b.json", "v1", "e1", 1, None)
    assert versioned.inference_id == inference_id_for("in", "a b.json", "v1", "e1")
    unversioned = ObjectVersion("in", "a b.json", None, '"e1"', 1, None)
    assert unversioned.inference_id == inference_id_for("in", "a b.json", None, "e1")
    null_version = ObjectVersion("in", "a b.json", "null", "e1", 1, None)
    assert null_version.inference_id == unversioned.inference_id


def test_a_record_without_version_or_etag_is_malformed() -> None:
    with pytest.raises(MalformedEventError, match="neither a version id nor an ETag"):
        _ = ObjectVersion("in", "k", None, None, 1, None).inference_id


def test_the_s3_test_event_is_recognised() -> None:
    parsed = parse_notification(json.dumps(s3_test_event("in")))
    assert isinstance(parsed, S3TestEvent)
    assert parsed.bucket == "in"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("not json at all", "not JSON"),
        ("[1, 2]", "not an S3 event notification"),
        ('{"Records": []}', "Records"),
        ('{"Records": [{"eventName": "ObjectCreated:Put"}]}', "s3"),
        ('{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {}}}]}', "bucket"),
        ('{"Event": "s3:SomethingElse"}', "Event"),
        ('{"hello": "world"}', "Records"),
    ],
)
def test_malformed_bodies_are_reported_with_the_reason(body: str, expected: str) -> None:
    with pytest.raises(MalformedEventError) as raised:
        parse_notification(body)
    assert expected in str(raised.value)


def test_event_kinds() -> None:
    direct = notification(s3_record("in", "a.json"))
    assert event_kind(direct) is EventKind.S3_DIRECT
    assert event_kind(s3_test_event("in")) is EventKind.S3_DIRECT
    assert event_kind(sqs_event(sqs_record(direct))) is EventKind.SQS_BATCH
    unsupported_events: list[dict[str, Any]] = [
        {},
        {"Records": []},
        {"Records": [{"eventSource": "aws:sns"}]},
    ]
    for unsupported in unsupported_events:
        with pytest.raises(MalformedEventError, match="SQS batches of S3 notifications"):
            event_kind(unsupported)
