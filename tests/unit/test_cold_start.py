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
INGEST_ENVIRONMENT = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "TABLE_NAME": "table",
    "ENDPOINT_NAME": "endpoint",
    "INPUT_BUCKET": "bucket",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}


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
    assert run_python(probe, **INGEST_ENVIRONMENT) == "False True"


@pytest.mark.parametrize("function", ["ingest.handler.runtime", "results.handler.processor"])
def test_a_function_never_loads_boto3(function: str) -> None:
    """The functions use botocore clients; boto3's package import (its session, resource
    factory and s3transfer) would add about 17 ms to every cold start for nothing."""
    module, builder = function.rsplit(".", 1)
    probe = (
        f"import sys; from lambdas.{module} import {builder}; {builder}(); "
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'boto3'))"
    )
    assert run_python(probe, **INGEST_ENVIRONMENT) == "[]"
