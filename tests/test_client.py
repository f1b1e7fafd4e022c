"""The enforcing client over real SDKs and loopback servers: refuse, reroute, retry, fall back, stream, tenants."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import privsdk
from privsdk.async_client import AsyncClient
from privsdk.client import Client
from privsdk.config import load_policy
from privsdk.errors import (
    BadRequest,
    ConfigError,
    ConnectionLost,
    PolicyViolation,
    RateLimited,
    TagError,
    Unavailable,
    VendorTimeout,
)
from privsdk.resilience import Limits
from privsdk.types import StreamEnd, TextDelta
from privsdk.usage import UsageRecord
from tests.wire.cohere import CohereApp
from tests.wire.openai import OpenAIWire, error_body
from tests.wire.server import Cut, Delay, LoopbackServer, Recorded, Reply, Status

OPENAI_KEY, AZURE_KEY, GLOBEX_KEY = "sk-default", "azure-key", "sk-globex"

POLICY = """
[attest]
openai = ["zdr"]

[targets.openai-mini]
offering = "openai.api"
model = "gpt-4o-mini"
endpoint = "{openai}/v1"

[targets.azure-eu]
offering = "azure.openai"
model = "gpt-4o"
endpoint = "{azure}"
deployment = "gpt-4o-eu"
api_version = "2024-10-21"
attest = ["deployment=data_zone_eu", "modified_abuse_monitoring"]

[targets.cohere-command]
offering = "cohere.saas"
model = "command-r-plus"
endpoint = "{cohere}"

[tenants.acme]
on_violation = "reroute"
classes.default = ["no_training"]
classes.pii = ["no_training", "zdr", "region=eu"]
reroute.openai-mini = ["cohere-command", "azure-eu"]

[tenants.globex]
classes.default = ["no_training"]
attest.openai = ["zdr"]  # its own key is its own account: [attest].openai is not about it
credentials.openai = {{ api_key = "GLOBEX_OPENAI_KEY" }}
"""


class Servers:
    """Stand-ins for OpenAI, Azure OpenAI and Cohere, and a client wired to them that keeps its records."""

    def __init__(self, tmp_path: Path):
        self.openai_app = OpenAIWire(key=OPENAI_KEY)
        self.openai = LoopbackServer(_two_keys(self.openai_app, GLOBEX_KEY))
        self.azure = LoopbackServer(OpenAIWire(key=AZURE_KEY, model="gpt-4o-2024-08-06"))
        self.cohere = LoopbackServer(CohereApp())
        self.config = tmp_path / "privsdk.toml"
        self.config.write_text(POLICY.format(openai=self.openai.url, azure=self.azure.url, cohere=self.cohere.url))
        self.environ = {"PRIVSDK_CONFIG": str(self.config), "PRIVSDK_TENANT": "acme", "GLOBEX_OPENAI_KEY": GLOBEX_KEY}
        self.records: list[UsageRecord] = []

    def client_args(self, **overrides: Any) -> dict[str, Any]:
        return {
            "environ": self.environ,
            "usage": self.records.append,
            "credentials": {
                "openai": {"api_key": OPENAI_KEY},
                "azure": {"api_key": AZURE_KEY},
                "cohere": {"api_key": "co"},
            },
            "endpoints": {"openai": f"{self.openai.url}/v1"},
            "timeout": 2.0,
            **overrides,
        }

    def client(self, **overrides: Any) -> Client:
        return Client(**self.client_args(**overrides))

    def seen(self) -> dict[str, int]:
        return {
            "openai": len(self.openai.requests),
            "azure": len(self.azure.requests),
            "cohere": len(self.cohere.requests),
        }

    def __enter__(self) -> Servers:
        for server in (self.openai, self.azure, self.cohere):
            server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in (self.openai, self.azure, self.cohere):
            server.__exit__()
            assert server.errors == []


def _two_keys(app: OpenAIWire, other: str) -> Callable[[Recorded], Reply]:
    """The OpenAI app, also taking a second tenant's key (the server still records the header as sent)."""

    def serve(request: Recorded) -> Reply:
        if request.headers.get("authorization") == f"Bearer {other}":
            request = request._replace(headers={**request.headers, "authorization": f"Bearer {app.key}"})
        return app(request)

    return serve


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    with Servers(tmp_path) as s:
        yield s


def test_an_allowed_call_goes_to_its_target_and_carries_its_decision(servers: Servers) -> None:
    with servers.client() as client:
        answer = client.chat("openai-mini", "What is the capital of France?")
        client.flush_usage()
    assert answer.text == servers.openai_app.text
    assert answer.decision is not None and answer.decision.outcome == "allow"
    assert servers.seen() == {"openai": 1, "azure": 0, "cohere": 0}
    (request,) = servers.openai.requests
    assert request.path == "/v1/chat/completions" and request.json()["model"] == "gpt-4o-mini"
    (record,) = servers.records
    assert (record.outcome, record.attempt, record.chosen_target, record.vendor) == ("ok", 1, "openai-mini", "openai")
    assert (record.input_tokens, record.output_tokens) == servers.openai_app.usage


def test_a_refused_call_sends_nothing_and_says_why(servers: Servers) -> None:
    with servers.client() as client:
        with pytest.raises(PolicyViolation) as caught:
            client.chat("cohere-command", "secret")
        client.flush_usage()
    assert servers.seen() == {"openai": 0, "azure": 0, "cohere": 0}
    decision = caught.value.decision
    assert decision.outcome == "refuse" and [u.requirement for u in decision.unmet] == ["no_training"]
    assert decision.unmet[0].source  # the catalogue's source for the fact
    (record,) = servers.records
    assert (record.outcome, record.attempt, record.error_class, record.unmet) == (
        "refused",
        0,
        "policy",
        ("no_training",),
    )


def test_a_rerouted_call_reaches_only_the_compliant_alternative(servers: Servers) -> None:
    with servers.client() as client:
        answer = client.chat("openai-mini", "hello", data_class="pii", extra={"logit_bias": {"50256": -100}})
    assert answer.decision is not None
    assert (answer.decision.outcome, answer.decision.chosen) == ("reroute", "azure-eu")
    assert servers.seen() == {"openai": 0, "azure": 1, "cohere": 0}
    (request,) = servers.azure.requests
    assert request.path == "/openai/deployments/gpt-4o-eu/chat/completions"
    assert "logit_bias" not in request.json()  # vendor-specific fields stay with the target the call named


def test_a_429_is_retried_after_the_vendors_retry_after(servers: Servers) -> None:
    servers.openai.fail(
        Status(429, {"retry-after-ms": "300"}, error_body("slow down", type="requests", code="rate_limit_exceeded"))
    )
    with servers.client() as client:
        started = time.monotonic()
        answer = client.chat("openai-mini", "hello")
        waited = time.monotonic() - started
        client.flush_usage()
    assert answer.text == servers.openai_app.text
    assert servers.seen()["openai"] == 2 and waited >= 0.3
    assert [(r.attempt, r.outcome, r.error_class, r.http_status) for r in servers.records] == [
        (1, "error", "rate_limited", 429),
        (2, "ok", None, None),
    ]
    assert len({r.request_id for r in servers.records}) == 1


def test_a_bad_request_is_never_retried(servers: Servers) -> None:
    servers.openai.fail(Status(400, body=error_body("bad", code="invalid_value")))
    with servers.client() as client, pytest.raises(BadRequest):
        client.chat("openai-mini", "hello")
    assert servers.seen() == {"openai": 1, "azure": 0, "cohere": 0}


def test_exhausted_retries_fall_back_only_to_an_allowed_alternative(servers: Servers) -> None:
    """acme's list for openai-mini is [cohere-command, azure-eu]: cohere is refused for acme, so never tried."""
    servers.openai.fail(*[Status(503, body=error_body("down", type="server_error"))] * 2)
    limits = Limits(max_attempts=2, backoff_base_s=0.01)
    with servers.client(limits=limits) as client:
        answer = client.chat("openai-mini", "hello")
    # The call's decision, as its records have it: the target it named, and the one that answered.
    assert answer.decision is not None
    assert (answer.decision.target, answer.decision.chosen) == ("openai-mini", "azure-eu")
    assert servers.seen() == {"openai": 2, "azure": 1, "cohere": 0}


def test_when_every_allowed_target_fails_the_last_error_is_raised(servers: Servers) -> None:
    servers.openai.fail(*[Status(503, body=error_body("down", type="server_error"))] * 2)
    servers.azure.fail(*[Status(503, body=error_body("down", type="server_error"))] * 2)
    limits = Limits(max_attempts=2, backoff_base_s=0.01)
    with servers.client(limits=limits) as client, pytest.raises(Unavailable):
        client.chat("openai-mini", "hello")
    assert servers.seen() == {"openai": 2, "azure": 2, "cohere": 0}


def test_the_deadline_bounds_the_whole_call(servers: Servers) -> None:
    servers.openai.fail(*[Delay(3)] * 3)
    servers.azure.fail(*[Delay(3)] * 3)
    with servers.client() as client:
        started = time.monotonic()
        with pytest.raises(VendorTimeout):
            client.chat("openai-mini", "hello", deadline_s=0.8)
        assert time.monotonic() - started < 1.5


def test_a_stream_is_retried_before_its_first_event_only(servers: Servers) -> None:
    servers.openai.fail(Status(503, body=error_body("down", type="server_error")))
    with servers.client(limits=Limits(backoff_base_s=0.01)) as client:
        events = list(client.chat("openai-mini", "hello", stream=True))
        client.flush_usage()
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == servers.openai_app.text
        assert isinstance(events[-1], StreamEnd) and events[-1].usage.input_tokens == servers.openai_app.usage[0]
        servers.openai.fail(Cut(after=2))
        stream = client.chat("openai-mini", "hello", stream=True)
        assert isinstance(next(stream), TextDelta)
        with pytest.raises(ConnectionLost):
            list(stream)
        client.flush_usage()
    assert servers.seen()["openai"] == 3  # 503 + retry, then the cut stream, never restarted
    assert [(r.attempt, r.outcome) for r in servers.records] == [(1, "error"), (2, "ok"), (1, "error")]
    assert servers.records[1].first_chunk_ms is not None and servers.records[2].error_class == "connection_lost"


def test_a_stream_closed_early_is_recorded_as_cancelled(servers: Servers) -> None:
    with servers.client() as client:
        with client.chat("openai-mini", "hello", stream=True) as stream:
            next(stream)
        client.flush_usage()
    assert [r.outcome for r in servers.records] == ["cancelled"]


def test_operations_a_target_lacks_and_bad_tags_send_nothing(servers: Servers) -> None:
    with servers.client() as client:
        with pytest.raises(PolicyViolation, match="does not serve rerank"):
            client.rerank("openai-mini", "q", ["a", "b"])
        with pytest.raises(TagError) as caught:
            client.chat("openai-mini", "hello", tags={"team": "has spaces and maybe a prompt"})
    assert "has spaces" not in str(caught.value)
    assert servers.seen() == {"openai": 0, "azure": 0, "cohere": 0}


def test_scopes_and_tenants_never_cross_between_threads(servers: Servers) -> None:
    """acme and globex call at once from many threads: each request carries its own tenant's key."""
    errors: list[BaseException] = []
    with servers.client() as client:

        def work(tenant: str) -> None:
            try:
                with privsdk.scope(tenant=tenant, tags={"tenant": tenant}):
                    for _ in range(5):
                        answer = client.chat("openai-mini", "hello")
                        assert answer.decision is not None and answer.decision.tenant == tenant
            except BaseException as exc:  # collected: a thread's failure must fail the test
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in ("acme", "globex") * 4]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        client.flush_usage()
    assert errors == []
    keys = [r.headers["authorization"] for r in servers.openai.requests]
    assert sorted(set(keys)) == [f"Bearer {OPENAI_KEY}", f"Bearer {GLOBEX_KEY}"] and len(keys) == 40
    assert all(dict(r.tags)["tenant"] == r.tenant for r in servers.records)


def test_a_tenant_credential_variable_that_is_not_set_is_a_construction_error(servers: Servers) -> None:
    environ = {k: v for k, v in servers.environ.items() if k != "GLOBEX_OPENAI_KEY"}
    with pytest.raises(ConfigError, match="GLOBEX_OPENAI_KEY"):
        Client(**servers.client_args(environ=environ))


def test_async_calls_and_tasks_with_their_own_tenants(servers: Servers) -> None:
    async def run() -> None:
        async with AsyncClient(**servers.client_args()) as client:

            async def one(tenant: str) -> str:
                with privsdk.scope(tenant=tenant):
                    await asyncio.sleep(0)
                    answer = await client.chat("openai-mini", "hello")
                    assert answer.decision is not None
                    return answer.decision.tenant

            assert await asyncio.gather(*(one(t) for t in ("acme", "globex") * 3)) == ["acme", "globex"] * 3
            stream = await client.chat("openai-mini", "hello", stream=True)
            assert await stream.text() == servers.openai_app.text
            with pytest.raises(PolicyViolation):
                await client.chat("cohere-command", "secret")
            servers.openai.fail(Status(429, {"retry-after": "0"}, error_body("slow", code="rate_limit_exceeded")))
            embedded = await client.embed("openai/text-embedding-3-small", ["a", "b"])
            assert len(embedded.vectors) == 2

    asyncio.run(run())
    assert servers.seen()["cohere"] == 0
    assert servers.seen()["openai"] == 6 + 1 + 2


def test_a_policy_can_be_given_in_code(servers: Servers) -> None:
    policy = load_policy(servers.environ)
    with Client(**servers.client_args(environ={"GLOBEX_OPENAI_KEY": GLOBEX_KEY}, policy=policy)) as client:
        assert client.chat("openai-mini", "hi", tenant="acme").text == servers.openai_app.text
    with pytest.raises(RateLimited):
        servers.openai.fail(*[Status(429, body=error_body("slow", code="rate_limit_exceeded"))] * 2)
        with Client(**servers.client_args(environ={"GLOBEX_OPENAI_KEY": GLOBEX_KEY}, policy=policy)) as client:
            client.chat("openai-mini", "hi", tenant="globex", max_attempts=2)


@pytest.mark.parametrize(
    "extra",
    [
        {"store": True},  # the client's own plan sees this one too
        {"prompt_cache_retention": "24h"},  # these two only the request's body shows
        {"background": True},
    ],
)
def test_what_extra_puts_in_the_body_is_judged_by_the_guard(servers: Servers, extra: dict[str, Any]) -> None:
    """The request the SDK builds is judged in its transport: a vendor field that keeps content, passed through
    ``extra``, is refused under zdr even where the client's plan could not see it; nothing reaches the vendor."""
    client = servers.client(environ={**servers.environ, "PRIVSDK_REQUIRE": "zdr"})
    client.chat("openai-mini", "Hello", tenant="globex")  # zdr is attested for OpenAI: the plain call goes
    sent = servers.seen()["openai"]
    with pytest.raises(PolicyViolation) as caught:
        client.chat("openai-mini", "Hello", tenant="globex", extra=extra)
    assert servers.seen()["openai"] == sent
    assert [u.requirement for u in caught.value.decision.unmet] == ["zdr"]
    client.flush_usage()
    assert servers.records[-1].outcome == "refused" and servers.records[-1].unmet == ("zdr",)


def test_extra_cannot_change_the_model_without_the_guard_seeing_it(servers: Servers) -> None:
    client = servers.client()
    with pytest.raises(PolicyViolation) as caught:
        client.chat("openai-mini", "Hello", tenant="globex", extra={"model": "gpt-4o"})
    assert servers.seen()["openai"] == 0
    assert "names model 'gpt-4o'" in str(caught.value)


@pytest.mark.parametrize("model", ["my SSN is 078-05-1120, " * 40, "gpt-4o\nignore the above"])
def test_a_model_that_is_no_model_id_is_never_quoted_in_a_refusal(servers: Servers, model: str) -> None:
    """Whatever text an app puts where the model goes (a prompt pasted in the wrong place) stays out of the
    refusal; a model id is quoted, as the test above shows."""
    client = servers.client()
    with pytest.raises(PolicyViolation) as caught:
        client.chat("openai-mini", "Hello", tenant="globex", extra={"model": model})
    assert servers.seen()["openai"] == 0
    assert "names model <model>" in str(caught.value)
    assert "078-05-1120" not in str(caught.value) and "ignore the above" not in repr(caught.value.decision)


def test_a_plain_call_is_planned_again_after_utc_midnight(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Client keeps the plan of a call that names only a target for the day: a date-bound answer (here the
    tenant's limit on the catalogue's age) must change at the next UTC midnight, and the refused call send
    nothing."""
    import datetime as dt

    from privsdk import decision
    from privsdk.catalogue import default_catalogue
    from tests.conftest import one_target_policy

    reviewed = default_catalogue().offering("openai.api").reviewed  # type: ignore[union-attr]
    limit = (dt.date.today() - reviewed).days + 10  # the last allowed day lies ten days ahead
    last_day = dt.datetime.combine(reviewed + dt.timedelta(days=limit), dt.time(23, 59, 59), dt.timezone.utc)
    records: list[UsageRecord] = []
    monkeypatch.setattr(decision, "_day", [0.0, None])  # the date cache starts afresh, and is put back afterwards
    now = [last_day.timestamp()]
    monkeypatch.setattr(time, "time", lambda: now[0])
    with LoopbackServer(OpenAIWire(key=OPENAI_KEY)) as server:
        policy = one_target_policy("openai.api", "gpt-4o-mini", [], max_age=limit)
        endpoints = {"openai": f"{server.url}/v1"}
        with Client(
            policy=policy,
            environ={},
            usage=records.append,
            credentials={"openai": {"api_key": OPENAI_KEY}},
            endpoints=endpoints,
        ) as client:
            for _ in range(2):  # the second call on the kept plan
                decided = client.chat("tgt", "hello").decision
                assert decided is not None and decided.outcome == "allow"
            now[0] += 2  # 00:00:01 the next day
            with pytest.raises(PolicyViolation) as refused:
                client.chat("tgt", "hello")
            # Refused by the plan itself, before any adapter: the guard in the SDK's transport would refuse a stale
            # plan's request too, but a stale plan could also keep a call from its reroute.
            with pytest.raises(PolicyViolation):
                client._core.plan("tgt", "chat", {})
            client.flush_usage()
        assert len(server.requests) == 2
    assert "past tenant 't''s limit" in str(refused.value)
    assert [r.outcome for r in records] == ["ok", "ok", "refused", "refused"]


def test_a_named_targets_project_meets_an_attestation_scoped_to_it(tmp_path: Path) -> None:
    """A target naming its OpenAI project (``project = "proj_x"``) sends ``OpenAI-Project: proj_x``, which meets
    ``openai:zdr@proj_x``; the Client's decision by name was made for no account, so the call was refused before the
    guard could see the header. A target of another project is still refused, and nothing reaches the server."""
    with LoopbackServer(OpenAIWire(key=OPENAI_KEY)) as server:
        config = tmp_path / "privsdk.toml"
        config.write_text(
            '[attest]\nopenai = ["zdr@proj_x"]\n'
            f'[targets.mine]\noffering = "openai.api"\nmodel = "gpt-4o-mini"\nendpoint = "{server.url}/v1"\n'
            'project = "proj_x"\n'
            f'[targets.other]\noffering = "openai.api"\nmodel = "gpt-4o-mini"\nendpoint = "{server.url}/v1"\n'
            'project = "proj_y"\n'
            '[tenants.acme]\nclasses.default = ["zdr"]\n'
        )
        records: list[UsageRecord] = []
        with Client(
            environ={"PRIVSDK_CONFIG": str(config)},
            usage=records.append,
            credentials={"openai": {"api_key": OPENAI_KEY}},
            timeout=2.0,
        ) as client:
            assert client.chat("mine", "hello").decision.outcome == "allow"  # type: ignore[union-attr]
            with pytest.raises(PolicyViolation, match="unmet: zdr"):
                client.chat("other", "hello")
            client.flush_usage()
        [sent] = server.requests
        assert sent.headers["openai-project"] == "proj_x"
    assert [r.outcome for r in records] == ["ok", "refused"]
