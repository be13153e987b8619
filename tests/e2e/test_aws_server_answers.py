"""The local AWS server refuses as AWS refuses (a 403, never a 500) and enforces PutEvents'
limits: unsigned requests, an administrator assuming a role that trusts only a service, and
PutEvents calls over 10 entries or 256 KB (and what the pipes do with a batch refused so)."""

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

from asyncinfer.local.aws.iam import ADMIN_CREDENTIALS, admin_session, enable_enforcement
from asyncinfer.local.aws.pipes import PipeRunner, PipeSpec
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


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_a_pipe_batch_over_256_kb_is_retried_then_dead_lettered(
    server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten 30 KB records make one ~300 KB PutEvents call: refused, retried, dead-lettered; the
    pipe then moves on (a small record after them is published)."""
    url = server[0]
    for name, value in ADMIN_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    dynamodb = client(url, "dynamodb")
    dynamodb.create_table(
        TableName="piped",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    sqs = client(url, "sqs")
    dead_letters = sqs.create_queue(QueueName="pipe-dead-letters")["QueueUrl"]
    pipe = PipeSpec(
        name="Failed",
        table_name="piped",
        filters=(),
        bus_name="default",
        source="asyncinfer",
        detail_type="Inference Failed",
        input_template=None,
        batch_size=10,
        max_retries=1,
        dead_letter_queue_url=dead_letters,
    )
    for number in range(10):
        item = {"id": {"S": f"big-{number}"}, "reason": {"S": "x" * 30_000}}
        dynamodb.put_item(TableName="piped", Item=item)
    runner = PipeRunner([pipe], aws_endpoint_url=url, region=REGION)
    runner.start()
    try:
        wait_for(lambda: runner.dead_lettered == 10)
        assert runner.published == 0
        dynamodb.put_item(TableName="piped", Item={"id": {"S": "small"}})
        wait_for(lambda: runner.published == 1)
    finally:
        runner.stop()
    (message,) = sqs.receive_message(QueueUrl=dead_letters)["Messages"]
    body = json.loads(message["Body"])
    assert body["ddbStreamBatchInfo"]["batchSize"] == 10
    assert "Total size of the entries" in body["context"]["errorMessage"]
