"""The clients cohere generates for each resource, built by hand around a client wrapper, are guarded.

cohere generates a client per resource (``v2.client.V2Client``, ``models.client.ModelsClient``,
``datasets.client.DatasetsClient``, ..., their raw and async twins), each built around a client wrapper
(``core.client_wrapper.SyncClientWrapper``) whose HttpClient holds the httpx client. ``ClientV2`` builds them around
its own wrapper; an app can build one around a wrapper of its own. Such a client ran none of the constructors
``privsdk.instrument()`` patched, and ``privsdk.cohere.v2.client.V2Client`` was cohere's own class: its requests
went to any host unjudged. Now ``instrument()`` guards every client wrapper and HttpClient as it is built, and the
drop-in hands out a guarded twin of each such client (and of the base clients), whatever wrapper it is given.

The real cohere SDK sends over real HTTP to loopback servers (``tests/wire``): one declared as Cohere's API, one
that no policy declares, which must receive nothing. The last tests walk cohere's modules for every class built
around a client wrapper, so a client a newer cohere adds is checked too.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import pkgutil
import ssl
import sys
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cohere
import httpx
import pytest
from cohere.base_client import AsyncBaseCohere, BaseCohere
from cohere.core.api_error import ApiError
from cohere.core.client_wrapper import AsyncClientWrapper, SyncClientWrapper
from cohere.core.http_client import AsyncHttpClient, HttpClient
from cohere.manually_maintained.cohere_aws.client import Client as LegacyAwsClient
from cohere.models.client import AsyncModelsClient, ModelsClient
from cohere.v2.client import AsyncV2Client, V2Client
from cohere.v2.raw_client import RawV2Client
from privsdk_cohere import dropin

import privsdk
import privsdk.cohere
from privsdk.outbound.transport import is_guarded, keep_guarded
from tests import test_dropin_cohere_reroute as reroute_case  # its policy: the clinic reroutes to a private deployment
from tests.guard_support import reset_default_guard
from tests.instrument_support import Servers, declared_and_undeclared, instrumented  # noqa: F401 - a fixture
from tests.wire.cohere import CohereApp
from tests.wire.server import LoopbackServer

KEY = "co-subclient-key"
MODEL = "command-a-03-2025"
MSG: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
TEXT = "Sunny in Paris"


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Servers]:
    with declared_and_undeclared(monkeypatch, CohereApp, TEXT, "cohere.saas") as servers:
        yield servers


#: How the app got the client class: cohere's own after ``privsdk.instrument()``, or through ``privsdk.cohere``.
WAYS = ["instrument", "dropin"]


def root(way: str, request: pytest.FixtureRequest) -> Any:
    """The module the app reaches cohere's classes through, ``way``."""
    if way == "instrument":
        request.getfixturevalue("instrumented")
        return cohere
    return privsdk.cohere


def reached(module: Any, cls: type[Any]) -> Any:
    """cohere's class ``cls`` as an app reaches it through ``module`` (``cohere`` or ``privsdk.cohere``): the path of
    its module, then its name (``privsdk.cohere.v2.client.V2Client``)."""
    found = module
    for part in [*cls.__module__.split(".")[1:], cls.__qualname__]:
        found = getattr(found, part)
    return found


#: One TLS context for every httpx client here (each builds its own otherwise, tens of milliseconds apiece).
TLS = ssl.create_default_context()


def wrapper(url: str, *, aio: bool = False) -> Any:
    """A client wrapper the app builds itself, with an httpx client of its own: cohere's class, not the drop-in's."""
    if aio:
        http: Any = httpx.AsyncClient(timeout=5, verify=TLS)
        return AsyncClientWrapper(base_url=url, token=KEY, max_retries=0, httpx_client=http)
    return SyncClientWrapper(base_url=url, token=KEY, max_retries=0, httpx_client=httpx.Client(timeout=5, verify=TLS))


def text_of(answer: Any) -> str:
    """The text of a v2 chat answer (cohere's types are unions that strict mypy makes a test narrow at every step)."""
    return str(answer.message.content[0].text)


def _v2(module: Any, url: str) -> str:
    client = reached(module, V2Client)(client_wrapper=wrapper(url))
    return text_of(client.chat(model=MODEL, messages=MSG))


def _v2_stream(module: Any, url: str) -> str:
    client = reached(module, V2Client)(client_wrapper=wrapper(url))
    events = client.chat_stream(model=MODEL, messages=MSG)
    return "".join(e.delta.message.content.text for e in events if e.type == "content-delta")


def _raw_v2(module: Any, url: str) -> str:
    client = reached(module, RawV2Client)(client_wrapper=wrapper(url))
    return text_of(client.chat(model=MODEL, messages=MSG).data)


def _models(module: Any, url: str) -> str:
    client = reached(module, ModelsClient)(client_wrapper=wrapper(url))
    return str(client.list().models[0].name)


def _async_v2(module: Any, url: str) -> str:
    async def run() -> str:
        client = reached(module, AsyncV2Client)(client_wrapper=wrapper(url, aio=True))
        answer = await client.chat(model=MODEL, messages=MSG)
        return text_of(answer)

    return asyncio.run(run())


def _async_models(module: Any, url: str) -> str:
    async def run() -> str:
        client = reached(module, AsyncModelsClient)(client_wrapper=wrapper(url, aio=True))
        return str((await client.list()).models[0].name)

    return asyncio.run(run())


#: A request of a resource client built by hand, and what the declared server answers it.
SENDS: dict[str, tuple[Callable[[Any, str], str], str]] = {
    "V2Client.chat": (_v2, TEXT),
    "V2Client.chat_stream": (_v2_stream, TEXT),
    "RawV2Client.chat": (_raw_v2, TEXT),
    "ModelsClient.list": (_models, MODEL),
    "AsyncV2Client.chat": (_async_v2, TEXT),
    "AsyncModelsClient.list": (_async_models, MODEL),
}


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("send", SENDS)
def test_a_resource_client_built_around_the_apps_own_wrapper_is_judged(
    send: str, way: str, servers: Servers, request: pytest.FixtureRequest
) -> None:
    """``V2Client(client_wrapper=SyncClientWrapper(base_url=..., httpx_client=httpx.Client(), token=...)).chat(...)``
    sent the prompt to a host no policy declares, after ``privsdk.instrument()`` and through the drop-in alike."""
    module = root(way, request)
    call, answer = SENDS[send]
    with pytest.raises(privsdk.PolicyViolation, match="not an endpoint privsdk knows") as refused:
        call(module, servers.undeclared.url)
    assert isinstance(refused.value, ApiError)  # cohere's own error base, as from any guarded cohere client
    assert servers.undeclared.requests == []
    assert call(module, servers.declared.url) == answer  # a declared host: sent, and answered as before
    assert len(servers.declared.requests) == 1


def test_the_drop_in_hands_out_guarded_twins_that_pass_for_coheres_classes(servers: Servers) -> None:
    """``privsdk.cohere.v2.client.V2Client`` was cohere's own. Its twin is a subclass; an instance the SDK builds
    itself (``co.v2``) or a client derived from cohere's class still passes ``isinstance`` through the drop-in."""
    twin = privsdk.cohere.v2.client.V2Client
    assert twin is not V2Client and issubclass(twin, V2Client)
    assert twin is privsdk.cohere.v2.client.V2Client  # made once
    assert inspect.signature(twin) == inspect.signature(V2Client)
    co = privsdk.cohere.ClientV2(api_key=KEY, base_url=servers.declared.url, max_retries=0)
    assert isinstance(co.v2, twin) and isinstance(co, twin) and issubclass(privsdk.cohere.ClientV2, twin)
    assert isinstance(co, privsdk.cohere.base_client.BaseCohere)
    assert not isinstance(object(), twin)
    # The review's path: cohere's wrapper class reached through the drop-in, around the app's httpx client.
    http = httpx.Client(timeout=5)
    made = privsdk.cohere.core.client_wrapper.SyncClientWrapper(
        base_url=servers.undeclared.url, token=KEY, httpx_client=http
    )
    with pytest.raises(privsdk.PolicyViolation):
        twin(client_wrapper=made).chat(model=MODEL, messages=MSG)
    with pytest.raises(privsdk.PolicyViolation):  # the app's own use of its httpx client, now guarded in place
        http.post(f"{servers.undeclared.url}/v2/chat", json={"model": MODEL, "messages": MSG})
    # The wrapper of a drop-in client, shared: its resource clients send where it does.
    assert text_of(twin(client_wrapper=co._client_wrapper).chat(model=MODEL, messages=MSG)) == TEXT


@pytest.mark.parametrize("way", WAYS)
def test_the_base_clients_are_guarded(way: str, servers: Servers, request: pytest.FixtureRequest) -> None:
    """``privsdk.cohere.base_client.BaseCohere`` (a whole client, v1 and v2) was cohere's own class too."""
    module = root(way, request)
    with pytest.raises(privsdk.PolicyViolation):
        reached(module, BaseCohere)(token=KEY, base_url=servers.undeclared.url, max_retries=0).v2.chat(
            model=MODEL, messages=MSG
        )

    async def run() -> None:
        client = reached(module, AsyncBaseCohere)(token=KEY, base_url=servers.undeclared.url, max_retries=0)
        await client.v2.chat(model=MODEL, messages=MSG)

    with pytest.raises(privsdk.PolicyViolation):
        asyncio.run(run())


def test_guard_takes_a_resource_client(servers: Servers) -> None:
    """``privsdk.guard()`` and ``guard_client`` take a resource client the app built: it had no ``_client_wrapper``
    of its own, and they raised TypeError."""
    client = V2Client(client_wrapper=wrapper(servers.undeclared.url))
    assert privsdk.guard(client) is client
    with pytest.raises(privsdk.PolicyViolation):
        client.chat(model=MODEL, messages=MSG)
    models = AsyncModelsClient(client_wrapper=wrapper(servers.undeclared.url, aio=True))
    assert privsdk.cohere.guard_client(models) is models
    with pytest.raises(privsdk.PolicyViolation):
        asyncio.run(models.list())


def test_instrument_guards_each_wrapper_once_and_uninstrument_restores_cohere(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrapper ``instrument()`` guarded as it was built is not guarded again by the client built around it (nor by
    the drop-in's class, which guards after cohere's constructor): each holder once."""
    seen: list[tuple[int, str]] = []

    def counted(holder: object, name: str, guard: Callable[[Any, Any], object]) -> None:
        seen.append((id(holder), name))
        keep_guarded(holder, name, guard)

    monkeypatch.setattr(dropin, "keep_guarded", counted)
    originals = [cls.__init__ for cls in (SyncClientWrapper, AsyncClientWrapper, HttpClient, AsyncHttpClient)]
    privsdk.instrument()
    try:
        clients: list[Any] = [
            cohere.ClientV2(api_key=KEY, base_url=servers.declared.url, max_retries=0),
            privsdk.cohere.ClientV2(api_key=KEY, base_url=servers.declared.url, max_retries=0),
        ]
        clients.append(privsdk.cohere.v2.client.V2Client(client_wrapper=clients[0]._client_wrapper))
        clients.append(V2Client(client_wrapper=wrapper(servers.declared.url)))
    finally:
        privsdk.uninstrument()
    assert len(seen) == len(set(seen)) == 6  # three wrappers and their HttpClients
    for client in clients:
        assert text_of(client.chat(model=MODEL, messages=MSG)) == TEXT
    assert [cls.__init__ for cls in (SyncClientWrapper, AsyncClientWrapper, HttpClient, AsyncHttpClient)] == originals
    plain = V2Client(client_wrapper=wrapper(servers.declared.url))  # after uninstrument: cohere's own
    assert not is_guarded(plain._raw_client._client_wrapper.httpx_client.httpx_client)


@pytest.mark.parametrize("way", WAYS)
def test_a_resource_client_built_by_hand_reroutes(
    way: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """The drop-in's reroute is in the transport: a hand-built V2Client's refused chat is answered from the tenant's
    alternative (a private Cohere deployment) in cohere's types, and nothing reaches the refused host."""
    private_app = CohereApp("Bonjour from a private Cohere")
    private_app.anonymous = True
    with LoopbackServer(CohereApp("from Cohere's SaaS")) as saas, LoopbackServer(private_app) as private:
        config = tmp_path / "privsdk.toml"
        config.write_text(reroute_case.POLICY.format(saas=saas.url, private=private.url), encoding="utf-8")
        monkeypatch.setenv("PRIVSDK_CONFIG", str(config))
        monkeypatch.setenv("PRIVSDK_USAGE", "none")
        reset_default_guard()
        module = root(way, request)
        client = reached(module, V2Client)(client_wrapper=wrapper(saas.url))
        answer = client.chat(model=MODEL, messages=MSG)
        events = list(client.chat_stream(model=MODEL, messages=MSG))
        assert saas.requests == [] and private.errors == []
        assert [r.path for r in private.requests] == ["/v2/chat", "/v2/chat"]
    reset_default_guard()
    assert isinstance(answer, cohere.V2ChatResponse) and text_of(answer) == private_app.text
    assert "".join(e.delta.message.content.text for e in events if e.type == "content-delta") == private_app.text


# -- conformance: every client cohere has, this release's and a newer one's ------------------------------------


@functools.cache
def coheres_classes() -> tuple[type[Any], ...]:
    """Every class defined in cohere's modules (its ``types`` packages aside: pydantic models, which send nothing)."""
    for info in pkgutil.walk_packages(cohere.__path__, "cohere."):
        if ".types" not in info.name:
            importlib.import_module(info.name)
    found: dict[type[Any], None] = {}
    for name, module in list(sys.modules.items()):
        if name.startswith("cohere.") and ".types" not in name:
            for value in list(vars(module).values()):
                if isinstance(value, type) and value.__module__ == name:
                    found[value] = None
    return tuple(found)


def wrapper_class(cls: type[Any]) -> type[Any] | None:
    """The client wrapper class the ``__init__`` of ``cls`` takes, or None when it takes no ``client_wrapper``."""
    init = inspect.unwrap(cls.__init__)
    if "client_wrapper" not in inspect.signature(init).parameters:
        return None
    wanted = typing.get_type_hints(init)["client_wrapper"]
    assert issubclass(wanted, SyncClientWrapper | AsyncClientWrapper), (cls, wanted)
    return wanted  # type: ignore[no-any-return]


def resource_clients() -> list[type[Any]]:
    """cohere's classes built around a client wrapper: the generated clients, raw and async included."""
    return [cls for cls in coheres_classes() if wrapper_class(cls) is not None]


def httpx_clients(root: object) -> list[httpx.Client | httpx.AsyncClient]:
    """Every httpx client a cohere object holds, through its attributes and theirs (wrapper, HttpClient, ...)."""
    found: list[httpx.Client | httpx.AsyncClient] = []
    seen: set[int] = set()
    todo = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, httpx.Client | httpx.AsyncClient):
            found.append(obj)
        elif type(obj).__module__.partition(".")[0] in ("cohere", "privsdk_cohere") and hasattr(obj, "__dict__"):
            todo.extend(vars(obj).values())
    return found


def test_the_conformance_walk_finds_coheres_clients() -> None:
    names = {f"{cls.__module__}.{cls.__qualname__}" for cls in resource_clients()}
    expected = {
        "cohere.v2.client.V2Client", "cohere.v2.client.AsyncV2Client", "cohere.v2.raw_client.RawV2Client",
        "cohere.datasets.client.DatasetsClient", "cohere.connectors.client.AsyncConnectorsClient",
        "cohere.embed_jobs.raw_client.RawEmbedJobsClient", "cohere.finetuning.client.FinetuningClient",
        "cohere.models.client.AsyncModelsClient", "cohere.raw_base_client.RawBaseCohere",
    }  # fmt: skip
    assert expected <= names, sorted(expected - names)


@pytest.mark.parametrize("way", WAYS)
def test_every_client_cohere_builds_around_a_wrapper_is_guarded(
    way: str, servers: Servers, request: pytest.FixtureRequest
) -> None:
    """Each class of cohere's whose ``__init__`` takes a ``client_wrapper``, built around a wrapper the app built
    (after ``instrument()``, cohere's own class; through the drop-in, the class the drop-in hands out): every httpx
    client it holds sends through the guard."""
    module = root(way, request)
    unguarded = []
    for cls in resource_clients():
        made = reached(module, cls)
        assert issubclass(made, cls)
        if way == "dropin":
            assert made is not cls, f"privsdk.cohere hands out cohere's own {cls.__module__}.{cls.__qualname__}"
        aio = issubclass(wrapper_class(cls) or SyncClientWrapper, AsyncClientWrapper)
        client = made(client_wrapper=wrapper(servers.undeclared.url, aio=aio))
        held = httpx_clients(client)
        if not held or not all(is_guarded(http) for http in held):
            unguarded.append(f"{cls.__module__}.{cls.__qualname__}")
    assert unguarded == []


def test_the_drop_in_hands_out_no_client_class_of_coheres_own() -> None:
    """Every class of cohere's that is a client (built around a wrapper, or one of the base clients and the clients
    derived from them: ``base_client.BaseCohere``, ``aws_client.AwsClientV2``, ...) is, through ``privsdk.cohere``,
    a guarded subclass; every other class is cohere's own."""
    clients = {cls for cls in coheres_classes() if issubclass(cls, BaseCohere | AsyncBaseCohere | LegacyAwsClient)}
    assert {BaseCohere, AsyncBaseCohere, cohere.ClientV2, cohere.aws_client.AwsClientV2, LegacyAwsClient} <= clients
    clients |= set(resource_clients())
    for cls in coheres_classes():
        try:
            made = reached(privsdk.cohere, cls)
        except AttributeError:  # not reachable by its module's path (a class defined inside a function's branch)
            continue
        name = f"{cls.__module__}.{cls.__qualname__}"
        if cls in clients:
            assert made is not cls and issubclass(made, cls), name
        else:
            assert made is cls, name
