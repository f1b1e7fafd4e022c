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
so is a body the reroute cannot carry as asked: the tables below list every
field it carries and how; a field at any value but its default (``n`` > 1,
``safe_prompt``, penalties, ``prediction``, ...), and a field no table names,
is refused. Refusals name fields, never their values.
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
_ONE_CHOICE = "the reroute answers with one choice"
_NO_LOGPROBS = "the alternative's answer carries no log probabilities"
_MISTRAL_ONLY = "it is meant for Mistral's own service, which the alternative is not"


def _tools(tools: Any) -> list[dict[str, Any]] | None:
    if not isinstance(tools, list):
        raise reroute.Unmappable("tools that are not a list")
    return [_tool(t) for t in tools] or None


def _tool_choice(choice: Any) -> str:
    if not isinstance(choice, str) or choice not in _TOOL_CHOICE:
        raise reroute.Unmappable("a tool_choice that names a tool")
    return _TOOL_CHOICE[choice]


def _stop(stop: Any) -> list[str] | None:
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise reroute.Unmappable("a stop that is not text or a list of texts")
    return [s for s in stops if s] or None


def _response_format(value: Any) -> ResponseFormat | None:
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat()
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, Mapping) or not isinstance(spec.get("schema"), Mapping):
            raise reroute.Unmappable("a json_schema response_format without a schema")
        reroute.check_keys(spec, _JSON_SCHEMA, "response_format's json_schema")
        return ResponseFormat(spec["schema"], str(spec.get("name") or "response"))
    raise reroute.Unmappable("a response_format other than text, json_object or json_schema")


_STRICT = "privsdk asks the alternative for the schema, but cannot make it hold the answer to it strictly"
_JSON_SCHEMA: Mapping[str, reroute.Carry] = {
    "name": reroute.READ,
    "schema": reroute.READ,
    "strict": reroute.default_only(False, why=_STRICT),
    "description": reroute.default_only(why="privsdk carries a schema and its name, not its description"),
}
#: Every chat field the reroute carries, and how (see :class:`privsdk.outbound.reroute.Carry`). Any other field
#: is refused.
_CHAT: Mapping[str, reroute.Carry] = {
    "model": reroute.READ,  # the alternative's own model answers (the answer says which)
    "messages": reroute.READ,
    "stream": reroute.READ,
    "tools": reroute.option("tools", _tools),
    "tool_choice": reroute.option("tool_choice", _tool_choice),  # any is privsdk's required
    "temperature": reroute.option("temperature"),
    "top_p": reroute.option("top_p"),
    "max_tokens": reroute.option("max_tokens"),
    "stop": reroute.option("stop", _stop),
    "random_seed": reroute.option("seed"),
    "response_format": reroute.option("response_format", _response_format),
    "n": reroute.default_only(1, why=_ONE_CHOICE),
    "parallel_tool_calls": reroute.default_only(
        True, why="privsdk cannot stop the alternative calling tools in parallel"
    ),
    "safe_prompt": reroute.default_only(False, why="Mistral's safety prompt is Mistral's"),
    "guardrails": reroute.default_only([], why="Mistral's guardrails run at Mistral only"),
    "logprobs": reroute.default_only(False, why=_NO_LOGPROBS),
    "top_logprobs": reroute.default_only(0, why=_NO_LOGPROBS),
    "prompt_logprobs": reroute.default_only(False, why=_NO_LOGPROBS),
    "top_prompt_logprobs": reroute.default_only(0, why=_NO_LOGPROBS),
    "presence_penalty": reroute.default_only(0),
    "frequency_penalty": reroute.default_only(0),
    "repetition_penalty": reroute.default_only(1),
    "min_tokens": reroute.default_only(0),
    "top_k": reroute.default_only(),
    "prediction": reroute.default_only(),
    "reasoning_effort": reroute.default_only(),
    "prompt_mode": reroute.default_only(why="a Mistral system prompt for its reasoning models"),
    "prompt_cache_key": reroute.default_only(why=_MISTRAL_ONLY),
    "service_tier": reroute.default_only("auto", why=_MISTRAL_ONLY),
    "metadata": reroute.default_only({}, why=_MISTRAL_ONLY),
}
#: Every embeddings field the reroute carries, and how. Any other field is refused.
_EMBED: Mapping[str, reroute.Carry] = {
    "model": reroute.READ,
    "input": reroute.READ,
    "output_dimension": reroute.option("dimensions"),
    "output_dtype": reroute.default_only("float", why="the reroute answers with float vectors"),
    "encoding_format": reroute.default_only("float", why="the reroute answers with float vectors"),
    "metadata": reroute.default_only({}, why=_MISTRAL_ONLY),
}
#: The fields of a message of each role the reroute reads; any other field is refused.
_PREFIX = reroute.default_only(False, why="the alternative cannot continue an assistant prefix")
_MESSAGE: Mapping[str, Mapping[str, reroute.Carry]] = {
    "system": {"role": reroute.READ, "content": reroute.READ},
    "user": {"role": reroute.READ, "content": reroute.READ},
    "assistant": {"role": reroute.READ, "content": reroute.READ, "tool_calls": reroute.READ, "prefix": _PREFIX},
    # name repeats the function of the call tool_call_id answers
    "tool": {"role": reroute.READ, "content": reroute.READ, "tool_call_id": reroute.READ, "name": reroute.READ},
}
_FUNCTION: Mapping[str, reroute.Carry] = {
    "name": reroute.READ,
    "description": reroute.READ,
    "parameters": reroute.READ,
    "strict": reroute.default_only(False, why=_STRICT),
}
_IMAGE_URL: Mapping[str, reroute.Carry] = {
    "url": reroute.READ,
    "detail": reroute.default_only("auto", why="privsdk asks the alternative for the image, not for its detail"),
}


def _call(out: Outgoing, ticket: Pass) -> tuple[str, dict[str, Any], Any]:
    """(kind, privsdk call keywords, messages or texts) for a rerouted request; refuses anything else."""
    return reroute.chat_or_embed(out, ticket, "Mistral", _CHAT_PATHS, "/v1/embeddings", _chat, _embed)


def _chat(body: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The privsdk options and messages of a chat completions body."""
    options = reroute.carry(body, _CHAT)
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise reroute.Unmappable("messages that are not a list")
    return options, [_message(m) for m in messages]


def _tool(tool: Any) -> dict[str, Any]:
    kind = tool.get("type", "function") if isinstance(tool, dict) else None
    function = tool.get("function") if isinstance(tool, dict) else None
    if kind != "function" or not isinstance(function, dict):
        raise reroute.Unmappable("a built-in tool (only function tools reroute)")
    reroute.check_keys(tool, {"type": reroute.READ, "function": reroute.READ}, "a function tool")
    reroute.check_keys(function, _FUNCTION, "a function tool")
    spec = {k: function[k] for k in ("name", "description", "parameters") if function.get(k) is not None}
    return {"type": "function", "function": spec}


def _message(message: Any) -> dict[str, Any]:
    """A Mistral chat message as privsdk's (OpenAI-shaped) message dict."""
    role = message.get("role") if isinstance(message, dict) else None
    fields = _MESSAGE.get(role) if isinstance(role, str) else None
    if fields is None:
        raise reroute.Unmappable("a message whose role is not system, user, assistant or tool")
    reroute.check_keys(message, fields, f"a {role} message")
    content = _content(message.get("content"), images=role == "user", thinking=role == "assistant")
    out: dict[str, Any] = {"role": role, "content": content}
    if role == "assistant":
        calls = message.get("tool_calls")
        if calls:
            out["tool_calls"] = [reroute.function_call(c) for c in calls]
        out["content"] = out["content"] or None
    if role == "tool":
        out["tool_call_id"] = message.get("tool_call_id")
    return out


def _content(content: Any, *, images: bool, thinking: bool) -> str | list[dict[str, Any]]:
    """A message's content: text, or text and (user messages) image parts in OpenAI's shape; an assistant's
    (``thinking``) reasoning handed back is left out."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise reroute.Unmappable("message content that is neither text nor a list of chunks")
    parts: list[dict[str, Any]] = []
    for chunk in content:
        kind = chunk.get("type") if isinstance(chunk, dict) else None
        if kind == "text" and isinstance(chunk.get("text"), str) and set(chunk) == {"type", "text"}:
            parts.append({"type": "text", "text": chunk["text"]})
        elif kind == "thinking" and thinking:
            continue  # the model's own reasoning, handed back: not what it said (in a system or user message, it is
            # the app's words, which no alternative's message takes as such: refused below)
        elif kind == "image_url" and images:
            reroute.check_keys(chunk, {"type": reroute.READ, "image_url": reroute.READ}, "an image chunk")
            url = chunk.get("image_url")
            if isinstance(url, dict):
                reroute.check_keys(url, _IMAGE_URL, "an image chunk")
                url = url.get("url")
            if not isinstance(url, str):
                raise reroute.Unmappable("an image chunk without a URL")
            parts.append({"type": "image_url", "image_url": {"url": url}})
        else:
            raise reroute.Unmappable(f"a content chunk of type {reroute.part_type(kind)}")
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _embed(body: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The privsdk options and texts of an embeddings body."""
    options = reroute.carry(body, _EMBED)
    inputs = body.get("input")
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise reroute.Unmappable("input that is not text")
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
    client, chosen = reroute.async_client(ticket), str(ticket.decision.chosen)
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
    validation error list, which privsdk's error is not. An alternative that did not answer within the SDK's
    timeout is a timeout of the SDK's transport."""
    reroute.raise_timeout(http, exc)
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
