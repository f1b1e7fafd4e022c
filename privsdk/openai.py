"""A drop-in for the openai package's clients: change one import, keep the code.

``from privsdk.openai import OpenAI, AsyncOpenAI`` takes the openai classes'
constructor arguments and serves ``chat.completions.create`` (with
``stream=True``) and ``embeddings.create`` with their call shapes and
openai's own return and error types. Every call goes through a
:class:`privsdk.Client`: decided, retried, recorded. A call rerouted to
another vendor still returns openai's types. A refusal raises
:class:`privsdk.errors.PolicyViolation`. Needs the openai package
(``pip install 'privsdk[openai]'``).

Tenant and data class come from :func:`privsdk.scope`, or per call from the
``privsdk`` keyword: ``create(..., privsdk={"tenant": "acme", "data_class": "pii"})``.
"""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from privsdk.client import CallOptions, ChatOptions, Client
from privsdk.errors import (
    AuthFailed,
    BadRequest,
    ConnectionLost,
    ContentRefused,
    NotFound,
    RateLimited,
    VendorError,
    VendorTimeout,
)
from privsdk.resilience import Limits
from privsdk.types import ChatResponse, EmbedResponse, StreamEnd, TextDelta, ToolCallDelta
from privsdk.usage.record import new_request_id

if TYPE_CHECKING:
    from openai.types import CreateEmbeddingResponse
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    from privsdk.async_client import AsyncClient
    from privsdk.streams import AsyncChatStream, ChatStream

#: create() arguments privsdk maps itself; any other is passed to the named target as a vendor field.
_MAPPED = frozenset(
    {"messages", "model", "stream", "stream_options", "tools", "tool_choice", "temperature", "top_p", "max_tokens",
     "max_completion_tokens", "stop", "seed", "response_format", "n", "user", "store", "extra_body", "extra_headers",
     "extra_query", "timeout", "privsdk"}
)  # fmt: skip
_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "content_filter": "content_filter"}


def _client_kwargs(
    api_key: Any, base_url: Any, timeout: Any, max_retries: int, privsdk_options: Mapping[str, Any]
) -> dict[str, Any]:
    """privsdk Client arguments from the openai constructor's: key and URL serve ``openai/*`` targets only."""
    kwargs: dict[str, Any] = dict(privsdk_options)
    if isinstance(api_key, str):
        kwargs["credentials"] = {"openai": {"api_key": api_key}}
    if isinstance(base_url, str):
        kwargs["endpoints"] = {"openai": base_url}
    if isinstance(timeout, (int, float)):
        kwargs["timeout"] = float(timeout)
    kwargs.setdefault("limits", Limits(max_attempts=max_retries + 1))
    return kwargs


def _address(client: Client | AsyncClient, model: str) -> str:
    """A policy target name or ``vendor/model`` as it is; any other name is an OpenAI model, as in openai's SDK."""
    return model if model in client.policy.targets or "/" in model else f"openai/{model}"


def _chat_options(params: Mapping[str, Any]) -> tuple[ChatOptions, bool, bool]:
    """privsdk options from create()'s keywords, whether to stream, and whether to send a usage chunk."""
    if params.get("n", 1) != 1:
        raise ValueError("privsdk.openai: n must be 1")
    options: dict[str, Any] = dict(params.get("privsdk") or {})
    for key in ("tools", "tool_choice", "temperature", "top_p", "seed", "response_format", "timeout"):
        if params.get(key) is not None:
            options[key] = params[key]
    if isinstance(options.get("tool_choice"), Mapping):
        raise ValueError("privsdk.openai: tool_choice must be 'auto', 'none' or 'required'")
    max_tokens = params.get("max_completion_tokens") or params.get("max_tokens")
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    if params.get("stop") is not None:
        options["stop"] = params["stop"]
    if params.get("store"):
        options["features"] = (*options.get("features", ()), "stored_responses")
    extra = {k: v for k, v in params.items() if k not in _MAPPED and v is not None}
    extra.update(params.get("extra_body") or {})
    if extra:
        options["extra"] = extra
    usage_chunk = bool((params.get("stream_options") or {}).get("include_usage"))
    return options, bool(params.get("stream")), usage_chunk  # type: ignore[return-value]


def _embed_options(params: Mapping[str, Any]) -> CallOptions:
    """privsdk options from embeddings.create()'s keywords."""
    options: CallOptions = dict(params.get("privsdk") or {})  # type: ignore[assignment]
    if params.get("timeout") is not None:
        options["timeout"] = params["timeout"]
    return options


def chat_completion(response: ChatResponse) -> ChatCompletion:
    """openai's ChatCompletion for a privsdk answer: the SDK's own object when an openai target answered."""
    from openai.types.chat import ChatCompletion

    if isinstance(response.raw, ChatCompletion):
        return response.raw
    usage = response.usage
    return ChatCompletion.model_validate(
        {
            "id": f"chatcmpl-{new_request_id()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": response.model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": _FINISH.get(response.finish_reason, "stop"),
                    "message": {
                        "role": "assistant",
                        "content": response.text or None,
                        "tool_calls": [
                            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                            for c in response.tool_calls
                        ]
                        or None,
                    },
                }
            ],
            "usage": _usage(usage.input_tokens, usage.output_tokens),
        }
    )


def _usage(prompt: int | None, completion: int | None) -> dict[str, int]:
    p, c = prompt or 0, completion or 0
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


class _Chunks:
    """Turns privsdk stream events into openai ChatCompletionChunks, all with the stream's id and model."""

    def __init__(self, events: ChatStream | AsyncChatStream, usage_chunk: bool):
        self.body = {
            "id": f"chatcmpl-{new_request_id()}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": events.target.model,
        }
        self.usage_chunk = usage_chunk

    def _chunk(self, choices: list[dict[str, Any]], **more: Any) -> ChatCompletionChunk:
        from openai.types.chat import ChatCompletionChunk

        return ChatCompletionChunk.model_validate({**self.body, "choices": choices, **more})

    def __call__(self, event: Any) -> Iterator[ChatCompletionChunk]:
        if isinstance(event, TextDelta):
            yield self._chunk([{"index": 0, "delta": {"content": event.text}, "finish_reason": None}])
        elif isinstance(event, ToolCallDelta):
            call: dict[str, Any] = {"index": event.call, "function": {"arguments": event.arguments}}
            if event.id is not None:
                call["id"], call["type"] = event.id, "function"
            if event.name is not None:
                call["function"]["name"] = event.name
            yield self._chunk([{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}])
        elif isinstance(event, StreamEnd):
            finish = _FINISH.get(event.finish_reason, "stop")
            yield self._chunk([{"index": 0, "delta": {}, "finish_reason": finish}])
            if self.usage_chunk:
                yield self._chunk([], usage=_usage(event.usage.input_tokens, event.usage.output_tokens))


def chunks(events: ChatStream, usage_chunk: bool) -> Iterator[ChatCompletionChunk]:
    """openai ChatCompletionChunks for a privsdk stream."""
    to_chunks = _Chunks(events, usage_chunk)
    for event in events:
        yield from to_chunks(event)


async def achunks(events: AsyncChatStream, usage_chunk: bool) -> AsyncIterator[ChatCompletionChunk]:
    """:func:`chunks` for an async stream."""
    to_chunks = _Chunks(events, usage_chunk)
    async for event in events:
        for chunk in to_chunks(event):
            yield chunk


def embedding_response(response: EmbedResponse, encoding_format: str | None) -> CreateEmbeddingResponse:
    """openai's CreateEmbeddingResponse; base64 vectors when the caller asked for them, as the API gives them."""
    from openai.types import CreateEmbeddingResponse

    def encode(vector: list[float]) -> list[float] | str:
        if encoding_format == "base64":
            return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        return vector

    tokens = response.usage.input_tokens or 0
    return CreateEmbeddingResponse.model_construct(
        object="list",
        model=response.model,
        data=[_embedding(encode(v), i) for i, v in enumerate(response.vectors)],
        usage=_embedding_usage(tokens),
    )


def _embedding(vector: Any, index: int) -> Any:
    from openai.types import Embedding

    return Embedding.model_construct(embedding=vector, index=index, object="embedding")


def _embedding_usage(tokens: int) -> Any:
    from openai.types.create_embedding_response import Usage

    return Usage(prompt_tokens=tokens, total_tokens=tokens)


def openai_error(exc: VendorError) -> Exception:
    """The openai exception an app written for openai expects; the message carries no vendor text."""
    import openai
    from openai import _exceptions

    # The HTTP library the installed openai builds its errors on (httpx, renamed httpx2 in openai 3).
    httpx: Any = getattr(_exceptions, "httpx2", None) or getattr(_exceptions, "httpx")  # noqa: B009
    request = httpx.Request("POST", f"https://{exc.vendor}.invalid/privsdk")
    if isinstance(exc, VendorTimeout):
        return openai.APITimeoutError(request=request)
    if isinstance(exc, ConnectionLost):
        return openai.APIConnectionError(message=str(exc), request=request)
    by_kind: dict[type[VendorError], tuple[type[openai.APIStatusError], int]] = {
        RateLimited: (openai.RateLimitError, 429),
        BadRequest: (openai.BadRequestError, 400),
        ContentRefused: (openai.BadRequestError, 400),
        AuthFailed: (openai.AuthenticationError, 401),
        NotFound: (openai.NotFoundError, 404),
    }
    cls, status = by_kind.get(type(exc), (openai.InternalServerError, 500))
    if cls is openai.AuthenticationError and exc.status == 403:
        cls = openai.PermissionDeniedError
    headers = {"retry-after-ms": str(int(exc.retry_after * 1000))} if exc.retry_after is not None else {}
    response = httpx.Response(exc.status or status, headers=headers, request=request)
    body = {"code": exc.code or exc.kind, "type": exc.kind, "message": str(exc)}
    return cls(str(exc), response=response, body=body)


# -- sync -------------------------------------------------------------------------------------------


class _Completions:
    def __init__(self, client: Client):
        self._client = client

    def create(self, *, model: str, messages: Iterable[Any], **params: Any) -> Any:
        """As ``openai.OpenAI().chat.completions.create``: a ChatCompletion, or a stream of ChatCompletionChunks."""
        options, stream, usage_chunk = _chat_options(params)
        try:
            if stream:
                return _ChunkStream(
                    self._client.chat(_address(self._client, model), list(messages), stream=True, **options),
                    usage_chunk,
                )
            return chat_completion(self._client.chat(_address(self._client, model), list(messages), **options))
        except VendorError as exc:
            raise openai_error(exc) from exc


class _ChunkStream(Iterator["ChatCompletionChunk"]):
    """What ``create(stream=True)`` returns: iterate for chunks; ``close()`` or ``with`` to stop early."""

    def __init__(self, events: ChatStream, usage_chunk: bool):
        self._events = events
        self._chunks = chunks(events, usage_chunk)

    def __next__(self) -> ChatCompletionChunk:
        try:
            return next(self._chunks)
        except VendorError as exc:
            raise openai_error(exc) from exc

    def close(self) -> None:
        self._events.close()

    def __enter__(self) -> _ChunkStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Embeddings:
    def __init__(self, client: Client):
        self._client = client

    def create(self, *, model: str, input: str | list[str], **params: Any) -> CreateEmbeddingResponse:
        """As ``openai.OpenAI().embeddings.create``."""
        options = _embed_options(params)
        try:
            response = self._client.embed(
                _address(self._client, model), input, dimensions=params.get("dimensions"), **options
            )
        except VendorError as exc:
            raise openai_error(exc) from exc
        return embedding_response(response, params.get("encoding_format"))


class _Chat:
    def __init__(self, completions: Any):
        self.completions = completions


class OpenAI:
    """``openai.OpenAI``'s constructor and call shapes, enforced by privsdk.

    ``api_key`` and ``base_url`` apply to ``openai/*`` targets; ``timeout`` is
    each attempt's bound; ``max_retries`` sets privsdk's attempts (retries + 1).
    Arguments with no meaning here (``http_client``, ``default_headers``, ...)
    are accepted and ignored. ``privsdk_client`` shares an existing
    :class:`privsdk.Client`; ``privsdk_options`` are :class:`privsdk.Client` arguments.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        max_retries: int = 2,
        privsdk_client: Client | None = None,
        privsdk_options: Mapping[str, Any] | None = None,
        **ignored: Any,
    ):
        self._client = privsdk_client or Client(
            **_client_kwargs(api_key, base_url, timeout, max_retries, privsdk_options or {})
        )
        self.chat = _Chat(_Completions(self._client))
        self.embeddings = _Embeddings(self._client)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- async ------------------------------------------------------------------------------------------


class _AsyncCompletions:
    def __init__(self, client: AsyncClient):
        self._client = client

    async def create(self, *, model: str, messages: Iterable[Any], **params: Any) -> Any:
        """As ``openai.AsyncOpenAI().chat.completions.create``."""
        options, stream, usage_chunk = _chat_options(params)
        try:
            if stream:
                events = await self._client.chat(_address(self._client, model), list(messages), stream=True, **options)
                return _AsyncChunkStream(events, usage_chunk)
            return chat_completion(await self._client.chat(_address(self._client, model), list(messages), **options))
        except VendorError as exc:
            raise openai_error(exc) from exc


class _AsyncChunkStream(AsyncIterator["ChatCompletionChunk"]):
    def __init__(self, events: AsyncChatStream, usage_chunk: bool):
        self._events = events
        self._chunks = achunks(events, usage_chunk)

    async def __anext__(self) -> ChatCompletionChunk:
        try:
            return await anext(self._chunks)
        except VendorError as exc:
            raise openai_error(exc) from exc

    async def close(self) -> None:
        await self._events.aclose()

    async def __aenter__(self) -> _AsyncChunkStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _AsyncEmbeddings:
    def __init__(self, client: AsyncClient):
        self._client = client

    async def create(self, *, model: str, input: str | list[str], **params: Any) -> CreateEmbeddingResponse:
        options = _embed_options(params)
        try:
            response = await self._client.embed(
                _address(self._client, model), input, dimensions=params.get("dimensions"), **options
            )
        except VendorError as exc:
            raise openai_error(exc) from exc
        return embedding_response(response, params.get("encoding_format"))


class AsyncOpenAI:
    """``openai.AsyncOpenAI``'s constructor and call shapes, enforced by privsdk (see :class:`OpenAI`)."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        max_retries: int = 2,
        privsdk_client: AsyncClient | None = None,
        privsdk_options: Mapping[str, Any] | None = None,
        **ignored: Any,
    ):
        from privsdk.async_client import AsyncClient

        self._client = privsdk_client or AsyncClient(
            **_client_kwargs(api_key, base_url, timeout, max_retries, privsdk_options or {})
        )
        self.chat = _Chat(_AsyncCompletions(self._client))
        self.embeddings = _AsyncEmbeddings(self._client)

    async def close(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> AsyncOpenAI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
