"""The guard as an httpx transport: the seam of the openai, cohere, mistralai and google-genai SDKs.

Each of those SDKs sends every request through an httpx client (httpx itself
for cohere and google-genai; its fork httpx2 for openai 3 and mistralai 3,
which has the same API but its own classes). Wrapping that client's transport
puts the guard after the SDK has built the final request (URL, headers, body)
and before any byte is written, whichever part of the SDK sent it. A refused
request raises the SDK-flavoured refusal the seam was given (an exception
that is both :class:`privsdk.PolicyViolation` and the SDK's own error base,
so the SDK neither wraps nor retries it). An allowed request's answer is
recorded when it ends, with its tokens counted off the call path.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import ModuleType
from typing import Any, NamedTuple, Protocol, TypeVar

from privsdk import sdklogs
from privsdk.decision import unjudged
from privsdk.errors import ConfigError, PolicyViolation
from privsdk.outbound import reroute
from privsdk.outbound.judge import Guard, Pass, rerouting
from privsdk.outbound.outgoing import Meter, Outgoing, proxy_origin, read_by_proxy
from privsdk.resilience import Cutoff, cutoff

#: Builds the exception a seam raises for a refusal: both PolicyViolation and the SDK's error base. One whose
#: ``request`` is None (openai's errors name the request they are about) is given the refused httpx request.
Refusal = Callable[[PolicyViolation], BaseException]
#: Sends a request the guard rerouted to ``ticket.decision.chosen`` instead, and answers in the SDK's own
#: wire format (the openai drop-in answers chat and embeddings from another vendor this way). It gets the
#: httpx-like module of the client, to build the response with.
Rerouter = Callable[[Outgoing, Pass, ModuleType], Any]
AsyncRerouter = Callable[[Outgoing, Pass, ModuleType], Awaitable[Any]]
C = TypeVar("C")
_monotonic = time.monotonic


def outgoing(request: Any, sdk: str, body: bytes) -> Outgoing:
    """The guard's view of an httpx (or httpx2) request whose body has been read."""
    url = request.url
    # httpx keeps the parsed URL (scheme and host lower-case, path and query as sent) in one tuple; its public
    # properties rebuild each part, which cost a third of this function. Headers stay httpx's own: looked up
    # case-insensitively, and copied for nothing (copying a dozen SDK headers cost as much as the whole guard).
    ref = getattr(url, "_uri_reference", None)
    if ref is None:
        path, _, query = url.raw_path.decode("ascii").partition("?")
        host = url.raw_host.decode("ascii").lower()  # as sent on the wire: an IDNA host stays encoded
        return Outgoing(sdk, request.method, url.scheme, host, url.port, path, query, request.headers, body)
    # Built by tuple's own constructor: a named tuple's __new__ is a Python function, and every Python frame
    # on this path costs three times its instructions, run cold between two SDK calls (docs/performance.md).
    fields = (
        sdk,
        request.method,
        ref.scheme,
        ref.host,
        ref.port,
        ref.path or "/",
        ref.query or "",
        request.headers,
        body,
    )
    return tuple.__new__(Outgoing, fields)


def sent_otherwise(request: Any) -> str | None:
    """Why ``request`` would be sent otherwise than its URL says (the URL is what the guard judged), or None:
    httpcore sends the ``target`` extension as its request line's path and query, and asks TLS for the
    ``sni_hostname`` extension's host, by which a shared front end routes. An app's event hook can set either."""
    url = request.url
    origin = f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"
    target = request.extensions.get("target")
    if target is not None and target != url.raw_path:
        return (
            f"the request to {origin} carries httpcore's 'target' extension, which sends another path than its "
            "URL's, the one judged (remove the extension)"
        )
    sni = request.extensions.get("sni_hostname")
    if sni is not None:
        name = sni.decode("ascii", "replace") if isinstance(sni, bytes) else str(sni)
        if name.lower().rstrip(".") != url.host.rstrip("."):
            return (
                f"the request to {origin} carries httpcore's 'sni_hostname' extension, which names another host to "
                "TLS than its URL's, the one judged: a front end that routes by it would serve the request elsewhere "
                "(remove the extension)"
            )
    return None


def _refusal(refusal: Refusal, exc: PolicyViolation | ConfigError, out: Outgoing, request: Any) -> BaseException:
    """The SDK's refusal of ``request`` for what judging it raised: a configuration error fails closed, and
    visibly (the SDK must neither wrap it nor retry it)."""
    if isinstance(exc, ConfigError):
        exc = PolicyViolation(unjudged(out.host, f"configuration error: {exc}"))
    return _refused(refusal, exc, request)


class _Seam(NamedTuple):
    """The guard's classes for one httpx-like library."""

    transport: type[Any]
    async_transport: type[Any]
    client: type[Any]
    async_client: type[Any]
    cut: type[Any]


@functools.lru_cache(maxsize=4)
def _seam(library: str) -> _Seam:
    """The guard's transport classes for ``library`` (``httpx`` or ``httpx2``).

    Built per library because httpx checks that a response stream is an instance of its own
    ``SyncByteStream`` / ``AsyncByteStream`` before reading it.
    """
    http: Any = importlib.import_module(library)

    class Metered(http.SyncByteStream):  # type: ignore[misc]
        """A response body that keeps its chunks for its meter as they pass (see :func:`_metered`) and records the
        request when it ends or closes."""

        def __init__(self, inner: Any, ticket: Pass, status: int, headers: Any):
            self.inner, self.ticket, self.status, self.headers = inner, ticket, status, headers
            self.meter: Meter | None = None  # built at a second chunk (see _kept_for), else by the writer
            self.kept: list[bytes] | None = []
            ticket.hold(self)  # still open when the recorder closes (at exit, a module global): _abandoned

        def __iter__(self) -> Iterator[bytes]:
            kept = self.kept
            try:
                chunks = iter(self.inner)
                for chunk in chunks:  # the first chunk, timed; the loop below passes the rest as before
                    self.ticket.first_chunk()
                    if kept is not None:  # None if another thread closed the body before it was read (_kept_for)
                        kept.append(chunk)
                    yield chunk
                    break
                for chunk in chunks:
                    if kept is not None:
                        if self.meter is None or len(kept) >= _KEEP_AT_MOST:
                            kept = _kept_for(self)
                        if kept is not None:
                            kept.append(chunk)
                    yield chunk
            except GeneratorExit:
                _answered(self, early=True)
                raise
            except BaseException as exc:
                self.ticket.finish(self.status, exc=exc)
                raise
            _answered(self, early=False)

        def close(self) -> None:
            try:
                self.inner.close()
            finally:  # closed before its end (after it, the request is recorded already): whole, or cancelled
                if not self.ticket.done:
                    _answered(self, early=True)

        def _abandoned(self) -> None:
            _recorded_as_it_stands(self)

        def __del__(self) -> None:
            if not self.ticket.done:  # dropped before its end or close (the app let go of it unread)
                with contextlib.suppress(Exception):  # never raise from a finalizer (interpreter shutdown, say)
                    _answered(self, early=True)

    class AsyncMetered(http.AsyncByteStream):  # type: ignore[misc]
        """:class:`Metered` for async responses."""

        def __init__(self, inner: Any, ticket: Pass, status: int, headers: Any):
            self.inner, self.ticket, self.status, self.headers = inner, ticket, status, headers
            self.meter: Meter | None = None
            self.kept: list[bytes] | None = []
            ticket.hold(self)

        async def __aiter__(self) -> AsyncIterator[bytes]:
            kept = self.kept
            try:
                chunks = aiter(self.inner)
                async for chunk in chunks:  # the first chunk, timed; the loop below passes the rest as before
                    self.ticket.first_chunk()
                    if kept is not None:
                        kept.append(chunk)
                    yield chunk
                    break
                async for chunk in chunks:
                    if kept is not None:
                        if self.meter is None or len(kept) >= _KEEP_AT_MOST:
                            kept = _kept_for(self)
                        if kept is not None:
                            kept.append(chunk)
                    yield chunk
            except GeneratorExit:
                _answered(self, early=True)
                raise
            except BaseException as exc:
                self.ticket.finish(self.status, exc=exc)
                raise
            _answered(self, early=False)

        async def aclose(self) -> None:
            try:
                await self.inner.aclose()
            finally:
                if not self.ticket.done:
                    _answered(self, early=True)

        def _abandoned(self) -> None:
            _recorded_as_it_stands(self)

        def __del__(self) -> None:
            if not self.ticket.done:
                with contextlib.suppress(Exception):
                    _answered(self, early=True)

    class GuardTransport(http.BaseTransport):  # type: ignore[misc]
        """A transport that judges each request before handing it to ``inner``."""

        def __init__(
            self, inner: Any, *, sdk: str, refusal: Refusal, guard: Guard | None, reroute: Rerouter | None
        ) -> None:
            self.inner, self.sdk, self.refusal, self.guard, self.reroute = inner, sdk, refusal, guard, reroute
            self.proxy = proxy_of(inner)  # told once, here: a transport without a proxy pays one attribute read

        def handle_request(self, request: Any) -> Any:
            body: Any = getattr(request, "_content", None)  # read already, as SDKs build requests: bytes
            if body is None or getattr(request.stream, "_stream", None) is not body:
                # Not read yet, or a stream put in its place since (an httpx event hook): what is sent is the
                # stream's, read whole here and sent from memory.
                request.__dict__.pop("_content", None)
                body = request.read()
            out = outgoing(request, self.sdk, body)
            try:  # here, not in a function of its own: each Python call on this path costs 0.5-1 µs, run cold
                ticket = (self.guard or Guard._default or Guard.default()).check(
                    out, reroutable=self.reroute is not None
                )
            except (PolicyViolation, ConfigError) as exc:
                raise _refusal(self.refusal, exc, out, request) from None
            if ticket.decision.outcome == "reroute" and self.reroute is not None:
                ticket.wait = reroute.read_timeout(request)  # the alternative answers within the SDK's timeout
                token = rerouting.set(ticket.decision)  # the Client records its call as this reroute
                try:
                    return self.reroute(out, ticket, http)
                except Exception as exc:
                    raise _refused(self.refusal, reroute.failed(ticket, exc), request) from None
                finally:
                    rerouting.reset(token)
            if self.proxy is not None and out.scheme != "https":  # only https is tunnelled past the proxy unread
                raise _refused(self.refusal, ticket.refuse(read_by_proxy(out, self.proxy)), request) from None
            sent = request.extensions
            if ("target" in sent or "sni_hostname" in sent) and (why := sent_otherwise(request)) is not None:
                raise _refused(self.refusal, ticket.refuse(why), request) from None
            if not ticket.record:  # a Client attempt (the Client records it) or PRIVSDK_USAGE=none: nothing to meter
                return self.inner.handle_request(request)
            try:
                response = self.inner.handle_request(request)
            except BaseException as exc:
                ticket.finish(None, exc=exc)
                raise
            return _metered(ticket, response, Metered)

        def close(self) -> None:
            self.inner.close()

    class AsyncGuardTransport(http.AsyncBaseTransport):  # type: ignore[misc]
        """:class:`GuardTransport` for async clients."""

        def __init__(
            self, inner: Any, *, sdk: str, refusal: Refusal, guard: Guard | None, reroute: AsyncRerouter | None
        ) -> None:
            self.inner, self.sdk, self.refusal, self.guard, self.reroute = inner, sdk, refusal, guard, reroute
            self.proxy = proxy_of(inner)

        async def handle_async_request(self, request: Any) -> Any:
            body: Any = getattr(request, "_content", None)
            if body is None or getattr(request.stream, "_stream", None) is not body:  # as handle_request
                request.__dict__.pop("_content", None)
                body = await request.aread()
            out = outgoing(request, self.sdk, body)
            try:  # here, not in a function of its own: each Python call on this path costs 0.5-1 µs, run cold
                ticket = (self.guard or Guard._default or Guard.default()).check(
                    out, reroutable=self.reroute is not None
                )
            except (PolicyViolation, ConfigError) as exc:
                raise _refusal(self.refusal, exc, out, request) from None
            if ticket.decision.outcome == "reroute" and self.reroute is not None:
                ticket.wait = reroute.read_timeout(request)  # the alternative answers within the SDK's timeout
                token = rerouting.set(ticket.decision)  # the Client records its call as this reroute
                try:
                    return await self.reroute(out, ticket, http)
                except Exception as exc:
                    raise _refused(self.refusal, reroute.failed(ticket, exc), request) from None
                finally:
                    rerouting.reset(token)
            if self.proxy is not None and out.scheme != "https":
                raise _refused(self.refusal, ticket.refuse(read_by_proxy(out, self.proxy)), request) from None
            sent = request.extensions
            if ("target" in sent or "sni_hostname" in sent) and (why := sent_otherwise(request)) is not None:
                raise _refused(self.refusal, ticket.refuse(why), request) from None
            if not ticket.record:
                return await self.inner.handle_async_request(request)
            try:
                response = await self.inner.handle_async_request(request)
            except BaseException as exc:
                ticket.finish(None, exc=exc)
                raise
            return _metered(ticket, response, AsyncMetered)

        async def aclose(self) -> None:
            await self.inner.aclose()

    class CutTransport(http.BaseTransport):  # type: ignore[misc]
        """Inside the guard of a privsdk.Client's sync SDK client: a Client attempt's answer that has not fully come
        by its cutoff (:class:`privsdk.resilience.Cutoff`) ends with a read timeout, which each SDK raises as its
        own timeout. httpx's timeouts bound each read: an answer that trickles in, or a stream of keep-alive
        comments, would otherwise run past the attempt's timeout and the call's deadline. Only the Client's
        transports have this layer (:func:`guard_httpx`): other requests pay nothing for it."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def handle_request(self, request: Any) -> Any:
            response = self.inner.handle_request(request)
            ends = cutoff.get()
            if ends is not None:
                response.stream = CutStream(response.stream, ends, request)
            return response

        def close(self) -> None:
            self.inner.close()

    class CutStream(http.SyncByteStream):  # type: ignore[misc]
        """A response body that ends with a read timeout at the first chunk past its cutoff's ``at``, read at each
        chunk: a stream's attempt moves it to the call's deadline once the stream is open."""

        def __init__(self, inner: Any, ends: Cutoff, request: Any) -> None:
            self.inner, self.ends, self.request = inner, ends, request

        def __iter__(self) -> Iterator[bytes]:
            ends = self.ends
            for chunk in self.inner:
                if _monotonic() >= ends.at:
                    raise http.ReadTimeout("the answer did not come in time", request=self.request)
                yield chunk

        def close(self) -> None:
            self.inner.close()

    return _Seam(GuardTransport, AsyncGuardTransport, http.Client, http.AsyncClient, CutTransport)


#: How many chunks of an answer a metered body keeps for the writer thread's meter: past them (a long stream), the
#: meter reads the kept ones on the call path, a batch at a time, so an answer is never held whole.
_KEEP_AT_MOST = 256


class _Kept(Protocol):
    """A metered body (sync or async): what :func:`_kept_for` and :func:`_answered` read of it."""

    ticket: Pass
    status: int
    headers: Any
    meter: Meter | None
    kept: list[bytes] | None


def _kept_for(body: _Kept) -> list[bytes] | None:
    """The list to keep the body's next chunks in, None to keep no more.

    At a second chunk the body's meter is built: an answer no meter counts (a file's content, audio) keeps nothing
    from then on (a one-chunk answer, as most JSON answers are, has its meter built by the writer). Past
    :data:`_KEEP_AT_MOST` chunks, the meter reads those kept so far, and they are let go of.

    None, too, once the body's request is recorded: another thread can close the body (``response.close()``) while
    its reader is between two chunks, and the close hands the kept chunks and the meter to the writer. The reader
    then passes on what it reads, as the SDK reads it, and keeps nothing more.
    """
    kept = body.kept
    if kept is None:
        return None
    meter = body.meter
    if meter is None:
        meter = body.meter = body.ticket.meter(body.status, body.headers)
        if meter is None:
            body.kept = None
            return None
    if len(kept) >= _KEEP_AT_MOST:
        for chunk in kept:
            meter.feed(chunk)
        kept.clear()
    return kept


def _answered(body: _Kept, early: bool) -> None:
    """Record the body's request, handing its kept chunks to the writer: the body lets go of them (a response the app
    keeps must not keep them)."""
    kept, body.kept = body.kept, None
    body.ticket.answered(body.status, body.meter, kept, early, headers=body.headers)


def _recorded_as_it_stands(body: _Kept) -> None:
    """Record the body's request as cancelled (whole, if its token counts have come) while it may still be read: the
    recorder is closing (interpreter exit, a guard's close) with the body open, perhaps in another thread. The
    reader keeps its chunks and its meter, so the writer gets a copy of the chunks and a meter of its own; a long
    answer whose first chunks a meter of the body's counted is recorded with what the copy holds."""
    kept = body.kept
    chunks = list(kept) if kept is not None else None
    body.ticket.answered(body.status, None, chunks, early=True, headers=body.headers)


def _metered(ticket: Pass, response: Any, metered: type[Any]) -> Any:
    """``response`` with its body kept for its meter as it passes (``metered`` wraps its stream) and the request
    recorded when the body ends: the meter counts the kept chunks in the writer thread, off the call path (reading
    a small answer for its counts, between two SDK calls, cost more than deciding on its request). A body the inner
    transport has already read in full (httpx's MockTransport, respx, a caching transport) will not pass again: the
    request is recorded now, with that body."""
    if response.is_stream_consumed:
        try:
            kept: list[bytes] | None = [response.content]
        except Exception:  # consumed and not kept (httpx's ResponseNotRead): there are no counts to read
            kept = None
        ticket.answered(response.status_code, None, kept, headers=response.headers)
    else:
        response.stream = metered(response.stream, ticket, response.status_code, response.headers)
    return response


def _refused(refusal: Refusal, exc: BaseException, request: Any) -> BaseException:
    """The SDK's refusal for ``exc`` when it is a PolicyViolation (else ``exc``), naming ``request`` if it names one:
    by its method and URL only, without user info, query or fragment, headers or body (a gateway's password, the
    prompt, the API key), which a privsdk error never carries."""
    if not isinstance(exc, PolicyViolation):
        return exc
    error = refusal(exc)
    if getattr(error, "request", False) is None:
        url = request.url.copy_with(userinfo=b"", query=None, fragment=None)
        error.request = type(request)(request.method, url)  # type: ignore[attr-defined]
    return error


#: httpcore's (and httpcore2's) connection pools that send through a proxy: what httpx's HTTPTransport keeps in
#: ``_pool`` when it was built with a proxy (``proxy=``, ``mounts=``, or HTTP_PROXY / HTTPS_PROXY / ALL_PROXY, which
#: httpx turns into proxy mounts).
_PROXY_POOLS = frozenset({"HTTPProxy", "AsyncHTTPProxy", "SOCKSProxy", "AsyncSOCKSProxy"})


def proxy_of(transport: Any) -> str | None:
    """The proxy ``transport`` sends through (its origin, without user info), None when it sends directly.

    The guard judges the request's URL; a proxy can read what it passes on unless TLS runs end to end through it.
    An http(s) proxy tunnels an https request (CONNECT: it sees ciphertext) but forwards a plain http one whole;
    a SOCKS proxy relays the raw bytes, which for http are the request in plain text. So through either, the
    guard's transport refuses anything but https. Told once per transport, from its pool's class, by name and
    library (httpcore's and httpcore2's, subclasses too): nothing is imported for a transport not httpx's own.
    """
    while not hasattr(transport, "_pool") and hasattr(transport, "inner"):  # through wrappers (loops.LoopSafe)
        transport = transport.inner
    pool = getattr(transport, "_pool", None)
    if pool is None:
        # openai's aiohttp transport (DefaultAioHttpClient) keeps the httpx Proxy that httpx hands a proxy mount.
        proxy: Any = getattr(transport, "proxy", None)
        if type(proxy).__name__ == "Proxy" and type(proxy).__module__.partition(".")[0] in ("httpx", "httpx2"):
            return proxy_origin(proxy.url.scheme, proxy.url.host, proxy.url.port)
        return None
    for cls in type(pool).__mro__:
        if cls.__name__ in _PROXY_POOLS and cls.__module__.partition(".")[0] in ("httpcore", "httpcore2"):
            # httpcore's URL of the proxy: httpx hands its user info apart (proxy_auth), never in the URL.
            url = pool._proxy_url
            return proxy_origin(url.scheme.decode("ascii"), url.host.decode("ascii"), url.port)
    return None


def _library(client: object) -> str:
    """``httpx`` or ``httpx2``: the library of the client's class or of the nearest base (SDKs subclass them)."""
    for cls in type(client).__mro__:
        library = cls.__module__.partition(".")[0]
        if library in ("httpx", "httpx2"):
            return library
    raise TypeError(f"not an httpx client: {type(client).__module__}.{type(client).__qualname__}")


def guard_httpx(
    client: C,
    *,
    sdk: str,
    refusal: Refusal,
    guard: Guard | None = None,
    reroute: Rerouter | None = None,
    areroute: AsyncRerouter | None = None,
) -> C:
    """Put the guard in front of every transport of ``client`` (an httpx or httpx2 client), in place.

    Wraps the client's own transport and its mounts (proxies). A transport that sends through a proxy passes
    https requests only (see :func:`proxy_of`). A transport already guarded is left as it is, so guarding twice
    is harmless. Returns ``client``. ``reroute`` (sync clients) or ``areroute``
    (async ones) answers requests the guard reroutes; without one, such requests are refused.
    """
    seam = _seam(_library(client))
    if guard is None:  # loaded as the client is built: a bad PRIVSDK_* value is a ConfigError here, not a refusal later
        Guard.default()
    sdklogs.install()  # the SDK and its HTTP stack log headers and bodies at DEBUG: keep them out of the app's logs
    # A privsdk.Client's guard: its sync transports cut each attempt's answer at the attempt's bound (CutTransport),
    # whoever guarded them first (under instrument(), the process-wide guard, which the Client's then replaces).
    cuts = getattr(guard, "cuts_answers", False)
    wrap: Callable[[Any], Any]
    if isinstance(client, seam.async_client):
        guarded: type[Any] = seam.async_transport

        def wrap(t: Any) -> Any:
            if t is None:
                return t
            if isinstance(t, seam.async_transport):
                return _shared(t, sdk)
            return seam.async_transport(t, sdk=sdk, refusal=refusal, guard=guard, reroute=areroute)
    else:
        guarded = seam.transport

        def wrap(t: Any) -> Any:
            if t is None:
                return t
            if isinstance(t, seam.transport):
                _shared(t, sdk)
            else:
                t = seam.transport(t, sdk=sdk, refusal=refusal, guard=guard, reroute=reroute)
            return _cutting(seam, t) if cuts else t

    # httpx keeps the default transport and the proxy mounts in these two attributes; it has no public setter.
    target: Any = client
    target._transport = wrap(target._transport)
    target._mounts = {pattern: wrap(t) for pattern, t in target._mounts.items()}
    # httpx picks each request's transport in _transport_for_url: put one where the app may have put another since
    # (_transport, _mounts), or made by the class's own. An instance attribute, as the client's type stays its own;
    # holding the client by a weak proxy, so that it is freed, and its connections closed, as soon as it is dropped.
    target.__dict__["_transport_for_url"] = functools.partial(
        _picked, type(target)._transport_for_url, wrap, guarded, weakref.proxy(target)
    )
    return client


def _picked(
    pick: Callable[[Any, Any], Any], wrap: Callable[[Any], Any], guarded: type[Any], client: Any, url: Any
) -> Any:
    """The transport ``client`` picks for ``url`` (``pick``, its class's ``_transport_for_url``), guarded: one the app
    put in its ``_transport`` or ``_mounts`` after it was guarded is guarded in place first."""
    transport = pick(client, url)
    if type(transport) is guarded:  # as almost always: one type check a request
        return transport
    client._transport = wrap(client._transport)
    client._mounts = {pattern: wrap(t) for pattern, t in client._mounts.items()}
    transport = pick(client, url)
    return transport if type(transport) is guarded else wrap(transport)  # one the class made itself: each time


def _shared(transport: Any, sdk: str) -> Any:
    """``transport``, guarded already, now also sending ``sdk``'s requests: an httpx client two SDKs' clients share,
    whose requests the guard reads in the protocol of neither where theirs differ (:func:`judge.protocol_of`)."""
    if sdk not in transport.sdk.split("+"):
        transport.sdk = f"{transport.sdk}+{sdk}"
    return transport


def cut_answers(client: C) -> C:
    """Have the guarded transports of the sync httpx (or httpx2) client ``client`` cut a privsdk.Client attempt's
    answer at the attempt's bound (:class:`privsdk.resilience.Cutoff`); returns ``client``. :func:`guard_httpx` does
    so for a Client's guard; a Client's adapter whose SDK client a drop-in moved to the Client's guard without it
    (google-genai's, under ``instrument()``) calls this."""
    seam = _seam(_library(client))
    if isinstance(client, seam.client):
        target: Any = client
        for t in (target._transport, *target._mounts.values()):
            if isinstance(t, seam.transport):
                _cutting(seam, t)
    return client


def _cutting(seam: _Seam, transport: Any) -> Any:
    """``transport`` (a guard's) with the cut inside it, once."""
    if not isinstance(transport.inner, seam.cut):
        transport.inner = seam.cut(transport.inner)
    return transport


def is_guarded(client: object) -> bool:
    """True when ``client`` (an httpx or httpx2 client) sends through the guard."""
    seam = _seam(_library(client))
    return isinstance(getattr(client, "_transport", None), (seam.transport, seam.async_transport))


# --- the attribute an SDK client keeps its httpx client in ------------------------------------------------------


class _Watch:
    """What a guarded holder's attribute is guarded with; the value guarded last is kept in the holder's
    ``__dict__`` under ``seen``, beside the value (so a read costs a lookup and an identity check)."""

    __slots__ = ("guard", "seen")

    def __init__(self, guard: Callable[[Any, Any], object], seen: str) -> None:
        self.guard, self.seen = guard, seen

    def see(self, holder: object, value: Any) -> None:
        if value is not None:  # nothing to send through (yet)
            self.guard(holder, value)
        holder.__dict__[self.seen] = value


#: No class attribute of that name: a :class:`_Watched` replaced nothing.
_NOTHING: Any = object()


class _Watched:
    """A data descriptor for the attribute ``name`` of a holder class: the value lives where it did (the instance
    ``__dict__`` under the same name, or a class-level default), and on a holder marked by :func:`keep_guarded`,
    each new value is guarded as it is assigned, or read (one put in ``__dict__`` directly). A property it
    replaces is :class:`_WatchedProperty`'s."""

    __slots__ = ("key", "name", "replaced", "seen")

    def __init__(self, name: str, replaced: Any) -> None:
        self.name, self.key, self.seen, self.replaced = name, f"_privsdk_watch{name}", f"_privsdk_seen{name}", replaced

    def __get__(self, obj: Any, owner: type[Any] | None = None) -> Any:
        # SDKs read this attribute several times a request, on every client of the class (guarded or not): the
        # usual read is two dict lookups and an identity check. A holder not guarded has no value seen, and the
        # default of get() is the value itself.
        try:
            held = obj.__dict__
            value = held[self.name]
        except (AttributeError, KeyError):  # the class itself (obj None), or a value not set on this instance
            return self._default(obj, owner)
        if held.get(self.seen, value) is not value:
            self._seen(obj, value)
        return value

    def _default(self, obj: Any, owner: type[Any] | None) -> Any:
        """What the class itself (``obj`` None) or an instance without the value reads: as without this descriptor."""
        replaced = self.replaced
        if replaced is _NOTHING:
            if obj is None:
                name = owner.__name__ if owner is not None else "?"
                raise AttributeError(f"type object {name!r} has no attribute {self.name!r}")
            raise AttributeError(f"{type(obj).__name__!r} object has no attribute {self.name!r}")
        value = replaced.__get__(obj, owner) if hasattr(replaced, "__get__") else replaced
        return value if obj is None else self._seen(obj, value)

    def _seen(self, obj: Any, value: Any) -> Any:
        """``value``, guarded first when it is new to a guarded holder ``obj``."""
        held = obj.__dict__
        watch = held.get(self.key)
        if watch is not None and value is not held.get(self.seen):
            watch.see(obj, value)
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        # Seen before it is stored: a client that cannot be guarded is never sent through.
        obj.__dict__[self.name] = self._seen(obj, value)

    def __delete__(self, obj: Any) -> None:
        if obj.__dict__.pop(self.name, self) is self:
            raise AttributeError(f"{type(obj).__name__!r} object has no attribute {self.name!r}")


class _WatchedProperty(_Watched):
    """:class:`_Watched` for an attribute a data descriptor of the class keeps (a property): reads and writes go
    through it, and what it hands out is guarded as it is read."""

    __slots__ = ()

    def __get__(self, obj: Any, owner: type[Any] | None = None) -> Any:
        value = self.replaced.__get__(obj, owner)
        return value if obj is None else self._seen(obj, value)

    def __set__(self, obj: Any, value: Any) -> None:
        self.replaced.__set__(obj, self._seen(obj, value))

    def __delete__(self, obj: Any) -> None:
        self.replaced.__delete__(obj)


def keep_guarded(holder: object, name: str, guard: Callable[[Any, Any], object]) -> None:
    """Guard the httpx client ``holder.name`` holds now and every one put there later, with ``guard(holder,
    http)``, which guards the httpx client ``http`` in place with the holder's settings (it is given the holder
    rather than closing over it, which the holder, keeping it, would keep alive in a cycle).

    SDK clients keep their httpx client in a plain attribute, and frameworks replace it after the client was
    guarded (pydantic-ai gives each new event loop a new one), which would send past the guard. So the attribute
    becomes a :class:`_Watched` descriptor on the holder's class, installed once: a holder that is not guarded
    (no mark in its ``__dict__``) keeps and reads the value as before. Called again, ``guard`` replaces the last.
    """
    marks = vars(holder)  # a holder without a __dict__ cannot be marked: TypeError, before anything changes
    cls = type(holder)
    found = next((vars(klass)[name] for klass in cls.__mro__ if name in vars(klass)), _NOTHING)
    if isinstance(found, _Watched):
        watched = found
    else:
        # A data descriptor it replaces (a property) keeps the value; anything else stays a class-level default.
        watched = (_WatchedProperty if hasattr(type(found), "__set__") else _Watched)(name, found)
        setattr(cls, name, watched)
    watch = _Watch(guard, watched.seen)
    watch.see(holder, getattr(holder, name, None))
    marks[watched.key] = watch
