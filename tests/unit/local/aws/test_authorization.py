"""Local mode's completion of moto's IAM checks, in-process (no server process): DynamoDB
authorized on the table's and the index's ARNs, SNS on the topic's, and S3's 403 for a missing
key the caller may not list. Each check is one the e2e suite relies on; here each has a unit
test of its own, so skipping one fails in seconds, not only in a pipeline run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.authorization import enable_iam_authentication

from asyncinfer.local.aws import authorization
from asyncinfer.local.aws.iam import ADMIN_ACCESS_KEY_ID, ADMIN_SECRET_ACCESS_KEY

REGION = "us-east-1"
ACCOUNT = authorization.LOCAL_ACCOUNT_ID
TABLE, OTHER_TABLE, INDEX = "results", "other", "by_status"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}"
BUCKET = "input"
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})
# user name -> the statements of its one policy
GRANTS: dict[str, list[dict[str, Any]]] = {
    "table-writer": [
        {
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
            "Resource": TABLE_ARN,
        }
    ],
    "index-reader": [
        {"Effect": "Allow", "Action": "dynamodb:Query", "Resource": f"{TABLE_ARN}/index/{INDEX}"}
    ],
    "table-reader": [{"Effect": "Allow", "Action": "dynamodb:Query", "Resource": TABLE_ARN}],
    "publisher": [
        {
            "Effect": "Allow",
            "Action": "sns:Publish",
            "Resource": f"arn:aws:sns:{REGION}:{ACCOUNT}:success",
        }
    ],
    "object-reader": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}
    ],
    "object-lister": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}"},
    ],
}
PATCHED = (
    ("moto.dynamodb.responses", "DynamoHandler", "_authenticate_and_authorize_normal_action"),
    ("moto.sns.responses", "SNSResponse", "_authenticate_and_authorize_normal_action"),
    ("moto.awslambda.responses", "LambdaResponse", "_authenticate_and_authorize_normal_action"),
    ("moto.s3.responses", "S3Response", "_key_response"),
)


def client(service: str, keys: tuple[str, str]) -> Any:
    return boto3.session.Session(
        region_name=REGION, aws_access_key_id=keys[0], aws_secret_access_key=keys[1]
    ).client(service, config=NO_RETRIES)  # type: ignore[call-overload]


def error_code(call: Any, **arguments: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**arguments)
    return str(caught.value.response["Error"]["Code"])


def provision(admin: tuple[str, str]) -> dict[str, tuple[str, str]]:
    """The resources and one IAM user per grant, created before enforcement starts."""
    dynamodb = client("dynamodb", admin)
    for table in (TABLE, OTHER_TABLE):
        dynamodb.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "id", "AttributeType": "S"},
                {"AttributeName": "status", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": INDEX,
                    "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
    sns = client("sns", admin)
    for topic in ("success", "other"):
        sns.create_topic(Name=topic)
    s3 = client("s3", admin)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="present.json", Body=b"{}")
    iam = client("iam", admin)
    users = {}
    for name, statements in GRANTS.items():
        iam.create_user(UserName=name)
        iam.put_user_policy(
            UserName=name,
            PolicyName="grants",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        users[name] = (key["AccessKeyId"], key["SecretAccessKey"])
    return users


@pytest.fixture
def users(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, tuple[str, str]]]:
    """moto in-process with local mode's authorization installed (undone afterwards) and IAM
    enforced once the resources exist, as ``LocalPipeline`` turns it on."""
    import importlib

    for module, owner, attribute in PATCHED:
        cls = getattr(importlib.import_module(module), owner)
        monkeypatch.setattr(cls, attribute, getattr(cls, attribute))  # restored at teardown
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        authorization.seed_admin()
        authorization.complete_authorization()
        authorization.complete_missing_key_answers()
        created = provision((ADMIN_ACCESS_KEY_ID, ADMIN_SECRET_ACCESS_KEY))
        with enable_iam_authentication():
            yield created


def test_dynamodb_is_authorized_on_the_table_arn(users: dict[str, tuple[str, str]]) -> None:
    writer = client("dynamodb", users["table-writer"])
    writer.put_item(TableName=TABLE, Item={"id": {"S": "1"}, "status": {"S": "DONE"}})
    assert writer.get_item(TableName=TABLE, Key={"id": {"S": "1"}})["Item"]["id"] == {"S": "1"}
    assert error_code(writer.delete_item, TableName=TABLE, Key={"id": {"S": "1"}}) == (
        "AccessDeniedException"
    )
    assert error_code(writer.put_item, TableName=OTHER_TABLE, Item={"id": {"S": "1"}}) == (
        "AccessDeniedException"
    )
    both = {TABLE: {"Keys": [{"id": {"S": "1"}}]}, OTHER_TABLE: {"Keys": [{"id": {"S": "1"}}]}}
    assert error_code(writer.batch_get_item, RequestItems=both) == "AccessDeniedException"


def test_a_query_on_an_index_is_authorized_on_the_index_arn(
    users: dict[str, tuple[str, str]],
) -> None:
    query = {
        "TableName": TABLE,
        "IndexName": INDEX,
        "KeyConditionExpression": "#s = :s",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":s": {"S": "DONE"}},
    }
    client("dynamodb", users["index-reader"]).query(**query)
    table_only = client("dynamodb", users["table-reader"])
    assert error_code(table_only.query, **query) == "AccessDeniedException"
    table_only.query(
        TableName=TABLE,
        KeyConditionExpression="id = :i",
        ExpressionAttributeValues={":i": {"S": "1"}},
    )


def test_sns_publish_is_authorized_on_the_topic_arn(users: dict[str, tuple[str, str]]) -> None:
    publisher = client("sns", users["publisher"])
    publisher.publish(TopicArn=f"arn:aws:sns:{REGION}:{ACCOUNT}:success", Message="hello")
    other = f"arn:aws:sns:{REGION}:{ACCOUNT}:other"
    assert error_code(publisher.publish, TopicArn=other, Message="x") == "AccessDenied"


def test_a_missing_key_is_403_without_list_bucket_and_404_with_it(
    users: dict[str, tuple[str, str]],
) -> None:
    reader = client("s3", users["object-reader"])
    assert reader.get_object(Bucket=BUCKET, Key="present.json")["Body"].read() == b"{}"
    assert error_code(reader.head_object, Bucket=BUCKET, Key="missing.json") == "403"
    assert error_code(reader.get_object, Bucket=BUCKET, Key="missing.json") == "AccessDenied"
    lister = client("s3", users["object-lister"])
    assert error_code(lister.head_object, Bucket=BUCKET, Key="missing.json") == "404"
    assert error_code(lister.get_object, Bucket=BUCKET, Key="missing.json") == "NoSuchKey"


def dynamodb_call(operation: str, body: dict[str, Any]) -> Any:
    return SimpleNamespace(
        body=body, region=REGION, current_account=ACCOUNT, _get_action=lambda: operation
    )


@pytest.mark.parametrize(
    ("operation", "body", "resources"),
    [
        ("GetItem", {"TableName": TABLE}, [TABLE_ARN]),
        ("Query", {"TableName": TABLE, "IndexName": INDEX}, [f"{TABLE_ARN}/index/{INDEX}"]),
        ("Scan", {"TableName": TABLE, "IndexName": INDEX}, [f"{TABLE_ARN}/index/{INDEX}"]),
        ("Query", {"TableName": TABLE_ARN}, [TABLE_ARN]),
        (
            "BatchWriteItem",
            {"RequestItems": {TABLE: [], OTHER_TABLE: []}},
            [TABLE_ARN, TABLE_ARN.replace(TABLE, OTHER_TABLE)],
        ),
        ("ListTables", {}, ["*"]),
    ],
)
def test_the_arns_a_dynamodb_call_is_authorized_on(
    operation: str, body: dict[str, Any], resources: list[str]
) -> None:
    assert authorization._dynamodb_resources(dynamodb_call(operation, body)) == resources
