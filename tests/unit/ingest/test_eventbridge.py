"""The EventBridge ``Object Created`` shape (event_source=eventbridge) through the handler."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel

from lambdas.common.records import Status
from lambdas.ingest.events import (
    MalformedEventError,
    ObjectVersion,
    S3EventNotification,
    parse_notification,
)
from tests.conftest import REGION
from tests.unit.ingest.conftest import INPUT_BUCKET, World
from tests.unit.ingest.support import notification, sqs_event, sqs_record


def eventbridge_event(record: dict[str, Any], *, as_moto: bool = False) -> dict[str, Any]:
    """The EventBridge event S3 sends for the object an S3 notification record names (S3 user
    guide, "EventBridge event message structure"): the key as it is, not URL-encoded."""
    from urllib.parse import unquote_plus

    obj = record["s3"]["object"]
    detail_object: dict[str, Any] = {
        "key": unquote_plus(obj["key"]),
        "size": obj.get("size"),
        ("eTag" if as_moto else "etag"): obj.get("eTag"),
        "sequencer": "00617F08299329D189",
    }
    if "versionId" in obj:
        detail_object["version-id"] = obj["versionId"]
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-21T11:59:59Z",
        "region": REGION,
        "resources": [f"arn:aws:s3:::{record['s3']['bucket']['name']}"],
        "detail": {
            "version": "0",
            "bucket": {"name": record["s3"]["bucket"]["name"]},
            "object": detail_object,
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }


def versions(parsed: Any) -> list[ObjectVersion]:
    assert isinstance(parsed, S3EventNotification)
    return [ObjectVersion.from_record(record) for record in parsed.records]


@pytest.mark.parametrize("key", ["a.json", "dir/b c.csv", "plus+sign.txt", "100%.json", "été.png"])
def test_an_eventbridge_event_names_the_same_version_and_inference_id(
    world: World, key: str
) -> None:
    record = world.put(key)
    from_s3 = versions(parse_notification(notification(record)))
    from_eventbridge = versions(parse_notification(json.dumps(eventbridge_event(record))))
    assert from_eventbridge == [
        ObjectVersion(**{**from_s3[0].__dict__, "sequencer": "00617F08299329D189"})
    ]
    assert from_eventbridge[0].key == key  # taken as it is: EventBridge keys are not encoded
    assert from_eventbridge[0].inference_id == from_s3[0].inference_id


def test_the_sample_is_the_shape_powertools_models() -> None:
    record = {
        "s3": {
            "bucket": {"name": INPUT_BUCKET},
            "object": {"key": "a.json", "size": 3, "eTag": "abc", "versionId": "v1"},
        }
    }
    S3EventNotificationEventBridgeModel.model_validate(eventbridge_event(record))


def test_moto_s_etag_spelling_is_accepted(world: World) -> None:
    record = world.put("m.json")
    parsed = versions(parse_notification(eventbridge_event(record, as_moto=True)))
    assert parsed[0].etag == record["s3"]["object"]["eTag"]


def test_an_eventbridge_event_without_a_bucket_is_malformed() -> None:
    event = eventbridge_event(
        {"s3": {"bucket": {"name": INPUT_BUCKET}, "object": {"key": "a", "eTag": "e"}}}
    )
    del event["detail"]["bucket"]
    with pytest.raises(MalformedEventError):
        parse_notification(event)


def test_duplicated_eventbridge_deliveries_submit_once(world: World) -> None:
    record = world.put("twice.json")
    body = eventbridge_event(record)

    response, _ = world.invoke(sqs_event(sqs_record(body), sqs_record(body)))
    assert response == {"batchItemFailures": []}
    response, _ = world.invoke(sqs_event(sqs_record(body)))
    assert response == {"batchItemFailures": []}
    # and the S3 notification of the same version, had both been configured, changes nothing
    response, _ = world.invoke(sqs_event(sqs_record(notification(record))))
    assert response == {"batchItemFailures": []}

    assert len(world.invoker.calls) == 1
    assert len(world.ids_with_status(Status.SUBMITTED)) == 1


def test_other_s3_eventbridge_events_are_ignored(world: World) -> None:
    record = world.put("gone.json")
    event = eventbridge_event(record)
    event["detail-type"] = "Object Deleted"
    event["detail"]["reason"] = "DeleteObject"

    response, _ = world.invoke(sqs_event(sqs_record(event)))

    assert response == {"batchItemFailures": []}
    assert world.invoker.calls == []
