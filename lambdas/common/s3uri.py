"""The one parser of ``s3://bucket/key`` locations: stack settings, functions, CLI and local mode.

Standard library only: it ships in every function's asset (``lambdas/common``).
"""

from __future__ import annotations

S3_SCHEME = "s3://"


def split_s3_uri(uri: str, *, key_optional: bool = False) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> ``("bucket", "some/key")``.

    Raises ``ValueError`` for another scheme, or when the bucket or the key is empty; with
    ``key_optional`` a bucket alone (``s3://bucket``, an output path) is ``("bucket", "")``.
    """
    if not uri.startswith(S3_SCHEME):
        raise ValueError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri.removeprefix(S3_SCHEME).partition("/")
    if not bucket or not (key or key_optional):
        raise ValueError(f"an s3:// URI needs a bucket and a key: {uri}")
    return bucket, key


def split_s3_location(location: str) -> tuple[str, str] | None:
    """``s3://bucket/key`` as ``(bucket, key)``; None for anything else (a location read from a
    notification or a record, where "not an object" is an answer rather than an error)."""
    try:
        return split_s3_uri(location)
    except ValueError:
        return None
