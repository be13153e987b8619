"""cdk-nag (AwsSolutions) acknowledgments, each made next to the code that causes it.

cdk-nag 3 identifies a wildcard finding by the exact policy text, e.g.
``AwsSolutions-IAM5[Resource::<StorageInputBucket0767FBBB.Arn>/*]``: the helpers below build
those ids from the constructs themselves, so an acknowledgment never covers more than the one
statement it was written for.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from aws_cdk import aws_s3 as s3
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def wildcard_resource(resource: str) -> str:
    return f"AwsSolutions-IAM5[Resource::{resource}]"


def arn_of(construct: IConstruct) -> str:
    """How cdk-nag writes ``Fn::GetAtt <resource>.Arn`` of an L2 construct's resource."""
    resource = construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource")
    return f"<{Stack.of(construct).get_logical_id(resource)}.Arn>"


def objects_of(bucket: s3.IBucket, pattern: str) -> str:
    """How cdk-nag writes ``bucket.arn_for_objects(pattern)``, for own and imported buckets."""
    if isinstance(bucket.node.default_child, CfnResource):
        return f"{arn_of(bucket)}/{pattern}"
    return f"arn:<AWS::Partition>:s3:::{bucket.bucket_name}/{pattern}"
