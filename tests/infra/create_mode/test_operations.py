"""The stack as `cdk deploy` makes it with no context, seen for how it runs and is watched: the
demo model and the endpoint's scaling, the results table, the functions' runtime, logging,
environment and code, the alarms and the dashboard."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from lambdas.ingest.config import IngestConfig
from lambdas.results.config import ResultsConfig
from stacks.demo_model import SKLEARN_IMAGE_ACCOUNTS
from tests.infra.assembly import (
    Synthesized,
    configuration_variables,
    literal_text,
    resources_of,
    target,
    variables_read_by,
)
from tests.infra.create_mode.support import (
    DEFAULTS,
    joined,
)

ROOT = Path(__file__).resolve().parents[3]


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
