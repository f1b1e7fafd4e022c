"""The cohere SDK's exceptions as privsdk vendor errors.

A message is built from the status, the error code and Retry-After only: Cohere's error bodies
echo the request, so nothing of the SDK's exception text is carried over, and the exception is not chained.
"""

from __future__ import annotations

import json

import httpx
import pydantic
from cohere.core.api_error import ApiError
from cohere.core.http_sse._exceptions import SSEError
from cohere.core.parse_error import ParsingError

from privsdk.errors import (
    AuthFailed,
    ConnectionLost,
    Unavailable,
    VendorError,
    VendorTimeout,
    error_for_status,
    retry_after,
)
from privsdk.vendor_errors import Translate, unreadable_answer

VENDOR = "cohere"
#: Cohere's own status for an invalid or expired API key.
_INVALID_TOKEN = 498


def vendor_error(exc: Exception) -> VendorError | None:
    """The privsdk error for an exception the SDK raised; None for anything else (a bug, not the vendor)."""
    if isinstance(exc, ApiError):
        status = exc.status_code
        if status is None:
            return Unavailable(VENDOR)
        if 200 <= status < 300:  # the SDK raises ApiError for a 2xx body that is not JSON (cut short, a proxy's page)
            return unreadable_answer(VENDOR)
        headers = exc.headers or {}
        kind = AuthFailed if status == _INVALID_TOKEN else error_for_status(status)
        return kind(
            VENDOR,
            status=status,
            code=_aws_error_type(headers),
            retry_after=retry_after(headers),
            request_id=_header(headers, "x-request-id") or _header(headers, "x-amzn-requestid"),
        )
    if isinstance(exc, ParsingError):
        return Unavailable(VENDOR, status=exc.status_code)
    if isinstance(exc, httpx.TimeoutException):
        return VendorTimeout(VENDOR)
    if isinstance(exc, SSEError):  # an answer, but not an event stream
        return Unavailable(VENDOR)
    if isinstance(exc, httpx.TransportError):
        return ConnectionLost(VENDOR)
    if isinstance(exc, (json.JSONDecodeError, pydantic.ValidationError)):  # a 200 whose body is not Cohere's
        return unreadable_answer(VENDOR)
    return None


def _header(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _aws_error_type(headers: dict[str, str]) -> str | None:
    """Bedrock and SageMaker name the error (``ThrottlingException``); Cohere's own API has no error code."""
    for name, value in headers.items():
        if name.lower() == "x-amzn-errortype":
            return value.split(":", 1)[0]
    return None


#: ``with translated:`` around every SDK call and stream read.
translated = Translate(vendor_error)
