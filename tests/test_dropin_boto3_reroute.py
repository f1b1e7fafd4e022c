"""privsdk.boto3 reroutes: a refused Bedrock request is answered from the tenant's alternative in boto3's types.

Two loopback Bedrock servers: ``refused`` (declared as a bedrock.runtime
endpoint with no Region, so the tenant's ``region=eu|uk|ch``, AWS's EU
geography, is unmet there) and ``eu`` (the configured targets ``eu-claude``,
an ``eu.`` profile, and ``eu-titan`` in eu-central-1), plus a
private Cohere deployment for the cross-vendor alternative. The drop-in client
always calls ``refused``; every test checks that it received nothing, and
that what the app got is what boto3 itself returns (dicts, event streams,
``ClientError`` subclasses), with the alternative's text, vectors, tool calls
and tokens. boto3 has no async client: there is no async path to test.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError, ReadTimeoutError

import privsdk
import privsdk.boto3 as pboto3
from privsdk.errors import PolicyViolation
from privsdk.outbound.judge import Guard
from tests.wire.bedrock import BedrockWire, error
from tests.wire.cohere import CohereApp
from tests.wire.server import Cut, Delay, LoopbackServer

US_CLAUDE = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
EU_CLAUDE = "eu.anthropic.claude-3-7-sonnet-20250219-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"
COHERE_EMBED = "cohere.embed-english-v3"
CANARY = "canary-7f3a9c diagnosis"
PROMPT = f"my {CANARY} is private"
MESSAGES = [{"role": "user", "content": [{"text": PROMPT}]}]
TOOLS = {
    "tools": [
        {
            "toolSpec": {
                "name": "lookup",
                "description": "Looks a record up.",
                "inputSchema": {"json": {"type": "object", "properties": {"q": {"type": "string"}}}},
            }
        }
    ]
}
KEYS = {"aws_access_key_id": "AKIDFAKE", "aws_secret_access_key": "fake-secret"}
ONE_ATTEMPT = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)

#: boto3 must see none of the machine's AWS configuration (tests.conftest.no_machine_aws).
pytestmark = pytest.mark.usefixtures("no_machine_aws")


class Servers:
    def __init__(self, refused: LoopbackServer, eu: LoopbackServer, cohere: LoopbackServer, app: CohereApp):
        self.refused, self.eu, self.cohere, self.cohere_app = refused, eu, cohere, app


@pytest.fixture(scope="module")
def _running() -> Iterator[Servers]:
    app = CohereApp("Bonjour from a private Cohere")
    app.anonymous = True  # a private deployment inside the tenant's network, with no key
    with (
        LoopbackServer(BedrockWire()) as refused,
        LoopbackServer(BedrockWire()) as eu,
        LoopbackServer(app) as cohere,
    ):
        yield Servers(refused, eu, cohere, app)


@pytest.fixture
def servers(_running: Servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Servers]:
    for server in (_running.refused, _running.eu, _running.cohere):
        server.requests.clear()
        server.errors.clear()
    config = tmp_path / "privsdk.toml"
    config.write_text(
        f"""
[endpoints]
"{_running.refused.url}" = "bedrock.runtime"

[targets.eu-claude]
offering = "bedrock.runtime"
model = "{EU_CLAUDE}"
region = "eu-central-1"
endpoint = "{_running.eu.url}"
attest = ["region=eu"]

[targets.eu-titan]
offering = "bedrock.runtime"
model = "{TITAN}"
region = "eu-central-1"
endpoint = "{_running.eu.url}"
attest = ["region=eu"]

[targets.cohere-private]
offering = "cohere.private"
model = "command-r-plus"
endpoint = "{_running.cohere.url}"

[targets.cohere-private-embed]
offering = "cohere.private"
model = "embed-v4.0"
endpoint = "{_running.cohere.url}"

[tenants.eu]
on_violation = "reroute"
classes.default = ["region=eu|uk|ch"]  # eu.* profiles may route to London (uk) and Zurich (ch)
reroute."bedrock/amazon.titan-*" = ["eu-titan"]
reroute."bedrock/*" = ["eu-claude"]

[tenants.hospital]
on_violation = "reroute"
classes.default = ["private_deployment"]
reroute."bedrock/cohere.embed-*" = ["cohere-private-embed"]
reroute."bedrock/*" = ["cohere-private"]
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("PRIVSDK_CONFIG", str(config))
    monkeypatch.setenv("PRIVSDK_TENANT", "eu")
    monkeypatch.setenv("PRIVSDK_USAGE", f"jsonl://{tmp_path / 'usage.jsonl'}")
    # The privsdk.Client serving the reroute reaches the eu Bedrock target with boto3's own credential chain.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEYS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEYS["aws_secret_access_key"])
    Guard.reset_default()
    yield _running
    Guard.reset_default()
    assert _running.refused.requests == []  # the refused target never hears of the request
    assert _running.refused.errors == _running.eu.errors == _running.cohere.errors == []


def client(servers: Servers) -> Any:
    """A drop-in client for the refused endpoint (one attempt: retries are the SDK's, not tested here)."""
    return pboto3.client(
        "bedrock-runtime", region_name="us-east-1", endpoint_url=servers.refused.url, config=ONE_ATTEMPT, **KEYS
    )


def records(tmp_path: Path) -> list[dict[str, Any]]:
    """The usage records, in the order they were written: one a call (a reroute's is the alternative's attempt,
    recorded by the privsdk Client serving it, as that reroute)."""
    Guard.default().flush(5)
    path = tmp_path / "usage.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def eu_paths(servers: Servers) -> list[str]:
    return [r.path for r in servers.eu.requests]


def path(model: str, action: str) -> str:
    return f"/model/{quote(model, safe='-_.~')}/{action}"


# -- chat: another Bedrock Region, through boto3 itself -----------------------------------------------------------


def test_converse_is_answered_from_an_eu_profile_in_converses_own_shape(
    servers: Servers, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = client(servers).converse(
        modelId=US_CLAUDE,
        messages=MESSAGES,
        system=[{"text": "Be brief."}],
        inferenceConfig={"maxTokens": 50, "temperature": 0.2, "stopSequences": ["END"]},
    )
    assert answer["output"]["message"] == {"role": "assistant", "content": [{"text": "You said: " + PROMPT}]}
    assert answer["stopReason"] == "end_turn"
    words = len(f"Be brief. {PROMPT}".split())
    assert answer["usage"] == {"inputTokens": words, "outputTokens": 7, "totalTokens": words + 7}
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200 and answer["ResponseMetadata"]["RequestId"]
    assert eu_paths(servers) == [path(EU_CLAUDE, "converse")]
    sent = servers.eu.requests[0].json()
    assert sent["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.2, "stopSequences": ["END"]}
    assert sent["system"] == [{"text": "Be brief."}]
    (served,) = records(tmp_path)  # one call: the alternative's attempt, recorded as the reroute it served
    assert (served["outcome"], served["decision"], served["chosen_target"], served["unmet"]) == (
        "ok",
        "reroute",
        "eu-claude",
        ["region=ch|eu|uk"],
    )
    assert served["requested_target"] != "eu-claude" and served["operation"] == "chat"
    assert (served["input_tokens"], served["output_tokens"]) == (words, 7)
    assert CANARY not in json.dumps(served)
    assert not [r for r in caplog.records if CANARY in r.getMessage()]


def test_tool_use_and_tool_results_carry_over(servers: Servers) -> None:
    bedrock = client(servers)
    first = bedrock.converse(modelId=US_CLAUDE, messages=MESSAGES, toolConfig={**TOOLS, "toolChoice": {"any": {}}})
    assert first["stopReason"] == "tool_use"
    content = first["output"]["message"]["content"]
    assert content == [
        {"text": "Calling a tool."},
        {"toolUse": {"toolUseId": "tooluse_1", "name": "lookup", "input": {"q": PROMPT}}},
    ]
    result = {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "found"}, {"json": {"n": 1}}]}}
    conversation = [*MESSAGES, first["output"]["message"], {"role": "user", "content": [result]}]
    second = bedrock.converse(modelId=US_CLAUDE, messages=conversation, toolConfig=TOOLS)
    assert second["output"]["message"]["content"] == [{"text": 'Tool said: found{"n": 1}'}]
    assert servers.eu.requests[0].json()["toolConfig"]["toolChoice"] == {"any": {}}


def test_converse_stream_is_answered_as_an_event_stream(servers: Servers, tmp_path: Path) -> None:
    response = client(servers).converse_stream(modelId=US_CLAUDE, messages=MESSAGES, toolConfig=TOOLS)
    events = list(response["stream"])
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    text = "".join(e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e)
    assert text == "Calling a tool."
    (start,) = [e["contentBlockStart"] for e in events if "contentBlockStart" in e]
    assert start == {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "lookup"}}}
    arguments = "".join(
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in events
        if "contentBlockDelta" in e and "toolUse" in e["contentBlockDelta"]["delta"]
    )
    assert json.loads(arguments) == {"q": PROMPT}
    assert [e["contentBlockStop"]["contentBlockIndex"] for e in events if "contentBlockStop" in e] == [0, 1]
    assert events[-2]["messageStop"] == {"stopReason": "tool_use"}
    words = len(PROMPT.split())
    assert events[-1]["metadata"]["usage"] == {"inputTokens": words, "outputTokens": 3, "totalTokens": words + 3}
    assert eu_paths(servers) == [path(EU_CLAUDE, "converse-stream")]
    served = records(tmp_path)[-1]
    assert (served["operation"], served["outcome"], served["output_tokens"]) == ("stream", "ok", 3)


# -- embeddings ---------------------------------------------------------------------------------------------------


def test_titan_embeddings_are_answered_from_an_eu_titan_as_unit_vectors(servers: Servers, tmp_path: Path) -> None:
    response = client(servers).invoke_model(
        modelId=TITAN,
        body=json.dumps({"inputText": PROMPT, "dimensions": 256}),
        contentType="application/json",
        accept="application/json",
    )
    body = json.loads(response["body"].read())
    assert response["contentType"] == "application/json"
    assert len(body["embedding"]) == 256 and math.isclose(sum(x * x for x in body["embedding"]), 1.0)
    assert body["inputTextTokenCount"] == len(PROMPT.split())
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-bedrock-input-token-count"] == str(len(PROMPT.split()))
    assert eu_paths(servers) == [path(TITAN, "invoke")]
    assert servers.eu.requests[0].json() == {"inputText": PROMPT, "dimensions": 256}
    served = records(tmp_path)[-1]
    assert (served["operation"], served["chosen_target"], served["input_tokens"]) == ("embed", "eu-titan", 5)


# -- another vendor, for chat and embeddings ----------------------------------------------------------------------


def test_chat_and_embeddings_reroute_to_another_vendor_in_bedrocks_shapes(servers: Servers, tmp_path: Path) -> None:
    bedrock = client(servers)
    servers.cohere_app.tool_calls = [("call_1", "lookup", '{"q": "x"}')]
    try:
        with privsdk.scope(tenant="hospital"):
            answer = bedrock.converse(modelId=US_CLAUDE, messages=MESSAGES, toolConfig=TOOLS)
    finally:
        servers.cohere_app.tool_calls = []
    with privsdk.scope(tenant="hospital"):
        events = list(bedrock.converse_stream(modelId=US_CLAUDE, messages=MESSAGES)["stream"])
        embedded = bedrock.invoke_model(
            modelId=COHERE_EMBED,
            body=json.dumps({"texts": ["a", "b"], "input_type": "search_query", "embedding_types": ["float"]}),
        )
    assert answer["stopReason"] == "tool_use"
    uses = [b["toolUse"] for b in answer["output"]["message"]["content"] if "toolUse" in b]
    assert uses == [{"toolUseId": "call_1", "name": "lookup", "input": {"q": "x"}}]
    assert answer["usage"]["inputTokens"] > 0 and answer["usage"]["outputTokens"] > 0
    text = "".join(e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e)
    assert text == servers.cohere_app.text
    body = json.loads(embedded["body"].read())
    assert body["response_type"] == "embeddings_by_type" and body["texts"] == ["a", "b"]
    assert len(body["embeddings"]["float"]) == 2
    assert [r.path for r in servers.cohere.requests] == ["/v2/chat", "/v2/chat", "/v2/embed"]
    assert servers.cohere.requests[2].json()["input_type"] == "search_query"
    assert servers.eu.requests == []
    served = [r for r in records(tmp_path) if r["outcome"] != "refused"]
    assert [(r["operation"], r["vendor"]) for r in served] == [
        ("chat", "cohere"),
        ("stream", "cohere"),
        ("embed", "cohere"),
    ]


# -- what does not reroute ----------------------------------------------------------------------------------------

NATIVE = {"anthropic_version": "bedrock-2023-05-31", "messages": [{"role": "user", "content": PROMPT}]}


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.invoke_model(modelId=US_CLAUDE, body=json.dumps(NATIVE)), id="invoke-native-chat"),
        pytest.param(
            lambda c: c.invoke_model_with_response_stream(modelId=US_CLAUDE, body=json.dumps(NATIVE)),
            id="invoke-stream",
        ),
        pytest.param(
            lambda c: c.converse(modelId=US_CLAUDE, messages=MESSAGES, additionalModelRequestFields={"top_k": 5}),
            id="model-fields",
        ),
        pytest.param(
            lambda c: c.converse(
                modelId=US_CLAUDE,
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"text": PROMPT},
                            {"document": {"format": "txt", "name": "notes", "source": {"bytes": b"a note"}}},
                        ],
                    }
                ],
            ),
            id="document",
        ),
        pytest.param(
            lambda c: c.invoke_model(
                modelId=TITAN, body=json.dumps({"inputText": PROMPT, "embeddingTypes": ["binary"]})
            ),
            id="binary-embeddings",
        ),
        pytest.param(
            lambda c: c.count_tokens(modelId=US_CLAUDE, input={"converse": {"messages": MESSAGES}}), id="count-tokens"
        ),
        pytest.param(
            lambda c: c.invoke_model(
                modelId="amazon.titan-embed-text-v1", body=json.dumps({"inputText": PROMPT, "dimensions": 256})
            ),
            id="v2-options-on-titan-v1",
        ),
    ],
)
def test_what_cannot_be_served_elsewhere_is_refused_and_sends_nothing(
    servers: Servers, tmp_path: Path, call: Any
) -> None:
    with pytest.raises(ClientError) as caught:
        call(client(servers))
    assert isinstance(caught.value, PolicyViolation) and isinstance(caught.value, pboto3.PolicyViolation)
    assert caught.value.response["Error"]["Code"] == "PolicyViolation"
    assert "privsdk can reroute only chat and embeddings" in str(caught.value)
    assert CANARY not in str(caught.value) and caught.value.__cause__ is None
    assert servers.eu.requests == [] and servers.cohere.requests == []
    assert CANARY not in json.dumps(records(tmp_path))


# -- failures of the alternative ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "sent", "code"),
    [
        (429, "ThrottlingException", "ThrottlingException"),
        (503, "ServiceUnavailableException", "ServiceUnavailableException"),
        (500, "InternalServerException", "ServiceUnavailableException"),  # privsdk's kind: unavailable
        (400, "ValidationException", "ValidationException"),
    ],
)
def test_a_failure_of_the_alternative_is_boto3s_own_error_without_vendor_text(
    servers: Servers, tmp_path: Path, caplog: pytest.LogCaptureFixture, status: int, sent: str, code: str
) -> None:
    caplog.set_level(logging.DEBUG)
    # botocore's retry settings decide the attempts at the alternative (each judged and rerouted afresh): two
    # here, for a failure botocore retries; privsdk adds none of its own.
    twice = Config(retries={"total_max_attempts": 2, "mode": "standard"}, connect_timeout=2, read_timeout=5)
    bedrock = pboto3.client(
        "bedrock-runtime", region_name="us-east-1", endpoint_url=servers.refused.url, config=twice, **KEYS
    )
    servers.eu.fail(*[error(status, sent, f"the model choked on {CANARY}")] * 2)
    with pytest.raises(ClientError) as caught:
        bedrock.converse(modelId=US_CLAUDE, messages=MESSAGES)
    servers.eu._faults.clear()
    assert isinstance(caught.value, getattr(bedrock.exceptions, code)) and not isinstance(caught.value, PolicyViolation)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert caught.value.response["Error"]["Code"] == code
    chain = [caught.value, caught.value.__cause__, caught.value.__context__]
    assert not [e for e in chain if e is not None and CANARY in str(e)]
    assert not [r for r in caplog.records if CANARY in r.getMessage()]
    assert len(servers.eu.requests) == (1 if status == 400 else 2)  # botocore does not retry a 400
    served = records(tmp_path)[-1]
    assert (served["outcome"], served["http_status"], served["chosen_target"]) == ("error", status, "eu-claude")
    assert CANARY not in json.dumps(records(tmp_path))


def test_a_stream_of_the_alternative_cut_midway_raises_boto3s_event_stream_error(servers: Servers) -> None:
    servers.eu.fail(Cut(after=3))
    stream = client(servers).converse_stream(modelId=US_CLAUDE, messages=MESSAGES)["stream"]
    seen: list[dict[str, Any]] = []
    with pytest.raises(EventStreamError) as caught:
        for event in stream:
            seen.append(event)
    assert caught.value.response["Error"]["Code"] == "modelStreamErrorException"
    assert CANARY not in str(caught.value)
    assert [next(iter(e)) for e in seen][:2] == ["messageStart", "contentBlockDelta"]


def test_without_a_compliant_alternative_the_request_is_refused(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIVSDK_ON_VIOLATION", "refuse")
    Guard.reset_default()
    with pytest.raises(PolicyViolation) as caught:
        client(servers).converse(modelId=US_CLAUDE, messages=MESSAGES)
    assert "region=ch|eu|uk" in str(caught.value)
    assert servers.eu.requests == []


def test_a_client_guarded_by_privsdk_guard_reroutes_too(servers: Servers) -> None:
    import boto3

    plain = boto3.client(
        "bedrock-runtime", region_name="us-east-1", endpoint_url=servers.refused.url, config=ONE_ATTEMPT, **KEYS
    )
    answer = privsdk.guard(plain).converse(modelId=US_CLAUDE, messages=MESSAGES)
    assert answer["output"]["message"]["content"] == [{"text": "You said: " + PROMPT}]
    assert eu_paths(servers) == [path(EU_CLAUDE, "converse")]


def test_the_sdks_retries_ask_the_alternative_again(servers: Servers) -> None:
    """A rerouted answer is the service's answer to botocore: its retry rules apply to it as to any other."""
    bedrock = pboto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=servers.refused.url,
        config=Config(retries={"total_max_attempts": 2, "mode": "standard"}),
        **KEYS,
    )
    servers.eu.fail(error(429, "ThrottlingException", "slow down"))
    answer = bedrock.converse(modelId=US_CLAUDE, messages=MESSAGES)
    assert answer["output"]["message"]["content"] == [{"text": "You said: " + PROMPT}]
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert len(servers.eu.requests) == 2


def test_an_agent_runtime_rerank_is_refused_not_rerouted(servers: Servers) -> None:
    agent = pboto3.client(
        "bedrock-agent-runtime", region_name="us-east-1", endpoint_url=servers.refused.url, config=ONE_ATTEMPT, **KEYS
    )
    arn = "arn:aws:bedrock:us-east-1::foundation-model/cohere.rerank-v3-5:0"
    with pytest.raises(PolicyViolation) as caught:
        agent.rerank(
            queries=[{"type": "TEXT", "textQuery": {"text": PROMPT}}],
            sources=[{"type": "INLINE", "inlineDocumentSource": {"type": "TEXT", "textDocument": {"text": "a"}}}],
            rerankingConfiguration={
                "type": "BEDROCK_RERANKING_MODEL",
                "bedrockRerankingConfiguration": {"modelConfiguration": {"modelArn": arn}},
            },
        )
    assert str(caught.value).endswith("privsdk can reroute only chat and embeddings, not rerank")
    assert servers.eu.requests == [] and servers.cohere.requests == []


@pytest.mark.parametrize(
    ("field", "extra"),
    [
        ("requestMetadata", {"requestMetadata": {"team": "x"}}),
        ("performanceConfig", {"performanceConfig": {"latency": "optimized"}}),
        ("serviceTier", {"serviceTier": {"type": "priority"}}),
    ],
)
def test_a_converse_field_the_reroute_cannot_carry_is_refused_by_name(
    servers: Servers, tmp_path: Path, field: str, extra: dict[str, Any]
) -> None:
    with pytest.raises(ClientError) as caught:
        client(servers).converse(modelId=US_CLAUDE, messages=MESSAGES, **extra)
    assert isinstance(caught.value, PolicyViolation) and f"field {field} (" in str(caught.value)
    assert servers.eu.requests == [] and servers.cohere.requests == []


def test_converse_fields_at_the_values_that_ask_for_nothing_reroute(servers: Servers) -> None:
    client(servers).converse(
        modelId=US_CLAUDE,
        messages=MESSAGES,
        requestMetadata={},
        performanceConfig={"latency": "standard"},
        serviceTier={"type": "default"},
    )
    assert len(servers.eu.requests) == 1


# -- the client's read timeout holds for the alternative -------------------------------------------------------------

SHORT = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=0.5)


def test_boto3_raises_read_timeout_error_on_its_own_read_timeout(servers: Servers) -> None:
    """What a rerouted request must raise below: boto3's own error when the server it sends to is too slow."""
    import boto3

    servers.eu.fail(Delay(3))
    plain = boto3.client(
        "bedrock-runtime", region_name="eu-central-1", endpoint_url=servers.eu.url, config=SHORT, **KEYS
    )
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        plain.converse(modelId=EU_CLAUDE, messages=MESSAGES)
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("operation", ["chat", "stream", "embed"])
def test_a_rerouted_request_times_out_when_the_clients_read_timeout_says(
    servers: Servers, tmp_path: Path, operation: str
) -> None:
    """The alternative was given privsdk's own 60 s, and answered after 3 s where the same request sent to Bedrock
    raised botocore's ReadTimeoutError after the client's 0.5 s."""
    bedrock = pboto3.client(
        "bedrock-runtime", region_name="us-east-1", endpoint_url=servers.refused.url, config=SHORT, **KEYS
    )
    servers.eu.fail(Delay(3))
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError) as raised:
        if operation == "chat":
            bedrock.converse(modelId=US_CLAUDE, messages=MESSAGES)
        elif operation == "stream":
            list(bedrock.converse_stream(modelId=US_CLAUDE, messages=MESSAGES)["stream"])
        else:
            bedrock.invoke_model(modelId=TITAN, body=json.dumps({"inputText": PROMPT}))
    assert time.monotonic() - started < 2.5
    assert type(raised.value) is ReadTimeoutError and CANARY not in str(raised.value)
    assert len(servers.eu.requests) == 1
    [record] = records(tmp_path)
    assert (record["decision"], record["operation"], record["outcome"], record["error_class"]) == (
        "reroute",
        operation,
        "error",
        "timeout",
    )


def test_botocore_retries_a_rerouted_read_timeout_as_its_own(servers: Servers) -> None:
    twice = Config(retries={"total_max_attempts": 2, "mode": "standard"}, connect_timeout=2, read_timeout=0.5)
    bedrock = pboto3.client(
        "bedrock-runtime", region_name="us-east-1", endpoint_url=servers.refused.url, config=twice, **KEYS
    )
    servers.eu.fail(Delay(3))
    answer = bedrock.converse(modelId=US_CLAUDE, messages=MESSAGES)
    assert answer["output"]["message"]["content"] == [{"text": "You said: " + PROMPT}]
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert len(servers.eu.requests) == 2


def test_a_slow_alternative_within_the_clients_read_timeout_answers(servers: Servers) -> None:
    servers.eu.fail(Delay(0.3))
    answer = client(servers).converse(modelId=US_CLAUDE, messages=MESSAGES)  # read_timeout 5 s
    assert answer["output"]["message"]["content"] == [{"text": "You said: " + PROMPT}]
    assert len(servers.eu.requests) == 1


_SCHEMA = json.dumps({"type": "object", "properties": {"id": {"type": "string"}}})


@pytest.mark.parametrize(
    ("says", "extra"),
    [
        (
            "outputConfig fields beyond textFormat",
            {
                "outputConfig": {
                    "effort": "high",
                    "textFormat": {"type": "json_schema", "structure": {"jsonSchema": {"schema": _SCHEMA}}},
                }
            },
        ),
        (
            "jsonSchema fields beyond schema and name",
            {
                "outputConfig": {
                    "textFormat": {
                        "type": "json_schema",
                        "structure": {"jsonSchema": {"schema": _SCHEMA, "name": "r", "description": "only the id"}},
                    }
                }
            },
        ),
    ],
)
def test_what_a_converse_tool_or_output_config_holds_beyond_what_is_carried_is_refused(
    servers: Servers, says: str, extra: dict[str, Any]
) -> None:
    """A reasoning effort and a schema's description were dropped unsaid, the answer looking like any other."""
    with pytest.raises(ClientError) as caught:
        client(servers).converse(modelId=US_CLAUDE, messages=MESSAGES, **extra)
    assert isinstance(caught.value, PolicyViolation) and says in str(caught.value)
    assert servers.eu.requests == [] and servers.cohere.requests == []


def test_a_strict_tool_is_carried_strict(servers: Servers) -> None:
    spec = {"name": "lookup", "inputSchema": {"json": {"type": "object", "properties": {}}}, "strict": True}
    client(servers).converse(modelId=US_CLAUDE, messages=MESSAGES, toolConfig={"tools": [{"toolSpec": spec}]})
    [sent] = [r.json() for r in servers.eu.requests]
    assert sent["toolConfig"]["tools"][0]["toolSpec"]["strict"] is True
