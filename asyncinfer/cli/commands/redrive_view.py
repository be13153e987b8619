"""How ``redrive`` reports what it moved: a table, per-message lines, a JSON document."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from asyncinfer.cli.commands.redrive_letters import RedriveReport


def redrive_table(reports: Sequence[RedriveReport], *, dry_run: bool) -> Table:
    table = Table(
        title="would move (dry run)" if dry_run else "redrive",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("from")
    table.add_column("to")
    table.add_column("would move" if dry_run else "moved", justify="right")
    table.add_column("skipped", justify="right")
    table.add_column("failed", justify="right")
    for report in reports:
        table.add_row(
            report.source.name,
            report.source.destination,
            str(len(report.moved)),
            str(len(report.skipped)),
            Text(str(len(report.failed)), style="bold red" if report.failed else ""),
        )
    return table


def redrive_details(reports: Sequence[RedriveReport], *, dry_run: bool) -> list[str]:
    """Per-message lines: every message in a dry run, otherwise only the ones left behind."""
    lines: list[str] = []
    for report in reports:
        if dry_run:
            lines.extend(
                f"{report.source.name}: message {moved.message_id}"
                + (f" inference {' '.join(moved.inference_ids)}" if moved.inference_ids else "")
                for moved in report.moved
            )
        lines.extend(
            f"{report.source.name}: skipped message {mid}: {why}" for mid, why in report.skipped
        )
        lines.extend(
            f"{report.source.name}: failed message {mid}: {why}" for mid, why in report.failed
        )
    return lines


def redrive_document(reports: Sequence[RedriveReport]) -> list[dict[str, Any]]:
    return [
        {
            "source": report.source.name,
            "queue_url": report.source.queue_url,
            "destination": report.source.destination,
            "dry_run": report.dry_run,
            "moved": len(report.moved),
            "messages": [
                {"message_id": moved.message_id, "inference_ids": list(moved.inference_ids)}
                for moved in report.moved
            ],
            "skipped": [{"message_id": m, "reason": r} for m, r in report.skipped],
            "failed": [{"message_id": m, "reason": r} for m, r in report.failed],
        }
        for report in reports
    ]
