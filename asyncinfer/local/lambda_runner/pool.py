"""Lambda execution environments for local mode: one worker process per warm container.

A worker process imports the handler once (the cold start), then serves one invocation at a
time, as a Lambda execution environment does. It runs with the function's environment only (the
parent's is cleared), writes everything it prints to the function's log file, and is given a
Lambda-style context. A worker that crashes (exception escaping the runtime, ``os._exit``,
a signal) or outlives the function timeout is gone for good: the next invocation starts a fresh
one and pays the import cost again, like a new container.

Workers are started with the ``spawn`` method: the runner is multi-threaded, so forking it
would copy locks held by other threads, and a fresh interpreter is what a new container is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import json
import logging
import math
import multiprocessing
import os
import resource
import secrets
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from asyncinfer.local.spec import FunctionSpec

ACCOUNT_ID = "123456789012"  # moto's default account, so ARNs match the ones moto returns
FUNCTION_VERSION = "$LATEST"

_CONTEXT = multiprocessing.get_context("spawn")
_ORPHAN_CHECK_SECONDS = 0.5
_SHUTDOWN_GRACE_SECONDS = 2.0

logger = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]


class Outcome(Enum):
    SUCCESS = "success"
    FUNCTION_ERROR = "function_error"  # the handler raised, or init failed, or bad response
    TIMEOUT = "timeout"  # killed at the function timeout
    CRASH = "crash"  # the worker process died (exit, signal, kill_busy_worker)
    ABANDONED = "abandoned"  # the pool was closed while the invocation ran or waited


@dataclass(frozen=True)
class Invocation:
    """What one invocation returned, as the Lambda service would see it."""

    request_id: str
    outcome: Outcome
    response: Any = None
    error_type: str | None = None
    error_message: str | None = None
    stack_trace: tuple[str, ...] = ()
    worker_lost: bool = False  # the worker died or was killed: the next one is a cold start

    @property
    def succeeded(self) -> bool:
        return self.outcome is Outcome.SUCCESS


class LambdaContext:
    """The context object the Python runtime passes to handlers (same attributes and types)."""

    def __init__(
        self,
        *,
        aws_request_id: str,
        deadline_epoch_ms: int,
        function_name: str,
        memory_limit_in_mb: str,
        invoked_function_arn: str,
        log_group_name: str,
        log_stream_name: str,
    ) -> None:
        self.aws_request_id = aws_request_id
        self.function_name = function_name
        self.function_version = FUNCTION_VERSION
        # The runtime reads it from AWS_LAMBDA_FUNCTION_MEMORY_SIZE, so it is a string there too.
        self.memory_limit_in_mb = memory_limit_in_mb
        self.invoked_function_arn = invoked_function_arn
        self.log_group_name = log_group_name
        self.log_stream_name = log_stream_name
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline_epoch_ms = deadline_epoch_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_epoch_ms - int(time.time() * 1000), 0)


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


@dataclass(frozen=True)
class _Request:
    request_id: str
    event_json: str
    deadline_epoch_ms: int
    trace_id: str


# Messages a worker sends back: ("ready", None), ("init_error", error), ("result", json_text),
# ("error", error), where error is {"errorType", "errorMessage", "stackTrace"}.
_Reply = tuple[str, Any]


def function_arn(region: str, function_name: str) -> str:
    return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name}"


def trace_header() -> str:
    """A fresh X-Ray trace header, as Lambda sets ``_X_AMZN_TRACE_ID`` per invocation."""
    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled=0"


def lambda_environment(
    function: FunctionSpec, base_environment: Mapping[str, str], region: str
) -> dict[str, str]:
    """The environment a worker runs with: what Lambda's runtime sets, and nothing of ours.

    Order (later wins): process basics, the caller's base environment (endpoints, fake
    credentials), the function's own variables, then the variables Lambda reserves.
    """
    environment = {
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        # Lambda has no ~/.aws: keep the user's profiles and config out of the handlers.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    environment.update(base_environment)
    environment.update(function.environment)
    environment.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": FUNCTION_VERSION,
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "_HANDLER": function.handler,
            # There is no X-Ray daemon locally: an enabled tracer would only log send errors.
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )
    return environment


class WorkerPool:
    """Warm workers of one function, at most ``max_workers`` of them, started on demand."""

    def __init__(
        self,
        function: FunctionSpec,
        *,
        environment: Mapping[str, str],
        region: str,
        log_path: Path,
        max_workers: int,
        init_timeout_seconds: float,
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.function = function
        self._environment = dict(environment)
        self._region = region
        self._log_path = log_path
        self._max_workers = max_workers
        self._init_timeout_seconds = init_timeout_seconds
        self._condition = threading.Condition()
        self._idle: list[_Worker] = []
        self._workers: set[_Worker] = set()
        self._closing = False

    def invoke(self, event: Mapping[str, Any]) -> Invocation:
        """Run the handler on ``event`` in a warm worker (or a new one); never raises."""
        request_id = str(uuid.uuid4())
        worker = self._acquire()
        if worker is None:
            return Invocation(request_id, Outcome.ABANDONED)
        invocation = self._run(worker, request_id, event)
        self._release(worker, keep=not invocation.worker_lost)
        return invocation

    def kill_busy_worker(self) -> bool:
        """SIGKILL one worker that is running an invocation; False if none is."""
        with self._condition:
            for worker in self._workers:
                if worker.busy and worker.ready:
                    worker.process.kill()
                    return True
        return False

    def close(self, timeout: float) -> None:
        """Abandon running invocations (their workers are killed) and stop idle workers."""
        deadline = time.monotonic() + timeout
        with self._condition:
            self._closing = True
            idle, self._idle = self._idle, []
            busy = [worker for worker in self._workers if worker.busy]
            self._condition.notify_all()
        for worker in busy:
            worker.process.kill()
        for worker in idle:
            worker.shutdown(deadline)
            with self._condition:
                self._workers.discard(worker)
        # The invoking threads see their killed workers die and dispose of them.
        grace_ends = max(deadline, time.monotonic() + _SHUTDOWN_GRACE_SECONDS)
        with self._condition:
            while self._workers and (remaining := grace_ends - time.monotonic()) > 0:
                self._condition.wait(remaining)
            stragglers = list(self._workers)
        for worker in stragglers:
            # Its thread is elsewhere: reap the process now, the thread disposes of the rest.
            worker.process.kill()
            worker.process.join(_SHUTDOWN_GRACE_SECONDS)

    def _acquire(self) -> _Worker | None:
        with self._condition:
            while True:
                if self._closing:
                    return None
                while self._idle:
                    worker = self._idle.pop()
                    if worker.process.is_alive():
                        worker.busy = True
                        return worker
                    # It died while idle (killed from outside): like a reclaimed environment.
                    self._workers.discard(worker)
                    worker.dispose()
                if len(self._workers) < self._max_workers:
                    worker = _Worker(self._worker_config())
                    self._workers.add(worker)
                    return worker
                self._condition.wait()

    def _release(self, worker: _Worker, *, keep: bool) -> None:
        with self._condition:
            worker.busy = False
            if keep and not self._closing and worker.process.is_alive():
                self._idle.append(worker)
                self._condition.notify_all()
                return
        worker.process.kill()
        worker.dispose()
        with self._condition:
            self._workers.discard(worker)
            self._condition.notify_all()

    def _worker_config(self) -> WorkerConfig:
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[{FUNCTION_VERSION}]{uuid.uuid4().hex}"
        environment = dict(self._environment, AWS_LAMBDA_LOG_STREAM_NAME=stream)
        return WorkerConfig(
            function_name=self.function.name,
            handler=self.function.handler,
            environment=environment,
            memory_limit_in_mb=str(self.function.memory_mb),
            invoked_function_arn=function_arn(self._region, self.function.name),
            log_group_name=environment["AWS_LAMBDA_LOG_GROUP_NAME"],
            log_stream_name=stream,
            log_path=str(self._log_path),
            parent_pid=os.getpid(),
        )

    def _run(self, worker: _Worker, request_id: str, event: Mapping[str, Any]) -> Invocation:
        if not worker.ready:
            init_failure = self._initialize(worker, request_id)
            if init_failure is not None:
                return init_failure
        timeout = self.function.timeout_seconds
        request = _Request(
            request_id=request_id,
            event_json=json.dumps(event),
            deadline_epoch_ms=int(time.time() * 1000) + timeout * 1000,
            trace_id=trace_header(),
        )
        reply: _Reply | _TimedOut | None
        try:
            worker.connection.send(request)
            reply = worker.receive(timeout)
        except OSError:  # it died before taking the request
            reply = None
        if isinstance(reply, _TimedOut):
            return self._timed_out(
                worker, request_id, f"Task timed out after {timeout:.2f} seconds"
            )
        if reply is None:
            return self._lost(worker, request_id)
        kind, payload = reply
        if kind == "result":
            return Invocation(request_id, Outcome.SUCCESS, response=json.loads(payload))
        return _function_error(request_id, payload)

    def _initialize(self, worker: _Worker, request_id: str) -> Invocation | None:
        reply = worker.receive(self._init_timeout_seconds)
        if isinstance(reply, _TimedOut):
            message = f"Init timed out after {self._init_timeout_seconds:.2f} seconds"
            return self._timed_out(worker, request_id, message)
        if reply is None:
            return self._lost(worker, request_id)
        kind, payload = reply
        if kind == "ready":
            worker.ready = True
            return None
        worker.process.join(_SHUTDOWN_GRACE_SECONDS)  # it exits after reporting
        return dataclasses.replace(_function_error(request_id, payload), worker_lost=True)

    def _timed_out(self, worker: _Worker, request_id: str, message: str) -> Invocation:
        worker.process.kill()
        worker.process.join()
        if self._is_closing():
            return Invocation(request_id, Outcome.ABANDONED, worker_lost=True)
        _append_log(self._log_path, f"{_log_time()} {request_id} {message}")
        return Invocation(
            request_id,
            Outcome.TIMEOUT,
            error_type="Sandbox.Timedout",
            error_message=message,
            worker_lost=True,
        )

    def _lost(self, worker: _Worker, request_id: str) -> Invocation:
        worker.process.join(_SHUTDOWN_GRACE_SECONDS)
        if worker.process.is_alive():  # it closed its end but lingers: finish it
            worker.process.kill()
            worker.process.join()
        if self._is_closing():
            return Invocation(request_id, Outcome.ABANDONED, worker_lost=True)
        exit_code = worker.process.exitcode
        if exit_code is not None and exit_code < 0:
            status = f"signal: {signal.Signals(-exit_code).name}"
        else:
            status = f"exit status {exit_code}"
        message = f"RequestId: {request_id} Error: Runtime exited with error: {status}"
        _append_log(self._log_path, f"{_log_time()} {message}")
        return Invocation(
            request_id,
            Outcome.CRASH,
            error_type="Runtime.ExitError",
            error_message=message,
            worker_lost=True,
        )

    def _is_closing(self) -> bool:
        with self._condition:
            return self._closing


class _TimedOut:
    """Marker: no reply within the time allowed."""


_TIMED_OUT = _TimedOut()


class _Worker:
    """The parent's handle on one worker process."""

    def __init__(self, config: WorkerConfig) -> None:
        parent_end, child_end = _CONTEXT.Pipe(duplex=True)
        self.process = _CONTEXT.Process(
            target=serve,
            args=(child_end, config),
            name=f"lambda:{config.function_name}",
            daemon=True,  # never outlives the runner, even if stop() is not called
        )
        self.process.start()
        child_end.close()  # so the parent sees EOF when the worker dies
        self.connection = parent_end
        self.ready = False
        self.busy = True
        self._disposal = threading.Lock()
        self._disposed = False

    def receive(self, timeout: float) -> _Reply | _TimedOut | None:
        """The worker's next reply; ``None`` if it died first, ``_TIMED_OUT`` if none came."""
        ready = wait([self.connection, self.process.sentinel], timeout)
        if not ready:
            return _TIMED_OUT
        if self.connection not in ready:
            # Exiting: the kernel closes its descriptors one by one, so wait until it is gone
            # before looking for a reply it may have sent just before.
            self.process.join()
            if not self.connection.poll():
                return None
        try:
            reply: _Reply = self.connection.recv()
        except (EOFError, OSError):
            return None
        return reply

    def shutdown(self, deadline: float) -> None:
        with contextlib.suppress(OSError):
            self.connection.send(None)
        self.process.join(max(deadline - time.monotonic(), 0.0))
        if self.process.is_alive():
            self.process.kill()
        self.dispose()

    def dispose(self) -> None:
        """Reap the (dead or killed) process and close the pipe, once."""
        with self._disposal:
            if self._disposed:
                return
            self._disposed = True
            self.process.join()
            self.connection.close()


def serve(connection: Connection, config: WorkerConfig) -> None:
    """A worker process's main: init once, then serve invocations until told to stop."""
    # Ctrl-C reaches the whole foreground process group; the runner decides when workers end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _send_output_to(Path(config.log_path))
    os.environ.clear()
    os.environ.update(config.environment)
    time.tzset()
    # A root logger as the runtime sets it up, whatever importing __main__ again configured.
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.WARNING,
        format="[%(levelname)s]\t%(asctime)s\t%(message)s",
        force=True,
    )
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
            request: _Request | None = connection.recv()
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
    handler: Handler, request: _Request, config: WorkerConfig, init_ms: float | None
) -> _Reply:
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
    print(f"START RequestId: {request.request_id} Version: {FUNCTION_VERSION}", flush=True)
    started = time.monotonic()
    reply: _Reply
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
    print(f"END RequestId: {request.request_id}\n{report_line}", flush=True)
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


def _print_error(report: Mapping[str, Any]) -> None:
    print(
        f"[ERROR] {report['errorType']}: {report['errorMessage']}\n"
        "Traceback (most recent call last):\n" + "".join(report["stackTrace"]),
        file=sys.stderr,
        flush=True,
    )


def _function_error(request_id: str, error: Mapping[str, Any]) -> Invocation:
    return Invocation(
        request_id,
        Outcome.FUNCTION_ERROR,
        error_type=str(error.get("errorType", "Unhandled")),
        error_message=str(error.get("errorMessage", "")),
        stack_trace=tuple(str(line) for line in error.get("stackTrace", [])),
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


def _append_log(log_path: Path, line: str) -> None:
    """The runtime's own lines (timeouts, crashes), which the dead worker cannot write."""
    try:
        with log_path.open("a", encoding="utf-8") as log:
            log.write(line + "\n")
    except OSError:
        logger.warning("cannot write to %s: %s", log_path, line)


def _log_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
