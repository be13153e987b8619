"""The construct example of docs/fitting-in.md, synthesized as a user's CDK app would run it."""

from __future__ import annotations

import json
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


def test_the_construct_synthesizes_in_a_bare_app_under_cdk_nag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh App() without cdk.json's feature flags, the endpoint created (its buckets log to
    the access-log bucket): no flag needed, log delivery by bucket policy, cdk-nag 3 clean."""
    from aws_cdk import App, Stack, Validations
    from cdk_nag import AwsSolutionsChecks

    from asyncinfer.construct import AsyncInferencePipeline, StackConfig

    monkeypatch.delenv("CDK_CONTEXT_JSON", raising=False)
    app = App(outdir=str(tmp_path / "cdk.out"))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = Stack(app, "Bare")
    AsyncInferencePipeline(stack, "Inference", config=StackConfig())
    template = app.synth().get_stack_by_name("Bare").template

    resources = template["Resources"].values()
    buckets = [r for r in resources if r["Type"] == "AWS::S3::Bucket"]
    assert buckets
    assert all("AccessControl" not in r["Properties"] for r in buckets)
    policies = json.dumps([r for r in resources if r["Type"] == "AWS::S3::BucketPolicy"])
    assert "logging.s3.amazonaws.com" in policies
