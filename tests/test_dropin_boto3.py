"""privsdk.boto3 and the botocore guard seam, driving real boto3 over real HTTP against the loopback Bedrock.

The seam is judged with a small guard (``Judge``) that reads each request with
the real Bedrock wire reader and refuses what a test says; the tests with the
core Guard and usage records are in tests/test_dropin_boto3_guard.py.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from privsdk_bedrock import dropin
from privsdk_bedrock.refusal import PolicyViolation as BedrockPolicyViolation
from privsdk_bedrock.refusal import refuse

import privsdk.boto3 as pboto3
from privsdk.decision import Decision
from privsdk.errors import PolicyViolation
from privsdk.outbound.botocore_seam import guard_botocore, is_guarded
from privsdk.outbound.outgoing import Asks, Meter, Outgoing
from privsdk.outbound.wire.bedrock import READER
from tests.wire.bedrock import BedrockWire, sigv4
from tests.wire.server import Cut, LoopbackServer, Reset, Status

CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
EU_CLAUDE = "eu.anthropic.claude-3-7-sonnet-20250219-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"
PROMPT = "my secret diagnosis is flu"
MESSAGES = [{"role": "user", "content": [{"text": PROMPT}]}]
JSON_TYPES = {"contentType": "application/json", "accept": "application/json"}
KEYS = {"aws_access_key_id": "AKIDFAKE", "aws_secret_access_key": "fake-secret"}


def refusal_decision(operation: str) -> Decision:
    return Decision(
        "refuse", "bedrock.runtime", None, (), "bedrock.runtime does not meet zdr for tenant default",
        "default", "default", operation, ("zdr",), cast(Any, None), None,
    )  # fmt: skip


class Finished:
    def __init__(self, asks: Asks, status: int | None, tokens: tuple[int | None, int | None], exc: object) -> None:
        self.asks, self.status, self.tokens, self.exc = asks, status, tokens, exc


class Judge:
    """A guard that reads requests with the Bedrock wire reader, refuses what ``refuse`` says, keeps what it saw."""

    def __init__(self, refuse: Callable[[Outgoing, Asks], bool] = lambda out, asks: False) -> None:
        self.refuse = refuse
        self.checked: list[tuple[Outgoing, Asks]] = []
        self.finished: list[Finished] = []

    def check(self, out: Outgoing) -> JudgePass:
        asks = READER.read(out)
        self.checked.append((out, asks))
        if self.refuse(out, asks):
            raise PolicyViolation(refusal_decision(asks.operation))
        return JudgePass(self, out, asks)


class JudgePass:
    def __init__(self, judge: Judge, out: Outgoing, asks: Asks) -> None:
        self.judge, self.out, self.asks = judge, out, asks

    def meter(self, status: int, headers: Mapping[str, str]) -> Meter | None:
        return READER.meter(self.out, self.asks, status, headers)

    def finish(self, status: int | None, tokens: tuple[int | None, int | None], exc: BaseException | None) -> None:
        self.judge.finished.append(Finished(self.asks, status, tokens, exc))


REFUSE_ALL: Callable[[Outgoing, Asks], bool] = lambda out, asks: True  # noqa: E731


#: boto3 must see none of the machine's AWS configuration (tests.conftest.no_machine_aws).
pytestmark = pytest.mark.usefixtures("no_machine_aws")


@pytest.fixture(scope="module")
def _running() -> Iterator[LoopbackServer]:
    with LoopbackServer(BedrockWire()) as running:
        yield running


@pytest.fixture
def server(_running: LoopbackServer) -> Iterator[LoopbackServer]:
    _running.requests.clear()
    while _running.next_fault() is not None:
        pass
    yield _running
    assert _running.errors == []


def kwargs(server: LoopbackServer, *, attempts: int = 1, mode: str = "standard", **config: Any) -> dict[str, Any]:
    retries = {"total_max_attempts": attempts, "mode": mode}
    return {
        "region_name": "eu-central-1",
        "endpoint_url": server.url,
        "config": Config(retries=retries, read_timeout=5, connect_timeout=5, **config),
        **KEYS,
    }


def attempts_counter(client: Any) -> list[str]:
    """Every attempt botocore makes creates (and signs) a request: count them."""
    seen: list[str] = []
    client.meta.events.register(
        "request-created.bedrock-runtime", lambda event_name, **kw: seen.append(event_name.rsplit(".", 1)[-1])
    )
    return seen


# -- refusal ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["standard", "legacy", "adaptive"])
def test_a_refused_request_sends_nothing_is_not_retried_and_raises_both_classes(
    server: LoopbackServer, mode: str
) -> None:
    judge = Judge(REFUSE_ALL)
    client = dropin.guard_client(boto3.client("bedrock-runtime", **kwargs(server, attempts=5, mode=mode)), guard=judge)
    attempts = attempts_counter(client)
    with pytest.raises(ClientError) as caught:
        client.converse(modelId=CLAUDE, messages=MESSAGES)
    error = caught.value
    assert isinstance(error, PolicyViolation) and isinstance(error, BedrockPolicyViolation)
    assert server.requests == []
    assert attempts == ["Converse"]
    assert len(judge.checked) == 1 and judge.finished == []
    assert error.response["Error"] == {"Code": "PolicyViolation", "Message": error.reason}
    assert error.operation_name == "Converse"
    assert str(error).startswith("An error occurred (PolicyViolation) when calling the Converse operation: ")
    assert error.decision.operation == "chat"
    assert error.__cause__ is None and error.__context__ is None
    assert PROMPT not in str(error) and PROMPT not in repr(error.args)


def test_the_refusal_answers_the_handlers_boto3_documents_as_a_403_does(server: LoopbackServer) -> None:
    """boto3's error handling guide reads ``err.response["ResponseMetadata"]["HTTPStatusCode"]`` (and apps log its
    ``RequestId``): a refusal answers them as a 403 from the service does, with no request id (nothing was sent)."""
    server.fail(Status(403, {"x-amzn-ErrorType": "AccessDeniedException"}, b'{"message": "no access"}'))
    with pytest.raises(ClientError) as denied:
        boto3.client("bedrock-runtime", **kwargs(server)).converse(modelId=CLAUDE, messages=MESSAGES)
    client = dropin.guard_client(boto3.client("bedrock-runtime", **kwargs(server)), guard=Judge(REFUSE_ALL))
    with pytest.raises(ClientError) as refused:
        client.converse(modelId=CLAUDE, messages=MESSAGES)
    assert len(server.requests) == 1  # the 403's
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    metadata = refused.value.response["ResponseMetadata"]
    assert metadata == {"HTTPStatusCode": 403, "RequestId": "", "HTTPHeaders": {}, "RetryAttempts": 0}
    assert pickle.loads(pickle.dumps(refused.value)).response["ResponseMetadata"] == metadata


def test_the_refusal_pickles_and_is_caught_by_privsdk_handlers(server: LoopbackServer) -> None:
    client = dropin.guard_client(boto3.client("bedrock-runtime", **kwargs(server)), guard=Judge(REFUSE_ALL))
    with pytest.raises(PolicyViolation) as caught:
        client.converse_stream(modelId=CLAUDE, messages=MESSAGES)
    again = pickle.loads(pickle.dumps(caught.value))
    assert type(again) is BedrockPolicyViolation and again.decision.operation == "stream"
    assert str(again) == str(caught.value)
    assert server.requests == []


def test_the_guard_sees_the_final_request_host_path_signed_region_and_body(server: LoopbackServer) -> None:
    judge = Judge()
    client = dropin.guard_client(boto3.client("bedrock-runtime", **kwargs(server)), guard=judge)
    client.converse(modelId=EU_CLAUDE, messages=MESSAGES, system=[{"text": "s"}, {"cachePoint": {"type": "default"}}])
    ((out, asks),) = judge.checked
    sent = server.requests[0]
    assert (out.sdk, out.method, out.scheme, out.host, out.port) == (
        "boto3",
        "POST",
        "http",
        "127.0.0.1",
        sent_port(server),
    )
    assert out.path == sent.path == "/model/eu.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse"
    assert out.body == sent.body
    assert sigv4(out.headers)["region"] == "eu-central-1"
    assert out.headers["authorization"] == sent.headers["authorization"]
    assert asks == Asks("chat", EU_CLAUDE, frozenset({"prompt_caching"}), location="eu-central-1")


def sent_port(server: LoopbackServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def test_the_real_host_is_the_regions_host() -> None:
    """Without an endpoint_url the request goes to the Region's bedrock-runtime host: refused, so nothing leaves."""
    judge = Judge(REFUSE_ALL)
    client = dropin.guard_client(
        boto3.client(
            "bedrock-runtime", region_name="eu-west-3", config=Config(retries={"total_max_attempts": 1}), **KEYS
        ),
        guard=judge,
    )
    with pytest.raises(BedrockPolicyViolation):
        client.invoke_model(modelId=TITAN, body=json.dumps({"inputText": PROMPT}))
    ((out, asks),) = judge.checked
    assert (out.scheme, out.host, out.port) == ("https", "bedrock-runtime.eu-west-3.amazonaws.com", None)
    assert asks == Asks("embed", TITAN, location="eu-west-3")


def test_a_fips_client_goes_to_the_fips_host() -> None:
    judge = Judge(REFUSE_ALL)
    config = Config(retries={"total_max_attempts": 1}, use_fips_endpoint=True)
    client = dropin.guard_client(
        boto3.client("bedrock-runtime", region_name="us-east-1", config=config, **KEYS), guard=judge
    )
    with pytest.raises(BedrockPolicyViolation):
        client.converse(modelId=CLAUDE, messages=MESSAGES)
    assert judge.checked[0][0].host == "bedrock-runtime-fips.us-east-1.amazonaws.com"


# -- allowed requests and their tokens ----------------------------------------------------------------------------


def test_converse_is_sent_and_finished_with_its_tokens(server: LoopbackServer) -> None:
    judge = Judge()
    client = dropin.guard_client(boto3.client("bedrock-runtime", **kwargs(server)), guard=judge)
    answer = client.converse(modelId=CLAUDE, messages=MESSAGES)
    assert answer["output"]["message"]["content"][0]["text"] == "You said: " + PROMPT
    ((done,),) = [judge.finished]
    usage = answer["usage"]
    assert (done.status, done.tokens, done.exc) == (200, (usage["inputTokens"], usage["outputTokens"]), None)
    assert done.asks.operation == "chat"


def test_converse_stream_is_finished_when_the_stream_ends(server: LoopbackServer) -> None:
    judge = Judge()
    client = dropin.guard_client(boto3.client("bedrock-runtime", **kwargs(server)), guard=judge)
    response = client.converse_stream(modelId=CLAUDE, messages=MESSAGES)
    assert judge.finished == []  # nothing read yet
    events = list(response["stream"])
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    usage = next(e["metadata"]["usage"] for e in events if "metadata" in e)
    assert text == "You said: " + PROMPT
    ((done,),) = [judge.finished]
    assert (done.status, done.tokens, done.exc) == (200, (usage["inputTokens"], usage["outputTokens"]), None)
    assert done.asks.operation == "stream"


NATIVE = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 50,
    "messages": [{"role": "user", "content": PROMPT}],
}


def open_stream(client: Any, operation: str) -> Any:
    """The event stream of a ConverseStream or an InvokeModelWithResponseStream."""
    if operation == "converse_stream":
        return client.converse_stream(modelId=CLAUDE, messages=MESSAGES)["stream"]
    return client.invoke_model_with_response_stream(modelId=CLAUDE, body=json.dumps(NATIVE))["body"]


@pytest.mark.parametrize("operation", ["converse_stream", "invoke_model_with_response_stream"])
def test_a_stream_closed_before_its_counts_is_finished_once_as_cancelled(
    server: LoopbackServer, operation: str
) -> None:
    """It was finished as whole (recorded ``ok``), as if the app had read it to its end."""
    judge = Judge()
    client = dropin.guard_client(boto3.client("bedrock-runtime", **kwargs(server)), guard=judge)
    stream = open_stream(client, operation)
    next(iter(stream))
    stream.close()
    stream.close()
    ((done,),) = [judge.finished]
    assert (done.status, done.tokens) == (200, (None, None))
    assert isinstance(done.exc, GeneratorExit)


def test_a_stream_closed_after_its_counts_is_finished_whole(server: LoopbackServer) -> None:
    judge = Judge()
    client = dropin.guard_client(boto3.client("bedrock-runtime", **kwargs(server)), guard=judge)
    stream = open_stream(client, "converse_stream")
    usage = next(e["metadata"]["usage"] for e in stream if "metadata" in e)  # the last event: the app stops there
    stream.close()
    ((done,),) = [judge.finished]
    assert (done.status, done.tokens, done.exc) == (200, (usage["inputTokens"], usage["outputTokens"]), None)


def test_a_cut_stream_is_finished_with_the_error(server: LoopbackServer) -> None:
    judge = Judge()
    client = dropin.guard_client(boto3.client("bedrock-runtime", **kwargs(server)), guard=judge)
    server.fail(Cut(after=2))
    with pytest.raises(Exception):  # noqa: B017 - urllib3's or botocore's, as botocore surfaces it
        list(client.converse_stream(modelId=CLAUDE, messages=MESSAGES)["stream"])
    ((done,),) = [judge.finished]
    assert done.status == 200 and done.exc is not None


def test_invoke_model_tokens_come_from_the_headers(server: LoopbackServer) -> None:
    judge = Judge()
    client = dropin.guard_client(boto3.client("bedrock-runtime", **kwargs(server)), guard=judge)
    answer = client.invoke_model(modelId=TITAN, body=json.dumps({"inputText": PROMPT}), **JSON_TYPES)
    body = json.loads(answer["body"].read())
    ((done,),) = [judge.finished]
    assert done.asks == Asks("embed", TITAN, location="eu-central-1")
    assert (done.status, done.tokens) == (200, (body["inputTextTokenCount"], None))


def test_invoke_model_with_response_stream_tokens_come_from_the_last_chunk(server: LoopbackServer) -> None:
    judge = Judge()
    client = dropin.guard_client(boto3.client("bedrock-runtime", **kwargs(server)), guard=judge)
    native = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    response = client.invoke_model_with_response_stream(modelId=CLAUDE, body=json.dumps(native))
    parts = [json.loads(e["chunk"]["bytes"]) for e in response["body"]]
    metrics = parts[-1]["amazon-bedrock-invocationMetrics"]
    ((done,),) = [judge.finished]
    assert done.asks == Asks("stream", CLAUDE, location="eu-central-1")
    assert done.tokens == (metrics["inputTokenCount"], metrics["outputTokenCount"])


def test_every_retried_attempt_is_judged_and_finished(server: LoopbackServer) -> None:
    judge = Judge()
    client = dropin.guard_client(boto3.client("bedrock-runtime", **kwargs(server, attempts=3)), guard=judge)
    attempts = attempts_counter(client)
    throttled = Status(429, {"x-amzn-ErrorType": "ThrottlingException", "x-amz-retry-after": "1"}, b'{"message": "x"}')
    server.fail(throttled, Reset())
    client.converse(modelId=CLAUDE, messages=MESSAGES)
    assert len(attempts) == len(judge.checked) == len(server.requests) == 3
    assert [d.status for d in judge.finished] == [429, None, 200]
    assert judge.finished[0].tokens == (None, None) and judge.finished[1].exc is not None


def test_a_refusal_on_a_retry_stops_the_retries(server: LoopbackServer) -> None:
    """The guard judges each attempt; once it refuses, botocore neither sends nor retries again."""
    seen: list[int] = []

    def second_is_refused(out: Outgoing, asks: Asks) -> bool:
        seen.append(1)
        return len(seen) == 2

    judge = Judge(second_is_refused)
    client = dropin.guard_client(boto3.client("bedrock-runtime", **kwargs(server, attempts=5)), guard=judge)
    server.fail(Status(503, {"x-amzn-ErrorType": "ServiceUnavailableException"}, b"{}"))
    with pytest.raises(BedrockPolicyViolation):
        client.converse(modelId=CLAUDE, messages=MESSAGES)
    assert len(server.requests) == 1 and len(judge.checked) == 2


# -- other Bedrock services ---------------------------------------------------------------------------------------


def test_control_plane_and_agent_runtime_clients_are_guarded(server: LoopbackServer) -> None:
    session = dropin.Session()
    assert is_guarded(session.client("bedrock", **kwargs(server)))
    assert is_guarded(session.client("bedrock-agent-runtime", **kwargs(server)))
    assert not is_guarded(session.client("s3", **kwargs(server)))
    judge = Judge(lambda out, asks: asks.operation == "batch")
    control = dropin.guard_client(boto3.client("bedrock", **kwargs(server)), guard=judge)
    agents = dropin.guard_client(boto3.client("bedrock-agent-runtime", **kwargs(server)), guard=judge)
    assert control.list_foundation_models()["modelSummaries"] == []
    ranked = agents.rerank(
        queries=[{"type": "TEXT", "textQuery": {"text": "q"}}],
        sources=[{"type": "INLINE", "inlineDocumentSource": {"type": "TEXT", "textDocument": {"text": "d"}}}],
        rerankingConfiguration={
            "type": "BEDROCK_RERANKING_MODEL",
            "bedrockRerankingConfiguration": {
                "modelConfiguration": {"modelArn": "arn:aws:bedrock:eu-central-1::foundation-model/amazon.rerank-v1:0"}
            },
        },
    )
    assert ranked["results"][0]["index"] == 0
    with pytest.raises(BedrockPolicyViolation):
        control.create_model_invocation_job(
            jobName="j", roleArn="arn:aws:iam::123456789012:role/r", modelId=EU_CLAUDE,
            inputDataConfig={"s3InputDataConfig": {"s3Uri": "s3://in/"}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": "s3://out/"}},
        )  # fmt: skip
    assert [r.path for r in server.requests] == ["/foundation-models", "/rerank"]
    assert [a for _, a in judge.checked] == [
        Asks("models", location="eu-central-1"),
        Asks("rerank", "amazon.rerank-v1:0", location="eu-central-1"),
        Asks("batch", EU_CLAUDE, location="eu-central-1"),
    ]


def test_another_service_is_left_as_boto3_made_it() -> None:
    s3 = pboto3.client("s3", region_name="eu-west-1", **KEYS)
    assert not is_guarded(s3)
    assert dropin.guard_client(s3) is s3 and not is_guarded(s3)
    with pytest.raises(ValueError, match="not s3"):
        guard_botocore(s3, refusal=refuse)


def test_guarding_twice_registers_once_and_a_guard_given_replaces_the_one_it_had(server: LoopbackServer) -> None:
    """Guarded twice, a client is judged once a request; a guard given replaces the one it had (what privsdk.Client's
    adapter does to a client instrument() guarded as it was built), as for openai's clients."""
    judge, refuse_all = Judge(), Judge(REFUSE_ALL)
    client = boto3.client("bedrock-runtime", **kwargs(server))
    assert dropin.guard_client(dropin.guard_client(client, guard=judge), guard=judge) is client
    client.converse(modelId=CLAUDE, messages=MESSAGES)
    assert len(judge.checked) == 1 and len(server.requests) == 1
    assert dropin.guard_client(client, guard=refuse_all) is client
    with pytest.raises(PolicyViolation):
        client.converse(modelId=CLAUDE, messages=MESSAGES)
    assert len(refuse_all.checked) == 1 and len(judge.checked) == 1 and len(server.requests) == 1


# -- the drop-in --------------------------------------------------------------------------------------------------


def test_the_face_has_every_public_name_of_boto3() -> None:
    for name in (n for n in dir(boto3) if not n.startswith("_")):
        assert hasattr(pboto3, name), name
        assert getattr(pboto3, name) is not None or name == "DEFAULT_SESSION", name  # made on first use, as boto3's
    assert pboto3.Session is dropin.Session and issubclass(pboto3.Session, boto3.session.Session)
    assert pboto3.session.Session is pboto3.Session and pboto3.session.Config is boto3.session.Config
    assert pboto3.exceptions is boto3.exceptions
    with pytest.raises(AttributeError, match=r"privsdk\.boto3"):
        pboto3.no_such_name  # noqa: B018


def test_a_drop_in_client_has_every_attribute_of_boto3s(server: LoopbackServer) -> None:
    plain = boto3.client("bedrock-runtime", **kwargs(server))
    guarded = pboto3.client("bedrock-runtime", **kwargs(server))
    assert is_guarded(guarded) and not is_guarded(plain)
    assert type(guarded).__name__ == type(plain).__name__ == "BedrockRuntime"
    assert set(dir(plain)) <= set(dir(guarded))
    assert set(dir(plain.meta)) <= set(dir(guarded.meta))
    assert guarded.exceptions.ThrottlingException.__name__ == "ThrottlingException"


SCRIPT = """
import json
EU = "eu.anthropic.claude-3-7-sonnet-20250219-v1:0"
CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"

def run(boto3, url, fail):
    kw = dict(region_name="eu-central-1", endpoint_url=url, aws_access_key_id="AKIDFAKE", aws_secret_access_key="x")
    client = boto3.Session().client("bedrock-runtime", **kw)
    messages = [{"role": "user", "content": [{"text": "weather in Paris?"}]}]
    tools = {"tools": [{"toolSpec": {"name": "weather", "inputSchema": {"json": {"type": "object"}}}}]}
    first = client.converse(modelId=EU, messages=messages, toolConfig=tools)
    messages.append(first["output"]["message"])
    use = next(b["toolUse"] for b in first["output"]["message"]["content"] if "toolUse" in b)
    result = {"toolUseId": use["toolUseId"], "content": [{"text": "sunny"}]}
    messages.append({"role": "user", "content": [{"toolResult": result}]})
    second = boto3.client("bedrock-runtime", **kw).converse(modelId=EU, messages=messages, toolConfig=tools)
    stream = client.converse_stream(modelId=CLAUDE, messages=messages[:1])["stream"]
    text = "".join(e["contentBlockDelta"]["delta"].get("text", "") for e in stream if "contentBlockDelta" in e)
    body = json.dumps({"inputText": "hi"})
    types = {"contentType": "application/json", "accept": "application/json"}
    embed = json.loads(client.invoke_model(modelId="amazon.titan-embed-text-v2:0", body=body, **types)["body"].read())
    fail()
    try:
        client.converse(modelId=CLAUDE, messages=messages[:1])
    except client.exceptions.ClientError as exc:
        error = exc.response["Error"]["Code"]
    for answer in (first, second):
        answer.pop("ResponseMetadata")
    return first, second, text, embed["embedding"][:3], error
"""


def test_a_boto3_script_runs_unchanged_with_the_import_swapped(server: LoopbackServer) -> None:
    namespace: dict[str, Any] = {}
    exec(SCRIPT, namespace)

    def fail() -> None:
        server.fail(Status(400, {"x-amzn-ErrorType": "ValidationException"}, b'{"message": "bad"}'))

    plain = namespace["run"](boto3, server.url, fail)
    sent = len(server.requests)
    with_privsdk = Judge()
    # The face's clients take the default guard; instrumenting with the Judge first makes them take it.
    dropin.instrument(guard=with_privsdk)
    try:
        swapped = namespace["run"](pboto3, server.url, fail)
    finally:
        dropin.uninstrument()
    assert plain[-1] == "ValidationException"
    assert swapped == plain
    assert len(server.requests) == 2 * sent
    assert [a.operation for _, a in with_privsdk.checked] == ["chat", "chat", "stream", "embed", "chat"]


# -- instrument ---------------------------------------------------------------------------------------------------


def test_instrument_guards_clients_made_by_boto3_and_botocore_and_uninstrument_restores(server: LoopbackServer) -> None:
    judge = Judge(REFUSE_ALL)
    before = boto3.client("bedrock-runtime", **kwargs(server))
    dropin.instrument(guard=judge)
    dropin.instrument(guard=Judge())  # idempotent: the first guard stays
    try:
        assert dropin.is_instrumented()
        made = [
            boto3.client("bedrock-runtime", **kwargs(server)),
            boto3.session.Session().client("bedrock-agent-runtime", **kwargs(server)),
            botocore.session.get_session().create_client("bedrock-runtime", **kwargs(server)),
        ]
        assert all(is_guarded(c) for c in made) and not is_guarded(before)
        assert not is_guarded(boto3.client("sqs", region_name="eu-west-1", **KEYS))
        with pytest.raises(ClientError) as caught:
            made[2].converse(modelId=CLAUDE, messages=MESSAGES)
        assert caught.value.response["Error"]["Code"] == "PolicyViolation"
        assert server.requests == []
    finally:
        dropin.uninstrument()
    assert not dropin.is_instrumented()
    assert not is_guarded(boto3.client("bedrock-runtime", **kwargs(server)))
    before.converse(modelId=CLAUDE, messages=MESSAGES)
    assert len(server.requests) == 1


def test_importing_the_face_loads_boto3_but_privsdk_alone_does_not() -> None:
    code = (
        "import sys, privsdk, privsdk.outbound.botocore_seam, privsdk.outbound.wire.bedrock\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))\n"
        "import privsdk.boto3\n"
        "print('boto3' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["[]", "True"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://bedrock-runtime.eu-west-1.amazonaws.com/model/x/converse",
            ("https", "bedrock-runtime.eu-west-1.amazonaws.com", None, "/model/x/converse", ""),
        ),
        ("http://127.0.0.1:8123/model/x/invoke?a=1", ("http", "127.0.0.1", 8123, "/model/x/invoke", "a=1")),
        (
            "HTTPS://Bedrock-Runtime.US-EAST-1.amazonaws.com:443/async-invoke",
            ("https", "bedrock-runtime.us-east-1.amazonaws.com", 443, "/async-invoke", ""),
        ),
        ("https://[::1]:9000/rerank", ("https", "::1", 9000, "/rerank", "")),
        (
            "https://user:pw@vpce-1a2b.bedrock-runtime.eu-west-1.vpce.amazonaws.com/model/x/converse",
            ("https", "vpce-1a2b.bedrock-runtime.eu-west-1.vpce.amazonaws.com", None, "/model/x/converse", ""),
        ),
        ("https://bedrock.eu-west-1.amazonaws.com", ("https", "bedrock.eu-west-1.amazonaws.com", None, "/", "")),
    ],
)
def test_outgoing_from_a_prepared_request(url: str, expected: tuple[str, str, int | None, str, str]) -> None:
    from botocore.awsrequest import AWSPreparedRequest, HeadersDict

    from privsdk.outbound.botocore_seam import outgoing

    headers = HeadersDict({"Content-Type": b"application/json", "X-Amz-Date": "20261130T000000Z"})
    out = outgoing(AWSPreparedRequest("POST", url, headers, b"{}", False))
    assert (out.scheme, out.host, out.port, out.path, out.query) == expected
    assert out.headers == {"content-type": "application/json", "x-amz-date": "20261130T000000Z"}
    assert out.body == b"{}"


def test_one_client_on_many_threads_finishes_each_attempt_with_its_own_tokens(server: LoopbackServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    judge = Judge()
    client = dropin.guard_client(boto3.client("bedrock-runtime", **kwargs(server)), guard=judge)

    def call(i: int) -> tuple[int, int]:
        words = " ".join(["w"] * (i + 1))
        messages = [{"role": "user", "content": [{"text": words}]}]
        if i % 2:
            usage = client.converse(modelId=CLAUDE, messages=messages)["usage"]
        else:
            events = list(client.converse_stream(modelId=CLAUDE, messages=messages)["stream"])
            usage = next(e["metadata"]["usage"] for e in events if "metadata" in e)
        return usage["inputTokens"], usage["outputTokens"]

    with ThreadPoolExecutor(8) as pool:
        expected = sorted(pool.map(call, range(24)))
    assert sorted(f.tokens for f in judge.finished) == expected
    assert len(judge.checked) == len(server.requests) == 24


def test_instrument_before_boto3_is_imported_guards_its_clients() -> None:
    """privsdk.instrument() at start-up patches botocore as boto3's own import loads it (privsdk run)."""
    code = (
        "import privsdk\n"
        "privsdk.instrument()\n"
        "import boto3\n"
        "from privsdk.outbound.botocore_seam import is_guarded\n"
        "kw = dict(region_name='eu-west-1', aws_access_key_id='a', aws_secret_access_key='b')\n"
        "print(is_guarded(boto3.client('bedrock-runtime', **kw)), is_guarded(boto3.client('s3', **kw)))\n"
    )
    env = {**os.environ, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.stdout.split() == ["True", "False"], out.stderr[-2000:]


def test_a_stream_dropped_unread_is_finished_when_collected(server: LoopbackServer) -> None:
    import gc

    judge = Judge()
    client = dropin.guard_client(boto3.client("bedrock-runtime", **kwargs(server)), guard=judge)
    client.converse_stream(modelId=CLAUDE, messages=MESSAGES)
    gc.collect()
    ((done,),) = [judge.finished]  # read nowhere near its end: no counts seen, so the app gave up on it
    assert done.status == 200 and isinstance(done.exc, GeneratorExit)
