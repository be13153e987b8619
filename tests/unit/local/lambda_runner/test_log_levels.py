"""Lambda's log-level filtering as local mode and the benchmarks apply it."""

from __future__ import annotations

import io
import json
import threading

import pytest

from asyncinfer.local.lambda_runner.log_levels import (
    LevelFilteringStream,
    application_level,
    ingested_bytes,
    is_ingested,
    platform_lines_sent,
)
from asyncinfer.local.provision.spec import FunctionSpec

STAMP = "2026-11-30T10:00:00.123+00:00"


def line(level: str, timestamp: str = STAMP, **extra: object) -> str:
    return json.dumps({"level": level, "timestamp": timestamp, "message": "m", **extra})


@pytest.mark.parametrize(
    ("text", "kept_at_warn"),
    [
        (line("WARNING"), True),
        (line("warn"), True),
        (line("ERROR"), True),
        (line("CRITICAL"), True),
        (line("INFO"), False),
        (line("DEBUG"), False),
        # Lambda files these as INFO: no level, an unknown level, no or a bad timestamp, text
        ('{"_aws": {"CloudWatchMetrics": []}, "FilesSubmitted": [10.0]}', False),
        (line("SEVERE"), False),
        (json.dumps({"level": "ERROR", "message": "no timestamp"}), False),
        (line("ERROR", timestamp="2026-11-30 10:00:00,123+0000"), False),  # Powertools' default
        ("[ERROR] plain text", False),
        ("[1, 2]", False),
    ],
)
def test_a_line_has_the_level_lambda_gives_it(text: str, kept_at_warn: bool) -> None:
    assert is_ingested(text, "WARN") is kept_at_warn
    assert is_ingested(text, "INFO") is (kept_at_warn or "DEBUG" not in text)
    assert is_ingested(text, None)  # text format: nothing is filtered


def test_ingested_bytes_count_whole_lines_at_or_above_the_level() -> None:
    output = f"{line('DEBUG')}\n{line('INFO')}\nplain\n".encode()
    info, plain = len(line("INFO")) + 1, len("plain\n")
    assert ingested_bytes(output, "INFO") == info + plain
    assert ingested_bytes(output, "ERROR") == 0
    assert ingested_bytes(output, None) == len(output)


def test_the_level_comes_from_lambdas_variables_with_the_json_format_only() -> None:
    json_format = {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "DEBUG"}
    assert application_level(json_format) == "DEBUG"
    assert application_level({"AWS_LAMBDA_LOG_LEVEL": "DEBUG"}) is None
    assert FunctionSpec("f", "m.h", {}, 3, 128).filtered_at is None  # Lambda's defaults
    spec = FunctionSpec("f", "m.h", {}, 3, 128, log_format="JSON", application_log_level="WARN")
    assert spec.filtered_at == "WARN"


def test_lambdas_own_lines_are_sent_below_warn_only() -> None:
    assert platform_lines_sent("DEBUG")
    assert platform_lines_sent("INFO")
    assert not platform_lines_sent("WARN")


def test_the_filtering_stream_keeps_whole_lines_and_holds_partial_ones() -> None:
    target = io.StringIO()
    stream = LevelFilteringStream(target, "WARN")
    stream.write(line("ERROR")[:10])
    assert target.getvalue() == ""  # not a whole line yet
    stream.write(line("ERROR")[10:] + "\n" + line("INFO") + "\n")
    stream.write(line("WARN"))
    assert target.getvalue() == line("ERROR") + "\n"
    stream.close()  # a last line without its newline still goes out
    assert target.getvalue() == line("ERROR") + "\n" + line("WARN")


def test_the_filtering_stream_keeps_lines_whole_across_threads() -> None:
    target = io.StringIO()
    stream = LevelFilteringStream(target, "INFO")

    def write(index: int) -> None:
        for _ in range(50):
            stream.write(line("INFO", thread=index) + "\n")

    threads = [threading.Thread(target=write, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    written = target.getvalue().splitlines()
    assert len(written) == 200
    assert all(json.loads(text)["level"] == "INFO" for text in written)
