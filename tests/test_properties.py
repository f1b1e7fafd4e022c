"""Properties that must hold for every policy, attestation set and configuration file (hypothesis)."""

from __future__ import annotations

import datetime as dt
import string
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from privsdk.catalogue import Catalogue, default_catalogue
from privsdk.catalogue.facts import FACT_NAMES, at_least_as_protective
from privsdk.config import load_policy
from privsdk.decision import applicable_attestations, decide, effective_facts
from privsdk.errors import ConfigError
from privsdk.policy import Policy, Target, Tenant
from privsdk.vocabulary import FEATURES, parse_requirements
from tests.conftest import all_offerings, model_for

TODAY = dt.date(2026, 11, 22)
CAT: Catalogue = default_catalogue()
OFFERINGS = all_offerings(CAT)
REQUIREMENTS = [
    "no_training", "zdr", "max_retention_days=0", "max_retention_days=7", "max_retention_days=30",
    "max_retention_days=60", "no_human_review", "no_provider_sharing", "private_deployment",
    "region=eu", "region=us", "region=eu|us", "region=apac|jp", "hipaa_baa",
]  # fmt: skip
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def targets(draw: st.DrawFn, name: str) -> Target:
    """A target on any offering, with a model it serves (sometimes one a limit names) and some attestations."""
    offering = draw(st.sampled_from(OFFERINGS))
    limit_models = [g.replace("*", "x") for li in offering.limits for g in li.models]
    models = [m for m in [model_for(offering), *limit_models] if offering.serves_model(m)]
    attest = draw(st.sets(st.sampled_from(sorted(offering.attestations) or ["none:none"])))
    return Target(name, offering.id, draw(st.sampled_from(models)), frozenset(attest) - {"none:none"})


def _policy(target: Target, reqs: list[str], *, alternatives: tuple[Target, ...] = (), reroute: bool = False) -> Policy:
    tenant = Tenant(
        name="t",
        classes={"c": parse_requirements(reqs)},
        default_class="c",
        on_violation="reroute" if reroute else "refuse",
        reroute=((target.name, tuple(a.name for a in alternatives)),),
    )
    return Policy({"t": tenant}, "t", {t.name: t for t in (target, *alternatives)})


def _operation(target: Target) -> st.SearchStrategy[str]:
    offering = CAT.offering(target.offering)
    assert offering is not None
    return st.sampled_from(sorted(offering.operations))


@PROPS
@given(data=st.data(), reqs=st.lists(st.sampled_from(REQUIREMENTS), max_size=5), extra=st.sampled_from(REQUIREMENTS))
def test_adding_a_requirement_never_turns_refuse_into_allow(data: st.DataObject, reqs: list[str], extra: str) -> None:
    target = data.draw(targets("tgt"))
    op = data.draw(_operation(target))
    features = data.draw(st.sets(st.sampled_from(sorted(FEATURES)), max_size=2))
    before = decide(_policy(target, reqs), "tgt", op, features=features, today=TODAY)
    after = decide(_policy(target, [*reqs, extra]), "tgt", op, features=features, today=TODAY)
    assert {u.requirement for u in before.unmet} <= {u.requirement for u in after.unmet}
    if before.outcome == "refuse":
        assert after.outcome == "refuse"


def _group(name: str) -> str:
    return name.partition("=")[0]


@PROPS
@given(data=st.data())
def test_an_attestation_never_weakens_a_guarantee(data: st.DataObject) -> None:
    offering = data.draw(st.sampled_from([o for o in OFFERINGS if o.attestations]))
    names = sorted(offering.attestations)
    declared = frozenset(data.draw(st.sets(st.sampled_from(names))))
    # Two values of one key (region=eu and region=us) are a configuration error, not an attestation.
    consistent = [n for n in names if not any(_group(n) == _group(d) and n != d for d in declared)]
    assume(consistent and not any(_group(a) == _group(b) and a != b for a in declared for b in declared))
    added = declared | {data.draw(st.sampled_from(consistent))}
    model = model_for(offering)
    op = data.draw(st.sampled_from(sorted(offering.operations)))
    features = frozenset(data.draw(st.sets(st.sampled_from(sorted(FEATURES)), max_size=2)))
    before = effective_facts(offering, applicable_attestations(offering, declared), model, op, features)
    after = effective_facts(offering, applicable_attestations(offering, added), model, op, features)
    for name in FACT_NAMES:
        assert at_least_as_protective(after[name], before[name]), (offering.id, sorted(added), name)


@PROPS
@given(data=st.data(), reqs=st.lists(st.sampled_from(REQUIREMENTS), min_size=1, max_size=4))
def test_a_reroute_target_is_always_allowed_on_its_own(data: st.DataObject, reqs: list[str]) -> None:
    target = data.draw(targets("tgt"))
    alternatives = tuple(data.draw(targets(f"alt{i}")) for i in range(data.draw(st.integers(1, 4))))
    policy = _policy(target, reqs, alternatives=alternatives, reroute=True)
    decision = decide(policy, "tgt", "chat", today=TODAY)
    if decision.outcome == "reroute":
        assert decision.chosen is not None
        assert decide(policy, decision.chosen, "chat", today=TODAY).outcome == "allow"
        earlier = [a.name for a in alternatives][: [a.name for a in alternatives].index(decision.chosen)]
        assert all(decide(policy, name, "chat", today=TODAY).outcome == "refuse" for name in earlier)
    elif decision.outcome == "refuse":
        assert all(decide(policy, a.name, "chat", today=TODAY).outcome == "refuse" for a in alternatives)
    else:
        assert not decision.unmet


@PROPS
@given(data=st.data(), reqs=st.lists(st.sampled_from(REQUIREMENTS), max_size=4), later=st.integers(0, 2000))
def test_time_passing_never_turns_refuse_into_allow(data: st.DataObject, reqs: list[str], later: int) -> None:
    target = data.draw(targets("tgt"))
    policy = _policy(target, reqs)
    now = decide(policy, "tgt", "chat", today=TODAY)
    then = decide(policy, "tgt", "chat", today=TODAY + dt.timedelta(days=later))
    if now.outcome == "refuse":
        assert then.outcome == "refuse"


# -- configuration files -------------------------------------------------------------------------

KEYS = ["attest", "targets", "tenants", "classes", "default", "pii", "openai", "mistral", "acme", "offering", "model",
        "reroute", "on_violation", "default_class", "max_catalogue_age_days", "zdr", "region", "x", "1"]  # fmt: skip
SCALARS = st.one_of(
    st.sampled_from([*REQUIREMENTS, "openai.api", "gpt-4o", "refuse", "reroute", "zdr", "plan=scale", "nosuch"]),
    st.text(string.printable, max_size=12),
    st.integers(-5, 400),
    st.booleans(),
)
VALUES = st.recursive(
    st.one_of(SCALARS, st.lists(SCALARS, max_size=4)),
    lambda inner: st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    max_leaves=12,
)


def _toml(value: Any) -> str:
    """A tiny TOML writer (inline tables) for generated documents."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + "}"


def _load_then_decide(path: Path) -> None:
    """Loading either fails with ConfigError or gives a policy whose decisions are consistent."""
    try:
        policy = load_policy({"PRIVSDK_CONFIG": str(path)})
    except ConfigError as exc:
        assert str(exc).startswith(str(path))
        return
    for tenant in policy.tenants.values():
        for cls in tenant.classes:
            for target in [*policy.targets, "openai/gpt-4o", "nosuch/x"]:
                d = decide(policy, target, "chat", tenant=tenant.name, data_class=cls, today=TODAY)
                assert d.outcome != "allow" or d.evaluation.ok
                assert target != "nosuch/x" or d.outcome == "refuse"


@settings(max_examples=300, deadline=None)
@given(doc=st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=4))
def test_random_toml_is_a_config_error_or_a_consistent_policy(tmp_path_factory: Any, doc: dict[str, Any]) -> None:
    path = tmp_path_factory.mktemp("cfg") / "p.toml"
    path.write_text("\n".join(f'"{k}" = {_toml(v)}' for k, v in doc.items()), encoding="utf-8")
    _load_then_decide(path)


@settings(max_examples=300, deadline=None)
@given(blob=st.binary(max_size=200))
def test_random_bytes_are_a_config_error_never_a_crash(tmp_path_factory: Any, blob: bytes) -> None:
    path = tmp_path_factory.mktemp("cfg") / "p.toml"
    path.write_bytes(blob)
    _load_then_decide(path)
