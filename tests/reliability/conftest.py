"""Prints the suite's summary line at the end of the run, with or without ``-s``."""

from __future__ import annotations

import pytest

from tests.reliability.support import SUMMARY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARY.files:
        terminalreporter.write_line(SUMMARY.line())
