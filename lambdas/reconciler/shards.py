"""The reconciler's reads of layout 2's sharded, keys-only status index (``by_status_shard``).

* ``shard_page``: the open records, under ``OPEN#<shard>`` (an outcome moves an entry out of
  there, so only what is in flight remains). A page of one status reads one such partition
  oldest first with ``status_time < cutoff`` (the claim's time) as a key condition, reads the
  items by key with a consistent BatchGetItem, and keeps those in the asked status last
  written before the cutoff. The resume key names the shard (``shard``) beside the index's
  LastEvaluatedKey.
* ``window_page``: one page of a write-once shard (``00``..``15``, where the previous release
  filed every record) by ``status_time`` within a window, oldest first: what the review of
  the records it left open (``lambdas/reconciler/review.py``) walks.

No Scan anywhere: what is read is bounded by what is in flight or by the window.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common.clock import format_timestamp
from lambdas.common.contract import (
    PARTITION_KEY,
    STATUS_SHARD_ATTRIBUTE,
    STATUS_TIME_ATTRIBUTE,
    group_partitions,
)
from lambdas.common.items import record_from_item
from lambdas.common.records import InferenceRecord, Status
from lambdas.common.store import batch_get_items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, QueryInputTypeDef

SHARD_FIELD = "shard"
# index entries are ~0.2 KB: a 1 MB Query page holds several thousand; 1,000 keeps a page's
# BatchGetItem reads (10 calls) short next to the run's time budget
WINDOW_PAGE_SIZE = 1000


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
    partitions = group_partitions(status)
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
    found = get_many(client, table, ids, consistent=True)
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


def window_page(
    client: DynamoDBClient,
    target: tuple[str, str],
    shard: str,
    window: tuple[str | None, str],
    start_key: dict[str, AttributeValueTypeDef] | None,
) -> tuple[list[str], dict[str, AttributeValueTypeDef] | None]:
    """Ids in ``shard`` with ``lower < status_time <= upper`` (no lower: from the start)."""
    table, index = target
    lower, upper = window
    values: dict[str, AttributeValueTypeDef] = {":shard": {"S": shard}, ":upper": {"S": upper}}
    condition = "#shard = :shard AND #time <= :upper"
    if lower is not None:  # BETWEEN is inclusive: the lower bound was reviewed already
        condition = "#shard = :shard AND #time BETWEEN :lower AND :upper"
        values[":lower"] = {"S": lower}
    query: QueryInputTypeDef = {
        "TableName": table,
        "IndexName": index,
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": {
            "#shard": STATUS_SHARD_ATTRIBUTE,
            "#time": STATUS_TIME_ATTRIBUTE,
        },
        "ExpressionAttributeValues": values,
        "ScanIndexForward": True,
        "Limit": WINDOW_PAGE_SIZE,
    }
    if start_key:
        query["ExclusiveStartKey"] = start_key
    try:
        response = client.query(**query)
    except (ClientError, BotoCoreError) as error:
        raise ShardQueryError(f"query of {index} failed: {error}") from error
    items = response.get("Items", [])
    ids = [
        item[PARTITION_KEY]["S"]
        for item in items
        if lower is None or item[STATUS_TIME_ATTRIBUTE]["S"] > lower
    ]
    last = response.get("LastEvaluatedKey")
    return ids, dict(last) if last else None


def get_many(
    client: DynamoDBClient, table: str, ids: list[str], *, consistent: bool
) -> dict[str, InferenceRecord]:
    """Reads by key, 100 at a time (consistent where an index read may trail the table)."""
    found: dict[str, InferenceRecord] = {}
    try:
        for item in batch_get_items(client, table, ids, consistent=consistent):
            record = record_from_item(item)
            found[record.inference_id] = record
    except (ClientError, BotoCoreError) as error:
        raise ShardQueryError(f"reading records of {table} failed: {error}") from error
    return found
