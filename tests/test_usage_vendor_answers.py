"""What vendors' answers and apps' arguments put in usage records, through the real SDKs over loopback servers.

A token count a vendor (or a proxy in front of it) got wrong never fails the app's call and never costs a record,
its own or another call's; a tenant or data class the policy does not know is recorded as a placeholder, never as
the name the app passed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import cohere as plain_cohere
import pytest

import privsdk
from privsdk import cohere, openai
from privsdk.errors import PolicyViolation
from privsdk.outbound.judge import Guard
from privsdk.usage.record import MAX_COUNT
from tests.test_client_errors import Vendors
from tests.wire.server import Reply

JSON = {"Content-Type": "application/json"}
MESSAGES = [{"role": "user", "content": "hello"}]


def chat_answer(prompt_tokens: str) -> Reply:
    """An OpenAI chat answer whose usage says ``prompt_tokens``, as the JSON text it is."""
    body = (
        '{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,'
        '"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],'
        f'"usage":{{"prompt_tokens":{prompt_tokens},"completion_tokens":2,"total_tokens":3}}}}'
    )
    return Reply(200, body.encode(), JSON)


@pytest.fixture
def vendors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Vendors]:
    with Vendors(tmp_path) as v:
        for name in ("PRIVSDK_TENANT", "PRIVSDK_TENANTS", "PRIVSDK_REQUIRE", "PRIVSDK_ATTEST"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("PRIVSDK_CONFIG", str(v.config))
        endpoints = f"{v.servers['openai'].url}/v1=openai.api,{v.servers['cohere'].url}=cohere.saas"
        monkeypatch.setenv("PRIVSDK_ENDPOINTS", endpoints)
        Guard.reset_default()
        yield v
        Guard.reset_default()


def rows(store: Path) -> list[tuple[str, int | None, int | None]]:
    with sqlite3.connect(store) as conn:
        return list(conn.execute("SELECT outcome, input_tokens, output_tokens FROM usage_records ORDER BY id"))


# -- counts ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", ["100000000000000000000", str(MAX_COUNT + 1)])
def test_an_absurd_count_costs_no_record_of_the_batch_in_the_default_store(
    vendors: Vendors, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: str
) -> None:
    """A count past SQLite's 64 bits made the INSERT of the whole batch raise: every record of the calls made in
    the same 50 ms, of any thread, was lost. The count is recorded as none, and every record is kept (Client and
    drop-in alike)."""
    store = tmp_path / "client.sqlite3"
    client = vendors.client(usage=f"sqlite://{store}")
    client.chat("oa", "call 1")
    vendors.apps["openai"].next.append(chat_answer(count))
    assert client.chat("oa", "call 2").text == "hi"
    client.chat("oa", "call 3")
    client.close()
    assert [r[1] for r in rows(store)] == [rows(store)[0][1], None, rows(store)[0][1]]
    assert client._core.recorder.failures == 0

    store = tmp_path / "dropin.sqlite3"
    monkeypatch.setenv("PRIVSDK_USAGE", f"sqlite://{store}")
    Guard.reset_default()
    sdk = openai.OpenAI(api_key="sk-x", base_url=vendors.servers["openai"].url + "/v1", max_retries=0)
    sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    vendors.apps["openai"].next.append(chat_answer(count))
    sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    Guard.default().flush(5)
    got = rows(store)
    assert [(outcome, tokens_in) for outcome, tokens_in, _ in got] == [
        ("ok", got[0][1]),
        ("ok", None),
        ("ok", got[0][1]),
    ]
    assert got[1][2] == 2


@pytest.mark.parametrize("count", ["1e999", "-1e999"])
def test_an_infinite_count_never_fails_a_drop_in_call(
    vendors: Vendors, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: str
) -> None:
    """JSON readers take 1e999 as infinity, which int() refuses: the meter raised OverflowError out of the SDK's
    read, an exception neither privsdk's nor the SDK's, on an answer the SDK itself reads fine, and the request was
    recorded cancelled. The app gets its answer, and the record says ok with no such count."""
    usage = tmp_path / "usage.jsonl"
    monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{usage}")
    Guard.reset_default()
    body = (
        '{"id":"c","message":{"role":"assistant","content":[{"type":"text","text":"hi"}]},"finish_reason":"COMPLETE",'
        f'"usage":{{"billed_units":{{"input_tokens":{count},"output_tokens":{count}}},'
        '"tokens":{"input_tokens":1,"output_tokens":1}}}'
    )
    url = vendors.servers["cohere"].url
    vendors.apps["cohere"].next.append(Reply(200, body.encode(), JSON))
    answer = cohere.ClientV2(api_key="co-x", base_url=url).chat(model="command-r-plus", messages=MESSAGES)
    assert answer.message.content is not None and answer.message.content[0].text == "hi"
    privsdk.instrument()
    try:
        vendors.apps["cohere"].next.append(Reply(200, body.encode(), JSON))
        plain = plain_cohere.ClientV2(api_key="co-x", base_url=url).chat(model="command-r-plus", messages=MESSAGES)  # type: ignore[arg-type]
        assert plain.message.content is not None
    finally:
        privsdk.uninstrument()
    vendors.apps["openai"].next.append(chat_answer(count))
    sdk = openai.OpenAI(api_key="sk-x", base_url=vendors.servers["openai"].url + "/v1", max_retries=0)
    assert sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices[0].message.content == "hi"  # type: ignore[arg-type]
    Guard.default().flush(5)
    records = [json.loads(line) for line in usage.read_text().splitlines()]
    assert [(r["vendor"], r["outcome"], r["input_tokens"], r["output_tokens"]) for r in records] == [
        ("cohere", "ok", 1, 1),  # billed units that are no count give way to the tokens processed
        ("cohere", "ok", 1, 1),
        ("openai", "ok", None, 2),
    ]


# -- names the policy does not know ---------------------------------------------------------------------------------

CANARY_TENANT = "sk-proj-CANARY0123456789"
CANARY_CLASS = "jane.doe@example.com"


def test_a_refusal_for_a_tenant_or_class_the_policy_does_not_know_never_records_the_name(
    vendors: Vendors, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names in records come from the configuration: a tenant or class that matched none is recorded as
    ``-unknown`` (a class is ``-`` when the call named none), through privsdk.Client and through a drop-in's guard
    alike. The refusal raised to the app still names what it passed."""
    with vendors.config.open("a", encoding="utf-8") as f:
        f.write('\n[tenants.acme]\nclasses.default = ["no_training"]\n')
    client = vendors.client()
    calls: list[dict[str, str]] = [
        {"tenant": CANARY_TENANT},
        {"tenant": CANARY_TENANT, "data_class": CANARY_CLASS},
        {"tenant": "acme", "data_class": CANARY_CLASS},
    ]
    for options in calls:
        with pytest.raises(PolicyViolation) as caught:
            if "data_class" in options:
                client.chat("oa", "hi", tenant=options["tenant"], data_class=options["data_class"])
            else:
                client.chat("oa", "hi", tenant=options["tenant"])
        # The tenant's name has a name's shape and is quoted; the class, an e-mail address, is not a class name.
        if options["tenant"] != "acme":
            assert str(options["tenant"]) in str(caught.value)
        else:
            assert "(not shown: not a data class name)" in str(caught.value)
        assert CANARY_CLASS not in str(caught.value)
    client.flush_usage(5)
    assert [(r.tenant, r.data_class, r.outcome) for r in vendors.records] == [
        ("-unknown", "-", "refused"),
        ("-unknown", "-unknown", "refused"),
        ("acme", "-unknown", "refused"),
    ]

    usage = tmp_path / "usage.jsonl"
    monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{usage}")
    Guard.reset_default()
    sdk = openai.OpenAI(api_key="sk-x", base_url=vendors.servers["openai"].url + "/v1", max_retries=0)
    for options in calls:
        with (
            privsdk.scope(tenant=options["tenant"], data_class=options.get("data_class")),
            pytest.raises(PolicyViolation),
        ):
            sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    Guard.default().flush(5)
    text = usage.read_text()
    assert "CANARY" not in text and "jane.doe" not in text
    assert [(r["tenant"], r["data_class"]) for r in map(json.loads, text.splitlines())] == [
        ("-unknown", "-"),
        ("-unknown", "-unknown"),
        ("acme", "-unknown"),
    ]
