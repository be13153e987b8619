"""The sections of ``bench/RESULTS.md`` that weigh the run: the cost model and, for each goal
missed, why."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from bench import coldstart, cost
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
        f"CloudWatch Logs ingestion ${cost.PRICES.logs_ingested_gb:.2f} per GB. Free tiers "
        "ignored.",
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
        "- Not modelled: X-Ray (traces recorded at the default sampling of one per second plus "
        "5%, $5 per million), CloudWatch metrics and alarms (fixed), S3 storage, SageMaker.",
        "",
    ]


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
    if name.startswith("cold_import_ratio"):
        return _why_cold(name.removeprefix("cold_import_ratio_"), cold)
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
        return _why_dynamodb(report)
    return "see the sections above."


def _why_dynamodb(report: Report) -> str:
    """What the table and the other components leave for the indexes (figures of this run)."""
    rows = report.cost_rows()
    ours, naive = cost.totals(rows)
    dynamodb = next(row for row in rows if row.unit == "WRU")
    logs = next(row for row in rows if row.component == "CloudWatch Logs ingestion")
    rest = ours - dynamodb.ours_dollars
    writes = report.write_sequence()
    table = sum(write.table for write in writes)
    budget = (0.7 * naive - rest) / (cost.PRICES.dynamodb_write_unit * 1e6)
    per_write = ", ".join(f"{write.label} {write.table}" for write in writes)
    return (
        f"ours {ours:.2f} USD per million files against the naive design's {naive:.2f}; of "
        f"ours, DynamoDB {dynamodb.ours_dollars:.2f} ({dynamodb.ours_per_file:.0f} WRU) and "
        f"everything else {rest:.2f} (CloudWatch Logs {logs.ours_dollars:.2f} of it). A ratio "
        f"of 0.7 would leave DynamoDB {budget:.1f} WRU per "
        f"file. The table alone takes {table} ({per_write}: the claim and SUBMITTED are the "
        "exactly-once guarantee, and the outcome's item passes 1 KB with its inline result), "
        'and the indexes take the rest (section "DynamoDB" above): a put in each at the '
        "claim, and the status entry's move from OPEN to its terminal group at the outcome. "
        "Closing the gap would take dropping one of the two listings the naive design is "
        "given, or a smaller record (attributes that repeat `input_location`)."
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
        f"beyond boto3 ({boto3_ms:.0f} ms of CPU) the handler loads {total:.0f} ms of modules "
        f"(own time by package): {top}. The handlers already pause the collector during "
        "their import, create botocore clients rather than boto3's, and load the Tracer, "
        "the configuration and the processing code with the first invocation "
        f"({cold.first_invocation(function) * 1000:.0f} ms; import and first invocation "
        f"together: {cold.cold_start_ratio(function):.2f} x `import boto3`). What the import "
        "still holds is the SDK, Powertools' logger, metrics and batch or parser utilities, "
        "and for results pydantic (its parser decorator's event model). One lever is left "
        "untaken: shipping bytecode compiled for Python 3.13 in the asset, which would save "
        f"compiling the function's sources ({compile_ms:.0f} ms of the {handler_ms:.0f} ms) "
        "at every cold start but needs a 3.13 interpreter (or Docker) at every synth."
    )
