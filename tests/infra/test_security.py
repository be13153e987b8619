"""Security checks on the synthesized template: checkov, and no IAM wildcard beyond AWS's needs.

checkov conflicts with this project's pins (it pins boto3 1.35, networkx < 2.7, packaging 23),
so it runs from its own virtual environment, ``.venv-checkov`` (``make`` creates it from
``requirements-checkov.txt`` and ``constraints-checkov.txt``). Skipped checks live in
``.checkov.yaml``, each justified.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.infra.assembly import Synthesized, synthesize

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_CONFIG = ROOT / ".checkov.yaml"
STACK_NAME = "AsyncInference"

# Actions that have no resource-level permissions: AWS requires Resource "*" for them.
WILDCARD_RESOURCE_ACTIONS = frozenset(
    {
        "xray:PutTraceSegments",  # Lambda active tracing
        "xray:PutTelemetryRecords",  # Lambda active tracing
        "ecr:GetAuthorizationToken",  # SageMaker pulling the model image
        "cloudwatch:PutMetricData",  # SageMaker endpoint metrics (limited by namespace)
        "dynamodb:ListStreams",  # the result-event pipes' DynamoDB stream source
    }
)
POLICY_RESOURCE_TYPES = (
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::S3::BucketPolicy",
)
# Own-model create mode and import mode add or change statements: check them too.
VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    "own-model": {
        "model_image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-model:1",
        "model_data_url": "s3://my-models-bucket/model.tar.gz",
    },
    "import": {
        "endpoint_mode": "import",
        "endpoint_name": "existing-endpoint",
        "success_topic_arn": "arn:aws:sns:us-east-1:123456789012:existing-success",
        "error_topic_arn": "arn:aws:sns:us-east-1:123456789012:existing-error",
        "output_bucket_name": "existing-output-bucket",
    },
}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def synthesized(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Synthesized:
    name: str = request.param
    arguments = dict(VARIANTS[name])
    result = synthesize(arguments, tmp_path_factory.mktemp(f"security-{name}"))
    assert result.synth_error is None, result.synth_error
    return result


def policy_documents(template: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(logical id, document) for every permission policy: identity and resource policies."""
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                yield logical_id, policy["PolicyDocument"]
        elif resource["Type"] in POLICY_RESOURCE_TYPES:
            yield logical_id, properties["PolicyDocument"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcard_findings(template: Mapping[str, Any]) -> list[str]:
    findings = []
    for logical_id, document in policy_documents(template):
        for statement in as_list(document["Statement"]):
            statement_actions = as_list(statement.get("Action", []))
            if "*" in statement_actions or statement.get("NotAction") is not None:
                findings.append(f"{logical_id}: Action '*' (or NotAction) in {statement}")
            if "*" in as_list(statement.get("Resource", [])) or "NotResource" in statement:
                extra = set(statement_actions) - WILDCARD_RESOURCE_ACTIONS
                if extra:
                    findings.append(f"{logical_id}: Resource '*' for {sorted(extra)}")
    return findings


def test_the_wildcard_scan_catches_what_it_must() -> None:
    template = {
        "Resources": {
            "Ok": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyDocument": {
                        "Statement": [
                            {"Effect": "Allow", "Action": "xray:PutTraceSegments", "Resource": "*"}
                        ]
                    }
                },
            },
            "Bad": {
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {
                    "PolicyDocument": {
                        "Statement": [
                            {"Effect": "Allow", "Action": "*", "Resource": "arn:x"},
                            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]},
                        ]
                    }
                },
            },
        }
    }
    findings = wildcard_findings(template)
    assert len(findings) == 2
    assert all(finding.startswith("Bad:") for finding in findings)


def test_no_iam_statement_grants_a_wildcard_beyond_what_aws_requires(
    synthesized: Synthesized,
) -> None:
    assert list(policy_documents(synthesized.template)), "no policy found: the scan is broken"
    assert wildcard_findings(synthesized.template) == []


def test_every_skipped_checkov_check_is_justified() -> None:
    lines = CHECKOV_CONFIG.read_text().splitlines()
    start = lines.index("skip-check:")
    skips = [line for line in lines[start + 1 :] if line.startswith("  - ")]
    assert skips
    for line in skips:
        match = re.fullmatch(r"  - (CKV2?_AWS_\d+)  # (.{40,})", line)
        assert match, f"a skip needs an id and a justification of a sentence: {line!r}"


def in_ci(environ: Mapping[str, str]) -> bool:
    """CI systems set ``CI`` (GitHub Actions, GitLab, CircleCI, ...): ``true``, ``1``, any text."""
    return environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_checkov(checkov: Path, environ: Mapping[str, str]) -> None:
    """Skip when checkov is not installed on a developer's machine; fail in CI, where a
    missing ``.venv-checkov`` would otherwise turn the security scan into a silent skip."""
    if checkov.is_file():
        return
    message = (
        f"CHECKOV NOT INSTALLED: {checkov} is missing; create it with "
        "`python3 -m venv .venv-checkov && .venv-checkov/bin/pip install "
        "-r requirements-checkov.txt -c constraints-checkov.txt` (checkov conflicts with "
        "the project's pins)"
    )
    if in_ci(environ):
        pytest.fail(f"{message}; CI is set, so this fails instead of skipping")
    pytest.skip(message)


def outcome_of(checkov: Path, environ: Mapping[str, str]) -> str:
    """What ``require_checkov`` does, as text: a skip must not skip the test that checks it."""
    try:
        require_checkov(checkov, environ)
    except pytest.fail.Exception as failure:
        return f"failed: {failure}"
    except pytest.skip.Exception as skip:
        return f"skipped: {skip}"
    return "ran"


@pytest.mark.parametrize("value", ["true", "1", "yes", "True"])
def test_a_missing_checkov_fails_in_ci(tmp_path: Path, value: str) -> None:
    outcome = outcome_of(tmp_path / "checkov", {"CI": value})
    assert outcome.startswith("failed: CHECKOV NOT INSTALLED"), outcome


@pytest.mark.parametrize("environ", [{}, {"CI": ""}, {"CI": "false"}, {"CI": "0"}])
def test_a_missing_checkov_skips_outside_ci(tmp_path: Path, environ: dict[str, str]) -> None:
    outcome = outcome_of(tmp_path / "checkov", environ)
    assert outcome.startswith("skipped: CHECKOV NOT INSTALLED"), outcome


def test_an_installed_checkov_neither_skips_nor_fails(tmp_path: Path) -> None:
    (tmp_path / "checkov").write_text("#!/bin/sh\n")
    assert outcome_of(tmp_path / "checkov", {"CI": "true"}) == "ran"


def test_checkov_passes_on_the_synthesized_template(synthesized: Synthesized) -> None:
    require_checkov(CHECKOV, os.environ)
    template = synthesized.outdir / f"{STACK_NAME}.template.json"
    completed = subprocess.run(
        [str(CHECKOV), "--config-file", str(CHECKOV_CONFIG), "-f", str(template), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=ROOT,
    )
    report = json.loads(completed.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for each in reports
        for check in each["results"]["failed_checks"]
    ]
    assert failed == [], "\n".join(failed)
    assert all(each["summary"]["parsing_errors"] == 0 for each in reports)
    assert sum(each["summary"]["passed"] for each in reports) > 50, completed.stderr[-2000:]
