"""The results table as the CLI reads it: records by id, by input object and by status.

Layout 2's sharded status index is read through ``status_index``; every call runs inside
``clients.calling``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from asyncinfer.cli.access import indexes, status_index
from asyncinfer.cli.access.clients import calling
from lambdas.common.contract import (
    INPUT_LOCATION_INDEX,
    STATUS_INDEX,
    STATUS_SHARD_INDEX,
    StackOutput,
)
from lambdas.common.items import record_from_item
from lambdas.common.records import InferenceRecord, Status
from lambdas.common.store import RecordStore, batch_get_items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, QueryInputTypeDef

# a sharded page queries up to 64 partitions: this many at a time (the clients' pool size)
QUERY_THREADS = 10


@dataclass(frozen=True)
class TimeWindow:
    """``updated_at`` bounds as the table stores them (``format_timestamp`` strings)."""

    since: str | None = None
    until: str | None = None


@dataclass(frozen=True)
class Page:
    records: list[InferenceRecord]
    last_key: dict[str, str] | None  # where the next page starts, as plain strings


class ResultsTable:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        input_location_index: str,
        status_index: str,
    ) -> None:
        self._client = client
        self._table = table_name
        self._input_location_index = input_location_index
        self._status_index = status_index
        self._store = RecordStore(client, table_name)
        self.resource = f"table {table_name}"
        # layout 2 (README "Migrating the results table"): the outputs name the index to read
        self.sharded = status_index == STATUS_SHARD_INDEX

    @classmethod
    def named_in(cls, client: DynamoDBClient, outputs: Mapping[str, str]) -> ResultsTable:
        """The results table that a stack's (or local mode's) outputs name."""
        return cls(
            client,
            outputs[StackOutput.RESULTS_TABLE_NAME],
            input_location_index=outputs.get(StackOutput.INPUT_LOCATION_INDEX_NAME)
            or INPUT_LOCATION_INDEX,
            status_index=outputs.get(StackOutput.STATUS_INDEX_NAME) or STATUS_INDEX,
        )

    def get(self, inference_id: str) -> InferenceRecord | None:
        with calling(self.resource):
            return self._store.get(inference_id)

    def get_many(self, inference_ids: Sequence[str]) -> dict[str, InferenceRecord]:
        """BatchGetItem in chunks, retrying unprocessed keys with a short backoff. For polling:
        an item that is not (yet) a valid record counts as not found."""
        found: dict[str, InferenceRecord] = {}
        unique = list(dict.fromkeys(inference_ids))
        with calling(self.resource):
            for item in batch_get_items(self._client, self._table, unique, consistent=True):
                try:
                    record = record_from_item(item)
                except ValidationError:
                    # A write seen half-done (moto applies updates non-atomically): the
                    # next poll reads it whole.
                    continue
                found[record.inference_id] = record
        return found

    def for_input(self, input_location: str) -> list[InferenceRecord]:
        """Every inference of one input object, newest first."""
        records: list[InferenceRecord] = []
        start_key: dict[str, AttributeValueTypeDef] | None = None
        while True:
            query: QueryInputTypeDef = {
                "TableName": self._table,
                "IndexName": self._input_location_index,
                "KeyConditionExpression": "#location = :location",
                "ExpressionAttributeNames": {"#location": "input_location"},
                "ExpressionAttributeValues": {":location": {"S": input_location}},
                "ScanIndexForward": False,
            }
            if start_key:
                query["ExclusiveStartKey"] = start_key
            with calling(self.resource):
                response = indexes.query(self._client, query)
            records.extend(self._whole(response.get("Items", [])))
            last = response.get("LastEvaluatedKey")
            if not last:
                return records
            start_key = dict(last)

    def index_states(self) -> list[indexes.IndexState]:
        with calling(self.resource):
            return indexes.index_states(self._client, self._table)

    def _whole(self, items: Sequence[Mapping[str, Any]]) -> list[InferenceRecord]:
        """Records of index items: as they are (ALL projection), or read by key (KEYS_ONLY)."""
        if all("status" in item for item in items):
            return [record_from_item(dict(item)) for item in items]
        ids = [item["inference_id"]["S"] for item in items]
        found = self.get_many(ids)
        return [found[inference_id] for inference_id in ids if inference_id in found]

    def status_page(
        self,
        statuses: Status | tuple[Status, ...],
        window: TimeWindow,
        *,
        limit: int,
        key_prefix: str | None = None,
        start_key: Mapping[str, str] | None = None,
        projection: Sequence[str] | None = None,
    ) -> Page:
        """One page of the status index, newest first: layout 1's ``by_status`` (``updated_at``,
        one status a page), or one walk over ``by_status_shard`` for every status asked
        (``status_time``: asyncinfer/cli/access/status_index.py). A sharded page may be short; its
        ``last_key`` says whether more may follow."""
        asked = (statuses,) if isinstance(statuses, Status) else statuses
        if self.sharded:
            request = status_index.WalkRequest(
                self._table,
                self._status_index,
                asked,
                (window.since, window.until),
                limit,
                key_prefix,
            )
            page = status_index.status_page(self._query_many, self.get_many, request, start_key)
            return Page(page.records, page.last_key)
        (status,) = asked  # layout 1 files each status under its own key
        query = self._status_query(status, window, key_prefix=key_prefix)
        query["Limit"] = limit
        if start_key:
            query["ExclusiveStartKey"] = {name: {"S": value} for name, value in start_key.items()}
        if projection:
            names = {f"#p{index}": name for index, name in enumerate(projection)}
            query["ProjectionExpression"] = ", ".join(names)
            query["ExpressionAttributeNames"] = {**query["ExpressionAttributeNames"], **names}
        with calling(self.resource):
            response = indexes.query(self._client, query)
        last = response.get("LastEvaluatedKey")
        return Page(
            records=[record_from_item(dict(item)) for item in response.get("Items", [])],
            last_key={name: str(value.get("S", "")) for name, value in last.items()}
            if last
            else None,
        )

    def _query(self, request: QueryInputTypeDef) -> Mapping[str, Any]:
        with calling(self.resource):
            return indexes.query(self._client, request)

    def _query_many(self, requests: Sequence[QueryInputTypeDef]) -> list[Mapping[str, Any]]:
        """The shards' Queries side by side (the client is thread-safe; its pool holds
        ``QUERY_THREADS`` connections at least), answers in order."""
        if len(requests) == 1:
            return [self._query(requests[0])]
        with ThreadPoolExecutor(max_workers=QUERY_THREADS) as pool:
            return list(pool.map(self._query, requests))

    def count_by_status(self, window: TimeWindow) -> dict[str, int]:
        """Records of each status in ``window``: a COUNT query per status (layout 1), or per
        finished class's shard plus the open records read by key (layout 2)."""
        if self.sharded:
            counted = status_index.count_by_status(
                self._query,
                self.get_many,
                table=self._table,
                index=self._status_index,
                window=(window.since, window.until),
            )
            return {status.value: counted.get(status.value, 0) for status in Status}
        counts = {}
        for status in Status:
            request = self._status_query(status, window, key_prefix=None)
            request["Select"] = "COUNT"
            counts[status.value] = self._count_pages(request)
        return counts

    def _count_pages(self, query: QueryInputTypeDef) -> int:
        """The sum of ``Count`` over every page of a ``Select=COUNT`` query."""
        total = 0
        while True:
            with calling(self.resource):
                response = indexes.query(self._client, query)
            total += int(response.get("Count", 0))
            last = response.get("LastEvaluatedKey")
            if not last:
                return total
            query["ExclusiveStartKey"] = last

    def _status_query(
        self, status: Status, window: TimeWindow, *, key_prefix: str | None
    ) -> QueryInputTypeDef:
        names = {"#status": "status"}
        values: dict[str, AttributeValueTypeDef] = {":status": {"S": status.value}}
        condition = "#status = :status"
        if window.since or window.until:
            names["#updated"] = "updated_at"
        if window.since and window.until:
            condition += " AND #updated BETWEEN :since AND :until"
        elif window.since:
            condition += " AND #updated >= :since"
        elif window.until:
            condition += " AND #updated <= :until"
        if window.since:
            values[":since"] = {"S": window.since}
        if window.until:
            values[":until"] = {"S": window.until}
        query: QueryInputTypeDef = {
            "TableName": self._table,
            "IndexName": self._status_index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        if key_prefix:
            names["#key"] = "input_key"
            values[":prefix"] = {"S": key_prefix}
            query["FilterExpression"] = "begins_with(#key, :prefix)"
        return query
