"""What the guard's tests share: its environment for a loopback server, and the usage records it writes.

Configuration is by environment only, as an app deployed with privsdk would
have it: ``PRIVSDK_ENDPOINTS`` declares the loopback server (as OpenAI's API
for :func:`guard_env`), ``PRIVSDK_USAGE`` sends records to a JSONL file the
test reads back (the ``usage`` fixture of tests/conftest.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.wire.server import LoopbackServer


def reset_default_guard() -> None:
    """Forget the process-wide guard, so that the next request builds one from the environment as set now."""
    from privsdk.outbound.judge import Guard

    Guard.reset_default()


def guard_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server: LoopbackServer, **env: str) -> Path:
    """Declare ``server`` as OpenAI's API, set ``env`` (PRIVSDK_REQUIRE=..., ...); the usage file's path."""
    usage = tmp_path / "usage.jsonl"
    monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{server.url}=openai.api")
    monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{usage}")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_default_guard()
    return usage


def usage_records(path: Path, count: int, *, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Every record in ``path`` once there are ``count``, after the process-wide guard's writer has flushed
    what it was given (records are written off the call path)."""
    from privsdk.outbound.judge import Guard

    Guard.default().flush(timeout)
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        if len(lines) >= count or time.monotonic() > deadline:
            records = [json.loads(line) for line in lines]
            assert len(records) >= count, f"expected {count} usage records, found {len(records)}"
            return records
        time.sleep(0.01)


def records(path: Path) -> list[dict[str, Any]]:
    """The records in the JSONL file ``path`` once the process-wide guard's writer has written what it was given
    (none when it wrote nothing, and so made no file)."""
    from privsdk.outbound.judge import Guard

    Guard.default().flush(5)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
