"""Synthesizes the CDK app for local mode; reuses the template while its sources are unchanged."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# What the template depends on: a change to any of these triggers a new synthesis.
SOURCES = ("app.py", "cdk.json", "stacks", "asyncinfer/model", "requirements.txt")
SYNTH_TIMEOUT_SECONDS = 300


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
    stamp = out_dir / ".sources-digest"
    if stamp.is_file() and stamp.read_text() == digest:
        stack_name, template = _stack_template(out_dir)
        if template.is_file():
            return Synthesized(stack_name, template, reused=True)
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
    stack_name, template = _stack_template(out_dir)
    stamp.write_text(digest)
    return Synthesized(stack_name, template, reused=False)
