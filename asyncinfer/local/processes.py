"""Local mode's servers as child processes: started on free ports, stopped together, and
never outliving local mode; and the lock that keeps one local mode per state folder.

Each server is ``python -m <module> --port 0`` and prints ``READY <port>`` once bound (the moto
server ``aws.server``, the model server ``sagemaker.model_server`` and, when it runs in its own
process, the SageMaker runtime ``asyncinfer.local.sagemaker``). On Linux each child asks the
kernel for SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``), so a ``kill -9`` of
local mode does not leave servers running under PID 1.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from asyncinfer.local.faults import FaultSettings
from asyncinfer.local.provision.spec import EndpointSpec

STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
RUNTIME_MODULE = "asyncinfer.local.sagemaker"


class LocalModeError(Exception):
    """Local mode could not start; the message says which part and why."""


def project_root() -> Path:
    return Path(__file__).resolve().parents[2]


def wait_until_answers(url: str, deadline: float, process: subprocess.Popen[Any] | None) -> None:
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise LocalModeError(f"{url}: the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback URL we started
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.05)
    raise LocalModeError(f"{url} did not answer within {STARTUP_TIMEOUT_SECONDS:.0f}s")


def runtime_arguments(
    endpoint: EndpointSpec, aws_endpoint_url: str, region: str, faults: FaultSettings
) -> list[str]:
    """The command line of ``python -m asyncinfer.local.sagemaker`` for ``endpoint``."""
    arguments = [
        "--aws-endpoint-url",
        aws_endpoint_url,
        "--region",
        region,
        "--endpoint-name",
        endpoint.name,
        "--output-path",
        endpoint.output_path,
        "--failure-path",
        endpoint.failure_path,
        "--max-concurrent-invocations-per-instance",
        str(endpoint.max_concurrent_invocations_per_instance),
        "--instance-count",
        str(endpoint.instance_count),
        "--model-url",
        endpoint.model_url,
        "--faults",
        json.dumps(faults.model_dump(mode="json", exclude_defaults=True)),
    ]
    for option, topic in (
        ("--success-topic-arn", endpoint.success_topic_arn),
        ("--error-topic-arn", endpoint.error_topic_arn),
    ):
        if topic:
            arguments += [option, topic]
    if endpoint.include_response_body:
        arguments.append("--include-response-body")
    return arguments


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _death_signal() -> Any:
    """The function a child runs before ``exec``: SIGTERM when the parent dies (Linux; None
    elsewhere). libc is loaded here, in the parent, so the child only makes the call."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    parent = os.getpid()

    def in_child() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the call: go now
            os._exit(1)

    return in_child


class StateDirLock:
    """One local mode per state folder: an exclusive ``flock`` on ``<state folder>/lock``,
    held for local mode's life and released by the kernel when its process dies, even by
    ``kill -9``. The file names its holder (pid and command), for the refusal."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "lock"
        self._handle: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise LocalModeError(
                f"local mode already runs on {self.path.parent}: {holder}; stop it, or pass "
                "another --state-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} ({shlex.join(sys.argv)})\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file releases the lock
            self._handle = None


@dataclass(frozen=True)
class Launched:
    """A server process started by ``ServerProcesses.launch``, not yet known to answer."""

    name: str
    process: subprocess.Popen[str]
    log_name: str

    def ready(self, health_path: str, deadline: float) -> str:
        """Its URL, once it printed ``READY <port>`` and ``health_path`` answers."""
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("READY "):
            raise LocalModeError(f"the {self.name} server did not start (see {self.log_name})")
        url = f"http://127.0.0.1:{line.split()[1]}"
        wait_until_answers(f"{url}{health_path}", deadline, self.process)
        return url


class ServerProcesses:
    """Our servers as child processes: started on free ports, stopped together."""

    def __init__(self, log_dir: Path, log_mode: str = "a") -> None:
        self.log_dir = log_dir
        self._log_mode = log_mode
        self._processes: list[subprocess.Popen[str]] = []
        self._logs: list[IO[Any]] = []
        self._log_starts: dict[Path, int] = {}  # where this run's lines begin in each log

    def start(
        self, name: str, module: str, arguments: list[str], health_path: str, deadline: float
    ) -> str:
        """Starts ``python -m module --port 0``; it prints ``READY <port>`` once bound."""
        return self.launch(name, module, arguments).ready(health_path, deadline)

    def launch(self, name: str, module: str, arguments: list[str]) -> Launched:
        """Starts ``python -m module --port 0`` without waiting for it: servers that do not
        depend on each other import and bind at the same time (local mode's start-up)."""
        log = (self.log_dir / f"{name}.log").open(self._log_mode)
        self._logs.append(log)
        self._log_starts[self.log_dir / f"{name}.log"] = log.seek(0, 2)
        process = subprocess.Popen(  # noqa: S603 - this interpreter running our own modules
            [sys.executable, "-m", module, "--port", "0", *arguments],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=project_root(),
            preexec_fn=_death_signal(),  # noqa: PLW1509 - one async-signal-safe libc call
        )
        self._processes.append(process)
        return Launched(name, process, log.name)

    def tracebacks(self) -> list[str]:
        """The logs of this run's servers that hold a Python traceback (a server that logged
        one while starting, e.g. an import racing between threads, is not trustworthy)."""
        found = []
        for path, start in self._log_starts.items():
            with path.open("rb") as log:
                log.seek(start)
                if b"Traceback (most recent call last)" in log.read():
                    found.append(str(path))
        return found

    def stop(self) -> None:
        """Terminates every server, newest first (killed if it does not exit in time)."""
        for process in reversed(self._processes):
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        self._processes.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()
        self._log_starts.clear()
