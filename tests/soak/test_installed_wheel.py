"""The wheel, installed into a fresh virtual environment with the dependencies pip resolves for
it, gives an ``asyncinfer`` CLI that works against local mode: what a user's ``pip install``
gets. ``make soak`` runs it (the ``soak`` marker): pip installing every dependency is the
slowest single step of the tests (minutes on two cores), too slow for ``make test``'s loop.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncinfer.local.aws.iam import admin_session
from asyncinfer.local.session import LocalOptions, LocalPipeline
from lambdas.common.records import TERMINAL_STATUSES, inference_id_for

pytestmark = [
    pytest.mark.soak,
    pytest.mark.skipif(shutil.which("node") is None, reason="local mode needs Node.js"),
]
ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 60.0
IRIS_ROW = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    with LocalPipeline(LocalOptions(state_dir=tmp_path_factory.mktemp("local"))) as running:
        yield running


def submit_one(pipeline: LocalPipeline) -> str:
    """One file into the input bucket, until its record is terminal; its inference id."""
    assert pipeline.spec is not None
    spec = pipeline.spec
    session = admin_session(spec.region)
    s3 = session.client("s3", endpoint_url=spec.aws_endpoint_url)
    dynamodb = session.client("dynamodb", endpoint_url=spec.aws_endpoint_url)
    bucket, key = spec.outputs["InputBucketName"], "wheel/cli.json"
    response = s3.put_object(Bucket=bucket, Key=key, Body=json.dumps({"instances": [IRIS_ROW]}))
    inference_id = inference_id_for(bucket, key, response.get("VersionId"), response["ETag"])
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        item = dynamodb.get_item(
            TableName=spec.outputs["ResultsTableName"],
            Key={"inference_id": {"S": inference_id}},
        ).get("Item")
        if item is not None and item["status"]["S"] in TERMINAL_STATUSES:
            return inference_id
        time.sleep(0.2)
    pytest.fail(f"{inference_id} not terminal after {WAIT_SECONDS}s")


def install_wheel(tmp_path: Path, environment: dict[str, str]) -> Path:
    """Builds the wheel from a copy of the sources and installs it into a fresh venv; the
    venv's ``asyncinfer`` script."""
    source, wheelhouse, venv = tmp_path / "source", tmp_path / "wheels", tmp_path / "venv"
    # what the wheel is built from, copied: the build leaves no egg-info in the repository
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("asyncinfer", "lambdas", "stacks"):
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheelhouse), "."],
        check=True,
        timeout=180,
        cwd=source,
        env=environment,
    )
    subprocess.run(
        [sys.executable, "-m", "venv", str(venv)], check=True, timeout=120, env=environment
    )
    (wheel,) = wheelhouse.glob("asyncinfer-*.whl")
    # the declared dependencies, resolved by pip as a user's install would
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
        check=True,
        timeout=300,
        cwd=tmp_path,
        env=environment,
    )
    return venv / "bin" / "asyncinfer"


def test_the_installed_wheel_s_cli_works_against_local_mode(
    pipeline: LocalPipeline, tmp_path: Path
) -> None:
    clean = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    cli = str(install_wheel(tmp_path, clean))
    help_text = subprocess.run(
        [cli, "--help"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "submit" in help_text
    inference_id = submit_one(pipeline)
    shown = subprocess.run(
        [cli, "status", "--json", inference_id],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # not the repository: only the installed package is importable
        env={**clean, **pipeline.client_environment()},
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert inference_id in shown.stdout
    assert "COMPLETED" in shown.stdout
