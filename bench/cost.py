"""Figure 6: dollars per million files, for this pipeline and for the naive per-file design.

Quantities per file come from the benchmark run (handler durations, log bytes, the stored
items' sizes) and from the stack's configuration (memory, batch size, system log level);
prices are public list prices. SageMaker (instances, and the S3 reads and writes it makes
itself) and S3 storage are excluded; so are fixed monthly costs that do not grow with files
(the event source mapping's empty long polls, alarms, dashboards).

The naive design is the one public samples show: S3 invokes an ingest function once per file
(asynchronous invocation, no queue), which makes HeadObject, InvokeEndpointAsync and one
unconditional PutItem in sequence, with Lambda's default logging (text, so START, END and
REPORT lines for every invocation); the results side is this pipeline's results function. Its
table has what its users need, defined the plain way: an index to find the records of an input
and one to list recent records by status, both projecting ALL (layout 1's,
bench/partitions.py).
DynamoDB write units of both designs come from bench/partitions.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from asyncinfer.local.lambda_runner.log_levels import platform_lines_sent

PRICES_TAKEN = "2026-11-21"
PRICE_SOURCES = (
    "aws.amazon.com/lambda/pricing (Arm, first tier), aws.amazon.com/sqs/pricing (standard), "
    "aws.amazon.com/sns/pricing (standard topics), aws.amazon.com/dynamodb/pricing/on-demand "
    "(after the November 2024 reduction), aws.amazon.com/s3/pricing (S3 Standard requests), "
    "aws.amazon.com/cloudwatch/pricing (Logs standard ingestion); us-east-1"
)


@dataclass(frozen=True)
class Prices:
    """US East (N. Virginia) list prices in dollars."""

    lambda_arm_gb_second: float = 0.0000133334
    lambda_request: float = 0.20 / 1e6
    sqs_request: float = 0.40 / 1e6  # per 64 KB chunk of a request
    sns_publish: float = 0.50 / 1e6  # per 64 KB chunk
    sns_lambda_delivery: float = 0.0  # deliveries to Lambda (and SQS) carry no charge
    dynamodb_write_unit: float = 0.625 / 1e6  # on-demand WRU (1 KB)
    dynamodb_read_unit: float = 0.125 / 1e6  # on-demand RRU (4 KB strongly, 8 KB eventually)
    s3_get_class_request: float = 0.0004 / 1000  # HeadObject is a GET-class request
    logs_ingested_gb: float = 0.50


PRICES = Prices()
# Lambda adds START, END and REPORT lines to the function's log for every invocation, unless
# the function's system log level is WARN (advanced logging controls).
PLATFORM_LOG_BYTES_PER_INVOCATION = 300
# DynamoDB sizes an index entry as the projected attributes plus 100 bytes of overhead.
INDEX_ENTRY_OVERHEAD_BYTES = 100
KB = 1024


def attribute_value_size(value: Mapping[str, Any]) -> int:
    """DynamoDB's size of one attribute value (DynamoDB JSON), without its name."""
    if "S" in value:
        return len(value["S"].encode("utf-8"))
    if "N" in value:
        digits = value["N"].lstrip("-").replace(".", "").strip("0") or "0"
        return 1 + math.ceil(len(digits) / 2)
    if "BOOL" in value or "NULL" in value:
        return 1
    raise ValueError(f"unsupported attribute value {value!r}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Bytes DynamoDB counts for an item: names (UTF-8) plus values."""
    return sum(len(name.encode("utf-8")) + attribute_value_size(v) for name, v in item.items())


@dataclass(frozen=True)
class Usage:
    """What one file costs in each priced unit."""

    lambda_gb_seconds: float
    lambda_requests: float
    sqs_requests: float
    sns_publishes: float
    sns_deliveries: float
    dynamodb_write_units: float
    dynamodb_read_units: float
    s3_head_requests: float
    log_bytes: float


@dataclass(frozen=True)
class Inputs:
    """Measured and configured quantities the model starts from."""

    batch_size: int
    ingest_memory_mb: int
    results_memory_mb: int
    ingest_batch_ms: float  # one invocation with a full batch
    naive_file_ms: float  # the naive handler, one file
    results_invocation_ms: float
    # what Lambda would ingest of the handlers' output at the stack's application log level
    ingest_log_bytes_per_file: float
    results_log_bytes_per_invocation: float
    # Lambda's own lines per invocation of our functions (platform_log_bytes)
    platform_log_bytes_per_invocation: float
    pending_item_bytes: int
    submitted_item_bytes: int
    completed_item_bytes: int
    naive_item_bytes: int
    # per file, from the items' images and the indexes (bench/partitions.py)
    ours_write_units: int
    naive_write_units: int
    # the reconciler's review reads each record once (lambdas/reconciler/review.py)
    review_read_units: float


def platform_log_bytes(system_log_level: str) -> int:
    """Bytes of Lambda's own lines per invocation of a function at this system log level."""
    return PLATFORM_LOG_BYTES_PER_INVOCATION if platform_lines_sent(system_log_level) else 0


def gb_seconds(milliseconds: float, memory_mb: int) -> float:
    """Billed duration (rounded up to 1 ms) times the configured memory."""
    return math.ceil(milliseconds) / 1000 * memory_mb / 1024


def ours(inputs: Inputs) -> Usage:
    invocations = 1 / inputs.batch_size  # ingest invocations per file with full batches
    writes = inputs.ours_write_units
    return Usage(
        lambda_gb_seconds=invocations * gb_seconds(inputs.ingest_batch_ms, inputs.ingest_memory_mb)
        + gb_seconds(inputs.results_invocation_ms, inputs.results_memory_mb),
        lambda_requests=invocations + 1,
        # S3's SendMessage, then the event source mapping's ReceiveMessage and
        # DeleteMessageBatch, each for a whole batch
        sqs_requests=1 + 2 * invocations,
        sns_publishes=1,
        sns_deliveries=1,
        dynamodb_write_units=writes,
        dynamodb_read_units=inputs.review_read_units,
        s3_head_requests=1,
        log_bytes=inputs.ingest_log_bytes_per_file
        + inputs.results_log_bytes_per_invocation
        + inputs.platform_log_bytes_per_invocation * (invocations + 1),
    )


def naive(inputs: Inputs) -> Usage:
    return Usage(
        lambda_gb_seconds=gb_seconds(inputs.naive_file_ms, inputs.ingest_memory_mb)
        + gb_seconds(inputs.results_invocation_ms, inputs.results_memory_mb),
        lambda_requests=2,
        sqs_requests=0,
        sns_publishes=1,
        sns_deliveries=1,
        dynamodb_write_units=inputs.naive_write_units,
        dynamodb_read_units=0,
        s3_head_requests=1,
        # its own ingest function with Lambda's default logging; our results function
        log_bytes=PLATFORM_LOG_BYTES_PER_INVOCATION
        + inputs.results_log_bytes_per_invocation
        + inputs.platform_log_bytes_per_invocation,
    )


@dataclass(frozen=True)
class Row:
    component: str
    unit: str
    ours_per_file: float
    naive_per_file: float
    ours_dollars: float  # per million files
    naive_dollars: float


def table(inputs: Inputs, prices: Prices = PRICES) -> list[Row]:
    mine, theirs = ours(inputs), naive(inputs)
    million = 1e6
    lines = [
        ("Lambda duration", "GB-s", "lambda_gb_seconds", prices.lambda_arm_gb_second),
        ("Lambda requests", "requests", "lambda_requests", prices.lambda_request),
        ("SQS requests", "requests", "sqs_requests", prices.sqs_request),
        ("SNS publishes (by SageMaker)", "publishes", "sns_publishes", prices.sns_publish),
        ("SNS deliveries to Lambda", "deliveries", "sns_deliveries", prices.sns_lambda_delivery),
        ("DynamoDB writes", "WRU", "dynamodb_write_units", prices.dynamodb_write_unit),
        ("DynamoDB reads (reconciler)", "RRU", "dynamodb_read_units", prices.dynamodb_read_unit),
        ("S3 HeadObject", "requests", "s3_head_requests", prices.s3_get_class_request),
        ("CloudWatch Logs ingestion", "bytes", "log_bytes", prices.logs_ingested_gb / 1e9),
    ]
    rows = []
    for component, unit, name, price in lines:
        ours_quantity, naive_quantity = getattr(mine, name), getattr(theirs, name)
        rows.append(
            Row(
                component,
                unit,
                ours_quantity,
                naive_quantity,
                ours_quantity * price * million,
                naive_quantity * price * million,
            )
        )
    return rows


def totals(rows: list[Row]) -> tuple[float, float]:
    return sum(row.ours_dollars for row in rows), sum(row.naive_dollars for row in rows)


def review_read_units(completed_item: Mapping[str, Mapping[str, Any]], entry_bytes: int) -> float:
    """The reconciler's reads per file: its item once, eventually consistent (half a unit per
    started 4 KB), and its index entry's share of a Query page (half a unit per 4 KB read)."""
    item = 0.5 * math.ceil(item_size(completed_item) / (4 * KB))
    return item + 0.5 * entry_bytes / (4 * KB)


def naive_item(submitted_item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The naive handler's item (id, status, input and output locations, two timestamps),
    with the values this pipeline stored for the same file, so sizes compare like for like."""
    kept = (
        "inference_id",
        "status",
        "input_location",
        "output_location",
        "created_at",
        "updated_at",
    )
    return {name: dict(submitted_item[name]) for name in kept if name in submitted_item}


# --- EventBridge in and out (docs/fitting-in.md) ---------------------------------------
EVENTBRIDGE_PRICE_SOURCES = (
    "aws.amazon.com/eventbridge/pricing: AWS service events (S3 -> default bus) free, rule "
    "deliveries to same-account targets free; custom events $1.00 per million (64 KB chunks); "
    "Pipes $0.40 per million requests counted after filtering (64 KB chunks); us-east-1"
)
EVENTBRIDGE_CUSTOM_EVENT = 1.00 / 1e6
PIPES_REQUEST = 0.40 / 1e6
EVENTBRIDGE_CHUNK_BYTES = 64 * KB


@dataclass(frozen=True)
class EventBridgeCost:
    """Dollars per million files that EventBridge adds, in and out."""

    events_in: float
    events_out: float

    @property
    def total(self) -> float:
        return self.events_in + self.events_out


def eventbridge_cost_per_million(*, event_detail_bytes: int = 2 * KB) -> EventBridgeCost:
    """In: S3's ``Object Created`` events are AWS service events and the rule's delivery to
    the ingest queue is same-account, so nothing is added (the queue's requests are the ones
    an S3 notification causes). Out: each file's one terminal transition passes one pipe's
    filter (one Pipes request) and becomes one ``PutEvents`` entry (one custom event), each
    billed per started 64 KB; the ``detail`` leaves the inline result out, so it is about
    ``event_detail_bytes``. Stream reads by the pipes are polling, a fixed monthly cost."""
    chunks = max(1, math.ceil(event_detail_bytes / EVENTBRIDGE_CHUNK_BYTES))
    per_file_out = chunks * (PIPES_REQUEST + EVENTBRIDGE_CUSTOM_EVENT)
    return EventBridgeCost(events_in=0.0, events_out=per_file_out * 1e6)
