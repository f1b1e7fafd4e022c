"""Reroute in ``privsdk.mistralai``: a refused chat, stream or embeddings request is answered from the alternative.

The tenant needs ``no_training``, which la Plateforme (a loopback server declared as ``mistral.api``) does not offer
by default. Its reroute list sends chat to a Mistral model on Azure AI Foundry (which the mistralai SDK itself can
reach; another loopback server) and embeddings, which that offering does not serve, to a private Cohere deployment.
The real mistralai SDK sends to la Plateforme; the drop-in's transport answers from the alternative instead, through
privsdk's Client, in Mistral's wire format, so the app gets mistralai's types. La Plateforme must receive nothing.
What cannot be served elsewhere (FIM, agents, built-in tools, n > 1, ...) is refused and sends nothing anywhere.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from mistralai.client import models
from mistralai.client.errors import MistralError, SDKError
from privsdk_mistral import dropin

import privsdk
import privsdk.mistralai
from privsdk.outbound.judge import Guard
from tests.guard_support import reset_default_guard
from tests.test_canaries import MARK, assert_clean, error_text, logs  # noqa: F401 - logs is a fixture
from tests.weather_tool import TOOLS
from tests.wire.cohere import CohereApp, vector
from tests.wire.mistral import MistralApp, error_body
from tests.wire.server import Cut, LoopbackServer, Status

KEY = "mistral-reroute-key"
MODEL = "mistral-small-latest"
SECRET = f"{MARK}77m1s"
MSG: Any = [{"role": "user", "content": f"What is the weather in Paris? {SECRET}"}]
CALL = ("wx0Call42", "get_weather", '{"city": "Paris"}')  # Mistral takes 9 letters or digits as a tool call id
POLICY = """
[endpoints]
"{api}" = "mistral.api"

[targets.mistral-azure]
offering = "mistral.azure"
model = "mistral-large"
deployment = "mistral-large-2411"
endpoint = "{azure}"

[targets.cohere-private]
offering = "cohere.private"
model = "embed-v4.0"
endpoint = "{private}"

[tenants.hospital]
on_violation = "reroute"
classes.default = ["no_training"]
reroute."mistral/*" = ["mistral-azure"]
reroute."mistral/mistral-embed" = ["cohere-private"]
"""


class Rerouted(NamedTuple):
    api: LoopbackServer
    azure: LoopbackServer
    private: LoopbackServer
    app: MistralApp
    usage: Path

    def client(self) -> Any:  # typed loosely: the SDK's answers are unions a test would narrow at every step
        return privsdk.mistralai.Mistral(api_key=KEY, server_url=self.api.url)

    def records(self) -> list[dict[str, Any]]:
        Guard.default().flush()
        return [json.loads(line) for line in self.usage.read_text().splitlines()] if self.usage.exists() else []


@pytest.fixture
def rerouted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rerouted]:
    app = MistralApp("Bonjour from Mistral on Azure")
    private = CohereApp()
    private.anonymous = True
    with (
        LoopbackServer(MistralApp("from la Plateforme")) as api,
        LoopbackServer(app) as azure,
        LoopbackServer(private) as cohere_private,
    ):
        config = tmp_path / "privsdk.toml"
        config.write_text(POLICY.format(api=api.url, azure=azure.url, private=cohere_private.url), encoding="utf-8")
        usage = tmp_path / "usage.jsonl"
        monkeypatch.setenv("PRIVSDK_CONFIG", str(config))
        monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{usage}")
        monkeypatch.setenv("AZURE_API_KEY", "azure-key")
        reset_default_guard()
        yield Rerouted(api, azure, cohere_private, app, usage)
        assert azure.errors == [] and cohere_private.errors == [], "the reroute sent a body the alternative rejects"
        assert api.requests == [], "a rerouted or refused request reached the refused target"
    reset_default_guard()


def _content(answer: Any) -> Any:
    return answer.choices[0].message.content


def _streamed_text(events: list[Any]) -> str:
    return "".join(e.data.choices[0].delta.content or "" for e in events if e.data.choices)


def test_chat_stream_and_embeddings_are_answered_from_the_alternatives_in_mistrals_types(
    rerouted: Rerouted,
) -> None:
    client = rerouted.client()
    answer = client.chat.complete(model=MODEL, messages=MSG, temperature=0.2, max_tokens=50, random_seed=7)
    events = list(client.chat.stream(model=MODEL, messages=MSG))
    vectors = client.embeddings.create(model="mistral-embed", inputs=["alpha beta", "gamma"])
    assert isinstance(answer, models.ChatCompletionResponse)
    assert _content(answer) == rerouted.app.text and answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == rerouted.app.usage
    assert answer.model == "mistral-large-2411"  # the alternative's model, as the answer says who answered
    assert all(isinstance(e, models.CompletionEvent) for e in events)
    assert _streamed_text(events) == rerouted.app.text
    last = events[-1].data
    assert last.choices[0].finish_reason == "stop"
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == rerouted.app.usage
    assert isinstance(vectors, models.EmbeddingResponse)
    assert [d.embedding for d in vectors.data] == [vector("alpha beta", 0, 4), vector("gamma", 1, 4)]
    assert [d.index for d in vectors.data] == [0, 1] and vectors.usage.prompt_tokens == 3
    sent = [r.json() for r in rerouted.azure.requests]
    assert [r.path for r in rerouted.azure.requests] == ["/models/chat/completions"] * 2
    assert sent[0]["temperature"] == 0.2 and sent[0]["max_tokens"] == 50 and sent[0]["random_seed"] == 7
    assert sent[1]["stream"] is True
    assert [r.path for r in rerouted.private.requests] == ["/v2/embed"]


def test_async_clients_are_answered_from_the_alternatives(rerouted: Rerouted) -> None:
    async def run() -> tuple[Any, list[Any], Any]:
        client = rerouted.client()
        answer = await client.chat.complete_async(model=MODEL, messages=MSG)
        events = [e async for e in await client.chat.stream_async(model=MODEL, messages=MSG)]
        vectors = await client.embeddings.create_async(model="mistral-embed", inputs="one two")
        return answer, events, vectors

    answer, events, vectors = asyncio.run(run())
    assert isinstance(answer, models.ChatCompletionResponse) and _content(answer) == rerouted.app.text
    assert _streamed_text(events) == rerouted.app.text and events[-1].data.choices[0].finish_reason == "stop"
    assert isinstance(vectors, models.EmbeddingResponse) and vectors.data[0].embedding == vector("one two", 0, 4)
    assert len(rerouted.azure.requests) == 2 and len(rerouted.private.requests) == 1


def test_tool_calls_carry_over_and_the_tool_loop_runs_on_the_alternative(rerouted: Rerouted) -> None:
    client = rerouted.client()
    rerouted.app.tool_calls = [CALL]
    rerouted.app.finish_reason = "tool_calls"
    first = client.chat.complete(model=MODEL, messages=MSG, tools=TOOLS, tool_choice="any")
    streamed = list(client.chat.stream(model=MODEL, messages=MSG, tools=TOOLS))

    async def astream() -> list[Any]:
        return [e async for e in await rerouted.client().chat.stream_async(model=MODEL, messages=MSG, tools=TOOLS)]

    astreamed = asyncio.run(astream())
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments) == CALL
    for events in (streamed, astreamed):
        # Mistral streams a tool call whole, in one chunk: so does the reroute.
        calls = [c for e in events if e.data.choices for c in e.data.choices[0].delta.tool_calls or ()]
        assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [CALL]
        assert events[-1].data.choices[0].finish_reason == "tool_calls"
    # The usual loop: the assistant message as the SDK gave it, then the tool's result.
    rerouted.app.tool_calls, rerouted.app.finish_reason = (), "stop"
    messages = [
        *MSG,
        choice.message,
        {"role": "tool", "tool_call_id": call.id, "name": call.function.name, "content": "21C"},
    ]
    final = client.chat.complete(model=MODEL, messages=messages, tools=TOOLS)
    assert final.choices[0].message.content == rerouted.app.text
    sent = rerouted.azure.requests[-1].json()
    assert sent["messages"][1]["tool_calls"][0]["function"] == {"name": CALL[1], "arguments": CALL[2]}
    assert sent["messages"][2]["tool_call_id"] == CALL[0] and sent["messages"][2]["content"] == "21C"
    assert rerouted.azure.requests[0].json()["tool_choice"] == "any"


def _refused(call: Any) -> dropin.PolicyViolation:
    with pytest.raises(dropin.PolicyViolation) as raised:
        call()
    return raised.value


@pytest.mark.parametrize(
    "what",
    [
        "fim", "n=2", "safe_prompt", "named tool_choice", "prefix", "document input", "int8 vectors", "logprobs",
        "system thinking",
    ],
)  # fmt: skip
def test_what_cannot_be_served_elsewhere_is_refused_and_sends_nothing(rerouted: Rerouted, what: str) -> None:
    client = rerouted.client()
    named = {"type": "function", "function": {"name": "get_weather"}}
    document = [{"type": "document_url", "document_url": "https://example.com/a.pdf"}]
    calls = {
        "fim": lambda: client.fim.complete(model="codestral-latest", prompt="def f(", suffix=")"),
        "n=2": lambda: client.chat.complete(model=MODEL, messages=MSG, n=2),
        "safe_prompt": lambda: client.chat.complete(model=MODEL, messages=MSG, safe_prompt=True),
        "named tool_choice": lambda: client.chat.complete(model=MODEL, messages=MSG, tools=TOOLS, tool_choice=named),
        "prefix": lambda: client.chat.complete(
            model=MODEL, messages=[*MSG, {"role": "assistant", "content": "It is", "prefix": True}]
        ),
        "document input": lambda: client.chat.complete(model=MODEL, messages=[{"role": "user", "content": document}]),
        "int8 vectors": lambda: client.embeddings.create(model="mistral-embed", inputs=["x"], output_dtype="int8"),
        "logprobs": lambda: client.chat.complete(model=MODEL, messages=MSG, logprobs=True),
        # A thinking chunk in a system message is the app's words (dropped once, as an assistant's handed back is).
        "system thinking": lambda: client.chat.complete(
            model=MODEL,
            messages=[
                {
                    "role": "system",
                    "content": [
                        {"type": "text", "text": "Be brief."},
                        {"type": "thinking", "thinking": [{"type": "text", "text": "Answer in French."}]},
                    ],
                },
                *MSG,
            ],
        ),
    }
    refusal = _refused(calls[what])
    assert isinstance(refusal, privsdk.PolicyViolation) and isinstance(refusal, MistralError)
    assert refusal.decision.outcome == "refuse" and "no_training" in str(refusal)
    assert rerouted.azure.requests == [] and rerouted.private.requests == []
    assert SECRET not in error_text(refusal)


@pytest.mark.parametrize("status", [429, 503])
def test_a_failure_of_the_alternative_is_mistrals_own_error_without_the_vendors_text(
    rerouted: Rerouted, status: int
) -> None:
    # Every attempt fails, echoing the prompt. mistralai retries only as its retry_config says (by default not),
    # and privsdk adds no retries of its own: one attempt per call.
    fault = Status(status, headers={"retry-after": "0"}, body=error_body(f"echo: {SECRET}"))
    rerouted.azure.fail(*[fault] * 6)
    with pytest.raises(SDKError) as raised:
        rerouted.client().chat.complete(model=MODEL, messages=MSG)

    async def run() -> None:
        await rerouted.client().chat.complete_async(model=MODEL, messages=MSG)

    with pytest.raises(SDKError) as araised:
        asyncio.run(run())
    for exc in (raised.value, araised.value):
        assert exc.status_code == status and not isinstance(exc, privsdk.PolicyViolation)
        assert SECRET not in error_text(exc) and SECRET not in exc.body
    assert len(rerouted.azure.requests) == 2


def test_a_stream_the_alternative_cuts_fails_as_a_mistral_stream_error_does(rerouted: Rerouted) -> None:
    rerouted.app.chunks = 6
    rerouted.azure.fail(Cut(after=3))
    seen: list[Any] = []
    with pytest.raises(MistralError) as raised:
        for event in rerouted.client().chat.stream(model=MODEL, messages=MSG):
            seen.append(event)
    assert seen and SECRET not in error_text(raised.value)


@pytest.mark.usefixtures("logs")  # every log record of the test (every logger at DEBUG), searched when it ends
def test_records_logs_and_errors_hold_no_content(rerouted: Rerouted) -> None:
    client = rerouted.client()
    client.chat.complete(model=MODEL, messages=MSG)
    list(client.chat.stream(model=MODEL, messages=MSG))
    client.embeddings.create(model="mistral-embed", inputs=[SECRET])
    refusal = _refused(lambda: client.chat.complete(model=MODEL, messages=MSG, n=2))
    rerouted.azure.fail(Status(400, body=error_body(f"echo: {SECRET}")))
    with pytest.raises(SDKError) as failed:
        client.chat.complete(model=MODEL, messages=MSG)
    records = rerouted.records()
    # One record a call, each requested as the SDK built it (mistral/...): a reroute's is the alternative's attempt,
    # recorded by privsdk's Client with its tokens as that reroute; the one the reroute could not serve is refused.
    assert all(r["requested_target"].startswith("mistral/") for r in records)
    assert [(r["decision"], r["chosen_target"], r["operation"], r["outcome"]) for r in records] == [
        ("reroute", "mistral-azure", "chat", "ok"),
        ("reroute", "mistral-azure", "stream", "ok"),
        ("reroute", "cohere-private", "embed", "ok"),
        ("refuse", None, "chat", "refused"),
        ("reroute", "mistral-azure", "chat", "error"),
    ]
    assert (records[0]["input_tokens"], records[0]["output_tokens"]) == rerouted.app.usage
    assert_clean(rerouted.usage.read_bytes(), "the usage records")
    assert_clean(error_text(refusal), "a refusal")
    assert_clean(error_text(failed.value), "the SDK's error for the alternative's failure")


SCHEMA: Any = {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}}
#: Fields privsdk cannot carry to the alternative, each at a value that asks for something: refused by name.
UNCARRIED: list[tuple[str, dict[str, Any]]] = [
    ("presence_penalty", {"presence_penalty": 0.5}),
    ("frequency_penalty", {"frequency_penalty": 0.5}),
    ("prediction", {"prediction": {"type": "content", "content": SECRET}}),
    ("top_k", {"top_k": 5}),
    ("min_tokens", {"min_tokens": 3}),
    ("repetition_penalty", {"repetition_penalty": 1.3}),
    ("prompt_mode", {"prompt_mode": "reasoning"}),
    ("reasoning_effort", {"reasoning_effort": "high"}),
    ("service_tier", {"service_tier": "standard_only"}),
    ("parallel_tool_calls", {"tools": TOOLS, "parallel_tool_calls": False}),
    ("strict", {"response_format": {**SCHEMA, "json_schema": {**SCHEMA["json_schema"], "strict": True}}}),
]


@pytest.mark.parametrize(("field", "extra"), UNCARRIED, ids=[f for f, _ in UNCARRIED])
def test_a_field_the_reroute_cannot_carry_refuses_it_by_name_and_sends_nothing(
    rerouted: Rerouted, field: str, extra: dict[str, Any]
) -> None:
    refusal = _refused(lambda: rerouted.client().chat.complete(model=MODEL, messages=MSG, **extra))
    text = str(refusal)
    assert refusal.decision.outcome == "refuse" and "no_training" in text
    assert "cannot reroute this Mistral chat request to mistral-azure as asked: " in text
    assert f"field {field} (" in text, text
    assert SECRET not in error_text(refusal)
    assert rerouted.azure.requests == [] and rerouted.private.requests == []


def test_every_field_the_reroute_carries_reaches_the_alternative_and_defaults_ask_nothing(rerouted: Rerouted) -> None:
    client = rerouted.client()
    client.chat.complete(
        model=MODEL,
        messages=MSG,
        tools=TOOLS,
        tool_choice="any",
        temperature=0.3,
        top_p=0.9,
        max_tokens=40,
        stop=["END"],
        random_seed=7,
        response_format=SCHEMA,
        n=1,
        presence_penalty=0,
        frequency_penalty=0.0,
        parallel_tool_calls=True,
        safe_prompt=False,
    )
    client.embeddings.create(model="mistral-embed", inputs=["x"], output_dimension=256, output_dtype="float")
    [sent] = [r.json() for r in rerouted.azure.requests]
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"], sent["random_seed"]) == (0.3, 0.9, 40, 7)
    assert sent["stop"] == ["END"] and sent["tool_choice"] == "any"
    assert sent["response_format"]["json_schema"]["schema"] == {"type": "object"}
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]
    assert not {"n", "presence_penalty", "frequency_penalty", "safe_prompt"} & set(sent)
    [embedded] = [r.json() for r in rerouted.private.requests]
    assert embedded["output_dimension"] == 256


def test_an_embeddings_field_the_reroute_cannot_carry_is_refused(rerouted: Rerouted) -> None:
    refusal = _refused(
        lambda: rerouted.client().embeddings.create(model="mistral-embed", inputs=[SECRET], output_dtype="int8")
    )
    assert "field output_dtype (" in str(refusal) and SECRET not in error_text(refusal)
    assert rerouted.private.requests == [] and rerouted.azure.requests == []


def test_a_fine_tuned_model_is_refused_saying_why_and_sends_nothing(rerouted: Rerouted) -> None:
    refusal = _refused(
        lambda: rerouted.client().chat.complete(model="ft:open-mistral-7b:587a6b29:20240514:7e773925", messages=MSG)
    )
    assert "is a model fine-tuned from 'open-mistral-7b' on mistral.api" in str(refusal)
    assert "call the base model" in str(refusal) and SECRET not in error_text(refusal)
    assert rerouted.azure.requests == [] and rerouted.private.requests == []
