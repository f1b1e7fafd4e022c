"""The mistralai SDK's client with privsdk's guard in its HTTP transport.

``Mistral`` here IS ``mistralai.client.Mistral`` (a subclass): same constructor,
resources, streams, hooks and errors. Every request it sends first passes
:class:`privsdk.outbound.judge.Guard`, which decides from the request itself (host,
path, body) and raises :class:`PolicyViolation` before a byte is written when
the tenant's requirements are not met. The seam is the SDK's pair of httpx2
clients: the ``client``/``async_client`` the app passes are guarded in place,
and so are the ones the SDK builds.

Every client and every resource it builds (``chat.Chat``, ``embeddings.Embeddings``
...) runs the SDK's ``BaseSDK.__init__`` with the configuration that holds those
clients; an app can build a resource by hand around a configuration of its own,
without ``Mistral``. The drop-in hands out guarded twins of those classes too
(:func:`twin_of`), and :func:`instrument` guards the configuration every
``BaseSDK.__init__`` takes, besides every client.

The SDK's opt-in telemetry (``MISTRAL_SDK_TELEMETRY``) exports spans that
hold prompts and answers to Mistral's telemetry endpoint through
OpenTelemetry's own HTTP client, outside this seam: a guarded client pins it
off, whatever the environment says.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import httpx2
from mistralai.client import Mistral as _Mistral
from mistralai.client.errors import MistralError

from privsdk import sdklogs
from privsdk.context import streams_in_callers_context
from privsdk.errors import PolicyViolation as _PolicyViolation
from privsdk.outbound.constructors import Constructors, Twins, guarding_after, repoint, then_guard, twin
from privsdk.outbound.judge import Guard
from privsdk.outbound.loops import loop_safe
from privsdk.outbound.outgoing import Outgoing
from privsdk.outbound.transport import guard_httpx, is_guarded, keep_guarded

__all__ = ["Mistral", "PolicyViolation", "guard_client", "instrument", "uninstrument"]

SDK = "mistralai"
_C = TypeVar("_C")


class PolicyViolation(_PolicyViolation, MistralError):
    """A request privsdk refused: both :class:`privsdk.PolicyViolation` and mistralai's ``MistralError``.

    It never reached Mistral: ``status_code`` is 0, ``body`` is empty, ``headers``
    and ``raw_response`` are None; the message names the unmet requirements,
    never the request's content.
    """

    def __str__(self) -> str:
        return _PolicyViolation.__str__(self)

    @classmethod
    def from_violation(cls, violation: _PolicyViolation) -> PolicyViolation:
        error = cls.__new__(cls)
        error.__dict__.update(violation.__dict__)
        error.args = violation.args
        # MistralError is a dataclass whose eq/hash read these fields.
        object.__setattr__(error, "message", str(violation))
        object.__setattr__(error, "status_code", 0)
        object.__setattr__(error, "body", "")
        object.__setattr__(error, "headers", None)
        object.__setattr__(error, "raw_response", None)
        return error


def _refusal(violation: _PolicyViolation) -> BaseException:
    return PolicyViolation.from_violation(violation)


def guard_client(client: _C, *, guard: Guard | None = None, reroutes: bool = True) -> _C:
    """Guard a mistralai client the app already built (``Mistral``, ``MistralAzure``, ``MistralGCP``, or one of their
    resources built by hand around a configuration, such as ``chat.Chat(sdk_config)``), in place; returns it.

    The HTTP clients of its configuration are guarded, and its telemetry is pinned off. ``guard`` judges its requests
    (None: the process-wide guard, configured from the environment). With ``reroutes``, a chat or
    embeddings request the tenant reroutes is answered from the alternative in Mistral's wire format
    (:mod:`privsdk_mistral.reroute`); anything else it reroutes is refused. privsdk's own adapters pass
    False: the :class:`privsdk.Client` they serve reroutes by itself.

    Idempotent. On a client guarded already (a drop-in's, one built under :func:`instrument`), a ``guard`` given here,
    or ``reroutes=False``, replaces what it had: privsdk.Client's adapters guard the mistralai clients they build with
    the Client's own guard, which then judges their requests, whatever instrument() had put there.
    """
    config = getattr(client, "sdk_configuration", None)
    if config is None or not hasattr(config, "client"):
        raise TypeError(f"privsdk cannot guard {type(client).__name__}: it is not a mistralai client")
    if isinstance(getattr(type(client), "_sub_sdk_map", None), dict):
        # The whole client (Mistral, MistralAzure, MistralGCP) builds its parts (chat, embeddings, ...) from its
        # configuration at their first use: a configuration put there later, with httpx clients of its own, is
        # guarded as the first one. Once: instrument() guards a client as its BaseSDK.__init__ takes the
        # configuration, and the drop-in's class after its own constructor.
        if not _guarded_as(client, guard, reroutes):
            keep_guarded(client, "sdk_configuration", lambda _client, new: _guard_config(new, guard, reroutes))
            vars(client)[_GUARDED] = (guard, reroutes)
    else:
        # A resource (chat.Chat, ...) reads its configuration on every request: it is guarded, not watched, which
        # would put a descriptor on the SDK's class in every request's way. The configuration is shared with the
        # client and the resources built from it; guarded once, for all of them.
        _guard_config(config, guard, reroutes)
    return client


def _guard_config(config: Any, guard: Guard | None, reroutes: bool) -> None:
    """Guard a mistralai ``SDKConfiguration``: its pair of httpx clients, and every one put in their place later."""
    if not hasattr(config, "client"):
        raise TypeError(f"privsdk cannot guard a {type(config).__name__} as a mistralai SDKConfiguration")
    if _guarded_as(config, guard, reroutes):
        # Guarded as asked already: by instrument() as the SDK's BaseSDK.__init__ took it, then by the client's
        # constructor, or by each resource a client builds from it.
        return
    _guard_realtime()
    _guard_connectors()
    _guard_conversation_streams()
    hooks: dict[str, Any] = {}
    if reroutes:
        from privsdk_mistral import reroute

        hooks = {"reroute": reroute.send, "areroute": reroute.asend}

    def guard_http(_config: object, http: Any) -> None:
        guard_httpx(http, sdk=SDK, refusal=_refusal, guard=guard, **hooks)

    def guard_async(_config: object, http: Any) -> None:
        if _is_httpx(http) and not is_guarded(http):
            loop_safe(http)  # usable from one asyncio.run after another, which mistralai's own client is not
        guard_http(_config, http)

    # The tracing hook reads this attribute before MISTRAL_SDK_TELEMETRY: False keeps spans (which hold
    # prompts) from being exported to Mistral's telemetry endpoint or to the app's tracer.
    config.__dict__["telemetry"] = False
    _stop_telemetry(config)
    # The SDK's debug switch: a logger of the app's, given each request and answer whole (bodies included).
    sdklogs.withhold(getattr(config, "debug_logger", None))
    replaced = _GUARDED in config.__dict__
    # Frameworks put new httpx clients into these two later (pydantic-ai, on each new event loop): every one
    # put there is guarded as these are.
    keep_guarded(config, "client", guard_http)
    keep_guarded(config, "async_client", guard_async)
    if replaced:
        # Guarded already with other settings (under instrument(), by the process-wide guard, rerouting, as the
        # SDK's BaseSDK.__init__ took it): ``guard`` and ``reroutes`` replace those on the httpx clients it holds,
        # whose transports guard_httpx leaves as they are once guarded. privsdk.Client's adapters guard the clients
        # they build so: their requests are judged by the Client's own policy, and rerouted by the Client alone.
        for http in (config.client, config.async_client):
            if http is not None:  # an httpx client: guard_http took it
                repoint(http, guard, hooks.get("reroute"), hooks.get("areroute"))
    config.__dict__[_GUARDED] = (guard, reroutes)  # realtime sessions, which open a websocket of their own, read it


#: The key, in a guarded client's SDKConfiguration (and in a whole client's own ``__dict__``), of what it is guarded
#: with: the guard (None: the process-wide one) and whether it reroutes.
_GUARDED = "_privsdk_guard"


def _guarded_as(holder: object, guard: Guard | None, reroutes: bool) -> bool:
    """True when ``holder`` (a configuration, or a whole client) is guarded already and guarding it with ``guard`` and
    ``reroutes`` would change nothing: it has those, or they are the defaults (no guard given, rerouting: what
    instrument() and the drop-in's classes guard every client and resource with as it is built). So a resource built
    from a configuration guarded with a guard of its own (privsdk.Client's adapters', an app's) leaves it as it is."""
    held = vars(holder).get(_GUARDED)
    return held is not None and ((held[0] is guard and held[1] == reroutes) or (guard is None and reroutes))


def _guard_realtime() -> None:
    """Judge the websocket handshake of realtime transcription and speech sessions, which do not go through
    the SDK's HTTP clients: ``audio.realtime.connect`` and ``audio.realtime_speech.connect`` of a guarded
    client ask the guard first (a session of an unguarded client is left alone). Patched once."""
    try:
        from mistralai.extra.realtime import speech, transcription
    except ImportError:  # the websockets package is missing: the SDK cannot open realtime sessions at all
        return
    for cls in (transcription.RealtimeTranscription, speech.RealtimeSpeech):
        if getattr(cls.connect, "_privsdk", False):
            continue
        cls.connect = _judged_connect(cls.connect)  # type: ignore[method-assign]


def _judged_connect(original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    async def connect(self: Any, *args: Any, **kwargs: Any) -> Any:
        held = self._sdk_config.__dict__.get(_GUARDED)
        if held is not None:
            bound = signature.bind(self, *args, **kwargs).arguments
            url = httpx2.URL(self._build_url(bound["model"], server_url=bound.get("server_url"), query_params={}))
            out = Outgoing(SDK, "GET", url.scheme, url.host, url.port, url.raw_path.partition(b"?")[0].decode("ascii"))
            try:
                ticket = (held[0] or Guard.default()).check(out)
            except _PolicyViolation as violation:
                raise _refusal(violation) from None
            ticket.finish(101)  # the session is recorded as it opens; its audio is not metered
        return await original(self, *args, **kwargs)

    connect._privsdk = True  # type: ignore[attr-defined]
    return connect


def _stop_telemetry(config: Any) -> None:
    """Stop the tracing hook of a client that has sent requests already: it resolved its telemetry then, and
    reads ``config.telemetry`` no more (it would go on exporting spans, those of refused requests too). The SDK's
    own call with an explicit ``False`` shuts its exporter down and disables it."""
    hooks = config.__dict__.get("_hooks")
    tracing = [h for h in getattr(hooks, "before_request_hooks", ()) if type(h).__name__ == "TracingHook"]
    if not tracing:
        return
    from mistralai.extra.observability.telemetry import configure_telemetry_for_hook

    for hook in tracing:
        configure_telemetry_for_hook(hook, config, telemetry=False)
        hook.tracer_provider = None  # an app's provider too: its spans would hold the prompt as well


def _guard_connectors() -> None:
    """Guard the httpx clients ``beta.connectors.http_client()`` and ``mcp_client()`` build for Mistral's
    connectors gateway: new clients of the SDK's, outside its configured pair, carrying the client's API key and
    whatever the app sends to the connector. A guarded client's are guarded as its own are (and an unguarded
    client's left alone). Patched once."""
    try:
        from mistralai.client.connectors import Connectors
        from mistralai.extra import connectors_gateway
    except ImportError:  # an SDK without the connectors gateway
        return
    if getattr(Connectors.http_client, "_privsdk", False):
        return
    original_http = Connectors.http_client
    original_mcp = connectors_gateway._create_mcp_http_client

    @functools.wraps(original_http)
    def http_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        return _guarded_like(self.sdk_configuration, original_http(self, *args, **kwargs))

    @functools.wraps(original_mcp)
    def create_mcp_http_client(sdk_configuration: Any, *args: Any, **kwargs: Any) -> Any:
        return _guarded_like(sdk_configuration, original_mcp(sdk_configuration, *args, **kwargs))

    http_client._privsdk = True  # type: ignore[attr-defined]
    Connectors.http_client = http_client  # type: ignore[method-assign]
    connectors_gateway._create_mcp_http_client = create_mcp_http_client


def _guard_conversation_streams() -> None:
    """``beta.conversations.run_stream_async`` returns a generator that sends the conversation's requests only as
    it is read: a guarded client's is read in the context of the call (its ``privsdk.scope``), wherever it is
    read (a web handler returning it for its framework to read); an unguarded client's is left alone."""
    try:
        from mistralai.client.conversations import Conversations
    except ImportError:  # an SDK without the conversations API
        return
    streams_in_callers_context(
        Conversations, "run_stream_async", lambda self: self.sdk_configuration.__dict__.get(_GUARDED) is not None
    )


def _guarded_like(config: Any, http: Any) -> Any:
    """``http``, guarded by the guard of the client whose configuration is ``config``, when that client is."""
    held = config.__dict__.get(_GUARDED)
    if held is not None:
        guard_httpx(http, sdk=SDK, refusal=_refusal, guard=held[0])
    return http


def _is_httpx(http: object) -> bool:
    """An httpx2 (or httpx) client: the SDK also takes any object with its HttpClient methods."""
    return type(http).__module__.partition(".")[0] in ("httpx", "httpx2")


class Mistral(_Mistral):
    __doc__ = _Mistral.__doc__
    __init__ = then_guard(_Mistral.__init__, guard_client)


#: The modules of the SDK's ``BaseSDK`` classes: la Plateforme's, Azure's and Google Cloud's. Every mistralai client
#: (``Mistral``, ``MistralAzure``, ``MistralGCP``) and every resource they build (``chat.Chat``,
#: ``embeddings.Embeddings``, ``beta.Beta`` ...), which an app can also build by hand around a configuration of its
#: own, runs one of their ``__init__``.
_BASESDK_MODULES = ("mistralai.client.basesdk", "mistralai.azure.client.basesdk", "mistralai.gcp.client.basesdk")


def _sends(cls: type[Any]) -> bool:
    """True when ``cls`` is one of the SDK's ``BaseSDK`` classes or derives from one (no SDK module is imported)."""
    return any(k.__name__ == "BaseSDK" and k.__module__ in _BASESDK_MODULES for k in cls.__mro__)


def _make_twin(cls: type[Any]) -> type[Any] | None:
    """mistralai's class ``cls``, guarded once its own ``__init__`` is done (under instrument(), guarding already);
    None for a class that sends nothing."""
    return twin(cls, guarding_after(cls, guard_client), module=__name__, package="mistralai") if _sends(cls) else None


#: Each of the SDK's classes that sends -> the drop-in's guarded class in its place; None for a class that sends
#: nothing.
_TWINS = Twins(Mistral, package="mistralai", make=_make_twin)


def twin_of(cls: type[Any]) -> type[Any] | None:
    """The drop-in's guarded class in place of mistralai's class ``cls`` (how :mod:`privsdk.mistralai` hands out
    mistralai's names), or None when ``cls`` sends nothing.

    ``Mistral`` is the class above. Every other ``BaseSDK`` class of the SDK's (the resources: ``chat.Chat``,
    ``embeddings.Embeddings``, ``models_.Models``, ``beta.Beta`` ..., those of a newer mistralai; ``basesdk.BaseSDK``
    itself; the Azure and Google Cloud clients) gets a twin on first use: mistralai's class with its instances guarded
    once built (the configuration it is given, whoever built that), so that no name of the drop-in builds a client that
    sends unguarded.
    """
    return _TWINS(cls)


_constructors = Constructors(guard_client)


def _base_sdks() -> tuple[type[Any], ...]:
    """The SDK's ``BaseSDK`` classes: la Plateforme's, and Azure's and Google Cloud's when those parts of the SDK
    import (the Google Cloud one needs google-auth). Every client and resource runs one's ``__init__``, the clients
    (``Mistral``, ``MistralAzure``, ``MistralGCP``) with the configuration they have just built: :func:`guard_client`
    guards it there, and watches where the client keeps it."""
    bases: list[type[Any]] = []
    for name in _BASESDK_MODULES:
        with contextlib.suppress(ImportError):  # an SDK build without the Azure or Google Cloud part, or google-auth
            bases.append(importlib.import_module(name).BaseSDK)
    return tuple(bases)


def instrument() -> None:
    """Guard every mistralai client created from now on, by the app or by a framework inside it, and every resource
    (``chat.Chat``, ...) an app builds by hand around a configuration of its own. Idempotent."""
    _constructors.patch(_base_sdks())


def uninstrument() -> None:
    """Undo :func:`instrument` (clients already guarded stay guarded)."""
    _constructors.restore()
