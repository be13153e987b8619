"""The review of what the previous release filed in its write-once shards: every record read
once, when it could first be overdue; open records settled or filed for later; progress kept
in the state table and never past undone work. Records this release files under OPEN#nn are
drained directly."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lambdas.common.clock import format_timestamp
from lambdas.common.contract import STATUS_SHARD_INDEX, shard_of
from lambdas.common.records import FailureStage, InferenceRecord, Status
from lambdas.reconciler.logic import Settlement
from tests.conftest import TABLE_NAME
from tests.unit.reconciler.conftest import NOW, OUTPUT_BUCKET, SUBMITTED_OVERDUE, Rig

pytestmark = pytest.mark.parametrize("rig", [STATUS_SHARD_INDEX], indirect=True)
DELAY = timedelta(seconds=21_600 + 900) + timedelta(minutes=30)  # the defaults' SUBMITTED window
RUN_EVERY = timedelta(minutes=15)


def status_time(rig: Rig, inference_id: str) -> str:
    item = rig.dynamodb.get_item(TableName=TABLE_NAME, Key={"inference_id": {"S": inference_id}})
    return str(item["Item"]["status_time"]["S"])


def previous_release(rig: Rig, record: InferenceRecord) -> InferenceRecord:
    """Files ``record`` as the release before this one did: under its bare shard."""
    rig.dynamodb.update_item(
        TableName=TABLE_NAME,
        Key={"inference_id": {"S": record.inference_id}},
        UpdateExpression="SET status_shard = :shard",
        ExpressionAttributeValues={":shard": {"S": f"{shard_of(record.inference_id):02d}"}},
    )
    return record


def test_each_record_is_read_once_and_a_lost_notification_settled_at_its_deadline(
    rig: Rig,
) -> None:
    claimed = NOW - DELAY + timedelta(minutes=10)  # overdue 10 minutes from NOW
    lost = previous_release(rig, rig.seed("lost.json", Status.SUBMITTED, claimed))
    found = previous_release(rig, rig.seed("found.json", Status.SUBMITTED, claimed))
    rig.put(found.output_location or "", b"{}")  # its notification was lost, not its output

    runs = [rig.reconciler(now=NOW + RUN_EVERY * n).run() for n in range(-1, 3)]

    assert [run.read for run in runs] == [0, 0, 2, 0]  # once each, when they could be due
    assert runs[2].count(Settlement.EXPIRED) == 1
    assert runs[2].count(Settlement.COMPLETED) == 1
    assert rig.get(lost.inference_id).failure_stage == FailureStage.EXPIRED
    assert rig.get(found.inference_id).status == Status.COMPLETED


def test_a_record_submitted_long_after_its_claim_is_filed_for_its_own_deadline(
    rig: Rig,
) -> None:
    record = previous_release(rig, rig.seed("late.json", Status.SUBMITTED, NOW - DELAY))
    submitted_at = NOW - timedelta(hours=1)
    rig.dynamodb.update_item(
        TableName=TABLE_NAME,
        Key={"inference_id": {"S": record.inference_id}},
        UpdateExpression="SET submitted_at = :at",
        ExpressionAttributeValues={":at": {"S": format_timestamp(submitted_at)}},
    )

    first = rig.reconciler().run()

    assert first.count(Settlement.DEFERRED) == 1
    assert status_time(rig, record.inference_id) == format_timestamp(submitted_at)
    assert rig.reconciler(now=NOW + DELAY - timedelta(hours=1, seconds=1)).run().read == 0
    due = rig.reconciler(now=NOW + DELAY - timedelta(hours=1)).run()
    assert due.count(Settlement.EXPIRED) == 1


def test_progress_stops_before_a_record_that_could_not_be_checked(rig: Rig) -> None:
    record = previous_release(rig, rig.seed("a.json", Status.SUBMITTED, SUBMITTED_OVERDUE))
    rig.s3.delete_bucket(Bucket=OUTPUT_BUCKET)  # HeadObject now fails: not settled

    failed = rig.reconciler().run()

    assert failed.count(Settlement.ERROR) == 1
    assert not failed.complete
    rig.s3.create_bucket(Bucket=OUTPUT_BUCKET)
    again = rig.reconciler(now=NOW + RUN_EVERY).run()  # the same slice, reviewed again
    assert again.count(Settlement.EXPIRED) == 1
    assert rig.get(record.inference_id).status == Status.FAILED


@pytest.mark.parametrize("filed", ["OPEN#{:02d}", "{:02d}"])
def test_an_open_record_is_settled_wherever_a_release_filed_it(rig: Rig, filed: str) -> None:
    """This release (and the one two before) file open records under OPEN#<shard>, drained
    directly; the release before filed them under the bare shard, reviewed by time."""
    record = rig.seed("old.json", Status.SUBMITTED, SUBMITTED_OVERDUE)
    rig.dynamodb.update_item(
        TableName=TABLE_NAME,
        Key={"inference_id": {"S": record.inference_id}},
        UpdateExpression="SET status_shard = :filed",
        ExpressionAttributeValues={":filed": {"S": filed.format(shard_of(record.inference_id))}},
    )

    report = rig.reconciler().run()

    assert report.count(Settlement.EXPIRED) == 1
    assert rig.get(record.inference_id).status == Status.FAILED


def test_the_time_budget_stops_the_run_and_the_next_one_goes_on(rig: Rig) -> None:
    record = previous_release(rig, rig.seed("a.json", Status.SUBMITTED, SUBMITTED_OVERDUE))
    calls = iter([False] * 3 + [True] * 1000)  # out of time after three checks

    stopped = rig.reconciler().run(out_of_time=lambda: next(calls))

    assert not stopped.complete
    assert rig.get(record.inference_id).status == Status.SUBMITTED
    assert rig.reconciler(now=NOW + RUN_EVERY).run().count(Settlement.EXPIRED) == 1
