"""The endpoint's success and error topics: created (encrypted, TLS-only) or imported."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.config import StackConfig


def topic_key(scope: Construct, construct_id: str, description: str) -> kms.Key:
    """A customer managed key for SNS topics, rotated yearly. It protects messages in flight
    only (nothing stays encrypted under it), so it goes with the stack, after the shortest
    pending window."""
    return kms.Key(
        scope,
        construct_id,
        description=description,
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.DESTROY,
        pending_window=Duration.days(7),
    )


@dataclass(frozen=True)
class Topics:
    success: sns.ITopic
    error: sns.ITopic


class EndpointTopics(Construct):
    """Two topics under a customer managed key, publishable only by the endpoint's role.

    SageMaker publishes with its execution role, so the key policy lets that role use the
    key through SNS (the key policy alone grants it: the role's own policy has no KMS
    rights), and each topic policy denies ``sns:Publish`` to every other principal except
    the account root. ``authorize_publisher`` adds those statements once the role exists.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.key = topic_key(self, "Key", "Encrypts the async endpoint's success and error topics")
        self.success = sns.Topic(
            self, "SuccessTopic", master_key=self.key, enforce_ssl=True, display_name="Success"
        )
        self.error = sns.Topic(
            self, "ErrorTopic", master_key=self.key, enforce_ssl=True, display_name="Error"
        )
        self.topics = Topics(success=self.success, error=self.error)

    def authorize_publisher(self, role: iam.IRole) -> None:
        stack = Stack.of(self)
        account_root = iam.AccountRootPrincipal().arn
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EndpointPublishesThroughSns",
                principals=[iam.ArnPrincipal(role.role_arn)],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={
                    "StringEquals": {"kms:ViaService": f"sns.{stack.region}.amazonaws.com"}
                },
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sns:Publish"], resources=[self.success.topic_arn, self.error.topic_arn]
            )
        )
        for topic in (self.success, self.error):
            topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="OnlyTheEndpointPublishes",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["sns:Publish"],
                    resources=[topic.topic_arn],
                    conditions={
                        "ArnNotEquals": {"aws:PrincipalArn": [role.role_arn, account_root]}
                    },
                )
            )
            topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="EndpointPublishes",
                    principals=[iam.ArnPrincipal(role.role_arn)],
                    actions=["sns:Publish"],
                    resources=[topic.topic_arn],
                )
            )


def imported_topics(scope: Construct, config: StackConfig) -> Topics:
    """The topics of an existing endpoint (their policies and keys stay as their owner set)."""
    if config.success_topic_arn is None or config.error_topic_arn is None:
        raise ValueError("import mode needs both topic ARNs (StackConfig enforces this)")
    return Topics(
        success=sns.Topic.from_topic_arn(scope, "SuccessTopic", config.success_topic_arn),
        error=sns.Topic.from_topic_arn(scope, "ErrorTopic", config.error_topic_arn),
    )
