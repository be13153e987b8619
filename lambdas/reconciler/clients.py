"""Data access for the reconciler: its AWS clients, the status index and the endpoint's output
objects.

The only module of the function that calls the AWS SDK (botocore) besides the shared
``RecordStore`` and ``S3OutputReader`` (``lambdas.common.outputs``). SDK errors become
``ReconcilerAwsError``.
The logic depends on the ``OverdueIndex`` and ``ObjectProbe`` protocols, so tests inject fakes.

Existence is read with HeadObject. The role may ``s3:ListBucket`` the output bucket, so S3
answers 404 for a missing key (without it, 403: DESIGN "IAM and deploy facts"); a 403 is then a
real denial and is reported, never taken for "no object".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common.clock import format_timestamp
from lambdas.common.contract import RECONCILER_STATE_KEY, STATUS_SHARD_INDEX
from lambdas.common.items import record_from_item
from lambdas.common.records import InferenceRecord, Status
from lambdas.common.s3uri import split_s3_location
from lambdas.reconciler.shards import ShardQueryError, get_many, shard_page, window_page

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        PutItemInputTypeDef,
        QueryInputTypeDef,
    )
    from mypy_boto3_s3.client import S3Client

_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


class ReconcilerAwsError(Exception):
    """A call the reconciler needs failed (throttled, denied, unavailable)."""


@dataclass(frozen=True)
class FoundObject:
    location: str
    last_modified: datetime
    content_type: str | None
    size: int


@dataclass(frozen=True)
class RecordPage:
    records: list[InferenceRecord]
    next_key: dict[str, AttributeValueTypeDef] | None


class OverdueIndex(Protocol):
    def page(
        self,
        status: Status,
        cutoff: datetime,
        limit: int,
        start_key: dict[str, AttributeValueTypeDef] | None,
    ) -> RecordPage: ...


class ShardWindow(Protocol):
    """The sharded status index read by time (``StatusIndex`` on AWS)."""

    def ids(
        self,
        shard: str,
        window: tuple[str | None, str],
        start_key: dict[str, AttributeValueTypeDef] | None,
    ) -> tuple[list[str], dict[str, AttributeValueTypeDef] | None]:
        """Ids of one page of ``shard`` with ``lower < status_time <= upper``, oldest first."""
        ...

    def records(self, ids: list[str]) -> dict[str, InferenceRecord]:
        """The items of ``ids`` that exist, by id."""
        ...


class ReviewState(Protocol):
    """How far the review has gone (``StateTable`` on AWS)."""

    def load(self) -> str | None:
        """The ``status_time`` up to which every shard is reviewed; None before the first."""
        ...

    def save(self, reviewed_until: str, previous: str | None) -> bool:
        """Moves it on from ``previous``; False when another run moved it meanwhile."""
        ...


class ObjectProbe(Protocol):
    def find(self, location: str) -> FoundObject | None:
        """The object at ``location``, None when there is none; raises ``ReconcilerAwsError``."""
        ...

    def read_text(self, location: str, max_bytes: int) -> str:
        """At most ``max_bytes`` of the object, as text; raises ``ReconcilerAwsError``."""
        ...


class StatusIndex:
    """Queries of the status index: layout 1's ``by_status`` (partition ``status``, sort
    ``updated_at``, ALL), or layout 2's ``by_status_shard`` (``lambdas/reconciler/shards.py``),
    chosen by the index name the stack configures; and the previous release's write-once
    shards by time with the items they name, for the review (eventually consistent reads: it
    reads records claimed long before, and every write it makes is guarded)."""

    def __init__(self, client: DynamoDBClient, table_name: str, index_name: str) -> None:
        self._client = client
        self._table = table_name
        self._index = index_name

    def page(
        self,
        status: Status,
        cutoff: datetime,
        limit: int,
        start_key: dict[str, AttributeValueTypeDef] | None,
    ) -> RecordPage:
        """Oldest first, only records last written before ``cutoff`` (a key condition: nothing
        newer is read or paid for), at most ``limit`` items."""
        if self._index == STATUS_SHARD_INDEX:
            try:
                records, next_key = shard_page(
                    self._client, self._table, self._index, (status, cutoff, limit, start_key)
                )
            except ShardQueryError as error:
                raise ReconcilerAwsError(str(error)) from error
            return RecordPage(records=records, next_key=next_key)
        query: QueryInputTypeDef = {
            "TableName": self._table,
            "IndexName": self._index,
            "KeyConditionExpression": "#status = :status AND #updated_at < :cutoff",
            "ExpressionAttributeNames": {"#status": "status", "#updated_at": "updated_at"},
            "ExpressionAttributeValues": {
                ":status": {"S": status.value},
                ":cutoff": {"S": format_timestamp(cutoff)},
            },
            "ScanIndexForward": True,
            "Limit": limit,
        }
        if start_key:
            query["ExclusiveStartKey"] = start_key
        try:
            response = self._client.query(**query)
        except (ClientError, BotoCoreError) as error:
            raise ReconcilerAwsError(f"query of {self._index} failed: {error}") from error
        last = response.get("LastEvaluatedKey")
        return RecordPage(
            records=[record_from_item(dict(item)) for item in response.get("Items", [])],
            next_key=dict(last) if last else None,
        )

    # --- layout 2's review (ShardWindow) --------------------------------------------------

    def ids(
        self,
        shard: str,
        window: tuple[str | None, str],
        start_key: dict[str, AttributeValueTypeDef] | None,
    ) -> tuple[list[str], dict[str, AttributeValueTypeDef] | None]:
        try:
            return window_page(self._client, (self._table, self._index), shard, window, start_key)
        except ShardQueryError as error:
            raise ReconcilerAwsError(str(error)) from error

    def records(self, ids: list[str]) -> dict[str, InferenceRecord]:
        try:
            return get_many(self._client, self._table, ids, consistent=False)
        except ShardQueryError as error:
            raise ReconcilerAwsError(str(error)) from error


REVIEW_STATE_NAME = "status-index-review"
REVIEWED_UNTIL = "reviewed_until"


class StateTable:
    """One item of the reconciler's own state table: ``reviewed_until`` (a ``status_time``).

    Its own table, not an item of the results table, so that every item there is a record."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def load(self) -> str | None:
        try:
            response = self._client.get_item(
                TableName=self._table,
                Key={RECONCILER_STATE_KEY: {"S": REVIEW_STATE_NAME}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as error:
            raise ReconcilerAwsError(f"reading {self._table} failed: {error}") from error
        value = response.get("Item", {}).get(REVIEWED_UNTIL, {}).get("S")
        return str(value) if value else None

    def save(self, reviewed_until: str, previous: str | None) -> bool:
        request: PutItemInputTypeDef = {
            "TableName": self._table,
            "Item": {
                RECONCILER_STATE_KEY: {"S": REVIEW_STATE_NAME},
                REVIEWED_UNTIL: {"S": reviewed_until},
            },
            "ConditionExpression": "attribute_not_exists(#until)",
            "ExpressionAttributeNames": {"#until": REVIEWED_UNTIL},
        }
        if previous is not None:
            request["ConditionExpression"] = "#until = :previous"
            request["ExpressionAttributeValues"] = {":previous": {"S": previous}}
        try:
            self._client.put_item(**request)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise ReconcilerAwsError(f"writing {self._table} failed: {error}") from error
        except BotoCoreError as error:
            raise ReconcilerAwsError(f"writing {self._table} failed: {error}") from error
        return True


class S3ObjectProbe:
    def __init__(self, client: S3Client) -> None:
        self._client = client

    def find(self, location: str) -> FoundObject | None:
        bucket, key = _parts(location)
        try:
            head = self._client.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in _MISSING_CODES:
                return None
            raise ReconcilerAwsError(f"cannot check {location}: {error}") from error
        except BotoCoreError as error:
            raise ReconcilerAwsError(f"cannot check {location}: {error}") from error
        return FoundObject(
            location=location,
            last_modified=head["LastModified"],
            content_type=head.get("ContentType"),
            size=head.get("ContentLength", 0),
        )

    def read_text(self, location: str, max_bytes: int) -> str:
        bucket, key = _parts(location)
        try:
            response = self._client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{max_bytes}")
            with response["Body"] as stream:
                body = stream.read(max_bytes)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "InvalidRange":
                return ""  # an empty object
            raise ReconcilerAwsError(f"cannot read {location}: {error}") from error
        except BotoCoreError as error:
            raise ReconcilerAwsError(f"cannot read {location}: {error}") from error
        return body.decode("utf-8", errors="replace")


def _parts(location: str) -> tuple[str, str]:
    parts = split_s3_location(location)
    if parts is None:
        raise ReconcilerAwsError(f"{location!r} is not an s3://bucket/key location")
    return parts
