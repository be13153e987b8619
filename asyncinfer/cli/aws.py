"""Data access for the CLI: the clients, the results table and S3 objects.

With ``messaging`` (SQS and Lambda) and ``target`` (CloudFormation), the only modules of the CLI
that call boto3. Every call runs inside ``calling(resource)`` so that an error names what it
was about.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from asyncinfer.cli.errors import AwsCallError
from asyncinfer.cli.target import Target
from lambdas.common.contract import INPUT_LOCATION_INDEX, STATUS_INDEX, StackOutput
from lambdas.common.records import InferenceRecord, Status
from lambdas.common.s3uri import split_s3_uri
from lambdas.common.store import RecordStore, record_from_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, QueryInputTypeDef
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef
    from mypy_boto3_sqs.client import SQSClient

BATCH_GET_MAX_KEYS = 100
MULTIPART_THRESHOLD_BYTES = 64 * 1024 * 1024
MULTIPART_PART_BYTES = 16 * 1024 * 1024
DOWNLOAD_CHUNK_BYTES = 1024 * 1024


@contextmanager
def calling(resource: str) -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise AwsCallError(resource, error) from error


class AwsClients:
    """One boto3 session and its clients for a target, created on first use."""

    def __init__(self, target: Target, *, max_pool_connections: int = 10) -> None:
        self._target = target
        self._config = Config(
            retries={"max_attempts": 8, "mode": "adaptive"},
            max_pool_connections=max_pool_connections,
            connect_timeout=5,
            read_timeout=30,
        )

    @cached_property
    def _session(self) -> Any:
        return self._target.session()

    def _client(self, service: str) -> Any:
        return self._session.client(
            service,
            region_name=self._target.region,
            endpoint_url=self._target.endpoint_url,
            config=self._config,
        )

    @cached_property
    def s3(self) -> S3Client:
        client: S3Client = self._client("s3")
        return client

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        client: DynamoDBClient = self._client("dynamodb")
        return client

    @cached_property
    def sqs(self) -> SQSClient:
        client: SQSClient = self._client("sqs")
        return client

    @cached_property
    def awslambda(self) -> Any:  # no mypy_boto3_lambda in this environment
        return self._client("lambda")


# ---------------------------------------------------------------------------- results table


@dataclass(frozen=True)
class TimeWindow:
    """``updated_at`` bounds as the table stores them (``format_timestamp`` strings)."""

    since: str | None = None
    until: str | None = None


@dataclass(frozen=True)
class Page:
    records: list[InferenceRecord]
    last_key: dict[str, str] | None  # the GSI's LastEvaluatedKey, as plain strings


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
        for start in range(0, len(unique), BATCH_GET_MAX_KEYS):
            keys: list[Mapping[str, AttributeValueTypeDef]] = [
                {"inference_id": {"S": inference_id}}
                for inference_id in unique[start : start + BATCH_GET_MAX_KEYS]
            ]
            attempt = 0
            while keys:
                with calling(self.resource):
                    response = self._client.batch_get_item(
                        RequestItems={self._table: {"Keys": keys, "ConsistentRead": True}}
                    )
                for item in response.get("Responses", {}).get(self._table) or []:
                    try:
                        record = record_from_item(dict(item))
                    except ValidationError:
                        # A write seen half-done (moto applies updates non-atomically): the
                        # next poll reads it whole.
                        continue
                    found[record.inference_id] = record
                unprocessed = response.get("UnprocessedKeys", {}).get(self._table)
                keys = list(unprocessed["Keys"]) if unprocessed else []
                if keys:
                    attempt += 1
                    time.sleep(min(0.05 * 2**attempt, 1.0))
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
            records.extend(record_from_item(dict(item)) for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                return records
            start_key = dict(last)

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
        """One Query page of the ``by_status`` index, newest ``updated_at`` first."""
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

    def count_status(self, status: Status, window: TimeWindow) -> int:
        query = self._status_query(status, window, key_prefix=None)
        query["Select"] = "COUNT"
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


# ------------------------------------------------------------------------------------ S3


@dataclass(frozen=True)
class UploadedObject:
    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    size: int


class Objects:
    """Uploads to the input bucket and downloads of output and failure objects."""

    def __init__(
        self,
        client: S3Client,
        *,
        multipart_threshold: int = MULTIPART_THRESHOLD_BYTES,
        part_size: int = MULTIPART_PART_BYTES,
    ) -> None:
        self._client = client
        self._multipart_threshold = multipart_threshold
        self._part_size = part_size

    def upload(
        self,
        bucket: str,
        key: str,
        path: Path,
        *,
        content_type: str | None,
        metadata: Mapping[str, str],
    ) -> UploadedObject:
        """One object per file; the response's VersionId and ETag name the new version.

        Large files go up in parts (the managed ``upload_file`` returns no response, and the
        version id is what the inference id is made of).
        """
        size = path.stat().st_size
        extra: dict[str, Any] = {"Metadata": dict(metadata)}
        if content_type:
            extra["ContentType"] = content_type
        with calling(f"bucket {bucket}"):
            if size > self._multipart_threshold:
                version_id, etag = self._upload_in_parts(bucket, key, path, extra)
            else:
                with path.open("rb") as body:
                    response = self._client.put_object(Bucket=bucket, Key=key, Body=body, **extra)
                version_id, etag = response.get("VersionId"), response.get("ETag")
        return UploadedObject(bucket, key, version_id, etag, size)

    def _upload_in_parts(
        self, bucket: str, key: str, path: Path, extra: Mapping[str, Any]
    ) -> tuple[str | None, str | None]:
        upload_id = self._client.create_multipart_upload(Bucket=bucket, Key=key, **extra)[
            "UploadId"
        ]
        try:
            parts: list[CompletedPartTypeDef] = []
            with path.open("rb") as source:
                number = 1
                while chunk := source.read(self._part_size):
                    part = self._client.upload_part(
                        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
                    )
                    parts.append({"ETag": part["ETag"], "PartNumber": number})
                    number += 1
            response = self._client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            self._client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise
        return response.get("VersionId"), response.get("ETag")

    def download(self, location: str, sink: IO[bytes]) -> int:
        bucket, key = split_s3_uri(location)
        written = 0
        with calling(f"object {location}"):
            body = self._client.get_object(Bucket=bucket, Key=key)["Body"]
            for chunk in body.iter_chunks(DOWNLOAD_CHUNK_BYTES):
                sink.write(chunk)
                written += len(chunk)
        return written
