"""Data access for the ``jobs`` and ``job`` commands: the jobs table and manifests.

A job's header (status, counts, results location) and its sixteen counter shards are read by
key; the list comes from the sparse ``by_created`` index, newest first (lambdas/jobs/clients.py
describes the items).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asyncinfer.cli.access.clients import calling
from lambdas.common.contract import (
    JOBS_LIST_INDEX,
    JOBS_LIST_KEY,
    JOBS_LIST_VALUE,
    MANIFEST_SUFFIX,
    STATUS_SHARDS,
)
from lambdas.common.items import decode_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_s3.client import S3Client

FINAL_STATUSES = frozenset({"COMPLETED", "FAILED"})


@dataclass(frozen=True)
class JobView:
    """A job as the CLI shows it: its header and how far its counting is."""

    name: str
    status: str
    created_at: str
    total: int  # manifest entries (once started)
    completed: int  # final counts (once complete)
    failed: int
    results_location: str
    reason: str
    awaited: int  # distinct inference ids the job waits for
    counted: int  # of those, how many have an outcome

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    def document(self) -> dict[str, Any]:
        return {
            "job_name": self.name,
            "status": self.status,
            "created_at": self.created_at,
            "total": self.total,
            "completed": self.completed,
            "failed": self.failed,
            "awaited": self.awaited,
            "counted": self.counted,
            "results_location": self.results_location or None,
            "reason": self.reason or None,
        }


def _view(header: dict[str, Any], awaited: int = 0, counted: int = 0) -> JobView:
    return JobView(
        name=str(header["job_name"]),
        status=str(header["status"]),
        created_at=str(header.get("created_at", "")),
        total=int(header.get("total", 0)),
        completed=int(header.get("completed", 0)),
        failed=int(header.get("failed", 0)),
        results_location=str(header.get("results_location", "")),
        reason=str(header.get("reason", "")),
        awaited=awaited,
        counted=counted,
    )


class JobsTable:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def newest(self, limit: int) -> list[JobView]:
        with calling(f"table {self._table}"):
            response = self._client.query(
                TableName=self._table,
                IndexName=JOBS_LIST_INDEX,
                KeyConditionExpression="#listing = :listing",
                ExpressionAttributeNames={"#listing": JOBS_LIST_KEY},
                ExpressionAttributeValues={":listing": {"S": JOBS_LIST_VALUE}},
                ScanIndexForward=False,
                Limit=limit,
            )
        return [_view(decode_item(dict(item))) for item in response.get("Items", [])]

    def get(self, name: str) -> JobView | None:
        with calling(f"table {self._table}"):
            item = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": f"JOB#{name}"}, "sk": {"S": "JOB"}},
                ConsistentRead=True,
            ).get("Item")
            if item is None:
                return None
            keys: Sequence[Any] = [
                {"pk": {"S": f"JOB#{name}#SHARD#{shard:02d}"}, "sk": {"S": "SHARD"}}
                for shard in range(STATUS_SHARDS)
            ]
            shards = self._client.batch_get_item(
                RequestItems={self._table: {"Keys": list(keys), "ConsistentRead": True}}
            )["Responses"].get(self._table, [])
        counters = [decode_item(dict(shard)) for shard in shards]
        return _view(
            decode_item(dict(item)),
            awaited=sum(int(c.get("expected", 0)) for c in counters),
            counted=sum(int(c.get("done", 0)) for c in counters),
        )


def manifest_key(jobs_prefix: str, name: str) -> str:
    return f"{jobs_prefix}{name}{MANIFEST_SUFFIX}"


def put_manifest(
    client: S3Client, bucket: str, key: str, prefix: str, relative_keys: Sequence[str]
) -> None:
    """The manifest in SageMaker's ManifestFile format (docs/jobs.md)."""
    document = [{"prefix": f"s3://{bucket}/{prefix}"}, *relative_keys]
    with calling(f"bucket {bucket}"):
        client.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(document).encode(),
            ContentType="application/json",
        )
