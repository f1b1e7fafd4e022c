"""How the guard records streamed answers, through the real SDKs over loopback servers: an answer with an error
status, an answer the vendor fails inside its stream, and the time to a stream's first chunk."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from google.genai import types
from mistralai.client.utils import BackoffStrategy, RetryConfig

import privsdk.boto3
import privsdk.cohere
import privsdk.genai
import privsdk.mistralai
import privsdk.openai
from privsdk.config import load_policy
from privsdk.outbound.judge import Guard
from privsdk.outbound.transport import guard_httpx
from privsdk.usage import open_recorder
from tests.conftest import REPO
from tests.wire import bedrock as bedrock_wire
from tests.wire import cohere as cohere_wire
from tests.wire import mistral as mistral_wire
from tests.wire import openai as openai_wire
from tests.wire import vertex as vertex_wire
from tests.wire.server import Cut, Delay, Drip, LoopbackServer, Status

MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]
RETRY_SOON = {"retry-after-ms": "10"}
BEDROCK_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


class Usage:
    """The guard's usage records of the drop-ins, in a JSONL file; ``serve`` declares a stand-in's offering."""

    def __init__(self, path: Path, monkeypatch: pytest.MonkeyPatch):
        self.path, self.monkeypatch = path, monkeypatch
        monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{path}")

    def serve(self, url: str, offering: str) -> None:
        self.monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{url}={offering}")
        Guard.reset_default()

    def take(self) -> list[dict[str, Any]]:
        """The records written since the last ``take``, without a garbage collection in between."""
        Guard.default().flush(5)
        lines = self.path.read_text().splitlines() if self.path.exists() else []
        self.path.write_text("")
        return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture
def usage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Usage]:
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(name, raising=False)
    yield Usage(tmp_path / "usage.jsonl", monkeypatch)
    Guard.reset_default()


def outcomes(records: list[dict[str, Any]]) -> list[tuple[str, str | None, int | None]]:
    return [(r["outcome"], r["error_class"], r["http_status"]) for r in records]


# -- an answer with an error status -----------------------------------------------------------------------------


def test_a_stream_answered_with_an_error_status_the_sdk_retries_is_an_error_of_that_status(usage: Usage) -> None:
    """openai closes a 429 or 503 answer to a stream unread and retries: the close let the answer be recorded
    `cancelled` without an error class, where the same answer to a non-stream call is an error."""
    app = openai_wire.OpenAIWire()
    with LoopbackServer(app) as server:
        usage.serve(server.url + "/v1", "openai.api")
        sdk = privsdk.openai.OpenAI(api_key="sk-loopback", base_url=server.url + "/v1", max_retries=2)
        server.fail(Status(429, RETRY_SOON, b"{}"), Status(503, RETRY_SOON, b"{}"))
        for _ in sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
            pass
        assert outcomes(usage.take()) == [
            ("error", "rate_limited", 429),
            ("error", "unavailable", 503),
            ("ok", None, 200),
        ]

        async def helper() -> None:
            client = privsdk.openai.AsyncOpenAI(api_key="sk-loopback", base_url=server.url + "/v1", max_retries=1)
            server.fail(Status(429, RETRY_SOON, b"{}"))
            async with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
                async for _ in stream:
                    pass

        asyncio.run(helper())
        assert outcomes(usage.take()) == [("error", "rate_limited", 429), ("ok", None, 200)]

    with LoopbackServer(mistral_wire.MistralApp()) as server:
        usage.serve(server.url, "mistral.api")
        mistral = privsdk.mistralai.Mistral(api_key="k", server_url=server.url)
        retries = RetryConfig("backoff", BackoffStrategy(10, 50, 1.1, 2000), False)
        server.fail(Status(429, body=b'{"message":"x"}'))
        with mistral.chat.stream(model="mistral-large-latest", messages=MESSAGES, retries=retries) as events:
            for _ in events:
                pass
        assert outcomes(usage.take()) == [("error", "rate_limited", 429), ("ok", None, 200)]


# -- an error inside a stream -----------------------------------------------------------------------------------


def _openai(server: LoopbackServer) -> None:
    sdk = privsdk.openai.OpenAI(api_key="sk-loopback", base_url=server.url + "/v1", max_retries=0)
    for _ in sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
        pass


def _openai_responses(server: LoopbackServer) -> None:
    sdk = privsdk.openai.OpenAI(api_key="sk-loopback", base_url=server.url + "/v1", max_retries=0)
    for _ in sdk.responses.create(model="gpt-4o-mini", input="hi", stream=True, store=False):
        pass


def _mistral(server: LoopbackServer) -> None:
    with privsdk.mistralai.Mistral(api_key="k", server_url=server.url).chat.stream(
        model="mistral-large-latest", messages=MESSAGES
    ) as events:
        for _ in events:
            pass


def _cohere(server: LoopbackServer) -> None:
    client = privsdk.cohere.ClientV2(api_key="k", base_url=server.url)
    for _ in client.chat_stream(model="command-a-03-2025", messages=MESSAGES):
        pass


def _genai(server: LoopbackServer) -> None:
    client = privsdk.genai.Client(api_key=vertex_wire.API_KEY, http_options=types.HttpOptions(base_url=server.url))
    for _ in client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"):
        pass


def _bedrock(server: LoopbackServer) -> None:
    client = privsdk.boto3.client(
        "bedrock-runtime",
        region_name="eu-central-1",
        endpoint_url=server.url,
        config=Config(retries={"total_max_attempts": 1}),
        aws_access_key_id="AKIDFAKE",
        aws_secret_access_key="x",
    )
    answer = client.converse_stream(modelId=BEDROCK_MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    for _ in answer["stream"]:
        pass


IN_BAND: dict[str, tuple[Callable[[], Any], str, Callable[[LoopbackServer], None], int, bytes, str]] = {
    # name: (stand-in, offering, call, chunks before the error, the error, its class)
    "openai rate limit": (
        openai_wire.OpenAIWire,
        "openai.api",
        _openai,
        2,
        openai_wire.stream_error_chunk("slow down", type="tokens", code="rate_limit_exceeded"),
        "rate_limited",
    ),
    "openai server error": (
        openai_wire.OpenAIWire,
        "openai.api",
        _openai,
        2,
        openai_wire.stream_error_chunk("oops"),
        "unavailable",
    ),
    "openai responses error event": (
        openai_wire.OpenAIWire,
        "openai.api",
        _openai_responses,
        2,
        openai_wire.responses_error_event("slow down", code="rate_limit_exceeded"),
        "rate_limited",
    ),
    "mistral": (
        mistral_wire.MistralApp,
        "mistral.api",
        _mistral,
        2,
        mistral_wire.stream_error("overloaded"),
        "unavailable",
    ),
    "cohere": (cohere_wire.CohereApp, "cohere.saas", _cohere, 2, cohere_wire.stream_error("internal"), "unavailable"),
    "gemini": (
        vertex_wire.GeminiApp,
        "gemini.api",
        _genai,
        1,
        vertex_wire.stream_error(429, "RESOURCE_EXHAUSTED", "quota"),
        "rate_limited",
    ),
    "bedrock": (
        bedrock_wire.BedrockWire,
        "bedrock.runtime",
        _bedrock,
        3,
        bedrock_wire.exception_frame("throttlingException", "slow"),
        "rate_limited",
    ),
}


@pytest.mark.parametrize("pieces", [1, 9])
@pytest.mark.parametrize("name", IN_BAND)
def test_a_stream_the_vendor_fails_after_its_200_is_an_error(usage: Usage, name: str, pieces: int) -> None:
    """Every vendor can fail a stream it has begun with an error event; the SDK raises (cohere ends the stream with
    finish_reason ERROR). The answer was recorded `cancelled` (`ok` for cohere; Bedrock's only once collected).
    The event may come in one chunk or, as a network may split it, in several."""
    app, offering, call, after, error, kind = IN_BAND[name]
    with LoopbackServer(app()) as server:
        usage.serve(server.url + ("/v1" if offering == "openai.api" else ""), offering)
        server.fail(Cut(after=after, then=error, drop=False, pieces=pieces))
        with contextlib.suppress(Exception):  # the SDK's own error for the event (cohere raises none)
            call(server)
        assert outcomes(usage.take()) == [("error", kind, 200)]
        call(server)  # the next stream, whole, is still ok
        assert outcomes(usage.take()) == [("ok", None, 200)]


def test_error_words_in_an_answers_text_are_no_error(usage: Usage) -> None:
    """The error markers are looked for as JSON keys and values, never in the text: a model that answers with the
    word error, or text that quotes an error event, still answers ok."""
    app = openai_wire.OpenAIWire()
    app.text = 'error "error": {"code": 429} "type":"error"'
    with LoopbackServer(app) as server:
        usage.serve(server.url + "/v1", "openai.api")
        _openai(server)
        assert outcomes(usage.take()) == [("ok", None, 200)]


# -- the time to a stream's first chunk -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["openai", "cohere", "bedrock"])
def test_a_streams_record_has_the_time_to_its_first_chunk(usage: Usage, name: str) -> None:
    """docs/usage-records.md: first_chunk_ms is the time to the first chunk of a stream. The seams never set it."""
    app, offering, call, *_ = IN_BAND[name if name != "openai" else "openai rate limit"]
    with LoopbackServer(app()) as server:
        usage.serve(server.url + ("/v1" if offering == "openai.api" else ""), offering)
        server.fail(Drip(0.1))  # each chunk 0.1 s after the last: the first comes well before the end
        call(server)
        (record,) = usage.take()
        assert record["outcome"] == "ok"
        assert record["first_chunk_ms"] is not None
        assert 0.0 < record["first_chunk_ms"] < record["latency_ms"] - 100.0


def test_a_non_stream_answer_has_no_first_chunk_time(usage: Usage) -> None:
    with LoopbackServer(openai_wire.OpenAIWire()) as server:
        usage.serve(server.url + "/v1", "openai.api")
        sdk = privsdk.openai.OpenAI(api_key="sk-loopback", base_url=server.url + "/v1", max_retries=0)
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        (record,) = usage.take()
        assert (record["outcome"], record["first_chunk_ms"]) == ("ok", None)


@pytest.mark.parametrize("error", ["ReadError", "WriteError", "ConnectError", "RemoteProtocolError"])
def test_a_connection_lost_on_the_way_is_a_lost_connection(usage: Usage, error: str) -> None:
    """httpx raises ReadError (a NetworkError) when the server resets the connection: its record said error class
    "other", as its name says nothing of a connection. The transport under the guard raises it as httpx's would."""
    import httpx2  # openai's own httpx

    class Lost(httpx2.BaseTransport):
        def handle_request(self, request: httpx2.Request) -> httpx2.Response:
            raise getattr(httpx2, error)("[Errno 104] Connection reset by peer", request=request)

    usage.serve("https://gw.example/v1", "openai.api")
    http = privsdk.openai.DefaultHttpxClient(transport=Lost())
    sdk = privsdk.openai.OpenAI(api_key="sk-x", base_url="https://gw.example/v1", max_retries=0, http_client=http)
    with pytest.raises(privsdk.openai.APIConnectionError) as raised:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert type(raised.value.__cause__).__name__ == error
    assert outcomes(usage.take()) == [("error", "connection_lost", None)]


@pytest.mark.parametrize("library", ["httpx", "httpx2"])
@pytest.mark.parametrize("read", [None, 300])
def test_a_long_answer_reaches_its_meter_whole_kept_or_counted_on_the_way(library: str, read: int | None) -> None:
    """The guard keeps an answer's chunks for its meter, which reads them in the writer thread; past a few hundred
    chunks it feeds them to the meter on the way. An answer of a thousand chunks whose counts come first (a JSON
    answer may put ``usage`` before its choices) is recorded with them, read to its end or closed after 300."""
    http: Any = importlib.import_module(library)
    answer = b'{"usage":{"prompt_tokens":3,"completion_tokens":4},"choices":[' + b'"padding",' * 999 + b'"end"]}'
    chunks = [answer[i : i + 10] for i in range(0, len(answer), 10)]
    records: list[Any] = []
    guard = Guard(load_policy({"PRIVSDK_USAGE": "none"}), recorder=open_recorder(records.append))
    client = guard_httpx(
        http.Client(transport=http.MockTransport(lambda request: http.Response(200, content=iter(chunks)))),
        sdk="openai",
        refusal=lambda violation: violation,
        guard=guard,
    )
    body = json.dumps({"model": "gpt-4o-mini", "messages": MESSAGES}).encode()
    with client.stream("POST", "https://api.openai.com/v1/chat/completions", content=body) as response:
        passed = list(itertools.islice(response.iter_raw(), read))
    assert b"".join(passed) == (answer if read is None else b"".join(chunks[:read]))
    guard.flush(5)
    [record] = records
    assert (record.outcome, record.input_tokens, record.output_tokens) == ("ok", 3, 4)


# -- a stream still open at interpreter exit --------------------------------------------------------------------

_OPEN_AT_EXIT = """
import os, sys
sys.path.insert(0, {root!r})
from tests.wire import bedrock, mistral, openai as openai_wire
from tests.wire.server import LoopbackServer

kind = sys.argv[2]
app = {{"openai": openai_wire.OpenAIWire, "mistral": mistral.MistralApp, "bedrock": bedrock.BedrockWire}}[kind]()
server = LoopbackServer(app).__enter__()
offering = {{"openai": "openai.api", "mistral": "mistral.api", "bedrock": "bedrock.runtime"}}[kind]
os.environ.update(PRIVSDK_USAGE="jsonl://" + sys.argv[1], PRIVSDK_ENDPOINTS=server.url + "=" + offering)
messages = [{{"role": "user", "content": "hi"}}]
if kind == "openai":
    from privsdk import openai
    client = openai.OpenAI(api_key="sk-loopback", base_url=server.url + "/v1")
    stream = iter(client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True))
elif kind == "mistral":
    from privsdk import mistralai
    stream = iter(mistralai.Mistral(api_key="k", server_url=server.url).chat.stream(
        model="mistral-large-latest", messages=messages
    ))
else:
    from privsdk import boto3
    client = boto3.client("bedrock-runtime", region_name="eu-central-1", endpoint_url=server.url,
                          aws_access_key_id="AKIDFAKE", aws_secret_access_key="x")
    said = [{{"role": "user", "content": [{{"text": "hi"}}]}}]
    stream = iter(client.converse_stream(modelId={model!r}, messages=said)["stream"])
next(stream)
print(len(server.requests))
"""


@pytest.mark.parametrize("kind", ["openai", "mistral", "bedrock"])
def test_a_drop_in_stream_left_open_at_interpreter_exit_is_recorded_cancelled(tmp_path: Path, kind: str) -> None:
    """A script keeps a drop-in's stream in a module global and exits: the request was sent, but its record came
    only as the stream was collected, after the exit hook had closed the recorder, and was lost ("a usage record
    arrived after the recorder was closed"). The recorder now ends it first, as it does a Client's stream."""
    script = tmp_path / "app.py"
    script.write_text(_OPEN_AT_EXIT.format(root=str(REPO), model=BEDROCK_MODEL))
    records = tmp_path / "usage.jsonl"
    done = subprocess.run(
        [sys.executable, str(script), str(records), kind], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1" and "privsdk usage" not in done.stderr, done.stderr
    found = [json.loads(line) for line in records.read_text().splitlines()]
    assert [(r["operation"], r["outcome"], r["error_class"]) for r in found] == [("stream", "cancelled", None)]


def test_a_request_still_waiting_for_its_answer_as_its_recorder_closes_is_recorded_cancelled(usage: Usage) -> None:
    """A request another thread has sent, and whose answer has not come, as the recorder closes (a guard's close,
    interpreter exit with a daemon thread mid-request): its record came with the answer, after the close, and was
    dropped. The recorder now ends it as cancelled, and the answer, when it comes, is read as before."""
    app = openai_wire.OpenAIWire()
    with LoopbackServer(app) as server:
        usage.serve(server.url + "/v1", "openai.api")
        server.fail(Delay(0.5))
        sdk = privsdk.openai.OpenAI(api_key="sk-loopback", base_url=server.url + "/v1", max_retries=0)
        answers: list[str] = []
        waiting = threading.Thread(
            target=lambda: answers.append(
                sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices[0].message.content or ""
            )
        )
        waiting.start()
        while not server.requests:  # sent: the server has it, and waits before it answers
            time.sleep(0.01)
        recorder = Guard.default().recorder
        Guard.default().close()
        waiting.join(10)
        assert answers == [app.text]
        assert outcomes(usage.take()) == [("cancelled", None, None)]
        assert recorder.dropped == 0


def test_a_stream_still_read_as_its_recorder_closes_reads_to_its_end(usage: Usage) -> None:
    """The recorder ends the record of a stream still open as it closes (a guard's close, interpreter exit), perhaps
    while another thread reads it: the reader then failed with a bare AssertionError (its kept chunks were taken
    from under it). It reads to its end, and its request is recorded once."""
    app = openai_wire.OpenAIWire()
    app.pieces = 8
    with LoopbackServer(app) as server:
        usage.serve(server.url + "/v1", "openai.api")
        sdk = privsdk.openai.OpenAI(api_key="sk-loopback", base_url=server.url + "/v1", max_retries=0)
        stream = iter(sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
        first = next(stream)
        Guard.default().close()  # as at exit: the record is ended now, while the stream is still being read
        rest = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in [first, *rest] if c.choices)
        assert text == app.text
        records = usage.take()
        assert outcomes(records) == [("cancelled", None, 200)]

        async def read_async() -> str:
            client = privsdk.openai.AsyncOpenAI(api_key="sk-loopback", base_url=server.url + "/v1", max_retries=0)
            chunks = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
            out: list[str] = []
            async for chunk in chunks:
                if not out:
                    Guard.default().close()
                out.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
            return "".join(out)

        Guard.reset_default()
        assert asyncio.run(read_async()) == app.text
        assert outcomes(usage.take()) == [("cancelled", None, 200)]
