"""``asyncinfer status``: one inference, or every inference of one input object."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from asyncinfer.cli import render
from asyncinfer.cli.commands.common import context_of, point_to_model_log
from asyncinfer.cli.context import CliContext
from asyncinfer.cli.errors import CliError, ExitCode
from lambdas.common.contract import StackOutput
from lambdas.common.records import InferenceRecord
from lambdas.common.s3uri import S3_SCHEME, split_s3_uri

# the pipeline's ids: sha256 hex; the table may hold any InferenceId a client sent itself
PIPELINE_ID_PATTERN = re.compile(r"^[0-9a-f]{64}$")
INFERENCE_ID_MAX_CHARS = 64


def could_be_inference_id(reference: str) -> bool:
    """InvokeEndpointAsync's InferenceId: 1 to 64 printable characters, no leading space
    (sagemaker-runtime service model, ``InferenceId`` pattern ``\\A\\S[\\p{Print}]*\\z``)."""
    return (
        0 < len(reference) <= INFERENCE_ID_MAX_CHARS
        and reference.isprintable()
        and not reference[0].isspace()
    )


def _by_id(context: CliContext, reference: str) -> InferenceRecord | None:
    """The record whose id is ``reference``; None when it may be a key instead."""
    if not could_be_inference_id(reference) or reference.startswith(S3_SCHEME):
        return None
    record = context.table.get(reference)
    if record is None and PIPELINE_ID_PATTERN.match(reference):
        raise CliError(f"inference {reference} not found")
    return record


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
    if not reference.strip():
        raise CliError("status needs an inference id, an s3:// URI or a key", ExitCode.USAGE)
    context = context_of(ctx)
    record = _by_id(context, reference)
    if record is not None:
        if json_output:
            render.emit(context.stdout, render.to_json(render.record_document(record)))
        else:
            context.stdout.print(render.record_detail(record), soft_wrap=True)
        point_to_model_log(context, [record])
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
    point_to_model_log(context, records)
