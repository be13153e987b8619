"""The whole pipeline in local mode: real processes on loopback, the handlers' real code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from asyncinfer.local.aws.iam import admin_session
from asyncinfer.local.lambda_runner.event_shapes import sns_event
from asyncinfer.local.provision.spec import LocalPipelineSpec
from asyncinfer.local.session import LocalOptions, LocalPipeline
from lambdas.common.records import TERMINAL_STATUSES, InferenceRecord, inference_id_for
from lambdas.common.store import RecordStore

pytestmark = pytest.mark.e2e
WAIT_SECONDS = 60.0


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    state_dir = tmp_path_factory.mktemp("local")
    with LocalPipeline(LocalOptions(state_dir=state_dir)) as running:
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
        for name in ("s3", "sqs", "dynamodb")
    }


def put(clients: dict[str, Any], spec: LocalPipelineSpec, key: str, body: bytes) -> str:
    bucket = spec.outputs["InputBucketName"]
    response = clients["s3"].put_object(Bucket=bucket, Key=key, Body=body)
    return inference_id_for(bucket, key, response.get("VersionId"), response["ETag"])


def wait_terminal(
    clients: dict[str, Any], spec: LocalPipelineSpec, ids: list[str]
) -> dict[str, InferenceRecord]:
    store = RecordStore(clients["dynamodb"], spec.outputs["ResultsTableName"])
    deadline = time.monotonic() + WAIT_SECONDS
    records: dict[str, InferenceRecord] = {}
    while time.monotonic() < deadline:
        for inference_id in ids:
            if inference_id not in records or records[inference_id].status not in TERMINAL_STATUSES:
                record = store.get(inference_id)
                if record is not None:
                    records[inference_id] = record
        if len(records) == len(ids) and all(
            record.status in TERMINAL_STATUSES for record in records.values()
        ):
            return records
        time.sleep(0.2)
    unfinished = {i: r.status for i, r in records.items() if r.status not in TERMINAL_STATUSES}
    pytest.fail(
        f"not terminal after {WAIT_SECONDS}s: {len(ids) - len(records)} missing, {unfinished}"
    )


def read_s3(clients: dict[str, Any], location: str) -> bytes:
    bucket, key = location.removeprefix("s3://").split("/", 1)
    body: bytes = clients["s3"].get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def test_state_file_points_clients_at_local_mode(pipeline: LocalPipeline) -> None:
    state = json.loads(pipeline.state_file.read_text())
    assert state["pid"] == os.getpid()
    assert state["outputs"]["InputBucketName"]
    with urllib.request.urlopen(f"{state['runtime_endpoint_url']}/_local/stats") as response:
        assert response.status == 200


# Iris rows with their known species: each record's prediction must be its own file's.
IRIS = [
    ([5.1, 3.5, 1.4, 0.2], "setosa"),
    ([6.7, 3.1, 4.4, 1.4], "versicolor"),
    ([7.7, 3.8, 6.7, 2.2], "virginica"),
]


def test_every_file_becomes_one_complete_record(
    clients: dict[str, Any], spec: LocalPipelineSpec
) -> None:
    uploads: dict[str, tuple[str, str]] = {}
    for n, (row, label) in enumerate(IRIS * 4):
        key = f"e2e/batch/flower {n} ü.json"
        uploads[put(clients, spec, key, json.dumps({"instances": [row]}).encode())] = (key, label)
    records = wait_terminal(clients, spec, list(uploads))
    assert set(records) == set(uploads)
    for inference_id, record in records.items():
        key, label = uploads[inference_id]
        assert record.status == "COMPLETED", record.failure_reason
        assert record.endpoint_name == spec.endpoint.name
        assert record.input_key == key
        assert record.input_location == f"s3://{spec.outputs['InputBucketName']}/{key}"
        assert record.input_version
        assert record.content_type == "application/json"
        assert record.submitted_at
        assert record.completed_at
        assert record.latency_ms is not None
        assert record.latency_ms >= 0
        assert record.output_location is not None
        assert record.output_location.startswith(spec.endpoint.output_path + "/")
        output = json.loads(read_s3(clients, record.output_location))
        assert record.result is not None
        assert json.loads(record.result) == output
        assert len(output["predictions"]) == 1
        assert output["predictions"][0]["label"] == label, (key, output)
        assert inference_id == record.inference_id


def test_a_rejected_input_is_failed_at_inference_with_the_reason(
    clients: dict[str, Any], spec: LocalPipelineSpec
) -> None:
    inference_id = put(clients, spec, "e2e/not-a-flower.csv", b"this is not,a flower\n1,2\n")
    record = wait_terminal(clients, spec, [inference_id])[inference_id]
    assert record.status == "FAILED"
    assert record.failure_stage == "inference"
    assert record.failure_reason
    assert record.failure_location is not None
    assert read_s3(clients, record.failure_location)


def test_a_duplicated_s3_event_changes_nothing(
    clients: dict[str, Any], spec: LocalPipelineSpec, pipeline: LocalPipeline
) -> None:
    inference_id = put(clients, spec, "e2e/duplicate.csv", b"5.0,3.6,1.4,0.2\n")
    first = wait_terminal(clients, spec, [inference_id])[inference_id]
    bucket = spec.outputs["InputBucketName"]
    version = first.input_version
    event = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": spec.region,
                "eventTime": "2026-01-01T00:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {
                        "key": "e2e/duplicate.csv",
                        "size": first.input_size,
                        "versionId": version,
                        "sequencer": "00",
                    },
                },
            }
        ]
    }
    assert pipeline.runtime is not None
    assert pipeline.runner is not None
    ingest_before = pipeline.runner.stats()[spec.ingest.queue_url]
    for _ in range(2):
        clients["sqs"].send_message(QueueUrl=spec.ingest.queue_url, MessageBody=json.dumps(event))
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        depth = clients["sqs"].get_queue_attributes(
            QueueUrl=spec.ingest.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        ingest = pipeline.runner.stats()[spec.ingest.queue_url]
        drained = depth == {
            "ApproximateNumberOfMessages": "0",
            "ApproximateNumberOfMessagesNotVisible": "0",
        }
        if drained and ingest.succeeded - ingest_before.succeeded >= 2:
            break
        if time.monotonic() >= deadline:
            pytest.fail(
                f"the duplicates were not delivered and done with in {WAIT_SECONDS}s: "
                f"queue {depth}, ingest before {ingest_before}, now {ingest}"
            )
        time.sleep(0.2)
    # Both copies reached the handler, which succeeded without invoking the endpoint again.
    assert ingest.messages_delivered - ingest_before.messages_delivered >= 2
    assert ingest.failed == ingest_before.failed
    assert ingest.worker_restarts == ingest_before.worker_restarts
    assert ingest.moved_to_dlq == ingest_before.moved_to_dlq
    stats = pipeline.runtime.stats()
    assert stats["accepted_per_inference_id"][inference_id] == 1
    after = RecordStore(clients["dynamodb"], spec.outputs["ResultsTableName"]).get(inference_id)
    assert after == first


def run_cli(
    pipeline: LocalPipeline, *arguments: str, cwd: Path
) -> subprocess.CompletedProcess[str]:
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("AWS_")
    } | {"ASYNCINFER_LOCAL_DIR": str(pipeline.options.state_dir)}
    return subprocess.run(
        [sys.executable, "-m", "asyncinfer", *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS + 30,
        check=False,
    )


def test_the_cli_submits_follows_and_reads_results_in_local_mode(
    pipeline: LocalPipeline, tmp_path: Path
) -> None:
    inputs = tmp_path / "cli-inputs"
    inputs.mkdir()
    (inputs / "good flower.csv").write_text("5.1,3.5,1.4,0.2\n")
    (inputs / "bad.csv").write_text("not,a,flower\n")

    submitted = run_cli(
        pipeline, "submit", "cli-inputs", "--prefix", "cli/", "--wait", cwd=tmp_path
    )
    assert submitted.returncode == 1, submitted.stderr  # one inference failed, as it should
    assert "local mode" in submitted.stderr.splitlines()[0]
    lines = [line.split(maxsplit=1) for line in submitted.stdout.splitlines()]
    # "<id>  <input location>  (output expected at <location>)": labelled, since the record's
    # output_location (SageMaker's answer) is authoritative.
    described = {
        inference_id: rest.removesuffix(")").split("  (output expected at ")
        for inference_id, rest in lines
    }
    ids = {
        location.rsplit("/", 1)[1]: inference_id
        for inference_id, (location, _) in described.items()
    }
    assert set(ids) == {"bad.csv", "good flower.csv"}

    good_id = next(value for key, value in ids.items() if key != "bad.csv")
    status = run_cli(pipeline, "status", good_id, "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["status"] == "COMPLETED"

    failed = run_cli(pipeline, "results", "--status", "FAILED", "--json", cwd=tmp_path)
    assert failed.returncode == 0, failed.stderr
    assert ids["bad.csv"] in {record["inference_id"] for record in json.loads(failed.stdout)}

    fetched = run_cli(pipeline, "fetch", good_id, cwd=tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads(fetched.stdout)["predictions"][0]["label"] == "setosa"
    # The printed expectation is where the output landed: under cli/'s folder, by its id.
    expected = described[good_id][1]
    assert expected.endswith(f"/cli/{good_id[:28]}.out"), expected
    assert json.loads(status.stdout)["output_location"] == expected


def test_redriven_notification_dead_letters_end_as_records(
    pipeline: LocalPipeline, clients: dict[str, Any], spec: LocalPipelineSpec, tmp_path: Path
) -> None:
    """A notification in the success subscription DLQ and one in the results function's
    failure queue, redriven by ``asyncinfer redrive`` as the local administrator (under IAM):
    the CLI invokes the results function asynchronously (``lambda:InvokeFunction``), as on
    AWS, and each ends as a record again. No other subscriber of the topic sees it twice."""
    assert pipeline.options.enforce_iam
    sqs, sns = (
        clients["sqs"],
        boto3.client(
            "sns",
            region_name=spec.region,
            endpoint_url=spec.aws_endpoint_url,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        ),
    )
    # another subscriber of the success topic, to catch a fan-out and a real envelope
    observer = sqs.create_queue(QueueName="e2e-redrive-observer")["QueueUrl"]
    observer_arn = sqs.get_queue_attributes(QueueUrl=observer, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=spec.outputs["SuccessTopicArn"], Protocol="sqs", Endpoint=observer_arn)
    ids = [
        put(clients, spec, f"e2e/redrive/{n}.json", json.dumps({"instances": [row]}).encode())
        for n, (row, _) in enumerate(IRIS[:2])
    ]
    assert {r.status for r in wait_terminal(clients, spec, ids).values()} == {"COMPLETED"}
    envelopes: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + WAIT_SECONDS
    while len(envelopes) < len(ids) and time.monotonic() < deadline:
        for message in sqs.receive_message(
            QueueUrl=observer, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", []):
            envelope = json.loads(message["Body"])
            envelopes[json.loads(envelope["Message"])["inferenceId"]] = envelope
            sqs.delete_message(QueueUrl=observer, ReceiptHandle=message["ReceiptHandle"])
    assert set(ids) <= set(envelopes)
    table = spec.outputs["ResultsTableName"]
    for inference_id in ids:  # as if the notifications had never been delivered
        clients["dynamodb"].delete_item(TableName=table, Key={"inference_id": {"S": inference_id}})
    dead_letter, failure = ids
    sqs.send_message(
        QueueUrl=spec.outputs["SuccessDeadLetterQueueUrl"],
        MessageBody=json.dumps(envelopes[dead_letter]),
    )
    record = {
        "version": "1.0",
        "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": sns_event(envelopes[failure], "arn:aws:sns:local:subscription"),
        "responsePayload": {"errorType": "Throttled", "errorMessage": "table throttled"},
    }
    sqs.send_message(
        QueueUrl=spec.outputs["ResultsFailureQueueUrl"], MessageBody=json.dumps(record)
    )

    redriven = run_cli(
        pipeline, "redrive", "--queue", "success", "--queue", "results", "--json", cwd=tmp_path
    )

    assert redriven.returncode == 0, redriven.stderr
    reports = {report["source"]: report for report in json.loads(redriven.stdout)}
    assert reports["success DLQ"]["moved"] == 1
    assert reports["results failures"]["moved"] == 1
    assert reports["success DLQ"]["destination"] == "results function"
    assert {r.status for r in wait_terminal(clients, spec, ids).values()} == {"COMPLETED"}
    assert sqs.receive_message(QueueUrl=observer, WaitTimeSeconds=1).get("Messages", []) == []
    # and the topic stays the endpoint's alone: the operator's Publish is still denied
    with pytest.raises(ClientError) as denied:
        sns.publish(TopicArn=spec.outputs["SuccessTopicArn"], Message=envelopes[failure]["Message"])
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert "topic policy" in denied.value.response["Error"]["Message"]
