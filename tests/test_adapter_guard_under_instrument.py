"""Under ``privsdk.instrument()``, a ``privsdk.Client``'s requests are judged by the Client's own guard.

The cohere and mistral adapters build their SDK's client (cohere ``ClientV2``, mistralai ``Mistral``, whose
``BaseSDK.__init__`` takes the configuration), which ``instrument()`` guards as it is built, with the process-wide guard
and the drop-in's reroute hooks; the adapter then guarded it with the Client's guard, which left it as it was. So a
Client built with a policy of its own (``Client(policy=...)``, ``Client(environ=...)``) had its requests judged by the
process-wide policy: what its own policy refuses at the wire was sent, and what it allows could be refused. Now the
Client's guard replaces the one ``instrument()`` put there, for that client alone. The Bedrock adapter's boto3 clients
are below.

The real SDKs send over real HTTP to loopback servers (``tests/wire``) speaking each vendor's API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import cohere
import pytest
from mistralai.client import Mistral
from mistralai.client.models import UserMessage

import privsdk
from privsdk.outbound.transport import is_guarded
from privsdk.types import Image, Message, Text, TextDelta
from tests import instrument_support as support
from tests.guard_support import reset_default_guard
from tests.instrument_support import TEXT, WITH_IMAGE, instrumented, send, stricter_catalogue, transports  # noqa: F401
from tests.wire.cohere import CohereApp
from tests.wire.mistral import MistralApp
from tests.wire.server import App, LoopbackServer


class Vendor(NamedTuple):
    """One SDK's side of these tests."""

    name: str  # the credentials' vendor, and the Client's target's name
    offering: str
    model: str
    key: str
    key_variable: str  # the SDK's own key variable, which the tests leave unset
    app: Callable[[str], App]  # the loopback server's wire app, answering with a text
    seed: tuple[str, str, str]  # the catalogue file, a source of it and that source's date (stricter_catalogue)
    #: A chat from a client the app builds with the SDK itself, at ``url``.
    app_chat: Callable[[str, str, str], object]
    #: The httpx clients the adapter's SDK client sends through.
    adapter_http: Callable[[Any], list[Any]]


def _cohere_chat(url: str, key: str, model: str) -> object:
    client = cohere.ClientV2(api_key=key, base_url=url, max_retries=0)
    return client.chat(model=model, messages=[cohere.UserChatMessageV2(content="Hello")])


def _mistral_chat(url: str, key: str, model: str) -> object:
    return Mistral(api_key=key, server_url=url).chat.complete(model=model, messages=[UserMessage(content="Hello")])


VENDORS = [
    Vendor(
        "cohere",
        "cohere.saas",
        "command-a-03-2025",
        "co-under-instrument",
        "CO_API_KEY",
        CohereApp,
        ("cohere.toml", "SEED-COH", "2024-10-08"),
        _cohere_chat,
        lambda adapter: [adapter._client._client_wrapper.httpx_client.httpx_client],
    ),
    Vendor(
        "mistral",
        "mistral.api",
        "mistral-small-latest",
        "mistral-under-instrument",
        "MISTRAL_API_KEY",
        MistralApp,
        ("mistral.toml", "MIS-APT", "2026-07-05"),
        _mistral_chat,
        lambda adapter: [adapter._sdk.sdk_configuration.client, adapter._sdk.sdk_configuration.async_client],
    ),
]


def target(vendor: Vendor, url: str) -> str:
    """The target the Client calls: the vendor's API at the loopback server, named for the vendor."""
    return f"""
[targets.{vendor.name}]
offering = "{vendor.offering}"
model = "{vendor.model}"
endpoint = "{url}"
"""


@pytest.fixture(params=VENDORS, ids=[v.name for v in VENDORS])
def vendor(request: pytest.FixtureRequest) -> Vendor:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def server(vendor: Vendor, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """The vendor's API on loopback, which the process-wide policy (the environment) declares and lets every request
    through to."""
    for name in ("PRIVSDK_CONFIG", "PRIVSDK_REQUIRE", "PRIVSDK_ATTEST", "PRIVSDK_TENANTS", vendor.key_variable):
        monkeypatch.delenv(name, raising=False)
    with LoopbackServer(vendor.app(TEXT)) as running:
        monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{running.url}={vendor.offering}")
        monkeypatch.setenv("PRIVSDK_USAGE", "none")
        reset_default_guard()
        yield running
        assert running.errors == []
    reset_default_guard()


def own_client(vendor: Vendor, tmp_path: Path, url: str, *, aio: bool = False) -> Any:
    """A privsdk.Client with a policy and a catalogue of its own: its tenant requires no_provider_sharing, which an
    image sent to the vendor's API breaks, by its catalogue (not the process-wide one's)."""
    catalogue = stricter_catalogue(tmp_path, *vendor.seed)
    credentials = {vendor.name: {"api_key": vendor.key}}
    return support.own_client(tmp_path, catalogue, target(vendor, url), credentials, aio=aio)


@pytest.mark.parametrize("way", ["chat", "stream", "async chat"])
@pytest.mark.usefixtures("instrumented")
def test_what_the_clients_own_policy_refuses_at_the_wire_is_not_sent(
    way: str, vendor: Vendor, server: LoopbackServer, tmp_path: Path
) -> None:
    """An image in a chat, which the Client's own policy refuses (the guard reads it at the wire) and the process-wide
    policy allows: under instrument() it was sent to the vendor, judged by the process-wide guard."""
    aio = way == "async chat"
    client = own_client(vendor, tmp_path, server.url, aio=aio)
    try:
        with pytest.raises(privsdk.PolicyViolation, match="no_provider_sharing") as refused:
            send(client, vendor.name, way, WITH_IMAGE)
        assert "file_inputs" in str(refused.value)
        assert server.requests == []
        # Text alone meets the Client's policy: sent, and answered.
        assert send(client, vendor.name, way, "What is in this picture?") == TEXT
        assert len(server.requests) == 1
    finally:
        asyncio.run(client.aclose()) if aio else client.close()


@pytest.mark.usefixtures("instrumented")
def test_what_the_clients_own_policy_allows_is_not_refused_by_the_process_wide_one(
    vendor: Vendor, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The other way round: the process-wide policy requires no_training, which neither Cohere's platform nor la
    Plateforme's free plan meets; a Client configured by a mapping of its own (a policy file naming the target, no
    requirement) allows the call. Its chat was refused under instrument()."""
    monkeypatch.setenv("PRIVSDK_REQUIRE", "no_training")
    reset_default_guard()
    config = tmp_path / "targets.toml"
    config.write_text(target(vendor, server.url), encoding="utf-8")
    own = {"PRIVSDK_CONFIG": str(config), "PRIVSDK_USAGE": "none"}
    client = privsdk.Client(environ=own, credentials={vendor.name: {"api_key": vendor.key}})
    try:
        assert client.chat(vendor.name, "Hello").text == TEXT
    finally:
        client.close()
    assert len(server.requests) == 1
    # The process-wide policy still judges the clients the app builds: instrument() guards them as before.
    with pytest.raises(privsdk.PolicyViolation, match="no_training"):
        vendor.app_chat(server.url, vendor.key, vendor.model)
    assert len(server.requests) == 1


@pytest.mark.usefixtures("instrumented")
def test_the_adapters_client_sends_through_the_clients_guard_without_reroutes(
    vendor: Vendor, server: LoopbackServer, tmp_path: Path
) -> None:
    """What the Client's SDK client sends through, every httpx client of it: the Client's guard, and no reroute hook
    (the Client reroutes by itself); instrument() had left the process-wide guard and the drop-in's reroute hooks
    there."""
    client = own_client(vendor, tmp_path, server.url)
    try:
        assert client.chat(vendor.name, "Hello").text == TEXT
        (adapter,) = client._core._adapters.values()
        for http in vendor.adapter_http(adapter):
            assert is_guarded(http)
            assert all(t.guard is client._core.guard and t.reroute is None for t in transports(http))
    finally:
        client.close()


@pytest.mark.parametrize("vendor", [VENDORS[1]], ids=["mistral"], indirect=True)
@pytest.mark.usefixtures("instrumented")
def test_an_httpx_client_put_in_the_adapters_mistral_configuration_later_is_guarded_alike(
    vendor: Vendor, server: LoopbackServer, tmp_path: Path
) -> None:
    """A new httpx client put in the configuration of the Client's mistralai client later (a framework's, on a new
    event loop) gets the Client's guard too; an app's client built beside it keeps the process-wide guard and the
    drop-in's reroute hooks."""
    client = own_client(vendor, tmp_path, server.url)
    try:
        assert client.chat(vendor.name, "Hello").text == TEXT
        (adapter,) = client._core._adapters.values()
        config = adapter._sdk.sdk_configuration
        config.async_client = type(config.async_client)()
        assert is_guarded(config.async_client)
        assert all(t.guard is client._core.guard and t.reroute is None for t in transports(config.async_client))
    finally:
        client.close()
    http = Mistral(api_key=vendor.key, server_url=server.url).sdk_configuration.client
    assert is_guarded(http)
    assert all(t.guard is None and t.reroute is not None for t in transports(http))


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
    catalogue = stricter_catalogue(tmp_path, "bedrock.toml", "BR-AD", "2026-11-22")
    target = BEDROCK_TARGET.format(model=BEDROCK_MODEL, url=url) + 'attest = ["data_retention_mode=default"]\n'
    return support.own_client(tmp_path, catalogue, target, {"bedrock": AWS_KEYS}, aio=aio, timeout=5.0)


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
            send(client, "br", way, BEDROCK_IMAGE)
        assert "file_inputs" in str(refused.value)
        assert bedrock.requests == []
        # Text alone meets the Client's policy: sent, and answered.
        assert send(client, "br", way, "Hello") == "You said: Hello"
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
