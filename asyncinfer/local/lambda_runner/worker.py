"""The worker process (the child side): one Lambda execution environment.

A worker process imports the handler once (the cold start), then serves one invocation at a
time, as a Lambda execution environment does. It runs with the function's environment only (the
parent's is cleared), writes what it prints to the function's log file, and is given a
Lambda-style context. Its parent, the pool (``pool``), sends it requests over a pipe.

The log file gets what CloudWatch Logs would: with the JSON log format, only the lines at or
above the application log level (``log_levels``), and the start, end and report lines only at
system log level DEBUG or INFO.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import math
import os
import resource
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TextIO, cast

from asyncinfer.local.lambda_runner.execution import FUNCTION_VERSION, LambdaContext
from asyncinfer.local.lambda_runner.log_levels import (
    PYTHON_LEVELS,
    LevelFilteringStream,
    application_level,
    platform_lines_sent,
)

_ORPHAN_CHECK_SECONDS = 0.5

Handler = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker process needs; pickled to the spawned interpreter."""

    function_name: str
    handler: str
    environment: dict[str, str]
    memory_limit_in_mb: str
    invoked_function_arn: str
    log_group_name: str
    log_stream_name: str
    log_path: str
    parent_pid: int
    system_log_level: str = "INFO"


@dataclass(frozen=True)
class Request:
    """One invocation, as the pool sends it down the pipe."""

    request_id: str
    event_json: str
    deadline_epoch_ms: int
    trace_id: str


# Messages a worker sends back: ("ready", None), ("init_error", error), ("result", json_text),
# ("error", error), where error is {"errorType", "errorMessage", "stackTrace"}.
Reply = tuple[str, Any]


def serve(connection: Connection, config: WorkerConfig) -> None:
    """A worker process's main: init once, then serve invocations until told to stop."""
    # Ctrl-C reaches the whole foreground process group; the runner decides when workers end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _send_output_to(Path(config.log_path))
    os.environ.clear()
    os.environ.update(config.environment)
    time.tzset()
    _configure_logging(application_level(config.environment))
    _exit_when_orphaned(config.parent_pid)
    init_started = time.monotonic()
    try:
        handler = load_handler(config.handler)
    except Exception as error:
        report = _error_report(error, error_type=_init_error_type(error))
        _print_error(report)
        connection.send(("init_error", report))
        return
    init_ms: float | None = (time.monotonic() - init_started) * 1000
    connection.send(("ready", None))
    while True:
        try:
            request: Request | None = connection.recv()
        except EOFError:
            return
        if request is None:
            return
        connection.send(_invoke(handler, request, config, init_ms))
        init_ms = None


def load_handler(dotted_path: str) -> Handler:
    """Import ``package.module.function`` as the Lambda runtime resolves ``_HANDLER``."""
    module_name, _, attribute = dotted_path.rpartition(".")
    if not module_name:
        raise ValueError(f"handler {dotted_path!r} is not of the form module.function")
    module = importlib.import_module(module_name)
    try:
        handler: Handler = getattr(module, attribute)
    except AttributeError:
        raise _HandlerNotFoundError(
            f"Handler '{attribute}' missing on module '{module_name}'"
        ) from None
    return handler


class _HandlerNotFoundError(Exception):
    pass


def _invoke(
    handler: Handler, request: Request, config: WorkerConfig, init_ms: float | None
) -> Reply:
    os.environ["_X_AMZN_TRACE_ID"] = request.trace_id
    context = LambdaContext(
        aws_request_id=request.request_id,
        deadline_epoch_ms=request.deadline_epoch_ms,
        function_name=config.function_name,
        memory_limit_in_mb=config.memory_limit_in_mb,
        invoked_function_arn=config.invoked_function_arn,
        log_group_name=config.log_group_name,
        log_stream_name=config.log_stream_name,
    )
    platform = platform_lines_sent(config.system_log_level)
    if platform:
        _platform_line(f"START RequestId: {request.request_id} Version: {FUNCTION_VERSION}")
    started = time.monotonic()
    reply: Reply
    error_report: dict[str, Any] | None = None
    try:
        result = handler(json.loads(request.event_json), context)
    except Exception as error:
        # The stack trace starts in the handler, as the runtime reports it.
        error.__traceback__ = error.__traceback__.tb_next if error.__traceback__ else None
        error_report = _error_report(error, error_type=type(error).__name__)
    else:
        try:
            reply = ("result", json.dumps(result))
        except (TypeError, ValueError) as error:
            # A response that is not JSON fails the invocation, as the runtime's marshalling does.
            error_report = _error_report(error, error_type="Runtime.MarshalError")
    if error_report is not None:
        _print_error(error_report)
        reply = ("error", error_report)
    duration_ms = (time.monotonic() - started) * 1000
    report_line = (
        f"REPORT RequestId: {request.request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {math.ceil(duration_ms)} ms\tMemory Size: {config.memory_limit_in_mb} MB"
        f"\tMax Memory Used: {_peak_memory_mb()} MB"
    )
    if init_ms is not None:
        report_line += f"\tInit Duration: {init_ms:.2f} ms"
    if platform:
        _platform_line(f"END RequestId: {request.request_id}\n{report_line}")
    return reply


def _peak_memory_mb() -> int:
    """Peak resident memory of this process (VmHWM: ru_maxrss would include the parent's,
    since Linux keeps it across the exec that spawn does)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _error_report(error: BaseException, *, error_type: str) -> dict[str, Any]:
    return {
        "errorType": error_type,
        "errorMessage": str(error),
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def _init_error_type(error: Exception) -> str:
    if isinstance(error, _HandlerNotFoundError):
        return "Runtime.HandlerNotFound"
    if isinstance(error, SyntaxError):
        return "Runtime.UserCodeSyntaxError"
    if isinstance(error, ImportError):
        return "Runtime.ImportModuleError"
    return type(error).__name__


def _configure_logging(level: str | None) -> None:
    """The root logger as the runtime sets it up (whatever importing __main__ again
    configured); with the JSON format, Lambda's level filter on all the function prints."""
    if level is None:
        logging.basicConfig(
            stream=sys.stdout,
            level=logging.WARNING,
            format="[%(levelname)s]\t%(asctime)s\t%(message)s",
            force=True,
        )
        return
    sys.stdout = LevelFilteringStream(cast("TextIO", sys.__stdout__), level)
    sys.stderr = LevelFilteringStream(cast("TextIO", sys.__stderr__), level)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_RuntimeJsonFormatter())
    logging.basicConfig(handlers=[handler], level=PYTHON_LEVELS[level], force=True)


class _RuntimeJsonFormatter(logging.Formatter):
    """The runtime's JSON lines for the standard library's loggers (botocore's, say)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": "WARN" if record.levelname == "WARNING" else record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line |= _error_report(error, error_type=type(error).__name__)
        return json.dumps(line, default=str)


def _platform_line(text: str) -> None:
    """Lambda's own lines: not the function's output, so not filtered by its level."""
    stream = sys.__stdout__
    if stream is not None:
        stream.write(text + "\n")
        stream.flush()


def _print_error(report: Mapping[str, Any]) -> None:
    if application_level(os.environ) is not None:
        # The runtime logs an uncaught error as an ERROR line of the JSON format.
        timestamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        print(json.dumps({"timestamp": timestamp, "level": "ERROR", **report}), flush=True)
        return
    print(
        f"[ERROR] {report['errorType']}: {report['errorMessage']}\n"
        "Traceback (most recent call last):\n" + "".join(report["stackTrace"]),
        file=sys.stderr,
        flush=True,
    )


def _send_output_to(log_path: Path) -> None:
    """Point fds 1 and 2 (so prints, logging and C-level writes) at the function's log file."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(descriptor)
    for stream in (sys.stdout, sys.stderr):
        # Line-buffered, so a worker killed mid-invocation still leaves its logs behind.
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True)


def _exit_when_orphaned(parent_pid: int) -> None:
    """Exit if the runner dies without stopping us (SIGKILL leaves no chance to clean up)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_ORPHAN_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()
