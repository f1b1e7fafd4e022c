"""An httpx client put into a guarded SDK client after it was guarded sends through the guard too.

privsdk guards an SDK client by wrapping the transport of the httpx client it holds. Frameworks replace that
httpx client later: pydantic-ai builds a fresh one when a run starts on a new event loop (a second
``asyncio.run``) and assigns it into the SDK client it built (openai's ``_client``, cohere's client wrapper,
mistralai's ``sdk_configuration.async_client``, google-genai's ``_api_client._async_httpx_client``). Each of
those assignments, and the sync ones beside them, must leave the SDK client guarded: under a refusing policy,
nothing reaches the loopback stand-in and every attempt leaves a refused record.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import httpx2
import pytest
from pydantic_ai import Agent
from pydantic_ai.models.cohere import CohereModel
from pydantic_ai.models.google import GoogleModel
from pydantic_ai.models.mistral import MistralModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.cohere import CohereProvider
from pydantic_ai.providers.google import GoogleProvider
from pydantic_ai.providers.mistral import MistralProvider
from pydantic_ai.providers.openai import OpenAIProvider

import privsdk
from privsdk.outbound.judge import Guard
from tests.wire.cohere import CohereApp
from tests.wire.mistral import MistralApp
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer
from tests.wire.vertex import API_KEY as GEMINI_KEY
from tests.wire.vertex import GeminiApp

PROMPT = "patient Jane Roe, MRN 12345"
MSG: Any = [{"role": "user", "content": PROMPT}]


class Vendor(NamedTuple):
    app: Callable[[], Any]
    offering: str


VENDORS = {
    "openai": Vendor(lambda: OpenAIWire(key="sk-x"), "openai.api"),
    "cohere": Vendor(CohereApp, "cohere.saas"),
    "mistral": Vendor(MistralApp, "mistral.api"),
    "google": Vendor(GeminiApp, "gemini.api"),
}


class Wire(NamedTuple):
    vendor: str
    server: LoopbackServer
    usage: Path

    def refused_records(self) -> list[tuple[str, str]]:
        Guard.default().flush(5)
        lines = self.usage.read_text().splitlines() if self.usage.exists() else []
        return [(r["outcome"], r["decision"]) for r in map(json.loads, lines)]


@pytest.fixture(params=list(VENDORS))
def wire(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Wire]:
    """A loopback stand-in for the vendor, declared as its offering, under a tenant that needs ZDR (which none of
    the four meets without an attestation: every request must be refused)."""
    vendor = VENDORS[request.param]
    usage = tmp_path / "usage.jsonl"
    with LoopbackServer(vendor.app()) as server:
        monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{server.url}={vendor.offering}")
        monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{usage}")
        monkeypatch.setenv("PRIVSDK_REQUIRE", "zdr")
        monkeypatch.setenv("CO_BASE_URL", server.url)  # pydantic-ai's Cohere provider takes no base URL
        Guard.reset_default()
        yield Wire(request.param, server, usage)
        assert server.errors == []


def agent(wire: Wire) -> Agent[None, str]:
    url = wire.server.url
    if wire.vendor == "openai":
        return Agent(OpenAIChatModel("gpt-4o-mini", provider=OpenAIProvider(base_url=f"{url}/v1", api_key="sk-x")))
    if wire.vendor == "cohere":
        return Agent(CohereModel("command-r-plus-08-2024", provider=CohereProvider(api_key="co-key")))
    if wire.vendor == "mistral":
        return Agent(MistralModel("mistral-large-latest", provider=MistralProvider(api_key="m-key", base_url=url)))
    return Agent(GoogleModel("gemini-2.0-flash", provider=GoogleProvider(api_key=GEMINI_KEY, base_url=url)))


def test_pydantic_ai_runs_on_new_event_loops_are_all_refused(wire: Wire) -> None:
    """Each ``asyncio.run`` is a new event loop, on which pydantic-ai gives the SDK client a new httpx client."""
    privsdk.instrument()  # as an app (or ``privsdk run``) does, before the framework builds its clients
    try:
        runner = agent(wire)
        for _ in range(2):
            with pytest.raises(Exception) as caught:
                asyncio.run(runner.run(PROMPT))
            assert isinstance(caught.value.__cause__, privsdk.PolicyViolation), repr(caught.value)
    finally:
        privsdk.uninstrument()
    assert wire.server.requests == []
    assert wire.refused_records() == [("refused", "refuse")] * 2


# -- framework-free: the app (or any library) assigns a new httpx client into a guarded SDK client ---------------


Sender = Callable[[Any], Any]
Swapper = Callable[[Any], None]


def openai_client(url: str, sync: bool, dropin: bool) -> tuple[Any, Sender, Swapper]:
    """A client of the SDK (the drop-in's, or the SDK's own), how to send one chat request with it, and how to put
    a new httpx client into it as the frameworks do."""
    import openai

    from privsdk import openai as guarded

    module: Any = guarded if dropin else openai
    client = (module.OpenAI if sync else module.AsyncOpenAI)(base_url=f"{url}/v1", api_key="sk-x", max_retries=0)

    def send(c: Any) -> Any:
        return c.chat.completions.create(model="gpt-4o-mini", messages=MSG)

    def swap(c: Any) -> None:
        c._client = httpx2.Client() if sync else httpx2.AsyncClient()

    return client, send, swap


def cohere_client(url: str, sync: bool, dropin: bool) -> tuple[Any, Sender, Swapper]:
    import cohere

    from privsdk import cohere as guarded

    module: Any = guarded if dropin else cohere
    client = (module.ClientV2 if sync else module.AsyncClientV2)(api_key="co-key", base_url=url)

    def send(c: Any) -> Any:
        return c.chat(model="command-a-03-2025", messages=MSG)

    def swap(c: Any) -> None:
        c._client_wrapper.httpx_client.httpx_client = httpx.Client() if sync else httpx.AsyncClient()

    return client, send, swap


def mistral_client(url: str, sync: bool, dropin: bool) -> tuple[Any, Sender, Swapper]:
    from mistralai.client import Mistral

    from privsdk import mistralai

    client = (mistralai.Mistral if dropin else Mistral)(api_key="m-key", server_url=url)

    def send(c: Any) -> Any:
        return (c.chat.complete if sync else c.chat.complete_async)(model="mistral-large-latest", messages=MSG)

    def swap(c: Any) -> None:
        setattr(
            c.sdk_configuration, "client" if sync else "async_client", httpx2.Client() if sync else httpx2.AsyncClient()
        )

    return client, send, swap


def google_client(url: str, sync: bool, dropin: bool) -> tuple[Any, Sender, Swapper]:
    from google import genai
    from google.genai import types

    from privsdk import genai as guarded

    module: Any = guarded if dropin else genai
    client = module.Client(api_key=GEMINI_KEY, http_options=types.HttpOptions(base_url=url))

    def send(c: Any) -> Any:
        return (c.models if sync else c.aio.models).generate_content(model="gemini-2.0-flash", contents=PROMPT)

    def swap(c: Any) -> None:
        name = "_httpx_client" if sync else "_async_httpx_client"
        setattr(c._api_client, name, httpx2.Client() if sync else httpx2.AsyncClient())

    return client, send, swap


CLIENTS = {"openai": openai_client, "cohere": cohere_client, "mistral": mistral_client, "google": google_client}


def _refused(send: Sender, client: Any, sync: bool) -> None:
    with pytest.raises(privsdk.PolicyViolation):
        if sync:
            send(client)
        else:

            async def run() -> Any:
                return await send(client)

            asyncio.run(run())


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
def test_an_httpx_client_assigned_into_a_drop_in_client_is_guarded(wire: Wire, sync: bool) -> None:
    client, send, swap = CLIENTS[wire.vendor](wire.server.url, sync, True)
    _refused(send, client, sync)
    swap(client)
    _refused(send, client, sync)
    swap(client)  # and the one after it
    _refused(send, client, sync)
    assert wire.server.requests == []
    assert wire.refused_records() == [("refused", "refuse")] * 3


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
def test_an_httpx_client_assigned_into_a_client_the_app_guarded_is_guarded(wire: Wire, sync: bool) -> None:
    """``privsdk.guard`` on the SDK's own client: the same holds."""
    client, send, swap = CLIENTS[wire.vendor](wire.server.url, sync, False)
    privsdk.guard(client)
    swap(client)
    _refused(send, client, sync)
    assert wire.server.requests == []
    assert wire.refused_records() == [("refused", "refuse")]


@pytest.mark.parametrize("wire", ["cohere"], indirect=True)
@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
def test_a_cohere_http_client_put_into_a_guarded_clients_wrapper_is_guarded(wire: Wire, sync: bool) -> None:
    """cohere keeps its httpx client in an HttpClient of its own, in the client wrapper every part of the client
    shares: a new HttpClient (with a new httpx client) put into that wrapper is guarded, and so is the next httpx
    client put into it."""
    from cohere.core.http_client import AsyncHttpClient, HttpClient

    client, send, swap = cohere_client(wire.server.url, sync, False)
    privsdk.guard(client)
    wrapper = client._client_wrapper
    parts = {"base_timeout": wrapper.get_timeout, "base_headers": wrapper.get_headers, "base_url": wrapper.get_base_url}
    if sync:
        wrapper.httpx_client = HttpClient(httpx_client=httpx.Client(), **parts)
    else:
        wrapper.httpx_client = AsyncHttpClient(httpx_client=httpx.AsyncClient(), **parts)
    _refused(send, client, sync)
    swap(client)
    _refused(send, client, sync)
    assert wire.server.requests == []
    assert wire.refused_records() == [("refused", "refuse")] * 2


@pytest.mark.parametrize("wire", ["openai"], indirect=True)
@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
def test_openai_copies_keep_assigned_httpx_clients_guarded(wire: Wire, sync: bool) -> None:
    """``with_options`` / ``copy`` copies of a guarded openai client (one with an httpx client of its own among
    them), and the client once copied, each given a new httpx client."""
    client, send, swap = openai_client(wire.server.url, sync, False)
    privsdk.guard(client)
    copies = [client.with_options(timeout=3), client.copy(max_retries=0)]
    copies.append(client.copy(http_client=httpx2.Client() if sync else httpx2.AsyncClient()))
    for made in [client, *copies]:
        swap(made)
        _refused(send, made, sync)
    assert wire.server.requests == []


def test_a_client_that_is_not_guarded_sends_through_what_it_is_given(wire: Wire) -> None:
    """The contrast: beside a guarded client of its class (whose attribute is now watched), the SDK's own client,
    never guarded, sends through the httpx client it is given, as before."""
    guarded, send, swap = CLIENTS[wire.vendor](wire.server.url, True, False)
    privsdk.guard(guarded)
    plain, _send, _swap = CLIENTS[wire.vendor](wire.server.url, True, False)
    swap(plain)
    send(plain)
    assert len(wire.server.requests) == 1


@pytest.mark.parametrize("wire", ["mistral"], indirect=True)
@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
def test_a_mistral_configuration_put_into_a_guarded_client_is_guarded(wire: Wire, sync: bool) -> None:
    """mistralai builds its parts from the client's sdk_configuration at their first use: a new SDKConfiguration,
    with httpx clients of its own, put there before the first call sent unjudged and unrecorded."""
    from mistralai.client.sdkconfiguration import SDKConfiguration

    from privsdk import mistralai

    client = mistralai.Mistral(api_key="m-key", server_url=wire.server.url)
    old = client.sdk_configuration
    client.sdk_configuration = SDKConfiguration(
        client=httpx2.Client(),
        client_supplied=True,
        async_client=httpx2.AsyncClient(),
        async_client_supplied=True,
        debug_logger=old.debug_logger,
        security=old.security,
        server_url=wire.server.url,
        server=None,
        retry_config=old.retry_config,
        timeout_ms=old.timeout_ms,
    )
    client.sdk_configuration.__dict__["_hooks"] = old.__dict__["_hooks"]  # as mistralai's own constructor sets
    send = client.chat.complete if sync else client.chat.complete_async
    _refused(lambda c: send(model="mistral-large-latest", messages=MSG), client, sync)
    assert wire.server.requests == []
    assert wire.refused_records() == [("refused", "refuse")]
