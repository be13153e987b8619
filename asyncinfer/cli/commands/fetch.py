"""``asyncinfer fetch``: the output of a COMPLETED inference or the failure of a FAILED one."""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from asyncinfer.cli import render
from asyncinfer.cli.commands.common import context_of
from asyncinfer.cli.context import CliContext
from asyncinfer.cli.errors import CliError, ExitCode
from lambdas.common.records import InferenceRecord, Status


def fetch(
    ctx: typer.Context,
    *,
    inference_id: Annotated[str, typer.Argument(metavar="ID", help="An inference id.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="File to write, or an existing folder to write into, named after the output "
            "object (default: stdout).",
        ),
    ] = None,
) -> None:
    """Download the output of a COMPLETED inference, or the failure of a FAILED one."""
    context = context_of(ctx)
    if output is not None and str(output) != "-" and not output.is_dir():
        _check_writable(output)
    record = context.table.get(inference_id)
    if record is None:
        raise CliError(f"inference {inference_id} not found")
    if record.status == Status.COMPLETED and not record.output_location:
        _write_inline_result(context, record, output)
        return
    if record.status == Status.COMPLETED and record.output_location:
        location = record.output_location
    elif record.status == Status.FAILED and record.failure_location:
        location = record.failure_location
    elif record.status == Status.FAILED:
        raise CliError(
            f"inference {inference_id} FAILED at {record.failure_stage or 'an unknown stage'} "
            f"with no failure object: {record.failure_reason or 'no reason recorded'}",
            ExitCode.FAILED,
        )
    else:
        raise CliError(
            f"inference {inference_id} is {record.status}: no output yet", ExitCode.FAILED
        )
    if output is None or str(output) == "-":
        context.objects.download(location, typer.get_binary_stream("stdout"))
        return
    _download_to_file(context, location, output)


def _write_inline_result(context: CliContext, record: InferenceRecord, output: Path | None) -> None:
    """A COMPLETED record without an output location: the inline result is all there is."""
    if record.result is None or record.result_encoding not in ("utf-8", "base64"):
        raise CliError(
            f"inference {record.inference_id} is COMPLETED but records no output location "
            "and no inline result",
            ExitCode.FAILED,
        )
    if record.result_encoding == "base64":
        content = base64.b64decode(record.result)
    else:
        content = record.result.encode("utf-8")
    if output is None or str(output) == "-":
        typer.get_binary_stream("stdout").write(content)
        return
    output = _destination(output, f"{record.inference_id}.out")
    try:
        output.write_bytes(content)
    except OSError as error:
        raise CliError(f"cannot write {output}: {error.strerror}", ExitCode.FAILED) from error
    render.emit(context.stderr, f"wrote {len(content)} bytes to {output} from the inline result")


def _download_to_file(context: CliContext, location: str, output: Path) -> None:
    """Write next to the destination, then rename: a failed download leaves no partial file."""
    output = _destination(output, location.rsplit("/", 1)[-1])
    folder = output.parent if str(output.parent) else Path()
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{output.name}.")
    except OSError as error:
        raise CliError(f"cannot write {output}: {error.strerror}", ExitCode.USAGE) from error
    try:
        with os.fdopen(handle, "wb") as sink:
            written = context.objects.download(location, sink)
        Path(temporary).replace(output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    render.emit(context.stderr, f"wrote {written} bytes to {output} from {location}")


def _check_writable(output: Path) -> None:
    """An ``-o`` path whose folder is missing or not writable is a bad argument (252), found
    before anything is read."""
    folder = output.parent if str(output.parent) else Path()
    if not folder.is_dir():
        raise CliError(f"cannot write {output}: no folder {folder}", ExitCode.USAGE)
    if not os.access(folder, os.W_OK):
        raise CliError(f"cannot write {output}: folder {folder} is not writable", ExitCode.USAGE)


def _destination(output: Path, name: str) -> Path:
    """``output``, or ``output/name`` when it is a folder (as ``aws s3 cp`` does)."""
    if not output.is_dir():
        return output
    if not name or name in (".", ".."):
        raise CliError(f"cannot name a file in {output}: pass a file path", ExitCode.USAGE)
    return output / name
