"""Which pipeline the CLI talks to: a deployed stack (``--stack``) or a running local mode.

A stack is described by its CloudFormation outputs; local mode by the state file it writes
while it runs (``.local/state.json``, folder overridable with ``ASYNCINFER_LOCAL_DIR``).
"""

from __future__ import annotations

import http.client
import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from asyncinfer.cli.access.clients import new_session
from asyncinfer.cli.access.stacks import stack_outputs
from asyncinfer.cli.errors import CliError, ExitCode
from lambdas.common.contract import DEFAULT_STACK_NAME, StackOutput

if TYPE_CHECKING:
    import boto3

LOCAL_DIR_ENV = "ASYNCINFER_LOCAL_DIR"
DEFAULT_LOCAL_DIR = ".local"
STATE_FILE_NAME = "state.json"
# Local mode's moto server accepts any credentials; these keep a real profile out of it.
LOCAL_ACCESS_KEY = "local"
LOCAL_SECRET_KEY = "local"  # noqa: S105 - a placeholder, moto checks nothing
ENDPOINT_PROBE_TIMEOUT_SECONDS = 2.0


class TargetKind(StrEnum):
    STACK = "stack"
    LOCAL = "local"


@dataclass(frozen=True)
class GlobalOptions:
    """The AWS-CLI-style options every command shares."""

    region: str | None = None
    profile: str | None = None
    stack: str | None = None
    endpoint_url: str | None = None
    local_dir: Path = Path(DEFAULT_LOCAL_DIR)


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    name: str  # the stack name, or the local state file
    region: str
    outputs: Mapping[str, str]
    endpoint_url: str | None = None
    profile: str | None = None
    static_credentials: tuple[str, str] | None = field(default=None, repr=False)

    def output(self, key: str) -> str:
        value = self.outputs.get(key)
        if not value:
            where = f"stack {self.name}" if self.kind is TargetKind.STACK else self.name
            raise CliError(f"{where} has no output {key}", ExitCode.SERVICE)
        return value

    def optional_output(self, key: str) -> str | None:
        return self.outputs.get(key) or None

    def describe(self) -> str:
        if self.kind is TargetKind.LOCAL:
            return f"target: local mode at {self.endpoint_url} ({self.name})"
        via = f", endpoint {self.endpoint_url}" if self.endpoint_url else ""
        profile = f", profile {self.profile}" if self.profile else ""
        return f"target: stack {self.name} in {self.region}{profile}{via}"

    def model_log(self, endpoint_name: str | None) -> str:
        """Where the model's own messages are: SageMaker copies the container's answer into
        ``failureReason``, and the demo image's answer to any error is a generic HTML 500 page
        (DESIGN "Model container contract"); the reason itself is only in the log."""
        if self.kind is TargetKind.LOCAL:
            return str(Path(self.name).parent / "logs" / "model.log")
        endpoint = endpoint_name or self.optional_output(StackOutput.ENDPOINT_NAME) or "<endpoint>"
        return f"CloudWatch log group /aws/sagemaker/Endpoints/{endpoint} ({self.region})"

    def session(self) -> boto3.Session:
        return new_session(
            profile=self.profile, region=self.region, static_credentials=self.static_credentials
        )


# what the `local` extra installs that local mode imports (pyproject.toml)
LOCAL_EXTRA_MODULES = ("moto", "aws_cdk", "sklearn")


def local_extra_missing() -> list[str]:
    """The modules of the ``local`` extra this installation lacks (none in a clone's .venv)."""
    return [name for name in LOCAL_EXTRA_MODULES if importlib.util.find_spec(name) is None]


def local_mode_hint() -> str:
    """How to start local mode from here, or why it cannot start."""
    if local_extra_missing():
        return (
            "local mode needs the 'local' extra, which this installation lacks "
            "(in a clone: make setup, then .venv/bin/asyncinfer local up)"
        )
    return "start local mode with 'asyncinfer local up' (in a clone: .venv/bin/asyncinfer)"


def discover(options: GlobalOptions) -> Target:
    """``--stack`` wins; otherwise a live local mode; otherwise a clear error."""
    if options.stack:
        return stack_target(options, options.stack)
    state_file = options.local_dir / STATE_FILE_NAME
    if state_file.exists():
        return local_target(options, state_file)
    raise CliError(
        f"no target: pass --stack NAME (or set ASYNCINFER_STACK; the default stack is "
        f"{DEFAULT_STACK_NAME}) for a deployed stack, or {local_mode_hint()} "
        f"(no {state_file} found)",
        ExitCode.ENVIRONMENT,
    )


def stack_target(options: GlobalOptions, stack_name: str) -> Target:
    session = new_session(profile=options.profile, region=options.region)
    region = session.region_name
    if not region:
        raise CliError(
            "You must specify a region: pass --region or set AWS_REGION.", ExitCode.ENVIRONMENT
        )
    outputs = stack_outputs(session, stack_name, region, options.endpoint_url)
    return Target(
        kind=TargetKind.STACK,
        name=stack_name,
        region=region,
        outputs=outputs,
        endpoint_url=options.endpoint_url,
        profile=options.profile,
    )


class LocalState(BaseModel):
    """The part of local mode's ``state.json`` the CLI relies on."""

    model_config = ConfigDict(extra="ignore")

    region: str = "us-east-1"
    aws_endpoint_url: str = Field(min_length=1)
    pid: int
    outputs: dict[str, str] = Field(default_factory=dict)


def local_target(options: GlobalOptions, state_file: Path) -> Target:
    state = read_state(state_file)
    endpoint = options.endpoint_url or state.aws_endpoint_url
    not_running = f"local mode is not running (stale state file {state_file}"
    start_hint = f"{local_mode_hint()}, or pass --stack NAME"
    if not process_alive(state.pid):
        raise CliError(
            f"{not_running}: process {state.pid} is gone); {start_hint}", ExitCode.ENVIRONMENT
        )
    if not endpoint_answers(endpoint):
        raise CliError(
            f"{not_running}: {endpoint} does not answer); {start_hint}", ExitCode.ENVIRONMENT
        )
    return Target(
        kind=TargetKind.LOCAL,
        name=str(state_file),
        region=state.region,
        outputs=state.outputs,
        endpoint_url=endpoint,
        static_credentials=(LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY),
    )


def read_state(state_file: Path) -> LocalState:
    try:
        return LocalState.model_validate_json(state_file.read_bytes())
    except OSError as error:
        raise CliError(
            f"cannot read local mode state file {state_file}: {error.strerror}",
            ExitCode.ENVIRONMENT,
        ) from error
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc']) or 'file'}: {issue['msg']}"
            for issue in error.errors()
        )
        raise CliError(
            f"invalid local mode state file {state_file}: {problems}", ExitCode.ENVIRONMENT
        ) from error


def process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def endpoint_answers(url: str, timeout: float = ENDPOINT_PROBE_TIMEOUT_SECONDS) -> bool:
    """Any HTTP answer counts: the point is that a server listens there."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    connection_type = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_type(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return True


def local_dir_from_env() -> Path:
    return Path(os.environ.get(LOCAL_DIR_ENV) or DEFAULT_LOCAL_DIR)
