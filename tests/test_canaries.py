"""Canaries through the whole client: no sink, log or privsdk error ever holds call content.

Unique canary strings go into system text, user messages, tool definitions and
tool-call arguments, embedding inputs, rerank documents, rejected caller tags,
the stand-in vendors' answers, and vendor error bodies that echo the prompt.
The calls run through every path (success, stream, stream cut mid-way,
timeout, 429, 5xx, a bad request, refusal, reroute) with the real SDKs against
loopback servers, once per sink. Then the SQLite file (and its WAL), the JSONL
file, the OpenTelemetry output (in memory, and OTLP/HTTP to a loopback
collector), the records an app's function got, every log record (every
logger at DEBUG, the vendor SDKs' own included: botocore logs bodies) and
every privsdk error are searched: its message, its formatted traceback
(``traceback.format_exception``) and every exception chained to it. Zero
hits, asserted.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from privsdk.client import Client
from privsdk.errors import PolicyViolation, PrivsdkError
from privsdk.resilience import Limits
from privsdk.types import Message, Tool, ToolCall
from privsdk.usage import Recorder, UsageRecord
from privsdk.usage.otlp import OtlpSink
from tests.conftest import every_logger_at_debug
from tests.usage_collector import serve_collector
from tests.wire.bedrock import BedrockWire
from tests.wire.bedrock import error as bedrock_error
from tests.wire.cohere import CohereApp
from tests.wire.cohere import error_body as cohere_error
from tests.wire.openai import OpenAIWire, error_body
from tests.wire.server import Cut, Delay, LoopbackServer, Status

MARK = "CANARY"
SYSTEM, USER, TOOL_DOC, TOOL_ARGS, EMBED, DOC, TAG, ANSWER, ECHO = (f"{MARK}{n:02d}x7q" for n in range(9))

POLICY = """
[attest]
openai = ["zdr"]

[targets.openai-mini]
offering = "openai.api"
model = "gpt-4o-mini"
endpoint = "{openai}/v1"

[targets.azure-eu]
offering = "azure.openai"
model = "gpt-4o"
endpoint = "{azure}"
api_version = "2024-10-21"
attest = ["deployment=data_zone_eu", "modified_abuse_monitoring"]

# Refused before anything is sent (a trial key trains), so it keeps Cohere's own host: the loopback
# server is the private deployment, and an endpoint serves one offering.
[targets.cohere-saas]
offering = "cohere.saas"
model = "command-r-plus"

[targets.cohere-private]
offering = "cohere.private"
model = "rerank-v3.5"
endpoint = "{cohere}"

[targets.bedrock-eu]
offering = "bedrock.runtime"
model = "eu.anthropic.claude-3-haiku-20240307-v1:0"
region = "eu-central-1"
endpoint = "{bedrock}"

[tenants.acme]
on_violation = "reroute"
classes.default = ["no_training"]
classes.pii = ["no_training", "zdr", "region=eu"]
reroute.openai-mini = ["azure-eu"]
"""


def _conversation() -> list[Message]:
    return [
        Message("system", f"You are a contract lawyer. {SYSTEM}"),
        Message("user", f"Weather for my client? {USER}"),
        Message("assistant", "", (ToolCall("call_1", "get_weather", json.dumps({"city": TOOL_ARGS})),)),
        Message("tool", f"Sunny in {TOOL_ARGS}", tool_call_id="call_1"),
        Message("user", f"And tomorrow? {USER}"),
    ]


TOOLS = [
    Tool(
        "get_weather",
        f"Weather by city {TOOL_DOC}",
        {"type": "object", "properties": {"city": {"type": "string", "description": TOOL_DOC}}},
    )
]


def error_text(exc: BaseException) -> str:
    """All an app's logs could show of an error: its text, its formatted traceback, and every chained exception."""
    parts = [f"{type(exc).__name__}: {exc!s} {exc!r} {exc.args!r}", "".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    linked: BaseException | None = exc
    while linked is not None and id(linked) not in seen:
        seen.add(id(linked))
        parts.append(f"{linked!r} {linked.args!r}")
        for chained in (linked.__cause__, linked.__context__):
            if chained is not None:
                parts.append(f"{chained!r} {chained.args!r} {vars(chained)!r}")
        linked = linked.__cause__ or linked.__context__
    return "\n".join(parts)


def drive(
    client: Client, openai_server: LoopbackServer, cohere_server: LoopbackServer, bedrock_server: LoopbackServer
) -> list[str]:
    """Every path once; returns the text of every privsdk error raised on the way."""
    raised: list[str] = []

    def expect_error(call: Callable[[], object]) -> None:
        try:
            call()
        except PrivsdkError as exc:
            assert exc.__cause__ is None and exc.__context__ is None, "a privsdk error chains another exception"
            raised.append(error_text(exc))
        else:
            raise AssertionError("the call was to fail")

    messages = _conversation()
    client.chat("openai-mini", messages, tools=TOOLS, tags={"feature": "lawyer"})  # success
    list(client.chat("openai-mini", messages, stream=True))  # a stream
    openai_server.fail(Cut(after=2))
    stream = client.chat("openai-mini", messages, stream=True)
    expect_error(lambda: list(stream))  # a stream cut mid-way
    openai_server.fail(Delay(2.0))
    direct = "openai/gpt-4o-mini"  # no reroute list: its failures reach the caller
    expect_error(lambda: client.chat(direct, messages, timeout=0.3, max_attempts=1))  # a timeout
    echo = error_body(f"Rate limit for prompt {USER} {SYSTEM}", code="rate_limit_exceeded")
    openai_server.fail(Status(429, {"retry-after-ms": "1"}, echo))
    client.chat("openai-mini", messages)  # a 429, then a success
    five_hundred = Status(500, body=error_body(f"Internal error on {USER}", type="server_error"))
    openai_server.fail(five_hundred, five_hundred)
    client.chat("openai-mini", messages, max_attempts=2)  # 5xx twice, then the fallback to Azure
    openai_server.fail(five_hundred, five_hundred)
    expect_error(lambda: client.chat(direct, messages, max_attempts=2))  # 5xx with nowhere to fall back
    openai_server.fail(Status(400, body=error_body(f"Invalid prompt: {USER} {ECHO}", code="invalid_value")))
    expect_error(lambda: client.chat("openai-mini", messages))  # a bad request that echoes the prompt
    expect_error(lambda: client.chat("cohere-saas", messages))  # refused: Cohere's trial key trains
    client.chat("openai-mini", messages, data_class="pii")  # rerouted to Azure
    client.embed("openai/text-embedding-3-small", [f"Customer file {EMBED}", EMBED])
    cohere_server.fail(Status(429, {"Retry-After": "0"}, cohere_error(f"too many requests about {DOC}")))
    client.rerank("cohere-private", f"which clause? {USER}", [f"Clause 1 {DOC}", f"Clause 2 {DOC}"])
    expect_error(lambda: client.chat("openai-mini", messages, tags={"feature": f"lawyer {TAG}"}))  # rejected tags
    expect_error(lambda: client.chat("openai-mini", messages, tags={f"{TAG} team": "x"}))
    # Bedrock: botocore logs request and response bodies at DEBUG, and its error bodies echo the prompt.
    client.chat("bedrock-eu", messages, tools=TOOLS)
    list(client.chat("bedrock-eu", messages, stream=True, tools=TOOLS))
    bedrock_server.fail(bedrock_error(400, "ValidationException", f"Malformed input: {USER} {ECHO}"))
    expect_error(lambda: client.chat("bedrock-eu", messages, tools=TOOLS))
    bedrock_server.fail(Cut(after=3))  # after the first event: a cut stream is raised, never retried
    stream = client.chat("bedrock-eu", messages, stream=True, tools=TOOLS)
    expect_error(lambda: list(stream))
    return raised


class Stack:
    """The stand-in vendors and a client over them, writing usage records to ``usage``."""

    def __init__(self, tmp_path: Path, usage: str | Callable[[UsageRecord], None] | Recorder):
        openai_app, azure_app, cohere_app = (
            OpenAIWire(key="sk-c"),
            OpenAIWire(key="az-c"),
            CohereApp(f"Answer {ANSWER}"),
        )
        openai_app.text = azure_app.text = f"The contract says {ANSWER}"
        cohere_app.anonymous = True
        self.servers = [
            LoopbackServer(openai_app),
            LoopbackServer(azure_app),
            LoopbackServer(cohere_app),
            LoopbackServer(BedrockWire()),  # its answers echo the prompt
        ]
        self.tmp_path = tmp_path
        self.usage = usage

    def __enter__(self) -> Stack:
        for server in self.servers:
            server.__enter__()
        openai_server, azure_server, cohere_server, bedrock_server = self.servers
        config = self.tmp_path / "privsdk.toml"
        config.write_text(
            POLICY.format(
                openai=openai_server.url, azure=azure_server.url, cohere=cohere_server.url, bedrock=bedrock_server.url
            )
        )
        self.client = Client(
            environ={"PRIVSDK_CONFIG": str(config), "PRIVSDK_TENANT": "acme"},
            usage=self.usage,
            credentials={
                "openai": {"api_key": "sk-c"},
                "azure": {"api_key": "az-c"},
                "cohere": {"api_key": "co"},
                "bedrock": {"aws_access_key_id": "AKIDCANARY", "aws_secret_access_key": "x"},
            },
            endpoints={"openai": f"{openai_server.url}/v1"},
            timeout=5.0,
            limits=Limits(backoff_base_s=0.001),
        )
        return self

    def run(self) -> list[str]:
        raised = drive(self.client, self.servers[0], self.servers[2], self.servers[3])
        self.client.close()
        # The canaries really went out: the vendors saw them, so finding none below means something.
        sent = b"".join(r.body for server in self.servers for r in server.requests)
        for canary in (SYSTEM, USER, TOOL_DOC, TOOL_ARGS, EMBED, DOC):
            assert canary.encode() in sent, canary
        return raised

    def __exit__(self, *exc: object) -> None:
        for server in self.servers:
            server.__exit__()
            assert server.errors == []


def assert_clean(data: bytes | str, where: str) -> None:
    blob = data.encode() if isinstance(data, str) else data
    assert MARK.encode() not in blob, f"a canary reached {where}"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every logger at DEBUG, as an app debugging itself would set them: the root, and the SDKs' own by name."""
    with every_logger_at_debug(caplog):
        yield caplog
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    records = caplog.get_records("call")  # after the yield, caplog.records is teardown's, always empty
    for record in records:
        text = f"{formatter.format(record)} {record.args!r} {record.exc_text or ''}"
        assert_clean(text, f"log record {record.name}")


def _check_errors(raised: list[str]) -> None:
    assert len(raised) == 9
    for text in raised:
        assert_clean(text, "a privsdk error")


def test_sqlite_store(tmp_path: Path, logs: pytest.LogCaptureFixture) -> None:
    store = tmp_path / "usage.sqlite3"
    with Stack(tmp_path, f"sqlite://{store}") as stack:
        _check_errors(stack.run())
    files = list(tmp_path.glob("usage.sqlite3*"))
    assert store in files and store.stat().st_size > 0
    for path in files:
        assert_clean(path.read_bytes(), path.name)


def test_jsonl_store(tmp_path: Path, logs: pytest.LogCaptureFixture) -> None:
    store = tmp_path / "usage.jsonl"
    with Stack(tmp_path, f"jsonl://{store}") as stack:
        _check_errors(stack.run())
    lines = store.read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 15 and {json.loads(line)["outcome"] for line in lines} >= {"ok", "error", "refused"}
    assert_clean(store.read_bytes(), "the JSONL file")


def test_an_apps_function(tmp_path: Path, logs: pytest.LogCaptureFixture) -> None:
    got: list[UsageRecord] = []
    with Stack(tmp_path, got.append) as stack:
        _check_errors(stack.run())
    assert {r.decision for r in got} == {"allow", "reroute", "refuse"}
    assert {r.error_class for r in got} >= {"connection_lost", "timeout", "rate_limited", "unavailable", "bad_request"}
    assert_clean(repr(got), "the app's function")


def test_opentelemetry_in_memory(tmp_path: Path, logs: pytest.LogCaptureFixture) -> None:
    spans, metrics = InMemorySpanExporter(), InMemoryMetricReader()
    with Stack(tmp_path, Recorder(lambda: OtlpSink(span_exporter=spans, metric_reader=metrics))) as stack:
        _check_errors(stack.run())
    finished = spans.get_finished_spans()
    assert len(finished) >= 15
    for span in finished:
        assert_clean(span.to_json(), "a span")
    data = metrics.get_metrics_data()
    assert data is not None
    assert_clean(data.to_json(), "the metrics")


def test_opentelemetry_over_otlp_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    with serve_collector(monkeypatch) as collector:
        with Stack(tmp_path, "otlp") as stack:
            _check_errors(stack.run())
        posts: list[tuple[str, Any]] = list(collector.posts)
    assert {path for path, _ in posts} == {"/v1/traces", "/v1/metrics"}
    for path, body in posts:
        assert_clean(body, path)


def test_a_refusal_holds_the_decision_and_no_content(tmp_path: Path) -> None:
    with Stack(tmp_path, "none") as stack, pytest.raises(PolicyViolation) as caught:
        stack.client.chat("cohere-saas", f"secret {USER}")
    assert_clean(json.dumps(caught.value.decision.to_json()), "the decision")
    assert all(server.requests == [] for server in stack.servers)
