"""``make bench``: run every benchmark, print one line per figure, write ``bench/RESULTS.md``."""

from __future__ import annotations

import sys

from bench import coldstart, first_call, listing, service_model, throughput
from bench.micro.parent import run_children
from bench.report import cost_table_text, render
from bench.run import Context, Report
from bench.settings import FULL, Settings, local_dir
from bench.stack import BenchStack


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def run(settings: Settings) -> Report:
    """Every benchmark, one after the other (each alone on the machine, as far as this run
    goes). Cold imports first: they start no server."""
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    context = Context.now()
    imports = len(coldstart.MODES) * len(coldstart.MODULES)
    progress(
        f"cold imports: {settings.import_runs} runs of {imports} imports and "
        f"{len(coldstart.FUNCTIONS) + len(first_call.NAIVE)} first invocations"
    )
    cold = coldstart.measure(
        settings.work_dir, settings.import_runs, profile_runs=settings.import_profile_runs
    )
    progress(f"shipped sagemaker-runtime model: {settings.import_runs} client creations each way")
    model_cost = service_model.measure(settings.import_runs)
    progress("handler benchmarks: starting the local servers")
    with BenchStack(settings) as stack:
        ingest, results = run_children(stack, settings)
        ingest_memory = stack.spec.ingest.function.memory_mb
        results_memory = stack.spec.results[0].function.memory_mb
        logging_of = stack.spec.ingest.function
    progress(
        f"whole pipeline: {settings.e2e_warmup_files} + {settings.e2e_small_files} files, then "
        f"{settings.rounds} rounds of {settings.e2e_files} + {settings.e2e_small_files} files"
    )
    e2e = throughput.measure(
        local_dir(settings),
        small_files=settings.e2e_small_files,
        large_files=settings.e2e_files,
        warmup_files=settings.e2e_warmup_files,
        timeout_seconds=settings.e2e_timeout_seconds,
        context=settings.context,
        rounds=settings.rounds,
    )
    progress(f"results listing: first pages at {listing.SMALL:,} and {listing.LARGE:,} records")
    listed = listing.measure()
    context.finish()
    return Report(
        settings=settings,
        context=context,
        cold=cold,
        service_model=model_cost,
        ingest=ingest,
        results=results,
        e2e_rounds=e2e,
        ingest_memory_mb=ingest_memory,
        results_memory_mb=results_memory,
        application_log_level=logging_of.filtered_at,
        system_log_level=logging_of.system_log_level,
        listing=listed,
    )


def main(settings: Settings = FULL) -> Report:
    report = run(settings)
    for figure in report.figures():
        print(figure.line)
    print()
    print("cost per million files (USD, us-east-1 list prices; assumptions in RESULTS.md):")
    print(cost_table_text(report.cost_rows()))
    settings.results_path.write_text(render(report))
    print(f"\nwritten: {settings.results_path}")
    return report


if __name__ == "__main__":
    main()
