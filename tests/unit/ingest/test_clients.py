"""The data-access layer against moto, and the clients' retry and endpoint settings."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from lambdas.ingest.clients import (
    INVOKE_CONNECT_TIMEOUT_SECONDS,
    INVOKE_READ_TIMEOUT_SECONDS,
    InvocationRejectedError,
    InvocationRetryableError,
    ObjectMissingError,
    S3InputReader,
    S3ObjectInspector,
    SageMakerAsyncInvoker,
    create_clients,
    manifest_forwarder,
)
from lambdas.ingest.logic import Outcome
from lambdas.ingest.values import AnnouncedVersion, InvocationRequest
from tests.conftest import REGION
from tests.unit.ingest.conftest import INPUT_BUCKET, World


def test_head_reports_the_current_object(world: World) -> None:
    world.enable_versioning()
    written = world.s3.put_object(
        Bucket=INPUT_BUCKET,
        Key="dir/a b.json",
        Body=b"12345",
        ContentType="application/json",
        Metadata={"Customer": "acme"},
    )
    head = S3ObjectInspector(world.s3).head(INPUT_BUCKET, "dir/a b.json")
    assert head.etag == written["ETag"].strip('"')
    assert head.content_length == 5
    assert head.content_type == "application/json"
    assert head.version_id == written["VersionId"]
    assert head.metadata == {"customer": "acme"}


def test_head_of_a_missing_object_raises_object_missing(world: World) -> None:
    with pytest.raises(ObjectMissingError, match=r"s3://input-bucket/nothing\.json"):
        S3ObjectInspector(world.s3).head(INPUT_BUCKET, "nothing.json")


@pytest.mark.parametrize(
    ("code", "status", "missing"),
    [
        # HeadObject has no error body: botocore reports the HTTP status as the code
        ("404", 404, True),
        ("NoSuchKey", 404, True),
        ("NoSuchVersion", 404, True),
        # without s3:ListBucket S3 hides a missing key behind 403: not proof of deletion,
        # so it must stay an error the batch retries, never "deleted before submission"
        ("403", 403, False),
        ("AccessDenied", 403, False),
    ],
)
def test_head_tells_a_deleted_object_from_a_denied_one(
    code: str, status: int, missing: bool
) -> None:
    client = boto3.client(
        "s3", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "head_object",
            service_error_code=code,
            http_status_code=status,
            expected_params={"Bucket": INPUT_BUCKET, "Key": "a.json"},
        )
        expected: type[Exception] = ObjectMissingError if missing else ClientError
        with pytest.raises(expected) as raised:
            S3ObjectInspector(client).head(INPUT_BUCKET, "a.json")
    assert isinstance(raised.value, ObjectMissingError) is missing


@pytest.mark.parametrize(
    ("code", "status", "missing"),
    [
        ("NoSuchVersion", 404, True),
        ("NoSuchKey", 404, True),
        # GetObject has an error body: S3 names a hidden missing key AccessDenied (403)
        ("AccessDenied", 403, False),
        ("403", 403, False),
    ],
)
def test_the_inline_read_tells_a_deleted_version_from_a_denied_one(
    code: str, status: int, missing: bool
) -> None:
    """The 403-is-not-missing rule holds for GetObject (the inline read) as for HeadObject: a
    denied read is retried, never recorded as deleted before submission."""
    client = boto3.client(
        "s3", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    version = AnnouncedVersion(bucket=INPUT_BUCKET, key="a.json", size=5, etag="e", version_id="v1")
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "get_object",
            service_error_code=code,
            http_status_code=status,
            expected_params={"Bucket": INPUT_BUCKET, "Key": "a.json", "VersionId": "v1"},
        )
        expected: type[Exception] = ObjectMissingError if missing else ClientError
        with pytest.raises(expected) as raised:
            S3InputReader(client).fetch(version)
    assert isinstance(raised.value, ObjectMissingError) is missing


def test_other_s3_errors_propagate(world: World) -> None:
    with pytest.raises(world.s3.exceptions.ClientError, match="NoSuchBucket"):
        S3ObjectInspector(world.s3).head("no-such-bucket-here", "a.json")


def test_the_invoker_returns_the_locations_sagemaker_answers_with(moto_aws: None) -> None:
    client = boto3.client("sagemaker-runtime", region_name=REGION)
    response = SageMakerAsyncInvoker(client).invoke(
        InvocationRequest(
            endpoint_name="demo-endpoint",
            input_location="s3://input-bucket/été/a b.json",
            inference_id="f" * 64,
            content_type="application/json",
            accept="application/json",
            custom_attributes="trace_id=1-abc",
            request_ttl_seconds=60,
            invocation_timeout_seconds=60,
        )
    )
    assert response.inference_id == "f" * 64
    assert response.output_location
    assert response.output_location.startswith("s3://")
    assert response.failure_location


REQUEST = InvocationRequest(
    endpoint_name="demo-endpoint",
    input_location="s3://input-bucket/a.json",
    inference_id="f" * 64,
    content_type="application/json",
    accept="application/json",
    custom_attributes="trace_id=1-abc",
    request_ttl_seconds=60,
    invocation_timeout_seconds=60,
)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ValidationError", 400, InvocationRejectedError),
        ("ThrottlingException", 429, InvocationRetryableError),
        ("ServiceUnavailable", 503, InvocationRetryableError),
        ("AccessDeniedException", 403, ClientError),
    ],
)
def test_the_invoker_raises_the_projects_errors_for_the_ones_it_classifies(
    aws_credentials: None, code: str, status: int, expected: type[Exception]
) -> None:
    client = boto3.client("sagemaker-runtime", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "invoke_endpoint_async", code, "it went wrong", http_status_code=status
        )
        with pytest.raises(expected, match="it went wrong"):
            SageMakerAsyncInvoker(client).invoke(REQUEST)


def capture_invocations(client: Any) -> list[dict[str, str]]:
    """The headers of every InvokeEndpointAsync HTTP request the client sends."""
    sent: list[dict[str, str]] = []

    def record(request: Any, **_: Any) -> None:
        sent.append(
            {
                name: value.decode() if isinstance(value, bytes) else value
                for name, value in request.headers.items()
            }
        )

    client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpointAsync", record)
    return sent


def test_the_invoker_sends_every_request_member_as_its_wire_header(moto_aws: None) -> None:
    client = boto3.client("sagemaker-runtime", region_name=REGION)
    sent = capture_invocations(client)
    SageMakerAsyncInvoker(client).invoke(
        InvocationRequest(
            endpoint_name="demo-endpoint",
            input_location="s3://input-bucket/a.csv",
            inference_id="f" * 64,
            content_type="text/csv",
            accept="application/jsonlines",
            custom_attributes="tenant=acme,trace_id=1-abc",
            request_ttl_seconds=61,
            invocation_timeout_seconds=62,
        )
    )
    [headers] = sent
    assert headers["X-Amzn-SageMaker-Content-Type"] == "text/csv"
    assert headers["X-Amzn-SageMaker-Accept"] == "application/jsonlines"
    assert headers["X-Amzn-SageMaker-Custom-Attributes"] == "tenant=acme,trace_id=1-abc"
    assert headers["X-Amzn-SageMaker-Inference-Id"] == "f" * 64
    assert headers["X-Amzn-SageMaker-InputLocation"] == "s3://input-bucket/a.csv"
    assert headers["X-Amzn-SageMaker-RequestTTLSeconds"] == "61"
    assert headers["X-Amzn-SageMaker-InvocationTimeoutSeconds"] == "62"


def test_the_submitter_sends_the_objects_content_type_and_custom_attributes(
    world: World, moto_aws: None
) -> None:
    """From object to wire: the ContentType and CustomAttributes that reach SageMaker."""
    client = boto3.client("sagemaker-runtime", region_name=REGION)
    sent = capture_invocations(client)
    world.invoker = SageMakerAsyncInvoker(client)  # type: ignore[assignment]
    csv = world.upload("data/a.json", ContentType="text/csv", Metadata={"Tenant": "acme"})
    by_extension = world.upload("data/b.csv")
    submitter = world.submitter(
        custom_attributes={"model": "iris v2"}, metadata_attributes=("tenant",)
    )

    for target in (csv, by_extension):
        result = submitter.submit(target, trace_id="1-abc-def", remaining_seconds=lambda: 300.0)
        assert result.outcome is Outcome.SUBMITTED, result

    first, second = sent
    assert first["X-Amzn-SageMaker-Content-Type"] == "text/csv"
    assert first["X-Amzn-SageMaker-Custom-Attributes"] == (
        "model=iris%20v2,tenant=acme,trace_id=1-abc-def"
    )
    assert second["X-Amzn-SageMaker-Content-Type"] == "text/csv"  # from the extension
    assert second["X-Amzn-SageMaker-Custom-Attributes"] == "model=iris%20v2,trace_id=1-abc-def"
    assert world.stored(csv.inference_id).custom_attributes == (
        "model=iris%20v2,tenant=acme,trace_id=1-abc-def"
    )


def test_only_the_sagemaker_client_has_botocore_retries_off(aws_credentials: None) -> None:
    clients = create_clients(max_pool_connections=7)
    runtime_config: Any = clients.sagemaker_runtime.meta.config
    assert runtime_config.retries == {"total_max_attempts": 1, "mode": "standard"}
    assert runtime_config.connect_timeout == INVOKE_CONNECT_TIMEOUT_SECONDS
    assert runtime_config.read_timeout == INVOKE_READ_TIMEOUT_SECONDS
    configs: list[Any] = [clients.s3.meta.config, clients.dynamodb.meta.config]
    for config in configs:
        assert config.retries == {"mode": "standard"}  # botocore's default attempts
    for config in [*configs, runtime_config]:
        assert config.max_pool_connections == 7


def test_local_mode_endpoints_come_from_the_environment(
    aws_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "http://127.0.0.1:4567")
    clients = create_clients(max_pool_connections=1)
    assert clients.dynamodb.meta.endpoint_url == "http://127.0.0.1:4566"
    assert clients.s3.meta.endpoint_url == "http://127.0.0.1:4566"
    assert clients.sagemaker_runtime.meta.endpoint_url == "http://127.0.0.1:4567"


def test_the_manifest_forwarder_sends_to_the_jobs_queue(moto_aws: None) -> None:
    """Its own session loads the SQS model (a function session knows only its services)."""
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    manifest_forwarder(queue_url)('{"Records": []}')
    (message,) = sqs.receive_message(QueueUrl=queue_url)["Messages"]
    assert message["Body"] == '{"Records": []}'
