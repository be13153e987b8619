"""Context validation (the pydantic model, directly), cdk.json, the CLI error line, the archive."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from stacks.config import (
    LOG_RETENTION_DAYS,
    ConfigError,
    EndpointMode,
    StackConfig,
    check_deploy_region,
)
from stacks.demo_model import (
    ModelPackageError,
    archive_bytes,
    build_model_archive,
)

ROOT = Path(__file__).resolve().parents[2]
IMPORT = {
    "endpoint_mode": "import",
    "endpoint_name": "existing",
    "success_topic_arn": "arn:aws:sns:us-east-1:123456789012:ok",
    "error_topic_arn": "arn:aws:sns:us-east-1:123456789012:failed",
}


def problem(context: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as raised:
        StackConfig.from_context(context)
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_no_context_gives_the_documented_defaults() -> None:
    config = StackConfig.from_context({})
    assert config.endpoint_mode is EndpointMode.CREATE
    assert config.stack_name == "AsyncInference"
    assert config.min_instance_count == 0
    assert config.uses_demo_model
    assert config.uses_demo_image
    assert config.ingest_visibility_timeout_seconds == 6 * config.ingest_timeout_seconds
    # The documented values as literals (docs/configuration.md, AWS docs), not the
    # implementation's defaults.
    assert config.ingest_timeout_seconds == 60
    assert config.ingest_visibility_timeout_seconds == 360
    assert config.request_ttl_seconds == 21600
    assert config.invocation_timeout_seconds == 900


def test_cdk_json_lists_every_key_with_its_default() -> None:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    settings = {key: value for key, value in context.items() if not key.startswith("@")}
    defaults = StackConfig().model_dump(mode="json")
    assert settings == defaults


def test_cli_strings_are_coerced() -> None:
    config = StackConfig.from_context(
        {
            "batch_size": "25",
            "max_batching_window_seconds": "2",
            "include_inference_response": "false",
            "key_prefixes": "incoming/, batch/",
            "key_suffixes": '[".json"]',
            "content_type_map": '{"npy": "application/x-npy"}',
            "alarm_email": "",
            "target_backlog_per_instance": "2.5",
        }
    )
    assert config.batch_size == 25
    assert config.include_inference_response is False
    assert config.key_prefixes == ["incoming/", "batch/"]
    assert config.key_suffixes == [".json"]
    assert config.content_type_map == {"npy": "application/x-npy"}
    assert config.alarm_email is None
    assert config.target_backlog_per_instance == 2.5
    assert config.ingest_visibility_timeout_seconds == 6 * config.ingest_timeout_seconds + 2


def test_an_empty_value_means_not_set_for_every_key() -> None:
    """README: an empty value means "not set": `-c max_concurrency=` is the default."""
    defaults = StackConfig.from_context({})
    emptied = StackConfig.from_context(
        {"max_concurrency": "", "batch_size": " ", "include_inference_response": ""}
    )
    assert emptied.max_concurrency == defaults.max_concurrency
    assert emptied.batch_size == defaults.batch_size
    assert emptied.include_inference_response == defaults.include_inference_response


def test_cdk_own_context_keys_are_left_to_the_cdk() -> None:
    config = StackConfig.from_context(
        {
            "@aws-cdk/aws-iam:minimizePolicies": True,
            "aws:cdk:enable-path-metadata": True,
            "acknowledged-issue-numbers": [1],
            "endpoint_name": None,  # cdk.json's "not set"
        }
    )
    assert config.endpoint_name is None


def test_import_mode_accepts_an_existing_endpoint() -> None:
    config = StackConfig.from_context(IMPORT)
    assert not config.creates_endpoint
    assert not config.uses_demo_model
    assert config.endpoint_role_arn is None


def test_import_mode_accepts_the_endpoint_role_with_a_path() -> None:
    role = "arn:aws:iam::123456789012:role/service-role/AmazonSageMaker-ExecutionRole-1"
    config = StackConfig.from_context({**IMPORT, "endpoint_role_arn": role})
    assert config.endpoint_role_arn == role
    assert StackConfig.from_context({**IMPORT, "endpoint_role_arn": ""}).endpoint_role_arn is None


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"endpoint_mode": "bogus"}, ["endpoint_mode='bogus'", "accepted values: create, import"]),
        ({"batch_size": "10001"}, ["batch_size='10001'", "from 1 to 10000"]),
        ({"batch_size": 11}, ["'max_batching_window_seconds' must be >= 1 when batch_size"]),
        ({"max_batching_window_seconds": 301}, ["max_batching_window_seconds=301", "0 to 300"]),
        ({"max_concurrency": 1}, ["max_concurrency=1", "from 2 to 1000"]),
        ({"ingest_timeout_seconds": 901}, ["ingest_timeout_seconds=901", "from 1 to 900"]),
        ({"invocation_timeout_seconds": 3601}, ["invocation_timeout_seconds", "1 to 3600"]),
        ({"request_ttl_seconds": 59}, ["request_ttl_seconds=59", "from 60 to 21600"]),
        ({"log_retention_days": 31}, ["log_retention_days=31", "one of 1, 3, 5"]),
        ({"removal_policy": "keep"}, ["removal_policy='keep'", "retain, destroy"]),
        # above INFO Lambda would drop the metrics documents (no level: filed as INFO)
        ({"log_level": "WARNING"}, ["log_level='WARNING'", "accepted values: DEBUG, INFO"]),
        ({"system_log_level": "ERROR"}, ["system_log_level='ERROR'", "DEBUG, INFO, WARN"]),
        ({"include_inference_response": "maybe"}, ["include_inference_response", "true, false"]),
        ({"instance_typ": "ml.m5.large"}, ["'instance_typ'", "did you mean 'instance_type'"]),
        ({"min_instance_count": 3}, ["'min_instance_count' is larger than max_instance_count"]),
        ({"key_prefixes": "a/,a/b/"}, ["'key_prefixes'", "'a/' and 'a/b/' overlap"]),
        ({"key_suffixes": "json,.json"}, ["'key_suffixes'", "overlap"]),
        ({"key_prefixes": "[1"}, ["key_prefixes='[1'", "not valid JSON"]),
        ({"content_type_map": '["csv"]'}, ["content_type_map", "a JSON object"]),
        ({"custom_attributes": '{"trace_id": "x"}'}, ["custom_attributes", "set by the ingest"]),
        ({"custom_attributes": '{"k": "a b"}'}, ["custom_attributes", "visible US-ASCII"]),
        ({"custom_attributes": json.dumps({"k": "v" * 1100})}, ["longer than 1024"]),
        (
            {"custom_attributes": '{"team": "a"}', "metadata_attributes": "x-amz-meta-team"},
            ["'metadata_attributes'", "['team'] are also custom_attributes keys"],
        ),
        ({"model_image_uri": "docker.io/me/model:1"}, ["model_image_uri", "an ECR image URI"]),
        ({"model_data_url": "https://bucket/model.tar.gz"}, ["model_data_url", "s3://bucket"]),
        ({"alarm_email": "not-an-email"}, ["alarm_email='not-an-email'", "an email address"]),
        ({"stack_name": "1stack"}, ["stack_name='1stack'", "CloudFormation stack name"]),
        (
            {"success_topic_arn": IMPORT["success_topic_arn"]},
            ["only used with endpoint_mode=import"],
        ),
        ({"endpoint_mode": "import"}, ["'endpoint_name' is required when endpoint_mode=import"]),
        ({**IMPORT, "error_topic_arn": None}, ["'error_topic_arn' is required"]),
        (
            {**IMPORT, "model_data_url": "s3://models/m.tar.gz"},
            ["only used with endpoint_mode=create"],
        ),
        (
            {**IMPORT, "endpoint_name": "bad_name"},
            ["endpoint_name='bad_name'", "SageMaker endpoint"],
        ),
        ({**IMPORT, "success_topic_arn": "topic"}, ["success_topic_arn='topic'", "SNS topic ARN"]),
        (
            {**IMPORT, "endpoint_role_arn": "arn:aws:iam::123:role/x"},
            ["endpoint_role_arn='arn:aws:iam::123:role/x'", "an IAM role ARN"],
        ),
        (
            {"endpoint_role_arn": "arn:aws:iam::123456789012:role/sm"},
            ["'endpoint_role_arn' is only used with endpoint_mode=import"],
        ),
    ],
)
def test_a_bad_key_is_named_in_one_line_with_what_it_accepts(
    context: dict[str, Any], expected: list[str]
) -> None:
    message = problem(context)
    for part in expected:
        assert part in message


def test_several_problems_report_the_first_and_count_the_rest() -> None:
    message = problem({"batch_size": 0, "max_concurrency": 0})
    assert message.startswith("context key batch_size=0 is not valid")
    assert message.endswith("(and 1 more problem(s))")


def test_demo_image_region_is_checked_when_the_target_region_is_known() -> None:
    config = StackConfig()
    check_deploy_region(config, None)  # offline synth: decided at deploy time by the mapping
    check_deploy_region(config, "eu-west-1")
    with pytest.raises(ConfigError, match="'model_image_uri' is required in region xx-east-9"):
        check_deploy_region(config, "xx-east-9")
    own_image = StackConfig(model_image_uri="123456789012.dkr.ecr.xx-east-9.amazonaws.com/m:1")
    check_deploy_region(own_image, "xx-east-9")


def test_log_retention_choices_map_to_cdk_values() -> None:
    from stacks.function import RETENTION_DAYS  # imports the CDK

    assert tuple(RETENTION_DAYS) == LOG_RETENTION_DAYS


def test_app_prints_one_error_line_and_exits_2_on_a_bad_key() -> None:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("CDK_")}
    completed = subprocess.run(
        [sys.executable, "app.py", "-c", "endpoint_mode=bogus"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.splitlines() == [
        "error: context key endpoint_mode='bogus' is not valid (Input should be 'create' or "
        "'import'): accepted values: create, import"
    ]


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A copy of the demo model folder, plus files the archive must leave out."""
    source = tmp_path / "model"
    shutil.copytree(ROOT / "asyncinfer" / "model", source, ignore=shutil.ignore_patterns("__py*"))
    (source / "iris.csv").write_text("5.1,3.5,1.4,0.2\n")
    (source / "notes.md").write_text("not packaged\n")
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "inference.cpython-311.pyc").write_bytes(b"\0")
    return source


def test_model_archive_holds_the_code_under_code_with_fixed_metadata(model_dir: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(archive_bytes(model_dir)), mode="r:gz") as archive:
        members = archive.getmembers()
    names = [member.name for member in members]
    expected = sorted(
        f"code/{path.name}" for path in model_dir.iterdir() if path.suffix in {".py", ".csv"}
    )
    assert names == ["code", *expected]
    assert "code/inference.py" in names
    assert "code/iris.csv" in names
    assert {(member.mtime, member.uid, member.gid, member.uname) for member in members} == {
        (1577836800, 0, 0, "root")
    }


def test_model_archive_bytes_depend_only_on_the_files(model_dir: Path, tmp_path: Path) -> None:
    first = archive_bytes(model_dir)
    for path in model_dir.iterdir():
        os.utime(path, (0, 0))
    assert archive_bytes(model_dir) == first
    archive = build_model_archive(model_dir, tmp_path / "build")
    written_at = archive.stat().st_mtime_ns
    assert build_model_archive(model_dir, tmp_path / "build").stat().st_mtime_ns == written_at
    (model_dir / "inference.py").write_text("changed = True\n")
    assert archive_bytes(model_dir) != first


def test_model_folder_without_entry_point_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ModelPackageError, match=r"inference\.py does not exist"):
        archive_bytes(tmp_path)
