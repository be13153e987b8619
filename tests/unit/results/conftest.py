"""Fixtures of the results function's tests: moto DynamoDB and S3, the environment, metrics."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools import Metrics

from lambdas.common.store import RecordStore
from lambdas.results import handler as results_handler
from tests.conftest import REGION, TABLE_NAME
from tests.unit.results.events import ENDPOINT_NAME, OUTPUT_BUCKET

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

NAMESPACE = "AsyncInference"


@dataclass(frozen=True)
class FakeLambdaContext:
    function_name: str = "results"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:results"
    aws_request_id: str = "52fdfc07-2182-454f-963f-5f0f9a621d72"


@dataclass(frozen=True)
class EmittedMetric:
    name: str
    unit: str
    values: list[float]
    dimensions: dict[str, str] = field(default_factory=dict)


def emitted_metrics(stdout: str) -> list[EmittedMetric]:
    """Every metric of the CloudWatch EMF blobs printed to stdout (log lines are skipped)."""
    metrics: list[EmittedMetric] = []
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        blob = json.loads(line)
        if "_aws" not in blob:
            continue
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            dimension_names = [name for names in directive["Dimensions"] for name in names]
            dimensions = {name: blob[name] for name in dimension_names}
            for definition in directive["Metrics"]:
                value = blob[definition["Name"]]
                values = value if isinstance(value, list) else [value]
                metrics.append(
                    EmittedMetric(definition["Name"], definition["Unit"], values, dimensions)
                )
    return metrics


def metric_values(metrics: list[EmittedMetric], name: str) -> list[float]:
    return [value for metric in metrics if metric.name == name for value in metric.values]


@pytest.fixture
def results_env(monkeypatch: pytest.MonkeyPatch, aws_credentials: None) -> dict[str, str]:
    environment = {
        "TABLE_NAME": TABLE_NAME,
        "ENDPOINT_NAME": ENDPOINT_NAME,
        "RETENTION_DAYS": "90",
        "INLINE_RESULT_MAX_BYTES": "16384",
        "POWERTOOLS_SERVICE_NAME": "results",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return environment


@pytest.fixture
def s3(moto_aws: None) -> S3Client:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=OUTPUT_BUCKET)
    return client


@pytest.fixture
def store(dynamodb: Any) -> RecordStore:
    return RecordStore(dynamodb, TABLE_NAME)


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    """Powertools metrics share their state across instances: start and end empty."""
    instance = Metrics(namespace=NAMESPACE, service="results")
    instance.clear_metrics()
    instance.clear_default_dimensions()
    yield instance
    instance.clear_metrics()
    instance.clear_default_dimensions()


Invoke = Callable[[Any], None]


@pytest.fixture
def invoke(
    results_env: dict[str, str], dynamodb: Any, s3: S3Client, metrics: Metrics
) -> Iterator[Invoke]:
    """Calls the deployed handler as Lambda does; each test starts in a fresh container."""
    results_handler.processor.cache_clear()

    def call(event: Any) -> None:
        results_handler.handler(event, FakeLambdaContext())

    yield call
    results_handler.processor.cache_clear()
