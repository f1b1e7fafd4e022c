"""The resources mistralai builds for a client, built by hand around a configuration, are guarded.

Every mistralai client (``Mistral``, ``MistralAzure``, ``MistralGCP``) and every resource it builds (``chat.Chat``,
``embeddings.Embeddings``, ``models_.Models``, ``beta.Beta`` ...) runs the SDK's ``BaseSDK.__init__`` with an
``SDKConfiguration`` that holds the pair of httpx clients it sends through. An app can build a resource by hand,
``Chat(SDKConfiguration(client=httpx2.Client(), server_url=...))``, and run no client's constructor: after
``privsdk.instrument()`` such a resource sent the prompt to any host unjudged, and ``privsdk.mistralai.chat.Chat`` was
mistralai's own class. Now ``instrument()`` guards the configuration every ``BaseSDK.__init__`` takes, and the drop-in
hands out a guarded twin of every ``BaseSDK`` class, which mistralai's own instances pass ``isinstance`` for.

The real mistralai SDK sends over real HTTP to loopback servers (``tests/wire``): one declared as la Plateforme, one
that no policy declares, which must receive nothing. The last tests walk mistralai's modules for every ``BaseSDK``
class, so a resource (or a base class) a newer mistralai adds is checked too.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import os
import ssl
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import mistralai
import mistralai.client
import pytest
from mistralai.client import Mistral
from mistralai.client.basesdk import BaseSDK
from mistralai.client.chat import Chat
from mistralai.client.embeddings import Embeddings
from mistralai.client.errors import MistralError
from mistralai.client.models_ import Models
from privsdk_mistral import dropin

import privsdk
import privsdk.mistralai
from privsdk.outbound.judge import Guard
from privsdk.outbound.transport import is_guarded, keep_guarded
from tests.guard_support import reset_default_guard
from tests.instrument_support import Servers, declared_and_undeclared, instrumented  # noqa: F401 - a fixture
from tests.wire.mistral import MODEL_ID, MistralApp
from tests.wire.server import LoopbackServer, Recorded, Reply

KEY = "mistral-subclient-key"
MODEL = "mistral-small-latest"
MSG: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
TEXT = "Il fait beau à Paris"


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Servers]:
    with declared_and_undeclared(monkeypatch, MistralApp, TEXT, "mistral.api") as servers:
        yield servers


#: How the app got the class: mistralai's own after ``privsdk.instrument()``, or through ``privsdk.mistralai``.
WAYS = ["instrument", "dropin"]


def root(way: str, request: pytest.FixtureRequest) -> Any:
    """The module the app reaches mistralai's classes through, ``way``: ``mistralai.client`` or its drop-in."""
    if way == "instrument":
        request.getfixturevalue("instrumented")
        return mistralai.client
    return privsdk.mistralai


def reached(module: Any, cls: type[Any]) -> Any:
    """mistralai's class ``cls`` (one of ``mistralai.client``'s) as an app reaches it through ``module``
    (``mistralai.client`` or ``privsdk.mistralai``): the path of its module, then its name
    (``privsdk.mistralai.chat.Chat``)."""
    found = module
    for part in [*cls.__module__.removeprefix("mistralai.client.").split("."), cls.__qualname__]:
        found = getattr(found, part)
    return found


#: One TLS context for every httpx client here (each builds its own otherwise, tens of milliseconds apiece).
TLS = ssl.create_default_context()


def config(url: str, package: str = "mistralai.client") -> Any:
    """An ``SDKConfiguration`` the app builds itself, with httpx clients of its own and the SDK's hooks, as
    ``Mistral`` builds it: mistralai's class (``package`` names la Plateforme's, Azure's or Google Cloud's part)."""
    configuration = importlib.import_module(f"{package}.sdkconfiguration").SDKConfiguration
    made = configuration(
        client=httpx2.Client(timeout=5, verify=TLS),
        client_supplied=True,
        async_client=httpx2.AsyncClient(timeout=5, verify=TLS),
        async_client_supplied=True,
        debug_logger=importlib.import_module(f"{package}.utils.logger").get_default_logger(),
        security=importlib.import_module(f"{package}.models").Security(api_key=KEY),
        server_url=url,
        retry_config=None,
    )
    made.__dict__["_hooks"] = importlib.import_module(f"{package}._hooks").SDKHooks()
    return made


def _chat(module: Any, url: str) -> str:
    answer = reached(module, Chat)(config(url)).complete(model=MODEL, messages=MSG)
    return str(answer.choices[0].message.content)


def _chat_stream(module: Any, url: str) -> str:
    with reached(module, Chat)(config(url)).stream(model=MODEL, messages=MSG) as events:
        return "".join(str(e.data.choices[0].delta.content or "") for e in events)


def _embeddings(module: Any, url: str) -> str:
    vectors = reached(module, Embeddings)(config(url)).create(model="mistral-embed", inputs=["alpha", "beta"])
    return f"{len(vectors.data)} vectors"


def _models(module: Any, url: str) -> str:
    listed = reached(module, Models)(config(url)).list()
    return str(listed.data[0].id)


def _async_chat(module: Any, url: str) -> str:
    async def run() -> str:
        answer = await reached(module, Chat)(config(url)).complete_async(model=MODEL, messages=MSG)
        return str(answer.choices[0].message.content)

    return asyncio.run(run())


def _async_chat_stream(module: Any, url: str) -> str:
    async def run() -> str:
        async with await reached(module, Chat)(config(url)).stream_async(model=MODEL, messages=MSG) as events:
            return "".join([str(e.data.choices[0].delta.content or "") async for e in events])

    return asyncio.run(run())


def _async_embeddings(module: Any, url: str) -> str:
    async def run() -> str:
        vectors = await reached(module, Embeddings)(config(url)).create_async(model="mistral-embed", inputs=["a"])
        return f"{len(vectors.data)} vectors"

    return asyncio.run(run())


def _async_models(module: Any, url: str) -> str:
    async def run() -> str:
        listed = await reached(module, Models)(config(url)).list_async()
        return str(listed.data[0].id)

    return asyncio.run(run())


#: A request of a resource built by hand around the app's own configuration, and what the declared server answers.
SENDS: dict[str, tuple[Callable[[Any, str], str], str]] = {
    "Chat.complete": (_chat, TEXT),
    "Chat.stream": (_chat_stream, TEXT),
    "Embeddings.create": (_embeddings, "2 vectors"),
    "Models.list": (_models, MODEL_ID),
    "Chat.complete_async": (_async_chat, TEXT),
    "Chat.stream_async": (_async_chat_stream, TEXT),
    "Embeddings.create_async": (_async_embeddings, "1 vectors"),
    "Models.list_async": (_async_models, MODEL_ID),
}


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("send", SENDS)
def test_a_resource_built_around_the_apps_own_configuration_is_judged(
    send: str, way: str, servers: Servers, request: pytest.FixtureRequest
) -> None:
    """``Chat(SDKConfiguration(client=httpx2.Client(), server_url=...)).complete(...)`` sent the prompt to a host no
    policy declares, after ``privsdk.instrument()`` and through the drop-in alike."""
    module = root(way, request)
    call, answer = SENDS[send]
    with pytest.raises(privsdk.PolicyViolation, match="not an endpoint privsdk knows") as refused:
        call(module, servers.undeclared.url)
    assert isinstance(refused.value, MistralError)  # mistralai's own error base, as from any guarded client
    assert servers.undeclared.requests == []
    assert call(module, servers.declared.url) == answer  # a declared host: sent, and answered as before
    assert len(servers.declared.requests) == 1


def test_the_drop_in_hands_out_guarded_twins_that_pass_for_mistralais_classes(servers: Servers) -> None:
    """``privsdk.mistralai.chat.Chat`` was mistralai's own. Its twin is a subclass; a resource the SDK builds itself
    (``client.chat``), a plain mistralai client's included, still passes ``isinstance`` through the drop-in."""
    twin = privsdk.mistralai.chat.Chat
    assert twin is not Chat and issubclass(twin, Chat)
    assert twin is privsdk.mistralai.chat.Chat  # made once
    assert inspect.signature(twin) == inspect.signature(Chat)
    assert privsdk.mistralai.sdk.Mistral is privsdk.mistralai.Mistral  # the client keeps its own guarded class
    client = privsdk.mistralai.Mistral(api_key=KEY, server_url=servers.declared.url)
    plain = Mistral(api_key=KEY, server_url=servers.declared.url)
    for made in (client, plain):
        assert isinstance(made.chat, twin) and isinstance(made.embeddings, privsdk.mistralai.embeddings.Embeddings)
        assert isinstance(made, privsdk.mistralai.basesdk.BaseSDK) and isinstance(made.chat, BaseSDK)
    assert issubclass(privsdk.mistralai.Mistral, privsdk.mistralai.basesdk.BaseSDK)
    assert not isinstance(object(), twin) and not issubclass(Embeddings, twin)
    # The app's configuration, around its own httpx client: guarded in place, for the app's own use of it too.
    made_config = config(servers.undeclared.url)
    with pytest.raises(privsdk.PolicyViolation):
        twin(made_config).complete(model=MODEL, messages=MSG)
    with pytest.raises(privsdk.PolicyViolation):
        made_config.client.post(f"{servers.undeclared.url}/v1/chat/completions", json={"model": MODEL, "messages": MSG})
    # The configuration of a drop-in client, shared: its resources send where it does.
    answer = twin(client.sdk_configuration).complete(model=MODEL, messages=MSG)
    assert answer.choices[0].message.content == TEXT


def test_guard_takes_a_resource(servers: Servers) -> None:
    """``privsdk.guard()`` and ``guard_client`` take a resource the app built, and guard its configuration."""
    chat = Chat(config(servers.undeclared.url))
    assert privsdk.guard(chat) is chat
    with pytest.raises(privsdk.PolicyViolation):
        chat.complete(model=MODEL, messages=MSG)
    models = Models(config(servers.undeclared.url))
    assert privsdk.mistralai.guard_client(models) is models
    with pytest.raises(privsdk.PolicyViolation):
        asyncio.run(models.list_async())
    # Nothing in every request's way: the attribute a resource reads its configuration from on each request stays a
    # plain instance attribute of mistralai's classes (only the whole clients, which build their parts from it at
    # first use, watch it).
    assert [cls for cls in (BaseSDK, Chat, Models) if "sdk_configuration" in vars(cls)] == []


def test_instrument_guards_each_configuration_once_and_uninstrument_restores_mistralai(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A configuration ``instrument()`` guarded as a client's ``BaseSDK.__init__`` took it is not guarded again by the
    client's resources, nor by the drop-in's class, which guards after mistralai's constructor: each holder once."""
    seen: list[tuple[int, str]] = []

    def counted(holder: object, name: str, guard: Callable[[Any, Any], object]) -> None:
        seen.append((id(holder), name))
        keep_guarded(holder, name, guard)

    monkeypatch.setattr(dropin, "keep_guarded", counted)
    original = BaseSDK.__init__
    privsdk.instrument()
    try:
        clients: list[Any] = [
            Mistral(api_key=KEY, server_url=servers.declared.url),
            privsdk.mistralai.Mistral(api_key=KEY, server_url=servers.declared.url),
        ]
        resources: list[Any] = [client.chat for client in clients]
        resources.append(privsdk.mistralai.chat.Chat(clients[0].sdk_configuration))
        resources.append(Chat(config(servers.declared.url)))
    finally:
        privsdk.uninstrument()
    assert len(seen) == len(set(seen)) == 8  # two clients (their configuration, its pair) and one configuration's pair
    for resource in resources:
        assert resource.complete(model=MODEL, messages=MSG).choices[0].message.content == TEXT
    assert BaseSDK.__init__ is original
    plain = Chat(config(servers.declared.url))  # after uninstrument: mistralai's own
    assert not is_guarded(plain.sdk_configuration.client)


@pytest.mark.parametrize("way", WAYS)
def test_a_resource_leaves_the_guard_its_configuration_was_given(
    way: str, servers: Servers, request: pytest.FixtureRequest
) -> None:
    """A client guarded with a guard of its own (as privsdk.Client's adapters guard theirs) keeps it when resources are
    built from its configuration: ``client.chat`` under ``instrument()``, a resource the app builds around it. They
    guard with the defaults (the process-wide guard), which must not take the place of the client's: a new httpx
    client a framework puts into the configuration later is judged by the client's guard."""
    own = Guard(
        environ={
            "PRIVSDK_REQUIRE": "zdr",
            "PRIVSDK_USAGE": "none",
            "PRIVSDK_ENDPOINTS": f"{servers.declared.url}=mistral.api",
        }
    )
    client = privsdk.mistralai.guard_client(
        Mistral(api_key=KEY, server_url=servers.declared.url), guard=own, reroutes=False
    )
    module = root(way, request)
    resources = [client.chat, reached(module, Chat)(client.sdk_configuration)]
    client.sdk_configuration.client = httpx2.Client(timeout=5, verify=TLS)  # as pydantic-ai does, on a new loop
    for resource in resources:
        with pytest.raises(privsdk.PolicyViolation, match="zdr"):  # the client's guard: zero data retention
            resource.complete(model=MODEL, messages=MSG)
    assert servers.declared.requests == []


class _Collector:
    """A loopback OTLP endpoint: keeps what is posted to it."""

    def __call__(self, request: Recorded) -> Reply:
        return Reply(200, b"", {"Content-Type": "application/x-protobuf"})


@pytest.mark.usefixtures("instrumented")
def test_a_client_instrument_guards_as_its_base_class_takes_the_configuration_keeps_telemetry_off(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``instrument()`` guards a client's configuration inside ``BaseSDK.__init__``, before the client adds its hooks
    (the tracing hook among them): MISTRAL_SDK_TELEMETRY still exports nothing of a client or a resource built so."""
    from mistralai.client._hooks.tracing import TracingHook

    with LoopbackServer(_Collector()) as collector:
        monkeypatch.setenv("MISTRAL_SDK_TELEMETRY", "dedicated")
        monkeypatch.setenv("MISTRAL_OTLP_TRACES_ENDPOINT", f"{collector.url}/telemetry/v1/traces")
        client = Mistral(api_key=KEY, server_url=servers.declared.url)
        chat = Chat(config(servers.declared.url))
        for sender in (client.chat, chat):
            sender.complete(model=MODEL, messages=MSG)
            hooks = sender.sdk_configuration.__dict__["_hooks"].before_request_hooks
            tracing = next(h for h in hooks if isinstance(h, TracingHook))
            assert tracing._auto_telemetry_provider is None and tracing.tracer_provider is None
        assert collector.requests == []


REROUTE_POLICY = """
[endpoints]
"{api}" = "mistral.api"

[targets.mistral-azure]
offering = "mistral.azure"
model = "mistral-large"
deployment = "mistral-large-2411"
endpoint = "{azure}"

[tenants.hospital]
on_violation = "reroute"
classes.default = ["no_training"]
reroute."mistral/*" = ["mistral-azure"]
"""


@pytest.mark.parametrize("way", WAYS)
def test_a_resource_built_by_hand_reroutes(
    way: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """The drop-in's reroute is in the transport: a hand-built Chat's refused request is answered from the tenant's
    alternative (a Mistral model on Azure AI Foundry) in mistralai's types, and nothing reaches la Plateforme."""
    azure_app = MistralApp("Bonjour from Mistral on Azure")
    with LoopbackServer(MistralApp("from la Plateforme")) as api, LoopbackServer(azure_app) as azure:
        policy = tmp_path / "privsdk.toml"
        policy.write_text(REROUTE_POLICY.format(api=api.url, azure=azure.url), encoding="utf-8")
        monkeypatch.setenv("PRIVSDK_CONFIG", str(policy))
        monkeypatch.setenv("PRIVSDK_USAGE", "none")
        monkeypatch.setenv("AZURE_API_KEY", "azure-key")
        reset_default_guard()
        chat = reached(root(way, request), Chat)(config(api.url))
        answer = chat.complete(model=MODEL, messages=MSG)
        with chat.stream(model=MODEL, messages=MSG) as events:
            streamed = "".join(str(e.data.choices[0].delta.content or "") for e in events if e.data.choices)
        assert api.requests == [] and azure.errors == []
        assert [r.path for r in azure.requests] == ["/models/chat/completions"] * 2
    reset_default_guard()
    assert isinstance(answer, mistralai.client.models.ChatCompletionResponse)
    message = answer.choices[0].message
    assert message is not None and message.content == azure_app.text and streamed == azure_app.text


# -- conformance: every BaseSDK class mistralai has, this release's and a newer one's ----------------------------


@functools.cache
def mistralais_classes() -> tuple[type[Any], ...]:
    """Every class defined in mistralai's modules (its ``models`` packages aside: pydantic models, which send nothing;
    and its own tests). mistralai is a namespace package, and so are its Azure and Google Cloud parts: their folders
    are walked, not ``pkgutil``'s packages."""
    for base in mistralai.__path__:
        for folder, subfolders, files in os.walk(base):
            subfolders[:] = sorted(d for d in subfolders if d not in ("__pycache__", "tests", "models"))
            below = os.path.relpath(folder, base)
            package = "mistralai" if below == "." else "mistralai." + below.replace(os.sep, ".")
            for file in sorted(f for f in files if f.endswith(".py")):
                try:
                    importlib.import_module(package if file == "__init__.py" else f"{package}.{file[:-3]}")
                except ImportError:  # an optional dependency not installed here (authlib, livekit, boto3 ...)
                    continue
                except Exception as exc:  # mistralai's voice agents raise an error of their own for a missing extra
                    if "pip install" not in str(exc):
                        raise
    found: dict[type[Any], None] = {}
    for name, module in list(sys.modules.items()):
        if name.startswith("mistralai."):
            for value in list(vars(module).values()):
                if isinstance(value, type) and value.__module__ == name:
                    found[value] = None
    return tuple(found)


def base_sdks() -> list[type[Any]]:
    """mistralai's base classes of its clients: those that hold an ``sdk_configuration`` of their own making (the
    annotation of ``BaseSDK``), not one they derive from another class."""
    return [
        cls
        for cls in mistralais_classes()
        if "sdk_configuration" in vars(cls).get("__annotations__", {})
        and not any("sdk_configuration" in vars(k).get("__annotations__", {}) for k in cls.__mro__[1:])
    ]


def senders() -> list[type[Any]]:
    """mistralai's classes that send: its base classes and every class derived from one."""
    bases = tuple(base_sdks())
    return [cls for cls in mistralais_classes() if issubclass(cls, bases)]


def _base_of(cls: type[Any]) -> type[Any]:
    return next(k for k in cls.__mro__ if k in set(base_sdks()))


#: mistralai's whole clients, which build their configuration from their own arguments, and how to build one (the
#: class given: mistralai's, or the one standing for it).
CLIENTS: dict[str, Callable[[Any, str], Any]] = {
    "mistralai.client.sdk.Mistral": lambda made, url: made(api_key=KEY, server_url=url),
    "mistralai.azure.client.sdk.MistralAzure": lambda made, url: made(api_key=KEY, server_url=url),
    "mistralai.gcp.client.sdk.MistralGCP": lambda made, url: made(
        access_token="ya29.test", project_id="acme", region="europe-west4", server_url=url
    ),
}


def _name(cls: type[Any]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def test_the_conformance_walk_finds_mistralais_clients() -> None:
    assert {_name(cls) for cls in base_sdks()} == {
        "mistralai.client.basesdk.BaseSDK", "mistralai.azure.client.basesdk.BaseSDK",
        "mistralai.gcp.client.basesdk.BaseSDK",
    }  # fmt: skip
    assert {_name(cls) for cls in base_sdks()} == {f"{name}.BaseSDK" for name in dropin._BASESDK_MODULES}
    names = {_name(cls) for cls in senders()}
    expected = {
        "mistralai.client.chat.Chat", "mistralai.client.embeddings.Embeddings", "mistralai.client.models_.Models",
        "mistralai.client.beta.Beta", "mistralai.client.fim.Fim", "mistralai.client.files.Files",
        "mistralai.client.conversations.Conversations", "mistralai.azure.client.chat.Chat",
        "mistralai.gcp.client.chat.Chat", *CLIENTS,
    }  # fmt: skip
    assert expected <= names, sorted(expected - names)


def _built(cls: type[Any], made: type[Any], url: str) -> Any:
    """An instance of ``made`` (``cls`` or the class standing for it), around a configuration the app built itself; a
    whole client from its own arguments."""
    if _name(cls) in CLIENTS:
        return CLIENTS[_name(cls)](made, url)
    return made(config(url, _base_of(cls).__module__.rpartition(".")[0]))


@pytest.mark.parametrize("way", WAYS)
def test_every_class_mistralai_builds_around_a_configuration_is_guarded(
    way: str, servers: Servers, request: pytest.FixtureRequest
) -> None:
    """Each of mistralai's ``BaseSDK`` classes, built around a configuration the app built (after ``instrument()``,
    mistralai's own class; through the drop-in, the class the drop-in hands out, or its twin for Azure's and Google
    Cloud's parts, which the drop-in of ``mistralai.client`` does not reach): both httpx clients of its configuration
    send through the guard."""
    module = root(way, request)
    unguarded = []
    for cls in senders():
        made: Any = cls
        if way == "dropin":
            made = reached(module, cls) if cls.__module__.startswith("mistralai.client.") else dropin.twin_of(cls)
            assert made is not cls and issubclass(made, cls), f"the drop-in hands out mistralai's own {_name(cls)}"
        params = list(inspect.signature(cls).parameters)
        assert _name(cls) in CLIENTS or params[:1] == ["sdk_config"], f"{_name(cls)} takes {params}: build it here"
        built = _built(cls, made, servers.undeclared.url)
        configuration = built.sdk_configuration
        held = [configuration.client, configuration.async_client]
        if not all(is_guarded(http) for http in held):
            unguarded.append(_name(cls))
    assert unguarded == []


def test_the_drop_in_hands_out_no_client_class_of_mistralais_own() -> None:
    """Every class of ``mistralai.client``'s that sends is, through ``privsdk.mistralai``, a guarded subclass; every
    other class is mistralai's own."""
    sending = set(senders())
    for cls in mistralais_classes():
        if not cls.__module__.startswith("mistralai.client."):
            continue
        try:
            made = reached(privsdk.mistralai, cls)
        except AttributeError:  # not reachable by its module's path (a class defined inside a function's branch)
            continue
        if cls in sending:
            assert made is not cls and issubclass(made, cls), _name(cls)
        else:
            assert made is cls, _name(cls)
