"""Data access for ``reconcile``/``backfill``: the input bucket's object versions.

ListObjectVersions, paginated (1,000 per page), current and noncurrent versions; delete markers
are not objects and are left out. An unversioned bucket lists each object once, with version
id ``null``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from asyncinfer.cli.access.clients import calling
from lambdas.common.records import inference_id_for

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


@dataclass(frozen=True)
class ObjectVersion:
    bucket: str
    key: str
    version_id: str
    etag: str
    size: int
    last_modified: datetime
    is_latest: bool = True

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def inference_id(self) -> str:
        return inference_id_for(self.bucket, self.key, self.version_id, self.etag)


class BucketVersions:
    def __init__(self, client: S3Client) -> None:
        self._client = client

    def versions(self, bucket: str, prefix: str) -> Iterator[ObjectVersion]:
        """Every version under ``prefix``, in S3's order (by key, newest version first)."""
        paginator = self._client.get_paginator("list_object_versions")
        with calling(f"bucket {bucket}"):
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for version in page.get("Versions", []):
                    yield _version(bucket, dict(version))


def _version(bucket: str, version: dict[str, Any]) -> ObjectVersion:
    return ObjectVersion(
        bucket=bucket,
        key=version["Key"],
        version_id=version.get("VersionId") or "null",
        etag=str(version.get("ETag", "")).strip('"'),
        size=int(version.get("Size", 0)),
        last_modified=version["LastModified"],
        is_latest=bool(version.get("IsLatest", True)),
    )
