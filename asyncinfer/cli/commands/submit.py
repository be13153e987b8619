"""``asyncinfer submit``: upload files, print their inference ids, optionally follow them."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from asyncinfer.cli import render
from asyncinfer.cli.commands import submit_view
from asyncinfer.cli.commands.common import context_of
from asyncinfer.cli.commands.submit_upload import (
    FileToSubmit,
    FollowState,
    OutputPlacement,
    Submitted,
    UploadInterrupted,
    check_locations,
    collect_files,
    follow,
    upload_all,
)
from asyncinfer.cli.context import CliContext
from asyncinfer.cli.errors import CliError, ExitCode
from lambdas.common.contract import StackOutput

METADATA_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")
# S3: "the user-defined metadata is limited to 2 KB in size", the sum of the bytes of every key
# and value (User Guide, "Working with object metadata", user-defined metadata)
METADATA_MAX_BYTES = 2048


def _parse_metadata(values: list[str]) -> dict[str, str]:
    """``key=value`` pairs, checked here as S3 would refuse them: the values travel as HTTP
    headers, so printable US-ASCII only (the SDK sends other characters as they are, and S3
    answers with an error), and 2 KB in all."""
    metadata: dict[str, str] = {}
    for value in values:
        key, separator, text = value.partition("=")
        key = key.strip()
        if not separator or not METADATA_KEY_PATTERN.match(key):
            raise CliError(
                f"invalid --metadata {value!r}: expected key=value, key of letters, digits, "
                "'-', '_' or '.'",
                ExitCode.USAGE,
            )
        if not (text.isascii() and text.isprintable()):
            raise CliError(
                f"invalid --metadata {value!r}: S3 metadata values are printable US-ASCII",
                ExitCode.USAGE,
            )
        metadata[key.lower()] = text
    size = sum(len(key) + len(text) for key, text in metadata.items())
    if size > METADATA_MAX_BYTES:
        raise CliError(
            f"invalid --metadata: {size} bytes of keys and values, S3 allows {METADATA_MAX_BYTES}",
            ExitCode.USAGE,
        )
    return metadata


def submit(
    ctx: typer.Context,
    *,
    paths: Annotated[list[Path], typer.Argument(help="Files and folders (recursive).")],
    prefix: Annotated[str, typer.Option(help="Key prefix in the input bucket.")] = "",
    include: Annotated[
        list[str] | None, typer.Option(help="Only files whose relative path matches (glob).")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option(help="Skip files whose relative path matches (glob).")
    ] = None,
    metadata: Annotated[
        list[str] | None,
        typer.Option(help="key=value user metadata (x-amz-meta-key); repeatable."),
    ] = None,
    content_type: Annotated[
        str | None, typer.Option(help="Content type of every file (default: by extension).")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=128, help="Uploads in parallel.")] = 16,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the inferences until they are terminal.")
    ] = False,
    timeout: Annotated[float, typer.Option(min=0, help="Seconds --wait waits at most.")] = 900.0,
    poll_interval: Annotated[
        float, typer.Option(min=0.01, help="Seconds between table reads with --wait.")
    ] = 2.0,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """Upload files to the input bucket and print their inference ids.

    Exit status: 0 when everything was uploaded (and, with --wait, COMPLETED); 1 when an
    upload or an inference failed; 2 when --wait timed out with inferences in flight.
    """
    context = context_of(ctx)
    files = collect_files(paths, prefix=prefix, include=include or (), exclude=exclude or ())
    if not files:
        raise CliError("nothing to submit: no file matches", ExitCode.USAGE)
    user_metadata = _parse_metadata(metadata or [])
    context.size_connection_pool(concurrency)
    bucket = context.target.output(StackOutput.INPUT_BUCKET_NAME)
    inline_max = context.target.optional_output(StackOutput.INLINE_INPUT_MAX_BYTES)
    check_locations(bucket, files, int(inline_max) if inline_max else None)

    outcomes, aborted = _upload(
        context,
        bucket,
        files,
        content_type=content_type,
        metadata=user_metadata,
        concurrency=concurrency,
    )
    placement = OutputPlacement.from_outputs(
        context.target.optional_output(StackOutput.OUTPUT_NAMING),
        context.target.optional_output(StackOutput.OUTPUT_PATH),
    )
    outcomes = [
        replace(outcome, expected_output=placement.expected(outcome.file.key, outcome.inference_id))
        if outcome.inference_id
        else outcome
        for outcome in outcomes
    ]
    uploaded = _report_uploads(
        context, outcomes, aborted, total=len(files), json_output=json_output
    )
    state: FollowState | None = None
    if wait and uploaded:
        state = _follow(
            context, [o.inference_id for o in uploaded if o.inference_id], timeout, poll_interval
        )
    if json_output:
        documents = [submit_view.submitted_document(outcome, state) for outcome in outcomes]
        render.emit(context.stdout, render.to_json(documents))
    if any(outcome.error for outcome in outcomes) or (state is not None and state.failed):
        raise typer.Exit(ExitCode.FAILED)
    if state is not None and state.timed_out:
        raise typer.Exit(ExitCode.TIMED_OUT)


def _report_uploads(
    context: CliContext, outcomes: list[Submitted], aborted: bool, *, total: int, json_output: bool
) -> list[Submitted]:
    """Prints what was uploaded and what failed; returns the uploads. Exits when Ctrl-C cut
    the uploads short, or when every upload failed for one and the same reason."""
    uploaded = [outcome for outcome in outcomes if outcome.inference_id]
    failures = [outcome for outcome in outcomes if outcome.error]
    if failures and not uploaded and len({outcome.error for outcome in failures}) == 1:
        raise CliError(failures[0].error or "upload failed")
    if not json_output:
        for outcome in uploaded:
            render.emit(context.stdout, submit_view.submitted_line(outcome))
    for outcome in failures:
        render.emit(context.stderr, f"upload failed: {outcome.file.path}: {outcome.error}")

    if aborted:
        if json_output:
            documents = [submit_view.submitted_document(outcome, None) for outcome in outcomes]
            render.emit(context.stdout, render.to_json(documents))
        render.emit(context.stderr, f"interrupted: {len(uploaded)} of {total} uploaded")
        raise typer.Exit(130)
    return uploaded


def _upload(
    context: CliContext,
    bucket: str,
    files: list[FileToSubmit],
    *,
    content_type: str | None,
    metadata: dict[str, str],
    concurrency: int,
) -> tuple[list[Submitted], bool]:
    """Uploads behind a progress bar (in a terminal); True when Ctrl-C cut them short."""
    total_bytes = sum(item.size for item in files)
    progress = Progress(
        TextColumn("uploading"),
        BarColumn(),
        MofNCompleteColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=context.stderr,
        disable=not context.stderr.is_terminal,
        transient=True,
    )
    with progress:
        task = progress.add_task("upload", total=total_bytes or len(files))

        def advance(outcome: Submitted) -> None:
            progress.advance(task, outcome.file.size if total_bytes else 1)

        try:
            outcomes = upload_all(
                context.objects,
                bucket,
                files,
                content_type=content_type,
                metadata=metadata,
                concurrency=concurrency,
                on_done=advance,
            )
        except UploadInterrupted as interrupted:
            return interrupted.finished, True
    return outcomes, False


def _follow(
    context: CliContext, inference_ids: list[str], timeout: float, poll_interval: float
) -> FollowState:
    live = Live(
        console=context.stderr,
        auto_refresh=False,
        transient=False,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    interactive = context.stderr.is_terminal

    def show(state: FollowState) -> None:
        if interactive:
            live.update(submit_view.follow_view(state, width=context.stderr.width), refresh=True)

    if interactive:
        live.start()
    try:
        state = follow(
            context.table,
            inference_ids,
            timeout_seconds=timeout,
            poll_seconds=poll_interval,
            on_poll=show,
        )
    finally:
        if interactive:
            live.stop()
    for record in state.failed:
        render.emit(
            context.stderr,
            f"FAILED {record.inference_id} {record.input_location or ''} "
            f"[{record.failure_stage or '?'}] {record.failure_reason or ''}",
        )
    render.emit(context.stderr, submit_view.follow_summary(state))
    return state
