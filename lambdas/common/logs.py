"""The functions' Powertools Logger: what a log line carries, and in what form.

CloudWatch Logs bills every byte ingested, and a function's log group already says which
function, version and memory size wrote a line (one group per function). So the keys Powertools
would repeat on every line are left out: ``function_name``, ``function_arn``,
``function_memory_size``, ``service`` (the function, again) and ``cold_start`` (Lambda's own
``Init Duration``). What stays: level, location, message, timestamp, the X-Ray trace id, the
request id (``function_request_id``) and whatever a line adds (``inference_id`` and
``correlation_id`` for one file's lines).

Timestamps are RFC 3339: Lambda's log-level filtering (JSON log format) honours a line's
``level`` only when its ``timestamp`` is valid RFC 3339, and files any other line as INFO.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

# What the log group and Lambda's own metrics already say for every line.
REDUNDANT_KEYS = frozenset(
    {"function_name", "function_arn", "function_memory_size", "service", "cold_start"}
)


class LeanFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter, deaf to the keys CloudWatch already knows.

    ``Logger`` sets ``service`` on every (re)structuring and ``inject_lambda_context`` appends
    the function's context on every invocation, both through ``append_keys``: filtering there
    keeps Powertools' decorator (state clearing, request id) as it is.
    """

    def append_keys(self, **additional_keys: object) -> None:
        kept = {key: value for key, value in additional_keys.items() if key not in REDUNDANT_KEYS}
        super().append_keys(**kept)


def function_logger() -> Logger:
    """The Logger a function's handler module creates once (level from the environment:
    Lambda's ``AWS_LAMBDA_LOG_LEVEL``, else ``POWERTOOLS_LOG_LEVEL``)."""
    return Logger(logger_formatter=LeanFormatter(use_rfc3339=True, utc=True))
