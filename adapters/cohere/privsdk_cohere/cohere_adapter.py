"""The Adapter over a Cohere v2 client (``ClientV2`` or one of its cloud subclasses)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from cohere.client_v2 import AsyncClientV2, ClientV2

from privsdk.adapter import Adapter, AdapterOptions
from privsdk.errors import ConnectionLost
from privsdk.policy import Target
from privsdk.types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    RerankRequest,
    RerankResponse,
    StreamEvent,
)
from privsdk_cohere.convert import (
    StreamState,
    chat_body,
    chat_response,
    embed_body,
    embed_response,
    request_options,
    rerank_body,
    rerank_response,
)
from privsdk_cohere.errors import VENDOR, translated


class CohereAdapter(Adapter):
    """One target on a Cohere v2 client.

    ``model`` is what the SDK is told (a model name, an Azure deployment, a SageMaker endpoint).
    ``new_async_client`` builds the async twin on first async use; the SDK's Bedrock, SageMaker
    and OCI clients have none, so without it the async methods run the sync ones in a thread.
    """

    vendor = VENDOR

    def __init__(
        self,
        target: Target,
        options: AdapterOptions,
        *,
        client: ClientV2,
        model: str,
        operations: frozenset[str],
        new_async_client: Callable[[], AsyncClientV2] | None = None,
    ):
        super().__init__(target, options)
        self.operations = operations
        self.model = model
        self._client = client
        self._new_async_client = new_async_client
        self._async_client: AsyncClientV2 | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None

    def _check(self, operation: str) -> None:
        if operation not in self.operations:
            raise self.unsupported(operation)

    def _async(self) -> AsyncClientV2 | None:
        """The async client for the running event loop: its httpx pool cannot move between loops, so
        ``asyncio.run`` twice on one AsyncClient gets a new one for the second loop."""
        if self._new_async_client is None:
            return None
        loop = asyncio.get_running_loop()
        if self._async_client is None or self._aloop is not loop:
            self._async_client, self._aloop = self._new_async_client(), loop
        return self._async_client

    def chat(self, request: ChatRequest, *, timeout: float) -> ChatResponse:
        self._check("chat")
        body = chat_body(request)
        with translated:
            raw = self._client.chat(model=self.model, request_options=request_options(timeout, request.extra), **body)
        return chat_response(raw, self.model)

    async def achat(self, request: ChatRequest, *, timeout: float) -> ChatResponse:
        self._check("chat")
        client = self._async()
        if client is None:
            return await asyncio.to_thread(self.chat, request, timeout=timeout)
        body = chat_body(request)
        with translated:
            raw = await client.chat(model=self.model, request_options=request_options(timeout, request.extra), **body)
        return chat_response(raw, self.model)

    def stream(self, request: ChatRequest, *, timeout: float) -> Iterator[StreamEvent]:
        self._check("stream")  # here, not in the generator: unsupported fails before anything is iterated
        body = chat_body(request)
        events = self._client.chat_stream(
            model=self.model, request_options=request_options(timeout, request.extra), **body
        )
        return self._events(events)

    def _events(self, events: Iterator[Any]) -> Iterator[StreamEvent]:
        state = StreamState(self.model)
        try:
            with translated:
                for event in events:
                    out = state.feed(event)
                    if out is None:
                        continue
                    if state.ended:
                        # Read the end of the HTTP response too: a response closed unread costs its connection.
                        with contextlib.suppress(Exception):  # the answer is complete whatever happens now
                            for _ in events:
                                pass
                    yield out
                    if state.ended:
                        return
        finally:
            close = getattr(events, "close", None)  # releases the HTTP response when the reader stops early
            if close is not None:
                close()
        raise ConnectionLost(VENDOR)  # the stream ended without message-end

    def astream(self, request: ChatRequest, *, timeout: float) -> AsyncIterator[StreamEvent]:
        self._check("stream")
        body = chat_body(request)
        client = self._async()
        if client is None:
            return _in_thread(self.stream(request, timeout=timeout))
        options = request_options(timeout, request.extra)
        return self._aevents(client.chat_stream(model=self.model, request_options=options, **body))

    async def _aevents(self, events: AsyncIterator[Any]) -> AsyncIterator[StreamEvent]:
        state = StreamState(self.model)
        try:
            with translated:
                async for event in events:
                    out = state.feed(event)
                    if out is None:
                        continue
                    if state.ended:
                        with contextlib.suppress(Exception):
                            async for _ in events:
                                pass
                    yield out
                    if state.ended:
                        return
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
        raise ConnectionLost(VENDOR)

    def embed(self, request: EmbedRequest, *, timeout: float) -> EmbedResponse:
        self._check("embed")
        body = embed_body(request)
        with translated:
            raw = self._client.embed(model=self.model, request_options=request_options(timeout, request.extra), **body)
        return embed_response(raw, request, self.model)

    async def aembed(self, request: EmbedRequest, *, timeout: float) -> EmbedResponse:
        self._check("embed")
        client = self._async()
        if client is None:
            return await asyncio.to_thread(self.embed, request, timeout=timeout)
        body = embed_body(request)
        with translated:
            raw = await client.embed(model=self.model, request_options=request_options(timeout, request.extra), **body)
        return embed_response(raw, request, self.model)

    def rerank(self, request: RerankRequest, *, timeout: float) -> RerankResponse:
        self._check("rerank")
        body = rerank_body(request)
        with translated:
            raw = self._client.rerank(model=self.model, request_options=request_options(timeout, request.extra), **body)
        return rerank_response(raw, self.model)

    async def arerank(self, request: RerankRequest, *, timeout: float) -> RerankResponse:
        self._check("rerank")
        client = self._async()
        if client is None:
            return await asyncio.to_thread(self.rerank, request, timeout=timeout)
        body = rerank_body(request)
        with translated:
            raw = await client.rerank(model=self.model, request_options=request_options(timeout, request.extra), **body)
        return rerank_response(raw, self.model)

    def close(self) -> None:
        with self._client:  # leaving the SDK client's context closes its HTTP connections
            pass

    async def aclose(self) -> None:
        if self._async_client is not None and self._aloop is asyncio.get_running_loop():
            async with self._async_client:
                pass
        self.close()


async def _in_thread(events: Iterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
    """A sync stream read from a worker thread, one event per hop, for clients with no async twin (OCI)."""
    done = object()
    try:
        while True:
            event = await asyncio.to_thread(next, events, done)
            if event is done:
                return
            yield event  # type: ignore[misc]
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
