"""Tracing of both handlers: no X-Ray SDK unless tracing is on; then only botocore is patched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lambdas.common.tracing import traced, tracing_disabled

REPO = Path(__file__).resolve().parents[2]
HANDLERS = ("lambdas.ingest.handler", "lambdas.results.handler")


def run_python(code: str, **environment: str) -> str:
    base = {name: value for name, value in os.environ.items() if "TRACE" not in name}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=base | {"AWS_DEFAULT_REGION": "us-east-1"} | environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()


@pytest.mark.parametrize("module", HANDLERS)
def test_with_tracing_off_no_handler_imports_the_xray_sdk(module: str) -> None:
    probe = f"import sys, {module}; print('aws_xray_sdk' in sys.modules)"
    assert run_python(probe, POWERTOOLS_TRACE_DISABLED="true") == "False"


@pytest.mark.parametrize("module", HANDLERS)
def test_with_tracing_on_in_lambda_only_botocore_is_patched(module: str, tmp_path: Path) -> None:
    probe = (
        f"import sys, {module}; "
        "from aws_xray_sdk.core.patcher import _PATCHED_MODULES; "
        "print(sorted(_PATCHED_MODULES), 'requests' in sys.modules, 'sqlite3' in sys.modules)"
    )
    assert run_python(probe, LAMBDA_TASK_ROOT=str(tmp_path)) == "['botocore'] False False"


def test_traced_returns_the_handler_itself_when_tracing_is_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def handle(event: dict[str, str], context: object) -> dict[str, object]:
        return {"handled": event}

    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    assert tracing_disabled()
    assert traced(handle) is handle
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    assert not tracing_disabled()
    wrapped = traced(handle)  # outside Lambda the Tracer disables itself, but still wraps
    assert wrapped is not handle
    assert wrapped({"a": "b"}, None) == {"handled": {"a": "b"}}
