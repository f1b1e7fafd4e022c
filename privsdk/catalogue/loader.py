"""Reading and validating one vendor's catalogue file.

The file format is documented in docs/catalogue.md. Every check here exists
because a malformed fact would otherwise turn into a wrong decision; the
packaged files are loaded by the test suite, so a failure here is a privsdk bug.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from privsdk import tomlcompat
from privsdk.catalogue.facts import (
    ANY,
    BOOL_FACTS,
    FACT_NAMES,
    UNBOUNDED,
    UNKNOWN,
    Fact,
    FactValue,
    How,
    Source,
    at_least_as_protective,
)
from privsdk.catalogue.model import Attestation, FineTuned, Limit, Offering, VendorCatalogue
from privsdk.errors import CatalogueError
from privsdk.vocabulary import FEATURES, GEOGRAPHIES, OPERATIONS

_KEY = re.compile(r"^[a-z][a-z0-9_]*(=[a-z0-9_.\-]+)?$")

#: Resolves ``inherits = "vendor.offering"`` against another vendor's file.
OfferingLookup = Callable[[str], "Offering | None"]


def load_vendor_file(path: str, lookup: OfferingLookup) -> VendorCatalogue:
    """Load ``path``; ``lookup`` finds offerings of other vendors for ``inherits``."""
    name = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as f:
            raw = tomlcompat.loads(f.read())
    except (OSError, tomlcompat.TOMLDecodeError) as exc:
        raise CatalogueError(f"{name}: {exc}") from exc
    try:
        return _vendor(raw, name.removesuffix(".toml"), lookup)
    except CatalogueError as exc:
        raise CatalogueError(f"{name}: {exc}") from None


def _vendor(raw: dict[str, Any], stem: str, lookup: OfferingLookup) -> VendorCatalogue:
    _only(raw, {"vendor", "name", "reviewed", "default_offering", "sources", "offerings"}, "file")
    vendor = _str(raw, "vendor", "file")
    if vendor != stem:
        raise CatalogueError(f"vendor {vendor!r} does not match the file name {stem!r}")
    reviewed = _date(raw, "reviewed", "file")
    sources = {
        key: Source(key, _str(s, "title", key), _str(s, "ref", key), _str(s, "date", key))
        for key, s in _table(raw, "sources", "file").items()
        if _only(s, {"title", "ref", "date"}, f"source {key}")
    }
    if not sources:
        raise CatalogueError("no [sources]")
    offerings: dict[str, Offering] = {}

    def find(oid: str) -> Offering | None:
        # An offering of this file, defined above, before asking the catalogue (which would load this file again).
        return offerings.get(oid) if oid.startswith(vendor + ".") else lookup(oid)

    for entry in _list(raw, "offerings", "file"):
        off = _offering(entry, vendor, reviewed, sources, find)
        if off.id in offerings:
            raise CatalogueError(f"offering {off.id} defined twice")
        offerings[off.id] = off
    default = raw.get("default_offering")
    if default is not None and default not in offerings:
        raise CatalogueError(f"default_offering {default!r} is not an offering of this file")
    return VendorCatalogue(vendor, _str(raw, "name", "file"), reviewed, default, sources, offerings)


_OFFERING_KEYS = {
    "id", "name", "summary", "inherits", "operations", "models", "profile_prefixes", "arn_service",
    "models_ignore_case", "facts", "attestations", "limits", "hosts", "hosts_source", "fine_tuned",
}  # fmt: skip


def _offering(
    raw: dict[str, Any],
    vendor: str,
    reviewed: dt.date,
    sources: Mapping[str, Source],
    lookup: OfferingLookup,
) -> Offering:
    oid = _str(raw, "id", "offering")
    where = f"offering {oid}"
    _only(raw, _OFFERING_KEYS, where)
    if not oid.startswith(vendor + "."):
        raise CatalogueError(f"{where}: id must start with {vendor + '.'!r}")
    parent: Offering | None = None
    if "inherits" in raw:
        parent = lookup(_str(raw, "inherits", where))
        if parent is None:
            raise CatalogueError(f"{where}: inherits unknown offering {raw['inherits']!r}")

    if "operations" in raw or parent is None:
        operations = frozenset(_strs(raw, "operations", where))
        bad = sorted(operations - set(OPERATIONS))
        if bad or not operations:
            raise CatalogueError(f"{where}: bad operations {bad} (valid: {', '.join(OPERATIONS)})")
    else:
        operations = parent.operations
    models = tuple(_strs(raw, "models", where)) if "models" in raw or parent is None else parent.models
    if not models:
        raise CatalogueError(f"{where}: models must list at least one glob")
    prefixes = frozenset(_strs(raw, "profile_prefixes", where)) if "profile_prefixes" in raw else None
    arn_service = _str(raw, "arn_service", where) if "arn_service" in raw else None
    ignore_case = raw.get("models_ignore_case", parent.models_ignore_case if parent else False)
    if not isinstance(ignore_case, bool):
        raise CatalogueError(f"{where}: models_ignore_case must be true or false")

    facts = dict(parent.facts) if parent else {}
    for name, f in _table(raw, "facts", where, required=parent is None).items():
        facts[name] = _fact(name, f, sources, None, f"{where} fact {name}")
    missing = [n for n in FACT_NAMES if n not in facts]
    if missing:
        raise CatalogueError(f"{where}: missing facts {missing}")

    attestations = dict(parent.attestations) if parent else {}
    for a in _list(raw, "attestations", where, required=False):
        att = _attestation(a, vendor, sources, facts, where)
        if att.qualified in attestations:
            raise CatalogueError(f"{where}: attestation {att.qualified} defined twice")
        attestations[att.qualified] = att
    for att in attestations.values():
        for req in att.requires:
            if req not in attestations:
                raise CatalogueError(f"{where}: {att.qualified} requires unknown {req}")

    hosts = tuple(_strs(raw, "hosts", where, required=False))
    if hosts:
        ref = _str(raw, "hosts_source", where)
        if ref not in sources:
            raise CatalogueError(f"{where}: hosts_source {ref!r} is not a source of this file")
        bad = [h for h in hosts if not _HOST.fullmatch(h)]
        if bad:
            raise CatalogueError(f"{where}: bad host patterns {bad} (labels, or one of {', '.join(HOST_FIELDS)})")

    limits = list(parent.limits) if parent else []
    limits += [_limit(x, sources, operations, f"{where} limit") for x in _list(raw, "limits", where, required=False)]
    if "fine_tuned" in raw:
        fine_tuned: FineTuned | None = _fine_tuned(_table(raw, "fine_tuned", where), sources, f"{where} fine_tuned")
    else:
        fine_tuned = parent.fine_tuned if parent else None
    return Offering(
        id=oid,
        vendor=vendor,
        name=_str(raw, "name", where),
        summary=_str(raw, "summary", where),
        operations=operations,
        models=models,
        facts=facts,
        attestations=attestations,
        limits=tuple(limits),
        reviewed=min(reviewed, parent.reviewed) if parent else reviewed,
        inherits=parent.id if parent else None,
        profile_prefixes=prefixes if prefixes is not None else parent.profile_prefixes if parent else frozenset(),
        arn_service=arn_service if arn_service is not None else parent.arn_service if parent else "",
        models_ignore_case=ignore_case,
        hosts=hosts,
        fine_tuned=fine_tuned,
    )


def _fine_tuned(raw: dict[str, Any], sources: Mapping[str, Source], where: str) -> FineTuned:
    """``[offerings.fine_tuned]``: how the vendor names fine-tuned models, and whether they are served under the
    offering's terms, with the source that says so."""
    _only(raw, {"prefix", "served", "source", "as_of", "note"}, where)
    prefix = _str(raw, "prefix", where)
    if ":" not in prefix or prefix.startswith("arn:"):
        raise CatalogueError(f"{where}: prefix must end with the separator before the base model, e.g. 'ft:'")
    served = raw.get("served")
    if not isinstance(served, bool):
        raise CatalogueError(f"{where}: served must be true or false")
    src_key = _str(raw, "source", where)
    if src_key not in sources:
        raise CatalogueError(f"{where}: unknown source {src_key!r}")
    return FineTuned(prefix, served, sources[src_key], _date(raw, "as_of", where), _str(raw, "note", where))


def _attestation(
    raw: dict[str, Any],
    vendor: str,
    sources: Mapping[str, Source],
    base: Mapping[str, Fact],
    where: str,
) -> Attestation:
    key = _str(raw, "name", f"{where} attestation")
    where = f"{where} attestation {key}"
    _only(raw, {"name", "how", "requires", "note", "facts"}, where)
    if not _KEY.match(key):
        raise CatalogueError(f"{where}: names are lower_snake or key=value")
    how = _how(raw, where)
    requires = tuple(r if ":" in r else f"{vendor}:{r}" for r in _strs(raw, "requires", where, required=False))
    facts = {
        name: _fact(name, f, sources, how, f"{where} fact {name}") for name, f in _table(raw, "facts", where).items()
    }
    if not facts:
        raise CatalogueError(f"{where}: changes no fact")
    for name, fact in facts.items():
        if not at_least_as_protective(fact, base[name]):
            raise CatalogueError(f"{where}: would weaken {name} ({fact.describe()} < {base[name].describe()})")
    return Attestation(vendor, key, how, requires, facts, _str(raw, "note", where))


def _limit(raw: dict[str, Any], sources: Mapping[str, Source], operations: frozenset[str], where: str) -> Limit:
    _only(raw, {"models", "operations", "features", "note", "facts"}, where)
    ops = frozenset(_strs(raw, "operations", where, required=False))
    feats = frozenset(_strs(raw, "features", where, required=False))
    models = tuple(_strs(raw, "models", where, required=False))
    if not (ops or feats or models):
        raise CatalogueError(f"{where}: names no models, operations or features")
    if ops - operations:
        raise CatalogueError(f"{where}: operations {sorted(ops - operations)} are not offered")
    if feats - set(FEATURES):
        raise CatalogueError(f"{where}: unknown features {sorted(feats - set(FEATURES))}")
    facts = {
        name: _fact(name, f, sources, How.DEFAULT, f"{where} fact {name}")
        for name, f in _table(raw, "facts", where).items()
    }
    return Limit(models, ops, feats, facts, _str(raw, "note", where))


#: The placeholders a host pattern may hold, each standing for one DNS label.
HOST_FIELDS = ("{resource}", "{aws_region}", "{gcp_location}", "{azure_region}", "{geo}")
_LABEL = r"(?:[a-z0-9-]|" + "|".join(re.escape(f) for f in HOST_FIELDS) + ")+"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def _fact(name: str, raw: Any, sources: Mapping[str, Source], how: How | None, where: str) -> Fact:
    if name not in FACT_NAMES:
        raise CatalogueError(f"{where}: unknown fact (valid: {', '.join(FACT_NAMES)})")
    if not isinstance(raw, dict):
        raise CatalogueError(f"{where}: must be a table")
    _only(raw, {"value", "how", "source", "as_of", "note"}, where)
    src_key = _str(raw, "source", where)
    if src_key not in sources:
        raise CatalogueError(f"{where}: unknown source {src_key!r}")
    return Fact(
        name=name,
        value=_value(name, raw.get("value"), where),
        how=_how(raw, where) if how is None or "how" in raw else how,
        source=sources[src_key],
        as_of=_date(raw, "as_of", where),
        note=str(raw.get("note", "")),
    )


def _value(name: str, v: Any, where: str) -> FactValue:
    if v == "unknown":
        return UNKNOWN
    if name in BOOL_FACTS and isinstance(v, bool):
        return v
    if name == "retention_days":
        if v == "unbounded":
            return UNBOUNDED
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            return v
    if name == "regions":
        if v == "any":
            return ANY
        if isinstance(v, list) and v and all(g in GEOGRAPHIES for g in v):
            return frozenset(v)
    raise CatalogueError(f"{where}: bad value {v!r}")


def _how(raw: Mapping[str, Any], where: str) -> How:
    try:
        return How(raw.get("how"))
    except ValueError:
        raise CatalogueError(f"{where}: how must be one of {[h.value for h in How]}") from None


def _only(raw: Mapping[str, Any], allowed: set[str], where: str) -> bool:
    extra = sorted(set(raw) - allowed)
    if extra:
        raise CatalogueError(f"{where}: unknown keys {extra}")
    return True


def _str(raw: Mapping[str, Any], key: str, where: str) -> str:
    v = raw.get(key)
    if not isinstance(v, str) or not v:
        raise CatalogueError(f"{where}: {key} must be a non-empty string")
    return v


def _date(raw: Mapping[str, Any], key: str, where: str) -> dt.date:
    v = raw.get(key)
    if not isinstance(v, dt.date) or isinstance(v, dt.datetime):
        raise CatalogueError(f"{where}: {key} must be a TOML date (YYYY-MM-DD)")
    return v


def _strs(raw: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> list[str]:
    v = raw.get(key, None if required else [])
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise CatalogueError(f"{where}: {key} must be a list of strings")
    return v


def _table(raw: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> dict[str, Any]:
    v = raw.get(key, None if required else {})
    if not isinstance(v, dict):
        raise CatalogueError(f"{where}: [{key}] must be a table")
    return v


def _list(raw: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> list[dict[str, Any]]:
    v = raw.get(key, None if required else [])
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        raise CatalogueError(f"{where}: [[{key}]] must be an array of tables")
    return v
