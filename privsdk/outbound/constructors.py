"""The constructors of SDK client classes, followed by guarding the new client: how drop-ins and
:func:`privsdk.instrument` put the guard into every client an SDK makes.

A drop-in class's ``__init__`` is the SDK's own followed by guarding; :func:`privsdk.instrument` puts the same
into the SDK's classes themselves, so that clients a framework builds inside itself are guarded too, and
:meth:`Constructors.restore` puts the SDK's own back (as opentelemetry-python-contrib's instrumentors do).
:func:`dropin_dir` is what a drop-in module (``privsdk.openai``, ...) lists: its own names and the SDK's;
:class:`SdkNames` is how it hands out the SDK's other names, submodules included, without an unguarded class.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any

Init = Callable[..., None]


def then_guard(init: Init, guard: Callable[[Any], object]) -> Init:
    """``init``, then ``guard(self)``: keeps the SDK's signature and docs (``functools.wraps``)."""

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        guard(self)

    return __init__


def repoint(http: Any, guard: Any, reroute: Callable[..., Any] | None, areroute: Callable[..., Any] | None) -> None:
    """Point the guarded transports of the httpx (or httpx2) client ``http`` at ``guard`` and at the reroute hook
    (``reroute`` for a sync client, ``areroute`` for an async one; None: a request the guard would reroute is refused).

    For a client guarded already that a drop-in's ``guard_client`` guards again with a guard of its own, or with
    reroutes off (privsdk.Client's adapters, under :func:`privsdk.instrument`): ``guard_httpx`` leaves a transport it
    guarded as it is. A transport not guarded (None, or one put there past the guard) is left alone.
    """
    from privsdk.outbound import transport

    kinds = transport._seam(transport._library(http))
    for sent_through in (http._transport, *http._mounts.values()):
        if isinstance(sent_through, kinds.transport):
            sent_through.guard, sent_through.reroute = guard, reroute
        elif isinstance(sent_through, kinds.async_transport):
            sent_through.guard, sent_through.reroute = guard, areroute


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


def star_names(sdk: ModuleType) -> list[str]:
    """What ``from SDK import *`` takes of the SDK module: its ``__all__``, else its public names. A drop-in's
    ``__all__`` holds these with its own, so that a star import from it takes what one from the SDK does."""
    names = getattr(sdk, "__all__", None)
    return list(names) if names is not None else [name for name in vars(sdk) if not name.startswith("_")]


def dropin_dir(own: Mapping[str, object], sdk: str) -> Callable[[], list[str]]:
    """The ``__dir__`` of a drop-in module whose other names come from the SDK module ``sdk`` (its ``__getattr__``):
    ``dir()`` lists them all, as ``dir()`` of the SDK module does, and the drop-in's own names (``own``, the
    module's globals). The SDK module is imported when ``dir()`` is called, not before."""

    def __dir__() -> list[str]:
        module = importlib.import_module(sdk)
        return sorted({*own, *dir(module), *getattr(module, "__all__", ())})

    return __dir__


class SdkNames:
    """The SDK's names as a drop-in module hands them out (its ``__getattr__``): the guarded class in place of one of
    the SDK's client classes (``swap``), and in place of a submodule that holds one, or holds a submodule that does,
    a view that does the same with its own names.

    So no attribute path through the drop-in reaches a client class that sends unguarded: ``privsdk.genai.client.
    Client`` is ``privsdk.genai.Client``, as ``google.genai.client.Client`` is ``google.genai.Client``. Every other
    name, submodules without a client class (``types``, ``errors``) included, is the SDK's own object.
    """

    def __init__(
        self, sdk: ModuleType, swap: Callable[[type[Any]], type[Any] | None], face: str, package: str | None = None
    ):
        """``sdk`` is the module the drop-in module ``face`` stands for; its submodules are those of ``package``
        (``sdk``'s top-level package unless given: ``google.genai``, not ``google``)."""
        self._sdk, self._swap, self._face = sdk, swap, face
        self._package = package or sdk.__name__.partition(".")[0]
        self._views: dict[str, ModuleType] = {}
        self._holders: tuple[str, ...] = ()
        self._modules_seen = 0  # len(sys.modules) when the holders were found: new imports may add some

    def __call__(self, name: str) -> Any:
        # Never the SDK package's __path__: with it, Python takes the drop-in module for a package and runs the
        # SDK's files again under its name (``from privsdk.openai._client import OpenAI``): new, unguarded classes.
        if name == "__path__":
            raise AttributeError(f"module {self._face!r} is not a package: import the SDK's submodules from the SDK")
        try:
            value = getattr(self._sdk, name)
        except AttributeError:
            value = self._submodule(name)
        return self.shown(value)

    def _submodule(self, name: str) -> ModuleType:
        """The SDK's submodule ``name`` that its ``__all__`` names and nothing has imported yet (google-genai's
        ``voices``): imported, as ``from SDK import *`` imports it. Any other missing name is an AttributeError."""
        if name in getattr(self._sdk, "__all__", ()) and hasattr(self._sdk, "__path__"):
            with contextlib.suppress(ModuleNotFoundError):
                return importlib.import_module(f"{self._sdk.__name__}.{name}")
        raise AttributeError(f"module {self._face!r} has no attribute {name!r}")

    def shown(self, value: Any) -> Any:
        """``value``, one of the SDK's names, as the drop-in hands it out."""
        # type(), not isinstance(): isinstance asks a proxy's __class__, and openai's lazy proxies import on that.
        kind = type(value)
        if issubclass(kind, type):
            return self._swap(value) or value
        if issubclass(kind, ModuleType):
            if value is self._sdk:  # a submodule's name for the SDK module itself: the drop-in module
                return sys.modules[self._face]
            name = value.__name__
            if (name == self._package or name.startswith(self._package + ".")) and self._holds_a_client(name):
                return self.view(value)
        return value

    def _holds_a_client(self, name: str) -> bool:
        """True when the SDK's module ``name``, or one of its submodules, holds one of the SDK's client classes."""
        if len(sys.modules) != self._modules_seen:  # found again after imports, not on every name (a few ms)
            self._modules_seen = len(sys.modules)
            prefix = self._package + "."
            self._holders = tuple(
                module_name
                for module_name, module in list(sys.modules.items())
                if (module_name == self._package or module_name.startswith(prefix))
                and any(
                    issubclass(type(v), type) and self._swap(v) for v in list(getattr(module, "__dict__", {}).values())
                )
            )
        return any(holder == name or holder.startswith(name + ".") for holder in self._holders)

    def view(self, module: ModuleType) -> ModuleType:
        """The view of one of the SDK's submodules, made once (``privsdk.genai.client is privsdk.genai.client``)."""
        view = self._views.get(module.__name__)
        if view is None:
            name = module.__name__
            below = name[len(self._sdk.__name__) + 1 :] if name.startswith(self._sdk.__name__ + ".") else name
            view = self._views[name] = _View(module, self, f"{self._face}.{below}")
        return view


class _View(ModuleType):
    """One of the SDK's submodules as a drop-in shows it (see :class:`SdkNames`)."""

    def __init__(self, real: ModuleType, names: SdkNames, name: str):
        super().__init__(name, real.__doc__)
        self._real, self._names = real, names

    def __getattr__(self, name: str) -> Any:
        return self._names.shown(getattr(self._real, name))

    def __dir__(self) -> list[str]:
        return dir(self._real)


# -- twins: the drop-in's guarded classes in place of an SDK's ---------------------------------------------------

#: The key, in a twin's namespace, of the SDK class it stands for.
_STANDS_FOR = "_privsdk_stands_for"


class TwinType(type):
    """The type of a twin (:func:`twin`): an object (or subclass) of the SDK's class passes for one of the twin's, as it
    does for the SDK's class. SDKs build their resources themselves (``client.models`` is google-genai's own
    ``Models``, ``co.v2`` cohere's ``V2Client``), so ``isinstance(client.models, privsdk.genai.models.Models)`` holds
    through the drop-in, as with the SDK's own names. A class the app derives from a twin checks as any class does."""

    def __instancecheck__(cls, instance: Any) -> bool:
        stands_for = vars(cls).get(_STANDS_FOR)
        return isinstance(instance, stands_for) if stands_for is not None else type.__instancecheck__(cls, instance)

    def __subclasscheck__(cls, subclass: type) -> bool:
        stands_for = vars(cls).get(_STANDS_FOR)
        return issubclass(subclass, stands_for) if stands_for is not None else type.__subclasscheck__(cls, subclass)


def twin(cls: type[Any], init: Init, *, module: str, package: str) -> type[Any]:
    """The SDK's class ``cls`` (of the SDK ``package``: ``cohere``, ``google.genai``), with ``init`` as its
    ``__init__`` (:func:`guarding_after`, or one that guards what it is given first): the drop-in's class in its place,
    named as the drop-in ``module`` hands it out. Its methods are the SDK's: nothing is added to a request."""
    functools.update_wrapper(init, cls.__init__)  # the SDK's signature and docs
    meta: Any = TwinType if type(cls) is type else type(f"_Twin{type(cls).__name__}", (TwinType, type(cls)), {})
    namespace = {"__doc__": cls.__doc__, "__init__": init, "__module__": module, _STANDS_FOR: cls}
    made: type[Any] = meta(cls.__name__, (cls,), namespace)
    made.__qualname__ = f"{cls.__module__.removeprefix(package + '.')}.{cls.__qualname__}"
    return made


def guarding_after(cls: type[Any], guard: Callable[[Any], object]) -> Init:
    """The ``__init__`` of a twin of ``cls`` that guards its instance once the SDK's ``__init__`` is done. The SDK's is
    looked up at each call, as the class has it then (under :func:`privsdk.instrument`, guarding already), unlike
    :func:`then_guard`'s."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        cls.__init__(self, *args, **kwargs)
        guard(self)

    return __init__


class Twins:
    """A drop-in's guarded classes in place of the SDK's (how a drop-in module hands out the SDK's names: the ``swap``
    of :class:`SdkNames`): called with one of the SDK's classes, the drop-in's class in its place, or None when it
    sends nothing.

    ``guarded`` are the drop-in's own classes, each a direct subclass of the SDK's class it stands for. Any other class
    of the SDK ``package`` (its modules: ``package`` and below) is given to ``make`` on first use, which returns its
    twin (:func:`twin`) or None; the answer is kept. Without ``package``, only ``guarded`` are known.
    """

    def __init__(
        self,
        *guarded: type[Any],
        package: str | None = None,
        make: Callable[[type[Any]], type[Any] | None] | None = None,
    ):
        self._known: dict[type[Any], type[Any] | None] = {cls.__bases__[0]: cls for cls in guarded}
        self._package, self._make = package, make

    def __call__(self, cls: type[Any]) -> type[Any] | None:
        try:
            return self._known[cls]
        except KeyError:
            pass
        except TypeError:  # a class that cannot be a key (its metaclass compares and does not hash)
            return None
        package, module = self._package, getattr(cls, "__module__", None)
        if package is None or self._make is None or not isinstance(module, str):
            return None
        if not (module == package or module.startswith(package + ".")):
            return None
        return self._known.setdefault(cls, self._make(cls))


def swap_for(*guarded: type[Any]) -> Callable[[type[Any]], type[Any] | None]:
    """A ``swap`` for :class:`SdkNames`: each SDK class that one of ``guarded`` (the drop-in's classes) subclasses
    directly, to that guarded class (:class:`Twins` that makes no others)."""
    return Twins(*guarded)
