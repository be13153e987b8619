"""Requests the local SageMaker async runtime accepts and answers, driven by plain boto3 and the
AWS CLI: the completed inference's output and notification, and every validation error."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from asyncinfer.local.sagemaker.state import LocalRuntime
from tests.documented import NOTIFICATION_KEYS
from tests.e2e.runtime.support import (
    BUCKET,
    ENDPOINT,
    REGION,
    SETOSA_CSV,
    Aws,
    RuntimeFactory,
    error_of,
    sagemaker,
)

pytestmark = pytest.mark.e2e

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


# the happy path


def test_boto3_invoke_completes_with_output_and_notification(
    aws: Aws, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime()
    location = aws.put_input("inputs/red flower.csv", SETOSA_CSV)

    response = sagemaker(runtime).invoke_endpoint_async(
        EndpointName=ENDPOINT,
        InputLocation=location,
        ContentType="text/csv",
        Accept="application/json",
        CustomAttributes="trace=abc",
        InferenceId="happy-1",
        RequestTTLSeconds=600,
        InvocationTimeoutSeconds=30,
    )

    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert response["InferenceId"] == "happy-1"
    # Without Filename the name is based on the inference id (the model's documentation).
    assert response["OutputLocation"] == f"s3://{BUCKET}/outputs/happy-1.out"
    assert response["FailureLocation"] == f"s3://{BUCKET}/failures/happy-1-error.out"

    notification = aws.success.for_inference("happy-1")
    assert set(notification) == set(NOTIFICATION_KEYS)
    assert notification["awsRegion"] == REGION
    assert notification["invocationStatus"] == "Completed"
    assert notification["requestParameters"] == {
        "accept": "application/json",
        "contentType": "text/csv",
        "customAttributes": "trace=abc",
        "endpointName": ENDPOINT,
        "inputLocation": location,
    }
    assert notification["responseParameters"] == {
        "contentType": "application/json",
        "outputLocation": response["OutputLocation"],
    }
    assert (notification["eventVersion"], notification["eventSource"]) == ("1.0", "aws:sagemaker")
    assert notification["eventName"] == "InferenceResult"
    assert TIMESTAMP.fullmatch(notification["eventTime"])
    assert TIMESTAMP.fullmatch(notification["receivedTime"])
    assert notification["receivedTime"] <= notification["eventTime"]

    body, content_type = aws.read(response["OutputLocation"])
    assert content_type == "application/json"
    assert json.loads(body)["predictions"][0]["label"] == "setosa"
    assert not aws.exists(response["FailureLocation"])
    stats = runtime.stats()
    assert (stats["accepted"], stats["completed"], stats["failed"]) == (1, 1, 0)


def test_generates_an_inference_id_and_includes_the_response_when_configured(
    aws: Aws, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime(include_response_body=True)
    location = aws.put_input("inputs/flower.json", b'{"instances": [[6.9, 3.2, 5.7, 2.3]]}')

    response = sagemaker(runtime).invoke_endpoint_async(
        EndpointName=ENDPOINT, InputLocation=location, ContentType="application/json"
    )

    assert re.fullmatch(UUID, response["InferenceId"])
    notification = aws.success.for_inference(response["InferenceId"])
    assert "accept" not in notification["requestParameters"]
    assert "customAttributes" not in notification["requestParameters"]
    content = base64.b64decode(notification["responseBody"]["content"])
    assert notification["responseBody"]["encoding"] == "BASE64"
    assert content == aws.read(response["OutputLocation"])[0]
    assert json.loads(content)["predictions"][0]["label"] == "virginica"


# validation: every rejection is a ClientError with the modelled code


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"EndpointName": "nope"}, "Endpoint nope of account 123456789012 not found."),
        ({"InputLocation": None}, "InputLocation is required"),
        ({"InputLocation": "bucket/key.csv"}, "at 'inputLocation' failed to satisfy constraint"),
        ({"InputLocation": f"s3://{BUCKET}"}, "does not name an object"),
        ({"InputLocation": f"s3://{BUCKET}/" + "k" * 1010}, "less than or equal to 1024"),
        ({"CustomAttributes": "a" * 1025}, "at 'customAttributes'"),
        ({"CustomAttributes": "caf\u00e9"}, "visible US-ASCII"),
        ({"InferenceId": ""}, "at 'inferenceId'"),
        ({"InferenceId": "i" * 65}, "less than or equal to 64"),
        ({"InferenceId": "del\x7f"}, "at 'inferenceId'"),
        ({"RequestTTLSeconds": 59}, "greater than or equal to 60"),
        ({"RequestTTLSeconds": 21601}, "less than or equal to 21600"),
        ({"InvocationTimeoutSeconds": 0}, "greater than or equal to 1"),
        ({"InvocationTimeoutSeconds": 3601}, "less than or equal to 3600"),
        ({"Body": b"1,2,3,4"}, "mutually exclusive"),
    ],
)
def test_invalid_requests_are_validation_errors(
    aws: Aws, make_runtime: RuntimeFactory, overrides: dict[str, Any], message: str
) -> None:
    runtime = make_runtime()
    arguments = {"EndpointName": ENDPOINT, "InputLocation": f"s3://{BUCKET}/inputs/x.csv"}
    arguments.update(overrides)
    arguments = {name: value for name, value in arguments.items() if value is not None}

    code, status, text = error_of(
        lambda: sagemaker(runtime, validate=False).invoke_endpoint_async(**arguments)
    )

    assert (code, status) == ("ValidationError", 400)
    assert message in text
    stats = runtime.stats()
    assert (stats["accepted"], stats["rejected"]) == (0, {"ValidationError": 1})


# the AWS CLI


def aws_cli(runtime: LocalRuntime, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("aws")),
            "sagemaker-runtime",
            "invoke-endpoint-async",
            "--endpoint-url",
            runtime.url,
            "--region",
            REGION,
            "--output",
            "json",
            *arguments,
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


def test_the_aws_cli_invokes_the_endpoint(aws: Aws, make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime()
    location = aws.put_input("inputs/cli input.csv", SETOSA_CSV)

    result = aws_cli(
        runtime,
        "--endpoint-name",
        ENDPOINT,
        "--input-location",
        location,
        "--content-type",
        "text/csv",
        "--inference-id",
        "cli-1",
    )

    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["InferenceId"] == "cli-1"
    assert printed["OutputLocation"] == f"s3://{BUCKET}/outputs/cli-1.out"
    notification = aws.success.for_inference("cli-1")
    assert notification["responseParameters"]["outputLocation"] == printed["OutputLocation"]


def test_the_aws_cli_reports_validation_errors(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime()

    result = aws_cli(
        runtime, "--endpoint-name", "nope", "--input-location", f"s3://{BUCKET}/inputs/x.csv"
    )

    assert result.returncode != 0
    assert "(ValidationError)" in result.stderr
    assert "Endpoint nope of account 123456789012 not found." in result.stderr
