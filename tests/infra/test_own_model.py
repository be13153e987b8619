"""Create mode with the user's own image and model archive, and `removal_policy=destroy`."""

from __future__ import annotations

import pytest

from lambdas.common.contract import StackOutput
from tests.infra.assembly import (
    Synthesized,
    actions,
    literal_text,
    resources_of,
    synthesize,
    target,
    violations,
)

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/iris-model:2.1"
CONTEXT = {
    "model_image_uri": IMAGE,
    "model_data_url": "s3://my-models/iris/model.tar.gz",
    "endpoint_name": "Iris-Async",
    "min_instance_count": "1",
    "max_instance_count": "4",
    "include_inference_response": "false",
    "inline_result_max_bytes": "0",
    "removal_policy": "destroy",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(CONTEXT, tmp_path_factory.mktemp("own-model") / "cdk.out")


def test_synthesis_passes_cdk_nag(stack: Synthesized) -> None:
    assert violations(stack) == []
    assert stack.synth_error is None


def test_model_uses_the_given_image_and_archive_without_demo_settings(stack: Synthesized) -> None:
    (model,) = stack.resources("AWS::SageMaker::Model").values()
    assert model["Properties"]["PrimaryContainer"] == {
        "Image": IMAGE,
        "ModelDataUrl": "s3://my-models/iris/model.tar.gz",
    }
    assert "Mappings" not in stack.template
    role = target(model["Properties"]["ExecutionRoleArn"])
    granted = {
        (frozenset(actions(statement)), literal_text(resource))
        for statement in stack.statements(role)
        for resource in resources_of(statement)
    }
    assert (frozenset({"s3:GetObject"}), "arn::s3:::my-models/iris/model.tar.gz") in granted
    assert (
        frozenset(
            {"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"}
        ),
        "arn::ecr:eu-west-1:123456789012:repository/team/iris-model",
    ) in granted
    assert not list(stack.outdir.glob("asset.*.tar.gz"))  # no demo archive was packaged


def test_endpoint_keeps_its_name_and_starts_at_the_minimum(stack: Synthesized) -> None:
    (endpoint,) = stack.resources("AWS::SageMaker::Endpoint").values()
    assert endpoint["Properties"]["EndpointName"] == "Iris-Async"
    (config,) = stack.resources("AWS::SageMaker::EndpointConfig").values()
    (variant,) = config["Properties"]["ProductionVariants"]
    assert variant["InitialInstanceCount"] == 1
    notification = config["Properties"]["AsyncInferenceConfig"]["OutputConfig"]
    assert "IncludeInferenceResponseIn" not in notification["NotificationConfig"]
    (scalable,) = stack.resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert scalable["Properties"]["MinCapacity"] == 1
    assert scalable["Properties"]["MaxCapacity"] == 4


def test_results_never_read_outputs_when_inline_results_are_off(stack: Synthesized) -> None:
    function_id = stack.output_target(StackOutput.RESULTS_FUNCTION_NAME)
    variables = stack.properties(function_id)["Environment"]["Variables"]
    assert variables["INLINE_RESULT_MAX_BYTES"] == "0"
    role = stack.role_of_function(function_id)
    assert not any(
        action.startswith("s3:")
        for statement in stack.statements(role)
        for action in actions(statement)
    )


def test_destroy_removes_buckets_table_and_logs_with_the_stack(stack: Synthesized) -> None:
    for resource_type in ("AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::Logs::LogGroup"):
        resources = stack.resources(resource_type)
        assert resources
        assert {resource["DeletionPolicy"] for resource in resources.values()} == {"Delete"}
