"""aiobotocore's async Bedrock clients under the botocore guard seam, real aiobotocore over real HTTP (aiohttp).

The same seam as boto3's (tests/test_dropin_boto3.py, whose small ``Judge`` these tests reuse): a refusal raises
before a byte is sent and is never retried; an allowed attempt is finished with its tokens, an event stream's as
the app reads it with ``async for``. Many requests of one thread interleave on its event loop: each attempt must
be finished with its own tokens. aioboto3 is not installed here (its releases pin an older aiobotocore); its
clients are aiobotocore's.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiobotocore.session
import botocore.session
import pytest
from botocore.exceptions import ClientError
from privsdk_bedrock import dropin
from privsdk_bedrock.refusal import PolicyViolation as BedrockPolicyViolation

import privsdk
import privsdk.boto3 as pboto3
from privsdk.errors import PolicyViolation
from privsdk.outbound.botocore_seam import is_guarded
from privsdk.outbound.judge import Guard
from tests.guard_support import records
from tests.test_dropin_boto3 import (
    CLAUDE,
    JSON_TYPES,
    MESSAGES,
    NATIVE,
    PROMPT,
    REFUSE_ALL,
    TITAN,
    Judge,
    attempts_counter,
    kwargs,
)
from tests.wire.bedrock import BedrockWire, sigv4
from tests.wire.server import LoopbackServer

T = TypeVar("T")

#: aiobotocore must see none of the machine's AWS configuration (tests.conftest.no_machine_aws).
pytestmark = pytest.mark.usefixtures("no_machine_aws")


@pytest.fixture(scope="module")
def _running() -> Iterator[LoopbackServer]:
    with LoopbackServer(BedrockWire()) as running:
        yield running


@pytest.fixture
def server(_running: LoopbackServer) -> Iterator[LoopbackServer]:
    _running.requests.clear()
    _running.errors.clear()
    yield _running
    assert _running.errors == []


@pytest.fixture(autouse=True)
def _not_instrumented() -> Iterator[None]:
    yield
    dropin.uninstrument()


def run(call: Callable[[Any], Awaitable[T]], server: LoopbackServer, service: str = "bedrock-runtime", **kw: Any) -> T:
    """``call(client)`` on a new aiobotocore client of ``service`` for the loopback Bedrock, in a new event loop."""

    async def main() -> T:
        async with aiobotocore.session.get_session().create_client(service, **{**kwargs(server), **kw}) as client:
            return await call(client)

    return asyncio.run(main())


async def read_converse_stream(client: Any, messages: list[dict[str, Any]] = MESSAGES) -> tuple[str, dict[str, Any]]:
    response = await client.converse_stream(modelId=CLAUDE, messages=messages)
    events = [event async for event in response["stream"]]
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    return text, next(e["metadata"]["usage"] for e in events if "metadata" in e)


# -- refusal ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["standard", "legacy", "adaptive"])
def test_instrument_refuses_before_a_byte_without_retrying(server: LoopbackServer, mode: str) -> None:
    judge = Judge(REFUSE_ALL)
    dropin.instrument(guard=judge)

    async def call(client: Any) -> tuple[BaseException, list[str]]:
        attempts = attempts_counter(client)
        with pytest.raises(ClientError) as caught:
            await client.converse(modelId=CLAUDE, messages=MESSAGES)
        return caught.value, attempts

    error, attempts = run(call, server, **kwargs(server, attempts=5, mode=mode))
    assert isinstance(error, PolicyViolation) and isinstance(error, BedrockPolicyViolation)
    assert server.requests == []
    assert attempts == ["Converse"] and len(judge.checked) == 1 and judge.finished == []
    assert error.response["Error"]["Code"] == "PolicyViolation" and error.operation_name == "Converse"
    assert error.__cause__ is None and error.__context__ is None
    assert PROMPT not in str(error)


# -- allowed requests and their tokens ----------------------------------------------------------------------------


def test_every_operation_is_finished_with_its_tokens_streams_as_read_asynchronously(server: LoopbackServer) -> None:
    judge = Judge()

    async def call(client: Any) -> list[tuple[int | None, int | None]]:
        dropin.guard_client(client, guard=judge)
        answer = await client.converse(modelId=CLAUDE, messages=MESSAGES)
        text, usage = await read_converse_stream(client)
        assert text == "You said: " + PROMPT
        embedded = await client.invoke_model(modelId=TITAN, body=json.dumps({"inputText": PROMPT}), **JSON_TYPES)
        embed = json.loads(await embedded["body"].read())
        response = await client.invoke_model_with_response_stream(modelId=CLAUDE, body=json.dumps(NATIVE))
        assert len(judge.finished) == 3  # the stream is finished as it is read, not before
        parts = [json.loads(e["chunk"]["bytes"]) async for e in response["body"]]
        metrics = parts[-1]["amazon-bedrock-invocationMetrics"]
        return [
            (answer["usage"]["inputTokens"], answer["usage"]["outputTokens"]),
            (usage["inputTokens"], usage["outputTokens"]),
            (embed["inputTextTokenCount"], None),
            (metrics["inputTokenCount"], metrics["outputTokenCount"]),
        ]

    expected = run(call, server)
    assert [(d.asks.operation, d.status, d.tokens, d.exc) for d in judge.finished] == [
        ("chat", 200, expected[0], None),
        ("stream", 200, expected[1], None),
        ("embed", 200, expected[2], None),
        ("stream", 200, expected[3], None),
    ]
    assert len(server.requests) == 4


def test_a_stream_closed_before_its_counts_is_finished_once_as_cancelled(server: LoopbackServer) -> None:
    judge = Judge()

    async def call(client: Any) -> None:
        dropin.guard_client(client, guard=judge)
        stream = (await client.converse_stream(modelId=CLAUDE, messages=MESSAGES))["stream"]
        async for _ in stream:
            break
        stream.close()
        stream.close()

    run(call, server)
    ((done,),) = [judge.finished]
    assert (done.status, done.tokens) == (200, (None, None)) and isinstance(done.exc, GeneratorExit)


def test_interleaved_requests_on_one_loop_are_each_finished_with_their_own_tokens(server: LoopbackServer) -> None:
    """Two clients (two Regions), streams and plain calls at once on one thread: the seam must not mix them up."""
    judge = Judge()

    async def one(client: Any, i: int) -> tuple[str, tuple[int, int]]:
        messages = [{"role": "user", "content": [{"text": " ".join(["w"] * (i + 1))}]}]
        if i % 2:
            usage = (await client.converse(modelId=CLAUDE, messages=messages))["usage"]
        else:
            usage = (await read_converse_stream(client, messages))[1]
        return client.meta.region_name, (usage["inputTokens"], usage["outputTokens"])

    async def main() -> list[tuple[str, tuple[int, int]]]:
        session = aiobotocore.session.get_session()
        async with (
            session.create_client("bedrock-runtime", **kwargs(server)) as eu,
            session.create_client("bedrock-runtime", **{**kwargs(server), "region_name": "us-west-2"}) as us,
        ):
            for client in (eu, us):
                dropin.guard_client(client, guard=judge)
            return list(await asyncio.gather(*(one((eu, us)[i % 4 < 2], i) for i in range(24))))

    expected = sorted(asyncio.run(main()), key=repr)
    assert sorted(((d.asks.location or "", d.tokens) for d in judge.finished), key=repr) == expected
    assert len(judge.checked) == len(server.requests) == 24


# -- privsdk's own guard and usage records ------------------------------------------------------------------------


@pytest.fixture
def usage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LoopbackServer) -> Iterator[Path]:
    """Tenant ``eu`` requires region=eu, tenant ``any`` nothing; records go to a JSONL file."""
    config = tmp_path / "privsdk.toml"
    config.write_text(
        f"""
[targets.loopback]
offering = "bedrock.runtime"
model = "{CLAUDE}"
endpoint = "{server.url}"
region = "eu-central-1"
attest = ["region=eu"]

[tenants.eu]
classes.default = ["region=eu"]

[tenants.any]
classes.default = []
""",
        encoding="utf-8",
    )
    path = tmp_path / "usage.jsonl"
    monkeypatch.setenv("PRIVSDK_CONFIG", str(config))
    monkeypatch.setenv("PRIVSDK_TENANT", "eu")
    monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{path}")
    Guard.reset_default()
    yield path
    Guard.reset_default()


def test_privsdk_guard_records_each_call_with_its_tokens_and_no_content(server: LoopbackServer, usage: Path) -> None:
    async def call(client: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        assert privsdk.guard(client) is client and is_guarded(client)
        answer = await client.converse(modelId=CLAUDE, messages=MESSAGES)
        return answer["usage"], (await read_converse_stream(client))[1]

    chat, stream = run(call, server)
    got = [(r["outcome"], r["operation"], r["input_tokens"], r["output_tokens"]) for r in records(usage)]
    assert got == [
        ("ok", "chat", chat["inputTokens"], chat["outputTokens"]),
        ("ok", "stream", stream["inputTokens"], stream["outputTokens"]),
    ]
    assert PROMPT not in usage.read_text()


def test_a_handler_after_the_guard_cannot_send_elsewhere_unjudged(server: LoopbackServer, usage: Path) -> None:
    """An app's before-send handler, run after the guard's, moved the judged request to an undeclared host: the
    aiohttp session judges it again as it sends, and refuses it."""
    with LoopbackServer(BedrockWire()) as elsewhere:

        async def call(client: Any) -> BaseException:
            privsdk.guard(client)

            def move(request: Any, **kwargs: Any) -> None:
                request.url = request.url.replace(server.url, elsewhere.url)

            client.meta.events.register("before-send.bedrock-runtime", move)
            with pytest.raises(ClientError) as caught:
                await client.converse(modelId=CLAUDE, messages=MESSAGES)
            error: BaseException = caught.value
            return error

        error = run(call, server)
        assert isinstance(error, PolicyViolation) and "not an endpoint privsdk knows" in str(error)
        assert elsewhere.requests == [] and server.requests == []
    assert [r["outcome"] for r in records(usage)] == ["refused"]


def test_two_tenants_on_two_regions_at_once_are_each_judged_and_recorded(server: LoopbackServer, usage: Path) -> None:
    """``privsdk.scope`` is per asyncio task: tenant ``eu`` is refused in us-west-2 and allowed in eu-central-1."""

    async def one(client: Any, tenant: str, i: int) -> tuple[str, str, str, int | None]:
        messages = [{"role": "user", "content": [{"text": " ".join(["w"] * (i + 1))}]}]
        with privsdk.scope(tenant=tenant):
            try:
                usage = (await read_converse_stream(client, messages))[1]
            except PolicyViolation as refused:
                assert "region=eu" in str(refused)
                return tenant, client.meta.region_name, "refused", None
        return tenant, client.meta.region_name, "ok", usage["inputTokens"]

    async def main() -> list[tuple[str, str, str, int | None]]:
        session = aiobotocore.session.get_session()
        async with (
            session.create_client("bedrock-runtime", **kwargs(server)) as eu,
            session.create_client("bedrock-runtime", **{**kwargs(server), "region_name": "us-west-2"}) as us,
        ):
            for client in (eu, us):
                pboto3.guard_client(client)
            calls = [one((eu, us)[i % 2], ("eu", "any")[i % 4 < 2], i) for i in range(16)]
            return list(await asyncio.gather(*calls))

    results = asyncio.run(main())
    assert sorted(r[2] for r in results).count("refused") == 4  # tenant eu in us-west-2
    assert all(r[2] == "refused" for r in results if r[:2] == ("eu", "us-west-2"))
    assert {sigv4(r.headers)["region"] for r in server.requests} == {"eu-central-1", "us-west-2"}
    assert len(server.requests) == 12
    got = sorted((r["tenant"], r["outcome"], r["input_tokens"]) for r in records(usage))
    assert got == sorted((t, o, n) for t, _, o, n in results)
    assert PROMPT not in usage.read_text()


def test_a_rerouting_tenant_is_refused_as_the_sdk_cannot_be_answered_elsewhere(
    server: LoopbackServer, usage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiobotocore's clients are not rerouted (the rerouter answers in boto3's blocking types): the request is
    refused, never sent, whatever the tenant's reroute list says."""
    config = Path(os.environ["PRIVSDK_CONFIG"])
    config.write_text(
        config.read_text()
        + f"""
[targets.eu-claude]
offering = "bedrock.runtime"
model = "{CLAUDE}"
region = "eu-central-1"
endpoint = "{server.url}"
attest = ["region=eu"]

[tenants.rerouted]
on_violation = "reroute"
classes.default = ["region=eu"]
reroute."bedrock/*" = ["eu-claude"]
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("PRIVSDK_TENANT", "rerouted")
    Guard.reset_default()

    async def call(client: Any) -> BaseException:
        pboto3.guard_client(client)
        with pytest.raises(PolicyViolation) as caught:
            await client.converse(modelId=CLAUDE, messages=MESSAGES)
        return caught.value

    refused = run(call, server, region_name="us-west-2")
    assert "can only be sent where the SDK sent it" in str(refused)
    assert server.requests == []


# -- instrument ---------------------------------------------------------------------------------------------------


def test_instrument_guards_aiobotocore_clients_and_uninstrument_restores(server: LoopbackServer) -> None:
    judge = Judge(REFUSE_ALL)
    dropin.instrument(guard=judge)
    dropin.instrument(guard=Judge())  # idempotent: the first guard stays
    assert dropin.is_instrumented()

    async def guarded(client: Any) -> bool:
        with pytest.raises(ClientError, match="PolicyViolation"):
            await client.converse(modelId=CLAUDE, messages=MESSAGES)
        return is_guarded(client)

    async def plain(client: Any) -> bool:
        return is_guarded(client)

    assert run(guarded, server)
    assert run(plain, server, "bedrock-agent-runtime")
    assert not run(plain, server, "s3")
    assert server.requests == []
    dropin.uninstrument()
    assert not dropin.is_instrumented()
    assert not run(plain, server)
    assert not is_guarded(botocore.session.get_session().create_client("bedrock-runtime", **kwargs(server)))

    async def sends(client: Any) -> None:
        await client.converse(modelId=CLAUDE, messages=MESSAGES)

    run(sends, server)
    assert len(server.requests) == 1


@pytest.mark.parametrize("before", ["", "import aiobotocore"])
def test_privsdk_instrument_before_aiobotocore_is_imported_guards_its_clients(
    server: LoopbackServer, before: str
) -> None:
    """As ``privsdk run`` does it: ``import privsdk`` and ``instrument()`` leave aiobotocore unimported; its clients
    are guarded once the app imports it, and ``uninstrument()`` restores it. So too when the app had imported
    ``aiobotocore`` (its version) but not yet its sessions."""
    code = f"""
import asyncio, sys
{before}
import privsdk
privsdk.instrument()
print("aiobotocore" in sys.modules, "aiobotocore.session" in sys.modules)
import aiobotocore.session
from privsdk.outbound.botocore_seam import is_guarded
kw = dict(region_name="eu-west-1", endpoint_url={server.url!r}, aws_access_key_id="a", aws_secret_access_key="b")

async def made(service):
    async with aiobotocore.session.AioSession().create_client(service, **kw) as client:
        return is_guarded(client)

print(asyncio.run(made("bedrock-runtime")), asyncio.run(made("s3")))
privsdk.uninstrument()
print(asyncio.run(made("bedrock-runtime")))
"""
    env = {**os.environ, "PRIVSDK_USAGE": "none"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    imported = str(bool(before))
    assert out.stdout.split() == [imported, imported, "True", "False", "False"], out.stderr[-2000:]
