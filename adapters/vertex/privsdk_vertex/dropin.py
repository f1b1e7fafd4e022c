"""google-genai's own ``Client`` with privsdk's guard in its HTTP transport.

``from privsdk import genai`` replaces ``from google import genai``: ``genai.Client`` here *is* a
``google.genai.Client`` (a subclass), so every attribute (``models``, ``aio``, ``chats``, ``files``,
``caches``, ``batches``, ``tunings``, ``interactions``, ...), type and error behaves as in the SDK. The
only difference: every request the SDK sends passes :mod:`privsdk.guard` first, which judges it from
what it really is (host, project and location in the path, operation, model, body features) and refuses
it before a byte is written when the tenant's requirements are not met.

google-genai sends through one httpx-like client for sync calls and one for async calls (``client.aio``),
both on its internal ``BaseApiClient``: httpx2 (a fork of httpx, its default) or httpx, built by the SDK or
passed by the app; the newer resources (``interactions``, ``agents``, ...) reuse the same two. It can also
send through aiohttp (when installed) and through google-auth's requests/aiohttp sessions (mTLS with a
default client certificate), opens websockets for the Live API, and connects to Agent Platform MCP servers
(an ``mcp_servers`` tool) with an httpx client it builds for the connection. :func:`guard_client` closes every
one of those paths: the two clients are guarded in place (the async one's per-event-loop inner clients too, those
cached before and those built later), the aiohttp and google-auth paths are switched off for that client, the
Live API asks the guard before it connects, and a guarded client connects to no MCP server.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import weakref
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from google import genai as _genai
from google.genai import _api_client as _sdk
from google.genai import _mcp_utils
from google.genai import errors as _errors
from google.genai.live import AsyncLive as _AsyncLive
from google.genai.live_music import AsyncLiveMusic as _AsyncLiveMusic

from privsdk import errors as _privsdk_errors
from privsdk.errors import ConfigError
from privsdk.outbound.constructors import Constructors, Twins, guarding_after, twin
from privsdk.outbound.outgoing import Outgoing

if TYPE_CHECKING:
    from privsdk.outbound.judge import Guard

__all__ = ["SDK", "Client", "PolicyViolation", "guard_client", "instrument", "uninstrument"]

#: The seam's name in usage records and in :class:`~privsdk.outbound.outgoing.Outgoing`.
SDK = "genai"
#: google.genai's Google-status name for a refusal: what its own 403 errors carry.
_STATUS = "PERMISSION_DENIED"


class PolicyViolation(_privsdk_errors.PolicyViolation, _errors.ClientError):
    """A refused request: both :class:`privsdk.PolicyViolation` and google-genai's ``errors.ClientError``
    (an ``errors.APIError``), so ``except errors.APIError`` handlers catch it.

    ``code`` is 403 and ``status`` ``PERMISSION_DENIED``, as for a request Google itself refuses; no
    request was sent, so ``response`` is None. ``message`` and ``details`` hold privsdk's message only:
    the requirement names and the offering, never the request's content. google-genai's retries never
    retry it (see :func:`guard_client`).
    """

    def __init__(self, violation: _privsdk_errors.PolicyViolation):
        message = str(violation)
        _errors.ClientError.__init__(self, 403, {"error": {"code": 403, "message": message, "status": _STATUS}})
        self.decision = violation.decision
        self.args = (message,)

    def __str__(self) -> str:
        return str(self.args[0])


def refusal(violation: _privsdk_errors.PolicyViolation) -> PolicyViolation:
    """The exception the guard raises for this SDK (the transport's ``refusal`` callback)."""
    return violation if isinstance(violation, PolicyViolation) else PolicyViolation(violation)


class Client(_genai.Client):
    """``google.genai.Client``, guarded. Takes the same arguments with the same meaning.

    An ``httpx_client`` / ``httpx_async_client`` (httpx or httpx2) the app passes in ``http_options`` is
    guarded in place.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        guard_client(self)


# help() and inspect show google-genai's own parameters.
setattr(Client.__init__, "__signature__", inspect.signature(_genai.Client.__init__))  # noqa: B010
Client.__init__.__doc__ = _genai.Client.__init__.__doc__


class BaseApiClient(_sdk.BaseApiClient):
    """google-genai's ``BaseApiClient``, guarded: what every ``Client`` sends through, and what
    ``google.genai.client.AsyncClient(api_client)`` is built around. ``privsdk.genai.client.BaseApiClient`` is this
    class, so that no name of the drop-in builds one that sends unguarded."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        guard_client(self)


setattr(BaseApiClient.__init__, "__signature__", inspect.signature(_sdk.BaseApiClient.__init__))  # noqa: B010


# -- guarding a client ------------------------------------------------------------------------------

_GUARDED = "_privsdk_guarded"
#: Resources of the NextGen API that a client caches once built; built again after guarding, they take the
#: guarded clients.
_NEXTGEN_CACHES = (
    "_nextgen_client_instance",
    "_agents",
    "_interactions",
    "_webhooks",
    "_triggers",
    "_environments",
    "_credentials",
    "_voices",
    "_decisions",
)


def guard_client(client: Any, *, guard: Guard | None = None, reroutes: bool = True) -> Any:
    """Guard a ``google.genai.Client`` (or its ``client.aio``, or the ``BaseApiClient`` under them) the app already
    built; returns it.

    Every later request of that client, sync and async, passes the guard (``guard``, else the
    process-wide one configured from the environment). Idempotent; on a client guarded already, a
    ``guard`` given here replaces the one it had. With ``reroutes``, a request the tenant reroutes is
    answered from the alternative in Google's wire format (:mod:`privsdk_vertex.reroute`); without, it is
    refused (privsdk.Client's own adapters, whose requests the Client reroutes itself).
    """
    api = client if isinstance(client, _sdk.BaseApiClient) else getattr(client, "_api_client", None)
    if not isinstance(api, _sdk.BaseApiClient):
        raise TypeError(f"privsdk.genai.guard_client takes a google.genai Client, not {type(client).__name__}")
    if not getattr(api, _GUARDED, False):
        _guard_api_client(api, guard, reroutes)
    elif guard is not None and guard is not getattr(api, "_privsdk_guard", None):
        _repoint(api, guard)  # guarded already (a drop-in, instrument()): by this guard from now on
    _guard_holders(client, api)
    return client


def _guard_holders(client: Any, api: Any) -> None:
    """What ``client`` (and its ``aio``) built around the guarded ``api`` before it was guarded: NextGen resources that
    hold a client of their own, built again on first use; a Live API module, judged and recorded before it connects."""
    for holder in (client, getattr(client, "_aio", None)):
        if holder is None or holder is api:
            continue
        if getattr(api, "_privsdk_new_async", False):
            for name in _NEXTGEN_CACHES:
                if name in vars(holder):
                    setattr(holder, name, None)
        live = vars(holder).get("_live")
        if isinstance(live, _AsyncLive) and not isinstance(live, _GuardedLive):
            holder._live = _GuardedLive(api)


def _never() -> bool:
    return False


def _streams_in_callers_context() -> None:
    """``generate_content_stream`` and a chat's ``send_message_stream`` (sync and async) return generators that
    send their requests only as they are read: a guarded client's are read in the context of the call (its
    ``privsdk.scope``), wherever they are read; an unguarded client's are left alone. Patched once."""
    from google.genai import chats, models

    from privsdk.context import streams_in_callers_context

    def models_guarded(self: Any) -> bool:
        return bool(getattr(self._api_client, _GUARDED, False))

    def chat_guarded(self: Any) -> bool:
        return models_guarded(self._modules)

    for owner, name, guarded in (
        (models.Models, "generate_content_stream", models_guarded),
        (models.AsyncModels, "generate_content_stream", models_guarded),
        (chats.Chat, "send_message_stream", chat_guarded),
        (chats.AsyncChat, "send_message_stream", chat_guarded),
    ):
        streams_in_callers_context(owner, name, guarded)


def _guard_api_client(api: Any, guard: Guard | None, reroutes: bool) -> None:
    from privsdk.outbound.transport import guard_httpx, keep_guarded
    from privsdk_vertex import reroute

    _streams_in_callers_context()
    session = getattr(api._http_options, "aiohttp_client", None)
    if session is not None:  # it would be passed over without a word: its headers, hooks and connector unused
        raise _not_httpx("aiohttp_client", session)
    api._privsdk_guard = guard
    hooks: dict[str, Any] = {"reroute": reroute.send, "areroute": reroute.asend} if reroutes else {}

    def guarding(field: str) -> Callable[[Any, Any], None]:
        def guard_http(api: Any, client: Any) -> None:
            if not _httpx_family(client):
                raise _not_httpx(field, client)

            def wrap(one: Any) -> Any:
                return guard_httpx(one, sdk=SDK, refusal=refusal, guard=api._privsdk_guard, **hooks)

            wrap(client)
            _guard_per_loop(client, wrap)

        return guard_http

    # Frameworks put new httpx clients into these two later (pydantic-ai, on each new event loop): every one put
    # there is guarded as these are.
    keep_guarded(api, "_httpx_client", guarding("httpx_client"))
    if api._async_httpx_client is None:
        # google-genai meant to send async requests through google-auth's aiohttp session: give it the async
        # client it would otherwise have built, guarded, and send through that instead.
        _, async_class = _sdk._get_http_client_classes(api._http_options)
        api._async_httpx_client = async_class(**api._async_httpx_client_args)
        api._privsdk_new_async = True  # NextGen resources built before now hold a client of their own
    keep_guarded(api, "_async_httpx_client", guarding("httpx_async_client"))
    # The other ways google-genai can send (aiohttp when installed, google-auth's mTLS sessions) would pass
    # beside the guard: a guarded client sends through its guarded httpx clients only.
    api._use_aiohttp = _never
    api._use_google_auth_sync = _never
    api._use_google_auth_async = _never
    # Every Live API connection takes its URL here, whichever object opens it (client.aio.live, an AsyncClient or
    # an AsyncLive the app builds around this api client): none opens before the guard has judged where it goes.
    api._privsdk_websocket_base_url = api._websocket_base_url
    api._websocket_base_url = functools.partial(_judged_websocket_base_url, weakref.proxy(api))
    _carry_refusals_past_retries(api)
    setattr(api, _GUARDED, True)


class _Refused(Exception):
    """A refusal on its way through google-genai's retrier, which retries an ``APIError`` whose code the app
    listed (403 may be one) and transient transport errors, never anything else."""

    def __init__(self, refusal: PolicyViolation):
        super().__init__()
        self.refusal = refusal


def _carry_refusals_past_retries(api: Any) -> None:
    """Never let google-genai retry a refusal (a 403 ``ClientError``), even when the app lists 403 among its
    retry codes.

    google-genai sends each request through ``_request_once`` (``_async_request_once``), called from
    ``_request`` (``_async_request``) under a tenacity retrier: the client's own, or one built for the call
    alone when the request carries ``http_options.retry_options``. So the retriers are left as they are, and
    on this client alone (instance attributes, the class's methods untouched) a refusal leaves an attempt as
    :class:`_Refused`, which no retrier retries, and is raised as itself again once past the retrier.
    """
    send_once, async_send_once = api._request_once, api._async_request_once
    send, async_send = api._request, api._async_request

    def request_once(*args: Any, **kwargs: Any) -> Any:
        try:
            return send_once(*args, **kwargs)
        except PolicyViolation as refusal:
            raise _Refused(refusal) from None

    async def async_request_once(*args: Any, **kwargs: Any) -> Any:
        try:
            return await async_send_once(*args, **kwargs)
        except PolicyViolation as refusal:
            raise _Refused(refusal) from None

    def request(*args: Any, **kwargs: Any) -> Any:
        try:
            return send(*args, **kwargs)
        except _Refused as carried:
            refusal = carried.refusal
        raise refusal  # outside the handler: the refusal is not chained to its carrier

    async def async_request(*args: Any, **kwargs: Any) -> Any:
        try:
            return await async_send(*args, **kwargs)
        except _Refused as carried:
            refusal = carried.refusal
        raise refusal

    api._request_once, api._async_request_once = request_once, async_request_once
    api._request, api._async_request = request, async_request


def _httpx_family(client: object) -> bool:
    """An httpx or httpx2 client (google-genai takes either; its own default is httpx2 when installed)."""
    return any(cls.__module__.partition(".")[0] in ("httpx", "httpx2") for cls in type(client).__mro__)


def _is_guard(transport: object) -> bool:
    return type(transport).__name__ in ("GuardTransport", "AsyncGuardTransport") and hasattr(transport, "guard")


def _repoint(api: Any, guard: Guard) -> None:
    """Point every guarded transport of ``api`` (and the per-loop async clients still to come) at ``guard``."""
    api._privsdk_guard = guard
    clients = [api._httpx_client, api._async_httpx_client]
    clients += list(getattr(api._async_httpx_client, "_loop_clients", {}).values())
    for client in clients:
        transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
        for transport in transports:
            if _is_guard(transport):
                transport.guard = guard


def _guard_per_loop(client: Any, wrap: Callable[[Any], Any]) -> None:
    """google-genai's async client sends through one inner client per event loop, built on first use (its
    ``_inner_client_cls``) and cached in ``_loop_clients``: each is guarded as it is built, and those built
    before the client was guarded (an async call the app made first) are guarded in place.

    Guarded rather than dropped: a cached inner client may be sending on its loop right now, and one dropped
    would leave its pool to the garbage collector; guarding swaps its transport for the requests to come.
    """
    inner = getattr(client, "_inner_client_cls", None)
    if not getattr(client, "_per_loop", False) or inner is None:
        return
    # The SDK reads _inner_client_cls and stores a new inner client under this lock: holding it, no inner client
    # can be built from the unguarded class after the cached ones were guarded.
    with getattr(client, "_loop_clients_lock", None) or contextlib.nullcontext():
        if not getattr(inner, _GUARDED, False):

            def build(**kwargs: Any) -> Any:
                return wrap(inner(**kwargs))

            setattr(build, _GUARDED, True)
            client._inner_client_cls = build
        for cached in list(getattr(client, "_loop_clients", {}).values()):
            wrap(cached)


def _not_httpx(field: str, value: object) -> ConfigError:
    return ConfigError(
        f"google-genai sends through a {type(value).__module__}.{type(value).__name__} ({field}): "
        "privsdk guards httpx and httpx2 clients only",
        where=f"HttpOptions.{field}",
        hint="pass an httpx or httpx2 client (httpx_client=, httpx_async_client=)",
    )


# -- the Live API (websockets) ----------------------------------------------------------------------


def _judged_websocket_base_url(api: Any, http_options: Any = None) -> str:
    """The SDK's websocket URL for ``api``, once the guard has allowed a Live API connection there (a
    :class:`_GuardedLive` has judged and will record it; this covers every other way to open one)."""
    url: str = api._privsdk_websocket_base_url(http_options)
    _judge_websocket(api, "/ws/live", url)
    return url


def _judge_websocket(api: Any, path: str, base_url: str | None = None) -> Any:
    """Ask the guard about a Live API websocket before it opens; returns the Pass (or raises the refusal)."""
    from urllib.parse import urlsplit

    from privsdk.outbound.judge import Guard

    url = urlsplit(base_url or api._privsdk_websocket_base_url())
    scheme = "http" if url.scheme in ("ws", "http") else "https"
    out = Outgoing(SDK, "GET", scheme, (url.hostname or "").lower(), url.port, path)
    try:
        return (api._privsdk_guard or Guard.default()).check(out)
    except _privsdk_errors.PolicyViolation as violation:
        raise refusal(violation) from None


#: google-genai's own connection to an Agent Platform MCP server, which the SDK looks up in its module at each call.
_connect_mcp = _mcp_utils._connect_agent_platform_mcp


@contextlib.asynccontextmanager
async def _guarded_mcp(api_client: Any, toolset_name: str) -> AsyncIterator[Any]:
    """google-genai's connection to an Agent Platform MCP server (an ``mcp_servers`` tool, Vertex AI), refused for a
    guarded client before it opens.

    The SDK connects with an httpx client it builds for the connection (not the client's guarded ones), lists the
    server's tools, and calls them with the arguments the model gives: the tool calls, content, would leave beside
    the guard, to a Google service whose terms the catalogue does not hold. The guard records the refusal as it
    records any (no reader reads an MCP route, so it refuses one); an unguarded client connects as before.
    """
    if vars(api_client).get(_GUARDED):
        from urllib.parse import urlsplit

        from privsdk.outbound.judge import Guard

        # Where the SDK would connect: its base URL, else its location's host (as _mcp_utils builds it).
        location = getattr(api_client, "location", None) or "global"
        host = (
            "aiplatform.googleapis.com"
            if location == "global"
            else f"aiplatform.{location}.rep.googleapis.com"
            if location in getattr(_mcp_utils, "_MULTI_REGIONAL_LOCATIONS", ())
            else f"{location}-aiplatform.googleapis.com"
        )
        base = urlsplit(getattr(api_client._http_options, "base_url", None) or f"https://{host}")
        out = Outgoing(SDK, "POST", base.scheme or "https", (base.hostname or "").lower(), base.port, "/mcp/")
        try:
            passed = (api_client._privsdk_guard or Guard.default()).check(out)
        except _privsdk_errors.PolicyViolation as violation:
            raise refusal(violation) from None
        raise refusal(
            passed.refuse(
                "google-genai connects to an Agent Platform MCP server with an HTTP client of its own, which "
                "privsdk cannot guard (leave mcp_servers out of a guarded client's tools)"
            )
        )
    async with _connect_mcp(api_client, toolset_name) as session:
        yield session


_mcp_utils._connect_agent_platform_mcp = _guarded_mcp


class _GuardedLive(_AsyncLive):
    """``client.aio.live`` whose ``connect`` (and ``music.connect``) the guard judges first."""

    def __init__(self, api_client: Any):
        super().__init__(api_client)
        self._music = _GuardedLiveMusic(api_client)

    @contextlib.asynccontextmanager
    async def connect(self, *, model: str, config: Any = None) -> AsyncIterator[Any]:
        passed = _judge_websocket(self._api_client, "/ws/BidiGenerateContent")
        error: BaseException | None = None
        try:
            async with super().connect(model=model, config=config) as session:
                yield session
        except BaseException as exc:
            error = exc
            raise
        finally:
            passed.finish(101, (None, None), error)


class _GuardedLiveMusic(_AsyncLiveMusic):
    @contextlib.asynccontextmanager
    async def connect(self, *, model: str) -> AsyncIterator[Any]:
        passed = _judge_websocket(self._api_client, "/ws/BidiGenerateMusic")
        error: BaseException | None = None
        try:
            async with super().connect(model=model) as session:
                yield session
        except BaseException as exc:
            error = exc
            raise
        finally:
            passed.finish(101, (None, None), error)


# -- instrument -------------------------------------------------------------------------------------

_constructors = Constructors(guard_client)


def instrument() -> None:
    """Guard every ``google.genai.Client`` created from now on, by the app or by a framework, and every
    ``BaseApiClient`` (``google.genai.client.AsyncClient`` can be built around one). Idempotent."""
    _constructors.patch((_genai.Client, _sdk.BaseApiClient))


def uninstrument() -> None:
    """Undo :func:`instrument`: clients created afterwards are the SDK's own again (guarded ones stay so)."""
    _constructors.restore()


# -- the drop-in's classes in place of google-genai's -----------------------------------------------

#: The parameters of a google-genai constructor that take what the object sends through: its api client, or the
#: ``Models`` (``AsyncModels``) a chat is built on, which holds one.
_API_PARAMETERS = frozenset({"api_client", "api_client_", "modules"})


def twin_of(cls: type[Any]) -> type[Any] | None:
    """The drop-in's guarded class in place of google-genai's class ``cls`` (how :mod:`privsdk.genai` hands out
    google-genai's names), or None when ``cls`` sends nothing of its own.

    ``Client`` and ``BaseApiClient`` are the classes above. Any other class of google-genai's gets a twin on first use
    when it is built around an api client (its ``__init__`` takes one: ``models.Models``, ``files.AsyncFiles``,
    ``client.AsyncClient``, ``live.AsyncLive``, the Interactions API's resources, ...; and ``chats.Chats`` and
    ``chats.Chat``, built around a ``Models``), or is a ``Client`` or a ``BaseApiClient`` itself. A twin is
    google-genai's class whose instances guard the api client they are given before google-genai's own ``__init__``
    runs (once: an api client guarded already keeps its guard), so that no name of the drop-in builds an object that
    sends unguarded, whoever built the api client. Its methods are google-genai's: nothing is added to a request. An
    object of google-genai's own class passes for one of the twin's (``isinstance(client.models,
    genai.models.Models)``), as it does for google-genai's class.
    """
    return _TWINS(cls)


def _make_twin(cls: type[Any]) -> type[Any] | None:
    """The twin of google-genai's class ``cls`` (see :func:`twin_of`), or None when it sends nothing of its own."""
    if issubclass(cls, (_genai.Client, _sdk.BaseApiClient)):
        return twin(cls, guarding_after(cls, guard_client), module=__name__, package=_PACKAGE)
    taken = _api_parameter(cls)
    return None if taken is None else twin(cls, _guarding_before(cls, *taken), module=__name__, package=_PACKAGE)


_PACKAGE = "google.genai"
#: Each google-genai class -> the drop-in's guarded class in its place; None for a class that sends nothing of its own.
_TWINS = Twins(Client, BaseApiClient, package=_PACKAGE, make=_make_twin)


def _api_parameter(cls: type[Any]) -> tuple[str, int | None] | None:
    """The parameter of ``cls.__init__`` that takes an api client (or the ``Models`` one is held by): its name, and
    its position among the arguments after ``self`` (None when it is keyword-only); None when it takes none."""
    init = cls.__init__
    init = getattr(init, "__wrapped__", init)
    code = getattr(init, "__code__", None)
    if code is None:  # object's, a builtin's: nothing of google-genai's
        return None
    notes = getattr(init, "__annotations__", None) or {}
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    for index, name in enumerate(names[1:], 1):
        if name in _API_PARAMETERS or "BaseApiClient" in str(notes.get(name, "")):
            return name, index - 1 if index < code.co_argcount else None
    return None


def _guarding_before(cls: type[Any], name: str, position: int | None) -> Callable[..., None]:
    """The ``__init__`` of the twin of ``cls``: the api client given (or the one of the ``Models`` given) guarded, then
    google-genai's ``__init__``, which may hand it to what it builds (the NextGen resources take its httpx clients)."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        given = args[position] if position is not None and position < len(args) else kwargs.get(name)
        if given is not None:  # none given: google-genai's own __init__ says what is missing
            guard_client(given)
        cls.__init__(self, *args, **kwargs)
        api = vars(self).get("_api_client")
        if isinstance(api, _sdk.BaseApiClient) and getattr(api, _GUARDED, False):
            _guard_holders(self, api)  # an AsyncClient's Live API module, judged and recorded

    return __init__
