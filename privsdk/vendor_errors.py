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
import re
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import NoReturn

from privsdk.errors import ConfigError, PrivsdkError, Unavailable, UnexpectedError, VendorTimeout

#: Set to 1 to keep the SDK's exception as the ``__cause__`` of privsdk errors (its text may hold content).
DEBUG_CHAIN_ENV = "PRIVSDK_DEBUG_CHAIN"

Mapper = Callable[[Exception], PrivsdkError | None]


def keep_chain() -> bool:
    """True when ``PRIVSDK_DEBUG_CHAIN`` is on (``1``, ``true``, ``yes``, ``on``): read at each error, so a test or a
    debugging session can turn it on. A bad value (loading the policy refuses it) keeps nothing."""
    from privsdk.config import env_flag

    try:
        return env_flag(DEBUG_CHAIN_ENV)
    except ConfigError:
        return False


def raise_translated(error: BaseException, original: BaseException) -> NoReturn:
    """Raise ``error`` in place of ``original`` (the SDK's exception, or one no adapter classified), from inside its
    handler: without it in the chain (``__cause__`` and ``__context__`` both None), unless debugging keeps it."""
    if keep_chain():
        raise error from original
    try:
        raise error from None  # sets __suppress_context__, and Python still sets __context__ to ``original``...
    finally:
        error.__context__ = None  # ...which goes here, as the error leaves: nothing of ``original`` travels with it


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


#: What reading a malformed answer raises (a field missing, null, or of another type; a body that is not JSON): an
#: adapter's answer readers catch these and raise :func:`unreadable_answer` in their place.
ANSWER_ERRORS: tuple[type[Exception], ...] = (KeyError, IndexError, TypeError, AttributeError, ValueError)


def unreadable_answer(vendor: str) -> Unavailable:
    """The error for a 2xx answer privsdk cannot read (not JSON, or not the shape the API promises): the vendor's
    side broke, so it is transient. Nothing of the answer, which holds the model's output, is kept."""
    return Unavailable(vendor, code="UnexpectedResponse")


def contain(exc: BaseException, vendor: str, operation: str) -> BaseException:
    """What an attempt that ended with ``exc`` raises: ``exc`` itself when it is privsdk's own, or one the app must
    get as it is (asyncio's cancellation, Ctrl-C, a generator's exit: no :class:`Exception`); otherwise
    :func:`contained`. Called on failures only."""
    if isinstance(exc, PrivsdkError) or not isinstance(exc, Exception):
        return exc
    return contained(exc, vendor, operation)


def contained(exc: Exception, vendor: str, operation: str) -> PrivsdkError:
    """The privsdk error raised in place of ``exc``, an exception no adapter classified, out of one attempt.

    A non-ASCII character in an HTTP header (a smart quote or a zero-width space pasted with an API key) is a
    configuration error naming the variable that holds it, where privsdk can tell; a bare timeout is a
    :class:`VendorTimeout`; anything else an :class:`UnexpectedError` naming ``exc``'s type only. Never built from
    ``exc``'s message or arguments: a ``UnicodeEncodeError`` holds the whole header (``Bearer sk-...``), a
    ``JSONDecodeError`` the whole answer.
    """
    if isinstance(exc, UnicodeEncodeError):
        return header_error(vendor)
    if isinstance(exc, TimeoutError):
        return VendorTimeout(vendor)
    return UnexpectedError(vendor, operation=operation, code=type(exc).__name__)


def header_safe(value: str) -> bool:
    """True when ``value`` can be sent in an HTTP header as a key or a token is: printable ASCII."""
    return value.isascii() and value.isprintable()


#: Names of variables that hold credentials, by the vendors' conventions (OPENAI_API_KEY, CO_API_KEY,
#: AZURE_OPENAI_AD_TOKEN, AWS_SECRET_ACCESS_KEY, ...).
_SECRET_VARIABLE = re.compile(r"[A-Z][A-Z0-9_]*(KEY|TOKEN|SECRET|KEY_ID)(_[A-Z0-9]+)?")


_HEADER_HINT = (
    "a key or token is plain ASCII: look for a smart quote, or a non-breaking or zero-width space, pasted with it"
)


def unsendable(what: str, *, where: str | None = None) -> ConfigError:
    """The error for a credential holding a character an HTTP header cannot carry, named by ``what`` (where it is
    set), never by its value: the SDK's own error would quote the whole header (``Bearer sk-...``)."""
    return ConfigError(
        f"{what} holds a character that cannot be sent in an HTTP header", where=where, hint=_HEADER_HINT
    )


def header_error(vendor: str, environ: Mapping[str, str] | None = None) -> ConfigError:
    """A request header could not be encoded: name the credential variables holding a character a header cannot
    carry (never their values), or, when none does, say where to look."""
    env = os.environ if environ is None else environ
    bad = sorted(name for name, value in env.items() if _SECRET_VARIABLE.fullmatch(name) and not header_safe(value))
    if bad:
        return unsendable(f"{vendor}: {bad[0]}" if len(bad) == 1 else f"{vendor}: each of {', '.join(bad)}")
    return unsendable(f"{vendor}: a value sent in an HTTP header (the API key, a token, an organization or project id)")
