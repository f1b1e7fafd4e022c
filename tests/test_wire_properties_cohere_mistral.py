"""The Cohere and Mistral wire readers on arbitrary requests: they fail closed and never crash.

For any method, path and body, ``read`` either says what the request asks for, in the vocabulary's
names, or raises :class:`Unreadable` (which the guard turns into a refusal); it never raises anything
else, and its message never holds a value from the body (it may name a field, such as one it does not
read). Meters take any bytes in any chunking.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privsdk.outbound.outgoing import Asks, Outgoing, Unreadable
from privsdk.outbound.wire.cohere import READER as COHERE
from privsdk.outbound.wire.mistral import READER as MISTRAL
from privsdk.vocabulary import FEATURES, OPERATIONS

PROPS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SECRET = "zz-secret-zz"
SEGMENTS = st.sampled_from(
    [
        "v1", "v2", "chat", "completions", "embed", "embeddings", "rerank", "fim", "conversations", "agents",
        "responses", "files", "batch", "jobs", "models", "endpoints", "invocations", "restart", "datasets",
        "libraries", "audio", "ocr", "telemetry", "traces", "x", "", SECRET,
    ]
)  # fmt: skip
KEYS = st.sampled_from(
    [
        "model", "messages", "message", "stream", "tools", "type", "content", "connectors", "id", "store",
        "conversation_id", "inputs", "input", "texts", "images", "query", "documents", "agent_id",
        "previous_response_id", "background", "prompt_cache_key", "conversation", "zz_new_field",
    ]
)  # fmt: skip
LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["", SECRET, "web-search", "web_search", "image_url"])
)
JSON = st.recursive(
    LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=20,
)
BODIES = st.one_of(JSON.map(lambda v: json.dumps(v).encode()), st.binary(max_size=40), st.just(b""))
KNOWN_OPERATIONS = set(OPERATIONS)


def _request(method: str, segments: list[str], body: bytes) -> Outgoing:
    return Outgoing("test", method, "https", "api.example", None, "/" + "/".join(segments), "", {}, body)


def _check(reader: Any, request: Outgoing) -> None:
    try:
        asks = reader.read(request)
    except Unreadable as exc:
        assert SECRET not in str(exc) or SECRET in request.path  # a path segment may be named; a body value never
        return
    assert isinstance(asks, Asks)
    assert asks.operation in KNOWN_OPERATIONS
    assert asks.features <= FEATURES.keys()


@PROPS
@given(st.sampled_from(["GET", "POST", "DELETE", "PATCH"]), st.lists(SEGMENTS, min_size=0, max_size=5), BODIES)
def test_the_cohere_reader_answers_or_refuses(method: str, segments: list[str], body: bytes) -> None:
    _check(COHERE, _request(method, segments, body))


@PROPS
@given(st.sampled_from(["GET", "POST", "DELETE", "PATCH"]), st.lists(SEGMENTS, min_size=0, max_size=5), BODIES)
def test_the_mistral_reader_answers_or_refuses(method: str, segments: list[str], body: bytes) -> None:
    _check(MISTRAL, _request(method, segments, body))


@PROPS
@given(
    st.sampled_from(["application/json", "text/event-stream", "application/stream+json", ""]),
    st.sampled_from(["chat", "stream", "embed", "rerank", "moderation"]),
    st.lists(st.one_of(st.binary(max_size=30), JSON.map(lambda v: json.dumps(v).encode())), max_size=6),
)
def test_meters_take_any_bytes(kind: str, operation: str, chunks: list[bytes]) -> None:
    for reader in (COHERE, MISTRAL):
        meter = reader.meter(_request("POST", ["v1"], b""), Asks(operation), 200, {"content-type": kind})
        if meter is None:
            continue
        for chunk in chunks:
            meter.feed(chunk)
        found = meter.tokens()
        assert all(n is None or (isinstance(n, int) and n >= 0) for n in found)
