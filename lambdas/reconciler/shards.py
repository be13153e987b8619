"""The reconciler's search of layout 2's sharded, keys-only status index (``by_status_shard``).

Non-terminal records (``PENDING`` and ``SUBMITTED``) sit under the ``OPEN#<shard>`` partition
values, sorted by ``status_time`` (the claim's ``created_at``). A page of one status reads one
shard oldest first with ``status_time < cutoff`` as a key condition (a record written before
the cutoff was created before it, so nothing that could be overdue is skipped), reads the
items by key with a consistent BatchGetItem, and keeps those in the asked status last written
before the cutoff: the same records layout 1's ``(status, updated_at)`` query returns. No Scan:
what is read is the open records older than the cutoff, and only those.

The resume key names the shard (``shard``) beside the index's LastEvaluatedKey.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common.contract import (
    PARTITION_KEY,
    STATUS_SHARD_ATTRIBUTE,
    STATUS_TIME_ATTRIBUTE,
    status_partitions,
)
from lambdas.common.records import InferenceRecord, Status, format_timestamp
from lambdas.common.store import record_from_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, QueryInputTypeDef

SHARD_FIELD = "shard"
BATCH_GET_MAX_KEYS = 100


class ShardQueryError(Exception):
    """A Query or BatchGetItem failed (the caller turns it into its own error)."""


def shard_page(
    client: DynamoDBClient,
    table: str,
    index: str,
    request: tuple[Status, datetime, int, dict[str, AttributeValueTypeDef] | None],
) -> tuple[list[InferenceRecord], dict[str, AttributeValueTypeDef] | None]:
    """Records of one shard page and the key of the next page (None after the last shard)."""
    status, cutoff, limit, start_key = request
    partitions = status_partitions(status)
    position = dict(start_key or {})
    shard = int(position.pop(SHARD_FIELD, {"N": "0"}).get("N", "0"))
    cutoff_text = format_timestamp(cutoff)
    query: QueryInputTypeDef = {
        "TableName": table,
        "IndexName": index,
        "KeyConditionExpression": "#shard = :shard AND #time < :cutoff",
        "ExpressionAttributeNames": {
            "#shard": STATUS_SHARD_ATTRIBUTE,
            "#time": STATUS_TIME_ATTRIBUTE,
        },
        "ExpressionAttributeValues": {
            ":shard": {"S": partitions[shard]},
            ":cutoff": {"S": cutoff_text},
        },
        "ScanIndexForward": True,
        "Limit": limit,
    }
    if position:
        query["ExclusiveStartKey"] = position
    try:
        response = client.query(**query)
    except (ClientError, BotoCoreError) as error:
        raise ShardQueryError(f"query of {index} failed: {error}") from error
    ids = [item[PARTITION_KEY]["S"] for item in response.get("Items", [])]
    found = _get_many(client, table, ids)
    records = [
        record
        for inference_id in ids
        if (record := found.get(inference_id)) is not None
        and record.status == status
        and (record.updated_at or "") < cutoff_text
    ]
    last = response.get("LastEvaluatedKey")
    if last:
        return records, {**dict(last), SHARD_FIELD: {"N": str(shard)}}
    if shard + 1 < len(partitions):
        return records, {SHARD_FIELD: {"N": str(shard + 1)}}
    return records, None


def _get_many(client: DynamoDBClient, table: str, ids: list[str]) -> dict[str, InferenceRecord]:
    """Consistent reads by key: the index may trail the table, the item is the truth."""
    found: dict[str, InferenceRecord] = {}
    for start in range(0, len(ids), BATCH_GET_MAX_KEYS):
        keys: list[Any] = [
            {PARTITION_KEY: {"S": i}} for i in ids[start : start + BATCH_GET_MAX_KEYS]
        ]
        attempt = 0
        while keys:
            try:
                response = client.batch_get_item(
                    RequestItems={table: {"Keys": keys, "ConsistentRead": True}}
                )
            except (ClientError, BotoCoreError) as error:
                raise ShardQueryError(f"reading records of {table} failed: {error}") from error
            for item in response.get("Responses", {}).get(table) or []:
                record = record_from_item(dict(item))
                found[record.inference_id] = record
            unprocessed = response.get("UnprocessedKeys", {}).get(table)
            keys = list(unprocessed["Keys"]) if unprocessed else []
            if keys:  # throttled keys come back unprocessed: back off, as the SDK would
                attempt += 1
                time.sleep(min(0.05 * 2**attempt, 1.0))
    return found
