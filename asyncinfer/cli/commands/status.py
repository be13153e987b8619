"""``asyncinfer status``: one inference, or every inference of one input object."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from asyncinfer.cli import render
from asyncinfer.cli.commands.common import context_of
from asyncinfer.cli.errors import CliError, ExitCode
from lambdas.common.contract import StackOutput
from lambdas.common.s3uri import S3_SCHEME, split_s3_uri

INFERENCE_ID_PATTERN = re.compile(r"^[0-9a-f]{64}$")


def status(
    ctx: typer.Context,
    *,
    reference: Annotated[
        str,
        typer.Argument(
            metavar="ID|s3://BUCKET/KEY|KEY",
            help="An inference id, an input's S3 URI, or a key in the input bucket.",
        ),
    ],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one inference, or every inference of an input object (newest first)."""
    context = context_of(ctx)
    if INFERENCE_ID_PATTERN.match(reference):
        record = context.table.get(reference)
        if record is None:
            raise CliError(f"inference {reference} not found")
        if json_output:
            render.emit(context.stdout, render.to_json(render.record_document(record)))
        else:
            context.stdout.print(render.record_detail(record), soft_wrap=True)
        return
    if reference.startswith(S3_SCHEME):
        try:
            bucket, key = split_s3_uri(reference)
        except ValueError as error:
            raise CliError(str(error), ExitCode.USAGE) from error
    else:
        bucket, key = context.target.output(StackOutput.INPUT_BUCKET_NAME), reference.lstrip("/")
    location = f"s3://{bucket}/{key}"
    records = context.table.for_input(location)
    if not records:
        raise CliError(f"no inference found for {location}")
    if json_output:
        render.emit(context.stdout, render.records_json(records))
    elif len(records) == 1:
        context.stdout.print(render.record_detail(records[0]), soft_wrap=True)
    else:
        context.stdout.print(
            render.records_table(records, width=context.stdout.width, title=location)
        )
