"""The constructors of SDK client classes, followed by guarding the new client: how drop-ins and
:func:`privsdk.instrument` put the guard into every client an SDK makes.

A drop-in class's ``__init__`` is the SDK's own followed by guarding; :func:`privsdk.instrument` puts the same
into the SDK's classes themselves, so that clients a framework builds inside itself are guarded too, and
:meth:`Constructors.restore` puts the SDK's own back (as opentelemetry-python-contrib's instrumentors do).
:func:`dropin_dir` is what a drop-in module (``privsdk.openai``, ...) lists: its own names and the SDK's.
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Init = Callable[..., None]


def then_guard(init: Init, guard: Callable[[Any], object]) -> Init:
    """``init``, then ``guard(self)``: keeps the SDK's signature and docs (``functools.wraps``)."""

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        guard(self)

    return __init__


class Constructors:
    """The SDK classes whose ``__init__`` is replaced by :func:`then_guard`, and their originals."""

    def __init__(self, guard: Callable[[Any], object]):
        self._guard = guard
        self._originals: dict[type[Any], Init] = {}
        self._lock = threading.Lock()

    def patch(self, classes: Iterable[type[Any]]) -> None:
        """Guard every instance of ``classes`` made from now on (a class already patched is left as it is)."""
        with self._lock:
            for cls in classes:
                if cls not in self._originals:
                    original: Init = cls.__init__
                    self._originals[cls] = original
                    cls.__init__ = then_guard(original, self._guard)

    def restore(self) -> None:
        """Put the SDK's own constructors back; clients already guarded stay guarded."""
        with self._lock:
            for cls, original in self._originals.items():
                cls.__init__ = original
            self._originals.clear()

    @property
    def patched(self) -> bool:
        return bool(self._originals)


def dropin_dir(own: Mapping[str, object], sdk: str) -> Callable[[], list[str]]:
    """The ``__dir__`` of a drop-in module whose other names come from the SDK module ``sdk`` (its ``__getattr__``):
    ``dir()`` lists them all, as ``dir()`` of the SDK module does, and the drop-in's own names (``own``, the
    module's globals). The SDK module is imported when ``dir()`` is called, not before."""

    def __dir__() -> list[str]:
        module = importlib.import_module(sdk)
        return sorted({*own, *dir(module), *getattr(module, "__all__", ())})

    return __dir__
