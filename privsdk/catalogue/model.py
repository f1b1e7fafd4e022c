"""What the catalogue holds once loaded: vendors, offerings, attestations, limits."""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Mapping
from typing import NamedTuple

from privsdk.catalogue.facts import Fact, How, Source


class Attestation(NamedTuple):
    """Something a tenant can declare about its account or deployment.

    ``key`` is what users write after ``vendor:`` (``zdr``, ``plan=scale``).
    ``facts`` are the values the attestation makes true; they only ever
    strengthen the offering's defaults.
    """

    vendor: str
    key: str
    how: How
    requires: tuple[str, ...]
    facts: Mapping[str, Fact]
    note: str

    @property
    def qualified(self) -> str:
        return f"{self.vendor}:{self.key}"

    @property
    def group(self) -> str:
        """The part before ``=``: two values of one group cannot both be attested."""
        return self.key.partition("=")[0]


class Limit(NamedTuple):
    """Facts that get weaker for some models, operations or features.

    A limit applies when every condition it names matches: the model matches
    one of ``models`` (globs), the operation is in ``operations``, or one of
    ``features`` is in use. An empty condition matches everything.
    """

    models: tuple[str, ...]
    operations: frozenset[str]
    features: frozenset[str]
    facts: Mapping[str, Fact]
    note: str

    def applies(self, model: str, operation: str, features: frozenset[str]) -> bool:
        if self.operations and operation not in self.operations:
            return False
        if self.features and not (self.features & features):
            return False
        return not self.models or any(fnmatch.fnmatchcase(model, g) for g in self.models)

    def describe(self) -> str:
        parts = []
        if self.models:
            parts.append("models " + ", ".join(self.models))
        if self.operations:
            parts.append("operations " + ", ".join(sorted(self.operations)))
        if self.features:
            parts.append("features " + ", ".join(sorted(self.features)))
        return "; ".join(parts)


class Offering(NamedTuple):
    """One way of calling a vendor, with its guarantees for an account that attested nothing."""

    id: str
    vendor: str
    name: str
    summary: str
    operations: frozenset[str]
    models: tuple[str, ...]
    facts: Mapping[str, Fact]
    attestations: Mapping[str, Attestation]  # keyed by qualified name, ``vendor:key``
    limits: tuple[Limit, ...]
    reviewed: dt.date  # oldest review date of the files it draws on
    inherits: str | None = None
    #: Host patterns of the vendor's own endpoints for this offering (``{resource}.openai.azure.com``):
    #: the transport guard places a request by its host with them. Empty where only a declared endpoint
    #: can reach the offering (self-hosted servers, private deployments).
    hosts: tuple[str, ...] = ()

    def serves_model(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, g) for g in self.models)


class VendorCatalogue(NamedTuple):
    """One vendor's data file."""

    vendor: str
    name: str
    reviewed: dt.date
    default_offering: str | None
    sources: Mapping[str, Source]
    offerings: Mapping[str, Offering]

    @property
    def attestation_keys(self) -> frozenset[str]:
        """Every attestation key any offering of this vendor defines itself."""
        return frozenset(
            a.key for o in self.offerings.values() for a in o.attestations.values() if a.vendor == self.vendor
        )
