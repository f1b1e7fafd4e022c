"""The openai drop-in is the openai package: same attributes, same results, with the guard in the transport.

:func:`exercise` is a script written against openai's own API (a tool loop that
appends ``response.choices[0].message``, a ``tool_choice`` naming a function,
``n=2``, ``with_raw_response``, ``with_options``, ``chat.completions.parse`` and
``.stream``, streaming with ``include_usage``, the Responses API, errors). It
runs once with ``import openai`` and once with ``from privsdk import openai``
against the same loopback server; both runs must see the same results and
send the same requests. Then: what a refusal looks like (zero bytes sent, not
retried, both privsdk's and openai's error), usage records with tokens, and
``guard_client`` / ``instrument`` on clients privsdk did not build.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import httpx2
import openai
import pydantic
import pytest
from openai._base_client import BaseClient

import privsdk
from privsdk import openai as dropin
from privsdk.outbound.judge import Guard
from privsdk.outbound.transport import is_guarded
from tests.guard_support import guard_env, reset_default_guard, usage_records
from tests.weather_tool import TOOLS
from tests.wire.openai import OpenAIWire, error_body
from tests.wire.server import Cut, LoopbackServer, Recorded, Reply, Status, answered_in_memory

KEY = "sk-dropin"
MODEL = "gpt-4o-mini"
RESPONSES_TOOLS: Any = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": True,
    }
]


class Weather(pydantic.BaseModel):
    city: str
    celsius: float


def exercise(sdk: ModuleType, base_url: str, app: OpenAIWire, server: LoopbackServer) -> dict[str, Any]:
    """Calls as an app written for the openai package makes them; ``sdk`` is that package (or its replacement)."""
    client = sdk.OpenAI(api_key=KEY, base_url=base_url, max_retries=0, timeout=5.0)
    seen: dict[str, Any] = {}

    # The tool loop: the first turn must call get_weather, the answer goes back as a tool message.
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    choice: Any = {"type": "function", "function": {"name": "get_weather"}}
    for _ in range(3):
        response = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS, tool_choice=choice)
        message = response.choices[0].message
        messages.append(message)
        if not message.tool_calls:
            break
        for call in message.tool_calls:
            messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"celsius": 21}'})
        choice = "auto"
    seen["tool loop"] = [(type(m).__name__, getattr(m, "content", None)) for m in messages]
    seen["tool loop end"] = (response.choices[0].finish_reason, response.usage, response._request_id)

    two = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Two ways?"}], n=2, temperature=0.2, max_tokens=50
    )
    seen["n=2"] = [(c.index, c.message.content) for c in two.choices]

    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    seen["raw"] = (raw.status_code, raw.headers.get("x-request-id"), raw.parse().choices[0].message.content)
    with client.chat.completions.with_streaming_response.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    ) as streamed:
        seen["streaming response"] = (streamed.status_code, streamed.parse().choices[0].message.content)

    patient = client.with_options(timeout=2.0, max_retries=1)
    seen["with_options"] = (
        type(patient).__name__,
        patient.max_retries,
        patient.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}]).id,
    )

    text, app.text = app.text, '{"city": "Paris", "celsius": 21.5}'
    parsed = client.chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": "Weather as JSON"}], response_format=Weather
    )
    seen["parse"] = parsed.choices[0].message.parsed
    app.text = text

    with client.chat.completions.stream(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream_options={"include_usage": True}
    ) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()
    seen["stream helper"] = (deltas, final.choices[0].message.content, final.usage)

    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    seen["stream"] = (
        {type(c).__name__ for c in chunks},
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices),
        chunks[-1].usage,
    )

    answer = client.responses.create(model="gpt-5", input="hi", store=False)
    seen["responses"] = (type(answer).__name__, answer.output_text, answer.usage.input_tokens if answer.usage else None)
    called = client.responses.create(
        model="gpt-5", input=[{"role": "user", "content": "Weather?"}], tools=RESPONSES_TOOLS, store=False
    )
    seen["responses tool"] = [(item.type, getattr(item, "name", None)) for item in called.output]
    with client.responses.stream(model="gpt-5", input="hi", store=False) as events:
        kinds = [event.type for event in events]
        done = events.get_final_response()
    seen["responses stream"] = (kinds[0], kinds[-1], done.output_text, done.usage)

    vectors = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])
    seen["embed"] = ([len(d.embedding) for d in vectors.data], vectors.usage.prompt_tokens)
    seen["models"] = [m.id for m in client.models.list()]

    for status, body in [
        (429, error_body("Rate limit reached", type="requests", code="rate_limit_exceeded")),
        (400, error_body("bad temperature", code="invalid_value")),
    ]:
        server.fail(Status(status, {"retry-after-ms": "10"} if status == 429 else {}, body))
        try:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
        except sdk.APIStatusError as exc:
            seen[f"error {status}"] = (type(exc).__name__, exc.status_code, exc.code)
    client.close()
    return seen


async def exercise_async(sdk: ModuleType, base_url: str) -> dict[str, Any]:
    """The async client, as an app written for openai uses it."""
    seen: dict[str, Any] = {}
    async with sdk.AsyncOpenAI(api_key=KEY, base_url=base_url, max_retries=0) as client:
        completion = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        seen["chat"] = (completion.choices[0].message.content, completion.usage)
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [c async for c in stream]
        seen["stream"] = ("".join(c.choices[0].delta.content or "" for c in chunks if c.choices), chunks[-1].usage)
        async with client.chat.completions.stream(model=MODEL, messages=[{"role": "user", "content": "hi"}]) as helper:
            seen["stream helper"] = (await helper.get_final_completion()).choices[0].message.content
        answer = await client.responses.create(model="gpt-5", input="hi", store=False)
        seen["responses"] = answer.output_text
        vectors = await client.with_options(timeout=3.0).embeddings.create(model="text-embedding-3-small", input="a")
        seen["embed"] = len(vectors.data)
    return seen


@pytest.fixture
def wire() -> Iterator[tuple[OpenAIWire, LoopbackServer]]:
    app = OpenAIWire(key=KEY)
    with LoopbackServer(app) as server:
        yield app, server
    assert server.errors == []


# --- the same package ------------------------------------------------------------------------------------------------


def _public_tree(obj: Any, path: str, depth: int, out: set[str]) -> set[str]:
    """Every public attribute name reachable from ``obj`` through the SDK's resources, as dotted paths."""
    for name in dir(obj):
        if name.startswith("_"):
            continue
        out.add(f"{path}.{name}")
        if depth == 0 or (name in ("with_raw_response", "with_streaming_response") and depth < 3):
            continue
        value = getattr(obj, name)
        if type(value).__module__.startswith("openai.resources"):
            _public_tree(value, f"{path}.{name}", depth - 1, out)
    return out


CLIENTS = [
    ("OpenAI", {"api_key": KEY}),
    ("AsyncOpenAI", {"api_key": KEY}),
    ("AzureOpenAI", {"api_key": KEY, "api_version": "2024-10-21", "azure_endpoint": "https://a.openai.azure.com"}),
    ("AsyncAzureOpenAI", {"api_key": KEY, "api_version": "2024-10-21", "azure_endpoint": "https://a.openai.azure.com"}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "kwargs"), CLIENTS, ids=[c[0] for c in CLIENTS])
def test_every_public_attribute_of_the_sdk_client_is_on_the_drop_in(name: str, kwargs: dict[str, Any]) -> None:
    theirs = getattr(openai, name)(**kwargs)
    ours = getattr(dropin, name)(**kwargs)
    expected = _public_tree(theirs, "client", 4, set())
    assert len(expected) > 500  # the walk reached into the resources (chat.completions, beta, files, ...)
    assert _public_tree(ours, "client", 4, set()) == expected
    assert isinstance(ours, getattr(openai, name)) and type(ours) is not type(theirs)  # a subclass, guarded
    assert inspect.signature(getattr(dropin, name)) == inspect.signature(getattr(openai, name))
    assert type(ours.with_options(timeout=1.0)) is type(ours)


def _client_classes() -> dict[str, type[Any]]:
    """Every name of openai's module (its ``__all__`` and its attributes, private ones included) that is a client
    class: a subclass of openai's base client. An alias a later openai release adds is found here too."""
    found = {}
    for name in sorted({*openai.__all__, *dir(openai)}):
        value = getattr(openai, name, None)
        if isinstance(value, type) and issubclass(value, BaseClient):
            found[name] = value
    return found


CLIENT_CLASSES = _client_classes()


def test_the_module_replaces_import_openai_as_a_whole() -> None:
    assert {"OpenAI", "AsyncOpenAI", "Client", "AsyncClient", "AzureOpenAI", "BedrockOpenAI"} <= set(CLIENT_CLASSES)
    for name in openai.__all__:
        if name not in CLIENT_CLASSES:
            assert getattr(dropin, name) is getattr(openai, name), name
    for name, theirs in CLIENT_CLASSES.items():  # openai's client classes, each guarded (the test below sends)
        ours = getattr(dropin, name)
        assert issubclass(ours, theirs) and ours is not theirs, name
    assert dropin.Client is dropin.OpenAI and dropin.AsyncClient is dropin.AsyncOpenAI  # openai's aliases, kept
    assert dropin.NOT_GIVEN is openai.NOT_GIVEN and dropin.types is openai.types
    assert dropin.pydantic_function_tool is openai.pydantic_function_tool
    assert dropin.APIStatusError is openai.APIStatusError and dropin.Stream is openai.Stream
    from privsdk.openai import pydantic_function_tool  # outside openai.__all__: through the module's __getattr__

    assert pydantic_function_tool is openai.pydantic_function_tool
    assert set(openai.__all__) <= set(dropin.__all__)


def test_importing_the_drop_in_module_by_path_is_not_a_package() -> None:
    """``privsdk.openai.types`` is openai's own module object; submodule imports go through ``openai.``."""
    assert dropin.types.chat.ChatCompletion is openai.types.chat.ChatCompletion


# --- the same results ------------------------------------------------------------------------------------------------


def test_a_script_written_for_openai_runs_unchanged_and_gives_the_same_results(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app, server = wire
    guard_env(monkeypatch, tmp_path, server)
    theirs = exercise(openai, f"{server.url}/v1", app, server)
    sent_theirs = [(r.method, r.path, r.body) for r in server.requests]
    server.requests.clear()
    ours = exercise(dropin, f"{server.url}/v1", app, server)
    assert ours == theirs
    # The vendor received the same requests, byte for byte.
    assert [(r.method, r.path, r.body) for r in server.requests] == sent_theirs
    # And the results are what the loopback server answers, not an error run twice.
    assert theirs["tool loop"][1][0] == "ChatCompletionMessage" and theirs["tool loop"][-1][1] == app.text
    assert theirs["n=2"] == [(0, app.text), (1, app.text)]
    assert theirs["raw"] == (200, "req_loopback", app.text)
    assert theirs["parse"] == Weather(city="Paris", celsius=21.5)
    assert theirs["stream"][1] == app.text and theirs["stream"][2].prompt_tokens == 11
    assert theirs["responses"] == ("Response", app.text, 11)
    assert theirs["responses tool"] == [("function_call", "get_weather")]
    assert theirs["responses stream"][:3] == ("response.created", "response.completed", app.text)
    assert [theirs[f"error {s}"][1] for s in (429, 400)] == [429, 400]


def test_the_async_client_gives_the_same_results(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app, server = wire
    guard_env(monkeypatch, tmp_path, server)
    theirs = asyncio.run(exercise_async(openai, f"{server.url}/v1"))
    ours = asyncio.run(exercise_async(dropin, f"{server.url}/v1"))
    assert ours == theirs
    assert theirs["chat"][0] == app.text and theirs["stream"] == (app.text, theirs["chat"][1])


# --- refusals ------------------------------------------------------------------------------------------------------


def test_a_refusal_sends_nothing_is_not_retried_and_is_both_errors(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _app, server = wire
    usage = guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr")
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1")  # the SDK's default: 2 retries
    with pytest.raises(openai.OpenAIError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "patient Jane Roe"}])
    refusal = caught.value
    assert isinstance(refusal, privsdk.PolicyViolation) and isinstance(refusal, dropin.PolicyViolation)
    assert not isinstance(refusal, openai.APIConnectionError)  # the SDK did not wrap it
    assert "zdr" in str(refusal) and "Jane" not in str(refusal) and KEY not in str(refusal)
    assert server.requests == []
    [record] = usage_records(usage, 1)
    assert record["outcome"] == "refused" and record["operation"] == "chat"


def test_a_refusal_is_an_api_error_naming_the_refused_request_and_is_never_retried(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """openai documents ``openai.APIError`` as the base of all its errors: apps catch it around every call and read
    ``message``, ``request``, ``body``, ``code``, ``type``, ``param``. A refusal is one (with no response: not an
    ``APIStatusError``), and openai's own retries (``max_retries``) still never send it again."""
    code = "policy_violation"
    _app, server = wire
    usage = guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr")
    url = f"{server.url}/v1"
    messages: Any = [{"role": "user", "content": "patient Jane Roe"}]
    client = dropin.OpenAI(api_key=KEY, base_url=url, max_retries=3)
    with pytest.raises(openai.APIError) as caught:
        client.chat.completions.create(model=MODEL, messages=messages)

    async def run() -> None:
        async with dropin.AsyncOpenAI(api_key=KEY, base_url=url, max_retries=3) as aclient:
            await aclient.chat.completions.create(model=MODEL, messages=messages)

    with pytest.raises(openai.APIError) as acaught:
        asyncio.run(run())
    assert server.requests == []
    assert [r["outcome"] for r in usage_records(usage, 2)] == ["refused", "refused"]
    for refusal in (caught.value, acaught.value):
        assert isinstance(refusal, dropin.PolicyViolation) and isinstance(refusal, privsdk.PolicyViolation)
        assert not isinstance(refusal, (openai.APIStatusError, openai.APIConnectionError))
        assert (refusal.code, refusal.type, refusal.param, refusal.body) == (code, code, None, None)
        assert refusal.status_code == 403  # read by frameworks that map errors by status (LiteLLM took it for a 500)
        assert refusal.message == str(refusal) and "zdr" in refusal.message and "Jane" not in refusal.message
        assert isinstance(refusal.request, httpx2.Request)
        assert (refusal.request.method, str(refusal.request.url)) == ("POST", f"{url}/chat/completions")
        # What a privsdk error holds is content-free: no body (the prompt), no headers (the API key).
        assert refusal.request.content == b"" and "authorization" not in refusal.request.headers

    # Nor a gateway's password in the URL's user info, nor its query string.
    import pickle

    host = url.partition("://")[2]
    gateway = dropin.OpenAI(api_key=KEY, base_url=f"http://svc:Passw0rdCANARY@{host}", max_retries=0)
    with pytest.raises(openai.APIError) as behind:
        gateway.with_options(default_query={"sig": "QueryCANARY"}).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}]
        )
    assert str(behind.value.request.url) == f"{url}/chat/completions"
    assert "CANARY" not in repr(behind.value.request) + repr(pickle.dumps(behind.value))

    # Across a process boundary: the request keeps its method and URL, not its body or credentials.
    again = pickle.loads(pickle.dumps(caught.value))
    assert type(again) is dropin.PolicyViolation
    assert (again.message, again.code, again.type) == (caught.value.message, code, code)
    assert (again.request.method, again.request.url) == ("POST", caught.value.request.url)
    assert again.request.content == b"" and "authorization" not in again.request.headers

    # A WebSocket connection is refused before any request exists: the refusal names the GET that would open it.
    with pytest.raises(openai.APIError) as ws:
        client.realtime.connect(model="gpt-realtime")
    assert isinstance(ws.value, dropin.PolicyViolation) and ws.value.request.method == "GET"


def test_attested_requests_pass_and_leave_records_with_tokens(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _app, server = wire
    usage = guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr", PRIVSDK_ATTEST="openai:zdr")
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    for _ in client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
    ):
        pass
    with client.responses.stream(model="gpt-5", input="hi", store=False) as events:
        events.get_final_response()
    client.embeddings.create(model="text-embedding-3-small", input="a")
    records = usage_records(usage, 4)
    assert [(r["operation"], r["outcome"], r["input_tokens"], r["output_tokens"]) for r in records] == [
        ("chat", "ok", 11, 7),
        ("stream", "ok", 11, 7),
        ("stream", "ok", 11, 7),
        ("embed", "ok", 11, None),
    ]
    assert len(server.requests) == 4


def test_the_attempts_of_one_retried_call_are_recorded_as_one_call(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """openai says which attempt a request is (x-stainless-retry-count): a call retried to success is one request
    id with attempts 1, 2, 3, and the next call is another, as privsdk usage counts calls and retries."""
    _app, server = wire
    usage = guard_env(monkeypatch, tmp_path, server)
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=2)
    server.fail(Status(429, {"retry-after-ms": "1"}, b"{}"), Status(500, {"retry-after-ms": "1"}, b"{}"))
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    records = usage_records(usage, 4)
    assert [(r["attempt"], r["outcome"], r["http_status"]) for r in records] == [
        (1, "error", 429),
        (2, "error", 500),
        (3, "ok", 200),
        (1, "ok", 200),
    ]
    ids = [r["request_id"] for r in records]
    assert ids[0] == ids[1] == ids[2] != ids[3]


def test_answers_a_transport_has_already_read_are_recorded_with_their_tokens(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The record of an allowed request is written when its body ends; a body the app's own transport had read in
    full before the guard saw the response must be recorded there and then, sync and async, streams included."""
    app, server = wire
    usage = guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr", PRIVSDK_ATTEST="openai:zdr")
    base = f"{server.url}/v1"
    http = httpx2.Client(transport=answered_in_memory(app, httpx2))
    client = dropin.OpenAI(api_key=KEY, base_url=base, http_client=http)
    assert client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}]).usage
    chunks = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == app.text

    async def chat() -> None:
        http = httpx2.AsyncClient(transport=answered_in_memory(app, httpx2))
        async with dropin.AsyncOpenAI(api_key=KEY, base_url=base, http_client=http) as aclient:
            await aclient.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])

    asyncio.run(chat())
    records = usage_records(usage, 3)
    assert [(r["operation"], r["outcome"], r["input_tokens"], r["output_tokens"]) for r in records] == [
        ("chat", "ok", 11, 7),
        ("stream", "ok", 11, 7),
        ("chat", "ok", 11, 7),
    ]
    assert server.requests == []  # answered in memory: the loopback server only lent its address


def test_a_response_the_app_lets_go_of_unread_is_recorded_as_cancelled(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A streaming response opened and dropped without reading or closing it: its body never ends, and its request
    is recorded when the response is collected."""
    _app, server = wire
    usage = guard_env(monkeypatch, tmp_path, server)
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
    opened = client.chat.completions.with_streaming_response.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    response = opened.__enter__()
    assert response.status_code == 200
    del opened, response
    gc.collect()
    [record] = usage_records(usage, 1)
    assert (record["operation"], record["outcome"], record["http_status"]) == ("chat", "cancelled", 200)


def test_a_stream_closed_before_its_end_is_cancelled_and_a_whole_one_ok_with_or_without_counts(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """openai closes a stream at its data: [DONE], before the body's end: that answer was whole, counts or not.
    One the app closes after its first chunk was not, and is recorded as cancelled, as privsdk.Client does."""
    app, server = wire
    app.pieces = 8
    usage = guard_env(monkeypatch, tmp_path, server)
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
    ask: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    stream = client.chat.completions.create(**ask)
    next(iter(stream))
    stream.close()
    list(client.chat.completions.create(**ask))
    list(client.chat.completions.create(**ask, stream_options={"include_usage": True}))
    records = usage_records(usage, 3)
    assert [(r["outcome"], r["input_tokens"]) for r in records] == [("cancelled", None), ("ok", None), ("ok", 11)]
    assert [r["error_class"] for r in records] == [None, None, None]  # a cancelled attempt has none (it had "other")


def test_a_long_stream_is_counted_in_batches_and_recorded_whole_or_cancelled(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The guard keeps an answer's chunks for the writer thread's meter, at most a few hundred: past them the meter
    reads them on the way. A stream of many more chunks (each event its own HTTP chunk) is still counted and whole,
    sync and async, and one closed part-way is still cancelled."""
    app, server = wire
    app.text, app.pieces = "ab" * 700, 700
    usage = guard_env(monkeypatch, tmp_path, server)
    ask: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
    chunks = list(client.chat.completions.create(**ask))
    assert len(chunks) > 700

    async def stream() -> int:
        aclient = dropin.AsyncOpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
        async with aclient:
            return len([c async for c in await aclient.chat.completions.create(**ask)])

    assert asyncio.run(stream()) == len(chunks)
    part = client.chat.completions.create(**ask)
    for _, _chunk in zip(range(500), part, strict=False):
        pass
    part.close()
    records = usage_records(usage, 3)
    assert [(r["outcome"], r["input_tokens"], r["output_tokens"]) for r in records] == [
        ("ok", 11, 7),
        ("ok", 11, 7),
        ("cancelled", None, None),
    ]


def test_a_download_no_meter_counts_keeps_none_of_its_chunks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The guard keeps an answer's chunks only for a meter: a file's content streamed through the drop-in (200 chunks
    of 64 KiB) passes through holding a few chunks at a time, as openai alone would, and is recorded."""
    piece = b"x" * 65536

    def files(request: Recorded) -> Reply:
        return Reply(200, headers={"content-type": "application/octet-stream"}, chunks=[piece] * 200)

    with LoopbackServer(files) as server:
        usage = guard_env(monkeypatch, tmp_path, server)
        client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
        tracemalloc.start()
        try:
            with client.files.with_streaming_response.content("file-abc") as response:
                size = sum(len(chunk) for chunk in response.iter_bytes())
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert size == 200 * len(piece)
    assert peak < 4 * 2**20  # a few chunks at once; keeping them for a meter would hold 12.5 MiB
    [record] = usage_records(usage, 1)
    assert (record["operation"], record["outcome"], record["input_tokens"]) == ("files", "ok", None)


_CLASS_PROBE = """
import os, sys
os.environ["PRIVSDK_USAGE"] = "none"
import openai
if sys.argv[1] == "guarded":
    import privsdk
    privsdk.guard(openai.OpenAI(api_key="k", base_url="http://127.0.0.1:9/v1"))
def probe(call):
    try:
        print(repr(call()))
    except AttributeError as exc:
        print("AttributeError", exc)
plain = openai.OpenAI(api_key="k", base_url="http://127.0.0.1:9/v1")
probe(lambda: hasattr(openai.OpenAI, "_client"))
probe(lambda: openai.OpenAI._client)
probe(lambda: type(plain._client).__name__)
del plain._client
probe(lambda: delattr(plain, "_client"))
probe(lambda: plain._client)
"""


def test_beside_a_guarded_client_its_class_and_other_clients_are_the_sdks() -> None:
    """Guarding a client watches its class's ``_client``: the class itself, and a client of it that is not guarded,
    still answer reads and deletes as openai's own do (fresh interpreters, without and with a guarded client)."""
    runs = [
        subprocess.run([sys.executable, "-c", _CLASS_PROBE, mode], capture_output=True, text=True, check=True).stdout
        for mode in ("plain", "guarded")
    ]
    assert runs[0] == runs[1]
    assert runs[0].count("AttributeError") == 3


def test_a_redirect_to_another_host_is_judged_as_its_own_request(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """openai's httpx client follows redirects, and a 307 keeps the body: an allowed endpoint (or a proxy in front
    of it) that redirects to a host the policy does not know gets the request refused there, before a byte (or
    the key) reaches that host, and the SDK does not retry it."""
    _app, server = wire
    usage = guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr", PRIVSDK_ATTEST="openai:zdr")
    with LoopbackServer(OpenAIWire(key=KEY)) as elsewhere:
        server.fail(Status(307, headers={"location": f"{elsewhere.url}/v1/chat/completions"}))
        client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1")  # the SDK's default: 2 retries
        with pytest.raises(dropin.PolicyViolation, match="not an endpoint privsdk knows"):
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "patient Jane Roe"}])
        assert elsewhere.requests == []
    assert len(server.requests) == 1
    records = usage_records(usage, 2)
    assert [(r["outcome"], r["http_status"]) for r in records] == [("ok", 307), ("refused", None)]


def test_what_the_request_asks_for_is_judged_not_what_the_app_declared(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """ZDR attested: a file upload (not covered by ZDR) and a stored response (the Responses API's default) refuse."""
    _app, server = wire
    usage = guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr", PRIVSDK_ATTEST="openai:zdr")
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1")
    with pytest.raises(dropin.PolicyViolation):
        client.files.create(file=("notes.jsonl", b'{"secret": 1}\n'), purpose="batch")
    with pytest.raises(dropin.PolicyViolation):
        client.responses.create(model="gpt-5", input="hi")  # store defaults to true
    # The message names what the request asks for: "unmet: zdr" alone, under a ZDR attestation, said nothing of why.
    with pytest.raises(dropin.PolicyViolation, match=r"unmet: zdr \(the request asks for stored_responses\)$"):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], store=True)
    assert server.requests == []
    assert [r["outcome"] for r in usage_records(usage, 3)] == ["refused"] * 3


def test_a_stored_prompt_is_judged_for_the_tools_it_may_set(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A Responses request naming a stored prompt (which may turn on web search at OpenAI) was judged on its body
    alone, and sent under a ZDR policy that refuses the same tool in the body."""
    _app, server = wire
    guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr", PRIVSDK_ATTEST="openai:zdr")
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
    with pytest.raises(dropin.PolicyViolation, match=r"web_search|hosted_tools|file_search"):
        client.responses.create(model="gpt-5", input="hi", store=False, prompt={"id": "pmpt_1"})
    with pytest.raises(dropin.PolicyViolation, match="names no model"):
        client.responses.create(input="hi", store=False, prompt={"id": "pmpt_1"})
    assert server.requests == []


def test_an_unknown_host_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``OPENAI_BASE_URL`` pointing anywhere the catalogue and the environment do not know: refused, nothing sent."""
    app = OpenAIWire(key=KEY)
    with LoopbackServer(app) as declared, LoopbackServer(app) as elsewhere:
        guard_env(monkeypatch, tmp_path, declared, PRIVSDK_REQUIRE="zdr", PRIVSDK_ATTEST="openai:zdr")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{elsewhere.url}/v1")
        client = dropin.OpenAI(api_key=KEY)
        with pytest.raises(dropin.PolicyViolation):
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
        assert elsewhere.requests == [] and declared.requests == []


def test_an_escaped_slash_cannot_move_a_request_to_another_gateway_route(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A gateway declared as a self-hosted catch-all with OpenAI under /openai: a base URL of ".../openai%2Fv1"
    was judged as the self-hosted route and served, once decoded, by the OpenAI one. Refused now, nothing sent."""
    _app, server = wire
    guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="private_deployment")
    monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{server.url}=selfhosted.vllm,{server.url}/openai=openai.api")
    reset_default_guard()
    hello: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]
    for base in (f"{server.url}/openai%2Fv1", f"{server.url}/v1/..%2Fopenai/v1", f"{server.url}/v1/..;/openai/v1"):
        client = dropin.OpenAI(api_key=KEY, base_url=base, max_retries=0)
        with pytest.raises(dropin.PolicyViolation):
            client.chat.completions.create(model=MODEL, messages=hello)
    assert server.requests == []
    dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1").chat.completions.create(model=MODEL, messages=hello)
    assert [r.path for r in server.requests] == ["/v1/chat/completions"]


def test_async_refusal(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _app, server = wire
    guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr")

    async def run() -> None:
        async with dropin.AsyncOpenAI(api_key=KEY, base_url=f"{server.url}/v1") as client:
            await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])

    with pytest.raises(dropin.PolicyViolation):
        asyncio.run(run())
    assert server.requests == []


def _built(cls: type[Any], url: str) -> Any:
    """A client of ``cls`` (any of openai's client classes, or its drop-in) sending to ``url``."""
    if issubclass(cls, (openai.AzureOpenAI, openai.AsyncAzureOpenAI)):
        return cls(api_key=KEY, api_version="2024-10-21", azure_endpoint=url, max_retries=0)
    if issubclass(cls, (openai.BedrockOpenAI, openai.AsyncBedrockOpenAI)):
        return cls(api_key=KEY, aws_region="us-east-1", base_url=f"{url}/v1", max_retries=0)
    return cls(api_key=KEY, base_url=f"{url}/v1", max_retries=0)


@pytest.mark.parametrize("name", sorted(CLIENT_CLASSES))
def test_every_client_class_the_module_hands_out_is_guarded(
    name: str, wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``openai.Client`` / ``AsyncClient`` are openai's aliases of ``OpenAI`` / ``AsyncOpenAI``; the module-level
    client's classes are client classes too. Whichever client class the drop-in module hands out, by attribute
    or by ``from privsdk.openai import ...``, its clients refuse before a byte is sent."""
    _app, server = wire
    guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr")
    for setting in ("http_client", "api_key", "base_url"):  # a module-level client's class reads and sets these
        monkeypatch.setattr(openai, setting, None)
    namespace: dict[str, Any] = {}
    exec(f"from privsdk.openai import {name}", namespace)
    cls = namespace[name]
    assert cls is getattr(dropin, name)
    client = _built(cls, server.url)
    messages: Any = [{"role": "user", "content": "patient Jane Roe"}]
    with pytest.raises(dropin.PolicyViolation, match="zdr"):
        if isinstance(client, openai.AsyncOpenAI):
            asyncio.run(client.chat.completions.create(model=MODEL, messages=messages))
        else:
            client.chat.completions.create(model=MODEL, messages=messages)
    assert server.requests == []


# --- clients privsdk did not build --------------------------------------------------------------------------------


def test_guard_client_guards_an_app_built_client_and_its_http_client_in_place(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app, server = wire
    guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr")
    http = httpx2.Client()
    client = openai.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", http_client=http)
    assert dropin.guard_client(client) is client
    assert dropin.guard_client(client) is client  # idempotent
    with pytest.raises(dropin.PolicyViolation):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    other = openai.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", http_client=http)  # shares the guarded http client
    with pytest.raises(dropin.PolicyViolation):
        other.with_options(max_retries=3).embeddings.create(model="text-embedding-3-small", input="x")
    assert server.requests == []
    assert [m.id for m in other.models.list()] == [app.model]  # a listing carries no content: allowed
    with pytest.raises(TypeError, match=r"openai\.OpenAI"):
        dropin.guard_client(http)  # type: ignore[type-var]


def test_copies_of_a_guarded_client_are_guarded_even_with_their_own_http_client(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """openai builds ``with_options``/``copy`` results with the client's own class, openai's here: a copy given an
    httpx client of its own must be guarded all the same, by the same guard, sync and async, copies of copies."""
    _app, server = wire
    guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr")
    client = dropin.guard_client(openai.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0))
    copies = [
        client.with_options(http_client=httpx2.Client()),
        client.copy(http_client=httpx2.Client(), timeout=5.0),
        client.with_options(timeout=4.0).with_options(http_client=httpx2.Client()),
    ]
    for copy in copies:
        assert type(copy) is openai.OpenAI  # still openai's own class
        with pytest.raises(dropin.PolicyViolation):
            copy.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])

    async def acopy() -> None:
        aclient = dropin.guard_client(openai.AsyncOpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0))
        with pytest.raises(dropin.PolicyViolation):
            await aclient.with_options(http_client=httpx2.AsyncClient()).chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "x"}]
            )

    asyncio.run(acopy())
    assert server.requests == []


def test_a_guard_given_to_guard_client_replaces_the_one_a_client_had(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A drop-in client (or one built under ``instrument()``) is guarded by the process-wide guard when it is
    made; ``guard_client(client, guard=strict)`` must make ``strict`` judge it from then on: its requests, its
    WebSocket connections, its copies (even one given an httpx client of its own), sync and async."""
    _app, server = wire
    guard_env(monkeypatch, tmp_path, server)  # the process-wide guard requires nothing
    declared = f"{server.url}=openai.api"
    strict = Guard(environ={"PRIVSDK_REQUIRE": "zdr", "PRIVSDK_USAGE": "none", "PRIVSDK_ENDPOINTS": declared})
    messages: Any = [{"role": "user", "content": "patient Jane Roe"}]
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
    client.chat.completions.create(model=MODEL, messages=messages)  # allowed by the process-wide guard
    assert len(server.requests) == 1
    assert dropin.guard_client(client, guard=strict) is client
    assert dropin.guard_client(client) is client  # no guard given: the one it has stays
    for guarded in (client, client.with_options(timeout=3.0), client.with_options(http_client=httpx2.Client())):
        with pytest.raises(dropin.PolicyViolation):
            guarded.chat.completions.create(model=MODEL, messages=messages)
    with pytest.raises(dropin.PolicyViolation):
        client.realtime.connect(model="gpt-realtime")

    async def async_client() -> None:
        aclient = dropin.guard_client(
            dropin.AsyncOpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0), guard=strict
        )
        for guarded in (aclient, aclient.with_options(http_client=httpx2.AsyncClient())):
            with pytest.raises(dropin.PolicyViolation):
                await guarded.chat.completions.create(model=MODEL, messages=messages)

    asyncio.run(async_client())
    dropin.instrument()  # clients built now are guarded by the process-wide guard as they are made
    try:
        built = dropin.guard_client(
            openai.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0), guard=strict
        )
        for guarded in (built, built.with_options(http_client=httpx2.Client()), built.copy(timeout=2.0)):
            with pytest.raises(dropin.PolicyViolation):
                guarded.chat.completions.create(model=MODEL, messages=messages)
    finally:
        dropin.uninstrument()
    assert len(server.requests) == 1


def test_an_http_client_given_to_the_drop_in_is_guarded(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _app, server = wire
    guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr")
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", http_client=httpx2.Client(timeout=3.0))
    assert client.timeout == httpx2.Timeout(3.0)  # the SDK still reads the app's client
    with pytest.raises(dropin.PolicyViolation):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert server.requests == []


def test_instrument_guards_clients_built_afterwards_anywhere(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _app, server = wire
    guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr")
    before = openai.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
    dropin.instrument()
    dropin.instrument()  # idempotent
    try:
        assert dropin.is_instrumented()
        clients = [
            openai.OpenAI(api_key=KEY, base_url=f"{server.url}/v1"),
            openai.AzureOpenAI(api_key=KEY, api_version="2024-10-21", azure_endpoint=server.url),
            before.with_options(timeout=2.0),  # a copy is a new client
        ]
        for client in clients:
            with pytest.raises(dropin.PolicyViolation):
                client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
        assert server.requests == []
    finally:
        dropin.uninstrument()
    assert not dropin.is_instrumented()
    assert openai.OpenAI.__init__ is openai.OpenAI.__dict__["__init__"]
    plain = openai.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
    plain.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert len(server.requests) == 1


def test_the_module_level_client_is_guarded(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``from privsdk import openai; openai.api_key = ...; openai.chat.completions.create(...)``."""
    _app, server = wire
    guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr")
    monkeypatch.setattr(openai, "_client", None)
    monkeypatch.setattr(openai, "api_key", None)
    monkeypatch.setattr(openai, "base_url", None)
    dropin.api_key = KEY
    dropin.base_url = f"{server.url}/v1/"
    assert openai.api_key == KEY  # set on openai itself
    with pytest.raises(dropin.PolicyViolation, match="zdr"):
        dropin.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert server.requests == []


def test_the_module_level_client_judges_every_http_client_the_app_gives_it(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """openai's module-level client reads ``openai.http_client`` on every request: an httpx client the app (or a
    library, on openai itself) assigns after ``from privsdk.openai import chat`` must be judged all the same."""
    app, server = wire
    guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr")
    for setting, value in [("_client", None), ("http_client", None), ("api_key", KEY), ("max_retries", 0)]:
        monkeypatch.setattr(openai, setting, value)
    monkeypatch.setattr(openai, "base_url", f"{server.url}/v1/")  # the module-level client adds no slash
    from privsdk.openai import chat, embeddings  # looked up before the app configures its httpx client

    messages: Any = [{"role": "user", "content": "patient Jane Roe"}]
    with pytest.raises(dropin.PolicyViolation, match="zdr"):
        chat.completions.create(model=MODEL, messages=messages)
    swaps: list[Any] = [httpx2.Client(), httpx.Client(), httpx2.Client(transport=answered_in_memory(app, httpx2))]
    for i, http in enumerate(swaps):
        if i % 2:
            openai.http_client = http  # on openai itself, as a library would
        else:
            dropin.http_client = http  # through the drop-in: set on openai
        assert openai.http_client is http
        with pytest.raises(dropin.PolicyViolation, match="zdr"):
            chat.completions.create(model=MODEL, messages=messages)
        with pytest.raises(dropin.PolicyViolation, match="zdr"):
            embeddings.create(model="text-embedding-3-small", input="patient Jane Roe")
        assert is_guarded(http)
    assert server.requests == []
    # The swapped-in client is the one that sends: a listing carries no content, and the in-memory one answers it.
    assert [m.id for m in dropin.models.list()] == [app.model]
    assert server.requests == []


def test_websocket_connections_are_judged_before_they_open(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Realtime, Live and the Responses API's WebSocket mode bypass httpx: they are judged at ``connect``."""
    _app, server = wire
    usage = guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr", PRIVSDK_ATTEST="openai:zdr")
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1")
    with pytest.raises(dropin.PolicyViolation):
        client.realtime.connect(model="gpt-realtime")
    with pytest.raises(dropin.PolicyViolation):
        client.live.connect()
    with pytest.raises(dropin.PolicyViolation):
        client.responses.connect()
    aclient = dropin.AsyncOpenAI(api_key=KEY, base_url=f"{server.url}/v1")
    with pytest.raises(dropin.PolicyViolation):
        aclient.realtime.connect(model="gpt-realtime")
    assert server.requests == []
    records = usage_records(usage, 4)
    assert [(r["operation"], r["outcome"]) for r in records] == [
        ("realtime", "refused"),
        ("realtime", "refused"),
        ("responses_state", "refused"),
        ("realtime", "refused"),
    ]
    # A client that is not guarded opens its connections as openai does (connect() itself sends nothing).
    openai.OpenAI(api_key=KEY, base_url=f"{server.url}/v1").realtime.connect(model="gpt-realtime")


def test_azure_deployments_pass_through_the_same_guard(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """AzureOpenAI's deployment paths are read like OpenAI's; a refused call sends nothing there either."""
    app = OpenAIWire(key=KEY)
    with LoopbackServer(app) as server:
        usage = tmp_path / "usage.jsonl"
        monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{server.url}=azure.openai")
        monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{usage}")
        reset_default_guard()
        client = dropin.AzureOpenAI(api_key=KEY, api_version="2024-10-21", azure_endpoint=server.url, max_retries=0)
        # A deployment named after its model: the guard reads the model family from the request.
        completion = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert completion.choices[0].message.content == app.text
        assert [r.path for r in server.requests] == ["/openai/deployments/gpt-4o/chat/completions"]
        with pytest.raises(dropin.PolicyViolation):
            client.images.generate(model="dalle", prompt="a cat")  # images: an operation the catalogue never serves
        assert len(server.requests) == 1
        assert server.errors == []
    records = usage_records(usage, 2)
    assert [(r["operation"], r["outcome"]) for r in records] == [("chat", "ok"), ("images", "refused")]


def test_azure_responses_and_on_your_data_are_judged_on_the_deployment_and_the_data_source(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On Azure, Responses' ``model`` is a deployment: one named after a model family ran elsewhere than the target
    that names it and was sent as that target; the attested deployment was refused as an unknown model family.
    A chat with ``data_sources`` (On Your Data: Azure searches the app's data store) was judged as a plain chat."""
    app = OpenAIWire(key=KEY)
    with LoopbackServer(app) as server:
        config = tmp_path / "privsdk.toml"
        config.write_text(
            f'[targets.eu]\noffering = "azure.openai"\nmodel = "gpt-4o"\ndeployment = "gpt4o-eu"\n'
            f'endpoint = "{server.url}"\nattest = ["deployment=regional_eu"]\n'
            '[tenants.acme]\nclasses.default = ["region=eu"]\n',
            encoding="utf-8",
        )
        monkeypatch.setenv("PRIVSDK_CONFIG", str(config))
        monkeypatch.setenv("PRIVSDK_USAGE", "none")
        reset_default_guard()
        client = dropin.AzureOpenAI(api_key=KEY, api_version="2025-04-01-preview", azure_endpoint=server.url)
        client = client.with_options(max_retries=0)
        assert client.responses.create(model="gpt4o-eu", input="hi", store=False).output_text == app.text
        with pytest.raises(dropin.PolicyViolation, match="region=eu"):
            client.responses.create(model="gpt-4o", input="hi", store=False)  # another deployment, not the target's
        with pytest.raises(dropin.PolicyViolation, match="file_search"):
            client.chat.completions.create(
                model="gpt4o-eu",
                messages=[{"role": "user", "content": "hi"}],
                extra_body={"data_sources": [{"type": "azure_search", "parameters": {"endpoint": "https://s"}}]},
            )
        assert [r.path for r in server.requests] == ["/openai/responses"]
        assert server.errors == []


FEATURE_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("web search", {"web_search_options": {}}),
    ("background through extra_body", {"extra_body": {"background": True}}),
    ("extended prompt caching", {"prompt_cache_retention": "24h"}),
    ("stored completion", {"store": True}),
]


@pytest.mark.parametrize(("name", "extra"), FEATURE_CALLS, ids=[f[0] for f in FEATURE_CALLS])
def test_features_the_request_carries_are_judged_however_they_were_set(
    name: str,
    extra: dict[str, Any],
    wire: tuple[OpenAIWire, LoopbackServer],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A ZDR + BAA tenant: each of these keeps content or is not BAA-covered, keyword or ``extra_body`` alike."""
    _app, server = wire
    guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr,hipaa_baa", PRIVSDK_ATTEST="openai:zdr,openai:baa")
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
    with pytest.raises(dropin.PolicyViolation):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], **extra)
    assert server.requests == []
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])  # the plain call passes
    assert len(server.requests) == 1


def test_a_field_privsdk_never_judged_is_refused_before_a_byte_is_sent(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``extra_body`` puts any field in the body the SDK sends. One the guard does not read may make the vendor keep
    or run anything, so it is refused, named but never quoted, and the server receives nothing; the same calls with
    fields the guard knows are sent."""
    _app, server = wire
    usage = guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr", PRIVSDK_ATTEST="openai:zdr")
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
    canary = "CANARY5kd9"
    new: Any = {"some_new_field": {"note": canary}}
    hello: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]
    calls: list[tuple[Callable[..., Any], dict[str, Any]]] = [
        (client.chat.completions.create, {"model": MODEL, "messages": hello, "safety_identifier": "u-1"}),
        (client.responses.create, {"model": "gpt-5", "input": "hi", "store": False, "safety_identifier": "u-1"}),
        (client.embeddings.create, {"model": "text-embedding-3-small", "input": "hi", "user": "u-1"}),
    ]
    for create, known in calls:
        with pytest.raises(dropin.PolicyViolation) as caught:
            create(**known, extra_body=new)
        assert "some_new_field" in str(caught.value) and canary not in str(caught.value)
    assert server.requests == []
    for create, known in calls:
        create(**known)
    assert [r.path for r in server.requests] == ["/v1/chat/completions", "/v1/responses", "/v1/embeddings"]
    assert [r["outcome"] for r in usage_records(usage, 6)] == ["refused"] * 3 + ["ok"] * 3


def test_a_model_whose_prompts_openai_caches_for_a_day_is_refused_under_zdr(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """gpt-5.5 and later take only 24-hour prompt caching at OpenAI, whatever the request says: under zdr, refused
    (before a byte, and recorded) as asking for prompt caching; an older model's call is sent."""
    _app, server = wire
    usage = guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr", PRIVSDK_ATTEST="openai:zdr")
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
    hello: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]
    with pytest.raises(dropin.PolicyViolation, match=r"unmet: zdr \(the request asks for prompt_caching\)"):
        client.chat.completions.create(model="gpt-5.5", messages=hello)
    assert server.requests == []
    client.chat.completions.create(model="gpt-5.4", messages=hello)
    assert len(server.requests) == 1
    assert [r["outcome"] for r in usage_records(usage, 2)] == ["refused", "ok"]


@pytest.mark.parametrize(
    "model",
    ["gpt-4o-search-preview", "gpt-4o-mini-search-preview-2025-03-11", "gpt-5-search-api", "gpt-4o-SEARCH-preview"],
)
def test_a_search_model_asks_for_web_search_whatever_the_request_says(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model: str
) -> None:
    """OpenAI's search models search the web in Chat Completions without ``web_search_options``: queries built from
    the prompt go to third-party search services, which keep what they keep (the catalogue's web_search limit). A
    plain request to one is refused under zdr, before a byte; the same request to its base model is sent."""
    _app, server = wire
    usage = guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr", PRIVSDK_ATTEST="openai:zdr")
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
    hello: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]
    with pytest.raises(dropin.PolicyViolation, match=r"unmet: zdr \(the request asks for web_search\)"):
        client.chat.completions.create(model=model, messages=hello)
    assert server.requests == []
    client.chat.completions.create(model="gpt-4o", messages=hello)
    assert len(server.requests) == 1
    assert [r["outcome"] for r in usage_records(usage, 2)] == ["refused", "ok"]


@pytest.mark.parametrize(
    "model",
    ["gpt-5.5 PATIENT John Doe, DOB 1970-01-01; key sk-proj-CANARY", "ft:gpt-4o PATIENT John Doe sk-proj-CANARY"],
)
def test_text_in_the_model_of_a_family_privsdk_serves_stays_out_of_the_refusal(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model: str
) -> None:
    """A model that starts as a served family's names do (``gpt-*``) but is no model id (a prompt pasted where the
    model goes) was put whole in the target's name, and so in the refusal's message and decision: the name holds
    ``<model>`` instead, and the usage record holds neither."""
    _app, server = wire
    usage = guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr", PRIVSDK_ATTEST="openai:zdr")
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
    with pytest.raises(dropin.PolicyViolation) as caught:
        client.responses.create(model=model, input="hello")  # stored by default: refused under zdr
    assert server.requests == []
    assert "<model>" in str(caught.value)
    for shown in (str(caught.value), repr(caught.value.decision)):
        assert "John Doe" not in shown and "CANARY" not in shown, shown
    (record,) = usage_records(usage, 1)
    assert record["outcome"] == "refused" and "CANARY" not in json.dumps(record)


def test_a_body_an_httpx_event_hook_puts_in_place_is_the_one_judged_and_sent(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An app's request hook that rewrites the body (default parameters, say) replaces ``request.stream`` after the
    SDK built the request: the guard judged the body as built, and the one with ``store: true`` went out."""
    _app, server = wire
    guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr", PRIVSDK_ATTEST="openai:zdr")
    store = {"value": True}

    def defaults(request: httpx2.Request) -> None:
        body = {**json.loads(request.content), "store": store["value"]}
        data = json.dumps(body).encode()
        request.stream = httpx2.ByteStream(data)
        request.headers["content-length"] = str(len(data))

    http = httpx2.Client(event_hooks={"request": [defaults]})
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0, http_client=http)
    hello: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]
    with pytest.raises(dropin.PolicyViolation, match="stored_responses"):
        client.chat.completions.create(model=MODEL, messages=hello)
    assert server.requests == []
    store["value"] = False
    client.chat.completions.create(model=MODEL, messages=hello)
    [sent] = server.requests
    assert sent.json()["store"] is False


def test_a_self_hosted_server_takes_fields_of_its_own_and_a_vendors_endpoint_does_not(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """vLLM takes top_k and repetition_penalty beside OpenAI's fields. Declared as self-hosted (the tenant's own
    server), a request with them is sent; declared as OpenAI's API (a proxy in front of OpenAI, say), refused."""
    app = OpenAIWire(key=KEY)
    app.own_fields = frozenset({"top_k", "repetition_penalty"})
    own = {"top_k": 40, "repetition_penalty": 1.1}
    hello: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]
    with LoopbackServer(app) as server:
        guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="private_deployment")
        monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{server.url}=selfhosted.vllm")
        reset_default_guard()
        client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
        assert client.chat.completions.create(model=MODEL, messages=hello, extra_body=own).choices
        [sent] = server.requests
        assert {k: sent.json()[k] for k in own} == own

        guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr", PRIVSDK_ATTEST="openai:zdr")
        client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
        with pytest.raises(dropin.PolicyViolation, match="does not read in an OpenAI chat/completions request"):
            client.chat.completions.create(model=MODEL, messages=hello, extra_body=own)
        assert len(server.requests) == 1
    assert server.errors == []


def test_constructor_and_call_arguments_keep_their_meaning(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """organization, project, default_headers, extra_headers, user, strict: sent as openai sends them."""
    _app, server = wire
    guard_env(monkeypatch, tmp_path, server)
    sent = []
    for sdk in (openai, dropin):
        client = sdk.OpenAI(
            api_key=KEY,
            base_url=f"{server.url}/v1",
            organization="org-acme",
            project="proj_eu",
            default_headers={"x-team": "search"},
            max_retries=0,
        )
        tools = [{**TOOLS[0], "function": {**TOOLS[0]["function"], "strict": True}}]
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "x"}],
            tools=tools,
            user="u-1",
            extra_headers={"x-trace": "t-1"},
        )
        (request,) = server.requests
        server.requests.clear()
        names = ("openai-organization", "openai-project", "x-team", "x-trace", "authorization")
        sent.append(([request.headers.get(n) for n in names], request.body))
        with pytest.raises(TypeError):
            client.chat.completions.create(model=MODEL, messages=[], no_such_argument=1)
    assert sent[0] == sent[1]
    assert sent[0][0][:4] == ["org-acme", "proj_eu", "search", "t-1"]


@pytest.mark.parametrize(
    ("kwargs", "sent"),
    [
        ({"project": "proj_approved"}, True),
        ({"organization": "org-approved"}, True),
        ({"organization": "org-acme", "project": "proj_approved"}, True),
        # An organisation id as the project, a project id as the organisation: each met the other kind's scope.
        ({"organization": "proj_approved"}, False),
        ({"project": "org-approved"}, False),
        # A request that names a project is that project's: its organisation's scope does not hold for it.
        ({"organization": "org-approved", "project": "proj_other"}, False),
        ({}, False),
    ],
)
def test_a_scope_is_met_by_the_header_of_its_own_kind_only(
    wire: tuple[OpenAIWire, LoopbackServer],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    kwargs: dict[str, Any],
    sent: bool,
) -> None:
    """The guard took OpenAI-Project, else OpenAI-Organization, as one untyped account: OpenAI(organization=
    "proj_approved") met openai:zdr@proj_approved, and its request went to the key's default project."""
    _app, server = wire
    attest = "openai:zdr@proj_approved,openai:zdr@org-approved"
    guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr", PRIVSDK_ATTEST=attest)
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0, **kwargs)
    if sent:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Jane Roe"}])
        assert len(server.requests) == 1
    else:
        with pytest.raises(dropin.PolicyViolation):
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Jane Roe"}])
        assert server.requests == []


def test_an_azure_account_is_never_read_from_an_openai_header(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Behind a declared Azure gateway, AzureOpenAI(organization="contoso") sent OpenAI-Organization: contoso, and
    the guard took it as the Azure resource an attestation was scoped to."""
    _app, server = wire
    guard_env(
        monkeypatch,
        tmp_path,
        server,
        PRIVSDK_ENDPOINTS=f"{server.url}=azure.openai",
        PRIVSDK_REQUIRE="hipaa_baa",
        PRIVSDK_ATTEST="azure:baa@contoso",
    )
    client = dropin.AzureOpenAI(
        api_key=KEY, azure_endpoint=server.url, api_version="2024-10-21", organization="contoso", max_retries=0
    )
    with pytest.raises(dropin.PolicyViolation, match="hipaa_baa"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Jane Roe"}])
    assert server.requests == []


def _reroute_to_private_cohere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, openai_url: str, cohere_url: str
) -> None:
    """The process's guard for a tenant that needs a private deployment and reroutes openai/* to its own Cohere."""
    config = tmp_path / "privsdk.toml"
    config.write_text(
        f"""
[endpoints]
"{openai_url}" = "openai.api"

[targets.cohere-private]
offering = "cohere.private"
model = "command-r-plus"
endpoint = "{cohere_url}"

[tenants.hospital]
on_violation = "reroute"
classes.default = ["private_deployment"]
reroute."openai/*" = ["cohere-private"]
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("PRIVSDK_CONFIG", str(config))
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    reset_default_guard()


def test_a_rerouted_call_is_answered_from_the_alternative_in_openais_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tenant needs a private deployment: the drop-in's openai/* requests go to its own Cohere deployment,
    and the app still gets openai's types; OpenAI's server receives nothing."""
    from openai.types import CreateEmbeddingResponse
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    from tests.wire.cohere import CohereApp

    cohere_app = CohereApp("Bonjour from a private Cohere")
    cohere_app.anonymous = True  # a private deployment inside the tenant's network, with no key
    with LoopbackServer(OpenAIWire(key=KEY)) as openai_server, LoopbackServer(cohere_app) as cohere_server:
        _reroute_to_private_cohere(tmp_path, monkeypatch, openai_server.url, cohere_server.url)
        client = dropin.OpenAI(api_key=KEY, base_url=f"{openai_server.url}/v1")
        completion = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        chunks = list(
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True)
        )
        vectors = client.embeddings.create(model="text-embedding-3-small", input=["x", "y"])
        with pytest.raises(dropin.PolicyViolation):  # no reroute for what only OpenAI's API can do
            client.responses.create(model="gpt-5", input="hi", store=False)
        # The alternative cuts its stream after it began (privsdk cannot retry a begun stream): the app gets the
        # text so far, then openai's own APIError from OpenAI's in-stream error event, with no vendor text.
        cohere_app.chunks = 6
        cohere_server.fail(Cut(after=3))
        cut: list[str] = []
        with pytest.raises(openai.APIError) as broken:
            for c in client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
            ):
                cut.extend(choice.delta.content or "" for choice in c.choices)
        client.close()
        assert cohere_server.errors == []
        assert openai_server.requests == [] and len(cohere_server.requests) == 4
    assert cut and cohere_app.text.startswith("".join(cut)) and "".join(cut) != cohere_app.text
    assert not isinstance(broken.value, privsdk.PolicyViolation) and "Bonjour" not in str(broken.value)
    assert isinstance(completion, ChatCompletion) and completion.choices[0].message.content == cohere_app.text
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == cohere_app.text
    assert isinstance(vectors, CreateEmbeddingResponse) and [d.index for d in vectors.data] == [0, 1]


@pytest.mark.parametrize("status", [429, 503])
def test_a_failure_of_the_alternative_is_retried_as_the_sdk_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    """The drop-in is the SDK: openai's ``max_retries`` decides how often a failed rerouted request is sent again
    (each time judged and rerouted afresh), and privsdk adds no retries of its own on top, whatever
    PRIVSDK_MAX_ATTEMPTS says (it is the privsdk.Client's). The app gets openai's own error for the status,
    without the vendor's text."""
    from tests.wire.cohere import CohereApp
    from tests.wire.cohere import error_body as cohere_error

    with LoopbackServer(OpenAIWire(key=KEY)) as openai_server, LoopbackServer(CohereApp("hi")) as cohere_server:
        _reroute_to_private_cohere(tmp_path, monkeypatch, openai_server.url, cohere_server.url)
        monkeypatch.setenv("PRIVSDK_MAX_ATTEMPTS", "5")
        reset_default_guard()
        cohere_server.fail(*[Status(status, {"retry-after": "0"}, cohere_error("echo: CANARY-59"))] * 20)
        client = dropin.OpenAI(api_key=KEY, base_url=f"{openai_server.url}/v1", max_retries=1)
        with pytest.raises(openai.APIStatusError) as raised:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        client.close()

        async def run() -> None:
            async with dropin.AsyncOpenAI(api_key=KEY, base_url=f"{openai_server.url}/v1", max_retries=1) as aclient:
                await aclient.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])

        with pytest.raises(openai.APIStatusError) as araised:
            asyncio.run(run())
        assert openai_server.requests == []
        assert len(cohere_server.requests) == 4  # openai's two attempts per call, one each at the alternative
    for exc in (raised.value, araised.value):
        assert exc.status_code == status and not isinstance(exc, privsdk.PolicyViolation)
        assert type(exc) is (openai.RateLimitError if status == 429 else openai.InternalServerError)
        assert "CANARY-59" not in str(exc) and "CANARY-59" not in str(exc.body)


def test_a_refusal_crosses_a_process_boundary(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A refusal raised in a worker reaches its pool's caller: it pickled, and failed to unpickle (its args hold
    the message, its __init__ takes the decision), so a ProcessPoolExecutor broke."""
    import pickle

    _app, server = wire
    guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr")
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
    with pytest.raises(dropin.PolicyViolation) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    again = pickle.loads(pickle.dumps(caught.value))
    assert type(again) is type(caught.value) and isinstance(again, openai.OpenAIError)
    assert (again.args, again.decision) == (caught.value.args, caught.value.decision)
    plain = pickle.loads(pickle.dumps(privsdk.PolicyViolation(caught.value.decision)))
    assert str(plain) == str(caught.value)


def test_a_scopes_tags_go_on_the_drop_ins_records(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """privsdk.scope(tags=...) reached privsdk.Client's records only: a drop-in's were recorded with no tags."""
    _app, server = wire
    usage = guard_env(monkeypatch, tmp_path, server)
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
    with privsdk.scope(tags={"team": "search"}), privsdk.scope(tags={"feature": "summary"}):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert [r["tags"] for r in usage_records(usage, 2)] == [{"feature": "summary", "team": "search"}, {}]
    with pytest.raises(privsdk.TagError), privsdk.scope(tags={"bad key!": "x"}):
        pass  # refused as the scope begins, never by a request inside it
