"""`watch --once`: counts, rates, latency percentiles and queue depths of one snapshot."""

from __future__ import annotations

import json
import types
from datetime import UTC, datetime, timedelta

import pytest

from asyncinfer.cli.commands.watch_stats import percentile, summarize
from lambdas.common.clock import format_timestamp
from lambdas.common.contract import status_shard
from lambdas.common.records import InferenceRecord, Status
from tests.unit.cli.conftest import Invoke, Pipeline, one_line_error


def recent(seconds_ago: float) -> str:
    return format_timestamp(datetime.now(UTC) - timedelta(seconds=seconds_ago))


def write(pipeline: Pipeline, record: InferenceRecord) -> None:
    """Straight to the table: the window is relative to the real clock."""
    if record.completed_at:
        assert pipeline.store.record_outcome(record) is not None
    else:
        # the status index's keys, as the store's claim writes them (layout 2)
        attributes = record.attributes() | {
            "status_shard": status_shard(record.inference_id, str(record.status)),
            "status_time": record.created_at or record.updated_at or "",
        }
        pipeline.dynamodb.put_item(
            TableName="results",
            Item={name: {"S": str(value)} for name, value in attributes.items()},
        )


@pytest.fixture
def busy(pipeline: Pipeline) -> Pipeline:
    # Four completed in the last half minute with 1..4 s end to end, one failed, two in flight.
    for index in range(1, 5):
        write(
            pipeline,
            InferenceRecord(
                inference_id=f"{index}" * 64,
                status=Status.COMPLETED,
                submitted_at=recent(30),
                completed_at=recent(30 - index),
                updated_at=recent(30 - index),
                latency_ms=index * 100,
            ),
        )
    write(
        pipeline,
        InferenceRecord(
            inference_id="f" * 64,
            status=Status.FAILED,
            submitted_at=recent(20),
            completed_at=recent(10),
            updated_at=recent(10),
            failure_reason="bad",
        ),
    )
    for letter in "ab":
        write(
            pipeline,
            InferenceRecord(
                inference_id=letter * 64,
                status=Status.SUBMITTED,
                submitted_at=recent(5),
                updated_at=recent(5),
            ),
        )
    # An old completion outside the 15-minute window counts nowhere.
    write(
        pipeline,
        InferenceRecord(
            inference_id="0" * 64,
            status=Status.COMPLETED,
            submitted_at=recent(7200),
            completed_at=recent(7100),
            updated_at=recent(7100),
            latency_ms=99_000,
        ),
    )
    for _ in range(3):
        pipeline.sqs.send_message(QueueUrl=pipeline.outputs["IngestQueueUrl"], MessageBody="{}")
    pipeline.sqs.send_message(
        QueueUrl=pipeline.outputs["ErrorDeadLetterQueueUrl"], MessageBody="{}"
    )
    return pipeline


def test_once_json_snapshot(cli: Invoke, busy: Pipeline) -> None:
    result = cli("watch", "--once", "--json", "--rate-window", "1m")

    assert result.exit_code == 0, result.output
    snapshot = json.loads(result.stdout)
    assert snapshot["counts"] == {"PENDING": 0, "SUBMITTED": 2, "COMPLETED": 4, "FAILED": 1}
    assert snapshot["end_to_end_ms"]["samples"] == 4
    assert snapshot["end_to_end_ms"]["p50"] == pytest.approx(2000, abs=5)
    assert snapshot["end_to_end_ms"]["p95"] == pytest.approx(4000, abs=5)
    assert snapshot["inference_ms"] == {"p50": 200.0, "p95": 400.0, "samples": 4}
    assert snapshot["submitted_per_second"] == pytest.approx(7 / 60)
    assert snapshot["completed_per_second"] == pytest.approx(5 / 60)
    depths = {queue["name"]: queue["visible"] for queue in snapshot["queues"]}
    assert depths == {
        "ingest": 3,
        "ingest DLQ": 0,
        "success DLQ": 0,
        "error DLQ": 1,
        "results failures": 0,
    }
    assert snapshot["dead_letters"] == 1


def test_once_human_view(cli: Invoke, busy: Pipeline) -> None:
    result = cli("watch", "--once")

    assert result.exit_code == 0, result.output
    for text in ("COMPLETED", "p50 2.00 s", "p95 4.00 s", "error DLQ", "ingest"):
        assert text in result.stdout


def test_json_without_once_is_a_usage_error(offline_cli: Invoke) -> None:
    result = offline_cli("watch", "--json")

    assert result.exit_code == 252
    assert one_line_error(result) == "--json needs --once"


def test_bad_window_is_a_usage_error(offline_cli: Invoke) -> None:
    result = offline_cli("watch", "--once", "--window", "forever")

    assert result.exit_code == 252
    assert "invalid --window 'forever'" in one_line_error(result)


def test_percentile_is_nearest_rank() -> None:
    values = [float(value) for value in range(1, 101)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile([7.0], 0.95) == 7.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


def test_rates_count_only_the_rate_window() -> None:
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    records = [
        InferenceRecord(
            inference_id=f"{index}",
            status=Status.COMPLETED,
            submitted_at=format_timestamp(now - timedelta(seconds=seconds)),
            completed_at=format_timestamp(now - timedelta(seconds=seconds - 1)),
        )
        for index, seconds in enumerate((5, 10, 50, 70, 300))
    ]

    snapshot = summarize(
        records,
        {},
        [],
        now=now,
        window=timedelta(minutes=15),
        rate_window=timedelta(seconds=60),
        sampled=False,
    )

    assert snapshot.submitted_per_second == pytest.approx(3 / 60)
    assert snapshot.completed_per_second == pytest.approx(3 / 60)
    assert snapshot.end_to_end_ms is not None
    assert snapshot.end_to_end_ms.samples == 5


def test_ctrl_c_exits_130_as_the_exit_status_table_says(
    cli: Invoke, busy: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(
        "asyncinfer.cli.commands.watch.time", types.SimpleNamespace(sleep=interrupted)
    )

    result = cli("watch", "--interval", "1")

    assert result.exit_code == 130
