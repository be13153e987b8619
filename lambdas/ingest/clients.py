"""Data access for the ingest function: S3 HeadObject and GetObject (the inline Body) and
SageMaker InvokeEndpointAsync.

The logic depends on the two small protocols below, so tests inject fakes. The botocore-backed
implementations are the only code of the function that calls AWS besides the record store,
and the only code that knows botocore's errors: the ones the submission flow acts on become
``ObjectMissingError``, ``ObjectChangedError``, ``InvocationRejectedError`` or
``InvocationRetryableError``; anything
else (access denied, a bug) propagates unchanged and leaves the message for a retry.

Retries: the SageMaker runtime client makes one HTTP attempt per call, with short timeouts,
because the submission flow owns its retry loop (jittered backoff bounded by the function's
remaining time, see ``logic.Submitter``). S3 and DynamoDB clients keep botocore's standard
retry mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, cast

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.ingest.service_models import botocore_session
from lambdas.ingest.values import (
    AnnouncedVersion,
    InlineInput,
    InvocationRequest,
    InvocationResponse,
    ObjectHead,
)

if TYPE_CHECKING:
    from botocore.session import Session
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sagemaker_runtime.client import SageMakerRuntimeClient


INVOKE_CONNECT_TIMEOUT_SECONDS = 2.0
INVOKE_READ_TIMEOUT_SECONDS = 5.0
# One InvokeEndpointAsync attempt can take at most this long before botocore gives up.
INVOKE_ATTEMPT_MAX_SECONDS = INVOKE_CONNECT_TIMEOUT_SECONDS + INVOKE_READ_TIMEOUT_SECONDS

# HeadObject answers for an object (or version) that no longer exists. 405 is a delete marker.
_MISSING_OBJECT_CODES = frozenset({"404", "NoSuchKey", "NoSuchVersion", "NotFound", "405"})
# GetObject with IfMatch answers 412 when the object no longer has the announced ETag.
_CHANGED_OBJECT_CODES = frozenset({"412", "PreconditionFailed"})


class InputUnavailableError(LookupError):
    """The announced version can no longer be read."""


class ObjectMissingError(InputUnavailableError):
    """The object (or the announced version) was deleted before the function got to it."""


class ObjectChangedError(InputUnavailableError):
    """An unversioned object was overwritten: the key no longer holds the announced bytes."""


class InvocationError(Exception):
    """InvokeEndpointAsync failed in a way the submission flow acts on; the message is the
    service's ``Code: Message`` (or the connection error)."""


class InvocationRejectedError(InvocationError):
    """SageMaker refused the request itself (``ValidationError``): retrying cannot help."""


class InvocationRetryableError(InvocationError):
    """Throttling, a 5xx, ``ModelNotReady`` or a connection error: another attempt may pass."""


class ObjectInspector(Protocol):
    def head(self, bucket: str, key: str) -> ObjectHead:
        """The current version's head; raises ObjectMissingError when there is none."""
        ...


class AsyncInvoker(Protocol):
    def invoke(self, request: InvocationRequest) -> InvocationResponse:
        """Queue one async inference. Raises ``InvocationRejectedError`` or
        ``InvocationRetryableError``; any other error is unexpected."""
        ...


class SubmitErrorKind(StrEnum):
    RETRY = "retry"
    REJECT = "reject"


RETRYABLE_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ModelNotReadyException",
        "InternalFailure",
        "ServiceUnavailable",
        "InternalDependencyException",
    }
)
REJECTED_ERROR_CODES = frozenset({"ValidationError", "ValidationException"})
RETRYABLE_HTTP_STATUSES = frozenset({429, 500, 502, 503, 504})


def classify_submit_error(error: Exception) -> SubmitErrorKind | None:
    """Retry, reject (record FAILED), or neither (unexpected: left for the message retry)."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in REJECTED_ERROR_CODES:
            return SubmitErrorKind.REJECT
        if code in RETRYABLE_ERROR_CODES or status in RETRYABLE_HTTP_STATUSES:
            return SubmitErrorKind.RETRY
        return None
    if isinstance(error, BotoCoreError):
        # Connection errors and timeouts (EndpointConnectionError, ConnectTimeoutError,
        # ReadTimeoutError, ConnectionClosedError) carry no answer: try again.
        return SubmitErrorKind.RETRY
    return None


def error_message(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = details.get("Code", "")
        message = details.get("Message", "")
        return f"{code}: {message}" if message else str(code or error)
    return f"{type(error).__name__}: {error}"


def invocation_error(error: Exception) -> InvocationError | None:
    """The project's exception for an error of InvokeEndpointAsync; None when unclassified."""
    kind = classify_submit_error(error)
    if kind is SubmitErrorKind.REJECT:
        return InvocationRejectedError(error_message(error))
    if kind is SubmitErrorKind.RETRY:
        return InvocationRetryableError(error_message(error))
    return None


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


class S3InputReader:
    """Reads exactly the announced version (``lambdas.ingest.payload`` says why)."""

    def __init__(self, client: S3Client) -> None:
        self._client = client

    def fetch(self, version: AnnouncedVersion) -> InlineInput:
        """The version's bytes, content type and metadata; ``InputUnavailableError`` if gone.

        A versioned object is read by ``VersionId`` (an overwrite leaves it readable); an
        unversioned one with ``IfMatch`` on the announced ETag, so an overwrite answers 412.
        """
        arguments: dict[str, Any] = {"Bucket": version.bucket, "Key": version.key}
        if version.versioned:
            arguments["VersionId"] = version.version_id
        elif version.etag:
            arguments["IfMatch"] = f'"{version.etag.strip(chr(34))}"'
        try:
            response = self._client.get_object(**arguments)
            data: bytes = response["Body"].read()
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = str(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            if code in _CHANGED_OBJECT_CODES or status == "412":
                raise ObjectChangedError(f"{version.location} was overwritten ({code})") from error
            if code in _MISSING_OBJECT_CODES or status == "404":
                raise ObjectMissingError(f"{version.location} no longer exists ({code})") from error
            raise
        if len(data) != version.size:
            # The event and the object disagree: not the bytes that were announced.
            raise ObjectChangedError(
                f"{version.location} has {len(data)} bytes, the event announced {version.size}"
            )
        return InlineInput(
            data=data,
            content_type=response.get("ContentType"),
            metadata=dict(response.get("Metadata", {})),
        )

    def read(self, version: AnnouncedVersion) -> bytes:
        """Exactly the announced version's bytes; raises ``InputUnavailableError``."""
        return self.fetch(version).data


class SageMakerAsyncInvoker:
    def __init__(self, client: SageMakerRuntimeClient) -> None:
        self._client = client

    def invoke(self, request: InvocationRequest) -> InvocationResponse:
        try:
            response = self._client.invoke_endpoint_async(
                EndpointName=request.endpoint_name,
                InferenceId=request.inference_id,
                ContentType=request.content_type,
                Accept=request.accept,
                CustomAttributes=request.custom_attributes,
                RequestTTLSeconds=request.request_ttl_seconds,
                InvocationTimeoutSeconds=request.invocation_timeout_seconds,
                **request.optional_members(),
            )
        except (ClientError, BotoCoreError) as error:
            translated = invocation_error(error)
            if translated is None:
                raise
            raise translated from error
        return InvocationResponse(
            inference_id=response.get("InferenceId") or request.inference_id,
            output_location=response.get("OutputLocation"),
            failure_location=response.get("FailureLocation"),
        )


# The services the function calls: its session loads their models only.
SERVICES = ("dynamodb", "s3", "sagemaker-runtime")


@dataclass(frozen=True)
class AwsClients:
    dynamodb: DynamoDBClient
    s3: S3Client
    sagemaker_runtime: SageMakerRuntimeClient


class SqsManifestForwarder:
    """Sends a notification naming a job's manifest on to the jobs queue: this function's S3
    notification covers the manifests, and S3 allows no second, overlapping one for them."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def __call__(self, body: str) -> None:
        try:
            self._client.send_message(QueueUrl=self._queue_url, MessageBody=body)
        except (BotoCoreError, ClientError) as error:
            raise InvocationRetryableError(f"forwarding a manifest failed: {error}") from error


def manifest_forwarder(queue_url: str, session: Session | None = None) -> SqsManifestForwarder:
    """Its SQS client is created only when the stack routes manifests through this function."""
    session = session or botocore_session(("sqs",))  # a session loads its services' models only
    return SqsManifestForwarder(
        session.create_client("sqs", config=Config(retries={"mode": "standard"})), queue_url
    )


def create_clients(session: Session | None = None, *, max_pool_connections: int) -> AwsClients:
    """The function's clients, created once per container (botocore clients are thread-safe).

    Plain botocore: boto3's own layer (resources, s3transfer) would add to every cold start
    and the function uses none of it. ``session`` defaults to ``botocore_session()``, which
    finds the shipped sagemaker-runtime model first (``lambdas/ingest/service_models.py``).
    The connection pools are as large as the submission pool, so concurrent submissions do
    not queue for a connection. ``AWS_ENDPOINT_URL*`` (local mode) is honoured by botocore.
    """
    session = session or botocore_session(SERVICES)
    standard = Config(retries={"mode": "standard"}, max_pool_connections=max_pool_connections)
    submit = Config(
        # One HTTP attempt. (botocore's ``max_attempts`` counts retries: 1 would mean two.)
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=INVOKE_CONNECT_TIMEOUT_SECONDS,
        read_timeout=INVOKE_READ_TIMEOUT_SECONDS,
        max_pool_connections=max_pool_connections,
    )
    return AwsClients(
        dynamodb=cast("DynamoDBClient", session.create_client("dynamodb", config=standard)),
        s3=cast("S3Client", session.create_client("s3", config=standard)),
        sagemaker_runtime=cast(
            "SageMakerRuntimeClient", session.create_client("sagemaker-runtime", config=submit)
        ),
    )
