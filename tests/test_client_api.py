"""privsdk.Client as an SDK: what it refuses at its boundary, how its fallback walks, what a closed client does.

Real SDKs over real HTTP against the loopback stand-ins (tests.test_client_errors.Vendors): every refusal here must
happen before a request reaches any of them.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from privsdk.async_client import AsyncClient
from privsdk.client import Client
from privsdk.config import load_policy
from privsdk.errors import (
    BadRequest,
    ClientClosed,
    InvalidArgument,
    InvalidInput,
    PrivsdkError,
    Unavailable,
    Unsupported,
)
from privsdk.resilience import Limits
from privsdk.streams import AsyncChatStream, ChatStream
from privsdk.types import ChatResponse
from tests.conftest import EXAMPLE_CONFIG, REPO
from tests.test_client_errors import Vendors, raised
from tests.wire.bedrock import error as bedrock_error
from tests.wire.server import Delay, Status

pytestmark = pytest.mark.usefixtures("no_machine_aws")

#: Tenant "app" falls back from OpenAI to Bedrock (no seed, no input_type) then Mistral, and from Cohere to OpenAI
#: (no input_type) then Gemini; tenant "solo" has only the alternative that cannot carry the field.
TENANTS = """
[tenants.app]
classes.default = []
reroute.oa = ["br", "mi"]
reroute.co = ["oa", "ge"]

[tenants.solo]
classes.default = []
reroute.oa = ["br"]
"""


@pytest.fixture
def vendors(tmp_path: Path) -> Iterator[Vendors]:
    with Vendors(tmp_path) as found:
        text = found.config.read_text(encoding="utf-8")
        found.config.write_text('default_tenant = "app"\n' + text + TENANTS, encoding="utf-8")
        yield found


def nothing_sent(vendors: Vendors) -> bool:
    return all(vendors.sent(name) == 0 for name in vendors.servers)


# -- a closed client -----------------------------------------------------------------------------------------------

SYNC_CALLS: dict[str, Callable[[Client], object]] = {
    "chat": lambda c: c.chat("oa", "after close", tenant="app"),
    "stream": lambda c: c.chat("oa", "after close", stream=True, tenant="app"),
    "embed": lambda c: c.embed("oa", ["after close"], tenant="app"),
    "rerank": lambda c: c.rerank("co", "q", ["after close"], tenant="app"),
    "refused": lambda c: c.chat("openai/gpt-4o-mini", "after close", tenant="nobody"),
}


@pytest.mark.parametrize("call", SYNC_CALLS)
def test_a_closed_client_refuses_every_call_before_anything_is_sent(vendors: Vendors, call: str) -> None:
    client = vendors.client()
    stream = client.chat("oa", "opened before close", stream=True, tenant="app")
    before = vendors.sent("openai")
    client.close()
    exc = raised(lambda: SYNC_CALLS[call](client))
    assert isinstance(exc, ClientClosed) and isinstance(exc, PrivsdkError)
    assert "closed" in str(exc)
    assert vendors.sent("openai") == before and vendors.sent("cohere") == 0
    # The stream opened before close left its record (the recorder ends it); the refused call left none to drop.
    assert [(r.outcome, r.chosen_target) for r in vendors.records] == [("cancelled", "oa")]
    assert client._core.recorder.dropped == 0
    stream.close()


def test_an_async_client_closed_refuses_calls(vendors: Vendors) -> None:
    async def main() -> list[BaseException]:
        client = vendors.aclient()
        await client.chat("oa", "first", tenant="app")
        await client.aclose()
        found = []
        for call in (
            client.chat("oa", "after", tenant="app"),
            client.chat("oa", "after", stream=True, tenant="app"),
            client.embed("oa", ["after"], tenant="app"),
            client.rerank("co", "q", ["after"], tenant="app"),
        ):
            try:
                await call
            except BaseException as exc:
                found.append(exc)
        return found

    errors = asyncio.run(main())
    assert len(errors) == 4 and all(isinstance(e, ClientClosed) for e in errors)
    assert vendors.sent("openai") == 1 and vendors.sent("cohere") == 0
    assert [r.outcome for r in vendors.records] == ["ok"]


def test_close_lets_calls_in_flight_end_with_their_answers_and_records(vendors: Vendors) -> None:
    """A call in flight in another thread when the client is closed ends as it would have (closing its SDK client
    under it failed it, and lost its record); a call after close is ClientClosed."""
    client = vendors.client()
    vendors.servers["openai"].fail(Delay(0.4))
    answers: list[object] = []
    worker = threading.Thread(target=lambda: answers.append(client.chat("oa", "in flight", tenant="app").text))
    worker.start()
    while vendors.sent("openai") == 0:  # the request has reached the server, whose answer is 0.4 s away
        time.sleep(0.01)
    client.close()
    worker.join()
    assert answers == ["Hello from the loopback server"]
    assert [(r.outcome, r.input_tokens) for r in vendors.records] == [("ok", 11)]
    assert client._core.recorder.dropped == 0
    assert isinstance(raised(lambda: client.chat("oa", "after close", tenant="app")), ClientClosed)


def test_aclose_lets_calls_in_flight_on_its_loop_end(vendors: Vendors) -> None:
    async def main() -> list[object]:
        client = vendors.aclient()
        vendors.servers["openai"].fail(Delay(0.3))
        flight = asyncio.ensure_future(client.chat("oa", "in flight", tenant="app"))
        while vendors.sent("openai") == 0:
            await asyncio.sleep(0.01)
        await client.aclose()
        return [(await flight).text, flight.done()]

    assert asyncio.run(main()) == ["Hello from the loopback server", True]
    assert [r.outcome for r in vendors.records] == ["ok"]


_SIGNAL_CLOSE = """
import signal, sys
import privsdk
from tests.wire.openai import OpenAIWire
from tests.wire.server import Delay, LoopbackServer
with LoopbackServer(OpenAIWire(key="sk-x")) as server:
    client = privsdk.Client(
        environ={}, usage="none", credentials={"openai": {"api_key": "sk-x"}}, endpoints={"openai": server.url + "/v1"}
    )
    if sys.argv[1] == "in flight":
        client.chat("openai/gpt-4o-mini", "warm up")  # the adapter is built: the alarm comes amid the HTTP call
    server.fail(Delay(1.0))
    closed = []
    signal.signal(signal.SIGALRM, lambda *_: (client.close(), closed.append(True)))
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        client.chat("openai/gpt-4o-mini", "hi", max_attempts=1)
    except Exception as exc:
        print("call raised", type(exc).__name__)
    print("closed", closed)
"""


@pytest.mark.parametrize("when", ["building", "in flight"])
def test_close_from_a_signal_handler_amid_a_call_of_its_own_thread_returns(when: str) -> None:
    """An app's SIGTERM handler that closes the client runs in the thread of the call it interrupts: close() must not
    wait for that call (nor for a lock it holds, while its adapter is built), which could never end first."""
    done = subprocess.run(
        [sys.executable, "-c", _SIGNAL_CLOSE, when], capture_output=True, text=True, timeout=60, cwd=REPO, check=True
    )
    assert "closed [True]" in done.stdout
    if when == "in flight":  # its connection closed under it: a privsdk error, not an unexpected one
        assert "call raised ConnectionLost" in done.stdout


# -- fallback past an alternative that cannot carry the call ---------------------------------------------------------


def test_fallback_skips_an_alternative_that_cannot_take_a_field_and_tries_the_next(vendors: Vendors) -> None:
    vendors.servers["openai"].fail(Status(503))
    client = vendors.client()
    answer = client.chat("oa", "hello", tenant="app", seed=7)
    assert answer.decision is not None and vendors.sent("mistral") == 1 and vendors.sent("bedrock") == 0
    # The skipped alternative is in the records: tried, unsupported, nothing sent.
    client.flush_usage(5)
    assert [(r.chosen_target, r.outcome, r.error_class) for r in vendors.records] == [
        ("oa", "error", "unavailable"),
        ("br", "error", "unsupported"),
        ("mi", "ok", None),
    ]


def test_a_stream_falls_back_past_an_alternative_that_cannot_take_a_field(vendors: Vendors) -> None:
    vendors.servers["openai"].fail(Status(503))
    with vendors.client() as client:
        stream = client.chat("oa", "hello", stream=True, tenant="app", seed=7)
        assert stream.text() and vendors.sent("mistral") == 1


def test_an_async_embedding_falls_back_past_an_alternative_without_input_type(vendors: Vendors) -> None:
    vendors.servers["cohere"].fail(Status(503))

    async def main() -> int:
        async with vendors.aclient() as client:
            answer = await client.embed("co", ["a"], input_type="search_query", tenant="app")
            return len(answer.vectors)

    assert asyncio.run(main()) == 1
    assert vendors.sent("openai") == 0 and vendors.sent("gemini") == 1


def test_a_call_that_fell_back_to_its_end_names_every_target_it_tried(vendors: Vendors) -> None:
    """A plain-pip user's call rerouted through three targets ended in the last one's error alone ("mistral was
    unavailable"): it named neither that target nor the two failures before it. Notes now say each, in order."""
    for name in ("openai", "bedrock", "mistral"):
        vendors.servers[name].fail(Status(503))
    exc = raised(lambda: vendors.client().chat("oa", "hello", tenant="app"))
    assert isinstance(exc, Unavailable) and exc.vendor == "mistral"
    assert exc.__notes__ == [
        "privsdk tried oa: openai was unavailable (HTTP 503); the call moved on",
        "privsdk tried br: bedrock was unavailable (HTTP 503); the call moved on",
        "privsdk tried mi: mistral was unavailable (HTTP 503)",
    ]
    assert [vendors.sent(name) for name in ("openai", "bedrock", "mistral")] == [1, 1, 1]
    # A last target that fails for good (a 400, never retried nor moved past) ends the call with its error: the
    # notes still say where the call went before it.
    vendors.servers["openai"].fail(Status(503))
    vendors.servers["bedrock"].fail(bedrock_error(400, "ValidationException", "bad input: hello"))
    final = raised(lambda: vendors.client().chat("oa", "hello", tenant="app"))
    assert isinstance(final, BadRequest) and final.vendor == "bedrock"
    assert final.__notes__ == [
        "privsdk tried oa: openai was unavailable (HTTP 503); the call moved on",
        "privsdk tried br: bedrock rejected the request (HTTP 400, ValidationException)",
    ]
    assert "hello" not in " ".join(final.__notes__)
    vendors.servers["cohere"].fail(Status(503))
    alone = raised(lambda: vendors.client().chat("co", "hello", tenant="solo"))  # solo does not reroute co
    assert isinstance(alone, Unavailable) and alone.vendor == "cohere"
    assert not getattr(alone, "__notes__", None)  # one target tried: its error says all there is


def test_when_no_alternative_can_carry_the_call_the_last_real_failure_is_raised(vendors: Vendors) -> None:
    vendors.servers["openai"].fail(Status(503))
    client = vendors.client()
    exc = raised(lambda: client.chat("oa", "hello", tenant="solo", seed=7))
    assert isinstance(exc, Unavailable) and exc.vendor == "openai"
    assert any("fallback br," in note and "seed" in note for note in getattr(exc, "__notes__", []))
    assert vendors.sent("bedrock") == 0


# -- arguments checked at the boundary -------------------------------------------------------------------------------


def test_a_str_for_rerank_documents_is_refused(vendors: Vendors) -> None:
    client = vendors.client()
    exc = raised(lambda: client.rerank("co", "capital of France", "Paris is the capital of France"))
    assert type(exc) is InvalidInput and str(exc).startswith("documents must be a list of str")
    assert "Paris" not in str(exc) and nothing_sent(vendors)


CHAT_ONLY: dict[str, Any] = {
    "temperature": 0.5,
    "top_p": 0.5,
    "max_tokens": 5,
    "seed": 1,
    "stop": ["x"],
    "tools": [{"type": "function", "function": {"name": "f"}}],
    "tool_choice": "auto",
    "response_format": {"type": "json_object"},
}


@pytest.mark.parametrize("option", CHAT_ONLY)
@pytest.mark.parametrize("kind", ["embed", "rerank"])
def test_a_chat_option_given_to_embed_or_rerank_is_refused(vendors: Vendors, option: str, kind: str) -> None:
    client = vendors.client()
    given = {option: CHAT_ONLY[option]}
    if kind == "embed":
        exc = raised(lambda: client.embed("oa", ["x"], **given))
    else:
        exc = raised(lambda: client.rerank("co", "q", ["a", "b"], **given))
    assert type(exc) is InvalidArgument and str(exc).startswith(f"{option} is a chat option")
    assert kind in str(exc) and nothing_sent(vendors)


BAD_ARGUMENTS: dict[str, tuple[Callable[[Client], object], str]] = {
    "dimensions str": (lambda c: c.embed("oa", ["x"], dimensions="256"), "dimensions must be a whole number"),  # type: ignore[arg-type]
    "dimensions 0": (lambda c: c.embed("oa", ["x"], dimensions=0), "dimensions must be a whole number, 1 or more"),
    "top_n str": (lambda c: c.rerank("co", "q", ["a"], top_n="1"), "top_n must be a whole number"),  # type: ignore[arg-type]
    "top_n 0": (lambda c: c.rerank("co", "q", ["a"], top_n=0), "top_n must be a whole number, 1 or more (got 0)"),
    "top_n True": (lambda c: c.rerank("co", "q", ["a"], top_n=True), "top_n must be a whole number"),
    "temperature nan": (lambda c: c.chat("oa", "x", temperature=math.nan), "temperature must be a finite number"),
    "top_p inf": (lambda c: c.chat("oa", "x", top_p=math.inf), "top_p must be a finite number"),
    "input_type typo": (
        lambda c: c.embed("ge", ["x"], input_type="query"),  # type: ignore[arg-type]
        "input_type must be one of search_document, search_query, classification, clustering",
    ),
    "input_type on cohere": (
        lambda c: c.embed("co", ["x"], input_type="query"),  # type: ignore[arg-type]
        "input_type must be one of",
    ),
}


@pytest.mark.parametrize("case", BAD_ARGUMENTS)
def test_a_bad_embed_rerank_or_sampling_argument_is_refused_naming_it(vendors: Vendors, case: str) -> None:
    call, message = BAD_ARGUMENTS[case]
    exc = raised(lambda: call(vendors.client()))
    assert type(exc) is InvalidArgument and str(exc).startswith(message), str(exc)
    assert "query'" not in str(exc) and nothing_sent(vendors)


def test_valid_embed_and_rerank_arguments_still_go_through(vendors: Vendors) -> None:
    client = vendors.client()
    assert client.embed("co", ["x"], input_type="search_query", dimensions=None).vectors
    assert client.rerank("co", "q", ["a", "b"], top_n=1, tenant="app").results
    assert client.chat("oa", "x", temperature=0, top_p=1.0).text


# -- type hints as the documentation uses the API (checked by the project's mypy run, which covers tests) -----------


def ask(client: Client, prompt: str, stream: bool) -> ChatResponse | ChatStream:
    return client.chat("oa", prompt, stream=stream)


async def aask(client: AsyncClient, prompt: str, stream: bool) -> ChatResponse | AsyncChatStream:
    return await client.chat("oa", prompt, stream=stream)


def named(client: Client) -> ChatResponse:
    return client.chat(
        "oa",
        "x",
        tools=[{"type": "function", "function": {"name": "f"}}],
        tool_choice={"type": "function", "function": {"name": "f"}},
    )


def test_documented_calls_type_check_and_run(vendors: Vendors) -> None:
    client = vendors.client(limits=Limits(max_attempts=1))
    assert isinstance(ask(client, "x", False), ChatResponse)
    assert isinstance(ask(client, "x", True), ChatStream)
    assert named(client).finish_reason

    async def main() -> None:
        async with vendors.aclient() as ac:
            assert isinstance(await aask(ac, "x", True), AsyncChatStream)

    asyncio.run(main())


def test_a_rerouted_call_no_alternative_can_carry_is_said_of_the_target_the_app_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example policy reroutes mistral-large to bedrock-eu-claude: rerank on mistral-large raised Unsupported
    naming bedrock-eu-claude, a target the app never named, with no note of it."""
    monkeypatch.setenv("MISTRAL_API_KEY", "k")
    policy = load_policy({"PRIVSDK_CONFIG": str(EXAMPLE_CONFIG)})
    with Client(policy=policy, usage="none") as client, pytest.raises(Unsupported) as raised:
        client.rerank("mistral-large", "which is about refunds?", ["a", "b"], tenant="acme")
    assert str(raised.value).startswith("mistral-large: rerank was rerouted")
    assert raised.value.__notes__ == [
        "privsdk passed over the fallback bedrock-eu-claude, which cannot carry the call: bedrock-eu-claude "
        "(bedrock.runtime) cannot rerank; it can: chat, stream"
    ]
