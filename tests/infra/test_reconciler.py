"""The reconciler as deployed: its schedule, its least-privilege role, its alarm and widget, its
environment (exactly what its config model reads) and its asset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lambdas.reconciler.config import ReconcilerConfig
from stacks.ingest import INGEST_QUEUE_RETENTION
from stacks.queues import DEAD_LETTER_RETENTION
from tests.infra.assembly import (
    Synthesized,
    actions,
    literal_text,
    resources_of,
    synthesize,
    target,
    violations,
)
from tests.infra.test_import_mode import CONTEXT as IMPORT_CONTEXT


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(
        {"reconcile_every_minutes": "10"}, tmp_path_factory.mktemp("reconciler") / "cdk.out"
    )


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(IMPORT_CONTEXT, tmp_path_factory.mktemp("reconciler-import") / "cdk.out")


def grants(stack: Synthesized, role: str) -> set[tuple[frozenset[str], str]]:
    return {
        (frozenset(actions(statement)), json.dumps(resource, sort_keys=True))
        for statement in stack.statements(role)
        for resource in resources_of(statement)
    }


def grant(names: set[str], resource: Any) -> tuple[frozenset[str], str]:
    return frozenset(names), json.dumps(resource, sort_keys=True)


def test_cdk_nag_has_no_finding(stack: Synthesized) -> None:
    assert violations(stack) == []
    assert stack.synth_error is None


def test_a_rule_runs_the_function_at_the_configured_rate_without_retries(
    stack: Synthesized,
) -> None:
    function = stack.output_target("ReconcilerFunctionName")
    (rule,) = [
        rule["Properties"]
        for rule in stack.resources("AWS::Events::Rule").values()
        if any(target(t["Arn"]) == function for t in rule["Properties"]["Targets"])
    ]
    assert rule["ScheduleExpression"] == "rate(10 minutes)"
    assert rule["State"] == "ENABLED"
    (rule_target,) = rule["Targets"]
    assert rule_target["RetryPolicy"]["MaximumRetryAttempts"] == 0
    properties = stack.properties(function)
    assert properties["Handler"] == "lambdas.reconciler.handler.handler"
    assert properties["Timeout"] == 300  # ends before the next run starts
    (invoke_config,) = [
        config["Properties"]
        for config in stack.resources("AWS::Lambda::EventInvokeConfig").values()
        if config["Properties"]["FunctionName"] == {"Ref": function}
    ]
    assert invoke_config["MaximumRetryAttempts"] == 0


def test_the_role_may_query_the_index_update_the_table_and_read_outputs_and_failures(
    stack: Synthesized,
) -> None:
    function = stack.output_target("ReconcilerFunctionName")
    role = stack.role_of_function(function)
    table = stack.output_target("ResultsTableName")
    bucket = stack.output_target("OutputBucketName")
    log_group = target(stack.properties(function)["LoggingConfig"]["LogGroup"])
    table_arn = {"Fn::GetAtt": [table, "Arn"]}
    bucket_arn = {"Fn::GetAtt": [bucket, "Arn"]}
    state = target(stack.properties(function)["Environment"]["Variables"]["RECONCILER_STATE_TABLE"])
    assert stack.properties(state)["KeySchema"] == [{"AttributeName": "name", "KeyType": "HASH"}]
    assert grants(stack, role) == {
        grant({"dynamodb:Query"}, {"Fn::Join": ["", [table_arn, "/index/by_status_shard"]]}),
        grant({"dynamodb:UpdateItem", "dynamodb:BatchGetItem", "dynamodb:GetItem"}, table_arn),
        # its review's progress, in its own table
        grant({"dynamodb:GetItem", "dynamodb:PutItem"}, {"Fn::GetAtt": [state, "Arn"]}),
        grant({"s3:ListBucket"}, bucket_arn),
        grant({"s3:GetObject"}, {"Fn::Join": ["", [bucket_arn, "/outputs/*"]]}),
        grant({"s3:GetObject"}, {"Fn::Join": ["", [bucket_arn, "/failures/*"]]}),
        grant({"logs:CreateLogStream", "logs:PutLogEvents"}, {"Fn::GetAtt": [log_group, "Arn"]}),
        grant({"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, "*"),
    }


def test_the_environment_is_exactly_what_the_config_model_reads(stack: Synthesized) -> None:
    function = stack.output_target("ReconcilerFunctionName")
    environment = stack.properties(function)["Environment"]["Variables"]
    read = {field.alias for field in ReconcilerConfig.model_fields.values()}
    powertools = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
    assert set(environment) - powertools == read
    assert environment["POWERTOOLS_SERVICE_NAME"] == "reconciler"
    assert environment["OUTPUT_BUCKET"] == {"Ref": stack.output_target("OutputBucketName")}
    assert environment["INGEST_QUEUE_RETENTION_SECONDS"] == str(
        int(INGEST_QUEUE_RETENTION.to_seconds())
    )
    assert environment["DEAD_LETTER_RETENTION_SECONDS"] == str(
        int(DEAD_LETTER_RETENTION.to_seconds())
    )
    config = ReconcilerConfig.model_validate(
        {name: value if isinstance(value, str) else "x" for name, value in environment.items()}
    )
    assert (config.request_ttl_seconds, config.invocation_timeout_seconds) == (21600, 900)


def test_the_asset_holds_common_and_reconciler_only(stack: Synthesized) -> None:
    function = stack.output_target("ReconcilerFunctionName")
    asset_key = stack.properties(function)["Code"]["S3Key"]
    staged: Path = stack.outdir / f"asset.{asset_key.removesuffix('.zip')}"
    files = {path.relative_to(staged).as_posix() for path in staged.rglob("*") if path.is_file()}
    assert "lambdas/reconciler/handler.py" in files
    assert "lambdas/common/outcomes.py" in files
    assert all(
        file == "lambdas/__init__.py" or file.startswith(("lambdas/common/", "lambdas/reconciler/"))
        for file in files
    ), files


def test_settled_records_raise_an_alarm_and_have_a_widget(stack: Synthesized) -> None:
    alarms = [alarm["Properties"] for alarm in stack.resources("AWS::CloudWatch::Alarm").values()]
    (settled,) = [a for a in alarms if a.get("MetricName") == "InferencesSettledByReconciler"]
    assert settled["Namespace"] == "AsyncInference"
    assert settled["Statistic"] == "Sum"
    assert settled["Threshold"] == 0
    assert settled["ComparisonOperator"] == "GreaterThanThreshold"
    dimensions = {d["Name"]: d["Value"] for d in settled["Dimensions"]}
    assert dimensions["service"] == "reconciler"
    assert target(dimensions["EndpointName"]) == stack.output_target("EndpointName")
    (dashboard,) = stack.resources("AWS::CloudWatch::Dashboard").values()
    body = literal_text(dashboard["Properties"]["DashboardBody"])
    assert "Settled by the reconciler" in body
    assert '"AsyncInference","InferencesSettledByReconciler"' in body
    assert '"AsyncInference","InferencesExpired"' in body


def test_import_mode_reads_the_named_output_bucket(imported: Synthesized) -> None:
    function = imported.output_target("ReconcilerFunctionName")
    role = imported.role_of_function(function)
    reads = {
        (action, literal_text(resource))
        for statement in imported.statements(role)
        for action in actions(statement)
        if action.startswith("s3:")
        for resource in resources_of(statement)
    }
    assert {action for action, _ in reads} == {"s3:ListBucket", "s3:GetObject"}
    assert all("existing-outputs" in resource for _, resource in reads)
    environment = imported.properties(function)["Environment"]["Variables"]
    assert environment["OUTPUT_BUCKET"] == "existing-outputs"
    assert violations(imported) == []
