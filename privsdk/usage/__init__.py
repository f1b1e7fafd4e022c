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
#: A scheme as an error may name it (lower case, as schemes are written; short); anything else before "://" is not
#: shown: it may be a key pasted there.
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,15}")


def check_spec(spec: str, where: str) -> str:
    """``spec`` stripped, when it is one of :data:`SPEC` and a file store's path holds no ``?`` or ``#``;
    else the ConfigError of :func:`bad_spec`, placed at ``where``."""
    text = spec.strip()
    if not SPEC.match(text) or (text.startswith(("sqlite:", "jsonl:")) and ("?" in text or "#" in text)):
        raise bad_spec(text, where)
    return text


def require_otlp(where: str) -> None:
    """A ConfigError placed at ``where`` unless the otlp extra's modules are installed: found, not imported."""
    import importlib.util

    from privsdk.errors import ConfigError

    for module in ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            raise ConfigError(
                f"otlp needs {module}, which is not installed",
                where=where,
                hint="install the otlp extra: pip install 'privsdk[otlp]'",
            )


def bad_spec(spec: str, where: str) -> ConfigError:
    """The error for a usage store ``spec`` that is not one of :data:`SPEC`, placed at ``where`` (the variable,
    option or argument the value came from).

    It names the value by its scheme alone, never in full: a connection string or URL can hold a user and
    password (``postgresql://user:PW@db``) or a key in its query (``...?api_key=KEY``).
    """
    from privsdk.errors import ConfigError

    scheme, sep, _ = spec.strip().partition("://")
    if sep and _SCHEME.fullmatch(scheme):
        shown = f"bad value {scheme}://... (not shown in full)"
        if scheme in ("sqlite", "jsonl"):
            message = f"{shown}: {scheme}:// takes an absolute file path and no settings ('?', '#'), {scheme}:///PATH"
        else:
            message = f"{shown}: not a usage store"
    else:
        message = "bad value (not shown: it may hold a password)"
    return ConfigError(message, where=where, hint=SPEC_HINT)


def newer_schema(path: str, version: int) -> ConfigError:
    """The error for a store holding records of a schema newer than this privsdk's: they are refused, never
    misread or left out of a report."""
    from privsdk.errors import ConfigError
    from privsdk.usage.record import SCHEMA_VERSION

    return ConfigError(
        f"usage store {path} has schema version {version}; this privsdk reads up to {SCHEMA_VERSION}",
        hint="a newer privsdk wrote it: upgrade privsdk to read it, or point PRIVSDK_USAGE at another file",
    )


_EXPORTS = {
    "SCHEMA_VERSION": "privsdk.usage.record",
    "UsageRecord": "privsdk.usage.record",
    "new_request_id": "privsdk.usage.record",
    "check_tags": "privsdk.usage.tags",
    "INVALID": "privsdk.usage.sanitize",
    "MAX_COUNT": "privsdk.usage.record",
    "Recorder": "privsdk.usage.writer",
    "Sink": "privsdk.usage.writer",
    "open_recorder": "privsdk.usage.writer",
    "Store": "privsdk.usage.spec",
    "parse_spec": "privsdk.usage.spec",
    "default_store_path": "privsdk.usage.spec",
}

__all__ = [
    "INVALID",
    "MAX_COUNT",
    "SCHEMA_VERSION",
    "Recorder",
    "Sink",
    "Store",
    "UsageRecord",
    "bad_spec",
    "check_spec",
    "check_tags",
    "default_store_path",
    "new_request_id",
    "newer_schema",
    "open_recorder",
    "parse_spec",
]

if TYPE_CHECKING:
    from privsdk.errors import ConfigError
    from privsdk.usage.record import MAX_COUNT, SCHEMA_VERSION, UsageRecord, new_request_id
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
