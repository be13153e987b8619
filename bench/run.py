"""A bench run as data: where and when it ran (``Context``) and what it measured (``Report``),
with the figures derived from the measurements. The report's sections read it; they live
beside ``bench/report.py``, which renders them, so this module imports none of them."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import TypeVar

from bench import coldstart, cost, jobs, listing, partitions
from bench.figures import Figure
from bench.listing import ListingCost
from bench.measure import median, split
from bench.micro.plan import (
    INGEST_SAMPLES,
    RESULTS_SAMPLES,
    IngestMeasurements,
    ResultsMeasurements,
)
from bench.service_model import BOTOCORE_MODEL, BUNDLED_MODEL, ServiceModelCost
from bench.settings import REPO_ROOT, Settings
from bench.throughput import Throughput
from lambdas.common.clock import utc_now
from lambdas.common.records import Status
from stacks.config import StackConfig

IngestMeasurementsOrResults = TypeVar(
    "IngestMeasurementsOrResults", IngestMeasurements, ResultsMeasurements
)
LIBRARIES = ("boto3", "botocore", "pydantic", "aws-lambda-powertools", "aws-xray-sdk", "moto")


@dataclass
class Context:
    """Where and when the run happened."""

    started: datetime
    finished: datetime | None = None
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    machine: str = ""
    python: str = ""
    libraries: dict[str, str] = field(default_factory=dict)
    commit: str = ""

    @classmethod
    def now(cls) -> Context:
        return cls(
            started=utc_now(),
            load_before=os.getloadavg(),
            machine=_machine(),
            python=platform.python_version(),
            libraries={name: version(name) for name in LIBRARIES},
            commit=_commit(),
        )

    def finish(self) -> None:
        self.finished = utc_now()
        self.load_after = os.getloadavg()


def _machine() -> str:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        total_kb = int(meminfo.read_text().split()[1])
        memory = f", {total_kb / 1024 / 1024:.1f} GiB RAM"
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({model}){memory}"


def _commit() -> str:
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return "unknown"
    return completed.stdout.strip() or "unknown"


@dataclass
class Report:
    settings: Settings
    context: Context
    cold: coldstart.ColdStart
    service_model: ServiceModelCost
    ingest: IngestMeasurements
    results: ResultsMeasurements
    # one per round (bench/throughput.py): the large run and the small runs around it
    e2e_rounds: list[Throughput]
    ingest_memory_mb: int
    results_memory_mb: int
    # the stack's functions' LoggingConfig (ApplicationLogLevel with the JSON format, or None)
    application_log_level: str | None
    system_log_level: str
    # `results --limit 20` at 100 and 100,000 records (bench/listing.py); empty: not measured
    listing: dict[int, dict[str, ListingCost]] = field(default_factory=dict)

    # --- rounds ---------------------------------------------------------------------------

    @property
    def e2e(self) -> Throughput:
        """The round the pipeline sections describe: the one with the largest per-file growth
        (the worst round of ``e2e_per_file_cost_ratio``)."""
        return max(self.e2e_rounds, key=lambda throughput: throughput.cost_scaling)

    def rounds(self) -> list[Report]:
        """This run as ``settings.rounds`` reports, each holding one round's samples (the
        items, profiles and sizes, which are not timed, are shared)."""
        count = self.settings.rounds
        colds = self.cold.rounds(count)
        models = self.service_model.rounds(count)
        ingests = _split_samples(self.ingest, INGEST_SAMPLES, count)
        results = _split_samples(self.results, RESULTS_SAMPLES, count)
        return [
            replace(
                self,
                cold=colds[index],
                service_model=models[index],
                ingest=ingests[index],
                results=results[index],
                e2e_rounds=[self.e2e_rounds[index]],
            )
            for index in range(count)
        ]

    # --- derived quantities --------------------------------------------------------------

    @property
    def invoke_ms(self) -> float:
        return median(self.ingest.invoke_seconds) * 1000

    def write_sequence(self, naive: bool = False) -> list[partitions.Write]:
        """One file's writes as measured: ours on layout 2, the naive design's on layout 1."""
        items = {**self.ingest.items, **self.results.items}
        completed = partitions.same_record(items["COMPLETED"], items["SUBMITTED"])
        if naive:
            naive_item = cost.naive_item(items["SUBMITTED"])
            images = partitions.naive_images(completed, naive_item)
            return partitions.sequence(images, partitions.LAYOUT_1)
        images = [
            ("claim (PENDING)", items["PENDING"]),
            ("SUBMITTED", items["SUBMITTED"]),
            ("outcome (COMPLETED)", completed),
        ]
        return partitions.sequence(images, partitions.LAYOUT_2)

    def hot_partitions(self, naive: bool = False) -> dict[str, float]:
        spread = partitions.shard_spread(self.ingest.submitted_ids)
        return partitions.hot_partitions(self.write_sequence(naive), spread)

    def cost_inputs(self, *, publish_events: bool | None = None) -> cost.Inputs:
        """The cost model's inputs; ``publish_events`` defaults to the stack's setting."""
        items = {**self.ingest.items, **self.results.items}
        if publish_events is None:
            publish_events = StackConfig.from_context(self.settings.context).publish_events
        return cost.Inputs(
            batch_size=self.settings.batch_size,
            ingest_memory_mb=self.ingest_memory_mb,
            results_memory_mb=self.results_memory_mb,
            ingest_batch_ms=median(self.ingest.batch_seconds) * 1000,
            naive_file_ms=median(self.ingest.naive_batch_seconds) * 1000 / self.settings.batch_size,
            results_invocation_ms=median(self.results.handler_seconds) * 1000,
            ingest_log_bytes_per_file=self.ingest.log_bytes_per_record,
            results_log_bytes_per_invocation=self.results.log_bytes_per_invocation,
            platform_log_bytes_per_invocation=cost.platform_log_bytes(self.system_log_level),
            pending_item_bytes=cost.item_size(items["PENDING"]),
            submitted_item_bytes=cost.item_size(items["SUBMITTED"]),
            completed_item_bytes=cost.item_size(items["COMPLETED"]),
            naive_item_bytes=cost.item_size(cost.naive_item(items["SUBMITTED"])),
            ours_write_units=partitions.units_per_file(self.write_sequence()),
            naive_write_units=partitions.units_per_file(self.write_sequence(naive=True)),
            review_read_units=cost.review_read_units(
                items["COMPLETED"], partitions.status_entry_bytes(items["SUBMITTED"])
            ),
            results_call_ms=median(self.results.bare_seconds) * 1000,
            publish_events=publish_events,
            event_detail_bytes=cost.event_detail_bytes(items[Status.COMPLETED.value]),
        )

    def cost_rows(self, *, publish_events: bool | None = None) -> list[cost.Row]:
        return cost.table(self.cost_inputs(publish_events=publish_events))

    def cost_ratio(self, *, publish_events: bool | None = None) -> float:
        ours, naive = cost.totals(self.cost_rows(publish_events=publish_events))
        return ours / naive

    def figures(self) -> list[Figure]:
        """Every figure, from each round's value: the worst round's for a figure with a goal,
        the median round's for the others (``Figure.of_rounds``)."""
        values: dict[str, list[float]] = defaultdict(list)
        first: dict[str, Figure] = {}
        for part in self.rounds():
            for figure in part.round_figures():
                values[figure.name].append(figure.value)
                first.setdefault(figure.name, figure)
        return [
            Figure.of_rounds(name, values[name], figure.goal, figure.op, figure.unit)
            for name, figure in first.items()
            if len(values[name]) == self.settings.rounds  # a figure every round could measure
        ]

    def round_figures(self) -> list[Figure]:
        """The figures of a one-round report (``rounds``)."""
        ingest, results, cold, e2e = self.ingest, self.results, self.cold, self.e2e
        invoke = median(ingest.invoke_seconds)
        ours, naive = cost.totals(self.cost_rows())
        goal_mode, off = coldstart.GOAL_MODE, "tracing off"
        inputs = self.cost_inputs()
        return [
            Figure("cost_per_million_ratio", ours / naive, 0.7),
            # without the optional result events on either side (publish_events=false)
            Figure("cost_per_million_ratio_core", self.cost_ratio(publish_events=False)),
            Figure("write_units_per_file", inputs.ours_write_units, 7),
            Figure("write_units_per_file_naive", inputs.naive_write_units),
            Figure("hot_partition_wcu_at_1000_fps", max(self.hot_partitions().values()), 500),
            Figure("hot_partition_wcu_at_1000_fps_naive", max(self.hot_partitions(True).values())),
            # one job of 100,000 entries, outcomes at 1,000 files a second (bench/jobs.py)
            Figure(
                "job_hot_partition_wcu_at_1000_fps",
                jobs.job_hot_partition_wcu(jobs.sample_ids()),
                500,
            ),
            Figure("job_hot_partition_wcu_at_1000_fps_naive", jobs.naive_hot_partition_wcu()),
            Figure("job_cost_per_million", jobs.job_cost_per_million(), unit=" USD"),
            Figure("batch_latency_ratio", median(ingest.batch_seconds) / invoke),
            Figure("naive_batch_latency_ratio", median(ingest.naive_batch_seconds) / invoke),
            Figure("bare_batch_latency_ratio", median(ingest.bare_batch_seconds) / invoke),
            Figure(
                "ingest_overhead_ratio",
                median(ingest.overhead_batch_handler_seconds)
                / median(ingest.overhead_batch_bare_seconds),
                1.2,
            ),
            Figure(
                "ingest_overhead_ratio_one_record",
                median(ingest.overhead_single_handler_seconds)
                / median(ingest.overhead_single_bare_seconds),
            ),
            Figure(
                "results_overhead_ratio",
                median(results.handler_seconds) / median(results.bare_seconds),
                1.2,
            ),
            # A cold start as paid (init and first invocation), against the naive handler's,
            # which creates its three clients at import (bench/coldstart.py).
            Figure("cold_start_vs_naive_ingest", cold.cold_start_vs("ingest", "naive"), 1.2),
            Figure("cold_start_vs_naive_results", cold.cold_start_vs("results", "naive"), 1.2),
            Figure(
                "cold_start_vs_naive_results_handler",
                cold.cold_start_vs("results", "naive_results"),
            ),
            Figure("cold_import_ratio_ingest", cold.ratio(goal_mode, "ingest")),
            Figure("cold_import_ratio_results", cold.ratio(goal_mode, "results")),
            Figure("cold_import_ratio_ingest_tracing_off", cold.ratio(off, "ingest")),
            Figure("cold_import_ratio_results_tracing_off", cold.ratio(off, "results")),
            # What the import defers is paid by the first invocation: both together, in the
            # goal's mode, over the same `import boto3` (bench/first_call.py).
            Figure(
                "cold_first_invocation_ingest", cold.first_invocation("ingest") * 1000, unit=" ms"
            ),
            Figure(
                "cold_first_invocation_results", cold.first_invocation("results") * 1000, unit=" ms"
            ),
            Figure("cold_start_ratio_ingest", cold.cold_start_ratio("ingest")),
            Figure("cold_start_ratio_results", cold.cold_start_ratio("results")),
            Figure("asset_size_ingest", cold.asset_bytes["ingest"] / 1024, unit="KB"),
            Figure("asset_size_results", cold.asset_bytes["results"] / 1024, unit="KB"),
            # The 2026 InvokeEndpointAsync members: the model file the ingest asset ships, and
            # creating the client on it against botocore's own model (fresh interpreters).
            Figure(
                "asset_size_ingest_service_model",
                self.service_model.bundled_deflated_bytes / 1024,
                unit="KB",
            ),
            Figure(
                "cold_client_ratio_service_model",
                self.service_model.client_seconds[BUNDLED_MODEL]
                / self.service_model.client_seconds[BOTOCORE_MODEL],
                1.3,
            ),
            Figure("e2e_throughput", e2e.large.files_per_second, unit=" files/s"),
            Figure("e2e_cpu_per_file", e2e.large.cpu_per_file * 1000, unit=" ms"),
            Figure("e2e_per_file_cost_ratio", e2e.cost_scaling, 1.2),
            *(
                [Figure("e2e_steady_state_cost_ratio", e2e.steady_state_scaling)]
                if math.isfinite(e2e.steady_state_scaling)
                else []  # a run too small to see both stretches (the smoke run)
            ),
            Figure("cost_per_million", ours, unit=" USD"),
            Figure("cost_per_million_naive", naive, unit=" USD"),
            *(listing.figures(self.listing) if self.listing else []),
        ]


def _split_samples(
    measured: IngestMeasurementsOrResults, names: tuple[str, ...], count: int
) -> list[IngestMeasurementsOrResults]:
    """``count`` copies of ``measured``, each with one round of every timed sample list."""
    parts = {name: split(getattr(measured, name), count) for name in names}
    return [
        measured.model_copy(update={name: parts[name][index] for name in names})
        for index in range(count)
    ]
