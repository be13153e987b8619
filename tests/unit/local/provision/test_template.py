"""The intrinsic-function evaluator that lets local mode build what the template defines."""

from __future__ import annotations

from typing import Any

import pytest

from asyncinfer.local.constants import ACCOUNT_ID as LOCAL_ACCOUNT_ID
from asyncinfer.local.provision.template import Template, TemplateError

AWS = "http://127.0.0.1:5000"
BODY: dict[str, Any] = {
    "Parameters": {"BootstrapVersion": {"Type": "String", "Default": "/cdk-bootstrap/version"}},
    "Mappings": {"Images": {"us-east-1": {"Account": "683313688378"}}},
    "Conditions": {
        "IsEast": {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]},
        "IsWest": {"Fn::Not": [{"Condition": "IsEast"}]},
    },
    "Resources": {
        "InputBucket1": {"Type": "AWS::S3::Bucket", "Properties": {}},
        "Queue2": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "Topic3": {"Type": "AWS::SNS::Topic"},
        "Table4": {"Type": "AWS::DynamoDB::Table"},
        "Endpoint5": {"Type": "AWS::SageMaker::Endpoint", "Properties": {}},
        "Named6": {"Type": "AWS::SageMaker::Endpoint", "Properties": {"EndpointName": "MyEp"}},
    },
    "Outputs": {
        "InputBucketName": {"Value": {"Ref": "InputBucket1"}},
        "QueueArn": {"Value": {"Fn::GetAtt": ["Queue2", "Arn"]}},
    },
}


@pytest.fixture(scope="module")
def template() -> Template:
    return Template(BODY, stack_name="AsyncInference", region="us-east-1", aws_endpoint_url=AWS)


def test_refs_return_what_cloudformation_returns_per_type(template: Template) -> None:
    assert template.resolve({"Ref": "Queue2"}).startswith(f"{AWS}/{LOCAL_ACCOUNT_ID}/")
    assert template.resolve({"Ref": "Topic3"}).startswith("arn:aws:sns:us-east-1:")
    assert template.resolve({"Ref": "Table4"}) == "AsyncInference-Table4"
    endpoint_arn = template.resolve({"Ref": "Endpoint5"})
    assert (
        endpoint_arn == "arn:aws:sagemaker:us-east-1:123456789012:endpoint/asyncinference-endpoint5"
    )
    assert template.resolve({"Fn::GetAtt": ["Endpoint5", "EndpointName"]}) == (
        "AsyncInference-Endpoint5"
    )


def test_a_given_endpoint_name_is_kept(template: Template) -> None:
    assert template.resolve({"Fn::GetAtt": "Named6.EndpointName"}) == "MyEp"


def test_bucket_names_are_valid_s3_names(template: Template) -> None:
    name = template.resolve({"Ref": "InputBucket1"})
    assert name == name.lower()
    assert 3 <= len(name) <= 63


def test_join_sub_select_split_and_mappings(template: Template) -> None:
    bucket = template.resolve({"Ref": "InputBucket1"})
    assert template.resolve({"Fn::Join": ["", ["s3://", {"Ref": "InputBucket1"}, "/out"]]}) == (
        f"s3://{bucket}/out"
    )
    assert template.resolve({"Fn::Sub": "arn:${AWS::Partition}:s3:::${InputBucket1}/*"}) == (
        f"arn:aws:s3:::{bucket}/*"
    )
    assert template.resolve({"Fn::Sub": ["${X}-${!Literal}", {"X": {"Ref": "AWS::Region"}}]}) == (
        "us-east-1-${Literal}"
    )
    assert template.resolve({"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]}) == "b"
    assert template.resolve({"Fn::FindInMap": ["Images", {"Ref": "AWS::Region"}, "Account"]}) == (
        "683313688378"
    )


def test_conditions(template: Template) -> None:
    assert template.resolve({"Fn::If": ["IsEast", "yes", "no"]}) == "yes"
    assert template.resolve({"Fn::If": ["IsWest", "yes", "no"]}) == "no"


def test_outputs_are_resolved(template: Template) -> None:
    outputs = template.outputs()
    assert outputs["InputBucketName"] == template.resolve({"Ref": "InputBucket1"})
    assert outputs["QueueArn"].startswith(
        "arn:aws:sqs:us-east-1:123456789012:AsyncInference-Queue2"
    )


@pytest.mark.parametrize(
    "expression",
    [
        {"Ref": "Missing"},
        {"Fn::GetAtt": ["Queue2", "NoSuchAttribute"]},
        {"Fn::ImportValue": "x"},
        {"Fn::FindInMap": ["Images", "eu-west-9", "Account"]},
    ],
)
def test_what_cannot_be_evaluated_is_a_clear_error(
    template: Template, expression: dict[str, Any]
) -> None:
    with pytest.raises(TemplateError):
        template.resolve(expression)
