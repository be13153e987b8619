"""The inference id formula is a public contract (README "Guarantees"): pinned here with values
computed independently of ``inference_id_for``, so that a change to the formula fails."""

from __future__ import annotations

import hashlib

from lambdas.common.records import inference_id_for
from lambdas.ingest.events import ObjectVersion
from tests.unit.ingest.conftest import INPUT_BUCKET, World, version_of
from tests.unit.ingest.support import notification, s3_record, sqs_event, sqs_record


def sha256_hex(identity: str) -> str:
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()


# Literal digests: a second, hard-coded statement of the formula that no refactoring can move.
PINNED_VERSIONED = "d7e94e0c3c278ed8779babae2bdba2bac260e30f01e4ae3f0575a8110e17351a"
PINNED_ETAG = "a517331fe725f5a04f1b2529f809caa17cf228a90012b248e6396428728d2f0a"
PINNED_UNICODE = "67edd98c0034e4897306bbffd3139e2a7c809b2fe4fb46a4a05663f3f1812709"


def test_the_versioned_form_is_sha256_of_the_location_with_version_id() -> None:
    expected = hashlib.sha256(b"s3://b/k?versionId=v").hexdigest()
    assert inference_id_for("b", "k", "v", None) == expected
    assert inference_id_for("b", "k", "v", '"ignored-etag"') == expected
    assert expected == PINNED_VERSIONED


def test_the_etag_form_strips_the_quotes() -> None:
    expected = hashlib.sha256(b"s3://b/k?etag=0123abcd").hexdigest()
    assert inference_id_for("b", "k", None, '"0123abcd"') == expected
    assert inference_id_for("b", "k", None, "0123abcd") == expected
    # S3 reports the version id "null" for objects written while versioning was off.
    assert inference_id_for("b", "k", "null", '"0123abcd"') == expected
    assert expected == PINNED_ETAG


def test_the_key_is_hashed_decoded_as_utf8() -> None:
    key = "été/日本 red+flower.json"
    expected = hashlib.sha256(
        "s3://input-bucket/été/日本 red+flower.json"
        "?versionId=3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY".encode()
    ).hexdigest()
    assert inference_id_for("input-bucket", key, "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", None) == (
        expected
    )
    assert expected == PINNED_UNICODE


def test_ids_are_64_lower_case_hex_characters() -> None:
    inference_id = inference_id_for("b", "k", "v", None)
    assert len(inference_id) == 64
    assert set(inference_id) <= set("0123456789abcdef")


def test_an_s3_event_with_an_encoded_key_yields_the_contract_id() -> None:
    # S3 URL-encodes keys in notifications; the id is computed from the decoded key.
    record = s3_record("in", "été/a b+c.json", version_id="v1", etag="e1")
    assert record["s3"]["object"]["key"] != "été/a b+c.json"
    assert version_of(record).inference_id == sha256_hex("s3://in/été/a b+c.json?versionId=v1")
    unversioned = s3_record("in", "été/a b+c.json", etag="e1")
    assert version_of(unversioned).inference_id == sha256_hex("s3://in/été/a b+c.json?etag=e1")
    assert ObjectVersion("in", "k", None, '"e1"', 1, None).inference_id == sha256_hex(
        "s3://in/k?etag=e1"
    )


def test_ingest_records_and_submits_under_the_contract_id(world: World) -> None:
    """What ingest writes and sends, checked against the formula computed here."""
    world.enable_versioning()
    key = "été/日本 red+flower.json"
    versioned = world.put(key)
    version_id = versioned["s3"]["object"]["versionId"]
    world.s3.put_bucket_versioning(
        Bucket=INPUT_BUCKET, VersioningConfiguration={"Status": "Suspended"}
    )
    other = "plain/b.json"
    unversioned = world.put(other)
    etag = world.s3.head_object(Bucket=INPUT_BUCKET, Key=other)["ETag"]
    assert etag.startswith('"')

    response, _ = world.invoke(
        sqs_event(sqs_record(notification(versioned)), sqs_record(notification(unversioned)))
    )

    assert response == {"batchItemFailures": []}
    expected_versioned = sha256_hex(f"s3://{INPUT_BUCKET}/{key}?versionId={version_id}")
    expected_unversioned = sha256_hex(f"s3://{INPUT_BUCKET}/{other}?etag={etag.strip(chr(34))}")
    assert world.stored(expected_versioned).input_key == key
    assert world.stored(expected_unversioned).input_key == other
    assert {call.inference_id for call in world.invoker.calls} == {
        expected_versioned,
        expected_unversioned,
    }
