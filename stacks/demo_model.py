"""The demo model the stack deploys when no model is configured.

The model code lives in ``asyncinfer/model/`` (local mode serves the same code). For SageMaker
it runs on the scikit-learn framework container, which imports ``code/inference.py`` from the
model archive (``SAGEMAKER_PROGRAM`` / ``SAGEMAKER_SUBMIT_DIRECTORY``). The archive is built
at synth time, byte for byte reproducible, so the CDK asset hash only changes when the code
does.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

SKLEARN_IMAGE_REPOSITORY = "sagemaker-scikit-learn"
SKLEARN_IMAGE_TAG = "1.2-1-cpu-py3"
# ECR registry accounts of the sagemaker-scikit-learn 1.2-1 inference image, per commercial
# region, as the SageMaker Python SDK lists them (src/sagemaker/image_uri_config/sklearn.json).
SKLEARN_IMAGE_ACCOUNTS = {
    "af-south-1": "510948584623",
    "ap-east-1": "651117190479",
    "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698",
    "ap-northeast-3": "867004704886",
    "ap-south-1": "720646828776",
    "ap-south-2": "628508329040",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
    "ap-southeast-3": "951798379941",
    "ap-southeast-4": "106583098589",
    "ca-central-1": "341280168497",
    "eu-central-1": "492215442770",
    "eu-central-2": "680994064768",
    "eu-north-1": "662702820516",
    "eu-south-1": "978288397137",
    "eu-south-2": "104374241257",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-west-3": "659782779980",
    "me-central-1": "272398656194",
    "me-south-1": "801668240914",
    "sa-east-1": "737474898029",
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
}

ENTRY_POINT = "inference.py"
CODE_DIRECTORY = "code"
# The container's environment for a model archive that carries its own code.
CONTAINER_ENVIRONMENT = {
    "SAGEMAKER_PROGRAM": ENTRY_POINT,
    "SAGEMAKER_SUBMIT_DIRECTORY": f"/opt/ml/model/{CODE_DIRECTORY}",
}
PACKAGED_SUFFIXES = frozenset({".py", ".csv"})
# Fixed metadata for every archive member: 2020-01-01T00:00:00Z, root-owned, read-only.
_MEMBER_MTIME = 1577836800


class ModelPackageError(Exception):
    """The demo model's source folder cannot be packaged."""


def model_files(source_dir: Path) -> list[Path]:
    """The files that go into ``code/``: every .py and .csv file of the folder, sorted."""
    if not (source_dir / ENTRY_POINT).is_file():
        raise ModelPackageError(f"{source_dir / ENTRY_POINT} does not exist")
    return sorted(
        path for path in source_dir.iterdir() if path.is_file() and path.suffix in PACKAGED_SUFFIXES
    )


def archive_bytes(source_dir: Path) -> bytes:
    """A model.tar.gz whose bytes depend only on the files' names and contents."""
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        archive.addfile(_member(CODE_DIRECTORY, tarfile.DIRTYPE, 0, 0o755))
        for path in model_files(source_dir):
            content = path.read_bytes()
            member = _member(f"{CODE_DIRECTORY}/{path.name}", tarfile.REGTYPE, len(content), 0o644)
            archive.addfile(member, io.BytesIO(content))
    compressed = io.BytesIO()
    # filename="" and mtime=0 keep the gzip header free of the build's name and time
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0) as stream:
        stream.write(tar_buffer.getvalue())
    return compressed.getvalue()


def _member(name: str, kind: bytes, size: int, mode: int) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.size = size
    member.mode = mode
    member.mtime = _MEMBER_MTIME
    member.uid = member.gid = 0
    member.uname = member.gname = "root"
    return member


def build_model_archive(source_dir: Path, build_dir: Path) -> Path:
    """Write ``model.tar.gz`` into ``build_dir`` (rewritten only when its bytes change)."""
    data = archive_bytes(source_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    archive = build_dir / "model.tar.gz"
    if not archive.is_file() or archive.read_bytes() != data:
        archive.write_bytes(data)
    return archive
