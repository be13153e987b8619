"""The stack as `cdk deploy` makes it with no context, seen for its security: no cdk-nag or
cfn-lint finding, each role granted exactly what it needs, every bucket, queue and topic
encrypted and reachable over TLS only."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.assembly import (
    Synthesized,
    actions,
    cfn_lint_errors,
    iter_statements,
    literal_text,
    resources_of,
    target,
    violations,
)
from tests.infra.create_mode.support import (
    DEFAULTS,
)

# The only actions AWS grants on Resource "*" alone (no resource-level permissions).
STAR_ONLY_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",
    "dynamodb:ListStreams",
}


def objects_of(bucket_id: str, pattern: str) -> dict[str, Any]:
    return {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, pattern]]}


def grants(statements: list[dict[str, Any]]) -> set[tuple[frozenset[str], str]]:
    """(actions, resource) pairs, one per resource, for exact comparisons of policies."""
    return {
        (frozenset(actions(statement)), json.dumps(resource, sort_keys=True))
        for statement in statements
        for resource in resources_of(statement)
    }


def grant(action_names: set[str], resource: Any) -> tuple[frozenset[str], str]:
    return frozenset(action_names), json.dumps(resource, sort_keys=True)


def test_synthesis_passes_cdk_nag_with_no_finding_left(stack: Synthesized) -> None:
    assert violations(stack) == []
    assert stack.synth_error is None


def test_template_has_no_cfn_lint_error(stack: Synthesized) -> None:
    assert cfn_lint_errors(stack.outdir / "AsyncInference.template.json") == []


def test_ingest_role_may_invoke_only_this_endpoint_and_write_only_the_table(
    stack: Synthesized, ids: dict[str, str]
) -> None:
    function = stack.properties(ids["ingest_function"])
    log_group = target(function["LoggingConfig"]["LogGroup"])
    assert grants(stack.statements(ids["ingest_role"])) == {
        grant({"sagemaker:InvokeEndpointAsync"}, {"Ref": ids["endpoint"]}),
        grant(
            {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
            {"Fn::GetAtt": [ids["table"], "Arn"]},
        ),
        grant({"s3:GetObject", "s3:GetObjectVersion"}, objects_of(ids["input_bucket"], "/*")),
        # on the bucket itself: without it HeadObject of a deleted key is 403, not 404
        grant({"s3:ListBucket"}, {"Fn::GetAtt": [ids["input_bucket"], "Arn"]}),
        grant(
            {
                "sqs:ReceiveMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueUrl",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
            },
            {"Fn::GetAtt": [ids["ingest_queue"], "Arn"]},
        ),
        # its notification covers the job manifests: it forwards them to the jobs queue
        grant(
            {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"},
            {"Fn::GetAtt": [ids["jobs_queue"], "Arn"]},
        ),
        grant({"logs:CreateLogStream", "logs:PutLogEvents"}, {"Fn::GetAtt": [log_group, "Arn"]}),
        grant({"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, "*"),
    }


def test_results_role_may_only_update_the_table_and_read_outputs(
    stack: Synthesized, ids: dict[str, str]
) -> None:
    function = stack.properties(ids["results_function"])
    log_group = target(function["LoggingConfig"]["LogGroup"])
    assert grants(stack.statements(ids["results_role"])) == {
        grant({"dynamodb:GetItem", "dynamodb:UpdateItem"}, {"Fn::GetAtt": [ids["table"], "Arn"]}),
        grant({"s3:GetObject"}, objects_of(ids["output_bucket"], "/outputs/*")),
        # the on-failure destination
        grant(
            {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"},
            {"Fn::GetAtt": [ids["failure_queue"], "Arn"]},
        ),
        grant({"logs:CreateLogStream", "logs:PutLogEvents"}, {"Fn::GetAtt": [log_group, "Arn"]}),
        grant({"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, "*"),
    }


def test_execution_role_reads_input_writes_outputs_and_publishes_to_its_topics(
    stack: Synthesized, ids: dict[str, str]
) -> None:
    role = stack.properties(ids["execution_role"])
    principal = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert principal == {"Service": "sagemaker.amazonaws.com"}
    granted = grants(stack.statements(ids["execution_role"]))
    assert grant({"s3:GetObject"}, objects_of(ids["input_bucket"], "/*")) in granted
    for prefix in ("/outputs/*", "/failures/*"):
        assert (
            grant(
                {"s3:PutObject", "s3:AbortMultipartUpload"},
                objects_of(ids["output_bucket"], prefix),
            )
            in granted
        )
    for topic in ("success_topic", "error_topic"):
        assert grant({"sns:Publish"}, {"Ref": ids[topic]}) in granted
    every_action = {action for action_set, _ in granted for action in action_set}
    assert not any(action.startswith(("kms:", "sagemaker:", "iam:")) for action in every_action)
    assert any(
        action_set
        == {"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"}
        for action_set, _ in granted
    )


def test_no_identity_policy_uses_an_action_wildcard_or_needless_star_resource(
    stack: Synthesized,
) -> None:
    for role_id, statement in iter_statements(stack):
        assert statement["Effect"] == "Allow", role_id
        for action in actions(statement):
            assert not action.endswith("*"), (role_id, action)
        if "*" in resources_of(statement):
            assert actions(statement) <= STAR_ONLY_ACTIONS, (role_id, statement)


def test_every_bucket_is_encrypted_private_tls_only_and_logged(
    stack: Synthesized, ids: dict[str, str]
) -> None:
    buckets = stack.resources("AWS::S3::Bucket")
    assert len(buckets) == 3
    policies = {
        target(policy["Properties"]["Bucket"]): policy["Properties"]["PolicyDocument"]["Statement"]
        for policy in stack.resources("AWS::S3::BucketPolicy").values()
    }
    for bucket_id, bucket in buckets.items():
        properties = bucket["Properties"]
        encryption = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert encryption[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert any(
            statement["Effect"] == "Deny"
            and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for statement in policies[bucket_id]
        ), bucket_id
        assert bucket["DeletionPolicy"] == "Retain"
    for data_bucket in ("input_bucket", "output_bucket"):
        properties = stack.properties(ids[data_bucket])
        assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
        log_bucket = target(properties["LoggingConfiguration"]["DestinationBucketName"])
        assert log_bucket in set(buckets) - {ids["input_bucket"], ids["output_bucket"]}
        (log_rule,) = stack.properties(log_bucket)["LifecycleConfiguration"]["Rules"]
        assert log_rule["ExpirationInDays"] == DEFAULTS.access_log_expiration_days
        (rule,) = properties["LifecycleConfiguration"]["Rules"]
        assert rule["NoncurrentVersionExpiration"] == {
            "NoncurrentDays": DEFAULTS.noncurrent_version_expiration_days
        }
        assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}


def test_every_queue_is_encrypted_and_tls_only(stack: Synthesized) -> None:
    queues = stack.resources("AWS::SQS::Queue")
    # with the result-event pipes' dead-letter queue, and the jobs queue, its dead-letter
    # queue and the completion pipe's
    assert len(queues) == 9
    for queue_id, queue in queues.items():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True, queue_id
        assert {
            "Action": "sqs:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
        } in stack.queue_policy_statements(queue_id)


def test_topics_use_a_rotated_customer_key_and_only_the_endpoint_may_publish(
    stack: Synthesized, ids: dict[str, str]
) -> None:
    key = stack.properties(ids["key"])
    assert key["EnableKeyRotation"] is True
    role_arn = {"Fn::GetAtt": [ids["execution_role"], "Arn"]}
    (role_may_use_key,) = [
        statement
        for statement in key["KeyPolicy"]["Statement"]
        if statement.get("Principal") == {"AWS": role_arn}
    ]
    assert actions(role_may_use_key) == {"kms:GenerateDataKey*", "kms:Decrypt"}
    assert "kms:ViaService" in role_may_use_key["Condition"]["StringEquals"]
    topic_policies = {
        target(policy["Properties"]["Topics"][0]): policy["Properties"]["PolicyDocument"][
            "Statement"
        ]
        for policy in stack.resources("AWS::SNS::TopicPolicy").values()
    }
    for topic in ("success_topic", "error_topic"):
        topic_id = ids[topic]
        assert stack.properties(topic_id)["KmsMasterKeyId"] == {"Fn::GetAtt": [ids["key"], "Arn"]}
        statements = {statement["Sid"]: statement for statement in topic_policies[topic_id]}
        assert statements["AllowPublishThroughSSLOnly"]["Condition"] == {
            "Bool": {"aws:SecureTransport": "false"}
        }
        only_endpoint = statements["OnlyTheEndpointPublishes"]
        assert only_endpoint["Effect"] == "Deny"
        assert only_endpoint["Principal"] == {"AWS": "*"}
        allowed = only_endpoint["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
        assert allowed[0] == role_arn
        assert literal_text(allowed[1]).endswith(":root")
        assert statements["EndpointPublishes"]["Principal"] == {"AWS": role_arn}
