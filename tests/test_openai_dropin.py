"""The drop-in OpenAI client: code written for the openai package runs unchanged but for the import.

:func:`exercise` is written against openai's own API. It runs once with
``openai.OpenAI`` and once with ``privsdk.openai.OpenAI``, each against the
same loopback server, and both runs must see the same results, types and
errors. Then the drop-in is rerouted to another vendor and still returns
openai's types.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

import privsdk.openai
from tests.wire.cohere import CohereApp
from tests.wire.openai import OpenAIWire, error_body
from tests.wire.server import LoopbackServer, Status

KEY = "sk-dropin"
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


def exercise(OpenAI: Any, base_url: str, server: LoopbackServer) -> dict[str, Any]:
    """Calls as an app written for the openai package makes them."""
    client = OpenAI(api_key=KEY, base_url=base_url, max_retries=0, timeout=5.0)
    seen: dict[str, Any] = {}
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello?"}],
        temperature=0.2,
        max_tokens=50,
    )
    seen["chat"] = (type(completion), completion.choices[0].message.content, completion.choices[0].finish_reason)
    seen["usage"] = (completion.usage.prompt_tokens, completion.usage.completion_tokens)
    called = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=TOOLS
    )
    call = called.choices[0].message.tool_calls[0]
    seen["tool"] = (call.id, call.function.name, call.function.arguments, called.choices[0].finish_reason)
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Hello?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    seen["stream"] = (
        {type(c) for c in chunks},
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices),
        [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason],
        chunks[-1].usage.prompt_tokens if chunks[-1].usage else None,
    )
    vectors = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])
    seen["embed"] = (type(vectors), [len(d.embedding) for d in vectors.data], vectors.usage.prompt_tokens)
    for status, body in [
        (429, error_body("Rate limit reached", type="requests", code="rate_limit_exceeded")),
        (400, error_body("bad temperature", code="invalid_value")),
        (401, error_body("bad key", code="invalid_api_key")),
    ]:
        server.fail(Status(status, {"retry-after-ms": "10"} if status == 429 else {}, body))
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
        except openai.APIStatusError as exc:
            seen[f"error {status}"] = (type(exc), exc.status_code, exc.code)
    return seen


@pytest.fixture
def wire() -> Iterator[tuple[OpenAIWire, LoopbackServer]]:
    app = OpenAIWire(key=KEY)
    with LoopbackServer(app) as server:
        yield app, server
    assert server.errors == []


def test_the_drop_in_gives_what_the_openai_package_gives(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    app, server = wire
    raw = exercise(openai.OpenAI, f"{server.url}/v1", server)
    sent_raw = [(r.path, r.json()) for r in server.requests]
    server.requests.clear()
    ours = exercise(privsdk.openai.OpenAI, f"{server.url}/v1", server)
    assert ours == raw
    assert raw["chat"] == (ChatCompletion, app.text, "stop")
    assert raw["stream"][0] == {ChatCompletionChunk} and raw["stream"][1] == app.text
    assert raw["embed"][0] is CreateEmbeddingResponse
    assert [raw[f"error {s}"][1] for s in (429, 400, 401)] == [429, 400, 401]
    # The vendor received the same requests, bar the SDK's choice of embedding encoding.
    sent_ours = [(r.path, r.json()) for r in server.requests]
    assert [p for p, _ in sent_ours] == [p for p, _ in sent_raw]
    assert [b["messages"] for p, b in sent_ours if "messages" in b] == [
        b["messages"] for p, b in sent_raw if "messages" in b
    ]


def test_the_async_drop_in(wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    app, server = wire

    async def run() -> tuple[str | None, str, int]:
        client = privsdk.openai.AsyncOpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
        completion = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        vectors = await client.embeddings.create(model="text-embedding-3-small", input="alpha")
        await client.close()
        return completion.choices[0].message.content, text, len(vectors.data)

    assert asyncio.run(run()) == (app.text, app.text, 1)


def test_a_call_rerouted_to_another_vendor_still_returns_openai_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tenant needs a private deployment: openai/* goes to its own Cohere deployment, answered as openai's types."""
    cohere_app = CohereApp("Bonjour from a private Cohere")
    cohere_app.anonymous = True  # a private deployment inside the tenant's network, with no key
    with LoopbackServer(OpenAIWire(key=KEY)) as openai_server, LoopbackServer(cohere_app) as cohere_server:
        config = tmp_path / "privsdk.toml"
        config.write_text(
            f"""
[targets.cohere-private]
offering = "cohere.private"
model = "command-r-plus"
endpoint = "{cohere_server.url}"

[tenants.hospital]
on_violation = "reroute"
classes.default = ["private_deployment"]
reroute."openai/*" = ["cohere-private"]
""",
            encoding="utf-8",
        )
        for name, value in {"PRIVSDK_CONFIG": str(config), "PRIVSDK_USAGE": "none"}.items():
            monkeypatch.setenv(name, value)
        client = privsdk.openai.OpenAI(api_key=KEY, base_url=f"{openai_server.url}/v1")
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
        vectors = client.embeddings.create(model="text-embedding-3-small", input=["x", "y"])
        client.close()
        assert cohere_server.errors == []
        assert openai_server.requests == [] and len(cohere_server.requests) == 3
    assert isinstance(completion, ChatCompletion) and completion.choices[0].message.content == cohere_app.text
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert isinstance(vectors, CreateEmbeddingResponse) and [d.index for d in vectors.data] == [0, 1]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == cohere_app.text
