"""The reconciler's import chain stays lean too (its asset holds common and itself)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
HEAVY = (
    "aws_xray_sdk",
    "boto3",
    "pandas",
    "numpy",
    "sklearn",
    "moto",
    "hypothesis",
    "lambdas.ingest",
    "lambdas.results",
)


def test_the_handler_imports_nothing_heavy_and_no_other_function() -> None:
    probe = (
        "import sys, lambdas.reconciler.handler; "
        f"print(','.join(name for name in {HEAVY!r} if name in sys.modules))"
    )
    environment = dict(os.environ, POWERTOOLS_TRACE_DISABLED="true")
    output = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert output.strip() == ""
