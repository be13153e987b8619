"""The benchmarks that need no server, in a tiny configuration, and the rules the cost model
and the figures follow. Nothing here is timed: values are checked for shape, not speed."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from bench import coldstart, cost, partitions
from bench.figures import Figure
from bench.measure import split
from bench.micro.replay import RecordingClient, substituted
from lambdas.common.contract import STATUS_SHARDS, shard_of


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


def test_a_figure_with_a_goal_is_its_worst_round_and_one_without_its_median() -> None:
    ratio = Figure.of_rounds("ratio", [1.1, 1.3, 1.0], 1.2)
    assert ratio.value == 1.3
    assert ratio.met is False  # two rounds of three meet it: not enough
    assert ratio.line == "bench: ratio=1.30 (goal <= 1.20)"
    assert ratio.spread == "1.00 / 1.10 / 1.30"
    assert Figure.of_rounds("rate", [3.0, 1.0, 2.0], 2.0, op=">=").value == 1.0
    assert Figure.of_rounds("context", [3.0, 1.0, 2.0]).value == 2.0
    assert Figure("once", 1.0).spread == "-"
    with pytest.raises(ValueError, match="no rounds"):
        Figure.of_rounds("empty", [])


def test_samples_split_into_consecutive_rounds() -> None:
    assert split([1, 2, 3, 4, 5, 6, 7], 3) == [[1, 2, 3], [4, 5], [6, 7]]
    assert split([1, 2], 2) == [[1], [2]]
    with pytest.raises(ValueError, match="rounds"):
        split([1], 2)


def test_xray_records_the_reservoir_then_five_percent_per_function() -> None:
    assert cost.traces_per_second(0.5) == 0.5
    assert cost.traces_per_second(1.0) == 1.0
    assert cost.traces_per_second(101.0) == pytest.approx(1.0 + 0.05 * 100)


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


def _s(text: str) -> dict[str, str]:
    return {"S": text}


def file_images(result_bytes: int = 400) -> list[tuple[str, dict[str, dict[str, str]]]]:
    """One file's three writes as the store makes them (layout 2 keys included)."""
    inference_id = "a" * 64
    shard = f"{shard_of(inference_id):02d}"
    common = {
        "inference_id": _s(inference_id),
        "input_location": _s("s3://in/x.json"),
        "created_at": _s("2026-11-30T10:00:00.000Z"),
        "status_time": _s("2026-11-30T10:00:00.000Z"),
    }
    claim = common | {
        "status": _s("PENDING"),
        "status_shard": _s(f"OPEN#{shard}"),
        "updated_at": _s("2026-11-30T10:00:00.000Z"),
        "claim_token": _s("t" * 36),
    }
    submitted = {k: v for k, v in claim.items() if k != "claim_token"} | {
        "status": _s("SUBMITTED"),
        "output_location": _s("s3://out/" + "o" * 300),
        "updated_at": _s("2026-11-30T10:00:00.100Z"),
    }
    completed = submitted | {
        "status": _s("COMPLETED"),
        "status_shard": _s(f"COMPLETED#{shard}"),
        "status_time": _s("2026-11-30T10:00:05.000Z"),
        "updated_at": _s("2026-11-30T10:00:05.000Z"),
        "result": _s("r" * result_bytes),
    }
    return [("claim", claim), ("SUBMITTED", submitted), ("outcome", completed)]


def test_layout_2_writes_each_index_only_when_its_keys_move() -> None:
    writes = partitions.sequence(file_images(), partitions.LAYOUT_2)
    claim, submitted, outcome = writes
    assert [w.table for w in writes] == [1, 1, 1]
    assert {n: w.total for n, w in claim.indexes.items()} == {
        "by_input_keys": 1,
        "by_status_shard": 1,
    }
    assert submitted.total == 1  # the table only: no key changes, keys-only projections
    # the outcome moves the status entry (a delete and a put), and leaves by_input_keys alone
    assert outcome.indexes["by_input_keys"].total == 0
    assert outcome.indexes["by_status_shard"].units == {
        f"OPEN#{shard_of('a' * 64):02d}": 1,
        f"COMPLETED#{shard_of('a' * 64):02d}": 1,
    }
    assert partitions.units_per_file(writes) == 3 + 1 + 3
    # a result that takes the item past 1 KB costs the table, never the keys-only indexes
    big = partitions.sequence(file_images(result_bytes=900), partitions.LAYOUT_2)
    assert big[2].table == 2
    assert big[2].total == outcome.total + 1


def test_the_outcome_image_of_the_benchmark_keeps_its_status_class() -> None:
    """The results benchmark completes a record of its own: its image takes the SUBMITTED
    record's identity and shard but keeps the outcome's class and time, so the status
    entry's move is counted (8 units per file, not the 6 of a record that never moved)."""
    _, (_, submitted), (_, completed) = file_images()
    other = completed | {"inference_id": _s("b" * 64)}
    other["status_shard"] = _s(f"COMPLETED#{shard_of('b' * 64):02d}")
    image = partitions.same_record(other, submitted)
    assert image["inference_id"] == submitted["inference_id"]
    assert image["status_shard"] == _s(f"COMPLETED#{shard_of('a' * 64):02d}")
    assert image["status_time"] == completed["status_time"]


def test_layout_1_copies_every_write_and_moves_by_status_each_time() -> None:
    writes = partitions.sequence(file_images(), partitions.LAYOUT_1)
    # by_input_location: put, update, update (ALL: the whole item, result included);
    # by_status: put, delete + put, delete + put
    assert [w.indexes["by_input_location"].total for w in writes] == [1, 1, 2]  # > 1 KB
    assert [w.indexes["by_status"].total for w in writes] == [1, 2, 3]
    assert writes[2].indexes["by_status"].units == {"SUBMITTED": 1, "COMPLETED": 2}


def test_the_partition_model_spreads_shards_and_concentrates_statuses() -> None:
    ours = partitions.hot_partitions(partitions.sequence(file_images(), partitions.LAYOUT_2), 1.0)
    # an OPEN shard takes the claim's put and the outcome's delete of its files
    assert ours["by_status_shard"] == pytest.approx(2 * 1000 / STATUS_SHARDS)
    assert ours["by_input_keys"] == 1
    assert ours["table"] == 3
    layout1 = partitions.hot_partitions(partitions.sequence(file_images(), partitions.LAYOUT_1), 1)
    assert layout1["by_status"] == 2000  # SUBMITTED: a put and a delete per file
    assert partitions.shard_spread([f"{n:08x}" + "0" * 56 for n in range(STATUS_SHARDS)]) == 1.0


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
        "platform_log_bytes_per_invocation": 0.0,
        "pending_item_bytes": 550,
        "submitted_item_bytes": 880,
        "completed_item_bytes": 1170,
        "naive_item_bytes": 370,
        "ours_write_units": 8,
        "naive_write_units": 10,
        "review_read_units": 0.52,
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
    reads = next(row for row in rows if row.component == "DynamoDB reads (reconciler)")
    assert (reads.ours_dollars, reads.naive_dollars) == (pytest.approx(0.52 * 0.125), 0)
    assert naive > 0


def test_result_events_cost_both_designs_what_each_builds() -> None:
    published = inputs(publish_events=True, traffic_files_per_second=100.0, results_call_ms=4.0)
    mine, theirs = cost.ours(published), cost.naive(published)
    # ours: one Pipes request and one custom event per file, and the two pipes' polls of the
    # stream (one shard at 800 write units a second) shared by the second's 100 files
    assert (mine.pipes_requests, mine.custom_events) == (1, 1)
    assert mine.stream_read_units == pytest.approx(2 * 4 / 100)
    # the naive design: PutEvents from its results function, one more call in its duration
    assert (theirs.pipes_requests, theirs.custom_events, theirs.stream_read_units) == (0, 1, 0)
    quiet = inputs(publish_events=False, results_call_ms=4.0)
    assert cost.naive(published).lambda_gb_seconds > cost.naive(quiet).lambda_gb_seconds
    assert (cost.ours(quiet).custom_events, cost.ours(quiet).stream_read_units) == (0, 0)
    # X-Ray: ours only (active tracing), the reservoir of each function then 5%
    assert mine.xray_traces == pytest.approx((1 + 0.05 * 9 + 1 + 0.05 * 99) / 100)
    assert theirs.xray_traces == 0
    # a faster stream fills more shards: 10,000 files/s at 8 units each is 80 partitions
    busy = cost.ours(inputs(traffic_files_per_second=10_000.0))
    assert busy.stream_read_units == pytest.approx(2 * 4 * 80 / 10_000)


def test_lambdas_own_log_lines_count_only_where_they_are_sent() -> None:
    assert cost.platform_log_bytes("WARN") == 0
    assert cost.platform_log_bytes("INFO") == cost.PLATFORM_LOG_BYTES_PER_INVOCATION
    quiet = inputs(ingest_log_bytes_per_file=50.0, results_log_bytes_per_invocation=450.0)
    # ours at system level WARN: the handlers' bytes only
    assert cost.ours(quiet).log_bytes == pytest.approx(500.0)
    # the naive ingest function keeps Lambda's default logging; its results side is ours
    assert cost.naive(quiet).log_bytes == pytest.approx(450.0 + 300.0)
    loud = inputs(
        ingest_log_bytes_per_file=50.0,
        results_log_bytes_per_invocation=450.0,
        platform_log_bytes_per_invocation=300.0,
    )
    assert cost.ours(loud).log_bytes == pytest.approx(500.0 + 300.0 * 1.1)  # 1/10 + 1 calls
    assert cost.naive(loud).log_bytes == pytest.approx(450.0 + 300.0 * 2)


def test_the_review_reads_each_record_once_eventually_consistent() -> None:
    (_, _), (_, submitted), (_, completed) = file_images()
    entry = partitions.status_entry_bytes(submitted)
    assert entry == len("inference_id") + 64 + len("status_shard") + len("OPEN#nn") + 11 + 24 + 100
    # an item up to 4 KB is half a read unit; the entry a share of a 4 KB page
    assert cost.review_read_units(completed, entry) == pytest.approx(0.5 + 0.5 * entry / 4096)


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
    measured = coldstart.measure(tmp_path, runs=2, profile_runs=1)
    for mode in coldstart.MODES:
        for module in coldstart.MODULES:
            assert measured.median(mode, module) > 0
        for function in coldstart.FUNCTIONS:
            assert measured.ratio(mode, function) > 0
    for mode in coldstart.PROFILED_MODES:
        for function in coldstart.FUNCTIONS:
            packages = dict(measured.profiles[(mode, function)])
            assert f"lambdas.{function} (compile + module code)" in packages  # from the asset
            assert "boto3" not in packages
            # tracing off builds no Tracer; tracing on, the first invocation builds it
            assert "aws_xray_sdk" not in packages
        # the results parser decorator's event model; ingest loads pydantic when first invoked
        assert "pydantic" in dict(measured.profiles[(mode, "results")])
        assert "pydantic" not in dict(measured.profiles[(mode, "ingest")])
    for function in coldstart.FUNCTIONS:
        assert measured.asset_bytes[function] > 1024
        assert measured.compile_seconds[function] > 0
        # the first invocation after the import ran (its AWS call refused by the stub)
        assert measured.first_invocation(function) > 0
        assert measured.cold_start_ratio(function) > measured.ratio(coldstart.GOAL_MODE, function)
        # against the yardsticks, timed by the same probe: they ran up to their first call too
        assert measured.cold_start_vs(function, "naive") > 0
    assert measured.first_invocation("naive") > 0
    assert measured.first_invocation("naive_results") > 0
    # every run's samples land in exactly one round
    rounds = measured.rounds(2)
    assert [part.runs for part in rounds] == [1, 1]
    assert (
        rounds[0].first_calls["naive"] + rounds[1].first_calls["naive"]
        == (measured.first_calls["naive"])
    )
