"""The tenant, data class and tags that apply to calls made inside a block.

Held in a :mod:`contextvars` variable, so a scope set in one thread or asyncio
task is never seen by another: two tenants served at once by one process
never see each other's settings.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from typing import NamedTuple

_NO_TAGS: Mapping[str, str] = {}


class Scope(NamedTuple):
    tenant: str | None = None
    data_class: str | None = None
    tags: Mapping[str, str] = _NO_TAGS


_current: contextvars.ContextVar[Scope] = contextvars.ContextVar("privsdk_scope", default=Scope())  # noqa: B039 - immutable


def current() -> Scope:
    """The scope in force here."""
    return _current.get()


@contextlib.contextmanager
def scope(
    *, tenant: str | None = None, data_class: str | None = None, tags: Mapping[str, str] | None = None
) -> Iterator[Scope]:
    """Calls inside the block run for ``tenant`` and ``data_class`` unless a call names its own.

    Scopes nest: an inner scope keeps what it does not set, and its tags are
    added to the outer ones. ``with privsdk.scope(tenant="acme", data_class="pii"): ...``
    """
    outer = _current.get()
    inner = Scope(
        tenant if tenant is not None else outer.tenant,
        data_class if data_class is not None else outer.data_class,
        {**outer.tags, **tags} if tags else outer.tags,
    )
    token = _current.set(inner)
    try:
        yield inner
    finally:
        _current.reset(token)
