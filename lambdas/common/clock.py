"""The one clock and the one timestamp format: functions, CLI, local mode and bench.

Standard library only: it ships in every function's asset (``lambdas/common``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

# What takes a clock takes one of these, so tests inject a fixed time.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Timezone-aware UTC, as every record timestamp is."""
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """UTC, millisecond precision, fixed width: string order equals time order in DynamoDB.

    ``2026-11-30T14:32:37.123Z``, which is also the form Lambda writes in its log lines."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> datetime:
    """Reads SageMaker's and our own ISO-8601 timestamps (``...Z`` or ``+00:00``)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
