"""``asyncinfer reconcile``: every object version of the input bucket against the table."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from asyncinfer.cli import render
from asyncinfer.cli.commands.common import context_of
from asyncinfer.cli.commands.reconcile_findings import (
    ReconcileReport,
    report_document,
    summary_line,
)
from asyncinfer.cli.commands.reconcile_run import MinAge, Prefix, Since, reconciled
from asyncinfer.cli.errors import ExitCode


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
    context = context_of(ctx)
    report = reconciled(context, prefix, since, min_age)
    if json_output:
        render.emit(context.stdout, render.to_json(report_document(report)))
    else:
        if report.findings:
            context.stdout.print(_findings_table(report))
        render.emit(context.stdout, summary_line(report))
    if not report.ok:
        raise typer.Exit(ExitCode.FAILED)
