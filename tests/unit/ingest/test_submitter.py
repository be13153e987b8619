"""The per-object flow against moto S3 and DynamoDB, with a scripted fake SageMaker."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from lambdas.common.clock import format_timestamp
from lambdas.common.records import FailureStage, InferenceRecord, Status, inference_id_for
from lambdas.common.store import ClaimWriteError, RecordStore
from lambdas.ingest.events import ObjectVersion
from lambdas.ingest.logic import (
    MINIMUM_START_SECONDS,
    RESERVE_SECONDS,
    Outcome,
    SubmitResult,
    Submitter,
)
from lambdas.ingest.values import InvocationRequest
from tests.conftest import TABLE_NAME
from tests.unit.ingest.conftest import ENDPOINT, INPUT_BUCKET, JSON_BODY, World
from tests.unit.ingest.support import START, client_error, throttling

TRACE = "1-6740a1b2-0123456789abcdef01234567"


def submit(world: World, target: ObjectVersion, submitter: Submitter | None = None) -> SubmitResult:
    return (submitter or world.submitter()).submit(
        target, trace_id=TRACE, remaining_seconds=world.clock.remaining
    )


def test_a_new_object_is_submitted_and_recorded_with_every_known_field(world: World) -> None:
    target = world.upload("incoming/red flower.json", ContentType="application/json")
    result = submit(world, target)

    assert result == SubmitResult(Outcome.SUBMITTED, target.inference_id)
    expected_id = inference_id_for(INPUT_BUCKET, "incoming/red flower.json", None, target.etag)
    # A small input travels inline, at the announced version, and its output is named after
    # the key's folder and the inference id (output_naming = input, the defaults).
    assert world.invoker.calls == [
        InvocationRequest(
            endpoint_name=ENDPOINT,
            inference_id=expected_id,
            content_type="application/json",
            accept="application/json",
            custom_attributes=f"trace_id={TRACE}",
            request_ttl_seconds=21600,
            invocation_timeout_seconds=900,
            body=JSON_BODY,
            output_path_extension="incoming",
            filename=f"{expected_id[:28]}.out",
        )
    ]
    record = world.stored(target.inference_id)
    stamp = format_timestamp(START)
    assert record.status == Status.SUBMITTED
    assert record.input_location == f"s3://{INPUT_BUCKET}/incoming/red flower.json"
    assert record.input_bucket == INPUT_BUCKET
    assert record.input_key == "incoming/red flower.json"
    assert record.input_version is None
    assert record.input_size == len(JSON_BODY)
    assert record.content_type == "application/json"
    assert record.accept == "application/json"
    assert record.custom_attributes == f"trace_id={TRACE}"
    assert record.endpoint_name == ENDPOINT
    assert record.output_location is not None
    assert record.output_location.startswith("s3://output-bucket/results/")
    assert record.failure_location is not None
    assert record.failure_location.startswith("s3://output-bucket/failures/")
    assert (record.created_at, record.submitted_at, record.updated_at) == (stamp, stamp, stamp)
    assert record.expires_at == int((START + timedelta(days=90)).timestamp())
    assert record.failure_reason is None


def test_the_configured_request_settings_are_sent(world: World) -> None:
    target = world.upload("a.csv", b"1,2")
    submitter = world.submitter(
        accept="text/csv",
        invocation_timeout_seconds=3600,
        request_ttl_seconds=60,
        custom_attributes={"team": "vision"},
        retention_days=0,
    )
    assert submit(world, target, submitter).outcome is Outcome.SUBMITTED
    [call] = world.invoker.calls
    assert (call.accept, call.content_type) == ("text/csv", "text/csv")
    assert (call.invocation_timeout_seconds, call.request_ttl_seconds) == (3600, 60)
    assert call.custom_attributes == f"team=vision,trace_id={TRACE}"
    assert world.stored(target.inference_id).expires_at is None  # RETENTION_DAYS=0 keeps it


def test_a_versioned_object_is_identified_by_its_version(world: World) -> None:
    world.enable_versioning()
    first = world.upload("a.json", b"1")
    assert first.version_id
    assert first.inference_id == inference_id_for(INPUT_BUCKET, "a.json", first.version_id, None)
    assert submit(world, first).outcome is Outcome.SUBMITTED
    assert world.stored(first.inference_id).input_version == first.version_id

    second = world.upload("a.json", b"2")
    assert second.inference_id != first.inference_id
    assert submit(world, second).outcome is Outcome.SUBMITTED
    assert [call.inference_id for call in world.invoker.calls] == [
        first.inference_id,
        second.inference_id,
    ]


def test_a_redelivered_version_is_never_invoked_twice(world: World) -> None:
    target = world.upload("a.json")
    assert submit(world, target).outcome is Outcome.SUBMITTED
    world.clock.next_invocation(after_seconds=3600)
    assert submit(world, target) == SubmitResult(Outcome.DUPLICATE, target.inference_id)
    assert len(world.invoker.calls) == 1


def test_a_version_rejected_at_ingest_is_a_duplicate_on_redelivery(world: World) -> None:
    submitter = world.submitter(max_input_bytes=1)
    target = world.upload("a.json", b"too big")
    assert submit(world, target, submitter).outcome is Outcome.REJECTED
    assert submit(world, target, submitter).outcome is Outcome.DUPLICATE
    assert world.invoker.calls == []


def test_a_crash_between_claim_and_invoke_is_retried_with_the_same_id(world: World) -> None:
    target = world.upload("a.json")
    epoch = int(START.timestamp())
    crashed = InferenceRecord(
        inference_id=target.inference_id,
        status=Status.PENDING,
        input_location=target.input_location,
        created_at=format_timestamp(START),
    )
    world.store.claim(crashed, token="crashed-attempt", lease_until=epoch + 60, now=epoch)
    world.clock.next_invocation(after_seconds=61)  # redelivered after the dead attempt's lease

    assert submit(world, target).outcome is Outcome.SUBMITTED
    assert [call.inference_id for call in world.invoker.calls] == [target.inference_id]
    assert world.stored(target.inference_id).status == Status.SUBMITTED


class _TableDownFor(RecordStore):
    """The table refuses the first ``failures`` writes to a claim (an outage)."""

    def __init__(self, world: World, failures: int) -> None:
        super().__init__(world.dynamodb, TABLE_NAME)
        self.failures = failures

    def _update_owned(self, inference_id: str, update: Any, token: str) -> bool:
        if self.failures > 0:
            self.failures -= 1
            raise ClaimWriteError("ProvisionedThroughputExceededException: the table is down")
        return super()._update_owned(inference_id, update, token)


def test_the_submitted_write_goes_through_a_table_outage_sent_once(world: World) -> None:
    target = world.upload("a.json")
    world.store = _TableDownFor(world, failures=3)
    assert submit(world, target) == SubmitResult(Outcome.SUBMITTED, target.inference_id)
    assert len(world.invoker.calls) == 1
    assert len(world.clock.sleeps) == 3
    assert world.stored(target.inference_id).status == Status.SUBMITTED


def test_an_outage_outlasting_the_invocation_leaves_the_claim_to_a_redelivery(
    world: World,
) -> None:
    world.clock.budget_seconds = RESERVE_SECONDS + 2
    target = world.upload("a.json")
    table_up = world.store
    world.store = _TableDownFor(world, failures=1000)
    with pytest.raises(ClaimWriteError):
        submit(world, target)
    assert world.clock.remaining() > 0  # it gave up before the invocation's end
    world.store = table_up
    world.clock.next_invocation(after_seconds=3600)
    # the documented at-least-once case: the request is sent again with the same id
    assert submit(world, target).outcome is Outcome.SUBMITTED
    assert [call.inference_id for call in world.invoker.calls] == [target.inference_id] * 2


def test_a_rejection_is_recorded_through_a_short_table_outage(world: World) -> None:
    target = world.upload("a.json")
    world.store = _TableDownFor(world, failures=2)
    world.invoker.script("a.json", client_error("ValidationError", 400, "bad input"))
    assert submit(world, target).outcome is Outcome.REJECTED
    assert world.stored(target.inference_id).failure_stage == FailureStage.INGEST


def test_a_live_claim_of_a_concurrent_delivery_is_left_alone(world: World) -> None:
    target = world.upload("a.json")
    epoch = int(START.timestamp())
    other = InferenceRecord(inference_id=target.inference_id, status=Status.PENDING)
    world.store.claim(other, token="concurrent", lease_until=epoch + 900, now=epoch)

    result = submit(world, target)

    assert result.outcome is Outcome.IN_PROGRESS
    assert result.needs_retry
    assert world.invoker.calls == []
    assert world.stored(target.inference_id).status == Status.PENDING


def test_the_claim_lease_outlives_the_invocation(world: World) -> None:
    target = world.upload("a.json")
    claim: dict[str, Any] = {}

    def read_the_claim(_: InvocationRequest) -> None:
        key = {"inference_id": {"S": target.inference_id}}
        claim.update(world.dynamodb.get_item(TableName=TABLE_NAME, Key=key)["Item"])

    world.invoker.script("a.json", read_the_claim)
    submit(world, target)
    assert claim["status"] == {"S": "PENDING"}
    lease_until = int(claim["claim_expires_at"]["N"])
    assert lease_until > START.timestamp() + world.clock.budget_seconds


def test_an_object_over_the_size_limit_fails_at_ingest_from_the_event_size(world: World) -> None:
    # The event says 2 GB: rejected without reading the object (it does not even exist here).
    target = ObjectVersion(INPUT_BUCKET, "huge.bin", None, "e" * 32, 2 * 1024**3, None)
    assert submit(world, target).outcome is Outcome.REJECTED
    record = world.stored(target.inference_id)
    assert record.status == Status.FAILED
    assert record.failure_stage == FailureStage.INGEST
    assert record.failure_reason == (
        f"the object is {2 * 1024**3} bytes; the limit is {1024**3} bytes "
        "(MAX_INPUT_BYTES; SageMaker async inference takes payloads up to 1 GB)"
    )
    assert record.input_size == 2 * 1024**3
    assert record.completed_at == format_timestamp(START)
    assert world.invoker.calls == []


def test_the_size_comes_from_the_object_when_the_event_lacks_it(world: World) -> None:
    uploaded = world.upload("a.json", b"12345")
    target = ObjectVersion(uploaded.bucket, uploaded.key, None, uploaded.etag, None, None)
    assert submit(world, target, world.submitter(max_input_bytes=4)).outcome is Outcome.REJECTED
    assert world.stored(target.inference_id).input_size == 5


def test_an_input_location_over_1024_characters_fails_at_ingest(world: World) -> None:
    key = "k/" + "x" * (1024 - len(f"s3://{INPUT_BUCKET}/k/") + 1)
    target = ObjectVersion(INPUT_BUCKET, key, None, "e" * 32, 10, None)
    assert len(target.input_location) == 1025
    by_location = world.submitter(inline_input_max_bytes=0)  # only a location has the limit
    assert submit(world, target, by_location).outcome is Outcome.REJECTED
    assert world.stored(target.inference_id).failure_reason == (
        "InputLocation is 1025 characters; InvokeEndpointAsync allows at most 1024"
    )
    assert world.invoker.calls == []


@pytest.mark.parametrize("versioning", [False, True], ids=["unversioned", "versioned"])
def test_an_object_deleted_before_submission_fails_at_ingest(
    world: World, versioning: bool
) -> None:
    if versioning:
        world.enable_versioning()
    target = world.upload("gone.json")
    world.s3.delete_object(Bucket=INPUT_BUCKET, Key="gone.json")
    # By location: SageMaker would read the current (deleted) object. Inline, see
    # test_an_inline_version_behind_a_delete_marker_is_still_submitted.
    by_location = world.submitter(inline_input_max_bytes=0)
    assert submit(world, target, by_location).outcome is Outcome.REJECTED
    reason = world.stored(target.inference_id).failure_reason
    assert reason is not None
    assert reason.startswith("the object was deleted before it could be submitted")
    assert world.invoker.calls == []


def test_an_overwritten_version_is_not_submitted_in_place_of_the_new_one(world: World) -> None:
    world.enable_versioning()
    old = world.upload("a.json", b"old")
    new = world.upload("a.json", b"new")
    by_location = world.submitter(inline_input_max_bytes=0)  # the residual-window path
    assert submit(world, old, by_location).outcome is Outcome.REJECTED
    reason = world.stored(old.inference_id).failure_reason
    assert reason is not None
    assert f"the event names version {old.version_id}" in reason
    assert submit(world, new, by_location).outcome is Outcome.SUBMITTED
    assert [call.inference_id for call in world.invoker.calls] == [new.inference_id]


def test_an_overwritten_unversioned_object_is_detected_by_its_etag(world: World) -> None:
    old = world.upload("a.json", b"old")
    world.upload("a.json", b"new")
    assert submit(world, old).outcome is Outcome.REJECTED
    reason = world.stored(old.inference_id).failure_reason
    assert reason is not None
    assert f"the event names ETag {old.etag}" in reason


def test_rewriting_identical_bytes_keeps_an_unversioned_object_submittable(world: World) -> None:
    first = world.upload("a.json", b"same")
    world.upload("a.json", b"same")
    assert submit(world, first).outcome is Outcome.SUBMITTED


def test_the_object_content_type_and_allow_listed_metadata_are_used(world: World) -> None:
    submitter = world.submitter(
        custom_attributes={"team": "vision"}, metadata_attributes=["customer", "priority"]
    )
    # S3 hands back non-ASCII metadata as RFC 2047 encoded words ("Zoë 日本").
    target = world.upload(
        "images/a.png",
        b"\x89PNG",
        Metadata={"customer": "=?UTF-8?B?Wm/DqyDml6XmnKw=?=", "secret": "not copied"},
    )
    assert submit(world, target, submitter).outcome is Outcome.SUBMITTED
    expected = f"team=vision,customer=Zo%C3%AB%20%E6%97%A5%E6%9C%AC,trace_id={TRACE}"
    assert world.invoker.calls[0].custom_attributes == expected
    assert world.invoker.calls[0].content_type == "image/png"  # moto says binary/octet-stream
    assert world.stored(target.inference_id).custom_attributes == expected


def _note_for_total_length(total: int) -> str:
    fixed = len("note=") + len(",trace_id=") + len(TRACE)
    return "n" * (total - fixed)


def test_custom_attributes_of_exactly_1024_characters_are_sent(world: World) -> None:
    target = world.upload("a.json", Metadata={"note": _note_for_total_length(1024)})
    submitter = world.submitter(metadata_attributes=["note"])
    assert submit(world, target, submitter).outcome is Outcome.SUBMITTED
    assert len(world.invoker.calls[0].custom_attributes) == 1024


def test_custom_attributes_of_1025_characters_fail_at_ingest_untruncated(world: World) -> None:
    target = world.upload("a.json", Metadata={"note": _note_for_total_length(1025)})
    submitter = world.submitter(metadata_attributes=["note"])
    assert submit(world, target, submitter).outcome is Outcome.REJECTED
    record = world.stored(target.inference_id)
    assert record.status == Status.FAILED
    assert record.failure_stage == FailureStage.INGEST
    assert record.failure_reason == (
        "custom attributes are 1025 characters once encoded; InvokeEndpointAsync allows at "
        "most 1024 visible US-ASCII characters (CustomAttributes)"
    )
    assert world.invoker.calls == []


def test_a_validation_error_fails_at_ingest_with_sagemakers_message(world: World) -> None:
    target = world.upload("a.json")
    message = "Endpoint demo-endpoint of account 123456789012 not found."
    world.invoker.always("a.json", client_error("ValidationError", 400, message))
    assert submit(world, target).outcome is Outcome.REJECTED
    assert len(world.invoker.calls) == 1
    record = world.stored(target.inference_id)
    assert record.status == Status.FAILED
    assert record.failure_stage == FailureStage.INGEST
    assert record.failure_reason == f"SageMaker rejected the request: ValidationError: {message}"
    assert record.content_type == "application/json"
    assert record.custom_attributes == f"trace_id={TRACE}"


@pytest.mark.parametrize(
    "error",
    [
        throttling(),
        client_error("InternalFailure", 500),
        client_error("ServiceUnavailable", 503),
        client_error("ModelNotReadyException", 429),
        EndpointConnectionError(endpoint_url="https://runtime.sagemaker.us-east-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://runtime.sagemaker.us-east-1.amazonaws.com"),
    ],
    ids=["throttling", "internal-failure", "service-unavailable", "model-not-ready",
         "connection", "read-timeout"],
)  # fmt: skip
def test_transient_errors_are_retried_with_backoff_then_submitted(
    world: World, error: Exception
) -> None:
    target = world.upload("a.json")
    world.invoker.script("a.json", error, error, error)
    result = submit(world, target)
    assert result == SubmitResult(Outcome.SUBMITTED, target.inference_id, retries=3)
    assert len(world.invoker.calls) == 4
    assert {call.inference_id for call in world.invoker.calls} == {target.inference_id}
    assert len(world.clock.sleeps) == 3
    assert world.stored(target.inference_id).status == Status.SUBMITTED


def test_throttling_until_time_runs_out_leaves_the_claim_pending(world: World) -> None:
    world.clock.budget_seconds = 60
    target = world.upload("a.json")
    world.invoker.always("a.json", throttling())
    result = submit(world, target)

    assert result.outcome is Outcome.DEFERRED
    assert result.needs_retry
    assert result.retries == len(world.clock.sleeps) > 3
    assert result.reason == "ThrottlingException: Rate exceeded"
    assert len(world.invoker.calls) == result.retries + 1
    # it stopped while one more attempt and the record write still fitted
    assert world.clock.remaining() >= RESERVE_SECONDS
    assert world.stored(target.inference_id).status == Status.PENDING


def test_too_little_time_left_defers_without_claiming(world: World) -> None:
    world.clock.budget_seconds = MINIMUM_START_SECONDS - 0.5
    target = world.upload("a.json")
    assert submit(world, target).outcome is Outcome.DEFERRED
    assert world.store.get(target.inference_id) is None
    assert world.invoker.calls == []


def test_a_short_budget_still_makes_one_attempt_but_no_retries(world: World) -> None:
    world.clock.budget_seconds = RESERVE_SECONDS - 1
    submitted, throttled = world.upload("a.json"), world.upload("b.json")
    world.invoker.always("b.json", throttling())
    assert submit(world, submitted).outcome is Outcome.SUBMITTED
    assert submit(world, throttled) == SubmitResult(
        Outcome.DEFERRED, throttled.inference_id, 0, "ThrottlingException: Rate exceeded"
    )
    assert world.clock.sleeps == []


def test_an_unexpected_error_propagates_for_the_message_retry(world: World) -> None:
    target = world.upload("a.json")
    world.invoker.always("a.json", client_error("AccessDeniedException", 403, "not authorized"))
    with pytest.raises(ClientError, match="AccessDeniedException"):
        submit(world, target)
    assert len(world.invoker.calls) == 1


def test_a_result_recorded_before_the_submitted_write_is_not_overwritten(world: World) -> None:
    target = world.upload("a.json")
    completed_at = format_timestamp(START + timedelta(seconds=1))

    def result_arrives_first(request: InvocationRequest) -> None:
        world.store.record_outcome(
            InferenceRecord(
                inference_id=request.inference_id,
                status=Status.COMPLETED,
                completed_at=completed_at,
                updated_at=completed_at,
                output_location="s3://output-bucket/results/fast.out",
            )
        )

    world.invoker.script("a.json", result_arrives_first)
    assert submit(world, target).outcome is Outcome.SUBMITTED
    record = world.stored(target.inference_id)
    assert record.status == Status.COMPLETED
    assert record.output_location == "s3://output-bucket/results/fast.out"
    assert record.content_type == "application/json"  # back-filled by the ingest write
    assert record.custom_attributes == f"trace_id={TRACE}"


def test_an_overwritten_version_goes_inline_with_its_own_bytes(world: World) -> None:
    """Issue 14: a small version overwritten before submission is still sent, as its own
    bytes, with the content type and metadata stored with *that* version."""
    world.enable_versioning()
    old = world.upload("a/b.json", b'{"v": 1}', ContentType="application/json")
    new = world.upload("a/b.json", b'{"v": 22}', ContentType="text/plain")
    assert submit(world, old).outcome is Outcome.SUBMITTED
    assert submit(world, new).outcome is Outcome.SUBMITTED
    first, second = world.invoker.calls
    assert (first.inference_id, first.body, first.content_type) == (
        old.inference_id,
        b'{"v": 1}',
        "application/json",
    )
    assert (second.inference_id, second.body, second.content_type) == (
        new.inference_id,
        b'{"v": 22}',
        "text/plain",
    )
    assert first.input_location is None
    assert first.filename != second.filename
    assert first.output_path_extension == second.output_path_extension == "a"
    # The record keeps where the input is, whichever way its bytes travelled.
    assert world.stored(old.inference_id).input_location == f"s3://{INPUT_BUCKET}/a/b.json"


def test_an_inline_version_behind_a_delete_marker_is_still_submitted(world: World) -> None:
    world.enable_versioning()
    target = world.upload("marked.json")
    world.s3.delete_object(Bucket=INPUT_BUCKET, Key="marked.json")  # a delete marker
    assert submit(world, target).outcome is Outcome.SUBMITTED
    assert world.invoker.calls[0].body == JSON_BODY


def test_an_inline_version_deleted_by_its_id_fails_at_ingest(world: World) -> None:
    world.enable_versioning()
    target = world.upload("gone.json")
    world.s3.delete_object(Bucket=INPUT_BUCKET, Key="gone.json", VersionId=target.version_id)
    assert submit(world, target).outcome is Outcome.REJECTED
    record = world.stored(target.inference_id)
    assert record.failure_stage == FailureStage.INGEST
    assert (record.failure_reason or "").startswith(
        "the object was deleted before it could be submitted"
    )
    assert world.invoker.calls == []


def test_a_large_input_goes_by_location_and_service_naming_sends_no_name(world: World) -> None:
    target = world.upload("a/big.json", b"1" * 200)
    submitter = world.submitter(inline_input_max_bytes=100, output_naming="service")
    assert submit(world, target, submitter).outcome is Outcome.SUBMITTED
    (call,) = world.invoker.calls
    assert call.input_location == f"s3://{INPUT_BUCKET}/a/big.json"
    assert (call.body, call.output_path_extension, call.filename) == (None, None, None)


def test_the_record_keeps_the_output_location_the_response_names(world: World) -> None:
    target = world.upload("a/b/c.json")
    assert submit(world, target).outcome is Outcome.SUBMITTED
    record = world.stored(target.inference_id)
    assert record.output_location is not None
    assert record.output_location.startswith("s3://output-bucket/results/")
