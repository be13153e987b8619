"""The results table as the CLI reads it: records by id, by input object and by status.

Layout 2's sharded status index is read through ``status_index``; every call runs inside
``clients.calling``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from asyncinfer.cli.access import status_index
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


@dataclass(frozen=True)
class TimeWindow:
    """``updated_at`` bounds as the table stores them (``format_timestamp`` strings)."""

    since: str | None = None
    until: str | None = None


@dataclass(frozen=True)
class Page:
    records: list[InferenceRecord]
    last_key: dict[str, str] | None  # the GSI's LastEvaluatedKey, as plain strings
    # per record: its sort value in the index and the key to resume after it (sharded index;
    # None: the record's own ``updated_at`` and index key, as in layout 1's by_status)
    entries: list[tuple[str, dict[str, str]]] | None = None


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
                response = self._client.query(**query)
            records.extend(self._whole(response.get("Items", [])))
            last = response.get("LastEvaluatedKey")
            if not last:
                return records
            start_key = dict(last)

    def _whole(self, items: Sequence[Mapping[str, Any]]) -> list[InferenceRecord]:
        """Records of index items: as they are (ALL projection), or read by key (KEYS_ONLY)."""
        if all("status" in item for item in items):
            return [record_from_item(dict(item)) for item in items]
        ids = [item["inference_id"]["S"] for item in items]
        found = self.get_many(ids)
        return [found[inference_id] for inference_id in ids if inference_id in found]

    def status_page(
        self,
        status: Status,
        window: TimeWindow,
        *,
        limit: int,
        key_prefix: str | None = None,
        start_key: Mapping[str, str] | None = None,
        projection: Sequence[str] | None = None,
    ) -> Page:
        """One Query page of the status index, newest first (``updated_at`` in layout 1's
        ``by_status``, ``status_time`` across the shards of ``by_status_shard``)."""
        if self.sharded:
            return self._shard_page(status, window, limit, key_prefix, start_key)
        query = self._status_query(status, window, key_prefix=key_prefix)
        query["Limit"] = limit
        if start_key:
            query["ExclusiveStartKey"] = {name: {"S": value} for name, value in start_key.items()}
        if projection:
            names = {f"#p{index}": name for index, name in enumerate(projection)}
            query["ProjectionExpression"] = ", ".join(names)
            query["ExpressionAttributeNames"] = {**query["ExpressionAttributeNames"], **names}
        with calling(self.resource):
            response = self._client.query(**query)
        last = response.get("LastEvaluatedKey")
        return Page(
            records=[record_from_item(dict(item)) for item in response.get("Items", [])],
            last_key={name: str(value.get("S", "")) for name, value in last.items()}
            if last
            else None,
        )

    def _shard_page(
        self,
        status: Status,
        window: TimeWindow,
        limit: int,
        key_prefix: str | None,
        start_key: Mapping[str, str] | None,
    ) -> Page:
        def query(request: QueryInputTypeDef) -> Mapping[str, Any]:
            with calling(self.resource):
                return self._client.query(**request)

        page = status_index.status_page(
            query,
            self.get_many,
            table=self._table,
            index=self._status_index,
            status=status,
            window=(window.since, window.until),
            limit=limit,
            key_prefix=key_prefix,
            start_key=start_key,
        )
        return Page(page.records, page.last_key, page.entries)

    def count_by_status(self, window: TimeWindow) -> dict[str, int]:
        """Records of each status in ``window``: a COUNT query per status (layout 1), or one
        pass over the shards reading the items (layout 2's index files every status alike)."""
        if self.sharded:

            def query(request: QueryInputTypeDef) -> Mapping[str, Any]:
                with calling(self.resource):
                    return self._client.query(**request)

            counted = status_index.count_by_status(
                query,
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
                response = self._client.query(**query)
            total += response.get("Count", 0)
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
