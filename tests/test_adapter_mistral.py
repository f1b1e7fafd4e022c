"""The Mistral adapter driving the real mistralai SDK over real HTTP against a loopback la Plateforme."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from privsdk_mistral import MistralAPIAdapter, MistralAzureAdapter
from privsdk_mistral.convert import call_id

from privsdk.adapter import Adapter, AdapterOptions, open_adapter
from privsdk.errors import (
    AuthFailed,
    BadRequest,
    ConfigError,
    ConnectionLost,
    ContentRefused,
    NotFound,
    RateLimited,
    Unavailable,
    Unsupported,
    VendorError,
    VendorTimeout,
)
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
from tests.wire.mistral import (
    AZURE_CHAT_PATH,
    CHAT_PATH,
    EMBED_PATH,
    MistralApp,
    error_body,
    guardrail_body,
    stream_error,
)
from tests.wire.server import Cut, Delay, LoopbackServer, Reset, Status

MODEL = "mistral-small-latest"
KEY = "test-key-0123"
AZURE_KEY = "azure-key-4567"
#: What a user wrote; vendors echo it in error messages, so no privsdk error may contain it.
PROMPT = "my card number is 4242 4242 4242 4242"
HELLO = ChatRequest((Message("user", PROMPT),))
TIMEOUT = 2.0


@pytest.fixture(autouse=True)
def _no_vendor_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own Mistral or Azure settings never reach these tests."""
    for name in ("MISTRAL_API_KEY", "MISTRAL_SA_TOKEN_PATH", "MISTRAL_SDK_TELEMETRY", "AZURE_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def app() -> MistralApp:
    return MistralApp()


@pytest.fixture(scope="module")
def loopback() -> Iterator[LoopbackServer]:
    # One server for the module: stopping one takes up to half a second (its poll interval).
    with LoopbackServer(MistralApp()) as server:
        yield server


@pytest.fixture(autouse=True)
def _declared(loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The adapters' SDK clients send through privsdk's guard, which sends only to endpoints it can place:
    the loopback server is declared as la Plateforme, through the environment alone (the server also
    answers Azure's path, which the Mistral wire reader reads as chat). Nothing listens on the second."""
    monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{loopback.url}=mistral.api,http://127.0.0.1:9=mistral.api")
    monkeypatch.setenv("PRIVSDK_USAGE", "none")


@pytest.fixture
def server(loopback: LoopbackServer, app: MistralApp) -> Iterator[LoopbackServer]:
    """The module's server, answering with this test's ``app``, with nothing recorded or queued yet."""
    loopback.app = app
    loopback.requests.clear()
    loopback.errors.clear()
    while loopback.next_fault() is not None:  # left by a test that failed
        pass
    yield loopback
    assert loopback.errors == []
    assert loopback.next_fault() is None, "a queued fault was never used"


def api_target(server: LoopbackServer, **fields: Any) -> Target:
    return Target("mistral-small", "mistral.api", MODEL, endpoint=server.url, **fields)


def options(timeout: float = TIMEOUT) -> AdapterOptions:
    """Credentials for both offerings, as a tenant's ``credentials.mistral`` would hold them."""
    return AdapterOptions(timeout=timeout, credentials={"api_key": KEY, "azure_api_key": AZURE_KEY})


@pytest.fixture(scope="module")
def shared_adapter(loopback: LoopbackServer) -> Iterator[Adapter]:
    # Built once: each client builds two TLS contexts, tens of milliseconds.
    adapter = open_adapter(api_target(loopback), options())
    yield adapter
    adapter.close()


@pytest.fixture
def mistral(server: LoopbackServer, shared_adapter: Adapter) -> Adapter:
    """A la Plateforme adapter pointed at ``server``."""
    return shared_adapter


def drain(events: Iterator[StreamEvent]) -> tuple[list[StreamEvent], BaseException | None]:
    """The events a stream gave before it ended or raised, and what it raised."""
    seen: list[StreamEvent] = []
    try:
        for event in events:
            seen.append(event)
    except Exception as exc:
        return seen, exc
    return seen, None


def run_async(server: LoopbackServer, work: Callable[[Adapter], Any], target: Target | None = None) -> Any:
    """``work(adapter)`` awaited in a fresh event loop, with an adapter of its own closed afterwards."""

    async def main() -> Any:
        adapter = open_adapter(target or api_target(server), options())
        try:
            return await work(adapter)
        finally:
            await adapter.aclose()

    return asyncio.run(main())


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


# --- construction ---------------------------------------------------------------------------------------


def test_importing_the_adapter_does_not_import_the_sdk() -> None:
    code = "import sys, privsdk_mistral; print(sorted(m for m in sys.modules if m.startswith('mistralai')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_entry_point_builds_one_adapter_per_offering(server: LoopbackServer) -> None:
    api = open_adapter(api_target(server), options())
    azure = open_adapter(Target("az", "mistral.azure", "mistral-large", endpoint=server.url), options())
    assert isinstance(api, MistralAPIAdapter) and api.operations == {"chat", "stream", "embed"}
    assert isinstance(azure, MistralAzureAdapter) and azure.operations == {"chat", "stream"}
    assert api.vendor == azure.vendor == "mistral"
    assert server.requests == []


def test_mistral_on_vertex_fails_closed_naming_the_route_to_use() -> None:
    with pytest.raises(ConfigError) as raised:
        open_adapter(Target("gcp", "mistral.vertex", "mistral-large-2411", project="p", region="europe-west4"))
    assert "vertex.partner" in str(raised.value) and "gcp" in str(raised.value)
    with pytest.raises(ConfigError, match=r"mistral\.api or mistral\.azure"):
        open_adapter(Target("x", "mistral.batch", "mistral-small-latest"))


@pytest.mark.parametrize(
    ("region", "url"),
    [(None, "https://api.mistral.ai"), ("eu", "https://api.eu.mistral.ai"), ("us", "https://api.us.mistral.ai")],
)
def test_region_picks_the_sdk_server_and_an_endpoint_overrides_it(region: str | None, url: str) -> None:
    adapter = open_adapter(Target("m", "mistral.api", MODEL, region=region), options())
    assert isinstance(adapter, MistralAPIAdapter)
    assert adapter._sdk.sdk_configuration.get_server_details()[0] == url
    pinned = open_adapter(Target("m", "mistral.api", MODEL, region=region, endpoint="http://127.0.0.1:9"), options())
    assert isinstance(pinned, MistralAPIAdapter)
    assert pinned._sdk.sdk_configuration.get_server_details()[0] == "http://127.0.0.1:9"


def test_an_unknown_region_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="eu-west-1") as raised:
        open_adapter(Target("m", "mistral.api", MODEL, region="eu-west-1"), options())
    assert raised.value.hint is not None and '"eu"' in raised.value.hint


def test_azure_needs_an_endpoint_and_a_key_of_its_own(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="endpoint"):
        open_adapter(Target("az", "mistral.azure", "mistral-large"), options())
    with pytest.raises(ConfigError, match="azure_api_key"):  # la Plateforme's key is never sent to Azure
        open_adapter(azure_target(server), AdapterOptions(timeout=TIMEOUT, credentials={"api_key": KEY}))
    with pytest.raises(ConfigError, match="key") as raised:
        open_adapter(azure_target(server), AdapterOptions(timeout=TIMEOUT))
    assert raised.value.hint is not None and "AZURE_API_KEY" in raised.value.hint
    monkeypatch.setenv("AZURE_API_KEY", "from-env")
    open_adapter(azure_target(server), AdapterOptions(timeout=TIMEOUT)).chat(HELLO, timeout=TIMEOUT)
    assert server.requests[0].headers["authorization"] == "Bearer from-env"


# --- chat -----------------------------------------------------------------------------------------------


def test_chat_maps_the_whole_request_and_the_answer(server: LoopbackServer, mistral: Adapter) -> None:
    png = b"\x89PNG\r\n\x1a\n-not-really"
    request = ChatRequest(
        messages=(
            Message("system", "You are terse."),
            Message("user", (Text("What is in these?"), Image(data=png), Image(url="https://example.com/a.jpg"))),
            Message("assistant", "", tool_calls=(ToolCall("call_0a1_from_openai", "lookup", '{"q": "cat"}'),)),
            Message("tool", "a cat", tool_call_id="call_0a1_from_openai"),
        ),
        tools=(Tool("lookup", "Look a thing up", {"type": "object", "properties": {"q": {"type": "string"}}}),),
        tool_choice="required",
        temperature=0.2,
        top_p=0.9,
        max_tokens=64,
        stop=("END",),
        seed=7,
        response_format=ResponseFormat(
            {"type": "object", "properties": {"a": {"type": "string"}}}, "answer", strict=True
        ),
        extra={"safe_prompt": True, "presence_penalty": 0.5},
    )
    response = mistral.chat(request, timeout=TIMEOUT)

    (sent,) = server.requests
    assert (sent.method, sent.path) == ("POST", CHAT_PATH)
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["user-agent"].startswith("mistral-client-python/")
    body = sent.json()
    mistral_id = call_id("call_0a1_from_openai")
    assert body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": "data:image/png;base64," + base64.b64encode(png).decode()},
                {"type": "image_url", "image_url": "https://example.com/a.jpg"},
            ],
        },
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": mistral_id,
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q": "cat"}'},
                    "index": 0,
                }
            ],
            "prefix": False,
        },
        {"role": "tool", "content": "a cat", "tool_call_id": mistral_id, "name": "lookup"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "Look a thing up",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            },
        }
    ]
    assert {k: v for k, v in body.items() if k not in ("messages", "tools")} == {
        "model": MODEL,
        "tool_choice": "any",
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 64,
        "stop": ["END"],
        "random_seed": 7,
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "answer",
                "schema": {"type": "object", "properties": {"a": {"type": "string"}}},
                "strict": True,
            },
        },
        "safe_prompt": True,
        "presence_penalty": 0.5,
        "stream": False,
    }
    assert response.text == "Bonjour from Mistral"
    assert (response.tool_calls, response.finish_reason, response.model) == ((), "stop", MODEL)
    assert response.usage == Usage(12, 5)
    assert type(response.raw).__name__ == "ChatCompletionResponse"


def test_json_mode_and_tool_choice_words(server: LoopbackServer, mistral: Adapter) -> None:
    for choice in ("auto", "none"):
        mistral.chat(HELLO._replace(tool_choice=choice, response_format=ResponseFormat()), timeout=TIMEOUT)
    assert [(r.json()["tool_choice"], r.json()["response_format"]) for r in server.requests] == [
        ("auto", {"type": "json_object"}),
        ("none", {"type": "json_object"}),
    ]


def test_chat_returns_the_models_tool_calls(app: MistralApp, mistral: Adapter) -> None:
    app.text, app.finish_reason = "", "tool_calls"
    app.tool_calls = [("D681PevKs", "get_weather", '{"city": "Paris"}'), ("aB3xK9mP2", "get_time", "{}")]
    response = mistral.chat(HELLO, timeout=TIMEOUT)
    assert response.tool_calls == (
        ToolCall("D681PevKs", "get_weather", '{"city": "Paris"}'),
        ToolCall("aB3xK9mP2", "get_time", "{}"),
    )
    assert (response.text, response.finish_reason) == ("", "tool_calls")


@pytest.mark.parametrize(
    ("vendor", "ours"),
    [
        ("length", "length"),
        ("model_length", "length"),
        ("error", "error"),
        ("tool_calls", "tool_calls"),
        ("x", "other"),
    ],
)
def test_finish_reasons_are_normalised(app: MistralApp, mistral: Adapter, vendor: str, ours: str) -> None:
    app.finish_reason = vendor
    assert mistral.chat(HELLO, timeout=TIMEOUT).finish_reason == ours


def test_tool_call_ids_mistral_accepts_pass_and_others_map_stably() -> None:
    assert call_id("aB3xK9mP2") == "aB3xK9mP2"
    mapped = call_id("call_abc_123")
    assert len(mapped) == 9 and mapped.isalnum() and mapped == call_id("call_abc_123") != call_id("call_abc_124")


def test_credentials_come_from_the_sdks_own_variable_only_when_none_are_given(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "env-key")
    open_adapter(api_target(server), AdapterOptions(timeout=TIMEOUT)).chat(HELLO, timeout=TIMEOUT)
    assert server.requests[0].headers["authorization"] == "Bearer env-key"
    # A tenant's own credentials without a la Plateforme key must not borrow the deployment's.
    with pytest.raises(ConfigError, match="api_key"):
        open_adapter(api_target(server), AdapterOptions(credentials={"azure_api_key": AZURE_KEY}))
    assert len(server.requests) == 1


def test_sdk_telemetry_never_exports_the_prompt(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # With MISTRAL_SDK_TELEMETRY=dedicated, the bare SDK posts spans holding the prompt to its telemetry
    # endpoint (flushed when the client is collected); the adapter pins that off.
    monkeypatch.setenv("MISTRAL_SDK_TELEMETRY", "dedicated")
    monkeypatch.setenv("MISTRAL_OTLP_TRACES_ENDPOINT", server.url + "/telemetry/v1/traces")
    adapter = open_adapter(api_target(server), options())
    adapter.chat(HELLO, timeout=TIMEOUT)
    adapter.close()
    del adapter
    gc.collect()
    assert [r.path for r in server.requests] == [CHAT_PATH]


# --- streaming ------------------------------------------------------------------------------------------


def test_stream_yields_text_then_one_end_with_usage(server: LoopbackServer, mistral: Adapter) -> None:
    events = list(mistral.stream(HELLO, timeout=TIMEOUT))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Bonjour from Mistral"
    assert len([e for e in events if isinstance(e, TextDelta)]) == 3
    assert events[-1] == StreamEnd("stop", Usage(12, 5), MODEL)
    assert sum(isinstance(e, StreamEnd) for e in events) == 1
    (sent,) = server.requests
    assert sent.json()["stream"] is True and "text/event-stream" in sent.headers["accept"]


def test_stream_tool_calls(app: MistralApp, mistral: Adapter) -> None:
    app.text, app.finish_reason = "", "tool_calls"
    app.tool_calls = [("D681PevKs", "get_weather", '{"city": "Paris"}'), ("aB3xK9mP2", "get_time", "{}")]
    events = list(mistral.stream(HELLO, timeout=TIMEOUT))
    assert [e for e in events if isinstance(e, ToolCallDelta)] == [
        ToolCallDelta(0, "D681PevKs", "get_weather", '{"city": "Paris"}'),
        ToolCallDelta(1, "aB3xK9mP2", "get_time", "{}"),
    ]
    assert events[-1] == StreamEnd("tool_calls", Usage(12, 5), MODEL)


def test_a_stream_that_stops_early_closes_its_connection(server: LoopbackServer, app: MistralApp) -> None:
    app.chunks = 50
    adapter = open_adapter(api_target(server), options())
    events = adapter.stream(HELLO, timeout=TIMEOUT)
    assert isinstance(next(events), TextDelta)
    events.close()  # type: ignore[attr-defined]
    assert adapter.chat(HELLO, timeout=TIMEOUT).text == app.text
    assert len(server.requests) == 2


# --- async ----------------------------------------------------------------------------------------------


def test_async_chat_stream_and_embed(server: LoopbackServer) -> None:
    async def work(adapter: Adapter) -> tuple[Any, ...]:
        chat = await adapter.achat(HELLO, timeout=TIMEOUT)
        events = await collect(adapter.astream(HELLO, timeout=TIMEOUT))
        embedded = await adapter.aembed(EmbedRequest(("a b", "c")), timeout=TIMEOUT)
        return chat, events, embedded

    chat, events, embedded = run_async(server, work)
    assert (chat.text, chat.usage, chat.finish_reason) == ("Bonjour from Mistral", Usage(12, 5), "stop")
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == chat.text
    assert events[-1] == StreamEnd("stop", Usage(12, 5), MODEL)
    assert embedded.vectors == [[3.0] * 4, [1.1] * 4]
    assert [r.path for r in server.requests] == [CHAT_PATH, CHAT_PATH, EMBED_PATH]


def test_async_errors_are_vendor_errors(server: LoopbackServer) -> None:
    server.fail(Status(503, body=error_body(PROMPT, "service_unavailable")), Delay(2))

    async def work(adapter: Adapter) -> list[BaseException]:
        raised: list[BaseException] = []
        for call in (adapter.achat(HELLO, timeout=0.3), collect(adapter.astream(HELLO, timeout=0.3))):
            try:
                await call
            except VendorError as exc:
                raised.append(exc)
        return raised

    unavailable, timeout = run_async(server, work)
    assert isinstance(unavailable, Unavailable) and unavailable.status == 503
    assert isinstance(timeout, VendorTimeout)
    assert len(server.requests) == 2


# --- embeddings -----------------------------------------------------------------------------------------


def test_embed(server: LoopbackServer, mistral: Adapter) -> None:
    response = mistral.embed(
        EmbedRequest(("hello world", "bye"), dimensions=3, extra={"output_dtype": "float"}),
        timeout=TIMEOUT,
    )
    (sent,) = server.requests
    assert (sent.path, sent.json()) == (
        EMBED_PATH,
        {"model": MODEL, "input": ["hello world", "bye"], "output_dimension": 3, "output_dtype": "float"},
    )
    assert response.vectors == [[11.0] * 3, [3.1] * 3]
    assert (response.usage, response.model) == (Usage(3, 0), MODEL)


# --- what the adapter refuses before any network --------------------------------------------------------


def test_unsupported_requests_send_nothing(server: LoopbackServer, mistral: Adapter) -> None:
    with pytest.raises(Unsupported, match="rerank"):
        mistral.rerank(RerankRequest("q", ("a",)), timeout=TIMEOUT)
    with pytest.raises(Unsupported, match="not_a_field"):
        mistral.chat(HELLO._replace(extra={"not_a_field": 1}), timeout=TIMEOUT)
    with pytest.raises(Unsupported, match="messages"):
        mistral.stream(HELLO._replace(extra={"messages": []}), timeout=TIMEOUT)
    with pytest.raises(Unsupported, match="user messages only"):
        mistral.chat(ChatRequest((Message("system", (Image(url="https://x/y.png"),)), *HELLO.messages)), timeout=1)
    with pytest.raises(Unsupported, match="tool_call_id"):
        mistral.chat(ChatRequest((*HELLO.messages, Message("tool", "x"))), timeout=TIMEOUT)
    azure = open_adapter(Target("az", "mistral.azure", "m", endpoint=server.url), options())
    with pytest.raises(Unsupported, match="embed"):
        azure.embed(EmbedRequest(("a",)), timeout=TIMEOUT)
    assert server.requests == []


# --- errors ---------------------------------------------------------------------------------------------

ERRORS = [
    (Status(429, {"Retry-After": "3"}, error_body(PROMPT, "rate_limited")), RateLimited, 3.0, "rate_limited"),
    (Status(429, {"retry-after-ms": "1500"}, error_body(PROMPT, "rate_limited")), RateLimited, 1.5, "rate_limited"),
    (Status(500, body=error_body(PROMPT, "internal_server_error")), Unavailable, None, "internal_server_error"),
    (Status(503, body=b"<html>Service Unavailable</html>"), Unavailable, None, None),
    (Status(400, body=error_body(PROMPT, "invalid_request_error", "3051")), BadRequest, None, "invalid_request_error"),
    (Status(401, body=error_body(PROMPT, "authentication_error")), AuthFailed, None, "authentication_error"),
    (Status(404, body=error_body(PROMPT, "invalid_request_error", "unknown_model")), NotFound, None, "unknown_model"),
    (
        Status(422, body=json.dumps({"detail": [{"msg": PROMPT, "type": "extra_forbidden"}]}).encode()),
        BadRequest,
        None,
        None,
    ),
    (Status(403, body=guardrail_body(PROMPT)), ContentRefused, None, None),
    (Status(403, body=error_body(PROMPT, "permission_error")), AuthFailed, None, "permission_error"),
]


@pytest.mark.usefixtures("debug_chain")
@pytest.mark.parametrize("streamed", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize(("fault", "cls", "wait", "code"), ERRORS)
def test_http_errors_are_classified_without_vendor_text(
    server: LoopbackServer,
    mistral: Adapter,
    fault: Status,
    cls: type[VendorError],
    wait: float | None,
    code: str | None,
    streamed: bool,
) -> None:
    server.fail(fault)
    with pytest.raises(cls) as raised:
        if streamed:
            list(mistral.stream(HELLO, timeout=TIMEOUT))
        else:
            mistral.chat(HELLO, timeout=TIMEOUT)
    error = raised.value
    assert type(error) is cls and (error.status, error.retry_after, error.code) == (fault.status, wait, code)
    assert PROMPT not in str(error) and "4242" not in str(error)
    assert type(error.__cause__).__module__.startswith("mistralai.")
    assert len(server.requests) == 1  # the SDK did not retry


def test_a_slow_server_times_out(server: LoopbackServer, mistral: Adapter) -> None:
    server.fail(Delay(2), Delay(2), Delay(2))
    for call in (
        lambda: mistral.chat(HELLO, timeout=0.3),
        lambda: list(mistral.stream(HELLO, timeout=0.3)),
        lambda: mistral.embed(EmbedRequest(("a",)), timeout=0.3),
    ):
        with pytest.raises(VendorTimeout) as raised:
            call()
        assert raised.value.status is None and isinstance(raised.value, TimeoutError)
    assert len(server.requests) == 3


def test_a_reset_connection_is_lost(server: LoopbackServer, mistral: Adapter) -> None:
    server.fail(Reset(), Reset())
    with pytest.raises(ConnectionLost):
        mistral.chat(HELLO, timeout=TIMEOUT)
    with pytest.raises(ConnectionLost):
        list(mistral.stream(HELLO, timeout=TIMEOUT))
    assert len(server.requests) == 2


@pytest.mark.parametrize("drop", [True, False], ids=["dropped", "ended-early"])
def test_a_cut_stream_is_a_lost_connection_after_the_text_so_far(
    server: LoopbackServer, mistral: Adapter, drop: bool
) -> None:
    server.fail(Cut(after=2, drop=drop))
    events, error = drain(mistral.stream(HELLO, timeout=TIMEOUT))
    assert events == [TextDelta("Bonjour")]
    assert isinstance(error, ConnectionLost)


@pytest.mark.parametrize(
    ("type", "cls"),
    [("service_unavailable", Unavailable), ("internal_server_error", Unavailable), ("rate_limited", RateLimited)],
)
def test_an_error_event_inside_a_stream(
    server: LoopbackServer, mistral: Adapter, type: str, cls: type[VendorError]
) -> None:
    server.fail(Cut(after=2, then=stream_error(PROMPT, type), drop=False))
    events, error = drain(mistral.stream(HELLO, timeout=TIMEOUT))
    assert events == [TextDelta("Bonjour")]
    assert isinstance(error, cls) and error.code == type and error.status is None
    assert PROMPT not in str(error)
    assert len(server.requests) == 1


def test_an_openai_style_error_event_is_also_caught(server: LoopbackServer, mistral: Adapter) -> None:
    event = b'data: {"error": {"message": "' + PROMPT.encode() + b'", "type": "rate_limit_error"}}\n\n'
    server.fail(Cut(after=1, then=event, drop=False))
    events, error = drain(mistral.stream(HELLO, timeout=TIMEOUT))
    assert events == [] and isinstance(error, RateLimited) and error.code == "rate_limit_error"


# --- Mistral models on Azure AI Foundry -----------------------------------------------------------------


def azure_target(server: LoopbackServer, **fields: Any) -> Target:
    return Target(
        "az", "mistral.azure", "mistral-large", endpoint=server.url, deployment="mistral-large-2411", **fields
    )


def test_azure_chat_and_stream(server: LoopbackServer) -> None:
    adapter = open_adapter(azure_target(server, api_version="2024-05-01-preview"), options())
    response = adapter.chat(HELLO._replace(temperature=0.1), timeout=TIMEOUT)
    events = list(adapter.stream(HELLO, timeout=TIMEOUT))
    assert (response.text, response.usage, response.model) == (
        "Bonjour from Mistral",
        Usage(12, 5),
        "mistral-large-2411",
    )
    assert events[-1] == StreamEnd("stop", Usage(12, 5), "mistral-large-2411")
    for sent in server.requests:
        assert (sent.path, sent.query["api-version"]) == (AZURE_CHAT_PATH, ["2024-05-01-preview"])
        assert sent.headers["authorization"] == f"Bearer {AZURE_KEY}"
        assert sent.json()["model"] == "mistral-large-2411"
    assert server.requests[0].json()["temperature"] == 0.1


@pytest.mark.usefixtures("debug_chain")
def test_azure_async_and_errors(server: LoopbackServer) -> None:
    server.fail(Status(429, {"Retry-After": "2"}, error_body(PROMPT, "rate_limited")))
    adapter = open_adapter(azure_target(server), options())
    with pytest.raises(RateLimited) as raised:
        adapter.chat(HELLO, timeout=TIMEOUT)
    assert (raised.value.status, raised.value.retry_after) == (429, 2.0) and PROMPT not in str(raised.value)
    assert type(raised.value.__cause__).__module__.startswith("mistralai.azure.")
    server.fail(Cut(after=2, then=stream_error(PROMPT), drop=False))

    async def work(adapter: Adapter) -> tuple[Any, BaseException | None]:
        try:
            await collect(adapter.astream(HELLO, timeout=TIMEOUT))
        except VendorError as exc:
            return await adapter.achat(HELLO, timeout=TIMEOUT), exc
        return None, None

    chat, error = run_async(server, work, azure_target(server))
    assert chat.text == "Bonjour from Mistral" and isinstance(error, Unavailable)
    assert [r.query["api-version"] for r in server.requests] == [["2024-05-01-preview"]] * 3
