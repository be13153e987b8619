"""Local S3 refuses what S3 refuses: a key over 1,024 bytes (KeyTooLongError) and user
metadata over 2 KB, keys and values counted in UTF-8 bytes (MetadataTooLarge), both 400."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.s3.responses import S3Response

from asyncinfer.local.aws.server import _enforce_s3_limits, s3_refusal
from tests.moto_server import moto_endpoint


def test_the_limits_count_utf8_bytes_of_the_key_and_of_metadata_keys_and_values() -> None:
    assert s3_refusal("k" * 1024, {}) is None
    assert s3_refusal("ü" * 513, {}) == ("KeyTooLongError", "Your key is too long")
    assert s3_refusal("k", {"x-amz-meta-note": "x" * 2044}) is None  # 4 + 2044 bytes
    refused = s3_refusal("k", {"X-Amz-Meta-Note": "x" * 2044, "x-amz-meta-a": "ü"})
    assert refused is not None
    assert refused[0] == "MetadataTooLarge"
    assert s3_refusal("k", {"content-type": "x" * 5000}) is None  # not user metadata


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("put_object", "_key_response_post"):  # restored after the test
        monkeypatch.setattr(S3Response, name, getattr(S3Response, name))
    _enforce_s3_limits()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with moto_endpoint() as endpoint:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket="input-bucket")
        yield client


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        ({"Key": "k" * 1025}, "KeyTooLongError"),
        ({"Key": "a.json", "Metadata": {"note": "x" * 5000}}, "MetadataTooLarge"),
    ],
)
def test_put_object_is_refused_as_s3_does(s3: Any, request_: dict[str, Any], code: str) -> None:
    with pytest.raises(ClientError) as raised:
        s3.put_object(Bucket="input-bucket", Body=b"{}", **request_)

    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert s3.list_objects_v2(Bucket="input-bucket").get("KeyCount") == 0


def test_a_multipart_upload_is_refused_too_and_what_fits_is_stored(s3: Any) -> None:
    with pytest.raises(ClientError, match="KeyTooLongError"):
        s3.create_multipart_upload(Bucket="input-bucket", Key="m" * 1025)
    s3.put_object(Bucket="input-bucket", Key="k" * 1024, Body=b"{}", Metadata={"a": "b"})
    assert s3.list_objects_v2(Bucket="input-bucket")["KeyCount"] == 1
