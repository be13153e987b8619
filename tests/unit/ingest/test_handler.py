"""Whole invocations: real SQS and S3 event JSON through the handler's code path."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from lambdas.common.environment import ConfigError
from lambdas.common.records import InferenceRecord, Status
from lambdas.ingest import handler
from lambdas.ingest.batch import RetryLaterError
from lambdas.ingest.events import MalformedEventError
from lambdas.ingest.telemetry import Metric
from lambdas.ingest.values import InvocationRequest
from tests.conftest import REGION, TABLE_NAME
from tests.unit.ingest.conftest import ENDPOINT, INPUT_BUCKET, World, version_of
from tests.unit.ingest.support import (
    START,
    FakeLambdaContext,
    ManualClock,
    client_error,
    emf_documents,
    failed_ids,
    metric_values,
    notification,
    s3_record,
    s3_test_event,
    sqs_event,
    sqs_record,
    throttling,
)

Logs = Callable[[], list[dict[str, Any]]]


def batch(*records: dict[str, Any]) -> dict[str, Any]:
    """An SQS event with one message per S3 record."""
    return sqs_event(*(sqs_record(notification(record)) for record in records))


def test_a_batch_of_objects_is_submitted(world: World) -> None:
    keys = ["a.json", "deep/er/pre/fix/b c.csv", "plus+sign.txt", "100%.json", "été/日本.png"]
    records = [world.put(key, as_moto=index % 2 == 0) for index, key in enumerate(keys)]

    response, telemetry = world.invoke(batch(*records))

    assert response == {"batchItemFailures": []}
    assert sorted(world.invoker.key_of(call) for call in world.invoker.calls) == sorted(keys)
    assert len(world.ids_with_status(Status.SUBMITTED)) == len(keys)
    assert telemetry.counts[Metric.FILES_SUBMITTED] == len(keys)
    assert telemetry.counts[Metric.SUBMIT_FAILURES] == 0


def test_the_same_message_delivered_twice_in_one_batch_invokes_once(world: World) -> None:
    body = notification(world.put("a.json"))
    response, telemetry = world.invoke(sqs_event(sqs_record(body), sqs_record(body)))
    assert response == {"batchItemFailures": []}
    assert len(world.invoker.calls) == 1
    assert telemetry.counts[Metric.FILES_SUBMITTED] == 1
    assert telemetry.counts[Metric.DUPLICATES_SKIPPED] == 1


def test_the_same_object_in_two_messages_across_invocations_invokes_once(world: World) -> None:
    record = world.put("a.json")
    world.invoke(batch(record))
    world.clock.next_invocation(after_seconds=30)
    response, telemetry = world.invoke(batch(record))
    assert response == {"batchItemFailures": []}
    assert len(world.invoker.calls) == 1
    assert telemetry.counts[Metric.DUPLICATES_SKIPPED] == 1
    assert telemetry.counts[Metric.FILES_SUBMITTED] == 0


def test_duplicates_in_a_batch_are_both_retried_when_the_first_needs_a_retry(
    world: World,
) -> None:
    world.clock.budget_seconds = 40
    record = world.put("a.json")
    first, second = sqs_record(notification(record)), sqs_record(notification(record))
    world.invoker.always("a.json", throttling())

    response, telemetry = world.invoke(sqs_event(first, second))

    assert failed_ids(response) == {first["messageId"], second["messageId"]}
    assert telemetry.counts[Metric.SUBMIT_FAILURES] == 1
    assert telemetry.counts[Metric.SUBMIT_RETRIES] >= 1
    assert telemetry.counts[Metric.DUPLICATES_SKIPPED] == 0
    assert {call.inference_id for call in world.invoker.calls} == {version_of(record).inference_id}


def test_a_mixed_batch_fails_only_the_messages_that_need_a_retry(world: World, logs: Logs) -> None:
    world.clock.budget_seconds = 40
    good = sqs_record(notification(world.put("good.json")))
    invalid = sqs_record(notification(world.put("invalid.json")))
    throttled = sqs_record(notification(world.put("throttled.json")))
    foreign = sqs_record(notification(s3_record("someone-elses-bucket", "x.json")))
    malformed = sqs_record("this is not an S3 event {")
    world.invoker.always("invalid.json", client_error("ValidationError", 400, "bad type"))
    world.invoker.always("throttled.json", throttling())

    response, telemetry = world.invoke(sqs_event(good, invalid, throttled, foreign, malformed))

    assert failed_ids(response) == {throttled["messageId"], malformed["messageId"]}
    retries = telemetry.counts[Metric.SUBMIT_RETRIES]
    assert retries >= 1
    assert telemetry.counts == {
        Metric.FILES_SUBMITTED: 1,
        Metric.INGEST_REJECTED: 1,
        Metric.SUBMIT_FAILURES: 1,
        Metric.SUBMIT_RETRIES: retries,
    }
    assert telemetry.ignored_by_reason == {"foreign_bucket": 1}
    assert len(world.ids_with_status(Status.SUBMITTED)) == 1
    assert len(world.ids_with_status(Status.FAILED)) == 1
    assert len(world.ids_with_status(Status.PENDING)) == 1
    [logged] = [line for line in logs() if line["message"].startswith("malformed message")]
    assert logged["body"] == "this is not an S3 event {"  # for whoever reads the DLQ
    assert logged["message_id"] == malformed["messageId"]
    assert logged["level"] == "ERROR"


def test_a_message_with_several_records_fails_if_one_needs_a_retry(world: World) -> None:
    world.clock.budget_seconds = 40
    message = sqs_record(
        notification(world.put("one.json"), world.put("two.json"), world.put("three.json"))
    )
    world.invoker.always("two.json", throttling())

    response, telemetry = world.invoke(sqs_event(message))

    assert failed_ids(response) == {message["messageId"]}
    assert telemetry.counts[Metric.FILES_SUBMITTED] == 2
    assert telemetry.counts[Metric.SUBMIT_FAILURES] == 1

    # The redelivery after the visibility timeout submits only what is missing.
    world.invoker.recover("two.json")
    world.clock.next_invocation(after_seconds=6 * 60)
    calls_before = len(world.invoker.calls)
    response, telemetry = world.invoke(sqs_event(message))
    assert response == {"batchItemFailures": []}
    assert [world.invoker.key_of(call) for call in world.invoker.calls[calls_before:]] == [
        "two.json"
    ]
    assert telemetry.counts[Metric.FILES_SUBMITTED] == 1
    assert telemetry.counts[Metric.DUPLICATES_SKIPPED] == 2


def test_a_live_claim_makes_the_message_a_batch_item_failure(world: World) -> None:
    record = world.put("a.json")
    message = sqs_record(notification(record))
    epoch = int(START.timestamp())
    world.store.claim(
        InferenceRecord(inference_id=version_of(record).inference_id, status=Status.PENDING),
        token="a-concurrent-delivery",
        lease_until=epoch + 600,
        now=epoch,
    )

    response, telemetry = world.invoke(sqs_event(message))

    assert failed_ids(response) == {message["messageId"]}
    assert world.invoker.calls == []
    assert telemetry.counts[Metric.SUBMIT_FAILURES] == 0  # nothing failed: someone else has it


@pytest.mark.parametrize(
    ("record", "config", "reason"),
    [
        (s3_record(INPUT_BUCKET, "folder/", size=0), {}, "folder_marker"),
        (s3_record("foreign-bucket", "a.json"), {}, "foreign_bucket"),
        (s3_record(INPUT_BUCKET, "other/a.json"), {"key_prefixes": ["in/"]}, "key_filtered"),
        (s3_record(INPUT_BUCKET, "in/a.png"), {"key_suffixes": [".json"]}, "key_filtered"),
        (
            s3_record(INPUT_BUCKET, "a.json", event_name="ObjectRemoved:Delete"),
            {},
            "not_object_created",
        ),
    ],
)
def test_ignored_records_are_counted_by_reason_and_never_fail(
    world: World, record: dict[str, Any], config: dict[str, Any], reason: str
) -> None:
    response, telemetry = world.invoke(batch(record), **config)
    assert response == {"batchItemFailures": []}
    assert telemetry.ignored_by_reason == {reason: 1}
    assert world.invoker.calls == []


def test_the_s3_test_event_is_ignored_in_a_batch_and_directly(world: World) -> None:
    response, telemetry = world.invoke(sqs_event(sqs_record(s3_test_event(INPUT_BUCKET))))
    assert response == {"batchItemFailures": []}
    assert telemetry.ignored_by_reason == {"test_event": 1}

    response, telemetry = world.invoke(s3_test_event(INPUT_BUCKET))
    assert response is None
    assert telemetry.ignored_by_reason == {"test_event": 1}
    assert world.invoker.calls == []


def test_a_direct_s3_event_is_processed_and_raises_only_after_all_records(world: World) -> None:
    world.clock.budget_seconds = 40
    event = notification(
        world.put("a.json"), world.put("b.json", as_moto=True), world.put("c.json")
    )
    world.invoker.always("b.json", throttling())

    with pytest.raises(RetryLaterError, match="1 object version"):
        world.invoke(event)
    submitted = {world.invoker.key_of(call) for call in world.invoker.calls}
    assert submitted == {"a.json", "b.json", "c.json"}

    # Lambda's asynchronous retry delivers the same event again.
    world.invoker.recover("b.json")
    world.clock.next_invocation(after_seconds=60)
    response, telemetry = world.invoke(event)
    assert response is None
    assert telemetry.counts[Metric.DUPLICATES_SKIPPED] == 2
    assert telemetry.counts[Metric.FILES_SUBMITTED] == 1


def test_unsupported_events_are_rejected_as_a_whole(world: World) -> None:
    with pytest.raises(MalformedEventError):
        world.invoke({"Records": [{"eventSource": "aws:kinesis"}]})
    with pytest.raises(MalformedEventError, match="not an S3 event notification"):
        world.invoke({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]})


def test_a_batch_is_submitted_concurrently(world: World) -> None:
    # Ten calls can only all reach the barrier if they are in flight at the same time.
    barrier = threading.Barrier(10, timeout=10)

    def wait_for_all(_: InvocationRequest) -> None:
        barrier.wait()

    world.invoker.before_each = wait_for_all
    records = [world.put(f"{index}.json") for index in range(10)]
    response, telemetry = world.invoke(batch(*records), submit_concurrency=10)
    assert response == {"batchItemFailures": []}
    assert telemetry.counts[Metric.FILES_SUBMITTED] == 10


def test_concurrency_is_bounded_by_submit_concurrency(world: World) -> None:
    lock = threading.Lock()
    in_flight = 0
    peak = 0
    barrier = threading.Barrier(3, timeout=10)

    def track(_: InvocationRequest) -> None:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        barrier.wait()  # groups of three are in flight together
        with lock:
            in_flight -= 1

    world.invoker.before_each = track
    records = [world.put(f"{index}.json") for index in range(9)]
    response, _ = world.invoke(batch(*records), submit_concurrency=3)
    assert response == {"batchItemFailures": []}
    assert peak == 3


def test_the_happy_path_logs_nothing_at_info(world: World, logs: Logs) -> None:
    """The records and the FilesSubmitted metric say it all; a line per file would cost more
    than everything else the function logs."""
    response, _ = world.invoke(batch(*(world.put(f"k{index}.json") for index in range(3))))
    assert response == {"batchItemFailures": []}
    assert logs() == []


def test_log_lines_carry_their_own_objects_keys_under_concurrency(world: World, logs: Logs) -> None:
    records = [world.put(f"k{index}.json") for index in range(8)]
    expected = {
        version_of(record).input_location: version_of(record).inference_id for record in records
    }
    previous = handler.logger.log_level
    handler.logger.setLevel("DEBUG")  # the per-file lines are DEBUG
    try:
        world.invoke(batch(*records))
    finally:
        handler.logger.setLevel(previous)
    lines = logs()
    submitted = [line for line in lines if line["message"] == "submitted"]
    assert len(submitted) == 8
    for line in submitted:
        assert line["inference_id"] == expected[line["input_location"]]
        assert line["correlation_id"] == line["inference_id"]
    # the keys belong to each submission's thread context, not to the invocation
    assert len({line.get("inference_id") for line in lines}) == 8


def test_the_xray_trace_id_goes_into_the_custom_attributes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-6740a1b2-aaaabbbbccccdddd00001111;Sampled=1")
    world.invoke(batch(world.put("a.json")))
    monkeypatch.delenv("_X_AMZN_TRACE_ID")
    untraced = world.put("b.json")
    world.invoke(batch(untraced))
    attributes = {
        world.invoker.key_of(call): call.custom_attributes for call in world.invoker.calls
    }
    assert attributes["a.json"] == "trace_id=1-6740a1b2-aaaabbbbccccdddd00001111"
    assert attributes["b.json"] == (f"trace_id={version_of(untraced).inference_id}")


# --- the deployed entry point, wired from the environment ----------------------------------


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch, world: World) -> Iterator[World]:
    for name, value in {
        "TABLE_NAME": TABLE_NAME,
        "ENDPOINT_NAME": ENDPOINT,
        "INPUT_BUCKET": INPUT_BUCKET,
        "CUSTOM_ATTRIBUTES": '{"source": "unit-test"}',
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    handler.runtime.cache_clear()
    yield world
    if handler.runtime.cache_info().currsize:
        handler.runtime().executor.shutdown(wait=True)
    handler.runtime.cache_clear()


def test_the_lambda_entry_point_submits_through_boto3_and_publishes_metrics(
    deployed: World, capsys: pytest.CaptureFixture[str]
) -> None:
    record = deployed.put("a.json")
    ignored = s3_record(INPUT_BUCKET, "folder/", size=0)
    context = cast("Any", FakeLambdaContext(ManualClock()))

    response = handler.handler(batch(record, ignored), context)

    assert response == {"batchItemFailures": []}
    stored = deployed.stored(version_of(record).inference_id)
    assert stored.status == Status.SUBMITTED
    assert stored.output_location  # from moto's InvokeEndpointAsync response
    assert stored.custom_attributes is not None
    assert stored.custom_attributes.startswith("source=unit-test,trace_id=")
    documents = emf_documents(capsys.readouterr().out)
    assert metric_values(documents, "FilesSubmitted") == [1.0]
    for metric in ("DuplicatesSkipped", "IngestRejected", "SubmitRetries", "SubmitFailures"):
        assert metric_values(documents, metric) == [0.0]
    [ignored_document] = [document for document in documents if "EventsIgnored" in document]
    assert ignored_document["reason"] == "folder_marker"
    assert metric_values([ignored_document], "EventsIgnored") == [1.0]
    [directive] = ignored_document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "AsyncInference"
    assert "reason" in directive["Dimensions"][0]


def test_the_entry_point_refuses_an_invalid_environment_naming_the_variable(
    deployed: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INVOCATION_TIMEOUT_SECONDS", "7200")
    context = cast("Any", FakeLambdaContext(ManualClock()))
    with pytest.raises(ConfigError, match="INVOCATION_TIMEOUT_SECONDS"):
        handler.handler(batch(deployed.put("a.json")), context)


def test_an_unexpected_error_fails_only_its_message(world: World, logs: Logs) -> None:
    healthy = sqs_record(notification(world.put("healthy.json")))
    denied = sqs_record(notification(world.put("denied.json")))
    world.invoker.always("denied.json", client_error("AccessDeniedException", 403, "no"))

    response, telemetry = world.invoke(sqs_event(healthy, denied))

    assert failed_ids(response) == {denied["messageId"]}
    assert telemetry.counts[Metric.FILES_SUBMITTED] == 1
    assert telemetry.counts[Metric.SUBMIT_FAILURES] == 1
    [logged] = [line for line in logs() if line["message"].startswith("submission failed")]
    assert logged["level"] == "ERROR"
    assert "AccessDeniedException" in logged["exception"]
    assert logged["input_location"] == f"s3://{INPUT_BUCKET}/denied.json"


class DeniedReads:
    """An S3 client whose GetObject answers 403, as S3 does for a caller without
    ``s3:GetObjectVersion`` (or, for a missing key, without ``s3:ListBucket``)."""

    def __init__(self, client: Any, code: str) -> None:
        self._client = client
        self._code = code

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_object(self, **_: Any) -> Any:
        raise client_error(self._code, 403, "Access Denied", "GetObject")


@pytest.mark.parametrize("code", ["AccessDenied", "403"])
def test_a_denied_inline_read_is_retried_not_failed(world: World, code: str) -> None:
    world.enable_versioning()
    record = world.put("small.json")  # small: its bytes are read and sent inline
    message = sqs_record(notification(record))
    world.s3 = DeniedReads(world.s3, code)

    response, _ = world.invoke(sqs_event(message))

    assert failed_ids(response) == {message["messageId"]}  # back on the queue: a retry
    assert world.invoker.calls == []
    [stored] = world.ids_with_status(Status.PENDING)
    assert world.stored(stored).failure_reason is None
    assert world.ids_with_status(Status.FAILED) == set()


def test_a_record_naming_no_version_makes_its_message_malformed(world: World, logs: Logs) -> None:
    nameless = s3_record(INPUT_BUCKET, "a.json", etag=None)
    message = sqs_record(notification(world.put("b.json"), nameless))

    response, _ = world.invoke(sqs_event(message))

    assert failed_ids(response) == {message["messageId"]}
    assert world.invoker.calls == []  # nothing of the message was half-done
    [logged] = [line for line in logs() if line["message"].startswith("malformed message")]
    assert "neither a version id nor an ETag" in logged["error"]
