"""The results-table record: one item per inference, shared by the ingest and results functions.

Status machine: ``PENDING -> SUBMITTED -> COMPLETED | FAILED`` (``PENDING -> FAILED`` for
inputs rejected at ingest). ``PENDING`` is the ingest function's claim on an object version:
it exists so that a crash between claiming and invoking is retried with the same inference
id, while a live claim stops a concurrent duplicate delivery from invoking twice.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lambdas.common.reasons import readable_reason

INFERENCE_ID_MAX_LENGTH = 64
UNVERSIONED = "null"  # the version id S3 reports for objects written while versioning was off


class Status(StrEnum):
    PENDING = "PENDING"
    SUBMITTED = "SUBMITTED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


TERMINAL_STATUSES = frozenset({Status.COMPLETED, Status.FAILED})


class FailureStage(StrEnum):
    INGEST = "ingest"
    INFERENCE = "inference"
    EXPIRED = "expired"  # no outcome arrived before its deadline: set by the reconciler


def inference_id_for(bucket: str, key: str, version_id: str | None, etag: str | None) -> str:
    """The deterministic inference id of one object version.

    ``sha256("s3://{bucket}/{key}?versionId={version_id}")`` as 64 lowercase hex characters,
    with the key decoded (as stored in S3, not URL-encoded). When the object has no version id
    (unversioned bucket, or version id ``null``), ``?etag={etag}`` with the ETag unquoted
    replaces the version part. Clients can compute it from an upload's response.
    """
    if version_id and version_id != UNVERSIONED:
        identity = f"s3://{bucket}/{key}?versionId={version_id}"
    elif etag:
        identity = f"s3://{bucket}/{key}?etag={etag.strip(chr(34))}"
    else:
        raise ValueError(f"s3://{bucket}/{key} has neither a version id nor an ETag")
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()


def expiry_epoch(now: datetime, retention_days: int) -> int | None:
    """The TTL attribute value; ``None`` when retention is 0 (keep forever)."""
    if retention_days <= 0:
        return None
    return int((now + timedelta(days=retention_days)).timestamp())


class InferenceRecord(BaseModel):
    """The stored item. Attribute names are the record contract (snake_case).

    Its schema is built on first use, not at import (``defer_build``): a handler's cold import
    need not pay for it (bench/RESULTS.md, cold imports). Code that first uses it from several
    threads at once builds it beforehand (``model_rebuild()``), as the ingest handler does.
    """

    model_config = ConfigDict(extra="ignore", use_enum_values=True, defer_build=True)

    inference_id: str = Field(min_length=1, max_length=INFERENCE_ID_MAX_LENGTH)
    status: Status
    input_location: str | None = None
    input_bucket: str | None = None
    input_key: str | None = None
    input_version: str | None = None
    input_size: int | None = None
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    endpoint_name: str | None = None
    output_location: str | None = None
    failure_location: str | None = None
    failure_reason: str | None = None
    failure_stage: FailureStage | None = None
    created_at: str | None = None
    submitted_at: str | None = None
    received_at: str | None = None
    completed_at: str | None = None
    latency_ms: int | None = None
    response_content_type: str | None = None
    result: str | None = None
    result_encoding: str | None = None
    updated_at: str | None = None
    expires_at: int | None = None

    @field_validator("failure_reason")
    @classmethod
    def _readable_reason(cls, reason: str | None) -> str | None:
        """Bounded and readable, whatever the model answered (lambdas/common/reasons.py)."""
        return None if reason is None else readable_reason(reason)

    def attributes(self) -> dict[str, Any]:
        """Plain values of the attributes that are set (DynamoDB stores no nulls here)."""
        return self.model_dump(exclude_none=True, mode="json")
