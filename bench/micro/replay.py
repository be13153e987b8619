"""What both children share: the runtime's admin API, recorded calls and their replay, a
Lambda context, progress lines."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

from asyncinfer.local.lambda_runner.log_levels import application_level, ingested_bytes
from bench.micro.plan import WAIT_SECONDS, Plan


class RuntimeAdmin:
    """The local runtime's admin API: fault settings and the idle check."""

    def __init__(self, admin_url: str) -> None:
        self._url = admin_url

    def _request(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self._url + path, data=data, method="POST" if data else "GET"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    def set_added_latency(self, milliseconds: int) -> None:
        self._request("/faults", {"added_latency_ms": milliseconds})

    def wait_idle(self) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            stats = self._request("/stats")
            if stats["queue_depth"] == 0 and stats["in_flight"] == 0:
                return
            time.sleep(0.01)
        raise TimeoutError("the local runtime did not drain its queue")


class RecordingClient:
    """A boto3 client that records the keyword arguments of every call it passes on."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith("_") or not callable(attribute):
            return attribute

        def call(**arguments: Any) -> Any:
            self.calls.append((name, copy.deepcopy(arguments)))
            return attribute(**arguments)

        return call


def substituted(value: Any, replacements: dict[str, str]) -> Any:
    """``value`` with every replacement applied inside every string it holds."""
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {key: substituted(item, replacements) for key, item in value.items()}
    if isinstance(value, list):
        return [substituted(item, replacements) for item in value]
    return value


@contextlib.contextmanager
def counting_ingested_bytes(total: list[int]) -> Iterator[None]:
    """Adds to ``total[0]`` the bytes of what the block wrote to stdout (a file: the handler's
    log) that Lambda would send to CloudWatch Logs: with the function's JSON log format, the
    lines at or above its application log level (``AWS_LAMBDA_LOG_LEVEL``, which Powertools
    also follows here, as on Lambda)."""
    sys.stdout.flush()
    before = os.fstat(sys.stdout.fileno()).st_size
    try:
        yield
    finally:
        sys.stdout.flush()
        after = os.fstat(sys.stdout.fileno()).st_size
        # stdout is open for writing only: read the file through a descriptor of its own.
        with open(f"/proc/self/fd/{sys.stdout.fileno()}", "rb") as log:
            log.seek(before)
            output = log.read(after - before)
        total[0] += ingested_bytes(output, application_level(os.environ))


def lambda_context(plan: Plan) -> Any:
    from asyncinfer.local.lambda_runner.execution import LambdaContext, function_arn

    name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", plan.function)
    return LambdaContext(
        aws_request_id=str(uuid.uuid4()),
        deadline_epoch_ms=int(time.time() * 1000) + 15 * 60 * 1000,
        function_name=name,
        memory_limit_in_mb=str(plan.memory_mb),
        invoked_function_arn=function_arn(plan.region, name),
        log_group_name=f"/aws/lambda/{name}",
        log_stream_name="bench",
    )


def progress(message: str) -> None:
    print(f"[bench.micro] {message}", file=sys.stderr, flush=True)
