"""The usage record holds numbers, enums, timestamps, ids and names only; tags are checked; the writer's guard."""

from __future__ import annotations

import enum
import math
import os
import types
import typing
import uuid
from typing import Any, Literal, get_args, get_origin

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privsdk.errors import TagError
from privsdk.usage import INVALID, SCHEMA_VERSION, UsageRecord, check_tags, new_request_id
from privsdk.usage.record import DECISIONS, ERROR_CLASSES, OUTCOMES
from privsdk.usage.sanitize import NAME, clean
from privsdk.vocabulary import OPERATIONS, Operation
from tests.usage_support import rec

#: Every field and what it may hold. A new field must be added here, with a kind that cannot carry text.
FIELD_KINDS = {
    "time": "number",
    "request_id": "id",
    "attempt": "number",
    "tenant": "name",
    "data_class": "name",
    "requested_target": "name",
    "chosen_target": "name",
    "decision": "enum",
    "unmet": "names",
    "operation": "enum",
    "vendor": "name",
    "model": "name",
    "outcome": "enum",
    "error_class": "enum",
    "http_status": "number",
    "input_tokens": "number",
    "output_tokens": "number",
    "latency_ms": "number",
    "first_chunk_ms": "number",
    "tags": "tags",
}
NAME_FIELDS = [f for f, kind in FIELD_KINDS.items() if kind == "name"]


def _kind(annotation: Any) -> str:
    """The kind a type annotation allows: number, enum, str (to be checked as a name or id), or composite."""
    union = get_origin(annotation) in (typing.Union, types.UnionType)
    args = [a for a in get_args(annotation) if a is not type(None)] if union else []
    if args:
        return _kind(args[0]) if len(args) == 1 else "union"
    if annotation in (int, float):
        return "number"
    if get_origin(annotation) is Literal:
        return "enum"
    if annotation is str:
        return "str"
    if annotation == tuple[str, ...]:
        return "names"
    if annotation == tuple[tuple[str, str], ...]:
        return "tags"
    return repr(annotation)


def test_the_record_has_no_field_that_could_hold_content() -> None:
    """Each field's type is a number, an enum, names, tags, or a str the writer checks as a name or id."""
    hints = typing.get_type_hints(UsageRecord)
    assert list(hints) == list(FIELD_KINDS), "fields changed: classify the new field in FIELD_KINDS"
    for field, annotation in hints.items():
        kind = _kind(annotation)
        expected = FIELD_KINDS[field]
        if kind == "str":
            assert expected in ("name", "id"), field  # a plain str is only ever a checked name or the request id
        else:
            assert kind == expected, (field, annotation)
    assert SCHEMA_VERSION == 1


def test_enum_fields_list_exactly_the_documented_values() -> None:
    """The enums are the documented closed sets; operations are the vocabulary's."""
    hints = typing.get_type_hints(UsageRecord)
    assert get_args(hints["decision"]) == DECISIONS == ("allow", "reroute", "refuse")
    assert get_args(hints["outcome"]) == OUTCOMES == ("ok", "refused", "error", "cancelled")
    assert get_args(hints["operation"]) == OPERATIONS
    assert set(get_args(get_args(hints["error_class"])[0])) == set(ERROR_CLASSES)
    assert {"rate_limited", "unavailable", "timeout", "policy", "other"} <= set(ERROR_CLASSES)


def test_vendor_error_kinds_are_record_error_classes() -> None:
    """Every VendorError subclass's ``kind`` is a value error_class accepts."""
    from privsdk import errors

    kinds = {
        cls.kind
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.PrivsdkError) and hasattr(cls, "kind")
    }
    assert kinds and kinds <= set(ERROR_CLASSES)


def test_request_ids_are_uuid4_hex() -> None:
    """Request ids are 32 hex digits of a version-4 UUID, fresh each time."""
    ids = {new_request_id() for _ in range(100)}
    assert len(ids) == 100
    for rid in ids:
        assert uuid.UUID(rid).version == 4 and uuid.UUID(rid).hex == rid


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_draws_other_request_ids() -> None:
    """Ids come from a generator seeded per process: a child forked after its parent drew ids must not repeat
    the parent's next ones (workers forked by a server after import, say)."""
    new_request_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then out without running the parent's cleanup
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = pipe.read()
    assert len(child) == 32 and child != new_request_id()


# -- tags -------------------------------------------------------------------------------------------


def test_check_tags_returns_sorted_pairs() -> None:
    """Valid tags come back as sorted (key, value) pairs; none gives an empty tuple."""
    assert check_tags({"team": "search", "env": "prod-eu", "x.y_z-1": "a:b/c@d+e.f_g-h"}) == (
        ("env", "prod-eu"),
        ("team", "search"),
        ("x.y_z-1", "a:b/c@d+e.f_g-h"),
    )
    assert check_tags(None) == () == check_tags({})

    class Env(str, enum.Enum):
        PROD = "prod"

    ((key, value),) = check_tags({"env": Env.PROD})
    assert (key, value) == ("env", "prod") and type(value) is str
    assert check_tags({"k" * 32: "v" * 64}) == (("k" * 32, "v" * 64),)


@pytest.mark.parametrize(
    ("tags", "fragments"),
    [
        pytest.param({f"k{i}": "v" for i in range(9)}, ["9 usage tags", "at most 8"], id="too-many"),
        pytest.param({"Team": "x"}, ["#1", "invalid key", "lowercase letter"], id="uppercase-key"),
        pytest.param({"ok": "x", "k" * 33: "x"}, ["#2", "33 characters"], id="long-key"),
        pytest.param({"team": "v" * 65}, ["'team'", "invalid value", "1 to 64"], id="long-value"),
        pytest.param({"team": "has space"}, ["'team'", "no spaces"], id="space-in-value"),
        pytest.param({"team": ""}, ["'team'", "invalid value"], id="empty-value"),
        pytest.param({"team": 5}, ["'team'", "int value"], id="not-a-string"),
    ],
)
def test_bad_tags_raise_a_clear_error(tags: dict[str, Any], fragments: list[str]) -> None:
    """A tag that breaks a rule raises TagError saying which tag and which rule."""
    with pytest.raises(TagError) as info:
        check_tags(tags)
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize("where", ["key", "value"])
def test_a_tag_error_never_shows_the_offending_text(where: str) -> None:
    """The message names a bad key by position and a bad value by its key; the text itself never appears."""
    secret = "CANARY-4417 my password is hunter2"
    tags = {secret: "x"} if where == "key" else {"note": secret}
    with pytest.raises(TagError) as info:
        check_tags(tags)
    assert "CANARY-4417" not in str(info.value) and "hunter2" not in str(info.value)


# -- the writer's guard -----------------------------------------------------------------------------


def test_a_valid_record_passes_unchanged() -> None:
    """clean() returns the very object when every field is what its type allows."""
    r = rec()
    assert clean(r) == (r, ())
    assert clean(r)[0] is r


def test_numbers_are_normalised_and_bad_ones_replaced() -> None:
    """An int latency becomes a float; NaN, negative, bool and wrong-typed numbers become their fallbacks."""
    fixed, bad = clean(rec(latency_ms=5, time=1))
    assert (fixed.latency_ms, type(fixed.latency_ms), fixed.time) == (5.0, float, 1.0) and bad == ()
    fixed, bad = clean(
        rec(
            latency_ms=math.nan,
            attempt=-1,
            http_status=99,
            input_tokens=True,
            output_tokens="12",
            first_chunk_ms=math.inf,
            time="yesterday",
        )
    )
    assert set(bad) == {
        "latency_ms",
        "attempt",
        "http_status",
        "input_tokens",
        "output_tokens",
        "first_chunk_ms",
        "time",
    }
    assert (fixed.latency_ms, fixed.attempt, fixed.http_status, fixed.input_tokens, fixed.output_tokens) == (
        0.0,
        0,
        None,
        None,
        None,
    )
    assert fixed.first_chunk_ms is None and isinstance(fixed.time, float) and fixed.time > 1e9


def test_enums_ids_and_tags_outside_their_sets_are_replaced() -> None:
    """Unknown enum values, a malformed request id and bad tags become the INVALID marker."""
    fixed, bad = clean(
        rec(decision="maybe", operation="summarise", outcome="fine", error_class="oops", request_id="not-hex")
    )
    assert set(bad) == {"decision", "operation", "outcome", "error_class", "request_id"}
    assert {fixed.decision, fixed.operation, fixed.outcome, fixed.error_class, fixed.request_id} == {INVALID}
    for tags in ((("Bad Key", "v"),), (("k", "two words"),), tuple((f"k{i}", "v") for i in range(9)), [("k", "v")]):
        fixed, bad = clean(rec(tags=tags))
        assert bad == ("tags",) and fixed.tags == ((INVALID, INVALID),)


def test_enum_members_are_stored_as_their_plain_value() -> None:
    """A str enum member (vocabulary.Operation.STREAM, an app's tenant enum) is stored as its plain string,
    also after an equal plain record was checked (the check's cache compares by value)."""

    class Tenant(str, enum.Enum):
        ACME = "acme"

    clean(rec(operation="stream"))
    fixed, bad = clean(rec(operation=Operation.STREAM, tenant=Tenant.ACME))
    assert bad == () and (fixed.operation, fixed.tenant) == ("stream", "acme")
    assert type(fixed.operation) is str and type(fixed.tenant) is str


def test_unmet_must_be_a_sequence_of_names() -> None:
    """A bare string, or an item with free text, is not an unmet list."""
    assert clean(rec(unmet=["zdr"]))[0].unmet == ("zdr",)

    class Requirement(str, enum.Enum):
        ZDR = "zdr"

    fixed, bad = clean(rec(unmet=(Requirement.ZDR,)))
    assert bad == () and fixed.unmet == ("zdr",) and type(fixed.unmet[0]) is str
    for unmet in ("zdr", ("zdr", "no training please")):
        fixed, bad = clean(rec(unmet=unmet))
        assert bad == ("unmet",) and fixed.unmet == (INVALID,)


@pytest.mark.parametrize("field", NAME_FIELDS)
def test_name_fields_refuse_free_text(field: str) -> None:
    """Text with spaces, quotes, newlines or over 128 characters never stays in a name field."""
    for text in ("two words", 'quote"d', "line\nbreak", "x" * 129, "", "naïve", 42):
        fixed, bad = clean(rec(**{field: text}))
        assert bad == (field,) and getattr(fixed, field) == INVALID


names = st.text(max_size=140) | st.from_regex(r"[A-Za-z0-9._:/@+=|*-]{1,128}", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(field=st.sampled_from(NAME_FIELDS), text=names)
def test_arbitrary_text_in_a_name_field_survives_only_when_it_is_a_name(field: str, text: str) -> None:
    """Property: after the guard a name field holds the text only if it matches NAME; otherwise the marker."""
    fixed, bad = clean(rec(**{field: text}))
    if NAME.fullmatch(text):
        assert getattr(fixed, field) == text and bad == ()
    else:
        assert getattr(fixed, field) == INVALID and bad == (field,)


def test_counts_are_bounded_by_what_every_sink_holds() -> None:
    """A count past MAX_COUNT (10**12) is replaced like any bad number: SQLite's INSERT of a 21-digit count raised
    and lost the whole batch. MAX_COUNT itself is kept; an int time or latency past it, whose float() could
    raise, is replaced too."""
    from privsdk.usage import MAX_COUNT

    assert MAX_COUNT == 10**12
    kept = rec(input_tokens=MAX_COUNT, output_tokens=0, attempt=MAX_COUNT)
    assert clean(kept) == (kept, ())
    for huge in (MAX_COUNT + 1, 10**20, 2**63, 10**400):
        fixed, bad = clean(rec(input_tokens=huge, output_tokens=huge, attempt=huge, latency_ms=huge, time=huge))
        assert set(bad) == {"input_tokens", "output_tokens", "attempt", "latency_ms", "time"}
        assert (fixed.input_tokens, fixed.output_tokens, fixed.attempt, fixed.latency_ms) == (None, None, 0, 0.0)
    # The shortcut for a combination of names already seen checks the bounds too.
    seen = rec()
    clean(seen)
    fixed, bad = clean(seen._replace(input_tokens=10**20))
    assert bad == ("input_tokens",) and fixed.input_tokens is None
