"""Errors privsdk raises for things a user can fix."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from privsdk.decision import Decision


class PrivsdkError(Exception):
    """Base of every privsdk error."""


class ConfigError(PrivsdkError):
    """A configuration mistake: bad file, bad variable, unknown name.

    ``where`` names the place (``file.toml:12`` or ``PRIVSDK_REQUIRE``),
    ``hint`` says what would be valid. ``str()`` gives the one message a user
    sees; the CLI prints it without a traceback and exits with status 2.
    """

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(self.__str__())

    def at(self, where: str) -> ConfigError:
        """The same error, placed at ``where`` unless it already has a place."""
        if self.where is not None:
            return self
        return ConfigError(self.message, where=where, hint=self.hint)

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text} ({self.hint})" if self.hint else text


class CatalogueError(PrivsdkError):
    """The packaged guarantee catalogue is malformed: a privsdk bug, not a user error."""


class AdapterMissing(ConfigError):
    """No installed adapter serves a target's vendor."""


class SdkMissing(AdapterMissing, ModuleNotFoundError):
    """A vendor SDK that is not installed. Also the ModuleNotFoundError Python raises for it (``name`` is the
    missing module), so that an app's ``except ImportError`` around ``from privsdk import openai`` works as it did
    around ``import openai``."""


class InvalidInput(PrivsdkError, ValueError):
    """What the caller passed cannot be sent (not valid Unicode, a malformed message). Raised before any network.

    The message names the item by its parameter and position, never by its content. No usage record is written
    when the call never reached a decision.
    """


class InvalidArgument(InvalidInput, TypeError):
    """An argument of the wrong type (``tags="team=search"``, ``deadline_s="30"``, a model that is not a str).

    An :class:`InvalidInput` that is also a ``TypeError``, as Python's own error for it would be. The message names
    the parameter and the type it takes, never the value.
    """


class ClientClosed(PrivsdkError, RuntimeError):
    """A call on a :class:`~privsdk.client.Client` after ``close()`` (or an ``AsyncClient`` after ``aclose()``, or
    their ``with`` block): refused before anything is decided or sent, since its usage record could not be written.
    Streams opened before the close are recorded when it closes them."""

    def __init__(self) -> None:
        super().__init__("the privsdk client is closed: it takes no more calls (build a new one)")


class Unsupported(PrivsdkError):
    """The target's adapter cannot do the asked operation (rerank on Mistral). Raised before any network."""

    kind = "unsupported"


class VendorError(PrivsdkError):
    """A vendor call failed. Subclasses say how; ``transient`` ones may succeed when tried again.

    The message is built from the vendor's name, the HTTP status, the vendor's
    error code and Retry-After only: never from the vendor's error text, which
    can echo the prompt. The SDK's exception is not chained (set
    ``PRIVSDK_DEBUG_CHAIN=1`` to keep it as the ``__cause__``); ``status``,
    ``code`` and ``request_id`` (the vendor's id for the request, for its
    support) are kept as fields.
    """

    transient = False
    #: The error's class as usage records and metrics name it.
    kind = "vendor_error"
    what = "failed"

    def __init__(
        self,
        vendor: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
    ):
        self.vendor = vendor
        self.status = status
        self.code = code if code is not None and _CODE.fullmatch(code) else None
        self.retry_after = retry_after
        self.request_id = request_id if isinstance(request_id, str) and _REQUEST_ID.fullmatch(request_id) else None
        super().__init__(self.__str__())

    def __str__(self) -> str:
        detail = [f"HTTP {self.status}"] if self.status is not None else []
        if self.code:
            detail.append(self.code)
        if self.retry_after is not None:
            detail.append(f"retry after {self.retry_after:g} s")
        return f"{self.vendor} {self.what}" + (f" ({', '.join(detail)})" if detail else "")


class RateLimited(VendorError):
    """The vendor asked us to slow down (HTTP 429, ThrottlingException)."""

    transient = True
    kind = "rate_limited"
    what = "rate-limited the call"


class Unavailable(VendorError):
    """The vendor failed on its side (5xx, overloaded, an error event inside a stream)."""

    transient = True
    kind = "unavailable"
    what = "was unavailable"


class VendorTimeout(VendorError, TimeoutError):
    """No answer within the call's time bound."""

    transient = True
    kind = "timeout"
    what = "did not answer in time"


class ConnectionLost(VendorError):
    """The connection failed or dropped, a stream cut in the middle included."""

    transient = True
    kind = "connection_lost"
    what = "connection failed or dropped"  # one class for both: SDKs say no more (openai's APIConnectionError)


class BadRequest(VendorError):
    """The vendor rejected the request as invalid; sending it again will not help."""

    kind = "bad_request"
    what = "rejected the request"


class AuthFailed(VendorError):
    """The vendor rejected the credentials or their permissions."""

    kind = "auth_failed"
    what = "rejected the credentials"


class NotFound(VendorError):
    """No such model, deployment or endpoint at the vendor."""

    kind = "not_found"
    what = "has no such model or endpoint"


class ContentRefused(VendorError):
    """The vendor's content filter or guardrail refused the input or output."""

    kind = "content_refused"
    what = "refused the content"


class UnexpectedError(VendorError):
    """An adapter or its vendor SDK raised an exception privsdk has no class for (a privsdk bug, a check of the SDK's
    own that privsdk does not know). Not transient.

    Only the exception's type travels, as ``code``, with the vendor and the operation: its message and arguments,
    which can hold the prompt, the answer or a credential, do not, and it is not chained (unless
    ``PRIVSDK_DEBUG_CHAIN=1``).
    """

    kind = "other"
    what = "call failed unexpectedly"

    def __init__(self, vendor: str, *, operation: str | None = None, code: str | None = None):
        self.operation = operation
        super().__init__(vendor, code=code)

    def __str__(self) -> str:
        operation = f" {self.operation}" if self.operation else ""
        return f"{self.vendor}{operation} {self.what}" + (f" ({self.code})" if self.code else "")


#: A vendor error code is kept only when it looks like an identifier, so free text can never pass.
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")
#: A request id is kept only when it looks like one (req_abc123, a UUID), never as free text.
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


def error_for_status(status: int) -> type[VendorError]:
    """The error class for an HTTP status, for vendors whose code says nothing more precise."""
    if status == 429:
        return RateLimited
    if status in (408, 504):
        return VendorTimeout
    if status in (401, 403):
        return AuthFailed
    if status == 404:
        return NotFound
    if status >= 500:
        return Unavailable
    return BadRequest


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, ``x-amz-retry-after`` (ms) or ``Retry-After`` (s or date)."""
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    for name, scale in (("retry-after-ms", 0.001), ("x-amz-retry-after", 0.001), ("retry-after", 1.0)):
        value = lower.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            if scale != 1.0:
                continue
            import email.utils  # only dates need it, and it is slow to import

            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                continue
            seconds = when.timestamp() - time.time()
        if seconds >= 0 and math.isfinite(seconds):
            return seconds
    return None


class PolicyViolation(PrivsdkError):
    """The call was refused before any byte left the process: the target does not meet the policy.

    ``decision`` is the :class:`~privsdk.decision.Decision`: the unmet
    requirements, what the target offers, and the sources. It holds names,
    dates and catalogue text, never the call's content.
    """

    kind = "policy"

    def __init__(self, decision: Decision):
        self.decision = decision
        super().__init__(decision.reason or f"{decision.target} refused for tenant {decision.tenant}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as made, not through __init__ (whose argument is the decision, not the message the args hold): a
        # refusal raised in a worker process reaches its pool's caller, the SDK-flavoured ones as well.
        return (_rebuilt, (type(self), self.args, self.__dict__))


def _rebuilt(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> BaseException:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class TagError(PrivsdkError):
    """A caller's usage tags break a rule: too many, or a key or value outside its character set."""
