"""The ingest function's settings: read from the environment once, validated, then passed down.

Each field's alias is its environment variable (``lambdas.common.contract.Env``); list and
mapping variables are JSON. See ``lambdas.common.environment`` for how they are loaded.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from lambdas.common.contract import (
    INLINE_INPUT_CAP_BYTES,
    INVOCATION_TIMEOUT_SECONDS_DEFAULT,
    INVOCATION_TIMEOUT_SECONDS_MAX,
    INVOCATION_TIMEOUT_SECONDS_MIN,
    MAX_INPUT_BYTES,
    REQUEST_TTL_SECONDS_DEFAULT,
    REQUEST_TTL_SECONDS_MAX,
    REQUEST_TTL_SECONDS_MIN,
    TRACE_ID_ATTRIBUTE,
    USER_METADATA_PREFIX,
    Env,
    OutputNaming,
    Service,
)
from lambdas.common.environment import EnvironmentSettings, JsonList, JsonObject

NonEmpty = Annotated[str, Field(min_length=1)]
Names = Annotated[tuple[NonEmpty, ...], JsonList]


class IngestConfig(EnvironmentSettings):
    function = Service.INGEST

    table_name: NonEmpty = Field(alias=Env.TABLE_NAME)
    endpoint_name: NonEmpty = Field(alias=Env.ENDPOINT_NAME)
    input_bucket: NonEmpty = Field(alias=Env.INPUT_BUCKET)
    key_prefixes: Names = Field(default=(), alias=Env.KEY_PREFIXES)
    key_suffixes: Names = Field(default=(), alias=Env.KEY_SUFFIXES)
    # objects under it are a job's manifests, never inputs ("": the stack has no jobs)
    jobs_prefix: str = Field(default="", alias=Env.JOBS_PREFIX)
    # set when this function's own S3 notification covers the manifests: it forwards them there
    jobs_queue_url: str = Field(default="", alias=Env.JOBS_QUEUE_URL)
    accept: NonEmpty = Field(default="application/json", alias=Env.ACCEPT)
    default_content_type: NonEmpty = Field(
        default="application/octet-stream", alias=Env.DEFAULT_CONTENT_TYPE
    )
    content_type_map: Annotated[dict[NonEmpty, NonEmpty], JsonObject] = Field(
        default_factory=dict, alias=Env.CONTENT_TYPE_MAP
    )
    custom_attributes: Annotated[dict[NonEmpty, str], JsonObject] = Field(
        default_factory=dict, alias=Env.CUSTOM_ATTRIBUTES
    )
    metadata_attributes: Names = Field(default=(), alias=Env.METADATA_ATTRIBUTES)
    # The API's own limits (InvokeEndpointAsync): enforced here so a bad value fails at startup.
    invocation_timeout_seconds: int = Field(
        default=INVOCATION_TIMEOUT_SECONDS_DEFAULT,
        ge=INVOCATION_TIMEOUT_SECONDS_MIN,
        le=INVOCATION_TIMEOUT_SECONDS_MAX,
        alias=Env.INVOCATION_TIMEOUT_SECONDS,
    )
    request_ttl_seconds: int = Field(
        default=REQUEST_TTL_SECONDS_DEFAULT,
        ge=REQUEST_TTL_SECONDS_MIN,
        le=REQUEST_TTL_SECONDS_MAX,
        alias=Env.REQUEST_TTL_SECONDS,
    )
    max_input_bytes: int = Field(
        default=MAX_INPUT_BYTES, ge=1, le=MAX_INPUT_BYTES, alias=Env.MAX_INPUT_BYTES
    )
    submit_concurrency: int = Field(default=10, ge=1, le=100, alias=Env.SUBMIT_CONCURRENCY)
    # Where outputs land and which inputs go inline (README "Where outputs land, and exactly
    # the version that was uploaded"); the defaults are the stack's.
    output_naming: OutputNaming = Field(default=OutputNaming.INPUT, alias=Env.OUTPUT_NAMING)
    inline_input_max_bytes: int = Field(
        default=INLINE_INPUT_CAP_BYTES,
        ge=0,
        le=INLINE_INPUT_CAP_BYTES,
        alias=Env.INLINE_INPUT_MAX_BYTES,
    )
    retention_days: int = Field(default=90, ge=0, alias=Env.RETENTION_DAYS)

    @field_validator("content_type_map")
    @classmethod
    def _normalise_extensions(cls, mapping: dict[str, str]) -> dict[str, str]:
        """``.JSON`` and ``json`` name the same extension."""
        return {extension.lower().lstrip("."): mime for extension, mime in mapping.items()}

    @field_validator("metadata_attributes")
    @classmethod
    def _normalise_metadata_keys(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        """S3 returns user-metadata keys in lower case, without the ``x-amz-meta-`` prefix."""
        normalised = (key.lower().removeprefix(USER_METADATA_PREFIX) for key in keys)
        return tuple(dict.fromkeys(normalised))

    @model_validator(mode="after")
    def _attribute_names_are_unambiguous(self) -> IngestConfig:
        if TRACE_ID_ATTRIBUTE in self.custom_attributes:
            raise ValueError(f"CUSTOM_ATTRIBUTES: {TRACE_ID_ATTRIBUTE!r} is set by the function")
        if TRACE_ID_ATTRIBUTE in self.metadata_attributes:
            raise ValueError(f"METADATA_ATTRIBUTES: {TRACE_ID_ATTRIBUTE!r} is set by the function")
        clashes = sorted(set(self.custom_attributes) & set(self.metadata_attributes))
        if clashes:
            raise ValueError(
                f"METADATA_ATTRIBUTES: {clashes} are also keys of CUSTOM_ATTRIBUTES; "
                "each attribute name must come from one place"
            )
        return self
