"""``make bench`` in a tiny configuration: every benchmark runs on real local servers and every
figure comes out computed and well-formed. Whether the goals hold is bench/RESULTS.md's
business, not a test's: nothing here is timed."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.__main__ import run
from bench.report import cost_table_text, render
from bench.run import Report
from bench.settings import smoke

pytestmark = pytest.mark.e2e

LINE = re.compile(r"^bench: [a-z0-9_]+=[0-9.]+[A-Za-z/ ]* \((goal (<=|>=) [0-9.]+|info)\)$")
GOALS = {
    "cost_per_million_ratio": 0.7,
    "write_units_per_file": 7,
    "hot_partition_wcu_at_1000_fps": 500,
    "ingest_overhead_ratio": 1.2,
    "results_overhead_ratio": 1.2,
    "cold_start_vs_naive_ingest": 1.2,
    "cold_start_vs_naive_results": 1.2,
    "e2e_per_file_cost_ratio": 1.2,
    "cold_client_ratio_service_model": 1.3,
}
DIAGNOSTICS = (
    "batch_latency_ratio",
    "write_units_per_file_naive",
    "hot_partition_wcu_at_1000_fps_naive",
    "cold_import_ratio_ingest",
    "cold_import_ratio_results",
    "cold_start_vs_naive_results_handler",
    "cost_per_million_ratio_core",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Report]:
    environment = dict(os.environ)  # the benchmark points this process at its local servers
    try:
        yield run(smoke(tmp_path_factory.mktemp("bench")))
    finally:
        os.environ.clear()
        os.environ.update(environment)


def test_every_figure_is_computed_and_printed_as_one_line(report: Report) -> None:
    figures = {figure.name: figure for figure in report.figures()}
    assert {name: figures[name].goal for name in GOALS} == GOALS
    assert all(figures[name].goal is None for name in DIAGNOSTICS)
    for figure in figures.values():
        assert figure.well_formed, figure
        assert figure.value > 0, figure
        assert LINE.match(figure.line), figure.line
        # measured in every round; a goal's line carries its worst round
        assert len(figure.rounds) == report.settings.rounds, figure
        if figure.goal is not None:
            assert figure.value == max(figure.rounds), figure


def test_the_runs_measured_what_they_were_asked_to(report: Report) -> None:
    settings = report.settings
    assert len(report.ingest.batch_seconds) == settings.ingest_repetitions
    assert len(report.ingest.naive_batch_seconds) == settings.ingest_repetitions
    assert len(report.ingest.invoke_seconds) == (
        settings.ingest_repetitions * settings.invoke_samples_per_repetition
    )
    assert len(report.results.handler_seconds) == settings.results_repetitions
    assert report.results.inline_from_notification
    for mode_and_module, samples in report.cold.seconds.items():
        assert len(samples) == settings.import_runs, mode_and_module
    for function in ("ingest", "results", "naive", "naive_results"):
        assert len(report.cold.first_calls[function]) == settings.import_runs
    assert len(report.e2e_rounds) == settings.rounds
    # consecutive rounds share the small run between their large runs
    assert report.e2e_rounds[0].small_after is report.e2e_rounds[1].small
    assert report.e2e.small.files == settings.e2e_small_files
    assert report.e2e.large.files == settings.e2e_files
    assert report.e2e.small_after.files == settings.e2e_small_files
    assert sum(report.e2e.large.statuses.values()) == settings.e2e_files
    assert report.e2e.large.statuses.get("COMPLETED") == settings.e2e_files
    assert set(report.ingest.items) == {"PENDING", "SUBMITTED"}
    assert report.results.items["COMPLETED"]["status"] == {"S": "COMPLETED"}


def test_results_md_and_the_cost_table_hold_every_figure_and_assumption(report: Report) -> None:
    text = render(report)
    for figure in report.figures():
        assert f"`{figure.name}`" in text
    for section in (
        "## Context",
        "## Where the time goes",
        "## Cost model",
        "## DynamoDB: writes per file, item sizes, partitions",
        "## Goals missed",
    ):
        assert section in text
    assert "us-east-1" in text
    # the write-units goal's verdict is its own, not the cost goal's
    for line in text.splitlines():
        if line.startswith("- `write_units_per_file` = "):
            assert "one file's writes: claim (PENDING) 3 (table 1" in line, line
    rows = report.cost_rows()
    ours, naive = (sum(row.ours_dollars for row in rows), sum(row.naive_dollars for row in rows))
    assert ours > 0
    assert naive > 0
    table = cost_table_text(rows)
    assert all(row.component in table for row in rows)


def test_the_asset_size_counts_the_files_the_stack_packages(report: Report) -> None:
    assets = Path(report.settings.work_dir) / "assets"
    for function in ("ingest", "results"):
        packaged = {
            path.relative_to(assets / function) for path in (assets / function).rglob("*.py")
        }
        assert Path("lambdas/__init__.py") in packaged
        assert Path(f"lambdas/{function}/handler.py") in packaged
        other = "results" if function == "ingest" else "ingest"
        assert not any(path.parts[1] == other for path in packaged)
        assert report.cold.asset_bytes[function] > 0
