"""Google's generative AI wire protocol: Vertex AI and the Gemini Developer API.

Both speak REST with the action after a colon in the last path segment
(``.../models/gemini-2.5-flash:generateContent``). Vertex AI puts the GCP
project and location in the path (``/v1/projects/{p}/locations/{l}/...``;
express mode, with an API key, leaves them out); the Gemini API has neither.
The reader takes the operation from the path, the model and publisher from
the path, and the features from the body (camelCase on the wire; the
services also take snake_case, so both spellings count). Each body it reads
(generateContent and its kin, batches, interactions, embeddings: embedContent,
batchEmbedContents, ``predict`` on an embedding model) has a list of the
fields google-genai sends, at each level read, and any other field is refused
by its name, never its value.

A Vertex AI endpoint (``endpoints/{id}:method``) is the project's own
deployment, whose ID its owner chose: the ID is read as a deployment that
names no model (:class:`EndpointAsks`), judged only through a configured
target that names it, never by the catalogue's model names.

Responses carry ``usageMetadata`` (JSON, SSE ``data:`` events with
``alt=sse``, or a JSON array streamed piece by piece); the meter finds that
object by its key whatever the framing, keeps it alone, and drops the rest.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote as _unquote

from privsdk.outbound.outgoing import (
    Asks,
    EndpointAsks,
    Outgoing,
    UnknownRoute,
    Unreadable,
    body_model,
    json_object,
    known_fields,
    shown_segment,
    unknown_field,
)
from privsdk.outbound.wire.bedrock import native_features
from privsdk.outbound.wire.meters import LastBytes, count
from privsdk.outbound.wire.openai import FIELDS as OPENAI_FIELDS  # the same lists and reading, not copies
from privsdk.outbound.wire.openai import _chat_features as openai_chat_features
from privsdk.usage.record import MAX_COUNT

# -- operations -------------------------------------------------------------------------------------

#: The action after ``:`` on a model (or endpoint) -> operation. ``countTokens`` and ``computeTokens`` send the
#: whole prompt to Google, so they are judged as chat. ``predict`` depends on the model (see _predict).
_METHODS = {
    "generateContent": "chat",
    "countTokens": "chat",
    "computeTokens": "chat",
    "rawPredict": "chat",  # partner models (Claude, Llama, Mistral) in their makers' own body format
    "generateAnswer": "chat",
    "generateText": "chat",
    "generateMessage": "chat",
    "countMessageTokens": "chat",
    "countTextTokens": "chat",
    "streamGenerateContent": "stream",
    "streamRawPredict": "stream",
    "serverStreamingPredict": "stream",
    "streamGenerateMessage": "stream",
    "embedContent": "embed",
    "batchEmbedContents": "embed",
    "embedText": "embed",
    "batchEmbedText": "embed",
    "batchGenerateContent": "batch",
    "asyncBatchEmbedContent": "batch",
    "predictLongRunning": "other",  # Veo video generation, a long-running operation that keeps its output
    "fetchPredictOperation": "other",
}
#: Collections under a version (or under ``projects/{p}/locations/{l}``) and what any request on them does.
_COLLECTIONS = {
    "batchPredictionJobs": "batch",
    "batches": "batch",
    "tuningJobs": "fine_tune",
    "files": "files",
    "ragCorpora": "vector_stores",
    "fileSearchStores": "vector_stores",
    "corpora": "vector_stores",
    "authTokens": "realtime",  # ephemeral tokens for the Live API
    "cachedContents": "other",  # a context cache: content the vendor stores (feature prompt_caching)
    "operations": "other",
    "agents": "other",
    "environments": "other",
    "triggers": "other",
    "webhooks": "other",
    "voices": "other",
    "decisions": "other",
    "credentials": "other",
    "reasoningEngines": "other",
    "customJobs": "other",
    "datasets": "other",
    "evaluationRuns": "other",
}
#: Model name prefixes whose ``predict`` is an embedding, and those whose ``predict`` makes or edits images.
_EMBEDDING_MODELS = ("text-embedding", "text-multilingual-embedding", "textembedding", "multimodalembedding")
_IMAGE_MODELS = ("imagen", "imagegeneration", "imagetext", "virtual-try-on", "image-segmentation")

# -- features ---------------------------------------------------------------------------------------

#: A ``tools[]`` entry of generateContent holds one of these keys (both spellings) -> feature (None: no feature).
#: Any other key is a tool kind the catalogue has no facts for, refused: ``parallelAiSearch`` and ``exaAiSearch``
#: send the user's queries to a third party (Parallel.ai, Exa.ai) that no source read says anything about, so they
#: are not Google Search grounding (``grounding_search``) and are not listed.
_TOOLS: dict[str, str | None] = {}
for _camel, _feature in (
    ("functionDeclarations", None),
    ("googleSearch", "grounding_search"),
    ("googleSearchRetrieval", "grounding_search"),
    ("enterpriseWebSearch", "grounding_search"),
    ("googleMaps", "grounding_maps"),
    ("retrieval", "file_search"),  # Vertex AI Search, RAG Engine, external retrieval: stored data
    ("fileSearch", "file_search"),
    ("codeExecution", "hosted_tools"),
    ("urlContext", "hosted_tools"),
    ("computerUse", "hosted_tools"),
    ("mcpServers", "hosted_tools"),
):
    _TOOLS[_camel] = _feature
    _TOOLS["".join("_" + c.lower() if c.isupper() else c for c in _camel)] = _feature
#: An Interactions API tool ``type`` -> feature.
_INTERACTION_TOOLS: dict[str, str | None] = {
    "function": None,
    "google_search": "grounding_search",
    "google_maps": "grounding_maps",
    "file_search": "file_search",
    "retrieval": "file_search",
    "code_execution": "hosted_tools",
    "url_context": "hosted_tools",
    "computer_use": "hosted_tools",
    "mcp_server": "hosted_tools",
    "tool_search": "hosted_tools",
}
_FILE_PARTS = frozenset({"inlineData", "inline_data", "fileData", "file_data"})
#: An output modality -> its feature (None: none). Any other (VIDEO, DOCUMENT) has no feature: refused.
_MODALITIES: dict[str, str | None] = {
    "TEXT": None,
    "MODALITY_UNSPECIFIED": None,
    "AUDIO": "audio_output",
    "IMAGE": "image_output",
}


def _spellings(*camels: str) -> frozenset[str]:
    """Each camelCase field name and its snake_case twin: the services take both."""
    return frozenset(n for c in camels for n in (c, "".join("_" + x.lower() if x.isupper() else x for x in c)))


#: The top-level fields of a GenerateContentRequest (also countTokens', computeTokens' and each inline batch
#: request's) that the reader reads or that carry nothing Google keeps or runs: what google-genai sends. Any other
#: field is refused, for a field privsdk has not read may make Google keep or log content or run a hosted tool
#: (``outputConfig`` writes generated media to Cloud Storage, and is refused so).
_GENERATE_FIELDS = _spellings(
    "model", "contents", "systemInstruction", "tools", "toolConfig", "safetySettings", "generationConfig", "labels",
    "cachedContent", "store", "serviceTier", "continuationToken", "modelArmorConfig", "generateContentRequest",
)  # fmt: skip
#: The generationConfig fields google-genai sends (Vertex and the Gemini API); any other is refused alike.
_GENERATION_FIELDS = _spellings(
    "temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "stopSequences", "responseLogprobs",
    "logprobs", "presencePenalty", "frequencyPenalty", "seed", "responseMimeType", "responseSchema",
    "responseJsonSchema", "routingConfig", "modelConfig", "responseModalities", "mediaResolution", "speechConfig",
    "audioTimestamp", "thinkingConfig", "imageConfig", "enableEnhancedCivicAnswers", "audioTranscriptionConfig",
    "enableAffectiveDialog", "translationConfig", "responseFormat",
)  # fmt: skip
#: The fields of the legacy methods (generateText, generateMessage, generateAnswer and their token counts).
_LEGACY_FIELDS = _spellings(
    "prompt", "contents", "temperature", "candidateCount", "maxOutputTokens", "topP", "topK", "safetySettings",
    "stopSequences", "answerStyle", "inlinePassages", "semanticRetriever",
)  # fmt: skip
_LEGACY_METHODS = frozenset(
    {"generateAnswer", "generateText", "generateMessage", "countMessageTokens", "countTextTokens"}
)
#: The fields of an EmbedContentRequest google-genai sends (``models.embed_content``): on the Gemini API each of
#: batchEmbedContents' ``requests`` with its options beside the content; on Vertex AI embedContent's body and each of
#: batchEmbedContents' ``requests`` with them in ``embedContentConfig`` (Vertex also takes them beside the content).
#: The options only shape the vector (``documentOcr`` and ``audioTrackExtraction`` how a file part is read, and a file
#: part is read for itself); any other field (``cachedContent``, ``store``, one newer than the SDK) is refused.
_EMBED_FIELDS = _spellings(
    "model", "content", "embedContentConfig", "taskType", "title", "outputDimensionality", "autoTruncate"
)
_EMBED_CONFIG_FIELDS = _spellings(
    "taskType", "title", "outputDimensionality", "autoTruncate", "documentOcr", "audioTrackExtraction"
)
_BATCH_EMBED_FIELDS = _spellings("requests")
#: Vertex's ``predict`` on a text-embedding model, as google-genai sends it: ``instances`` (each a text and its
#: options) and ``parameters``.
_PREDICT_EMBED_FIELDS = _spellings("instances", "parameters")
_PREDICT_INSTANCE_FIELDS = _spellings("content", "taskType", "title", "mimeType")
_PREDICT_PARAMETERS = _spellings("outputDimensionality", "autoTruncate")
#: The legacy embedding methods' bodies (``embedText``, ``batchEmbedText``, whose requests are ``embedText``'s).
_EMBED_TEXT_FIELDS = _spellings("model", "text")
_BATCH_EMBED_TEXT_FIELDS = _spellings("texts", "requests")
#: Service tiers that only set price and latency (google-genai's; the enum is case-insensitive). Another (the
#: Interactions API's ``deferred`` queues the request) is refused: what Google keeps while it waits is not stated.
_TIERS = frozenset({"unspecified", "service_tier_unspecified", "standard", "flex", "priority"})
#: The top-level fields of an Interactions API create request (google-genai's CreateModelInteraction and
#: CreateAgentInteraction) read below or carrying nothing Google keeps; any other is refused. ``webhook_config``
#: is left out: it has Google send events about the interaction to other addresses.
_INTERACTION_FIELDS = frozenset(
    {
        "model", "agent", "agent_config", "input", "system_instruction", "stream", "store", "background",
        "previous_interaction_id", "tools", "response_modalities", "response_format", "response_mime_type",
        "generation_config", "cached_content", "environment", "safety_settings", "labels", "service_tier",
        "continuation_token",
    }
)  # fmt: skip
#: An interaction's generation_config fields; ``video_config`` (video output) is left out, as no feature names it.
_INTERACTION_GENERATION = frozenset(
    {
        "max_output_tokens", "seed", "speech_config", "stop_sequences", "temperature", "thinking_level",
        "thinking_summaries", "tool_choice", "top_p", "transcription_config", "image_config",
    }
)  # fmt: skip
#: An output format's kind -> its feature: an interaction's response_format ``type`` (a JSON schema, the format's
#: older form, names a JSON type instead), a generationConfig responseFormat's key (Vertex). ``video`` has none.
_FORMATS: dict[str, str | None] = {"text": None, "audio": "audio_output", "image": "image_output"}
_JSON_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
#: The fields of the ``google`` extension object of Vertex's OpenAI-compatible API that bring nothing Google keeps,
#: and ``cached_content`` (a context cache: prompt_caching). Any other is refused.
_OPENAI_GOOGLE_FIELDS = frozenset({"thinking_config", "thought_tag_marker", "cached_content"})
_GOOGLE_EXTENSION = frozenset({"google", "extra_body"})
#: The top-level fields a body of Vertex's OpenAI-compatible API may hold: those of OpenAI's own request (privsdk's
#: OpenAI reader's lists), and for a generation the ``google`` extension object, at the top level or under a literal
#: ``extra_body`` key (read in _openai_features). Any other is refused.
_OPENAI_COMPATIBLE_FIELDS = {
    "chat/completions": OPENAI_FIELDS["chat/completions"] | _GOOGLE_EXTENSION,
    "completions": OPENAI_FIELDS["completions"] | _GOOGLE_EXTENSION,
    "embeddings": OPENAI_FIELDS["embeddings"],
}
_NO_FEATURES: frozenset[str] = frozenset()


def unquote(segment: str) -> str:
    """A path segment decoded (``claude-sonnet-4%405`` -> ``claude-sonnet-4@5``); most have nothing to decode."""
    return _unquote(segment) if "%" in segment else segment


#: The first segments of a route that has no API version first: media uploads and the Live API's WebSocket.
_ROUTE_STARTS = frozenset({"upload", "ws"})


def _version(segment: str) -> bool:
    """``v1``, ``v1beta``, ``v1beta1``, ``v1alpha``, ``v1internal``, ..."""
    return len(segment) >= 2 and segment[0] == "v" and segment[1].isdigit()


class GoogleReader:
    """The reader for Vertex AI and the Gemini Developer API (see the module doc)."""

    def read(self, request: Outgoing) -> Asks:
        segments = request.path.split("?", 1)[0].strip("/").split("/")
        if not (_version(segments[0]) or segments[0] in _ROUTE_STARTS):
            # A gateway's or proxy's prefix (PRIVSDK_ENDPOINTS=https://gw.internal/gemini=gemini.api): the route
            # starts at the first API version or upload/ws segment; without one, the path is refused below.
            segments = next(
                (segments[i:] for i, s in enumerate(segments) if _version(s) or s in _ROUTE_STARTS), segments
            )
        if segments[0] == "upload":  # media uploads: /upload/v1beta/files, /upload/v1beta/fileSearchStores/...
            segments = segments[1:]
        if segments and segments[0] == "ws":  # Live API websocket handshake ("/upload" alone leaves no segment)
            return Asks("realtime", publisher="google")
        if not segments or not _version(segments[0]):
            raise UnknownRoute(f"unknown path shape /{shown_segment(segments[0]) if segments else ''}/...")
        rest = segments[1:]
        project = location = None
        if rest and rest[0] == "projects":
            if len(rest) < 4 or rest[2] != "locations":
                raise UnknownRoute("a Vertex AI path must name projects/{project}/locations/{location}")
            project, location = unquote(rest[1]), unquote(rest[3])
            rest = rest[4:]
        if not rest:
            raise UnknownRoute("a path with no resource after the API version")
        head = rest[0].split(":", 1)[0]
        if head == "publishers":
            return self._publisher(request, rest, project, location)
        if head in ("models", "tunedModels"):
            return self._model(request, rest, project, location, publisher="google")
        if head == "endpoints":
            return self._endpoint(request, rest, project, location)
        if head == "interactions":
            return self._interaction(request, rest, project, location)
        operation = _COLLECTIONS.get(head)
        if operation is None:
            raise UnknownRoute(f"unknown path shape /{shown_segment(segments[0])}/{shown_segment(head)}/...")
        if head == "operations" or (len(rest) > 2 and rest[2].split(":", 1)[0] == "operations"):
            return Asks("other", project=project, location=location)
        features = frozenset({"prompt_caching"}) if head == "cachedContents" else _NO_FEATURES
        return Asks(operation, features=features, project=project, location=location)

    # -- path families ------------------------------------------------------------------------------

    def _publisher(self, request: Outgoing, rest: list[str], project: str | None, location: str | None) -> Asks:
        """``publishers/{publisher}/models[/{model}[:method]]``."""
        if len(rest) < 3 or rest[2] != "models":
            raise UnknownRoute("a publisher path must be publishers/{publisher}/models/...")
        return self._model(request, rest[2:], project, location, publisher=unquote(rest[1]))

    def _model(
        self, request: Outgoing, rest: list[str], project: str | None, location: str | None, *, publisher: str
    ) -> Asks:
        """``models`` / ``tunedModels`` (a listing, a model, or an action on one)."""
        kind = rest[0]
        if len(rest) == 1:  # the collection: list (GET) or, for tunedModels, create a tuning job (POST)
            if request.method == "GET":
                return Asks("models", project=project, location=location, publisher=publisher)
            if kind == "tunedModels" and request.method == "POST":
                return Asks("fine_tune", project=project, location=location, publisher=publisher)
            raise UnknownRoute(f"unknown request {request.method} on /{kind}")
        name, _, method = rest[1].partition(":")
        model = unquote(name)
        if kind == "tunedModels":
            model = f"tunedModels/{model}"
        if len(rest) > 2:  # models/{m}/operations/{op}: polling a long-running job
            if rest[2] == "operations":
                return Asks("other", model=model, project=project, location=location, publisher=publisher)
            raise UnknownRoute(f"unknown path shape /{kind}/{{model}}/{shown_segment(rest[2].split(':', 1)[0])}/...")
        if not method:
            operation = "models" if request.method == "GET" else "other"  # get / patch / delete of a model
            return Asks(operation, model=model, project=project, location=location, publisher=publisher)
        return self._action(request, method, model, None, project, location, publisher)

    def _endpoint(self, request: Outgoing, rest: list[str], project: str | None, location: str | None) -> Asks:
        """``endpoints/{id}:method`` (a tuned or deployed model: the model is whatever is deployed there) and the
        OpenAI-compatible ``endpoints/openapi/chat/completions``."""
        if len(rest) < 2:
            raise UnknownRoute("an endpoints path must name an endpoint")
        name, _, method = rest[1].partition(":")
        if name == "openapi" and not method:
            return self._openapi(request, rest[2:], project, location)
        if len(rest) > 2 or not method:
            raise UnknownRoute("an endpoints path must be endpoints/{endpoint}:{method}")
        return EndpointAsks._make(self._action(request, method, None, unquote(name), project, location, None))

    def _openapi(self, request: Outgoing, rest: list[str], project: str | None, location: str | None) -> Asks:
        tail = "/".join(rest)
        fields = _OPENAI_COMPATIBLE_FIELDS.get(tail)
        if fields is None:
            raise UnknownRoute("unknown path shape /endpoints/openapi/...")
        body = json_object(request, "Vertex", "OpenAI-compatible", empty=True)
        unknown_field(body, fields, f"a Vertex OpenAI-compatible {tail} request")
        # The model is named "publisher/model" (google/gemini-2.5-flash, meta/llama-4): read as a path names it.
        publisher, slash, name = (body_model(body, "Vertex") or "").partition("/")
        model = name if slash else publisher or None
        publisher = publisher if slash else ""
        if tail == "embeddings":
            return Asks("embed", model=model, project=project, location=location, publisher=publisher or None)
        operation = "stream" if body.get("stream") is True else "chat"
        features = _openai_features(body)
        return Asks(operation, model, features, project=project, location=location, publisher=publisher or None)

    def _action(
        self,
        request: Outgoing,
        method: str,
        model: str | None,
        endpoint: str | None,
        project: str | None,
        location: str | None,
        publisher: str | None,
    ) -> Asks:
        if method == "predict":
            operation = _predict(model)
        else:
            found = _METHODS.get(method)
            if found is None:
                raise UnknownRoute(f"unknown method :{shown_segment(method)} on a model")
            operation = found
        features = _NO_FEATURES
        if operation in ("chat", "stream", "batch", "embed"):
            body = json_object(request, "Google", method, empty=True)
            if method in ("rawPredict", "streamRawPredict"):  # the partner's own format (Anthropic: "stream")
                if body.get("stream") is True:
                    operation = "stream"
                # The same makers' bodies as Bedrock's InvokeModel carries: read alike (cache_control, web search).
                features = native_features(body)
            elif method == "batchGenerateContent":
                features = _batch_features(body, _generate_features)
            elif method == "asyncBatchEmbedContent":  # a batch of EmbedContentRequests, laid out as above
                features = _batch_features(body, functools.partial(_embed_request, model=model))
            elif operation == "embed":
                features = _embed_features(body, method, model)
            elif method in _LEGACY_METHODS:
                features = _legacy_features(body)
            else:
                features = _generate_features(body)
        return Asks(operation, model, features, endpoint, project, location, publisher)

    def _interaction(self, request: Outgoing, rest: list[str], project: str | None, location: str | None) -> Asks:
        """The Interactions API: ``POST interactions`` creates one (stored unless ``store: false``); reading,
        deleting or cancelling a stored one is ``responses_state``."""
        if len(rest) > 1 or request.method != "POST":
            return Asks("responses_state", project=project, location=location)
        body = json_object(request, "Google", "interactions", empty=True)
        unknown_field(body, _INTERACTION_FIELDS, "an interaction")
        features: set[str] = set()
        if body.get("store") is not False:
            features.add("stored_responses")
        if body.get("background") not in (None, False):  # anything but false may be read as on ("true")
            features.add("background")
        if body.get("previous_interaction_id"):
            features.add("stored_responses")
        if body.get("cached_content"):
            features.add("prompt_caching")
        for tool in _list(body.get("tools")):
            kind = tool.get("type") if isinstance(tool, dict) else None
            if not isinstance(kind, str) or kind not in _INTERACTION_TOOLS:
                raise Unreadable("unknown tool type in an interaction")
            feature = _INTERACTION_TOOLS[kind]
            if feature is not None:
                features.add(feature)
        features |= _modalities(body.get("response_modalities"))
        for fmt in _list(body.get("response_format")):
            features |= _response_format(fmt)
        config = body.get("generation_config")
        if config is not None:
            if not isinstance(config, dict):
                raise Unreadable("an interaction's generation_config is not an object")
            unknown_field(config, _INTERACTION_GENERATION, "an interaction's generation_config")
            if config.get("speech_config") is not None:
                features.add("audio_output")
            if config.get("image_config") is not None:
                features.add("image_output")
        _service_tier(body.get("service_tier"))
        if _has_file_input(body.get("input")):
            features.add("file_inputs")
        model = body_model(body, "Vertex")
        if body.get("agent") is not None or body.get("agent_config") is not None:
            features.add("hosted_tools")  # an agent (Deep Research) runs Google's tools on its own
        if body.get("environment") is not None:
            features.add("hosted_tools")  # a remote sandbox at Google (or one named by id) runs the model's code
        operation = "stream" if body.get("stream") is True else "chat"
        return Asks(operation, model, frozenset(features), project=project, location=location, publisher="google")

    # -- meter ----------------------------------------------------------------------------------------

    def meter(self, request: Outgoing, asks: Asks, status: int, headers: Mapping[str, str]) -> UsageMeter | None:
        if status >= 300 or asks.operation not in ("chat", "stream", "embed"):
            return None
        return UsageMeter(asks.operation == "stream")


def _predict(model: str | None) -> str:
    """``:predict`` embeds with the text-embedding models, makes images with Imagen; anything else is unread."""
    if model is None:
        return "other"  # a deployed endpoint: its model and so the meaning of predict are unknown here
    if model.startswith(_EMBEDDING_MODELS) or "embedding" in model:
        return "embed"
    if model.startswith(_IMAGE_MODELS):
        return "images"
    return "other"


def _list(value: Any) -> list[Any]:
    """A repeated field's values. Google's JSON front end takes a single value for a repeated field (``"tools":
    {"googleSearch": {}}``), so one is read as a list of it."""
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


@functools.cache  # a few dozen names, looked up on every request
def _pair(camel: str) -> tuple[str, ...]:
    return tuple(_spellings(camel))


def _values(body: dict[str, Any], camel: str) -> list[Any]:
    """The values a field has under both its spellings, nulls left out. Both count: the service may read either,
    so an empty or null one must not hide the other."""
    return [v for k in _pair(camel) if (v := body.get(k)) is not None]


def _service_tier(tier: Any) -> None:
    if tier is not None and not (isinstance(tier, str) and tier.lower() in _TIERS):
        raise Unreadable("a service tier privsdk does not read")


def _generate_features(body: Any) -> frozenset[str]:
    """Features of a GenerateContentRequest (also the body of countTokens and of each batch request)."""
    if not isinstance(body, dict):
        raise Unreadable("a Google generateContent request is not a JSON object")
    unknown_field(body, _GENERATE_FIELDS, "a Google generateContent request")
    features: set[str] = set()
    for tools in _values(body, "tools"):
        for tool in _list(tools):
            if not isinstance(tool, dict):
                raise Unreadable("a tools entry is not an object")
            for key in tool:
                if key not in _TOOLS:
                    raise Unreadable(
                        f"unknown tool kind {shown_segment(key)} (privsdk's catalogue has no facts for what this tool "
                        "does with the request, so privsdk sends no request with it: leave the tool out, or upgrade "
                        "privsdk if a newer release knows it)"
                    )
                feature = _TOOLS[key]
                if feature is not None:
                    features.add(feature)
    if any(_values(body, "cachedContent")):
        features.add("prompt_caching")
    if any(store is not False for store in _values(body, "store")):
        # GenerateContentConfig.store: per-request logging that "takes precedence over the project-level logging
        # config" (google-genai's own words). Anything but false is read as on.
        features.add("request_response_logging")
    if any(_values(body, "modelArmorConfig")):
        # Model Armor screens the prompt and answer with a template that can log its sanitize operations to Cloud
        # Logging, which privsdk cannot see: the stricter reading is that they are logged.
        features.add("request_response_logging")
    for tier in _values(body, "serviceTier"):
        _service_tier(tier)
    for config in _values(body, "generationConfig"):
        if not isinstance(config, dict):
            raise Unreadable("a generationConfig is not an object")
        unknown_field(config, _GENERATION_FIELDS, "a Google generationConfig")
        if any(_values(config, "routingConfig")) or any(_values(config, "modelConfig")):
            # Manual routing runs the model it names, automatic routing and a model config the one Google's model
            # optimizer picks: not the model the path names, which is the one judged.
            raise Unreadable(
                "a generationConfig routingConfig or modelConfig has Google pick the model that runs, not the one "
                "the path names (leave it out, and name the model to run in the request)"
            )
        for modalities in _values(config, "responseModalities"):
            features |= _modalities(modalities)
        if _values(config, "speechConfig"):
            features.add("audio_output")
        if _values(config, "imageConfig"):
            features.add("image_output")
        for translation in _values(config, "translationConfig"):
            # echoTargetLanguage: "the model will generate audio when the target language is spoken".
            if not isinstance(translation, dict):
                raise Unreadable("a generationConfig translationConfig is not an object")
            if any(_values(translation, "echoTargetLanguage")):
                features.add("audio_output")
        for formats in _values(config, "responseFormat"):
            for fmt in _list(formats):  # a list of formats, or one (Google's JSON takes one for a repeated field)
                features |= _generation_format(fmt)
    for system in _values(body, "systemInstruction"):
        if _has_file_input(system):
            features.add("file_inputs")
    if any(_has_file_input(contents) for contents in _values(body, "contents")):
        features.add("file_inputs")
    for inner in _values(body, "generateContentRequest"):  # countTokens: the request it counts, read alike
        features |= _generate_features(inner)
    return frozenset(features)


def _batch_features(body: dict[str, Any], read: Callable[[Any], frozenset[str]]) -> frozenset[str]:
    """Features of a batch's inline requests, each read by ``read``: batchGenerateContent's GenerateContentRequests,
    asyncBatchEmbedContent's EmbedContentRequests. google-genai puts them at
    ``batch.inputConfig.requests.requests[].request``; a batch whose requests are not in the body (a file of them)
    cannot be read, and is refused so that it holds should batch ever be served."""
    found: list[Any] = []
    for batch in _values(body, "batch"):
        if not isinstance(batch, dict):
            raise Unreadable("a Google batch is not an object")
        for source in _values(batch, "inputConfig"):
            if not isinstance(source, dict):
                raise Unreadable("a Google batch's inputConfig is not an object")
            if _values(source, "fileName"):
                raise Unreadable("a Google batch whose requests are in a file privsdk cannot read")
            found.extend(_values(source, "requests"))
    found.extend(_values(body, "requests"))  # the inline requests at the top level, as an older shape had them
    features: set[str] = set()
    items = 0
    for requests in found:
        if not isinstance(requests, dict):
            raise Unreadable("a Google batch's requests is not an object")
        for item in _list(requests.get("requests")):
            if not isinstance(item, dict):
                raise Unreadable("a Google batch request is not an object")
            for request in _values(item, "request"):
                features |= read(request)
                items += 1
    if not items:
        raise Unreadable("a Google batch whose requests privsdk cannot find")
    return frozenset(features)


def _embed_features(body: dict[str, Any], method: str, model: str | None) -> frozenset[str]:
    """Features of an embedding request: embedContent's EmbedContentRequest, batchEmbedContents' list of them,
    Vertex's ``predict`` on a text-embedding model, the legacy embedText and batchEmbedText. Its only feature is a
    file part in what is embedded (``file_inputs``); any field not on the method's list is refused."""
    if method == "embedContent":
        return _embed_request(body, model=model)
    if method == "batchEmbedContents":
        unknown_field(body, _BATCH_EMBED_FIELDS, "a Google batchEmbedContents request")
        features: set[str] = set()
        for requests in _values(body, "requests"):
            for request in _list(requests):
                features |= _embed_request(request, model=model)
        return frozenset(features)
    if method == "predict":
        return _predict_embed_features(body)
    if method == "embedText":
        _embed_text_request(body, model)
        return _NO_FEATURES
    if method == "batchEmbedText":
        unknown_field(body, _BATCH_EMBED_TEXT_FIELDS, "a Google batchEmbedText request")
        for requests in _values(body, "requests"):
            for request in _list(requests):
                _embed_text_request(request, model)
        return _NO_FEATURES
    raise Unreadable(f"an embedding method privsdk does not read: {shown_segment(method)}")


def _embed_request(request: Any, *, model: str | None) -> frozenset[str]:
    """Features of one EmbedContentRequest (see ``_EMBED_FIELDS``)."""
    _same_model(known_fields(request, _EMBED_FIELDS, "a Google embedding request"), model)
    for config in _values(request, "embedContentConfig"):
        known_fields(config, _EMBED_CONFIG_FIELDS, "a Google embedContentConfig")
    if any(_has_file_input(content) for content in _values(request, "content")):
        return frozenset({"file_inputs"})
    return _NO_FEATURES


def _predict_embed_features(body: dict[str, Any]) -> frozenset[str]:
    """Features of Vertex's ``predict`` on a text-embedding model (see ``_PREDICT_EMBED_FIELDS``)."""
    unknown_field(body, _PREDICT_EMBED_FIELDS, "a Vertex embedding predict request")
    for parameters in _values(body, "parameters"):
        known_fields(parameters, _PREDICT_PARAMETERS, "an embedding predict request's parameters")
    features: set[str] = set()
    for instances in _values(body, "instances"):
        for instance in _list(instances):
            known_fields(instance, _PREDICT_INSTANCE_FIELDS, "an embedding predict instance")
            if any(_has_file_input(content) for content in _values(instance, "content")):
                features.add("file_inputs")
            # The content's media type: any but text's says the content is a file's (an image, a PDF) inline.
            if any(not (isinstance(t, str) and t.startswith("text/")) for t in _values(instance, "mimeType")):
                features.add("file_inputs")
    return frozenset(features)


def _embed_text_request(request: Any, model: str | None) -> None:
    """One legacy embedText request: a text, and the model it is for."""
    _same_model(known_fields(request, _EMBED_TEXT_FIELDS, "a Google embedText request"), model)


def _same_model(request: dict[str, Any], model: str | None) -> None:
    """A request in an embedding body may name its model (google-genai names the path's, as ``models/{model}``):
    one naming another model than the path, which is the one judged, is refused."""
    named = body_model(request, "Google")
    if named is not None and model is not None and named != model and named.rpartition("models/")[2] != model:
        raise Unreadable("a Google embedding request names another model than its path")


def _legacy_features(body: dict[str, Any]) -> frozenset[str]:
    """Features of the legacy methods' bodies (generateText, generateMessage, generateAnswer, their counts)."""
    unknown_field(body, _LEGACY_FIELDS, "a Google legacy request")
    features: set[str] = set()
    if _values(body, "semanticRetriever"):
        features.add("file_search")  # generateAnswer over a corpus stored at Google
    if any(_has_file_input(contents) for contents in _values(body, "contents")):
        features.add("file_inputs")
    return frozenset(features)


def _response_format(fmt: Any) -> frozenset[str]:
    """The features of one Interactions API response_format entry: audio or image output; text and a JSON schema
    bring none. Media delivered by URI is kept at Google for the app to fetch (no feature names that), and video
    output has no feature either: both are refused."""
    if not isinstance(fmt, dict):
        raise Unreadable("an interaction's response_format is not an object")
    kind = fmt.get("type")
    if isinstance(kind, str) and kind in _FORMATS:
        if fmt.get("delivery") not in (None, "inline"):
            raise Unreadable("an interaction's response_format delivery privsdk does not read")
        feature = _FORMATS[kind]
        return frozenset({feature}) if feature is not None else _NO_FEATURES
    schema_types = kind if isinstance(kind, list) else [kind]
    if kind is None and ("mime_type" in fmt or "delivery" in fmt):
        raise Unreadable("an interaction's response_format names no type")  # a media format, not a schema
    if kind is None or all(isinstance(t, str) and t in _JSON_TYPES for t in schema_types):
        return _NO_FEATURES  # a JSON schema for the answer
    raise Unreadable("an interaction's response_format type privsdk does not read")


def _modalities(modalities: Any) -> frozenset[str]:
    """The features of the output modalities asked for (a list, or one): audio or image output; text none. Video or
    a document has no feature, and an unknown modality may be anything: both are refused."""
    features: set[str] = set()
    for modality in _list(modalities):
        if not isinstance(modality, str) or modality.upper() not in _MODALITIES:
            raise Unreadable("an output modality privsdk does not read")
        feature = _MODALITIES[modality.upper()]
        if feature is not None:
            features.add(feature)
    return frozenset(features)


def _generation_format(fmt: Any) -> frozenset[str]:
    """The features of a generationConfig's responseFormat (Vertex): audio or image output; text brings none. Media
    delivered by URI is kept at Google for the app to fetch (no feature names that), and video output (written to
    Cloud Storage) has no feature: both are refused, as in an interaction's response_format."""
    if not isinstance(fmt, dict):
        raise Unreadable("a generationConfig responseFormat is not an object")
    features: set[str] = set()
    for kind, spec in fmt.items():
        if kind not in _FORMATS:
            raise Unreadable(f"a responseFormat kind privsdk does not read: {shown_segment(kind)}")
        if spec is not None and not isinstance(spec, dict):
            raise Unreadable("a responseFormat entry is not an object")
        delivery = (spec or {}).get("delivery")
        if delivery is not None and str(delivery).upper() not in ("INLINE", "DELIVERY_UNSPECIFIED"):
            raise Unreadable("a responseFormat delivery privsdk does not read")
        feature = _FORMATS[kind]
        if feature is not None:
            features.add(feature)
    return frozenset(features)


def _has_file_input(contents: Any) -> bool:
    """Whether any part of ``contents`` (a Content, a list of them, or Interactions input) carries a file."""
    stack = [contents]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            if not _FILE_PARTS.isdisjoint(item):
                return True
            kind = item.get("type")
            if kind in ("image", "audio", "video", "document") and ("data" in item or "uri" in item):
                return True  # an Interactions API media part
            parts = item.get("parts", item.get("content"))
            if isinstance(parts, list | dict):  # a single part may stand for the list, as for every repeated field
                stack.append(parts)
    return False


def _openai_features(body: dict[str, Any]) -> frozenset[str]:
    """Features of a request to Vertex's OpenAI-compatible endpoint: read as privsdk's OpenAI chat reader reads
    Chat Completions (store, tools, web_search_options, modalities and audio, file parts, ...), plus Vertex's own
    ``google`` extension object. Where Vertex's handling is not documented the stricter reading is taken: ``store``
    anything but false counts as stored, a single part or modality counts as a list of it, and a field of the
    extension object not known to bring nothing is refused."""
    features = set(openai_chat_features(body))
    if body.get("store") not in (None, False):
        features.add("stored_responses")
    if "audio" in _list(body.get("modalities")) or body.get("audio"):
        features.add("audio_output")
    for message in _list(body.get("messages")):
        content = message.get("content") if isinstance(message, dict) else None
        for part in _list(content):
            if isinstance(part, dict) and part.get("type") in ("image_url", "input_audio", "file"):
                features.add("file_inputs")
    # The extension object: at the top level (the openai SDK merges its extra_body there) or under a literal
    # "extra_body" key, as Google's REST samples send it.
    extensions = [body.get("google")]
    extra = body.get("extra_body")
    if extra is not None:
        if not isinstance(extra, dict):
            raise Unreadable("extra_body is not an object")
        unknown_field(extra, frozenset({"google"}), "a Vertex OpenAI-compatible extra_body")
        extensions.append(extra.get("google"))
    for google in extensions:
        if google is None:
            continue
        if not isinstance(google, dict):
            raise Unreadable("the google extension object is not an object")
        unknown_field(google, _OPENAI_GOOGLE_FIELDS, "the google extension object")
        if google.get("cached_content"):
            features.add("prompt_caching")
    return frozenset(features)


# -- meter ------------------------------------------------------------------------------------------

#: Vertex ``:predict`` embeddings give a ``token_count`` per prediction and no usageMetadata.
_TOKEN_COUNT = b'"token_count"'
_KEYS = (b'"usageMetadata"', b'"usage"', _TOKEN_COUNT)
_LONGEST_KEY = max(map(len, _KEYS))
#: The keys of a Gemini answer's last chunk: a candidate's finish reason, a refused prompt's block reason. Both end
#: with ``Reason"``, which a chunk is searched for first.
_END_KEYS = (b'"finishReason"', b'"blockReason"')
#: How the ``data: [DONE]`` closing an Interactions or OpenAI-format stream ends a chunk.
_DONE = (b"[DONE]\n\n", b"[DONE]\r\n\r\n", b"[DONE]\n", b"[DONE]\r\n", b"[DONE]")
assert max(map(len, _END_KEYS)) <= _LONGEST_KEY  # the tail kept across chunks holds a split end key too
_MAX_OBJECT = 4096  # a usage object is a few hundred bytes; anything longer is not one


class UsageMeter:
    """Finds the last usage object in a response (JSON, SSE or a streamed JSON array) and keeps only it.

    A key inside a JSON string has its quotes escaped (``\\"usageMetadata\\"``), so the exact byte string
    ``"usageMetadata"`` is always a real key. The meter keeps the few bytes that could start a key across a
    chunk boundary, the object being read while it is open, the numbers of the last complete one, and a stream's
    last 16 KiB, where ``tokens`` looks for an error the service ended it with (``failed``).
    """

    __slots__ = (
        "_capture", "_depth", "_embed_tokens", "_input", "_key_at_end", "_last", "_output", "_stream",
        "_tail", "ended", "failed",
    )  # fmt: skip

    def __init__(self, stream: bool = False) -> None:
        self._stream = stream
        self._last = LastBytes() if stream else None  # only a stream ends with an error event after its 200
        self._tail = b""
        self._capture: bytearray | None = None
        self._depth = 0
        self._input: int | None = None
        self._output: int | None = None
        self._embed_tokens: int | None = None
        #: True once the answer's last chunk has passed: a candidate's ``finishReason`` (or a refused prompt's
        #: ``blockReason``), or the ``data: [DONE]`` that closes an Interactions or OpenAI-format stream. Gemini
        #: sends usageMetadata on every chunk of a stream, so counts alone never say that an answer was whole.
        self.ended = False
        #: The last chunk ended with an end key, or blanks after one: the next byte says whether it was a key.
        self._key_at_end = False
        #: The error class of the error event (``{"error": {...}}``) the service ended a stream with after its 200,
        #: None without one; known once ``tokens`` is read.
        self.failed: str | None = None

    def feed(self, chunk: bytes) -> None:
        if self._last is not None:
            self._last.add(chunk)  # references to its last chunks: searching every chunk would cost 10x more
        data = self._tail + chunk
        self._tail = b""
        if not self.ended:
            if self._key_at_end:
                rest = chunk.lstrip(b" \t\r\n")
                self._key_at_end = not rest  # still blanks: undecided
                if rest[:1] == b":":
                    self.ended = True
            if data.find(b'Reason"') >= 0:  # one search through the chunk; the keys themselves only when it finds
                found = _ends(data)
                if found:
                    self.ended = True
                elif found is None:
                    self._key_at_end = True
            if data.endswith(_DONE):
                self.ended = True
        start = 0
        if self._capture is not None:
            start = self._continue(data, 0)
            if self._capture is not None:
                return
        while True:
            key_end = _next_key(data, start)
            if key_end is None:
                self._tail = data[max(start, len(data) - _LONGEST_KEY + 1) :]  # may hold the start of a key
                return
            value = _after_colon(data, key_end)
            if value is None:  # the colon or the value is in the next chunk: keep from the key on
                self._tail = data[_key_start(data, key_end) :]
                return
            if data[key_end - len(_TOKEN_COUNT) : key_end] == _TOKEN_COUNT:
                end = _number_end(data, value)
                if end == len(data):  # the number may go on in the next chunk
                    self._tail = data[_key_start(data, key_end) :]
                    return
                number = _number(data[value:end])
                if number is not None:
                    total = (self._embed_tokens or 0) + number
                    self._embed_tokens = total if total <= MAX_COUNT else None
                start = end
                continue
            if data[value] != 0x7B:  # "usage": not followed by an object ({)
                start = key_end
                continue
            self._capture = bytearray()
            self._depth = 0
            start = self._continue(data, value)
            if self._capture is not None:
                return

    def _continue(self, data: bytes, start: int) -> int:
        """Copy bytes of the open object from ``start`` until it closes; returns where scanning resumes."""
        capture = self._capture
        assert capture is not None
        depth = self._depth
        at = start
        while (close := data.find(b"}", at)) != -1:
            opening = data.find(b"{", at, close)
            if opening != -1:
                depth += 1
                at = opening + 1
                continue
            depth -= 1
            at = close + 1
            if depth == 0:
                capture += data[start:at]
                self._close(bytes(capture))
                self._capture = None
                return at
        self._depth = depth + data.count(b"{", at)
        capture += data[start:]
        if len(capture) > _MAX_OBJECT:
            self._capture = None  # not a usage object after all: give up on it
        return len(data)

    def _close(self, raw: bytes) -> None:
        try:
            usage = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
            return
        if not isinstance(usage, dict):
            return
        if "promptTokenCount" in usage or "candidatesTokenCount" in usage:
            self._input = _int(usage.get("promptTokenCount"))
            out = _int(usage.get("candidatesTokenCount"))
            thoughts = _int(usage.get("thoughtsTokenCount"))
            if thoughts:
                out = _int((out or 0) + thoughts)  # thinking tokens are output the vendor bills
            self._output = out
        elif "total_input_tokens" in usage or "total_output_tokens" in usage:  # Interactions API
            self._input = _int(usage.get("total_input_tokens"))
            self._output = _int(usage.get("total_output_tokens"))
        elif "prompt_tokens" in usage:  # the OpenAI-compatible endpoint
            self._input = _int(usage.get("prompt_tokens"))
            self._output = _int(usage.get("completion_tokens"))

    def tokens(self) -> tuple[int | None, int | None]:
        if self._stream:  # the SDK stops reading at an error event: it is in the last chunks, looked at once
            self.failed = self._last.failure() if self._last is not None else None
        if self._input is None and self._output is None and self._embed_tokens is not None:
            return self._embed_tokens, None
        return self._input, self._output


def _next_key(data: bytes, start: int) -> int | None:
    """The end of the next usage key at or after ``start``."""
    ends = [at + len(key) for key in _KEYS if (at := data.find(key, start)) != -1]
    return min(ends) if ends else None


def _key_start(data: bytes, key_end: int) -> int:
    for key in _KEYS:
        if data[key_end - len(key) : key_end] == key:
            return key_end - len(key)
    return key_end


def _after_colon(data: bytes, at: int) -> int | None:
    """The index of the first byte of the value after ``"key"``, or None when it is not in ``data`` yet."""
    n = len(data)
    while at < n and data[at] in b" \t\r\n":
        at += 1
    if at >= n:
        return None
    if data[at] != 0x3A:  # not "key": but e.g. the end of a string value
        return at
    at += 1
    while at < n and data[at] in b" \t\r\n":
        at += 1
    return at if at < n else None


def _number_end(data: bytes, at: int) -> int:
    n = len(data)
    while at < n and data[at] in b"0123456789.eE+-":
        at += 1
    return at


def _number(raw: bytes) -> int | None:
    """A count written as a JSON number (``12``, ``12.0``, ``1e3``); None for anything else or past MAX_COUNT."""
    try:
        return count(float(raw))  # float() of bytes: digits, dot, exponent; 1e999 is inf, which count refuses
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    """An integer count from a parsed usage object; None for a float, a bool or a count past MAX_COUNT."""
    return value if type(value) is int and 0 <= value <= MAX_COUNT else None


def _ends(data: bytes) -> bool | None:
    """Whether ``data`` holds a ``finishReason`` or ``blockReason`` key: the last chunk of a Gemini answer. None
    when it ends with one of them (or blanks after it): whether a colon follows, as after a key, is still unknown.

    The exact bytes can only be a string (inside a string its quotes are escaped), and a colon follows it only
    when it is a key: ``"text": "finishReason"`` is a value.
    """
    undecided = False
    n = len(data)
    for key in _END_KEYS:
        at = data.find(key)
        while at >= 0:
            at += len(key)
            while at < n and data[at] in b" \t\r\n":
                at += 1
            if at == n:
                undecided = True
                break
            if data[at] == 0x3A:
                return True
            at = data.find(key, at)
    return None if undecided else False


READER = GoogleReader()
