"""The stack as `cdk deploy` makes it with no context, seen for how its parts connect: the
outputs, the input bucket's events to the ingest queue and function, the endpoint's topics to
the results function, the dead-letter queues on the way, the documented timings and defaults,
and the dependencies that order the first deploy."""

from __future__ import annotations

import json

from tests.infra.assembly import Synthesized, actions, check_creation_order, target
from tests.infra.create_mode.support import (
    DEFAULTS,
    joined,
)

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
