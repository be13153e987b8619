"""Everything the CLI shows: Rich views for people, JSON and CSV for programs.

Only this module decides how things look; commands pass it plain values.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from lambdas.common.clock import parse_timestamp
from lambdas.common.records import InferenceRecord, Status

RECORD_FIELDS = tuple(InferenceRecord.model_fields)
STATUS_STYLES = {
    Status.PENDING.value: "cyan",
    Status.SUBMITTED.value: "yellow",
    Status.COMPLETED.value: "green",
    Status.FAILED.value: "bold red",
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


TIMELINE = ("created_at", "submitted_at", "received_at", "completed_at", "updated_at")
LATENCY_MEANINGS = {
    "latency_ms": "SageMaker's: from receiving the request to its outcome, queue and model",
    "end_to_end": "this pipeline's: from submitted_at to completed_at",
}


def _detail_order(values: dict[str, Any]) -> list[str]:
    """The record contract's order, with the timestamps in the order they happened (SageMaker's
    received_at can precede submitted_at, which ingest records once the call returned) and
    end_to_end beside latency_ms."""
    timeline = sorted((name for name in TIMELINE if name in values), key=lambda n: values[n])
    names: list[str] = []
    for name in RECORD_FIELDS:
        if name in TIMELINE:
            if name == TIMELINE[0] or not any(n in names for n in TIMELINE):
                names.extend(n for n in timeline if n not in names)
            continue
        names.append(name)
        if name == "latency_ms":
            names.append("end_to_end")
    if "end_to_end" not in names:
        names.append("end_to_end")
    return names


def record_detail(record: InferenceRecord) -> Text:
    """One ``name  value`` line per attribute that is set, in the record contract's order,
    the timeline in the order it happened and each latency with what it measures."""
    values = record.model_dump(exclude_none=True, mode="json")
    total = end_to_end_ms(record)
    if total is not None:
        values["end_to_end"] = total
    rows: list[tuple[str, Text]] = []
    for name in _detail_order(values):
        if name not in values:
            continue
        if name in LATENCY_MEANINGS:
            shown = format_duration_ms(float(values[name]))
            rows.append((name, Text(f"{shown}  ({LATENCY_MEANINGS[name]})")))
        elif name == "status":
            rows.append((name, status_text(str(values[name]))))
        elif name == "result":
            rows.append((name, Text(_result_preview(record, 2000))))
        else:
            rows.append((name, Text(str(values[name]))))
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
            Text(_lines(record.input_key or record.input_location or "-", key_width)),
            Text(_lines(_outcome(record, 100), outcome_width)),
        )
    return table


CELL_LINES = 2  # a listing shows a preview; `status ID` shows the whole record


def _lines(text: str, width: int) -> str:
    """``text`` on one line (an HTML error page has many), cut to the characters of
    ``CELL_LINES`` lines of a ``width`` column: with word wrapping, a row of an 80-column
    table takes at most three lines, not 25."""
    flat = " ".join(text.split())
    room = width * CELL_LINES
    return flat if len(flat) <= room else flat[: room - 1] + "…"


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
