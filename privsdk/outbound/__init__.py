"""What really leaves the process: the guard in each vendor SDK's transport.

:func:`guard` puts the guard into a client the app already built;
:func:`instrument` puts it into every client of every supported SDK created
from then on, by the app or by a framework inside it (LangChain, LlamaIndex,
pydantic-ai ...); ``privsdk run -- python app.py`` does that before the app
starts, configured by the environment alone. Each SDK's own code lives in its
package under ``adapters/`` (``privsdk_openai.dropin``, ...); this module only
knows which package serves which SDK, and imports none until asked.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, SupportsIndex, TypeVar

C = TypeVar("C")

#: The SDK module whose import makes a client class available -> the privsdk package that guards it.
DROPINS: dict[str, str] = {
    "openai": "privsdk_openai.dropin",
    "cohere": "privsdk_cohere.dropin",
    "mistralai": "privsdk_mistral.dropin",
    "botocore": "privsdk_bedrock.dropin",
    "aiobotocore": "privsdk_bedrock.aio",  # its async clients (aioboto3's too) are botocore's, guarded alike
    "google.genai": "privsdk_vertex.dropin",
}
#: What to install for each SDK's drop-in, for the error when its package is missing.
_EXTRAS = {
    "openai": "openai",
    "cohere": "cohere",
    "mistralai": "mistral",
    "botocore": "bedrock",
    "aiobotocore": "bedrock",
    "google.genai": "vertex",
}


def _sdk_of(cls: type) -> str | None:
    """The key of :data:`DROPINS` whose SDK defines ``cls`` or a class it derives from (a drop-in's
    ``privsdk_openai.dropin.OpenAI`` derives from ``openai.OpenAI``)."""
    for base in cls.__mro__:
        module = base.__module__
        if module.startswith("boto3"):
            return "botocore"
        found = next((sdk for sdk in DROPINS if module == sdk or module.startswith(sdk + ".")), None)
        if found is not None:
            return found
    return None


def _dropin(sdk: str) -> ModuleType:
    from privsdk.errors import AdapterMissing

    try:
        return importlib.import_module(DROPINS[sdk])
    except ImportError as exc:
        if exc.name is None or not DROPINS[sdk].startswith(exc.name.split(".")[0]):
            raise
        raise AdapterMissing(
            f"privsdk's {sdk} support is not installed", hint=f"pip install 'privsdk[{_EXTRAS[sdk]}]'"
        ) from None


def guard(client: C) -> C:
    """Guard a vendor SDK client the app already built, in place, and return it.

    Takes a client of openai (``OpenAI``, ``AsyncOpenAI``, ``AzureOpenAI`` ...), cohere, mistralai,
    boto3/botocore (``bedrock-runtime`` and the other Bedrock services) or google-genai. Every request it
    sends from now on is judged by the process-wide guard (``PRIVSDK_*`` environment).
    """
    sdk = _sdk_of(type(client))
    if sdk is None:
        raise TypeError(
            f"privsdk.guard() takes a client of openai, cohere, mistralai, boto3 or google-genai, "
            f"not {type(client).__module__}.{type(client).__qualname__}"
        )
    guarded: C = _dropin(sdk).guard_client(client)
    return guarded


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs callbacks right after a module is first imported: how :func:`instrument` reaches SDKs the app
    has not imported yet, without importing them itself (openai and google-genai take a second each).

    One callback may wait on several modules (mistralai's clients come from three): it runs once, at the first of
    them to be imported, and is then taken off the others. A callback imports the SDK's drop-in, which imports the
    SDK's other modules: left pending there, it would run again inside its own first run, while the drop-in is
    still initialising. And callbacks run only once no module the thread is importing is one waited on or one in
    ``holding`` (the drop-ins), and no callback is running: a module imported inside such an import is ready, but
    the module importing it is not, and the callback imports that one too (an app that imports a drop-in itself,
    which imports its SDK, would otherwise have the callback find the drop-in half-initialised).
    """

    def __init__(self) -> None:
        self.pending: dict[str, list[Callable[[], None]]] = {}
        self.holding: set[str] = set()
        self._names: dict[Callable[[], None], Sequence[str]] = {}  # each callback's modules, to wait on them again
        self._thread = threading.local()  # depth: the thread's waited-on imports and callbacks under way; deferred

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.pending and not (self.pending and fullname in self.holding):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                # The callbacks stay pending until the module runs: a spec only looked up (importlib.util.find_spec,
                # as frameworks tell whether a package is installed) is never loaded.
                spec.loader = _ThenRun(spec.loader, self, fullname)
                return spec
        return None

    def wait(self, names: Sequence[str], callback: Callable[[], None]) -> None:
        """Run ``callback`` once, after the first of ``names`` to be imported."""
        self._names[callback] = names
        for name in names:
            waiting = self.pending.setdefault(name, [])
            if callback not in waiting:
                waiting.append(callback)

    def _take(self, name: str) -> list[Callable[[], None]]:
        """The callbacks waiting on ``name``, taken off every module they wait on."""
        taken = self.pending.pop(name, [])
        for other, waiting in list(self.pending.items()):
            left = [callback for callback in waiting if callback not in taken]
            if len(left) != len(waiting):
                if left:
                    self.pending[other] = left
                else:
                    self.pending.pop(other, None)
        return taken

    def loading(self, name: str, load: Callable[[], None]) -> None:
        """``load`` the module ``name``, then run what waited on it, or leave that for the outermost import."""
        state = self._thread
        depth: int = getattr(state, "depth", 0)
        if not depth:
            state.deferred = []
        state.depth = depth + 1
        try:
            load()
            state.deferred.extend(self._take(name))  # not when it failed: its callbacks wait for another try
        finally:
            state.depth = depth
            if not depth:
                self._run(state)

    def _run(self, state: threading.local) -> None:
        """Run the deferred callbacks and those they defer in turn, each with the imports it made complete; then,
        once, those whose module another thread imported meanwhile (:meth:`_ready`). One that raises waits on its
        modules again, and leaves the others to run. Its error is raised after them, but for a deadlock between
        two threads' imports (this one's SDK, another's drop-in of it): the other thread, whose import of the
        drop-in completes once this one's SDK has, then runs the callback (:meth:`_ready`)."""
        failed: BaseException | None = None
        state.depth = 1
        try:
            for ready in (False, True):
                if ready:
                    state.deferred = self._ready()
                while state.deferred:
                    callback = state.deferred.pop(0)
                    try:
                        callback()
                    except BaseException as exc:
                        self.wait(self._names.get(callback, ()), callback)
                        if type(exc).__name__ != "_DeadlockError":  # importlib's, raised to one thread of a cycle
                            failed = failed or exc
        finally:
            state.depth = 0
        if failed is not None:
            raise failed

    def _ready(self) -> list[Callable[[], None]]:
        """The callbacks waiting on a module that is imported now, whole: one whose callback failed in the thread
        that imported it (a deadlock with this thread's import of its drop-in)."""
        ready: list[Callable[[], None]] = []
        for name in list(self.pending):
            module = sys.modules.get(name)
            if module is not None and not getattr(getattr(module, "__spec__", None), "_initializing", False):
                ready.extend(c for c in self._take(name) if c not in ready)
        return ready


class _ThenRun(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader, hook: _AfterImport, name: str):
        self.inner, self.hook, self.name = inner, hook, name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.hook.loading(self.name, lambda: self.inner.exec_module(module))


#: SDKs whose clients come from a module below their top-level name, which is a namespace package (no loader to
#: run callbacks after) or holds no client: the modules an app gets them through. mistralai 3 is
#: ``mistralai.client`` (and ``mistralai.azure.client``).
_IMPORTED_AS = {
    "mistralai": ("mistralai.client", "mistralai.azure.client", "mistralai.gcp.client"),
    # aiobotocore's sessions make its clients; aiobotocore itself holds only its version.
    "aiobotocore": ("aiobotocore.session",),
}


class _HeadFirst(list):  # type: ignore[type-arg]
    """``sys.meta_path`` once :func:`instrument` has waited for an SDK to be imported.

    privsdk's finder must see an SDK's import first to patch it. An import hook the app puts at the head later
    (typeguard's, beartype's and lazy importers' find modules themselves) would load the SDK unpatched, and its
    clients would send unguarded. So while an SDK is still to be imported, privsdk's finder is put back at the
    head after a finder is inserted or assigned there. It passes every other module by, and finds an SDK's module
    through the finders after it, the app's included, so the app's hook still loads it.
    """

    def insert(self, index: SupportsIndex, finder: Any) -> None:
        super().insert(index, finder)
        self._head()

    def __setitem__(self, index: Any, value: Any) -> None:  # sys.meta_path[0] = ..., sys.meta_path[:0] = [...]
        super().__setitem__(index, value)
        self._head()

    def _head(self) -> None:
        if _hook.pending and not (self and self[0] is _hook):
            if _hook in self:
                list.remove(self, _hook)
            list.insert(self, 0, _hook)


_hook = _AfterImport()
_instrumented: set[str] = set()
_lock = threading.Lock()


def instrument() -> None:
    """Guard every client of every supported SDK created from now on, in this process.

    SDKs already imported are patched now; the others as soon as they are imported. The policy comes from
    the environment, and is read now, so that a configuration error is raised here rather than at the
    first request. Idempotent; :func:`uninstrument` undoes it.
    """
    from privsdk.outbound.judge import Guard

    Guard.default()
    with _lock:
        for sdk in DROPINS:
            if sdk in _instrumented:
                continue
            _instrumented.add(sdk)
            if sdk in sys.modules:
                _patch(sdk)
            else:  # installed or not: a path added later (site.addsitedir, a vendored folder) may bring it
                _hook.wait(_IMPORTED_AS.get(sdk, (sdk,)), lambda sdk=sdk: _patch(sdk))  # type: ignore[misc]
                _hook.holding.add(DROPINS[sdk])
        if _hook.pending and _hook not in sys.meta_path:
            if type(sys.meta_path) is list:  # the interpreter's own: replaced once, and kept after uninstrument()
                sys.meta_path = _HeadFirst(sys.meta_path)
            list.insert(sys.meta_path, 0, _hook)


def _patch(sdk: str) -> None:
    """Guard ``sdk``'s clients, now that it is imported. When privsdk's support for it cannot be imported (a
    dependency of another version than it needs), the SDK would send unguarded: that is an error, raised where the
    app imports the SDK, so the app stops there instead."""
    try:
        module = importlib.import_module(DROPINS[sdk])
    except ImportError as exc:
        from privsdk.errors import AdapterMissing

        raise AdapterMissing(
            f"{sdk} is imported, and privsdk cannot guard it: its support needs {exc.name or 'a module'}, which "
            "cannot be imported",
            hint=f"install the versions privsdk supports: pip install 'privsdk[{_EXTRAS[sdk]}]'",
        ) from None
    module.instrument()


def uninstrument() -> None:
    """Undo :func:`instrument`: clients created from now on are the SDKs' own; guarded ones stay guarded."""
    with _lock:
        _hook.pending.clear()
        _hook.holding.clear()
        if _hook in sys.meta_path:
            sys.meta_path.remove(_hook)
        for sdk in list(_instrumented):
            if sdk in sys.modules and DROPINS[sdk] in sys.modules:
                sys.modules[DROPINS[sdk]].uninstrument()
        _instrumented.clear()


def __getattr__(name: str) -> Any:  # pragma: no cover - a clear error for a common slip
    raise AttributeError(f"module 'privsdk.outbound' has no attribute {name!r}")
