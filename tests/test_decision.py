"""The decision engine: fail closed, reroute only to compliant targets, stale catalogues, caching,
and an exhaustive sweep of offering x requirement x attestation x operation against an independent oracle."""

from __future__ import annotations

import datetime as dt
import fnmatch
from pathlib import Path
from typing import Any

import pytest

from privsdk import tomlcompat
from privsdk.catalogue import DATA_DIR, Catalogue, Offering
from privsdk.catalogue.implied import implied_features
from privsdk.decision import applicable_attestations, decide
from privsdk.policy import Target
from tests.conftest import all_offerings, model_for, one_target_policy

TODAY = dt.date(2026, 11, 22)


@pytest.mark.parametrize(
    ("target", "operation", "features", "reason"),
    [
        ("nosuch/model", "chat", (), "unknown vendor 'nosuch'"),
        ("no-slash-target", "chat", (), "unknown target 'no-slash-target'"),
        ("openai/", "chat", (), "names no model"),
        ("openai/claude-3-opus", "chat", (), "unknown model family 'claude-3-opus'"),
        ("openai/gpt-4o", "teleport", (), "unknown operation 'teleport'"),
        ("openai/gpt-4o", "rerank", (), "does not serve rerank"),
        ("mistral/mistral-large-latest", "rerank", (), "does not serve rerank"),
        ("openai/gpt-4o", "chat", ("telepathy",), "unknown features telepathy"),
    ],
)
def test_unknowns_refuse_with_a_reason(target: str, operation: str, features: tuple[str, ...], reason: str) -> None:
    """Anything the engine does not know is refused, never allowed, even with no requirements at all."""
    policy = one_target_policy("openai.api", "gpt-4o", [])
    decision = decide(policy, target, operation, features=features, today=TODAY)
    assert decision.outcome == "refuse"
    assert decision.reason is not None and reason in decision.reason
    assert decision.chosen is None


def test_unknown_tenant_and_data_class_refuse() -> None:
    policy = one_target_policy("openai.api", "gpt-4o", [])
    assert "unknown tenant 'zed'" in (decide(policy, "tgt", tenant="zed").reason or "")
    assert "no data class 'phi'" in (decide(policy, "tgt", data_class="phi").reason or "")
    # A policy built in code says so, not that PRIVSDK_CONFIG names no file (which is for load_policy without one).
    for reason in (decide(policy, "tgt", tenant="zed").reason, decide(policy, "nosuch").reason):
        assert reason is not None and "a Policy built in code" in reason and "PRIVSDK_CONFIG" not in reason


def test_unknown_offering_in_a_hand_built_policy_refuses() -> None:
    policy = one_target_policy("openai.nope", "gpt-4o", [])
    decision = decide(policy, "tgt", today=TODAY)
    assert decision.outcome == "refuse"
    assert "unknown offering 'openai.nope'" in (decision.reason or "")


def test_vendor_model_means_the_public_api_offering() -> None:
    policy = one_target_policy("openai.api", "gpt-4o", ["no_training"])
    decision = decide(policy, "mistral/mistral-small-latest", today=TODAY)
    assert decision.evaluation.offering == "mistral.api"
    assert decision.outcome == "refuse"  # the free plan trains


def _openai_reviewed() -> dt.date:
    offering = Catalogue().offering("openai.api")
    assert offering is not None
    return offering.reviewed


def test_a_stale_catalogue_refuses() -> None:
    """Past the tenant's maximum age, every decision refuses and says how to fix it."""
    policy = one_target_policy("openai.api", "gpt-4o", [], max_age=30)
    reviewed = _openai_reviewed()
    fresh = decide(policy, "tgt", today=reviewed + dt.timedelta(days=30))
    stale = decide(policy, "tgt", today=reviewed + dt.timedelta(days=31))
    assert fresh.outcome == "allow"
    assert stale.outcome == "refuse"
    assert stale.reason is not None and "max_catalogue_age_days" in stale.reason and "31 days ago" in stale.reason


def test_attestations_without_their_prerequisites_are_ignored() -> None:
    """A hand-built policy that skips config validation still cannot claim Mistral ZDR without Scale."""
    offering = Catalogue().offering("mistral.api")
    assert offering is not None
    assert applicable_attestations(offering, frozenset({"mistral:zdr"})) == ()
    both = frozenset({"mistral:zdr", "mistral:plan=scale"})
    assert applicable_attestations(offering, both) == ("mistral:plan=scale", "mistral:zdr")


def test_conflicting_region_attestations_claim_nothing() -> None:
    """An account said to be EU-only and a target said to be US-only cannot make a region hold."""
    policy = one_target_policy(
        "bedrock.runtime", "anthropic.claude-3-haiku", ["region=eu|us"],
        frozenset({"bedrock:region=eu"}), target_attest=frozenset({"bedrock:region=us"}),
    )  # fmt: skip
    assert decide(policy, "tgt", today=TODAY).outcome == "refuse"


ALT_EU = Target("azure-eu", "azure.openai", "gpt-4o", frozenset({"azure:deployment=data_zone_eu"}))
ALT_US = Target("azure-us", "azure.openai", "gpt-4o", frozenset({"azure:deployment=data_zone_us"}))


def test_reroute_picks_the_first_compliant_alternative_in_order() -> None:
    policy = one_target_policy(
        "openai.api", "gpt-4o", ["region=eu"], on_violation="reroute",
        reroute=(("tgt", ("azure-us", "azure-eu")),), extra_targets=(ALT_EU, ALT_US),
    )  # fmt: skip
    decision = decide(policy, "tgt", today=TODAY)
    assert decision.outcome == "reroute"
    assert decision.chosen == "azure-eu"
    assert [u.requirement for u in decision.unmet] == ["region=eu"]  # what the requested target lacked
    assert decision.to_json()["chosen_offering"] == "azure.openai"
    assert decide(policy, "azure-eu", today=TODAY).outcome == "allow"


def test_reroute_never_settles_for_a_non_compliant_alternative() -> None:
    policy = one_target_policy(
        "openai.api", "gpt-4o", ["region=eu"], on_violation="reroute",
        reroute=(("tgt", ("azure-us",)),), extra_targets=(ALT_US,),
    )  # fmt: skip
    decision = decide(policy, "tgt", today=TODAY)
    assert decision.outcome == "refuse"
    assert decision.reason is not None and "no compliant alternative among azure-us" in decision.reason


def test_reroute_lists_match_vendor_model_and_globs() -> None:
    policy = one_target_policy(
        "openai.api", "gpt-4o", ["region=eu"], on_violation="reroute",
        reroute=(("openai/gpt-4o", ("azure-eu",)), ("openai/*", ("azure-us", "azure-eu"))),
        extra_targets=(ALT_EU, ALT_US),
    )  # fmt: skip
    assert decide(policy, "openai/gpt-4o", today=TODAY).chosen == "azure-eu"
    assert decide(policy, "openai/o3-mini", today=TODAY).chosen == "azure-eu"
    # A named target matches by its vendor/model too: "tgt" (openai.api, gpt-4o) was refused, "no reroute list
    # matches this target", under a policy whose "openai/*" a reader takes to cover every OpenAI model.
    assert decide(policy, "tgt", today=TODAY).chosen == "azure-eu"
    globbed = one_target_policy(
        "openai.api", "gpt-4o-mini", ["region=eu"], on_violation="reroute",
        reroute=(("openai/*", ("azure-eu",)),), extra_targets=(ALT_EU,),
    )  # fmt: skip
    assert decide(globbed, "tgt", today=TODAY).chosen == "azure-eu"
    named_first = one_target_policy(
        "openai.api", "gpt-4o", ["region=eu"], on_violation="reroute",
        reroute=(("openai/*", ("azure-us",)), ("tgt", ("azure-eu",))), extra_targets=(ALT_EU, ALT_US),
    )  # fmt: skip
    assert decide(named_first, "tgt", today=TODAY).chosen == "azure-eu"  # an exact entry before any glob


def test_refuse_policy_never_reroutes() -> None:
    policy = one_target_policy(
        "openai.api", "gpt-4o", ["region=eu"], on_violation="refuse",
        reroute=(("tgt", ("azure-eu",)),), extra_targets=(ALT_EU,),
    )  # fmt: skip
    assert decide(policy, "tgt", today=TODAY).outcome == "refuse"


def test_decisions_are_cached_per_key() -> None:
    policy = one_target_policy("openai.api", "gpt-4o", ["zdr"])
    first = decide(policy, "tgt", "chat", today=TODAY)
    assert decide(policy, "tgt", "chat", today=TODAY) is first
    assert decide(policy, "tgt", "embed", today=TODAY) is not first
    other = one_target_policy("openai.api", "gpt-4o", ["zdr"], frozenset({"openai:zdr"}))
    assert decide(other, "tgt", "chat", today=TODAY).outcome == "allow"  # another policy, another answer


def test_decision_json_holds_no_more_than_names_and_catalogue_text() -> None:
    policy = one_target_policy("openai.api", "gpt-4o", ["zdr", "region=eu"])
    data = decide(policy, "tgt", today=TODAY).to_json()
    assert {"decision", "target", "chosen", "unmet", "catalogue_as_of"} <= set(data)
    assert data["decision"] == "refuse" and data["catalogue_as_of"] == _openai_reviewed().isoformat()
    assert [u["requirement"] for u in data["unmet"]] == ["zdr", "region=eu"]
    assert all({"requirement", "offered", "source", "as_of"} <= set(u) for u in data["unmet"])


# -- the exhaustive sweep -----------------------------------------------------------------------
# An oracle written separately from the engine: it reads the TOML files with tomllib, merges
# inheritance by hand, and compares values with its own ordering. The engine must agree with it
# for every offering x requirement x attestation set x operation.

REQUIREMENTS = [
    "no_training", "zdr", "max_retention_days=0", "max_retention_days=1", "max_retention_days=30",
    "max_retention_days=90", "no_human_review", "no_provider_sharing", "private_deployment",
    "region=eu", "region=us", "region=eu|us", "region=apac", "hipaa_baa",
]  # fmt: skip


def _raw_offerings() -> dict[str, dict[str, Any]]:
    raw: dict[str, dict[str, Any]] = {}
    files = {p.stem: tomlcompat.loads(p.read_text()) for p in Path(DATA_DIR).glob("*.toml")}
    pending = [(v, o) for v, f in files.items() for o in f["offerings"]]
    while pending:  # resolve parents before children, across files
        vendor, o = pending.pop(0)
        parent = o.get("inherits")
        if parent and parent not in raw:
            pending.append((vendor, o))
            continue
        base = dict(raw[parent]) if parent else {"facts": {}, "attestations": {}, "limits": []}
        merged = {
            "operations": o.get("operations", base.get("operations")),
            "facts": {**base["facts"], **{k: f["value"] for k, f in o.get("facts", {}).items()}},
            "attestations": {**base["attestations"], **{
                f"{vendor}:{a['name']}": (
                    [r if ":" in r else f"{vendor}:{r}" for r in a.get("requires", [])],
                    {k: f["value"] for k, f in a["facts"].items()},
                ) for a in o.get("attestations", [])
            }},
            "limits": base["limits"] + o.get("limits", []),
            "hosts": o.get("hosts", base.get("hosts", [])),
        }  # fmt: skip
        raw[o["id"]] = merged
    return raw


def _rank(name: str, v: Any) -> float:
    if v == "unknown":
        return -1
    if name == "retention_days":
        return 0 if v == "unbounded" else 1000 - v
    return 1 if v else 0


def _oracle(
    raw: dict[str, Any], model: str, op: str, attest: set[str], req: str, implied: frozenset[str] = frozenset()
) -> bool:
    facts = dict(raw["facts"])
    # A target that names no region is sent to the one host that shows none (api.openai.com beside
    # {geo}.api.openai.com): an attestation of where requests are served does not hold there.
    hosts = raw["hosts"]
    plain = [h for h in hosts if "{" not in h]
    others = [h for h in hosts if "{" in h]
    at_plain_host = len(plain) == 1 and bool(others) and all(h.count("{") == 1 and "{geo}" in h for h in others)
    for name in attest:
        if at_plain_host and "regions" in raw["attestations"][name][1]:
            continue
        for k, v in raw["attestations"][name][1].items():
            if k == "regions":
                facts[k] = v if facts[k] in ("any", "unknown") else sorted(set(facts[k]) & set(v)) or "unknown"
            elif _rank(k, v) > _rank(k, facts[k]):
                facts[k] = v
    for li in raw["limits"]:
        if li.get("operations") and op not in li["operations"]:
            continue
        if li.get("features") and not implied & set(li["features"]):
            continue  # the sweep asks for no feature: only what the service gives the model (catalogue.implied)
        if li.get("models") and not any(fnmatch.fnmatchcase(model, g) for g in li["models"]):
            continue
        for k, f in li["facts"].items():
            v = f["value"]
            if k == "regions":
                if "unknown" in (facts[k], v) or "any" in (facts[k], v):
                    facts[k] = "unknown" if "unknown" in (facts[k], v) else "any"
                else:
                    facts[k] = sorted(set(facts[k]) | set(v))
            elif _rank(k, v) < _rank(k, facts[k]):
                facts[k] = v
    name, _, arg = req.partition("=")
    if name in ("zdr", "max_retention_days"):
        v = facts["retention_days"]
        return isinstance(v, int) and v <= (0 if name == "zdr" else int(arg))
    if name == "region":
        v = facts["regions"]
        return isinstance(v, list) and bool(v) and set(v) <= set(arg.split("|"))
    return facts[name] is True


def _attestation_sets(offering: Offering) -> list[frozenset[str]]:
    """Nothing, then each attestation with what it requires."""
    sets = [frozenset[str]()]
    for name, att in offering.attestations.items():
        sets.append(frozenset({name, *att.requires}))
    return sets


def test_engine_agrees_with_the_oracle_everywhere(catalogue: Catalogue) -> None:
    raw = _raw_offerings()
    checked = 0
    for offering in all_offerings(catalogue):
        base = model_for(offering)
        # A limit glob with "x" for its star, or with a served family there (eu.* is eu.<family>, nothing else).
        models = [base] + [
            m if offering.serves_model(m := g.replace("*", "x")) else g.replace("*", base, 1).replace("*", "x")
            for li in offering.limits
            for g in li.models
        ]
        for model in models:
            for attest in _attestation_sets(offering):
                for op in sorted(offering.operations):
                    policy = one_target_policy(offering.id, model, REQUIREMENTS, attest)
                    decision = decide(policy, "tgt", op, today=TODAY)
                    if decision.evaluation.reason is not None:
                        assert "unknown model family" in decision.evaluation.reason  # a limit glob outside `models`
                        continue
                    unmet = {u.requirement for u in decision.unmet}
                    for req in REQUIREMENTS:
                        implied = implied_features(offering.id, model)
                        expected = _oracle(raw[offering.id], model, op, set(attest), req, implied)
                        assert (req not in unmet) == expected, (offering.id, model, sorted(attest), op, req)
                        checked += 1
    assert checked > 10_000


FT_OPENAI = "ft:gpt-4o-mini-2024-07-18:acme::abc123"


def test_a_fine_tuned_openai_model_is_judged_as_its_base_model() -> None:
    """With no requirement it is allowed (it was an unknown model family); ZDR attested covers its chat, not its
    files; a target may name it."""
    policy = one_target_policy("openai.api", FT_OPENAI, ["zdr"], frozenset({"openai:zdr"}))
    assert decide(one_target_policy("openai.api", "gpt-4o", []), f"openai/{FT_OPENAI}", today=TODAY).allowed
    assert decide(policy, "tgt", today=TODAY).outcome == "allow"
    assert decide(policy, f"openai/{FT_OPENAI}", today=TODAY).outcome == "allow"
    files = decide(policy, "tgt", "files", today=TODAY)
    assert files.outcome == "refuse" and [u.requirement for u in files.unmet] == ["zdr"]
    refused = decide(one_target_policy("openai.api", FT_OPENAI, ["zdr"]), "tgt", today=TODAY)
    assert refused.outcome == "refuse" and [u.requirement for u in refused.unmet] == ["zdr"]


def test_a_fine_tuned_mistral_model_is_still_refused() -> None:
    policy = one_target_policy("mistral.api", "mistral-small-latest", [])
    decision = decide(policy, "mistral/ft:open-mistral-7b:587a6b29:20240514:7e773925", today=TODAY)
    assert decision.outcome == "refuse" and decision.chosen is None
    reason = decision.reason or ""
    assert "a model fine-tuned from 'open-mistral-7b' on mistral.api" in reason, reason
    assert "MIS-ZDR" in reason and "call the base model" in reason and "unknown model family" not in reason


def test_explain_shows_how_a_fine_tuned_model_is_judged(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from tests.conftest import REPO

    def explain(*args: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PRIVSDK_USAGE": "none", "PYTHONPATH": str(REPO)}
        command = [sys.executable, "-m", "privsdk", "explain", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, check=False)

    shown = explain(f"openai/{FT_OPENAI}")
    assert shown.returncode == 0 and "  model: fine-tuned from 'gpt-4o-mini-2024-07-18', judged under" in shown.stdout
    assert "SEED-OAI" in json.loads(explain("--json", f"openai/{FT_OPENAI}").stdout)["model_note"]
    refused = explain("mistral/ft:open-mistral-7b:587a6b29:20240514:7e773925")
    assert (
        refused.returncode == 3
        and "reason: 'ft:open-mistral-7b:587a6b29:20240514:7e773925' is a model" in refused.stdout
    )


def test_a_target_may_name_a_fine_tuned_openai_model_and_not_a_mistral_one(tmp_path: Path) -> None:
    from privsdk.config import load_policy
    from privsdk.errors import ConfigError

    config = tmp_path / "privsdk.toml"
    config.write_text(f'[targets.my-ft]\noffering = "openai.api"\nmodel = "{FT_OPENAI}"\n', encoding="utf-8")
    assert load_policy({"PRIVSDK_CONFIG": str(config)}).targets["my-ft"].model == FT_OPENAI
    config.write_text('[targets.m]\noffering = "mistral.api"\nmodel = "ft:open-mistral-7b:a:b:c"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"is a model fine-tuned from 'open-mistral-7b' on mistral\.api"):
        load_policy({"PRIVSDK_CONFIG": str(config)})
