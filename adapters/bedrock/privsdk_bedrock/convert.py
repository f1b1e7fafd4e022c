"""privsdk requests as Bedrock Converse and InvokeModel calls, and their answers back.

Chat goes through Converse, which speaks one shape for every model family.
Embeddings and rerank have no such API: InvokeModel takes each family's own
body, so only the families below are spoken, and any other model cannot embed
or rerank (the adapter says so before any network).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from privsdk.errors import ConnectionLost, InvalidInput, Unsupported
from privsdk.messages import named_tool
from privsdk.outbound.outgoing import MEDIA_TYPE, shown_name
from privsdk.types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    FinishReason,
    Image,
    Message,
    Ranked,
    RerankRequest,
    StreamEnd,
    StreamEvent,
    Text,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from privsdk.vendor_errors import ANSWER_ERRORS, unreadable_answer
from privsdk_bedrock.errors import VENDOR

#: Cross-Region inference profile ids are a geography prefix on a model id (``eu.anthropic.claude-...``).
#: privsdk's sampling settings under Converse's inferenceConfig names (Converse has no seed: refused earlier).
_INFERENCE = {"max_tokens": "maxTokens", "temperature": "temperature", "top_p": "topP", "stop": "stopSequences"}
PROFILE_PREFIXES = frozenset({"us", "eu", "apac", "jp", "au", "ca", "us-gov", "global"})
TITAN_EMBED = ("amazon.titan-embed-text-", "amazon.titan-embed-g1-text")
TITAN_DIMENSIONS = "amazon.titan-embed-text-v2"
COHERE_EMBED = "cohere.embed-"
COHERE_DIMENSIONS = "cohere.embed-v4"
COHERE_RERANK = "cohere.rerank-"
#: The models Converse's toolChoice ``tool`` (one named tool) is for (botocore's SpecificToolChoice).
NAMED_TOOL_CHOICE = ("anthropic.claude", "amazon.nova")
#: What each model family can do here; every model not named by an InvokeModel family chats through Converse.
OPERATIONS = {
    "titan-embed": frozenset({"embed"}),
    "cohere-embed": frozenset({"embed"}),
    "cohere-rerank": frozenset({"rerank"}),
    "converse": frozenset({"chat", "stream"}),
}
INPUT_TOKENS_HEADER = "x-amzn-bedrock-input-token-count"

FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "malformed_model_output": "error",
    "malformed_tool_use": "error",
}
_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}


def base_model(model: str) -> str:
    """The foundation model id inside a model id, an inference profile id or an ARN."""
    name = model.rsplit("/", 1)[-1]
    geography, dot, rest = name.partition(".")
    return rest if dot and geography in PROFILE_PREFIXES else name


def family(model: str) -> str:
    base = base_model(model)
    if base.startswith(TITAN_EMBED):
        return "titan-embed"
    if base.startswith(COHERE_EMBED):
        return "cohere-embed"
    if base.startswith(COHERE_RERANK):
        return "cohere-rerank"
    return "converse"


# -- chat ---------------------------------------------------------------------------------------------------------


def converse_kwargs(model: str, request: ChatRequest) -> dict[str, Any]:
    """The keyword arguments of ``converse``/``converse_stream``; ``request.extra`` is merged in at the top level."""
    if request.seed is not None:
        raise Unsupported("Bedrock Converse has no seed; a model's own field can go in additionalModelRequestFields")
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "system":
            if not isinstance(message.content, str) and any(isinstance(p, Image) for p in message.content):
                raise Unsupported("Bedrock Converse takes no image in a system message")
            system.append({"text": message.text()})
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if messages and messages[-1]["role"] == role:
            # Converse wants roles to alternate: tool results and the user turn after them share one user message.
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    kwargs: dict[str, Any] = {"modelId": model, "messages": messages}
    if system:
        kwargs["system"] = system
    inference = request.sampling(_INFERENCE)
    if inference:
        kwargs["inferenceConfig"] = inference
    tool_config = _tool_config(model, request)
    if tool_config is not None:
        kwargs["toolConfig"] = tool_config
    if request.response_format is not None:
        schema = request.response_format.schema
        if schema is None:
            raise Unsupported("Bedrock Converse has no plain JSON mode; give response_format a schema")
        structure = {"jsonSchema": {"schema": json.dumps(schema), "name": request.response_format.name}}
        kwargs["outputConfig"] = {"textFormat": {"type": "json_schema", "structure": structure}}
    if request.extra:
        kwargs.update(request.extra)
    return kwargs


def _part(part: Text | Image) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"text": part.text}
    image_format = _IMAGE_FORMATS.get(part.media_type)
    if image_format is None:
        # Named only as a media type: an Image built by the app (or read from a rerouted request) may hold any text.
        shown = shown_name(part.media_type, "media type", MEDIA_TYPE)
        raise Unsupported(f"Bedrock Converse takes png, jpeg, gif or webp images; this image's media type is {shown}")
    if part.data is not None:
        return {"image": {"format": image_format, "source": {"bytes": part.data}}}
    if part.url is not None and part.url.startswith("s3://"):
        return {"image": {"format": image_format, "source": {"s3Location": {"uri": part.url}}}}
    raise Unsupported("Bedrock Converse takes images as bytes or s3:// URLs, not web URLs")


def _parts(content: str | tuple[Text | Image, ...]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    return [_part(p) for p in content if not (isinstance(p, Text) and not p.text)]


def _blocks(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        if message.tool_call_id is None:
            raise InvalidInput("a tool message needs the tool_call_id it answers")
        return [{"toolResult": {"toolUseId": message.tool_call_id, "content": _parts(message.content)}}]
    blocks = _parts(message.content)
    for call in message.tool_calls:
        try:
            arguments = json.loads(call.arguments) if call.arguments else {}
        except ValueError:
            raise Unsupported("Bedrock Converse takes tool call arguments as a JSON object only") from None
        blocks.append({"toolUse": {"toolUseId": call.id, "name": call.name, "input": arguments}})
    return blocks


def _tool_config(model: str, request: ChatRequest) -> dict[str, Any] | None:
    if not request.tools:
        return None
    if request.tool_choice == "none":
        # Converse has no "none": a model offered no tools calls none, but a conversation with tool turns needs them.
        if any(m.role == "tool" or m.tool_calls for m in request.messages):
            raise Unsupported("Bedrock Converse has no tool_choice none once the conversation holds tool calls")
        return None
    tools = []
    for tool in request.tools:
        spec: dict[str, Any] = {"name": tool.name, "inputSchema": {"json": dict(tool.parameters)}}
        if tool.description:
            spec["description"] = tool.description
        if tool.strict is not None:
            spec["strict"] = tool.strict
        tools.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": tools}
    if request.tool_choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif request.tool_choice == "required":
        config["toolChoice"] = {"any": {}}
    elif request.tool_choice is not None:  # a named function: sent, never dropped (the model could call none)
        name = named_tool(request.tool_choice)
        if not base_model(model).startswith(NAMED_TOOL_CHOICE):
            raise Unsupported("Bedrock Converse takes a tool_choice naming a function for Claude and Nova models only")
        config["toolChoice"] = {"tool": {"name": name}}
    return config


def _usage(usage: Mapping[str, Any] | None) -> Usage:
    if not usage:
        return Usage()
    return Usage(usage.get("inputTokens"), usage.get("outputTokens"))


def chat_response(response: dict[str, Any], model: str) -> ChatResponse:
    texts: list[str] = []
    calls: list[ToolCall] = []
    try:
        for block in response["output"]["message"]["content"]:
            if "text" in block:
                texts.append(block["text"])
            elif "toolUse" in block:
                use = block["toolUse"]
                calls.append(ToolCall(use["toolUseId"], use["name"], json.dumps(use["input"])))
        finish = FINISH.get(response.get("stopReason", ""), "other")
        return ChatResponse("".join(texts), tuple(calls), finish, _usage(response.get("usage")), model, response)
    except ANSWER_ERRORS:  # a 200 without Converse's shape (botocore does not check answers against the model)
        raise unreadable_answer(VENDOR) from None


def stream_events(events: Iterable[dict[str, Any]], model: str) -> Iterator[StreamEvent]:
    """ConverseStream's events as privsdk's; a stream that ends before ``messageStop`` was cut."""
    calls: dict[int, int] = {}  # contentBlockIndex -> tool call number
    finish: FinishReason | None = None
    usage = Usage()
    for event in events:
        kind = next(iter(event))
        body = event[kind]
        if kind == "contentBlockDelta":
            delta = body["delta"]
            text = delta.get("text")
            if text:
                yield TextDelta(text)
            elif "toolUse" in delta:
                yield ToolCallDelta(calls[body["contentBlockIndex"]], arguments=delta["toolUse"]["input"])
        elif kind == "contentBlockStart":
            use = body["start"].get("toolUse")
            if use is not None:
                call = calls[body["contentBlockIndex"]] = len(calls)
                yield ToolCallDelta(call, id=use["toolUseId"], name=use["name"])
        elif kind == "messageStop":
            finish = FINISH.get(body["stopReason"], "other")
        elif kind == "metadata":
            usage = _usage(body.get("usage"))
    if finish is None:
        raise ConnectionLost(VENDOR)
    yield StreamEnd(finish, usage, model)


# -- embed and rerank ---------------------------------------------------------------------------------------------


def embed_bodies(model: str, request: EmbedRequest) -> list[dict[str, Any]]:
    """InvokeModel bodies: one per text for Titan (it embeds one text a call), one for all texts for Cohere.

    Titan has no input types, so an ``input_type`` is Unsupported there (its vectors would not be what the
    caller asked for); Cohere requires one, so ``search_document`` is sent when none is given.
    """
    base = base_model(model)
    if family(model) == "titan-embed":
        if request.input_type is not None:
            raise Unsupported(f"{base} embeds every text alike and cannot take input_type {request.input_type!r}")
        if request.dimensions is not None and not base.startswith(TITAN_DIMENSIONS):
            raise Unsupported(f"{base} has one vector size; dimensions needs Titan Text Embeddings V2")
        size = {} if request.dimensions is None else {"dimensions": request.dimensions}
        return [{"inputText": text, **size, **request.extra} for text in request.texts]
    body: dict[str, Any] = {
        "texts": list(request.texts),
        "input_type": request.input_type or "search_document",
        "embedding_types": ["float"],
    }
    if request.dimensions is not None:
        if not base.startswith(COHERE_DIMENSIONS):
            raise Unsupported(f"{base} has one vector size; dimensions needs Cohere Embed v4")
        body["output_dimension"] = request.dimensions
    body.update(request.extra)
    return [body]


def input_tokens(body: Mapping[str, Any], headers: Mapping[str, str]) -> int | None:
    """Bedrock's count from the response header, else the body's own (Titan's ``inputTextTokenCount``)."""
    counted = headers.get(INPUT_TOKENS_HEADER)
    if counted is not None:
        return int(counted)
    count = body.get("inputTextTokenCount")
    return count if isinstance(count, int) else None


def embed_vectors(body: Mapping[str, Any]) -> list[list[float]]:
    if "embedding" in body:
        return [body["embedding"]]
    embeddings = body["embeddings"]  # a list, or by type when embedding_types was asked for
    vectors: list[list[float]] = embeddings["float"] if isinstance(embeddings, dict) else embeddings
    return vectors


def rerank_body(request: RerankRequest) -> dict[str, Any]:
    # Cohere Rerank on Bedrock answers to its v2 API only when told so.
    body: dict[str, Any] = {"query": request.query, "documents": list(request.documents), "api_version": 2}
    if request.top_n is not None:
        body["top_n"] = request.top_n
    body.update(request.extra)
    return body


def ranked(body: Mapping[str, Any]) -> list[Ranked]:
    return [Ranked(r["index"], r["relevance_score"]) for r in body["results"]]


def search_units(body: Mapping[str, Any]) -> int | None:
    units = body.get("meta", {}).get("billed_units", {}).get("search_units")
    return int(units) if units is not None else None
