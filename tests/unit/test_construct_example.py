"""The construct example of docs/fitting-in.md, synthesized as a user's CDK app would run it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "fitting-in.md"
SECTION = "## Use the construct in your own CDK app"


def example() -> str:
    text = PAGE.read_text()
    section = text[text.index(SECTION) :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the section has no python example"
    return match.group(1)


def test_the_documented_example_synthesizes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDK_OUTDIR", str(tmp_path / "cdk.out"))
    monkeypatch.delenv("CDK_CONTEXT_JSON", raising=False)
    namespace: dict[str, Any] = {}
    exec(compile(example(), str(PAGE), "exec"), namespace)
    assembly = namespace["app"].synth()
    template = assembly.get_stack_by_name("TeamInference").template
    types = [resource["Type"] for resource in template["Resources"].values()]
    assert "AWS::SageMaker::Endpoint" not in types  # import mode
    assert types.count("AWS::Pipes::Pipe") == 2
    assert "AWS::Events::Rule" in types
    assert template["Outputs"]["InputBucketName"]["Value"] == "team-uploads"
    assert namespace["pipeline"].node.path == "TeamInference/Inference"
