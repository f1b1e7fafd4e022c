"""Edges found by an adversarial run (issue 12), each through the real SDKs on loopback or through the CLI.

Fail closed on names the catalogue does not know behind a Bedrock profile prefix, on calls that name no
tenant, on environment attestations a policy file did not allow, on Ollama model names in any case, on
deadlines a stream or a multi-request embed would overrun, and on bad input; keep vendor text out of
exception chains and the SDKs' own logs; catalogue answers that agree across offerings.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from privsdk.async_client import AsyncClient
from privsdk.client import Client
from privsdk.config import load_policy
from privsdk.errors import ConfigError, PolicyViolation, VendorTimeout
from privsdk.types import StreamEnd
from privsdk.usage import UsageRecord
from tests.conftest import run_cli
from tests.wire.bedrock import SIGV4, BedrockWire
from tests.wire.openai import OpenAIWire
from tests.wire.server import Delay, Drip, LoopbackServer

AWS = {"aws_access_key_id": "AKIDFAKE", "aws_secret_access_key": "x"}
ACCOUNT = "123456789012"


#: boto3 must see none of the machine's AWS configuration (tests.conftest.no_machine_aws).
pytestmark = pytest.mark.usefixtures("no_machine_aws")


@pytest.fixture
def bedrock() -> Iterator[LoopbackServer]:
    with LoopbackServer(BedrockWire()) as server:
        yield server
        assert server.errors == []


def _client(config: Path, records: list[UsageRecord] | None = None, **environ: str) -> Client:
    return Client(
        environ={"PRIVSDK_CONFIG": str(config), **environ},
        usage=records.append if records is not None else "none",
        credentials={"bedrock": AWS, "selfhosted": {"api_key": "local"}, "openai": {"api_key": "sk-t"}},
        timeout=5.0,
    )


# -- 1. Bedrock: a profile prefix and the family behind it must both be known; model ARNs ----------------------------


@pytest.mark.parametrize(
    "model",
    [
        "eu.unknownvendor.model-x",
        "global.nothing",
        "us.eu.anthropic.claude-3-haiku-20240307-v1:0",  # two prefixes: the second is no family
        f"arn:aws:bedrock:eu-central-1:{ACCOUNT}:inference-profile/eu.unknownvendor.model-x",
        f"arn:aws:bedrock:eu-central-1:{ACCOUNT}:application-inference-profile/a1b2c3",  # opaque: no family
        "arn:aws:bedrock:eu-central-1::foundation-model/eu.anthropic.claude-3-haiku-20240307-v1:0",  # not a base
    ],
)
def test_an_unknown_family_behind_a_profile_prefix_is_refused_before_any_request(
    model: str, bedrock: LoopbackServer, write_config: Any
) -> None:
    config = write_config(
        f'[targets.b]\noffering = "bedrock.runtime"\nmodel = "anthropic.claude-3-haiku-20240307-v1:0"\n'
        f'region = "eu-central-1"\nendpoint = "{bedrock.url}"\n'
    )
    client = _client(config)
    with pytest.raises(PolicyViolation, match="unknown model family"):
        client.chat(f"bedrock/{model}", "hello")
    client.close()
    assert bedrock.requests == []
    with pytest.raises(ConfigError, match="serves no model"):  # and a file cannot name it either
        load_policy(
            {"PRIVSDK_CONFIG": str(write_config(f'[targets.x]\noffering = "bedrock.runtime"\nmodel = "{model}"\n'))}
        )


def test_a_known_prefix_on_a_known_family_is_sent(bedrock: LoopbackServer, write_config: Any) -> None:
    model = "eu.anthropic.claude-3-haiku-20240307-v1:0"
    config = write_config(  # AWS's EU geography may route to London and Zurich: a tenant that accepts it says so
        f'[targets.b]\noffering = "bedrock.runtime"\nmodel = "{model}"\nregion = "eu-central-1"\n'
        f'endpoint = "{bedrock.url}"\nattest = ["region=eu"]\n'
        '[tenants.t]\nclasses.default = ["region=eu|uk|ch"]\n'
    )
    client = _client(config, PRIVSDK_TENANT="t")
    assert client.chat("b", "hello").text
    client.close()
    assert [r.path for r in bedrock.requests] == [f"/model/{model.replace(':', '%3A')}/converse"]


def test_an_inference_profile_arn_is_sent_to_the_arns_region_and_judged_by_its_profile(
    bedrock: LoopbackServer, write_config: Any
) -> None:
    """The ARN's Region is where the client calls; its profile prefix is what the region limits see."""
    eu = f"arn:aws:bedrock:eu-west-1:{ACCOUNT}:inference-profile/eu.anthropic.claude-3-haiku-20240307-v1:0"
    us = f"arn:aws:bedrock:eu-west-1:{ACCOUNT}:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0"
    config = write_config(
        f'[targets.eu]\noffering = "bedrock.runtime"\nmodel = "{eu}"\nendpoint = "{bedrock.url}"\n'
        'attest = ["region=eu"]\n'
        f'[targets.us]\noffering = "bedrock.runtime"\nmodel = "{us}"\nendpoint = "{bedrock.url}"\n'
        'attest = ["region=eu"]\n'
        '[tenants.t]\nclasses.default = ["region=eu|uk|ch"]\n'  # AWS's EU geography: eu, uk or ch
    )
    client = _client(config, PRIVSDK_TENANT="t")
    assert client.policy.targets["eu"].region == "eu-west-1"
    assert client.chat("eu", "hello").text
    with pytest.raises(PolicyViolation, match=r"region=ch\|eu\|uk"):  # a us. profile leaves Europe, ARN or not
        client.chat("us", "hello")
    client.close()
    (sent,) = bedrock.requests
    auth = SIGV4.match(sent.headers["authorization"])
    assert auth is not None and auth["region"] == "eu-west-1"
    assert sent.path.startswith("/model/arn%3Aaws%3Abedrock%3Aeu-west-1%3A")


def test_a_foundation_model_arn_is_served_and_a_contradicting_region_is_a_config_error(
    bedrock: LoopbackServer, write_config: Any
) -> None:
    arn = "arn:aws:bedrock:eu-central-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
    client = _client(
        write_config(f'[targets.b]\noffering = "bedrock.runtime"\nmodel = "{arn}"\nendpoint = "{bedrock.url}"\n')
    )
    assert client.chat("b", "hello").text
    client.close()
    assert len(bedrock.requests) == 1
    bad = write_config(f'[targets.b]\noffering = "bedrock.runtime"\nmodel = "{arn}"\nregion = "us-east-1"\n')
    with pytest.raises(ConfigError, match="contradicts its model ARN's Region 'eu-central-1'") as caught:
        load_policy({"PRIVSDK_CONFIG": str(bad)})
    assert str(bad) in str(caught.value)


def test_cohere_on_bedrock_gets_one_answer_under_both_names() -> None:
    """cohere.bedrock and bedrock/cohere.* are one model on one service: the stricter answer for both."""
    decisions = []
    for target in ("cohere.bedrock", "bedrock.runtime"):
        status, out = _explain_offering(target, "cohere.command-r-plus-v1:0", "no_provider_sharing")
        decisions.append((status, out["decision"], [u["requirement"] for u in out["unmet"]]))
    assert decisions == [(3, "refuse", ["no_provider_sharing"])] * 2
    allowed = _explain_offering(
        "cohere.bedrock", "eu.cohere.command-r-plus-v1:0", "no_provider_sharing", ["data_retention_mode=default"]
    )
    assert allowed[:2] == (0, allowed[1]) and allowed[1]["decision"] == "allow"


def _explain_offering(offering: str, model: str, requirement: str, attest: list[str] = []) -> tuple[int, Any]:  # noqa: B006
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.toml"
        path.write_text(
            f'[targets.x]\noffering = "{offering}"\nmodel = "{model}"\nattest = {json.dumps(attest)}\n'
            f'[tenants.t]\nclasses.default = ["{requirement}"]\n',
            encoding="utf-8",
        )
        result = run_cli("explain", "x", "--tenant", "t", "--json", PRIVSDK_CONFIG=str(path))
    return result.returncode, json.loads(result.stdout)


# -- 4. Ollama matches model names case-insensitively --------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-oss:120b-CLOUD", "GEMMA4:Cloud", "Kimi-K2-Cloud"])
def test_an_ollama_cloud_model_in_any_case_is_refused_private_deployment(model: str, write_config: Any) -> None:
    with LoopbackServer(OpenAIWire(key="local")) as server:
        config = write_config(
            f'[targets.o]\noffering = "selfhosted.ollama"\nmodel = "{model}"\nendpoint = "{server.url}/v1"\n'
            f'[targets.local]\noffering = "selfhosted.ollama"\nmodel = "Llama3.2"\nendpoint = "{server.url}/v1"\n'
            '[tenants.t]\nclasses.default = ["private_deployment"]\n'
        )
        client = _client(config, PRIVSDK_TENANT="t")
        with pytest.raises(PolicyViolation, match="private_deployment"):
            client.chat("o", "hello")
        assert server.requests == []
        assert client.chat("local", "hello").text  # a local model, in any case, stays allowed
        client.close()
        assert len(server.requests) == 1


# -- 2. Calls that name no tenant ----------------------------------------------------------------------------------

TWO_TENANTS = """
[targets.oa]
offering = "openai.api"
model = "gpt-4o-mini"
endpoint = "{url}/v1"

[tenants.acme]
classes.default = ["no_training"]

[tenants.globex]
classes.default = ["zdr"]
"""


@pytest.fixture
def openai_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(OpenAIWire(key="sk-t")) as server:
        yield server
        assert server.errors == []


def _in_thread(fn: Any) -> BaseException | None:
    """Run ``fn`` in a new thread; the exception it raised, if any."""
    import threading

    caught: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            caught.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return caught[0] if caught else None


def test_a_thread_started_inside_a_scope_names_no_tenant_and_is_refused(
    openai_server: LoopbackServer, write_config: Any
) -> None:
    """The thread does not inherit the scope; the file has two tenants and no default: refuse, never the first."""
    import privsdk

    records: list[UsageRecord] = []
    client = _client(write_config(TWO_TENANTS.format(url=openai_server.url)), records)
    with privsdk.scope(tenant="globex"):
        error = _in_thread(lambda: client.chat("oa", "hello"))
    client.flush_usage()
    client.close()
    assert isinstance(error, PolicyViolation), error
    assert "no tenant named" in str(error) and "default_tenant" in str(error)
    assert openai_server.requests == []
    assert [(r.outcome, r.decision, r.tenant) for r in records] == [("refused", "refuse", "-")]
    cli = run_cli("explain", "oa", PRIVSDK_CONFIG=str(write_config(TWO_TENANTS.format(url="http://x"))))
    assert (cli.returncode, "--tenant: no tenant named" in cli.stderr) == (2, True), cli.stderr  # never a guess


def test_propagate_hands_the_scope_to_a_thread_and_an_executor(
    openai_server: LoopbackServer, write_config: Any
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import privsdk

    client = _client(write_config(TWO_TENANTS.format(url=openai_server.url)))

    def ask(_: int = 0) -> str:
        return client.chat("oa", "hello").text

    with privsdk.scope(tenant="globex"):
        error = _in_thread(privsdk.propagate(ask))
    assert isinstance(error, PolicyViolation) and "zdr" in str(error)  # globex's own rule, not "no tenant"
    with privsdk.scope(tenant="acme"), ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(privsdk.propagate(ask), range(3)))
    client.close()
    assert all(answers) and len(openai_server.requests) == 3


def test_propagate_reads_a_stream_in_the_scope_it_was_made_in() -> None:
    """A stream read after its scope ended (a web handler returns it) is read, each step, in the context taken where
    it was wrapped: a generator, an async generator, and iterators that are neither."""
    import asyncio

    import privsdk
    from privsdk.context import current

    def tenants() -> Iterator[str | None]:
        for _ in range(2):
            yield current().tenant

    class Tenants:  # an iterator that is no generator
        def __init__(self) -> None:
            self.left = 2

        def __iter__(self) -> Tenants:
            return self

        def __next__(self) -> str | None:
            if not self.left:
                raise StopIteration
            self.left -= 1
            return current().tenant

    async def atenants() -> AsyncIterator[str | None]:
        for _ in range(2):
            await asyncio.sleep(0)
            yield current().tenant

    with privsdk.scope(tenant="acme"):
        streams = [privsdk.propagate(tenants()), privsdk.propagate(Tenants())]
        astream = privsdk.propagate(atenants())
    with privsdk.scope(tenant="globex"):
        assert [list(s) for s in streams] == [["acme", "acme"]] * 2

        async def read() -> list[str | None]:
            return [t async for t in astream]

        assert asyncio.run(read()) == ["acme", "acme"]


def test_propagate_runs_an_async_function_in_the_scope_it_was_wrapped_in(
    openai_server: LoopbackServer, write_config: Any
) -> None:
    """An async job wrapped inside a scope and awaited after it (a web framework's background task) runs its body
    in the context taken where it was wrapped, as a sync job does; the wrapper stays an async function, which is
    how frameworks tell an async job from a sync one."""
    import asyncio
    import inspect

    import privsdk

    client = _client(write_config(TWO_TENANTS.format(url=openai_server.url)))

    async def ask(prompt: str) -> str:
        await asyncio.sleep(0)  # a step taken after the first: each runs in the copy
        return client.chat("oa", prompt).text

    with privsdk.scope(tenant="globex"):
        job = privsdk.propagate(ask)
    with privsdk.scope(tenant="acme"):
        allowed = privsdk.propagate(ask)
    assert inspect.iscoroutinefunction(job) and job.__name__ == "ask"
    # globex's own rule: not the acme scope awaiting it
    with pytest.raises(PolicyViolation, match="zdr"), privsdk.scope(tenant="acme"):
        asyncio.run(job("hello"))
    assert openai_server.requests == []
    assert asyncio.run(allowed("hello"))  # acme's, awaited with no scope at all
    client.close()
    assert len(openai_server.requests) == 1


def test_a_default_tenant_named_in_the_file_serves_calls_that_name_none(
    openai_server: LoopbackServer, write_config: Any
) -> None:
    client = _client(write_config('default_tenant = "acme"\n' + TWO_TENANTS.format(url=openai_server.url)))
    assert _in_thread(lambda: client.chat("oa", "hello")) is None
    client.close()
    assert len(openai_server.requests) == 1
    with pytest.raises(ConfigError, match="default_tenant 'nobody' is not one of the file's tenants"):
        load_policy({"PRIVSDK_CONFIG": str(write_config('default_tenant = "nobody"\n' + TWO_TENANTS))})


# -- 3. Environment attestations under a policy file ---------------------------------------------------------------

ZDR_TENANT = '[targets.oa]\noffering = "openai.api"\nmodel = "gpt-4o-mini"\nendpoint = "{url}/v1"\n' \
    '[tenants.t]\nclasses.default = ["zdr"]\n'  # fmt: skip


def test_privsdk_attest_cannot_lift_a_files_refusal(openai_server: LoopbackServer, write_config: Any) -> None:
    config = write_config(ZDR_TENANT.format(url=openai_server.url))
    with pytest.raises(ConfigError, match="does not let the environment add attestations") as caught:
        _client(config, PRIVSDK_ATTEST="openai:zdr")
    assert caught.value.where == "PRIVSDK_ATTEST" and "allow_env_attest = true" in str(caught.value)
    client = _client(config)
    with pytest.raises(PolicyViolation, match="zdr"):
        client.chat("oa", "hello")
    client.close()
    assert openai_server.requests == []


def test_a_file_that_allows_environment_attestations_takes_them(
    openai_server: LoopbackServer, write_config: Any
) -> None:
    config = write_config("allow_env_attest = true\n" + ZDR_TENANT.format(url=openai_server.url))
    client = _client(config, PRIVSDK_ATTEST="openai:zdr")
    assert client.chat("oa", "hello").text
    client.close()
    assert len(openai_server.requests) == 1
    with pytest.raises(ConfigError, match="allow_env_attest must be true or false"):
        load_policy({"PRIVSDK_CONFIG": str(write_config('allow_env_attest = "yes"\n'))})


@pytest.mark.parametrize(("text", "warned"), [("", True), ('[tenants.t]\nclasses.default = ["zdr"]\n', False)])
def test_check_warns_when_a_policy_file_requires_nothing(text: str, warned: bool, write_config: Any) -> None:
    result = run_cli("check", PRIVSDK_CONFIG=str(write_config(text)))
    assert result.returncode == 0, result.stderr
    assert ("requires nothing of any tenant: every call to every known target is allowed" in result.stderr) == warned


# -- 10. Secrets pasted into the file are never printed ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '[tenants.a]\ncredentials.openai = {{ api_key = "{secret}" }}\n',  # a valid variable name, but a key
        '[tenants.a]\ncredentials.openai = {{ api_key = "sk-live-{secret}" }}\n',  # not a variable name at all
        '[tenants.a]\ncredentials."sk-{secret}" = {{ api_key = "ACME_KEY" }}\n',  # pasted where the vendor goes
    ],
)
def test_a_key_pasted_where_a_variable_name_belongs_is_never_printed(text: str, write_config: Any) -> None:
    secret = "SKLIVE8F3A9C2B7D1E6F0A4B9C8D7E6F5A4B3C"
    config = write_config(text.format(secret=secret))
    with pytest.raises(ConfigError) as caught:
        Client(environ={"PRIVSDK_CONFIG": str(config)}, usage="none")
    assert secret not in f"{caught.value} {caught.value!r} {caught.value.hint}"
    assert str(config) in str(caught.value)  # it still says where to look
    cli = run_cli("check", PRIVSDK_CONFIG=str(config))
    assert secret not in cli.stdout + cli.stderr


def test_a_variable_name_that_is_not_set_is_named(write_config: Any) -> None:
    config = write_config(
        '[tenants.a]\nclasses.default = []\ncredentials.openai = { api_key = "ACME_OPENAI_API_KEY" }\n'
    )
    with pytest.raises(ConfigError, match="names ACME_OPENAI_API_KEY, which is not set"):
        Client(environ={"PRIVSDK_CONFIG": str(config)}, usage="none")


# -- 5. deadline_s bounds the whole call: stream reads, and every request of a multi-request embed -----------------


def test_a_stream_still_running_at_the_deadline_ends_with_a_timeout(openai_server: LoopbackServer) -> None:
    """Each chunk comes within the read timeout, but the stream as a whole would outlive deadline_s."""
    records: list[UsageRecord] = []
    client = Client(usage=records.append, credentials={"openai": {"api_key": "sk-t"}},
                    endpoints={"openai": f"{openai_server.url}/v1"}, timeout=5.0)  # fmt: skip
    assert client.chat("openai/gpt-4o-mini", "warm up: the SDK's first import is not part of the test").text
    client.flush_usage()
    records.clear()
    openai_server.fail(Drip(0.3))
    stream = client.chat("openai/gpt-4o-mini", "hello", stream=True, deadline_s=1.0, max_attempts=1)
    events: list[object] = []
    with pytest.raises(VendorTimeout):
        events.extend(stream)
    client.flush_usage()
    client.close()
    assert 0 < len(events) < 8 and not any(isinstance(e, StreamEnd) for e in events)
    assert [(r.outcome, r.error_class) for r in records] == [("error", "timeout")]


def _async_openai_client(openai_server: LoopbackServer) -> AsyncClient:
    return AsyncClient(usage="none", credentials={"openai": {"api_key": "sk-t"}},
                       endpoints={"openai": f"{openai_server.url}/v1"}, timeout=5.0)  # fmt: skip


def test_an_async_stream_still_running_at_the_deadline_ends_with_a_timeout(openai_server: LoopbackServer) -> None:
    async def run() -> list[object]:
        client = _async_openai_client(openai_server)
        events: list[object] = []
        try:
            assert (await client.chat("openai/gpt-4o-mini", "warm up")).text
            openai_server.fail(Drip(0.3))
            stream = await client.chat("openai/gpt-4o-mini", "hello", stream=True, deadline_s=1.0, max_attempts=1)
            with pytest.raises(VendorTimeout):
                async for event in stream:
                    events.append(event)
        finally:
            await client.aclose()
        return events

    events = asyncio.run(run())
    assert 0 < len(events) < 8 and not any(isinstance(e, StreamEnd) for e in events)


def test_an_async_streams_deadline_never_cancels_the_app_between_reads(openai_server: LoopbackServer) -> None:
    """The deadline passes while the app works between two events: the app's own await goes on undisturbed, the
    next read raises the timeout; and a stream read to its end before its deadline leaves nothing armed."""

    async def run() -> tuple[list[object], float]:
        client = _async_openai_client(openai_server)
        try:
            ended = await client.chat("openai/gpt-4o-mini", "hello", stream=True, deadline_s=0.5)
            assert [e async for e in ended][-1].__class__ is StreamEnd
            await asyncio.sleep(0.7)  # past that stream's deadline: nothing may cancel this task now
            stream = await client.chat("openai/gpt-4o-mini", "hello", stream=True, deadline_s=0.5, max_attempts=1)
            events: list[object] = [await anext(stream)]
            start = time.monotonic()
            await asyncio.sleep(0.7)  # the app's own work outlives the deadline
            slept = time.monotonic() - start
            with pytest.raises(VendorTimeout):
                events.append(await anext(stream))
        finally:
            await client.aclose()
        return events, slept

    events, slept = asyncio.run(run())
    assert len(events) == 1 and slept >= 0.69


def test_an_async_stream_the_app_drops_is_not_kept_alive_by_its_deadline(openai_server: LoopbackServer) -> None:
    """An app that stops reading and drops the stream (``break`` in ``async for``) lets it go at once: the deadline
    timer does not hold it (and its connection) until the deadline; and the stream is recorded as cancelled."""

    records: list[UsageRecord] = []

    async def run() -> weakref.ref[Any]:
        client = AsyncClient(usage=records.append, credentials={"openai": {"api_key": "sk-t"}},
                             endpoints={"openai": f"{openai_server.url}/v1"}, timeout=5.0)  # fmt: skip
        try:
            stream = await client.chat("openai/gpt-4o-mini", "hello", stream=True, deadline_s=60.0)
            async for _ in stream:
                break
            await anext(stream)  # a read that arms the deadline timer
            dropped = weakref.ref(stream)
            del stream
            gc.collect()
            return dropped
        finally:
            await client.aclose()

    assert asyncio.run(run())() is None
    assert [r.outcome for r in records] == ["cancelled"]  # recorded when dropped, as a sync stream is


def test_cancelling_the_task_that_reads_an_async_stream_stays_the_apps_cancellation(
    openai_server: LoopbackServer,
) -> None:
    async def run() -> BaseException | None:
        client = _async_openai_client(openai_server)
        try:
            openai_server.fail(Drip(0.5))
            stream = await client.chat("openai/gpt-4o-mini", "hello", stream=True, deadline_s=30.0, max_attempts=1)
            reader = asyncio.ensure_future(stream.text())
            await asyncio.sleep(0.2)  # the reader now waits for the next chunk
            reader.cancel()
            try:
                await reader
            except BaseException as exc:  # what the reader ended with is the point
                return exc
            return None
        finally:
            await client.aclose()

    assert isinstance(asyncio.run(run()), asyncio.CancelledError)


def test_a_titan_embed_of_several_texts_keeps_to_the_deadline(bedrock: LoopbackServer, write_config: Any) -> None:
    """Titan takes one text per request: the second request gets only what is left of deadline_s."""
    config = write_config(
        '[targets.titan]\noffering = "bedrock.runtime"\nmodel = "amazon.titan-embed-text-v2:0"\n'
        f'region = "eu-central-1"\nendpoint = "{bedrock.url}"\n'
    )
    client = _client(config)
    assert len(client.embed("titan", ["one", "two"]).vectors) == 2  # without the delays, both come back
    bedrock.fail(Delay(0.7), Delay(0.7))
    with pytest.raises(VendorTimeout):
        client.embed("titan", ["one", "two"], deadline_s=1.0, max_attempts=1)
    client.close()


# -- 7. Bad input: a named privsdk error before any network, never echoing the input -------------------------------

LONE = "secret CANARY7 \ud800 text"  # a lone surrogate: no JSON encoder or vendor takes it


@pytest.mark.parametrize(
    "call",
    [
        lambda c, m: c.chat(m, LONE),
        lambda c, m: c.chat(m, [{"role": "system", "content": LONE}, {"role": "user", "content": "hi"}]),
        lambda c, m: c.chat(m, [{"role": "user", "content": [{"type": "text", "text": LONE}]}]),
        lambda c, m: c.chat(
            m, "hi", stream=True, tools=[{"type": "function", "function": {"name": "f", "description": LONE}}]
        ),
        lambda c, m: c.chat(m, [{"role": "assistant", "content": "", "tool_calls": [{"id": "x"}]}, "hi"]),
        lambda c, m: c.chat(m, [{"role": "assistant", "tool_calls": [{"id": "x", "function": {"name": 3}}]}]),
        lambda c, m: c.chat(m, [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]),
        lambda c, m: c.embed(m, ["fine", LONE]),
        lambda c, m: c.rerank(m, LONE, ["doc"]),
        lambda c, m: c.rerank(m, "query", ["doc", LONE]),
    ],
    ids=[
        "prompt",
        "system",
        "text-part",
        "tool",
        "tool-call-no-function",
        "tool-call-bad-name",
        "image-part",
        "embed",
        "rerank-query",
        "rerank-doc",
    ],
)
@pytest.mark.parametrize("vendor", ["openai", "azure", "selfhosted", "cohere"])
def test_bad_input_is_a_named_error_before_any_request(vendor: str, call: Any, write_config: Any) -> None:
    from privsdk.errors import InvalidInput
    from tests.wire.cohere import CohereApp

    app = CohereApp() if vendor == "cohere" else OpenAIWire(key="k")
    with LoopbackServer(app) as server:
        offering, model, url = {
            "openai": ("openai.api", "gpt-4o-mini", f"{server.url}/v1"),
            "azure": ("azure.openai", "gpt-4o", server.url),
            "selfhosted": ("selfhosted.vllm", "llama-3.1-8b-instruct", f"{server.url}/v1"),
            "cohere": ("cohere.saas", "command-r-plus", server.url),
        }[vendor]
        extra = 'api_version = "2024-10-21"\n' if vendor == "azure" else ""
        config = write_config(f'[targets.t]\noffering = "{offering}"\nmodel = "{model}"\nendpoint = "{url}"\n{extra}')
        client = Client(environ={"PRIVSDK_CONFIG": str(config)}, usage="none", credentials={vendor: {"api_key": "k"}})
        with pytest.raises(InvalidInput) as caught:
            call(client, "t")
        client.close()
        assert server.requests == []
    text = f"{caught.value} {caught.value!r}"
    assert "CANARY7" not in text and "\ud800" not in text and caught.value.__cause__ is None
    assert isinstance(caught.value, ValueError)  # callers catching ValueError for bad input still do


def test_bedrock_rerank_on_an_unexpected_body_is_a_vendor_error(bedrock: LoopbackServer, write_config: Any) -> None:
    from privsdk.errors import Unavailable
    from tests.wire.server import Status

    config = write_config(
        '[targets.r]\noffering = "bedrock.runtime"\nmodel = "cohere.rerank-v3-5:0"\n'
        f'region = "eu-central-1"\nendpoint = "{bedrock.url}"\n'
    )
    client = _client(config)
    odd = json.dumps({"id": "x", "message": "reranked CANARY7 docs"}).encode()
    bedrock.fail(Status(200, body=odd), Status(200, body=b"[1, 2]"))
    for _ in range(2):
        with pytest.raises(Unavailable) as caught:
            client.rerank("r", "query", ["doc one", "doc two"], max_attempts=1)
        assert "CANARY7" not in repr(caught.value) and caught.value.__cause__ is None
    assert [d.index for d in client.rerank("r", "query", ["doc one", "doc two"]).results]  # then a real answer
    client.close()


# -- 8. Exception chains hold no vendor text; 9. the SDKs' own debug logs hold no content ---------------------------

CANARY = "CANARY8q" + "z3"  # built, so this file's own source lines in a traceback never hold it


def _failing_call(server: LoopbackServer) -> BaseException:
    from tests.wire.openai import error_body
    from tests.wire.server import Status

    client = Client(usage="none", credentials={"openai": {"api_key": "sk-t"}},
                    endpoints={"openai": f"{server.url}/v1"}, timeout=5.0)  # fmt: skip
    body = error_body(f"Invalid prompt: {CANARY}", code="invalid_value")
    server.fail(Status(400, {"x-request-id": "req_7f3a9"}, body))
    try:
        client.chat("openai/gpt-4o-mini", f"summarise {CANARY}")
    except BaseException as exc:  # the error is what the test looks at
        return exc
    finally:
        client.close()
    raise AssertionError("the call was to fail")


def test_a_privsdk_error_chains_no_vendor_exception_by_default(openai_server: LoopbackServer) -> None:
    import traceback

    from privsdk.errors import BadRequest

    error = _failing_call(openai_server)
    assert isinstance(error, BadRequest)
    assert (error.status, error.code, error.request_id) == (400, "invalid_value", "req_7f3a9")  # kept as fields
    assert error.__cause__ is None and error.__context__ is None and error.__suppress_context__
    assert CANARY not in "".join(traceback.format_exception(error))


def test_privsdk_debug_chain_keeps_the_vendor_exception(
    openai_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import traceback

    import openai

    monkeypatch.setenv("PRIVSDK_DEBUG_CHAIN", "1")
    error = _failing_call(openai_server)
    assert isinstance(error.__cause__, openai.BadRequestError)
    assert CANARY in "".join(traceback.format_exception(error))  # what the default keeps out of an app's logs


SDK_LOGS_SCRIPT = """
import logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s %(message)s")
from privsdk.client import Client
from tests.wire.bedrock import BedrockWire
from tests.wire.server import LoopbackServer
with LoopbackServer(BedrockWire()) as server:
    client = Client(usage="none", credentials={"bedrock": {"aws_access_key_id": "AKIDX", "aws_secret_access_key": "x"}},
                    endpoints={"bedrock": server.url})
    client.chat("bedrock/anthropic.claude-3-haiku-20240307-v1:0", "summarise " + sys.argv[1])
    client.close()
print("sent", len(server.requests))
"""


@pytest.mark.parametrize(("opt_out", "leaks"), [("", False), ("1", True)])
def test_vendor_sdk_debug_logs_hold_no_content_unless_opted_out(opt_out: str, leaks: bool) -> None:
    """An app logging everything at DEBUG: botocore would log the prompt and the answer; privsdk keeps it out."""
    import subprocess
    import sys

    from tests.conftest import REPO, clean_env

    env = clean_env(PRIVSDK_SDK_DEBUG_LOGS=opt_out, AWS_CONFIG_FILE="/dev/null", AWS_REGION="eu-central-1",
                    AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_EC2_METADATA_DISABLED="true")  # fmt: skip
    run = subprocess.run([sys.executable, "-c", SDK_LOGS_SCRIPT, CANARY], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120, check=False)  # fmt: skip
    assert run.returncode == 0 and "sent 1" in run.stdout, run.stderr[-3000:]
    assert (CANARY in run.stderr) == leaks  # with the opt-out, botocore's own records show the prompt
    assert ("botocore" in run.stderr) == leaks


# -- 6. One AsyncClient across successive event loops -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("vendor", "offering", "model"),
    [("cohere", "cohere.saas", "command-r-plus"), ("mistral", "mistral.api", "mistral-small-latest")],
)
def test_an_async_client_serves_two_asyncio_runs(vendor: str, offering: str, model: str, write_config: Any) -> None:
    """asyncio.run(...) twice on one AsyncClient: the second loop gets its own HTTP pool, not the closed loop's."""
    from tests.wire.cohere import CohereApp
    from tests.wire.mistral import MistralApp

    with LoopbackServer(CohereApp() if vendor == "cohere" else MistralApp()) as server:
        config = write_config(f'[targets.t]\noffering = "{offering}"\nmodel = "{model}"\nendpoint = "{server.url}"\n')
        client = AsyncClient(environ={"PRIVSDK_CONFIG": str(config)}, usage="none",
                             credentials={vendor: {"api_key": "k"}}, timeout=5.0)  # fmt: skip

        async def once() -> tuple[str, str, int]:
            answer = await client.chat("t", "hello")
            stream = await client.chat("t", "hello", stream=True)
            streamed = await stream.text()
            vectors = await client.embed("t", ["hello"]) if vendor == "mistral" else None
            return answer.text, streamed, len(vectors.vectors) if vectors else 1

        first = asyncio.run(once())
        second = asyncio.run(once())  # a new loop: before, RuntimeError('Event loop is closed')

        async def close() -> None:
            await client.aclose()

        asyncio.run(close())
        assert first == second and all(first)
        assert server.errors == []


# -- 12. explain says when the target's adapter is not installed ----------------------------------------------------


def _explain_without_site_packages(*args: str) -> Any:
    """``privsdk explain`` from the source alone: no site-packages, so no adapter distribution is installed."""
    import subprocess
    import sys

    from tests.conftest import REPO

    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-S", "-m", "privsdk", "explain", *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


@pytest.mark.parametrize(("target", "vendor", "extra"), [("bedrock/anthropic.claude-3", "bedrock", "bedrock"),
                                                         ("azure/gpt-4o", "azure", "openai")])  # fmt: skip
def test_explain_says_the_adapter_is_missing_with_the_install_command(target: str, vendor: str, extra: str) -> None:
    as_json = _explain_without_site_packages(target, "--json")
    assert as_json.returncode == 0, as_json.stderr
    out = json.loads(as_json.stdout)
    command = f"pip install 'privsdk[{extra}]'"
    assert out["decision"] == "allow" and out["adapter"] == {"vendor": vendor, "installed": False, "install": command}
    text = _explain_without_site_packages(target)
    missing = f"adapter: the {vendor} SDK (or its privsdk adapter) is not installed: the call would fail"
    assert f"{missing} (install it: {command})" in text.stdout


def test_explain_says_nothing_is_missing_when_the_adapter_is_installed() -> None:
    result = run_cli("explain", "bedrock/anthropic.claude-3", "--json")
    assert json.loads(result.stdout)["adapter"] == {"vendor": "bedrock", "installed": True, "install": None}
    assert "adapter:" not in run_cli("explain", "bedrock/anthropic.claude-3").stdout


# -- 11. OpenAI audio output and web search under ZDR and BAA ------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "requirement", "attest", "feature"),
    [
        ("openai/gpt-4o-audio-preview", "zdr", "openai:zdr", "audio_output"),  # audio outputs are kept for an hour
        ("openai/gpt-4o-mini", "zdr", "openai:zdr", "web_search"),  # third-party search services keep their own
        ("openai/gpt-4o-mini", "hipaa_baa", "openai:baa", "web_search"),  # live web search is not BAA-covered
        ("azure/gpt-4o", "hipaa_baa", "azure:baa", "audio_output"),  # the BAA is confirmed for text only
    ],
)
def test_a_feature_that_keeps_content_fails_the_requirement_its_source_names(
    target: str, requirement: str, attest: str, feature: str
) -> None:
    env = {"PRIVSDK_REQUIRE": requirement, "PRIVSDK_ATTEST": attest}
    plain = run_cli("explain", target, "--json", **env)
    assert (plain.returncode, json.loads(plain.stdout)["decision"]) == (0, "allow"), plain.stderr
    used = run_cli("explain", target, "--feature", feature, "--json", **env)
    out = json.loads(used.stdout)
    assert (used.returncode, out["decision"]) == (3, "refuse")
    (unmet,) = out["unmet"]
    assert unmet["requirement"] == requirement and unmet["source"].startswith("https://")


@pytest.mark.parametrize(
    "extra",
    [{"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}, {"web_search_options": {}}],
    ids=["audio", "web-search"],
)
def test_vendor_fields_that_turn_such_a_feature_on_are_judged(
    extra: dict[str, Any], openai_server: LoopbackServer
) -> None:
    client = Client(
        environ={"PRIVSDK_REQUIRE": "zdr", "PRIVSDK_ATTEST": "openai:zdr"},
        usage="none",
        credentials={"openai": {"api_key": "sk-t"}},
        endpoints={"openai": f"{openai_server.url}/v1"},
    )
    with pytest.raises(PolicyViolation, match="zdr"):
        client.chat("openai/gpt-4o-mini", "hello", extra=extra)
    assert openai_server.requests == []
    assert client.chat("openai/gpt-4o-mini", "hello").text  # the same call without them is allowed and sent
    client.close()
    assert len(openai_server.requests) == 1


# -- a bad environment is an error where a guarded client is built ------------------------------------------------

_BUILT: dict[str, Any] = {
    "openai": lambda sdk: sdk.OpenAI(api_key="sk-t", base_url="http://127.0.0.1:9/v1"),
    "cohere": lambda sdk: sdk.ClientV2(api_key="co-t"),
    "mistralai": lambda sdk: sdk.Mistral(api_key="mi-t"),
    "boto3": lambda sdk: sdk.client("bedrock-runtime", region_name="eu-central-1", **AWS),
    "genai": lambda sdk: sdk.Client(api_key="ge-t"),
}


@pytest.mark.parametrize("name", sorted(_BUILT))
def test_a_bad_privsdk_variable_is_a_config_error_as_a_dropin_or_guarded_client_is_built(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """design.md: a bad value is a clear error at client construction naming the variable. A drop-in client (and
    privsdk.guard() of a client the app built) took it and refused its first request instead, as a
    PolicyViolation that an app catching ConfigError at start-up never saw."""
    import importlib

    import privsdk

    dropin = importlib.import_module(f"privsdk.{name}")
    vendor = importlib.import_module({"genai": "google.genai", "mistralai": "mistralai.client"}.get(name, name))
    monkeypatch.setenv("PRIVSDK_REQUIRE", "no_such_requirement")
    with pytest.raises(ConfigError, match="PRIVSDK_REQUIRE: unknown requirement"):
        _BUILT[name](dropin)
    built = _BUILT[name](vendor)
    with pytest.raises(ConfigError, match="PRIVSDK_REQUIRE: unknown requirement"):
        privsdk.guard(built)
    monkeypatch.setenv("PRIVSDK_REQUIRE", "no_training")  # the next client reads the environment afresh
    assert privsdk.guard(_BUILT[name](vendor)) is not None


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("PRIVSDK_CONFIG", "", "PRIVSDK_CONFIG: is set but empty"),  # PRIVSDK_CONFIG=$POLICY_FILE, POLICY_FILE unset
        ("PRIVSDK_CONFIG", "  ", "PRIVSDK_CONFIG: is set but empty"),
        ("PRIVSDK_TENANTS", "", "PRIVSDK_TENANTS: is set but empty"),
        ("PRIVSDK_REQUIRE", ",", "PRIVSDK_REQUIRE: holds commas and no item"),
        ("PRIVSDK_ATTEST", " , ", "PRIVSDK_ATTEST: holds commas and no item"),
    ],
)
def test_a_policy_variable_set_to_nothing_is_a_config_error_not_no_policy(
    variable: str, value: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read as unset, an empty PRIVSDK_CONFIG dropped the whole policy without a word: the drop-in was built and
    sent what the file refused, and `privsdk check` exited 0."""
    import privsdk.openai

    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=says):
        _BUILT["openai"](privsdk.openai)
    done = run_cli("check", **{variable: value})
    assert done.returncode == 2 and says in done.stderr, done.stderr


def test_an_otlp_usage_store_without_the_otlp_extra_is_a_config_error_as_a_dropin_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """design.md: every variable is checked where a guarded client is built. PRIVSDK_USAGE=otlp without the extra
    built the drop-in, and refused its first request as a PolicyViolation instead."""
    import privsdk.openai

    # The otlp extra is not installed: neither it nor the modules another test may have imported are found.
    for module in ("opentelemetry", "opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http"):
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setenv("PRIVSDK_USAGE", "otlp")
    with pytest.raises(ConfigError, match="PRIVSDK_USAGE: otlp needs opentelemetry"):
        _BUILT["openai"](privsdk.openai)
