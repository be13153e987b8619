"""The deployed entry point: environment, clients, metrics, and an error when records could not
be checked (so the function's Errors alarm sees it)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from lambdas.common.contract import STATUS_INDEX
from lambdas.common.records import FailureStage, Status
from lambdas.reconciler import handler
from tests.conftest import TABLE_NAME
from tests.unit.reconciler.conftest import ENDPOINT, OUTPUT_BUCKET, SUBMITTED_OVERDUE, Rig
from tests.unit.results.conftest import emitted_metrics, metric_values


@dataclass(frozen=True)
class FakeContext:
    remaining_ms: int = 60_000
    function_name: str = "reconciler"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:reconciler"
    aws_request_id: str = "0f2c8e41-3d4e-4a44-9d6f-2b1f1d0e0c11"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


SCHEDULED_EVENT = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-11-21T12:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/reconcile"],
    "detail": {},
}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, aws_credentials: None) -> Iterator[None]:
    for name, value in {
        "TABLE_NAME": TABLE_NAME,
        "ENDPOINT_NAME": ENDPOINT,
        "STATUS_INDEX": STATUS_INDEX,
        "OUTPUT_BUCKET": OUTPUT_BUCKET,
        "POWERTOOLS_SERVICE_NAME": "reconciler",
    }.items():
        monkeypatch.setenv(name, value)
    handler.reconciler.cache_clear()
    yield
    handler.reconciler.cache_clear()


def test_a_scheduled_run_settles_and_counts(
    rig: Rig, environment: None, capsys: pytest.CaptureFixture[str], metrics: Metrics
) -> None:
    expired = rig.seed("a.json", Status.SUBMITTED, SUBMITTED_OVERDUE)
    completed = rig.seed("b.json", Status.SUBMITTED, SUBMITTED_OVERDUE)
    assert completed.output_location
    rig.put(completed.output_location, b'{"ok": true}')

    summary: Any = handler.handler(SCHEDULED_EVENT, FakeContext())

    assert summary["settled"] == {"expired": 1, "completed": 1}
    assert rig.get(expired.inference_id).failure_stage == FailureStage.EXPIRED
    assert rig.get(completed.inference_id).status == Status.COMPLETED
    emitted = emitted_metrics(capsys.readouterr().out)
    assert metric_values(emitted, "InferencesSettledByReconciler") == [2]
    assert metric_values(emitted, "InferencesExpired") == [1]
    assert metric_values(emitted, "InferencesCompleted") == [1]
    settled = next(m for m in emitted if m.name == "InferencesSettledByReconciler")
    assert settled.dimensions["EndpointName"] == ENDPOINT


def test_a_run_with_unreadable_locations_fails_after_settling_the_rest(
    rig: Rig, environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = rig.seed("c.json", Status.SUBMITTED, SUBMITTED_OVERDUE)
    rig.s3.delete_bucket(Bucket=OUTPUT_BUCKET)  # HeadObject now answers NoSuchBucket

    with pytest.raises(handler.ReconcileErrorsError, match="1 records not checked"):
        handler.handler(SCHEDULED_EVENT, FakeContext())
    assert rig.get(record.inference_id).status == Status.SUBMITTED


def test_a_run_stops_starting_pages_when_time_runs_out(rig: Rig, environment: None) -> None:
    record = rig.seed("d.json", Status.SUBMITTED, SUBMITTED_OVERDUE)

    summary: Any = handler.handler(SCHEDULED_EVENT, FakeContext(remaining_ms=1_000))

    assert summary == {"read": 0, "pages": 0, "settled": {}, "errors": 0, "complete": False}
    assert rig.get(record.inference_id).status == Status.SUBMITTED


def test_an_idle_run_still_reports_zero_with_the_alarm_dimension(
    rig: Rig, environment: None, capsys: pytest.CaptureFixture[str]
) -> None:
    summary: Any = handler.handler(SCHEDULED_EVENT, FakeContext())

    assert summary["read"] == 0
    emitted = emitted_metrics(capsys.readouterr().out)
    for name in ("InferencesSettledByReconciler", "InferencesExpired"):
        (metric,) = [m for m in emitted if m.name == name]
        assert metric.values == [0]
        assert metric.dimensions["EndpointName"] == ENDPOINT
