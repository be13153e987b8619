"""Fitting into an existing account: an imported input bucket, EventBridge in and out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.common.contract import (
    DETAIL_TYPE_COMPLETED,
    DETAIL_TYPE_FAILED,
    EVENTS_SOURCE,
    StackOutput,
)
from stacks.config import ConfigError, StackConfig
from stacks.events_in import key_matchers
from tests.infra.assembly import (
    Synthesized,
    actions,
    cfn_lint_errors,
    check_creation_order,
    literal_text,
    resources_of,
    synthesize,
    target,
    violations,
)

TEAM_BUCKET = "team-existing-bucket"
IMPORTED = {
    "input_bucket_name": TEAM_BUCKET,
    "key_prefixes": "incoming/,batch/",
    "key_suffixes": '[".json", ".csv"]',
    "event_bus_name": "team-bus",
}


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(IMPORTED, tmp_path_factory.mktemp("imported") / "cdk.out")


@pytest.fixture(scope="module")
def created_eventbridge(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    context = {"event_source": "eventbridge", "publish_events": "false"}
    return synthesize(context, tmp_path_factory.mktemp("created-eb") / "cdk.out")


def test_imported_synthesis_passes_cdk_nag_and_cfn_lint(imported: Synthesized) -> None:
    assert violations(imported) == []
    assert imported.synth_error is None
    assert cfn_lint_errors(imported.outdir / "AsyncInference.template.json") == []


def test_the_imported_bucket_is_named_not_created(imported: Synthesized) -> None:
    assert imported.output(StackOutput.INPUT_BUCKET_NAME) == TEAM_BUCKET
    for bucket in imported.resources("AWS::S3::Bucket").values():
        assert bucket["Properties"].get("BucketName") != TEAM_BUCKET
    # no policy of ours on the team's bucket
    for policy in imported.resources("AWS::S3::BucketPolicy").values():
        assert policy["Properties"]["Bucket"] != TEAM_BUCKET


def test_the_only_change_to_the_bucket_is_eventbridge_delivery_merged(
    imported: Synthesized,
) -> None:
    (notifications,) = imported.resources("Custom::S3BucketNotifications").values()
    properties = notifications["Properties"]
    assert properties["BucketName"] == TEAM_BUCKET
    # no S3 notification to our queue: only EventBridge delivery turned on
    assert properties["NotificationConfiguration"] == {"EventBridgeConfiguration": {}}
    # Managed false: CDK's handler keeps the bucket's other notifications (handle_unmanaged)
    assert properties["Managed"] is False


def ingest_rules(stack: Synthesized) -> dict[str, dict[str, Any]]:
    """The rules that target the ingest queue (the jobs have their own: stacks/jobs.py)."""
    queue = target(stack.output(StackOutput.INGEST_QUEUE_URL))
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in stack.resources("AWS::Events::Rule").items()
        if "EventPattern" in resource["Properties"]
        and any(target(t["Arn"]) == queue for t in resource["Properties"]["Targets"])
    }


def test_the_rule_s_pattern_carries_the_key_filters(imported: Synthesized) -> None:
    (rule,) = ingest_rules(imported).values()
    assert "EventBusName" not in rule  # S3 sends to the default bus
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == [TEAM_BUCKET]
    assert sorted(json.dumps(m) for m in pattern["detail"]["object"]["key"]) == sorted(
        json.dumps({"wildcard": w})
        for w in ("incoming/*.json", "incoming/*.csv", "batch/*.json", "batch/*.csv")
    )
    ((queue_target),) = rule["Targets"]
    assert target(queue_target["Arn"]) == target(imported.output(StackOutput.INGEST_QUEUE_URL))


def test_only_that_rule_may_send_to_the_ingest_queue(imported: Synthesized) -> None:
    queue_id = target(imported.output(StackOutput.INGEST_QUEUE_URL))
    (rule_id,) = ingest_rules(imported)
    allowed = [
        statement
        for statement in imported.queue_policy_statements(queue_id)
        if statement["Effect"] == "Allow"
    ]
    (statement,) = allowed
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert actions(statement) <= {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
    assert target(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == rule_id


def pipes(stack: Synthesized) -> dict[str, dict[str, Any]]:
    """The result-event pipes (the jobs table has its own: stacks/jobs.py)."""
    return {
        resource["Properties"]["TargetParameters"]["EventBridgeEventBusParameters"][
            "DetailType"
        ]: resource["Properties"]
        for resource in stack.resources("AWS::Pipes::Pipe").values()
        if target(resource["Properties"]["Source"]) in results_tables(stack)
    }


def results_tables(stack: Synthesized) -> list[str]:
    """The results table's logical id (the other table is the reconciler's state)."""
    tables = stack.resources("AWS::DynamoDB::Table")
    return [logical_id for logical_id in tables if logical_id.startswith("StorageResultsTable")]


def test_each_outcome_has_a_pipe_from_the_stream_to_the_bus(imported: Synthesized) -> None:
    found = pipes(imported)
    assert set(found) == {DETAIL_TYPE_COMPLETED, DETAIL_TYPE_FAILED}
    (table_id,) = results_tables(imported)
    table = imported.properties(table_id)
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    for detail_type, pipe in found.items():
        assert pipe["Source"] == {"Fn::GetAtt": [table_id, "StreamArn"]}
        assert literal_text(pipe["Target"]).endswith(":event-bus/team-bus")
        bus = pipe["TargetParameters"]["EventBridgeEventBusParameters"]
        assert bus["Source"] == EVENTS_SOURCE
        status = "COMPLETED" if detail_type == DETAIL_TYPE_COMPLETED else "FAILED"
        filters = [
            json.loads(entry["Pattern"])
            for entry in pipe["SourceParameters"]["FilterCriteria"]["Filters"]
        ]
        assert {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"status": {"S": [status]}}}} in (
            filters
        )
        (modify,) = (f for f in filters if f["eventName"] == ["MODIFY"])
        assert modify["dynamodb"]["OldImage"] == {
            "status": {"S": [{"anything-but": ["COMPLETED", "FAILED"]}]}
        }
        assert "<$.dynamodb.NewImage.result>" not in pipe["TargetParameters"]["InputTemplate"]
        source = pipe["SourceParameters"]["DynamoDBStreamParameters"]
        assert target(source["DeadLetterConfig"]["Arn"]) in imported.resources("AWS::SQS::Queue")


def test_the_pipes_role_reads_the_stream_and_puts_on_the_bus_only(imported: Synthesized) -> None:
    (pipe, *_) = pipes(imported).values()
    role_id = target(pipe["RoleArn"])
    granted: dict[str, list[str]] = {}
    for statement in imported.statements(role_id):
        for action in actions(statement):
            granted.setdefault(action, []).extend(
                json.dumps(resource)
                if isinstance(resource, dict) and "Fn::GetAtt" in resource
                else literal_text(resource)
                for resource in resources_of(statement)
            )
    assert set(granted) == {
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
        "events:PutEvents",
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
    }
    assert granted["dynamodb:ListStreams"] == ["*"]  # no resource-level permissions
    assert all("StreamArn" in text for text in granted["dynamodb:GetRecords"])
    assert all(text.endswith(":event-bus/team-bus") for text in granted["events:PutEvents"])


def test_a_created_bucket_can_use_eventbridge_too(created_eventbridge: Synthesized) -> None:
    assert violations(created_eventbridge) == []
    (notifications,) = created_eventbridge.resources("Custom::S3BucketNotifications").values()
    assert notifications["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {}
    }
    assert notifications["Properties"]["Managed"] is True
    assert created_eventbridge.resources("AWS::Pipes::Pipe") == {}
    (table_id,) = results_tables(created_eventbridge)
    assert "StreamSpecification" not in created_eventbridge.properties(table_id)


def test_an_imported_bucket_cannot_take_an_s3_notification() -> None:
    with pytest.raises(ConfigError, match="event_source"):
        StackConfig.from_context({"input_bucket_name": TEAM_BUCKET, "event_source": "s3"})
    assert StackConfig.from_context({"input_bucket_name": TEAM_BUCKET}).ingest_event_source == (
        "eventbridge"
    )
    assert StackConfig.from_context({}).ingest_event_source == "s3"


@pytest.mark.parametrize(
    ("prefixes", "suffixes", "expected"),
    [
        ([], [], []),
        (["a/"], [], [{"prefix": "a/"}]),
        ([], [".csv"], [{"suffix": ".csv"}]),
        (["a*/"], [".c\\sv"], [{"wildcard": "a\\*/*.c\\\\sv"}]),
    ],
)
def test_key_matchers(prefixes: list[str], suffixes: list[str], expected: list[Any]) -> None:
    assert key_matchers(prefixes, suffixes) == expected


@pytest.mark.parametrize("fixture", ["imported", "created_eventbridge"])
def test_every_creation_validated_resource_waits_for_its_permissions(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    check_creation_order(request.getfixturevalue(fixture))


def test_the_imported_buckets_notifications_skip_destination_validation(
    imported: Synthesized, created_eventbridge: Synthesized
) -> None:
    """CDK writes the team's bucket's whole configuration back; S3 would validate the other
    consumers' destinations in it (one stale queue fails our deploy) unless skipped."""
    (notifications,) = imported.resources("Custom::S3BucketNotifications").values()
    assert notifications["Properties"]["Managed"] is False
    assert notifications["Properties"]["SkipDestinationValidation"] is True
    # a bucket of the stack holds only our destinations: S3 still validates them
    (own,) = created_eventbridge.resources("Custom::S3BucketNotifications").values()
    assert own["Properties"].get("SkipDestinationValidation") in (None, False)
