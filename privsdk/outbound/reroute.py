"""What every drop-in's reroute shares: the privsdk client that serves it, and how it refuses or fails.

When the guard refuses a request and the tenant's reroute list names an
alternative whose own decision is allow, a drop-in's seam does not send the
request. Each SDK's ``reroute`` module (``privsdk_<vendor>/reroute.py``) makes
the same call through a :class:`privsdk.Client` to the alternative, and
answers in that SDK's own wire format, so the app gets the SDK's own types.
The parts that do not depend on the wire format live here.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol
from weakref import WeakKeyDictionary

from privsdk.errors import ConfigError, InvalidInput, PolicyViolation, Unsupported, VendorError
from privsdk.outbound.judge import Guard, Pass
from privsdk.outbound.outgoing import Outgoing

if TYPE_CHECKING:
    from privsdk.async_client import AsyncClient
    from privsdk.client import Client
    from privsdk.resilience import Limits
    from privsdk.streams import AsyncChatStream, ChatStream
    from privsdk.types import StreamEvent

#: The HTTP status a failure of the alternative is answered with, when the vendor gave none.
STATUS = {
    "rate_limited": 429,
    "timeout": 504,
    "connection_lost": 502,
    "bad_request": 400,
    "content_refused": 400,
    "auth_failed": 401,
    "not_found": 404,
}

_clients: WeakKeyDictionary[Guard, Client] = WeakKeyDictionary()
_async_clients: WeakKeyDictionary[Guard, AsyncClient] = WeakKeyDictionary()
_lock = threading.Lock()


def client(guard: Guard) -> Client:
    """The privsdk client that serves the guard's reroutes: same policy, catalogue and usage records, and one
    attempt per alternative (:func:`limits`)."""
    from privsdk.client import Client

    with _lock:
        found = _clients.get(guard)
        if found is None:
            found = _clients[guard] = Client(
                policy=guard.policy, catalogue=guard.catalogue, usage=guard.recorder, limits=limits()
            )
        return found


def async_client(guard: Guard) -> AsyncClient:
    """:func:`client` for async SDK clients."""
    from privsdk.async_client import AsyncClient

    with _lock:
        found = _async_clients.get(guard)
        if found is None:
            found = _async_clients[guard] = AsyncClient(
                policy=guard.policy, catalogue=guard.catalogue, usage=guard.recorder, limits=limits()
            )
        return found


def limits() -> Limits:
    """A rerouted request's limits: ``PRIVSDK_DEADLINE_S``, and one attempt at each alternative that allows.

    The drop-in is the SDK, so its own retry settings (openai's and cohere's ``max_retries``, mistralai's
    ``retry_config``, google-genai's retry options, botocore's retry mode) decide how often a failed request is
    sent again; each time it is judged and rerouted afresh. Retries of privsdk's own on top would multiply them.
    """
    from privsdk.config import load_limits

    return load_limits(os.environ)._replace(max_attempts=1)


def options(ticket: Pass) -> dict[str, Any]:
    """The privsdk call keywords every rerouted call starts from: the tenant and data class it was judged for."""
    d = ticket.decision
    return {"tenant": d.tenant, "data_class": d.data_class}


def unsupported(ticket: Pass, what: str) -> PolicyViolation:
    """The refusal of a rerouted request privsdk cannot serve elsewhere (only chat and embeddings reroute)."""
    d = ticket.decision
    reason = f"{d.reason}; but privsdk can reroute only chat and embeddings, not {what}"
    return PolicyViolation(d._replace(outcome="refuse", chosen=None, chosen_evaluation=None, reason=reason))


def cannot_serve(ticket: Pass, exc: Exception) -> PolicyViolation:
    """The refusal of a reroute that the alternative cannot serve: an operation or a message its adapter cannot
    take, or a configuration error on the way (a credential variable not set, say). Raised before anything is
    sent. The message is privsdk's own, which names targets, operations, positions and variables, never content."""
    d = ticket.decision
    reason = f"{d.reason}; but {d.chosen} cannot serve it: {exc}"
    return PolicyViolation(d._replace(outcome="refuse", chosen=None, chosen_evaluation=None, reason=reason))


#: What an alternative's privsdk client raises before sending when it cannot serve a rerouted request: the seam
#: turns these into :func:`cannot_serve` refusals, so every drop-in's reroute fails closed the same way.
CANNOT_SERVE = (ConfigError, InvalidInput, Unsupported)


def failed(ticket: Pass, exc: Exception) -> Exception:
    """What a seam raises when its reroute hook raised before answering, recorded as the refusal it is.

    The hook refuses what it cannot map (a PolicyViolation), and the alternative's privsdk client may be unable
    to serve the request (:data:`CANNOT_SERVE`): both are refusals, which the seam says as the SDK's own. Anything
    else is a bug of the hook, returned as it is.
    """
    if isinstance(exc, CANNOT_SERVE):
        exc = cannot_serve(ticket, exc)
    if isinstance(exc, PolicyViolation):
        ticket.refused(exc.decision)
    return exc


class Unmappable(Exception):
    """The body asks for something the alternative cannot honour: a reroute module raises it while mapping a request
    and refuses with :func:`unsupported`. ``what`` names it by schema words only, never a value from the body."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


def only(body: Mapping[str, Any], known: frozenset[str]) -> None:
    """Fail closed on a field a reroute module does not know (a newer API's): it may change the answer."""
    unknown = sorted(k for k in body if k not in known and body[k] is not None)
    if unknown:
        raise Unmappable(f"field(s) {', '.join(unknown)}")


def function_call(call: Any) -> dict[str, Any]:
    """A tool call in OpenAI's chat shape (Cohere v2 and Mistral send it too), as a privsdk message's tool call;
    arguments given as an object are passed on as their JSON text."""
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict):
        raise Unmappable("a tool call without a function")
    arguments = function.get("arguments")
    return {
        "id": call.get("id"),
        "type": "function",
        "function": {
            "name": function.get("name"),
            "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments or {}),
        },
    }


def status(exc: VendorError) -> int:
    """The HTTP status to answer a failure of the alternative with."""
    return exc.status or STATUS.get(exc.kind, 500)


def retry_after(exc: VendorError) -> dict[str, str]:
    """The ``Retry-After`` header (whole seconds, at least 1) of a failure the vendor said when to retry."""
    return {"retry-after": str(max(1, round(exc.retry_after)))} if exc.retry_after is not None else {}


def json_answer(http: ModuleType, data: Mapping[str, Any]) -> Any:
    """A 200 JSON answer built with ``http``, the httpx-like module of the client that sent the request."""
    return http.Response(200, json=data)


def sse_answer(http: ModuleType, chunks: Iterator[bytes] | AsyncIterator[bytes]) -> Any:
    """A 200 server-sent-events answer whose body is ``chunks``, as they come."""
    return http.Response(200, headers={"content-type": "text/event-stream"}, content=chunks)


#: Maps a request body to (privsdk call keywords, messages or texts); raises :class:`Unmappable`.
BodyMapper = Callable[[Mapping[str, Any]], tuple[dict[str, Any], Any]]


def chat_or_embed(
    out: Outgoing,
    ticket: Pass,
    vendor: str,
    chat_paths: Collection[str],
    embed_path: str,
    chat: BodyMapper,
    embed: BodyMapper,
) -> tuple[str, dict[str, Any], Any]:
    """(kind, privsdk call keywords, messages or texts) of a rerouted chat or embeddings request in ``vendor``'s
    format, at one of ``chat_paths`` or at ``embed_path``; the kind is ``chat``, ``stream`` or ``embed``. Refuses
    any other request, and one whose body ``chat`` or ``embed`` cannot map."""
    operation = ticket.verdict.asks.operation if ticket.verdict.asks else "other"
    path = out.path.rstrip("/")
    body = out.json() if path in chat_paths or path == embed_path else None
    if not isinstance(body, dict):
        raise unsupported(ticket, f"{vendor} {operation} at {path}")
    try:
        if path in chat_paths and operation in ("chat", "stream"):
            keywords, messages = chat(body)
            return "stream" if body.get("stream") else "chat", {**options(ticket), **keywords}, messages
        if path == embed_path and operation == "embed":
            keywords, texts = embed(body)
            return "embed", {**options(ticket), **keywords}, texts
    except Unmappable as exc:
        raise unsupported(ticket, f"a {vendor} {operation} request with {exc.what}") from None
    raise unsupported(ticket, f"{vendor} {operation} at {path}")


class Encoder(Protocol):
    """A vendor's stream format: the wire bytes of each privsdk stream event, and of a failure of the alternative
    after the stream began (privsdk cannot retry a stream it has begun), said in the vendor's in-band way."""

    def __call__(self, event: StreamEvent) -> Iterable[bytes]: ...

    def failed(self, exc: VendorError) -> Iterable[bytes]: ...


def stream_lines(stream: ChatStream, encode: Encoder) -> Iterator[bytes]:
    """The alternative's ``stream`` in the vendor's wire format; the stream is closed however the body ends (read
    to its end, failed, or dropped by the app), so that the alternative's connection is let go."""
    try:
        for event in stream:
            yield from encode(event)
    except VendorError as exc:
        yield from encode.failed(exc)
    finally:
        stream.close()


async def astream_lines(stream: AsyncChatStream, encode: Encoder) -> AsyncIterator[bytes]:
    """:func:`stream_lines` for async clients."""
    try:
        async for event in stream:
            for line in encode(event):
                yield line
    except VendorError as exc:
        for line in encode.failed(exc):
            yield line
    finally:
        await stream.aclose()
