"""What the jobs logic needs from AWS, as protocols: ``clients`` implements them with boto3,
the unit tests with in-memory fakes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from lambdas.common.records import InferenceRecord
from lambdas.jobs.model import JobHeader, JobStatus, Member


class JobsAwsError(Exception):
    """A call to AWS failed; the message (or run) is retried."""


@dataclass(frozen=True)
class CurrentVersion:
    version_id: str | None
    etag: str | None


class JobLedger(Protocol):
    """The jobs table."""

    def create(self, header: JobHeader) -> JobHeader:
        """Stores the header unless the job exists; returns the stored header either way."""
        ...

    def header(self, name: str) -> JobHeader | None: ...

    def transition(
        self, name: str, expected: JobStatus, new: JobStatus, values: dict[str, str | int]
    ) -> bool:
        """Sets ``new`` (and ``values``) only if the job is in ``expected``; False if not."""
        ...

    def open_jobs(self) -> list[JobHeader]:
        """Every job not yet final."""
        ...

    def add_members(self, name: str, expected: dict[int, int], ids: list[str]) -> None:
        """The shard counters (each knows its expected count) and the members, each written
        only if absent: a retry never resets a count."""
        ...

    def members_of(self, inference_id: str) -> list[Member]:
        """The jobs an inference id belongs to (strongly consistent)."""
        ...

    def count(self, member: Member) -> bool:
        """Marks the member counted and adds one to its shard, in one transaction, only if
        not counted yet; False when it already was."""
        ...

    def shard_settled(self, name: str, shard: int) -> bool:
        """Whether the shard has counted every member it expects."""
        ...

    def all_settled(self, name: str) -> bool:
        """Whether every shard has counted every member it expects."""
        ...

    def uncounted(self, name: str, ids: list[str]) -> list[str]:
        """The ids among ``ids`` whose member is not counted yet."""
        ...


class JobObjects(Protocol):
    """S3: manifests and versions in the input bucket, the job's files in the output bucket."""

    def read(self, bucket: str, key: str, version_id: str | None) -> tuple[bytes, str] | None:
        """The object's body and version id ("null" when unversioned); None if it is gone."""
        ...

    def current_version(self, bucket: str, key: str) -> CurrentVersion | None:
        """HeadObject of the key's current version; None if there is no such object."""
        ...

    def write_lines(self, bucket: str, key: str, lines: Iterable[str]) -> None:
        """One JSON Lines object, streamed (multipart above one part)."""
        ...

    def read_lines(self, bucket: str, key: str) -> list[str] | None:
        """The lines of a JSON Lines object; None if there is no such object."""
        ...


class RecordReader(Protocol):
    """The results table, by key."""

    def records(self, ids: list[str]) -> dict[str, InferenceRecord]:
        """Strongly consistent reads, 100 keys a call."""
        ...
