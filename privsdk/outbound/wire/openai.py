"""OpenAI's wire protocol: what a request asks for, and its answer's tokens.

Serves every host that speaks it: api.openai.com and the regional
``xx.api.openai.com`` hosts (``/v1/...``), Azure OpenAI
(``/openai/deployments/{deployment}/...?api-version=``, ``/openai/...`` and
``/openai/v1/...``), Azure AI Foundry (``/openai/v1/...``, ``/models/...``)
and OpenAI-compatible servers (vLLM, Ollama's ``/v1``, any prefix).

The route is what follows the prefix (``/v1``, ``/openai/v1``, an Azure
deployment): its first segment names the endpoint family, and so the
operation. Features come from the body of the requests that send content to a
model (Chat Completions, legacy Completions, Responses). The body is parsed
once; nothing read from it is kept but names and flags, and no error message
quotes it. A field the reader neither reads nor knows to carry nothing the
vendor keeps is refused (:data:`FIELDS`), but at a self-hosted server
(:mod:`privsdk.outbound.wire.selfhosted`).

A fine-tuning job's creation (``POST fine_tuning/jobs``) is ``fine_tune`` for
the model it tunes, its body read as the others are, its method and
hyperparameters field by field: W&B ``integrations`` and a reinforcement
method (whose grader runs a model or code at OpenAI) are refused, as is a job
naming no model. The graders (``fine_tuning/alpha/...``) are ``other``; the
rest of fine-tuning (jobs, events, checkpoints, sharing one with other projects
of the organisation) is ``fine_tune``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from privsdk.outbound.outgoing import (
    Asks,
    Outgoing,
    UnknownRoute,
    Unreadable,
    body_model,
    content_type,
    flag,
    json_object,
    known_fields,
    shown_segment,
    unknown_field,
)
from privsdk.outbound.wire.meters import LastBytes, count

#: First route segment -> operation, for the families whose operation does not depend on method or sub-path.
_FAMILY: Mapping[str, str] = {
    "embeddings": "embed",
    "files": "files",
    "uploads": "files",
    "batches": "batch",
    "fine_tuning": "fine_tune",
    "assistants": "assistants",
    "threads": "assistants",
    "vector_stores": "vector_stores",
    "images": "images",
    "audio": "audio",
    "moderations": "moderation",
    "realtime": "realtime",
    "live": "realtime",
    "conversations": "responses_state",
    # Endpoints the catalogue has no facts for: named so that the refusal says what they are.
    "videos": "other",
    "containers": "other",
    "evals": "other",
    "agents": "other",
    "chatkit": "other",
    "skills": "other",
    "vaults": "other",
    "organization": "other",
    "projects": "other",
    "webhook_endpoints": "other",
    "webhook_event_types": "other",
    "safety": "other",
    "decisions": "other",
    "content_provenance_checks": "other",
}
#: Every first segment a route may start with: what a prefix scan looks for on a server with an unusual prefix.
_FIRST = frozenset({*_FAMILY, "chat", "completions", "responses", "models"})
#: The first route segments of the requests whose body is read (their model, features).
_BODY_FAMILIES = frozenset({"chat", "completions", "responses", "embeddings"})
#: Routes that Azure AI model inference serves under ``/models/``.
_MODEL_ROUTES = frozenset({"chat", "completions", "embeddings", "images"})

#: Tool type -> the features it brings. A tool whose code runs in the app (function, custom, local
#: shell, apply_patch) brings none; a namespace's tools are read one by one; a type not listed here is unreadable.
_TOOLS: Mapping[str, frozenset[str]] = {
    "function": frozenset(),
    "custom": frozenset(),
    "apply_patch": frozenset(),
    "local_shell": frozenset(),
    "web_search": frozenset({"web_search"}),
    "web_search_2025_08_26": frozenset({"web_search"}),
    "web_search_preview": frozenset({"web_search"}),
    "web_search_preview_2025_03_11": frozenset({"web_search"}),
    "file_search": frozenset({"file_search"}),
    "code_interpreter": frozenset({"hosted_tools"}),
    "programmatic_tool_calling": frozenset({"hosted_tools"}),
    "computer": frozenset({"hosted_tools"}),
    "computer_use": frozenset({"hosted_tools"}),
    "computer_use_preview": frozenset({"hosted_tools"}),
    "mcp": frozenset({"hosted_tools"}),
    "image_generation": frozenset({"hosted_tools", "image_output"}),
}
_HOSTED = frozenset({"hosted_tools"})
#: What a stored prompt (or an Azure AI Foundry agent) may bring that its request does not show: every hosted tool
#: a prompt can set.
_STORED_PROMPT_TOOLS = frozenset({"web_search", "file_search", "hosted_tools", "image_output"})
_NONE: frozenset[str] = frozenset()
#: An input item that names a stored item by its id: the SDK's ItemReference, whose ``type`` may be left out.
_REFERENCES = frozenset({"item_reference", None})

#: Content part types that carry a file, an image or audio into the request (a computer-use screenshot is an image).
_FILE_PARTS = frozenset({"image_url", "file", "input_image", "input_file", "input_audio", "computer_screenshot"})
#: The prompt-cache lifetime that keeps nothing beyond OpenAI's in-memory default; any other (``12h``, or one a
#: newer API takes: "Supported lifetimes depend on the API") is extended caching.
_DEFAULT_TTLS = frozenset({None, "30m"})


#: The deployment of a request to Azure's v1 API (``/openai/v1/...``): its body's ``model`` names it. No deployment
#: name holds a "/".
BODY_DEPLOYMENT = "/"


def _route(path: str) -> tuple[tuple[str, ...], str | None]:
    """The route's segments after the prefix, and the Azure deployment when the path names one.

    ``/v1/chat/completions`` -> ``(("chat", "completions"), None)``;
    ``/openai/deployments/gpt4o/chat/completions`` -> ``(("chat", "completions"), "gpt4o")``.
    """
    named = [s for s in path.split("/") if s]
    # Read without case, as a server that routes without it (ASP.NET Core, behind Azure's hosts) would: judged as
    # the deployment "/OpenAI/deployments/x/..." names, never as the first route word it holds. The deployment's
    # name keeps its case.
    segments = tuple(s.lower() for s in named)
    # Azure's, under a gateway's prefix or an AI Foundry project's (/api/projects/P/openai/v1/...) too.
    for at in range(len(segments) - 1):
        if segments[at] == "openai":
            if segments[at + 1] == "deployments" and at + 2 < len(segments):
                return segments[at + 3 :], named[at + 2]
            if segments[at + 1] == "v1":
                return segments[at + 2 :], BODY_DEPLOYMENT  # Azure's v1 API: the body's model names the deployment
    if segments and segments[0] == "openai":
        # Azure's routes outside a deployment (/openai/responses?api-version=...): the body's model names one.
        return segments[1:], BODY_DEPLOYMENT
    if "v1" in segments:
        segments = segments[segments.index("v1") + 1 :]
    elif not (segments and segments[0] in _FIRST):
        # An OpenAI-compatible server under a prefix of its own (/api/..., /serving-endpoints/...).
        segments = next((segments[i:] for i, s in enumerate(segments) if s in _FIRST), segments)
    if len(segments) > 1 and segments[0] == "models" and segments[1] in _MODEL_ROUTES:
        return segments[1:], None  # Azure AI model inference: /models/chat/completions
    return segments, None


def _unknown(path: str) -> UnknownRoute:
    """The refusal of a path the protocol has no shape for, naming the path as sent (``/v2/chat``, not a ``/v1/``
    it never held), each segment as :func:`shown_segment` shows it: ids are not quoted."""
    parts = [shown_segment(s) for s in path.split("/") if s]
    shown = "/" + "/".join(parts[:8]) + ("/..." if len(parts) > 8 else "")
    return UnknownRoute(f"unknown path shape {shown} for the OpenAI protocol")


def _tool_features(tools: Any, into: set[str]) -> None:
    if not tools:
        return
    if not isinstance(tools, list):
        raise Unreadable("tools is not a list")
    for tool in tools:
        kind = tool.get("type") if isinstance(tool, dict) else None
        found = _TOOLS.get(kind) if isinstance(kind, str) else None
        if found is not None:
            into.update(found)
        elif kind == "shell":  # hosted unless it runs in the app's own environment
            environment = tool.get("environment")
            if not (isinstance(environment, dict) and environment.get("type") == "local"):
                into.update(_HOSTED)
        elif kind == "tool_search":  # searched by OpenAI unless the app runs the search
            if tool.get("execution") != "client":
                into.update(_HOSTED)
        elif kind == "namespace":  # the app's functions grouped under a name: each of its tools read as any other
            _tool_features(tool.get("tools"), into)
        else:
            raise Unreadable("a tool of a type the OpenAI reader does not know")


def _part_features(content: list[Any], into: set[str]) -> None:
    """Features carried by content parts: files and images, extended cache breakpoints."""
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") in _FILE_PARTS:
            into.add("file_inputs")
        if _extends_cache(part.get("prompt_cache_breakpoint")):
            into.add("prompt_caching")


def _extends_cache(options: Any) -> bool:
    """Whether a request's or a content part's cache options (``prompt_cache_options``,
    ``prompt_cache_breakpoint``) keep the cache beyond the default lifetime: any but an object with no ``ttl`` or
    the default one."""
    return options is not None and not (isinstance(options, dict) and options.get("ttl") in _DEFAULT_TTLS)


def _cache_features(body: dict[str, Any], into: set[str]) -> None:
    retention = body.get("prompt_cache_retention")
    if retention is not None and retention != "in_memory":
        into.add("prompt_caching")
    if _extends_cache(body.get("prompt_cache_options")):
        into.add("prompt_caching")


#: The top-level fields of a Chat Completions request that can bring a feature, or hold a value privsdk refuses
#: (``service_tier``): most requests carry none of them, which one set intersection (in C) tells.
_FEATURE_FIELDS = frozenset(
    {
        "store",
        "web_search_options",
        "modalities",
        "audio",
        "background",
        "prompt_cache_retention",
        "prompt_cache_options",
        "tools",
        "data_sources",
        "service_tier",
    }
)

# -- the fields a body may hold -----------------------------------------------------------------------------------
#
# Each body the reader reads has an allow-list of its top-level fields: those it reads, and those that only shape
# the answer or label the request (sampling, limits, the answer's format). Any other field is refused (fail
# closed): a field privsdk never judged (a new OpenAI parameter, an Azure extension, anything an app puts in
# extra_body) may make the vendor keep, log, run or share something. The lists start from the openai SDK's own
# request types; tests/test_wire_openai.py holds every SDK field left off, with why, and fails on a field it has
# not judged. Fields judged:
#
# - ``metadata``: tags kept with the object they label: with a stored response or completion (``store``, read).
# - ``user``, ``safety_identifier``: an end user's id for OpenAI's abuse monitoring, which keeps logs of every
#   request anyway (OpenAI, "Your data"); no content.
# - ``prompt_cache_key``: which cache a prompt is routed to; how long a cache lives is read from
#   ``prompt_cache_retention`` and ``prompt_cache_options``.
# - ``service_tier``: price and latency; read, as a tier privsdk does not know is refused (_TIERS).
# - ``moderation`` is left off: it runs a moderation model over the input and output, which the policy judges as
#   the ``moderation`` operation (/v1/moderations), and what OpenAI keeps of its verdicts is not stated.
# - Chat Completions takes no ``previous_response_id`` or ``conversation``: left off, not read as a chat feature.

#: Service tiers that set price and latency only (the openai SDK's); another is refused, as no source says what it
#: does with a request (Google's ``deferred`` queues one).
_TIERS = frozenset({"auto", "default", "flex", "scale", "priority", "fast", "ultrafast"})

#: Chat Completions (``chat/completions``): the fields read, the openai SDK's that shape the answer, and Azure
#: OpenAI's ``user_security_context``: the end user's id, tenant and IP, no content, which label the alerts of the
#: tenant's own Microsoft Defender for Cloud (Azure OpenAI REST reference; the Azure SDKs' UserSecurityContext:
#: "to investigate and mitigate security incidents"). Azure's ``enhancements`` (OCR and grounding of images by
#: Azure AI Vision, another service) is left off.
_CHAT_FIELDS = _FEATURE_FIELDS | frozenset(
    {
        "model", "messages", "stream", "stream_options", "n", "temperature", "top_p", "frequency_penalty",
        "presence_penalty", "logit_bias", "logprobs", "top_logprobs", "max_tokens", "max_completion_tokens", "stop",
        "seed", "response_format", "reasoning_effort", "verbosity", "tool_choice", "parallel_tool_calls",
        "functions", "function_call", "prediction", "metadata", "user", "safety_identifier", "prompt_cache_key",
        "user_security_context",
    }
)  # fmt: skip
#: Legacy Completions (``completions``): nothing in them brings a feature, and every field shapes the answer.
_COMPLETION_FIELDS = frozenset(
    {
        "model", "prompt", "suffix", "stream", "stream_options", "n", "best_of", "echo", "temperature", "top_p",
        "frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "max_tokens", "stop", "seed", "user",
    }
)  # fmt: skip
#: Responses (``responses``): the fields read (_responses_features), those that shape the answer, and Azure AI
#: Foundry's ``agent`` (read). ``context_management`` has the answer compact the conversation into an encrypted
#: item it returns, kept only as the response is (OpenAI, "Compaction": "ZDR-friendly when you set store=false");
#: ``image`` sets how input images are compressed. Left off: ``moderation`` (above) and ``access_programs``,
#: which asks for the Daybreak cyber-security programs, whose terms no source read states.
_RESPONSES_FIELDS = frozenset(
    {
        "model", "input", "instructions", "stream", "stream_options", "store", "previous_response_id",
        "conversation", "background", "background_options", "prompt", "agent", "tools", "tool_choice",
        "parallel_tool_calls", "max_tool_calls", "prompt_cache_retention", "prompt_cache_options", "prompt_cache_key",
        "service_tier", "temperature", "top_p", "top_logprobs", "max_output_tokens", "reasoning", "text", "include",
        "truncation", "context_management", "image", "metadata", "user", "safety_identifier",
    }
)  # fmt: skip
#: Embeddings (``embeddings``): every field shapes the vectors; ``input_type`` (query or document) is Azure AI
#: model inference's (Azure AI Model Inference Embeddings API reference).
_EMBEDDING_FIELDS = frozenset({"model", "input", "dimensions", "encoding_format", "user", "input_type"})
#: Creating a fine-tuning job (``fine_tuning/jobs``, the openai SDK's JobCreateParams, OpenAI's and Azure
#: OpenAI's): ``model``, the model tuned, is judged (a job naming none is refused). Its training and validation files
#: were uploaded earlier (judged then, as ``files``); ``suffix`` names the tuned model; ``seed``, ``hyperparameters``
#: and ``method`` (read: _fine_tune_job) shape the training; ``metadata`` labels the kept job. ``integrations`` is
#: read and refused when set: Weights & Biases, the one the SDK names, has OpenAI report the job's run to a third
#: party the policy does not judge. Azure's own fields (a training type, say) are refused as any other.
_FINE_TUNE_FIELDS = frozenset(
    {
        "model", "training_file", "validation_file", "suffix", "seed", "hyperparameters", "method", "metadata",
        "integrations",
    }
)  # fmt: skip
#: The fields of a method's settings (SupervisedMethodParam, DpoMethodParam).
_METHOD_FIELDS = frozenset({"hyperparameters"})
#: Hyperparameters (numbers, or ``auto``) of the deprecated top-level field and of a supervised method's.
_SUPERVISED_HYPERPARAMETERS = frozenset({"batch_size", "learning_rate_multiplier", "n_epochs"})
#: Each fine-tuning method read -> its hyperparameters' fields (the SDK's *HyperparametersParam). ``reinforcement``
#: is not read: see _fine_tune_job.
_METHOD_HYPERPARAMETERS: Mapping[str, frozenset[str]] = {
    "supervised": _SUPERVISED_HYPERPARAMETERS,
    "dpo": _SUPERVISED_HYPERPARAMETERS | {"beta"},
}
#: Each family whose body is read -> the fields its body may hold.
FIELDS: Mapping[str, frozenset[str]] = {
    "chat/completions": _CHAT_FIELDS,
    "completions": _COMPLETION_FIELDS,
    "responses": _RESPONSES_FIELDS,
    "embeddings": _EMBEDDING_FIELDS,
    "fine_tuning/jobs": _FINE_TUNE_FIELDS,
}


def _service_tier(tier: Any) -> None:
    """Refuse a service tier privsdk does not know (:data:`_TIERS`)."""
    if tier is not None and not (isinstance(tier, str) and tier in _TIERS):
        raise Unreadable("a service tier privsdk does not read")


def _chat_features(body: dict[str, Any]) -> frozenset[str]:
    found: set[str] = set()
    if not _FEATURE_FIELDS.isdisjoint(body):
        if flag(body, "store"):
            found.add("stored_responses")
        if body.get("web_search_options") is not None:
            found.add("web_search")
        modalities = body.get("modalities")
        if modalities is not None and not (isinstance(modalities, list) and all(type(m) is str for m in modalities)):
            raise Unreadable("modalities is not a list of names")
        if body.get("audio") is not None or (modalities is not None and "audio" in modalities):
            found.add("audio_output")
        if flag(body, "background"):
            found.add("background")
        _cache_features(body, found)
        _tool_features(body.get("tools"), found)
        if body.get("data_sources"):
            # Azure OpenAI "On Your Data": the service searches the app's data store (Azure AI Search, Cosmos DB,
            # Elasticsearch, Pinecone) and adds what it finds to the prompt: a hosted search over stored data.
            found.add("file_search")
        _service_tier(body.get("service_tier"))
    _item_features(body.get("messages"), found)
    return frozenset(found)


def _responses_features(body: dict[str, Any]) -> frozenset[str]:
    found: set[str] = set()
    # The Responses API stores a response unless told not to.
    if body.get("store") is not False or body.get("previous_response_id") or body.get("conversation"):
        found.add("stored_responses")  # any store but false: an odd value ("false", 0) reads as storing
    # background_options only serve background execution: any (a completion window, a continuation id) is read
    # as asking for it. The stricter reading: the 2h and 8h windows need background, and whether a window without
    # it runs in the background is not stated.
    if flag(body, "background") or body.get("background_options"):
        found.add("background")
    _cache_features(body, found)
    _service_tier(body.get("service_tier"))
    _tool_features(body.get("tools"), found)
    _item_features(body.get("input"), found)
    # A string, as the SDK types it; a list of items, which a server may take as input, is read as input.
    _item_features(body.get("instructions"), found)
    _compaction(body.get("context_management"))
    if body.get("agent") is not None:
        found.update(_STORED_PROMPT_TOOLS)  # an Azure AI Foundry agent's tools are set at Azure, as a prompt's
    prompt = body.get("prompt")
    if prompt is not None:
        # A stored ("reusable") prompt lives at OpenAI and may turn on tools the request does not show: it is
        # judged as bringing every hosted tool a prompt can set. Its variables may be images and files.
        found.update(_STORED_PROMPT_TOOLS)
        variables = prompt.get("variables") if isinstance(prompt, dict) else None
        if isinstance(variables, dict):
            _part_features(list(variables.values()), found)
    return frozenset(found)


def _compaction(entries: Any) -> None:
    """``context_management``: compaction alone is known (the openai SDK: "Currently only 'compaction' is
    supported"), whose item is kept only as the response is; any other entry is refused, as its effect is not."""
    if entries is None:
        return
    if not isinstance(entries, list) or any(not isinstance(e, dict) or e.get("type") != "compaction" for e in entries):
        raise Unreadable("context_management holds an entry other than compaction")


def _item_features(items: Any, found: set[str]) -> None:
    """The features of chat ``messages`` or Responses ``input`` items: their content parts, a tool call's output
    parts (``function_call_output``, ``computer_call_output``), the tools an ``additional_tools`` item brings, and
    a reference to a stored item."""
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict):
                content = item.get("content")
                if isinstance(content, list):  # plain text is the usual content, and carries no feature
                    _part_features(content, found)
                output = item.get("output")
                if isinstance(output, list):
                    _part_features(output, found)
                elif isinstance(output, dict):  # a computer call's screenshot
                    _part_features([output], found)
                if "tools" in item:
                    _tool_features(item["tools"], found)
                if "id" in item and item.get("type") in _REFERENCES:  # answered from what OpenAI stored
                    found.add("stored_responses")


def _fine_tune_job(body: dict[str, Any], deployment: str | None) -> Asks:
    """Creating a fine-tuning job, its top-level fields checked: ``fine_tune`` for the model it tunes."""
    if body.get("integrations") is not None:
        raise Unreadable(
            "an OpenAI fine-tuning job with integrations, which privsdk does not judge (Weights & Biases: OpenAI "
            "reports the job's run to a third party): leave them out"
        )
    _hyperparameters(body.get("hyperparameters"), _SUPERVISED_HYPERPARAMETERS, "hyperparameters")
    method = body.get("method")
    if method is not None:
        if not isinstance(method, dict):
            raise Unreadable("an OpenAI fine-tuning job's method is not an object")
        kind = method.get("type")
        if kind == "reinforcement":
            # Its grader runs at OpenAI on every answer the model gives while it is tuned: a score or label model
            # grader sends them to another model, a python grader runs the app's code, a text similarity grader
            # may embed them (cosine), a multi grader nests any of these. privsdk judges none of them; the
            # stricter reading refuses every reinforcement method, a plain string check included, rather than
            # read a grader tree that grows with each release.
            raise Unreadable(
                "a reinforcement fine-tuning job, whose grader (a model or code run at OpenAI on the tuned model's "
                "answers) privsdk does not judge: tune with the supervised or dpo method"
            )
        if not isinstance(kind, str) or kind not in _METHOD_HYPERPARAMETERS:
            raise Unreadable("an OpenAI fine-tuning job's method of a type privsdk does not read")
        # Only the settings of the method it names: a server may read another's (a reinforcement grader) as well.
        unknown_field(method, frozenset({"type", kind}), "an OpenAI fine-tuning job's method")
        settings = method.get(kind)
        if settings is not None:
            known_fields(settings, _METHOD_FIELDS, f"an OpenAI fine-tuning job's {kind} method")
            _hyperparameters(settings.get("hyperparameters"), _METHOD_HYPERPARAMETERS[kind], f"{kind} hyperparameters")
    model = body_model(body, "OpenAI")
    if model is None:
        raise Unreadable("an OpenAI fine-tuning job that names no model to tune")
    return Asks("fine_tune", model, deployment=deployment)


def _hyperparameters(value: Any, known: frozenset[str], what: str) -> None:
    """A fine-tuning job's ``what``: an object of ``known`` fields, each a number or ``auto``, or absent."""
    if value is None:
        return
    known_fields(value, known, f"an OpenAI fine-tuning job's {what}")
    if any(isinstance(v, dict | list) for v in value.values()):
        raise Unreadable(f"an OpenAI fine-tuning job's {what} holds a value that is neither a number nor a name")


class _Plan(NamedTuple):
    """What a request's method and path tell: its answer when they tell all (``asks``), else the family whose
    body must be read (``chat/completions``, ``completions``, ``responses``, ``embeddings`` or
    ``fine_tuning/jobs``) and the fields that body may hold (:data:`FIELDS`)."""

    asks: Asks | None
    family: str
    deployment: str | None
    fields: frozenset[str] = _NONE


@functools.lru_cache(maxsize=1024)  # an app calls a few paths again and again; planning one costs ~3 µs
def _plan(method: str, path: str) -> _Plan:
    """What ``method`` and ``path`` say; :class:`Unreadable` for a path the OpenAI protocol has no shape for."""
    segments, deployment = _route(path)
    if not segments:
        raise _unknown(path)
    if deployment is BODY_DEPLOYMENT and not (method.upper() == "POST" and segments[0] in _BODY_FAMILIES):
        deployment = None  # no body to name one (a listing, a stored object)
    first = segments[0]
    method = method.upper()
    if first == "chat" or first == "completions" or first == "responses":
        if first == "chat":
            if len(segments) < 2 or segments[1] != "completions":
                raise _unknown(path)
            family, rest = "chat/completions", segments[2:]
        else:
            family, rest = first, segments[1:]
        if not rest and method == "POST":
            return _Plan(None, family, deployment, FIELDS[family])
        # Stored objects (GET/DELETE /responses/{id}, stored chat completions), and the helper endpoints that
        # count or compact input: none of them is a plain generation.
        if family == "responses" and rest and rest[0] in ("compact", "input_tokens"):
            return _Plan(Asks("other", deployment=deployment), family, deployment)
        if family == "completions" and not rest:
            raise _unknown(path)
        return _Plan(Asks("responses_state", deployment=deployment), family, deployment)
    if first == "models":  # a listing carries no content; deleting a fine-tuned model is something else
        return _Plan(Asks("models" if method == "GET" else "other", deployment=deployment), first, deployment)
    if first == "fine_tuning" and len(segments) > 1:
        if method == "POST" and len(segments) == 2 and segments[1] == "jobs":
            return _Plan(None, "fine_tuning/jobs", deployment, _FINE_TUNE_FIELDS)
        if segments[1] == "alpha":
            # Graders (run, validate): a grader's model or code run at OpenAI on what the request sends, as a
            # reinforcement job's is (refused there); no fine-tuning happens. The rest (listing, retrieving,
            # cancelling, pausing, resuming jobs; their events and checkpoints; a checkpoint's permissions, which
            # share the tuned model with other projects of the organisation) stays ``fine_tune``.
            return _Plan(Asks("other", deployment=deployment), first, deployment)
    operation = _FAMILY.get(first)
    if operation is None:
        raise _unknown(path)
    if operation == "batch" and method == "POST" and len(segments) == 1:
        # Its requests (each a model, a body with its tools and files) are in a file uploaded before, which the
        # guard cannot read where it is: judged as a batch, every one of them would go out unjudged. Mistral's and
        # Gemini's batches from files are refused alike.
        raise Unreadable(
            "an OpenAI batch runs the requests of a file uploaded before (input_file_id), which privsdk cannot read "
            "at the vendor: it creates none (send the requests one by one, each judged as it goes)"
        )
    if method == "POST" and operation == "embed":
        return _Plan(None, "embeddings", deployment, _EMBEDDING_FIELDS)
    return _Plan(Asks(operation, deployment=deployment), first, deployment)


class OpenAIReader:
    """The reader for every OpenAI-protocol offering (``READER``).

    A body field outside its family's :data:`FIELDS` is refused, unless ``every_field``: a self-hosted server
    (:mod:`privsdk.outbound.wire.selfhosted`) takes fields of its own, and is the tenant's. What the vendor gives a
    model whatever the request says (day-long prompt caching to its newest models) is the decision's to add
    (:mod:`privsdk.catalogue.implied`), for every entry point alike.
    """

    __slots__ = ("every_field",)

    def __init__(self, *, every_field: bool = False) -> None:
        self.every_field = every_field

    def read(self, request: Outgoing) -> Asks:
        asks, family, deployment, fields = _plan(request.method, request.path)
        if asks is not None:
            return asks
        body = json_object(request, "OpenAI", family)
        if not fields.issuperset(body) and not self.every_field:  # one pass in C, as most bodies have known fields
            unknown_field(body, fields, f"an OpenAI {family} request")
        model = body.get("model")
        if type(model) is not str or not model:  # a name, as almost always; else what body_model makes of it
            model = body_model(body, "OpenAI")
        if family == "fine_tuning/jobs":
            return _fine_tune_job(body, deployment)  # its body's model is the one tuned, never a deployment
        if deployment is BODY_DEPLOYMENT:
            deployment = model
        if family == "embeddings":
            return Asks("embed", model=model, deployment=deployment)
        if family == "responses":
            if model is None and (body.get("prompt") is not None or body.get("agent") is not None):
                raise Unreadable(
                    "a Responses request with a stored prompt or an agent names no model: the prompt or agent sets "
                    "one at the vendor, which privsdk cannot see (name the model in the request: model=...)"
                )
            features = _responses_features(body)
        elif _FEATURE_FIELDS.isdisjoint(body) and request.body.count(b"[") < 2:
            # A plain chat request, as most are: no field that brings a feature, and no list of content parts
            # (a list, like any JSON array, opens with a "[" byte, never escaped outside a string: the one "["
            # is the messages array's).
            features = _NONE
        else:
            features = _chat_features(body)
        named = deployment or model  # an Azure deployment in the path decides what runs, whatever the body names
        if named is not None and "daybreak" in named.lower():
            raise Unreadable(
                "a Daybreak model (OpenAI's cyber-security access programs), whose terms no source privsdk reads "
                "states, as for the access_programs field"
            )
        # Built by tuple's own constructor: a named tuple's __new__ is a Python function, and each Python call on
        # the guard's path costs three times its instructions, run cold between two SDK calls.
        operation = "stream" if body.get("stream") is True else "chat"
        return tuple.__new__(Asks, (operation, model, features, deployment, None, None, None))

    def meter(self, request: Outgoing, asks: Asks, status: int, headers: Mapping[str, str]) -> UsageMeter | None:
        if status >= 300:
            return None
        if asks.operation in _JSON_ANSWERS:
            return UsageMeter(asks.operation == "stream")  # JSON or events, whatever the content type says
        kind = content_type(headers)
        if not (kind.startswith("application/json") or kind.startswith("text/event-stream")):
            return None  # audio, images, file content: no token counts to read
        return UsageMeter(asks.operation == "stream")


#: Operations whose successful answer is JSON or server-sent events, never audio, images or file content.
_JSON_ANSWERS = frozenset({"chat", "stream", "embed"})
_KEY = b'"usage"'
#: What follows the key in every chunk of a Chat Completions stream with ``include_usage`` but its last (OpenAI
#: sends compact JSON; any other spelling of null takes the general path).
_NULL = b":null"
#: How a stream's closing event can end a chunk (a search through every chunk would cost more than the meter).
_DONE = (b"[DONE]\n\n", b"[DONE]\r\n\r\n", b"[DONE]\n", b"[DONE]\r\n", b"[DONE]")
#: The bytes kept after a chunk: just too few to hold the key, so a key split across chunks is found once.
_TAIL = 1 - len(_KEY)
#: The longest usage object kept while it arrives; anything longer is not a usage object.
_MAX_USAGE = 4096
#: The json module's C scanner: one JSON value at an offset, without raw_decode's Python wrapper.
_scan: Any = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set in __init__, untyped
#: What follows a key ``"usage"`` up to its object's opening brace (group 1), as far as it goes.
_COLON_BRACE = re.compile(rb"[ \t\r\n]*(?::[ \t\r\n]*(\{)?)?")


class UsageMeter:
    """Token counts from an OpenAI answer, JSON or SSE, keeping only the bytes of ``"usage": {...}``.

    A JSON string cannot hold an unescaped quote, so the bytes ``"usage"``
    followed by a colon can only be a key: the meter looks for them across
    chunk boundaries, parses the object that follows, and keeps the last one
    that holds counts (a Chat Completions stream's final chunk, the Responses
    API's ``response.completed`` event, a JSON body's top-level usage). Every
    other byte is dropped as it passes, but a stream's last 16 KiB (its last
    chunks), where ``tokens`` looks for an error the vendor ended it with
    (``failed``), however the network split it.
    """

    __slots__ = ("_buf", "_input", "_last", "_output", "_stream", "ended", "failed")

    def __init__(self, stream: bool = False) -> None:
        self._stream = stream
        self._buf = b""
        self._last = LastBytes() if stream else None  # only a stream ends with an error event after its 200
        self._input: int | None = None
        self._output: int | None = None
        #: True once the answer's end has passed: its counts (which come last), or a stream's closing
        #: ``data: [DONE]``, after which the SDK closes the answer before the end of its body (the answer was whole
        #: even without counts). An answer let go of before then was cancelled (``finish_early``).
        self.ended = False
        #: The error class of an error the vendor ended a stream with after its 200 (Chat Completions' error chunk,
        #: the Responses API's ``error`` event or failed response), None without one; known once ``tokens`` is read.
        self.failed: str | None = None

    def feed(self, chunk: bytes) -> None:
        # On the path of every answer and every chunk of a stream: offsets into one buffer, no copy of what passes.
        if self._last is not None:
            self._last.add(chunk)  # references to its last chunks: searching every chunk would cost 10x more
        buf = self._buf + chunk
        if buf.endswith(_DONE):  # the last event; buf holds the previous chunk's tail, so a split one is found too
            self.ended = True
        at = buf.find(_KEY)
        while at >= 0:
            start = at + len(_KEY)
            if buf.startswith(_NULL, start):  # no counts here: half the cost of a stream's chunk, passed over
                at = buf.find(_KEY, start)
                continue
            parsed, end = self._usage(buf, start)
            if end is None:  # the object has not fully arrived yet
                self._buf = buf[at:] if len(buf) - at <= _MAX_USAGE else b""
                return
            if isinstance(parsed, dict):
                self._take(parsed)
            at = buf.find(_KEY, end)
        self._buf = buf[_TAIL:]

    @staticmethod
    def _usage(buf: bytes, start: int) -> tuple[Any, int | None]:
        """The value after a ``"usage"`` key ending at ``start``, and the offset just past it; ``(None, None)``
        while it is incomplete."""
        head = _COLON_BRACE.match(buf, start)
        assert head is not None  # every part of the pattern is optional: it matches, if only the empty string
        at = head.end()
        if head.group(1) is None:
            # Not ': {' -- "usage" was a value, or its value is null or not an object -- unless the bytes so far
            # are only the beginning of one.
            return (None, None) if at == len(buf) else (None, at)
        # A usage object holds numbers and objects of numbers only, so its bytes are ASCII and its offsets in the
        # decoded text are its offsets in bytes. Only as much as a usage object may take is decoded; bytes after
        # it may be cut mid-character ("replace" keeps them harmless).
        try:
            value, stop = _scan(buf[at - 1 : at - 1 + _MAX_USAGE].decode("utf-8", "replace"), 0)
        except (StopIteration, ValueError, RecursionError):
            # Not arrived in full yet; or not JSON (or nested past the parser's depth), which the caller stops
            # keeping after _MAX_USAGE bytes.
            return None, None
        return value, at - 1 + stop

    def _take(self, usage: dict[str, Any]) -> None:
        given = count(usage.get("prompt_tokens", usage.get("input_tokens")))
        taken = count(usage.get("completion_tokens", usage.get("output_tokens")))
        if given is None and taken is None:
            return
        self._input = given
        self._output = taken
        # Counts come last: in a chat stream's usage chunk (after every choice), a Responses stream's
        # response.completed (or .incomplete, .failed), a JSON answer's end.
        self.ended = True

    def tokens(self) -> tuple[int | None, int | None]:
        if self._stream:
            # The SDK stops reading at an error event (or the stream ends there): it is in the last chunks, looked
            # at once, when the answer has ended.
            self.failed = self._last.failure() if self._last is not None else None
        return self._input, self._output


READER = OpenAIReader()
