"""The jobs table's items as DynamoDB JSON: keys, the header, the counting transaction (no I/O;
lambdas/jobs/clients.py reads and writes them)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from lambdas.common.contract import JOBS_PARTITION_KEY, JOBS_SORT_KEY
from lambdas.common.items import decode_item
from lambdas.jobs.model import JobHeader, JobStatus, Member

PK, SK = JOBS_PARTITION_KEY, JOBS_SORT_KEY
HEADER_SK = "JOB"
SHARD_SK = "SHARD"
_HEADER_FIELDS = {f.name for f in fields(JobHeader)}


def header_key(name: str) -> dict[str, Any]:
    return {PK: {"S": f"JOB#{name}"}, SK: {"S": HEADER_SK}}


def shard_key(name: str, shard: int) -> dict[str, Any]:
    return {PK: {"S": f"JOB#{name}#SHARD#{shard:02d}"}, SK: {"S": SHARD_SK}}


def member_key(name: str, inference_id: str) -> dict[str, Any]:
    return {PK: {"S": f"ID#{inference_id}"}, SK: {"S": f"JOB#{name}"}}


def header_from_item(item: dict[str, Any]) -> JobHeader:
    values: dict[str, Any] = {}
    for name, value in decode_item(item).items():
        if name in _HEADER_FIELDS:
            values[name] = value if isinstance(value, str) else int(value)  # numbers: Decimal
    values["status"] = JobStatus(values["status"])
    return JobHeader(**values)


def count_items(table: str, member: Member) -> list[Any]:
    """Mark the member counted (only once) and add one to its shard, atomically."""
    return [
        {
            "Update": {
                "TableName": table,
                "Key": member_key(member.job_name, member.inference_id),
                "UpdateExpression": "SET counted = :true",
                "ConditionExpression": "attribute_exists(#pk) AND attribute_not_exists(counted)",
                "ExpressionAttributeNames": {"#pk": PK},
                "ExpressionAttributeValues": {":true": {"BOOL": True}},
            }
        },
        {
            "Update": {
                "TableName": table,
                "Key": shard_key(member.job_name, member.shard),
                "UpdateExpression": "ADD done :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        },
    ]


def shard_settled_item(item: dict[str, Any]) -> bool:
    return int(item.get("done", {}).get("N", "0")) >= int(item["expected"]["N"])


def header_values(header: JobHeader) -> dict[str, str | int]:
    values: dict[str, str | int] = {}
    for field in fields(JobHeader):
        value = getattr(header, field.name)
        values[field.name] = value.value if isinstance(value, JobStatus) else value
    return values
