"""Token meters shared by the wire readers: a JSON body, and a stream of events.

A meter sees the response body as it passes and keeps no content: the JSON
meter holds the body only until it ends (bounded, then parsed once for its
counts and dropped); the event meter holds only the event still arriving and
parses an event only when it can carry counts. What to take from a parsed
object is the protocol's ``pick`` function, which returns (input, output) or
None when the object carries no counts.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import deque
from collections.abc import Callable
from typing import Any

from privsdk.errors import error_for_status
from privsdk.usage.record import MAX_COUNT

Tokens = tuple[int | None, int | None]
Pick = Callable[[Any], Tokens | None]

_NO_TOKENS: Tokens = (None, None)
#: A JSON answer larger than this is not buffered (big embedding batches): its counts are unknown.
JSON_LIMIT = 32 * 1024 * 1024
#: One event larger than this is skipped rather than held.
EVENT_LIMIT = 1024 * 1024


def count(value: Any) -> int | None:
    """A token count as the vendor wrote it (an int, or a float with its fraction dropped); None for anything
    else: a negative number, a bool (``true`` is no count), NaN or an infinity (``1e999`` and ``Infinity`` parse
    as one), or a number past :data:`~privsdk.usage.record.MAX_COUNT`, which no answer holds. Never raises: a meter
    reads what a vendor or a proxy sent, and must not fail the app's call on it."""
    kind = type(value)
    if kind is int:
        return value if 0 <= value <= MAX_COUNT else None
    if kind is float:
        return int(value) if 0.0 <= value <= MAX_COUNT else None  # NaN fails every comparison
    return None


#: What every in-band error event of a JSON protocol holds: a key, or a whole string value (inside a string its
#: quotes are escaped). An event meter looks for it in each event as one more marker; :func:`failure` looks closer.
ERROR = b'"error"'
#: An in-band error, as an event opens with it: an ``error`` object (OpenAI's Chat Completions error chunk, Google's
#: error event) or saying it is an error (the Responses API's ``error`` event, an OpenAI-compatible server's error
#: object); or a failed Responses API response. Never ``"error": null``, the word error in text (whose quotes are
#: escaped), or a key of a function call's arguments (which Gemini sends as an object), which never opens an event.
#: ``_`` stands for a blank.
_OPENS_AN_ERROR = rb'\{_*(?:"error"_*:_*\{|"(?:type|object)"_*:_*"error")|"type"_*:_*"response\.failed"'


def _error_pattern(event_start: bytes, flags: int = 0) -> re.Pattern[bytes]:
    return re.compile((rb"(?:%s)%s" % (event_start, _OPENS_AN_ERROR)).replace(b"_", rb"[ \t\r\n]"), flags)


#: An error opening an element of a streamed JSON array (its own line, or after ``[`` or ``,``). After a line's start
#: only spaces and tabs: every blank line is a start of its own, and a run of them would make each one scan the
#: rest of the run (a vendor's blank lines cost seconds of the writer's time).
_FAILURE = _error_pattern(rb"^[ \t]*|[\[,]_*", re.MULTILINE)
#: An error opening a server-sent event (``data: {"error": {...}}``, ``data: {"type": "error", ...}``).
_EVENT_FAILURE = _error_pattern(rb"data:_*")
#: The fields that say what kind of error it is, in the order they are believed: a code, a gRPC status, a type.
_FIELDS = (b"code", b"status", b"type")
_FIELD = re.compile(rb'"(code|status|type)"[ \t\r\n]*:[ \t\r\n]*(?:"([A-Za-z0-9_.:-]{1,64})"|([0-9]{3})[^0-9])')
#: How far past the error marker its fields are looked for: an error object is a few hundred bytes.
_ERROR_WINDOW = 2048


#: How many of a stream's last bytes a meter keeps for :func:`failure`: an error event with room for its fields,
#: however the network split it.
LAST_BYTES = 16384


class LastBytes:
    """A stream's last :data:`LAST_BYTES` bytes (at least), kept as its last chunks (no copy as they pass): where
    :meth:`failure` looks, once, for an error event the vendor ended the stream with."""

    __slots__ = ("chunks", "size")

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.size = 0

    def add(self, chunk: bytes) -> None:
        chunks = self.chunks
        chunks.append(chunk)
        size = self.size + len(chunk)
        while size - len(chunks[0]) >= LAST_BYTES:
            size -= len(chunks.popleft())
        self.size = size

    def failure(self) -> str | None:
        """The usage-record error class of the in-band error event among the last bytes, None without one."""
        return failure(b"".join(self.chunks))


#: What ends a server-sent event: a blank line, as each line ending spells it.
_BLANK_LINES = (b"\r\n\r\n", b"\n\n", b"\r\r")


def failure(data: bytes) -> str | None:
    """The usage-record error class of the in-band error event in ``data`` (the last chunks of a stream), None
    when it holds none.

    In server-sent events the error is the stream's last event (but a closing ``data: [DONE]``), and opens it:
    only that event is looked at, so an object a model's function call carries (Gemini sends its arguments as
    JSON, ``{"alerts": [{"type": "error"}]}``) in an earlier event is never taken for one. A streamed JSON array
    (Gemini without ``alt=sse``) is looked at whole."""
    if data.find(ERROR) < 0:  # as almost always: one fast search, and no pattern
        return None
    if data.find(b"data:") >= 0:
        data = _last_event(data)
        found = _EVENT_FAILURE.search(data)
    else:
        found = _FAILURE.search(data)
    if found is None:
        return None
    fields: dict[bytes, bytes] = {}
    for field in _FIELD.finditer(data, found.end(), found.end() + _ERROR_WINDOW):
        fields.setdefault(field.group(1), field.group(2) or field.group(3))
    code = next((fields[name] for name in _FIELDS if name in fields), None)
    return error_kind(code.decode("ascii") if code is not None else None)


def _last_event(data: bytes) -> bytes:
    """The last server-sent event in ``data``, passing over a closing ``data: [DONE]`` and blank lines."""
    data = data.rstrip()
    if data.endswith(b"[DONE]"):
        data = data[: data.rfind(b"data:")].rstrip()
    start = 0
    for blank in _BLANK_LINES:
        at = data.rfind(blank)
        if at >= 0:
            start = max(start, at + len(blank))
    return data[start:]


#: Words of vendors' error codes that name a class (OpenAI's ``rate_limit_exceeded`` and ``tokens``, Google's
#: ``RESOURCE_EXHAUSTED``, Bedrock's ``throttlingException``, ...), looked for in the code lower-cased.
_KIND_WORDS = (
    (("rate_limit", "throttl", "exhausted", "quota", "too_many"), "rate_limited"),
    (("timeout", "deadline"), "timeout"),
    (("content_filter", "toxic", "safety", "guardrail"), "content_refused"),
    (("validation", "invalid"), "bad_request"),
)


def error_kind(code: str | int | None) -> str:
    """The usage-record error class of an error a vendor reported inside a started answer, by its code: an HTTP
    status as one (servers such as vLLM put it there), a code naming a class as that class; anything else is the
    vendor's failure on its side, ``unavailable`` (as :class:`privsdk.errors.Unavailable` says)."""
    if isinstance(code, int) or (isinstance(code, str) and code.isdigit() and len(code) == 3):
        return error_for_status(int(code)).kind
    name = (code or "").lower()
    if name in ("tokens", "requests"):  # OpenAI's rate-limit error types
        return "rate_limited"
    for words, kind in _KIND_WORDS:
        if any(word in name for word in words):
            return kind
    return "unavailable"


class JsonMeter:
    """Counts from a JSON body, read once it has ended."""

    __slots__ = ("_chunks", "_pick", "_result", "_size")
    #: A JSON answer is never a stream a vendor fails after its status (its status says).
    failed: str | None = None

    def __init__(self, pick: Pick):
        self._pick = pick
        self._chunks: list[bytes] | None = []
        self._size = 0
        self._result: Tokens | None = None

    def feed(self, chunk: bytes) -> None:
        chunks = self._chunks
        if chunks is None:
            return
        self._size += len(chunk)
        if self._size > JSON_LIMIT:
            self._chunks = None  # too big to hold: give up on its counts
            return
        chunks.append(chunk)

    def tokens(self) -> Tokens:
        if self._result is None:
            chunks, self._chunks = self._chunks, None
            self._result = _NO_TOKENS
            if chunks:
                # An answer that is not the JSON the protocol describes has no counts.
                # RecursionError: JSON nested deeper than the parser goes.
                with contextlib.suppress(ValueError, AttributeError, TypeError, RecursionError):
                    self._result = self._pick(json.loads(b"".join(chunks))) or _NO_TOKENS
        return self._result


class EventMeter:
    """Counts from a stream of events: server-sent events (``sse=True``) or JSON lines.

    Only events whose data contain one of ``markers`` are parsed; the last counts
    seen win (vendors put the totals in the closing event). ``fail`` says of a
    parsed event whether it is an in-band error, and its error class; the first
    one is kept in ``failed`` (the markers must find such events too).
    """

    __slots__ = ("_buffer", "_fail", "_markers", "_pick", "_separator", "_skipping", "_sse", "_tokens", "failed")

    def __init__(
        self,
        pick: Pick,
        markers: tuple[bytes, ...],
        *,
        sse: bool = True,
        fail: Callable[[Any], str | None] | None = None,
    ):
        self._pick = pick
        self._markers = markers
        self._fail = fail
        self._sse = sse
        self._separator = b"\n\n" if sse else b"\n"
        self._buffer = b""
        self._skipping = False
        self._tokens: Tokens = _NO_TOKENS
        #: The error class of an error event the vendor ended the answer with after its status, None without one.
        self.failed: str | None = None

    def feed(self, chunk: bytes) -> None:
        # On the path of every chunk of a stream: one scan per search, no per-event calls (find is faster than in).
        buffer = self._buffer + chunk if self._buffer else chunk
        if buffer.find(b"\r") >= 0:
            buffer = buffer.replace(b"\r\n", b"\n")
        events = buffer.split(self._separator)
        buffer = events.pop()
        if events:
            markers = self._markers
            for event in events:
                if self._skipping:
                    self._skipping = False  # the end of an oversized event: the next one is whole
                    continue
                for marker in markers:
                    if event.find(marker) >= 0:
                        self._read(event)
                        break
        if len(buffer) > EVENT_LIMIT:
            buffer = b""
            self._skipping = True
        self._buffer = buffer

    def _read(self, event: bytes) -> None:
        data = event
        if self._sse:
            data = b"\n".join(line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:"))
        try:
            event = json.loads(data)
            found = self._pick(event)
        except (ValueError, AttributeError, TypeError, RecursionError):  # not the JSON the protocol describes
            return
        if found is not None:
            self._tokens = found
        if self._fail is not None and self.failed is None:
            self.failed = self._fail(event)

    def tokens(self) -> Tokens:
        last = self._buffer
        if last and not self._skipping and any(marker in last for marker in self._markers):
            self._read(last)  # a last event without its blank line
        self._buffer = b""
        return self._tokens
