"""Scheduled functions in local mode: the rule read from the template, the event EventBridge
sends, and the source that fires it (with Lambda's async retries)."""

from __future__ import annotations

import threading
import time
from typing import Any, cast

import pytest

from asyncinfer.local.lambda_runner.pool import Invocation, Outcome, WorkerPool
from asyncinfer.local.lambda_runner.schedule import ScheduleSource, scheduled_event
from asyncinfer.local.provision.resources import RECONCILER_HANDLER, Provisioner
from asyncinfer.local.provision.spec import FunctionSpec, ScheduleSourceSpec
from asyncinfer.local.provision.template import Template, TemplateError, rate_seconds
from lambdas.common.clock import parse_timestamp

AWS = "http://127.0.0.1:5000"
BODY: dict[str, Any] = {
    "Resources": {
        "ReconcilerFunction1": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Handler": RECONCILER_HANDLER,
                "Timeout": 60,
                "MemorySize": 256,
                "Environment": {"Variables": {"TABLE_NAME": "t", "RETENTION_DAYS": "90"}},
            },
        },
        "ReconcilerInvokeConfig2": {
            "Type": "AWS::Lambda::EventInvokeConfig",
            "Properties": {
                "FunctionName": {"Ref": "ReconcilerFunction1"},
                "MaximumRetryAttempts": 0,
                "Qualifier": "$LATEST",
            },
        },
        "Schedule3": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "ScheduleExpression": "rate(15 minutes)",
                "State": "ENABLED",
                "Targets": [
                    {
                        "Arn": {"Fn::GetAtt": ["ReconcilerFunction1", "Arn"]},
                        "Id": "Target0",
                        "RetryPolicy": {"MaximumRetryAttempts": 0},
                    }
                ],
            },
        },
        "Helper4": {
            "Type": "AWS::Lambda::Function",
            "Properties": {"Handler": "index.handler"},
        },
    }
}


def test_the_reconciler_rule_becomes_a_schedule_with_its_function() -> None:
    template = Template(BODY, stack_name="AsyncInference", region="us-east-1", aws_endpoint_url=AWS)
    provisioner = Provisioner(template, aws_endpoint_url=AWS, region="us-east-1")

    (schedule,) = provisioner._schedule_sources(provisioner._functions())

    assert schedule.period_seconds == 900
    assert schedule.schedule_expression == "rate(15 minutes)"
    assert schedule.max_attempts == 1  # MaximumRetryAttempts 0: the next run is the retry
    assert schedule.rule_arn == (
        "arn:aws:events:us-east-1:123456789012:rule/AsyncInference-Schedule3"
    )
    assert schedule.function.name == "reconciler"
    assert schedule.function.handler == RECONCILER_HANDLER
    assert schedule.function.environment == {"TABLE_NAME": "t", "RETENTION_DAYS": "90"}
    assert (schedule.function.timeout_seconds, schedule.function.memory_mb) == (60, 256)


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(15 minutes)", 900),
        ("rate(2 hours)", 7200),
        ("rate(1 day)", 86400),
    ],
)
def test_rate_expressions(expression: str, seconds: int) -> None:
    assert rate_seconds(expression) == seconds


@pytest.mark.parametrize("expression", ["cron(0 20 * * ? *)", "rate(0 minutes)", "rate(5 weeks)"])
def test_other_schedules_are_a_clear_error(expression: str) -> None:
    with pytest.raises(TemplateError):
        rate_seconds(expression)


def test_the_event_is_the_scheduled_event_eventbridge_sends() -> None:
    moment = parse_timestamp("2026-11-30T10:00:00.123Z")
    event = scheduled_event("arn:aws:events:us-east-1:123456789012:rule/r", "us-east-1", moment)

    assert set(event) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert event["version"] == "0"
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["account"] == "123456789012"
    assert event["time"] == "2026-11-30T10:00:00Z"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/r"]
    assert event["detail"] == {}


class FakePool:
    def __init__(self, outcomes: list[Outcome]) -> None:
        self.outcomes = outcomes
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: dict[str, Any]) -> Invocation:
        self.events.append(event)
        outcome = self.outcomes.pop(0) if self.outcomes else Outcome.SUCCESS
        return Invocation(request_id=str(len(self.events)), outcome=outcome)


def spec(max_attempts: int) -> ScheduleSourceSpec:
    function = FunctionSpec("reconciler", RECONCILER_HANDLER, {}, 60, 256)
    return ScheduleSourceSpec("arn:rule", "rate(1 minute)", 0.05, max_attempts, function)


def run_for(source: ScheduleSource, stopping: threading.Event, seconds: float) -> None:
    source.start()
    time.sleep(seconds)
    stopping.set()
    source.join(time.monotonic() + 2)


def test_the_source_fires_every_period_and_retries_a_failed_run_as_lambda_does() -> None:
    pool = FakePool([Outcome.FUNCTION_ERROR, Outcome.FUNCTION_ERROR, Outcome.FUNCTION_ERROR])
    stopping = threading.Event()
    source = ScheduleSource(
        spec(max_attempts=2),
        pool=cast(WorkerPool, pool),
        stopping=stopping,
        region="us-east-1",
        retry_backoff_seconds=0.01,
    )

    run_for(source, stopping, 0.5)

    stats = source.counters.snapshot()
    assert stats.dropped == 1  # the first run failed both attempts
    assert stats.failed == 3  # then the second run failed once and succeeded on its retry
    assert stats.retried >= 2
    assert stats.succeeded >= 2
    # a retry sends the same event again: every invocation beyond a run's first is a retry
    # (a run the stop cuts before its first attempt never reaches the pool)
    run_ids = {event["id"] for event in pool.events}
    assert len(pool.events) == len(run_ids) + stats.retried
    assert source.runs - stats.abandoned <= len(run_ids) <= source.runs
    assert all(event["resources"] == ["arn:rule"] for event in pool.events)
