"""`redrive`: every dead letter goes back to its source, counted; nothing is deleted before its
copy is sent; `--dry-run` moves nothing."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

import pytest

from lambdas.common.records import inference_id_for
from tests.unit.cli.conftest import Invoke, Pipeline, create_stack

NOTIFICATION_ID = "d" * 64


def s3_event(key: str, version: str) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": "us-east-1",
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": "input-bucket"},
                        "object": {
                            "key": quote_plus(key),
                            "size": 3,
                            "eTag": "e",
                            "versionId": version,
                        },
                    },
                }
            ]
        }
    )


def notification(inference_id: str, status: str = "Completed") -> str:
    return json.dumps(
        {
            "awsRegion": "us-east-1",
            "eventTime": "2026-11-21T12:00:01.000Z",
            "receivedTime": "2026-11-21T12:00:00.000Z",
            "invocationStatus": status,
            "requestParameters": {
                "contentType": "application/json",
                "endpointName": "demo-endpoint",
                "inputLocation": "s3://input-bucket/a.json",
            },
            "responseParameters": {
                "contentType": "application/json",
                "outputLocation": "s3://output-bucket/outputs/x.out",
            },
            "inferenceId": inference_id,
            "eventVersion": "1.0",
            "eventSource": "aws:sagemaker",
            "eventName": "InferenceResult",
        }
    )


def envelope(topic_arn: str, message: str) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "5a1b",
            "TopicArn": topic_arn,
            "Message": message,
            "Timestamp": "2026-11-21T12:00:02.000Z",
            "SignatureVersion": "1",
            "Signature": "c2ln",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        }
    )


def lambda_failure(topic_arn: str, message: str) -> str:
    """What Lambda sends to an async-invocation failure destination for an SNS event."""
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": "2026-11-21T12:05:00.000Z",
            "requestContext": {
                "requestId": "r-1",
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:results:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3,
            },
            "requestPayload": {
                "Records": [
                    {
                        "EventSource": "aws:sns",
                        "EventVersion": "1.0",
                        "EventSubscriptionArn": f"{topic_arn}:sub",
                        "Sns": {
                            "Type": "Notification",
                            "MessageId": "5a1b",
                            "TopicArn": topic_arn,
                            "Subject": None,
                            "Message": message,
                            "Timestamp": "2026-11-21T12:00:02.000Z",
                            "SignatureVersion": "1",
                            "Signature": "c2ln",
                            "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/cert.pem",
                            "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?x",
                            "MessageAttributes": {},
                        },
                    }
                ]
            },
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorMessage": "table throttled"},
        }
    )


def drain(pipeline: Pipeline, queue_url: str) -> list[str]:
    bodies: list[str] = []
    while True:
        messages = pipeline.sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60
        ).get("Messages", [])
        if not messages:
            return bodies
        bodies.extend(message["Body"] for message in messages)


def visible(pipeline: Pipeline, queue_url: str) -> int:
    attributes = pipeline.sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def observe(pipeline: Pipeline, topic_output: str) -> str:
    """An SQS queue subscribed (raw) to a topic: what is published there lands in it."""
    url = pipeline.sqs.create_queue(QueueName=f"observe-{topic_output}")["QueueUrl"]
    arn = pipeline.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    pipeline.sns.subscribe(
        TopicArn=pipeline.outputs[topic_output],
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    return url


@pytest.fixture
def dead_letters(pipeline: Pipeline) -> dict[str, Any]:
    outputs = pipeline.outputs
    events = [s3_event(f"in/file {index}.json", f"v{index}") for index in range(12)]
    for body in events:
        pipeline.sqs.send_message(QueueUrl=outputs["IngestDeadLetterQueueUrl"], MessageBody=body)
    pipeline.sqs.send_message(
        QueueUrl=outputs["SuccessDeadLetterQueueUrl"],
        MessageBody=envelope(outputs["SuccessTopicArn"], notification(NOTIFICATION_ID)),
    )
    failed = notification("e" * 64, status="Failed")
    pipeline.sqs.send_message(
        QueueUrl=outputs["ResultsFailureQueueUrl"],
        MessageBody=lambda_failure(outputs["ErrorTopicArn"], failed),
    )
    return {"events": events, "failed_notification": failed}


def test_redrive_moves_every_dead_letter_back(
    cli: Invoke, pipeline: Pipeline, dead_letters: dict[str, Any]
) -> None:
    outputs = pipeline.outputs
    success_observer = observe(pipeline, "SuccessTopicArn")
    error_observer = observe(pipeline, "ErrorTopicArn")

    result = cli("redrive", "--json")

    assert result.exit_code == 0, result.output
    report = {entry["source"]: entry for entry in json.loads(result.stdout)}
    assert {name: entry["moved"] for name, entry in report.items()} == {
        "ingest DLQ": 12,
        "success DLQ": 1,
        "error DLQ": 0,
        "results failures": 1,
    }
    assert sorted(drain(pipeline, outputs["IngestQueueUrl"])) == sorted(dead_letters["events"])
    assert drain(pipeline, success_observer) == [notification(NOTIFICATION_ID)]
    assert drain(pipeline, error_observer) == [dead_letters["failed_notification"]]
    for key in ("IngestDeadLetterQueueUrl", "SuccessDeadLetterQueueUrl", "ResultsFailureQueueUrl"):
        assert visible(pipeline, outputs[key]) == 0
    assert {
        inference_id
        for message in report["ingest DLQ"]["messages"]
        for inference_id in message["inference_ids"]
    } == {
        inference_id_for("input-bucket", f"in/file {index}.json", f"v{index}", "e")
        for index in range(12)
    }
    assert report["success DLQ"]["messages"][0]["inference_ids"] == [NOTIFICATION_ID]


def test_dry_run_moves_nothing_and_names_what_would_move(
    cli: Invoke, pipeline: Pipeline, dead_letters: dict[str, Any]
) -> None:
    outputs = pipeline.outputs

    result = cli("redrive", "--dry-run")

    assert result.exit_code == 0, result.output
    assert "would move" in result.stdout
    assert f"inference {NOTIFICATION_ID}" in result.stderr
    expected = inference_id_for("input-bucket", "in/file 3.json", "v3", "e")
    assert f"inference {expected}" in result.stderr
    assert result.stderr.count("ingest DLQ: message ") == 12
    assert visible(pipeline, outputs["IngestDeadLetterQueueUrl"]) == 12
    assert visible(pipeline, outputs["SuccessDeadLetterQueueUrl"]) == 1
    assert visible(pipeline, outputs["ResultsFailureQueueUrl"]) == 1
    assert visible(pipeline, outputs["IngestQueueUrl"]) == 0


def test_one_queue_only(cli: Invoke, pipeline: Pipeline, dead_letters: dict[str, Any]) -> None:
    result = cli("redrive", "--queue", "ingest", "--json")

    assert result.exit_code == 0, result.output
    assert [entry["source"] for entry in json.loads(result.stdout)] == ["ingest DLQ"]
    assert visible(pipeline, pipeline.outputs["SuccessDeadLetterQueueUrl"]) == 1


def test_a_message_whose_copy_cannot_be_sent_stays(
    cli: Invoke, pipeline: Pipeline, dead_letters: dict[str, Any]
) -> None:
    pipeline.sqs.delete_queue(QueueUrl=pipeline.outputs["IngestQueueUrl"])

    result = cli("redrive", "--queue", "ingest", "--json")

    assert result.exit_code == 1
    [report] = json.loads(result.stdout)
    assert report["moved"] == 0
    assert len(report["failed"]) == 12
    assert visible(pipeline, pipeline.outputs["IngestDeadLetterQueueUrl"]) == 12


def test_an_unreadable_dead_letter_is_skipped_and_kept(cli: Invoke, pipeline: Pipeline) -> None:
    pipeline.sqs.send_message(
        QueueUrl=pipeline.outputs["ResultsFailureQueueUrl"], MessageBody="not json"
    )

    result = cli("redrive", "--queue", "results", "--json")

    assert result.exit_code == 1
    [report] = json.loads(result.stdout)
    assert report["moved"] == 0
    assert report["skipped"][0]["reason"].startswith("not JSON")
    assert visible(pipeline, pipeline.outputs["ResultsFailureQueueUrl"]) == 1


def test_local_mode_sends_topic_dead_letters_to_the_delivery_queues(
    pipeline: Pipeline, dead_letters: dict[str, Any]
) -> None:
    from typer.testing import CliRunner

    from asyncinfer.cli.app import app

    delivery = {
        f"{name}DeliveryQueueUrl": pipeline.sqs.create_queue(QueueName=f"{name}-delivery")[
            "QueueUrl"
        ]
        for name in ("Success", "Error")
    }
    create_stack({**pipeline.outputs, **delivery}, name="LocalLike")
    outputs = pipeline.outputs
    original = drain(pipeline, outputs["SuccessDeadLetterQueueUrl"])
    pipeline.sqs.send_message(
        QueueUrl=outputs["SuccessDeadLetterQueueUrl"], MessageBody=original[0]
    )

    result = CliRunner().invoke(
        app, ["--stack", "LocalLike", "redrive", "--queue", "success", "--queue", "results"]
    )

    assert result.exit_code == 0, result.output
    assert drain(pipeline, delivery["SuccessDeliveryQueueUrl"]) == original
    [rebuilt] = [json.loads(body) for body in drain(pipeline, delivery["ErrorDeliveryQueueUrl"])]
    assert rebuilt["Message"] == dead_letters["failed_notification"]
    assert rebuilt["TopicArn"] == outputs["ErrorTopicArn"]
    assert rebuilt["SigningCertURL"].endswith("cert.pem")


def test_unknown_queue_name_is_a_usage_error(offline_cli: Invoke) -> None:
    result = offline_cli("redrive", "--queue", "everything")

    assert result.exit_code == 252
    assert "invalid --queue everything" in result.stderr
