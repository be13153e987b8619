"""What a job is made of: its header, its entries and the lines of its results file.

A job's life: ``STARTING`` (its manifest is being resolved) -> ``OPEN`` (every member is known;
outcomes are being counted) -> ``COMPLETING`` (all counted; the results file is being written)
-> ``COMPLETED``; or ``STARTING -> FAILED`` (a bad manifest: nothing was inferred).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from lambdas.common.contract import shard_of
from lambdas.common.records import InferenceRecord, Status


class JobStatus(StrEnum):
    STARTING = "STARTING"
    OPEN = "OPEN"
    COMPLETING = "COMPLETING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


OPEN_STATUSES = (JobStatus.STARTING, JobStatus.OPEN, JobStatus.COMPLETING)
# an entry the job itself settled: never an input (missing, filtered) or no outcome in time
JOB_FAILURE_STAGE = "job"
EXPIRED_STAGE = "expired"


@dataclass(frozen=True)
class JobHeader:
    """The job's own item (the Job Completed event is its transition to a final status)."""

    job_name: str
    status: JobStatus
    manifest_location: str
    manifest_version: str
    created_at: str
    deadline_at: int  # epoch seconds: members still open then are settled as expired
    total: int = 0
    completed: int = 0
    failed: int = 0
    results_location: str = ""
    reason: str = ""
    updated_at: str = ""


@dataclass(frozen=True)
class Entry:
    """One manifest entry as resolved when the job started (a line of the entries file).

    ``inference_id`` is set when the key had a current version: the entry waits for that
    record's outcome. Otherwise ``failure_reason`` says why the entry failed at once.
    """

    key: str
    version_id: str | None = None
    inference_id: str | None = None
    failure_reason: str | None = None

    def to_line(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None})

    @classmethod
    def from_line(cls, line: str) -> Entry:
        return cls(**json.loads(line))


@dataclass(frozen=True)
class Member:
    """An inference id of a job (one per distinct id, however often the manifest names it)."""

    job_name: str
    inference_id: str
    counted: bool = False

    @property
    def shard(self) -> int:
        return shard_of(self.inference_id)


@dataclass
class Tally:
    total: int = 0
    completed: int = 0
    failed: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    def add(self, status: str) -> None:
        self.total += 1
        if status == Status.COMPLETED:
            self.completed += 1
        else:
            self.failed += 1


def result_line(entry: Entry, record: InferenceRecord | None) -> dict[str, Any]:
    """The results file's line of one entry: the record's outcome, or why there is none."""
    line: dict[str, Any] = {
        "key": entry.key,
        "version_id": entry.version_id,
        "inference_id": entry.inference_id,
        "status": Status.FAILED.value,
        "output_location": None,
        "result": None,
        "result_encoding": None,
        "failure_stage": JOB_FAILURE_STAGE,
        "failure_reason": entry.failure_reason,
    }
    if entry.inference_id is None:
        return line
    if record is None or record.status not in (Status.COMPLETED, Status.FAILED):
        line["failure_stage"] = EXPIRED_STAGE
        line["failure_reason"] = (
            "no record of this version before the job's deadline (never ingested)"
            if record is None
            else f"still {record.status} at the job's deadline"
        )
        return line
    line.update(
        status=record.status,
        output_location=record.output_location,
        result=record.result,
        result_encoding=record.result_encoding,
        failure_stage=record.failure_stage,
        failure_reason=record.failure_reason,
    )
    return line
