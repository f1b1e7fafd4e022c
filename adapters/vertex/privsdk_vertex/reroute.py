"""Rerouted requests of the genai drop-in, answered in Google's own wire format.

When the guard refuses a request from a google-genai client (Gemini Developer API or Vertex AI) and the
tenant's reroute list names an alternative whose own decision is allow, the drop-in's transport does not
send the request. It makes the same call through a :class:`privsdk.Client` to the alternative (a Vertex AI
target in an allowed location, which the same SDK reaches, or another vendor) and answers with the JSON, or
the server-sent events, that Google would have sent. google-genai then parses that answer as it always
does: the app gets ``GenerateContentResponse`` / ``EmbedContentResponse`` objects.

Only ``generateContent``, ``streamGenerateContent`` and the embedding methods (``embedContent``,
``batchEmbedContents``, ``predict`` on an embedding model) reroute. Any other operation, and any body field
the alternative cannot honour in a way that would change the answer (Google's hosted tools, cached
content, audio or image output, several candidates, non-text embedding inputs, ...), is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any, Literal, NamedTuple

from privsdk.errors import PolicyViolation, PrivsdkError, VendorError
from privsdk.outbound import reroute
from privsdk.outbound.judge import Pass
from privsdk.outbound.outgoing import Outgoing
from privsdk.types import (
    ChatResponse,
    EmbedResponse,
    FinishReason,
    Image,
    InputType,
    Message,
    Part,
    ResponseFormat,
    StreamEnd,
    StreamEvent,
    Text,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from privsdk.usage.record import new_request_id

_FINISH: dict[FinishReason, str] = {
    "stop": "STOP",
    "tool_calls": "STOP",  # Gemini ends a turn that calls functions with STOP
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "error": "OTHER",
    "other": "OTHER",
}
#: google.rpc status names for the HTTP statuses an alternative's failure is answered with.
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_MODES: dict[str, Literal["auto", "none", "required"] | None] = {
    "MODE_UNSPECIFIED": None,
    "AUTO": "auto",
    "NONE": "none",
    "ANY": "required",
}
_TASK_TYPES: dict[str, InputType] = {
    "RETRIEVAL_DOCUMENT": "search_document",
    "RETRIEVAL_QUERY": "search_query",
    "CLASSIFICATION": "classification",
    "CLUSTERING": "clustering",
}
_GOOGLE_ONLY = "it is meant for Google's own service, which the alternative is not"
#: GenerateContentRequest fields privsdk cannot carry to the alternative (Google's safety filters, billing labels,
#: Model Armor): honoured only at the value that asks for nothing, refused otherwise.
_SERVICE_ONLY: Mapping[str, reroute.Carry] = {
    "safetySettings": reroute.default_only([], why=_GOOGLE_ONLY),
    "labels": reroute.default_only({}, why=_GOOGLE_ONLY),
    "modelArmorConfig": reroute.default_only(why=_GOOGLE_ONLY),
}
_CHAT_FIELDS = frozenset({"contents", "systemInstruction", "tools", "toolConfig", "generationConfig"}) | frozenset(
    _SERVICE_ONLY
)
#: generationConfig fields privsdk has no option for: honoured only at the value that asks for nothing.
_GENERATION_DEFAULTS: Mapping[str, reroute.Carry] = {
    "topK": reroute.default_only(),
    "presencePenalty": reroute.default_only(0),
    "frequencyPenalty": reroute.default_only(0),
    "thinkingConfig": reroute.default_only({}),
    "mediaResolution": reroute.default_only("MEDIA_RESOLUTION_UNSPECIFIED"),
    "candidateCount": reroute.default_only(1, why="the reroute answers with one candidate"),
}
#: Parts of a model turn that are Gemini's own thinking: not the conversation, and never sent elsewhere.
_THOUGHT_KEYS = frozenset({"thought", "thoughtSignature"})
_EMBED_METHODS = frozenset({"embedContent", "batchEmbedContents", "predict"})


def _camel(name: str) -> str:
    """google-genai sends camelCase; the services also take snake_case (``http_options.extra_body``)."""
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _fields(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise reroute.Unmappable(f"{what} that is not an object")
    return {_camel(k): v for k, v in value.items() if isinstance(k, str)}


def _name(key: str) -> str:
    """A field name for a refusal message: kept only when it looks like a schema word, never a value."""
    return key if key.isascii() and key.replace("_", "").isalnum() and len(key) <= 40 else "<field>"


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise reroute.Unmappable(f"{what} that is not a list")
    return value


# -- which call ---------------------------------------------------------------------------------------


class _Chat(NamedTuple):
    messages: list[Message]
    options: dict[str, Any]
    stream: bool


class _Embed(NamedTuple):
    texts: list[str]
    options: dict[str, Any]
    #: The response shape: ``predict`` (Vertex text-embedding models), ``embedContent`` (one content) or
    #: ``batchEmbedContents``.
    method: str


def _call(out: Outgoing, ticket: Pass) -> _Chat | _Embed:
    """The privsdk call a rerouted request makes; refuses any other operation and any body it cannot map."""
    operation = ticket.verdict.asks.operation if ticket.verdict.asks else "other"
    method = out.path.rsplit("/", 1)[-1].partition(":")[2]
    body = out.json()
    if not isinstance(body, dict):
        raise reroute.unsupported(ticket, operation)
    options = {**reroute.options(ticket), **reroute.timeout(ticket)}
    try:
        if method == "generateContent" and operation == "chat":
            return _Chat(*_chat(body, options), stream=False)
        if method == "streamGenerateContent" and operation == "stream":
            return _Chat(*_chat(body, options), stream=True)
        if method in _EMBED_METHODS and operation == "embed":
            return _embed(method, body, options)
    except reroute.Unmappable as exc:
        raise reroute.unsupported(ticket, f"{operation} with {exc.what}") from None
    raise reroute.unsupported(ticket, f"{operation} (:{_name(method)})" if method else operation)


# -- generateContent -> privsdk chat ------------------------------------------------------------------


def _chat(body: dict[str, Any], options: dict[str, Any]) -> tuple[list[Message], dict[str, Any]]:
    body = _fields(body, "a request")
    for key in body:
        if key not in _CHAT_FIELDS:
            raise reroute.Unmappable(_name(key))
    reroute.carry({k: v for k, v in body.items() if k in _SERVICE_ONLY}, _SERVICE_ONLY)
    messages = _messages(body)
    tools = _tools(body.get("tools"))
    if tools:
        options["tools"] = tools
    if body.get("toolConfig") is not None:
        mode = _tool_choice(body["toolConfig"], tools)
        if mode is not None:
            options["tool_choice"] = mode
    if body.get("generationConfig") is not None:
        options.update(_generation(body["generationConfig"]))
    return messages, options


def _messages(body: dict[str, Any]) -> list[Message]:
    out: list[Message] = []
    system = body.get("systemInstruction")
    if system is not None:
        if isinstance(system, str):
            out.append(Message("system", system))
        else:
            parts = _list(_fields(system, "systemInstruction").get("parts"), "systemInstruction")
            out.append(Message("system", "".join(_text_part(p, "systemInstruction") for p in parts)))
    contents = _list(body.get("contents"), "contents")
    #: The calls of the last model turn not answered yet: (id, name), in order.
    pending: list[tuple[str, str]] = []
    for n, item in enumerate(contents):
        content = _fields(item, "contents")
        role = content.get("role") or "user"
        parts = [_fields(p, "a part") for p in _list(content.get("parts"), "parts")]
        if role == "model":
            texts: list[str] = []
            calls: list[ToolCall] = []
            for part in parts:
                if part.get("thought"):
                    continue
                data = set(part) - _THOUGHT_KEYS
                if data == {"text"} and isinstance(part["text"], str):
                    texts.append(part["text"])
                elif data == {"functionCall"}:
                    calls.append(_function_call(part["functionCall"], f"call_{n}_{len(calls)}"))
                else:
                    raise reroute.Unmappable(f"a model part of kind {', '.join(sorted(map(_name, data))) or 'empty'}")
            out.append(Message("assistant", "".join(texts), tuple(calls)))
            pending = [(c.id, c.name) for c in calls]
        elif role == "user":
            items: list[Part] = []
            for part in parts:
                data = set(part)
                if data == {"functionResponse"}:
                    out.append(_function_response(part["functionResponse"], pending))
                elif data == {"text"} and isinstance(part["text"], str):
                    items.append(Text(part["text"]))
                elif data == {"inlineData"}:
                    items.append(_inline(part["inlineData"]))
                elif data == {"fileData"}:
                    items.append(_file(part["fileData"]))
                else:
                    raise reroute.Unmappable(f"a user part of kind {', '.join(sorted(map(_name, data))) or 'empty'}")
            if items:
                plain = all(isinstance(p, Text) for p in items)
                out.append(
                    Message("user", "".join(p.text for p in items if isinstance(p, Text)) if plain else tuple(items))
                )
        else:
            raise reroute.Unmappable("a content of another role")
    if not any(m.role != "system" for m in out):
        raise reroute.Unmappable("no contents")
    return out


def _text_part(part: Any, what: str) -> str:
    fields = _fields(part, f"a {what} part")
    if set(fields) != {"text"} or not isinstance(fields["text"], str):
        raise reroute.Unmappable(f"a {what} part that is not text")
    return str(fields["text"])


def _function_call(value: Any, default_id: str) -> ToolCall:
    call = _fields(value, "a functionCall")
    name, args = call.get("name"), call.get("args", {})
    if not isinstance(name, str) or not isinstance(args, dict) or set(call) - {"id", "name", "args"}:
        raise reroute.Unmappable("a functionCall that is not a name and object args")
    call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else default_id
    return ToolCall(str(call_id), name, json.dumps(args, ensure_ascii=False))


def _function_response(value: Any, pending: list[tuple[str, str]]) -> Message:
    """A tool message answering a call of the last model turn: by id where the app kept one, else by name
    (Gemini's own rule), the first call of that name not answered yet."""
    result = _fields(value, "a functionResponse")
    name, response, given = result.get("name"), result.get("response"), result.get("id")
    if not isinstance(name, str) or not isinstance(response, dict) or set(result) - {"id", "name", "response"}:
        raise reroute.Unmappable("a functionResponse that is not a name and an object response")
    match = next((c for c in pending if c[0] == given), None) if given else None
    match = match or next((c for c in pending if c[1] == name), None)
    if match is None:
        raise reroute.Unmappable("a functionResponse that answers no call of the previous model turn")
    pending.remove(match)
    return Message("tool", json.dumps(response, ensure_ascii=False), tool_call_id=match[0])


def _inline(value: Any) -> Image:
    blob = _fields(value, "inlineData")
    mime = blob.get("mimeType")
    if not isinstance(mime, str) or not mime.startswith("image/") or set(blob) - {"mimeType", "data", "displayName"}:
        raise reroute.Unmappable("inlineData that is not an image")
    try:
        data = base64.b64decode(str(blob.get("data", "")), validate=True)
    except (binascii.Error, ValueError):
        raise reroute.Unmappable("inlineData that is not base64") from None
    return Image(data=data, media_type=mime)


def _file(value: Any) -> Image:
    file = _fields(value, "fileData")
    mime, uri = file.get("mimeType"), file.get("fileUri")
    # gs:// and Gemini File API URIs are Google's own storage: another service cannot fetch them.
    if (
        not isinstance(mime, str)
        or not mime.startswith("image/")
        or not isinstance(uri, str)
        or not uri.startswith("https://")
        or uri.startswith("https://generativelanguage.googleapis.com/")
    ):
        raise reroute.Unmappable("fileData that is not an image at an https URL")
    return Image(url=uri, media_type=mime)


def _tools(value: Any) -> list[Tool]:
    tools: list[Tool] = []
    for entry in _list(value, "tools"):
        for key, declarations in _fields(entry, "a tool").items():
            if key != "functionDeclarations":
                raise reroute.Unmappable(f"tools {_name(key)}")  # Google's hosted tools run at Google only
            for declaration in _list(declarations, "functionDeclarations"):
                d = _fields(declaration, "a functionDeclaration")
                # A response schema (google-genai builds one from a Python function's return annotation) only says
                # what the function returns: privsdk's tools carry none, and it is left out.
                if set(d) - {
                    "name",
                    "description",
                    "parameters",
                    "parametersJsonSchema",
                    "response",
                    "responseJsonSchema",
                }:
                    raise reroute.Unmappable(
                        "a functionDeclaration with fields beyond name, description and parameters"
                    )
                name = d.get("name")
                if not isinstance(name, str):
                    raise reroute.Unmappable("a functionDeclaration without a name")
                schema = d.get("parametersJsonSchema")
                if schema is None and d.get("parameters") is not None:
                    schema = json_schema(d["parameters"])
                description = d.get("description")
                tools.append(
                    Tool(
                        name,
                        description if isinstance(description, str) else "",
                        schema if isinstance(schema, dict) else {"type": "object", "properties": {}},
                    )
                )
    return tools


def _tool_choice(value: Any, tools: list[Tool]) -> Literal["auto", "none", "required"] | None:
    config = _fields(value, "toolConfig")
    if set(config) - {"functionCallingConfig"}:
        raise reroute.Unmappable("toolConfig beyond functionCallingConfig")
    calling = _fields(config.get("functionCallingConfig", {}), "functionCallingConfig")
    mode = calling.get("mode", "MODE_UNSPECIFIED")
    allowed = calling.get("allowedFunctionNames")
    if set(calling) - {"mode", "allowedFunctionNames"} or not isinstance(mode, str) or mode not in _MODES:
        raise reroute.Unmappable("a functionCallingConfig mode other than AUTO, ANY or NONE")
    if allowed is not None and sorted(_list(allowed, "allowedFunctionNames")) != sorted(t.name for t in tools):
        raise reroute.Unmappable("allowedFunctionNames narrower than the declared functions")
    return _MODES[mode]


def _generation(value: Any) -> dict[str, Any]:
    config = _fields(value, "generationConfig")
    reroute.carry({k: v for k, v in config.items() if k in _GENERATION_DEFAULTS}, _GENERATION_DEFAULTS)
    options: dict[str, Any] = {}
    for key, item in config.items():
        if item is None or key in _GENERATION_DEFAULTS:
            continue
        if key == "temperature":
            options["temperature"] = item
        elif key == "topP":
            options["top_p"] = item
        elif key == "maxOutputTokens":
            options["max_tokens"] = item
        elif key == "stopSequences":
            options["stop"] = _list(item, "stopSequences")
        elif key == "seed":
            options["seed"] = item
        elif key == "responseModalities":
            if [str(m).upper() for m in _list(item, "responseModalities")] not in ([], ["TEXT"]):
                raise reroute.Unmappable("responseModalities other than TEXT")
        elif key not in ("responseMimeType", "responseSchema", "responseJsonSchema"):
            raise reroute.Unmappable(f"generationConfig {_name(key)}")
    mime = config.get("responseMimeType") or "text/plain"
    schema = config.get("responseJsonSchema")
    if schema is None and config.get("responseSchema") is not None:
        schema = json_schema(config["responseSchema"])
    if mime == "application/json":
        options["response_format"] = ResponseFormat() if schema is None else _json_format(schema)
    elif mime != "text/plain" or schema is not None:
        raise reroute.Unmappable("a responseMimeType other than text/plain or application/json")
    return options


def _json_format(schema: Any) -> ResponseFormat:
    if not isinstance(schema, dict):
        raise reroute.Unmappable("a response schema that is not an object")
    return ResponseFormat(schema)


#: OpenAPI Schema fields (Gemini's ``Schema``) that JSON Schema spells the same way.
_SCHEMA_SAME = frozenset(
    {
        "description", "enum", "format", "title", "required", "minimum", "maximum", "pattern", "default",
    }
)  # fmt: skip
#: Its int64 bounds, which protobuf JSON writes as strings ("minItems": "1"); JSON Schema takes numbers.
_SCHEMA_COUNTS = frozenset({"minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"})


def json_schema(value: Any) -> dict[str, Any]:
    """Gemini's ``Schema`` (an OpenAPI 3.0 subset: upper-case types, ``nullable``) as JSON Schema."""
    schema = _fields(value, "a schema")
    out: dict[str, Any] = {}
    for key, item in schema.items():
        if key == "type":
            kind = str(item).lower()
            if kind == "type_unspecified":
                continue
            out["type"] = [kind, "null"] if schema.get("nullable") else kind
        elif key == "properties":
            if not isinstance(item, Mapping):
                raise reroute.Unmappable("schema properties that are not an object")
            out["properties"] = {k: json_schema(v) for k, v in item.items()}  # names as the app wrote them
        elif key == "items":
            out["items"] = json_schema(item)
        elif key == "anyOf":
            out["anyOf"] = [json_schema(v) for v in _list(item, "anyOf")]
        elif key in _SCHEMA_SAME:
            out[key] = item
        elif key in _SCHEMA_COUNTS:
            if not (isinstance(item, int) or (isinstance(item, str) and item.isdigit())):
                raise reroute.Unmappable(f"a schema {key} that is not a count")
            out[key] = int(item)
        elif key not in ("nullable", "propertyOrdering", "example"):  # no meaning for the answer
            raise reroute.Unmappable(f"a schema field {_name(key)}")
    if schema.get("nullable") and "type" not in out:
        out = {"anyOf": [out, {"type": "null"}]}
    return out


# -- embedding requests -------------------------------------------------------------------------------


def _embed(method: str, body: dict[str, Any], options: dict[str, Any]) -> _Embed:
    """The texts and options of ``embedContent`` / ``batchEmbedContents`` (Gemini API: options beside each
    content; Vertex AI: in ``embedContentConfig``) or of Vertex's ``predict`` (instances and parameters)."""
    body = _fields(body, "a request")
    items: list[tuple[Any, dict[str, Any]]] = []
    if method == "predict":
        if set(body) - {"instances", "parameters"}:
            raise reroute.Unmappable("predict fields beyond instances and parameters")
        parameters = _fields(body.get("parameters") or {}, "parameters")
        for instance in _list(body.get("instances"), "instances"):
            fields = _fields(instance, "an instance")
            content = fields.pop("content", None)
            if not isinstance(content, str):
                raise reroute.Unmappable("an instance that is not text")
            items.append((content, {**parameters, **fields}))
    elif method == "embedContent":
        items.append(_embed_item(body))
    else:
        if set(body) - {"requests"}:
            raise reroute.Unmappable("batchEmbedContents fields beyond requests")
        items.extend(_embed_item(_fields(r, "a request")) for r in _list(body.get("requests"), "requests"))
    if not items:
        raise reroute.Unmappable("no contents")
    texts: list[str] = []
    settings: set[tuple[str | None, int | None]] = set()
    for content, config in items:
        texts.append(content if isinstance(content, str) else _embed_text(content))
        unknown = set(config) - {"taskType", "outputDimensionality", "autoTruncate"}
        if unknown:  # a title changes a document's vector; mimeType / OCR / audio are other inputs
            raise reroute.Unmappable(f"embedding option {', '.join(sorted(map(_name, unknown)))}")
        task = config.get("taskType")
        if task is not None and task not in _TASK_TYPES:  # the value is the app's: never echoed
            raise reroute.Unmappable(
                "a taskType other than RETRIEVAL_DOCUMENT, RETRIEVAL_QUERY, CLASSIFICATION, CLUSTERING"
            )
        if config.get("autoTruncate") is False:  # the alternatives truncate what is too long: never asked for here
            raise reroute.Unmappable("autoTruncate false")
        dimensions = config.get("outputDimensionality")
        settings.add((task, dimensions if isinstance(dimensions, int) else None))
    if len(settings) != 1:
        raise reroute.Unmappable("contents with different taskType or outputDimensionality")
    ((task, dimensions),) = settings
    if task is not None:
        options["input_type"] = _TASK_TYPES[task]
    if dimensions is not None:
        options["dimensions"] = dimensions
    return _Embed(texts, options, method)


def _embed_item(request: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """(content, options) of one EmbedContentRequest; ``model`` names the model the request was for."""
    config = _fields(request.get("embedContentConfig") or {}, "embedContentConfig")
    rest = {k: v for k, v in request.items() if k not in ("content", "model", "embedContentConfig")}
    return request.get("content"), {**rest, **config}


def _embed_text(value: Any) -> str:
    content = _fields(value, "a content")
    parts = _list(content.get("parts"), "parts")
    if set(content) - {"role", "parts"} or len(parts) != 1:
        raise reroute.Unmappable("a content of other than one text part")  # multimodal embeddings merge parts
    return _text_part(parts[0], "content")


# -- answers ------------------------------------------------------------------------------------------


def send(out: Outgoing, ticket: Pass, http: ModuleType) -> Any:
    """Answer a rerouted request from ``ticket.decision.chosen`` (sync clients)."""
    call = _call(out, ticket)
    chosen = str(ticket.decision.chosen)
    try:
        client = reroute.client(ticket.guard)
        if isinstance(call, _Embed):
            return reroute.json_answer(http, embedding(client.embed(chosen, call.texts, **call.options), call.method))
        if call.stream:
            stream = client.chat(chosen, call.messages, stream=True, **call.options)
            return reroute.sse_answer(http, reroute.stream_lines(stream, _Chunks(stream.target.model)))
        return reroute.json_answer(http, generate(client.chat(chosen, call.messages, **call.options)))
    except (PolicyViolation, *reroute.CANNOT_SERVE):
        raise  # refusals, said by the seam as the SDK's own
    except (PrivsdkError, ValueError, TypeError) as exc:  # VendorError of the alternative among them
        return _error(http, exc)


async def asend(out: Outgoing, ticket: Pass, http: ModuleType) -> Any:
    """:func:`send` for async clients (``client.aio``)."""
    call = _call(out, ticket)
    chosen = str(ticket.decision.chosen)
    try:
        client = reroute.async_client(ticket)
        if isinstance(call, _Embed):
            return reroute.json_answer(
                http, embedding(await client.embed(chosen, call.texts, **call.options), call.method)
            )
        if call.stream:
            stream = await client.chat(chosen, call.messages, stream=True, **call.options)
            return reroute.sse_answer(http, reroute.astream_lines(stream, _Chunks(stream.target.model)))
        return reroute.json_answer(http, generate(await client.chat(chosen, call.messages, **call.options)))
    except (PolicyViolation, *reroute.CANNOT_SERVE):
        raise  # refusals, said by the seam as the SDK's own
    except (PrivsdkError, ValueError, TypeError) as exc:  # VendorError of the alternative among them
        return _error(http, exc)


def _event(data: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\r\n\r\n"


def _error_object(exc: Exception) -> dict[str, Any]:
    """Google's error object (google.rpc.Status) from privsdk's content-free error, never the vendor's text.

    A ValueError or TypeError on the way to the alternative is a 400 named by its class alone, since its message
    could quote the request (what the alternative's client cannot serve is a refusal, raised by the seam)."""
    status = reroute.status(exc) if isinstance(exc, VendorError) else 400
    message = (
        str(exc) if isinstance(exc, PrivsdkError) else f"privsdk could not pass the request on ({type(exc).__name__})"
    )
    error: dict[str, Any] = {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}
    if isinstance(exc, VendorError) and exc.retry_after is not None:
        delay = f"{exc.retry_after:.3f}".rstrip("0").rstrip(".")
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{delay}s"}]
    return error


def _error(http: ModuleType, exc: Exception) -> Any:
    """The failure as Google would answer it; an alternative that did not answer within the SDK's timeout is a
    timeout of the SDK's transport."""
    reroute.raise_timeout(http, exc)
    error = _error_object(exc)
    return http.Response(error["code"], json={"error": error})


def _usage(usage: Usage) -> dict[str, int]:
    out: dict[str, int] = {}
    if usage.input_tokens is not None:
        out["promptTokenCount"] = usage.input_tokens
    if usage.output_tokens is not None:
        out["candidatesTokenCount"] = usage.output_tokens
    if out:
        out["totalTokenCount"] = (usage.input_tokens or 0) + (usage.output_tokens or 0)
    return out


def _args(call_id: str | None, name: str | None, arguments: str) -> dict[str, Any]:
    """A Gemini ``functionCall`` part; arguments that are not a JSON object (a model's broken output) are kept
    as the text they are, under ``arguments``, rather than dropped."""
    try:
        args = json.loads(arguments) if arguments else {}
    except ValueError:
        args = None
    call: dict[str, Any] = {"name": name or "", "args": args if isinstance(args, dict) else {"arguments": arguments}}
    if call_id:
        call["id"] = call_id
    return {"functionCall": call}


def generate(response: ChatResponse) -> dict[str, Any]:
    """A ``GenerateContentResponse`` for a privsdk answer."""
    parts: list[dict[str, Any]] = [{"text": response.text}] if response.text else []
    parts += [_args(c.id, c.name, c.arguments) for c in response.tool_calls]
    candidate = {
        "content": {"role": "model", "parts": parts},
        "finishReason": _FINISH.get(response.finish_reason, "OTHER"),
        "index": 0,
    }
    answer: dict[str, Any] = {"candidates": [candidate], "modelVersion": response.model, "responseId": new_request_id()}
    usage = _usage(response.usage)
    if usage:
        answer["usageMetadata"] = usage
    return answer


class _Chunks:
    """privsdk stream events as ``streamGenerateContent?alt=sse`` events. Gemini sends each function call
    whole, so a call's pieces are gathered and sent with the last event (finish reason and usage)."""

    def __init__(self, model: str):
        self.head = {"modelVersion": model, "responseId": new_request_id()}
        self.calls: dict[int, list[str]] = {}  # call -> [id, name, arguments]

    def _chunk(self, parts: list[dict[str, Any]], **more: Any) -> bytes:
        candidate: dict[str, Any] = {"index": 0, **more}
        if parts:
            candidate["content"] = {"role": "model", "parts": parts}
        return _event({"candidates": [candidate], **self.head})

    def __call__(self, event: StreamEvent) -> Iterator[bytes]:
        if isinstance(event, TextDelta):
            if event.text:
                yield self._chunk([{"text": event.text}])
        elif isinstance(event, ToolCallDelta):
            call = self.calls.setdefault(event.call, ["", "", ""])
            call[0] = event.id or call[0]
            call[1] = event.name or call[1]
            call[2] += event.arguments
        elif isinstance(event, StreamEnd):
            parts = [_args(i, n, a) for i, n, a in (self.calls[k] for k in sorted(self.calls))]
            self.head["modelVersion"] = event.model or self.head["modelVersion"]
            candidate: dict[str, Any] = {"index": 0, "finishReason": _FINISH.get(event.finish_reason, "OTHER")}
            if parts:
                candidate["content"] = {"role": "model", "parts": parts}
            last: dict[str, Any] = {"candidates": [candidate], **self.head}
            usage = _usage(event.usage)
            if usage:
                last["usageMetadata"] = usage
            yield _event(last)

    def failed(self, exc: VendorError) -> Iterator[bytes]:
        """The alternative failed after its stream began: Google's in-stream error event, which google-genai raises
        as its own error."""
        yield _event({"error": _error_object(exc)})


def embedding(response: EmbedResponse, method: str) -> dict[str, Any]:
    """The answer of ``predict``, ``embedContent`` or ``batchEmbedContents`` for a privsdk answer."""
    tokens = response.usage.input_tokens
    usage = {"promptTokenCount": tokens} if tokens is not None else None
    if method == "predict":
        one = len(response.vectors) == 1 and tokens is not None  # a count per text only where it is known
        predictions = []
        for vector in response.vectors:
            item: dict[str, Any] = {"values": vector}
            if one:
                item["statistics"] = {"token_count": tokens, "truncated": False}
            predictions.append({"embeddings": item})
        return {"predictions": predictions}
    if method == "embedContent":
        answer: dict[str, Any] = {"embedding": {"values": response.vectors[0] if response.vectors else []}}
    else:
        answer = {"embeddings": [{"values": v} for v in response.vectors]}
    if usage is not None:
        answer["usageMetadata"] = usage
    return answer
