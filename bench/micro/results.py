"""The results child: figure 3 for the results function."""

from __future__ import annotations

import copy
import json
import os
import time
from typing import Any

import boto3

from bench.measure import interleaved, profile_by_package, timed
from bench.micro.plan import (
    WAIT_SECONDS,
    Plan,
    ResultsMeasurements,
)
from bench.micro.replay import (
    RecordingClient,
    RuntimeAdmin,
    counting_ingested_bytes,
    lambda_context,
    progress,
    substituted,
)


def _notifications(plan: Plan, wanted: set[str], count: int) -> list[dict[str, Any]]:
    """SNS events for ``count`` notifications of ``wanted`` inference ids, from the success
    topic's delivery queue (the runtime published them while the ingest benchmark ran)."""
    from asyncinfer.local.lambda_runner.event_shapes import parse_sns_envelope, sns_event

    sqs = boto3.client("sqs")
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT_SECONDS
    while len(events) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"found {len(events)} of {count} notifications of submitted ids")
        before = len(events)
        received = sqs.receive_message(
            QueueUrl=plan.success_delivery_queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            VisibilityTimeout=43_200,
        ).get("Messages", [])
        for message in received:
            envelope = parse_sns_envelope(message["Body"])
            notification = json.loads(envelope["Message"])
            if notification.get("inferenceId") in wanted:
                wanted.discard(notification["inferenceId"])
                events.append(sns_event(envelope, f"{plan.success_topic_arn}:bench"))
        if len(events) > before:  # give up only when none arrives for WAIT_SECONDS
            deadline = time.monotonic() + WAIT_SECONDS
    return events[:count]


def _recorded_update(message: str) -> tuple[Any, dict[str, Any], str]:
    """The one UpdateItem the results function's logic makes for ``message``, recorded through
    a client configured as the handler's; returned with that client and the table name."""
    from aws_lambda_powertools import Metrics

    from lambdas.common.outputs import DYNAMODB_CLIENT_CONFIG, S3_CLIENT_CONFIG, S3OutputReader
    from lambdas.common.store import RecordStore
    from lambdas.results import handler as results
    from lambdas.results.config import ResultsConfig
    from lambdas.results.logic import NotificationProcessor

    config = ResultsConfig.from_environ(os.environ)
    dynamodb = boto3.client("dynamodb", config=DYNAMODB_CLIENT_CONFIG)
    recorder = RecordingClient(dynamodb)
    capture = NotificationProcessor(
        config=config,
        store=RecordStore(recorder, config.table_name),  # type: ignore[arg-type]
        outputs=S3OutputReader(lambda: boto3.client("s3", config=S3_CLIENT_CONFIG)),
        metrics=Metrics(),
        logger=results.logger,
    )
    capture.process_message(message)
    if [name for name, _ in recorder.calls] != ["update_item"]:
        raise RuntimeError(f"unexpected calls for one notification: {recorder.calls}")
    update = recorder.calls[0][1]
    return dynamodb, update, config.table_name


def _test_notification_seconds(
    plan: Plan, template_event: dict[str, Any], rounds: int
) -> list[float]:
    """The handler's time for a TestNotification: parsed, logged, no call."""
    from lambdas.results import handler as results

    test_event = copy.deepcopy(template_event)
    test_event["Records"][0]["Sns"]["Message"] = json.dumps(
        {"eventVersion": "1.0", "eventSource": "aws:sagemaker", "eventName": "TestNotification"}
    )
    return [timed(lambda: results.handler(test_event, lambda_context(plan))) for _ in range(rounds)]


def measure_results(plan: Plan) -> ResultsMeasurements:
    from lambdas.results import handler as results

    admin = RuntimeAdmin(plan.admin_url)
    admin.wait_idle()
    rounds = plan.warmup + plan.repetitions
    needed = 1 + 2 * rounds + plan.profile_repetitions
    progress(f"collecting {needed} notifications")
    events = iter(_notifications(plan, set(plan.submitted_ids), needed))
    template_event = next(events)
    template_message = template_event["Records"][0]["Sns"]["Message"]
    template_id = json.loads(template_message)["inferenceId"]

    dynamodb, update, table_name = _recorded_update(template_message)
    inline_from_notification = "responseBody" in json.loads(template_message)

    handler_events = [next(events) for _ in range(rounds)]
    bare_ids = [
        json.loads(next(events)["Records"][0]["Sns"]["Message"])["inferenceId"]
        for _ in range(rounds)
    ]
    log_bytes = [0]

    def handler_run(repetition: int) -> float:
        event = handler_events[repetition]
        context = lambda_context(plan)
        with counting_ingested_bytes(log_bytes):
            return timed(lambda: results.handler(event, context))

    def bare_run(repetition: int) -> float:
        arguments = substituted(update, {template_id: bare_ids[repetition]})
        return timed(lambda: dynamodb.update_item(**arguments))

    progress(f"results overhead: {rounds} rounds")
    samples = interleaved(rounds, {"handler": handler_run, "bare": bare_run}, lambda: None)

    fixed = _test_notification_seconds(plan, template_event, rounds)
    profile_events = iter([next(events) for _ in range(plan.profile_repetitions)])
    profile = profile_by_package(
        lambda: results.handler(next(profile_events), lambda_context(plan)),
        plan.profile_repetitions,
    )
    completed_item = dynamodb.get_item(
        TableName=table_name, Key={"inference_id": {"S": template_id}}
    )["Item"]
    skip = plan.warmup
    return ResultsMeasurements(
        handler_seconds=samples["handler"][skip:],
        bare_seconds=samples["bare"][skip:],
        fixed_seconds=fixed[skip:],
        inline_from_notification=inline_from_notification,
        log_bytes_per_invocation=log_bytes[0] / rounds,
        items={"COMPLETED": dict(completed_item)},
        profile=profile,
    )
