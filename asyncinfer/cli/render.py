"""Everything the CLI shows: Rich views for people, JSON and CSV for programs.

Only this module decides how things look; commands pass it plain values.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from asyncinfer.cli.redrive import RedriveReport
from asyncinfer.cli.stats import Percentiles, Snapshot
from asyncinfer.cli.submit import NOT_SEEN, FollowState, Submitted
from lambdas.common.clock import parse_timestamp
from lambdas.common.records import InferenceRecord, Status

RECORD_FIELDS = tuple(InferenceRecord.model_fields)
STATUS_STYLES = {
    Status.PENDING.value: "cyan",
    Status.SUBMITTED.value: "yellow",
    Status.COMPLETED.value: "green",
    Status.FAILED.value: "bold red",
    NOT_SEEN: "dim",
}
PIPED_WIDTH = 200  # tables written to a pipe or file are not folded to 80 columns


def emit(console: Console, text: str) -> None:
    """Text as-is (no markup, no wrapping): machine-readable output and one-line messages."""
    console.file.write(text if text.endswith("\n") else text + "\n")
    console.file.flush()


def stdout_console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(highlight=False, width=PIPED_WIDTH)
    return console


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def format_duration_ms(milliseconds: float | None) -> str:
    if milliseconds is None:
        return "-"
    if milliseconds < 1000:
        return f"{milliseconds:.0f} ms"
    if milliseconds < 120_000:
        return f"{milliseconds / 1000:.2f} s"
    return f"{milliseconds / 60_000:.1f} min"


def end_to_end_ms(record: InferenceRecord) -> float | None:
    if record.submitted_at and record.completed_at:
        elapsed = parse_timestamp(record.completed_at) - parse_timestamp(record.submitted_at)
        return elapsed.total_seconds() * 1000.0
    return None


def record_latency(record: InferenceRecord) -> str:
    total = end_to_end_ms(record)
    return format_duration_ms(total if total is not None else record.latency_ms)


def _result_preview(record: InferenceRecord, limit: int) -> str:
    if record.result is None:
        return ""
    if (record.result_encoding or "").lower() == "base64":
        return f"(binary, {len(record.result)} base64 characters: use 'fetch')"
    text = " ".join(record.result.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _outcome(record: InferenceRecord, limit: int) -> str:
    if record.status == Status.FAILED:
        return f"[{record.failure_stage or '?'}] {record.failure_reason or ''}".strip()
    if record.status == Status.COMPLETED:
        return _result_preview(record, limit) or record.output_location or ""
    return ""


# ------------------------------------------------------------------------------ records


def record_detail(record: InferenceRecord) -> Text:
    """One ``name  value`` line per attribute that is set, in the record contract's order."""
    values = record.model_dump(exclude_none=True, mode="json")
    rows: list[tuple[str, Text]] = []
    for name in RECORD_FIELDS:
        if name not in values:
            continue
        if name == "status":
            rows.append((name, status_text(str(values[name]))))
        elif name == "result":
            rows.append((name, Text(_result_preview(record, 2000))))
        else:
            rows.append((name, Text(str(values[name]))))
    total = end_to_end_ms(record)
    if total is not None:
        rows.append(("end_to_end", Text(format_duration_ms(total))))
    width = max(len(name) for name, _ in rows)
    detail = Text()
    for name, value in rows:
        detail.append(f"{name:<{width}}  ", style="bold")
        detail.append_text(value)
        detail.append("\n")
    detail.rstrip()
    return detail


def _short_time(timestamp: str | None) -> str:
    """``2026-11-21 12:00:01`` (UTC): the table's column; JSON and CSV keep milliseconds."""
    return timestamp[:19].replace("T", " ") if timestamp else "-"


ID_WIDTH = 64
FOLDED_ID_WIDTH = 32
MIN_TEXT_WIDTH = 12


def records_table(
    records: Sequence[InferenceRecord], *, width: int, title: str | None = None
) -> Table:
    """Ids are never cut: whole when the console is wide enough, folded in two otherwise.
    Column widths are computed here because Rich's own shrinking crops this table."""
    fixed = {"updated (UTC)": 19, "status": 9, "latency": 7}
    if width < 110:  # an 80-column terminal: time and latency give way to id, key and outcome
        fixed = {"status": 9}
    borders = 3 * (len(fixed) + 3) + 1
    available = width - borders - sum(fixed.values())
    id_width = ID_WIDTH if available >= ID_WIDTH + 3 * MIN_TEXT_WIDTH else FOLDED_ID_WIDTH
    flexible = max(available - id_width, 2 * MIN_TEXT_WIDTH)
    key_width = max(flexible // 3, MIN_TEXT_WIDTH)
    outcome_width = max(flexible - key_width, MIN_TEXT_WIDTH)

    table = Table(title=Text(title) if title else None, title_justify="left", header_style="bold")
    for name, column_width in fixed.items():
        table.add_column(
            name, no_wrap=True, width=column_width, justify="right" if name == "latency" else "left"
        )
    table.add_column("inference id", overflow="fold", width=id_width)
    table.add_column("input key", overflow="fold", width=key_width)
    table.add_column("outcome", overflow="fold", width=outcome_width)
    for record in records:
        cells: dict[str, RenderableType] = {
            "updated (UTC)": _short_time(record.updated_at or record.created_at),
            "status": status_text(str(record.status)),
            "latency": record_latency(record),
        }
        table.add_row(
            *(cells[name] for name in fixed),
            record.inference_id,
            Text(record.input_key or record.input_location or "-"),
            Text(_outcome(record, 100)),
        )
    return table


def record_document(record: InferenceRecord) -> dict[str, Any]:
    return record.model_dump(exclude_none=True, mode="json")


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def records_json(records: Sequence[InferenceRecord]) -> str:
    return to_json([record_document(record) for record in records])


def records_csv(records: Sequence[InferenceRecord]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RECORD_FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow(record.model_dump(mode="json"))
    return buffer.getvalue()


# ------------------------------------------------------------------------------- submit


def submitted_line(outcome: Submitted) -> str:
    line = f"{outcome.inference_id}  {outcome.input_location}"
    if outcome.expected_output:
        # Labelled: the record's output_location, from SageMaker's response, is authoritative.
        line += f"  (output expected at {outcome.expected_output})"
    return line


def submitted_document(outcome: Submitted, state: FollowState | None) -> dict[str, Any]:
    uploaded = outcome.uploaded
    document: dict[str, Any] = {
        "path": str(outcome.file.path),
        "inference_id": outcome.inference_id,
        "input_location": outcome.input_location,
        "version_id": uploaded.version_id if uploaded else None,
        "etag": uploaded.etag if uploaded else None,
        "size": outcome.file.size,
        # Where output_naming puts it; the record's output_location is authoritative.
        "expected_output_location": outcome.expected_output,
    }
    if state is not None and outcome.inference_id:
        document["status"] = state.status_of(outcome.inference_id)
        record = state.records.get(outcome.inference_id)
        document["record"] = record_document(record) if record else None
    return document


def follow_view(state: FollowState, *, width: int) -> RenderableType:
    counts = state.counts()
    line = Text(f"{len(state.inference_ids)} inferences, {state.elapsed_seconds:.0f}s: ")
    order = [NOT_SEEN, *(status.value for status in Status)]
    parts = [(name, counts[name]) for name in order if counts.get(name)]
    for index, (name, count) in enumerate(parts):
        if index:
            line.append("  ")
        line.append(f"{count} ", style="bold")
        line.append(name.lower(), style=STATUS_STYLES.get(name, ""))
    failed = state.failed[-5:]
    if not failed:
        return line
    return Group(line, records_table(failed, width=width, title="failed so far"))


def follow_summary(state: FollowState) -> str:
    counts = state.counts()
    done = counts.get(Status.COMPLETED.value, 0)
    failed = counts.get(Status.FAILED.value, 0)
    summary = f"{done} completed, {failed} failed"
    if state.timed_out:
        summary += f", {len(state.pending)} still in flight after {state.elapsed_seconds:.0f}s"
    return summary


# -------------------------------------------------------------------------------- watch


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


# ------------------------------------------------------------------------------ redrive


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
