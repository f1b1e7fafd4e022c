# ruff: noqa: E501  (table rows read best one per line)
"""Cohere's wire reader as a table: documented paths and body fields -> what the request asks for; and its meter."""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
from typing import Any

import pytest
from cohere.finetuning.finetuning.types import BaseModel, FinetunedModel, Hyperparameters, Settings
from cohere.finetuning.raw_client import AsyncRawFinetuningClient, RawFinetuningClient
from cohere.raw_base_client import AsyncRawBaseCohere, RawBaseCohere
from cohere.v2.raw_client import AsyncRawV2Client, RawV2Client

import privsdk
import privsdk.cohere
from privsdk.outbound.judge import Guard
from privsdk.outbound.outgoing import Asks, Outgoing, Unreadable
from privsdk.outbound.wire import reader
from privsdk.outbound.wire.cohere import READER
from tests.wire.cohere import BILLED, CohereApp
from tests.wire.server import LoopbackServer, Recorded

JSON = {"content-type": "application/json"}
SSE = {"content-type": "text/event-stream"}


def out(method: str, path: str, body: Any = None, host: str = "api.cohere.com") -> Outgoing:
    raw = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    return Outgoing("cohere", method, "https", host, None, path, "", JSON, raw)


MSG = [{"role": "user", "content": "hi"}]
IMAGE = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]
#: A fine-tuned model's creation, as the cohere SDK's ``finetuning.create_finetuned_model`` sends it.
TUNED: dict[str, Any] = {
    "name": "support-bot",
    "settings": {"base_model": {"base_type": "BASE_TYPE_CHAT", "name": "command-r-08-2024"}, "dataset_id": "ds-1"},
}

CASES: list[tuple[Outgoing, Asks]] = [
    # v2 (ClientV2)
    (out("POST", "/v2/chat", {"model": "command-a-03-2025", "messages": MSG}), Asks("chat", "command-a-03-2025")),
    (out("POST", "/v2/chat", {"model": "command-a", "messages": MSG, "stream": True}), Asks("stream", "command-a")),
    (out("POST", "/v2/chat", {"model": "m", "messages": MSG, "stream": False}), Asks("chat", "m")),
    (out("POST", "/v2/chat", {"model": "m", "messages": IMAGE}), Asks("chat", "m", frozenset({"file_inputs"}))),
    (
        out("POST", "/v2/chat", {"model": "m", "messages": MSG, "documents": [{"data": {"text": "t"}}]}),
        Asks("chat", "m"),
    ),
    (out("POST", "/v2/embed", {"model": "embed-v4.0", "texts": ["a"]}), Asks("embed", "embed-v4.0")),
    (
        out("POST", "/v2/embed", {"model": "e", "images": ["data:image/png;base64,AA=="]}),
        Asks("embed", "e", frozenset({"file_inputs"})),
    ),
    (
        out("POST", "/v2/embed", {"model": "e", "inputs": [{"content": [{"type": "image_url", "image_url": {}}]}]}),
        Asks("embed", "e", frozenset({"file_inputs"})),
    ),
    (
        out("POST", "/v2/embed", {"model": "e", "inputs": [{"content": [{"type": "text", "text": "a"}]}]}),
        Asks("embed", "e"),
    ),
    (
        out("POST", "/v2/rerank", {"model": "rerank-v3.5", "query": "q", "documents": ["d"]}),
        Asks("rerank", "rerank-v3.5"),
    ),
    (out("POST", "/v2/batches", {"name": "b"}), Asks("batch")),
    (out("GET", "/v2/batches/abc"), Asks("batch")),
    (out("POST", "/v2/batches/abc:cancel"), Asks("batch")),
    (out("POST", "/v2/audio/transcriptions", b"--multipart"), Asks("audio")),
    (out("POST", "/v2/parse", {"model": "m", "document": {}}), Asks("other")),
    # v1 (Client)
    (out("POST", "/v1/chat", {"model": "command-r", "message": "hi"}), Asks("chat", "command-r")),
    (out("POST", "/v1/chat", {"message": "hi", "stream": True}), Asks("stream")),
    (
        out("POST", "/v1/chat", {"message": "hi", "connectors": [{"id": "web-search"}]}),
        Asks("chat", None, frozenset({"web_search"})),
    ),
    (
        out("POST", "/v1/chat", {"message": "hi", "connectors": [{"id": "my-drive"}]}),
        Asks("chat", None, frozenset({"hosted_tools"})),
    ),
    (
        out("POST", "/v1/chat", {"message": "hi", "conversation_id": "c1"}),
        Asks("chat", None, frozenset({"stored_responses"})),
    ),
    (out("POST", "/v1/chat", {"message": "hi", "search_queries_only": True}), Asks("chat")),
    (out("POST", "/v1/generate", {"prompt": "p", "stream": True}), Asks("stream")),
    (out("POST", "/v1/summarize", {"text": "t"}), Asks("chat")),
    (out("POST", "/v1/embed", {"model": "embed-english-v3.0", "texts": ["a"]}), Asks("embed", "embed-english-v3.0")),
    (out("POST", "/v1/rerank", {"model": "r", "query": "q", "documents": ["d"]}), Asks("rerank", "r")),
    (out("POST", "/v1/classify", {"inputs": ["a"]}), Asks("other")),
    (out("POST", "/v1/tokenize", {"text": "a", "model": "m"}), Asks("other")),
    (out("POST", "/v1/detokenize", {"tokens": [1], "model": "m"}), Asks("other")),
    (out("POST", "/v1/datasets", b"--multipart"), Asks("files")),
    (out("GET", "/v1/datasets/usage"), Asks("files")),
    (out("DELETE", "/v1/datasets/d1"), Asks("files")),
    (out("POST", "/v1/embed-jobs", {"dataset_id": "d"}), Asks("batch")),
    (out("POST", "/v1/embed-jobs/j/cancel"), Asks("batch")),
    (out("POST", "/v1/finetuning/finetuned-models", TUNED), Asks("fine_tune", "command-r-08-2024")),
    (out("PATCH", "/v1/finetuning/finetuned-models/f", TUNED), Asks("fine_tune", "command-r-08-2024")),
    (out("GET", "/v1/finetuning/finetuned-models"), Asks("fine_tune")),
    (out("GET", "/v1/finetuning/finetuned-models/f"), Asks("fine_tune")),
    (out("DELETE", "/v1/finetuning/finetuned-models/f"), Asks("fine_tune")),
    (out("GET", "/v1/finetuning/finetuned-models/f/events"), Asks("fine_tune")),
    (out("GET", "/v1/finetuning/finetuned-models/f/training-step-metrics"), Asks("fine_tune")),
    (out("POST", "/v1/connectors", {"name": "c", "url": "https://x"}), Asks("other")),
    (out("GET", "/v1/connectors/c/oauth/authorize"), Asks("other")),
    (out("GET", "/v1/models"), Asks("models")),
    (out("GET", "/v1/models/command-r"), Asks("models")),
    (out("POST", "/v1/check-api-key"), Asks("models")),
    # SageMaker endpoints (SagemakerClientV2): the endpoint is the model, the body's shape the operation
    (out("POST", "/endpoints/my-ep/invocations", {"messages": MSG}), Asks("chat", deployment="my-ep")),
    (
        out("POST", "/endpoints/my-ep/invocations-response-stream", {"messages": MSG}),
        Asks("stream", deployment="my-ep"),
    ),
    (out("POST", "/endpoints/my%2Fep/invocations", {"texts": ["a"]}), Asks("embed", deployment="my/ep")),
    (out("POST", "/endpoints/ep/invocations", {"query": "q", "documents": ["d"]}), Asks("rerank", deployment="ep")),
]


@pytest.mark.parametrize(("request_", "expected"), CASES, ids=[f"{c[0].method} {c[0].path}" for c in CASES])
def test_reads_what_the_request_asks_for(request_: Outgoing, expected: Asks) -> None:
    assert READER.read(request_) == expected


def test_the_registry_serves_this_reader() -> None:
    assert reader("cohere") is READER


UNREADABLE = [
    out("POST", "/v3/chat", {"message": "secret prompt"}),
    out("POST", "/v2/brand-new", {"message": "secret prompt"}),
    out("POST", "/chat", {"message": "secret prompt"}),
    out("POST", "/", b""),
    out("POST", "/v2/chat", b"not json: secret prompt"),
    out("POST", "/v2/chat", [1, 2]),
    out("POST", "/endpoints/ep/invocations", {"prompt": "secret prompt"}),
    # Another maker's model on a SageMaker endpoint (Hugging Face text generation): a generation, once read as a
    # Cohere embed.
    out("POST", "/endpoints/ep/invocations", {"inputs": "secret prompt", "parameters": {"max_new_tokens": 20}}),
    out("POST", "/endpoints/ep/other", {"messages": MSG}),
    # Writes to fine-tuning that the SDK never sends: no route whose body privsdk reads.
    out("POST", "/v1/finetuning/finetuned-models/f", {"name": "secret prompt"}),
    out("PUT", "/v1/finetuning/finetuned-models/f", {"name": "secret prompt"}),
    out("PATCH", "/v1/finetuning/finetuned-models", {"name": "secret prompt"}),
    out("POST", "/v1/finetuning/other", {"name": "secret prompt"}),
    # Fields the reader refuses in the body, given in the query (request_options' additional_query_parameters)
    # instead: the SDK sends no query beside a body, and one the guard does not read went out.
    out("POST", "/v2/chat", {"model": "command-a-03-2025", "messages": MSG})._replace(
        query="conversation_id=secret+prompt&store=true&connectors=web-search"
    ),
    out("POST", "/v2/embed", {"model": "embed-v4.0", "texts": ["t"]})._replace(query="store=true"),
]


@pytest.mark.parametrize("request_", UNREADABLE, ids=[f"{r.method} {r.path}" for r in UNREADABLE])
def test_an_unknown_shape_is_unreadable_and_the_message_holds_no_body_value(request_: Outgoing) -> None:
    with pytest.raises(Unreadable) as caught:
        READER.read(request_)
    assert "secret" not in str(caught.value)


def _feed(meter: Any, data: bytes, size: int) -> tuple[int | None, int | None]:
    for i in range(0, len(data), size):
        meter.feed(data[i : i + size])
    result: tuple[int | None, int | None] = meter.tokens()
    return result


def _app_reply(body: dict[str, Any]) -> bytes:
    """What the loopback Cohere app answers (the same bytes the SDK would read)."""
    request = Recorded(
        "POST",
        "/v2/chat",
        {},
        {"content-type": "application/json", "authorization": "Bearer k"},
        json.dumps(body).encode(),
    )
    reply = CohereApp("Hello there, friend")(request)
    return b"".join(reply.chunks) if reply.chunks is not None else reply.body


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_meter_counts_billed_tokens_of_an_answer_and_of_a_stream(size: int) -> None:
    chat = {"model": "m", "messages": MSG}
    asks = READER.read(out("POST", "/v2/chat", chat))
    meter = READER.meter(out("POST", "/v2/chat", chat), asks, 200, JSON)
    assert _feed(meter, _app_reply(chat), size) == (BILLED["input_tokens"], BILLED["output_tokens"])
    streamed = {**chat, "stream": True}
    asks = READER.read(out("POST", "/v2/chat", streamed))
    meter = READER.meter(out("POST", "/v2/chat", streamed), asks, 200, SSE)
    assert _feed(meter, _app_reply(streamed).replace(b"\n", b"\r\n"), size) == (11, 4)


def test_meter_falls_back_to_processed_tokens_and_reads_v1_lines_and_meta() -> None:
    meter = READER.meter(out("POST", "/v2/chat"), Asks("chat"), 200, JSON)
    assert _feed(meter, b'{"usage": {"tokens": {"input_tokens": 5, "output_tokens": 2.0}}}', 3) == (5, 2)
    meter = READER.meter(out("POST", "/v2/embed"), Asks("embed"), 200, JSON)
    assert _feed(meter, b'{"meta": {"billed_units": {"input_tokens": 9}}}', 5) == (9, None)
    lines = (
        b'{"event_type": "text-generation", "text": "a"}\n'
        b'{"event_type": "stream-end", "response": '
        b'{"meta": {"billed_units": {"input_tokens": 3, "output_tokens": 1}}}}\n'
    )
    meter = READER.meter(out("POST", "/v1/chat"), Asks("stream"), 200, {"content-type": "application/stream+json"})
    assert _feed(meter, lines, 10) == (3, 1)


def test_meter_counts_nothing_for_an_error_or_an_unparsable_answer() -> None:
    assert READER.meter(out("POST", "/v2/chat"), Asks("chat"), 429, JSON) is None
    meter = READER.meter(out("POST", "/v2/chat"), Asks("chat"), 200, JSON)
    assert _feed(meter, b'{"usage": ', 4) == (None, None)


@pytest.mark.parametrize(
    ("host", "path", "body", "expected"),
    [
        # Cohere on Azure AI Foundry: the host also serves OpenAI-protocol offerings; the cohere SDK speaks Cohere's.
        ("name.swedencentral.models.ai.azure.com", "/v2/chat", {"model": "Cohere-command-a", "messages": MSG},
         Asks("chat", "Cohere-command-a")),
        ("res.services.ai.azure.com", "/v2/embed", {"model": "Cohere-embed-v4", "texts": ["a"]},
         Asks("embed", "Cohere-embed-v4")),
        ("runtime.sagemaker.eu-west-1.amazonaws.com", "/endpoints/ep/invocations", {"messages": MSG},
         Asks("chat", deployment="ep")),
    ],
)  # fmt: skip
def test_the_guard_reads_a_cohere_request_with_this_reader_wherever_it_goes(
    host: str, path: str, body: Any, expected: Asks
) -> None:
    verdict = Guard(environ={"PRIVSDK_USAGE": "none"}).judge(out("POST", path, body, host))
    assert verdict.asks == expected and verdict.wire is READER


def test_the_cohere_bedrock_client_is_read_as_bedrock() -> None:
    bedrock = pytest.importorskip("privsdk.outbound.wire.bedrock")
    request = out(
        "POST", "/model/cohere.command-r-plus-v1:0/invoke", {"messages": MSG}, "bedrock-runtime.eu-west-1.amazonaws.com"
    )
    assert Guard(environ={"PRIVSDK_USAGE": "none"}).judge(request).wire is bedrock.READER


@pytest.mark.parametrize("raw", [b"1e999", b"-1e999", b"Infinity", b"NaN", b"100000000000000000000", b"-1", b"true"])
@pytest.mark.parametrize("size", [1, 4096])
def test_a_count_that_is_no_count_is_none_and_never_raises(raw: bytes, size: int) -> None:
    """1e999 and Infinity parse as inf, which int() refuses: the meter never raises into the app's call, and a
    count that is none (past MAX_COUNT, negative, true) gives way to the processed tokens, or to none."""
    body = b'{"usage": {"billed_units": {"input_tokens": %s, "output_tokens": %s}, "tokens": {"input_tokens": 4}}}'
    meter = READER.meter(out("POST", "/v2/chat"), Asks("chat"), 200, JSON)
    assert _feed(meter, body % (raw, raw), size) == (4, None)
    event = b'data: {"type": "message-end", "delta": {"usage": {"billed_units": {"input_tokens": %s}}}}\n\n'
    meter = READER.meter(out("POST", "/v2/chat"), Asks("stream"), 200, SSE)
    assert _feed(meter, event % raw, size) == (None, None)


# -- the fields a body may hold -------------------------------------------------------------------------------------

CANARY = "canary-value-7f3e"


def _sdk_fields(*methods: Any) -> frozenset[str]:
    """The JSON names of the body the cohere SDK's raw-client ``methods`` send: the keys of the ``json={...}`` each
    one builds (its parameters under their JSON names, and ``stream``, which the method sets itself)."""
    found: set[str] = set()
    for method in methods:
        tree = ast.parse(textwrap.dedent(inspect.getsource(method)))
        bodies = [n.value for n in ast.walk(tree) if isinstance(n, ast.keyword) and n.arg == "json"]
        assert len(bodies) == 1 and isinstance(bodies[0], ast.Dict), method
        found.update(k.value for k in bodies[0].keys if isinstance(k, ast.Constant) and isinstance(k.value, str))
    return frozenset(found)


def _both(name: str, sync: type, asynchronous: type) -> frozenset[str]:
    return _sdk_fields(getattr(sync, name), getattr(asynchronous, name))


V1 = (RawBaseCohere, AsyncRawBaseCohere)
V2 = (RawV2Client, AsyncRawV2Client)
#: The cohere SDK's fields privsdk refuses, with why.
REFUSED_BY_DESIGN = {"preset": "a prompt and settings kept on Cohere's side, which the request does not show"}
#: Each body the reader reads: (path, a body it reads, the fields the installed SDK sends in it).
BODIES: dict[str, tuple[str, dict[str, Any], frozenset[str]]] = {
    "v2 chat": ("/v2/chat", {"model": "m", "messages": MSG}, _both("chat", *V2) | _both("chat_stream", *V2)),
    "v1 chat": ("/v1/chat", {"message": "hi"}, _both("chat", *V1) | _both("chat_stream", *V1)),
    "v1 generate": ("/v1/generate", {"prompt": "p"}, _both("generate", *V1) | _both("generate_stream", *V1)),
    "v1 summarize": ("/v1/summarize", {"text": "t"}, _both("summarize", *V1)),
    "v1 embed": ("/v1/embed", {"texts": ["a"]}, _both("embed", *V1)),
    "v2 embed": ("/v2/embed", {"texts": ["a"]}, _both("embed", *V2)),
    "v1 rerank": ("/v1/rerank", {"query": "q", "documents": ["d"]}, _both("rerank", *V1)),
    "v2 rerank": ("/v2/rerank", {"query": "q", "documents": ["d"]}, _both("rerank", *V2)),
}
# The SageMaker clients post the same bodies to an endpoint, less ``model`` and ``stream`` and, for a rerank, with
# ``api_version`` (cohere.aws_client.map_request_to_bedrock).
_SAGEMAKER = "/endpoints/ep/invocations"
BODIES |= {
    f"SageMaker {name}": (
        _SAGEMAKER,
        base,
        fields - {"model", "stream"} | ({"api_version"} if "rerank" in name else set()),
    )
    for name, (_, base, fields) in list(BODIES.items())
    if name not in ("v1 generate", "v1 summarize")  # neither chat, embed nor rerank on an endpoint: UNREADABLE
}
FIELD_CASES = [(name, field) for name, (_, _, fields) in BODIES.items() for field in sorted(fields)]


def test_the_table_holds_the_sdks_fields() -> None:
    """The SDK's bodies are found (a change in how it builds them fails here, not by an empty table), and each field
    refused by design is one it sends."""
    assert {"model", "messages", "documents", "priority", "stream"} <= BODIES["v2 chat"][2]
    assert {"message", "connectors", "conversation_id"} <= BODIES["v1 chat"][2]
    assert REFUSED_BY_DESIGN.keys() <= set().union(*(fields for _, _, fields in BODIES.values()))


@pytest.mark.parametrize(("body", "field"), FIELD_CASES, ids=[f"{b}.{f}" for b, f in FIELD_CASES])
def test_every_field_the_sdk_sends_is_read_or_refused_by_design(body: str, field: str) -> None:
    """A field of a new cohere release fails here until it is judged: put on its body's allow-list in
    privsdk/outbound/wire/cohere.py, or refused with why in REFUSED_BY_DESIGN."""
    path, base, _ = BODIES[body]
    request = out("POST", path, {field: None, **base})
    if field in REFUSED_BY_DESIGN:
        with pytest.raises(Unreadable, match=f"does not read in .*: {field} "):
            READER.read(request)
    else:
        READER.read(request)


@pytest.mark.parametrize("body", BODIES)
def test_a_field_no_sdk_sends_is_refused_by_name_never_by_value(body: str) -> None:
    path, base, _ = BODIES[body]
    with pytest.raises(Unreadable) as caught:
        READER.read(out("POST", path, {**base, "zz_new_field": CANARY}))
    assert "zz_new_field" in str(caught.value) and CANARY not in str(caught.value)


def test_routes_cohere_does_not_have_are_unknown() -> None:
    for path in ("/v2/generate", "/v2/summarize", "/v2/chat/x", "/v2/embed/x"):
        with pytest.raises(Unreadable, match="unknown path shape"):
            READER.read(out("POST", path, {"model": "m"}))


# -- fine-tuned models ----------------------------------------------------------------------------------------------


def _tuned(**settings: Any) -> dict[str, Any]:
    """TUNED with ``settings`` set."""
    return {**TUNED, "settings": {**TUNED["settings"], **settings}}


def _base(**fields: Any) -> dict[str, Any]:
    """TUNED with ``fields`` set in its base model."""
    return _tuned(base_model={**TUNED["settings"]["base_model"], **fields})


#: Each object of a fine-tuned model's body the reader reads: (its path from the body, the cohere SDK's type).
TUNED_OBJECTS: dict[str, Any] = {
    "": FinetunedModel,
    "settings": Settings,
    "settings.base_model": BaseModel,
    "settings.hyperparameters": Hyperparameters,
}
#: The SDK's fields of a fine-tuned model that privsdk refuses when set, with why.
TUNED_REFUSED = {"settings.wandb": "a W&B project and API key: Cohere reports the run to Weights & Biases"}
#: The fields that lead to the base model's name.
JUDGED = {("", "settings"), ("settings", "base_model"), ("settings.base_model", "name")}
TUNED_FIELDS = [(where, field) for where, model in TUNED_OBJECTS.items() for field in sorted(model.model_fields)]


def _with(where: str, field: str, value: Any) -> dict[str, Any]:
    """TUNED with ``field`` set to ``value`` in its object ``where``."""
    body: dict[str, Any] = json.loads(json.dumps(TUNED))
    target = body
    for key in filter(None, where.split(".")):
        target = target.setdefault(key, {})
    target[field] = value
    return body


def test_the_fine_tuned_model_table_holds_the_sdks_fields() -> None:
    """The update sends fields of the type the creation sends whole; each refused field is one the SDK has."""
    assert _sdk_fields(RawFinetuningClient.update_finetuned_model) == {"name", "settings"}
    assert _sdk_fields(AsyncRawFinetuningClient.update_finetuned_model) <= FinetunedModel.model_fields.keys()
    assert {"wandb", "base_model", "hyperparameters"} <= Settings.model_fields.keys()
    assert set(TUNED_REFUSED) <= {f"{where}.{field}".lstrip(".") for where, field in TUNED_FIELDS}


@pytest.mark.parametrize(("where", "field"), TUNED_FIELDS, ids=[f"{w or 'model'}.{f}" for w, f in TUNED_FIELDS])
def test_every_fine_tuned_model_field_the_sdk_sends_is_read_or_refused_by_design(where: str, field: str) -> None:
    """A field of a new cohere release fails here until it is judged: put on its object's list in
    privsdk/outbound/wire/cohere.py, or refused with why in TUNED_REFUSED."""
    value: Any = {"project": CANARY, "api_key": CANARY} if f"{where}.{field}" in TUNED_REFUSED else None
    if (where, field) in JUDGED:
        return  # what leads to the model judged, which a request must name: TUNED_REFUSALS
    request = out("POST", "/v1/finetuning/finetuned-models", _with(where, field, value))
    if value is not None:
        with pytest.raises(Unreadable, match=f"with {where}.{field},") as caught:
            READER.read(request)
        assert CANARY not in str(caught.value)
    else:
        assert READER.read(request) == Asks("fine_tune", "command-r-08-2024")


TUNED_READ: list[tuple[str, dict[str, Any]]] = [
    ("hyperparameters", _tuned(hyperparameters={"train_epochs": 1, "learning_rate": 0.01, "lora_target_modules": "LORA_TARGET_MODULES_QV"})),
    ("the SDK's wandb=None", _tuned(wandb=None)),
    ("a model object sent back whole", TUNED | {"id": "f", "status": "STATUS_READY", "created_at": "2025-01-01T00:00:00Z"}),
    ("a deprecated strategy", _base(strategy="STRATEGY_VANILLA")),
]  # fmt: skip


@pytest.mark.parametrize(("name", "body"), TUNED_READ, ids=[c[0] for c in TUNED_READ])
def test_a_fine_tuned_model_is_fine_tune_for_the_base_model_it_tunes(name: str, body: dict[str, Any]) -> None:
    for method, path in (("POST", "/v1/finetuning/finetuned-models"), ("PATCH", "/v1/finetuning/finetuned-models/f")):
        assert READER.read(out(method, path, body)) == Asks("fine_tune", "command-r-08-2024")


TUNED_REFUSALS: list[tuple[str, Any, str]] = [
    ("a W&B configuration", _tuned(wandb={"project": CANARY, "api_key": CANARY, "entity": CANARY}), "with settings.wandb,"),
    ("an empty W&B configuration", _tuned(wandb={}), "with settings.wandb,"),
    ("no base model name", _tuned(base_model={"base_type": "BASE_TYPE_CHAT"}), "names no model"),
    ("a null base model name", _base(name=None), "names no model"),
    ("no base model", _tuned(base_model=None), "names no model"),
    ("an empty base model name", _base(name=""), "names no model"),
    ("a base model name that is no string", _base(name=[CANARY]), "names no model"),
    ("no settings", {"name": CANARY}, "names no model"),
    ("settings that are not an object", {"name": "n", "settings": CANARY}, "settings is not an object"),
    ("a base model that is not an object", _tuned(base_model=CANARY), "settings.base_model is not an object"),
    ("an unknown top-level field", TUNED | {"zz_new_field": CANARY}, "fine-tuned model: zz_new_field ("),
    ("an unknown settings field", _tuned(zz_new_field=CANARY), "settings: zz_new_field ("),
    ("an unknown base model field", _base(zz_new_field=CANARY), "settings.base_model: zz_new_field ("),
    ("an unknown hyperparameter", _tuned(hyperparameters={"zz_new_field": CANARY}), "settings.hyperparameters: zz_new_field ("),
    ("a hyperparameter holding an object", _tuned(hyperparameters={"train_epochs": {"x": CANARY}}), "no number or name"),
    ("a body that is not an object", [CANARY], "not a JSON object"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "body", "says"), TUNED_REFUSALS, ids=[c[0] for c in TUNED_REFUSALS])
def test_a_fine_tuned_model_with_what_privsdk_does_not_judge_is_refused_by_name_never_by_value(
    name: str, body: Any, says: str
) -> None:
    """Its body was not read: a W&B configuration (Cohere reporting the run, with a W&B key, to a third party), any
    field, was sent, and the model tuned never judged. Now each is refused, on creation and on update."""
    for method, path in (("POST", "/v1/finetuning/finetuned-models"), ("PATCH", "/v1/finetuning/finetuned-models/f")):
        with pytest.raises(Unreadable) as caught:
            READER.read(out(method, path, body))
        assert says in str(caught.value) and CANARY not in str(caught.value)


# -- feature fields of a shape the reader does not expect ----------------------------------------------------------

SHAPES: list[tuple[str, str, dict[str, Any], str]] = [
    ("v1 connectors as an object", "/v1/chat", {"message": "hi", "connectors": {"id": "web-search"}}, "connectors is not a list of objects"),
    ("v1 connectors as a name", "/v1/chat", {"message": "hi", "connectors": "web-search"}, "connectors is not a list of objects"),
    ("v1 connectors as a list of names", "/v1/chat", {"message": "hi", "connectors": ["web-search"]}, "connectors is not a list of objects"),
    ("a v1 tool with a type", "/v1/chat", {"message": "hi", "tools": [{"type": "web_search", "name": CANARY}]}, "not a function tool"),
    ("v1 tools that are not a list", "/v1/chat", {"message": "hi", "tools": {"name": "f"}}, "tools is not a list"),
    ("a v2 web search tool", "/v2/chat", {"model": "m", "messages": MSG, "tools": [{"type": "web_search"}]}, "not a function tool"),
    ("a v2 tool of a type not read", "/v2/chat", {"model": "m", "messages": MSG, "tools": [{"type": CANARY}]}, "not a function tool"),
    ("a v2 tool of no type", "/v2/chat", {"model": "m", "messages": MSG, "tools": [{"function": {"name": "f"}}]}, "not a function tool"),
    ("a v2 tool that is not an object", "/v2/chat", {"model": "m", "messages": MSG, "tools": ["web_search"]}, "not a function tool"),
    ("an image part of no type", "/v2/chat", {"model": "m", "messages": [{"role": "user", "content": [{"image_url": {"url": CANARY}}]}]}, "content part of no type"),
    ("a part of a type not read", "/v2/chat", {"model": "m", "messages": [{"role": "user", "content": [{"type": "audio", "audio": CANARY}]}]}, "content part of no type"),
    ("a part that is not an object", "/v2/chat", {"model": "m", "messages": [{"role": "user", "content": [CANARY]}]}, "content part of no type"),
    ("content that is an object", "/v2/chat", {"model": "m", "messages": [{"role": "user", "content": {"type": "text", "text": CANARY}}]}, "neither text nor a list"),
    ("messages that are not a list", "/v2/chat", {"model": "m", "messages": {"role": "user", "content": CANARY}}, "messages is not a list"),
    ("an embed part of no type", "/v2/embed", {"model": "e", "inputs": [{"content": [{"text": CANARY}]}]}, "content part of no type"),
    ("an embed part of a type not read", "/v2/embed", {"model": "e", "inputs": [{"content": [{"type": "document", "text": CANARY}]}]}, "content part of no type"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "path", "body", "says"), SHAPES, ids=[c[0] for c in SHAPES])
def test_a_feature_field_of_a_shape_the_reader_does_not_expect_is_refused(
    name: str, path: str, body: dict[str, Any], says: str
) -> None:
    """Each was skipped, the request read as plain chat (or embed) and sent: connectors other than a list reach a
    connector all the same, a tool of another type may be run at Cohere, a part without its type may be an image.
    The same body at a SageMaker endpoint is refused too."""
    for where in (path, _SAGEMAKER):
        with pytest.raises(Unreadable) as caught:
            READER.read(out("POST", where, body))
        assert says in str(caught.value) and CANARY not in str(caught.value)


CHAT_PARTS: list[tuple[str, dict[str, Any], Asks]] = [
    ("v2 function tools", {"model": "m", "messages": MSG, "tools": [{"type": "function", "function": {"name": "f"}}]}, Asks("chat", "m")),
    ("text, document and thinking parts", {"model": "m", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "t"}, {"type": "text", "text": "a"}]},
        {"role": "tool", "tool_call_id": "c", "content": [{"type": "document", "document": {"data": "d"}}]},
    ]}, Asks("chat", "m")),
    ("an image after a text part", {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, *IMAGE[0]["content"]]}]}, Asks("chat", "m", frozenset({"file_inputs"}))),
    ("a message with no content", {"model": "m", "messages": [*MSG, {"role": "assistant", "tool_calls": []}]}, Asks("chat", "m")),
]  # fmt: skip


@pytest.mark.parametrize(("name", "body", "expected"), CHAT_PARTS, ids=[c[0] for c in CHAT_PARTS])
def test_the_shapes_the_sdk_sends_are_read(name: str, body: dict[str, Any], expected: Asks) -> None:
    assert READER.read(out("POST", "/v2/chat", body)) == expected


def test_an_image_part_after_another_is_still_checked() -> None:
    """The reader once stopped at the first image: a part of no type after it was never looked at."""
    content = [*IMAGE[0]["content"], {"audio": CANARY}]
    with pytest.raises(Unreadable, match="content part of no type"):
        READER.read(out("POST", "/v2/chat", {"model": "m", "messages": [{"role": "user", "content": content}]}))


def test_the_cohere_drop_in_sends_nothing_for_a_feature_field_of_an_unexpected_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """End to end, with the cohere SDK itself: a v2 web search tool and v1 connectors given as an object were read
    as plain chat and sent. Each is now refused before a byte leaves; a function tool is sent."""
    app = CohereApp("It is sunny")
    with LoopbackServer(app) as server:
        monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{server.url}=cohere.saas")
        monkeypatch.setenv("PRIVSDK_USAGE", "none")
        v2 = privsdk.cohere.ClientV2(api_key="k", base_url=server.url, max_retries=0)
        v1 = privsdk.cohere.Client(api_key="k", base_url=server.url, max_retries=0)
        part = {"image_url": {"url": f"https://x/{CANARY}.png"}}  # an image part without its type
        refused: list[tuple[str, Any]] = [
            ("not a function tool", lambda: v2.chat(model="command-a-03-2025", messages=MSG, tools=[{"type": "web_search"}])),
            ("content part of no type", lambda: v2.chat(model="command-a-03-2025", messages=[{"role": "user", "content": [part]}])),
            ("connectors is not a list", lambda: v1.chat(model="command-r", message="hi", request_options={"additional_body_parameters": {"connectors": {"id": "web-search"}}})),
        ]  # fmt: skip
        for says, call in refused:
            with pytest.raises(privsdk.PolicyViolation) as caught:
                call()
            assert says in str(caught.value) and CANARY not in str(caught.value)
        assert server.requests == []
        tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
        v2.chat(model="command-a-03-2025", messages=MSG, tools=[tool])
        assert [r.path for r in server.requests] == ["/v2/chat"]
        assert server.errors == []
