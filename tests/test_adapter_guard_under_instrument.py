"""Under ``privsdk.instrument()``, a ``privsdk.Client``'s cohere requests are judged by the Client's own guard.

The cohere adapter builds a cohere ``ClientV2``, which ``instrument()`` guards as it is built, with the process-wide
guard and the drop-in's reroute hooks; the adapter then guarded it with the Client's guard, which left it as it was.
So a Client built with a policy of its own (``Client(policy=...)``, ``Client(environ=...)``) had its requests judged by
the process-wide policy: what its own policy refuses at the wire was sent, and what it allows could be refused. Now
the Client's guard replaces the one ``instrument()`` put there, for that client alone.

The real cohere SDK sends over real HTTP to a loopback server (``tests/wire``) speaking Cohere's v2 API.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cohere
import pytest

import privsdk
from privsdk.catalogue import DATA_DIR, Catalogue
from privsdk.outbound.transport import is_guarded
from privsdk.types import Image, Message, Text, TextDelta
from tests.openai_support import reset_default_guard
from tests.wire.cohere import CohereApp
from tests.wire.server import LoopbackServer

KEY = "co-under-instrument"
MODEL = "command-a-03-2025"
TEXT = "A cat, asleep"
#: A message with an image: the guard reads its ``image_url`` part as the feature ``file_inputs``, which the call names
#: nowhere else (privsdk.Client plans a call on the features it is given).
WITH_IMAGE = [Message("user", (Text("What is in this picture?"), Image(url="https://example.com/cat.png")))]

#: A reading of Cohere's platform stricter than privsdk's catalogue: images sent in are shared with another provider.
#: Only the Client given this catalogue holds it; the process-wide guard holds privsdk's own.
STRICTER = """
[[offerings.limits]]
features = ["file_inputs"]
note = "A deployment's own reading: images sent in go to a moderation provider."
[offerings.limits.facts.no_provider_sharing]
value = false
source = "SEED-COH"
as_of = 2024-10-08
note = "This test's own reading."

"""

#: The target the Client calls: Cohere's platform, at the loopback server.
TARGET = """
[targets.co]
offering = "cohere.saas"
model = "{model}"
endpoint = "{url}"
"""
#: ... for a tenant that requires no_provider_sharing.
TENANT = """
[tenants.default]
classes.default = ["no_provider_sharing"]
"""
POLICY = TENANT + TARGET


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """Cohere's API on loopback, which the process-wide policy (the environment) declares and lets every request
    through to."""
    for name in ("PRIVSDK_CONFIG", "PRIVSDK_REQUIRE", "PRIVSDK_ATTEST", "PRIVSDK_TENANTS", "CO_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with LoopbackServer(CohereApp(TEXT)) as running:
        monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{running.url}=cohere.saas")
        monkeypatch.setenv("PRIVSDK_USAGE", "none")
        reset_default_guard()
        yield running
        assert running.errors == []
    reset_default_guard()


@pytest.fixture
def instrumented() -> Iterator[None]:
    privsdk.instrument()
    try:
        yield
    finally:
        privsdk.uninstrument()


def stricter_catalogue(tmp_path: Path) -> Catalogue:
    """privsdk's catalogue, with the limit above on Cohere's platform (``cohere.saas``, the file's first offering)."""
    directory = tmp_path / "catalogue"
    shutil.copytree(DATA_DIR, directory, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = directory / "cohere.toml"
    text = path.read_text(encoding="utf-8")
    second = text.index("[[offerings]]", text.index("[[offerings]]") + 1)
    path.write_text(text[:second] + STRICTER + text[second:], encoding="utf-8")
    return Catalogue(directory)


def own_client(tmp_path: Path, url: str, *, aio: bool = False) -> Any:
    """A privsdk.Client with a policy and a catalogue of its own: its tenant requires no_provider_sharing, which an
    image sent to Cohere's platform breaks, by its catalogue (not the process-wide one's)."""
    catalogue = stricter_catalogue(tmp_path)
    config = tmp_path / "own.toml"
    config.write_text(POLICY.format(model=MODEL, url=url), encoding="utf-8")
    policy = privsdk.load_policy({"PRIVSDK_CONFIG": str(config), "PRIVSDK_USAGE": "none"}, catalogue)
    make = privsdk.AsyncClient if aio else privsdk.Client
    return make(policy=policy, catalogue=catalogue, usage="none", credentials={"cohere": {"api_key": KEY}})


def send(client: Any, way: str, messages: Any) -> str:
    """The answer's text to ``messages``, sent to the target ``co`` the ``way`` given."""
    if way == "chat":
        return str(client.chat("co", messages).text)
    if way == "stream":
        return "".join(event.text for event in client.chat("co", messages, stream=True) if isinstance(event, TextDelta))

    async def run() -> str:
        return str((await client.chat("co", messages)).text)

    return asyncio.run(run())


@pytest.mark.parametrize("way", ["chat", "stream", "async chat"])
@pytest.mark.usefixtures("instrumented")
def test_what_the_clients_own_policy_refuses_at_the_wire_is_not_sent(
    way: str, server: LoopbackServer, tmp_path: Path
) -> None:
    """An image in a chat, which the Client's own policy refuses (the guard reads it at the wire) and the process-wide
    policy allows: under instrument() it was sent to Cohere, judged by the process-wide guard."""
    aio = way == "async chat"
    client = own_client(tmp_path, server.url, aio=aio)
    try:
        with pytest.raises(privsdk.PolicyViolation, match="no_provider_sharing") as refused:
            send(client, way, WITH_IMAGE)
        assert "file_inputs" in str(refused.value)
        assert server.requests == []
        # Text alone meets the Client's policy: sent, and answered.
        assert send(client, way, "What is in this picture?") == TEXT
        assert len(server.requests) == 1
    finally:
        asyncio.run(client.aclose()) if aio else client.close()


@pytest.mark.usefixtures("instrumented")
def test_what_the_clients_own_policy_allows_is_not_refused_by_the_process_wide_one(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The other way round: the process-wide policy requires no_training, which Cohere's platform does not meet; a
    Client configured by a mapping of its own (a policy file naming the target, no requirement) allows the call. Its
    chat was refused under instrument()."""
    monkeypatch.setenv("PRIVSDK_REQUIRE", "no_training")
    reset_default_guard()
    config = tmp_path / "targets.toml"
    config.write_text(TARGET.format(model=MODEL, url=server.url), encoding="utf-8")
    own = {"PRIVSDK_CONFIG": str(config), "PRIVSDK_USAGE": "none"}
    client = privsdk.Client(environ=own, credentials={"cohere": {"api_key": KEY}})
    try:
        assert client.chat("co", "Hello").text == TEXT
    finally:
        client.close()
    assert len(server.requests) == 1
    # The process-wide policy still judges the clients the app builds: instrument() guards them as before.
    app_client = cohere.ClientV2(api_key=KEY, base_url=server.url, max_retries=0)
    with pytest.raises(privsdk.PolicyViolation, match="no_training"):
        app_client.chat(model=MODEL, messages=[cohere.UserChatMessageV2(content="Hello")])
    assert len(server.requests) == 1


@pytest.mark.usefixtures("instrumented")
def test_the_adapters_cohere_client_sends_through_the_clients_guard_without_reroutes(
    server: LoopbackServer, tmp_path: Path
) -> None:
    """What the Client's cohere client sends through: the Client's guard, and no reroute hook (the Client reroutes by
    itself); instrument() had left the process-wide guard and the drop-in's reroute hooks there."""
    client = own_client(tmp_path, server.url)
    try:
        assert client.chat("co", "Hello").text == TEXT
        (adapter,) = client._core._adapters.values()
        http = adapter._client._client_wrapper.httpx_client.httpx_client
        assert is_guarded(http)
        transports = [http._transport, *http._mounts.values()]
        assert all(t.guard is client._core.guard and t.reroute is None for t in transports if t is not None)
    finally:
        client.close()


# -- Bedrock: boto3's bedrock-runtime client --------------------------------------------------------------------
#
# The Bedrock adapter builds its boto3 clients on a botocore session, which instrument() guards as they are built (the
# process-wide guard, the drop-in's rerouter); guarding them with the Client's guard left them as they were. Real boto3
# (and aiobotocore) send over real HTTP to the loopback Bedrock runtime (tests/wire/bedrock.py).

BEDROCK_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
AWS_KEYS = {"aws_access_key_id": "AKIDFAKE", "aws_secret_access_key": "fake-secret"}
PNG = b"\x89PNG\r\n\x1a\nfake"
#: An image in a chat: the guard reads it in the Converse request as the feature ``file_inputs``.
BEDROCK_IMAGE = [Message("user", (Text("What is in this picture?"), Image(PNG, media_type="image/png")))]
#: A reading of Bedrock stricter than privsdk's catalogue, held only by the Client given it (see STRICTER).
BEDROCK_STRICTER = """
[[offerings.limits]]
features = ["file_inputs"]
note = "A deployment's own reading: images sent in go to a moderation provider."
[offerings.limits.facts.no_provider_sharing]
value = false
source = "BR-AD"
as_of = 2026-11-22
note = "This test's own reading."
"""
BEDROCK_TARGET = """
[targets.br]
offering = "bedrock.runtime"
model = "{model}"
region = "eu-central-1"
endpoint = "{url}"
"""


@pytest.fixture(scope="module")
def _bedrock_running() -> Iterator[LoopbackServer]:
    from tests.wire.bedrock import BedrockWire

    with LoopbackServer(BedrockWire()) as running:
        yield running


@pytest.fixture
def bedrock(
    _bedrock_running: LoopbackServer, monkeypatch: pytest.MonkeyPatch, no_machine_aws: None
) -> Iterator[LoopbackServer]:
    """The loopback Bedrock runtime, which the process-wide policy (the environment) declares and lets every request
    through to; boto3 sees none of the machine's AWS configuration."""
    for name in ("PRIVSDK_CONFIG", "PRIVSDK_REQUIRE", "PRIVSDK_ATTEST", "PRIVSDK_TENANTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{_bedrock_running.url}=bedrock.runtime")
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    reset_default_guard()
    _bedrock_running.requests.clear()
    _bedrock_running.errors.clear()
    yield _bedrock_running
    assert _bedrock_running.errors == []
    reset_default_guard()


def bedrock_client(tmp_path: Path, url: str, *, aio: bool = False) -> Any:
    """A privsdk.Client with a policy and a catalogue of its own: its tenant requires no_provider_sharing, which an
    image sent to Bedrock breaks, by its catalogue (not the process-wide one's). The account's attested retention mode
    (``default``) meets it otherwise."""
    directory = tmp_path / "catalogue"
    shutil.copytree(DATA_DIR, directory, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = directory / "bedrock.toml"  # one offering, bedrock.runtime: the limit goes at its end
    path.write_text(path.read_text(encoding="utf-8") + BEDROCK_STRICTER, encoding="utf-8")
    catalogue = Catalogue(directory)
    config = tmp_path / "own.toml"
    target = BEDROCK_TARGET.format(model=BEDROCK_MODEL, url=url) + 'attest = ["data_retention_mode=default"]\n'
    config.write_text(TENANT + target, encoding="utf-8")
    policy = privsdk.load_policy({"PRIVSDK_CONFIG": str(config), "PRIVSDK_USAGE": "none"}, catalogue)
    make = privsdk.AsyncClient if aio else privsdk.Client
    return make(policy=policy, catalogue=catalogue, usage="none", credentials={"bedrock": AWS_KEYS}, timeout=5.0)


def bedrock_send(client: Any, way: str, messages: Any) -> str:
    """The answer's text to ``messages``, sent to the target ``br`` the ``way`` given."""
    if way == "chat":
        return str(client.chat("br", messages).text)
    if way == "stream":
        return "".join(event.text for event in client.chat("br", messages, stream=True) if isinstance(event, TextDelta))

    async def run() -> str:
        if way == "async chat":
            return str((await client.chat("br", messages)).text)
        stream = await client.chat("br", messages, stream=True)
        return "".join([event.text async for event in stream if isinstance(event, TextDelta)])

    return asyncio.run(run())


def app_boto3_client(url: str) -> Any:
    """A boto3 client the app builds (under instrument(): guarded as it is built, by the process-wide guard)."""
    import boto3
    from botocore.config import Config

    once = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)
    return boto3.client("bedrock-runtime", region_name="eu-central-1", endpoint_url=url, config=once, **AWS_KEYS)


def bedrock_hooks(client: Any) -> Any:
    """The guard's handlers on a botocore client: what judges its requests (``_guard``), and its rerouter."""
    return client._endpoint.http_session._privsdk_hooks


@pytest.mark.parametrize("way", ["chat", "stream", "async chat", "async stream"])
@pytest.mark.usefixtures("instrumented")
def test_what_the_clients_own_policy_refuses_at_bedrocks_wire_is_not_sent(
    way: str, bedrock: LoopbackServer, tmp_path: Path
) -> None:
    """An image in a Bedrock chat, which the Client's own policy refuses (the guard reads it at the wire) and the
    process-wide policy allows: under instrument() it was sent to Bedrock, judged by the process-wide guard."""
    aio = way.startswith("async")
    client = bedrock_client(tmp_path, bedrock.url, aio=aio)
    try:
        with pytest.raises(privsdk.PolicyViolation, match="no_provider_sharing") as refused:
            bedrock_send(client, way, BEDROCK_IMAGE)
        assert "file_inputs" in str(refused.value)
        assert bedrock.requests == []
        # Text alone meets the Client's policy: sent, and answered.
        assert bedrock_send(client, way, "Hello") == "You said: Hello"
        assert len(bedrock.requests) == 1
    finally:
        asyncio.run(client.aclose()) if aio else client.close()
    # The app's own boto3 clients are judged by the process-wide policy, which allows the image.
    image = {"image": {"format": "png", "source": {"bytes": PNG}}}
    app_client = app_boto3_client(bedrock.url)
    app_client.converse(modelId=BEDROCK_MODEL, messages=[{"role": "user", "content": [{"text": "Hi"}, image]}])
    assert len(bedrock.requests) == 2


@pytest.mark.usefixtures("instrumented")
def test_what_the_clients_own_policy_allows_on_bedrock_is_not_refused_by_the_process_wide_one(
    bedrock: LoopbackServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The other way round: the process-wide policy requires zdr, which Bedrock meets only when attested; a Client
    configured by a mapping of its own (a policy file naming the target, no requirement) allows the call. Its chat was
    refused under instrument()."""
    monkeypatch.setenv("PRIVSDK_REQUIRE", "zdr")
    reset_default_guard()
    config = tmp_path / "targets.toml"
    config.write_text(BEDROCK_TARGET.format(model=BEDROCK_MODEL, url=bedrock.url), encoding="utf-8")
    own = {"PRIVSDK_CONFIG": str(config), "PRIVSDK_USAGE": "none"}
    client = privsdk.Client(environ=own, credentials={"bedrock": AWS_KEYS}, timeout=5.0)
    try:
        assert client.chat("br", "Hello").text == "You said: Hello"
        assert "".join(e.text for e in client.chat("br", "Hi", stream=True) if isinstance(e, TextDelta)) == (
            "You said: Hi"
        )
    finally:
        client.close()
    assert len(bedrock.requests) == 2
    # The process-wide policy still judges the clients the app builds: instrument() guards them as before.
    app_client = app_boto3_client(bedrock.url)
    with pytest.raises(privsdk.PolicyViolation, match="zdr"):
        app_client.converse(modelId=BEDROCK_MODEL, messages=[{"role": "user", "content": [{"text": "Hello"}]}])
    assert len(bedrock.requests) == 2


@pytest.mark.usefixtures("instrumented")
def test_the_adapters_boto3_client_sends_through_the_clients_guard_without_reroutes(
    bedrock: LoopbackServer, tmp_path: Path
) -> None:
    """What the Client's boto3 client sends through: the Client's guard, and no rerouter (the Client reroutes by
    itself); instrument() had left the process-wide guard and the drop-in's rerouter there. An app's client built
    alongside keeps both."""
    from privsdk_bedrock import reroute

    from privsdk.outbound.botocore_seam import is_guarded as botocore_guarded

    client = bedrock_client(tmp_path, bedrock.url)
    try:
        assert client.chat("br", "Hello").text == "You said: Hello"
        (adapter,) = client._core._adapters.values()
        (sdk_client,) = adapter._clients._clients.values()
        assert botocore_guarded(sdk_client)
        hooks = bedrock_hooks(sdk_client)
        assert hooks._guard is client._core.guard and hooks._reroute is None
    finally:
        client.close()
    app_client = app_boto3_client(bedrock.url)
    assert botocore_guarded(app_client)
    assert bedrock_hooks(app_client)._guard is None and bedrock_hooks(app_client)._reroute is reroute.send


@pytest.mark.usefixtures("instrumented")
def test_guarding_a_client_instrument_guarded_with_a_guard_replaces_its_guard(bedrock: LoopbackServer) -> None:
    """boto3 and aiobotocore: guarding a client that instrument() guarded as it was built with a guard of the app's
    own replaces the process-wide guard (boto3's keeps the drop-in's rerouter; aiobotocore's is never rerouted); a
    plain privsdk.guard() afterwards leaves it as it is."""
    import aiobotocore.session
    from botocore.config import Config
    from privsdk_bedrock import dropin, reroute

    from privsdk.outbound.judge import Guard
    from privsdk.usage import open_recorder

    strict = privsdk.load_policy(
        {"PRIVSDK_ENDPOINTS": f"{bedrock.url}=bedrock.runtime", "PRIVSDK_REQUIRE": "zdr", "PRIVSDK_USAGE": "none"}
    )
    own = Guard(strict, recorder=open_recorder("none"))
    messages = [{"role": "user", "content": [{"text": "Hello"}]}]

    app_client = app_boto3_client(bedrock.url)
    app_client.converse(modelId=BEDROCK_MODEL, messages=messages)  # the process-wide policy allows it
    assert dropin.guard_client(app_client, guard=own) is app_client
    assert privsdk.guard(app_client) is app_client
    assert bedrock_hooks(app_client)._guard is own and bedrock_hooks(app_client)._reroute is reroute.send
    with pytest.raises(privsdk.PolicyViolation, match="zdr"):
        app_client.converse(modelId=BEDROCK_MODEL, messages=messages)
    assert len(bedrock.requests) == 1

    async def aio() -> None:
        once = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)
        session = aiobotocore.session.get_session()
        options = {"region_name": "eu-central-1", "endpoint_url": bedrock.url, "config": once, **AWS_KEYS}
        async with session.create_client("bedrock-runtime", **options) as client:
            await client.converse(modelId=BEDROCK_MODEL, messages=messages)
            assert bedrock_hooks(client)._guard is None
            assert dropin.guard_client(client, guard=own) is client
            assert privsdk.guard(client) is client
            assert bedrock_hooks(client)._guard is own and bedrock_hooks(client)._reroute is None
            with pytest.raises(privsdk.PolicyViolation, match="zdr"):
                await client.converse(modelId=BEDROCK_MODEL, messages=messages)

    asyncio.run(aio())
    assert len(bedrock.requests) == 2
