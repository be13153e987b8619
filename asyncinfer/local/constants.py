"""What every part of local mode shares: the placeholder account and the clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

# moto's default account, so the ARNs local mode builds match the ones moto returns.
ACCOUNT_ID = "123456789012"

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def timestamp_millis(moment: datetime | None = None) -> str:
    """``2026-11-30T14:32:37.123Z``: the UTC timestamp with milliseconds Lambda writes."""
    return (moment or system_clock()).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
