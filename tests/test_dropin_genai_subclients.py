"""google-genai's classes built around an api client, reached through the drop-in, are guarded.

google-genai builds each resource around a ``BaseApiClient`` (``models.Models(api_client)``, ``files.Files``,
``client.AsyncClient``, ``live.AsyncLive``, the Interactions API's resources, ...; and ``chats.Chats`` around a
``Models``). ``Client`` builds them around its own api client; an app can build one around an api client of its own.
``privsdk.genai.models.Models`` was google-genai's own class: around google-genai's own ``BaseApiClient`` (built
outside the drop-in, by a framework or a library), its requests went to any host unjudged. Now the drop-in hands out a
guarded twin of each such class, which guards the api client it is given before google-genai's ``__init__`` runs.

The real google-genai SDK sends over real HTTP to loopback servers (``tests/wire``): one declared as the Gemini
Developer API, one that no policy declares, which must receive nothing. The last tests walk google-genai's modules for
every class built around an api client, so a class a newer google-genai adds is checked too.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import google.genai._gaos.google_genai  # noqa: F401  # the Interactions API's resources, which Client imports lazily
import pytest
from google import genai as google_genai
from google.genai import _api_client, chats, models, types
from google.genai import client as genai_client
from google.oauth2.credentials import Credentials
from privsdk_vertex import dropin

import privsdk
from privsdk import genai
from privsdk.outbound.transport import is_guarded
from tests.instrument_support import Servers, declared_and_undeclared
from tests.wire.server import Recorded, Reply, json_reply
from tests.wire.vertex import API_KEY, TOKEN, GeminiApp

MODEL = "gemini-2.5-flash"
TEXT = "Sunny in Paris"
PROMPT = "What is the weather in Paris?"


class Declared:
    """The Gemini Developer API on loopback: GeminiApp's generateContent, streams and embeddings, and the answers of
    ``countTokens`` and the Interactions API."""

    def __init__(self, text: str):
        self.gemini = GeminiApp(text)

    def __call__(self, request: Recorded) -> Reply:
        if request.path.endswith(":countTokens"):
            return json_reply({"totalTokens": 7})
        if request.path.endswith("/interactions"):
            return json_reply({"id": "i1", "status": "completed", "outputs": []})
        return self.gemini(request)


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Servers]:
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION",
                 "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_HTTP_CLIENT", "GOOGLE_GENAI_API_VERSION"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    with declared_and_undeclared(monkeypatch, Declared, TEXT, "gemini.api") as servers:
        yield servers


def api_client(url: str, *, vertexai: bool = False) -> Any:
    """google-genai's own ``BaseApiClient``, built outside the drop-in (as a framework or a library would)."""
    options = types.HttpOptions(base_url=url)
    if vertexai:
        credentials = Credentials(token=TOKEN)  # type: ignore[no-untyped-call]
        return _api_client.BaseApiClient(
            vertexai=True, project="acme-prod", location="europe-west4", credentials=credentials, http_options=options
        )
    return _api_client.BaseApiClient(api_key=API_KEY, http_options=options)


def reached(cls: type[Any]) -> Any:
    """google-genai's class ``cls`` as an app reaches it through the drop-in: the path of its module, then its name
    (``privsdk.genai.models.Models``)."""
    found: Any = genai
    for part in [*cls.__module__.split(".")[2:], *cls.__qualname__.split(".")]:
        found = getattr(found, part)
    return found


# -- what a hand-built resource sends ---------------------------------------------------------------------------


def _generate(api: Any) -> str:
    return str(reached(models.Models)(api).generate_content(model=MODEL, contents=PROMPT).text)


def _stream(api: Any) -> str:
    chunks = reached(models.Models)(api).generate_content_stream(model=MODEL, contents=PROMPT)
    return "".join(chunk.text or "" for chunk in chunks)


def _count(api: Any) -> str:
    return str(reached(models.Models)(api).count_tokens(model=MODEL, contents=PROMPT).total_tokens)


def _embed(api: Any) -> str:
    answer = reached(models.Models)(api).embed_content(model="gemini-embedding-001", contents=["a b", "c"])
    return str(len(answer.embeddings))


def _async_generate(api: Any) -> str:
    async def run() -> str:
        answer = await reached(models.AsyncModels)(api).generate_content(model=MODEL, contents=PROMPT)
        return str(answer.text)

    return asyncio.run(run())


def _async_client(api: Any) -> str:
    async def run() -> str:
        answer = await reached(genai_client.AsyncClient)(api).models.generate_content(model=MODEL, contents=PROMPT)
        return str(answer.text)

    return asyncio.run(run())


def _chats(api: Any) -> str:
    # Around google-genai's own Models, around its own api client: both built outside the drop-in.
    chat = reached(chats.Chats)(models.Models(api)).create(model=MODEL)
    return str(chat.send_message(PROMPT).text)


def _chat(api: Any) -> str:
    chat = reached(chats.Chat)(modules=models.Models(api), model=MODEL, history=[])
    return str(chat.send_message(PROMPT).text)


def _async_chats(api: Any) -> str:
    async def run() -> str:
        chat = reached(chats.AsyncChats)(models.AsyncModels(api)).create(model=MODEL)
        return str((await chat.send_message(PROMPT)).text)

    return asyncio.run(run())


def _interactions(api: Any) -> str:
    resource = reached(google_genai._gaos.google_genai.GeminiNextGenInteractions)(api)
    return str(resource.create(model=MODEL, input=PROMPT, store=False).id)


#: A request of a resource built by hand around google-genai's own api client, and what the declared server answers.
SENDS: dict[str, tuple[Callable[[Any], str], str]] = {
    "Models.generate_content": (_generate, TEXT),
    "Models.generate_content_stream": (_stream, TEXT),
    "Models.count_tokens": (_count, "7"),
    "Models.embed_content": (_embed, "2"),
    "AsyncModels.generate_content": (_async_generate, TEXT),
    "AsyncClient.models.generate_content": (_async_client, TEXT),
    "Chats.create.send_message": (_chats, TEXT),
    "Chat.send_message": (_chat, TEXT),
    "AsyncChats.create.send_message": (_async_chats, TEXT),
    "GeminiNextGenInteractions.create": (_interactions, "i1"),
}


@pytest.mark.parametrize("send", SENDS)
def test_a_resource_built_around_an_api_client_of_googles_own_is_judged(send: str, servers: Servers) -> None:
    """``genai.models.Models(google.genai._api_client.BaseApiClient(...)).generate_content(...)`` sent the prompt to
    a host no policy declares. Refused now before a byte is written; at a declared host, sent and answered."""
    call, answer = SENDS[send]
    refused_api = api_client(servers.undeclared.url)
    with pytest.raises(genai.PolicyViolation, match="not an endpoint privsdk knows") as refused:
        call(refused_api)
    assert isinstance(refused.value, google_genai.errors.APIError)  # google-genai's own error base, as ever
    assert servers.undeclared.requests == []
    sent_api = api_client(servers.declared.url)
    assert call(sent_api) == answer
    assert len(servers.declared.requests) == 1


def _live(api: Any) -> None:
    async def run() -> None:
        async with reached(google_genai.live.AsyncLive)(api).connect(model="gemini-live-2.5-flash"):
            pass

    asyncio.run(run())


def _music(api: Any) -> None:
    async def run() -> None:
        async with reached(google_genai.live_music.AsyncLiveMusic)(api).connect(model="lyria-realtime-exp"):
            pass

    with warnings.catch_warnings():  # google-genai warns that music is experimental
        warnings.simplefilter("ignore")
        asyncio.run(run())


def _async_files(api: Any) -> None:
    async def run() -> None:
        await reached(google_genai.files.AsyncFiles)(api).list()

    asyncio.run(run())


#: Requests of hand-built resources that no policy lets through to a host it does not know (the catalogue holds the
#: Gemini Developer API's chat, stream and embeddings only; the Live API opens a websocket): each is refused there, by
#: the guard, before it connects. ``vertexai``: Vertex AI's api client (tuning jobs are Vertex AI's alone).
REFUSED: dict[str, tuple[Callable[[Any], object], bool]] = {
    "Files.list": (lambda api: list(reached(google_genai.files.Files)(api).list()), False),
    "AsyncFiles.list": (_async_files, False),
    "Caches.list": (lambda api: list(reached(google_genai.caches.Caches)(api).list()), False),
    "Batches.list": (lambda api: list(reached(google_genai.batches.Batches)(api).list()), False),
    "Tunings.list": (lambda api: list(reached(google_genai.tunings.Tunings)(api).list()), True),
    "FileSearchStores.list": (
        lambda api: list(reached(google_genai.file_search_stores.FileSearchStores)(api).list()),
        False,
    ),
    "Documents.list": (
        lambda api: list(reached(google_genai.documents.Documents)(api).list(parent="fileSearchStores/s")),
        False,
    ),
    "Operations.get": (
        lambda api: reached(google_genai.operations.Operations)(api).get(
            types.GenerateVideosOperation.model_validate({"name": "o/1"})
        ),
        False,
    ),
    "Tokens.create": (lambda api: reached(google_genai.tokens.Tokens)(api).create(), False),
    "AsyncLive.connect": (_live, False),
    "AsyncLiveMusic.connect": (_music, False),
}


@pytest.mark.filterwarnings("ignore:The SDK's token creation implementation is experimental")
@pytest.mark.parametrize("send", REFUSED)
def test_every_other_resource_built_by_hand_asks_the_guard_first(send: str, servers: Servers) -> None:
    call, vertexai = REFUSED[send]
    api = api_client(servers.undeclared.url, vertexai=vertexai)
    with pytest.raises(genai.PolicyViolation, match="not an endpoint privsdk knows"):
        call(api)
    assert servers.undeclared.requests == []


def test_the_drop_in_hands_out_twins_that_pass_for_googles_classes(servers: Servers) -> None:
    """``privsdk.genai.models.Models`` is a subclass of google-genai's, made once, with google-genai's signature and
    methods (nothing added to a request); what google-genai builds itself (``client.models``) passes ``isinstance``
    through the drop-in, as it does for google-genai's class."""
    twin = genai.models.Models
    assert twin is not models.Models and issubclass(twin, models.Models)
    assert twin is genai.models.Models  # made once
    assert inspect.signature(twin) == inspect.signature(models.Models)
    assert twin.generate_content is models.Models.generate_content  # google-genai's own methods: no cost per request
    assert set(vars(twin)) <= {"__init__", "__doc__", "__module__", "__qualname__", "_privsdk_stands_for"}
    ours = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=servers.declared.url))
    theirs = google_genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=servers.declared.url))
    for client in (ours, theirs):
        assert isinstance(client.models, genai.models.Models)
        assert not isinstance(client.models, genai.models.AsyncModels)
        assert isinstance(client.aio.models, genai.models.AsyncModels)
        assert isinstance(client.files, genai.files.Files) and isinstance(client.chats, genai.chats.Chats)
        assert isinstance(client.aio.live, genai.live.AsyncLive) and isinstance(client.aio, genai.client.AsyncClient)
    assert issubclass(models.Models, twin) and not isinstance(object(), twin)

    class Derived(twin):  # type: ignore[misc,valid-type]  # a class the app derives from a twin checks as any does
        pass

    assert not isinstance(ours.models, Derived)
    assert isinstance(Derived(api_client(servers.declared.url)), twin)
    # The drop-in's client's own resources send where it does.
    assert genai.chats.Chats(ours.models).create(model=MODEL).send_message(PROMPT).text == TEXT


def test_each_api_client_is_guarded_once(servers: Servers, monkeypatch: pytest.MonkeyPatch) -> None:
    """Twins built around one api client guard it once; under instrument(), google-genai's api client is guarded as
    it is built, and a twin around it leaves it so."""
    guarded: list[int] = []
    guard_api_client = dropin._guard_api_client

    def counted(api: Any, *args: Any) -> None:
        guarded.append(id(api))
        guard_api_client(api, *args)

    monkeypatch.setattr(dropin, "_guard_api_client", counted)
    api = api_client(servers.declared.url)
    resources = [genai.models.Models(api), genai.files.Files(api), genai.chats.Chats(models.Models(api))]
    resources.append(genai.client.AsyncClient(api))
    assert guarded == [id(api)]
    privsdk.instrument()
    try:
        built = api_client(servers.declared.url)
    finally:
        privsdk.uninstrument()
    assert genai.models.Models(built).generate_content(model=MODEL, contents=PROMPT).text == TEXT
    assert guarded == [id(api), id(built)]
    assert not is_guarded(api_client(servers.declared.url)._httpx_client)  # google-genai's own, outside the drop-in


def test_importing_privsdk_imports_no_google_genai() -> None:
    vendor = "[m for m in sys.modules if m.startswith(('google.genai', 'privsdk_vertex'))]"
    code = f"import sys, privsdk; assert not {vendor}, {vendor}"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- conformance: every class google-genai builds around an api client, this release's and a newer one's -----------


@functools.cache
def googles_classes() -> tuple[type[Any], ...]:
    """Every class defined in google-genai's modules (its own tests aside, and modules that need what is not
    installed: sentencepiece for the local tokenizer)."""
    for info in pkgutil.walk_packages(google_genai.__path__, "google.genai."):
        if ".tests" not in info.name:
            try:
                importlib.import_module(info.name)
            except ImportError:
                continue
    found: dict[type[Any], None] = {}
    for name, module in list(sys.modules.items()):
        if name.startswith("google.genai.") and ".tests" not in name:
            for value in list(vars(module).values()):
                if isinstance(value, type) and value.__module__ == name:
                    found[value] = None
    return tuple(found)


_MODELS = re.compile(r"\b(Async)?Models\b")


def api_parameter(cls: type[Any]) -> inspect.Parameter | None:
    """The parameter of ``cls.__init__`` that takes an api client, or the ``Models`` that holds one."""
    try:
        parameters = inspect.signature(cls.__init__).parameters.values()
    except (TypeError, ValueError):
        return None
    for parameter in parameters:
        note = str(parameter.annotation)
        if "api_client" in parameter.name or parameter.name == "modules" or "BaseApiClient" in note:
            return parameter
        if _MODELS.search(note):
            return parameter
    return None


def clients() -> list[type[Any]]:
    """google-genai's classes that send: those built around an api client, and the clients and api clients."""
    return [
        cls
        for cls in googles_classes()
        if api_parameter(cls) is not None or issubclass(cls, google_genai.Client | _api_client.BaseApiClient)
    ]


def test_the_conformance_walk_finds_googles_resources() -> None:
    names = {f"{cls.__module__}.{cls.__qualname__}" for cls in clients()}
    expected = {
        "google.genai.models.Models", "google.genai.models.AsyncModels", "google.genai.files.Files",
        "google.genai.caches.AsyncCaches", "google.genai.batches.Batches", "google.genai.tunings.AsyncTunings",
        "google.genai.live.AsyncLive", "google.genai.live_music.AsyncLiveMusic", "google.genai.operations.Operations",
        "google.genai.file_search_stores.FileSearchStores", "google.genai.documents.AsyncDocuments",
        "google.genai.tokens.Tokens", "google.genai.client.AsyncClient", "google.genai.chats.Chats",
        "google.genai.chats.AsyncChat", "google.genai._gaos.google_genai.GeminiNextGenInteractions",
        "google.genai._gaos.google_genai.AsyncGeminiNextGenAgents", "google.genai.client.Client",
        "google.genai._api_client.BaseApiClient", "google.genai._replay_api_client.ReplayApiClient",
    }  # fmt: skip
    assert expected <= names, sorted(expected - names)


#: What the other required parameters of google-genai's constructors take, for the walk below. A newer release's
#: class with another one fails the walk until it is named here.
OTHER_ARGUMENTS: dict[str, Callable[[Any], Any]] = {
    "model": lambda api: MODEL,
    "history": lambda api: [],
    "websocket": lambda api: None,
    "sdk_config": lambda api: google_genai._gaos.google_genai.build_google_genai_client(api).sdk_configuration,
    "mode": lambda api: "api",
    "replay_id": lambda api: "privsdk",
}


def built(made: type[Any], cls: type[Any], url: str) -> tuple[Any, Any]:
    """An object of ``made`` (the drop-in's class in place of google-genai's ``cls``), built around google-genai's
    own api client (or its own ``Models`` around one); and that api client."""
    if issubclass(cls, google_genai.Client | _api_client.BaseApiClient):
        given = {"api_key": API_KEY, "http_options": types.HttpOptions(base_url=url)}
        api = None
    else:
        api = api_client(url)
        taken = api_parameter(cls)
        assert taken is not None
        holder = api
        if taken.name == "modules" or _MODELS.search(str(taken.annotation)):
            holder = (models.AsyncModels if "Async" in str(taken.annotation) else models.Models)(api)
        given = {taken.name: holder}
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name in given or name == "self" or parameter.default is not inspect.Parameter.empty:
            continue
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        assert name in OTHER_ARGUMENTS, f"teach the walk what {cls.__qualname__}'s {name} takes"
        given[name] = OTHER_ARGUMENTS[name](api)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental resources warn as they are built
        obj = made(**given)
    return obj, api if api is not None else (obj._api_client if isinstance(obj, google_genai.Client) else obj)


def test_every_class_google_genai_builds_around_an_api_client_is_guarded(servers: Servers) -> None:
    """Each class of google-genai's whose ``__init__`` takes an api client (or a ``Models``), and each client and api
    client class, reached through the drop-in, is a guarded subclass: built around google-genai's own api client, that
    api client's httpx clients send through the guard."""
    unguarded = []
    for cls in clients():
        name = f"{cls.__module__}.{cls.__qualname__}"
        made = reached(cls)
        assert made is not cls and issubclass(made, cls), f"privsdk.genai hands out google-genai's own {name}"
        if cls not in (google_genai.Client, _api_client.BaseApiClient):  # the drop-in's own two: plain subclasses
            assert issubclass(cls, made), name  # google-genai's class passes for the twin
        _, api = built(made, cls, servers.undeclared.url)
        if not (is_guarded(api._httpx_client) and is_guarded(api._async_httpx_client)):
            unguarded.append(name)
    assert unguarded == []


def test_the_drop_in_hands_out_no_sending_class_of_googles_own() -> None:
    """Every other class of google-genai's is, through ``privsdk.genai``, google-genai's own."""
    sending = set(clients())
    for cls in googles_classes():
        try:
            made = reached(cls)
        except AttributeError:  # not reachable by its module's path (a class defined inside a function)
            continue
        if cls not in sending:
            assert made is cls, f"{cls.__module__}.{cls.__qualname__}"
