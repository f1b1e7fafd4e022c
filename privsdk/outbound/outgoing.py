"""What the guard reads: one HTTP request exactly as an SDK is about to send it.

The guard never trusts what the app declared about a call. A transport seam
(an httpx transport, a botocore event handler) turns the request the SDK built
into an :class:`Outgoing`; a wire reader for the request's protocol (one
module per protocol in :mod:`privsdk.outbound.wire`) says what it :class:`Asks`
for; the guard decides on that. Nothing here imports a vendor SDK.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol
from urllib.parse import parse_qsl

_NO_HEADERS: Mapping[str, str] = {}


class Outgoing(NamedTuple):
    """One request as it will leave the process.

    ``sdk`` names the seam that saw it (``openai``, ``cohere``, ``mistralai``,
    ``genai``, ``boto3``). ``host`` is lower-case without the port; ``path``
    is as sent (percent-encoded); header names are lower-case; ``body`` is
    the whole body (``b""`` when there is none).
    """

    sdk: str
    method: str
    scheme: str
    host: str
    port: int | None
    path: str
    query: str = ""
    headers: Mapping[str, str] = _NO_HEADERS
    body: bytes = b""

    @property
    def origin(self) -> str:
        """``scheme://host[:port]``, with the port only when it is not the scheme's default."""
        default = {"https": 443, "http": 80}.get(self.scheme)
        port = f":{self.port}" if self.port is not None and self.port != default else ""
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address, as a URL writes it
        return f"{self.scheme}://{host}{port}"

    def json(self) -> Any:
        """The body as JSON, or None when it is empty or not JSON (multipart uploads, say)."""
        if not self.body:
            return None
        try:
            return parse_json(self.body)
        except ValueError:
            return None


# The request path builds an Outgoing positionally and keys caches on its first six fields (transport.outgoing,
# Guard.judge): this order is part of its contract.
assert Outgoing._fields == ("sdk", "method", "scheme", "host", "port", "path", "query", "headers", "body")

_JSON_SPACE = " \t\n\r"
_scan: Any = None


class DuplicateKey(ValueError):
    """A JSON object of a request body names one key twice."""


def _one_of_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """One JSON object of a request body; :class:`DuplicateKey` when it names a key twice. Python's json keeps the
    last value, a server may keep the first or refuse the body: ``{"tools": [web search], "tools": []}`` would be
    judged as no tools and sent as it is. The stricter reading refuses it."""
    found = dict(pairs)
    if len(found) != len(pairs):
        raise DuplicateKey("a key twice in one object")
    return found


def _scanner() -> Any:
    """The json module's C scanner, imported at the first body to parse: json costs ~2 ms to import and only some
    readers need it. It builds each object with :func:`_one_of_each` (0.7 µs more on a small chat request)."""
    global _scan
    import json

    _scan = json.JSONDecoder(object_pairs_hook=_one_of_each).scan_once  # type: ignore[attr-defined]  # untyped
    return _scan


def parse_json(data: bytes) -> Any:
    """``data`` (UTF-8 JSON, as every SDK sends it) parsed; ValueError when it is not one JSON value
    (:class:`DuplicateKey` when an object in it names a key twice).

    The json module's C scanner called directly: ``json.loads`` of bytes first guesses their encoding in
    Python, which is half the cost of parsing a small chat request (2.5 µs against 1 µs here).
    """
    scan = _scan or _scanner()
    text = data.decode("utf-8")  # UnicodeDecodeError is a ValueError
    try:
        try:
            value, end = scan(text, 0)
        except StopIteration:  # not JSON, or JSON after whitespace (which the scanner does not skip)
            start = len(text) - len(text.lstrip(_JSON_SPACE))
            try:
                value, end = scan(text, start)
            except StopIteration:
                raise ValueError("not JSON") from None
    except RecursionError:  # nested deeper than the interpreter's stack allows: unreadable, like any other body
        raise ValueError("nested too deeply") from None
    if end != len(text) and text[end:].strip(_JSON_SPACE):
        raise ValueError("more than one JSON value")
    return value


#: Query parameters (compared in lower case) that hold an API key or token as they are: Google's ``key`` and
#: ``access_token``, Azure API Management's ``subscription-key`` (its query-string alternative to the header), and
#: the spellings gateways take an API key in.
KEY_PARAMETERS = frozenset(
    {"key", "api-key", "api_key", "apikey", "subscription-key", "subscription_key", "access_token", "token"}
)
#: The query parameters an SDK sends beside a body the guard reads, compared in lower case: Azure's API version,
#: Google's answer format (``alt=sse`` for a stream), and a gateway's key. Any other (an app's ``extra_query``,
#: cohere's ``additional_query_parameters``) is none the guard reads, which a server may act on as on the body field
#: of that name.
_BODY_QUERY = KEY_PARAMETERS | {"api-version", "alt", "$alt"}


@functools.lru_cache(maxsize=256)  # an app sends the same query (Azure's API version) again and again
def query_names_in(query: str, names: frozenset[str]) -> bool:
    """Whether every parameter of ``query`` is one of ``names`` (compared in lower case)."""
    return all(name.lower() in names for name, _ in parse_qsl(query, keep_blank_values=True))


def json_object(request: Outgoing, protocol: str, family: str, *, empty: bool = False) -> dict[str, Any]:
    """The request's body as a JSON object; raises :class:`Unreadable` when it is not one, or when the request
    carries query parameters that no SDK sends beside it (which would go out unread).

    The message names the body by ``protocol`` and ``family`` (``OpenAI``, ``chat/completions``), never by
    anything in it. With ``empty``, an empty body carries nothing and reads as an empty object.
    """
    if request.query and not query_names_in(request.query, _BODY_QUERY):
        raise Unreadable(
            f"a {protocol} {family} request carries query parameters its SDK does not send beside a body, which "
            "privsdk does not read (leave them out)"
        )
    data = request.body
    if not data and empty:
        return {}
    # parse_json's usual case inline (one value, no whitespace around it, ASCII as SDKs send it): each Python call
    # on the guard's path costs 0.5-1 µs, run cold between two SDK calls. Anything else takes parse_json.
    try:
        body, end = (_scan or _scanner())(data.decode("utf-8"), 0)
        if end != len(data):
            raise ValueError
    except (ValueError, StopIteration, RecursionError):
        try:
            body = parse_json(data)
        except DuplicateKey:
            raise Unreadable(
                f"the body of a {protocol} {family} request names a field twice in one object, which servers read "
                "differently: privsdk cannot tell which one the vendor acts on (send each field once)"
            ) from None
        except ValueError:
            body = None
    if not isinstance(body, dict):
        raise Unreadable(f"the body of a {protocol} {family} request is not a JSON object")
    return body


def flag(body: Mapping[str, Any], name: str) -> bool:
    """A true-or-false field (``store``, ``background``): absent or null reads as false; a value of another type
    (``"true"``, ``1``), which a server may read as true, is refused."""
    value = body.get(name)
    if value is None or type(value) is bool:
        return value is True
    raise Unreadable(f"{name} is neither true nor false")


def proxy_origin(scheme: str, host: str, port: int | None) -> str:
    """A proxy as a refusal names it: ``scheme://host[:port]``, never its user info (a proxy's password)."""
    host = host.rpartition("@")[2]  # parsers keep user info apart; this holds whatever a URL was built from
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{scheme}://{host}" if port is None else f"{scheme}://{host}:{port}"


def read_by_proxy(out: Outgoing, proxy: str, forwarding: bool = False) -> str:
    """Why ``out`` is refused when it would go through ``proxy`` (its origin) in a form the proxy can read: plain
    http (forwarded whole, or relayed as raw bytes by a SOCKS proxy), or https that ``forwarding``
    (botocore's ``proxy_use_forwarding_for_https``) hands the proxy to forward. The policy judged the URL's host;
    the prompt would reach the proxy, which nothing judged."""
    fix = f"exclude {out.host} from the proxy (NO_PROXY, or the client's own proxy settings)"
    if forwarding:
        return (
            f"{out.origin} would be sent through the proxy {proxy} with proxy_use_forwarding_for_https, which hands "
            "the proxy the request in plain text: turn proxy_use_forwarding_for_https off (the request is then "
            f"tunnelled through the proxy, encrypted end to end), or {fix}"
        )
    return (
        f"{out.origin} would be sent through the proxy {proxy}, which reads plain-text requests: send to an https "
        f"endpoint (tunnelled through the proxy), or {fix}"
    )


def shown_segment(segment: str) -> str:
    """A path segment as a refusal may show it: an API's own words (``chat``, ``fine_tuning``, ``embed-jobs``,
    ``generateContent``) are letters, and its versions ``v1``, ``v1beta1``; anything else (digits, dots, other
    signs) may be an id or a token a gateway carries in its path, and is not shown."""
    plain = segment.replace("_", "").replace("-", "")
    version = segment[:1] == "v" and segment[1:2].isdigit() and segment.isalnum() and len(segment) <= 10  # v1beta1
    return segment if version or (plain.isascii() and plain.isalpha() and len(segment) <= 40) else "<segment>"


def unknown_field(body: Mapping[str, Any], known: frozenset[str], what: str) -> None:
    """:class:`Unreadable` when ``body`` has a field outside ``known``, the fields a reader reads or knows to carry
    nothing the vendor keeps, logs or runs: a field not read may do any of those, so it is refused (fail closed).
    The refusal names the field (or ``<segment>``, see :func:`shown_segment`), never its value."""
    if not known.issuperset(body):  # one pass in C, as most bodies have only known fields
        name = shown_segment(min(body.keys() - known))
        raise Unreadable(
            f"a field privsdk does not read in {what}: {name} (privsdk sends no field it cannot judge: leave it out, "
            "or upgrade privsdk if a newer release reads it)"
        )


def known_fields(value: Any, known: frozenset[str], what: str) -> dict[str, Any]:
    """``value``, an object of ``known`` fields (:func:`unknown_field`); :class:`Unreadable` for anything else."""
    if not isinstance(value, dict):
        raise Unreadable(f"{what} is not an object")
    unknown_field(value, known, what)
    return value


#: What a model name a refusal may quote looks like: a vendor's ids (``gpt-4o-mini``, ``eu.anthropic.claude-3-7-
#: sonnet-20250219-v1:0``, ``ft:gpt-4o-mini:acme::abc``), no spaces, at most 128 signs.
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}")


def shown_model(model: str) -> str:
    """A model the request names, as a refusal may quote it: ``<model>`` for anything that does not look like a
    model id (an app may put any text there, a prompt pasted in the wrong place)."""
    return repr(model) if _MODEL_NAME.fullmatch(model) else "<model>"


#: What a media type an error may quote looks like (RFC 6838's type/subtype, ``image/png``): at most 128 signs.
MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,62}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,62}")


def shown_name(name: str, what: str, shape: re.Pattern[str] = _MODEL_NAME, *, quoted: bool = True) -> str:
    """A name the app passed where privsdk wants ``what`` (``target name``, ``tenant name``, ``media type``), as an
    error may show it: itself (``quoted`` with repr) when it has ``shape`` (by default a model id's, which also
    fits a configured target's name and ``vendor/model``) and at most 128 signs; else a fixed placeholder saying
    what it was. An app may put any text in a name, a prompt pasted in the wrong place, and a name that matched
    nothing is what an error quotes: the placeholder keeps the text out of it, its args and its record. An empty
    name holds none, and is shown: ``''`` says what is wrong with it."""
    if not name or (len(name) <= 128 and shape.fullmatch(name)):
        return repr(name) if quoted else name
    return f"(not shown: not a {what})"


def model_label(model: str) -> str:
    """A model the request names, as the name of the target the guard builds for it (``openai/gpt-4o``) holds it:
    ``<model>`` for anything that does not look like a model id, as :func:`shown_model`. The name reaches every
    refusal, decision and record made for the request."""
    return model if _MODEL_NAME.fullmatch(model) else "<model>"


def body_model(body: Mapping[str, Any], protocol: str) -> str | None:
    """The model a JSON body names, None when it names none; :class:`Unreadable` when ``model`` is there but not
    a name (judged as no model, the request would escape the facts of the model it is for)."""
    model = body.get("model")
    if isinstance(model, str):
        return model or None
    if model is None:
        return None
    raise Unreadable(f"the model this {protocol} request names is not a string")


_name_and_value = operator.itemgetter(1, 2)


def content_type(headers: Mapping[str, str]) -> str:
    """A response's content type, ``""`` when it names none.

    httpx's ``Headers`` keep (name, lower-case name, value) bytes, and its own lookup decodes every header each
    time in Python: a dict of the raw pairs, built in C, answers in a tenth of that.
    """
    pairs = getattr(headers, "_list", None)
    if pairs is None:
        return headers.get("content-type", "")
    value = dict(map(_name_and_value, pairs)).get(b"content-type")
    return value.decode("latin-1") if value is not None else ""


class Asks(NamedTuple):
    """What one request asks for, read from its path, query and body by a wire reader.

    ``operation`` is a :class:`privsdk.vocabulary.Operation` value; ``model``
    is the model as the request names it (body ``model``, Bedrock ``modelId``
    from the path, Vertex model from the path), None when it names none
    (model listing, file uploads). ``features`` are names from
    :data:`privsdk.vocabulary.FEATURES`. ``deployment`` is an Azure
    deployment from the path; ``project`` and ``location`` are the GCP
    project and location from a Vertex path; ``publisher`` the Vertex
    publisher (``google``, ``anthropic``, ...).
    """

    operation: str
    model: str | None = None
    features: frozenset[str] = frozenset()
    deployment: str | None = None
    project: str | None = None
    location: str | None = None
    publisher: str | None = None


# Readers build a generation's Asks positionally (OpenAIReader.read): this order is part of its contract.
assert Asks._fields == ("operation", "model", "features", "deployment", "project", "location", "publisher")


class EndpointAsks(Asks):
    """What a request to a customer's own endpoint asks for (a Vertex AI endpoint, ``endpoints/{id}:method``; a
    SageMaker endpoint, ``/endpoints/{name}/invocations``): the endpoint's name in ``deployment``, no ``model``.

    An endpoint runs whatever its owner deployed (a tuned model, a Model Garden or JumpStart open model, any
    container), and its name is chosen by its owner: ``gemini-support-llama-vllm`` may serve Llama from vLLM. So,
    unlike an Azure deployment's name, it names no model family: the judge reads ``deployment_names_model`` and
    judges the request only through a configured target that names the endpoint (``deployment = NAME``), never by
    the catalogue's model names. It equals an :class:`Asks` of the same fields.
    """

    __slots__ = ()
    deployment_names_model = False


class Unreadable(Exception):
    """A wire reader cannot tell what a request asks for: the guard refuses it.

    The message names the path shape or field that was not understood, never
    a value taken from the body.
    """


class UnknownRoute(Unreadable):
    """The request's path is no route of the protocol (as against a route whose body cannot be read): behind a
    declared endpoint with a path, what follows that path may be one (see ``wire.routes.AfterDeclaredPrefix``)."""


class Meter(Protocol):
    """Counts tokens in a response as its bytes pass, keeping no content.

    ``feed`` gets each chunk of the response body in order; ``tokens`` gives
    (input, output) once the body has ended, None where the vendor did not say;
    ``failed`` then gives the usage-record error class of an error the vendor
    ended a started answer with (an error event after its 200), None without one.
    """

    def feed(self, chunk: bytes) -> None: ...

    def tokens(self) -> tuple[int | None, int | None]: ...

    @property
    def failed(self) -> str | None: ...


class WireReader(Protocol):
    """One wire protocol: what a request asks for, and how to count its answer's tokens."""

    def read(self, request: Outgoing) -> Asks:
        """What ``request`` asks for; raises :class:`Unreadable` when it cannot tell."""
        ...

    def meter(self, request: Outgoing, asks: Asks, status: int, headers: Mapping[str, str]) -> Meter | None:
        """A meter for the response to ``request`` (None when its tokens cannot be counted)."""
        ...


class Finishes(Protocol):
    """What records an allowed request's outcome (the guard's Pass, botocore's attempt): once, when it ends."""

    def finish(self, status: int | None, tokens: tuple[int | None, int | None], exc: BaseException | None) -> None: ...


class InBandError(Exception):
    """An error the vendor reported inside an answer it had begun with a success status (an error event), by its
    usage-record error class, ``kind``: what its request is recorded with."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


def answer_end(
    meter: Meter | None, early: bool, exc: BaseException | None = None
) -> tuple[tuple[int | None, int | None], BaseException | None]:
    """What an answer's meter tells its record once the answer has ended (``exc`` None), failed (``exc``) or, with
    ``early``, was let go of before its last byte: its token counts, and what ended it.

    An error event the vendor ended the answer with makes it an error of that event's class (an
    :class:`InBandError`), however the body ended after it: the SDK raises, or stops reading, at such an event.

    An answer let go of early was whole when its meter says it ended: SDKs stop reading once a stream's closing
    event has come (mistralai and openai at ``data: [DONE]``, before the chunked body's end). A meter that knows
    where its protocol's answers end says so in ``ended`` (OpenAI's: the counts or ``data: [DONE]``; Google's: a
    candidate's ``finishReason``, since Gemini sends counts on every chunk); for a meter without ``ended`` the
    answer's counts, which its protocol sends last, say it. Otherwise the reader gave up on the answer, and it
    ends as cancelled (a GeneratorExit).
    """
    if meter is None:
        return (None, None), (GeneratorExit() if early else exc)
    if early:
        ended = getattr(meter, "ended", None)
        if not (ended if ended is not None else meter.tokens() != (None, None)):
            exc = GeneratorExit()
    tokens = meter.tokens()  # first: an event meter reads a last event without its blank line here
    failed = meter.failed
    return tokens, (InBandError(failed) if failed is not None else exc)


def finish_answer(ticket: Finishes, meter: Meter | None, status: int, exc: BaseException | None = None) -> None:
    """Record a request whose answer's body has ended (``exc`` None) or failed (``exc``), with its meter's counts
    (:func:`answer_end`)."""
    tokens, exc = answer_end(meter, False, exc)
    ticket.finish(status, tokens, exc)


def finish_early(ticket: Finishes, meter: Meter | None, status: int) -> None:
    """Record a request whose answer the reader let go of before its last byte (closed early, or dropped): whole
    or cancelled, as its meter tells (:func:`answer_end`)."""
    tokens, exc = answer_end(meter, True)
    ticket.finish(status, tokens, exc)
