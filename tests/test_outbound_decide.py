"""The guard decides on where a request really goes and whose account it carries, not on what was declared.

These tests judge requests through :meth:`Guard.judge` with what a wire reader would read (an :class:`Asks`);
the wire readers themselves and the real SDKs over loopback are tested per vendor.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from privsdk.catalogue import Catalogue
from privsdk.config import load_policy
from privsdk.decision import decide_request
from privsdk.errors import ConfigError
from privsdk.outbound.judge import Guard, _Refused
from privsdk.outbound.outgoing import Asks, Outgoing
from privsdk.usage import open_recorder
from tests.test_canaries import MARK


def _guard(env: Mapping[str, str], catalogue: Catalogue) -> Guard:
    return Guard(load_policy(env, catalogue), catalogue=catalogue, recorder=open_recorder("none"))


def _decide(
    guard: Guard, url: str, asks: Asks, headers: Mapping[str, str] | None = None
) -> tuple[str, tuple[str, ...], str | None]:
    """(outcome, unmet requirement names, reason) for a request to ``url`` asking ``asks``."""
    scheme, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    out = Outgoing("test", "POST", scheme, host, None, "/" + path, headers=dict(headers or {}))
    try:
        place = guard.place(out)
        targets = guard.targets(place, asks, out, None)
    except _Refused as exc:
        return "refuse", (), exc.reason
    d = decide_request(guard.policy, guard.catalogue, targets, asks.operation, features=asks.features)
    return d.outcome, tuple(u.requirement for u in d.unmet), d.reason


CHAT_4O = Asks("chat", "gpt-4o-mini")


def test_an_undeclared_host_is_refused_whatever_is_attested(catalogue: Catalogue) -> None:
    guard = _guard({"PRIVSDK_REQUIRE": "zdr", "PRIVSDK_ATTEST": "openai:zdr"}, catalogue)
    outcome, _, reason = _decide(guard, "https://collector.evil.example/v1/chat/completions", CHAT_4O)
    assert outcome == "refuse"
    assert reason is not None and "not an endpoint privsdk knows" in reason and "PRIVSDK_ENDPOINTS" in reason
    assert _decide(guard, "https://api.openai.com/v1/chat/completions", CHAT_4O)[0] == "allow"


def test_a_region_attestation_holds_only_where_the_host_shows_that_region(catalogue: Catalogue) -> None:
    env = {"PRIVSDK_REQUIRE": "region=eu", "PRIVSDK_ATTEST": "openai:zdr,openai:region=eu"}
    guard = _guard(env, catalogue)
    assert _decide(guard, "https://api.openai.com/v1/chat/completions", CHAT_4O)[:2] == ("refuse", ("region=eu",))
    assert _decide(guard, "https://eu.api.openai.com/v1/chat/completions", CHAT_4O)[0] == "allow"
    assert _decide(guard, "https://us.api.openai.com/v1/chat/completions", CHAT_4O)[0] == "refuse"


def test_vertex_location_decides_region(catalogue: Catalogue) -> None:
    guard = _guard({"PRIVSDK_REQUIRE": "region=eu", "PRIVSDK_ATTEST": "vertex:region=eu"}, catalogue)
    gemini = Asks("chat", "gemini-2.5-flash", project="p", location="europe-west4", publisher="google")
    assert _decide(guard, "https://europe-west4-aiplatform.googleapis.com/v1/projects/p/x", gemini)[0] == "allow"
    for host in ("aiplatform.googleapis.com", "us-central1-aiplatform.googleapis.com"):
        outcome, unmet, _ = _decide(guard, f"https://{host}/v1/projects/p/x", gemini._replace(location="global"))
        assert (outcome, unmet) == ("refuse", ("region=eu",))


def test_bedrock_region_comes_from_the_host(catalogue: Catalogue) -> None:
    guard = _guard({"PRIVSDK_REQUIRE": "region=eu", "PRIVSDK_ATTEST": "bedrock:region=eu"}, catalogue)
    claude = Asks("chat", "anthropic.claude-3-haiku-20240307-v1:0")
    assert _decide(guard, "https://bedrock-runtime.eu-west-1.amazonaws.com/model/x/converse", claude)[0] == "allow"
    outcome, unmet, _ = _decide(guard, "https://bedrock-runtime.us-east-1.amazonaws.com/model/x/converse", claude)
    assert (outcome, unmet) == ("refuse", ("region=eu",))


def test_an_apac_attestation_holds_in_the_asia_pacific_regions_only(catalogue: Catalogue) -> None:
    """A host in Tokyo shows jp, in Sydney au: the APAC area's countries. bedrock:region=apac never held at any host."""
    guard = _guard({"PRIVSDK_REQUIRE": "region=apac", "PRIVSDK_ATTEST": "bedrock:region=apac"}, catalogue)
    profile = Asks("chat", "apac.anthropic.claude-3-haiku-20240307-v1:0")
    for region in ("ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1", "ap-southeast-2"):
        url = f"https://bedrock-runtime.{region}.amazonaws.com/model/x/converse"
        assert _decide(guard, url, profile)[0] == "allow", region
    for region in ("eu-west-1", "me-central-1", "ap-east-1"):  # Hong Kong: no geography privsdk places
        url = f"https://bedrock-runtime.{region}.amazonaws.com/model/x/converse"
        assert _decide(guard, url, profile)[:2] == ("refuse", ("region=apac",)), region
    # An area is not a country in it: region=jp is not met by an attestation of APAC.
    tokyo = "https://bedrock-runtime.ap-northeast-1.amazonaws.com/model/x/converse"
    strict = _guard({"PRIVSDK_REQUIRE": "region=jp", "PRIVSDK_ATTEST": "bedrock:region=apac"}, catalogue)
    assert _decide(strict, tokyo, profile)[:2] == ("refuse", ("region=jp",))


def test_attestations_scoped_to_an_account(catalogue: Catalogue) -> None:
    guard = _guard({"PRIVSDK_REQUIRE": "zdr", "PRIVSDK_ATTEST": "openai:zdr@proj_approved"}, catalogue)
    url = "https://api.openai.com/v1/chat/completions"
    assert _decide(guard, url, CHAT_4O, {"openai-project": "proj_approved"})[0] == "allow"
    assert _decide(guard, url, CHAT_4O, {"openai-project": "proj_other"})[:2] == ("refuse", ("zdr",))
    assert _decide(guard, url, CHAT_4O)[:2] == ("refuse", ("zdr",))  # no project header: the org's default project


def test_azure_attestations_scoped_to_a_resource(catalogue: Catalogue) -> None:
    env = {"PRIVSDK_REQUIRE": "no_human_review", "PRIVSDK_ATTEST": "azure:modified_abuse_monitoring@acme-eu"}
    guard = _guard(env, catalogue)
    asks = Asks("chat", "gpt-4o", deployment="gpt-4o")
    path = "/openai/deployments/gpt-4o/chat/completions"
    assert _decide(guard, "https://acme-eu.openai.azure.com" + path, asks)[0] == "allow"
    assert _decide(guard, "https://acme-us.openai.azure.com" + path, asks)[0] == "refuse"
    # A resource's name is a DNS label, in any case: a scope written in capitals was accepted and never matched.
    env["PRIVSDK_ATTEST"] = "azure:modified_abuse_monitoring@Acme-EU"
    assert _decide(_guard(env, catalogue), "https://ACME-eu.openai.azure.com" + path, asks)[0] == "allow"


def test_one_host_serving_several_offerings_takes_the_stricter_answer(catalogue: Catalogue) -> None:
    # Mistral models on Vertex are both a Mistral offering and a Vertex partner model: each must allow.
    guard = _guard({"PRIVSDK_REQUIRE": "no_provider_sharing"}, catalogue)
    asks = Asks("chat", "mistral-large-2411", project="p", location="europe-west4", publisher="mistralai")
    outcome, _, reason = _decide(guard, "https://europe-west4-aiplatform.googleapis.com/v1/projects/p/x", asks)
    assert outcome == "refuse"
    assert reason is not None and "each must meet the policy" in reason


def test_an_unknown_model_family_is_refused(catalogue: Catalogue) -> None:
    guard = _guard({}, catalogue)
    outcome, _, reason = _decide(guard, "https://api.openai.com/v1/chat/completions", Asks("chat", "claude-opus"))
    assert outcome == "refuse" and reason is not None and "unknown model family" in reason


def test_content_free_operations_need_only_a_known_endpoint(catalogue: Catalogue) -> None:
    guard = _guard({"PRIVSDK_REQUIRE": "zdr,region=eu,hipaa_baa"}, catalogue)
    assert _decide(guard, "https://api.openai.com/v1/models", Asks("models"))[0] == "allow"
    assert _decide(guard, "https://elsewhere.example/v1/models", Asks("models"))[0] == "refuse"


def test_a_content_free_request_that_carries_a_body_is_refused(catalogue: Catalogue) -> None:
    """A model listing is exempt from every requirement because it carries nothing: one with a body (the SDK's own
    httpx client lets an app send any) would take whatever the body holds past the policy, unread."""
    guard = _guard({"PRIVSDK_REQUIRE": "zdr,region=eu", "PRIVSDK_USAGE": "none"}, catalogue)
    for host, path, sdk in (
        ("api.mistral.ai", "/v1/models", "mistralai"),
        ("api.openai.com", "/v1/models/gpt-4o", "openai"),
        ("api.cohere.com", "/v1/models", "cohere"),
    ):
        listing = Outgoing(sdk, "GET", "https", host, None, path, "", {}, b"")
        assert guard.judge(listing).decision.outcome == "allow", host
        smuggled = listing._replace(body=b'{"messages": "' + MARK.encode() + b'"}')
        decision = guard.judge(smuggled).decision
        assert decision.outcome == "refuse" and "carries a body" in (decision.reason or ""), host
        assert MARK not in (decision.reason or "")


def test_a_content_free_request_with_text_in_its_url_is_refused(catalogue: Catalogue) -> None:
    """The same for text in the URL: ``models.list(extra_query={"q": ...})`` or ``models.retrieve(<a sentence>)``
    went out under a policy that refused every chat. Names, ids, page tokens and filters still pass."""
    guard = _guard({"PRIVSDK_REQUIRE": "zdr,region=eu", "PRIVSDK_USAGE": "none"}, catalogue)
    listing = Outgoing("openai", "GET", "https", "api.openai.com", None, "/v1/models", "", {}, b"")
    bedrock = "bedrock.eu-central-1.amazonaws.com"
    named = [
        listing._replace(sdk=sdk, host=host, path=path, query=query)
        for sdk, host, path, query in (
            ("openai", "api.openai.com", "/v1/models/ft:gpt-4o-mini:acme::abc123", ""),
            ("genai", "generativelanguage.googleapis.com", "/v1beta/models", "pageSize=50&pageToken=Cg4aDA%3D%3D"),
            # Vertex's filters are written with spaces (google-genai's models.list(config={"filter": ...})).
            ("genai", "europe-west4-aiplatform.googleapis.com", "/v1beta1/publishers/google/models", "filter=a+%3D+b"),
            ("cohere", "api.cohere.com", "/v1/models", "page_size=5&endpoint=chat&default_only=true"),
            # boto3's Bedrock listings and their paginators: filters and paging, a page token as long as Bedrock's.
            ("boto3", bedrock, "/foundation-models", "byProvider=anthropic&byOutputModality=TEXT"),
            ("boto3", bedrock, "/inference-profiles", "maxResults=10&nextToken=abc%3D&type=SYSTEM_DEFINED"),
            ("boto3", bedrock, "/custom-models", "maxResults=5&nextToken=" + "A%2B" * 700),
            # A gateway's key in the query (Azure API Management).
            ("openai", "api.openai.com", "/v1/models", "subscription-key=k&api-version=2024-10-21"),
        )
    ]
    for request in named:
        assert guard.judge(request).decision.outcome == "allow", request.path
    text = f"Patient {MARK} has a diagnosis"
    for request in (
        listing._replace(query="q=" + text.replace(" ", "%20")),
        listing._replace(query="q=" + text.replace(" ", "+")),  # as httpx encodes extra_query's spaces
        listing._replace(query="q=" + text.replace(" ", "") + "\x01"),
        listing._replace(path="/v1/models/" + text.replace(" ", "%20")),
        listing._replace(query="pageToken=" + "x" * 9000),
    ):
        decision = guard.judge(request).decision
        assert decision.outcome == "refuse" and "what no SDK's listing sends" in (decision.reason or ""), request
        assert MARK not in (decision.reason or "")


def test_operations_the_catalogue_has_no_facts_for_are_refused(catalogue: Catalogue) -> None:
    guard = _guard({}, catalogue)
    for operation in ("images", "audio", "assistants", "vector_stores", "realtime", "other"):
        outcome, _, reason = _decide(guard, "https://api.openai.com/v1/x", Asks(operation, "gpt-4o"))
        assert outcome == "refuse" and reason is not None and "holds no guarantees" in reason, operation


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("cohere:zdr@acct", "cannot be scoped to an account"),
        ("openai:zdr@", "names no account"),
        ("openai:zdr@has space", "names no account"),
        # A scope names one kind of account: an OpenAI project (proj_) or organisation (org-), by its shape.
        ("openai:zdr@acme", "names neither an OpenAI project (proj_...) nor an organisation (org-...)"),
        ("openai:zdr@org_acme", "names neither"),
        # A Google Cloud project id is lower-case: one in capitals could never match a request.
        ("vertex:abuse_monitoring_exception@My-Project", "is not a Google Cloud project id, which is lower-case"),
    ],
)
def test_bad_scoped_attestations(catalogue: Catalogue, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_policy({"PRIVSDK_ATTEST": value}, catalogue)
    assert message in str(caught.value)


def test_scoped_attestations_meet_their_prerequisites_per_account(catalogue: Catalogue) -> None:
    load_policy({"PRIVSDK_ATTEST": "openai:zdr@proj_1,openai:region=eu@proj_1"}, catalogue)
    with pytest.raises(ConfigError, match="requires openai:zdr"):
        load_policy({"PRIVSDK_ATTEST": "openai:zdr@proj_1,openai:region=eu@proj_2"}, catalogue)


def test_a_target_whose_region_contradicts_its_attestation(write_config, catalogue: Catalogue) -> None:  # type: ignore[no-untyped-def]
    path = write_config(
        '[targets.claude]\noffering = "bedrock.runtime"\nmodel = "anthropic.claude-3-haiku-20240307-v1:0"\n'
        'region = "us-east-1"\nattest = ["region=eu"]\n'
        '[tenants.t.classes]\ndefault = ["region=eu"]\n'
    )
    with pytest.raises(ConfigError, match=r"target 'claude' declares region 'us-east-1' \(us\) but attests region=eu"):
        load_policy({"PRIVSDK_CONFIG": str(path)}, catalogue)  # loading refuses it (so does `privsdk check`)
    from privsdk.decision import decide
    from privsdk.policy import Policy, Target, Tenant
    from privsdk.vocabulary import parse_requirements

    claude = Target("claude", "bedrock.runtime", "anthropic.claude-3-haiku-20240307-v1:0",
                    attest=frozenset({"bedrock:region=eu"}), region="us-east-1")  # fmt: skip
    policy = Policy({"t": Tenant("t", {"default": parse_requirements(["region=eu"])})}, "t", {"claude": claude})
    decision = decide(policy, "claude", catalogue=catalogue)  # a policy built in code: the decision refuses it
    assert decision.outcome == "refuse"
    assert decision.reason is not None and "configuration error" in decision.reason and "us-east-1" in decision.reason


def test_a_feature_the_catalogue_has_no_facts_on_is_refused(catalogue: Catalogue) -> None:
    """Cohere's entry says nothing of web search: under any requirement the request cannot be judged, so it is
    refused; with no requirement at all there is nothing to judge."""
    asks = Asks("chat", "command-r-plus", frozenset({"web_search"}))
    strict = _guard(
        {"PRIVSDK_REQUIRE": "no_training", "PRIVSDK_ATTEST": "cohere:plan=paid,cohere:training_opt_out"}, catalogue
    )
    assert _decide(strict, "https://api.cohere.com/v2/chat", asks._replace(features=frozenset()))[0] == "allow"
    outcome, _, reason = _decide(strict, "https://api.cohere.com/v2/chat", asks)
    assert outcome == "refuse" and reason is not None and "no facts on web_search for cohere.saas" in reason
    assert _decide(_guard({}, catalogue), "https://api.cohere.com/v2/chat", asks)[0] == "allow"
    # OpenAI's entry has a limit for web search: judged on its facts, not refused for want of them.
    openai = _guard({"PRIVSDK_REQUIRE": "no_training"}, catalogue)
    searching = CHAT_4O._replace(features=frozenset({"web_search"}))
    assert _decide(openai, "https://api.openai.com/v1/chat/completions", searching)[0] == "allow"


def test_the_verdict_kept_for_a_kind_of_request_ends_at_utc_midnight(
    catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard keeps one verdict per kind of request for the day: a date-bound answer (here the tenant's limit on
    the catalogue's age) must change at the next UTC midnight, not when the process restarts."""
    import datetime as dt
    import json
    import time

    from privsdk import decision
    from privsdk.errors import PolicyViolation
    from tests.conftest import one_target_policy

    reviewed = catalogue.offering("openai.api").reviewed  # type: ignore[union-attr]
    limit = (dt.date.today() - reviewed).days + 10  # the last allowed day lies ten days ahead
    last_day = dt.datetime.combine(reviewed + dt.timedelta(days=limit), dt.time(23, 59, 59), dt.timezone.utc)
    policy = one_target_policy("openai.api", "gpt-4o-mini", [], max_age=limit)
    guard = Guard(policy, catalogue=catalogue, recorder=open_recorder("none"))
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
    out = Outgoing("openai", "POST", "https", "api.openai.com", None, "/v1/chat/completions", "", {}, body)
    monkeypatch.setattr(decision, "_day", [0.0, None])  # the date cache starts afresh, and is put back afterwards
    now = [last_day.timestamp()]
    monkeypatch.setattr(time, "time", lambda: now[0])
    assert guard.check(out).decision.outcome == "allow"
    assert guard.check(out).decision.outcome == "allow"  # the kept verdict
    now[0] += 2  # 00:00:01 the next day
    with pytest.raises(PolicyViolation) as refused:
        guard.check(out)
    assert "past tenant 't''s limit" in str(refused.value)


def _guard_file(write_config, catalogue: Catalogue, text: str, env: Mapping[str, str] | None = None) -> Guard:  # type: ignore[no-untyped-def]
    return _guard({"PRIVSDK_CONFIG": str(write_config(text)), **(env or {})}, catalogue)


def test_a_configured_target_holds_for_its_own_model_only(write_config, catalogue: Catalogue) -> None:  # type: ignore[no-untyped-def]
    """One target configured for an offering once stood for every request to that offering (its deployment, None,
    equalled the request's): a global profile, a US profile, another model family, all judged as the EU target."""
    guard = _guard_file(
        write_config,
        catalogue,
        '[targets.eu-claude]\noffering = "bedrock.runtime"\nmodel = "anthropic.claude-3-7-sonnet-20250219-v1:0"\n'
        'region = "eu-central-1"\nattest = ["region=eu"]\n'
        '[tenants.acme]\nclasses.default = ["region=eu"]\n',
    )
    host = "https://bedrock-runtime.eu-central-1.amazonaws.com/model/x/converse"
    assert _decide(guard, host, Asks("chat", "anthropic.claude-3-7-sonnet-20250219-v1:0"))[0] == "allow"
    for model in (
        "eu.anthropic.claude-3-7-sonnet-20250219-v1:0",  # may run in London or Zurich (BR-GEO)
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
        "meta.llama3-70b-instruct-v1:0",
    ):
        outcome, unmet, _ = _decide(guard, host, Asks("chat", model))
        assert (outcome, unmet) == ("refuse", ("region=eu",)), model


def test_a_configured_target_does_not_lift_a_model_limit(write_config, catalogue: Catalogue) -> None:  # type: ignore[no-untyped-def]
    """Mistral's labs models are outside its ZDR: a harmless target for another model must not change that."""
    guard = _guard_file(
        write_config,
        catalogue,
        '[attest]\nmistral = ["plan=scale", "zdr"]\n'
        '[targets.small]\noffering = "mistral.api"\nmodel = "mistral-small-latest"\n'
        '[tenants.acme]\nclasses.default = ["zdr"]\n',
    )
    api = "https://api.mistral.ai/v1/chat/completions"
    assert _decide(guard, api, Asks("chat", "mistral-small-latest"))[0] == "allow"
    assert _decide(guard, api, Asks("chat", "labs-devstral-small-2512"))[:2] == ("refuse", ("zdr",))


def test_a_configured_target_holds_in_its_own_region_only(write_config, catalogue: Catalogue) -> None:  # type: ignore[no-untyped-def]
    """Bedrock's data-retention setting is per Region: a target attested in eu-central-1 says nothing of the same
    model called in us-east-1, and a Client attempt for that target must not go there."""
    guard = _guard_file(
        write_config,
        catalogue,
        '[targets.eu-claude]\noffering = "bedrock.runtime"\nmodel = "anthropic.claude-3-haiku-20240307-v1:0"\n'
        'region = "eu-central-1"\nattest = ["region=eu"]\n'
        '[tenants.acme]\nclasses.default = ["region=eu"]\n',
    )
    claude = Asks("chat", "anthropic.claude-3-haiku-20240307-v1:0")
    assert _decide(guard, "https://bedrock-runtime.eu-central-1.amazonaws.com/model/x/converse", claude)[0] == "allow"
    for region in ("us-east-1", "ap-northeast-1"):
        url = f"https://bedrock-runtime.{region}.amazonaws.com/model/x/converse"
        assert _decide(guard, url, claude)[:2] == ("refuse", ("region=eu",)), region
    out = Outgoing("test", "POST", "https", "bedrock-runtime.us-east-1.amazonaws.com", None, "/model/x/converse")
    with pytest.raises(_Refused, match="goes to region us-east-1, the target names eu-central-1"):
        guard.targets(guard.place(out), claude, out, guard.policy.targets["eu-claude"])


@pytest.mark.parametrize(
    "body",
    [
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [{"type": ["image_url"], "text": "x"}]}]},
        {"model": "gpt-4o-mini", "messages": [], "prompt_cache_options": {"ttl": ["12h"]}},
        {"model": ["gpt-4o-mini"], "messages": []},
    ],
)
def test_a_body_of_an_unexpected_shape_is_refused_without_quoting_it(catalogue: Catalogue, body: object) -> None:
    """A list where a name is due made the reader raise TypeError out of the transport: no refusal, no record."""
    import json

    from privsdk.errors import PolicyViolation

    guard = _guard({"PRIVSDK_ENDPOINTS": "http://gw.test=openai.api"}, catalogue)
    data = json.dumps(body).replace("x", "CANARY-SHAPE").encode()
    out = Outgoing("openai", "POST", "http", "gw.test", None, "/v1/chat/completions", "", {}, data)
    verdict = guard.judge(out)
    assert verdict.decision.outcome == "refuse"
    reason = verdict.decision.reason or ""
    assert "could not read this request" in reason or "names is not a string" in reason
    with pytest.raises(PolicyViolation) as caught:
        guard.check(out)
    assert "CANARY" not in repr(caught.value.args) and "CANARY" not in str(caught.value.decision.to_json())


@pytest.mark.parametrize(
    ("endpoint", "path"),
    [
        ("openai.api", "/v1/chat/completions"),
        ("mistral.api", "/v1/chat/completions"),
        ("cohere.saas", "/v2/chat"),
        ("bedrock.runtime", "/model/anthropic.claude-3-haiku-20240307-v1:0/converse"),
        ("gemini.api", "/v1beta/models/gemini-2.5-flash:generateContent"),
    ],
)
def test_a_body_nested_too_deeply_is_refused_and_recorded_never_sent(
    catalogue: Catalogue, endpoint: str, path: str
) -> None:
    """JSON nested past the interpreter's recursion limit (the SDK's encoder goes a little deeper than the guard's
    parser) raised RecursionError out of the transport: no refusal, no record. Now it is refused like any other
    unreadable body, through a guarded httpx client to loopback, and the server receives nothing."""
    import httpx

    from privsdk.errors import PolicyViolation
    from privsdk.outbound.transport import guard_httpx
    from tests.wire.openai import OpenAIWire
    from tests.wire.server import LoopbackServer

    records: list[object] = []
    with LoopbackServer(OpenAIWire()) as server:
        env = {"PRIVSDK_ENDPOINTS": f"{server.url}={endpoint}", "PRIVSDK_USAGE": "none"}
        guard = Guard(load_policy(env, catalogue), catalogue=catalogue, recorder=open_recorder(records.append))
        client = guard_httpx(httpx.Client(), sdk="test", refusal=lambda violation: violation, guard=guard)
        body = b'{"model": "m", "messages": [], "contents": [], "blob": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        with pytest.raises(PolicyViolation, match=r"could not read this request|not a JSON object"):
            client.post(server.url + path, content=body)
        assert server.requests == []
    guard.flush(5)
    assert [(r.outcome, r.decision) for r in records] == [("refused", "refuse")]  # type: ignore[attr-defined]


def _chat_to(guard: Guard, host: str, path: str, model: str) -> str:
    """The outcome of a chat request, as the openai SDK sends it, to ``host`` at ``path`` naming ``model``."""
    import json

    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
    return guard.judge(Outgoing("openai", "POST", "https", host, None, path, "", {}, body)).decision.outcome


def test_an_azure_deployment_is_judged_by_what_it_runs_not_by_the_body(catalogue: Catalogue) -> None:
    """Azure runs the deployment the path names, whatever model the body names: a Mistral deployment called with
    model="gpt-4o" once got Azure OpenAI's BAA, which partner models cannot have."""
    guard = _guard({"PRIVSDK_REQUIRE": "hipaa_baa", "PRIVSDK_ATTEST": "azure:baa"}, catalogue)
    foundry, path = "contoso.services.ai.azure.com", "/openai/deployments/{}/chat/completions"
    assert _chat_to(guard, foundry, path.format("gpt-4o"), "gpt-4o") == "allow"
    for body_model in ("Mistral-Large-2411", "gpt-4o"):
        assert _chat_to(guard, foundry, path.format("Mistral-Large-2411"), body_model) == "refuse", body_model
    # A deployment whose name says nothing of its model is judged through a target that names it, or refused.
    assert _chat_to(guard, "contoso.openai.azure.com", path.format("prod-chat"), "gpt-4o") == "refuse"
    reason = guard.judge(
        Outgoing("openai", "POST", "https", "contoso.openai.azure.com", None, path.format("prod-chat"), "", {}, b"{}")
    ).decision.reason
    assert reason is not None and "deployment = 'prod-chat'" in reason


@pytest.mark.parametrize(
    ("model", "daylong"),
    [
        ("gpt-5.5", True),
        ("gpt-5.5-pro", True),
        ("gpt-5.10-codex", True),
        ("gpt-6", True),
        ("ft:gpt-5.5-2026-01-01:acme::abc123", True),
        ("gpt-5.4", False),
        ("gpt-5", False),
        ("gpt-4o-mini", False),
        ("o3", False),
    ],
)
def test_models_that_only_take_day_long_prompt_caching_ask_for_it_however_the_request_is_written(
    catalogue: Catalogue, model: str, daylong: bool
) -> None:
    """OpenAI and Azure: gpt-5.5 and later cache prompts for up to 24 hours, and take no in_memory retention, so a
    ZDR attestation does not cover them; a self-hosted server serving a model of that name caches as it does. An
    Azure deployment is judged by the name its request's path carries, whatever the body names."""
    import json

    env = {"PRIVSDK_REQUIRE": "zdr", "PRIVSDK_ATTEST": "openai:zdr,azure:modified_abuse_monitoring"}
    guard = _guard({**env, "PRIVSDK_ENDPOINTS": "http://vllm:8000=selfhosted.vllm"}, catalogue)
    messages = [{"role": "user", "content": "hi"}]
    bodies = [
        ("/v1/chat/completions", {"model": model, "messages": messages}),
        ("/v1/chat/completions", {"model": model, "messages": messages, "prompt_cache_retention": "in_memory"}),
        ("/v1/responses", {"model": model, "input": "hi", "store": False}),
    ]

    def judge(scheme: str, host: str, port: int | None, path: str, body: object) -> str | None:
        out = Outgoing("openai", "POST", scheme, host, port, path, "", {}, json.dumps(body).encode())
        decision = guard.judge(out).decision
        return decision.reason if decision.outcome == "refuse" else None

    for path, body in bodies:
        reason = judge("https", "api.openai.com", None, path, body)
        assert (reason is not None and "(the request asks for prompt_caching)" in reason) is daylong, (path, body)
        assert "prompt_caching" not in (judge("http", "vllm", 8000, path, body) or "")
    azure = "/openai/deployments/{}/chat/completions"
    assert (
        judge("https", "contoso.openai.azure.com", None, azure.format(model), {"messages": messages}) is not None
    ) is (daylong)
    if daylong:  # the deployment decides, whatever the body names
        assert judge(
            "https", "contoso.openai.azure.com", None, azure.format(model), {"model": "gpt-4o", "messages": messages}
        )
        assert (
            judge(
                "https",
                "contoso.openai.azure.com",
                None,
                azure.format("gpt-4o"),
                {"model": model, "messages": messages},
            )
            is None
        )


def test_a_deployment_named_by_a_target_is_judged_as_that_target(write_config, catalogue: Catalogue) -> None:  # type: ignore[no-untyped-def]
    guard = _guard_file(
        write_config,
        catalogue,
        '[attest]\nazure = ["baa"]\n'
        '[targets.prod]\noffering = "azure.openai"\nmodel = "gpt-4o"\ndeployment = "prod-chat"\n'
        'endpoint = "https://contoso.openai.azure.com"\n'
        '[tenants.acme]\nclasses.default = ["hipaa_baa"]\n',
    )
    path = "/openai/deployments/{}/chat/completions"
    assert _chat_to(guard, "contoso.openai.azure.com", path.format("prod-chat"), "whatever") == "allow"
    assert _chat_to(guard, "contoso.openai.azure.com", path.format("other-chat"), "gpt-4o") == "refuse"


def test_a_declared_account_and_the_account_a_request_names_must_agree(catalogue: Catalogue) -> None:
    """An endpoint declared for one account (a proxy that adds it) once lent that account's attestations to a
    request that named another project."""
    env = {
        "PRIVSDK_ENDPOINTS": "https://gw.corp.test/v1=openai.api@proj_abc",
        "PRIVSDK_REQUIRE": "zdr",
        "PRIVSDK_ATTEST": "openai:zdr@proj_abc",
    }
    guard = _guard(env, catalogue)
    url = "https://gw.corp.test/v1/chat/completions"
    assert _decide(guard, url, CHAT_4O)[0] == "allow"  # the proxy names the account
    assert _decide(guard, url, CHAT_4O, {"openai-project": "proj_abc"})[0] == "allow"
    outcome, _, reason = _decide(guard, url, CHAT_4O, {"openai-project": "proj_other"})
    assert outcome == "refuse" and reason is not None and "names account 'proj_other'" in reason


def test_a_host_that_names_its_account_cannot_be_declared_for_another(catalogue: Catalogue) -> None:
    """Refused at each request before; a configuration error now, as the policy loads (the host is the vendor's own,
    where no declared account holds)."""
    env = {"PRIVSDK_ENDPOINTS": "https://contoso.openai.azure.com=azure.openai@fabrikam", "PRIVSDK_ATTEST": "azure:baa"}
    with pytest.raises(ConfigError, match=r"contoso\.openai\.azure\.com is the vendor's own host"):
        _guard({**env, "PRIVSDK_REQUIRE": "hipaa_baa"}, catalogue)


def test_a_google_cloud_project_comes_from_the_path_not_from_an_openai_header(catalogue: Catalogue) -> None:
    guard = _guard({"PRIVSDK_REQUIRE": "hipaa_baa", "PRIVSDK_ATTEST": "vertex:baa@acme-prod"}, catalogue)
    host = "https://europe-west4-aiplatform.googleapis.com/v1/projects/{}/x"
    gemini = Asks("chat", "gemini-2.5-flash", project="acme-prod", location="europe-west4", publisher="google")
    assert _decide(guard, host.format("acme-prod"), gemini)[0] == "allow"
    other = gemini._replace(project="other-proj")
    assert _decide(guard, host.format("other-proj"), other, {"openai-project": "acme-prod"})[0] == "refuse"


@pytest.mark.parametrize("path", ["/vllm/%2e%2e/openai/v1/chat/completions", "/vllm/../openai/v1/chat/completions",
                                  "/vllm/.%2E/openai/v1/chat/completions", "/vllm/./v1/chat/completions",
                                  "/vllm//openai/v1/chat/completions", "/vllm/v1//chat/completions",
                                  "/vllm/..%2Fopenai/v1/chat/completions", "/vllm/%2e%2e%2fopenai/v1/chat/completions",
                                  "/vllm/..;/openai/v1/chat/completions", "/vllm/..\\openai/v1/chat/completions",
                                  "/vllm/%2E%2E%5Copenai/v1/chat/completions",
                                  "/vllm/v1/%2F/chat/completions"])  # fmt: skip
def test_a_path_with_dot_segments_is_refused(catalogue: Catalogue, path: str) -> None:
    """A server that normalises the path (RFC 3986, nginx) would serve another route than the prefix judged."""
    guard = _guard({"PRIVSDK_ENDPOINTS": "http://gw.test/vllm=selfhosted.vllm"}, catalogue)
    outcome, _, reason = _decide(guard, "http://gw.test" + path, CHAT_4O)
    assert outcome == "refuse" and reason is not None and "another path than the one judged" in reason, reason
    assert _decide(guard, "http://gw.test/vllm/v1/chat/completions", CHAT_4O)[0] == "allow"
    bedrock = _guard({}, catalogue)  # dots inside a segment (model ids) are no dot segments
    url = "https://bedrock-runtime.eu-west-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    assert _decide(bedrock, url, Asks("chat", "anthropic.claude-3-haiku-20240307-v1:0"))[0] == "allow"


@pytest.mark.parametrize(
    "path", ["/v1/batch/%6Aobs", "/v1/batch/jobs;x", "/v1/fine_tuning/jobs;", "/v1/chat/c%6Fmpletions", "/v1/%63hat/x"]
)
def test_a_path_with_a_parameter_or_an_escaped_plain_sign_is_refused(catalogue: Catalogue, path: str) -> None:
    """No SDK writes either, and a server reads them as the plain path ("%6Aobs" is "jobs"; Tomcat and Spring drop
    ";x"): the Mistral reader matched "/v1/batch/%6Aobs" as no job creation, and sent the job unread."""
    guard = _guard({"PRIVSDK_ENDPOINTS": "http://mistral.test=mistral.api"}, catalogue)
    out = Outgoing(
        "mistralai", "POST", "http", "mistral.test", None, path, "", {}, b'{"model": "mistral-small-latest"}'
    )
    decision = guard.judge(out).decision
    assert decision.outcome == "refuse" and "%-escape of a plain sign" in str(decision.reason), decision.reason
    escaped_colon = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"  # a reserved sign, as botocore writes it
    bedrock = _guard({}, catalogue)
    url = "https://bedrock-runtime.eu-west-1.amazonaws.com" + escaped_colon
    assert _decide(bedrock, url, Asks("chat", "anthropic.claude-3-haiku-20240307-v1:0"))[0] == "allow"


def test_a_path_whose_decoded_form_falls_under_another_declared_endpoint_is_refused(catalogue: Catalogue) -> None:
    """Gateways route on the decoded path: "/openai%2Fv1" was judged under the catch-all self-hosted endpoint and
    served by the OpenAI route. An escaped "/" that stays under the same endpoint (a Bedrock model ARN) is sent."""
    env = {"PRIVSDK_ENDPOINTS": "http://gw.test=selfhosted.vllm,http://gw.test/openai=openai.api"}
    guard = _guard({**env, "PRIVSDK_REQUIRE": "private_deployment"}, catalogue)
    outcome, _, reason = _decide(guard, "http://gw.test/openai%2Fv1/chat/completions", CHAT_4O)
    assert outcome == "refuse" and reason is not None and "%-escapes decoded" in reason, reason
    assert _decide(guard, "http://gw.test/v1/chat/completions", CHAT_4O)[0] == "allow"
    bedrock = _guard({"PRIVSDK_ENDPOINTS": "https://gw.test/bedrock=bedrock.runtime"}, catalogue)
    arn = "arn%3Aaws%3Abedrock%3Aeu-west-1%3A123456789012%3Ainference-profile%2Feu.anthropic.claude-3-haiku-v1%3A0"
    asks = Asks("chat", "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-haiku-v1:0")
    assert _decide(bedrock, f"https://gw.test/bedrock/model/{arn}/converse", asks)[0] == "allow"


def test_jakarta_is_not_india() -> None:
    from privsdk.outbound.places import geography

    assert geography("gcp_location", "asia-southeast2") is None  # Indonesia: no geography privsdk names
    assert geography("gcp_location", "asia-south1") == geography("gcp_location", "asia-south2") == "in"
    assert geography("gcp_location", "asia-southeast1") == "sg"


PROXY, HAIKU = "https://llm-proxy.test", "anthropic.claude-3-haiku-20240307-v1%3A0"


@pytest.mark.parametrize(
    ("declared", "path", "body"),
    [
        (f"{PROXY}/cohere=cohere.saas", "/cohere/v2/chat", {"model": "command-r-plus", "messages": []}),
        (f"{PROXY}/mistral=mistral.api", "/mistral/v1/chat/completions", {"model": "mistral-small-latest"}),
        (f"{PROXY}/mistral/v1=mistral.api", "/mistral/v1/chat/completions", {"model": "mistral-small-latest"}),
        (f"{PROXY}/bedrock=bedrock.runtime", f"/bedrock/model/{HAIKU}/converse", {"messages": []}),
        (f"{PROXY}/openai=openai.api", "/openai/v1/chat/completions", {"model": "gpt-4o-mini", "messages": []}),
    ],
)  # fmt: skip
def test_a_declared_endpoint_with_a_path_prefix_is_read_after_it(
    catalogue: Catalogue, declared: str, path: str, body: dict[str, object]
) -> None:
    """A corporate proxy that serves each vendor under a prefix of its own: the vendor's route follows it."""
    import json

    guard = _guard({"PRIVSDK_ENDPOINTS": declared}, catalogue)
    sdk = {"cohere": "cohere", "mistral": "mistralai", "bedrock": "boto3", "openai": "openai"}[path.split("/")[1]]
    out = Outgoing(sdk, "POST", "https", "llm-proxy.test", None, path, "", {}, json.dumps(body).encode())
    verdict = guard.judge(out)
    assert verdict.decision.outcome == "allow", verdict.decision.reason
    assert verdict.asks is not None and verdict.asks.operation == "chat"


CLOUDFLARE = "https://gateway.ai.cloudflare.com/v1/acmeaccount/prodgateway"


@pytest.mark.parametrize(
    ("sdk", "declared", "route", "body", "operation"),
    [
        ("openai", "openai=openai.api", "/chat/completions", {"model": "gpt-4o-mini"}, "chat"),
        ("openai", "openai=openai.api", "/files", {}, "files"),
        ("cohere", "cohere=cohere.saas", "/v2/embed", {"model": "embed-v4.0"}, "embed"),
        ("mistralai", "mistral=mistral.api", "/v1/chat/completions", {"model": "mistral-small-latest"}, "chat"),
        ("boto3", "aws-bedrock/bedrock-runtime/eu-west-1=bedrock.runtime", f"/model/{HAIKU}/converse", {}, "chat"),
        ("genai", "google-ai-studio=gemini.api", "/v1beta/models/gemini-2.5-flash:generateContent", {}, "chat"),
        ("genai", "google-ai-studio=gemini.api", "/v1beta/models/gemini-embedding-001:embedContent", {}, "embed"),
    ],
)  # fmt: skip
def test_a_gateway_prefix_that_looks_like_a_route_is_read_after_it(
    catalogue: Catalogue, sdk: str, declared: str, route: str, body: dict[str, object], operation: str
) -> None:
    """Cloudflare AI Gateway serves each vendor under /v1/{account}/{gateway}/{provider}: its own "v1" made every
    vendor's reader read the gateway's path as the route, and refuse it ("unknown path shape"). A path the reader
    cannot read whole is read after the declared endpoint's path, which is what the gateway forwards."""
    import json

    guard = _guard({"PRIVSDK_ENDPOINTS": f"{CLOUDFLARE}/{declared}"}, catalogue)
    path = "/" + f"{CLOUDFLARE}/{declared}".split("/", 3)[3].split("=")[0] + route
    out = Outgoing(sdk, "POST", "https", "gateway.ai.cloudflare.com", None, path, "", {}, json.dumps(body).encode())
    verdict = guard.judge(out)
    assert verdict.asks is not None and verdict.asks.operation == operation, verdict.decision.reason
    assert verdict.decision.outcome == "allow", verdict.decision.reason
    # Whatever follows the prefix must still be a route: an unknown one is refused, naming what follows the prefix
    # (the route the gateway forwards), never the prefix's own segments.
    unknown = guard.judge(out._replace(path=path.rsplit("/", 1)[0] + "/no-such-route/x")).decision
    reason = unknown.reason or ""
    assert unknown.outcome == "refuse" and "unknown" in reason
    assert "acmeaccount" not in reason and "prodgateway" not in reason


@pytest.mark.parametrize(
    ("sdk", "declared", "path"),
    [
        ("openai", "http://gw.test=openai.api", "/v1/gwtok-CANARY-PATH-9f8e/chat/completions"),
        ("cohere", "http://gw.test=cohere.saas", "/v2/gwtok-CANARY-PATH-9f8e"),
        ("cohere", "http://gw.test=cohere.saas", "/gwtok-CANARY-PATH-9f8e/chat"),
        ("mistralai", "http://gw.test=mistral.api", "/v1/gwtok-CANARY-PATH-9f8e"),
        ("boto3", "http://gw.test=bedrock.runtime", "/gwtok-CANARY-PATH-9f8e/x"),
        ("boto3", "http://gw.test=bedrock.runtime", "/model/m/gwtok-CANARY-PATH-9f8e"),
        ("genai", "http://gw.test=vertex.gemini", "/v1/gwtok-CANARY-PATH-9f8e/x"),
    ],
)
def test_a_refusal_never_quotes_a_path_segment_it_does_not_know(
    catalogue: Catalogue, sdk: str, declared: str, path: str
) -> None:
    """A gateway may carry a token in its path: an unknown segment is named ``<segment>``, never shown."""
    guard = _guard({"PRIVSDK_ENDPOINTS": declared}, catalogue)
    decision = guard.judge(Outgoing(sdk, "POST", "http", "gw.test", None, path, "", {}, b"{}")).decision
    assert decision.outcome == "refuse"
    assert "CANARY" not in str(decision.to_json()) and "CANARY" not in repr(decision)


@pytest.mark.parametrize(
    ("host_header", "outcome"),
    [
        (None, "allow"),
        ("gw.test:8000", "allow"),
        ("GW.test.:8000", "allow"),
        ("openai-egress", "refuse"),
        ("gw.test", "refuse"),  # port 80, not 8000
        ("gw.test:8001", "refuse"),
        ("gw.test:80x", "refuse"),
    ],
)
def test_a_host_header_for_another_host_than_the_url_is_refused(
    catalogue: Catalogue, host_header: str | None, outcome: str
) -> None:
    """A gateway serving name-based virtual hosts routes by the Host header: a request to the declared private
    server with ``Host: openai-egress`` was judged as the private server and served by the egress."""
    import httpx

    from privsdk.outbound.transport import outgoing

    guard = _guard({"PRIVSDK_ENDPOINTS": "http://gw.test:8000/v1=selfhosted.vllm"}, catalogue)
    headers = {"Host": host_header} if host_header is not None else {}
    body = b'{"model": "llama-3.1-8b", "messages": []}'
    request = httpx.Request("POST", "http://gw.test:8000/v1/chat/completions", headers=headers, content=body)
    verdict = guard.judge(outgoing(request, "openai", request.read()))
    assert verdict.decision.outcome == outcome, verdict.decision.reason
    if outcome == "refuse":
        assert verdict.decision.reason is not None and "Host header" in verdict.decision.reason


def test_a_second_host_header_never_leaves() -> None:
    """The guard's Host check reads httpx's own Host and leaves a second one to h11, which refuses to send it."""
    import h11

    with pytest.raises(h11.LocalProtocolError, match="multiple Host"):
        h11.Request(method="POST", target="/v1/chat/completions", headers=[("Host", "gw.test"), ("Host", "egress")])


def test_on_azures_v1_api_the_bodys_model_is_the_deployment(write_config, catalogue: Catalogue) -> None:  # type: ignore[no-untyped-def]
    """Azure's v1 API routes by the body's model, which names a deployment: a target's attestations hold for the
    deployment it names, not for another deployment that happens to be called after the target's model."""
    guard = _guard_file(
        write_config,
        catalogue,
        '[targets.eu]\noffering = "azure.openai"\nmodel = "gpt-4o"\ndeployment = "gpt-4o-eu"\n'
        'endpoint = "https://contoso.openai.azure.com"\nattest = ["deployment=data_zone_eu"]\n'
        '[tenants.acme]\nclasses.default = ["region=eu"]\n',
    )
    host, path = "contoso.openai.azure.com", "/openai/v1/chat/completions"
    assert _chat_to(guard, host, path, "gpt-4o-eu") == "allow"
    assert _chat_to(guard, host, path, "gpt-4o") == "refuse"
    # The same deployment by the classic route, under a gateway's own prefix too, is judged alike.
    gateway = _guard_file(
        write_config,
        catalogue,
        '[endpoints]\n"https://gw.test/eu" = "azure.openai"\n'
        '[targets.eu]\noffering = "azure.openai"\nmodel = "gpt-4o"\ndeployment = "gpt-4o-eu"\n'
        'endpoint = "https://gw.test/eu"\nattest = ["deployment=data_zone_eu"]\n'
        '[tenants.acme]\nclasses.default = ["region=eu"]\n',
    )
    classic = "/eu/openai/deployments/{}/chat/completions"
    assert _chat_to(gateway, "gw.test", classic.format("gpt-4o-eu"), "gpt-4o") == "allow"
    assert _chat_to(gateway, "gw.test", classic.format("gpt4o-global-us"), "gpt-4o-eu") == "refuse"


@pytest.mark.parametrize(
    ("config", "url", "asks", "headers"),
    [
        (  # a Vertex target for one Google Cloud project, and a request for another
            '[targets.t]\noffering = "vertex.gemini"\nmodel = "gemini-2.5-flash"\nproject = "acme-approved"\n'
            'region = "europe-west4"\nattest = ["abuse_monitoring_exception", "caching_disabled"]\n',
            "https://europe-west4-aiplatform.googleapis.com/v1/projects/someone-else/x",
            Asks("chat", "gemini-2.5-flash", project="someone-else", location="europe-west4", publisher="google"),
            {},
        ),
        (  # an OpenAI target for one project, and a request naming another
            '[targets.t]\noffering = "openai.api"\nmodel = "gpt-4o-mini"\nproject = "proj_approved"\n'
            'attest = ["zdr"]\n',
            "https://api.openai.com/v1/chat/completions",
            CHAT_4O,
            {"openai-project": "proj_other"},
        ),
        (  # a Vertex target naming no project (it comes from GOOGLE_CLOUD_PROJECT), and a request for one
            '[targets.t]\noffering = "vertex.gemini"\nmodel = "gemini-2.5-flash"\nregion = "europe-west4"\n'
            'attest = ["abuse_monitoring_exception", "caching_disabled"]\n',
            "https://europe-west4-aiplatform.googleapis.com/v1/projects/someone-else/x",
            Asks("chat", "gemini-2.5-flash", project="someone-else", location="europe-west4", publisher="google"),
            {},
        ),
        (  # an OpenAI target naming no project (it comes from OPENAI_PROJECT_ID), and a request naming one
            '[targets.t]\noffering = "openai.api"\nmodel = "gpt-4o-mini"\nattest = ["zdr"]\n',
            "https://api.openai.com/v1/chat/completions",
            CHAT_4O,
            {"openai-project": "proj_unapproved"},
        ),
        (  # an Azure target naming no resource (it comes from AZURE_OPENAI_ENDPOINT), and a resource's request
            '[targets.t]\noffering = "azure.openai"\nmodel = "gpt-4o-mini"\nattest = ["deployment=data_zone_eu"]\n',
            "https://contoso-us.openai.azure.com/openai/deployments/gpt-4o-mini/chat/completions",
            Asks("chat", "gpt-4o-mini", deployment="gpt-4o-mini"),
            {},
        ),
        (  # a Bedrock target naming no Region (it comes from AWS_REGION), and a request in one
            '[targets.t]\noffering = "bedrock.runtime"\nmodel = "anthropic.claude-3-haiku-20240307-v1:0"\n'
            'attest = ["data_retention_mode=none"]\n',
            "https://bedrock-runtime.ap-south-1.amazonaws.com/model/x/converse",
            Asks("chat", "anthropic.claude-3-haiku-20240307-v1:0"),
            {},
        ),
    ],
)
def test_a_targets_attestations_hold_for_its_own_account_and_region_only(  # type: ignore[no-untyped-def]
    write_config, catalogue: Catalogue, config: str, url: str, asks: Asks, headers: dict[str, str]
) -> None:
    """A target's attestations were lent to any account and any Region of its offering, and a target naming no
    account to a request naming any."""
    guard = _guard_file(write_config, catalogue, config + '[tenants.acme]\nclasses.default = ["zdr", "region=eu"]\n')
    scheme, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    out = Outgoing("test", "POST", scheme, host, None, "/" + path, headers=headers)
    place = guard.place(out)
    assert [t.name for t in guard.targets(place, asks, out, None)] != ["t"]
