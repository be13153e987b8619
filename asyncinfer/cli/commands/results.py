"""``asyncinfer results``: list inferences by status, newest first, a page at a time."""

from __future__ import annotations

from typing import Annotated

import typer

from asyncinfer.cli import render
from asyncinfer.cli.commands.common import context_of, exclusive_formats, point_to_model_log
from asyncinfer.cli.commands.results_listing import Cursor, ListQuery, list_records, parse_statuses
from asyncinfer.cli.timewindow import time_window


def results(
    ctx: typer.Context,
    *,
    status_filter: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            help="PENDING, SUBMITTED, COMPLETED or FAILED; repeatable or comma-separated "
            "(default: all).",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Filed at or after (the outcome's time, or the claim's for open records; "
            "updated, on a layout-1 table): 15m, 2h, 7d or ISO-8601."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            help="Filed at or before (the outcome's time, or the claim's for open records; "
            "updated, on a layout-1 table): 15m, 2h, 7d or ISO-8601."
        ),
    ] = None,
    prefix: Annotated[str | None, typer.Option(help="Only input keys starting with this.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Records per page.")] = 50,
    next_token: Annotated[
        str | None, typer.Option(help="Continue the listing where the last page ended.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
    csv_output: Annotated[bool, typer.Option("--csv", help="Print CSV with a header.")] = False,
) -> None:
    """List inferences by status, newest first, from the status index (never a scan).

    When more records may follow, the token for the next page is printed on stderr (a page
    can be short: each costs a bounded number of requests whatever the table holds).
    """
    exclusive_formats(json_output, csv_output)
    context = context_of(ctx)
    query = ListQuery(
        statuses=parse_statuses(status_filter or []),
        window=time_window(since, until),
        key_prefix=prefix or None,
        limit=limit,
    )
    fingerprint = query.fingerprint(since, until)
    cursor = Cursor.decode(next_token, fingerprint) if next_token else None
    records, next_cursor = list_records(
        context.table, query, fingerprint=fingerprint, cursor=cursor
    )
    if json_output:
        render.emit(context.stdout, render.records_json(records))
    elif csv_output:
        render.emit(context.stdout, render.records_csv(records))
    elif records:
        context.stdout.print(render.records_table(records, width=context.stdout.width))
    else:
        render.emit(context.stderr, "no inferences match")
    point_to_model_log(context, records)
    if next_cursor is not None:
        render.emit(context.stderr, f"next page: --next-token {next_cursor.encode()}")
