"""What shipping the sagemaker-runtime model costs the ingest function: asset bytes, cold time.

* asset: the deflated size the bundled ``botocore_data`` folder adds to the ingest zip (the
  asset is zipped with deflate, as CDK does), against bundling a whole newer botocore;
* cold client: a fresh interpreter's CPU time to create the ``sagemaker-runtime`` client,
  with botocore's own loader and with the bundled folder first (``service_models``), the
  median of ``runs`` runs in alternating order. The bundled model is plain JSON (botocore's is
  gzip-compressed), so it parses without decompressing.

``python -m bench.service_model [runs]`` prints both; ``make bench`` reports them as the figures
``asset_size_ingest_service_model`` and ``cold_client_ratio_service_model``.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import botocore

from bench.measure import split
from bench.settings import REPO_ROOT
from lambdas.ingest.service_models import BUNDLED_DATA_PATH

DEFAULT_RUNS = 15
_CLIENT_SNIPPET = """
import time, json
start = time.process_time()
import boto3
{session}
client = session.client("sagemaker-runtime", region_name="us-east-1")
client.meta.service_model.operation_model("InvokeEndpointAsync")
print(json.dumps(time.process_time() - start))
"""
BOTOCORE_MODEL = "botocore's model"
BUNDLED_MODEL = "bundled model"
_SESSIONS = {
    BOTOCORE_MODEL: "session = boto3.session.Session()",
    BUNDLED_MODEL: (
        "from lambdas.ingest.service_models import botocore_session\n"
        "session = boto3.session.Session(botocore_session=botocore_session())"
    ),
}


@dataclass(frozen=True)
class ServiceModelCost:
    bundled_deflated_bytes: int
    bundled_raw_bytes: int
    botocore_deflated_bytes: int
    # label -> CPU seconds of each run, in the order taken
    client_runs: dict[str, list[float]]

    @property
    def client_seconds(self) -> dict[str, float]:
        """Median CPU seconds per label."""
        return {label: statistics.median(runs) for label, runs in self.client_runs.items()}

    def rounds(self, count: int) -> list[ServiceModelCost]:
        """The runs split into ``count`` rounds of consecutive runs."""
        parts = {label: split(runs, count) for label, runs in self.client_runs.items()}
        return [
            replace(self, client_runs={label: parts[label][index] for label in parts})
            for index in range(count)
        ]


def deflated_size(root: Path) -> tuple[int, int]:
    """(zipped, raw) bytes of every file under ``root``."""
    buffer = io.BytesIO()
    raw = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                raw += path.stat().st_size
                archive.write(path, path.relative_to(root.parent))
    return len(buffer.getvalue()), raw


def client_seconds(label: str) -> float:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("AWS_DATA_PATH")
    }
    environment["PYTHONPATH"] = str(REPO_ROOT)
    completed = subprocess.run(
        [sys.executable, "-c", _CLIENT_SNIPPET.format(session=_SESSIONS[label])],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
        cwd=REPO_ROOT,
    )
    seconds: float = json.loads(completed.stdout)
    return seconds


def measure(runs: int = DEFAULT_RUNS) -> ServiceModelCost:
    bundled_zipped, bundled_raw = deflated_size(BUNDLED_DATA_PATH)
    botocore_zipped, _ = deflated_size(Path(botocore.__file__).parent)
    samples: dict[str, list[float]] = {label: [] for label in _SESSIONS}
    labels = list(_SESSIONS)
    for run in range(runs):
        for label in labels if run % 2 == 0 else reversed(labels):
            samples[label].append(client_seconds(label))
    return ServiceModelCost(
        bundled_deflated_bytes=bundled_zipped,
        bundled_raw_bytes=bundled_raw,
        botocore_deflated_bytes=botocore_zipped,
        client_runs=samples,
    )


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_RUNS
    cost = measure(runs)
    print(
        f"bundled model: +{cost.bundled_deflated_bytes:,} bytes zipped "
        f"({cost.bundled_raw_bytes:,} raw); a whole botocore would add "
        f"{cost.botocore_deflated_bytes:,} bytes zipped"
    )
    for label, seconds in cost.client_seconds.items():
        print(f"import boto3 + sagemaker-runtime client, {label}: {seconds * 1000:.1f} ms CPU")


if __name__ == "__main__":
    main()
