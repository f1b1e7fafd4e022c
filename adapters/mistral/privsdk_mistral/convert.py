"""privsdk requests to the mistralai SDK's keyword arguments, and its answers back to privsdk shapes.

Requests are built as plain dicts (the SDK's TypedDict forms), which both ``Mistral`` and ``MistralAzure``
accept, so one converter serves both clients. No SDK import here: the answers are read by attribute.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import re
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any

from privsdk.config import shown_key
from privsdk.errors import Unsupported
from privsdk.types import (
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

#: Mistral's finish reasons; ``model_length`` is the context window running out.
FINISH: Mapping[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "model_length": "length",
    "tool_calls": "tool_calls",
    "error": "error",
}
#: Mistral calls "must call a tool" ``any``.
#: privsdk's sampling settings under Mistral's names.
_SAMPLING = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_tokens",
    "stop": "stop",
    "seed": "random_seed",
}
TOOL_CHOICE = {"auto": "auto", "none": "none", "required": "any"}
#: SDK method parameters that ``request.extra`` cannot set.
_NOT_BODY = frozenset(
    {"self", "retries", "server_url", "timeout_ms", "http_headers", "stream", "model", "messages", "inputs"}
)
_MISTRAL_CALL_ID = re.compile(r"[A-Za-z0-9]{9}")


def call_id(id: str) -> str:
    """A tool call id la Plateforme accepts (exactly 9 letters or digits), the same for the same id.

    Mistral rejects any other id with a 400, so a conversation whose tool calls came from another vendor
    (a fallback or a reroute) would fail: such ids are replaced by 9 hex digits of their hash, which keeps
    each assistant tool call paired with the tool message that answers it.
    """
    return id if _MISTRAL_CALL_ID.fullmatch(id) else hashlib.sha256(id.encode()).hexdigest()[:9]


@lru_cache(maxsize=8)
def body_fields(function: Callable[..., Any]) -> frozenset[str]:
    """The body fields an SDK method can take from ``extra``: its parameters less the transport ones and
    those the adapter owns (the model is the target's, the messages or inputs are the request's)."""
    return frozenset(inspect.signature(function).parameters) - _NOT_BODY


def merge_extra(kwargs: dict[str, Any], extra: Mapping[str, Any], method: Callable[..., Any]) -> dict[str, Any]:
    """``kwargs`` with ``extra`` merged over it. The SDK builds the body from its own parameters only, so a
    field it has no parameter for cannot be sent: that raises rather than being dropped."""
    if extra:
        refused = set(extra) - body_fields(getattr(method, "__func__", method))
        if refused:
            shown = ", ".join(sorted(shown_key(field) for field in refused))  # a name, or a placeholder
            raise Unsupported(
                f"extra body field(s) {shown}: the mistralai SDK has no parameter for them, or the adapter sets them"
                " itself"
            )
        kwargs.update(extra)
    return kwargs


def chat_kwargs(request: ChatRequest, model: str) -> dict[str, Any]:
    """The keyword arguments of ``chat.complete``/``chat.stream`` for ``request``, before ``extra``."""
    kwargs: dict[str, Any] = {"model": model, "messages": messages(request.messages)}
    if request.tools:
        kwargs["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "parameters": dict(t.parameters)}
                | ({"description": t.description} if t.description else {})
                | ({"strict": t.strict} if t.strict is not None else {}),
            }
            for t in request.tools
        ]
    if request.tool_choice is not None:
        choice = TOOL_CHOICE.get(request.tool_choice) if isinstance(request.tool_choice, str) else None
        if choice is None:
            raise Unsupported("Mistral takes tool_choice 'auto', 'none' or 'required' only")
        kwargs["tool_choice"] = choice
    kwargs.update(request.sampling(_SAMPLING))
    fmt = request.response_format
    if fmt is not None:
        if fmt.schema is None:
            kwargs["response_format"] = {"type": "json_object"}
        else:
            spec: dict[str, Any] = {"name": fmt.name, "schema": dict(fmt.schema)}
            if fmt.strict is not None:  # as the caller gave it: unset leaves Mistral's default
                spec["strict"] = fmt.strict
            kwargs["response_format"] = {"type": "json_schema", "json_schema": spec}
    return kwargs


def messages(turns: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Mistral messages; a tool message also names its function, looked up from the call it answers."""
    names: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for turn in turns:
        message: dict[str, Any] = {"role": turn.role}
        if turn.role == "assistant" and turn.tool_calls:
            # The SDK would number every call 0; the index says which of the turn's calls each one is.
            message["tool_calls"] = [
                {
                    "id": call_id(c.id),
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                    "index": i,
                }
                for i, c in enumerate(turn.tool_calls)
            ]
            names.update((c.id, c.name) for c in turn.tool_calls)
            if turn.content:
                message["content"] = content(turn)
        else:
            message["content"] = content(turn)
        if turn.role == "tool":
            if turn.tool_call_id is None:
                raise Unsupported("a Mistral tool message must name the tool call it answers (tool_call_id)")
            message["tool_call_id"] = call_id(turn.tool_call_id)
            if turn.tool_call_id in names:
                message["name"] = names[turn.tool_call_id]
        out.append(message)
    return out


def content(turn: Message) -> str | list[dict[str, Any]]:
    """A message's content: a string, or text and (user turns only) image_url chunks."""
    if isinstance(turn.content, str):
        return turn.content
    chunks: list[dict[str, Any]] = []
    for part in turn.content:
        if isinstance(part, Text):
            chunks.append({"type": "text", "text": part.text})
        elif turn.role == "user":
            chunks.append({"type": "image_url", "image_url": image_url(part)})
        else:
            raise Unsupported(f"Mistral takes images in user messages only, not in {turn.role} messages")
    return chunks


def image_url(image: Image) -> str:
    """The URL Mistral fetches, or the inline bytes as a data URL."""
    if image.data is not None:
        return f"data:{image.media_type};base64,{base64.b64encode(image.data).decode()}"
    if image.url is None:
        raise Unsupported("an image needs data or a url")
    return image.url


def text_of(content: Any) -> str:
    """The text of an SDK message content: a string, or the text chunks of a list (thinking chunks left out)."""
    if isinstance(content, str):
        return content
    if not content:
        return ""
    return "".join(chunk.text for chunk in content if getattr(chunk, "type", None) == "text")


def arguments(value: Any) -> str:
    """Tool call arguments as JSON text; the SDK types them as a string or an already decoded object."""
    return value if isinstance(value, str) else json.dumps(value)


def usage(info: Any) -> Usage:
    """Usage from the SDK's UsageInfo, None where the vendor did not report a count (the SDK would say 0)."""
    if info is None:
        return Usage()
    reported = info.model_fields_set
    return Usage(
        info.prompt_tokens if "prompt_tokens" in reported else None,
        info.completion_tokens if "completion_tokens" in reported else None,
    )


def chat_response(response: Any) -> ChatResponse:
    if not response.choices:
        return ChatResponse("", (), "other", usage(response.usage), response.model, response)
    choice = response.choices[0]
    message = choice.message
    calls = (
        tuple(ToolCall(c.id, c.function.name, arguments(c.function.arguments)) for c in message.tool_calls or ())
        if message
        else ()
    )
    return ChatResponse(
        text_of(message.content) if message else "",
        calls,
        FINISH.get(choice.finish_reason, "other"),
        usage(response.usage),
        response.model,
        response,
    )


class StreamReader:
    """Turns the SDK's completion events into privsdk stream events, keeping what the last one needs."""

    __slots__ = ("calls", "finish", "model", "usage")

    def __init__(self, model: str):
        self.model = model
        self.finish: FinishReason | None = None
        self.usage = Usage()
        #: Mistral's tool call index -> privsdk's call number, in order of first appearance.
        self.calls: dict[int, int] = {}

    def read(self, event: Any) -> tuple[StreamEvent, ...]:
        chunk = event.data
        self.model = chunk.model
        if chunk.usage is not None:
            self.usage = usage(chunk.usage)
        if not chunk.choices:
            return ()
        choice = chunk.choices[0]
        delta = choice.delta
        if choice.finish_reason is not None:
            self.finish = FINISH.get(choice.finish_reason, "other")
        text = delta.content
        if type(text) is not str:
            text = text_of(text)
        if not delta.tool_calls:
            return (TextDelta(text),) if text else ()
        return ((TextDelta(text),) if text else ()) + tuple(self._calls(delta.tool_calls))

    def _calls(self, calls: Any) -> Iterator[ToolCallDelta]:
        for call in calls:
            number = self.calls.get(call.index)
            if number is None:
                number = self.calls[call.index] = len(self.calls)
                yield ToolCallDelta(number, call.id, call.function.name, arguments(call.function.arguments))
            else:
                yield ToolCallDelta(number, arguments=arguments(call.function.arguments))

    def end(self) -> StreamEnd | None:
        """The closing event, or None when the stream stopped before the model said why it finished."""
        if self.finish is None:
            return None
        return StreamEnd(self.finish, self.usage, self.model)


def embed_kwargs(request: EmbedRequest, model: str) -> dict[str, Any]:
    """``embeddings.create`` arguments; Mistral has no input types, so an ``input_type`` is Unsupported: sent
    without it, the vectors of queries and of documents would not be what the caller asked for."""
    if request.input_type is not None:
        raise Unsupported(f"Mistral embeds every text alike and cannot take input_type {request.input_type!r}")
    kwargs: dict[str, Any] = {"model": model, "inputs": list(request.texts)}
    if request.dimensions is not None:
        kwargs["output_dimension"] = request.dimensions
    return kwargs


def embed_response(response: Any) -> EmbedResponse:
    data = sorted(response.data, key=lambda d: d.index or 0)
    return EmbedResponse([list(d.embedding or ()) for d in data], usage(response.usage), response.model, response)
