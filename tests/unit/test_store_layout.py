"""The store's writes against layout 2's indexes: the claim files the record under OPEN,
SUBMITTED moves nothing, the outcome moves it to its class at the outcome's time (issue 23),
and the conditions of the exactly-once writes are the same as before the layout changed."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from lambdas.common.contract import STATUS_SHARD_INDEX, STATUS_SHARDS, group_partitions, shard_of
from lambdas.common.records import Status
from lambdas.common.store import OutcomeGuard, RecordStore
from tests.conftest import TABLE_NAME
from tests.unit.test_store import INFERENCE_ID, outcome, pending

SHARD = f"{shard_of(INFERENCE_ID):02d}"
OPEN, COMPLETED, FAILED = (f"{group}#{SHARD}" for group in ("OPEN", "COMPLETED", "FAILED"))
INDEX_KEYS = ("status_shard", "status_time", "input_location", "created_at")


class Recording:
    """Passes calls to the real client and keeps each write request."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.writes: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name not in ("put_item", "update_item"):
            return method

        def recorded(**request: Any) -> Any:
            self.writes.append((name, request))
            return method(**request)

        return recorded


@pytest.fixture
def recording(dynamodb: Any) -> Recording:
    return Recording(dynamodb)


def keys(dynamodb: Any) -> dict[str, str]:
    item = dynamodb.get_item(TableName=TABLE_NAME, Key={"inference_id": {"S": INFERENCE_ID}})
    return {name: item["Item"][name]["S"] for name in INDEX_KEYS if name in item["Item"]}


def test_the_claim_files_the_record_open_and_only_the_outcome_moves_it(
    dynamodb: Any, recording: Recording
) -> None:
    store = RecordStore(recording, TABLE_NAME)  # type: ignore[arg-type]
    assert store.claim(pending(), token="t1", lease_until=200, now=100).owned
    claimed = keys(dynamodb)
    assert claimed == {
        "status_shard": OPEN,
        "status_time": "2026-01-01T00:00:00.000Z",
        "input_location": "s3://in/a.json",
        "created_at": "2026-01-01T00:00:00.000Z",
    }
    submitted = pending(submitted_at="2026-01-01T00:00:01.000Z")
    submitted = submitted.model_copy(update={"updated_at": "2026-01-01T00:00:01.000Z"})
    assert store.mark_submitted(submitted, token="t1")
    assert keys(dynamodb) == claimed  # neither index is written by SUBMITTED
    done = outcome(Status.COMPLETED, "2026-01-01T00:00:09.000Z", result="ok")
    assert store.record_outcome(done) is not None
    assert keys(dynamodb) == claimed | {
        "status_shard": COMPLETED,
        "status_time": "2026-01-01T00:00:09.000Z",
    }
    # the conditions that make the writes exactly-once are those of layout 1, word for word
    conditions = [request["ConditionExpression"] for _, request in recording.writes]
    assert conditions == [
        "attribute_not_exists(inference_id) OR (#status = :pending AND claim_expires_at < :now)",
        "#claim_token = :token AND #status = :pending",
        "(attribute_not_exists(#completed_at) OR #completed_at < :completed_at)",
    ]


def test_a_failure_at_ingest_moves_the_record_to_failed_at_its_time(dynamodb: Any) -> None:
    store = RecordStore(dynamodb, TABLE_NAME)
    assert store.claim(pending(), token="t1", lease_until=200, now=100).owned
    assert store.mark_failed(
        pending(), token="t1", reason="too large", failed_at="2026-01-01T00:00:02.000Z"
    )
    assert keys(dynamodb)["status_shard"] == FAILED
    assert keys(dynamodb)["status_time"] == "2026-01-01T00:00:02.000Z"


def test_a_newer_outcome_moves_the_record_and_an_older_one_does_not(dynamodb: Any) -> None:
    store = RecordStore(dynamodb, TABLE_NAME)
    assert store.record_outcome(outcome(Status.COMPLETED, "2026-01-01T00:00:05.000Z"))
    assert store.record_outcome(outcome(Status.FAILED, "2026-01-01T00:00:04.000Z")) is None
    assert keys(dynamodb)["status_shard"] == COMPLETED
    assert store.record_outcome(outcome(Status.FAILED, "2026-01-01T00:00:06.000Z"))
    assert keys(dynamodb)["status_shard"] == FAILED
    assert keys(dynamodb)["status_time"] == "2026-01-01T00:00:06.000Z"


def test_an_outcome_before_the_claim_files_the_record_at_its_own_time(dynamodb: Any) -> None:
    store = RecordStore(dynamodb, TABLE_NAME)
    assert store.record_outcome(outcome(Status.FAILED, "2026-01-01T00:00:05.000Z")) is not None
    filed = keys(dynamodb)
    assert filed["status_shard"] == FAILED
    assert filed["status_time"] == "2026-01-01T00:00:05.000Z"
    claim = store.claim(pending(), token="t1", lease_until=200, now=100)
    assert not claim.owned  # a terminal record is never claimed again
    assert keys(dynamodb) == filed


@pytest.mark.parametrize("previous", [SHARD, f"OPEN#{SHARD}"])
def test_an_outcome_moves_a_record_of_a_previous_release_to_its_class(
    dynamodb: Any, previous: str
) -> None:
    """The release before filed every record under its bare shard and never moved it (the one
    before that, open records under OPEN#nn): an outcome written now files such a record under
    its class, at the outcome's time."""
    store = RecordStore(dynamodb, TABLE_NAME)
    assert store.claim(pending(), token="t1", lease_until=200, now=100).owned
    dynamodb.update_item(
        TableName=TABLE_NAME,
        Key={"inference_id": {"S": INFERENCE_ID}},
        UpdateExpression="SET status_shard = :legacy",
        ExpressionAttributeValues={":legacy": {"S": previous}},
    )
    assert store.record_outcome(outcome(Status.COMPLETED, "2026-01-01T00:00:09.000Z"))
    assert keys(dynamodb)["status_shard"] == COMPLETED
    assert keys(dynamodb)["status_time"] == "2026-01-01T00:00:09.000Z"


def test_review_later_moves_only_the_time_and_only_if_the_record_is_as_read(
    dynamodb: Any,
) -> None:
    store = RecordStore(dynamodb, TABLE_NAME)
    assert store.claim(pending(), token="t1", lease_until=200, now=100).owned
    record = store.get(INFERENCE_ID)
    assert record is not None
    assert record.updated_at
    stale = OutcomeGuard(Status.SUBMITTED, record.updated_at)
    assert not store.review_later(INFERENCE_ID, stale, "2026-01-20T00:00:00.000Z")
    assert keys(dynamodb)["status_time"] == "2026-01-01T00:00:00.000Z"
    guard = OutcomeGuard(Status.PENDING, record.updated_at)
    assert store.review_later(INFERENCE_ID, guard, "2026-01-20T00:00:00.000Z")
    assert keys(dynamodb)["status_time"] == "2026-01-20T00:00:00.000Z"
    assert store.get(INFERENCE_ID) == record  # nothing else changed


def test_the_claims_spread_the_status_index_over_every_shard(dynamodb: Any) -> None:
    """Each claim files its record under its own id's shard: 320 versions fill all sixteen
    open partitions of ``by_status_shard`` evenly, so no partition takes the write rate of all."""
    partitions = group_partitions(Status.PENDING)
    store = RecordStore(dynamodb, TABLE_NAME)
    files = 320
    for number in range(files):
        location = f"s3://in/{number}.json"
        inference_id = hashlib.sha256(location.encode()).hexdigest()
        claim = pending().model_copy(
            update={"inference_id": inference_id, "input_location": location}
        )
        assert store.claim(claim, token="t", lease_until=200, now=100).owned
    per_partition = {
        partition: len(
            dynamodb.query(
                TableName=TABLE_NAME,
                IndexName=STATUS_SHARD_INDEX,
                KeyConditionExpression="status_shard = :shard",
                ExpressionAttributeValues={":shard": {"S": partition}},
            )["Items"]
        )
        for partition in partitions
    }
    assert len(partitions) == STATUS_SHARDS == 16
    assert sum(per_partition.values()) == files  # every claim is in one of the shards
    mean = files / STATUS_SHARDS
    assert min(per_partition.values()) >= mean / 2, per_partition
    assert max(per_partition.values()) <= mean * 2, per_partition
