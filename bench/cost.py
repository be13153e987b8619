"""Figure 6: dollars per million files, for this pipeline and for the naive per-file design.

Quantities per file come from the benchmark run (handler durations, log bytes, the stored
items' sizes) and from the stack's configuration (memory, batch size, system log level,
``publish_events``); prices are public list prices. The model counts every per-file cost of
the default stack: the functions, the queue, the topic, the table's writes, the reconciler's
reads, HeadObject, the logs, the result events (EventBridge Pipes requests and the custom
events they put on the bus), the X-Ray traces that active tracing records, and the pipes'
reads of the table's stream. Two of them depend on the traffic rate, an assumption
(``TRAFFIC_FILES_PER_SECOND``): X-Ray's sampling keeps one request a second per function
before its 5%, and the pipes poll each stream shard a few times a second whatever the
traffic. SageMaker (instances, and the S3 reads and writes it makes itself) and S3 storage
are excluded; so are fixed monthly costs that do not grow with files (the event source
mapping's empty long polls, the reconciler's schedule, alarms, dashboards, custom metrics).

The naive design is the one public samples show: S3 invokes an ingest function once per file
(asynchronous invocation, no queue), which makes HeadObject, InvokeEndpointAsync and one
unconditional PutItem in sequence, with Lambda's default logging (text, so START, END and
REPORT lines for every invocation); the results side is this pipeline's results function. Its
table has what its users need, defined the plain way: an index to find the records of an input
and one to list recent records by status, both projecting ALL (layout 1's,
bench/partitions.py). When ours publishes result events, the naive design gets what a user
would build to give its users the same: its results function puts one custom event per
outcome on the bus (``PutEvents``, one more call in that function), no stream and no pipe.
It keeps Lambda's default tracing (PassThrough: nothing recorded), as public samples do.
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
    "aws.amazon.com/cloudwatch/pricing (Logs standard ingestion), "
    "aws.amazon.com/eventbridge/pricing (Pipes requests, custom events), "
    "aws.amazon.com/xray/pricing (traces recorded), aws.amazon.com/dynamodb/pricing/on-demand "
    "(DynamoDB Streams read request units); us-east-1"
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
    pipes_request: float = 0.40 / 1e6  # per 64 KB chunk, counted after filtering
    custom_event: float = 1.00 / 1e6  # PutEvents entries (Pipes' too), per 64 KB chunk
    xray_trace_recorded: float = 5.00 / 1e6
    stream_read_unit: float = 0.02 / 1e5  # one GetRecords call on a DynamoDB stream


PRICES = Prices()
# The traffic rate the rate-dependent rows assume (files per second, sustained).
TRAFFIC_FILES_PER_SECOND = 100.0
# Lambda's sampling with active tracing and no upstream decision: the first request each
# second, then 5% of the rest (Lambda developer guide, "Visualize Lambda function invocations
# using AWS X-Ray"); it cannot be changed for Lambda (X-Ray sampling rules apply to API
# Gateway, AppSync, Step Functions and instrumented compute, not to Lambda's own sampling).
XRAY_RESERVOIR_PER_SECOND = 1.0
XRAY_FIXED_RATE = 0.05
# EventBridge Pipes polls a DynamoDB stream's shards like Lambda's event source mappings (about
# four GetRecords a second per shard), each call billed as one stream read request unit; a
# shard takes the writes of at most one table partition (1,000 write units a second).
PIPE_POLLS_PER_SECOND_PER_SHARD = 4.0
PIPES = 2  # one per outcome (stacks/events_out.py)
PARTITION_WRITE_UNITS_PER_SECOND = 1000
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
    pipes_requests: float = 0.0
    custom_events: float = 0.0
    xray_traces: float = 0.0
    stream_read_units: float = 0.0


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
    # the results function's one DynamoDB call (the bare side of its benchmark): the naive
    # design's PutEvents, one more call of about that duration, when events are published
    results_call_ms: float = 0.0
    publish_events: bool = True
    traffic_files_per_second: float = TRAFFIC_FILES_PER_SECOND
    # the record's event detail (the record without its inline result)
    event_detail_bytes: int = 2 * KB


def traces_per_second(invocations_per_second: float) -> float:
    """Traces Lambda records per second for one function at this invocation rate."""
    reservoir = min(invocations_per_second, XRAY_RESERVOIR_PER_SECOND)
    return reservoir + XRAY_FIXED_RATE * max(0.0, invocations_per_second - reservoir)


def stream_shards(write_units_per_second: float) -> int:
    return max(1, math.ceil(write_units_per_second / PARTITION_WRITE_UNITS_PER_SECOND))


def platform_log_bytes(system_log_level: str) -> int:
    """Bytes of Lambda's own lines per invocation of a function at this system log level."""
    return PLATFORM_LOG_BYTES_PER_INVOCATION if platform_lines_sent(system_log_level) else 0


def gb_seconds(milliseconds: float, memory_mb: int) -> float:
    """Billed duration (rounded up to 1 ms) times the configured memory."""
    return math.ceil(milliseconds) / 1000 * memory_mb / 1024


def ours(inputs: Inputs) -> Usage:
    invocations = 1 / inputs.batch_size  # ingest invocations per file with full batches
    writes = inputs.ours_write_units
    rate = inputs.traffic_files_per_second
    # active tracing on both functions; each invocation starts its own trace (S3, SQS and
    # SageMaker's SNS notification carry no sampling decision)
    traces = (traces_per_second(rate * invocations) + traces_per_second(rate)) / rate
    events = 0.0
    stream_reads = 0.0
    if inputs.publish_events:
        events = float(max(1, math.ceil(inputs.event_detail_bytes / EVENTBRIDGE_CHUNK_BYTES)))
        polls = PIPES * PIPE_POLLS_PER_SECOND_PER_SHARD * stream_shards(rate * writes)
        stream_reads = polls / rate
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
        pipes_requests=events,
        custom_events=events,
        xray_traces=traces,
        stream_read_units=stream_reads,
    )


def naive(inputs: Inputs) -> Usage:
    # with events, its results function makes one more call (PutEvents) per outcome
    events = 1.0 if inputs.publish_events else 0.0
    results_ms = inputs.results_invocation_ms + events * inputs.results_call_ms
    return Usage(
        lambda_gb_seconds=gb_seconds(inputs.naive_file_ms, inputs.ingest_memory_mb)
        + gb_seconds(results_ms, inputs.results_memory_mb),
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
        custom_events=events,
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
        ("EventBridge Pipes requests", "requests", "pipes_requests", prices.pipes_request),
        ("EventBridge custom events", "events", "custom_events", prices.custom_event),
        ("X-Ray traces recorded", "traces", "xray_traces", prices.xray_trace_recorded),
        (
            "DynamoDB stream reads (pipes)",
            "GetRecords",
            "stream_read_units",
            prices.stream_read_unit,
        ),
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


# what stacks/events_out.py leaves out of the detail (LEFT_OUT_OF_DETAIL), without importing
# the CDK into the benchmarks
LEFT_OUT = ("result", "result_encoding")


def event_detail_bytes(completed_item: Mapping[str, Mapping[str, Any]]) -> int:
    """About the size of a result event's ``detail``: the record without its inline result
    (stacks/events_out.py), attribute names and values."""
    kept = {name: value for name, value in completed_item.items() if name not in LEFT_OUT}
    return item_size(kept)


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
    ``event_detail_bytes``. The pipes' stream reads are in the cost model (``ours``)."""
    chunks = max(1, math.ceil(event_detail_bytes / EVENTBRIDGE_CHUNK_BYTES))
    per_file_out = chunks * (PIPES_REQUEST + EVENTBRIDGE_CUSTOM_EVENT)
    return EventBridgeCost(events_in=0.0, events_out=per_file_out * 1e6)
