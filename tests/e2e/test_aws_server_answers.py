"""The local AWS server refuses as AWS refuses (a 403, never a 500) and enforces PutEvents'
limits: unsigned requests, an administrator assuming a role that trusts only a service, and
PutEvents calls over 10 entries or 256 KB."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from asyncinfer.local.aws.iam import admin_session, enable_enforcement
from asyncinfer.local.processes import ServerProcesses

pytestmark = pytest.mark.e2e
REGION = "us-east-1"
BUCKET = "answers-bucket"
SERVICE_ROLE = "endpoint-execution-role"
TRUSTS_SAGEMAKER = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    log_dir = tmp_path_factory.mktemp("aws-server")
    servers = ServerProcesses(log_dir)
    url = servers.start(
        "aws", "asyncinfer.local.aws.server", ["--iam"], "/moto-api/", time.monotonic() + 60
    )
    session = admin_session(REGION)
    session.client("iam", endpoint_url=url).create_role(
        RoleName=SERVICE_ROLE, AssumeRolePolicyDocument=json.dumps(TRUSTS_SAGEMAKER)
    )
    s3 = session.client("s3", endpoint_url=url)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="object", Body=b"x")
    enable_enforcement(url)
    try:
        yield url, log_dir / "aws.log"
    finally:
        servers.stop()


def client(url: str, service: str) -> Any:
    return admin_session(REGION).client(service, endpoint_url=url)  # type: ignore[call-overload]


def test_the_administrator_may_not_assume_a_role_that_trusts_only_a_service(
    server: tuple[str, Path],
) -> None:
    url, log = server
    with pytest.raises(ClientError) as refused:
        client(url, "sts").assume_role(
            RoleArn=f"arn:aws:iam::123456789012:role/{SERVICE_ROLE}", RoleSessionName="admin"
        )
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "Traceback" not in log.read_text()


@pytest.mark.parametrize("path", [f"/{BUCKET}", f"/{BUCKET}/object", "/"])
def test_an_unsigned_s3_request_is_access_denied(server: tuple[str, Path], path: str) -> None:
    url, log = server
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{url}{path}", timeout=10)
    assert refused.value.code == 403
    body = refused.value.read()
    assert not body or b"<Code>AccessDenied</Code>" in body
    assert "Traceback" not in log.read_text()


def entry(detail_bytes: int) -> dict[str, str]:
    return {
        "Source": "asyncinfer",
        "DetailType": "Inference Failed",
        "Detail": json.dumps({"reason": "x" * detail_bytes}),
    }


def test_put_events_takes_at_most_ten_entries_and_256_kb(server: tuple[str, Path]) -> None:
    events = client(server[0], "events")
    assert events.put_events(Entries=[entry(20_000)] * 10)["FailedEntryCount"] == 0
    with pytest.raises(ClientError, match="Total size of the entries"):
        events.put_events(Entries=[entry(30_000)] * 10)  # about 300 KB
    with pytest.raises(ClientError, match="less than or equal to 10"):
        events.put_events(Entries=[entry(10)] * 11)
