"""The guard as an httpx transport: the seam of the openai, cohere, mistralai and google-genai SDKs.

Each of those SDKs sends every request through an httpx client. Wrapping that
client's transport puts the guard after the SDK has built the final request
(URL, headers, body) and before any byte is written, whichever part of the
SDK sent it. A refused request raises the SDK-flavoured refusal the seam was
given (an exception that is both :class:`privsdk.PolicyViolation` and the
SDK's own error base, so the SDK neither wraps nor retries it). An allowed
request's answer is metered as its body passes and recorded when it ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import httpx

from privsdk.decision import unjudged
from privsdk.errors import ConfigError, PolicyViolation
from privsdk.outbound.judge import Guard, Pass
from privsdk.outbound.outgoing import Meter, Outgoing

#: Builds the exception a seam raises for a refusal: both PolicyViolation and the SDK's error base.
Refusal = Callable[[PolicyViolation], BaseException]
C = TypeVar("C", httpx.Client, httpx.AsyncClient)


def outgoing(request: httpx.Request, sdk: str, body: bytes) -> Outgoing:
    """The guard's view of an httpx request whose body has been read."""
    url = request.url
    return Outgoing(
        sdk=sdk,
        method=request.method,
        scheme=url.scheme,
        host=url.host.lower(),
        port=url.port,
        path=url.raw_path.partition(b"?")[0].decode("ascii"),
        query=url.query.decode("ascii"),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
    )


def _judge(guard: Guard | None, refusal: Refusal, out: Outgoing) -> Pass:
    try:
        return (guard or Guard.default()).check(out)
    except PolicyViolation as violation:
        raise refusal(violation) from None
    except ConfigError as exc:  # fail closed, and visibly: the SDK must neither wrap this nor retry it
        raise refusal(PolicyViolation(unjudged(out.host, f"configuration error: {exc}"))) from None


class GuardTransport(httpx.BaseTransport):
    """An httpx transport that judges each request before handing it to ``inner``."""

    def __init__(self, inner: httpx.BaseTransport, *, sdk: str, refusal: Refusal, guard: Guard | None = None):
        self.inner, self.sdk, self.refusal, self.guard = inner, sdk, refusal, guard

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        ticket = _judge(self.guard, self.refusal, outgoing(request, self.sdk, request.read()))
        try:
            response = self.inner.handle_request(request)
        except BaseException as exc:
            ticket.finish(None, exc=exc)
            raise
        response.stream = _Metered(response.stream, ticket, ticket.meter(response.status_code, response.headers),
                                   response.status_code)  # fmt: skip
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncGuardTransport(httpx.AsyncBaseTransport):
    """:class:`GuardTransport` for httpx's async clients."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, sdk: str, refusal: Refusal, guard: Guard | None = None):
        self.inner, self.sdk, self.refusal, self.guard = inner, sdk, refusal, guard

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        ticket = _judge(self.guard, self.refusal, outgoing(request, self.sdk, await request.aread()))
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException as exc:
            ticket.finish(None, exc=exc)
            raise
        response.stream = _AsyncMetered(response.stream, ticket, ticket.meter(response.status_code, response.headers),
                                        response.status_code)  # fmt: skip
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Metered(httpx.SyncByteStream):
    """A response body that feeds a meter as it passes and records the request when it ends or is closed."""

    def __init__(self, inner: Any, ticket: Pass, meter: Meter | None, status: int):
        self.inner, self.ticket, self.meter, self.status = inner, ticket, meter, status

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self.inner:
                if self.meter is not None:
                    self.meter.feed(chunk)
                yield chunk
        except BaseException as exc:
            self.ticket.finish(self.status, exc=exc)
            raise
        self._finish()

    def _finish(self) -> None:
        self.ticket.finish(self.status, self.meter.tokens() if self.meter is not None else (None, None))

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self._finish()


class _AsyncMetered(httpx.AsyncByteStream):
    """:class:`_Metered` for async responses."""

    def __init__(self, inner: Any, ticket: Pass, meter: Meter | None, status: int):
        self.inner, self.ticket, self.meter, self.status = inner, ticket, meter, status

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.inner:
                if self.meter is not None:
                    self.meter.feed(chunk)
                yield chunk
        except BaseException as exc:
            self.ticket.finish(self.status, exc=exc)
            raise
        self._finish()

    def _finish(self) -> None:
        self.ticket.finish(self.status, self.meter.tokens() if self.meter is not None else (None, None))

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            self._finish()


def guard_httpx(client: C, *, sdk: str, refusal: Refusal, guard: Guard | None = None) -> C:
    """Put the guard in front of every transport of ``client`` (its own and its mounts), in place.

    A transport already guarded is left as it is, so guarding twice is harmless. Returns ``client``.
    """
    wrap: Callable[[Any], Any]
    if isinstance(client, httpx.AsyncClient):

        def wrap(t: Any) -> Any:
            if t is None or isinstance(t, AsyncGuardTransport):
                return t
            return AsyncGuardTransport(t, sdk=sdk, refusal=refusal, guard=guard)
    else:

        def wrap(t: Any) -> Any:
            if t is None or isinstance(t, GuardTransport):
                return t
            return GuardTransport(t, sdk=sdk, refusal=refusal, guard=guard)

    # httpx keeps the default transport and the proxy mounts in these two attributes; it has no public setter.
    client._transport = wrap(client._transport)
    client._mounts = {pattern: wrap(t) for pattern, t in client._mounts.items()}
    return client


def is_guarded(client: httpx.Client | httpx.AsyncClient) -> bool:
    """True when ``client``'s own transport passes the guard."""
    return isinstance(client._transport, (GuardTransport, AsyncGuardTransport))
