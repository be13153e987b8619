"""The fault knobs themselves: duplicate delivery, the DynamoDB fault proxy, and the
per-function environment override that puts the proxy in front of one function."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from asyncinfer.local.aws.iam import admin_session
from asyncinfer.local.faults import DuplicateDelivery, DynamoDBFaultProxy
from asyncinfer.local.overrides import with_function_environment
from asyncinfer.local.processes import LocalModeError
from asyncinfer.local.provision.spec import (
    EndpointSpec,
    FunctionSpec,
    LocalPipelineSpec,
    QueueSourceSpec,
    TopicSourceSpec,
)
from tests.moto_server import moto_endpoint

pytestmark = pytest.mark.reliability
REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_endpoint() as url:
        yield url


def client(service: str, url: str) -> Any:
    return admin_session(REGION).client(  # type: ignore[call-overload]
        service,
        endpoint_url=url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def receive_all(sqs: Any, queue_url: str) -> list[Any]:
    messages: list[Any] = []
    while batch := sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=0,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", []):
        messages.extend(batch)
    return messages


def test_duplicate_delivery_copies_first_receives_once_and_never_copies_a_copy(
    moto_url: str,
) -> None:
    sqs = client("sqs", moto_url)
    queue_url = sqs.create_queue(QueueName="duplicates")["QueueUrl"]
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody="original",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "event"}},
    )
    knob = DuplicateDelivery(sqs, rate=1.0, seed=1)
    [original] = receive_all(sqs, queue_url)
    assert knob.maybe_duplicate(queue_url, original)
    [copy] = receive_all(sqs, queue_url)
    assert copy["Body"] == "original"
    assert copy["MessageAttributes"]["kind"]["StringValue"] == "event"
    assert not knob.maybe_duplicate(queue_url, copy)  # a copy is never copied again
    assert receive_all(sqs, queue_url) == []


def test_duplicate_delivery_leaves_redeliveries_and_a_zero_rate_alone(moto_url: str) -> None:
    sqs = client("sqs", moto_url)
    queue_url = sqs.create_queue(QueueName="no-duplicates", Attributes={"VisibilityTimeout": "0"})[
        "QueueUrl"
    ]
    sqs.send_message(QueueUrl=queue_url, MessageBody="once")
    first = sqs.receive_message(
        QueueUrl=queue_url, WaitTimeSeconds=0, MessageSystemAttributeNames=["All"]
    )["Messages"][0]
    assert not DuplicateDelivery(sqs, rate=0.0, seed=1).maybe_duplicate(queue_url, first)
    redelivered = sqs.receive_message(
        QueueUrl=queue_url, WaitTimeSeconds=0, MessageSystemAttributeNames=["All"]
    )["Messages"][0]
    assert redelivered["Attributes"]["ApproximateReceiveCount"] != "1"
    assert not DuplicateDelivery(sqs, rate=1.0, seed=1).maybe_duplicate(queue_url, redelivered)
    with pytest.raises(ValueError, match="duplicate_delivery_rate"):
        DuplicateDelivery(sqs, rate=1.5, seed=1)


def test_the_table_proxy_throttles_writes_only_while_told_to(moto_url: str) -> None:
    with DynamoDBFaultProxy() as proxy:
        dynamodb = client("dynamodb", proxy.url)
        with pytest.raises(ClientError) as not_connected:
            dynamodb.list_tables()
        assert not_connected.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        proxy.connect(moto_url)
        dynamodb.create_table(
            TableName="proxied",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.put_item(TableName="proxied", Item={"id": {"S": "before"}})
        proxy.reject_writes(True)
        codes = []
        for number in range(2):
            with pytest.raises(ClientError) as throttled:
                dynamodb.put_item(TableName="proxied", Item={"id": {"S": f"during-{number}"}})
            codes.append(throttled.value.response["Error"]["Code"])
        assert codes == ["ProvisionedThroughputExceededException", "ThrottlingException"]
        assert dynamodb.get_item(TableName="proxied", Key={"id": {"S": "before"}})["Item"]
        proxy.reject_writes(False)
        dynamodb.put_item(TableName="proxied", Item={"id": {"S": "after"}})
        scanned = dynamodb.scan(TableName="proxied")["Items"]
        assert sorted(item["id"]["S"] for item in scanned) == ["after", "before"]
        assert proxy.stats()["rejected"] == 2


def small_spec() -> LocalPipelineSpec:
    def function(name: str) -> FunctionSpec:
        return FunctionSpec(
            name=name,
            handler=f"lambdas.{name}.handler.handler",
            environment={"TABLE_NAME": "results", "SHARED": name},
            timeout_seconds=3,
            memory_mb=128,
        )

    return LocalPipelineSpec(
        region=REGION,
        aws_endpoint_url="http://127.0.0.1:1",
        runtime_endpoint_url="http://127.0.0.1:2",
        outputs={},
        ingest=QueueSourceSpec(
            queue_url="http://127.0.0.1:1/q",
            dead_letter_queue_url=None,
            max_receive_count=1,
            visibility_timeout_seconds=18,
            batch_size=10,
            batching_window_seconds=0,
            maximum_concurrency=2,
            report_batch_item_failures=True,
            function=function("ingest"),
        ),
        results=tuple(
            TopicSourceSpec(
                topic_arn=f"arn:aws:sns:{REGION}:123456789012:{topic}",
                delivery_queue_url=f"http://127.0.0.1:1/{topic}",
                dead_letter_queue_url=None,
                max_attempts=3,
                function=function("results"),
            )
            for topic in ("success", "error")
        ),
        endpoint=EndpointSpec(
            name="endpoint",
            output_path="s3://out/o",
            failure_path="s3://out/f",
            success_topic_arn=None,
            error_topic_arn=None,
            include_response_body=False,
            max_concurrent_invocations_per_instance=1,
            instance_count=1,
            model_url="http://127.0.0.1:3",
        ),
    )


def test_a_function_environment_override_reaches_only_that_function() -> None:
    spec = with_function_environment(
        small_spec(), {"results": {"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:4"}}
    )
    for source in spec.results:
        assert source.function.environment == {
            "TABLE_NAME": "results",
            "SHARED": "results",
            "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:4",
        }
    assert "AWS_ENDPOINT_URL_DYNAMODB" not in spec.ingest.function.environment
    assert with_function_environment(small_spec(), {}) == small_spec()
    with pytest.raises(LocalModeError, match="no function named result"):
        with_function_environment(small_spec(), {"result": {"X": "1"}})
