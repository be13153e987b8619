"""``asyncinfer redrive``: move dead letters back to where they came from."""

from __future__ import annotations

from typing import Annotated

import typer

from asyncinfer.cli import render
from asyncinfer.cli.commands import redrive_view
from asyncinfer.cli.commands.common import context_of
from asyncinfer.cli.commands.redrive_letters import Redriver
from asyncinfer.cli.commands.redrive_sources import QUEUE_NAMES, sources_from_outputs
from asyncinfer.cli.errors import CliError, ExitCode


def redrive(
    ctx: typer.Context,
    *,
    queue: Annotated[
        list[str] | None,
        typer.Option(
            help="ingest, success, error, results (the results function's failures) or "
            "jobs; repeatable (default: every dead-letter queue the target has)."
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
    context = context_of(ctx)
    available = sources_from_outputs(context.target.outputs)
    missing = [name for name in wanted if name not in available]
    if missing:
        raise CliError(
            f"the target has no dead-letter queue for {', '.join(missing)}", ExitCode.SERVICE
        )
    if not available:
        raise CliError("the target lists no dead-letter queue in its outputs", ExitCode.SERVICE)
    selected = [available[name] for name in (wanted or list(available))]
    redriver = Redriver(context.queues, context.functions)
    reports = [redriver.run(source, dry_run=dry_run) for source in selected]
    if json_output:
        document = redrive_view.redrive_document(reports)
        render.emit(context.stdout, render.to_json(document))
    else:
        context.stdout.print(redrive_view.redrive_table(reports, dry_run=dry_run))
        for line in redrive_view.redrive_details(reports, dry_run=dry_run):
            render.emit(context.stderr, line)
    if not dry_run and any(report.failed or report.skipped for report in reports):
        raise typer.Exit(ExitCode.FAILED)
