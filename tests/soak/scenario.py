"""One local pipeline under every fault knob at once, for any number of files: the soak runs it
at SOAK_FILES (``make soak``), the reliability suite at a few dozen (``make test``).

At once: the endpoint throttles and answers 5xx (``throttle_rate``, ``error_rate``), expires
requests (``expire_rate``) and loses notifications (``drop_notification_rate``); the runner
delivers S3 events and SNS notifications twice (``duplicate_delivery_rate``); and, over time
(``chaos.py``), the endpoint goes down, the results table refuses writes, function workers are
killed mid-invocation, older notifications arrive late, and ``asyncinfer redrive`` runs
whenever a dead-letter queue holds something. The files race their own ingest: overwrites and
deletes right after the upload (``workload.py``). A short tail of files meets both expiry and
a lost notification, so the reconciler's ``expired`` settlement happens in a run of any size;
the reconciler runs on its schedule (every 2 s here) with test-sized deadlines.

The run adds its observation to the suite's summary line (``reliability: files=... lost=0
duplicate_invocations=0 dlq_left=0 ...``, every figure counted) and fails when anything is
lost, invoked twice, wrong (every record's label is checked against its own input's) or left
in a queue.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from asyncinfer.local.faults import DynamoDBFaultProxy, FaultSettings
from asyncinfer.local.processes import project_root
from asyncinfer.local.provision.synth import synthesize
from lambdas.common.records import TERMINAL_STATUSES, Status, inference_id_for
from tests.reliability.support import (
    FAST_CONTEXT,
    Harness,
    observe,
    running_pipeline,
    summarized,
    wait_quiet,
)
from tests.soak.chaos import Chaos, Pace, set_faults, wait_for
from tests.soak.workload import PREFIX, SoakFile, body_of, upload, wrong_outcome

CONTEXT = {
    # the reconciler's test-sized deadlines (tests/reliability/test_reconciler.py)
    "request_ttl_seconds": "60",
    "invocation_timeout_seconds": "2",
    "reconcile_every_minutes": "1",
    "max_concurrency": "6",
    # a loaded machine stretches every call: a 3 s function (FAST_CONTEXT) times out in loops
    "ingest_timeout_seconds": "6",
    "results_timeout_seconds": "10",
}
FAULTS = FaultSettings(
    throttle_rate=0.1,
    error_rate=0.03,
    expire_rate=0.01,
    drop_notification_rate=0.03,
    seed=20261204,
)
DUPLICATE_DELIVERY_RATE = 0.1
# Uploads wait while the ingest queue and the results function's delivery queues hold this many
# messages together, so that the races meet ingest and results keep up with ingest.
BACKLOG = 150
TAIL = 3  # files that meet expiry and a lost notification both
SETTLE_SECONDS = 600.0
PROGRESS_EVERY_SECONDS = 60.0


def injected(harness: Harness, proxy: DynamoDBFaultProxy, chaos: Chaos, races: int) -> int:
    """Every fault as the pipeline and the drivers count it."""
    stats = harness.runtime_stats
    endpoint_faults: int = stats["notifications_dropped"] + stats["expired"]
    return (
        harness.runtime_faults()
        + endpoint_faults
        + harness.runner_total("duplicated")
        + harness.runner_total("worker_restarts")
        + proxy.stats()["rejected"]
        + chaos.counts["stale_notifications"]
        + races
    )


class Backlog:
    """The pipeline's backlog (the ingest queue and the results function's delivery queues),
    read by one uploader at a time at most once a second: eight uploaders asking before every
    upload would keep the single AWS server busy answering them."""

    def __init__(self, harness: Harness) -> None:
        self._harness = harness
        self._lock = threading.Lock()
        self._depth = 0
        self._read_at = -1.0

    def depth(self) -> int:
        with self._lock:
            if time.monotonic() - self._read_at >= 1.0:
                self._depth = sum(
                    self._harness.queue_depth(url) for url in self._harness.work_queues()
                )
                self._read_at = time.monotonic()
            return self._depth


def load(harness: Harness, count: int, files: list[SoakFile], lock: threading.Lock) -> None:
    """Uploads ``count`` files in parallel, pausing while the pipeline's backlog is long: ingest
    and results then progress with the uploads, and the races meet ingest."""
    backlog = Backlog(harness)

    def one(number: int) -> None:
        while backlog.depth() > BACKLOG:
            time.sleep(0.5)
        versions = upload(harness, number)
        with lock:
            files.extend(versions)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(count)))


def submitted(harness: Harness, ids: list[str], timeout: float) -> None:
    """Until ingest is done with every id (no record still PENDING) and the endpoint holds no
    request: the tail's faults then meet the tail alone."""

    waiting = set(ids)  # a record past PENDING never returns to it: only these are read again

    def done() -> bool:
        records = harness.records(waiting)
        waiting.difference_update(i for i, r in records.items() if r and r.status != Status.PENDING)
        if waiting:
            return False
        stats = harness.runtime_stats
        return not stats["queue_depth"] and not stats["in_flight"]

    assert wait_for(done, timeout, interval=2.0), "ingest did not get through the files"


def tail(harness: Harness, files: list[SoakFile]) -> None:
    """TAIL files whose request expires and whose failure notification is lost: only the
    reconciler can settle them (``expired``)."""
    set_faults(harness, expire_rate=1.0, drop_notification_rate=1.0)
    try:
        added = []
        for number in range(TAIL):
            body, label = body_of(number)
            key = f"{PREFIX}tail/{number}.json"
            response = harness.s3.put_object(Bucket=harness.bucket, Key=key, Body=body)
            version = response.get("VersionId")
            inference_id = inference_id_for(harness.bucket, key, version, response["ETag"])
            added.append(SoakFile(inference_id, key, version, "tail", label))
        files.extend(added)
        ids = {file.inference_id for file in added}
        assert wait_for(
            lambda: ids <= set(harness.runtime_stats["expired_inference_ids"]), timeout=180
        ), "the tail's requests never reached the endpoint"
    finally:
        set_faults(
            harness,
            expire_rate=FAULTS.expire_rate,
            drop_notification_rate=FAULTS.drop_notification_rate,
        )


def settle(harness: Harness, ids: list[str]) -> None:
    """As a user would: redrive what lands in a dead-letter queue until every record has an
    outcome and nothing is left anywhere."""
    last_report = time.monotonic()
    open_ids = set(ids)  # a terminal record stays terminal: only the others are read again

    def done() -> bool:
        nonlocal last_report
        if any(harness.dead_letter_depths().values()):
            if all(harness.queue_depth(url) == 0 for url in harness.work_queues()):
                harness.redrive()
            return False
        records = harness.records(open_ids)
        open_ids.difference_update(
            i for i, r in records.items() if r is not None and r.status in TERMINAL_STATUSES
        )
        open_ = len(open_ids)
        if time.monotonic() - last_report > PROGRESS_EVERY_SECONDS:
            last_report = time.monotonic()
            print(f"soak: settling, {open_} of {len(ids)} without an outcome", file=sys.stderr)
        return open_ == 0

    wait_for(done, timeout=SETTLE_SECONDS, interval=5.0)
    wait_quiet(harness, timeout=120)


def run(state_dir: Path, proxy: DynamoDBFaultProxy, count: int, pace: Pace) -> None:
    """``count`` files (and the versions their races add) under every fault; fails unless
    every version ends right, once, with nothing left in a queue."""
    started = time.monotonic()
    # Synthesized first, into the session's shared cache: local mode's start-up deadline (60 s)
    # then covers only its servers, not Node.js and cdk-nag on a loaded machine.
    synthesize(project_root(), state_dir / "synth" / "cdk.out", {**FAST_CONTEXT, **CONTEXT})
    with running_pipeline(
        state_dir / "local",
        context=CONTEXT,
        faults=FAULTS,
        runner_options={"duplicate_delivery_rate": DUPLICATE_DELIVERY_RATE, "seed": 26},
        function_environment={
            "reconciler": {"SUBMITTED_MARGIN_SECONDS": "2"},
            "results": {"AWS_ENDPOINT_URL_DYNAMODB": proxy.url},
        },
        schedule_period_seconds=2.0,
    ) as harness:
        proxy.connect(harness.spec.aws_endpoint_url)
        files: list[SoakFile] = []
        lock = threading.Lock()

        def uploaded() -> list[str]:
            with lock:
                return [file.inference_id for file in files]

        ids: list[str] = []  # filled once every version is known: the summary counts them
        races = 0
        chaos = Chaos(harness, proxy, uploaded, pace)
        with summarized(
            harness, ids, faults_injected=lambda: injected(harness, proxy, chaos, races)
        ):
            chaos.start()
            try:
                load(harness, count, files, lock)
                submitted(harness, uploaded(), timeout=SETTLE_SECONDS)
                tail(harness, files)
                # a short run still meets every timed fault once
                wait_for(chaos.each_acted, timeout=pace.outage_every * 3 + 60)
            finally:
                chaos.stop()
            ids.extend(file.inference_id for file in files)
            races = sum(1 for file in files if file.kind in ("overwritten", "deleted", "purged"))
            print(
                f"soak: {len(files)} versions uploaded in {time.monotonic() - started:.0f}s",
                file=sys.stderr,
            )
            settle(harness, ids)
            check(harness, files, chaos, count, started)


def check(
    harness: Harness, files: list[SoakFile], chaos: Chaos, count: int, started: float
) -> None:
    ids = [file.inference_id for file in files]
    stats = harness.runtime_stats
    expired, dropped = set(stats["expired_inference_ids"]), set(stats["dropped_notification_ids"])
    records = harness.records(ids)
    wrong = {}
    for file in files:
        why = wrong_outcome(
            harness,
            file,
            records[file.inference_id],
            expired=file.inference_id in expired,
            dropped=file.inference_id in dropped,
        )
        if why:
            wrong[file.key] = why
    items = [i for i in harness.scan_items() if f"/{PREFIX}" in i["input_location"]]
    per_version = Counter((i["input_location"], i.get("input_version")) for i in items)
    observation = observe(harness, ids, faults_injected=lambda: 0)
    print(  # what the drivers did, beside the summary line
        f"soak: {len(files)} versions in {time.monotonic() - started:.0f}s; "
        f"chaos={dict(chaos.counts)} runtime_rejections={stats['rejected']} "
        f"duplicated={harness.runner_total('duplicated')} "
        f"worker_restarts={harness.runner_total('worker_restarts')} "
        f"wrong={len(wrong)} driver_errors={chaos.errors}",
        file=sys.stderr,
    )
    assert len(ids) == len(set(ids)) >= count
    # the labels were checked on most files, not only the expiry of a few
    labelled = sum(1 for r in records.values() if r is not None and r.status == "COMPLETED")
    assert labelled >= len(ids) // 2, f"only {labelled} of {len(ids)} files COMPLETED"
    assert not chaos.errors
    assert dict(list(wrong.items())[:20]) == {}, f"{len(wrong)} records are wrong"
    assert len(items) == len(ids), f"{len(items)} records for {len(ids)} versions"
    assert set(per_version.values()) == {1}
    assert observation.lost == 0
    assert observation.duplicate_invocations == 0, stats["duplicate_inference_ids"][:20]
    assert observation.dlq_left == 0, harness.dead_letter_depths()
    assert observation.terminal == len(ids)
    assert observation.settled_by_reconciler > 0
    assert observation.expired > 0
    assert chaos.each_acted(), dict(chaos.counts)
    assert stats["rejected"].get("ThrottlingException", 0) > 0
    assert harness.runner_total("duplicated") > 0
