"""The jobs function's data access against moto: guarded writes, counting transactions,
multipart results files."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from lambdas.common.contract import JOBS_LIST_INDEX, shard_of
from lambdas.jobs import clients
from lambdas.jobs.clients import DynamoJobLedger, S3JobObjects
from lambdas.jobs.model import JobHeader, JobStatus, Member
from tests.moto_server import moto_endpoint


@pytest.fixture(scope="module")
def session() -> Iterator[Any]:
    aws = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    with moto_endpoint() as endpoint:

        class Clients:
            dynamodb = aws.client("dynamodb", endpoint_url=endpoint)
            s3 = aws.client("s3", endpoint_url=endpoint)

        yield Clients


def create_jobs_table(client: Any, table: str) -> None:
    """The jobs table as stacks/jobs.py defines it."""
    client.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("pk", "sk", "listing", "created_at")
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": JOBS_LIST_INDEX,
                "KeySchema": [
                    {"AttributeName": "listing", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def ledger(session: Any) -> DynamoJobLedger:
    table = f"jobs-{uuid.uuid4().hex[:8]}"
    create_jobs_table(session.dynamodb, table)
    return DynamoJobLedger(session.dynamodb, table, concurrency=4)


def header(name: str, version: str = "v1") -> JobHeader:
    return JobHeader(
        job_name=name,
        status=JobStatus.STARTING,
        manifest_location=f"s3://in/jobs/{name}.manifest.json",
        manifest_version=version,
        created_at="2026-01-01T00:00:00.000Z",
        deadline_at=1_900_000_000,
    )


def test_a_header_is_created_once_and_moves_only_from_the_expected_status(
    ledger: DynamoJobLedger,
) -> None:
    assert ledger.create(header("a")).manifest_version == "v1"
    assert ledger.create(header("a", "v2")).manifest_version == "v1"
    assert ledger.transition("a", JobStatus.STARTING, JobStatus.OPEN, {"total": 3})
    assert not ledger.transition("a", JobStatus.STARTING, JobStatus.FAILED, {"reason": "x"})
    stored = ledger.header("a")
    assert stored is not None
    assert (stored.status, stored.total) == (JobStatus.OPEN, 3)
    assert [h.job_name for h in ledger.open_jobs()] == ["a"]


def test_counting_is_once_per_member_and_fills_its_shard(ledger: DynamoJobLedger) -> None:
    ids = [uuid.uuid4().hex * 2 for _ in range(20)]
    expected: dict[int, int] = {}
    for inference_id in ids:
        expected[shard_of(inference_id)] = expected.get(shard_of(inference_id), 0) + 1
    ledger.add_members("b", expected, ids)
    ledger.add_members("b", expected, ids)  # a retried start resets nothing
    first = Member(job_name="b", inference_id=ids[0])
    assert ledger.members_of(ids[0]) == [first]
    assert ledger.count(first)
    assert not ledger.count(first)
    assert ledger.uncounted("b", ids[:2]) == [ids[1]]
    assert not ledger.count(Member(job_name="b", inference_id="not-a-member"))
    assert not ledger.all_settled("b")
    for inference_id in ids[1:]:
        assert ledger.count(Member(job_name="b", inference_id=inference_id))
    assert ledger.shard_settled("b", first.shard)
    assert ledger.all_settled("b")
    assert ledger.uncounted("b", ids) == []


def test_a_results_file_larger_than_a_part_is_uploaded_in_parts(
    session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    session.s3.create_bucket(Bucket="out")
    monkeypatch.setattr(clients, "PART_BYTES", 5 * 1024 * 1024)  # S3's smallest part
    line = "x" * 1023
    objects = S3JobObjects(session.s3)
    objects.write_lines("out", "jobs/big/results.jsonl", (line for _ in range(12 * 1024)))
    lines = objects.read_lines("out", "jobs/big/results.jsonl")
    assert lines is not None
    assert len(lines) == 12 * 1024
    head = session.s3.head_object(Bucket="out", Key="jobs/big/results.jsonl")
    assert head["ETag"].strip('"').endswith("-3")  # three parts
    assert objects.read_lines("out", "jobs/none.jsonl") is None
    assert objects.current_version("out", "jobs/none.jsonl") is None


class ConflictingClient:
    """Cancels the first transactions as DynamoDB does while another is in flight on an item."""

    def __init__(self, conflicts: int, then: str | None = None) -> None:
        self.conflicts = conflicts
        self.then = then
        self.calls = 0

    def transact_write_items(self, **_: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        self.calls += 1
        codes = ["None", "TransactionConflict"] if self.calls <= self.conflicts else None
        if codes is None and self.then is not None:
            codes = [self.then, "None"]
        if codes is None:
            return {}
        raise ClientError(
            {
                "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                "CancellationReasons": [{"Code": code} for code in codes],
            },
            "TransactWriteItems",
        )


def test_a_conflicting_transaction_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clients.time, "sleep", lambda _: None)
    member = Member(job_name="j", inference_id="ab" * 32)
    client = ConflictingClient(conflicts=3)
    assert DynamoJobLedger(client, "t").count(member)  # type: ignore[arg-type]
    assert client.calls == 4
    duplicate = ConflictingClient(conflicts=1, then="ConditionalCheckFailed")
    assert not DynamoJobLedger(duplicate, "t").count(member)  # type: ignore[arg-type]
    endless = ConflictingClient(conflicts=100)
    with pytest.raises(clients.JobsAwsError):
        DynamoJobLedger(endless, "t").count(member)  # type: ignore[arg-type]
    assert endless.calls == clients.COUNT_ATTEMPTS
