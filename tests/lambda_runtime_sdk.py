"""The AWS SDK the python3.13 Lambda runtime includes, installed once for tests that need it.

Lambda's managed python3.13 runtime puts its own boto3/botocore/s3transfer on ``sys.path``
(docs/stack.md, "Sending the 2026 members"). They predate the 2026 ``InvokeEndpointAsync`` members,
so the ingest function ships the sagemaker-runtime model itself; the test that proves it runs
the ingest code on exactly these versions.

``python -m tests.lambda_runtime_sdk`` installs them (``make unit``/``make test`` do, through a
stamp): into ``.venv/lambda-runtime-sdk/<botocore version>/`` with ``pip install --target
--no-deps``, so the project's venv keeps its own pins and a second run downloads nothing. The
other packages the runtime includes (urllib3, python-dateutil, jmespath) come from the venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Update all three together from the "Runtime-included SDK versions" table of
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html (python3.13 row).
BOTOCORE_VERSION = "1.34.145"
PACKAGES = (f"boto3=={BOTOCORE_VERSION}", f"botocore=={BOTOCORE_VERSION}", "s3transfer==0.10.2")
REPO_ROOT = Path(__file__).resolve().parent.parent
SDK_DIR_ENV = "LAMBDA_RUNTIME_SDK_DIR"
INSTALL_TIMEOUT_SECONDS = 300


def sdk_dir() -> Path:
    configured = os.environ.get(SDK_DIR_ENV)
    base = Path(configured) if configured else REPO_ROOT / ".venv" / "lambda-runtime-sdk"
    return base / BOTOCORE_VERSION


def ensure_installed() -> Path:
    """The folder holding the runtime's SDK, installed first if it is not there yet."""
    target = sdk_dir()
    if (target / "botocore" / "__init__.py").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".installing-", dir=target.parent))
    try:
        subprocess.run(
            [
                sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile",
                "--disable-pip-version-check", "--target", str(staging), *PACKAGES,
            ],
            check=True,
            timeout=INSTALL_TIMEOUT_SECONDS,
        )  # fmt: skip
        try:
            staging.rename(target)  # atomic: a concurrent run either sees all of it or none
        except OSError:
            if not (target / "botocore" / "__init__.py").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


if __name__ == "__main__":
    print(ensure_installed())
