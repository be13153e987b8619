"""The demo's job: the demo's files plus one missing key, as one job (docs/jobs.md)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from asyncinfer.cli.access.jobs import JobsTable, JobView, manifest_key, put_manifest
from lambdas.common.contract import StackOutput

WAIT_TIMEOUT_SECONDS = 120.0
MISSING_KEY = "no-such-file.csv"  # a FAILED entry of the job: the job never waits for it


def run_demo_job(
    s3: Any, dynamodb: Any, outputs: dict[str, str], keys: list[str], folder: str
) -> tuple[JobView, list[dict[str, Any]]] | None:
    """Submit the manifest, wait for the job, read its results file (None: a stack without
    jobs, or a job that did not finish in time)."""
    jobs_prefix = outputs.get(StackOutput.JOBS_PREFIX)
    table_name = outputs.get(StackOutput.JOBS_TABLE_NAME)
    if not jobs_prefix or not table_name:
        return None
    name = f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}"  # a name starts one job only
    bucket = outputs[StackOutput.INPUT_BUCKET_NAME]
    relative = [key.removeprefix(folder) for key in keys] + [MISSING_KEY]
    put_manifest(s3, bucket, manifest_key(jobs_prefix, name), folder, relative)
    table = JobsTable(dynamodb, table_name)
    deadline = time.monotonic() + WAIT_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        view = table.get(name)
        if view is not None and view.final and view.results_location:
            results_bucket, key = view.results_location.removeprefix("s3://").split("/", 1)
            body = s3.get_object(Bucket=results_bucket, Key=key)["Body"].read().decode()
            return view, [json.loads(line) for line in body.splitlines() if line]
        time.sleep(0.3)
    return None


def job_table(view: JobView, lines: list[dict[str, Any]], shown: int = 6) -> Table:
    table = Table(
        title=f"job {view.name}: {view.status}, {view.completed} completed, {view.failed} "
        f"failed of {view.total} entries -> {view.results_location}"
    )
    for column in ("#", "key", "status", "failure stage / reason"):
        table.add_column(column, overflow="fold")
    picked = [*lines[: shown - 1], lines[-1]] if len(lines) > shown else lines
    for line in picked:
        position = lines.index(line) + 1
        reason = f"{line.get('failure_stage') or ''} {line.get('failure_reason') or ''}".strip()
        table.add_row(str(position), str(line["key"]), str(line["status"]), reason[:120])
    return table
