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
from collections.abc import Callable
from typing import Any

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


class JsonMeter:
    """Counts from a JSON body, read once it has ended."""

    __slots__ = ("_chunks", "_pick", "_result", "_size")

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
    seen win (vendors put the totals in the closing event).
    """

    __slots__ = ("_buffer", "_markers", "_pick", "_separator", "_skipping", "_sse", "_tokens")

    def __init__(self, pick: Pick, markers: tuple[bytes, ...], *, sse: bool = True):
        self._pick = pick
        self._markers = markers
        self._sse = sse
        self._separator = b"\n\n" if sse else b"\n"
        self._buffer = b""
        self._skipping = False
        self._tokens: Tokens = _NO_TOKENS

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
            found = self._pick(json.loads(data))
        except (ValueError, AttributeError, TypeError, RecursionError):  # not the JSON the protocol describes
            return
        if found is not None:
            self._tokens = found

    def tokens(self) -> Tokens:
        last = self._buffer
        if last and not self._skipping and any(marker in last for marker in self._markers):
            self._read(last)  # a last event without its blank line
        self._buffer = b""
        return self._tokens
