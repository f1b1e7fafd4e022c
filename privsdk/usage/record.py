"""The usage record: one per call attempt, and one per refusal.

Every field is a number, an enum, a timestamp, an id or a name from the
configuration or the catalogue. None is a free-text field, so there is no
place for a prompt, an output, system text, a tool name or its arguments, a
file name, a vendor's error message or a credential to go. The writer checks
each record against these types before any sink sees it
(:mod:`privsdk.usage.sanitize`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol, get_args

if TYPE_CHECKING:
    from privsdk.decision import Decision as Decided
    from privsdk.policy import Target

#: The version of the record's shape. Stores and exported lines carry it; it changes with any field.
SCHEMA_VERSION = 1
#: The largest count a record holds (``attempt``, ``input_tokens``, ``output_tokens``): 10**12. No answer holds
#: that many tokens, so a larger count is a broken or hostile answer and is recorded as unknown (None); and every
#: sink stores and sums counts this size exactly: SQLite's 64-bit integers (a sum over nine million records), the
#: 2**53 integers of a JSON reader that reads numbers as doubles (jq, JavaScript), OpenTelemetry's int64.
MAX_COUNT = 10**12

Decision = Literal["allow", "reroute", "refuse"]
Outcome = Literal["ok", "refused", "error", "cancelled"]
ErrorClass = Literal[
    "rate_limited",
    "unavailable",
    "timeout",
    "connection_lost",
    "bad_request",
    "auth_failed",
    "not_found",
    "content_refused",
    "unsupported",
    "policy",
    "vendor_error",
    "other",
]
Operation = Literal[
    "chat",
    "stream",
    "embed",
    "rerank",
    "files",
    "batch",
    "fine_tune",
    "assistants",
    "vector_stores",
    "images",
    "audio",
    "moderation",
    "realtime",
    "responses_state",
    "other",
    "models",
]

DECISIONS: tuple[Decision, ...] = get_args(Decision)
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
#: The ``kind`` of every :class:`privsdk.errors.VendorError` subclass, plus the classes privsdk itself raises.
ERROR_CLASSES: tuple[ErrorClass, ...] = get_args(ErrorClass)


class UsageRecord(NamedTuple):
    """One call attempt (``attempt`` >= 1), or a refusal that made none (``attempt`` 0).

    A NamedTuple: building one costs about a microsecond on the call path, it
    cannot be changed after it is queued, and its fields are fixed by type.
    """

    #: Start of the attempt, Unix seconds (UTC).
    time: float
    #: 32 lowercase hex digits, generated locally (:func:`new_request_id`); the same for every attempt of one call.
    request_id: str
    #: 1-based attempt number across the call's targets; 0 for a refusal.
    attempt: int
    tenant: str
    data_class: str
    #: The target the app asked for: a configured target name or ``vendor/model``.
    requested_target: str
    #: The target the attempt went to; None when the call was refused.
    chosen_target: str | None
    decision: Decision
    #: Names of the requirements the requested target does not meet (``zdr``, ``region=eu``, ...).
    unmet: tuple[str, ...]
    operation: Operation
    vendor: str | None
    model: str | None
    outcome: Outcome
    error_class: ErrorClass | None = None
    http_status: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: float = 0.0
    #: Time to the first chunk of a stream.
    first_chunk_ms: float | None = None
    #: The caller's tags, as :func:`privsdk.usage.check_tags` returns them.
    tags: tuple[tuple[str, str], ...] = ()


#: The field names, in order: the column names of the SQLite store and the keys of a JSONL line.
FIELDS: tuple[str, ...] = UsageRecord._fields


def new_request_id() -> str:
    """A fresh request id: a random (version 4) UUID's 32 hex digits, which say nothing about the call.

    The bits come from the :mod:`random` module's generator, which seeds itself from ``os.urandom`` and
    again in a forked child, so two processes never share a sequence. An id must be unique, not secret, and
    ``os.urandom`` is a system call on every request (0.5 µs here, against 0.1 µs). :mod:`random` is
    imported on the first call: ``import privsdk`` stays without it.
    """
    global _bits
    if _bits is None:
        from random import getrandbits

        _bits = getrandbits
    return "%032x" % (_bits(128) & _UUID_CLEAR | _UUID_V4)


_bits: Callable[[int], int] | None = None
#: The version (4) and variant (RFC 4122) bits of a UUID, as integer masks over its 128 bits.
_UUID_CLEAR = ~(0xF000 << 64 | 0xC000 << 48)
_UUID_V4 = 0x4000 << 64 | 0x8000 << 48


class CallIds(Protocol):
    """What the records of one :class:`privsdk.Client` call share: its request id (None until its first record is
    built) and its caller tags."""

    request_id: str | None
    tags: tuple[tuple[str, str], ...]


def attempt_record(
    d: Decided,
    call: CallIds | None,
    target: Target | None,
    chosen: str | None,
    attempt: int,
    outcome: Outcome,
    error_class: str | None,
    status: int | None,
    started: float,
    latency_s: float,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    first_chunk_s: float | None = None,
) -> UsageRecord:
    """The record of one attempt (or refusal) decided by ``d``, sent to ``target`` as ``chosen``.

    Built by the recorder's writer thread (``Recorder.record_later``), off the call path, for the guard and for
    :class:`privsdk.Client` alike. A Client call's records share its request id, drawn when the first of them is
    built (the writer builds records one at a time, in order), and its tags; a request the guard records alone
    (``call`` None) gets an id of its own. A Client call that serves a request a drop-in rerouted has the guard's
    decision on that request as its own, and is recorded as the attempts of the SDK call that request is one of
    (:class:`privsdk.outbound.judge.Rerouted`).
    """
    tags: tuple[tuple[str, str], ...] = ()
    request_id: str | None
    if call is None:
        request_id = new_request_id()
    else:
        # A Decision as a rule (a plain one, a miss in C); a Rerouted only where a Client call serves a reroute.
        recorded_as = getattr(getattr(call, "decision", None), "recorded_as", None)
        if recorded_as is not None:
            call, attempt = recorded_as(call, attempt)
        request_id = call.request_id
        if request_id is None:
            request_id = call.request_id = new_request_id()
        tags = call.tags
    return UsageRecord(  # positionally, in the field order
        started,  # time
        request_id,
        attempt,
        d.tenant,
        d.data_class,
        d.target,  # requested_target
        chosen,  # chosen_target
        d.outcome,
        tuple([u.requirement for u in d.unmet]) if d.unmet else (),  # unmet
        d.operation,  # type: ignore[arg-type]  # a vocabulary operation: sanitised by the writer
        target.offering.partition(".")[0] if target else None,  # vendor
        (target.model or None) if target else None,  # model
        outcome,
        error_class,  # type: ignore[arg-type]  # a kind of privsdk error: sanitised by the writer
        status,  # http_status
        input_tokens,
        output_tokens,
        latency_s * 1000.0,  # latency_ms
        None if first_chunk_s is None else first_chunk_s * 1000.0,  # first_chunk_ms
        tags,
    )
