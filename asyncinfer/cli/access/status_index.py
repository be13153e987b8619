"""Listing records from the sharded, keys-only status index (layout 2): one merged walk.

``by_status_shard`` files a record under its status class and one of 16 shards of its id
(``OPEN#nn`` for PENDING and SUBMITTED, ``COMPLETED#nn``, ``FAILED#nn``: see
``lambdas/common/contract.py``), sorted by ``status_time``, the time of the write that filed it
there. A page of several statuses is ONE walk, newest first, over the partitions they need
(never one walk per status), plus the previous release's write-once shards (``00``..``15``,
any status), which hold what it left until an outcome moves it. The page reads the whole
items by key (the index holds keys only), at most 100 per BatchGetItem.

What a page costs does not depend on the table's size: one Query of ``limit`` keys per
partition; a partition is read further only while its last batch held a record of the asked
statuses; and the items of the entries the page passes. A partition whose records may be of
another status (OPEN for PENDING alone, a write-once shard) is read 100 keys at a time, and a
batch of them without an asked record parks it: the page ends where it would have to read
past it, and the next page (``--next-token``) resumes there. So a page may come back short.

The resume key is the position in every partition, encoded in one string so that callers
(``--next-token``, stats, reconcile) keep treating it as an opaque ``dict[str, str]``.
"""

from __future__ import annotations

import base64
import json
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lambdas.common.contract import (
    PARTITION_KEY,
    STATUS_SHARD_ATTRIBUTE,
    STATUS_TIME_ATTRIBUTE,
    WRITE_ONCE_PARTITIONS,
    group_partitions,
    status_group,
)
from lambdas.common.records import InferenceRecord, Status

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, QueryInputTypeDef

CURSOR_FIELD = "shards"
BATCH_GET_MAX_KEYS = 100
Query = Callable[["QueryInputTypeDef"], Mapping[str, Any]]
# several Queries at once (the access layer may run them concurrently), answers in order
QueryMany = Callable[[Sequence["QueryInputTypeDef"]], list[Mapping[str, Any]]]
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

    @property
    def order(self) -> tuple[str, str]:
        return (self.status_time, self.inference_id)


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


def partitions_for(statuses: Sequence[Status]) -> list[str]:
    """The partitions that can hold records of ``statuses``: their classes' shards, then the
    previous release's write-once shards."""
    groups = dict.fromkeys(status_group(status) for status in statuses)
    return [*(p for group in groups for p in group_partitions(group)), *WRITE_ONCE_PARTITIONS]


def _pure(partition: str, statuses: Sequence[Status]) -> bool:
    """Whether every record filed under ``partition`` is of one of ``statuses``."""
    if partition in WRITE_ONCE_PARTITIONS:
        return False
    group = partition.split("#", 1)[0]
    return all(status in statuses for status in Status if status_group(status) == group)


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


@dataclass(frozen=True)
class WalkRequest:
    table: str
    index: str
    statuses: tuple[Status, ...]
    window: tuple[str | None, str | None]
    limit: int
    key_prefix: str | None = None


@dataclass
class ShardPage:
    records: list[InferenceRecord]
    last_key: dict[str, str] | None


@dataclass
class _Partition:
    name: str
    pure: bool
    consumed: dict[str, str] | None  # the position after the last entry the page passed
    fetched: dict[str, str] | None = None  # the position after the last entry read
    buffer: deque[Entry] = field(default_factory=deque)
    more: bool = True  # entries may follow what was read
    yielded: bool = True  # the batch being passed held a record of the asked statuses
    frontier: tuple[str, str] | None = None  # the order of the last entry read

    @property
    def exhausted(self) -> bool:
        return not self.buffer and not self.more

    @property
    def needs_more(self) -> bool:
        return not self.buffer and self.more


class StatusWalk:
    """One page of ``request.statuses``, newest ``status_time`` first across their partitions."""

    def __init__(
        self,
        query_many: QueryMany,
        get_many: GetMany,
        request: WalkRequest,
        start_key: Mapping[str, str] | None,
    ) -> None:
        self._query_many = query_many
        self._get_many = get_many
        self._request = request
        positions = decode(start_key, partitions_for(request.statuses))
        self._partitions = [
            _Partition(name, _pure(name, request.statuses), start, fetched=start)
            for name, start in positions.items()
        ]
        self._records: dict[str, InferenceRecord | None] = {}
        self._listed: set[str] = set()

    def page(self) -> ShardPage:
        request = self._request
        found: list[InferenceRecord] = []
        while len(found) < request.limit:
            head = self._head()
            # a partition read to its end may hold entries newer than the head: read it on
            # while its last batch held an asked record; else it is parked and the page ends
            blocking = [
                p
                for p in self._partitions
                if p.needs_more
                and (head is None or p.frontier is None or p.frontier > head[1].order)
            ]
            if any(p.yielded for p in blocking):
                self._refill([p for p in blocking if p.yielded])
                continue
            if blocking or head is None:
                break
            partition, entry = head
            if entry.inference_id not in self._records:
                self._read_ahead(request.limit - len(found), partition.pure)
            partition.buffer.popleft()
            partition.consumed = entry.key
            record = self._records.get(entry.inference_id)
            if record is not None and self._wanted(record, entry):
                partition.yielded = True
                found.append(record)
                self._listed.add(record.inference_id)
        positions: Positions = {p.name: p.consumed for p in self._partitions if not p.exhausted}
        return ShardPage(found, encode(positions) if positions else None)

    def _wanted(self, record: InferenceRecord, entry: Entry) -> bool:
        """Of an asked status and prefix, and filed where the entry says: an entry may trail
        its item (the index is eventually consistent), and a record that moved is listed
        from where it is now, once."""
        prefix = self._request.key_prefix
        group = entry.partition.split("#", 1)[0]
        return (
            record.status in self._request.statuses
            and (entry.partition in WRITE_ONCE_PARTITIONS or status_group(record.status) == group)
            and record.inference_id not in self._listed
            and (not prefix or (record.input_key or "").startswith(prefix))
        )

    def _head(self) -> tuple[_Partition, Entry] | None:
        """The newest entry read and not yet passed."""
        heads = [(p, p.buffer[0]) for p in self._partitions if p.buffer]
        if not heads:
            return None
        return max(heads, key=lambda head: head[1].order)

    def _refill(self, partitions: list[_Partition]) -> None:
        if not partitions:
            return
        request = self._request
        queries = []
        for partition in partitions:
            query = partition_query(request.table, request.index, partition.name, request.window)
            query["ScanIndexForward"] = False
            # a mixed partition is read a BatchGetItem's worth of keys at a time
            query["Limit"] = request.limit if partition.pure else BATCH_GET_MAX_KEYS
            if partition.fetched:
                query["ExclusiveStartKey"] = {
                    name: {"S": value} for name, value in partition.fetched.items()
                }
            queries.append(query)
        for partition, response in zip(partitions, self._query_many(queries), strict=True):
            entries = [
                Entry(
                    item[STATUS_TIME_ATTRIBUTE]["S"],
                    item[PARTITION_KEY]["S"],
                    item[STATUS_SHARD_ATTRIBUTE]["S"],
                )
                for item in response.get("Items", [])
            ]
            partition.buffer.extend(entries)
            partition.more = bool(response.get("LastEvaluatedKey"))
            partition.yielded = False
            if entries:
                partition.fetched = entries[-1].key
                partition.frontier = entries[-1].order

    def _read_ahead(self, wanted: int, pure: bool) -> None:
        """Reads the items of the next entries in walk order: as many as the page still
        needs, or a whole BatchGetItem where most may be of another status."""
        count = wanted if pure else BATCH_GET_MAX_KEYS
        pending = sorted(
            (e for p in self._partitions for e in p.buffer if e.inference_id not in self._records),
            key=lambda entry: entry.order,
            reverse=True,
        )[: min(count, BATCH_GET_MAX_KEYS)]
        ids = [entry.inference_id for entry in pending]
        found = self._get_many(ids)
        for inference_id in ids:
            self._records[inference_id] = found.get(inference_id)


def status_page(
    query_many: QueryMany,
    get_many: GetMany,
    request: WalkRequest,
    start_key: Mapping[str, str] | None,
) -> ShardPage:
    """One page of ``request.statuses``, newest first (``StatusWalk``)."""
    return StatusWalk(query_many, get_many, request, start_key).page()


def count_by_status(
    query: Query,
    get_many: GetMany,
    *,
    table: str,
    index: str,
    window: tuple[str | None, str | None],
) -> Counter[str]:
    """How many records of each status are filed in ``window``: a COUNT per finished class's
    shard (its records are all of that status), the items of the OPEN shards (PENDING and
    SUBMITTED) and of the previous release's write-once shards read by key."""
    counts: Counter[str] = Counter()
    for status in (Status.COMPLETED, Status.FAILED):
        for partition in group_partitions(status):
            request = partition_query(table, index, partition, window)
            request["Select"] = "COUNT"
            counts[status.value] += _count_pages(query, request)
    for partition in [*group_partitions(Status.PENDING), *WRITE_ONCE_PARTITIONS]:
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


def _count_pages(query: Query, request: QueryInputTypeDef) -> int:
    total = 0
    while True:
        response = query(request)
        total += int(response.get("Count", 0))
        last = response.get("LastEvaluatedKey")
        if not last:
            return total
        request["ExclusiveStartKey"] = last
