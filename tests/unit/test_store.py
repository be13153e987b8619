"""The conditional writes that make the pipeline idempotent and monotonic."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from lambdas.common.records import FailureStage, InferenceRecord, Status
from lambdas.common.store import ClaimOutcome, ClaimWriteError, OutcomeGuard, RecordStore
from tests.conftest import TABLE_NAME

INFERENCE_ID = "a" * 64


@pytest.fixture
def store(dynamodb: Any) -> RecordStore:
    return RecordStore(dynamodb, TABLE_NAME)


def pending(**fields: Any) -> InferenceRecord:
    return InferenceRecord(
        inference_id=INFERENCE_ID,
        status=Status.PENDING,
        input_location="s3://in/a.json",
        created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
        **fields,
    )


def outcome(status: Status, completed_at: str, **fields: Any) -> InferenceRecord:
    return InferenceRecord(
        inference_id=INFERENCE_ID,
        status=status,
        completed_at=completed_at,
        updated_at=completed_at,
        input_location="s3://in/from-notification.json",
        **fields,
    )


def test_first_claim_is_ours_and_a_live_claim_blocks_a_duplicate(store: RecordStore) -> None:
    assert store.claim(pending(), token="t1", lease_until=200, now=100).outcome == (
        ClaimOutcome.CLAIMED
    )
    duplicate = store.claim(pending(), token="t2", lease_until=210, now=110)
    assert duplicate.outcome == ClaimOutcome.IN_PROGRESS
    assert not duplicate.owned


def test_an_expired_claim_is_taken_over(store: RecordStore) -> None:
    store.claim(pending(), token="t1", lease_until=200, now=100)
    takeover = store.claim(pending(), token="t2", lease_until=400, now=300)
    assert takeover.outcome == ClaimOutcome.TAKEN_OVER
    assert store.mark_submitted(pending(submitted_at="x"), token="t2")
    assert not store.mark_submitted(pending(submitted_at="y"), token="t1")
    stored = store.get(INFERENCE_ID)
    assert stored is not None
    assert stored.status == Status.SUBMITTED
    assert stored.submitted_at == "x"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ProvisionedThroughputExceededException", 400),
        ("ThrottlingException", 400),
        ("RequestLimitExceeded", 400),
        ("InternalServerError", 500),
        ("SomethingNew", 503),
    ],
)
def test_a_transient_failure_of_a_claim_write_says_it_may_succeed_again(
    dynamodb: Any, code: str, status: int
) -> None:
    with Stubber(dynamodb) as stubber:
        stubber.add_client_error("update_item", service_error_code=code, http_status_code=status)
        with pytest.raises(ClaimWriteError, match=code):
            RecordStore(dynamodb, TABLE_NAME).mark_submitted(pending(), token="t1")


@pytest.mark.parametrize(
    ("code", "status"),
    [("AccessDeniedException", 400), ("ValidationException", 400), ("UnknownOperation", 400)],
)
def test_a_permanent_failure_of_a_claim_write_is_not_retried(
    dynamodb: Any, code: str, status: int
) -> None:
    """Retrying these would only spend the invocation's time: they propagate as raised."""
    with Stubber(dynamodb) as stubber:
        stubber.add_client_error("update_item", service_error_code=code, http_status_code=status)
        with pytest.raises(ClientError, match=code) as raised:
            RecordStore(dynamodb, TABLE_NAME).mark_failed(
                pending(), token="t1", reason="x", failed_at="2026-01-01T00:00:01.000Z"
            )
    assert not isinstance(raised.value, ClaimWriteError)


def test_a_claim_write_to_a_missing_table_is_not_retried(dynamodb: Any) -> None:
    gone = RecordStore(dynamodb, "no-such-table")
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        gone.mark_submitted(pending(submitted_at="x"), token="t1")


def test_a_guarded_outcome_is_refused_when_only_updated_at_moved(store: RecordStore) -> None:
    """The reconciler reads a PENDING claim past its lease; before it writes, a redriven ingest
    message takes the claim over. The record is PENDING still: only ``updated_at`` tells the
    two apart, and the outcome written under the guard of what was read must be refused."""
    store.claim(pending(), token="t1", lease_until=200, now=100)
    read = store.get(INFERENCE_ID)
    assert read is not None
    assert read.updated_at
    guard = OutcomeGuard(Status(read.status), read.updated_at)
    retaken = pending().model_copy(update={"updated_at": "2026-01-01T00:10:00.000Z"})
    takeover = store.claim(retaken, token="t2", lease_until=900, now=300)
    assert takeover.outcome == ClaimOutcome.TAKEN_OVER
    current = store.get(INFERENCE_ID)
    assert current is not None
    assert current.status == read.status  # the status alone cannot tell
    expired = outcome(
        Status.FAILED,
        "2026-01-01T00:11:00.000Z",
        failure_stage=FailureStage.EXPIRED,
        failure_reason="no result before the deadline",
    )

    assert store.record_outcome(expired, guard=guard) is None

    assert store.get(INFERENCE_ID) == current  # the new attempt's claim stands, untouched
    assert current.updated_at
    now_guard = OutcomeGuard(Status(current.status), current.updated_at)
    assert store.record_outcome(expired, guard=now_guard) is not None  # as read: written


def test_submitted_record_makes_a_redelivery_a_duplicate(store: RecordStore) -> None:
    store.claim(pending(), token="t1", lease_until=200, now=100)
    store.mark_submitted(pending(submitted_at="s"), token="t1")
    later = store.claim(pending(), token="t2", lease_until=9999, now=9000)
    assert later.outcome == ClaimOutcome.ALREADY_DONE
    assert later.existing is not None
    assert later.existing.status == Status.SUBMITTED


def test_result_before_submitted_write_is_not_regressed(store: RecordStore) -> None:
    store.claim(pending(), token="t1", lease_until=200, now=100)
    stored = store.record_outcome(
        outcome(Status.COMPLETED, "2026-01-01T00:00:05.000Z", output_location="s3://o/1.out")
    )
    assert stored is not None
    assert stored.status == Status.COMPLETED
    assert store.mark_submitted(pending(submitted_at="s", input_size=7), token="t1") is False
    final = store.get(INFERENCE_ID)
    assert final is not None
    assert final.status == Status.COMPLETED
    assert final.input_size == 7  # back-filled
    assert final.submitted_at == "s"
    assert final.input_location == "s3://in/a.json"  # the first writer's value stays


def test_outcomes_are_idempotent_and_ordered_by_event_time(store: RecordStore) -> None:
    newer = outcome(Status.FAILED, "2026-01-01T00:00:09.000Z", failure_reason="boom")
    older = outcome(Status.COMPLETED, "2026-01-01T00:00:05.000Z", result="{}")
    assert store.record_outcome(newer) is not None
    assert store.record_outcome(newer) is None  # duplicate
    assert store.record_outcome(older) is None  # out of order
    final = store.get(INFERENCE_ID)
    assert final is not None
    assert (final.status, final.failure_reason, final.result) == (Status.FAILED, "boom", None)


def test_a_newer_outcome_replaces_every_outcome_field(store: RecordStore) -> None:
    store.record_outcome(outcome(Status.FAILED, "2026-01-01T00:00:01.000Z", failure_reason="x"))
    store.record_outcome(outcome(Status.COMPLETED, "2026-01-01T00:00:02.000Z", result="ok"))
    final = store.get(INFERENCE_ID)
    assert final is not None
    assert (final.status, final.failure_reason, final.result) == (Status.COMPLETED, None, "ok")


def test_failed_at_ingest_only_with_our_claim(store: RecordStore) -> None:
    store.claim(pending(), token="t1", lease_until=200, now=100)
    assert not store.mark_failed(pending(), token="other", reason="r", failed_at="f")
    assert store.mark_failed(pending(), token="t1", reason="too large", failed_at="f")
    final = store.get(INFERENCE_ID)
    assert final is not None
    assert (final.status, final.failure_stage, final.failure_reason) == (
        Status.FAILED,
        "ingest",
        "too large",
    )
    assert store.claim(pending(), token="t3", lease_until=999, now=900).outcome == (
        ClaimOutcome.ALREADY_DONE
    )
