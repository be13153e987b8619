"""Data access of the jobs function: the jobs table, the results table and S3 (the only boto3).

The jobs table (pk, sk) holds three kinds of item (lambdas/jobs/logic.py says why):

* the header: ``pk=JOB#<name>``, ``sk=JOB``, with ``listing=JOB`` and ``created_at`` (the
  sparse ``by_created`` index lists headers only);
* sixteen counter shards: ``pk=JOB#<name>#SHARD#<nn>``, ``sk=SHARD``, ``expected`` and ``done``
  -- each its own partition key, so the outcomes of one job spread over sixteen partitions;
* members: ``pk=ID#<inference id>``, ``sk=JOB#<name>``, ``counted`` once counted -- an
  outcome finds its jobs with one Query of its id.

SDK errors become ``JobsAwsError`` (the message is retried); "no such object" is ``None``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common.backoff import BATCH_RETRY, Backoff
from lambdas.common.contract import (
    JOBS_LIST_INDEX,
    JOBS_LIST_KEY,
    JOBS_LIST_VALUE,
    STATUS_SHARDS,
)
from lambdas.common.items import encode, record_from_item
from lambdas.common.records import InferenceRecord
from lambdas.common.sessions import function_session
from lambdas.common.store import BATCH_GET_MAX_KEYS, batch_get_items
from lambdas.jobs.items import (
    PK,
    count_items,
    header_from_item,
    header_key,
    header_values,
    member_key,
    shard_key,
    shard_settled_item,
)
from lambdas.jobs.model import OPEN_STATUSES, JobHeader, JobStatus, Member
from lambdas.jobs.ports import CurrentVersion, JobsAwsError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

COUNT_ATTEMPTS = 8
# transactions that conflicted on a shard item try again after a jittered pause (0.04 s ...)
CONFLICT_RETRY = Backoff(base_seconds=0.02, cap_seconds=1.0)
PART_BYTES = 8 * 1024 * 1024  # multipart parts (S3's minimum is 5 MiB but for the last)
_MISSING = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})


CLIENT_CONFIG = Config(retries={"mode": "standard"}, max_pool_connections=64)


def create_clients() -> tuple[DynamoDBClient, S3Client]:
    """botocore clients, once per container (``AWS_ENDPOINT_URL*`` is honoured: local
    mode). The pool fits the threads that resolve entries and write members."""
    session = function_session(("dynamodb", "s3"))
    return (
        cast("DynamoDBClient", session.create_client("dynamodb", config=CLIENT_CONFIG)),
        cast("S3Client", session.create_client("s3", config=CLIENT_CONFIG)),
    )


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class DynamoJobLedger:
    def __init__(self, client: DynamoDBClient, table: str, *, concurrency: int = 32) -> None:
        self._client = client
        self._table = table
        self._concurrency = concurrency

    def create(self, header: JobHeader) -> JobHeader:
        item = {
            **header_key(header.job_name),
            JOBS_LIST_KEY: {"S": JOBS_LIST_VALUE},
            **{name: encode(value) for name, value in header_values(header).items()},
        }
        self._put_if_absent(item, f"creating job {header.job_name}")
        stored = self.header(header.job_name)
        if stored is None:
            raise JobsAwsError(f"job {header.job_name} not found after its creation")
        return stored

    def header(self, name: str) -> JobHeader | None:
        item = self._call(
            "reading a job",
            lambda: self._client.get_item(
                TableName=self._table, Key=header_key(name), ConsistentRead=True
            ),
        ).get("Item")
        return header_from_item(dict(item)) if item else None

    def transition(
        self, name: str, expected: JobStatus, new: JobStatus, values: dict[str, str | int]
    ) -> bool:
        names = {"#status": "status", **{f"#a{i}": k for i, k in enumerate(values)}}
        attribute_values = {
            ":expected": {"S": expected.value},
            ":new": {"S": new.value},
            **{f":v{i}": encode(v) for i, v in enumerate(values.values())},
        }
        assignments = ["#status = :new", *(f"#a{i} = :v{i}" for i in range(len(values)))]
        try:
            self._client.update_item(
                TableName=self._table,
                Key=header_key(name),
                UpdateExpression="SET " + ", ".join(assignments),
                ConditionExpression="#status = :expected",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=attribute_values,
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return False
            raise JobsAwsError(f"job {name} {expected} -> {new}: {error}") from error
        except BotoCoreError as error:
            raise JobsAwsError(f"job {name} {expected} -> {new}: {error}") from error
        return True

    def open_jobs(self) -> list[JobHeader]:
        headers: list[JobHeader] = []
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": JOBS_LIST_INDEX,
            "KeyConditionExpression": "#listing = :listing",
            "ExpressionAttributeNames": {"#listing": JOBS_LIST_KEY},
            "ExpressionAttributeValues": {":listing": {"S": JOBS_LIST_VALUE}},
        }
        while True:
            page = self._call("listing jobs", lambda: self._client.query(**arguments))
            for item in page.get("Items", []):
                header = header_from_item(dict(item))
                if header.status in OPEN_STATUSES:
                    headers.append(header)
            if "LastEvaluatedKey" not in page:
                return headers
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def add_members(self, name: str, expected: dict[int, int], ids: list[str]) -> None:
        for shard, count in expected.items():
            self._put_if_absent(
                {**shard_key(name, shard), "expected": {"N": str(count)}, "done": {"N": "0"}},
                f"writing shard {shard} of job {name}",
            )
        items = [{**member_key(name, i), "job_name": {"S": name}} for i in ids]
        with ThreadPoolExecutor(self._concurrency) as pool:
            list(
                pool.map(lambda item: self._put_if_absent(item, f"writing {item[PK]['S']}"), items)
            )

    def _put_if_absent(self, item: dict[str, Any], doing: str) -> None:
        """Put ``item`` unless its key exists (a duplicate delivery's write is no error)."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": PK},
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise JobsAwsError(f"{doing}: {error}") from error
        except BotoCoreError as error:
            raise JobsAwsError(f"{doing}: {error}") from error

    def members_of(self, inference_id: str) -> list[Member]:
        page = self._call(
            "finding an id's jobs",
            lambda: self._client.query(
                TableName=self._table,
                KeyConditionExpression="#pk = :pk",
                ExpressionAttributeNames={"#pk": PK},
                ExpressionAttributeValues={":pk": {"S": f"ID#{inference_id}"}},
                ConsistentRead=True,
            ),
        )
        return [
            Member(
                job_name=item["job_name"]["S"],
                inference_id=inference_id,
                counted=bool(item.get("counted", {}).get("BOOL")),
            )
            for item in page.get("Items", [])
        ]

    def count(self, member: Member) -> bool:
        """Transactions on one shard item conflict while another is in flight on it
        ("TransactionConflict", DynamoDB developer guide, "Transaction conflict handling");
        the SDK does not retry them, so this does, with jittered backoff, before giving the
        message back to its queue."""
        for attempt in range(1, COUNT_ATTEMPTS + 1):
            try:
                self._client.transact_write_items(TransactItems=count_items(self._table, member))
            except ClientError as error:
                reasons = {
                    str(reason.get("Code"))
                    for reason in error.response.get("CancellationReasons", [])
                }
                if "ConditionalCheckFailed" in reasons:
                    return False
                if "TransactionConflict" in reasons and attempt < COUNT_ATTEMPTS:
                    time.sleep(CONFLICT_RETRY.delay(attempt))
                    continue
                raise JobsAwsError(f"counting {member.inference_id}: {error}") from error
            except BotoCoreError as error:
                raise JobsAwsError(f"counting {member.inference_id}: {error}") from error
            return True
        raise AssertionError("unreachable: the last attempt returns or raises")

    def shard_settled(self, name: str, shard: int) -> bool:
        item = self._call(
            "reading a shard",
            lambda: self._client.get_item(
                TableName=self._table, Key=shard_key(name, shard), ConsistentRead=True
            ),
        ).get("Item")
        return item is None or shard_settled_item(dict(item))

    def all_settled(self, name: str) -> bool:
        keys = [shard_key(name, shard) for shard in range(STATUS_SHARDS)]
        return all(shard_settled_item(item) for item in self._get_many(keys))

    def uncounted(self, name: str, ids: list[str]) -> list[str]:
        counted = set()
        for start in range(0, len(ids), BATCH_GET_MAX_KEYS):
            keys = [member_key(name, i) for i in ids[start : start + BATCH_GET_MAX_KEYS]]
            for item in self._get_many(keys):
                if item.get("counted", {}).get("BOOL"):
                    counted.add(item[PK]["S"].removeprefix("ID#"))
        return [i for i in ids if i not in counted]

    def _get_many(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return batch_get(self._client, self._table, keys)

    def _call(self, what: str, call: Any) -> Any:
        try:
            return call()
        except (ClientError, BotoCoreError) as error:
            raise JobsAwsError(f"{what}: {error}") from error


def batch_get(
    client: DynamoDBClient, table: str, keys: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """BatchGetItem of the jobs table's (pk, sk) keys, strongly consistent, unprocessed keys
    asked for again (``store.batch_get_items`` reads the results table's keys the same way)."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), BATCH_GET_MAX_KEYS):
        pending: list[Any] = keys[start : start + BATCH_GET_MAX_KEYS]
        attempt = 0
        while pending:
            try:
                response = client.batch_get_item(
                    RequestItems={table: {"Keys": pending, "ConsistentRead": True}}
                )
            except (ClientError, BotoCoreError) as error:
                raise JobsAwsError(f"reading {table}: {error}") from error
            found.extend(dict(item) for item in response.get("Responses", {}).get(table, []))
            unprocessed = response.get("UnprocessedKeys", {}).get(table)
            pending = list(unprocessed["Keys"]) if unprocessed else []
            if pending:
                attempt += 1
                time.sleep(BATCH_RETRY.ceiling(attempt))
    return found


class DynamoRecordReader:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def records(self, ids: list[str]) -> dict[str, InferenceRecord]:
        try:
            items = list(batch_get_items(self._client, self._table, ids, consistent=True))
        except (ClientError, BotoCoreError) as error:
            raise JobsAwsError(f"reading records of {self._table}: {error}") from error
        records = (record_from_item(item) for item in items)
        return {record.inference_id: record for record in records}


class S3JobObjects:
    def __init__(self, client: S3Client) -> None:
        self._client = client

    def read(self, bucket: str, key: str, version_id: str | None) -> tuple[bytes, str] | None:
        arguments: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id and version_id != "null":
            arguments["VersionId"] = version_id
        try:
            response = self._client.get_object(**arguments)
            return response["Body"].read(), str(response.get("VersionId") or "null")
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise JobsAwsError(f"reading s3://{bucket}/{key}: {error}") from error
        except BotoCoreError as error:
            raise JobsAwsError(f"reading s3://{bucket}/{key}: {error}") from error

    def current_version(self, bucket: str, key: str) -> CurrentVersion | None:
        try:
            response = self._client.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise JobsAwsError(f"HeadObject s3://{bucket}/{key}: {error}") from error
        except BotoCoreError as error:
            raise JobsAwsError(f"HeadObject s3://{bucket}/{key}: {error}") from error
        etag = response.get("ETag")
        return CurrentVersion(
            version_id=response.get("VersionId"), etag=etag.strip('"') if etag else None
        )

    def read_lines(self, bucket: str, key: str) -> list[str] | None:
        found = self.read(bucket, key, None)
        if found is None:
            return None
        return [line for line in found[0].decode("utf-8").splitlines() if line]

    def write_lines(self, bucket: str, key: str, lines: Iterable[str]) -> None:
        """Parts of ``PART_BYTES`` as the lines come; one PutObject when they fit in one."""
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[CompletedPartTypeDef] = []
        try:
            for line in lines:
                buffer += line.encode("utf-8") + b"\n"
                if len(buffer) >= PART_BYTES:
                    if upload_id is None:
                        upload_id = self._client.create_multipart_upload(
                            Bucket=bucket, Key=key, ContentType="application/x-ndjson"
                        )["UploadId"]
                    parts.append(self._part(bucket, key, upload_id, len(parts) + 1, buffer))
                    buffer = bytearray()
            if upload_id is None:
                self._client.put_object(
                    Bucket=bucket, Key=key, Body=bytes(buffer), ContentType="application/x-ndjson"
                )
                return
            if buffer:
                parts.append(self._part(bucket, key, upload_id, len(parts) + 1, buffer))
            self._client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except (ClientError, BotoCoreError) as error:
            if upload_id is not None:
                self._abort(bucket, key, upload_id)
            raise JobsAwsError(f"writing s3://{bucket}/{key}: {error}") from error

    def _part(
        self, bucket: str, key: str, upload_id: str, number: int, body: bytearray
    ) -> CompletedPartTypeDef:
        response = self._client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=bytes(body)
        )
        return {"PartNumber": number, "ETag": response["ETag"]}

    def _abort(self, bucket: str, key: str, upload_id: str) -> None:
        # best effort: the bucket's lifecycle rule removes incomplete uploads anyway
        with contextlib.suppress(ClientError, BotoCoreError):
            self._client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
