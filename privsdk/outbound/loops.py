"""Async SDK clients that survive a change of event loop (``asyncio.run`` twice with one client).

An httpx (or httpx2) async client pools its connections, and each pooled
connection belongs to the event loop that opened it. Scripts and workers that
call ``asyncio.run`` more than once with one client reuse a connection of a
closed loop on the second run and fail with ``RuntimeError: Event loop is
closed``; the cohere and mistralai SDKs' async clients do. :func:`loop_safe`
puts a thin transport in front of the client's transports that, the first
time it is used from another loop, forgets the pooled connections of the
previous one: all of them when that loop is closed (nothing can be using
them), else the idle ones. The forgotten sockets are closed when collected.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import Any, TypeVar

C = TypeVar("C")


class LoopSafe:
    """An async transport that hands each request to ``inner``, minding the event loop it runs on."""

    __slots__ = ("_loop", "inner")

    def __init__(self, inner: Any):
        self.inner = inner
        self._loop: weakref.ref[asyncio.AbstractEventLoop] | None = None

    async def handle_async_request(self, request: Any) -> Any:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another async library (trio): its own rules apply
            return await self.inner.handle_async_request(request)
        previous = self._loop() if self._loop is not None else None
        if previous is not loop:
            if self._loop is not None:
                _forget(self.inner, everything=previous is None or previous.is_closed())
            self._loop = weakref.ref(loop)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self) -> LoopSafe:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.inner.__aexit__(*exc)


def _forget(transport: Any, *, everything: bool) -> None:
    """Drop the pooled connections of the last loop from ``transport``'s httpcore pool (a no-op for others)."""
    while not hasattr(transport, "_pool") and hasattr(transport, "inner"):  # through wrappers (the guard's)
        transport = transport.inner
    pool = getattr(transport, "_pool", None)
    connections = getattr(pool, "_connections", None)
    if not isinstance(connections, list):
        return
    lock = getattr(pool, "_optional_thread_lock", None) or contextlib.nullcontext()
    with lock:
        connections[:] = [] if everything else [c for c in connections if not c.is_idle()]


def loop_safe(client: C) -> C:
    """Make an httpx or httpx2 async client usable from one event loop after another, in place; returns it.

    Call it before guarding the client (its transports are then the SDK's own); a transport already
    wrapped is left as it is.
    """
    target: Any = client

    def wrap(transport: Any) -> Any:
        if transport is None or isinstance(transport, LoopSafe):
            return transport
        return LoopSafe(transport)

    target._transport = wrap(target._transport)
    target._mounts = {pattern: wrap(t) for pattern, t in target._mounts.items()}
    return client
