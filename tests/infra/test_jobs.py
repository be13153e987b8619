"""Jobs as deployed: one role each for the function and the completion pipe, least privilege
with no ``*`` where an ARN is known, the pipe created after its policy, the manifests' route
into the jobs queue in either input mode, and the function's environment."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.jobs.config import JobsConfig
from stacks.config import ConfigError, ManifestRoute, StackConfig, manifest_route_for
from tests.infra.assembly import (
    Synthesized,
    actions,
    configuration_variables,
    literal_text,
    resources_of,
    synthesize,
    target,
    variables_read_by,
    violations,
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize({}, tmp_path_factory.mktemp("jobs") / "cdk.out")


@pytest.fixture(scope="module")
def eventbridge(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(
        {"event_source": "eventbridge", "key_prefixes": "images/"},
        tmp_path_factory.mktemp("jobs-eb") / "cdk.out",
    )


def jobs_function(stack: Synthesized) -> str:
    return stack.output_target("JobsFunctionName")


def test_cdk_nag_has_no_finding(stack: Synthesized, eventbridge: Synthesized) -> None:
    assert violations(stack) == []
    assert stack.synth_error is None
    assert violations(eventbridge) == []


def test_the_environment_is_exactly_what_the_config_reads(stack: Synthesized) -> None:
    function = jobs_function(stack)
    assert configuration_variables(stack, function) == variables_read_by(JobsConfig)


def test_the_role_may_do_only_what_jobs_need(stack: Synthesized) -> None:
    role = stack.role_of_function(jobs_function(stack))
    granted: dict[str, set[str]] = {}
    for statement in stack.statements(role):
        assert statement["Effect"] == "Allow"
        for resource in resources_of(statement):
            text = json.dumps(resource, sort_keys=True)
            granted.setdefault(text, set()).update(actions(statement))
    # "*" only where AWS requires it (X-Ray has no resource-level permissions)
    assert granted.get('"*"', set()) <= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    jobs_table = stack.output_target("JobsTableName")
    results_table = stack.output_target("ResultsTableName")
    by_target = {
        text: names for text, names in granted.items() if '"Fn::GetAtt"' in text and "Arn" in text
    }
    table_grants = [
        names for text, names in by_target.items() if jobs_table in text and "index" not in text
    ]
    assert set().union(*table_grants) == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
        "dynamodb:BatchGetItem",
    }
    results = [names for text, names in by_target.items() if results_table in text]
    assert set().union(*results) == {"dynamodb:BatchGetItem"}  # reads records, never writes
    writes = {
        literal_text(json.loads(text)) for text, names in granted.items() if "s3:PutObject" in names
    }
    assert writes == {"/jobs/*"}  # only under jobs_prefix of the output bucket


def test_the_pipe_reads_the_jobs_stream_and_is_created_after_its_policy(
    stack: Synthesized,
) -> None:
    (pipe_id, pipe) = next(
        (logical_id, resource)
        for logical_id, resource in stack.resources("AWS::Pipes::Pipe").items()
        if "Job" in resource["Properties"].get("Description", "")
    )
    properties = pipe["Properties"]
    assert target(properties["Source"]) == stack.output_target("JobsTableName")
    assert properties["TargetParameters"]["EventBridgeEventBusParameters"] == {
        "Source": "asyncinfer",
        "DetailType": "Job Completed",
    }
    role = target(properties["RoleArn"])
    policies = [
        logical_id
        for logical_id, policy in stack.resources("AWS::IAM::Policy").items()
        if {"Ref": role} in policy["Properties"]["Roles"]
    ]
    assert policies
    assert set(policies) <= set(pipe.get("DependsOn", []))
    (pattern,) = properties["SourceParameters"]["FilterCriteria"]["Filters"]
    document = json.loads(pattern["Pattern"])
    assert document["eventName"] == ["MODIFY"]  # one record per job: its final transition
    assert pipe_id


def _rule_targets_queue(rule: dict[str, Any], queue: str) -> bool:
    return any(target(t["Arn"]) == queue for t in rule["Properties"].get("Targets", []))


def test_outcomes_reach_the_jobs_queue_from_the_stacks_bus(stack: Synthesized) -> None:
    queue = stack.output_target("JobsQueueUrl")
    patterns = [
        rule["Properties"]["EventPattern"]
        for rule in stack.resources("AWS::Events::Rule").values()
        if _rule_targets_queue(rule, queue)
    ]
    assert {
        "source": ["asyncinfer"],
        "detail-type": ["Inference Completed", "Inference Failed"],
    } in patterns


def test_s3_mode_forwards_manifests_through_ingest(stack: Synthesized) -> None:
    ingest = stack.output_target("IngestFunctionName")
    variables = stack.properties(ingest)["Environment"]["Variables"]
    assert variables["JOBS_PREFIX"] == "jobs/"
    assert target(variables["JOBS_QUEUE_URL"]) == stack.output_target("JobsQueueUrl")
    role = stack.role_of_function(ingest)
    sends = [s for s in stack.statements(role) if "sqs:SendMessage" in actions(s)]
    assert [target(r) for s in sends for r in resources_of(s)] == [
        stack.output_target("JobsQueueUrl")
    ]


def test_eventbridge_mode_has_a_manifest_rule(eventbridge: Synthesized) -> None:
    queue = eventbridge.output_target("JobsQueueUrl")
    keys = [
        rule["Properties"]["EventPattern"]["detail"]["object"]["key"]
        for rule in eventbridge.resources("AWS::Events::Rule").values()
        if _rule_targets_queue(rule, queue)
        and rule["Properties"].get("EventPattern", {}).get("source") == ["aws.s3"]
    ]
    assert keys == [[{"wildcard": "jobs/*.manifest.json"}]]
    ingest = eventbridge.output_target("IngestFunctionName")
    assert "JOBS_QUEUE_URL" not in eventbridge.properties(ingest)["Environment"]["Variables"]


@pytest.mark.parametrize(
    ("prefixes", "suffixes", "route"),
    [
        ([], [], ManifestRoute.FORWARD),
        ([], [".json"], ManifestRoute.FORWARD),
        (["images/"], [], ManifestRoute.NOTIFICATION),
        ([], [".csv"], ManifestRoute.NOTIFICATION),
        (["j"], [".json"], ManifestRoute.FORWARD),
    ],
)
def test_the_manifests_route_never_overlaps_ingests_notification(
    prefixes: list[str], suffixes: list[str], route: ManifestRoute
) -> None:
    assert manifest_route_for("jobs/", prefixes, suffixes) is route


@pytest.mark.parametrize(
    "context",
    [
        {"key_prefixes": "jobs/a/"},  # inputs under jobs_prefix: never inferred
        {"key_suffixes": "x.manifest.json"},  # overlaps the manifests without covering them
    ],
)
def test_key_filters_that_clash_with_jobs_are_refused(context: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        StackConfig.from_context(context)


def test_jobs_need_the_bus() -> None:
    assert not StackConfig.from_context({"publish_events": "false"}).jobs_enabled
    assert not StackConfig.from_context({"jobs": "false"}).jobs_enabled
    # an empty value means "not set" for every key: the default prefix, jobs on
    assert StackConfig.from_context({"jobs_prefix": ""}).jobs_enabled
    assert StackConfig.from_context({}).jobs_enabled
