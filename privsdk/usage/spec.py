"""Where usage records go: the ``PRIVSDK_USAGE`` value, parsed, and the default store's path.

``sqlite`` (the default) is an embedded database under the user's data
directory; ``sqlite:///PATH`` and ``jsonl:///PATH`` name a file the way a
``file:///`` URL does (``sqlite:///var/lib/app/usage.db`` is
``/var/lib/app/usage.db``; ``sqlite:///C:/data/usage.db`` on Windows);
``otlp`` exports through OpenTelemetry; ``none`` keeps nothing.
"""

from __future__ import annotations

import ntpath
import os
import posixpath
import re
import sys
from collections.abc import Mapping
from typing import Literal, NamedTuple

from privsdk.errors import ConfigError
from privsdk.usage import SPEC_HINT, check_spec

STORE_FILE = "usage.sqlite3"

Kind = Literal["sqlite", "jsonl", "otlp", "none"]


class Store(NamedTuple):
    """A parsed ``PRIVSDK_USAGE``: the sink's kind and, for sqlite and jsonl, the file's path."""

    kind: Kind
    path: str | None = None


def parse_spec(spec: str, *, where: str = "PRIVSDK_USAGE", environ: Mapping[str, str] | None = None) -> Store:
    """``spec`` as a :class:`Store`; ``sqlite`` alone resolves to :func:`default_store_path`.

    A value that is no store is a ConfigError placed at ``where`` (the variable, option or argument it came
    from) that names it by its scheme alone (:func:`privsdk.usage.bad_spec`): it may hold a password.
    """
    if not isinstance(spec, str):
        raise ConfigError(f"a {type(spec).__name__} is not a usage store", where=where, hint=SPEC_HINT)
    text = check_spec(spec, where)
    if text in ("none", "otlp"):
        return Store(text)  # type: ignore[arg-type]
    if text == "sqlite":
        return Store("sqlite", default_store_path(environ))
    kind, _, rest = text.partition("://")
    path = rest
    if re.match(r"^/[A-Za-z]:[/\\]", path):  # file:///C:/x is the Windows path C:/x
        path = path[1:]
    return Store(kind, path)  # type: ignore[arg-type]


def no_store(path: str) -> ConfigError:
    """The error for reading or pruning a store file that does not exist."""
    return ConfigError(f"no usage store at {path}", hint="nothing recorded there yet; check --store or PRIVSDK_USAGE")


def default_store_path(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str:
    """The default SQLite store: ``usage.sqlite3`` in privsdk's directory under the user's data directory.

    Linux and other Unixes: ``$XDG_DATA_HOME/privsdk`` (an absolute path), else
    ``~/.local/share/privsdk``. macOS: ``~/Library/Application Support/privsdk``.
    Windows: ``%LOCALAPPDATA%\\privsdk``.
    """
    env = os.environ if environ is None else environ
    system = sys.platform if platform is None else platform
    if system.startswith("win"):
        home = env.get("USERPROFILE") or os.path.expanduser("~")
        base = env.get("LOCALAPPDATA") or ntpath.join(home, "AppData", "Local")
        return ntpath.join(base, "privsdk", STORE_FILE)
    home = env.get("HOME") or os.path.expanduser("~")
    if system == "darwin":
        base = posixpath.join(home, "Library", "Application Support")
    else:
        xdg = env.get("XDG_DATA_HOME", "")
        # The XDG spec says a relative value is invalid and must be ignored.
        base = xdg if xdg.startswith("/") else posixpath.join(home, ".local", "share")
    return posixpath.join(base, "privsdk", STORE_FILE)
