"""``asyncinfer job status|wait|results|submit`` (docs/jobs.md; ``asyncinfer jobs`` lists them).

A job is a manifest in the input bucket (``<jobs_prefix><name>.manifest.json``); the stack's
jobs function counts its entries' outcomes and, once all are in, writes one results file and
publishes one ``Job Completed`` event. These commands read the job's header from the jobs
table, download its results file, or upload files and their manifest.

Exit codes (asyncinfer/cli/errors.py): 0 a job found / complete; 1 the job FAILED (bad
manifest) or its results are not written yet; 2 ``wait`` timed out; 252 bad arguments; 254 no
such job, or a stack without jobs.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from asyncinfer.cli import render
from asyncinfer.cli.access.jobs import JobView, manifest_key, put_manifest
from asyncinfer.cli.commands.common import context_of
from asyncinfer.cli.context import CliContext
from asyncinfer.cli.errors import CliError, ExitCode
from lambdas.common.contract import StackOutput
from lambdas.jobs.manifest import JOB_NAME_PATTERN

job_app = typer.Typer(
    help="One job: a manifest of inputs, one results file, one completion event.",
    no_args_is_help=True,
)
RESULT_COLUMNS = (
    "key",
    "version_id",
    "inference_id",
    "status",
    "output_location",
    "failure_stage",
    "failure_reason",
    "result",
)


def found(context: CliContext, name: str) -> JobView:
    view = context.jobs.get(name)
    if view is None:
        raise CliError(f"job {name} not found")
    return view


@job_app.command("status")
def status(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The job's name.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A job's status and counts."""
    context = context_of(ctx)
    view = found(context, name)
    if json_output:
        render.emit(context.stdout, render.to_json(view.document()))
        return
    lines = [
        f"job:       {view.name}",
        f"status:    {view.status}",
        f"created:   {view.created_at}",
        f"entries:   {view.total}",
        f"outcomes:  {view.counted} of {view.awaited} awaited inferences",
    ]
    if view.final:
        lines.append(f"completed: {view.completed}")
        lines.append(f"failed:    {view.failed}")
    if view.results_location:
        lines.append(f"results:   {view.results_location}")
    if view.reason:
        lines.append(f"reason:    {view.reason}")
    render.emit(context.stdout, "\n".join(lines))


@job_app.command("wait")
def wait(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The job's name.")],
    timeout: Annotated[float, typer.Option(min=1, help="Give up after this many seconds.")] = 3600,
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between polls.")] = 2.0,
) -> None:
    """Wait for a job to complete, with a progress bar (exit 1 if it FAILED, 2 on timeout)."""
    context = context_of(ctx)
    deadline = time.monotonic() + timeout
    with Progress(
        TextColumn(f"job {name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=context.stderr,
        transient=True,
    ) as progress:
        task = progress.add_task("outcomes", total=None)
        while True:
            view = found(context, name)
            progress.update(task, total=view.awaited or None, completed=view.counted)
            if view.final:
                break
            if time.monotonic() >= deadline:
                raise CliError(f"job {name} is still {view.status}", ExitCode.TIMED_OUT)
            time.sleep(interval)
    if view.status == "FAILED":
        raise CliError(f"job {name} failed: {view.reason}", ExitCode.FAILED)
    render.emit(
        context.stdout,
        f"job {name} completed: {view.completed} completed, {view.failed} failed; "
        f"results: {view.results_location}",
    )


@job_app.command("results")
def results(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The job's name.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to this file, not stdout.")
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="jsonl (as stored) or csv.")
    ] = "jsonl",
) -> None:
    """The job's results file: one line per manifest entry, in manifest order."""
    if output_format not in ("jsonl", "csv"):
        raise CliError(f"--format must be jsonl or csv, not {output_format!r}", ExitCode.USAGE)
    context = context_of(ctx)
    view = found(context, name)
    if not view.results_location:
        raise CliError(f"job {name} is {view.status}: no results file yet", ExitCode.FAILED)
    buffer = io.BytesIO()
    context.objects.download(view.results_location, buffer)
    data = buffer.getvalue()
    if output_format == "csv":
        data = as_csv(data.decode("utf-8")).encode("utf-8")
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
        render.emit(context.stderr, f"wrote {output}")


def as_csv(jsonl: str) -> str:
    sink = io.StringIO()
    writer = csv.DictWriter(sink, fieldnames=RESULT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for line in jsonl.splitlines():
        if line:
            row = json.loads(line)
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in RESULT_COLUMNS})
    return sink.getvalue()


@job_app.command("submit")
def submit(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The job's name (letters, digits, . _ -).")],
    paths: Annotated[list[Path], typer.Argument(help="Files (or folders of files) to score.")],
    prefix: Annotated[
        str | None,
        typer.Option(help="Key prefix of the uploads in the input bucket (default: NAME/)."),
    ] = None,
) -> None:
    """Upload files, then the manifest naming them: the job starts when the manifest lands."""
    if not JOB_NAME_PATTERN.fullmatch(name):
        raise CliError(f"invalid job name {name!r}", ExitCode.USAGE)
    files = [file for path in paths for file in expand(path)]
    if not files:
        raise CliError("no files to submit", ExitCode.USAGE)
    context = context_of(ctx)
    jobs_prefix = context.target.optional_output(StackOutput.JOBS_PREFIX)
    if not jobs_prefix:
        raise CliError("this stack has no jobs (they need publish_events and an output bucket)")
    bucket = context.target.output(StackOutput.INPUT_BUCKET_NAME)
    folder = (prefix if prefix is not None else f"{name}/").lstrip("/")
    relative = []
    for base, file in files:
        key = file.relative_to(base).as_posix() if base != file else file.name
        context.objects.upload(bucket, folder + key, file, content_type=None, metadata={})
        relative.append(key)
    manifest = manifest_key(jobs_prefix, name)
    put_manifest(context.clients.s3, bucket, manifest, folder, relative)
    render.emit(
        context.stdout,
        f"job {name}: {len(relative)} files under s3://{bucket}/{folder}; "
        f"manifest s3://{bucket}/{manifest}",
    )


def expand(path: Path) -> list[tuple[Path, Path]]:
    """(base, file) pairs: a file is its own base; a folder's files keep their relative path."""
    if path.is_dir():
        return [(path, file) for file in sorted(path.rglob("*")) if file.is_file()]
    if path.is_file():
        return [(path, path)]
    raise CliError(f"{path}: no such file or folder", ExitCode.USAGE)
