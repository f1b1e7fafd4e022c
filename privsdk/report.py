"""Text, JSON and Markdown renderings of decisions and of the catalogue, for the CLI and docs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from privsdk.catalogue import Attestation, Fact, Limit, Offering, VendorCatalogue
from privsdk.catalogue.facts import FACT_NAMES, Source, Special
from privsdk.catalogue.model import FineTuned
from privsdk.decision import Decision
from privsdk.docs_url import page
from privsdk.policy import Policy, Tenant

_COLOURS = {"allow": "32", "reroute": "33", "refuse": "31"}
_FACT_TITLES = {
    "no_training": "no training",
    "retention_days": "retention",
    "no_human_review": "no human review",
    "no_provider_sharing": "no provider sharing",
    "private_deployment": "private deployment",
    "regions": "regions",
    "hipaa_baa": "HIPAA BAA",
}


def _paint(text: str, outcome: str, colour: bool) -> str:
    return f"\033[{_COLOURS[outcome]}m{text}\033[0m" if colour else text


def _why(d: Decision) -> str:
    if d.outcome == "allow":
        attested = d.evaluation.attestations
        base = "meets " + ", ".join(d.requirements) if d.requirements else "no requirements"
        return base + (f" (attested: {', '.join(attested)})" if attested else "")
    unmet = "; ".join(f"{u.requirement}: {u.offered}" for u in d.unmet)
    if d.outcome == "reroute":
        return f"-> {d.chosen}" + (f" (unmet {unmet})" if unmet else f" ({d.evaluation.reason})")
    if d.evaluation.reason:
        return d.reason or d.evaluation.reason
    return "unmet " + unmet


def explain_text(d: Decision, colour: bool) -> str:
    """``privsdk explain`` without --json."""
    lines = [
        f"{d.target}: {_paint(d.outcome.upper(), d.outcome, colour)}"
        + (f" -> {d.chosen}" if d.outcome == "reroute" else ""),
        f"  tenant {d.tenant}, data class {d.data_class}, operation {d.operation}",
        "  requires: " + (", ".join(d.requirements) or "nothing"),
    ]
    if d.evaluation.offering:
        lines.append(
            f"  offering: {d.evaluation.offering}"
            + (f" (catalogue reviewed {d.catalogue_as_of.isoformat()})" if d.catalogue_as_of else "")
        )
    if d.evaluation.attestations:
        lines.append("  attested: " + ", ".join(d.evaluation.attestations))
    for u in d.unmet:
        lines.append(f"  unmet {u.requirement}: {u.offered}")
        lines.append(f"      source: {u.source} (as of {u.as_of.isoformat()})")
        if u.note:
            lines.append(f"      {u.note}")
    if d.reason:
        lines.append(f"  reason: {d.reason}")
    return "\n".join(lines) + "\n"


def check_text(policy: Policy, tenants: Sequence[Tenant], decisions: Sequence[Decision], colour: bool) -> str:
    """``privsdk check`` without --json: per tenant and data class, what each target may do and why."""
    op = decisions[0].operation if decisions else "chat"
    out = [f"policy {policy.origin}, operation {op}"]
    if not policy.targets:
        out.append(
            "no targets configured: requests through the drop-ins and instrumented SDKs are judged as they are sent "
            "(see one with privsdk explain --url URL --model MODEL [--header OpenAI-Project=ID]); privsdk.Client "
            f"needs [targets.NAME] in the policy file ({page('configuration')})"
        )
    width = max((len(t) for t in policy.targets), default=0)
    by_key = {(d.tenant, d.data_class, d.target): d for d in decisions}
    for tenant in tenants:
        out.append("")
        out.append(f"tenant {tenant.name} (on violation: {tenant.on_violation})")
        out.append(f"  attests: {', '.join(sorted(tenant.attest)) or 'nothing'}")
        for cls, reqs in tenant.classes.items():
            out.append(f"  data class {cls}: requires {', '.join(map(str, reqs)) or 'nothing'}")
            for target in policy.targets:
                d = by_key[(tenant.name, cls, target)]
                out.append(f"    {_paint(f'{d.outcome:<7}', d.outcome, colour)}  {target:<{width}}  {_why(d)}")
    counts = {o: sum(d.outcome == o for d in decisions) for o in ("allow", "reroute", "refuse")}
    out.append("")
    out.append(f"{counts['allow']} allowed, {counts['reroute']} rerouted, {counts['refuse']} refused")
    return "\n".join(out) + "\n"


def fact_json(fact: Fact) -> dict[str, Any]:
    return {
        "value": _value_json(fact.value),
        "offered": fact.describe(),
        "how": fact.how.value,
        "source": _source_json(fact.source),
        "as_of": fact.as_of.isoformat(),
        "note": fact.note,
    }


def _source_json(source: Source) -> dict[str, str]:
    return {"key": source.key, "title": source.title, "ref": source.ref, "date": source.date}


def _value_json(value: Any) -> Any:
    if isinstance(value, Special):
        return value.value
    if isinstance(value, frozenset):
        return sorted(value)
    return value


def _facts_json(facts: Mapping[str, Fact]) -> dict[str, Any]:
    return {name: fact_json(f) for name, f in facts.items()}


def catalogue_json(vendors: Iterable[VendorCatalogue]) -> list[dict[str, Any]]:
    """``privsdk targets --json``."""
    return [
        {
            "vendor": v.vendor,
            "name": v.name,
            "reviewed": v.reviewed.isoformat(),
            "default_offering": v.default_offering,
            "offerings": [
                {
                    "id": o.id,
                    "name": o.name,
                    "summary": o.summary,
                    "inherits": o.inherits,
                    "operations": sorted(o.operations),
                    "models": list(o.models),
                    "fine_tuned": _fine_tuned_json(o.fine_tuned),
                    "reviewed": o.reviewed.isoformat(),
                    "facts": _facts_json(o.facts),
                    "attestations": [
                        {
                            "name": a.qualified,
                            "how": a.how.value,
                            "requires": list(a.requires),
                            "note": a.note,
                            "facts": _facts_json(a.facts),
                        }
                        for a in o.attestations.values()
                    ],
                    "limits": [
                        {
                            "when": {
                                "models": list(li.models),
                                "operations": sorted(li.operations),
                                "features": sorted(li.features),
                            },
                            "note": li.note,
                            "facts": _facts_json(li.facts),
                        }
                        for li in o.limits
                    ],
                }
                for o in v.offerings.values()
            ],
        }
        for v in vendors
    ]


def catalogue_text(vendors: Iterable[VendorCatalogue]) -> str:
    """``privsdk targets``: a readable listing."""
    out: list[str] = []
    for v in vendors:
        out.append(
            f"{v.vendor}: {v.name} (reviewed {v.reviewed.isoformat()}"
            + (f"; '{v.vendor}/MODEL' means {v.default_offering})" if v.default_offering else ")")
        )
        for o in v.offerings.values():
            out.append(f"  {o.id}: {o.name}" + (f" (inherits {o.inherits})" if o.inherits else ""))
            out.append(f"    operations: {', '.join(sorted(o.operations))}; models: {', '.join(o.models)}")
            if o.fine_tuned is not None:
                out.append(f"    {_fine_tuned_text(o.fine_tuned)}")
            for name in FACT_NAMES:
                f = o.facts[name]
                where = f"{f.how.value}; {f.source.key}, {f.as_of.isoformat()}"
                out.append(f"    {_FACT_TITLES[name]:<20} {f.describe()} [{where}]")
            for a in o.attestations.values():
                req = f" (requires {', '.join(a.requires)})" if a.requires else ""
                out.append(f"    attest {a.qualified}{req}: {_changes(a.facts, Fact.describe)}")
            for li in o.limits:
                out.append(f"    limit for {li.describe()}: {_changes(li.facts, Fact.describe)}")
        out.append("")
    return "\n".join(out)


def _fine_tuned_text(tuned: FineTuned) -> str:
    """How the offering's fine-tuned model ids are judged, with the source that says so."""
    how = "judged as their base model's family" if tuned.served else "refused"
    where = f"{tuned.source.key}, {tuned.as_of.isoformat()}"
    return f"fine-tuned models ({tuned.prefix}BASE:...): {how} [{where}]"


def _fine_tuned_json(tuned: FineTuned | None) -> dict[str, Any] | None:
    if tuned is None:
        return None
    return {
        "prefix": tuned.prefix,
        "served": tuned.served,
        "source": _source_json(tuned.source),
        "as_of": tuned.as_of.isoformat(),
        "note": tuned.note,
    }


def _changes(facts: Mapping[str, Fact], show: Callable[[Fact], str]) -> str:
    """``retention: nothing kept; HIPAA BAA: covered`` for the facts an attestation or limit sets."""
    return "; ".join(f"{_FACT_TITLES[name]}: {show(fact)}" for name, fact in facts.items())


def _own(vendors: Sequence[VendorCatalogue], o: Offering) -> tuple[list[Attestation], tuple[Limit, ...]]:
    """The attestations and limits an offering adds to the one it inherits (all of them if none)."""
    parent = next((v.offerings[o.inherits] for v in vendors if o.inherits and o.inherits in v.offerings), None)
    if parent is None:
        return list(o.attestations.values()), o.limits
    own = [a for name, a in o.attestations.items() if name not in parent.attestations]
    return own, o.limits[len(parent.limits) :]


def _cell(fact: Fact) -> str:
    return table_text(
        f"{fact.describe()} ({fact.how.value}; [{fact.source.key}]({_link(fact.source.ref)}), {fact.as_of.isoformat()})"
    )


def table_text(text: str) -> str:
    """``text`` for a Markdown table cell: a "|" in it (regions within ch|eu|uk) would end the cell."""
    return text.replace("|", "\\|")


def _link(ref: str) -> str:
    """A Markdown link target for docs/: URLs as they are, project docs relative, seeds by name."""
    if "://" in ref:
        return ref
    return ref.removeprefix("docs/") if ref.startswith("docs/") else "guarantees.md#seed-documents"


def catalogue_markdown(vendors: Sequence[VendorCatalogue]) -> str:
    """``privsdk targets --markdown``: the generated tables of docs/guarantees.md."""
    out = [
        "### Guarantees with nothing attested",
        "",
        "| offering | " + " | ".join(_FACT_TITLES[n] for n in FACT_NAMES) + " |",
        "|---" * (len(FACT_NAMES) + 1) + "|",
    ]
    for v in vendors:
        for o in v.offerings.values():
            out.append(f"| `{o.id}` {o.name} | " + " | ".join(_cell(o.facts[n]) for n in FACT_NAMES) + " |")
    out += [
        "",
        "### Attestations",
        "",
        "| offering | attestation | how | requires | makes true |",
        "|---|---|---|---|---|",
    ]
    for v in vendors:
        for o in v.offerings.values():
            for a in _own(vendors, o)[0]:
                changes = _changes(a.facts, _cell)
                out.append(
                    f"| `{o.id}` | `{a.qualified}` | {a.how.value} | {', '.join(a.requires) or '-'} | {changes} |"
                )
    out += [
        "",
        "### Limits (models, operations and features that lose guarantees)",
        "",
        "| offering | when | becomes |",
        "|---|---|---|",
    ]
    for v in vendors:
        for o in v.offerings.values():
            for li in _own(vendors, o)[1]:
                out.append(f"| `{o.id}` | {li.describe()} | {_changes(li.facts, _cell)} |")
    out += ["", "### Sources", "", "| vendor | key | source | date stated |", "|---|---|---|---|"]
    for v in vendors:
        for s in v.sources.values():
            out.append(f"| {v.vendor} | {s.key} | [{s.title}]({_link(s.ref)}) | {s.date} |")
    return "\n".join(out) + "\n"
