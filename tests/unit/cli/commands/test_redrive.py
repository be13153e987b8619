"""`redrive`: every dead letter goes back to its source, counted; nothing is deleted before its
copy is sent; `--dry-run` moves nothing. Notification dead letters go to the results function
as asynchronous invocations (a fake records them: moto cannot run a function), never through
the topic, whose other subscribers must not see them again."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from asyncinfer.cli.access.messaging import Functions
from asyncinfer.cli.app import app
from asyncinfer.cli.commands.redrive_sources import sns_event_for
from asyncinfer.cli.errors import AwsCallError
from lambdas.common.records import inference_id_for
from tests.unit.cli.conftest import Invoke, Pipeline, create_stack

NOTIFICATION_ID = "d" * 64
SUBSCRIPTION_ARN = "arn:aws:sns:us-east-1:123456789012:success:2b4d"


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
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
            f"&SubscriptionArn={quote_plus(SUBSCRIPTION_ARN)}",
            "MessageAttributes": {"kind": {"Type": "String", "Value": "result"}},
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


class Invocations(list[tuple[str, dict[str, Any]]]):
    """What the CLI invoked asynchronously: (function name, event); ``fail`` makes it refuse."""

    fail: str | None = None


@pytest.fixture
def invocations(monkeypatch: pytest.MonkeyPatch) -> Invocations:
    calls = Invocations()

    def invoke_async(self: Functions, function_name: str, event: dict[str, Any]) -> None:
        if calls.fail is not None:
            error = {"Error": {"Code": calls.fail, "Message": "no"}}
            raise AwsCallError(f"function {function_name}", ClientError(error, "Invoke"))
        calls.append((function_name, json.loads(json.dumps(event))))

    monkeypatch.setattr(Functions, "invoke_async", invoke_async)
    return calls


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
    cli: Invoke, pipeline: Pipeline, dead_letters: dict[str, Any], invocations: Invocations
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
    assert {name: entry["destination"] for name, entry in report.items()} == {
        "ingest DLQ": "ingest queue",
        "success DLQ": "results function",
        "error DLQ": "results function",
        "results failures": "results function",
    }
    assert sorted(drain(pipeline, outputs["IngestQueueUrl"])) == sorted(dead_letters["events"])
    # notifications: to the results function, as SNS invokes it; the topics see nothing
    assert [name for name, _ in invocations] == ["results-function", "results-function"]
    by_message = {event["Records"][0]["Sns"]["Message"]: event for _, event in invocations}
    redriven = by_message[notification(NOTIFICATION_ID)]["Records"][0]
    assert redriven["Sns"]["TopicArn"] == outputs["SuccessTopicArn"]
    failed = json.loads(
        lambda_failure(outputs["ErrorTopicArn"], dead_letters["failed_notification"])
    )
    assert by_message[dead_letters["failed_notification"]] == failed["requestPayload"]
    assert drain(pipeline, success_observer) == []
    assert drain(pipeline, error_observer) == []
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
    assert report["results failures"]["messages"][0]["inference_ids"] == ["e" * 64]


def test_a_topic_dead_letter_becomes_the_event_sns_sends_a_function() -> None:
    """Lambda developer guide, "Invoking Lambda functions with Amazon SNS notifications"
    (formerly "Using Lambda with Amazon SNS"), example event."""
    body = json.loads(envelope("arn:aws:sns:us-east-1:123456789012:success", "{}"))

    event = sns_event_for({**body, "Subject": "s"})

    [record] = event["Records"]
    assert record["EventSource"] == "aws:sns"
    assert record["EventVersion"] == "1.0"
    assert record["EventSubscriptionArn"] == SUBSCRIPTION_ARN
    assert record["Sns"] == {
        "Type": "Notification",
        "MessageId": "5a1b",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:success",
        "Subject": "s",
        "Message": "{}",
        "Timestamp": "2026-11-21T12:00:02.000Z",
        "SignatureVersion": "1",
        "Signature": "c2ln",
        "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/cert.pem",
        "UnsubscribeUrl": body["UnsubscribeURL"],
        "MessageAttributes": {"kind": {"Type": "String", "Value": "result"}},
    }
    # no subscription in the URL: the topic stands in for it; no Subject: null, as SNS sends
    bare = {**body, "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"}
    [record] = sns_event_for(bare)["Records"]
    assert record["EventSubscriptionArn"] == body["TopicArn"]
    assert record["Sns"]["Subject"] is None


def test_a_notification_whose_invocation_is_refused_stays(
    cli: Invoke, pipeline: Pipeline, dead_letters: dict[str, Any], invocations: Invocations
) -> None:
    invocations.fail = "AccessDeniedException"

    result = cli("redrive", "--queue", "success", "--queue", "results", "--json")

    assert result.exit_code == 1
    reports = json.loads(result.stdout)
    assert [report["moved"] for report in reports] == [0, 0]
    assert [len(report["failed"]) for report in reports] == [1, 1]
    assert visible(pipeline, pipeline.outputs["SuccessDeadLetterQueueUrl"]) == 1
    assert visible(pipeline, pipeline.outputs["ResultsFailureQueueUrl"]) == 1


def test_without_the_results_function_notifications_stay(
    pipeline: Pipeline, dead_letters: dict[str, Any], invocations: Invocations
) -> None:
    from typer.testing import CliRunner

    from asyncinfer.cli.app import app

    outputs = {k: v for k, v in pipeline.outputs.items() if k != "ResultsFunctionName"}
    create_stack(outputs, name="NoFunction")

    result = CliRunner().invoke(
        app, ["--stack", "NoFunction", "redrive", "--queue", "success", "--json"]
    )

    assert result.exit_code == 1
    [report] = json.loads(result.stdout)
    assert "ResultsFunctionName" in report["skipped"][0]["reason"]
    assert invocations == []
    assert visible(pipeline, pipeline.outputs["SuccessDeadLetterQueueUrl"]) == 1


def test_a_topic_dead_letter_that_is_no_envelope_is_skipped_and_kept(
    cli: Invoke, pipeline: Pipeline, invocations: Invocations
) -> None:
    pipeline.sqs.send_message(
        QueueUrl=pipeline.outputs["ErrorDeadLetterQueueUrl"], MessageBody=notification("f" * 64)
    )

    result = cli("redrive", "--queue", "error", "--json")

    assert result.exit_code == 1
    [report] = json.loads(result.stdout)
    assert report["skipped"][0]["reason"].startswith("not an SNS notification envelope")
    assert invocations == []
    assert visible(pipeline, pipeline.outputs["ErrorDeadLetterQueueUrl"]) == 1


def test_dry_run_moves_nothing_and_names_what_would_move(
    cli: Invoke, pipeline: Pipeline, dead_letters: dict[str, Any], invocations: Invocations
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
    assert invocations == []


def test_one_queue_only(cli: Invoke, pipeline: Pipeline, dead_letters: dict[str, Any]) -> None:
    result = cli("redrive", "--queue", "ingest", "--json")

    assert result.exit_code == 0, result.output
    assert [entry["source"] for entry in json.loads(result.stdout)] == ["ingest DLQ"]
    assert visible(pipeline, pipeline.outputs["SuccessDeadLetterQueueUrl"]) == 1


def test_the_jobs_dead_letters_go_back_to_the_jobs_queue_as_they_were(pipeline: Pipeline) -> None:
    """A stack with jobs lists its jobs queue and DLQ; their messages (a manifest's S3 event,
    a record's outcome event) go back body and attributes as-is, and name no inference."""
    queues = {
        output: pipeline.sqs.create_queue(QueueName=output)["QueueUrl"]
        for output in ("JobsQueueUrl", "JobsDeadLetterQueueUrl")
    }
    create_stack({**pipeline.outputs, **queues}, name="WithJobs")
    manifest = s3_event("jobs/nightly.manifest.json", "v1")
    outcome = json.dumps({"source": "asyncinfer", "detail-type": "Inference Completed"})
    attributes = {"origin": {"DataType": "String", "StringValue": "rule"}}
    for body in (manifest, outcome):
        pipeline.sqs.send_message(
            QueueUrl=queues["JobsDeadLetterQueueUrl"],
            MessageBody=body,
            MessageAttributes=attributes,
        )

    result = CliRunner().invoke(
        app, ["--stack", "WithJobs", "redrive", "--queue", "jobs", "--json"]
    )

    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)
    assert (report["source"], report["destination"], report["moved"]) == (
        "jobs DLQ",
        "jobs queue",
        2,
    )
    assert all(message["inference_ids"] == [] for message in report["messages"])
    received = pipeline.sqs.receive_message(
        QueueUrl=queues["JobsQueueUrl"], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    assert sorted(message["Body"] for message in received) == sorted([manifest, outcome])
    assert all(message["MessageAttributes"] == attributes for message in received)
    assert visible(pipeline, queues["JobsDeadLetterQueueUrl"]) == 0


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


def test_local_mode_redrives_notifications_the_same_way(
    pipeline: Pipeline, dead_letters: dict[str, Any], invocations: Invocations
) -> None:
    """Local mode's outputs also list its delivery queues: they change nothing (its AWS server
    hands the invocation to the event runner; tests/e2e/test_local_pipeline.py)."""
    from typer.testing import CliRunner

    from asyncinfer.cli.app import app

    delivery = {
        f"{name}DeliveryQueueUrl": pipeline.sqs.create_queue(QueueName=f"{name}-delivery")[
            "QueueUrl"
        ]
        for name in ("Success", "Error")
    }
    create_stack({**pipeline.outputs, **delivery}, name="LocalLike")

    result = CliRunner().invoke(
        app, ["--stack", "LocalLike", "redrive", "--queue", "success", "--queue", "results"]
    )

    assert result.exit_code == 0, result.output
    assert len(invocations) == 2
    for url in delivery.values():
        assert drain(pipeline, url) == []


def test_unknown_queue_name_is_a_usage_error(offline_cli: Invoke) -> None:
    result = offline_cli("redrive", "--queue", "everything")

    assert result.exit_code == 252
    assert "invalid --queue everything" in result.stderr
