"""Reroute in ``privsdk.openai``: what a rerouted request asks for is carried to the alternative, or refused.

The tenant needs ``region=eu``, which OpenAI's API (a loopback server declared as ``openai.api``) does not offer
without a residency project; its reroute list names an Azure OpenAI deployment in an EU data zone (another loopback
server, which takes every Chat Completions field). The real openai SDK sends to OpenAI; the drop-in's transport
answers from the deployment instead, through privsdk's Client, in OpenAI's wire format.

Every field the reroute carries must reach the deployment (in the names its API uses). Every field it cannot carry,
or that the answer could not honour (``n`` > 1, log probabilities, penalties, ``user``, stored-completion metadata,
...), refuses the request, naming the field and why but never its value, and sends nothing to either server.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import privsdk
from privsdk import openai as dropin
from privsdk.outbound.judge import Guard
from tests.guard_support import reset_default_guard
from tests.weather_tool import TOOLS
from tests.wire.openai import OpenAIWire
from tests.wire.server import Delay, LoopbackServer

KEY = "sk-reroute"
AZURE_KEY = "azure-reroute-key"
MODEL = "gpt-4o-mini"
SECRET = "CANARY31r0u"  # a value no refusal may repeat
MSG: Any = [{"role": "user", "content": "What is the weather in Paris? Answer in json."}]
POLICY = """
[endpoints]
"{api}" = "openai.api"

[targets.azure-eu]
offering = "azure.openai"
model = "gpt-4o"
endpoint = "{azure}"
deployment = "gpt-4o-eu"
api_version = "2024-10-21"
attest = ["deployment=data_zone_eu"]

[tenants.clinic]
on_violation = "reroute"
classes.default = ["region=eu"]
reroute."openai/*" = ["azure-eu"]
"""


class Rerouted(NamedTuple):
    api: LoopbackServer
    azure: LoopbackServer

    def client(self) -> Any:
        return dropin.OpenAI(api_key=KEY, base_url=f"{self.api.url}/v1", max_retries=0)

    def sent(self) -> dict[str, Any]:
        [request] = self.azure.requests
        body: dict[str, Any] = request.json()
        return body


@pytest.fixture
def rerouted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rerouted]:
    with LoopbackServer(OpenAIWire(key=KEY)) as api, LoopbackServer(OpenAIWire(key=AZURE_KEY)) as azure:
        config = tmp_path / "privsdk.toml"
        config.write_text(POLICY.format(api=api.url, azure=azure.url), encoding="utf-8")
        monkeypatch.setenv("PRIVSDK_CONFIG", str(config))
        monkeypatch.setenv("PRIVSDK_USAGE", "none")
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
        reset_default_guard()
        yield Rerouted(api, azure)
        assert azure.errors == [], "the reroute sent a body Azure OpenAI rejects"
        assert api.requests == [], "a rerouted or refused request reached the refused target"
    reset_default_guard()


NAMED: Any = {"type": "function", "function": {"name": "get_weather"}}
SCHEMA: Any = {
    "type": "json_schema",
    "json_schema": {"name": "weather", "schema": {"type": "object", "properties": {"c": {"type": "number"}}}},
}


def test_every_field_the_reroute_carries_reaches_the_alternative(rerouted: Rerouted) -> None:
    client = rerouted.client()
    answer = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "developer", "content": "Be brief."}, *MSG],
        tools=TOOLS,
        tool_choice=NAMED,
        temperature=0.3,
        top_p=0.9,
        seed=7,
        max_completion_tokens=64,
        stop=["END"],
        response_format=SCHEMA,
        # At their defaults these ask for nothing, so any alternative honours them.
        n=1,
        logprobs=False,
        presence_penalty=0,
        frequency_penalty=0.0,
        parallel_tool_calls=True,
        store=False,
        service_tier="auto",
    )
    sent = rerouted.sent()
    assert rerouted.azure.requests[0].path == "/openai/deployments/gpt-4o-eu/chat/completions"
    assert answer.choices[0].finish_reason == "tool_calls" and len(answer.choices) == 1
    assert (sent["temperature"], sent["top_p"], sent["seed"], sent["max_completion_tokens"]) == (0.3, 0.9, 7, 64)
    assert sent["stop"] == ["END"] and sent["tool_choice"] == NAMED
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]
    assert sent["response_format"] == SCHEMA
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    # Nothing the request did not ask for: the defaults are not sent on.
    assert not {"n", "logprobs", "presence_penalty", "parallel_tool_calls", "store", "service_tier"} & set(sent)

    rerouted.azure.requests.clear()
    chunks = list(
        client.chat.completions.create(model=MODEL, messages=MSG, stream=True, stream_options={"include_usage": True})
    )
    assert rerouted.sent()["stream"] is True and chunks[-1].usage is not None and chunks[-1].choices == []

    rerouted.azure.requests.clear()
    vectors = client.embeddings.create(
        model="text-embedding-3-small", input=["a", "b"], dimensions=8, encoding_format="float"
    )
    assert rerouted.sent()["dimensions"] == 8 and len(vectors.data) == 2


REFUSED: list[tuple[str, dict[str, Any]]] = [
    ("n", {"n": 2}),
    ("logprobs", {"logprobs": True}),
    ("top_logprobs", {"logprobs": False, "top_logprobs": 2}),
    ("presence_penalty", {"presence_penalty": 0.5}),
    ("frequency_penalty", {"frequency_penalty": 0.5}),
    ("logit_bias", {"logit_bias": {"1734": -100}}),
    ("parallel_tool_calls", {"tools": TOOLS, "parallel_tool_calls": False}),
    ("user", {"user": SECRET}),
    ("safety_identifier", {"safety_identifier": SECRET}),
    ("metadata", {"metadata": {"ticket": SECRET}}),
    ("service_tier", {"service_tier": "flex"}),
    ("store", {"store": True}),
    ("prediction", {"prediction": {"type": "content", "content": SECRET}}),
    ("reasoning_effort", {"reasoning_effort": "high"}),
    ("verbosity", {"verbosity": "low"}),
    ("prompt_cache_key", {"prompt_cache_key": SECRET}),
    ("modalities", {"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}),
    # Read by the guard (an Azure OpenAI field that keeps nothing), not known to the reroute.
    ("an unknown field", {"extra_body": {"user_security_context": {"end_user_id": SECRET}}}),
    ("strict", {"tools": [{**TOOLS[0], "function": {**TOOLS[0]["function"], "strict": True}}]}),
    ("strict", {"response_format": {**SCHEMA, "json_schema": {**SCHEMA["json_schema"], "strict": True}}}),
    ("name", {"messages": [{"role": "user", "content": "hi json", "name": "alice"}]}),
    (
        "detail",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "high"}}],
                }
            ]
        },
    ),
]


@pytest.mark.parametrize(("field", "extra"), REFUSED, ids=[f"{f}-{i}" for i, (f, _) in enumerate(REFUSED)])
def test_a_field_the_reroute_cannot_carry_or_honour_refuses_it_naming_the_field(
    rerouted: Rerouted, field: str, extra: dict[str, Any]
) -> None:
    with pytest.raises(dropin.PolicyViolation) as raised:
        rerouted.client().chat.completions.create(**{"model": MODEL, "messages": MSG, **extra})
    refusal = raised.value
    assert isinstance(refusal, privsdk.PolicyViolation) and refusal.decision.outcome == "refuse"
    text = str(refusal)
    assert "region=eu" in text and "cannot reroute this OpenAI chat request to azure-eu as asked" in text
    named = "privsdk does not know the field" if field == "an unknown field" else field
    assert named in text, text
    assert SECRET not in text and ("user_security_context" in text) == (field == "an unknown field")
    assert rerouted.azure.requests == [] and rerouted.api.requests == []


@pytest.mark.parametrize(("kind", "shown"), [("input_audio", "input_audio"), ("Canary7part", "not shown")])
def test_a_content_part_the_reroute_cannot_carry_is_named_by_its_type_only_when_the_api_has_it(
    rerouted: Rerouted, kind: str, shown: str
) -> None:
    """A part's type is the app's to write: one of the vendors' own part types is named, any other word is not."""
    part = {"type": kind, kind: {"data": SECRET, "format": "wav"}}
    with pytest.raises(dropin.PolicyViolation) as raised:
        rerouted.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [part]}])
    text = str(raised.value)
    assert "content part of type" in text and shown in text, text
    assert SECRET not in text and ("Canary7part" in text) is False
    assert rerouted.azure.requests == [] and rerouted.api.requests == []


def test_a_field_the_guard_does_not_read_is_refused_before_any_reroute(rerouted: Rerouted) -> None:
    """A field privsdk has never judged is refused as the request is read: whether it could be rerouted is never
    asked, as what the request asks for is not known."""
    with pytest.raises(dropin.PolicyViolation) as raised:
        rerouted.client().chat.completions.create(model=MODEL, messages=MSG, extra_body={"brand_new_knob": SECRET})
    text = str(raised.value)
    assert raised.value.decision.outcome == "refuse" and "reroute" not in text
    assert "a field privsdk does not read in an OpenAI chat/completions request: brand_new_knob" in text
    assert SECRET not in text
    assert rerouted.azure.requests == [] and rerouted.api.requests == []


def test_embeddings_and_async_clients_refuse_the_same_way(rerouted: Rerouted) -> None:
    with pytest.raises(dropin.PolicyViolation) as raised:
        rerouted.client().embeddings.create(model="text-embedding-3-small", input=["a"], user=SECRET)
    assert "field user" in str(raised.value) and SECRET not in str(raised.value)

    async def run() -> None:
        async with dropin.AsyncOpenAI(api_key=KEY, base_url=f"{rerouted.api.url}/v1", max_retries=0) as client:
            await client.chat.completions.create(model=MODEL, messages=MSG, n=3, presence_penalty=1.0)

    with pytest.raises(dropin.PolicyViolation) as araised:
        asyncio.run(run())
    assert "fields n (the reroute answers with one choice); presence_penalty" in str(araised.value)
    assert rerouted.azure.requests == [] and rerouted.api.requests == []


def test_the_responses_api_is_refused_naming_what_the_reroute_takes(rerouted: Rerouted) -> None:
    with pytest.raises(dropin.PolicyViolation) as raised:
        rerouted.client().responses.create(model="gpt-4o-mini", input="hi")
    assert str(raised.value).endswith("privsdk can reroute only chat and embeddings, not OpenAI chat at /v1/responses")
    assert rerouted.azure.requests == []


FT_MODEL = "ft:gpt-4o-mini-2024-07-18:acme::abc123"


def test_a_fine_tuned_model_is_judged_as_its_base_model_and_reroutes(rerouted: Rerouted) -> None:
    """The tenant's fine-tuned model is an OpenAI model it may not use here: rerouted like any other (it was an
    unknown model family, refused with no reroute)."""
    answer = rerouted.client().chat.completions.create(model=FT_MODEL, messages=MSG)
    assert answer.choices[0].message.content == "Hello from the loopback server"
    assert rerouted.azure.requests[0].path == "/openai/deployments/gpt-4o-eu/chat/completions"


def test_a_fine_tuned_model_is_sent_when_nothing_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    with LoopbackServer(OpenAIWire(key=KEY)) as api:
        monkeypatch.delenv("PRIVSDK_CONFIG", raising=False)
        monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{api.url}=openai.api")
        monkeypatch.setenv("PRIVSDK_USAGE", "none")
        reset_default_guard()
        client = dropin.OpenAI(api_key=KEY, base_url=f"{api.url}/v1", max_retries=0)
        client.chat.completions.create(model=FT_MODEL, messages=MSG)
        with pytest.raises(dropin.PolicyViolation) as raised:  # a fine-tuned id whose base family is unknown
            client.chat.completions.create(model="ft:davinci-002:acme::abc123", messages=MSG)
        assert [r.json()["model"] for r in api.requests] == [FT_MODEL] and api.errors == []
    reset_default_guard()
    assert "davinci-002" in str(raised.value)


def test_the_tool_loop_hands_back_the_sdks_own_message_and_is_carried(rerouted: Rerouted) -> None:
    """The usual loop appends ``choice.message`` (openai's own model, with its ``refusal: null``, ...) and the
    tool's result: nothing there asks for more than the reroute carries."""
    client = rerouted.client()
    first = client.chat.completions.create(model=MODEL, messages=MSG, tools=TOOLS)
    choice = first.choices[0]
    call = choice.message.tool_calls[0]
    messages = [*MSG, choice.message, {"role": "tool", "tool_call_id": call.id, "content": "21C"}]
    final = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    assert final.choices[0].message.content == "Hello from the loopback server"
    sent = rerouted.azure.requests[-1].json()["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.id and sent[2] == {
        "role": "tool",
        "tool_call_id": call.id,
        "content": "21C",
    }


def test_a_rerouted_call_is_one_call_in_the_records_and_the_report(
    rerouted: Rerouted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reroute left two unrelated calls: the request as built (attempt 0, refused) under one request id, and the
    alternative's attempt, recorded as an allowed call of its own, under another; the report counted 4 calls for 2."""
    usage = tmp_path / "usage.jsonl"
    monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{usage}")
    reset_default_guard()
    client = rerouted.client()
    client.chat.completions.create(model=MODEL, messages=MSG)
    list(client.chat.completions.create(model=MODEL, messages=MSG, stream=True))
    reset_default_guard()  # flushes the guard's records, and the reroute client's with them
    records = [json.loads(line) for line in usage.read_text().splitlines()]
    got = [(r["decision"], r["requested_target"], r["chosen_target"], r["outcome"], r["attempt"]) for r in records]
    assert got == [("reroute", f"openai/{MODEL}", "azure-eu", "ok", 1)] * 2
    assert all(r["unmet"] == ["region=eu"] for r in records)
    assert len({r["request_id"] for r in records}) == 2
    assert records[0]["input_tokens"] is not None


def test_a_reroute_in_flight_as_the_recorder_closes_is_no_cancelled_call_of_its_own(
    rerouted: Rerouted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorder ends, as cancelled, the records of guarded requests still in flight as it closes: a rerouted
    request is in flight as the Client call that serves it, and that call records it, so the request as built
    must not be recorded beside it."""
    usage = tmp_path / "usage.jsonl"
    monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{usage}")
    reset_default_guard()
    rerouted.azure.fail(Delay(0.5))
    client = rerouted.client()
    answers: list[Any] = []
    worker = threading.Thread(target=lambda: answers.append(client.chat.completions.create(model=MODEL, messages=MSG)))
    worker.start()
    while not rerouted.azure.requests:  # the alternative has it, and waits before it answers
        time.sleep(0.01)
    Guard.default().close()
    worker.join(10)
    assert len(answers) == 1
    reset_default_guard()  # the reroute's own client records through its recorder: flushed here
    records = [json.loads(line) for line in usage.read_text().splitlines()] if usage.exists() else []
    assert [r["decision"] for r in records if r["outcome"] == "cancelled"] == []


def test_a_failed_alternative_falls_back_along_the_requested_targets_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Client call that serves a drop-in's reroute fell back along the reroute list of the alternative it was
    given (none here), not of the request the SDK built: the second Azure deployment was never tried, and the app
    got the first's 503. It now answers; the answer names no account of OpenAI's to Azure either (the app's
    OPENAI_ORG_ID and OPENAI_PROJECT_ID went to Azure's hosts)."""
    from tests.wire.server import Status

    second = POLICY.replace('reroute."openai/*" = ["azure-eu"]', 'reroute."openai/*" = ["azure-eu", "azure-eu2"]')
    second += '[targets.azure-eu2]\noffering = "azure.openai"\nmodel = "gpt-4o"\nendpoint = "{azure2}"\n'
    second += 'deployment = "gpt-4o-eu"\napi_version = "2024-10-21"\nattest = ["deployment=data_zone_eu"]\n'
    with (
        LoopbackServer(OpenAIWire(key=KEY)) as api,
        LoopbackServer(OpenAIWire(key=AZURE_KEY)) as azure,
        LoopbackServer(OpenAIWire(key=AZURE_KEY)) as azure2,
    ):
        azure.fail(Status(503))
        config = tmp_path / "privsdk.toml"
        config.write_text(second.format(api=api.url, azure=azure.url, azure2=azure2.url), encoding="utf-8")
        for name, value in {
            "PRIVSDK_CONFIG": str(config),
            "PRIVSDK_USAGE": "none",
            "AZURE_OPENAI_API_KEY": AZURE_KEY,
            "OPENAI_ORG_ID": "org-app",
            "OPENAI_PROJECT_ID": "proj_app",
        }.items():
            monkeypatch.setenv(name, value)
        reset_default_guard()
        client = dropin.OpenAI(api_key=KEY, base_url=f"{api.url}/v1", max_retries=0)
        with privsdk.scope(tenant="clinic"):
            answer = client.chat.completions.create(model=MODEL, messages=MSG)
        assert answer.choices[0].message.content
        assert (len(api.requests), len(azure.requests), len(azure2.requests)) == (0, 1, 1)
        for request in (*azure.requests, *azure2.requests):
            assert not {"openai-organization", "openai-project"} & set(request.headers), request.headers
