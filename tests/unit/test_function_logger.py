"""The functions' logger: the keys a line carries, its timestamps, and its level on Lambda."""

from __future__ import annotations

import io
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from asyncinfer.local.lambda_runner.log_levels import is_ingested
from lambdas.common.logs import REDUNDANT_KEYS, function_logger


@dataclass(frozen=True)
class Context:
    function_name: str = "ingest"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ingest"
    aws_request_id: str = "52fdfc07-2182-454f-963f-5f0f9a621d72"


def logged_lines(monkeypatch: pytest.MonkeyPatch, level: str | None = None) -> list[dict[str, Any]]:
    """One invocation of a handler that logs at every level, through a fresh logger (its own
    service name: Powertools keeps one logging.Logger per name)."""
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"probe-{uuid.uuid4().hex[:8]}")
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    if level is not None:  # what Lambda sets with the JSON log format
        monkeypatch.setenv("AWS_LAMBDA_LOG_FORMAT", "JSON")
        monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", level)
        monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", level)
    logger = function_logger()
    stream = io.StringIO()
    sink = logging.StreamHandler(stream)
    sink.setFormatter(logger.registered_formatter)
    logging.getLogger(logger.name).addHandler(sink)

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: Context) -> None:
        logger.debug("per file")
        with logger.append_context_keys(inference_id="ab" * 32, correlation_id="ab" * 32):
            logger.warning("off the happy path", extra={"reason": "why"})

    try:
        handler({}, Context())
    finally:
        logging.getLogger(logger.name).removeHandler(sink)
    return [json.loads(text) for text in stream.getvalue().splitlines()]


def test_a_line_carries_the_request_and_the_file_not_what_the_log_group_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    [line] = logged_lines(monkeypatch)  # INFO by default: the DEBUG line is not written
    assert set(line) == {
        "level",
        "location",
        "message",
        "timestamp",
        "function_request_id",
        "inference_id",
        "correlation_id",
        "reason",
    }
    assert line["function_request_id"] == Context().aws_request_id
    assert line["inference_id"] == line["correlation_id"]
    assert not REDUNDANT_KEYS & set(line)


def test_lambda_reads_the_level_of_every_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 3339 timestamps: otherwise Lambda would file a WARNING line as INFO."""
    debug, warning = logged_lines(monkeypatch, level="DEBUG")
    assert debug["message"] == "per file"
    assert debug["timestamp"].endswith("+00:00")
    assert not is_ingested(json.dumps(debug), "INFO")
    assert is_ingested(json.dumps(warning), "WARN")
    assert not is_ingested(json.dumps(warning), "ERROR")
