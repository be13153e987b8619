"""Fixtures of the reconciler's tests: moto DynamoDB and S3, records seeded through the store's
own conditional writes, and a reconciler wired to them with a fixed clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger, Metrics

from lambdas.common.clock import format_timestamp
from lambdas.common.contract import RECONCILER_STATE_KEY, STATUS_INDEX, STATUS_SHARD_INDEX
from lambdas.common.outputs import S3OutputReader
from lambdas.common.records import InferenceRecord, Status, inference_id_for
from lambdas.common.store import RecordStore
from lambdas.reconciler.clients import S3ObjectProbe, StateTable, StatusIndex
from lambdas.reconciler.config import ReconcilerConfig
from lambdas.reconciler.logic import Reconciler
from lambdas.reconciler.review import Review
from tests.conftest import REGION, TABLE_NAME

NAMESPACE = "AsyncInference"
ENDPOINT = "demo-endpoint"
INPUT_BUCKET = "input-bucket"
OUTPUT_BUCKET = "output-bucket"
STATE_TABLE = "reconciler-state"
NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)
# SUBMITTED deadline with the defaults: 21600 + 900 s + 30 min margin = 6 h 45 min
SUBMITTED_OVERDUE = NOW - timedelta(hours=7)
SUBMITTED_NOT_DUE = NOW - timedelta(hours=6)
# PENDING deadline: 4 + 14 days + 1 day margin
PENDING_OVERDUE = NOW - timedelta(days=20)
PENDING_NOT_DUE = NOW - timedelta(days=18)


def config(**overrides: Any) -> ReconcilerConfig:
    values: dict[str, Any] = {
        "TABLE_NAME": TABLE_NAME,
        "ENDPOINT_NAME": ENDPOINT,
        "STATUS_INDEX": STATUS_INDEX,
        "OUTPUT_BUCKET": OUTPUT_BUCKET,
    }
    values.update(overrides)
    return ReconcilerConfig.model_validate(values)


@dataclass
class Rig:
    s3: Any
    dynamodb: Any
    store: RecordStore
    metrics: Metrics
    status_index: str = STATUS_INDEX

    def reconciler(self, now: datetime = NOW, **overrides: Any) -> Reconciler:
        settings = config(**({"STATUS_INDEX": self.status_index} | overrides))
        review = None
        if self.status_index == STATUS_SHARD_INDEX:  # as the handler wires layout 2
            review = Review(
                index=StatusIndex(self.dynamodb, TABLE_NAME, self.status_index),
                state=StateTable(self.dynamodb, STATE_TABLE),
                store=self.store,
                rules=settings.rules,
                logger=Logger(service="reconciler"),
            )
        return Reconciler(
            config=settings,
            index=StatusIndex(self.dynamodb, TABLE_NAME, self.status_index),
            probe=S3ObjectProbe(self.s3),
            store=self.store,
            outputs=S3OutputReader(lambda: self.s3),
            metrics=self.metrics,
            logger=Logger(service="reconciler"),
            clock=lambda: now,
            review=review,
        )

    def seed(
        self,
        key: str,
        status: Status,
        at: datetime,
        *,
        output_bucket: str = OUTPUT_BUCKET,
    ) -> InferenceRecord:
        """A record of ``input-bucket/key`` (version v1) claimed, and submitted, at ``at``."""
        inference_id = inference_id_for(INPUT_BUCKET, key, "v1", None)
        stamp = format_timestamp(at)
        record = InferenceRecord(
            inference_id=inference_id,
            status=Status.PENDING,
            input_location=f"s3://{INPUT_BUCKET}/{key}",
            input_bucket=INPUT_BUCKET,
            input_key=key,
            input_version="v1",
            input_size=8,
            content_type="application/json",
            accept="application/json",
            custom_attributes="trace_id=1-abc",
            endpoint_name=ENDPOINT,
            created_at=stamp,
            updated_at=stamp,
        )
        epoch = int(at.timestamp())
        token = f"token-{inference_id}"
        assert self.store.claim(record, token=token, lease_until=epoch + 70, now=epoch).owned
        if status == Status.PENDING:
            return record
        name = inference_id[:12]
        submitted = record.model_copy(
            update={
                "status": Status.SUBMITTED,
                "submitted_at": stamp,
                "output_location": f"s3://{output_bucket}/outputs/{name}.out",
                "failure_location": f"s3://{output_bucket}/failures/{name}-error.out",
            }
        )
        assert self.store.mark_submitted(submitted, token=token)
        return submitted

    def put(self, location: str, body: bytes, content_type: str = "application/json") -> None:
        bucket, key = location.removeprefix("s3://").split("/", 1)
        self.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    def last_modified(self, location: str) -> datetime:
        bucket, key = location.removeprefix("s3://").split("/", 1)
        moment: datetime = self.s3.head_object(Bucket=bucket, Key=key)["LastModified"]
        return moment

    def get(self, inference_id: str) -> InferenceRecord:
        record = self.store.get(inference_id)
        assert record is not None
        return record


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    """Powertools metrics share their state across instances: start and end empty."""
    instance = Metrics(namespace=NAMESPACE, service="reconciler")
    instance.clear_metrics()
    instance.clear_default_dimensions()
    yield instance
    instance.clear_metrics()
    instance.clear_default_dimensions()


@pytest.fixture(params=[STATUS_INDEX, STATUS_SHARD_INDEX], ids=["layout1", "layout2"])
def rig(dynamodb: Any, metrics: Metrics, request: pytest.FixtureRequest) -> Rig:
    """Every reconciler test runs on both layouts' status index: the same records found."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=OUTPUT_BUCKET)
    store = RecordStore(dynamodb, TABLE_NAME)
    dynamodb.create_table(
        TableName=STATE_TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": RECONCILER_STATE_KEY, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": RECONCILER_STATE_KEY, "KeyType": "HASH"}],
    )
    return Rig(s3=s3, dynamodb=dynamodb, store=store, metrics=metrics, status_index=request.param)
