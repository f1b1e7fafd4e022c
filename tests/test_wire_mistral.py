"""Mistral's wire reader as a table: documented paths and body fields -> what the request asks for; and its meter."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest
from mistralai.azure.client import models as azure
from mistralai.client import models
from pydantic import BaseModel

from privsdk.outbound.judge import Guard
from privsdk.outbound.outgoing import Asks, Outgoing, Unreadable
from privsdk.outbound.wire import reader
from privsdk.outbound.wire.mistral import READER
from tests.wire.mistral import MistralApp
from tests.wire.server import Recorded

JSON = {"content-type": "application/json"}
SSE = {"content-type": "text/event-stream"}


def out(method: str, path: str, body: Any = None, host: str = "api.mistral.ai") -> Outgoing:
    raw = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    return Outgoing("mistralai", method, "https", host, None, path, "", JSON, raw)


MSG = [{"role": "user", "content": "hi"}]
M = "mistral-large-latest"


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": M, "messages": MSG, **extra}


def tools(*kinds: str) -> list[dict[str, Any]]:
    return [{"type": k} if k != "function" else {"type": "function", "function": {"name": "f"}} for k in kinds]


KEPT = frozenset({"stored_responses", "web_search", "file_search", "hosted_tools", "image_output"})


def batch(requests: list[dict[str, Any]], endpoint: str = "/v1/chat/completions", **job: Any) -> dict[str, Any]:
    """A batch job's body as the mistralai SDK sends it (``batch.jobs.create``): each request's body inline."""
    items = [{"custom_id": str(n), "body": body} for n, body in enumerate(requests)]
    return {"endpoint": endpoint, "requests": items, "timeout_hours": 24, **job}


#: A fine-tuning job's body as mistralai 2's ``fine_tuning.jobs.create`` sends it (mistralai 3 has no such method).
FINE_TUNE: dict[str, Any] = {
    "model": "open-mistral-7b",
    "hyperparameters": {"training_steps": 10, "learning_rate": 0.0001},
    "training_files": [{"file_id": "f1", "weight": 1}],
    "validation_files": ["f2"],
    "suffix": "mine",
    "auto_start": False,
    "invalid_sample_skip_percentage": 0,
    "job_type": "completion",
}
S = frozenset({"stored_responses"})

CASES: list[tuple[Outgoing, Asks]] = [
    (out("POST", "/v1/chat/completions", chat()), Asks("chat", M)),
    (out("POST", "/v1/chat/completions", chat(stream=True)), Asks("stream", M)),
    (out("POST", "/v1/chat/completions", chat(tools=tools("function"))), Asks("chat", M)),
    (out("POST", "/v1/chat/completions", chat(prompt_cache_key="k")), Asks("chat", M, frozenset({"prompt_caching"}))),
    (
        out(
            "POST",
            "/v1/chat/completions",
            chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": "https://x/i.png"}]}]),
        ),
        Asks("chat", M, frozenset({"file_inputs"})),
    ),
    (
        out(
            "POST",
            "/v1/chat/completions",
            chat(messages=[{"role": "user", "content": [{"type": "document_url", "document_url": "https://x/d.pdf"}]}]),
        ),
        Asks("chat", M, frozenset({"file_inputs"})),
    ),
    (
        out(
            "POST",
            "/v1/chat/completions",
            chat(messages=[{"role": "user", "content": [{"type": "text", "text": "a"}]}]),
        ),
        Asks("chat", M),
    ),
    (
        out("POST", "/v1/fim/completions", {"model": "codestral-latest", "prompt": "def"}),
        Asks("chat", "codestral-latest"),
    ),
    (out("POST", "/v1/fim/completions", {"model": "c", "prompt": "d", "stream": True}), Asks("stream", "c")),
    (out("POST", "/models/chat/completions", chat()), Asks("chat", M)),  # Mistral on Azure AI Foundry
    (out("POST", "/v1/embeddings", {"model": "mistral-embed", "input": ["a"]}), Asks("embed", "mistral-embed")),
    (out("POST", "/v1/moderations", {"model": "mistral-moderation-latest", "input": ["a"]}), Asks("moderation")),
    (
        out("POST", "/v1/chat/moderations", {"model": "mistral-moderation-latest", "input": MSG}),
        Asks("moderation", "mistral-moderation-latest"),
    ),
    (out("POST", "/v1/classifications", {"model": "c", "input": ["a"]}), Asks("moderation")),
    (out("POST", "/v1/chat/classifications", {"model": "c", "input": MSG}), Asks("moderation", "c")),
    (out("POST", "/v1/files", b"--multipart"), Asks("files")),
    (out("GET", "/v1/files/f1/content"), Asks("files")),
    (out("POST", "/v1/batch/jobs", {"requests": [], "endpoint": "/v1/chat/completions"}), Asks("batch")),
    (out("POST", "/v1/batch/jobs/j/cancel"), Asks("batch")),
    (out("GET", "/v1/batch/jobs"), Asks("batch")),
    # a batch job: its model, and the features of its inline requests, each read as a direct call to its endpoint
    (
        out(
            "POST",
            "/v1/batch/jobs",
            {"requests": [{"body": {"prompt": "x"}}], "endpoint": "/v1/fim/completions", "model": "c"},
        ),
        Asks("batch", "c"),
    ),
    (
        out("POST", "/v1/batch/jobs", {"endpoint": "/v1/chat/completions", "model": "ft:m:x:y"}),
        Asks("batch", "ft:m:x:y"),
    ),
    (out("POST", "/v1/batch/jobs", batch([chat()])), Asks("batch", M)),
    (out("POST", "/v1/batch/jobs", batch([{"messages": MSG}], model=M)), Asks("batch", M)),
    (out("POST", "/v1/batch/jobs", batch([{"messages": MSG}])), Asks("batch")),
    (
        out("POST", "/v1/batch/jobs", batch([{"messages": MSG}, {"messages": MSG, "tools": tools("web_search")}])),
        Asks("batch", None, frozenset({"web_search"})),
    ),
    (
        out("POST", "/v1/batch/jobs", batch([{"messages": MSG, "tools": tools("document_library", "function")}])),
        Asks("batch", None, frozenset({"file_search"})),
    ),
    (
        out("POST", "/v1/batch/jobs", batch([{"messages": MSG, "prompt_cache_key": "k"}], metadata={"a": "b"})),
        Asks("batch", None, frozenset({"prompt_caching"})),
    ),
    (
        out(
            "POST",
            "/v1/batch/jobs",
            batch([{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "u"}]}]}]),
        ),
        Asks("batch", None, frozenset({"file_inputs"})),
    ),
    (
        out(
            "POST",
            "/v1/batch/jobs",
            batch([{"inputs": "hi", "tools": tools("web_search_premium", "code_interpreter")}], "/v1/conversations"),
        ),
        Asks("batch", None, S | {"web_search", "hosted_tools"}),
    ),
    (
        out("POST", "/v1/batch/jobs", batch([{"inputs": "hi", "store": False}], "/v1/conversations")),
        Asks("batch", None, S),
    ),
    (
        out("POST", "/v1/batch/jobs", batch([{"input": ["a"]}], "/v1/embeddings", model="mistral-embed")),
        Asks("batch", "mistral-embed"),
    ),
    (out("POST", "/v1/batch/jobs", batch([{"input": ["a"]}], "/v1/moderations")), Asks("batch")),
    (out("POST", "/v1/batch/jobs", batch([{"input": MSG}], "/v1/chat/classifications")), Asks("batch")),
    # a batch over an agent, as a conversation started with one: its tools are set on Mistral's side
    (out("POST", "/v1/batch/jobs", batch([{"messages": MSG}], agent_id="ag_1")), Asks("assistants")),
    (  # its other requests' features are read all the same: one refusal must not hide another
        out(
            "POST",
            "/v1/batch/jobs",
            batch(
                [{"agent_id": "ag_1", "inputs": "hi"}, {"inputs": "x", "tools": [{"type": "web_search"}]}],
                "/v1/conversations",
            ),
        ),
        Asks("assistants", features=frozenset({"stored_responses", "web_search"})),
    ),
    (
        out("POST", "/v1/fine_tuning/jobs", FINE_TUNE | {"integrations": [], "repositories": None}),
        Asks("fine_tune", "open-mistral-7b"),
    ),
    (out("POST", "/v1/fine_tuning/jobs/j/start"), Asks("fine_tune")),
    (out("POST", "/v1/fine_tuning/jobs", {"model": "open-mistral-7b"}), Asks("fine_tune", "open-mistral-7b")),
    (out("POST", "/v1/fine_tuning/models/m/archive"), Asks("fine_tune")),
    (out("GET", "/v1/models"), Asks("models")),
    (out("GET", "/v1/models/ft:m"), Asks("models")),
    (out("DELETE", "/v1/models/ft:m"), Asks("fine_tune")),
    (out("POST", "/v1/agents", {"model": M, "name": "a"}), Asks("assistants")),
    (out("POST", "/v1/agents/completions", {"agent_id": "a", "messages": MSG}), Asks("assistants")),
    (out("GET", "/v1/agents/a/versions"), Asks("assistants")),
    # conversations keep state unless the start says store: false
    (out("POST", "/v1/conversations", {"model": M, "inputs": "hi"}), Asks("chat", M, S)),
    (out("POST", "/v1/conversations", {"model": M, "inputs": "hi", "stream": True}), Asks("stream", M, S)),
    # Conversations and /v1/responses are outside the endpoints Mistral's ZDR covers, store=false too (MIS-ZDR).
    (out("POST", "/v1/conversations", {"model": M, "inputs": "hi", "store": False}), Asks("chat", M, S)),
    (out("POST", "/v1/conversations", {"agent_id": "ag", "inputs": "hi"}), Asks("assistants")),
    (
        out("POST", "/v1/conversations", {"model": M, "inputs": "hi", "store": False, "tools": tools("web_search")}),
        Asks("chat", M, S | {"web_search"}),
    ),
    (
        out("POST", "/v1/conversations", {"model": M, "inputs": "hi", "tools": tools("code_interpreter")}),
        Asks("chat", M, S | {"hosted_tools"}),
    ),
    (
        out("POST", "/v1/conversations", {"model": M, "inputs": "hi", "tools": tools("image_generation")}),
        Asks("chat", M, S | {"hosted_tools"}),
    ),
    (
        out("POST", "/v1/conversations", {"model": M, "inputs": "hi", "tools": tools("document_library")}),
        Asks("chat", M, S | {"file_search"}),
    ),
    (
        out("POST", "/v1/conversations", {"model": M, "inputs": "hi", "tools": tools("web_search_premium")}),
        Asks("chat", M, S | {"web_search"}),
    ),
    (
        out("POST", "/v1/conversations", {"model": M, "inputs": "hi", "tools": tools("connector")}),
        Asks("chat", M, S | {"hosted_tools"}),
    ),
    (
        out(
            "POST",
            "/v1/conversations",
            {"model": M, "inputs": [{"role": "user", "content": [{"type": "image_url", "image_url": "u"}]}]},
        ),
        Asks("chat", M, S | {"file_inputs"}),
    ),
    # Appending to or restarting a conversation runs the tools it was started with, which the request does not show.
    (out("POST", "/v1/conversations/c1", {"inputs": "more", "store": False}), Asks("chat", None, KEPT)),
    (out("POST", "/v1/conversations/c1/restart", {"inputs": "x", "from_entry_id": "e"}), Asks("chat", None, KEPT)),
    (out("POST", "/v1/conversations/c1", {"inputs": "more", "stream": True}), Asks("stream", None, KEPT)),
    (out("GET", "/v1/conversations"), Asks("responses_state")),
    (out("GET", "/v1/conversations/c1/history"), Asks("responses_state")),
    (out("DELETE", "/v1/conversations/c1"), Asks("responses_state")),
    # the stateless Responses API
    (out("POST", "/v1/responses", {"model": M, "input": "hi"}), Asks("chat", M, S)),
    (out("POST", "/v1/responses", {"model": M, "input": "hi", "stream": True}), Asks("stream", M, S)),
    (out("POST", "/v1/responses", {"model": M, "input": "hi", "store": False}), Asks("chat", M, S)),
    (out("POST", "/v1/responses", {"model": M, "input": "hi", "store": True}), Asks("chat", M, S)),
    (out("POST", "/v1/responses", {"model": M, "input": "hi", "previous_response_id": "r"}), Asks("chat", M, S)),
    (out("POST", "/v1/responses", {"model": M, "input": "hi", "conversation": "c"}), Asks("chat", M, S)),
    (
        out("POST", "/v1/responses", {"model": M, "input": "hi", "background": True}),
        Asks("chat", M, S | {"background"}),
    ),
    (
        out("POST", "/v1/responses", {"model": M, "input": "hi", "tools": tools("web_search")}),
        Asks("chat", M, S | {"web_search"}),
    ),
    (out("POST", "/v1/responses/input_tokens", {"model": M, "input": "hi"}), Asks("other")),
    (out("POST", "/v1/libraries", {"name": "l"}), Asks("vector_stores")),
    (out("POST", "/v1/libraries/l/documents", b"--multipart"), Asks("vector_stores")),
    (out("POST", "/v1/context/search-indexes/i/search", {"query": "q"}), Asks("vector_stores")),
    (out("POST", "/v1/audio/transcriptions", b"--multipart"), Asks("audio")),
    (out("POST", "/v1/audio/speech", {"input": "hi"}), Asks("audio")),
    (out("GET", "/v2/audio/voices"), Asks("audio")),
    (out("POST", "/v1/ocr", {"model": "mistral-ocr-latest", "document": {}}), Asks("other")),
    (out("POST", "/v1/workflows/w/execute", {}), Asks("other")),
    (out("POST", "/v1/observability/traces/search", {}), Asks("other")),
    (out("GET", "/v1/whoami"), Asks("other")),
    (out("POST", "/v2/prompts", {}), Asks("other")),
]


@pytest.mark.parametrize(("request_", "expected"), CASES, ids=[f"{c[0].method} {c[0].path}" for c in CASES])
def test_reads_what_the_request_asks_for(request_: Outgoing, expected: Asks) -> None:
    assert READER.read(request_) == expected


def test_the_registry_serves_this_reader() -> None:
    assert reader("mistral") is READER


UNREADABLE = [
    # The SDK's opt-in telemetry exports spans (prompts included) to this path of api.mistral.ai.
    out("POST", "/telemetry/v1/traces", b"\x0a\x0bsecret prompt"),
    out("POST", "/v1/brand-new", {"prompt": "secret prompt"}),
    out("POST", "/v3/chat/completions", {"prompt": "secret prompt"}),
    out("POST", "/v1/chat/completions", b"not json: secret prompt"),
    out("POST", "/v1/chat/other", {"prompt": "secret prompt"}),
    out("POST", "/v1/embeddings", [1]),
    out("GET", "/v1/chat/completions"),
    out("POST", "/", b""),
    # batch jobs: an endpoint whose bodies are not read here, a field not read, a body shape not expected
    out("POST", "/v1/batch/jobs", {"endpoint": "/v1/ocr", "input_files": ["f"], "model": "mistral-ocr-latest"}),
    out("POST", "/v1/batch/jobs", {"endpoint": "/v1/audio/transcriptions", "input_files": ["f"]}),
    out("POST", "/v1/batch/jobs", {"endpoint": "/v1/secret prompt", "input_files": ["f"]}),
    out("POST", "/v1/batch/jobs", {"endpoint": ["/v1/chat/completions"], "input_files": ["f"]}),
    out("POST", "/v1/batch/jobs", {"input_files": ["f"], "model": M}),
    out("POST", "/v1/batch/jobs", {"endpoint": "/v1/chat/completions", "input_files": ["f"], "x": "secret prompt"}),
    out("POST", "/v1/batch/jobs", batch([{"messages": MSG, "metadata": {"a": "secret prompt"}}])),
    out("POST", "/v1/batch/jobs", batch([{"messages": MSG, "prompt": "secret prompt"}])),
    out("POST", "/v1/batch/jobs", batch([{"inputs": "secret prompt", "input": "x"}], "/v1/conversations")),
    out("POST", "/v1/batch/jobs", batch([{"input": ["secret prompt"], "metadata": {}}], "/v1/moderations")),
    out("POST", "/v1/batch/jobs", {"endpoint": "/v1/chat/completions", "requests": {"body": "secret prompt"}}),
    out("POST", "/v1/batch/jobs", {"endpoint": "/v1/chat/completions", "requests": ["secret prompt"]}),
    out("POST", "/v1/batch/jobs", {"endpoint": "/v1/chat/completions", "requests": [{"body": "secret prompt"}]}),
    out(
        "POST",
        "/v1/batch/jobs",
        {"endpoint": "/v1/chat/completions", "requests": [{"body": {"messages": MSG}, "url": "secret prompt"}]},
    ),
    out("POST", "/v1/batch/jobs", batch([{"model": "ft:m:x:y", "messages": MSG}], model=M)),
    out("POST", "/v1/batch/jobs", batch([{"model": M, "messages": MSG}, {"model": "labs-x", "messages": MSG}])),
    out("POST", "/v1/batch/jobs", batch([chat(model=["secret prompt"])])),
    out("POST", "/v1/batch/jobs", b"secret prompt"),
    # fine-tuning jobs: integrations and repositories reach third parties; fields not read
    out(
        "POST",
        "/v1/fine_tuning/jobs",
        FINE_TUNE | {"integrations": [{"type": "wandb", "project": "p", "api_key": "secret prompt"}]},
    ),
    out(
        "POST",
        "/v1/fine_tuning/jobs",
        FINE_TUNE | {"repositories": [{"type": "github", "name": "n", "owner": "o", "token": "secret prompt"}]},
    ),
    out("POST", "/v1/fine_tuning/jobs", FINE_TUNE | {"zz_new_field": "secret prompt"}),
    out(
        "POST", "/v1/fine_tuning/jobs", FINE_TUNE | {"hyperparameters": {"learning_rate": 1, "prompt": "secret prompt"}}
    ),
    out("POST", "/v1/fine_tuning/jobs", FINE_TUNE | {"hyperparameters": "secret prompt"}),
]


@pytest.mark.parametrize("request_", UNREADABLE, ids=[f"{r.method} {r.path}" for r in UNREADABLE])
def test_an_unknown_shape_is_unreadable_and_the_message_holds_no_body_value(request_: Outgoing) -> None:
    with pytest.raises(Unreadable) as caught:
        READER.read(request_)
    assert "secret" not in str(caught.value)


def _feed(meter: Any, data: bytes, size: int) -> tuple[int | None, int | None]:
    for i in range(0, len(data), size):
        meter.feed(data[i : i + size])
    result: tuple[int | None, int | None] = meter.tokens()
    return result


def _app_reply(body: dict[str, Any]) -> bytes:
    request = Recorded(
        "POST",
        "/v1/chat/completions",
        {},
        {"content-type": "application/json", "authorization": "Bearer k", "accept": "text/event-stream"},
        json.dumps(body).encode(),
    )
    reply = MistralApp("Bonjour, tout le monde", usage=(21, 8))(request)
    return b"".join(reply.chunks) if reply.chunks is not None else reply.body


@pytest.mark.parametrize("size", [1, 9, 4096])
def test_meter_counts_tokens_of_an_answer_and_of_a_stream(size: int) -> None:
    meter = READER.meter(out("POST", "/v1/chat/completions"), Asks("chat"), 200, JSON)
    assert _feed(meter, _app_reply(chat()), size) == (21, 8)
    meter = READER.meter(out("POST", "/v1/chat/completions"), Asks("stream"), 200, SSE)
    assert _feed(meter, _app_reply(chat(stream=True)), size) == (21, 8)


def test_meter_reads_responses_and_conversation_events() -> None:
    events = (
        b'event: response.output_text.delta\ndata: {"type": "response.output_text.delta", "delta": "a"}\n\n'
        b'event: response.completed\ndata: {"type": "response.completed", '
        b'"response": {"usage": {"input_tokens": 4, "output_tokens": 6}}}\n\n'
    )
    meter = READER.meter(out("POST", "/v1/responses"), Asks("stream"), 200, SSE)
    assert _feed(meter, events, 13) == (4, 6)
    done = (
        b"event: conversation.response.done\n"
        b'data: {"type": "conversation.response.done", "usage": {"prompt_tokens": 2, "completion_tokens": 3}}\n\n'
    )
    meter = READER.meter(out("POST", "/v1/conversations"), Asks("stream"), 200, SSE)
    assert _feed(meter, done, 5) == (2, 3)


def test_meter_counts_nothing_for_an_error_and_skips_an_oversized_event() -> None:
    assert READER.meter(out("POST", "/v1/chat/completions"), Asks("chat"), 500, JSON) is None
    meter = READER.meter(out("POST", "/v1/chat/completions"), Asks("stream"), 200, SSE)
    assert meter is not None
    meter.feed(b'data: {"usage": "' + b"x" * (2 * 1024 * 1024))
    meter.feed(b'"}\n\ndata: {"usage": {"prompt_tokens": 1, "completion_tokens": 2}}\n\n')
    assert meter.tokens() == (1, 2)


def test_the_guard_reads_a_mistralai_request_to_azure_with_this_reader() -> None:
    """MistralAzure posts to an Azure AI Foundry host that also serves OpenAI-protocol offerings."""
    request = out("POST", "/models/chat/completions", chat(), "res.services.ai.azure.com")
    verdict = Guard(environ={"PRIVSDK_USAGE": "none"}).judge(request)
    assert verdict.asks == Asks("chat", M) and verdict.wire is READER


@pytest.mark.parametrize("raw", [b"1e999", b"-1e999", b"Infinity", b"NaN", b"100000000000000000000", b"-1", b"true"])
@pytest.mark.parametrize("size", [1, 4096])
def test_a_count_that_is_no_count_is_none_and_never_raises(raw: bytes, size: int) -> None:
    """1e999 and Infinity parse as inf, which int() refuses: the meter never raises into the app's call."""
    body = b'{"id": "x", "choices": [], "usage": {"prompt_tokens": %s, "completion_tokens": 3}}'
    meter = READER.meter(out("POST", "/v1/chat/completions"), Asks("chat"), 200, JSON)
    assert _feed(meter, body % raw, size) == (None, 3)
    event = (
        b'data: {"id": "x", "choices": [], "usage": {"prompt_tokens": %s, "completion_tokens": 3}}\n\ndata: [DONE]\n\n'
    )
    meter = READER.meter(out("POST", "/v1/chat/completions"), Asks("stream"), 200, SSE)
    assert _feed(meter, event % raw, size) == (None, 3)


# -- the fields a body may hold -------------------------------------------------------------------------------------

CANARY = "canary-value-7f3e"


def _json_names(*requests: type[BaseModel]) -> frozenset[str]:
    """The fields the mistralai SDK sends in the bodies of ``requests`` (its request models), under their JSON names:
    it serialises them by alias."""
    return frozenset(
        field.serialization_alias or field.alias or name
        for request in requests
        for name, field in request.model_fields.items()
    )


#: The mistralai SDK's fields privsdk refuses, with why, by body.
REFUSED_BY_DESIGN: dict[str, dict[str, str]] = {
    **{
        body: {"metadata": "what Mistral does with it is not stated, and its observability keeps labelled events"}
        for body in ("chat", "fim", "embeddings")
    },
    "responses": {
        "prompt": "a prompt kept on Mistral's side, with its instructions and tools, that the request does not show",
        "moderation": "untyped in the SDK and undocumented by Mistral",
    },
}
#: Each body the reader reads: (path, a body it reads, the fields the installed SDK sends in it).
BODIES: dict[str, tuple[str, dict[str, Any], frozenset[str]]] = {
    "chat": (
        "/v1/chat/completions",
        chat(),
        _json_names(models.ChatCompletionRequest, models.ChatCompletionStreamRequest),
    ),
    "azure chat": (
        "/models/chat/completions",
        chat(),
        _json_names(azure.ChatCompletionRequest, azure.ChatCompletionStreamRequest),
    ),
    "fim": (
        "/v1/fim/completions",
        {"model": "c", "prompt": "p"},
        _json_names(models.FIMCompletionRequest, models.FIMCompletionStreamRequest),
    ),
    "embeddings": ("/v1/embeddings", {"model": "e", "input": ["a"]}, _json_names(models.EmbeddingRequest)),
    "chat moderations": ("/v1/chat/moderations", {"input": MSG}, _json_names(models.ChatModerationRequest)),
    "chat classifications": (
        "/v1/chat/classifications",
        {"input": MSG},
        _json_names(models.ChatClassificationRequest),
    ),
    "conversation start": (
        "/v1/conversations",
        {"model": M, "inputs": "hi"},
        _json_names(models.ConversationRequest, models.ConversationStreamRequest),
    ),
    "conversation append": (
        "/v1/conversations/c1",
        {"inputs": "hi"},
        _json_names(models.ConversationAppendRequest, models.ConversationAppendStreamRequest),
    ),
    "conversation restart": (
        "/v1/conversations/c1/restart",
        {"inputs": "hi", "from_entry_id": "e"},
        _json_names(models.ConversationRestartRequest, models.ConversationRestartStreamRequest),
    ),
    "responses": ("/v1/responses", {"model": M, "input": "hi"}, _json_names(models.CreateResponseRequest)),
    "batch job": (
        "/v1/batch/jobs",
        {"endpoint": "/v1/chat/completions", "requests": []},
        _json_names(models.CreateBatchJobRequest),
    ),
    # mistralai 3 has no fine-tuning method: the fields of mistralai 2's CreateFineTuningJobRequest.
    "fine-tuning job": (
        "/v1/fine_tuning/jobs",
        FINE_TUNE,
        frozenset(FINE_TUNE) | {"integrations", "repositories", "classifier_targets"},
    ),
}
FIELD_CASES = [(name, field) for name, (_, _, fields) in BODIES.items() for field in sorted(fields)]


def _refused(body: str) -> dict[str, str]:
    return REFUSED_BY_DESIGN.get(body.removeprefix("azure "), {})


def test_the_table_holds_the_sdks_fields() -> None:
    """The SDK's bodies are found under their JSON names, and each field refused by design is one it sends."""
    assert "input" in BODIES["embeddings"][2] and "inputs" not in BODIES["embeddings"][2]
    assert {"guardrails", "prompt_mode", "service_tier"} <= BODIES["chat"][2]
    for body, refused in REFUSED_BY_DESIGN.items():
        assert refused.keys() <= BODIES[body][2], body


@pytest.mark.parametrize(("body", "field"), FIELD_CASES, ids=[f"{b}.{f}" for b, f in FIELD_CASES])
def test_every_field_the_sdk_sends_is_read_or_refused_by_design(body: str, field: str) -> None:
    """A field of a new mistralai release fails here until it is judged: put on its body's allow-list in
    privsdk/outbound/wire/mistral.py, or refused with why in REFUSED_BY_DESIGN."""
    path, base, _ = BODIES[body]
    request = out("POST", path, {field: None, **base})
    if field in _refused(body):
        with pytest.raises(Unreadable, match=f"does not read in .*: {field} "):
            READER.read(request)
    else:
        READER.read(request)


@pytest.mark.parametrize("body", BODIES)
def test_a_field_no_sdk_sends_is_refused_by_name_never_by_value(body: str) -> None:
    """What an app adds to a body the SDK lets it extend (the Responses API's ``additional_properties``)."""
    path, base, _ = BODIES[body]
    with pytest.raises(Unreadable) as caught:
        READER.read(out("POST", path, {**base, "zz_new_field": CANARY}))
    assert "zz_new_field" in str(caught.value) and CANARY not in str(caught.value)


# -- batch jobs: the job's endpoint, and its inline requests read as direct calls ------------------------------------

#: The endpoints of the SDK's APIEndpoint a batch job is refused for: their bodies are not read here.
BATCH_REFUSED = {"/v1/ocr": "OCR: other as a direct call", "/v1/audio/transcriptions": "audio as a direct call"}


def test_every_batch_endpoint_the_sdk_names_is_read_or_refused_by_design() -> None:
    """A batch endpoint of a new mistralai release fails here until it is judged."""
    endpoints = {e for e in typing.get_args(typing.get_args(models.APIEndpoint)[0])}
    assert "/v1/conversations" in endpoints and BATCH_REFUSED.keys() <= endpoints
    for endpoint in sorted(endpoints):
        request = out("POST", "/v1/batch/jobs", {"endpoint": endpoint, "requests": [], "model": M})
        if endpoint in BATCH_REFUSED:
            with pytest.raises(Unreadable, match=f"an endpoint privsdk does not read: {endpoint}$"):
                READER.read(request)
        else:
            assert READER.read(request) == Asks("batch", M)


def test_a_batch_requests_fields_are_those_the_sdk_sends() -> None:
    item = {field: None for field in _json_names(models.BatchRequest)} | {"body": {"messages": MSG}}
    assert READER.read(out("POST", "/v1/batch/jobs", {"endpoint": "/v1/chat/completions", "requests": [item]}))


#: Direct calls whose bodies a batch job may carry: each endpoint, and the bodies of this file's cases for it.
DIRECT = {
    path: [r for r, _ in CASES if r.path == path and r.method == "POST" and isinstance(r.json(), dict)]
    for path in ("/v1/chat/completions", "/v1/fim/completions", "/v1/embeddings", "/v1/chat/moderations")
}
DIRECT["/v1/conversations"] = [
    r for r, a in CASES if r.path == "/v1/conversations" and r.method == "POST" and a.operation != "assistants"
]
INLINE = [(path, r.json()) for path, requests in DIRECT.items() for r in requests]


@pytest.mark.parametrize(("endpoint", "body"), INLINE, ids=[f"{p} {i}" for i, (p, _) in enumerate(INLINE)])
def test_an_inline_batch_request_asks_for_what_the_same_direct_call_asks_for(endpoint: str, body: Any) -> None:
    direct = READER.read(out("POST", endpoint, body))
    model = body.get("model")
    inline = {k: v for k, v in body.items() if k != "model"}
    assert READER.read(out("POST", "/v1/batch/jobs", batch([inline], endpoint, model=model))) == Asks(
        "batch", model, direct.features
    )
    assert READER.read(out("POST", "/v1/batch/jobs", batch([body], endpoint))).model == model
    with pytest.raises(Unreadable, match="zz_new_field"):
        READER.read(out("POST", "/v1/batch/jobs", batch([{**body, "zz_new_field": CANARY}], endpoint)))


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_a_job_sent_by_another_method_than_post_is_read_as_the_job_it_would_create(method: str) -> None:
    """Mistral creates a job with POST; a server that routes without the method would create it from a PUT's body,
    which went out unread as a plain batch request (a web search in an inline request passed under no_training)."""
    body = batch([{"messages": MSG, "tools": tools("web_search")}], model=M)
    assert READER.read(out(method, "/v1/batch/jobs", body)) == READER.read(out("POST", "/v1/batch/jobs", body))
    assert "web_search" in READER.read(out(method, "/v1/batch/jobs", body)).features


@pytest.mark.parametrize("value", ["true", 1, "yes", {}])
def test_a_responses_background_neither_true_nor_false_is_refused_not_read_as_off(value: Any) -> None:
    """A server may take "true" or 1 for true: read as off, a background response (kept to run later) would pass
    for a tenant that refuses one. true is background, false or none is not."""
    body = {"model": "mistral-small-latest", "input": "hi", "background": value}
    with pytest.raises(Unreadable, match="neither true nor false"):
        READER.read(_responses(body))
    assert "background" in READER.read(_responses({**body, "background": True})).features
    assert "background" not in READER.read(_responses({**body, "background": False})).features


def _responses(body: dict[str, Any]) -> Outgoing:
    return Outgoing(
        "mistralai", "POST", "https", "api.mistral.ai", None, "/v1/responses", "", {}, json.dumps(body).encode()
    )
