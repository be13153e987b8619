"""What a test process starts as a user would (``python -m``) and what it has not reaped: the e2e
checks that nothing is left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def child_pids() -> set[int]:
    """Processes whose parent is this one, zombies included, read from /proc.

    Leaves out multiprocessing's resource tracker: the first ``spawn`` starts that one helper
    per interpreter, shared by everything in the process, and it exits with the interpreter.
    """
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command_line = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and b"multiprocessing.resource_tracker" not in command_line:
            children.add(int(entry.name))
    return children


@contextmanager
def running_module(module: str, *arguments: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``python -m module arguments`` from the checkout, as a user runs a local-mode part, and
    the port of its ``READY <port>`` line (the first it prints); killed on exit if still up."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, *arguments],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline().split() or ["(nothing)"]
        assert ready[0] == "READY", ready
        yield process, int(ready[1])
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
