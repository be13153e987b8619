"""Listing records of one status from the sharded, keys-only status index (layout 2).

``by_status_shard`` files every record, whatever its status, under one of 16 shards of its id
(``00`` .. ``15``, see ``lambdas/common/contract.py``), sorted by ``status_time`` (the claim's
time). A page of one status queries every shard newest first (and the values the previous
release used for that status, ``OPEN#nn``/``COMPLETED#nn``/``FAILED#nn``), merges the heads,
reads the whole items by key (the index holds keys only) and keeps those in the asked status.
A rare status therefore costs more reads per page found; the index costs one write per file.

The resume key is the position in every shard, encoded in one string so that callers (the
listing's ``--next-token``, stats, reconcile) keep treating it as an opaque ``dict[str, str]``.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lambdas.common.contract import (
    PARTITION_KEY,
    SHARD_PARTITIONS,
    STATUS_SHARD_ATTRIBUTE,
    STATUS_TIME_ATTRIBUTE,
    legacy_partitions,
    status_partitions,
)
from lambdas.common.records import InferenceRecord, Status

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, QueryInputTypeDef

CURSOR_FIELD = "shards"
Query = Callable[["QueryInputTypeDef"], Mapping[str, Any]]
GetMany = Callable[[Sequence[str]], dict[str, InferenceRecord]]


@dataclass(frozen=True)
class Entry:
    """One index entry: its sort value and its key (plain strings)."""

    status_time: str
    inference_id: str
    partition: str

    @property
    def key(self) -> dict[str, str]:
        return {
            PARTITION_KEY: self.inference_id,
            STATUS_SHARD_ATTRIBUTE: self.partition,
            STATUS_TIME_ATTRIBUTE: self.status_time,
        }


# partition -> the key to resume after (None: from the start); absent: exhausted
Positions = dict[str, dict[str, str] | None]


def encode(positions: Positions) -> dict[str, str]:
    raw = json.dumps(positions, separators=(",", ":"), sort_keys=True).encode()
    return {CURSOR_FIELD: base64.urlsafe_b64encode(raw).decode()}


def decode(start_key: Mapping[str, str] | None, partitions: Sequence[str]) -> Positions:
    if not start_key or CURSOR_FIELD not in start_key:  # first page (or a layout-1 key)
        return dict.fromkeys(partitions)
    document = json.loads(base64.urlsafe_b64decode(start_key[CURSOR_FIELD]))
    return {name: document[name] for name in partitions if name in document}


def key_condition(
    partition: str, since: str | None, until: str | None
) -> tuple[str, dict[str, str], dict[str, AttributeValueTypeDef]]:
    names = {"#shard": STATUS_SHARD_ATTRIBUTE}
    values: dict[str, AttributeValueTypeDef] = {":shard": {"S": partition}}
    condition = "#shard = :shard"
    if since or until:
        names["#time"] = STATUS_TIME_ATTRIBUTE
    if since and until:
        condition += " AND #time BETWEEN :since AND :until"
    elif since:
        condition += " AND #time >= :since"
    elif until:
        condition += " AND #time <= :until"
    if since:
        values[":since"] = {"S": since}
    if until:
        values[":until"] = {"S": until}
    return condition, names, values


def partition_query(
    table: str, index: str, partition: str, window: tuple[str | None, str | None]
) -> QueryInputTypeDef:
    """The Query of one ``status_shard`` value within a ``status_time`` window."""
    condition, names, values = key_condition(partition, *window)
    return {
        "TableName": table,
        "IndexName": index,
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


@dataclass
class ShardPage:
    """The merged page: records kept, each with its sort value and the resume key after it."""

    records: list[InferenceRecord]
    entries: list[tuple[str, dict[str, str]]]
    last_key: dict[str, str] | None


def _fetch(
    query: Query,
    target: tuple[str, str, int],
    window: tuple[str | None, str | None],
    partition: str,
    start: dict[str, str] | None,
) -> tuple[list[Entry], bool]:
    table, index, limit = target
    request = partition_query(table, index, partition, window)
    request["ScanIndexForward"] = False
    request["Limit"] = limit
    if start:
        request["ExclusiveStartKey"] = {name: {"S": value} for name, value in start.items()}
    response = query(request)
    entries = [
        Entry(
            item[STATUS_TIME_ATTRIBUTE]["S"],
            item[PARTITION_KEY]["S"],
            item[STATUS_SHARD_ATTRIBUTE]["S"],
        )
        for item in response.get("Items", [])
    ]
    return entries, bool(response.get("LastEvaluatedKey"))


def status_page(
    query: Query,
    get_many: GetMany,
    *,
    table: str,
    index: str,
    status: Status,
    window: tuple[str | None, str | None],
    limit: int,
    key_prefix: str | None,
    start_key: Mapping[str, str] | None,
) -> ShardPage:
    """One page of ``status``, newest ``status_time`` first across every shard of its group."""
    positions = decode(start_key, status_partitions(status))
    fetched: dict[str, tuple[list[Entry], bool]] = {}
    for partition, start in positions.items():
        fetched[partition] = _fetch(query, (table, index, limit), window, partition, start)
    merged = sorted(
        (entry for entries, _ in fetched.values() for entry in entries),
        key=lambda entry: (entry.status_time, entry.inference_id),
        reverse=True,
    )[:limit]
    records = get_many([entry.inference_id for entry in merged])
    taken: dict[str, int] = dict.fromkeys(fetched, 0)
    state: Positions = dict(positions)
    page = ShardPage([], [], None)
    for entry in merged:
        taken[entry.partition] += 1
        entries, more = fetched[entry.partition]
        if taken[entry.partition] == len(entries) and not more:
            state.pop(entry.partition, None)  # this shard has nothing after this entry
        else:
            state[entry.partition] = entry.key
        record = records.get(entry.inference_id)
        if record is None or record.status != status:
            continue  # moved on since the index was read, or the other OPEN status
        if key_prefix and not (record.input_key or "").startswith(key_prefix):
            continue
        page.records.append(record)
        page.entries.append((entry.status_time, encode(state)))
    for partition, (entries, more) in fetched.items():
        if not entries and not more:
            state.pop(partition, None)
    page.last_key = encode(state) if state else None
    return page


def count_by_status(
    query: Query,
    get_many: GetMany,
    *,
    table: str,
    index: str,
    window: tuple[str | None, str | None],
) -> Counter[str]:
    """How many records of each status are filed in ``window``: one pass over every shard
    (and the previous release's values), reading the items by key."""
    partitions = dict.fromkeys(
        [
            *SHARD_PARTITIONS,
            *(p for s in ("PENDING", "COMPLETED", "FAILED") for p in legacy_partitions(s)),
        ]
    )
    counts: Counter[str] = Counter()
    for partition in partitions:
        request = partition_query(table, index, partition, window)
        while True:
            response = query(request)
            ids = [item[PARTITION_KEY]["S"] for item in response.get("Items", [])]
            counts.update(str(record.status) for record in get_many(ids).values())
            last = response.get("LastEvaluatedKey")
            if not last:
                break
            request["ExclusiveStartKey"] = last
    return counts
