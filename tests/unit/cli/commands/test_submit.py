"""`submit`: which files go up under which keys, the printed ids, and `--wait`."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from asyncinfer.cli.access.objects import Objects, UploadedObject
from asyncinfer.cli.commands.submit_upload import (
    FileToSubmit,
    Submitted,
    UploadInterrupted,
    check_locations,
    collect_files,
    upload_all,
)
from asyncinfer.cli.errors import CliError
from lambdas.common.records import FailureStage, InferenceRecord, Status, inference_id_for
from tests.unit.cli.conftest import Invoke, Pipeline, at, one_line_error


def printed_ids(stdout: str) -> dict[str, str]:
    """`<id>  s3://bucket/key` lines -> {key: id}."""
    ids = {}
    for line in stdout.strip().splitlines():
        inference_id, location = line.split("  ")
        ids[location.removeprefix("s3://input-bucket/")] = inference_id
    return ids


def ids_from_s3(pipeline: Pipeline) -> dict[str, str]:
    """The ids recomputed from what S3 holds: one per latest object version."""
    versions = pipeline.s3.list_object_versions(Bucket=pipeline.bucket)["Versions"]
    return {
        version["Key"]: inference_id_for(
            pipeline.bucket, version["Key"], version["VersionId"], version["ETag"]
        )
        for version in versions
        if version["IsLatest"]
    }


def test_submit_folder_prints_the_inference_id_of_every_uploaded_version(
    cli: Invoke, pipeline: Pipeline, many_files: Path
) -> None:
    result = cli("submit", str(many_files), "--prefix", "batch/", "--exclude", "*.txt")

    assert result.exit_code == 0, result.output
    ids = printed_ids(result.stdout)
    assert set(ids) == {
        "batch/a.json",
        "batch/b.csv",
        "batch/nested/c.json",
        "batch/nested/deeper/red flower.json",
    }
    assert ids == ids_from_s3(pipeline)
    assert "target: stack AsyncInference in us-east-1" in result.stderr


def test_submit_files_and_globs_metadata_and_content_type(
    cli: Invoke, pipeline: Pipeline, many_files: Path
) -> None:
    result = cli(
        "submit",
        str(many_files / "notes.txt"),
        str(many_files / "nested"),
        "--include",
        "*.json",
        "--include",
        "*.txt",
        "--metadata",
        "Tenant=acme",
        "--metadata",
        "priority=high=1",
        "--content-type",
        "application/json",
    )

    assert result.exit_code == 0, result.output
    assert set(printed_ids(result.stdout)) == {"notes.txt", "c.json", "deeper/red flower.json"}
    head = pipeline.s3.head_object(Bucket=pipeline.bucket, Key="deeper/red flower.json")
    assert head["Metadata"] == {"tenant": "acme", "priority": "high=1"}
    assert head["ContentType"] == "application/json"


def test_content_type_defaults_to_the_extension(
    cli: Invoke, pipeline: Pipeline, many_files: Path
) -> None:
    assert cli("submit", str(many_files / "b.csv")).exit_code == 0
    assert pipeline.s3.head_object(Bucket=pipeline.bucket, Key="b.csv")["ContentType"] == (
        "text/csv"
    )


def test_submit_twice_gives_two_ids_for_two_versions(
    cli: Invoke, pipeline: Pipeline, many_files: Path
) -> None:
    first = printed_ids(cli("submit", str(many_files / "a.json")).stdout)
    second = printed_ids(cli("submit", str(many_files / "a.json")).stdout)

    assert first["a.json"] != second["a.json"]
    assert second == ids_from_s3(pipeline)


def test_json_output_parses_and_carries_version_ids(
    cli: Invoke, pipeline: Pipeline, many_files: Path
) -> None:
    result = cli("submit", str(many_files / "a.json"), "--json")

    assert result.exit_code == 0, result.output
    [document] = json.loads(result.stdout)
    version = pipeline.s3.head_object(Bucket=pipeline.bucket, Key="a.json")["VersionId"]
    assert document["version_id"] == version
    assert document["input_location"] == "s3://input-bucket/a.json"
    assert document["inference_id"] == inference_id_for(
        "input-bucket", "a.json", version, document["etag"]
    )


def test_unversioned_bucket_ids_use_the_etag(
    moto_aws: None, isolated: Path, many_files: Path
) -> None:
    from typer.testing import CliRunner

    from asyncinfer.cli.app import app
    from tests.unit.cli.conftest import create_pipeline, create_stack

    resources = create_pipeline(versioned=False)
    create_stack(resources.outputs)

    result = CliRunner().invoke(
        app, ["--stack", "AsyncInference", "submit", str(many_files / "a.json")]
    )

    assert result.exit_code == 0, result.output
    etag = resources.s3.head_object(Bucket="input-bucket", Key="a.json")["ETag"]
    assert printed_ids(result.stdout) == {
        "a.json": inference_id_for("input-bucket", "a.json", None, etag)
    }


def test_printed_ids_follow_the_public_formula(
    moto_aws: None, isolated: Path, tmp_path: Path
) -> None:
    """The README's formula, computed here with hashlib, not with ``inference_id_for``."""
    from typer.testing import CliRunner

    from asyncinfer.cli.app import app
    from tests.unit.cli.conftest import create_pipeline, create_stack

    folder = tmp_path / "unicode"
    folder.mkdir()
    (folder / "été 日本+1.json").write_text('{"x": 1}')
    resources = create_pipeline()
    create_stack(resources.outputs)
    runner = CliRunner()

    versioned = runner.invoke(app, ["--stack", "AsyncInference", "submit", str(folder)])
    assert versioned.exit_code == 0, versioned.output
    version_id = resources.s3.head_object(Bucket="input-bucket", Key="été 日本+1.json")["VersionId"]
    identity = f"s3://input-bucket/été 日本+1.json?versionId={version_id}"
    assert printed_ids(versioned.stdout) == {
        "été 日本+1.json": hashlib.sha256(identity.encode("utf-8")).hexdigest()
    }

    resources.s3.put_bucket_versioning(
        Bucket="input-bucket", VersioningConfiguration={"Status": "Suspended"}
    )
    unversioned = runner.invoke(app, ["--stack", "AsyncInference", "submit", str(folder)])
    assert unversioned.exit_code == 0, unversioned.output
    etag = resources.s3.head_object(Bucket="input-bucket", Key="été 日本+1.json")["ETag"]
    assert etag.startswith('"')
    identity = f"s3://input-bucket/été 日本+1.json?etag={etag.strip(chr(34))}"
    assert printed_ids(unversioned.stdout) == {
        "été 日本+1.json": hashlib.sha256(identity.encode("utf-8")).hexdigest()
    }


def test_large_files_go_up_in_parts_with_the_id_of_the_completed_upload(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (5 * 1024 * 1024 + 10))
    objects = Objects(pipeline.s3, multipart_threshold=1024, part_size=5 * 1024 * 1024)

    uploaded = objects.upload(
        pipeline.bucket, "big.bin", big, content_type=None, metadata={"a": "b"}
    )

    head = pipeline.s3.head_object(Bucket=pipeline.bucket, Key="big.bin")
    assert uploaded.version_id == head["VersionId"]
    assert uploaded.etag == head["ETag"]
    assert head["ETag"].strip('"').endswith("-2")
    assert head["ContentLength"] == big.stat().st_size


class _HeldAfterTheFirst(Objects):
    """Every upload after the first waits until Ctrl-C has been pressed, then a little more:
    time for the interrupted loop to cancel what has not started (with in-process moto and one
    upload thread, the uploads could otherwise all finish before the first one is reported)."""

    def __init__(self, client: Any, pressed: threading.Event) -> None:
        super().__init__(client)
        self._pressed = pressed
        self._started = 0

    def upload(
        self,
        bucket: str,
        key: str,
        path: Path,
        *,
        content_type: str | None,
        metadata: Mapping[str, str],
    ) -> UploadedObject:
        self._started += 1
        if self._started > 1:
            self._pressed.wait(timeout=30)
            time.sleep(0.5)
        return super().upload(bucket, key, path, content_type=content_type, metadata=metadata)


def test_ctrl_c_keeps_the_finished_uploads(pipeline: Pipeline, many_files: Path) -> None:
    files = collect_files([many_files])
    pressed = threading.Event()

    def interrupt(_: Submitted) -> None:
        pressed.set()
        raise KeyboardInterrupt

    with pytest.raises(UploadInterrupted) as interrupted:
        upload_all(
            _HeldAfterTheFirst(pipeline.s3, pressed),
            pipeline.bucket,
            files,
            content_type=None,
            metadata={},
            concurrency=1,
            on_done=interrupt,
        )

    finished = interrupted.value.finished
    assert 1 <= len(finished) < len(files)
    assert ids_from_s3(pipeline) == {item.file.key: item.inference_id for item in finished}


def test_collect_files_rejects_two_files_with_one_key(tmp_path: Path) -> None:
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "same.json").write_text("{}")

    with pytest.raises(CliError, match=r"would both be uploaded as same\.json"):
        collect_files([tmp_path / "one", tmp_path / "two"])


LONG_KEY = "deep/" * 210 + "x.json"  # s3://input-bucket/ + 1,056 characters: over 1,024


@pytest.mark.parametrize(
    ("size", "inline_max", "refused"),
    [
        (500, 128_000, False),  # goes inline as Body: no InputLocation, no limit on the key
        (128_000, 128_000, False),
        (128_001, 128_000, True),  # goes by location: 1,074 characters > 1,024
        (500, 0, True),  # inline sending turned off
        (0, 128_000, True),  # an empty object goes by location (a Body needs a byte)
        (500, None, True),  # a stack older than the setting: everything by location
    ],
)
def test_a_long_key_is_refused_only_when_its_request_carries_a_location(
    tmp_path: Path, size: int, inline_max: int | None, refused: bool
) -> None:
    files = [FileToSubmit(tmp_path / "x.json", LONG_KEY, size)]
    if refused:
        with pytest.raises(CliError, match="1024 characters SageMaker accepts as InputLocation"):
            check_locations("input-bucket", files, inline_max)
    else:
        check_locations("input-bucket", files, inline_max)
    check_locations("input-bucket", [FileToSubmit(tmp_path / "y", "short.json", 10**9)], None)


def test_missing_path_is_a_usage_error(offline_cli: Invoke, tmp_path: Path) -> None:
    result = offline_cli("submit", str(tmp_path / "nope.json"))

    assert result.exit_code == 252
    assert "no such file or folder" in one_line_error(result)


def test_no_matching_file_is_a_usage_error(offline_cli: Invoke, many_files: Path) -> None:
    result = offline_cli("submit", str(many_files), "--include", "*.parquet")

    assert result.exit_code == 252
    assert one_line_error(result) == "nothing to submit: no file matches"


def test_bad_metadata_is_a_usage_error(offline_cli: Invoke, many_files: Path) -> None:
    result = offline_cli("submit", str(many_files / "a.json"), "--metadata", "no-equals-sign")

    assert result.exit_code == 252
    assert "invalid --metadata 'no-equals-sign'" in one_line_error(result)


def test_missing_bucket_is_one_error_line(
    cli: Invoke, pipeline: Pipeline, many_files: Path
) -> None:
    pipeline.s3.delete_bucket(Bucket="input-bucket")

    result = cli("submit", str(many_files))

    assert result.exit_code == 254
    assert one_line_error(result) == "bucket input-bucket not found (NoSuchBucket)"


# ------------------------------------------------------------------------------- --wait


class PipelineSimulator:
    """Plays ingest + results: every new object version gets a terminal record."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._done: set[str] = set()

    def __enter__(self) -> PipelineSimulator:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            listing = self._pipeline.s3.list_object_versions(Bucket=self._pipeline.bucket)
            for version in listing.get("Versions", []):
                key = version["Key"]
                inference_id = inference_id_for(
                    self._pipeline.bucket, key, version["VersionId"], version["ETag"]
                )
                if inference_id in self._done:
                    continue
                self._done.add(inference_id)
                self._complete(inference_id, key)

    def _complete(self, inference_id: str, key: str) -> None:
        failed = "bad" in key
        self._pipeline.store.record_outcome(
            InferenceRecord(
                inference_id=inference_id,
                status=Status.FAILED if failed else Status.COMPLETED,
                input_location=f"s3://{self._pipeline.bucket}/{key}",
                input_key=key,
                submitted_at=at(0),
                completed_at=at(1.5),
                updated_at=at(1.6),
                latency_ms=1200,
                output_location=None if failed else f"s3://output-bucket/outputs/{key}.out",
                failure_reason="model rejected the input" if failed else None,
                failure_stage=FailureStage.INFERENCE if failed else None,
            )
        )


@pytest.fixture
def simulator(pipeline: Pipeline) -> Iterator[PipelineSimulator]:
    with PipelineSimulator(pipeline) as running:
        yield running


def test_wait_exits_zero_when_everything_completes(
    cli: Invoke, many_files: Path, simulator: PipelineSimulator
) -> None:
    result = cli(
        "submit",
        str(many_files),
        "--exclude",
        "*.txt",
        "--wait",
        "--poll-interval",
        "0.05",
        "--timeout",
        "20",
    )

    assert result.exit_code == 0, result.output
    assert "4 completed, 0 failed" in result.stderr


def test_wait_exits_non_zero_and_names_the_failure(
    cli: Invoke, many_files: Path, simulator: PipelineSimulator
) -> None:
    (many_files / "bad.json").write_text("{")

    result = cli(
        "submit",
        str(many_files),
        "--include",
        "*.json",
        "--wait",
        "--poll-interval",
        "0.05",
        "--timeout",
        "20",
        "--json",
    )

    assert result.exit_code == 1, result.output
    documents = {document["input_location"]: document for document in json.loads(result.stdout)}
    bad = documents["s3://input-bucket/bad.json"]
    assert bad["status"] == "FAILED"
    assert bad["record"]["failure_reason"] == "model rejected the input"
    assert f"FAILED {bad['inference_id']} s3://input-bucket/bad.json [inference]" in result.stderr
    assert "3 completed, 1 failed" in result.stderr


def test_wait_times_out_with_exit_code_2(cli: Invoke, many_files: Path) -> None:
    result = cli(
        "submit",
        str(many_files / "a.json"),
        "--wait",
        "--timeout",
        "0.2",
        "--poll-interval",
        "0.05",
    )

    assert result.exit_code == 2
    assert "1 still in flight" in result.stderr


def test_metadata_s3_would_refuse_is_a_usage_error(offline_cli: Invoke, many_files: Path) -> None:
    accented = offline_cli("submit", str(many_files / "a.json"), "--metadata", "note=ü")
    large = offline_cli("submit", str(many_files / "a.json"), "--metadata", "note=" + "x" * 2045)

    assert accented.exit_code == 252
    assert "printable US-ASCII" in one_line_error(accented)
    assert large.exit_code == 252
    assert "2049 bytes of keys and values, S3 allows 2048" in one_line_error(large)
