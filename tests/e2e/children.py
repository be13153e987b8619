"""What a test process started and has not reaped: the e2e checks that nothing is left behind."""

from __future__ import annotations

import os
from pathlib import Path


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
