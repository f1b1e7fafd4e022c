"""``privsdk.mistralai``: the mistralai SDK's own client with the guard in its transport.

:func:`exercise` is written against ``mistralai.client``. It runs once with the SDK and once with
``privsdk.mistralai``, each against a loopback la Plateforme, and both runs must see the same results,
types and errors, and send the same requests. A refused request sends nothing, is not retried (even
with the SDK's retries on) and raises an exception that is both ``privsdk.PolicyViolation`` and
mistralai's ``MistralError``. The SDK's telemetry stays off under the drop-in.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import mistralai.client
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import MistralError
from mistralai.client.utils import BackoffStrategy, RetryConfig
from privsdk_mistral import dropin

import privsdk
import privsdk.mistralai
from privsdk.outbound.judge import Guard
from tests.conftest import clean_env
from tests.guard_support import records
from tests.weather_tool import TOOLS
from tests.wire.mistral import MODEL_ID, MistralApp
from tests.wire.server import LoopbackServer, Recorded, Reply, Status, json_reply

KEY = "mistral-dropin-key"
MODEL = "mistral-large-latest"
MSG: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
CANARY_MSG: Any = [{"role": "user", "content": "CANARY-telemetry-5d1"}]


def exercise(sdk: Any, url: str, app: MistralApp, server: LoopbackServer) -> dict[str, Any]:
    """A script written against ``mistralai.client``; ``sdk`` is that module or ``privsdk.mistralai``."""
    seen: dict[str, Any] = {}
    client = sdk.Mistral(api_key=KEY, server_url=url)
    answer = client.chat.complete(model=MODEL, messages=MSG)
    seen["chat"] = (type(answer), answer.choices[0].message.content, answer.usage.prompt_tokens)
    with client.chat.stream(model=MODEL, messages=MSG) as events:
        seen["stream"] = [(type(e.data), e.data.choices[0].delta.content) for e in events]
    vectors = client.embeddings.create(model="mistral-embed", inputs=["alpha beta", "gamma"])
    seen["embed"] = (type(vectors), [d.embedding for d in vectors.data], vectors.usage.prompt_tokens)
    # The tool loop of Mistral's docs: the assistant message goes back as it came, then the tool's answer.
    app.tool_calls = [("D681PevKs", "get_weather", '{"city": "Paris"}')]
    messages: list[Any] = list(MSG)
    first = client.chat.complete(model=MODEL, messages=messages, tools=TOOLS)
    messages.append(first.choices[0].message)
    for call in first.choices[0].message.tool_calls:
        messages.append({"role": "tool", "name": call.function.name, "content": "21C", "tool_call_id": call.id})
    app.tool_calls = ()
    final = client.chat.complete(model=MODEL, messages=messages, tools=TOOLS)
    seen["tools"] = ([c.function.name for c in first.choices[0].message.tool_calls], final.choices[0].message.content)
    for status in (429, 400):
        server.fail(Status(status, body=b'{"object": "error", "message": "no", "type": "t", "code": null}'))
        try:
            client.chat.complete(model=MODEL, messages=MSG)
        except MistralError as exc:
            seen[f"error {status}"] = (type(exc).__name__, exc.status_code)

    async def run() -> tuple[Any, list[Any]]:
        reply = await client.chat.complete_async(model=MODEL, messages=MSG)
        async with await client.chat.stream_async(model=MODEL, messages=MSG) as stream:
            pieces = [e.data.choices[0].delta.content async for e in stream]
        return reply.choices[0].message.content, pieces

    seen["async"] = asyncio.run(run())
    return seen


@pytest.fixture
def wire() -> Iterator[tuple[MistralApp, LoopbackServer]]:
    app = MistralApp("Il fait beau à Paris")
    with LoopbackServer(app) as server:
        yield app, server
    assert server.errors == []


def declare(monkeypatch: pytest.MonkeyPatch, server: LoopbackServer, offering: str = "mistral.api") -> None:
    """Declare the loopback server as the offering's endpoint, through the environment alone."""
    monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{server.url}={offering}")


def test_a_script_runs_unchanged_with_only_the_import_swapped(
    wire: tuple[MistralApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, server = wire
    declare(monkeypatch, server)
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    theirs = exercise(mistralai.client, server.url, app, server)
    sent_theirs = [(r.method, r.path, r.json()) for r in server.requests]
    server.requests.clear()
    ours = exercise(privsdk.mistralai, server.url, app, server)
    sent_ours = [(r.method, r.path, r.json()) for r in server.requests]
    assert ours == theirs
    assert sent_ours == sent_theirs
    assert theirs["chat"][1] == app.text and theirs["tools"] == (["get_weather"], app.text)
    assert theirs["error 429"] == ("SDKError", 429) and theirs["error 400"] == ("SDKError", 400)
    assert theirs["async"][0] == app.text and "".join(p or "" for p in theirs["async"][1]) == app.text


def _public(obj: Any) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def test_every_public_attribute_of_the_vendor_client_exists_on_the_drop_in() -> None:
    theirs = Mistral(api_key=KEY, server_url="http://127.0.0.1:9")
    ours = privsdk.mistralai.Mistral(api_key=KEY, server_url="http://127.0.0.1:9")
    assert isinstance(ours, Mistral)
    missing = [n for n in sorted(_public(theirs)) if not hasattr(ours, n)]
    for name in sorted(_public(theirs)):  # one level down: chat, embeddings, files, beta...
        resource = getattr(theirs, name)
        if type(resource).__module__.startswith("mistralai.client.") and not callable(resource):
            missing += [f"{name}.{n}" for n in _public(resource) if not hasattr(getattr(ours, name), n)]
    assert missing == []


def test_the_face_module_is_mistralai_client_with_a_guarded_client() -> None:
    for name in ("models", "errors", "RetryConfig", "SERVER_EU", "SERVERS", "HttpClient"):
        assert getattr(privsdk.mistralai, name) is getattr(mistralai.client, name)
    assert issubclass(privsdk.mistralai.Mistral, Mistral) and privsdk.mistralai.Mistral is not Mistral
    from privsdk import mistralai as face

    assert face is privsdk.mistralai


def test_a_refused_request_sends_nothing_is_not_retried_and_raises_the_dual_class_error(
    wire: tuple[MistralApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch, usage: Path
) -> None:
    _, server = wire
    declare(monkeypatch, server)
    monkeypatch.setenv("PRIVSDK_REQUIRE", "zdr")  # the Experiment plan keeps prompts for 30 days
    retries = RetryConfig("backoff", BackoffStrategy(1, 10, 1.1, 100), retry_connection_errors=True)
    client = privsdk.mistralai.Mistral(api_key=KEY, server_url=server.url, retry_config=retries)

    def stream() -> None:
        with client.chat.stream(model=MODEL, messages=MSG) as events:
            list(events)

    for call in (
        lambda: client.chat.complete(model=MODEL, messages=MSG),
        stream,
        lambda: client.embeddings.create(model="mistral-embed", inputs=["a"]),
        lambda: asyncio.run(client.chat.complete_async(model=MODEL, messages=MSG)),
    ):
        with pytest.raises(MistralError) as caught:
            call()
        error = caught.value
        assert isinstance(error, privsdk.PolicyViolation) and isinstance(error, privsdk.mistralai.PolicyViolation)
        assert "zdr" in str(error) and "Paris" not in str(error) and KEY not in str(error)
        assert error.status_code == 0 and error.body == "" and error.raw_response is None
    assert server.requests == []
    written = records(usage)
    assert [(r["outcome"], r["operation"], r["unmet"]) for r in written] == [
        ("refused", op, ["zdr"]) for op in ("chat", "stream", "embed", "chat")
    ]  # one record per call: the SDK's retries did not retry a refusal


CANARY = "canary-value-7f3e"


def test_a_body_field_privsdk_does_not_read_is_refused_by_name_and_sends_nothing(
    wire: tuple[MistralApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Responses API takes fields the SDK has no parameter for (``additional_properties``); ``metadata`` is a
    parameter privsdk refuses on the stateless endpoints (what Mistral does with it is not stated)."""
    _, server = wire
    declare(monkeypatch, server)
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    client = privsdk.mistralai.Mistral(api_key=KEY, server_url=server.url)
    extra = {"zz_new_field": CANARY}
    calls: list[tuple[str, Callable[[], object]]] = [
        ("zz_new_field", lambda: client.responses.create(model=MODEL, input="hi", additional_properties=extra)),
        ("metadata", lambda: client.chat.complete(model=MODEL, messages=MSG, metadata={"ticket": CANARY})),
        ("metadata", lambda: client.embeddings.create(model="mistral-embed", inputs=["a"], metadata=extra)),
    ]
    for field, call in calls:
        with pytest.raises(MistralError) as caught:
            call()
        assert isinstance(caught.value, privsdk.PolicyViolation)
        assert f": {field} (" in str(caught.value) and CANARY not in str(caught.value)
    assert server.requests == []
    client.chat.complete(model=MODEL, messages=MSG)  # without it, allowed
    assert len(server.requests) == 1


def test_allowed_requests_leave_usage_records_with_operation_and_tokens(
    wire: tuple[MistralApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch, usage: Path
) -> None:
    app, server = wire
    declare(monkeypatch, server)
    client = privsdk.mistralai.Mistral(api_key=KEY, server_url=server.url)
    client.chat.complete(model=MODEL, messages=MSG)
    with client.chat.stream(model=MODEL, messages=MSG) as events:
        assert "".join(e.data.choices[0].delta.content or "" for e in events) == app.text
    client.embeddings.create(model="mistral-embed", inputs=["one two three"])
    assert asyncio.run(client.chat.complete_async(model=MODEL, messages=MSG)).choices
    assert [m.id for m in client.models.list().data or ()] == [MODEL_ID]  # a listing: allowed anywhere placed
    written = records(usage)
    assert [(r["operation"], r["outcome"], r["model"], (r["input_tokens"], r["output_tokens"])) for r in written] == [
        ("chat", "ok", MODEL, app.usage),
        ("stream", "ok", MODEL, app.usage),
        ("embed", "ok", "mistral-embed", (3, 0)),
        ("chat", "ok", MODEL, app.usage),
        ("models", "ok", None, (None, None)),
    ]
    assert all(r["vendor"] == "mistral" for r in written)


def test_the_guard_decides_on_what_the_request_asks_for(
    wire: tuple[MistralApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Scale organisation with ZDR: stateless chat passes; conversations, agents, files and batch, which keep
    data (Mistral's ZDR does not cover them), do not, nor does a conversation that is not stored but searches
    the web... unless the catalogue allows it (web search is no limit of Mistral's: only the storing is)."""
    app, server = wire
    declare(monkeypatch, server)
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    monkeypatch.setenv("PRIVSDK_REQUIRE", "zdr")
    monkeypatch.setenv("PRIVSDK_ATTEST", "mistral:plan=scale,mistral:zdr")
    client = privsdk.mistralai.Mistral(api_key=KEY, server_url=server.url)
    assert client.chat.complete(model=MODEL, messages=MSG).choices[0].message.content == app.text
    calls: tuple[Callable[[], object], ...] = (
        lambda: client.beta.conversations.start(model=MODEL, inputs="secret words"),
        lambda: client.beta.conversations.append(conversation_id="c1", inputs="secret words"),
        lambda: client.beta.conversations.list(),
        lambda: client.agents.complete(agent_id="ag_1", messages=MSG),
        lambda: client.files.list(),
        lambda: client.batch.jobs.list(),
    )
    for call in calls:
        with pytest.raises(privsdk.PolicyViolation) as caught:
            call()
        assert "secret" not in str(caught.value)
    assert len(server.requests) == 1


#: A loopback la Plateforme for jobs: a batch job's or a fine-tuning job's creation answered as Mistral answers it.
def _jobs(request: Recorded) -> Reply:
    body = request.json()
    if request.path == "/v1/batch/jobs":
        job = {"id": "job-1", "object": "batch", "input_files": body.get("input_files") or [], "errors": []}
        counts = dict.fromkeys(("total_requests", "completed_requests", "succeeded_requests", "failed_requests"), 0)
        return json_reply(job | counts | {"endpoint": body["endpoint"], "status": "QUEUED", "created_at": 1})
    if request.path == "/v1/fine_tuning/jobs":
        return json_reply({"id": "ftjob-1", "object": "job", "model": body["model"], "status": "QUEUED"})
    raise ValueError(f"no route {request.path}")


@pytest.fixture
def jobs(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """The jobs stand-in declared as la Plateforme, under a policy that allows batch and fine-tuning: no training,
    the organisation having opted out of it."""
    with LoopbackServer(_jobs) as server:
        declare(monkeypatch, server)
        monkeypatch.setenv("PRIVSDK_USAGE", "none")
        monkeypatch.setenv("PRIVSDK_REQUIRE", "no_training")
        monkeypatch.setenv("PRIVSDK_ATTEST", "mistral:training_opt_out")
        yield server
    assert server.errors == []


def test_a_batch_job_is_judged_on_its_model_its_endpoint_and_its_inline_requests(jobs: LoopbackServer) -> None:
    """``batch.jobs.create`` was judged as ``batch`` alone, its body unread: a batch of conversations running web
    search and the code interpreter, one over an agent, one for a fine-tuned model, one for OCR, each refused as a
    direct call, were sent. Now each is refused before a byte, as the direct call is; a plain batch is sent."""
    client = privsdk.mistralai.Mistral(api_key=KEY, server_url=jobs.url)
    ask = [{"role": "user", "content": "SECRET patient record"}]
    create = client.batch.jobs.create
    refused: list[tuple[str, Callable[[], object]]] = [
        (
            "hosted_tools, web_search",
            lambda: create(
                endpoint="/v1/conversations",
                requests=[
                    {
                        "custom_id": "1",
                        "body": {
                            "model": "mistral-small-latest",
                            "inputs": "SECRET patient record",
                            "tools": [{"type": "web_search_premium"}, {"type": "code_interpreter"}],
                        },
                    }
                ],
            ),
        ),
        (
            "file_search",
            lambda: create(
                endpoint="/v1/chat/completions",
                model="mistral-small-latest",
                requests=[{"body": {"messages": ask, "tools": [{"type": "document_library", "library_ids": ["l"]}]}}],
            ),
        ),
        (
            "assistants",
            lambda: create(endpoint="/v1/chat/completions", agent_id="ag_1", requests=[{"body": {"messages": ask}}]),
        ),
        (
            "fine-tuned",
            lambda: create(
                endpoint="/v1/chat/completions",
                model="ft:mistral-small-latest:abc:20250101:xyz",
                requests=[{"body": {"messages": ask}}],
            ),
        ),
        ("unknown model family", lambda: create(endpoint="/v1/chat/completions", model="gpt-4o", requests=[])),
        (
            "uploaded files",
            lambda: create(endpoint="/v1/chat/completions", model="mistral-small-latest", input_files=["f1"]),
        ),
        ("/v1/ocr", lambda: create(endpoint="/v1/ocr", model="mistral-ocr-latest", input_files=["f1"])),
        (
            "metadata",
            lambda: create(
                endpoint="/v1/chat/completions",
                model="mistral-small-latest",
                requests=[{"body": {"messages": ask, "metadata": {"ticket": "SECRET"}}}],
            ),
        ),
    ]
    for says, call in refused:
        with pytest.raises(MistralError) as caught:
            call()
        assert isinstance(caught.value, privsdk.PolicyViolation), says
        assert says in str(caught.value) and "SECRET" not in str(caught.value)
    assert jobs.requests == []
    sent = create(endpoint="/v1/chat/completions", model="mistral-small-latest", requests=[{"body": {"messages": ask}}])
    assert sent.id == "job-1"
    assert create(endpoint="/v1/embeddings", model="mistral-embed", requests=[{"body": {"input": ["x"]}}]).id == "job-1"
    assert [r.json()["endpoint"] for r in jobs.requests] == ["/v1/chat/completions", "/v1/embeddings"]


def test_a_fine_tuning_job_is_judged_on_its_model_and_refused_with_third_party_integrations(
    jobs: LoopbackServer,
) -> None:
    """mistralai 3 has no fine-tuning method: a body built by other means, posted through the SDK's own (guarded)
    HTTP client, as mistralai 2's ``fine_tuning.jobs.create`` sent it. Its body was not read."""
    client = privsdk.mistralai.Mistral(api_key=KEY, server_url=jobs.url)
    http = client.sdk_configuration.client
    job: dict[str, Any] = {
        "model": "open-mistral-7b",
        "hyperparameters": {"training_steps": 10, "learning_rate": 0.0001},
        "training_files": [{"file_id": "f1", "weight": 1}],
    }
    refused = [
        ("integrations", job | {"integrations": [{"type": "wandb", "project": "p", "api_key": "SECRET"}]}),
        ("repositories", job | {"repositories": [{"type": "github", "name": "n", "owner": "o", "token": "SECRET"}]}),
        ("fine-tuned", job | {"model": "ft:open-mistral-7b:abc:20250101:xyz"}),
        ("unknown model family", job | {"model": "gpt-4o"}),
        ("zz_new_field", job | {"zz_new_field": "SECRET"}),
    ]
    for says, body in refused:
        with pytest.raises(privsdk.PolicyViolation) as caught:
            http.post(f"{jobs.url}/v1/fine_tuning/jobs", json=body)
        assert says in str(caught.value) and "SECRET" not in str(caught.value)
    assert jobs.requests == []
    assert http.post(f"{jobs.url}/v1/fine_tuning/jobs", json=job).json()["id"] == "ftjob-1"
    assert len(jobs.requests) == 1


def test_an_app_built_client_and_its_http_clients_are_guarded_in_place(
    wire: tuple[MistralApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, server = wire
    declare(monkeypatch, server)
    monkeypatch.setenv("PRIVSDK_REQUIRE", "zdr")
    http = httpx2.Client(timeout=5)
    client = Mistral(api_key=KEY, server_url=server.url, client=http)
    assert privsdk.mistralai.guard_client(client) is client
    assert privsdk.mistralai.guard_client(client) is client
    with pytest.raises(privsdk.PolicyViolation):
        client.chat.complete(model=MODEL, messages=MSG)
    with pytest.raises(privsdk.PolicyViolation):
        http.post(f"{server.url}/v1/chat/completions", json={"model": MODEL, "messages": MSG})
    with pytest.raises(privsdk.PolicyViolation):
        asyncio.run(client.chat.complete_async(model=MODEL, messages=MSG))
    assert server.requests == []
    with pytest.raises(TypeError, match="not a mistralai client"):
        privsdk.mistralai.guard_client(object())


def test_instrument_guards_clients_built_afterwards(
    wire: tuple[MistralApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, server = wire
    declare(monkeypatch, server)
    monkeypatch.setenv("PRIVSDK_REQUIRE", "zdr")
    privsdk.mistralai.instrument()
    privsdk.mistralai.instrument()
    try:
        client = Mistral(api_key=KEY, server_url=server.url)
        with pytest.raises(privsdk.PolicyViolation):
            client.chat.complete(model=MODEL, messages=MSG)
    finally:
        privsdk.mistralai.uninstrument()
    assert server.requests == []
    assert not dropin._constructors.patched
    monkeypatch.delenv("PRIVSDK_REQUIRE")
    assert Mistral(api_key=KEY, server_url=server.url).chat.complete(model=MODEL, messages=MSG).choices


def test_instrument_guards_mistralais_google_cloud_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """mistralai's own client for Mistral models on Vertex AI was left out of instrument(): its rawPredict
    requests went out unjudged. Refused here before a byte (the Vertex host is never reached)."""
    from mistralai.gcp.client import MistralGCP

    monkeypatch.setenv("PRIVSDK_REQUIRE", "zdr")
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    Guard.reset_default()
    privsdk.mistralai.instrument()
    try:
        client = MistralGCP(access_token="ya29.test", project_id="acme", region="europe-west4")
        with pytest.raises(privsdk.PolicyViolation):
            client.chat.complete(model="mistral-small-2503", messages=MSG)
    finally:
        privsdk.mistralai.uninstrument()


class _Collector:
    """A loopback OTLP endpoint: keeps what is posted to it."""

    def __call__(self, request: Recorded) -> Reply:
        return Reply(200, b"", {"Content-Type": "application/x-protobuf"})


def _tracing_hook(client: Any) -> Any:
    from mistralai.client._hooks.tracing import TracingHook

    hooks = client.sdk_configuration.__dict__["_hooks"]
    return next(h for h in hooks.before_request_hooks if isinstance(h, TracingHook))


@pytest.fixture
def collector(wire: tuple[MistralApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """The loopback OTLP endpoint the SDK's telemetry exports to (``MISTRAL_SDK_TELEMETRY=dedicated``), with the
    loopback la Plateforme declared and no usage records."""
    declare(monkeypatch, wire[1])
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    with LoopbackServer(_Collector()) as running:
        monkeypatch.setenv("MISTRAL_SDK_TELEMETRY", "dedicated")
        monkeypatch.setenv("MISTRAL_OTLP_TRACES_ENDPOINT", f"{running.url}/telemetry/v1/traces")
        yield running


def test_the_sdk_telemetry_stays_off_under_the_drop_in(
    wire: tuple[MistralApp, LoopbackServer], collector: LoopbackServer
) -> None:
    """MISTRAL_SDK_TELEMETRY would export spans with the prompt to Mistral; the drop-in keeps it off."""
    _, server = wire
    plain = Mistral(api_key=KEY, server_url=server.url)
    plain.chat.complete(model=MODEL, messages=MSG)
    provider = _tracing_hook(plain)._auto_telemetry_provider
    assert provider is not None  # the SDK alone turns it on from the environment...
    provider.force_flush()
    assert [r.path for r in collector.requests] == ["/telemetry/v1/traces"]  # ...and exports the span
    collector.requests.clear()
    ours = privsdk.mistralai.Mistral(api_key=KEY, server_url=server.url)
    ours.chat.complete(model=MODEL, messages=MSG)
    with ours.chat.stream(model=MODEL, messages=MSG) as events:
        list(events)
    hook = _tracing_hook(ours)
    assert hook._auto_telemetry_provider is None and hook.tracer_provider is None
    provider.force_flush()
    assert collector.requests == []


def test_guarding_a_client_that_has_traced_already_stops_its_telemetry(
    wire: tuple[MistralApp, LoopbackServer], collector: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client's tracing hook resolves its telemetry at the first request and reads the configuration no more:
    guarding a client that had sent one left it exporting spans, those of the requests privsdk refused too."""
    _, server = wire
    client = Mistral(api_key=KEY, server_url=server.url)
    client.models.list()  # before it is guarded: the app's own choice, exported when the exporter stops
    provider = _tracing_hook(client)._auto_telemetry_provider
    assert provider is not None
    privsdk.mistralai.guard_client(client)
    exported = len(collector.requests)
    monkeypatch.setenv("PRIVSDK_REQUIRE", "zdr")
    Guard.reset_default()
    with pytest.raises(privsdk.mistralai.PolicyViolation):
        client.chat.complete(model=MODEL, messages=CANARY_MSG)
    monkeypatch.delenv("PRIVSDK_REQUIRE")
    Guard.reset_default()
    client.chat.complete(model=MODEL, messages=MSG)
    provider.force_flush()
    hook = _tracing_hook(client)
    assert hook._auto_telemetry_provider is None and hook.tracer_provider is None
    assert len(collector.requests) == exported
    assert not any(b"CANARY-telemetry" in r.body for r in collector.requests)
    assert [r.path for r in server.requests] == ["/v1/models", "/v1/chat/completions"]


def test_the_connectors_gateway_clients_of_a_guarded_client_are_guarded(
    wire: tuple[MistralApp, LoopbackServer],
    monkeypatch: pytest.MonkeyPatch,
    usage: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``beta.connectors.http_client()`` (and ``mcp_client()``) build new httpx clients of their own, carrying the
    API key and whatever the app sends to a connector: they sent it unjudged and unrecorded. A guarded client's
    are guarded (and refused: privsdk knows no connector's guarantees); an unguarded client's are left alone."""
    from mistralai.extra import connectors_gateway

    _, server = wire
    declare(monkeypatch, server)
    guarded = privsdk.mistralai.Mistral(api_key=KEY, server_url=server.url)
    plain = Mistral(api_key=KEY, server_url=server.url)

    async def post() -> None:
        async with guarded.beta.connectors.http_client(connector_id_or_name="gmail") as http:
            await http.post("send", json={"body": "CANARY-connector-77"})

    with pytest.raises(privsdk.mistralai.PolicyViolation, match="unknown path shape /v1/connectors-gateway/"):
        asyncio.run(post())

    async def open_mcp() -> None:
        async with guarded.beta.connectors.mcp_client(connector_id_or_name="CANARY-connector-mcp"):
            pass

    caplog.set_level(logging.DEBUG)  # the mcp library logs the URL and each message at DEBUG: withheld
    with pytest.raises(Exception) as raised:  # an ExceptionGroup: how MCP's task group raises its transport's errors
        asyncio.run(open_mcp())
    assert raised.group_contains(privsdk.mistralai.PolicyViolation, match="unknown path shape /v1/connectors-gateway/")
    assert "CANARY" not in caplog.text
    assert server.requests == []
    assert [(r["decision"], r["outcome"]) for r in records(usage)] == [("refuse", "refused")] * 2
    from privsdk.outbound.transport import is_guarded

    assert not is_guarded(plain.beta.connectors.http_client(connector_id_or_name="gmail"))
    assert not is_guarded(connectors_gateway._create_mcp_http_client(plain.sdk_configuration, credentials_name=None))


def test_a_stream_closed_before_its_end_is_recorded_cancelled(
    wire: tuple[MistralApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch, usage: Path
) -> None:
    app, server = wire
    declare(monkeypatch, server)
    client = privsdk.mistralai.Mistral(api_key=KEY, server_url=server.url)
    with client.chat.stream(model=MODEL, messages=MSG) as events:
        next(iter(events))
    with client.chat.stream(model=MODEL, messages=MSG) as events:
        list(events)
    got = [(r["outcome"], (r["input_tokens"], r["output_tokens"])) for r in records(usage)]
    assert got == [("cancelled", (None, None)), ("ok", app.usage)]


def test_a_telemetry_export_through_the_guarded_client_is_refused(
    wire: tuple[MistralApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were spans sent through the SDK's own client, the guard would not know the path: refused, nothing sent."""
    _, server = wire
    declare(monkeypatch, server)
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    client = privsdk.mistralai.Mistral(api_key=KEY, server_url=server.url)
    http = client.sdk_configuration.client
    with pytest.raises(privsdk.PolicyViolation, match="unknown path shape"):
        http.post(f"{server.url}/telemetry/v1/traces", content=b"\x0a\x0bspan with a prompt")
    assert server.requests == []


def test_an_async_client_serves_one_event_loop_after_another(
    wire: tuple[MistralApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """mistralai's own client reuses a pooled connection of the closed first loop ("Event loop is closed")."""
    app, server = wire
    declare(monkeypatch, server)
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    client = privsdk.mistralai.Mistral(api_key=KEY, server_url=server.url)

    async def ask() -> tuple[Any, str]:
        reply = await client.chat.complete_async(model=MODEL, messages=MSG)
        async with await client.chat.stream_async(model=MODEL, messages=MSG) as events:
            text = "".join([e.data.choices[0].delta.content or "" async for e in events])
        return reply.choices[0].message.content, text

    assert asyncio.run(ask()) == asyncio.run(ask()) == asyncio.run(ask()) == (app.text, app.text)
    assert len(server.requests) == 6


def test_privsdk_run_guards_mistral_clients_an_unchanged_app_builds(
    wire: tuple[MistralApp, LoopbackServer], tmp_path: Path
) -> None:
    """``privsdk run -- python app.py``: the app imports plain mistralai and is guarded all the same."""
    _, server = wire
    app = tmp_path / "app.py"
    app.write_text(
        "import sys\n"
        "from mistralai.client import Mistral, errors\n"
        f"client = Mistral(api_key='k', server_url={server.url!r})\n"
        "try:\n"
        "    client.chat.complete(model='mistral-large-latest', messages=[{'role': 'user', 'content': 'secret'}])\n"
        "except errors.MistralError as exc:\n"
        "    print(type(exc).__module__, exc)\n"
        "    sys.exit(3)\n",
        encoding="utf-8",
    )
    env = clean_env(PRIVSDK_REQUIRE="zdr", PRIVSDK_ENDPOINTS=f"{server.url}=mistral.api", PRIVSDK_USAGE="none")
    done = subprocess.run(
        [sys.executable, "-m", "privsdk", "run", "--", sys.executable, str(app)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith("privsdk_mistral.dropin") and "zdr" in done.stdout and "secret" not in done.stdout
    assert server.requests == []


def test_a_realtime_session_of_a_guarded_client_is_judged_before_its_websocket_opens(
    wire: tuple[MistralApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch, usage: Path
) -> None:
    """Realtime transcription and speech open a websocket of their own, outside the SDK's HTTP clients."""
    _, server = wire
    declare(monkeypatch, server)
    client = privsdk.mistralai.Mistral(api_key=KEY, server_url=server.url)
    with pytest.raises(privsdk.mistralai.PolicyViolation, match="audio"):
        asyncio.run(client.audio.realtime.connect("voxtral-mini-transcribe-realtime-2602"))
    with pytest.raises(privsdk.mistralai.PolicyViolation, match="audio"):
        asyncio.run(client.audio.realtime_speech.connect("voxtral-tts", voice_id="v"))
    assert server.requests == []
    assert [(r["outcome"], r["operation"]) for r in records(usage)] == [("refused", "audio")] * 2
