"""A rerouted openai request the SDK sends again, through the real openai SDK over loopback servers: its records and
its timeout.

The tenant needs ``region=eu``, which OpenAI's API (a loopback server declared as ``openai.api``) does not offer; the
drop-in answers from an Azure OpenAI deployment in an EU data zone instead (another loopback server), through
privsdk's Client. When that alternative fails (429), the SDK retries the call as it would any answer, and says on
the wire which attempt each request is (``x-stainless-retry-count``): the retries are attempts of one call in the
records (one request id, attempts 1, 2, 3), as a call sent where the SDK sent it is, not one call each. And the SDK's
own timeout holds for the alternative: a rerouted request that is not answered in time raises openai's
``APITimeoutError`` when the SDK's timeout has passed, as one sent where the SDK sent it does, not when privsdk's own
per-attempt time (60 s) has.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import privsdk
from privsdk import openai as dropin
from privsdk.outbound.judge import Guard
from privsdk.usage import UsageRecord, jsonl
from privsdk.usage.report import summarise
from tests import test_dropin_openai_reroute as reroute_policy
from tests.guard_support import reset_default_guard
from tests.wire.openai import OpenAIWire, error_body
from tests.wire.server import Delay, LoopbackServer, Status

KEY, AZURE_KEY, MODEL = reroute_policy.KEY, reroute_policy.AZURE_KEY, reroute_policy.MODEL

MSG: Any = [{"role": "user", "content": "hello"}]
SOON = {"retry-after-ms": "10"}
#: test_dropin_openai_reroute's policy (the clinic reroutes OpenAI to azure-eu), and a tenant with two alternatives.
POLICY = (
    reroute_policy.POLICY
    + """
[targets.azure-eu2]
offering = "azure.openai"
model = "gpt-4o"
endpoint = "{azure2}"
deployment = "gpt-4o-eu"
api_version = "2024-10-21"
attest = ["deployment=data_zone_eu"]

[tenants.hospital]
on_violation = "reroute"
classes.default = ["region=eu"]
reroute."openai/*" = ["azure-eu", "azure-eu2"]
reroute."azure/*" = ["azure-eu2"]
"""
)


def rate_limited() -> Status:
    return Status(429, SOON, error_body("slow down", type="requests", code="rate_limit_exceeded"))


def unavailable() -> Status:
    return Status(503, SOON, error_body("busy", type="server_error"))


class Rerouted(NamedTuple):
    api: LoopbackServer
    azure: LoopbackServer
    azure2: LoopbackServer
    usage: Path

    def client(self, flavour: str, **options: Any) -> Any:
        cls = dropin.AsyncOpenAI if flavour == "async" else dropin.OpenAI
        return cls(api_key=KEY, base_url=f"{self.api.url}/v1", **options)

    def records(self) -> list[UsageRecord]:
        """The records in the store, once the guard's writer (the reroute client's too) has written them."""
        Guard.default().flush(5)
        return list(jsonl.read(str(self.usage)))


@pytest.fixture
def rerouted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rerouted]:
    with (
        LoopbackServer(OpenAIWire(key=KEY)) as api,
        LoopbackServer(OpenAIWire(key=AZURE_KEY)) as azure,
        LoopbackServer(OpenAIWire(key=AZURE_KEY)) as azure2,
    ):
        config = tmp_path / "privsdk.toml"
        config.write_text(POLICY.format(api=api.url, azure=azure.url, azure2=azure2.url), encoding="utf-8")
        usage = tmp_path / "usage.jsonl"
        monkeypatch.setenv("PRIVSDK_CONFIG", str(config))
        monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{usage}")
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
        reset_default_guard()
        yield Rerouted(api, azure, azure2, usage)
        assert api.requests == [], "a rerouted request reached the refused target"
    reset_default_guard()


def call(rerouted: Rerouted, flavour: str, tenant: str, send: Callable[[Any], Any], **options: Any) -> Any:
    """``send(client)`` with a sync or async drop-in client, for ``tenant``; an async ``send`` returns an awaitable."""
    with privsdk.scope(tenant=tenant):
        if flavour == "sync":
            return send(rerouted.client("sync", **options))

        async def run() -> Any:
            async with rerouted.client("async", **options) as client:
                answer: Awaitable[Any] = send(client)
                return await answer

        return asyncio.run(run())


def chat(client: Any) -> Any:
    return client.chat.completions.create(model=MODEL, messages=MSG)


def stream(client: Any) -> Any:
    """A streamed chat, read to its end."""
    if isinstance(client, dropin.OpenAI):
        return list(client.chat.completions.create(model=MODEL, messages=MSG, stream=True))

    async def read() -> list[Any]:
        return [chunk async for chunk in await client.chat.completions.create(model=MODEL, messages=MSG, stream=True)]

    return read()


def attempts(records: list[UsageRecord]) -> list[tuple[int, str | None, str, str | None, int | None]]:
    return [(r.attempt, r.chosen_target, r.outcome, r.error_class, r.http_status) for r in records]


FLAVOURS = ["sync", "async"]


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("send", [chat, stream], ids=["chat", "stream"])
def test_the_sdks_retries_of_a_rerouted_call_are_attempts_of_one_call(
    rerouted: Rerouted, flavour: str, send: Callable[[Any], Any]
) -> None:
    """Each retry was recorded as a call of its own (a new request id, attempt 1): the report counted 3 calls, 2 of
    them errors and no retry, for one call that succeeded on its third attempt."""
    rerouted.azure.fail(rate_limited(), rate_limited())
    call(rerouted, flavour, "clinic", send, max_retries=2)
    assert len(rerouted.azure.requests) == 3
    records = rerouted.records()
    assert attempts(records) == [
        (1, "azure-eu", "error", "rate_limited", 429),
        (2, "azure-eu", "error", "rate_limited", 429),
        (3, "azure-eu", "ok", None, None),  # the Client's records carry no status for an answer (docs/usage-records.md)
    ]
    assert {(r.decision, r.requested_target, r.operation) for r in records} == {
        ("reroute", f"openai/{MODEL}", "stream" if send is stream else "chat")
    }
    assert len({r.request_id for r in records}) == 1
    total = summarise(records, ()).total
    assert (total["calls"], total["attempts"], total["retries"], total["errors"], total["reroutes"]) == (1, 3, 2, 0, 1)

    # The next call is a call of its own, attempt 1 again.
    call(rerouted, flavour, "clinic", send, max_retries=2)
    (latest,) = rerouted.records()[3:]
    assert (latest.attempt, latest.outcome) == (1, "ok") and latest.request_id != records[0].request_id


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_rerouted_call_that_fails_at_every_retry_is_one_failed_call(rerouted: Rerouted, flavour: str) -> None:
    rerouted.azure.fail(rate_limited(), rate_limited())
    with pytest.raises(dropin.RateLimitError):
        call(rerouted, flavour, "clinic", chat, max_retries=1)
    records = rerouted.records()
    assert [(r.attempt, r.outcome, r.http_status) for r in records] == [(1, "error", 429), (2, "error", 429)]
    assert len({r.request_id for r in records}) == 1
    total = summarise(records, ()).total
    assert (total["calls"], total["retries"], total["errors"]) == (1, 1, 1)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_alternatives_tried_in_each_retry_are_numbered_on_across_the_call(rerouted: Rerouted, flavour: str) -> None:
    """The Client serving a reroute tries each alternative that allows once: one request the SDK sends can be two
    attempts, and the SDK's next retry's attempts come after them."""
    rerouted.azure.fail(unavailable(), unavailable())
    rerouted.azure2.fail(rate_limited())
    call(rerouted, flavour, "hospital", chat, max_retries=1)
    records = rerouted.records()
    assert [(r.attempt, r.chosen_target, r.outcome, r.error_class) for r in records] == [
        (1, "azure-eu", "error", "unavailable"),
        (2, "azure-eu2", "error", "rate_limited"),
        (3, "azure-eu", "error", "unavailable"),
        (4, "azure-eu2", "ok", None),
    ]
    assert len({r.request_id for r in records}) == 1
    assert summarise(records, ()).total["errors"] == 0


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_rerouted_request_times_out_when_the_sdks_timeout_says(rerouted: Rerouted, flavour: str) -> None:
    """The reroute gave the alternative privsdk's own 60 s and answered after 3 s, where the same request sent to
    OpenAI raised APITimeoutError after 0.5 s."""
    rerouted.azure.fail(Delay(3))
    started = time.monotonic()
    with pytest.raises(dropin.APITimeoutError):
        call(rerouted, flavour, "clinic", chat, max_retries=0, timeout=0.5)
    assert time.monotonic() - started < 2.5
    [record] = rerouted.records()
    assert (record.decision, record.chosen_target, record.outcome, record.error_class) == (
        "reroute",
        "azure-eu",
        "error",
        "timeout",
    )
    assert record.latency_ms < 2500


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_sdk_retries_a_rerouted_timeout_as_its_own(rerouted: Rerouted, flavour: str) -> None:
    """A timeout of the alternative is the SDK's timeout: openai retries it (here once, then it answers), where an
    answer with status 504 would have been a server's error; the per-call timeout (``with_options``) holds too."""
    rerouted.azure.fail(Delay(3))
    started = time.monotonic()
    answer = call(rerouted, flavour, "clinic", lambda c: chat(c.with_options(timeout=0.5)), max_retries=1)
    assert answer.choices[0].message.content and time.monotonic() - started < 2.5
    records = rerouted.records()
    assert [(r.attempt, r.outcome, r.error_class) for r in records] == [(1, "error", "timeout"), (2, "ok", None)]
    assert len({r.request_id for r in records}) == 1


def test_a_rerouted_stream_times_out_when_the_sdks_timeout_says(rerouted: Rerouted) -> None:
    rerouted.azure.fail(Delay(3))
    started = time.monotonic()
    with pytest.raises(dropin.APITimeoutError):
        call(rerouted, "sync", "clinic", stream, max_retries=0, timeout=0.5)
    assert time.monotonic() - started < 2.5
    assert attempts(rerouted.records()) == [(1, "azure-eu", "error", "timeout", None)]


def test_a_slow_alternative_within_the_sdks_timeout_answers(rerouted: Rerouted) -> None:
    rerouted.azure.fail(Delay(0.3))
    answer = call(rerouted, "sync", "clinic", chat, max_retries=0, timeout=5)
    assert answer.choices[0].message.content
    assert [(r.attempt, r.outcome) for r in rerouted.records()] == [(1, "ok")]
