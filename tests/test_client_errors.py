"""Every error privsdk.Client raises is a content-free PrivsdkError, whatever the vendor answers or the app passes.

The real SDKs run over real HTTP against loopback servers that answer what a broken vendor, a proxy or a cut
connection would: a 200 whose JSON stops mid-answer, a 200 without the fields the API promises, a stream whose
event is cut. The app passes what apps get wrong: a key with a smart quote pasted into it, a tool schema that is
a list, ``stop=1234``, an unknown ``tool_choice``, a vendor field of the wrong shape. Each error is searched, with
every exception chained to it, its attributes and its traceback, for the canaries the answer, the prompt and the
key held; the usage records must say what happened.
"""

from __future__ import annotations

import asyncio
import json
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from privsdk.async_client import AsyncClient
from privsdk.client import Client
from privsdk.errors import (
    BadRequest,
    ConfigError,
    InvalidInput,
    PrivsdkError,
    Unavailable,
    UnexpectedError,
    Unsupported,
)
from privsdk.resilience import Limits
from privsdk.types import Tool
from privsdk.usage import UsageRecord
from tests.wire.bedrock import BedrockWire
from tests.wire.cohere import CohereApp
from tests.wire.mistral import MistralApp
from tests.wire.openai import OpenAIWire
from tests.wire.server import App, LoopbackServer, Recorded, Reply, Status
from tests.wire.vertex import API_KEY as GEMINI_KEY
from tests.wire.vertex import GeminiApp

pytestmark = pytest.mark.usefixtures("no_machine_aws")

MARK = "CANARY"
OUTPUT = f"{MARK}-OUTPUT diagnosis: patient 42 has"
PROMPT = f"{MARK}-PROMPT summarise the chart"
KEY = f"sk-{MARK}-KEY-0123456789abcdef\u2019"  # a right single quote pasted with the key
JSON = {"Content-Type": "application/json"}
SSE = {"Content-Type": "text/event-stream"}


def everything(exc: BaseException) -> str:
    """All an app could see of an error: text, repr, args, attributes, traceback, and every exception chained."""
    parts = [f"{type(exc).__name__}: {exc!s} {exc!r} {exc.args!r}", "".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    linked: BaseException | None = exc
    while linked is not None and id(linked) not in seen:
        seen.add(id(linked))
        parts.append(f"{linked!r} {linked.args!r} {getattr(linked, '__dict__', {})!r}")
        for chained in (linked.__cause__, linked.__context__):
            if chained is not None:
                parts.append(f"{chained!r} {chained.args!r} {getattr(chained, '__dict__', {})!r}")
        linked = linked.__cause__ or linked.__context__
    return "\n".join(parts)


def clean(exc: BaseException) -> BaseException:
    """``exc``, once checked: a privsdk error that chains nothing and holds no canary."""
    assert isinstance(exc, PrivsdkError), f"{type(exc).__module__}.{type(exc).__name__} is no PrivsdkError"
    assert exc.__cause__ is None and exc.__context__ is None, "a privsdk error chains another exception"
    assert MARK not in everything(exc)
    return exc


class Scripted:
    """A vendor's app, except for the replies queued in ``next``: each answers one request, in order."""

    def __init__(self, inner: App):
        self.inner = inner
        self.next: list[Reply] = []

    def __call__(self, request: Recorded) -> Reply:
        return self.next.pop(0) if self.next else self.inner(request)


class Vendors:
    """One loopback server per vendor, a policy with a target on each, and a way to build clients on it."""

    def __init__(self, tmp_path: Path):
        self.apps = {
            "openai": Scripted(OpenAIWire(key="sk-x")),
            "cohere": Scripted(CohereApp()),
            "mistral": Scripted(MistralApp()),
            "gemini": Scripted(GeminiApp()),
            "bedrock": Scripted(BedrockWire()),
        }
        self.servers = {name: LoopbackServer(app) for name, app in self.apps.items()}
        self.config = tmp_path / "privsdk.toml"
        self.records: list[UsageRecord] = []

    def __enter__(self) -> Vendors:
        for server in self.servers.values():
            server.__enter__()
        url = {name: server.url for name, server in self.servers.items()}
        self.config.write_text(
            f"""
[attest]
cohere = ["plan=paid", "training_opt_out"]
mistral = ["training_opt_out"]
gemini = ["plan=paid"]

[targets.oa]
offering = "openai.api"
model = "gpt-4o-mini"
endpoint = "{url["openai"]}/v1"

[targets.co]
offering = "cohere.saas"
model = "command-r-plus"
endpoint = "{url["cohere"]}"

[targets.mi]
offering = "mistral.api"
model = "mistral-small-latest"
endpoint = "{url["mistral"]}"

[targets.ge]
offering = "gemini.api"
model = "gemini-2.5-flash"
endpoint = "{url["gemini"]}"

[targets.br]
offering = "bedrock.runtime"
model = "anthropic.claude-3-haiku-20240307-v1:0"
region = "eu-central-1"
endpoint = "{url["bedrock"]}"
""",
            encoding="utf-8",
        )
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.servers.values():
            server.__exit__()

    def options(self, **more: Any) -> dict[str, Any]:
        credentials = {
            "openai": {"api_key": "sk-x"},
            "cohere": {"api_key": "co-x"},
            "mistral": {"api_key": "mi-x"},
            "gemini": {"api_key": GEMINI_KEY},
            "bedrock": {"aws_access_key_id": "AKIDFAKE", "aws_secret_access_key": "x"},
        }
        return {
            "environ": {"PRIVSDK_CONFIG": str(self.config)},
            "usage": self.records.append,
            "credentials": credentials,
            "timeout": 5.0,
            "limits": Limits(max_attempts=1),
            **more,
        }

    def client(self, **more: Any) -> Client:
        return Client(**self.options(**more))

    def aclient(self, **more: Any) -> AsyncClient:
        return AsyncClient(**self.options(**more))

    def sent(self, vendor: str) -> int:
        return len(self.servers[vendor].requests)

    def outcomes(self, client: Client | AsyncClient) -> list[tuple[str, str | None]]:
        client.flush_usage(5)
        return [(r.outcome, r.error_class) for r in self.records]


@pytest.fixture
def vendors(tmp_path: Path) -> Iterator[Vendors]:
    with Vendors(tmp_path) as found:
        yield found


def raised(call: Callable[[], object]) -> BaseException:
    try:
        call()
    except BaseException as exc:
        return exc
    raise AssertionError("no error")


# -- 1. a 200 whose JSON is cut short ------------------------------------------------------------------------------

TRUNCATED = Status(200, JSON, ('{"id":"c","choices":[{"message":{"role":"assistant","content":"' + OUTPUT).encode())
GEMINI_TRUNCATED = Status(200, JSON, ('{"candidates":[{"content":{"parts":[{"text":"' + OUTPUT).encode())
CHUNK = (
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'
)


@pytest.mark.parametrize(
    ("vendor", "fault", "call"),
    [
        ("openai", TRUNCATED, lambda c: c.chat("oa", PROMPT)),
        ("gemini", GEMINI_TRUNCATED, lambda c: c.chat("ge", PROMPT)),
        ("gemini", GEMINI_TRUNCATED, lambda c: c.embed("ge", [PROMPT])),
        ("openai", TRUNCATED, lambda c: asyncio.run(c.chat("oa", PROMPT))),
    ],
    ids=["openai chat", "gemini chat", "gemini embed", "openai async chat"],
)
def test_a_200_whose_json_is_cut_short_is_unavailable_and_holds_nothing_of_it(
    vendors: Vendors, vendor: str, fault: Status, call: Callable[[Any], object]
) -> None:
    is_async = "asyncio" in call.__code__.co_names
    client = vendors.aclient() if is_async else vendors.client()
    vendors.servers[vendor].fail(fault)
    error = clean(raised(lambda: call(client)))
    assert isinstance(error, Unavailable) and error.transient and error.code == "UnexpectedResponse"
    assert vendors.outcomes(client) == [("error", "unavailable")]


def test_a_stream_whose_first_event_is_cut_short_is_unavailable(vendors: Vendors) -> None:
    client = vendors.client()
    vendors.apps["openai"].next = [
        Reply(
            200, headers=SSE, chunks=[('data: {"id":"c","choices":[{"delta":{"content":"' + OUTPUT + "\n\n").encode()]
        )
    ]
    error = clean(raised(lambda: list(client.chat("oa", PROMPT, stream=True))))
    assert isinstance(error, Unavailable)
    assert vendors.outcomes(client) == [("error", "unavailable")]


def test_a_stream_cut_short_after_its_first_event_ends_with_unavailable(vendors: Vendors) -> None:
    client = vendors.client()
    bad = ('data: {"id":"c","choices":[{"delta":{"content":"' + OUTPUT + "\n\n").encode()
    vendors.apps["openai"].next = [Reply(200, headers=SSE, chunks=[CHUNK, bad])]
    stream = client.chat("oa", PROMPT, stream=True)
    assert next(stream).text == "x"  # type: ignore[union-attr]
    error = clean(raised(lambda: next(stream)))
    assert isinstance(error, Unavailable)
    assert vendors.outcomes(client) == [("error", "unavailable")]


# -- 2. a key with a character an HTTP header cannot carry ---------------------------------------------------------


def test_a_credential_a_header_cannot_carry_is_a_config_error_at_construction(vendors: Vendors) -> None:
    options = vendors.options()
    options["credentials"] = {**options["credentials"], "openai": {"api_key": KEY}}
    error = clean(raised(lambda: Client(**options)))
    assert isinstance(error, ConfigError) and "credentials['openai']['api_key']" in str(error)
    assert "smart quote" in str(error)


def test_a_tenant_credential_a_header_cannot_carry_names_its_variable(
    vendors: Vendors, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_OPENAI_KEY", KEY)
    with vendors.config.open("a", encoding="utf-8") as config:
        config.write('\n[tenants.acme]\nclasses.default = []\ncredentials.openai = { api_key = "ACME_OPENAI_KEY" }\n')
    options = vendors.options(environ={"PRIVSDK_CONFIG": str(vendors.config), "ACME_OPENAI_KEY": KEY})
    error = clean(raised(lambda: Client(**options)))
    assert isinstance(error, ConfigError) and "ACME_OPENAI_KEY" in str(error)


@pytest.mark.parametrize(
    ("target", "variable"), [("oa", "OPENAI_API_KEY"), ("mi", "MISTRAL_API_KEY"), ("ge", "GEMINI_API_KEY")]
)
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_key_from_the_environment_a_header_cannot_carry_is_a_config_error_naming_the_variable(
    vendors: Vendors, monkeypatch: pytest.MonkeyPatch, target: str, variable: str, is_async: bool
) -> None:
    for name in ("OPENAI_API_KEY", "MISTRAL_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, KEY)
    options = vendors.options(credentials={})  # the SDKs read their own variables
    if is_async:
        client: Any = AsyncClient(**options)
        error = clean(raised(lambda: asyncio.run(client.chat(target, PROMPT))))
    else:
        client = Client(**options)
        error = clean(raised(lambda: client.chat(target, PROMPT)))
    assert isinstance(error, ConfigError) and variable in str(error)
    assert all(vendors.sent(vendor) == 0 for vendor in vendors.servers)


# -- 3. a vendor field of the wrong shape -------------------------------------------------------------------------


def test_a_mistral_field_the_sdk_rejects_is_a_bad_request_without_its_value(vendors: Vendors) -> None:
    client = vendors.client()
    prediction = {"type": "content", "content": [f"def charge(card='{MARK}-PAN-4111111111111111'): ..."]}
    error = clean(raised(lambda: client.chat("mi", PROMPT, extra={"prediction": prediction})))
    assert isinstance(error, BadRequest) and error.code == "ValidationError" and not error.transient
    assert vendors.sent("mistral") == 0
    assert vendors.outcomes(client) == [("error", "bad_request")]


# -- 4. a 200 without the API's shape, and arguments of the wrong shape --------------------------------------------


@pytest.mark.parametrize(
    ("vendor", "body", "call"),
    [
        (
            "openai",
            {"id": "c", "object": "chat.completion", "choices": None, "note": OUTPUT},
            lambda c: c.chat("oa", "hi"),
        ),
        (
            "openai",
            {"data": [{"embedding": [0.1]}, {"embedding": [0.2]}], "note": OUTPUT},
            lambda c: c.embed("oa", ["a", "b"]),
        ),
        ("openai", {"object": "list", "data": None, "note": OUTPUT}, lambda c: c.embed("oa", [PROMPT])),
        (
            "openai",
            {"object": "list", "data": [{"index": 0, "embedding": f"{OUTPUT}!"}], "model": "m"},
            lambda c: c.embed("oa", [PROMPT]),
        ),
        (
            "cohere",
            {"id": "c", "message": None, "finish_reason": "COMPLETE", "note": OUTPUT},
            lambda c: c.chat("co", "hi"),
        ),
        ("cohere", {"id": "r", "results": None, "note": OUTPUT}, lambda c: c.rerank("co", "q", ["d"])),
        ("bedrock", {"stopReason": "end_turn", "note": OUTPUT}, lambda c: c.chat("br", "hi")),
        ("bedrock", {"output": {"message": None}, "stopReason": "end_turn"}, lambda c: c.chat("br", "hi")),
    ],
    ids=[
        "openai chat",
        "openai embed",
        "openai embed no data",
        "openai embed not base64",
        "cohere chat",
        "cohere rerank",
        "bedrock no output",
        "bedrock null message",
    ],
)
def test_a_200_without_the_apis_shape_is_unavailable(
    vendors: Vendors, vendor: str, body: Mapping[str, Any], call: Callable[[Client], object]
) -> None:
    client = vendors.client()
    vendors.servers[vendor].fail(Status(200, JSON, json.dumps(body).encode()))
    error = clean(raised(lambda: call(client)))
    assert isinstance(error, Unavailable) and error.code in ("UnexpectedResponse", "ResponseParserError")
    assert vendors.outcomes(client) == [("error", "unavailable")]


SCHEMA = [f"{MARK}-TOOLDOC look up the patient's HIV status"]


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"tools": [Tool("lookup", "d", SCHEMA)]}, "tools[0] parameters"),  # type: ignore[arg-type]
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": SCHEMA}}},
            "response_format",
        ),
        ({"response_format": SCHEMA}, "response_format"),
        ({"stop": 1234}, "stop"),
        ({"stop": ["a", 3]}, "stop"),
        ({"tool_choice": f"{MARK}-CHOICE"}, "tool_choice"),
        ({"tools": 7}, "tools"),
        ({"extra": [f"{MARK}-EXTRA"]}, "extra"),
    ],
)
@pytest.mark.parametrize("target", ["oa", "co", "mi", "ge", "br"])
def test_an_argument_of_the_wrong_shape_is_invalid_input_naming_it_before_anything_is_sent(
    vendors: Vendors, target: str, options: dict[str, Any], named: str
) -> None:
    client = vendors.client()
    error = clean(raised(lambda: client.chat(target, PROMPT, **options)))
    assert isinstance(error, InvalidInput) and isinstance(error, ValueError)
    assert str(error).startswith(named)
    assert all(vendors.sent(vendor) == 0 for vendor in vendors.servers)


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda c: c.chat("oa", [{"role": "user", "content": 5}]), "messages[0]['content']"),
        (lambda c: c.chat("oa", 42), "messages"),
        (lambda c: c.embed("oa", [PROMPT, 3]), "texts[1]"),
        (lambda c: c.embed("oa", 3), "texts"),
        (lambda c: c.rerank("co", PROMPT, [PROMPT, None]), "documents[1]"),
        (lambda c: c.rerank("co", 5, [PROMPT]), "query"),
    ],
    ids=["content", "messages", "texts item", "texts", "documents item", "query"],
)
def test_messages_texts_and_documents_of_the_wrong_shape_are_invalid_input(
    vendors: Vendors, call: Callable[[Client], object], named: str
) -> None:
    error = clean(raised(lambda: call(vendors.client())))
    assert isinstance(error, InvalidInput) and str(error).startswith(named)


@pytest.mark.parametrize("target", ["co", "mi", "ge"])
def test_a_named_tool_choice_a_vendor_cannot_take_is_unsupported(vendors: Vendors, target: str) -> None:
    client = vendors.client()
    tools = [Tool("lookup", "d", {"type": "object", "properties": {}})]
    named: Any = {"type": "function", "function": {"name": "lookup"}}  # what the openai drop-in's reroute passes on
    error = clean(raised(lambda: client.chat(target, PROMPT, tools=tools, tool_choice=named)))
    assert isinstance(error, Unsupported) and "tool_choice" in str(error)
    assert all(vendors.sent(vendor) == 0 for vendor in vendors.servers)


class Unserialisable:
    """A vendor field's value no JSON encoder takes; its repr holds a canary."""

    def __repr__(self) -> str:
        return f"Unserialisable({MARK}-VALUE)"


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_an_exception_no_adapter_classifies_is_an_unexpected_error_naming_its_type_only(
    vendors: Vendors, is_async: bool
) -> None:
    extra = {"metadata": {"value": Unserialisable()}}
    if is_async:
        aclient = vendors.aclient()
        error = clean(raised(lambda: asyncio.run(aclient.chat("oa", PROMPT, extra=extra))))
        client: Client | AsyncClient = aclient
    else:
        client = vendors.client()
        error = clean(raised(lambda: client.chat("oa", PROMPT, extra=extra)))
    assert isinstance(error, UnexpectedError) and not error.transient
    assert (error.vendor, error.operation, error.code) == ("openai", "chat", "TypeError")
    assert str(error) == "openai chat call failed unexpectedly (TypeError)"
    assert vendors.sent("openai") == 0
    assert vendors.outcomes(client) == [("error", "other")]


def test_an_unexpected_error_is_not_retried_nor_falls_back(vendors: Vendors) -> None:
    client = vendors.client(limits=Limits(max_attempts=3, backoff_base_s=0.001))
    error = raised(lambda: client.chat("oa", PROMPT, extra={"metadata": {"value": Unserialisable()}}))
    assert isinstance(error, UnexpectedError)
    assert vendors.outcomes(client) == [("error", "other")]


def test_the_debug_chain_keeps_the_original_exception(vendors: Vendors, debug_chain: None) -> None:
    client = vendors.client()
    error = raised(lambda: client.chat("oa", PROMPT, extra={"metadata": {"value": Unserialisable()}}))
    assert isinstance(error, UnexpectedError) and isinstance(error.__cause__, TypeError)


def test_a_stream_event_of_the_wrong_shape_after_the_first_is_an_unexpected_error(vendors: Vendors) -> None:
    client = vendors.client()

    def event(body: dict[str, Any]) -> bytes:
        return f"event: {body['type']}\ndata: {json.dumps(body)}\n\n".encode()

    first = {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "x"}}}}
    broken = {"type": "content-delta", "index": 0, "delta": None, "note": OUTPUT}
    vendors.apps["cohere"].next = [Reply(200, headers=SSE, chunks=[event(first), event(broken)])]
    stream = client.chat("co", PROMPT, stream=True)
    assert next(stream).text == "x"  # type: ignore[union-attr]
    error = clean(raised(lambda: next(stream)))
    assert isinstance(error, UnexpectedError) and (error.vendor, error.operation) == ("cohere", "stream")
    assert vendors.outcomes(client) == [("error", "other")]


def test_an_async_stream_event_of_the_wrong_shape_is_an_unexpected_error(vendors: Vendors) -> None:
    client = vendors.aclient()

    def event(body: dict[str, Any]) -> bytes:
        return f"event: {body['type']}\ndata: {json.dumps(body)}\n\n".encode()

    first = {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "x"}}}}
    broken = {"type": "content-delta", "index": 0, "delta": None, "note": OUTPUT}
    vendors.apps["cohere"].next = [Reply(200, headers=SSE, chunks=[event(first), event(broken)])]

    async def run() -> BaseException:
        stream = await client.chat("co", PROMPT, stream=True)
        assert (await anext(stream)).text == "x"  # type: ignore[union-attr]
        try:
            await anext(stream)
        except BaseException as exc:
            return exc
        raise AssertionError("no error")

    error = clean(asyncio.run(run()))
    assert isinstance(error, UnexpectedError) and (error.vendor, error.operation) == ("cohere", "stream")
    assert vendors.outcomes(client) == [("error", "other")]


def test_an_async_stream_whose_first_event_is_cut_short_is_unavailable(vendors: Vendors) -> None:
    client = vendors.aclient()
    cut = ('data: {"id":"c","choices":[{"delta":{"content":"' + OUTPUT + "\n\n").encode()
    vendors.apps["openai"].next = [Reply(200, headers=SSE, chunks=[cut])]

    async def run() -> None:
        async for _ in await client.chat("oa", PROMPT, stream=True):
            pass

    error = clean(raised(lambda: asyncio.run(run())))
    assert isinstance(error, Unavailable)
    assert vendors.outcomes(client) == [("error", "unavailable")]


class Interrupting(Mapping[str, Any]):
    """A tool schema whose copy, made by the adapter inside the attempt (``dict(schema)``), is interrupted (Ctrl-C)."""

    def __getitem__(self, key: str) -> Any:
        if key != "type":
            raise KeyError(key)
        return "object"

    def __iter__(self) -> Iterator[str]:
        return iter(["type"])

    def __len__(self) -> int:
        return 1

    def keys(self) -> Any:
        raise KeyboardInterrupt


def test_ctrl_c_inside_an_attempt_passes_through_untouched_and_is_recorded_cancelled(vendors: Vendors) -> None:
    client = vendors.client()
    tools = [Tool("lookup", "d", Interrupting())]
    with pytest.raises(KeyboardInterrupt):
        client.chat("oa", PROMPT, tools=tools)
    assert vendors.outcomes(client) == [("cancelled", None)]  # stopped by the app: no error class


def test_a_cancelled_async_call_is_cancelled_not_contained(vendors: Vendors) -> None:
    from tests.wire.server import Delay

    client = vendors.aclient()
    vendors.servers["openai"].fail(Delay(2.0))

    async def run() -> None:
        task = asyncio.ensure_future(client.chat("oa", PROMPT))
        await asyncio.sleep(0.3)
        task.cancel()
        await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(run())
    assert [outcome for outcome, _ in vendors.outcomes(client)] == ["cancelled"]


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.chat("oa", f"{PROMPT} \ud800"),
        lambda c: c.chat("oa", [{"role": "user", "content": f"{PROMPT} \ud800"}], temperature=0.1),
        lambda c: c.embed("oa", ["ok", f"{PROMPT} \ud800"]),
        lambda c: c.rerank("co", "q", [f"{PROMPT} \ud800"]),
    ],
    ids=["prompt", "message with options", "text", "document"],
)
def test_text_that_cannot_be_encoded_chains_nothing_that_holds_it(
    vendors: Vendors, call: Callable[[Client], object]
) -> None:
    """The encoder's UnicodeEncodeError holds the whole text in ``.object``: it must not ride along as the context."""
    error = clean(raised(lambda: call(vendors.client())))
    assert isinstance(error, InvalidInput) and "lone surrogate" in str(error)


# -- 5. positions, not keys ----------------------------------------------------------------------------------------


def test_invalid_input_names_a_tool_schema_item_by_position_not_by_its_keys(vendors: Vendors) -> None:
    schema = {
        "type": "object",
        "properties": {f"{MARK}_patient_hiv_status": {"type": "string", "description": "\ud800"}},
    }
    error = clean(raised(lambda: vendors.client().chat("oa", "hi", tools=[Tool("lookup", "d", schema)])))
    assert isinstance(error, InvalidInput) and str(error).startswith("tools[0] parameters")


# -- arguments of the wrong type: named errors, before anything is sent ---------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"tags": "team=search"}, "tags must be a dict"),
        ({"deadline_s": "30"}, "deadline_s must be seconds"),
        ({"deadline_s": -1}, "deadline_s must be seconds"),
        ({"timeout": float("nan")}, "timeout must be seconds"),
        ({"max_attempts": 0}, "max_attempts must be a whole number"),
        ({"max_attempts": "3"}, "max_attempts must be a whole number"),
        ({"features": 5}, "features must be a list of str"),
        ({"features": "stored_responses"}, "features must be a list of str"),
        ({"features": ["stored_responses", 5]}, "features[1] must be a str"),
        ({"tenant": ["acme"]}, "tenant must be a str"),
        ({"data_class": {"x"}}, "data_class must be a str"),
        ({"tenant": ""}, "tenant must be a str, a tenant's name (got '')"),  # was the default tenant's policy
        ({"data_class": ""}, "data_class must be a str, a data class's name (got '')"),
        ({"temperature": "hot"}, "temperature must be a finite number"),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else None,
)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_option_of_the_wrong_type_is_an_invalid_argument_naming_it(
    vendors: Vendors, options: dict[str, Any], named: str, mode: str
) -> None:
    """These raised Python's own TypeError (or, for deadline_s, failed at the first attempt), not a PrivsdkError."""
    from privsdk.errors import InvalidArgument

    if mode == "sync":
        error = raised(lambda: vendors.client().chat("oa", PROMPT, **options))
    else:
        error = raised(lambda: asyncio.run(vendors.aclient().chat("oa", PROMPT, **options)))
    assert isinstance(error, InvalidArgument) and isinstance(error, InvalidInput) and isinstance(error, TypeError)
    assert str(error).startswith(named), str(error)
    assert MARK not in everything(error)
    assert vendors.sent("openai") == 0


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_misspelt_option_is_an_invalid_argument_naming_it(vendors: Vendors, mode: str) -> None:
    """``temprature=0.2`` was dropped without a word, and the call sent at the vendor's default."""
    from privsdk.errors import InvalidArgument

    misspelt: dict[str, Any] = {"temprature": 0.2}  # as a type checker would say too, but apps are not all checked
    if mode == "sync":
        error = raised(lambda: vendors.client().chat("oa", PROMPT, **misspelt))
    else:
        error = raised(lambda: asyncio.run(vendors.aclient().chat("oa", PROMPT, **misspelt)))
    assert isinstance(error, InvalidArgument) and str(error).startswith("'temprature' is not an option")
    misspelt = {"dimension": 8}
    embed = raised(lambda: vendors.client().embed("oa", [PROMPT], **misspelt))
    assert isinstance(embed, InvalidArgument) and "'dimension'" in str(embed)
    assert vendors.sent("openai") == 0


@pytest.mark.parametrize("model", [5, None, ["oa"], b"oa"])
def test_a_model_that_is_not_a_str_is_an_invalid_argument(vendors: Vendors, model: Any) -> None:
    """chat(5, ...) raised AttributeError ('int' object has no attribute 'partition'), chat([...]) TypeError."""
    from privsdk.errors import InvalidArgument

    client = vendors.client()
    for call in (lambda: client.chat(model, PROMPT), lambda: client.embed(model, [PROMPT])):
        error = raised(call)
        assert isinstance(error, InvalidArgument) and str(error).startswith("model must be a str"), error
    assert vendors.sent("openai") == 0


def test_options_of_the_right_type_still_pass(vendors: Vendors) -> None:
    from privsdk.context import scope

    client = vendors.client()
    features = (f for f in ["stored_responses"][:0])  # a generator: read once, for every decision of the call
    with scope(tags={"team": "search"}):
        answer = client.chat(
            "oa", "hello", tags={"k": "v"}, deadline_s=30, timeout=5.0, max_attempts=2, features=features,
            temperature=0, seed=1, max_tokens=16,
        )  # fmt: skip
    assert answer.decision is not None and answer.decision.outcome == "allow"


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"tags": "team=search"}, "tags"),
        ({"tenant": 5}, "tenant"),
        ({"data_class": ["pii"]}, "data_class"),
        ({"tenant": ""}, "tenant"),  # an empty name kept the outer scope's tenant, or gave the default's
        ({"data_class": ""}, "data_class"),
    ],
)
def test_a_scope_of_the_wrong_type_is_an_invalid_argument(kwargs: dict[str, Any], named: str) -> None:
    import privsdk
    from privsdk.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match=rf"^privsdk\.scope\({named}=\) must be "), privsdk.scope(**kwargs):
        pass


def test_guarding_what_is_no_sdk_client_is_an_invalid_argument() -> None:
    import privsdk
    from privsdk.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="takes a client of openai") as caught:
        privsdk.guard(object())
    assert isinstance(caught.value, TypeError)  # as before, for code that caught that


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"timeout": -1}, "timeout"),
        ({"timeout": "30"}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"tenants": "dir:///x"}, "tenants"),
        ({"usage": 5}, "usage"),
        ({"usage": "bogus://x"}, "usage"),
        ({"policy": "privsdk.toml"}, "policy"),
        ({"endpoints": "http://x=openai.api"}, "endpoints"),
        ({"endpoints": {"openai": 5}}, "endpoints"),
        ({"credentials": 5}, "credentials"),
        ({"credentials": {"openai": "sk-x"}}, "credentials"),
        ({"credentials": {"openai": {"api_key": 5}}}, "credentials"),
        ({"credentials": {"opnai": {"api_key": "k"}}}, "credentials"),
        ({"limits": {"max_attempts": 2}}, "limits"),
        ({"environ": "PRIVSDK_REQUIRE=zdr"}, "environ"),
        ({"catalogue": "catalogue.toml"}, "catalogue"),
    ],
    ids=lambda v: repr(v)[:40] if isinstance(v, dict) else None,
)
def test_a_constructor_argument_of_the_wrong_type_is_a_config_error_at_construction(
    kwargs: dict[str, Any], named: str
) -> None:
    """Client(timeout=-1) and Client(tenants='dir:///x') were built, and every call then failed; Client(usage=5),
    Client(policy='file.toml'), Client(endpoints='u=o') raised Python's own errors."""
    for cls in (Client, AsyncClient):
        with pytest.raises(ConfigError) as caught:
            cls(**{"environ": {}, "usage": "none", **kwargs})
        assert str(caught.value).startswith(f"Client({named}=): "), caught.value


PASTED = "sk-proj-" + MARK + "0123456789abcdefABCDEF0123"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"credentials": {"openai": {PASTED: "x"}}},
        {"credentials": {PASTED: {"api_key": "x"}}},
        {"credentials": {"bedrock": {"AKIA" + MARK + "EXAMPLE7": "x"}}},
        {"endpoints": {PASTED: "https://llm-proxy.corp.example/v1"}},
    ],
    ids=["credential key", "credential vendor", "bedrock key", "endpoints vendor"],
)
def test_a_key_pasted_where_a_name_belongs_is_never_shown(kwargs: dict[str, Any]) -> None:
    """Client(credentials={"openai": {"<pasted key>": ...}}) printed it: "credential keys ['sk-...'] mean nothing"."""
    with pytest.raises(ConfigError) as caught:
        Client(environ={}, usage="none", **kwargs)
    assert MARK not in everything(caught.value)
    assert "not shown" in str(caught.value)


def test_a_misspelt_credential_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"'apikey' is not a credential key for openai \(openai credential keys"):
        Client(environ={}, usage="none", credentials={"openai": {"apikey": "k"}})


def test_the_bedrock_adapter_never_shows_a_key_pasted_as_a_credential_name() -> None:
    from privsdk_bedrock.clients import check_credentials

    from privsdk.policy import Target

    target = Target("br", "bedrock.runtime", "anthropic.claude-3-haiku-20240307-v1:0", region="eu-central-1")
    with pytest.raises(ConfigError) as caught:
        check_credentials(target, {"AKIA" + MARK + "EXAMPLE7": "x"}, {})
    assert MARK not in str(caught.value) and "not shown" in str(caught.value)
    with pytest.raises(ConfigError, match="'aws_access_key'"):
        check_credentials(target, {"aws_access_key": "x"}, {})


@pytest.mark.parametrize(
    ("fields", "credentials", "kept"),
    [
        ({}, {}, "OPENAI_API_KEY"),  # the SDK's own words: no key given, nothing to quote
        ({"endpoint": "https://x.test/v1", "region": None}, {"api_key": f"sk-{MARK}-KEY"}, None),
    ],
)
def test_the_openai_adapters_construction_error_is_never_chained(
    monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any], credentials: dict[str, str], kept: str | None
) -> None:
    """The adapter raised ConfigError(str(sdk_error)) from the SDK's error: a message and a cause that can quote
    what the SDK was given (a URL parser's "Invalid port: '<piece of a password>'")."""
    import openai
    import privsdk_openai
    from privsdk_openai import adapters

    from privsdk.adapter import AdapterOptions
    from privsdk.policy import Target

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    if kept is None:  # the SDK refuses with a message quoting the key it was given
        real = openai.OpenAI.__init__

        def refusing(self: Any, *args: Any, **kw: Any) -> None:
            raise ValueError(f"bad value {kw.get('api_key')!r}")

        monkeypatch.setattr(
            adapters.ChatCompletions, "_sync_client", type("C", (openai.OpenAI,), {"__init__": refusing})
        )
        assert real is openai.OpenAI.__init__
    with pytest.raises(ConfigError) as caught:
        privsdk_openai.adapter(
            Target("t", "openai.api", "gpt-4o-mini", **fields), AdapterOptions(credentials=credentials)
        )
    error = clean(caught.value)
    assert (kept in str(error)) if kept else "(ValueError" in str(error)
