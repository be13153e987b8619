"""How big a benchmark run is: the full run of ``make bench`` and the smoke run of the tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Repetitions and sizes. Every measurement is split into ``rounds`` rounds (consecutive
    repetitions, each interleaved as a whole run is); a figure is a median within a round, and
    a figure with a goal is reported by its worst round."""

    work_dir: Path = REPO_ROOT / ".local" / "bench"
    results_path: Path = REPO_ROOT / "bench" / "RESULTS.md"
    # handler benchmarks (figures 1-3)
    rounds: int = 3
    added_latency_ms: int = 50  # the local runtime's fixed delay per InvokeEndpointAsync
    batch_size: int = 10  # records per SQS event (the event source mapping's batch size)
    ingest_warmup: int = 2
    # 15 a round: with 7 a round, the rounds of one run spread from 0.93 to 1.27 on
    # ingest_overhead_ratio (whose 21 samples' median was 1.04): too loose to judge a 1.2 goal
    ingest_repetitions: int = 45
    invoke_samples_per_repetition: int = 3
    results_warmup: int = 5
    results_repetitions: int = 45
    profile_repetitions: int = 10
    # cold imports (figure 4)
    import_runs: int = 30  # 10 a round (7 spread cold_start_vs_naive_ingest from 1.07 to 1.26)
    import_profile_runs: int = 3  # -X importtime runs per module (the profiles, not the figures)
    # the whole pipeline (figure 5)
    e2e_small_files: int = 200
    e2e_files: int = 1000
    e2e_warmup_files: int = 100  # enough to start every handler worker before measuring
    e2e_timeout_seconds: float = 900.0
    # `results --limit 20`: the table sizes its first pages are measured at (bench/listing.py)
    listing_sizes: tuple[int, int] = (100, 100_000)
    # CDK context for every benchmark (the same template for the handler benchmarks and e2e)
    context: dict[str, str] = field(default_factory=dict)


FULL = Settings()


def local_dir(settings: Settings) -> Path:
    """Local mode's state folder for the benchmarks; its ``cdk.out`` (the synthesized template,
    reused while the sources are unchanged) serves the handler benchmarks too."""
    return settings.work_dir / "local"


def smoke(work_dir: Path) -> Settings:
    """A tiny run that exercises every benchmark in a test (figures computed, not judged)."""
    return Settings(
        work_dir=work_dir,
        results_path=work_dir / "RESULTS.md",
        rounds=2,
        ingest_warmup=1,
        ingest_repetitions=2,
        invoke_samples_per_repetition=1,
        results_warmup=1,
        results_repetitions=2,
        profile_repetitions=1,
        import_runs=2,
        import_profile_runs=1,
        e2e_small_files=4,
        e2e_files=8,
        e2e_warmup_files=2,
        e2e_timeout_seconds=120.0,
        listing_sizes=(30, 60),
    )
