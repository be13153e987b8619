"""How ``submit`` shows what it uploaded and, with ``--wait``, how the inferences are going."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from asyncinfer.cli.commands.submit_upload import NOT_SEEN, FollowState, Submitted
from asyncinfer.cli.render import STATUS_STYLES, record_document, records_table
from lambdas.common.records import Status

FOLLOW_STYLES = {**STATUS_STYLES, NOT_SEEN: "dim"}


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
        line.append(name.lower(), style=FOLLOW_STYLES.get(name, ""))
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
