"""Stopping local mode leaves no process and no listening port behind.

In a module of its own: the other e2e modules keep a pipeline running for their whole module,
and its event runner starts workers whenever an event or a schedule comes (as children of the
same test process), which would count here as left behind by the pipeline under test.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from multiprocessing import resource_tracker
from pathlib import Path

import pytest

from asyncinfer.local.session import LocalOptions, LocalPipeline

pytestmark = pytest.mark.e2e


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                children.append(int(entry.name))
    return children


def test_clean_shutdown_leaves_no_process_or_port_behind(tmp_path: Path) -> None:
    pipeline = LocalPipeline(LocalOptions(state_dir=tmp_path))
    # The first "spawn" worker of this test process starts multiprocessing's resource tracker,
    # which lives as long as the test process does: start it first so it counts as "before".
    resource_tracker.ensure_running()
    before = set(_children(os.getpid()))
    spec = pipeline.start()
    assert set(_children(os.getpid())) - before
    pipeline.stop()
    assert not pipeline.state_file.exists()
    assert set(_children(os.getpid())) <= before
    for url in (spec.aws_endpoint_url, spec.runtime_endpoint_url):
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(url, timeout=2)
