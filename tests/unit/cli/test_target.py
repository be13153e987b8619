"""Which pipeline the CLI talks to, and how it says so — or why it cannot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError, EndpointConnectionError
from typer.testing import CliRunner

from asyncinfer.cli.app import app
from asyncinfer.cli.errors import ExitCode, cli_error_for
from lambdas.common.records import inference_id_for
from tests.moto_server import moto_endpoint
from tests.unit.cli.conftest import Invoke, Pipeline, create_pipeline, one_line_error


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    with moto_endpoint() as url:
        yield url


@pytest.fixture
def local_mode(
    moto_server: str, aws_credentials: None, isolated: Path
) -> Iterator[tuple[Pipeline, Path]]:
    """A state file as local mode writes it, pointing at a live moto server."""
    requests.post(f"{moto_server}/moto-api/reset", timeout=10)
    resources = create_pipeline(moto_server)
    state_dir = isolated / ".local"
    state_dir.mkdir()
    state = {
        "region": "us-east-1",
        "aws_endpoint_url": moto_server,
        "runtime_endpoint_url": "http://127.0.0.1:9",
        "model_url": "http://127.0.0.1:9",
        "admin_url": "http://127.0.0.1:9/_local",
        "outputs": resources.outputs,
        "pid": os.getpid(),
        "started_at": "2026-11-21T12:00:00.000Z",
    }
    (state_dir / "state.json").write_text(json.dumps(state))
    yield resources, state_dir / "state.json"
    requests.post(f"{moto_server}/moto-api/reset", timeout=10)


def test_stack_outputs_name_the_resources(cli: Invoke, pipeline: Pipeline) -> None:
    result = cli("results", "--json")

    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == "target: stack AsyncInference in us-east-1"


def test_stack_from_the_environment(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCINFER_STACK", "AsyncInference")

    result = CliRunner().invoke(app, ["results", "--json"])

    assert result.exit_code == 0, result.output
    assert "target: stack AsyncInference" in result.stderr


def test_region_from_the_environment(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")

    result = CliRunner().invoke(app, ["--stack", "AsyncInference", "results"])

    assert result.exit_code == 254
    assert one_line_error(result) == "stack AsyncInference not found in eu-west-1"


def test_stack_not_found(pipeline: Pipeline) -> None:
    result = CliRunner().invoke(app, ["--stack", "Nope", "results"])

    assert result.exit_code == 254
    assert one_line_error(result) == "stack Nope not found in us-east-1"


def test_an_output_the_stack_lacks(pipeline: Pipeline) -> None:
    from tests.unit.cli.conftest import create_stack

    create_stack({"ResultsTableName": "results"}, name="Partial")

    result = CliRunner().invoke(app, ["--stack", "Partial", "status", "some/key.json"])

    assert result.exit_code == 254
    assert one_line_error(result) == "stack Partial has no output InputBucketName"


def test_no_target_at_all(aws_credentials: None, isolated: Path) -> None:
    result = CliRunner().invoke(app, ["results"])

    assert result.exit_code == 253
    message = one_line_error(result)
    assert message.startswith("no target: pass --stack NAME")
    assert (
        "start local mode with 'asyncinfer local up' (in a clone: .venv/bin/asyncinfer)" in message
    )


def test_local_mode_is_found_and_used(local_mode: tuple[Pipeline, Path], tmp_path: Path) -> None:
    resources, state_file = local_mode
    sample = tmp_path / "sample.json"
    sample.write_text('{"features": [5.1, 3.5, 1.4, 0.2]}')

    result = CliRunner().invoke(app, ["submit", str(sample), "--prefix", "in/"])

    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0].startswith("target: local mode at http://127.0.0.1:")
    assert str(state_file) in result.stderr
    version = resources.s3.head_object(Bucket="input-bucket", Key="in/sample.json")
    expected = inference_id_for(
        "input-bucket", "in/sample.json", version["VersionId"], version["ETag"]
    )
    assert result.stdout.split() == [expected, "s3://input-bucket/in/sample.json"]


def test_local_mode_with_a_dead_supervisor(local_mode: tuple[Pipeline, Path]) -> None:
    _, state_file = local_mode
    dead_pid = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_pid.wait()
    state = json.loads(state_file.read_text())
    state_file.write_text(json.dumps({**state, "pid": dead_pid.pid}))

    result = CliRunner().invoke(app, ["results"])

    assert result.exit_code == 253
    message = one_line_error(result)
    assert message.startswith(f"local mode is not running (stale state file {state_file}")
    assert f"process {dead_pid.pid} is gone" in message


def test_local_mode_whose_endpoint_does_not_answer(local_mode: tuple[Pipeline, Path]) -> None:
    _, state_file = local_mode
    state = json.loads(state_file.read_text())
    state_file.write_text(json.dumps({**state, "aws_endpoint_url": "http://127.0.0.1:9"}))

    result = CliRunner().invoke(app, ["results"])

    assert result.exit_code == 253
    assert "http://127.0.0.1:9 does not answer" in one_line_error(result)


def test_no_credentials(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(isolated / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(isolated / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)

    result = CliRunner().invoke(app, ["--region", "us-east-1", "--stack", "Any", "results"])

    assert result.exit_code == 253
    assert one_line_error(result).startswith("Unable to locate credentials.")


def test_unknown_profile(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(isolated / "no-config"))

    result = CliRunner().invoke(app, ["--profile", "nope", "--stack", "Any", "results"])

    assert result.exit_code == 253
    assert one_line_error(result) == "The config profile (nope) could not be found"


def test_usage_errors_are_one_line(isolated: Path) -> None:
    unknown_option = CliRunner().invoke(app, ["results", "--bogus"])
    unknown_command = CliRunner().invoke(app, ["frobnicate"])
    missing_argument = CliRunner().invoke(app, ["status"])

    assert unknown_option.exit_code == 252
    assert one_line_error(unknown_option) == (
        "No such option: --bogus (see 'asyncinfer results --help')"
    )
    assert unknown_command.exit_code == 252
    assert "No such command 'frobnicate'" in one_line_error(unknown_command)
    assert missing_argument.exit_code == 252
    assert "Missing argument" in one_line_error(missing_argument)


def test_help_and_version(isolated: Path) -> None:
    runner = CliRunner()
    helped = runner.invoke(app, ["--help"])
    versioned = runner.invoke(app, ["--version"])

    assert helped.exit_code == 0
    for command in ("submit", "status", "results", "fetch", "watch", "redrive"):
        assert command in helped.stdout
    assert versioned.stdout.strip() == "asyncinfer 0.1.0"


def test_console_entry_point_runs_as_a_module(isolated: Path) -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "asyncinfer", "results"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])},
    )

    assert finished.returncode == 253
    assert finished.stderr.startswith("asyncinfer: error: no target")
    assert finished.stderr.count("\n") == 1


def test_error_mapping() -> None:
    throttled = ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "Query"
    )
    missing = ClientError({"Error": {"Code": "NoSuchBucket", "Message": "gone"}}, "PutObject")
    expired = ClientError({"Error": {"Code": "ExpiredToken", "Message": "expired"}}, "GetItem")

    assert cli_error_for(throttled, "table results").format_message() == (
        "An error occurred (ThrottlingException) when calling the Query operation: "
        "Rate exceeded [table results]"
    )
    assert (
        cli_error_for(missing, "bucket b").format_message() == "bucket b not found (NoSuchBucket)"
    )
    assert cli_error_for(expired).exit_code == ExitCode.ENVIRONMENT
    down = cli_error_for(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"))
    assert down.exit_code == ExitCode.OTHER
    assert 'Could not connect to the endpoint URL: "http://127.0.0.1:9"' in down.format_message()
    with pytest.raises(TypeError):
        cli_error_for(ValueError("not botocore"))


def test_an_unreadable_state_file(aws_credentials: None, isolated: Path) -> None:
    (isolated / ".local").mkdir()
    (isolated / ".local" / "state.json").write_text('{"region": "us-east-1"}')

    result = CliRunner().invoke(app, ["results"])

    assert result.exit_code == 253
    assert one_line_error(result).endswith(
        "state.json: aws_endpoint_url: Field required; pid: Field required"
    )
