"""Figure 4: a fresh interpreter's time to import each handler, divided by its time to import
boto3, and each function's asset size.

Each function's asset is rebuilt as the stack packages it (``lambdas/__init__.py``,
``lambdas/common/**``, ``lambdas/<function>/**``, no bytecode) into a folder the interpreter
starts in, and is imported with ``-B``: like Lambda, which cannot write ``__pycache__`` into
``/var/task``, every cold start compiles the function's own sources, while the libraries
(boto3; Powertools and pydantic from the layer) come precompiled.

The time is taken inside the fresh interpreter, around the import statement alone, so
interpreter start-up is excluded on both sides. It is the process's CPU time
(``time.process_time``): an import is CPU-bound (its files are in the page cache), and on a
shared machine the CPU time does not count the moments another process held the core, which
the wall time does. The wall time is recorded too, for context. Every run times each import in
each mode once, in an order shuffled per run, and each figure is the median of its runs. The
modes:

* ``tracing on`` (as deployed: the functions have active tracing, so the handlers build
  Powertools' Tracer, which imports the X-Ray SDK, on their first invocation;
  ``LAMBDA_TASK_ROOT`` is set, so the SDK and Powertools behave as in Lambda) - the goal's
  figure;
* ``tracing off`` (``POWERTOOLS_TRACE_DISABLED=true``, as local mode runs the handlers);
* ``tracing on, no GC`` (context, not a goal): as deployed, with the garbage collector paused
  by the probe during the import (``gc.disable()`` before, ``gc.freeze()`` and ``gc.enable()``
  after), to show how much of an import is collection passes over the objects imports
  allocate. The handlers pause it themselves during their import, so for them this mode
  differs from ``tracing on`` by noise only; for boto3 it shows what the pause is worth.

Beside the import, ``bench/first_call.py`` times the first invocation that follows it, in the
goal's mode: what a handler defers out of its import is paid there, so import plus first
invocation is what a cold start costs, and what Lambda bills. The goals compare that sum with
the same sum for the naive handler (``bench/naive.py``: its import, which creates its three
clients, and its first file), timed by the same probe in the same runs
(``cold_start_vs_naive_*``); ``cold_start_vs_naive_results_handler`` compares the results
function with a results handler as public samples write it (``bench/naive_results.py``). The
yardsticks are copied into asset folders of their own (``assets/naive``, ...), compiled at
import like the functions' sources.

The runs are split into rounds (``ColdStart.rounds``): each round's figure is the median of its
runs, and a goal is met only when every round meets it.

Besides boto3 and the two handlers, ``botocore`` (its session, config and exceptions: all the
handlers use of the SDK) is timed for context: the difference is what boto3's own layer
(resources, s3transfer) costs the handlers without being used by them.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench import first_call
from bench.measure import split
from bench.settings import REPO_ROOT
from lambdas.common.contract import METRICS_NAMESPACE

FUNCTIONS = ("ingest", "results")
TRACING_ON = {"LAMBDA_TASK_ROOT": "{asset}"}
# mode -> (environment, whether the collector is paused during the import)
MODES: dict[str, tuple[dict[str, str], bool]] = {
    "tracing on": (TRACING_ON, False),
    "tracing off": ({"POWERTOOLS_TRACE_DISABLED": "true"}, False),
    "tracing on, no GC": (TRACING_ON, True),
}
GOAL_MODE = "tracing on"
FIRST_CALL = "first call"  # a job: import, then first invocation (goal's mode)
PROFILED_MODES = ("tracing on", "tracing off")
MODULES = {
    "boto3": "boto3",
    "botocore": "botocore.session, botocore.config, botocore.exceptions",
    "ingest": "lambdas.ingest.handler",
    "results": "lambdas.results.handler",
}
_PROBE = (
    "import gc, time; cpu, wall = time.process_time(), time.perf_counter(); "
    "{pause}import {module}; {resume}"
    "cpu, wall = time.process_time() - cpu, time.perf_counter() - wall; import lambdas; "
    "print(cpu, wall, lambdas.__file__ if {check} else '-')"
)


def asset_files(function: str) -> list[Path]:
    """The repository files the stack packages into ``function``'s asset."""
    lambdas = REPO_ROOT / "lambdas"
    files = [lambdas / "__init__.py"]
    for folder in (lambdas / "common", lambdas / function):
        files += sorted(
            path
            for path in folder.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
        )
    return files


def build_asset(function: str, destination: Path) -> int:
    """Copies the asset's files to ``destination``; returns the zipped size in bytes."""
    shutil.rmtree(destination, ignore_errors=True)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for source in asset_files(function):
            relative = source.relative_to(REPO_ROOT)
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            zipped.write(source, str(relative))
    return len(archive.getvalue())


def build_naive_asset(name: str, destination: Path) -> None:
    """A folder holding only the yardstick ``bench/<name>.py``, as the module ``<name>``."""
    shutil.rmtree(destination, ignore_errors=True)
    destination.mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / "bench" / f"{name}.py", destination / f"{name}.py")


def compile_seconds(function: str) -> float:
    """Compiling the asset's sources once (best of 5): part of every cold import on Lambda."""
    sources = [(path.read_text(), str(path)) for path in asset_files(function)]
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for text, name in sources:
            compile(text, name, "exec")
        best = min(best, time.perf_counter() - started)
    return best


def _environment(function: str, mode: str, asset: Path) -> dict[str, str]:
    environment = {
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": "C.UTF-8",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": function,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    variables, _ = MODES[mode]
    environment.update({name: value.format(asset=asset) for name, value in variables.items()})
    return environment


def import_seconds(module: str, function: str, mode: str, asset: Path) -> tuple[float, float]:
    """One fresh interpreter's CPU and wall time to import ``module`` (checking where
    ``lambdas`` came from: the asset folder, not the repository)."""
    check = module.startswith("lambdas")
    _, pause_gc = MODES[mode]
    probe = _PROBE.format(
        module=module,
        check=check,
        pause="gc.disable(); " if pause_gc else "",
        resume="gc.freeze(); gc.enable(); " if pause_gc else "",
    )
    completed = subprocess.run(
        [sys.executable, "-B", "-c", probe],
        cwd=asset,
        env=_environment(function, mode, asset),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    cpu, wall, origin = completed.stdout.split()
    if check and not Path(origin).is_relative_to(asset):
        raise RuntimeError(f"{module} was imported from {origin}, not from the asset {asset}")
    return float(cpu), float(wall)


def import_profile(module: str, function: str, mode: str, asset: Path) -> dict[str, float]:
    """``-X importtime``: own import time (seconds) per module of one fresh interpreter."""
    completed = subprocess.run(
        [sys.executable, "-B", "-X", "importtime", "-c", f"import {module}"],
        cwd=asset,
        env=_environment(function, mode, asset),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    own: dict[str, float] = {}
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line.removeprefix("import time:").split("|")
        own[name.strip()] = int(self_us) / 1e6
    return own


def _group(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "lambdas" and len(parts) > 1:
        return f"lambdas.{parts[1]} (compile + module code)"
    if parts[0] == "aws_lambda_powertools" and len(parts) > 2:
        return ".".join(parts[:3])
    return parts[0]


@dataclass
class ColdStart:
    runs: int
    # (mode, module) -> CPU seconds of each run, and wall seconds
    seconds: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    wall_seconds: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    asset_bytes: dict[str, int] = field(default_factory=dict)
    compile_seconds: dict[str, float] = field(default_factory=dict)
    # (mode, function) -> [(package, own seconds beyond what importing boto3 loads)]
    profiles: dict[tuple[str, str], list[tuple[str, float]]] = field(default_factory=dict)
    # function or yardstick -> CPU seconds of the import, then of the first invocation, of
    # each run
    first_calls: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def rounds(self, count: int) -> list[ColdStart]:
        """The runs split into ``count`` rounds of consecutive runs, each its own ColdStart."""
        parts: list[ColdStart] = []
        for index in range(count):
            parts.append(
                ColdStart(
                    runs=len(split(self.first_calls["ingest"], count)[index]),
                    seconds={k: split(v, count)[index] for k, v in self.seconds.items()},
                    wall_seconds={k: split(v, count)[index] for k, v in self.wall_seconds.items()},
                    asset_bytes=self.asset_bytes,
                    compile_seconds=self.compile_seconds,
                    profiles=self.profiles,
                    first_calls={k: split(v, count)[index] for k, v in self.first_calls.items()},
                )
            )
        return parts

    def median(self, mode: str, module: str) -> float:
        return statistics.median(self.seconds[(mode, module)])

    def median_wall(self, mode: str, module: str) -> float:
        return statistics.median(self.wall_seconds[(mode, module)])

    def ratio(self, mode: str, function: str) -> float:
        return self.median(mode, function) / self.median(mode, "boto3")

    def first_invocation(self, function: str) -> float:
        """Median CPU seconds of the first invocation after the import (goal's mode)."""
        return statistics.median(invoked for _, invoked in self.first_calls[function])

    def cold_start(self, function: str) -> float:
        """Median CPU seconds of the import plus the first invocation (goal's mode)."""
        return statistics.median(sum(run) for run in self.first_calls[function])

    def cold_start_ratio(self, function: str) -> float:
        return self.cold_start(function) / self.median(GOAL_MODE, "boto3")

    def cold_start_vs(self, function: str, yardstick: str) -> float:
        """Import plus first invocation of ``function`` over the same of a yardstick."""
        return self.cold_start(function) / self.cold_start(yardstick)


def measure(work_dir: Path, runs: int, profile_runs: int = 3) -> ColdStart:
    result = ColdStart(runs=runs)
    assets = {function: work_dir / "assets" / function for function in FUNCTIONS}
    for function, folder in assets.items():
        result.asset_bytes[function] = build_asset(function, folder)
        result.compile_seconds[function] = compile_seconds(function)
    for name in first_call.NAIVE:
        assets[name] = work_dir / "assets" / name
        build_naive_asset(name, assets[name])
    # The SDK is timed from the ingest asset's folder: no module of the asset is involved.
    jobs = [
        (mode, name, MODULES[name], name if name in FUNCTIONS else "ingest")
        for mode in MODES
        for name in MODULES
    ]
    jobs += [(FIRST_CALL, name, "", name) for name in (*FUNCTIONS, *first_call.NAIVE)]
    with first_call.refusing_endpoint() as endpoint_url:
        for run in range(runs):
            random.Random(run).shuffle(jobs)
            for mode, name, module, function in jobs:
                if mode == FIRST_CALL:
                    served = first_call.NAIVE.get(function, function)
                    environment = _environment(served, GOAL_MODE, assets[function])
                    result.first_calls.setdefault(function, []).append(
                        first_call.first_call_seconds(
                            function, assets[function], environment, endpoint_url
                        )
                    )
                    continue
                cpu, wall = import_seconds(module, function, mode, assets[function])
                result.seconds.setdefault((mode, name), []).append(cpu)
                result.wall_seconds.setdefault((mode, name), []).append(wall)
    for mode in PROFILED_MODES:
        baseline = _median_profile(
            [import_profile("boto3", "ingest", mode, assets["ingest"]) for _ in range(profile_runs)]
        )
        for function in FUNCTIONS:
            profile = _median_profile(
                [
                    import_profile(MODULES[function], function, mode, assets[function])
                    for _ in range(profile_runs)
                ]
            )
            grouped: dict[str, float] = defaultdict(float)
            for module, seconds in profile.items():
                if module not in baseline:
                    grouped[_group(module)] += seconds
            result.profiles[(mode, function)] = sorted(grouped.items(), key=lambda kv: -kv[1])
    return result


def _median_profile(profiles: list[dict[str, float]]) -> dict[str, float]:
    names = set().union(*profiles)
    return {
        name: statistics.median(profile.get(name, 0.0) for profile in profiles) for name in names
    }
