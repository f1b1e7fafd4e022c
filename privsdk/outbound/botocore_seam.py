"""The guard in botocore: every request a Bedrock client sends is judged on its event system.

botocore has no transport to wrap, but it emits an event around each attempt
of each request, on the client's own event emitter (``client.meta.events``):

- ``before-send.<service>``: the prepared request (final URL with the
  Region's host, signed headers, body). The guard judges it here; a refusal
  raises before botocore's HTTP session is called. botocore returns the
  exception to its retry check, which retries only its own connection
  errors, then raises it unchanged to the caller: nothing is sent, no retry.
- ``before-parse.<service>``: the response, before botocore reads it. An
  event-stream body (ConverseStream, InvokeModelWithResponseStream) is
  wrapped here so that its tokens are counted as the app iterates, and the
  attempt is recorded when the stream ends or is closed.
- ``response-received.<service>``: each attempt's outcome (response or
  exception). Any other attempt is recorded here, with its tokens.

The events of one attempt are emitted one after another, on the thread that
makes the call (botocore) or in the asyncio task that awaits it (aiobotocore,
whose emitter calls these same handlers), so the judged request travels from
``before-send`` to the later events in the request's context dict
(``before-parse`` has none, so a context variable carries it there: it is the
thread's own under botocore and the task's own under aiobotocore, where many
requests of one thread interleave). Handlers are registered with a unique id,
so guarding a client twice is harmless.

An aiobotocore client (``aiobotocore``/``aioboto3``) is guarded the same way; only its event-stream body
differs (aiohttp's response, read through ``content.iter_chunks()``: :class:`AsyncMeteredStream`). It is never
rerouted: a rerouter answers in botocore's blocking types, so a request its tenant would reroute is refused.

Not guarded here: botocore logs at DEBUG, before ``before-send``, the request
parameters with the body (logger ``botocore.endpoint``, "Making request for
... with params"), the prepared request's headers (``Sending http request``)
and, after parsing, response bodies (``botocore.parsers``). privsdk's log
filter handles those loggers.
"""

from __future__ import annotations

import contextvars
import inspect
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard
from urllib.parse import urlsplit

from privsdk import sdklogs
from privsdk.errors import PolicyViolation
from privsdk.outbound.outgoing import (
    Finishes,
    Meter,
    Outgoing,
    finish_answer,
    finish_early,
    proxy_origin,
    read_by_proxy,
)

if TYPE_CHECKING:
    from privsdk.outbound.judge import Guard as CoreGuard


class Pass(Finishes, Protocol):
    """What the seam needs of :class:`privsdk.outbound.judge.Pass`: a meter, and ``finish``."""

    def meter(self, status: int, headers: Mapping[str, str]) -> Meter | None: ...


class Guard(Protocol):
    """What the seam needs of :class:`privsdk.outbound.judge.Guard` (any object that judges alike will do)."""

    def check(self, out: Outgoing) -> Pass: ...


def guards(service: str) -> bool:
    """Whether the clients of ``service`` (a service id as botocore hyphenizes it) are guarded: every Bedrock
    service's (``bedrock-runtime``, ``bedrock-agent-runtime``, ``bedrock``, and those whose requests privsdk cannot
    read and so refuses: ``bedrock-agent``, ``bedrock-agentcore``, ``bedrock-data-automation-runtime``, ...), and
    SageMaker's runtime's, which invokes models on endpoints. Other services (s3, dynamodb, sagemaker's control
    plane) carry no prompts to a model, and are left alone."""
    return service == "bedrock" or service.startswith("bedrock-") or service == "sagemaker-runtime"


SDK = "boto3"
_UNIQUE = "privsdk-guard"
_STATE = "privsdk.guard"  # key of an attempt's state in botocore's request context

Refusal = Callable[[PolicyViolation], BaseException]
#: Answers a request the guard rerouted (``ticket.decision.chosen``) instead of sending it: gets the request
#: as the guard read it and privsdk's :class:`~privsdk.outbound.judge.Pass`, returns a
#: ``botocore.awsrequest.AWSResponse`` in the service's own wire format. botocore takes a response returned by
#: a ``before-send`` handler as the service's answer and skips its HTTP send, so the app gets boto3's own
#: parsed types. Raises PolicyViolation to refuse. Only privsdk's own Guard reroutes: with any other object
#: that judges (a test's, a benchmark's), a rerouter is never called; nor with an aiobotocore client, which
#: awaits an answer of its own types (such a request is refused).
Rerouter = Callable[[Outgoing, Any], Any]


def service_id(client: Any) -> str:
    """The botocore service id of ``client``, as event names spell it (``bedrock-runtime``)."""
    return str(client.meta.service_model.service_id.hyphenize())


def is_guarded(client: Any) -> bool:
    return getattr(client.meta, "_privsdk_guarded", False) is True


def is_async(client: Any) -> bool:
    """Whether ``client`` is aiobotocore's (its calls are coroutines), told without importing aiobotocore."""
    return inspect.iscoroutinefunction(getattr(type(client), "_make_api_call", None))


def guard_botocore(
    client: Any, *, refusal: Refusal, guard: Guard | None = None, reroute: Rerouter | None = None
) -> Any:
    """Guard a botocore client of a Bedrock service or of SageMaker's runtime (:func:`guards`) in place; return it.

    ``refusal`` makes the exception raised for a refused request (the SDK's
    flavour of :class:`privsdk.PolicyViolation`). ``guard`` defaults to
    ``Guard.default()``: loaded here (a bad ``PRIVSDK_*`` value is a
    ConfigError as the client is built) and looked up at each request, so
    that the environment configures it. With ``reroute``, a request the tenant reroutes is answered
    by it (see :data:`Rerouter`); without, or for an aiobotocore client, such a
    request is refused. A client of any other service is a ValueError.

    On a client already guarded, a plain call (no ``guard``, a ``reroute``: the drop-in's, instrument()'s) leaves it
    as it is. A ``guard`` given, or no ``reroute``, replaces the guard and the rerouter it had, for that client alone:
    under ``privsdk.instrument()``, which guards every client as it is built with the process-wide guard and the
    drop-in's rerouter, privsdk.Client's Bedrock adapter guards the clients it builds with the Client's own guard
    and no rerouter (the Client reroutes by itself), and its requests are then judged by the Client's own policy.
    """
    service = service_id(client)
    if not guards(service):
        raise ValueError(f"privsdk guards the clients of Bedrock's services and SageMaker's runtime, not {service}")
    guarded = is_guarded(client)
    if guarded and guard is None and reroute is not None:
        return client
    if guard is None:  # loaded as the client is built: a bad PRIVSDK_* value is a ConfigError here, not a refusal later
        from privsdk.outbound.judge import Guard as CoreGuard

        CoreGuard.default()
    if guarded:
        # Its handlers are the bound methods of its hooks, which read these at each request.
        hooks = client._endpoint.http_session._privsdk_hooks
        hooks._guard = guard
        hooks._reroute = None if is_async(client) else reroute  # never rerouted: see Rerouter
        hooks.wait = _read_timeout(client)
        return client
    sdklogs.install()  # botocore logs request bodies at DEBUG: a guarded client's logs hold no content
    if is_async(client):
        hooks = _Hooks(refusal, guard, None, AsyncMeteredStream)  # never rerouted: see Rerouter
    else:
        hooks = _Hooks(refusal, guard, reroute, MeteredStream)
    hooks.wait = _read_timeout(client)
    events = client.meta.events
    # First in line, so that no other handler can send the request before it is judged.
    events.register_first(f"before-send.{service}", hooks.before_send, unique_id=f"{_UNIQUE}-send")
    events.register(f"before-parse.{service}", hooks.before_parse, unique_id=f"{_UNIQUE}-parse")
    events.register(f"response-received.{service}", hooks.response_received, unique_id=f"{_UNIQUE}-received")
    # Handlers registered after the guard's run after it, and may change the request it judged: the HTTP session
    # checks, as it sends, that the request is the one judged (a subclass of the client's own session, so that
    # every attribute and method stays the SDK's).
    session = client._endpoint.http_session
    session.__class__ = _checked_session(type(session), is_async(client))
    session._privsdk_hooks = hooks
    hooks.proxies = _read_by_proxies(session)
    client.meta._privsdk_guarded = True
    return client


def _checked_session(session_class: type, asynchronous: bool) -> type:
    """``session_class`` (botocore's URLLib3Session, aiobotocore's AIOHTTPSession, ...) with a ``send`` that
    passes each request to :meth:`_Hooks.check_sent` first; one per session class."""
    checked = _CHECKED.get(session_class)
    if checked is not None:
        return checked
    if asynchronous:

        class AsyncChecked(session_class):  # type: ignore[misc]
            async def send(self, request: Any) -> Any:
                self._privsdk_hooks.check_sent(request)
                return await super().send(request)

        checked = AsyncChecked
    else:

        class Checked(session_class):  # type: ignore[misc]
            def send(self, request: Any) -> Any:
                self._privsdk_hooks.check_sent(request)
                return super().send(request)

        checked = Checked
    checked.__name__, checked.__qualname__ = session_class.__name__, session_class.__qualname__
    checked.__module__ = session_class.__module__
    _CHECKED[session_class] = checked
    return checked


_CHECKED: dict[type, type] = {}


def _read_by_proxies(session: Any) -> dict[str, tuple[str, bool]]:
    """For each URL scheme whose requests ``session`` would hand a proxy in plain text: that proxy's origin (no user
    info), and whether it is for proxy_use_forwarding_for_https. Empty for a session without proxies.

    botocore's sessions (and aiobotocore's) pick a request's proxy by its URL's scheme alone
    (``_proxy_config.proxy_url_for``), from ``Config(proxies=...)`` or from HTTP_PROXY / HTTPS_PROXY as they stood
    when the client was made (NO_PROXY applied then): so this is told once, when the client is guarded. Through
    a proxy, an http request is forwarded whole, readable; an https one is tunnelled (CONNECT: end-to-end TLS),
    unless ``proxies_config={"proxy_use_forwarding_for_https": True}`` has urllib3 hand it to an https proxy to
    forward, in plain text past the TLS to the proxy. aiobotocore's sessions do not forward yet (they tunnel):
    the setting is refused for them too, failing closed should they come to honour it.
    """
    config = getattr(session, "_proxy_config", None)
    if config is None:
        return {}
    found: dict[str, tuple[str, bool]] = {}
    for scheme in ("http", "https"):
        proxy = config.proxy_url_for(f"{scheme}://host/")
        if not proxy:
            continue
        url = urlsplit(proxy)
        forwarding = url.scheme == "https" and bool(config.settings.get("proxy_use_forwarding_for_https"))
        if scheme == "http" or forwarding:
            try:
                port = url.port
            except ValueError:  # not a port: urllib3 refuses the proxy as it sends; the message names none
                port = None
            found[scheme] = (proxy_origin(url.scheme, url.hostname or "", port), forwarding)
    return found


def outgoing(request: Any) -> Outgoing:
    """An :class:`Outgoing` from botocore's ``AWSPreparedRequest``."""
    url: str = request.url
    scheme, _, rest = url.partition("://")
    netloc, slash, target = rest.partition("/")
    if "@" in netloc or "[" in netloc or "\\" in netloc or "#" in target:
        return _outgoing_slow(request)  # userinfo, IPv6 literals, backslashes, fragments: leave them to urllib
    path, _, query = (slash + target).partition("?")
    host, colon, port = netloc.rpartition(":")
    if not colon:
        host, port = netloc, ""
    return Outgoing(
        SDK,
        request.method,
        scheme.lower(),
        host.lower(),
        int(port) if port.isdigit() else None,
        path or "/",
        query,
        _headers(request.headers),
        _body(request.body),
    )


def _headers(headers: Any) -> dict[str, str]:
    """Header names lower-cased, values as text."""
    found: dict[str, str] = {}
    keys = getattr(headers, "_dict", None)
    if isinstance(keys, dict):
        # botocore's HeadersDict keeps each name lower-cased beside the original: 8x faster than items().
        try:
            for key, value in keys.items():
                found[key._lower] = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            return found
        except AttributeError:  # not botocore's keys after all
            found.clear()
    for name, value in headers.items():
        found[name.lower()] = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return found


def _outgoing_slow(request: Any) -> Outgoing:
    text: str = request.url
    scheme, sep, rest = text.partition("://")
    authority, backslash, after = rest.partition("\\")
    if backslash and "/" not in authority:
        # urllib3, which botocore sends with, ends a URL's authority at a backslash where urlsplit reads on to the
        # last "@": "https://a:1\\@aws-host/" connects to a, which is the host to judge (aiohttp refuses the URL).
        text = f"{scheme}{sep}{authority}/{backslash}{after}"
    url = urlsplit(text)
    return Outgoing(
        SDK,
        request.method,
        url.scheme,
        (url.hostname or "").lower(),
        url.port,
        url.path or "/",
        url.query,
        _headers(request.headers),
        _body(request.body),
    )


def _body(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    try:
        # A seekable stream (a file the app passed as an InvokeModel body): read it, then put it back.
        start = body.tell()
        data = body.read()
        body.seek(start)
    except Exception:  # no tell or seek, a pipe, a closed file: whatever it raises, the guard cannot read it
        from privsdk.outbound.wire.bedrock import UNREAD_BODY  # only this rare body needs the reader here

        # Not b"": judged as empty, what the stream holds would go unjudged. The reader refuses this marker.
        return UNREAD_BODY
    return data if isinstance(data, bytes) else str(data).encode()


class _Attempt:
    """One judged attempt: its request and the guard's pass, finished exactly once."""

    __slots__ = ("__weakref__", "done", "out", "passed", "streaming")

    def __init__(self, out: Outgoing, passed: Pass):
        self.out = out
        self.passed = passed
        self.done = False
        self.streaming = False  # handed to a MeteredStream, which finishes it

    def finish(self, status: int | None, tokens: tuple[int | None, int | None], exc: BaseException | None) -> None:
        if not self.done:
            self.done = True
            self.passed.finish(status, tokens, exc)

    def meter(self, status: int, headers: Mapping[str, str]) -> Meter | None:
        """The protocol's meter; ``headers`` are botocore's, which match names in any case."""
        return self.passed.meter(status, headers)

    def first_chunk(self) -> None:
        """The first chunk of a streamed answer is passing: privsdk's Pass notes the time to it (a judge of the
        app's or a test's may keep no time)."""
        noted = getattr(self.passed, "first_chunk", None)
        if noted is not None:
            noted()


def _refused_for_proxy(passed: Pass, out: Outgoing, proxy: str, forwarding: bool) -> PolicyViolation:
    """The refusal of an allowed request that ``proxy`` would read, recorded by privsdk's own Pass (a judge of the
    app's or a test's may not record)."""
    reason = read_by_proxy(out, proxy, forwarding)
    refuse = getattr(passed, "refuse", None)
    if refuse is not None:
        violation: PolicyViolation = refuse(reason)
        return violation
    from privsdk.decision import unjudged

    return PolicyViolation(unjudged(out.host, reason))


def _read_timeout(client: Any) -> float | None:
    """The read timeout of ``client``'s config, in seconds (botocore's default is 60); None for none."""
    from privsdk.outbound.reroute import wait_seconds  # here: importing the seam does not load the reroutes

    return wait_seconds(getattr(client.meta.config, "read_timeout", None))


def _reroutes(guard: object) -> TypeGuard[CoreGuard]:
    """Whether ``guard`` is privsdk's own Guard, which can decide to reroute (``check(out, reroutable=True)``)."""
    from privsdk.outbound.judge import Guard as CoreGuard

    return isinstance(guard, CoreGuard)


#: The attempt judged in ``before-send``, for ``before-parse`` of the same attempt: the thread's own (botocore),
#: the asyncio task's own (aiobotocore), never another request's.
_judged: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar("privsdk_botocore_attempt", default=None)
#: The request judged in ``before-send`` and its event name, for the HTTP session's check as it sends.
_sent_as: contextvars.ContextVar[tuple[Outgoing, str] | None] = contextvars.ContextVar(
    "privsdk_botocore_sent", default=None
)


class _Hooks:
    """The handlers one guarded client registers."""

    def __init__(self, refusal: Refusal, guard: Guard | None, reroute: Rerouter | None, metered: type[_Metered]):
        self._refusal = refusal
        self._guard = guard
        self._reroute = reroute
        self._metered = metered  # the client's kind of event-stream body
        #: The proxies that would read the client's requests, by URL scheme (see _read_by_proxies); set as the
        #: client is guarded, and empty for a client without proxies.
        self.proxies: dict[str, tuple[str, bool]] = {}
        #: How long the client waits for each read of an answer (its config's ``read_timeout``): a rerouted
        #: request's alternative is given no longer (``Pass.wait``, see privsdk.outbound.reroute.timeout).
        self.wait: float | None = None

    def _current_guard(self) -> Guard:
        if self._guard is not None:
            return self._guard
        from privsdk.outbound.judge import Guard as CoreGuard

        return CoreGuard.default()

    def check_sent(self, request: Any) -> None:
        """Called by the HTTP session as it sends ``request``, after every ``before-send`` handler: a request that
        is not the one the guard judged (a handler registered after the guard's changed its URL, headers or body)
        is judged again as it is sent, and refused or recorded on that judgement."""
        judged = _sent_as.get()
        _sent_as.set(None)
        out = outgoing(request)
        if judged is not None and judged[0] == out:
            return
        # The attempt judged before is not what is sent: it is not recorded; the judgement of what is sent is.
        _judged.set(None)
        if isinstance(getattr(request, "context", None), dict):
            request.context.pop(_STATE, None)
        self.before_send(request, judged[1] if judged is not None else "", reroutable=False)

    def before_send(self, request: Any, event_name: str = "", reroutable: bool = True, **kwargs: Any) -> Any:
        out = outgoing(request)
        refused: PolicyViolation | None = None
        answer: Any = None
        try:
            guard = self._current_guard()
            if self._reroute is None or not reroutable or not _reroutes(guard):
                passed = guard.check(out)
            else:
                ticket = guard.check(out, reroutable=True)
                passed = ticket
                if ticket.decision.outcome == "reroute":
                    # Never sent as built: the rerouter answers from the alternative, whose attempts the
                    # privsdk.Client serving it records. An answer of None would let botocore send: an error.
                    _judged.set(None)
                    ticket.wait = self.wait
                    from privsdk.outbound.judge import rerouting  # only a reroute needs it (and the core Guard)

                    token = rerouting.set(ticket.decision)  # the Client records its call as this reroute
                    try:
                        answer = self._reroute(out, ticket)
                    except Exception as exc:
                        from privsdk.outbound import reroute

                        raise reroute.failed(ticket, exc) from None
                    finally:
                        rerouting.reset(token)
                    if answer is None:
                        raise TypeError("privsdk: a botocore rerouter must return an AWSResponse or raise")
            # Through a proxy that would read it (see _read_by_proxies); a rerouted request is not sent at all.
            if self.proxies and answer is None and out.scheme in self.proxies:
                raise _refused_for_proxy(passed, out, *self.proxies[out.scheme])
        except PolicyViolation as violation:
            refused = violation
        if refused is not None:
            # Raised outside the except block: the SDK's exception chains to nothing.
            error = self._refusal(refused)
            operation = event_name.rsplit(".", 1)[-1]
            if operation and hasattr(error, "operation_name"):
                error.operation_name = operation
            raise error
        if answer is not None:
            return answer  # botocore parses it as the service's answer and sends nothing
        _sent_as.set((out, event_name))
        if getattr(passed, "record", True) is False:
            # A privsdk.Client attempt (the Client records it) or PRIVSDK_USAGE=none: nothing to meter or record.
            _judged.set(None)
            return None
        attempt = _Attempt(out, passed)
        context = request.context if isinstance(getattr(request, "context", None), dict) else None
        if context is not None:
            context[_STATE] = attempt
        _judged.set(attempt)
        return None

    def before_parse(self, operation_model: Any, response_dict: dict[str, Any], **kwargs: Any) -> None:
        attempt = _judged.get()
        _judged.set(None)
        if attempt is None or not operation_model.has_event_stream_output:
            return
        body = response_dict.get("body")
        status = int(response_dict.get("status_code") or 0)
        if isinstance(body, bytes | bytearray) or not self._metered.reads(body):
            return  # an error answer, read whole: response-received records it
        meter = attempt.meter(status, response_dict.get("headers") or {})
        response_dict["body"] = self._metered(body, attempt, status, meter)
        attempt.streaming = True

    def response_received(
        self,
        response_dict: Mapping[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        exception: BaseException | None = None,
        **kwargs: Any,
    ) -> None:
        _judged.set(None)
        attempt = context.pop(_STATE, None) if context is not None else None
        if not isinstance(attempt, _Attempt) or attempt.done or attempt.streaming:
            return
        if exception is not None or response_dict is None:
            attempt.finish(None, (None, None), exception)
            return
        status = int(response_dict.get("status_code") or 0)
        meter = attempt.meter(status, response_dict.get("headers") or {})
        tokens: tuple[int | None, int | None] = (None, None)
        if meter is not None:
            body = response_dict.get("body")
            if isinstance(body, bytes | bytearray):
                meter.feed(bytes(body))
            tokens = meter.tokens()
        attempt.finish(status, tokens, None)


class _Metered:
    """An event-stream body counting tokens as the SDK reads it, finishing its attempt once: at its end, on
    ``close()``, or when dropped. Every other attribute is the raw body's own."""

    def __init__(self, raw: Any, attempt: _Attempt, status: int, meter: Any):
        self._raw = raw
        self._attempt = attempt
        self._status = status
        self._meter = meter
        # Dropped without being read to its end or closed: recorded when collected.
        self._finalizer = weakref.finalize(self, finish_early, attempt, meter, status)
        # Not at exit, when the recorder may have closed: it ends the record of a body still open before it
        # closes (_abandoned), when privsdk's guard passed the request.
        self._finalizer.atexit = False
        hold = getattr(attempt.passed, "hold", None)
        if hold is not None:
            hold(self)

    @staticmethod
    def reads(body: Any) -> bool:
        """Whether ``body`` is the raw event-stream body this class meters."""
        raise NotImplementedError

    def _feed(self, chunk: bytes) -> None:
        meter = self._meter
        if meter is not None:
            meter.feed(chunk)
            if meter.failed is not None:
                # An exception frame, the stream's last: botocore raises it to the app and never reads (or closes)
                # the body again, which would be recorded as cancelled only once collected.
                self._end(None)

    def _abandoned(self) -> None:
        # As when dropped (cancelled unless its token counts came), but not by calling the finalizer: once the
        # interpreter's exit has begun, weakref.finalize runs none.
        if self._finalizer.detach() is not None:
            finish_early(self._attempt, self._meter, self._status)

    def _end(self, exc: BaseException | None) -> None:
        self._finalizer.detach()
        finish_answer(self._attempt, self._meter, self._status, exc)

    def close(self) -> None:
        try:
            self._raw.close()
        finally:  # closed before its end: whole if its token counts came, else the app gave up on it (cancelled)
            self._abandoned()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class MeteredStream(_Metered):
    """botocore's raw event-stream body (a urllib3 response): botocore's ``EventStream`` reads ``stream()`` and
    calls ``close()``."""

    @staticmethod
    def reads(body: Any) -> bool:
        return hasattr(body, "stream")

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        try:
            chunks = iter(self._raw.stream(*args, **kwargs))
            for chunk in chunks:  # the first chunk, timed; the loop below passes the rest
                self._attempt.first_chunk()
                self._feed(chunk)
                yield chunk
                break
            for chunk in chunks:
                self._feed(chunk)
                yield chunk
        except Exception as exc:
            self._end(exc)
            raise
        self._end(None)


class AsyncMeteredStream(_Metered):
    """aiobotocore's raw event-stream body (an aiohttp response): its ``AioEventStream`` reads
    ``content.iter_chunks()`` and calls ``close()``."""

    @staticmethod
    def reads(body: Any) -> bool:
        return hasattr(type(body), "content")  # on the class: an unread httpx response's raises on the instance

    @property
    def content(self) -> _MeteredContent:
        return _MeteredContent(self)

    async def iter_chunks(self) -> AsyncIterator[tuple[bytes, bool]]:
        try:
            chunks = aiter(self._raw.content.iter_chunks())
            async for chunk, end in chunks:  # the first chunk, timed; the loop below passes the rest
                self._attempt.first_chunk()
                self._feed(chunk)
                yield chunk, end
                break
            async for chunk, end in chunks:
                self._feed(chunk)
                yield chunk, end
        except Exception as exc:
            self._end(exc)
            raise
        self._end(None)


class _MeteredContent:
    """The ``content`` of an :class:`AsyncMeteredStream`: aiohttp's stream reader, whose chunks are counted."""

    def __init__(self, stream: AsyncMeteredStream):
        self.iter_chunks = stream.iter_chunks
        self._raw = stream._raw

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw.content, name)
