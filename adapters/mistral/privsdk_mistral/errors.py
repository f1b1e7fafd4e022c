"""The mistralai SDK's exceptions as privsdk vendor errors.

The SDK raises its ``MistralError`` family (``SDKError`` for 4xx/5xx, ``HTTPValidationError`` for 422,
``ResponseValidationError`` when a 200 body does not fit its models), ``NoResponseError``, and httpx2's
transport errors unwrapped. Only the status, the headers and the identifiers in the error JSON are read:
the message text, which can echo the prompt, never leaves this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from privsdk.errors import (
    BadRequest,
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


def vendor_errors(vendor: str, http_error: type[Exception], no_response: type[Exception]) -> Translate:
    """``with vendor_errors(...):`` re-raises the SDK's exceptions inside the block as vendor errors.

    ``http_error`` and ``no_response`` are the client's own classes: ``Mistral`` and ``MistralAzure``
    each define theirs. The SDK's exception is not chained (see :mod:`privsdk.vendor_errors`).
    """
    return Translate(lambda exc: vendor_error(exc, vendor, http_error, no_response))


def vendor_error(
    exc: Exception, vendor: str, http_error: type[Exception], no_response: type[Exception]
) -> VendorError | None:
    """The vendor error for an SDK exception, or None for one that is not about the call (a usage error)."""
    import httpx2

    if isinstance(exc, httpx2.TimeoutException):
        return VendorTimeout(vendor)
    if isinstance(exc, (httpx2.TransportError, no_response)):
        return ConnectionLost(vendor)
    if not isinstance(exc, http_error):
        return _validation_error(exc, vendor)
    status: int = getattr(exc, "status_code", 0)
    body = _json(getattr(exc, "body", ""))
    if status < 400:
        # A 200 whose body is not a completion: in a stream, that is how an error event arrives. Anything else (not
        # JSON: cut short, a proxy's page; JSON without the API's shape) is an answer privsdk cannot read.
        payload = body.get("data", body)
        if isinstance(payload, dict) and ("error" in payload or payload.get("object") == "error"):
            return in_band_error(payload, vendor)
        return unreadable_answer(vendor)
    cls = error_for_status(status)
    if status == 403 and "guardrails" in body:
        cls = ContentRefused
    headers = getattr(exc, "headers", None)
    request_id = headers.get("x-request-id") if headers is not None and hasattr(headers, "get") else None
    return cls(vendor, status=status, code=error_code(body), retry_after=retry_after(headers), request_id=request_id)


def _validation_error(exc: Exception, vendor: str) -> VendorError | None:
    """The SDK's own check of the request failed before sending (pydantic, on a field given through ``extra`` in the
    wrong shape): a bad request, as the Bedrock adapter says of botocore's. pydantic's message and ``errors()``
    quote the value, which can be content (a ``prediction``), so only its type travels. The SDK checks answers too,
    but raises its own ``ResponseValidationError`` for them (an ``http_error``, above)."""
    import pydantic  # loaded already: the SDK is built on it

    if isinstance(exc, pydantic.ValidationError):
        return BadRequest(vendor, code=type(exc).__name__)
    return None


def in_band_error(payload: Any, vendor: str) -> VendorError:
    """An error object sent inside a successful response (``{"object": "error", ...}`` or ``{"error": ...}``)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    error = error if isinstance(error, dict) else payload if isinstance(payload, dict) else {}
    code = error_code(error)
    words = f"{error.get('type')} {error.get('code')}".lower()
    limited = "rate" in words or error.get("status") == 429 or error.get("raw_status_code") == 429
    return (RateLimited if limited else Unavailable)(vendor, code=code)


def error_code(body: Mapping[str, Any]) -> str | None:
    """Mistral's ``code`` when it is an identifier (it is often null or a number), else its ``type``."""
    error = body.get("error")
    if isinstance(error, dict):
        body = error
    for key in ("code", "type"):
        value = body.get(key)
        if isinstance(value, str) and value[:1].isalpha():
            return value
    return None


def _json(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str | bytes) else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
