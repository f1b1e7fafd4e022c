"""``privsdk.cohere``: the cohere SDK's own clients with the guard in their transport.

:func:`exercise` is written against the cohere package. It runs once with ``cohere`` and once with
``privsdk.cohere``, each against a loopback Cohere server, and both runs must see the same results,
types and errors, and send the same requests. A refused request sends nothing, is not retried and
raises an exception that is both ``privsdk.PolicyViolation`` and cohere's ``ApiError``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cohere
import httpx
import pytest
from cohere.core.api_error import ApiError
from privsdk_cohere import dropin

import privsdk
import privsdk.cohere
from privsdk.outbound.judge import Guard
from tests.conftest import clean_env
from tests.guard_support import records
from tests.weather_tool import TOOLS
from tests.wire.cohere import BILLED, CohereApp, ConnectProxy, aws_tls_context
from tests.wire.server import LoopbackServer, Status, answered_in_memory

KEY = "co-dropin-key"
MODEL = "command-a-03-2025"
MSG: Any = [{"role": "user", "content": "What is the weather in Paris?"}]


def exercise(co: Any, url: str, app: CohereApp, server: LoopbackServer) -> dict[str, Any]:
    """A script written against the cohere package; ``co`` is ``cohere`` or ``privsdk.cohere``."""
    seen: dict[str, Any] = {}
    client = co.ClientV2(api_key=KEY, base_url=url, max_retries=0, log_warning_experimental_features=False)
    answer = client.chat(model=MODEL, messages=MSG)
    seen["chat"] = (type(answer), answer.message.content[0].text, answer.finish_reason, answer.usage.billed_units)
    seen["stream"] = [
        (e.type, getattr(getattr(e, "delta", None), "message", None))
        for e in client.chat_stream(model=MODEL, messages=MSG)
    ]
    raw = client.with_raw_response.chat(model=MODEL, messages=MSG)
    seen["raw"] = (raw.headers.get("content-type"), type(raw.data), raw.data.id)
    vectors = client.embed(
        model="embed-v4.0", texts=["alpha beta", "gamma"], input_type="search_document", embedding_types=["float"]
    )
    seen["embed"] = (type(vectors), vectors.embeddings.float_, vectors.meta.billed_units.input_tokens)
    ranked = client.rerank(model="rerank-v3.5", query="paris weather", documents=["rome", "paris weather today"])
    seen["rerank"] = [(r.index, r.relevance_score) for r in ranked.results]
    # The tool loop of Cohere's docs: the assistant's tool plan and calls go back with the tool results.
    app.tool_calls = [("call_1", "get_weather", '{"city": "Paris"}')]
    messages: list[Any] = list(MSG)
    first = client.chat(model=MODEL, messages=messages, tools=TOOLS)
    messages.append({"role": "assistant", "tool_plan": first.message.tool_plan, "tool_calls": first.message.tool_calls})
    for call in first.message.tool_calls:
        messages.append(
            {
                "role": "tool",
                "tool_call_id": call.id,
                "content": [{"type": "document", "document": {"data": json.dumps({"temp": 21})}}],
            }
        )
    app.tool_calls = ()
    final = client.chat(model=MODEL, messages=messages, tools=TOOLS)
    seen["tools"] = ([c.function.name for c in first.message.tool_calls], final.message.content[0].text)
    v1 = co.Client(api_key=KEY, base_url=url, max_retries=0)
    seen["v1 client resources"] = sorted(n for n in ("v2", "datasets", "models", "finetuning") if hasattr(v1, n))
    for status in (429, 400):
        server.fail(Status(status, body=b'{"message": "refused"}'))
        try:
            client.chat(model=MODEL, messages=MSG)
        except ApiError as exc:
            seen[f"error {status}"] = (type(exc).__name__, exc.status_code)

    async def run() -> tuple[str, list[str]]:
        aclient = co.AsyncClientV2(api_key=KEY, base_url=url, max_retries=0)
        reply = await aclient.chat(model=MODEL, messages=MSG)
        kinds = [e.type async for e in aclient.chat_stream(model=MODEL, messages=MSG)]
        return reply.message.content[0].text, kinds

    seen["async"] = asyncio.run(run())
    return seen


@pytest.fixture
def wire() -> Iterator[tuple[CohereApp, LoopbackServer]]:
    app = CohereApp("It is sunny in Paris")
    with LoopbackServer(app) as server:
        yield app, server
    assert server.errors == []


def declare(monkeypatch: pytest.MonkeyPatch, server: LoopbackServer, offering: str = "cohere.saas") -> None:
    """Declare the loopback server as the offering's endpoint, through the environment alone."""
    monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{server.url}={offering}")


def test_a_script_runs_unchanged_with_only_the_import_swapped(
    wire: tuple[CohereApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, server = wire
    declare(monkeypatch, server)
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    theirs = exercise(cohere, server.url, app, server)
    sent_theirs = [(r.method, r.path, r.json()) for r in server.requests]
    server.requests.clear()
    ours = exercise(privsdk.cohere, server.url, app, server)
    sent_ours = [(r.method, r.path, r.json()) for r in server.requests]
    assert ours == theirs
    assert sent_ours == sent_theirs
    assert theirs["chat"][1] == app.text and theirs["tools"] == (["get_weather"], app.text)
    assert theirs["error 429"] == ("TooManyRequestsError", 429) and theirs["error 400"] == ("BadRequestError", 400)
    assert theirs["async"] == (app.text, [e[0] for e in theirs["stream"]])


def _public(obj: Any) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def _walk(ours: Any, theirs: Any, path: str, depth: int, missing: list[str]) -> None:
    for name in sorted(_public(theirs)):
        if not hasattr(ours, name):
            missing.append(f"{path}.{name}")
            continue
        value = getattr(theirs, name)
        module = getattr(type(value), "__module__", "")
        if depth and module.startswith("cohere.") and not callable(value):
            _walk(getattr(ours, name), value, f"{path}.{name}", depth - 1, missing)


@pytest.mark.parametrize("name", ["ClientV2", "AsyncClientV2", "Client", "AsyncClient"])
def test_every_public_attribute_of_the_vendor_client_exists_on_the_drop_in(name: str) -> None:
    theirs = getattr(cohere, name)(api_key=KEY, base_url="http://127.0.0.1:9")
    ours = getattr(privsdk.cohere, name)(api_key=KEY, base_url="http://127.0.0.1:9")
    assert isinstance(ours, getattr(cohere, name))
    missing: list[str] = []
    _walk(ours, theirs, name, 2, missing)
    assert missing == []


def test_the_face_module_is_the_cohere_module_with_guarded_clients() -> None:
    for name in ("ChatMessageV2", "UserChatMessageV2", "types", "errors", "core", "TooManyRequestsError"):
        assert getattr(privsdk.cohere, name) is getattr(cohere, name)
    assert privsdk.cohere.ClientV2 is not cohere.ClientV2 and issubclass(privsdk.cohere.ClientV2, cohere.ClientV2)
    assert set(cohere.__all__) <= set(privsdk.cohere.__all__)
    from privsdk import cohere as face

    assert face is privsdk.cohere


def test_a_refused_request_sends_nothing_is_not_retried_and_raises_the_dual_class_error(
    wire: tuple[CohereApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch, usage: Path
) -> None:
    _, server = wire
    declare(monkeypatch, server)
    monkeypatch.setenv("PRIVSDK_REQUIRE", "zdr")  # a trial key on Cohere's platform keeps prompts
    client = privsdk.cohere.ClientV2(api_key=KEY, base_url=server.url, max_retries=5)
    for call in (
        lambda: client.chat(model=MODEL, messages=MSG),
        lambda: list(client.chat_stream(model=MODEL, messages=MSG)),
        lambda: client.with_raw_response.chat(model=MODEL, messages=MSG),
        lambda: client.embed(model="embed-v4.0", texts=["a"], input_type="search_document"),
    ):
        with pytest.raises(ApiError) as caught:
            call()
        error = caught.value
        assert isinstance(error, privsdk.PolicyViolation) and isinstance(error, privsdk.cohere.PolicyViolation)
        assert "zdr" in str(error) and "Paris" not in str(error) and KEY not in str(error)
        assert error.status_code is None and error.body is None
    assert server.requests == []
    written = records(usage)
    assert [(r["outcome"], r["operation"], r["unmet"]) for r in written] == [
        ("refused", op, ["zdr"]) for op in ("chat", "stream", "chat", "embed")
    ]  # one record per call: the SDK did not retry (max_retries=5)


CANARY = "canary-value-7f3e"
#: v2 calls, each given an extra body field the cohere SDK's own way (request_options' additional_body_parameters).
EXTENDED: dict[str, Callable[[Any, Any], object]] = {
    "chat": lambda client, options: client.chat(model=MODEL, messages=MSG, request_options=options),
    "stream": lambda client, options: list(client.chat_stream(model=MODEL, messages=MSG, request_options=options)),
    "embed": lambda client, options: client.embed(
        model="embed-v4.0", texts=["a"], input_type="search_query", embedding_types=["float"], request_options=options
    ),
    "rerank": lambda client, options: client.rerank(
        model="rerank-v3.5", query="q", documents=["d"], request_options=options
    ),
}


@pytest.mark.parametrize("call", EXTENDED.values(), ids=EXTENDED.keys())
def test_a_body_field_privsdk_does_not_read_is_refused_by_name_and_sends_nothing(
    wire: tuple[CohereApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch, call: Callable[[Any, Any], object]
) -> None:
    _, server = wire
    declare(monkeypatch, server)
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    client = privsdk.cohere.ClientV2(api_key=KEY, base_url=server.url, max_retries=0)
    with pytest.raises(ApiError) as caught:
        call(client, {"additional_body_parameters": {"zz_new_field": CANARY}})
    assert isinstance(caught.value, privsdk.PolicyViolation)
    assert ": zz_new_field (" in str(caught.value) and CANARY not in str(caught.value)
    assert server.requests == []
    call(client, {})  # the same call without the field is allowed
    assert len(server.requests) == 1


def test_a_field_of_the_sdk_privsdk_refuses_by_design_sends_nothing(
    wire: tuple[CohereApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """v1 generate's ``preset``: a prompt and settings kept on Cohere's side, which the request does not show."""
    _, server = wire
    declare(monkeypatch, server)
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    client = privsdk.cohere.Client(api_key=KEY, base_url=server.url, max_retries=0)
    with pytest.raises(privsdk.PolicyViolation) as caught:
        client.generate(prompt="p", preset=CANARY)
    assert ": preset (" in str(caught.value) and CANARY not in str(caught.value)
    assert server.requests == []


def test_allowed_requests_leave_usage_records_with_operation_and_tokens(
    wire: tuple[CohereApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch, usage: Path
) -> None:
    _, server = wire
    declare(monkeypatch, server)
    client = privsdk.cohere.ClientV2(api_key=KEY, base_url=server.url)
    client.chat(model=MODEL, messages=MSG)
    assert [e.type for e in client.chat_stream(model=MODEL, messages=MSG)][-1] == "message-end"
    client.embed(model="embed-v4.0", texts=["one two three"], input_type="search_document", embedding_types=["float"])
    client.rerank(model="rerank-v3.5", query="q", documents=["a", "b"])
    assert client.models.list().models[0].name == MODEL  # a listing carries no content: allowed anywhere placed
    server.fail(Status(500, body=b'{"message": "down"}'))
    with pytest.raises(ApiError):
        privsdk.cohere.ClientV2(api_key=KEY, base_url=server.url, max_retries=0).chat(model=MODEL, messages=MSG)
    written = records(usage)
    billed = (BILLED["input_tokens"], BILLED["output_tokens"])
    assert [(r["operation"], r["outcome"], r["model"], (r["input_tokens"], r["output_tokens"])) for r in written] == [
        ("chat", "ok", MODEL, billed),
        ("stream", "ok", MODEL, billed),
        ("embed", "ok", "embed-v4.0", (3, None)),
        ("rerank", "ok", "rerank-v3.5", (None, None)),
        ("models", "ok", None, (None, None)),
        ("chat", "error", MODEL, (None, None)),
    ]
    assert written[-1]["http_status"] == 500 and all(r["vendor"] == "cohere" for r in written)


def test_answers_a_transport_has_already_read_are_recorded_with_their_tokens(
    wire: tuple[CohereApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch, usage: Path
) -> None:
    """An app's own transport (httpx's MockTransport here) may hand back bodies it has read in full: the guard
    records those requests at once, with their tokens, sync and async."""
    app, server = wire
    declare(monkeypatch, server)
    http = httpx.Client(transport=answered_in_memory(app, httpx))
    client = privsdk.cohere.ClientV2(api_key=KEY, base_url=server.url, httpx_client=http)
    assert client.chat(model=MODEL, messages=MSG).message.content[0].text == app.text
    assert [e.type for e in client.chat_stream(model=MODEL, messages=MSG)][-1] == "message-end"

    async def chat() -> None:
        ahttp = httpx.AsyncClient(transport=answered_in_memory(app, httpx))
        aclient = privsdk.cohere.AsyncClientV2(api_key=KEY, base_url=server.url, httpx_client=ahttp)
        await aclient.chat(model=MODEL, messages=MSG)

    asyncio.run(chat())
    billed = (BILLED["input_tokens"], BILLED["output_tokens"])
    assert [(r["operation"], r["outcome"], (r["input_tokens"], r["output_tokens"])) for r in records(usage)] == [
        ("chat", "ok", billed),
        ("stream", "ok", billed),
        ("chat", "ok", billed),
    ]
    assert server.requests == []  # answered in memory: the loopback server only lent its address


def test_the_guard_decides_on_what_the_request_asks_for(
    wire: tuple[CohereApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A paying organisation with training off and ZDR: chat passes; storing datasets or fine-tuning, which keep data,
    does not."""
    app, server = wire
    declare(monkeypatch, server)
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    monkeypatch.setenv("PRIVSDK_REQUIRE", "zdr")
    monkeypatch.setenv("PRIVSDK_ATTEST", "cohere:plan=paid,cohere:training_opt_out,cohere:zdr")
    client = privsdk.cohere.ClientV2(api_key=KEY, base_url=server.url)
    assert client.chat(model=MODEL, messages=MSG).message.content[0].text == app.text
    calls: tuple[Callable[[], object], ...] = (
        lambda: client.datasets.list(),
        lambda: client.finetuning.list_finetuned_models(),
        lambda: client.embed_jobs.list(),
        lambda: client.connectors.list(),
        lambda: client.tokenize(text="secret words", model=MODEL, offline=False),
    )
    for call in calls:
        with pytest.raises(privsdk.PolicyViolation):
            call()
    assert len(server.requests) == 1


def test_zdr_is_met_only_with_training_turned_off(
    wire: tuple[CohereApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """cohere:zdr stops Cohere logging prompts and generations; no source says it ends their use for training, and
    what Cohere keeps to train on is kept with no stated period. So zdr declared with training on (plan=paid and zdr
    alone, which met zdr before) is refused before a byte is sent, naming what to add; with training_opt_out it
    meets zdr and the request is sent."""
    app, server = wire
    declare(monkeypatch, server)
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    monkeypatch.setenv("PRIVSDK_REQUIRE", "zdr")
    monkeypatch.setenv("PRIVSDK_ATTEST", "cohere:plan=paid,cohere:zdr")
    with pytest.raises(privsdk.ConfigError, match="cohere:zdr requires cohere:training_opt_out") as caught:
        client = privsdk.cohere.ClientV2(api_key=KEY, base_url=server.url, max_retries=0)
        client.chat(model=MODEL, messages=MSG)
    assert "add cohere:training_opt_out" in str(caught.value) and KEY not in str(caught.value)
    assert server.requests == []

    monkeypatch.setenv("PRIVSDK_ATTEST", "cohere:plan=paid,cohere:training_opt_out,cohere:zdr")
    Guard.reset_default()
    client = privsdk.cohere.ClientV2(api_key=KEY, base_url=server.url, max_retries=0)
    assert client.chat(model=MODEL, messages=MSG).message.content[0].text == app.text
    assert len(server.requests) == 1


def test_an_app_built_client_and_its_httpx_client_are_guarded_in_place(
    wire: tuple[CohereApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, server = wire
    declare(monkeypatch, server)
    monkeypatch.setenv("PRIVSDK_REQUIRE", "zdr")
    http = httpx.Client(timeout=5)
    client = cohere.ClientV2(api_key=KEY, base_url=server.url, httpx_client=http)
    assert privsdk.cohere.guard_client(client) is client
    assert privsdk.cohere.guard_client(client) is client  # a second time changes nothing
    with pytest.raises(privsdk.PolicyViolation):
        client.chat(model=MODEL, messages=MSG)
    with pytest.raises(privsdk.PolicyViolation):
        http.post(f"{server.url}/v2/chat", json={"model": MODEL, "messages": MSG})  # the app's own use of it
    assert server.requests == []
    with pytest.raises(TypeError, match="not a cohere client"):
        privsdk.cohere.guard_client(object())


def test_instrument_guards_clients_the_sdk_and_frameworks_build(
    wire: tuple[CohereApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, server = wire
    declare(monkeypatch, server)
    monkeypatch.setenv("PRIVSDK_REQUIRE", "zdr")
    privsdk.cohere.instrument()
    privsdk.cohere.instrument()  # idempotent
    try:
        clients: list[Any] = [
            cohere.ClientV2(api_key=KEY, base_url=server.url),
            cohere.Client(api_key=KEY, base_url=server.url),
            cohere.AsyncClientV2(api_key=KEY, base_url=server.url),
        ]
        with pytest.raises(privsdk.PolicyViolation):
            clients[0].chat(model=MODEL, messages=MSG)
        with pytest.raises(privsdk.PolicyViolation):
            clients[1].v2.chat(model=MODEL, messages=MSG)
        with pytest.raises(privsdk.PolicyViolation):
            asyncio.run(clients[2].chat(model=MODEL, messages=MSG))
    finally:
        privsdk.cohere.uninstrument()
    assert server.requests == []
    monkeypatch.delenv("PRIVSDK_REQUIRE")
    plain: Any = cohere.ClientV2(api_key=KEY, base_url=server.url)
    assert plain.chat(model=MODEL, messages=MSG).message.content[0].text == app.text
    assert not dropin._constructors.patched


@pytest.fixture
def aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LoopbackServer, ConnectProxy]]:
    """A TLS loopback server named as the AWS runtime hosts of us-east-1, reached through an HTTPS proxy:
    the cohere SDK's AWS clients build the AWS URL themselves."""
    context, ca_file = aws_tls_context(tmp_path, "us-east-1")
    with LoopbackServer(CohereApp(), tls=context) as server, ConnectProxy(server.url) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        for name, value in {
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
        }.items():
            monkeypatch.setenv(name, value)
        yield server, proxy
    assert server.errors == []


AWS_KEYS = {"aws_access_key": "AKIDFAKE", "aws_secret_key": "x", "aws_region": "us-east-1"}


def name_the_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, require: str = "") -> None:
    """A policy whose target names the SageMaker endpoint ``my-endpoint`` in us-east-1, for a tenant that
    requires ``require``: an endpoint is judged only through the target that names it."""
    config = tmp_path / "sagemaker.toml"
    config.write_text(
        f"""
[targets.command-endpoint]
offering = "cohere.sagemaker"
model = "command-a"
region = "us-east-1"
deployment = "my-endpoint"

[tenants.acme]
classes.default = [{f'"{require}"' if require else ""}]
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("PRIVSDK_CONFIG", str(config))
    monkeypatch.setenv("PRIVSDK_TENANT", "acme")
    Guard.reset_default()


def test_the_sagemaker_client_is_judged_on_the_aws_host_it_signs_for(
    aws: tuple[LoopbackServer, ConnectProxy], monkeypatch: pytest.MonkeyPatch, usage: Path, tmp_path: Path
) -> None:
    """SagemakerClientV2 rewrites the URL in an httpx hook, which runs before the transport: the guard sees
    runtime.sagemaker.us-east-1.amazonaws.com and the endpoint name, and reads the cohere body. The endpoint runs
    what its owner deployed: judged through the target that names it, refused where none does."""
    server, proxy = aws
    sagemaker = privsdk.cohere.SagemakerClientV2(**AWS_KEYS)
    with pytest.raises(privsdk.PolicyViolation, match="name it in a target: deployment = 'my-endpoint'"):
        sagemaker.chat(model="my-endpoint", messages=MSG)
    name_the_endpoint(tmp_path, monkeypatch, "region=eu")
    with pytest.raises(privsdk.PolicyViolation, match="region=eu"):
        sagemaker.chat(model="my-endpoint", messages=MSG)
    assert proxy.tunnels == [] and server.requests == []
    name_the_endpoint(tmp_path, monkeypatch)
    reply = sagemaker.chat(model="my-endpoint", messages=MSG)
    assert reply.message.content[0].text == CohereApp().text
    assert [r.path for r in server.requests] == ["/endpoints/my-endpoint/invocations"]
    written = records(usage)
    assert [(r["outcome"], r["operation"], r["chosen_target"]) for r in written] == [
        ("refused", "chat", None),
        ("refused", "chat", None),
        ("ok", "chat", "command-endpoint"),
    ]


def test_the_bedrock_client_is_judged_on_the_aws_host_it_signs_for(
    aws: tuple[LoopbackServer, ConnectProxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("privsdk.outbound.wire.bedrock", reason="the Bedrock wire reader comes with boto3 support")
    server, proxy = aws
    monkeypatch.setenv("PRIVSDK_REQUIRE", "region=eu")
    bedrock = privsdk.cohere.BedrockClientV2(**AWS_KEYS)
    with pytest.raises(privsdk.PolicyViolation, match="region=eu"):
        bedrock.chat(model="cohere.command-r-plus-v1:0", messages=MSG)
    assert proxy.tunnels == [] and server.requests == []


def test_an_async_client_serves_one_event_loop_after_another(
    wire: tuple[CohereApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """cohere's own AsyncClientV2 reuses a pooled connection of the closed first loop ("Event loop is closed")."""
    app, server = wire
    declare(monkeypatch, server)
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    client = privsdk.cohere.AsyncClientV2(api_key=KEY, base_url=server.url)

    async def ask() -> tuple[str, list[str]]:
        reply: Any = await client.chat(model=MODEL, messages=MSG)
        kinds = [e.type async for e in client.chat_stream(model=MODEL, messages=MSG)]
        return reply.message.content[0].text, kinds

    first, second, third = asyncio.run(ask()), asyncio.run(ask()), asyncio.run(ask())
    assert first == second == third and first[0] == app.text
    assert len(server.requests) == 6


def test_privsdk_run_guards_cohere_clients_an_unchanged_app_builds(
    wire: tuple[CohereApp, LoopbackServer], tmp_path: Path
) -> None:
    """``privsdk run -- python app.py``: the app imports plain cohere and is guarded all the same."""
    _, server = wire
    app = tmp_path / "app.py"
    app.write_text(
        "import sys, cohere\n"
        f"client = cohere.ClientV2(api_key='k', base_url={server.url!r})\n"
        "try:\n"
        "    client.chat(model='command-a-03-2025', messages=[{'role': 'user', 'content': 'secret'}])\n"
        "except cohere.core.api_error.ApiError as exc:\n"
        "    print(type(exc).__module__, exc)\n"
        "    sys.exit(3)\n",
        encoding="utf-8",
    )
    env = clean_env(PRIVSDK_REQUIRE="zdr", PRIVSDK_ENDPOINTS=f"{server.url}=cohere.saas", PRIVSDK_USAGE="none")
    done = subprocess.run(
        [sys.executable, "-m", "privsdk", "run", "--", sys.executable, str(app)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith("privsdk_cohere.dropin") and "zdr" in done.stdout and "secret" not in done.stdout
    assert server.requests == []


def test_privsdk_guard_takes_sdk_clients_and_drop_in_clients(
    wire: tuple[CohereApp, LoopbackServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, server = wire
    declare(monkeypatch, server)
    monkeypatch.setenv("PRIVSDK_REQUIRE", "zdr")
    for client in (
        cohere.ClientV2(api_key=KEY, base_url=server.url),
        privsdk.cohere.ClientV2(api_key=KEY, base_url=server.url),
        cohere.Client(api_key=KEY, base_url=server.url),
    ):
        assert privsdk.guard(client) is client
        with pytest.raises(privsdk.cohere.PolicyViolation):
            client.v2.chat(model=MODEL, messages=MSG)  # the v2 resource, on a v1 or a v2 client
    assert server.requests == []


def test_the_sagemaker_helpers_boto3_runtime_client_is_judged_before_botocore_sends(
    aws: tuple[LoopbackServer, ConnectProxy], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """SagemakerClientV2.sagemaker_finetuning (with the sagemaker package) invokes endpoints through boto3."""
    boto3 = pytest.importorskip("boto3")
    server, proxy = aws
    monkeypatch.setenv("AWS_CA_BUNDLE", os.environ["SSL_CERT_FILE"])  # botocore trusts its own variable
    runtime = boto3.client(
        "sagemaker-runtime", region_name="us-east-1", aws_access_key_id="AKIDFAKE", aws_secret_access_key="x"
    )
    dropin._guard_boto3(runtime, None)
    dropin._guard_boto3(runtime, None)  # once is enough
    body = json.dumps({"messages": MSG}).encode()
    name_the_endpoint(tmp_path, monkeypatch, "region=eu")
    with pytest.raises(privsdk.cohere.PolicyViolation, match="region=eu"):
        runtime.invoke_endpoint(EndpointName="my-endpoint", Body=body, ContentType="application/json")
    assert proxy.tunnels == [] and server.requests == []
    name_the_endpoint(tmp_path, monkeypatch)
    answer = json.loads(
        runtime.invoke_endpoint(EndpointName="my-endpoint", Body=body, ContentType="application/json")["Body"].read()
    )
    assert answer["message"]["content"][0]["text"] == CohereApp().text
    assert [r.path for r in server.requests] == ["/endpoints/my-endpoint/invocations"]


def test_coheres_boto3_based_client_is_judged_through_the_drop_in_and_instrument(
    aws: tuple[LoopbackServer, ConnectProxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``cohere.manually_maintained.cohere_aws.Client`` (the former cohere-aws package) calls models through a
    boto3 client of its own: the drop-in handed out cohere's class, and cohere's instrument() left it unguarded,
    so its prompts left unjudged. Now the drop-in's is a guarded twin, and instrument() guards cohere's own."""
    from cohere.manually_maintained.cohere_aws.client import Client as Legacy
    from cohere.manually_maintained.cohere_aws.mode import Mode

    server, proxy = aws
    for name, value in {
        "AWS_CA_BUNDLE": os.environ["SSL_CERT_FILE"],
        "AWS_ACCESS_KEY_ID": "AKIDFAKE",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",  # the client sets it when unset: kept to this test
        "PRIVSDK_REQUIRE": "region=eu",
    }.items():
        monkeypatch.setenv(name, value)
    ours = privsdk.cohere.manually_maintained.cohere_aws.Client
    assert issubclass(ours, Legacy) and ours is not Legacy
    clients = [ours(aws_region="us-east-1", mode=Mode.BEDROCK)]
    privsdk.cohere.instrument()
    try:
        clients.append(Legacy(aws_region="us-east-1", mode=Mode.BEDROCK))
    finally:
        privsdk.cohere.uninstrument()
    after = Legacy(aws_region="us-east-1", mode=Mode.BEDROCK)  # made after uninstrument: the SDK's own, unguarded
    assert not getattr(after._client, "_privsdk_guarded", False)
    refused = []
    for client in clients:
        # The SDK's own except clause names an attribute botocore lacks: whatever its boto3 call raises, the app
        # gets that AttributeError, with the refusal as its context.
        with pytest.raises(Exception) as raised:
            client.chat(message="CANARY-legacy-aws", model_id="cohere.command-r-v1:0")
        refused.append(isinstance(raised.value.__context__, privsdk.PolicyViolation))
    assert refused == [True, True]
    assert proxy.tunnels == [] and server.requests == []


def test_every_client_class_of_cohere_has_its_guarded_twin() -> None:
    names = [n for n in cohere.__all__ if n.endswith(("Client", "ClientV2")) and not n.startswith("Default")]
    assert names and all(issubclass(getattr(privsdk.cohere, n), getattr(cohere, n)) for n in names)
    assert all(getattr(privsdk.cohere, n) is not getattr(cohere, n) for n in names)
