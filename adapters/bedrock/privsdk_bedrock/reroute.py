"""Rerouted requests of the boto3 drop-in, answered in Bedrock's own wire format.

When the guard refuses a request from a Bedrock client and the tenant's
reroute list names an alternative whose own decision is allow, the drop-in's
``before-send`` handler does not let botocore send it. It makes the same call
through a :class:`privsdk.Client` to the alternative (another Bedrock Region or
inference profile, which the Client reaches with boto3 itself, or another
vendor) and returns the answer botocore would have received: Converse's JSON,
ConverseStream's event stream, InvokeModel's JSON for the Titan and Cohere
embedding bodies. botocore parses it as it always does: the app gets boto3's
own dicts, event streams and ``ClientError`` subclasses.

What reroutes: Converse and ConverseStream (messages with text, image bytes,
tool use and tool results, system text, ``inferenceConfig``, ``toolConfig``,
``outputConfig`` JSON schema; ``cachePoint`` blocks only ask Bedrock to cache a
prefix and are left out; ``requestMetadata``, ``performanceConfig`` and
``serviceTier`` only at the values that ask for nothing), and InvokeModel with
a Titan or Cohere embedding body. Anything else is refused: native InvokeModel chat bodies, streams of
InvokeModel, every other operation, and any field the alternative could not
honour in a way that changes the answer (guardrails, model-specific request
fields, documents, S3 images, ...).
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from privsdk.errors import InvalidInput, Unsupported, VendorError
from privsdk.outbound import reroute
from privsdk.outbound.outgoing import Outgoing
from privsdk.types import (
    ChatResponse,
    EmbedResponse,
    Image,
    Message,
    ResponseFormat,
    StreamEnd,
    StreamEvent,
    Text,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
)
from privsdk.usage.record import new_request_id
from privsdk_bedrock import convert, eventstream

if TYPE_CHECKING:
    from privsdk.outbound.judge import Pass

#: privsdk's finish reasons as Converse's stop reasons.
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "content_filtered",
    "error": "malformed_model_output",
    "other": "end_turn",
}
#: A failure of the alternative as Bedrock names it: the error code (``x-amzn-ErrorType``) by privsdk's kind.
ERROR_CODES = {
    "rate_limited": "ThrottlingException",
    "timeout": "ModelTimeoutException",
    "unavailable": "ServiceUnavailableException",
    "bad_request": "ValidationException",
    "content_refused": "ValidationException",
    "auth_failed": "AccessDeniedException",
    "not_found": "ResourceNotFoundException",
}
_ERROR_NAMESPACE = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
_AWS_ONLY = "it is meant for Bedrock's own service, which the alternative is not"
#: Converse fields privsdk cannot carry to the alternative (log metadata, latency-optimised inference, service
#: tiers): honoured only at the value that asks for nothing, refused otherwise. ``modelId`` is the path's.
_SERVICE_ONLY: Mapping[str, reroute.Carry] = {
    "modelId": reroute.READ,
    "requestMetadata": reroute.default_only({}, why=_AWS_ONLY),
    "performanceConfig": reroute.default_only({"latency": "standard"}, why=_AWS_ONLY),
    "serviceTier": reroute.default_only({"type": "default"}, why=_AWS_ONLY),
}
_DROPPED = frozenset(_SERVICE_ONLY)
_CARRIED = frozenset({"messages", "system", "inferenceConfig", "toolConfig", "outputConfig"})
_INFERENCE = {"maxTokens": "max_tokens", "temperature": "temperature", "topP": "top_p", "stopSequences": "stop"}
_TITAN_FIELDS = frozenset({"inputText", "dimensions", "normalize", "embeddingTypes"})
_COHERE_FIELDS = frozenset({"texts", "input_type", "embedding_types", "truncate", "output_dimension"})
_INPUT_TYPES = frozenset({"search_document", "search_query", "classification", "clustering"})


class _Refuse(Exception):
    """The request cannot be served elsewhere as asked: ``what`` names the operation or field (never content)."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


def send(out: Outgoing, ticket: Pass) -> Any:
    """Answer a rerouted Bedrock request from ``ticket.decision.chosen``: a botocore ``AWSResponse``."""
    operation = ticket.verdict.asks.operation if ticket.verdict.asks else "other"
    try:
        model, action = _route(out)
        body = out.json()
        if action in ("converse", "converse-stream") and operation in ("chat", "stream") and isinstance(body, dict):
            messages, options = chat_call(body)
            return _chat(out, ticket, messages, options, stream=action == "converse-stream")
        if action == "invoke" and operation == "embed" and isinstance(body, dict):
            return _embed(out, ticket, model, body)
        raise _Refuse(_WHAT.get(action, operation))
    except _Refuse as refused:
        raise reroute.unsupported(ticket, refused.what) from None
    except (Unsupported, InvalidInput, KeyError, TypeError, ValueError):
        # The alternative's adapter cannot take this request as it is, or the body is not what the service
        # documents: refused, naming neither the body nor the adapter's message.
        raise reroute.unsupported(ticket, f"this {operation} request on {ticket.decision.chosen}") from None


#: What a refusal names for Bedrock actions that never reroute.
_WHAT = {
    "invoke": "InvokeModel with a model's native body",
    "invoke-with-response-stream": "InvokeModelWithResponseStream",
    "count-tokens": "CountTokens",
}


def _route(out: Outgoing) -> tuple[str, str]:
    """(model id, action) of a bedrock-runtime ``/model/{modelId}/{action}`` path; ("", "") for any other."""
    parts = out.path.split("/")
    if len(parts) != 4 or parts[0] or parts[1] != "model":
        return "", ""
    return unquote(parts[2]), parts[3]


# -- chat ---------------------------------------------------------------------------------------------------------


def chat_call(body: Mapping[str, Any]) -> tuple[list[Message], dict[str, Any]]:
    """A Converse body as privsdk messages and chat options; refuses what privsdk cannot carry to another model."""
    unknown = sorted(set(body) - _CARRIED - _DROPPED)
    if unknown:
        raise _Refuse(f"Converse {unknown[0]}")
    try:
        reroute.carry({k: v for k, v in body.items() if k in _SERVICE_ONLY}, _SERVICE_ONLY)
    except reroute.Unmappable as exc:
        raise _Refuse(f"Converse {exc.what}") from None
    messages: list[Message] = []
    for block in body.get("system") or ():
        kind = _kind(block, "system")
        if kind == "text":
            messages.append(Message("system", block["text"]))
        elif kind != "cachePoint":
            raise _Refuse(f"Converse system {kind}")
    for message in body.get("messages") or ():
        messages.extend(_messages(message))
    options: dict[str, Any] = {}
    inference = body.get("inferenceConfig") or {}
    for key, value in inference.items():
        if key not in _INFERENCE:
            raise _Refuse(f"Converse inferenceConfig.{key}")
        options[_INFERENCE[key]] = value
    if body.get("toolConfig"):
        options.update(_tools(body["toolConfig"]))
    if body.get("outputConfig"):
        options["response_format"] = _response_format(body["outputConfig"])
    return messages, options


def _kind(block: object, where: str) -> str:
    """The one key of a Converse union block (``text``, ``image``, ``toolUse``, ...)."""
    if not isinstance(block, dict) or len(block) != 1:
        raise _Refuse(f"Converse {where} block")
    return str(next(iter(block)))


def _messages(message: Mapping[str, Any]) -> list[Message]:
    """One Converse message as privsdk messages: a user turn's tool results become ``tool`` messages."""
    role = message.get("role")
    if role not in ("user", "assistant"):
        raise _Refuse("Converse role")
    found: list[Message] = []
    parts: list[Text | Image] = []
    calls: list[ToolCall] = []

    def flush() -> None:
        if parts:
            found.append(Message(role, tuple(parts)))
            parts.clear()

    for block in message.get("content") or ():
        kind = _kind(block, "content")
        if kind == "text":
            parts.append(Text(block["text"]))
        elif kind == "image":
            parts.append(_image(block["image"]))
        elif kind == "toolUse" and role == "assistant":
            use = block["toolUse"]
            calls.append(ToolCall(use["toolUseId"], use["name"], json.dumps(use.get("input") or {})))
        elif kind == "toolResult" and role == "user":
            flush()
            found.append(_tool_result(block["toolResult"]))
        elif kind != "cachePoint":
            raise _Refuse(f"Converse {kind} content")
    if role == "assistant":
        content: str | tuple[Text | Image, ...] = tuple(parts) if parts else ""
        return [Message("assistant", content, tuple(calls))] if parts or calls else []
    flush()
    return found


def _image(image: Mapping[str, Any]) -> Image:
    source = image.get("source") or {}
    if set(source) != {"bytes"}:
        raise _Refuse("Converse image from s3Location")  # the alternative cannot read the tenant's bucket
    return Image(data=base64.b64decode(source["bytes"]), media_type=f"image/{image.get('format', 'png')}")


def _tool_result(result: Mapping[str, Any]) -> Message:
    if result.get("status", "success") != "success":
        raise _Refuse("Converse toolResult status")  # an error status has no place in privsdk's messages
    texts: list[str] = []
    for part in result.get("content") or ():
        kind = _kind(part, "toolResult")
        if kind == "text":
            texts.append(part["text"])
        elif kind == "json":
            texts.append(json.dumps(part["json"]))
        else:
            raise _Refuse(f"Converse toolResult {kind}")
    return Message("tool", "".join(texts), tool_call_id=result["toolUseId"])


def _tools(config: Mapping[str, Any]) -> dict[str, Any]:
    tools: list[Tool] = []
    for tool in config.get("tools") or ():
        kind = _kind(tool, "tool")
        if kind == "cachePoint":
            continue
        if kind != "toolSpec":
            raise _Refuse(f"Converse {kind}")  # systemTool: Bedrock's own hosted tools
        spec = tool["toolSpec"]
        if set(spec) - {"name", "description", "inputSchema", "strict"}:  # a newer botocore's: never dropped unsaid
            raise _Refuse("Converse toolSpec fields beyond name, description, inputSchema and strict")
        schema = (spec.get("inputSchema") or {}).get("json")
        if not isinstance(schema, dict):
            raise _Refuse("Converse toolSpec.inputSchema")
        strict = spec.get("strict")
        tools.append(
            Tool(spec["name"], spec.get("description", ""), schema, strict if isinstance(strict, bool) else None)
        )
    options: dict[str, Any] = {"tools": tools}
    choice = config.get("toolChoice")
    if choice:
        kind = _kind(choice, "toolChoice")
        if kind == "auto":
            options["tool_choice"] = "auto"
        elif kind == "any" or (kind == "tool" and [t.name for t in tools] == [choice["tool"].get("name")]):
            options["tool_choice"] = "required"  # one named tool among one offered is "call a tool"
        else:
            raise _Refuse("Converse toolChoice.tool")
    return options


def _response_format(config: Mapping[str, Any]) -> ResponseFormat:
    text_format = config.get("textFormat") or {}
    structure = text_format.get("structure") or {}
    schema = structure.get("jsonSchema") or {}
    # A schema and its name are carried; anything beside them (a reasoning effort, a schema's description) would be
    # dropped unsaid, so it refuses.
    if set(config) - {"textFormat"} or set(text_format) - {"type", "structure"} or set(structure) - {"jsonSchema"}:
        raise _Refuse("Converse outputConfig fields beyond textFormat")
    if set(schema) - {"schema", "name"}:
        raise _Refuse("Converse outputConfig jsonSchema fields beyond schema and name")
    if text_format.get("type") != "json_schema" or not isinstance(schema.get("schema"), str):
        raise _Refuse("Converse outputConfig")
    try:
        parsed = json.loads(schema["schema"])
    except ValueError:
        raise _Refuse("Converse outputConfig schema") from None
    return ResponseFormat(parsed, schema.get("name") or "response")


def _chat(out: Outgoing, ticket: Pass, messages: list[Message], options: dict[str, Any], *, stream: bool) -> Any:
    client, chosen = reroute.client(ticket.guard), str(ticket.decision.chosen)
    options.update(reroute.options(ticket), **reroute.timeout(ticket))
    t0 = time.perf_counter()
    try:
        if stream:
            events = client.chat(chosen, messages, stream=True, **options)
            return _response(
                out,
                200,
                {"Content-Type": "application/vnd.amazon.eventstream"},
                _Body(_frames(events, t0), events.close),
            )
        return _json(out, converse(client.chat(chosen, messages, **options), _ms(t0)))
    except VendorError as exc:
        return _error(out, exc)


def _ms(t0: float) -> int:
    return int((time.perf_counter() - t0) * 1000)


def converse(response: ChatResponse, latency_ms: int) -> dict[str, Any]:
    """A Converse answer for a privsdk one."""
    content: list[dict[str, Any]] = [{"text": response.text}] if response.text or not response.tool_calls else []
    for call in response.tool_calls:
        content.append({"toolUse": {"toolUseId": call.id, "name": call.name, "input": _arguments(call.arguments)}})
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": STOP_REASONS.get(response.finish_reason, "end_turn"),
        "usage": _usage(response.usage.input_tokens, response.usage.output_tokens),
        "metrics": {"latencyMs": latency_ms},
    }


def _arguments(arguments: str) -> Any:
    """Tool call arguments as Converse's ``input`` object (a model that sent no JSON object sent none)."""
    try:
        parsed = json.loads(arguments) if arguments else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _usage(prompt: int | None, completion: int | None) -> dict[str, int]:
    p, c = prompt or 0, completion or 0
    return {"inputTokens": p, "outputTokens": c, "totalTokens": p + c}


def _frames(events: Iterator[StreamEvent], t0: float) -> Iterator[bytes]:
    """privsdk stream events as ConverseStream's: a content block per text run and per tool call."""
    yield eventstream.event("messageStart", {"role": "assistant"})
    index = -1
    delta: dict[str, Any]
    current: tuple[str, int] | None = None  # ("text", 0) or ("tool", call number) of the open block
    try:
        for item in events:
            if isinstance(item, TextDelta):
                if current != ("text", 0):
                    if current is not None:
                        yield eventstream.event("contentBlockStop", {"contentBlockIndex": index})
                    index, current = index + 1, ("text", 0)
                delta = {"text": item.text}
            elif isinstance(item, ToolCallDelta):
                if current != ("tool", item.call):
                    if current is not None:
                        yield eventstream.event("contentBlockStop", {"contentBlockIndex": index})
                    index, current = index + 1, ("tool", item.call)
                    start = {"toolUse": {"toolUseId": item.id or "", "name": item.name or ""}}
                    yield eventstream.event("contentBlockStart", {"contentBlockIndex": index, "start": start})
                if not item.arguments:
                    continue
                delta = {"toolUse": {"input": item.arguments}}
            elif isinstance(item, StreamEnd):
                if current is not None:
                    yield eventstream.event("contentBlockStop", {"contentBlockIndex": index})
                yield eventstream.event("messageStop", {"stopReason": STOP_REASONS.get(item.finish_reason, "end_turn")})
                usage = _usage(item.usage.input_tokens, item.usage.output_tokens)
                yield eventstream.event("metadata", {"usage": usage, "metrics": {"latencyMs": _ms(t0)}})
                continue
            else:
                continue
            yield eventstream.event("contentBlockDelta", {"contentBlockIndex": index, "delta": delta})
    except VendorError as exc:
        # Mid-stream, as ConverseStream reports it: an in-band exception botocore raises from the app's loop.
        code = ERROR_CODES.get(exc.kind, "InternalServerException")
        if exc.kind in ("connection_lost", "timeout"):
            code = "ModelStreamErrorException"
        yield eventstream.exception(code[0].lower() + code[1:], str(exc))


# -- embeddings ---------------------------------------------------------------------------------------------------


def _embed(out: Outgoing, ticket: Pass, model: str, body: Mapping[str, Any]) -> Any:
    family = convert.family(model)
    options = {**reroute.options(ticket), **reroute.timeout(ticket)}
    client, chosen = reroute.client(ticket.guard), str(ticket.decision.chosen)
    if family == "titan-embed":
        texts, dimensions, answer = _titan(model, body)
    elif family == "cohere-embed":
        texts, dimensions, answer = _cohere(body)
        options["input_type"] = body["input_type"]
    else:
        raise _Refuse(f"InvokeModel body of {convert.base_model(model)}")  # a model's native body: not mapped
    if dimensions is not None:
        options["dimensions"] = dimensions
    t0 = time.perf_counter()
    try:
        response = client.embed(chosen, texts, **options)
    except VendorError as exc:
        return _error(out, exc)
    if dimensions is not None and any(len(v) != dimensions for v in response.vectors):
        raise _Refuse(f"embeddings of {dimensions} dimensions from {chosen}")
    headers = {"X-Amzn-Bedrock-Invocation-Latency": str(_ms(t0))}
    if response.usage.input_tokens is not None:
        headers["X-Amzn-Bedrock-Input-Token-Count"] = str(response.usage.input_tokens)
    return _json(out, answer(response), headers)


def _titan(model: str, body: Mapping[str, Any]) -> tuple[list[str], int | None, Callable[[EmbedResponse], Any]]:
    unknown = sorted(set(body) - _TITAN_FIELDS)
    if unknown:
        raise _Refuse(f"Titan embeddings {unknown[0]}")
    types = body.get("embeddingTypes")
    if types is not None and list(types) != ["float"]:
        raise _Refuse("Titan embeddingTypes other than float")  # binary vectors of another model: not mapped
    text = body.get("inputText")
    if not isinstance(text, str):
        raise _Refuse("Titan embeddings without inputText")
    v2 = convert.base_model(model).startswith(convert.TITAN_DIMENSIONS)
    if not v2 and set(body) != {"inputText"}:
        raise _Refuse("Titan embeddings options of V2 on an earlier model")  # Bedrock would reject them
    # Titan Text Embeddings V2 returns unit vectors unless told otherwise: so do the alternative's.
    normalize = v2 and body.get("normalize", True)

    def answer(response: EmbedResponse) -> dict[str, Any]:
        vector = _unit(response.vectors[0]) if normalize else response.vectors[0]
        found: dict[str, Any] = {"embedding": vector, "inputTextTokenCount": response.usage.input_tokens or 0}
        if types is not None:
            found["embeddingsByType"] = {"float": vector}
        return found

    dimensions = body.get("dimensions")
    return [text], dimensions if isinstance(dimensions, int) else None, answer


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


def _cohere(body: Mapping[str, Any]) -> tuple[list[str], int | None, Callable[[EmbedResponse], Any]]:
    unknown = sorted(set(body) - _COHERE_FIELDS)
    if unknown:
        raise _Refuse(f"Cohere embeddings {unknown[0]}")  # images, inputs: not text embeddings
    texts = body.get("texts")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise _Refuse("Cohere embeddings without texts")
    if body.get("input_type") not in _INPUT_TYPES:
        raise _Refuse("Cohere embeddings input_type")
    types = body.get("embedding_types")
    if types is not None and list(types) != ["float"]:
        raise _Refuse("Cohere embedding_types other than float")
    if body.get("truncate", "NONE") not in ("NONE", "END"):
        raise _Refuse("Cohere truncate START")  # the alternative cuts long texts at their end, if at all

    def answer(response: EmbedResponse) -> dict[str, Any]:
        by_type = types is not None
        return {
            "id": new_request_id(),
            "texts": texts,
            "embeddings": {"float": response.vectors} if by_type else response.vectors,
            "response_type": "embeddings_by_type" if by_type else "embeddings_floats",
        }

    dimensions = body.get("output_dimension")
    return list(texts), dimensions if isinstance(dimensions, int) else None, answer


# -- the answer botocore reads ------------------------------------------------------------------------------------


class _Body:
    """The raw body botocore reads from an answer: ``stream()`` (event streams, error bodies), ``read()``
    (InvokeModel's StreamingBody) and ``close()``, as urllib3's response offers them."""

    def __init__(self, chunks: Iterator[bytes], on_close: Callable[[], None] | None = None):
        self._chunks = chunks
        self._buffer = b""
        self._on_close = on_close

    def stream(self, amt: int | None = None, decode_content: bool | None = None) -> Iterator[bytes]:
        if self._buffer:
            buffered, self._buffer = self._buffer, b""
            yield buffered
        yield from self._chunks

    def read(self, amt: int | None = None) -> bytes:
        while amt is None or len(self._buffer) < amt:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if amt is None:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:amt], self._buffer[amt:]
        return data

    def close(self) -> None:
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()


def _response(out: Outgoing, status: int, headers: dict[str, str], body: _Body) -> Any:
    from botocore.awsrequest import AWSResponse

    url = f"{out.scheme}://{out.host}{f':{out.port}' if out.port else ''}{out.path}"
    return AWSResponse(url, status, {"x-amzn-RequestId": new_request_id(), **headers}, body)


def _json(out: Outgoing, data: Any, headers: Mapping[str, str] | None = None, status: int = 200) -> Any:
    payload = json.dumps(data).encode()
    all_headers = {"Content-Type": "application/json", "Content-Length": str(len(payload)), **(headers or {})}
    return _response(out, status, all_headers, _Body(iter((payload,))))


def _error(out: Outgoing, exc: VendorError) -> Any:
    """The failure as Bedrock would answer it, from privsdk's content-free error (never the vendor's text). An
    alternative that did not answer within the client's ``read_timeout`` is botocore's own read timeout, which its
    retries treat as they treat one of a request sent to Bedrock."""
    if exc.kind == "timeout":
        from botocore.exceptions import ReadTimeoutError

        port = f":{out.port}" if out.port is not None else ""
        raise ReadTimeoutError(endpoint_url=f"{out.scheme}://{out.host}{port}{out.path}") from None
    code = ERROR_CODES.get(exc.kind, "InternalServerException")
    return _json(out, {"message": str(exc)}, {"x-amzn-ErrorType": code + _ERROR_NAMESPACE}, reroute.status(exc))
