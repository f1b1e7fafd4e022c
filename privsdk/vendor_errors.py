"""One way for every adapter to turn its SDK's exceptions into privsdk errors, without the vendor's text.

Each adapter gives a *mapper*: a function from an SDK exception to the privsdk
error it means (its table of codes and statuses), or None for an exception
that is not the vendor's (a bug, a usage error), which then passes through
unchanged. ``with Translate(mapper):`` goes around every request and every
stream read.

The SDK's exception is dropped from the chain: its text can echo the prompt
(an error body quoting it), and ``logger.exception(...)`` or an uncaught
traceback prints the whole chain. The privsdk error keeps what is safe as
fields (status, vendor code, request id). ``PRIVSDK_DEBUG_CHAIN=1`` keeps the
original as ``__cause__``, for local debugging only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import TracebackType
from typing import NoReturn

from privsdk.errors import PrivsdkError

#: Set to 1 to keep the SDK's exception as the ``__cause__`` of privsdk errors (its text may hold content).
DEBUG_CHAIN_ENV = "PRIVSDK_DEBUG_CHAIN"

Mapper = Callable[[Exception], PrivsdkError | None]


def keep_chain() -> bool:
    """True when ``PRIVSDK_DEBUG_CHAIN=1``: read at each error, so a test or a debugging session can turn it on."""
    return os.environ.get(DEBUG_CHAIN_ENV, "").strip() == "1"


def raise_translated(error: PrivsdkError, original: BaseException) -> NoReturn:
    """Raise ``error`` for the SDK's ``original``: without it in the chain, unless debugging keeps it."""
    if keep_chain():
        raise error from original
    raise error from None  # sets __suppress_context__; detach() clears the __context__ Python still sets


def detach(error: BaseException) -> None:
    """Drop what Python chained to a privsdk error implicitly (``__context__``: the SDK exception it replaced).

    Called where privsdk catches its own errors on the way out (each failed attempt is recorded there),
    so that the error the app receives holds no reference to the vendor's exception or its text.
    """
    if isinstance(error, PrivsdkError) and not keep_chain():
        error.__context__ = None
        error.__cause__ = None
        error.__suppress_context__ = True


class Translate:
    """``with Translate(mapper):`` re-raises the block's SDK exceptions as privsdk errors.

    Stateless besides its mapper, so one instance serves every call of an adapter, sync or async, and
    every read of a stream. privsdk's own errors pass through untouched.
    """

    __slots__ = ("mapper",)

    def __init__(self, mapper: Mapper):
        self.mapper = mapper

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if isinstance(exc, Exception) and not isinstance(exc, PrivsdkError):
            error = self.mapper(exc)
            if error is not None:
                raise_translated(error, exc)
