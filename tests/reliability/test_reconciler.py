"""Lost notifications and expired requests, settled by the reconciler on its schedule; objects
written before the bucket notified anyone, brought in by ``backfill``; ``reconcile`` as the
judge before and after (issue 13).

The stack is synthesized with test-sized deadlines: RequestTTLSeconds 60 (the API minimum),
InvocationTimeoutSeconds 2, the reconciler's margin 2 s (``SUBMITTED_MARGIN_SECONDS``), and its
schedule (``rate(1 minute)`` from ``reconcile_every_minutes``) replaced locally by a 2 s period
(``LocalOptions.schedule_period_seconds``): a record with no outcome is settled about 65 s
after its submission.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from asyncinfer.local.faults import FaultSettings
from lambdas.common.clock import format_timestamp
from lambdas.common.records import FailureStage, InferenceRecord, Status, inference_id_for
from tests.reliability.support import (
    IRIS_ROWS,
    MODEL_REJECTED_BODY,
    Harness,
    iris_csv,
    running_pipeline,
    s3_event,
    set_faults,
    summarized,
    wait_quiet,
    wait_terminal,
    wait_until,
)

pytestmark = pytest.mark.reliability

CONTEXT = {
    "request_ttl_seconds": "60",
    "invocation_timeout_seconds": "2",
    "reconcile_every_minutes": "1",
}
RECONCILER_ENVIRONMENT = {"reconciler": {"SUBMITTED_MARGIN_SECONDS": "2"}}
SCHEDULE_PERIOD_SECONDS = 2.0
KNOBS = {"drop_notification_rate": 0.1, "expire_rate": 0.1}
LEGACY_KNOBS = {"drop_notification_rate": 0.1, "expire_rate": 0.0}
FILES = 30  # of which every sixth is rejected by the model
LEGACY = 4  # uploaded while the bucket had no notification configuration


def body(number: int) -> bytes:
    return MODEL_REJECTED_BODY if number % 6 == 5 else iris_csv(IRIS_ROWS[number % 5])


@contextmanager
def notification_off(harness: Harness) -> Iterator[None]:
    """As if the block ran before the stack configured the bucket's notification."""
    saved = harness.s3.get_bucket_notification_configuration(Bucket=harness.bucket)
    kept = {k: v for k, v in saved.items() if k in ("QueueConfigurations", "TopicConfigurations")}
    assert kept, "the bucket notifies nobody: nothing to take away"
    harness.s3.put_bucket_notification_configuration(
        Bucket=harness.bucket, NotificationConfiguration={}
    )
    try:
        yield
    finally:
        harness.s3.put_bucket_notification_configuration(
            Bucket=harness.bucket, NotificationConfiguration=kept
        )


def strand(harness: Harness, key: str) -> str:
    """What an ingest attempt that crashed after its claim, on the message's last receive,
    leaves: a PENDING claim whose lease has passed, and the S3 event in the ingest dead-letter
    queue. Returns the inference id."""
    response = harness.s3.put_object(Bucket=harness.bucket, Key=key, Body=iris_csv(IRIS_ROWS[0]))
    version = response.get("VersionId")
    inference_id = inference_id_for(harness.bucket, key, version, response["ETag"])
    stamp = datetime.now(UTC) - timedelta(seconds=30)
    claim = InferenceRecord(
        inference_id=inference_id,
        status=Status.PENDING,
        input_location=f"s3://{harness.bucket}/{key}",
        input_bucket=harness.bucket,
        input_key=key,
        input_version=version,
        endpoint_name=harness.spec.endpoint.name,
        created_at=format_timestamp(stamp),
        updated_at=format_timestamp(stamp),
    )
    epoch = int(stamp.timestamp())
    assert harness.store.claim(claim, token="crashed", lease_until=epoch + 5, now=epoch).owned
    event = s3_event(
        harness.bucket,
        key,
        size=len(iris_csv(IRIS_ROWS[0])),
        version_id=version,
        region=harness.spec.region,
    )
    harness.sqs.send_message(
        QueueUrl=harness.spec.outputs["IngestDeadLetterQueueUrl"], MessageBody=json.dumps(event)
    )
    return inference_id


def settled(harness: Harness, count: int) -> None:
    """Until the runtime accepted ``count`` requests and finished them all."""
    wait_until(
        lambda: harness.runtime_stats["accepted"] >= count, timeout=60, what="the submissions"
    )
    assert harness.pipeline.runtime is not None
    assert harness.pipeline.runtime.wait_idle(30)


def runs_of_reconciler(harness: Harness) -> int:
    return harness.function_log("reconciler").count('"Reconciler run done"')


def test_lost_notifications_and_expired_requests_are_settled_by_the_reconciler(
    tmp_path: Path,
) -> None:
    with running_pipeline(
        tmp_path,
        context=CONTEXT,
        # the backfilled versions meet lost notifications only: each must end COMPLETED
        faults=FaultSettings(**LEGACY_KNOBS, seed=13),
        function_environment=RECONCILER_ENVIRONMENT,
        schedule_period_seconds=SCHEDULE_PERIOD_SECONDS,
    ) as harness:
        ids: list[str] = []
        with summarized(harness, ids, faults_injected=lambda: _faults(harness)):
            with notification_off(harness):
                legacy = [
                    harness.put(f"legacy/{n}.csv", iris_csv(IRIS_ROWS[n])) for n in range(LEGACY)
                ]
                stranded = strand(harness, "stranded/0.csv")
            ids.append(stranded)
            # Before backfill: the legacy objects have no record; `reconcile` says so.
            before = harness.cli("reconcile", "--min-age", "0s", "--json")
            assert before.returncode == 1, before.stdout + before.stderr
            problems = json.loads(before.stdout)["findings"]
            assert {p["inference_ids"][0] for p in problems} == set(legacy), problems
            assert {p["problem"] for p in problems} == {"missing"}

            backfill = harness.cli("backfill", "--min-age", "0s")
            assert backfill.returncode == 0, backfill.stdout + backfill.stderr
            assert backfill.stdout.strip().startswith(f"sent {LEGACY},"), backfill.stdout
            ids.extend(legacy)
            wait_until(
                lambda: all(r is not None for r in harness.records(legacy).values()),
                timeout=60,
                what="the backfilled versions to be claimed",
            )
            settled(harness, LEGACY)

            set_faults(harness, **KNOBS)
            rejected: set[str] = set()
            for number in range(FILES):
                inference_id = harness.put(f"reconcile/{number:03d}.csv", body(number))
                ids.append(inference_id)
                if number % 6 == 5:
                    rejected.add(inference_id)
            settled(harness, LEGACY + FILES)
            # Two more whose request expires and whose failure notification is lost: nothing
            # but the reconciler can ever settle them, and it finds no object: expired.
            set_faults(harness, drop_notification_rate=1.0, expire_rate=1.0)
            ids.extend(harness.put(f"lost/{n}.csv", iris_csv(IRIS_ROWS[n])) for n in range(2))
            settled(harness, LEGACY + FILES + 2)
            # The stranded version meets lost notifications only: it must end COMPLETED.
            set_faults(harness, **LEGACY_KNOBS)

            # A claim whose ingest message is dead-lettered stays PENDING however often the
            # reconciler runs (its message may still be redriven), and the redrive still works.
            runs = runs_of_reconciler(harness)
            wait_until(
                lambda: runs_of_reconciler(harness) > runs, timeout=30, what="a reconciler run"
            )
            record = harness.store.get(stranded)
            assert record is not None
            assert record.status == Status.PENDING
            ingest_dlq = harness.spec.outputs["IngestDeadLetterQueueUrl"]
            assert harness.redrive()[ingest_dlq] == 1

            records = wait_terminal(harness, ids, timeout=150)
            wait_quiet(harness, timeout=30)

            stats = harness.runtime_stats
            dropped = set(stats["dropped_notification_ids"])
            expired = set(stats["expired_inference_ids"])
            by_reconciler = harness.reconciler_settlements()
            assert len(dropped) >= 2
            assert len(expired) >= 2
            # exactly the records whose notification was lost were settled by the reconciler
            assert set(by_reconciler) & set(ids) == dropped & set(ids)
            for inference_id, record in records.items():
                if inference_id in expired:
                    assert record.status == Status.FAILED
                    stage = (
                        FailureStage.EXPIRED if inference_id in dropped else FailureStage.INFERENCE
                    )
                    assert record.failure_stage == stage, record
                elif inference_id in rejected:
                    assert record.status == Status.FAILED, record
                    assert record.failure_stage == FailureStage.INFERENCE, record
                else:
                    assert record.status == Status.COMPLETED, record
            assert all(records[i].status == Status.COMPLETED for i in legacy)
            assert records[stranded].status == Status.COMPLETED
            assert stats["duplicate_inference_ids"] == []
            assert len(harness.scan_items()) == len(ids)  # one record per file, no other
            assert sum(harness.dead_letter_depths().values()) == 0

            again = harness.cli("backfill", "--min-age", "0s")
            assert again.returncode == 0, again.stdout + again.stderr
            assert again.stdout.strip().startswith("sent 0,"), again.stdout
            after = harness.cli("reconcile", "--min-age", "0s")
            assert after.returncode == 0, after.stdout + after.stderr
            assert after.stdout.strip().splitlines()[-1].startswith("OK:"), after.stdout


def _faults(harness: Harness) -> int:
    """Notifications lost and requests expired, as the runtime counts them."""
    stats = harness.runtime_stats
    return stats["notifications_dropped"] + stats["expired"]
