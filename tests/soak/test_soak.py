"""The soak (``make soak``): SOAK_FILES object versions (default 5,000) through one local
pipeline under every fault knob at once (``scenario.py`` says which and how each is checked).

It ends with the observational line ``reliability: files=... terminal=... lost=0
duplicate_invocations=0 dlq_left=0 faults_injected=... settled_by_reconciler=... expired=...``
(tests/conftest.py prints it) and fails, so ``make soak`` exits non-zero, when anything is
lost, invoked twice, wrong or left in a queue. ``make test`` runs the same scenario on a few
dozen files (tests/reliability/test_faults.py) and never this module (the ``soak`` marker).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncinfer.local.faults import DynamoDBFaultProxy
from tests.soak.chaos import SOAK_PACE
from tests.soak.scenario import run

FILES = int(os.environ.get("SOAK_FILES", "5000"))
# The run's own deadline scales with its size and leaves room for a loaded machine (CI must not
# fail on timing alone): 48 minutes at 5,000 files. It takes about half that on this project's
# 2-core machine (docs/development.md); the waits after the uploads do not grow with the size,
# since uploads keep the pipeline's backlog bounded (scenario.BACKLOG).
pytestmark = [pytest.mark.soak, pytest.mark.timeout(15 * 60 + FILES * 0.4)]


@pytest.fixture
def table_proxy() -> Iterator[DynamoDBFaultProxy]:
    with DynamoDBFaultProxy() as proxy:
        yield proxy


def test_every_version_ends_right_once_under_every_fault_at_once(
    tmp_path: Path, table_proxy: DynamoDBFaultProxy
) -> None:
    run(tmp_path, table_proxy, FILES, SOAK_PACE)
