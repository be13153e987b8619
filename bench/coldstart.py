"""Figure 4: a fresh interpreter's time to import each handler, divided by its time to import
boto3, and each function's asset size.

Each function's asset is rebuilt as the stack packages it (``lambdas/__init__.py``,
``lambdas/common/**``, ``lambdas/<function>/**``, no bytecode) into a folder the interpreter
starts in, and is imported with ``-B``: like Lambda, which cannot write ``__pycache__`` into
``/var/task``, every cold start compiles the function's own sources, while the libraries
(boto3; Powertools and pydantic from the layer) come precompiled.

The time is taken inside the fresh interpreter, around the import statement alone
(``time.perf_counter`` before and after), so interpreter start-up is excluded on both sides.
Runs alternate between the three imports and the two tracing modes, and each figure is the
median of its runs. The modes:

* ``tracing on`` (as deployed: the functions have active tracing, so Powertools' Tracer is
  built and imports the X-Ray SDK; ``LAMBDA_TASK_ROOT`` is set, so the SDK and Powertools
  behave as in Lambda) - the goal's figure;
* ``tracing off`` (``POWERTOOLS_TRACE_DISABLED=true``, as local mode runs the handlers).
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench.settings import REPO_ROOT

FUNCTIONS = ("ingest", "results")
MODES = {
    "tracing on": {"LAMBDA_TASK_ROOT": "{asset}"},
    "tracing off": {"POWERTOOLS_TRACE_DISABLED": "true"},
}
GOAL_MODE = "tracing on"
MODULES = {
    "boto3": "boto3",
    "ingest": "lambdas.ingest.handler",
    "results": "lambdas.results.handler",
}
_PROBE = (
    "import time; started = time.perf_counter(); import {module}; "
    "elapsed = time.perf_counter() - started; import lambdas, sys; "
    "print(elapsed, lambdas.__file__ if {check} else '-')"
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
        "POWERTOOLS_METRICS_NAMESPACE": "AsyncInference",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    environment.update({name: value.format(asset=asset) for name, value in MODES[mode].items()})
    return environment


def import_seconds(module: str, function: str, mode: str, asset: Path) -> float:
    """One fresh interpreter's time to import ``module`` (checking where ``lambdas`` came
    from: the asset folder, not the repository)."""
    check = module != "boto3"
    completed = subprocess.run(
        [sys.executable, "-B", "-c", _PROBE.format(module=module, check=check)],
        cwd=asset,
        env=_environment(function, mode, asset),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    elapsed, origin = completed.stdout.split()
    if check and not Path(origin).is_relative_to(asset):
        raise RuntimeError(f"{module} was imported from {origin}, not from the asset {asset}")
    return float(elapsed)


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
    seconds: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # (mode, module)
    asset_bytes: dict[str, int] = field(default_factory=dict)
    compile_seconds: dict[str, float] = field(default_factory=dict)
    # (mode, function) -> [(package, own seconds beyond what importing boto3 loads)]
    profiles: dict[tuple[str, str], list[tuple[str, float]]] = field(default_factory=dict)

    def median(self, mode: str, module: str) -> float:
        return statistics.median(self.seconds[(mode, module)])

    def ratio(self, mode: str, function: str) -> float:
        return self.median(mode, function) / self.median(mode, "boto3")


def measure(work_dir: Path, runs: int, profile_runs: int = 3) -> ColdStart:
    result = ColdStart(runs=runs)
    assets = {function: work_dir / "assets" / function for function in FUNCTIONS}
    for function, folder in assets.items():
        result.asset_bytes[function] = build_asset(function, folder)
        result.compile_seconds[function] = compile_seconds(function)
    # boto3 is timed from the ingest asset's folder: no module of the asset is involved.
    jobs = [
        (mode, name, MODULES[name], "ingest" if name == "boto3" else name)
        for mode in MODES
        for name in MODULES
    ]
    for run in range(runs):
        for mode, name, module, function in jobs if run % 2 == 0 else jobs[::-1]:
            seconds = import_seconds(module, function, mode, assets[function])
            result.seconds.setdefault((mode, name), []).append(seconds)
    for mode in MODES:
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
