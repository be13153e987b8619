"""The permissions AWS checks when CloudFormation *creates* a resource, checked as of then.

Some resources are validated by their service at creation: the call that creates them fails
when a role or a resource policy does not (yet) grant what they need. CloudFormation creates a
resource as soon as its dependencies exist (``provision.order``), so a policy the resource does
not depend on may not exist yet: a race that only a first deploy shows. Each check below
evaluates the permission with **only the policies among the resource's dependencies** (a role's
inline ``Policies`` exist with the role; an ``AWS::IAM::Policy``, such as CDK's
``DefaultPolicy``, or an ``AWS::SQS::QueuePolicy`` only once created), and a failure names the
resource, the permission, and the policy to add to its ``DependsOn``.

What each service validates at creation, and its source:

* ``AWS::Pipes::Pipe``: the pipe's role on its source, target and dead-letter queue (EventBridge
  user guide, "Amazon EventBridge Pipes permissions": the execution role's source and target
  permissions; CreatePipe fails "Cannot access stream ... ensure the customer role can
  perform actions on source stream").
* ``AWS::Lambda::EventSourceMapping``: the function's role on the queue or stream (Lambda
  developer guide, "Execution role permissions" of the SQS and DynamoDB event sources;
  CreateEventSourceMapping fails "The provided execution role does not have permissions").
* ``Custom::S3BucketNotifications`` (CDK's ``PutBucketNotificationConfiguration``): each queue
  or topic destination's policy lets ``s3.amazonaws.com`` send from the bucket, unless
  ``SkipDestinationValidation`` (S3 user guide, "Granting permissions to publish event
  notification messages to a destination").
* ``AWS::SNS::Subscription`` with a ``RedrivePolicy``: the dead-letter queue's policy lets the
  topic send (SNS developer guide, "Configuring an Amazon SNS dead-letter queue").
* ``AWS::SageMaker::Endpoint``: the instances it starts pull each container's ECR image and
  download its model data as the model's execution role (SageMaker developer guide, "CreateModel
  API: Execution Role Permissions"); the endpoint fails to be created otherwise. What the role
  does later (writing outputs, publishing notifications) is checked when it happens, by the
  local runtime under IAM.
* ``AWS::Events::Rule`` with an SQS target: EventBridge does not validate a target when the rule
  is created (the queue's policy names the rule's ARN, so it cannot come first); the queue's
  policy must still let ``events.amazonaws.com`` send from the rule: checked on the whole
  template.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from asyncinfer.local.aws.policies import IamError, resource_policy_decision
from asyncinfer.local.provision.order import CreationOrder
from asyncinfer.local.provision.template import Template

SOURCE_ACTIONS = {  # what a poller needs on its source (Pipes and Lambda document the same)
    "sqs": ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"),
    "dynamodb": ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"),
    "kinesis": ("kinesis:DescribeStream", "kinesis:GetRecords", "kinesis:GetShardIterator"),
}
TARGET_ACTIONS = {
    "events": "events:PutEvents",
    "sqs": "sqs:SendMessage",
    "sns": "sns:Publish",
    "lambda": "lambda:InvokeFunction",
    "states": "states:StartExecution",
}


def _service(arn: str) -> str:
    return arn.split(":")[2] if arn.startswith("arn:") and arn.count(":") >= 5 else ""


def _identity_decision(document: Mapping[str, Any], action: str, resource: str) -> str:
    from moto.iam.access_control import IAMPolicy, PermissionResult  # local mode's extra

    result = IAMPolicy(json.dumps(document)).is_action_permitted(action, resource)
    if result == PermissionResult.DENIED:
        return "deny"
    return "allow" if result == PermissionResult.PERMITTED else "neutral"


class CreationChecks:
    """Every creation-time permission of a template, judged at its resource's creation."""

    def __init__(self, template: Template, order: CreationOrder | None = None) -> None:
        self.template = template
        self.order = order or CreationOrder(template.resources)
        self.problems: list[str] = []

    def run(self) -> None:
        """Raises ``IamError`` listing every permission missing at a resource's creation."""
        checks: dict[str, Callable[[str, Mapping[str, Any]], None]] = {
            "AWS::Pipes::Pipe": self._pipe,
            "AWS::Lambda::EventSourceMapping": self._event_source_mapping,
            "Custom::S3BucketNotifications": self._bucket_notifications,
            "AWS::SNS::Subscription": self._subscription,
            "AWS::SageMaker::Endpoint": self._endpoint,
            "AWS::Events::Rule": self._rule,
        }
        for logical_id in self.order.order:
            resource = self.template.resources[logical_id]
            check = checks.get(resource["Type"])
            if check is not None:
                check(logical_id, resource.get("Properties", {}))
        if self.problems:
            raise IamError(
                "CloudFormation may create these resources before the permission AWS checks "
                "at their creation:\n- " + "\n- ".join(self.problems)
            )

    # --- policies as of a resource's creation --------------------------------------------

    def _role_policies(self, role_id: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """(where it is defined, document) for each identity policy of the role."""
        properties = self.template.resources[role_id].get("Properties", {})
        for policy in self.template.resolve(properties.get("Policies", [])):
            yield role_id, policy["PolicyDocument"]
        for policy_id, policy in self.template.of_type("AWS::IAM::Policy"):
            roles = [r for r in policy.get("Roles", []) if isinstance(r, Mapping)]
            if any(self.template.logical_id_of(role) == role_id for role in roles):
                yield policy_id, self.template.resolve(policy["PolicyDocument"])

    def _resource_policies(
        self, policy_type: str, list_key: str, target_arn: str, attribute: str
    ) -> Iterator[tuple[str, Mapping[str, Any]]]:
        for policy_id, properties in self.template.of_type(policy_type):
            for target in properties.get(list_key, []):
                logical_id = self.template.logical_id_of(target)
                if self.template.physical(logical_id).attributes.get(attribute) == target_arn:
                    yield policy_id, self.template.resolve(properties["PolicyDocument"])

    def _judge(
        self,
        resource_id: str,
        what: str,
        policies: list[tuple[str, Mapping[str, Any]]],
        decide: Callable[[Mapping[str, Any]], str],
        *,
        ordered: bool = True,
    ) -> None:
        """Records a problem unless the policies that exist by ``resource_id``'s creation
        allow ``what`` (``ordered=False``: every policy of the template counts)."""
        existing = self.order.dependencies_of(resource_id)
        decisions = [(source, decide(document)) for source, document in policies]
        present = [d for source, d in decisions if not ordered or source in existing]
        if "deny" not in present and "allow" in present:
            return
        resource_type = self.template.resources[resource_id]["Type"]
        later = sorted({source for source, d in decisions if d == "allow"} - existing)
        if ordered and later and "deny" not in present:
            fix = f"add DependsOn: {', '.join(later)} (it grants it, and may be created later)"
        else:
            fix = "no policy of the template grants it: add one"
        self.problems.append(f"{resource_type} {resource_id}: {what}; {fix}")

    def _require_role(self, resource_id: str, role_id: str, action: str, arn: str) -> None:
        self._judge(
            resource_id,
            f"its role {role_id} needs {action} on {arn}",
            list(self._role_policies(role_id)),
            lambda document: _identity_decision(document, action, arn),
        )

    def _require_send(
        self, resource_id: str, service: str, destination_arn: str, source_arn: str, **kw: bool
    ) -> None:
        kind = _service(destination_arn)
        action, policies = (
            (
                "sqs:SendMessage",
                self._resource_policies("AWS::SQS::QueuePolicy", "Queues", destination_arn, "Arn"),
            )
            if kind == "sqs"
            else (
                "sns:Publish",
                self._resource_policies(
                    "AWS::SNS::TopicPolicy", "Topics", destination_arn, "TopicArn"
                ),
            )
        )
        context = {
            "aws:SourceArn": source_arn,
            "aws:SourceAccount": destination_arn.split(":")[4],
            "aws:SecureTransport": "true",
        }
        self._judge(
            resource_id,
            f"the policy of {destination_arn} must let {service} {action} from {source_arn}",
            list(policies),
            lambda document: resource_policy_decision(
                document, action, destination_arn, {"service": service}, context
            ),
            **kw,
        )

    def _role_of(self, role_arn_expression: Any) -> str | None:
        """The role's logical id, or None for a role the template does not define."""
        if not isinstance(role_arn_expression, Mapping):
            return None
        logical_id = self.template.logical_id_of(role_arn_expression)
        resource = self.template.resources.get(logical_id, {})
        return logical_id if resource.get("Type") == "AWS::IAM::Role" else None

    # --- the checks ----------------------------------------------------------------------

    def _source_actions(self, arn: str) -> tuple[str, ...]:
        kind = _service(arn)
        if kind not in SOURCE_ACTIONS:
            raise IamError(f"local mode cannot judge a poller's permissions on {arn}")
        return SOURCE_ACTIONS[kind]

    def _require_source(self, resource_id: str, role_id: str, source: str) -> None:
        for action in self._source_actions(source):
            self._require_role(resource_id, role_id, action, source)
        if _service(source) == "dynamodb":
            self._require_role(resource_id, role_id, "dynamodb:ListStreams", "*")

    def _pipe(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        role_id = self._role_of(properties.get("RoleArn"))
        if role_id is None:
            return
        self._require_source(logical_id, role_id, str(self.template.resolve(properties["Source"])))
        target = str(self.template.resolve(properties["Target"]))
        if _service(target) not in TARGET_ACTIONS:
            raise IamError(f"local mode cannot judge a pipe's permissions on its target {target}")
        self._require_role(logical_id, role_id, TARGET_ACTIONS[_service(target)], target)
        for parameters in self.template.resolve(properties.get("SourceParameters", {})).values():
            dead_letter = (
                parameters.get("DeadLetterConfig", {}).get("Arn")
                if isinstance(parameters, Mapping)
                else None
            )
            if dead_letter:
                self._require_role(
                    logical_id, role_id, TARGET_ACTIONS[_service(dead_letter)], dead_letter
                )

    def _event_source_mapping(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        function_id = self.template.logical_id_of(properties["FunctionName"])
        function = self.template.resources[function_id].get("Properties", {})
        role_id = self._role_of(function.get("Role"))
        if role_id is not None:
            self._require_source(
                logical_id, role_id, str(self.template.resolve(properties["EventSourceArn"]))
            )

    def _bucket_notifications(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        skipped = str(self.template.resolve(properties.get("SkipDestinationValidation", False)))
        bucket_arn = f"arn:aws:s3:::{self.template.resolve(properties['BucketName'])}"
        configuration = self.template.resolve(properties["NotificationConfiguration"])
        destinations = [
            *(entry["QueueArn"] for entry in configuration.get("QueueConfigurations", [])),
            *(entry["TopicArn"] for entry in configuration.get("TopicConfigurations", [])),
        ]
        for destination in destinations:
            self._require_send(
                logical_id,
                "s3.amazonaws.com",
                destination,
                bucket_arn,
                ordered=skipped.lower() != "true",
            )

    def _subscription(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        redrive = self.template.resolve(properties.get("RedrivePolicy", {}))
        if redrive.get("deadLetterTargetArn"):
            topic = str(self.template.resolve(properties["TopicArn"]))
            self._require_send(
                logical_id, "sns.amazonaws.com", redrive["deadLetterTargetArn"], topic
            )

    def _rule(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        rule_arn = self.template.physical(logical_id).attributes["Arn"]
        for target in properties.get("Targets", []):
            arn = str(self.template.resolve(target["Arn"]))
            if _service(arn) in ("sqs", "sns"):
                self._require_send(logical_id, "events.amazonaws.com", arn, rule_arn, ordered=False)

    def _endpoint(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        """The instances pull each container's image and download its model data as the
        model's execution role while the endpoint is created."""
        config_id = self.template.logical_id_of(properties["EndpointConfigName"])
        config = self.template.resources[config_id].get("Properties", {})
        model_ids = {
            self.template.logical_id_of(variant["ModelName"])
            for variant in config.get("ProductionVariants", [])
            if isinstance(variant.get("ModelName"), Mapping)
        }
        for model_id in sorted(model_ids):
            model = self.template.resources[model_id].get("Properties", {})
            role_id = self._role_of(model.get("ExecutionRoleArn"))
            if role_id is None:
                continue
            containers = [model.get("PrimaryContainer"), *model.get("Containers", [])]
            for container in self.template.resolve([c for c in containers if c]):
                for action, arn in _container_reads(container):
                    self._require_role(logical_id, role_id, action, arn)


_ECR_IMAGE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/([^:@]+)")


def _container_reads(container: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(action, resource) a SageMaker container needs to start: its ECR image (SageMaker
    developer guide, "CreateModel API: Execution Role Permissions") and its model data."""
    reads: list[tuple[str, str]] = []
    image = _ECR_IMAGE.match(str(container.get("Image", "")))
    if image:
        account, region, repository = image.groups()
        repository_arn = f"arn:aws:ecr:{region}:{account}:repository/{repository}"
        reads += [
            ("ecr:GetAuthorizationToken", "*"),
            ("ecr:BatchGetImage", repository_arn),
            ("ecr:GetDownloadUrlForLayer", repository_arn),
        ]
    model_data = str(container.get("ModelDataUrl", ""))
    if model_data.startswith("s3://"):
        reads.append(("s3:GetObject", f"arn:aws:s3:::{model_data.removeprefix('s3://')}"))
    return reads


def check_creation(template: Template) -> None:
    """Raises ``IamError`` unless every creation-validated resource can be created (above)."""
    CreationChecks(template).run()
