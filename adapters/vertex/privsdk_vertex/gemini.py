"""The adapters: Gemini on Vertex AI and on the Gemini Developer API, each through one google-genai client."""

from __future__ import annotations

import math
import os
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator, Mapping
from typing import Any, ClassVar

from google import genai
from google.genai import types as gt

from privsdk.adapter import Adapter, AdapterOptions
from privsdk.errors import ConfigError
from privsdk.outbound.transport import cut_answers
from privsdk.policy import Target
from privsdk.types import ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, StreamEvent, Usage
from privsdk_vertex import convert
from privsdk_vertex.dropin import guard_client
from privsdk_vertex.errors import translate

#: privsdk owns retries: one attempt per call (google-genai 3.x retries 5 times when retry_options is set without
#: attempts, and its aiohttp transport retries connection errors unless retry_options is set at all).
_NO_RETRIES = gt.HttpRetryOptions(attempts=1)


def _ms(seconds: float) -> int:
    """HttpOptions.timeout is in whole milliseconds, and 0 would mean no timeout at all."""
    return max(1, math.ceil(seconds * 1000))


class GeminiAdapter(Adapter):
    """What both offerings share: ``generate_content``, its stream, and ``embed_content``."""

    operations = frozenset({"chat", "stream", "embed"})
    #: The SDK's environment variable that would move every request to another host, unseen by the policy.
    base_url_env: ClassVar[str]

    def __init__(self, target: Target, options: AdapterOptions, client: genai.Client):
        super().__init__(target, options)
        # The client's requests pass the same guard as every other SDK client's (privsdk.Client's own guard);
        # the Client reroutes its calls itself.
        guard_client(client, guard=options.guard, reroutes=False)
        # A sync attempt's answer is cut at its bound (privsdk.resilience.Cutoff): guard_client leaves that to the
        # guard, but a client instrument() guarded first is only pointed at the Client's guard.
        cut_answers(client._api_client._httpx_client)
        # Held for the adapter's life: google-genai closes a client's HTTP connections when the client object is
        # garbage-collected, even while its ``models`` are still in use.
        self._client = client
        self._models = client.models
        self._amodels = client.aio.models
        self._translate = translate(self.vendor)
        self._signatures = convert.Signatures()
        self._default_ms = _ms(options.timeout)

    @classmethod
    def http_options(cls, target: Target, options: AdapterOptions) -> gt.HttpOptions:
        """The client's options: the endpoint the policy saw, the default timeout, no retries."""
        if os.environ.get(cls.base_url_env) and not target.endpoint:
            raise ConfigError(
                f"{cls.base_url_env} would send target {target.name!r} to a host its policy cannot see",
                where=cls.base_url_env,
                hint=f"set the endpoint in the target (targets.{target.name}.endpoint), or unset {cls.base_url_env}",
            )
        return gt.HttpOptions(
            base_url=target.endpoint,
            api_version=target.api_version,
            timeout=_ms(options.timeout),
            retry_options=_NO_RETRIES,
        )

    def _per_call(self, timeout: float, extra: Mapping[str, Any]) -> gt.HttpOptionsDict | None:
        """The call's own options, where they differ from the client's: its timeout, and ``extra`` body fields."""
        ms = _ms(timeout)
        if extra:
            return {"timeout": ms, "extra_body": dict(extra)}
        return None if ms == self._default_ms else {"timeout": ms}

    def _generate(
        self, request: ChatRequest, timeout: float
    ) -> tuple[list[gt.ContentDict], gt.GenerateContentConfigDict]:
        turns, system = convert.contents(request.messages, self._signatures)
        return turns, convert.generate_config(request, system, self._per_call(timeout, request.extra))

    # -- chat -------------------------------------------------------------------------------------

    def chat(self, request: ChatRequest, *, timeout: float) -> ChatResponse:
        turns, config = self._generate(request, timeout)
        with self._translate:
            answer = self._models.generate_content(model=self.target.model, contents=turns, config=config)
        return convert.chat_response(self.vendor, answer, self.target.model, self._signatures)

    async def achat(self, request: ChatRequest, *, timeout: float) -> ChatResponse:
        turns, config = self._generate(request, timeout)
        with self._translate:
            answer = await self._amodels.generate_content(model=self.target.model, contents=turns, config=config)
        return convert.chat_response(self.vendor, answer, self.target.model, self._signatures)

    # -- stream -----------------------------------------------------------------------------------

    def stream(self, request: ChatRequest, *, timeout: float) -> Iterator[StreamEvent]:
        turns, config = self._generate(request, timeout)  # a request it cannot map fails here, not at first read
        return self._events(turns, config)

    def _events(self, turns: list[gt.ContentDict], config: gt.GenerateContentConfigDict) -> Iterator[StreamEvent]:
        reader = convert.StreamReader(self.vendor, self.target.model, self._signatures)
        with self._translate:
            chunks = self._models.generate_content_stream(model=self.target.model, contents=turns, config=config)
            try:
                for chunk in chunks:
                    yield from reader.feed(chunk)
            finally:
                if isinstance(chunks, Generator):  # a consumer that stops early releases the connection now
                    chunks.close()
        yield reader.end()

    def astream(self, request: ChatRequest, *, timeout: float) -> AsyncIterator[StreamEvent]:
        turns, config = self._generate(request, timeout)
        return self._aevents(turns, config)

    async def _aevents(
        self, turns: list[gt.ContentDict], config: gt.GenerateContentConfigDict
    ) -> AsyncIterator[StreamEvent]:
        reader = convert.StreamReader(self.vendor, self.target.model, self._signatures)
        with self._translate:
            chunks = await self._amodels.generate_content_stream(model=self.target.model, contents=turns, config=config)
            try:
                async for chunk in chunks:
                    for event in reader.feed(chunk):
                        yield event
            finally:
                if isinstance(chunks, AsyncGenerator):
                    await chunks.aclose()
        yield reader.end()

    # -- embed ------------------------------------------------------------------------------------

    def embed(self, request: EmbedRequest, *, timeout: float) -> EmbedResponse:
        if not request.texts:
            return EmbedResponse([], Usage(), self.target.model)
        texts, config = convert.embed_arguments(request, self._per_call(timeout, request.extra))
        with self._translate:
            answer = self._models.embed_content(model=self.target.model, contents=texts, config=config)
        return convert.embed_response(self.vendor, answer, len(texts), self.target.model)

    async def aembed(self, request: EmbedRequest, *, timeout: float) -> EmbedResponse:
        if not request.texts:
            return EmbedResponse([], Usage(), self.target.model)
        texts, config = convert.embed_arguments(request, self._per_call(timeout, request.extra))
        with self._translate:
            answer = await self._amodels.embed_content(model=self.target.model, contents=texts, config=config)
        return convert.embed_response(self.vendor, answer, len(texts), self.target.model)

    # -- close ------------------------------------------------------------------------------------

    def close(self) -> None:
        self._client.close()

    async def aclose(self) -> None:
        await self._client.aio.aclose()
        self._client.close()


class VertexGemini(GeminiAdapter):
    """``vertex.gemini``: google-genai picks the host from the location: ``{location}-aiplatform.googleapis.com``
    for a region, ``aiplatform.{eu,us}.rep.googleapis.com`` for a multi-region, ``aiplatform.googleapis.com``
    for ``global``.

    Credentials: ``access_token`` (an OAuth 2.0 access token), else Application
    Default Credentials, which google-genai looks up at the first call.
    """

    vendor = "vertex"
    base_url_env = "GOOGLE_VERTEX_BASE_URL"

    def __init__(self, target: Target, options: AdapterOptions, *, project: str, location: str):
        token = options.credentials.get("access_token")
        credentials = None
        if token:
            from google.oauth2.credentials import Credentials

            credentials = Credentials(token=token)  # type: ignore[no-untyped-call]
        client = genai.Client(
            vertexai=True,
            project=project,
            location=location,
            credentials=credentials,
            http_options=self.http_options(target, options),
        )
        super().__init__(target, options, client)
        self.project = project
        self.location = location


class GeminiApi(GeminiAdapter):
    """``gemini.api``: ``generativelanguage.googleapis.com`` with an API key (``api_key``, else the SDK's env)."""

    vendor = "gemini"
    base_url_env = "GOOGLE_GEMINI_BASE_URL"

    def __init__(self, target: Target, options: AdapterOptions):
        client = genai.Client(
            vertexai=False,
            api_key=options.credentials.get("api_key") or None,
            http_options=self.http_options(target, options),
        )
        super().__init__(target, options, client)
