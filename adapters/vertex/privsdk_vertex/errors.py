"""google-genai's exceptions as privsdk vendor errors: status, gRPC status name, retry hint; never the text."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from privsdk.errors import (
    AuthFailed,
    BadRequest,
    ConfigError,
    ConnectionLost,
    NotFound,
    PrivsdkError,
    RateLimited,
    Unavailable,
    VendorError,
    VendorTimeout,
    error_for_status,
    retry_after,
)
from privsdk.vendor_errors import Translate, unreadable_answer

if TYPE_CHECKING:
    from google.genai.errors import APIError

#: For an error without an HTTP status (an in-band stream error may carry only the gRPC status name).
_BY_STATUS_NAME: dict[str, type[VendorError]] = {
    "RESOURCE_EXHAUSTED": RateLimited,
    "UNAVAILABLE": Unavailable,
    "INTERNAL": Unavailable,
    "DEADLINE_EXCEEDED": VendorTimeout,
    "UNAUTHENTICATED": AuthFailed,
    "PERMISSION_DENIED": AuthFailed,
    "NOT_FOUND": NotFound,
    "INVALID_ARGUMENT": BadRequest,
    "FAILED_PRECONDITION": BadRequest,
}
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)s")
#: The transports google-genai may use, by (package, exception class): httpx2 by default, httpx when
#: GOOGLE_GENAI_HTTP_CLIENT=httpx, aiohttp for async calls when it is installed, requests (through
#: google-auth) when a client certificate is configured for mTLS. aiohttp's total timeout is asyncio's
#: TimeoutError. A timeout class is looked for first: requests' ConnectTimeout is also a ConnectionError.
_TIMEOUTS = frozenset(
    {
        ("httpx", "TimeoutException"),
        ("httpx2", "TimeoutException"),
        ("aiohttp", "ServerTimeoutError"),
        ("aiohttp", "ConnectionTimeoutError"),
        ("aiohttp", "SocketTimeoutError"),
        ("requests", "Timeout"),
    }
)
_CONNECTION_FAILURES = frozenset(
    {
        ("httpx", "TransportError"),
        ("httpx2", "TransportError"),
        ("aiohttp", "ClientError"),
        ("requests", "ConnectionError"),
        ("requests", "ChunkedEncodingError"),
    }
)


def translate(vendor: str) -> Translate:
    """``with translate(vendor):`` turns an SDK or transport exception into its privsdk error, unchained.

    Stateless, so one instance serves every call of an adapter, sync or async.
    """
    return Translate(lambda exc: vendor_error(vendor, exc))


def vendor_error(vendor: str, exc: Exception) -> PrivsdkError | None:
    """The privsdk error for ``exc``, or None when it is no SDK, transport or auth failure."""
    from google.auth import exceptions as auth
    from google.genai import errors

    if isinstance(exc, errors.APIError):
        return _api_error(vendor, exc)
    if isinstance(exc, errors.UnknownApiResponseError):
        return Unavailable(vendor)  # the body was not JSON: the vendor's side broke
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)):
        # A 2xx body (or a stream's chunk) cut short or not JSON: the decoder's exception holds the whole text, the
        # model's output. The SDK lets it out unwrapped.
        return unreadable_answer(vendor)
    if isinstance(exc, auth.DefaultCredentialsError):
        return ConfigError(
            f"no Google credentials for {vendor}",
            hint="set credentials access_token, or Application Default Credentials "
            "(GOOGLE_APPLICATION_CREDENTIALS, or gcloud auth application-default login)",
        )
    if isinstance(exc, auth.RefreshError):
        return AuthFailed(vendor)
    if isinstance(exc, auth.TransportError):
        return ConnectionLost(vendor)
    classes = {(cls.__module__.split(".", 1)[0], cls.__name__) for cls in type(exc).__mro__}
    if not classes.isdisjoint(_TIMEOUTS) or isinstance(exc, TimeoutError):
        return VendorTimeout(vendor)
    if not classes.isdisjoint(_CONNECTION_FAILURES):
        return ConnectionLost(vendor)
    return None


def _api_error(vendor: str, exc: APIError) -> VendorError:
    status = exc.code if isinstance(exc.code, int) else None
    name = exc.status if isinstance(exc.status, str) else None
    if status is not None and status >= 400:
        cls = error_for_status(status)
    else:
        cls = _BY_STATUS_NAME.get(name or "", Unavailable)
    headers = getattr(exc.response, "headers", None)
    wait = retry_after(headers if isinstance(headers, Mapping) else None)
    if wait is None:
        wait = _retry_delay(exc.details)
    return cls(vendor, status=status, code=name, retry_after=wait)


def _retry_delay(details: Any) -> float | None:
    """The ``google.rpc.RetryInfo`` delay in an error body (Google's APIs send it instead of Retry-After)."""
    if not isinstance(details, Mapping):
        return None
    error = details.get("error", details)
    items = error.get("details") if isinstance(error, Mapping) else None
    for item in items if isinstance(items, list) else ():
        if isinstance(item, Mapping) and item.get("@type") == _RETRY_INFO:
            match = _DURATION.fullmatch(str(item.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None
