"""privsdk.boto3 with privsdk's own guard, configured by the environment alone, against the loopback Bedrock.

The loopback server is declared as a ``bedrock.runtime`` endpoint
(``PRIVSDK_ENDPOINTS``); usage records go to a JSONL file. Requests that go
to the real AWS hosts are all refused here; a handler registered after the
guard stops any request that would be sent there, so no test can reach the
network even if the guard wrongly allowed one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import privsdk
import privsdk.boto3 as pboto3
from privsdk.errors import PolicyViolation
from privsdk.outbound.judge import Guard
from privsdk.types import TextDelta
from tests.wire.bedrock import BedrockWire
from tests.wire.server import LoopbackServer

CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
EU_CLAUDE = "eu.anthropic.claude-3-7-sonnet-20250219-v1:0"
GLOBAL_CLAUDE = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"
PROMPT = "my secret diagnosis is flu"
MESSAGES = [{"role": "user", "content": [{"text": PROMPT}]}]
KEYS = {"aws_access_key_id": "AKIDFAKE", "aws_secret_access_key": "fake-secret"}
JSON_TYPES = {"contentType": "application/json", "accept": "application/json"}
ONE_ATTEMPT = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)


class WouldSend(Exception):
    """Raised by a handler after the guard's: the guard allowed a request to a real AWS host."""


#: boto3 must see none of the machine's AWS configuration (tests.conftest.no_machine_aws).
pytestmark = pytest.mark.usefixtures("no_machine_aws")


@pytest.fixture(scope="module")
def _running() -> Iterator[LoopbackServer]:
    with LoopbackServer(BedrockWire()) as running:
        yield running


@pytest.fixture
def server(_running: LoopbackServer) -> Iterator[LoopbackServer]:
    _running.requests.clear()
    yield _running
    assert _running.errors == []


@pytest.fixture
def usage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LoopbackServer) -> Path:
    path = tmp_path / "usage.jsonl"
    monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{server.url}=bedrock.runtime")
    monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{path}")
    Guard.reset_default()
    return path


def policy(monkeypatch: pytest.MonkeyPatch, require: str, attest: str = "") -> None:
    monkeypatch.setenv("PRIVSDK_REQUIRE", require)
    if attest:
        monkeypatch.setenv("PRIVSDK_ATTEST", attest)
    Guard.reset_default()


def records(path: Path) -> list[dict[str, Any]]:
    Guard.default().flush(5)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def loopback(server: LoopbackServer, service: str = "bedrock-runtime") -> Any:
    return pboto3.client(service, region_name="eu-central-1", endpoint_url=server.url, config=ONE_ATTEMPT, **KEYS)


def aws(region: str) -> Any:
    """A drop-in client for the real Regional host, which can never send: a handler after the guard's stops it."""
    client = pboto3.client("bedrock-runtime", region_name=region, config=ONE_ATTEMPT, **KEYS)

    def stop(**kwargs: Any) -> None:
        raise WouldSend

    client.meta.events.register_last("before-send.bedrock-runtime", stop)
    return client


# -- refusal ------------------------------------------------------------------------------------------------------


def test_unmet_zdr_is_refused_before_a_byte_and_recorded(
    server: LoopbackServer, usage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy(monkeypatch, "zdr")
    with pytest.raises(ClientError) as caught:
        loopback(server).converse(modelId=CLAUDE, messages=MESSAGES)
    assert isinstance(caught.value, PolicyViolation) and isinstance(caught.value, pboto3.PolicyViolation)
    assert caught.value.response["Error"]["Code"] == "PolicyViolation"
    assert "zdr" in str(caught.value) and PROMPT not in str(caught.value)
    assert server.requests == []
    (record,) = records(usage)
    assert (record["outcome"], record["decision"], record["operation"], record["unmet"]) == (
        "refused",
        "refuse",
        "chat",
        ["zdr"],
    )
    assert PROMPT not in json.dumps(record)


def test_an_attested_zdr_account_is_allowed_and_every_operation_leaves_its_tokens(
    server: LoopbackServer, usage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy(monkeypatch, "zdr", "bedrock:data_retention_mode=none")
    client = loopback(server)
    answer = client.converse(modelId=EU_CLAUDE, messages=MESSAGES)
    stream = list(client.converse_stream(modelId=CLAUDE, messages=MESSAGES)["stream"])
    embed = json.loads(
        client.invoke_model(modelId=TITAN, body=json.dumps({"inputText": PROMPT}), **JSON_TYPES)["body"].read()
    )
    native = {"anthropic_version": "bedrock-2023-05-31", "messages": [{"role": "user", "content": PROMPT}]}
    chunks = [
        json.loads(e["chunk"]["bytes"])
        for e in client.invoke_model_with_response_stream(modelId=CLAUDE, body=json.dumps(native))["body"]
    ]
    assert len(server.requests) == 4
    got = [(r["outcome"], r["operation"], r["model"], r["input_tokens"], r["output_tokens"]) for r in records(usage)]
    stream_usage = next(e["metadata"]["usage"] for e in stream if "metadata" in e)
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert got == [
        ("ok", "chat", EU_CLAUDE, answer["usage"]["inputTokens"], answer["usage"]["outputTokens"]),
        ("ok", "stream", CLAUDE, stream_usage["inputTokens"], stream_usage["outputTokens"]),
        ("ok", "embed", TITAN, embed["inputTextTokenCount"], None),
        ("ok", "stream", CLAUDE, metrics["inputTokenCount"], metrics["outputTokenCount"]),
    ]


def test_a_feature_that_keeps_content_is_refused_under_zdr(
    server: LoopbackServer, usage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RetrieveAndGenerate keeps the conversation in a Bedrock session and searches a knowledge base: the catalogue
    has no facts on knowledge-base search, so it is refused before zero retention is even weighed."""
    policy(monkeypatch, "zdr", "bedrock:data_retention_mode=none")
    arn = "arn:aws:bedrock:eu-central-1::foundation-model/" + CLAUDE
    config = {"type": "KNOWLEDGE_BASE", "knowledgeBaseConfiguration": {"knowledgeBaseId": "KB1", "modelArn": arn}}
    with pytest.raises(PolicyViolation) as caught:
        loopback(server, "bedrock-agent-runtime").retrieve_and_generate(
            input={"text": PROMPT}, retrieveAndGenerateConfiguration=config
        )
    assert server.requests == []
    assert "no facts on file_search" in str(caught.value)
    (record,) = records(usage)
    assert (record["outcome"], record["operation"], record["model"]) == ("refused", "chat", CLAUDE)


def test_a_us_region_is_refused_under_region_eu_whatever_is_attested(
    usage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9: a region=eu attestation with the client signing for us-east-1 (argument or AWS_DEFAULT_REGION)."""
    policy(monkeypatch, "region=eu", "bedrock:region=eu")
    with pytest.raises(PolicyViolation) as caught:
        aws("us-east-1").converse(modelId=CLAUDE, messages=MESSAGES)
    assert "region=eu" in str(caught.value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with pytest.raises(PolicyViolation):
        pboto3.client("bedrock-runtime", config=ONE_ATTEMPT, **KEYS).converse(modelId=CLAUDE, messages=MESSAGES)
    assert [r["outcome"] for r in records(usage)] == ["refused", "refused"]


def test_a_global_profile_on_an_eu_host_is_refused_under_region_eu(monkeypatch: pytest.MonkeyPatch) -> None:
    policy(monkeypatch, "region=eu", "bedrock:region=eu")
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    Guard.reset_default()
    client = aws("eu-central-1")
    with pytest.raises(PolicyViolation):
        client.converse(modelId=GLOBAL_CLAUDE, messages=MESSAGES)
    with pytest.raises(WouldSend):  # the same host with an eu.* profile is allowed: it would be sent
        client.converse(modelId=EU_CLAUDE, messages=MESSAGES)


def test_an_undeclared_endpoint_is_refused(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    Guard.reset_default()
    with pytest.raises(PolicyViolation) as caught:
        loopback(server).converse(modelId=CLAUDE, messages=MESSAGES)
    assert "PRIVSDK_ENDPOINTS" in str(caught.value)
    assert server.requests == []


def test_model_listing_is_allowed_and_a_batch_job_refused(
    server: LoopbackServer, usage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy(monkeypatch, "zdr", "bedrock:data_retention_mode=none")
    control = loopback(server, "bedrock")
    assert control.list_foundation_models()["modelSummaries"] == []
    with pytest.raises(PolicyViolation):
        control.create_model_invocation_job(
            jobName="j", roleArn="arn:aws:iam::123456789012:role/r", modelId=EU_CLAUDE,
            inputDataConfig={"s3InputDataConfig": {"s3Uri": "s3://in/"}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": "s3://out/"}},
        )  # fmt: skip
    assert [r.path for r in server.requests] == ["/foundation-models"]
    assert [(r["outcome"], r["operation"]) for r in records(usage)] == [("ok", "models"), ("refused", "batch")]


def test_privsdk_guard_and_instrument_reach_boto3_clients(
    server: LoopbackServer, usage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy(monkeypatch, "zdr")
    kwargs = {"region_name": "eu-central-1", "endpoint_url": server.url, "config": ONE_ATTEMPT, **KEYS}
    built = privsdk.guard(boto3.client("bedrock-runtime", **kwargs))
    with pytest.raises(PolicyViolation):
        built.converse(modelId=CLAUDE, messages=MESSAGES)
    privsdk.instrument()
    try:
        inside = boto3.session.Session().client("bedrock-runtime", **kwargs)
    finally:
        privsdk.uninstrument()
    with pytest.raises(ClientError, match="PolicyViolation"):
        inside.converse_stream(modelId=CLAUDE, messages=MESSAGES)
    assert server.requests == []
    assert [r["operation"] for r in records(usage)] == ["chat", "stream"]


# -- privsdk.Client: its Bedrock adapter sends through the same guard ---------------------------------------------


def _client(server: LoopbackServer, tmp_path: Path) -> privsdk.Client:
    config = tmp_path / "privsdk.toml"
    config.write_text(
        f"""
[targets.eu-claude]
offering = "bedrock.runtime"
model = "{EU_CLAUDE}"
region = "eu-central-1"
endpoint = "{server.url}"
attest = ["data_retention_mode=none"]

[tenants.strict]
classes.default = ["zdr"]
""",
        encoding="utf-8",
    )
    return privsdk.Client(
        policy=privsdk.load_policy({"PRIVSDK_CONFIG": str(config)}),
        usage="none",
        credentials={"bedrock": {"aws_access_key_id": "AKIDFAKE", "aws_secret_access_key": "x"}},
        timeout=5.0,
    )


def test_the_client_sends_its_bedrock_requests_through_the_guard(server: LoopbackServer, tmp_path: Path) -> None:
    client = _client(server, tmp_path)
    assert client.chat("eu-claude", PROMPT, tenant="strict").text == "You said: " + PROMPT
    stream = client.chat("eu-claude", PROMPT, tenant="strict", stream=True)
    assert "".join(e.text for e in stream if isinstance(e, TextDelta)) == "You said: " + PROMPT
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    "extra",
    [
        {"modelId": GLOBAL_CLAUDE},  # issue 9: extra replaced the decided model, and its geography
        {"modelId": "eu.amazon.nova-pro-v1:0"},  # another model in the same geography is another target
    ],
)
def test_extra_cannot_change_the_model_unseen(server: LoopbackServer, tmp_path: Path, extra: dict[str, Any]) -> None:
    client = _client(server, tmp_path)
    with pytest.raises(PolicyViolation) as caught:
        client.chat("eu-claude", PROMPT, tenant="strict", extra=extra)
    assert not isinstance(caught.value, privsdk.errors.VendorError)
    assert server.requests == []


def test_the_async_client_stream_is_judged_for_its_target(server: LoopbackServer, tmp_path: Path) -> None:
    """The async stream reads boto3 on a thread of its own: the guard still sees the Client attempt's target."""
    config = tmp_path / "privsdk.toml"
    _client(server, tmp_path)  # writes the policy file

    async def run() -> str:
        async with privsdk.AsyncClient(
            policy=privsdk.load_policy({"PRIVSDK_CONFIG": str(config)}),
            usage="none",
            credentials={"bedrock": {"aws_access_key_id": "AKIDFAKE", "aws_secret_access_key": "x"}},
            timeout=5.0,
        ) as client:
            stream = await client.chat("eu-claude", PROMPT, tenant="strict", stream=True)
            text = "".join([e.text async for e in stream if isinstance(e, TextDelta)])
            with pytest.raises(PolicyViolation):
                await client.chat("eu-claude", PROMPT, tenant="strict", stream=True, extra={"modelId": GLOBAL_CLAUDE})
            return text

    assert asyncio.run(run()) == "You said: " + PROMPT
    assert len(server.requests) == 1


# -- property: what the guard refuses never reaches the server ----------------------------------------------------

MODELS = [
    CLAUDE, EU_CLAUDE, GLOBAL_CLAUDE, "us.amazon.nova-premier-v1:0", "apac.amazon.nova-pro-v1:0",
    "arn:aws:bedrock:eu-central-1:123456789012:application-inference-profile/abc123",
    "arn:aws:bedrock:eu-central-1::foundation-model/" + CLAUDE, "unknown.model-v1",
]  # fmt: skip
REQUIREMENTS = ["zdr", "no_training", "region=eu", "no_human_review", "hipaa_baa", "no_provider_sharing"]
ATTESTATIONS = [
    "bedrock:data_retention_mode=none", "bedrock:data_retention_mode=default", "bedrock:region=eu", "bedrock:baa",
]  # fmt: skip
BLOCKS: dict[str, dict[str, Any]] = {
    "cache": {"cachePoint": {"type": "default"}},
    "image": {"image": {"format": "png", "source": {"bytes": b"\x89PNG"}}},
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    model=st.sampled_from(MODELS),
    require=st.lists(st.sampled_from(REQUIREMENTS), unique=True, max_size=3),
    attest=st.lists(st.sampled_from(ATTESTATIONS), unique=True, max_size=3),
    blocks=st.lists(st.sampled_from(sorted(BLOCKS)), unique=True),
    stream=st.booleans(),
)
def test_a_refused_request_never_reaches_the_server(
    _running: LoopbackServer, model: str, require: list[str], attest: list[str], blocks: list[str], stream: bool
) -> None:
    env = {"PRIVSDK_ENDPOINTS": f"{_running.url}=bedrock.runtime", "PRIVSDK_USAGE": "none"}
    env["PRIVSDK_REQUIRE"] = ",".join(require)
    env["PRIVSDK_ATTEST"] = ",".join(attest)
    try:
        guard = Guard(environ=env)
    except privsdk.errors.ConfigError:
        return  # attestations that contradict each other: refused at start-up, nothing to send
    client = boto3.client(
        "bedrock-runtime", region_name="eu-central-1", endpoint_url=_running.url, config=ONE_ATTEMPT, **KEYS
    )
    pboto3.guard_client(client, guard=guard)
    content = [{"text": PROMPT}, *(BLOCKS[b] for b in blocks)]
    before = len(_running.requests)
    call = client.converse_stream if stream else client.converse
    try:
        answer = call(modelId=model, messages=[{"role": "user", "content": content}])
    except PolicyViolation as refused:
        assert len(_running.requests) == before
        assert PROMPT not in str(refused)
        event("refused")
        return
    event("sent")
    assert len(_running.requests) == before + 1
    if stream:
        list(answer["stream"])
    assert _running.errors == []
