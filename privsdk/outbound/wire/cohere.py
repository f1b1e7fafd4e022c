"""Cohere's wire protocol: what a request to api.cohere.com (or a private/SageMaker deployment) asks for.

Paths are ``/v1/<family>/...`` and ``/v2/<family>/...`` as the cohere SDK
sends them; a SageMaker endpoint takes the same bodies at
``/endpoints/<name>/invocations[-response-stream]`` (the cohere SDK's
``SagemakerClientV2``), with the endpoint name as the model. Chat streams when
the body says ``"stream": true``. A SageMaker request that picks what serves it on
the endpoint (an inference component, a model of a multi-model endpoint, a
container or a production variant) is refused: its target describes the
endpoint's one model.

Features read from the body:

- v1 chat ``connectors``: the ``web-search`` connector is ``web_search``; any
  other connector makes Cohere fetch from a registered data source, which is a
  vendor-run tool: ``hosted_tools``.
- v1 chat ``conversation_id``: Cohere keeps the chat history under that id
  and replays it: ``stored_responses``.
- image parts of a chat message, ``images`` or image ``inputs`` of an embed:
  ``file_inputs``. Inline ``documents`` are text sent with the prompt, as the
  prompt is: no feature. ``search_queries_only`` only asks the model to write
  search queries (nothing is searched): no feature.

A feature field of another shape is refused, never skipped: ``connectors``
that are not a list of objects, a tool that is not a function (v2's
``"type": "function"``, v1's without a type), a content part of no type or of
one not read (chat: text, document, thinking, image_url; embed: text,
image_url).

Every top-level field of a body read is on its allow-list (``_FIELDS``): any
other field is refused, for a field privsdk has not judged may make Cohere
keep, log or run something.

Creating or updating a fine-tuned model (``POST /v1/finetuning/finetuned-models``,
``PATCH .../{id}``) is ``fine_tune`` for its base model's ``name`` (one naming
none is refused: Cohere would pick it), each object of its body on an
allow-list; ``settings.wandb`` (a W&B project and key: Cohere reports the run
to a third party) is refused. The rest of fine-tuning is ``fine_tune``.

Token counts come from ``usage`` (v2 chat) or ``meta`` (v1, embed, rerank),
billed units first, and in a stream from the v2 ``message-end`` event or the
v1 ``stream-end`` line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from privsdk.outbound.outgoing import (
    Asks,
    EndpointAsks,
    Meter,
    Outgoing,
    UnknownRoute,
    Unreadable,
    body_model,
    content_type,
    json_object,
    known_fields,
    shown_segment,
    unknown_field,
)
from privsdk.outbound.wire.meters import EventMeter, JsonMeter, Tokens, count, error_kind
from privsdk.outbound.wire.routes import after_prefix

_NONE: frozenset[str] = frozenset()

# The top-level fields of each body read: those the cohere SDK sends (the ``json={...}`` of its raw clients'
# methods, cohere 7.3.1, plus ``stream``, which it sets itself), each read below or shaping only the answer. Any
# other field is refused. Fields judged as shaping the answer: sampling and length settings, ``documents`` (text
# the app sends with the prompt), ``tools`` (functions the app runs itself), ``citation_options`` and
# ``citation_quality``, ``safety_mode`` (which safety instruction the model gets), ``thinking``,
# ``prompt_truncation`` (which turns of the history fit the context), ``raw_prompting``, and ``priority`` (the
# order requests are served in under load).
_V2_CHAT = frozenset(
    {
        "model", "messages", "tools", "strict_tools", "documents", "citation_options", "response_format",
        "safety_mode", "max_tokens", "stop_sequences", "temperature", "seed", "frequency_penalty",
        "presence_penalty", "k", "p", "logprobs", "tool_choice", "thinking", "priority", "stream",
    }
)  # fmt: skip
#: v1 chat; ``connectors`` and ``conversation_id`` are read as features (see the module's docstring).
_V1_CHAT = frozenset(
    {
        "message", "model", "preamble", "chat_history", "conversation_id", "prompt_truncation", "connectors",
        "search_queries_only", "documents", "citation_quality", "temperature", "max_tokens", "max_input_tokens", "k",
        "p", "seed", "stop_sequences", "frequency_penalty", "presence_penalty", "raw_prompting", "tools",
        "tool_results", "force_single_step", "response_format", "safety_mode", "stream",
    }
)  # fmt: skip
#: v1 generate. ``preset`` is left off: it names a prompt and settings kept on Cohere's side, which the request does
#: not show.
_GENERATE = frozenset(
    {
        "prompt", "model", "num_generations", "max_tokens", "truncate", "temperature", "seed", "end_sequences",
        "stop_sequences", "k", "p", "frequency_penalty", "presence_penalty", "return_likelihoods", "raw_prompting",
        "stream",
    }
)  # fmt: skip
_SUMMARIZE = frozenset({"text", "length", "format", "model", "extractiveness", "temperature", "additional_command"})
_V1_EMBED = frozenset({"texts", "images", "model", "input_type", "embedding_types", "truncate"})
_V2_EMBED = _V1_EMBED | {"inputs", "max_tokens", "output_dimension", "priority"}
_V1_RERANK = frozenset(
    {"model", "query", "documents", "top_n", "rank_fields", "return_documents", "max_chunks_per_doc"}
)
_V2_RERANK = frozenset({"model", "query", "documents", "top_n", "max_tokens_per_doc", "relevant_spans", "priority"})
#: The bodies read, by API version and endpoint family: chat, generate and summarize generate text from a prompt
#: (``stream`` when the body says so). Cohere has no v2 generate or summarize.
_FIELDS: dict[tuple[str, str], frozenset[str]] = {
    ("v2", "chat"): _V2_CHAT,
    ("v1", "chat"): _V1_CHAT,
    ("v1", "generate"): _GENERATE,
    ("v1", "summarize"): _SUMMARIZE,
    ("v1", "embed"): _V1_EMBED,
    ("v2", "embed"): _V2_EMBED,
    ("v1", "rerank"): _V1_RERANK,
    ("v2", "rerank"): _V2_RERANK,
}
#: A SageMaker endpoint takes a body of either version (the SDK drops ``model`` and ``stream`` from it, and adds
#: ``api_version`` to a rerank's).
_SAGEMAKER_RERANK = _V1_RERANK | _V2_RERANK | {"api_version"}
#: Creating (``POST /v1/finetuning/finetuned-models``) or updating (``PATCH .../finetuned-models/{id}``) a fine-tuned
#: model: the cohere SDK's FinetunedModel (its update sends ``name`` and ``settings``). ``name`` names the tuned
#: model; the rest but ``settings`` are read-only (ids, ``status``, timestamps: set by Cohere, no content), and pass
#: as an app may send a model object back whole.
_FINE_TUNED_MODEL = frozenset(
    {
        "name", "settings", "id", "creator_id", "organization_id", "status", "created_at", "updated_at",
        "completed_at", "last_used",
    }
)  # fmt: skip
#: Its ``settings`` (Settings): ``base_model`` is read; ``dataset_id`` names a dataset uploaded earlier (judged then,
#: as ``files``); ``hyperparameters`` are numbers and names (their fields listed); ``multi_label`` is read-only.
#: ``wandb`` (WandbConfig: a W&B project and API key, for Cohere to report the run to Weights & Biases, a third
#: party the policy does not judge) is read and refused when set.
_FINE_TUNE_SETTINGS = frozenset({"base_model", "dataset_id", "hyperparameters", "multi_label", "wandb"})
#: ``settings.base_model`` (BaseModel): ``name`` is the model tuned, judged; ``base_type`` and the deprecated
#: ``strategy`` say how it is tuned; ``version`` is read-only.
_BASE_MODEL = frozenset({"name", "version", "base_type", "strategy"})
#: ``settings.hyperparameters`` (Hyperparameters).
_FINE_TUNE_HYPERPARAMETERS = frozenset(
    {
        "early_stopping_patience", "early_stopping_threshold", "train_batch_size", "train_epochs", "learning_rate",
        "lora_alpha", "lora_rank", "lora_target_modules",
    }
)  # fmt: skip
#: Content part type -> the feature it brings (None: text the model reads as the prompt), for chat messages (the
#: cohere SDK's Content, ToolContent, the assistant's text and thinking) and embed inputs (EmbedContent). A part of
#: another type, or of none, is refused: a newer kind of content privsdk has not judged.
_CHAT_PARTS: Mapping[str, str | None] = {"text": None, "document": None, "thinking": None, "image_url": "file_inputs"}
_EMBED_PARTS: Mapping[str, str | None] = {"text": None, "image_url": "file_inputs"}
#: Families that keep or process content outside the four served operations, or manage the account.
_FIXED = {
    "embed": "embed",
    "rerank": "rerank",
    "datasets": "files",
    "embed-jobs": "batch",
    "batches": "batch",
    "finetuning": "fine_tune",
    "audio": "audio",
    "classify": "other",
    "tokenize": "other",
    "detokenize": "other",
    "parse": "other",
    "connectors": "other",
}


class CohereReader:
    """The :class:`~privsdk.outbound.outgoing.WireReader` for Cohere's API."""

    def read(self, request: Outgoing) -> Asks:
        parts = after_prefix(request.path.strip("/").split("/"), ("v1", "v2", "endpoints"), ("v1", "v2"))
        head = parts[0]
        if head == "endpoints" and len(parts) == 3:
            return _sagemaker(request, parts)
        if head not in ("v1", "v2") or len(parts) < 2:
            raise UnknownRoute(f"unknown path shape /{shown_segment(head)}/... for Cohere's API")
        family = parts[1]
        known = _FIELDS.get((head, family))
        if known is not None and request.method == "POST":
            if len(parts) != 2:
                raise UnknownRoute(f"unknown path shape /{head}/{family}/... for Cohere's API")
            body = json_object(request, "Cohere", family)
            if not known.issuperset(body):
                unknown_field(body, known, f"a Cohere /{head}/{family} request")
            model = body_model(body, "Cohere")
            if family == "embed":
                return Asks("embed", model, _embed_features(body))
            if family == "rerank":
                return Asks("rerank", model)
            features = _chat_features(body, head == "v2")
            return Asks("stream" if body.get("stream") is True else "chat", model, features)
        if family == "finetuning" and request.method not in ("GET", "DELETE"):
            # The SDK writes here only to create (POST finetuned-models) or update (PATCH finetuned-models/{id}) a
            # fine-tuned model, in any case (a server that routes without it would take a body otherwise unread);
            # another write is no route privsdk reads.
            rest = [part.lower() for part in parts[2:]]
            if rest[:1] == ["finetuned-models"] and len(rest) == (1 if request.method == "POST" else 2):
                return _fine_tune(request)
            raise UnknownRoute(f"unknown path shape /{head}/finetuning/... for Cohere's API")
        if family == "models" or family == "check-api-key":
            # A model listing (or a key check) carries no content.
            return Asks("models")
        fixed = _FIXED.get(family)
        if fixed is None:
            raise UnknownRoute(f"unknown path shape /{head}/{shown_segment(family)}/... for Cohere's API")
        return Asks(fixed)

    def meter(self, request: Outgoing, asks: Asks, status: int, headers: Mapping[str, str]) -> Meter | None:
        if not 200 <= status < 300:
            return None
        kind = content_type(headers)
        if asks.operation == "stream":
            if "event-stream" in kind:
                return EventMeter(_pick_event, (b"message-end", b"stream-end"), fail=_failure)
            return EventMeter(_pick_line, (b"stream-end",), sse=False, fail=_failure)
        if asks.operation in ("chat", "embed", "rerank") and "json" in kind:
            return JsonMeter(_pick_answer)
        return None


#: The InvokeEndpoint headers (boto3's InferenceComponentName, TargetModel, TargetContainerHostname, TargetVariant)
#: that pick what serves a request on a SageMaker endpoint: another model than the endpoint's target names may.
_SAGEMAKER_CHOOSERS = (
    "x-amzn-sagemaker-inference-component",
    "x-amzn-sagemaker-target-model",
    "x-amzn-sagemaker-target-container-hostname",
    "x-amzn-sagemaker-target-variant",
)


def _sagemaker(request: Outgoing, parts: list[str]) -> Asks:
    """A cohere body posted to a SageMaker endpoint; what it asks for follows from the body's shape, and what runs
    there from the target that names the endpoint (:class:`EndpointAsks`)."""
    action = parts[2]
    if action not in ("invocations", "invocations-response-stream") or request.method != "POST":
        raise UnknownRoute("unknown path shape /endpoints/<name>/... for a Cohere SageMaker endpoint")
    chooser = next((name for name in _SAGEMAKER_CHOOSERS if name in request.headers), None)
    if chooser is not None:
        raise Unreadable(
            f"the request's {chooser} header picks what serves it on the SageMaker endpoint (an inference component, "
            "a model of a multi-model endpoint, a container or a production variant), which may be another model "
            "than its target names: privsdk judges an endpoint by its target alone (send it without the header, to "
            "an endpoint that serves one model)"
        )
    body = json_object(request, "Cohere", "invocations")
    if "messages" in body or "message" in body:
        operation, known = "chat", _V2_CHAT if "messages" in body else _V1_CHAT
    elif any(isinstance(body.get(field), list) for field in ("texts", "images", "inputs")):
        # Lists, as Cohere's embed takes them: a model of another maker on a SageMaker endpoint (Hugging Face's
        # text generation, say) posts {"inputs": "<prompt>"}, a generation that is no Cohere embed.
        operation, known = "embed", _V2_EMBED  # v1's fields and more
    elif "query" in body and "documents" in body:
        operation, known = "rerank", _SAGEMAKER_RERANK
    else:
        raise Unreadable("a Cohere SageMaker request that is neither chat, embed nor rerank")
    if not known.issuperset(body):
        unknown_field(body, known, f"a Cohere {operation} request to a SageMaker endpoint")
    # The endpoint's name is its owner's and may serve any maker's model whose body has the same shape (an
    # OpenAI-style chat, Hugging Face's {"inputs": [...]}): judged only through a target that names it.
    endpoint = unquote(parts[1])
    if operation == "embed":
        return EndpointAsks("embed", None, _embed_features(body), endpoint)
    if operation == "rerank":
        return EndpointAsks("rerank", None, _NONE, endpoint)
    streamed = action.endswith("-stream") or body.get("stream") is True
    return EndpointAsks("stream" if streamed else "chat", None, _chat_features(body, "messages" in body), endpoint)


def _chat_features(body: Mapping[str, Any], v2: bool) -> frozenset[str]:
    features: set[str] = set()
    connectors = body.get("connectors")
    if connectors is not None:
        # A list of objects, each a connector: any other shape (an object, a name) may still reach one.
        if not isinstance(connectors, list) or not all(isinstance(c, dict) for c in connectors):
            raise Unreadable("connectors is not a list of objects")
        for connector in connectors:
            features.add("web_search" if connector.get("id") == "web-search" else "hosted_tools")
    if body.get("conversation_id"):
        features.add("stored_responses")
    _function_tools(body.get("tools"), v2)
    messages = body.get("messages")
    if messages is not None:
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise Unreadable("messages is not a list of objects")
        for message in messages:
            content = message.get("content")
            if content is not None and not isinstance(content, str):
                _part_features(content, _CHAT_PARTS, features)
    return frozenset(features) if features else _NONE


def _function_tools(tools: Any, v2: bool) -> None:
    """Tools are functions the app runs: v2's say so (``"type": "function"``, ToolV2; one without its type is
    refused too), v1's have no type (Tool). Any other (``{"type": "web_search"}``) would be a tool run at Cohere that
    no source privsdk reads describes: refused, the stricter reading, rather than judged as the hosted feature its
    name suggests."""
    if tools is None:
        return
    if not isinstance(tools, list):
        raise Unreadable("tools is not a list")
    expected = "function" if v2 else None
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type") != expected:
            raise Unreadable("a tool that is not a function tool")


def _part_features(content: Any, known: Mapping[str, str | None], features: set[str]) -> None:
    """The features of a list of content parts, each of a ``known`` type."""
    if not isinstance(content, list):
        raise Unreadable("content is neither text nor a list of parts")
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(kind, str) or kind not in known:
            raise Unreadable("a content part of no type, or of one privsdk does not read")
        feature = known[kind]
        if feature is not None:
            features.add(feature)


def _embed_features(body: Mapping[str, Any]) -> frozenset[str]:
    features: set[str] = set()
    if body.get("images"):
        features.add("file_inputs")
    inputs = body.get("inputs")
    if isinstance(inputs, list):
        for item in inputs:
            content = item.get("content") if isinstance(item, dict) else None
            if content is not None:
                _part_features(content, _EMBED_PARTS, features)
    return frozenset(features) if features else _NONE


def _fine_tune(request: Outgoing) -> Asks:
    """Creating or updating a fine-tuned model: ``fine_tune`` for the base model it tunes."""
    body = json_object(request, "Cohere", "finetuning")
    unknown_field(body, _FINE_TUNED_MODEL, "a Cohere fine-tuned model")
    settings = _fine_tune_object(body.get("settings"), _FINE_TUNE_SETTINGS, "settings")
    if settings.get("wandb") is not None:
        raise Unreadable(
            "a Cohere fine-tuned model with settings.wandb, which privsdk does not judge (a W&B project and key: "
            "Cohere reports the run to Weights & Biases, a third party): leave it out"
        )
    hyperparameters = _fine_tune_object(
        settings.get("hyperparameters"), _FINE_TUNE_HYPERPARAMETERS, "settings.hyperparameters"
    )
    if any(isinstance(value, dict | list) for value in hyperparameters.values()):
        raise Unreadable("a Cohere fine-tuned model's settings.hyperparameters hold a value that is no number or name")
    base = _fine_tune_object(settings.get("base_model"), _BASE_MODEL, "settings.base_model")
    name = base.get("name")
    if not isinstance(name, str) or not name:
        # Without a name Cohere tunes a model of its choosing for the base type (one it may change), which the
        # request does not show. Judged as naming no model, the job would pass on the offering's facts alone,
        # whatever model Cohere picks: refused, the strictest reading. The app names it (base_model.name).
        raise Unreadable(
            "a Cohere fine-tuned model whose settings.base_model names no model: name the model to tune "
            "(base_model.name)"
        )
    return Asks("fine_tune", name)


def _fine_tune_object(value: Any, known: frozenset[str], what: str) -> dict[str, Any]:
    """A fine-tuned model's object ``what`` (empty when absent), its fields within ``known``."""
    return {} if value is None else known_fields(value, known, f"a Cohere fine-tuned model's {what}")


def _counts(usage: Any) -> Tokens | None:
    """(input, output) from a usage or meta object: billed units first, then the tokens the model processed."""
    if not isinstance(usage, dict):
        return None
    billed = usage.get("billed_units")
    tokens = usage.get("tokens")
    billed = billed if isinstance(billed, dict) else {}
    tokens = tokens if isinstance(tokens, dict) else {}
    found_in = count(billed.get("input_tokens"))
    found_out = count(billed.get("output_tokens"))
    if found_in is None:
        found_in = count(tokens.get("input_tokens"))
    if found_out is None:
        found_out = count(tokens.get("output_tokens"))
    return found_in, found_out


def _pick_answer(answer: Any) -> Tokens | None:
    if not isinstance(answer, dict):
        return None
    usage = answer.get("usage")
    return _counts(usage if isinstance(usage, dict) else answer.get("meta"))


def _pick_event(event: Any) -> Tokens | None:
    if not isinstance(event, dict):
        return None
    if event.get("type") != "message-end":
        return _pick_line(event)  # a v1 stream asked for as server-sent events
    delta = event.get("delta")
    return _counts(delta.get("usage")) if isinstance(delta, dict) else None


def _pick_line(line: Any) -> Tokens | None:
    if not isinstance(line, dict) or line.get("event_type") != "stream-end":
        return None
    response = line.get("response")
    return _counts(response.get("meta")) if isinstance(response, dict) else None


def _failure(event: Any) -> str | None:
    """The error class of a stream Cohere ended with an error: its closing event's finish reason ``ERROR`` (v2's
    message-end), or ``ERROR``, ``ERROR_TOXIC``, ``ERROR_LIMIT`` (v1's stream-end); None for any other event."""
    if not isinstance(event, dict):
        return None
    delta = event.get("delta")
    reason = delta.get("finish_reason") if isinstance(delta, dict) else event.get("finish_reason")
    if not (isinstance(reason, str) and reason.startswith("ERROR")):
        return None
    return error_kind(reason)


READER = CohereReader()
