"""Synthesizes, ahead of time, the CDK contexts the local-pipeline tests start local mode with.

With ``make test`` one pytest-xdist worker runs most local pipelines one at a time: it is the
run's critical path, and each new context costs it a synthesis (Node.js start-up and cdk-nag:
15-30 s on two busy cores). The controller process, idle otherwise, starts
``python -m tests.presynth <cache folder>`` at the beginning of the run (tests/conftest.py): it
fills the session's shared synthesis cache (``asyncinfer.local.provision.synth``), in the order
the tests meet the contexts, while the worker runs the tests before them. A context the worker
reaches first it synthesizes itself, as without this; the cache's atomic rename keeps either
copy whole. A context missing from this list costs time, never a wrong template: the cache is
keyed by the sources and the context.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from asyncinfer.local.processes import project_root
from asyncinfer.local.provision.synth import SHARED_CACHE_VARIABLE, SynthError, synthesize


def contexts() -> list[dict[str, str]]:
    """Roughly in the order the local-pipeline workers need them, each once. The first
    module's context (tests/e2e/test_eventbridge_pipeline.py, seconds into the run) is left to
    its worker: it would get there first anyway; so is the fault run's (the soak's scenario),
    which starts the other local-pipeline worker; the reconciler's, which that worker needs
    minutes later, is among them."""
    from tests.reliability.support import FAST_CONTEXT
    from tests.reliability.test_bad_inputs import METADATA_CONTEXT
    from tests.reliability.test_iam_denials import ONE_DELIVERY, WITHOUT_INLINE
    from tests.reliability.test_reconciler import CONTEXT as RECONCILER_CONTEXT

    ordered = [
        {},  # tests/e2e: jobs, the pipeline, outputs and versions
        {**FAST_CONTEXT, **METADATA_CONTEXT},
        {**FAST_CONTEXT, **ONE_DELIVERY},
        {**FAST_CONTEXT, **ONE_DELIVERY, **WITHOUT_INLINE},
        FAST_CONTEXT,
        {**FAST_CONTEXT, **RECONCILER_CONTEXT},
    ]
    unique: list[dict[str, str]] = []
    for context in ordered:
        if context not in unique:
            unique.append(context)
    return unique


def start(cache: Path) -> subprocess.Popen[bytes]:
    """This module in its own process group (``stop`` ends it and its synthesis together)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.presynth", str(cache)],
        cwd=project_root(),
        env=os.environ | {SHARED_CACHE_VARIABLE: str(cache)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def main(cache: Path) -> None:
    for number, context in enumerate(contexts()):
        try:
            synthesize(project_root(), cache / f".presynth-{number}" / "cdk.out", context)
        except SynthError:
            continue  # the test that needs it synthesizes again and reports the error


if __name__ == "__main__":
    main(Path(sys.argv[1]))
