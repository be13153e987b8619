"""Fixtures for the ingest function: moto S3 and DynamoDB, a fake SageMaker, a manual clock."""

from __future__ import annotations

import io
import json
import logging
import random
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import boto3
import pytest

from lambdas.common.backoff import Backoff
from lambdas.common.contract import STATUS_INDEX
from lambdas.common.records import InferenceRecord, inference_id_for
from lambdas.common.store import RecordStore
from lambdas.ingest import handler
from lambdas.ingest.clients import S3InputReader, S3ObjectInspector
from lambdas.ingest.config import IngestConfig
from lambdas.ingest.events import ObjectVersion, S3EventNotification, parse_notification
from lambdas.ingest.logic import BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS, Submitter
from lambdas.ingest.telemetry import InvocationTelemetry
from tests.conftest import REGION, TABLE_NAME
from tests.unit.ingest.support import (
    FakeInvoker,
    FakeLambdaContext,
    ManualClock,
    notification,
    object_record,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

INPUT_BUCKET = "input-bucket"
ENDPOINT = "demo-endpoint"
JSON_BODY = b'{"x": 1}'


def make_config(**overrides: Any) -> IngestConfig:
    values: dict[str, Any] = {
        "table_name": TABLE_NAME,
        "endpoint_name": ENDPOINT,
        "input_bucket": INPUT_BUCKET,
    }
    values.update(overrides)
    return IngestConfig.model_validate(values)


def version_of(record: dict[str, Any]) -> ObjectVersion:
    """The object version an S3 notification record names."""
    parsed = parse_notification(notification(record))
    assert isinstance(parsed, S3EventNotification)
    return ObjectVersion.from_record(parsed.records[0])


@dataclass
class World:
    """moto S3 and DynamoDB, the fake endpoint and the clock, with the function built on them."""

    s3: Any
    dynamodb: Any
    store: RecordStore
    invoker: FakeInvoker
    clock: ManualClock
    executors: list[ThreadPoolExecutor] = field(default_factory=list)

    def enable_versioning(self) -> None:
        self.s3.put_bucket_versioning(
            Bucket=INPUT_BUCKET, VersioningConfiguration={"Status": "Enabled"}
        )

    def put(self, key: str, body: bytes = JSON_BODY, **options: Any) -> dict[str, Any]:
        """Write an object; return the notification record S3 sends for it. ``as_moto``
        drops what moto's records lack; other options go to put_object."""
        as_moto = bool(options.pop("as_moto", False))
        response = self.s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=body, **options)
        etag, version_id = response["ETag"].strip('"'), response.get("VersionId")
        if isinstance(self.invoker, FakeInvoker):  # a test may put the real invoker here
            self.invoker.keys[inference_id_for(INPUT_BUCKET, key, version_id, etag)] = key
        return object_record(response, INPUT_BUCKET, key, len(body), as_moto=as_moto)

    def upload(self, key: str, body: bytes = JSON_BODY, **options: Any) -> ObjectVersion:
        """Write an object; return the version its notification names."""
        return version_of(self.put(key, body, **options))

    def submitter(self, **config: Any) -> Submitter:
        return Submitter(
            config=make_config(**config),
            store=self.store,
            inspector=S3ObjectInspector(self.s3),
            reader=S3InputReader(self.s3),
            invoker=self.invoker,
            logger=handler.logger,
            clock=self.clock.now,
            sleep=self.clock.sleep,
            backoff=Backoff(BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS, random.Random(7)),
        )

    def runtime(self, **config: Any) -> handler.Runtime:
        submitter = self.submitter(**config)
        built = make_config(**config)
        executor = ThreadPoolExecutor(max_workers=built.submit_concurrency)
        self.executors.append(executor)
        return handler.Runtime(config=built, submitter=submitter, executor=executor)

    def invoke(self, event: dict[str, Any], **config: Any) -> tuple[Any, InvocationTelemetry]:
        """One invocation through ``handler.ingest``; returns (response, telemetry)."""
        telemetry = InvocationTelemetry()
        context = cast("LambdaContext", FakeLambdaContext(self.clock))
        response = handler.ingest(event, context, self.runtime(**config), telemetry)
        return response, telemetry

    def stored(self, inference_id: str) -> InferenceRecord:
        record = self.store.get(inference_id)
        assert record is not None, f"no record for {inference_id}"
        return record

    def ids_with_status(self, status: str) -> set[str]:
        response = self.dynamodb.query(
            TableName=TABLE_NAME,
            IndexName=STATUS_INDEX,
            KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": status}},
        )
        return {item["inference_id"]["S"] for item in response["Items"]}


@pytest.fixture
def world(dynamodb: Any) -> Iterator[World]:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=INPUT_BUCKET)
    built = World(
        s3=s3,
        dynamodb=dynamodb,
        store=RecordStore(dynamodb, TABLE_NAME),
        invoker=FakeInvoker(),
        clock=ManualClock(),
    )
    yield built
    for executor in built.executors:
        executor.shutdown(wait=True)


@pytest.fixture
def logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The function's JSON log lines, formatted as Powertools emits them (keys included)."""
    stream = io.StringIO()
    sink = logging.StreamHandler(stream)
    sink.setFormatter(handler.logger.registered_formatter)
    target = logging.getLogger(handler.logger.service)
    target.addHandler(sink)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line]
    target.removeHandler(sink)
