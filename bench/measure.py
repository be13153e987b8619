"""Timing, medians, CPU time of a process tree, and profiles grouped by package."""

from __future__ import annotations

import cProfile
import os
import pstats
import resource
import statistics
import sysconfig
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bench.settings import REPO_ROOT

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
Sample = TypeVar("Sample")


def median(samples: Sequence[float]) -> float:
    if not samples:
        raise ValueError("no samples to take the median of")
    return statistics.median(samples)


def split(samples: Sequence[Sample], rounds: int) -> list[list[Sample]]:
    """``samples`` (taken one after the other) cut into ``rounds`` consecutive rounds of equal
    size, the first ones one longer when they do not divide evenly."""
    if rounds < 1 or len(samples) < rounds:
        raise ValueError(f"{len(samples)} samples cannot make {rounds} rounds")
    size, longer = divmod(len(samples), rounds)
    parts: list[list[Sample]] = []
    start = 0
    for index in range(rounds):
        end = start + size + (1 if index < longer else 0)
        parts.append(list(samples[start:end]))
        start = end
    return parts


def timed(action: Callable[[], Any]) -> float:
    """Wall seconds of one call."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def interleaved(
    repetitions: int, sides: dict[str, Callable[[int], float]], after_each: Callable[[], None]
) -> dict[str, list[float]]:
    """Runs every side once per repetition, alternating the order between repetitions (so
    neither side always runs first), calling ``after_each`` (untimed) after every run.

    Each side gets the repetition number and returns the seconds it measured.
    """
    samples: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for repetition in range(repetitions):
        order = names if repetition % 2 == 0 else names[::-1]
        for name in order:
            samples[name].append(sides[name](repetition))
            after_each()
    return samples


# --- CPU time of this process and everything it started ---------------------------------


def _proc_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a live process from /proc (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    # fields[0] is the state (field 3 of stat); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


def descendants(root: int) -> list[int]:
    """Live processes below ``root`` (children, grandchildren, ...)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _parent_of(int(entry.name))
            if parent is not None:
                children[parent].append(int(entry.name))
    found: list[int] = []
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


@dataclass(frozen=True)
class CpuSnapshot:
    own: float  # this process
    reaped: float  # children that exited and were waited for
    live: dict[int, float]  # live descendants by pid

    @property
    def total(self) -> float:
        return self.own + self.reaped + sum(self.live.values())


def cpu_snapshot() -> CpuSnapshot:
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    live: dict[int, float] = {}
    for pid in descendants(os.getpid()):
        seconds = _proc_cpu_seconds(pid)
        if seconds is not None:
            live[pid] = seconds
    return CpuSnapshot(
        own=own.ru_utime + own.ru_stime,
        reaped=reaped.ru_utime + reaped.ru_stime,
        live=live,
    )


def cpu_between(start: CpuSnapshot, end: CpuSnapshot) -> float:
    """CPU seconds all processes of the tree used between two snapshots.

    A process that started in between counts from zero; one that exited and was reaped in
    between counts through ``reaped`` (its whole life, a slight overcount if it was old).
    """
    live = sum(seconds - start.live.get(pid, 0.0) for pid, seconds in end.live.items())
    return (end.own - start.own) + (end.reaped - start.reaped) + live


# --- profiles -----------------------------------------------------------------------------

_WAITING = ("acquire", "select", "poll", "recv", "recv_into", "sleep", "wait", "epoll")
_SITE_PACKAGES = sysconfig.get_paths()["purelib"]
_PLATLIB = sysconfig.get_paths()["platlib"]
_STDLIB = sysconfig.get_paths()["stdlib"]


def _package_of(filename: str, function: str) -> str:
    """The bucket a profiled function's own time goes to."""
    if filename == "~":  # a built-in
        if any(word in function for word in _WAITING):
            return "waiting (sockets, locks, sleeps)"
        return "built-ins (json, hashing, str, ...)"
    for site in (_SITE_PACKAGES, _PLATLIB):
        if filename.startswith(site):
            top = Path(filename).relative_to(site).parts[0]
            return top.removesuffix(".py")
    if filename.startswith(str(REPO_ROOT)):
        parts = Path(filename).relative_to(REPO_ROOT).parts
        return "/".join(parts[:2]) if parts[0] == "lambdas" else parts[0]
    if filename.startswith(_STDLIB) or filename.startswith("<frozen"):
        return "stdlib"
    return "other"


def profile_by_package(action: Callable[[], Any], repetitions: int) -> list[tuple[str, float]]:
    """Own (not cumulative) time per package over ``repetitions`` calls, largest first, as
    fractions of the profiled total. Profiles the calling thread only."""
    profiler = cProfile.Profile()
    for _ in range(repetitions):
        profiler.enable()
        try:
            action()
        finally:
            profiler.disable()
    stats = pstats.Stats(profiler)
    totals: dict[str, float] = defaultdict(float)
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    for (filename, _, function), (_, _, own_time, _, _) in raw.items():
        totals[_package_of(filename, function)] += own_time
    overall = sum(totals.values()) or 1.0
    return sorted(
        ((package, seconds / overall) for package, seconds in totals.items()),
        key=lambda entry: -entry[1],
    )
