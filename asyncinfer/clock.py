"""The CLI's and the benchmarks' one clock: timezone-aware UTC, as every record timestamp is."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
