"""The sections of ``bench/RESULTS.md`` that describe the run: context, method, where the time
goes, cold imports and the whole pipeline."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from bench import coldstart, first_call
from bench.figures import Figure, format_value
from bench.measure import median
from bench.micro.plan import Profile
from bench.service_model import BOTOCORE_MODEL, BUNDLED_MODEL, ServiceModelCost
from bench.throughput import IN_FLIGHT_LIMIT, MODEL_SERVER, Throughput

if TYPE_CHECKING:
    from bench.run import Report


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def profile_table(title: str, profile: Profile, limit: int = 8) -> list[str]:
    lines = [f"| {title} | share of own time |", "|---|---:|"]
    lines += [f"| {package} | {share:.1%} |" for package, share in profile[:limit]]
    return lines


def figure_table(figures: list[Figure]) -> list[str]:
    lines = [
        "| figure | value | rounds: min / median / max | goal | met |",
        "|---|---:|---:|---|---|",
    ]
    for figure in figures:
        goal = "-" if figure.goal is None else f"{figure.op} {format_value(figure.goal)}"
        met = {None: "", True: "yes", False: "**no**"}[figure.met]
        lines.append(
            f"| `{figure.name}` | {figure.shown_value} | {figure.spread} | {goal} | {met} |"
        )
    return lines


def load_text(load: tuple[float, float, float]) -> str:
    return ", ".join(f"{value:.2f}" for value in load)


def preamble(rounds: int) -> list[str]:
    return [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench`); every figure is a ratio of two things",
        "measured side by side in the same run, so the machine's speed and load cancel out as",
        f"far as possible. Every measurement is taken in {rounds} rounds (consecutive, each",
        "interleaved as before), and each round gives each figure its own value, the median of",
        "the round's samples. **A goal counts as met only when the worst round meets it**: the",
        "value of a figure with a goal, here and in the `bench: name=value` line `make bench`",
        "prints, is its worst round's (min / median / max beside it); a figure without a goal",
        "shows its median round. The sections below the figures use the medians of all rounds.",
        "",
    ]


def context_section(report: Report) -> list[str]:
    settings, context = report.settings, report.context
    duration = (context.finished or context.started) - context.started
    return [
        "## Context",
        "",
        f"- Date: {context.started:%Y-%m-%d %H:%M} UTC; the run took {duration.seconds // 60} min "
        f"{duration.seconds % 60} s.",
        f"- Machine: {context.machine}; load average (1, 5, 15 min) "
        f"{load_text(context.load_before)} before, {load_text(context.load_after)} after "
        "(the machine is shared: absolute times are noisy).",
        f"- Python {context.python} (Lambda runs 3.13 on arm64); "
        + ", ".join(f"{name} {number}" for name, number in context.libraries.items())
        + f"; commit {context.commit} (plus the working tree).",
        "- Local mode stands in for AWS: a moto server (S3, SQS, SNS, DynamoDB), the local "
        "SageMaker async runtime and the demo model server, each its own process, on loopback.",
        f"- CDK context overrides: {settings.context or 'none (the defaults of cdk.json)'}; "
        f"ingest memory {report.ingest_memory_mb} MB, results memory {report.results_memory_mb} "
        f"MB, batch size {settings.batch_size}, submit concurrency "
        f"{report.ingest.submit_concurrency}.",
        "",
    ]


def how_handlers_are_measured(report: Report) -> list[str]:
    settings, ingest, results = report.settings, report.ingest, report.results
    batch = settings.batch_size
    return [
        "## How each figure is measured",
        "",
        f"1. **batch_latency_ratio**: the local runtime adds {settings.added_latency_ms} ms to "
        "every InvokeEndpointAsync. The real ingest handler (`lambdas.ingest.handler.handler`, "
        "the function's environment from the synthesized template, a Lambda context) gets an "
        f"SQS event of {batch} messages that S3 sent for {batch} fresh objects; its wall time is "
        "divided by one InvokeEndpointAsync call's latency (same client configuration, same "
        f"run). {settings.ingest_repetitions} interleaved rounds after "
        f"{settings.ingest_warmup} warm-up rounds; between two timed runs the runtime drains "
        "its queue, so no run competes with another's background work. "
        "`naive_batch_latency_ratio` is the same for `bench/naive.py` (HeadObject, "
        "InvokeEndpointAsync, PutItem, one record after another, as public samples do); "
        "`bare_batch_latency_ratio` for the handler's own calls made without it, at its "
        "concurrency: the floor the local servers set.",
        "2. **ingest_overhead_ratio**: no added latency. The handler's time for a batch of "
        f"{batch} divided by the time of the bare calls it makes for those records (the exact "
        "calls its logic makes: the claim PutItem, HeadObject, InvokeEndpointAsync, the "
        "UpdateItem to SUBMITTED, recorded once and replayed with each record's id, key and "
        f"version), made by {ingest.submit_concurrency} threads like the handler's pool, each "
        "record's calls in sequence: the same concurrency on both sides, clients configured "
        "alike, warmed up, interleaved. Per record, both sides divide by the same count. "
        "`ingest_overhead_ratio_one_record` is the same with one record per invocation against "
        "its four calls in sequence (the invocation's fixed cost is then spread over one "
        "record only).",
        "3. **results_overhead_ratio**: the real results handler on the SNS event of a real "
        "notification (published by the runtime, delivered through an SQS subscription, turned "
        "into the Lambda SNS event) against the bare UpdateItem the store sends for it (recorded "
        "once, replayed with each record's id), one notification at a time on both sides, on "
        "records left SUBMITTED by the ingest benchmark. Configuration: the stack's default "
        "`include_inference_response`, so the result arrives inside the notification and the "
        "handler reads nothing from S3 "
        f"({'confirmed' if results.inline_from_notification else 'NOT the case in this run'}); "
        "the bare side is therefore one UpdateItem.",
    ]


def how_the_rest_is_measured(report: Report) -> list[str]:
    settings, cold, e2e = report.settings, report.cold, report.e2e
    return [
        "4. **cold_start_vs_naive_*** and **cold_import_ratio_***: see the module docstring "
        "of `bench/coldstart.py`: each "
        "asset rebuilt as the stack packages it, imported with `-B` in a fresh interpreter "
        "(its own sources compiled, as on Lambda); the CPU time of the import statement alone "
        "(`time.process_time()` before and after: interpreter start-up excluded on both sides, "
        "and unlike wall time it does not count other processes' turns on the shared cores); "
        f"median of {cold.runs} runs per round, each timing every import in every mode in a "
        "shuffled order. The goal's figure is the "
        f"deployed configuration, '{coldstart.GOAL_MODE}' (the stack enables active tracing); "
        "`*_tracing_off` is local mode's. `cold_first_invocation_*` is the CPU time of the "
        "first invocation that follows the import in the same fresh interpreter, and "
        "`cold_start_ratio_*` the import plus that invocation over the same `import boto3` "
        "(`bench/first_call.py`): what the import defers, the first invocation pays. The "
        "goals are on **cold_start_vs_naive_***: a function's import plus first invocation "
        "over the naive handler's (`bench/naive.py`: its import, which creates its three "
        "clients, and its first file), timed by the same probe in the same runs; "
        "`cold_start_vs_naive_results_handler` puts the results function against a results "
        "handler as public samples write it (`bench/naive_results.py`: one client, one "
        "UpdateItem). The import-only figures are diagnostics.",
        f"5. **e2e_***: `LocalPipeline` with the template's wiring; {settings.e2e_warmup_files} "
        f"warm-up files, then runs of {e2e.small.files}, {e2e.large.files} and again "
        f"{e2e.small.files} small JSON files in the same pipeline, a round; each further round "
        f"adds a run of {e2e.large.files} and one of {e2e.small.files} (uploaded by 8 "
        "threads, paced "
        f"so that at most {IN_FLIGHT_LIMIT} files are in flight: see `bench/throughput.py`); a "
        "run lasts from its first upload until its last record is terminal. CPU is that of "
        "every process of the tree in that window (`getrusage` for this process and reaped "
        "children, `/proc/<pid>/stat` for live ones). `e2e_throughput` and `e2e_cpu_per_file` "
        "are the large run's; `e2e_per_file_cost_ratio` is its CPU per file over the mean of "
        "the two small runs around it (flat is 1; the goal allows 20% of noise). "
        "`e2e_steady_state_cost_ratio` compares two stretches of the large run itself: CPU "
        "per file while its 80th to 90th percent of files finished over that while its 10th "
        "to 20th percent did. It is a diagnostic: late in a sustained run the files in flight "
        "have piled up in front of the slowest stage, and moto's SQS scans a queue's whole "
        "message list on every receive and delete, so it grows with that backlog; across runs "
        "(the small run after the large one) that growth is gone.",
        "6. **cost_per_million**: the cost model below, with the measured durations, log bytes "
        "and item sizes; `cost_per_million_ratio` is ours over the naive design's, each with "
        "what its users need (an index to find the records of an input, one to list recent "
        "records by status). **write_units_per_file** and **hot_partition_wcu_at_1000_fps**: "
        'the section "DynamoDB: writes per file, item sizes, partitions" (from the items '
        "this run wrote and the ids it submitted; `*_naive` the same for the naive design on "
        "layout 1's indexes). `batch_latency_ratio` is a diagnostic (no goal).",
        "",
    ]


def where_the_time_goes(report: Report) -> list[str]:
    settings, ingest, results = report.settings, report.ingest, report.results
    batch = settings.batch_size
    return [
        "## Where the time goes",
        "",
        f"Batch of {batch} at {settings.added_latency_ms} ms added latency: one "
        f"InvokeEndpointAsync takes {report.invoke_ms:.1f} ms; the handler's batch "
        f"{ms(median(ingest.batch_seconds))}; the same calls without the handler, at the same "
        f"concurrency, {ms(median(ingest.bare_batch_seconds))}; the naive handler "
        f"{ms(median(ingest.naive_batch_seconds))}. Without added latency: handler "
        f"{ms(median(ingest.overhead_batch_handler_seconds))} against bare calls "
        f"{ms(median(ingest.overhead_batch_bare_seconds))} per batch; one record per "
        f"invocation {ms(median(ingest.overhead_single_handler_seconds))} against "
        f"{ms(median(ingest.overhead_single_bare_seconds))}. An invocation that makes no call "
        f"(an s3:TestEvent) costs {ms(median(ingest.fixed_seconds))}: Powertools' batch "
        "processing, the event loop, logging and the metrics flush. The results handler: "
        f"{ms(median(results.handler_seconds))} per notification against "
        f"{ms(median(results.bare_seconds))} for its UpdateItem; a TestNotification (parsed, "
        f"logged, no call) {ms(median(results.fixed_seconds))}.",
        "",
        "The local servers are single Python processes: a moto call costs a few milliseconds "
        "of CPU, so concurrent calls queue in the moto server (on AWS they run in parallel). "
        "That, not the handler, is why a batch takes more than one call's latency here: the "
        "bare calls at the same concurrency take as long.",
        "",
        "Profiles (cProfile, own time by package; 'waiting' is time blocked on sockets and "
        f"locks), {settings.profile_repetitions} batches each:",
        "",
        *profile_table("ingest handler thread (whole batches)", ingest.handler_profile),
        "",
        *profile_table("one record's work (`Submitter.submit`)", ingest.submit_profile),
        "",
        *profile_table("results handler (one notification per invocation)", results.profile),
        "",
    ]


def service_model_section(cost: ServiceModelCost) -> list[str]:
    bundled, own = cost.client_seconds[BUNDLED_MODEL], cost.client_seconds[BOTOCORE_MODEL]
    return [
        "The 2026 `InvokeEndpointAsync` members (`S3OutputPathExtension`, `Filename`, `Body`): "
        "the ingest asset ships the sagemaker-runtime model so the Lambda runtime's older "
        f"botocore sends them. It adds {cost.bundled_deflated_bytes:,} bytes zipped "
        f"({cost.bundled_raw_bytes:,} raw; a whole botocore would add "
        f"{cost.botocore_deflated_bytes:,}). Importing boto3 and creating the client takes "
        f"{bundled * 1000:.1f} ms of CPU on it against {own * 1000:.1f} ms on botocore's own "
        "model (median of fresh interpreters, alternating order; "
        "`cold_client_ratio_service_model`).",
        "",
    ]


def cold_imports(cold: coldstart.ColdStart) -> list[str]:
    lines = [
        "Cold imports, CPU milliseconds (median of runs; wall-clock medians in brackets):",
        "",
        "| mode | " + " | ".join(coldstart.MODULES) + " |",
        "|---|" + "---:|" * len(coldstart.MODULES),
    ]
    for mode in coldstart.MODES:
        cells = " | ".join(
            f"{cold.median(mode, name) * 1000:.1f} ({cold.median_wall(mode, name) * 1000:.0f})"
            for name in coldstart.MODULES
        )
        lines.append(f"| {mode} | {cells} |")
    on, no_gc = coldstart.GOAL_MODE, "tracing on, no GC"
    sdk_layer_ms = (cold.median(on, "boto3") - cold.median(on, "botocore")) * 1000
    boto3_gc_ms = (cold.median(on, "boto3") - cold.median(no_gc, "boto3")) * 1000
    lines += [
        "",
        "`botocore` is its session, config and exceptions, all the handlers import of the SDK: "
        "they create botocore clients, so boto3's own layer "
        f"({sdk_layer_ms:.0f} ms here) is not part of their import. The handlers pause the "
        "garbage collector during their import and freeze what it loaded, so the probe's own "
        "pause ('no GC') changes them by noise only; on `import boto3` it is worth "
        f"{boto3_gc_ms:.0f} ms.",
        *_first_invocations(cold),
        "",
        "What each handler imports beyond what `import boto3` loads (`-X importtime`, own time "
        "of each module grouped by package, median of 3 runs; a module's own time includes "
        "compiling it, running its body (e.g. creating pydantic model classes) and any "
        "collection pass that triggers meanwhile). Compiling the asset's sources alone takes "
        f"{cold.compile_seconds['ingest'] * 1000:.1f} ms (ingest) and "
        f"{cold.compile_seconds['results'] * 1000:.1f} ms (results).",
        "",
    ]
    for (mode, function), profile in cold.profiles.items():
        total = sum(seconds for _, seconds in profile)
        shown = ", ".join(f"{package} {seconds * 1000:.1f}" for package, seconds in profile[:10])
        lines.append(f"- {function}, {mode}: {total * 1000:.0f} ms in all: {shown}")
    return lines


def _first_invocations(cold: coldstart.ColdStart) -> list[str]:
    boto3_ms = cold.median(coldstart.GOAL_MODE, "boto3") * 1000
    naive_ms = cold.cold_start("naive") * 1000
    lines = [
        "",
        "A cold start is the import and then the first invocation, which pays for what the "
        "handler defers out of its import (the Tracer and the X-Ray SDK, the configuration, "
        "the processing code and pydantic schemas built on first use; `bench/first_call.py`: "
        "one representative event, its first AWS call refused by a local stub). Deferring moves "
        "cost, it does not remove it: the sum is what Lambda bills and what the goals compare, "
        "with the naive handler's (its import creates its three clients; its first file makes "
        "its first call). CPU milliseconds in the goal's mode, median of all runs, each a "
        "fresh interpreter:",
        "",
        "| handler | import | first invocation | both | both / naive handler's | both / "
        "`import boto3` |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in (*coldstart.FUNCTIONS, *first_call.NAIVE):
        imported = median([run[0] for run in cold.first_calls[name]]) * 1000
        both = cold.cold_start(name) * 1000
        lines.append(
            f"| {name} | {imported:.1f} | {cold.first_invocation(name) * 1000:.1f} | "
            f"{both:.1f} | {both / naive_ms:.2f} | {both / boto3_ms:.2f} |"
        )
    lines.append("")
    lines.append(
        f"(`import boto3`: {boto3_ms:.1f} ms. The import column is timed in the same probe as "
        "the invocation, so it can differ from the table above by noise. `naive` is "
        "`bench/naive.py`, `naive_results` `bench/naive_results.py`.)"
    )
    return lines


def pipeline_runs(rounds: list[Throughput]) -> list[str]:
    e2e = max(rounds, key=lambda throughput: throughput.cost_scaling)
    lines = [
        "",
        "Whole pipeline, CPU seconds by process over each run, in the order run (round n is "
        "the large run n and the small runs before and after it):",
        "",
        "| run | files | seconds | files/s | CPU s | CPU ms/file | by process |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    runs = [("small 1", rounds[0].small)]
    for index, throughput in enumerate(rounds, start=1):
        runs += [
            (f"large {index}", throughput.large),
            (f"small {index + 1}", throughput.small_after),
        ]
    for name, run in runs:
        shares = "; ".join(
            f"{label} {seconds:.1f}"
            for label, seconds in sorted(run.cpu_by_process.items(), key=lambda kv: -kv[1])
        )
        lines.append(
            f"| {name} | {run.files} | {run.seconds:.1f} | {run.files_per_second:.1f} | "
            f"{run.cpu_seconds:.1f} | {run.cpu_per_file * 1000:.1f} | {shares} |"
        )
    return [
        *lines,
        "",
        "Per-file growth by round (`e2e_per_file_cost_ratio`): "
        + ", ".join(f"x{throughput.cost_scaling:.3f}" for throughput in rounds)
        + ". The rest of this paragraph describes the worst round. "
        f"Terminal statuses: small {e2e.small.statuses}, large {e2e.large.statuses}, small again "
        f"{e2e.small_after.statuses}. At most {IN_FLIGHT_LIMIT} files were in flight (uploaded, "
        "not terminal) at a time. Ingest "
        f"concurrency {e2e.ingest_concurrency} (the event source mapping's maximum), "
        f"{e2e.runtime_workers} runtime workers. {noise_yardstick(e2e)}",
        "",
    ]


def per_file_growth(e2e: Throughput, label: str) -> float:
    """A process kind's CPU per file in the large run over the small runs'; NaN if unseen."""
    small_runs = (e2e.small, e2e.small_after)
    small = sum(run.cpu_by_process.get(label, 0.0) / run.files for run in small_runs) / 2
    large = e2e.large.cpu_by_process.get(label, 0.0) / e2e.large.files
    return large / small if small > 0 else math.nan


def noise_yardstick(e2e: Throughput) -> str:
    growth = per_file_growth(e2e, MODEL_SERVER)
    if not math.isfinite(growth):
        return ""
    return (
        "The model server does the same work for every file, yet its CPU per file changed "
        f"x{growth:.2f} from the small runs to the large one: CPU time per unit of work on this "
        "shared machine moves by that much by itself, so per-file ratios within that distance "
        "of 1 are flat." + _stretches(e2e)
    )


def accumulation(e2e: Throughput) -> str:
    """Whether the pipeline costs more per file after the large run than before it."""
    before, after = e2e.small.cpu_per_file * 1000, e2e.small_after.cpu_per_file * 1000
    measured = (
        f"The small run after the large one costs {after:.1f} ms of CPU per file against "
        f"{before:.1f} ms before it: "
    )
    if after <= before * 1.2:
        return measured + (
            "nothing accumulates with the files processed; what a long run adds is the backlog "
            "in moto's queues (see `e2e_steady_state_cost_ratio`), an artefact of the local "
            "stand-in."
        )
    return measured + "something accumulates with the files processed; see the profiles."


def _stretches(e2e: Throughput) -> str:
    """The large run's late stretch over its early one, by kind of process."""
    early, late = e2e.large.early_by_process, e2e.large.late_by_process
    shown = [
        f"{label} x{late[label] / early[label]:.2f}"
        for label in sorted(late, key=lambda label: -late[label])
        if early.get(label, 0.0) > 0
    ]
    if not shown:
        return ""
    return (
        " Within the large run, CPU per file late over early "
        "(`e2e_steady_state_cost_ratio`), by process: " + "; ".join(shown) + "."
    )
