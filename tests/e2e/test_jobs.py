"""Jobs in local mode: a manifest in, one results file and one Job Completed event out."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from asyncinfer.local.aws.iam import admin_session
from asyncinfer.local.provision.spec import LocalPipelineSpec
from asyncinfer.local.session import LocalOptions, LocalPipeline
from lambdas.common.contract import DETAIL_TYPE_JOB_COMPLETED, EVENTS_SOURCE
from lambdas.common.records import TERMINAL_STATUSES, inference_id_for
from lambdas.common.store import RecordStore

pytestmark = pytest.mark.e2e
WAIT_SECONDS = 90.0
IRIS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.1, 4.4, 1.4], [7.7, 3.8, 6.7, 2.2]]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    with LocalPipeline(LocalOptions(state_dir=tmp_path_factory.mktemp("jobs"))) as running:
        yield running


@pytest.fixture(scope="module")
def spec(pipeline: LocalPipeline) -> LocalPipelineSpec:
    assert pipeline.spec is not None
    return pipeline.spec


@pytest.fixture(scope="module")
def clients(spec: LocalPipelineSpec) -> dict[str, Any]:
    session = admin_session(spec.region)
    return {
        name: session.client(name, endpoint_url=spec.aws_endpoint_url)
        for name in ("s3", "sqs", "dynamodb", "events")
    }


@pytest.fixture(scope="module")
def job_events(clients: dict[str, Any]) -> str:
    """A queue that receives every Job Completed event of the default bus."""
    url = clients["sqs"].create_queue(QueueName="job-events")["QueueUrl"]
    arn = clients["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    clients["events"].put_rule(
        Name="job-events",
        EventPattern=json.dumps(
            {"source": [EVENTS_SOURCE], "detail-type": [DETAIL_TYPE_JOB_COMPLETED]}
        ),
    )
    clients["events"].put_targets(Rule="job-events", Targets=[{"Id": "q", "Arn": arn}])
    return str(url)


def put(clients: dict[str, Any], spec: LocalPipelineSpec, key: str, body: bytes) -> str:
    bucket = spec.outputs["InputBucketName"]
    response = clients["s3"].put_object(Bucket=bucket, Key=key, Body=body)
    return inference_id_for(bucket, key, response.get("VersionId"), response["ETag"])


def wait_for(condition: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"{what}: not within {WAIT_SECONDS}s")


def job_header(clients: dict[str, Any], spec: LocalPipelineSpec, name: str) -> dict[str, Any]:
    item = (
        clients["dynamodb"]
        .get_item(
            TableName=spec.outputs["JobsTableName"],
            Key={"pk": {"S": f"JOB#{name}"}, "sk": {"S": "JOB"}},
            ConsistentRead=True,
        )
        .get("Item", {})
    )
    return {k: next(iter(v.values())) for k, v in item.items()}


def events_received(clients: dict[str, Any], queue_url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        messages = (
            clients["sqs"]
            .receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            .get("Messages", [])
        )
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            clients["sqs"].delete_message(
                QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"]
            )


def accepted_invocations(spec: LocalPipelineSpec) -> int:
    with urllib.request.urlopen(f"{spec.runtime_endpoint_url}/_local/stats") as response:
        return int(json.loads(response.read())["accepted"])


def test_a_mixed_manifest_completes_once_with_one_line_per_entry(
    clients: dict[str, Any], spec: LocalPipelineSpec, job_events: str
) -> None:
    store = RecordStore(clients["dynamodb"], spec.outputs["ResultsTableName"])
    known = put(clients, spec, "batch/known.json", json.dumps({"instances": [IRIS[0]]}).encode())
    wait_for(
        lambda: (r := store.get(known)) is not None and r.status in TERMINAL_STATUSES,
        "the known input's record",
    )
    known_before = store.get(known)
    fresh = [
        put(clients, spec, f"batch/{n}.json", json.dumps({"instances": [row]}).encode())
        for n, row in enumerate(IRIS)
    ]
    rejected = put(clients, spec, "batch/bad.csv", b"this is not,a flower\n1,2\n")
    keys = ["0.json", "known.json", "missing.json", "bad.csv", "1.json", "2.json"]
    manifest = [{"prefix": f"s3://{spec.outputs['InputBucketName']}/batch/"}, *keys]
    clients["s3"].put_object(
        Bucket=spec.outputs["InputBucketName"],
        Key="jobs/mixed.manifest.json",
        Body=json.dumps(manifest).encode(),
    )
    header = wait_for(
        lambda: (h := job_header(clients, spec, "mixed")).get("status") == "COMPLETED" and h,
        "the job's completion",
    )
    assert (header["total"], header["completed"], header["failed"]) == ("6", "4", "2")
    location = header["results_location"]
    assert location.startswith(f"s3://{spec.outputs['OutputBucketName']}/jobs/mixed/")
    bucket, key = location.removeprefix("s3://").split("/", 1)
    body = clients["s3"].get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    lines = [json.loads(line) for line in body.splitlines()]
    assert [line["key"] for line in lines] == [f"batch/{k}" for k in keys]
    assert [line["inference_id"] for line in lines] == [
        fresh[0],
        known,
        None,
        rejected,
        fresh[1],
        fresh[2],
    ]
    statuses = [line["status"] for line in lines]
    assert statuses == ["COMPLETED", "COMPLETED", "FAILED", "FAILED", "COMPLETED", "COMPLETED"]
    assert lines[2]["failure_stage"] == "job"
    assert "no such object" in lines[2]["failure_reason"]
    assert lines[3]["failure_stage"] == "inference"
    assert json.loads(lines[0]["result"])["predictions"][0]["label"] == "setosa"
    assert all(line["output_location"] for line in lines if line["status"] == "COMPLETED")

    time.sleep(3)  # time for a second event, were there one
    received = events_received(clients, job_events)
    assert len(received) == 1
    assert received[0]["detail"]["job_name"] == "mixed"
    assert received[0]["detail"]["results_location"] == location
    assert (received[0]["detail"]["completed"], received[0]["detail"]["failed"]) == ("4", "2")
    # the known input was reused, never invoked again; the manifest itself was never inferred
    assert store.get(known) == known_before
    assert accepted_invocations(spec) == 5


def test_a_bad_manifest_is_a_failed_job_with_its_reason(
    clients: dict[str, Any], spec: LocalPipelineSpec, job_events: str
) -> None:
    events_received(clients, job_events)
    clients["s3"].put_object(
        Bucket=spec.outputs["InputBucketName"], Key="jobs/broken.manifest.json", Body=b"[{"
    )
    header = wait_for(
        lambda: (h := job_header(clients, spec, "broken")).get("status") == "FAILED" and h,
        "the bad manifest's job",
    )
    assert "not JSON" in header["reason"]
    received = wait_for(lambda: events_received(clients, job_events), "its event")
    assert [event["detail"]["status"] for event in received] == ["FAILED"]
