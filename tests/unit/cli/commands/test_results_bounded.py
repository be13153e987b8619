"""Layout 2's listing costs a bounded number of requests whatever the table holds (issue 23),
lists what the previous release filed, and lists a record that moved once."""

from __future__ import annotations

import hashlib
from itertools import combinations
from typing import Any

import boto3
import pytest

from asyncinfer.cli.access import status_index
from asyncinfer.cli.access.table import ResultsTable, TimeWindow
from asyncinfer.cli.commands.results_listing import ListQuery, list_records
from bench import listing
from bench.table import create_results_table
from lambdas.common.contract import INPUT_KEYS_INDEX, STATUS_SHARD_INDEX, shard_of
from lambdas.common.records import InferenceRecord, Status
from tests.conftest import REGION

COMBINATIONS = [
    combination
    for size in range(1, len(Status) + 1)
    for combination in combinations(tuple(Status), size)
]
SMALL, LARGE = 50, 5000


class FakeStatusIndex:
    """The keys-only status index and the table in memory, counting requests as the access
    layer sends them: one Query per partition page, one BatchGetItem per 100 keys."""

    def __init__(self) -> None:
        self.partitions: dict[str, list[tuple[str, str]]] = {}
        self.records: dict[str, InferenceRecord] = {}
        self.requests = 0

    def file(self, inference_id: str, status: Status, partition: str, time: str) -> None:
        self.partitions.setdefault(partition, []).append((time, inference_id))
        self.records[inference_id] = InferenceRecord(inference_id=inference_id, status=status)

    def query_many(self, requests: Any) -> list[dict[str, Any]]:
        answers = []
        for request in requests:
            self.requests += 1
            partition = request["ExpressionAttributeValues"][":shard"]["S"]
            entries = sorted(self.partitions.get(partition, []), reverse=True)
            start = request.get("ExclusiveStartKey")
            if start:
                after = (start["status_time"]["S"], start["inference_id"]["S"])
                entries = [entry for entry in entries if entry < after]
            page = entries[: request["Limit"]]
            items = [
                {
                    "inference_id": {"S": inference_id},
                    "status_shard": {"S": partition},
                    "status_time": {"S": time},
                }
                for time, inference_id in page
            ]
            answer: dict[str, Any] = {"Items": items}
            if len(entries) > len(page) or (page and len(page) == request["Limit"]):
                answer["LastEvaluatedKey"] = items[-1]
            answers.append(answer)
        return answers

    def get_many(self, wanted: Any) -> dict[str, InferenceRecord]:
        self.requests += -(-len(wanted) // 100)
        return {i: self.records[i] for i in wanted if i in self.records}


def filled(size: int) -> FakeStatusIndex:
    """``size`` records as bench/listing.py fills its table: 10 in flight, the rest finished."""
    index = FakeStatusIndex()
    for number in range(size):
        entry = listing.item(number, listing.status_of(number, size))
        index.file(
            entry["inference_id"]["S"],
            Status(entry["status"]["S"]),
            entry["status_shard"]["S"],
            entry["status_time"]["S"],
        )
    return index


def first_page_requests(index: FakeStatusIndex, statuses: tuple[Status, ...]) -> int:
    index.requests = 0
    request = status_index.WalkRequest("t", "i", statuses, (None, None), listing.PAGE)
    page = status_index.status_page(index.query_many, index.get_many, request, None)
    # every combination lists something, except PENDING alone: none exists
    assert bool(page.records) == (statuses != (Status.PENDING,))
    return index.requests


@pytest.fixture(scope="module")
def request_counts() -> dict[int, dict[tuple[Status, ...], int]]:
    """Requests of the first page of ``results --limit 20`` for every status combination, at
    50 and at 5,000 records."""
    counts: dict[int, dict[tuple[Status, ...], int]] = {}
    for size in (SMALL, LARGE):
        index = filled(size)
        counts[size] = {statuses: first_page_requests(index, statuses) for statuses in COMBINATIONS}
    return counts


@pytest.mark.parametrize("statuses", COMBINATIONS, ids="+".join)
def test_a_page_costs_no_more_requests_in_a_bigger_table(
    request_counts: dict[int, dict[tuple[Status, ...], int]], statuses: tuple[Status, ...]
) -> None:
    small, large = request_counts[SMALL][statuses], request_counts[LARGE][statuses]
    assert large <= small, (small, large)
    # 16 partitions a class, plus the previous release's 16, plus the items' reads
    classes = {"OPEN" if s in (Status.PENDING, Status.SUBMITTED) else s for s in statuses}
    assert large <= 16 * (len(classes) + 1) + 20 + 2


def ids(count: int, salt: str = "") -> list[str]:
    return [hashlib.sha256(f"{salt}file-{n}".encode()).hexdigest() for n in range(count)]


def put(client: Any, inference_id: str, status: Status, partition: str, time: str) -> None:
    client.put_item(
        TableName=listing.TABLE,
        Item={
            "inference_id": {"S": inference_id},
            "status": {"S": status.value},
            "input_key": {"S": f"in/{inference_id[:6]}"},
            "updated_at": {"S": time},
            "status_shard": {"S": partition},
            "status_time": {"S": time},
        },
    )


def listed(client: Any, statuses: tuple[Status, ...], limit: int) -> list[str]:
    table = ResultsTable(
        client,
        listing.TABLE,
        input_location_index=INPUT_KEYS_INDEX,
        status_index=STATUS_SHARD_INDEX,
    )
    query = ListQuery(statuses, TimeWindow(), None, limit)
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        page, cursor = list_records(table, query, fingerprint="f", cursor=cursor)
        seen.extend(record.inference_id for record in page)
        if cursor is None:
            return seen
    raise AssertionError("the listing never ended")


@pytest.fixture
def table(moto_aws: None) -> Any:
    client = boto3.client("dynamodb", region_name=REGION)
    create_results_table(client, listing.TABLE, listing.INDEXES)
    return client


def at(second: int) -> str:
    return f"2026-11-01T00:00:{second:02d}.000Z"


def test_records_of_the_previous_release_are_merged_in(table: Any) -> None:
    old_done, old_open, new_done, new_open = ids(4)
    put(table, old_done, Status.COMPLETED, f"{shard_of(old_done):02d}", at(1))
    put(table, old_open, Status.SUBMITTED, f"{shard_of(old_open):02d}", at(2))
    put(table, new_done, Status.COMPLETED, f"COMPLETED#{shard_of(new_done):02d}", at(3))
    put(table, new_open, Status.PENDING, f"OPEN#{shard_of(new_open):02d}", at(4))

    assert listed(table, (Status.COMPLETED,), 1) == [new_done, old_done]
    assert listed(table, (Status.SUBMITTED,), 1) == [old_open]
    assert listed(table, tuple(Status), 3) == [new_open, new_done, old_open, old_done]


def test_an_entry_that_trails_its_moved_record_lists_it_once() -> None:
    """The index is eventually consistent: the claim's OPEN entry may still be there when the
    outcome's entry is; the record is listed once, from where it is filed now."""
    moved, other = ids(2)
    index = {
        "OPEN#03": [(at(4), moved)],
        "COMPLETED#03": [(at(5), moved), (at(3), other)],
    }
    records = {
        moved: InferenceRecord(inference_id=moved, status=Status.COMPLETED),
        other: InferenceRecord(inference_id=other, status=Status.COMPLETED),
    }

    def query_many(requests: Any) -> list[dict[str, Any]]:
        answers = []
        for request in requests:
            partition = request["ExpressionAttributeValues"][":shard"]["S"]
            items = [
                {
                    "inference_id": {"S": inference_id},
                    "status_shard": {"S": partition},
                    "status_time": {"S": time},
                }
                for time, inference_id in index.get(partition, [])
            ]
            answers.append({"Items": items})
        return answers

    def get_many(wanted: Any) -> dict[str, InferenceRecord]:
        return {i: records[i] for i in wanted if i in records}

    def page(statuses: tuple[Status, ...]) -> list[str]:
        request = status_index.WalkRequest("t", "i", statuses, (None, None), 10)
        found = status_index.status_page(query_many, get_many, request, None)
        assert found.last_key is None
        return [record.inference_id for record in found.records]

    assert page(tuple(Status)) == [moved, other]
    assert page((Status.PENDING, Status.SUBMITTED)) == []


def test_a_rare_status_behind_many_others_is_reached_page_by_page(table: Any) -> None:
    """OPEN holds PENDING and SUBMITTED: a page reads 100 keys of such a partition at a time
    and parks it after a batch without a PENDING record, so the pages go on until it is
    found, each bounded."""
    submitted = ids(120, "s")
    (pending,) = ids(1, "p")
    put(table, pending, Status.PENDING, "OPEN#03", at(0))
    for number, inference_id in enumerate(submitted):
        put(
            table,
            inference_id,
            Status.SUBMITTED,
            "OPEN#03",
            f"2026-11-01T00:{1 + number // 60:02d}:{number % 60:02d}.000Z",
        )

    assert listed(table, (Status.PENDING,), 5) == [pending]
    assert sorted(listed(table, (Status.SUBMITTED,), 50)) == sorted(submitted)
