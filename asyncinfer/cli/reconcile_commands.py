"""``asyncinfer reconcile`` and ``asyncinfer backfill`` (registered on the app by ``register``)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from asyncinfer.cli import render
from asyncinfer.cli.context import CliContext
from asyncinfer.cli.errors import CliError, ExitCode
from asyncinfer.cli.messaging import OutgoingMessage
from asyncinfer.cli.reconcile import (
    BackfillReport,
    ReconcileReport,
    Reconciliation,
    TableRecords,
    report_document,
    s3_event,
    summary_line,
)
from asyncinfer.cli.timewindow import parse_age, parse_moment
from asyncinfer.cli.versions import BucketVersions
from lambdas.common.clock import utc_now
from lambdas.common.contract import StackOutput
from lambdas.common.deadlines import DeadlineRules

Prefix = Annotated[str, typer.Option("--prefix", help="Only keys under this prefix.")]
Since = Annotated[
    str | None,
    typer.Option("--since", help="Only versions written since T (15m, 2h, 7d or ISO-8601)."),
]
MinAge = Annotated[
    str | None,
    typer.Option(
        "--min-age",
        help="Judge only versions at least this old (90s, 15m, 2h): S3 may take a minute or "
        "more to deliver a new object's event. 0s judges everything, e.g. a bucket that had "
        "no notification. Default 15m.",
    ),
]


def _context(ctx: typer.Context) -> CliContext:
    context = ctx.find_object(CliContext)
    if context is None:
        raise CliError("internal error: no CLI context", ExitCode.OTHER)
    return context


def _reconcile(
    context: CliContext, prefix: str, since: str | None, min_age: str | None = None
) -> ReconcileReport:
    now = utc_now()
    start = parse_moment(since, now, "--since") if since else None
    age = parse_age(min_age) if min_age is not None else None
    if min_age is not None and age is None:
        raise CliError(f"invalid --min-age {min_age!r}: use an age like 90s, 15m", ExitCode.USAGE)
    bucket = context.target.output(StackOutput.INPUT_BUCKET_NAME)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed} versions listed"),
        TimeElapsedColumn(),
        console=context.stderr,
        transient=True,
        disable=not context.stderr.is_terminal,
    ) as progress:
        task = progress.add_task(f"s3://{bucket}/{prefix}", total=None)
        return Reconciliation(
            versions=BucketVersions(context.clients.s3),
            records=TableRecords(context.table),
            rules=_deadline_rules(context),
            now=now,
            progress=lambda listed: progress.update(task, completed=listed),
            min_age=age,
        ).run(bucket, prefix, start)


def _deadline_rules(context: CliContext) -> DeadlineRules:
    """The stack's deadlines (its ``ReconcileDeadlines`` output), the defaults for a stack
    deployed before that output existed."""
    settings = context.target.optional_output(StackOutput.RECONCILE_DEADLINES)
    if not settings:
        return DeadlineRules()
    try:
        values = json.loads(settings)
        return DeadlineRules.from_settings({str(k): str(v) for k, v in values.items()})
    except (ValueError, AttributeError) as error:
        raise CliError(
            f"the stack's {StackOutput.RECONCILE_DEADLINES} output is not valid: {error}"
        ) from error


def _findings_table(report: ReconcileReport) -> Table:
    table = Table(title="Reconciliation", show_lines=False)
    for column in ("Problem", "Input", "Version", "Inference id", "Detail"):
        table.add_column(column, overflow="fold")
    for finding in report.findings:
        table.add_row(
            finding.problem.value,
            finding.location,
            finding.version_id or "",
            "\n".join(finding.inference_ids),
            finding.detail,
        )
    return table


def reconcile(
    ctx: typer.Context,
    *,
    prefix: Prefix = "",
    since: Since = None,
    min_age: MinAge = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
) -> None:
    """Check that every object version of the input bucket has exactly one record, and that
    no record is left unfinished past its deadline.

    Exit status 1 when a version has no record or several, or a record is overdue, by the
    deadlines the stack's reconciler uses.
    """
    context = _context(ctx)
    report = _reconcile(context, prefix, since, min_age)
    if json_output:
        render.emit(context.stdout, render.to_json(report_document(report)))
    else:
        if report.findings:
            context.stdout.print(_findings_table(report))
        render.emit(context.stdout, summary_line(report))
    if not report.ok:
        raise typer.Exit(ExitCode.FAILED)


def backfill(
    ctx: typer.Context,
    *,
    prefix: Prefix = "",
    since: Since = None,
    min_age: MinAge = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be sent; send nothing.")
    ] = False,
) -> None:
    """Submit the object versions that have no record through the ingest queue.

    They are sent as the S3 events that never came (objects written before the stack existed,
    or whose event was lost). Safe to run again: a version is never submitted twice.

    Exit status 1 when a message could not be sent.
    """
    context = _context(ctx)
    report = _reconcile(context, prefix, since, min_age)
    outcome = BackfillReport(dry_run=dry_run, skipped=report.versions + report.recent)
    outcome.skipped -= len(report.missing)
    if not dry_run and report.missing:
        queue_url = context.target.output("IngestQueueUrl")
        now = utc_now()
        messages = [
            OutgoingMessage(
                body=s3_event(version, region=context.target.region, now=now), attributes={}
            )
            for version in report.missing
        ]
        failed = set(context.queues.send(queue_url, messages))
        outcome.failed = [v for index, v in enumerate(report.missing) if index in failed]
        outcome.sent = [v for index, v in enumerate(report.missing) if index not in failed]
    for version in report.missing:
        verb = "would send" if dry_run else "sent"
        render.emit(context.stderr, f"{verb} {version.location} (version {version.version_id})")
    count = len(report.missing) if dry_run else len(outcome.sent)
    render.emit(
        context.stdout,
        f"{'would send' if dry_run else 'sent'} {count}, skipped {outcome.skipped} "
        f"(already recorded or too recent), failed {len(outcome.failed)}",
    )
    if outcome.failed:
        raise typer.Exit(ExitCode.FAILED)


def register(app: typer.Typer) -> None:
    app.command()(reconcile)
    app.command()(backfill)
