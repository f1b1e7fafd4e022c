"""Rerouted requests of the mistralai drop-in, answered in Mistral's own wire format.

When the guard refuses a request from a mistralai client and the tenant's
reroute list names an alternative whose own decision is allow, the drop-in's
transport does not send the request. It makes the same call through a
:class:`privsdk.Client` to the alternative (a Mistral model on Azure AI
Foundry, which the mistralai SDK also reaches, or another vendor for chat and
embeddings) and answers with the JSON, or the server-sent events, that la
Plateforme would have sent. The SDK then parses that answer as it always
does: the app gets mistralai's types.

Only chat completions (``/v1/chat/completions``, and Azure AI Foundry's
``/models/chat/completions``; plain and streamed) and embeddings
(``/v1/embeddings``) reroute. Anything else -- FIM, agents, conversations,
the Responses API, OCR, files, batches, fine-tuning, audio -- is refused, and
so is a body the alternative cannot honour without changing the answer
(built-in tools, a forced named tool, ``n`` > 1, ``prefix`` messages,
``guardrails``, ``safe_prompt``, log probabilities, document or audio
inputs, embedding dtypes other than float). Tuning fields privsdk has no name
for (penalties, ``top_k``, ``prompt_mode``, ``reasoning_effort``,
``prediction``, ``metadata``, ...) are not sent to the alternative. Refusals
name fields, never their values.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

from privsdk.errors import VendorError
from privsdk.outbound import reroute
from privsdk.outbound.judge import Pass
from privsdk.outbound.outgoing import Outgoing
from privsdk.types import ChatResponse, EmbedResponse, ResponseFormat, StreamEnd, StreamEvent, TextDelta, ToolCallDelta
from privsdk.usage.record import new_request_id

#: privsdk's finish reasons in Mistral's words. A filtered answer did not complete: Mistral says error.
_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "error": "error", "content_filter": "error"}
_TOOL_CHOICE = {"auto": "auto", "none": "none", "any": "required", "required": "required"}
_CHAT_PATHS = ("/v1/chat/completions", "/models/chat/completions")
#: Chat fields the reroute carries over (as privsdk options) or reads itself.
_CHAT_CARRIED = frozenset(
    {
        "model", "messages", "stream", "tools", "tool_choice", "temperature", "top_p", "max_tokens", "stop",
        "random_seed", "response_format",
    }
)  # fmt: skip
#: Chat fields that tune how the model answers, or schedule or label the request, and which privsdk has no name
#: for: not sent to the alternative.
_CHAT_DROPPED = frozenset(
    {
        "presence_penalty", "frequency_penalty", "min_tokens", "repetition_penalty", "top_k", "prediction",
        "reasoning_effort", "prompt_mode", "prompt_cache_key", "service_tier", "metadata",
    }
)  # fmt: skip
#: Chat fields that the alternative cannot honour when they ask for something (refused unless off or default).
_CHAT_CHECKED = frozenset(
    {"n", "parallel_tool_calls", "safe_prompt", "guardrails", "logprobs", "top_logprobs", "prompt_logprobs",
     "top_prompt_logprobs"}
)  # fmt: skip
_EMBED_KNOWN = frozenset({"model", "input", "metadata", "output_dimension", "output_dtype", "encoding_format"})


def _call(out: Outgoing, ticket: Pass) -> tuple[str, dict[str, Any], Any]:
    """(kind, privsdk call keywords, messages or texts) for a rerouted request; refuses anything else."""
    return reroute.chat_or_embed(out, ticket, "Mistral", _CHAT_PATHS, "/v1/embeddings", _chat, _embed)


def _chat(body: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The privsdk options and messages of a chat completions body."""
    reroute.only(body, _CHAT_CARRIED | _CHAT_DROPPED | _CHAT_CHECKED)
    if body.get("n") not in (None, 1):
        raise reroute.Unmappable("n other than 1")
    if body.get("parallel_tool_calls") is False:
        raise reroute.Unmappable("parallel_tool_calls false")
    for field in ("safe_prompt", "guardrails", "logprobs", "top_logprobs", "prompt_logprobs", "top_prompt_logprobs"):
        if body.get(field):
            raise reroute.Unmappable(field)
    options: dict[str, Any] = {}
    tools = body.get("tools")
    if tools:
        if not isinstance(tools, list):
            raise reroute.Unmappable("tools that are not a list")
        options["tools"] = [_tool(t) for t in tools]
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, str) or choice not in _TOOL_CHOICE:
            raise reroute.Unmappable("a tool_choice that names a tool")
        options["tool_choice"] = _TOOL_CHOICE[choice]
    names = ("temperature", "top_p", "max_tokens")
    for field, name in (*((n, n) for n in names), ("random_seed", "seed")):
        if body.get(field) is not None:
            options[name] = body[field]
    stop = body.get("stop")
    if stop:
        options["stop"] = [stop] if isinstance(stop, str) else list(stop)
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    if kind == "json_object":
        options["response_format"] = ResponseFormat()
    elif kind == "json_schema":
        spec = response_format.get("json_schema") if isinstance(response_format, Mapping) else None
        if not isinstance(spec, Mapping) or not isinstance(spec.get("schema"), Mapping):
            raise reroute.Unmappable("a json_schema response_format without a schema")
        options["response_format"] = ResponseFormat(spec["schema"], str(spec.get("name") or "response"))
    elif response_format is not None and kind != "text":
        raise reroute.Unmappable("response_format")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise reroute.Unmappable("messages that are not a list")
    return options, [_message(m) for m in messages]


def _tool(tool: Any) -> dict[str, Any]:
    kind = tool.get("type", "function") if isinstance(tool, dict) else None
    function = tool.get("function") if isinstance(tool, dict) else None
    if kind != "function" or not isinstance(function, dict):
        raise reroute.Unmappable("a built-in tool (only function tools reroute)")
    spec = {k: function[k] for k in ("name", "description", "parameters") if function.get(k) is not None}
    return {"type": "function", "function": spec}


def _message(message: Any) -> dict[str, Any]:
    """A Mistral chat message as privsdk's (OpenAI-shaped) message dict."""
    role = message.get("role") if isinstance(message, dict) else None
    if role not in ("system", "user", "assistant", "tool"):
        raise reroute.Unmappable("a message whose role is not system, user, assistant or tool")
    if message.get("prefix"):
        raise reroute.Unmappable("an assistant prefix message")
    out: dict[str, Any] = {"role": role, "content": _content(message.get("content"), images=role == "user")}
    if role == "assistant":
        calls = message.get("tool_calls")
        if calls:
            out["tool_calls"] = [reroute.function_call(c) for c in calls]
        out["content"] = out["content"] or None
    if role == "tool":
        out["tool_call_id"] = message.get("tool_call_id")
    return out


def _content(content: Any, *, images: bool) -> str | list[dict[str, Any]]:
    """A message's content: text, or text and (user messages) image parts in OpenAI's shape."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise reroute.Unmappable("message content that is neither text nor a list of chunks")
    parts: list[dict[str, Any]] = []
    for chunk in content:
        kind = chunk.get("type") if isinstance(chunk, dict) else None
        if kind == "text" and isinstance(chunk.get("text"), str):
            parts.append({"type": "text", "text": chunk["text"]})
        elif kind == "thinking":
            continue  # the model's own reasoning, handed back: not what it said
        elif kind == "image_url" and images:
            url = chunk.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            if not isinstance(url, str):
                raise reroute.Unmappable("an image chunk without a URL")
            parts.append({"type": "image_url", "image_url": {"url": url}})
        else:
            raise reroute.Unmappable(
                f"a content chunk of type {kind!r}" if isinstance(kind, str) else "a content chunk"
            )
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _embed(body: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The privsdk options and texts of an embeddings body."""
    reroute.only(body, _EMBED_KNOWN)
    if body.get("output_dtype") not in (None, "float"):
        raise reroute.Unmappable("an output_dtype other than float")
    if body.get("encoding_format") not in (None, "float"):
        raise reroute.Unmappable("an encoding_format other than float")
    inputs = body.get("input")
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise reroute.Unmappable("input that is not text")
    options: dict[str, Any] = {}
    if body.get("output_dimension") is not None:
        options["dimensions"] = body["output_dimension"]
    return options, texts


def send(out: Outgoing, ticket: Pass, http: ModuleType) -> Any:
    """Answer a rerouted request from ``ticket.decision.chosen`` (sync clients)."""
    kind, options, items = _call(out, ticket)
    client, chosen = reroute.client(ticket.guard), str(ticket.decision.chosen)
    try:
        if kind == "embed":
            return reroute.json_answer(http, embedding(client.embed(chosen, items, **options)))
        if kind == "stream":
            stream = client.chat(chosen, items, stream=True, **options)
            return reroute.sse_answer(http, reroute.stream_lines(stream, _Chunks(stream.target.model)))
        return reroute.json_answer(http, completion(client.chat(chosen, items, **options)))
    except VendorError as exc:
        return _error(http, exc)


async def asend(out: Outgoing, ticket: Pass, http: ModuleType) -> Any:
    """:func:`send` for async clients."""
    kind, options, items = _call(out, ticket)
    client, chosen = reroute.async_client(ticket.guard), str(ticket.decision.chosen)
    try:
        if kind == "embed":
            return reroute.json_answer(http, embedding(await client.embed(chosen, items, **options)))
        if kind == "stream":
            stream = await client.chat(chosen, items, stream=True, **options)
            return reroute.sse_answer(http, reroute.astream_lines(stream, _Chunks(stream.target.model)))
        return reroute.json_answer(http, completion(await client.chat(chosen, items, **options)))
    except VendorError as exc:
        return _error(http, exc)


def _error_object(exc: VendorError) -> dict[str, Any]:
    """Mistral's error JSON, from privsdk's content-free error (never the vendor's text)."""
    return {"object": "error", "message": str(exc), "type": exc.kind, "param": None, "code": exc.code}


def _error(http: ModuleType, exc: VendorError) -> Any:
    """The failure as Mistral would answer it. A 422 is said as a 400: the SDK reads a 422's body as a
    validation error list, which privsdk's error is not."""
    status = reroute.status(exc)
    return http.Response(400 if status == 422 else status, headers=reroute.retry_after(exc), json=_error_object(exc))


def _usage(prompt: int | None, completion: int | None) -> dict[str, int]:
    p, c = prompt or 0, completion or 0
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def completion(response: ChatResponse) -> dict[str, Any]:
    """A Mistral ``chat.completion`` object for a privsdk answer."""
    message: dict[str, Any] = {"role": "assistant", "content": response.text, "prefix": False}
    message["tool_calls"] = [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}, "index": i}
        for i, c in enumerate(response.tool_calls)
    ] or None
    return {
        "id": f"cmpl-{new_request_id()}",
        "object": "chat.completion",
        "model": response.model,
        "created": int(time.time()),
        "usage": _usage(response.usage.input_tokens, response.usage.output_tokens),
        "choices": [{"index": 0, "message": message, "finish_reason": _FINISH.get(response.finish_reason, "stop")}],
    }


class _Chunks:
    """privsdk stream events as Mistral ``chat.completion.chunk`` events, usage on the last one, then ``[DONE]``.

    Mistral streams each tool call whole, in one chunk before the last: the alternative's pieces are gathered
    and sent so, for apps that read a tool call from one chunk.
    """

    def __init__(self, model: str):
        self.head = {"id": f"cmpl-{new_request_id()}", "object": "chat.completion.chunk", "model": model}
        self.created = int(time.time())
        self.first = True
        self.calls: dict[int, dict[str, Any]] = {}

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **more: Any) -> bytes:
        if self.first:
            self.first = False
            delta = {"role": "assistant", **delta}
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        data = {**self.head, "created": self.created, "choices": [choice], **more}
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    def __call__(self, event: StreamEvent) -> Iterator[bytes]:
        if isinstance(event, TextDelta):
            yield self._chunk({"content": event.text})
        elif isinstance(event, ToolCallDelta):
            call = self.calls.setdefault(
                event.call,
                {"id": "", "type": "function", "function": {"name": "", "arguments": ""}, "index": event.call},
            )
            if event.id is not None:
                call["id"] = event.id
            if event.name is not None:
                call["function"]["name"] = event.name
            call["function"]["arguments"] += event.arguments
        elif isinstance(event, StreamEnd):
            if self.calls:
                yield self._chunk({"content": "", "tool_calls": [self.calls[i] for i in sorted(self.calls)]})
            usage = _usage(event.usage.input_tokens, event.usage.output_tokens)
            yield self._chunk({"content": ""}, _FINISH.get(event.finish_reason, "stop"), usage=usage)
            yield b"data: [DONE]\n\n"

    def failed(self, exc: VendorError) -> Iterator[bytes]:
        """The alternative failed mid-stream: Mistral sends its error object as an event; the SDK raises on it."""
        yield b"data: " + json.dumps(_error_object(exc)).encode() + b"\n\ndata: [DONE]\n\n"


def embedding(response: EmbedResponse) -> dict[str, Any]:
    """A Mistral embeddings ``list`` object."""
    tokens = response.usage.input_tokens or 0
    return {
        "id": f"embd-{new_request_id()}",
        "object": "list",
        "model": response.model,
        "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(response.vectors)],
    }
