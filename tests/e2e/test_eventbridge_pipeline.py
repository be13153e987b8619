"""Local mode fitted into an existing account: an imported input bucket whose objects arrive
through EventBridge (duplicated deliveries included), and one outgoing event per terminal
record, which a consumer queue of the test receives. (The installed wheel's CLI against local
mode: tests/soak/test_installed_wheel.py, in ``make soak``.)"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from asyncinfer.local.aws.iam import admin_session
from asyncinfer.local.provision.spec import LocalPipelineSpec
from asyncinfer.local.session import LocalOptions, LocalPipeline
from lambdas.common.contract import (
    DETAIL_TYPE_COMPLETED,
    DETAIL_TYPE_FAILED,
    DETAIL_TYPE_JOB_COMPLETED,
    EVENTS_SOURCE,
)
from lambdas.common.records import TERMINAL_STATUSES, inference_id_for

pytestmark = pytest.mark.e2e
WAIT_SECONDS = 60.0
TEAM_BUCKET = "team-existing-bucket"
IRIS_ROW = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    options = LocalOptions(
        state_dir=tmp_path_factory.mktemp("local-eventbridge"),
        context={"input_bucket_name": TEAM_BUCKET},  # event_source defaults to eventbridge
        # every ingest message delivered twice: EventBridge and SQS are at-least-once
        runner_options={"duplicate_delivery_rate": 1.0},
    )
    with LocalPipeline(options) as running:
        yield running


@pytest.fixture(scope="module")
def spec(pipeline: LocalPipeline) -> LocalPipelineSpec:
    assert pipeline.spec is not None
    return pipeline.spec


@pytest.fixture(scope="module")
def clients(spec: LocalPipelineSpec) -> dict[str, Any]:
    session = admin_session(spec.region)
    return {
        name: session.client(name, endpoint_url=spec.aws_endpoint_url)  # type: ignore[call-overload]
        for name in ("s3", "sqs", "dynamodb", "events")
    }


@pytest.fixture(scope="module")
def consumer_queue(clients: dict[str, Any]) -> str:
    """The rest of the team's system: a queue subscribed to the pipeline's events."""
    url: str = clients["sqs"].create_queue(QueueName="team-consumer")["QueueUrl"]
    arn = clients["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    clients["events"].put_rule(
        Name="team-inference-results", EventPattern=json.dumps({"source": [EVENTS_SOURCE]})
    )
    clients["events"].put_targets(
        Rule="team-inference-results", Targets=[{"Id": "consumer", "Arn": arn}]
    )
    return url


def put(clients: dict[str, Any], key: str, body: bytes) -> str:
    response = clients["s3"].put_object(Bucket=TEAM_BUCKET, Key=key, Body=body)
    return inference_id_for(TEAM_BUCKET, key, response.get("VersionId"), response["ETag"])


def all_records(clients: dict[str, Any], spec: LocalPipelineSpec) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    paginator = clients["dynamodb"].get_paginator("scan")
    for page in paginator.paginate(TableName=spec.outputs["ResultsTableName"]):
        items.extend(page["Items"])
    return items


def wait_terminal(clients: dict[str, Any], spec: LocalPipelineSpec, ids: set[str]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        terminal = {
            item["inference_id"]["S"]
            for item in all_records(clients, spec)
            if item["status"]["S"] in TERMINAL_STATUSES
        }
        if ids <= terminal:
            return
        time.sleep(0.2)
    pytest.fail(f"not terminal after {WAIT_SECONDS}s: {sorted(ids - terminal)}")


def receive_events(clients: dict[str, Any], url: str, count: int) -> list[dict[str, Any]]:
    """Everything the consumer queue receives until ``count`` events and a quiet second."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT_SECONDS
    quiet_until = None
    while time.monotonic() < deadline:
        messages = (
            clients["sqs"]
            .receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            .get("Messages", [])
        )
        for message in messages:
            events.append(json.loads(message["Body"]))
            clients["sqs"].delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if len(events) >= count and not messages:
            quiet_until = quiet_until or time.monotonic() + 1.0
            if time.monotonic() >= quiet_until:
                break
    return events


def test_the_imported_bucket_delivers_through_eventbridge_only(
    clients: dict[str, Any], spec: LocalPipelineSpec
) -> None:
    assert spec.outputs["InputBucketName"] == TEAM_BUCKET
    # (moto 5.2.5's GetBucketNotificationConfiguration leaves EventBridgeConfiguration out of
    # its answer; that it is on shows in the next test: every object arrives through it)
    configuration = clients["s3"].get_bucket_notification_configuration(Bucket=TEAM_BUCKET)
    assert "QueueConfigurations" not in configuration  # no S3 notification of ours


def test_files_become_records_exactly_once_and_each_yields_one_event(
    clients: dict[str, Any], spec: LocalPipelineSpec, consumer_queue: str
) -> None:
    good = {
        put(clients, f"eb/flower {n} ü.json", json.dumps({"instances": [IRIS_ROW]}).encode())
        for n in range(4)
    }
    bad = {put(clients, "eb/not-a-flower.csv", b"this is not,a flower\n1,2\n")}
    put(clients, "eb/folder/", b"")  # a folder marker: ignored, no record

    wait_terminal(clients, spec, good | bad)
    items = all_records(clients, spec)
    assert sorted(item["inference_id"]["S"] for item in items) == sorted(good | bad)
    statuses = {item["inference_id"]["S"]: item["status"]["S"] for item in items}
    assert {statuses[i] for i in good} == {"COMPLETED"}
    assert {statuses[i] for i in bad} == {"FAILED"}

    events = receive_events(clients, consumer_queue, len(good | bad))
    by_id = {event["detail"]["inference_id"]: event for event in events}
    assert len(events) == len(by_id) == len(good | bad)  # one event per terminal record
    for inference_id, event in by_id.items():
        assert event["source"] == EVENTS_SOURCE
        expected = DETAIL_TYPE_COMPLETED if inference_id in good else DETAIL_TYPE_FAILED
        assert event["detail-type"] == expected
        assert event["detail"]["status"] == statuses[inference_id]
        record = event["detail"]["record"]
        assert record["input_location"]["S"].startswith(f"s3://{TEAM_BUCKET}/eb/")
        assert "result" not in record  # the inline result stays in the table


def test_a_job_completes_once_though_every_delivery_comes_twice(
    clients: dict[str, Any], spec: LocalPipelineSpec, consumer_queue: str
) -> None:
    receive_events(clients, consumer_queue, 0)  # what earlier tests left
    ids = [
        put(clients, f"job-eb/{n}.json", json.dumps({"instances": [IRIS_ROW]}).encode())
        for n in range(3)
    ]
    manifest = [{"prefix": f"s3://{TEAM_BUCKET}/job-eb/"}, "0.json", "1.json", "2.json"]
    clients["s3"].put_object(
        Bucket=TEAM_BUCKET, Key="jobs/twice.manifest.json", Body=json.dumps(manifest).encode()
    )
    wait_terminal(clients, spec, set(ids))
    events = receive_events(clients, consumer_queue, len(ids) + 1)
    jobs = [event for event in events if event["detail-type"] == DETAIL_TYPE_JOB_COMPLETED]
    assert len(jobs) == 1  # the manifest's event and every outcome's came twice
    detail = jobs[0]["detail"]
    assert (detail["job_name"], detail["status"], detail["total"]) == ("twice", "COMPLETED", "3")
    bucket, key = detail["results_location"].removeprefix("s3://").split("/", 1)
    lines = clients["s3"].get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()
    assert [json.loads(line)["inference_id"] for line in lines] == ids
