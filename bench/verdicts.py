"""The sections of ``bench/RESULTS.md`` that weigh the run: the cost model and, for each goal
missed, why."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from bench import coldstart, cost, jobs
from bench.figures import Figure, format_value
from bench.measure import median

if TYPE_CHECKING:
    from bench.run import Report
from bench.sections import accumulation, ms, noise_yardstick, per_file_growth


def quantity(value: float) -> str:
    return format_value(value) if value < 1000 else f"{value:.0f}"


def cost_table(report: Report) -> list[str]:
    rows = report.cost_rows()
    ours_total, naive_total = cost.totals(rows)
    core_ours, core_naive = cost.totals(report.cost_rows(publish_events=False))
    lines = [
        "## Cost model (USD per million files)",
        "",
        "| component | unit | per file, ours | per file, naive | $/M ours | $/M naive |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.component} | {row.unit} | {quantity(row.ours_per_file)} | "
            f"{quantity(row.naive_per_file)} | {row.ours_dollars:.3f} | {row.naive_dollars:.3f} |"
        )
    return [
        *lines,
        f"| **total** | | | | **{ours_total:.2f}** | **{naive_total:.2f}** |",
        "",
        f"Prices (list prices, us-east-1, taken {cost.PRICES_TAKEN}; sources: "
        f"{cost.PRICE_SOURCES}): Lambda Arm ${cost.PRICES.lambda_arm_gb_second:.10f} per GB-s, "
        f"${cost.PRICES.lambda_request * 1e6:.2f} per million requests; SQS standard "
        f"${cost.PRICES.sqs_request * 1e6:.2f} per million requests; SNS "
        f"${cost.PRICES.sns_publish * 1e6:.2f} per million publishes, deliveries to Lambda "
        "free; DynamoDB on-demand "
        f"${cost.PRICES.dynamodb_write_unit * 1e6:.3f} per million write request units; S3 "
        f"GET-class requests ${cost.PRICES.s3_get_class_request * 1000:.4f} per 1,000; "
        f"CloudWatch Logs ingestion ${cost.PRICES.logs_ingested_gb:.2f} per GB; EventBridge "
        f"Pipes ${cost.PRICES.pipes_request * 1e6:.2f} per million requests, custom events "
        f"${cost.PRICES.custom_event * 1e6:.2f} per million; X-Ray "
        f"${cost.PRICES.xray_trace_recorded * 1e6:.2f} per million traces recorded; DynamoDB "
        f"Streams ${cost.PRICES.stream_read_unit * 1e5:.2f} per 100,000 read request units. "
        "Free tiers ignored.",
        "",
        "Without the optional result events (`publish_events=false`) on both sides: ours "
        f"{core_ours:.2f}, naive {core_naive:.2f}, ratio {core_ours / core_naive:.3f} "
        "(`cost_per_million_ratio_core`).",
        "",
        "Files scored in a job add (bench/jobs.py; the function's time per message estimated):",
        "",
        "| component | unit | per file | $/M |",
        "|---|---|---:|---:|",
        *(
            f"| {row.component} | {row.unit} | {quantity(row.ours_per_file)} | "
            f"{row.ours_dollars:.3f} |"
            for row in jobs.job_rows()
        ),
        f"| **total** | | | **{jobs.job_cost_per_million():.2f}** |",
        "",
    ]


def cost_assumptions(report: Report) -> list[str]:
    settings, inputs = report.settings, report.cost_inputs()
    batch = settings.batch_size
    return [
        "",
        "Assumptions:",
        "",
        f"- Lambda: billed duration rounded up to 1 ms at the configured memory. Ours: one "
        f"ingest invocation per full batch of {batch} ({inputs.ingest_batch_ms:.1f} ms, "
        f"measured with {settings.added_latency_ms} ms per InvokeEndpointAsync), one results "
        f"invocation per file ({inputs.results_invocation_ms:.1f} ms). Naive: one ingest "
        f"invocation per file ({inputs.naive_file_ms:.1f} ms, the naive handler's time per "
        "file at the same latency, same memory) and the same results function. Durations are "
        "from loopback servers; AWS latencies are higher, which raises the naive design's cost "
        "more (its calls are sequential).",
        "- SQS (ours only): S3's SendMessage per file; ReceiveMessage and DeleteMessageBatch "
        "per batch (full batches: light traffic makes smaller batches and costs more). The "
        "pollers' empty long polls are a fixed monthly cost, not per file.",
        "- SNS: SageMaker publishes one notification per file; its delivery to Lambda is free.",
        "- DynamoDB: one file's writes, measured item sizes and the index rules in the "
        'section "DynamoDB: writes per file, item sizes, partitions" below: ours '
        f"{inputs.ours_write_units} WRU per file (layout 2), naive "
        f"{inputs.naive_write_units} WRU (its put and the outcome, with layout 1's ALL "
        "indexes: what its users need to find the records of an input and list by status).",
        "- S3: one HeadObject per file in both designs (SageMaker's own reads and writes are "
        "part of SageMaker's cost, excluded).",
        _logs_assumption(report),
        *_events_assumptions(inputs),
        "- Traffic: the rows that depend on the rate assume "
        f"{inputs.traffic_files_per_second:.0f} files a second, sustained "
        f"({inputs.traffic_files_per_second * 86400 / 1e6:.1f} million a day). "
        + _xray_assumption(inputs),
        "- Not modelled (fixed monthly, or not per file): the pollers' empty receives, the "
        "reconciler's schedule and its queries (a page of keys per shard per run), CloudWatch "
        "custom metrics and alarms, the dead-letter queues (empty when nothing fails), KMS "
        "requests of the notification topic's key (SNS caches data keys), X-Ray trace "
        "retrievals (only when someone reads them), S3 storage and SageMaker. The naive "
        "design is priced without its failures: it retries nothing, so it loses no money "
        "where ours spends it on retries.",
        "",
    ]


def _events_assumptions(inputs: cost.Inputs) -> list[str]:
    if not inputs.publish_events:
        return ["- Result events: off (`publish_events=false`), in neither design."]
    shards = cost.stream_shards(inputs.traffic_files_per_second * inputs.ours_write_units)
    return [
        "- Result events (`publish_events`, on by default): ours, each terminal transition "
        "passes one of the two pipes' filters (one Pipes request) and becomes one custom event "
        f"on the bus (detail about {inputs.event_detail_bytes} B: one 64 KB chunk each). The "
        f"pipes read the table's stream: {cost.PIPES} pipes polling each of its {shards} "
        f"shard(s) about {cost.PIPE_POLLS_PER_SECOND_PER_SHARD:.0f} times a second, one read "
        "request unit per GetRecords, whatever the traffic (a call returns up to 1,000 records "
        "or 1 MB, far more than a second of files here), shared by the files of that second. "
        "The naive design gives its users the same events the way a user would add them: "
        "its results function calls PutEvents after its write (one custom event, and one "
        f"more call of about {inputs.results_call_ms:.1f} ms, the measured UpdateItem's, "
        "in its duration); no stream, no pipe. The naive design's path is cheaper per event "
        "but not atomic with the write: a crash between the two loses the event, and a retry "
        "sends it twice.",
    ]


def _xray_dollars(files_per_second: float, batch_size: int) -> float:
    """X-Ray's USD per million files at this rate (both functions)."""
    traces = cost.traces_per_second(files_per_second / batch_size)
    traces += cost.traces_per_second(files_per_second)
    return traces / files_per_second * cost.PRICES.xray_trace_recorded * 1e6


def _xray_assumption(inputs: cost.Inputs) -> str:
    rate = inputs.traffic_files_per_second
    ingest = cost.traces_per_second(rate / inputs.batch_size)
    results = cost.traces_per_second(rate)
    at = ", ".join(
        f"{files:g}/s {_xray_dollars(files, inputs.batch_size):.2f}" for files in (1, 10, 100, 1000)
    )
    return (
        "X-Ray: both functions have active tracing, and Lambda samples each function's "
        f"invocations at a fixed rule (the first each second, then "
        f"{cost.XRAY_FIXED_RATE:.0%}; it cannot be changed for Lambda: an "
        "AWS::XRay::SamplingRule does not apply to Lambda's own sampling): at this rate "
        f"{ingest:.2f} ingest and {results:.2f} results traces a second, "
        f"{(ingest + results) / rate:.3f} per file. USD per million files at other rates: "
        f"{at}. The naive design keeps Lambda's default (PassThrough: no traces)."
    )


def _logs_assumption(report: Report) -> str:
    inputs = report.cost_inputs()
    level = report.application_log_level
    kept = (
        f"what Lambda would send to CloudWatch Logs at the stack's application log level "
        f"{level} (JSON format: lines below it are dropped by Lambda)"
        if level
        else "everything they print (text log format: nothing filtered)"
    )
    platform = inputs.platform_log_bytes_per_invocation
    lambda_lines = (
        f"Lambda's START/END/REPORT lines: about {platform:.0f} B per invocation of ours"
        if platform
        else "Lambda's START/END/REPORT lines: none for ours (system log level "
        f"{report.system_log_level}: not sent)"
    )
    return (
        f"- Logs: the handlers' measured output, {kept}: ingest "
        f"{inputs.ingest_log_bytes_per_file:.0f} B per record, results "
        f"{inputs.results_log_bytes_per_invocation:.0f} B per invocation, metrics documents "
        f"included. {lambda_lines}; about {cost.PLATFORM_LOG_BYTES_PER_INVOCATION} B per "
        "invocation of the naive design's ingest function, which keeps Lambda's default "
        "logging and logs nothing of its own (its results side is our results function)."
    )


def cost_levers(report: Report) -> list[str]:
    """The per-file levers outside the table, weighed with this run's numbers."""
    inputs, prices = report.cost_inputs(), cost.PRICES
    million = 1e6
    # the results function behind an SQS queue (SNS -> SQS is free for SNS; SQS bills the
    # send, and a receive and a delete per batch), one invocation and one metrics document
    # per batch instead of per notification
    batch = inputs.batch_size
    per_notification = prices.lambda_request + inputs.results_log_bytes_per_invocation * (
        prices.logs_ingested_gb / 1e9
    )
    batched = per_notification / batch + prices.sqs_request * (1 + 2 / batch)
    xray = cost.ours(inputs).xray_traces * prices.xray_trace_recorded * million
    head = prices.s3_get_class_request * million
    return [
        "Levers outside the table, weighed with this run's numbers (USD per million files):",
        "",
        "- Not taken: the results function behind an SQS queue, batches of "
        f"{batch}. Today each notification costs a Lambda request and its "
        f"{inputs.results_log_bytes_per_invocation:.0f} B of logs: "
        f"{per_notification * million:.3f}; batched, a tenth of that plus SQS's send, receive "
        f"and delete: {batched * million:.3f}. SNS's deliveries to SQS are free, SQS's "
        "requests are not, and they cost more than what batching saves.",
        "- Not available: an `AWS::XRay::SamplingRule` in the stack. X-Ray sampling rules "
        "apply to API Gateway, AppSync, Step Functions and SDK-instrumented compute; Lambda "
        "samples with its own fixed rule. The X-Ray row "
        f"({xray:.3f}) goes only with active tracing itself (the stack's observability).",
        "- Not taken: dropping the ingest HeadObject "
        f"({head:.3f}): it is how ingest learns the object's content type and metadata and "
        "that the version it was told about still exists before invoking (a deleted or "
        "overwritten input is failed at ingest, never sent); the naive design makes it too.",
        "",
    ]


def goals_missed(report: Report, figures: list[Figure]) -> list[str]:
    by_name = {figure.name: figure for figure in figures}
    lines = ["## Goals missed", ""]
    missed = [figure for figure in figures if figure.met is False]
    if not missed:
        lines.append("None: every figure with a goal meets it in this run.")
    for figure in missed:
        lines.append(
            f"- `{figure.name}` = {figure.shown_value} (goal {figure.op} "
            f"{format_value(figure.goal or 0)}): {_why(figure.name, report, by_name)}"
        )
    return lines


def _why(name: str, report: Report, figures: dict[str, Figure]) -> str:
    """Why a figure misses its goal, from what the run measured."""
    ingest, cold = report.ingest, report.cold
    if name == "batch_latency_ratio":
        return (
            "the same calls without the handler, at the same concurrency, give "
            f"{figures['bare_batch_latency_ratio'].shown_value}: the local servers serialize "
            "concurrent calls (one Python process each, a few ms of CPU per call on a shared "
            "2-core machine), so a batch costs one call's latency plus the queueing of 40 "
            "calls in moto. The handler's own share is the difference between the two ratios."
        )
    if name in ("ingest_overhead_ratio", "results_overhead_ratio"):
        return (
            "see the profiles above: the handler adds parsing, logging and the metrics flush "
            f"(an invocation without calls costs {ms(median(ingest.fixed_seconds))} for ingest,"
            f" {ms(median(report.results.fixed_seconds))} for results) to calls that take a few "
            "ms on loopback."
        )
    if name.startswith(("cold_import_ratio_", "cold_start_vs_naive_")):
        function = next(function for function in coldstart.FUNCTIONS if function in name)
        return _why_cold_start(function, cold)
    if name == "e2e_per_file_cost_ratio":
        e2e = report.e2e
        growth = [
            f"{label} x{per_file_growth(e2e, label):.2f}"
            for label, _ in sorted(e2e.large.cpu_by_process.items(), key=lambda kv: -kv[1])
            if math.isfinite(per_file_growth(e2e, label))
        ]
        return (
            "CPU per file, large run over small runs, by process: "
            + "; ".join(growth)
            + f". {noise_yardstick(e2e)} {accumulation(e2e)}"
        )
    if name in ("cost_per_million_ratio", "write_units_per_file"):
        why = _why_dynamodb if name == "cost_per_million_ratio" else _why_write_units
        return why(report)
    return "see the sections above."


def _why_dynamodb(report: Report) -> str:
    """Where ours costs more than the naive design, and what 0.7 would leave (this run)."""
    rows = report.cost_rows()
    ours, naive = cost.totals(rows)
    dynamodb = next(row for row in rows if row.unit == "WRU")
    rest = ours - dynamodb.ours_dollars
    budget = (0.7 * naive - rest) / (cost.PRICES.dynamodb_write_unit * 1e6)
    dearer = ", ".join(
        f"{row.component} +{row.ours_dollars - row.naive_dollars:.2f}"
        for row in sorted(rows, key=lambda row: row.naive_dollars - row.ours_dollars)
        if row.ours_dollars > row.naive_dollars
    )
    writes = report.write_sequence()
    per_write = ", ".join(f"{write.label} {write.total}" for write in writes)
    return (
        f"ours {ours:.2f} USD per million files against the naive design's {naive:.2f}. Where "
        f"ours costs more: {dearer}. DynamoDB takes {dynamodb.ours_dollars:.2f} of ours "
        f"({dynamodb.ours_per_file:.0f} WRU: {per_write}); with everything else as it is, a "
        f"ratio of 0.7 would leave it {budget:.1f} WRU per file. The claim and SUBMITTED are "
        "the exactly-once guarantee, the queue is what keeps a file through a throttled or "
        "failed invocation, the pipes publish each terminal transition exactly once (the "
        "naive design's PutEvents after its write can lose or repeat one), and X-Ray is the "
        "stack's active tracing: each of these is a guarantee or a feature the naive design "
        'does not give. See "Levers" in the DynamoDB section and the cost model\'s assumptions.'
    )


def _why_write_units(report: Report) -> str:
    """What each of one file's writes costs, and what the goal would take away (this run)."""
    writes = report.write_sequence()
    outcome = writes[-1]
    split = "; ".join(
        f"{write.label} {write.total} (table {write.table}"
        + "".join(f", {name} {index.total}" for name, index in write.indexes.items())
        + f"; item {write.size} B)"
        for write in writes
    )
    return (
        f"one file's writes: {split}. The claim and SUBMITTED are the exactly-once guarantee; "
        f"the outcome's item is {outcome.size} bytes, over the 1 KB write unit, and its move "
        "from the status index's OPEN class to its own is a delete and a put there (bounded "
        "`results` listings). One unit less means an outcome item within 1 KB: only by "
        "dropping documented record attributes, a record-contract change not taken (see "
        '"Levers" in the DynamoDB section).'
    )


def _why_cold_start(function: str, cold: coldstart.ColdStart) -> str:
    ours = cold.cold_start(function) * 1000
    naive = cold.cold_start("naive") * 1000
    first = cold.first_invocation(function) * 1000
    return (
        f"import and first invocation take {ours:.0f} ms of CPU ({first:.0f} ms of it the "
        f"first invocation) against the naive handler's {naive:.0f} ms; what the function "
        "loads beyond the SDK is in the section on cold imports: pydantic (the record, the "
        "configuration, the event models), Powertools, and with tracing on the X-Ray SDK. "
        + _why_cold(function, cold)
    )


def _why_cold(function: str, cold: coldstart.ColdStart) -> str:
    on = coldstart.GOAL_MODE
    profile = cold.profiles[(on, function)]
    total = sum(seconds for _, seconds in profile) * 1000
    top = ", ".join(f"{package} {seconds * 1000:.0f} ms" for package, seconds in profile[:6])
    boto3_ms = cold.median(on, "boto3") * 1000
    handler_ms = cold.median(on, function) * 1000
    compile_ms = cold.compile_seconds[function] * 1000
    return (
        f"Beyond boto3 ({boto3_ms:.0f} ms of CPU) the handler loads {total:.0f} ms of modules "
        f"(own time by package): {top}. The handlers already pause the collector during "
        "their import, create botocore clients rather than boto3's on sessions that load "
        "only their services' models (`lambdas/common/sessions.py`), create the results "
        "function's S3 client only when an output must be read, write DynamoDB JSON without "
        "importing boto3 (`lambdas/common/items.py`), parse botocore's `endpoints.json` and "
        "the S3 and DynamoDB models pruned to the operations they call "
        "(`lambdas/common/pruned_models.py`), and load the Tracer, "
        "the configuration and the processing code with the first invocation "
        f"({cold.first_invocation(function) * 1000:.0f} ms; import and first invocation "
        f"together: {cold.cold_start_ratio(function):.2f} x `import boto3`). What the import "
        "still holds is the SDK, Powertools' logger, metrics and batch or parser utilities, "
        "and for results pydantic (its parser decorator's event model). One lever is left "
        "untaken: shipping bytecode compiled for Python 3.13 in the asset, which would save "
        f"compiling the function's sources ({compile_ms:.0f} ms of the {handler_ms:.0f} ms) "
        "at every cold start but needs a 3.13 interpreter (or Docker) at every synth."
    )
