"""The stack wired to an existing endpoint, with filters, batching and an alarm email."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.common.contract import StackOutput
from tests.infra.assembly import (
    Synthesized,
    actions,
    cfn_lint_errors,
    check_creation_order,
    iter_statements,
    literal_text,
    resources_of,
    synthesize,
    target,
    violations,
)

SUCCESS_TOPIC = "arn:aws:sns:us-east-1:123456789012:model-succeeded"
ERROR_TOPIC = "arn:aws:sns:us-east-1:123456789012:model-failed"
ENDPOINT_ROLE = "arn:aws:iam::123456789012:role/service-role/AmazonSageMaker-ExecutionRole-1"
CONTEXT = {
    "endpoint_mode": "import",
    "endpoint_name": "My-Model-Endpoint",
    "success_topic_arn": SUCCESS_TOPIC,
    "error_topic_arn": ERROR_TOPIC,
    "output_bucket_name": "existing-outputs",
    "endpoint_role_arn": ENDPOINT_ROLE,
    "key_prefixes": "incoming/,batch/",
    "key_suffixes": '[".json", ".csv"]',
    "batch_size": "50",
    "max_batching_window_seconds": "5",
    "max_concurrency": "3",
    "ingest_timeout_seconds": "120",
    "alarm_email": "ops@example.com",
    "log_level": "DEBUG",
    "system_log_level": "INFO",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(CONTEXT, tmp_path_factory.mktemp("import") / "cdk.out")


def function_id(stack: Synthesized, output: str) -> str:
    return stack.output_target(output)


def test_synthesis_passes_cdk_nag_and_cfn_lint(stack: Synthesized) -> None:
    assert violations(stack) == []
    assert stack.synth_error is None
    assert cfn_lint_errors(stack.outdir / "AsyncInference.template.json") == []


def test_nothing_of_the_endpoint_is_created(stack: Synthesized) -> None:
    types = {resource["Type"] for resource in stack.template["Resources"].values()}
    assert not {
        t for t in types if t.startswith(("AWS::SageMaker::", "AWS::ApplicationAutoScaling"))
    }
    assert len(stack.resources("AWS::S3::Bucket")) == 2  # input and its access logs
    # the only topic (and topic policy) is the alarm topic's
    (topic_id,) = stack.resources("AWS::SNS::Topic")
    (topic_policy,) = stack.resources("AWS::SNS::TopicPolicy").values()
    assert topic_policy["Properties"]["Topics"] == [{"Ref": topic_id}]


def test_outputs_name_the_imported_endpoint_and_topics(stack: Synthesized) -> None:
    assert stack.output("EndpointName") == "My-Model-Endpoint"
    assert stack.output("SuccessTopicArn") == SUCCESS_TOPIC
    assert stack.output("ErrorTopicArn") == ERROR_TOPIC
    assert stack.output("OutputBucketName") == "existing-outputs"
    # the imported endpoint's config owns its output paths
    assert "OutputPath" not in stack.template["Outputs"]
    assert "FailurePath" not in stack.template["Outputs"]


def test_ingest_may_invoke_only_the_imported_endpoint_by_its_lower_case_arn(
    stack: Synthesized,
) -> None:
    role = stack.role_of_function(function_id(stack, StackOutput.INGEST_FUNCTION_NAME))
    sagemaker = [
        statement
        for statement in stack.statements(role)
        if any(action.startswith("sagemaker:") for action in actions(statement))
    ]
    assert len(sagemaker) == 1
    assert actions(sagemaker[0]) == {"sagemaker:InvokeEndpointAsync"}
    (arn,) = resources_of(sagemaker[0])
    assert arn == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":sagemaker:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":endpoint/my-model-endpoint",
            ],
        ]
    }
    for role_id, statement in iter_statements(stack):
        assert "sagemaker:InvokeEndpointAsync" not in actions(statement) or role_id == role


def test_the_imported_endpoints_role_may_read_the_inputs(stack: Synthesized) -> None:
    """SageMaker reads each InputLocation as the endpoint's execution role."""
    input_bucket = stack.output_target("InputBucketName")
    (policy,) = [
        policy["Properties"]
        for policy in stack.resources("AWS::S3::BucketPolicy").values()
        if policy["Properties"]["Bucket"] == {"Ref": input_bucket}
    ]
    (read,) = [
        statement
        for statement in policy["PolicyDocument"]["Statement"]
        if statement.get("Principal") == {"AWS": ENDPOINT_ROLE}
    ]
    assert read["Effect"] == "Allow"
    assert actions(read) == {"s3:GetObject"}
    assert resources_of(read) == [{"Fn::Join": ["", [{"Fn::GetAtt": [input_bucket, "Arn"]}, "/*"]]}]


def test_functions_get_the_endpoint_name_as_given(stack: Synthesized) -> None:
    for output in ("IngestFunctionName", "ResultsFunctionName"):
        environment = stack.properties(function_id(stack, output))["Environment"]["Variables"]
        assert environment["ENDPOINT_NAME"] == "My-Model-Endpoint"


def test_results_function_subscribes_to_the_imported_topics_with_dead_letter_queues(
    stack: Synthesized,
) -> None:
    results = function_id(stack, StackOutput.RESULTS_FUNCTION_NAME)
    dlqs = {
        SUCCESS_TOPIC: stack.output_target(StackOutput.SUCCESS_DEAD_LETTER_QUEUE_URL),
        ERROR_TOPIC: stack.output_target(StackOutput.ERROR_DEAD_LETTER_QUEUE_URL),
    }
    subscriptions = {
        subscription["Properties"]["TopicArn"]: subscription["Properties"]
        for subscription in stack.resources("AWS::SNS::Subscription").values()
        if subscription["Properties"]["Protocol"] == "lambda"
    }
    assert set(subscriptions) == set(dlqs)
    for topic_arn, dlq in dlqs.items():
        assert subscriptions[topic_arn]["Endpoint"] == {"Fn::GetAtt": [results, "Arn"]}
        assert subscriptions[topic_arn]["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]}
        }
        assert any(
            statement["Principal"] == {"Service": "sns.amazonaws.com"}
            and statement["Condition"] == {"ArnEquals": {"aws:SourceArn": topic_arn}}
            for statement in stack.queue_policy_statements(dlq)
            if statement["Effect"] == "Allow"
        )
    permissions = {
        permission["Properties"]["SourceArn"]
        for permission in stack.resources("AWS::Lambda::Permission").values()
        if permission["Properties"]["Principal"] == "sns.amazonaws.com"
    }
    assert permissions == set(dlqs)


def test_results_may_read_only_the_imported_output_bucket(stack: Synthesized) -> None:
    role = stack.role_of_function(function_id(stack, StackOutput.RESULTS_FUNCTION_NAME))
    (read,) = [
        statement for statement in stack.statements(role) if "s3:GetObject" in actions(statement)
    ]
    assert actions(read) == {"s3:GetObject"}
    (resource,) = resources_of(read)
    assert literal_text(resource).endswith(":s3:::existing-outputs/*")


def test_one_notification_per_prefix_and_suffix_pair(stack: Synthesized) -> None:
    (notifications,) = stack.resources("Custom::S3BucketNotifications").values()
    configurations = notifications["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    queue = stack.output_target(StackOutput.INGEST_QUEUE_URL)
    jobs_queue = stack.output_target(StackOutput.JOBS_QUEUE_URL)
    (manifests,) = [
        c for c in configurations if c["QueueArn"] == {"Fn::GetAtt": [jobs_queue, "Arn"]}
    ]
    # the key filters do not touch jobs/: the manifests have a notification of their own
    assert manifests["Filter"]["Key"]["FilterRules"] == [
        {"Name": "suffix", "Value": ".manifest.json"},
        {"Name": "prefix", "Value": "jobs/"},
    ]
    configurations = [c for c in configurations if c is not manifests]
    pairs = set()
    for configuration in configurations:
        assert configuration["Events"] == ["s3:ObjectCreated:*"]
        assert configuration["QueueArn"] == {"Fn::GetAtt": [queue, "Arn"]}
        rules = {
            rule["Name"]: rule["Value"] for rule in configuration["Filter"]["Key"]["FilterRules"]
        }
        pairs.add((rules["prefix"], rules["suffix"]))
    assert len(configurations) == 4
    assert pairs == {
        ("incoming/", ".json"),
        ("incoming/", ".csv"),
        ("batch/", ".json"),
        ("batch/", ".csv"),
    }
    environment = stack.properties(function_id(stack, StackOutput.INGEST_FUNCTION_NAME))[
        "Environment"
    ]
    assert json.loads(environment["Variables"]["KEY_PREFIXES"]) == ["incoming/", "batch/"]
    assert json.loads(environment["Variables"]["KEY_SUFFIXES"]) == [".json", ".csv"]


def test_batching_window_settings_and_visibility_timeout(stack: Synthesized) -> None:
    ingest = function_id(stack, StackOutput.INGEST_FUNCTION_NAME)
    (mapping,) = [
        mapping
        for mapping in stack.resources("AWS::Lambda::EventSourceMapping").values()
        if mapping["Properties"]["FunctionName"] == {"Ref": ingest}
    ]
    properties = mapping["Properties"]
    assert properties["BatchSize"] == 50
    assert properties["MaximumBatchingWindowInSeconds"] == 5
    assert properties["ScalingConfig"] == {"MaximumConcurrency": 3}
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = stack.properties(stack.output_target(StackOutput.INGEST_QUEUE_URL))
    assert stack.properties(function_id(stack, StackOutput.INGEST_FUNCTION_NAME))["Timeout"] == 120
    assert queue["VisibilityTimeout"] == 6 * 120 + 5


def test_every_alarm_notifies_the_alarm_email_through_an_encrypted_topic(
    stack: Synthesized,
) -> None:
    ((topic_id, topic),) = stack.resources("AWS::SNS::Topic").items()
    key_id = target(topic["Properties"]["KmsMasterKeyId"])
    key_policy = stack.properties(key_id)["KeyPolicy"]["Statement"]
    assert any(
        statement.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
        and {"kms:GenerateDataKey*", "kms:Decrypt"} <= actions(statement)
        for statement in key_policy
    )
    (email,) = [
        subscription["Properties"]
        for subscription in stack.resources("AWS::SNS::Subscription").values()
        if subscription["Properties"]["Protocol"] == "email"
    ]
    assert email == {
        "Protocol": "email",
        "TopicArn": {"Ref": topic_id},
        "Endpoint": "ops@example.com",
    }
    alarms = stack.resources("AWS::CloudWatch::Alarm").values()
    # 4 dead-letter queues, 3 functions, queue age, endpoint backlog, reconciler settled; with
    # the result-event pipes' dead-letter queue; and the jobs queue's and pipe's dead-letter
    # queues and the jobs function
    assert len(alarms) == 14
    for alarm in alarms:
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]


def test_cloudwatch_may_publish_this_stacks_alarms_to_the_alarm_topic(stack: Synthesized) -> None:
    """enforce_ssl replaces SNS's default topic policy: CloudWatch needs its own statement."""
    (topic_id,) = stack.resources("AWS::SNS::Topic")
    (topic_policy,) = stack.resources("AWS::SNS::TopicPolicy").values()
    (publish,) = [
        statement
        for statement in topic_policy["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert publish["Effect"] == "Allow"
    assert actions(publish) == {"sns:Publish"}
    assert resources_of(publish) == [{"Ref": topic_id}]
    conditions = publish["Condition"]
    assert conditions["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source_arn = literal_text(conditions["ArnLike"]["aws:SourceArn"])
    assert source_arn.startswith("arn:")
    assert source_arn.endswith(":cloudwatch:" + ":" + ":alarm:AsyncInference-*")


def test_endpoint_backlog_alarm_watches_the_imported_endpoint(stack: Synthesized) -> None:
    (alarm,) = [
        alarm["Properties"]
        for alarm in stack.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["MetricName"] == "HasBacklogWithoutCapacity"
    ]
    assert alarm["Dimensions"] == [{"Name": "EndpointName", "Value": "My-Model-Endpoint"}]


def _dead_letter_queues(stack: Synthesized) -> set[str]:
    return {
        stack.output_target(name)
        for name in (
            "IngestDeadLetterQueueUrl",
            "SuccessDeadLetterQueueUrl",
            "ErrorDeadLetterQueueUrl",
            "ResultsFailureQueueUrl",
        )
    }


def test_every_dead_letter_queue_is_alarmed(stack: Synthesized) -> None:
    alarmed: set[Any] = {
        target(alarm["Properties"]["Dimensions"][0]["Value"])
        for alarm in stack.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    }
    assert _dead_letter_queues(stack) <= alarmed


def test_the_log_levels_of_the_context_reach_every_function(stack: Synthesized) -> None:
    outputs = ("IngestFunctionName", "ResultsFunctionName", "ReconcilerFunctionName")
    for output in outputs:
        function = stack.properties(function_id(stack, output))
        assert function["LoggingConfig"]["LogFormat"] == "JSON"
        assert function["LoggingConfig"]["ApplicationLogLevel"] == "DEBUG"
        assert function["LoggingConfig"]["SystemLogLevel"] == "INFO"
        assert function["Environment"]["Variables"]["POWERTOOLS_LOG_LEVEL"] == "DEBUG"


def test_every_creation_validated_resource_waits_for_its_permissions(stack: Synthesized) -> None:
    check_creation_order(stack)
