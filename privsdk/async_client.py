"""The asyncio twin of :class:`privsdk.client.Client`: the same policy, adapters, retries and records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

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
from privsdk.streams import AsyncChatStream
from privsdk.types import (
    ChatResponse,
    EmbedResponse,
    InputType,
    RerankResponse,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack


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

    @overload
    async def chat(  # a flag known only at run time (a wrapper that forwards it)
        self,
        model: str,
        messages: str | Sequence[MessageLike],
        *,
        stream: bool,
        **options: Unpack[ChatOptions],
    ) -> ChatResponse | AsyncChatStream: ...

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
        answer: ChatResponse = await self._run(call, "achat", request, options.get("timeout"))
        return answer

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
        answer: EmbedResponse = await self._run(
            self._core.plan(model, "embed", options), "aembed", request, options.get("timeout")
        )
        return answer

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
        answer: RerankResponse = await self._run(call, "arerank", request, options.get("timeout"))
        return answer

    async def _run(self, call: _Call, send: str, request: Any, timeout: float | None) -> Any:
        """See :meth:`privsdk.client.Client._run`; ``send`` names the adapter's coroutine method."""
        result, _, decision = await self._core.athrough_chain(call, request, self._core.aattempt, send, timeout)
        return decided(result, decision)

    async def aclose(self) -> None:
        """Close every adapter and flush usage records."""
        await self._core.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
