"""How every function reads its settings: one pydantic model per function, fed the environment.

A settings field names its variable with an alias (``Field(alias=Env.TABLE_NAME)``), and
``from_environ`` validates ``dict(os.environ)`` in one call; variables the model does not name
are ignored. Variables holding lists or mappings are JSON, decoded by the ``JsonList`` and
``JsonObject`` validators before the field's own type is checked. Fields can also be set by
name, which is how tests build settings without an environment.

An invalid environment stops the function at its first invocation with a ``ConfigError`` that
names each bad variable and its value, instead of failing object by object later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError


class ConfigError(ValidationError):
    """The environment does not describe a valid function.

    Still pydantic's ``ValidationError`` (with its ``errors()``), but printed as one line that
    names each variable: a Lambda init error shows one line, not pydantic's indented report.
    """

    def __str__(self) -> str:
        return self.title


def _decoding(kind: type[list[Any]] | type[dict[str, Any]]) -> BeforeValidator:
    described = "a JSON list" if kind is list else "a JSON object"

    def decode(value: object) -> object:
        if not isinstance(value, str):  # set by name, already decoded
            return value
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"not valid JSON ({error.msg})") from error
        if not isinstance(decoded, kind):
            raise ValueError(f"must be {described}")
        return decoded

    return BeforeValidator(decode)


JsonList = _decoding(list)
JsonObject = _decoding(dict)


class EnvironmentSettings(BaseModel):
    """Base of each function's settings; ``function`` names it in error messages."""

    model_config = ConfigDict(frozen=True, extra="ignore", validate_by_name=True, defer_build=True)

    function: ClassVar[str]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Self:
        """The settings the environment describes; raises ``ConfigError`` naming each bad
        variable."""
        try:
            return cls.model_validate(dict(environ))
        except ValidationError as error:
            problems = "; ".join(_describe(error, environ))
            summary = f"invalid {cls.function} configuration: {problems}"
            # The reported errors are valid input for a new ValidationError; only their
            # declared type (ErrorDetails, not InitErrorDetails) differs.
            details: Any = error.errors()
            raise ConfigError.from_exception_data(summary, details) from error


def _describe(error: ValidationError, environ: Mapping[str, str]) -> list[str]:
    described = []
    for detail in error.errors():
        message = detail["msg"].removeprefix("Value error, ")
        location = detail["loc"]
        if not location:  # a rule across variables: its message names them
            described.append(message)
            continue
        variable = str(location[0])
        where = "".join(f"[{part!r}]" for part in location[1:])
        given = environ.get(variable)
        suffix = f" (got {given!r})" if given is not None else " (not set)"
        described.append(f"{variable}{where}: {message}{suffix}")
    return described
