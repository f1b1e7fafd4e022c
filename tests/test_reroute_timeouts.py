"""The SDK's own timeout holds for a rerouted request in the cohere, mistralai and google-genai drop-ins, through the
real SDKs over loopback servers.

Each tenant's policy is that of the drop-in's reroute tests (test_dropin_cohere_reroute, test_dropin_mistral_reroute,
test_dropin_genai_reroute): the SDK sends a chat, a stream or an embeddings request to a service the tenant refuses,
and the drop-in's transport answers it from an alternative (another loopback server) through privsdk's Client. The
app set a timeout on its SDK client, or on the call, and turned the SDK's retries off. Sent where the SDK sent it, a
request not answered within that timeout raises, when it has passed, the SDK's own read timeout: the ``ReadTimeout``
of the httpx (cohere) or httpx2 (mistralai, google-genai) the SDK sends through, which each of them lets through as it
is. Served from the alternative, it did not: privsdk's Client gave the alternative its own 60 s, so the app waited
past the timeout it set and got the answer after 3 s. Now a rerouted request the alternative does not answer in time
raises that same ``ReadTimeout`` when the SDK's timeout has passed, sync or async, and is recorded as the reroute's
timeout; an alternative that answers within the timeout, however slowly, answers as before. The refused service
receives nothing either way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import cohere
import httpx
import httpx2
import mistralai.client
import pytest
from google import genai as google_genai
from google.genai import types

import privsdk.cohere
import privsdk.mistralai
from privsdk import genai
from privsdk.outbound.judge import Guard
from privsdk.usage import UsageRecord, jsonl
from tests import test_dropin_cohere_reroute as cohere_case
from tests import test_dropin_genai_reroute as genai_case
from tests import test_dropin_mistral_reroute as mistral_case
from tests.wire import cohere as cohere_wire
from tests.wire import vertex as vertex_wire
from tests.wire.mistral import MistralApp
from tests.wire.server import App, Delay, LoopbackServer

# The reroute tests' fixtures (their policy written, their servers up, PRIVSDK_USAGE a jsonl file; each asserts when
# the test ends that the refused service received nothing), under names of their own here: pytest knows a fixture by
# the name its module gives it.
cohere_world = cohere_case.rerouted
mistral_world = mistral_case.rerouted
genai_world = genai_case.world

#: A call, sent when called (its client already built: the time a test measures is the request's).
Send = Callable[[], Any]

TEXTS = ["alpha beta", "gamma"]
#: The SDK's timeout (seconds) and how long the alternative waits before it answers: past the timeout, or within it.
SHORT, LATE = 0.5, Delay(3)
LONG, SLOW = 5.0, Delay(0.3)
FLAVOURS = ["sync", "async"]
OPERATIONS = ["chat", "stream", "embed"]
#: Where the app set the timeout: on the SDK's client, or on the call.
WHERE = ["client", "call"]


def run(flavour: str, sync: Send, asynchronous: Callable[[], Awaitable[Any]]) -> Send:
    """The sync call, or the async one in an event loop of its own."""

    async def main() -> Any:
        return await asynchronous()

    return sync if flavour == "sync" else lambda: asyncio.run(main())


class Sdk:
    """One drop-in: how the app calls it with a timeout, which server answers its rerouted requests, and what the SDK
    raises when its own read timeout passes."""

    name: str
    #: The name of the reroute test's fixture here: its world of servers.
    fixture: str
    #: What the SDK raises when its read timeout passes (test_each_sdk_raises_this_on_its_own_read_timeout).
    read_timeout: type[Exception]

    def call(self, world: Any, flavour: str, operation: str, seconds: float, where: str) -> Send:
        """``operation`` with a sync or async drop-in client whose timeout (set ``where``) is ``seconds``, without
        the SDK's retries."""
        raise NotImplementedError

    def refused(self, world: Any) -> LoopbackServer:
        raise NotImplementedError

    def alternative(self, world: Any, operation: str) -> LoopbackServer:
        raise NotImplementedError

    def target(self, operation: str) -> str:
        """The policy's name for the alternative that serves ``operation``."""
        raise NotImplementedError

    def check(self, world: Any, operation: str, answer: Any) -> None:
        """``answer`` is the SDK's own type, with the alternative's text or vectors."""
        raise NotImplementedError

    def own(self, url: str, seconds: float) -> Send:
        """A chat with the vendor's own SDK (no guard) sent to ``url``, with a timeout of ``seconds``."""
        raise NotImplementedError

    def app(self) -> App:
        """A loopback app speaking the vendor's wire protocol."""
        raise NotImplementedError


class Cohere(Sdk):
    # cohere's HttpClient retries only connection and protocol errors (with max_retries): httpx's timeout goes through
    name, fixture, read_timeout = "cohere", "cohere_world", httpx.ReadTimeout

    def call(self, world: cohere_case.Rerouted, flavour: str, operation: str, seconds: float, where: str) -> Send:
        client: dict[str, Any] = {"api_key": cohere_case.KEY, "base_url": world.saas.url, "max_retries": 0}
        if where == "client":
            client["timeout"] = seconds
        options = {"request_options": {"timeout_in_seconds": seconds, "max_retries": 0}} if where == "call" else {}
        chat: dict[str, Any] = {"model": cohere_case.MODEL, "messages": cohere_case.MSG, **options}
        embed: dict[str, Any] = {"model": "embed-v4.0", "texts": TEXTS, "input_type": "search_query", **options}
        sync, aclient = privsdk.cohere.ClientV2(**client), privsdk.cohere.AsyncClientV2(**client)

        async def astream() -> list[Any]:
            return [event async for event in aclient.chat_stream(**chat)]

        sends: dict[str, tuple[Send, Callable[[], Awaitable[Any]]]] = {
            "chat": (lambda: sync.chat(**chat), lambda: aclient.chat(**chat)),
            "stream": (lambda: list(sync.chat_stream(**chat)), astream),
            "embed": (lambda: sync.embed(**embed), lambda: aclient.embed(**embed)),
        }
        return run(flavour, *sends[operation])

    def refused(self, world: cohere_case.Rerouted) -> LoopbackServer:
        return world.saas

    def alternative(self, world: cohere_case.Rerouted, operation: str) -> LoopbackServer:
        return world.private

    def target(self, operation: str) -> str:
        return "cohere-private"

    def check(self, world: cohere_case.Rerouted, operation: str, answer: Any) -> None:
        if operation == "chat":
            assert isinstance(answer, cohere.V2ChatResponse)
            content: Any = answer.message.content  # a list of text or thinking items: this one's are text
            assert [item.text for item in content] == [world.app.text]
        elif operation == "stream":
            assert answer[-1].type == "message-end" and answer[-1].delta.finish_reason == "COMPLETE"
            deltas = [e.delta.message.content.text for e in answer if e.type == "content-delta"]
            assert "".join(deltas) == world.app.text
        else:
            assert isinstance(answer, cohere.EmbedByTypeResponse)
            assert answer.embeddings.float_ == [cohere_wire.vector(t, i, 4) for i, t in enumerate(TEXTS)]

    def own(self, url: str, seconds: float) -> Send:
        client = cohere.ClientV2(api_key=cohere_case.KEY, base_url=url, timeout=seconds, max_retries=0)
        return lambda: client.chat(model=cohere_case.MODEL, messages=cohere_case.MSG)

    def app(self) -> App:
        return cohere_wire.CohereApp()


class Mistral(Sdk):
    # mistralai sends through httpx2 and lets its errors through; it retries only with a retry config, none here
    name, fixture, read_timeout = "mistralai", "mistral_world", httpx2.ReadTimeout

    def call(self, world: mistral_case.Rerouted, flavour: str, operation: str, seconds: float, where: str) -> Send:
        ms = int(seconds * 1000)
        client = privsdk.mistralai.Mistral(
            api_key=mistral_case.KEY,
            server_url=world.api.url,
            retry_config=None,
            timeout_ms=ms if where == "client" else None,
        )
        options: dict[str, Any] = {"retries": None, "timeout_ms": ms if where == "call" else None}
        chat: dict[str, Any] = {"model": mistral_case.MODEL, "messages": mistral_case.MSG, **options}
        embed: dict[str, Any] = {"model": "mistral-embed", "inputs": TEXTS, **options}

        async def astream() -> list[Any]:
            return [event async for event in await client.chat.stream_async(**chat)]

        sends: dict[str, tuple[Send, Callable[[], Awaitable[Any]]]] = {
            "chat": (lambda: client.chat.complete(**chat), lambda: client.chat.complete_async(**chat)),
            "stream": (lambda: list(client.chat.stream(**chat)), astream),
            "embed": (lambda: client.embeddings.create(**embed), lambda: client.embeddings.create_async(**embed)),
        }
        return run(flavour, *sends[operation])

    def refused(self, world: mistral_case.Rerouted) -> LoopbackServer:
        return world.api

    def alternative(self, world: mistral_case.Rerouted, operation: str) -> LoopbackServer:
        return world.private if operation == "embed" else world.azure

    def target(self, operation: str) -> str:
        return "cohere-private" if operation == "embed" else "mistral-azure"

    def check(self, world: mistral_case.Rerouted, operation: str, answer: Any) -> None:
        if operation == "chat":
            assert isinstance(answer, mistralai.client.models.ChatCompletionResponse)
            message: Any = answer.choices[0].message  # None when the model said nothing
            assert message.content == world.app.text
        elif operation == "stream":
            assert answer[-1].data.choices[0].finish_reason == "stop"
            deltas = [e.data.choices[0].delta.content or "" for e in answer if e.data.choices]
            assert "".join(deltas) == world.app.text
        else:
            assert isinstance(answer, mistralai.client.models.EmbeddingResponse)
            assert [d.embedding for d in answer.data] == [cohere_wire.vector(t, i, 4) for i, t in enumerate(TEXTS)]

    def own(self, url: str, seconds: float) -> Send:
        client = mistralai.client.Mistral(api_key=mistral_case.KEY, server_url=url, timeout_ms=int(seconds * 1000))
        return lambda: client.chat.complete(model=mistral_case.MODEL, messages=mistral_case.MSG)

    def app(self) -> App:
        return MistralApp()


class GoogleGenai(Sdk):
    # google-genai sends through httpx2 by default and lets its errors through; it retries only with retry_options.
    # Its async calls would go through aiohttp where installed, but the drop-in switches that path off: httpx2 too.
    name, fixture, read_timeout = "google-genai", "genai_world", httpx2.ReadTimeout

    def call(self, world: genai_case.World, flavour: str, operation: str, seconds: float, where: str) -> Send:
        ms = int(seconds * 1000)
        options = types.HttpOptions(base_url=world.refused.url, timeout=ms if where == "client" else None)
        client = genai.Client(api_key=vertex_wire.API_KEY, http_options=options)
        per_call = types.HttpOptions(timeout=ms) if where == "call" else None
        generation = types.GenerateContentConfig(http_options=per_call)
        chat: dict[str, Any] = {"model": genai_case.MODEL, "contents": "Say hello", "config": generation}
        vectors = types.EmbedContentConfig(http_options=per_call)
        embed: dict[str, Any] = {"model": genai_case.EMBEDDER, "contents": TEXTS, "config": vectors}

        async def astream() -> list[Any]:
            return [chunk async for chunk in await client.aio.models.generate_content_stream(**chat)]

        # each call holds the client: google-genai closes its connections when the client is collected
        sends: dict[str, tuple[Send, Callable[[], Awaitable[Any]]]] = {
            "chat": (
                lambda: client.models.generate_content(**chat),
                lambda: client.aio.models.generate_content(**chat),
            ),
            "stream": (lambda: list(client.models.generate_content_stream(**chat)), astream),
            "embed": (lambda: client.models.embed_content(**embed), lambda: client.aio.models.embed_content(**embed)),
        }
        return run(flavour, *sends[operation])

    def refused(self, world: genai_case.World) -> LoopbackServer:
        return world.refused

    def alternative(self, world: genai_case.World, operation: str) -> LoopbackServer:
        return world.eu

    def target(self, operation: str) -> str:
        return "embed-eu" if operation == "embed" else "gemini-eu"

    def check(self, world: genai_case.World, operation: str, answer: Any) -> None:
        if operation == "chat":
            assert isinstance(answer, types.GenerateContentResponse) and answer.text == genai_case.EU_TEXT
        elif operation == "stream":
            assert all(isinstance(chunk, types.GenerateContentResponse) for chunk in answer)
            assert "".join(chunk.text or "" for chunk in answer) == genai_case.EU_TEXT
        else:
            assert isinstance(answer, types.EmbedContentResponse) and answer.embeddings is not None
            assert [e.values for e in answer.embeddings] == [vertex_wire.vector(t, 4) for t in TEXTS]

    def own(self, url: str, seconds: float) -> Send:
        options = types.HttpOptions(base_url=url, timeout=int(seconds * 1000))
        client = google_genai.Client(api_key=vertex_wire.API_KEY, http_options=options)
        return lambda: client.models.generate_content(model=genai_case.MODEL, contents="Say hello")

    def app(self) -> App:
        return vertex_wire.GeminiApp()


SDKS = [Cohere(), Mistral(), GoogleGenai()]
IDS = [sdk.name for sdk in SDKS]


def records(usage: Path) -> list[UsageRecord]:
    """The records in the store, once the guard's writer (the reroute client's too) has written them."""
    Guard.default().flush(5)
    return list(jsonl.read(str(usage)))


@pytest.mark.parametrize("sdk", SDKS, ids=IDS)
def test_each_sdk_raises_this_on_its_own_read_timeout(sdk: Sdk, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a rerouted request must raise below is what the vendor's own SDK raises when the server it sends to
    does not answer within its timeout."""
    monkeypatch.delenv("GOOGLE_GENAI_HTTP_CLIENT", raising=False)  # google-genai's default transport
    with LoopbackServer(sdk.app()) as slow:
        slow.fail(LATE)
        send = sdk.own(slow.url, SHORT)
        started = time.monotonic()
        with pytest.raises(sdk.read_timeout) as raised:
            send()
        assert time.monotonic() - started < 2.5
        assert len(slow.requests) == 1
    assert type(raised.value) is sdk.read_timeout


@pytest.mark.parametrize("sdk", SDKS, ids=IDS)
@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("where", WHERE)
def test_a_rerouted_request_times_out_when_the_sdks_timeout_says(
    request: pytest.FixtureRequest, sdk: Sdk, flavour: str, operation: str, where: str
) -> None:
    """The reroute gave the alternative privsdk's own 60 s and answered after 3 s, where the same request sent where
    the SDK sent it raised the SDK's ReadTimeout after 0.5 s."""
    world = request.getfixturevalue(sdk.fixture)
    alternative = sdk.alternative(world, operation)
    alternative.fail(LATE)
    send = sdk.call(world, flavour, operation, SHORT, where)
    started = time.monotonic()
    with pytest.raises(sdk.read_timeout) as raised:
        send()
    assert time.monotonic() - started < 2.5
    assert type(raised.value) is sdk.read_timeout  # the SDK's own, not a subclass privsdk made
    assert len(alternative.requests) == 1  # once: the SDK's retries are off, and privsdk's Client tried it once
    assert sdk.refused(world).requests == []
    [record] = records(world.usage)
    assert (record.decision, record.chosen_target, record.operation, record.outcome, record.error_class) == (
        "reroute",
        sdk.target(operation),
        operation,
        "error",
        "timeout",
    )
    assert record.latency_ms < 2500


@pytest.mark.parametrize("sdk", SDKS, ids=IDS)
@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_slow_alternative_within_the_sdks_timeout_answers(
    request: pytest.FixtureRequest, sdk: Sdk, flavour: str, operation: str
) -> None:
    """The alternative answers after 0.3 s, within the SDK's 5 s: the SDK's own answer, and a reroute that served."""
    world = request.getfixturevalue(sdk.fixture)
    alternative = sdk.alternative(world, operation)
    alternative.fail(SLOW)
    answer = sdk.call(world, flavour, operation, LONG, "client")()
    sdk.check(world, operation, answer)
    assert len(alternative.requests) == 1 and sdk.refused(world).requests == []
    [record] = records(world.usage)
    assert (record.decision, record.chosen_target, record.operation, record.outcome) == (
        "reroute",
        sdk.target(operation),
        operation,
        "ok",
    )
    assert record.latency_ms >= SLOW.seconds * 1000  # it waited for the slow answer
