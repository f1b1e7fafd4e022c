"""The adapters: a target bound to a mistralai client, ``Mistral`` (la Plateforme) or ``MistralAzure``.

Both clients come from the one ``mistralai`` distribution and share their request and answer shapes,
so one class holds chat and streaming for both; the la Plateforme adapter adds embeddings. The SDK is
imported in the constructors only, so importing this module stays cheap.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from privsdk.adapter import DEFAULT_OPTIONS, Adapter, AdapterOptions
from privsdk.errors import ConfigError, ConnectionLost
from privsdk.policy import Target
from privsdk.types import ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, StreamEnd, StreamEvent
from privsdk_mistral import convert
from privsdk_mistral.errors import vendor_errors

#: Where the mistralai SDK's example for Azure looks for the key (the SDK itself reads no variable for it).
AZURE_KEY_VARIABLE = "AZURE_API_KEY"


def _credential(target: Target, options: AdapterOptions, key: str) -> str | None:
    """``options.credentials[key]``; None when no credentials were given, so the default account's applies.

    Credentials that were given but lack the key are a tenant's own account without one: falling back to
    the process's variables would lend that tenant the deployment's account, so that is an error.
    """
    if not options.credentials:
        return None
    value = options.credentials.get(key)
    if not value:
        raise ConfigError(
            f"target {target.name}: the mistral credentials given have no {key!r}",
            hint=f"add {key} to the tenant's credentials.mistral",
        )
    return value


def _ms(seconds: float) -> int:
    """The SDK's timeout unit; it bounds connect, each read and each write of one request."""
    return max(1, round(seconds * 1000))


class MistralChatAdapter(Adapter):
    """Chat and streaming over a mistralai client; subclasses build the client."""

    vendor = "mistral"
    operations = frozenset({"chat", "stream"})

    #: The SDK client (``Mistral`` or ``MistralAzure``): typed loosely, the two share no base class.
    _sdk: Any
    #: The client's own HTTP error and no-response classes, for :func:`~privsdk_mistral.errors.vendor_errors`.
    _sdk_errors: tuple[type[Exception], type[Exception]]
    model: str

    #: Builds a new SDK client; one per event loop serves async calls, whose httpx pool cannot change loops.
    _make_sdk: Callable[[], Any]
    _asdk: Any = None
    _aloop: asyncio.AbstractEventLoop | None = None

    def _async_sdk(self) -> Any:
        """The SDK client for the running loop: the first loop shares the sync one's, a later loop gets its own
        (``asyncio.run`` twice on one AsyncClient would otherwise reach a closed loop)."""
        loop = asyncio.get_running_loop()
        if self._aloop is not loop:
            self._asdk = self._sdk if self._aloop is None else self._make_sdk()
            self._aloop = loop
        return self._asdk

    def _errors(self) -> AbstractContextManager[None]:
        return vendor_errors(self.vendor, *self._sdk_errors)

    def _chat_kwargs(self, request: ChatRequest, method: Any) -> dict[str, Any]:
        return convert.merge_extra(convert.chat_kwargs(request, self.model), request.extra, method)

    def chat(self, request: ChatRequest, *, timeout: float) -> ChatResponse:
        chat = self._sdk.chat
        kwargs = self._chat_kwargs(request, chat.complete)
        with self._errors():
            response = chat.complete(**kwargs, timeout_ms=_ms(timeout))
        return convert.chat_response(response)

    async def achat(self, request: ChatRequest, *, timeout: float) -> ChatResponse:
        chat = self._async_sdk().chat
        kwargs = self._chat_kwargs(request, chat.complete_async)
        with self._errors():
            response = await chat.complete_async(**kwargs, timeout_ms=_ms(timeout))
        return convert.chat_response(response)

    def stream(self, request: ChatRequest, *, timeout: float) -> Iterator[StreamEvent]:
        # The request is checked here, so that an Unsupported field raises at the call, not at the first event.
        return self._stream(self._chat_kwargs(request, self._sdk.chat.stream), _ms(timeout))

    def astream(self, request: ChatRequest, *, timeout: float) -> AsyncIterator[StreamEvent]:
        return self._astream(self._chat_kwargs(request, self._sdk.chat.stream_async), _ms(timeout))

    def _stream(self, kwargs: dict[str, Any], timeout_ms: int) -> Iterator[StreamEvent]:
        reader = convert.StreamReader(self.model)
        with self._errors(), self._sdk.chat.stream(**kwargs, timeout_ms=timeout_ms) as events:
            for event in events:
                yield from reader.read(event)
        yield self._end(reader)

    async def _astream(self, kwargs: dict[str, Any], timeout_ms: int) -> AsyncIterator[StreamEvent]:
        reader = convert.StreamReader(self.model)
        with self._errors():
            async with await self._async_sdk().chat.stream_async(**kwargs, timeout_ms=timeout_ms) as events:
                async for event in events:
                    for item in reader.read(event):
                        yield item
        yield self._end(reader)

    def _end(self, reader: convert.StreamReader) -> StreamEnd:
        end = reader.end()
        if end is None:
            # The stream ended cleanly but before a finish_reason: a proxy or the server dropped the rest.
            raise ConnectionLost(self.vendor)
        return end

    def close(self) -> None:
        self._sdk.__exit__(None, None, None)

    async def aclose(self) -> None:
        sdk = self._asdk if self._aloop is asyncio.get_running_loop() else None
        if sdk is not None:  # a client of a finished loop has nothing left it could reach to close
            await sdk.__aexit__(None, None, None)
        self.close()


class MistralAPIAdapter(MistralChatAdapter):
    """``mistral.api``: la Plateforme through ``mistralai.client.Mistral``."""

    operations = frozenset({"chat", "stream", "embed"})

    def __init__(self, target: Target, options: AdapterOptions = DEFAULT_OPTIONS):
        super().__init__(target, options)
        from mistralai.client import Mistral, errors
        from mistralai.client.sdkconfiguration import SERVER_EU, SERVER_US

        from privsdk_mistral.dropin import guard_client

        server = None
        if target.endpoint is None and target.region is not None:
            server = {"eu": SERVER_EU, "us": SERVER_US}.get(target.region)
            if server is None:
                raise ConfigError(
                    f"target {target.name}: la Plateforme has no region {target.region!r}",
                    hint='region = "eu" (api.eu.mistral.ai) or "us" (api.us.mistral.ai), or none for api.mistral.ai',
                )
        api_key = _credential(target, options, "api_key")

        def make() -> Any:
            sdk = Mistral(
                # None lets the SDK find MISTRAL_SA_TOKEN_PATH or MISTRAL_API_KEY itself, per request.
                api_key=api_key,
                server=server,
                server_url=target.endpoint,
                retry_config=None,  # explicit: no retries even if a later SDK turns them on by default
                timeout_ms=_ms(options.timeout),
            )
            # The SDK's opt-in telemetry (MISTRAL_SDK_TELEMETRY) would export spans holding the prompt and the
            # answer to Mistral's telemetry endpoint or the app's tracer, outside privsdk's policy: pin it off.
            # The SDK's tracing hook reads this attribute before the environment variable.
            sdk.sdk_configuration.__dict__["telemetry"] = False
            # Guarded as any mistralai client is: the request the SDK sends passes privsdk's guard.
            return guard_client(sdk, guard=options.guard, reroutes=False)

        self._make_sdk = make
        self._sdk = make()
        self._sdk_errors = (errors.MistralError, errors.NoResponseError)
        self.model = target.model

    def embed(self, request: EmbedRequest, *, timeout: float) -> EmbedResponse:
        embeddings = self._sdk.embeddings
        kwargs = convert.merge_extra(convert.embed_kwargs(request, self.model), request.extra, embeddings.create)
        with self._errors():
            response = embeddings.create(**kwargs, timeout_ms=_ms(timeout))
        return convert.embed_response(response)

    async def aembed(self, request: EmbedRequest, *, timeout: float) -> EmbedResponse:
        embeddings = self._async_sdk().embeddings
        kwargs = convert.merge_extra(convert.embed_kwargs(request, self.model), request.extra, embeddings.create_async)
        with self._errors():
            response = await embeddings.create_async(**kwargs, timeout_ms=_ms(timeout))
        return convert.embed_response(response)


class MistralAzureAdapter(MistralChatAdapter):
    """``mistral.azure``: a Mistral model on Azure AI Foundry through ``mistralai.azure.client.MistralAzure``.

    The client posts to ``{endpoint}/models/chat/completions?api-version=...`` with the key as a Bearer
    token and names the deployment in the body's ``model``. It has no embeddings.
    """

    def __init__(self, target: Target, options: AdapterOptions = DEFAULT_OPTIONS):
        super().__init__(target, options)
        if not target.endpoint:
            raise ConfigError(
                f"target {target.name}: mistral.azure needs the Azure AI Foundry endpoint",
                hint='endpoint = "https://<resource>.services.ai.azure.com"',
            )
        # Not "api_key": a tenant's mistral credentials serve every mistral.* target, and la Plateforme's key
        # must never be sent to an Azure endpoint.
        api_key = _credential(target, options, "azure_api_key") or os.environ.get(AZURE_KEY_VARIABLE)
        if not api_key:
            raise ConfigError(
                f"target {target.name}: mistral.azure needs the endpoint's key",
                hint=f"credentials azure_api_key, or {AZURE_KEY_VARIABLE} in the environment",
            )
        from mistralai.azure.client import MistralAzure, errors

        from privsdk_mistral.dropin import guard_client

        version: dict[str, Any] = {"api_version": target.api_version} if target.api_version else {}

        def make() -> Any:
            return guard_client(
                MistralAzure(
                    api_key=api_key,
                    server_url=target.endpoint,
                    retry_config=None,
                    timeout_ms=_ms(options.timeout),
                    **version,
                ),
                guard=options.guard,
                reroutes=False,
            )

        self._make_sdk = make
        self._sdk = make()
        self._sdk_errors = (errors.MistralAzureError, errors.NoResponseError)
        self.model = target.deployment or target.model
