# ruff: noqa: E501  (table rows read best one per line)
"""The OpenAI wire reader: documented hosts, paths and body features -> what the request asks for.

The table covers api.openai.com, Azure OpenAI (deployment paths, ``/openai/...``
and ``/openai/v1/...``), Azure AI Foundry and OpenAI-compatible servers under
other prefixes. The meter is fed the loopback server's real answers, cut into
chunks of every size.
"""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types import completion_create_params, embedding_create_params
from openai.types.chat import completion_create_params as chat_create_params
from openai.types.fine_tuning import (
    dpo_hyperparameters_param,
    dpo_method_param,
    job_create_params,
    reinforcement_method_param,
    supervised_hyperparameters_param,
    supervised_method_param,
)
from openai.types.responses import response_create_params

from privsdk.outbound.judge import protocol_of
from privsdk.outbound.outgoing import Asks, Outgoing, Unreadable
from privsdk.outbound.wire import reader
from privsdk.outbound.wire.meters import LAST_BYTES
from privsdk.outbound.wire.openai import FIELDS, READER, UsageMeter, _chat_features
from tests.wire.openai import OpenAIWire
from tests.wire.server import Recorded

_JSON = {"content-type": "application/json"}


def request(method: str, path: str, body: Any = None, *, host: str = "api.openai.com", query: str = "") -> Outgoing:
    data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    return Outgoing("openai", method, "https", host, None, path, query, _JSON if body is not None else {}, data)


CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
RESP = {"model": "gpt-5", "input": "hi", "store": False}

PATHS: list[tuple[str, str, Any, Asks]] = [
    # api.openai.com
    ("POST", "/v1/chat/completions", CHAT, Asks("chat", model="gpt-4o-mini")),
    ("POST", "/v1/chat/completions", {**CHAT, "stream": True}, Asks("stream", model="gpt-4o-mini")),
    ("POST", "/v1/completions", {"model": "gpt-3.5-turbo-instruct", "prompt": "x"}, Asks("chat", "gpt-3.5-turbo-instruct")),
    ("POST", "/v1/responses", RESP, Asks("chat", model="gpt-5")),
    ("POST", "/v1/responses", {**RESP, "stream": True}, Asks("stream", model="gpt-5")),
    ("GET", "/v1/responses/resp_123", None, Asks("responses_state")),
    ("DELETE", "/v1/responses/resp_123", None, Asks("responses_state")),
    ("GET", "/v1/responses/resp_123/input_items", None, Asks("responses_state")),
    ("POST", "/v1/responses/resp_123/cancel", None, Asks("responses_state")),
    ("POST", "/v1/responses/compact", RESP, Asks("other")),
    ("POST", "/v1/responses/input_tokens", RESP, Asks("other")),
    ("GET", "/v1/chat/completions/chatcmpl_1", None, Asks("responses_state")),
    ("GET", "/v1/chat/completions", None, Asks("responses_state")),
    ("DELETE", "/v1/chat/completions/chatcmpl_1", None, Asks("responses_state")),
    ("POST", "/v1/conversations", {"items": []}, Asks("responses_state")),
    ("GET", "/v1/conversations/conv_1/items", None, Asks("responses_state")),
    ("POST", "/v1/embeddings", {"model": "text-embedding-3-small", "input": "x"}, Asks("embed", "text-embedding-3-small")),
    ("POST", "/v1/files", b"--boundary\r\n...", Asks("files")),
    ("GET", "/v1/files/file-1/content", None, Asks("files")),
    ("POST", "/v1/uploads", {"purpose": "batch"}, Asks("files")),
    ("POST", "/v1/uploads/upload_1/parts", b"--b", Asks("files")),
    ("GET", "/v1/batches/batch_1", None, Asks("batch")),
    ("POST", "/v1/batches/batch_1/cancel", None, Asks("batch")),
    ("POST", "/v1/fine_tuning/jobs", {"model": "gpt-4o-mini", "training_file": "file-1"}, Asks("fine_tune", "gpt-4o-mini")),
    ("POST", "/v1/fine_tuning/JOBS", {"model": "gpt-4o-mini"}, Asks("fine_tune", "gpt-4o-mini")),  # read in any case
    ("GET", "/v1/fine_tuning/jobs", None, Asks("fine_tune")),
    ("GET", "/v1/fine_tuning/jobs/ftjob-1", None, Asks("fine_tune")),
    ("GET", "/v1/fine_tuning/jobs/ftjob-1/events", None, Asks("fine_tune")),
    ("GET", "/v1/fine_tuning/jobs/ftjob-1/checkpoints", None, Asks("fine_tune")),
    ("POST", "/v1/fine_tuning/jobs/ftjob-1/cancel", None, Asks("fine_tune")),
    ("POST", "/v1/fine_tuning/jobs/ftjob-1/pause", None, Asks("fine_tune")),
    ("POST", "/v1/fine_tuning/jobs/ftjob-1/resume", None, Asks("fine_tune")),
    # A checkpoint's permissions share the tuned model with other projects of the organisation: fine_tune, as before.
    ("POST", "/v1/fine_tuning/checkpoints/ft:gpt-4o-mini:acme::ckpt-1/permissions", {"project_ids": ["proj_b"]}, Asks("fine_tune")),
    ("GET", "/v1/fine_tuning/checkpoints/ckpt-1/permissions", None, Asks("fine_tune")),
    ("DELETE", "/v1/fine_tuning/checkpoints/ckpt-1/permissions/perm-1", None, Asks("fine_tune")),
    # Graders run a model or the app's code at OpenAI on what is sent: not fine-tuning, and judged nowhere.
    ("POST", "/v1/fine_tuning/alpha/graders/run", {"grader": {}, "model_sample": "s"}, Asks("other")),
    ("POST", "/v1/fine_tuning/alpha/graders/validate", {"grader": {}}, Asks("other")),
    ("POST", "/v1/assistants", {"model": "gpt-4o"}, Asks("assistants")),
    ("POST", "/v1/threads/thread_1/runs", {"assistant_id": "a"}, Asks("assistants")),
    ("POST", "/v1/vector_stores", {"name": "v"}, Asks("vector_stores")),
    ("POST", "/v1/vector_stores/vs_1/search", {"query": "q"}, Asks("vector_stores")),
    ("POST", "/v1/images/generations", {"model": "gpt-image-1", "prompt": "p"}, Asks("images")),
    ("POST", "/v1/images/edits", b"--b", Asks("images")),
    ("POST", "/v1/audio/speech", {"model": "tts-1", "input": "x", "voice": "alloy"}, Asks("audio")),
    ("POST", "/v1/audio/transcriptions", b"--b", Asks("audio")),
    ("POST", "/v1/moderations", {"input": "x"}, Asks("moderation")),
    ("POST", "/v1/realtime/client_secrets", {}, Asks("realtime")),
    ("GET", "/v1/realtime", None, Asks("realtime")),
    ("POST", "/v1/realtime/calls", b"v=0", Asks("realtime")),
    ("GET", "/v1/models", None, Asks("models")),
    ("GET", "/v1/models/gpt-4o", None, Asks("models")),
    ("DELETE", "/v1/models/ft:gpt-4o:acme", None, Asks("other")),
    ("POST", "/v1/containers", {"name": "c"}, Asks("other")),
    ("POST", "/v1/evals", {"name": "e"}, Asks("other")),
    ("POST", "/v1/videos", {"prompt": "p"}, Asks("other")),
    ("GET", "/v1/organization/usage/completions", None, Asks("other")),
    # Azure OpenAI: deployments, the resource-level /openai/... paths and the v1 API
    ("POST", "/openai/deployments/gpt4o-eu/chat/completions", CHAT, Asks("chat", "gpt-4o-mini", deployment="gpt4o-eu")),
    ("POST", "/openai/deployments/emb/embeddings", {"model": "emb", "input": "x"}, Asks("embed", "emb", deployment="emb")),
    ("POST", "/openai/deployments/whisper/audio/transcriptions", b"--b", Asks("audio", deployment="whisper")),
    ("POST", "/openai/files", b"--b", Asks("files")),
    ("POST", "/openai/assistants", {"model": "m"}, Asks("assistants")),
    # Azure's fine-tuning: the body's model is the base model tuned, never a deployment
    ("POST", "/openai/fine_tuning/jobs", {"model": "gpt-4o-mini-2024-07-18", "training_file": "file-1"}, Asks("fine_tune", "gpt-4o-mini-2024-07-18")),
    ("POST", "/openai/v1/fine_tuning/jobs", {"model": "gpt-4.1-mini", "training_file": "file-1"}, Asks("fine_tune", "gpt-4.1-mini")),
    ("GET", "/openai/fine_tuning/jobs/ftjob-1", None, Asks("fine_tune")),
    ("POST", "/openai/v1/responses", RESP, Asks("chat", model="gpt-5", deployment="gpt-5")),  # Azure v1: deployed by name
    ("GET", "/openai/v1/models", None, Asks("models")),
    ("POST", "/eu/openai/deployments/d1/chat/completions", CHAT, Asks("chat", model="gpt-4o-mini", deployment="d1")),
    # Azure's Responses outside the v1 API, and an AI Foundry project's v1 API: the body's model is a deployment
    ("POST", "/openai/responses", RESP, Asks("chat", model="gpt-5", deployment="gpt-5")),
    ("POST", "/api/projects/p1/openai/v1/responses", RESP, Asks("chat", model="gpt-5", deployment="gpt-5")),
    # Azure AI model inference and OpenAI-compatible servers under other prefixes
    ("POST", "/models/chat/completions", CHAT, Asks("chat", model="gpt-4o-mini")),
    ("POST", "/chat/completions", CHAT, Asks("chat", model="gpt-4o-mini")),
    ("POST", "/api/v1/chat/completions", CHAT, Asks("chat", model="gpt-4o-mini")),
    ("POST", "/serving-endpoints/chat/completions", CHAT, Asks("chat", model="gpt-4o-mini")),
    ("GET", "/v1/models/", None, Asks("models")),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "asks"), PATHS, ids=[f"{m} {p}" for m, p, _, _ in PATHS])
def test_paths(method: str, path: str, body: Any, asks: Asks) -> None:
    assert READER.read(request(method, path, body)) == asks


def test_azure_query_and_hosts_do_not_change_the_route() -> None:
    out = request(
        "POST",
        "/openai/deployments/d/chat/completions",
        {**CHAT, "stream": True},
        host="acme.openai.azure.com",
        query="api-version=2024-10-21",
    )
    assert READER.read(out) == Asks("stream", model="gpt-4o-mini", deployment="d")
    # A gateway's key in the query (Azure API Management's subscription-key) is no field of the request either.
    keyed = out._replace(query="api-version=2024-10-21&subscription-key=k")
    assert READER.read(keyed) == Asks("stream", model="gpt-4o-mini", deployment="d")


def test_the_registry_serves_this_reader_for_openai_offerings() -> None:
    assert reader("openai") is READER


FEATURES: list[tuple[str, dict[str, Any], frozenset[str]]] = [
    ("plain chat", {}, frozenset()),
    ("store true", {"store": True}, frozenset({"stored_responses"})),
    ("store false", {"store": False}, frozenset()),
    ("web search options", {"web_search_options": {}}, frozenset({"web_search"})),
    (
        "an audio input part",
        {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}]}]},
        frozenset({"file_inputs"}),
    ),
    ("Azure On Your Data", {"data_sources": [{"type": "azure_search", "parameters": {}}]}, frozenset({"file_search"})),
    ("audio param", {"audio": {"voice": "alloy", "format": "wav"}}, frozenset({"audio_output"})),
    ("audio modality", {"modalities": ["text", "audio"]}, frozenset({"audio_output"})),
    ("text modality", {"modalities": ["text"]}, frozenset()),
    ("extended cache", {"prompt_cache_retention": "24h"}, frozenset({"prompt_caching"})),
    ("in-memory cache", {"prompt_cache_retention": "in_memory"}, frozenset()),
    ("cache key only", {"prompt_cache_key": "k"}, frozenset()),
    ("cache ttl 12h", {"prompt_cache_options": {"ttl": "12h"}}, frozenset({"prompt_caching"})),
    ("background", {"background": True}, frozenset({"background"})),
    ("function tool", {"tools": [{"type": "function", "function": {"name": "f"}}]}, frozenset()),
    (
        "image part",
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:"}}]}]},
        frozenset({"file_inputs"}),
    ),
    (
        "file part",
        {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]},
        frozenset({"file_inputs"}),
    ),
    (
        "cache breakpoint 12h",
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "prompt_cache_breakpoint": {"mode": "explicit", "ttl": "12h"}}]}]},
        frozenset({"prompt_caching"}),
    ),
]  # fmt: skip


@pytest.mark.parametrize(("name", "extra", "features"), FEATURES, ids=[f[0] for f in FEATURES])
def test_chat_features(name: str, extra: dict[str, Any], features: frozenset[str]) -> None:
    assert READER.read(request("POST", "/v1/chat/completions", {**CHAT, **extra})).features == features


@pytest.mark.parametrize(
    "text",
    [
        b'{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}',
        b'{ "model" : "m" , "messages" : [ { "role" : "user" , "content" :\n\t[ { "type" : "input_file" } ] } ] }',
        b'{"messages":[{"role":"user","content":[{"type":"file"}]}],"model":"m"}',
    ],
)
def test_content_parts_are_found_however_the_json_is_spaced(text: bytes) -> None:
    """A chat body without feature fields is walked only when it holds a second "[": however the JSON is spaced,
    a list of content parts opens with one, so a part that brings a file is never skipped."""
    assert READER.read(request("POST", "/v1/chat/completions", text)).features == frozenset({"file_inputs"})


@pytest.mark.parametrize("content", ["see [1] and [2]", "a ] b [ c", '\\"[{\\"type\\": \\"image_url\\"}]'])
def test_brackets_in_text_bring_no_feature(content: str) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]}
    assert READER.read(request("POST", "/v1/chat/completions", body)).features == frozenset()


_TEXT = st.text(alphabet='ab [](){}"\\:,\n\u00e9', max_size=12)
_PART = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": _TEXT}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": _TEXT})}),
    st.fixed_dictionaries({"type": st.just("file"), "file": st.fixed_dictionaries({"file_id": _TEXT})}),
    st.fixed_dictionaries(
        {
            "type": st.just("text"),
            "text": _TEXT,
            "prompt_cache_breakpoint": st.fixed_dictionaries({"ttl": st.sampled_from(["5m", "12h"])}),
        }
    ),
)
_MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"]), "content": st.one_of(_TEXT, st.lists(_PART, max_size=3))}
)
_TOP = st.fixed_dictionaries(
    {},
    optional={
        "store": st.booleans(),
        "stream": st.booleans(),
        "temperature": st.floats(0, 2),
        "stop": st.lists(_TEXT, max_size=2),
        "modalities": st.lists(st.sampled_from(["text", "audio"]), max_size=2),
        "tools": st.lists(
            st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries({"name": _TEXT})}),
            max_size=2,
        ),
    },
)


@given(messages=st.lists(_MESSAGE, min_size=1, max_size=4), top=_TOP, spacing=st.sampled_from([None, 0, 2]))
@settings(max_examples=300, deadline=None)
def test_the_plain_chat_shortcut_never_hides_a_feature(
    messages: list[Any], top: dict[str, Any], spacing: int | None
) -> None:
    """However a chat body is written (spacing, brackets and quotes in its text, parts or none), skipping the walk of
    a plain body gives the features the full walk gives."""
    body = {"model": "gpt-4o-mini", "messages": messages, **top}
    data = json.dumps(body, indent=spacing, ensure_ascii=spacing is None).encode()
    assert READER.read(request("POST", "/v1/chat/completions", data)).features == _chat_features(body)


RESPONSES_FEATURES: list[tuple[str, dict[str, Any], frozenset[str] | None]] = [
    ("store false", {}, frozenset()),
    ("store missing: stored by default", {"store": None}, frozenset({"stored_responses"})),
    ("store true", {"store": True}, frozenset({"stored_responses"})),
    ("previous response", {"previous_response_id": "resp_1"}, frozenset({"stored_responses"})),
    ("conversation", {"conversation": "conv_1"}, frozenset({"stored_responses"})),
    ("background", {"background": True}, frozenset({"background"})),
    ("extended cache", {"prompt_cache_retention": "24h"}, frozenset({"prompt_caching"})),
    ("web_search", {"tools": [{"type": "web_search"}]}, frozenset({"web_search"})),
    ("web_search_preview", {"tools": [{"type": "web_search_preview"}]}, frozenset({"web_search"})),
    ("web_search dated", {"tools": [{"type": "web_search_2025_08_26"}]}, frozenset({"web_search"})),
    ("file_search", {"tools": [{"type": "file_search", "vector_store_ids": ["vs"]}]}, frozenset({"file_search"})),
    ("code_interpreter", {"tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}, frozenset({"hosted_tools"})),
    ("computer_use_preview", {"tools": [{"type": "computer_use_preview"}]}, frozenset({"hosted_tools"})),
    ("mcp", {"tools": [{"type": "mcp", "server_label": "s"}]}, frozenset({"hosted_tools"})),
    ("image_generation", {"tools": [{"type": "image_generation"}]}, frozenset({"hosted_tools", "image_output"})),
    ("hosted shell", {"tools": [{"type": "shell", "environment": {"type": "container_auto"}}]}, frozenset({"hosted_tools"})),
    ("shell, no environment", {"tools": [{"type": "shell"}]}, frozenset({"hosted_tools"})),
    ("local shell", {"tools": [{"type": "shell", "environment": {"type": "local"}}]}, frozenset()),
    ("local_shell", {"tools": [{"type": "local_shell"}]}, frozenset()),
    ("server tool search", {"tools": [{"type": "tool_search"}]}, frozenset({"hosted_tools"})),
    ("client tool search", {"tools": [{"type": "tool_search", "execution": "client"}]}, frozenset()),
    ("function + custom", {"tools": [{"type": "function", "name": "f"}, {"type": "custom", "name": "c"}]}, frozenset()),
    ("a namespace of functions", {"tools": [{"type": "namespace", "name": "crm", "tools": [{"type": "function", "name": "f"}]}]}, frozenset()),
    ("a hosted tool in a namespace", {"tools": [{"type": "namespace", "name": "n", "tools": [{"type": "web_search"}]}]}, frozenset({"web_search"})),
    ("instructions as items, a file in them", {"instructions": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, frozenset({"file_inputs"})),
    ("compaction", {"context_management": [{"type": "compaction", "compact_threshold": 1000}]}, frozenset()),
    ("context management of another kind", {"context_management": [{"type": "summarise_and_keep"}]}, None),
    ("context management not a list", {"context_management": {"type": "compaction"}}, None),
    (
        "input image and file",
        {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:"}, {"type": "input_file", "file_id": "f"}]}]},
        frozenset({"file_inputs"}),
    ),
    ("text input", {"input": [{"role": "user", "content": [{"type": "input_text", "text": "x"}]}]}, frozenset()),
    (
        "hosted tools in an additional_tools item",
        {"input": [{"type": "additional_tools", "tools": [{"type": "web_search"}, {"type": "code_interpreter", "container": {"type": "auto"}}]}]},
        frozenset({"web_search", "hosted_tools"}),
    ),
    (
        "extended cache in a tool call's output",
        {"input": [{"type": "function_call_output", "call_id": "c", "output": [{"type": "input_text", "text": "x", "prompt_cache_breakpoint": {"ttl": "12h"}}]}]},
        frozenset({"prompt_caching"}),
    ),
    (
        "a file in a tool call's output",
        {"input": [{"type": "function_call_output", "call_id": "c", "output": [{"type": "input_file", "file_id": "f"}]}]},
        frozenset({"file_inputs"}),
    ),
    (
        "a computer call's screenshot",
        {"input": [{"type": "computer_call_output", "call_id": "c", "output": {"type": "computer_screenshot", "image_url": "data:"}}]},
        frozenset({"file_inputs"}),
    ),
    ("a text tool output", {"input": [{"type": "function_call_output", "call_id": "c", "output": "42"}]}, frozenset()),
    ("a stored item", {"input": [{"type": "item_reference", "id": "msg_1"}]}, frozenset({"stored_responses"})),
    ("an unknown tool in an item", {"input": [{"type": "additional_tools", "tools": [{"type": "teleport"}]}]}, None),
    (
        "a stored prompt: every hosted tool it may set",
        {"prompt": {"id": "pmpt_1", "version": "2"}},
        frozenset({"web_search", "file_search", "hosted_tools", "image_output"}),
    ),
    (
        "a stored prompt's file variable",
        {"prompt": {"id": "pmpt_1", "variables": {"doc": {"type": "input_file", "file_id": "f"}, "name": "x"}}},
        frozenset({"web_search", "file_search", "hosted_tools", "image_output", "file_inputs"}),
    ),
    ("a stored prompt and no model", {"model": None, "prompt": {"id": "pmpt_1"}}, None),
    (
        "an Azure AI Foundry agent: every hosted tool it may run",
        {"agent": {"type": "agent_reference", "name": "helper"}},
        frozenset({"web_search", "file_search", "hosted_tools", "image_output"}),
    ),
    ("an agent and no model", {"model": None, "agent": {"type": "agent_reference", "name": "helper"}}, None),
    ("a background window", {"background_options": {"completion_window": "8h"}}, frozenset({"background"})),
    ("a background continuation id", {"background_options": {"continuation_id": "c1"}}, frozenset({"background"})),
    ("a known service tier", {"service_tier": "flex"}, frozenset()),
    ("a service tier privsdk does not know", {"service_tier": "deferred"}, None),
    ("server-side compaction, not stored", {"context_management": [{"type": "compaction"}]}, frozenset()),
]  # fmt: skip


@pytest.mark.parametrize(("name", "extra", "features"), RESPONSES_FEATURES, ids=[f[0] for f in RESPONSES_FEATURES])
def test_responses_features(name: str, extra: dict[str, Any], features: frozenset[str] | None) -> None:
    body = {k: v for k, v in {**RESP, **extra}.items() if v is not None}
    if features is None:  # unreadable: the guard refuses it
        with pytest.raises(Unreadable):
            READER.read(request("POST", "/v1/responses", body))
        return
    assert READER.read(request("POST", "/v1/responses", body)).features == features


def test_features_ride_along_with_a_stream() -> None:
    body = {**CHAT, "stream": True, "store": True, "web_search_options": {}}
    assert READER.read(request("POST", "/v1/chat/completions", body)) == Asks(
        "stream", model="gpt-4o-mini", features=frozenset({"stored_responses", "web_search"})
    )


# -- the fields a body may hold -------------------------------------------------------------------------------------

CANARY = "CANARY7fq2"  # a value no refusal may repeat


def _sdk_fields(*params: Any) -> frozenset[str]:
    """Every field of the openai SDK's request types ``params`` (TypedDicts: their keys hold their bases')."""
    return frozenset(k for p in params for k in p.__required_keys__ | p.__optional_keys__)


#: Each body the reader reads: (path, a body it reads, the fields the installed openai SDK sends in it).
BODIES: dict[str, tuple[str, dict[str, Any], frozenset[str]]] = {
    "chat/completions": (
        "/v1/chat/completions",
        CHAT,
        _sdk_fields(
            chat_create_params.CompletionCreateParamsNonStreaming, chat_create_params.CompletionCreateParamsStreaming
        ),
    ),
    "completions": (
        "/v1/completions",
        {"model": "gpt-3.5-turbo-instruct", "prompt": "x"},
        _sdk_fields(
            completion_create_params.CompletionCreateParamsNonStreaming,
            completion_create_params.CompletionCreateParamsStreaming,
        ),
    ),
    "responses": (
        "/v1/responses",
        RESP,
        _sdk_fields(
            response_create_params.ResponseCreateParamsNonStreaming,
            response_create_params.ResponseCreateParamsStreaming,
        ),
    ),
    "embeddings": (
        "/v1/embeddings",
        {"model": "text-embedding-3-small", "input": "x"},
        _sdk_fields(embedding_create_params.EmbeddingCreateParams),
    ),
    "fine_tuning/jobs": (
        "/v1/fine_tuning/jobs",
        {"model": "gpt-4o-mini", "training_file": "file-1"},
        _sdk_fields(job_create_params.JobCreateParams),
    ),
}
_MODERATION = "runs a moderation model over input and output: the moderation operation, what it keeps not stated"
#: The SDK's fields privsdk refuses, each with why. Every other field of an SDK body is read or only shapes the answer.
REFUSED_BY_DESIGN: dict[str, dict[str, str]] = {
    "chat/completions": {"moderation": _MODERATION},
    "responses": {
        "moderation": _MODERATION,
        "access_programs": "asks for OpenAI's Daybreak cyber-security programs, whose terms no source states",
    },
}
FIELD_CASES = [(name, field) for name, (_, _, fields) in BODIES.items() for field in sorted(fields)]


def test_the_table_holds_the_sdks_fields() -> None:
    """The SDK's request types are found, with the fields the SDK adds (``stream``), and each field refused by design
    is one the SDK sends."""
    assert {"messages", "stream", "store", "moderation"} <= BODIES["chat/completions"][2]
    assert {"input", "stream", "background_options"} <= BODIES["responses"][2]
    assert {"model", "training_file", "integrations", "method", "hyperparameters"} <= BODIES["fine_tuning/jobs"][2]
    assert BODIES.keys() == FIELDS.keys()
    for body, refused in REFUSED_BY_DESIGN.items():
        assert refused.keys() <= BODIES[body][2], body


@pytest.mark.parametrize(("body", "field"), FIELD_CASES, ids=[f"{b}.{f}" for b, f in FIELD_CASES])
def test_every_field_the_sdk_sends_is_read_or_refused_by_design(body: str, field: str) -> None:
    """A field of a new openai release fails here until it is judged: put on its body's allow-list in
    privsdk/outbound/wire/openai.py (read, or known to only shape the answer), or refused with why in
    REFUSED_BY_DESIGN."""
    path, base, _ = BODIES[body]
    out = request("POST", path, {field: None, **base})
    if field in REFUSED_BY_DESIGN.get(body, {}):
        with pytest.raises(Unreadable, match=f"does not read in an OpenAI {body} request: {field} "):
            READER.read(out)
    else:
        assert READER.read(out).model == base["model"]


def _literals(hint: Any) -> set[str]:
    """The strings a type names (``Optional[Literal["auto", ...]]`` -> ``{"auto", ...}``)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Literal:
        return {a for a in args if isinstance(a, str)}
    return {value for arg in args for value in _literals(arg)}


@pytest.mark.parametrize(
    ("body", "params"),
    [
        ("chat/completions", chat_create_params.CompletionCreateParamsBase),
        ("responses", response_create_params.ResponseCreateParamsBase),
    ],
)
def test_every_service_tier_the_sdk_names_is_read_and_another_refused(body: str, params: Any) -> None:
    """A service tier sets price and latency; one a new SDK names fails here until it is judged (``_TIERS``)."""
    tiers = _literals(typing.get_type_hints(params)["service_tier"])
    path, base, _ = BODIES[body]
    assert "flex" in tiers
    for tier in tiers:
        assert READER.read(request("POST", path, {**base, "service_tier": tier})).features == frozenset()
    for other in ("deferred", {"tier": CANARY}):
        with pytest.raises(Unreadable, match="service tier") as caught:
            READER.read(request("POST", path, {**base, "service_tier": other}))
        assert CANARY not in str(caught.value)


#: Fields the openai SDK does not send in a body, each refused there: another family's, an Azure extension not
#: read, a literal extra_body key (the SDK merges extra_body into the body), and one no API has.
NOT_SENT = [
    ("chat/completions", "zz_new_field"),
    ("chat/completions", "enhancements"),  # Azure: images read by Azure AI Vision, another service
    ("chat/completions", "previous_response_id"),
    ("chat/completions", "conversation"),
    ("chat/completions", "background_options"),
    ("chat/completions", "extra_body"),
    ("completions", "zz_new_field"),
    ("completions", "tools"),
    ("completions", "store"),
    ("responses", "zz_new_field"),
    ("responses", "messages"),
    ("embeddings", "zz_new_field"),
    ("embeddings", "stream"),
    ("fine_tuning/jobs", "zz_new_field"),
    ("fine_tuning/jobs", "extra_body"),
    ("fine_tuning/jobs", "training_files"),  # Mistral's spelling
    ("fine_tuning/jobs", "stream"),
]


@pytest.mark.parametrize(("body", "field"), NOT_SENT, ids=[f"{b}.{f}" for b, f in NOT_SENT])
def test_a_field_the_reader_does_not_read_is_refused_by_name_never_by_value(body: str, field: str) -> None:
    path, base, _ = BODIES[body]
    with pytest.raises(Unreadable) as caught:
        READER.read(request("POST", path, {**base, field: {"x": CANARY}}))
    message = str(caught.value)
    assert f"does not read in an OpenAI {body} request: {field} (" in message and CANARY not in message


@pytest.mark.parametrize(
    "path", ["/openai/deployments/d1/chat/completions", "/openai/v1/chat/completions", "/models/chat/completions"]
)
def test_an_azure_route_holds_the_same_fields(path: str) -> None:
    """Azure's own fields that the reader reads (On Your Data) or that keep nothing (the end user's security
    context, for the tenant's Defender for Cloud) pass; a field privsdk does not read is refused on every route."""
    context = {"application_name": "clinic", "end_user_id": "u1", "source_ip": "10.0.0.1"}
    body = {**CHAT, "user_security_context": context, "data_sources": [{"type": "azure_search", "parameters": {}}]}
    assert READER.read(request("POST", path, body, host="acme.openai.azure.com")).features == {"file_search"}
    with pytest.raises(Unreadable, match="request: enhancements"):
        READER.read(request("POST", path, {**CHAT, "enhancements": {"ocr": {"enabled": True}}}))


def test_a_field_named_by_a_value_is_not_shown() -> None:
    """A key an app made of its own text (through extra_body) is no schema word: the refusal does not repeat it."""
    with pytest.raises(Unreadable) as caught:
        READER.read(request("POST", "/v1/chat/completions", {**CHAT, f"{CANARY}-0042": 1}))
    assert "<segment>" in str(caught.value) and CANARY not in str(caught.value)


def test_a_self_hosted_server_takes_fields_of_its_own_and_its_features_are_still_read() -> None:
    """vLLM, Ollama and llama.cpp take fields OpenAI does not (top_k, guided_json, ...): at a self-hosted server,
    the tenant's own, they pass; a feature is still read. The same body to OpenAI's protocol is refused."""
    own = {"top_k": 40, "repetition_penalty": 1.1, "guided_json": {"type": "object"}, "chat_template_kwargs": {}}
    body = {**CHAT, **own, "store": True}
    selfhosted = reader(protocol_of(("selfhosted.vllm",), "openai"))
    out = request("POST", "/v1/chat/completions", body, host="vllm.internal")
    assert selfhosted is not READER
    assert selfhosted.read(out) == Asks("chat", "gpt-4o-mini", frozenset({"stored_responses"}))
    # A proxy declared as OpenAI's API, whatever serves behind it, is read as OpenAI's.
    assert reader(protocol_of(("openai.api",), "openai")) is READER
    with pytest.raises(Unreadable, match="request: chat_template_kwargs"):
        READER.read(out)


SECRET = "patient Jane Roe, MRN 0042"


@pytest.mark.parametrize(
    ("method", "path", "body", "says"),
    [
        ("POST", "/v1/telepathy", {"x": SECRET}, "unknown path shape /v1/telepathy for"),
        # The path as sent (Cohere's /v2/chat to an Azure host said "/v1/chat/..."), its ids not shown.
        ("POST", "/v2/chat", CHAT, "unknown path shape /v2/chat for the OpenAI protocol"),
        ("GET", "/v1/chat/chatcmpl-0042/x", None, "unknown path shape /v1/chat/<segment>/x for"),
        ("GET", "/", None, "unknown path shape"),
        ("POST", "/v1/chat/summaries", CHAT, "unknown path shape /v1/chat/"),
        ("POST", "/v1/chat/completions", SECRET.encode(), "not a JSON object"),
        ("POST", "/v1/responses", [SECRET], "not a JSON object"),
        ("POST", "/v1/chat/completions", {**CHAT, "tools": [{"type": "telepathy", "x": SECRET}]}, "type"),
        ("POST", "/v1/responses", {**RESP, "tools": {"type": "web_search"}}, "tools is not a list"),
        ("POST", "/v1/chat/completions", {**CHAT, "service_tier": SECRET}, "a service tier privsdk does not read"),
        ("GET", "/v1/completions", None, "unknown path shape /v1/completions for"),
        # Query parameters beside a body that no SDK sends there (extra_query): none the guard reads.
        ("POST", "/v1/chat/completions?store=true", CHAT, "carries query parameters"),
        # A batch's requests are in a file the guard cannot read: judged as "batch", every one went out unjudged.
        ("POST", "/v1/batches", {"input_file_id": "file-1", "endpoint": "/v1/responses"}, "an OpenAI batch runs"),
        ("POST", "/openai/batches", {"input_file_id": SECRET, "endpoint": "/chat/completions"}, "an OpenAI batch"),
    ],
)
def test_unreadable_requests_are_named_without_their_content(method: str, path: str, body: Any, says: str) -> None:
    path, _, query = path.partition("?")
    with pytest.raises(Unreadable) as caught:
        READER.read(request(method, path, body, query=query))
    assert says in str(caught.value)
    assert "Jane" not in str(caught.value) and "telepathy" not in str(caught.value).replace("/v1/telepathy ", "")


# -- fine-tuning jobs -----------------------------------------------------------------------------------------------

JOB = {"model": "gpt-4o-mini", "training_file": "file-1"}
#: Each fine-tuning method the reader reads -> the openai SDK's types of its settings and of their hyperparameters.
METHODS = {
    "supervised": (
        supervised_method_param.SupervisedMethodParam,
        supervised_hyperparameters_param.SupervisedHyperparametersParam,
    ),
    "dpo": (dpo_method_param.DpoMethodParam, dpo_hyperparameters_param.DpoHyperparametersParam),
}
#: The SDK's fine-tuning methods privsdk refuses, with why.
METHODS_REFUSED = {
    "reinforcement": "its grader runs a model, or the app's code, at OpenAI on the tuned model's answers",
}


def _job(**fields: Any) -> Outgoing:
    return request("POST", "/v1/fine_tuning/jobs", {**JOB, **fields})


def test_every_method_and_hyperparameter_the_sdk_sends_is_read_or_refused_by_design() -> None:
    """A method or hyperparameter of a new openai release fails here until it is judged: put on its list in
    privsdk/outbound/wire/openai.py (_METHOD_HYPERPARAMETERS), or refused with why in METHODS_REFUSED."""
    kinds = _literals(typing.get_type_hints(job_create_params.Method)["type"])
    assert kinds == METHODS.keys() | METHODS_REFUSED.keys()
    assert _sdk_fields(job_create_params.Method) == {"type"} | kinds
    for kind, (own, hyperparameters) in METHODS.items():
        assert _sdk_fields(own) == {"hyperparameters"}
        values = dict.fromkeys(_sdk_fields(hyperparameters), "auto")
        method = {"type": kind, kind: {"hyperparameters": values}}
        assert READER.read(_job(method=method)) == Asks("fine_tune", "gpt-4o-mini")
    deprecated = dict.fromkeys(_sdk_fields(job_create_params.Hyperparameters), 1)
    assert READER.read(_job(hyperparameters=deprecated)) == Asks("fine_tune", "gpt-4o-mini")
    assert "grader" in _sdk_fields(reinforcement_method_param.ReinforcementMethodParam)
    grader = {
        "type": "string_check",
        "name": "n",
        "input": "{{sample.output_text}}",
        "reference": "r",
        "operation": "eq",
    }
    for kind in METHODS_REFUSED:
        with pytest.raises(Unreadable, match="a reinforcement fine-tuning job"):
            READER.read(_job(method={"type": kind, kind: {"grader": grader}}))


FINE_TUNE_READ: list[tuple[str, dict[str, Any]]] = [
    ("the SDK's integrations=None", {"integrations": None}),
    ("a supervised method", {"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": "auto"}}}}),
    ("a dpo method, its beta", {"method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.1, "batch_size": 8}}}}),
    ("a method without settings", {"method": {"type": "dpo"}}),
    ("labels, a suffix, a seed, a validation file", {"metadata": {"team": "a"}, "suffix": "s", "seed": 7, "validation_file": "file-2"}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "fields"), FINE_TUNE_READ, ids=[c[0] for c in FINE_TUNE_READ])
def test_a_fine_tuning_job_is_fine_tune_for_the_model_it_tunes(name: str, fields: dict[str, Any]) -> None:
    assert READER.read(_job(**fields)) == Asks("fine_tune", "gpt-4o-mini")
    azure = request("POST", "/openai/v1/fine_tuning/jobs", {**JOB, **fields}, host="acme.openai.azure.com")
    assert READER.read(azure) == Asks("fine_tune", "gpt-4o-mini")


_PYTHON_GRADER = {"type": "python", "name": "n", "source": CANARY}
FINE_TUNE_REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("a W&B integration", {"integrations": [{"type": "wandb", "wandb": {"project": CANARY, "entity": CANARY}}]}, "with integrations"),
    ("integrations of any other value", {"integrations": []}, "with integrations"),
    ("a reinforcement method", {"method": {"type": "reinforcement", "reinforcement": {"grader": _PYTHON_GRADER}}}, "a reinforcement fine-tuning job"),
    ("a grader beside another method", {"method": {"type": "supervised", "reinforcement": {"grader": _PYTHON_GRADER}}}, "method: reinforcement ("),
    ("a method of a type not read", {"method": {"type": CANARY}}, "method of a type privsdk does not read"),
    ("a method of no type", {"method": {"supervised": {}}}, "method of a type privsdk does not read"),
    ("a method that is not an object", {"method": "supervised"}, "method is not an object"),
    ("settings that are not an object", {"method": {"type": "dpo", "dpo": [CANARY]}}, "dpo method is not an object"),
    ("an unknown field of a method's settings", {"method": {"type": "dpo", "dpo": {"zz_new": CANARY}}}, "dpo method: zz_new ("),
    ("another method's hyperparameter", {"method": {"type": "supervised", "supervised": {"hyperparameters": {"beta": 1}}}}, "supervised hyperparameters: beta ("),
    ("an unknown hyperparameter", {"hyperparameters": {"n_epochs": 1, "zz_new": CANARY}}, "job's hyperparameters: zz_new ("),
    ("a hyperparameter holding an object", {"hyperparameters": {"n_epochs": {"x": CANARY}}}, "neither a number nor a name"),
    ("hyperparameters that are not an object", {"hyperparameters": CANARY}, "hyperparameters is not an object"),
    ("no model", {"model": None}, "names no model"),
    ("a model that is not a name", {"model": [CANARY]}, "is not a string"),
    ("a field no SDK sends", {"zz_new_field": CANARY}, "fine_tuning/jobs request: zz_new_field ("),
]  # fmt: skip


@pytest.mark.parametrize(("name", "fields", "says"), FINE_TUNE_REFUSED, ids=[c[0] for c in FINE_TUNE_REFUSED])
def test_a_fine_tuning_job_with_what_privsdk_does_not_judge_is_refused_by_name_never_by_value(
    name: str, fields: dict[str, Any], says: str
) -> None:
    """Its body was not read: a W&B integration (OpenAI reporting the run to a third party), a grader run at
    OpenAI, any field, was sent, and the model tuned was never judged. Now each is refused, on OpenAI's API and on
    Azure OpenAI's."""
    for path in ("/v1/fine_tuning/jobs", "/openai/fine_tuning/jobs", "/openai/v1/fine_tuning/jobs"):
        with pytest.raises(Unreadable) as caught:
            READER.read(request("POST", path, {**JOB, **fields}))
        assert says in str(caught.value) and CANARY not in str(caught.value)


# --- the meter -----------------------------------------------------------------------------------------------------


def answer(app: OpenAIWire, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """The loopback server's answer to ``body`` at ``path``: status, headers, body bytes."""
    recorded = Recorded("POST", path, {}, {"authorization": f"Bearer {app.key}", **_JSON}, json.dumps(body).encode())
    reply = app(recorded)
    data = b"".join(reply.chunks) if reply.chunks is not None else reply.body
    return reply.status, {k.lower(): v for k, v in reply.headers.items()}, data


ANSWERS: list[tuple[str, str, dict[str, Any], tuple[int | None, int | None]]] = [
    ("chat", "/v1/chat/completions", CHAT, (11, 7)),
    ("chat stream with usage", "/v1/chat/completions", {**CHAT, "stream": True, "stream_options": {"include_usage": True}}, (11, 7)),
    ("chat stream without usage", "/v1/chat/completions", {**CHAT, "stream": True}, (None, None)),
    ("responses", "/v1/responses", RESP, (11, 7)),
    ("responses stream", "/v1/responses", {**RESP, "stream": True}, (11, 7)),
    ("embeddings", "/v1/embeddings", {"model": "text-embedding-3-small", "input": ["a", "b"]}, (11, None)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "path", "body", "tokens"), ANSWERS, ids=[a[0] for a in ANSWERS])
@pytest.mark.parametrize("size", [1, 3, 7, 64, 1 << 20])
def test_the_meter_reads_tokens_from_every_answer_in_chunks_of_any_size(
    name: str, path: str, body: dict[str, Any], tokens: tuple[int | None, int | None], size: int
) -> None:
    app = OpenAIWire()
    status, headers, data = answer(app, path, body)
    meter = READER.meter(request("POST", path, body), READER.read(request("POST", path, body)), status, headers)
    assert meter is not None
    for i in range(0, len(data), size):
        meter.feed(data[i : i + size])
    assert meter.tokens() == tokens


@pytest.mark.parametrize("null", [b'"usage":null', b'"usage" : null', b'"usage":\n  null'])
@pytest.mark.parametrize("size", [1, 5, 8, 64])
def test_a_null_usage_in_every_chunk_counts_nothing_however_it_is_spelled(null: bytes, size: int) -> None:
    """Under ``include_usage`` every chunk of a stream but its last has a null usage: compact (OpenAI's own,
    passed over at once) or spaced (any other server), split anywhere, it holds no counts and hides none."""
    chunk = b'data: {"choices":[{"delta":{"content":"hi"}}],' + null + b"}\n\n"
    last = b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9}}\n\n'
    data = chunk * 20 + last + b"data: [DONE]\n\n"
    meter = UsageMeter()
    for i in range(0, len(data), size):
        meter.feed(data[i : i + size])
        if i + size < len(data) - len(last) - 15:
            assert meter.tokens() == (None, None)
    assert meter.tokens() == (5, 9)


def test_the_meter_keeps_no_content() -> None:
    """Only the bytes of a usage object in arrival are parsed, never the text around it; a stream's last 16 KiB
    are kept as its chunks (for an error event it may end with), in memory only, and no more of it."""
    app = OpenAIWire()
    app.text, app.pieces = SECRET * 2000, 400
    _, _, data = answer(
        app, "/v1/chat/completions", {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    )
    meter = UsageMeter(stream=True)
    for i in range(0, len(data), 13):
        meter.feed(data[i : i + 13])
        assert SECRET.encode()[:8] not in meter._buf and len(meter._buf) < 200
    assert len(data) > 2 * LAST_BYTES
    assert meter._last is not None and LAST_BYTES <= meter._last.size < LAST_BYTES + 13
    assert meter.tokens() == (11, 7)


def test_a_usage_lookalike_inside_content_is_not_counted() -> None:
    """Inside a JSON string the quotes of "usage" are escaped, so content cannot fake a count."""
    body = json.dumps({"choices": [{"text": '"usage": {"prompt_tokens": 999}'}], "usage": {"prompt_tokens": 3}})
    meter = UsageMeter()
    meter.feed(body.encode())
    assert meter.tokens() == (3, None)


def test_no_meter_for_errors_or_binary_answers() -> None:
    out = request("POST", "/v1/chat/completions", CHAT)
    asks = READER.read(out)
    assert READER.meter(out, asks, 429, {"content-type": "application/json"}) is None
    speech = request("POST", "/v1/audio/speech", {"model": "tts-1", "input": "hi", "voice": "alloy"})
    assert READER.meter(speech, READER.read(speech), 200, {"content-type": "audio/mpeg"}) is None
    assert READER.meter(speech, READER.read(speech), 200, {"content-type": "application/json"}) is not None


def test_a_chat_answer_is_metered_whatever_its_content_type_says() -> None:
    """Chat, streams and embeddings answer in JSON or events: their meter does not read the content type, and one
    fed bytes that hold no usage object counts nothing."""
    out = request("POST", "/v1/chat/completions", CHAT)
    meter = READER.meter(out, READER.read(out), 200, {"content-type": "audio/mpeg"})
    assert meter is not None
    meter.feed(bytes(range(256)) * 4)
    assert meter.tokens() == (None, None)


# -- counts a vendor (or a proxy) got wrong: never an exception, never an absurd count --------------------------


@pytest.mark.parametrize(
    "raw",
    [b"1e999", b"-1e999", b"Infinity", b"NaN", b"100000000000000000000", b"1000000000001", b"-3", b"true", b'"12"'],
)
@pytest.mark.parametrize("size", [1, 7, 1 << 20])
def test_a_count_that_is_no_count_is_none_and_never_raises(raw: bytes, size: int) -> None:
    """true is no count (a bool is an int to Python), 1e999 and Infinity parse as inf, a count past MAX_COUNT is
    absurd: each is None, and the meter raises nothing into the app's call."""
    chat = b'{"id":"c","choices":[],"usage":{"prompt_tokens":%s,"completion_tokens":%s}}' % (raw, raw)
    stream = b'data: {"choices":[],"usage":{"input_tokens":%s,"output_tokens":2}}\n\ndata: [DONE]\n\n' % raw
    for data, tokens in ((chat, (None, None)), (stream, (None, 2))):
        meter = UsageMeter()
        for i in range(0, len(data), size):
            meter.feed(data[i : i + size])
        assert meter.tokens() == tokens


def test_counts_up_to_the_ceiling_are_kept() -> None:
    from privsdk.usage.record import MAX_COUNT

    meter = UsageMeter()
    meter.feed(b'{"usage":{"prompt_tokens":%d,"completion_tokens":12.0}}' % MAX_COUNT)
    assert meter.tokens() == (MAX_COUNT, 12)


def test_a_usage_object_nested_past_the_parsers_depth_is_no_count() -> None:
    meter = UsageMeter()
    meter.feed(b'{"usage":{"prompt_tokens":1,"x":' + b"[" * 2000 + b"]" * 2000 + b"}}")
    assert meter.tokens() == (None, None)


# -- where an answer ends: its counts, or data: [DONE] ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "last"),
    [
        ("/v1/chat/completions", {**CHAT, "stream": True, "stream_options": {"include_usage": True}}, b'"usage":{'),
        ("/v1/responses", {**RESP, "stream": True}, b"response.completed"),
    ],
    ids=["chat stream with usage", "responses stream"],
)
@pytest.mark.parametrize("size", [1, 5, 64, 1 << 20])
def test_the_meter_has_ended_once_the_event_with_the_counts_has_passed(
    path: str, body: dict[str, Any], last: bytes, size: int
) -> None:
    """The counts come in a stream's last event (a chat stream's usage chunk, a Responses stream's
    response.completed): an SDK that lets go of the stream right after it, before data: [DONE] or the body's end,
    has read the whole answer. Before that event, it has not."""
    _, _, data = answer(OpenAIWire(), path, body)
    cut = data.rindex(b"\n\n", 0, data.index(last)) + 2  # the end of the event before the last one
    end = data.index(b"\n\n", data.index(last)) + 2  # the end of the last one
    meter = UsageMeter()
    for i in range(0, cut, size):
        meter.feed(data[i : min(i + size, cut)])
    assert not meter.ended
    for i in range(cut, end, size):
        meter.feed(data[i : min(i + size, end)])
    assert meter.ended and meter.tokens() == (11, 7)


@pytest.mark.parametrize(
    ("ending", "kind"),
    [
        (b'data: {"type":"response.completed","error":null}\n\n', None),
        (b'data: {"error": {"code": "rate_limit_exceeded"}}\n\n', "rate_limited"),
        (b'\n  {"error": {"status": "RESOURCE_EXHAUSTED"}}', "rate_limited"),
    ],
)
def test_a_streams_error_event_is_found_after_any_run_of_blank_lines(ending: bytes, kind: str | None) -> None:
    """Blank lines are legal between server-sent events. A run of them in the stream's last chunk, before its last
    event (here 256 KiB), is passed over once: each of them used to start a scan of the rest of the run, which took
    a minute of the usage writer's time for this one."""
    meter = UsageMeter(stream=True)
    meter.feed(b'data: {"choices":[]}\n\n')
    meter.feed(b"\n" * 262144 + ending)
    meter.tokens()
    assert meter.failed == kind


# -- models whose terms no source states ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-daybreak-red-latest", "gpt-daybreak-blue-latest", "ft:gpt-Daybreak-x"])
def test_a_daybreak_model_is_refused_as_its_access_program_is(model: str) -> None:
    for path, body in (
        ("/v1/responses", {"model": model, "input": "hi", "store": False}),
        ("/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": "hi"}]}),
    ):
        for _ in range(2):  # never kept as a verdict on the model
            with pytest.raises(Unreadable, match="Daybreak model"):
                READER.read(request("POST", path, body))


@pytest.mark.parametrize(
    ("fields", "feature"),
    [
        ({"prompt_cache_options": {"ttl": "24h"}}, "prompt_caching"),
        ({"prompt_cache_options": {"ttl": "7d"}}, "prompt_caching"),
        ({"prompt_cache_options": "12h"}, "prompt_caching"),
        ({"prompt_cache_options": {"ttl": "30m"}}, None),
        ({"prompt_cache_options": {"mode": "explicit"}}, None),
    ],
)
def test_a_cache_lifetime_other_than_the_default_is_extended_caching(fields: dict[str, Any], feature: str) -> None:
    """ "Supported lifetimes depend on the API": a lifetime privsdk does not know is read as extended caching."""
    part = {"type": "input_text", "text": "hi", "prompt_cache_breakpoint": fields["prompt_cache_options"]}
    for path, body in (
        ("/v1/chat/completions", {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}], **fields}),
        ("/v1/responses", {"model": "gpt-4.1", "input": "hi", "store": False, **fields}),
        ("/v1/responses", {"model": "gpt-4.1", "store": False, "input": [{"role": "user", "content": [part]}]}),
    ):
        features = READER.read(request("POST", path, body)).features
        assert ("prompt_caching" in features) is (feature is not None), (path, body)


@pytest.mark.parametrize(
    "fields",
    [{"store": "true"}, {"store": 1}, {"background": "true"}, {"background": 1}, {"modalities": "audio"}],
)
def test_a_flag_or_list_of_another_type_is_refused_not_read_as_absent(fields: dict[str, Any]) -> None:
    """A server may take "true" or 1 for true, and "audio" for ["audio"]: read as absent, the feature would pass."""
    body = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}], **fields}
    with pytest.raises(Unreadable, match=r"neither true nor false|not a list of names"):
        READER.read(request("POST", "/v1/chat/completions", body))
    if "background" in fields:
        with pytest.raises(Unreadable, match="neither true nor false"):
            READER.read(request("POST", "/v1/responses", {"model": "gpt-4.1", "input": "hi", "store": False, **fields}))


@pytest.mark.parametrize(
    "item", [{"type": "item_reference", "id": "msg_1"}, {"id": "msg_1"}, {"type": None, "id": "x"}]
)
def test_an_item_reference_is_stored_data_whether_or_not_it_says_its_type(item: dict[str, Any]) -> None:
    """The openai SDK's ItemReference takes ``type`` as optional: each of these names an item OpenAI stored."""
    body = {"model": "gpt-4.1", "store": False, "input": [{"role": "user", "content": "hi"}, item]}
    assert "stored_responses" in READER.read(request("POST", "/v1/responses", body)).features
