"""privsdk.boto3 with privsdk's own guard, configured by the environment alone, against the loopback Bedrock.

The loopback server is declared as a ``bedrock.runtime`` endpoint
(``PRIVSDK_ENDPOINTS``); usage records go to a JSONL file. Requests that go
to the real AWS hosts are all refused here; a handler registered after the
guard stops any request that would be sent there, so no test can reach the
network even if the guard wrongly allowed one.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import privsdk
import privsdk.boto3 as pboto3
from privsdk.errors import PolicyViolation
from privsdk.outbound.botocore_seam import is_guarded
from privsdk.outbound.judge import Guard
from privsdk.types import TextDelta
from tests.guard_support import records
from tests.wire.bedrock import BedrockWire, sigv4
from tests.wire.server import LoopbackServer, Status, tls_context

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


def test_a_stream_the_app_closes_early_is_recorded_cancelled(
    server: LoopbackServer, usage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As privsdk.Client records it; a stream read to its end is ``ok`` with its tokens."""
    policy(monkeypatch, "zdr", "bedrock:data_retention_mode=none")
    client = loopback(server)
    stream = client.converse_stream(modelId=CLAUDE, messages=MESSAGES)["stream"]
    next(iter(stream))
    stream.close()
    whole = list(client.converse_stream(modelId=CLAUDE, messages=MESSAGES)["stream"])
    tokens = next(e["metadata"]["usage"] for e in whole if "metadata" in e)
    got = [(r["outcome"], r["http_status"], r["input_tokens"], r["output_tokens"]) for r in records(usage)]
    assert got == [("cancelled", 200, None, None), ("ok", 200, tokens["inputTokens"], tokens["outputTokens"])]


def test_the_attempts_of_one_retried_call_are_recorded_as_one_call(
    server: LoopbackServer, usage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore says which attempt a request is (amz-sdk-request): a call retried to success is one request id
    with attempts 1, 2, 3, and the next call is another, as privsdk usage counts calls and retries."""
    policy(monkeypatch, "zdr", "bedrock:data_retention_mode=none")
    retrying = Config(retries={"total_max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=5)
    client = pboto3.client(
        "bedrock-runtime", region_name="eu-central-1", endpoint_url=server.url, config=retrying, **KEYS
    )
    throttled = Status(429, {"x-amzn-ErrorType": "ThrottlingException"}, b'{"message": "slow down"}')
    server.fail(throttled, Status(503, {"x-amzn-ErrorType": "ServiceUnavailableException"}, b"{}"))
    client.converse(modelId=CLAUDE, messages=MESSAGES)
    client.converse(modelId=CLAUDE, messages=MESSAGES)
    got = [(r["attempt"], r["outcome"], r["http_status"]) for r in records(usage)]
    assert got == [(1, "error", 429), (2, "error", 503), (3, "ok", 200), (1, "ok", 200)]
    ids = [r["request_id"] for r in records(usage)]
    assert ids[0] == ids[1] == ids[2] != ids[3]


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


@pytest.mark.parametrize(
    ("model", "body", "operation"),
    [
        ("amazon.nova-canvas-v1:0", {"taskType": "TEXT_IMAGE", "textToImageParams": {"text": PROMPT}}, "images"),
        ("amazon.titan-image-generator-v2:0", {"taskType": "IMAGE_VARIATION"}, "images"),
        ("amazon.nova-reel-v1:0", {"taskType": "TEXT_VIDEO", "textToVideoParams": {"text": PROMPT}}, "other"),
    ],
)
def test_an_image_or_video_model_is_not_judged_as_a_chat(
    server: LoopbackServer, usage: Path, monkeypatch: pytest.MonkeyPatch, model: str, body: Any, operation: str
) -> None:
    """InvokeModel on an image or video family makes no chat, and the catalogue has no facts on what Bedrock keeps of
    it: refused before a byte, as its own operation. It was judged as a chat, which amazon.* allowed."""
    policy(monkeypatch, "no_training")
    with pytest.raises(PolicyViolation, match=f"'{operation}'|{operation}"):
        loopback(server).invoke_model(modelId=model, body=json.dumps(body), **JSON_TYPES)
    assert server.requests == []
    (record,) = records(usage)
    assert (record["outcome"], record["operation"], record["model"]) == ("refused", operation, model)


def test_a_converse_member_privsdk_refuses_sends_nothing(
    server: LoopbackServer, usage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore cannot send a member its API model lacks: it refuses one before any handler runs (with its
    validation off, its serializer fails on it). Of the members it has, ``guardrailConfig`` is refused by design
    (a guardrail configured out of the request's sight, which may move content to other Regions)."""
    canary = "canary-value-7f3e"
    unchecked = ONE_ATTEMPT.merge(Config(parameter_validation=False))
    for config, error in ((ONE_ATTEMPT, ParamValidationError), (unchecked, KeyError)):
        client = pboto3.client(
            "bedrock-runtime", region_name="eu-central-1", endpoint_url=server.url, config=config, **KEYS
        )
        with pytest.raises(error):
            client.converse(modelId=CLAUDE, messages=MESSAGES, zzNewField=canary)
    guardrail = {"guardrailIdentifier": canary, "guardrailVersion": "1"}
    with pytest.raises(ClientError) as caught:
        loopback(server).converse(modelId=CLAUDE, messages=MESSAGES, guardrailConfig=guardrail)
    assert isinstance(caught.value, PolicyViolation) and isinstance(caught.value, pboto3.PolicyViolation)
    assert ": guardrailConfig (" in str(caught.value) and canary not in str(caught.value)
    assert server.requests == []
    loopback(server).converse(modelId=CLAUDE, messages=MESSAGES)  # without it, allowed
    assert len(server.requests) == 1
    assert [r["outcome"] for r in records(usage)] == ["refused", "ok"]


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
    with pytest.raises(PolicyViolation):  # so is an eu.* profile: AWS's EU geography may route to London or Zurich
        client.converse(modelId=EU_CLAUDE, messages=MESSAGES)
    with pytest.raises(WouldSend):  # the same host with an in-Region model id is allowed: it would be sent
        client.converse(modelId=CLAUDE, messages=MESSAGES)


def test_an_eu_profile_is_refused_under_region_eu_and_sent_under_the_eu_geography_of_aws(
    server: LoopbackServer, usage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS's EU geography may route an eu.* profile to London (uk) or Zurich (ch), the stricter reading of sources
    that disagree. A client in an EU Region with bedrock:region=eu attested once met region=eu with an eu.* model
    and sent it; now the request is refused before a byte, citing the source, and is sent only for a tenant that
    requires region=eu|uk|ch."""
    policy(monkeypatch, "region=eu", "bedrock:region=eu")
    with pytest.raises(ClientError) as caught:
        loopback(server).converse(modelId=EU_CLAUDE, messages=MESSAGES)
    refusal = caught.value
    assert refusal.response["Error"]["Code"] == "PolicyViolation" and PROMPT not in str(refusal)
    assert isinstance(refusal, PolicyViolation)
    (unmet,) = refusal.decision.unmet
    assert (unmet.requirement, unmet.offered) == ("region=eu", "within ch|eu|uk")
    assert "CrossRegionInferenceProfileRegion" in unmet.source and "London" in unmet.note
    assert server.requests == []

    policy(monkeypatch, "region=eu|uk|ch", "bedrock:region=eu")
    answer = loopback(server).converse(modelId=EU_CLAUDE, messages=MESSAGES)
    assert answer["output"]["message"]["content"]
    (sent,) = server.requests
    assert sent.path == "/model/eu.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse"
    assert [(r["outcome"], r["unmet"]) for r in records(usage)] == [("refused", ["region=eu"]), ("ok", [])]


def test_a_declared_endpoints_target_covers_only_requests_signed_for_its_region(
    server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A private endpoint's host shows no Region: the one the request is signed for (and AWS serves it in) does."""
    config = tmp_path / "privsdk.toml"
    config.write_text(
        f"""
[targets.eu-endpoint]
offering = "bedrock.runtime"
model = "{CLAUDE}"
endpoint = "{server.url}"
region = "eu-central-1"
attest = ["region=eu"]

[tenants.acme]
classes.default = ["region=eu"]
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("PRIVSDK_CONFIG", str(config))
    monkeypatch.setenv("PRIVSDK_TENANT", "acme")
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    Guard.reset_default()
    for region in ("us-east-1", "ap-northeast-1"):
        client = pboto3.client(
            "bedrock-runtime", region_name=region, endpoint_url=server.url, config=ONE_ATTEMPT, **KEYS
        )
        with pytest.raises(PolicyViolation, match="region=eu"):
            client.converse(modelId=CLAUDE, messages=MESSAGES)
    assert server.requests == []
    eu = pboto3.client(
        "bedrock-runtime", region_name="eu-central-1", endpoint_url=server.url, config=ONE_ATTEMPT, **KEYS
    )
    eu.converse(modelId=CLAUDE, messages=MESSAGES)
    (sent,) = server.requests
    assert sigv4(sent.headers)["region"] == "eu-central-1"


def test_an_undeclared_endpoint_is_refused(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    Guard.reset_default()
    with pytest.raises(PolicyViolation) as caught:
        loopback(server).converse(modelId=CLAUDE, messages=MESSAGES)
    assert "PRIVSDK_ENDPOINTS" in str(caught.value)
    assert server.requests == []


def test_a_handler_after_the_guard_cannot_change_what_is_sent_unjudged(
    server: LoopbackServer, usage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An app's before-send handler runs after the guard's and changed the request it had judged: moved to an
    undeclared host, it was sent there. The request is judged again as it is sent."""
    with LoopbackServer(BedrockWire()) as elsewhere:
        client = loopback(server)

        def move(request: Any, **kwargs: Any) -> None:
            request.url = request.url.replace(server.url, elsewhere.url)

        client.meta.events.register("before-send.bedrock-runtime", move)
        with pytest.raises(PolicyViolation, match="not an endpoint privsdk knows") as caught:
            client.converse(modelId=CLAUDE, messages=MESSAGES)
        assert isinstance(caught.value, ClientError) and caught.value.operation_name == "Converse"
        assert elsewhere.requests == [] and server.requests == []
    # A handler that swaps the model for another: judged on the model sent.
    client = loopback(server)

    def swap(request: Any, **kwargs: Any) -> None:
        request.url = request.url.replace(CLAUDE.replace(":", "%3A"), "acme.unknown-model-v1%3A0")

    client.meta.events.register("before-send", swap)
    with pytest.raises(PolicyViolation, match=r"unknown model family 'acme\.unknown-model-v1:0'"):
        client.converse(modelId=CLAUDE, messages=MESSAGES)
    assert server.requests == []
    # A handler that only adds a header: judged again as sent, allowed, one record of the attempt sent.
    client = loopback(server)

    def trace(request: Any, **kwargs: Any) -> None:
        request.headers["X-Amzn-Trace-Id"] = "Root=1-5759e988-bd862e3fe1be46a994272793"

    client.meta.events.register("before-send.bedrock-runtime", trace)
    client.converse(modelId=CLAUDE, messages=MESSAGES)
    assert [r.headers.get("x-amzn-trace-id") for r in server.requests] == ["Root=1-5759e988-bd862e3fe1be46a994272793"]
    assert [(r["outcome"], r["input_tokens"] is not None) for r in records(usage)] == [
        ("refused", False),
        ("refused", False),
        ("ok", True),
    ]
    assert type(client._endpoint.http_session).__name__ == "URLLib3Session"


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


# -- every way the drop-in makes a client ------------------------------------------------------------------------


def _from_the_default_session(**kwargs: Any) -> Any:
    pboto3.setup_default_session()
    return pboto3.DEFAULT_SESSION.client("bedrock-runtime", **kwargs)


def _from_the_session_module(**kwargs: Any) -> Any:
    # A module the face registers when imported, as boto3.session is a submodule: no file for mypy to find.
    from privsdk.boto3.session import Session  # type: ignore[import-not-found]

    return Session().client("bedrock-runtime", **kwargs)


MAKERS: dict[str, Any] = {
    "client": lambda **kw: pboto3.client("bedrock-runtime", **kw),
    "Session": lambda **kw: pboto3.Session().client("bedrock-runtime", **kw),
    "session.Session": lambda **kw: pboto3.session.Session().client("bedrock-runtime", **kw),
    "from privsdk.boto3.session import Session": _from_the_session_module,
    "DEFAULT_SESSION": _from_the_default_session,
    "_get_default_session": lambda **kw: pboto3._get_default_session().client("bedrock-runtime", **kw),
}


@pytest.mark.parametrize("make", list(MAKERS.values()), ids=list(MAKERS))
def test_every_client_the_drop_in_makes_is_guarded(
    server: LoopbackServer, usage: Path, monkeypatch: pytest.MonkeyPatch, make: Any
) -> None:
    """``boto3.session.Session`` and boto3's default session, reached from the drop-in, made unguarded clients."""
    monkeypatch.setattr(pboto3, "DEFAULT_SESSION", None)  # the drop-in's default session: a fresh one per test
    policy(monkeypatch, "zdr")
    client = make(region_name="eu-central-1", endpoint_url=server.url, config=ONE_ATTEMPT, **KEYS)
    with pytest.raises(PolicyViolation):
        client.converse(modelId=CLAUDE, messages=MESSAGES)
    assert server.requests == []
    assert [r["outcome"] for r in records(usage)] == ["refused"]


BODY = json.dumps({"message": PROMPT}).encode()
ARN = "arn:aws:bedrock-agentcore:eu-central-1:123456789012:runtime/x"
PROMPT_VARIANT = {"name": "v", "templateType": "TEXT", "templateConfiguration": {"text": {"text": PROMPT}}}


@pytest.mark.parametrize(
    ("service", "call"),
    [
        ("bedrock-agent", lambda c: c.create_prompt(name="p", variants=[PROMPT_VARIANT])),
        ("bedrock-agentcore", lambda c: c.invoke_agent_runtime(agentRuntimeArn=ARN, payload=BODY)),
        ("sagemaker-runtime", lambda c: c.invoke_endpoint(EndpointName="e", Body=BODY, ContentType="text/plain")),
    ],
)
def test_the_other_services_that_carry_prompts_to_models_are_guarded_too(
    server: LoopbackServer, usage: Path, monkeypatch: pytest.MonkeyPatch, service: str, call: Any
) -> None:
    """Only bedrock-runtime, bedrock-agent-runtime and bedrock were guarded: under ``privsdk run`` an app's prompts
    went to SageMaker endpoints, AgentCore agents and Bedrock's prompt management unjudged. Every Bedrock service
    and SageMaker's runtime are guarded now; a request privsdk cannot read (no catalogued guarantees) is refused."""
    policy(monkeypatch, "zdr")
    clients = [pboto3.client(service, region_name="eu-central-1", endpoint_url=server.url, config=ONE_ATTEMPT, **KEYS)]
    privsdk.instrument()
    try:
        clients.append(
            boto3.client(service, region_name="eu-central-1", endpoint_url=server.url, config=ONE_ATTEMPT, **KEYS)
        )
    finally:
        privsdk.uninstrument()
    for client in clients:
        with pytest.raises(PolicyViolation):
            call(client)
    assert server.requests == []
    assert [r["outcome"] for r in records(usage)] == ["refused", "refused"]
    assert not is_guarded(pboto3.client("s3", region_name="eu-central-1", **KEYS))  # no prompts: left alone


def test_a_sagemaker_endpoint_is_judged_through_the_target_that_names_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """SageMaker's runtime host is the catalogue's cohere.sagemaker offering: an endpoint invocation is read as
    Cohere's (``/endpoints/{name}/invocations``), judged and sent when a target names the endpoint. One no target
    names is refused unsent: it runs whatever its owner deployed, and another maker's chat body reads as Cohere's."""
    from tests.wire.cohere import CohereApp

    with LoopbackServer(CohereApp()) as cohere_server:
        config = tmp_path / "privsdk.toml"
        config.write_text(
            f"""
[endpoints]
"{cohere_server.url}" = "cohere.sagemaker"

[targets.command-endpoint]
offering = "cohere.sagemaker"
model = "command-a"
deployment = "e"

[tenants.acme]
classes.default = ["no_training"]
""",
            encoding="utf-8",
        )
        monkeypatch.setenv("PRIVSDK_CONFIG", str(config))
        monkeypatch.setenv("PRIVSDK_TENANT", "acme")
        monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{tmp_path / 'usage.jsonl'}")
        Guard.reset_default()
        client = pboto3.client(
            "sagemaker-runtime", region_name="eu-central-1", endpoint_url=cohere_server.url, config=ONE_ATTEMPT, **KEYS
        )
        body = json.dumps({"messages": [{"role": "user", "content": PROMPT}]}).encode()
        with pytest.raises(PolicyViolation, match="name it in a target: deployment = 'llama-3-1-70b'"):
            client.invoke_endpoint(EndpointName="llama-3-1-70b", Body=body, ContentType="application/json")
        assert cohere_server.requests == []
        answer = json.loads(
            client.invoke_endpoint(EndpointName="e", Body=body, ContentType="application/json")["Body"].read()
        )
        assert answer["message"]["content"][0]["text"] == CohereApp().text
        assert [r.path for r in cohere_server.requests] == ["/endpoints/e/invocations"]
        # What serves a request on the endpoint, picked by the request, may be another model than the target's.
        choosers = {
            "InferenceComponentName": "x-amzn-sagemaker-inference-component",
            "TargetModel": "x-amzn-sagemaker-target-model",
            "TargetContainerHostname": "x-amzn-sagemaker-target-container-hostname",
            "TargetVariant": "x-amzn-sagemaker-target-variant",
        }
        for parameter, header in choosers.items():
            with pytest.raises(PolicyViolation, match=f"request's {header} header picks what serves it"):
                client.invoke_endpoint(
                    EndpointName="e", Body=body, ContentType="application/json", **{parameter: "llama-3-70b"}
                )
        assert len(cohere_server.requests) == 1
        assert cohere_server.errors == []
    got = [(r["operation"], r["decision"], r["chosen_target"]) for r in records(tmp_path / "usage.jsonl")]
    assert got == [("chat", "refuse", None), ("chat", "allow", "command-endpoint")] + [("other", "refuse", None)] * 4


def test_the_drop_in_default_session_is_its_own_and_boto3_is_left_as_it_is(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pboto3, "DEFAULT_SESSION", None)
    boto3_default = boto3.DEFAULT_SESSION
    pboto3.setup_default_session(region_name="eu-west-3", **KEYS)
    assert isinstance(pboto3.DEFAULT_SESSION, pboto3.Session) and boto3.DEFAULT_SESSION is boto3_default
    client = pboto3.client("bedrock-runtime")  # the region comes from the drop-in's default session, as in boto3
    assert client.meta.region_name == "eu-west-3" and is_guarded(client)
    s3 = pboto3.resource("s3").meta.client  # a resource's client is made by the same guarded session
    assert s3.meta.region_name == "eu-west-3" and not is_guarded(s3)
    assert boto3.session.Session is not pboto3.Session and boto3.DEFAULT_SESSION is boto3_default
    plain = boto3.client("bedrock-runtime", region_name="eu-central-1", **KEYS)
    assert not is_guarded(plain) and not is_guarded(boto3.session.Session().client("bedrock", region_name="eu-west-1"))


# -- bodies the guard cannot read ---------------------------------------------------------------------------------

NATIVE = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 50,
    "messages": [{"role": "user", "content": PROMPT}],
}
WEB_SEARCH = {**NATIVE, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}


class ReadOnce:
    """A body the app streams from elsewhere (a socket, a decompressor): ``read`` only, and only once."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, size: int = -1) -> bytes:
        data, self._data = self._data, b""
        return data


@pytest.fixture(scope="module")
def _tls_running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LoopbackServer, Path]]:
    context, ca_file = tls_context(tmp_path_factory.mktemp("tls"))
    with LoopbackServer(BedrockWire(), tls=context) as running:
        yield running, ca_file


@pytest.fixture
def api_key(
    _tls_running: tuple[LoopbackServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, LoopbackServer, Path]]:
    """(client, server, usage): a drop-in client sending with a Bedrock API key, which botocore sends over https
    only, to the declared TLS loopback. Only a request without SigV4 can carry a stream botocore cannot rewind:
    SigV4 hashes the body first."""
    server, ca_file = _tls_running
    server.requests.clear()
    path = tmp_path / "usage.jsonl"
    monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{server.url}=bedrock.runtime")
    monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{path}")
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key-1")
    policy(monkeypatch, "no_training")
    client = pboto3.client(
        "bedrock-runtime", region_name="eu-central-1", endpoint_url=server.url, verify=str(ca_file), config=ONE_ATTEMPT
    )
    yield client, server, path
    assert server.errors == []


def test_a_guardrail_is_refused_whichever_call_names_it(
    server: LoopbackServer, usage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """InvokeModel names a guardrail in headers, Converse in its body: the same guardrail, refused both ways."""
    policy(monkeypatch, "region=eu", "bedrock:region=eu")
    client = loopback(server)
    body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10, "messages": MESSAGES})
    with pytest.raises(PolicyViolation, match="GuardrailIdentifier"):
        client.invoke_model(modelId=CLAUDE, body=body, guardrailIdentifier="gr-1", guardrailVersion="1")
    with pytest.raises(PolicyViolation, match="guardrailConfig"):
        client.converse(modelId=CLAUDE, messages=MESSAGES, guardrailConfig={"guardrailIdentifier": "gr-1"})
    assert server.requests == []
    assert [r["outcome"] for r in records(usage)] == ["refused", "refused"]
    client.invoke_model(modelId=CLAUDE, body=body, **JSON_TYPES)  # an in-Region model id: it stays in the EU
    assert len(server.requests) == 1


@pytest.mark.parametrize("how", ["endpoint_url", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"])
def test_a_backslash_in_the_endpoint_cannot_show_the_guard_an_aws_host_and_send_elsewhere(
    _tls_running: tuple[LoopbackServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """urllib3, which botocore sends with, ends the authority at a backslash; urlsplit reads on to the last "@".
    The guard judged the AWS host after it and allowed a request that went to the loopback before it."""
    server, ca_file = _tls_running
    server.requests.clear()
    monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{tmp_path / 'usage.jsonl'}")
    policy(monkeypatch, "region=eu", "bedrock:region=eu")
    url = f"{server.url}\\@bedrock-runtime.eu-central-1.amazonaws.com"
    where: dict[str, Any] = {"endpoint_url": url} if how == "endpoint_url" else {}
    if how != "endpoint_url":
        monkeypatch.setenv(how, url)
    client = pboto3.client(
        "bedrock-runtime", region_name="eu-central-1", verify=str(ca_file), config=ONE_ATTEMPT, **where, **KEYS
    )
    with pytest.raises(PolicyViolation) as caught:
        client.converse(modelId=CLAUDE, messages=MESSAGES)
    assert f"{server.url} is not an endpoint privsdk knows" in str(caught.value)
    assert server.requests == []
    (record,) = records(tmp_path / "usage.jsonl")
    assert (record["decision"], record["outcome"]) == ("refuse", "refused")


class Unseekable(io.RawIOBase):
    """An io stream that cannot seek (its ``tell`` and ``seek`` raise), as a socket's or a decompressor's."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._data.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@pytest.mark.parametrize("stream", [ReadOnce, Unseekable])
@pytest.mark.parametrize("operation", ["invoke_model", "invoke_model_with_response_stream"])
def test_a_body_the_guard_cannot_read_is_refused_before_a_byte(
    api_key: tuple[Any, LoopbackServer, Path], stream: Any, operation: str
) -> None:
    """Such a body was judged as empty and sent whole: a vendor-run tool in it went unseen."""
    client, server, usage = api_key
    with pytest.raises(PolicyViolation) as caught:
        getattr(client, operation)(modelId=CLAUDE, body=stream(json.dumps(WEB_SEARCH).encode()), **JSON_TYPES)
    assert server.requests == []
    assert "pass the body as bytes" in str(caught.value) and PROMPT not in str(caught.value)
    (record,) = records(usage)
    assert (record["outcome"], record["decision"]) == ("refused", "refuse")


@pytest.mark.parametrize("wrap", [bytes, io.BytesIO], ids=["bytes", "BytesIO"])
def test_a_body_in_bytes_or_a_seekable_file_is_judged_on_what_it_holds(
    api_key: tuple[Any, LoopbackServer, Path], wrap: Any
) -> None:
    client, server, usage = api_key
    with pytest.raises(PolicyViolation, match="web_search"):
        client.invoke_model(modelId=CLAUDE, body=wrap(json.dumps(WEB_SEARCH).encode()), **JSON_TYPES)
    assert server.requests == []
    answer = client.invoke_model(modelId=CLAUDE, body=wrap(json.dumps(NATIVE).encode()), **JSON_TYPES)
    assert json.loads(answer["body"].read())["content"][0]["text"] == "You said: " + PROMPT
    (sent,) = server.requests
    assert sent.headers["authorization"] == "Bearer bedrock-api-key-1" and json.loads(sent.body) == NATIVE
    assert [r["outcome"] for r in records(usage)] == ["refused", "ok"]


@pytest.mark.parametrize(
    "body",
    [
        # Read by its last value (Python's json) as no tools; a server that keeps the first runs web search.
        json.dumps(WEB_SEARCH)[:-1] + ', "tools": []}',
        json.dumps(NATIVE)[:-1] + ', "messages": [{"role": "user", "content": "hi"}]}',
        json.dumps(NATIVE).replace('"content": ', '"content": "hi", "content": '),
    ],
    ids=["top-level", "same value kind", "nested"],
)
def test_a_body_that_names_a_field_twice_is_refused_and_sends_nothing(
    api_key: tuple[Any, LoopbackServer, Path], body: str
) -> None:
    """InvokeModel sends the app's bytes as they are: which of two values the vendor acts on is not privsdk's to
    guess (RFC 8259 leaves it to each parser), so the stricter reading refuses both."""
    client, server, usage = api_key
    assert body.count('"tools"') == 2 or body.count('"messages"') == 2 or body.count('"content"') == 2
    with pytest.raises(PolicyViolation, match="names a field twice") as caught:
        client.invoke_model(modelId=CLAUDE, body=body.encode(), **JSON_TYPES)
    assert server.requests == []
    assert PROMPT not in str(caught.value)
    (record,) = records(usage)
    assert (record["outcome"], record["decision"]) == ("refused", "refuse")


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
