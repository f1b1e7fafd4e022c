"""The decision engine: may this call go to this target for this tenant?

:func:`decide` is deterministic and does no I/O of its own (the catalogue
reads a vendor's file once, the first time it is asked). Anything it does not
know (target, vendor, offering, model family, operation, feature, tenant,
data class, a fact) ends in ``refuse``, never ``allow``.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Iterable
from typing import Any, Literal, NamedTuple

from privsdk.catalogue import Catalogue, Fact, Offering, default_catalogue
from privsdk.catalogue.facts import UNBOUNDED, UNKNOWN, stronger, weaker
from privsdk.catalogue.implied import implied_features
from privsdk.catalogue.model import parse_model_arn
from privsdk.outbound.outgoing import model_label, shown_model, shown_name
from privsdk.policy import Policy, Target, Tenant
from privsdk.tenants import NAME, Entry, TenantStore
from privsdk.vocabulary import (
    CONTENT_FREE_OPERATIONS,
    FEATURES,
    OPERATIONS,
    STATEFUL_FEATURES,
    WITHIN,
    MaxRetentionDays,
    Region,
    Requirement,
    ZeroDataRetention,
)

Outcome = Literal["allow", "reroute", "refuse"]
_NO_FEATURES: frozenset[str] = frozenset()
#: The tenant or data class of a refusal whose call named none (and the policy has no default). No configured
#: name can be it (names start with a letter or a digit), and a usage record takes it.
NO_NAME = "-"
#: The tenant or data class of a refusal whose call named one the policy does not know. The name the app passed is
#: never kept: it matched nothing configured, so it may be anything (a user's address, a key pasted in the wrong
#: place), and a decision's names go into usage records. Only the refusal's reason, raised to the app, quotes it,
#: and only when it has a name's shape (shown_name).
UNKNOWN_NAME = "-unknown"


def _unknown(name: str | None) -> str:
    """What a refusal records for a tenant or class name the policy does not know: :data:`UNKNOWN_NAME`, or
    :data:`NO_NAME` when the call named none."""
    return UNKNOWN_NAME if name else NO_NAME


def _named(target: str) -> str:
    """The target a refusal (its ``target``, its evaluation's) and a reroute's reason name: the one the call named,
    or a placeholder when that is no target name. An app may pass any text as the target (a prompt pasted in the
    wrong place), and a refusal reaches the app's error, its ``decision``, and the usage record. Allowed and
    rerouted decisions keep the name: the call is made with it."""
    return shown_name(target, "target name", quoted=False)


class Unmet(NamedTuple):
    """One requirement a target does not meet, and why."""

    requirement: str
    offered: str
    source: str
    as_of: dt.date
    note: str

    def to_json(self) -> dict[str, str]:
        return {
            "requirement": self.requirement,
            "offered": self.offered,
            "source": self.source,
            "as_of": self.as_of.isoformat(),
            "note": self.note,
        }


class Evaluation(NamedTuple):
    """How one target fares against one set of requirements."""

    target: str
    offering: str | None
    unmet: tuple[Unmet, ...]
    reason: str | None  # set when the target could not be judged at all
    attestations: tuple[str, ...]
    catalogue_as_of: dt.date | None
    #: The features judged: the request's, and those the service gives its model whatever the request says.
    features: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return self.reason is None and not self.unmet


class Decision(NamedTuple):
    """The answer for one call: allow, reroute (to ``chosen``) or refuse.

    ``unmet`` lists what the requested target lacks (empty on allow);
    ``reason`` explains a refusal or a reroute in one sentence. A decision
    holds names, dates and catalogue text only, never call content.
    """

    outcome: Outcome
    target: str
    chosen: str | None
    unmet: tuple[Unmet, ...]
    reason: str | None
    tenant: str
    data_class: str
    operation: str
    requirements: tuple[str, ...]
    evaluation: Evaluation
    chosen_evaluation: Evaluation | None

    @property
    def allowed(self) -> bool:
        """True when the call may go ahead (to ``chosen``)."""
        return self.outcome != "refuse"

    @property
    def catalogue_as_of(self) -> dt.date | None:
        return self.evaluation.catalogue_as_of

    def to_json(self) -> dict[str, Any]:
        """The ``privsdk explain --json`` object."""
        as_of = self.catalogue_as_of
        chosen = self.chosen_evaluation or self.evaluation
        return {
            "decision": self.outcome,
            "target": self.target,
            "chosen": self.chosen,
            "unmet": [u.to_json() for u in self.unmet],
            "catalogue_as_of": as_of.isoformat() if as_of else None,
            "reason": self.reason,
            "tenant": self.tenant,
            "data_class": self.data_class,
            "operation": self.operation,
            "requirements": list(self.requirements),
            "offering": self.evaluation.offering,
            "chosen_offering": chosen.offering if self.chosen else None,
            "attestations": list(chosen.attestations),
        }


def decide(
    policy: Policy,
    target: str,
    operation: str = "chat",
    *,
    tenant: str | None = None,
    data_class: str | None = None,
    features: Iterable[str] = (),
    catalogue: Catalogue | None = None,
    today: dt.date | None = None,
) -> Decision:
    """Decide whether ``operation`` may go to ``target`` for ``tenant``'s ``data_class``.

    ``target`` is a target name from the policy or ``vendor/model``. The
    result is cached per (policy, catalogue, tenant, class, target, operation,
    features, day); ``today`` defaults to the current UTC date. When the
    policy's tenants come from a :class:`~privsdk.tenants.TenantStore`, the
    tenant is looked up there first (a cache hit, usually), and the decision
    is cached for that very loaded tenant, never for a name whose tenant changed.
    """
    key: str | Entry | None = tenant
    if isinstance(policy.tenants, TenantStore):
        # None is "no tenant named"; "" is a name no tenant has, refused, never the default tenant.
        name = tenant if tenant is not None else policy.default_tenant or ""
        key = policy.tenants.entry(name)
        if key.tenant is None:  # unknown, or the store failed: refused, never another tenant's policy
            return _refuse_early(_named(target), _unknown(name), _unknown(data_class), operation, key.reason)
    return _decide(
        policy,
        catalogue or default_catalogue(),
        key,
        data_class,
        target,
        operation,
        features if isinstance(features, frozenset) else frozenset(features) if features else _NO_FEATURES,
        today or utc_today(),
    )


_day: list[Any] = [0.0, None]  # [the next UTC midnight as a timestamp, today's date]


def next_utc_midnight(now: float) -> float:
    """The Unix time at which the UTC day of ``now`` ends: when what was decided for that day must be decided anew."""
    return (now // 86400 + 1) * 86400


def utc_today() -> dt.date:
    """Today's UTC date; cheap on the call path: the clock is turned into a date once a day."""
    now = time.time()
    if now >= _day[0] or _day[1] is None:
        date = dt.datetime.fromtimestamp(now, dt.timezone.utc).date()
        _day[0], _day[1] = next_utc_midnight(now), date
    today: dt.date = _day[1]
    return today


@functools.lru_cache(maxsize=8192)
def _decide(
    policy: Policy,
    catalogue: Catalogue,
    tenant_name: str | Entry | None,  # for a tenant store, the loaded entry: a reloaded tenant is a new key
    data_class: str | None,
    target: str,
    operation: str,
    features: frozenset[str],
    today: dt.date,
) -> Decision:
    found = _tenant_class(policy, tenant_name, data_class)
    if isinstance(found, _NoClass):
        return _refuse_early(_named(target), found.tenant, found.data_class, operation, found.reason)
    tenant, data_class, requirements = found
    names = tuple(str(r) for r in requirements)
    first = evaluate(policy, catalogue, tenant, requirements, target, operation, features, today)
    if first.ok:
        return Decision("allow", target, target, (), None, tenant.name, data_class, operation, names, first, None)
    why = first.reason or _unmet(first)
    if tenant.on_violation == "reroute":
        alternatives = reroute_list(policy, catalogue, tenant, target)
        for alt in alternatives:
            ev = evaluate(policy, catalogue, tenant, requirements, alt, operation, features, today)
            if ev.ok:
                return Decision(
                    "reroute",
                    target,
                    alt,
                    first.unmet,
                    f"{_named(target)}: {why}; rerouted to {alt}",
                    tenant.name,
                    data_class,
                    operation,
                    names,
                    first,
                    ev,
                )
        why += (
            f"; no compliant alternative among {', '.join(alternatives)}"
            if alternatives
            else "; no reroute list matches this target"
        )
    label = _named(target)
    if label != target:
        first = first._replace(target=label)
    return Decision("refuse", label, None, first.unmet, why, tenant.name, data_class, operation, names, first, None)


class _NoClass(NamedTuple):
    """Why no requirements apply: the tenant or its data class is unknown."""

    tenant: str
    data_class: str
    reason: str


def _tenant_class(
    policy: Policy, tenant_name: str | Entry | None, data_class: str | None
) -> tuple[Tenant, str, tuple[Requirement, ...]] | _NoClass:
    """The tenant, data class and requirements a call runs under, or why there are none."""
    if isinstance(tenant_name, Entry):  # a tenant store's: loaded before the cached decision was looked up
        tenant = tenant_name.tenant
        if tenant is None:
            return _NoClass(NO_NAME, _unknown(data_class), tenant_name.reason)
        tenant_name = tenant.name
    else:
        if tenant_name is None:  # an empty name is a name no tenant has, never "no tenant named"
            tenant_name = policy.default_tenant
        if tenant_name is None:  # never "the first tenant": a call that names none may be anyone's
            return _NoClass(NO_NAME, _unknown(data_class), no_tenant_reason(policy))
        tenant = policy.tenants.get(tenant_name)
    if tenant is None:
        return _NoClass(
            UNKNOWN_NAME,
            _unknown(data_class),
            policy.unknown_tenant(tenant_name),
        )
    if data_class is None:
        data_class = tenant.default_class
    requirements = tenant.classes.get(data_class)
    if requirements is None:
        return _NoClass(
            tenant.name,
            UNKNOWN_NAME,
            f"tenant {tenant.name!r} has no data class {shown_name(data_class, 'data class name', NAME)} "
            f"(classes: {', '.join(tenant.classes)})",
        )
    return tenant, data_class, requirements


def decide_request(
    policy: Policy,
    catalogue: Catalogue,
    targets: tuple[Target, ...],
    operation: str,
    *,
    tenant: str | None = None,
    data_class: str | None = None,
    features: frozenset[str] = _NO_FEATURES,
    today: dt.date | None = None,
) -> Decision:
    """Decide on a request the transport guard read: ``targets`` are every offering that may serve it.

    Each must meet the tenant's requirements (when one host serves several offerings, the stricter
    answer holds). The guard never reroutes: a request is sent as the SDK built it, or not at all.
    Cached like :func:`decide`.
    """
    key: str | Entry | None = tenant
    if isinstance(policy.tenants, TenantStore):
        name = tenant if tenant is not None else policy.default_tenant or ""
        key = policy.tenants.entry(name)
        if key.tenant is None:  # unknown, or the store failed: refused, never another tenant's policy
            return _refuse_early(targets[0].name, _unknown(name), _unknown(data_class), operation, key.reason)
    return _decide_request(policy, catalogue, key, data_class, targets, operation, features, today or utc_today())


@functools.lru_cache(maxsize=8192)
def _decide_request(
    policy: Policy,
    catalogue: Catalogue,
    tenant_name: str | Entry | None,  # for a tenant store, the loaded entry: a reloaded tenant is a new key
    data_class: str | None,
    targets: tuple[Target, ...],
    operation: str,
    features: frozenset[str],
    today: dt.date,
) -> Decision:
    label = targets[0].name
    found = _tenant_class(policy, tenant_name, data_class)
    if isinstance(found, _NoClass):
        return _refuse_early(label, found.tenant, found.data_class, operation, found.reason)
    tenant, data_class, requirements = found
    names = tuple(str(r) for r in requirements)
    evaluations = [evaluate(policy, catalogue, tenant, requirements, t, operation, features, today) for t in targets]
    first = evaluations[0]
    failing = [ev for ev in evaluations if not ev.ok]
    if not failing:
        return Decision("allow", label, label, (), None, tenant.name, data_class, operation, names, first, None)
    why = "; ".join(f"{ev.target} ({ev.offering}): " + (ev.reason or _unmet(ev)) for ev in failing)
    if len(evaluations) > 1:
        why += "; the request may be served by " + ", ".join(str(ev.offering) for ev in evaluations)
        why += ", and each must meet the policy"
    unmet = tuple(u for ev in failing for u in ev.unmet)
    return Decision("refuse", label, None, unmet, why, tenant.name, data_class, operation, names, failing[0], None)


def _unmet(evaluation: Evaluation) -> str:
    """What a refusal says of a target that falls short: the unmet requirements, and the features the request asks
    for (a stored response or a hosted tool weakens what the offering promises: "unmet: zdr" alone, under a ZDR
    attestation, left the app to guess why)."""
    why = "unmet: " + ", ".join(u.requirement for u in evaluation.unmet)
    features = evaluation.features
    return f"{why} (the request asks for {', '.join(sorted(features))})" if features else why


def refused(
    policy: Policy, label: str, operation: str, tenant: str | None, data_class: str | None, reason: str
) -> Decision:
    """A refusal of a request that could not be judged at all (unknown endpoint, unreadable request)."""
    found = _tenant_class(policy, tenant, data_class)
    if isinstance(found, _NoClass):
        return _refuse_early(label, found.tenant, found.data_class, operation, reason)
    # What the class requires, as a judged refusal says: not "nothing", for a request refused unread.
    names = tuple(str(r) for r in found[2])
    return _refuse_early(label, found[0].name, found[1], operation, reason)._replace(requirements=names)


def unjudged(label: str, reason: str) -> Decision:
    """A refusal made before any policy could be read (the configuration itself is broken)."""
    return _refuse_early(label, "unknown", "unknown", "other", reason)


def no_tenant_reason(policy: Policy) -> str:
    """Why a call that names no tenant is refused, and the ways to name one."""
    return (
        f"no tenant named: {policy.origin} defines tenants {', '.join(policy.tenants)} and no default_tenant; "
        "name one in the call (tenant=...), in privsdk.scope(tenant=...), in PRIVSDK_TENANT, "
        'or set default_tenant = "NAME" at the top of the policy file '
        "(threads and executors do not inherit a scope: hand it over with privsdk.propagate(fn))"
    )


def _refuse_early(target: str, tenant: str, data_class: str, operation: str, reason: str) -> Decision:
    ev = Evaluation(target, None, (), reason, (), None)
    return Decision("refuse", target, None, (), reason, tenant, data_class, operation, (), ev, None)


def reroute_list(policy: Policy, catalogue: Catalogue, tenant: Tenant, target: str) -> tuple[str, ...]:
    """``tenant``'s alternatives for ``target``: its reroute entries match the name the call used, and a named
    target's ``vendor/model`` too (``"openai/*"`` covers a target ``openai-mini`` of model gpt-4o-mini)."""
    named = policy.targets.get(target)
    offering = catalogue.offering(named.offering) if named is not None else None
    return tenant.alternatives(target, f"{offering.vendor}/{named.model}" if offering and named else None)


def resolve_target(policy: Policy, catalogue: Catalogue, target: str) -> Target | str:
    """The :class:`Target` named by ``target``, or the reason it names none."""
    found = policy.targets.get(target)
    if found is not None:
        if found.account is not None or found.shows_geography:
            return found
        from privsdk.outbound.places import target_account

        # Its requests carry the account its config names (its project, its endpoint's Azure resource): a decision
        # by name is made for that account, as the guard's is for the one a request carries (which it sets itself).
        account = target_account(catalogue, found)
        found = found if account is None else found._replace(account=account)
        return _placed(policy, catalogue, found)
    vendor, slash, model = target.partition("/")
    if not slash:
        return policy.unknown_target(target)
    cat = catalogue.vendor(vendor)
    if cat is None:
        return f"unknown vendor {shown_name(vendor, 'vendor name')} (vendors: {', '.join(catalogue.vendor_names)})"
    if cat.default_offering is None:
        return f"vendor {vendor!r} has no public API offering: define a target for it in the config"
    if not model:
        return f"target {shown_name(target, 'target name')} names no model"
    if model.startswith("arn:"):  # a model ARN names the Region the client must call
        offering = catalogue.offering(cat.default_offering)
        arn = parse_model_arn(model, offering.arn_service) if offering and offering.arn_service else None
        if arn is not None:
            return Target(name=target, offering=cat.default_offering, model=model, region=arn.region)
    return _placed(policy, catalogue, Target(name=target, offering=cat.default_offering, model=model))


def _placed(policy: Policy, catalogue: Catalogue, target: Target) -> Target:
    """``target``, marked as going to a host that shows no geography where its config alone tells so
    (:func:`privsdk.outbound.places.sent_to_plain_host`): what the guard will see of each request, seen in advance,
    so a decision by name agrees with the guard's (and a tenant that reroutes reroutes, rather than be refused)."""
    from privsdk.outbound.places import sent_to_plain_host

    return target._replace(shows_geography=True) if sent_to_plain_host(catalogue, policy.endpoints, target) else target


def evaluate(
    policy: Policy,
    catalogue: Catalogue,
    tenant: Tenant,
    requirements: tuple[Requirement, ...],
    target: str | Target,
    operation: str,
    features: frozenset[str],
    today: dt.date,
) -> Evaluation:
    """Check one target (a name, or a :class:`Target` the guard built from a request) against ``requirements``."""
    spec = target if isinstance(target, Target) else resolve_target(policy, catalogue, target)
    target = target.name if isinstance(target, Target) else target
    if isinstance(spec, str):
        return Evaluation(target, None, (), spec, (), None)
    offering = catalogue.offering(spec.offering)
    if offering is None:
        return Evaluation(target, spec.offering, (), f"unknown offering {spec.offering!r}", (), None)

    def stop(reason: str) -> Evaluation:
        return Evaluation(target, offering.id, (), reason, (), offering.reviewed)

    if operation not in OPERATIONS:
        return stop(f"unknown operation {shown_name(operation, 'operation')} (operations: {', '.join(OPERATIONS)})")
    if operation in CONTENT_FREE_OPERATIONS:
        return Evaluation(target, offering.id, (), None, (), offering.reviewed)
    if operation not in offering.operations:
        return stop(
            f"{offering.id} does not serve {operation}, or privsdk's catalogue holds no guarantees for it "
            f"(catalogued: {', '.join(sorted(offering.operations))})"
        )
    # What the service gives the target's model whatever the request says, judged here alone for every entry point
    # (the guard, the Client's plan, privsdk explain and check). An Azure deployment's name counts as well as the
    # model a configured target names for it: the stricter of the two.
    features = features | implied_features(offering.id, spec.model) | implied_features(offering.id, spec.deployment)
    unknown = sorted(features - FEATURES.keys())
    if unknown:
        shown = dict.fromkeys(shown_name(f, "feature name", quoted=False) for f in unknown)  # each placeholder once
        return stop(f"unknown features {', '.join(shown)} (features: {', '.join(FEATURES)})")
    no_facts = sorted((features & STATEFUL_FEATURES) - offering.limited_features) if requirements else ()
    if no_facts:
        return stop(
            f"privsdk's catalogue holds no facts on {', '.join(no_facts)} for {offering.id}: what it keeps, and "
            "where it sends content, is unknown (leave the feature out of the request, or record its facts in "
            "the catalogue)"
        )
    if spec.model and not offering.serves_model(spec.model):  # "": the request names no model (a file upload)
        # An id the catalogue knows to refuse (a fine-tuned model), and why: a reason that quotes it, so only for an
        # id that looks like one (else the unknown model family's, which does not).
        why = offering.unserved(spec.model) if model_label(spec.model) == spec.model else None
        models = ", ".join(offering.models)
        return stop(why or f"unknown model family {shown_model(spec.model)} for {offering.id} (models: {models})")
    contradiction = arn_region_conflict(offering, spec)
    if contradiction:
        return stop(contradiction)
    age = (today - offering.reviewed).days
    if age > tenant.max_catalogue_age_days:
        return stop(
            f"the catalogue for {offering.id} was reviewed {offering.reviewed.isoformat()}, {age} days ago, "
            f"past tenant {tenant.name!r}'s limit of {tenant.max_catalogue_age_days} days "
            "(upgrade privsdk, or raise max_catalogue_age_days)"
        )

    attested = spec.attest
    own = tenant.owned()
    if own:
        # A target's approvals and settings (zdr, a BAA) are the deployment's account's, which a tenant's own is not;
        # where the target is served (region=...) holds whoever's account it runs on.
        attested = frozenset(
            a
            for a in attested
            if a.partition(":")[0] not in own or (a in offering.attestations and _geo_of(offering, a) is not None)
        )
    declared = for_account(tenant.attest | attested, spec.account)
    contradiction = _region_contradiction(spec, declared, catalogue)
    if contradiction:
        return stop(contradiction)
    applied = applicable_attestations(offering, declared)
    if spec.shows_geography:  # an attestation of where it is served holds only where the request really goes
        applied = tuple(a for a in applied if _served_within(spec.geography, _geo_of(offering, a)))
    facts = effective_facts(offering, applied, spec.model, operation, features)
    unmet = tuple(
        Unmet(str(req), fact.describe(), fact.source.ref, fact.as_of, fact.note)
        for req in requirements
        if not holds(req, fact := facts[req.fact])
    )
    return Evaluation(target, offering.id, unmet, None, applied, offering.reviewed, features)


def for_account(attestations: frozenset[str], account: str | None) -> frozenset[str]:
    """The attestations that hold for ``account``: unscoped ones, and ``name@account`` ones of this account."""
    if not any("@" in a for a in attestations):
        return attestations
    out = set()
    for a in attestations:
        name, at, scope = a.partition("@")
        if not at or scope == account:
            out.add(name)
    return frozenset(out)


def _geo_of(offering: Offering, attestation: str) -> frozenset[str] | None:
    """The geographies an attestation of ``offering`` says its requests are served in (its ``regions`` fact:
    ``bedrock:region=eu``, ``azure:deployment=regional_eu``), else None."""
    fact = offering.attestations[attestation].facts.get("regions")
    return fact.value if fact is not None and isinstance(fact.value, frozenset) else None


def _served_within(shown: str | None, attested: frozenset[str] | None) -> bool:
    """Whether a request whose host shows geography ``shown`` is served where an attestation says (``attested``,
    None: it says nothing of where): in one of its geographies, or in a country of one of its areas (``WITHIN``)."""
    if attested is None:
        return True
    return shown in attested or any(shown in WITHIN.get(area, ()) for area in attested)


def _region_contradiction(spec: Target, declared: frozenset[str], catalogue: Catalogue) -> str | None:
    """A reason when the target's own region names another geography than its attestations of where it is served."""
    if spec.region is None or spec.shows_geography:
        return None
    from privsdk.outbound.places import geography, region_kind

    offering = catalogue.offering(spec.offering)
    if offering is None:
        return None
    shown = geography(region_kind(catalogue, offering.id) or "geo", spec.region)
    claims = {a.partition(":")[2]: g for a in declared if a in offering.attestations and (g := _geo_of(offering, a))}
    if shown is not None and claims and not any(shown in g for g in claims.values()):
        return (
            f"configuration error: target {spec.name!r} declares region {spec.region!r} ({shown}) but attests "
            f"{'|'.join(sorted(claims))}: fix the target's region or its attestation"
        )
    return None


def arn_region_conflict(offering: Offering, target: Target) -> str | None:
    """Why ``target`` contradicts itself: its model ARN names one Region and its ``region`` another."""
    if not offering.arn_service or not target.model.startswith("arn:") or target.region is None:
        return None
    arn = parse_model_arn(target.model, offering.arn_service)
    if arn is None or arn.region == target.region:
        return None
    return f"target {target.name!r}: region {target.region!r} contradicts its model ARN's Region {arn.region!r}"


def effective_facts(
    offering: Offering,
    attestations: Iterable[str],
    model: str,
    operation: str,
    features: frozenset[str],
) -> dict[str, Fact]:
    """The offering's facts after ``attestations`` (strengthen) and matching limits (weaken)."""
    facts = dict(offering.facts)
    model = offering.model_key(model) or model  # limits match what serves_model matched: an ARN's id, say
    for name in attestations:
        for fact_name, fact in offering.attestations[name].facts.items():
            # On a tie the attested fact wins: its note speaks of this account (a paying tenant's, not a trial's).
            facts[fact_name] = stronger(fact, facts[fact_name])
    for limit in offering.limits:
        if limit.applies(model, operation, features):
            for fact_name, fact in limit.facts.items():
                facts[fact_name] = weaker(facts[fact_name], fact)
    return facts


def applicable_attestations(offering: Offering, declared: frozenset[str]) -> tuple[str, ...]:
    """The declared attestations this offering knows whose prerequisites are all declared too."""
    names = {n for n in declared if n in offering.attestations}
    while True:  # dropping one may orphan another that required it
        keep = {n for n in names if all(r in names for r in offering.attestations[n].requires)}
        if keep == names:
            return tuple(sorted(keep))
        names = keep


def holds(req: Requirement, fact: Fact) -> bool:
    """True when ``fact`` meets ``req``. An unknown fact meets nothing."""
    value = fact.value
    if value is UNKNOWN:
        return False
    if isinstance(req, ZeroDataRetention):
        return value == 0
    if isinstance(req, MaxRetentionDays):
        return value is not UNBOUNDED and isinstance(value, int) and value <= req.days
    if isinstance(req, Region):
        # An empty set would be a vacuous "nowhere": never let it pass.
        return isinstance(value, frozenset) and bool(value) and value <= req.geographies
    return value is True
