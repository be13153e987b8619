"""Reads the synthesized CloudFormation template and evaluates what local mode needs from it.

Local mode builds the pipeline the template defines, not a hand-written copy of it: resource
properties (queues and their redrive policies, the table's keys and indexes, the bucket
notification, the event source mapping, the endpoint's async config, the functions' environment)
are read here, with intrinsic functions resolved against local physical names.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncinfer.local.constants import ACCOUNT_ID

PARTITION = "aws"


class TemplateError(Exception):
    """The template lacks something local mode needs, or uses what it cannot evaluate."""


@dataclass(frozen=True)
class PhysicalResource:
    """A resource's local identity: what ``Ref`` returns and its ``Fn::GetAtt`` attributes."""

    ref: str
    attributes: Mapping[str, str]


def _bucket_name(stack: str, logical_id: str) -> str:
    digest = hashlib.sha256(f"{stack}/{logical_id}".encode()).hexdigest()[:8]
    stem = re.sub(r"[^a-z0-9-]", "-", f"{stack}-{logical_id}".lower())[:50].strip("-")
    return f"{stem}-{digest}"


def _short_name(stack: str, logical_id: str, limit: int) -> str:
    name = re.sub(r"[^A-Za-z0-9-]", "-", f"{stack}-{logical_id}")
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9]}-{digest}"


def physical_resource(
    stack: str, logical_id: str, resource_type: str, region: str, aws_endpoint_url: str
) -> PhysicalResource:
    """The local name, ARN and attributes a resource of this type gets in local mode."""
    arn_prefix = f"arn:{PARTITION}:{{service}}:{region}:{ACCOUNT_ID}"

    def arn(service: str, resource: str) -> str:
        return f"{arn_prefix.format(service=service)}:{resource}"

    def bucket() -> PhysicalResource:
        name = _bucket_name(stack, logical_id)
        return PhysicalResource(
            name,
            {
                "Arn": f"arn:{PARTITION}:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{region}.amazonaws.com",
            },
        )

    def queue() -> PhysicalResource:
        name = _short_name(stack, logical_id, 80)
        url = f"{aws_endpoint_url}/{ACCOUNT_ID}/{name}"
        return PhysicalResource(url, {"Arn": arn("sqs", name), "QueueName": name, "QueueUrl": url})

    def topic() -> PhysicalResource:
        name = _short_name(stack, logical_id, 256)
        return PhysicalResource(arn("sns", name), {"TopicArn": arn("sns", name), "TopicName": name})

    def table() -> PhysicalResource:
        name = _short_name(stack, logical_id, 255)
        table_arn = arn("dynamodb", f"table/{name}")
        return PhysicalResource(name, {"Arn": table_arn, "StreamArn": f"{table_arn}/stream/local"})

    def function() -> PhysicalResource:
        name = _short_name(stack, logical_id, 64)
        return PhysicalResource(name, {"Arn": arn("lambda", f"function:{name}")})

    def sagemaker(kind: str, name_attribute: str) -> PhysicalResource:
        name = _short_name(stack, logical_id, 63)
        resource_arn = arn("sagemaker", f"{kind}/{name.lower()}")
        return PhysicalResource(resource_arn, {name_attribute: name, "Arn": resource_arn})

    def role() -> PhysicalResource:
        name = _short_name(stack, logical_id, 64)
        role_arn = f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/{name}"
        return PhysicalResource(name, {"Arn": role_arn, "RoleId": name})

    def key() -> PhysicalResource:
        key_id = hashlib.sha256(f"{stack}/{logical_id}".encode()).hexdigest()[:32]
        return PhysicalResource(key_id, {"Arn": arn("kms", f"key/{key_id}"), "KeyId": key_id})

    def rule() -> PhysicalResource:
        name = _short_name(stack, logical_id, 64)
        return PhysicalResource(name, {"Arn": arn("events", f"rule/{name}")})

    def log_group() -> PhysicalResource:
        name = _short_name(stack, logical_id, 512)
        return PhysicalResource(name, {"Arn": arn("logs", f"log-group:{name}:*")})

    builders: dict[str, Callable[[], PhysicalResource]] = {
        "AWS::S3::Bucket": bucket,
        "AWS::SQS::Queue": queue,
        "AWS::SNS::Topic": topic,
        "AWS::DynamoDB::Table": table,
        "AWS::Lambda::Function": function,
        "AWS::SageMaker::Endpoint": lambda: sagemaker("endpoint", "EndpointName"),
        "AWS::SageMaker::EndpointConfig": lambda: sagemaker(
            "endpoint-config", "EndpointConfigName"
        ),
        "AWS::SageMaker::Model": lambda: sagemaker("model", "ModelName"),
        "AWS::IAM::Role": role,
        "AWS::KMS::Key": key,
        "AWS::Logs::LogGroup": log_group,
        "AWS::Events::Rule": rule,
    }
    builder = builders.get(resource_type)
    if builder is not None:
        return builder()
    return PhysicalResource(_short_name(stack, logical_id, 128), {})


class Template:
    """One synthesized stack template with an intrinsic-function evaluator."""

    def __init__(
        self, body: Mapping[str, Any], *, stack_name: str, region: str, aws_endpoint_url: str
    ) -> None:
        self.body = body
        self.stack_name = stack_name
        self.region = region
        self.resources: Mapping[str, Mapping[str, Any]] = body.get("Resources", {})
        self._physical = {
            logical_id: physical_resource(
                stack_name, logical_id, resource["Type"], region, aws_endpoint_url
            )
            for logical_id, resource in self.resources.items()
        }
        for logical_id, properties in self.of_type("AWS::SageMaker::Endpoint"):
            # functions may receive the name as a literal, so a given name is kept as it is
            if isinstance(properties.get("EndpointName"), str):
                name = properties["EndpointName"]
                endpoint_arn = f"arn:{PARTITION}:sagemaker:{region}:{ACCOUNT_ID}:endpoint/"
                self._physical[logical_id] = PhysicalResource(
                    endpoint_arn + name.lower(),
                    {"EndpointName": name, "Arn": endpoint_arn + name.lower()},
                )
        self._pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": (
                f"arn:{PARTITION}:cloudformation:{region}:{ACCOUNT_ID}:stack/{stack_name}/local"
            ),
            "AWS::NoValue": None,
        }
        self._functions: dict[str, Callable[[Any], Any]] = {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Join": self._join,
            "Fn::Sub": self._sub,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::If": self._if,
            "Fn::FindInMap": self._find_in_map,
            "Fn::Base64": self.resolve,
            "Fn::GetAZs": lambda _: [f"{region}a", f"{region}b", f"{region}c"],
        }

    @classmethod
    def load(cls, path: Path, *, stack_name: str, region: str, aws_endpoint_url: str) -> Template:
        return cls(
            json.loads(path.read_text()),
            stack_name=stack_name,
            region=region,
            aws_endpoint_url=aws_endpoint_url,
        )

    def physical(self, logical_id: str) -> PhysicalResource:
        return self._physical[logical_id]

    def of_type(self, resource_type: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
        for logical_id, resource in self.resources.items():
            if resource["Type"] == resource_type:
                yield logical_id, resource.get("Properties", {})

    def logical_id_of(self, value: Any) -> str:
        """The logical id a ``Ref`` or ``Fn::GetAtt`` points at."""
        if isinstance(value, Mapping):
            if "Ref" in value:
                return str(value["Ref"])
            if "Fn::GetAtt" in value:
                target = value["Fn::GetAtt"]
                return str(target[0] if isinstance(target, list) else target.split(".")[0])
        raise TemplateError(f"expected a Ref or Fn::GetAtt, got {value!r}")

    def outputs(self) -> dict[str, str]:
        return {
            name: str(self.resolve(output["Value"]))
            for name, output in self.body.get("Outputs", {}).items()
        }

    def resolve(self, value: Any) -> Any:
        """Evaluate intrinsic functions recursively; plain values come back unchanged."""
        if isinstance(value, list):
            return [item for item in (self.resolve(item) for item in value) if item is not None]
        if isinstance(value, Mapping):
            if len(value) == 1:
                ((name, argument),) = value.items()
                if name in self._functions:
                    return self._functions[name](argument)
                if name.startswith("Fn::") or name == "Condition":
                    raise TemplateError(f"local mode cannot evaluate {name}")
            return {key: self.resolve(item) for key, item in value.items()}
        return value

    def _ref(self, name: str) -> Any:
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self._physical:
            return self._physical[name].ref
        parameter = self.body.get("Parameters", {}).get(name)
        if parameter is not None and "Default" in parameter:
            return parameter["Default"]
        raise TemplateError(f"cannot resolve Ref {name}")

    def _get_att(self, argument: Any) -> str:
        logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
        physical = self._physical.get(logical_id)
        if physical is None or attribute not in physical.attributes:
            raise TemplateError(f"cannot resolve Fn::GetAtt {logical_id}.{attribute}")
        return physical.attributes[attribute]

    def _join(self, argument: list[Any]) -> str:
        delimiter, items = argument
        return str(delimiter).join(str(item) for item in self.resolve(items))

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        resolved = {name: self.resolve(value) for name, value in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in resolved:
                return str(resolved[expression])
            if "." in expression and expression.split(".", 1)[0] in self._physical:
                return self._get_att(expression)
            return str(self._ref(expression))

        return re.sub(r"\$\{([^}]+)\}", substitute, text)

    def _select(self, argument: list[Any]) -> Any:
        index, items = argument
        return self.resolve(items)[int(self.resolve(index))]

    def _split(self, argument: list[Any]) -> list[str]:
        delimiter, text = argument
        return str(self.resolve(text)).split(delimiter)

    def _if(self, argument: list[Any]) -> Any:
        condition, when_true, when_false = argument
        return self.resolve(when_true if self._condition(condition) else when_false)

    def _condition(self, name: str) -> bool:
        conditions = self.body.get("Conditions", {})
        if name not in conditions:
            raise TemplateError(f"unknown condition {name}")
        return bool(self._evaluate_condition(conditions[name]))

    def _evaluate_condition(self, expression: Any) -> Any:
        if isinstance(expression, Mapping) and len(expression) == 1:
            ((name, argument),) = expression.items()
            if name == "Fn::Equals":
                left, right = (self._evaluate_condition(item) for item in argument)
                return left == right
            if name == "Fn::Not":
                return not self._evaluate_condition(argument[0])
            if name == "Fn::And":
                return all(self._evaluate_condition(item) for item in argument)
            if name == "Fn::Or":
                return any(self._evaluate_condition(item) for item in argument)
            if name == "Condition":
                return self._condition(argument)
        return self.resolve(expression)

    def _find_in_map(self, argument: list[Any]) -> Any:
        map_name, top_key, second_key = (self.resolve(item) for item in argument)
        try:
            return self.body["Mappings"][map_name][top_key][second_key]
        except KeyError as missing:
            raise TemplateError(
                f"Fn::FindInMap {map_name}/{top_key}/{second_key}: no such entry"
            ) from missing


RATE_EXPRESSION = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
RATE_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float:
    """The period of an EventBridge ``rate(...)`` expression; other schedules (``cron(...)``)
    are not run locally (README "Local mode")."""
    match = RATE_EXPRESSION.fullmatch(expression.strip())
    if match is None:
        raise TemplateError(f"local mode runs rate(...) schedules only, not {expression!r}")
    value, unit = int(match[1]), match[2].removesuffix("s")
    if value < 1:
        raise TemplateError(f"{expression!r}: the rate must be at least 1")
    return float(value * RATE_UNIT_SECONDS[unit])
