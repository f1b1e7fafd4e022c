"""A 2xx answer that is not JSON is the vendor's side breaking, on Cohere and Mistral as on every other vendor.

docs/client.md: "A 2xx answer that is not JSON (cut short, a proxy's page) ... is ``Unavailable`` with
``code="UnexpectedResponse"`` ... and is retried as any ``Unavailable`` is." The cohere SDK raises its ``ApiError``
with status 200 for such an answer (it was a ``BadRequest`` for HTTP 200, never retried); the mistralai SDK raises
its ``SDKError`` or ``ResponseValidationError`` with status 200 (it was an ``Unavailable`` without a code). The real
SDKs run over real HTTP against the loopback stand-ins.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from privsdk.client import Client
from privsdk.errors import Unavailable
from privsdk.resilience import Limits
from tests.test_client_errors import JSON, OUTPUT, Vendors, clean, raised
from tests.wire.server import Status

pytestmark = pytest.mark.usefixtures("no_machine_aws")

CUT = Status(
    200, JSON, ('{"id": "c", "message": {"role": "assistant", "content": [{"type": "text", "text": "' + OUTPUT).encode()
)
PAGE = Status(200, {"Content-Type": "text/html"}, f"<html><body>gateway: {OUTPUT}</body></html>".encode())
NOT_JSON_TYPE = Status(200, {"Content-Type": "text/plain"}, f'{{"text": "{OUTPUT}"'.encode())

CALLS: dict[str, Callable[[Client, str], object]] = {
    "chat": lambda c, target: c.chat(target, "hi"),
    "embed": lambda c, target: c.embed(target, ["hi"]),
    "rerank": lambda c, target: c.rerank(target, "q", ["d"]),
}
CASES = [
    ("cohere", "co", "chat", CUT),
    ("cohere", "co", "chat", PAGE),
    ("cohere", "co", "embed", PAGE),
    ("cohere", "co", "rerank", NOT_JSON_TYPE),
    ("mistral", "mi", "chat", CUT),
    ("mistral", "mi", "chat", PAGE),
    ("mistral", "mi", "embed", PAGE),
    ("mistral", "mi", "embed", NOT_JSON_TYPE),
]
IDS = [
    f"{vendor} {operation} {'cut' if fault is CUT else 'page' if fault is PAGE else 'text/plain'}"
    for vendor, _, operation, fault in CASES
]


@pytest.fixture
def vendors(tmp_path: Path) -> Iterator[Vendors]:
    with Vendors(tmp_path) as found:
        yield found


@pytest.mark.parametrize(("vendor", "target", "operation", "fault"), CASES, ids=IDS)
def test_a_2xx_answer_that_is_not_json_is_unavailable_and_retried(
    vendors: Vendors, vendor: str, target: str, operation: str, fault: Status
) -> None:
    client = vendors.client(limits=Limits(max_attempts=2, backoff_base_s=0.01))
    vendors.servers[vendor].fail(fault, fault)
    error = clean(raised(lambda: CALLS[operation](client, target)))
    assert isinstance(error, Unavailable) and error.transient and error.code == "UnexpectedResponse"
    assert vendors.sent(vendor) == 2  # retried
    assert vendors.outcomes(client) == [("error", "unavailable")] * 2
    assert all(r.http_status is None for r in vendors.records)

    vendors.records.clear()
    vendors.servers[vendor].fail(fault)  # once: the retry gets the answer
    CALLS[operation](client, target)
    assert vendors.outcomes(client) == [("error", "unavailable"), ("ok", None)]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"object": "error", "message": OUTPUT, "type": "service_unavailable", "code": "1300"}, "service_unavailable"),
        ({"id": "c", "choices": None, "note": OUTPUT}, "UnexpectedResponse"),
    ],
    ids=["an error object", "no completion"],
)
def test_a_mistral_200_json_body_keeps_its_meaning(vendors: Vendors, body: dict[str, Any], code: str) -> None:
    """A 200 JSON body that is Mistral's error object is still read as that error; other JSON that is not a
    completion cannot be read."""
    client = vendors.client()
    vendors.servers["mistral"].fail(Status(200, JSON, json.dumps(body).encode()))
    error = clean(raised(lambda: client.chat("mi", "hi")))
    assert isinstance(error, Unavailable) and error.transient and error.code == code
