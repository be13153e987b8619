"""``asyncinfer backfill``: the versions ``reconcile`` finds without a record, sent to the
ingest queue as the S3 events that never came."""

from __future__ import annotations

from typing import Annotated

import typer

from asyncinfer.cli import render
from asyncinfer.cli.access.messaging import OutgoingMessage
from asyncinfer.cli.commands.common import context_of
from asyncinfer.cli.commands.reconcile_findings import BackfillReport, s3_event
from asyncinfer.cli.commands.reconcile_run import MinAge, Prefix, Since, reconciled
from asyncinfer.cli.errors import ExitCode
from lambdas.common.clock import utc_now


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
    context = context_of(ctx)
    report = reconciled(context, prefix, since, min_age)
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
