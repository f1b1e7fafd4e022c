"""Canaries through the drop-ins and through ``privsdk.instrument()``: no sink, log or refusal holds call content.

The same rule as tests/test_canaries.py, for the other ways in: each vendor SDK's drop-in (openai, cohere,
mistralai, boto3, google-genai) and a plain openai client caught by ``instrument()``. Each sends canaries in
its prompts and gets them back in answers, streams and an error body that echoes the prompt; one call per
SDK is refused. Then the usage store (JSONL and SQLite, WAL included), every log record (every logger at
DEBUG, the SDKs' own included) and every refusal (message, formatted traceback, chain) are searched.

The SDK's own exception for a vendor's error (``openai.BadRequestError`` echoing the prompt) is the SDK's
behaviour, which a drop-in keeps: it is not searched here, and tests/test_canaries.py shows privsdk.Client's
own errors never carry it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import privsdk
from privsdk.errors import PolicyViolation
from tests.test_canaries import MARK, assert_clean, error_text, logs  # noqa: F401 - logs is a fixture
from tests.wire.bedrock import BedrockWire
from tests.wire.cohere import CohereApp
from tests.wire.mistral import MistralApp
from tests.wire.openai import OpenAIWire, error_body
from tests.wire.server import LoopbackServer, Status
from tests.wire.vertex import API_KEY, GeminiApp

PROMPT, ANSWER, ECHO = (f"{MARK}{n:02d}d9z" for n in range(3))
AWS = {"aws_access_key_id": "AKIDCANARY", "aws_secret_access_key": "canary-secret"}

POLICY = """
[attest]
cohere = ["plan=paid", "training_opt_out"]
mistral = ["training_opt_out"]
gemini = ["plan=paid"]

[endpoints]
"{openai}/v1" = "openai.api"
"{cohere}" = "cohere.saas"
"{mistral}" = "mistral.api"
"{bedrock}" = "bedrock.runtime"
"{gemini}" = "gemini.api"

[tenants.acme]
classes.default = ["no_training"]
classes.phi = ["no_training", "zdr", "hipaa_baa"]  # nobody attests a BAA: every vendor refuses this class
"""


class Vendors:
    """The five stand-ins, a policy file declaring them, and the environment the drop-ins read."""

    def __init__(self, tmp_path: Path, usage: str, monkeypatch: pytest.MonkeyPatch):
        openai_app, cohere_app = OpenAIWire(key="sk-canary"), CohereApp(f"Answer {ANSWER}")
        mistral_app, gemini_app = MistralApp(f"Answer {ANSWER}"), GeminiApp(f"Answer {ANSWER}")
        openai_app.text = f"The contract says {ANSWER}"
        self.servers = {
            "openai": LoopbackServer(openai_app),
            "cohere": LoopbackServer(cohere_app),
            "mistral": LoopbackServer(mistral_app),
            "bedrock": LoopbackServer(BedrockWire()),  # its answers echo the prompt
            "gemini": LoopbackServer(gemini_app),
        }
        self.tmp_path, self.usage, self.monkeypatch = tmp_path, usage, monkeypatch

    def __enter__(self) -> Vendors:
        for server in self.servers.values():
            server.__enter__()
        config = self.tmp_path / "privsdk.toml"
        config.write_text(POLICY.format(**{name: s.url for name, s in self.servers.items()}))
        for name, value in {
            "PRIVSDK_CONFIG": str(config),
            "PRIVSDK_TENANT": "acme",
            "PRIVSDK_USAGE": self.usage,
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
        }.items():
            self.monkeypatch.setenv(name, value)
        return self

    def url(self, name: str) -> str:
        return self.servers[name].url

    def __exit__(self, *exc: object) -> None:
        privsdk.uninstrument()
        privsdk.Guard.reset_default()  # flushes the guard's records to the store
        for server in self.servers.values():
            server.__exit__()

    def sent(self) -> bytes:
        return b"".join(r.body for server in self.servers.values() for r in server.requests)


def _refused(call: object) -> str:
    """Run ``call`` under the refused class; the refusal's whole text (message, traceback, chain)."""
    with privsdk.scope(data_class="phi"):
        try:
            call()  # type: ignore[operator]
        except PolicyViolation as refusal:
            return error_text(refusal)
    raise AssertionError("the call was to be refused")


def drive(vendors: Vendors) -> list[str]:
    """Every drop-in once allowed, streamed where the SDK streams, and refused; returns the refusals' text."""
    import openai as plain_openai
    from google.genai import types

    from privsdk import boto3, cohere, genai, mistralai
    from privsdk import openai as popenai

    raised = []
    messages: Any = [{"role": "user", "content": f"Summarise the contract {PROMPT}"}]  # each SDK's own param type

    client = popenai.OpenAI(api_key="sk-canary", base_url=vendors.url("openai") + "/v1", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    assert ANSWER in "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    vendors.servers["openai"].fail(Status(400, body=error_body(f"Invalid prompt: {PROMPT} {ECHO}")))
    with pytest.raises(plain_openai.BadRequestError):  # the SDK's own error, as the SDK raises it
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    raised.append(_refused(lambda: client.chat.completions.create(model="gpt-4o-mini", messages=messages)))

    privsdk.instrument()  # a client the app (or a framework) builds with the plain SDK
    built = plain_openai.OpenAI(api_key="sk-canary", base_url=vendors.url("openai") + "/v1", max_retries=0)
    built.chat.completions.create(model="gpt-4o-mini", messages=messages)
    raised.append(_refused(lambda: built.chat.completions.create(model="gpt-4o-mini", messages=messages)))
    privsdk.uninstrument()

    co = cohere.ClientV2(api_key="co-canary", base_url=vendors.url("cohere"))
    co.chat(model="command-r-plus", messages=messages)
    for _ in co.chat_stream(model="command-r-plus", messages=messages):
        pass
    raised.append(_refused(lambda: co.chat(model="command-r-plus", messages=messages)))

    mi = mistralai.Mistral(api_key="mi-canary", server_url=vendors.url("mistral"))
    mi.chat.complete(model="mistral-large-latest", messages=messages)
    for _ in mi.chat.stream(model="mistral-large-latest", messages=messages):
        pass
    raised.append(_refused(lambda: mi.chat.complete(model="mistral-large-latest", messages=messages)))

    br = boto3.client("bedrock-runtime", region_name="eu-central-1", endpoint_url=vendors.url("bedrock"), **AWS)
    converse: Any = [{"role": "user", "content": [{"text": f"Summarise the contract {PROMPT}"}]}]
    model = "eu.anthropic.claude-3-haiku-20240307-v1:0"
    br.converse(modelId=model, messages=converse)
    for _ in br.converse_stream(modelId=model, messages=converse)["stream"]:
        pass
    raised.append(_refused(lambda: br.converse(modelId=model, messages=converse)))

    ge = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=vendors.url("gemini")))
    ge.models.generate_content(model="gemini-2.5-flash", contents=f"Summarise the contract {PROMPT}")
    for _ in ge.models.generate_content_stream(model="gemini-2.5-flash", contents=f"Summarise {PROMPT}"):
        pass
    raised.append(_refused(lambda: ge.models.generate_content(model="gemini-2.5-flash", contents=PROMPT)))
    return raised


def _check(vendors: Vendors, raised: list[str]) -> None:
    assert PROMPT.encode() in vendors.sent()  # the canaries really went out: finding none below means something
    assert len(raised) == 6
    for text in raised:
        assert_clean(text, "a refusal")


@pytest.mark.usefixtures("logs")  # every log record of the test, searched when it ends
def test_jsonl_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "usage.jsonl"
    with Vendors(tmp_path, f"jsonl://{store}", monkeypatch) as vendors:
        raised = drive(vendors)
    _check(vendors, raised)
    lines = [json.loads(line) for line in store.read_text().splitlines()]
    outcomes = [(line["vendor"], line["outcome"]) for line in lines]
    # Each drop-in left records of its own, refusals included, with the tokens its vendor reported.
    for vendor in ("openai", "cohere", "mistral", "bedrock", "gemini"):
        assert (vendor, "ok") in outcomes, vendor
    assert sum(1 for line in lines if line["outcome"] == "refused") == 6
    assert any(line["input_tokens"] for line in lines if line["vendor"] == "bedrock")
    assert_clean(store.read_bytes(), "the JSONL store")


@pytest.mark.usefixtures("logs")
def test_sqlite_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "usage.sqlite3"
    with Vendors(tmp_path, f"sqlite://{store}", monkeypatch) as vendors:
        raised = drive(vendors)
    _check(vendors, raised)
    files = [p for p in tmp_path.iterdir() if p.name.startswith("usage.sqlite3")]
    assert files
    for path in files:
        assert_clean(path.read_bytes(), path.name)


def test_a_stream_event_the_cohere_sdk_logs_on_the_root_logger_is_withheld(tmp_path: Path) -> None:
    """cohere logs a stream event it cannot parse, its text included, through ``logging.warning`` on the root
    logger: with no logging configured, that is stderr. The guard's log filter withholds it there too."""
    import subprocess
    import sys
    import textwrap

    text = {"reasoning": ANSWER}
    app = textwrap.dedent(
        f"""
        import json, os, sys
        sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
        from tests.wire.server import LoopbackServer, Reply

        def ev(kind, delta):
            body = {{"type": kind, "index": 0, "delta": delta}}
            return f"event: {{kind}}\\ndata: {{json.dumps(body)}}\\n\\n".encode()

        events = [
            ev("content-delta", {{"message": {{"content": {{"text": "x"}}}}}}),
            ev("reasoning-delta", {{"message": {{"content": {text!r}}}}}),
            ev("message-end", {{"finish_reason": "COMPLETE"}}),
        ]
        stream = Reply(200, headers={{"Content-Type": "text/event-stream"}}, chunks=events)
        with LoopbackServer(lambda request: stream) as server:
            os.environ["PRIVSDK_ENDPOINTS"] = server.url + "=cohere.saas"
            from privsdk import cohere
            client = cohere.ClientV2(api_key="co-x", base_url=server.url)
            ask = [{{"role": "user", "content": "hi"}}]
            print([e.type for e in client.chat_stream(model="command-r-plus", messages=ask)])
        """
    )
    env = {"PATH": "/usr/bin:/bin", "PRIVSDK_USAGE": "none", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", app], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "content-delta" in done.stdout
    assert "withheld by privsdk" in done.stderr  # the SDK's warning happened, and says so without its text
    assert MARK not in done.stderr and MARK not in done.stdout


def test_the_logger_an_app_gives_mistralai_for_its_debug_output_holds_no_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """mistralai's debug switch is a logger of the app's own (``debug_logger=``), to which the SDK logs each request
    and answer whole, bodies included: a guarded client's is filtered as the SDK's own loggers are, and
    ``PRIVSDK_SDK_DEBUG_LOGS=1`` turns that off as for them."""
    import logging

    from privsdk import mistralai
    from privsdk.sdklogs import WithholdContent

    ask = [{"role": "user", "content": f"hi {PROMPT}"}]
    with LoopbackServer(MistralApp(f"Answer {ANSWER}")) as server:
        monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{server.url}=mistral.api")
        monkeypatch.setenv("PRIVSDK_USAGE", "none")
        from privsdk.outbound.judge import Guard

        Guard.reset_default()
        logger = logging.getLogger("app.mistral.debug")
        logger.setLevel(logging.DEBUG)
        caplog.set_level(logging.DEBUG)
        client = mistralai.Mistral(api_key="mk-canary", server_url=server.url, debug_logger=logger)
        answer = client.chat.complete(model="mistral-small-latest", messages=ask)
        assert ANSWER in answer.choices[0].message.content and len(server.requests) == 1
        assert any(isinstance(f, WithholdContent) for f in logger.filters)
        assert_clean(caplog.text.encode(), "log records")
        for f in list(logger.filters):
            logger.removeFilter(f)
        monkeypatch.setenv("PRIVSDK_SDK_DEBUG_LOGS", "1")  # the opt-out: the SDK logs as it always does
        opted = mistralai.Mistral(api_key="mk-canary", server_url=server.url, debug_logger=logger)
        opted.chat.complete(model="mistral-small-latest", messages=ask)
        assert PROMPT in caplog.text and logger.filters == []
    Guard.reset_default()
