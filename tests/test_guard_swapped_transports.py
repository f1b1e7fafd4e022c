"""A guarded SDK client sends through the guard whatever its httpx client's transports become, and judges each
request in its own SDK's protocol.

httpx picks a request's transport in ``Client._transport_for_url``, from ``_transport`` and ``_mounts``. The guard
wrapped those once, as the client was guarded: a transport put there afterwards (``_transport = ...``, ``_mounts =
...``), or picked by a subclass's own ``_transport_for_url``, sent unjudged. An httpx client shared by two SDKs'
clients was judged in the protocol of the first to guard it. openai's aiohttp transport (``DefaultAioHttpClient``)
sent plain http through ``HTTP_PROXY`` whole. Real SDKs over real HTTP, against loopback servers that no policy
declares (every request must be refused, with nothing received) or that answer in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import httpx2
import openai
import pytest

import privsdk
import privsdk.cohere
import privsdk.mistralai
from privsdk import openai as dropin
from privsdk.outbound.judge import Guard
from privsdk.outbound.transport import is_guarded
from tests.wire.mistral import MistralApp
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer, Recorded, Reply, answered_in_memory

KEY = "sk-loopback"
MSG: Any = [{"role": "user", "content": "hello"}]


@pytest.fixture
def undeclared(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """An OpenAI stand-in no policy declares: a request judged is refused before it connects."""
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    monkeypatch.setenv("PRIVSDK_REQUIRE", "zdr")
    Guard.reset_default()
    with LoopbackServer(OpenAIWire(key=KEY)) as server:
        yield server
        assert server.errors == []


def _openai(server: LoopbackServer, **options: Any) -> Any:
    return dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0, **options)


def _openai_chat(client: Any) -> object:
    return client.chat.completions.create(model="gpt-4o-mini", messages=MSG)


def _swap_openai_transport(server: LoopbackServer) -> Callable[[], object]:
    client = _openai(server)
    client._client._transport = httpx2.HTTPTransport()
    return lambda: _openai_chat(client)


def _swap_openai_mounts(server: LoopbackServer) -> Callable[[], object]:
    client = _openai(server)
    client._client._mounts = {httpx2._utils.URLPattern("all://"): httpx2.HTTPTransport()}
    return lambda: _openai_chat(client)


class _PicksItsOwnTransport(httpx2.Client):
    """An app's httpx client class that picks a transport per URL itself."""

    def _transport_for_url(self, url: Any) -> Any:
        return httpx2.HTTPTransport()


def _own_transport_picker(server: LoopbackServer) -> Callable[[], object]:
    client = _openai(server, http_client=_PicksItsOwnTransport())
    return lambda: _openai_chat(client)


def _swap_cohere_transport(server: LoopbackServer) -> Callable[[], object]:
    client = privsdk.cohere.ClientV2(api_key=KEY, base_url=server.url)
    client._client_wrapper.httpx_client.httpx_client._transport = httpx.HTTPTransport()
    return lambda: client.chat(model="command-r-plus", messages=MSG)


def _swap_mistral_transport(server: LoopbackServer) -> Callable[[], object]:
    client = privsdk.mistralai.Mistral(api_key=KEY, server_url=server.url)
    client.sdk_configuration.client._transport = httpx2.HTTPTransport()
    return lambda: client.chat.complete(model="mistral-small-latest", messages=MSG)


@pytest.mark.parametrize(
    "swap",
    [
        _swap_openai_transport,
        _swap_openai_mounts,
        _own_transport_picker,
        _swap_cohere_transport,
        _swap_mistral_transport,
    ],
)
def test_a_transport_put_in_a_guarded_httpx_client_later_is_guarded_too(
    swap: Callable[[LoopbackServer], Callable[[], object]], undeclared: LoopbackServer
) -> None:
    call = swap(undeclared)
    with pytest.raises(privsdk.PolicyViolation, match="not an endpoint privsdk knows"):
        call()
    assert undeclared.requests == []


def test_openais_module_client_stays_guarded_when_its_transport_is_replaced(
    undeclared: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(openai, "api_key", KEY)
    monkeypatch.setattr(openai, "base_url", f"{undeclared.url}/v1/")
    monkeypatch.setattr(openai, "max_retries", 0)
    monkeypatch.setattr(openai, "http_client", httpx2.Client())
    monkeypatch.setattr(openai, "_client", None)
    privsdk.instrument()
    try:
        with pytest.raises(privsdk.PolicyViolation):
            openai.chat.completions.create(model="gpt-4o-mini", messages=MSG)
        replaced: Any = openai.http_client
        replaced._transport = httpx2.HTTPTransport()
        with pytest.raises(privsdk.PolicyViolation):
            openai.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    finally:
        privsdk.uninstrument()
    assert undeclared.requests == []


def test_an_httpx_client_shared_by_two_sdks_is_refused_where_their_protocols_differ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An Azure AI Foundry host serves OpenAI's and Mistral's protocols: a mistralai request through the httpx client
    an openai client guarded first was read as OpenAI's, so fields Mistral's reader refuses went out. Which SDK sent a
    request through a shared client cannot be told: refused, and sent nowhere. Each SDK's own client is judged as
    before."""
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    monkeypatch.setenv("PRIVSDK_REQUIRE", "no_training")
    Guard.reset_default()
    reached: list[Recorded] = []
    mistral = MistralApp()

    def app(request: Recorded) -> Reply:
        reached.append(request)
        return mistral(request)

    host = "https://res1.services.ai.azure.com"
    own = httpx2.Client(transport=answered_in_memory(app, httpx2))
    answer = privsdk.mistralai.Mistral(api_key=KEY, server_url=host, client=own).chat.complete(
        model="mistral-large-2411", messages=MSG
    )
    assert answer.choices and len(reached) == 1
    shared = httpx2.Client(transport=answered_in_memory(app, httpx2))
    dropin.OpenAI(api_key=KEY, base_url=f"{host}/openai/v1", http_client=shared)
    client = privsdk.mistralai.Mistral(api_key=KEY, server_url=host, client=shared)
    with pytest.raises(privsdk.PolicyViolation, match="shared by openai and mistralai clients"):
        client.chat.complete(model="mistral-large-2411", messages=MSG)
    assert len(reached) == 1 and is_guarded(shared)


def test_plain_http_through_the_proxy_of_openais_aiohttp_transport_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """openai.DefaultAioHttpClient sends through aiohttp, to which httpx hands the proxy HTTP_PROXY names: a plain
    http request went to the proxy whole, prompt included. It is refused as through httpx's own proxy transports."""
    with LoopbackServer(OpenAIWire(key=KEY)) as server, LoopbackServer(lambda r: Reply(502, b"proxy")) as proxy:
        monkeypatch.setenv("PRIVSDK_USAGE", "none")
        monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{server.url}/v1=openai.api")
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        for name in ("NO_PROXY", "no_proxy", "http_proxy"):
            monkeypatch.delenv(name, raising=False)
        Guard.reset_default()

        async def chat() -> None:
            client = dropin.AsyncOpenAI(
                api_key=KEY, base_url=f"{server.url}/v1", max_retries=0, http_client=openai.DefaultAioHttpClient()
            )
            try:
                await client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
            finally:
                await client.close()

        with pytest.raises(privsdk.PolicyViolation, match="which reads plain-text requests"):
            asyncio.run(chat())
        assert proxy.requests == [] and server.requests == []
