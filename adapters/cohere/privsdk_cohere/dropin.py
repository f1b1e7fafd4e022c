"""The cohere SDK's clients with privsdk's guard in their HTTP transport.

``ClientV2``, ``AsyncClientV2``, ``Client``, ``AsyncClient``, ``BedrockClientV2``, ``BedrockClient``,
``SagemakerClientV2``, ``SagemakerClient``, ``AwsClient``, ``OciClientV2`` and ``OciClient`` here ARE
the cohere classes (subclasses): same constructor, attributes, resources, raw responses and streams.
The only difference is that every request the client sends first passes
:class:`privsdk.outbound.judge.Guard`, which decides from the request itself (host, path, body) and
raises :class:`PolicyViolation` before a byte is written when the tenant's requirements are not met.

The seam is the client's httpx client: the one the app passes as ``httpx_client`` is guarded in
place, and so is the one the SDK builds. Every cohere client sends through a client wrapper
(``cohere.core.client_wrapper``) whose ``HttpClient`` holds that httpx client; so do the resource clients cohere
generates (``v2.client.V2Client``, ``datasets.client.DatasetsClient``, their raw and async twins ...), which an
app can build around a wrapper of its own and which run none of the top-level clients' constructors. The
drop-in hands out guarded twins of those too (:func:`twin_of`), and :func:`instrument` guards every wrapper and
HttpClient built, besides every client. The Bedrock, SageMaker and OCI clients sign requests in an
httpx event hook that rewrites the URL to ``bedrock-runtime.<region>.amazonaws.com``,
``runtime.sagemaker.<region>.amazonaws.com`` or OCI's inference host; hooks run before the transport,
so the guard judges the request as it leaves for that host (one the catalogue does not know, such as
OCI's, is refused until declared in ``PRIVSDK_ENDPOINTS``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import cohere
import httpx
from cohere.base_client import AsyncBaseCohere, BaseCohere
from cohere.core.api_error import ApiError
from cohere.core.client_wrapper import AsyncClientWrapper, SyncClientWrapper
from cohere.core.http_client import AsyncHttpClient, HttpClient

from privsdk.context import CallersContextExecutor, lazy_in_callers_context
from privsdk.errors import PolicyViolation as _PolicyViolation
from privsdk.outbound.constructors import Constructors, Twins, guarding_after, repoint, then_guard, twin
from privsdk.outbound.judge import Guard
from privsdk.outbound.loops import loop_safe
from privsdk.outbound.outgoing import Outgoing
from privsdk.outbound.transport import guard_httpx, is_guarded, keep_guarded

__all__ = [
    "AsyncClient",
    "AsyncClientV2",
    "AwsClient",
    "BedrockClient",
    "BedrockClientV2",
    "Client",
    "ClientV2",
    "OciClient",
    "OciClientV2",
    "PolicyViolation",
    "SagemakerClient",
    "SagemakerClientV2",
    "guard_client",
    "instrument",
    "uninstrument",
]

SDK = "cohere"
_C = TypeVar("_C")


class PolicyViolation(_PolicyViolation, ApiError):
    """A request privsdk refused: both :class:`privsdk.PolicyViolation` and cohere's ``ApiError``.

    It never reached Cohere, so ``status_code``, ``headers`` and ``body`` are None;
    the message names the unmet requirements, never the request's content.
    """

    def __str__(self) -> str:
        return _PolicyViolation.__str__(self)  # not ApiError's, which prints headers and body

    @classmethod
    def from_violation(cls, violation: _PolicyViolation) -> PolicyViolation:
        error = cls.__new__(cls)
        error.__dict__.update(violation.__dict__)
        error.args = violation.args
        error.headers = None
        error.status_code = None
        error.body = None
        return error


def _refusal(violation: _PolicyViolation) -> BaseException:
    return PolicyViolation.from_violation(violation)


def _wrapper_of(client: Any) -> Any:
    """The client wrapper a cohere client sends through: its ``_client_wrapper`` (the top-level clients, the raw
    resource clients), or its raw client's (``v2.client.V2Client`` and the other resource clients)."""
    for holder in (client, getattr(client, "_raw_client", None)):
        wrapper = getattr(holder, "_client_wrapper", None)
        if isinstance(getattr(getattr(wrapper, "httpx_client", None), "httpx_client", None), _HTTPX):
            return wrapper
    raise TypeError(f"privsdk cannot guard {type(client).__name__}: it is not a cohere client over httpx")


_HTTPX = (httpx.Client, httpx.AsyncClient)

#: The key, in a guarded client wrapper's or HttpClient's ``__dict__``, of what it is guarded with: the guard (None:
#: the process-wide one) and whether it reroutes.
_GUARDED = "_privsdk_cohere"


def _guarded_as(holder: object, guard: Guard | None, reroutes: bool) -> bool:
    """True when ``holder`` is guarded already and guarding it with ``guard`` and ``reroutes`` would change nothing:
    it has those, or they are the defaults (no guard given, rerouting: a constructor's, the drop-in's, instrument()'s),
    which leave a guarded holder as it is. A wrapper or HttpClient that :func:`instrument` guarded as it was built is
    guarded so, and a client built around it then finds it guarded. A guard given, or ``reroutes=False``, replaces
    what it had (:func:`_guard_sender`)."""
    settings = vars(holder).get(_GUARDED)
    return settings is not None and ((settings[0] is guard and settings[1] == reroutes) or (guard is None and reroutes))


def _guard_sender(sender: Any, guard: Guard | None = None, reroutes: bool = True) -> None:
    """Guard the httpx client a cohere ``HttpClient`` or ``AsyncHttpClient`` holds in its ``httpx_client``, where
    frameworks put a new one later (pydantic-ai, on each new event loop): every one put there is guarded too.

    On an HttpClient guarded already with other settings (under :func:`instrument`, every HttpClient is guarded as it
    is built, by the process-wide guard, rerouting), ``guard`` and ``reroutes`` replace those: privsdk.Client's adapters
    build their cohere clients so, and its requests are then judged by the Client's own policy, and rerouted by the
    Client alone."""
    if _guarded_as(sender, guard, reroutes):
        return
    hooks: dict[str, Any] = {}
    if reroutes:
        from privsdk_cohere import reroute

        hooks = {"reroute": reroute.send, "areroute": reroute.asend}

    def guard_http(_holder: object, http: Any) -> None:
        if isinstance(http, httpx.AsyncClient) and not is_guarded(http):
            loop_safe(http)  # usable from one asyncio.run after another, which cohere's own async clients are not
        guard_httpx(http, sdk=SDK, refusal=_refusal, guard=guard, **hooks)

    replaced = _GUARDED in vars(sender)
    keep_guarded(sender, "httpx_client", guard_http)  # the httpx clients put there from now on
    if replaced:  # the one it holds, whose transports guard_httpx leaves as they are once guarded
        repoint(sender.httpx_client, guard, hooks.get("reroute"), hooks.get("areroute"))
    vars(sender)[_GUARDED] = (guard, reroutes)


def _guard_wrapper(wrapper: Any, guard: Guard | None = None, reroutes: bool = True) -> None:
    """Guard a cohere client wrapper, which every part of a client shares and sends through: its HttpClient, and
    every new HttpClient put in place of it."""
    if _guarded_as(wrapper, guard, reroutes):
        return
    keep_guarded(wrapper, "httpx_client", lambda _wrapper, sender: _guard_sender(sender, guard, reroutes))
    vars(wrapper)[_GUARDED] = (guard, reroutes)


def guard_client(client: _C, *, guard: Guard | None = None, reroutes: bool = True) -> _C:
    """Guard a cohere client the app already built (any of the SDK's clients, its generated resource clients such as
    ``v2.client.V2Client`` included), in place; returns it.

    ``guard`` judges its requests (None: the process-wide guard, configured from the environment). With
    ``reroutes``, a v2 chat or embed request the tenant reroutes is answered from the alternative in
    Cohere's wire format (:mod:`privsdk_cohere.reroute`); anything else it reroutes is refused. privsdk's own
    adapters pass False: the :class:`privsdk.Client` they serve reroutes by itself.

    Idempotent. On a client guarded already (a drop-in's, one built under :func:`instrument`), a ``guard`` given here,
    or ``reroutes=False``, replaces what it had: privsdk.Client's adapters guard the cohere clients they build with
    the Client's own guard, which then judges their requests, whatever instrument() had put there.
    """
    if isinstance(client, _LEGACY_AWS):
        # cohere's older boto3-based client (the former cohere-aws package) calls models through a boto3 runtime
        # client of its own (bedrock-runtime or sagemaker-runtime): that one is judged. Its control-plane client
        # (endpoints, fine-tuning jobs) is left as the SageMaker helper's is.
        _guard_boto3(client._client, guard)
        return client
    # The client wrapper, which every part of the client (v2, datasets, ...) shares, and its HttpClient, which keeps
    # the httpx client: that one is guarded in place, and so is every one put in its place later.
    _guard_wrapper(_wrapper_of(client), guard, reroutes)
    # The SageMaker clients' helper (built when the sagemaker package is installed) invokes endpoints with a
    # boto3 sagemaker-runtime client of its own, outside httpx: it is guarded too. Its control-plane client
    # (endpoint management, no prompts) is left as it is.
    runtime = getattr(getattr(client, "sagemaker_finetuning", None), "_client", None)
    if runtime is not None:
        _guard_boto3(runtime, guard)
    # The v1 clients' embed sends its batches from the client's thread pool, where the app's privsdk.scope is not
    # in force: each batch is judged in the caller's context instead.
    executor = getattr(client, "_executor", None)
    if isinstance(executor, Executor) and not isinstance(executor, CallersContextExecutor):
        client._executor = CallersContextExecutor(executor)  # type: ignore[attr-defined]
    # Its streams are generators, which send their requests only as they are read: they are read in the context
    # of the call, wherever and however much later (a web handler that returns one for its framework to read).
    # Per client, not per class as mistralai's and google-genai's (context.streams_in_callers_context): cohere's
    # client keeps chat_stream as an attribute of its own, its experimental-keyword wrapper around the method as
    # the class had it when the client was built, which a later change to the class would not reach. The raw
    # clients' chat_stream is a context manager, which sends as it is entered: left as it is.
    for holder in (client, getattr(client, "v2", None)):
        for name in _LAZY_STREAMS:
            method = getattr(holder, name, None)
            if callable(method) and not getattr(method, "_privsdk", False) and _streams(type(holder), name):
                setattr(holder, name, lazy_in_callers_context(method))
    return client


def _streams(cls: type[Any], name: str) -> bool:
    """True when the method ``name`` of cohere's class ``cls`` returns a generator."""
    method = getattr(cls, name, None)
    return inspect.isgeneratorfunction(method) or inspect.isasyncgenfunction(method)


#: The methods of cohere's clients (and of their ``v2``) that return generators.
_LAZY_STREAMS = ("chat_stream", "generate_stream", "embed_stream")


def _guard_boto3(runtime: Any, guard: Guard | None) -> None:
    """Judge every request of a boto3 client as botocore is about to send it (its ``before-send`` event). On one
    guarded so already, a ``guard`` given replaces the one it had."""
    judged_by: list[Guard | None] | None = vars(runtime).get(_BOTO3_GUARD)
    if judged_by is not None:
        if guard is not None:
            judged_by[0] = guard
        return
    judged_by = [guard]  # the hook reads it at each request; the client keeps it, and the hook holds no client

    def judge(request: Any, **_: Any) -> None:
        url = httpx.URL(request.url)
        body = request.body
        body = body.encode() if isinstance(body, str) else body if isinstance(body, bytes) else b""  # streams: unread
        headers = {k.lower(): v.decode("latin-1") if isinstance(v, bytes) else v for k, v in request.headers.items()}
        path = url.raw_path.partition(b"?")[0].decode("ascii")
        out = Outgoing(SDK, request.method, url.scheme, url.host, url.port, path, url.query.decode(), headers, body)
        try:
            ticket = (judged_by[0] or Guard.default()).check(out)
        except _PolicyViolation as violation:
            raise _refusal(violation) from None
        ticket.finish(None)  # recorded as sent: botocore reads the answer past this seam

    runtime.meta.events.register(f"before-send.{runtime.meta.service_model.service_id.hyphenize()}", judge)
    vars(runtime)[_BOTO3_GUARD] = judged_by
    runtime._privsdk_guarded = True


#: The key, in a boto3 client's ``__dict__`` that :func:`_guard_boto3` guarded, of the guard that judges its requests
#: (in a list, which a guard given later replaces in).
_BOTO3_GUARD = "_privsdk_cohere_guard"


def _guarded(base: type[Any]) -> Callable[..., None]:
    """The SDK's constructor, then guarding: its signature and defaults (such as CO_API_URL) stay its own."""
    return then_guard(base.__init__, guard_client)


class ClientV2(cohere.ClientV2):
    __doc__ = cohere.ClientV2.__doc__
    __init__ = _guarded(cohere.ClientV2)


class AsyncClientV2(cohere.AsyncClientV2):
    __doc__ = cohere.AsyncClientV2.__doc__
    __init__ = _guarded(cohere.AsyncClientV2)


class Client(cohere.Client):
    __doc__ = cohere.Client.__doc__
    __init__ = _guarded(cohere.Client)


class AsyncClient(cohere.AsyncClient):
    __doc__ = cohere.AsyncClient.__doc__
    __init__ = _guarded(cohere.AsyncClient)


class BedrockClientV2(cohere.BedrockClientV2):
    __doc__ = cohere.BedrockClientV2.__doc__
    __init__ = _guarded(cohere.BedrockClientV2)


class BedrockClient(cohere.BedrockClient):
    __doc__ = cohere.BedrockClient.__doc__
    __init__ = _guarded(cohere.BedrockClient)


class SagemakerClientV2(cohere.SagemakerClientV2):
    __doc__ = cohere.SagemakerClientV2.__doc__
    __init__ = _guarded(cohere.SagemakerClientV2)


class SagemakerClient(cohere.SagemakerClient):
    __doc__ = cohere.SagemakerClient.__doc__
    __init__ = _guarded(cohere.SagemakerClient)


class AwsClient(cohere.AwsClient):
    __doc__ = cohere.AwsClient.__doc__
    __init__ = _guarded(cohere.AwsClient)


class OciClientV2(cohere.OciClientV2):
    """cohere's OCI Generative AI client (needs the ``oci`` package). OCI's inference hosts are not in the
    catalogue: declare the one you use (``PRIVSDK_ENDPOINTS=https://inference.generativeai.REGION.oci.oraclecloud.com=cohere.oci``)."""

    __init__ = _guarded(cohere.OciClientV2)


class OciClient(cohere.OciClient):
    __doc__ = OciClientV2.__doc__
    __init__ = _guarded(cohere.OciClient)


def _legacy_aws() -> tuple[type[Any], ...]:
    """cohere's boto3-based client, ``cohere.manually_maintained.cohere_aws.Client`` (importing cohere's SageMaker
    clients imports it already), or nothing in a cohere without it."""
    try:
        from cohere.manually_maintained.cohere_aws.client import Client as LegacyAwsClient
    except ImportError:
        return ()
    return (LegacyAwsClient,)


_LEGACY_AWS = _legacy_aws()


def _legacy_aws_twin() -> tuple[type[Any], ...]:
    """The guarded twin of cohere's boto3-based client, handed out as ``cohere_aws.Client`` through the drop-in."""
    if not _LEGACY_AWS:
        return ()
    (legacy,) = _LEGACY_AWS
    twin = type("Client", (legacy,), {"__doc__": legacy.__doc__, "__init__": _guarded(legacy), "__module__": __name__})
    twin.__qualname__ = "cohere_aws.Client"
    return (twin,)


_LEGACY_AWS_TWIN = _legacy_aws_twin()


def guarded_classes() -> tuple[type[Any], ...]:
    """The guarded client classes above, each a direct subclass of cohere's own."""
    return (
        ClientV2, AsyncClientV2, Client, AsyncClient, BedrockClientV2, BedrockClient, SagemakerClientV2,
        SagemakerClient, AwsClient, OciClientV2, OciClient, *_LEGACY_AWS_TWIN,
    )  # fmt: skip


def _sends(cls: type[Any]) -> bool:
    """True when cohere's class ``cls`` is one of its clients: its base clients and the boto3-based one, and every
    class whose ``__init__`` takes a ``client_wrapper``."""
    return issubclass(cls, (BaseCohere, AsyncBaseCohere, *_LEGACY_AWS)) or _takes_client_wrapper(cls)


def _make_twin(cls: type[Any]) -> type[Any] | None:
    """cohere's client class ``cls``, guarded once its own ``__init__`` is done (under instrument(), its wrapper is
    guarded already); None for a class that sends nothing."""
    return twin(cls, guarding_after(cls, guard_client), module=__name__, package="cohere") if _sends(cls) else None


#: Each cohere class that sends -> the drop-in's guarded class in its place; None for a class that sends nothing.
_TWINS = Twins(*guarded_classes(), package="cohere", make=_make_twin)


def twin_of(cls: type[Any]) -> type[Any] | None:
    """The drop-in's guarded class in place of cohere's class ``cls`` (how :mod:`privsdk.cohere` hands out cohere's
    names), or None when ``cls`` sends nothing.

    The clients named above are theirs; any other of cohere's clients gets a twin on first use: the clients cohere
    generates for each resource (every class whose ``__init__`` takes a ``client_wrapper``: ``v2.client.V2Client``,
    ``datasets.client.DatasetsClient``, their raw and async twins, and those of a newer cohere) and the base clients
    (``base_client.BaseCohere``, ``aws_client.AwsClientV2``). Each is cohere's class with its instances guarded once
    built (the client wrapper it is given, whoever built that), so that no name of the drop-in builds a client that
    sends unguarded. ``core`` (the client wrappers, their HttpClients) stays cohere's own, as httpx does.
    """
    return _TWINS(cls)


def _takes_client_wrapper(cls: type[Any]) -> bool:
    """True when the ``__init__`` of ``cls`` (cohere's own, under :func:`instrument`'s) takes a ``client_wrapper``."""
    init = cls.__init__
    code = getattr(inspect.unwrap(init) if hasattr(init, "__wrapped__") else init, "__code__", None)
    return code is not None and "client_wrapper" in code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]


#: The SDK's base classes: every cohere client (v1, v2, Bedrock, SageMaker, OCI) runs one of their __init__;
#: the SageMaker clients, which build their boto3 helper after the base class is done; and the boto3-based client.
_BASES: tuple[type[Any], ...] = (
    BaseCohere, AsyncBaseCohere, cohere.SagemakerClientV2, cohere.SagemakerClient, *_LEGACY_AWS
)  # fmt: skip
_constructors = Constructors(guard_client)
#: What every cohere client sends through, the resource clients an app builds around a wrapper of its own included:
#: the client wrappers and their HttpClients, each guarded as it is built. A client built around one finds it guarded
#: already, and leaves it as it is (:func:`_guarded_as`).
_senders = (
    (Constructors(_guard_sender), (HttpClient, AsyncHttpClient)),
    (Constructors(_guard_wrapper), (SyncClientWrapper, AsyncClientWrapper)),
)


def instrument() -> None:
    """Guard every cohere client created from now on, by the app or by a framework inside it, and every client
    wrapper and HttpClient, which the resource clients (``v2.client.V2Client``, ...) an app builds by hand are built
    around. Idempotent."""
    for constructors, classes in _senders:
        constructors.patch(classes)
    _constructors.patch(_BASES)


def uninstrument() -> None:
    """Undo :func:`instrument` (clients already guarded stay guarded)."""
    _constructors.restore()
    for constructors, _ in _senders:
        constructors.restore()
