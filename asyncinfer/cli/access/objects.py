"""S3 objects for the CLI: uploads (multipart above a threshold) and downloads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from asyncinfer.cli.access.clients import calling
from lambdas.common.s3uri import split_s3_uri

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MULTIPART_THRESHOLD_BYTES = 64 * 1024 * 1024
MULTIPART_PART_BYTES = 16 * 1024 * 1024
DOWNLOAD_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class UploadedObject:
    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    size: int


class Objects:
    """Uploads to the input bucket and downloads of output and failure objects."""

    def __init__(
        self,
        client: S3Client,
        *,
        multipart_threshold: int = MULTIPART_THRESHOLD_BYTES,
        part_size: int = MULTIPART_PART_BYTES,
    ) -> None:
        self._client = client
        self._multipart_threshold = multipart_threshold
        self._part_size = part_size

    def upload(
        self,
        bucket: str,
        key: str,
        path: Path,
        *,
        content_type: str | None,
        metadata: Mapping[str, str],
    ) -> UploadedObject:
        """One object per file; the response's VersionId and ETag name the new version.

        Large files go up in parts (the managed ``upload_file`` returns no response, and the
        version id is what the inference id is made of).
        """
        size = path.stat().st_size
        extra: dict[str, Any] = {"Metadata": dict(metadata)}
        if content_type:
            extra["ContentType"] = content_type
        with calling(f"bucket {bucket}"):
            if size > self._multipart_threshold:
                version_id, etag = self._upload_in_parts(bucket, key, path, extra)
            else:
                with path.open("rb") as body:
                    response = self._client.put_object(Bucket=bucket, Key=key, Body=body, **extra)
                version_id, etag = response.get("VersionId"), response.get("ETag")
        return UploadedObject(bucket, key, version_id, etag, size)

    def _upload_in_parts(
        self, bucket: str, key: str, path: Path, extra: Mapping[str, Any]
    ) -> tuple[str | None, str | None]:
        upload_id = self._client.create_multipart_upload(Bucket=bucket, Key=key, **extra)[
            "UploadId"
        ]
        try:
            parts: list[CompletedPartTypeDef] = []
            with path.open("rb") as source:
                number = 1
                while chunk := source.read(self._part_size):
                    part = self._client.upload_part(
                        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
                    )
                    parts.append({"ETag": part["ETag"], "PartNumber": number})
                    number += 1
            response = self._client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            self._client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise
        return response.get("VersionId"), response.get("ETag")

    def download(self, location: str, sink: IO[bytes]) -> int:
        bucket, key = split_s3_uri(location)
        written = 0
        with calling(f"object {location}"):
            body = self._client.get_object(Bucket=bucket, Key=key)["Body"]
            for chunk in body.iter_chunks(DOWNLOAD_CHUNK_BYTES):
                sink.write(chunk)
                written += len(chunk)
        return written
