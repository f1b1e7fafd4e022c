"""The enforcing client: decide, then send through an adapter with retries, then record.

One call goes: resolve the target, :func:`~privsdk.decision.decide`, and on
refuse raise :class:`~privsdk.errors.PolicyViolation` before any adapter is
touched. Otherwise run the call on the chosen target inside tenacity retries
(transient errors only), and when they are used up fall back to the next
target of the tenant's reroute list whose own decision is allow. Every
attempt, and every refusal, leaves one usage record.

:class:`Client` and :class:`AsyncClient` share everything but the waiting:
:class:`_Core` holds the policy, the adapters (cached per credentials and
target: tenants that use the same credentials share one SDK client, and one
tenant's own credentials never serve another) and the recorder.
"""

from __future__ import annotations

import contextvars
import functools
import math
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypedDict, TypeVar, get_args, overload

from privsdk import context, resilience
from privsdk.adapter import DEFAULT_TIMEOUT_S, Adapter, AdapterOptions, open_adapter
from privsdk.catalogue import Catalogue, default_catalogue
from privsdk.config import (
    CREDENTIAL_KEYS,
    attach_tenants,
    check_usage_path,
    load_limits,
    load_policy,
    missing_credential,
    shown_env_name,
    shown_key,
    shown_url,
    usage_max_age_days,
)
from privsdk.decision import Decision, decide, next_utc_midnight, reroute_list, resolve_target
from privsdk.errors import (
    AdapterMissing,
    ClientClosed,
    ConfigError,
    InvalidArgument,
    InvalidInput,
    PolicyViolation,
    PrivsdkError,
    Unsupported,
    VendorError,
    VendorTimeout,
)
from privsdk.messages import (
    MessageLike,
    ToolLike,
    check_json,
    check_text,
    named_tool,
    to_messages,
    to_response_format,
    to_tools,
)
from privsdk.outbound.judge import Binding, Guard, bound, rerouting
from privsdk.outbound.outgoing import shown_name
from privsdk.policy import Policy, Target
from privsdk.resilience import Budget, Cutoff, Limits, cutoff, retrying
from privsdk.streams import ChatStream
from privsdk.tenants import TenantStore
from privsdk.types import (
    MESSAGES_ONLY,
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    InputType,
    RerankRequest,
    RerankResponse,
    ResponseFormat,
    ToolChoice,
    Usage,
)
from privsdk.usage import SPEC as USAGE_SPEC
from privsdk.usage import SPEC_HINT as USAGE_SPEC_HINT
from privsdk.usage.record import UsageRecord, attempt_record
from privsdk.usage.tags import check_tags

if TYPE_CHECKING:
    from tenacity import Retrying
    from typing_extensions import Unpack

    from privsdk.tenants import TenantProvider
    from privsdk.usage import Recorder

R = TypeVar("R", ChatResponse, EmbedResponse, RerankResponse)
X = TypeVar("X")
_NO_USAGE = Usage()


#: A call's plan: its decision and the targets it may try in order, each with its own decision.
Plan = tuple[Decision, tuple[tuple[Target, Decision], ...]]


class _Call:
    """One call's plan: the decision, the targets to try in order, and what its records share."""

    __slots__ = (
        "attempts",
        "budget",
        "chain",
        "data_class",
        "decision",
        "failure",
        "operation",
        "request_id",
        "requested",
        "tags",
        "tenant",
    )

    def __init__(
        self,
        decision: Decision,
        chain: tuple[tuple[Target, Decision], ...],
        tags: tuple[tuple[str, str], ...],
        budget: Budget,
    ):
        self.decision = decision
        self.chain = chain
        self.tenant = decision.tenant
        self.data_class = decision.data_class
        self.operation = decision.operation
        self.requested = decision.target
        self.tags = tags
        self.budget = budget
        #: Drawn by the recorder's writer thread when it builds the call's first record
        #: (:func:`privsdk.usage.record.attempt_record`): the call path has no use for it.
        self.request_id: str | None = None
        self.attempts = 0  # across the whole chain: a fallback's first attempt counts as a retry
        self.failure: BaseException | None = None  # the last failed attempt's error, as recorded


class _ClientGuard(Guard):
    """A Client's guard. The sync httpx transports it guards end an attempt's answer at the attempt's bound
    (:class:`privsdk.resilience.Cutoff`, :func:`privsdk.outbound.transport.guard_httpx`): the Client's requests alone
    pay for that check."""

    cuts_answers = True


class _Core:
    """What sync and async clients share: policy, adapters per tenant, limits, the recorder."""

    def __init__(
        self,
        policy: Policy | None,
        environ: Mapping[str, str] | None,
        catalogue: Catalogue | None,
        usage: str | Callable[[UsageRecord], None] | Recorder | None,
        credentials: Mapping[str, Mapping[str, str]] | None,
        endpoints: Mapping[str, str] | None,
        timeout: float | None,
        limits: Limits | None,
        tenants: TenantStore | TenantProvider | None = None,
    ):
        from privsdk.usage import Recorder, open_recorder

        _check_arguments(policy, environ, catalogue, usage, credentials, endpoints, timeout, limits, tenants)
        env = os.environ if environ is None else environ
        self.catalogue = catalogue or default_catalogue()
        if policy is not None and tenants is not None:
            policy = attach_tenants(policy, tenants, self.catalogue, env)
        self.policy = policy or load_policy(env, self.catalogue, tenants)
        self.limits = limits or load_limits(env)
        self.timeout = DEFAULT_TIMEOUT_S if timeout is None else timeout
        self.credentials = {vendor: dict(creds) for vendor, creds in (credentials or {}).items()}
        if self.credentials:
            from privsdk.vendor_errors import header_safe, unsendable

            for vendor, creds in self.credentials.items():
                for key, value in creds.items():
                    if isinstance(value, str) and not header_safe(value):
                        raise unsendable(f"credentials[{shown_key(vendor)}][{shown_key(key)}]")
        self.endpoints = dict(endpoints or {})
        self.environ = env
        if isinstance(usage, Recorder):
            self.recorder = usage
        else:
            spec = usage if usage is not None else self.policy.usage
            try:
                self.recorder = open_recorder(spec, max_age_days=usage_max_age_days(env))
            except ConfigError as exc:  # placed where the value came from: the argument, or the variable
                where = "Client(usage=)" if usage is not None else "PRIVSDK_USAGE"
                raise ConfigError(exc.message, where=where, hint=exc.hint) from None
        # The one place requests are judged: every adapter's SDK client sends through this guard.
        self.guard = _ClientGuard(
            _with_endpoints(self.policy, self.catalogue, self.endpoints),
            catalogue=self.catalogue,
            recorder=self.recorder,
            environ=env,
        )
        #: One adapter (one SDK client) per (credentials, target): tenants with the same credentials share it.
        self._adapters: dict[tuple[tuple[tuple[str, str], ...], Target], Adapter] = {}
        #: The call path's shortcut: (tenant name, target) -> (the Tenant it was resolved for, its adapter).
        self._tenant_adapters: dict[tuple[str, Target], tuple[object, Adapter]] = {}
        self._chains: dict[int, Plan] = {}
        #: Today's plans for calls that name a target and nothing else: (target, operation, tenant, class) ->
        #: (decision, chain). A tenant store's tenants can change while the app runs: those calls plan each time.
        self._plans: dict[tuple[str, str, str | None, str | None], Plan] = {}
        self._plans_until = 0.0  # when today's plans end (the next UTC midnight); 0: none yet
        self._store = isinstance(self.policy.tenants, TenantStore)
        # Reentrant: close() may run in a signal handler amid this thread's own call, which may hold it.
        self._lock = threading.RLock()
        #: Set by close(): a call then could not leave its record, so none is decided, let alone sent.
        self.closed = False
        #: Calls in flight (between the first and the last attempt of their chain); close() waits for them, but for
        #: those of its own thread or task (``_mine``: close() called from a signal handler amid a call).
        self._calls = 0
        self._taken = False  # set when close() takes the adapters to close them: none may be built after
        self._settled = threading.Condition(self._lock)
        self._mine: contextvars.ContextVar[int] = contextvars.ContextVar("privsdk_calls_here", default=0)
        for tenant in self.policy.tenants.values():  # a missing credential variable is a construction-time error
            for vendor, _ in tenant.credentials:
                self._tenant_credentials(tenant.name, vendor)

    # -- planning ------------------------------------------------------------------------------

    def plan(self, target: str, operation: str, options: CallOptions | ChatOptions) -> _Call:
        """Decide, and on refuse record the refusal and raise, before any adapter exists."""
        if self.closed:
            raise ClientClosed
        if type(target) is not str and not isinstance(target, str):
            raise InvalidArgument(f"model must be a str, a target name or vendor/model, not {_a(target)}")
        here = context.current()
        if not options:
            # Most calls name a target and nothing else. The plan for that question changes only with the day
            # (attestations and the catalogue's age are dated), and deciding it again cost 3-4 µs a call, 10 µs as
            # timed between two SDK calls. A tenant store's tenants can change at any time: no plan of theirs is
            # kept (below), and the guard judges every request the plan leads to in any case.
            now = time.time()
            if now >= self._plans_until:
                self._plans, self._plans_until = {}, next_utc_midnight(now)
            planned = self._plans.get((target, operation, here.tenant, here.data_class))
            if planned is not None:
                return _Call(planned[0], planned[1], check_tags(here.tags), Budget(self.limits))
        features = check_options(options, operation)
        tags = options.get("tags")
        checked = check_tags({**here.tags, **tags} if tags else here.tags)
        limits = self.limits
        if "max_attempts" in options or "deadline_s" in options:
            limits = limits._replace(
                max_attempts=options.get("max_attempts") or limits.max_attempts,
                deadline_s=options.get("deadline_s") or limits.deadline_s,
            )
        extra = options.get("extra")
        if extra:
            features = (*features, *_extra_features(extra))
        decision = decide(
            self.policy,
            target,
            operation,
            tenant=here.tenant if (tenant := options.get("tenant")) is None else tenant,
            data_class=here.data_class if (data_class := options.get("data_class")) is None else data_class,
            features=features,
            catalogue=self.catalogue,
        )
        if not decision.allowed:
            refusal = PolicyViolation(decision)
            self.record(_Call(decision, (), checked, Budget(limits)), None, 0, "refused", refusal, time.time(), 0.0)
            raise refusal
        chain = self._chain(decision, features)
        if not options and not self._store:
            if len(self._plans) >= 4096:
                self._plans.clear()
            self._plans[(target, operation, here.tenant, here.data_class)] = (decision, chain)
        served = rerouting.get()
        if served is not None and served.chosen == target:
            # A drop-in's reroute this call serves: recorded as that reroute (judge.rerouting), and falling back along
            # the tenant's alternatives for the request the SDK built, not those for the alternative chosen.
            decision = served
            chain = self._chain(served, features)
        return _Call(decision, chain, checked, Budget(limits))

    def _chain(self, decision: Decision, features: Iterable[str]) -> tuple[tuple[Target, Decision], ...]:
        """The targets an allowed call may try, in order: the chosen one, then the tenant's alternatives
        whose own decision, for this very call, is allow. Cached per decision: decide() returns the same
        object for the same question on the same day, and a new one when the answer could change."""
        cached = self._chains.get(id(decision))
        if cached is not None and cached[0] is decision:
            return cached[1]
        first = decision.chosen or decision.target
        chain = [(self.target(first), decision)]
        tenant = self.policy.tenants.get(decision.tenant)  # None only if a tenant store dropped it meanwhile
        for alt in reroute_list(self.policy, self.catalogue, tenant, decision.target) if tenant is not None else ():
            if alt == first:
                continue
            own = decide(
                self.policy,
                alt,
                decision.operation,
                tenant=decision.tenant,
                data_class=decision.data_class,
                features=features,
                catalogue=self.catalogue,
            )
            if own.outcome == "allow":
                # Answered there, the call is still the one decided (its records say so): the alternative chosen.
                served = decision._replace(chosen=alt, chosen_evaluation=own.chosen_evaluation or own.evaluation)
                chain.append((self.target(alt), served))
        if len(self._chains) > 4096:
            self._chains.clear()
        self._chains[id(decision)] = (decision, tuple(chain))
        return tuple(chain)

    def target(self, name: str) -> Target:
        found = resolve_target(self.policy, self.catalogue, name)
        if isinstance(found, str):  # decide already refused such names; kept for a clear error all the same
            raise ConfigError(found)
        if found.endpoint is None:
            endpoint = self.endpoints.get(found.offering.split(".", 1)[0])
            if endpoint is not None:
                found = found._replace(endpoint=endpoint)
        return found

    def adapter(self, tenant: str, target: Target, operation: str) -> Adapter:
        """The tenant's adapter for ``target``; checks the operation before any network.

        Adapters are shared by credentials: every tenant that resolves to the same
        credentials for ``target``'s vendor (the client's, or the same own key) uses
        one SDK client; a tenant with its own credentials gets its own.
        """
        current = self.policy.tenants.get(tenant)  # a tenant store may have reloaded it since
        found = self._tenant_adapters.get((tenant, target))
        if found is not None and found[0] is current:
            adapter = found[1]
        else:
            adapter = self._shared_adapter(tenant, target, current)
        if operation not in adapter.operations:
            raise adapter.unsupported(operation)
        return adapter

    def _shared_adapter(self, tenant: str, target: Target, current: object) -> Adapter:
        vendor = target.offering.split(".", 1)[0]
        credentials = self._tenant_credentials(tenant, vendor)
        key = (tuple(sorted(credentials.items())), target)
        with self._lock:
            # Once closed, only a call already in flight may build an adapter (the fallback it moves on to): close()
            # waits for it, then closes this adapter with the others. Any other call (closed while it was being
            # planned), or one whose adapters close() has taken already (it ran amid this very call, from a signal
            # handler), would leave an adapter nobody closes.
            if self.closed and (self._taken or not self._mine.get()):
                raise ClientClosed
            adapter = self._adapters.get(key)
            if adapter is None:
                options = AdapterOptions(self.timeout, credentials, self.guard)
                adapter = self._adapters[key] = open_adapter(target, options)
                from privsdk import sdklogs  # here, not at the top: only opening an adapter needs it

                sdklogs.install()  # its SDK is imported now: keep its logs free of content
            if len(self._tenant_adapters) >= 65_536:  # bounded: entries are cheap to rebuild
                self._tenant_adapters.clear()
            self._tenant_adapters[(tenant, target)] = (current, adapter)
        return adapter

    def adapter_for(self, call: _Call, target: Target) -> Adapter:
        """:meth:`adapter` for a call; an operation or field the target cannot take is recorded, then raised."""
        try:
            return self.adapter(call.tenant, target, call.operation)
        except Unsupported as exc:
            self.record(call, target, 0, "error", exc, time.time(), 0.0)
            raise
        except Exception as exc:
            if isinstance(exc, (PrivsdkError, ImportError)):  # an ImportError names a module, and helps as it is
                raise
            # The vendor SDK's client could not be built: its message can repeat a credential given to it.
            error = ConfigError(
                f"target {target.name}: the {target.offering.split('.', 1)[0]} SDK's client could not be built "
                f"({type(exc).__name__})",
                hint="check the target's endpoint and credentials; PRIVSDK_DEBUG_CHAIN=1 shows the SDK's own message",
            )
            from privsdk.vendor_errors import raise_translated

            raise_translated(error, exc)

    def _tenant_credentials(self, tenant: str, vendor: str) -> Mapping[str, str]:
        own = dict(self.policy.tenants[tenant].credentials).get(vendor)
        if own is None:
            return self.credentials.get(vendor, {})
        out = {}
        for key, env_name in own:
            value = self.environ.get(env_name)
            if not value:  # a key pasted where a name belongs must not reach the message
                path = f"tenants.{tenant}.credentials.{vendor}.{key}"
                raise missing_credential(vendor, key, env_name, where=self.policy.origin, key_path=path, tenant=tenant)
            if not value.isascii() or not value.isprintable():
                from privsdk.vendor_errors import unsendable

                shown = shown_env_name(env_name)
                raise unsendable(f"tenant {tenant!r}: {vendor} credential {key!r}: {shown}", where=self.policy.origin)
            out[key] = value
        return out

    def through_chain(
        self, call: _Call, request: Any, controller: Retrying, attempt: Callable[..., X], *args: Any
    ) -> tuple[X, Target, Decision]:
        """``attempt(call, target, adapter, request, *args, budget=)`` on each target of the chain until one
        succeeds, each retried through ``controller`` (:func:`privsdk.resilience.call`); only transient failures,
        and what an alternative cannot carry, move on to the next target (:meth:`moved_on`). The call is in flight
        meanwhile (:meth:`begin_call`)."""
        token = self.begin_call()
        try:
            return self._through(call, request, controller, attempt, *args)
        finally:
            self.end_call(token)

    def _through(
        self, call: _Call, request: Any, controller: Retrying, attempt: Callable[..., X], *args: Any
    ) -> tuple[X, Target, Decision]:
        failure: VendorError | None = None
        passed: list[tuple[str, PrivsdkError]] = []
        for target, decision in call.chain:
            try:
                adapter = self.chain_adapter(call, target, failure)
                if adapter is None:
                    break
                result = resilience.call(
                    controller, attempt, call, target, adapter, _for_target(request, call, target), *args,
                    budget=call.budget,
                )  # fmt: skip
                return result, target, decision
            except (VendorError, Unsupported, AdapterMissing) as exc:
                failure = self.moved_on(call, target, exc, failure, passed)
        raise _chain_failure(call, failure, passed)

    def begin_call(self) -> contextvars.Token[int]:
        """A call goes out: counted, so that close() waits for it; none once the client is closed (its adapters and
        usage records are gone). The token is :meth:`end_call`'s."""
        with self._lock:
            if self.closed:
                raise ClientClosed
            self._calls += 1
        return self._mine.set(self._mine.get() + 1)

    def end_call(self, token: contextvars.Token[int]) -> None:
        self._mine.reset(token)
        with self._lock:
            self._calls -= 1
            if self.closed:
                self._settled.notify_all()

    def moved_on(
        self,
        call: _Call,
        target: Target,
        exc: VendorError | Unsupported | AdapterMissing,
        failure: VendorError | None,
        passed: list[tuple[str, PrivsdkError]],
    ) -> VendorError | None:
        """After ``exc`` ended ``target``'s turn in the chain: the call's last real failure as it moves on to the next
        target, or ``exc`` raised when it must not move on. A transient failure moves on (the target's retries are
        used up). So does an operation or field an alternative cannot carry (seed on Bedrock), or an alternative whose
        SDK is not installed: the app did not name that target, and the next may carry the call. Each target moved
        past is named on the error the call ends with (and an Unsupported, which an attempt raised, is recorded).
        Anything else, and what the target the app named cannot carry, is the app's to know."""
        if isinstance(exc, VendorError):
            passed.append((target.name, exc))
            if not exc.transient:
                raise _chain_failure(call, exc, passed)  # exc, with a note for each target tried before
            return exc
        if target.name == call.requested:
            raise exc
        passed.append((target.name, exc))
        call.failure = failure  # an attempt cut at the deadline raises the last real failure, never this
        return failure

    def chain_adapter(self, call: _Call, target: Target, failure: VendorError | None) -> Adapter | None:
        """The adapter for ``target``, the next of ``call``'s chain after ``failure`` of the one before (None for the
        first); None once the deadline has passed: no fallback is tried then (it could send nothing), and the call
        fails with ``failure``, the last real one."""
        if failure is not None:
            return self.adapter_for(call, target) if call.budget.remaining() > 0 else None
        adapter = self.adapter_for(call, target)
        # The deadline bounds the vendors' answers, so it starts once the first target's SDK client is built: a
        # process's first call imports the SDK and builds its client (from 20 ms to over a second, none of it the
        # vendor's), and would spend its deadline on that, then fail without sending anything. A fallback's client,
        # built later, is within the deadline; its attempt is then made only if time is left.
        call.budget.start()
        return adapter

    async def athrough_chain(
        self, call: _Call, request: Any, attempt: Callable[..., Awaitable[X]], *args: Any
    ) -> tuple[X, Target, Decision]:
        """:meth:`through_chain` for async calls (:func:`privsdk.resilience.acall` retries them)."""
        token = self.begin_call()
        try:
            return await self._athrough(call, request, attempt, *args)
        finally:
            self.end_call(token)

    async def _athrough(
        self, call: _Call, request: Any, attempt: Callable[..., Awaitable[X]], *args: Any
    ) -> tuple[X, Target, Decision]:
        failure: VendorError | None = None
        passed: list[tuple[str, PrivsdkError]] = []
        for target, decision in call.chain:
            try:
                adapter = self.chain_adapter(call, target, failure)
                if adapter is None:
                    break
                sent = _for_target(request, call, target)
                result = await resilience.acall(attempt, call, target, adapter, sent, *args, budget=call.budget)
                return result, target, decision
            except (VendorError, Unsupported, AdapterMissing) as exc:
                failure = self.moved_on(call, target, exc, failure, passed)
        raise _chain_failure(call, failure, passed)

    def attempt(
        self,
        call: _Call,
        target: Target,
        adapter: Adapter,
        request: Any,
        send: str,
        timeout: float | None,
        *,
        budget: Budget,
    ) -> Any:
        """One attempt of ``adapter.<send>(request)`` (``chat``, ``embed``, ``rerank``), recorded; tenacity calls it
        again while it fails transiently."""
        limit = self.attempt_timeout(call, timeout, adapter.vendor)
        call.attempts += 1
        started, t0 = time.time(), time.perf_counter()
        token = bound.set(tuple.__new__(Binding, (target, call.tenant, call.data_class)))
        # The SDK's timeout bounds each read; the answer as a whole must have come within ``limit`` too (Cutoff).
        cut = cutoff.set(Cutoff(time.monotonic() + limit))
        try:
            result = getattr(adapter, send)(request, timeout=limit)
        except BaseException as exc:
            self.attempt_failed(call, target, adapter.vendor, exc, started, t0)
        finally:
            bound.reset(token)
            cutoff.reset(cut)
        self.record(call, target, call.attempts, "ok", None, started, time.perf_counter() - t0, result.usage)
        return result

    async def aattempt(
        self,
        call: _Call,
        target: Target,
        adapter: Adapter,
        request: Any,
        send: str,
        timeout: float | None,
        *,
        budget: Budget,
    ) -> Any:
        """:meth:`attempt` for async calls (``send`` is ``achat``, ``aembed``, ``arerank``)."""
        import asyncio  # loaded already, as this runs in an event loop; not at the top, for sync-only apps

        limit = self.attempt_timeout(call, timeout, adapter.vendor)
        call.attempts += 1
        started, t0 = time.time(), time.perf_counter()
        token = bound.set(tuple.__new__(Binding, (target, call.tenant, call.data_class)))
        try:
            # The SDK's timeout bounds each read, not the answer: one that trickles in is cut here, at ``limit``
            # (its TimeoutError is a VendorTimeout, as the SDK's own timeout is).
            async with asyncio.timeout(limit):
                result = await getattr(adapter, send)(request, timeout=limit)
        except BaseException as exc:
            self.attempt_failed(call, target, adapter.vendor, exc, started, t0)
        finally:
            bound.reset(token)
        self.record(call, target, call.attempts, "ok", None, started, time.perf_counter() - t0, result.usage)
        return result

    def attempt_timeout(self, call: _Call, timeout: float | None, vendor: str) -> float:
        """The next attempt's timeout: the call's, cut to what is left of its deadline. Called before the attempt
        counts: when nothing is left (a retry's wait ended at the deadline), no attempt is made, sent or recorded,
        and the call fails with its last real failure."""
        remaining = call.budget.remaining()
        if remaining <= 0:
            raise call.failure or VendorTimeout(vendor)
        return min(self.timeout if timeout is None else timeout, remaining)

    # -- records -------------------------------------------------------------------------------

    def record(
        self,
        call: _Call,
        target: Target | None,
        attempt: int,
        outcome: Literal["ok", "refused", "error", "cancelled"],
        exc: BaseException | None,
        started: float,
        latency_s: float,
        usage: Usage = _NO_USAGE,
        first_chunk_s: float | None = None,
        decision: Decision | None = None,
    ) -> None:
        """Queue the record of one attempt of ``call`` (or of its refusal, made on ``decision`` when that is not
        the call's own)."""
        error_class = status = None
        if exc is not None and outcome != "cancelled":  # stopped by the app (Ctrl-C, a task's cancellation): no error
            from privsdk.vendor_errors import detach  # failures only: kept off the import of privsdk

            detach(exc)  # every failure passes here on its way to the app: drop the SDK exception it replaced
            error_class = getattr(exc, "kind", "other")
            # A vendor's answer has an HTTP status; a refusal has none, though the SDK error it is may have a
            # text one (google-genai's "PERMISSION_DENIED").
            status = exc.status if isinstance(exc, VendorError) else None
        # The record itself is built by the recorder's writer thread, off the call path, from these parts.
        d = decision or call.decision
        self.recorder.record_later(
            attempt_record, d, call, target, target.name if target else d.chosen, attempt, outcome, error_class,
            status, started, latency_s, usage.input_tokens, usage.output_tokens, first_chunk_s,
        )  # fmt: skip

    def attempt_failed(
        self, call: _Call, target: Target, vendor: str, exc: BaseException, started: float, t0: float
    ) -> NoReturn:
        """Record the attempt ``exc`` ended, then raise it, or in place of an exception no adapter classified, a
        content-free privsdk error. Called from the attempt's ``except`` block."""
        from privsdk.vendor_errors import contain, raise_translated  # failures only

        error = contain(exc, vendor, call.operation)
        self.record_failure(call, target, error, started, time.perf_counter() - t0)
        if error is exc:
            raise exc
        raise_translated(error, exc)

    def record_failure(
        self,
        call: _Call,
        target: Target,
        exc: BaseException,
        started: float,
        latency_s: float,
        first_chunk_s: float | None = None,
    ) -> None:
        """Record a failed attempt (or a stream that failed after its first chunk); one the app stopped (asyncio
        cancellation, Ctrl-C) is cancelled, not failed, and one the guard refused (the request the SDK built did not
        meet the policy) is a refusal."""
        call.failure = exc
        if isinstance(exc, PolicyViolation):
            self.record(call, None, 0, "refused", exc, started, latency_s, decision=exc.decision)
            return
        outcome: Literal["error", "cancelled"] = "error" if isinstance(exc, Exception) else "cancelled"
        self.record(call, target, call.attempts, outcome, exc, started, latency_s, first_chunk_s=first_chunk_s)

    def _take_adapters(self) -> list[Adapter]:
        with self._lock:
            self.closed = self._taken = True
            adapters, self._adapters = list(self._adapters.values()), {}
            self._tenant_adapters = {}
        return adapters

    def close(self) -> None:
        """Take no more calls, let those in flight end (each within its own deadline and timeouts: closing their SDK
        clients under them would fail them, and lose their records), then close the adapters and the records."""
        own = self._mine.get()  # calls this very thread is amid (a signal handler's close): never waited for
        with self._lock:
            self.closed = True
            self._settled.wait_for(lambda: self._calls <= own)
        for adapter in self._take_adapters():
            adapter.close()
        self.recorder.close()  # writes what is queued, then ends the writer thread and the store's connection

    async def aclose(self) -> None:
        """:meth:`close` for async clients: calls in flight on this event loop end while it waits."""
        import asyncio  # here: only an async client's close needs it

        own = self._mine.get()  # calls this very task is amid: never waited for
        with self._lock:
            self.closed = True
        while self._calls > own:
            await asyncio.sleep(0.005)
        for adapter in self._take_adapters():
            await adapter.aclose()
        self.recorder.close()


def _chain_failure(call: _Call, failure: VendorError | None, passed: list[tuple[str, PrivsdkError]]) -> PrivsdkError:
    """What a call whose chain is used up raises: its last real failure, with a note naming each target tried before
    it (a call that fell back says where each attempt went, not only the last) and each alternative passed over as
    unable to carry the call; else (a rerouted call whose every alternative is such) an Unsupported said of the
    target the app named, not of an alternative it never named, with the same notes."""
    error: PrivsdkError
    if failure is None:
        assert passed  # the chain is never empty, and only a failure or a skip moves past a target
        names = ", ".join(name for name, _ in passed)
        # The target as the app named it, which a reroute keeps (a tenant's reroute "*" matches any text): shown
        # only as a target name.
        error = Unsupported(
            f"{shown_name(call.requested, 'target name', quoted=False)}: {call.operation} was rerouted (the target "
            f"does not meet the policy or serve it), and no alternative can carry it ({names})"
        )
    else:
        error = failure
    several = len(passed) > 1
    for i, (name, exc) in enumerate(passed):
        if not isinstance(exc, VendorError):
            error.add_note(f"privsdk passed over the fallback {name}, which cannot carry the call: {exc}")
        elif several:  # a VendorError says only its vendor: the target is what the app and the policy name
            error.add_note(f"privsdk tried {name}: {exc}" + ("" if i == len(passed) - 1 else "; the call moved on"))
    return error


def _check_arguments(
    policy: object,
    environ: object,
    catalogue: object,
    usage: object,
    credentials: object,
    endpoints: object,
    timeout: object,
    limits: object,
    tenants: object,
) -> None:
    """Every argument of the Client's constructor of a type it cannot take is a ConfigError here, naming the
    argument and what it takes, never a Python error later (or at every call)."""
    from privsdk.usage import Recorder

    def bad(name: str, message: str, hint: str) -> ConfigError:
        return ConfigError(message, where=f"Client({name}=)", hint=hint)

    if policy is not None and not isinstance(policy, Policy):
        hint = "pass a privsdk.Policy"
        if isinstance(policy, (str, os.PathLike)):
            hint = "a policy file is named by PRIVSDK_CONFIG, or load it: privsdk.load_policy({'PRIVSDK_CONFIG': PATH})"
        raise bad("policy", f"takes a privsdk.Policy, not {_a(policy)}", hint)
    if environ is not None and not isinstance(environ, Mapping):
        raise bad("environ", f"takes a mapping of variable names to values, not {_a(environ)}", "e.g. os.environ")
    if catalogue is not None and not isinstance(catalogue, Catalogue):
        raise bad("catalogue", f"takes a privsdk.Catalogue, not {_a(catalogue)}", "or leave it out")
    if isinstance(usage, str):
        _check_usage(usage)
    elif usage is not None and not isinstance(usage, Recorder) and not callable(usage):
        raise bad(
            "usage",
            f"takes a store spec (str), a function taking each record, or a Recorder, not {_a(usage)}",
            "e.g. usage='jsonl:///var/log/privsdk.jsonl' or usage='none'",
        )
    if credentials is not None:
        _check_credentials(credentials)
    if endpoints is not None:
        if not isinstance(endpoints, Mapping):
            raise bad(
                "endpoints",
                f"takes a dict of vendor to base URL, not {_a(endpoints)}",
                'e.g. endpoints={"openai": "https://llm-proxy.internal/v1"}; for URL=OFFERING entries use '
                "PRIVSDK_ENDPOINTS",
            )
        for vendor, url in endpoints.items():
            if not isinstance(url, str):
                raise bad("endpoints", f"the URL for {shown_key(vendor)} is {_a(url)}, not a str", "")
    if timeout is not None and not _seconds(timeout):
        raise bad("timeout", f"takes seconds, a number more than 0 (got {_shown_number(timeout)})", "e.g. timeout=30")
    if limits is not None:
        if not isinstance(limits, Limits):
            raise bad("limits", f"takes a privsdk.resilience.Limits, not {_a(limits)}", "e.g. Limits(max_attempts=5)")
        _check_limits(limits)
    if tenants is not None and not isinstance(tenants, TenantStore) and not callable(tenants):
        hint = "pass a TenantStore, or a provider (a function taking a tenant's name)"
        if isinstance(tenants, str):
            hint = "for a store spec use privsdk.tenants.parse_tenants_spec(SPEC), or set PRIVSDK_TENANTS"
        raise bad("tenants", f"takes a TenantStore or a provider, not {_a(tenants)}", hint)


#: What each field of :class:`Limits` must be: field -> (check, what it takes). A wait or a cap below 0 would crash the
#: first retry's sleep, and nan compares false with everything: a nan deadline would never let a retry run. (Lambdas:
#: the checks are defined further down.)
_LIMITS_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "max_attempts": (lambda v: _is_count(v), "a whole number, 1 or more"),
    "deadline_s": (lambda v: _seconds(v), "seconds, a finite number more than 0"),
    "backoff_base_s": (lambda v: _is_finite(v) and v >= 0, "seconds, a finite number, 0 or more"),
    "backoff_cap_s": (lambda v: _is_finite(v) and v >= 0, "seconds, a finite number, 0 or more"),
    "retry_after_cap_s": (lambda v: _is_finite(v) and v >= 0, "seconds, a finite number, 0 or more"),
}
assert set(_LIMITS_CHECKS) == set(Limits._fields)


def _check_limits(limits: Limits) -> None:
    """Each field of the constructor's ``limits`` the retries cannot run with is a ConfigError naming it, here rather
    than a bare ValueError at the first retry (or retries silently off)."""
    for field, (check, shape) in _LIMITS_CHECKS.items():
        value = getattr(limits, field)
        if not check(value):
            raise ConfigError(
                f"{field} takes {shape} (got {_shown_number(value)})",
                where="Client(limits=)",
                hint=f"e.g. Limits({field}={Limits._field_defaults[field]!r}), the default",
            )


def _seconds(value: object) -> bool:
    """Whether ``value`` is a number of seconds a timeout or a deadline can be: more than 0 and finite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < _INF  # nan fails both


def _shown_number(value: object) -> str:
    """A number as an error shows it; anything else by its type only."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value!r}"
    return _a(value)


_INF = float("inf")


def _check_usage(usage: str) -> None:
    if not USAGE_SPEC.match(usage.strip()):
        raise ConfigError(f"bad value {shown_url(usage)!r}", where="Client(usage=)", hint=USAGE_SPEC_HINT)
    check_usage_path(usage, "Client(usage=)")


def _check_credentials(credentials: object) -> None:
    """``credentials``: vendor -> {key: value}, each vendor one privsdk knows and each key one its adapter reads.

    Keys and vendors are named only when they look like names (:func:`_shown_name`): a key pasted where its name
    belongs never reaches the message.
    """
    where = "Client(credentials=)"
    form = 'e.g. credentials={"openai": {"api_key": KEY}}'
    if not isinstance(credentials, Mapping):
        raise ConfigError(f"takes a dict of vendor to credentials, not {_a(credentials)}", where=where, hint=form)
    for vendor, creds in credentials.items():
        valid = CREDENTIAL_KEYS.get(vendor) if isinstance(vendor, str) else None
        if valid is None:
            raise ConfigError(
                f"{shown_key(vendor)} is not a vendor", where=where, hint="vendors: " + ", ".join(CREDENTIAL_KEYS)
            )
        if not isinstance(creds, Mapping):
            raise ConfigError(
                f"credentials[{vendor!r}] is {_a(creds)}, not a dict of credential keys to values",
                where=where,
                hint=form,
            )
        for key, value in creds.items():
            if key not in valid:
                raise ConfigError(
                    f"{shown_key(key)} is not a credential key for {vendor}",
                    where=where,
                    hint=f"{vendor} credential keys: {', '.join(valid)}",
                )
            if not isinstance(value, str):
                raise ConfigError(f"credentials[{vendor!r}][{key!r}] is {_a(value)}, not a str", where=where, hint=form)


def _with_endpoints(policy: Policy, catalogue: Catalogue, endpoints: Mapping[str, str]) -> Policy:
    """``policy`` with the client's ``endpoints`` argument declared for each vendor's public offering: the app
    named those URLs for that vendor itself, so its guard may place requests there."""
    from privsdk.config import endpoint

    declared = []
    for vendor, url in endpoints.items():
        found = catalogue.vendor(vendor) if isinstance(vendor, str) else None
        if found is None or found.default_offering is None:
            raise ConfigError(
                f"{shown_key(vendor)} is not a vendor with a public API offering",
                where="Client(endpoints=)",
                hint="vendors: " + ", ".join(v for v in catalogue.vendor_names if catalogue.vendor(v)),
            )
        declared.append(endpoint(url, found.default_offering, catalogue))
    if not declared:
        return policy
    return Policy(
        policy.tenants, policy.default_tenant, policy.targets, policy.origin, policy.usage,
        policy.endpoints + tuple(declared),
    )  # fmt: skip


class CallOptions(TypedDict, total=False):
    """Keyword options every call takes."""

    #: The tenant and data class whose policy applies (default: the scope's, then PRIVSDK_TENANT / the default).
    tenant: str
    data_class: str
    #: Caller tags for usage records: at most 8, short keys and values from a restricted character set.
    tags: Mapping[str, str]
    #: Vendor-specific request fields, sent as they are, and only to the target the call named.
    extra: Mapping[str, Any]
    #: Seconds one attempt may take; attempts per target; seconds for the whole call.
    timeout: float
    max_attempts: int
    deadline_s: float
    #: Request features the decision must allow (privsdk.vocabulary.FEATURES), e.g. ``stored_responses``.
    features: Iterable[str]


class ChatOptions(CallOptions, total=False):
    """Keyword options of a chat call, besides those of every call."""

    tools: Iterable[ToolLike]
    #: Or a function named as OpenAI's API does (``{"type": "function", "function": {"name": ...}}``): sent as it is to
    #: OpenAI-style targets, :class:`~privsdk.errors.Unsupported` elsewhere.
    tool_choice: ToolChoice
    temperature: float
    top_p: float
    max_tokens: int
    stop: str | Sequence[str]
    seed: int
    response_format: ResponseFormat | Mapping[str, Any]


def chat_request(messages: str | Sequence[MessageLike], options: ChatOptions) -> ChatRequest:
    """The request for a chat call; what cannot be sent is an :class:`InvalidInput` naming the parameter (and the
    item's position), never its content."""
    if not options or not options.keys() & _REQUEST_OPTIONS:
        # Messages and nothing else, as most calls: built by tuple's own constructor (a NamedTuple's __new__ is
        # a Python function).
        try:
            return tuple.__new__(ChatRequest, (to_messages(messages), *MESSAGES_ONLY))
        except PrivsdkError as exc:
            _detach(exc)
            raise
        except _INPUT_ERRORS as exc:
            _invalid(exc, "messages")
    return _chat_request(messages, options)


def _chat_request(messages: str | Sequence[MessageLike], options: ChatOptions) -> ChatRequest:
    where = "messages"
    try:
        turns = to_messages(messages)
        where = "tools"
        tools = to_tools(options.get("tools"))
        for i, tool in enumerate(tools):
            if type(tool.parameters) is not dict and not isinstance(tool.parameters, Mapping):
                raise InvalidInput(f"tools[{i}] parameters must be a JSON schema object (a dict)")
        choice = options.get("tool_choice")
        if choice is not None:
            if type(choice) is str:
                if choice not in _TOOL_CHOICES:
                    raise InvalidInput("tool_choice must be 'auto', 'none' or 'required', or name a function")
            else:  # a Mapping names a function, as OpenAI's API does (the openai drop-in's reroutes pass it on);
                # only that name is sent on, in that shape, never other keys the app's mapping holds.
                choice = {"type": "function", "function": {"name": named_tool(choice)}}
        where = "stop"
        stop = options.get("stop")
        stops = () if stop is None else (stop,) if type(stop) is str else tuple(stop)
        "".join(stops)  # a TypeError unless every stop is a str: cheaper than checking each
        where = "response_format"
        response_format = to_response_format(options.get("response_format"))
        schema = response_format.schema if response_format is not None else None
        if schema is not None and type(schema) is not dict and not isinstance(schema, Mapping):
            raise InvalidInput("response_format schema must be a JSON schema object (a dict)")
        where = "extra"
        extra = _extra(options)
        request = ChatRequest(
            turns,
            tools,
            choice,
            options.get("temperature"),
            options.get("top_p"),
            options.get("max_tokens"),
            stops,
            options.get("seed"),
            response_format,
            extra,
        )
        check_json(request.stop, "stop")
        check_json(request.extra, "extra")
        if request.response_format is not None:
            check_json(request.response_format.schema, "response_format")
        return request
    except PrivsdkError as exc:
        _detach(exc)
        raise
    except _INPUT_ERRORS as exc:
        _invalid(exc, where)


def check_options(options: CallOptions | ChatOptions, operation: str = "chat") -> tuple[str, ...]:
    """Each option given that ``operation``'s calls do not take, or of a type they cannot take, is an
    :class:`InvalidArgument` naming it and the type it takes; returns the call's features. Calls without options
    never come here, and a valid option costs one type lookup (a subclass, or a number out of range, takes the
    slower path)."""
    option_kinds, known = _OPERATION_OPTIONS[operation]
    for key, value in options.items():
        kinds = option_kinds.get(key)
        if kinds is None:
            if key not in known:  # a misspelt option (temprature=), or a chat one on embed, would be dropped unsaid
                _not_an_option(key, operation, known)
        elif (
            type(value) not in kinds
            or value == ""  # an empty tenant or class name would mean "none named": the default's policy
            or ((bounds := _BOUNDS.get(key)) and not bounds[0] < value < bounds[1])  # type: ignore[operator]
        ):
            _check_option(key, value)
    features = options.get("features")
    if not features:
        return ()
    found = tuple(features)  # once: a generator would be used up by the first decision
    for i, feature in enumerate(found):
        if type(feature) is not str and not isinstance(feature, str):
            raise InvalidArgument(f"features[{i}] must be a str, a feature name, not {_a(feature)}")
    return found


def _not_an_option(key: str, operation: str, known: frozenset[str]) -> NoReturn:
    listed = ", ".join(sorted(known))
    if key in _OPTIONS:  # a chat option on an embedding or a rerank
        raise InvalidArgument(f"{key} is a chat option, not one of {operation} calls ({listed})")
    raise InvalidArgument(f"{shown_key(key)} is not an option of privsdk calls ({listed})")


def _check_option(key: str, value: object) -> None:
    """:func:`check_options` for one option whose type is not the plain one: a subclass or None passes."""
    check, shape = _OPTION_CHECKS[key]
    if value is not None and not check(value):
        got = f"got {value!r}" if _is_number(value) or (isinstance(value, str) and not value) else f"not {_a(value)}"
        raise InvalidArgument(f"{key} must be {shape} ({got})")


def _a(value: object) -> str:
    """``value``'s type with its article, as an error names it (``a str``, ``an int``): never the value."""
    name = type(value).__name__
    return f"an {name}" if name[:1] in "aeiou" else f"a {name}"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: object) -> bool:
    return _is_number(value) and math.isfinite(value)  # type: ignore[arg-type]  # nan and inf reach the SDK's JSON


#: The options whose type :func:`check_options` checks, and embed's ``dimensions`` and rerank's ``top_n``: option ->
#: (check, what it takes). The others are checked where the request is built (:func:`chat_request`), or are vendor
#: fields (``extra``).
_OPTION_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "tenant": (lambda v: isinstance(v, str) and v != "", "a str, a tenant's name"),
    "data_class": (lambda v: isinstance(v, str) and v != "", "a str, a data class's name"),
    "tags": (lambda v: isinstance(v, Mapping), "a dict of str to str, e.g. {'team': 'search'}"),
    "timeout": (_seconds, "seconds, a number more than 0"),
    "deadline_s": (_seconds, "seconds, a number more than 0"),
    "max_attempts": (_is_count, "a whole number, 1 or more"),
    "features": (lambda v: not isinstance(v, (str, bytes, Mapping)) and hasattr(v, "__iter__"), "a list of str"),
    "temperature": (_is_finite, "a finite number"),
    "top_p": (_is_finite, "a finite number"),
    "max_tokens": (_is_int, "a whole number"),
    "seed": (_is_int, "a whole number"),
    "dimensions": (_is_count, "a whole number, 1 or more"),
    "top_n": (_is_count, "a whole number, 1 or more"),
}
#: Every option a chat call takes; embeddings and reranking take those of every call only.
_OPTIONS = ChatOptions.__required_keys__ | ChatOptions.__optional_keys__
_CALL_OPTIONS = CallOptions.__required_keys__ | CallOptions.__optional_keys__
#: The plain types of each checked option, for the fast path; a value of another type takes :func:`_check_option`.
_OPTION_KINDS: dict[str, frozenset[type]] = {
    "tenant": frozenset({str}),
    "data_class": frozenset({str}),
    "tags": frozenset({dict}),
    "timeout": frozenset({int, float}),
    "deadline_s": frozenset({int, float}),
    "max_attempts": frozenset({int}),
    "features": frozenset({list, tuple, set, frozenset}),
    "temperature": frozenset({int, float}),
    "top_p": frozenset({int, float}),
    "max_tokens": frozenset({int}),
    "seed": frozenset({int}),
}
#: The options whose value must also lie within bounds (exclusive), whatever its type: nan is within none.
_BOUNDS: dict[str, tuple[float, float]] = {
    "timeout": (0, _INF),
    "deadline_s": (0, _INF),
    "max_attempts": (0, _INF),
    "temperature": (-_INF, _INF),
    "top_p": (-_INF, _INF),
}
#: Each operation's checked options with their plain types, and every option it takes.
_CALL_OPTION_KINDS = {key: kinds for key, kinds in _OPTION_KINDS.items() if key in _CALL_OPTIONS}
_OPERATION_OPTIONS: dict[str, tuple[dict[str, frozenset[type]], frozenset[str]]] = {
    "chat": (_OPTION_KINDS, _OPTIONS),
    "stream": (_OPTION_KINDS, _OPTIONS),
    "embed": (_CALL_OPTION_KINDS, _CALL_OPTIONS),
    "rerank": (_CALL_OPTION_KINDS, _CALL_OPTIONS),
}

_REQUEST_OPTIONS = frozenset(ChatOptions.__annotations__) - frozenset(CallOptions.__annotations__) | {"extra"}
_TOOL_CHOICES = frozenset({"auto", "none", "required"})
#: What reading a malformed argument raises (a str where a list belongs, a list where a dict does, ...).
_INPUT_ERRORS = (TypeError, ValueError, AttributeError, KeyError, IndexError)


def _extra(options: CallOptions) -> Mapping[str, Any]:
    """A call's vendor fields (``extra=``): a dict, or an :class:`InvalidInput`."""
    extra = options.get("extra") or {}
    if type(extra) is not dict and not isinstance(extra, Mapping):
        raise InvalidInput("extra must be a dict of the vendor's request fields")
    return extra


def _detach(exc: PrivsdkError) -> None:
    """Drop what ``exc`` chains: privsdk.messages raises InvalidInput inside the handler of a UnicodeEncodeError,
    whose ``object`` is the whole text that could not be encoded (a prompt)."""
    from privsdk.vendor_errors import detach

    detach(exc)


def _invalid(exc: Exception, where: str) -> NoReturn:
    """Raise the :class:`InvalidInput` for ``exc``, raised while reading the argument ``where``.

    privsdk's own messages (:mod:`privsdk.messages`) name the item by position and say what is wrong, and are kept;
    any other exception (Python's own, from inside a library or the caller's object) is named by its type only, as
    its text could quote a value.
    """
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    own = type(exc) in (TypeError, ValueError) and tb is not None and tb.tb_frame.f_globals.get("__name__") == _MESSAGES
    if own:
        text = str(exc)
    else:
        shape = "must be a str" if "[" in where else _SHAPES.get(where, "cannot be read")
        text = f"{where} {shape} ({type(exc).__name__})"
    from privsdk.vendor_errors import raise_translated

    raise_translated(InvalidInput(text if text.startswith(where) else f"{where}: {text}"), exc)


_MESSAGES = to_messages.__module__
_INPUT_TYPES = get_args(InputType)
_SHAPES = {
    "messages": "must be a str or a list of messages (OpenAI-style dicts or privsdk Messages)",
    "tools": "must be a list of privsdk Tools or OpenAI-style tool dicts",
    "stop": "must be a str or a list of str",
    "response_format": "must be a privsdk ResponseFormat or an OpenAI-style dict",
    "texts": "must be a str or a list of str",
    "query": "must be a str",
    "documents": "must be a list of str",
}


def embed_request(
    texts: str | Sequence[str], input_type: InputType | None, dimensions: int | None, options: CallOptions
) -> EmbedRequest:
    if input_type is not None and input_type not in _INPUT_TYPES:  # a tuple: an unhashable value is no TypeError
        raise InvalidArgument(f"input_type must be one of {', '.join(_INPUT_TYPES)}")
    if dimensions is not None:
        _check_option("dimensions", dimensions)
    where = "texts"
    try:
        items = (texts,) if isinstance(texts, str) else tuple(texts)
        for i, text in enumerate(items):
            where = f"texts[{i}]"
            check_text(text, where)
        where = "extra"
        extra = _extra(options)
        return EmbedRequest(items, input_type, dimensions, extra)
    except PrivsdkError as exc:
        _detach(exc)
        raise
    except _INPUT_ERRORS as exc:
        _invalid(exc, where)


def rerank_request(query: str, documents: Sequence[str], top_n: int | None, options: CallOptions) -> RerankRequest:
    if isinstance(documents, str):  # a str is a Sequence[str] too: it would be sent as one document per character
        raise InvalidInput(f"documents {_SHAPES['documents']}, not a str")
    if top_n is not None:
        _check_option("top_n", top_n)
    where = "query"
    try:
        check_text(query, where)
        where = "documents"
        docs = tuple(documents)
        for i, doc in enumerate(docs):
            where = f"documents[{i}]"
            check_text(doc, where)
        where = "extra"
        extra = _extra(options)
        return RerankRequest(query, docs, top_n, extra)
    except PrivsdkError as exc:
        _detach(exc)
        raise
    except _INPUT_ERRORS as exc:
        _invalid(exc, where)


def _extra_features(extra: Mapping[str, Any]) -> tuple[str, ...]:
    """The catalogue features a call's vendor fields turn on: each keeps content where the catalogue says."""
    found = []
    if extra.get("store"):  # the answer is kept at the vendor
        found.append("stored_responses")
    modalities = extra.get("modalities")
    if extra.get("audio") or (isinstance(modalities, (list, tuple)) and "audio" in modalities):
        found.append("audio_output")  # OpenAI keeps generated audio for an hour
    if "web_search_options" in extra:  # Chat Completions' web search: queries go to third parties
        found.append("web_search")
    return tuple(found)


def decided(result: R, decision: Decision) -> R:
    """``result`` with the decision that governed it, the last field of every response type. Built by tuple's own
    constructor: a NamedTuple's ``_replace`` costs three times as much (1.7 µs here), and its ``__new__`` is a
    Python function, on every call."""
    return tuple.__new__(type(result), (*result[:-1], decision))


assert all(t._fields[-1] == "decision" for t in (ChatResponse, EmbedResponse, RerankResponse))


def _for_target(request: Any, call: _Call, target: Target) -> Any:
    """The request as ``target`` gets it: vendor-specific ``extra`` fields go only to the target the call named."""
    if target.name != call.requested and getattr(request, "extra", None):
        return request._replace(extra={})
    return request


class ClientBase:
    """What :class:`Client` and :class:`~privsdk.async_client.AsyncClient` are built from.

    Configured from the environment (``PRIVSDK_*``, see the configuration page of the documentation),
    or from a :class:`~privsdk.policy.Policy` built in code. ``model`` is a
    target name from the config or ``vendor/model``. ``credentials`` maps a
    vendor to its adapter's credential keys (default: the vendor's own
    environment variables); ``endpoints`` maps a vendor to the base URL used
    for ``vendor/model`` targets that name none. ``usage`` overrides
    ``PRIVSDK_USAGE``: a spec string, a callable taking each record, or a
    :class:`~privsdk.usage.Recorder` of the app's own (an in-memory
    OpenTelemetry exporter, say). ``tenants`` takes tenants from a store
    instead of the policy file: a :class:`~privsdk.tenants.TenantStore`, or a
    provider (a callable taking a tenant's name) wrapped in a default one; see
    https://privsdk.readthedocs.io/en/latest/configuration/#tenant-stores.
    """

    def __init__(
        self,
        *,
        policy: Policy | None = None,
        environ: Mapping[str, str] | None = None,
        catalogue: Catalogue | None = None,
        usage: str | Callable[[UsageRecord], None] | Recorder | None = None,
        credentials: Mapping[str, Mapping[str, str]] | None = None,
        endpoints: Mapping[str, str] | None = None,
        timeout: float | None = None,
        limits: Limits | None = None,
        tenants: TenantStore | TenantProvider | None = None,
    ):
        self._core = _Core(policy, environ, catalogue, usage, credentials, endpoints, timeout, limits, tenants)

    @property
    def policy(self) -> Policy:
        return self._core.policy

    @property
    def tenants(self) -> TenantStore | None:
        """The tenant store, when tenants come from one: ``client.tenants.invalidate("acme")`` after a change."""
        from privsdk.tenants import TenantStore

        store = self._core.policy.tenants
        return store if isinstance(store, TenantStore) else None

    def flush_usage(self, timeout: float | None = None) -> None:
        """Wait until the usage records of calls made so far are written."""
        self._core.recorder.flush(timeout)


class Client(ClientBase):
    """Calls LLM vendors through their SDKs, only where the tenant's policy allows.

    Takes the arguments of :class:`ClientBase`. Thread-safe: share one client across threads.
    """

    @functools.cached_property
    def _retrying(self) -> Retrying:
        return retrying()  # one for every thread: tenacity keeps each call's state thread-local

    @overload
    def chat(
        self,
        model: str,
        messages: str | Sequence[MessageLike],
        *,
        stream: Literal[False] = False,
        **options: Unpack[ChatOptions],
    ) -> ChatResponse: ...

    @overload
    def chat(
        self,
        model: str,
        messages: str | Sequence[MessageLike],
        *,
        stream: Literal[True],
        **options: Unpack[ChatOptions],
    ) -> ChatStream: ...

    @overload
    def chat(  # a flag known only at run time (a wrapper that forwards it)
        self,
        model: str,
        messages: str | Sequence[MessageLike],
        *,
        stream: bool,
        **options: Unpack[ChatOptions],
    ) -> ChatResponse | ChatStream: ...

    def chat(
        self, model: str, messages: str | Sequence[MessageLike], *, stream: bool = False, **options: Unpack[ChatOptions]
    ) -> ChatResponse | ChatStream:
        """A chat completion, or with ``stream=True`` a :class:`ChatStream` of events.

        Raises :class:`~privsdk.errors.PolicyViolation` when the policy refuses,
        before anything is sent, and a :class:`~privsdk.errors.VendorError`
        when every allowed target failed. ``options`` are listed in :class:`ChatOptions`.
        """
        request = chat_request(messages, options)
        call = self._core.plan(model, "stream" if stream else "chat", options)
        if stream:
            events = ChatStream(self._core, call)
            events.open(request, options.get("timeout"), self._retrying)
            return events
        answer: ChatResponse = self._run(call, "chat", request, options.get("timeout"))
        return answer

    def embed(
        self,
        model: str,
        texts: str | Sequence[str],
        *,
        input_type: InputType | None = None,
        dimensions: int | None = None,
        **options: Unpack[CallOptions],
    ) -> EmbedResponse:
        """One vector per text, in order."""
        request = embed_request(texts, input_type, dimensions, options)
        answer: EmbedResponse = self._run(
            self._core.plan(model, "embed", options), "embed", request, options.get("timeout")
        )
        return answer

    def rerank(
        self,
        model: str,
        query: str,
        documents: Sequence[str],
        *,
        top_n: int | None = None,
        **options: Unpack[CallOptions],
    ) -> RerankResponse:
        """``documents`` ordered by relevance to ``query``, best first."""
        request = rerank_request(query, documents, top_n, options)
        answer: RerankResponse = self._run(
            self._core.plan(model, "rerank", options), "rerank", request, options.get("timeout")
        )
        return answer

    def _run(self, call: _Call, send: str, request: Any, timeout: float | None) -> Any:
        """The call on the first target of its chain that answers: ``send`` names the adapter's method."""
        result, _, decision = self._core.through_chain(call, request, self._retrying, self._core.attempt, send, timeout)
        return decided(result, decision)

    def close(self) -> None:
        """Close every adapter and flush usage records."""
        self._core.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
