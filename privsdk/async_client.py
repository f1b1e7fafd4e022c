"""The asyncio twin of :class:`privsdk.client.Client`: the same policy, adapters, retries and records."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from privsdk.client import (
    CallOptions,
    ChatOptions,
    ClientBase,
    _Call,
    chat_request,
    decided,
    embed_request,
    rerank_request,
)
from privsdk.messages import MessageLike
from privsdk.policy import Target
from privsdk.resilience import acall
from privsdk.streams import AsyncChatStream
from privsdk.types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    InputType,
    RerankRequest,
    RerankResponse,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from privsdk.adapter import Adapter

R = TypeVar("R", ChatResponse, EmbedResponse, RerankResponse)


class AsyncClient(ClientBase):
    """Like :class:`~privsdk.client.Client`, with ``await``. Safe to share across asyncio tasks.

    ``await client.chat(..., stream=True)`` returns once the stream's first
    event has arrived (retries and fallback happen before that), as an
    :class:`~privsdk.streams.AsyncChatStream` to read with ``async for``.
    """

    @overload
    async def chat(
        self,
        model: str,
        messages: str | Sequence[MessageLike],
        *,
        stream: Literal[False] = False,
        **options: Unpack[ChatOptions],
    ) -> ChatResponse: ...

    @overload
    async def chat(
        self,
        model: str,
        messages: str | Sequence[MessageLike],
        *,
        stream: Literal[True],
        **options: Unpack[ChatOptions],
    ) -> AsyncChatStream: ...

    async def chat(
        self, model: str, messages: str | Sequence[MessageLike], *, stream: bool = False, **options: Unpack[ChatOptions]
    ) -> ChatResponse | AsyncChatStream:
        """See :meth:`privsdk.client.Client.chat`."""
        request = chat_request(messages, options)
        call = self._core.plan(model, "stream" if stream else "chat", options)
        if stream:
            events = AsyncChatStream(self._core, call)
            await events.open(request, options.get("timeout"))
            return events
        return await self._run(call, _send_chat, request, options.get("timeout"))

    async def embed(
        self,
        model: str,
        texts: str | Sequence[str],
        *,
        input_type: InputType | None = None,
        dimensions: int | None = None,
        **options: Unpack[CallOptions],
    ) -> EmbedResponse:
        """See :meth:`privsdk.client.Client.embed`."""
        request = embed_request(texts, input_type, dimensions, options)
        return await self._run(self._core.plan(model, "embed", options), _send_embed, request, options.get("timeout"))

    async def rerank(
        self,
        model: str,
        query: str,
        documents: Sequence[str],
        *,
        top_n: int | None = None,
        **options: Unpack[CallOptions],
    ) -> RerankResponse:
        """See :meth:`privsdk.client.Client.rerank`."""
        request = rerank_request(query, documents, top_n, options)
        call = self._core.plan(model, "rerank", options)
        return await self._run(call, _send_rerank, request, options.get("timeout"))

    async def _run(
        self, call: _Call, send: Callable[[Adapter, Any, float], Awaitable[R]], request: Any, timeout: float | None
    ) -> R:
        async def on(target: Target, adapter: Adapter, sent: Any) -> R:
            result: R = await acall(self._core.aattempt, call, target, adapter, send, sent, timeout, budget=call.budget)
            return result

        result, _, decision = await self._core.athrough_chain(call, request, on)
        return decided(result, decision)

    async def aclose(self) -> None:
        """Close every adapter and flush usage records."""
        await self._core.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _send_chat(adapter: Adapter, request: ChatRequest, timeout: float) -> ChatResponse:
    return await adapter.achat(request, timeout=timeout)


async def _send_embed(adapter: Adapter, request: EmbedRequest, timeout: float) -> EmbedResponse:
    return await adapter.aembed(request, timeout=timeout)


async def _send_rerank(adapter: Adapter, request: RerankRequest, timeout: float) -> RerankResponse:
    return await adapter.arerank(request, timeout=timeout)
