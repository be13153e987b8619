"""Lambda's log-level filtering, as AWS documents it ("Log-level filtering", Lambda Developer
Guide), for local mode's workers and for the benchmarks' count of ingested log bytes.

With the JSON log format Lambda reads each line the function writes: a JSON object whose
``level`` is valid, with a valid RFC 3339 ``timestamp``, has that level; any other line (text,
a JSON object without a level such as an embedded-metric-format document, or with an invalid
timestamp) is INFO. Lines below the function's application log level never reach CloudWatch
Logs. With the text format nothing is filtered. Lambda's own per-invocation lines (start, end,
report) are sent at system log level DEBUG and INFO, not at WARN.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Mapping
from typing import TextIO

JSON_FORMAT = "JSON"
LOG_FORMAT_VARIABLE = "AWS_LAMBDA_LOG_FORMAT"
LOG_LEVEL_VARIABLE = "AWS_LAMBDA_LOG_LEVEL"

_RANKS = {
    "TRACE": 0,
    "DEBUG": 1,
    "INFO": 2,
    "WARN": 3,
    "WARNING": 3,
    "ERROR": 4,
    "FATAL": 5,
    "CRITICAL": 5,
}
_INFO = _RANKS["INFO"]
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
# Python's logging names for the application levels, as the runtime maps them for the root
# logger (TRACE has no Python level: everything passes).
PYTHON_LEVELS = {
    "TRACE": "NOTSET",
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "WARN": "WARNING",
    "ERROR": "ERROR",
    "FATAL": "CRITICAL",
}


def line_rank(line: str) -> int:
    """The level Lambda gives one line of output, as a rank (higher is more severe)."""
    text = line.strip()
    if not text.startswith("{"):
        return _INFO
    try:
        document = json.loads(text)
    except ValueError:
        return _INFO
    if not isinstance(document, dict):
        return _INFO
    level, timestamp = document.get("level"), document.get("timestamp")
    if not isinstance(level, str) or not isinstance(timestamp, str):
        return _INFO
    if not _RFC3339.match(timestamp):
        return _INFO
    return _RANKS.get(level.upper(), _INFO)


def application_level(environment: Mapping[str, str]) -> str | None:
    """The application log level Lambda filters by, from the variables it sets for the
    function; None when it filters nothing (text format)."""
    if environment.get(LOG_FORMAT_VARIABLE, "").upper() != JSON_FORMAT:
        return None
    return environment.get(LOG_LEVEL_VARIABLE, "INFO").upper()


def is_ingested(line: str, level: str | None) -> bool:
    return level is None or line_rank(line) >= _RANKS[level]


def ingested_bytes(output: bytes, level: str | None) -> int:
    """How many of ``output``'s bytes (whole lines, newlines included) Lambda would send."""
    if level is None:
        return len(output)
    return sum(
        len(line)
        for line in output.splitlines(keepends=True)
        if is_ingested(line.decode("utf-8", errors="replace"), level)
    )


def platform_lines_sent(system_level: str) -> bool:
    """Whether Lambda sends its start, end and report lines at this system log level."""
    return _RANKS[system_level.upper()] <= _INFO


class LevelFilteringStream(io.TextIOBase):
    """A text stream that passes on only the whole lines Lambda would keep at ``level``."""

    def __init__(self, target: TextIO, level: str) -> None:
        super().__init__()
        self._target = target
        self._level = level
        self._pending = ""
        # The ingest handler logs from its submission threads.
        self._lock = threading.Lock()

    @property
    def encoding(self) -> str:  # type: ignore[override]  # typeshed: an attribute
        return self._target.encoding

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            *lines, self._pending = (self._pending + text).split("\n")
            kept = [line + "\n" for line in lines if is_ingested(line, self._level)]
            if kept:
                self._target.write("".join(kept))
                self._target.flush()
        return len(text)

    def close(self) -> None:
        with self._lock:
            if self._pending and is_ingested(self._pending, self._level):
                self._target.write(self._pending)
            self._pending = ""
        self.flush()
        super().close()

    def flush(self) -> None:
        self._target.flush()

    def fileno(self) -> int:
        return self._target.fileno()

    def isatty(self) -> bool:
        return False
