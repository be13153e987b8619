"""What the reliability tests share: a running local pipeline, AWS clients, waits, the summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

from asyncinfer.local.aws.iam import admin_session
from asyncinfer.local.faults import FaultSettings
from asyncinfer.local.provision.spec import LocalPipelineSpec
from asyncinfer.local.session import LocalOptions, LocalPipeline
from lambdas.common.items import record_from_item
from lambdas.common.records import (
    TERMINAL_STATUSES,
    FailureStage,
    InferenceRecord,
    inference_id_for,
)
from lambdas.common.store import RecordStore

ROOT = Path(__file__).resolve().parents[2]
DEAD_LETTER_OUTPUTS = (
    "IngestDeadLetterQueueUrl",
    "SuccessDeadLetterQueueUrl",
    "ErrorDeadLetterQueueUrl",
    "ResultsFailureQueueUrl",
)
# The runtime's answers that are injected faults (not the caller's mistakes).
FAULT_ERROR_CODES = frozenset(
    {"ThrottlingException", "ServiceUnavailable", "InternalFailure", "ModelNotReadyException"}
)
# Small timeouts so that a failed batch comes back within seconds: the ingest queue's
# visibility timeout is 6x ingest_timeout_seconds (18 s here).
FAST_CONTEXT = {
    "ingest_timeout_seconds": "3",
    "results_timeout_seconds": "5",
    "max_receive_count": "5",
    "max_concurrency": "4",
    "batch_size": "10",
    "max_concurrent_invocations_per_instance": "8",
}
IRIS_ROWS = (
    (5.1, 3.5, 1.4, 0.2),
    (6.7, 3.1, 4.4, 1.4),
    (7.7, 3.8, 6.7, 2.2),
    (5.0, 3.6, 1.4, 0.2),
    (6.3, 2.5, 5.0, 1.9),
)
# The reconciler's settlements that write an outcome (lambdas.reconciler.logic.Settlement).
SETTLED = frozenset({"completed", "failed", "expired"})
# The demo model rejects this (not four numbers): the inference fails, deterministically.
MODEL_REJECTED_BODY = b"this is not,a flower\n1,2\n"


@dataclass(frozen=True)
class Observation:
    """One test's outcome, every figure counted from the running pipeline, none assumed."""

    files: int  # objects the test uploaded or announced
    terminal: int  # records found in a terminal state
    lost: int  # files without any record in the table
    duplicate_invocations: int  # files the runtime accepted more than once
    dlq_left: int  # messages left in the dead-letter queues
    faults_injected: int  # as the runtime, the runner and the fault proxies report them
    # records whose outcome the reconciler wrote (its "Reconciled" log lines, settled ones)
    settled_by_reconciler: int = 0
    expired: int = 0  # records FAILED with failure_stage "expired"


@dataclass
class Summary:
    """The totals the suite prints at the end (see conftest.py)."""

    files: int = 0
    terminal: int = 0
    lost: int = 0
    duplicate_invocations: int = 0
    dlq_left: int = 0
    faults_injected: int = 0
    settled_by_reconciler: int = 0
    expired: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def add_observation(self, observation: Observation) -> None:
        self.add(**{f.name: getattr(observation, f.name) for f in fields(Observation)})

    def counts(self) -> dict[str, int]:
        """The totals by name (what an xdist worker sends to the controller)."""
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(Observation)}

    def line(self) -> str:
        return (
            f"reliability: files={self.files} terminal={self.terminal} lost={self.lost} "
            f"duplicate_invocations={self.duplicate_invocations} dlq_left={self.dlq_left} "
            f"faults_injected={self.faults_injected} "
            f"settled_by_reconciler={self.settled_by_reconciler} expired={self.expired}"
        )


SUMMARY = Summary()


@dataclass
class Harness:
    pipeline: LocalPipeline
    spec: LocalPipelineSpec
    s3: Any
    sqs: Any
    dynamodb: Any

    @property
    def bucket(self) -> str:
        return self.spec.outputs["InputBucketName"]

    @property
    def table(self) -> str:
        return self.spec.outputs["ResultsTableName"]

    @property
    def store(self) -> RecordStore:
        return RecordStore(self.dynamodb, self.table)

    @property
    def runtime_stats(self) -> dict[str, Any]:
        assert self.pipeline.runtime is not None
        return self.pipeline.runtime.stats()

    def put(
        self,
        key: str,
        body: bytes,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> str:
        """Uploads one object; returns its inference id."""
        extra: dict[str, Any] = {}
        if metadata is not None:
            extra["Metadata"] = dict(metadata)
        if content_type is not None:
            extra["ContentType"] = content_type
        response = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)
        return inference_id_for(self.bucket, key, response.get("VersionId"), response["ETag"])

    def dead_letter_queues(self) -> dict[str, str]:
        return {name: self.spec.outputs[name] for name in DEAD_LETTER_OUTPUTS}

    def queue_depth(self, queue_url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def dead_letter_depths(self) -> dict[str, int]:
        return {name: self.queue_depth(url) for name, url in self.dead_letter_queues().items()}

    def work_queues(self) -> list[str]:
        return [
            self.spec.ingest.queue_url,
            *(source.delivery_queue_url for source in self.spec.results),
        ]

    def records(self, inference_ids: Iterable[str]) -> dict[str, InferenceRecord | None]:
        """Each id's record (None: no item), read consistently as ``RecordStore.get`` reads,
        100 keys a call: a test counts a thousand records many times, and one GetItem each
        would keep the single moto server busy for many seconds."""
        ids = list(dict.fromkeys(inference_ids))
        found: dict[str, InferenceRecord | None] = dict.fromkeys(ids)
        for start in range(0, len(ids), 100):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [{"inference_id": {"S": i}} for i in ids[start : start + 100]],
                    "ConsistentRead": True,
                }
            }
            while request:
                response = self.dynamodb.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self.table, []):
                    record = record_from_item(item)
                    found[record.inference_id] = record
                request = response.get("UnprocessedKeys") or {}
        return found

    def scan_items(self) -> list[dict[str, Any]]:
        """Every item of the table (the attributes that identify it), as plain values."""
        items: list[dict[str, Any]] = []
        paginator = self.dynamodb.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self.table,
            ProjectionExpression="inference_id, input_location, input_version, #s",
            ExpressionAttributeNames={"#s": "status"},
        ):
            items.extend(
                {name: next(iter(value.values())) for name, value in item.items()}
                for item in page["Items"]
            )
        return items

    def cli(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """Runs ``asyncinfer <arguments>`` against local mode, as a user would."""
        environment = {**os.environ, **self.pipeline.client_environment()}
        return subprocess.run(
            [sys.executable, "-m", "asyncinfer", *arguments],
            capture_output=True,
            text=True,
            env=environment,
            cwd=ROOT,
            timeout=120,
            check=False,
        )

    def redrive(self) -> dict[str, int]:
        """Runs the user's ``redrive`` command against local mode, as a user would; returns
        the number of messages moved per dead-letter queue URL."""
        environment = {**os.environ, **self.pipeline.client_environment()}
        completed = subprocess.run(
            [sys.executable, "-m", "asyncinfer", "redrive", "--json"],
            capture_output=True,
            text=True,
            env=environment,
            cwd=ROOT,
            timeout=120,
            check=False,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
        return {report["queue_url"]: report["moved"] for report in json.loads(completed.stdout)}

    def function_log(self, function_name: str) -> str:
        return (self.pipeline.log_dir / f"{function_name}.log").read_text(errors="replace")

    def reconciler_settlements(self) -> dict[str, str]:
        """What the reconciler wrote, by inference id, read from its log ("Reconciled" lines
        whose settlement changed the record: completed, failed or expired)."""
        path = self.pipeline.log_dir / "reconciler.log"
        if not path.exists():
            return {}
        settled: dict[str, str] = {}
        for line in path.read_text(errors="replace").splitlines():
            if '"Reconciled"' not in line:
                continue
            try:
                entry = json.loads(line[line.index("{") :])
            except ValueError:
                continue
            if entry.get("message") == "Reconciled" and entry.get("settlement") in SETTLED:
                settled[entry["inference_id"]] = entry["settlement"]
        return settled

    def runner_total(self, counter: str) -> int:
        assert self.pipeline.runner is not None
        return sum(getattr(stats, counter) for stats in self.pipeline.runner.stats().values())

    def runtime_faults(self) -> int:
        """Calls the runtime refused with an injected fault (throttles, 5xx, not ready)."""
        rejected: dict[str, int] = self.runtime_stats["rejected"]
        return sum(count for code, count in rejected.items() if code in FAULT_ERROR_CODES)


def observe(
    harness: Harness, inference_ids: Iterable[str], faults_injected: Callable[[], int]
) -> Observation:
    """Counts the outcome of ``inference_ids`` in the table, the runtime and the queues."""
    ids = list(dict.fromkeys(inference_ids))
    found = [record for record in harness.records(ids).values() if record is not None]
    accepted = harness.runtime_stats["accepted_per_inference_id"]
    by_reconciler = harness.reconciler_settlements()
    return Observation(
        files=len(ids),
        terminal=sum(1 for record in found if record.status in TERMINAL_STATUSES),
        lost=len(ids) - len(found),
        duplicate_invocations=sum(1 for i in ids if accepted.get(i, 0) > 1),
        dlq_left=sum(harness.dead_letter_depths().values()),
        faults_injected=faults_injected(),
        settled_by_reconciler=sum(1 for i in ids if i in by_reconciler),
        expired=sum(1 for record in found if record.failure_stage == FailureStage.EXPIRED),
    )


@contextmanager
def summarized(
    harness: Harness,
    inference_ids: Iterable[str],
    faults_injected: Callable[[], int],
    summary: Summary | None = None,
) -> Iterator[None]:
    """Adds what ``observe`` counts to the summary when the block ends, passed or failed, so
    that a failing run prints its real figures. ``inference_ids`` is read at the end: pass a
    list the block fills."""
    try:
        yield
    finally:
        try:
            observation = observe(harness, inference_ids, faults_injected)
        except Exception as error:  # the pipeline may be what failed: keep the test's error
            print(f"reliability: could not observe the outcome: {error!r}", file=sys.stderr)
        else:
            (summary or SUMMARY).add_observation(observation)


def emf_documents(log: str, metric_name: str) -> list[dict[str, Any]]:
    """The Powertools EMF documents of a function log that carry this metric."""
    documents = []
    for line in log.splitlines():
        if '"_aws"' not in line:
            continue
        document = json.loads(line[line.index("{") :])
        names = {
            metric["Name"]
            for directive in document["_aws"]["CloudWatchMetrics"]
            for metric in directive["Metrics"]
        }
        if metric_name in names:
            documents.append(document)
    return documents


def metric_total(log: str, metric_name: str) -> int:
    """The sum of a metric's values over a function log's EMF documents."""
    total = 0
    for document in emf_documents(log, metric_name):
        value = document[metric_name]
        total += int(sum(value)) if isinstance(value, list) else int(value)
    return total


@contextmanager
def running_pipeline(
    state_dir: Path,
    *,
    context: Mapping[str, str] | None = None,
    faults: FaultSettings | None = None,
    runner_options: Mapping[str, Any] | None = None,
    function_environment: Mapping[str, Mapping[str, str]] | None = None,
    template_transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    schedule_period_seconds: float | None = None,
) -> Iterator[Harness]:
    options = LocalOptions(
        state_dir=state_dir,
        context={**FAST_CONTEXT, **(context or {})},
        runtime_options={"faults": faults} if faults is not None else {},
        runner_options=dict(runner_options or {}),
        function_environment={
            name: dict(env) for name, env in (function_environment or {}).items()
        },
        template_transform=template_transform,
        schedule_period_seconds=schedule_period_seconds,
    )
    with LocalPipeline(options) as pipeline:
        assert pipeline.spec is not None
        spec = pipeline.spec
        session = admin_session(spec.region)
        config = Config(max_pool_connections=32, retries={"mode": "standard", "max_attempts": 5})
        clients = {
            name: session.client(name, endpoint_url=spec.aws_endpoint_url, config=config)
            for name in ("s3", "sqs", "dynamodb")
        }
        yield Harness(pipeline, spec, clients["s3"], clients["sqs"], clients["dynamodb"])


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.25
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def wait_terminal(
    harness: Harness, inference_ids: Iterable[str], timeout: float
) -> dict[str, InferenceRecord]:
    """Polls until every id has a terminal record; fails naming what is missing."""
    waiting = set(inference_ids)
    done: dict[str, InferenceRecord] = {}
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for inference_id, record in harness.records(sorted(waiting)).items():
            if record is not None and record.status in TERMINAL_STATUSES:
                done[inference_id] = record
                waiting.discard(inference_id)
        if waiting:
            time.sleep(0.5)
    if waiting:
        first = harness.records(sorted(waiting)[:10])
        statuses = {i: getattr(record, "status", None) for i, record in first.items()}
        pytest.fail(
            f"{len(waiting)} inferences not terminal after {timeout:.0f}s "
            f"(dead letters: {harness.dead_letter_depths()}); first: {statuses}"
        )
    return done


def wait_quiet(harness: Harness, timeout: float) -> None:
    """Until the ingest and delivery queues are empty (in flight included) and the runtime
    idle."""

    def quiet() -> bool:
        stats = harness.runtime_stats
        if stats["in_flight"] or stats["queue_depth"]:
            return False
        return all(harness.queue_depth(url) == 0 for url in harness.work_queues())

    wait_until(quiet, timeout, "the queues to drain and the runtime to be idle")


def iris_csv(row: tuple[float, ...]) -> bytes:
    return (",".join(str(value) for value in row) + "\n").encode()


def iris_json(row: tuple[float, ...]) -> bytes:
    return json.dumps({"instances": [list(row)]}).encode()


def s3_event(
    bucket: str, key_in_event: str, *, size: int, version_id: str | None, region: str
) -> dict[str, Any]:
    """An S3 ObjectCreated notification as S3 sends it to SQS (the key URL-encoded)."""
    obj: dict[str, Any] = {"key": key_in_event, "size": size, "sequencer": "0A1B2C3D4E5F678901"}
    if version_id is not None:
        obj["versionId"] = version_id
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": "2026-11-21T00:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:LOCAL"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "LOCAL", "x-amz-id-2": "LOCAL"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "reliability",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "LOCAL"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": obj,
                },
            }
        ]
    }


def set_faults(harness: Harness, **changes: Any) -> None:
    """Through the runtime's admin API, as a user of local mode would."""
    assert harness.pipeline.runtime is not None
    request = urllib.request.Request(
        f"{harness.pipeline.runtime.admin_url}/faults",
        data=json.dumps(changes).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
