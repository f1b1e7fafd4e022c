"""Where privsdk's guard goes into a mistralai client: the SDK's httpx2 clients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from privsdk.errors import PolicyViolation
from privsdk.guard.transport import guard_httpx


def guard_http_client(http: Any, *, sdk: str, refusal: Callable[[PolicyViolation], BaseException]) -> None:
    """Guard one of the SDK's HTTP clients (an ``httpx2.Client`` or ``httpx2.AsyncClient``) in place."""
    guard_httpx(http, sdk=sdk, refusal=refusal)
