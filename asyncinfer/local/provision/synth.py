"""Synthesizes the CDK app for local mode; reuses the template while its sources are unchanged."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# What the template depends on: a change to any of these triggers a new synthesis.
SOURCES = ("app.py", "cdk.json", "stacks", "asyncinfer/model", "requirements.txt")
SYNTH_TIMEOUT_SECONDS = 300
# A folder of cloud assemblies shared by many state folders, one per sources digest (which
# covers the context): the test suite starts local mode in a fresh folder each time, and a
# synthesis costs seconds of Node.js start-up. Unset: each state folder synthesizes for itself.
SHARED_CACHE_VARIABLE = "ASYNCINFER_SYNTH_CACHE"


class SynthError(Exception):
    """The CDK app did not synthesize; the message carries its own error line."""


@dataclass(frozen=True)
class Synthesized:
    stack_name: str
    template_path: Path
    reused: bool


def _sources_digest(project_root: Path, context: dict[str, str]) -> str:
    digest = hashlib.sha256(json.dumps(context, sort_keys=True).encode())
    for source in SOURCES:
        path = project_root / source
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts:
                digest.update(str(file.relative_to(project_root)).encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()


def _stack_template(out_dir: Path) -> tuple[str, Path]:
    manifest = json.loads((out_dir / "manifest.json").read_text())
    for artifact in manifest.get("artifacts", {}).values():
        if artifact.get("type") == "aws:cloudformation:stack":
            properties = artifact["properties"]
            name = properties.get("stackName") or artifact.get("displayName")
            return str(name), out_dir / properties["templateFile"]
    raise SynthError(f"{out_dir}/manifest.json names no CloudFormation stack")


def synthesize(project_root: Path, out_dir: Path, context: dict[str, str]) -> Synthesized:
    """Runs ``python app.py`` into ``out_dir`` (offline: jsii uses the local Node)."""
    if not (project_root / "app.py").is_file():
        raise SynthError(
            f"local mode synthesizes the CDK app of a clone of the repository; {project_root} "
            "has no app.py (an installed package: run local mode from a clone, point the CLI "
            "at it with ASYNCINFER_LOCAL_DIR)"
        )
    digest = _sources_digest(project_root, context)
    reused = _reusable(out_dir, digest)
    if reused is not None:
        return reused
    shared = _shared_assembly(digest)
    if shared is not None and _reusable(shared, digest) is not None:
        shutil.rmtree(out_dir, ignore_errors=True)
        shutil.copytree(shared, out_dir)
        stack_name, template = _stack_template(out_dir)
        return Synthesized(stack_name, template, reused=True)
    _run_app(project_root, out_dir, context)
    stack_name, template = _stack_template(out_dir)
    (out_dir / ".sources-digest").write_text(digest)
    if shared is not None:
        _share(out_dir, shared)
    return Synthesized(stack_name, template, reused=False)


def _reusable(out_dir: Path, digest: str) -> Synthesized | None:
    """The assembly in ``out_dir`` if it was synthesized from these sources and context."""
    stamp = out_dir / ".sources-digest"
    if stamp.is_file() and stamp.read_text() == digest:
        stack_name, template = _stack_template(out_dir)
        if template.is_file():
            return Synthesized(stack_name, template, reused=True)
    return None


def _shared_assembly(digest: str) -> Path | None:
    folder = os.environ.get(SHARED_CACHE_VARIABLE)
    return Path(folder) / digest if folder else None


def _share(out_dir: Path, shared: Path) -> None:
    """Copies the assembly into the shared cache; a whole copy appears at once (rename), so a
    concurrent reader never sees half of one, and the first of two writers wins."""
    shared.parent.mkdir(parents=True, exist_ok=True)
    partial = shared.parent / f".{shared.name}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(out_dir, partial)
    try:
        partial.rename(shared)
    except OSError:  # another process shared the same digest first
        shutil.rmtree(partial, ignore_errors=True)


def _run_app(project_root: Path, out_dir: Path, context: dict[str, str]) -> None:
    environment = os.environ | {
        "CDK_OUTDIR": str(out_dir),
        "CDK_CONTEXT_JSON": json.dumps(context),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }
    completed = subprocess.run(
        [sys.executable, "app.py"],
        cwd=project_root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=SYNTH_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        lines = (completed.stderr or completed.stdout).strip().splitlines()
        raise SynthError(lines[-1] if lines else f"app.py exited with {completed.returncode}")
