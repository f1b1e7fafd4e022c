"""The guard: one decision per outgoing request, on what the request itself shows.

Every request a guarded SDK client sends (a drop-in, a client handed to
:func:`privsdk.guard`, a client caught by :func:`privsdk.instrument`, or
:class:`privsdk.Client`'s adapters) passes :meth:`Guard.check` in the SDK's
transport before a byte is written. The guard places the request (its host,
or an endpoint the policy declares), reads what it asks for (operation,
model, features, account) with the wire reader of its protocol, and decides
with the same engine as :func:`privsdk.decide`. A refusal is recorded and
raised; an allowed request gets a :class:`Pass` that records its outcome.
"""

from __future__ import annotations

import contextvars
import operator
import os
import re
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal, NamedTuple
from urllib.parse import unquote, urlsplit

from privsdk import context
from privsdk.catalogue import Catalogue, default_catalogue
from privsdk.decision import Decision, decide, decide_request, next_utc_midnight, refused, reroute_list
from privsdk.errors import PolicyViolation, error_for_status
from privsdk.outbound.outgoing import (
    KEY_PARAMETERS,
    Asks,
    Meter,
    Outgoing,
    Unreadable,
    WireReader,
    answer_end,
    model_label,
    query_names_in,
    shown_model,
)
from privsdk.outbound.places import (
    Place,
    as_lenient_servers_route,
    catalogue_place,
    declared_place,
    dns_name,
    region_kind,
    unplaced,
)
from privsdk.outbound.places import geography as _geography
from privsdk.outbound.wire import PROTOCOLS, SDKS, reader
from privsdk.outbound.wire.routes import AfterDeclaredPrefix
from privsdk.policy import Policy, Target
from privsdk.tenants import TenantStore
from privsdk.usage.record import CallIds, attempt_record
from privsdk.usage.tags import check_tags
from privsdk.vocabulary import CONTENT_FREE_OPERATIONS

if TYPE_CHECKING:
    from privsdk.usage import Recorder
    from privsdk.usage.record import UsageRecord
    from privsdk.usage.writer import _Pending


class Binding(NamedTuple):
    """What a :class:`privsdk.Client` attempt is sending: its target, tenant and data class."""

    target: Target
    tenant: str
    data_class: str


#: Set by a :class:`privsdk.Client` attempt while it sends: the guard then checks that the request agrees with
#: the attempt's target, judges it for the call's tenant and class, and leaves the usage record to the client
#: (which records every attempt itself).
bound: contextvars.ContextVar[Binding | None] = contextvars.ContextVar("privsdk_bound", default=None)

#: Set by a drop-in's seam while a :class:`privsdk.Client` serves a request the guard rerouted: the guard's decision
#: on the request as built (its ticket's, a :class:`Rerouted` where the SDK says which call it is an attempt of). The
#: Client records its call to the alternative as that reroute (its decision, the target requested, what it did not
#: meet), and as attempts of the SDK's call, so the app's one call is one call in the records, not an unsent request
#: and an unrelated call to the alternative, nor one call per retry of the SDK's.
rerouting: contextvars.ContextVar[Decision | None] = contextvars.ContextVar("privsdk_rerouting", default=None)


#: Every live guard: a forked child replaces their locks (:func:`_after_fork_in_child`).
_GUARDS: weakref.WeakSet[Guard] = weakref.WeakSet()


class Guard:
    """Judges outgoing requests against a policy, and records each one.

    Built from the environment (``PRIVSDK_*``) unless given a policy; one
    guard serves any number of clients and threads. :meth:`default` is the
    process-wide guard that drop-ins and instrumented clients use.
    """

    _default: ClassVar[Guard | None] = None
    _default_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        catalogue: Catalogue | None = None,
        recorder: Recorder | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        from privsdk.config import load_policy, usage_max_age_days

        env = os.environ if environ is None else environ
        self.catalogue = catalogue or default_catalogue()
        self.policy = policy or load_policy(env, self.catalogue)
        self._recorder = recorder
        self._max_age_days = usage_max_age_days(env)
        self._lock = threading.Lock()
        _GUARDS.add(self)  # a forked child gives it a fresh lock (_after_fork_in_child)
        self._store = isinstance(self.policy.tenants, TenantStore)
        #: Where the tenants' own credentials are read (they name environment variables), and whether any tenant
        #: may have some: then each request allowed for such a tenant must carry them (:meth:`_own_account`).
        self._environ = env
        self._own_accounts = self._store or any(t.credentials for t in self.policy.tenants.values())
        #: Key -> the tenant whose own account it stands for: a request judged for another tenant (or none) that
        #: carries it would run on that account. A store's, shared by the stores of one PRIVSDK_TENANTS value, learns
        #: each tenant's as it is loaded; the policy file's tenants' are read here; both again at each request of
        #: the tenant's own (:meth:`_own_account`), so a rotated key is learnt by then.
        self._key_owners: dict[str, str] = {}
        if isinstance(self.policy.tenants, TenantStore):
            self._key_owners = self.policy.tenants.key_owners
        elif self._own_accounts:
            from privsdk.outbound.own_credentials import learn

            for t in self.policy.tenants.values():
                learn(self._key_owners, t, env)
        self._verdicts: dict[tuple[object, ...], Verdict] = {}
        self._memo_until = 0.0  # when today's verdicts expire (a UTC midnight); 0: none yet
        self._places: dict[tuple[object, ...], tuple[Place, WireReader, bytes]] = {}

    @classmethod
    def default(cls) -> Guard:
        """The process-wide guard, configured from the environment the first time it is asked for."""
        guard = cls._default
        if guard is None:
            with cls._default_lock:
                guard = cls._default
                if guard is None:
                    guard = cls._default = Guard()
        return guard

    @classmethod
    def reset_default(cls) -> None:
        """Forget the process-wide guard (its records are flushed), so the next request reads the environment again."""
        with cls._default_lock:
            guard, cls._default = cls._default, None
        if guard is not None:
            guard.close()

    @property
    def recorder(self) -> Recorder:
        if self._recorder is None:
            with self._lock:
                if self._recorder is None:
                    from privsdk.usage import open_recorder

                    self._recorder = open_recorder(
                        self.policy.usage, max_age_days=self._max_age_days, where="PRIVSDK_USAGE"
                    )
        return self._recorder

    def flush(self, timeout: float | None = None) -> None:
        """Wait until the records of requests judged so far are written."""
        if self._recorder is not None:
            self._recorder.flush(timeout)

    def close(self) -> None:
        if self._recorder is not None:
            self._recorder.close()

    # -- judging -------------------------------------------------------------------------------

    def check(self, out: Outgoing, *, reroutable: bool = False) -> Pass:
        """Decide on ``out``: a :class:`Pass` when it may be sent, else record and raise :class:`PolicyViolation`.

        A seam that can send a request elsewhere (``reroutable``) gets a Pass whose decision is ``reroute``
        when the tenant reroutes and an alternative allows; it must then send to ``decision.chosen`` or
        nowhere. Any other seam gets a refusal for such a request.
        """
        binding = bound.get()
        verdict = self.judge(out, binding)
        decision = verdict.decision
        if decision.outcome == "reroute":  # never with a binding: a Client attempt is not rerouted (_decide)
            if reroutable:
                return self._rerouted(verdict, out)
            decision = decision._replace(
                outcome="refuse",
                chosen=None,
                chosen_evaluation=None,
                reason=f"{decision.reason}; but a {out.sdk} request can only be sent where the SDK sent it",
            )
            verdict = verdict._replace(decision=decision)
        if decision.outcome == "refuse":
            if binding is None:
                self._record_unsent(decision, verdict.targets, time.time())
            raise PolicyViolation(decision)
        # A bound request's record is the Client's; with PRIVSDK_USAGE=none there is nothing to build one for.
        return Pass(self, verdict, out, binding is None and (self._recorder or self.recorder).keeps)

    def _rerouted(self, verdict: Verdict, out: Outgoing) -> Pass:
        """The Pass of a request its seam reroutes. The Client call that serves it records its attempts (``rerouting``)
        as attempts of the SDK call the request is one (:class:`Rerouted`): the ticket's decision is a copy of the
        verdict's, which every request of its kind shares, that says which call and attempt."""
        ticket = Pass(self, verdict, out, (self._recorder or self.recorder).keeps)
        ticket.wait = None  # the seam says, where it can
        if ticket.record and ticket.call is not None:
            ticket.decision = Rerouted.serving(verdict.decision, ticket.call, ticket.attempt)
        return ticket

    def _record_unsent(self, decision: Decision, targets: tuple[Target, ...], started: float) -> None:
        """Record a request that was not sent as built, on ``decision`` (a refusal, or a reroute)."""
        target = targets[0] if targets else None
        self.recorder.record_later(
            attempt_record, decision, None, target, decision.chosen, 0, "refused", "policy", None, started, 0.0
        )

    def judge(self, out: Outgoing, binding: Binding | None = None) -> Verdict:
        """The decision on ``out`` and what it was made for, without raising or recording (``privsdk explain``)."""
        if binding is None:
            target = None
            tenant, data_class, _ = context.current()
        else:
            target, tenant, data_class = binding
        place = asks = wire = None
        try:
            url = out[:6]  # seam, method, scheme, host, port, path
            place, wire, host = self._places.get(url) or self._where(url, out)
            pairs = getattr(out.headers, "_list", None)
            # httpx puts its own Host header (the URL's host, and port unless the default) first, and adds none when
            # the app gave one: the usual request needs no more looking (one comparison with bytes kept per URL).
            if not (pairs and pairs[0][1] == _HOST and pairs[0][2] == host) and _names_another_host(out):
                raise _Refused(
                    out.host,
                    "other",
                    f"the request's Host header names another host than its URL ({out.origin}); servers route by "
                    "it, so it would be served elsewhere than judged (send it to that host's URL, without a Host "
                    "header)",
                )
            asks = wire.read(out)
            if asks.operation in CONTENT_FREE_OPERATIONS:
                _carries_nothing(out, asks.operation, place.endpoint)
            if place.shows_account:
                account = place.account
            elif asks.project is None and pairs is not None and _ACCOUNT_NAMES.isdisjoint(map(_lower_name, pairs)):
                account = place.account  # the usual request names no account: one pass in C over the header names
            else:
                account = _account(place, asks, out)
            # An app sends the same few kinds of request again and again: the verdict on one kind (where, what it
            # asks for, whose account, for whom) holds until the day changes (attestations expire). A tenant store
            # loads tenants as they come and may reload one: those verdicts are decided each time (the decision
            # itself is cached per loaded tenant).
            key = (url, asks, account, target, tenant, data_class)
            if time.time() >= self._memo_until:
                self._new_day()
            verdict = self._verdicts.get(key)
            if verdict is None:
                verdict = self._decide(out, place, asks, wire, account, binding, tenant, data_class)
                if not self._store:
                    if len(self._verdicts) >= 4096:
                        self._verdicts.clear()
                    self._verdicts[key] = verdict
            if self._own_accounts and verdict.decision.outcome == "allow":
                self._own_account(out, verdict)
            return verdict
        except _Refused as exc:
            decision = refused(self.policy, exc.label, exc.operation, tenant, data_class, exc.reason)
            return Verdict(decision, (), place, asks, wire)
        except Unreadable as exc:
            decision = refused(self.policy, out.host, "other", tenant, data_class, f"{out.host}: {exc}")
            return Verdict(decision, (), place, asks, wire)
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
            # A body of a shape no reader expects (a list where a name is due, say) must not escape as the
            # reader's own error: it is refused, recorded, and said without the exception's text (which can
            # quote the body).
            reason = f"{out.host}: privsdk could not read this request ({type(exc).__name__} on a field of an "
            reason += "unexpected type); it was not sent"
            decision = refused(self.policy, out.host, "other", tenant, data_class, reason)
            return Verdict(decision, (), place, asks, wire)
        except RecursionError:  # a body nested deeper than a reader's walk of it can go (JSON parses deeper)
            reason = f"{out.host}: privsdk could not read this request (nested too deeply); it was not sent"
            decision = refused(self.policy, out.host, "other", tenant, data_class, reason)
            return Verdict(decision, (), place, asks, wire)

    def _own_account(self, out: Outgoing, verdict: Verdict) -> None:
        """Refuse ``out`` when it would run on another account than the one its attestations speak of
        (:mod:`privsdk.outbound.own_credentials`): its tenant has its own account at a vendor that serves it and
        ``out`` carries a key other than the tenant's credentials for it, or its tenant has none there and ``out``
        carries the key of another tenant's own account. Asked of every request, as the key a request carries is no
        part of the verdict kept for its kind."""
        name = verdict.decision.tenant
        tenant = self.policy.tenants.get(name or "")
        # Here, not at the top: only a policy whose tenants may have credentials of their own needs it.
        from privsdk.outbound.own_credentials import foreign, learn, own_keys, owner, owns

        if tenant is not None and tenant.credentials:
            learn(self._key_owners, tenant, self._environ)
        for target in verdict.targets:
            offering = self.catalogue.offering(target.offering)
            # The account's vendor, whose attestations allowed it: Azure's for a Cohere model on Azure AI Foundry.
            vendor = offering.account_vendor if offering is not None else target.offering.partition(".")[0]
            if tenant is not None and owns(tenant, vendor):
                if foreign(out, *own_keys(tenant, vendor, self._environ)):
                    raise _Refused(
                        target.name,
                        verdict.decision.operation,
                        f"tenant {tenant.name!r} has its own {vendor} account (its credentials), and the request "
                        "carries another key than its own for it, or none: sent so, it would run on another account "
                        "than the tenant's attestations speak of (send it with the tenant's own key, as "
                        "privsdk.Client does, or build the SDK client with that key)",
                    )
                continue
            found = owner(self._key_owners, out) if self._key_owners else None
            if found is not None:
                judged = f"tenant {name!r}" if name else "no tenant"
                raise _Refused(
                    target.name,
                    verdict.decision.operation,
                    f"the request carries a key of tenant {found!r} (its credentials, for an account of its own) and "
                    f"is judged for {judged}, which has no {vendor} account of its own: sent so, it would run on the "
                    f"account of tenant {found!r}, which the attestations it was allowed on do not speak of (send it "
                    f"with the deployment's own key, a key no tenant's credentials name, or in "
                    f"privsdk.scope(tenant={found!r}))",
                )

    def _new_day(self) -> None:
        """Forget the verdicts of a day gone by: the next UTC midnight ends today's."""
        self._verdicts, self._memo_until = {}, next_utc_midnight(time.time())

    def _decide(
        self,
        out: Outgoing,
        place: Place,
        asks: Asks,
        wire: WireReader,
        account: str | None,
        binding: Binding | None,
        tenant: str | None,
        data_class: str | None,
    ) -> Verdict:
        targets = self._targets_for(place, asks, out, binding.target if binding else None, account)
        decision = decide_request(
            self.policy,
            self.catalogue,
            targets,
            asks.operation,
            tenant=tenant,
            data_class=data_class,
            features=asks.features,
        )
        if not decision.allowed and binding is None:
            decision = self._reroute(decision, asks)
        return Verdict(decision, targets, place, asks, wire)

    def _reroute(self, decision: Decision, asks: Asks) -> Decision:
        """For a tenant that reroutes: the refusal turned into a reroute to its first alternative whose own
        decision, for this operation and these features, is allow; else the refusal, saying why."""
        tenant = self.policy.tenants.get(decision.tenant)
        if tenant is None or tenant.on_violation != "reroute":
            return decision
        alternatives = reroute_list(self.policy, self.catalogue, tenant, decision.target)
        for alt in alternatives:
            own = decide(
                self.policy,
                alt,
                asks.operation,
                tenant=tenant.name,
                data_class=decision.data_class,
                features=asks.features,
                catalogue=self.catalogue,
            )
            if own.outcome == "allow":
                return decision._replace(
                    outcome="reroute",
                    chosen=alt,
                    reason=f"{decision.reason}; rerouted to {alt}",
                    chosen_evaluation=own.evaluation,
                )
        why = f"no compliant alternative among {', '.join(alternatives)}" if alternatives else "no reroute list"
        return decision._replace(reason=f"{decision.reason}; {why}")

    def _where(self, key: tuple[object, ...], out: Outgoing) -> tuple[Place, WireReader, bytes]:
        """Where ``out`` goes, the reader of its protocol and the Host header httpx sends for its URL, kept per ``key``
        (seam, method, scheme, host, port, path): an app sends to a few URLs again and again, and placing one walks
        the declared endpoints and host patterns. :meth:`judge` looks ``key`` up itself and calls this for a URL it
        has not seen."""
        place = self.place(out)
        name = out.host.encode()
        host = name if out.port is None else b"%s:%d" % (name, out.port)
        wire = reader(protocol_of(place.offerings, out.sdk))
        prefix = urlsplit(place.endpoint).path.rstrip("/") if place.declared else ""
        if prefix:  # a gateway's prefix, perhaps: what follows it is the vendor's route
            wire = AfterDeclaredPrefix(wire, prefix)
        found = (place, wire, host)
        if len(self._places) >= 4096:  # paths that carry ids (files, batches) must not grow it without bound
            self._places.clear()
        self._places[key] = found
        return found

    def place(self, out: Outgoing) -> Place:
        """Where ``out`` goes; raises :class:`_Refused` for a host neither the policy nor the catalogue knows."""
        origin = out.origin
        declared = declared_place(self.policy.endpoints, origin, out.path)
        known = catalogue_place(self.catalogue, out.scheme, out.host, origin)
        if declared is not None and known is not None:  # a target's own vendor endpoint: the host still shows where
            if declared.account is not None and known.account is not None and declared.account != known.account:
                raise _Refused(
                    out.host,
                    "other",
                    f"{declared.endpoint} is declared for account {declared.account!r}, and its host names account "
                    f"{known.account!r} (an Azure resource): declare it without @ACCOUNT, or for {known.account!r}",
                )
            declared = declared._replace(
                geography=known.geography,
                shows_geography=known.shows_geography,
                region=known.region,
                region_kind=known.region_kind,
                account=known.account or declared.account,
                shows_account=known.shows_account,
            )
        elif declared is None and known is None:
            raise _Refused(out.host, "other", unplaced(self.policy.endpoints, out.scheme, out.host, out.port, out.path))
        place = declared or known
        assert place is not None
        _check_path(out.path, origin, out.host)
        if declared is not None:
            # Servers and gateways route on the path as they read it: decoded (an ASGI server's scope["path"]:
            # "/openai%2Fv1" is "/openai/v1"), and some without case ("/OpenAI/v1" is "/openai/v1" to ASP.NET
            # Core). A path that falls under another declared endpoint as the most lenient of them reads it than
            # as sent may be served elsewhere than judged. Once per URL: places are kept (_where).
            lenient = declared_place(self.policy.endpoints, origin, out.path, as_lenient_servers_route)
            if lenient is None or lenient.endpoint != declared.endpoint:
                raise _Refused(
                    out.host,
                    "other",
                    f"the request's path to {origin}, read as a server may route it (%-escapes decoded, letters "
                    f"in either case), falls under another declared endpoint than {declared.endpoint} (send the "
                    "path as the endpoint is declared, without escapes)",
                )
        return place

    def targets(self, place: Place, asks: Asks, out: Outgoing, bound: Target | None) -> tuple[Target, ...]:
        """The targets ``asks`` reaches at ``place``: every offering the request may be served by, narrowed by
        its model. With ``bound`` (a Client attempt), the request must agree with that target."""
        return self._targets_for(place, asks, out, bound, _account(place, asks, out))

    def _targets_for(
        self, place: Place, asks: Asks, out: Outgoing, bound: Target | None, account: str | None
    ) -> tuple[Target, ...]:
        model = asks.deployment or asks.model
        geography, shows = place.geography, place.shows_geography
        if asks.location is not None and place.region != asks.location:
            # A Vertex path (locations/X) or a Bedrock request (the Region it is signed for, its model ARN's) names
            # where the vendor serves it, as a label of the vendor's own kind (a GCP location, an AWS Region).
            kind = region_kind(self.catalogue, place.offerings[0])
            named = _geography(kind, asks.location) if kind else None
            if place.region_kind:  # the host names a region too: where the two disagree, neither is sure
                geography = geography if geography == named else None
            elif place.declared and kind:  # a gateway or private endpoint shows none: the request's is where it goes
                geography, shows = named, True
        observed = {"account": account, "geography": geography, "shows_geography": shows}
        if bound is not None:
            if bound.offering not in place.offerings:
                raise _Refused(
                    bound.name,
                    asks.operation,
                    f"the request for target {bound.name!r} ({bound.offering}) goes to {place.endpoint}, which "
                    f"serves {', '.join(place.offerings)}",
                )
            if model is not None and model not in (bound.model, bound.deployment, _model_key(self.catalogue, bound)):
                raise _Refused(
                    bound.name,
                    asks.operation,
                    f"the request names model {shown_model(model)}, target {bound.name!r} is another",
                )
            region = place.region or asks.location
            if bound.region is not None and region is not None and bound.region != region:
                raise _Refused(
                    bound.name,
                    asks.operation,
                    f"the request for target {bound.name!r} goes to region {region}, the target names {bound.region} "
                    "(set the SDK's region, or the target's, to the one it is for)",
                )
            return (bound._replace(**observed),)  # type: ignore[arg-type]
        # An Azure deployment in the path decides what runs, whatever model the body names: the model family is
        # read from the deployment's name, or from the configured target that names the deployment. A deployment
        # whose name its reader says is no model's (a Vertex AI endpoint's ID, chosen by its owner) is judged
        # through that target alone: read as a model name, "gemini-..." would pass for Google's own models.
        offerings = [o for o in (self.catalogue.offering(i) for i in place.offerings) if o is not None]
        if model is not None:
            by_name = asks.deployment is None or getattr(asks, "deployment_names_model", True)
            serving = [
                o
                for o in offerings
                if (by_name and o.serves_model(model))
                or (asks.deployment is not None and self._configured(o.id, place, asks, account) is not None)
            ]
            if not serving:
                # The catalogue's reasons quote the model: only one that looks like a model id.
                why = next((w for o in offerings if (w := o.unserved(model)) is not None), None) if by_name else None
                why = why if model_label(model) is model else None
                if why is not None:  # an id the catalogue knows to refuse (a fine-tuned model), and why
                    raise _Refused(out.host, asks.operation, f"{why} (at {place.endpoint})")
                names = ", ".join(o.id for o in offerings)
                shown = shown_model(model)
                fix = f" (name it in a target: deployment = {shown})" if asks.deployment is not None else ""
                what = "unknown model family" if by_name else "a deployment whose name tells no model:"
                raise _Refused(out.host, asks.operation, f"{what} {shown} at {place.endpoint} ({names}){fix}")
            offerings = serving
        found = []
        for offering in offerings:
            configured = self._configured(offering.id, place, asks, account)
            if configured is not None:
                found.append(configured._replace(**observed))  # type: ignore[arg-type]
                continue
            vendor = self.catalogue.vendor(offering.vendor)
            prefix = offering.vendor if vendor and vendor.default_offering == offering.id else offering.id
            found.append(
                Target(
                    name=f"{prefix}/{model_label(model)}" if model else prefix,
                    offering=offering.id,
                    model=model or "",
                    endpoint=place.endpoint if place.declared else None,
                    deployment=asks.deployment,
                    region=place.region,
                    **observed,  # type: ignore[arg-type]
                )
            )
        if not found:
            raise _Refused(out.host, asks.operation, f"no offering at {place.endpoint} serves this request")
        return tuple(found)

    def _configured(self, offering: str, place: Place, asks: Asks, account: str | None) -> Target | None:
        """The policy's target for this offering, endpoint, account, region and model, when exactly one matches.

        A target's attestations hold for what it names and nothing else: a request for another model, another
        account (an OpenAI or Google Cloud project, an Azure resource) or another region than the target's is not
        that target, and is judged as the catalogue has it. Where the request shows an account (an Azure resource in
        its host, a Google Cloud project in its path, an OpenAI project or organisation header) or a region, and
        the target names none, which it is for cannot be told: it is not that target either.
        """
        region = place.region or asks.location
        # A deployment is named by the target, or is its model; an endpoint whose name tells no model (a Vertex AI
        # endpoint's ID, chosen by its owner) only by a target that names it: "gemini-flash-latest" may serve anything.
        by_model = getattr(asks, "deployment_names_model", True)
        matches = [
            t
            for t in self.policy.targets.values()
            if t.offering == offering
            and (t.endpoint.rstrip("/") == place.endpoint if t.endpoint else not place.shows_account)
            # None for both: neither names an account. One the host shows (an Azure resource) is the endpoint's.
            and (t.project == account or (place.shows_account and t.project is None))
            and (t.region == region if region is not None else True)
            and (
                asks.deployment == (t.deployment or (t.model if by_model else None))
                if asks.deployment is not None
                else asks.model is None or asks.model in (t.model, t.deployment)
            )
        ]
        return matches[0] if len(matches) == 1 else None


#: SDKs that speak their vendor's own wire protocol at any host that serves it: the cohere SDK sends Cohere's
#: API to an Azure AI Foundry or SageMaker deployment, the mistralai SDK Mistral's to an Azure one, where the
#: host's first offering would name another protocol.
_SDK_VENDOR = {"cohere": "cohere", "mistralai": "mistral"}


def protocols_at(offerings: tuple[str, ...]) -> dict[str, str]:
    """The wire protocols a request to a host serving ``offerings`` may speak, each with the first SDK that sends
    it: more than one where the host serves several vendors' APIs (an Azure AI Foundry resource)."""
    found: dict[str, str] = {}
    for sdk in SDKS:
        found.setdefault(protocol_of(offerings, sdk), sdk)
    return found


def protocol_of(offerings: tuple[str, ...], sdk: str) -> str:
    """The wire protocol of a request the ``sdk`` seam sends to a host serving ``offerings``. ``sdk`` names several
    SDKs joined by ``+`` for an httpx client their clients share (:func:`privsdk.outbound.transport.guard_httpx`):
    where they speak different protocols to the host, which one sent a request cannot be told, and it is refused."""
    if "+" in sdk:
        sdks = sdk.split("+")
        protocols = {protocol_of(offerings, one) for one in sdks}
        if len(protocols) > 1:
            raise Unreadable(
                f"the httpx client that sent this request is shared by {' and '.join(sdks)} clients, which speak "
                "different protocols to this host, so privsdk cannot tell which protocol to read (give each SDK "
                "client an httpx client of its own)"
            )
        return protocols.pop()
    vendor = _SDK_VENDOR.get(sdk)
    offering = next((o for o in offerings if o.partition(".")[0] == vendor), offerings[0])
    return PROTOCOLS.get(offering) or PROTOCOLS[offering.partition(".")[0]]


#: A %-escape of a sign RFC 3986 leaves unreserved (letters, digits, "-", ".", "_", "~").
_PLAIN_ESCAPE = re.compile(r"%(?:[46][1-9A-Fa-f]|[57][0-9Aa]|3[0-9]|2[DEde]|5[Ff]|7[Ee])")


def _check_path(path: str, origin: str, host: str) -> None:
    """Refuse a path that a server may resolve to another path than the one judged, past the prefix a declared
    endpoint was matched on: an empty segment ("//": nginx merges slashes by default), or a dot segment (RFC 3986)
    once decoded as servers decode it: "%2F" or "\\" that splits a segment (Windows and some gateways take "\\"
    for "/"); and any ";" or %-escape of a plain sign ("%2e%2e", "..;x", "%6Aobs")."""
    if ";" in path or ("%" in path and _PLAIN_ESCAPE.search(path)):
        # No SDK writes either: a ";" parameter, which Tomcat and Spring drop, or a %-escape of a letter, digit or
        # "-._~", which RFC 3986 makes the same path as the plain sign. A reader matches the path as sent, a server
        # routes it as it reads it: "/v1/batch/%6Aobs" is "/v1/batch/jobs" to it.
        raise _Refused(
            host,
            "other",
            f"the request's path to {origin} holds a ';' or a %-escape of a plain sign, which a server may read as "
            "another path than the one judged (send the path as the SDK writes it)",
        )
    decoded = unquote(path).replace("\\", "/") if "%" in path or "\\" in path else path
    bad = "//" in decoded or ("." in decoded and any(part in (".", "..") for part in decoded.split("/")))
    if bad:
        raise _Refused(
            host,
            "other",
            f"the request's path to {origin} has an empty, '.' or '..' segment (once decoded), which a server may "
            "resolve to another path than the one judged (send the path without it: a base URL ending in '/' is a "
            "common cause)",
        )


class Verdict(NamedTuple):
    """A decision on one request, with what it was made for: the targets (offering, account, geography the
    request showed), where it goes, and what it asks for (None where the guard could not tell)."""

    decision: Decision
    targets: tuple[Target, ...]
    place: Place | None
    asks: Asks | None
    wire: WireReader | None


class _Refused(Exception):
    """Internal: the request cannot be judged at all (unknown host, model, or a disagreement with its target)."""

    def __init__(self, label: str, operation: str, reason: str):
        super().__init__(reason)
        self.label, self.operation, self.reason = label, operation, reason


def _model_key(catalogue: Catalogue, target: Target) -> str | None:
    """The model id the target's requests name: the id inside a model ARN, else the model itself."""
    offering = catalogue.offering(target.offering)
    return offering.model_key(target.model) if offering is not None else None


_HOST = b"host"
#: What a listing's path holds: names and ids, never text (a space, a control character).
_NAMES_ONLY = re.compile(r"[!-~]*")
#: The query parameters the SDKs' model listings send (Azure's API version; Cohere's, Mistral's and Google's paging
#: and filters; boto3's for Bedrock's model and inference-profile listings), compared in lower case: any other (an
#: app's ``extra_query``) is no listing's, and could carry text.
_LISTING_PARAMETERS = KEY_PARAMETERS | frozenset(
    {
        "api-version", "page_size", "page_token", "endpoint", "default_only", "provider", "model", "pagesize",
        "pagetoken", "filter", "querybase",
        "maxresults", "nexttoken", "byprovider", "bycustomizationtype", "byoutputmodality", "byinferencetype",
        "typeequals", "type", "sortby", "sortorder", "creationtimeafter", "creationtimebefore", "namecontains",
        "basemodelarnequals", "foundationmodelarnequals", "isowned", "modelstatus", "createdafter", "createdbefore",
        "modelarnequals", "modelsourceidentifier", "offertype", "statusequals",
    }
)  # fmt: skip
#: Bedrock's page tokens run to 2,048 characters, percent-encoded longer.
_MAX_LISTING_QUERY = 8192


def _carries_nothing(out: Outgoing, operation: str, endpoint: str) -> None:
    """Refuse a request of an operation exempt from every requirement because it carries nothing (a model listing)
    when it carries something after all: a body, or text in its path or query, would go out unread."""
    if out.body:
        why = f"carries a body ({len(out.body)} bytes), which none sends"
    elif not _NAMES_ONLY.fullmatch(unquote(out.path)) or (
        out.query and not (len(out.query) <= _MAX_LISTING_QUERY and query_names_in(out.query, _LISTING_PARAMETERS))
    ):
        why = "carries in its URL what no SDK's listing sends (a space or control character in its path, a query "
        why += f"parameter other than paging, filters and keys, or a query over {_MAX_LISTING_QUERY} bytes)"
    else:
        return
    raise _Refused(
        out.host,
        operation,
        f"a {operation} request to {endpoint} {why}: it would go out unread (a listing sends names)",
    )


def _names_another_host(out: Outgoing) -> bool:
    """True when the request carries a Host header for another host than its URL's (or more than one): a server,
    gateway or proxy routes by it, so the request would be judged for one host and served by another."""
    pairs = getattr(out.headers, "_list", None)
    # Guard.judge has passed over httpx's own Host header for the URL, first of the list. A second Host header never
    # leaves: h11 refuses to send one ("Found multiple Host: headers").
    if pairs is None:  # a mapping (botocore's): one value at most
        value = out.headers.get("host") or out.headers.get("Host")
        values = [value.encode("latin-1") if isinstance(value, str) else value] if value else []
    else:
        values = [v for _, name, v in pairs if name == _HOST]
    if not values:
        return False
    if len(values) > 1:
        return True
    text = values[0].decode("latin-1").lower()
    if text.startswith("["):  # an IPv6 address, [::1] or [::1]:8000
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest
    else:
        host, _, port = text.partition(":")
    if port and not port.isdigit():
        return True
    default = {"https": 443, "http": 80}.get(out.scheme)
    return dns_name(host) != dns_name(out.host.strip("[]")) or (int(port) if port else default) != (out.port or default)


_ACCOUNT_HEADERS = (b"openai-project", b"openai-organization")
_ACCOUNT_NAMES = frozenset(_ACCOUNT_HEADERS)
_lower_name = operator.itemgetter(1)


def _account(place: Place, asks: Asks, out: Outgoing) -> str | None:
    """Whose account the request is for.

    A host that names one (an Azure resource) is that account, whatever the request carries. Otherwise it is
    the one the request names: its path's Google Cloud project, else (at an OpenAI API endpoint only) its
    ``OpenAI-Project`` header, else its ``OpenAI-Organization``; else a declared endpoint's (``=OFFERING@ACCOUNT``,
    for a proxy that adds the account itself). A request that names another account than its declared endpoint
    disagrees with it: it is refused. So is one whose OpenAI header holds the other kind's id (an ``org-`` id as
    its project, a ``proj_`` id as its organisation): a scope names one kind of account, and must not be met by
    the other header.
    """
    if place.shows_account:
        return place.account
    named = asks.project
    # Only OpenAI's API reads these headers as an account: an Azure gateway's or a Vertex request's account is
    # never an OpenAI header (the openai SDK sends them to Azure too).
    if named is None and any(o.startswith("openai.") for o in place.offerings):
        headers = out.headers
        pairs = getattr(headers, "_list", None)
        if pairs is None:
            named = headers.get("openai-project") or headers.get("openai-organization") or None
        # httpx's Headers keep (name, lower-case name, value) bytes, and its own lookups decode every header each
        # time (2.5 µs for these two, a fifth of the guard); most requests name no account, which one pass in C
        # over the lower-case names tells.
        elif not _ACCOUNT_NAMES.isdisjoint(map(_lower_name, pairs)):
            for wanted in _ACCOUNT_HEADERS:
                # A header given twice is joined as httpx joins it, and so names no account an attestation matches.
                value = b", ".join(v for _, name, v in pairs if name == wanted).decode("latin-1")
                if value:
                    named = value
                    break
        if named is not None:
            _check_openai_account(named, headers, out, asks)
    if named is None:
        return place.account
    if place.account is not None and named != place.account:
        raise _Refused(
            out.host,
            asks.operation,
            f"the request names account {named!r}, and {place.endpoint} is declared for account "
            f"{place.account!r} (declare the endpoint for the account the app sends, or send that one)",
        )
    return named


def _check_openai_account(named: str, headers: Mapping[str, str], out: Outgoing, asks: Asks) -> None:
    """Refuse a request whose OpenAI account header holds the other kind's id: ``named`` came from OpenAI-Project
    when that header is there, else from OpenAI-Organization."""
    project = bool(headers.get("openai-project"))
    wrong = named.startswith("org-") if project else named.startswith("proj_")
    if wrong:
        header, kind = ("OpenAI-Project", "an organisation id") if project else ("OpenAI-Organization", "a project id")
        raise _Refused(
            out.host,
            asks.operation,
            f"the request's {header} header holds {kind}, so privsdk cannot tell whose account it is for "
            "(send the project id, proj_..., as the project and the organisation id, org-..., as the organization)",
        )


class Pass:
    """An allowed request on its way: call :meth:`finish` once when its answer has ended (or failed)."""

    __slots__ = (
        "__weakref__", "_out", "attempt", "body", "call", "decision", "done", "first", "guard", "held", "record",
        "started", "t0", "verdict", "wait",
    )  # fmt: skip
    #: How long the SDK waits for the answer (seconds), on a rerouted request's Pass alone, where its seam can tell
    #: (:func:`privsdk.outbound.reroute.read_timeout`): the alternative must answer within it.
    wait: float | None

    def __init__(self, guard: Guard, verdict: Verdict, out: Outgoing, record: bool):
        self.guard, self.verdict, self.decision, self._out = guard, verdict, verdict.decision, out
        self.record = record
        self.done = False
        self.body: weakref.ref[_Pending] | None = None  # the answer's body, once it comes (hold)
        self.held: weakref.ref[_Pending] | None = None
        # Only a request that will be recorded needs the clocks (its record's time and latency start here), and
        # the SDK call it is an attempt of.
        if record:
            self.started, self.t0 = time.time(), time.perf_counter()
            self.attempt, self.call = _attempt_of(out)
            tags = context.current().tags
            if tags:  # a scope's tags (checked as the scope began) go on the record, as on a Client call's
                call = self.call = self.call or _SdkCall()
                call.tags = check_tags(tags)
            self.first: float | None = None  # seconds to a stream's first chunk (first_chunk)
            # Held by the recorder until its record is queued: a recorder that closes first (a guard's close,
            # interpreter exit with a daemon thread mid-request) has it end its record then (_abandoned).
            self.held = (guard._recorder or guard.recorder).hold(self)

    def meter(self, status: int, headers: Mapping[str, str]) -> Meter | None:
        """A meter for the answer's body (None when this protocol cannot count this answer's tokens)."""
        verdict = self.verdict
        assert verdict.wire is not None and verdict.asks is not None
        return verdict.wire.meter(self._out, verdict.asks, status, headers)

    def hold(self, body: _Pending) -> None:
        """``body`` is this request's answer: should the recorder close while it is open, it ends the record with
        what it has read (``body._abandoned()``). At interpreter exit, a stream the app keeps in a module global
        would otherwise be recorded only when collected, after the recorder had closed, and be lost."""
        if self.record:
            self.body = weakref.ref(body)

    def _abandoned(self) -> None:
        """The recorder is closing with this request unrecorded: its body ends the record if it has come, else the
        request is recorded as cancelled (its answer has not come, and will not be recorded when it does). A
        request being rerouted is the privsdk.Client's to record, as the Client call that serves it."""
        if self.decision.outcome == "reroute" and not self.done:
            if self.held is not None:
                (self.guard._recorder or self.guard.recorder).let_go(self.held)
            return
        body = self.body() if self.body is not None else None
        if body is not None:
            body._abandoned()
        else:
            self.answered(None, None, None, early=True)

    def first_chunk(self) -> None:
        """Note the time to the first chunk of the answer's body, when the request asked for a stream: the seam calls
        this once, as that chunk passes (one clock read per stream)."""
        asks = self.verdict.asks
        if asks is not None and asks.operation == "stream":
            self.first = time.perf_counter() - self.t0

    def refused(self, decision: Decision) -> None:
        """Record that the request was not sent, on ``decision`` (a reroute, or the refusal it turned into)."""
        if self.done:
            return
        self.done = True
        if self.record:
            self.guard._record_unsent(decision, self.verdict.targets, self.started)
            if self.held is not None:
                (self.guard._recorder or self.guard.recorder).let_go(self.held)

    def refuse(self, reason: str) -> PolicyViolation:
        """Refuse this allowed request after all, for ``reason`` its seam found on the way (it would go through a
        proxy that reads it): recorded as refused, like any refusal; returns the PolicyViolation to raise."""
        decision = self.decision._replace(outcome="refuse", chosen=None, chosen_evaluation=None, reason=reason)
        self.refused(decision)
        return PolicyViolation(decision)

    def finish(
        self,
        status: int | None,
        tokens: tuple[int | None, int | None] = (None, None),
        exc: BaseException | None = None,
    ) -> None:
        """Record the request's outcome: its HTTP status, token counts, or the exception that ended it."""
        self.answered(status, None, None, tokens=tokens, exc=exc)

    def answered(
        self,
        status: int | None,
        meter: Meter | None,
        chunks: Sequence[bytes] | None,
        early: bool = False,
        tokens: tuple[int | None, int | None] = (None, None),
        exc: BaseException | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Record the request whose answer has ended (``early``: was let go of before its last byte), with what
        its meter counts in the answer's ``chunks`` (those it has not been fed yet), or the ``tokens`` counted.

        The meter (``meter``, else the one :meth:`meter` builds for the answer's ``headers``) reads the chunks in
        the writer thread, as it builds the record: on the call path, between two SDK calls, reading an answer for
        its counts cost more than deciding on its request (docs/performance.md). The chunks stay in memory until
        then (a batch's ``linger``), and nothing of them but the counts leaves.
        """
        if self.done:
            return
        self.done = True
        if self.record:
            latency = time.perf_counter() - self.t0
            # The writer keeps this Pass until it builds the record: not the request's body (the prompt), which a
            # meter never reads.
            self._out = tuple.__new__(Outgoing, (*self._out[:8], b""))
            guard = self.guard  # its recorder is open: this request is recorded (the property is a Python call)
            recorder = guard._recorder or guard.recorder
            recorder.record_later(self._built, status, latency, tokens, exc, meter, chunks, early, headers)
            if self.held is not None:  # queued: a recorder closing meanwhile need not wait for this record
                recorder.let_go(self.held)

    def _built(
        self,
        status: int | None,
        latency: float,
        tokens: tuple[int | None, int | None],
        exc: BaseException | None,
        meter: Meter | None,
        chunks: Sequence[bytes] | None,
        early: bool,
        headers: Mapping[str, str] | None,
    ) -> UsageRecord:
        """The request's record, built by the recorder's writer thread (off the call path)."""
        try:
            if meter is None and chunks and status is not None and headers is not None:
                meter = self.meter(status, headers)
            if meter is not None:
                for chunk in chunks or ():
                    meter.feed(chunk)
                tokens, exc = answer_end(meter, early, exc)
            elif early:
                exc = GeneratorExit()
        except Exception:  # meters never raise; one that did would cost the counts, never the record
            exc = GeneratorExit() if early else exc
        outcome: Literal["ok", "error", "cancelled"]
        kind: str | None
        if status is not None and status >= 400:
            # An error answer is an error of its status however it ends: the SDK closes it unread to retry (which
            # lets it go as a GeneratorExit), or reading its body fails.
            outcome, kind = "error", error_for_status(status).kind
        elif exc is not None:
            outcome = "error" if isinstance(exc, Exception) else "cancelled"
            # A cancelled attempt has no error class, as the Client records one.
            kind = (getattr(exc, "kind", None) or _kind_of(exc)) if outcome == "error" else None
        else:
            outcome, kind = "ok", None
        return attempt_record(
            self.decision, self.call, self.verdict.targets[0], self.decision.chosen, self.attempt, outcome, kind,
            status, self.started, latency, tokens[0], tokens[1], self.first,
        )  # fmt: skip


class _SdkCall:
    """What the records of one SDK call's attempts share: a request id, drawn when the first is built."""

    # Class defaults, not an __init__: one is made for every recorded request, and a Python __init__ is one more
    # Python call on the guard's path.
    request_id: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    #: The last attempt number a rerouted attempt of the call was recorded with (:meth:`Rerouted.recorded_as`).
    rerouted_attempts = 0


class Rerouted(Decision):
    """The guard's reroute decision on one request: a copy of its verdict's (which every request of its kind shares)
    that says which attempt of which SDK call the request is (:func:`_attempt_of`).

    The :class:`privsdk.Client` call that serves the request takes this decision as its own (``rerouting``), and so
    the writer, building its records, finds it (:func:`privsdk.usage.record.attempt_record`): they are recorded as
    attempts of the SDK's call, so that the SDK's retries of a rerouted request (openai's, after the alternative
    answered 429) are attempts of one call, as they are of a request sent where the SDK sent it, not one call each.
    """

    # Class defaults: a copy that _replace makes (the refusal of a reroute the alternative cannot serve) serves no
    # call. Set per request by serving(), and read and written by the writer thread alone, one record at a time.
    sdk_call: _SdkCall | None = None
    sdk_attempt = 1
    base: int | None = None  # the record attempt number before this request's first (drawn with its first record)

    @classmethod
    def serving(cls, decision: Decision, call: _SdkCall, attempt: int) -> Rerouted:
        rerouted = cls._make(decision)
        rerouted.sdk_call, rerouted.sdk_attempt = call, attempt
        return rerouted

    def recorded_as(self, call: CallIds, attempt: int) -> tuple[CallIds, int]:
        """The (call, attempt number) to record the Client's attempt ``attempt`` of ``call`` with, which serves this
        request: the SDK call's, and its attempt number counted on from the SDK call's attempts before this request
        (the Client makes one attempt at each alternative, so one rerouted request may be more than one attempt). A
        refusal (attempt 0) made no attempt. Called by the writer, which builds records in the order they came."""
        sdk = self.sdk_call
        if sdk is None:
            return call, attempt
        if attempt == 0:
            return sdk, 0
        if self.base is None:
            self.base = max(self.sdk_attempt - 1, sdk.rerouted_attempts)
        attempt += self.base
        sdk.rerouted_attempts = max(sdk.rerouted_attempts, attempt)
        return sdk, attempt


#: The last SDK call sent in this thread or task, and its URL: where a retry of it finds the call it belongs to.
_last_call: contextvars.ContextVar[tuple[tuple[object, ...], _SdkCall] | None] = contextvars.ContextVar(
    "privsdk_last_call", default=None
)


#: The header in which openai says which attempt of a call a request is (0 for the first).
_RETRY_COUNT = b"x-stainless-retry-count"


def _attempt_of(out: Outgoing) -> tuple[int, _SdkCall | None]:
    """Which attempt of which SDK call ``out`` is.

    The openai SDK (``x-stainless-retry-count``) and botocore (``amz-sdk-request: attempt=N``) say on the wire
    which attempt a request is; an SDK retries in the thread or task that sent the first attempt, to the same
    URL, so a retry belongs to the call last sent there. A request of an SDK that says nothing (cohere,
    mistralai, google-genai) is the first attempt of a call of its own (no call: its record draws its own id).
    """
    sdk = out.sdk
    if sdk == "openai":
        pairs = getattr(out.headers, "_list", ())  # httpx's raw (name, lower-case name, value) list
        try:  # found in C: a loop over a dozen headers in Python cost 2-3 µs, run cold between two SDK calls
            said = pairs[list(map(_lower_name, pairs)).index(_RETRY_COUNT)][2]
        except ValueError:
            said = b""
        attempt = int(said) + 1 if said.isdigit() else 1
    elif sdk == "boto3":  # botocore's names, lower-cased: "attempt=2; max=3"
        said_text = str(out.headers.get("amz-sdk-request") or "").partition("attempt=")[2].partition(";")[0]
        attempt = int(said_text) if said_text.isdigit() else 1
    else:
        return 1, None
    url = out[:6]
    if attempt > 1:
        last = _last_call.get()
        if last is not None and last[0] == url:
            return attempt, last[1]
    call = _SdkCall()
    _last_call.set((url, call))
    return attempt, call


def _kind_of(exc: BaseException) -> str:
    """The usage-record error class of an exception raised while sending, by the names of its type and the types it
    derives from (no transport library is imported for it): httpx's ``ReadError`` is a ``NetworkError``."""
    for cls in type(exc).__mro__:
        name = cls.__name__.lower()
        if "timeout" in name:
            return "timeout"
        if "connect" in name or "protocol" in name or "network" in name or "closed" in name:
            return "connection_lost"
    return "other"


def _after_fork_in_child() -> None:
    """Fresh locks for the guards of a forked child: a lock another thread of the parent held at the fork (building
    the process-wide guard, opening a guard's recorder) stays held in the child, where no thread will release it, and
    the child's first request would wait for it for ever. What the locks guard was set whole or not at all (then the
    child sets it itself), as :mod:`privsdk.usage.writer` does for its recorders."""
    Guard._default_lock = threading.Lock()
    for guard in list(_GUARDS):
        guard._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
