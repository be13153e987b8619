"""What the Lambda service gives a function: its ARN, its environment, a fresh trace header
per invocation and the context object its handler receives."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from typing import Any

from asyncinfer.local.constants import ACCOUNT_ID
from asyncinfer.local.lambda_runner.log_levels import (
    JSON_FORMAT,
    LOG_FORMAT_VARIABLE,
    LOG_LEVEL_VARIABLE,
)
from asyncinfer.local.provision.spec import FunctionSpec

FUNCTION_VERSION = "$LATEST"


class LambdaContext:
    """The context object the Python runtime passes to handlers (same attributes and types)."""

    def __init__(
        self,
        *,
        aws_request_id: str,
        deadline_epoch_ms: int,
        function_name: str,
        memory_limit_in_mb: str,
        invoked_function_arn: str,
        log_group_name: str,
        log_stream_name: str,
    ) -> None:
        self.aws_request_id = aws_request_id
        self.function_name = function_name
        self.function_version = FUNCTION_VERSION
        # The runtime reads it from AWS_LAMBDA_FUNCTION_MEMORY_SIZE, so it is a string there too.
        self.memory_limit_in_mb = memory_limit_in_mb
        self.invoked_function_arn = invoked_function_arn
        self.log_group_name = log_group_name
        self.log_stream_name = log_stream_name
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline_epoch_ms = deadline_epoch_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_epoch_ms - int(time.time() * 1000), 0)


def function_arn(region: str, function_name: str) -> str:
    return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name}"


def trace_header() -> str:
    """A fresh X-Ray trace header, as Lambda sets ``_X_AMZN_TRACE_ID`` per invocation."""
    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled=0"


def lambda_environment(
    function: FunctionSpec, base_environment: Mapping[str, str], region: str
) -> dict[str, str]:
    """The environment a worker runs with: what Lambda's runtime sets, and nothing of ours.

    Order (later wins): process basics, the caller's base environment (endpoints, fake
    credentials), the function's own variables, then the variables Lambda reserves.
    """
    environment = {
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        # Lambda has no ~/.aws: keep the user's profiles and config out of the handlers.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    environment.update(base_environment)
    environment.update(function.environment)
    environment.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": FUNCTION_VERSION,
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "_HANDLER": function.handler,
            # There is no X-Ray daemon locally: an enabled tracer would only log send errors.
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )
    if function.filtered_at is not None:
        # What Lambda sets with the JSON format: the runtime's root logger and Powertools
        # take their level from it, and the worker filters by it as Lambda does.
        environment[LOG_FORMAT_VARIABLE] = JSON_FORMAT
        environment[LOG_LEVEL_VARIABLE] = function.filtered_at
    return environment
