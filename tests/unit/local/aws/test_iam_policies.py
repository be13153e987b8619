"""The resource-policy evaluation local mode applies to topics and queues, and trust checks."""

from __future__ import annotations

from typing import Any

import pytest

from asyncinfer.local.aws.iam import trusts_service
from asyncinfer.local.aws.policies import IamError, resource_policy_decision

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/endpoint"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:success"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:ingest"
BUCKET = "arn:aws:s3:::input"
TOPIC_POLICY: dict[str, Any] = {
    "Statement": [
        {
            "Sid": "AllowPublishThroughSSLOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sns:Publish",
            "Resource": TOPIC,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "OnlyTheEndpointPublishes",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "sns:Publish",
            "Resource": TOPIC,
            "Condition": {
                "ArnNotEquals": {"aws:PrincipalArn": [ROLE, f"arn:aws:iam::{ACCOUNT}:root"]}
            },
        },
        {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "sns:Publish", "Resource": TOPIC},
    ]
}
QUEUE_POLICY: dict[str, Any] = {
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"],
            "Resource": QUEUE,
            "Condition": {"ArnLike": {"aws:SourceArn": BUCKET}},
        }
    ]
}


def publish(principal_arn: str, secure: str = "true") -> str:
    return resource_policy_decision(
        TOPIC_POLICY,
        "sns:Publish",
        TOPIC,
        {"arn": principal_arn, "account": ACCOUNT},
        {"aws:PrincipalArn": principal_arn, "aws:SecureTransport": secure},
    )


def test_only_the_endpoint_role_may_publish() -> None:
    assert publish(ROLE) == "allow"
    assert publish(f"arn:aws:iam::{ACCOUNT}:user/local-admin") == "deny"
    assert publish(f"arn:aws:iam::{ACCOUNT}:role/results") == "deny"
    assert publish(ROLE, secure="false") == "deny"


def test_s3_may_send_to_the_queue_only_from_the_bucket() -> None:
    def send(source: str, service: str = "s3.amazonaws.com") -> str:
        return resource_policy_decision(
            QUEUE_POLICY, "sqs:SendMessage", QUEUE, {"service": service}, {"aws:SourceArn": source}
        )

    assert send(BUCKET) == "allow"
    assert send("arn:aws:s3:::another") == "neutral"
    assert send(BUCKET, service="sns.amazonaws.com") == "neutral"


def test_an_unknown_condition_operator_is_not_guessed() -> None:
    policy = {
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sns:Publish",
                "Resource": TOPIC,
                "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
            }
        ]
    }
    with pytest.raises(IamError):
        resource_policy_decision(policy, "sns:Publish", TOPIC, {"arn": ROLE}, {})


def test_a_role_must_trust_the_service_that_assumes_it() -> None:
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ]
    }
    assert trusts_service(trust, "lambda.amazonaws.com")
    assert not trusts_service(trust, "sagemaker.amazonaws.com")
    assert not trusts_service({"Statement": []}, "lambda.amazonaws.com")
