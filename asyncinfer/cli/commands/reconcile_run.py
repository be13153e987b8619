"""What ``reconcile`` and ``backfill`` share: their options and one reconciliation of the
target's input bucket, with a progress line on stderr."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from asyncinfer.cli.access.versions import BucketVersions
from asyncinfer.cli.commands.reconcile_findings import ReconcileReport, Reconciliation, TableRecords
from asyncinfer.cli.context import CliContext
from asyncinfer.cli.errors import CliError, ExitCode
from asyncinfer.cli.timewindow import parse_age, parse_moment
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


def reconciled(
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
