"""The jobs logic against in-memory fakes: membership, exactly-once completion, lost triggers."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from aws_lambda_powertools import Logger

from lambdas.common.contract import JOB_MAX_ENTRIES, STATUS_SHARDS
from lambdas.common.records import FailureStage, InferenceRecord, Status, inference_id_for
from lambdas.jobs.logic import START_TIMEOUT, Jobs, JobSettings
from lambdas.jobs.model import JobStatus
from tests.unit.jobs.fakes import FakeLedger, FakeObjects, FakeRecords

INPUT, OUTPUT = "in-bucket", "out-bucket"
START = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class World:
    def __init__(self, *, key_suffixes: tuple[str, ...] = ()) -> None:
        self.ledger = FakeLedger()
        self.objects = FakeObjects()
        self.records = FakeRecords()
        self.clock = Clock()
        self.jobs = Jobs(
            settings=JobSettings(
                input_bucket=INPUT,
                output_bucket=OUTPUT,
                jobs_prefix="jobs/",
                key_prefixes=(),
                key_suffixes=key_suffixes,
                deadline_seconds=3600,
                resolve_concurrency=4,
            ),
            ledger=self.ledger,
            objects=self.objects,
            records=self.records,
            logger=Logger(service="test"),
            now=self.clock,
        )

    def upload(self, key: str) -> str:
        version = self.objects.put(INPUT, key, b"{}")
        return inference_id_for(INPUT, key, version, "e")

    def outcome(self, inference_id: str, status: Status = Status.COMPLETED) -> None:
        self.records.by_id[inference_id] = InferenceRecord(
            inference_id=inference_id,
            status=status,
            output_location=f"s3://{OUTPUT}/out/{inference_id}.out"
            if status == "COMPLETED"
            else None,
            result='{"y": 1}' if status == "COMPLETED" else None,
            failure_stage=FailureStage.INFERENCE if status == "FAILED" else None,
            failure_reason="rejected by the model" if status == "FAILED" else None,
        )

    def submit(self, name: str, keys: list[object], prefix: str = f"s3://{INPUT}/data/") -> str:
        key = f"jobs/{name}.manifest.json"
        body = json.dumps([{"prefix": prefix}, *keys]).encode()
        version = self.objects.put(INPUT, key, body)
        self.jobs.start(INPUT, key, version)
        return key

    def lines(self, name: str) -> list[dict[str, object]]:
        found = self.objects.read_lines(OUTPUT, f"jobs/{name}/results.jsonl")
        assert found is not None
        return [json.loads(line) for line in found]

    def completions(self, name: str) -> int:
        return sum(
            1
            for job, _, new in self.ledger.transitions
            if job == name and new is JobStatus.COMPLETED
        )


def test_a_mixed_job_completes_once_with_one_line_per_entry_in_manifest_order() -> None:
    world = World()
    known = world.upload("data/known.json")
    world.outcome(known)  # recorded before the job: reused, never invoked again
    accepted = [world.upload(f"data/{n}.json") for n in ("a", "b")]
    rejected = world.upload("data/bad.json")
    world.submit("mixed", ["a.json", "missing.json", "known.json", "bad.json", "b.json"])
    header = world.ledger.header("mixed")
    assert header is not None
    assert header.status is JobStatus.OPEN
    assert header.total == 5
    world.outcome(rejected, Status.FAILED)
    world.jobs.count_outcome(rejected)
    for inference_id in accepted:
        world.outcome(inference_id)
        world.jobs.count_outcome(inference_id)
    header = world.ledger.header("mixed")
    assert header is not None
    assert header.status is JobStatus.COMPLETED
    assert (header.total, header.completed, header.failed) == (5, 3, 2)
    assert header.results_location == f"s3://{OUTPUT}/jobs/mixed/results.jsonl"
    lines = world.lines("mixed")
    assert [line["key"] for line in lines] == [
        "data/a.json",
        "data/missing.json",
        "data/known.json",
        "data/bad.json",
        "data/b.json",
    ]
    assert [line["status"] for line in lines] == [
        "COMPLETED",
        "FAILED",
        "COMPLETED",
        "FAILED",
        "COMPLETED",
    ]
    assert lines[1]["failure_stage"] == "job"
    assert "no such object" in str(lines[1]["failure_reason"])
    assert lines[3]["failure_stage"] == "inference"
    assert lines[0]["result"] == '{"y": 1}'
    assert lines[0]["inference_id"] == accepted[0]
    assert world.completions("mixed") == 1


def test_duplicates_of_every_trigger_change_nothing() -> None:
    world = World()
    ids = [world.upload(f"data/{n}.json") for n in range(5)]
    key = world.submit("dup", [f"{n}.json" for n in range(5)])
    version = world.objects.objects[(INPUT, key)][1]
    world.jobs.start(INPUT, key, version)  # a duplicate manifest event
    for inference_id in ids:
        world.outcome(inference_id)
        world.jobs.count_outcome(inference_id)
        world.jobs.count_outcome(inference_id)  # a duplicate outcome event
    world.jobs.start(INPUT, key, version)
    for inference_id in ids:  # a redrive of every outcome after completion
        world.jobs.count_outcome(inference_id)
    world.jobs.sweep()
    assert world.completions("dup") == 1
    assert world.objects.writes["jobs/dup/results.jsonl"] == 1
    assert world.objects.writes["jobs/dup/entries.jsonl"] == 1
    assert sum(done for _, done in world.ledger.shards.values()) == 5


def test_outcomes_in_any_order_even_before_the_manifest() -> None:
    world = World()
    ids = [world.upload(f"data/{n}.json") for n in range(6)]
    early, late = ids[:3], ids[3:]
    for inference_id in early:  # terminal before the job exists: no job to count in yet
        world.outcome(inference_id)
        assert world.jobs.count_outcome(inference_id) == 0
    world.submit("order", [f"{n}.json" for n in reversed(range(6))])
    for inference_id in reversed(late):
        world.outcome(inference_id)
        world.jobs.count_outcome(inference_id)
    assert world.completions("order") == 1
    assert [line["key"] for line in world.lines("order")] == [
        f"data/{n}.json" for n in reversed(range(6))
    ]


def test_a_lost_outcome_trigger_is_found_by_the_sweep() -> None:
    world = World()
    ids = [world.upload(f"data/{n}.json") for n in range(3)]
    world.submit("lost", ["0.json", "1.json", "2.json"])
    for inference_id in ids:
        world.outcome(inference_id)
    world.jobs.count_outcome(ids[0])
    world.jobs.count_outcome(ids[1])  # the last outcome's event never arrives
    header = world.ledger.header("lost")
    assert header is not None
    assert header.status is JobStatus.OPEN
    world.jobs.sweep()
    header = world.ledger.header("lost")
    assert header is not None
    assert header.status is JobStatus.COMPLETED
    assert header.completed == 3
    assert world.completions("lost") == 1


def test_an_entry_never_ingested_fails_as_expired_at_the_deadline() -> None:
    world = World()
    done = world.upload("data/done.json")
    world.upload("data/never.json")  # its S3 event was lost: no record ever
    world.submit("late", ["done.json", "never.json"])
    world.outcome(done)
    world.jobs.count_outcome(done)
    world.jobs.sweep()
    header = world.ledger.header("late")
    assert header is not None
    assert header.status is JobStatus.OPEN
    world.clock.now = START + timedelta(hours=2)
    world.jobs.sweep()
    header = world.ledger.header("late")
    assert header is not None
    assert header.status is JobStatus.COMPLETED
    line = world.lines("late")[1]
    assert line["status"] == "FAILED"
    assert line["failure_stage"] == "expired"


def test_entries_ingest_would_never_infer_fail_at_once() -> None:
    world = World(key_suffixes=(".json",))
    world.upload("data/notes.txt")
    world.objects.put(INPUT, "jobs/other.manifest.json", b"[]")
    world.submit("filtered", ["notes.txt"])
    world.submit("nested", ["x"], prefix=f"s3://{INPUT}/jobs/other.manifest.json")
    for name in ("filtered", "nested"):
        header = world.ledger.header(name)
        assert header is not None
        assert header.status is JobStatus.COMPLETED
        assert header.failed == 1
        assert "not an input" in str(world.lines(name)[0]["failure_reason"])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not JSON"),
        (b'{"prefix": "s3://in-bucket/"}', "JSON array"),
        (json.dumps([{"prefix": "s3://elsewhere/x/"}, "a"]).encode(), "not the input bucket"),
        (json.dumps([{"prefix": f"s3://{INPUT}/"}]).encode(), "no keys"),
        (json.dumps([{"prefix": f"s3://{INPUT}/"}, 3]).encode(), "not non-empty key"),
        (
            json.dumps([{"prefix": f"s3://{INPUT}/"}] + ["k"] * (JOB_MAX_ENTRIES + 1)).encode(),
            "at most",
        ),
    ],
)
def test_a_bad_manifest_is_a_failed_job_with_its_reason(body: bytes, reason: str) -> None:
    world = World()
    version = world.objects.put(INPUT, "jobs/bad.manifest.json", body)
    world.jobs.start(INPUT, "jobs/bad.manifest.json", version)
    header = world.ledger.header("bad")
    assert header is not None
    assert header.status is JobStatus.FAILED
    assert reason in header.reason
    assert world.objects.heads == 0  # nothing resolved, nothing waits


def test_a_new_manifest_version_under_a_used_name_starts_nothing() -> None:
    world = World()
    world.upload("data/a.json")
    world.submit("same", ["a.json"])
    world.submit("same", ["a.json", "a.json"])
    header = world.ledger.header("same")
    assert header is not None
    assert header.total == 1


def test_keys_that_are_not_manifests_start_nothing() -> None:
    world = World()
    assert world.jobs.start(INPUT, "jobs/readme.txt", None) is None
    assert world.jobs.start("other", "jobs/x.manifest.json", None) is None
    assert world.ledger.headers == {}


def test_a_start_that_died_is_resumed_by_the_sweep_with_the_same_entries() -> None:
    world = World()
    ids = [world.upload(f"data/{n}.json") for n in range(4)]
    body = json.dumps([{"prefix": f"s3://{INPUT}/data/"}, "0.json", "1.json"]).encode()
    version = world.objects.put(INPUT, "jobs/crash.manifest.json", body)
    real = world.ledger.add_members

    def dies(*args: object, **kwargs: object) -> None:
        raise RuntimeError("timed out")

    world.ledger.add_members = dies  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        world.jobs.start(INPUT, "jobs/crash.manifest.json", version)
    world.ledger.add_members = real  # type: ignore[method-assign]
    world.upload("data/0.json")  # overwritten meanwhile: the job keeps the version it resolved
    world.clock.now = START + START_TIMEOUT
    world.jobs.sweep()
    header = world.ledger.header("crash")
    assert header is not None
    assert header.status is JobStatus.OPEN
    assert {i for i, _ in world.ledger.members} == set(ids[:2])


def test_a_completion_cut_short_is_finished_by_a_retry_without_a_second_event() -> None:
    world = World()
    only = world.upload("data/a.json")
    world.submit("cut", ["a.json"])
    world.outcome(only)
    real = world.objects.write_lines

    def dies(*args: object, **kwargs: object) -> None:
        raise RuntimeError("killed while writing")

    world.objects.write_lines = dies  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        world.jobs.count_outcome(only)
    world.objects.write_lines = real  # type: ignore[method-assign]
    header = world.ledger.header("cut")
    assert header is not None
    assert header.status is JobStatus.COMPLETING
    world.jobs.count_outcome(only)  # the message's redelivery
    world.jobs.sweep()
    assert world.completions("cut") == 1


def test_concurrent_last_outcomes_complete_the_job_once() -> None:
    world = World()
    ids = [world.upload(f"data/{n}.json") for n in range(64)]
    world.submit("race", [f"{n}.json" for n in range(64)])
    for inference_id in ids:
        world.outcome(inference_id)
    barrier = threading.Barrier(8)

    def deliver(part: list[str]) -> None:
        barrier.wait()
        for inference_id in part:
            world.jobs.count_outcome(inference_id)
            world.jobs.try_complete("race")

    threads = [threading.Thread(target=deliver, args=(ids[n::8] * 2,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert world.completions("race") == 1
    header = world.ledger.header("race")
    assert header is not None
    assert header.completed == 64


def test_outcomes_spread_over_every_shard() -> None:
    world = World()
    ids = [world.upload(f"data/{n}.json") for n in range(1600)]
    world.submit("wide", [f"{n}.json" for n in range(1600)])
    for inference_id in ids:
        world.outcome(inference_id)
        world.jobs.count_outcome(inference_id)
    writes = world.ledger.shard_writes
    assert len(writes) == STATUS_SHARDS
    assert max(writes.values()) < 1600 / STATUS_SHARDS * 1.5
    assert world.completions("wide") == 1
