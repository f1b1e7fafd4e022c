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


class FineTuned(NamedTuple):
    """How an offering names the models a customer fine-tuned, and whether its facts hold for them.

    A fine-tuned model's id is ``prefix``, its base model, a colon and the vendor's own parts
    (``ft:gpt-4o-mini-2024-07-18:acme::abc123``). With ``served``, the vendor's documents (``source``, read as
    of ``as_of``) say such models are served under the offering's terms: the id is judged as its base model's
    family, limits included. Otherwise the documents say the terms differ, or say nothing, and the id is
    refused with ``note``, which says why and what to do.
    """

    prefix: str
    served: bool
    source: Source
    as_of: dt.date
    note: str

    def base(self, model: str) -> str | None:
        """The base model a fine-tuned id names; None for an id that is not one."""
        if not model.startswith(self.prefix):
            return None
        base, colon, rest = model[len(self.prefix) :].partition(":")
        return base if base and colon and rest else None


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
    #: Routing prefixes a model id may carry (Bedrock's ``eu.``, ``global.``, ...): the family behind one
    #: must be served too, so a prefix alone never makes a model known.
    profile_prefixes: frozenset[str] = frozenset()
    #: The AWS service whose model ARNs name a model here (``bedrock``); empty when ARNs are not accepted.
    arn_service: str = ""
    #: The vendor treats model names case-insensitively (Ollama): globs and limits match the lower-cased name.
    models_ignore_case: bool = False
    #: How the vendor names fine-tuned models here, and whether they are served under these terms.
    fine_tuned: FineTuned | None = None

    @property
    def account_vendor(self) -> str:
        """The vendor whose account serves this offering's requests, and whose attestations apply to it: the
        offering it inherits from's (``azure`` for Cohere models on Azure AI Foundry), else its own."""
        return self.inherits.partition(".")[0] if self.inherits else self.vendor

    def model_key(self, model: str) -> str | None:
        """The name the globs and limits match: an ARN's model or profile id, a fine-tuned model's base model
        where the catalogue says fine-tuned models are served under these terms, lower-cased where names
        ignore case; None when ``model`` is an ARN this offering cannot read."""
        if self.models_ignore_case:
            model = model.lower()
        if model.startswith("arn:"):
            arn = parse_model_arn(model, self.arn_service) if self.arn_service else None
            if arn is None:
                return None
            prefix, dot, _ = arn.model.partition(".")
            is_profile = bool(dot) and prefix in self.profile_prefixes
            return arn.model if is_profile == (arn.kind == "inference-profile") else None
        tuned = self.fine_tuned
        if tuned is not None and tuned.served:
            return tuned.base(model) or model
        return model

    def unserved(self, model: str) -> str | None:
        """Why this offering does not serve ``model``, an id it recognises as a fine-tuned model, and what to do;
        None for any other id (for which "unknown model family" is the reason)."""
        tuned = self.fine_tuned
        if tuned is None or not model.startswith(tuned.prefix):
            return None
        base = tuned.base(model)
        if base is None:
            return (
                f"{model!r} starts as {self.id}'s fine-tuned model ids do, but names no base model "
                f"(fine-tuned ids read {tuned.prefix}BASE:...; check the model id)"
            )
        if not tuned.served:
            return f"{model!r} is a model fine-tuned from {base!r} on {self.id}: {tuned.note} ({tuned.source.key})"
        if not self.serves_model(base):
            return (
                f"{model!r} is fine-tuned from {base!r}, a model family {self.id} does not serve "
                f"(models: {', '.join(self.models)})"
            )
        return None

    def model_note(self, model: str) -> str | None:
        """How ``model`` is judged when that is not plain from its name (a fine-tuned model judged as its base
        model's family), for ``privsdk explain``; None otherwise."""
        tuned = self.fine_tuned
        base = tuned.base(model) if tuned is not None else None
        if tuned is None or base is None:
            return None
        if tuned.served and self.serves_model(model):
            return (
                f"fine-tuned from {base!r}, judged under {self.id}'s terms for that family: {tuned.note} "
                f"(source {tuned.source.key}, as of {tuned.as_of.isoformat()})"
            )
        return self.unserved(model)

    @property
    def limited_features(self) -> frozenset[str]:
        """The features some limit of this offering names: the catalogue has facts on what they change."""
        return frozenset(f for limit in self.limits for f in limit.features)

    def serves_model(self, model: str) -> bool:
        key = self.model_key(model)
        if key is None:
            return False
        prefix, dot, family = key.partition(".")
        if dot and prefix in self.profile_prefixes:
            key = family  # a known prefix and a known family behind it, both
        return any(fnmatch.fnmatchcase(key, g) for g in self.models)


class ModelArn(NamedTuple):
    """The parts of a model ARN privsdk reads: ``arn:PARTITION:SERVICE:REGION:ACCOUNT:KIND/MODEL``."""

    region: str
    kind: str  # foundation-model or inference-profile
    model: str


_ARN_KINDS = ("foundation-model", "inference-profile")


def parse_model_arn(model: str, service: str) -> ModelArn | None:
    """A foundation-model or inference-profile ARN of ``service``; None for any other text.

    Application inference profiles (opaque ids) and provisioned throughput name no model family, so they
    are not read: such a target is an unknown model, and refused.
    """
    parts = model.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != service or not parts[3]:
        return None
    kind, slash, name = parts[5].partition("/")
    if not slash or kind not in _ARN_KINDS or not name or "/" in name:
        return None
    return ModelArn(parts[3], kind, name)


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
