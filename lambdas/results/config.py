"""The results function's settings: read from the environment once, validated, then passed down.

Each field's alias is its environment variable (``lambdas.common.contract.Env``); see
``lambdas.common.environment`` for how they are loaded.
"""

from __future__ import annotations

from pydantic import Field

from lambdas.common.contract import INLINE_RESULT_CAP_BYTES, Env, Service
from lambdas.common.environment import EnvironmentSettings


class ResultsConfig(EnvironmentSettings):
    """``INLINE_RESULT_MAX_BYTES`` limits reads of output objects from S3 (0 = never read). Above
    64 KiB it is rejected rather than silently clamped: the stored form of a result never
    exceeds that cap, so a larger read limit could only waste reads. A response body that
    SageMaker includes in the notification costs no read and is kept up to the same cap.
    """

    function = Service.RESULTS

    table_name: str = Field(alias=Env.TABLE_NAME, min_length=1)
    endpoint_name: str = Field(alias=Env.ENDPOINT_NAME, min_length=1)
    retention_days: int = Field(default=90, alias=Env.RETENTION_DAYS, ge=0)
    inline_result_max_bytes: int = Field(
        default=16384, alias=Env.INLINE_RESULT_MAX_BYTES, ge=0, le=INLINE_RESULT_CAP_BYTES
    )
