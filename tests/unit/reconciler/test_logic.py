"""The reconciler settles overdue records exactly as the results function would, expires what
nothing will ever settle, and leaves alone what may still move."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from aws_lambda_powertools import Logger, Metrics

from lambdas.common.clock import format_timestamp
from lambdas.common.contract import STATUS_INDEX
from lambdas.common.outcomes import Disposition
from lambdas.common.outputs import S3OutputReader
from lambdas.common.records import FailureStage, InferenceRecord, Status
from lambdas.common.store import OutcomeGuard, RecordStore
from lambdas.reconciler.clients import FoundObject, ReconcilerAwsError, RecordPage
from lambdas.reconciler.logic import Reconciler, Settlement
from lambdas.results.config import ResultsConfig
from lambdas.results.logic import NotificationProcessor
from tests.conftest import create_results_table
from tests.unit.reconciler.conftest import (
    ENDPOINT,
    NOW,
    PENDING_NOT_DUE,
    PENDING_OVERDUE,
    SUBMITTED_NOT_DUE,
    SUBMITTED_OVERDUE,
    Rig,
    config,
)

OUTPUT = b'{"label": "rose", "score": 0.97}'


def real_notification(record: InferenceRecord, **fields: Any) -> str:
    """What SageMaker publishes for the request, written out by hand (DESIGN "Facts")."""
    message: dict[str, Any] = {
        "awsRegion": "us-east-1",
        "eventTime": fields.pop("event_time"),
        "receivedTime": record.submitted_at,
        "invocationStatus": "Completed",
        "requestParameters": {
            "accept": record.accept,
            "contentType": record.content_type,
            "customAttributes": record.custom_attributes,
            "endpointName": ENDPOINT,
            "inputLocation": record.input_location,
        },
        "responseParameters": {
            "contentType": "application/json",
            "outputLocation": record.output_location,
        },
        "inferenceId": record.inference_id,
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    }
    message.update(fields)
    return json.dumps(message)


def results_processor(rig: Rig, store: RecordStore, metrics: Metrics) -> NotificationProcessor:
    return NotificationProcessor(
        config=ResultsConfig.model_validate(
            {"TABLE_NAME": "x", "ENDPOINT_NAME": ENDPOINT, "INLINE_RESULT_MAX_BYTES": "16384"}
        ),
        store=store,
        outputs=S3OutputReader(lambda: rig.s3),
        metrics=metrics,
        clock=lambda: NOW,
        logger=Logger(),
    )


def test_an_output_is_recorded_exactly_as_the_results_function_records_its_notification(
    rig: Rig, metrics: Metrics
) -> None:
    twin = RecordStore(rig.dynamodb, "twin")
    create_results_table(rig.dynamodb, "twin")
    record = rig.seed("a.json", Status.SUBMITTED, SUBMITTED_OVERDUE)
    Rig(rig.s3, rig.dynamodb, twin, metrics).seed("a.json", Status.SUBMITTED, SUBMITTED_OVERDUE)
    assert record.output_location
    rig.put(record.output_location, OUTPUT)

    report = rig.reconciler().run()

    assert report.count(Settlement.COMPLETED) == 1
    event_time = format_timestamp(rig.last_modified(record.output_location))
    disposition = results_processor(rig, twin, metrics).process_message(
        real_notification(record, event_time=event_time)
    )
    assert disposition is Disposition.COMPLETED
    reconciled = rig.get(record.inference_id)
    assert reconciled == twin.get(record.inference_id)
    assert reconciled.status == Status.COMPLETED
    assert reconciled.result == OUTPUT.decode()
    assert reconciled.result_encoding == "utf-8"
    assert reconciled.completed_at == event_time
    assert reconciled.submitted_at == record.submitted_at  # ingest's fields are kept


def test_a_failure_object_is_recorded_failed_at_inference_with_its_text(rig: Rig) -> None:
    record = rig.seed("b.json", Status.SUBMITTED, SUBMITTED_OVERDUE)
    assert record.failure_location
    rig.put(record.failure_location, b"Received server error (500) from model", "text/plain")

    report = rig.reconciler().run()

    assert report.count(Settlement.FAILED) == 1
    failed = rig.get(record.inference_id)
    assert failed.status == Status.FAILED
    assert failed.failure_stage == FailureStage.INFERENCE
    assert failed.failure_reason is not None
    assert failed.failure_reason.startswith("Received server error (500) from model")
    assert record.failure_location in failed.failure_reason
    assert failed.failure_location == record.failure_location


def test_nothing_written_by_the_deadline_expires_with_a_reason_naming_it(rig: Rig) -> None:
    record = rig.seed("c.json", Status.SUBMITTED, SUBMITTED_OVERDUE)

    report = rig.reconciler().run()

    assert report.count(Settlement.EXPIRED) == 1
    expired = rig.get(record.inference_id)
    assert expired.status == Status.FAILED
    assert expired.failure_stage == FailureStage.EXPIRED
    deadline = format_timestamp(SUBMITTED_OVERDUE + timedelta(seconds=21600 + 900 + 1800))
    assert expired.failure_reason is not None
    assert f"deadline {deadline}" in expired.failure_reason
    assert "RequestTTLSeconds 21600" in expired.failure_reason
    assert f"nothing at {record.output_location}" in expired.failure_reason
    assert expired.completed_at == format_timestamp(NOW)
    assert expired.output_location == record.output_location


def test_records_before_their_deadline_are_neither_read_nor_touched(rig: Rig) -> None:
    submitted = rig.seed("d.json", Status.SUBMITTED, SUBMITTED_NOT_DUE)
    pending = rig.seed("e.json", Status.PENDING, PENDING_NOT_DUE)

    report = rig.reconciler().run()

    assert rig.get(submitted.inference_id).status == Status.SUBMITTED
    assert rig.get(pending.inference_id).status == Status.PENDING
    # layout 1's (status, updated_at) key and layout 2's OPEN partitions by the claim's time
    # skip them
    assert report.read == 0
    if rig.status_index == STATUS_INDEX:
        return
    past_deadline = PENDING_NOT_DUE + timedelta(days=19, seconds=1)
    at_deadline = rig.reconciler(now=past_deadline).run()
    assert at_deadline.count(Settlement.EXPIRED) == 2  # the SUBMITTED one is overdue by then
    assert at_deadline.pages < 16 * 20  # the review crosses 19 quiet days in growing slices
    assert rig.get(pending.inference_id).status == Status.FAILED


def test_a_pending_record_expires_only_past_both_queue_retentions(rig: Rig) -> None:
    recent = rig.seed("f.json", Status.PENDING, PENDING_NOT_DUE)
    stale = rig.seed("g.json", Status.PENDING, PENDING_OVERDUE)

    report = rig.reconciler().run()

    assert report.count(Settlement.EXPIRED) == 1
    assert rig.get(recent.inference_id).status == Status.PENDING
    expired = rig.get(stale.inference_id)
    assert expired.status == Status.FAILED
    assert expired.failure_stage == FailureStage.EXPIRED
    assert expired.failure_reason is not None
    assert "never submitted" in expired.failure_reason
    assert "dead-letter retention 1209600 s" in expired.failure_reason


def test_a_late_notification_does_not_undo_an_expiry(rig: Rig, metrics: Metrics) -> None:
    record = rig.seed("h.json", Status.SUBMITTED, SUBMITTED_OVERDUE)
    rig.reconciler().run()
    before = rig.get(record.inference_id)

    late = real_notification(
        record, event_time=format_timestamp(SUBMITTED_OVERDUE + timedelta(minutes=5))
    )
    disposition = results_processor(rig, rig.store, metrics).process_message(late)

    assert disposition is Disposition.UNCHANGED
    assert rig.get(record.inference_id) == before


@pytest.mark.parametrize("offset_seconds", [-1, 0, 1])
def test_a_late_notification_of_the_same_output_never_changes_the_outcome(
    rig: Rig, metrics: Metrics, offset_seconds: int
) -> None:
    record = rig.seed("i.json", Status.SUBMITTED, SUBMITTED_OVERDUE)
    assert record.output_location
    rig.put(record.output_location, OUTPUT)
    rig.reconciler().run()
    settled = rig.get(record.inference_id)

    event_time = rig.last_modified(record.output_location) + timedelta(seconds=offset_seconds)
    late = real_notification(record, event_time=format_timestamp(event_time))
    results_processor(rig, rig.store, metrics).process_message(late)

    after = rig.get(record.inference_id)
    assert after.status == settled.status == Status.COMPLETED
    assert after.output_location == settled.output_location
    assert after.result == settled.result
    # only a newer eventTime (SageMaker's own) may refine the timing fields
    assert (after == settled) is (offset_seconds <= 0)


def test_a_bucket_the_reconciler_may_not_read_is_not_checked_and_the_reason_says_so(
    rig: Rig,
) -> None:
    record = rig.seed("j.json", Status.SUBMITTED, SUBMITTED_OVERDUE, output_bucket="elsewhere")

    rig.reconciler().run()

    expired = rig.get(record.inference_id)
    assert expired.failure_stage == FailureStage.EXPIRED
    assert expired.failure_reason is not None
    assert "not checked" in expired.failure_reason


class StaleIndex:
    """Returns records as they were before something else changed them."""

    def __init__(self, records: list[InferenceRecord]) -> None:
        self.records = records

    def page(self, status: Status, cutoff: Any, limit: int, start_key: Any) -> RecordPage:
        return RecordPage([r for r in self.records if r.status == status], None)


def test_a_record_that_changed_since_it_was_read_is_left_alone(rig: Rig) -> None:
    record = rig.seed("k.json", Status.SUBMITTED, SUBMITTED_OVERDUE)
    snapshot = rig.get(record.inference_id)
    # the real notification lands between the reconciler's read and its write
    done = snapshot.model_copy(
        update={
            "status": Status.COMPLETED,
            "completed_at": format_timestamp(SUBMITTED_OVERDUE + timedelta(minutes=2)),
            "updated_at": format_timestamp(NOW - timedelta(minutes=1)),
        }
    )
    assert rig.store.record_outcome(done) is not None
    reconciler = rig.reconciler()
    stale = Reconciler(**{**reconciler.__dict__, "index": StaleIndex([snapshot])})

    report = stale.run()

    assert report.count(Settlement.UNCHANGED) == 1
    assert rig.get(record.inference_id).status == Status.COMPLETED


def test_a_guarded_outcome_is_refused_when_the_status_moved_on(rig: Rig) -> None:
    record = rig.seed("l.json", Status.PENDING, PENDING_OVERDUE)
    assert record.updated_at
    outcome = record.model_copy(
        update={"status": Status.FAILED, "completed_at": format_timestamp(NOW)}
    )
    guard = OutcomeGuard(Status.SUBMITTED, record.updated_at)
    assert rig.store.record_outcome(outcome, guard=guard) is None
    assert rig.get(record.inference_id).status == Status.PENDING


class BrokenProbe:
    def find(self, location: str) -> FoundObject | None:
        raise ReconcilerAwsError(f"cannot check {location}: AccessDenied")

    def read_text(self, location: str, max_bytes: int) -> str:
        raise AssertionError("not reached")


def test_an_unreadable_location_is_an_error_and_the_record_waits_for_the_next_run(
    rig: Rig,
) -> None:
    record = rig.seed("m.json", Status.SUBMITTED, SUBMITTED_OVERDUE)
    reconciler = rig.reconciler()
    broken = Reconciler(**{**reconciler.__dict__, "probe": BrokenProbe()})

    report = broken.run()

    assert report.count(Settlement.ERROR) == 1
    assert "AccessDenied" in report.errors[0]
    assert rig.get(record.inference_id).status == Status.SUBMITTED


def test_one_run_reads_bounded_pages_and_the_next_run_goes_on(rig: Rig) -> None:
    for number in range(7):
        rig.seed(f"n{number}.json", Status.SUBMITTED, SUBMITTED_OVERDUE)

    first = rig.reconciler(RECONCILE_PAGE_SIZE="2", RECONCILE_MAX_RECORDS="5").run()
    second = rig.reconciler(RECONCILE_PAGE_SIZE="2", RECONCILE_MAX_RECORDS="5").run()

    assert (first.read, first.complete) == (5, False)
    if rig.status_index == STATUS_INDEX:  # layout 2 pages through 16 shards, some empty
        assert first.pages == 3
    assert first.count(Settlement.EXPIRED) == 5
    assert second.count(Settlement.EXPIRED) == 2
    assert second.complete


def test_deadlines_follow_the_configured_limits(rig: Rig) -> None:
    record = rig.seed("o.json", Status.SUBMITTED, NOW - timedelta(minutes=40))

    default_run = rig.reconciler().run()
    short_run = rig.reconciler(REQUEST_TTL_SECONDS="60", INVOCATION_TIMEOUT_SECONDS="60").run()

    assert default_run.read == 0
    assert short_run.count(Settlement.EXPIRED) == 1
    reason = rig.get(record.inference_id).failure_reason
    assert reason is not None
    assert "RequestTTLSeconds 60 s" in reason


def test_config_rejects_limits_the_api_does_not_allow() -> None:
    with pytest.raises(ValueError, match="REQUEST_TTL_SECONDS"):
        config(REQUEST_TTL_SECONDS="30")
    assert config().inline_result_max_bytes == 16384


def test_an_output_of_a_replaced_endpoint_still_completes_the_record(rig: Rig) -> None:
    record = rig.seed("p.json", Status.SUBMITTED, SUBMITTED_OVERDUE)
    assert record.output_location
    rig.put(record.output_location, OUTPUT)

    report = rig.reconciler(ENDPOINT_NAME="replacement-endpoint").run()

    assert report.count(Settlement.COMPLETED) == 1
    completed = rig.get(record.inference_id)
    assert (completed.status, completed.endpoint_name) == (Status.COMPLETED, ENDPOINT)


class FailingFor:
    """The store, failing unexpectedly for one record."""

    def __init__(self, store: RecordStore, inference_id: str) -> None:
        self.store = store
        self.inference_id = inference_id

    def record_outcome(
        self, record: InferenceRecord, *, guard: OutcomeGuard | None = None
    ) -> InferenceRecord | None:
        if record.inference_id == self.inference_id:
            raise RuntimeError("table on fire")
        return self.store.record_outcome(record, guard=guard)


def test_one_record_that_fails_never_stops_the_run(rig: Rig) -> None:
    broken = rig.seed("q.json", Status.SUBMITTED, SUBMITTED_OVERDUE)
    fine = rig.seed("r.json", Status.SUBMITTED, SUBMITTED_OVERDUE)
    reconciler = rig.reconciler()
    failing = Reconciler(
        **{**reconciler.__dict__, "store": FailingFor(rig.store, broken.inference_id)}
    )

    report = failing.run()

    assert (report.count(Settlement.ERROR), report.count(Settlement.EXPIRED)) == (1, 1)
    assert "RuntimeError: table on fire" in report.errors[0]
    assert rig.get(broken.inference_id).status == Status.SUBMITTED
    assert rig.get(fine.inference_id).failure_stage == FailureStage.EXPIRED
