"""The async drop-ins under trio, which httpx serves through anyio: they behave there as their SDKs do.

openai's ``AsyncOpenAI`` and cohere's ``AsyncClientV2`` run under trio, so their drop-ins must too, with the
policy on top: an allowed request is sent and recorded, a refused one sends nothing and is recorded, and a stream
made inside a ``privsdk.scope`` is judged for the scope's tenant wherever it is read. cohere's async
``chat_stream`` raised ``RuntimeError: no running event loop`` under trio (privsdk read it through asyncio
tasks), and a rerouted request came back as a 500 of the alternative's, which openai retried: privsdk's
AsyncClient, which serves reroutes, runs under asyncio only. Such a reroute is now refused as what it is, before
anything is sent. (mistralai's and google-genai's async clients are asyncio-only as SDKs: neither sends a request
under trio, drop-in or not, so their async streams are proven under asyncio, in test_dropin_sdk_threads.py.)

Real SDKs over real HTTP, against the loopback servers of ``tests/wire``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import cohere as vendor_cohere
import pytest
import trio

import privsdk
from privsdk import cohere, openai
from privsdk.context import current, lazy_in_callers_context
from privsdk.outbound.judge import Guard
from tests.wire.cohere import CohereApp
from tests.wire.openai import OpenAIWire
from tests.wire.server import Drip, LoopbackServer

#: "strict" requires ZDR, which neither OpenAI's API nor Cohere's SaaS offers without an attestation; "lax"
#: requires nothing; the rerouting tenant requires what the declared service lacks, and names an alternative.
OPENAI_POLICY = """
default_tenant = "lax"
[endpoints]
"{served}" = "openai.api"
[targets.azure-eu]
offering = "azure.openai"
model = "gpt-4o"
endpoint = "{alternative}"
deployment = "gpt-4o-eu"
api_version = "2024-10-21"
attest = ["deployment=data_zone_eu"]
[tenants.lax]
classes.default = []
[tenants.strict]
classes.default = ["zdr"]
[tenants.clinic]
on_violation = "reroute"
classes.default = ["region=eu"]
reroute."openai/*" = ["azure-eu"]
"""
COHERE_POLICY = """
default_tenant = "lax"
[endpoints]
"{served}" = "cohere.saas"
[targets.cohere-private]
offering = "cohere.private"
model = "command-r-plus"
endpoint = "{alternative}"
[tenants.lax]
classes.default = []
[tenants.strict]
classes.default = ["zdr"]
[tenants.hospital]
on_violation = "reroute"
classes.default = ["no_training"]
reroute."cohere/*" = ["cohere-private"]
"""
KEY, AZURE_KEY = "sk-trio", "azure-trio-key"
OPENAI_MODEL, COHERE_MODEL = "gpt-4o-mini", "command-a-03-2025"
MSG: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
ASYNCIO_ONLY = "privsdk reroutes async requests only under asyncio, and this one runs under trio"
PRIVATE_TEXT = "Bonjour from a private Cohere"
#: The event loops a scenario runs on, in turn: what holds under trio must hold under asyncio as it did.
LOOPS = ("trio", "asyncio")
T = TypeVar("T")


def run_on(loop: str, main: Callable[[], Awaitable[T]]) -> T:
    """``main()``, run to its end in a new event loop of ``loop``."""
    if loop == "trio":
        return trio.run(main)

    async def coroutine() -> T:
        return await main()

    return asyncio.run(coroutine())


async def sleep(loop: str, seconds: float) -> None:
    await (trio.sleep(seconds) if loop == "trio" else asyncio.sleep(seconds))


class World(NamedTuple):
    """The declared service, the rerouting tenant's alternative, and the usage records."""

    served: LoopbackServer
    alternative: LoopbackServer
    usage: Path

    def records(self, *fields: str) -> list[tuple[Any, ...]]:
        """The records written since the last call: (tenant, operation, decision, outcome, error class) each,
        then ``fields``."""
        Guard.default().flush(5)
        found = [json.loads(line) for line in self.usage.read_text().splitlines()] if self.usage.exists() else []
        self.usage.write_text("")
        keys = ("tenant", "operation", "decision", "outcome", "error_class", *fields)
        return [tuple(r[k] for k in keys) for r in found]

    def sent(self) -> list[str]:
        """The requests each server received since the last call, as "served PATH" or "alternative PATH"."""
        paths = [f"served {r.path}" for r in self.served.requests] + [
            f"alternative {r.path}" for r in self.alternative.requests
        ]
        self.served.requests.clear()
        self.alternative.requests.clear()
        return paths


def _world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str, served: Any, alt: Any) -> Iterator[World]:
    """The two servers as a :class:`World`, with ``policy`` (formatted with their URLs) in force."""
    with LoopbackServer(served) as first, LoopbackServer(alt) as second:
        config, usage = tmp_path / "privsdk.toml", tmp_path / "usage.jsonl"
        config.write_text(policy.format(served=first.url, alternative=second.url), encoding="utf-8")
        monkeypatch.setenv("PRIVSDK_CONFIG", str(config))
        monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{usage}")
        Guard.reset_default()
        yield World(first, second, usage)
        assert first.errors == [] and second.errors == []
    Guard.reset_default()


@pytest.fixture
def openai_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    yield from _world(tmp_path, monkeypatch, OPENAI_POLICY, OpenAIWire(key=KEY), OpenAIWire(key=AZURE_KEY))


@pytest.fixture
def cohere_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    private = CohereApp(PRIVATE_TEXT)
    private.anonymous = True  # a private deployment inside the tenant's network, with no key
    yield from _world(tmp_path, monkeypatch, COHERE_POLICY, CohereApp(chunks=20), private)


def _openai(world: World, max_retries: int = 0) -> Any:
    return openai.AsyncOpenAI(api_key=KEY, base_url=f"{world.served.url}/v1", max_retries=max_retries)


def _cohere(world: World) -> Any:
    return cohere.AsyncClientV2(api_key="k", base_url=world.served.url, max_retries=0)


async def _text(stream: AsyncIterator[Any]) -> str:
    """The text of a cohere v2 stream, read to its end."""
    return "".join([e.delta.message.content.text async for e in stream if e.type == "content-delta"])


# -- openai ------------------------------------------------------------------------------------------------------


def test_openai_async_requests_under_trio_are_sent_refused_and_recorded_and_a_reroute_is_refused_as_such(
    openai_world: World,
) -> None:
    """Allowed, a chat and a stream are served and recorded with their tokens; refused, nothing is sent and the
    refusal is recorded. A rerouting tenant's request is refused as a reroute privsdk cannot make under trio,
    before anything is sent, and not retried: it was a 500 of the alternative's, which openai retried. Under
    asyncio the same request is rerouted, as before."""
    world = openai_world

    async def allowed() -> list[str]:
        client = _openai(world)
        answer = await client.chat.completions.create(model=OPENAI_MODEL, messages=MSG)
        stream = await client.chat.completions.create(
            model=OPENAI_MODEL, messages=MSG, stream=True, stream_options={"include_usage": True}
        )
        streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        return [answer.choices[0].message.content or "", streamed]

    def refused(tenant: str, stream: bool) -> Callable[[], Awaitable[Any]]:
        async def ask() -> Any:
            client = _openai(world, max_retries=2)  # a 500 would be retried, and recorded, twice more
            with privsdk.scope(tenant=tenant):
                return await client.chat.completions.create(model=OPENAI_MODEL, messages=MSG, stream=stream)

        return ask

    assert trio.run(allowed) == ["Hello from the loopback server"] * 2
    assert world.sent() == ["served /v1/chat/completions"] * 2
    tokens = ("input_tokens", "output_tokens")
    assert world.records(*tokens) == [
        (t, op, "allow", "ok", None, 11, 7) for t, op in (("lax", "chat"), ("lax", "stream"))
    ]

    with pytest.raises(openai.PolicyViolation, match="unmet: zdr"):
        trio.run(refused("strict", False))
    assert world.sent() == []
    assert world.records() == [("strict", "chat", "refuse", "refused", "policy")]

    for stream in (False, True):
        with pytest.raises(openai.PolicyViolation) as raised:
            trio.run(refused("clinic", stream))
        assert isinstance(raised.value, privsdk.PolicyViolation) and raised.value.decision.outcome == "refuse"
        assert ASYNCIO_ONLY in str(raised.value) and 'on_violation = "refuse"' in str(raised.value)
    assert world.sent() == []  # neither the refused service nor the alternative, and no retry
    assert world.records() == [("clinic", op, "refuse", "refused", "policy") for op in ("chat", "stream")]

    answer = run_on("asyncio", refused("clinic", False))
    assert answer.choices[0].message.content == "Hello from the loopback server"
    assert world.sent() == ["alternative /openai/deployments/gpt-4o-eu/chat/completions"]
    assert world.records() == [("clinic", "chat", "reroute", "ok", None)]


# -- cohere ------------------------------------------------------------------------------------------------------


def test_cohere_async_chat_stream_runs_under_trio_as_the_sdks_own(cohere_world: World) -> None:
    """cohere's own AsyncClientV2 streams under trio (so does its ClientV2, read in a trio task); the drop-in's
    async stream raised ``no running event loop``. Same events, same requests, and the drop-in's are recorded."""
    world = cohere_world
    seen: dict[str, Any] = {}

    def exercise(module: Any) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            client = module.AsyncClientV2(api_key="k", base_url=world.served.url, max_retries=0)
            reply = await client.chat(model=COHERE_MODEL, messages=MSG)
            events = [e.type async for e in client.chat_stream(model=COHERE_MODEL, messages=MSG)]
            sync = module.ClientV2(api_key="k", base_url=world.served.url, max_retries=0)
            return (
                reply.message.content[0].text,
                events,
                [e.type for e in sync.chat_stream(model=COHERE_MODEL, messages=MSG)],
            )

        return run

    seen["cohere"] = trio.run(exercise(vendor_cohere))
    sent = world.sent()
    seen["privsdk.cohere"] = trio.run(exercise(cohere))
    assert seen["privsdk.cohere"] == seen["cohere"] and world.sent() == sent == ["served /v2/chat"] * 3
    assert seen["cohere"][1][-1] == "message-end" and seen["cohere"][1] == seen["cohere"][2]
    assert world.records() == [("lax", "chat", "allow", "ok", None)] + [("lax", "stream", "allow", "ok", None)] * 2


def test_a_cohere_stream_made_in_a_scope_is_judged_for_it_wherever_it_is_read(cohere_world: World) -> None:
    """A stream made inside ``privsdk.scope(tenant="strict")`` and read after the block, by the same task or by
    another started after it (a web handler returning it for its framework to read), is judged for "strict" and
    refused, never for the default "lax"; one made for "lax" and read inside "strict"'s scope is sent for "lax".
    Under trio (which raised before) as under asyncio."""
    for loop in LOOPS:
        _judged_for_the_scope(cohere_world, loop)


def _judged_for_the_scope(world: World, loop: str) -> None:
    refusals: list[privsdk.PolicyViolation] = []

    async def read(stream: Any) -> str:
        try:
            return await _text(stream)
        except privsdk.PolicyViolation as exc:
            refusals.append(exc)
            return "refused"

    def made_in(tenant: str, read_in: str | None = None, by_another_task: bool = False) -> Callable[[], Awaitable[str]]:
        async def main() -> str:
            with privsdk.scope(tenant=tenant):
                stream = _cohere(world).chat_stream(model=COHERE_MODEL, messages=MSG)
            if by_another_task and loop == "trio":
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(read, stream)
                return "read by a task of the nursery"
            if by_another_task:
                return await asyncio.create_task(read(stream))
            with privsdk.scope(tenant=read_in) if read_in else privsdk.scope():
                return await read(stream)

        return main

    run_on(loop, made_in("strict"))
    run_on(loop, made_in("strict", by_another_task=True))
    assert [str(r).count("unmet: zdr") for r in refusals] == [1, 1]
    assert world.sent() == []
    assert world.records() == [("strict", "stream", "refuse", "refused", "policy")] * 2

    assert run_on(loop, made_in("lax", read_in="strict")) == CohereApp().text
    assert world.sent() == ["served /v2/chat"]
    assert world.records() == [("lax", "stream", "allow", "ok", None)]


def test_cancelling_or_closing_a_cohere_stream_under_trio_reaches_the_sdks_stream(cohere_world: World) -> None:
    """A trio cancellation while the stream waits for its next event, and an ``aclose`` after its first, reach
    cohere's generator, which lets its answer go: each stream is recorded as cancelled, for the scope's tenant."""
    world = cohere_world
    world.served.fail(Drip(0.1), Drip(0.1))  # each answer's 20 events a tenth of a second apart
    steps: list[str] = []

    async def cancelled() -> None:
        with privsdk.scope(tenant="lax", tags={"case": "cancelled"}):
            stream = _cohere(world).chat_stream(model=COHERE_MODEL, messages=MSG)
        with trio.move_on_after(0.5) as deadline:
            async for event in stream:
                steps.append(event.type)
        assert deadline.cancelled_caught

    async def closed() -> None:
        with privsdk.scope(tenant="lax", tags={"case": "closed"}):
            stream = _cohere(world).chat_stream(model=COHERE_MODEL, messages=MSG)
        async for event in stream:
            steps.append(event.type)
            break
        await stream.aclose()

    trio.run(cancelled)
    assert 1 < len(steps) < 20
    trio.run(closed)
    assert steps[-1] == "message-start"
    assert world.sent() == ["served /v2/chat"] * 2
    assert world.records("tags") == [
        ("lax", "stream", "allow", "cancelled", None, {"case": "cancelled"}),
        ("lax", "stream", "allow", "cancelled", None, {"case": "closed"}),
    ]


def test_a_cohere_reroute_under_trio_is_refused_as_such_before_anything_is_sent(cohere_world: World) -> None:
    """The rerouting tenant's chat and stream under trio: a PolicyViolation that says why, recorded as the refusal
    it is (it was a 500 of the alternative's, recorded as its error); under asyncio, served from the alternative."""
    world = cohere_world

    async def ask() -> str:
        client = _cohere(world)
        with privsdk.scope(tenant="hospital"):
            reply = await client.chat(model=COHERE_MODEL, messages=MSG)
            return str(reply.message.content[0].text) + await _text(
                client.chat_stream(model=COHERE_MODEL, messages=MSG)
            )

    async def stream_only() -> str:
        with privsdk.scope(tenant="hospital"):
            stream = _cohere(world).chat_stream(model=COHERE_MODEL, messages=MSG)
        return await _text(stream)

    for main in (ask, stream_only):
        with pytest.raises(cohere.PolicyViolation) as raised:
            trio.run(main)
        assert isinstance(raised.value, privsdk.PolicyViolation) and ASYNCIO_ONLY in str(raised.value)
    assert world.sent() == []
    assert world.records() == [("hospital", op, "refuse", "refused", "policy") for op in ("chat", "stream")]

    assert run_on("asyncio", ask) == PRIVATE_TEXT * 2
    assert world.sent() == ["alternative /v2/chat"] * 2
    assert world.records() == [("hospital", op, "reroute", "ok", None) for op in ("chat", "stream")]


# -- the wrapper every SDK's lazy async stream goes through -----------------------------------------------------


def test_an_async_stream_read_in_the_callers_context_steps_there_and_is_closed_and_cancelled_there() -> None:
    """What ``privsdk.context`` does for cohere's, mistralai's and google-genai's lazy async streams, on both loops:
    each step (and the close) runs in the context of the call that made the stream, however it is read; a
    cancellation reaches the stream where it waits; ``aclose`` runs its cleanup; the reader's context is its own
    throughout. (trio raised ``no running event loop``.)"""
    for loop in LOOPS:
        _stepped_in_the_callers_context(loop)


def _stepped_in_the_callers_context(loop: str) -> None:
    seen: list[tuple[str, str | None]] = []

    async def ticks(count: int, then_wait: bool = False) -> AsyncGenerator[int, None]:
        try:
            for i in range(count):
                seen.append(("step", current().tenant))
                await sleep(loop, 0.001)
                yield i
            if then_wait:
                await sleep(loop, 30)  # to be cancelled
        except BaseException as exc:
            seen.append((type(exc).__name__, current().tenant))
            raise
        finally:
            seen.append(("closed", current().tenant))

    lazy = lazy_in_callers_context(ticks)

    async def main() -> None:
        with privsdk.scope(tenant="maker"):
            whole, closed, cancelled = lazy(2), lazy(3), lazy(1, then_wait=True)
        with privsdk.scope(tenant="reader"):
            assert [i async for i in whole] == [0, 1]
            async for _ in closed:
                break
            await closed.aclose()
            if loop == "trio":
                with trio.move_on_after(0.2) as deadline:
                    async for _ in cancelled:
                        pass
                assert deadline.cancelled_caught
            else:
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.2):
                        async for _ in cancelled:
                            pass
            assert current().tenant == "reader"

    run_on(loop, main)
    assert seen == [
        ("step", "maker"),
        ("step", "maker"),
        ("closed", "maker"),
        ("step", "maker"),
        ("GeneratorExit", "maker"),
        ("closed", "maker"),
        ("step", "maker"),
        ("Cancelled" if loop == "trio" else "CancelledError", "maker"),
        ("closed", "maker"),
    ]
