"""The handler's import chain stays lean (cold start); timings belong to bench/, not here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
HEAVY = ("aws_xray_sdk", "boto3", "pandas", "numpy", "sklearn", "moto", "hypothesis")


def imported_after_handler(trace_disabled: str) -> set[str]:
    probe = (
        "import sys, lambdas.ingest.handler; "
        f"print(','.join(name for name in {HEAVY!r} if name in sys.modules))"
    )
    environment = dict(os.environ, POWERTOOLS_TRACE_DISABLED=trace_disabled)
    output = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return {name for name in output.strip().split(",") if name}


@pytest.mark.parametrize("trace_disabled", ["true", "false"])
def test_the_handler_imports_nothing_heavy_it_does_not_use(trace_disabled: str) -> None:
    # with tracing on, the X-Ray SDK comes with the first invocation (lambdas/common/tracing.py)
    assert imported_after_handler(trace_disabled) == set()


def test_tracing_wraps_the_handler_only_when_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    from lambdas.ingest.handler import traced

    def handle(event: dict[str, str], context: object) -> dict[str, object]:
        return {"handled": event}

    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    assert traced(handle) is handle
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    wrapped = traced(handle)
    assert wrapped is not handle
    assert wrapped({"a": "b"}, None) == {"handled": {"a": "b"}}
