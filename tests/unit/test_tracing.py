"""Tracing of both handlers: no X-Ray SDK unless tracing is on; then the first invocation (not
the import) builds the Tracer, which patches only botocore."""

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


FIRST_INVOCATION = """
import sys, {module} as entry
imported = 'aws_xray_sdk' in sys.modules


class Context:
    function_name = "f"
    function_version = "$LATEST"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:f"
    aws_request_id = "r"

    def get_remaining_time_in_millis(self):
        return 1000


try:
    entry.handler({{}}, Context())  # fails (no configuration, no event) after the Tracer is built
except Exception:
    pass
from aws_xray_sdk.core.patcher import _PATCHED_MODULES
print(imported, sorted(_PATCHED_MODULES), 'requests' in sys.modules, 'sqlite3' in sys.modules)
"""


@pytest.mark.parametrize("module", HANDLERS)
def test_with_tracing_on_in_lambda_the_first_invocation_patches_only_botocore(
    module: str, tmp_path: Path
) -> None:
    probe = FIRST_INVOCATION.format(module=module)
    output = run_python(probe, LAMBDA_TASK_ROOT=str(tmp_path)).splitlines()[-1]
    assert output == "False ['botocore'] False False"


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
