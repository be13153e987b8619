"""The stack as `cdk deploy` makes it with no context: endpoint created, demo model, defaults."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from lambdas.common.contract import StackOutput
from lambdas.ingest.config import IngestConfig
from lambdas.results.config import ResultsConfig
from stacks.config import StackConfig
from stacks.demo_model import SKLEARN_IMAGE_ACCOUNTS
from tests.infra.assembly import (
    Synthesized,
    actions,
    cfn_lint_errors,
    check_creation_order,
    configuration_variables,
    iter_statements,
    literal_text,
    resources_of,
    synthesize,
    target,
    variables_read_by,
    violations,
)

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_OUTPUTS = {
    # jobs (stacks/jobs.py), on by default
    "JobsTableName",
    "JobsPrefix",
    "JobsQueueUrl",
    "JobsDeadLetterQueueUrl",
    "JobsFunctionName",
    "OutputNaming",
    "InputBucketName",
    "OutputBucketName",
    "ResultsTableName",
    "InputLocationIndexName",
    "StatusIndexName",
    "IngestQueueUrl",
    "IngestDeadLetterQueueUrl",
    "SuccessTopicArn",
    "ErrorTopicArn",
    "SuccessDeadLetterQueueUrl",
    "ErrorDeadLetterQueueUrl",
    "ResultsFailureQueueUrl",
    "ResultsFunctionName",
    "IngestFunctionName",
    "ReconcilerFunctionName",
    "EndpointName",
    "OutputPath",
    "FailurePath",
    "InlineInputMaxBytes",
    "ReconcileDeadlines",
}
# The only actions AWS grants on Resource "*" alone (no resource-level permissions).
STAR_ONLY_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",
    "dynamodb:ListStreams",
}
DEFAULTS = StackConfig()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize({}, tmp_path_factory.mktemp("create") / "cdk.out")


def joined(value: Any) -> list[Any]:
    """The parts of an ``Fn::Join`` with an empty delimiter."""
    assert set(value) == {"Fn::Join"}
    delimiter, parts = value["Fn::Join"]
    assert delimiter == ""
    return list(parts)


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


@pytest.fixture(scope="module")
def ids(stack: Synthesized) -> dict[str, str]:
    """Logical ids of the main resources, found through the stack outputs."""
    found = {
        name: stack.output_target(output)
        for name, output in {
            "input_bucket": StackOutput.INPUT_BUCKET_NAME,
            "output_bucket": StackOutput.OUTPUT_BUCKET_NAME,
            "table": StackOutput.RESULTS_TABLE_NAME,
            "ingest_queue": StackOutput.INGEST_QUEUE_URL,
            "ingest_dlq": StackOutput.INGEST_DEAD_LETTER_QUEUE_URL,
            "success_topic": StackOutput.SUCCESS_TOPIC_ARN,
            "error_topic": StackOutput.ERROR_TOPIC_ARN,
            "success_dlq": StackOutput.SUCCESS_DEAD_LETTER_QUEUE_URL,
            "error_dlq": StackOutput.ERROR_DEAD_LETTER_QUEUE_URL,
            "failure_queue": StackOutput.RESULTS_FAILURE_QUEUE_URL,
            "ingest_function": StackOutput.INGEST_FUNCTION_NAME,
            "results_function": StackOutput.RESULTS_FUNCTION_NAME,
            "endpoint": StackOutput.ENDPOINT_NAME,
            "jobs_queue": StackOutput.JOBS_QUEUE_URL,
            "jobs_dlq": StackOutput.JOBS_DEAD_LETTER_QUEUE_URL,
            "jobs_function": StackOutput.JOBS_FUNCTION_NAME,
        }.items()
    }
    found["ingest_role"] = stack.role_of_function(found["ingest_function"])
    found["results_role"] = stack.role_of_function(found["results_function"])
    (model_id,) = stack.resources("AWS::SageMaker::Model")
    found["execution_role"] = target(stack.properties(model_id)["ExecutionRoleArn"])
    found["model"] = model_id
    (found["endpoint_config"],) = stack.resources("AWS::SageMaker::EndpointConfig")
    (found["key"],) = stack.resources("AWS::KMS::Key")
    return found


def test_synthesis_passes_cdk_nag_with_no_finding_left(stack: Synthesized) -> None:
    assert violations(stack) == []
    assert stack.synth_error is None


def test_template_has_no_cfn_lint_error(stack: Synthesized) -> None:
    assert cfn_lint_errors(stack.outdir / "AsyncInference.template.json") == []


def test_outputs_are_the_contract_and_point_at_the_right_resources(
    stack: Synthesized, ids: dict[str, str]
) -> None:
    assert set(stack.template["Outputs"]) == CONTRACT_OUTPUTS
    assert stack.output("InputLocationIndexName") == "by_input_keys"  # layout 2, the default
    assert stack.output("StatusIndexName") == "by_status_shard"
    assert stack.output("OutputNaming") == "input"
    assert stack.output("InlineInputMaxBytes") == "128000"
    assert json.loads(stack.output("ReconcileDeadlines")) == {
        "REQUEST_TTL_SECONDS": "21600",
        "INVOCATION_TIMEOUT_SECONDS": "900",
        "INGEST_QUEUE_RETENTION_SECONDS": str(4 * 24 * 3600),
        "DEAD_LETTER_RETENTION_SECONDS": str(14 * 24 * 3600),
        "SUBMITTED_MARGIN_SECONDS": "1800",
    }
    assert stack.resources("AWS::SQS::Queue")[ids["ingest_queue"]]
    assert stack.output("EndpointName") == {"Fn::GetAtt": [ids["endpoint"], "EndpointName"]}
    output_path = joined(stack.output("OutputPath"))
    assert output_path == ["s3://", {"Ref": ids["output_bucket"]}, "/outputs"]
    assert joined(stack.output("FailurePath")) == [
        "s3://",
        {"Ref": ids["output_bucket"]},
        "/failures",
    ]


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


def test_bucket_events_go_to_the_ingest_queue_and_only_the_input_bucket_may_send(
    stack: Synthesized, ids: dict[str, str]
) -> None:
    (notifications,) = stack.resources("Custom::S3BucketNotifications").values()
    properties = notifications["Properties"]
    assert properties["BucketName"] == {"Ref": ids["input_bucket"]}
    assert properties["NotificationConfiguration"] == {
        "QueueConfigurations": [
            {
                "Events": ["s3:ObjectCreated:*"],
                "QueueArn": {"Fn::GetAtt": [ids["ingest_queue"], "Arn"]},
            }
        ]
    }
    (s3_may_send,) = [
        statement
        for statement in stack.queue_policy_statements(ids["ingest_queue"])
        if statement["Effect"] == "Allow"
    ]
    assert s3_may_send["Principal"] == {"Service": "s3.amazonaws.com"}
    assert "sqs:SendMessage" in actions(s3_may_send)
    assert s3_may_send["Condition"] == {
        "ArnLike": {"aws:SourceArn": {"Fn::GetAtt": [ids["input_bucket"], "Arn"]}}
    }


def test_queue_feeds_the_ingest_function_in_batches_with_partial_failures(
    stack: Synthesized, ids: dict[str, str]
) -> None:
    (mapping,) = [
        mapping
        for mapping in stack.resources("AWS::Lambda::EventSourceMapping").values()
        if mapping["Properties"]["FunctionName"] == {"Ref": ids["ingest_function"]}
    ]
    properties = mapping["Properties"]
    assert properties["EventSourceArn"] == {"Fn::GetAtt": [ids["ingest_queue"], "Arn"]}
    assert properties["FunctionName"] == {"Ref": ids["ingest_function"]}
    assert properties["BatchSize"] == DEFAULTS.batch_size
    assert "MaximumBatchingWindowInSeconds" not in properties  # 0 by default
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["ScalingConfig"] == {"MaximumConcurrency": DEFAULTS.max_concurrency}


def test_ingest_queue_visibility_is_six_function_timeouts_and_redrives_to_its_dlq(
    stack: Synthesized, ids: dict[str, str]
) -> None:
    queue = stack.properties(ids["ingest_queue"])
    timeout = stack.properties(ids["ingest_function"])["Timeout"]
    assert timeout == DEFAULTS.ingest_timeout_seconds
    assert queue["VisibilityTimeout"] == 6 * timeout
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [ids["ingest_dlq"], "Arn"]},
        "maxReceiveCount": DEFAULTS.max_receive_count,
    }


# Documented AWS values, written as literals so that a changed default fails here, rather than
# being compared with the implementation's own defaults.
SQS_SECONDS_PER_DAY = 86400


def test_documented_queue_timings_are_the_literal_aws_values(
    stack: Synthesized, ids: dict[str, str]
) -> None:
    # AWS: set the source queue's visibility timeout to six times the function timeout
    # (docs/configuration.md: ingest_timeout_seconds defaults to 60, batching window to 0).
    assert stack.properties(ids["ingest_function"])["Timeout"] == 60
    ingest_queue = stack.properties(ids["ingest_queue"])
    assert ingest_queue["VisibilityTimeout"] == 360
    assert ingest_queue["MessageRetentionPeriod"] == 4 * SQS_SECONDS_PER_DAY == 345600
    for dead_letters in ("ingest_dlq", "success_dlq", "error_dlq", "failure_queue"):
        # 14 days, SQS's maximum: time to inspect and redrive.
        assert stack.properties(ids[dead_letters])["MessageRetentionPeriod"] == 1209600


def test_invocation_defaults_are_sagemakers_documented_defaults(
    stack: Synthesized, ids: dict[str, str]
) -> None:
    # InvokeEndpointAsync: RequestTTLSeconds defaults to 21600 (6 h), InvocationTimeoutSeconds
    # to 900 (15 min).
    variables = stack.properties(ids["ingest_function"])["Environment"]["Variables"]
    assert variables["REQUEST_TTL_SECONDS"] == "21600"
    assert variables["INVOCATION_TIMEOUT_SECONDS"] == "900"


def test_results_function_subscribes_to_both_topics_with_a_dead_letter_queue_each(
    stack: Synthesized, ids: dict[str, str]
) -> None:
    subscriptions = {
        target(subscription["Properties"]["TopicArn"]): subscription["Properties"]
        for subscription in stack.resources("AWS::SNS::Subscription").values()
    }
    assert set(subscriptions) == {ids["success_topic"], ids["error_topic"]}
    for topic, dlq in (("success_topic", "success_dlq"), ("error_topic", "error_dlq")):
        subscription = subscriptions[ids[topic]]
        assert subscription["Protocol"] == "lambda"
        assert subscription["Endpoint"] == {"Fn::GetAtt": [ids["results_function"], "Arn"]}
        assert subscription["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [ids[dlq], "Arn"]}
        }
        sns_may_send = [
            statement
            for statement in stack.queue_policy_statements(ids[dlq])
            if statement["Effect"] == "Allow"
        ]
        assert sns_may_send == [
            {
                "Action": "sqs:SendMessage",
                "Condition": {"ArnEquals": {"aws:SourceArn": {"Ref": ids[topic]}}},
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Resource": {"Fn::GetAtt": [ids[dlq], "Arn"]},
            }
        ]


def test_failed_results_invocations_land_on_the_failure_queue_after_two_retries(
    stack: Synthesized, ids: dict[str, str]
) -> None:
    (properties,) = [
        config["Properties"]
        for config in stack.resources("AWS::Lambda::EventInvokeConfig").values()
        if config["Properties"]["FunctionName"] == {"Ref": ids["results_function"]}
    ]
    assert properties["MaximumRetryAttempts"] == 2
    assert properties["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": [ids["failure_queue"], "Arn"]}}
    }


def test_endpoint_config_is_asynchronous_with_both_topics(
    stack: Synthesized, ids: dict[str, str]
) -> None:
    config = stack.properties(ids["endpoint_config"])
    (variant,) = config["ProductionVariants"]
    assert variant["InstanceType"] == DEFAULTS.instance_type
    assert variant["InitialInstanceCount"] == 1
    assert variant["ModelName"] == {"Fn::GetAtt": [ids["model"], "ModelName"]}
    async_config = config["AsyncInferenceConfig"]
    assert async_config["ClientConfig"] == {
        "MaxConcurrentInvocationsPerInstance": DEFAULTS.max_concurrent_invocations_per_instance
    }
    output = async_config["OutputConfig"]
    assert output["S3OutputPath"] == stack.output("OutputPath")
    assert output["S3FailurePath"] == stack.output("FailurePath")
    assert output["NotificationConfig"] == {
        "SuccessTopic": {"Ref": ids["success_topic"]},
        "ErrorTopic": {"Ref": ids["error_topic"]},
        "IncludeInferenceResponseIn": ["SUCCESS_NOTIFICATION_TOPIC"],
    }


def test_endpoint_is_created_only_once_its_role_may_publish(
    stack: Synthesized, ids: dict[str, str]
) -> None:
    endpoint = stack.template["Resources"][ids["endpoint"]]
    topic_policies = set(stack.resources("AWS::SNS::TopicPolicy"))
    role_policies = {
        policy_id
        for policy_id, policy in stack.resources("AWS::IAM::Policy").items()
        if {"Ref": ids["execution_role"]} in policy["Properties"]["Roles"]
    }
    assert len(topic_policies) == 2
    assert topic_policies | role_policies | {ids["key"]} <= set(endpoint["DependsOn"])
    model = stack.template["Resources"][ids["model"]]
    assert role_policies <= set(model["DependsOn"])


def test_demo_model_runs_on_the_regional_scikit_learn_image(
    stack: Synthesized, ids: dict[str, str]
) -> None:
    container = stack.properties(ids["model"])["PrimaryContainer"]
    template, variables = container["Image"]["Fn::Sub"]
    assert template == (
        "${Account}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/sagemaker-scikit-learn:1.2-1-cpu-py3"
    )
    mapping_name = variables["Account"]["Fn::FindInMap"][0]
    assert variables["Account"]["Fn::FindInMap"][1:] == [{"Ref": "AWS::Region"}, "account"]
    mapping = stack.template["Mappings"][mapping_name]
    assert mapping["us-east-1"] == {"account": "683313688378"}
    assert mapping["us-west-2"] == {"account": "246618743249"}
    assert mapping["eu-west-1"] == {"account": "141502667606"}
    assert {region: entry["account"] for region, entry in mapping.items()} == SKLEARN_IMAGE_ACCOUNTS
    assert container["Environment"] == {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    }


def test_demo_model_archive_is_the_model_folder_under_code(
    stack: Synthesized, ids: dict[str, str]
) -> None:
    model_data_url = stack.properties(ids["model"])["PrimaryContainer"]["ModelDataUrl"]
    asset_hash = model_data_url["Fn::Sub"].rsplit("/", 1)[1].split(".")[0]
    (archive_path,) = stack.outdir.glob(f"asset.{asset_hash}*")
    with tarfile.open(fileobj=io.BytesIO(archive_path.read_bytes()), mode="r:gz") as archive:
        members = {member.name: member for member in archive.getmembers()}
        entry_point = archive.extractfile(members["code/inference.py"])
        assert entry_point is not None
        packaged = entry_point.read()
    model_dir = ROOT / "asyncinfer" / "model"
    expected = {
        f"code/{path.name}" for path in model_dir.iterdir() if path.suffix in {".py", ".csv"}
    }
    assert set(members) == {"code", *expected}
    assert packaged == (model_dir / "inference.py").read_bytes()
    # SageMaker reads the asset with the execution role, and only that object
    granted = {
        json.dumps(resource, sort_keys=True)
        for statement in stack.statements(ids["execution_role"])
        for resource in resources_of(statement)
    }
    assert any(asset_hash in resource for resource in granted)


def test_endpoint_scales_to_zero_and_back_out(stack: Synthesized, ids: dict[str, str]) -> None:
    endpoint_name = {"Fn::GetAtt": [ids["endpoint"], "EndpointName"]}
    ((target_id, scalable),) = stack.resources(
        "AWS::ApplicationAutoScaling::ScalableTarget"
    ).items()
    properties = scalable["Properties"]
    assert properties["MinCapacity"] == 0
    assert properties["MaxCapacity"] == DEFAULTS.max_instance_count
    assert properties["ServiceNamespace"] == "sagemaker"
    assert properties["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert joined(properties["ResourceId"]) == ["endpoint/", endpoint_name, "/variant/AllTraffic"]
    policies = {
        policy["Properties"]["PolicyType"]: (policy_id, policy["Properties"])
        for policy_id, policy in stack.resources(
            "AWS::ApplicationAutoScaling::ScalingPolicy"
        ).items()
    }
    assert set(policies) == {"TargetTrackingScaling", "StepScaling"}
    _, tracking = policies["TargetTrackingScaling"]
    assert tracking["ScalingTargetId"] == {"Ref": target_id}
    tracking_config = tracking["TargetTrackingScalingPolicyConfiguration"]
    assert tracking_config["TargetValue"] == DEFAULTS.target_backlog_per_instance
    assert tracking_config["CustomizedMetricSpecification"] == {
        "Namespace": "AWS/SageMaker",
        "MetricName": "ApproximateBacklogSizePerInstance",
        "Dimensions": [{"Name": "EndpointName", "Value": endpoint_name}],
        "Statistic": "Average",
    }
    step_id, step = policies["StepScaling"]
    assert step["ScalingTargetId"] == {"Ref": target_id}
    assert step["StepScalingPolicyConfiguration"]["AdjustmentType"] == "ChangeInCapacity"
    assert step["StepScalingPolicyConfiguration"]["StepAdjustments"] == [
        {"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}
    ]
    (trigger,) = [
        alarm["Properties"]
        for alarm in stack.resources("AWS::CloudWatch::Alarm").values()
        if {"Ref": step_id} in alarm["Properties"].get("AlarmActions", [])
    ]
    assert trigger["MetricName"] == "HasBacklogWithoutCapacity"
    assert trigger["Namespace"] == "AWS/SageMaker"
    assert trigger["Dimensions"] == [{"Name": "EndpointName", "Value": endpoint_name}]
    assert trigger["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert trigger["Threshold"] == 1


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


def test_results_table_follows_the_record_contract(stack: Synthesized, ids: dict[str, str]) -> None:
    table = stack.template["Resources"][ids["table"]]
    properties = table["Properties"]
    assert table["DeletionPolicy"] == "Retain"
    assert properties["KeySchema"] == [{"AttributeName": "inference_id", "KeyType": "HASH"}]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    indexes = {index["IndexName"]: index for index in properties["GlobalSecondaryIndexes"]}
    # layout 2, the default (tests/infra/test_table_layout.py checks every migration step)
    assert indexes["by_input_keys"]["KeySchema"] == [
        {"AttributeName": "input_location", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    assert indexes["by_status_shard"]["KeySchema"] == [
        {"AttributeName": "status_shard", "KeyType": "HASH"},
        {"AttributeName": "status_time", "KeyType": "RANGE"},
    ]
    assert all(index["Projection"] == {"ProjectionType": "KEYS_ONLY"} for index in indexes.values())


def test_functions_share_runtime_layer_tracing_and_log_retention(
    stack: Synthesized, ids: dict[str, str]
) -> None:
    for name in ("ingest", "results"):
        function = stack.properties(ids[f"{name}_function"])
        assert function["Runtime"] == "python3.13"
        assert function["Architectures"] == ["arm64"]
        assert function["Handler"] == f"lambdas.{name}.handler.handler"
        assert function["TracingConfig"] == {"Mode": "Active"}
        (layer,) = function["Layers"]
        assert layer == {
            "Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:017000801446:layer:"
            f"AWSLambdaPowertoolsPythonV3-python313-arm64:{DEFAULTS.powertools_layer_version}"
        }
        log_group = stack.properties(target(function["LoggingConfig"]["LogGroup"]))
        assert log_group["RetentionInDays"] == DEFAULTS.log_retention_days
        environment = function["Environment"]["Variables"]
        assert environment["POWERTOOLS_SERVICE_NAME"] == name
        assert environment["POWERTOOLS_METRICS_NAMESPACE"] == "AsyncInference"
        assert environment["TABLE_NAME"] == {"Ref": ids["table"]}
        assert environment["ENDPOINT_NAME"] == {"Fn::GetAtt": [ids["endpoint"], "EndpointName"]}


def test_functions_log_json_that_lambda_filters_by_level(stack: Synthesized) -> None:
    """Lambda drops application lines below INFO and its own start and report lines (system
    level WARN) before CloudWatch Logs ingests (and bills) them."""
    outputs = ("IngestFunctionName", "ResultsFunctionName", "ReconcilerFunctionName")
    for output in outputs:
        function = stack.properties(stack.output_target(output))
        logging_config = dict(function["LoggingConfig"])
        assert stack.properties(target(logging_config.pop("LogGroup")))  # the function's own
        assert logging_config == {
            "LogFormat": "JSON",
            "ApplicationLogLevel": "INFO",
            "SystemLogLevel": "WARN",
        }
        # Powertools follows Lambda's level; its own setting is kept equal to it
        assert function["Environment"]["Variables"]["POWERTOOLS_LOG_LEVEL"] == "INFO"


def test_function_environments_follow_the_contract(stack: Synthesized, ids: dict[str, str]) -> None:
    ingest = stack.properties(ids["ingest_function"])["Environment"]["Variables"]
    assert ingest["INPUT_BUCKET"] == {"Ref": ids["input_bucket"]}
    assert {name: value for name, value in ingest.items() if isinstance(value, str)} == {
        "KEY_PREFIXES": "[]",
        "KEY_SUFFIXES": "[]",
        "ACCEPT": "application/json",
        "DEFAULT_CONTENT_TYPE": "application/octet-stream",
        "CONTENT_TYPE_MAP": "{}",
        "CUSTOM_ATTRIBUTES": "{}",
        "METADATA_ATTRIBUTES": "[]",
        "INVOCATION_TIMEOUT_SECONDS": "900",
        "REQUEST_TTL_SECONDS": "21600",
        "MAX_INPUT_BYTES": "1073741824",
        "SUBMIT_CONCURRENCY": "10",
        "OUTPUT_NAMING": "input",
        "INLINE_INPUT_MAX_BYTES": "128000",
        "RETENTION_DAYS": "90",
        "JOBS_PREFIX": "jobs/",
        "POWERTOOLS_SERVICE_NAME": "ingest",
        "POWERTOOLS_METRICS_NAMESPACE": "AsyncInference",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    results = stack.properties(ids["results_function"])["Environment"]["Variables"]
    assert results["RETENTION_DAYS"] == "90"
    assert results["INLINE_RESULT_MAX_BYTES"] == "16384"


def test_each_function_environment_is_exactly_what_its_config_reads(
    stack: Synthesized, ids: dict[str, str]
) -> None:
    for name, model in (("ingest", IngestConfig), ("results", ResultsConfig)):
        assert configuration_variables(stack, ids[f"{name}_function"]) == variables_read_by(model)


def test_function_assets_hold_only_their_own_code_and_common(
    stack: Synthesized, ids: dict[str, str]
) -> None:
    for name, other in (("ingest", "results"), ("results", "ingest")):
        asset_key = stack.properties(ids[f"{name}_function"])["Code"]["S3Key"]
        staged = stack.outdir / f"asset.{asset_key.removesuffix('.zip')}"
        files = {
            path.relative_to(staged).as_posix() for path in staged.rglob("*") if path.is_file()
        }
        assert "lambdas/__init__.py" in files
        assert "lambdas/common/records.py" in files
        assert "lambdas/common/store.py" in files
        assert all(
            file == "lambdas/__init__.py"
            or file.startswith(("lambdas/common/", f"lambdas/{name}/"))
            for file in files
        ), files
        assert not any(f"lambdas/{other}/" in file or file.endswith(".pyc") for file in files)


def test_every_dead_letter_queue_has_an_alarm(stack: Synthesized, ids: dict[str, str]) -> None:
    alarmed = {
        target(alarm["Properties"]["Dimensions"][0]["Value"])
        for alarm in stack.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and alarm["Properties"]["Threshold"] == 0
        and alarm["Properties"]["ComparisonOperator"] == "GreaterThanThreshold"
    }
    dead_letter_queues = {
        target(queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for queue in stack.resources("AWS::SQS::Queue").values()
        if "RedrivePolicy" in queue["Properties"]
    }
    dead_letter_queues |= {
        target(subscription["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for subscription in stack.resources("AWS::SNS::Subscription").values()
    }
    dead_letter_queues |= {
        target(config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"])
        for config in stack.resources("AWS::Lambda::EventInvokeConfig").values()
        if "DestinationConfig" in config["Properties"]
    }
    assert dead_letter_queues == {
        ids["ingest_dlq"],
        ids["success_dlq"],
        ids["error_dlq"],
        ids["failure_queue"],
        ids["jobs_dlq"],
    }
    assert dead_letter_queues <= alarmed


def test_functions_queue_age_and_stuck_endpoint_are_alarmed(
    stack: Synthesized, ids: dict[str, str]
) -> None:
    alarms = [alarm["Properties"] for alarm in stack.resources("AWS::CloudWatch::Alarm").values()]
    errors = {
        target(alarm["Dimensions"][0]["Value"])
        for alarm in alarms
        if alarm.get("MetricName") == "Errors" and alarm["Namespace"] == "AWS/Lambda"
    }
    reconciler = stack.output_target("ReconcilerFunctionName")
    assert errors == {
        ids["ingest_function"],
        ids["results_function"],
        reconciler,
        ids["jobs_function"],
    }
    (age,) = [
        alarm for alarm in alarms if alarm.get("MetricName") == "ApproximateAgeOfOldestMessage"
    ]
    assert target(age["Dimensions"][0]["Value"]) == ids["ingest_queue"]
    assert age["Threshold"] == DEFAULTS.oldest_message_alarm_seconds
    stuck = [
        alarm
        for alarm in alarms
        if alarm.get("MetricName") == "HasBacklogWithoutCapacity" and not alarm.get("AlarmActions")
    ]
    assert len(stuck) == 1
    assert stuck[0]["EvaluationPeriods"] == 15
    # no alarm_email: no alarm topic, so the scale-out trigger is the only alarm with an action
    assert [alarm for alarm in alarms if alarm.get("AlarmActions")] == [
        alarm
        for alarm in alarms
        if alarm.get("MetricName") == "HasBacklogWithoutCapacity"
        and alarm["EvaluationPeriods"] == 2
    ]


def test_dashboard_shows_flow_backlog_outcomes_and_latency(stack: Synthesized) -> None:
    (dashboard,) = stack.resources("AWS::CloudWatch::Dashboard").values()
    body = literal_text(dashboard["Properties"]["DashboardBody"])
    for expected in (
        "NumberOfMessagesSent",
        "sent / PERIOD(sent)",
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
        "ApproximateBacklogSize",
        '"AsyncInference","InferencesCompleted"',
        '"AsyncInference","InferencesFailed"',
        '"AsyncInference","EndToEndLatency"',
        '"stat":"p50"',
        '"stat":"p95"',
    ):
        assert expected in body, expected


def test_every_creation_validated_resource_waits_for_its_permissions(stack: Synthesized) -> None:
    check_creation_order(stack)


def test_the_result_event_pipes_depend_on_their_roles_policy(stack: Synthesized) -> None:
    pipes = stack.resources("AWS::Pipes::Pipe")
    assert len(pipes) >= 2  # the result events' (and the jobs' completion pipe)
    for pipe in pipes.values():
        role = target(pipe["Properties"]["RoleArn"])
        (policy,) = (
            logical_id
            for logical_id, policy in stack.resources("AWS::IAM::Policy").items()
            if {"Ref": role} in policy["Properties"]["Roles"]
        )
        assert policy in pipe["DependsOn"]


def test_the_topic_subscriptions_depend_on_their_dead_letter_queues_policy(
    stack: Synthesized,
) -> None:
    for subscription in stack.resources("AWS::SNS::Subscription").values():
        queue = target(subscription["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        (policy,) = (
            logical_id
            for logical_id, policy in stack.resources("AWS::SQS::QueuePolicy").items()
            if {"Ref": queue} in policy["Properties"]["Queues"]
        )
        assert policy in subscription["DependsOn"]
