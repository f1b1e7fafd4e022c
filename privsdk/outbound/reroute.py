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
import math
import os
import re
import sys
import threading
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol
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


def async_client(ticket: Pass) -> AsyncClient:
    """:func:`client` for async SDK clients: the one of ``ticket``'s guard. Raises, before anything is sent, the
    refusal of a request rerouted under another event loop than asyncio's (:func:`on_asyncio`)."""
    from privsdk.async_client import AsyncClient

    if not on_asyncio():
        raise _refusal(
            ticket,
            f"but privsdk reroutes async requests only under asyncio, and this one runs under {_event_loop()}: "
            "run the app under asyncio to have it rerouted, or set the tenant's "
            'on_violation = "refuse" to have such requests refused',
        )
    guard = ticket.guard
    with _lock:
        found = _async_clients.get(guard)
        if found is None:
            found = _async_clients[guard] = AsyncClient(
                policy=guard.policy, catalogue=guard.catalogue, usage=guard.recorder, limits=limits()
            )
        return found


def on_asyncio() -> bool:
    """Whether the running code is an asyncio task, where privsdk's :class:`~privsdk.async_client.AsyncClient`,
    which serves async reroutes, can run: its adapters, retries and stream deadlines are asyncio's (its tasks,
    timers, threads and loops). An async SDK client under trio (httpx serves it through anyio) is not: a
    reroute there would fail in the middle as an error of the alternative's, so it is refused before it starts.
    Told without importing asyncio, which a program that never imported it is not running."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return False
    try:
        return asyncio.current_task() is not None  # None: a loop runs, but this code is no task of it
    except RuntimeError:  # no asyncio loop runs in this thread
        return False


def _event_loop() -> str:
    """The async library running this code as sniffio (which httpx's anyio loads) tells it, for a message."""
    sniffio = sys.modules.get("sniffio")
    try:
        return str(sniffio.current_async_library()) if sniffio is not None else "another event loop"
    except Exception:  # sniffio.AsyncLibraryNotFoundError, or a sniffio unlike the one known
        return "another event loop"


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


def read_timeout(request: Any) -> float | None:
    """How long the SDK that built ``request`` (an httpx or httpx2 request) waits for each read of its answer, in
    seconds: the read timeout the SDK's client (or the call) gave it, which httpx keeps in the request's
    ``timeout`` extension. None when it waits without end or says nothing."""
    said = request.extensions.get("timeout")
    return wait_seconds(said.get("read") if isinstance(said, Mapping) else None)


def wait_seconds(seconds: object) -> float | None:
    """``seconds``, an SDK's setting, as a time to wait: a number more than 0 and finite; None for any other (no
    bound, or none said)."""
    return float(seconds) if isinstance(seconds, (int, float)) and 0 < seconds < math.inf else None


def timeout(ticket: Pass) -> dict[str, float]:
    """The ``timeout`` call keyword of a rerouted request whose SDK said how long it waits for the answer
    (``ticket.wait``, :func:`read_timeout`, set by its seam): the smaller of that and privsdk's own time for an
    attempt (the reroute client's, :data:`DEFAULT_TIMEOUT_S`).

    Sent where the SDK sent it, the request would time out then; served from the alternative, privsdk's own 60 s
    (and ``PRIVSDK_DEADLINE_S``) would have kept the app waiting past the timeout it set. Like the SDK's, it bounds
    each wait of an attempt, not a whole stream; ``PRIVSDK_DEADLINE_S`` still bounds the call. Empty where the SDK
    says nothing (or no timeout): privsdk's own limits apply.
    """
    if ticket.wait is None:
        return {}
    from privsdk.adapter import DEFAULT_TIMEOUT_S  # the reroute client's timeout (it is built without one)

    return {"timeout": min(ticket.wait, DEFAULT_TIMEOUT_S)}


def raise_timeout(http: ModuleType, exc: Exception) -> None:
    """Raise, for a rerouted request the alternative did not answer in time (``exc``, a timeout, within the
    SDK's own timeout: :func:`timeout`), the ``ReadTimeout`` of ``http``, the httpx-like module of the SDK's client,
    as a request sent where the SDK sent it raises when its answer does not come in time: the SDK takes it for its
    own timeout (openai retries it, then raises ``APITimeoutError``), where an answer with status 504 would be a
    server's error. The message is privsdk's. Any other failure returns, for the seam to answer as the vendor
    would."""
    if isinstance(exc, VendorError) and exc.kind == "timeout":
        raise http.ReadTimeout(str(exc)) from None


def unsupported(ticket: Pass, what: str) -> PolicyViolation:
    """The refusal of a rerouted request privsdk cannot serve elsewhere (only chat and embeddings reroute)."""
    return _refusal(ticket, f"but privsdk can reroute only chat and embeddings, not {what}")


def not_as_asked(ticket: Pass, request: str, what: str) -> PolicyViolation:
    """The refusal of a rerouted ``request`` (``this Mistral chat request``) whose body asks for something the
    reroute cannot carry to the alternative or the alternative cannot honour: ``what`` names the fields, never
    their values, and says why. Raised before anything is sent."""
    return _refusal(ticket, f"but privsdk cannot reroute {request} to {ticket.decision.chosen} as asked: {what}")


def cannot_serve(ticket: Pass, exc: Exception) -> PolicyViolation:
    """The refusal of a reroute that the alternative cannot serve: an operation or a message its adapter cannot
    take, or a configuration error on the way (a credential variable not set, say). Raised before anything is
    sent. The message is privsdk's own, which names targets, operations, positions and variables, never content."""
    return _refusal(ticket, f"but {ticket.decision.chosen} cannot serve it: {exc}")


def _refusal(ticket: Pass, but: str) -> PolicyViolation:
    """The reroute decision on ``ticket``'s request turned into a refusal, ``but`` why. Made from the verdict's
    decision: the ticket's may be its copy for this request's records (:class:`~privsdk.outbound.judge.Rerouted`),
    which a refusal is no part of."""
    d = ticket.verdict.decision
    reason = f"{d.reason}; {but}"
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
    """The body asks for something the reroute cannot carry or the alternative cannot honour: a reroute module
    raises it while mapping a request, and refuses with :func:`not_as_asked` (or :func:`unsupported`). ``what``
    names it by schema words only, never a value from the body."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def field_name(key: object) -> str:
    """A body key as a refusal may name it: a schema word. Anything else (a key an app made of its own text,
    through ``extra_body``, say) is not repeated."""
    return key if isinstance(key, str) and _FIELD_NAME.fullmatch(key) else "(a field whose name is not shown)"


#: The content part types of the vendors' chat APIs (OpenAI's, Cohere's, Mistral's chunks): a refusal may name
#: them. Any other type is a word of the app's own, not repeated.
PART_TYPES = frozenset(
    {
        "text", "image_url", "input_audio", "file", "refusal", "input_text", "input_image", "input_file",
        "output_text", "image", "document", "document_url", "thinking", "reference", "audio_url", "file_url",
        "tool_call", "tool_result", "tool_use",
    }
)  # fmt: skip


def part_type(kind: object) -> str:
    """A content part's type as a refusal may name it: one of :data:`PART_TYPES`, else a placeholder."""
    return kind if isinstance(kind, str) and kind in PART_TYPES else "(a type whose name is not shown)"


class Carry(NamedTuple):
    """How a reroute carries one field of a request body to the alternative: a row of a reroute module's table.

    ``read``: the module reads the field itself (messages, stream, the texts to embed, ...) and refuses what it
    cannot map. ``option``: the field becomes the privsdk call keyword ``to`` (through ``convert``, which may
    raise :class:`Unmappable`, when given), so every alternative gets it in its own API's terms. ``default``:
    privsdk has no way to carry the field, so it is honoured only at a value in ``defaults``, which asks the
    vendor for nothing; ``why`` says what any other value would lose. A field of no row is refused: privsdk
    cannot tell what it asks for. JSON ``null`` is a field not given, as the vendors' APIs read it.
    """

    how: Literal["read", "option", "default"]
    to: str = ""
    convert: Callable[[Any], Any] | None = None
    defaults: tuple[Any, ...] = ()
    why: str = ""


#: The row of a field the reroute module reads itself.
READ = Carry("read")
#: Why a field privsdk has no option for is refused at any value but its default.
NO_OPTION = "privsdk has no option for it, so the alternative would answer without it"


def option(to: str, convert: Callable[[Any], Any] | None = None) -> Carry:
    """The row of a field carried as the privsdk call keyword ``to``; ``convert`` returning None carries nothing
    (a value that asks for the default)."""
    return Carry("option", to, convert)


def default_only(*defaults: Any, why: str = NO_OPTION) -> Carry:
    """The row of a field privsdk cannot carry: refused unless absent or one of ``defaults``."""
    return Carry("default", defaults=defaults, why=why)


def carry(body: Mapping[str, Any], table: Mapping[str, Carry]) -> dict[str, Any]:
    """The privsdk call keywords of ``body``'s ``option`` fields. Raises :class:`Unmappable` naming every field
    the table refuses, each with why (never a value)."""
    options: dict[str, Any] = {}
    refused: list[str] = []
    for field in sorted(body, key=str):
        value = body[field]
        if value is None:
            continue
        row = table.get(field)
        if row is None:
            refused.append(f"{field_name(field)} (privsdk does not know the field, so cannot tell what it asks for)")
        elif row.how == "option":
            carried = row.convert(value) if row.convert is not None else value
            if carried is not None:
                options[row.to] = carried
        elif row.how == "default" and not any(_same(value, d) for d in row.defaults):
            refused.append(f"{field} ({row.why})")
    if refused:
        raise Unmappable(("field " if len(refused) == 1 else "fields ") + "; ".join(refused))
    return options


def _same(value: Any, default: Any) -> bool:
    """``value`` is ``default`` as JSON says it: 0 and 0.0 alike, but never true and 1."""
    if isinstance(value, bool) or isinstance(default, bool):
        return type(value) is type(default) and value == default
    if isinstance(value, (int, float)) and isinstance(default, (int, float)):
        return value == default
    return type(value) is type(default) and bool(value == default)


def check_keys(item: Mapping[str, Any], table: Mapping[str, Carry], what: str) -> dict[str, Any]:
    """:func:`carry` for a part of the body (a message, a tool), whose refusals say where the field is."""
    try:
        return carry(item, table)
    except Unmappable as exc:
        raise Unmappable(f"{what}'s {exc.what}") from None


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
    format, at a path that ends with one of ``chat_paths`` or with ``embed_path`` (a gateway's prefix, or an Azure
    deployment's, may come before); the kind is ``chat``, ``stream`` or ``embed``. The keywords carry the SDK's
    timeout where it says it (:func:`timeout`). Refuses any other request (:func:`unsupported`), and one whose body
    ``chat`` or ``embed`` cannot map (:func:`not_as_asked`)."""
    operation = ticket.verdict.asks.operation if ticket.verdict.asks else "other"
    path = out.path.rstrip("/")
    is_chat = any(path.endswith(p) for p in chat_paths) and operation in ("chat", "stream")
    is_embed = path.endswith(embed_path) and operation == "embed"
    if not (is_chat or is_embed):
        raise unsupported(ticket, f"{vendor} {operation} at {path}")
    body = out.json()
    if not isinstance(body, dict):
        raise not_as_asked(ticket, f"this {vendor} {operation} request", "a body that is not a JSON object")
    try:
        if is_chat:
            keywords, messages = chat(body)
            stream = body.get("stream")
            if stream is not None and not isinstance(stream, bool):
                raise Unmappable("a stream field that is not true or false")
            return "stream" if stream else "chat", {**options(ticket), **timeout(ticket), **keywords}, messages
        keywords, texts = embed(body)
        return "embed", {**options(ticket), **timeout(ticket), **keywords}, texts
    except Unmappable as exc:
        raise not_as_asked(ticket, f"this {vendor} {operation} request", exc.what) from None


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
