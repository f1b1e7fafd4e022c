"""Retries: which errors are worth another attempt, how long to wait, when to stop.

Built on tenacity. Only transient vendor errors (rate limited, unavailable,
timeout, connection lost) are retried; a bad request, an auth error or a
policy refusal never is. The wait is exponential backoff with full jitter,
or the vendor's Retry-After when it sent one, both capped. Attempts stop at
the call's attempt limit, or earlier when the next wait would pass the call's
deadline: the client then falls back to the next allowed target, if any.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, NamedTuple

from privsdk.errors import VendorError

if TYPE_CHECKING:
    from tenacity import AsyncRetrying, RetryCallState, Retrying

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

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, VendorError) and exc.transient


def _wait(state: RetryCallState) -> float:
    limits: Limits = state.kwargs["budget"].limits
    exc = state.outcome.exception() if state.outcome is not None else None
    after = getattr(exc, "retry_after", None)
    if after is not None:
        return float(min(after, limits.retry_after_cap_s))
    return random.uniform(0.0, min(limits.backoff_cap_s, limits.backoff_base_s * 2 ** (state.attempt_number - 1)))


def _stop(state: RetryCallState) -> bool:
    budget: Budget = state.kwargs["budget"]
    return state.attempt_number >= budget.limits.max_attempts or state.upcoming_sleep >= budget.remaining()


def retrying() -> Retrying:
    """A tenacity controller for sync calls. The attempt function must take ``budget=`` (a :class:`Budget`).

    It keeps its per-call state in thread-local storage, so one controller
    serves every thread of a client.
    """
    from tenacity import Retrying, retry_if_exception

    return Retrying(stop=_stop, wait=_wait, retry=retry_if_exception(is_transient), reraise=True)


def async_retrying() -> AsyncRetrying:
    """A tenacity controller for one async call (asyncio tasks share a thread, so never share one)."""
    from tenacity import AsyncRetrying, retry_if_exception

    return AsyncRetrying(stop=_stop, wait=_wait, retry=retry_if_exception(is_transient), reraise=True)
