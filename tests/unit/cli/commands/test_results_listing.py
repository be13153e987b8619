"""Layout 2's listing: every shard of a status queried and merged, pages resumed exactly."""

from __future__ import annotations

import hashlib

from asyncinfer.cli.access.table import ResultsTable, TimeWindow
from asyncinfer.cli.commands.results_listing import ListQuery, list_records
from lambdas.common.contract import STATUS_SHARDS, shard_of
from lambdas.common.records import Status
from tests.unit.cli.conftest import LAYOUT_2, Pipeline, create_pipeline, stored


def ids(count: int) -> list[str]:
    return [hashlib.sha256(f"file-{n}".encode()).hexdigest() for n in range(count)]


def test_pages_merge_every_shard_newest_first_without_gaps_or_repeats(moto_aws: None) -> None:
    pipeline: Pipeline = create_pipeline(indexes=LAYOUT_2)
    completed = ids(40)
    assert len({shard_of(i) for i in completed}) > STATUS_SHARDS // 2  # really spread
    for number, inference_id in enumerate(completed):
        # claimed one second apart: the index files records by their claim's time
        stored(
            pipeline.store,
            inference_id,
            Status.COMPLETED,
            submitted=float(number),
            completed=float(number) + 0.5,
        )
    for inference_id in ids(45)[40:]:
        stored(pipeline.store, inference_id, Status.SUBMITTED, submitted=100.0)  # newest
    table = ResultsTable.named_in(pipeline.dynamodb, pipeline.outputs)
    assert table.sharded
    query = ListQuery((Status.COMPLETED,), TimeWindow(), None, 7)
    seen, cursor = [], None
    while True:
        page, cursor = list_records(table, query, fingerprint="f", cursor=cursor)
        seen.extend(record.inference_id for record in page)
        if cursor is None:
            break
    assert seen == list(reversed(completed))  # newest claim first, each once
    counts = table.count_by_status(TimeWindow())
    assert counts == {"PENDING": 0, "SUBMITTED": 5, "COMPLETED": 40, "FAILED": 0}


def test_records_of_an_input_are_read_by_key_from_the_keys_only_index(moto_aws: None) -> None:
    pipeline = create_pipeline(indexes=LAYOUT_2)
    first, second = ids(2)
    stored(pipeline.store, first, Status.COMPLETED, submitted=1.0, result="r1")
    stored(pipeline.store, second, Status.SUBMITTED, submitted=2.0)
    table = ResultsTable.named_in(pipeline.dynamodb, pipeline.outputs)

    records = table.for_input("s3://input-bucket/inputs/a.json")

    assert [(r.inference_id, r.status, r.result) for r in records] == [
        (second, Status.SUBMITTED, None),
        (first, Status.COMPLETED, "r1"),
    ]
