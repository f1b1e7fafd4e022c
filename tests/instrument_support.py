"""What the tests of privsdk.Client's adapters under ``privsdk.instrument()`` share (tests/test_adapter_guard_under_
instrument*.py): a Client with a policy and a catalogue of its own, whose guard must judge its requests rather than
the process-wide one instrument() installs as each SDK client is built.

The Client's catalogue is privsdk's with one reading stricter: images sent in (the feature ``file_inputs``, which the
guard reads at the wire and the call names nowhere else) are shared with another provider, so a tenant requiring
``no_provider_sharing`` is refused them by that Client alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import privsdk
from privsdk.catalogue import DATA_DIR, Catalogue
from privsdk.types import Image, Message, Text, TextDelta
from tests.guard_support import reset_default_guard
from tests.wire.server import App, LoopbackServer

TEXT = "A cat, asleep"
#: A message with an image at a URL (Bedrock's adapter wants the bytes: its tests build their own).
WITH_IMAGE = [Message("user", (Text("What is in this picture?"), Image(url="https://example.com/cat.png")))]
#: The Client's tenant.
TENANT = """
[tenants.default]
classes.default = ["no_provider_sharing"]
"""
#: The stricter reading, for an offering whose facts cite ``source`` as of ``as_of``.
STRICTER = """
[[offerings.limits]]
features = ["file_inputs"]
note = "A deployment's own reading: images sent in go to a moderation provider."
[offerings.limits.facts.no_provider_sharing]
value = false
source = "{source}"
as_of = {as_of}
note = "This test's own reading."

"""


@pytest.fixture
def instrumented() -> Iterator[None]:
    privsdk.instrument()
    try:
        yield
    finally:
        privsdk.uninstrument()


def stricter_catalogue(tmp_path: Path, file: str, source: str, as_of: str) -> Catalogue:
    """privsdk's catalogue, with :data:`STRICTER` on the first offering of ``file`` (``cohere.toml``)."""
    directory = tmp_path / "catalogue"
    shutil.copytree(DATA_DIR, directory, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = directory / file
    text = path.read_text(encoding="utf-8")
    first = text.index("[[offerings]]")
    second = text.find("[[offerings]]", first + 1)
    second = len(text) if second < 0 else second  # one offering: the limit goes at the file's end
    limit = STRICTER.format(source=source, as_of=as_of)
    path.write_text(text[:second] + "\n" + limit + text[second:], encoding="utf-8")
    return Catalogue(directory)


def own_client(
    tmp_path: Path, catalogue: Catalogue, targets: str, credentials: Mapping[str, Any], *, aio: bool, **options: Any
) -> Any:
    """A privsdk.Client (an AsyncClient with ``aio``) whose policy is :data:`TENANT` and ``targets``, on
    ``catalogue``."""
    config = tmp_path / "own.toml"
    config.write_text(TENANT + targets, encoding="utf-8")
    policy = privsdk.load_policy({"PRIVSDK_CONFIG": str(config), "PRIVSDK_USAGE": "none"}, catalogue)
    make = privsdk.AsyncClient if aio else privsdk.Client
    return make(policy=policy, catalogue=catalogue, usage="none", credentials=dict(credentials), **options)


def send(client: Any, target: str, way: str, messages: Any) -> str:
    """The answer's text to ``messages``, sent to ``target`` the ``way`` given: chat, stream, async chat, async
    stream."""
    if way == "chat":
        return str(client.chat(target, messages).text)
    if way == "stream":
        return "".join(e.text for e in client.chat(target, messages, stream=True) if isinstance(e, TextDelta))

    async def run() -> str:
        if way == "async chat":
            return str((await client.chat(target, messages)).text)
        stream = await client.chat(target, messages, stream=True)
        return "".join([e.text async for e in stream if isinstance(e, TextDelta)])

    return asyncio.run(run())


def transports(http: Any) -> list[Any]:
    """The transports an httpx client sends through."""
    return [t for t in (http._transport, *http._mounts.values()) if t is not None]


class Servers(NamedTuple):
    declared: LoopbackServer  # the vendor's API, as PRIVSDK_ENDPOINTS declares it
    undeclared: LoopbackServer  # a host no policy knows: must receive nothing


@contextlib.contextmanager
def declared_and_undeclared(
    monkeypatch: pytest.MonkeyPatch, app: Callable[[str], App], text: str, offering: str
) -> Iterator[Servers]:
    """Two loopback servers of ``app`` (given the text it answers): one that ``PRIVSDK_ENDPOINTS`` declares as
    ``offering`` and answers ``text`` (no requirement, no records), one no policy knows, which must have received
    nothing by the end."""
    with LoopbackServer(app(text)) as declared, LoopbackServer(app("leaked")) as undeclared:
        monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{declared.url}={offering}")
        monkeypatch.setenv("PRIVSDK_USAGE", "none")
        reset_default_guard()
        yield Servers(declared, undeclared)
        assert declared.errors == [] and undeclared.errors == []
        assert undeclared.requests == [], "a request reached a host no policy declares"
    reset_default_guard()
