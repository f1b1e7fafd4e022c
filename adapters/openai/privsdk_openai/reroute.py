"""Rerouted requests of the openai drop-in, answered in openai's own wire format.

When the guard refuses a request from an openai client and the tenant's
reroute list names an alternative whose own decision is allow, the drop-in's
transport does not send the request. It makes the same call through a
:class:`privsdk.Client` to the alternative (an Azure OpenAI deployment, a
self-hosted server, or another vendor for chat and embeddings) and answers
with the JSON, or the server-sent events, that OpenAI would have sent. The
SDK then parses that answer as it always does: the app gets openai's types.

Only Chat Completions (``.../chat/completions``, plain and streamed) and
embeddings (``.../embeddings``) reroute; any other operation is refused. So is
a body the reroute cannot carry as asked: the tables below list every field it
carries and how; a field at any value but its default, and a field no table
names, is refused, naming the field (never its value) and why.
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
from privsdk.outbound.reroute import READ, Carry, Unmappable, default_only, option
from privsdk.types import ChatResponse, EmbedResponse, ResponseFormat, StreamEnd, StreamEvent, TextDelta, ToolCallDelta
from privsdk.usage.record import new_request_id

_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "content_filter": "content_filter"}
_TOOL_CHOICES = frozenset({"auto", "none", "required"})
_ONE_CHOICE = "the reroute answers with one choice"
_NO_LOGPROBS = "the alternative's answer carries no log probabilities"
_OPENAI_ONLY = "it is meant for OpenAI's own service, which the alternative is not"
_NOT_KEPT = "the alternative does not keep the completion for OpenAI's stored completions"


def _max_tokens(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Unmappable("a max_tokens or max_completion_tokens that is not a whole number")
    return value


def _tools(tools: Any) -> list[dict[str, Any]]:
    """Function tools, as privsdk takes them (OpenAI's shape); any other kind of tool is refused."""
    if not isinstance(tools, list):
        raise Unmappable("tools that are not a list")
    out = []
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise Unmappable("a tool that is not a function (custom and hosted tools are OpenAI's)")
        reroute.check_keys(tool, _TOOL, "a tool")
        function = tool.get("function")
        if not isinstance(function, dict):
            raise Unmappable("a function tool without a function")
        reroute.check_keys(function, _FUNCTION, "a function tool")
        out.append(
            {
                "type": "function",
                "function": {k: function[k] for k in _FUNCTION if function.get(k) is not None and k != "strict"},
            }
        )
    return out


def _tool_choice(choice: Any) -> Any:
    """``auto``, ``none``, ``required``, or a named function; ``allowed_tools`` and custom tools are refused."""
    if isinstance(choice, str) and choice in _TOOL_CHOICES:
        return choice
    function = choice.get("function") if isinstance(choice, dict) and choice.get("type") == "function" else None
    if isinstance(function, dict) and isinstance(function.get("name"), str) and set(function) == {"name"}:
        return {"type": "function", "function": {"name": function["name"]}}
    raise Unmappable("a tool_choice other than auto, none, required or a named function")


def _response_format(value: Any) -> ResponseFormat | None:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return None
    if kind == "json_object" and set(value) == {"type"}:
        return ResponseFormat()
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            raise Unmappable("a json_schema response_format without a schema")
        reroute.check_keys(spec, _JSON_SCHEMA, "response_format's json_schema")
        return ResponseFormat(spec["schema"], str(spec.get("name") or "response"))
    raise Unmappable("a response_format other than text, json_object or json_schema")


def _stop(stop: Any) -> Any:
    if isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        return stop
    raise Unmappable("a stop that is not text or a list of texts")


def _stream_options(value: Any) -> None:
    if not isinstance(value, dict):
        raise Unmappable("stream_options that is not an object")
    reroute.check_keys(value, _STREAM_OPTIONS, "stream_options")


_STRICT = "privsdk asks the alternative for the schema, but cannot make it hold the answer to it strictly"
#: A function tool's fields, and the function's.
_TOOL: Mapping[str, Carry] = {"type": READ, "function": READ}
_FUNCTION: Mapping[str, Carry] = {
    "name": READ,
    "description": READ,
    "parameters": READ,
    "strict": default_only(False, why=_STRICT),
}
_JSON_SCHEMA: Mapping[str, Carry] = {
    "name": READ,
    "schema": READ,
    "strict": default_only(False, why=_STRICT),
    "description": default_only(why="privsdk carries a schema and its name, not its description"),
}
_STREAM_OPTIONS: Mapping[str, Carry] = {
    "include_usage": READ,  # a last chunk with the alternative's usage
    "include_obfuscation": READ,  # padding against a network observer: the answer does not cross the network
}

#: Every Chat Completions field the reroute carries, and how. Any other field is refused.
_CHAT: Mapping[str, Carry] = {
    "model": READ,  # the alternative's own model answers (the answer says which)
    "messages": READ,
    "stream": READ,
    "stream_options": READ,  # include_usage: send() ends the stream with the alternative's usage
    "tools": option("tools", _tools),
    "tool_choice": option("tool_choice", _tool_choice),
    "temperature": option("temperature"),
    "top_p": option("top_p"),
    "seed": option("seed"),
    "max_completion_tokens": option("max_tokens", _max_tokens),
    "max_tokens": option("max_tokens", _max_tokens),
    "stop": option("stop", _stop),
    "response_format": option("response_format", _response_format),
    "n": default_only(1, why=_ONE_CHOICE),
    "logprobs": default_only(False, why=_NO_LOGPROBS),
    "top_logprobs": default_only(0, why=_NO_LOGPROBS),
    "presence_penalty": default_only(0),
    "frequency_penalty": default_only(0),
    "logit_bias": default_only({}),
    "parallel_tool_calls": default_only(True, why="privsdk cannot stop the alternative calling tools in parallel"),
    "modalities": default_only(["text"], why="the alternative answers with text only"),
    "audio": default_only(why="the alternative answers with text only"),
    "prediction": default_only(),
    "reasoning_effort": default_only(),
    "verbosity": default_only("medium"),
    "store": default_only(False, why=_NOT_KEPT),
    "metadata": default_only({}, why=_NOT_KEPT),
    "service_tier": default_only("auto", "default", why=_OPENAI_ONLY),
    "user": default_only(why=_OPENAI_ONLY),
    "safety_identifier": default_only(why=_OPENAI_ONLY),
    "prompt_cache_key": default_only(why=_OPENAI_ONLY),
    "prompt_cache_retention": default_only(why=_OPENAI_ONLY),
    "prompt_cache_options": default_only(why=_OPENAI_ONLY),
    "moderation": default_only(why=_OPENAI_ONLY),
    "web_search_options": default_only(why="web search is a tool OpenAI runs"),
    "functions": default_only(why="the legacy functions field: use tools"),
    "function_call": default_only(why="the legacy functions field: use tool_choice"),
}
#: Every embeddings field the reroute carries, and how. Any other field is refused.
_EMBED: Mapping[str, Carry] = {
    "model": READ,
    "input": READ,
    "encoding_format": READ,  # float or base64, as send() answers
    "dimensions": option("dimensions"),
    "user": default_only(why=_OPENAI_ONLY),
}

#: The fields of a message of each role the reroute reads; any other field is refused, as are ``name`` (the
#: alternative is told no participant names) and the fields that hand back audio or a refusal.
_MESSAGE: Mapping[str, Mapping[str, Carry]] = {
    role: {
        "role": READ,
        "content": READ,
        "name": default_only(why="the alternative is told no participant names"),
        **extra,
    }
    for role, extra in {
        "system": {},
        "developer": {},
        "user": {},
        "assistant": {
            "tool_calls": READ,
            "refusal": default_only(why="privsdk hands back a turn's content, not its refusal"),
            "audio": default_only(why="privsdk hands back a turn's text, not its audio"),
            "annotations": READ,  # citations of a past answer: narration on what it said, left out
            "function_call": default_only(why="the legacy functions field: use tool_calls"),
        },
        "tool": {"tool_call_id": READ},
    }.items()
}
_IMAGE_URL: Mapping[str, Carry] = {
    "url": READ,
    "detail": default_only("auto", why="privsdk asks the alternative for the image, not for its detail"),
}


def _chat(body: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The privsdk options and messages of a Chat Completions body."""
    options = reroute.carry(body, _CHAT)
    if body.get("stream_options") is not None:
        _stream_options(body["stream_options"])
    if body.get("max_tokens") is not None and body.get("max_completion_tokens") is not None:
        raise Unmappable("both max_tokens and max_completion_tokens (OpenAI takes one)")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise Unmappable("messages that are not a list")
    return options, [_message(m) for m in messages]


def _message(message: Any) -> dict[str, Any]:
    """An OpenAI chat message as privsdk's message dict."""
    role = message.get("role") if isinstance(message, dict) else None
    fields = _MESSAGE.get(role) if isinstance(role, str) else None
    if fields is None or not isinstance(role, str):
        raise Unmappable("a message whose role is not system, developer, user, assistant or tool")
    reroute.check_keys(message, fields, f"a {role} message")
    out: dict[str, Any] = {"role": role, "content": _content(message.get("content"), role)}
    if role == "assistant":
        calls = message.get("tool_calls")
        if calls:
            if not isinstance(calls, list) or not all(
                isinstance(c, dict) and c.get("type", "function") == "function" for c in calls
            ):
                raise Unmappable("an assistant message's tool calls that are not function calls")
            out["tool_calls"] = [reroute.function_call(c) for c in calls]
        out["content"] = out["content"] or None
    if role == "tool":
        out["tool_call_id"] = message.get("tool_call_id")
    return out


def _content(content: Any, role: str) -> str | list[dict[str, Any]]:
    """A message's content: text, or (user messages) text and image parts."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise Unmappable(f"a {role} message's content that is neither text nor a list of parts")
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str) and set(part) == {"type", "text"}:
            parts.append({"type": "text", "text": part["text"]})
        elif (
            kind == "image_url"
            and role == "user"
            and isinstance(part.get("image_url"), dict)
            and set(part) == {"type", "image_url"}
        ):
            image = part["image_url"]
            reroute.check_keys(image, _IMAGE_URL, "an image part")
            if not isinstance(image.get("url"), str):
                raise Unmappable("an image part without a URL")
            parts.append({"type": "image_url", "image_url": {"url": image["url"]}})
        else:
            raise Unmappable(f"a {role} message's content part of type {reroute.part_type(kind)}")
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _embed(body: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The privsdk options and texts of an embeddings body."""
    options = reroute.carry(body, _EMBED)
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise Unmappable("an encoding_format other than float or base64")
    inputs = body.get("input")
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise Unmappable("input that is not text (token arrays are OpenAI's)")
    return options, texts


def _call(out: Outgoing, ticket: Pass) -> tuple[str, dict[str, Any], Any, Mapping[str, Any]]:
    """(kind, privsdk call keywords, messages or texts, the request body) for a rerouted request; refuses
    anything else."""
    kind, options, items = reroute.chat_or_embed(
        out, ticket, "OpenAI", ("/chat/completions",), "/embeddings", _chat, _embed
    )
    return kind, options, items, out.json()


def send(out: Outgoing, ticket: Pass, http: ModuleType) -> Any:
    """Answer a rerouted request from ``ticket.decision.chosen`` (sync clients)."""
    kind, options, items, body = _call(out, ticket)
    client, chosen = reroute.client(ticket.guard), str(ticket.decision.chosen)
    try:
        if kind == "embed":
            answer = client.embed(chosen, items, **options)
            return reroute.json_answer(http, embedding(answer, body.get("encoding_format")))
        if kind == "stream":
            stream = client.chat(chosen, items, stream=True, **options)
            chunks = _Chunks(stream.target.model, _usage_chunk(body))
            return reroute.sse_answer(http, reroute.stream_lines(stream, chunks))
        return reroute.json_answer(http, completion(client.chat(chosen, items, **options)))
    except VendorError as exc:
        return _error(http, exc)


async def asend(out: Outgoing, ticket: Pass, http: ModuleType) -> Any:
    """:func:`send` for async clients."""
    kind, options, items, body = _call(out, ticket)
    client, chosen = reroute.async_client(ticket), str(ticket.decision.chosen)
    try:
        if kind == "embed":
            answer = await client.embed(chosen, items, **options)
            return reroute.json_answer(http, embedding(answer, body.get("encoding_format")))
        if kind == "stream":
            stream = await client.chat(chosen, items, stream=True, **options)
            chunks = _Chunks(stream.target.model, _usage_chunk(body))
            return reroute.sse_answer(http, reroute.astream_lines(stream, chunks))
        return reroute.json_answer(http, completion(await client.chat(chosen, items, **options)))
    except VendorError as exc:
        return _error(http, exc)


def _usage_chunk(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, Mapping) and bool(options.get("include_usage"))


def _error_object(exc: VendorError) -> dict[str, Any]:
    """OpenAI's error object, from privsdk's content-free error (never the vendor's text)."""
    return {"message": str(exc), "type": exc.kind, "code": exc.code or exc.kind, "param": None}


def _error(http: ModuleType, exc: VendorError) -> Any:
    """The failure as OpenAI would answer it: openai retries it by its own rules, with the alternative's delay. An
    alternative that did not answer in time (within the SDK's timeout, :func:`reroute.timeout`) is no answer: raised
    as a timeout of the SDK's transport, which openai retries and raises as its ``APITimeoutError``."""
    reroute.raise_timeout(http, exc)
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
