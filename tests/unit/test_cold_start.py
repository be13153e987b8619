"""What the handlers do for their cold start: the collector paused while they load, and what the
first invocation builds ready before the ingest function's threads use it."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lambdas.common.collector import collector_paused

REPO = Path(__file__).resolve().parents[2]
HANDLERS = ("lambdas.ingest.handler", "lambdas.results.handler", "lambdas.reconciler.handler")


def run_python(code: str, **environment: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=dict(os.environ, AWS_DEFAULT_REGION="us-east-1", **environment),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()


def test_the_collector_is_paused_in_the_block_then_what_it_built_is_frozen() -> None:
    frozen = gc.get_freeze_count()
    with collector_paused():
        assert not gc.isenabled()
        kept = [object() for _ in range(100)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen + len(kept)
    gc.unfreeze()  # give this test process's objects back to the collector


def test_a_paused_collector_stays_paused_after_a_nested_block() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()


@pytest.mark.parametrize("module", HANDLERS)
def test_a_handler_leaves_the_collector_running_and_what_it_loaded_frozen(module: str) -> None:
    probe = f"import gc, {module}; print(gc.isenabled(), gc.get_freeze_count() > 10_000)"
    assert run_python(probe, POWERTOOLS_TRACE_DISABLED="true") == "True True"


def test_the_ingest_runtime_builds_the_record_schema_before_its_threads_use_it() -> None:
    probe = (
        "from lambdas.ingest import handler; "
        "from lambdas.common.records import InferenceRecord; "
        "before = InferenceRecord.__pydantic_complete__; handler.runtime(); "
        "print(before, InferenceRecord.__pydantic_complete__)"
    )
    environment = {
        "POWERTOOLS_TRACE_DISABLED": "true",
        "TABLE_NAME": "table",
        "ENDPOINT_NAME": "endpoint",
        "INPUT_BUCKET": "bucket",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    assert run_python(probe, **environment) == "False True"
