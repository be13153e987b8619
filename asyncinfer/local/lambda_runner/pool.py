"""The pool of worker processes (the parent side): one worker per warm Lambda container.

A worker that crashes (exception escaping the runtime, ``os._exit``, a signal) or outlives the
function timeout is gone for good: the next invocation starts a fresh one and pays the import
cost again, like a new container.

Workers are started with the ``spawn`` method: the runner is multi-threaded, so forking it
would copy locks held by other threads, and a fresh interpreter is what a new container is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from asyncinfer.local.lambda_runner.execution import (
    FUNCTION_VERSION,
    function_arn,
    trace_header,
)
from asyncinfer.local.lambda_runner.worker import Reply, Request, WorkerConfig, serve
from asyncinfer.local.provision.spec import FunctionSpec
from lambdas.common.clock import format_timestamp, utc_now

_CONTEXT = multiprocessing.get_context("spawn")
_SHUTDOWN_GRACE_SECONDS = 2.0

logger = logging.getLogger(__name__)


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
        stream = f"{utc_now():%Y/%m/%d}/[{FUNCTION_VERSION}]{uuid.uuid4().hex}"
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
            system_log_level=self.function.system_log_level,
        )

    def _run(self, worker: _Worker, request_id: str, event: Mapping[str, Any]) -> Invocation:
        if not worker.ready:
            init_failure = self._initialize(worker, request_id)
            if init_failure is not None:
                return init_failure
        timeout = self.function.timeout_seconds
        request = Request(
            request_id=request_id,
            event_json=json.dumps(event),
            deadline_epoch_ms=int(time.time() * 1000) + timeout * 1000,
            trace_id=trace_header(),
        )
        reply: Reply | _TimedOut | None
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
        return self._worker_gone(
            request_id, Outcome.TIMEOUT, "Sandbox.Timedout", message, f"{request_id} {message}"
        )

    def _lost(self, worker: _Worker, request_id: str) -> Invocation:
        worker.process.join(_SHUTDOWN_GRACE_SECONDS)
        if worker.process.is_alive():  # it closed its end but lingers: finish it
            worker.process.kill()
            worker.process.join()
        exit_code = worker.process.exitcode
        if exit_code is not None and exit_code < 0:
            status = f"signal: {signal.Signals(-exit_code).name}"
        else:
            status = f"exit status {exit_code}"
        message = f"RequestId: {request_id} Error: Runtime exited with error: {status}"
        return self._worker_gone(request_id, Outcome.CRASH, "Runtime.ExitError", message, message)

    def _worker_gone(
        self, request_id: str, outcome: Outcome, error_type: str, message: str, log_line: str
    ) -> Invocation:
        """The invocation whose worker was stopped or died: abandoned while the pool closes,
        otherwise a platform error, logged as Lambda logs it."""
        if self._is_closing():
            return Invocation(request_id, Outcome.ABANDONED, worker_lost=True)
        _append_log(self._log_path, f"{format_timestamp(utc_now())} {log_line}")
        return Invocation(
            request_id, outcome, error_type=error_type, error_message=message, worker_lost=True
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

    def receive(self, timeout: float) -> Reply | _TimedOut | None:
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
            reply: Reply = self.connection.recv()
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


def _function_error(request_id: str, error: Mapping[str, Any]) -> Invocation:
    return Invocation(
        request_id,
        Outcome.FUNCTION_ERROR,
        error_type=str(error.get("errorType", "Unhandled")),
        error_message=str(error.get("errorMessage", "")),
        stack_trace=tuple(str(line) for line in error.get("stackTrace", [])),
    )


def _append_log(log_path: Path, line: str) -> None:
    """The runtime's own lines (timeouts, crashes), which the dead worker cannot write."""
    try:
        with log_path.open("a", encoding="utf-8") as log:
            log.write(line + "\n")
    except OSError:
        logger.warning("cannot write to %s: %s", log_path, line)
