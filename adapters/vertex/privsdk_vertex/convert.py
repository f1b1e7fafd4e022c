"""privsdk requests as google-genai arguments, and google-genai answers as privsdk responses.

Gemini speaks in ``contents``: turns of role ``user`` or ``model`` made of
parts. System messages become the ``system_instruction``; an assistant's tool
calls become ``function_call`` parts of a ``model`` turn, and the tool results
that answer them one ``user`` turn of ``function_response`` parts. Gemini
matches a result to its call by function name (and by id where the model gave
one), so a tool message must answer a call of an earlier assistant message.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence

from google.genai import types as gt

from privsdk.errors import ConnectionLost, ContentRefused, InvalidArgument, Unavailable, Unsupported
from privsdk.types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    FinishReason,
    Image,
    Message,
    Part,
    StreamEnd,
    StreamEvent,
    Text,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from privsdk.vendor_errors import ANSWER_ERRORS, unreadable_answer

FINISH: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **dict.fromkeys(
        (
            "SAFETY",
            "RECITATION",
            "BLOCKLIST",
            "PROHIBITED_CONTENT",
            "SPII",
            "IMAGE_SAFETY",
            "IMAGE_PROHIBITED_CONTENT",
            "MODEL_ARMOR",
        ),
        "content_filter",
    ),
}
#: privsdk's sampling settings under Gemini's generation-config names.
_SAMPLING = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_output_tokens",
    "stop": "stop_sequences",
    "seed": "seed",
}
TASK_TYPES = {
    "search_document": "RETRIEVAL_DOCUMENT",
    "search_query": "RETRIEVAL_QUERY",
    "classification": "CLASSIFICATION",
    "clustering": "CLUSTERING",
}
_MODES = {
    "auto": gt.FunctionCallingConfigMode.AUTO,
    "none": gt.FunctionCallingConfigMode.NONE,
    "required": gt.FunctionCallingConfigMode.ANY,
}
#: google-genai 3.x follows continuation tokens with requests of its own unless told not to.
_CONTINUES = "automatic_continuation" in gt.GenerateContentConfig.model_fields
#: Ids privsdk makes for calls the model gave no id; never sent back, since the model did not make them.
_SYNTHETIC = "gemini-call-"
_call_ids = itertools.count(1)
_NO_USAGE = Usage()


class Signatures:
    """The thought signatures of the function calls this adapter returned, by tool call id.

    Gemini attaches an opaque ``thought_signature`` to a function call and
    Gemini 3 rejects a later request whose history lost it. privsdk's
    :class:`~privsdk.types.ToolCall` has no field for it, so the adapter keeps
    the latest ones and puts them back when the call returns in the history.
    """

    def __init__(self, size: int = 4096):
        self._size = size
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, call_id: str, signature: bytes) -> None:
        with self._lock:
            self._items[call_id] = signature
            if len(self._items) > self._size:
                self._items.popitem(last=False)

    def get(self, call_id: str) -> bytes | None:
        if not self._items:
            return None
        with self._lock:
            return self._items.get(call_id)


# -- requests -------------------------------------------------------------------------------------
#
# The SDK's TypedDicts rather than its pydantic models: the SDK validates its arguments either way, every
# model it is handed costs ~15 µs to build (a Python before-validator walks all its fields), and the SDK
# handles a dict argument faster than a model one.


def contents(messages: Sequence[Message], signatures: Signatures) -> tuple[list[gt.ContentDict], gt.ContentDict | None]:
    """The conversation as Gemini turns, and the system instruction."""
    system: list[gt.PartDict] = []
    turns: list[gt.ContentDict] = []
    names: dict[str, str] = {}  # tool call id -> function name, from the assistant messages so far
    results: list[gt.PartDict] | None = None  # the turn of tool results that the next tool message joins
    for message in messages:
        role = message.role
        if role == "tool":
            if results is None:
                results = []
                turns.append({"role": "user", "parts": results})
            results.append(_function_response(message, names))
            continue
        results = None
        if role == "system":
            system.append({"text": _text_only(message)})
        elif role == "user":
            turns.append({"role": "user", "parts": _parts(message.content)})
        else:
            parts = _parts(message.content) if message.content or not message.tool_calls else []
            for call in message.tool_calls:
                names[call.id] = call.name
                parts.append(_function_call(call, signatures))
            turns.append({"role": "model", "parts": parts})
    return turns, {"parts": system} if system else None


def generate_config(
    request: ChatRequest, system: gt.ContentDict | None, http_options: gt.HttpOptionsDict | None
) -> gt.GenerateContentConfigDict:
    """Everything of a chat request but the contents; function declarations only, and one request per call:
    the SDK must never run tools itself (automatic function calling) nor follow continuation tokens."""
    config: gt.GenerateContentConfigDict = {"automatic_function_calling": {"disable": True}}
    if _CONTINUES:
        config["automatic_continuation"] = False
    if system is not None:
        config["system_instruction"] = system
    if request.tools:
        if any(tool.strict for tool in request.tools):
            raise Unsupported("Gemini cannot hold function call arguments to a tool's schema (strict)")
        declarations: list[gt.FunctionDeclarationDict] = [
            {
                "name": tool.name,
                "description": tool.description or None,
                "parameters_json_schema": dict(tool.parameters),
            }
            for tool in request.tools
        ]
        config["tools"] = [{"function_declarations": declarations}]
    if request.tool_choice is not None:
        mode = _MODES.get(request.tool_choice) if isinstance(request.tool_choice, str) else None
        if mode is None:
            raise Unsupported("Gemini takes tool_choice 'auto', 'none' or 'required' only")
        config["tool_config"] = {"function_calling_config": {"mode": mode}}
    config.update(request.sampling(_SAMPLING))  # type: ignore[typeddict-item]  # names from _SAMPLING, all valid
    if request.response_format is not None:
        config["response_mime_type"] = "application/json"
        if request.response_format.schema is not None:
            config["response_json_schema"] = dict(request.response_format.schema)
    if http_options is not None:
        config["http_options"] = http_options
    return config


def embed_arguments(
    request: EmbedRequest, http_options: gt.HttpOptionsDict | None
) -> tuple[list[gt.ContentDict], gt.EmbedContentConfigDict]:
    """One content per text: given bare strings, multimodal embedding models would merge them into one vector."""
    config: gt.EmbedContentConfigDict = {}
    if request.input_type is not None:
        task = TASK_TYPES.get(request.input_type)
        if task is None:  # the value is the caller's: named by the values it may take, never echoed
            raise InvalidArgument(f"input_type must be one of {', '.join(map(repr, TASK_TYPES))} or None")
        config["task_type"] = task
    if request.dimensions is not None:
        config["output_dimensionality"] = request.dimensions
    if http_options is not None:
        config["http_options"] = http_options
    return [{"parts": [{"text": text}]} for text in request.texts], config


def _parts(content: str | tuple[Part, ...]) -> list[gt.PartDict]:
    if isinstance(content, str):
        return [{"text": content}]
    return [{"text": part.text} if isinstance(part, Text) else _image(part) for part in content]


def _image(image: Image) -> gt.PartDict:
    if image.data is not None:
        return {"inline_data": {"data": image.data, "mime_type": image.media_type}}
    if image.url is None:
        raise Unsupported("an image part needs data or a url")
    if image.url.startswith("data:"):  # Gemini fetches gs:// and https:// URLs only: send a data URL's bytes
        head, _, payload = image.url.partition(",")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise Unsupported("an image data URL must be base64") from None
        return {"inline_data": {"data": data, "mime_type": head[5:].split(";", 1)[0] or image.media_type}}
    return {"file_data": {"file_uri": image.url, "mime_type": image.media_type}}


def _text_only(message: Message) -> str:
    if not isinstance(message.content, str) and any(not isinstance(p, Text) for p in message.content):
        raise Unsupported(f"Gemini takes text only in a {message.role} message")
    return message.text()


def _function_call(call: ToolCall, signatures: Signatures) -> gt.PartDict:
    try:
        args = json.loads(call.arguments) if call.arguments else {}
    except ValueError:
        args = None
    if not isinstance(args, dict):
        raise Unsupported("Gemini takes tool call arguments as a JSON object")
    function_call: gt.FunctionCallDict = {"name": call.name, "args": args}
    if not call.id.startswith(_SYNTHETIC):
        function_call["id"] = call.id
    part: gt.PartDict = {"function_call": function_call}
    signature = signatures.get(call.id)
    if signature is not None:
        part["thought_signature"] = signature
    return part


def _function_response(message: Message, names: dict[str, str]) -> gt.PartDict:
    call_id = message.tool_call_id or ""
    name = names.get(call_id)
    if name is None:
        raise Unsupported(
            "a tool message must answer a tool call of an earlier assistant message: Gemini matches results by name"
        )
    text = _text_only(message)
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    result: gt.FunctionResponseDict = {"name": name, "response": value if isinstance(value, dict) else {"output": text}}
    if not call_id.startswith(_SYNTHETIC):
        result["id"] = call_id
    return {"function_response": result}


# -- responses ------------------------------------------------------------------------------------


def chat_response(vendor: str, answer: gt.GenerateContentResponse, model: str, signatures: Signatures) -> ChatResponse:
    _refuse_blocked(vendor, answer)
    texts: list[str] = []
    calls: list[ToolCall] = []
    reason = None
    try:
        if answer.candidates:
            candidate = answer.candidates[0]
            reason = candidate.finish_reason
            if candidate.content is not None and candidate.content.parts:
                for part in candidate.content.parts:
                    if part.function_call is not None:
                        calls.append(_tool_call(part, signatures))
                    elif part.text and not part.thought:
                        texts.append(part.text)
        return ChatResponse(
            text="".join(texts),
            tool_calls=tuple(calls),
            finish_reason=_finish(reason, bool(calls)),
            usage=usage(answer.usage_metadata),
            model=answer.model_version or model,
            raw=answer,
        )
    except ANSWER_ERRORS:
        raise unreadable_answer(vendor) from None


class StreamReader:
    """Turns the chunks of one streamed answer into events, and gives the last event."""

    def __init__(self, vendor: str, model: str, signatures: Signatures):
        self.vendor = vendor
        self.model = model
        self.signatures = signatures
        self.calls = 0
        self.reason: gt.FinishReason | None = None
        self.meta: gt.GenerateContentResponseUsageMetadata | None = None

    def feed(self, chunk: gt.GenerateContentResponse) -> list[StreamEvent]:
        """The events of one chunk (a list: cheaper per chunk than a generator)."""
        if chunk.prompt_feedback is not None:
            _refuse_blocked(self.vendor, chunk)
        if chunk.usage_metadata is not None:  # a running total: the last one counts
            self.meta = chunk.usage_metadata
        if chunk.model_version:
            self.model = chunk.model_version
        events: list[StreamEvent] = []
        if not chunk.candidates:
            return events
        candidate = chunk.candidates[0]
        content = candidate.content
        if content is not None and content.parts:
            for part in content.parts:
                if part.function_call is not None:  # Gemini sends each call whole, in one chunk
                    call = _tool_call(part, self.signatures)
                    events.append(ToolCallDelta(self.calls, call.id, call.name, call.arguments))
                    self.calls += 1
                elif part.text and not part.thought:
                    events.append(TextDelta(part.text))
        if candidate.finish_reason is not None:
            self.reason = candidate.finish_reason
        return events

    def end(self) -> StreamEnd:
        if self.reason is None:  # every answer ends with a finish reason: without one the stream was cut
            raise ConnectionLost(self.vendor)
        return StreamEnd(_finish(self.reason, self.calls > 0), usage(self.meta), self.model)


def embed_response(vendor: str, answer: gt.EmbedContentResponse, texts: int, model: str) -> EmbedResponse:
    embeddings = answer.embeddings or []
    if len(embeddings) != texts:  # a vector per text, in order, or the result would pair texts with wrong vectors
        raise Unavailable(vendor)
    try:
        counts = [e.statistics.token_count for e in embeddings if e.statistics and e.statistics.token_count is not None]
        if counts and len(counts) == texts:
            tokens: int | None = int(sum(counts))
        else:
            meta = answer.usage_metadata
            tokens = meta.prompt_token_count if meta is not None else None
        return EmbedResponse([e.values or [] for e in embeddings], Usage(input_tokens=tokens), model, raw=answer)
    except ANSWER_ERRORS:
        raise unreadable_answer(vendor) from None


def usage(meta: gt.GenerateContentResponseUsageMetadata | None) -> Usage:
    """Prompt tokens in, and out the answer's tokens plus thinking tokens, which Google bills as output."""
    if meta is None:
        return _NO_USAGE
    out = meta.candidates_token_count
    if meta.thoughts_token_count:
        out = (out or 0) + meta.thoughts_token_count
    return Usage(meta.prompt_token_count, out)


def _tool_call(part: gt.Part, signatures: Signatures) -> ToolCall:
    call = part.function_call
    assert call is not None
    call_id = call.id or f"{_SYNTHETIC}{next(_call_ids)}"
    if part.thought_signature:
        signatures.keep(call_id, part.thought_signature)
    return ToolCall(call_id, call.name or "", json.dumps(call.args or {}, ensure_ascii=False))


def _finish(reason: gt.FinishReason | None, called: bool) -> FinishReason:
    if reason is None:
        return "tool_calls" if called else "other"
    finish = FINISH.get(reason.value if isinstance(reason, gt.FinishReason) else str(reason), "other")
    return "tool_calls" if called and finish == "stop" else finish


def _refuse_blocked(vendor: str, answer: gt.GenerateContentResponse) -> None:
    feedback = answer.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        reason = feedback.block_reason
        raise ContentRefused(vendor, code=reason.value if isinstance(reason, gt.BlockedReason) else str(reason))
