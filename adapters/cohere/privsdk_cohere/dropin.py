"""The cohere SDK's clients with privsdk's guard in their HTTP transport.

``ClientV2``, ``AsyncClientV2``, ``Client``, ``AsyncClient``, ``BedrockClientV2``, ``BedrockClient``,
``SagemakerClientV2``, ``SagemakerClient``, ``AwsClient``, ``OciClientV2`` and ``OciClient`` here ARE
the cohere classes (subclasses): same constructor, attributes, resources, raw responses and streams.
The only difference is that every request the client sends first passes
:class:`privsdk.outbound.judge.Guard`, which decides from the request itself (host, path, body) and
raises :class:`PolicyViolation` before a byte is written when the tenant's requirements are not met.

The seam is the client's httpx client: the one the app passes as ``httpx_client`` is guarded in
place, and so is the one the SDK builds. The Bedrock, SageMaker and OCI clients sign requests in an
httpx event hook that rewrites the URL to ``bedrock-runtime.<region>.amazonaws.com``,
``runtime.sagemaker.<region>.amazonaws.com`` or OCI's inference host; hooks run before the transport,
so the guard judges the request as it leaves for that host (one the catalogue does not know, such as
OCI's, is refused until declared in ``PRIVSDK_ENDPOINTS``).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import cohere
import httpx
from cohere.base_client import AsyncBaseCohere, BaseCohere
from cohere.core.api_error import ApiError

from privsdk.context import CallersContextExecutor, lazy_in_callers_context
from privsdk.errors import PolicyViolation as _PolicyViolation
from privsdk.outbound.constructors import Constructors, then_guard
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


def _sdk_http_client(client: Any) -> Any:
    """The SDK's HttpClient under a cohere client (its ``_client_wrapper`` holds it), which keeps the httpx client
    in its ``httpx_client``."""
    held = getattr(getattr(client, "_client_wrapper", None), "httpx_client", None)
    if not isinstance(getattr(held, "httpx_client", None), httpx.Client | httpx.AsyncClient):
        raise TypeError(f"privsdk cannot guard {type(client).__name__}: it is not a cohere client over httpx")
    return held


def guard_client(client: _C, *, guard: Guard | None = None, reroutes: bool = True) -> _C:
    """Guard a cohere client the app already built (any of the SDK's clients), in place; returns it.

    ``guard`` judges its requests (None: the process-wide guard, configured from the environment). With
    ``reroutes``, a v2 chat or embed request the tenant reroutes is answered from the alternative in
    Cohere's wire format (:mod:`privsdk_cohere.reroute`); anything else it reroutes is refused. privsdk's own
    adapters pass False: the :class:`privsdk.Client` they serve reroutes by itself.
    """
    if isinstance(client, _LEGACY_AWS):
        # cohere's older boto3-based client (the former cohere-aws package) calls models through a boto3 runtime
        # client of its own (bedrock-runtime or sagemaker-runtime): that one is judged. Its control-plane client
        # (endpoints, fine-tuning jobs) is left as the SageMaker helper's is.
        _guard_boto3(client._client, guard)
        return client
    held = _sdk_http_client(client)
    hooks: dict[str, Any] = {}
    if reroutes:
        from privsdk_cohere import reroute

        hooks = {"reroute": reroute.send, "areroute": reroute.asend}

    def guard_http(_holder: object, http: Any) -> None:
        if isinstance(http, httpx.AsyncClient) and not is_guarded(http):
            loop_safe(http)  # usable from one asyncio.run after another, which cohere's own async clients are not
        guard_httpx(http, sdk=SDK, refusal=_refusal, guard=guard, **hooks)

    # The SDK's HttpClient keeps the httpx client in its ``httpx_client``, where frameworks put a new one later
    # (pydantic-ai, on each new event loop): every one put there is guarded as this one is. So is every one in a
    # new HttpClient put in place of it, in the client wrapper that every part of the client shares.
    keep_guarded(held, "httpx_client", guard_http)
    wrapper: Any = getattr(client, "_client_wrapper")  # noqa: B009  # _sdk_http_client found it there
    keep_guarded(wrapper, "httpx_client", lambda _wrapper, new: keep_guarded(new, "httpx_client", guard_http))
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
    # the class had it when the client was built, which a later change to the class would not reach.
    for holder in (client, getattr(client, "v2", None)):
        for name in _LAZY_STREAMS:
            method = getattr(holder, name, None)
            if callable(method) and not getattr(method, "_privsdk", False):
                setattr(holder, name, lazy_in_callers_context(method))
    return client


#: The methods of cohere's clients (and of their ``v2``) that return generators.
_LAZY_STREAMS = ("chat_stream", "generate_stream", "embed_stream")


def _guard_boto3(runtime: Any, guard: Guard | None) -> None:
    """Judge every request of a boto3 client as botocore is about to send it (its ``before-send`` event)."""
    if getattr(runtime, "_privsdk_guarded", False):
        return

    def judge(request: Any, **_: Any) -> None:
        url = httpx.URL(request.url)
        body = request.body
        body = body.encode() if isinstance(body, str) else body if isinstance(body, bytes) else b""  # streams: unread
        headers = {k.lower(): v.decode("latin-1") if isinstance(v, bytes) else v for k, v in request.headers.items()}
        path = url.raw_path.partition(b"?")[0].decode("ascii")
        out = Outgoing(SDK, request.method, url.scheme, url.host, url.port, path, url.query.decode(), headers, body)
        try:
            ticket = (guard or Guard.default()).check(out)
        except _PolicyViolation as violation:
            raise _refusal(violation) from None
        ticket.finish(None)  # recorded as sent: botocore reads the answer past this seam

    runtime.meta.events.register(f"before-send.{runtime.meta.service_model.service_id.hyphenize()}", judge)
    runtime._privsdk_guarded = True


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


#: The SDK's base classes: every cohere client (v1, v2, Bedrock, SageMaker, OCI) runs one of their __init__;
#: the SageMaker clients, which build their boto3 helper after the base class is done; and the boto3-based client.
_BASES: tuple[type[Any], ...] = (
    BaseCohere, AsyncBaseCohere, cohere.SagemakerClientV2, cohere.SagemakerClient, *_LEGACY_AWS
)  # fmt: skip
_constructors = Constructors(guard_client)


def instrument() -> None:
    """Guard every cohere client created from now on, by the app or by a framework inside it. Idempotent."""
    _constructors.patch(_BASES)


def uninstrument() -> None:
    """Undo :func:`instrument` (clients already guarded stay guarded)."""
    _constructors.restore()
