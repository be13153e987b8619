"""`reconcile` and `backfill`: the input bucket's versions against the table, exit codes, and a
backfill that takes the pipeline's own exactly-once path."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from asyncinfer.cli.access.versions import ObjectVersion as ListedVersion
from asyncinfer.cli.app import app
from asyncinfer.cli.commands import reconcile_findings as findings_module
from asyncinfer.cli.errors import ExitCode
from lambdas.common.clock import format_timestamp, parse_timestamp
from lambdas.common.contract import StackOutput
from lambdas.common.records import InferenceRecord, Status, inference_id_for
from lambdas.common.store import RecordStore
from lambdas.ingest import handler as ingest_handler
from lambdas.ingest.clients import S3InputReader, S3ObjectInspector
from lambdas.ingest.events import ObjectVersion, S3EventNotification, parse_notification
from lambdas.ingest.logic import Outcome, Submitter
from tests.unit.cli.conftest import Invoke, Pipeline, create_stack
from tests.unit.ingest.conftest import make_config
from tests.unit.ingest.support import FakeInvoker, ManualClock


@pytest.fixture(autouse=True)
def judge_every_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's versions are seconds old: judge them anyway (one test restores the default)."""
    monkeypatch.setattr(findings_module, "RECENT", timedelta(0))


def upload(pipeline: Pipeline, key: str, body: bytes = b'{"x": 1}') -> dict[str, Any]:
    response = pipeline.s3.put_object(Bucket=pipeline.bucket, Key=key, Body=body)
    return {
        "key": key,
        "version_id": response["VersionId"],
        "etag": response["ETag"].strip('"'),
        "id": inference_id_for(pipeline.bucket, key, response["VersionId"], response["ETag"]),
    }


def record(
    store: RecordStore,
    pipeline: Pipeline,
    version: dict[str, Any],
    status: Status,
    *,
    age: timedelta = timedelta(0),
    inference_id: str | None = None,
) -> None:
    """A record written through the store's conditional writes, last updated ``age`` ago."""
    stamp = format_timestamp(datetime.now(UTC) - age)
    claim = InferenceRecord(
        inference_id=inference_id or version["id"],
        status=Status.PENDING,
        input_location=f"s3://{pipeline.bucket}/{version['key']}",
        input_bucket=pipeline.bucket,
        input_key=version["key"],
        input_version=version["version_id"],
        created_at=stamp,
        updated_at=stamp,
    )
    epoch = int(datetime.now(UTC).timestamp())
    assert store.claim(claim, token="t", lease_until=epoch + 60, now=epoch).owned
    if status == Status.PENDING:
        return
    submitted = claim.model_copy(update={"status": Status.SUBMITTED, "submitted_at": stamp})
    assert store.mark_submitted(submitted, token="t")
    if status == Status.SUBMITTED:
        return
    outcome = submitted.model_copy(update={"status": status, "completed_at": stamp})
    assert store.record_outcome(outcome) is not None


def test_every_version_with_one_finished_record_is_ok(cli: Invoke, pipeline: Pipeline) -> None:
    versions = [upload(pipeline, "in/a.json"), upload(pipeline, "in/a.json", b"2")]
    versions.append(upload(pipeline, "in/b.json"))
    for version in versions:
        record(pipeline.store, pipeline, version, Status.COMPLETED)

    result = cli("reconcile")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "OK: 3 versions checked (0 too recent to judge): 0 without a record, 0 overdue, "
        "0 with more than one record"
    )


def test_missing_overdue_and_duplicate_records_are_reported_and_exit_1(
    cli: Invoke, pipeline: Pipeline
) -> None:
    missing = upload(pipeline, "in/missing.json")
    stuck = upload(pipeline, "in/stuck.json")
    record(pipeline.store, pipeline, stuck, Status.SUBMITTED, age=timedelta(hours=7))
    twice = upload(pipeline, "in/twice.json")
    record(pipeline.store, pipeline, twice, Status.COMPLETED)
    record(pipeline.store, pipeline, twice, Status.FAILED, inference_id="e" * 64)
    fresh = upload(pipeline, "in/fresh.json")
    record(pipeline.store, pipeline, fresh, Status.SUBMITTED, age=timedelta(hours=6))

    result = cli("reconcile", "--json")

    assert result.exit_code == 1, result.stderr
    document = json.loads(result.stdout)
    assert (document["ok"], document["versions_checked"]) == (False, 4)
    found = {(f["problem"], f["input_location"]): f for f in document["findings"]}
    assert set(found) == {
        ("missing", "s3://input-bucket/in/missing.json"),
        ("overdue", "s3://input-bucket/in/stuck.json"),
        ("duplicate", "s3://input-bucket/in/twice.json"),
    }
    assert found["missing", "s3://input-bucket/in/missing.json"]["inference_ids"] == [missing["id"]]
    assert (
        found["missing", "s3://input-bucket/in/missing.json"]["version_id"]
        == (missing["version_id"])
    )
    assert sorted(found["duplicate", "s3://input-bucket/in/twice.json"]["inference_ids"]) == sorted(
        [twice["id"], "e" * 64]
    )
    assert "deadline" in found["overdue", "s3://input-bucket/in/stuck.json"]["detail"]


def test_the_table_view_ends_with_the_summary_line(cli: Invoke, pipeline: Pipeline) -> None:
    upload(pipeline, "in/missing.json")

    result = cli("reconcile")

    assert result.exit_code == 1
    assert "in/missing.json" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("NOT OK: 1 versions checked")
    assert "1 without a record" in result.stdout


def test_an_overdue_record_whose_object_is_gone_is_found_through_the_status_index(
    cli: Invoke, pipeline: Pipeline
) -> None:
    gone = upload(pipeline, "in/gone.json")
    record(pipeline.store, pipeline, gone, Status.PENDING, age=timedelta(days=20))
    pipeline.s3.delete_object(
        Bucket=pipeline.bucket, Key="in/gone.json", VersionId=gone["version_id"]
    )

    result = cli("reconcile", "--json")

    assert result.exit_code == 1
    (finding,) = json.loads(result.stdout)["findings"]
    assert (finding["problem"], finding["inference_ids"]) == ("overdue", [gone["id"]])


def test_prefix_and_since_narrow_the_check(cli: Invoke, pipeline: Pipeline) -> None:
    upload(pipeline, "elsewhere/missing.json")
    checked = upload(pipeline, "in/a.json")
    record(pipeline.store, pipeline, checked, Status.COMPLETED)

    assert cli("reconcile", "--prefix", "in/").exit_code == 0
    assert cli("reconcile", "--since", "2999-01-01").exit_code == 0
    assert cli("reconcile", "--since", "1h").exit_code == 1


def test_versions_younger_than_s3_event_delivery_are_not_judged(
    cli: Invoke, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(findings_module, "RECENT", timedelta(minutes=15))
    upload(pipeline, "in/just-now.json")

    result = cli("reconcile", "--json")

    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert (document["versions_checked"], document["too_recent"]) == (0, 1)


def test_min_age_judges_young_versions_on_request(
    cli: Invoke, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(findings_module, "RECENT", timedelta(minutes=15))
    upload(pipeline, "in/just-now.json")

    result = cli("reconcile", "--min-age", "0s", "--json")

    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert (document["versions_checked"], document["too_recent"]) == (1, 0)
    assert document["without_record"] == 1
    assert cli("reconcile", "--min-age", "1h").exit_code == 0
    assert cli("reconcile", "--min-age", "soon").exit_code == ExitCode.USAGE


def sent_messages(pipeline: Pipeline) -> list[dict[str, Any]]:
    response = pipeline.sqs.receive_message(
        QueueUrl=pipeline.outputs["IngestQueueUrl"], MaxNumberOfMessages=10
    )
    return [json.loads(message["Body"]) for message in response.get("Messages", [])]


def test_backfill_sends_s3_events_that_ingest_reads_as_the_same_versions(
    cli: Invoke, pipeline: Pipeline
) -> None:
    first = upload(pipeline, "in/red flower.json")
    second = upload(pipeline, "in/red flower.json", b"again")
    recorded = upload(pipeline, "in/b.json")
    record(pipeline.store, pipeline, recorded, Status.COMPLETED)

    result = cli("backfill")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "sent 2, skipped 1 (already recorded or too recent), failed 0"
    bodies = sent_messages(pipeline)
    targets = []
    for body in bodies:
        (s3_record,) = body["Records"]
        assert s3_record["eventName"] == "ObjectCreated:Put"
        assert s3_record["s3"]["object"]["key"] == "in/red+flower.json"  # URL-encoded, as S3 does
        parsed = parse_notification(body)
        assert isinstance(parsed, S3EventNotification)
        targets.append(ObjectVersion.from_record(parsed.records[0]))
    assert {target.inference_id for target in targets} == {first["id"], second["id"]}
    assert {target.version_id for target in targets} == {first["version_id"], second["version_id"]}


def test_backfill_twice_sends_nothing_twice(cli: Invoke, pipeline: Pipeline) -> None:
    versions = [upload(pipeline, f"in/{name}.json") for name in ("a", "b")]
    assert cli("backfill").exit_code == 0
    for version in versions:  # ingest claims what the backfill sent
        record(pipeline.store, pipeline, version, Status.PENDING)

    again = cli("backfill")

    assert again.exit_code == 0
    assert again.stdout.strip() == "sent 0, skipped 2 (already recorded or too recent), failed 0"
    assert len(sent_messages(pipeline)) == 2


def test_backfill_dry_run_sends_nothing(cli: Invoke, pipeline: Pipeline) -> None:
    upload(pipeline, "in/a.json")

    result = cli("backfill", "--dry-run")

    assert result.exit_code == 0
    assert (
        result.stdout.strip()
        == "would send 1, skipped 0 (already recorded or too recent), failed 0"
    )
    assert "would send s3://input-bucket/in/a.json" in result.stderr
    assert sent_messages(pipeline) == []


def test_an_unversioned_object_is_sent_without_a_version_id() -> None:
    version = ListedVersion(
        bucket="input-bucket",
        key="a b.json",
        version_id="null",
        etag="abc",
        size=3,
        last_modified=datetime(2026, 11, 21, tzinfo=UTC),
    )
    body = json.loads(
        findings_module.s3_event(version, region="us-east-1", now=version.last_modified)
    )
    assert body["Records"][0]["s3"]["object"] == {"key": "a+b.json", "size": 3, "eTag": "abc"}
    parsed = parse_notification(body)
    assert isinstance(parsed, S3EventNotification)
    assert ObjectVersion.from_record(parsed.records[0]).inference_id == version.inference_id


def test_backfilling_twice_before_ingest_runs_still_invokes_each_version_once(
    cli: Invoke, pipeline: Pipeline
) -> None:
    versions = [upload(pipeline, f"in/{name}.json") for name in ("a", "b")]
    assert cli("backfill").exit_code == 0
    assert cli("backfill").exit_code == 0  # ingest has not run yet: sent again
    response = pipeline.sqs.receive_message(
        QueueUrl=pipeline.outputs["IngestQueueUrl"], MaxNumberOfMessages=10
    )
    bodies = [message["Body"] for message in response["Messages"]]
    assert len(bodies) == 4
    clock, invoker = ManualClock(), FakeInvoker()
    submitter = Submitter(
        config=make_config(),
        store=pipeline.store,
        inspector=S3ObjectInspector(pipeline.s3),
        reader=S3InputReader(pipeline.s3),
        invoker=invoker,
        logger=ingest_handler.logger,
        clock=clock.now,
        sleep=clock.sleep,
    )
    outcomes = []
    for body in bodies:
        parsed = parse_notification(body)
        assert isinstance(parsed, S3EventNotification)
        target = ObjectVersion.from_record(parsed.records[0])
        result = submitter.submit(target, trace_id="1-abc", remaining_seconds=clock.remaining)
        outcomes.append(result.outcome)

    assert sorted(outcomes) == sorted([Outcome.SUBMITTED] * 2 + [Outcome.DUPLICATE] * 2)
    assert sorted(call.inference_id for call in invoker.calls) == sorted(v["id"] for v in versions)


def test_overdue_is_judged_by_the_stacks_deadlines_not_the_defaults(
    cli: Invoke, pipeline: Pipeline
) -> None:
    """A stack with short deadlines (its ``ReconcileDeadlines`` output) makes a record that
    was submitted 10 minutes ago overdue; by the defaults (6 h 15 min + 30 min) it is not."""
    stuck = upload(pipeline, "in/stuck.json")
    record(pipeline.store, pipeline, stuck, Status.SUBMITTED, age=timedelta(minutes=10))
    assert cli("reconcile").exit_code == 0  # a stack without the output: the defaults

    short = {"REQUEST_TTL_SECONDS": "60", "INVOCATION_TIMEOUT_SECONDS": "60"}
    short["SUBMITTED_MARGIN_SECONDS"] = "60"
    create_stack(pipeline.outputs | {StackOutput.RECONCILE_DEADLINES: json.dumps(short)}, "Short")
    result = CliRunner().invoke(app, ["--stack", "Short", "reconcile", "--json"])

    assert result.exit_code == 1, result.stdout
    (finding,) = json.loads(result.stdout)["findings"]
    assert (finding["problem"], finding["inference_ids"]) == ("overdue", [stuck["id"]])
    since, deadline = re.findall(r"\d{4}-\d\d-\d\dT[\d:.]+Z", finding["detail"])
    assert parse_timestamp(deadline) - parse_timestamp(since) == timedelta(seconds=180)
