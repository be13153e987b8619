"""Exactly the version that was uploaded: small inputs go inline, read at their version."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import boto3
import pytest

from lambdas.common.contract import INLINE_INPUT_CAP_BYTES, OutputNaming
from lambdas.common.output_naming import output_name
from lambdas.ingest.clients import (
    ObjectChangedError,
    ObjectMissingError,
    S3InputReader,
    S3ObjectInspector,
)
from lambdas.ingest.events import ObjectVersion
from lambdas.ingest.payload import sends_inline
from lambdas.ingest.prepare import Prepared, Preparer
from lambdas.ingest.values import AnnouncedVersion
from tests.conftest import REGION
from tests.unit.ingest.conftest import make_config

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

VERSIONED = "versioned-input"
PLAIN = "plain-input"
RACE_ROUNDS = 60
TRACE_ID = "1-6b0db4f3-9b87286b33fa8cc0c5017eb6"


@pytest.fixture
def s3(moto_aws: None) -> S3Client:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=VERSIONED)
    client.put_bucket_versioning(Bucket=VERSIONED, VersioningConfiguration={"Status": "Enabled"})
    client.create_bucket(Bucket=PLAIN)
    return client


def announce(s3: S3Client, bucket: str, key: str, body: bytes) -> AnnouncedVersion:
    """Uploads and returns what the ObjectCreated event would announce."""
    response = s3.put_object(Bucket=bucket, Key=key, Body=body)
    return AnnouncedVersion(
        bucket=bucket,
        key=key,
        size=len(body),
        etag=response["ETag"].strip('"'),
        version_id=response.get("VersionId"),
    )


def target_of(version: AnnouncedVersion) -> ObjectVersion:
    return ObjectVersion(
        bucket=version.bucket,
        key=version.key,
        version_id=version.version_id,
        etag=version.etag,
        size=version.size,
        sequencer=None,
    )


def request_members(
    s3: S3Client, version: AnnouncedVersion, naming: OutputNaming, inline_input_max_bytes: int
) -> tuple[dict[str, object], str]:
    """The payload and output-naming members the ingest function's Preparer builds for the
    version (as ``invoke_endpoint_async`` keywords), and the version's inference id."""
    config = make_config(
        input_bucket=version.bucket,
        output_naming=naming,
        inline_input_max_bytes=inline_input_max_bytes,
    )
    preparer = Preparer(config=config, inspector=S3ObjectInspector(s3), reader=S3InputReader(s3))
    target = target_of(version)
    prepared = preparer.prepare(target, TRACE_ID)
    assert isinstance(prepared, Prepared), prepared
    members = {
        "Body": prepared.body,
        "InputLocation": prepared.input_location,
        "S3OutputPathExtension": prepared.output_path_extension,
        "Filename": prepared.filename,
    }
    return {name: value for name, value in members.items() if value is not None}, (
        target.inference_id
    )


@pytest.mark.parametrize(
    ("size", "limit", "inline"),
    [
        (1, 128_000, True),
        (128_000, 128_000, True),
        (128_001, 128_000, False),
        (0, 128_000, False),  # a Body needs a byte: empty objects go by location
        (10, 0, False),  # 0 turns it off
        (200_000, 10**9, False),  # never above the API's limit
        (4096, 4096, True),
        (4097, 4096, False),
    ],
)
def test_what_goes_inline(size: int, limit: int, inline: bool) -> None:
    assert sends_inline(size, limit) is inline
    assert INLINE_INPUT_CAP_BYTES == 128_000


def test_a_small_input_is_sent_as_the_announced_versions_bytes(s3: S3Client) -> None:
    version = announce(s3, VERSIONED, "a/b/flower.json", b'{"v": 1}')
    s3.put_object(Bucket=VERSIONED, Key="a/b/flower.json", Body=b'{"v": 2, "other": true}')

    members, inference_id = request_members(s3, version, OutputNaming.INPUT, 128_000)

    assert members == {
        "Body": b'{"v": 1}',
        "S3OutputPathExtension": "a/b",
        "Filename": f"{inference_id[:28]}.out",
    }


def test_a_large_input_goes_by_location(s3: S3Client) -> None:
    version = announce(s3, VERSIONED, "big/blob.bin", b"x" * 128_001)
    members, inference_id = request_members(s3, version, OutputNaming.INPUT, 128_000)
    assert members == {
        "InputLocation": f"s3://{VERSIONED}/big/blob.bin",
        "S3OutputPathExtension": "big",
        "Filename": f"{inference_id[:28]}.out",
    }


def test_service_naming_sends_neither_member(s3: S3Client) -> None:
    version = announce(s3, VERSIONED, "top.json", b"{}")
    members, _ = request_members(s3, version, OutputNaming.SERVICE, 0)
    assert members == {"InputLocation": f"s3://{VERSIONED}/top.json"}


def test_a_key_without_folder_gets_only_a_filename(s3: S3Client) -> None:
    version = announce(s3, VERSIONED, "top.json", b"{}")
    members, inference_id = request_members(s3, version, OutputNaming.INPUT, 128_000)
    assert members == {"Body": b"{}", "Filename": f"{inference_id[:28]}.out"}


def test_a_deleted_version_is_missing(s3: S3Client) -> None:
    version = announce(s3, VERSIONED, "gone.json", b"{}")
    s3.delete_object(Bucket=VERSIONED, Key="gone.json", VersionId=version.version_id or "")
    with pytest.raises(ObjectMissingError):
        S3InputReader(s3).read(version)


def test_an_overwritten_unversioned_object_is_changed(s3: S3Client) -> None:
    version = announce(s3, PLAIN, "k.json", b'{"v": 1}')
    assert S3InputReader(s3).read(version) == b'{"v": 1}'
    s3.put_object(Bucket=PLAIN, Key="k.json", Body=b'{"v": 2}')
    with pytest.raises(ObjectChangedError):
        S3InputReader(s3).read(version)


def test_the_overwrite_race_every_small_version_carries_its_own_bytes(s3: S3Client) -> None:
    """Upload v1 and overwrite it with different content at once, many times: the request
    built for each announced version carries that version's bytes, never the other's."""

    def one_round(round_number: int) -> list[tuple[bytes, bytes]]:
        key = f"race/{round_number % 7}/input.json"
        first = announce(s3, VERSIONED, key, f'{{"round": {round_number}, "v": 1}}'.encode())
        with ThreadPoolExecutor(max_workers=2) as pool:
            overwrite = pool.submit(
                announce, s3, VERSIONED, key, f'{{"round": {round_number}, "v": 2}}'.encode()
            )
            first_members = pool.submit(request_members, s3, first, OutputNaming.INPUT, 128_000)
            second = overwrite.result()
        second_members, _ = request_members(s3, second, OutputNaming.INPUT, 128_000)
        return [
            (first_members.result()[0]["Body"], f'{{"round": {round_number}, "v": 1}}'.encode()),
            (second_members["Body"], f'{{"round": {round_number}, "v": 2}}'.encode()),
        ]

    with ThreadPoolExecutor(max_workers=4) as pool:
        pairs = [pair for pairs in pool.map(one_round, range(RACE_ROUNDS)) for pair in pairs]

    assert len(pairs) == 2 * RACE_ROUNDS
    for sent, uploaded in pairs:
        assert sent == uploaded


def test_two_versions_of_one_key_land_in_one_folder_under_two_names(s3: S3Client) -> None:
    first = announce(s3, VERSIONED, "a/b/c.json", b"1")
    second = announce(s3, VERSIONED, "a/b/c.json", b"2")
    names = {
        output_name(version.key, hashlib.sha256(str(version.version_id).encode()).hexdigest())
        for version in (first, second)
    }
    assert len(names) == 2
    assert {name.extension for name in names} == {"a/b"}


def test_the_residual_window_of_a_large_input_is_what_the_readme_states(s3: S3Client) -> None:
    """A large input's request names the key, not the version: SageMaker reads whatever the
    key holds when it processes the request, so an overwrite in that window is processed
    under the older version's id (README, "Larger inputs: the residual window, stated")."""
    version = announce(s3, VERSIONED, "big/blob.bin", b"1" * 128_001)
    members, _ = request_members(s3, version, OutputNaming.SERVICE, 128_000)
    assert members == {"InputLocation": f"s3://{VERSIONED}/big/blob.bin"}
    s3.put_object(Bucket=VERSIONED, Key="big/blob.bin", Body=b"2" * 128_001)
    # What SageMaker reads at processing time (an InputLocation carries no version id).
    read_later = s3.get_object(Bucket=VERSIONED, Key="big/blob.bin")["Body"].read()
    assert read_later != S3InputReader(s3).read(version)
    assert read_later == b"2" * 128_001
