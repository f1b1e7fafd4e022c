"""Local usage records that cannot hold prompt content.

One :class:`UsageRecord` per call attempt (and per refusal), written off the
call path by a :class:`Recorder` to the sink ``PRIVSDK_USAGE`` names: an
embedded SQLite file (the default), a JSONL file, OpenTelemetry (OTLP), a
function of the app's, or nowhere. ``privsdk usage`` reports on the local
stores. See the usage-records page of the documentation.

The names below are imported on first use, so that importing this package
loads no sink, no SQLite and no OpenTelemetry.
"""

from __future__ import annotations

import importlib
import re
from typing import TYPE_CHECKING, Any

#: Every accepted ``PRIVSDK_USAGE`` value. Here rather than in privsdk.usage.spec, so that privsdk.config
#: can check the variable on the decision path without importing the sinks' path handling.
SPEC = re.compile(r"^(none|otlp|sqlite|sqlite:///.+|jsonl:///.+)$")
SPEC_HINT = "use sqlite, sqlite:///PATH, jsonl:///PATH, otlp or none"

_EXPORTS = {
    "SCHEMA_VERSION": "privsdk.usage.record",
    "UsageRecord": "privsdk.usage.record",
    "new_request_id": "privsdk.usage.record",
    "check_tags": "privsdk.usage.tags",
    "INVALID": "privsdk.usage.sanitize",
    "Recorder": "privsdk.usage.writer",
    "Sink": "privsdk.usage.writer",
    "open_recorder": "privsdk.usage.writer",
    "Store": "privsdk.usage.spec",
    "parse_spec": "privsdk.usage.spec",
    "default_store_path": "privsdk.usage.spec",
}

__all__ = [
    "INVALID",
    "SCHEMA_VERSION",
    "Recorder",
    "Sink",
    "Store",
    "UsageRecord",
    "check_tags",
    "default_store_path",
    "new_request_id",
    "open_recorder",
    "parse_spec",
]

if TYPE_CHECKING:
    from privsdk.usage.record import SCHEMA_VERSION, UsageRecord, new_request_id
    from privsdk.usage.sanitize import INVALID
    from privsdk.usage.spec import Store, default_store_path, parse_spec
    from privsdk.usage.tags import check_tags
    from privsdk.usage.writer import Recorder, Sink, open_recorder


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'privsdk.usage' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
