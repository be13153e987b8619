"""Synthesis for the infrastructure tests (each module synthesizes once: it takes seconds)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")


@dataclass(frozen=True)
class Synthesized:
    template: dict[str, Any]
    validation_report: dict[str, Any]
    synth_error: str | None
    outdir: Path

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """Logical id -> resource, for every resource of this type."""
        return {
            logical_id: resource
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] == resource_type
        }

    def properties(self, logical_id: str) -> dict[str, Any]:
        return dict(self.template["Resources"][logical_id].get("Properties", {}))

    def output(self, name: str) -> Any:
        return self.template["Outputs"][name]["Value"]

    def output_target(self, name: str) -> str:
        """The logical id an output refers to (by Ref or Fn::GetAtt)."""
        return target(self.output(name))

    def role_of_function(self, function_id: str) -> str:
        return target(self.properties(function_id)["Role"])

    def statements(self, role_id: str) -> list[dict[str, Any]]:
        """Every identity-policy statement attached to a role, inline or as AWS::IAM::Policy."""
        found = [
            statement
            for policy in self.properties(role_id).get("Policies", [])
            for statement in policy["PolicyDocument"]["Statement"]
        ]
        for policy in self.resources("AWS::IAM::Policy").values():
            if {"Ref": role_id} in policy["Properties"].get("Roles", []):
                found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
        return found

    def queue_policy_statements(self, queue_id: str) -> list[dict[str, Any]]:
        return [
            statement
            for policy in self.resources("AWS::SQS::QueuePolicy").values()
            if {"Ref": queue_id} in policy["Properties"]["Queues"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]


def target(value: Any) -> str:
    """The logical id a ``Ref`` or ``Fn::GetAtt`` points at."""
    if isinstance(value, Mapping):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    raise AssertionError(f"expected a Ref or Fn::GetAtt, got {value!r}")


def actions(statement: Mapping[str, Any]) -> set[str]:
    value = statement["Action"]
    return {value} if isinstance(value, str) else set(value)


def resources_of(statement: Mapping[str, Any]) -> list[Any]:
    value = statement["Resource"]
    return value if isinstance(value, list) else [value]


def literal_text(value: Any) -> str:
    """The literal parts of a string or ``Fn::Join`` (other intrinsics left out)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(literal_text(item) for item in value)
    if isinstance(value, Mapping) and "Fn::Join" in value:
        return literal_text(value["Fn::Join"][1])
    return ""


def synthesize(arguments: Mapping[str, str], outdir: Path) -> Synthesized:
    """Build and synthesize the app in this process, as ``python app.py -c ...`` would.

    cdk-nag findings make ``synth()`` raise after writing the template and the validation
    report; the error is kept so that the nag test reports the findings instead.
    """
    import app  # starts the jsii runtime

    application = app.build_app(arguments, outdir=str(outdir))
    synth_error = None
    try:
        application.synth()
    except RuntimeError as error:
        synth_error = str(error)
    stack_name = arguments.get("stack_name", "AsyncInference")
    template = json.loads((outdir / f"{stack_name}.template.json").read_text())
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return Synthesized(template, report, synth_error, outdir)


# Variables the Lambda runtime and Powertools read (stacks/function.py sets the POWERTOOLS_* ones
# for every function); a function's config model never sees them.
RUNTIME_VARIABLE_PREFIXES = ("POWERTOOLS_", "AWS_", "_X_AMZN_", "LAMBDA_")


def variables_read_by(model: type[BaseModel]) -> set[str]:
    """The variables a config model reads: each field's alias, else its name upper-cased."""
    return {field.alias or name.upper() for name, field in model.model_fields.items()}


def configuration_variables(synthesized: Synthesized, function_id: str) -> set[str]:
    """The variables the stack sets on a function, less those the runtime itself reads."""
    variables = synthesized.properties(function_id)["Environment"]["Variables"]
    return {name for name in variables if not name.startswith(RUNTIME_VARIABLE_PREFIXES)}


def violations(synthesized: Synthesized) -> list[str]:
    """Every cdk-nag finding and construct annotation of the validation report, one per line."""
    return [
        f"{violation['severity']} {violation['ruleName']} {construct['constructPath']}"
        for plugin in synthesized.validation_report.get("pluginReports", [])
        for violation in plugin.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
    ]


def cfn_lint_errors(template_path: Path) -> list[str]:
    from cfnlint.api import lint_file  # cfn-lint loads its specs on import

    return [
        f"{match.rule.id} {match.message} (line {match.linenumber})"
        for match in lint_file(template_path)
        if match.rule.id.startswith("E")
    ]


def iter_statements(synthesized: Synthesized) -> Iterator[tuple[str, dict[str, Any]]]:
    """(role logical id, statement) for every identity policy of the template."""
    for role_id in synthesized.resources("AWS::IAM::Role"):
        for statement in synthesized.statements(role_id):
            yield role_id, statement


def check_creation_order(synthesized: Synthesized) -> None:
    """Local mode's creation-time checks (asyncinfer/local/provision/creation_checks.py) on the
    synthesized template: raises, naming each resource AWS would refuse on a first deploy."""
    from asyncinfer.local.provision.creation_checks import check_creation
    from asyncinfer.local.provision.template import Template

    check_creation(
        Template(
            synthesized.template,
            stack_name="AsyncInference",
            region="us-east-1",
            aws_endpoint_url="http://127.0.0.1:1",
        )
    )
