"""A cancelled transaction leaves the table's stream readable, as on AWS (aws/transactions)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest
from moto.dynamodb.models import DynamoDBBackend

from asyncinfer.local.aws.transactions import keep_streams_on_rollback
from tests.moto_server import moto_endpoint


@pytest.fixture
def endpoint() -> Iterator[str]:
    with moto_endpoint() as url:
        yield url


def _records_after_a_cancelled_transaction(endpoint: str) -> list[str]:
    table = f"t{uuid.uuid4().hex}"  # moto's backends outlive a server in one process
    session = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    client = session.client("dynamodb", endpoint_url=endpoint)
    streams = session.client("dynamodbstreams", endpoint_url=endpoint)
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    arn = client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    client.put_item(TableName=table, Item={"pk": {"S": "counted"}})
    with pytest.raises(client.exceptions.TransactionCanceledException):
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "other"}}}},
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"pk": {"S": "counted"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    client.put_item(TableName=table, Item={"pk": {"S": "later"}})
    records = streams.get_records(ShardIterator=iterator)["Records"]
    return [record["dynamodb"]["Keys"]["pk"]["S"] for record in records]


def test_the_open_iterator_sees_later_writes_and_nothing_of_the_cancelled_one(
    monkeypatch: pytest.MonkeyPatch, endpoint: str
) -> None:
    monkeypatch.setattr(
        DynamoDBBackend, "transact_write_items", DynamoDBBackend.transact_write_items
    )
    keep_streams_on_rollback()
    assert _records_after_a_cancelled_transaction(endpoint) == ["counted", "later"]


def test_without_it_moto_loses_the_stream(endpoint: str) -> None:
    """Guards the reason for the patch: if moto fixes its rollback, the patch can go."""
    assert "later" not in _records_after_a_cancelled_transaction(endpoint)
