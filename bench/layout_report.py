"""The RESULTS.md section on DynamoDB: each write of one file, the measured item sizes, the
write units in the table and each index, and the partition model at 1,000 files a second."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import partitions
from lambdas.common.contract import STATUS_SHARDS

if TYPE_CHECKING:
    from bench.run import Report


def _sequence_table(
    writes: list[partitions.Write], indexes: tuple[partitions.Index, ...]
) -> list[str]:
    names = [index.name for index in indexes]
    lines = [
        "| write | item after (B) | table | " + " | ".join(f"`{n}`" for n in names) + " | WRU |",
        "|---|---:|---:|" + "---:|" * len(names) + "---:|",
    ]
    for write in writes:
        cells = []
        for name in names:
            charged = write.indexes[name].units
            cells.append(
                " + ".join(f"{units} ({value})" for value, units in charged.items()) or "0"
            )
        lines.append(
            f"| {write.label} | {write.size} | {write.table} | "
            + " | ".join(cells)
            + f" | {write.total} |"
        )
    lines.append(
        "| **per file** | | | "
        + " | ".join("" for _ in names)
        + f" | **{partitions.units_per_file(writes)}** |"
    )
    return lines


def dynamodb_section(report: Report) -> list[str]:
    ours, naive = report.write_sequence(), report.write_sequence(naive=True)
    spread = partitions.shard_spread(report.ingest.submitted_ids)
    hot, hot_naive = report.hot_partitions(), report.hot_partitions(naive=True)
    return [
        "## DynamoDB: writes per file, item sizes, partitions",
        "",
        "Item sizes are those of the items the benchmark's pipeline wrote (the claim as sent, "
        "the record as stored once SUBMITTED and once COMPLETED, with its inline result), "
        "sized as DynamoDB sizes them (attribute names plus values). Each cell is the write "
        "units the write costs there, with the partition key value it lands on. Rules "
        "(bench/partitions.py): a table write costs one unit per started KB of the larger "
        "image; an index entry is its projected attributes plus 100 B; an index is written "
        "only when a projected attribute changes, and a changed index key costs a delete plus "
        "a put.",
        "",
        "Ours, layout 2 (`by_input_keys` and `by_status_shard`, both KEYS_ONLY):",
        "",
        *_sequence_table(ours, partitions.LAYOUT_2),
        "",
        "The naive design (its put, then the same outcome), on layout 1's indexes (both ALL):",
        "",
        *_sequence_table(naive, partitions.LAYOUT_1),
        "",
        "Why layout 2 costs less: the claim and SUBMITTED stay (they are the exactly-once "
        "guarantee: a redelivered event finds the claim, a crash after the invocation finds "
        "SUBMITTED), but the indexes hold keys only (about 0.2 to 0.3 KB an entry, whatever "
        "the record and its inline result weigh): `by_input_keys` (input location, creation "
        "time) is written once, by the claim, and `by_status_shard` (status class and one of "
        "16 shards of the id, the time it was filed) twice: by the claim (`OPEN#nn`) and by "
        "the outcome, which moves the entry to `COMPLETED#nn`/`FAILED#nn` (a delete and a "
        "put); SUBMITTED costs the table alone. Readers (CLI, reconciler) query the keys of "
        "the classes they need and read the items by key.",
        "",
        f"Partition model at {partitions.FILES_PER_SECOND:,} files/s (write units per second "
        "on the busiest partition key value; DynamoDB allows "
        f"{partitions.PARTITION_LIMIT_WCU:,} per partition, and with a sort key that only "
        "grows, split-for-heat cannot divide one key value): a value unique to a file (its "
        "id in the table, its input location) takes that file's units once; a status value of "
        "layout 1 takes every file's; a `status_shard` value its shard's share. "
        f"`status_shard` spreads over {STATUS_SHARDS} shards by the inference id (sha256); "
        f"over the {len(report.ingest.submitted_ids)} ids this run submitted the busiest shard "
        f"held {spread:.2f} times an even share, which the model applies.",
        "",
        "| table / index | ours (WCU/s) | naive (WCU/s) |",
        "|---|---:|---:|",
        *(
            f"| {name} | {hot.get(name, 0.0):.0f} | {hot_naive.get(name, 0.0):.0f} |"
            for name in dict.fromkeys([*hot, *hot_naive])
        ),
        "",
        "Layout 1 (and the naive design) puts every file's write on four status values: at "
        "1,000 files/s one value takes about twice DynamoDB's per-partition limit, the index "
        "throttles, and index throttling throttles the table's writes.",
        "",
        *LEVERS,
    ]


LEVERS = [
    "Levers, taken and not:",
    "",
    "- Taken: KEYS_ONLY projections. An entry no longer carries the record (nor its inline "
    "result), so it is one unit whatever the record weighs, and writes that change no key "
    "leave the index alone. The price is on the read side: the CLI and the reconciler read "
    "the items by key (BatchGetItem), which costs reads only when someone lists, and once "
    "per record for the reconciler (below).",
    "- Taken: a status index by status class (issue 23). `status_shard` is the class and "
    "one of 16 shards of the id (`OPEN#nn` from the claim, `COMPLETED#nn`/`FAILED#nn` from "
    "the outcome) and `status_time` the time of that write; SUBMITTED moves nothing. The "
    "outcome's move costs 2 write units (a delete and a put in the index), so a file costs "
    "8 units where the write-once index of the release before cost 6; in exchange, a "
    "listing of one status reads only its class's 16 partitions (open records: what is in "
    "flight; never the table's finished records), several statuses are one merged walk, "
    "and every page costs a bounded number of requests (asyncinfer/cli/access/status_index.py; "
    "`cli_results_requests_growth`). The write-once index made `results` walk the whole "
    "index for an open status (4.5 minutes for the default listing of 371 records), and "
    "no design lists one status in bounded requests without the status in a key. The "
    "reconciler drains the OPEN partitions oldest first, as before that release; its review "
    "(lambdas/reconciler/review.py) only reads what that release left open.",
    "- Taken: `by_input_keys` is written once, by the claim: its keys (input location, "
    "creation time) never change afterwards.",
    "- Not taken: fewer writes per file. The claim (before the invocation) and SUBMITTED "
    "(after it) are what keeps a redelivered or retried event from invoking twice; the "
    "outcome is the result. Dropping either breaks exactly-once.",
    "- Not taken: a sparse status index of open records only. Its entry would be put by "
    "the claim and deleted by the outcome (the same 3 units as the move above), and "
    "listing COMPLETED and FAILED records by recency, which users and "
    "`asyncinfer results`/`watch` need, would take another index.",
    "- Taken outside the table: less log volume per file (JSON logs filtered by Lambda at "
    "the application log level, no line per file at INFO, Lambda's START/END/REPORT lines "
    'left out at system log level WARN; "Logs" in the cost model\'s assumptions).',
    "- Not taken here: a smaller record (`input_bucket`, `input_key`, `input_version` "
    "repeat `input_location`; the record contract and its readers would change).",
    "",
]
