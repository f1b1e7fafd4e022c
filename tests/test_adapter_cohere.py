"""The cohere adapter, driven through the real cohere SDK over real HTTP against a server speaking Cohere's wire format.

Cohere's platform, private and Azure targets reach the loopback server through ``target.endpoint``. The SDK's
Bedrock and SageMaker clients build their AWS URL themselves, so those tests reach it the way a corporate
network would: through an HTTPS proxy (``HTTPS_PROXY``) to a TLS server whose certificate names the AWS host.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import importlib.util
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cohere.core.api_error import ApiError
from privsdk_cohere.cohere_adapter import CohereAdapter

from privsdk.adapter import Adapter, AdapterOptions, open_adapter
from privsdk.errors import (
    AdapterMissing,
    AuthFailed,
    BadRequest,
    ConfigError,
    ConnectionLost,
    NotFound,
    PolicyViolation,
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
from tests.wire.cohere import (
    BILLED,
    CHAT_PATH,
    EMBED_PATH,
    PROCESSED,
    RERANK_PATH,
    CohereApp,
    ConnectProxy,
    aws_tls_context,
    error_body,
    relevance,
    stream_error,
    vector,
)
from tests.wire.server import Cut, Delay, LoopbackServer, Reset, Status

KEY = "co-test-key"
MODEL = "command-a-03-2025"
PROMPT = "the patient's name is Jane Roe"  # what a vendor echoes in its error text
FAST = 0.3  # seconds: the time bound of the tests that wait for a Delay(2) to trip it
REGION = "us-east-1"
BEDROCK_MODEL = "cohere.command-r-plus-v1:0"
WEATHER = Tool("get_weather", "The weather in a city", {"type": "object", "properties": {"city": {"type": "string"}}})
HELLO = ChatRequest((Message("user", PROMPT),))
ALL = frozenset({"chat", "stream", "embed", "rerank"})
BILLED_USAGE = Usage(BILLED["input_tokens"], BILLED["output_tokens"])


@pytest.fixture(autouse=True)
def _no_cohere_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CO_API_KEY", "COHERE_API_KEY", "CO_API_URL", "AZURE_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def app() -> CohereApp:
    return CohereApp()


@pytest.fixture(scope="module")
def _loopback() -> Iterator[LoopbackServer]:
    with LoopbackServer(CohereApp()) as server:  # one server for the module: stopping one takes half a second
        yield server


@pytest.fixture(autouse=True)
def _declared(_loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The adapters' SDK clients send through privsdk's guard, which sends only to endpoints it can place:
    the loopback server is declared as Cohere's platform, through the environment alone (a private
    deployment speaks the same protocol)."""
    monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{_loopback.url}=cohere.saas")
    monkeypatch.setenv("PRIVSDK_USAGE", "none")


@pytest.fixture
def server(_loopback: LoopbackServer, app: CohereApp) -> Iterator[LoopbackServer]:
    """The loopback server, answering with this test's ``app``, with no requests, faults or errors from others."""
    _loopback.app = app
    _loopback.requests.clear()
    _loopback.errors.clear()
    yield _loopback
    assert _loopback.next_fault() is None, "a queued fault was not used"
    assert _loopback.errors == []


def saas(server: LoopbackServer) -> Target:
    return Target("cohere-test", "cohere.saas", MODEL, endpoint=server.url)


def opened(target: Target, **credentials: str) -> Adapter:
    return open_adapter(target, AdapterOptions(timeout=5.0, credentials=credentials))


@pytest.fixture
def adapter(server: LoopbackServer) -> Iterator[Adapter]:
    adapter = opened(saas(server), api_key=KEY)
    yield adapter
    adapter.close()


def sent(server: LoopbackServer) -> dict[str, Any]:
    """The body of the one request the server received (exactly one: the SDK's retries are off)."""
    (request,) = server.requests
    body: dict[str, Any] = request.json()
    return body


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# --- construction -------------------------------------------------------------------------------------------


def test_the_entry_point_opens_a_cohere_adapter_without_network(server: LoopbackServer) -> None:
    adapter = opened(saas(server), api_key=KEY)
    assert isinstance(adapter, CohereAdapter)
    assert (adapter.vendor, adapter.operations, adapter.model) == ("cohere", ALL, MODEL)
    adapter.close()
    assert server.requests == []


def test_importing_the_adapter_package_loads_no_sdk() -> None:
    code = "import sys, privsdk_cohere; assert not {'cohere', 'boto3'} & set(sys.modules), sys.modules.keys()"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    ("target", "error", "names"),
    [
        (Target("p", "cohere.private", MODEL), ConfigError, "endpoint"),
        (Target("a", "cohere.azure", "Cohere-command-a"), ConfigError, "endpoint"),
        (Target("s", "cohere.saas", MODEL), ConfigError, "CO_API_KEY"),
        (
            Target("a", "cohere.azure", "Cohere-command-a", endpoint="https://x.eastus.models.ai.azure.com"),
            ConfigError,
            "AZURE_API_KEY",
        ),
        (Target("x", "cohere.nowhere", MODEL), ConfigError, "cohere.saas"),
        (
            Target("b", "cohere.bedrock", BEDROCK_MODEL, endpoint="https://vpce.example", region=REGION),
            ConfigError,
            "endpoint",
        ),
    ],
)
def test_a_target_that_cannot_work_fails_at_construction(target: Target, error: type[Exception], names: str) -> None:
    with pytest.raises(error) as raised:
        opened(target)
    assert names in str(raised.value)


@pytest.mark.skipif(importlib.util.find_spec("oci") is not None, reason="the oci package is installed")
def test_oci_without_the_oci_package_fails_at_construction() -> None:
    target = Target("o", "cohere.oci", "cohere.command-a-03-2025", region="eu-frankfurt-1", project="ocid1.compartment")
    with pytest.raises(AdapterMissing, match="pip install oci"):
        opened(target)


def test_aws_without_boto3_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # as if not installed: privsdk[cohere] does not bring it
    with pytest.raises(AdapterMissing, match="pip install boto3"):
        opened(Target("b", "cohere.bedrock", BEDROCK_MODEL, region=REGION))


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AWS settings of the machine's own: no config files, no instance metadata, no region, no keys."""
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.usefixtures("aws_env")
@pytest.mark.parametrize(
    ("region", "credentials", "names"),
    [(None, {"aws_access_key_id": "AKIDTEST", "aws_secret_access_key": "x"}, "region"), (REGION, {}, "credentials")],
)
def test_an_aws_target_without_region_or_credentials_fails_at_construction(
    region: str | None, credentials: dict[str, str], names: str
) -> None:
    with pytest.raises(ConfigError, match=names):
        opened(Target("b", "cohere.bedrock", BEDROCK_MODEL, region=region), **credentials)


# --- chat ---------------------------------------------------------------------------------------------------


def test_chat_sends_the_request_in_cohere_fields_and_maps_the_answer(
    adapter: Adapter, server: LoopbackServer, app: CohereApp
) -> None:
    request = ChatRequest(
        (Message("system", "Answer briefly."), Message("user", PROMPT)),
        temperature=0.2,
        top_p=0.9,
        max_tokens=50,
        stop=("END",),
        seed=7,
    )
    response = adapter.chat(request, timeout=5)
    (recorded,) = server.requests
    assert (recorded.path, recorded.headers["authorization"]) == (CHAT_PATH, f"Bearer {KEY}")
    assert recorded.json() == {
        "model": MODEL,
        "messages": [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": PROMPT}],
        "temperature": 0.2,
        "p": 0.9,
        "max_tokens": 50,
        "stop_sequences": ["END"],
        "seed": 7,
        "stream": False,
    }
    assert response[:5] == (app.text, (), "stop", BILLED_USAGE, MODEL)
    assert type(response.raw).__name__ == "V2ChatResponse"


def test_tools_and_tool_calls(adapter: Adapter, server: LoopbackServer, app: CohereApp) -> None:
    app.tool_calls = [("call-1", "get_weather", '{"city": "Paris"}')]
    response = adapter.chat(ChatRequest((Message("user", "Weather in Paris?"),), (WEATHER,), "required"), timeout=5)
    body = sent(server)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": WEATHER.description, "parameters": WEATHER.parameters},
        }
    ]
    assert body["tool_choice"] == "REQUIRED"
    assert (response.text, response.tool_calls, response.finish_reason) == (
        "",
        (ToolCall("call-1", "get_weather", '{"city": "Paris"}'),),
        "tool_calls",
    )


def test_a_tool_result_goes_back_as_a_tool_message(adapter: Adapter, server: LoopbackServer, app: CohereApp) -> None:
    call = ToolCall("call-1", "get_weather", '{"city": "Paris"}')
    request = ChatRequest(
        (
            Message("user", "Weather in Paris?"),
            Message("assistant", tool_calls=(call,)),
            Message("tool", '{"temperature": 21}', tool_call_id="call-1"),
        ),
        tools=(Tool("get_weather", parameters=WEATHER.parameters),),
        tool_choice="none",
    )
    assert adapter.chat(request, timeout=5).text == app.text
    body = sent(server)
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "call-1", "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": "call-1", "content": '{"temperature": 21}'},
    ]
    assert body["tools"][0]["function"] == {"name": "get_weather", "parameters": WEATHER.parameters}
    assert body["tool_choice"] == "NONE"


def test_images_go_as_image_url_parts(adapter: Adapter, server: LoopbackServer) -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    parts = (Text("What is in these?"), Image(data=png), Image(url="https://example.com/cat.jpg"))
    adapter.chat(ChatRequest((Message("user", parts),)), timeout=5)
    assert sent(server)["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(png).decode()}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ],
        }
    ]


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [
        (ResponseFormat(), {"type": "json_object"}),
        (
            ResponseFormat({"type": "object", "properties": {"a": {"type": "integer"}}}),
            {"type": "json_object", "json_schema": {"type": "object", "properties": {"a": {"type": "integer"}}}},
        ),
    ],
)
def test_response_format_asks_for_json(
    adapter: Adapter, server: LoopbackServer, response_format: ResponseFormat, expected: dict[str, Any]
) -> None:
    adapter.chat(HELLO._replace(response_format=response_format), timeout=5)
    assert sent(server)["response_format"] == expected


def test_extra_fields_are_merged_into_the_body(adapter: Adapter, server: LoopbackServer) -> None:
    adapter.chat(HELLO._replace(extra={"safety_mode": "STRICT"}), timeout=5)
    adapter.embed(EmbedRequest(("a",), extra={"truncate": "END"}), timeout=5)
    adapter.rerank(RerankRequest("q", ("d",), extra={"max_tokens_per_doc": 512}), timeout=5)
    chat, embed, rerank = (r.json() for r in server.requests)
    assert (chat["safety_mode"], embed["truncate"], rerank["max_tokens_per_doc"]) == ("STRICT", "END", 512)


@pytest.mark.parametrize(
    "request_",
    [
        HELLO._replace(tools=(WEATHER,), response_format=ResponseFormat()),
        ChatRequest((Message("system", (Text("look"), Image(url="https://example.com/a.png"))), Message("user", "hi"))),
        ChatRequest((Message("user", (Image(),)),)),
        ChatRequest((Message("user", "hi"), Message("tool", "21 degrees"))),
    ],
    ids=["response-format-with-tools", "image-in-system", "image-without-data", "tool-without-call-id"],
)
def test_what_cohere_cannot_take_is_refused_before_any_request(
    adapter: Adapter, server: LoopbackServer, request_: ChatRequest
) -> None:
    with pytest.raises(Unsupported):
        adapter.chat(request_, timeout=5)
    with pytest.raises(Unsupported):
        adapter.stream(request_, timeout=5)
    assert server.requests == []


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"tokens": PROCESSED}, Usage(PROCESSED["input_tokens"], PROCESSED["output_tokens"])),
        ({"billed_units": {"input_tokens": 3}, "tokens": PROCESSED}, Usage(3, PROCESSED["output_tokens"])),
        (None, Usage()),
    ],
)
def test_usage_is_billed_tokens_else_processed_tokens(
    adapter: Adapter, app: CohereApp, usage: dict[str, Any] | None, expected: Usage
) -> None:
    app.usage = usage
    assert adapter.chat(HELLO, timeout=5).usage == expected
    assert list(adapter.stream(HELLO, timeout=5))[-1] == StreamEnd("stop", expected, MODEL)


@pytest.mark.parametrize(
    ("cohere", "privsdk"),
    [
        ("COMPLETE", "stop"),
        ("STOP_SEQUENCE", "stop"),
        ("MAX_TOKENS", "length"),
        ("ERROR", "error"),
        ("TIMEOUT", "other"),
    ],
)
def test_finish_reasons(adapter: Adapter, app: CohereApp, cohere: str, privsdk: str) -> None:
    app.finish_reason = cohere
    assert adapter.chat(HELLO, timeout=5).finish_reason == privsdk


# --- stream -------------------------------------------------------------------------------------------------


def test_stream_yields_text_then_one_end(adapter: Adapter, server: LoopbackServer, app: CohereApp) -> None:
    app.chunks = 5
    events = list(adapter.stream(HELLO, timeout=5))
    assert sent(server)["stream"] is True
    assert [type(e) for e in events] == [TextDelta] * 5 + [StreamEnd]
    assert text_of(events) == app.text
    assert events[-1] == StreamEnd("stop", BILLED_USAGE, MODEL)


def test_stream_tool_calls_arrive_as_deltas_per_call(adapter: Adapter, server: LoopbackServer, app: CohereApp) -> None:
    app.tool_calls = [("call-1", "get_weather", '{"city": "Paris"}'), ("call-2", "get_weather", '{"city": "Rome"}')]
    events = list(adapter.stream(HELLO._replace(tools=(WEATHER,)), timeout=5))
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    for call, (call_id, name, arguments) in enumerate(app.tool_calls):
        mine = [d for d in deltas if d.call == call]
        assert (mine[0].id, mine[0].name) == (call_id, name)
        assert all(d.id is None and d.name is None for d in mine[1:])
        assert "".join(d.arguments for d in mine) == arguments
    assert events[-1] == StreamEnd("tool_calls", BILLED_USAGE, MODEL)
    assert text_of(events) == ""


def test_a_stream_read_in_part_and_closed_releases_its_connection(adapter: Adapter, server: LoopbackServer) -> None:
    events = adapter.stream(HELLO, timeout=5)
    assert isinstance(next(events), TextDelta)
    events.close()  # type: ignore[attr-defined]
    assert adapter.chat(HELLO, timeout=5).finish_reason == "stop"
    assert len(server.requests) == 2


# --- embed and rerank ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("input_type", "dimensions"), [(None, None), ("search_query", 256)])
def test_embed(
    adapter: Adapter, server: LoopbackServer, app: CohereApp, input_type: Any, dimensions: int | None
) -> None:
    texts = ("one document", "another longer document")
    response = adapter.embed(EmbedRequest(texts, input_type, dimensions), timeout=5)
    (recorded,) = server.requests
    expected_body: dict[str, Any] = {
        "model": MODEL,
        "texts": list(texts),
        "input_type": input_type or "search_document",  # Cohere v2 requires one; privsdk's default
        "embedding_types": ["float"],
    }
    if dimensions is not None:
        expected_body["output_dimension"] = dimensions
    assert (recorded.path, recorded.json()) == (EMBED_PATH, expected_body)
    assert response.vectors == [vector(t, i, dimensions or app.dimensions) for i, t in enumerate(texts)]
    assert (response.usage, response.model) == (Usage(input_tokens=5), MODEL)


def test_rerank(adapter: Adapter, server: LoopbackServer) -> None:
    query, documents = "capital of France", ("Paris is the capital of France", "Berlin is in Germany", "France")
    response = adapter.rerank(RerankRequest(query, documents, top_n=2), timeout=5)
    (recorded,) = server.requests
    assert (recorded.path, recorded.json()) == (
        RERANK_PATH,
        {"model": MODEL, "query": query, "documents": list(documents), "top_n": 2},
    )
    best = sorted(range(3), key=lambda i: -relevance(query, documents[i]))[:2]
    assert response.results == [Ranked(i, relevance(query, documents[i])) for i in best]
    assert (response.usage, response.model) == (Usage(search_units=1), MODEL)


# --- async --------------------------------------------------------------------------------------------------


def test_async_operations(server: LoopbackServer, app: CohereApp) -> None:
    adapter = opened(saas(server), api_key=KEY)

    async def run() -> None:
        chat = await adapter.achat(HELLO, timeout=5)
        events = [e async for e in adapter.astream(HELLO, timeout=5)]
        embedded = await adapter.aembed(EmbedRequest(("a b",)), timeout=5)
        ranked = await adapter.arerank(RerankRequest("a", ("a", "b")), timeout=5)
        assert (chat.text, text_of(events), events[-1].finish_reason) == (app.text, app.text, "stop")  # type: ignore[union-attr]
        assert (embedded.vectors, ranked.results[0]) == ([vector("a b", 0, app.dimensions)], Ranked(0, 1.0))
        await adapter.aclose()

    asyncio.run(run())
    assert [r.path for r in server.requests] == [CHAT_PATH, CHAT_PATH, EMBED_PATH, RERANK_PATH]
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in server.requests)


def test_a_client_without_async_twin_serves_async_calls_from_a_thread(server: LoopbackServer, app: CohereApp) -> None:
    """How the async methods run on the SDK's AWS and OCI clients, which have no async version."""
    from cohere.client_v2 import ClientV2

    client = ClientV2(api_key=KEY, base_url=server.url, max_retries=0)
    adapter = CohereAdapter(saas(server), AdapterOptions(), client=client, model=MODEL, operations=ALL)

    async def run() -> list[StreamEvent]:
        server.fail(Cut(after=3))
        with pytest.raises(ConnectionLost):
            [e async for e in adapter.astream(HELLO, timeout=5)]
        assert (await adapter.aembed(EmbedRequest(("a",)), timeout=5)).vectors == [vector("a", 0, app.dimensions)]
        return [e async for e in adapter.astream(HELLO, timeout=5)]

    events = asyncio.run(run())
    assert (text_of(events), events[-1]) == (app.text, StreamEnd("stop", BILLED_USAGE, MODEL))
    assert len(server.requests) == 3


# --- errors -------------------------------------------------------------------------------------------------

_STATUS_CASES = [
    (400, {}, BadRequest, None),
    (401, {}, AuthFailed, None),
    (403, {}, AuthFailed, None),
    (404, {}, NotFound, None),
    (422, {}, BadRequest, None),
    (429, {"Retry-After": "3"}, RateLimited, 3.0),
    (429, {"retry-after-ms": "1500"}, RateLimited, 1.5),
    (498, {}, AuthFailed, None),  # Cohere's "invalid token"
    (500, {}, Unavailable, None),
    (502, {}, Unavailable, None),
    (503, {}, Unavailable, None),
    (504, {}, VendorTimeout, None),
]


def _call(adapter: Adapter, operation: str, timeout: float = 5) -> object:
    if operation == "stream":
        return list(adapter.stream(HELLO, timeout=timeout))
    if operation == "embed":
        return adapter.embed(EmbedRequest((PROMPT,)), timeout=timeout)
    if operation == "rerank":
        return adapter.rerank(RerankRequest(PROMPT, ("a document",)), timeout=timeout)
    return adapter.chat(HELLO, timeout=timeout)


@pytest.mark.usefixtures("debug_chain")
@pytest.mark.parametrize("operation", ["chat", "stream", "embed"])
@pytest.mark.parametrize(("status", "headers", "error", "wait"), _STATUS_CASES)
def test_http_errors_become_vendor_errors_without_vendor_text(
    adapter: Adapter,
    server: LoopbackServer,
    operation: str,
    status: int,
    headers: dict[str, str],
    error: type[VendorError],
    wait: float | None,
) -> None:
    server.fail(Status(status, headers, error_body(PROMPT)))
    with pytest.raises(error) as raised:
        _call(adapter, operation)
    assert (type(raised.value), raised.value.status, raised.value.retry_after) == (error, status, wait)
    assert PROMPT not in str(raised.value)
    assert isinstance(raised.value.__cause__, ApiError)
    assert len(server.requests) == 1


def test_retry_after_as_an_http_date(adapter: Adapter, server: LoopbackServer) -> None:
    server.fail(Status(429, {"Retry-After": email.utils.formatdate(time.time() + 30, usegmt=True)}, error_body(PROMPT)))
    with pytest.raises(RateLimited) as raised:
        adapter.chat(HELLO, timeout=5)
    assert raised.value.retry_after == pytest.approx(30, abs=2)


@pytest.mark.parametrize("operation", ["chat", "stream", "embed", "rerank"])
def test_a_slow_answer_is_cut_off_at_the_timeout(adapter: Adapter, server: LoopbackServer, operation: str) -> None:
    server.fail(Delay(2))
    started = time.monotonic()
    with pytest.raises(VendorTimeout):
        _call(adapter, operation, timeout=FAST)
    assert time.monotonic() - started < 1.5
    assert len(server.requests) == 1


@pytest.mark.usefixtures("debug_chain")
def test_nothing_listening_is_a_lost_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"http://127.0.0.1:{port}=cohere.saas")
    adapter = opened(Target("gone", "cohere.saas", MODEL, endpoint=f"http://127.0.0.1:{port}"), api_key=KEY)
    with pytest.raises(ConnectionLost) as raised:
        adapter.chat(HELLO, timeout=5)
    assert type(raised.value.__cause__).__name__ == "ConnectError"


@pytest.mark.parametrize("operation", ["chat", "stream", "embed", "rerank"])
def test_a_reset_connection_is_lost_and_not_retried(adapter: Adapter, server: LoopbackServer, operation: str) -> None:
    server.fail(Reset())
    with pytest.raises(ConnectionLost):
        _call(adapter, operation)
    assert len(server.requests) == 1


@pytest.mark.parametrize("drop", [True, False], ids=["connection-dropped", "ended-early"])
def test_a_stream_cut_midway_is_a_lost_connection(adapter: Adapter, server: LoopbackServer, drop: bool) -> None:
    server.fail(Cut(after=3, drop=drop))  # message-start, content-start, one content-delta
    events: list[StreamEvent] = []
    with pytest.raises(ConnectionLost):
        events.extend(adapter.stream(HELLO, timeout=5))
    assert [type(e) for e in events] == [TextDelta]


def test_an_error_inside_the_stream_is_unavailable_without_its_text(adapter: Adapter, server: LoopbackServer) -> None:
    server.fail(Cut(after=3, then=stream_error(PROMPT), drop=False))
    events: list[StreamEvent] = []
    with pytest.raises(Unavailable) as raised:
        events.extend(adapter.stream(HELLO, timeout=5))
    assert [type(e) for e in events] == [TextDelta]
    assert PROMPT not in str(raised.value)


def test_async_errors(server: LoopbackServer) -> None:
    adapter = opened(saas(server), api_key=KEY)

    async def run() -> None:
        server.fail(Status(429, {"Retry-After": "2"}, error_body(PROMPT)), Delay(2), Cut(after=3))
        with pytest.raises(RateLimited):
            await adapter.achat(HELLO, timeout=5)
        with pytest.raises(VendorTimeout):
            [e async for e in adapter.astream(HELLO, timeout=FAST)]
        with pytest.raises(ConnectionLost):
            [e async for e in adapter.astream(HELLO, timeout=5)]
        await adapter.aclose()

    asyncio.run(run())
    assert len(server.requests) == 3


# --- other ways to reach Cohere -----------------------------------------------------------------------------


def test_credentials_and_endpoint_from_cohere_environment_variables(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CO_API_KEY", "key-from-env")
    monkeypatch.setenv("CO_API_URL", server.url)  # read at construction, though the SDK reads it at import only
    adapter = opened(Target("cohere/command-a", "cohere.saas", MODEL))
    adapter.chat(HELLO, timeout=5)
    assert server.requests[0].headers["authorization"] == "Bearer key-from-env"


def test_a_private_deployment_gets_no_platform_key(
    server: LoopbackServer, app: CohereApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CO_API_KEY", "platform-key")
    app.anonymous = True
    target = Target("on-prem", "cohere.private", "command-a", endpoint=server.url)
    assert opened(target, api_key="platform-key").chat(HELLO, timeout=5).text == app.text
    assert opened(target, private_api_key="gateway-key").chat(HELLO, timeout=5).text == app.text
    anonymous, keyed = server.requests
    assert "authorization" not in anonymous.headers
    assert keyed.headers["authorization"] == "Bearer gateway-key"
    assert anonymous.json()["model"] == "command-a"


def test_azure_ai_foundry_uses_the_deployment_url_key_and_name(
    server: LoopbackServer, app: CohereApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CO_API_KEY", "platform-key")
    monkeypatch.setenv("AZURE_API_KEY", "azure-key-from-env")
    monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{server.url}=cohere.azure")  # the body names the deployment
    Guard.reset_default()
    target = Target("az", "cohere.azure", "Cohere-command-a", endpoint=server.url, deployment="cohere-command-a-prod")
    with pytest.raises(ConfigError, match="azure_api_key"):  # credentials given never fall back to AZURE_API_KEY
        opened(target, api_key="platform-key")
    assert opened(target).chat(HELLO, timeout=5).text == app.text
    assert opened(target, azure_api_key="azure-key").chat(HELLO, timeout=5).text == app.text
    from_env, given = server.requests
    assert (from_env.path, from_env.headers["authorization"]) == (CHAT_PATH, "Bearer azure-key-from-env")
    assert given.headers["authorization"] == "Bearer azure-key"
    assert from_env.json()["model"] == "cohere-command-a-prod"


@pytest.fixture
def aws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, app: CohereApp, aws_env: None
) -> Iterator[tuple[LoopbackServer, ConnectProxy]]:
    """A TLS server for the AWS hosts, reached through an HTTPS proxy; the client trusts only its CA."""
    context, ca_file = aws_tls_context(tmp_path, REGION)
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "https_proxy", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    with LoopbackServer(app, tls=context) as server, ConnectProxy(server.url) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        yield server, proxy
    assert server.errors == []


AWS_KEYS = {"aws_access_key_id": "AKIDTEST", "aws_secret_access_key": "secret"}


def test_bedrock_through_the_sdk_bedrock_client(aws: tuple[LoopbackServer, ConnectProxy], app: CohereApp) -> None:
    pytest.importorskip("privsdk.outbound.wire.bedrock", reason="the guard reads Bedrock requests with boto3 support")
    server, proxy = aws
    adapter = opened(Target("br", "cohere.bedrock", BEDROCK_MODEL, region=REGION), **AWS_KEYS)
    chat = adapter.chat(HELLO, timeout=5)
    embedded = adapter.embed(EmbedRequest(("a b", "c")), timeout=5)
    ranked = adapter.rerank(RerankRequest("a", ("b", "a")), timeout=5)
    assert (chat.text, chat.usage) == (app.text, BILLED_USAGE)
    assert (embedded.vectors, embedded.usage) == ([vector("a b", 0, 4), vector("c", 1, 4)], Usage(input_tokens=3))
    assert ranked.results == [Ranked(1, 1.0), Ranked(0, 0.0)]
    assert set(proxy.tunnels) == {f"bedrock-runtime.{REGION}.amazonaws.com:443"}
    assert {r.path for r in server.requests} == {f"/model/{BEDROCK_MODEL}/invoke"}
    for recorded in server.requests:
        assert recorded.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDTEST/")
        assert f"/{REGION}/bedrock/aws4_request" in recorded.headers["authorization"]
    assert json.loads(server.requests[0].body) == {"messages": [{"role": "user", "content": PROMPT}]}
    assert asyncio.run(adapter.achat(HELLO, timeout=5)).text == app.text  # no async AWS client: a worker thread


@pytest.mark.parametrize("offering", ["cohere.bedrock", "cohere.sagemaker"])
def test_aws_targets_cannot_stream_and_say_so_before_any_request(
    aws: tuple[LoopbackServer, ConnectProxy], offering: str
) -> None:
    server, _ = aws
    adapter = opened(Target("aws", offering, BEDROCK_MODEL, region=REGION), **AWS_KEYS)
    assert adapter.operations == ALL - {"stream"}
    with pytest.raises(Unsupported, match="cannot stream"):
        adapter.stream(HELLO, timeout=5)
    with pytest.raises(Unsupported, match="cannot stream"):
        adapter.astream(HELLO, timeout=5)
    assert server.requests == []


def test_bedrock_throttling_keeps_the_aws_error_type(aws: tuple[LoopbackServer, ConnectProxy]) -> None:
    pytest.importorskip("privsdk.outbound.wire.bedrock", reason="the guard reads Bedrock requests with boto3 support")
    server, _ = aws
    adapter = opened(Target("br", "cohere.bedrock", BEDROCK_MODEL, region=REGION), **AWS_KEYS)
    throttled = {"x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    server.fail(Status(429, throttled, json.dumps({"message": PROMPT}).encode()), Delay(2))
    with pytest.raises(RateLimited) as raised:
        adapter.chat(HELLO, timeout=5)
    assert (raised.value.code, raised.value.status) == ("ThrottlingException", 429)
    assert PROMPT not in str(raised.value)
    with pytest.raises(VendorTimeout):
        adapter.chat(HELLO, timeout=FAST)
    assert len(server.requests) == 2


def sagemaker_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: Target) -> None:
    """A policy whose target names ``target``'s SageMaker endpoint: the guard judges a request to an endpoint
    only through the target that names it (an endpoint's name is its owner's, and tells no model)."""
    policy = tmp_path / "sagemaker.toml"
    policy.write_text(
        f'[targets.{target.name}]\noffering = "{target.offering}"\nmodel = "{target.model}"\n'
        f'region = "{target.region}"\ndeployment = "{target.deployment}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("PRIVSDK_CONFIG", str(policy))
    Guard.reset_default()


def test_sagemaker_addresses_the_endpoint_by_name(
    aws: tuple[LoopbackServer, ConnectProxy], app: CohereApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, proxy = aws
    target = Target("sm", "cohere.sagemaker", "command-a", region=REGION, deployment="cohere-command-a-endpoint")
    sagemaker_policy(tmp_path, monkeypatch, target)
    adapter = opened(target, **AWS_KEYS, aws_session_token="session")
    assert adapter.chat(HELLO, timeout=5).text == app.text
    (recorded,) = server.requests
    assert recorded.path == "/endpoints/cohere-command-a-endpoint/invocations"
    assert f"/{REGION}/sagemaker/aws4_request" in recorded.headers["authorization"]
    assert recorded.headers["x-amz-security-token"] == "session"
    assert proxy.tunnels == [f"runtime.sagemaker.{REGION}.amazonaws.com:443"]


def test_a_sagemaker_endpoint_no_target_names_is_refused_unsent(aws: tuple[LoopbackServer, ConnectProxy]) -> None:
    """An endpoint runs whatever its owner deployed, and a chat or embed body of Cohere's shape is also another
    maker's (an OpenAI-style chat, Hugging Face's ``{"inputs": [...]}``): without a target naming the endpoint, its
    requests would be judged on Cohere's guarantees (Cohere receives nothing) whatever runs there."""
    server, proxy = aws
    adapter = opened(Target("sm", "cohere.sagemaker", "llama-3-1-70b-instruct", region=REGION), **AWS_KEYS)
    for send in (lambda: adapter.chat(HELLO, timeout=5), lambda: adapter.embed(EmbedRequest(("a",)), timeout=5)):
        with pytest.raises(PolicyViolation, match="name it in a target: deployment = 'llama-3-1-70b-instruct'"):
            send()
    assert server.requests == [] and proxy.tunnels == []
