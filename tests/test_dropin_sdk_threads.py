"""Requests a vendor SDK sends from threads of its own, or for a stream only as it is read, are judged under the
scope of the code that called it.

cohere's v1 ``Client.embed`` sends its batches from the client's thread pool, and openai's
``vector_stores.file_batches.upload_and_poll`` uploads from a pool it makes: ``privsdk.scope`` (a context
variable) was not in force there, so the guard judged those requests for the default tenant, whose policy
allowed what the caller's tenant refuses, and recorded them under it. Through the real SDKs, over loopback.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from mistralai.extra.run.context import RunContext

import privsdk
from privsdk import cohere, genai, mistralai, openai
from privsdk.context import lazy_in_callers_context
from privsdk.outbound.judge import Guard
from tests.wire.cohere import CohereApp
from tests.wire.mistral import MistralApp
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer
from tests.wire.vertex import API_KEY, GeminiApp

#: Tenant "strict" requires ZDR, which neither offering has without an attestation; "lax" requires nothing.
TENANTS = """
[tenants.lax]
classes.default = []
[tenants.strict]
classes.default = ["zdr"]
"""
CANARY = "threads-canary-7d1f"


class Setup:
    """A loopback server, a policy declaring it, and the guard's records in a JSONL file."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LoopbackServer, declared: str):
        self.server, self.records = server, tmp_path / "usage.jsonl"
        self.config = tmp_path / "privsdk.toml"
        self.declared = declared
        monkeypatch.setenv("PRIVSDK_CONFIG", str(self.config))
        monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{self.records}")

    def policy(self, default_tenant: str | None) -> None:
        top = f'default_tenant = "{default_tenant}"\n' if default_tenant else ""
        self.config.write_text(f'{top}[endpoints]\n"{self.declared}"\n{TENANTS}', encoding="utf-8")
        Guard.reset_default()

    def taken(self) -> list[tuple[str, str, str]]:
        Guard.default().flush(5)
        found = [json.loads(line) for line in self.records.read_text().splitlines()] if self.records.exists() else []
        self.records.write_text("")
        return [(r["tenant"], r["operation"], r["decision"]) for r in found]

    def sent(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.server.requests]


@pytest.fixture
def cohere_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    with LoopbackServer(CohereApp()) as server:
        yield Setup(tmp_path, monkeypatch, server, f'{server.url}" = "cohere.saas')
    Guard.reset_default()


@pytest.fixture
def openai_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    with LoopbackServer(OpenAIWire()) as server:
        yield Setup(tmp_path, monkeypatch, server, f'{server.url}/v1" = "openai.api')
    Guard.reset_default()


def cohere_v1_embed(url: str) -> Any:
    client = cohere.Client(api_key="k", base_url=url, max_retries=0)
    return client.embed(
        model="embed-v4.0", texts=[CANARY], input_type="search_document", embedding_types=["float"]
    )  # batching is the default: the SDK's thread pool sends it


def test_cohere_v1_embed_batches_are_judged_for_the_scoped_tenant(cohere_setup: Setup) -> None:
    cohere_setup.policy(default_tenant="lax")
    with privsdk.scope(tenant="strict"), pytest.raises(privsdk.PolicyViolation, match="unmet: zdr"):
        cohere_v1_embed(cohere_setup.server.url)
    assert cohere_setup.sent() == []
    assert cohere_setup.taken() == [("strict", "embed", "refuse")]


def test_cohere_v1_embed_is_sent_for_a_scoped_tenant_the_policy_allows_without_a_default(cohere_setup: Setup) -> None:
    """The reverse: with no default_tenant, the batch judged outside the scope was refused as naming no tenant."""
    cohere_setup.policy(default_tenant=None)
    with privsdk.scope(tenant="lax"), pytest.raises(cohere.core.api_error.ApiError):
        cohere_v1_embed(cohere_setup.server.url)  # the stand-in serves v2 embed only: its 404 shows it arrived
    assert cohere_setup.sent() == ["POST /v1/embed"]
    assert cohere_setup.taken() == [("lax", "embed", "allow")]


def upload(url: str) -> Any:
    client = openai.OpenAI(api_key="sk-loopback", base_url=url + "/v1", max_retries=0)
    files = [("notes.txt", io.BytesIO(CANARY.encode()))]
    return client.vector_stores.file_batches.upload_and_poll("vs_1", files=files)


def test_openai_upload_and_poll_uploads_are_judged_for_the_scoped_tenant(openai_setup: Setup) -> None:
    openai_setup.policy(default_tenant="lax")
    with privsdk.scope(tenant="strict"), pytest.raises(privsdk.PolicyViolation, match="unmet: zdr"):
        upload(openai_setup.server.url)
    assert openai_setup.sent() == []
    assert openai_setup.taken() == [("strict", "files", "refuse")]


def test_openai_upload_and_poll_is_sent_for_a_scoped_tenant_the_policy_allows(openai_setup: Setup) -> None:
    openai_setup.policy(default_tenant=None)
    with privsdk.scope(tenant="lax"), pytest.raises(openai.APIStatusError):
        upload(openai_setup.server.url)  # the stand-in has no files endpoint: its 404 shows the upload arrived
    assert openai_setup.sent() == ["POST /v1/files"]
    assert openai_setup.taken() == [("lax", "files", "allow")]


# -- streams an SDK sends for only as they are read ----------------------------------------------------------------

MESSAGES: Any = [{"role": "user", "content": CANARY}]


def cohere_streams(url: str) -> dict[str, Any]:
    """One stream of each kind cohere builds as a generator, made (not read) here."""
    v2 = cohere.ClientV2(api_key="k", base_url=url, max_retries=0)
    v1 = cohere.Client(api_key="k", base_url=url, max_retries=0)
    return {
        "POST /v2/chat": v2.chat_stream(model="command-a-03-2025", messages=MESSAGES),
        "POST /v1/embed": v1.embed_stream(texts=[CANARY], model="embed-v4.0", input_type="search_document"),
    }


def async_cohere_stream(url: str) -> Any:
    client = cohere.AsyncClientV2(api_key="k", base_url=url, max_retries=0)
    return client.chat_stream(model="command-a-03-2025", messages=MESSAGES)


async def read_async(stream: Any) -> list[Any]:
    return [event async for event in stream]


def test_a_cohere_stream_made_in_a_scope_is_judged_for_it_wherever_it_is_read(cohere_setup: Setup) -> None:
    """cohere's streams are generators, which send their request at the first read: one made inside a tenant's
    scope and read after it (a web handler returning it for its framework to read) was judged, sent and recorded
    for the default tenant, whose policy allowed what the scope's tenant refuses."""
    cohere_setup.policy(default_tenant="lax")
    with privsdk.scope(tenant="strict"):
        streams = cohere_streams(cohere_setup.server.url)
        async_stream = async_cohere_stream(cohere_setup.server.url)
    for stream in streams.values():
        with pytest.raises(privsdk.PolicyViolation, match="unmet: zdr"):
            list(stream)
    with pytest.raises(privsdk.PolicyViolation, match="unmet: zdr"):
        asyncio.run(read_async(async_stream))
    assert cohere_setup.sent() == []
    refused = [("strict", "stream", "refuse"), ("strict", "embed", "refuse"), ("strict", "stream", "refuse")]
    assert cohere_setup.taken() == refused


def test_a_cohere_stream_made_for_an_allowed_tenant_is_sent_though_read_in_a_strict_scope(cohere_setup: Setup) -> None:
    """The reverse: read inside another tenant's scope, a stream is still the caller's, and sent."""
    cohere_setup.policy(default_tenant=None)
    with privsdk.scope(tenant="lax"):
        stream = cohere_streams(cohere_setup.server.url)["POST /v2/chat"]
        async_stream = async_cohere_stream(cohere_setup.server.url)
    with privsdk.scope(tenant="strict"):
        assert [event.type for event in stream][-1] == "message-end"
        assert [event.type for event in asyncio.run(read_async(async_stream))][-1] == "message-end"
    assert cohere_setup.sent() == ["POST /v2/chat", "POST /v2/chat"]
    assert cohere_setup.taken() == [("lax", "stream", "allow")] * 2


@pytest.fixture
def mistral_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    with LoopbackServer(MistralApp()) as server:
        yield Setup(tmp_path, monkeypatch, server, f'{server.url}" = "mistral.api')
    Guard.reset_default()


async def mistral_conversation(url: str, tenant: str) -> Any:
    """A conversation stream, made in ``tenant``'s scope (and not read there)."""
    client = mistralai.Mistral(api_key="k", server_url=url)
    with privsdk.scope(tenant=tenant):
        return await client.beta.conversations.run_stream_async(
            run_ctx=RunContext(model="mistral-medium-latest"), inputs=CANARY
        )


def test_a_mistral_conversation_stream_made_in_a_scope_is_judged_for_it_wherever_it_is_read(
    mistral_setup: Setup,
) -> None:
    """``run_stream_async`` returns a generator that starts the conversation as it is read: as cohere's streams."""
    mistral_setup.policy(default_tenant="lax")

    async def made_then_read() -> list[Any]:
        return await read_async(await mistral_conversation(mistral_setup.server.url, "strict"))

    with pytest.raises(privsdk.PolicyViolation, match="unmet: zdr"):
        asyncio.run(made_then_read())
    assert mistral_setup.sent() == []
    assert mistral_setup.taken() == [("strict", "stream", "refuse")]


@pytest.fixture
def genai_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    with LoopbackServer(GeminiApp()) as server:
        yield Setup(tmp_path, monkeypatch, server, f'{server.url}" = "gemini.api')
    Guard.reset_default()


def test_google_genai_streams_made_in_a_scope_are_judged_for_it_wherever_they_are_read(genai_setup: Setup) -> None:
    """``generate_content_stream`` and a chat's ``send_message_stream`` return generators (the async
    ``generate_content_stream`` one, once awaited), which send at the first read: as cohere's streams."""
    genai_setup.policy(default_tenant="lax")
    options = genai.types.HttpOptions(base_url=genai_setup.server.url)
    client = genai.Client(api_key=API_KEY, http_options=options)
    model = "gemini-2.5-flash"

    async def made_in_scope() -> Any:
        with privsdk.scope(tenant="strict"):
            return await client.aio.models.generate_content_stream(model=model, contents=CANARY)

    with privsdk.scope(tenant="strict"):
        streams = [
            client.models.generate_content_stream(model=model, contents=CANARY),
            client.chats.create(model=model).send_message_stream(CANARY),
        ]
    for stream in streams:
        with pytest.raises(privsdk.PolicyViolation, match="unmet: zdr"):
            list(stream)
    with pytest.raises(privsdk.PolicyViolation, match="unmet: zdr"):
        asyncio.run(read_async_made(made_in_scope))
    assert genai_setup.sent() == []
    assert genai_setup.taken() == [("strict", "stream", "refuse")] * 3


async def read_async_made(make: Any) -> list[Any]:
    return await read_async(await make())


def test_a_stream_read_in_the_callers_context_passes_on_what_is_sent_and_thrown_in() -> None:
    """The wrapped stream is ``yield from`` the SDK's, stepped in another context: what the reader sends in, or
    throws in, reaches the SDK's generator as it would without the wrapper."""

    def echo() -> Generator[Any, Any, str]:
        got: Any = None
        while got != "stop":
            try:
                got = yield got
            except ValueError as exc:  # handled by the stream, which goes on
                got = yield f"handled {exc}"
        return "done"

    for stream in (echo(), lazy_in_callers_context(echo)()):
        assert next(stream) is None
        assert stream.send("a") == "a"
        assert stream.throw(ValueError("x")) == "handled x"
        with pytest.raises(StopIteration) as ended:
            stream.send("stop")
        assert ended.value.value == "done"
