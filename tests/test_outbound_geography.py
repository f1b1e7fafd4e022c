"""Where a request is served decides its geography: the Azure region in an Azure AI Foundry host, and the location a
request names behind a declared gateway (Vertex AI's ``locations/X``, the Region a Bedrock request is signed for).

A table judges requests through :meth:`Guard.judge`'s own steps; the SDK tests drive the real openai, mistralai,
cohere, google-genai and boto3 clients over real HTTP(S) to loopback stand-ins.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

import privsdk
import privsdk.cohere
import privsdk.openai
from privsdk.catalogue import Catalogue
from privsdk.config import load_policy
from privsdk.decision import decide_request
from privsdk.errors import ConfigError
from privsdk.outbound.judge import Guard, _Refused
from privsdk.outbound.outgoing import Asks, Outgoing
from privsdk.outbound.places import catalogue_place, geography, region_kind
from privsdk.policy import Policy, Target, Tenant
from privsdk.usage import open_recorder
from privsdk.vocabulary import parse_requirements
from tests.wire.bedrock import BedrockWire
from tests.wire.cohere import CohereApp, ConnectProxy
from tests.wire.mistral import MistralApp
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer, Recorded, Reply
from tests.wire.vertex import TOKEN, GeminiApp

EU = {"PRIVSDK_REQUIRE": "region=eu"}
GEMINI = "gemini-2.5-flash"
CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
GATEWAY = "https://vertex-gw.corp.example"


def _verdict(env: Mapping[str, str], catalogue: Catalogue, url: str, asks: Asks) -> tuple[str, str | None, bool]:
    """(outcome, the target's geography, whether it shows one) for a request to ``url`` asking ``asks``."""
    guard = Guard(load_policy(env, catalogue), catalogue=catalogue, recorder=open_recorder("none"))
    scheme, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    out = Outgoing("test", "POST", scheme, host, None, "/" + path)
    try:
        targets = guard.targets(guard.place(out), asks, out, None)
    except _Refused:
        return "refuse", None, False
    decision = decide_request(guard.policy, guard.catalogue, targets, asks.operation, features=asks.features)
    return decision.outcome, targets[0].geography, targets[0].shows_geography


def _vertex(location: str) -> Asks:
    return Asks("chat", GEMINI, project="p", location=location, publisher="google")


@pytest.mark.parametrize(
    ("env", "url", "asks", "expected"),
    [
        # Azure AI Foundry serverless: the host names the Azure region, and a deployment=regional_* attestation
        # holds only where that region's geography is its own.
        ({**EU, "PRIVSDK_ATTEST": "azure:deployment=regional_eu"},
         "https://m.eastus2.models.ai.azure.com/models/chat/completions", Asks("chat", "mistral-large-2411"),
         ("refuse", "us", True)),
        ({**EU, "PRIVSDK_ATTEST": "azure:deployment=regional_eu"},
         "https://m.swedencentral.models.ai.azure.com/models/chat/completions", Asks("chat", "mistral-large-2411"),
         ("allow", "eu", True)),
        ({**EU, "PRIVSDK_ATTEST": "azure:deployment=regional_eu"},
         "https://m.westeurope.models.ai.azure.com/models/chat/completions", Asks("chat", "mistral-large-2411"),
         ("allow", "eu", True)),
        ({**EU, "PRIVSDK_ATTEST": "azure:deployment=regional_eu"},  # EEA, not EU: the stricter reading
         "https://m.norwayeast.models.ai.azure.com/models/chat/completions", Asks("chat", "mistral-large-2411"),
         ("refuse", None, True)),
        ({**EU, "PRIVSDK_ATTEST": "azure:deployment=regional_eu"},
         "https://m.uksouth.models.ai.azure.com/models/chat/completions", Asks("chat", "mistral-large-2411"),
         ("refuse", "uk", True)),
        ({**EU},  # no deployment type attested: a Global deployment may process anywhere
         "https://m.swedencentral.models.ai.azure.com/models/chat/completions", Asks("chat", "mistral-large-2411"),
         ("refuse", "eu", True)),
        ({"PRIVSDK_REQUIRE": "region=us", "PRIVSDK_ATTEST": "azure:deployment=regional_us"},
         "https://l.eastus2.models.ai.azure.com/v1/chat/completions", Asks("chat", "Meta-Llama-3.1-70B-Instruct"),
         ("allow", "us", True)),
        ({**EU, "PRIVSDK_ATTEST": "azure:deployment=regional_eu"},  # a resource host shows no region: it holds
         "https://r.services.ai.azure.com/models/chat/completions", Asks("chat", "mistral-large-2411"),
         ("allow", None, False)),
        # Vertex AI behind a declared gateway: the path's location is where Vertex serves the request.
        ({**EU, "PRIVSDK_ATTEST": "vertex:region=eu", "PRIVSDK_ENDPOINTS": f"{GATEWAY}=vertex.gemini"},
         f"{GATEWAY}/v1beta1/projects/p/locations/us-central1/x", _vertex("us-central1"), ("refuse", "us", True)),
        ({**EU, "PRIVSDK_ATTEST": "vertex:region=eu", "PRIVSDK_ENDPOINTS": f"{GATEWAY}=vertex.gemini"},
         f"{GATEWAY}/v1beta1/projects/p/locations/europe-west4/x", _vertex("europe-west4"), ("allow", "eu", True)),
        ({**EU, "PRIVSDK_ATTEST": "vertex:region=eu", "PRIVSDK_ENDPOINTS": f"{GATEWAY}=vertex.gemini"},
         f"{GATEWAY}/v1beta1/projects/p/locations/global/x", _vertex("global"), ("refuse", None, True)),
        # Bedrock behind a declared gateway: the Region the request is signed for (or its model ARN's) serves it.
        ({**EU, "PRIVSDK_ATTEST": "bedrock:region=eu", "PRIVSDK_ENDPOINTS": "https://llm-gw.corp=bedrock.runtime"},
         "https://llm-gw.corp/model/x/converse", Asks("chat", CLAUDE, location="us-east-1"), ("refuse", "us", True)),
        ({**EU, "PRIVSDK_ATTEST": "bedrock:region=eu", "PRIVSDK_ENDPOINTS": "https://llm-gw.corp=bedrock.runtime"},
         "https://llm-gw.corp/model/x/converse", Asks("chat", CLAUDE, location="eu-west-1"), ("allow", "eu", True)),
        ({**EU, "PRIVSDK_ATTEST": "bedrock:region=eu", "PRIVSDK_ENDPOINTS": "https://llm-gw.corp=bedrock.runtime"},
         "https://llm-gw.corp/model/x/converse", Asks("chat", CLAUDE), ("allow", None, False)),  # names none
        # A vendor's own host declared (a target's endpoint) still shows its region; the path must agree with it.
        ({**EU, "PRIVSDK_ATTEST": "vertex:region=eu",
          "PRIVSDK_ENDPOINTS": "https://europe-west4-aiplatform.googleapis.com=vertex.gemini"},
         "https://europe-west4-aiplatform.googleapis.com/v1/projects/p/locations/europe-west4/x",
         _vertex("europe-west4"), ("allow", "eu", True)),
        ({**EU, "PRIVSDK_ATTEST": "vertex:region=eu",
          "PRIVSDK_ENDPOINTS": "https://europe-west4-aiplatform.googleapis.com=vertex.gemini"},
         "https://europe-west4-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/x",
         _vertex("us-central1"), ("refuse", None, True)),
    ],
)  # fmt: skip
def test_where_a_request_is_served_decides_its_geography(
    catalogue: Catalogue, env: dict[str, str], url: str, asks: Asks, expected: tuple[str, str | None, bool]
) -> None:
    assert _verdict(env, catalogue, url, asks) == expected


@pytest.mark.parametrize(
    ("region", "geo"),
    [
        ("eastus", "us"), ("eastus2", "us"), ("westus3", "us"), ("northcentralus", "us"), ("westcentralus", "us"),
        ("westeurope", "eu"), ("northeurope", "eu"), ("swedencentral", "eu"), ("francecentral", "eu"),
        ("germanywestcentral", "eu"), ("italynorth", "eu"), ("polandcentral", "eu"), ("spaincentral", "eu"),
        ("norwayeast", None), ("uksouth", "uk"), ("ukwest", "uk"), ("switzerlandnorth", "ch"),
        ("switzerlandwest", "ch"), ("canadacentral", "ca"), ("australiaeast", "au"), ("japaneast", "jp"),
        ("koreacentral", "kr"), ("centralindia", "in"), ("southeastasia", "sg"), ("eastasia", None),
        ("uaenorth", "ae"), ("brazilsouth", "br"), ("brazilus", None), ("qatarcentral", None), ("mars", None),
    ],
)  # fmt: skip
def test_azure_region_geographies(catalogue: Catalogue, region: str, geo: str | None) -> None:
    assert geography("azure_region", region) == geo
    host = f"acme.{region}.models.ai.azure.com"
    place = catalogue_place(catalogue, "https", host, f"https://{host}")
    assert place is not None and (place.geography, place.shows_geography, place.region) == (geo, True, region)


def test_an_azure_target_whose_region_contradicts_its_deployment_type(write_config, catalogue: Catalogue) -> None:  # type: ignore[no-untyped-def]
    path = write_config(
        '[targets.m]\noffering = "azure.foundry"\nmodel = "mistral-large-2411"\nregion = "eastus2"\n'
        'attest = ["deployment=regional_eu"]\n[tenants.t.classes]\ndefault = ["region=eu"]\n'
    )
    with pytest.raises(ConfigError, match=r"declares region 'eastus2' \(us\) but attests deployment=regional_eu"):
        load_policy({"PRIVSDK_CONFIG": str(path)}, catalogue)


@pytest.mark.parametrize("where", ["target", "account"])
@pytest.mark.parametrize("attest", ["deployment=regional_eu", "deployment=data_zone_eu"])
def test_an_azure_openai_targets_region_is_an_azure_region(  # type: ignore[no-untyped-def]
    write_config, catalogue: Catalogue, where: str, attest: str
) -> None:
    """Azure OpenAI's hosts name no region, so its target's "eastus" was read as a geography label (none), and an
    East US target attesting an EU deployment type loaded; the same on azure.foundry was an error."""
    assert region_kind(catalogue, "azure.openai") == "azure_region"
    account = f'[attest]\nazure = ["{attest}"]\n' if where == "account" else ""
    own = f'attest = ["{attest}"]\n' if where == "target" else ""
    target = (
        '[targets.a]\noffering = "azure.openai"\nmodel = "gpt-4o"\nendpoint = "https://contoso.openai.azure.com"\n'
        'deployment = "eu-dep"\nregion = "{}"\n'
    )
    tenant = '[tenants.t.classes]\ndefault = ["region=eu"]\n'
    path = write_config(account + target.format("eastus") + own + tenant)
    with pytest.raises(ConfigError, match=rf"declares region 'eastus' \(us\) but attests {attest}"):
        load_policy({"PRIVSDK_CONFIG": str(path)}, catalogue)
    path = write_config(account + target.format("westeurope") + own + tenant)
    assert load_policy({"PRIVSDK_CONFIG": str(path)}, catalogue).targets["a"].region == "westeurope"


# -- the real SDKs ------------------------------------------------------------------------------------------------

US_HOST = "acme.eastus2.models.ai.azure.com"
EU_HOST = "acme.swedencentral.models.ai.azure.com"
RESOURCE_HOST = "contoso.openai.azure.com"  # an Azure OpenAI resource: the host shows no region
MSG: Any = [{"role": "user", "content": "Jane Roe, born 1970"}]


class _Foundry:
    """An Azure AI Foundry serverless endpoint: Cohere's API (the cohere SDK), Mistral's Azure route (mistralai's
    MistralAzure) and OpenAI's chat completions (the openai SDK, for Llama)."""

    def __init__(self) -> None:
        self.cohere, self.mistral, self.openai = CohereApp(), MistralApp(), OpenAIWire(key="k")

    def __call__(self, request: Recorded) -> Reply:
        if request.path.startswith("/v2/"):
            return self.cohere(request)
        return (self.mistral if request.path.startswith("/models/") else self.openai)(request)


@pytest.fixture
def foundry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """A TLS loopback server whose certificate names Foundry hosts in East US 2 and Sweden Central, reached through
    an HTTPS proxy: each SDK sends to the real host name."""
    import ssl

    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(US_HOST, EU_HOST, RESOURCE_HOST).configure_cert(context)
    ca_file = tmp_path / "foundry-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with LoopbackServer(_Foundry(), tls=context) as server, ConnectProxy(server.url) as proxy:
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        monkeypatch.setenv("PRIVSDK_USAGE", "none")
        yield server
    assert server.errors == []


def _foundry_calls(host: str) -> dict[str, Any]:
    from mistralai.azure.client import MistralAzure

    cohere = privsdk.cohere.ClientV2(api_key="k", base_url=f"https://{host}")
    mistral = privsdk.guard(MistralAzure(api_key="k", server_url=f"https://{host}"))
    openai = privsdk.openai.OpenAI(api_key="k", base_url=f"https://{host}/v1", max_retries=0)
    return {
        "cohere": lambda: cohere.chat(model="Cohere-command-a", messages=MSG),
        "mistral": lambda: mistral.chat.complete(model="mistral-large-2411", messages=MSG),
        "openai": lambda: openai.chat.completions.create(model="Meta-Llama-3.1-70B-Instruct", messages=MSG),
    }


def test_an_azure_foundry_host_in_a_us_region_is_refused_under_region_eu_whatever_is_attested(
    foundry: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIVSDK_REQUIRE", "region=eu")
    monkeypatch.setenv("PRIVSDK_ATTEST", "azure:deployment=regional_eu")
    Guard.reset_default()
    for sdk, call in _foundry_calls(US_HOST).items():
        with pytest.raises(privsdk.PolicyViolation, match="region=eu"):
            call()
        assert foundry.requests == [], sdk
    for call in _foundry_calls(EU_HOST).values():
        call()
    assert [r.path for r in foundry.requests] == ["/v2/chat", "/models/chat/completions", "/v1/chat/completions"]


def test_explain_judges_a_foundry_request_as_the_guard_in_its_sdk_does(
    foundry: LoopbackServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """explain --url read every request to a Foundry host in OpenAI's protocol: the cohere and mistralai SDKs'
    requests, which their guards send, it refused. With --sdk it reads each as that SDK's guard does."""
    from privsdk.cli import main

    monkeypatch.setenv("PRIVSDK_REQUIRE", "region=eu")
    monkeypatch.setenv("PRIVSDK_ATTEST", "azure:deployment=regional_eu")
    Guard.reset_default()
    for call in _foundry_calls(EU_HOST).values():
        call()
    paths = [r.path for r in foundry.requests]
    assert paths == ["/v2/chat", "/models/chat/completions", "/v1/chat/completions"]
    models = ["Cohere-command-a", "mistral-large-2411", "Meta-Llama-3.1-70B-Instruct"]
    for sdk, path, model in zip(["cohere", "mistralai", "openai"], paths, models, strict=True):
        url = f"https://{EU_HOST}{path}"
        assert main(["explain", "--url", url, "--sdk", sdk, "--model", model]) == 0, capsys.readouterr().out
        assert main(["explain", "--url", url, "--model", model]) == 3
        assert "pass --sdk" in capsys.readouterr().out


def test_an_azure_openai_target_in_a_us_region_is_refused_under_region_eu_at_the_call(
    foundry: LoopbackServer, catalogue: Catalogue
) -> None:
    """A resource host shows no region: the target's own region is what the decision has. A policy built in code
    (not checked as a loaded one is) with an East US target attesting regional_eu was allowed, and sent."""
    from openai import AzureOpenAI
    from privsdk_openai.dropin import guard_client

    def client(region: str) -> Any:
        target = Target(
            "a",
            "azure.openai",
            "gpt-4o",
            attest=frozenset({"azure:deployment=regional_eu"}),
            endpoint=f"https://{RESOURCE_HOST}",
            deployment="eu-dep",
            region=region,
        )
        tenant = Tenant("t", {"default": parse_requirements(["region=eu"])})
        guard = Guard(Policy({"t": tenant}, "t", {"a": target}), catalogue=catalogue, recorder=open_recorder("none"))
        sdk = AzureOpenAI(
            api_key="k", azure_endpoint=f"https://{RESOURCE_HOST}", api_version="2024-10-21", max_retries=0
        )
        return guard_client(sdk, guard=guard)

    with pytest.raises(privsdk.PolicyViolation, match=r"declares region 'eastus' \(us\) but attests"):
        client("eastus").chat.completions.create(model="eu-dep", messages=MSG)
    assert foundry.requests == []
    assert client("westeurope").chat.completions.create(model="eu-dep", messages=MSG).choices
    assert [r.path for r in foundry.requests] == ["/openai/deployments/eu-dep/chat/completions"]


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """A loopback Vertex AI declared as the app's gateway to Vertex (a Private Service Connect endpoint, a proxy)."""
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION",
                 "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_HTTP_CLIENT", "GOOGLE_GENAI_API_VERSION"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    with LoopbackServer(GeminiApp()) as server:
        monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{server.url}=vertex.gemini")
        monkeypatch.setenv("PRIVSDK_USAGE", "none")
        monkeypatch.setenv("PRIVSDK_REQUIRE", "region=eu")
        Guard.reset_default()
        yield server
    assert server.errors == []


def test_the_location_a_vertex_path_names_behind_a_gateway_is_where_it_is_served(
    gateway: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.genai import types
    from google.oauth2.credentials import Credentials

    from privsdk import genai

    monkeypatch.setenv("PRIVSDK_ATTEST", "vertex:region=eu")
    Guard.reset_default()

    def client(location: str) -> Any:
        return genai.Client(
            vertexai=True,
            project="acme-prod",
            location=location,
            credentials=Credentials(token=TOKEN),  # type: ignore[no-untyped-call]
            http_options=types.HttpOptions(base_url=gateway.url),
        )

    us, eu = client("us-central1"), client("europe-west4")  # kept: a client closes its transport when collected
    with pytest.raises(privsdk.PolicyViolation, match="region=eu"):
        us.models.generate_content(model=GEMINI, contents="Jane Roe")
    assert gateway.requests == []
    assert eu.models.generate_content(model=GEMINI, contents="Jane Roe").text
    assert [r.path.split("/")[5] for r in gateway.requests] == ["europe-west4"]


@pytest.mark.usefixtures("no_machine_aws")
def test_the_region_a_bedrock_request_is_signed_for_behind_a_gateway_is_where_it_is_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import privsdk.boto3 as pboto3

    with LoopbackServer(BedrockWire()) as server:
        monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{server.url}=bedrock.runtime")
        monkeypatch.setenv("PRIVSDK_USAGE", "none")
        monkeypatch.setenv("PRIVSDK_REQUIRE", "region=eu")
        monkeypatch.setenv("PRIVSDK_ATTEST", "bedrock:region=eu")
        Guard.reset_default()
        once = Config(retries={"total_max_attempts": 1, "mode": "standard"})
        keys = {"aws_access_key_id": "AKIDFAKE", "aws_secret_access_key": "fake-secret", "config": once}
        messages = [{"role": "user", "content": [{"text": "Jane Roe"}]}]
        us = pboto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=server.url, **keys)
        with pytest.raises(privsdk.PolicyViolation, match="region=eu"):
            us.converse(modelId=CLAUDE, messages=messages)
        assert server.requests == []
        eu = pboto3.client("bedrock-runtime", region_name="eu-west-1", endpoint_url=server.url, **keys)
        assert eu.converse(modelId=CLAUDE, messages=messages)["output"]
        assert len(server.requests) == 1 and server.errors == []


REGION_REROUTE = """
default_tenant = "eu"
[attest]
openai = ["zdr", "region=eu"]
[targets.local]
offering = "selfhosted.vllm"
model = "llama-3.1-8b-instruct"
endpoint = "{local}/v1"
attest = ["region=eu"]
[targets.oa-eu]
offering = "openai.api"
model = "gpt-4o-mini"
region = "eu"
[tenants.eu]
on_violation = "reroute"
classes.default = ["region=eu"]
reroute."openai/*" = ["local"]
"""


def test_a_decision_by_name_sees_the_host_the_sdk_will_send_to_and_reroutes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``openai:region=eu`` holds only where the request goes to a host that shows the EU: a target that names no
    region goes to ``api.openai.com``, which shows none. Decided by its name (privsdk.Client, ``explain``), it was
    allowed, then every request the Client sent was refused by the guard, and the tenant's reroute never ran."""
    from privsdk.decision import decide

    with LoopbackServer(OpenAIWire(key="local")) as local:
        config = tmp_path / "privsdk.toml"
        config.write_text(REGION_REROUTE.format(local=local.url))
        monkeypatch.setenv("PRIVSDK_CONFIG", str(config))
        monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
        policy = load_policy({"PRIVSDK_CONFIG": str(config)})
        decision = decide(policy, "openai/gpt-4o-mini")
        assert (decision.outcome, decision.chosen) == ("reroute", "local"), decision.reason
        assert "unmet: region=eu" in (decision.reason or "")
        assert decide(policy, "oa-eu").outcome == "allow"  # region = "eu": sent to eu.api.openai.com
        client = privsdk.Client(
            environ={"PRIVSDK_CONFIG": str(config)},
            usage="none",
            credentials={"openai": {"api_key": "sk-x"}, "selfhosted": {"api_key": "local"}},
        )
        answer = client.chat("openai/gpt-4o-mini", "hello", max_attempts=1)
        client.close()
        assert answer.decision is not None
        assert (answer.decision.outcome, answer.decision.chosen, len(local.requests)) == ("reroute", "local", 1)
        # Pointed at a declared gateway instead, the SDK sends there, where the host shows nothing: as declared.
        gateway = load_policy({"PRIVSDK_CONFIG": str(config), "PRIVSDK_ENDPOINTS": "https://gw.corp=openai.api"})
        assert decide(gateway, "openai/gpt-4o-mini").outcome == "allow"
