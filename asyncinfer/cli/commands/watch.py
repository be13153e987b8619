"""``asyncinfer watch``: live counts, rates, latency percentiles and queue depths."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.live import Live

from asyncinfer.cli import render
from asyncinfer.cli.commands import watch_view
from asyncinfer.cli.commands.common import context_of, positive_age
from asyncinfer.cli.commands.watch_stats import take_snapshot
from asyncinfer.cli.errors import CliError, ExitCode
from lambdas.common.clock import utc_now
from lambdas.common.contract import StackOutput


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
    context = context_of(ctx)
    counted, rated = positive_age(window, "--window"), positive_age(rate_window, "--rate-window")
    outputs = context.target
    queue_urls = [
        (name, url, dead_letter)
        for name, key, dead_letter in (
            ("ingest", StackOutput.INGEST_QUEUE_URL, False),
            ("ingest DLQ", StackOutput.INGEST_DEAD_LETTER_QUEUE_URL, True),
            ("success DLQ", StackOutput.SUCCESS_DEAD_LETTER_QUEUE_URL, True),
            ("error DLQ", StackOutput.ERROR_DEAD_LETTER_QUEUE_URL, True),
            ("results failures", StackOutput.RESULTS_FAILURE_QUEUE_URL, True),
            ("jobs DLQ", StackOutput.JOBS_DEAD_LETTER_QUEUE_URL, True),
        )
        if (url := outputs.optional_output(key))
    ]

    def snapshot() -> Any:
        return take_snapshot(
            context.table,
            context.queues,
            queue_urls,
            now=utc_now(),
            window=counted,
            rate_window=rated,
            max_records=max_records,
        )

    if once:
        taken = snapshot()
        if json_output:
            document = watch_view.snapshot_document(taken)
            render.emit(context.stdout, render.to_json(document))
        else:
            context.stdout.print(watch_view.snapshot_view(taken))
        return
    try:
        with Live(console=context.stdout, auto_refresh=False) as live:
            while True:
                live.update(watch_view.snapshot_view(snapshot()), refresh=True)
                time.sleep(interval)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None  # interrupted, as the exit-status table says
