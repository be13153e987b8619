"""``results`` at any table size: DynamoDB requests and first-page time of the CLI's listing.

A moto server (as local mode runs one) holds a results table filled directly with
``BatchWriteItem`` (no file goes through the pipeline): a fixed number of records in flight
(``SUBMITTED``) and the rest terminal, filed in the status index as the functions file them.
The CLI's own listing (``asyncinfer.cli.listing.list_records`` over ``ResultsTable``) then reads
the first page of ``results --limit 20`` for the default statuses and for ``--status PENDING``
(none exists: the case that walked the whole index before issue 23); a botocore hook counts
every request the client sends.

``cli_results_requests_growth``: requests at the large size over requests at the small size,
the worse of the two listings (goal <= 1.0: a page never costs more because the table is
bigger). ``cli_results_first_page_ms``: the default listing's first page at the large size
(moto answers an index Query by reading every item, so this grows with the table even though
the requests do not; diagnostic only).
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from asyncinfer.cli.access.table import ResultsTable, TimeWindow
from asyncinfer.cli.commands.results_listing import ListQuery, list_records
from bench.figures import Figure
from bench.table import create_results_table
from lambdas.common.clock import format_timestamp
from lambdas.common.contract import (
    INPUT_KEYS_INDEX,
    PARTITION_KEY,
    STATUS_SHARD_ATTRIBUTE,
    STATUS_SHARD_INDEX,
    STATUS_TIME_ATTRIBUTE,
    status_shard,
)
from lambdas.common.records import Status

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

TABLE = "bench-results"
INDEXES = (INPUT_KEYS_INDEX, STATUS_SHARD_INDEX)  # layout 2's
SMALL, LARGE = 100, 100_000
IN_FLIGHT = 10  # SUBMITTED records: what is in flight does not grow with the table
PAGE = 20
START = datetime(2026, 11, 1, tzinfo=UTC)
LISTINGS: dict[str, tuple[Status, ...]] = {
    "default": tuple(Status),
    "pending": (Status.PENDING,),
}
BATCH_WRITE_MAX = 25


@dataclass(frozen=True)
class ListingCost:
    requests: int
    seconds: float
    records: int


def item(number: int, status: Status) -> dict[str, Any]:
    """One record as the functions leave it, with its status-index keys."""
    inference_id = hashlib.sha256(f"bench-{number}".encode()).hexdigest()
    created = START + timedelta(seconds=number)
    finished = created + timedelta(seconds=2)
    values = {
        PARTITION_KEY: inference_id,
        "status": status.value,
        "input_key": f"inputs/{number}.csv",
        "input_location": f"s3://bench-input/inputs/{number}.csv",
        "created_at": format_timestamp(created),
        "updated_at": format_timestamp(finished if status != Status.SUBMITTED else created),
        STATUS_SHARD_ATTRIBUTE: status_shard(inference_id, status),
        STATUS_TIME_ATTRIBUTE: format_timestamp(
            finished if status in (Status.COMPLETED, Status.FAILED) else created
        ),
    }
    if status in (Status.COMPLETED, Status.FAILED):
        values["completed_at"] = values["updated_at"]
    return {name: {"S": value} for name, value in values.items()}


def status_of(number: int, count: int) -> Status:
    if number >= count - IN_FLIGHT:
        return Status.SUBMITTED
    return Status.FAILED if number % 10 == 0 else Status.COMPLETED


def fill(client: DynamoDBClient, count: int) -> None:
    """Grows the table to ``count`` records (numbers already present are written again)."""
    items = [item(number, status_of(number, count)) for number in range(count)]
    for start in range(0, len(items), BATCH_WRITE_MAX):
        requests: Any = [
            {"PutRequest": {"Item": entry}} for entry in items[start : start + BATCH_WRITE_MAX]
        ]
        while requests:
            response = client.batch_write_item(RequestItems={TABLE: requests})
            requests = response.get("UnprocessedItems", {}).get(TABLE, [])


class RequestCounter:
    """Counts the requests a client sends, by operation (a botocore ``before-call`` hook)."""

    def __init__(self, client: DynamoDBClient) -> None:
        self.calls: Counter[str] = Counter()
        client.meta.events.register("before-call.dynamodb.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def first_page(client: DynamoDBClient, statuses: tuple[Status, ...]) -> ListingCost:
    """The first page of ``results --limit 20`` for ``statuses``, as the CLI reads it."""
    counter = RequestCounter(client)
    table = ResultsTable(
        client, TABLE, input_location_index=INPUT_KEYS_INDEX, status_index=STATUS_SHARD_INDEX
    )
    query = ListQuery(statuses=statuses, window=TimeWindow(), key_prefix=None, limit=PAGE)
    started = time.perf_counter()
    records, _ = list_records(table, query, fingerprint="bench")
    seconds = time.perf_counter() - started
    client.meta.events.unregister("before-call.dynamodb.*", counter._count)
    return ListingCost(counter.total, seconds, len(records))


@contextmanager
def moto_dynamodb() -> Iterator[DynamoDBClient]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client: DynamoDBClient = boto3.client(
            "dynamodb",
            region_name="us-east-1",
            endpoint_url=f"http://{host}:{port}",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            # moto answers an index Query by reading every item: slow at 100,000 records
            config=Config(read_timeout=900, retries={"max_attempts": 1}),
        )
        yield client
    finally:
        server.stop()


def measure(sizes: tuple[int, ...] = (SMALL, LARGE)) -> dict[int, dict[str, ListingCost]]:
    """Each listing's first page at each size (one table, grown from the smallest size)."""
    costs: dict[int, dict[str, ListingCost]] = {}
    with moto_dynamodb() as client:
        create_results_table(client, TABLE, INDEXES)
        for size in sorted(sizes):
            fill(client, size)
            costs[size] = {}
            for name, statuses in LISTINGS.items():
                costs[size][name] = first_page(client, statuses)
                cost = costs[size][name]
                print(f"[bench] listing {name} at {size:,}: {cost}", file=sys.stderr, flush=True)
    return costs


def figures(costs: dict[int, dict[str, ListingCost]]) -> list[Figure]:
    small, large = costs[min(costs)], costs[max(costs)]
    growth = max(large[name].requests / small[name].requests for name in LISTINGS)
    return [
        Figure("cli_results_requests_growth", growth, 1.0),
        Figure("cli_results_first_page_ms", large["default"].seconds * 1000, unit=" ms"),
    ]


if __name__ == "__main__":
    measured = measure()
    for size, listings in measured.items():
        for name, cost in listings.items():
            print(
                f"{size} records, {name}: {cost.requests} requests, "
                f"{cost.seconds * 1000:.0f} ms, {cost.records} listed"
            )
    for figure in figures(measured):
        print(figure.line)
