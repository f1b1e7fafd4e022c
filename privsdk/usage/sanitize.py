"""The last check before a sink: every field of a record holds what its type allows, or a fixed marker.

The writer thread runs :func:`clean` on every record, so the guarantee holds
for records built anywhere, by privsdk's client or by hand, and costs nothing
on the call path. A field that fails is replaced, never passed on and never
the cause of an error in the app's call:

* a name field (tenant, data class, targets, vendor, model, each unmet
  requirement) that is not one token of :data:`NAME` becomes :data:`INVALID`;
* an enum field outside its values becomes :data:`INVALID`;
* the request id, unless 32 lowercase hex digits, becomes :data:`INVALID`;
* tags that :func:`~privsdk.usage.check_tags` would refuse become one
  ``(INVALID, INVALID)`` pair;
* a number that is not a finite, non-negative number of its type (and, for a
  count, at most :data:`~privsdk.usage.record.MAX_COUNT`) becomes None when
  the field is optional; ``attempt`` becomes 0, ``latency_ms`` 0.0 and
  ``time`` the time of writing.

The recorder counts such records (``Recorder.invalid``) and logs the field
names once; it never logs a value.
"""

from __future__ import annotations

import enum
import math
import operator
import re
import time
from collections.abc import Callable
from typing import Any

from privsdk.usage.record import DECISIONS, ERROR_CLASSES, MAX_COUNT, OUTCOMES, UsageRecord
from privsdk.usage.tags import MAX_TAGS, valid_pair
from privsdk.vocabulary import OPERATIONS

#: What a name field may hold: one token of configuration or catalogue characters, never text with spaces.
NAME = re.compile(r"[A-Za-z0-9._:/@+=|*-]{1,128}")
#: The value that replaces a field that is not what its type allows. Its ``<`` and ``>`` make it no valid name.
INVALID = "<invalid>"
_REQUEST_ID = re.compile(r"[0-9a-f]{32}")
_BAD: Any = object()
_NOW: Any = object()

Check = Callable[[Any], Any]


def _name(v: Any) -> Any:
    if not isinstance(v, str):
        return _BAD
    if type(v) is not str:
        v = str.__str__(v)  # a str subclass (a str enum member): its characters, as a plain str
    return v if NAME.fullmatch(v) else _BAD


def _optional_name(v: Any) -> Any:
    return v if v is None else _name(v)


def _choice(values: tuple[str, ...], optional: bool = False) -> Check:
    table: dict[Any, Any] = {v: v for v in values}
    if optional:
        table[None] = None

    def check(v: Any) -> Any:
        if type(v) is not str and isinstance(v, enum.Enum):
            v = v.value  # a str enum member (vocabulary.Operation.CHAT) is stored as its plain value
        return table.get(v, _BAD) if type(v) is str or v is None else _BAD

    return check


def _request_id(v: Any) -> Any:
    return v if type(v) is str and _REQUEST_ID.fullmatch(v) else _BAD


def _count(v: Any) -> Any:
    # Bounded: a count past what SQLite (64-bit) or a JSON reader (2**53) holds would cost a whole batch.
    return v if type(v) is int and 0 <= v <= MAX_COUNT else _BAD


def _optional_count(v: Any) -> Any:
    return v if v is None else _count(v)


def _status(v: Any) -> Any:
    return v if v is None or (type(v) is int and 100 <= v <= 599) else _BAD


def _number(v: Any) -> Any:
    if type(v) is float:
        return v if math.isfinite(v) and v >= 0 else _BAD
    if type(v) is int:  # float() of an int past a double's range raises: bounded first
        return float(v) if 0 <= v <= MAX_COUNT else _BAD
    return _BAD


def _optional_number(v: Any) -> Any:
    return v if v is None else _number(v)


def _unmet(v: Any) -> Any:
    if type(v) is not tuple and type(v) is not list:
        return _BAD
    items = tuple(_name(item) for item in v)
    if _BAD in items:
        return _BAD
    return v if type(v) is tuple and all(map(operator.is_, items, v)) else items


def _tags(v: Any) -> Any:
    if type(v) is not tuple or len(v) > MAX_TAGS or not all(valid_pair(p) for p in v):
        return _BAD
    return v if len({k for k, _ in v}) == len(v) else _BAD


#: (check, replacement) per field, in UsageRecord's order.
_RULES: tuple[tuple[Check, Any], ...] = (
    (_number, _NOW),  # time
    (_request_id, INVALID),
    (_count, 0),  # attempt
    (_name, INVALID),  # tenant
    (_name, INVALID),  # data_class
    (_name, INVALID),  # requested_target
    (_optional_name, INVALID),  # chosen_target
    (_choice(DECISIONS), INVALID),
    (_unmet, (INVALID,)),
    (_choice(OPERATIONS), INVALID),
    (_optional_name, INVALID),  # vendor
    (_optional_name, INVALID),  # model
    (_choice(OUTCOMES), INVALID),
    (_choice(ERROR_CLASSES, optional=True), INVALID),
    (_status, None),  # http_status
    (_optional_count, None),  # input_tokens
    (_optional_count, None),  # output_tokens
    (_number, 0.0),  # latency_ms
    (_optional_number, None),  # first_chunk_ms
    (_tags, ((INVALID, INVALID),)),
)
assert len(_RULES) == len(UsageRecord._fields)


#: Combinations of name, enum and tag fields already checked. Records repeat a few tenants, targets and
#: models, so most records skip the per-field checks; bounded, since past the bound checking still works.
_CHECKED: set[tuple[Any, ...]] = set()
_CHECKED_MAX = 4096
_INF = math.inf
_TEXT = frozenset((str, type(None)))


def clean(rec: UsageRecord) -> tuple[UsageRecord, tuple[str, ...]]:
    """``rec`` with every field that is not what its type allows replaced; and the names of those fields."""
    (t, rid, attempt, tenant, data_class, requested, chosen, decision, unmet, operation, vendor, model, outcome,
     error_class, status, tokens_in, tokens_out, latency, first_chunk, tags) = rec  # fmt: skip
    try:
        key = (tenant, data_class, requested, chosen, decision, unmet, operation, vendor, model, outcome, error_class)
        known = (*key, tags) in _CHECKED
    except TypeError:  # an unhashable value (a list) where a name belongs
        known = False
    if (
        known
        # Equal is not enough: a str subclass (an enum member) equals its value, and is stored as a plain str.
        and type(tenant) is str
        and type(data_class) is str
        and type(requested) is str
        and type(decision) is str
        and type(operation) is str
        and type(outcome) is str
        and type(chosen) in _TEXT
        and type(vendor) in _TEXT
        and type(model) in _TEXT
        and type(error_class) in _TEXT
        and type(unmet) is tuple
        and (not unmet or all(type(u) is str for u in unmet))
        and (not tags or all(type(k) is str and type(v) is str for k, v in tags))
        # NaN fails every comparison; a bool is not an int here.
        and type(t) is float
        and 0.0 <= t < _INF
        and type(latency) is float
        and 0.0 <= latency < _INF
        and (first_chunk is None or (type(first_chunk) is float and 0.0 <= first_chunk < _INF))
        and type(attempt) is int
        and 0 <= attempt <= MAX_COUNT
        and (status is None or (type(status) is int and 100 <= status <= 599))
        and (tokens_in is None or (type(tokens_in) is int and 0 <= tokens_in <= MAX_COUNT))
        and (tokens_out is None or (type(tokens_out) is int and 0 <= tokens_out <= MAX_COUNT))
        and type(rid) is str
        and _REQUEST_ID.fullmatch(rid) is not None
    ):
        return rec, ()
    values = [check(v) for (check, _), v in zip(_RULES, rec, strict=True)]
    if _BAD not in values:
        if len(_CHECKED) < _CHECKED_MAX:
            _CHECKED.add(tuple(values[3:14] + values[19:]))
        # Keep the caller's object when no check converted a value (an int latency becomes a float).
        return (rec, ()) if all(map(operator.is_, values, rec)) else (UsageRecord._make(values), ())
    bad = []
    for i, (_, replacement) in enumerate(_RULES):
        if values[i] is _BAD:
            bad.append(UsageRecord._fields[i])
            values[i] = time.time() if replacement is _NOW else replacement
    return UsageRecord._make(values), tuple(bad)
