"""Reroute in ``privsdk.cohere``: a refused v2 chat, stream or embed is answered from the alternative in cohere's types.

The tenant needs ``no_training``, which Cohere's SaaS API (a loopback server declared as ``cohere.saas``) does not
offer by default; its reroute list names a private Cohere deployment (another loopback server). The real cohere SDK
sends to the SaaS server; the drop-in's transport answers from the private deployment instead, through privsdk's
Client, in Cohere's v2 wire format. The SaaS server must receive nothing. What cannot be served elsewhere (rerank, the
v1 API, grounding documents, image inputs, ...) is refused and sends nothing anywhere.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import cohere
import pytest
from cohere.core.api_error import ApiError
from privsdk_cohere import dropin

import privsdk
import privsdk.cohere
from privsdk.outbound.judge import Guard
from tests.guard_support import reset_default_guard
from tests.test_canaries import MARK, assert_clean, error_text, logs  # noqa: F401 - logs is a fixture
from tests.weather_tool import TOOLS
from tests.wire.cohere import BILLED, CohereApp, error_body, vector
from tests.wire.mistral import MistralApp
from tests.wire.server import Cut, LoopbackServer, Status

KEY = "co-reroute-key"
MODEL = "command-a-03-2025"
SECRET = f"{MARK}42c0h"
MSG: Any = [{"role": "user", "content": f"What is the weather in Paris? {SECRET}"}]
CALL = ("call_7", "get_weather", '{"city": "Paris"}')
POLICY = """
[endpoints]
"{saas}" = "cohere.saas"

[targets.cohere-private]
offering = "cohere.private"
model = "command-r-plus"
endpoint = "{private}"

[tenants.hospital]
on_violation = "reroute"
classes.default = ["no_training"]
reroute."cohere/*" = ["cohere-private"]
"""


def _text(answer: Any) -> str:
    """The text of a v2 chat answer."""
    return str(answer.message.content[0].text)


class Rerouted(NamedTuple):
    saas: LoopbackServer
    private: LoopbackServer
    app: CohereApp
    usage: Path

    def client(self) -> Any:  # cohere's types are unions that strict mypy makes a test narrow at every step
        return privsdk.cohere.ClientV2(api_key=KEY, base_url=self.saas.url, max_retries=0)

    def aclient(self) -> Any:
        return privsdk.cohere.AsyncClientV2(api_key=KEY, base_url=self.saas.url, max_retries=0)

    def records(self) -> list[dict[str, Any]]:
        Guard.default().flush()
        return [json.loads(line) for line in self.usage.read_text().splitlines()] if self.usage.exists() else []


@pytest.fixture
def rerouted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rerouted]:
    app = CohereApp("Bonjour from a private Cohere")
    app.anonymous = True  # a private deployment inside the tenant's network, with no key
    with LoopbackServer(CohereApp("from Cohere's SaaS")) as saas, LoopbackServer(app) as private:
        config = tmp_path / "privsdk.toml"
        config.write_text(POLICY.format(saas=saas.url, private=private.url), encoding="utf-8")
        usage = tmp_path / "usage.jsonl"
        monkeypatch.setenv("PRIVSDK_CONFIG", str(config))
        monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{usage}")
        reset_default_guard()
        yield Rerouted(saas, private, app, usage)
        assert private.errors == [], "the reroute sent a body the private deployment would reject"
        assert saas.requests == [], "a rerouted or refused request reached the refused target"
    reset_default_guard()


def test_chat_stream_and_embed_are_answered_from_the_alternative_in_coheres_types(rerouted: Rerouted) -> None:
    client = rerouted.client()
    answer = client.chat(model=MODEL, messages=MSG, temperature=0.2, max_tokens=50)
    events = list(client.chat_stream(model=MODEL, messages=MSG))
    vectors = client.embed(
        model="embed-v4.0", texts=["alpha beta", "gamma"], input_type="search_query", embedding_types=["float"]
    )
    assert isinstance(answer, cohere.V2ChatResponse) and _text(answer) == rerouted.app.text
    assert answer.finish_reason == "COMPLETE"
    assert answer.usage is not None and answer.usage.billed_units is not None
    assert (answer.usage.billed_units.input_tokens, answer.usage.billed_units.output_tokens) == (
        BILLED["input_tokens"],
        BILLED["output_tokens"],
    )
    kinds = [e.type for e in events]
    assert kinds[0] == "message-start" and kinds[-1] == "message-end" and "content-delta" in kinds
    assert "".join(e.delta.message.content.text for e in events if e.type == "content-delta") == rerouted.app.text
    end = events[-1]
    assert isinstance(end, cohere.MessageEndV2ChatStreamResponse) and end.delta is not None
    assert end.delta.finish_reason == "COMPLETE" and end.delta.usage is not None
    assert end.delta.usage.billed_units is not None and end.delta.usage.billed_units.output_tokens == 4
    assert isinstance(vectors, cohere.EmbedByTypeResponse) and vectors.embeddings.float_ is not None
    assert vectors.embeddings.float_ == [vector("alpha beta", 0, 4), vector("gamma", 1, 4)]
    assert vectors.meta is not None and vectors.meta.billed_units is not None
    assert vectors.meta.billed_units.input_tokens == 3  # words, as the private deployment counts them
    sent = [r.json() for r in rerouted.private.requests]
    assert [r.path for r in rerouted.private.requests] == ["/v2/chat", "/v2/chat", "/v2/embed"]
    assert sent[0]["model"] == "command-r-plus" and sent[0]["temperature"] == 0.2 and sent[0]["max_tokens"] == 50
    assert sent[1]["stream"] is True and sent[2]["input_type"] == "search_query"


def test_async_clients_are_answered_from_the_alternative(rerouted: Rerouted) -> None:
    async def run() -> tuple[Any, list[Any], Any]:
        client = rerouted.aclient()
        answer = await client.chat(model=MODEL, messages=MSG)
        events = [e async for e in client.chat_stream(model=MODEL, messages=MSG)]
        vectors = await client.embed(model="embed-v4.0", texts=["one two"], input_type="search_document")
        return answer, events, vectors

    answer, events, vectors = asyncio.run(run())
    assert isinstance(answer, cohere.V2ChatResponse) and _text(answer) == rerouted.app.text
    assert "".join(e.delta.message.content.text for e in events if e.type == "content-delta") == rerouted.app.text
    assert events[-1].type == "message-end" and events[-1].delta.finish_reason == "COMPLETE"
    assert isinstance(vectors, cohere.EmbedByTypeResponse) and vectors.embeddings.float_ == [vector("one two", 0, 4)]
    assert len(rerouted.private.requests) == 3


def test_tool_calls_carry_over_and_the_tool_loop_runs_on_the_alternative(rerouted: Rerouted) -> None:
    client = rerouted.client()
    rerouted.app.tool_calls = [CALL]
    first = client.chat(model=MODEL, messages=MSG, tools=TOOLS, tool_choice="REQUIRED")
    streamed = list(client.chat_stream(model=MODEL, messages=MSG, tools=TOOLS))

    async def astream() -> list[Any]:
        return [e async for e in rerouted.aclient().chat_stream(model=MODEL, messages=MSG, tools=TOOLS)]

    astreamed = asyncio.run(astream())
    assert first.finish_reason == "TOOL_CALL" and first.message.tool_calls is not None
    call = first.message.tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments) == CALL
    for events in (streamed, astreamed):
        start = next(e for e in events if e.type == "tool-call-start")
        assert start.delta.message.tool_calls.id == CALL[0]
        assert start.delta.message.tool_calls.function.name == CALL[1]
        pieces = [e.delta.message.tool_calls.function.arguments for e in events if e.type == "tool-call-delta"]
        assert "".join(pieces) == CALL[2]
        assert events[-1].delta.finish_reason == "TOOL_CALL"
    # Cohere's documented loop: the assistant turn (with its tool plan) and the tool results as documents.
    rerouted.app.tool_calls = ()
    messages: list[Any] = [
        *MSG,
        {"role": "assistant", "tool_plan": first.message.tool_plan, "tool_calls": first.message.tool_calls},
        {
            "role": "tool",
            "tool_call_id": call.id,
            "content": [{"type": "document", "document": {"data": {"temp": 21}}}],
        },
    ]
    final = client.chat(model=MODEL, messages=messages, tools=TOOLS)
    assert final.message.content[0].text == rerouted.app.text and final.finish_reason == "COMPLETE"
    sent = rerouted.private.requests[-1].json()
    assert sent["messages"][1]["tool_calls"][0]["function"] == {"name": CALL[1], "arguments": CALL[2]}
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": CALL[0], "content": '{"temp": 21}'}
    assert rerouted.private.requests[0].json()["tool_choice"] == "REQUIRED"


def _refused(call: Any) -> dropin.PolicyViolation:
    with pytest.raises(dropin.PolicyViolation) as raised:
        call()
    return raised.value


@pytest.mark.parametrize(
    "what",
    ["rerank", "v1 chat", "documents", "strict_tools", "logprobs", "images", "int8 vectors", "image input"],
)
def test_what_cannot_be_served_elsewhere_is_refused_and_sends_nothing(rerouted: Rerouted, what: str) -> None:
    client = rerouted.client()
    calls = {
        "rerank": lambda: client.rerank(model="rerank-v3.5", query="paris", documents=["rome", "paris"]),
        "v1 chat": lambda: privsdk.cohere.Client(api_key=KEY, base_url=rerouted.saas.url, max_retries=0).chat(
            message="hi", model=MODEL
        ),
        "documents": lambda: client.chat(model=MODEL, messages=MSG, documents=["Paris is sunny."]),
        "strict_tools": lambda: client.chat(model=MODEL, messages=MSG, tools=TOOLS, strict_tools=True),
        "logprobs": lambda: client.chat(model=MODEL, messages=MSG, logprobs=True),
        "images": lambda: client.embed(model="embed-v4.0", images=["data:image/png;base64,AAAA"], input_type="image"),
        "int8 vectors": lambda: client.embed(
            model="embed-v4.0", texts=["x"], input_type="search_query", embedding_types=["int8"]
        ),
        "image input": lambda: client.chat(
            model=MODEL,
            messages=[{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}],
        ),
    }
    refusal = _refused(calls[what])
    assert isinstance(refusal, privsdk.PolicyViolation) and isinstance(refusal, ApiError)
    assert refusal.decision.outcome == "refuse" and "no_training" in str(refusal)
    assert rerouted.private.requests == []
    assert SECRET not in error_text(refusal)


@pytest.mark.parametrize(
    ("status", "error"), [(429, cohere.TooManyRequestsError), (503, cohere.ServiceUnavailableError)]
)
def test_a_failure_of_the_alternative_is_coheres_own_error_without_the_vendors_text(
    rerouted: Rerouted, status: int, error: type[ApiError]
) -> None:
    # Every attempt fails, echoing the prompt. cohere's max_retries decides the attempts: privsdk adds none.
    fault = Status(status, headers={"retry-after": "0"}, body=error_body(f"echo: {SECRET}"))
    rerouted.private.fail(*[fault] * 12)
    with pytest.raises(error) as raised:
        privsdk.cohere.ClientV2(api_key=KEY, base_url=rerouted.saas.url, max_retries=1).chat(model=MODEL, messages=MSG)

    async def run() -> None:
        client = privsdk.cohere.AsyncClientV2(api_key=KEY, base_url=rerouted.saas.url, max_retries=1)
        await client.chat(model=MODEL, messages=MSG)

    with pytest.raises(error) as araised:
        asyncio.run(run())
    for exc in (raised.value, araised.value):
        assert exc.status_code == status
        assert SECRET not in error_text(exc) and SECRET not in json.dumps(exc.body)
    assert len(rerouted.private.requests) == 4  # two attempts per call, as max_retries=1 says


def test_a_stream_the_alternative_cuts_ends_as_cohere_ends_a_failed_stream(rerouted: Rerouted) -> None:
    rerouted.app.chunks = 6
    rerouted.private.fail(Cut(after=3))
    events = list(rerouted.client().chat_stream(model=MODEL, messages=MSG))
    assert events[-1].type == "message-end" and events[-1].delta.finish_reason == "ERROR"
    assert events[-1].delta.error is not None and SECRET not in events[-1].delta.error


@pytest.mark.usefixtures("logs")  # every log record of the test (every logger at DEBUG), searched when it ends
def test_records_logs_and_errors_hold_no_content(rerouted: Rerouted) -> None:
    client = rerouted.client()
    client.chat(model=MODEL, messages=MSG)
    list(client.chat_stream(model=MODEL, messages=MSG))
    client.embed(model="embed-v4.0", texts=[SECRET], input_type="search_query")
    refusal = _refused(lambda: client.chat(model=MODEL, messages=MSG, documents=[SECRET]))
    rerouted.private.fail(Status(400, body=error_body(f"echo: {SECRET}")))
    with pytest.raises(cohere.BadRequestError) as failed:
        client.chat(model=MODEL, messages=MSG)
    records = rerouted.records()
    # One record a call, each requested as the SDK built it (cohere/...): a reroute's is the alternative's attempt,
    # recorded by privsdk's Client with its tokens as that reroute; the one the reroute could not serve is refused.
    assert all(r["requested_target"].startswith("cohere/") for r in records)
    assert [(r["decision"], r["outcome"], r["operation"]) for r in records] == [
        ("reroute", "ok", "chat"),
        ("reroute", "ok", "stream"),
        ("reroute", "ok", "embed"),
        ("refuse", "refused", "chat"),
        ("reroute", "error", "chat"),
    ]
    assert [r["chosen_target"] for r in records] == ["cohere-private"] * 3 + [None, "cohere-private"]
    assert all(r["unmet"] == ["no_training"] for r in records)
    assert (records[0]["input_tokens"], records[0]["output_tokens"]) == (11, 4)
    assert_clean(rerouted.usage.read_bytes(), "the usage records")
    assert_clean(error_text(refusal), "a refusal")
    assert_clean(error_text(failed.value), "the SDK's error for the alternative's failure")
    assert_clean(json.dumps(failed.value.body), "the SDK's error body")


def test_chat_reroutes_to_another_vendor_and_what_it_cannot_serve_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cross-vendor: the alternative is a Mistral model on Azure AI Foundry, which chats but does not embed."""
    mistral = MistralApp("Bonjour from Mistral on Azure")
    with LoopbackServer(CohereApp()) as saas, LoopbackServer(mistral) as azure:
        config = tmp_path / "privsdk.toml"
        config.write_text(
            f"""
[endpoints]
"{saas.url}" = "cohere.saas"

[targets.mistral-azure]
offering = "mistral.azure"
model = "mistral-large"
deployment = "mistral-large-2411"
endpoint = "{azure.url}"

[tenants.hospital]
on_violation = "reroute"
classes.default = ["no_training"]
reroute."cohere/*" = ["mistral-azure"]
""",
            encoding="utf-8",
        )
        monkeypatch.setenv("PRIVSDK_CONFIG", str(config))
        monkeypatch.setenv("PRIVSDK_USAGE", "none")
        monkeypatch.setenv("AZURE_API_KEY", "azure-key")
        reset_default_guard()
        client = privsdk.cohere.ClientV2(api_key=KEY, base_url=saas.url, max_retries=0)
        answer = client.chat(model=MODEL, messages=MSG)
        events = list(client.chat_stream(model=MODEL, messages=MSG))
        refusal = _refused(lambda: client.embed(model="embed-v4.0", texts=["x"], input_type="search_query"))
        assert saas.requests == [] and azure.errors == []
        assert [r.path for r in azure.requests] == ["/models/chat/completions"] * 2
    reset_default_guard()
    assert isinstance(answer, cohere.V2ChatResponse) and _text(answer) == mistral.text
    assert answer.usage is not None and answer.usage.billed_units is not None
    assert (answer.usage.billed_units.input_tokens, answer.usage.billed_units.output_tokens) == mistral.usage
    assert "".join(e.delta.message.content.text for e in events if e.type == "content-delta") == mistral.text
    assert "mistral-azure cannot serve it" in str(refusal) and isinstance(refusal, ApiError)


#: Fields privsdk cannot carry to the alternative, each at a value that asks for something: refused by name.
UNCARRIED: list[tuple[str, str, dict[str, Any]]] = [
    ("chat", "frequency_penalty", {"frequency_penalty": 0.5}),
    ("chat", "presence_penalty", {"presence_penalty": 0.5}),
    ("chat", "k", {"k": 5}),
    ("chat", "thinking", {"thinking": {"type": "enabled", "token_budget": 100}}),
    ("chat", "citation_options", {"citation_options": {"mode": "ACCURATE"}}),
    ("chat", "priority", {"priority": 5}),
    ("chat", "safety_mode", {"safety_mode": "OFF"}),
    ("embed", "truncate", {"truncate": "NONE"}),
    ("embed", "max_tokens", {"max_tokens": 10}),
]


@pytest.mark.parametrize(("kind", "field", "extra"), UNCARRIED, ids=[f for _, f, _ in UNCARRIED])
def test_a_field_the_reroute_cannot_carry_refuses_it_by_name_and_sends_nothing(
    rerouted: Rerouted, kind: str, field: str, extra: dict[str, Any]
) -> None:
    client = rerouted.client()
    if kind == "chat":
        refusal = _refused(lambda: client.chat(model=MODEL, messages=MSG, **extra))
    else:
        refusal = _refused(lambda: client.embed(model="embed-v4.0", texts=[SECRET], input_type="search_query", **extra))
    text = str(refusal)
    assert refusal.decision.outcome == "refuse" and "no_training" in text
    assert f"cannot reroute this Cohere {kind} request to cohere-private as asked: field {field} (" in text, text
    assert SECRET not in error_text(refusal)
    assert rerouted.private.requests == [] and rerouted.saas.requests == []


def test_every_field_the_reroute_carries_reaches_the_alternative_and_defaults_ask_nothing(rerouted: Rerouted) -> None:
    client = rerouted.client()
    client.chat(
        model=MODEL,
        messages=MSG,
        tools=TOOLS,
        tool_choice="REQUIRED",
        temperature=0.3,
        p=0.9,
        max_tokens=40,
        stop_sequences=["END"],
        seed=7,
        frequency_penalty=0.0,
        presence_penalty=0,
        k=0,
        safety_mode="CONTEXTUAL",
        logprobs=False,
    )
    client.chat(model=MODEL, messages=MSG, response_format={"type": "json_object"})  # Cohere takes it without tools
    client.embed(model="embed-v4.0", texts=["x"], input_type="search_query", output_dimension=256, truncate="END")
    sent, formatted, embedded = (r.json() for r in rerouted.private.requests)
    assert (sent["temperature"], sent["p"], sent["max_tokens"], sent["seed"]) == (0.3, 0.9, 40, 7)
    assert sent["stop_sequences"] == ["END"] and sent["tool_choice"] == "REQUIRED"
    assert formatted["response_format"] == {"type": "json_object"}
    assert not {"frequency_penalty", "presence_penalty", "k", "safety_mode", "logprobs"} & set(sent)
    assert embedded["output_dimension"] == 256 and embedded["input_type"] == "search_query"
