"""The synthesis cache shared by state folders (``ASYNCINFER_SYNTH_CACHE``): one run of the app
per sources digest and context, each state folder gets its own copy of the assembly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asyncinfer.local.provision.synth import SHARED_CACHE_VARIABLE, synthesize

# Stands in for app.py: writes a one-stack assembly into CDK_OUTDIR and counts its runs.
FAKE_APP = """
import json, os, pathlib
out = pathlib.Path(os.environ["CDK_OUTDIR"])
out.mkdir(parents=True, exist_ok=True)
context = json.loads(os.environ["CDK_CONTEXT_JSON"])
(out / "Stack.template.json").write_text(json.dumps({"Context": context}))
(out / "manifest.json").write_text(json.dumps({"artifacts": {"Stack": {
    "type": "aws:cloudformation:stack", "displayName": "Stack",
    "properties": {"templateFile": "Stack.template.json"}}}}))
with open(pathlib.Path(__file__).with_name("runs.txt"), "a") as runs:
    runs.write("run\\n")
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "stacks").mkdir(parents=True)
    (root / "app.py").write_text(FAKE_APP)
    (root / "cdk.json").write_text("{}")
    return root


def runs(project: Path) -> int:
    path = project / "runs.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


def template_context(path: Path) -> dict[str, str]:
    context: dict[str, str] = json.loads(path.read_text())["Context"]
    return context


def test_state_folders_share_one_synthesis_per_context(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SHARED_CACHE_VARIABLE, str(tmp_path / "cache"))
    first = synthesize(project, tmp_path / "a" / "cdk.out", {"k": "1"})
    second = synthesize(project, tmp_path / "b" / "cdk.out", {"k": "1"})
    assert (first.reused, second.reused) == (False, True)
    assert runs(project) == 1
    # each state folder holds its own copy: a template transform in one touches no other
    assert second.template_path == tmp_path / "b" / "cdk.out" / "Stack.template.json"
    assert template_context(second.template_path) == {"k": "1"}

    other = synthesize(project, tmp_path / "c" / "cdk.out", {"k": "2"})
    assert not other.reused
    assert runs(project) == 2
    assert template_context(other.template_path) == {"k": "2"}


def test_a_changed_source_is_synthesized_again(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SHARED_CACHE_VARIABLE, str(tmp_path / "cache"))
    synthesize(project, tmp_path / "a" / "cdk.out", {})
    (project / "stacks" / "new.py").write_text("# a change to the stack\n")
    assert not synthesize(project, tmp_path / "b" / "cdk.out", {}).reused
    assert runs(project) == 2


def test_without_the_shared_folder_each_state_folder_synthesizes(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SHARED_CACHE_VARIABLE, raising=False)
    synthesize(project, tmp_path / "a" / "cdk.out", {})
    assert synthesize(project, tmp_path / "a" / "cdk.out", {}).reused  # its own folder: reused
    assert not synthesize(project, tmp_path / "b" / "cdk.out", {}).reused
    assert runs(project) == 2
