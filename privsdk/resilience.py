"""Retries: which errors are worth another attempt, how long to wait, when to stop.

Built on tenacity, which runs every retry; the first attempt runs before
it, so that a call that succeeds at once pays nothing for it. Only transient vendor errors (rate limited, unavailable,
timeout, connection lost) are retried; a bad request, an auth error or a
policy refusal never is. The wait is exponential backoff with full jitter,
or the vendor's Retry-After when it sent one, both capped. Attempts stop at
the call's attempt limit, or earlier when the next wait would pass the call's
deadline: the client then falls back to the next allowed target, if any,
while the deadline has not passed.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from privsdk.errors import VendorError

if TYPE_CHECKING:
    from tenacity import AsyncRetrying, RetryCallState, Retrying

R = TypeVar("R")
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_DEADLINE_S = 120.0


class Limits(NamedTuple):
    """How hard one call tries. ``max_attempts`` counts per target; ``deadline_s`` bounds the whole call."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    deadline_s: float = DEFAULT_DEADLINE_S
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 20.0
    retry_after_cap_s: float = 30.0


class Budget:
    """One call's limits and its deadline as a monotonic clock reading; passed to every attempt."""

    __slots__ = ("deadline", "limits")

    def __init__(self, limits: Limits):
        self.limits = limits
        self.deadline = time.monotonic() + limits.deadline_s

    def start(self) -> None:
        """Start the deadline now (the client starts it once the first target's SDK client is built)."""
        self.deadline = time.monotonic() + self.limits.deadline_s

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


class Cutoff:
    """When the answer a sync attempt waits for must have come, as a monotonic clock reading (``at``).

    httpx's timeouts bound each socket operation, not an answer: a body that trickles in, or a stream that sends
    keep-alive comments, would hold an attempt past its timeout and the call past its deadline. The transports of a
    Client's SDK clients end such an answer with a read timeout at ``at`` (:mod:`privsdk.outbound.transport`). A
    stream's attempt moves ``at`` to the call's deadline once its first event has come: from then on the deadline
    bounds its reads. Mutable for that reason: the stream's body holds this object, read after the attempt."""

    __slots__ = ("at",)

    def __init__(self, at: float):
        self.at = at


#: Set by a sync :class:`privsdk.Client` attempt while it sends (the async client cuts its attempts with asyncio).
cutoff: contextvars.ContextVar[Cutoff | None] = contextvars.ContextVar("privsdk_cutoff", default=None)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, VendorError) and exc.transient


def backoff(exc: BaseException, attempt: int, limits: Limits) -> float:
    """Seconds to wait after failed attempt number ``attempt``: the vendor's Retry-After, else full jitter."""
    after = getattr(exc, "retry_after", None)
    if after is not None:
        return float(min(after, limits.retry_after_cap_s))
    import random  # only retries need it; privsdk.config imports this module on the decision path

    return random.uniform(0.0, min(limits.backoff_cap_s, limits.backoff_base_s * 2 ** (attempt - 1)))


def _wait(state: RetryCallState) -> float:
    budget: Budget = state.kwargs["budget"]
    exc = state.outcome.exception() if state.outcome is not None else None
    assert exc is not None  # tenacity waits only after a failed attempt
    return backoff(exc, state.attempt_number + 1, budget.limits)


def _stop(state: RetryCallState) -> bool:
    budget: Budget = state.kwargs["budget"]
    attempts = state.attempt_number + 1  # tenacity starts at the first retry: the first attempt ran before it
    return attempts >= budget.limits.max_attempts or state.upcoming_sleep >= budget.remaining()


def first_retry_wait(exc: BaseException, budget: Budget) -> float | None:
    """After a failed first attempt: how long to wait before tenacity takes over, or None to stop."""
    if not is_transient(exc) or budget.limits.max_attempts < 2:
        return None
    wait = backoff(exc, 1, budget.limits)
    return wait if wait < budget.remaining() else None


def retrying() -> Retrying:
    """The tenacity controller for the retries of sync calls, after a failed first attempt (see :func:`call`).

    The attempt function must take ``budget=`` (a :class:`Budget`). Tenacity
    keeps each call's state thread-local, so one controller serves every
    thread of a client.
    """
    from tenacity import Retrying, retry_if_exception

    return Retrying(stop=_stop, wait=_wait, retry=retry_if_exception(is_transient), reraise=True)


def async_retrying() -> AsyncRetrying:
    """The controller for the retries of one async call (asyncio tasks share a thread, so never share one)."""
    from tenacity import AsyncRetrying, retry_if_exception

    return AsyncRetrying(stop=_stop, wait=_wait, retry=retry_if_exception(is_transient), reraise=True)


def call(controller: Retrying, attempt: Callable[..., R], *args: Any, budget: Budget) -> R:
    """``attempt(*args, budget=budget)``, retried through tenacity while it fails transiently.

    The first attempt runs directly: most calls succeed at once, and
    tenacity's bookkeeping (some 20 µs a call) is then paid only by calls that
    are retried.
    """
    try:
        return attempt(*args, budget=budget)
    except VendorError as exc:
        wait = first_retry_wait(exc, budget)
        if wait is None:
            raise
    time.sleep(wait)
    result: R = controller(attempt, *args, budget=budget)
    return result


async def acall(attempt: Callable[..., Awaitable[R]], *args: Any, budget: Budget) -> R:
    """:func:`call` for coroutines."""
    try:
        return await attempt(*args, budget=budget)
    except VendorError as exc:
        wait = first_retry_wait(exc, budget)
        if wait is None:
            raise
    import asyncio  # not at the top: the decision path imports this module, and asyncio costs tens of ms

    await asyncio.sleep(wait)
    result: R = await async_retrying()(attempt, *args, budget=budget)
    return result
