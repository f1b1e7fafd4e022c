"""Rerouted requests of the openai drop-in, answered in openai's own wire format.

When the guard refuses a request from an openai client and the tenant's
reroute list names an alternative whose own decision is allow, the drop-in's
transport does not send the request. It makes the same call through a
:class:`privsdk.Client` to the alternative (an Azure OpenAI deployment, a
self-hosted server, or another vendor for chat and embeddings) and answers
with the JSON, or the server-sent events, that OpenAI would have sent. The
SDK then parses that answer as it always does: the app gets openai's types.
Any other operation is refused.
"""

from __future__ import annotations

import base64
import json
import struct
import time
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

from privsdk.errors import VendorError
from privsdk.outbound import reroute
from privsdk.outbound.judge import Pass
from privsdk.outbound.outgoing import Outgoing
from privsdk.types import ChatResponse, EmbedResponse, StreamEnd, StreamEvent, TextDelta, ToolCallDelta
from privsdk.usage.record import new_request_id

_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "content_filter": "content_filter"}
#: Chat Completions fields the reroute carries over; any other field in the body is the named target's own
#: (``logprobs``, ``web_search_options``, ...) and is not sent to the alternative.
_CHAT_FIELDS = ("tools", "tool_choice", "temperature", "top_p", "seed", "response_format")


def _call(out: Outgoing, ticket: Pass) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(kind, privsdk call keywords, the request body) for a rerouted request; refuses any other kind."""
    operation = ticket.verdict.asks.operation if ticket.verdict.asks else "other"
    body = out.json()
    path = out.path.rstrip("/")
    if not isinstance(body, dict):
        raise reroute.unsupported(ticket, operation)
    options = reroute.options(ticket)
    if path.endswith("/chat/completions") and operation in ("chat", "stream"):
        for key in _CHAT_FIELDS:
            if body.get(key) is not None:
                options[key] = body[key]
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        if max_tokens is not None:
            options["max_tokens"] = max_tokens
        if body.get("stop") is not None:
            options["stop"] = body["stop"]
        return "chat", options, body
    if path.endswith("/embeddings") and operation == "embed":
        if body.get("dimensions") is not None:
            options["dimensions"] = body["dimensions"]
        return "embed", options, body
    raise reroute.unsupported(ticket, operation)


def send(out: Outgoing, ticket: Pass, http: ModuleType) -> Any:
    """Answer a rerouted request from ``ticket.decision.chosen`` (sync clients)."""
    kind, options, body = _call(out, ticket)
    client, chosen = reroute.client(ticket.guard), str(ticket.decision.chosen)
    try:
        if kind == "embed":
            answer = client.embed(chosen, body.get("input") or [], **options)
            return reroute.json_answer(http, embedding(answer, body.get("encoding_format")))
        if body.get("stream"):
            stream = client.chat(chosen, body.get("messages") or [], stream=True, **options)
            chunks = _Chunks(stream.target.model, _usage_chunk(body))
            return reroute.sse_answer(http, reroute.stream_lines(stream, chunks))
        return reroute.json_answer(http, completion(client.chat(chosen, body.get("messages") or [], **options)))
    except VendorError as exc:
        return _error(http, exc)


async def asend(out: Outgoing, ticket: Pass, http: ModuleType) -> Any:
    """:func:`send` for async clients."""
    kind, options, body = _call(out, ticket)
    client, chosen = reroute.async_client(ticket.guard), str(ticket.decision.chosen)
    try:
        if kind == "embed":
            answer = await client.embed(chosen, body.get("input") or [], **options)
            return reroute.json_answer(http, embedding(answer, body.get("encoding_format")))
        if body.get("stream"):
            stream = await client.chat(chosen, body.get("messages") or [], stream=True, **options)
            chunks = _Chunks(stream.target.model, _usage_chunk(body))
            return reroute.sse_answer(http, reroute.astream_lines(stream, chunks))
        return reroute.json_answer(http, completion(await client.chat(chosen, body.get("messages") or [], **options)))
    except VendorError as exc:
        return _error(http, exc)


def _usage_chunk(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, Mapping) and bool(options.get("include_usage"))


def _error_object(exc: VendorError) -> dict[str, Any]:
    """OpenAI's error object, from privsdk's content-free error (never the vendor's text)."""
    return {"message": str(exc), "type": exc.kind, "code": exc.code or exc.kind, "param": None}


def _error(http: ModuleType, exc: VendorError) -> Any:
    """The failure as OpenAI would answer it: openai retries it by its own rules, with the alternative's delay."""
    headers = {"retry-after-ms": str(int(exc.retry_after * 1000))} if exc.retry_after is not None else {}
    return http.Response(reroute.status(exc), headers=headers, json={"error": _error_object(exc)})


def completion(response: ChatResponse) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` object for a privsdk answer."""
    usage = response.usage
    calls = [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in response.tool_calls
    ]
    message: dict[str, Any] = {"role": "assistant", "content": response.text or None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{new_request_id()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": response.model,
        "choices": [{"index": 0, "finish_reason": _FINISH.get(response.finish_reason, "stop"), "message": message}],
        "usage": _usage(usage.input_tokens, usage.output_tokens),
    }


def _usage(prompt: int | None, completion: int | None) -> dict[str, int]:
    p, c = prompt or 0, completion or 0
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


class _Chunks:
    """privsdk stream events as OpenAI ``chat.completion.chunk`` server-sent events, then ``[DONE]``."""

    def __init__(self, model: str, usage_chunk: bool):
        self.head = {
            "id": f"chatcmpl-{new_request_id()}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }
        self.usage_chunk = usage_chunk

    def _event(self, choices: list[dict[str, Any]], **more: Any) -> bytes:
        return b"data: " + json.dumps({**self.head, "choices": choices, **more}).encode() + b"\n\n"

    def __call__(self, event: StreamEvent) -> Iterator[bytes]:
        if isinstance(event, TextDelta):
            yield self._event([{"index": 0, "delta": {"content": event.text}, "finish_reason": None}])
        elif isinstance(event, ToolCallDelta):
            call: dict[str, Any] = {"index": event.call, "function": {"arguments": event.arguments}}
            if event.id is not None:
                call["id"], call["type"] = event.id, "function"
            if event.name is not None:
                call["function"]["name"] = event.name
            yield self._event([{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}])
        elif isinstance(event, StreamEnd):
            finish = _FINISH.get(event.finish_reason, "stop")
            yield self._event([{"index": 0, "delta": {}, "finish_reason": finish}])
            if self.usage_chunk:
                yield self._event([], usage=_usage(event.usage.input_tokens, event.usage.output_tokens))
            yield b"data: [DONE]\n\n"

    def failed(self, exc: VendorError) -> Iterator[bytes]:
        """The alternative failed after its stream began: OpenAI's in-stream error event, which the openai SDK
        raises as its own ``APIError``."""
        yield b"data: " + json.dumps({"error": _error_object(exc)}).encode() + b"\n\n"


def embedding(response: EmbedResponse, encoding_format: str | None) -> dict[str, Any]:
    """An OpenAI embeddings ``list`` object; base64 vectors when the caller asked for them, as the API gives them."""

    def encode(vector: list[float]) -> list[float] | str:
        if encoding_format == "base64":
            return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        return vector

    tokens = response.usage.input_tokens or 0
    return {
        "object": "list",
        "model": response.model,
        "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(response.vectors)],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
