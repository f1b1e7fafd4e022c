"""Amazon Bedrock on the wire: what a bedrock-runtime, bedrock-agent-runtime or bedrock request asks for.

The three services botocore (and cohere's Bedrock clients) reach are told
apart by the path's first segment, which no two of them share:

- bedrock-runtime: ``/model/{modelId}/converse`` (chat), ``/converse-stream``
  and ``/invoke-with-response-stream`` (stream), ``/invoke`` (chat, embed or
  rerank by the model family), ``/count-tokens`` (chat: the whole prompt is
  sent), ``/invoke-with-bidirectional-stream`` (realtime), ``/async-invoke``
  (batch), ``/guardrail...`` (other);
- bedrock-agent-runtime: ``/rerank``, ``/retrieveAndGenerate[Stream]``
  (chat/stream over a knowledge base, with a session Bedrock keeps),
  knowledge bases, agents, sessions, flows;
- bedrock (control plane): batch jobs (``/model-invocation-job``), model
  customization (fine_tune), model listings (``models``), everything else
  ``other``.

The model is the ``modelId`` path label, percent-decoded: a model id
(``anthropic.claude-3-haiku-20240307-v1:0``), a cross-Region inference profile
(``eu.anthropic...``) or an ARN. A foundation-model or inference-profile ARN
is reported as the id inside it; every other ARN (application inference
profiles, provisioned or custom models, prompts, marketplace endpoints) is
opaque and reported whole, so only a policy that declares it can allow it.

``location`` is the Region that serves the request: the one its SigV4
credential scope is signed for (AWS serves a request only in that Region,
whatever host it passed: a declared private endpoint or proxy shows none),
else the model ARN's; an ARN of another Region than the signature's is
refused. A request sent with a Bedrock API key (``Authorization: Bearer``)
has only its ARN's.

Every top-level field of a JSON body whose schema is AWS's own (Converse,
CountTokens, Rerank, RetrieveAndGenerate, batch and customization jobs) is
on its allow-list: any other field is refused, for a field privsdk has not
judged may make Bedrock keep, log or run something. InvokeModel bodies are
the model makers' own (Anthropic's, Meta's, Cohere's...): their features are
read, their fields are not listed.

Token counts come from the response: Converse's ``usage``, the ``metadata``
event of a ConverseStream, the last ``chunk`` of an
InvokeModelWithResponseStream (``amazon-bedrock-invocationMetrics``), and the
``X-Amzn-Bedrock-Input-Token-Count`` / ``-Output-Token-Count`` headers.
Streams use AWS event-stream framing; the meter keeps one frame at a time.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from privsdk.outbound.outgoing import (
    Asks,
    DuplicateKey,
    Outgoing,
    UnknownRoute,
    Unreadable,
    json_object,
    parse_json,
    shown_segment,
    unknown_field,
)
from privsdk.outbound.wire.meters import error_kind
from privsdk.outbound.wire.routes import after_prefix
from privsdk.usage.record import MAX_COUNT

#: Cross-Region inference profile ids are a geography prefix on a model id (``eu.anthropic.claude-...``).
PROFILE_PREFIXES = frozenset({"us", "eu", "apac", "jp", "au", "ca", "us-gov", "global"})
#: ARN resource types that name a model id the catalogue knows; any other ARN is opaque.
_TRANSPARENT_ARNS = frozenset({"foundation-model", "inference-profile"})
EMBED_PREFIXES = ("amazon.titan-embed", "cohere.embed", "twelvelabs.marengo-embed")
RERANK_PREFIXES = ("cohere.rerank", "amazon.rerank")
#: Families whose InvokeModel makes images (``images``), or video or speech (``other``): none is a chat, and the
#: catalogue has no facts for either, so such a request is refused whatever model family globs a target has.
MEDIA_PREFIXES = {
    "amazon.nova-canvas": "images",
    "amazon.titan-image": "images",
    "stability.": "images",
    "amazon.nova-reel": "other",
    "amazon.nova-sonic": "other",
    "luma.": "other",
}

INPUT_TOKENS_HEADER = "x-amzn-bedrock-input-token-count"
OUTPUT_TOKENS_HEADER = "x-amzn-bedrock-output-token-count"
INVOCATION_METRICS = "amazon-bedrock-invocationMetrics"

#: AWS Region -> the geography (privsdk.vocabulary.GEOGRAPHIES) its data centres are in. A Region not
#: listed has no geography privsdk can promise (me-south-1, il-central-1, af-south-1, cn-*, mx-central-1...).
#: Note eu-west-2 (London) is ``uk`` and eu-central-2 (Zurich) is ``ch``: neither is in the EEA. Every
#: ap-* Region is also inside AWS's ``apac`` geography; the country is given where GEOGRAPHIES has one.
REGION_GEOGRAPHY: dict[str, str] = {
    "us-east-1": "us", "us-east-2": "us", "us-west-1": "us", "us-west-2": "us",
    "us-gov-east-1": "us", "us-gov-west-1": "us",
    "ca-central-1": "ca", "ca-west-1": "ca",
    "eu-central-1": "eu", "eu-west-1": "eu", "eu-west-3": "eu", "eu-north-1": "eu", "eu-south-1": "eu",
    "eu-south-2": "eu", "eusc-de-east-1": "eu",
    "eu-west-2": "uk", "eu-central-2": "ch",
    "ap-northeast-1": "jp", "ap-northeast-3": "jp", "ap-northeast-2": "kr",
    "ap-south-1": "in", "ap-south-2": "in", "ap-southeast-1": "sg",
    "ap-southeast-2": "au", "ap-southeast-4": "au",
    "ap-southeast-3": "apac", "ap-southeast-5": "apac", "ap-southeast-7": "apac",
    "ap-east-1": "apac", "ap-east-2": "apac",
    "me-central-1": "ae", "sa-east-1": "br",
}  # fmt: skip

#: bedrock (control plane) path segments: GETs that list or describe models carry no content.
_RUNTIME_FIRSTS = frozenset(
    {"model", "async-invoke", "guardrail", "guardrail-checks", "rerank", "retrieveAndGenerate",
     "retrieveAndGenerateStream", "model-invocation-job", "model-invocation-jobs", "model-customization-jobs"}
)  # fmt: skip
_MODEL_LISTINGS = frozenset(
    {"foundation-models", "foundation-model-availability", "inference-profiles", "custom-models", "imported-models",
     "provisioned-model-throughput", "provisioned-model-throughputs", "prompt-routers",
     "list-foundation-model-agreement-offers"}
)  # fmt: skip
_CONTROL_OTHER = frozenset(
    {"advanced-prompt-optimization-job", "advanced-prompt-optimization-jobs", "automated-reasoning-policies",
     "create-foundation-model-agreement", "data-retention", "delete-foundation-model-agreement",
     "enforcedGuardrailsConfiguration", "evaluation-job", "evaluation-jobs", "guardrails", "listTagsForResource",
     "logging", "marketplace-model", "model-copy-jobs", "model-customization", "model-import-jobs",
     "resource-policy", "tagResource", "untagResource", "use-case-for-model-access"}
)  # fmt: skip
#: bedrock-agent-runtime path segments other than rerank and retrieve-and-generate.
_AGENT_RUNTIME: dict[str, str] = {
    "knowledgebases": "vector_stores",
    "agenticRetrieveStream": "vector_stores",
    "agents": "assistants",
    "sessions": "assistants",
    "flows": "other",
    "generateQuery": "other",
    "optimize-prompt": "other",
    "tags": "other",
}
#: Every first segment of a route this reader knows: what a gateway's prefix is read past to.
_FIRSTS = _RUNTIME_FIRSTS | _MODEL_LISTINGS | _CONTROL_OTHER | _AGENT_RUNTIME.keys()
#: Content block kinds that carry a file (Converse and Nova-style keys, Anthropic/OpenAI-style ``type`` values).
_FILE_BLOCKS = frozenset({"image", "document", "video", "audio"})
_FILE_TYPES = frozenset({"image", "document", "video", "audio", "image_url", "input_image", "input_audio", "file"})
_NO_FEATURES: frozenset[str] = frozenset()
_SIGV4 = "AWS4-HMAC-SHA256 Credential="

# The top-level fields of each body of AWS's own schema that is read: the members of its botocore input shape
# (botocore 1.43) less those in the URI (``modelId``), each read below or shaping only the answer. Any other field
# is refused (botocore itself sends no member its model lacks).
#: Converse and ConverseStream. Judged as shaping the answer: ``inferenceConfig``, ``outputConfig`` (a JSON schema
#: the answer follows), ``additionalModelResponseFieldPaths``, ``performanceConfig`` (the latency-optimized build of
#: a model, in the Region the request shows) and ``serviceTier`` (price and queueing: priority, default, flex,
#: reserved). ``requestMetadata`` only labels the account's own invocation logs, written (when the account turns
#: them on) to its own CloudWatch or S3. ``promptVariables`` only fill a Prompt management prompt that ``modelId``
#: names, an ARN privsdk reports whole so that only a policy declaring it can allow it (Bedrock ignores them
#: otherwise). ``additionalModelRequestFields`` is a model maker's own body, whose features are read as
#: InvokeModel's are. Left off: ``guardrailConfig``, which applies a guardrail configured out of the request's
#: sight, and a guardrail with a cross-Region profile moves the prompt and answer to other Regions of its
#: geography (docs.aws.amazon.com/bedrock/latest/userguide/guardrails-cross-region.html).
_CONVERSE_FIELDS = frozenset(
    {
        "messages", "system", "inferenceConfig", "toolConfig", "additionalModelRequestFields", "promptVariables",
        "additionalModelResponseFieldPaths", "requestMetadata", "performanceConfig", "serviceTier", "outputConfig",
    }
)  # fmt: skip
#: CountTokens: its ``input`` holds a Converse request's prompt (these fields) or an InvokeModel body.
_COUNT_TOKENS_FIELDS = frozenset({"input"})
_COUNT_CONVERSE_FIELDS = frozenset({"messages", "system", "toolConfig", "additionalModelRequestFields"})
#: bedrock-agent-runtime Rerank: ``sources`` are inline documents.
_RERANK_FIELDS = frozenset({"queries", "sources", "rerankingConfiguration", "nextToken"})
#: RetrieveAndGenerate[Stream], judged as kept in a session whatever its fields; ``userContext`` names the user
#: whose access the knowledge base's results are filtered by.
_RAG_FIELDS = frozenset(
    {"input", "retrieveAndGenerateConfiguration", "sessionConfiguration", "sessionId", "userContext"}
)
# Batch and model customization keep their inputs and outputs by nature, and are judged as the operations they
# are: every field their APIs take is on their lists.
_ASYNC_INVOKE_FIELDS = frozenset({"clientRequestToken", "modelId", "modelInput", "outputDataConfig", "tags"})
_BATCH_JOB_FIELDS = frozenset(
    {
        "jobName", "roleArn", "clientRequestToken", "modelId", "inputDataConfig", "outputDataConfig", "vpcConfig",
        "timeoutDurationInHours", "tags", "modelInvocationType",
    }
)  # fmt: skip
_CUSTOMIZATION_JOB_FIELDS = frozenset(
    {
        "jobName", "customModelName", "roleArn", "clientRequestToken", "baseModelIdentifier", "customizationType",
        "customModelKmsKeyId", "jobTags", "customModelTags", "trainingDataConfig", "validationDataConfig",
        "outputDataConfig", "hyperParameters", "vpcConfig", "customizationConfig",
    }
)  # fmt: skip
#: Why a guardrail is refused, wherever a request names one (Converse's ``guardrailConfig`` is off its list): it is
#: configured out of the request's sight, and one with a cross-Region guardrail profile runs in other Regions of its
#: geography (docs.aws.amazon.com/bedrock/latest/userguide/guardrails-cross-region.html).
_GUARDRAIL = "a guardrail is configured out of the request's sight, and may run in other Regions than the request's"
#: InvokeModel's guardrail, in a header (botocore's InvokeModelRequest: ``guardrailIdentifier``).
_GUARDRAIL_HEADER = "x-amzn-bedrock-guardrailidentifier"
#: The body a seam reports for a request body it cannot read without consuming it (a stream that cannot be
#: put back): the reader refuses such a request, whose body would otherwise be judged as empty.
UNREAD_BODY = b"\x00privsdk: a request body that cannot be read\x00"


# -- models -------------------------------------------------------------------------------------------------------


def model_of(identifier: str) -> tuple[str, str | None]:
    """The model a ``modelId`` names and the Region an ARN puts it in (None for a plain id)."""
    if not identifier.startswith("arn:"):
        return identifier, None
    parts = identifier.split(":", 5)
    if len(parts) != 6 or not parts[5]:
        return identifier, None
    region = parts[3] or None
    kind, _, ident = parts[5].partition("/")
    if parts[2] == "bedrock" and kind in _TRANSPARENT_ARNS and ident:
        return ident, region
    return identifier, region


def base_model(model: str) -> str:
    """The foundation model id inside a model id or an inference profile id."""
    geography, dot, rest = model.partition(".")
    return rest if dot and geography in PROFILE_PREFIXES else model


def invoke_operation(model: str, streamed: bool = False) -> str:
    """What InvokeModel (``streamed``: with a response stream) does for ``model``: an image, video or speech family's
    own operation, embed and rerank families, else chat or stream (opaque ARNs included)."""
    base = base_model(model)
    media = next((operation for prefix, operation in MEDIA_PREFIXES.items() if base.startswith(prefix)), None)
    if media is not None:
        return media
    if streamed:
        return "stream"
    if base.startswith(EMBED_PREFIXES) or (base.startswith("amazon.nova") and "-embed" in base):
        return "embed"
    if base.startswith(RERANK_PREFIXES):
        return "rerank"
    return "chat"


def geography(region: str) -> str | None:
    """The geography of an AWS Region, None where privsdk knows none."""
    return REGION_GEOGRAPHY.get(region)


def signed_region(headers: Mapping[str, str]) -> str | None:
    """The AWS Region a SigV4 ``Authorization`` header is signed for, None for any other (a Bedrock API key).

    The credential scope reads ``Credential=KEY/DATE/REGION/SERVICE/aws4_request``; no other part of the
    header holds a ``/``.
    """
    auth = headers.get("authorization")
    if auth is None:
        return None
    scope = auth.split("/", 4)
    if len(scope) != 5 or not scope[0].startswith(_SIGV4) or not scope[4].startswith("aws4_request,"):
        return None
    return scope[2] or None


def _served_in(arn_region: str | None, signed: str | None) -> str | None:
    """The Region that serves a request whose model ARN names ``arn_region`` and that is signed for ``signed``."""
    if arn_region is None or signed is None or arn_region == signed:
        return signed or arn_region
    raise Unreadable(
        "the model ARN names another AWS Region than the one the request is signed for: create the client "
        "with region_name set to the ARN's Region"
    )


# -- features -----------------------------------------------------------------------------------------------------


#: Tool types of a model's native body that the app runs itself: a function it defines (``custom``, ``function``),
#: or one Anthropic defines and the app executes (bash, the text editor, computer use, memory). Any other type is a
#: tool the vendor runs (Anthropic's web search and fetch, code execution, tool search, MCP toolsets; Writer's
#: Knowledge Graph; one newer than privsdk).
_CLIENT_TOOL_TYPES = frozenset({"custom", "function"})
_CLIENT_TOOL_PREFIXES = ("bash_", "text_editor_", "computer_", "memory_")


def _tool_type(kind: str, found: set[str]) -> None:
    """A typed tool in a model's native body (Anthropic ``web_search_20250305``, ...)."""
    if kind.startswith(("web_search", "web_fetch")):
        found.add("web_search")
    elif kind not in _CLIENT_TOOL_TYPES and not kind.startswith(_CLIENT_TOOL_PREFIXES):
        found.add("hosted_tools")


#: Keys whose value is a tool call's arguments: the app's own data, whose keys are never read as blocks.
_ARGUMENTS = frozenset({"input", "json"})


def _blocks(blocks: object, found: set[str]) -> None:
    """Features of a list of content blocks, in Converse shape or a model's native one, wherever they sit: a block
    may hold others (a tool result's content, a search result's, a document whose source is content blocks), and
    a cache breakpoint or a file on any of them counts."""
    if not isinstance(blocks, list):
        return
    for block in blocks:
        if not isinstance(block, dict):
            continue
        for key, value in block.items():
            if key in _FILE_BLOCKS:
                found.add("file_inputs")
            elif key == "cachePoint" or key == "cache_control":
                found.add("prompt_caching")
            if key not in _ARGUMENTS:
                if isinstance(value, list):
                    _blocks(value, found)
                elif isinstance(value, dict):
                    _blocks([value], found)
        kind = block.get("type")
        if isinstance(kind, str) and kind in _FILE_TYPES:
            found.add("file_inputs")


def _messages(messages: object, found: set[str]) -> None:
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                _blocks(message.get("content"), found)


def _tools(tools: object, found: set[str]) -> None:
    if not isinstance(tools, list):
        return
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        if "cachePoint" in tool or "cache_control" in tool:
            found.add("prompt_caching")
        system_tool = tool.get("systemTool")
        if isinstance(system_tool, dict):
            # Bedrock-hosted tools (Nova's web grounding is ``nova_grounding``): run by the vendor.
            name = str(system_tool.get("name", ""))
            found.add("web_search" if "grounding" in name or "search" in name else "hosted_tools")
        kind = tool.get("type")
        if isinstance(kind, str):
            _tool_type(kind, found)


_MEDIA_FIELDS = frozenset({"image", "video", "audio"})


def _native(body: Mapping[str, Any], found: set[str]) -> None:
    """Features of a model's native body (InvokeModel, or Converse's and RetrieveAndGenerate's
    additionalModelRequestFields)."""
    if "cache_control" in body:  # Anthropic's automatic caching: one breakpoint for the whole request
        found.add("prompt_caching")
    if body.get("mcp_servers"):  # Anthropic's MCP connector: the vendor calls the servers it names
        found.add("hosted_tools")
    _messages(body.get("messages"), found)
    system = body.get("system")
    if isinstance(system, list):
        _blocks(system, found)
    _tools(body.get("tools"), found)
    tool_config = body.get("toolConfig")
    if isinstance(tool_config, dict):
        _tools(tool_config.get("tools"), found)
    # Titan multimodal embeddings, Llama 3.2 vision, Cohere embed v4 images.
    if "inputImage" in body or "images" in body:
        found.add("file_inputs")
    # Nova multimodal embeddings: an image, a video or audio inside the task's parameters.
    for params in (body.get("singleEmbeddingParams"), body.get("segmentedEmbeddingParams")):
        if isinstance(params, dict) and not _MEDIA_FIELDS.isdisjoint(params):
            found.add("file_inputs")
    if isinstance(body.get("inputs"), list):
        for item in body["inputs"]:
            if isinstance(item, dict):
                _blocks(item.get("content"), found)


def converse_features(body: Mapping[str, Any]) -> frozenset[str]:
    """Features of a Converse/ConverseStream body (also CountTokens' ``converse`` input)."""
    found: set[str] = set()
    _messages(body.get("messages"), found)
    _blocks(body.get("system"), found)
    tool_config = body.get("toolConfig")
    if isinstance(tool_config, dict):
        _tools(tool_config.get("tools"), found)
    extra = body.get("additionalModelRequestFields")
    if isinstance(extra, dict):
        _native(extra, found)
    return frozenset(found) if found else _NO_FEATURES


def native_features(body: Mapping[str, Any]) -> frozenset[str]:
    """Features of a model maker's own body (Anthropic Messages, Meta, Mistral, Cohere): what Bedrock's InvokeModel
    and Vertex AI's ``rawPredict`` for partner models carry."""
    found: set[str] = set()
    _native(body, found)
    return frozenset(found) if found else _NO_FEATURES


def _dig(body: Mapping[str, Any], *keys: str) -> Any:
    value: Any = body
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


# -- reading ------------------------------------------------------------------------------------------------------


class BedrockReader:
    """The :class:`~privsdk.outbound.outgoing.WireReader` for Amazon Bedrock."""

    def read(self, request: Outgoing) -> Asks:
        if request.body is UNREAD_BODY:
            # Judging it as empty would let through whatever it holds: refused whatever the operation.
            raise Unreadable(
                "the request body is a stream privsdk cannot read and put back (a file-like object without "
                "seek and tell, such as a pipe or a socket): pass the body as bytes, or as a seekable file "
                "such as io.BytesIO"
            )
        signed = signed_region(request.headers)
        parts = request.path.split("/")
        first = parts[1] if len(parts) > 1 else ""
        if first not in _FIRSTS and len(parts) > 2:
            # A gateway's own prefix (/bedrock/model/...): Bedrock's route follows it, and is read as Bedrock sees it.
            route = after_prefix(parts[1:], _FIRSTS, _FIRSTS)
            if route[0] in _FIRSTS:
                return self.read(request._replace(path="/" + "/".join(route)))
        if first == "model":
            return self._model(request, parts, signed)
        if first == "async-invoke":
            if request.method == "POST":
                body = json_object(request, "Bedrock", "StartAsyncInvoke", empty=True)
                if not _ASYNC_INVOKE_FIELDS.issuperset(body):
                    unknown_field(body, _ASYNC_INVOKE_FIELDS, "a Bedrock StartAsyncInvoke request")
                return self._asks("batch", body.get("modelId"), _NO_FEATURES, signed)
            return Asks("batch", location=signed)
        if first in ("guardrail", "guardrail-checks"):
            return Asks("other", location=signed)
        if first == "rerank":
            body = json_object(request, "Bedrock", "Rerank", empty=True)
            if not _RERANK_FIELDS.issuperset(body):
                unknown_field(body, _RERANK_FIELDS, "a Bedrock Rerank request")
            arn = _dig(
                body, "rerankingConfiguration", "bedrockRerankingConfiguration", "modelConfiguration", "modelArn"
            )
            return self._asks("rerank", arn, _NO_FEATURES, signed)
        if first in ("retrieveAndGenerate", "retrieveAndGenerateStream"):
            return self._retrieve_and_generate(request, first, signed)
        if first in _AGENT_RUNTIME:
            return Asks(_AGENT_RUNTIME[first], location=signed)
        return self._control(request, first, signed)

    @staticmethod
    def _asks(operation: str, identifier: object, features: frozenset[str], signed: str | None) -> Asks:
        if not isinstance(identifier, str) or not identifier:
            raise Unreadable(f"{operation} request names no model")
        model, region = model_of(identifier)
        return Asks(operation, model, features, location=_served_in(region, signed))

    def _model(self, request: Outgoing, parts: list[str], signed: str | None) -> Asks:
        if len(parts) != 4 or not parts[2]:
            raise UnknownRoute("unknown path shape /model/...: expected /model/{modelId}/{action}")
        model, region = model_of(unquote(parts[2]))
        region = _served_in(region, signed)
        action = parts[3]
        if action in ("converse", "converse-stream"):
            body = json_object(request, "Bedrock", "Converse", empty=True)
            if not _CONVERSE_FIELDS.issuperset(body):
                unknown_field(body, _CONVERSE_FIELDS, "a Bedrock Converse request")
            features = converse_features(body)
            operation = "chat" if action == "converse" else "stream"
        elif action in ("invoke", "invoke-with-response-stream"):
            if _GUARDRAIL_HEADER in request.headers:
                raise Unreadable(f"a guardrail named in the X-Amzn-Bedrock-GuardrailIdentifier header: {_GUARDRAIL}")
            features = native_features(json_object(request, "Bedrock", "InvokeModel", empty=True))
            operation = invoke_operation(model, streamed=action != "invoke")
        elif action == "count-tokens":
            # CountTokens sends the whole prompt to the model's Region, so it is judged as the chat it counts.
            body = json_object(request, "Bedrock", "CountTokens", empty=True)
            if not _COUNT_TOKENS_FIELDS.issuperset(body):
                unknown_field(body, _COUNT_TOKENS_FIELDS, "a Bedrock CountTokens request")
            converse = _dig(body, "input", "converse")
            invoke = _dig(body, "input", "invokeModel", "body")
            if isinstance(converse, dict):
                if not _COUNT_CONVERSE_FIELDS.issuperset(converse):
                    unknown_field(converse, _COUNT_CONVERSE_FIELDS, "a Bedrock CountTokens converse input")
                features = converse_features(converse)
            elif isinstance(invoke, str):
                try:  # a blob: base64 on the wire, as botocore sends it and Bedrock reads it
                    native = parse_json(base64.b64decode(invoke, validate=True))
                except DuplicateKey:
                    raise Unreadable("CountTokens invokeModel body names a field twice in one object") from None
                except (binascii.Error, ValueError):
                    raise Unreadable("CountTokens invokeModel body is not base64-encoded JSON") from None
                features = native_features(native) if isinstance(native, dict) else _NO_FEATURES
            else:
                raise Unreadable("CountTokens input is neither converse nor invokeModel")
            operation = "chat"
        elif action == "invoke-with-bidirectional-stream":
            return Asks("realtime", model, location=region)
        else:
            raise UnknownRoute(f"unknown path shape /model/{{modelId}}/{shown_segment(action)}")
        return Asks(operation, model, features, location=region)

    def _retrieve_and_generate(self, request: Outgoing, first: str, signed: str | None) -> Asks:
        body = json_object(request, "Bedrock", "RetrieveAndGenerate", empty=True)
        if not _RAG_FIELDS.issuperset(body):
            unknown_field(body, _RAG_FIELDS, "a Bedrock RetrieveAndGenerate request")
        config = body.get("retrieveAndGenerateConfiguration")
        if not isinstance(config, dict):
            raise Unreadable("RetrieveAndGenerate has no retrieveAndGenerateConfiguration")
        # Bedrock keeps the conversation in a session between calls, whether or not the caller names one.
        found = {"stored_responses"}
        knowledge_base = config.get("knowledgeBaseConfiguration")
        external = config.get("externalSourcesConfiguration")
        if isinstance(knowledge_base, dict):
            found.add("file_search")
            source = knowledge_base
        elif isinstance(external, dict):
            found.add("file_inputs")
            source = external
        else:
            raise Unreadable("RetrieveAndGenerate configuration names no knowledge base or external sources")
        arn = source.get("modelArn")
        # The model's own fields, read as InvokeModel's are, where the answer is generated and (for a knowledge
        # base) where the query is orchestrated; a guardrail on the answer, refused as Converse's is.
        for stage in ("generationConfiguration", "orchestrationConfiguration"):
            settings = source.get(stage)
            if isinstance(settings, dict):
                if settings.get("guardrailConfiguration") is not None:
                    raise Unreadable(f"a guardrail in RetrieveAndGenerate's {stage}: {_GUARDRAIL}")
                extra = settings.get("additionalModelRequestFields")
                if isinstance(extra, dict):
                    _native(extra, found)
        operation = "chat" if first == "retrieveAndGenerate" else "stream"
        return self._asks(operation, arn, frozenset(found), signed)

    def _control(self, request: Outgoing, first: str, signed: str | None) -> Asks:
        if first in ("model-invocation-job", "model-invocation-jobs"):
            if request.method == "POST" and request.path == "/model-invocation-job":
                body = json_object(request, "Bedrock", "CreateModelInvocationJob", empty=True)
                if not _BATCH_JOB_FIELDS.issuperset(body):
                    unknown_field(body, _BATCH_JOB_FIELDS, "a Bedrock CreateModelInvocationJob request")
                return self._asks("batch", body.get("modelId"), _NO_FEATURES, signed)
            return Asks("batch", location=signed)
        if first == "model-customization-jobs":
            if request.method == "POST" and request.path == "/model-customization-jobs":
                body = json_object(request, "Bedrock", "CreateModelCustomizationJob", empty=True)
                if not _CUSTOMIZATION_JOB_FIELDS.issuperset(body):
                    unknown_field(body, _CUSTOMIZATION_JOB_FIELDS, "a Bedrock CreateModelCustomizationJob request")
                return self._asks("fine_tune", body.get("baseModelIdentifier"), _NO_FEATURES, signed)
            return Asks("fine_tune", location=signed)
        if first in _MODEL_LISTINGS:
            return Asks("models" if request.method == "GET" else "other", location=signed)
        if first in _CONTROL_OTHER:
            return Asks("other", location=signed)
        raise UnknownRoute(f"unknown path shape /{shown_segment(first)}/...")

    def meter(self, request: Outgoing, asks: Asks, status: int, headers: Mapping[str, str]) -> BedrockMeter | None:
        if status >= 300 or not request.path.startswith("/model/"):
            return None
        action = request.path.rsplit("/", 1)[-1]
        if action == "converse":
            kind = _JSON
        elif action == "converse-stream":
            kind = _CONVERSE_STREAM
        elif action == "invoke-with-response-stream":
            kind = _INVOKE_STREAM
        elif action == "invoke":
            kind = _HEADERS
        else:
            return None
        return BedrockMeter(kind, _count(headers.get(INPUT_TOKENS_HEADER)), _count(headers.get(OUTPUT_TOKENS_HEADER)))


# -- metering -----------------------------------------------------------------------------------------------------

_JSON, _CONVERSE_STREAM, _INVOKE_STREAM, _HEADERS = range(4)
#: An event-stream message is at most 16 MiB of payload plus headers; a larger prelude is a broken stream.
_MAX_FRAME = 24 * 1024 * 1024


def _count(value: object) -> int | None:
    """A count from a parsed answer (an int: never a bool or a float) or a header (ASCII digits); None for
    anything else or past MAX_COUNT. Never raises (``"²".isdigit()`` is true, and int() of 5,000 digits fails)."""
    if type(value) is int:
        return value if 0 <= value <= MAX_COUNT else None
    if type(value) is str and 0 < len(value) <= 16 and value.isascii() and value.isdigit():
        number = int(value)
        return number if number <= MAX_COUNT else None
    return None


_DECODER = json.JSONDecoder()


def _usage_object(body: bytes | bytearray) -> Any:
    """Converse's top-level ``usage`` object, parsed alone where it can be found, else from the whole body."""
    at = body.rfind(b'"usage"')
    if at >= 0:
        start = body.find(b"{", at)
        try:
            usage, _ = _DECODER.raw_decode(body[start:].decode())
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
            usage = None
        if isinstance(usage, dict) and "inputTokens" in usage:
            return usage
    try:
        return json.loads(body).get("usage")
    except (ValueError, AttributeError, RecursionError):
        return None


def _string_header(name: bytes, value: bytes) -> bytes:
    """An event-stream string header as encoded: name length, name, type 7, value length, value."""
    return bytes([len(name)]) + name + b"\x07" + len(value).to_bytes(2, "big") + value


#: The headers the meters look for, matched as bytes in a frame's header block (no header parsing per frame).
_EVENT = _string_header(b":message-type", b"event")
_METADATA = _string_header(b":event-type", b"metadata")
_CHUNK = _string_header(b":event-type", b"chunk")
#: An in-band error frame (``throttlingException``, ``modelStreamErrorException``, ...), the stream's last.
_EXCEPTION = _string_header(b":message-type", b"exception")
_EXCEPTION_TYPE = bytes([len(b":exception-type")]) + b":exception-type\x07"


class BedrockMeter:
    """Counts one Bedrock response's tokens; keeps only the numbers, and at most one stream frame."""

    __slots__ = ("_body", "_buffer", "_input", "_kind", "_last_chunk", "_output", "failed")

    def __init__(self, kind: int, input_tokens: int | None, output_tokens: int | None):
        self._kind = kind
        self._input = input_tokens
        self._output = output_tokens
        self._body = bytearray()
        self._buffer = bytearray()
        self._last_chunk: bytes | None = None
        #: The error class of an exception frame a stream ended with, None without one.
        self.failed: str | None = None

    def feed(self, chunk: bytes) -> None:
        if self._kind == _JSON:
            self._body += chunk
        elif self._kind != _HEADERS:
            self._buffer += chunk
            self._frames()

    def _frames(self) -> None:
        buffer = self._buffer
        while len(buffer) >= 12:
            total = int.from_bytes(buffer[0:4], "big")
            headers_len = int.from_bytes(buffer[4:8], "big")
            if total > _MAX_FRAME or total < 16 + headers_len:
                buffer.clear()  # not event-stream framing: count nothing rather than guess
                self._kind = _HEADERS
                return
            if len(buffer) < total:
                return
            headers = bytes(buffer[12 : 12 + headers_len])
            if _EVENT in headers:
                wanted = _METADATA if self._kind == _CONVERSE_STREAM else _CHUNK
                if wanted in headers:
                    payload = bytes(buffer[12 + headers_len : total - 4])
                    if self._kind == _CONVERSE_STREAM:
                        self._usage(payload)
                    else:
                        self._last_chunk = payload  # invocation metrics ride on the last chunk only
            elif _EXCEPTION in headers and self.failed is None:  # only a frame that is no event is searched again
                self.failed = error_kind(_exception_type(headers))
            del buffer[:total]

    def _usage(self, payload: bytes) -> None:
        try:
            usage = json.loads(payload).get("usage")
        except (ValueError, AttributeError, RecursionError):
            return
        if isinstance(usage, dict):
            self._input = _count(usage.get("inputTokens"))
            self._output = _count(usage.get("outputTokens"))

    def _invocation_metrics(self, payload: bytes) -> None:
        try:
            encoded = json.loads(payload).get("bytes")
            metrics = json.loads(base64.b64decode(encoded)).get(INVOCATION_METRICS)
        except (ValueError, AttributeError, TypeError, RecursionError, binascii.Error):
            return
        if isinstance(metrics, dict):
            self._input = _count(metrics.get("inputTokenCount"))
            self._output = _count(metrics.get("outputTokenCount"))

    def tokens(self) -> tuple[int | None, int | None]:
        if self._kind == _JSON and self._body:
            body, self._body = self._body, bytearray()
            usage = _usage_object(body)
            if isinstance(usage, dict):
                self._input = _count(usage.get("inputTokens"))
                self._output = _count(usage.get("outputTokens"))
        elif self._kind == _INVOKE_STREAM and self._last_chunk is not None:
            chunk, self._last_chunk = self._last_chunk, None
            self._invocation_metrics(chunk)
        return self._input, self._output


def _exception_type(headers: bytes) -> str | None:
    """The ``:exception-type`` string header of a frame's header block (``throttlingException``), None without it."""
    at = headers.find(_EXCEPTION_TYPE)
    if at < 0:
        return None
    start = at + len(_EXCEPTION_TYPE) + 2
    return headers[start : start + int.from_bytes(headers[start - 2 : start], "big")].decode("ascii", "replace")


READER = BedrockReader()
