"""A deployment's policy: tenants, their requirements, targets and attestations.

These are plain immutable values. :mod:`privsdk.config` builds them from the
environment and a TOML file and checks every name; code that builds a
:class:`Policy` by hand gets the same decisions, because the decision engine
relies on nothing but these values and the catalogue.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Literal, NamedTuple

from privsdk.outbound.outgoing import shown_name
from privsdk.vocabulary import Requirement

OnViolation = Literal["refuse", "reroute"]
DEFAULT_MAX_CATALOGUE_AGE_DAYS = 365


class Target(NamedTuple):
    """Where a call can go: an offering, a model, and what is fixed about the deployment.

    ``name`` is the config name, or ``vendor/model`` for a vendor's public API.
    ``attest`` holds qualified attestations (``azure:deployment=data_zone_eu``)
    that are true of this target only. The remaining fields are for adapters;
    ``options`` holds adapter-specific settings as sorted (key, value) pairs,
    each adapter's README lists the keys it reads.
    """

    name: str
    offering: str
    model: str
    attest: frozenset[str] = frozenset()
    endpoint: str | None = None
    deployment: str | None = None
    region: str | None = None
    project: str | None = None
    api_version: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    #: The vendor account the target's requests carry (OpenAI project, Azure resource, GCP project), for
    #: attestations scoped to one account (``openai:zdr@proj_abc``). The transport guard sets it from the request.
    account: str | None = None
    #: The geography the request's host shows, set by the transport guard; None when the host shows none.
    geography: str | None = None
    #: True when the host can show a geography (``api.openai.com`` can, and shows none): region attestations
    #: then hold only where the shown geography is theirs.
    shows_geography: bool = False

    def option(self, key: str, default: str | None = None) -> str | None:
        """The adapter setting ``key``, or ``default``."""
        for k, v in self.options:
            if k == key:
                return v
        return default


class Endpoint(NamedTuple):
    """A URL the policy declares as an offering's endpoint: a self-hosted server, a private endpoint, a proxy.

    ``url`` is ``scheme://host[:port][/path]`` without a trailing slash; a request whose URL starts with it
    goes to ``offering``, for ``account`` when set.
    """

    url: str
    offering: str
    account: str | None = None


#: Credential keys that stand for an account of another attestation vendor than their own: Cohere's and Mistral's
#: models served from the tenant's own AWS or Azure account are attested there as ``bedrock:`` / ``azure:``.
_OTHER_ACCOUNTS = {
    ("cohere", "aws_access_key_id"): "bedrock",
    ("cohere", "aws_secret_access_key"): "bedrock",
    ("cohere", "aws_session_token"): "bedrock",
    ("cohere", "azure_api_key"): "azure",
    ("mistral", "azure_api_key"): "azure",
}


def account_vendor(vendor: str, key: str) -> str:
    """The attestation vendor whose account a tenant's ``credentials.<vendor>.<key>`` stands for: ``vendor``'s own,
    or the one its key reaches (a Cohere model on the tenant's own Bedrock account is attested as ``bedrock:``)."""
    return _OTHER_ACCOUNTS.get((vendor, key), vendor)


def owned_accounts(credentials: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]) -> tuple[str, ...]:
    """The attestation vendors whose account a tenant's own ``credentials`` stand for: each credential's vendor, and
    the vendor each of its keys reaches (:func:`account_vendor`)."""
    owned = {vendor for vendor, _ in credentials}
    owned.update(account_vendor(vendor, key) for vendor, pairs in credentials for key, _ in pairs)
    return tuple(sorted(owned))


class Tenant(NamedTuple):
    """One tenant's rules.

    ``attest`` is the tenant's effective account attestations, qualified
    (``openai:zdr``). ``reroute`` keeps file order: each entry maps a target
    name, a ``vendor/model`` or a glob over ``vendor/model`` to the ordered
    alternatives to try.
    """

    name: str
    classes: Mapping[str, tuple[Requirement, ...]]
    default_class: str = "default"
    on_violation: OnViolation = "refuse"
    attest: frozenset[str] = frozenset()
    reroute: tuple[tuple[str, tuple[str, ...]], ...] = ()
    max_catalogue_age_days: int = DEFAULT_MAX_CATALOGUE_AGE_DAYS
    #: (vendor, ((credential key, environment variable name), ...)): the tenant's own vendor accounts.
    credentials: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    #: The attestation vendors whose account is the tenant's own (its credentials reach it, or it writes its own
    #: ``attest.<vendor>``): the deployment's attestations for them, a target's included, say nothing of it. A
    #: tenant built in code may leave out those its credentials reach: :meth:`owned` adds them.
    own_accounts: frozenset[str] = frozenset()

    def owned(self) -> frozenset[str]:
        """The attestation vendors whose account is the tenant's own: :attr:`own_accounts`, and every one its
        credentials reach (a policy file fills both; a ``Tenant`` an app builds may name only its credentials)."""
        if not self.credentials:
            return self.own_accounts
        return self.own_accounts.union(owned_accounts(self.credentials))

    def alternatives(self, target: str, spelled: str | None = None) -> tuple[str, ...]:
        """The reroute list for ``target``: an exact entry for its name first, then for ``spelled`` (the
        ``vendor/model`` a named target stands for), else the first glob that matches either."""
        names = (target,) if spelled is None else (target, spelled)
        for name in names:
            for pattern, alts in self.reroute:
                if pattern == name:
                    return alts
        for pattern, alts in self.reroute:
            if any(fnmatch.fnmatchcase(name, pattern) for name in names):
                return alts
        return ()


#: Where a user without a policy file finds one to start from.
_EXAMPLE = "privsdk example-policy prints one"


class Policy:
    """Everything a decision needs besides the catalogue.

    ``default_tenant`` serves calls that name no tenant (neither the call, a
    :func:`~privsdk.scope` nor ``PRIVSDK_TENANT``); None means such calls are refused.

    Compared and hashed by identity: a policy is built once and never changed,
    which lets decisions be cached per policy at the cost of one pointer hash.
    """

    __slots__ = ("default_tenant", "endpoints", "origin", "targets", "tenants", "usage")

    def __init__(
        self,
        tenants: Mapping[str, Tenant],
        default_tenant: str | None,
        targets: Mapping[str, Target] | None = None,
        origin: str = "a Policy built in code",  # the policy file, or "environment" (load_policy without one)
        usage: str = "sqlite",  # PRIVSDK_USAGE, checked
        endpoints: tuple[Endpoint, ...] = (),
    ) -> None:
        self.tenants = tenants
        self.default_tenant = default_tenant
        self.targets: Mapping[str, Target] = targets or {}
        self.origin = origin
        self.usage = usage
        # Declared endpoints, and every configured target's endpoint: the guard places requests with them.
        own = [Endpoint(t.endpoint.rstrip("/"), t.offering, t.account) for t in self.targets.values() if t.endpoint]
        self.endpoints = endpoints + tuple(e for e in dict.fromkeys(own) if e not in endpoints)
        if len(self.endpoints) > 1:
            from privsdk.outbound.places import check_declarations

            check_declarations(self.endpoints)

    def __repr__(self) -> str:
        return f"Policy(origin={self.origin!r}, tenants={list(self.tenants)}, targets={list(self.targets)})"

    def unknown_tenant(self, name: str) -> str:
        """Why ``name`` is none of this policy's tenants, in words that say where tenants come from. The name is
        quoted only when it has a tenant name's shape: the app may have passed any text (see ``shown_name``)."""
        from privsdk.tenants import NAME  # here: privsdk.tenants imports this module

        known = ", ".join(self.tenants)
        shown = shown_name(name, "tenant name", NAME)
        if self.origin == "environment":  # the usual cause: the app runs without the file that names its tenants
            return (
                f"unknown tenant {shown}: PRIVSDK_CONFIG names no policy file, and without one the only tenant is "
                f"{known}; set PRIVSDK_CONFIG to the file that defines it ({_EXAMPLE})"
            )
        return f"unknown tenant {shown} (tenants of {self.origin}: {known})"

    def unknown_target(self, name: str) -> str:
        """Why ``name``, which is not vendor/model, is none of this policy's targets; quoted only when it has a
        target name's shape (see ``shown_name``)."""
        shown = shown_name(name, "target name")
        if self.origin == "environment" and not self.targets:
            return (
                f"unknown target {shown}: PRIVSDK_CONFIG names no policy file, and without one there are no named "
                f"targets; name a vendor's API as vendor/model (openai/gpt-4o-mini), or set PRIVSDK_CONFIG to the "
                f"file that defines it ({_EXAMPLE})"
            )
        known = ", ".join(self.targets) or "none"
        return f"unknown target {shown}: not a target in {self.origin} (targets: {known}) and not vendor/model"
