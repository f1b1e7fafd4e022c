"""The openai SDK's own client classes, with privsdk's guard in their transport.

``OpenAI``, ``AsyncOpenAI``, ``AzureOpenAI``, ``AsyncAzureOpenAI`` (and the
Bedrock-hosted pair) are subclasses of openai's classes that differ in one
thing: the httpx client they send through (the SDK's default one, or the
``http_client`` the app passed) has the guard as its transport. Every
request any part of the SDK sends -- Chat Completions, Responses, files,
batches, raw and streaming wrappers, ``with_options`` copies -- is judged on
what it really is before a byte is written, and leaves a usage record.

A refusal raises :class:`PolicyViolation`, which is both
:class:`privsdk.PolicyViolation` and :class:`openai.APIError`: the SDK
re-raises an ``OpenAIError`` raised while sending as it is, so a refusal is
never retried, and handlers written for openai's errors catch it.

:func:`guard_client` guards a client the app already built;
:func:`instrument` makes every client built afterwards guarded, including
those that frameworks (LangChain, LlamaIndex, pydantic-ai, ...) build inside.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import httpx2
import openai

from privsdk.context import CallersContextExecutor
from privsdk.errors import PolicyViolation as _Violation
from privsdk.outbound.constructors import Constructors, then_guard

if TYPE_CHECKING:
    from privsdk.outbound.judge import Guard

__all__ = [
    "AsyncAzureOpenAI",
    "AsyncBedrockOpenAI",
    "AsyncClient",
    "AsyncOpenAI",
    "AzureOpenAI",
    "BedrockOpenAI",
    "Client",
    "OpenAI",
    "PolicyViolation",
    "guard_client",
    "instrument",
    "is_instrumented",
    "uninstrument",
]

#: The name the guard's records and seams know this SDK by.
SDK = "openai"

_Client = TypeVar("_Client", openai.OpenAI, openai.AsyncOpenAI)
#: ``code`` and ``type`` of a refusal, where openai's own errors carry the API's error code and type.
CODE = "policy_violation"


class PolicyViolation(_Violation, openai.APIError):
    """privsdk refused the request: a :class:`privsdk.PolicyViolation` that is also an :class:`openai.APIError`.

    openai documents ``APIError`` as the base of all its errors, so handlers written for them catch it. Its
    ``message`` (and ``str()``) names the unmet requirements and the endpoint, never the request's content;
    ``request`` is the httpx request refused (for a WebSocket connection, the GET that would have opened it);
    ``code`` and ``type`` are :data:`CODE`; ``body`` and ``param`` are None. It is not an ``APIStatusError``:
    nothing was sent, so there is no response and no status.
    """

    #: What a framework that maps errors by status reads (LiteLLM took a refusal with none for a 500, a fault to
    #: retry): 403, as the genai and boto3 drop-ins' refusals carry. No response exists: this is no APIStatusError.
    status_code = 403

    @classmethod
    def of(cls, violation: _Violation) -> PolicyViolation:
        """The same refusal as an openai error, carrying the same decision and message; its ``request`` is None
        until the seam that refused it names the request (:func:`privsdk.outbound.transport.guard_httpx` does)."""
        if isinstance(violation, cls):
            return violation
        refusal = cls.__new__(cls)
        refusal.__dict__.update(violation.__dict__)
        refusal.args = violation.args
        refusal.message = str(violation)
        refusal.request = None  # type: ignore[assignment]
        refusal.body = refusal.param = None
        refusal.code = refusal.type = CODE
        return refusal


Refusal = Callable[[_Violation], BaseException]
#: The attribute a guarded client carries its :class:`_Seam` in.
_MARK = "_privsdk_seam"


class _Seam(NamedTuple):
    """How a client is guarded: what judges its WebSocket connections (they do not pass through httpx), and what
    its copies are guarded with."""

    guard: Guard | None
    refusal: Refusal
    reroutes: bool


def install(
    client: _Client, guard: Guard | None, refusal: Refusal, *, reroutes: bool = True, replace: bool = False
) -> _Client:
    """Guard the httpx client ``client`` sends through, in place (a no-op when it already is, unless ``replace``).

    With ``reroutes``, a request the tenant reroutes is answered from the alternative in openai's wire
    format (:mod:`privsdk_openai.reroute`); without, it is refused. The client is also marked, so that its
    WebSocket connections (Realtime, Live, the Responses API's WebSocket mode), which the SDK opens with the
    websockets library rather than httpx, are judged too, and so that its copies (``with_options``) are guarded
    as it is, even one given an httpx client of its own. So is every httpx client put into its ``_client``
    later (pydantic-ai gives each new event loop a new one), or handed out by a ``_client`` property (openai's
    module-level client reads ``openai.http_client`` on every request).

    A client (or httpx client) guarded already keeps its guard, unless ``replace`` and ``guard`` is given: then
    ``guard`` judges its requests from now on (:func:`guard_client` with a guard, the copy of a client guarded
    by one). Constructors (drop-in classes, :func:`instrument`) never replace: guarding is done once there.
    """
    from privsdk.outbound.transport import keep_guarded

    replace = replace and guard is not None
    seam: _Seam | None = getattr(client, _MARK, None)
    _guard_http(client._client, guard, refusal, reroutes, replace)
    if seam is None:
        setattr(client, _MARK, _Seam(guard, refusal, reroutes))
        _guard_class(type(client))
        _uploads_in_callers_context()
    elif replace and seam.guard is not guard:
        setattr(client, _MARK, seam._replace(guard=guard))
    keep_guarded(client, "_client", _guard_swapped)
    return client


def _guard_swapped(client: Any, http: Any) -> None:
    """Guard ``http``, an httpx client put into (or handed out by) the guarded ``client``'s ``_client``, as
    ``client`` is guarded. One guarded already (by the client's guard, or another's) is left as it is."""
    seam: _Seam = getattr(client, _MARK)
    _guard_http(http, seam.guard, seam.refusal, seam.reroutes, False)


def _guard_http(http: Any, guard: Guard | None, refusal: Refusal, reroutes: bool, replace: bool) -> None:
    """Put the guard in front of the transports of ``http`` (an httpx or httpx2 client); with ``replace``,
    transports guarded already are pointed at ``guard``."""
    from privsdk.outbound import transport

    if reroutes:
        from privsdk_openai import reroute

        transport.guard_httpx(http, sdk=SDK, refusal=refusal, guard=guard, reroute=reroute.send, areroute=reroute.asend)
    else:
        transport.guard_httpx(http, sdk=SDK, refusal=refusal, guard=guard)
    if replace:
        kinds = transport._seam(transport._library(http))
        for sent_through in (http._transport, *http._mounts.values()):
            if isinstance(sent_through, (kinds.transport, kinds.async_transport)):
                sent_through.guard = guard


#: The client classes whose copies :func:`_guard_class` has seen to.
_SEEN_CLASSES: set[type[Any]] = set()


def _uploads_in_callers_context() -> None:
    """openai's ``upload_and_poll`` uploads the files from a ThreadPoolExecutor of its own, where the app's
    privsdk.scope is not in force: each upload would be judged for another tenant. Its pool runs each upload in the
    caller's context instead (for every openai client; for one that is not guarded, nothing else changes)."""
    from openai.lib import _vector_stores

    if getattr(_vector_stores, "ThreadPoolExecutor", None) is ThreadPoolExecutor:
        _vector_stores.ThreadPoolExecutor = _pool_in_callers_context  # type: ignore[attr-defined,assignment]


def _pool_in_callers_context(*args: Any, **kwargs: Any) -> Executor:
    return CallersContextExecutor(ThreadPoolExecutor(*args, **kwargs))


def _guard_class(cls: type[Any]) -> None:
    """Make the copies (``copy`` / ``with_options``) of a guarded client of ``cls`` guarded as the client is.

    They are wrapped in the class that defines them, once, and change nothing for a client that is not guarded.
    """
    if cls in _SEEN_CLASSES:
        return
    for klass in cls.__mro__:
        own = vars(klass).get("copy")
        if own is not None and not getattr(own, "_privsdk_guards_copies", False):
            wrapped = _guarding_copies(own)
            for name in ("copy", "with_options"):
                if vars(klass).get(name) is own:
                    setattr(klass, name, wrapped)
    _SEEN_CLASSES.add(cls)


def _guarding_copies(copy: Callable[..., Any]) -> Callable[..., Any]:
    """openai builds a ``copy()`` / ``with_options()`` result with the client's own class: openai's, for a client
    the app built and guarded. A copy that shares the httpx client is guarded already; one given an
    ``http_client`` of its own would send unguarded, and a drop-in's copy would be guarded by the guard its
    constructor uses rather than the one given to :func:`guard_client`. The copy of a guarded client is guarded
    with the same guard; any other copy is untouched."""

    @functools.wraps(copy)
    def guarded_copy(self: Any, *args: Any, **kwargs: Any) -> Any:
        made = copy(self, *args, **kwargs)
        seam: _Seam | None = getattr(self, _MARK, None)
        if seam is not None:
            mine: _Seam | None = getattr(made, _MARK, None)
            if mine is None or mine.guard is not seam.guard:
                install(made, seam.guard, seam.refusal, reroutes=seam.reroutes, replace=True)
        return made

    guarded_copy._privsdk_guards_copies = True  # type: ignore[attr-defined]
    return guarded_copy


def guard_client(client: _Client, *, guard: Guard | None = None) -> _Client:
    """Guard ``client``, an ``openai.OpenAI``/``AsyncOpenAI`` (Azure and Bedrock ones too) the app built.

    The client's httpx client gets the guard as its transport, so the client
    and any other client sharing that httpx client are guarded from now on;
    so are its ``copy()`` / ``with_options()`` copies, even one given an
    ``http_client`` of its own. ``guard`` defaults to the process-wide one
    configured from the environment; on a client guarded already (a drop-in,
    one built under :func:`instrument`), a ``guard`` given here replaces the
    one it had, for every client sharing its httpx client. Returns ``client``.
    """
    if not isinstance(client, (openai.OpenAI, openai.AsyncOpenAI)):
        raise TypeError(
            f"privsdk.openai.guard_client takes an openai.OpenAI or openai.AsyncOpenAI client, "
            f"not {type(client).__module__}.{type(client).__qualname__}"
        )
    return install(client, guard, PolicyViolation.of, replace=True)


def _install(client: Any) -> None:
    install(client, _instrumented.get("guard"), PolicyViolation.of)


def _guarded_init(init: Callable[..., None]) -> Callable[..., None]:
    """``init`` followed by guarding the new client: the constructor of every drop-in class."""
    return then_guard(init, _install)


# The drop-in classes. Their __init__ is openai's, followed by guarding; type checkers see openai's
# own signature (functools.wraps also gives inspect.signature the original's).


class OpenAI(openai.OpenAI):
    __doc__ = openai.OpenAI.__doc__
    if not TYPE_CHECKING:
        __init__ = _guarded_init(openai.OpenAI.__init__)


class AsyncOpenAI(openai.AsyncOpenAI):
    __doc__ = openai.AsyncOpenAI.__doc__
    if not TYPE_CHECKING:
        __init__ = _guarded_init(openai.AsyncOpenAI.__init__)


class AzureOpenAI(openai.AzureOpenAI):
    __doc__ = openai.AzureOpenAI.__doc__
    if not TYPE_CHECKING:
        __init__ = _guarded_init(openai.AzureOpenAI.__init__)


class AsyncAzureOpenAI(openai.AsyncAzureOpenAI):
    __doc__ = openai.AsyncAzureOpenAI.__doc__
    if not TYPE_CHECKING:
        __init__ = _guarded_init(openai.AsyncAzureOpenAI.__init__)


class BedrockOpenAI(openai.BedrockOpenAI):
    __doc__ = openai.BedrockOpenAI.__doc__
    if not TYPE_CHECKING:
        __init__ = _guarded_init(openai.BedrockOpenAI.__init__)


class AsyncBedrockOpenAI(openai.AsyncBedrockOpenAI):
    __doc__ = openai.AsyncBedrockOpenAI.__doc__
    if not TYPE_CHECKING:
        __init__ = _guarded_init(openai.AsyncBedrockOpenAI.__init__)


#: openai's own aliases (``openai.Client is openai.OpenAI``), kept: the same drop-in classes.
Client = OpenAI
AsyncClient = AsyncOpenAI

#: The drop-in classes: their copies are drop-ins, guarded by their own constructor.
_DROPINS = (OpenAI, AsyncOpenAI, AzureOpenAI, AsyncAzureOpenAI, BedrockOpenAI, AsyncBedrockOpenAI)
#: openai's client classes -> the guarded classes handed out in their place (:func:`guarded_class`).
_GUARDED: dict[type[Any], type[Any]] = {cls.__bases__[0]: cls for cls in _DROPINS}


def guarded_class(cls: type[Any]) -> type[Any]:
    """The guarded class to use in place of ``cls``, a client class of openai's (a subclass of its base client).

    The drop-in class for openai's own classes and their aliases (``openai.Client`` is ``openai.OpenAI``); for
    any other (the module-level client's classes, a class a later openai release adds), a subclass made on first
    use whose constructor is openai's followed by guarding, as the drop-in classes' is. A class guarded already
    is returned as it is. So no name of the drop-in module hands out a client class that sends unguarded.
    """
    found = _GUARDED.get(cls)
    if found is not None:
        return found
    if any(issubclass(cls, guarded) for guarded in _GUARDED.values()):
        return cls
    namespace = {
        "__doc__": cls.__doc__,
        "__module__": __name__,
        "__qualname__": cls.__qualname__,
        "__init__": _guarded_init(cls.__init__),
    }
    return _GUARDED.setdefault(cls, type(cls.__name__, (cls,), namespace))


# --- instrument(): every client built from now on is guarded -----------------------------------------------------

#: The SDK classes whose constructor instrument() wraps. Every client class of the SDK (Azure, Bedrock, the
#: module-level client, a framework's subclass) runs one of these two constructors.
_ROOTS: tuple[type[Any], ...] = (openai.OpenAI, openai.AsyncOpenAI)
_constructors = Constructors(_install)
_instrumented: dict[str, Guard | None] = {}


def instrument(*, guard: Guard | None = None) -> None:
    """Guard every openai client created from now on, by the app or inside a framework.

    Wraps the constructors of ``openai.OpenAI`` and ``openai.AsyncOpenAI``
    (which every other client class of the SDK runs). Idempotent; clients
    built before the call stay as they are (use :func:`guard_client`).
    ``guard`` defaults to the process-wide one configured from the environment.
    """
    _instrumented["guard"] = guard
    _constructors.patch(_ROOTS)


def uninstrument() -> None:
    """Undo :func:`instrument`: clients created afterwards are openai's own again (drop-in classes stay guarded)."""
    _constructors.restore()
    _instrumented.pop("guard", None)


def is_instrumented() -> bool:
    """Whether :func:`instrument` is in effect."""
    return _constructors.patched


# --- WebSocket connections ------------------------------------------------------------------------------------------

#: Resource modules whose ``connect`` opens a WebSocket, and the path family the connection serves.
_WEBSOCKETS: tuple[tuple[str, str], ...] = (
    ("openai.resources.realtime.realtime", "realtime"),
    ("openai.resources.realtime.translations.translations", "realtime"),
    ("openai.resources.beta.realtime.realtime", "realtime"),
    ("openai.resources.live.live", "live"),
    ("openai.resources.live.sideband", "live"),
    ("openai.resources.live.forks", "live"),
    ("openai.resources.responses.responses", "responses"),
    ("openai.resources.beta.responses.responses", "responses"),
)


def _judge_websocket(client: Any, family: str) -> None:
    """Judge the WebSocket a guarded client is about to open, as a GET of its endpoint: refuse before connecting."""
    seam: _Seam | None = getattr(client, _MARK, None)
    if seam is None:
        return
    from privsdk.decision import unjudged
    from privsdk.errors import ConfigError
    from privsdk.outbound.judge import Guard
    from privsdk.outbound.outgoing import Outgoing
    from privsdk.outbound.transport import _refused

    url = httpx2.URL(str(client.websocket_base_url or client.base_url))
    scheme = {"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)
    path = url.path.rstrip("/") + "/" + family
    headers = {k.lower(): v for k, v in client.default_headers.items() if isinstance(v, str)}
    out = Outgoing(SDK, "GET", scheme, url.host, url.port, path, "", headers, b"")
    opening = httpx2.Request("GET", url.copy_with(path=path))  # what a refusal names: no headers, no credentials
    try:
        passed = (seam.guard or Guard.default()).check(out)
    except _Violation as violation:
        raise _refused(seam.refusal, violation, opening) from None
    except ConfigError as exc:  # fail closed, as the httpx seam does
        raise _refused(seam.refusal, _Violation(unjudged(out.host, f"configuration error: {exc}")), opening) from None
    passed.finish(None, (None, None), None)


def _guarded_connect(connect: Callable[..., Any], family: str) -> Callable[..., Any]:
    @functools.wraps(connect)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        _judge_websocket(self._client, family)
        return connect(self, *args, **kwargs)

    guarded.__privsdk_guarded__ = True  # type: ignore[attr-defined]
    return guarded


def _patch(module: ModuleType, family: str) -> None:
    for cls in list(vars(module).values()):
        connect = cls.__dict__.get("connect") if isinstance(cls, type) and cls.__module__ == module.__name__ else None
        if connect is not None and not getattr(connect, "__privsdk_guarded__", False):
            cls.connect = _guarded_connect(connect, family)


class _PatchingLoader(importlib.abc.Loader):
    """Runs the module's own loader, then wraps its ``connect`` methods."""

    def __init__(self, inner: importlib.abc.Loader, family: str) -> None:
        self._inner = inner
        self._family = family

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        _patch(module, self._family)


class _WebSocketModules(importlib.abc.MetaPathFinder):
    """Wraps the WebSocket resource modules when openai imports them, which it does lazily.

    Importing them here would load all of ``openai.types`` (over a second) with ``import privsdk.openai``.
    """

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        family = _FAMILIES.get(fullname)
        if family is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _PatchingLoader(spec.loader, family)
        return spec


_FAMILIES = dict(_WEBSOCKETS)


def _guard_websockets() -> None:
    """Wrap every ``connect`` that opens a WebSocket (a no-op for clients that are not guarded): now for the
    modules already imported, on import for the others."""
    for name, family in _WEBSOCKETS:
        module = sys.modules.get(name)
        if module is not None:
            _patch(module, family)
    if not any(isinstance(finder, _WebSocketModules) for finder in sys.meta_path):
        sys.meta_path.insert(0, _WebSocketModules())


_guard_websockets()
