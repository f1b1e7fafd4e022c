"""privsdk's requests as Chat Completions, Responses API and embeddings bodies, and the answers back.

Bodies are plain JSON-ready dicts and answers are the JSON as sent (dicts, and
one dict per stream event): the adapters send through the SDK's public ``post``
and take its answer untyped (see :mod:`privsdk_openai.adapters`).
"""

from __future__ import annotations

import array
import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from privsdk.errors import ConnectionLost, InvalidInput, PrivsdkError, Unsupported, VendorError
from privsdk.messages import named_tool
from privsdk.types import (
    MESSAGES_ONLY,
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    FinishReason,
    Image,
    Message,
    StreamEnd,
    StreamEvent,
    Text,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from privsdk.vendor_errors import ANSWER_ERRORS, raise_translated, unreadable_answer
from privsdk_openai.errors import in_band

_FINISH: dict[str | None, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
_INCOMPLETE: dict[str | None, FinishReason] = {"max_output_tokens": "length", "content_filter": "content_filter"}
#: The Responses API statuses an answer ends as it is with ("incomplete" and "failed" are read apart; None: the
#: status is optional in the SDK's Response).
_STATUSES = frozenset({None, "completed", "in_progress", "queued", "cancelled"})
_NONE: tuple[StreamEvent, ...] = ()
_NO_USAGE = Usage()
_EMPTY: dict[str, Any] = {}  # what a missing object reads as: only ever read


def _image_url(image: Image) -> str:
    if image.data is not None:
        return f"data:{image.media_type};base64,{base64.b64encode(image.data).decode('ascii')}"
    if image.url is not None:
        return image.url
    raise InvalidInput("an Image needs data or url")


def _text_only(message: Message, who: str) -> str:
    """The text of a message whose role takes no images in this API."""
    if not isinstance(message.content, str) and any(isinstance(p, Image) for p in message.content):
        raise Unsupported(f"{who} takes images in user messages only, not in {message.role} messages")
    return message.text()


def _json_schema(request: ChatRequest) -> dict[str, Any] | None:
    """The response format as both APIs name it, or None for plain text."""
    fmt = request.response_format
    if fmt is None:
        return None
    if fmt.schema is None:
        return {"type": "json_object"}
    out: dict[str, Any] = {"type": "json_schema", "name": fmt.name, "schema": dict(fmt.schema)}
    if fmt.strict is not None:  # as the caller gave it: unset leaves the API's default
        out["strict"] = fmt.strict
    return out


def _sampling(request: ChatRequest, params: dict[str, Any]) -> None:
    """Add the fields both chat APIs name alike."""
    params.update(request.sampling({"temperature": "temperature", "top_p": "top_p"}))


# --- Chat Completions ----------------------------------------------------------------------------------------------


def _chat_message(message: Message, who: str) -> dict[str, Any]:
    role, content = message.role, message.content
    if type(content) is str and role != "tool" and not message.tool_calls:  # a plain text turn, as most are
        return {"role": role, "content": content}
    if role == "user":
        if isinstance(content, str):
            return {"role": "user", "content": content}
        return {
            "role": "user",
            "content": [
                {"type": "text", "text": p.text}
                if isinstance(p, Text)
                else {"type": "image_url", "image_url": {"url": _image_url(p)}}
                for p in content
            ],
        }
    text = _text_only(message, who)
    if role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": text}
    out: dict[str, Any] = {"role": role}
    if text or not message.tool_calls:
        out["content"] = text
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    return out


def chat_params(request: ChatRequest, *, max_tokens_field: str, who: str) -> dict[str, Any]:
    """The Chat Completions body for ``request``, without model, stream and the request's ``extra`` fields."""
    params: dict[str, Any] = {"messages": [_chat_message(m, who) for m in request.messages]}
    if request[1:] == MESSAGES_ONLY:  # no tools, sampling, format or extra fields, as most requests
        return params
    if request.tools:
        params["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "parameters": dict(t.parameters)}
                | ({"description": t.description} if t.description else {})
                | ({"strict": t.strict} if t.strict is not None else {}),
            }
            for t in request.tools
        ]
    if request.tool_choice is not None:
        params["tool_choice"] = request.tool_choice  # a mode, or a named function in this API's own shape
    _sampling(request, params)
    params.update(request.sampling({"max_tokens": max_tokens_field, "stop": "stop", "seed": "seed"}))
    fmt = _json_schema(request)
    if fmt is not None:
        if fmt["type"] == "json_schema":
            fmt = {"type": "json_schema", "json_schema": {k: v for k, v in fmt.items() if k != "type"}}
        params["response_format"] = fmt
    return params


def answer_json(answer: object, vendor: str) -> Any:
    """The answer as the SDK hands it back untyped: its JSON, or, when the server called it something other than
    JSON, its text, read as JSON here as the SDK's typed path would (a page that is not JSON is unreadable)."""
    if not isinstance(answer, str):
        return answer
    try:
        return json.loads(answer)
    except ValueError as exc:  # the decoder's error holds the whole text: never chained
        raise_translated(unreadable_answer(vendor), exc)


def _usage(usage: Any, input_tokens: str, output_tokens: str) -> Usage:
    return Usage(usage.get(input_tokens), usage.get(output_tokens)) if usage is not None else _NO_USAGE


def chat_response(completion: Any, vendor: str, model: str) -> ChatResponse:
    """The answer from a completion's JSON; one without the fields a completion has is
    :func:`~privsdk.vendor_errors.unreadable_answer`.

    Fields the openai SDK's own models let go missing may be missing here too (self-hosted servers leave out
    ``model``, which is then the one asked for, a call's ``id`` or ``arguments``): only what the answer cannot be
    read without is required.
    """
    try:
        completion = answer_json(completion, vendor)
        choice = completion["choices"][0]
        message = choice["message"]
        tool_calls = message.get("tool_calls")
        calls = (
            tuple(
                ToolCall(c.get("id") or "", c["function"]["name"], c["function"].get("arguments") or "")
                for c in tool_calls
                if c.get("type", "function") == "function"
            )
            if tool_calls
            else ()
        )
        return ChatResponse(  # positional, in field order: keywords cost a NamedTuple twice as much, on every call
            message.get("content") or "",  # text
            calls,  # tool_calls
            _FINISH.get(choice.get("finish_reason"), "other"),  # finish_reason
            _usage(completion.get("usage"), "prompt_tokens", "completion_tokens"),
            completion.get("model") or model,
            completion,  # raw
        )
    except ANSWER_ERRORS as exc:
        raise_translated(unreadable_answer(vendor), exc)


class ChunkReader:
    """Turns Chat Completions chunks (their JSON) into stream events and remembers what the final event needs."""

    __slots__ = ("calls", "finish", "model", "usage", "vendor")

    def __init__(self, vendor: str, model: str):
        self.vendor = vendor
        self.model = model
        self.finish: str | None = None
        self.usage = _NO_USAGE
        self.calls = 0  # tool calls begun so far: the index of one a server streams without its index

    def feed(self, chunk: Mapping[str, Any]) -> Sequence[StreamEvent]:
        try:
            choices = chunk.get("choices")
            if not choices:  # the usage chunk, or Azure's opening chunk of prompt filter results
                self._note(chunk)
                return _NONE
            choice = choices[0]
            # Azure's asynchronous content filter sends choices without a delta: its annotations, and a block,
            # which ends the answer with finish reason content_filter.
            delta = choice.get("delta") or _EMPTY
            content = delta.get("content")
            finish = choice.get("finish_reason")
            if content and finish is None and not delta.get("tool_calls"):
                # Most chunks: a piece of text and nothing else. Built by tuple's own constructor: a named tuple's
                # __new__ is a Python function, called here for every chunk of every stream.
                return (tuple.__new__(TextDelta, (content,)),)
            self._note(chunk)
            if finish is not None:
                self.finish = finish
            events: list[StreamEvent] = [TextDelta(content)] if content else []
            for call in delta.get("tool_calls") or ():
                fn = call.get("function") or _EMPTY
                call_id = call.get("id")
                events.append(
                    ToolCallDelta(self._index(call, call_id), call_id, fn.get("name"), fn.get("arguments") or "")
                )
            return events
        except ANSWER_ERRORS as exc:  # an event without a chunk's shape
            raise_translated(unreadable_answer(self.vendor), exc)

    def _index(self, call: Mapping[str, Any], call_id: object) -> int:
        """The call's index as sent; servers that send each call whole in one delta (Ollama and others) send none:
        a delta with an id begins the next call, one without continues the last."""
        index = call.get("index")
        if index is None:
            index = self.calls if call_id else max(self.calls - 1, 0)
        self.calls = max(self.calls, index + 1)
        return index

    def _note(self, chunk: Mapping[str, Any]) -> None:
        model = chunk.get("model")
        if model:  # Azure's opening chunk names no model
            self.model = model
        usage = chunk.get("usage")
        if usage is not None:
            self.usage = _usage(usage, "prompt_tokens", "completion_tokens")

    def end(self) -> StreamEnd:
        """The final event; a stream that closed before the model's finish reason was cut."""
        finish = self.finish
        if finish is None:
            raise ConnectionLost(self.vendor)
        return StreamEnd(_FINISH.get(finish, "other") if type(finish) is str else "other", self.usage, self.model)


# --- Responses API -------------------------------------------------------------------------------------------------


def _responses_item(message: Message, who: str) -> list[dict[str, Any]]:
    role = message.role
    if role == "tool":
        return [{"type": "function_call_output", "call_id": message.tool_call_id, "output": _text_only(message, who)}]
    if role == "user" and not isinstance(message.content, str):
        parts = [
            {"type": "input_text", "text": p.text}
            if isinstance(p, Text)
            else {"type": "input_image", "image_url": _image_url(p), "detail": "auto"}
            for p in message.content
        ]
        return [{"type": "message", "role": "user", "content": parts}]
    text = _text_only(message, who)
    items: list[dict[str, Any]] = []
    if text or not message.tool_calls:
        items.append({"type": "message", "role": role, "content": text})
    items.extend(
        {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls
    )
    return items


def responses_params(request: ChatRequest, *, who: str) -> dict[str, Any]:
    """The Responses API body for ``request``, without model, stream and the request's ``extra`` fields.

    ``store`` is always false: a stored response is kept by the vendor after the
    call, which the policy decision for a plain chat call does not allow for.
    """
    if request.stop:
        raise Unsupported(f"{who} cannot take stop sequences with the Responses API")
    if request.seed is not None:
        raise Unsupported(f"{who} cannot take a seed with the Responses API")
    params: dict[str, Any] = {
        "input": [item for m in request.messages for item in _responses_item(m, who)],
        "store": False,
    }
    if request.tools:
        # The API requires strict on every function tool and holds one sent none to its schema, which most
        # schemas do not meet (every property required, no additional ones): unset is sent as false.
        params["tools"] = [
            {"type": "function", "name": t.name, "parameters": dict(t.parameters), "strict": bool(t.strict)}
            | ({"description": t.description} if t.description else {})
            for t in request.tools
        ]
    choice = request.tool_choice
    if choice is not None:
        # A named function is flat here: {"type": "function", "name": ...}, not Chat Completions' nested one.
        params["tool_choice"] = choice if isinstance(choice, str) else {"type": "function", "name": named_tool(choice)}
    _sampling(request, params)
    if request.max_tokens is not None:
        params["max_output_tokens"] = request.max_tokens
    fmt = _json_schema(request)
    if fmt is not None:
        params["text"] = {"format": fmt}
    return params


def _responses_finish(response: Mapping[str, Any], calls: bool, vendor: str) -> FinishReason:
    status = response.get("status")  # optional in the SDK's Response: one without it is complete
    if status == "incomplete":
        details = response.get("incomplete_details")
        return _INCOMPLETE.get(details.get("reason") if details else None, "other")
    if status not in _STATUSES:  # no status the API has: not a response
        raise unreadable_answer(vendor)
    return "tool_calls" if calls else "stop"


def _output_text(response: Mapping[str, Any]) -> str:
    """The text of every ``output_text`` part of the output's messages, as the SDK's ``Response.output_text``."""
    return "".join(
        part["text"] or ""
        for item in response["output"]
        if item.get("type") == "message"
        for part in item["content"]
        if part.get("type") == "output_text"
    )


def _failed(vendor: str, error: Any) -> VendorError:
    return in_band(vendor, error.get("code") if error else None)


def responses_response(response: Any, vendor: str, model: str) -> ChatResponse:
    """The answer from a Responses API response's JSON; a failed response is its in-band error."""
    try:
        response = answer_json(response, vendor)
        if response.get("status") == "failed":
            raise _failed(vendor, response.get("error"))
        calls = tuple(
            ToolCall(item.get("call_id") or "", item["name"], item.get("arguments") or "")
            for item in response["output"]
            if item.get("type") == "function_call"
        )
        return ChatResponse(
            text=_output_text(response),
            tool_calls=calls,
            finish_reason=_responses_finish(response, bool(calls), vendor),
            usage=_usage(response.get("usage"), "input_tokens", "output_tokens"),
            model=response.get("model") or model,
            raw=response,
        )
    except PrivsdkError:
        raise
    except ANSWER_ERRORS as exc:
        raise_translated(unreadable_answer(vendor), exc)


class ResponsesEventReader:
    """Turns Responses API stream events (their JSON) into stream events; the stream ends at ``response.completed``."""

    __slots__ = ("calls", "final", "model", "vendor")

    def __init__(self, vendor: str, model: str):
        self.vendor = vendor
        self.model = model
        self.calls: dict[int, int] = {}  # output_index -> our tool call number
        self.final: Mapping[str, Any] | None = None

    def feed(self, event: Mapping[str, Any]) -> Sequence[StreamEvent]:
        try:
            return self._read(event, event.get("type"))
        except PrivsdkError:
            raise
        except ANSWER_ERRORS as exc:  # an event without the shape its type has
            raise_translated(unreadable_answer(self.vendor), exc)

    def _read(self, event: Mapping[str, Any], kind: object) -> Sequence[StreamEvent]:
        if kind == "response.output_text.delta":
            return (TextDelta(event["delta"]),)
        if kind == "response.function_call_arguments.delta":
            return (ToolCallDelta(self.calls[event["output_index"]], arguments=event["delta"]),)
        if kind == "response.output_item.added":
            item = event["item"]
            if item.get("type") != "function_call":
                return _NONE
            call = self.calls[event["output_index"]] = len(self.calls)
            return (ToolCallDelta(call, item.get("call_id"), item.get("name"), item.get("arguments") or ""),)
        if kind == "response.completed" or kind == "response.incomplete":
            self.final = event["response"]
        elif kind == "response.created":
            self.model = event["response"].get("model") or self.model
        elif kind == "response.failed":
            raise _failed(self.vendor, event["response"].get("error"))
        elif kind == "error":
            raise in_band(self.vendor, event.get("code"))
        return _NONE

    def end(self) -> StreamEnd:
        final = self.final
        if final is None:
            raise ConnectionLost(self.vendor)
        try:
            finish = _responses_finish(final, bool(self.calls), self.vendor)
            usage = _usage(final.get("usage"), "input_tokens", "output_tokens")
            return StreamEnd(finish, usage, final.get("model") or self.model)
        except ANSWER_ERRORS as exc:
            raise_translated(unreadable_answer(self.vendor), exc)


# --- Embeddings ----------------------------------------------------------------------------------------------------


def embed_params(request: EmbedRequest, *, encoding_format: str, who: str) -> dict[str, Any]:
    """The embeddings body, without model and the request's ``extra`` fields."""
    if request.input_type is not None:
        raise Unsupported(f"{who} embeds every text alike and cannot take input_type {request.input_type!r}")
    params: dict[str, Any] = {"input": list(request.texts), "encoding_format": encoding_format}
    if request.dimensions is not None:
        params["dimensions"] = request.dimensions
    return params


def _floats(vector: list[float] | str) -> list[float]:
    # OpenAI's and Azure's answers are base64 (asked for: a third of the bytes), compatible servers' floats.
    return array.array("f", base64.b64decode(vector)).tolist() if isinstance(vector, str) else vector


def embed_response(response: Any, vendor: str, model: str, texts: int) -> EmbedResponse:
    """Vectors in input order from an embeddings answer's JSON, floats or base64 as the server sent them; an answer
    without one vector for each text, by index, is unreadable (the app would pair texts with wrong vectors, or none).
    """
    try:
        response = answer_json(response, vendor)
        data = sorted(response["data"], key=lambda d: d["index"])
        if [d["index"] for d in data] != list(range(texts)):
            raise unreadable_answer(vendor)
        usage = response.get("usage")
        return EmbedResponse(
            vectors=[_floats(d["embedding"]) for d in data],
            usage=Usage(usage.get("prompt_tokens"), None) if usage is not None else _NO_USAGE,
            model=response.get("model") or model,
            raw=response,
        )
    except PrivsdkError:
        raise
    except ANSWER_ERRORS as exc:
        raise_translated(unreadable_answer(vendor), exc)
