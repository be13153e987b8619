"""The local event runner's SNS subscriptions against a real moto server, with real worker
processes: the Lambda events made from the envelopes, retries then a subscription dead-letter
queue or an on-failure destination, a delivery queue not subscribed to its topic; and stopping
with work in flight on a queue and a topic."""

from __future__ import annotations

import base64
import json
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aws_lambda_powertools.utilities.parser.models import SnsModel

from asyncinfer.local.lambda_runner.runner import SourceSpec
from asyncinfer.local.provision.spec import FunctionSpec, TopicSourceSpec
from tests.e2e.children import child_pids
from tests.e2e.runner.support import (
    ACCOUNT,
    REGION,
    Spy,
    create_queue,
    drain,
    function,
    messages_left,
    queue_arn,
    queue_source,
    running,
    send,
    wait_for,
)

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.e2e

SNS_HANDLER = "tests.e2e.handlers.spy.sns_handler"


def create_topic_with_delivery_queue(sns: SNSClient, sqs: SQSClient) -> tuple[str, str, str]:
    """A topic and an SQS queue subscribed to it (raw delivery off), as the lead wires them."""
    topic_arn = sns.create_topic(Name=f"t-{uuid.uuid4().hex[:12]}")["TopicArn"]
    delivery_queue = create_queue(sqs)
    subscription_arn = sns.subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn(sqs, delivery_queue)
    )["SubscriptionArn"]
    return topic_arn, delivery_queue, subscription_arn


def topic_source(
    topic_arn: str, delivery_queue: str, fn: FunctionSpec, dead_letter_queue: str | None
) -> TopicSourceSpec:
    return TopicSourceSpec(
        topic_arn=topic_arn,
        delivery_queue_url=delivery_queue,
        dead_letter_queue_url=dead_letter_queue,
        max_attempts=3,
        function=fn,
    )


def test_sns_envelopes_become_sns_lambda_events(
    endpoint: str, sns: SNSClient, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    topic_arn, delivery_queue, subscription_arn = create_topic_with_delivery_queue(sns, sqs)
    with_extras = sns.publish(
        TopicArn=topic_arn,
        Message=json.dumps({"id": "with-extras", "action": "ok"}),
        Subject="result",
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "success"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x01"},
        },
    )["MessageId"]
    plain = sns.publish(TopicArn=topic_arn, Message=json.dumps({"id": "plain", "action": "ok"}))[
        "MessageId"
    ]
    fn = function(spy, name="results-fn", handler=SNS_HANDLER)
    with running([topic_source(topic_arn, delivery_queue, fn, None)], endpoint, tmp_path) as runner:
        wait_for(lambda: runner.stats()[topic_arn].succeeded == 2, "both notifications")
        wait_for(lambda: messages_left(sqs, delivery_queue) == 0, "the delivery queue to empty")

    events = {
        json.loads(i["event"]["Records"][0]["Sns"]["Message"])["id"]: i["event"]
        for i in spy.invocations()
    }
    assert set(events) == {"with-extras", "plain"}
    for event in events.values():
        SnsModel.model_validate(event)
        assert len(event["Records"]) == 1
        record = event["Records"][0]
        assert record["EventSource"] == "aws:sns"
        assert record["EventVersion"] == "1.0"
        assert record["EventSubscriptionArn"] == subscription_arn
        notification = record["Sns"]
        assert notification["Type"] == "Notification"
        assert notification["TopicArn"] == topic_arn
        assert notification["SigningCertUrl"].startswith("https://sns.")
        assert notification["UnsubscribeUrl"].startswith("https://sns.")
        assert "Action=Unsubscribe" in notification["UnsubscribeUrl"]
        assert notification["Signature"]
        assert notification["SignatureVersion"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", notification["Timestamp"])
        assert "SigningCertURL" not in notification
        assert "UnsubscribeURL" not in notification
    extras = events["with-extras"]["Records"][0]["Sns"]
    assert extras["MessageId"] == with_extras
    assert extras["Subject"] == "result"
    assert extras["MessageAttributes"] == {
        "kind": {"Type": "String", "Value": "success"},
        "blob": {"Type": "Binary", "Value": base64.b64encode(b"\x01").decode()},
    }
    plain_notification = events["plain"]["Records"][0]["Sns"]
    assert plain_notification["MessageId"] == plain
    assert plain_notification["Subject"] is None
    assert plain_notification["MessageAttributes"] == {}


@pytest.mark.parametrize(
    "failure_destination", [False, True], ids=["subscription-dlq", "on-failure-destination"]
)
def test_sns_failures_are_retried_then_dead_lettered(
    failure_destination: bool,
    *,
    endpoint: str,
    sns: SNSClient,
    sqs: SQSClient,
    spy: Spy,
    tmp_path: Path,
) -> None:
    topic_arn, delivery_queue, _ = create_topic_with_delivery_queue(sns, sqs)
    dead_letter_queue = create_queue(sqs)
    doomed = sns.publish(
        TopicArn=topic_arn, Message=json.dumps({"id": "doomed", "action": "raise"})
    )["MessageId"]
    sns.publish(
        TopicArn=topic_arn, Message=json.dumps({"id": "flaky", "action": "raise", "until": 2})
    )
    sqs.send_message(QueueUrl=delivery_queue, MessageBody="not an SNS envelope")
    fn = function(spy, name="results-fn", handler=SNS_HANDLER)
    source = topic_source(topic_arn, delivery_queue, fn, dead_letter_queue)
    with running(
        [source],
        endpoint,
        tmp_path,
        async_retry_backoff_seconds=0.05,
        failure_destinations=[dead_letter_queue] if failure_destination else [],
    ) as runner:
        wait_for(lambda: messages_left(sqs, delivery_queue) == 0, "every notification settled")
    stats = runner.stats()[topic_arn]

    assert spy.sns_attempts() == {"doomed": 3, "flaky": 2}
    assert (stats.succeeded, stats.retried, stats.moved_to_dlq) == (1, 3, 2)
    assert stats.failed == 3 + 1 + 1  # doomed's attempts, flaky's first, the non-envelope
    dead_letters = {m["Body"]: m for m in drain(sqs, dead_letter_queue)}
    assert len(dead_letters) == 2
    not_an_envelope = dead_letters.pop("not an SNS envelope")
    assert "not JSON" in not_an_envelope["MessageAttributes"]["ErrorMessage"]["StringValue"]
    [(body, dead_letter)] = dead_letters.items()
    if not failure_destination:  # a subscription DLQ: the envelope as the delivery queue held it
        envelope = json.loads(body)
        assert (envelope["MessageId"], envelope["TopicArn"]) == (doomed, topic_arn)
        attributes = dead_letter["MessageAttributes"]
        assert attributes["ErrorMessage"]["StringValue"] == "RuntimeError: told to raise"
        assert attributes["ErrorCode"]["StringValue"] == "200"
        assert uuid.UUID(attributes["RequestID"]["StringValue"])
        return
    record = json.loads(body)  # what Lambda sends an on-failure destination
    last_attempt = [
        i for i in spy.invocations() if i["event"]["Records"][0]["Sns"]["MessageId"] == doomed
    ][-1]
    assert record["version"] == "1.0"
    assert record["requestContext"] == {
        "requestId": last_attempt["context"]["aws_request_id"],
        "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:results-fn:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == last_attempt["event"]
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    response = record["responsePayload"]
    assert (response["errorType"], response["errorMessage"]) == ("RuntimeError", "told to raise")
    assert any("spy.py" in line for line in response["stackTrace"])
    assert "MessageAttributes" not in dead_letter


def test_start_refuses_a_delivery_queue_not_subscribed_to_its_topic(
    endpoint: str, sns: SNSClient, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    topic_arn = sns.create_topic(Name=f"t-{uuid.uuid4().hex[:12]}")["TopicArn"]
    source = topic_source(topic_arn, create_queue(sqs), function(spy, handler=SNS_HANDLER), None)
    with pytest.raises(ValueError, match="is not subscribed to"):  # noqa: SIM117
        with running([source], endpoint, tmp_path):
            pass


def test_stop_abandons_in_flight_work_and_leaves_no_process_behind(
    endpoint: str, sns: SNSClient, sqs: SQSClient, spy: Spy, tmp_path: Path
) -> None:
    queue_url = create_queue(sqs, visibility_timeout=2)
    send(sqs, queue_url, {"id": "queued", "action": "hold", "hold": 60})
    topic_arn, delivery_queue, _ = create_topic_with_delivery_queue(sns, sqs)
    sns.publish(
        TopicArn=topic_arn, Message=json.dumps({"id": "notified", "action": "hold", "hold": 60})
    )
    sources: list[SourceSpec] = [
        queue_source(queue_url, function(spy, "queue-fn"), visibility_timeout=2),
        topic_source(topic_arn, delivery_queue, function(spy, "topic-fn", SNS_HANDLER), None),
    ]
    children_before = child_pids()
    with running(sources, endpoint, tmp_path) as runner:
        wait_for(lambda: len(spy.invocations()) == 2, "both handlers to be busy")
        worker_pids = {invocation["pid"] for invocation in spy.invocations()}
        runner.stop(timeout=1)
    stats = runner.stats()

    assert child_pids() <= children_before
    assert not any(Path(f"/proc/{pid}").exists() for pid in worker_pids)
    assert stats[queue_url].abandoned == 1
    assert stats[topic_arn].abandoned == 1
    # The notification is given back at once; the SQS batch reappears after its visibility
    # timeout, as on AWS.
    assert len(drain(sqs, delivery_queue)) == 1
    wait_for(lambda: len(drain(sqs, queue_url)) == 1, "the abandoned batch to reappear", 10)
