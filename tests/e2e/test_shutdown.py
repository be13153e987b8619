"""Stopping local mode leaves no process and no listening port behind.

In a module of its own: the other e2e modules keep a pipeline running for their whole module,
and its event runner starts workers whenever an event or a schedule comes (as children of the
same test process), which would count here as left behind by the pipeline under test.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from asyncinfer.local.session import LocalOptions, LocalPipeline
from tests.e2e.children import child_pids

pytestmark = pytest.mark.e2e


def test_clean_shutdown_leaves_no_process_or_port_behind(tmp_path: Path) -> None:
    pipeline = LocalPipeline(LocalOptions(state_dir=tmp_path))
    before = child_pids()
    spec = pipeline.start()
    assert child_pids() - before
    pipeline.stop()
    assert not pipeline.state_file.exists()
    assert child_pids() <= before
    for url in (spec.aws_endpoint_url, spec.runtime_endpoint_url):
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(url, timeout=2)
