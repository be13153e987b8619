"""Every fault knob at once on a few dozen files: ``make test``'s run of the soak's scenario
(tests/soak/scenario.py; ``make soak`` runs it at 5,000 files).

At once: throttling, 5xx, expiry and lost notifications from the endpoint, duplicate S3 events
and SNS notifications, the endpoint down and the results table refusing writes for a while,
killed ingest and results workers, stale notifications, overwrites and deletes racing ingest,
``asyncinfer redrive`` while the load runs, and the reconciler on its schedule. Expected end
state: one record per object version, terminal, holding the label the demo model gives its own
input (or the failure its kind calls for), no second invocation, and empty dead-letter queues.

The scale matters only for rare races, which is the soak's job; every behaviour is here. The
run was 500 files (and 1,000 before), which took 1.5-4 minutes of ``make test`` for the same
knobs minus the timed ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncinfer.local.faults import DynamoDBFaultProxy
from tests.soak.chaos import QUICK_PACE
from tests.soak.scenario import run

# The reconciler's expiry needs the endpoint's minimum TTL (60 s) to pass: 2-3 minutes in all.
pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

FILES = 40  # with its races: about 42 versions, every kind of file (workload.py)


@pytest.fixture
def table_proxy() -> Iterator[DynamoDBFaultProxy]:
    with DynamoDBFaultProxy() as proxy:
        yield proxy


def test_every_fault_at_once_loses_nothing_and_runs_nothing_twice(
    tmp_path: Path, table_proxy: DynamoDBFaultProxy
) -> None:
    run(tmp_path, table_proxy, FILES, QUICK_PACE)
