"""The local AWS server under IAM: what moto checks, and what ``aws.server`` completes
(``aws.authorization``).

One real server process on loopback (``--iam``); resources and roles are created as the
administrator before enforcement starts, as ``LocalPipeline`` does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from asyncinfer.local.aws.iam import (
    ADMIN_ACCESS_KEY_ID,
    ADMIN_SECRET_ACCESS_KEY,
    Authorizer,
    RoleCredentials,
    enable_enforcement,
)
from asyncinfer.local.aws.server import FUNCTION_TAG, TOPIC_TAG
from asyncinfer.local.processes import STARTUP_TIMEOUT_SECONDS, ServerProcesses

pytestmark = pytest.mark.e2e
REGION = "us-east-1"
ACCOUNT = "123456789012"
TABLE = "iam-results"
INDEX = "by_status"
OTHER_TABLE = "iam-other"
BUCKET = "iam-input"
TOPIC = "iam-success"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC}"
FUNCTION = "iam-results-function"  # run by local mode's event runner, not by moto
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}"
NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
# role name -> its one inline policy's statements
ROLES: dict[str, list[dict[str, Any]]] = {
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
    "publisher": [{"Effect": "Allow", "Action": "sns:Publish", "Resource": TOPIC_ARN}],
    "object-reader": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}
    ],
    "object-lister": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}"},
    ],
    "function-invoker": [
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": FUNCTION_ARN}
    ],
    "invoker": [
        {
            "Effect": "Allow",
            "Action": "sagemaker:InvokeEndpointAsync",
            "Resource": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/demo",
        }
    ],
}


def admin(url: str, service: str) -> Any:
    return boto3.session.Session(
        region_name=REGION,
        aws_access_key_id=ADMIN_ACCESS_KEY_ID,
        aws_secret_access_key=ADMIN_SECRET_ACCESS_KEY,
    ).client(service, endpoint_url=url, config=NO_RETRIES)


def as_role(url: str, credentials: RoleCredentials, service: str) -> Any:
    return boto3.session.Session(
        region_name=REGION,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
    ).client(service, endpoint_url=url, config=NO_RETRIES)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    log_dir: Path = tmp_path_factory.mktemp("iam")
    servers = ServerProcesses(log_dir, log_mode="w")
    try:
        url = servers.start(
            "aws",
            "asyncinfer.local.aws.server",
            ["--iam"],
            "/moto-api/",
            time.monotonic() + STARTUP_TIMEOUT_SECONDS,
        )
        dynamodb = admin(url, "dynamodb")
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
        admin(url, "sns").create_topic(Name=TOPIC)
        s3 = admin(url, "s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="present.json", Body=b"{}")
        iam = admin(url, "iam")
        sts = admin(url, "sts")
        roles: dict[str, Any] = {}
        for name, statements in ROLES.items():
            arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))[
                "Role"
            ]["Arn"]
            iam.put_role_policy(
                RoleName=name,
                PolicyName="grants",
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
            )
            credentials = sts.assume_role(RoleArn=arn, RoleSessionName=name)["Credentials"]
            roles[name] = RoleCredentials(
                arn,
                credentials["AccessKeyId"],
                credentials["SecretAccessKey"],
                credentials["SessionToken"],
            )
        enable_enforcement(url)
        yield url, roles
    finally:
        servers.stop()


def error_code(call: Any, **arguments: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**arguments)
    return str(caught.value.response["Error"]["Code"])


def test_the_administrator_may_do_everything(server: tuple[str, dict[str, Any]]) -> None:
    url, _ = server
    admin(url, "dynamodb").put_item(TableName=TABLE, Item={"id": {"S": "admin"}})
    admin(url, "sns").publish(TopicArn=TOPIC_ARN, Message="admin")
    assert admin(url, "s3").get_object(Bucket=BUCKET, Key="present.json")["Body"].read() == b"{}"


def test_unknown_credentials_are_refused(server: tuple[str, dict[str, Any]]) -> None:
    url, _ = server
    stranger = boto3.session.Session(
        region_name=REGION, aws_access_key_id="stranger", aws_secret_access_key="x"
    ).client("dynamodb", endpoint_url=url, config=NO_RETRIES)
    assert error_code(stranger.list_tables) == "UnrecognizedClientException"


def test_a_grant_on_the_table_arn_allows_and_nothing_else(
    server: tuple[str, dict[str, Any]],
) -> None:
    url, roles = server
    writer = as_role(url, roles["table-writer"], "dynamodb")
    writer.put_item(TableName=TABLE, Item={"id": {"S": "1"}, "status": {"S": "DONE"}})
    assert writer.get_item(TableName=TABLE, Key={"id": {"S": "1"}})["Item"]["id"] == {"S": "1"}
    # not granted: another action on the table, the same action on another table
    denied = error_code(writer.delete_item, TableName=TABLE, Key={"id": {"S": "1"}})
    assert denied == "AccessDeniedException"
    other = error_code(writer.put_item, TableName=OTHER_TABLE, Item={"id": {"S": "1"}})
    assert other == "AccessDeniedException"
    # a batch is authorized on each table it names
    batch = error_code(
        writer.batch_get_item,
        RequestItems={
            TABLE: {"Keys": [{"id": {"S": "1"}}]},
            OTHER_TABLE: {"Keys": [{"id": {"S": "1"}}]},
        },
    )
    assert batch == "AccessDeniedException"


def test_a_query_on_an_index_is_authorized_on_the_index_arn(
    server: tuple[str, dict[str, Any]],
) -> None:
    url, roles = server
    query = {
        "TableName": TABLE,
        "IndexName": INDEX,
        "KeyConditionExpression": "#s = :s",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":s": {"S": "DONE"}},
    }
    as_role(url, roles["index-reader"], "dynamodb").query(**query)
    table_only = as_role(url, roles["table-reader"], "dynamodb")
    assert error_code(table_only.query, **query) == "AccessDeniedException"
    table_only.query(
        TableName=TABLE,
        KeyConditionExpression="id = :i",
        ExpressionAttributeValues={":i": {"S": "1"}},
    )


def test_sns_publish_is_authorized_on_the_topic_arn(server: tuple[str, dict[str, Any]]) -> None:
    url, roles = server
    as_role(url, roles["publisher"], "sns").publish(TopicArn=TOPIC_ARN, Message="hello")
    other_topic = admin(url, "sns").create_topic(Name="iam-other")["TopicArn"]
    publisher = as_role(url, roles["publisher"], "sns")
    assert error_code(publisher.publish, TopicArn=other_topic, Message="x") == "AccessDenied"
    not_publisher = as_role(url, roles["table-writer"], "sns")
    assert error_code(not_publisher.publish, TopicArn=TOPIC_ARN, Message="x") == "AccessDenied"


def test_a_topic_policy_deny_applies_to_publish(server: tuple[str, dict[str, Any]]) -> None:
    """The stack's ``OnlyTheEndpointPublishes``: anyone but the named role is denied."""
    url, roles = server
    sns = admin(url, "sns")
    topic_arn = sns.create_topic(Name="iam-restricted")["TopicArn"]
    role_arn = roles["publisher"].role_arn
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OnlyTheEndpointPublishes",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {
                    "ArnNotEquals": {"aws:PrincipalArn": [role_arn, f"arn:aws:iam::{ACCOUNT}:root"]}
                },
            },
            {
                "Sid": "AllowPublishThroughSSLOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }
    sns.set_topic_attributes(
        TopicArn=topic_arn, AttributeName="Policy", AttributeValue=json.dumps(policy)
    )
    # the role's identity policy names another topic, but the administrator's allows all:
    with pytest.raises(ClientError) as denied:
        sns.publish(TopicArn=topic_arn, Message="x")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    message = denied.value.response["Error"]["Message"]
    assert f"arn:aws:iam::{ACCOUNT}:user/local-admin (denied by the topic policy" in message
    iam = admin(url, "iam")
    iam.put_role_policy(
        RoleName="publisher",
        PolicyName="restricted",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sns:Publish", "Resource": topic_arn}],
            }
        ),
    )
    as_role(url, roles["publisher"], "sns").publish(TopicArn=topic_arn, Message="allowed")


def test_a_missing_key_is_403_without_list_bucket_and_404_with_it(
    server: tuple[str, dict[str, Any]],
) -> None:
    url, roles = server
    reader = as_role(url, roles["object-reader"], "s3")
    assert reader.get_object(Bucket=BUCKET, Key="present.json")["Body"].read() == b"{}"
    assert error_code(reader.head_object, Bucket=BUCKET, Key="missing.json") == "403"
    assert error_code(reader.get_object, Bucket=BUCKET, Key="missing.json") == "AccessDenied"
    lister = as_role(url, roles["object-lister"], "s3")
    assert error_code(lister.head_object, Bucket=BUCKET, Key="missing.json") == "404"
    assert error_code(lister.get_object, Bucket=BUCKET, Key="missing.json") == "NoSuchKey"
    # the administrator may list every bucket
    assert error_code(admin(url, "s3").head_object, Bucket=BUCKET, Key="missing.json") == "404"


def test_assumed_role_credentials_need_their_session_token(
    server: tuple[str, dict[str, Any]],
) -> None:
    url, roles = server
    role = roles["table-writer"]
    identity = as_role(url, role, "sts").get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/table-writer/table-writer"
    forged = RoleCredentials(role.role_arn, role.access_key_id, role.secret_access_key, "forged")
    client = as_role(url, forged, "dynamodb")
    code = error_code(client.get_item, TableName=TABLE, Key={"id": {"S": "1"}})
    assert code in ("UnrecognizedClientException", "InvalidClientTokenId")


def signed_headers(credentials: RoleCredentials | None) -> dict[str, str]:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    if credentials is None:
        signing = Credentials(ADMIN_ACCESS_KEY_ID, ADMIN_SECRET_ACCESS_KEY)
    else:
        signing = Credentials(
            credentials.access_key_id, credentials.secret_access_key, credentials.session_token
        )
    request = AWSRequest(
        method="POST", url="http://127.0.0.1/endpoints/demo/async-invocations", data=b""
    )
    SigV4Auth(signing, "sagemaker", REGION).add_auth(request)
    return dict(request.headers.items())


def test_the_runtime_authorizer_uses_the_callers_role(server: tuple[str, dict[str, Any]]) -> None:
    from asyncinfer.local.sagemaker.wire import ApiError

    url, roles = server
    authorizer = Authorizer(url, REGION, roles.values())
    endpoint_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/demo"
    action = "sagemaker:InvokeEndpointAsync"
    authorizer.authorize(signed_headers(roles["invoker"]), action, endpoint_arn)
    authorizer.authorize(signed_headers(None), action, endpoint_arn)  # the administrator
    with pytest.raises(ApiError) as denied:
        authorizer.authorize(signed_headers(roles["table-writer"]), action, endpoint_arn)
    assert (denied.value.status, denied.value.code) == (403, "AccessDeniedException")
    with pytest.raises(ApiError) as elsewhere:
        authorizer.authorize(signed_headers(roles["invoker"]), action, endpoint_arn + "-other")
    assert elsewhere.value.code == "AccessDeniedException"
    stranger = RoleCredentials("arn:aws:iam::1:role/x", "ASIASTRANGER", "secret", "token")
    with pytest.raises(ApiError) as unknown:
        authorizer.authorize(signed_headers(stranger), action, endpoint_arn)
    assert unknown.value.code == "UnrecognizedClientException"


def sns_event(topic_arn: str, message: str) -> dict[str, Any]:
    """The event SNS invokes a subscribed function with (Lambda developer guide, "Invoking
    Lambda functions with Amazon SNS notifications", example event)."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic_arn}:0b1c",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": "95df01b4",
                    "TopicArn": topic_arn,
                    "Subject": None,
                    "Message": message,
                    "Timestamp": "2026-11-30T12:00:00.000Z",
                    "SignatureVersion": "1",
                    "Signature": "c2ln",
                    "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/cert.pem",
                    "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": {},
                },
            }
        ]
    }


@pytest.fixture(scope="module")
def delivery_queue(server: tuple[str, dict[str, Any]]) -> str:
    """What ``provision.resources`` creates for a function subscribed to a topic: a tagged queue."""
    url, _ = server
    return str(
        admin(url, "sqs").create_queue(
            QueueName="iam-results-delivery",
            tags={FUNCTION_TAG: FUNCTION_ARN, TOPIC_TAG: TOPIC_ARN},
        )["QueueUrl"]
    )


def test_an_async_invoke_of_a_local_function_reaches_its_delivery_queue(
    server: tuple[str, dict[str, Any]], delivery_queue: str
) -> None:
    url, roles = server
    invoker = as_role(url, roles["function-invoker"], "lambda")
    for name in (FUNCTION, FUNCTION_ARN):
        response = invoker.invoke(
            FunctionName=name,
            InvocationType="Event",
            Payload=json.dumps(sns_event(TOPIC_ARN, f"via {name}")).encode(),
        )
        assert response["StatusCode"] == 202
    sqs = admin(url, "sqs")
    messages = sqs.receive_message(QueueUrl=delivery_queue, MaxNumberOfMessages=10)["Messages"]
    envelopes = [json.loads(message["Body"]) for message in messages]
    assert sorted(envelope["Message"] for envelope in envelopes) == [
        f"via {FUNCTION_ARN}",
        f"via {FUNCTION}",
    ]
    # the envelope as an SQS subscription holds it: URL fields spelt as SNS sends them
    assert envelopes[0]["TopicArn"] == TOPIC_ARN
    assert envelopes[0]["SigningCertURL"].endswith("cert.pem")
    assert "SigningCertUrl" not in envelopes[0]
    assert "Subject" not in envelopes[0]


def test_invoke_is_authorized_as_invoke_function_on_the_function_arn(
    server: tuple[str, dict[str, Any]], delivery_queue: str
) -> None:
    url, roles = server
    event = json.dumps(sns_event(TOPIC_ARN, "x")).encode()
    invoker = as_role(url, roles["function-invoker"], "lambda")
    other = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:another"
    with pytest.raises(ClientError) as denied:
        invoker.invoke(FunctionName=other, InvocationType="Event", Payload=event)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "lambda:InvokeFunction" in denied.value.response["Error"]["Message"]
    assert denied.value.response["Error"]["Message"].endswith(f"on resource: {other}")
    stranger = as_role(url, roles["publisher"], "lambda")
    assert (
        error_code(stranger.invoke, FunctionName=FUNCTION, InvocationType="Event", Payload=event)
        == "AccessDeniedException"
    )
    sqs = admin(url, "sqs")
    assert sqs.receive_message(QueueUrl=delivery_queue).get("Messages", []) == []


def test_an_invoke_local_mode_cannot_run_is_refused(
    server: tuple[str, dict[str, Any]], delivery_queue: str
) -> None:
    url, _ = server
    client = admin(url, "lambda")
    not_sns = json.dumps({"hello": "world"}).encode()
    assert (
        error_code(client.invoke, FunctionName=FUNCTION, InvocationType="Event", Payload=not_sns)
        == "InvalidRequestContentException"
    )
    other_topic = json.dumps(sns_event(f"{TOPIC_ARN}-other", "x")).encode()
    assert (
        error_code(
            client.invoke, FunctionName=FUNCTION, InvocationType="Event", Payload=other_topic
        )
        == "InvalidRequestContentException"
    )
    # a function local mode does not run is moto's: it does not exist
    assert (
        error_code(client.invoke, FunctionName="nowhere", InvocationType="Event", Payload=not_sns)
        == "ResourceNotFoundException"
    )
