"""The adapters: one per kind of endpoint, all on the openai SDK's clients.

Every client is built with ``max_retries=0`` (privsdk owns retries) and gets
the call's ``timeout`` on every request, which httpx applies to the connect and
to each read, so a stalled stream is bounded too.

Requests go through the SDK client's public ``post`` (the one openai documents
for endpoints it has no method for), with the body as plain JSON and the answer
taken untyped (``cast_to=object``: the JSON, one dict per stream event). The
``create`` methods would run every body through the SDK's typed transform and
build typed models of every answer and chunk, which privsdk reads once and
drops: about 500 µs of a 820 µs chat call on the machine of
docs/performance.md. Everything else is the SDK's own: base URL and Azure's
deployment paths, credentials, headers, timeouts, streaming, and its errors.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

import openai

from privsdk.adapter import Adapter, AdapterOptions, credential_missing
from privsdk.errors import ConfigError, PolicyViolation
from privsdk.policy import Target
from privsdk.types import ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, StreamEnd, StreamEvent
from privsdk_openai import convert, dropin
from privsdk_openai.config import Kind, where
from privsdk_openai.errors import translate

_STREAM_USAGE = {"stream": True, "stream_options": {"include_usage": True}}
#: The credentials openai's own create methods send: the API key, never an admin key the client also holds.
_API_KEY: Any = {"bearer_auth": True}
#: What a self-hosted server gets as its key when none is configured: such servers ignore it.
UNUSED_KEY = "unused"
#: The headers that carry a key or name an account. The SDK adds every line of ``OPENAI_CUSTOM_HEADERS`` (the
#: environment's, in any spelling) to the client's default headers; an explicit default header of the same name, in
#: any spelling, wins over it (the SDK merges headers case-insensitively), and ``openai.Omit()`` removes it.
ACCOUNT_HEADERS = ("Authorization", "api-key", "OpenAI-Organization", "OpenAI-Project")
_CUSTOM_HEADERS = "OPENAI_CUSTOM_HEADERS"
#: A header name that may carry a credential: a key, token, secret, signature or subscription, or an account.
_CREDENTIAL = re.compile(r"auth|key|token|secret|signature|subscription|credential|organi[sz]ation|project", re.I)


_SDKClient = TypeVar("_SDKClient", openai.OpenAI, openai.AsyncOpenAI)
_HTTP = TypeVar("_HTTP", openai.DefaultHttpxClient, openai.DefaultAsyncHttpxClient)


def _unchanged(violation: PolicyViolation) -> BaseException:
    return violation


class _Reader(Protocol):
    def feed(self, event: Any, /) -> Sequence[StreamEvent]: ...
    def end(self) -> StreamEnd: ...


class ChatCompletions(Adapter):
    """Chat Completions and embeddings through ``openai.OpenAI`` / ``AsyncOpenAI``.

    Subclasses say how the client is built (``_client_args``) and which
    request fields their endpoint names differently.
    """

    vendor: ClassVar[str] = "openai"
    operations = frozenset({"chat", "stream", "embed"})
    _sync_client: ClassVar[type[openai.OpenAI]] = openai.OpenAI
    _async_client: ClassVar[type[openai.AsyncOpenAI]] = openai.AsyncOpenAI
    #: OpenAI deprecated ``max_tokens`` for ``max_completion_tokens``; compatible servers know the old name.
    _max_tokens_field: ClassVar[str] = "max_completion_tokens"
    #: base64 vectors are a third of the bytes of floats (the SDK's own create asks for them); compatible servers
    #: may know floats only.
    _encoding_format: ClassVar[str] = "base64"
    _stream_args: ClassVar[Mapping[str, Any]] = _STREAM_USAGE
    #: Where chat goes, from the client's base URL (Azure's client puts the deployment in front, as for create).
    _path: ClassVar[str] = "/chat/completions"

    def __init__(self, target: Target, options: AdapterOptions):
        super().__init__(target, options)
        self._who = f"{target.name} ({target.offering})"
        self._translate = translate(self.vendor)
        self._model = self._model_for(target)
        self._args: dict[str, Any] = {"max_retries": 0, "timeout": options.timeout, **self._client_args()}
        if self._own_key() and _CUSTOM_HEADERS in os.environ:  # read by the SDK as it builds the client, as here
            # Only then: explicit default headers cost every request the SDK's merge of them.
            self._args["default_headers"] = _account_headers(self._sent_account(self._args))
        try:
            self._client = self._guarded(
                self._named(self._sync_client(**self._args, http_client=self._http(openai.DefaultHttpxClient)))
            )
        except (openai.OpenAIError, ValueError) as exc:  # the SDK's own checks of credentials, endpoint, version
            from privsdk.vendor_errors import raise_translated

            # Never chained (unless PRIVSDK_DEBUG_CHAIN=1): its text can quote the key or endpoint it was given.
            raise_translated(_not_built(target, exc, self._args), exc)
        self._aclient: openai.AsyncOpenAI | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None

    def _http(self, factory: Callable[[], _HTTP]) -> _HTTP:
        """An httpx client with openai's defaults, guarded by the Client's guard before the SDK client exists.

        Guarded first, so that this guard judges the adapter's requests even when ``privsdk.instrument()`` is
        in effect (it guards every new SDK client with the process-wide guard, and guarding is done once).
        The guard is the Client's (``options.guard``; None is :meth:`Guard.default`). A refusal is the guard's
        own :class:`~privsdk.errors.PolicyViolation`: the SDK raises it as it is (it is no transport error) and
        the except clauses below let it pass. The Client does its own rerouting.
        """
        from privsdk.outbound.transport import guard_httpx

        return guard_httpx(factory(), sdk=dropin.SDK, refusal=_unchanged, guard=self.options.guard)

    def _guarded(self, client: _SDKClient) -> _SDKClient:
        """``client``, marked as guarded (its httpx client already is: :meth:`_http`)."""
        return dropin.install(client, self.options.guard, _unchanged, reroutes=False)

    def _named(self, client: _SDKClient) -> _SDKClient:
        """``client`` naming no organization or project but those its arguments give, when privsdk gave it its key.

        The SDK reads ``OPENAI_ORG_ID`` and ``OPENAI_PROJECT_ID`` for those it is not given: they name the
        deployment's account, and sent with a tenant's own key they would name another account than the key's.
        (The explicit default headers, :func:`_account_headers`, already keep them off the request; the client's
        public ``organization`` and ``project`` attributes are cleared too, so that nothing reads them later.)
        """
        if self._own_key():
            client.organization = self._args.get("organization")
            client.project = self._args.get("project")
        return client

    def _own_key(self) -> bool:
        """Whether the SDK client's key comes from privsdk's credentials rather than the SDK's own variables.

        Credentials given always hold the key (:meth:`_client_args` refuses them otherwise): they are an account of
        their own, which never borrows the environment's.
        """
        return bool(self.options.credentials)

    def _sent_account(self, args: Mapping[str, Any]) -> dict[str, str]:
        """The account headers a request sends when privsdk gave the client its credentials: the key, and the
        organization and project that the credentials and the target give. Any other is omitted."""
        sent = {"Authorization": f"Bearer {args['api_key']}"}
        if args.get("organization"):
            sent["OpenAI-Organization"] = args["organization"]
        if args.get("project"):
            sent["OpenAI-Project"] = args["project"]
        return sent

    def _model_for(self, target: Target) -> str:
        return target.model

    def _client_args(self) -> dict[str, Any]:
        target, credentials = self.target, self.options.credentials
        if credentials and not credentials.get("api_key"):
            # Without it the SDK would read OPENAI_API_KEY: the environment's account, named with these credentials'
            # organization or project.
            raise credential_missing(target, "openai", "api_key", "OPENAI_API_KEY")
        # The account the key belongs to; the target's project, when it names one, is the one requests go to.
        args: dict[str, Any] = {k: credentials[k] for k in ("api_key", "organization", "project") if k in credentials}
        if target.endpoint:
            args["base_url"] = target.endpoint
        if target.region:
            args["data_residency"] = target.region
        if target.project:
            args["project"] = target.project
        return args

    def _async(self) -> openai.AsyncOpenAI:
        """The async client for the running event loop: an httpx pool cannot move between loops."""
        loop = asyncio.get_running_loop()
        client = self._aclient
        if client is None or self._aloop is not loop:
            http = self._http(openai.DefaultAsyncHttpxClient)
            client = self._aclient = self._guarded(self._named(self._async_client(**self._args, http_client=http)))
            self._aloop = loop
        return client

    # The hooks the Responses API adapter replaces.

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        params = convert.chat_params(request, max_tokens_field=self._max_tokens_field, who=self._who)
        params["model"] = self._model
        return params

    def _answer(self, raw: Any) -> ChatResponse:
        return convert.chat_response(raw, self.vendor, self._model)

    def _reader(self) -> _Reader:
        return convert.ChunkReader(self.vendor, self._model)

    def _options(self, extra: Mapping[str, Any], timeout: float) -> Any:
        """The SDK's request options: the request's ``extra`` fields, merged into the body as create's
        ``extra_body`` is, and the attempt's timeout when it is not the SDK client's own (the deadline is near):
        a per-request timeout costs the SDK an options check on every call, one through typing's isinstance."""
        options: dict[str, Any] = {"security": _API_KEY}
        if extra:
            options["extra_json"] = dict(extra)
        if timeout != self.options.timeout:
            options["timeout"] = timeout
        return options

    # The operations.

    def chat(self, request: ChatRequest, *, timeout: float) -> ChatResponse:
        body, options = self._params(request), self._options(request.extra, timeout)
        with self._translate:
            answer = self._client.post(self._path, body=body, options=options, cast_to=object)
        return self._answer(answer)

    async def achat(self, request: ChatRequest, *, timeout: float) -> ChatResponse:
        body, options = self._params(request), self._options(request.extra, timeout)
        with self._translate:
            answer = await self._async().post(self._path, body=body, options=options, cast_to=object)
        return self._answer(answer)

    def stream(self, request: ChatRequest, *, timeout: float) -> Iterator[StreamEvent]:
        body, options = self._params(request), self._options(request.extra, timeout)
        body.update(self._stream_args)
        with self._translate:
            sdk_stream = self._client.post(
                self._path, body=body, options=options, cast_to=object, stream=True, stream_cls=openai.Stream[object]
            )
        return self._events(sdk_stream, self._reader())

    def _events(self, sdk_stream: openai.Stream[Any], reader: _Reader) -> Iterator[StreamEvent]:
        with self._translate, sdk_stream:
            for item in sdk_stream:
                yield from reader.feed(item)
        yield reader.end()

    async def astream(self, request: ChatRequest, *, timeout: float) -> AsyncIterator[StreamEvent]:
        body, options = self._params(request), self._options(request.extra, timeout)
        body.update(self._stream_args)
        reader = self._reader()
        with self._translate:
            sdk_stream = await self._async().post(
                self._path,
                body=body,
                options=options,
                cast_to=object,
                stream=True,
                stream_cls=openai.AsyncStream[object],
            )
            async with sdk_stream:
                async for item in sdk_stream:
                    for event in reader.feed(item):
                        yield event
        yield reader.end()

    def _embed_body(self, request: EmbedRequest) -> dict[str, Any]:
        body = convert.embed_params(request, encoding_format=self._encoding_format, who=self._who)
        body["model"] = self._model
        return body

    def embed(self, request: EmbedRequest, *, timeout: float) -> EmbedResponse:
        body, options = self._embed_body(request), self._options(request.extra, timeout)
        with self._translate:
            answer = self._client.post("/embeddings", body=body, options=options, cast_to=object)
        return convert.embed_response(answer, self.vendor, self._model, len(request.texts))

    async def aembed(self, request: EmbedRequest, *, timeout: float) -> EmbedResponse:
        body, options = self._embed_body(request), self._options(request.extra, timeout)
        with self._translate:
            answer = await self._async().post("/embeddings", body=body, options=options, cast_to=object)
        return convert.embed_response(answer, self.vendor, self._model, len(request.texts))

    def close(self) -> None:
        self._client.close()

    async def aclose(self) -> None:
        client, self._aclient = self._aclient, None
        if client is not None and self._aloop is asyncio.get_running_loop():
            await client.close()  # a client of a finished loop has nothing left to close that it could reach
        self.close()


class Responses(ChatCompletions):
    """OpenAI's Responses API (``/v1/responses``) for chat and stream; embeddings as before."""

    _stream_args: ClassVar[Mapping[str, Any]] = {"stream": True}
    _path: ClassVar[str] = "/responses"

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        params = convert.responses_params(request, who=self._who)
        params["model"] = self._model
        return params

    def _answer(self, raw: Any) -> ChatResponse:
        return convert.responses_response(raw, self.vendor, self._model)

    def _reader(self) -> _Reader:
        return convert.ResponsesEventReader(self.vendor, self._model)


def _not_built(target: Target, exc: Exception, args: Mapping[str, Any]) -> ConfigError:
    """The ConfigError for an SDK client the openai SDK refused to build, never chained to the SDK's exception.

    The SDK's own words say what is missing or wrong ("Missing credentials ... set the OPENAI_API_KEY
    environment variable", "Must provide either the `api_version` argument ...", "Invalid `data_residency`; expected
    one of ...") and are kept when they quote nothing the client was given: no six characters in a row of a key,
    token or endpoint (a URL parser's "Invalid port: 'S3cret'" quotes a piece of a password). Otherwise the error
    is named by its type only.
    """
    text = str(exc)
    if text.isprintable() and len(text) <= 300 and not _quotes(text, args.values()):
        return ConfigError(text, where=where(target))
    return ConfigError(
        f"the openai SDK could not build its client for {target.offering} ({type(exc).__name__}; its message is "
        "not shown: it quotes a setting)",
        where=where(target),
        hint="check the target's endpoint (an http(s) URL with a host; percent-encode a password's '/', '?', '#' "
        "and '@'), api_version and credentials",
    )


def _quotes(text: str, values: Iterable[object]) -> bool:
    """Whether ``text`` holds a piece of one of ``values`` (six characters in a row, or a short value whole)."""
    for value in values:
        if not isinstance(value, str):
            continue
        if len(value) < 6:
            if len(value) >= 4 and value in text:
                return True
            continue
        if any(value[i : i + 6] in text for i in range(len(value) - 5)):
            return True
    return False


def _account_headers(sent: Mapping[str, str]) -> dict[str, Any]:
    """The SDK client's ``default_headers``: ``sent``, and as ``openai.Omit()`` the :data:`ACCOUNT_HEADERS` it
    lacks and every line of ``OPENAI_CUSTOM_HEADERS`` whose name may carry a credential (a gateway's
    ``Ocp-Apim-Subscription-Key``, say).

    So no key, organization or project of the environment's reaches a request whose credentials privsdk gave: the
    SDK puts these after the environment's lines and merges case-insensitively, the later winning, and removes a
    header whose value is ``Omit()``. Other lines (``X-Team``) stay.
    """
    lines = os.environ.get(_CUSTOM_HEADERS, "").split("\n")
    named = {line.partition(":")[0].strip() for line in lines if ":" in line}
    headers: dict[str, Any] = {name.lower(): (name, openai.Omit()) for name in named if _CREDENTIAL.search(name)}
    for name in ACCOUNT_HEADERS:
        headers[name.lower()] = (name, sent.get(name, openai.Omit()))
    return dict(headers.values())


def _azure_secret(target: Target, credentials: Mapping[str, str]) -> tuple[str, str]:
    """``("azure_ad_token", token)`` with option ``auth = "entra"``, else ``("api_key", key)``.

    Read here rather than left to the SDK, which would take a token from the
    environment when a key was asked for, or the other way round. The environment
    is read only when no credentials were given.
    """
    name, env = ("api_key", "AZURE_OPENAI_API_KEY")
    if target.option("auth") == "entra":
        name, env = ("azure_ad_token", "AZURE_OPENAI_AD_TOKEN")
    if credentials:
        value = credentials.get(name)
        if not value:
            raise credential_missing(target, "azure", name, env)
        return name, value
    value = os.environ.get(env)
    if not value:
        raise ConfigError(f"no {name} for {target.offering}", where=where(target), hint=f"set {env}")
    return name, value


class AzureOpenAI(ChatCompletions):
    """Azure OpenAI deployments: ``/openai/deployments/{deployment}/...?api-version=``, ``api-key`` or Entra ID."""

    vendor: ClassVar[str] = "azure"
    _sync_client: ClassVar[type[openai.OpenAI]] = openai.AzureOpenAI
    _async_client: ClassVar[type[openai.AsyncOpenAI]] = openai.AsyncAzureOpenAI

    def _model_for(self, target: Target) -> str:
        # The deployment is in the URL; the body's model names it too, as the SDK sends it.
        return target.deployment or target.model

    def _named(self, client: _SDKClient) -> _SDKClient:
        # Azure names no OpenAI organization or project: none the SDK read from OPENAI_ORG_ID or OPENAI_PROJECT_ID
        # (an app's OpenAI account) goes to it, whoever gave the key.
        client.organization = client.project = None
        return client

    def _sent_account(self, args: Mapping[str, Any]) -> dict[str, str]:
        # Azure names no OpenAI organization or project; a key goes as api-key, an Entra token as Authorization.
        if "azure_ad_token" in args:
            return {"Authorization": f"Bearer {args['azure_ad_token']}"}
        return {"api-key": args["api_key"]}

    def _client_args(self) -> dict[str, Any]:
        target = self.target
        name, secret = _azure_secret(target, self.options.credentials)
        args: dict[str, Any] = {"azure_deployment": self._model, name: secret}
        if target.endpoint:
            args["azure_endpoint"] = target.endpoint
        if target.api_version:
            args["api_version"] = target.api_version
        return args


class Compatible(ChatCompletions):
    """An OpenAI-compatible server at ``target.endpoint``, with the key passed explicitly.

    The key is passed explicitly, so ``OPENAI_API_KEY`` never reaches it; where
    ``OPENAI_CUSTOM_HEADERS`` is set, the key is set as the ``Authorization``
    header as well and the other :data:`ACCOUNT_HEADERS` are omitted, so that
    no account line of it reaches a server that is not OpenAI's, with or
    without credentials given.
    """

    vendor: ClassVar[str] = "selfhosted"
    _max_tokens_field: ClassVar[str] = "max_tokens"
    _encoding_format: ClassVar[str] = "float"

    def _key(self) -> str:
        return self.options.credentials.get("api_key") or UNUSED_KEY

    def _own_key(self) -> bool:
        return True  # its key is never the SDK's: no OpenAI organization or project reaches another server

    def _sent_account(self, args: Mapping[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {args['api_key']}"}

    def _client_args(self) -> dict[str, Any]:
        return {"base_url": self.target.endpoint, "api_key": self._key()}


class Foundry(Compatible):
    """Azure AI Foundry models on the resource's OpenAI-compatible ``/openai/v1`` endpoint (key or Entra token)."""

    vendor: ClassVar[str] = "azure"

    def _key(self) -> str:
        return _azure_secret(self.target, self.options.credentials)[1]


ADAPTERS: Mapping[Kind, type[ChatCompletions]] = {
    "openai": ChatCompletions,
    "openai_responses": Responses,
    "azure": AzureOpenAI,
    "foundry": Foundry,
    "selfhosted": Compatible,
}
