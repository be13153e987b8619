"""Reading output objects from (moto) S3: small ones whole, large ones never downloaded."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from lambdas.common.outputs import OutputUnavailableError, S3OutputReader
from tests.unit.results.events import OUTPUT_BUCKET

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

LIMIT = 1024


def location(key: str) -> str:
    return f"s3://{OUTPUT_BUCKET}/{key}"


@pytest.fixture
def downloaded(s3: S3Client) -> list[int]:
    """Body bytes S3 sent per GetObject, seen from botocore's own response hook."""
    sizes: list[int] = []

    def record(parsed: dict[str, Any], **_: Any) -> None:
        sizes.append(parsed["ContentLength"])

    s3.meta.events.register("after-call.s3.GetObject", record)
    return sizes


def test_the_client_is_created_by_the_first_read_and_kept(s3: S3Client) -> None:
    s3.put_object(Bucket=OUTPUT_BUCKET, Key="a.out", Body=b"x")
    created: list[S3Client] = []

    def create() -> S3Client:
        created.append(s3)
        return s3

    reader = S3OutputReader(create)
    assert created == []  # a container that never reads an output never creates the client
    reader.read_small(location("a.out"), LIMIT)
    reader.read_small(location("a.out"), LIMIT)
    assert created == [s3]


def test_small_object_is_read_whole(s3: S3Client, downloaded: list[int]) -> None:
    s3.put_object(Bucket=OUTPUT_BUCKET, Key="a.out", Body=b"x" * LIMIT, ContentType="text/plain")

    output = S3OutputReader(lambda: s3).read_small(location("a.out"), LIMIT)

    assert output.body == b"x" * LIMIT
    assert output.size == LIMIT
    assert output.content_type == "text/plain"
    assert downloaded == [LIMIT]


def test_large_object_is_sized_but_not_downloaded(s3: S3Client, downloaded: list[int]) -> None:
    s3.put_object(Bucket=OUTPUT_BUCKET, Key="big.out", Body=b"x" * 1_000_000)

    output = S3OutputReader(lambda: s3).read_small(location("big.out"), LIMIT)

    assert output.body is None
    assert output.size == 1_000_000
    assert downloaded == [LIMIT + 1]  # the ranged GET, not the megabyte


def test_empty_object_is_empty(s3: S3Client) -> None:
    s3.put_object(Bucket=OUTPUT_BUCKET, Key="empty.out", Body=b"")

    output = S3OutputReader(lambda: s3).read_small(location("empty.out"), LIMIT)

    assert output.body == b""
    assert output.size == 0


def test_missing_object_is_unavailable(s3: S3Client) -> None:
    with pytest.raises(OutputUnavailableError, match="NoSuchKey"):
        S3OutputReader(lambda: s3).read_small(location("missing.out"), LIMIT)


def test_missing_bucket_is_unavailable(s3: S3Client) -> None:
    with pytest.raises(OutputUnavailableError, match="NoSuchBucket"):
        S3OutputReader(lambda: s3).read_small("s3://no-such-bucket/a.out", LIMIT)


def test_non_s3_location_is_unavailable(s3: S3Client) -> None:
    with pytest.raises(OutputUnavailableError, match="not an s3://bucket/key"):
        S3OutputReader(lambda: s3).read_small("https://example.com/a.out", LIMIT)
