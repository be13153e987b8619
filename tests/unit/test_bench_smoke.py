"""The benchmarks that need no server, in a tiny configuration, and the rules the cost model
and the figures follow. Nothing here is timed: values are checked for shape, not speed."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from bench import coldstart, cost
from bench.figures import Figure
from bench.micro.replay import RecordingClient, substituted


def test_a_figure_prints_as_one_line_with_its_goal_or_as_context() -> None:
    assert Figure("batch_latency_ratio", 1.8349, 3.0).line == (
        "bench: batch_latency_ratio=1.83 (goal <= 3.00)"
    )
    assert Figure("e2e_throughput", 21.44, unit=" files/s").line == (
        "bench: e2e_throughput=21.4 files/s (info)"
    )
    assert Figure("ratio", 1.3, 1.2).met is False
    assert Figure("ratio", 1.1, 1.2).met is True
    assert Figure("context", 5.0).met is None
    assert not Figure("broken", math.nan).well_formed
    with pytest.raises(ValueError, match="operator"):
        Figure("ratio", 1.0, 1.0, op="<")


def test_item_sizes_follow_dynamodb_rules() -> None:
    item = {
        "inference_id": {"S": "a" * 64},  # 12 + 64
        "input_size": {"N": "1234"},  # 10 + 1 + 2
        "expires_at": {"N": "1803014604"},  # 10 + 1 + 5 (ten digits)
        "flag": {"BOOL": True},  # 4 + 1
        "ü": {"S": "ü"},  # 2 + 2 (UTF-8 bytes)
    }
    assert cost.item_size(item) == 76 + 13 + 16 + 5 + 4
    assert cost.attribute_value_size({"N": "-0.0500"}) == 1 + 1  # "5" once zeros are trimmed
    with pytest.raises(ValueError, match="unsupported"):
        cost.attribute_value_size({"L": []})


def test_write_units_count_the_table_and_both_all_projection_indexes() -> None:
    # a new small item: table, by_input_location and by_status each take one unit
    assert cost.write_units(None, 500, status_changes=True) == 3
    # an update that changes status: table 1, by_input_location 1, by_status delete + put
    assert cost.write_units(500, 800, status_changes=True) == 4
    # the item grows past 1 KB: the table counts the larger image, index entries add 100 B
    assert cost.write_units(900, 1100, status_changes=True) == 2 + 2 + (1 + 2)
    assert cost.write_units(900, 1100, status_changes=False) == 2 + 2 + 2


def inputs(**overrides: Any) -> cost.Inputs:
    values: dict[str, Any] = {
        "batch_size": 10,
        "ingest_memory_mb": 512,
        "results_memory_mb": 256,
        "ingest_batch_ms": 120.2,
        "naive_file_ms": 60.0,
        "results_invocation_ms": 10.0,
        "ingest_log_bytes_per_file": 800.0,
        "results_log_bytes_per_invocation": 1000.0,
        "pending_item_bytes": 550,
        "submitted_item_bytes": 880,
        "completed_item_bytes": 1170,
        "naive_item_bytes": 370,
    }
    values.update(overrides)
    return cost.Inputs(**values)


def test_the_cost_model_charges_batches_once_and_files_once() -> None:
    mine, theirs = cost.ours(inputs()), cost.naive(inputs())
    assert mine.lambda_requests == pytest.approx(1.1)  # one ingest call per 10 files + results
    assert theirs.lambda_requests == 2
    assert mine.sqs_requests == pytest.approx(1.2)  # send per file, receive + delete per batch
    assert theirs.sqs_requests == 0
    # billed duration is rounded up to the millisecond: 121 ms at 0.5 GB per 10 files
    assert mine.lambda_gb_seconds == pytest.approx(0.121 * 0.5 / 10 + 0.010 * 0.25)
    rows = cost.table(inputs())
    ours, naive = cost.totals(rows)
    assert ours == pytest.approx(sum(row.ours_dollars for row in rows))
    dynamodb = next(row for row in rows if row.component == "DynamoDB writes")
    assert dynamodb.ours_dollars == pytest.approx(dynamodb.ours_per_file * 0.625)
    assert naive > 0


def test_larger_batches_make_the_pipeline_cheaper_per_file() -> None:
    small = cost.totals(cost.table(inputs(batch_size=1, ingest_batch_ms=60.0)))[0]
    large = cost.totals(cost.table(inputs(batch_size=10)))[0]
    assert large < small


def test_recorded_calls_replay_with_another_records_identity() -> None:
    class Client:
        def put_item(self, **arguments: Any) -> dict[str, Any]:
            return {"echo": arguments}

    recorder = RecordingClient(Client())
    arguments = {"Item": {"inference_id": {"S": "abc"}, "input_key": {"S": "in/abc.json"}}}
    assert recorder.put_item(**arguments) == {"echo": arguments}
    assert recorder.calls == [("put_item", arguments)]
    replayed = substituted(recorder.calls[0][1], {"abc": "xyz"})
    assert replayed == {"Item": {"inference_id": {"S": "xyz"}, "input_key": {"S": "in/xyz.json"}}}


def test_cold_imports_are_measured_from_the_packaged_assets(tmp_path: Path) -> None:
    measured = coldstart.measure(tmp_path, runs=1, profile_runs=1)
    for mode in coldstart.MODES:
        for module in coldstart.MODULES:
            assert measured.median(mode, module) > 0
        for function in coldstart.FUNCTIONS:
            assert measured.ratio(mode, function) > 0
    for mode in coldstart.PROFILED_MODES:
        for function in coldstart.FUNCTIONS:
            packages = dict(measured.profiles[(mode, function)])
            assert "pydantic" in packages  # imported by the handler, not by boto3
            assert "boto3" not in packages
    # tracing off builds no Tracer, so the X-Ray SDK is never imported
    assert "aws_xray_sdk" not in dict(measured.profiles[("tracing off", "ingest")])
    assert "aws_xray_sdk" in dict(measured.profiles[("tracing on", "ingest")])
    for function in coldstart.FUNCTIONS:
        assert measured.asset_bytes[function] > 1024
        assert measured.compile_seconds[function] > 0
