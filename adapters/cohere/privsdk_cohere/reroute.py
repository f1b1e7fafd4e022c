"""Rerouted requests of the cohere drop-in, answered in Cohere's v2 wire format.

When the guard refuses a request from a cohere client and the tenant's
reroute list names an alternative whose own decision is allow, the drop-in's
transport does not send the request. It makes the same call through a
:class:`privsdk.Client` to the alternative (a private Cohere deployment, or
another vendor for chat and embeddings) and answers with the JSON, or the
server-sent events, that Cohere's v2 API would have sent. The SDK then parses
that answer as it always does: the app gets cohere's types.

Only the v2 API's chat (``/v2/chat``, plain and streamed) and embed
(``/v2/embed``) reroute. Anything else -- v1 endpoints, rerank, datasets,
fine-tuning, and the Bedrock, SageMaker and OCI clients, whose requests leave
in those clouds' formats -- is refused, and so is a body the reroute cannot
carry as asked: the tables below list every field it carries and how; a
field at any value but its default (grounding ``documents``, ``logprobs``,
``k``, penalties, ``thinking``, ``truncate``, ...), and a field no table
names, is refused. Refusals name fields, never their values.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

from privsdk.errors import VendorError
from privsdk.outbound import reroute
from privsdk.outbound.judge import Pass
from privsdk.outbound.outgoing import Outgoing
from privsdk.types import ChatResponse, EmbedResponse, ResponseFormat, StreamEnd, StreamEvent, TextDelta, ToolCallDelta
from privsdk.usage.record import new_request_id

#: privsdk's finish reasons in Cohere's words. A filtered answer did not complete: Cohere says ERROR.
_FINISH = {"stop": "COMPLETE", "length": "MAX_TOKENS", "tool_calls": "TOOL_CALL", "error": "ERROR"}
_FINISH_FILTERED = "ERROR"
_TOOL_CHOICE = {"REQUIRED": "required", "NONE": "none"}
_ONE_ANSWER = "the reroute answers with text and tool calls only"
_COHERE_ONLY = "it is meant for Cohere's own service, which the alternative is not"


def _tools(tools: Any) -> list[dict[str, Any]] | None:
    if not isinstance(tools, list) or not all(isinstance(t, dict) and t.get("type") == "function" for t in tools):
        raise reroute.Unmappable("a tool that is not a function")
    for tool in tools:
        reroute.check_keys(tool, {"type": reroute.READ, "function": reroute.READ}, "a function tool")
        function = tool.get("function")
        if not isinstance(function, dict):
            raise reroute.Unmappable("a function tool without a function")
        reroute.check_keys(function, _FUNCTION, "a function tool")
    return tools or None  # v2 tools have OpenAI's shape, which privsdk takes


def _tool_choice(choice: Any) -> str:
    if not isinstance(choice, str) or choice not in _TOOL_CHOICE:
        raise reroute.Unmappable("a tool_choice other than REQUIRED or NONE")
    return _TOOL_CHOICE[choice]


def _stop(stops: Any) -> list[str] | None:
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise reroute.Unmappable("stop_sequences that are not a list of texts")
    return list(stops) or None


def _response_format(value: Any) -> ResponseFormat | None:
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "text" and set(value) == {"type"}:
        return None
    if kind == "json_object" and set(value) <= {"type", "json_schema"}:
        schema = value.get("json_schema")
        if schema is not None and not isinstance(schema, Mapping):
            raise reroute.Unmappable("a response_format json_schema that is not an object")
        return ResponseFormat(schema)
    raise reroute.Unmappable("a response_format other than text or json_object")


_FUNCTION: Mapping[str, reroute.Carry] = {"name": reroute.READ, "description": reroute.READ, "parameters": reroute.READ}
#: Every v2 chat field the reroute carries, and how (see :class:`privsdk.outbound.reroute.Carry`). Any other field
#: is refused.
_CHAT: Mapping[str, reroute.Carry] = {
    "model": reroute.READ,  # the alternative's own model answers
    "messages": reroute.READ,
    "stream": reroute.READ,
    "tools": reroute.option("tools", _tools),
    "tool_choice": reroute.option("tool_choice", _tool_choice),
    "temperature": reroute.option("temperature"),
    "p": reroute.option("top_p"),
    "max_tokens": reroute.option("max_tokens"),
    "stop_sequences": reroute.option("stop", _stop),
    "seed": reroute.option("seed"),
    "response_format": reroute.option("response_format", _response_format),
    "documents": reroute.default_only([], why="grounded generation, with citations, is Cohere's"),
    "citation_options": reroute.default_only({"mode": "OFF"}, why="the reroute's answer carries no citations"),
    "strict_tools": reroute.default_only(
        False, why="privsdk cannot make the alternative hold tool calls to the schemas"
    ),
    "logprobs": reroute.default_only(False, why="the alternative's answer carries no log probabilities"),
    "safety_mode": reroute.default_only("CONTEXTUAL", why="Cohere's safety modes are Cohere's system prompts"),
    "thinking": reroute.default_only({"type": "disabled"}, why=_ONE_ANSWER),
    "frequency_penalty": reroute.default_only(0),
    "presence_penalty": reroute.default_only(0),
    "k": reroute.default_only(0),
    "priority": reroute.default_only(0, why=_COHERE_ONLY),
}
#: Every v2 embed field the reroute carries, and how. Any other field is refused.
_EMBED: Mapping[str, reroute.Carry] = {
    "model": reroute.READ,
    "texts": reroute.READ,
    "inputs": reroute.READ,
    "embedding_types": reroute.READ,  # float only, as the reroute answers
    "input_type": reroute.option("input_type"),
    "output_dimension": reroute.option("dimensions"),
    "images": reroute.default_only([], why="privsdk embeds text only"),
    "truncate": reroute.default_only("END", why="privsdk cannot tell the alternative how to cut a long input"),
    "max_tokens": reroute.default_only(why="privsdk cannot tell the alternative how to cut a long input"),
    "priority": reroute.default_only(0, why=_COHERE_ONLY),
}
_INPUT_TYPES = frozenset({"search_document", "search_query", "classification", "clustering"})
#: The fields of a message of each role the reroute reads; any other field is refused.
_MESSAGE: Mapping[str, Mapping[str, reroute.Carry]] = {
    "user": {"role": reroute.READ, "content": reroute.READ},
    "system": {"role": reroute.READ, "content": reroute.READ},
    # The tool plan and citations are Cohere's narration of the turn, not what the model said: left out.
    "assistant": {
        "role": reroute.READ,
        "content": reroute.READ,
        "tool_calls": reroute.READ,
        "tool_plan": reroute.READ,
        "citations": reroute.READ,
    },
    "tool": {"role": reroute.READ, "content": reroute.READ, "tool_call_id": reroute.READ},
}


def _call(out: Outgoing, ticket: Pass) -> tuple[str, dict[str, Any], Any]:
    """(kind, privsdk call keywords, messages or texts) for a rerouted request; refuses anything else."""
    return reroute.chat_or_embed(out, ticket, "Cohere", ("/v2/chat",), "/v2/embed", _chat, _embed)


def _chat(body: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The privsdk options and messages of a v2 chat body."""
    options = reroute.carry(body, _CHAT)
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise reroute.Unmappable("messages that are not a list")
    return options, [_message(m) for m in messages]


def _message(message: Any) -> dict[str, Any]:
    """A v2 chat message as privsdk's (OpenAI-shaped) message dict."""
    role = message.get("role") if isinstance(message, dict) else None
    fields = _MESSAGE.get(role) if isinstance(role, str) else None
    if fields is None:
        raise reroute.Unmappable("a message whose role is not user, system, assistant or tool")
    reroute.check_keys(message, fields, f"a {role} message")
    content = message.get("content")
    if role == "user":
        if isinstance(content, list):
            return {"role": "user", "content": [_user_part(p) for p in content]}
        return {"role": "user", "content": content or ""}
    if role == "system":
        return {"role": "system", "content": _text(content, ("text",))}
    if role == "assistant":
        # The tool plan and citations are Cohere's narration of the turn, not what the model said: left out.
        out: dict[str, Any] = {"role": "assistant", "content": _text(content, ("text",), skip=("thinking",)) or None}
        calls = message.get("tool_calls")
        if calls:
            out["tool_calls"] = [reroute.function_call(c) for c in calls]
        return out
    if role == "tool":
        return {"role": "tool", "tool_call_id": message.get("tool_call_id"), "content": _text(content, ("text",))}
    raise reroute.Unmappable("a message whose role is not user, system, assistant or tool")


def _user_part(part: Any) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and set(part) == {"type", "text"}:
        return {"type": "text", "text": part.get("text")}
    if kind == "image_url" and isinstance(part.get("image_url"), dict) and set(part) == {"type", "image_url"}:
        reroute.check_keys(part["image_url"], _IMAGE_URL, "an image part")
        return {"type": "image_url", "image_url": {"url": part["image_url"].get("url")}}
    raise reroute.Unmappable("a user content part that is neither text nor an image URL")


def _text(content: Any, kinds: tuple[str, ...], skip: tuple[str, ...] = ()) -> str:
    """A message's content as text. A tool result's documents become their JSON, as the model reads them."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise reroute.Unmappable("message content that is neither text nor a list of parts")
    pieces: list[str] = []
    documents = False
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in skip:
            continue
        if kind in kinds and isinstance(part.get("text"), str):
            pieces.append(part["text"])
        elif kind == "document" and isinstance(part.get("document"), dict):
            data = part["document"].get("data")
            pieces.append(data if isinstance(data, str) else json.dumps(data, ensure_ascii=False))
            documents = True
        else:
            raise reroute.Unmappable(f"a message content part of type {reroute.part_type(kind)}")
    return ("\n" if documents else "").join(pieces)  # one document a line; text parts run on, as they were cut


_IMAGE_URL: Mapping[str, reroute.Carry] = {
    "url": reroute.READ,
    "detail": reroute.default_only("auto", why="privsdk asks the alternative for the image, not for its detail"),
}


def _embed(body: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The privsdk options and texts of a v2 embed body."""
    options = reroute.carry(body, _EMBED)
    kinds = body.get("embedding_types")
    if kinds is not None and (not isinstance(kinds, list) or set(kinds) != {"float"}):
        raise reroute.Unmappable("embedding_types other than float")
    input_type = options.get("input_type")
    if input_type is not None and input_type not in _INPUT_TYPES:
        raise reroute.Unmappable("an input_type other than search_document, search_query, classification or clustering")
    texts = body.get("texts")
    inputs = body.get("inputs")
    if inputs:
        if texts:
            raise reroute.Unmappable("both texts and inputs")
        if not isinstance(inputs, list):
            raise reroute.Unmappable("inputs that are not a list")
        texts = [_input_text(i) for i in inputs]
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise reroute.Unmappable("texts that are not a list of strings")
    return options, texts


def _input_text(item: Any) -> str:
    """An ``inputs`` entry that is one piece of text (several pieces are embedded as Cohere combines them)."""
    content = item.get("content") if isinstance(item, dict) and set(item) == {"content"} else None
    if isinstance(content, list) and len(content) == 1 and isinstance(content[0], dict):
        part = content[0]
        if part.get("type") == "text" and isinstance(part.get("text"), str) and set(part) == {"type", "text"}:
            return str(part["text"])
    raise reroute.Unmappable("inputs that are not one text each")


def send(out: Outgoing, ticket: Pass, http: ModuleType) -> Any:
    """Answer a rerouted request from ``ticket.decision.chosen`` (sync clients)."""
    kind, options, items = _call(out, ticket)
    client, chosen = reroute.client(ticket.guard), str(ticket.decision.chosen)
    try:
        if kind == "embed":
            return reroute.json_answer(http, embedding(client.embed(chosen, items, **options), items))
        if kind == "stream":
            stream = client.chat(chosen, items, stream=True, **options)
            return reroute.sse_answer(http, reroute.stream_lines(stream, _Events()))
        return reroute.json_answer(http, chat(client.chat(chosen, items, **options)))
    except VendorError as exc:
        return _error(http, exc)


async def asend(out: Outgoing, ticket: Pass, http: ModuleType) -> Any:
    """:func:`send` for async clients."""
    kind, options, items = _call(out, ticket)
    client, chosen = reroute.async_client(ticket), str(ticket.decision.chosen)
    try:
        if kind == "embed":
            return reroute.json_answer(http, embedding(await client.embed(chosen, items, **options), items))
        if kind == "stream":
            stream = await client.chat(chosen, items, stream=True, **options)
            return reroute.sse_answer(http, reroute.astream_lines(stream, _Events()))
        return reroute.json_answer(http, chat(await client.chat(chosen, items, **options)))
    except VendorError as exc:
        return _error(http, exc)


def _error(http: ModuleType, exc: VendorError) -> Any:
    """The failure as Cohere would answer it, from privsdk's content-free error (never the vendor's text). An
    alternative that did not answer within the SDK's timeout is a timeout of the SDK's transport."""
    reroute.raise_timeout(http, exc)
    return http.Response(
        reroute.status(exc), headers=reroute.retry_after(exc), json={"id": new_request_id(), "message": str(exc)}
    )


def _usage(input_tokens: int | None, output_tokens: int | None) -> dict[str, Any]:
    counts = {"input_tokens": input_tokens or 0, "output_tokens": output_tokens or 0}
    return {"billed_units": counts, "tokens": dict(counts)}


def _finish(reason: str) -> str:
    return _FINISH_FILTERED if reason == "content_filter" else _FINISH.get(reason, "COMPLETE")


def chat(response: ChatResponse) -> dict[str, Any]:
    """A Cohere v2 chat answer for a privsdk answer."""
    message: dict[str, Any] = {"role": "assistant"}
    if response.text or not response.tool_calls:
        message["content"] = [{"type": "text", "text": response.text}]
    if response.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in response.tool_calls
        ]
    return {
        "id": new_request_id(),
        "finish_reason": _finish(response.finish_reason),
        "message": message,
        "usage": _usage(response.usage.input_tokens, response.usage.output_tokens),
    }


def _event(body: Mapping[str, Any]) -> bytes:
    """One v2 stream event: its name repeats the body's ``type``."""
    return f"event: {body['type']}\ndata: {json.dumps(body)}\n\n".encode()


class _Events:
    """privsdk stream events as Cohere v2 stream events: message-start, content and tool-call blocks, message-end."""

    def __init__(self) -> None:
        self.started = False
        self.text_open = False
        self.call: int | None = None  # the tool call whose block is open

    def _start(self) -> Iterator[bytes]:
        if not self.started:
            self.started = True
            message = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": []}
            yield _event({"type": "message-start", "id": new_request_id(), "delta": {"message": message}})

    def _close(self) -> Iterator[bytes]:
        if self.text_open:
            self.text_open = False
            yield _event({"type": "content-end", "index": 0})
        if self.call is not None:
            yield _event({"type": "tool-call-end", "index": self.call})
            self.call = None

    def __call__(self, event: StreamEvent) -> Iterator[bytes]:
        yield from self._start()
        if isinstance(event, TextDelta):
            if not self.text_open:
                yield from self._close()
                self.text_open = True
                start = {"message": {"content": {"type": "text", "text": ""}}}
                yield _event({"type": "content-start", "index": 0, "delta": start})
            delta = {"message": {"content": {"text": event.text}}}
            yield _event({"type": "content-delta", "index": 0, "delta": delta})
        elif isinstance(event, ToolCallDelta):
            if event.call != self.call:
                yield from self._close()
                self.call = event.call
                function = {"name": event.name or "", "arguments": ""}
                started = {"id": event.id or "", "type": "function", "function": function}
                yield _event(
                    {"type": "tool-call-start", "index": event.call, "delta": {"message": {"tool_calls": started}}}
                )
            if event.arguments:
                piece = {"message": {"tool_calls": {"function": {"arguments": event.arguments}}}}
                yield _event({"type": "tool-call-delta", "index": event.call, "delta": piece})
        elif isinstance(event, StreamEnd):
            yield from self._close()
            usage = _usage(event.usage.input_tokens, event.usage.output_tokens)
            end = {"finish_reason": _finish(event.finish_reason), "usage": usage}
            yield _event({"type": "message-end", "delta": end})

    def failed(self, exc: VendorError) -> Iterator[bytes]:
        """The alternative failed mid-stream: Cohere says so in-band, with finish reason ERROR (and no vendor text)."""
        yield from self._start()
        yield from self._close()
        yield _event({"type": "message-end", "delta": {"error": str(exc), "finish_reason": "ERROR", "usage": None}})


def embedding(response: EmbedResponse, texts: list[str]) -> dict[str, Any]:
    """A Cohere v2 ``embeddings_by_type`` answer with float vectors."""
    return {
        "id": new_request_id(),
        "response_type": "embeddings_by_type",
        "embeddings": {"float": response.vectors},
        "texts": texts,
        "meta": {
            "api_version": {"version": "2"},
            "billed_units": {"input_tokens": response.usage.input_tokens or 0},
        },
    }
