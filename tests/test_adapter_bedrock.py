"""The Bedrock adapter driving real boto3 over real HTTP against a loopback Bedrock runtime (tests/wire/bedrock.py)."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import privsdk_bedrock
import pytest
from privsdk_bedrock.clients import timeout_key

from privsdk.adapter import Adapter, AdapterOptions, open_adapter
from privsdk.errors import (
    AuthFailed,
    BadRequest,
    ConfigError,
    ConnectionLost,
    NotFound,
    RateLimited,
    Unavailable,
    Unsupported,
    VendorError,
    VendorTimeout,
)
from privsdk.outbound.judge import Guard
from privsdk.policy import Target
from privsdk.types import (
    ChatRequest,
    EmbedRequest,
    Image,
    Message,
    Ranked,
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
from tests.wire.bedrock import BedrockWire, error, exception_frame, frame, sigv4
from tests.wire.server import Cut, Delay, LoopbackServer, Reset, tls_context

CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
EU_PROFILE = "eu.anthropic.claude-3-7-sonnet-20250219-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"
COHERE_EMBED = "cohere.embed-multilingual-v3"
COHERE_RERANK = "cohere.rerank-v3-5:0"
KEYS = {"aws_access_key_id": "AKIDFAKE", "aws_secret_access_key": "fake-secret"}
PROMPT = "my secret diagnosis is flu"
HELLO = ChatRequest((Message("user", PROMPT),))
WEATHER = Tool("weather", "Weather in a city", {"type": "object", "properties": {"city": {"type": "string"}}})
PNG = b"\x89PNG\r\n\x1a\nfake"

Make = Callable[..., Adapter]


#: boto3 must see none of the machine's AWS configuration (tests.conftest.no_machine_aws).
pytestmark = pytest.mark.usefixtures("no_machine_aws")


@pytest.fixture(scope="module")
def _running() -> Iterator[tuple[BedrockWire, LoopbackServer]]:
    """One server for the module (stopping one takes half a second); each test gets it reset."""
    app = BedrockWire()
    with LoopbackServer(app) as running:
        yield app, running


@pytest.fixture
def wire(_running: tuple[BedrockWire, LoopbackServer]) -> BedrockWire:
    return _running[0]


def declare(monkeypatch: pytest.MonkeyPatch, *servers: LoopbackServer) -> None:
    """The adapter's clients are guarded: the loopback servers are declared as Bedrock endpoints, no records kept."""
    monkeypatch.setenv("PRIVSDK_ENDPOINTS", ",".join(f"{s.url}=bedrock.runtime" for s in servers))
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    Guard.reset_default()


@pytest.fixture
def server(_running: tuple[BedrockWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    app, running = _running
    declare(monkeypatch, running)
    app.stop_reason = None
    running.requests.clear()
    while running.next_fault() is not None:
        pass
    yield running
    assert running.errors == []


@pytest.fixture
def make(server: LoopbackServer) -> Iterator[Make]:
    """Build an adapter through the entry point, for ``model`` on the loopback server."""
    made: list[Adapter] = []

    def build(
        model: str = CLAUDE, *, timeout: float = 5.0, credentials: dict[str, str] = KEYS, **fields: Any
    ) -> Adapter:
        fields = {"endpoint": server.url, "region": "eu-central-1", **fields}
        adapter = open_adapter(
            Target("bedrock-test", "bedrock.runtime", model, **fields), AdapterOptions(timeout, credentials)
        )
        made.append(adapter)
        return adapter

    yield build
    for adapter in made:
        adapter.close()


def _text(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# -- construction -------------------------------------------------------------------------------------------------


def test_importing_and_building_an_adapter_loads_no_sdk() -> None:
    code = (
        "import sys, privsdk_bedrock\n"
        "from privsdk.adapter import open_adapter\n"
        "from privsdk.policy import Target\n"
        "a = open_adapter(Target('t', 'bedrock.runtime', 'anthropic.claude-3-haiku', region='eu-west-1',"
        " endpoint='http://127.0.0.1:9'))\n"
        "print(sorted(a.operations), sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "['chat', 'stream'] []"


def test_building_sends_nothing_and_each_model_family_says_what_it_can(make: Make, server: LoopbackServer) -> None:
    assert make(CLAUDE).operations == {"chat", "stream"}
    assert make(EU_PROFILE).operations == {"chat", "stream"}
    assert make(TITAN).operations == {"embed"}
    assert make("us." + COHERE_EMBED).operations == {"embed"}
    assert make(COHERE_RERANK).operations == {"rerank"}
    assert server.requests == []


def test_a_missing_region_is_a_config_error_naming_the_key(server: LoopbackServer) -> None:
    with pytest.raises(ConfigError) as caught:
        open_adapter(Target("eu-claude", "bedrock.runtime", CLAUDE, endpoint=server.url), AdapterOptions(1.0, KEYS))
    assert caught.value.where == "targets.eu-claude.region"
    assert "AWS_REGION" in str(caught.value)


@pytest.mark.parametrize("variable", ["AWS_REGION", "AWS_DEFAULT_REGION"])
def test_the_region_can_come_from_the_environment(
    make: Make, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "us-west-2")
    make(region=None).chat(HELLO, timeout=2)
    assert sigv4(server.requests[0].headers)["region"] == "us-west-2"


@pytest.mark.parametrize(
    ("credentials", "endpoint"),
    [
        ({"api_key": "x"}, None),
        ({"aws_access_key_id": "AKIDFAKE"}, None),
        ({"aws_session_token": "t"}, None),
        ({**KEYS, "bearer_token": "k"}, None),
        ({"bearer_token": "k"}, "http://127.0.0.1:9"),
    ],
)
def test_credentials_botocore_would_reject_or_ignore_are_config_errors(
    credentials: dict[str, str], endpoint: str | None
) -> None:
    target = Target("t", "bedrock.runtime", CLAUDE, region="eu-west-1", endpoint=endpoint)
    with pytest.raises(ConfigError):
        open_adapter(target, AdapterOptions(1.0, credentials))


def test_another_vendors_offering_is_refused() -> None:
    target = Target("t", "cohere.bedrock", "cohere.command-r-v1:0", region="eu-west-1")
    with pytest.raises(ConfigError, match="privsdk's cohere adapter"):
        privsdk_bedrock.adapter(target, AdapterOptions())


# -- chat ---------------------------------------------------------------------------------------------------------


def test_chat_sends_a_converse_request_and_maps_the_answer(make: Make, server: LoopbackServer) -> None:
    request = ChatRequest(
        (
            Message("system", "Answer briefly."),
            Message("user", (Text("What is the weather in this picture's city?"), Image(PNG, media_type="image/png"))),
            Message("assistant", "", tool_calls=(ToolCall("tooluse_9", "weather", '{"city": "Paris"}'),)),
            Message("tool", "18 C and sunny", tool_call_id="tooluse_9"),
            Message("user", "And tomorrow?"),
        ),
        tools=(WEATHER,),
        tool_choice="auto",
        temperature=0.2,
        top_p=0.9,
        max_tokens=64,
        stop=("END",),
    )
    response = make().chat(request, timeout=2)

    (sent,) = server.requests
    assert sent.path == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    assert sigv4(sent.headers)["key"] == "AKIDFAKE"
    assert sigv4(sent.headers)["region"] == "eu-central-1"
    assert sent.json() == {
        "system": [{"text": "Answer briefly."}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "What is the weather in this picture's city?"},
                    {"image": {"format": "png", "source": {"bytes": base64.b64encode(PNG).decode()}}},
                ],
            },
            {
                "role": "assistant",
                "content": [{"toolUse": {"toolUseId": "tooluse_9", "name": "weather", "input": {"city": "Paris"}}}],
            },
            {
                "role": "user",
                "content": [
                    {"toolResult": {"toolUseId": "tooluse_9", "content": [{"text": "18 C and sunny"}]}},
                    {"text": "And tomorrow?"},
                ],
            },
        ],
        "inferenceConfig": {"maxTokens": 64, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "weather",
                        "description": "Weather in a city",
                        "inputSchema": {"json": dict(WEATHER.parameters)},
                    }
                }
            ],
            "toolChoice": {"auto": {}},
        },
    }
    assert response.text == "Tool said: 18 C and sunny"
    assert (response.tool_calls, response.finish_reason, response.model) == ((), "stop", CLAUDE)
    # The wire counts words: 2 system + 8 + 4 tool result + 2 in, 6 out.
    assert response.usage == Usage(input_tokens=16, output_tokens=6)
    assert response.raw["usage"]["totalTokens"] == 22


def test_a_tool_call_comes_back_as_a_tool_call(make: Make, server: LoopbackServer) -> None:
    request = ChatRequest((Message("user", "weather in Oslo"),), tools=(WEATHER,), tool_choice="required")
    response = make().chat(request, timeout=2)
    assert server.requests[0].json()["toolConfig"]["toolChoice"] == {"any": {}}
    assert response.finish_reason == "tool_calls"
    assert response.text == "Calling a tool."
    (call,) = response.tool_calls
    assert (call.id, call.name, json.loads(call.arguments)) == ("tooluse_1", "weather", {"q": "weather in Oslo"})


def test_tool_choice_none_offers_no_tools_and_cannot_follow_tool_turns(make: Make, server: LoopbackServer) -> None:
    adapter = make()
    response = adapter.chat(ChatRequest((Message("user", "hi"),), tools=(WEATHER,), tool_choice="none"), timeout=2)
    assert "toolConfig" not in server.requests[0].json()
    assert (response.text, response.finish_reason) == ("You said: hi", "stop")
    after_tools = (
        Message("user", "hi"),
        Message("assistant", "", tool_calls=(ToolCall("t1", "weather", "{}"),)),
        Message("tool", "sunny", tool_call_id="t1"),
    )
    with pytest.raises(Unsupported):
        adapter.chat(ChatRequest(after_tools, tools=(WEATHER,), tool_choice="none"), timeout=2)
    assert len(server.requests) == 1


def test_a_response_format_schema_becomes_converse_structured_output(make: Make, server: LoopbackServer) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    make().chat(HELLO._replace(response_format=ResponseFormat(schema, name="place")), timeout=2)
    text_format = server.requests[0].json()["outputConfig"]["textFormat"]
    assert text_format["type"] == "json_schema"
    assert text_format["structure"]["jsonSchema"]["name"] == "place"
    assert json.loads(text_format["structure"]["jsonSchema"]["schema"]) == schema


@pytest.mark.parametrize(
    "request_",
    [
        HELLO._replace(seed=7),
        HELLO._replace(response_format=ResponseFormat()),
        ChatRequest((Message("user", (Image(url="https://example.com/a.png"),)),)),
        ChatRequest((Message("user", (Image(PNG, media_type="image/bmp"),)),)),
        ChatRequest((Message("system", (Image(PNG),)), Message("user", "hi"))),
    ],
    ids=["seed", "json-without-schema", "web-image-url", "bmp-image", "system-image"],
)
def test_fields_converse_cannot_take_raise_before_network(
    make: Make, server: LoopbackServer, request_: ChatRequest
) -> None:
    adapter = make()
    with pytest.raises(Unsupported):
        adapter.chat(request_, timeout=2)
    with pytest.raises(Unsupported):
        adapter.stream(request_, timeout=2)
    assert server.requests == []


def test_an_s3_image_and_extra_fields_reach_converse(make: Make, server: LoopbackServer) -> None:
    request = ChatRequest(
        (Message("user", (Text("describe"), Image(url="s3://bucket/cat.jpeg", media_type="image/jpeg"))),),
        extra={"additionalModelRequestFields": {"top_k": 5}, "requestMetadata": {"team": "search"}},
    )
    make().chat(request, timeout=2)
    body = server.requests[0].json()
    assert body["messages"][0]["content"][1] == {
        "image": {"format": "jpeg", "source": {"s3Location": {"uri": "s3://bucket/cat.jpeg"}}}
    }
    assert body["additionalModelRequestFields"] == {"top_k": 5}
    assert body["requestMetadata"] == {"team": "search"}


@pytest.mark.parametrize("model", [EU_PROFILE, "global.anthropic.claude-sonnet-4-20250514-v1:0"])
def test_an_inference_profile_id_reaches_the_path_url_encoded(make: Make, server: LoopbackServer, model: str) -> None:
    adapter = make(model)
    assert adapter.chat(HELLO, timeout=2).model == model
    list(adapter.stream(HELLO, timeout=2))
    encoded = model.replace(":", "%3A")
    assert [r.path for r in server.requests] == [f"/model/{encoded}/converse", f"/model/{encoded}/converse-stream"]
    assert {sigv4(r.headers)["region"] for r in server.requests} == {"eu-central-1"}


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("malformed_tool_use", "error"),
    ],
)
def test_stop_reasons_become_finish_reasons(make: Make, wire: BedrockWire, stop_reason: str, finish: str) -> None:
    wire.stop_reason = stop_reason
    adapter = make()
    assert adapter.chat(HELLO, timeout=2).finish_reason == finish
    end = list(adapter.stream(HELLO, timeout=2))[-1]
    assert isinstance(end, StreamEnd)
    assert end.finish_reason == finish


# -- stream -------------------------------------------------------------------------------------------------------


def test_stream_yields_text_then_one_end_with_usage(make: Make, server: LoopbackServer) -> None:
    events = list(make().stream(HELLO, timeout=2))
    (sent,) = server.requests
    assert sent.path == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream"
    assert sent.json()["messages"] == [{"role": "user", "content": [{"text": PROMPT}]}]
    assert _text(events) == "You said: " + PROMPT
    assert all(isinstance(e, TextDelta) for e in events[:-1]) and len(events) == 8
    assert events[-1] == StreamEnd("stop", Usage(input_tokens=5, output_tokens=7), CLAUDE)


def test_stream_sends_nothing_until_iterated(make: Make, server: LoopbackServer) -> None:
    events = make().stream(HELLO, timeout=2)
    assert server.requests == []
    assert isinstance(next(events), TextDelta)
    assert len(server.requests) == 1


def test_a_streamed_tool_call_arrives_in_pieces(make: Make) -> None:
    request = ChatRequest((Message("user", "weather in Oslo"),), tools=(WEATHER,))
    events = list(make().stream(request, timeout=2))
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    assert calls[0] == ToolCallDelta(0, id="tooluse_1", name="weather")
    assert {c.call for c in calls} == {0}
    assert json.loads("".join(c.arguments for c in calls)) == {"q": "weather in Oslo"}
    assert _text(events) == "Calling a tool."
    assert events[-1] == StreamEnd("tool_calls", Usage(input_tokens=3, output_tokens=3), CLAUDE)


# -- embed and rerank ---------------------------------------------------------------------------------------------


def test_titan_embeds_one_text_per_request(make: Make, server: LoopbackServer) -> None:
    request = EmbedRequest(("alpha beta", "gamma"), dimensions=256, extra={"normalize": True})
    response = make(TITAN).embed(request, timeout=2)
    assert [r.path for r in server.requests] == ["/model/amazon.titan-embed-text-v2%3A0/invoke"] * 2
    assert [r.json() for r in server.requests] == [
        {"inputText": "alpha beta", "dimensions": 256, "normalize": True},
        {"inputText": "gamma", "dimensions": 256, "normalize": True},
    ]
    assert [len(v) for v in response.vectors] == [256, 256]
    assert response.vectors[0] != response.vectors[1]
    assert response.usage == Usage(input_tokens=3)
    assert (response.model, len(response.raw)) == (TITAN, 2)


def test_cohere_embeds_all_texts_in_one_request(make: Make, server: LoopbackServer) -> None:
    response = make(COHERE_EMBED).embed(EmbedRequest(("one two", "three"), input_type="search_query"), timeout=2)
    (sent,) = server.requests
    assert sent.json() == {"texts": ["one two", "three"], "input_type": "search_query", "embedding_types": ["float"]}
    assert (sent.headers["content-type"], sent.headers["accept"]) == ("application/json", "application/json")
    assert len(response.vectors) == 2 and response.vectors[0] != response.vectors[1]
    assert response.usage == Usage(input_tokens=3)


def test_cohere_embed_defaults_the_input_type_and_v4_takes_dimensions(make: Make, server: LoopbackServer) -> None:
    make("cohere.embed-v4:0").embed(EmbedRequest(("a",), dimensions=256), timeout=2)
    assert server.requests[0].json() == {
        "texts": ["a"],
        "input_type": "search_document",
        "embedding_types": ["float"],
        "output_dimension": 256,
    }


@pytest.mark.parametrize("model", ["amazon.titan-embed-text-v1", COHERE_EMBED])
def test_dimensions_on_a_fixed_size_model_raise_before_network(make: Make, server: LoopbackServer, model: str) -> None:
    with pytest.raises(Unsupported):
        make(model).embed(EmbedRequest(("a",), dimensions=256), timeout=2)
    assert server.requests == []


def test_cohere_rerank_through_invoke_model(make: Make, server: LoopbackServer) -> None:
    documents = ("paris is in france", "berlin is big", "the capital of france is paris")
    response = make(COHERE_RERANK).rerank(RerankRequest("capital of france", documents, top_n=2), timeout=2)
    (sent,) = server.requests
    assert sent.path == "/model/cohere.rerank-v3-5%3A0/invoke"
    assert sent.json() == {"query": "capital of france", "documents": list(documents), "top_n": 2, "api_version": 2}
    assert response.results == [Ranked(2, 1.0), Ranked(0, 1 / 3)]
    assert response.usage == Usage(input_tokens=3)


@pytest.mark.parametrize(
    ("model", "call"),
    [
        (CLAUDE, lambda a: a.embed(EmbedRequest(("a",)), timeout=2)),
        (CLAUDE, lambda a: a.rerank(RerankRequest("q", ("d",)), timeout=2)),
        (TITAN, lambda a: a.chat(HELLO, timeout=2)),
        (TITAN, lambda a: a.stream(HELLO, timeout=2)),
        (COHERE_RERANK, lambda a: a.embed(EmbedRequest(("a",)), timeout=2)),
        ("amazon.nova-2-multimodal-embeddings-v1:0", lambda a: a.embed(EmbedRequest(("a",)), timeout=2)),
    ],
    ids=["claude-embed", "claude-rerank", "titan-chat", "titan-stream", "rerank-embed", "unknown-embed-family"],
)
def test_an_operation_the_model_cannot_do_raises_before_network(
    make: Make, server: LoopbackServer, model: str, call: Callable[[Adapter], object]
) -> None:
    with pytest.raises(Unsupported):
        call(make(model))
    assert server.requests == []


# -- async --------------------------------------------------------------------------------------------------------


def test_async_calls_run_the_sdk_in_threads(make: Make, server: LoopbackServer) -> None:
    claude, titan, rerank = make(), make(TITAN), make(COHERE_RERANK)

    async def run() -> tuple[Any, ...]:
        chat = await claude.achat(HELLO, timeout=2)
        events = [e async for e in claude.astream(HELLO, timeout=2)]
        embedded = await titan.aembed(EmbedRequest(("x y",)), timeout=2)
        ranked = await rerank.arerank(RerankRequest("x", ("x", "y")), timeout=2)
        return chat, events, embedded, ranked

    chat, events, embedded, ranked = asyncio.run(run())
    assert chat.text == _text(events) == "You said: " + PROMPT
    assert events[-1] == StreamEnd("stop", chat.usage, CLAUDE)
    assert embedded.usage == Usage(input_tokens=2) and len(embedded.vectors[0]) == 1024
    assert [r.document for r in ranked.results] == [0, 1]
    assert [r.path.rsplit("/", 1)[1] for r in server.requests] == ["converse", "converse-stream", "invoke", "invoke"]


def _stream_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "privsdk-bedrock-stream"]


def _wait_for_stream_threads_to_end(before: set[threading.Thread]) -> None:
    """Stream threads started since ``before`` end soon (those of earlier tests may still wait on a Delay)."""
    deadline = time.monotonic() + 3
    while set(_stream_threads()) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(_stream_threads()) - before == set()


def test_closing_an_async_stream_early_closes_the_http_stream(make: Make, server: LoopbackServer) -> None:
    adapter = make()
    before = set(_stream_threads())

    async def first_then_close() -> StreamEvent:
        events = adapter.astream(HELLO, timeout=2)
        first = await anext(events)
        await events.aclose()  # type: ignore[attr-defined]
        return first

    assert isinstance(asyncio.run(first_then_close()), TextDelta)
    _wait_for_stream_threads_to_end(before)
    assert adapter.chat(HELLO, timeout=2).text == "You said: " + PROMPT
    assert len(server.requests) == 2


def test_cancelling_an_async_stream_does_not_wait_for_the_server(make: Make, server: LoopbackServer) -> None:
    adapter = make()
    adapter.chat(HELLO, timeout=2)  # the client exists, so the stream's request goes out at once
    server.fail(Delay(2))

    async def wait_briefly() -> None:
        await asyncio.wait_for(anext(adapter.astream(HELLO, timeout=5)), 0.3)

    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(wait_briefly())
    assert time.monotonic() - started < 1.0
    assert [r.path.rsplit("/", 1)[1] for r in server.requests] == ["converse", "converse-stream"]


def test_an_async_stream_error_reaches_the_awaiting_task(make: Make, server: LoopbackServer) -> None:
    server.fail(error(429, "ThrottlingException", PROMPT))
    before = set(_stream_threads())

    async def consume() -> list[StreamEvent]:
        return [e async for e in make().astream(HELLO, timeout=2)]

    with pytest.raises(RateLimited):
        asyncio.run(consume())
    _wait_for_stream_threads_to_end(before)


# -- errors -------------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("debug_chain")
@pytest.mark.parametrize(
    ("status", "error_type", "headers", "expected", "after"),
    [
        (429, "ThrottlingException", {"x-amz-retry-after": "1500"}, RateLimited, 1.5),
        (429, "ThrottlingException", {}, RateLimited, None),
        (400, "ServiceQuotaExceededException", {}, RateLimited, None),
        (503, "ServiceUnavailableException", {}, Unavailable, None),
        (500, "InternalServerException", {}, Unavailable, None),
        (429, "ModelNotReadyException", {}, Unavailable, None),
        (424, "ModelErrorException", {}, Unavailable, None),
        (408, "ModelTimeoutException", {}, VendorTimeout, None),
        (400, "ValidationException", {}, BadRequest, None),
        (403, "AccessDeniedException", {}, AuthFailed, None),
        (403, "UnrecognizedClientException", {}, AuthFailed, None),
        (404, "ResourceNotFoundException", {}, NotFound, None),
        (502, None, {}, Unavailable, None),
        (401, None, {}, AuthFailed, None),
    ],
)
def test_vendor_errors_are_classified_by_code_then_status(
    make: Make,
    server: LoopbackServer,
    status: int,
    error_type: str | None,
    headers: dict[str, str],
    expected: type[VendorError],
    after: float | None,
) -> None:
    server.fail(error(status, error_type, f"Malformed input: {PROMPT}", headers))
    with pytest.raises(VendorError) as caught:
        make().chat(HELLO, timeout=2)
    assert type(caught.value) is expected
    assert (caught.value.vendor, caught.value.status, caught.value.retry_after) == ("bedrock", status, after)
    assert caught.value.code == error_type
    assert PROMPT not in str(caught.value) and "Malformed" not in str(caught.value)
    assert type(caught.value.__cause__).__name__ in {error_type, "ClientError"}
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("model", "call"),
    [
        (CLAUDE, lambda a: list(a.stream(HELLO, timeout=2))),
        (TITAN, lambda a: a.embed(EmbedRequest(("a",)), timeout=2)),
        (COHERE_RERANK, lambda a: a.rerank(RerankRequest("q", ("d",)), timeout=2)),
    ],
    ids=["stream", "embed", "rerank"],
)
def test_every_operation_classifies_errors(
    make: Make, server: LoopbackServer, model: str, call: Callable[[Adapter], object]
) -> None:
    server.fail(error(429, "ThrottlingException", PROMPT, {"x-amz-retry-after": "250"}))
    with pytest.raises(RateLimited) as caught:
        call(make(model))
    assert (caught.value.code, caught.value.retry_after) == ("ThrottlingException", 0.25)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("model", "call"),
    [
        (CLAUDE, lambda a: a.chat(HELLO, timeout=0.3)),
        (CLAUDE, lambda a: list(a.stream(HELLO, timeout=0.3))),
        (TITAN, lambda a: a.embed(EmbedRequest(("a",)), timeout=0.3)),
    ],
    ids=["chat", "stream", "embed"],
)
def test_the_call_timeout_bounds_a_slow_answer(
    make: Make, server: LoopbackServer, model: str, call: Callable[[Adapter], object]
) -> None:
    server.fail(Delay(2))
    adapter = make(model, timeout=30.0)  # the adapter's default is long: the call's own timeout must win
    started = time.monotonic()
    with pytest.raises(VendorTimeout):
        call(adapter)
    assert time.monotonic() - started < 1.5
    assert len(server.requests) == 1


def test_calls_with_many_different_timeouts_each_send_one_request(make: Make, server: LoopbackServer) -> None:
    adapter = make()
    timeouts = [2.0 + i / 10 for i in range(12)]  # more distinct timeouts than clients kept
    assert {adapter.chat(HELLO, timeout=t).finish_reason for t in timeouts} == {"stop"}
    assert len(server.requests) == len(timeouts)
    assert timeout_key(59.873) == 60.0 and timeout_key(0.3) == 0.3


def test_a_spent_budget_sends_nothing(make: Make, server: LoopbackServer) -> None:
    with pytest.raises(VendorTimeout):
        make().chat(HELLO, timeout=0)
    assert server.requests == []


@pytest.mark.parametrize("op", ["chat", "stream"])
def test_a_reset_connection_is_connection_lost(make: Make, server: LoopbackServer, op: str) -> None:
    server.fail(Reset())
    adapter = make()
    with pytest.raises(ConnectionLost):
        adapter.chat(HELLO, timeout=2) if op == "chat" else list(adapter.stream(HELLO, timeout=2))
    assert len(server.requests) == 1


@pytest.mark.parametrize("drop", [True, False], ids=["connection-dropped", "stream-ended-early"])
def test_a_stream_cut_midway_is_connection_lost_after_the_events_that_came(
    make: Make, server: LoopbackServer, drop: bool
) -> None:
    server.fail(Cut(after=4, drop=drop))
    received: list[StreamEvent] = []
    with pytest.raises(ConnectionLost):
        for event in make().stream(HELLO, timeout=2):
            received.append(event)
    assert _text(received) == "You said: my "


@pytest.mark.parametrize(
    ("exception_type", "expected"),
    [
        ("throttlingException", RateLimited),
        ("modelStreamErrorException", Unavailable),
        ("internalServerException", Unavailable),
        ("serviceUnavailableException", Unavailable),
        ("validationException", BadRequest),
    ],
)
def test_an_in_band_stream_exception_is_classified(
    make: Make, server: LoopbackServer, exception_type: str, expected: type[VendorError]
) -> None:
    server.fail(Cut(after=3, then=exception_frame(exception_type, f"failed on {PROMPT}"), drop=False))
    received: list[StreamEvent] = []
    with pytest.raises(VendorError) as caught:
        for event in make().stream(HELLO, timeout=2):
            received.append(event)
    assert type(caught.value) is expected
    assert caught.value.code == exception_type
    assert PROMPT not in str(caught.value)
    assert _text(received) == "You said: "


def test_the_event_stream_encoder_is_what_botocore_decodes() -> None:
    from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

    data = frame({":event-type": "messageStop", ":message-type": "event"}, b'{"stopReason": "end_turn"}')
    buffer = EventStreamBuffer()
    buffer.add_data(data + exception_frame("throttlingException", "slow"))
    first, second = list(buffer)
    assert first.headers == {":event-type": "messageStop", ":message-type": "event"}
    assert json.loads(first.payload) == {"stopReason": "end_turn"}
    assert second.headers[":exception-type"] == "throttlingException"
    corrupt = EventStreamBuffer()
    corrupt.add_data(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(ChecksumMismatch):
        list(corrupt)


# -- credentials and clients --------------------------------------------------------------------------------------


def test_without_credentials_the_default_aws_chain_signs(
    make: Make, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    make(credentials={}).chat(HELLO, timeout=2)
    assert sigv4(server.requests[0].headers)["key"] == "AKIDFROMENV"


def test_a_session_token_is_sent(make: Make, server: LoopbackServer) -> None:
    make(credentials={**KEYS, "aws_session_token": "session-1"}).chat(HELLO, timeout=2)
    assert server.requests[0].headers["x-amz-security-token"] == "session-1"


@pytest.fixture(scope="module")
def _tls_running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LoopbackServer, Path]]:
    context, ca_file = tls_context(tmp_path_factory.mktemp("tls"))
    with LoopbackServer(BedrockWire(), tls=context) as running:
        yield running, ca_file


@pytest.fixture
def tls(
    _tls_running: tuple[LoopbackServer, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LoopbackServer, Path]]:
    running, ca_file = _tls_running
    declare(monkeypatch, running)
    running.requests.clear()
    yield running, ca_file
    assert running.errors == []


def _tls_target(server: LoopbackServer, **fields: Any) -> Target:
    return Target("bedrock-key", "bedrock.runtime", CLAUDE, endpoint=server.url, region="us-east-1", **fields)


def test_a_bedrock_api_key_is_sent_as_bearer_over_tls(tls: tuple[LoopbackServer, Path]) -> None:
    server, ca_file = tls
    target = _tls_target(server, options=(("ca_bundle", str(ca_file)),))
    adapter = open_adapter(target, AdapterOptions(2.0, {"bearer_token": "bedrock-api-key-1"}))
    try:
        assert adapter.chat(HELLO, timeout=2).text == "You said: " + PROMPT
    finally:
        adapter.close()
    assert server.requests[0].headers["authorization"] == "Bearer bedrock-api-key-1"


def test_the_api_key_variable_is_used_unless_keys_are_given(
    tls: tuple[LoopbackServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, ca_file = tls
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "key-from-env")
    monkeypatch.setenv("AWS_CA_BUNDLE", str(ca_file))
    for credentials in ({}, KEYS):
        adapter = open_adapter(_tls_target(server), AdapterOptions(2.0, credentials))
        try:
            adapter.chat(HELLO, timeout=2)
        finally:
            adapter.close()
    from_env, from_keys = server.requests
    assert from_env.headers["authorization"] == "Bearer key-from-env"
    assert sigv4(from_keys.headers)["key"] == "AKIDFAKE"


def test_threads_share_one_adapter(make: Make, server: LoopbackServer) -> None:
    adapter = make()
    prompts = [f"question {i}" for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        texts = list(pool.map(lambda p: adapter.chat(ChatRequest((Message("user", p),)), timeout=2).text, prompts))
    assert texts == [f"You said: {p}" for p in prompts]
    assert len(server.requests) == 8
    adapter.close()
    assert adapter.chat(HELLO, timeout=2).text == "You said: " + PROMPT  # a closed adapter makes a new client
