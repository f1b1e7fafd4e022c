"""privsdk requests as Cohere v2 request bodies, and Cohere v2 answers as privsdk responses.

The body parts are plain dicts in Cohere's wire shape (the SDK sends dicts as they are). Answers
arrive as the SDK's models, which it parses leniently, so a field the vendor left out reads as None.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from privsdk.errors import Unavailable, Unsupported
from privsdk.types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    FinishReason,
    Image,
    Message,
    Ranked,
    RerankRequest,
    RerankResponse,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from privsdk.usage.record import MAX_COUNT
from privsdk.vendor_errors import ANSWER_ERRORS, unreadable_answer
from privsdk_cohere.errors import VENDOR

if TYPE_CHECKING:
    from cohere.core.request_options import RequestOptions
    from cohere.types import EmbedByTypeResponse
    from cohere.types import Usage as CohereUsage
    from cohere.v2.types import V2ChatResponse, V2RerankResponse

_FINISH: dict[str, FinishReason] = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
    "ERROR": "error",
}
#: privsdk's sampling settings under Cohere's names.
_SAMPLING = {
    "temperature": "temperature",
    "top_p": "p",
    "max_tokens": "max_tokens",
    "stop": "stop_sequences",
    "seed": "seed",
}
_TOOL_CHOICE = {"none": "NONE", "required": "REQUIRED"}  # "auto" is Cohere's default: the field is left out
#: Cohere v2 requires an input type for embed v3 and later; a request that names none is embedding documents.
DEFAULT_INPUT_TYPE = "search_document"


def request_options(timeout: float, extra: Mapping[str, Any]) -> RequestOptions:
    """Per call: the time bound, no SDK retries (privsdk owns retries), and ``extra`` merged into the body."""
    if extra:
        return {"timeout": timeout, "max_retries": 0, "additional_body_parameters": dict(extra)}
    return {"timeout": timeout, "max_retries": 0}


def chat_body(request: ChatRequest) -> dict[str, Any]:
    """The chat fields of ``request`` (all but the model); raises Unsupported for what Cohere cannot take."""
    body: dict[str, Any] = {"messages": [_message(m) for m in request.messages]}
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": (
                    {"name": t.name, "description": t.description, "parameters": dict(t.parameters)}
                    if t.description
                    else {"name": t.name, "parameters": dict(t.parameters)}
                ),
            }
            for t in request.tools
        ]
        if any(t.strict for t in request.tools):
            if not all(t.strict for t in request.tools):  # Cohere's strict_tools holds every tool, or none
                raise Unsupported("Cohere takes strict for all the tools of a request or for none (strict_tools)")
            body["strict_tools"] = True
    if request.tool_choice is not None and request.tool_choice != "auto":
        choice = _TOOL_CHOICE.get(request.tool_choice) if isinstance(request.tool_choice, str) else None
        if choice is None:
            raise Unsupported("Cohere takes tool_choice 'auto', 'none' or 'required' only")
        body["tool_choice"] = choice
    body.update(request.sampling(_SAMPLING))
    if request.response_format is not None:
        if request.tools:
            raise Unsupported("Cohere cannot combine response_format with tools in one chat request")
        schema = request.response_format.schema
        body["response_format"] = (
            {"type": "json_object"} if schema is None else {"type": "json_object", "json_schema": dict(schema)}
        )
    return body


def _message(message: Message) -> dict[str, Any]:
    role = message.role
    if role == "user":
        content = message.content
        if isinstance(content, str):
            return {"role": "user", "content": content}
        return {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": _image_url(p)}}
                if isinstance(p, Image)
                else {"type": "text", "text": p.text}
                for p in content
            ],
        }
    text = _text(message)
    if role == "assistant":
        out: dict[str, Any] = {"role": "assistant"}
        if text or not message.tool_calls:
            out["content"] = text
        if message.tool_calls:
            out["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in message.tool_calls
            ]
        return out
    if role == "tool":
        if message.tool_call_id is None:
            raise Unsupported("Cohere needs the tool_call_id of every tool message")
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": text}
    return {"role": "system", "content": text}


def _text(message: Message) -> str:
    if not isinstance(message.content, str) and any(isinstance(p, Image) for p in message.content):
        raise Unsupported(f"Cohere takes images in user messages only, not in a {message.role} message")
    return message.text()


def _image_url(image: Image) -> str:
    if image.data is not None:
        return f"data:{image.media_type};base64,{base64.b64encode(image.data).decode('ascii')}"
    if image.url is not None:
        return image.url
    raise Unsupported("an image part needs data or a url")


def finish_reason(reason: str | None) -> FinishReason:
    return _FINISH.get(reason or "", "other")


def _count(*values: float | None) -> int | None:
    """The first count the vendor reported; the SDK's Bedrock mapping writes -1 for a missing header."""
    for value in values:
        if value is not None and 0 <= value <= MAX_COUNT:  # 1e999 (inf) or a count no sink stores: none
            return int(value)
    return None


def usage(usage: CohereUsage | None) -> Usage:
    """Billed tokens, else the tokens the model processed."""
    if usage is None:
        return Usage()
    billed, tokens = usage.billed_units, usage.tokens
    return Usage(
        _count(billed.input_tokens if billed else None, tokens.input_tokens if tokens else None),
        _count(billed.output_tokens if billed else None, tokens.output_tokens if tokens else None),
    )


def _meta_usage(meta: Any) -> Usage:
    """The SDK's Bedrock/SageMaker clients put the X-Amzn-Bedrock-*-Token-Count headers in a chat answer's meta."""
    billed = meta.get("billed_units") if isinstance(meta, dict) else None
    if not isinstance(billed, dict):
        return Usage()
    return Usage(_count(billed.get("input_tokens")), _count(billed.get("output_tokens")))


def chat_response(raw: V2ChatResponse, model: str) -> ChatResponse:
    try:
        message = raw.message
        text = "".join(item.text for item in message.content or () if item.type == "text")
        calls = tuple(
            ToolCall(c.id, c.function.name or "", c.function.arguments or "") if c.function else ToolCall(c.id, "", "")
            for c in message.tool_calls or ()
        )
        counted = usage(raw.usage) if raw.usage is not None else _meta_usage(getattr(raw, "meta", None))
        return ChatResponse(text, calls, finish_reason(raw.finish_reason), counted, model, raw)
    except ANSWER_ERRORS:  # a 200 whose body lacks what a chat answer has (the SDK parses it leniently)
        raise unreadable_answer(VENDOR) from None


class StreamState:
    """Turns Cohere v2 stream events into privsdk events, one at a time.

    ``feed`` returns the privsdk event for a Cohere event, or None for events that carry nothing
    privsdk reports (message-start, content-end, tool plans, citations). After message-end,
    ``ended`` is true. An error reported in the stream (message-end with ``error`` or finish
    reason ERROR) raises Unavailable.
    """

    __slots__ = ("calls", "ended", "model")

    def __init__(self, model: str):
        self.model = model
        self.calls: dict[int | None, int] = {}  # Cohere's tool call index -> privsdk's, from 0
        self.ended = False

    def feed(self, event: Any) -> StreamEvent | None:
        kind = event.type
        if kind == "content-delta":
            text = event.delta.message.content.text  # None for a thinking delta
            return TextDelta(text) if text else None
        if kind == "tool-call-delta":
            function = event.delta.message.tool_calls.function
            call = self.calls.get(event.index, len(self.calls) - 1)
            return ToolCallDelta(call, arguments=(function.arguments or "") if function else "")
        if kind == "tool-call-start":
            started = event.delta.message.tool_calls
            call = self.calls[event.index] = len(self.calls)
            function = started.function
            if function is None:
                return ToolCallDelta(call, started.id)
            return ToolCallDelta(call, started.id, function.name, function.arguments or "")
        if kind == "content-start":
            content = event.delta.message.content
            return TextDelta(content.text) if content is not None and content.text else None
        if kind == "message-end":
            delta = event.delta
            if delta.error or delta.finish_reason == "ERROR":
                raise Unavailable(VENDOR)
            self.ended = True
            return StreamEnd(finish_reason(delta.finish_reason), usage(delta.usage), self.model)
        return None


def embed_body(request: EmbedRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "texts": list(request.texts),
        "input_type": request.input_type or DEFAULT_INPUT_TYPE,
        "embedding_types": ["float"],
    }
    if request.dimensions is not None:
        body["output_dimension"] = request.dimensions
    return body


def embed_response(raw: EmbedByTypeResponse, request: EmbedRequest, model: str) -> EmbedResponse:
    try:
        vectors = raw.embeddings.float_ if raw.embeddings is not None else None
        if vectors is None or len(vectors) != len(request.texts):
            raise Unavailable(VENDOR)  # an answer without one float vector per text is not one privsdk can pass on
        billed = raw.meta.billed_units if raw.meta is not None else None
        return EmbedResponse(vectors, Usage(_count(billed.input_tokens if billed else None)), model, raw)
    except ANSWER_ERRORS:
        raise unreadable_answer(VENDOR) from None


def rerank_body(request: RerankRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"query": request.query, "documents": list(request.documents)}
    if request.top_n is not None:
        body["top_n"] = request.top_n
    return body


def rerank_response(raw: V2RerankResponse, model: str) -> RerankResponse:
    try:
        billed = raw.meta.billed_units if raw.meta is not None else None
        return RerankResponse(
            [Ranked(r.index, r.relevance_score) for r in raw.results],
            Usage(search_units=_count(billed.search_units if billed else None)),
            model,
            raw,
        )
    except ANSWER_ERRORS:
        raise unreadable_answer(VENDOR) from None
