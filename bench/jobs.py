"""Jobs at scale: the hottest partition of the jobs table at 1,000 files a second, and what a
job adds per million files (lambdas/jobs; docs/jobs.md).

Write units come from the items the jobs function writes (``lambdas.jobs.clients``' keys and
attributes) and DynamoDB's documented rules: a write costs one unit per started KB of the
item; a transactional write costs two ("TransactWriteItems ... two write request units per
1 KB", DynamoDB pricing, on-demand); a partition key value takes at most 1,000 write units a
second. Each outcome is one transaction: its member (its own partition key) and its counter
shard (one of sixteen partition keys of the job). The naive design counts on one job item:
every outcome lands on that one partition key.

Per file, a job adds (``job_usage``): at its start a HeadObject, the member's PutItem and a
strongly consistent read of the record; per outcome an SQS message (EventBridge's
SendMessage, the event source mapping's ReceiveMessage and DeleteMessageBatch per batch of
ten), one function invocation per batch, the consistent Query of the id's members, the
transaction and the consistent GetItem of its shard; at completion the record's read again.
The function's time per message is an estimate (``MESSAGE_MS``), not a measurement: the
benchmark does not run jobs yet. The Inference events themselves are the pipeline's own
(``publish_events``) and are not counted again; per job (not per file): the pipe's one event,
the header's few writes and the results file's PUT.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.cost import KB, PRICES, Prices, Row, gb_seconds, item_size
from lambdas.common.contract import shard_of
from lambdas.jobs.items import member_key, shard_key

FILES_PER_SECOND = 1000
JOB_ENTRIES = 100_000
TRANSACTION_UNITS = 2  # a transactional write costs twice a standard one
BATCH_SIZE = 10  # stacks/jobs.py
MEMORY_MB = 1024  # stacks/jobs.py
MESSAGE_MS = 25.0  # an estimate of one outcome's handling (four DynamoDB calls), not measured
RECORD_BYTES = 1500  # a COMPLETED record with a small inline result (bench/RESULTS.md sizes)


def sample_ids(count: int = JOB_ENTRIES) -> list[str]:
    """Inference ids as the pipeline makes them (sha256 hex of a version's location)."""
    return [
        hashlib.sha256(f"s3://in/job/{n}.json?versionId=v{n}".encode()).hexdigest()
        for n in range(count)
    ]


def shard_item(name: str, shard: int, expected: int) -> dict[str, Any]:
    return {
        **shard_key(name, shard),
        "expected": {"N": str(expected)},
        "done": {"N": str(expected)},
    }


def member_item(name: str, inference_id: str) -> dict[str, Any]:
    return {**member_key(name, inference_id), "job_name": {"S": name}, "counted": {"BOOL": True}}


def units(item: dict[str, Any]) -> int:
    return max(1, math.ceil(item_size(item) / KB))


def job_hot_partition_wcu(
    ids: Sequence[str], files_per_second: int = FILES_PER_SECOND, name: str = "a-job-name"
) -> float:
    """Write units a second on the busiest partition key value while outcomes arrive."""
    per_shard = Counter(shard_of(i) for i in ids)
    shard_units = max(
        units(shard_item(name, shard, count)) * count for shard, count in per_shard.items()
    )
    member_units = max(units(member_item(name, i)) for i in ids)
    # the busiest shard's share of the outcomes; a member is written once per job
    hottest_shard = TRANSACTION_UNITS * shard_units / len(ids) * files_per_second
    return max(hottest_shard, TRANSACTION_UNITS * member_units)


def naive_hot_partition_wcu(files_per_second: int = FILES_PER_SECOND) -> float:
    """One job item counting every outcome (an UpdateItem ADD each)."""
    return float(files_per_second)


@dataclass(frozen=True)
class JobUsage:
    lambda_gb_seconds: float
    lambda_requests: float
    sqs_requests: float
    dynamodb_write_units: float
    dynamodb_read_units: float
    s3_head_requests: float


def job_usage(name: str = "a-job-name") -> JobUsage:
    ids = sample_ids(1)
    member = units(member_item(name, ids[0]))
    shard = units(shard_item(name, 0, JOB_ENTRIES))
    record_reads = math.ceil(RECORD_BYTES / (4 * KB))  # strongly consistent: 4 KB a unit
    per_batch = 1 / BATCH_SIZE
    return JobUsage(
        lambda_gb_seconds=gb_seconds(MESSAGE_MS * BATCH_SIZE, MEMORY_MB) * per_batch,
        lambda_requests=per_batch,
        sqs_requests=1 + 2 * per_batch,
        # the member's put at the start; the transaction per outcome
        dynamodb_write_units=member + TRANSACTION_UNITS * (member + shard),
        # the record at the start and at completion; the members' Query and the shard's read
        dynamodb_read_units=2 * record_reads + 1 + 1,
        s3_head_requests=1,
    )


def job_rows(prices: Prices = PRICES) -> list[Row]:
    """The job's rows of the cost model (per file; a naive design has no jobs: 0)."""
    usage = job_usage()
    lines = [
        ("Jobs: Lambda duration", "GB-s", usage.lambda_gb_seconds, prices.lambda_arm_gb_second),
        ("Jobs: Lambda requests", "requests", usage.lambda_requests, prices.lambda_request),
        ("Jobs: SQS requests", "requests", usage.sqs_requests, prices.sqs_request),
        ("Jobs: DynamoDB writes", "WRU", usage.dynamodb_write_units, prices.dynamodb_write_unit),
        ("Jobs: DynamoDB reads", "RRU", usage.dynamodb_read_units, prices.dynamodb_read_unit),
        ("Jobs: S3 HeadObject", "requests", usage.s3_head_requests, prices.s3_get_class_request),
    ]
    return [
        Row(component, unit, q, 0.0, q * price * 1e6, 0.0) for component, unit, q, price in lines
    ]


def job_cost_per_million(prices: Prices = PRICES) -> float:
    return sum(row.ours_dollars for row in job_rows(prices))
