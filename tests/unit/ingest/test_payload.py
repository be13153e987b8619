"""Exactly the version that was uploaded: small inputs go inline, read at their version."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import boto3
import pytest

from lambdas.common.contract import INLINE_INPUT_CAP_BYTES, OutputNaming
from lambdas.ingest.clients import ObjectChangedError, ObjectMissingError, S3InputReader
from lambdas.ingest.output_naming import output_name
from lambdas.ingest.payload import AnnouncedVersion, request_members, sends_inline
from tests.conftest import REGION

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

VERSIONED = "versioned-input"
PLAIN = "plain-input"
INFERENCE_ID = hashlib.sha256(b"an object version").hexdigest()
RACE_ROUNDS = 60


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

    members = request_members(
        version=version,
        inference_id=INFERENCE_ID,
        naming=OutputNaming.INPUT,
        inline_input_max_bytes=128_000,
        reader=S3InputReader(s3),
    )

    assert members == {
        "Body": b'{"v": 1}',
        "S3OutputPathExtension": "a/b",
        "Filename": f"{INFERENCE_ID[:28]}.out",
    }


def test_a_large_input_goes_by_location(s3: S3Client) -> None:
    version = announce(s3, VERSIONED, "big/blob.bin", b"x" * 128_001)
    members = request_members(
        version=version,
        inference_id=INFERENCE_ID,
        naming=OutputNaming.INPUT,
        inline_input_max_bytes=128_000,
        reader=S3InputReader(s3),
    )
    assert members == {
        "InputLocation": f"s3://{VERSIONED}/big/blob.bin",
        "S3OutputPathExtension": "big",
        "Filename": f"{INFERENCE_ID[:28]}.out",
    }


def test_service_naming_sends_neither_member(s3: S3Client) -> None:
    version = announce(s3, VERSIONED, "top.json", b"{}")
    members = request_members(
        version=version,
        inference_id=INFERENCE_ID,
        naming=OutputNaming.SERVICE,
        inline_input_max_bytes=0,
        reader=S3InputReader(s3),
    )
    assert members == {"InputLocation": f"s3://{VERSIONED}/top.json"}


def test_a_key_without_folder_gets_only_a_filename(s3: S3Client) -> None:
    version = announce(s3, VERSIONED, "top.json", b"{}")
    members = request_members(
        version=version,
        inference_id=INFERENCE_ID,
        naming=OutputNaming.INPUT,
        inline_input_max_bytes=128_000,
        reader=S3InputReader(s3),
    )
    assert members == {"Body": b"{}", "Filename": f"{INFERENCE_ID[:28]}.out"}


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
    reader = S3InputReader(s3)

    def one_round(round_number: int) -> list[tuple[bytes, bytes]]:
        key = f"race/{round_number % 7}/input.json"
        first = announce(s3, VERSIONED, key, f'{{"round": {round_number}, "v": 1}}'.encode())
        with ThreadPoolExecutor(max_workers=2) as pool:
            overwrite = pool.submit(
                announce, s3, VERSIONED, key, f'{{"round": {round_number}, "v": 2}}'.encode()
            )
            first_members = pool.submit(
                request_members,
                version=first,
                inference_id=hashlib.sha256(f"{key}#{first.version_id}".encode()).hexdigest(),
                naming=OutputNaming.INPUT,
                inline_input_max_bytes=128_000,
                reader=reader,
            )
            second = overwrite.result()
        second_members = request_members(
            version=second,
            inference_id=hashlib.sha256(f"{key}#{second.version_id}".encode()).hexdigest(),
            naming=OutputNaming.INPUT,
            inline_input_max_bytes=128_000,
            reader=reader,
        )
        return [
            (first_members.result()["Body"], f'{{"round": {round_number}, "v": 1}}'.encode()),
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
    members = request_members(
        version=version,
        inference_id=INFERENCE_ID,
        naming=OutputNaming.SERVICE,
        inline_input_max_bytes=128_000,
        reader=S3InputReader(s3),
    )
    assert members == {"InputLocation": f"s3://{VERSIONED}/big/blob.bin"}
    s3.put_object(Bucket=VERSIONED, Key="big/blob.bin", Body=b"2" * 128_001)
    # What SageMaker reads at processing time (an InputLocation carries no version id).
    read_later = s3.get_object(Bucket=VERSIONED, Key="big/blob.bin")["Body"].read()
    assert read_later != S3InputReader(s3).read(version)
    assert read_later == b"2" * 128_001
