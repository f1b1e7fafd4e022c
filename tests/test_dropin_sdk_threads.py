"""Requests a vendor SDK sends from threads of its own are judged under the scope of the code that called it.

cohere's v1 ``Client.embed`` sends its batches from the client's thread pool, and openai's
``vector_stores.file_batches.upload_and_poll`` uploads from a pool it makes: ``privsdk.scope`` (a context
variable) was not in force there, so the guard judged those requests for the default tenant, whose policy
allowed what the caller's tenant refuses, and recorded them under it. Through the real SDKs, over loopback.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import privsdk
from privsdk import cohere, openai
from privsdk.outbound.judge import Guard
from tests.wire.cohere import CohereApp
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer

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
