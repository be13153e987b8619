"""The results function's environment, validated once per container."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from lambdas.results.inline import INLINE_RESULT_CAP_BYTES


class ResultsConfig(BaseModel):
    """Environment variables of the results function (names as in CONVENTIONS.md).

    ``INLINE_RESULT_MAX_BYTES`` limits reads of output objects from S3 (0 = never read). Above
    64 KiB it is rejected rather than silently clamped: the stored form of a result never
    exceeds that cap, so a larger read limit could only waste reads. A response body that
    SageMaker includes in the notification costs no read and is kept up to the same cap.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    table_name: str = Field(alias="TABLE_NAME", min_length=1)
    endpoint_name: str = Field(alias="ENDPOINT_NAME", min_length=1)
    retention_days: int = Field(default=90, alias="RETENTION_DAYS", ge=0)
    inline_result_max_bytes: int = Field(
        default=16384, alias="INLINE_RESULT_MAX_BYTES", ge=0, le=INLINE_RESULT_CAP_BYTES
    )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ResultsConfig:
        return cls.model_validate(dict(environ))
