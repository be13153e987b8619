"""The ``asyncinfer`` command line: submit inputs, follow them, read and repair the results.

Commands stay thin: parse options, call the data-access and logic modules, hand plain values
to ``render``. Every failure becomes one line on stderr (see ``errors``).
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import os
import re
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from typer import _click  # Typer vendors Click (0.26+): its Context and usage errors live here
from typer.core import TyperGroup

from asyncinfer import __version__
from asyncinfer.cli import render
from asyncinfer.cli.aws import parse_s3_uri
from asyncinfer.cli.context import CliContext
from asyncinfer.cli.errors import AwsCallError, CliError, ExitCode, cli_error_for, usage_error
from asyncinfer.cli.listing import Cursor, ListQuery, list_records, parse_statuses
from asyncinfer.cli.reconcile_commands import register as register_reconcile_commands
from asyncinfer.cli.redrive import QUEUE_NAMES, Redriver, sources_from_outputs
from asyncinfer.cli.stats import take_snapshot
from asyncinfer.cli.submit import (
    FileToSubmit,
    FollowState,
    Submitted,
    UploadInterrupted,
    check_locations,
    collect_files,
    follow,
    upload_all,
)
from asyncinfer.cli.target import GlobalOptions, local_dir_from_env
from asyncinfer.cli.timewindow import parse_age, time_window
from lambdas.common.records import InferenceRecord, Status

LOCAL_COMMANDS_MODULE = "asyncinfer.local.commands"
INFERENCE_ID_PATTERN = re.compile(r"^[0-9a-f]{64}$")
METADATA_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")


class AsyncInferGroup(TyperGroup):
    """Turns usage and botocore errors into the one-line form, wherever they are raised."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: _click.Context | None = None,
        **extra: Any,
    ) -> _click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except _click.exceptions.NoArgsIsHelpError:
            raise
        except _click.exceptions.UsageError as error:
            raise usage_error(error) from None

    def invoke(self, ctx: _click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _click.exceptions.NoArgsIsHelpError:
            raise
        except _click.exceptions.UsageError as error:
            raise usage_error(error) from None
        except (AwsCallError, BotoCoreError, ClientError) as error:
            raise cli_error_for(error) from None


app = typer.Typer(
    name="asyncinfer",
    cls=AsyncInferGroup,
    help="Submit files to a SageMaker asynchronous inference pipeline and read the results.",
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"asyncinfer {__version__}")
        raise typer.Exit


@app.callback()
def global_options(
    ctx: typer.Context,
    *,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            envvar=["AWS_REGION", "AWS_DEFAULT_REGION"],
            help="AWS region of the stack.",
            show_envvar=True,
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", envvar="AWS_PROFILE", help="AWS named profile."),
    ] = None,
    stack: Annotated[
        str | None,
        typer.Option(
            "--stack",
            envvar="ASYNCINFER_STACK",
            help="CloudFormation stack to target. Without it, a running local mode is used.",
        ),
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option("--endpoint-url", help="Override the AWS endpoint URL of every service."),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show version."),
    ] = False,
) -> None:
    """Global options, as in the AWS CLI."""
    options = GlobalOptions(
        region=region,
        profile=profile,
        stack=stack,
        endpoint_url=endpoint_url,
        local_dir=local_dir_from_env(),
    )
    ctx.obj = CliContext(options, stdout=render.stdout_console(), stderr=render.stderr_console())


def _context(ctx: typer.Context) -> CliContext:
    context = ctx.find_object(CliContext)
    if context is None:  # only when a command is invoked without the app's callback
        raise CliError("internal error: no CLI context", ExitCode.OTHER)
    return context


def _parse_metadata(values: list[str]) -> dict[str, str]:
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
        metadata[key.lower()] = text
    return metadata


def _exclusive_formats(json_output: bool, csv_output: bool) -> None:
    if json_output and csv_output:
        raise CliError("choose one of --json and --csv", ExitCode.USAGE)


# -------------------------------------------------------------------------------- submit


@app.command()
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
    context = _context(ctx)
    files = collect_files(paths, prefix=prefix, include=include or (), exclude=exclude or ())
    if not files:
        raise CliError("nothing to submit: no file matches", ExitCode.USAGE)
    user_metadata = _parse_metadata(metadata or [])
    context.size_connection_pool(concurrency)
    bucket = context.target.output("InputBucketName")
    check_locations(bucket, files)

    outcomes, aborted = _upload(
        context,
        bucket,
        files,
        content_type=content_type,
        metadata=user_metadata,
        concurrency=concurrency,
    )
    uploaded = [outcome for outcome in outcomes if outcome.inference_id]
    failures = [outcome for outcome in outcomes if outcome.error]
    if failures and not uploaded and len({outcome.error for outcome in failures}) == 1:
        raise CliError(failures[0].error or "upload failed")
    if not json_output:
        for outcome in uploaded:
            render.emit(context.stdout, render.submitted_line(outcome))
    for outcome in failures:
        render.emit(context.stderr, f"upload failed: {outcome.file.path}: {outcome.error}")

    if aborted:
        if json_output:
            documents = [render.submitted_document(outcome, None) for outcome in outcomes]
            render.emit(context.stdout, render.to_json(documents))
        render.emit(context.stderr, f"interrupted: {len(uploaded)} of {len(files)} uploaded")
        raise typer.Exit(130)
    state: FollowState | None = None
    if wait and uploaded:
        state = _follow(
            context, [o.inference_id for o in uploaded if o.inference_id], timeout, poll_interval
        )
    if json_output:
        documents = [render.submitted_document(outcome, state) for outcome in outcomes]
        render.emit(context.stdout, render.to_json(documents))
    if failures or (state is not None and state.failed):
        raise typer.Exit(ExitCode.FAILED)
    if state is not None and state.timed_out:
        raise typer.Exit(ExitCode.TIMED_OUT)


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
            live.update(render.follow_view(state, width=context.stderr.width), refresh=True)

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
    render.emit(context.stderr, render.follow_summary(state))
    return state


# -------------------------------------------------------------------------------- status


@app.command()
def status(
    ctx: typer.Context,
    *,
    reference: Annotated[
        str,
        typer.Argument(
            metavar="ID|s3://BUCKET/KEY|KEY",
            help="An inference id, an input's S3 URI, or a key in the input bucket.",
        ),
    ],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one inference, or every inference of an input object (newest first)."""
    context = _context(ctx)
    if INFERENCE_ID_PATTERN.match(reference):
        record = context.table.get(reference)
        if record is None:
            raise CliError(f"inference {reference} not found")
        if json_output:
            render.emit(context.stdout, render.to_json(render.record_document(record)))
        else:
            context.stdout.print(render.record_detail(record), soft_wrap=True)
        return
    if reference.startswith("s3://"):
        try:
            bucket, key = parse_s3_uri(reference)
        except ValueError as error:
            raise CliError(str(error), ExitCode.USAGE) from error
    else:
        bucket, key = context.target.output("InputBucketName"), reference.lstrip("/")
    location = f"s3://{bucket}/{key}"
    records = context.table.for_input(location)
    if not records:
        raise CliError(f"no inference found for {location}")
    if json_output:
        render.emit(context.stdout, render.records_json(records))
    elif len(records) == 1:
        context.stdout.print(render.record_detail(records[0]), soft_wrap=True)
    else:
        context.stdout.print(
            render.records_table(records, width=context.stdout.width, title=location)
        )


# ------------------------------------------------------------------------------- results


@app.command()
def results(
    ctx: typer.Context,
    *,
    status_filter: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            help="PENDING, SUBMITTED, COMPLETED or FAILED; repeatable or comma-separated "
            "(default: all).",
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Updated at or after: 15m, 2h, 7d or ISO-8601.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Updated at or before: 15m, 2h, 7d or ISO-8601.")
    ] = None,
    prefix: Annotated[str | None, typer.Option(help="Only input keys starting with this.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Records per page.")] = 50,
    next_token: Annotated[
        str | None, typer.Option(help="Continue the listing where the last page ended.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
    csv_output: Annotated[bool, typer.Option("--csv", help="Print CSV with a header.")] = False,
) -> None:
    """List inferences by status, newest first, from the status index (never a scan).

    When more records exist, the token for the next page is printed on stderr.
    """
    _exclusive_formats(json_output, csv_output)
    context = _context(ctx)
    query = ListQuery(
        statuses=parse_statuses(status_filter or []),
        window=time_window(since, until),
        key_prefix=prefix or None,
        limit=limit,
    )
    fingerprint = query.fingerprint(since, until)
    cursor = Cursor.decode(next_token, fingerprint) if next_token else None
    records, next_cursor = list_records(
        context.table, query, fingerprint=fingerprint, cursor=cursor
    )
    if json_output:
        render.emit(context.stdout, render.records_json(records))
    elif csv_output:
        render.emit(context.stdout, render.records_csv(records))
    elif records:
        context.stdout.print(render.records_table(records, width=context.stdout.width))
    else:
        render.emit(context.stderr, "no inferences match")
    if next_cursor is not None:
        render.emit(context.stderr, f"next page: --next-token {next_cursor.encode()}")


# --------------------------------------------------------------------------------- fetch


@app.command()
def fetch(
    ctx: typer.Context,
    *,
    inference_id: Annotated[str, typer.Argument(metavar="ID", help="An inference id.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Download the output of a COMPLETED inference, or the failure of a FAILED one."""
    context = _context(ctx)
    record = context.table.get(inference_id)
    if record is None:
        raise CliError(f"inference {inference_id} not found")
    if record.status == Status.COMPLETED and not record.output_location:
        _write_inline_result(context, record, output)
        return
    if record.status == Status.COMPLETED and record.output_location:
        location = record.output_location
    elif record.status == Status.FAILED and record.failure_location:
        location = record.failure_location
    elif record.status == Status.FAILED:
        raise CliError(
            f"inference {inference_id} FAILED at {record.failure_stage or 'an unknown stage'} "
            f"with no failure object: {record.failure_reason or 'no reason recorded'}",
            ExitCode.FAILED,
        )
    else:
        raise CliError(
            f"inference {inference_id} is {record.status}: no output yet", ExitCode.FAILED
        )
    if output is None or str(output) == "-":
        context.objects.download(location, typer.get_binary_stream("stdout"))
        return
    _download_to_file(context, location, output)


def _write_inline_result(context: CliContext, record: InferenceRecord, output: Path | None) -> None:
    """A COMPLETED record without an output location: the inline result is all there is."""
    if record.result is None or record.result_encoding not in ("utf-8", "base64"):
        raise CliError(
            f"inference {record.inference_id} is COMPLETED but records no output location "
            "and no inline result",
            ExitCode.FAILED,
        )
    if record.result_encoding == "base64":
        content = base64.b64decode(record.result)
    else:
        content = record.result.encode("utf-8")
    if output is None or str(output) == "-":
        typer.get_binary_stream("stdout").write(content)
        return
    try:
        output.write_bytes(content)
    except OSError as error:
        raise CliError(f"cannot write {output}: {error.strerror}", ExitCode.FAILED) from error
    render.emit(context.stderr, f"wrote {len(content)} bytes to {output} from the inline result")


def _download_to_file(context: CliContext, location: str, output: Path) -> None:
    """Write next to the destination, then rename: a failed download leaves no partial file."""
    folder = output.parent if str(output.parent) else Path()
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{output.name}.")
    except OSError as error:
        raise CliError(f"cannot write {output}: {error.strerror}", ExitCode.FAILED) from error
    try:
        with os.fdopen(handle, "wb") as sink:
            written = context.objects.download(location, sink)
        Path(temporary).replace(output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    render.emit(context.stderr, f"wrote {written} bytes to {output} from {location}")


# --------------------------------------------------------------------------------- watch


def _age(text: str, option: str) -> timedelta:
    age = parse_age(text)
    if age is None or age.total_seconds() <= 0:
        raise CliError(f"invalid {option} {text!r}: use an age like 90s, 15m, 2h", ExitCode.USAGE)
    return age


@app.command()
def watch(
    ctx: typer.Context,
    *,
    once: Annotated[bool, typer.Option("--once", help="Print one snapshot and exit.")] = False,
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between refreshes.")] = 2.0,
    window: Annotated[str, typer.Option(help="Count inferences updated within this age.")] = "15m",
    rate_window: Annotated[str, typer.Option(help="Rates over this age.")] = "1m",
    max_records: Annotated[
        int, typer.Option(min=1, help="Newest records per status read for latency and rates.")
    ] = 5000,
    json_output: Annotated[bool, typer.Option("--json", help="With --once: JSON.")] = False,
) -> None:
    """Live counts by status, rates, latency percentiles and queue depths (Ctrl-C stops)."""
    if json_output and not once:
        raise CliError("--json needs --once", ExitCode.USAGE)
    context = _context(ctx)
    counted, rated = _age(window, "--window"), _age(rate_window, "--rate-window")
    outputs = context.target
    queue_urls = [
        (name, url, dead_letter)
        for name, key, dead_letter in (
            ("ingest", "IngestQueueUrl", False),
            ("ingest DLQ", "IngestDeadLetterQueueUrl", True),
            ("success DLQ", "SuccessDeadLetterQueueUrl", True),
            ("error DLQ", "ErrorDeadLetterQueueUrl", True),
            ("results failures", "ResultsFailureQueueUrl", True),
        )
        if (url := outputs.optional_output(key))
    ]

    def snapshot() -> Any:
        return take_snapshot(
            context.table,
            context.queues,
            queue_urls,
            now=datetime.now(UTC),
            window=counted,
            rate_window=rated,
            max_records=max_records,
        )

    if once:
        taken = snapshot()
        if json_output:
            document = render.snapshot_document(taken)
            render.emit(context.stdout, render.to_json(document))
        else:
            context.stdout.print(render.snapshot_view(taken))
        return
    try:
        with Live(console=context.stdout, auto_refresh=False) as live:
            while True:
                live.update(render.snapshot_view(snapshot()), refresh=True)
                time.sleep(interval)
    except KeyboardInterrupt:
        return


# ------------------------------------------------------------------------------- redrive


@app.command()
def redrive(
    ctx: typer.Context,
    *,
    queue: Annotated[
        list[str] | None,
        typer.Option(
            help="ingest, success, error or results (the results function's failures); "
            "repeatable (default: every dead-letter queue the target has)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would move; move nothing.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
) -> None:
    """Move dead letters back to where they came from, with counts per queue.

    Exit status 1 when a message could not be moved (it stays in its dead-letter queue).
    """
    wanted = [name.strip().lower() for value in queue or [] for name in value.split(",")]
    unknown = sorted(set(wanted) - set(QUEUE_NAMES))
    if unknown:
        raise CliError(
            f"invalid --queue {', '.join(unknown)}: choose from {', '.join(QUEUE_NAMES)}",
            ExitCode.USAGE,
        )
    context = _context(ctx)
    available = sources_from_outputs(context.target.outputs)
    missing = [name for name in wanted if name not in available]
    if missing:
        raise CliError(
            f"the target has no dead-letter queue for {', '.join(missing)}", ExitCode.SERVICE
        )
    if not available:
        raise CliError("the target lists no dead-letter queue in its outputs", ExitCode.SERVICE)
    selected = [available[name] for name in (wanted or list(available))]
    redriver = Redriver(context.queues, context.topics)
    reports = [redriver.run(source, dry_run=dry_run) for source in selected]
    if json_output:
        document = render.redrive_document(reports)
        render.emit(context.stdout, render.to_json(document))
    else:
        context.stdout.print(render.redrive_table(reports, dry_run=dry_run))
        for line in render.redrive_details(reports, dry_run=dry_run):
            render.emit(context.stderr, line)
    if not dry_run and any(report.failed or report.skipped for report in reports):
        raise typer.Exit(ExitCode.FAILED)


def _register_local_commands(target_app: typer.Typer) -> None:
    """Local mode (`local up`, `demo`) plugs its commands in when it is installed."""
    if importlib.util.find_spec(LOCAL_COMMANDS_MODULE) is None:
        return
    module = importlib.import_module(LOCAL_COMMANDS_MODULE)
    module.register(target_app)


register_reconcile_commands(app)
_register_local_commands(app)
