"""The Client's bounds hold on the wall clock, through the real SDKs over loopback HTTP; close() lets calls in flight
fall back; the constructor refuses Limits the retries cannot run with.

httpx's timeouts bound each socket operation, not an answer: a 200 whose body trickles in (each piece on time for a
read timeout), or a stream whose first event trickles in, held a call far past ``timeout`` and ``deadline_s``. Now an
attempt whose answer has not fully come (a stream: whose first event has not come) by the attempt's bound ends with
VendorTimeout, retried as a timeout is and recorded as one; an open stream's reads end at the call's deadline. The
trickle is the server's ``Drip`` fault over an answer cut into small chunks (:class:`Trickle`). Every bound asserted
here has generous slack: these tests are about seconds, never milliseconds.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import privsdk
from privsdk.async_client import AsyncClient
from privsdk.client import Client
from privsdk.errors import ClientClosed, ConfigError, VendorTimeout
from privsdk.resilience import Limits
from privsdk.types import StreamEvent
from privsdk.usage import UsageRecord
from tests.guard_support import reset_default_guard
from tests.wire.bedrock import BedrockWire
from tests.wire.cohere import CohereApp
from tests.wire.mistral import MistralApp
from tests.wire.openai import OpenAIWire
from tests.wire.server import App, Delay, Drip, LoopbackServer, Recorded, Reply, Status
from tests.wire.vertex import TOKEN as VERTEX_TOKEN
from tests.wire.vertex import GeminiApp

#: boto3 must see none of the machine's AWS configuration (tests.conftest.no_machine_aws).
pytestmark = pytest.mark.usefixtures("no_machine_aws")

#: The call's deadline and one attempt's timeout (seconds), and the slack every upper bound allows.
DEADLINE, TIMEOUT, SLACK = 2.0, 1.0, 1.5
#: How far apart the pieces of a trickling answer come: each on time for the read timeout.
GAP = 0.3

#: vendor: (its wire app, the target's TOML lines, its credentials)
VENDORS: dict[str, tuple[Callable[[], App], str, dict[str, str]]] = {
    "openai": (lambda: OpenAIWire(key="k"), 'offering = "openai.api"\nmodel = "gpt-4o-mini"', {"api_key": "k"}),
    "cohere": (CohereApp, 'offering = "cohere.saas"\nmodel = "command-r-plus"', {"api_key": "k"}),
    "mistral": (MistralApp, 'offering = "mistral.api"\nmodel = "mistral-small-latest"', {"api_key": "k"}),
    "vertex": (
        GeminiApp,
        'offering = "vertex.gemini"\nmodel = "gemini-2.5-flash"\nproject = "p"\nregion = "europe-west4"',
        {"access_token": VERTEX_TOKEN},
    ),
    "bedrock": (
        BedrockWire,
        'offering = "bedrock.runtime"\nmodel = "anthropic.claude-3-haiku-20240307-v1:0"\nregion = "eu-central-1"',
        {"aws_access_key_id": "AKIDFAKE", "aws_secret_access_key": "x"},
    ),
}
#: The vendors whose SDKs send through httpx: a sync call's answer is cut on the wall clock (see docs/client.md).
HTTPX_VENDORS = ["openai", "cohere", "mistral", "vertex"]


class Trickle:
    """The app's 200 answers cut into ``size``-byte chunks, which a ``Drip`` fault sends apart. With ``fast``, a
    stream's first ``fast`` chunks (as the app made them) come whole, at once: an open stream whose rest trickles."""

    def __init__(self, app: App, size: int = 8, fast: int = 0):
        self.app, self.size, self.fast = app, size, fast

    def __call__(self, request: Recorded) -> Reply:
        reply = self.app(request)
        if reply.status != 200:
            return reply
        chunks = [reply.body] if reply.chunks is None else list(reply.chunks)
        head, rest = b"".join(chunks[: self.fast]), b"".join(chunks[self.fast :])
        pieces = [rest[i : i + self.size] for i in range(0, len(rest), self.size)]
        return reply._replace(body=b"", chunks=[head, *pieces] if head else pieces)


class World:
    """One vendor's loopback server (its answers trickle when the test queues Drip faults) and Clients for it."""

    def __init__(self, vendor: str, tmp_path: Path, fast: int = 0):
        make_app, self.target, self.credentials = VENDORS[vendor]
        self.vendor = vendor
        self.server = LoopbackServer(Trickle(make_app(), fast=fast))
        self.tmp_path = tmp_path
        self.records: list[UsageRecord] = []

    def __enter__(self) -> World:
        self.server.__enter__()
        endpoint = f"{self.server.url}/v1" if self.vendor == "openai" else self.server.url
        self.config = self.tmp_path / "privsdk.toml"
        self.config.write_text(f'[targets.remote]\n{self.target}\nendpoint = "{endpoint}"\n', encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__()

    def args(self, **more: Any) -> dict[str, Any]:
        return {
            "environ": {"PRIVSDK_CONFIG": str(self.config)},
            "usage": self.records.append,
            "credentials": {self.vendor: self.credentials},
            **more,
        }

    def trickle(self) -> None:
        """Every request from now on gets a trickling answer."""
        self.server.fail(*[Drip(GAP)] * 20)

    def calls(self) -> list[UsageRecord]:
        """The records of the calls made since the warm-up (the first call's are dropped)."""
        ids = list(dict.fromkeys(r.request_id for r in self.records))
        return [r for r in self.records if r.request_id in ids[1:]]


def timed_out(records: list[UsageRecord]) -> None:
    """The call's records say timeout, each of them, and none answered (at least one attempt was made)."""
    assert records, "no attempt recorded"
    assert [(r.outcome, r.error_class) for r in records] == [("error", "timeout")] * len(records)


@pytest.fixture(params=HTTPX_VENDORS)
def httpx_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    with World(request.param, tmp_path) as world:
        yield world


@pytest.fixture(params=[*HTTPX_VENDORS, "bedrock"])
def any_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    with World(request.param, tmp_path) as world:
        yield world


# -- 1. deadline_s and timeout bound a slow answer -------------------------------------------------------------------


def test_sync_answer_trickling_in_ends_at_the_deadline(httpx_world: World) -> None:
    with Client(**httpx_world.args()) as client:
        client.chat("remote", "warm up")  # the SDK imported and its client built: the time measured is the vendor's
        httpx_world.trickle()
        start = time.monotonic()
        with pytest.raises(VendorTimeout):
            client.chat("remote", "hi", deadline_s=DEADLINE, timeout=TIMEOUT)
        assert time.monotonic() - start < DEADLINE + SLACK
        client.flush_usage()
    timed_out(httpx_world.calls())


def test_sync_answer_trickling_in_ends_at_the_deadline_under_instrument(
    httpx_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under privsdk.instrument(), which guards the SDK clients the adapters build as they are built, with the
    process-wide guard: the Client's guard then takes them over, and cuts its answers all the same."""
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    privsdk.instrument()
    try:
        test_sync_answer_trickling_in_ends_at_the_deadline(httpx_world)
    finally:
        privsdk.uninstrument()
        reset_default_guard()


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream's first event"])
def test_async_answer_or_first_event_trickling_in_ends_at_the_deadline(stream: bool, any_world: World) -> None:
    async def main() -> float:
        async with AsyncClient(**any_world.args()) as client:
            await client.chat("remote", "warm up")
            any_world.trickle()
            start = time.monotonic()
            with pytest.raises(VendorTimeout):
                await client.chat("remote", "hi", stream=stream, deadline_s=DEADLINE, timeout=TIMEOUT)
            elapsed = time.monotonic() - start
            client.flush_usage()
            return elapsed

    assert asyncio.run(main()) < DEADLINE + SLACK
    timed_out(any_world.calls())


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_timeout_bounds_one_attempt_of_a_trickling_answer(flavour: str, tmp_path: Path) -> None:
    """``timeout`` is one attempt's bound on the wall clock, well within a long deadline; the attempt is one record."""
    with World("openai", tmp_path) as world:
        options: dict[str, Any] = {"deadline_s": 30.0, "timeout": TIMEOUT, "max_attempts": 1}
        if flavour == "sync":
            with Client(**world.args()) as client:
                client.embed("remote", ["warm up"])
                world.trickle()
                start = time.monotonic()
                with pytest.raises(VendorTimeout):
                    client.embed("remote", ["hi"], **options)
                elapsed = time.monotonic() - start
                client.flush_usage()
        else:

            async def main() -> float:
                async with AsyncClient(**world.args()) as client:
                    await client.embed("remote", ["warm up"])
                    world.trickle()
                    start = time.monotonic()
                    with pytest.raises(VendorTimeout):
                        await client.embed("remote", ["hi"], **options)
                    took = time.monotonic() - start
                    client.flush_usage()
                    return took

            elapsed = asyncio.run(main())
        assert elapsed < TIMEOUT + SLACK
        assert len(world.calls()) == 1
        timed_out(world.calls())


def test_sync_stream_whose_first_event_trickles_ends_at_the_deadline(httpx_world: World) -> None:
    with Client(**httpx_world.args()) as client:
        client.chat("remote", "warm up")
        httpx_world.trickle()
        start = time.monotonic()
        with pytest.raises(VendorTimeout):
            client.chat("remote", "hi", stream=True, deadline_s=DEADLINE, timeout=TIMEOUT)
        assert time.monotonic() - start < DEADLINE + SLACK
        client.flush_usage()
    timed_out(httpx_world.calls())


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_open_stream_whose_rest_trickles_ends_at_the_deadline(flavour: str, tmp_path: Path) -> None:
    """The stream opens at once (its first text event comes whole), then trickles: reading it ends with VendorTimeout
    at the call's deadline, not at the next event's end, and its one record says timeout, with the first event."""
    got: list[StreamEvent] = []
    with World("openai", tmp_path, fast=2) as world:  # OpenAI's first chunk gives the role, its second the first text
        if flavour == "sync":
            with Client(**world.args()) as client:
                client.chat("remote", "warm up")
                world.trickle()
                start = time.monotonic()
                stream = client.chat("remote", "hi", stream=True, deadline_s=DEADLINE, timeout=TIMEOUT)
                with pytest.raises(VendorTimeout):
                    got.extend(stream)
                elapsed = time.monotonic() - start
                client.flush_usage()
        else:

            async def main() -> float:
                async with AsyncClient(**world.args()) as client:
                    await client.chat("remote", "warm up")
                    world.trickle()
                    start = time.monotonic()
                    stream = await client.chat("remote", "hi", stream=True, deadline_s=DEADLINE, timeout=TIMEOUT)
                    with pytest.raises(VendorTimeout):
                        async for event in stream:
                            got.append(event)
                    took = time.monotonic() - start
                    client.flush_usage()
                    return took

            elapsed = asyncio.run(main())
        assert elapsed < DEADLINE + SLACK
        assert got, "the stream opened with its first event"
        [record] = world.calls()
        timed_out([record])
        assert record.first_chunk_ms is not None


def test_sync_bedrock_read_waits_at_most_the_timeout(tmp_path: Path) -> None:
    """What docs/client.md says of a sync Bedrock call: botocore's read timeout bounds each read (a silent server)."""
    with World("bedrock", tmp_path) as world, Client(**world.args()) as client:
        client.chat("remote", "warm up")
        world.server.fail(Delay(30))
        start = time.monotonic()
        with pytest.raises(VendorTimeout):
            client.chat("remote", "hi", timeout=TIMEOUT, max_attempts=1)
        assert time.monotonic() - start < TIMEOUT + SLACK


# -- 2. close() lets a call in flight fall back ----------------------------------------------------------------------

FALLBACK_POLICY = """
[targets.primary]
offering = "selfhosted.vllm"
model = "llama-3.1-8b-instruct"
endpoint = "{primary}/v1"

[targets.backup]
offering = "selfhosted.vllm"
model = "llama-3.1-8b-instruct"
endpoint = "{backup}/v1"

[tenants.acme]
classes.default = []
on_violation = "reroute"
reroute.primary = ["backup"]
"""


@pytest.fixture
def fallback(tmp_path: Path) -> Iterator[tuple[LoopbackServer, LoopbackServer, dict[str, Any], list[UsageRecord]]]:
    with LoopbackServer(OpenAIWire(key="k")) as primary, LoopbackServer(OpenAIWire(key="k")) as backup:
        config = tmp_path / "privsdk.toml"
        config.write_text(FALLBACK_POLICY.format(primary=primary.url, backup=backup.url), encoding="utf-8")
        records: list[UsageRecord] = []
        args = {
            "environ": {"PRIVSDK_CONFIG": str(config)},
            "usage": records.append,
            "credentials": {"selfhosted": {"api_key": "k"}},
        }
        yield primary, backup, args, records


def _between_retries(primary: LoopbackServer) -> None:
    """The primary fails twice, each time asking for a second's wait: close() comes during the first wait, before the
    call has built the backup's adapter."""
    primary.fail(Status(503, {"retry-after": "1"}), Status(503, {"retry-after": "1"}))


def _fell_back(records: list[UsageRecord], backup: LoopbackServer) -> None:
    assert len(backup.requests) == 1
    call = [r for r in records if r.request_id == records[-1].request_id]
    assert [(r.chosen_target, r.outcome) for r in call] == [
        ("primary", "error"),
        ("primary", "error"),
        ("backup", "ok"),
    ]


def test_close_lets_a_sync_call_in_flight_fall_back(fallback: Any) -> None:
    primary, backup, args, records = fallback
    client = Client(**args)
    client.chat("primary", "warm up")  # the primary's adapter is built; the backup's is not
    _between_retries(primary)
    result: dict[str, Any] = {}

    def call() -> None:
        try:
            result["answer"] = client.chat("primary", "hi", max_attempts=2)
        except Exception as exc:
            result["error"] = exc

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.4)  # the call waits between its attempts
    client.close()  # waits for the call, which falls back
    thread.join()
    assert "error" not in result, result.get("error")
    assert result["answer"].decision.chosen == "backup"
    _fell_back(records, backup)
    with pytest.raises(ClientClosed):  # a new call is still refused
        client.chat("primary", "hi")


def test_close_lets_an_async_call_in_flight_fall_back(fallback: Any) -> None:
    primary, backup, args, records = fallback

    async def main() -> None:
        client = AsyncClient(**args)
        await client.chat("primary", "warm up")
        _between_retries(primary)
        call = asyncio.create_task(client.chat("primary", "hi", max_attempts=2))
        await asyncio.sleep(0.4)
        await client.aclose()
        answer = await call
        assert answer.decision is not None
        assert answer.decision.chosen == "backup"
        with pytest.raises(ClientClosed):
            await client.chat("primary", "hi")

    asyncio.run(main())
    _fell_back(records, backup)


# -- 3. the constructor checks every field of Limits -----------------------------------------------------------------

NAN, INF = math.nan, math.inf
BAD_LIMITS = [
    ("max_attempts", 0),
    ("max_attempts", -1),
    ("max_attempts", 1.5),
    ("max_attempts", True),
    ("max_attempts", "3"),
    ("deadline_s", 0),
    ("deadline_s", -1.0),
    ("deadline_s", NAN),
    ("deadline_s", INF),
    ("deadline_s", "10"),
    ("backoff_base_s", -1.0),
    ("backoff_base_s", NAN),
    ("backoff_base_s", INF),
    ("backoff_base_s", None),
    ("backoff_cap_s", -1.0),
    ("backoff_cap_s", NAN),
    ("backoff_cap_s", INF),
    ("retry_after_cap_s", -1.0),
    ("retry_after_cap_s", NAN),
    ("retry_after_cap_s", INF),
]


@pytest.mark.parametrize("cls", [Client, AsyncClient])
@pytest.mark.parametrize(("field", "value"), BAD_LIMITS)
def test_invalid_limits_are_refused_by_the_constructor(cls: type[Any], field: str, value: object) -> None:
    bad: dict[str, Any] = {field: value}
    limits = Limits(**bad)
    with pytest.raises(ConfigError) as caught:
        cls(usage="none", environ={}, limits=limits)
    message = str(caught.value)
    assert "Client(limits=)" in message
    assert field in message
    assert ("1 or more" if field == "max_attempts" else "finite number") in message


def test_every_field_of_limits_is_checked() -> None:
    assert {field for field, _ in BAD_LIMITS} == set(Limits._fields)


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_limits_at_their_edges_are_taken(cls: type[Any]) -> None:
    """No wait and no cap are waits the retries can run with; one attempt and a short deadline are limits."""
    limits = Limits(max_attempts=1, deadline_s=0.5, backoff_base_s=0, backoff_cap_s=0.0, retry_after_cap_s=0)
    client = cls(usage="none", environ={}, limits=limits)
    assert client._core.limits == limits


def test_zero_waits_retry_at_once(fallback: Any) -> None:
    """Before, a negative cap reached time.sleep at the first retry; a zero one is taken, and retries without a wait."""
    primary, _, args, records = fallback
    with Client(**args, limits=Limits(retry_after_cap_s=0, backoff_base_s=0)) as client:
        primary.fail(Status(429, {"retry-after": "5"}), Status(503))
        start = time.monotonic()
        answer = client.chat("primary", "hi")
        assert answer.decision is not None
        assert answer.decision.chosen == "primary"
        assert time.monotonic() - start < 4
        client.flush_usage()
    assert [r.outcome for r in records] == ["error", "error", "ok"]
