"""``asyncinfer demo``: the whole pipeline, locally, on sample files, with the results printed."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import boto3
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from asyncinfer import local as local_mode
from asyncinfer.cli.access.table import ResultsTable
from asyncinfer.cli.commands.common import parse_context, require_local_extra
from asyncinfer.cli.commands.demo_job import job_table, run_demo_job
from asyncinfer.local.processes import LocalModeError
from asyncinfer.local.provision.spec import EndpointSpec
from asyncinfer.local.provision.synth import SynthError
from asyncinfer.local.provision.template import TemplateError
from asyncinfer.local.session import LocalOptions, LocalPipeline, default_state_dir
from lambdas.common.clock import parse_timestamp
from lambdas.common.contract import StackOutput
from lambdas.common.records import TERMINAL_STATUSES, InferenceRecord, Status
from lambdas.common.records import inference_id_for as compute_inference_id

SAMPLES = Path(local_mode.__file__).parent / "samples"
BATCH_SIZE = 24
WAIT_TIMEOUT_SECONDS = 120.0
# Wide enough for the results table when the output is a file or a CI log, not a terminal.
console = Console(width=None if Console().is_terminal else 180)


@dataclass(frozen=True)
class Upload:
    key: str
    inference_id: str


def demo_inputs() -> list[tuple[str, bytes]]:
    """The shipped samples plus one larger batch of generated single-flower CSV files."""
    inputs = [(f"demo/{path.name}", path.read_bytes()) for path in sorted(SAMPLES.iterdir())]
    generator = random.Random(7)  # noqa: S311 - sample data, not security
    for index in range(BATCH_SIZE):
        row = [round(generator.uniform(low, high), 1) for low, high in _FEATURE_RANGES]
        inputs.append(
            (f"demo/batch/flower-{index:03d}.csv", (",".join(map(str, row)) + "\n").encode())
        )
    return inputs


_FEATURE_RANGES = ((4.3, 7.9), (2.0, 4.4), (1.0, 6.9), (0.1, 2.5))


def upload(s3: Any, bucket: str, inputs: list[tuple[str, bytes]]) -> list[Upload]:
    uploads = []
    for key, body in inputs:
        response = s3.put_object(Bucket=bucket, Key=key, Body=body)
        uploads.append(
            Upload(
                key, compute_inference_id(bucket, key, response.get("VersionId"), response["ETag"])
            )
        )
    return uploads


def wait_for_terminal(table: ResultsTable, uploads: list[Upload]) -> dict[str, InferenceRecord]:
    ids = [item.inference_id for item in uploads]
    deadline = time.monotonic() + WAIT_TIMEOUT_SECONDS
    with Progress(
        TextColumn("waiting for results"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("results", total=len(ids))
        while True:
            records = table.get_many(ids)
            done = sum(1 for record in records.values() if record.status in TERMINAL_STATUSES)
            progress.update(task, completed=done)
            if done == len(ids) or time.monotonic() > deadline:
                return records
            time.sleep(0.2)


def _latency_ms(record: InferenceRecord) -> str:
    if record.submitted_at and record.completed_at:
        elapsed = parse_timestamp(record.completed_at) - parse_timestamp(record.submitted_at)
        return f"{elapsed.total_seconds() * 1000:.0f}"
    return "-"


def _outcome(record: InferenceRecord) -> str:
    if record.failure_reason:
        return record.failure_reason[:220]
    if record.result:
        try:
            predictions = json.loads(record.result)["predictions"]
            return ", ".join(str(prediction["label"]) for prediction in predictions)
        except (ValueError, KeyError, TypeError):
            return record.result[:70]
    return record.output_location or ""


def _landed(record: InferenceRecord, endpoint: EndpointSpec) -> str:
    """Where the output (or, for a failure, the failure object) landed, relative to the
    endpoint's path: the record's location, as SageMaker's response gave it."""
    if record.status == Status.FAILED:
        location = record.failure_location or ""
        return "failure: " + location.removeprefix(endpoint.failure_path.rstrip("/") + "/")
    location = record.output_location or ""
    return location.removeprefix(endpoint.output_path.rstrip("/") + "/")


def results_table(
    uploads: list[Upload], records: dict[str, InferenceRecord], endpoint: EndpointSpec
) -> Table:
    table = Table(title="SageMaker async inference: local demo results")
    columns = ("inference id", "input", "status", "latency ms", "result / failure reason")
    for column in columns:
        table.add_column(column, overflow="fold")
    table.add_column("landed at (under the output / failure path)", overflow="fold")
    for item in uploads:
        record = records.get(item.inference_id)
        status = record.status if record else "MISSING"
        style = {"COMPLETED": "green", "FAILED": "red"}.get(str(status), "yellow")
        table.add_row(
            item.inference_id[:12] + "…",
            item.key,
            f"[{style}]{status}[/{style}]",
            _latency_ms(record) if record else "-",
            _outcome(record) if record else "",
            _landed(record, endpoint) if record else "",
        )
    return table


def demo(
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="Folder for local state [default: .local]")
    ] = None,
    context: Annotated[
        list[str] | None,
        typer.Option(
            "--context",
            "-c",
            help="CDK context key=value, as cdk -c (repeatable; an empty value: the default).",
        ),
    ] = None,
) -> None:
    """Run the pipeline locally on sample files and print every result."""
    require_local_extra()
    started = time.monotonic()
    options = LocalOptions(
        state_dir=(state_dir or default_state_dir()).resolve(),
        context=parse_context(context or []),
    )
    spinner = console.status("starting local mode")
    spinner.start()
    try:
        with LocalPipeline(
            options, progress=lambda step: spinner.update(f"starting local mode: {step}")
        ) as pipeline:
            spinner.stop()  # the steps after this one show their own progress
            spec = pipeline.spec
            assert spec is not None
            console.print(f"local mode up in {time.monotonic() - started:.1f}s")
            session = boto3.session.Session(region_name=spec.region)
            s3 = session.client("s3", endpoint_url=spec.aws_endpoint_url)
            table = ResultsTable.named_in(
                session.client("dynamodb", endpoint_url=spec.aws_endpoint_url), spec.outputs
            )
            bucket = spec.outputs[StackOutput.INPUT_BUCKET_NAME]
            inputs = demo_inputs()
            console.print(f"uploading {len(inputs)} files to s3://{bucket}/demo/")
            uploads = upload(s3, bucket, inputs)
            records = wait_for_terminal(table, uploads)
            console.print("the same files as one job (a manifest, plus a key with no object)")
            job = run_demo_job(
                s3,
                session.client("dynamodb", endpoint_url=spec.aws_endpoint_url),
                spec.outputs,
                [item.key for item in uploads],
                folder="demo/",
            )
    except (LocalModeError, SynthError, TemplateError) as error:
        console.print(f"[red]demo: {error}[/red]")
        raise typer.Exit(code=1) from error
    finally:
        spinner.stop()
    naming = spec.outputs.get(StackOutput.OUTPUT_NAMING, "unknown")
    console.print(f"outputs land under {spec.endpoint.output_path}/ (output_naming = {naming})")
    console.print(results_table(uploads, records, spec.endpoint))
    statuses = [
        str(records[u.inference_id].status) if u.inference_id in records else "MISSING"
        for u in uploads
    ]
    counts = {status: statuses.count(status) for status in sorted(set(statuses))}
    console.print(
        "  ".join(f"{status}={count}" for status, count in counts.items())
        + f"  in {time.monotonic() - started:.1f}s"
    )
    if job is None:
        console.print("[red]demo: the job did not complete[/red]")
        raise typer.Exit(code=1)
    console.print(job_table(*job))
    unfinished = [s for s in statuses if s not in ("COMPLETED", "FAILED")]
    if unfinished or "COMPLETED" not in counts or "FAILED" not in counts:
        console.print(f"[red]demo: {len(unfinished)} inferences did not finish[/red]")
        raise typer.Exit(code=1)
