"""Changing `instance_type` must deploy: the autoscaled variant's instance type cannot change.

SageMaker refuses an UpdateEndpoint that changes the instance type of (or removes) a variant
registered with Application Auto Scaling, so a new instance type must be a new endpoint with
a new scalable target, created after it; CloudFormation then deletes the old ones.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.assembly import Synthesized, synthesize, target

OTHER_INSTANCE_TYPE = "ml.c5.xlarge"


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Synthesized, Synthesized]:
    before = synthesize({}, tmp_path_factory.mktemp("m5") / "cdk.out")
    after = synthesize(
        {"instance_type": OTHER_INSTANCE_TYPE}, tmp_path_factory.mktemp("c5") / "cdk.out"
    )
    return before, after


def endpoint_id(stack: Synthesized) -> str:
    return stack.output_target("EndpointName")


def scalable_target(stack: Synthesized) -> dict[str, Any]:
    (resource,) = stack.resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
    return resource


def test_a_new_instance_type_is_a_new_endpoint_and_endpoint_config(
    stacks: tuple[Synthesized, Synthesized],
) -> None:
    before, after = stacks
    assert endpoint_id(before) != endpoint_id(after)
    # the old endpoint's logical id is gone: CloudFormation deletes it in the cleanup phase
    assert endpoint_id(before) not in after.template["Resources"]
    (before_config,) = before.resources("AWS::SageMaker::EndpointConfig").values()
    (after_config,) = after.resources("AWS::SageMaker::EndpointConfig").values()
    (variant,) = after_config["Properties"]["ProductionVariants"]
    assert variant["InstanceType"] == OTHER_INSTANCE_TYPE
    # every EndpointConfig property requires replacement: a new config for the new endpoint
    assert before_config["Properties"] != after_config["Properties"]


def test_the_scalable_target_is_registered_after_its_endpoint_exists(
    stacks: tuple[Synthesized, Synthesized],
) -> None:
    for stack in stacks:
        endpoint = endpoint_id(stack)
        resource = scalable_target(stack)
        assert endpoint in resource["DependsOn"]
        resource_id = resource["Properties"]["ResourceId"]["Fn::Join"][1]
        assert resource_id == [
            "endpoint/",
            {"Fn::GetAtt": [endpoint, "EndpointName"]},
            "/variant/AllTraffic",
        ]
        config = stack.resources("AWS::SageMaker::EndpointConfig")
        assert target(stack.properties(endpoint)["EndpointConfigName"]) in config


def test_policies_and_alarms_follow_the_new_endpoint(
    stacks: tuple[Synthesized, Synthesized],
) -> None:
    _, after = stacks
    name = {"Fn::GetAtt": [endpoint_id(after), "EndpointName"]}
    endpoint_alarms = [
        alarm["Properties"]
        for alarm in after.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("Namespace") == "AWS/SageMaker"
    ]
    assert endpoint_alarms
    for alarm in endpoint_alarms:
        assert alarm["Dimensions"] == [{"Name": "EndpointName", "Value": name}]
    ingest = after.properties(after.output_target("IngestFunctionName"))
    assert ingest["Environment"]["Variables"]["ENDPOINT_NAME"] == name
