"""Local mode applies the bucket's notification configuration as CDK's handler does: merged
into an imported bucket's (its other consumers keep theirs), replaced on the stack's own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from asyncinfer.local.aws.eventbridge import apply_bucket_notifications, merged_configuration
from asyncinfer.local.aws.pipes import matches, render
from asyncinfer.local.provision.template import Template, TemplateError
from lambdas.common.records import Status
from stacks.events_out import detail_template, terminal_transition_filters

REGION = "us-east-1"
BUCKET = "team-existing-bucket"
OTHER_QUEUE = {
    "Id": "their-thumbnailer",
    "QueueArn": f"arn:aws:sqs:{REGION}:123456789012:their-queue",
    "Events": ["s3:ObjectCreated:*"],
}


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        sqs.create_queue(QueueName="their-queue")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_notification_configuration(
            Bucket=BUCKET, NotificationConfiguration={"QueueConfigurations": [OTHER_QUEUE]}
        )
        yield {"s3": client, "sqs": sqs}


def notifications(*, managed: bool, skip_validation: bool | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "BucketName": BUCKET,
        "NotificationConfiguration": {"EventBridgeConfiguration": {}},
        "Managed": managed,
    }
    if skip_validation is not None:
        properties["SkipDestinationValidation"] = skip_validation
    return properties


def template(properties: dict[str, Any]) -> Template:
    body = {
        "Resources": {
            "Notifications": {"Type": "Custom::S3BucketNotifications", "Properties": properties}
        }
    }
    return Template(body, stack_name="S", region=REGION, aws_endpoint_url="http://unused")


def apply(aws: dict[str, Any], properties: dict[str, Any]) -> None:
    apply_bucket_notifications(template(properties), properties, aws["s3"], aws["sqs"])


def test_an_imported_bucket_keeps_its_other_notifications(aws: dict[str, Any]) -> None:
    s3 = aws["s3"]
    apply(aws, notifications(managed=False))
    configuration = s3.get_bucket_notification_configuration(Bucket=BUCKET)
    (kept,) = configuration["QueueConfigurations"]
    assert kept["QueueArn"] == OTHER_QUEUE["QueueArn"]
    assert kept["Id"] == OTHER_QUEUE["Id"]


def test_a_stale_foreign_destination_fails_the_write_unless_validation_is_skipped(
    aws: dict[str, Any],
) -> None:
    """S3 validates every destination of the configuration CDK writes back, the other
    consumers' too: their deleted queue fails our deploy (issue: an imported bucket's other
    consumers can break it), unless the resource skips the validation."""
    their_queue = aws["sqs"].get_queue_url(QueueName="their-queue")["QueueUrl"]
    aws["sqs"].delete_queue(QueueUrl=their_queue)
    with pytest.raises(TemplateError, match="Unable to validate the following destination"):
        apply(aws, notifications(managed=False, skip_validation=False))
    apply(aws, notifications(managed=False, skip_validation=True))
    configuration = aws["s3"].get_bucket_notification_configuration(Bucket=BUCKET)
    assert configuration["QueueConfigurations"][0]["Id"] == OTHER_QUEUE["Id"]


def test_the_merge_adds_eventbridge_and_keeps_everything_else() -> None:
    existing = {"QueueConfigurations": [OTHER_QUEUE], "TopicConfigurations": [{"Id": "t"}]}
    merged = merged_configuration(existing, {"EventBridgeConfiguration": {}}, managed=False)
    assert merged == existing | {"EventBridgeConfiguration": {}}
    # the stack's own bucket: the template's configuration is the whole configuration
    replaced = merged_configuration(existing, {"EventBridgeConfiguration": {}}, managed=True)
    assert replaced == {"EventBridgeConfiguration": {}}


def stream_record(event_name: str, old: str | None, new: str) -> dict[str, Any]:
    image = {"inference_id": {"S": "abc"}, "status": {"S": new}, "result": {"S": "big"}}
    record: dict[str, Any] = {
        "eventName": event_name,
        "dynamodb": {"Keys": {"inference_id": {"S": "abc"}}, "NewImage": image},
    }
    if old is not None:
        record["dynamodb"]["OldImage"] = {"inference_id": {"S": "abc"}, "status": {"S": old}}
    return record


@pytest.mark.parametrize(
    ("event_name", "old", "new", "completed", "failed"),
    [
        ("INSERT", None, "PENDING", False, False),
        ("MODIFY", "PENDING", "SUBMITTED", False, False),
        ("MODIFY", "SUBMITTED", "COMPLETED", True, False),
        ("MODIFY", "PENDING", "FAILED", False, True),
        ("INSERT", None, "COMPLETED", True, False),  # the result arrived before the claim
        ("MODIFY", "COMPLETED", "COMPLETED", False, False),  # a later refinement
        ("MODIFY", "FAILED", "COMPLETED", False, False),  # a late success: no second event
    ],
)
def test_only_terminal_transitions_pass_the_pipes_filters(
    event_name: str, old: str | None, new: str, completed: bool, failed: bool
) -> None:
    record = stream_record(event_name, old, new)

    def passes(status: Status) -> bool:
        filters = tuple(json.dumps(f) for f in terminal_transition_filters(status))
        return matches(filters, record)

    assert passes(Status.COMPLETED) is completed
    assert passes(Status.FAILED) is failed


def test_the_detail_leaves_the_inline_result_out() -> None:
    detail = json.loads(render(detail_template(), stream_record("INSERT", None, "COMPLETED")))
    assert detail["inference_id"] == "abc"
    assert detail["status"] == "COMPLETED"
    assert "result" not in detail["record"]
    assert detail["record"]["inference_id"] == {"S": "abc"}
    assert detail["record"]["output_location"] is None  # absent from the record
