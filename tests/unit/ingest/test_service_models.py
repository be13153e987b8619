"""The bundled sagemaker-runtime model: current, found first, and enough for old botocore."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from lambdas.common.pruned_models import PRUNED_DATA_PATH
from lambdas.ingest import service_models
from lambdas.ingest.service_models import (
    BUNDLED_DATA_PATH,
    BUNDLED_MODEL,
    REQUIRED_MEMBERS,
    botocore_session,
    installed_model,
    render,
)
from tests import lambda_runtime_sdk

REPO_ROOT = Path(__file__).resolve().parents[3]
PROBE_TIMEOUT_SECONDS = 120
INLINE_BODY = b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}'


def test_the_bundled_model_is_the_pinned_botocore_model_without_documentation() -> None:
    # Fails when constraints.txt moves botocore to a model with other changes: run
    # `python -m lambdas.ingest.service_models` and commit the file.
    assert BUNDLED_MODEL.read_text(encoding="utf-8") == render(installed_model())


def test_the_bundled_model_has_the_2026_members() -> None:
    model = json.loads(BUNDLED_MODEL.read_text(encoding="utf-8"))
    members = model["shapes"]["InvokeEndpointAsyncInput"]["members"]
    assert set(REQUIRED_MEMBERS) <= set(members)
    assert members["S3OutputPathExtension"]["locationName"] == (
        "X-Amzn-SageMaker-S3OutputPathExtension"
    )
    assert members["Filename"]["locationName"] == "X-Amzn-SageMaker-Filename"
    assert model["shapes"]["InvokeEndpointAsyncInput"]["payload"] == "Body"
    assert "documentation" not in BUNDLED_MODEL.read_text(encoding="utf-8")


def test_the_bundled_folder_is_searched_first_then_aws_data_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_DATA_PATH", raising=False)
    loader = botocore_session().get_component("data_loader")
    assert loader.search_paths[0] == str(BUNDLED_DATA_PATH)
    assert "/opt/models" not in loader.search_paths
    monkeypatch.setenv("AWS_DATA_PATH", os.pathsep.join(["/opt/models", "/opt/more"]))
    loader = botocore_session().get_component("data_loader")
    assert loader.search_paths[:4] == [
        str(BUNDLED_DATA_PATH),
        str(PRUNED_DATA_PATH),  # the pruned S3 and DynamoDB models and endpoints.json
        "/opt/models",
        "/opt/more",
    ]


def test_a_client_on_the_session_loads_the_bundled_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DATA_PATH", raising=False)
    session = boto3.session.Session(botocore_session=botocore_session(), region_name="us-east-1")
    loader = session._session.get_component("data_loader")
    _, path = loader.load_data_with_path(
        f"{service_models.SERVICE_NAME}/{service_models.API_VERSION}/service-2"
    )
    assert Path(path) == BUNDLED_MODEL.with_suffix("")
    client = session.client("sagemaker-runtime")
    members = client.meta.service_model.operation_model("InvokeEndpointAsync").input_shape.members
    assert set(REQUIRED_MEMBERS) <= set(members)


@pytest.fixture(scope="module")
def old_sdk_run() -> dict[str, Any]:
    """What the probe saw, run with the Lambda runtime's SDK first on sys.path."""
    sdk = lambda_runtime_sdk.ensure_installed()
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "BOTO_")) and key != "PYTHONPATH"
    }
    environment.update(
        PYTHONPATH=os.pathsep.join([str(sdk), str(REPO_ROOT)]),
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    completed = subprocess.run(
        [sys.executable, "-m", "tests.unit.ingest.old_sdk_probe"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def test_the_probe_ran_on_the_lambda_runtimes_botocore(old_sdk_run: dict[str, Any]) -> None:
    assert old_sdk_run["botocore"] == lambda_runtime_sdk.BOTOCORE_VERSION
    assert "lambda-runtime-sdk" in old_sdk_run["botocore_file"]


def test_that_botocore_alone_refuses_the_new_members(old_sdk_run: dict[str, Any]) -> None:
    # Without the bundled model the members never leave the function.
    assert old_sdk_run["plain_refused"] is True
    assert "Unknown parameter" in old_sdk_run["plain_error"]


def test_the_ingest_client_sends_the_members_and_an_inline_body(
    old_sdk_run: dict[str, Any],
) -> None:
    inline, by_location, _, _ = old_sdk_run["received"]
    assert inline["path"] == "/endpoints/ep/async-invocations"
    assert inline["headers"]["X-Amzn-SageMaker-S3OutputPathExtension"] == "a/b!20c"
    assert inline["headers"]["X-Amzn-SageMaker-Filename"] == "aaaaaaaaaaaaaaaaaaaaaaaaaaaa.out"
    assert "X-Amzn-SageMaker-InputLocation" not in inline["headers"]
    assert bytes.fromhex(inline["body"]) == INLINE_BODY
    # Signed like every other header, so SageMaker accepts them.
    assert "x-amzn-sagemaker-s3outputpathextension" in inline["headers"]["Authorization"]
    assert by_location["headers"]["X-Amzn-SageMaker-InputLocation"] == "s3://in/a/b c/k.json"
    assert by_location["headers"]["X-Amzn-SageMaker-Filename"] == (
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbb.out"
    )
    assert by_location["body"] == ""


def test_the_response_gives_the_exact_output_location(old_sdk_run: dict[str, Any]) -> None:
    first, _ = old_sdk_run["responses"]
    assert first["OutputLocation"] == "s3://out/results/a/b!20c/aaaaaaaaaaaaaaaaaaaaaaaaaaaa.out"


def test_the_pruned_s3_and_dynamodb_models_work_on_the_runtimes_botocore(
    old_sdk_run: dict[str, Any],
) -> None:
    s3_operations, dynamodb_operations = old_sdk_run["pruned_models"]
    assert "HeadObject" in s3_operations
    assert "ListObjectsV2" not in s3_operations  # the pruned file, not the runtime's own
    assert "PutItem" in dynamodb_operations
    assert "CreateTable" not in dynamodb_operations
    _, _, head, put = old_sdk_run["received"]
    assert (head["method"], head["path"]) == ("HEAD", "/in/a/k.csv")
    assert put["headers"]["X-Amz-Target"] == "DynamoDB_20120810.PutItem"
    assert json.loads(bytes.fromhex(put["body"])) == {
        "TableName": "t",
        "Item": {"inference_id": {"S": "a" * 64}},
    }
    assert old_sdk_run["head_object"] == {"ContentType": "text/csv", "ETag": '"0123"'}
