"""The AWS event-stream binary framing, as Bedrock's ConverseStream answers are sent.

Only the encoder: botocore decodes. A message is a prelude (total and header
lengths), its CRC32, headers (here always strings: name length, name, type 7,
value length, value), the payload, and the CRC32 of all that.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping
from typing import Any


def frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event-stream message."""
    encoded = b"".join(_header(name, value) for name, value in headers.items())
    prelude = struct.pack(">II", 16 + len(encoded) + len(payload), len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack(">B", len(raw_name)) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value


def event(event_type: str, payload: Mapping[str, Any]) -> bytes:
    """An event of the stream (``messageStart``, ``contentBlockDelta``, ...) with its JSON payload."""
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, json.dumps(payload).encode())


def exception(exception_type: str, message: str) -> bytes:
    """An in-band error, as ConverseStream sends one mid-stream (``throttlingException``, ...): botocore raises
    it from the app's loop over the stream as ``EventStreamError``, a ``ClientError``."""
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return frame(headers, json.dumps({"message": message}).encode())
