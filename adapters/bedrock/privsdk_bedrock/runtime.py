"""The Bedrock adapter: boto3's ``bedrock-runtime`` client, sync, with async by worker threads.

boto3 has no async API. ``achat``/``aembed``/``arerank`` run the sync call in
``asyncio.to_thread``; cancelling the awaiting task abandons the thread's
result, the thread itself ends within the call's timeout. ``astream`` runs the
whole ConverseStream (request and reads) in one daemon thread per stream that
hands events to the event loop; closing or cancelling the async iterator
closes the HTTP stream, so the thread stops at its next read at the latest
(bounded by the timeout) and never holds up the loop's shutdown.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
import time
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any

from privsdk.adapter import Adapter, AdapterOptions
from privsdk.errors import Unavailable, VendorTimeout
from privsdk.policy import Target
from privsdk.types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    RerankRequest,
    RerankResponse,
    StreamEvent,
    Usage,
)
from privsdk_bedrock import convert
from privsdk_bedrock.clients import ClientPool
from privsdk_bedrock.errors import VENDOR, translated, unexpected_body


class _Open:
    """The event stream of one ConverseStream call, so that another thread can close it."""

    __slots__ = ("closed", "stream")

    def __init__(self) -> None:
        self.stream: Any = None
        self.closed = False

    def close(self) -> None:
        self.closed = True
        if self.stream is not None:
            self.stream.close()


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException):
        self.error = error


_DONE = object()


class BedrockAdapter(Adapter):
    """One ``bedrock.runtime`` target: a model id, an inference profile id or an ARN, in one AWS Region."""

    vendor = VENDOR

    def __init__(self, target: Target, options: AdapterOptions):
        super().__init__(target, options)
        self.family = convert.family(target.model)
        self.operations = convert.OPERATIONS[self.family]
        self._clients = ClientPool(target, options.credentials, options.guard)

    def _client(self, timeout: float) -> Any:
        if timeout <= 0:
            raise VendorTimeout(VENDOR)  # the call's budget is spent: nothing to send
        return self._clients.get(timeout)

    # -- chat ---------------------------------------------------------------------------------------------------

    def _converse(self, request: ChatRequest, operation: str) -> dict[str, Any]:
        if operation not in self.operations:
            raise self.unsupported(operation)
        return convert.converse_kwargs(self.target.model, request)

    def chat(self, request: ChatRequest, *, timeout: float) -> ChatResponse:
        kwargs = self._converse(request, "chat")
        client = self._client(timeout)
        with translated:
            response = client.converse(**kwargs)
        return convert.chat_response(response, self.target.model)

    async def achat(self, request: ChatRequest, *, timeout: float) -> ChatResponse:
        return await asyncio.to_thread(self.chat, request, timeout=timeout)

    def stream(self, request: ChatRequest, *, timeout: float) -> Iterator[StreamEvent]:
        return self._events(self._converse(request, "stream"), timeout, _Open())

    def _events(self, kwargs: dict[str, Any], timeout: float, handle: _Open) -> Generator[StreamEvent, None, None]:
        """The stream; the request goes out on the first ``next()``, the HTTP stream closes with the iterator."""
        client = self._client(timeout)
        if handle.closed:  # an async consumer gave up before the request went out
            return
        with translated:
            events = client.converse_stream(**kwargs)["stream"]
            handle.stream = events
            try:
                if handle.closed:
                    return
                yield from convert.stream_events(events, self.target.model)
            finally:
                events.close()

    def astream(self, request: ChatRequest, *, timeout: float) -> AsyncIterator[StreamEvent]:
        return self._aevents(self._converse(request, "stream"), timeout)

    async def _aevents(self, kwargs: dict[str, Any], timeout: float) -> AsyncIterator[StreamEvent]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        handle = _Open()

        def hand_over(item: object) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                handle.closed = True

        def pump() -> None:
            events = self._events(kwargs, timeout, handle)
            try:
                for item in events:
                    if handle.closed:
                        break
                    hand_over(item)
                else:
                    hand_over(_DONE)
            except BaseException as exc:
                if not handle.closed:
                    hand_over(_Failed(exc))
            finally:
                events.close()

        # The pump runs in this task's context: the guard sees the privsdk.Client attempt that opened the stream.
        context = contextvars.copy_context()
        threading.Thread(target=context.run, args=(pump,), name="privsdk-bedrock-stream", daemon=True).start()
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    return
                if isinstance(item, _Failed):
                    raise item.error
                yield item
        finally:
            handle.close()

    # -- embed and rerank ---------------------------------------------------------------------------------------

    def _invoke(self, client: Any, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """One InvokeModel call: the SDK's response with its body decoded, and that body."""
        with translated:
            response = client.invoke_model(
                modelId=self.target.model,
                body=json.dumps(body).encode(),
                contentType="application/json",
                accept="application/json",
            )
            text = response["body"].read()
        try:
            decoded = json.loads(text)
        except ValueError:
            raise Unavailable(VENDOR) from None  # a 200 whose body is not JSON: the vendor's side broke
        if not isinstance(decoded, dict):
            raise Unavailable(VENDOR)
        return {**response, "body": decoded}, decoded

    def embed(self, request: EmbedRequest, *, timeout: float) -> EmbedResponse:
        if "embed" not in self.operations:
            raise self.unsupported("embed")
        bodies = convert.embed_bodies(self.target.model, request)
        # Titan embeds one text per request: ``timeout`` bounds them all, each request gets what is left of it.
        deadline = time.monotonic() + timeout
        raw: list[dict[str, Any]] = []
        vectors: list[list[float]] = []
        counts: list[int | None] = []
        for body in bodies:
            response, decoded = self._invoke(self._client(deadline - time.monotonic()), body)
            raw.append(response)
            with unexpected_body:
                vectors.extend(convert.embed_vectors(decoded))
                counts.append(convert.input_tokens(decoded, response["ResponseMetadata"]["HTTPHeaders"]))
        tokens = None if None in counts else sum(c for c in counts if c is not None)
        return EmbedResponse(vectors, Usage(input_tokens=tokens), self.target.model, raw)

    async def aembed(self, request: EmbedRequest, *, timeout: float) -> EmbedResponse:
        return await asyncio.to_thread(self.embed, request, timeout=timeout)

    def rerank(self, request: RerankRequest, *, timeout: float) -> RerankResponse:
        if "rerank" not in self.operations:
            raise self.unsupported("rerank")
        body = convert.rerank_body(request)
        response, decoded = self._invoke(self._client(timeout), body)
        with unexpected_body:
            headers = response["ResponseMetadata"]["HTTPHeaders"]
            tokens, units = convert.input_tokens(decoded, headers), convert.search_units(decoded)
            ranked = convert.ranked(decoded)
        return RerankResponse(ranked, Usage(input_tokens=tokens, search_units=units), self.target.model, response)

    async def arerank(self, request: RerankRequest, *, timeout: float) -> RerankResponse:
        return await asyncio.to_thread(self.rerank, request, timeout=timeout)

    def close(self) -> None:
        self._clients.close()
