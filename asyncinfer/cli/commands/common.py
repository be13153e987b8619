"""What the commands share: the context they run in and the checks of their options."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import typer

from asyncinfer.cli.context import CliContext
from asyncinfer.cli.errors import CliError, ExitCode
from asyncinfer.cli.render import emit
from asyncinfer.cli.target import local_extra_missing
from asyncinfer.cli.timewindow import parse_age
from lambdas.common.records import FailureStage, InferenceRecord, Status


def context_of(ctx: typer.Context) -> CliContext:
    context = ctx.find_object(CliContext)
    if context is None:  # only when a command is invoked without the app's callback
        raise CliError("internal error: no CLI context", ExitCode.OTHER)
    return context


def exclusive_formats(json_output: bool, csv_output: bool) -> None:
    if json_output and csv_output:
        raise CliError("choose one of --json and --csv", ExitCode.USAGE)


def point_to_model_log(context: CliContext, records: Sequence[InferenceRecord]) -> None:
    """Under inference failures, one line on stderr naming where the model's own reason is
    (``failure_reason`` holds what the container answered, often a generic error page)."""
    failed = [
        record
        for record in records
        if record.status == Status.FAILED and record.failure_stage == FailureStage.INFERENCE
    ]
    if failed:
        where = context.target.model_log(failed[0].endpoint_name)
        emit(context.stderr, f"inference failures: the model's own reasons are in {where}")


def parse_context(values: list[str]) -> dict[str, str]:
    """``-c key=value`` pairs, as ``cdk -c`` takes them (an empty value: the key's default)."""
    context: dict[str, str] = {}
    for value in values:
        key, separator, text = value.partition("=")
        if not separator or not key.strip():
            raise CliError(f"invalid -c {value!r}: expected key=value", ExitCode.USAGE)
        context[key.strip()] = text
    return context


def require_local_extra() -> None:
    """Local mode imports what the ``local`` extra installs: say so in one line (253)."""
    missing = local_extra_missing()
    if missing:
        raise CliError(
            f"local mode needs the 'local' extra ({', '.join(missing)} not installed): run it "
            "from a clone of the repository (make setup, then .venv/bin/asyncinfer local up)",
            ExitCode.ENVIRONMENT,
        )


def positive_age(text: str, option: str) -> timedelta:
    age = parse_age(text)
    if age is None or age.total_seconds() <= 0:
        raise CliError(f"invalid {option} {text!r}: use an age like 90s, 15m, 2h", ExitCode.USAGE)
    return age
