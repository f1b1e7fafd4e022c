"""Streamed chat answers, sync and async, as the client hands them to the caller.

Retries and fallback happen only while a stream is being opened, that is
until its first event has arrived; that event is held back and given first.
Once the caller has an event, a failure is raised, never silently restarted.
Each stream leaves one usage record when it ends, fails, or is closed early
(``cancelled``), with the time to its first event.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal

from privsdk.errors import VendorError, VendorTimeout
from privsdk.outbound.judge import Binding, bound
from privsdk.resilience import Cutoff, cutoff
from privsdk.types import ChatRequest, StreamEnd, StreamEvent, TextDelta, Usage

if TYPE_CHECKING:
    import asyncio

    from privsdk.adapter import Adapter
    from privsdk.client import _Call, _Core
    from privsdk.decision import Decision
    from privsdk.policy import Target
    from privsdk.resilience import Budget

_NO_USAGE = Usage()
_monotonic = time.monotonic


class _Recorded:
    """What both stream kinds share: the attempt's clock and the one record at the end."""

    decision: Decision
    target: Target
    _deadline = 0.0  # the call's (Budget.deadline), once a target's stream is open

    def __init__(self, core: _Core, call: _Call):
        self._core = core
        self._call = call
        self._done = False
        self._held: weakref.ref[Any] | None = None  # how the recorder holds this stream until its record is queued
        self._first: StreamEvent | None = None
        self._first_chunk_s: float | None = None

    def _begin(self, target: Target) -> contextvars.Token[Binding | None]:
        """Start an attempt on ``target``: the guard judges the request it opens for this call."""
        self._call.attempts += 1
        self._started, self._t0 = time.time(), time.perf_counter()
        return bound.set(Binding(target, self._call.tenant, self._call.data_class))

    def _failed(self, target: Target, exc: BaseException) -> None:
        self._core.record_failure(self._call, target, exc, self._started, time.perf_counter() - self._t0)

    def _opened(self, first: StreamEvent | None) -> None:
        self._first = first
        self._first_chunk_s = time.perf_counter() - self._t0
        self._deadline = self._call.budget.deadline  # read on every event: one attribute, not a Budget call
        self._held = self._core.recorder.hold(self)  # weakly: the recorder ends this stream's record before it closes

    def _late(self) -> VendorTimeout:
        """The error for a stream still running at the call's deadline."""
        return VendorTimeout(self.target.offering.split(".", 1)[0])

    def _end(self, outcome: Literal["ok", "error", "cancelled"], exc: BaseException | None, usage: Usage) -> bool:
        """Record the stream's end once; True the first time, when the caller must release the events. A stream
        ``exc`` ended is recorded as any failed attempt is: cancelled when the app stopped it (its task's
        cancellation, Ctrl-C), which no :class:`Exception` is."""
        if self._done or not hasattr(self, "target"):
            return False
        self._done = True
        latency = time.perf_counter() - self._t0
        if exc is not None:
            self._core.record_failure(self._call, self.target, exc, self._started, latency, self._first_chunk_s)
        else:
            self._core.record(
                self._call, self.target, self._call.attempts, outcome, None, self._started, latency, usage,
                self._first_chunk_s,
            )  # fmt: skip
        if self._held is not None:  # queued: a recorder closing meanwhile need not wait for this record
            self._core.recorder.let_go(self._held)
        return True

    def _abandoned(self) -> None:
        """The recorder is closing (the client's close, interpreter exit) while this stream is still open: recorded
        as cancelled now, as it would be when dropped, while the record can still be written."""
        self._end("cancelled", None, _NO_USAGE)


class ChatStream(_Recorded, Iterator[StreamEvent]):
    """A streamed answer: iterate for events; the last is a :class:`~privsdk.types.StreamEnd`.

    ``decision`` is the decision for the target that is streaming, ``target``
    that target. Closing early (``close()``, leaving a ``with`` block, or
    dropping the stream) records the call as cancelled.
    """

    _events: Iterator[StreamEvent] | None = None
    _cutoff: Cutoff  # the open attempt's: its body's reads end at its ``at``

    def open(self, request: ChatRequest, timeout: float | None, controller: Any) -> None:
        _, self.target, self.decision = self._core.through_chain(self._call, request, controller, self._open, timeout)

    def _open(
        self,
        call: _Call,
        target: Target,
        adapter: Adapter,
        request: ChatRequest,
        timeout: float | None,
        *,
        budget: Budget,
    ) -> None:
        """One attempt to open ``target``'s stream (``call`` is this stream's own), retried through tenacity."""
        limit = self._core.attempt_timeout(call, timeout, adapter.vendor)  # before the attempt counts
        token = self._begin(target)
        # The SDK's timeout bounds each read: the first event must have come within ``limit`` too (keep-alive
        # comments do not count), and once it has, the stream's reads are bounded by the call's deadline (_opened).
        self._cutoff = Cutoff(_monotonic() + limit)
        cut = cutoff.set(self._cutoff)
        events = None
        try:
            events = adapter.stream(request, timeout=limit)
            first = next(events, None)
        except BaseException as exc:
            if events is not None:
                _close(events)
            from privsdk.vendor_errors import contain, raise_translated  # failures only

            error = contain(exc, adapter.vendor, call.operation)
            self._failed(target, error)
            if error is exc:
                raise
            raise_translated(error, exc)  # an exception no adapter classified: a content-free privsdk error instead
        finally:
            bound.reset(token)
            cutoff.reset(cut)
        self._events = events
        self._opened(first)
        self._cutoff.at = self._deadline

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> StreamEvent:
        event = self._first
        if event is not None:
            self._first = None
        elif self._done or self._events is None:
            raise StopIteration
        else:
            try:
                event = next(self._events)
            except StopIteration:
                self._finish("ok", None, _NO_USAGE)
                raise
            except BaseException as exc:
                self._read_failed(exc)
                raise
        if isinstance(event, StreamEnd):
            self._finish("ok", None, event.usage)
        elif _monotonic() >= self._deadline:  # Budget.remaining() <= 0, without a Python call on every event
            # The deadline bounds the whole call, reads included. A blocking read cannot be cut from here: the
            # transports of httpx SDKs end the body at its first bytes past the deadline (resilience.Cutoff); for
            # the others (botocore) each read is bounded by the attempt's timeout, and the first event past the
            # deadline ends the stream.
            late = self._late()
            self._finish("error", late, _NO_USAGE)
            raise late
        return event

    def _finish(self, outcome: Literal["ok", "error", "cancelled"], exc: BaseException | None, usage: Usage) -> None:
        if self._end(outcome, exc, usage) and outcome != "ok" and self._events is not None:
            _close(self._events)

    def _read_failed(self, exc: BaseException) -> None:
        """A read failed with ``exc``: record it and close the stream; raise a content-free privsdk error in its place
        when no adapter classified it (called in the ``except`` block, which re-raises ``exc`` otherwise)."""
        from privsdk.vendor_errors import contain, raise_translated

        error = contain(exc, self.target.offering.split(".", 1)[0], self._call.operation)
        self._finish("error", error, _NO_USAGE)
        if error is not exc:
            raise_translated(error, exc)

    def text(self) -> str:
        """Read the rest of the stream and return its text."""
        return "".join(e.text for e in self if isinstance(e, TextDelta))

    def close(self) -> None:
        """Stop reading; the call is recorded as cancelled unless it had ended."""
        self._finish("cancelled", None, _NO_USAGE)

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # never raise from a finaliser
            self.close()


class AsyncChatStream(_Recorded, AsyncIterator[StreamEvent]):
    """The async :class:`ChatStream`: ``async for event in stream``; ``await stream.aclose()`` to stop early
    (or leave an ``async with`` block, or drop the stream), which records the call as cancelled.

    The call's deadline cuts a read that is still waiting when it passes: one timer per stream, armed at the
    first read, cancels the task while (and only while) it waits for the next event.
    """

    _events: AsyncIterator[StreamEvent] | None = None
    _timer: asyncio.TimerHandle | None = None
    _reading: asyncio.Task[Any] | None = None  # the task waiting for the next event, for the timer to cancel
    _expired: asyncio.Task[Any] | None = None  # the task the timer cancelled
    _current_task: Callable[[], asyncio.Task[Any] | None]

    async def open(self, request: ChatRequest, timeout: float | None) -> None:
        _, self.target, self.decision = await self._core.athrough_chain(self._call, request, self._open, timeout)

    async def _open(
        self,
        call: _Call,
        target: Target,
        adapter: Adapter,
        request: ChatRequest,
        timeout: float | None,
        *,
        budget: Budget,
    ) -> None:
        """One attempt to open ``target``'s stream (``call`` is this stream's own), retried through tenacity."""
        import asyncio  # loaded already, as this runs in an event loop; not at the top, for sync-only apps

        limit = self._core.attempt_timeout(call, timeout, adapter.vendor)  # before the attempt counts
        token = self._begin(target)
        events = None
        try:
            events = adapter.astream(request, timeout=limit)
            # The SDK's timeout bounds each read: the first event must have come within ``limit`` too (keep-alive
            # comments do not count; its TimeoutError is a VendorTimeout, as the SDK's own timeout is).
            async with asyncio.timeout(limit):
                first = await anext(events, None)
        except BaseException as exc:
            if events is not None:
                await _aclose(events)
            from privsdk.vendor_errors import contain, raise_translated  # failures only

            error = contain(exc, adapter.vendor, call.operation)
            self._failed(target, error)
            if error is exc:
                raise
            raise_translated(error, exc)
        finally:
            bound.reset(token)
        self._events = events
        self._opened(first)

    def __aiter__(self) -> AsyncChatStream:
        return self

    async def __anext__(self) -> StreamEvent:
        event = self._first
        if event is not None:
            self._first = None
        elif self._done or self._events is None:
            raise StopAsyncIteration
        else:
            # Inline rather than in a helper coroutine: this runs for every event of every async stream.
            try:
                if self._timer is None:
                    self._arm()
                if _monotonic() >= self._deadline:
                    raise TimeoutError
                self._reading = self._current_task()  # None outside a task: nothing the timer could cancel
                try:
                    event = await anext(self._events)
                finally:
                    self._reading = None
            except StopAsyncIteration:
                await self._finish("ok", None, _NO_USAGE)
                raise
            except BaseException as exc:
                late = self._late() if self._deadline_passed(exc) else None
                if late is not None:
                    await self._finish("error", late, _NO_USAGE)
                    raise late from None
                await self._read_failed(exc)
                raise
        if isinstance(event, StreamEnd):
            await self._finish("ok", None, event.usage)
        return event

    def _arm(self) -> None:
        """At the first read: the timer that cancels a read still waiting at the call's deadline."""
        import asyncio  # loaded already, as this runs in an event loop; not at the top, for sync-only apps

        self._current_task = asyncio.current_task
        # The timer holds the stream weakly: one the app drops unclosed goes (its connection with it) at once.
        delay = self._deadline - _monotonic()
        self._timer = asyncio.get_running_loop().call_later(delay, _expire, weakref.ref(self))

    def _expire(self) -> None:
        task = self._reading
        if task is not None:
            self._expired = task
            task.cancel()

    def _deadline_passed(self, exc: BaseException) -> bool:
        """Whether ``exc`` ended a read because the call's deadline had passed: the check before the read (a bare
        TimeoutError), or the timer's cancellation of the waiting task, which is taken back here."""
        import asyncio

        if isinstance(exc, TimeoutError) and not isinstance(exc, VendorError):
            return True
        task = self._expired
        if task is None or not isinstance(exc, asyncio.CancelledError):
            return False  # the caller's own cancellation, or a failure of the read
        uncancel = getattr(task, "uncancel", None)  # Python 3.11+: this cancellation is handled here
        if uncancel is not None:
            uncancel()
        return True

    async def _finish(
        self, outcome: Literal["ok", "error", "cancelled"], exc: BaseException | None, usage: Usage
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._end(outcome, exc, usage) and outcome != "ok" and self._events is not None:
            await _aclose(self._events)

    async def _read_failed(self, exc: BaseException) -> None:
        """:meth:`ChatStream._read_failed` for async streams."""
        from privsdk.vendor_errors import contain, raise_translated

        error = contain(exc, self.target.offering.split(".", 1)[0], self._call.operation)
        await self._finish("error", error, _NO_USAGE)
        if error is not exc:
            raise_translated(error, exc)

    async def text(self) -> str:
        """Read the rest of the stream and return its text."""
        return "".join([e.text async for e in self if isinstance(e, TextDelta)])

    async def aclose(self) -> None:
        """Stop reading; the call is recorded as cancelled unless it had ended."""
        await self._finish("cancelled", None, _NO_USAGE)

    async def __aenter__(self) -> AsyncChatStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        """Dropped unclosed: recorded as cancelled, as a sync stream is. Its events are the event loop's to
        finalise (an async generator's close must be awaited, which a finaliser cannot do)."""
        with contextlib.suppress(Exception):  # never raise from a finaliser
            if self._timer is not None:
                self._timer.cancel()
            self._end("cancelled", None, _NO_USAGE)


def _expire(stream: weakref.ref[AsyncChatStream]) -> None:
    """An async stream's deadline timer: cancel the read it may be waiting on, if the stream is still held."""
    found = stream()
    if found is not None:
        found._expire()


def _close(events: Iterator[StreamEvent]) -> None:
    close = getattr(events, "close", None)
    if close is not None:
        close()


async def _aclose(events: AsyncIterator[StreamEvent]) -> None:
    close: Callable[[], Awaitable[object]] | None = getattr(events, "aclose", None)
    if close is not None:
        await close()
