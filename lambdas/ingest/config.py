"""The ingest function's settings: read from the environment once, validated, then passed down.

Every setting is an environment variable named like the field in upper case (``TABLE_NAME``,
``KEY_PREFIXES``, ...). List and mapping settings are JSON. An invalid value stops the
function at its first invocation with an error that names the variable, instead of failing
object by object later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ONE_GIB = 1024**3
TRACE_ID_ATTRIBUTE = "trace_id"  # the custom attribute the function adds itself
USER_METADATA_PREFIX = "x-amz-meta-"

NonEmpty = Annotated[str, Field(min_length=1)]


class ConfigError(ValueError):
    """The environment does not describe a valid ingest function."""


class IngestConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    table_name: NonEmpty
    endpoint_name: NonEmpty
    input_bucket: NonEmpty
    key_prefixes: tuple[NonEmpty, ...] = ()
    key_suffixes: tuple[NonEmpty, ...] = ()
    accept: NonEmpty = "application/json"
    default_content_type: NonEmpty = "application/octet-stream"
    content_type_map: dict[NonEmpty, NonEmpty] = Field(default_factory=dict)
    custom_attributes: dict[NonEmpty, str] = Field(default_factory=dict)
    metadata_attributes: tuple[NonEmpty, ...] = ()
    # The API's own limits (InvokeEndpointAsync): enforced here so a bad value fails at startup.
    invocation_timeout_seconds: int = Field(default=900, ge=1, le=3600)
    request_ttl_seconds: int = Field(default=21600, ge=60, le=21600)
    max_input_bytes: int = Field(default=ONE_GIB, ge=1, le=ONE_GIB)
    submit_concurrency: int = Field(default=10, ge=1, le=100)
    retention_days: int = Field(default=90, ge=0)

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


# Variables whose value is JSON, and the JSON type each must have.
_JSON_VARIABLES: dict[str, type] = {
    "KEY_PREFIXES": list,
    "KEY_SUFFIXES": list,
    "CONTENT_TYPE_MAP": dict,
    "CUSTOM_ATTRIBUTES": dict,
    "METADATA_ATTRIBUTES": list,
}


def _variable(field: str) -> str:
    return field.upper()


def load_config(environ: Mapping[str, str]) -> IngestConfig:
    """Build the config from environment variables; raise ConfigError naming each bad one."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for field in IngestConfig.model_fields:
        variable = _variable(field)
        raw = environ.get(variable)
        if raw is None:
            continue
        if variable not in _JSON_VARIABLES:
            values[field] = raw
            continue
        expected = _JSON_VARIABLES[variable]
        try:
            decoded = json.loads(raw)
        except json.JSONDecodeError as error:
            problems.append(f"{variable}: not valid JSON ({error.msg}): {raw!r}")
            continue
        if not isinstance(decoded, expected):
            kind = "a JSON list" if expected is list else "a JSON object"
            problems.append(f"{variable}: must be {kind}, got {raw!r}")
            continue
        values[field] = decoded
    if not problems:
        try:
            return IngestConfig.model_validate(values)
        except ValidationError as error:
            problems.extend(_describe(error, environ))
    raise ConfigError("invalid ingest configuration: " + "; ".join(problems))


def _describe(error: ValidationError, environ: Mapping[str, str]) -> list[str]:
    described = []
    for detail in error.errors():
        location = detail["loc"]
        if not location:
            described.append(detail["msg"].removeprefix("Value error, "))
            continue
        variable = _variable(str(location[0]))
        where = "".join(f"[{part!r}]" for part in location[1:])
        given = environ.get(variable)
        suffix = f" (got {given!r})" if given is not None else " (not set)"
        described.append(f"{variable}{where}: {detail['msg']}{suffix}")
    return described
