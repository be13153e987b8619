"""Data access for the ingest function: S3 HeadObject and SageMaker InvokeEndpointAsync.

The logic depends on the two small protocols below, so tests inject fakes. The boto3-backed
implementations are the only code of the function that calls AWS besides the record store.

Retries: the SageMaker runtime client makes one HTTP attempt per call, with short timeouts,
because the submission flow owns its retry loop (jittered backoff bounded by the function's
remaining time, see ``logic.Submitter``). S3 and DynamoDB clients keep botocore's standard
retry mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from boto3.session import Session
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sagemaker_runtime.client import SageMakerRuntimeClient

INVOKE_CONNECT_TIMEOUT_SECONDS = 2.0
INVOKE_READ_TIMEOUT_SECONDS = 5.0
# One InvokeEndpointAsync attempt can take at most this long before botocore gives up.
INVOKE_ATTEMPT_MAX_SECONDS = INVOKE_CONNECT_TIMEOUT_SECONDS + INVOKE_READ_TIMEOUT_SECONDS

# HeadObject answers for an object (or version) that no longer exists. 405 is a delete marker.
_MISSING_OBJECT_CODES = frozenset({"404", "NoSuchKey", "NoSuchVersion", "NotFound", "405"})


class ObjectMissingError(LookupError):
    """The object was deleted before the function got to it."""


@dataclass(frozen=True)
class ObjectHead:
    """What HeadObject says about the current version of an object."""

    etag: str
    content_length: int
    content_type: str | None = None
    version_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


class ObjectInspector(Protocol):
    def head(self, bucket: str, key: str) -> ObjectHead:
        """The current version's head; raises ObjectMissingError when there is none."""
        ...


@dataclass(frozen=True)
class InvocationRequest:
    endpoint_name: str
    input_location: str
    inference_id: str
    content_type: str
    accept: str
    custom_attributes: str
    request_ttl_seconds: int
    invocation_timeout_seconds: int


@dataclass(frozen=True)
class InvocationResponse:
    inference_id: str
    output_location: str | None
    failure_location: str | None


class AsyncInvoker(Protocol):
    def invoke(self, request: InvocationRequest) -> InvocationResponse:
        """Queue one async inference. Errors are botocore's, unchanged, for the caller to
        classify (``ClientError`` with the service's code, or a connection error)."""
        ...


class S3ObjectInspector:
    def __init__(self, client: S3Client) -> None:
        self._client = client

    def head(self, bucket: str, key: str) -> ObjectHead:
        try:
            response = self._client.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_OBJECT_CODES:
                raise ObjectMissingError(f"s3://{bucket}/{key} does not exist ({code})") from error
            raise
        return ObjectHead(
            etag=response["ETag"].strip('"'),
            content_length=response["ContentLength"],
            content_type=response.get("ContentType"),
            version_id=response.get("VersionId"),
            metadata=dict(response.get("Metadata", {})),
        )


class SageMakerAsyncInvoker:
    def __init__(self, client: SageMakerRuntimeClient) -> None:
        self._client = client

    def invoke(self, request: InvocationRequest) -> InvocationResponse:
        response = self._client.invoke_endpoint_async(
            EndpointName=request.endpoint_name,
            InputLocation=request.input_location,
            InferenceId=request.inference_id,
            ContentType=request.content_type,
            Accept=request.accept,
            CustomAttributes=request.custom_attributes,
            RequestTTLSeconds=request.request_ttl_seconds,
            InvocationTimeoutSeconds=request.invocation_timeout_seconds,
        )
        return InvocationResponse(
            inference_id=response.get("InferenceId") or request.inference_id,
            output_location=response.get("OutputLocation"),
            failure_location=response.get("FailureLocation"),
        )


@dataclass(frozen=True)
class AwsClients:
    dynamodb: DynamoDBClient
    s3: S3Client
    sagemaker_runtime: SageMakerRuntimeClient


def create_clients(session: Session, *, max_pool_connections: int) -> AwsClients:
    """The function's clients, created once per container (boto3 clients are thread-safe).

    The connection pools are as large as the submission pool, so concurrent submissions do
    not queue for a connection. ``AWS_ENDPOINT_URL*`` (local mode) is honoured by botocore.
    """
    standard = Config(retries={"mode": "standard"}, max_pool_connections=max_pool_connections)
    submit = Config(
        # One HTTP attempt. (botocore's ``max_attempts`` counts retries: 1 would mean two.)
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=INVOKE_CONNECT_TIMEOUT_SECONDS,
        read_timeout=INVOKE_READ_TIMEOUT_SECONDS,
        max_pool_connections=max_pool_connections,
    )
    return AwsClients(
        dynamodb=session.client("dynamodb", config=standard),
        s3=session.client("s3", config=standard),
        sagemaker_runtime=session.client("sagemaker-runtime", config=submit),
    )
