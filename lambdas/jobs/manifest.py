"""A job's manifest: SageMaker's ``ManifestFile`` format, read and validated.

The format (``S3DataSource`` of a Batch Transform job, ``S3DataType=ManifestFile``) is a JSON
array whose first element is ``{"prefix": "s3://<bucket>/<some prefix>/"}`` and whose other
elements are keys relative to that prefix::

    [{"prefix": "s3://my-input-bucket/batch-7/"}, "a.json", "b.json", "sub/c.json"]

Rules of this pipeline on top of SageMaker's (each breach fails the job with its reason):

* the prefix names the input bucket (a job only joins outputs of this pipeline's inputs);
* at least one key, at most ``JOB_MAX_ENTRIES`` (100,000): one invocation resolves them all
  (a HeadObject each, ``RESOLVE_CONCURRENCY`` at a time) within the function's timeout;
* keys are non-empty strings; a key may repeat (its line repeats in the results file).

A job's name is the manifest's key without ``jobs_prefix`` and ``.manifest.json``; it becomes
part of DynamoDB keys and S3 keys, so it is limited to ``JOB_NAME_PATTERN``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from lambdas.common.contract import JOB_MAX_ENTRIES, MANIFEST_SUFFIX
from lambdas.common.s3uri import S3_SCHEME

JOB_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class ManifestError(ValueError):
    """The manifest cannot start a job: the message is the job's failure reason."""


@dataclass(frozen=True)
class Manifest:
    bucket: str
    prefix: str  # the key prefix (may be empty)
    keys: tuple[str, ...]  # full object keys, in manifest order


def job_name(key: str, jobs_prefix: str) -> str | None:
    """The job a manifest key starts, or None when the key is not a manifest's."""
    if not key.startswith(jobs_prefix) or not key.endswith(MANIFEST_SUFFIX):
        return None
    name = key[len(jobs_prefix) : -len(MANIFEST_SUFFIX)]
    return name if JOB_NAME_PATTERN.fullmatch(name) else None


def parse_manifest(body: bytes, input_bucket: str, max_entries: int = JOB_MAX_ENTRIES) -> Manifest:
    """The manifest's keys in order; ``ManifestError`` says what is wrong."""
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ManifestError(f"the manifest is not JSON: {error}") from error
    if not isinstance(document, list) or not document:
        raise ManifestError('the manifest must be a JSON array: [{"prefix": ...}, key, ...]')
    header, *relative = document
    if not isinstance(header, dict) or not isinstance(header.get("prefix"), str):
        raise ManifestError('the first element must be {"prefix": "s3://<bucket>/<prefix>"}')
    bucket, prefix = _prefix(header["prefix"])
    if bucket != input_bucket:
        raise ManifestError(
            f"the prefix names bucket {bucket}, not the input bucket {input_bucket}"
        )
    if not relative:
        raise ManifestError("the manifest names no keys")
    if len(relative) > max_entries:
        raise ManifestError(f"the manifest names {len(relative)} keys; at most {max_entries}")
    bad = [index for index, key in enumerate(relative, start=1) if not _is_key(key)]
    if bad:
        raise ManifestError(f"elements {bad[:5]} are not non-empty key strings")
    return Manifest(bucket=bucket, prefix=prefix, keys=tuple(prefix + key for key in relative))


def _prefix(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> ``("bucket", "prefix")``; the prefix may be empty (a
    ``split_s3_uri`` location needs a key, a manifest's prefix does not)."""
    bucket, _, prefix = uri.removeprefix(S3_SCHEME).partition("/")
    if not uri.startswith(S3_SCHEME) or not bucket:
        raise ManifestError(f"the prefix {uri!r} is not an s3://bucket/prefix URI")
    return bucket, prefix


def _is_key(key: object) -> bool:
    return isinstance(key, str) and bool(key) and len(key.encode()) <= 1024
