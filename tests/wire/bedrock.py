"""Amazon Bedrock runtime on the wire: Converse, ConverseStream and InvokeModel as boto3 reaches them.

The app checks what the real service would reject (a missing SigV4 or Bearer
Authorization, a model id not URL-encoded in the path, Converse bodies that
break its shape rules, InvokeModel bodies a model family does not take) and
answers deterministically from the request: the reply echoes the last user
text, token counts are word counts, so tests can assert what came back.
Streams use the AWS event-stream binary framing, one frame per HTTP chunk.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

from tests.wire.server import Recorded, Reply, Status, json_reply

PATH = re.compile(
    r"/model/(?P<model>[^/]+)/(?P<action>converse|converse-stream|invoke|invoke-with-response-stream|count-tokens)"
)
SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[A-Z0-9]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/bedrock/aws4_request, "
    r"SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}"
)
BEARER = re.compile(r"Bearer (?P<token>\S+)")

_CONVERSE_KEYS = {
    "messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig", "additionalModelRequestFields",
    "promptVariables", "additionalModelResponseFieldPaths", "requestMetadata", "performanceConfig", "serviceTier",
    "outputConfig",
}  # fmt: skip
_INFERENCE_KEYS = {"maxTokens", "temperature", "topP", "stopSequences"}
_IMAGE_FORMATS = {"png", "jpeg", "gif", "webp"}
_STOP_REASONS = {
    "end_turn", "tool_use", "max_tokens", "stop_sequence", "guardrail_intervened", "content_filtered",
    "malformed_model_output", "malformed_tool_use", "model_context_window_exceeded",
}  # fmt: skip
_INPUT_TYPES = {"search_document", "search_query", "classification", "clustering"}
#: Fixed answers of the bedrock control plane and bedrock-agent-runtime calls the guard tests make.
_OTHER_SERVICES: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/foundation-models"): {"modelSummaries": []},
    ("POST", "/model-invocation-job"): {"jobArn": "arn:aws:bedrock:eu-central-1:123456789012:model-invocation-job/j1"},
    ("POST", "/rerank"): {"results": [{"index": 0, "relevanceScore": 0.5}]},
}


class BedrockWire:
    """The app. ``stop_reason`` overrides the stop reason of the next answers (a guardrail, max tokens)."""

    def __init__(self) -> None:
        self.stop_reason: str | None = None

    def __call__(self, request: Recorded) -> Reply:
        if (request.method, request.path) in _OTHER_SERVICES:
            _check_auth(request.headers)
            return json_reply(_OTHER_SERVICES[request.method, request.path])
        if request.method != "POST":
            raise ValueError(f"method {request.method}")
        match = PATH.fullmatch(request.path)
        if match is None:
            raise ValueError(f"no such path {request.path}")
        model = unquote(match["model"])
        if match["model"] != quote(model, safe="-_.~"):
            raise ValueError(f"model id not URL-encoded in {request.path}")
        _check_auth(request.headers)
        body = request.json()
        if match["action"] == "invoke":
            _check_json_headers(request.headers)
            return invoke(model, body)
        if match["action"] == "invoke-with-response-stream":
            return invoke_stream(model, body)
        if match["action"] == "count-tokens":
            check_converse(body["input"]["converse"])
            return json_reply({"inputTokens": _words(_request_text(body["input"]["converse"]))})
        if request.headers.get("content-type") != "application/json":
            raise ValueError("Converse needs Content-Type: application/json")
        check_converse(body)
        answer = _answer(body, self.stop_reason)
        if match["action"] == "converse":
            return json_reply(answer)
        return Reply(200, headers={"Content-Type": "application/vnd.amazon.eventstream"}, chunks=stream_frames(answer))


# -- validation ---------------------------------------------------------------------------------------------------


def _check_auth(headers: Mapping[str, str]) -> None:
    auth = headers.get("authorization", "")
    if BEARER.fullmatch(auth):
        return
    if not SIGV4.fullmatch(auth) or "x-amz-date" not in headers:
        raise ValueError("no SigV4 or Bearer Authorization")


def _check_json_headers(headers: Mapping[str, str]) -> None:
    if headers.get("content-type") != "application/json" or headers.get("accept") != "application/json":
        raise ValueError("InvokeModel here needs Content-Type and Accept application/json")


def _only(block: Mapping[str, Any], allowed: set[str], what: str) -> str:
    """The one key of a union block, which must be among ``allowed``."""
    if len(block) != 1 or next(iter(block)) not in allowed:
        raise ValueError(f"{what} must have exactly one of {sorted(allowed)}: {sorted(block)}")
    return next(iter(block))


def _keys(obj: Mapping[str, Any], allowed: set[str], required: set[str], what: str) -> None:
    if not isinstance(obj, dict) or not set(obj) <= allowed or not required <= set(obj):
        raise ValueError(f"{what}: keys {sorted(obj) if isinstance(obj, dict) else obj!r}")


def _check_text(text: object, what: str) -> None:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{what}: blank text")


def _check_image(image: Mapping[str, Any]) -> None:
    _keys(image, {"format", "source"}, {"format", "source"}, "image")
    if image["format"] not in _IMAGE_FORMATS:
        raise ValueError(f"image format {image['format']}")
    kind = _only(image["source"], {"bytes", "s3Location"}, "image source")
    if kind == "bytes":
        base64.b64decode(image["source"]["bytes"], validate=True)
    elif not image["source"]["s3Location"]["uri"].startswith("s3://"):
        raise ValueError("s3Location uri")


def _check_tool_result(result: Mapping[str, Any], open_calls: set[str]) -> None:
    _keys(result, {"toolUseId", "content", "status"}, {"toolUseId", "content"}, "toolResult")
    if result["toolUseId"] not in open_calls:
        raise ValueError(f"toolResult for unknown toolUseId {result['toolUseId']}")
    for part in result["content"]:
        kind = _only(part, {"text", "json", "image"}, "toolResult content")
        if kind == "image":
            _check_image(part["image"])


def check_converse(body: Mapping[str, Any]) -> None:
    """Raise where Bedrock's Converse would answer ValidationException."""
    _keys(body, _CONVERSE_KEYS, {"messages"}, "Converse body")
    messages = body["messages"]
    if not messages or messages[0]["role"] != "user":
        raise ValueError("the conversation must start with a user message")
    uses_tools = False
    open_calls: set[str] = set()
    for i, message in enumerate(messages):
        _keys(message, {"role", "content"}, {"role", "content"}, "message")
        if message["role"] != ("user" if i % 2 == 0 else "assistant"):
            raise ValueError("roles must alternate user/assistant")
        if not message["content"]:
            raise ValueError("empty content")
        for block in message["content"]:
            kind = _only(block, {"text", "image", "toolUse", "toolResult", "cachePoint"}, "content block")
            if kind == "cachePoint":
                continue
            if kind == "text":
                _check_text(block["text"], "text block")
            elif kind == "image":
                _check_image(block["image"])
            elif kind == "toolUse":
                if message["role"] != "assistant":
                    raise ValueError("toolUse outside an assistant message")
                _keys(block["toolUse"], {"toolUseId", "name", "input"}, {"toolUseId", "name", "input"}, "toolUse")
                if not isinstance(block["toolUse"]["input"], dict):
                    raise ValueError("toolUse input must be an object")
                open_calls.add(block["toolUse"]["toolUseId"])
                uses_tools = True
            else:
                if message["role"] != "user":
                    raise ValueError("toolResult outside a user message")
                _check_tool_result(block["toolResult"], open_calls)
                uses_tools = True
    for block in body.get("system", ()):
        if _only(block, {"text", "cachePoint"}, "system block") == "text":
            _check_text(block["text"], "system block")
    inference = body.get("inferenceConfig", {})
    _keys(inference, _INFERENCE_KEYS, set(), "inferenceConfig")
    if "maxTokens" in inference and (not isinstance(inference["maxTokens"], int) or inference["maxTokens"] < 1):
        raise ValueError("maxTokens")
    if "toolConfig" in body:
        _check_tool_config(body["toolConfig"])
    elif uses_tools:
        raise ValueError("toolConfig is required when messages hold toolUse or toolResult blocks")
    if "outputConfig" in body:
        text_format = body["outputConfig"]["textFormat"]
        if text_format["type"] != "json_schema":
            raise ValueError("textFormat type")
        json.loads(text_format["structure"]["jsonSchema"]["schema"])


def _check_tool_config(config: Mapping[str, Any]) -> None:
    _keys(config, {"tools", "toolChoice"}, {"tools"}, "toolConfig")
    if not config["tools"]:
        raise ValueError("toolConfig.tools is empty")
    for tool in config["tools"]:
        _only(tool, {"toolSpec"}, "tool")
        spec = tool["toolSpec"]
        _keys(spec, {"name", "description", "inputSchema", "strict"}, {"name", "inputSchema"}, "toolSpec")
        if "description" in spec:
            _check_text(spec["description"], "tool description")
        if not isinstance(spec["inputSchema"].get("json"), dict):
            raise ValueError("inputSchema.json must be an object")
    if "toolChoice" in config:
        kind = _only(config["toolChoice"], {"auto", "any", "tool"}, "toolChoice")
        if kind == "tool" and "name" not in config["toolChoice"]["tool"]:
            raise ValueError("toolChoice.tool needs a name")


# -- answers ------------------------------------------------------------------------------------------------------


def _words(text: str) -> int:
    return len(text.split())


def _request_text(body: Mapping[str, Any]) -> str:
    parts = [block["text"] for block in body.get("system", ()) if "text" in block]
    for message in body["messages"]:
        for block in message["content"]:
            if "text" in block:
                parts.append(block["text"])
            elif "toolResult" in block:
                parts.extend(p["text"] for p in block["toolResult"]["content"] if "text" in p)
    return " ".join(parts)


def _answer(body: Mapping[str, Any], stop_reason: str | None) -> dict[str, Any]:
    """A Converse response: a tool call when tools are offered and the user just spoke, else an echo."""
    last = body["messages"][-1]["content"]
    results = [b["toolResult"] for b in last if "toolResult" in b]
    said = " ".join(b["text"] for b in last if "text" in b)
    content: list[dict[str, Any]]
    tools = body.get("toolConfig", {}).get("tools", [])
    if tools and not results:
        name = tools[0]["toolSpec"]["name"]
        content = [
            {"text": "Calling a tool."},
            {"toolUse": {"toolUseId": "tooluse_1", "name": name, "input": {"q": said}}},
        ]
        reason = "tool_use"
    else:
        text = "Tool said: " + " ".join(p["text"] for r in results for p in r["content"] if "text" in p)
        content = [{"text": text if results else "You said: " + said}]
        reason = "end_turn"
    output_words = sum(_words(b["text"]) for b in content if "text" in b)
    input_words = _words(_request_text(body))
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason or reason,
        "usage": {"inputTokens": input_words, "outputTokens": output_words, "totalTokens": input_words + output_words},
        "metrics": {"latencyMs": 7},
    }


def _vector(text: str, dimensions: int) -> list[float]:
    seed = sum(map(ord, text))
    return [((seed + i) % 100) / 100 for i in range(dimensions)]


def invoke(model: str, body: Mapping[str, Any]) -> Reply:
    """InvokeModel for the embedding and rerank families the adapter speaks."""
    base = model.rsplit("/", 1)[-1]
    if base.startswith("amazon.titan-embed-text-v2"):
        _keys(body, {"inputText", "dimensions", "normalize"}, {"inputText"}, "Titan embed body")
        _check_text(body["inputText"], "inputText")
        if body.get("dimensions", 1024) not in (256, 512, 1024):
            raise ValueError("Titan dimensions")
        tokens = _words(body["inputText"])
        answer = {"embedding": _vector(body["inputText"], body.get("dimensions", 1024)), "inputTextTokenCount": tokens}
        return json_reply(answer, headers={"X-Amzn-Bedrock-Input-Token-Count": str(tokens)})
    if base.startswith("cohere.embed-"):
        allowed = {"texts", "input_type", "embedding_types", "truncate", "output_dimension"}
        _keys(body, allowed, {"texts", "input_type"}, "Cohere embed body")
        if not 1 <= len(body["texts"]) <= 96 or body["input_type"] not in _INPUT_TYPES:
            raise ValueError("Cohere embed texts or input_type")
        if "output_dimension" in body and not base.startswith("cohere.embed-v4"):
            raise ValueError("output_dimension is for embed-v4 only")
        vectors = [_vector(text, body.get("output_dimension", 8)) for text in body["texts"]]
        tokens = sum(_words(text) for text in body["texts"])
        embeddings: Any = vectors
        if "embedding_types" in body:
            embeddings = {kind: vectors for kind in body["embedding_types"]}
        answer = {"id": "emb-1", "texts": body["texts"], "embeddings": embeddings}
        answer["response_type"] = "embeddings_by_type" if "embedding_types" in body else "embeddings_floats"
        return json_reply(answer, headers={"X-Amzn-Bedrock-Input-Token-Count": str(tokens)})
    if base.startswith("cohere.rerank-"):
        _keys(body, {"query", "documents", "top_n", "api_version"}, {"query", "documents", "api_version"}, "rerank")
        if body["api_version"] < 2:
            raise ValueError("api_version must be >= 2")
        query = set(body["query"].lower().split())
        scores = [len(query & set(d.lower().split())) / max(len(query), 1) for d in body["documents"]]
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[: body.get("top_n")]
        answer = {"id": "rr-1", "results": [{"index": i, "relevance_score": scores[i]} for i in order]}
        return json_reply(answer, headers={"X-Amzn-Bedrock-Input-Token-Count": str(_words(body["query"]))})
    if "anthropic_version" in body:
        text = _anthropic_answer(body)
        answer = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": _anthropic_input(body), "output_tokens": _words(text)},
        }
        headers = {
            "X-Amzn-Bedrock-Input-Token-Count": str(_anthropic_input(body)),
            "X-Amzn-Bedrock-Output-Token-Count": str(_words(text)),
        }
        return json_reply(answer, headers=headers)
    raise ValueError(f"no InvokeModel family here for {model}")


def _anthropic_input(body: Mapping[str, Any]) -> int:
    return sum(_words(m["content"]) if isinstance(m["content"], str) else 0 for m in body["messages"])


def _anthropic_answer(body: Mapping[str, Any]) -> str:
    """Anthropic's native Messages body (InvokeModel): an echo of the last user text."""
    if body.get("anthropic_version") != "bedrock-2023-05-31" or not body.get("messages"):
        raise ValueError("Anthropic body needs anthropic_version bedrock-2023-05-31 and messages")
    last = body["messages"][-1]["content"]
    return "You said: " + (last if isinstance(last, str) else " ".join(b.get("text", "") for b in last))


def invoke_stream(model: str, body: Mapping[str, Any]) -> Reply:
    """InvokeModelWithResponseStream for Anthropic bodies: ``chunk`` events, metrics on the last one."""
    text = _anthropic_answer(body)
    parts: list[dict[str, Any]] = [{"type": "message_start"}]
    parts += [{"type": "content_block_delta", "delta": {"type": "text_delta", "text": w + " "}} for w in text.split()]
    metrics = {"inputTokenCount": _anthropic_input(body), "outputTokenCount": _words(text)}
    parts.append({"type": "message_stop", "amazon-bedrock-invocationMetrics": metrics})
    frames = [chunk_event(part) for part in parts]
    return Reply(200, headers={"Content-Type": "application/vnd.amazon.eventstream"}, chunks=frames)


def chunk_event(payload: Mapping[str, Any]) -> bytes:
    """One InvokeModelWithResponseStream ``chunk``: the model's JSON, base64 in ``bytes``."""
    encoded = base64.b64encode(json.dumps(payload).encode()).decode()
    return frame(
        {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"},
        json.dumps({"bytes": encoded}).encode(),
    )


# -- AWS event-stream framing -------------------------------------------------------------------------------------


def frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude, prelude CRC32, string headers, payload, message CRC32."""
    encoded = b"".join(
        struct.pack(">B", len(name)) + name.encode() + b"\x07" + struct.pack(">H", len(value)) + value.encode()
        for name, value in headers.items()
    )
    prelude = struct.pack(">II", 16 + len(encoded) + len(payload), len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event(event_type: str, payload: Mapping[str, Any]) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, json.dumps(payload).encode())


def exception_frame(exception_type: str, message: str) -> bytes:
    """An in-band error, as ConverseStream sends one mid-stream (``throttlingException``, ...)."""
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return frame(headers, json.dumps({"message": message}).encode())


def stream_frames(answer: Mapping[str, Any]) -> list[bytes]:
    """A Converse answer as ConverseStream sends it: a text delta per word, tool input in two pieces."""
    frames = [event("messageStart", {"role": "assistant"})]
    for index, block in enumerate(answer["output"]["message"]["content"]):
        if "text" in block:
            words = block["text"].split(" ")
            for i, word in enumerate(words):
                piece = word if i == len(words) - 1 else word + " "
                frames.append(event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}}))
        else:
            use = block["toolUse"]
            start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
            frames.append(event("contentBlockStart", {"contentBlockIndex": index, "start": start}))
            arguments = json.dumps(use["input"])
            for piece in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
                frames.append(
                    event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}})
                )
        frames.append(event("contentBlockStop", {"contentBlockIndex": index}))
    frames.append(event("messageStop", {"stopReason": answer["stopReason"]}))
    frames.append(event("metadata", {"usage": answer["usage"], "metrics": {"latencyMs": 7}}))
    return frames


# -- errors -------------------------------------------------------------------------------------------------------


def error(status: int, error_type: str | None, message: str, headers: Mapping[str, str] | None = None) -> Status:
    """A fault answering as Bedrock does: JSON ``{"message"}`` and the type in ``x-amzn-ErrorType``."""
    all_headers = {"x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    if error_type is None:
        all_headers = {}
    return Status(status, {**all_headers, **(headers or {})}, json.dumps({"message": message}).encode())


def sigv4(headers: Mapping[str, str]) -> re.Match[str]:
    """The parts of a request's SigV4 Authorization header (key id, date, region)."""
    match = SIGV4.fullmatch(headers.get("authorization", ""))
    if match is None:
        raise AssertionError("not SigV4-signed")
    return match
