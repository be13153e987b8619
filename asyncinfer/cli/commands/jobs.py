"""``asyncinfer jobs``: every job, newest first (docs/jobs.md; ``asyncinfer job`` for one)."""

from __future__ import annotations

from typing import Annotated

import typer

from asyncinfer.cli import render
from asyncinfer.cli.commands.common import context_of


def jobs(
    ctx: typer.Context,
    *,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Jobs to list.")] = 50,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List jobs, newest first."""
    context = context_of(ctx)
    views = context.jobs.newest(limit)
    if json_output:
        render.emit(context.stdout, render.to_json([view.document() for view in views]))
        return
    if not views:
        render.emit(context.stderr, "no jobs")
    for view in views:
        render.emit(
            context.stdout,
            f"{view.name}\t{view.status}\t{view.created_at}\t"
            f"{view.total} entries\t{view.completed} completed\t{view.failed} failed",
        )
