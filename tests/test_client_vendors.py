"""For every vendor: a refused call sends nothing to its loopback server; a rerouted call reaches only the alternative.

Each vendor's target is refused by a requirement its offering does not meet
by default (the catalogue says so; the test checks the decision first). The
tenant reroutes it to a self-hosted model on another loopback server, which
meets the requirement. The refused vendor's server must see zero requests,
for chat, stream and embed, and the alternative exactly one per call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from privsdk.client import Client
from privsdk.config import load_policy
from privsdk.decision import decide
from privsdk.errors import PolicyViolation, Unsupported
from privsdk.usage import UsageRecord
from tests.wire.bedrock import BedrockWire
from tests.wire.cohere import CohereApp
from tests.wire.mistral import MistralApp
from tests.wire.openai import OpenAIWire
from tests.wire.server import App, LoopbackServer
from tests.wire.vertex import API_KEY as GEMINI_KEY
from tests.wire.vertex import TOKEN as VERTEX_TOKEN
from tests.wire.vertex import GeminiApp

#: vendor: (its wire app, the target's TOML lines, the requirement it fails, its credentials)
VENDORS: dict[str, tuple[Callable[[], App], str, str, dict[str, str]]] = {
    "openai": (lambda: OpenAIWire(key="k"), 'offering = "openai.api"\nmodel = "gpt-4o-mini"', "zdr", {"api_key": "k"}),
    "azure": (
        lambda: OpenAIWire(key="k"),
        'offering = "azure.openai"\nmodel = "gpt-4o"\napi_version = "2024-10-21"',
        "zdr",
        {"api_key": "k"},
    ),
    "cohere": (CohereApp, 'offering = "cohere.saas"\nmodel = "command-r-plus"', "no_training", {"api_key": "k"}),
    "mistral": (
        MistralApp,
        'offering = "mistral.api"\nmodel = "mistral-small-latest"',
        "no_training",
        {"api_key": "k"},
    ),
    "bedrock": (
        BedrockWire,
        'offering = "bedrock.runtime"\nmodel = "anthropic.claude-3-haiku-20240307-v1:0"\nregion = "eu-central-1"',
        "zdr",
        {"aws_access_key_id": "AKIDFAKE", "aws_secret_access_key": "x"},
    ),
    "vertex": (
        GeminiApp,
        'offering = "vertex.gemini"\nmodel = "gemini-2.5-flash"\nproject = "p"\nregion = "europe-west4"',
        "zdr",
        {"access_token": VERTEX_TOKEN},
    ),
    "gemini": (GeminiApp, 'offering = "gemini.api"\nmodel = "gemini-2.5-flash"', "zdr", {"api_key": GEMINI_KEY}),
}


#: boto3 must see none of the machine's AWS configuration (tests.conftest.no_machine_aws).
pytestmark = pytest.mark.usefixtures("no_machine_aws")


@pytest.fixture
def local() -> Iterator[LoopbackServer]:
    with LoopbackServer(OpenAIWire(key="local")) as server:
        yield server


@pytest.mark.parametrize("vendor", VENDORS)
def test_refused_sends_nothing_and_rerouted_reaches_only_the_alternative(
    vendor: str, local: LoopbackServer, tmp_path: Path
) -> None:
    make_app, target, requirement, credentials = VENDORS[vendor]
    with LoopbackServer(make_app()) as server:
        endpoint = f"{server.url}/v1" if vendor == "openai" else server.url
        config = tmp_path / "privsdk.toml"
        config.write_text(
            f"""
[targets.remote]
{target}
endpoint = "{endpoint}"

[targets.local]
offering = "selfhosted.vllm"
model = "llama-3.1-8b-instruct"
endpoint = "{local.url}/v1"
attest = ["no_request_logging"]

[tenants.strict]
classes.default = ["{requirement}"]

[tenants.rerouting]
on_violation = "reroute"
classes.default = ["{requirement}"]
reroute.remote = ["local"]
""",
            encoding="utf-8",
        )
        environ = {"PRIVSDK_CONFIG": str(config)}
        policy = load_policy(environ)
        assert decide(policy, "remote", tenant="strict").outcome == "refuse"
        assert decide(policy, "local", tenant="strict").outcome == "allow"
        client = Client(
            policy=policy,
            usage="none",
            credentials={vendor: credentials, "selfhosted": {"api_key": "local"}},
            timeout=5.0,
        )
        for call in (
            lambda tenant: client.chat("remote", "hello", tenant=tenant),
            lambda tenant: list(client.chat("remote", "hello", tenant=tenant, stream=True)),
            lambda tenant: client.embed("remote", ["hello"], tenant=tenant),
        ):
            with pytest.raises(PolicyViolation):
                call("strict")
            call("rerouting")
        client.close()
        assert server.requests == []
        assert [r.path for r in local.requests] == ["/v1/chat/completions"] * 2 + ["/v1/embeddings"]
        assert server.errors == [] and local.errors == []


def test_an_operation_the_adapter_cannot_do_is_refused_before_any_request_and_recorded(tmp_path: Path) -> None:
    """The catalogue lets Mistral on Azure embed, but the SDK's Azure client has no embeddings."""
    with LoopbackServer(MistralApp()) as server:
        config = tmp_path / "privsdk.toml"
        config.write_text(
            f'[targets.m]\noffering = "mistral.azure"\nmodel = "mistral-large-2411"\nendpoint = "{server.url}"\n',
            encoding="utf-8",
        )
        records: list[UsageRecord] = []
        client = Client(
            environ={"PRIVSDK_CONFIG": str(config)},
            usage=records.append,
            credentials={"mistral": {"azure_api_key": "k"}},
        )
        assert decide(client.policy, "m", "embed").outcome == "allow"
        with pytest.raises(Unsupported, match="cannot embed"):
            client.embed("m", ["hello"])
        client.close()
        assert server.requests == []
    assert [(r.outcome, r.error_class, r.attempt) for r in records] == [("error", "unsupported", 0)]


@pytest.mark.parametrize("deployment", ["prod-chat", "gpt-5.5"])
def test_a_target_whose_model_caches_prompts_a_day_is_refused_under_zdr_whatever_its_deployment_is_named(
    tmp_path: Path, deployment: str
) -> None:
    """Azure caches prompts to gpt-5.5 for up to a day whatever the request says: the policy names the model, and
    the decision (the Client's, privsdk explain's) reads it from there when the deployment's name does not show it."""
    with LoopbackServer(OpenAIWire(key="k")) as server:
        config = tmp_path / "policy.toml"
        config.write_text(
            f"""
[targets.az55]
offering = "azure.openai"
model = "gpt-5.5"
deployment = "{deployment}"
endpoint = "{server.url}"
api_version = "2024-10-21"
attest = ["modified_abuse_monitoring"]

[tenants.strict]
classes.default = ["zdr"]

[tenants.lenient]
classes.default = ["max_retention_days=1"]
""",
            encoding="utf-8",
        )
        policy = load_policy({"PRIVSDK_CONFIG": str(config)})
        assert decide(policy, "az55", tenant="strict").outcome == "refuse"
        client = Client(policy=policy, usage="none", credentials={"azure": {"api_key": "k"}}, timeout=5.0)
        with pytest.raises(PolicyViolation, match="unmet: zdr"):
            client.chat("az55", "hello", tenant="strict")
        assert server.requests == []
        client.chat("az55", "hello", tenant="lenient")
        assert len(server.requests) == 1
        client.close()
