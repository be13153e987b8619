"""How failures reach the user: one line on stderr, an exit code, never a traceback.

Exit codes follow the AWS CLI's: 252 for invalid arguments, 253 for a bad environment
(credentials, region, profile, no target), 254 when a service answered with an error (stack,
table, bucket, queue or record not found), 255 for anything else botocore raises. 1 and 2 are
the outcome of the work itself (something failed, a wait timed out).
"""

from __future__ import annotations

from enum import IntEnum
from typing import IO, Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

# Typer (0.26+) vendors Click and exposes its exception types only there.
from typer._click.exceptions import ClickException, UsageError
from typer._click.utils import echo

PROGRAM = "asyncinfer"


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # an upload, an inference or a redrive failed
    TIMED_OUT = 2  # `submit --wait` gave up with inferences still in flight
    USAGE = 252
    ENVIRONMENT = 253
    SERVICE = 254
    OTHER = 255


class CliError(ClickException):
    """An error the user can act on; shown as one line, no traceback."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.SERVICE) -> None:
        super().__init__(" ".join(message.split()))
        self.exit_code = int(exit_code)

    def show(self, file: IO[Any] | None = None) -> None:
        echo(f"{PROGRAM}: error: {self.format_message()}", err=file is None, file=file)


class AwsCallError(Exception):
    """A botocore failure together with the resource it was about (``table results``)."""

    def __init__(self, resource: str, cause: ClientError | BotoCoreError) -> None:
        super().__init__(f"{resource}: {cause}")
        self.resource = resource
        self.cause = cause


_NOT_FOUND_CODES = frozenset(
    {
        "ResourceNotFoundException",  # DynamoDB table
        "NoSuchBucket",
        "NoSuchKey",
        "NoSuchVersion",
        "404",  # HeadObject and friends carry no body, so no code
        "NotFound",  # SNS topic
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    }
)
_CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)


_ENVIRONMENT_ERRORS: tuple[tuple[type[BotoCoreError], str | None], ...] = (
    (
        NoCredentialsError,
        'Unable to locate credentials. You can configure credentials by running "aws configure", '
        "or set AWS_PROFILE.",
    ),
    (PartialCredentialsError, None),
    (NoRegionError, "You must specify a region: pass --region or set AWS_REGION."),
    (ProfileNotFound, None),
)


def cli_error_for(error: BaseException, resource: str | None = None) -> CliError:
    """The one mapping from botocore's exceptions to what the user reads."""
    if isinstance(error, AwsCallError):
        return cli_error_for(error.cause, error.resource)
    if isinstance(error, ClientError):
        return _service_error(error, resource)
    for error_type, message in _ENVIRONMENT_ERRORS:
        if isinstance(error, error_type):
            return CliError(message or str(error), ExitCode.ENVIRONMENT)
    if isinstance(error, BotoCoreError):  # connection failures, timeouts, bad parameters
        return CliError(str(error), ExitCode.OTHER)
    raise TypeError(f"not a botocore error: {error!r}")


def _service_error(error: ClientError, resource: str | None) -> CliError:
    code = str(error.response.get("Error", {}).get("Code", ""))
    if code in _NOT_FOUND_CODES and resource:
        return CliError(f"{resource} not found ({code})", ExitCode.SERVICE)
    if code in _CREDENTIAL_CODES:
        return CliError(f"{error} (check your credentials)", ExitCode.ENVIRONMENT)
    suffix = f" [{resource}]" if resource else ""
    return CliError(f"{error}{suffix}", ExitCode.SERVICE)


def usage_error(error: UsageError) -> CliError:
    """Click's multi-line usage report, folded into the AWS CLI's one-line form."""
    hint = f" (see '{error.ctx.command_path} --help')" if error.ctx is not None else ""
    return CliError(f"{error.format_message()}{hint}", ExitCode.USAGE)
