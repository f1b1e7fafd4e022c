"""The times the usage commands take: ``--since 7d``, ``--until 2026-01-31``, ``--older-than 90d``."""

from __future__ import annotations

import datetime as dt
import re

from privsdk.errors import ConfigError

_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
DURATION_HINT = "a number and a unit: 30m, 12h, 7d, 2w"
TIME_HINT = (
    f"a date (2026-01-31, UTC), a date and time (2026-01-31T12:00, UTC unless it has an offset), or {DURATION_HINT} ago"
)


#: The longest duration taken: a thousand years reaches back past any usage record (and stays a date Python has).
MAX_DURATION_S = 365_000 * 86400
MAX_DURATION_HINT = "at most 365000d, about a thousand years"


def parse_duration(text: str, where: str) -> float:
    """Seconds in ``30m``, ``12h``, ``7d`` or ``2w``; at most :data:`MAX_DURATION_S`."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ConfigError(f"bad duration {text!r}", where=where, hint=DURATION_HINT)
    digits = m.group(1).lstrip("0") or "0"
    if len(digits) > 12 or int(digits) * _UNIT_S[m.group(2)] > MAX_DURATION_S:
        raise ConfigError(f"duration {text.strip()!r} is too long", where=where, hint=MAX_DURATION_HINT)
    return int(digits) * _UNIT_S[m.group(2)]


def parse_time(text: str, where: str, now: float) -> float:
    """Unix seconds for a duration before ``now``, an ISO date (midnight UTC), or an ISO date and time."""
    text = text.strip()
    if _DURATION.match(text):
        return now - parse_duration(text, where)
    try:
        # Python 3.10's fromisoformat does not read a trailing Z.
        when = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise ConfigError(f"bad time {text!r}", where=where, hint=TIME_HINT) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    try:
        seconds = when.timestamp()
        iso(seconds)  # a time an offset pushes past year 9999 (or before year 1) cannot be shown: refuse it here
    except (ValueError, OverflowError, OSError):
        raise ConfigError(
            f"time {text!r} is out of range", where=where, hint="a time between 0001-01-02 and 9999-12-30"
        ) from None
    return seconds


def iso(seconds: float) -> str:
    """Unix seconds as an ISO 8601 UTC time, to the second."""
    when = dt.datetime.fromtimestamp(seconds, dt.timezone.utc).replace(microsecond=0, tzinfo=None)
    return when.isoformat() + "Z"  # isoformat, not strftime: the year always has four digits
