"""Guarantee facts and how they combine.

An offering states seven facts. Each fact is named for the guarantee it gives,
so that for every fact a more protective value is a better one:

=====================  ==========================================================
fact                   value
=====================  ==========================================================
no_training            bool: True = inputs/outputs are not used for training
retention_days         int >= 0 (0 = nothing kept) or ``UNBOUNDED`` ("until deleted")
no_human_review        bool: True = nobody at the vendor can read the content
no_provider_sharing    bool: True = the model's maker never receives the content
private_deployment     bool: True = runs on infrastructure the tenant controls
regions                frozenset of geographies, or ``ANY`` (no residency promise)
hipaa_baa              bool: True = a BAA covers this offering for this account
=====================  ==========================================================

Any fact may also be ``UNKNOWN`` (sources silent or contradictory), which is
the least protective value of all and meets no requirement: privsdk fails closed.

Attestations can only *strengthen* a fact (:func:`stronger`); limits for
models, operations and features can only *weaken* one (:func:`weaker`).
Because both are lattice operations, the order in which attestations or limits
are applied never changes the result.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import NamedTuple


class Special(enum.Enum):
    """Fact values that are not plain data."""

    UNKNOWN = "unknown"
    UNBOUNDED = "unbounded"
    ANY = "any"


UNKNOWN = Special.UNKNOWN
UNBOUNDED = Special.UNBOUNDED
ANY = Special.ANY

FactValue = bool | int | frozenset[str] | Special

FACT_NAMES: tuple[str, ...] = (
    "no_training",
    "retention_days",
    "no_human_review",
    "no_provider_sharing",
    "private_deployment",
    "regions",
    "hipaa_baa",
)
BOOL_FACTS = frozenset(FACT_NAMES) - {"retention_days", "regions"}


class How(str, enum.Enum):
    """How a fact's value is reached."""

    DEFAULT = "default"  # the vendor's default: nobody did anything
    SETTING = "setting"  # a self-serve account or deployment setting
    APPROVAL = "approval"  # vendor approval, contract or eligibility gate
    PLAN = "plan"  # depends on the plan or tier the account is on
    OPERATOR = "operator"  # under the operator's own control (self-hosted)


class Source(NamedTuple):
    """Where a fact comes from."""

    key: str
    title: str
    ref: str  # URL, or ``seeds/<file>`` for the project's seed documents
    date: str  # the date the source states, or why there is none


class Fact(NamedTuple):
    """One guarantee fact with its provenance."""

    name: str
    value: FactValue
    how: How
    source: Source
    as_of: dt.date
    note: str = ""

    def describe(self) -> str:
        """The value in words, as shown in ``unmet[].offered``."""
        return describe_value(self.name, self.value)


def describe_value(name: str, value: FactValue) -> str:
    """Human words for a fact value."""
    if value is UNKNOWN:
        return "unknown (sources silent or in conflict)"
    if name == "retention_days":
        if value is UNBOUNDED:
            return "kept until deleted"
        return "nothing kept" if value == 0 else f"kept up to {value} days"
    if name == "regions":
        if value is ANY:
            return "any region (no residency promise)"
        assert isinstance(value, frozenset)
        return "within " + "|".join(sorted(value))
    words = {
        "no_training": ("not used for training", "used for training"),
        "no_human_review": ("no human review", "humans may review"),
        "no_provider_sharing": ("not shared with the model's maker", "shared with the model's maker"),
        "private_deployment": ("private deployment", "vendor-operated infrastructure"),
        "hipaa_baa": ("covered by a BAA", "no BAA"),
    }[name]
    return words[0] if value else words[1]


def _rank(name: str, value: FactValue) -> tuple[int, int]:
    """A sort key where larger means more protective (regions excluded)."""
    if value is UNKNOWN:
        return (0, 0)
    if name == "retention_days":
        if value is UNBOUNDED:
            return (1, 0)
        assert isinstance(value, int)
        return (2, -value)
    return (1 + int(bool(value)), 0)


def stronger(a: Fact, b: Fact) -> Fact:
    """The more protective of two facts of the same name (``a`` on ties)."""
    if a.name == "regions":
        if b.value is UNKNOWN or a.value is UNKNOWN:
            return b if a.value is UNKNOWN else a
        if b.value is ANY:
            return a
        if a.value is ANY:
            return b
        assert isinstance(a.value, frozenset) and isinstance(b.value, frozenset)
        if a.value <= b.value:
            return a
        if b.value <= a.value:
            return b
        # Two promises that cannot both hold (eu-only and us-only): trust neither.
        both = a.value & b.value
        return b._replace(value=both if both else UNKNOWN)
    return b if _rank(b.name, b.value) > _rank(a.name, a.value) else a


def weaker(a: Fact, b: Fact) -> Fact:
    """The less protective of two facts of the same name (``a`` on ties)."""
    if a.name == "regions":
        if a.value is UNKNOWN or b.value is UNKNOWN:
            return a if a.value is UNKNOWN else b
        if a.value is ANY:
            return a
        if b.value is ANY:
            return b
        assert isinstance(a.value, frozenset) and isinstance(b.value, frozenset)
        return a if b.value <= a.value else b._replace(value=a.value | b.value)
    return b if _rank(b.name, b.value) < _rank(a.name, a.value) else a


def at_least_as_protective(a: Fact, b: Fact) -> bool:
    """True when ``a`` promises everything ``b`` promises."""
    return weaker(a, b).value == b.value
