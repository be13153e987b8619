"""The jobs function's settings, read from the environment once (``lambdas.common.environment``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from lambdas.common.contract import JOBS_PREFIX_DEFAULT, Env, Service
from lambdas.common.environment import EnvironmentSettings, JsonList
from lambdas.jobs.logic import JobSettings

NonEmpty = Annotated[str, Field(min_length=1)]
Names = Annotated[tuple[NonEmpty, ...], JsonList]


class JobsConfig(EnvironmentSettings):
    function = Service.JOBS

    jobs_table: NonEmpty = Field(alias=Env.JOBS_TABLE)
    table_name: NonEmpty = Field(alias=Env.TABLE_NAME)
    input_bucket: NonEmpty = Field(alias=Env.INPUT_BUCKET)
    output_bucket: NonEmpty = Field(alias=Env.OUTPUT_BUCKET)
    jobs_prefix: NonEmpty = Field(default=JOBS_PREFIX_DEFAULT, alias=Env.JOBS_PREFIX)
    key_prefixes: Names = Field(default=(), alias=Env.KEY_PREFIXES)
    key_suffixes: Names = Field(default=(), alias=Env.KEY_SUFFIXES)
    job_deadline_seconds: int = Field(ge=1, alias=Env.JOB_DEADLINE_SECONDS)

    @property
    def settings(self) -> JobSettings:
        return JobSettings(
            input_bucket=self.input_bucket,
            output_bucket=self.output_bucket,
            jobs_prefix=self.jobs_prefix,
            key_prefixes=self.key_prefixes,
            key_suffixes=self.key_suffixes,
            deadline_seconds=self.job_deadline_seconds,
        )
