"""Mistral's wire protocol: what a request to la Plateforme (api.mistral.ai and its EU/US hosts) asks for.

Paths are ``/v1/<family>/...`` as the mistralai SDK sends them; a Mistral
model on Azure AI Foundry takes chat at ``/models/chat/completions``.

Operations: chat and FIM completions, the stateless Responses API and
conversations are ``chat`` (``stream`` when the body says ``"stream": true``);
embeddings ``embed``; files, batch jobs and fine-tuning their own operations;
moderations and classifications ``moderation``; agents ``assistants`` (an
agent's tools live on Mistral's side, out of the request's sight);
libraries and context search indexes ``vector_stores``; audio ``audio``; GET
and DELETE of conversations ``responses_state``; model listing ``models``.
OCR, workflows, observability and the account's administration are ``other``.

Features read from the body:

- a conversation (``/v1/conversations``) is kept by Mistral unless the start
  says ``"store": false``, and appending to or restarting one always uses
  the kept state: ``stored_responses``; likewise a Responses request naming
  ``previous_response_id`` or ``conversation``, or ``store`` true;
- built-in tools: ``web_search``/``web_search_premium`` -> ``web_search``;
  ``document_library`` -> ``file_search``; ``code_interpreter``,
  ``image_generation``, connectors, MCP and any other non-function tool ->
  ``hosted_tools``;
- ``prompt_cache_key`` -> ``prompt_caching``; ``background`` true ->
  ``background`` (a value neither true nor false is refused);
- image, document, file and audio parts of a message -> ``file_inputs``.

A batch job's creation (``POST /v1/batch/jobs``) is ``batch`` for its ``model``; its ``endpoint`` must be one
whose bodies are read here (chat and FIM completions, embeddings, moderations and classifications,
conversations), and each inline request's body is read as a direct call to that endpoint is, its features
joined. A batch over an agent (``agent_id``, or a conversation naming one) is ``assistants``, as a
conversation started with an agent is. A fine-tuning job's creation (``POST /v1/fine_tuning/jobs``) is
``fine_tune`` for the model it tunes; its W&B ``integrations`` and GitHub ``repositories`` are refused.

Every top-level field of a body read is on its allow-list: any other field
is refused, for a field privsdk has not judged may make Mistral keep, log or
run something.

Token counts: ``usage`` (``prompt_tokens``/``completion_tokens``, or the
Responses API's ``input_tokens``/``output_tokens``) of a JSON answer, and of
the last stream event that carries one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from privsdk.outbound.outgoing import (
    Asks,
    Meter,
    Outgoing,
    UnknownRoute,
    Unreadable,
    body_model,
    content_type,
    flag,
    json_object,
    shown_segment,
    unknown_field,
)
from privsdk.outbound.wire.meters import ERROR, EventMeter, JsonMeter, Tokens, count, error_kind
from privsdk.outbound.wire.routes import after_prefix

_NONE: frozenset[str] = frozenset()
#: Families with one operation whatever the method and the rest of the path.
_FIXED = {
    "files": "files",
    "batch": "batch",
    "fine_tuning": "fine_tune",
    "moderations": "moderation",
    "classifications": "moderation",
    "agents": "assistants",  # agents completions too: the agent's tools and instructions are Mistral-side
    "libraries": "vector_stores",
    "context": "vector_stores",
    "audio": "audio",
    "ocr": "other",
    "rag": "other",
    "connectors": "other",
    "observability": "other",
    "workflows": "other",
    "webhooks": "other",
    "triggers": "other",
    "users": "other",
    "whoami": "other",
    "service-accounts": "other",
    "client": "other",
}
#: Tool types that run on Mistral's side, and the feature each one is.
_TOOLS = {
    "function": None,
    "web_search": "web_search",
    "web_search_premium": "web_search",
    "document_library": "file_search",
}
#: What a kept conversation may run that a request to append to it does not show: every tool Mistral hosts (web
#: search, document libraries, the code interpreter, image generation).
_STORED_TOOLS = frozenset({"web_search", "file_search", "hosted_tools", "image_output"})
#: Message part types that are text (anything else is an image, document, file or audio input).
_TEXT_PARTS = frozenset({"text", "thinking", "reference", "tool_reference", "input_text", "output_text"})

# The top-level fields of each body read: those the mistralai SDK sends (its request models' JSON names,
# mistralai 3.7.0), each read below or shaping only the answer. Any other field is refused. Judged as shaping the
# answer: sampling and length settings, ``prediction``, ``prompt_mode`` (the reasoning system prompt),
# ``safe_prompt`` (a safety instruction prepended), ``service_tier`` (``auto`` or ``standard_only`` capacity), and
# ``guardrails``: Mistral's moderation model checks the input before the model sees it and blocks the request, in
# the same call ("input-only and block-only", docs.mistral.ai/studio/safety-moderation/quickstarts).
# ``metadata`` is left off the stateless endpoints: Mistral does not say what it does with it, and its AI Studio
# observability keeps chat completion events (their messages too) searchable by extra fields, which it may label:
# the stricter reading. On conversations and /v1/responses, judged as kept whole anyway, it labels what is kept.
_CHAT_FIELDS = frozenset(
    {
        "model", "messages", "temperature", "top_p", "max_tokens", "stream", "stop", "random_seed",
        "response_format", "tools", "tool_choice", "presence_penalty", "frequency_penalty", "min_tokens",
        "repetition_penalty", "top_k", "logprobs", "top_logprobs", "prompt_logprobs", "top_prompt_logprobs", "n",
        "prediction", "parallel_tool_calls", "reasoning_effort", "prompt_mode", "guardrails", "prompt_cache_key",
        "service_tier", "safe_prompt",
    }
)  # fmt: skip
_FIM_FIELDS = frozenset(
    {
        "model", "prompt", "suffix", "temperature", "top_p", "max_tokens", "min_tokens", "stream", "stop",
        "random_seed", "prompt_cache_key",
    }
)  # fmt: skip
_COMPLETION_FIELDS = {"chat": _CHAT_FIELDS, "fim": _FIM_FIELDS}
_EMBED_FIELDS = frozenset({"model", "input", "output_dimension", "output_dtype", "encoding_format"})
#: /v1/chat/moderations and /v1/chat/classifications.
_MODERATION_FIELDS = frozenset({"model", "input"})
#: Starting a conversation. ``agent_id`` makes it an agent's (see _conversation); ``agent_version`` and
#: ``handoff_execution`` only act with one. ``name`` and ``description`` label the kept conversation.
_START_FIELDS = frozenset(
    {
        "model", "inputs", "stream", "store", "tools", "instructions", "completion_args", "guardrails",
        "handoff_execution", "metadata", "name", "description", "agent_id", "agent_version",
    }
)  # fmt: skip
#: Appending to a conversation; ``tool_confirmations`` lets the tools it was started with run, which an append is
#: judged as bringing anyway.
_APPEND_FIELDS = frozenset({"inputs", "stream", "store", "completion_args", "handoff_execution", "tool_confirmations"})
_RESTART_FIELDS = frozenset(
    {"inputs", "stream", "store", "completion_args", "handoff_execution", "from_entry_id", "guardrails",
     "metadata", "agent_version"}
)  # fmt: skip
#: A Responses API request. Left off: ``prompt``, a prompt kept on Mistral's side (with its instructions and
#: tools) that the request does not show, and ``moderation``, which the SDK leaves untyped and Mistral does not
#: document: judged the stricter way.
_RESPONSE_FIELDS = frozenset(
    {
        "model", "input", "instructions", "stream", "store", "background", "previous_response_id", "conversation",
        "tools", "tool_choice", "parallel_tool_calls", "max_tool_calls", "reasoning", "text", "max_output_tokens",
        "temperature", "top_p", "top_logprobs", "truncation", "metadata", "prompt_cache_key",
    }
)  # fmt: skip
#: Creating a batch job (mistralai's CreateBatchJobRequest). ``input_files`` names files uploaded earlier (each
#: upload judged then, as ``files``); ``metadata`` labels the job, kept until deleted anyway (as on conversations);
#: ``timeout_hours`` bounds its run.
_BATCH_FIELDS = frozenset(
    {"endpoint", "input_files", "requests", "model", "agent_id", "metadata", "timeout_hours"}
)  # fmt: skip
#: An inline batch request (mistralai's BatchRequest): the body for the job's endpoint, and the app's id for it.
_BATCH_REQUEST_FIELDS = frozenset({"body", "custom_id"})
#: The endpoints a batch job may run whose bodies this reader reads, each with its body's fields (the same lists as
#: a direct call's). ``/v1/moderations`` and ``/v1/classifications`` take mistralai's ClassificationRequest, less its
#: ``metadata`` (left off as on embeddings). Any other endpoint (``/v1/ocr``, ``/v1/audio/transcriptions``, a newer
#: one) is refused: its bodies are not read here, and a direct call to it is no batch's operation.
_BATCH_ENDPOINTS: dict[str, frozenset[str]] = {
    "/v1/chat/completions": _CHAT_FIELDS,
    "/v1/fim/completions": _FIM_FIELDS,
    "/v1/embeddings": _EMBED_FIELDS,
    "/v1/moderations": _MODERATION_FIELDS,
    "/v1/classifications": _MODERATION_FIELDS,
    "/v1/chat/moderations": _MODERATION_FIELDS,
    "/v1/chat/classifications": _MODERATION_FIELDS,
    "/v1/conversations": _START_FIELDS,
}
#: Endpoints of the SDK's APIEndpoint that a refusal may name (any other value is not shown).
_NAMED_ENDPOINTS = frozenset({*_BATCH_ENDPOINTS, "/v1/ocr", "/v1/audio/transcriptions"})
#: Creating a fine-tuning job (mistralai 2's CreateFineTuningJobRequest, POST /v1/fine_tuning/jobs; mistralai 3 has
#: no method for it, so only a body built by other means reaches the guard). Its training and validation files were
#: uploaded earlier (judged then, as ``files``); ``suffix`` names the tuned model; ``classifier_targets`` are the
#: labels a classifier is tuned to give. Refused when they hold any: ``integrations`` (mistralai's WandbIntegration:
#: a W&B project and API key, for Mistral to report the job's run to Weights & Biases, a third party no Mistral
#: page read says what it is sent) and ``repositories`` (GithubRepositoryIn: a GitHub repository and a token, for
#: Mistral to fetch its content to train on, out of the request's sight). Neither is shown to carry no content.
_FINE_TUNE_FIELDS = frozenset(
    {
        "model", "hyperparameters", "training_files", "validation_files", "suffix", "integrations", "auto_start",
        "invalid_sample_skip_percentage", "job_type", "repositories", "classifier_targets",
    }
)  # fmt: skip
_FINE_TUNE_REFUSED = ("integrations", "repositories")
#: A fine-tuning job's ``hyperparameters`` (CompletionTrainingParameters, ClassifierTrainingParameters): numbers only.
_HYPERPARAMETERS = frozenset(
    {"training_steps", "learning_rate", "weight_decay", "warmup_fraction", "epochs", "seq_len", "fim_ratio"}
)


class MistralReader:
    """The :class:`~privsdk.outbound.outgoing.WireReader` for Mistral's API."""

    def read(self, request: Outgoing) -> Asks:
        parts = after_prefix(request.path.strip("/").split("/"), ("v1", "v2", "models"), ("v1", "v2"))
        method = request.method
        if parts == ["models", "chat", "completions"] and method == "POST":  # Azure AI Foundry
            return _completion(request, "chat")
        if parts[0] not in ("v1", "v2") or len(parts) < 2:
            raise UnknownRoute(f"unknown path shape /{shown_segment(parts[0])}/... for Mistral's API")
        family = parts[1]
        rest = parts[2:]
        if parts[0] == "v2":
            if family in ("prompts", "skills"):
                return Asks("other")
            if family == "audio":
                return Asks("audio")
            raise UnknownRoute(f"unknown path shape /v2/{shown_segment(family)}/... for Mistral's API")
        if family in ("chat", "fim") and rest and method == "POST":
            if rest == ["completions"]:
                return _completion(request, family)
            if rest[0] in ("moderations", "classifications"):
                body = json_object(request, "Mistral", family)
                if not _MODERATION_FIELDS.issuperset(body):
                    unknown_field(body, _MODERATION_FIELDS, f"a Mistral chat/{rest[0]} request")
                return Asks("moderation", body_model(body, "Mistral"))
        elif family == "embeddings" and not rest and method == "POST":
            body = json_object(request, "Mistral", family)
            if not _EMBED_FIELDS.issuperset(body):
                unknown_field(body, _EMBED_FIELDS, "a Mistral embeddings request")
            return Asks("embed", body_model(body, "Mistral"))
        elif family == "conversations":
            return _conversation(request, rest)
        elif method != "GET" and family in ("batch", "fine_tuning") and len(rest) == 1 and rest[0].lower() == "jobs":
            # In any case, and by any method but a listing's: a server that routes without them would create the
            # job from a body otherwise unread.
            return _batch_job(request) if family == "batch" else _fine_tune_job(request)
        elif family == "responses" and method == "POST":
            if not rest:
                return _response(request)
            return Asks("other")  # input_tokens: the prompt is sent to be counted
        elif family == "models":
            # A listing carries no content; changing or deleting a model is about fine-tuned models.
            return Asks("models" if method == "GET" else "fine_tune")
        else:
            operation = _FIXED.get(family)
            if operation is not None:
                return Asks(operation)
        raise UnknownRoute(f"unknown path shape /v1/{shown_segment(family)}/... for Mistral's API")

    def meter(self, request: Outgoing, asks: Asks, status: int, headers: Mapping[str, str]) -> Meter | None:
        if not 200 <= status < 300:
            return None
        kind = content_type(headers)
        if "event-stream" in kind:
            return EventMeter(_pick, (b'"usage"', ERROR), fail=_failure)
        if "json" in kind and asks.operation in ("chat", "embed", "moderation"):
            return JsonMeter(_pick)
        return None


def _operation(body: Mapping[str, Any]) -> str:
    return "stream" if body.get("stream") is True else "chat"


def _completion(request: Outgoing, family: str) -> Asks:
    body = json_object(request, "Mistral", family)
    known = _COMPLETION_FIELDS[family]
    if not known.issuperset(body):
        unknown_field(body, known, f"a Mistral {family} completion")
    features: set[str] = set()
    _tools(body.get("tools"), features)
    _messages(body.get("messages"), features)
    if body.get("prompt_cache_key"):
        features.add("prompt_caching")
    return Asks(_operation(body), body_model(body, "Mistral"), frozenset(features))


def _conversation(request: Outgoing, rest: list[str]) -> Asks:
    method = request.method
    if method != "POST" or len(rest) > 2 or (len(rest) == 2 and rest[1] != "restart"):
        return Asks("responses_state")  # listing, reading or deleting kept conversations
    body = json_object(request, "Mistral", "conversations")
    known = _RESTART_FIELDS if len(rest) == 2 else _APPEND_FIELDS if rest else _START_FIELDS
    if not known.issuperset(body):
        unknown_field(body, known, "a Mistral conversation request")
    if not rest and body.get("agent_id"):
        return Asks("assistants")  # the agent's tools are configured on Mistral's side
    features: set[str] = set()
    # Starting one keeps it unless told not to; appending to or restarting one reads what was kept, and runs the
    # tools (or agent) it was started with, which the request does not show: judged as bringing any of them.
    if rest:
        features.update(_STORED_TOOLS)
    # Conversations are a stateful API, outside the endpoints Mistral's ZDR covers (MIS-ZDR: "ZDR does not apply to
    # stateful APIs"), with store=false too: judged as stored, the stricter reading.
    features.add("stored_responses")
    _tools(body.get("tools"), features)
    _inputs(body.get("inputs"), features)
    if body.get("prompt_cache_key"):
        features.add("prompt_caching")
    return Asks(_operation(body), body_model(body, "Mistral"), frozenset(features))


def _response(request: Outgoing) -> Asks:
    body = json_object(request, "Mistral", "responses")
    if not _RESPONSE_FIELDS.issuperset(body):
        unknown_field(body, _RESPONSE_FIELDS, "a Mistral Responses request")
    # /v1/responses is not among the stateless endpoints Mistral's ZDR covers (MIS-ZDR), whatever store says:
    # judged as stored, the stricter reading.
    features: set[str] = {"stored_responses"}
    if flag(body, "background"):
        features.add("background")
    if body.get("prompt_cache_key"):
        features.add("prompt_caching")
    _tools(body.get("tools"), features)
    _inputs(body.get("input"), features)
    return Asks(_operation(body), body_model(body, "Mistral"), frozenset(features))


def _batch_job(request: Outgoing) -> Asks:
    """Creating a batch job: ``batch`` for the job's model, with the features of its inline requests, each read as
    a direct call to the job's endpoint is; ``assistants`` when it runs an agent (its requests' features read all
    the same). A job over uploaded files is refused: what their requests ask for cannot be read, as for a Gemini
    batch from a file."""
    body = json_object(request, "Mistral", "batch")
    unknown_field(body, _BATCH_FIELDS, "a Mistral batch job")
    endpoint = body.get("endpoint")
    known = _BATCH_ENDPOINTS.get(endpoint) if isinstance(endpoint, str) else None
    if known is None:
        shown = endpoint if isinstance(endpoint, str) and endpoint in _NAMED_ENDPOINTS else "<endpoint>"
        raise Unreadable(f"a Mistral batch job for an endpoint privsdk does not read: {shown}")
    if body.get("input_files"):
        raise Unreadable(
            "a Mistral batch job over uploaded files, whose requests privsdk cannot read (send them inline: "
            "requests=[...])"
        )
    # A batch over an agent, whose tools are configured on Mistral's side, is judged as a conversation with one is.
    operation = "batch" if body.get("agent_id") is None else "assistants"
    model = body_model(body, "Mistral")
    features: set[str] = set()
    requests = body.get("requests")
    if requests is not None and not isinstance(requests, list):
        raise Unreadable("a Mistral batch job's requests is not a list")
    for item in requests or ():
        if not isinstance(item, dict) or not isinstance(item.get("body"), dict):
            raise Unreadable("a Mistral batch request is not an object with a body")
        unknown_field(item, _BATCH_REQUEST_FIELDS, "a Mistral batch request")
        inner: dict[str, Any] = item["body"]
        unknown_field(inner, known, f"a Mistral batch request for {endpoint}")
        if endpoint == "/v1/conversations":
            if inner.get("agent_id") is not None:
                operation = "assistants"  # as a conversation started with an agent is
            features.add("stored_responses")  # a stateful API, outside ZDR (see _conversation)
            _inputs(inner.get("inputs"), features)
        else:
            _messages(inner.get("messages"), features)
        _tools(inner.get("tools"), features)
        if inner.get("prompt_cache_key"):
            features.add("prompt_caching")
        named = body_model(inner, "Mistral")
        if named is not None and named != model:
            # One request is judged for one model: the job's, which its requests may name too, or not at all.
            if model is not None:
                raise Unreadable("a Mistral batch whose requests name another model than the job, or than each other")
            model = named
    return Asks(operation, model, frozenset(features))


def _fine_tune_job(request: Outgoing) -> Asks:
    """Creating a fine-tuning job: ``fine_tune`` for the model it tunes (its data was uploaded as files)."""
    body = json_object(request, "Mistral", "fine_tuning")
    unknown_field(body, _FINE_TUNE_FIELDS, "a Mistral fine-tuning job")
    for field in _FINE_TUNE_REFUSED:
        if body.get(field):
            raise Unreadable(
                f"a Mistral fine-tuning job with {field}, which privsdk does not judge (they have Mistral send the "
                "job's data to, or fetch it from, a third party): leave them out"
            )
    hyperparameters = body.get("hyperparameters")
    if hyperparameters is not None:
        if not isinstance(hyperparameters, dict):
            raise Unreadable("a Mistral fine-tuning job's hyperparameters is not an object")
        unknown_field(hyperparameters, _HYPERPARAMETERS, "a Mistral fine-tuning job's hyperparameters")
    return Asks("fine_tune", body_model(body, "Mistral"))


def _tools(tools: Any, features: set[str]) -> None:
    if not isinstance(tools, list):
        return
    for tool in tools:
        kind = tool.get("type", "function") if isinstance(tool, dict) else None
        if kind in _TOOLS:
            feature = _TOOLS[kind]
            if feature is not None:
                features.add(feature)
        else:
            features.add("hosted_tools")  # code_interpreter, image_generation, connectors, mcp, or newer


def _messages(messages: Any, features: set[str]) -> None:
    if not isinstance(messages, list):
        return
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and _has_file(content):
            features.add("file_inputs")
            return


def _inputs(inputs: Any, features: set[str]) -> None:
    """Conversation ``inputs`` / Responses ``input``: a string, or entries whose content may hold parts."""
    if isinstance(inputs, list):
        _messages(inputs, features)


def _has_file(content: list[Any]) -> bool:
    return any(isinstance(part, dict) and part.get("type", "text") not in _TEXT_PARTS for part in content)


def _counts(usage: Any) -> Tokens | None:
    if not isinstance(usage, dict):
        return None
    found_in = count(usage.get("prompt_tokens", usage.get("input_tokens")))
    found_out = count(usage.get("completion_tokens", usage.get("output_tokens")))
    return found_in, found_out


def _pick(answer: Any) -> Tokens | None:
    """Counts from an answer or stream event: its ``usage``, or that of the response it wraps."""
    if not isinstance(answer, dict):
        return None
    usage = answer.get("usage")
    if usage is None:
        inner = answer.get("response") or answer.get("data")
        usage = inner.get("usage") if isinstance(inner, dict) else None
    return _counts(usage)


def _failure(event: Any) -> str | None:
    """The error class of an error Mistral sends inside a started stream: its error object as an event."""
    if not isinstance(event, dict):
        return None
    error = event.get("error")
    if isinstance(error, dict):
        event = error
    elif event.get("object") != "error":
        return None
    code = event.get("code")
    return error_kind(code if isinstance(code, str | int) and code else event.get("type"))


READER = MistralReader()
