"""The CLI's boto3 sessions and clients, and ``calling``: where an SDK error becomes the CLI's.

Every call of the access modules runs inside ``calling(resource)`` so that an error names what
it was about.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.loaders import create_loader

from asyncinfer.cli.errors import AwsCallError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sqs.client import SQSClient


# Parsing the service models costs more than most commands' calls; sessions share them.
_SHARED_LOADER = create_loader()


def new_session(
    *,
    profile: str | None = None,
    region: str | None = None,
    static_credentials: tuple[str, str] | None = None,
) -> boto3.Session:
    core = botocore.session.get_session()
    core.register_component("data_loader", _SHARED_LOADER)
    if static_credentials is not None:
        access_key, secret_key = static_credentials
        return boto3.Session(
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
            botocore_session=core,
        )
    return boto3.Session(profile_name=profile, region_name=region, botocore_session=core)


@contextmanager
def calling(resource: str) -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise AwsCallError(resource, error) from error


class Connection(Protocol):
    """Where the clients connect (``target.Target``)."""

    @property
    def region(self) -> str: ...

    @property
    def endpoint_url(self) -> str | None: ...

    def session(self) -> boto3.Session: ...


class AwsClients:
    """One boto3 session and its clients for a target, created on first use."""

    def __init__(self, target: Connection, *, max_pool_connections: int = 10) -> None:
        self._target = target
        self._config = Config(
            retries={"max_attempts": 8, "mode": "adaptive"},
            max_pool_connections=max_pool_connections,
            connect_timeout=5,
            read_timeout=30,
        )

    @cached_property
    def _session(self) -> Any:
        return self._target.session()

    def _client(self, service: str) -> Any:
        return self._session.client(
            service,
            region_name=self._target.region,
            endpoint_url=self._target.endpoint_url,
            config=self._config,
        )

    @cached_property
    def s3(self) -> S3Client:
        client: S3Client = self._client("s3")
        return client

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        client: DynamoDBClient = self._client("dynamodb")
        return client

    @cached_property
    def sqs(self) -> SQSClient:
        client: SQSClient = self._client("sqs")
        return client

    @cached_property
    def awslambda(self) -> Any:  # no mypy_boto3_lambda in this environment
        return self._client("lambda")
