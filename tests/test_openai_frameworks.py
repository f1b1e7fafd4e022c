"""instrument() guards the openai clients that frameworks build inside: LangChain's ChatOpenAI and pydantic-ai.

The app does not touch the clients: it calls ``privsdk.instrument()``
once, then uses the framework as usual. Under a tenant that needs ZDR, the
call is refused before the loopback server receives a byte; once ZDR is
attested, it goes through and leaves a usage record with tokens.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_openai import ChatOpenAI
from pydantic_ai import Agent, ModelAPIError
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

import privsdk
from privsdk import openai as dropin
from tests import instrument_support
from tests.guard_support import guard_env, usage_records
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer

#: privsdk.instrument() for a test, as an app (or privsdk run) calls it: the shared fixture, under its name here.
instrumented = instrument_support.instrumented

KEY = "sk-frameworks"
MODEL = "gpt-4o-mini"


@pytest.fixture
def wire() -> Iterator[tuple[OpenAIWire, LoopbackServer]]:
    """A fresh server per test: LangChain caches its httpx client per base URL, so each test gets its own."""
    app = OpenAIWire(key=KEY)
    with LoopbackServer(app) as server:
        yield app, server
    assert server.errors == []


def langchain(server: LoopbackServer) -> ChatOpenAI:
    return ChatOpenAI(
        model=MODEL,
        base_url=f"{server.url}/v1",
        api_key=KEY,  # type: ignore[arg-type]
        max_retries=0,
        stream_usage=True,  # off by default for a base URL that is not OpenAI's
    )


def test_langchain_invoke_is_refused_before_a_byte_is_sent(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, instrumented: None
) -> None:
    _app, server = wire
    usage = guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr")
    with pytest.raises(privsdk.PolicyViolation) as caught:
        langchain(server).invoke("patient Jane Roe")
    assert isinstance(caught.value, dropin.OpenAIError) and "Jane" not in str(caught.value)
    assert server.requests == []
    assert [r["outcome"] for r in usage_records(usage, 1)] == ["refused"]


def test_langchain_invoke_and_stream_go_through_when_attested(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, instrumented: None
) -> None:
    app, server = wire
    usage = guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr", PRIVSDK_ATTEST="openai:zdr")
    model = langchain(server)
    assert model.invoke("hi").content == app.text
    assert "".join(str(chunk.content) for chunk in model.stream("hi")) == app.text
    assert asyncio.run(model.ainvoke("hi")).content == app.text
    records = usage_records(usage, 3)
    assert [(r["operation"], r["outcome"], r["input_tokens"], r["output_tokens"]) for r in records] == [
        ("chat", "ok", 11, 7),
        ("stream", "ok", 11, 7),
        ("chat", "ok", 11, 7),
    ]
    assert len(server.requests) == 3


def test_pydantic_ai_agent_is_guarded(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, instrumented: None
) -> None:
    app, server = wire
    usage = guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr")
    agent = Agent(OpenAIChatModel(MODEL, provider=OpenAIProvider(base_url=f"{server.url}/v1", api_key=KEY)))
    # pydantic-ai turns every openai.APIError, a refusal included, into its own error, chained to it.
    with pytest.raises(ModelAPIError) as caught:
        agent.run_sync("patient Jane Roe")
    assert isinstance(caught.value.__cause__, privsdk.PolicyViolation)
    assert "zdr" in str(caught.value) and "Jane" not in str(caught.value)
    assert server.requests == []
    guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr", PRIVSDK_ATTEST="openai:zdr")
    agent = Agent(OpenAIChatModel(MODEL, provider=OpenAIProvider(base_url=f"{server.url}/v1", api_key=KEY)))
    assert agent.run_sync("hi").output == app.text
    records = usage_records(usage, 2)
    assert [(r["outcome"], r.get("input_tokens")) for r in records] == [("refused", None), ("ok", 11)]


def test_without_instrument_the_frameworks_clients_are_openais_own(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The contrast: the same LangChain call, not instrumented, reaches the server."""
    app, server = wire
    guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr")
    assert langchain(server).invoke("hi").content == app.text
    assert len(server.requests) == 1


def test_privsdk_guard_takes_a_client_a_framework_built(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``privsdk.guard(client)`` on the openai client inside an already built ChatOpenAI."""
    _app, server = wire
    guard_env(monkeypatch, tmp_path, server, PRIVSDK_REQUIRE="zdr")
    model = langchain(server)
    privsdk.guard(model.root_client)
    with pytest.raises(privsdk.PolicyViolation):
        model.invoke("hi")
    assert server.requests == []


def test_a_framework_stream_read_after_its_scope_keeps_its_tenant_with_propagate(
    wire: tuple[OpenAIWire, LoopbackServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, instrumented: None
) -> None:
    """LangChain's stream sends its request as it is read. A web handler that returns it from inside its tenant's
    scope has it read after: judged for the default tenant, whose policy allowed what the caller's refuses.
    ``privsdk.propagate`` of the stream reads it in the context taken where it was made."""
    _app, server = wire
    config = tmp_path / "privsdk.toml"
    config.write_text(
        'default_tenant = "loose"\n[tenants.loose]\nclasses.default = ["no_training"]\n'
        '[tenants.strict]\nclasses.default = ["zdr"]\n',
        encoding="utf-8",
    )
    usage = guard_env(monkeypatch, tmp_path, server, PRIVSDK_CONFIG=str(config))
    model = langchain(server)

    def handler() -> Iterator[Any]:
        with privsdk.scope(tenant="strict"):
            return privsdk.propagate(model.stream("patient Jane Roe"))

    async def async_handler() -> AsyncIterator[Any]:
        with privsdk.scope(tenant="strict"):
            return privsdk.propagate(model.astream("patient Jane Roe"))

    async def read(stream: AsyncIterator[Any]) -> None:
        async for _ in stream:
            pass

    with pytest.raises(privsdk.PolicyViolation):
        list(handler())
    with pytest.raises(privsdk.PolicyViolation):
        asyncio.run(read(asyncio.run(async_handler())))
    assert server.requests == []
    assert [(r["tenant"], r["outcome"]) for r in usage_records(usage, 2)] == [("strict", "refused")] * 2
