"""In-memory fakes of the jobs function's ports, with the same conditional semantics."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import replace

from lambdas.common.contract import STATUS_SHARDS
from lambdas.common.records import InferenceRecord
from lambdas.jobs.model import OPEN_STATUSES, JobHeader, JobStatus, Member
from lambdas.jobs.ports import CurrentVersion


class FakeLedger:
    def __init__(self) -> None:
        self.headers: dict[str, JobHeader] = {}
        self.shards: dict[tuple[str, int], list[int]] = {}  # [expected, done]
        self.members: dict[tuple[str, str], bool] = {}  # (id, job) -> counted
        self.transitions: list[tuple[str, JobStatus, JobStatus]] = []
        self.shard_writes: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def create(self, header: JobHeader) -> JobHeader:
        with self._lock:
            return self.headers.setdefault(header.job_name, header)

    def header(self, name: str) -> JobHeader | None:
        return self.headers.get(name)

    def transition(
        self, name: str, expected: JobStatus, new: JobStatus, values: dict[str, str | int]
    ) -> bool:
        with self._lock:
            header = self.headers[name]
            if header.status is not expected:
                return False
            self.headers[name] = replace(header, status=new, **values)  # type: ignore[arg-type]
            self.transitions.append((name, expected, new))
            return True

    def open_jobs(self) -> list[JobHeader]:
        return [h for h in self.headers.values() if h.status in OPEN_STATUSES]

    def add_members(self, name: str, expected: dict[int, int], ids: list[str]) -> None:
        with self._lock:
            for shard, count in expected.items():
                self.shards.setdefault((name, shard), [count, 0])
            for inference_id in ids:
                self.members.setdefault((inference_id, name), False)

    def members_of(self, inference_id: str) -> list[Member]:
        return [
            Member(job_name=job, inference_id=i, counted=counted)
            for (i, job), counted in self.members.items()
            if i == inference_id
        ]

    def count(self, member: Member) -> bool:
        with self._lock:
            key = (member.inference_id, member.job_name)
            if key not in self.members or self.members[key]:
                return False
            self.members[key] = True
            shard = (member.job_name, member.shard)
            self.shards[shard][1] += 1
            self.shard_writes[shard] = self.shard_writes.get(shard, 0) + 1
            return True

    def shard_settled(self, name: str, shard: int) -> bool:
        expected, done = self.shards.get((name, shard), [0, 0])
        return done >= expected

    def all_settled(self, name: str) -> bool:
        return all(self.shard_settled(name, shard) for shard in range(STATUS_SHARDS))

    def uncounted(self, name: str, ids: list[str]) -> list[str]:
        return [i for i in ids if not self.members.get((i, name), False)]


class FakeObjects:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.writes: dict[str, int] = {}
        self.heads = 0
        self._version = 0

    def put(self, bucket: str, key: str, body: bytes) -> str:
        self._version += 1
        version = f"v{self._version}"
        self.objects[(bucket, key)] = (body, version)
        return version

    def read(self, bucket: str, key: str, version_id: str | None) -> tuple[bytes, str] | None:
        return self.objects.get((bucket, key))

    def current_version(self, bucket: str, key: str) -> CurrentVersion | None:
        self.heads += 1
        found = self.objects.get((bucket, key))
        return None if found is None else CurrentVersion(version_id=found[1], etag="e")

    def write_lines(self, bucket: str, key: str, lines: Iterable[str]) -> None:
        self.writes[key] = self.writes.get(key, 0) + 1
        self.put(bucket, key, "".join(line + "\n" for line in lines).encode())

    def read_lines(self, bucket: str, key: str) -> list[str] | None:
        found = self.objects.get((bucket, key))
        return None if found is None else found[0].decode().splitlines()


class FakeRecords:
    def __init__(self) -> None:
        self.by_id: dict[str, InferenceRecord] = {}
        self.reads = 0

    def records(self, ids: list[str]) -> dict[str, InferenceRecord]:
        self.reads += len(ids)
        return {i: self.by_id[i] for i in ids if i in self.by_id}
