"""Data access for the results table: the only module that issues DynamoDB writes.

Every write is conditional, which is what makes the pipeline idempotent under at-least-once
delivery:

* ``claim`` creates the ``PENDING`` item of an object version, or takes over a claim whose
  lease has expired (a crashed ingest attempt). A live claim or any later status is reported,
  never overwritten.
* ``mark_submitted`` / ``mark_failed`` move *our own* claim on (the claim token must match).
  If a result already arrived, the ingest fields are back-filled without touching the status.
* ``record_outcome`` applies a terminal notification if no newer one (by ``completed_at``,
  SageMaker's ``eventTime``) is stored: duplicates and older events change nothing.

The status index's keys (``status_shard``, ``status_time``) say where a record is filed: the
claim (or whichever write creates the item) files it under ``OPEN#<shard>`` at its time,
``mark_submitted`` leaves them as they are, and an outcome moves them to
``<COMPLETED|FAILED>#<shard>`` at the outcome's time (the index's delete plus put: bench/cost.py).
The same outcome moves a record the previous release filed under its bare ``<shard>``.
Only ``review_later`` (the reconciler, for such records) moves ``status_time`` alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common.backoff import BATCH_RETRY
from lambdas.common.contract import (
    PARTITION_KEY,
    STATUS_SHARD_ATTRIBUTE,
    STATUS_TIME_ATTRIBUTE,
    TTL_ATTRIBUTE,
    status_shard,
)
from lambdas.common.items import (
    DESCRIPTIVE_FIELDS,
    OUTCOME_FIELDS,
    UpdateBuilder,
    encode,
    record_from_item,
)
from lambdas.common.reasons import readable_reason
from lambdas.common.records import FailureStage, InferenceRecord, Status

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailedException"
BATCH_GET_MAX_KEYS = 100  # BatchGetItem's limit per call
# DynamoDB's errors that the developer guide's "Error handling" says may succeed on a retry
# (throttling, and a transaction holding the item); any 5xx is the service's own fault.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TransactionConflictException",
        "InternalServerError",
        "ServiceUnavailable",
    }
)


class ClaimWriteError(Exception):
    """A write to one's own claim failed for a transient reason (the table throttled past the
    SDK's retries, failing with a 5xx, unreachable): it may succeed if tried again. A permanent
    error (a missing table, denied access, a rejected request) propagates as the SDK raised it."""


def is_transient(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in TRANSIENT_ERROR_CODES or status >= 500


class ClaimOutcome(StrEnum):
    CLAIMED = "CLAIMED"  # new item, ours
    TAKEN_OVER = "TAKEN_OVER"  # an expired claim of a crashed attempt, now ours
    IN_PROGRESS = "IN_PROGRESS"  # another attempt holds a live claim: retry later
    ALREADY_DONE = "ALREADY_DONE"  # submitted or terminal: a duplicate delivery


@dataclass(frozen=True)
class OutcomeGuard:
    """A record as last read: ``record_outcome`` then writes only if it is still unchanged
    (the reconciler's optimistic lock, so it never overwrites what arrived since it looked)."""

    status: Status
    updated_at: str


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    existing: InferenceRecord | None = None

    @property
    def owned(self) -> bool:
        return self.outcome in (ClaimOutcome.CLAIMED, ClaimOutcome.TAKEN_OVER)


def batch_get_items(
    client: DynamoDBClient, table: str, ids: Sequence[str], *, consistent: bool
) -> Iterator[dict[str, Any]]:
    """The items of ``ids`` (missing ones left out), read 100 keys a call; throttled keys come
    back unprocessed and are asked for again after a pause, as the SDK's own retries would.
    SDK errors propagate: each caller translates them."""
    for start in range(0, len(ids), BATCH_GET_MAX_KEYS):
        keys: list[Any] = [
            {PARTITION_KEY: {"S": i}} for i in ids[start : start + BATCH_GET_MAX_KEYS]
        ]
        attempt = 0
        while keys:
            response = client.batch_get_item(
                RequestItems={table: {"Keys": keys, "ConsistentRead": consistent}}
            )
            for item in response.get("Responses", {}).get(table) or []:
                yield dict(item)
            unprocessed = response.get("UnprocessedKeys", {}).get(table)
            keys = list(unprocessed["Keys"]) if unprocessed else []
            if keys:
                attempt += 1
                time.sleep(BATCH_RETRY.ceiling(attempt))


def _status_keys(inference_id: str, moment: str | None) -> dict[str, AttributeValueTypeDef]:
    """The status index's key attributes of a new item claimed at ``moment``."""
    keys: dict[str, AttributeValueTypeDef] = {
        STATUS_SHARD_ATTRIBUTE: {"S": status_shard(inference_id, Status.PENDING)}
    }
    if moment:
        keys[STATUS_TIME_ATTRIBUTE] = {"S": moment}
    return keys


def _set_times(update: UpdateBuilder, record: InferenceRecord, values: dict[str, Any]) -> None:
    """An outcome's ``updated_at`` and TTL, and its status-index keys (``_file_outcome``)."""
    for name in ("updated_at", TTL_ATTRIBUTE):
        if name in values:
            update.set(name, values[name])
    _file_outcome(update, record)


def _file_outcome(update: UpdateBuilder, record: InferenceRecord) -> None:
    """A terminal write files the record under its class at the time of that write, so the
    listings of COMPLETED and FAILED find it there, newest outcome first."""
    update.set(STATUS_SHARD_ATTRIBUTE, status_shard(record.inference_id, str(record.status)))
    moment = record.updated_at or record.completed_at
    if moment:
        update.set(STATUS_TIME_ATTRIBUTE, moment)


class RecordStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get(self, inference_id: str) -> InferenceRecord | None:
        response = self._client.get_item(
            TableName=self._table,
            Key={PARTITION_KEY: {"S": inference_id}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return record_from_item(item) if item else None

    def claim(self, record: InferenceRecord, *, token: str, lease_until: int, now: int) -> Claim:
        """Claim an object version for submission (``record.status`` must be ``PENDING``).

        ``lease_until`` and ``now`` are epoch seconds; a claim whose lease has passed belongs
        to an attempt that died, and may be taken over.
        """
        if record.status != Status.PENDING:
            raise ValueError("a claim is a PENDING record")
        item = {name: encode(value) for name, value in record.attributes().items()}
        item.update(_status_keys(record.inference_id, record.created_at))
        item["claim_token"] = {"S": token}
        item["claim_expires_at"] = {"N": str(lease_until)}
        try:
            response = self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=(
                    f"attribute_not_exists({PARTITION_KEY}) OR "
                    "(#status = :pending AND claim_expires_at < :now)"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":pending": {"S": Status.PENDING.value},
                    ":now": {"N": str(now)},
                },
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != CONDITIONAL_CHECK_FAILED:
                raise
            old_item: dict[str, Any] | None = getattr(error, "response", {}).get("Item")
            existing = record_from_item(old_item) if old_item else self.get(record.inference_id)
            if existing is None:  # deleted between the write and the read: try again later
                return Claim(ClaimOutcome.IN_PROGRESS)
            if existing.status == Status.PENDING:
                return Claim(ClaimOutcome.IN_PROGRESS, existing)
            return Claim(ClaimOutcome.ALREADY_DONE, existing)
        previous = response.get("Attributes")
        if previous:
            return Claim(ClaimOutcome.TAKEN_OVER, record_from_item(previous))
        return Claim(ClaimOutcome.CLAIMED)

    def mark_submitted(self, record: InferenceRecord, *, token: str) -> bool:
        """``PENDING -> SUBMITTED`` for our claim. Returns False when a result got there first,
        in which case only the ingest fields the result could not know are filled in."""
        update = UpdateBuilder()
        for name, value in record.attributes().items():
            if name not in (PARTITION_KEY, "status"):
                update.set(name, value)
        update.set("status", Status.SUBMITTED.value)
        return self._settle_claim(record, update, token)

    def mark_failed(
        self, record: InferenceRecord, *, token: str, reason: str, failed_at: str
    ) -> bool:
        """``PENDING -> FAILED`` at ingest for our claim. False when a result got there first."""
        values = record.attributes() | {
            "status": Status.FAILED.value,
            "failure_reason": readable_reason(reason),
            "failure_stage": FailureStage.INGEST.value,
            "completed_at": failed_at,
            "updated_at": failed_at,
        }
        update = UpdateBuilder()
        for name, value in values.items():
            if name != PARTITION_KEY:
                update.set(name, value)
        _file_outcome(update, record.model_copy(update=values))
        return self._settle_claim(record, update, token)

    def record_outcome(
        self, record: InferenceRecord, *, guard: OutcomeGuard | None = None
    ) -> InferenceRecord | None:
        """Apply a terminal outcome unless an equal or newer one is stored.

        Returns the stored record after the write, or None when the outcome was a duplicate or
        older than what is stored (nothing changed). With ``guard``, also None when the stored
        record's status or ``updated_at`` differ from the guard's.
        """
        if record.status not in (Status.COMPLETED, Status.FAILED) or not record.completed_at:
            raise ValueError("an outcome is a COMPLETED or FAILED record with completed_at")
        values = record.attributes()
        update = UpdateBuilder()
        update.set("status", values["status"])
        for name in OUTCOME_FIELDS:
            if name in values:
                update.set(name, values[name])
            else:
                update.remove(name)
        for name in DESCRIPTIVE_FIELDS:
            if name in ("output_location", "failure_location") and name in values:
                update.set(name, values[name])
            elif name in values:
                update.set_if_absent(name, values[name])
        _set_times(update, record, values)
        update.remove("claim_token")
        update.remove("claim_expires_at")
        condition = "(attribute_not_exists(#completed_at) OR #completed_at < :completed_at)"
        if guard is not None:
            condition += f" AND {update.name('status')} = :guard_status"
            condition += f" AND {update.name('updated_at')} = :guard_updated_at"
            update.values[":guard_status"] = encode(guard.status.value)
            update.values[":guard_updated_at"] = encode(guard.updated_at)
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={PARTITION_KEY: {"S": record.inference_id}},
                UpdateExpression=update.expression(),
                ConditionExpression=condition,
                ExpressionAttributeNames=update.names,
                ExpressionAttributeValues=update.values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == CONDITIONAL_CHECK_FAILED:
                return None
            raise
        return record_from_item(response["Attributes"])

    def review_later(self, inference_id: str, guard: OutcomeGuard, review_time: str) -> bool:
        """Moves the record's ``status_time`` to ``review_time`` (the reconciler found it open
        but not yet overdue), if the record is still as read. False when it changed."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={PARTITION_KEY: {"S": inference_id}},
                UpdateExpression="SET #time = :time",
                ConditionExpression="#status = :status AND #updated_at = :updated_at",
                ExpressionAttributeNames={
                    "#time": STATUS_TIME_ATTRIBUTE,
                    "#status": "status",
                    "#updated_at": "updated_at",
                },
                ExpressionAttributeValues={
                    ":time": {"S": review_time},
                    ":status": {"S": guard.status.value},
                    ":updated_at": {"S": guard.updated_at},
                },
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == CONDITIONAL_CHECK_FAILED:
                return False
            raise
        return True

    def _settle_claim(self, record: InferenceRecord, update: UpdateBuilder, token: str) -> bool:
        """The shared tail of ``mark_submitted`` and ``mark_failed``: the claim is released with
        the write; if a result got there first, only the ingest fields are filled in."""
        update.remove("claim_token")
        update.remove("claim_expires_at")
        if self._update_owned(record.inference_id, update, token):
            return True
        self._backfill(record)
        return False

    def _update_owned(self, inference_id: str, update: UpdateBuilder, token: str) -> bool:
        update.values[":token"] = {"S": token}
        update.values[":pending"] = {"S": Status.PENDING.value}
        update.name("claim_token")
        update.name("status")
        try:
            self._client.update_item(
                TableName=self._table,
                Key={PARTITION_KEY: {"S": inference_id}},
                UpdateExpression=update.expression(),
                ConditionExpression="#claim_token = :token AND #status = :pending",
                ExpressionAttributeNames=update.names,
                ExpressionAttributeValues=update.values,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == CONDITIONAL_CHECK_FAILED:
                return False
            if not is_transient(error):
                raise
            raise ClaimWriteError(f"the write to our claim failed: {error}") from error
        except BotoCoreError as error:  # no answer: a retry is safe, its condition refuses a repeat
            raise ClaimWriteError(f"the write to our claim failed: {error}") from error
        return True

    def _backfill(self, record: InferenceRecord) -> None:
        values = record.attributes()
        update = UpdateBuilder()
        for name in DESCRIPTIVE_FIELDS:
            if name in values:
                update.set_if_absent(name, values[name])
        if not update.sets:
            return
        try:
            self._client.update_item(
                TableName=self._table,
                Key={PARTITION_KEY: {"S": record.inference_id}},
                UpdateExpression=update.expression(),
                ConditionExpression=f"attribute_exists({PARTITION_KEY})",
                ExpressionAttributeNames=update.names,
                ExpressionAttributeValues=update.values,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != CONDITIONAL_CHECK_FAILED:
                raise
