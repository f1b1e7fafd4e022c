"""The Vertex adapter driving the real google-genai SDK over real HTTP against a loopback Gemini service.

Both offerings it serves are exercised: Gemini on Vertex AI (``vertex.gemini``, OAuth bearer token,
``/v1beta1/projects/{p}/locations/{l}/...``) and the Gemini Developer API (``gemini.api``, API key,
``/v1/models/...``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, NamedTuple

import httpx
import pytest
import requests
from privsdk_vertex.errors import vendor_error

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
from privsdk.outbound.judge import Guard
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
from tests.wire.server import Cut, Delay, LoopbackServer, Recorded, Reset, Status
from tests.wire.vertex import API_KEY, TOKEN, GeminiApp, error_body, stream_error, tokens, vector

CHAT_MODEL = "gemini-2.5-flash"
PROJECT = "acme-prod"
LOCATION = "europe-west4"
#: What a user wrote; Google's errors echo request content, so no privsdk error may contain it.
PROMPT = "my card number is 4242 4242 4242 4242"
HELLO = ChatRequest((Message("user", PROMPT),))
TIMEOUT = 2.0
PNG = b"\x89PNG\r\n\x1a\n-not-really-an-image"
WEATHER = Tool(
    "get_weather",
    "The weather in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
ANSWER_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}}
#: Every environment variable google-genai or google-auth reads that could redirect or authorise a call.
VENDOR_ENV = (
    "GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_ENTERPRISE", "GOOGLE_VERTEX_BASE_URL", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_API_VERSION",
    "GOOGLE_GENAI_HTTP_CLIENT", "GOOGLE_API_USE_CLIENT_CERTIFICATE", "GOOGLE_API_USE_MTLS_ENDPOINT",
)  # fmt: skip


class Offering(NamedTuple):
    """How one offering is reached: its target, credentials, the path prefix of a model, its auth header."""

    target: Target
    credentials: dict[str, str]
    prefix: str
    auth: tuple[str, str]

    def path(self, model: str, method: str) -> str:
        return f"{self.prefix}/{model}:{method}"


def vertex(server: LoopbackServer, model: str = CHAT_MODEL, **fields: Any) -> Target:
    place = {"project": PROJECT, "region": LOCATION, **fields}
    return Target("vertex-gemini-eu", "vertex.gemini", model, endpoint=server.url, **place)


def gemini(server: LoopbackServer, model: str = CHAT_MODEL) -> Target:
    return Target("gemini-flash", "gemini.api", model, endpoint=server.url)


VERTEX_PREFIX = f"/v1beta1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models"


@pytest.fixture(autouse=True)
def _no_vendor_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """The developer's own Google settings never reach these tests, nor do their Application Default Credentials."""
    for name in VENDOR_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-credentials.json"))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))


@pytest.fixture
def app() -> GeminiApp:
    return GeminiApp()


@pytest.fixture(scope="module")
def _shared_server() -> Iterator[LoopbackServer]:
    """One server for the module: stopping one takes half a second (its poll interval)."""
    with LoopbackServer(GeminiApp()) as server:
        yield server


def declare(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The adapters' clients are guarded: declare the loopback server as both offerings' endpoint, by path."""
    url = server.url
    endpoints = f"{url}/v1beta1=vertex.gemini,{url}/v1/projects=vertex.gemini,{url}/v1/models=gemini.api"
    monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{endpoints},{url}/v1beta/models=gemini.api")
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    Guard.reset_default()


@pytest.fixture
def server(_shared_server: LoopbackServer, app: GeminiApp, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """The shared server with this test's app, and no requests, errors or faults left from another test."""
    server = _shared_server
    declare(server, monkeypatch)
    server.app = app
    server.requests.clear()
    server.errors.clear()
    yield server
    while server.next_fault() is not None:
        pass
    assert server.errors == []


@pytest.fixture(scope="module", params=["vertex", "gemini"])
def offering(request: pytest.FixtureRequest, _shared_server: LoopbackServer) -> Offering:
    server = _shared_server
    if request.param == "vertex":
        return Offering(vertex(server), {"access_token": TOKEN}, VERTEX_PREFIX, ("authorization", f"Bearer {TOKEN}"))
    return Offering(gemini(server), {"api_key": API_KEY}, "/v1/models", ("x-goog-api-key", API_KEY))


def options(credentials: dict[str, str] | None = None, timeout: float = TIMEOUT) -> AdapterOptions:
    return AdapterOptions(timeout=timeout, credentials={"access_token": TOKEN} if credentials is None else credentials)


@pytest.fixture(scope="module")
def _shared_adapter(offering: Offering) -> Iterator[Adapter]:
    """One adapter per offering for the module: google-genai takes ~0.15 s to build a client (CA certificates)."""
    adapter = open_adapter(offering.target, options(offering.credentials))
    yield adapter
    adapter.close()


@pytest.fixture
def adapter(_shared_adapter: Adapter, server: LoopbackServer) -> Adapter:
    return _shared_adapter


def only_request(server: LoopbackServer) -> Recorded:
    """The one request a call made: the SDK's own retries are off."""
    (request,) = server.requests
    return request


def drain(events: Iterator[StreamEvent]) -> tuple[list[StreamEvent], BaseException | None]:
    """The events a stream gave before it ended or raised, and what it raised."""
    seen: list[StreamEvent] = []
    try:
        for event in events:
            seen.append(event)
    except Exception as exc:
        return seen, exc
    return seen, None


def run_async(target: Target, credentials: dict[str, str], work: Callable[[Adapter], Awaitable[Any]]) -> Any:
    """``work(adapter)`` awaited in a fresh event loop, with an adapter of its own closed afterwards."""

    async def main() -> Any:
        adapter = open_adapter(target, options(credentials))
        try:
            return await work(adapter)
        finally:
            await adapter.aclose()

    return asyncio.run(main())


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


def assert_clean(exc: BaseException) -> None:
    """A privsdk vendor error that does not repeat the vendor's text, nor chain the SDK's exception."""
    assert isinstance(exc, VendorError)
    assert PROMPT not in str(exc) and "4242" not in str(exc)
    assert exc.__cause__ is None and exc.__suppress_context__


# -- the package ----------------------------------------------------------------------------------


def test_importing_the_adapter_does_not_import_the_sdk() -> None:
    code = "import sys, privsdk_vertex; assert 'google.genai' not in sys.modules and 'google.auth' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_construction_sends_nothing_and_needs_no_credentials_yet(server: LoopbackServer) -> None:
    """Without an access token the SDK looks up Application Default Credentials at the first call, not before."""
    adapter = open_adapter(vertex(server), AdapterOptions(timeout=TIMEOUT))
    assert adapter.operations == {"chat", "stream", "embed"}
    with pytest.raises(ConfigError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        adapter.chat(HELLO, timeout=TIMEOUT)  # the test's ADC file does not exist
    assert server.requests == []


@pytest.mark.parametrize(
    ("fields", "env", "where"),
    [
        ({"project": None}, {}, "targets.vertex-gemini-eu.project"),
        ({"region": None}, {}, "targets.vertex-gemini-eu.region"),
        ({"region": "europe west4"}, {}, "targets.vertex-gemini-eu.region"),
        ({"region": None}, {"GOOGLE_CLOUD_LOCATION": "eu/../x"}, "GOOGLE_CLOUD_LOCATION"),
        ({}, {"GOOGLE_VERTEX_BASE_URL": "https://elsewhere.example"}, "GOOGLE_VERTEX_BASE_URL"),
    ],
)
def test_a_vertex_target_without_a_place_is_refused(
    server: LoopbackServer,
    monkeypatch: pytest.MonkeyPatch,
    fields: dict[str, Any],
    env: dict[str, str],
    where: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    target = vertex(server, **fields)
    if "GOOGLE_VERTEX_BASE_URL" in env:
        target = target._replace(endpoint=None)
    with pytest.raises(ConfigError) as caught:
        open_adapter(target, options())
    assert caught.value.where == where
    assert server.requests == []


def test_project_and_location_may_come_from_the_sdk_environment(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-project")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "global")
    adapter = open_adapter(vertex(server, project=None, region=None), options())
    adapter.chat(HELLO, timeout=TIMEOUT)
    path = only_request(server).path
    assert (
        path == f"/v1beta1/projects/env-project/locations/global/publishers/google/models/{CHAT_MODEL}:generateContent"
    )


def test_api_version_comes_from_the_target(server: LoopbackServer) -> None:
    adapter = open_adapter(vertex(server, api_version="v1"), options())
    adapter.chat(HELLO, timeout=TIMEOUT)
    assert only_request(server).path.startswith(f"/v1/projects/{PROJECT}/locations/{LOCATION}/")


@pytest.mark.parametrize(
    ("location", "host"),
    [
        ("europe-west4", "https://europe-west4-aiplatform.googleapis.com/"),
        ("eu", "https://aiplatform.eu.rep.googleapis.com/"),
        ("global", "https://aiplatform.googleapis.com/"),
    ],
)
def test_the_location_picks_the_endpoint(location: str, host: str) -> None:
    """Regional, multi-regional and global endpoints: where the policy's region=... attestations point."""
    adapter = open_adapter(Target("v", "vertex.gemini", CHAT_MODEL, project=PROJECT, region=location), options())
    assert (adapter.project, adapter.location) == (PROJECT, location)  # type: ignore[attr-defined]
    assert adapter._client._api_client._http_options.base_url == host  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("target", "credentials", "message"),
    [
        (Target("claude", "vertex.partner", "claude-sonnet-4", project=PROJECT, region=LOCATION), {}, "not reachable"),
        (Target("g", "vertex.gemini", CHAT_MODEL, project=PROJECT, region=LOCATION), {"api_key": "k"}, "api_key"),
        (Target("g", "gemini.api", CHAT_MODEL, region="europe-west4"), {"api_key": "k"}, "cannot set region"),
        (Target("g", "gemini.api", CHAT_MODEL), {}, "no API key"),
        (Target("g", "vertex.imagen", "imagen-4"), {}, "does not serve"),
    ],
)
def test_targets_it_cannot_serve_fail_closed(target: Target, credentials: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        open_adapter(target, AdapterOptions(timeout=TIMEOUT, credentials=credentials))
    assert (caught.value.where or "").startswith(f"targets.{target.name}")


def test_unsupported_operations_send_nothing(adapter: Adapter, server: LoopbackServer) -> None:
    with pytest.raises(Unsupported):
        adapter.rerank(RerankRequest("q", ("a", "b")), timeout=TIMEOUT)
    orphan = ChatRequest((Message("user", "hi"), Message("tool", "42", tool_call_id="nobody-called")))
    with pytest.raises(Unsupported, match="matches results by name"):
        adapter.chat(orphan, timeout=TIMEOUT)
    bad_args = (Message("assistant", tool_calls=(ToolCall("c1", "get_weather", "[1, 2]"),)),)
    with pytest.raises(Unsupported, match="JSON object"):
        adapter.stream(ChatRequest((Message("user", "hi"), *bad_args)), timeout=TIMEOUT)
    assert server.requests == []


# -- chat -----------------------------------------------------------------------------------------


def test_chat_maps_every_field(adapter: Adapter, offering: Offering, server: LoopbackServer, app: GeminiApp) -> None:
    request = ChatRequest(
        (
            Message("system", "Answer in French."),
            Message(
                "user", (Text(PROMPT), Image(data=PNG), Image(url="gs://bucket/cat.jpeg", media_type="image/jpeg"))
            ),
            Message("assistant", "Let me look.", tool_calls=(ToolCall("call-1", "get_weather", '{"city": "Paris"}'),)),
            Message("tool", '{"celsius": 21}', tool_call_id="call-1"),
            Message("user", "And tomorrow?"),
        ),
        tools=(WEATHER,),
        tool_choice="required",
        temperature=0.2,
        top_p=0.9,
        max_tokens=64,
        stop=("END",),
        seed=7,
        response_format=ResponseFormat(ANSWER_SCHEMA),
        extra={"generationConfig": {"topK": 5}},
    )
    answer = adapter.chat(request, timeout=TIMEOUT)

    sent = only_request(server)
    assert sent.path == offering.path(CHAT_MODEL, "generateContent")
    assert sent.headers[offering.auth[0]] == offering.auth[1]
    body = sent.json()
    assert body["systemInstruction"]["parts"] == [{"text": "Answer in French."}]
    user, model, results, follow_up = body["contents"]
    assert user["role"] == "user"
    assert user["parts"][0] == {"text": PROMPT}
    assert base64.b64decode(user["parts"][1]["inlineData"]["data"]) == PNG
    assert user["parts"][2]["fileData"] == {"file_uri": "gs://bucket/cat.jpeg", "mime_type": "image/jpeg"}
    assert model == {
        "role": "model",
        "parts": [
            {"text": "Let me look."},
            {"functionCall": {"id": "call-1", "name": "get_weather", "args": {"city": "Paris"}}},
        ],
    }
    assert results == {
        "role": "user",
        "parts": [{"functionResponse": {"id": "call-1", "name": "get_weather", "response": {"celsius": 21}}}],
    }
    assert follow_up == {"role": "user", "parts": [{"text": "And tomorrow?"}]}
    (declaration,) = body["tools"][0]["functionDeclarations"]
    assert declaration == {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters_json_schema": dict(WEATHER.parameters),
    }
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert body["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.9,
        "topK": 5,
        "maxOutputTokens": 64,
        "stopSequences": ["END"],
        "seed": 7,
        "responseMimeType": "application/json",
        "responseJsonSchema": ANSWER_SCHEMA,
    }

    assert answer.text == app.text
    assert (answer.finish_reason, answer.tool_calls) == ("stop", ())
    prompt = sum(tokens(t) for t in ("Answer in French.", PROMPT, "Let me look.", "And tomorrow?"))
    assert answer.usage.input_tokens == prompt
    assert answer.usage.output_tokens == tokens(app.text)
    assert answer.model == f"{CHAT_MODEL}-001"
    assert answer.raw.candidates[0].content.parts[0].text == app.text


def test_vertex_extra_fields_reach_the_body(server: LoopbackServer) -> None:
    adapter = open_adapter(vertex(server), options())
    adapter.chat(HELLO._replace(extra={"labels": {"team": "search"}}), timeout=TIMEOUT)
    assert only_request(server).json()["labels"] == {"team": "search"}


def test_a_data_url_image_goes_inline(adapter: Adapter, server: LoopbackServer) -> None:
    url = "data:image/webp;base64," + base64.b64encode(PNG).decode()
    adapter.chat(ChatRequest((Message("user", (Text("what is it?"), Image(url=url))),)), timeout=TIMEOUT)
    part = only_request(server).json()["contents"][0]["parts"][1]
    assert part["inlineData"]["mime_type"] == "image/webp"
    assert base64.b64decode(part["inlineData"]["data"]) == PNG


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("SPII", "content_filter"),
        ("RECITATION", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "other"),
    ],
)
def test_finish_reasons(adapter: Adapter, app: GeminiApp, finish: str, expected: str) -> None:
    app.finish = finish
    assert adapter.chat(HELLO, timeout=TIMEOUT).finish_reason == expected


def test_thinking_tokens_count_as_output(adapter: Adapter, app: GeminiApp) -> None:
    app.thoughts = 40
    assert adapter.chat(HELLO, timeout=TIMEOUT).usage.output_tokens == tokens(app.text) + 40


def test_a_blocked_prompt_is_content_refused(adapter: Adapter, app: GeminiApp, server: LoopbackServer) -> None:
    app.block = "PROHIBITED_CONTENT"
    with pytest.raises(ContentRefused) as caught:
        adapter.chat(HELLO, timeout=TIMEOUT)
    assert caught.value.code == "PROHIBITED_CONTENT"
    events, error = drain(adapter.stream(HELLO, timeout=TIMEOUT))
    assert events == [] and isinstance(error, ContentRefused) and error.code == "PROHIBITED_CONTENT"
    assert len(server.requests) == 2


# -- tool calls -----------------------------------------------------------------------------------


def test_tool_calls_without_ids_round_trip_by_name(adapter: Adapter, app: GeminiApp, server: LoopbackServer) -> None:
    """Vertex gives no call ids: privsdk makes its own, never sends them, and Gemini matches results by name."""
    app.text = ""
    app.calls = [{"name": "get_weather", "args": {"city": "Paris"}}, {"name": "get_weather", "args": {"city": "Oslo"}}]
    answer = adapter.chat(ChatRequest((Message("user", "weather?"),), tools=(WEATHER,)), timeout=TIMEOUT)
    assert answer.finish_reason == "tool_calls"
    first, second = answer.tool_calls
    assert (first.name, json.loads(first.arguments)) == ("get_weather", {"city": "Paris"})
    assert json.loads(second.arguments) == {"city": "Oslo"}
    assert first.id and second.id and first.id != second.id

    history = (
        Message("user", "weather?"),
        Message("assistant", tool_calls=answer.tool_calls),
        Message("tool", "sunny", tool_call_id=first.id),
        Message("tool", "snow", tool_call_id=second.id),
    )
    app.calls, app.text = [], "Sunny in Paris, snow in Oslo."
    assert adapter.chat(ChatRequest(history, tools=(WEATHER,)), timeout=TIMEOUT).text == app.text
    _, model, results = server.requests[1].json()["contents"]
    assert [p["functionCall"] for p in model["parts"]] == [
        {"name": "get_weather", "args": {"city": "Paris"}},
        {"name": "get_weather", "args": {"city": "Oslo"}},
    ]
    assert results["parts"] == [  # both results in one turn, as Gemini wants them
        {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}},
        {"functionResponse": {"name": "get_weather", "response": {"output": "snow"}}},
    ]


def test_the_models_call_ids_and_thought_signature_come_back(
    adapter: Adapter, app: GeminiApp, server: LoopbackServer
) -> None:
    """Gemini 3 refuses a history whose function call lost its thought signature; the app checks like it."""
    signature = base64.b64encode(b"opaque reasoning state").decode()
    app.signature = signature
    app.calls = [{"id": "fc-19", "name": "get_weather", "args": {"city": "Lima"}}]
    (call,) = adapter.chat(ChatRequest((Message("user", "weather?"),), tools=(WEATHER,)), timeout=TIMEOUT).tool_calls
    assert call.id == "fc-19"

    history = (
        Message("user", "weather?"),
        Message("assistant", tool_calls=(call,)),
        Message("tool", "mild", tool_call_id="fc-19"),
    )
    app.calls = []
    adapter.chat(ChatRequest(history, tools=(WEATHER,)), timeout=TIMEOUT)
    _, model, results = server.requests[1].json()["contents"]
    assert model["parts"] == [
        {
            "functionCall": {"id": "fc-19", "name": "get_weather", "args": {"city": "Lima"}},
            "thoughtSignature": signature,
        }
    ]
    assert results["parts"][0]["functionResponse"]["id"] == "fc-19"


def test_tool_choice_modes(adapter: Adapter, server: LoopbackServer) -> None:
    for choice in ("auto", "none", "required"):
        adapter.chat(ChatRequest((Message("user", "hi"),), tools=(WEATHER,), tool_choice=choice), timeout=TIMEOUT)
    modes = [r.json()["toolConfig"]["functionCallingConfig"]["mode"] for r in server.requests]
    assert modes == ["AUTO", "NONE", "ANY"]


# -- streams --------------------------------------------------------------------------------------


def test_stream(adapter: Adapter, offering: Offering, server: LoopbackServer, app: GeminiApp) -> None:
    app.chunks = 5
    events, error = drain(adapter.stream(HELLO, timeout=TIMEOUT))
    assert error is None
    *deltas, end = events
    assert all(isinstance(d, TextDelta) for d in deltas) and len(deltas) == 5
    assert "".join(d.text for d in deltas if isinstance(d, TextDelta)) == app.text
    assert end == StreamEnd("stop", Usage(tokens(PROMPT), tokens(app.text)), f"{CHAT_MODEL}-001")
    sent = only_request(server)
    assert (sent.path, sent.query) == (offering.path(CHAT_MODEL, "streamGenerateContent"), {"alt": ["sse"]})
    assert sent.headers[offering.auth[0]] == offering.auth[1]


def test_a_streamed_tool_call(adapter: Adapter, app: GeminiApp) -> None:
    app.text = "Checking."
    app.calls = [{"name": "get_weather", "args": {"city": "Paris"}}]
    events, error = drain(
        adapter.stream(ChatRequest((Message("user", "weather?"),), tools=(WEATHER,)), timeout=TIMEOUT)
    )
    assert error is None
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    assert len(calls) == 1 and calls[0].call == 0 and calls[0].id
    assert (calls[0].name, json.loads(calls[0].arguments)) == ("get_weather", {"city": "Paris"})
    assert isinstance(events[-1], StreamEnd) and events[-1].finish_reason == "tool_calls"


def test_stopping_a_stream_early_is_quiet(adapter: Adapter, app: GeminiApp, server: LoopbackServer) -> None:
    app.chunks = 10
    events = adapter.stream(HELLO, timeout=TIMEOUT)
    assert isinstance(next(events), TextDelta)
    events.close()  # type: ignore[attr-defined]
    assert adapter.chat(HELLO, timeout=TIMEOUT).text == app.text
    assert len(server.requests) == 2


# -- embeddings -----------------------------------------------------------------------------------


def test_embed_on_vertex_text_embedding_models_uses_predict(server: LoopbackServer) -> None:
    adapter = open_adapter(vertex(server, "text-embedding-005"), options())
    texts = ("the first text", "a second one here")
    answer = adapter.embed(EmbedRequest(texts, input_type="search_query", dimensions=8), timeout=TIMEOUT)
    sent = only_request(server)
    assert sent.path == f"{VERTEX_PREFIX}/text-embedding-005:predict"
    assert sent.json() == {
        "instances": [{"content": t, "task_type": "RETRIEVAL_QUERY"} for t in texts],
        "parameters": {"outputDimensionality": 8},
    }
    assert answer.vectors == [vector(t, 8) for t in texts]
    assert answer.usage.input_tokens == sum(tokens(t) for t in texts)  # statistics.token_count per instance
    assert answer.model == "text-embedding-005"


@pytest.mark.parametrize(
    ("texts", "method"), [(("one text",), "embedContent"), (("one", "and two"), "batchEmbedContents")]
)
def test_embed_on_vertex_gemini_embedding_models(server: LoopbackServer, texts: tuple[str, ...], method: str) -> None:
    adapter = open_adapter(vertex(server, "gemini-embedding-001"), options())
    answer = adapter.embed(EmbedRequest(texts, input_type="search_document"), timeout=TIMEOUT)
    assert only_request(server).path == f"{VERTEX_PREFIX}/gemini-embedding-001:{method}"
    assert answer.vectors == [vector(t, 4) for t in texts]
    assert answer.usage.input_tokens == sum(tokens(t) for t in texts)


def test_embed_on_the_gemini_api(server: LoopbackServer) -> None:
    adapter = open_adapter(gemini(server, "gemini-embedding-001"), options({"api_key": API_KEY}))
    texts = ("alpha beta", "gamma")
    answer = adapter.embed(EmbedRequest(texts, input_type="clustering", dimensions=6), timeout=TIMEOUT)
    sent = only_request(server)
    assert (sent.path, sent.headers["x-goog-api-key"]) == (
        "/v1/models/gemini-embedding-001:batchEmbedContents",
        API_KEY,
    )
    assert [r["taskType"] for r in sent.json()["requests"]] == ["CLUSTERING", "CLUSTERING"]
    assert answer.vectors == [vector(t, 6) for t in texts]
    assert answer.usage.input_tokens == 3


# -- async ----------------------------------------------------------------------------------------


def test_async_chat_stream_and_embed(offering: Offering, server: LoopbackServer, app: GeminiApp) -> None:
    async def work(adapter: Adapter) -> tuple[Any, ...]:
        answer = await adapter.achat(HELLO, timeout=TIMEOUT)
        events = await collect(adapter.astream(HELLO, timeout=TIMEOUT))
        return answer, events

    answer, events = run_async(offering.target, offering.credentials, work)
    assert answer.text == app.text and answer.usage.input_tokens == tokens(PROMPT)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == app.text
    end = events[-1]
    assert isinstance(end, StreamEnd) and end.usage.output_tokens == tokens(app.text)

    embedder = offering.target._replace(model="gemini-embedding-001")
    texts = ("one", "two words")
    embedded = run_async(embedder, offering.credentials, lambda a: a.aembed(EmbedRequest(texts), timeout=TIMEOUT))
    assert embedded.vectors == [vector(t, 4) for t in texts]
    assert [r.path.rsplit(":", 1)[1] for r in server.requests] == [
        "generateContent",
        "streamGenerateContent",
        "batchEmbedContents",
    ]


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "headers", "retry_delay", "kind", "wait"),
    [
        (429, "RESOURCE_EXHAUSTED", {"Retry-After": "7"}, None, RateLimited, 7.0),
        (429, "RESOURCE_EXHAUSTED", {}, "12.5s", RateLimited, 12.5),  # google.rpc.RetryInfo in the body
        (500, "INTERNAL", {}, None, Unavailable, None),
        (503, "UNAVAILABLE", {}, None, Unavailable, None),
        (504, "DEADLINE_EXCEEDED", {}, None, VendorTimeout, None),
        (400, "INVALID_ARGUMENT", {}, None, BadRequest, None),
        (401, "UNAUTHENTICATED", {}, None, AuthFailed, None),
        (403, "PERMISSION_DENIED", {}, None, AuthFailed, None),
        (404, "NOT_FOUND", {}, None, NotFound, None),
    ],
)
def test_http_errors(
    adapter: Adapter,
    server: LoopbackServer,
    status: int,
    code: str,
    headers: dict[str, str],
    retry_delay: str | None,
    kind: type[VendorError],
    wait: float | None,
) -> None:
    fault = Status(status, headers, error_body(status, code, PROMPT, retry_delay=retry_delay))
    server.fail(fault, fault)
    with pytest.raises(kind) as caught:
        adapter.chat(HELLO, timeout=TIMEOUT)
    assert (caught.value.status, caught.value.code, caught.value.retry_after) == (status, code, wait)
    assert_clean(caught.value)
    events, error = drain(adapter.stream(HELLO, timeout=TIMEOUT))
    assert events == [] and isinstance(error, kind) and error.status == status
    assert len(server.requests) == 2  # one each: no retries


def test_an_error_page_that_is_not_json(adapter: Adapter, server: LoopbackServer) -> None:
    server.fail(Status(502, {"Content-Type": "text/html"}, f"<html>{PROMPT}</html>".encode()))
    with pytest.raises(Unavailable) as caught:
        adapter.chat(HELLO, timeout=TIMEOUT)
    assert (caught.value.status, caught.value.code) == (502, None)
    assert_clean(caught.value)


def test_async_http_error(offering: Offering, server: LoopbackServer) -> None:
    server.fail(Status(429, {}, error_body(429, "RESOURCE_EXHAUSTED", PROMPT, retry_delay="3s")))
    with pytest.raises(RateLimited) as caught:
        run_async(offering.target, offering.credentials, lambda a: a.achat(HELLO, timeout=TIMEOUT))
    assert caught.value.retry_after == 3.0
    assert_clean(caught.value)
    assert len(server.requests) == 1


def test_a_slow_answer_times_out_at_the_calls_own_bound(adapter: Adapter, server: LoopbackServer) -> None:
    server.fail(Delay(2))
    started = time.monotonic()
    with pytest.raises(VendorTimeout) as caught:
        adapter.chat(HELLO, timeout=0.3)
    assert time.monotonic() - started < 1.5
    assert_clean(caught.value)
    assert only_request(server).headers["x-server-timeout"] == "1"  # the call's bound, told to Google's frontend too


def test_slow_streams_and_embeddings_time_out(offering: Offering, server: LoopbackServer) -> None:
    adapter = open_adapter(offering.target, options(offering.credentials, timeout=0.3))
    server.fail(Delay(2), Delay(2), Delay(2))
    _, error = drain(adapter.stream(HELLO, timeout=0.3))
    assert isinstance(error, VendorTimeout)
    with pytest.raises(VendorTimeout):
        adapter.embed(EmbedRequest(("x",)), timeout=0.3)
    with pytest.raises(VendorTimeout):
        run_async(offering.target, offering.credentials, lambda a: a.achat(HELLO, timeout=0.3))


def test_async_streams_time_out(offering: Offering, server: LoopbackServer) -> None:
    server.fail(Delay(2))
    with pytest.raises(VendorTimeout):
        run_async(offering.target, offering.credentials, lambda a: collect(a.astream(HELLO, timeout=0.3)))


def test_a_reset_connection_is_lost(adapter: Adapter, server: LoopbackServer) -> None:
    server.fail(Reset(), Reset(), Reset())
    with pytest.raises(ConnectionLost) as caught:
        adapter.chat(HELLO, timeout=TIMEOUT)
    assert_clean(caught.value)
    _, error = drain(adapter.stream(HELLO, timeout=TIMEOUT))
    assert isinstance(error, ConnectionLost)
    with pytest.raises(ConnectionLost):
        adapter.embed(EmbedRequest(("x",)), timeout=TIMEOUT)
    assert len(server.requests) == 3


def test_a_cut_stream_is_lost(adapter: Adapter, server: LoopbackServer, app: GeminiApp) -> None:
    app.chunks = 4
    server.fail(Cut(after=2), Cut(after=2, drop=False))
    events, error = drain(adapter.stream(HELLO, timeout=TIMEOUT))  # dropped in the middle of the body
    assert len(events) == 2 and all(isinstance(e, TextDelta) for e in events)
    assert isinstance(error, ConnectionLost)
    assert_clean(error)
    events, error = drain(adapter.stream(HELLO, timeout=TIMEOUT))  # ended cleanly, before the finish reason came
    assert len(events) == 2 and isinstance(error, ConnectionLost)


def test_a_cut_async_stream_is_lost(offering: Offering, server: LoopbackServer) -> None:
    server.fail(Cut(after=1))
    with pytest.raises(ConnectionLost):
        run_async(offering.target, offering.credentials, lambda a: collect(a.astream(HELLO, timeout=TIMEOUT)))


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [(503, "UNAVAILABLE", Unavailable), (429, "RESOURCE_EXHAUSTED", RateLimited), (500, "INTERNAL", Unavailable)],
)
def test_an_error_inside_a_stream(
    adapter: Adapter, server: LoopbackServer, code: int, status: str, kind: type[VendorError]
) -> None:
    server.fail(Cut(after=1, then=stream_error(code, status, PROMPT), drop=False))
    events, error = drain(adapter.stream(HELLO, timeout=TIMEOUT))
    assert len(events) == 1 and isinstance(events[0], TextDelta)
    assert isinstance(error, kind) and (error.status, error.code) == (code, status)
    assert_clean(error)


def test_close(offering: Offering) -> None:
    adapter = open_adapter(offering.target, options(offering.credentials))
    adapter.close()
    with pytest.raises(RuntimeError):  # the SDK's client refuses a closed connection pool: close reached it
        adapter.chat(HELLO, timeout=TIMEOUT)


def test_the_httpx_transport_fails_the_same_way(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """GOOGLE_GENAI_HTTP_CLIENT=httpx swaps google-genai's transport from httpx2 to httpx."""
    monkeypatch.setenv("GOOGLE_GENAI_HTTP_CLIENT", "httpx")
    adapter = open_adapter(vertex(server), options())
    assert isinstance(adapter._client._api_client._httpx_client, httpx.Client)  # type: ignore[attr-defined]
    server.fail(Delay(2), Reset(), Cut(after=1))
    with pytest.raises(VendorTimeout):
        adapter.chat(HELLO, timeout=0.3)
    with pytest.raises(ConnectionLost):
        adapter.chat(HELLO, timeout=TIMEOUT)
    _, error = drain(adapter.stream(HELLO, timeout=TIMEOUT))
    assert isinstance(error, ConnectionLost)
    assert len(server.requests) == 3


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (requests.exceptions.ConnectTimeout(), VendorTimeout),  # also a ConnectionError: the timeout wins
        (requests.exceptions.ReadTimeout(), VendorTimeout),
        (requests.exceptions.ConnectionError(), ConnectionLost),
        (requests.exceptions.ChunkedEncodingError(), ConnectionLost),
        (asyncio.TimeoutError(), VendorTimeout),
        (ValueError("not a transport failure"), type(None)),
    ],
)
def test_other_transports_are_classified(exc: Exception, kind: type) -> None:
    """requests carries the calls when google-auth's mTLS session is in use, which a loopback cannot set up."""
    assert type(vendor_error("vertex", exc)) is kind
