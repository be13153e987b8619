"""Data access of the functions that record outcomes (results, reconciler): their AWS clients,
and the inference outputs in S3.

The outcome recording (``lambdas.common.outcomes``) depends on the small ``OutputReader``
protocol, so tests inject fakes; the botocore-backed reader is the only code of the results
function that calls AWS besides the record store, and turns every SDK error into
``OutputUnavailableError``.

Only small objects are ever downloaded: one ranged GET asks for at most ``max_bytes + 1``
bytes, and the object's total size comes back in ``Content-Range``. That is one request per
output (no HeadObject first) and never a large transfer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common.s3uri import split_s3_location
from lambdas.common.sessions import function_session

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_s3.client import S3Client

# Reading an inline result is optional: fail fast instead of holding the invocation up.
S3_CLIENT_CONFIG = Config(
    connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 2}
)
# A throttled write is retried here first; past that the invocation fails and Lambda's
# asynchronous retries (then the on-failure destination) take over.
DYNAMODB_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})

# S3's answer to a range request on an empty object.
INVALID_RANGE = "InvalidRange"


class OutputUnavailableError(Exception):
    """The output object could not be read: missing, access denied, not an S3 location, or S3
    itself failed. The outcome is still recorded, only without an inline result."""


@dataclass(frozen=True)
class OutputObject:
    size: int
    content_type: str | None
    body: bytes | None  # None when ``size`` is above the requested limit: not downloaded


class OutputReader(Protocol):
    def read_small(self, location: str, max_bytes: int) -> OutputObject:
        """The object at ``location`` with its body when it is at most ``max_bytes`` long.

        Raises ``OutputUnavailableError`` when it cannot be read.
        """
        ...


def _total_size(content_range: str | None, received: int) -> int:
    """The object size from ``bytes 0-N/TOTAL``; what was received when S3 does not say."""
    if content_range:
        total = content_range.rpartition("/")[2]
        if total.isdigit():
            return int(total)
    return received


class S3OutputReader:
    """Reads outputs with the S3 client ``client`` creates, called on the first read only: with
    the stack's default (the result inside the notification) a container may never read an
    output, and creating an S3 client costs a cold start about 20 ms of CPU (S3's models)."""

    def __init__(self, client: Callable[[], S3Client]) -> None:
        self._create_client = client
        self._client: S3Client | None = None

    def _s3(self) -> S3Client:
        if self._client is None:
            self._client = self._create_client()
        return self._client

    def read_small(self, location: str, max_bytes: int) -> OutputObject:
        parts = split_s3_location(location)
        if parts is None:
            raise OutputUnavailableError(f"{location!r} is not an s3://bucket/key location")
        bucket, key = parts
        try:
            response = self._s3().get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{max_bytes}")
            with response["Body"] as stream:
                body = stream.read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == INVALID_RANGE:
                return OutputObject(size=0, content_type=None, body=b"")
            raise OutputUnavailableError(f"cannot read {location}: {error}") from error
        except BotoCoreError as error:
            raise OutputUnavailableError(f"cannot read {location}: {error}") from error
        size = _total_size(response.get("ContentRange"), len(body))
        content_type = response.get("ContentType")
        if size > max_bytes:
            return OutputObject(size=size, content_type=content_type, body=None)
        return OutputObject(size=size, content_type=content_type, body=body)


# The services the function calls: its session loads their models only.
SERVICES = ("dynamodb", "s3")


@dataclass(frozen=True)
class AwsClients:
    dynamodb: DynamoDBClient
    create_s3: Callable[[], S3Client]  # S3OutputReader creates its client when it first reads


def create_clients(session: botocore.session.Session | None = None) -> AwsClients:
    """A function's clients, created once per container; ``session`` defaults to a new
    botocore session. Plain botocore: boto3's own layer (resources, s3transfer) would add to
    every cold start and the function uses none of it. ``AWS_ENDPOINT_URL*`` (local mode) is
    honoured by botocore."""
    session = session or function_session(SERVICES)
    return AwsClients(
        dynamodb=cast(
            "DynamoDBClient", session.create_client("dynamodb", config=DYNAMODB_CLIENT_CONFIG)
        ),
        create_s3=lambda: cast("S3Client", session.create_client("s3", config=S3_CLIENT_CONFIG)),
    )
