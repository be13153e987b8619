"""Local provisioning follows CloudFormation's order, and refuses a resource that AWS validates
at its creation when the policy it needs is not among its dependencies."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from asyncinfer.local.aws.policies import IamError
from asyncinfer.local.provision.creation_checks import check_creation
from asyncinfer.local.provision.order import CreationOrder, creation_order, direct_dependencies
from asyncinfer.local.provision.template import Template, TemplateError

# The result-event pipes, their role, DefaultPolicy, dead-letter queue and table, as main
# synthesized them before the fix (stacks/events_out.py): the pipes name the role, not its
# DefaultPolicy.
PIPES_BEFORE_FIX = Path(__file__).with_name("pipes_template_before_fix.json")
PIPES = ("ResultEventsCompletedPipe9BCC097F", "ResultEventsFailedPipeB0DE347F")
PIPES_POLICY = "ResultEventsRoleDefaultPolicyF15B1084"


def template(body: dict[str, Any]) -> Template:
    return Template(body, stack_name="S", region="us-east-1", aws_endpoint_url="http://unused")


def resource(resource_type: str, properties: Any = None, depends_on: Any = None) -> Any:
    found: dict[str, Any] = {"Type": resource_type, "Properties": properties or {}}
    if depends_on is not None:
        found["DependsOn"] = depends_on
    return found


def test_dependencies_are_refs_getatts_subs_and_depends_on_only() -> None:
    resources = {
        "A": resource("T"),
        "B": resource("T", {"X": {"Fn::If": ["C", {"Ref": "A"}, {"Ref": "AWS::Region"}]}}),
        "C": resource("T", {"X": {"Fn::Join": ["", [{"Fn::GetAtt": ["B", "Arn"]}]]}}),
        "D": resource("T", {"X": {"Fn::Sub": "${A.Arn}/${!C}/${AWS::Region}"}}),
        "E": resource("T", {"X": {"Fn::Sub": ["${B}-${Var}", {"Var": {"Ref": "C"}}]}}),
        "F": resource("T", {"X": "A B C"}, depends_on="D"),
        "G": resource("T", {"X": {"Fn::Sub": ["${A}", {"A": "literal"}]}}),
    }
    assert direct_dependencies(resources) == {
        "A": set(),
        "B": {"A"},
        "C": {"B"},
        "D": {"A"},  # ${!C} is literal text, ${AWS::Region} a pseudo parameter
        "E": {"B", "C"},
        "F": {"D"},  # a logical id inside plain text orders nothing
        "G": set(),  # ${A} is the Sub's own variable
    }


def test_the_order_is_topological_and_the_same_every_time() -> None:
    graph = {"z": set(), "a": {"z"}, "m": set(), "b": {"a", "m"}}
    assert creation_order(graph) == ["m", "z", "a", "b"]
    assert CreationOrder(
        {"b": resource("T", depends_on=["a"]), "a": resource("T")}
    ).dependencies_of("b") == {"a"}


def test_a_cycle_is_refused() -> None:
    resources = {
        "A": resource("T", {"X": {"Ref": "B"}}),
        "B": resource("T", depends_on=["A"]),
        "C": resource("T"),
    }
    with pytest.raises(TemplateError, match="Circular dependency between resources: A, B"):
        CreationOrder(resources)


def pipes_template(*, fixed: bool) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(PIPES_BEFORE_FIX.read_text())
    if fixed:  # what stacks/events_out.py now synthesizes
        for pipe in PIPES:
            body["Resources"][pipe]["DependsOn"] = [PIPES_POLICY, "ResultEventsRoleF74E743C"]
    return body


def test_todays_pipes_are_refused_with_the_dependency_to_add() -> None:
    with pytest.raises(IamError) as refused:
        check_creation(template(pipes_template(fixed=False)))
    message = str(refused.value)
    for pipe in PIPES:
        assert f"AWS::Pipes::Pipe {pipe}: its role ResultEventsRoleF74E743C needs" in message
    for action in ("dynamodb:GetRecords", "events:PutEvents", "sqs:SendMessage"):
        assert action in message
    assert f"add DependsOn: {PIPES_POLICY}" in message


def test_pipes_that_depend_on_their_policy_pass() -> None:
    check_creation(template(pipes_template(fixed=True)))


def test_a_pipe_whose_role_lacks_a_permission_is_refused_whatever_the_order() -> None:
    body = pipes_template(fixed=True)
    statements = body["Resources"][PIPES_POLICY]["Properties"]["PolicyDocument"]["Statement"]
    statements[:] = [s for s in statements if "events:PutEvents" not in json.dumps(s)]
    with pytest.raises(IamError, match=r"events:PutEvents .*no policy of the template grants it"):
        check_creation(template(body))


QUEUE_ARN = {"Fn::GetAtt": ["Queue", "Arn"]}
INGEST_TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Queue": resource("AWS::SQS::Queue"),
        "Role": resource(
            "AWS::IAM::Role",
            {
                "AssumeRolePolicyDocument": {
                    "Statement": [
                        {
                            "Action": "sts:AssumeRole",
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                        }
                    ]
                }
            },
        ),
        "RoleDefaultPolicy": resource(
            "AWS::IAM::Policy",
            {
                "PolicyDocument": {
                    "Statement": [
                        {
                            "Action": [
                                "sqs:ChangeMessageVisibility",
                                "sqs:DeleteMessage",
                                "sqs:GetQueueAttributes",
                                "sqs:GetQueueUrl",
                                "sqs:ReceiveMessage",
                            ],
                            "Effect": "Allow",
                            "Resource": QUEUE_ARN,
                        }
                    ],
                    "Version": "2012-10-17",
                },
                "PolicyName": "RoleDefaultPolicy",
                "Roles": [{"Ref": "Role"}],
            },
        ),
        # as CDK synthesizes a function: DependsOn its role's DefaultPolicy
        "Function": resource(
            "AWS::Lambda::Function",
            {"Handler": "lambdas.ingest.handler.handler", "Role": {"Fn::GetAtt": ["Role", "Arn"]}},
            depends_on=["RoleDefaultPolicy", "Role"],
        ),
        "Mapping": resource(
            "AWS::Lambda::EventSourceMapping",
            {"EventSourceArn": QUEUE_ARN, "FunctionName": {"Ref": "Function"}},
        ),
    }
}


def test_an_event_source_mapping_waits_for_its_functions_policy() -> None:
    check_creation(template(INGEST_TEMPLATE))  # through the function's DependsOn
    body = copy.deepcopy(INGEST_TEMPLATE)
    body["Resources"]["Function"]["DependsOn"] = ["Role"]
    with pytest.raises(IamError) as refused:
        check_creation(template(body))
    assert "AWS::Lambda::EventSourceMapping Mapping: its role Role needs sqs:ReceiveMessage" in str(
        refused.value
    )
    assert "add DependsOn: RoleDefaultPolicy" in str(refused.value)


def test_a_subscriptions_dead_letter_queue_policy_must_exist_first() -> None:
    policy = {
        "Statement": [
            {
                "Action": "sqs:SendMessage",
                "Condition": {"ArnEquals": {"aws:SourceArn": {"Ref": "Topic"}}},
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Resource": {"Fn::GetAtt": ["DeadLetters", "Arn"]},
            }
        ]
    }
    body: dict[str, Any] = {
        "Resources": {
            "Topic": resource("AWS::SNS::Topic"),
            "DeadLetters": resource("AWS::SQS::Queue"),
            "DeadLettersPolicy": resource(
                "AWS::SQS::QueuePolicy",
                {"PolicyDocument": policy, "Queues": [{"Ref": "DeadLetters"}]},
            ),
            "Subscription": resource(
                "AWS::SNS::Subscription",
                {
                    "Protocol": "sqs",
                    "Endpoint": "arn:aws:sqs:us-east-1:123456789012:elsewhere",
                    "TopicArn": {"Ref": "Topic"},
                    "RedrivePolicy": {
                        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetters", "Arn"]}
                    },
                },
            ),
        }
    }
    with pytest.raises(IamError, match="add DependsOn: DeadLettersPolicy"):
        check_creation(template(body))
    body["Resources"]["Subscription"]["DependsOn"] = ["DeadLetters", "DeadLettersPolicy"]
    check_creation(template(body))
