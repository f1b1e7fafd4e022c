"""botocore's exceptions as privsdk vendor errors: by the error code Bedrock sends, else by the HTTP status.

Only codes, statuses and headers are read: Bedrock's messages can echo the
prompt and never reach a privsdk error. ConverseStream reports in-band errors
with lower-camel codes (``throttlingException``), so codes match ignoring case.
botocore's event-stream reader iterates urllib3 directly, so urllib3's own
exceptions can surface from a stream and are classified here too.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from privsdk.errors import (
    AuthFailed,
    BadRequest,
    ConnectionLost,
    NotFound,
    PolicyViolation,
    RateLimited,
    Unavailable,
    VendorError,
    VendorTimeout,
    error_for_status,
    retry_after,
)
from privsdk.vendor_errors import Translate

VENDOR = "bedrock"

_BY_CODE: dict[str, type[VendorError]] = {
    "throttlingexception": RateLimited,
    "servicequotaexceededexception": RateLimited,  # "resubmit your request later"
    "serviceunavailableexception": Unavailable,
    "internalserverexception": Unavailable,
    "modelnotreadyexception": Unavailable,
    "modelerrorexception": Unavailable,
    "modelstreamerrorexception": Unavailable,
    "modeltimeoutexception": VendorTimeout,
    "validationexception": BadRequest,
    "accessdeniedexception": AuthFailed,
    "unrecognizedclientexception": AuthFailed,
    "invalidsignatureexception": AuthFailed,
    "expiredtokenexception": AuthFailed,
    "resourcenotfoundexception": NotFound,
}

_BY_CLASS: list[tuple[str, type[VendorError]]] = [
    # Timeouts first: botocore's timeout errors are also connection errors.
    ("botocore.exceptions.ReadTimeoutError", VendorTimeout),
    ("botocore.exceptions.ConnectTimeoutError", VendorTimeout),
    ("urllib3.exceptions.TimeoutError", VendorTimeout),
    ("botocore.exceptions.HTTPClientError", ConnectionLost),
    ("botocore.exceptions.ConnectionError", ConnectionLost),
    ("botocore.exceptions.IncompleteReadError", ConnectionLost),
    ("botocore.eventstream.ParserError", ConnectionLost),
    ("urllib3.exceptions.HTTPError", ConnectionLost),
    ("botocore.exceptions.NoCredentialsError", AuthFailed),
    ("botocore.exceptions.NoAuthTokenError", AuthFailed),
    ("botocore.exceptions.CredentialRetrievalError", AuthFailed),
    ("botocore.exceptions.TokenRetrievalError", AuthFailed),
    ("botocore.exceptions.ParamValidationError", BadRequest),
    # A 2xx body botocore cannot parse against the operation's shape: its message quotes the body (the answer).
    ("botocore.parsers.ResponseParserError", Unavailable),
]
_classes: list[tuple[type[BaseException], type[VendorError]]] | None = None


def _class_table() -> list[tuple[type[BaseException], type[VendorError]]]:
    """The SDK exception classes, resolved on first use so that importing this module loads no SDK."""
    global _classes
    if _classes is None:
        import importlib

        _classes = []
        for path, error in _BY_CLASS:
            module, name = path.rsplit(".", 1)
            _classes.append((getattr(importlib.import_module(module), name), error))
    return _classes


def vendor_error(exc: BaseException) -> VendorError | None:
    """The privsdk error for an SDK exception; None for anything else (privsdk's own errors, bugs)."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, PolicyViolation):
        return None  # the guard's refusal (also a ClientError) goes up as it is
    if isinstance(exc, ClientError):
        return _from_client_error(exc.response)
    for cls, error in _class_table():
        if isinstance(exc, cls):
            return error(VENDOR, code=type(exc).__name__)
    if isinstance(exc, BotoCoreError):
        return VendorError(VENDOR, code=type(exc).__name__)
    if isinstance(exc, TimeoutError):
        return VendorTimeout(VENDOR)
    if isinstance(exc, OSError):
        return ConnectionLost(VENDOR)
    return None


def _from_client_error(response: dict[str, Any]) -> VendorError:
    code = response.get("Error", {}).get("Code") or None
    meta = response.get("ResponseMetadata", {})
    status = meta.get("HTTPStatusCode")
    error = _BY_CODE.get(code.lower()) if code else None
    if error is None:
        error = error_for_status(status) if status else Unavailable
    return error(
        VENDOR,
        status=status,
        code=code,
        retry_after=retry_after(meta.get("HTTPHeaders")),
        request_id=meta.get("RequestId"),
    )


#: ``with translated:`` around every SDK call and stream read.
translated = Translate(vendor_error)


class _UnexpectedBody:
    """A 200 whose body lacks what the model family returns (``results``, ``embedding``): the vendor's side broke.

    Raised as :class:`Unavailable` with nothing of the body, which can hold the documents sent.
    """

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if isinstance(exc, (KeyError, IndexError, TypeError, ValueError, AttributeError)):
            raise Unavailable(VENDOR, code="UnexpectedResponse") from None


#: ``with unexpected_body:`` around reading a decoded InvokeModel body.
unexpected_body = _UnexpectedBody()
