"""One local mode per state folder (a lock naming its holder, a state file only its owner
removes), and servers that do not outlive local mode, even after a ``kill -9``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from asyncinfer.local.processes import LocalModeError, StateDirLock, project_root
from asyncinfer.local.session import LocalOptions, LocalPipeline


def test_a_second_holder_is_refused_in_one_line_naming_the_first(tmp_path: Path) -> None:
    first = StateDirLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(LocalModeError) as raised:
            StateDirLock(tmp_path).acquire()
    finally:
        first.release()
    message = str(raised.value)
    assert "\n" not in message
    assert f"local mode already runs on {tmp_path}: pid {os.getpid()} (" in message
    StateDirLock(tmp_path).acquire()  # released: free again


def test_a_refused_local_mode_leaves_the_running_ones_state_file(tmp_path: Path) -> None:
    running = StateDirLock(tmp_path)
    running.acquire()
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps({"pid": os.getpid()}))
    try:
        with pytest.raises(LocalModeError, match="already runs"):
            LocalPipeline(LocalOptions(state_dir=tmp_path)).start()
    finally:
        running.release()
    assert state_file.is_file()


PARENT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from asyncinfer.local.processes import ServerProcesses
    servers = ServerProcesses(Path(sys.argv[1]))
    servers.start("model", "asyncinfer.local.sagemaker.model_server", [], "/ping",
                  time.monotonic() + 120)
    print(servers._processes[0].pid, flush=True)
    time.sleep(600)
    """
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purpose (its parent, PID 1 or a subreaper, reaps it later)
    status = Path(f"/proc/{pid}/stat")
    return not (status.is_file() and status.read_text().split(") ", 1)[1].startswith("Z"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG)")
def test_servers_exit_when_local_mode_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=project_root(),
        env=os.environ | {"PYTHONPATH": str(project_root())},
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert alive(child)

    parent.send_signal(signal.SIGKILL)
    parent.wait()

    deadline = time.monotonic() + 20
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(child)
