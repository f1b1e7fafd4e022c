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


def parse_duration(text: str, where: str) -> float:
    """Seconds in ``30m``, ``12h``, ``7d`` or ``2w``."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ConfigError(f"bad duration {text!r}", where=where, hint=DURATION_HINT)
    return int(m.group(1)) * _UNIT_S[m.group(2)]


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
    return when.timestamp()


def iso(seconds: float) -> str:
    """Unix seconds as an ISO 8601 UTC time, to the second."""
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
