"""The event runner tests' fixtures: one moto server for the package (as when the tests were one
module; queue and topic names are random, so they share no state) and a spy per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.runner.support import Spy, session
from tests.moto_server import moto_endpoint

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient


@pytest.fixture(scope="package")
def endpoint() -> Iterator[str]:
    with moto_endpoint() as url:
        yield url


@pytest.fixture(scope="package")
def sqs(endpoint: str) -> SQSClient:
    client: SQSClient = session().client("sqs", endpoint_url=endpoint)
    return client


@pytest.fixture(scope="package")
def sns(endpoint: str) -> SNSClient:
    client: SNSClient = session().client("sns", endpoint_url=endpoint)
    return client


@pytest.fixture
def spy(tmp_path: Path) -> Spy:
    return Spy(tmp_path / "spy")
