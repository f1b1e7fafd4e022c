"""Under ``privsdk.instrument()``, a ``privsdk.Client``'s mistral requests are judged by the Client's own guard.

The mistral adapter builds a mistralai ``Mistral``, which ``instrument()`` guards as it is built (as its
``BaseSDK.__init__`` takes the configuration), with the process-wide guard and the drop-in's reroute hooks; the
adapter then guarded it with the Client's guard and no reroute, which left the httpx clients' transports as they
were. So a Client built with a policy of its own (``Client(policy=...)``, ``Client(environ=...)``) had its requests
judged by the process-wide policy: what its own policy refuses at the wire was sent, and what it allows could be
refused. Now the Client's guard replaces the one ``instrument()`` put there, for that client alone.

The real mistralai SDK sends over real HTTP to a loopback server (``tests/wire``) speaking Mistral's API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mistralai.client import Mistral
from mistralai.client.models import UserMessage

import privsdk
from privsdk.outbound.transport import is_guarded
from tests import instrument_support as support
from tests.instrument_support import TEXT, WITH_IMAGE, instrumented, send, stricter_catalogue, transports  # noqa: F401
from tests.openai_support import reset_default_guard
from tests.wire.mistral import MistralApp
from tests.wire.server import LoopbackServer

KEY = "mistral-under-instrument"
MODEL = "mistral-small-latest"
#: The target the Client calls: la Plateforme, at the loopback server.
TARGET = """
[targets.m]
offering = "mistral.api"
model = "{model}"
endpoint = "{url}"
"""


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """la Plateforme on loopback, which the process-wide policy (the environment) declares and lets every request
    through to."""
    for name in ("PRIVSDK_CONFIG", "PRIVSDK_REQUIRE", "PRIVSDK_ATTEST", "PRIVSDK_TENANTS", "MISTRAL_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with LoopbackServer(MistralApp(TEXT)) as running:
        monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{running.url}=mistral.api")
        monkeypatch.setenv("PRIVSDK_USAGE", "none")
        reset_default_guard()
        yield running
        assert running.errors == []
    reset_default_guard()


def own_client(tmp_path: Path, url: str, *, aio: bool = False) -> Any:
    """A privsdk.Client with a policy and a catalogue of its own: its tenant requires no_provider_sharing, which an
    image sent to la Plateforme breaks, by its catalogue (not the process-wide one's)."""
    catalogue = stricter_catalogue(tmp_path, "mistral.toml", "MIS-APT", "2026-07-05")
    targets = TARGET.format(model=MODEL, url=url)
    return support.own_client(tmp_path, catalogue, targets, {"mistral": {"api_key": KEY}}, aio=aio)


@pytest.mark.parametrize("way", ["chat", "stream", "async chat"])
@pytest.mark.usefixtures("instrumented")
def test_what_the_clients_own_policy_refuses_at_the_wire_is_not_sent(
    way: str, server: LoopbackServer, tmp_path: Path
) -> None:
    """An image in a chat, which the Client's own policy refuses (the guard reads it at the wire) and the process-wide
    policy allows: under instrument() it was sent to Mistral, judged by the process-wide guard."""
    aio = way == "async chat"
    client = own_client(tmp_path, server.url, aio=aio)
    try:
        with pytest.raises(privsdk.PolicyViolation, match="no_provider_sharing") as refused:
            send(client, "m", way, WITH_IMAGE)
        assert "file_inputs" in str(refused.value)
        assert server.requests == []
        # Text alone meets the Client's policy: sent, and answered.
        assert send(client, "m", way, "What is in this picture?") == TEXT
        assert len(server.requests) == 1
    finally:
        asyncio.run(client.aclose()) if aio else client.close()


@pytest.mark.usefixtures("instrumented")
def test_what_the_clients_own_policy_allows_is_not_refused_by_the_process_wide_one(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The other way round: the process-wide policy requires no_training, which la Plateforme's free plan does not
    meet; a Client configured by a mapping of its own (a policy file naming the target, no requirement) allows the
    call. Its chat was refused under instrument()."""
    monkeypatch.setenv("PRIVSDK_REQUIRE", "no_training")
    reset_default_guard()
    config = tmp_path / "targets.toml"
    config.write_text(TARGET.format(model=MODEL, url=server.url), encoding="utf-8")
    own = {"PRIVSDK_CONFIG": str(config), "PRIVSDK_USAGE": "none"}
    client = privsdk.Client(environ=own, credentials={"mistral": {"api_key": KEY}})
    try:
        assert client.chat("m", "Hello").text == TEXT
    finally:
        client.close()
    assert len(server.requests) == 1
    # The process-wide policy still judges the clients the app builds: instrument() guards them as before.
    app_client = Mistral(api_key=KEY, server_url=server.url)
    with pytest.raises(privsdk.PolicyViolation, match="no_training"):
        app_client.chat.complete(model=MODEL, messages=[UserMessage(content="Hello")])
    assert len(server.requests) == 1


@pytest.mark.usefixtures("instrumented")
def test_the_adapters_mistral_client_sends_through_the_clients_guard_without_reroutes(
    server: LoopbackServer, tmp_path: Path
) -> None:
    """What the Client's mistralai client sends through, both of its httpx clients: the Client's guard, and no reroute
    hook (the Client reroutes by itself); instrument() had left the process-wide guard and the drop-in's reroute hooks
    there. An app's client built beside it keeps those."""
    client = own_client(tmp_path, server.url)
    try:
        assert client.chat("m", "Hello").text == TEXT
        (adapter,) = client._core._adapters.values()
        config = adapter._sdk.sdk_configuration
        for http in (config.client, config.async_client):
            assert is_guarded(http)
            assert all(t.guard is client._core.guard and t.reroute is None for t in transports(http))
        # A new httpx client put in the configuration later (a framework's, on a new event loop) is guarded so too.
        config.async_client = type(config.async_client)()
        assert is_guarded(config.async_client)
        assert all(t.guard is client._core.guard and t.reroute is None for t in transports(config.async_client))
    finally:
        client.close()
    app_client = Mistral(api_key=KEY, server_url=server.url)
    http = app_client.sdk_configuration.client
    assert is_guarded(http)
    assert all(t.guard is None and t.reroute is not None for t in transports(http))
