"""The openai adapter driving the real openai SDK over HTTP against the OpenAI wire app.

Covers OpenAI (Chat Completions and Responses API), Azure OpenAI (key and Entra
ID), Azure AI Foundry and self-hosted servers: what the vendor receives, what
the adapter returns, and every error class.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from privsdk.adapter import Adapter, AdapterOptions, open_adapter
from privsdk.errors import (
    AuthFailed,
    BadRequest,
    ConfigError,
    ConnectionLost,
    ContentRefused,
    NotFound,
    PolicyViolation,
    RateLimited,
    Unavailable,
    Unsupported,
    VendorError,
    VendorTimeout,
)
from privsdk.outbound.judge import Binding, Guard, bound
from privsdk.policy import Target
from privsdk.types import (
    ChatRequest,
    EmbedRequest,
    Image,
    Message,
    RerankRequest,
    ResponseFormat,
    StreamEnd,
    StreamEvent,
    Text,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from tests.conftest import REPO
from tests.wire.openai import (
    OpenAIWire,
    content_filter_body,
    error_body,
    float32_base64,
    responses_error_event,
    stream_error_chunk,
    vector_for,
)
from tests.wire.server import Cut, Delay, Fault, LoopbackServer, Recorded, Reset, Status

KEY = "sk-loopback"
#: The prompt every call sends; vendor error bodies echo it, privsdk errors must not.
PROMPT = "the secret plan is 4242"
AZURE_VERSION = "2024-10-21"
WEATHER = Tool("get_weather", "Weather for a city", {"type": "object", "properties": {"city": {"type": "string"}}})
ASK = ChatRequest((Message("user", PROMPT),))
ASK_TOOL = ChatRequest((Message("user", PROMPT),), tools=(WEATHER,), tool_choice="auto")


# --- fixtures and helpers --------------------------------------------------------------------------------------------


@pytest.fixture
def wire() -> OpenAIWire:
    return OpenAIWire(key=KEY)


@pytest.fixture(scope="module")
def _running() -> Iterator[LoopbackServer]:
    # One server for the module: stopping one waits out its 0.5 s poll, which per test would dominate the run.
    with LoopbackServer(OpenAIWire()) as running:
        yield running


@pytest.fixture
def server(_running: LoopbackServer, wire: OpenAIWire) -> Iterator[LoopbackServer]:
    """The module's server, answering from this test's ``wire``, with nothing recorded or queued yet."""
    _running.app = wire
    _running.requests.clear()
    _running.errors.clear()
    while _running.next_fault() is not None:
        pass
    yield _running
    assert _running.errors == []  # every request had a shape the real API accepts


@pytest.fixture(autouse=True)
def _unbound() -> Iterator[None]:
    """Each test starts with no attempt bound (see :func:`guarded`)."""
    token = bound.set(None)
    yield
    bound.reset(token)


def guarded(target: Target, server: LoopbackServer) -> Guard:
    """What privsdk.Client gives an adapter: its guard (here one that knows ``server`` as ``target``'s
    endpoint), with the attempt bound to ``target``, so the adapter's requests pass the guard as they would."""
    guard = Guard(environ={"PRIVSDK_ENDPOINTS": f"{server.url}={target.offering}", "PRIVSDK_USAGE": "none"})
    assert guard.policy.default_tenant is not None  # an environment-only policy has its default tenant
    tenant = guard.policy.tenants[guard.policy.default_tenant]
    bound.set(Binding(target, tenant.name, tenant.default_class))
    return guard


def build(
    server: LoopbackServer,
    offering: str = "openai.api",
    *,
    path: str = "/v1",
    credentials: Mapping[str, str] | None = None,
    model: str = "gpt-4o-mini",
    **fields: Any,
) -> Adapter:
    """An adapter for a target on ``server``, built through the entry point as the client builds it."""
    fields.setdefault("endpoint", server.url + path)
    credentials = {"api_key": KEY} if credentials is None else credentials
    target = Target("t", offering, model, **fields)
    options = AdapterOptions(timeout=2.0, credentials=credentials, guard=guarded(target, server))
    return open_adapter(target, options)


def azure(server: LoopbackServer, **fields: Any) -> Adapter:
    fields.setdefault("deployment", "gpt4o-eu")
    return build(server, "azure.openai", path="", api_version=AZURE_VERSION, **fields)


def only_request(server: LoopbackServer) -> Recorded:
    """The one request the call made: the SDK's retries are off."""
    (request,) = server.requests
    assert request.headers["x-stainless-retry-count"] == "0"
    return request


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [e async for e in events]


def run_async(adapter: Adapter, call: Callable[[Adapter], Any]) -> Any:
    """``call(adapter)`` awaited in a fresh event loop, closing the adapter after."""

    async def go() -> Any:
        try:
            return await call(adapter)
        finally:
            await adapter.aclose()

    return asyncio.run(go())


# --- construction ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offering", "vendor", "fields"),
    [
        ("openai.api", "openai", {}),
        ("azure.openai", "azure", {"api_version": AZURE_VERSION}),
        ("azure.foundry", "azure", {}),
        ("selfhosted.openai_compatible", "selfhosted", {}),
        ("selfhosted.vllm", "selfhosted", {}),
        ("selfhosted.ollama", "selfhosted", {}),
    ],
)
def test_the_entry_point_serves_every_offering_without_network(
    server: LoopbackServer, offering: str, vendor: str, fields: dict[str, Any]
) -> None:
    adapter = build(server, offering, **fields)
    assert (adapter.vendor, adapter.operations) == (vendor, frozenset({"chat", "stream", "embed"}))
    assert server.requests == []
    adapter.close()


def test_importing_the_adapter_does_not_import_the_sdk() -> None:
    code = (
        "import sys, privsdk_openai; print(sorted(m for m in sys.modules if m.split('.')[0] in ('openai', 'httpx2')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("offering", "fields", "credentials", "mentions"),
    [
        ("openai.api", {"options": (("api", "assistants"),)}, {"api_key": KEY}, "chat_completions, responses"),
        ("openai.api", {"options": (("auth", "entra"),)}, {"api_key": KEY}, "option 'auth'"),
        ("openai.api", {"region": "eu", "endpoint": "https://x.test/v1"}, {"api_key": KEY}, "region and endpoint"),
        ("openai.api", {"region": "mars"}, {"api_key": KEY}, "data_residency"),
        ("openai.api", {}, {"api_key": KEY, "token": "x"}, "keys 'token' mean"),
        ("selfhosted.vllm", {}, {}, "endpoint"),
        ("azure.foundry", {}, {"api_key": KEY}, "endpoint"),
        ("azure.openai", {"options": (("auth", "entra"),)}, {"api_key": KEY}, "'api_key'"),
        ("azure.openai", {"options": (("auth", "entra"),)}, {}, "AZURE_OPENAI_AD_TOKEN"),
        ("azure.openai", {"api_version": AZURE_VERSION}, {}, "AZURE_OPENAI_API_KEY"),
        ("azure.openai", {"endpoint": "https://x.test"}, {"api_key": KEY}, "OPENAI_API_VERSION"),
        ("cohere.saas", {}, {}, "does not serve"),
    ],
)
def test_a_setting_the_adapter_cannot_use_is_a_config_error_naming_the_target(
    monkeypatch: pytest.MonkeyPatch, offering: str, fields: dict[str, Any], credentials: dict[str, str], mentions: str
) -> None:
    for name in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN", "OPENAI_API_VERSION", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    import privsdk_openai

    with pytest.raises(ConfigError) as caught:
        privsdk_openai.adapter(Target("t", offering, "m", **fields), AdapterOptions(credentials=credentials))
    assert "targets.t" in str(caught.value)
    assert mentions in str(caught.value)
    assert KEY not in str(caught.value)


def test_openai_without_any_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        open_adapter(Target("t", "openai.api", "gpt-4o-mini"), AdapterOptions())


def test_openai_project_travels_as_its_header(server: LoopbackServer) -> None:
    build(server, project="proj_eu_zdr").chat(ASK, timeout=1)
    assert only_request(server).headers["openai-project"] == "proj_eu_zdr"


@pytest.mark.parametrize(
    ("credentials", "organization", "project"),
    [
        ({"api_key": KEY}, None, None),  # a key given to privsdk: the environment's account is not its account
        ({"api_key": KEY, "organization": "org-own", "project": "proj_own"}, "org-own", "proj_own"),
        ({}, "org-deployment", "proj_deployment"),  # the SDK's own key: its own variables, as openai reads them
    ],
)
def test_a_given_key_names_no_organization_or_project_from_the_environment(
    server: LoopbackServer,
    monkeypatch: pytest.MonkeyPatch,
    credentials: dict[str, str],
    organization: str | None,
    project: str | None,
) -> None:
    """OPENAI_ORG_ID and OPENAI_PROJECT_ID name the deployment's account: with a tenant's own key they named
    another account than the key's, on the sync and the async client alike."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-deployment")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_deployment")
    adapter = build(server, credentials=credentials)
    adapter.chat(ASK, timeout=1)
    run_async(adapter, lambda a: a.achat(ASK, timeout=1))
    assert len(server.requests) == 2
    for sent in server.requests:
        assert sent.headers["authorization"] == f"Bearer {KEY}"
        assert (sent.headers.get("openai-organization"), sent.headers.get("openai-project")) == (organization, project)


def test_azure_and_self_hosted_given_their_key_name_no_openai_account(
    server: LoopbackServer, wire: OpenAIWire, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-deployment")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_deployment")
    azure(server).chat(ASK, timeout=1)
    wire.key = "local-key"
    build(server, "selfhosted.vllm", credentials={"api_key": "local-key"}).chat(ASK, timeout=1)
    assert len(server.requests) == 2
    for sent in server.requests:
        assert "openai-organization" not in sent.headers and "openai-project" not in sent.headers


def test_openai_region_picks_the_data_residency_host() -> None:
    adapter = open_adapter(
        Target("t", "openai.api", "gpt-4o-mini", region="eu"), AdapterOptions(credentials={"api_key": KEY})
    )
    assert str(adapter._client.base_url) == "https://eu.api.openai.com/v1/"  # type: ignore[attr-defined]
    adapter.close()


# --- Chat Completions ------------------------------------------------------------------------------------------------


def test_chat_maps_every_field_and_the_answer(server: LoopbackServer, wire: OpenAIWire) -> None:
    PNG_BASE64 = base64.b64encode(b"\x89PNG").decode()
    request = ChatRequest(
        messages=(
            Message("system", "Answer in JSON."),
            Message("user", (Text(PROMPT), Image(data=b"\x89PNG"), Image(url="https://img.test/a.jpg"))),
            Message("assistant", "", tool_calls=(ToolCall("call_9", "get_weather", '{"city": "Oslo"}'),)),
            Message("tool", "12 degrees", tool_call_id="call_9"),
            Message("assistant", "It is 12 degrees."),
            Message("user", "And tomorrow?"),
        ),
        tools=(WEATHER,),
        tool_choice="none",
        temperature=0.2,
        top_p=0.9,
        max_tokens=64,
        stop=("END",),
        seed=7,
        response_format=ResponseFormat({"type": "object"}, name="forecast"),
        extra={"service_tier": "default"},
    )
    answer = build(server).chat(request, timeout=1.5)

    sent = only_request(server)
    assert (sent.path, sent.headers["authorization"]) == ("/v1/chat/completions", f"Bearer {KEY}")
    assert sent.headers["x-stainless-read-timeout"] == "1.5"  # the call's own bound, not the client default
    body = sent.json()
    assert body["messages"] == [
        {"role": "system", "content": "Answer in JSON."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": PROMPT},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG_BASE64}},
                {"type": "image_url", "image_url": {"url": "https://img.test/a.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "get_weather",
                                                                             "arguments": '{"city": "Oslo"}'}}],
        },
        {"role": "tool", "tool_call_id": "call_9", "content": "12 degrees"},
        {"role": "assistant", "content": "It is 12 degrees."},
        {"role": "user", "content": "And tomorrow?"},
    ]  # fmt: skip
    assert body["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                          "parameters": dict(WEATHER.parameters)}}
    ]  # fmt: skip
    assert {k: v for k, v in body.items() if k not in ("messages", "tools")} == {
        "model": "gpt-4o-mini",
        "tool_choice": "none",
        "temperature": 0.2,
        "top_p": 0.9,
        "max_completion_tokens": 64,
        "stop": ["END"],
        "seed": 7,
        "response_format": {"type": "json_schema", "json_schema": {"name": "forecast", "schema": {"type": "object"}}},
        "service_tier": "default",
    }
    assert (answer.text, answer.tool_calls, answer.finish_reason) == (wire.text, (), "stop")
    assert (answer.usage, answer.model) == (Usage(*wire.usage), wire.model)
    # The answer's JSON as sent, which openai's own type reads (the adapter asks the SDK for it untyped).
    assert ChatCompletion.model_validate(answer.raw).choices[0].message.content == wire.text


def test_a_completion_the_server_calls_text_is_still_read_as_json(server: LoopbackServer, wire: OpenAIWire) -> None:
    """The adapter takes the SDK's answer untyped, which the SDK hands back as text when the content type is not
    JSON; the SDK's typed path would still read it as JSON, and so does the adapter."""
    expected = build(server).chat(ASK, timeout=1)
    server.fail(Status(200, {"Content-Type": "text/plain"}, json.dumps(expected.raw).encode()))
    answer = build(server).chat(ASK, timeout=1)
    assert answer[:5] == expected[:5] and answer.text == wire.text


@pytest.mark.parametrize(
    "body",
    [
        b"<html>" + PROMPT.encode() + b"</html>",  # a proxy's page
        json.dumps({"choices": [{"message": PROMPT}], "model": "m"}).encode(),  # JSON without a completion's shape
        json.dumps([PROMPT]).encode(),
    ],
    ids=["not json", "wrong shape", "a list"],
)
@pytest.mark.parametrize("content_type", ["text/html", "application/json"])
def test_a_200_that_is_no_completion_is_unavailable_and_quotes_nothing(
    server: LoopbackServer, body: bytes, content_type: str
) -> None:
    server.fail(Status(200, {"Content-Type": content_type}, body))
    with pytest.raises(Unavailable) as caught:
        build(server).chat(ASK, timeout=1)
    error = caught.value
    assert (error.code, error.__cause__, error.__context__) == ("UnexpectedResponse", None, None)
    assert PROMPT not in str(error) and PROMPT not in repr(error.args)


@pytest.mark.parametrize(
    "chunk",
    [
        {"choices": [{"index": 0, "delta": PROMPT}]},
        {"choices": [{"index": 0, "delta": [PROMPT]}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": PROMPT}]}}]},
        {"choices": PROMPT},
    ],
    ids=["delta a string", "delta a list", "function not an object", "choices not a list"],
)
def test_a_stream_event_without_a_chunks_shape_is_unavailable_and_quotes_nothing(
    server: LoopbackServer, chunk: dict[str, Any]
) -> None:
    server.fail(Cut(after=2, then=b"data: " + json.dumps(chunk).encode() + b"\n\n", drop=False))
    with pytest.raises(Unavailable) as caught:
        list(build(server).stream(ASK, timeout=1))
    error = caught.value
    assert (error.code, error.__cause__, error.__context__) == ("UnexpectedResponse", None, None)
    assert PROMPT not in str(error)


def test_chat_asks_for_any_json_object(server: LoopbackServer) -> None:
    build(server).chat(ChatRequest((Message("user", "Reply in json."),), response_format=ResponseFormat()), timeout=1)
    assert only_request(server).json()["response_format"] == {"type": "json_object"}


def test_chat_returns_the_models_tool_calls(server: LoopbackServer, wire: OpenAIWire) -> None:
    answer = build(server).chat(ASK_TOOL, timeout=1)
    assert answer.tool_calls == tuple(ToolCall(*c) for c in wire.tool_calls)
    assert (answer.text, answer.finish_reason) == ("", "tool_calls")


def test_stream_yields_text_then_one_end_with_usage(server: LoopbackServer, wire: OpenAIWire) -> None:
    events = list(build(server).stream(ASK, timeout=1))
    body = only_request(server).json()
    assert (body["stream"], body["stream_options"]) == (True, {"include_usage": True})
    assert all(isinstance(e, TextDelta) for e in events[:-1]) and len(events) == wire.pieces + 1
    assert text_of(events) == wire.text
    assert events[-1] == StreamEnd("stop", Usage(*wire.usage), wire.model)


def test_stream_yields_tool_call_pieces(server: LoopbackServer, wire: OpenAIWire) -> None:
    events = list(build(server).stream(ASK_TOOL, timeout=1))
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    (call_id, name, arguments) = wire.tool_calls[0]
    assert deltas[0] == ToolCallDelta(0, call_id, name, "")
    assert {d.call for d in deltas} == {0} and "".join(d.arguments for d in deltas) == arguments
    assert events[-1] == StreamEnd("tool_calls", Usage(*wire.usage), wire.model)


def test_async_chat_stream_and_embed_match_sync(server: LoopbackServer) -> None:
    adapter = build(server)
    embed = EmbedRequest(("one", "three"))
    sync = adapter.chat(ASK, timeout=1), list(adapter.stream(ASK_TOOL, timeout=1)), adapter.embed(embed, timeout=1)

    async def calls(a: Adapter) -> tuple[Any, ...]:
        return (
            await a.achat(ASK, timeout=1),
            await collect(a.astream(ASK_TOOL, timeout=1)),
            await a.aembed(embed, timeout=1),
        )

    answer, events, vectors = run_async(adapter, calls)
    assert (answer[:5], events, vectors[:3]) == (sync[0][:5], sync[1], sync[2][:3])
    assert [r.headers["x-stainless-async"] for r in server.requests] == ["false"] * 3 + ["async:asyncio"] * 3
    assert [r.path for r in server.requests[3:]] == ["/v1/chat/completions"] * 2 + ["/v1/embeddings"]


def test_the_async_client_follows_the_event_loop(server: LoopbackServer, wire: OpenAIWire) -> None:
    adapter = build(server)
    for _ in range(2):  # an httpx pool from a finished loop cannot serve the next one
        assert asyncio.run(adapter.achat(ASK, timeout=1)).text == wire.text
    asyncio.run(adapter.aclose())


def test_a_finish_reason_content_filter_is_reported_not_raised(server: LoopbackServer, wire: OpenAIWire) -> None:
    wire.finish_reason = "content_filter"
    adapter = azure(server)
    assert adapter.chat(ASK, timeout=1).finish_reason == "content_filter"
    end = list(adapter.stream(ASK, timeout=1))[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason == "content_filter"


# --- embeddings ------------------------------------------------------------------------------------------------------


def test_openai_embeddings_travel_as_base64_and_come_back_as_floats(server: LoopbackServer, wire: OpenAIWire) -> None:
    texts = ("a", "bb", "ccc")
    answer = build(server).embed(EmbedRequest(texts, dimensions=6), timeout=1)
    body = only_request(server).json()
    assert body == {"model": "gpt-4o-mini", "input": list(texts), "dimensions": 6, "encoding_format": "base64"}
    assert answer.vectors == [vector_for(t, i, 6) for i, t in enumerate(texts)]
    assert all(type(x) is float for v in answer.vectors for x in v)
    assert (answer.usage, answer.model) == (Usage(wire.usage[0], None), wire.model)
    # The answer's JSON as sent: vectors in base64, as asked.
    assert [d["embedding"] for d in answer.raw["data"]] == [float32_base64(v) for v in answer.vectors]


@pytest.mark.parametrize("answered", ["float", "base64"])
def test_compatible_servers_are_asked_for_floats(server: LoopbackServer, wire: OpenAIWire, answered: str) -> None:
    wire.embedding_format = answered  # some servers answer base64 whatever they were asked
    vectors = build(server, "selfhosted.vllm").embed(EmbedRequest(("hello",)), timeout=1).vectors
    assert only_request(server).json()["encoding_format"] == "float"
    assert vectors == [vector_for("hello", 0, 4)]


# --- Responses API ---------------------------------------------------------------------------------------------------


def responses(server: LoopbackServer) -> Adapter:
    return build(server, options=(("api", "responses"),))


def test_responses_api_maps_the_request_and_the_answer(server: LoopbackServer, wire: OpenAIWire) -> None:
    request = ChatRequest(
        messages=(
            Message("system", "Be brief."),
            Message("user", (Text(PROMPT), Image(url="https://img.test/a.jpg"))),
            Message("assistant", "", tool_calls=(ToolCall("call_9", "get_weather", "{}"),)),
            Message("tool", "sunny", tool_call_id="call_9"),
        ),
        tools=(WEATHER,),
        tool_choice="auto",
        temperature=0.5,
        top_p=0.8,
        max_tokens=50,
        response_format=ResponseFormat({"type": "object"}, name="w"),
    )
    answer = responses(server).chat(request, timeout=1)
    sent = only_request(server)
    assert sent.path == "/v1/responses"
    body = sent.json()
    assert body["input"] == [
        {"type": "message", "role": "system", "content": "Be brief."},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": PROMPT},
            {"type": "input_image", "image_url": "https://img.test/a.jpg", "detail": "auto"}]},
        {"type": "function_call", "call_id": "call_9", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_9", "output": "sunny"},
    ]  # fmt: skip
    assert body["tools"] == [{"type": "function", "name": "get_weather", "description": "Weather for a city",
                              "parameters": dict(WEATHER.parameters), "strict": False}]  # fmt: skip
    assert {k: v for k, v in body.items() if k not in ("input", "tools")} == {
        "model": "gpt-4o-mini",
        "store": False,  # nothing kept at the vendor after the call
        "tool_choice": "auto",
        "temperature": 0.5,
        "top_p": 0.8,
        "max_output_tokens": 50,
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
    }
    assert (answer.text, answer.finish_reason, answer.usage) == (wire.text, "stop", Usage(*wire.usage))
    assert Response.model_validate(answer.raw).output_text == wire.text


def test_responses_api_tool_calls_and_incomplete_answers(server: LoopbackServer, wire: OpenAIWire) -> None:
    adapter = responses(server)
    answer = adapter.chat(ASK_TOOL, timeout=1)
    assert (answer.tool_calls, answer.finish_reason) == (tuple(ToolCall(*c) for c in wire.tool_calls), "tool_calls")
    wire.incomplete = "max_output_tokens"
    assert adapter.chat(ASK, timeout=1).finish_reason == "length"
    end = list(adapter.stream(ASK, timeout=1))[-1]
    assert end == StreamEnd("length", Usage(*wire.usage), wire.model)


def test_responses_api_streams_sync_and_async(server: LoopbackServer, wire: OpenAIWire) -> None:
    adapter = responses(server)
    text_events = list(adapter.stream(ASK, timeout=1))
    assert text_of(text_events) == wire.text
    assert text_events[-1] == StreamEnd("stop", Usage(*wire.usage), wire.model)
    tool_events = run_async(adapter, lambda a: collect(a.astream(ASK_TOOL, timeout=1)))
    (call_id, name, arguments) = wire.tool_calls[0]
    deltas = [e for e in tool_events if isinstance(e, ToolCallDelta)]
    assert deltas[0] == ToolCallDelta(0, call_id, name, "") and "".join(d.arguments for d in deltas) == arguments
    assert tool_events[-1] == StreamEnd("tool_calls", Usage(*wire.usage), wire.model)
    assert [r.json()["stream"] for r in server.requests] == [True, True]
    assert all("stream_options" not in r.json() for r in server.requests)


@pytest.mark.parametrize(
    ("then", "drop", "error", "code"),
    [
        (responses_error_event(PROMPT), False, Unavailable, "server_error"),
        (responses_error_event(PROMPT, code="rate_limit_exceeded"), False, RateLimited, "rate_limit_exceeded"),
        (None, False, RateLimited, "rate_limit_exceeded"),  # response.failed, built by the wire app
        (b"", True, ConnectionLost, None),
        (b"", False, ConnectionLost, None),  # ends cleanly, but before response.completed
    ],
)
def test_responses_api_stream_failures(
    server: LoopbackServer, wire: OpenAIWire, then: bytes | None, drop: bool, error: type[VendorError], code: str
) -> None:
    failed = wire.responses_failed_event(PROMPT, code="rate_limit_exceeded")
    server.fail(Cut(after=5, then=failed if then is None else then, drop=drop))
    seen: list[StreamEvent] = []
    with pytest.raises(error) as caught:
        seen.extend(responses(server).stream(ASK, timeout=1))
    assert caught.value.code == code and PROMPT not in str(caught.value)
    assert text_of(seen) == wire.text[: len(text_of(seen))] and seen  # the text before the failure came through
    only_request(server)


# --- Azure OpenAI ----------------------------------------------------------------------------------------------------


def test_azure_sends_the_key_as_api_key_to_the_deployment_path(server: LoopbackServer, wire: OpenAIWire) -> None:
    adapter = azure(server)
    answer = adapter.chat(ASK, timeout=1)
    events = list(adapter.stream(ASK, timeout=1))  # opens with Azure's model-less prompt-filter chunk
    adapter.embed(EmbedRequest(("x",)), timeout=1)
    paths = [r.path for r in server.requests]
    assert paths == ["/openai/deployments/gpt4o-eu/chat/completions"] * 2 + ["/openai/deployments/gpt4o-eu/embeddings"]
    for sent in server.requests:
        assert (sent.query, sent.headers["api-key"]) == ({"api-version": [AZURE_VERSION]}, KEY)
        assert "authorization" not in sent.headers and sent.json()["model"] == "gpt4o-eu"
        assert "max_completion_tokens" not in sent.json()
    assert answer.text == text_of(events) == wire.text
    assert events[-1] == StreamEnd("stop", Usage(*wire.usage), wire.model)


def test_azure_deployment_defaults_to_the_model(server: LoopbackServer) -> None:
    azure(server, deployment=None, model="gpt-4o").chat(ASK, timeout=1)
    assert only_request(server).path == "/openai/deployments/gpt-4o/chat/completions"


def test_azure_entra_id_sends_a_bearer_token_and_no_key(server: LoopbackServer, wire: OpenAIWire) -> None:
    wire.entra, wire.key = True, "eyJ.entra.token"
    adapter = azure(server, options=(("auth", "entra"),), credentials={"azure_ad_token": "eyJ.entra.token"})
    assert adapter.chat(ASK, timeout=1).text == wire.text
    sent = only_request(server)
    assert sent.headers["authorization"] == "Bearer eyJ.entra.token" and "api-key" not in sent.headers


def test_azure_entra_id_token_from_the_environment(
    server: LoopbackServer, wire: OpenAIWire, monkeypatch: pytest.MonkeyPatch
) -> None:
    wire.entra, wire.key = True, "eyJ.env.token"
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", "eyJ.env.token")
    azure(server, options=(("auth", "entra"),), credentials={}).chat(ASK, timeout=1)
    assert only_request(server).headers["authorization"] == "Bearer eyJ.env.token"


def test_azure_reads_its_own_environment(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.url)
    monkeypatch.setenv("OPENAI_API_VERSION", "2025-01-01-preview")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-not-for-azure")
    target = Target("t", "azure.openai", "gpt-4o", deployment="d1")
    adapter = open_adapter(target, AdapterOptions(timeout=1, guard=guarded(target, server)))
    adapter.chat(ASK, timeout=1)
    sent = only_request(server)
    assert (sent.path, sent.query["api-version"], sent.headers["api-key"]) == (
        "/openai/deployments/d1/chat/completions",
        ["2025-01-01-preview"],
        KEY,
    )


@pytest.mark.usefixtures("debug_chain")
def test_azure_content_filter_refusal(server: LoopbackServer) -> None:
    server.fail(Status(400, body=content_filter_body(PROMPT)))
    with pytest.raises(ContentRefused) as caught:
        azure(server).chat(ASK, timeout=1)
    assert (caught.value.status, caught.value.code, caught.value.vendor) == (400, "content_filter", "azure")
    assert PROMPT not in str(caught.value) and isinstance(caught.value.__cause__, openai.BadRequestError)


def test_azure_content_filter_refusal_named_only_in_innererror(server: LoopbackServer) -> None:
    """The refusal is found in ``innererror`` when the top-level code names none."""
    server.fail(Status(400, body=content_filter_body(PROMPT, code=None)))
    with pytest.raises(ContentRefused) as caught:
        azure(server).chat(ASK, timeout=1)
    assert (caught.value.status, caught.value.code, caught.value.kind) == (400, None, "content_refused")


# --- Azure AI Foundry and self-hosted servers ------------------------------------------------------------------------


def test_foundry_uses_the_openai_compatible_endpoint_with_a_bearer_key(
    server: LoopbackServer, wire: OpenAIWire, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-not-for-azure")
    adapter = build(server, "azure.foundry", path="/openai/v1", model="Mistral-Large-2411", credentials={})
    answer = adapter.chat(ChatRequest((Message("user", PROMPT),), max_tokens=20), timeout=1)
    adapter.embed(EmbedRequest(("x",)), timeout=1)
    chat, embed = server.requests
    assert (chat.path, embed.path) == ("/openai/v1/chat/completions", "/openai/v1/embeddings")
    assert {r.headers["authorization"] for r in server.requests} == {f"Bearer {KEY}"}
    assert (chat.json()["model"], chat.json()["max_tokens"], embed.json()["encoding_format"]) == (
        "Mistral-Large-2411",
        20,
        "float",
    )
    assert (answer.text, answer.model) == (wire.text, wire.model)


def test_foundry_entra_id_token(server: LoopbackServer, wire: OpenAIWire) -> None:
    wire.key = "eyJ.foundry.token"
    options = (("auth", "entra"),)
    adapter = build(
        server,
        "azure.foundry",
        path="/openai/v1",
        model="Mistral-Large-2411",  # Foundry's catalogue serves partner models
        credentials={"azure_ad_token": wire.key},
        options=options,
    )
    assert list(adapter.stream(ASK, timeout=1))[-1] == StreamEnd("stop", Usage(*wire.usage), wire.model)
    assert only_request(server).headers["authorization"] == "Bearer eyJ.foundry.token"


def test_self_hosted_servers_never_get_the_openai_key(
    server: LoopbackServer, wire: OpenAIWire, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key")
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", "Authorization: Bearer sk-real-openai-key\nX-Team: search")
    wire.key = "unused"
    adapter = build(server, "selfhosted.ollama", credentials={})
    assert adapter.chat(ASK, timeout=1).text == wire.text
    list(adapter.stream(ASK, timeout=1))
    adapter.embed(EmbedRequest(("x",)), timeout=1)
    for sent in server.requests:
        assert sent.headers["authorization"] == "Bearer unused"
        assert "sk-real-openai-key" not in json.dumps(sent.headers)
        assert sent.headers["x-team"] == "search"  # the rest of OPENAI_CUSTOM_HEADERS still applies


def test_self_hosted_key_from_credentials(server: LoopbackServer, wire: OpenAIWire) -> None:
    wire.key = "local-key"
    adapter = build(server, "selfhosted.openai_compatible", credentials={"api_key": "local-key"})
    adapter.chat(ChatRequest((Message("user", PROMPT),), max_tokens=5), timeout=1)
    sent = only_request(server)
    assert sent.headers["authorization"] == "Bearer local-key" and sent.json()["max_tokens"] == 5


# --- errors ----------------------------------------------------------------------------------------------------------


def _sync(op: str) -> Callable[[Adapter], object]:
    return {
        "chat": lambda a: a.chat(ASK, timeout=0.3),
        "stream": lambda a: list(a.stream(ASK, timeout=0.3)),
        "embed": lambda a: a.embed(EmbedRequest((PROMPT,)), timeout=0.3),
    }[op]


def _async(op: str) -> Callable[[Adapter], object]:
    calls: dict[str, Callable[[Adapter], Any]] = {
        "chat": lambda a: a.achat(ASK, timeout=0.3),
        "stream": lambda a: collect(a.astream(ASK, timeout=0.3)),
        "embed": lambda a: a.aembed(EmbedRequest((PROMPT,)), timeout=0.3),
    }
    return lambda a: asyncio.run(calls[op](a))  # the adapter makes a new async client for each new event loop


@pytest.fixture(scope="module")
def shared(_running: LoopbackServer) -> Iterator[Adapter]:
    """One plain OpenAI adapter for the many error cases: building an SDK client costs tens of ms (TLS setup)."""
    adapter = build(_running)
    bound.set(None)  # an OpenAI model on a declared endpoint needs no bound attempt; none may outlive the module
    yield adapter
    adapter.close()


ERRORS: list[tuple[Fault, type[VendorError], int | None, str | None, float | None]] = [
    (Status(429, {"retry-after-ms": "250"}, error_body(PROMPT, type="requests", code="rate_limit_exceeded")),
     RateLimited, 429, "rate_limit_exceeded", 0.25),
    (Status(429, {"Retry-After": "3"}, error_body(PROMPT, type="insufficient_quota")),
     RateLimited, 429, "insufficient_quota", 3.0),
    (Status(500, body=error_body(PROMPT, type="server_error")), Unavailable, 500, "server_error", None),
    (Status(503, {"Retry-After": "1"}, error_body(PROMPT, type="overloaded")), Unavailable, 503, "overloaded", 1.0),
    (Status(400, body=error_body(PROMPT, code="context_length_exceeded")),
     BadRequest, 400, "context_length_exceeded", None),
    (Status(401, body=error_body(PROMPT, code="invalid_api_key")), AuthFailed, 401, "invalid_api_key", None),
    (Status(403, body=error_body(PROMPT, code="unsupported_country_region_territory")),
     AuthFailed, 403, "unsupported_country_region_territory", None),
    (Status(404, body=error_body(PROMPT, code="model_not_found")), NotFound, 404, "model_not_found", None),
    (Status(502, body=b"<html>bad gateway</html>"), Unavailable, 502, None, None),
    (Delay(2.0), VendorTimeout, None, None, None),
    (Reset(), ConnectionLost, None, None, None),
]  # fmt: skip


@pytest.mark.usefixtures("debug_chain")
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("op", ["chat", "stream", "embed"])
@pytest.mark.parametrize(("fault", "error", "status", "code", "wait"), ERRORS)
def test_every_vendor_failure_is_one_privsdk_error_without_vendor_text(
    server: LoopbackServer,
    shared: Adapter,
    mode: str,
    op: str,
    fault: Fault,
    error: type[VendorError],
    status: int | None,
    code: str | None,
    wait: float | None,
) -> None:
    server.fail(fault)
    call = (_sync if mode == "sync" else _async)(op)
    with pytest.raises(error) as caught:
        call(shared)
    raised = caught.value
    assert type(raised) is error and (raised.vendor, raised.status, raised.code, raised.retry_after) == (
        "openai",
        status,
        code,
        wait,
    )
    assert PROMPT not in str(raised) and isinstance(raised.__cause__, openai.OpenAIError)
    only_request(server)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    ("then", "drop", "error", "code"),
    [
        (b"", True, ConnectionLost, None),  # the connection drops mid-body
        (b"", False, ConnectionLost, None),  # the body ends cleanly but before the finish reason
        (stream_error_chunk(PROMPT), False, Unavailable, "server_error"),
        (stream_error_chunk(PROMPT, type="tokens", code="rate_limit_exceeded"), False, RateLimited,
         "rate_limit_exceeded"),
        (stream_error_chunk(PROMPT, type="invalid_request_error", code="content_filter"), False, ContentRefused,
         "content_filter"),
    ],
)  # fmt: skip
def test_a_stream_that_breaks_after_some_text(
    server: LoopbackServer,
    wire: OpenAIWire,
    mode: str,
    then: bytes,
    drop: bool,
    error: type[VendorError],
    code: str | None,
) -> None:
    server.fail(Cut(after=3, then=then, drop=drop))
    seen: list[StreamEvent] = []

    async def consume(a: Adapter) -> None:
        async for event in a.astream(ASK, timeout=1):
            seen.append(event)

    adapter = build(server)
    with pytest.raises(error) as caught:
        if mode == "sync":
            seen.extend(adapter.stream(ASK, timeout=1))
        else:
            run_async(adapter, consume)
    assert text_of(seen) == wire.text[: len(text_of(seen))] and len(seen) == 2  # the role-only chunk yields nothing
    assert caught.value.code == code and PROMPT not in str(caught.value)
    only_request(server)


# --- what the adapter refuses before any network ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offering", "call"),
    [
        ("openai.api", lambda a: a.rerank(RerankRequest("q", ("d",)), timeout=1)),
        ("openai.api", lambda a: asyncio.run(a.arerank(RerankRequest("q", ("d",)), timeout=1))),
        ("selfhosted.vllm", lambda a: a.embed(EmbedRequest(("x",), input_type="search_query"), timeout=1)),
        (
            "openai.api",
            lambda a: a.chat(ChatRequest((Message("system", (Image(url="https://i.test/x.png"),)),)), timeout=1),
        ),
        ("responses", lambda a: a.chat(ChatRequest((Message("user", "x"),), stop=("END",)), timeout=1)),
        ("responses", lambda a: list(a.stream(ChatRequest((Message("user", "x"),), seed=3), timeout=1))),
    ],
)
def test_what_the_target_cannot_take_raises_unsupported_before_any_request(
    server: LoopbackServer, offering: str, call: Callable[[Adapter], object]
) -> None:
    adapter = responses(server) if offering == "responses" else build(server, offering)
    with pytest.raises(Unsupported, match=r"t \("):
        call(adapter)
    assert server.requests == []


# --- the wire app itself ---------------------------------------------------------------------------------------------


def test_the_wire_app_answers_pass_the_sdks_strict_validation(server: LoopbackServer) -> None:
    """Every answer shape has all the fields the SDK's strict mode requires (base64 vectors aside: the SDK's
    types declare floats only, and decode base64 after validation)."""
    client = openai.OpenAI(api_key=KEY, base_url=server.url + "/v1", max_retries=0, _strict_response_validation=True)
    messages: list[Any] = [{"role": "user", "content": PROMPT}]
    fn_tool: Any = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    resp_tool: Any = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": False}
    assert client.chat.completions.create(model="m", messages=messages).choices[0].message.content
    assert client.chat.completions.create(model="m", messages=messages, tools=[fn_tool]).choices[0].message.tool_calls
    for tools in ([], [fn_tool]):
        chunks = client.chat.completions.create(
            model="m",
            messages=messages,
            tools=tools or openai.omit,
            stream=True,
            stream_options={"include_usage": True},
        )
        assert list(chunks)[-1].usage is not None
    assert client.embeddings.create(model="e", input=["a"], encoding_format="float").data[0].embedding
    assert client.responses.create(model="m", input=PROMPT).output_text
    for tools in ([], [resp_tool]):
        events = list(client.responses.create(model="m", input=PROMPT, tools=tools, stream=True))
        assert events[-1].type == "response.completed"
    client.close()


# --- the guard ------------------------------------------------------------------------------------------------------


def _zdr_guard(server: LoopbackServer, target: Target) -> Guard:
    guard = Guard(
        environ={"PRIVSDK_ENDPOINTS": f"{server.url}=openai.api", "PRIVSDK_USAGE": "none", "PRIVSDK_REQUIRE": "zdr"}
    )
    assert guard.policy.default_tenant is not None  # an environment-only policy has its default tenant
    tenant = guard.policy.tenants[guard.policy.default_tenant]
    bound.set(Binding(target, tenant.name, tenant.default_class))
    return guard


@pytest.mark.parametrize("instrumented", [False, True], ids=["plain", "instrumented"])
def test_the_adapters_sdk_clients_send_through_the_clients_guard(server: LoopbackServer, instrumented: bool) -> None:
    """privsdk.Client's requests pass the guard it gives the adapter: a refusal is the guard's own PolicyViolation,
    not a vendor error, and nothing is sent; also when instrument() guards every new openai client."""
    from privsdk_openai import dropin

    target = Target("t", "openai.api", "gpt-4o-mini", endpoint=f"{server.url}/v1")
    if instrumented:
        dropin.instrument()
    try:
        adapter = open_adapter(
            target, AdapterOptions(timeout=2.0, credentials={"api_key": KEY}, guard=_zdr_guard(server, target))
        )
        calls: list[Callable[[], object]] = [
            lambda: adapter.chat(ASK, timeout=1),
            lambda: list(adapter.stream(ASK, timeout=1)),
            lambda: adapter.embed(EmbedRequest(("a",)), timeout=1),
            lambda: run_async(adapter, lambda a: a.achat(ASK, timeout=1)),
        ]
        for call in calls:
            with pytest.raises(PolicyViolation) as caught:
                call()
            assert not isinstance(caught.value, VendorError) and "zdr" in str(caught.value)
    finally:
        dropin.uninstrument()
    assert server.requests == []
