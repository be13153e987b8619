"""How ``watch`` shows a snapshot: a live view for people, a JSON document for programs."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from asyncinfer.cli.commands.watch_stats import Percentiles, Snapshot
from asyncinfer.cli.render import format_duration_ms, status_text
from lambdas.common.records import Status


def _percentiles(value: Percentiles | None) -> str:
    if value is None:
        return "-"
    p50, p95 = format_duration_ms(value.p50), format_duration_ms(value.p95)
    return f"p50 {p50}  p95 {p95}  (n={value.samples})"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def snapshot_view(snapshot: Snapshot) -> RenderableType:
    counts = Table(
        title=f"inferences updated in the last {_minutes(snapshot.window_seconds)}",
        title_justify="left",
        header_style="bold",
    )
    for status in Status:
        counts.add_column(status_text(status.value), justify="right")
    counts.add_row(*(str(snapshot.counts.get(status.value, 0)) for status in Status))

    figures = Table.grid(padding=(0, 2))
    figures.add_column(style="bold", no_wrap=True)
    figures.add_column()
    rate = _minutes(snapshot.rate_window_seconds)
    figures.add_row("submitted", f"{snapshot.submitted_per_second:.2f}/s (last {rate})")
    figures.add_row("completed", f"{snapshot.completed_per_second:.2f}/s (last {rate})")
    figures.add_row("end-to-end latency", _percentiles(snapshot.end_to_end_ms))
    figures.add_row("inference latency", _percentiles(snapshot.inference_ms))
    if snapshot.sampled:
        figures.add_row("", Text("latency and rates from the newest records only", "dim"))

    queues = Table(title="queues", title_justify="left", header_style="bold")
    queues.add_column("queue")
    queues.add_column("visible", justify="right")
    queues.add_column("in flight", justify="right")
    for queue in snapshot.queues:  # names are ours, not user data
        alarming = queue.dead_letter and (queue.visible or queue.in_flight)
        queues.add_row(
            Text(queue.name, style="bold red" if alarming else ""),
            str(queue.visible),
            str(queue.in_flight),
        )
    footer = Text(f"as of {snapshot.taken_at}", style="dim")
    return Group(counts, figures, queues, footer)


def snapshot_document(snapshot: Snapshot) -> dict[str, Any]:
    document = asdict(snapshot)
    document["dead_letters"] = snapshot.dead_letters
    return document
