"""The openai SDK's exceptions and in-band stream errors as privsdk vendor errors.

Only the HTTP status, the vendor's error code (``error.code``, else ``error.type``)
and Retry-After travel: the SDK's message can quote the prompt, so it never does.
"""

from __future__ import annotations

import json

import httpx2
import openai

from privsdk.errors import (
    ConnectionLost,
    ContentRefused,
    RateLimited,
    Unavailable,
    VendorError,
    VendorTimeout,
    error_for_status,
    retry_after,
)
from privsdk.vendor_errors import Translate, unreadable_answer

#: What an adapter call catches: the SDK's errors, and transport errors it might let through unwrapped.
SDK_ERRORS: tuple[type[Exception], ...] = (openai.OpenAIError, httpx2.TransportError)

#: Codes that mean a content filter or safety policy refused the prompt or the output
#: (Azure: ``content_filter`` and the inner ``ResponsibleAIPolicyViolation``; OpenAI: the rest).
_REFUSED = frozenset(
    {"content_filter", "ResponsibleAIPolicyViolation", "content_policy_violation", "invalid_prompt", "bio_policy"}
)
_RATE_LIMITED = frozenset({"rate_limit_exceeded", "rate_limit_error", "too_many_requests", "tokens", "requests"})


def _code(body: object) -> str | None:
    """The error's code, else its type; both live in the ``error`` object the SDK keeps as ``body``."""
    if not isinstance(body, dict):
        return None
    for key in ("code", "type"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _refused(body: object, code: str | None) -> bool:
    if code in _REFUSED:
        return True
    inner = body.get("innererror") if isinstance(body, dict) else None
    return isinstance(inner, dict) and inner.get("code") in _REFUSED


def in_band(vendor: str, code: str | int | None) -> VendorError:
    """An error reported inside a 200 stream (or a failed Responses API response), by its code."""
    if isinstance(code, int) or (isinstance(code, str) and code.isdigit()):
        return error_for_status(int(code))(vendor)  # servers such as vLLM put the HTTP status there
    if code in _REFUSED:
        return ContentRefused(vendor, code=code)
    if code in _RATE_LIMITED:
        return RateLimited(vendor, code=code)
    return Unavailable(vendor, code=code)


def vendor_error(vendor: str, exc: Exception) -> VendorError:
    """The privsdk error for one exception out of the SDK (raised through :func:`translate`)."""
    if isinstance(exc, openai.APITimeoutError):
        return VendorTimeout(vendor)
    if isinstance(exc, openai.APIConnectionError):
        return ConnectionLost(vendor)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        code = _code(exc.body)
        headers = exc.response.headers
        request_id = exc.request_id
        if status == 400 and _refused(exc.body, code):
            return ContentRefused(vendor, status=status, code=code, request_id=request_id)
        kind = error_for_status(status)
        return kind(vendor, status=status, code=code, retry_after=retry_after(headers), request_id=request_id)
    if isinstance(exc, openai.APIResponseValidationError):
        return Unavailable(vendor, status=exc.status_code)  # a 2xx body that is not what the API promises
    if isinstance(exc, openai.APIError):  # an error chunk inside a 200 stream
        body = exc.body
        raw = body.get("code") if isinstance(body, dict) else None
        return in_band(vendor, raw if isinstance(raw, int) else _code(body))
    if isinstance(exc, httpx2.TimeoutException):
        return VendorTimeout(vendor)
    if isinstance(exc, httpx2.TransportError):
        return ConnectionLost(vendor)
    return VendorError(vendor)


#: What the SDK lets out when a 2xx answer, or an event of a stream, is not JSON (cut short, a proxy's page): the
#: decoder's exception holds the whole text, the model's output, in ``.doc`` (``.object`` for bytes).
UNREADABLE: tuple[type[Exception], ...] = (json.JSONDecodeError, UnicodeDecodeError)


def _mapped(vendor: str, exc: Exception) -> VendorError | None:
    if isinstance(exc, SDK_ERRORS):
        return vendor_error(vendor, exc)
    if isinstance(exc, UNREADABLE):
        return unreadable_answer(vendor)
    return None


def translate(vendor: str) -> Translate:
    """``with translate(vendor):`` around every SDK call and stream read: the SDK's errors as privsdk's, unchained."""
    return Translate(lambda exc: _mapped(vendor, exc))
