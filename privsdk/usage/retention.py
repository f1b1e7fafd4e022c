"""Retention of the usage records themselves: ``privsdk usage prune`` and the automatic limit.

``PRIVSDK_USAGE_MAX_AGE_DAYS`` (passed to :func:`privsdk.usage.open_recorder`
as ``max_age_days``) makes each SQLite or JSONL sink delete records older than
that when it opens and then hourly. ``privsdk usage prune --older-than 90d``
does the same once, by hand. OpenTelemetry backends keep their own retention.
"""

from __future__ import annotations

from privsdk.errors import ConfigError
from privsdk.usage.spec import Store

DAY_S = 86400.0
#: How often a long-running sink checks the automatic limit.
PRUNE_EVERY_S = 3600.0


def prune(store: Store, before: float) -> int:
    """Delete the records of ``store`` older than ``before`` (Unix seconds); the number deleted."""
    if store.kind == "sqlite" and store.path:
        import sqlite3

        from privsdk.usage import sqlite
        from privsdk.usage.report import sqlite_store_error

        try:
            return sqlite.prune(store.path, before)
        except sqlite3.DatabaseError as exc:
            raise sqlite_store_error(store.path, exc) from None
    if store.kind == "jsonl" and store.path:
        from privsdk.usage import jsonl

        return jsonl.prune(store.path, before)
    raise ConfigError(f"cannot prune a {store.kind} store", hint="prune works on sqlite and jsonl stores")
