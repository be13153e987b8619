"""``--since`` / ``--until`` values: an age (``90s``, ``15m``, ``2h``, ``7d``, ``1w``) or an
ISO-8601 moment (``2026-11-21``, ``2026-11-21T08:00:00Z``; naive means UTC)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from asyncinfer.cli.access.table import TimeWindow
from asyncinfer.cli.errors import CliError, ExitCode
from lambdas.common.clock import format_timestamp, parse_timestamp, utc_now

_AGE = re.compile(r"^(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>[smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> timedelta | None:
    match = _AGE.match(text.strip().lower())
    if not match:
        return None
    return timedelta(seconds=float(match["amount"]) * _UNIT_SECONDS[match["unit"]])


def parse_moment(text: str, now: datetime, option: str) -> datetime:
    if text.strip().lower() == "now":
        return now
    age = parse_age(text)
    if age is not None:
        return now - age
    try:
        return parse_timestamp(text.strip())
    except ValueError as error:
        raise CliError(
            f"invalid {option} {text!r}: use an age like 15m, 2h, 7d or an ISO-8601 time",
            ExitCode.USAGE,
        ) from error


def time_window(since: str | None, until: str | None, now: datetime | None = None) -> TimeWindow:
    moment = now or utc_now()
    start = parse_moment(since, moment, "--since") if since else None
    end = parse_moment(until, moment, "--until") if until else None
    if start and end and start > end:
        raise CliError("--since is later than --until", ExitCode.USAGE)
    return TimeWindow(
        since=format_timestamp(start) if start else None,
        until=format_timestamp(end) if end else None,
    )
