"""``asyncinfer table wait``: waits until every index of the results table is ``ACTIVE``.

A step of the table's migration (docs/operations.md, "Migrating the results table") adds or
removes one global secondary index; CloudFormation reports the update complete while a new
index still backfills, and the next step (or a read of the new index) fails until it is
``ACTIVE``. Run this between two steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

import typer

from asyncinfer.cli.access.indexes import IndexState
from asyncinfer.cli.commands.common import context_of
from asyncinfer.cli.errors import CliError, ExitCode

table_app = typer.Typer(help="The results table's state.")


def wait_until_ready(
    states: Callable[[], list[IndexState]],
    report: Callable[[str], None],
    *,
    timeout_seconds: float,
    interval_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[IndexState]:
    """Polls until every index is ready; raises ``CliError`` (exit 2) at the timeout."""
    deadline = clock() + timeout_seconds
    while True:
        current = states()
        waiting = [state for state in current if not state.ready]
        if not waiting:
            return current
        if clock() >= deadline:
            raise CliError(
                "still not ACTIVE after the timeout: "
                + ", ".join(state.describe() for state in waiting),
                ExitCode.TIMED_OUT,
            )
        report("waiting: " + ", ".join(state.describe() for state in waiting))
        sleep(interval_seconds)


@table_app.command("wait")
def wait(
    ctx: typer.Context,
    *,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait at most.", min=0)] = 6
    * 3600,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between two checks.", min=1)
    ] = 30,
) -> None:
    """Wait until every global secondary index of the results table is ACTIVE."""
    context = context_of(ctx)
    ready = wait_until_ready(
        context.table.index_states,
        lambda line: context.stderr.print(line, soft_wrap=True),
        timeout_seconds=timeout,
        interval_seconds=interval,
    )
    names = ", ".join(state.name for state in ready) or "none"
    context.stdout.print(f"every index is ACTIVE: {names}", soft_wrap=True)
