"""Figure 5: the whole pipeline in local mode, from upload to terminal record.

``LocalPipeline`` runs everything (moto server, model server, SageMaker runtime, event runner
with the real handlers in worker processes); this process uploads small files and waits until
every file's record is terminal. A run's window opens before the first upload and closes when
the last record is terminal; its CPU time is that of every process of the tree (this one,
whose threads are the runtime, the runner and the uploads; the servers; the handler workers)
between the two ends of the window, read from ``getrusage`` and ``/proc``.

Uploads are paced: at most ``IN_FLIGHT_LIMIT`` files are uploaded and not yet terminal, so
the runs measure the pipeline at its sustained rate rather than a moto queue thousands of
messages long. A warm-up run comes first (workers imported, pollers scaled, connections
open), then a small run, a large run and the small run again, in the same pipeline: per-file
cost must not grow with the number of files, and comparing the large run with the mean of the
small runs around it cancels a drift in the machine's load (other work on the shared cores
slows everything, CPU time per unit of work included). That is one round; further rounds
alternate a large and a small run, each round sharing its first small run with the previous
one (small, large, small, large, small, ...).
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from asyncinfer.cli.access.table import ResultsTable
from asyncinfer.local.session import LocalOptions, LocalPipeline
from bench.measure import CpuSnapshot, cpu_between, cpu_snapshot
from bench.micro.plan import OBJECT_BODY, OBJECT_CONTENT_TYPE
from lambdas.common.contract import StackOutput
from lambdas.common.records import TERMINAL_STATUSES, inference_id_for
from lambdas.common.store import BATCH_GET_MAX_KEYS

UPLOAD_THREADS = 8
POLL_SECONDS = 0.25
COUNTER_POLL_SECONDS = 0.02
# Files uploaded and not yet terminal, at most: enough to keep every ingest poller's batches
# full, few enough that moto's queues stay short (its SQS scans a queue's whole message list
# on every receive and delete, so a backlog of thousands makes each message cost more).
IN_FLIGHT_LIMIT = 100
MODEL_SERVER = "model server"


@dataclass(frozen=True)
class Run:
    files: int
    seconds: float
    cpu_seconds: float
    statuses: dict[str, int]
    cpu_by_process: dict[str, float]
    # CPU per file while the 10th to 20th and the 80th to 90th percent of the files finished:
    # two stretches of the same sustained run, one early, one late
    early_cpu_per_file: float
    late_cpu_per_file: float
    early_by_process: dict[str, float]  # CPU seconds per file, by kind of process
    late_by_process: dict[str, float]

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds

    @property
    def cpu_per_file(self) -> float:
        return self.cpu_seconds / self.files


@dataclass
class Throughput:
    small: Run
    large: Run
    small_after: Run
    context: dict[str, str] = field(default_factory=dict)
    ingest_concurrency: int = 0
    results_concurrency: int = 0
    runtime_workers: int = 0

    @property
    def cost_scaling(self) -> float:
        """CPU per file of the large run over that of the small runs around it (flat = 1)."""
        small = (self.small.cpu_per_file + self.small_after.cpu_per_file) / 2
        return self.large.cpu_per_file / small

    @property
    def steady_state_scaling(self) -> float:
        """CPU per file late in the large run over early in it: growth with the files already
        processed, at the same load (the run is paced, so both stretches are sustained)."""
        early, late = self.large.early_cpu_per_file, self.large.late_cpu_per_file
        return late / early if early > 0 else math.nan

    @property
    def time_scaling(self) -> float:
        """Wall time per file of the large run over that of the small runs around it."""
        small = (1 / self.small.files_per_second + 1 / self.small_after.files_per_second) / 2
        return (1 / self.large.files_per_second) / small


def _process_label(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "exited during the run"
    if "asyncinfer.local.aws.server" in command:
        return "moto server (S3, SQS, SNS, DynamoDB)"
    if "asyncinfer.local.sagemaker.model_server" in command:
        return MODEL_SERVER
    if "spawn_main" in command:
        return "handler workers (ingest and results)"
    return "other"


def cpu_by_process(start: CpuSnapshot, end: CpuSnapshot) -> dict[str, float]:
    """The window's CPU seconds per kind of process."""
    shares: dict[str, float] = defaultdict(float)
    shares["bench process (runtime, runner, uploads, polling)"] = end.own - start.own
    shares["exited processes"] = end.reaped - start.reaped
    for pid, seconds in end.live.items():
        shares[_process_label(pid)] += seconds - start.live.get(pid, 0.0)
    return {label: seconds for label, seconds in shares.items() if seconds > 0}


class _Milestones:
    """CPU snapshots taken as the count of finished files crosses 10%, 20%, 80% and 90%."""

    def __init__(self, files: int) -> None:
        self._counts = [files // 10, files // 5, files * 4 // 5, files * 9 // 10]
        self._snapshots: list[tuple[int, CpuSnapshot]] = []

    def reached(self, done: int) -> None:
        while (
            len(self._snapshots) < len(self._counts) and done >= self._counts[len(self._snapshots)]
        ):
            self._snapshots.append((done, cpu_snapshot()))

    def _stretch(self, stretch: int) -> tuple[int, CpuSnapshot, CpuSnapshot] | None:
        """Files finished and the snapshots at both ends of the early (0) or late (1) stretch;
        None when the run was too small to observe it (both ends seen at once)."""
        if len(self._snapshots) < 2 * stretch + 2:
            return None
        (first, start), (last, end) = self._snapshots[2 * stretch : 2 * stretch + 2]
        return (last - first, start, end) if last > first else None

    def cpu_per_file(self, stretch: int) -> float:
        observed = self._stretch(stretch)
        if observed is None:
            return math.nan
        files, start, end = observed
        return cpu_between(start, end) / files

    def by_process(self, stretch: int) -> dict[str, float]:
        observed = self._stretch(stretch)
        if observed is None:
            return {}
        files, start, end = observed
        return {label: cpu / files for label, cpu in cpu_by_process(start, end).items()}


class _Driver:
    def __init__(self, pipeline: LocalPipeline, timeout: float) -> None:
        spec = pipeline.spec
        assert spec is not None
        self._pipeline = pipeline
        session = boto3.session.Session(region_name=spec.region)
        self._s3 = session.client("s3", endpoint_url=spec.aws_endpoint_url)
        self._table = ResultsTable.named_in(
            session.client("dynamodb", endpoint_url=spec.aws_endpoint_url), spec.outputs
        )
        self._bucket = spec.outputs[StackOutput.INPUT_BUCKET_NAME]
        self._timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=UPLOAD_THREADS, thread_name_prefix="upload")

    def close(self) -> None:
        self._pool.shutdown()

    def _upload(self, key: str) -> str:
        response = self._s3.put_object(
            Bucket=self._bucket, Key=key, Body=OBJECT_BODY, ContentType=OBJECT_CONTENT_TYPE
        )
        return inference_id_for(self._bucket, key, response.get("VersionId"), response["ETag"])

    def _results_delivered(self) -> int:
        """Notifications the results function is done with (the runner's own counters)."""
        assert self._pipeline.runner is not None
        return sum(
            stats.succeeded
            for stats in self._pipeline.runner.stats().values()
            if stats.function_name == "results"
        )

    def run(self, name: str, files: int) -> Run:
        keys = [f"e2e/{name}/{number:05d}.json" for number in range(files)]
        delivered_before = self._results_delivered()
        start = cpu_snapshot()
        started = time.perf_counter()
        deadline = started + self._timeout
        milestones = _Milestones(files)
        uploads: list[Future[str]] = []
        while len(uploads) < files and time.perf_counter() < deadline:
            done = self._results_delivered() - delivered_before
            milestones.reached(done)
            room = min(IN_FLIGHT_LIMIT - (len(uploads) - done), files - len(uploads))
            if room <= 0:
                time.sleep(COUNTER_POLL_SECONDS)
                continue
            uploads += [self._pool.submit(self._upload, key) for key in keys[len(uploads) :][:room]]
        if len(uploads) < files:
            raise TimeoutError(f"{files - len(uploads)} files not even uploaded in time")
        ids = [upload.result() for upload in uploads]
        # Watching the runner's counters costs nothing; the table is read once they say done.
        while (done := self._results_delivered() - delivered_before) < files:
            milestones.reached(done)
            if time.perf_counter() > deadline:
                break
            time.sleep(COUNTER_POLL_SECONDS)
        statuses = self._wait_terminal(ids, deadline)
        seconds = time.perf_counter() - started
        end = cpu_snapshot()
        return Run(
            files=files,
            seconds=seconds,
            cpu_seconds=cpu_between(start, end),
            statuses=dict(statuses),
            cpu_by_process=cpu_by_process(start, end),
            early_cpu_per_file=milestones.cpu_per_file(0),
            late_cpu_per_file=milestones.cpu_per_file(1),
            early_by_process=milestones.by_process(0),
            late_by_process=milestones.by_process(1),
        )

    def _wait_terminal(self, ids: list[str], deadline: float) -> Counter[str]:
        """Reads the records, oldest upload first, until every one is terminal; returns the
        count per terminal status."""
        pending = list(ids)
        done: Counter[str] = Counter()
        while pending:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{len(pending)} of {len(ids)} records not terminal in time")
            batch = pending[:BATCH_GET_MAX_KEYS]
            terminal = {
                inference_id: status
                for inference_id, status in self._statuses(batch)
                if status in TERMINAL_STATUSES
            }
            done.update(terminal.values())
            pending = [inference_id for inference_id in pending if inference_id not in terminal]
            if len(terminal) < len(batch):
                time.sleep(POLL_SECONDS)
        return done

    def _statuses(self, ids: list[str]) -> list[tuple[str, str]]:
        return [
            (record.inference_id, record.status) for record in self._table.get_many(ids).values()
        ]


def measure(
    state_dir: Path,
    *,
    small_files: int,
    large_files: int,
    warmup_files: int,
    timeout_seconds: float,
    context: dict[str, str],
    rounds: int = 1,
) -> list[Throughput]:
    """``rounds`` rounds (small, large, small) in one pipeline, consecutive rounds sharing a
    small run."""
    options = LocalOptions(state_dir=state_dir, context=dict(context))
    with LocalPipeline(options) as pipeline:
        assert pipeline.spec is not None
        assert pipeline.runtime is not None
        driver = _Driver(pipeline, timeout_seconds)
        measured: list[tuple[Run, Run, Run]] = []
        try:
            driver.run("warmup", warmup_files)
            small = driver.run("small-1", small_files)
            for index in range(1, rounds + 1):
                large = driver.run(f"large-{index}", large_files)
                small_after = driver.run(f"small-{index + 1}", small_files)
                measured.append((small, large, small_after))
                small = small_after
        finally:
            driver.close()
        return [
            Throughput(
                small=before,
                large=large,
                small_after=after,
                context=dict(context),
                ingest_concurrency=pipeline.spec.ingest.maximum_concurrency,
                results_concurrency=len(pipeline.spec.results),
                runtime_workers=pipeline.runtime.worker_count,
            )
            for before, large, after in measured
        ]
