"""The use-case scripts in examples/ run as a user runs them, against loopback stand-ins of the vendors.

Each runs in a subprocess with the vendors' own variables (OPENAI_BASE_URL,
AZURE_OPENAI_ENDPOINT, ...) pointing at the stand-ins, exactly as real
credentials would point at the vendors.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, clean_env
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer

OPENAI_KEY, AZURE_KEY = "sk-example", "azure-example"


@pytest.fixture
def vendors() -> Iterator[tuple[LoopbackServer, LoopbackServer]]:
    openai_app, azure_app = OpenAIWire(key=OPENAI_KEY), OpenAIWire(key=AZURE_KEY)
    openai_app.text, azure_app.text = "from OpenAI", "from Azure EU"
    with LoopbackServer(openai_app) as openai_server, LoopbackServer(azure_app) as azure_server:
        yield openai_server, azure_server
        assert openai_server.errors == [] and azure_server.errors == []


def run(script: str, tmp_path: Path, vendors: tuple[LoopbackServer, LoopbackServer], **env: str) -> str:
    openai_server, azure_server = vendors
    out = subprocess.run(
        [sys.executable, str(REPO / "examples" / script)],
        env=clean_env(
            HOME=str(tmp_path),
            OPENAI_API_KEY=OPENAI_KEY,
            OPENAI_BASE_URL=f"{openai_server.url}/v1",
            AZURE_OPENAI_API_KEY=AZURE_KEY,
            AZURE_OPENAI_ENDPOINT=azure_server.url,
            # The stand-ins are OpenAI's API and an Azure OpenAI resource: the guard places requests by host.
            PRIVSDK_ENDPOINTS=f"{openai_server.url}=openai.api,{azure_server.url}=azure.openai",
            **env,
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_swapping_the_openai_import(tmp_path: Path, vendors: tuple[LoopbackServer, LoopbackServer]) -> None:
    store = tmp_path / "usage.jsonl"
    out = run(
        "swap_openai_import.py",
        tmp_path,
        vendors,
        PRIVSDK_REQUIRE="zdr",
        PRIVSDK_ATTEST="openai:zdr",
        PRIVSDK_USAGE=f"jsonl://{store}",
    )
    assert out.splitlines()[:2] == ["from OpenAI", "from OpenAI"] and "2 vectors of" in out
    assert out.splitlines()[3].startswith("refused: ")  # OpenAI's ZDR does not cover files
    records = [json.loads(line) for line in store.read_text(encoding="utf-8").splitlines()]
    assert [(r["operation"], r["outcome"]) for r in records] == [
        ("chat", "ok"),
        ("stream", "ok"),
        ("embed", "ok"),
        ("files", "refused"),
    ]


def test_phi_goes_only_where_a_baa_covers_it(tmp_path: Path, vendors: tuple[LoopbackServer, LoopbackServer]) -> None:
    out = run("phi_baa.py", tmp_path, vendors)
    assert "openai-mini (allow): from OpenAI" in out
    assert "mistral-small refused, nothing sent" in out and "hipaa_baa" in out
    assert len(vendors[0].requests) == 1


def test_an_eu_only_tenant_is_rerouted(tmp_path: Path, vendors: tuple[LoopbackServer, LoopbackServer]) -> None:
    out = run("eu_only_tenant.py", tmp_path, vendors, OPENAI_API_VERSION="2024-10-21")
    assert "eu-bank: reroute -> azure-eu: from Azure EU" in out
    assert "us-retail: allow -> openai-mini: from OpenAI" in out
    assert [len(s.requests) for s in vendors] == [1, 1]
