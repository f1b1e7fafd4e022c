"""Credentials privsdk gives an adapter are the whole account: nothing of the deployment's environment completes them.

A tenant's own ``credentials.<vendor>`` (or ``Client(credentials=)``) name an account of their own, judged on
that account's attestations. Two ways the vendor SDKs would still reach the deployment's account, each checked
here with the real SDK over real HTTP to a loopback server, and asserted on what the server received:

- ``OPENAI_CUSTOM_HEADERS`` (read by the openai SDK) adds its lines to every request: the deployment's key,
  organization and project would replace or join the tenant's. With credentials given, no account header of the
  environment's reaches the request, in any spelling; without, the environment's setup applies as before.
- Credentials that lack a key the target needs (a tenant whose ``credentials.cohere`` holds only AWS keys, calling
  ``cohere.saas``) were completed from the environment (``CO_API_KEY``, ``OPENAI_API_KEY``, the AWS chain, ...).
  Now opening the target is a ``ConfigError`` naming the vendor and the key, and nothing is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from privsdk.adapter import AdapterOptions, open_adapter
from privsdk.async_client import AsyncClient
from privsdk.client import Client
from privsdk.errors import ConfigError
from privsdk.policy import Target
from privsdk.types import ChatRequest, Message
from tests.wire.bedrock import BedrockWire, sigv4
from tests.wire.cohere import CohereApp, ConnectProxy, aws_tls_context
from tests.wire.mistral import MistralApp
from tests.wire.openai import OpenAIWire
from tests.wire.server import App, LoopbackServer, Recorded, Reply
from tests.wire.vertex import API_KEY as GEMINI_KEY
from tests.wire.vertex import GeminiApp

#: boto3 sees none of the machine's AWS configuration (tests.conftest.no_machine_aws).
pytestmark = pytest.mark.usefixtures("no_machine_aws")

TENANT_KEY = "sk-ACME-KEY"
APP_KEY = "sk-APP-KEY"
#: The deployment's environment: its key, organization and project, and an Azure key, as OPENAI_CUSTOM_HEADERS lines.
ACCOUNT_LINES = {
    "canonical": f"Authorization: Bearer {APP_KEY}\nOpenAI-Project: proj_APP\nOpenAI-Organization: org_APP\n"
    f"api-key: {APP_KEY}\nOcp-Apim-Subscription-Key: {APP_KEY}",
    "lower": f"authorization: Bearer {APP_KEY}\nopenai-project: proj_APP\nopenai-organization: org_APP\n"
    f"api-key: {APP_KEY}\nocp-apim-subscription-key: {APP_KEY}",
    "upper": f"AUTHORIZATION: Bearer {APP_KEY}\nOPENAI-PROJECT: proj_APP\nOPENAI-ORGANIZATION: org_APP\n"
    f"API-KEY: {APP_KEY}\nOCP-APIM-SUBSCRIPTION-KEY: {APP_KEY}",
}
#: A line of OPENAI_CUSTOM_HEADERS that names no account: it still applies.
OTHER_LINE = "X-Team: search"
#: ... and a gateway's key (Azure API Management's), which names an account as a key does.
ACCOUNT_HEADERS = ("authorization", "api-key", "openai-organization", "openai-project", "ocp-apim-subscription-key")


def _accepting(app: OpenAIWire, keys: set[str]) -> App:
    """``app``, taking any of ``keys`` (the tenant's, the deployment's) in either header as its own key, as each
    account's real server would: a request on the wrong account still succeeds, and only what the server
    recorded (every header as sent) tells which account it named."""

    def serve(request: Recorded) -> Reply:
        sent = {request.headers.get("api-key"), request.headers.get("authorization", "").removeprefix("Bearer ")}
        headers = {k: v for k, v in request.headers.items() if k not in ("authorization", "api-key")}
        if sent & keys:
            if request.path.startswith("/openai/deployments/") and not app.entra:
                headers["api-key"] = app.key
            else:
                headers["authorization"] = f"Bearer {app.key}"
        return app(request._replace(headers=headers))

    return serve


def _client_args(tmp_path: Path, policy: str, env: dict[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
    config = tmp_path / "privsdk.toml"
    config.write_text(policy, encoding="utf-8")
    return {"environ": {"PRIVSDK_CONFIG": str(config), **(env or {})}, "usage": "none", "timeout": 5.0, **kwargs}


def _client(tmp_path: Path, policy: str, *, env: dict[str, str] | None = None, **kwargs: Any) -> Client:
    return Client(**_client_args(tmp_path, policy, env, **kwargs))


def _account(request: Recorded) -> dict[str, str]:
    return {name: request.headers[name] for name in ACCOUNT_HEADERS if name in request.headers}


@pytest.fixture
def openai_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(_accepting(OpenAIWire(key="k"), {TENANT_KEY, APP_KEY})) as server:
        yield server
    assert server.errors == []


# --- Bug 1: OPENAI_CUSTOM_HEADERS never names another account than the credentials given ------------------------


@pytest.mark.parametrize("spelling", ACCOUNT_LINES)
@pytest.mark.parametrize("api", ["chat_completions", "responses"])
def test_a_tenants_own_openai_key_is_the_only_account_its_requests_name(
    openai_server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelling: str, api: str
) -> None:
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", f"{ACCOUNT_LINES[spelling]}\n{OTHER_LINE}")
    policy = f"""
[targets.mini]
offering = "openai.api"
model = "gpt-4o-mini"
endpoint = "{openai_server.url}/v1"
options.api = "{api}"

[tenants.acme]
classes.default = ["zdr"]
attest = {{openai = ["zdr"]}}
credentials = {{openai = {{api_key = "ACME_OPENAI_KEY"}}}}

[tenants.globex]
classes.default = ["zdr"]
attest = {{openai = ["zdr"]}}
credentials = {{openai = {{api_key = "ACME_OPENAI_KEY", organization = "GLOBEX_ORG", project = "GLOBEX_PROJECT"}}}}
"""
    env = {"ACME_OPENAI_KEY": TENANT_KEY, "GLOBEX_ORG": "org_GLOBEX", "GLOBEX_PROJECT": "proj_GLOBEX"}
    with _client(tmp_path, policy, env=env) as client:
        client.chat("mini", "hello", tenant="acme")
        list(client.chat("mini", "hello", tenant="acme", stream=True))
        client.embed("mini", ["hello"], tenant="acme")
        client.chat("mini", "hello", tenant="globex")

    async def from_async_client() -> None:  # the adapter's async SDK client is built with the same headers
        async with AsyncClient(**_client_args(tmp_path, policy, env)) as aclient:
            await aclient.chat("mini", "hello", tenant="acme")

    asyncio.run(from_async_client())
    acme = [*openai_server.requests[:3], openai_server.requests[4]]
    globex = openai_server.requests[3]
    assert len(openai_server.requests) == 5
    for sent in acme:
        assert _account(sent) == {"authorization": f"Bearer {TENANT_KEY}"}
        assert sent.headers["x-team"] == "search"  # a line that names no account still applies
    assert _account(globex) == {
        "authorization": f"Bearer {TENANT_KEY}",
        "openai-organization": "org_GLOBEX",
        "openai-project": "proj_GLOBEX",
    }


def test_without_credentials_of_its_own_the_deployments_custom_headers_apply_as_before(
    openai_server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", APP_KEY)
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", ACCOUNT_LINES["canonical"])
    policy = f"""
[attest]
openai = ["zdr"]

[targets.mini]
offering = "openai.api"
model = "gpt-4o-mini"
endpoint = "{openai_server.url}/v1"
"""
    with _client(tmp_path, policy) as client:
        client.chat("mini", "hello")
    (sent,) = openai_server.requests
    assert _account(sent) == {
        "authorization": f"Bearer {APP_KEY}",
        "openai-organization": "org_APP",
        "openai-project": "proj_APP",
        "api-key": APP_KEY,
        "ocp-apim-subscription-key": APP_KEY,
    }


AZURE_TARGETS = {
    "azure.openai key": ('offering = "azure.openai"\nmodel = "gpt-4o"\napi_version = "2024-10-21"', "api_key"),
    "azure.openai entra": (
        'offering = "azure.openai"\nmodel = "gpt-4o"\napi_version = "2024-10-21"\noptions.auth = "entra"',
        "azure_ad_token",
    ),
    "azure.foundry": ('offering = "azure.foundry"\nmodel = "Mistral-Large-2411"', "api_key"),
}


@pytest.mark.parametrize("kind", AZURE_TARGETS)
def test_a_tenants_own_azure_credential_is_the_only_one_its_requests_carry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", f"{ACCOUNT_LINES['lower']}\n{OTHER_LINE}")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", APP_KEY)
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", APP_KEY)
    target, key = AZURE_TARGETS[kind]
    entra = key == "azure_ad_token"
    with LoopbackServer(_accepting(OpenAIWire(key="k", entra=entra), {TENANT_KEY, APP_KEY})) as server:
        endpoint = f"{server.url}/openai/v1" if kind == "azure.foundry" else server.url
        policy = f"""
[targets.az]
{target}
endpoint = "{endpoint}"

[tenants.acme]
classes.default = ["no_training"]
credentials = {{azure = {{{key} = "ACME_AZURE"}}}}
"""
        with _client(tmp_path, policy, env={"ACME_AZURE": TENANT_KEY}) as client:
            client.chat("az", "hello", tenant="acme")
            client.embed("az", ["hello"], tenant="acme")
        assert server.errors == []
    assert len(server.requests) == 2
    for sent in server.requests:
        if kind == "azure.openai key":
            assert _account(sent) == {"api-key": TENANT_KEY}
        else:
            assert _account(sent) == {"authorization": f"Bearer {TENANT_KEY}"}
        assert sent.headers["x-team"] == "search"


@pytest.mark.parametrize("credentials", [{}, {"api_key": "local-key"}])
def test_a_self_hosted_server_never_gets_an_openai_account_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, credentials: dict[str, str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", APP_KEY)
    monkeypatch.setenv("OPENAI_ORG_ID", "org_APP_VAR")
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", f"{ACCOUNT_LINES['upper']}\n{OTHER_LINE}")
    key = credentials.get("api_key", "unused")
    with LoopbackServer(_accepting(OpenAIWire(key=key), {key, APP_KEY})) as server:
        policy = f"""
[targets.local]
offering = "selfhosted.vllm"
model = "llama-3.1-8b-instruct"
endpoint = "{server.url}/v1"
"""
        with _client(tmp_path, policy, credentials={"selfhosted": credentials}) as client:
            client.chat("local", "hello")
        assert server.errors == []
    (sent,) = server.requests
    assert _account(sent) == {"authorization": f"Bearer {key}"}
    assert sent.headers["x-team"] == "search"


# --- Bug 2: credentials given that lack a key the target needs are an error, never the environment's key ---------


def test_a_tenant_with_only_aws_keys_for_cohere_never_calls_the_platform_on_the_deployments_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CO_API_KEY", "co-DEPLOYMENT-KEY")
    monkeypatch.setenv("COHERE_API_KEY", "co-DEPLOYMENT-KEY-2")
    with LoopbackServer(CohereApp()) as server:
        policy = f"""
[attest]
cohere = ["plan=paid", "training_opt_out"]

[targets.co]
offering = "cohere.saas"
model = "command-r-plus"
endpoint = "{server.url}"

[tenants.other]
classes.default = ["no_training"]

[tenants.acme]
classes.default = ["no_training"]
attest = {{cohere = ["plan=paid", "training_opt_out"]}}
credentials = {{cohere = {{aws_access_key_id = "ACME_AWS_ID", aws_secret_access_key = "ACME_AWS_SECRET"}}}}
"""
        env = {"ACME_AWS_ID": "AKIDACME", "ACME_AWS_SECRET": "acme-secret"}
        with _client(tmp_path, policy, env=env) as client:
            with pytest.raises(ConfigError) as raised:
                client.chat("co", "hello", tenant="acme")
            assert server.requests == []
            client.chat("co", "hello", tenant="other")  # the deployment's own account: its variable, as before
        assert server.errors == []
    message = str(raised.value)
    assert "cohere" in message and "'api_key'" in message and "credentials.cohere" in message
    assert "co-DEPLOYMENT" not in message and "acme-secret" not in message
    (sent,) = server.requests
    assert sent.headers["authorization"] == "Bearer co-DEPLOYMENT-KEY"


@pytest.mark.parametrize(
    ("vendor", "make_app", "target", "own", "variables", "missing"),
    [
        pytest.param(
            "openai",
            lambda: OpenAIWire(key=APP_KEY),
            'offering = "openai.api"\nmodel = "gpt-4o-mini"',
            {"organization": "org_ACME", "project": "proj_ACME"},
            {"OPENAI_API_KEY": APP_KEY},
            "api_key",
            id="openai organization and project without api_key",
        ),
        pytest.param(
            "cohere",
            CohereApp,
            'offering = "cohere.azure"\nmodel = "Cohere-command-a"',
            {"api_key": "co-ACME"},
            {"AZURE_API_KEY": APP_KEY},
            "azure_api_key",
            id="cohere.azure with the platform key only",
        ),
        pytest.param(
            "mistral",
            MistralApp,
            'offering = "mistral.api"\nmodel = "mistral-small-latest"',
            {"azure_api_key": "az-ACME"},
            {"MISTRAL_API_KEY": APP_KEY},
            "api_key",
            id="mistral.api with the Azure key only",
        ),
        pytest.param(
            "mistral",
            MistralApp,
            'offering = "mistral.azure"\nmodel = "mistral-large-2411"',
            {"api_key": "mi-ACME"},
            {"AZURE_API_KEY": APP_KEY},
            "azure_api_key",
            id="mistral.azure with the platform key only",
        ),
    ],
)
def test_a_tenants_own_credentials_without_the_targets_key_are_an_error_and_nothing_is_sent(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    vendor: str,
    make_app: Callable[[], App],
    target: str,
    own: dict[str, str],
    variables: dict[str, str],
    missing: str,
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    names = {key: f"ACME_{key.upper()}" for key in own}
    written = ", ".join(f'{key} = "{name}"' for key, name in names.items())
    with LoopbackServer(make_app()) as server:
        endpoint = f"{server.url}/v1" if vendor == "openai" else server.url
        policy = f"""
[targets.t]
{target}
endpoint = "{endpoint}"

[tenants.acme]
classes.default = []
credentials = {{{vendor} = {{{written}}}}}
"""
        env = {names[key]: value for key, value in own.items()}
        with _client(tmp_path, policy, env=env) as client, pytest.raises(ConfigError) as raised:
            client.chat("t", "hello", tenant="acme")
    assert server.requests == []
    message = str(raised.value)
    assert vendor in message and repr(missing) in message and f"credentials.{vendor}" in message
    for value in (*variables.values(), *own.values()):
        assert value not in message


@pytest.mark.parametrize(
    ("vendor", "make_app", "target", "given", "variables", "missing"),
    [
        pytest.param(
            "azure",
            lambda: OpenAIWire(key=APP_KEY),
            'offering = "azure.openai"\nmodel = "gpt-4o"\napi_version = "2024-10-21"',
            {"api_key": ""},
            {"AZURE_OPENAI_API_KEY": APP_KEY},
            "api_key",
            id="azure.openai",
        ),
        pytest.param(
            "azure",
            lambda: OpenAIWire(key=APP_KEY, entra=True),
            'offering = "azure.openai"\nmodel = "gpt-4o"\napi_version = "2024-10-21"\noptions.auth = "entra"',
            {"azure_ad_token": ""},
            {"AZURE_OPENAI_AD_TOKEN": APP_KEY},
            "azure_ad_token",
            id="azure.openai entra",
        ),
        pytest.param(
            "gemini",
            GeminiApp,
            'offering = "gemini.api"\nmodel = "gemini-2.5-flash"',
            {"api_key": ""},
            {"GOOGLE_API_KEY": GEMINI_KEY},
            "api_key",
            id="gemini.api",
        ),
        pytest.param(
            "vertex",
            GeminiApp,
            'offering = "vertex.gemini"\nmodel = "gemini-2.5-flash"\nproject = "p"\nregion = "europe-west4"',
            {"access_token": ""},
            {"GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/deployment-adc.json"},
            "access_token",
            id="vertex.gemini",
        ),
    ],
)
def test_a_credential_given_empty_is_missing_and_never_the_environments(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    vendor: str,
    make_app: Callable[[], App],
    target: str,
    given: dict[str, str],
    variables: dict[str, str],
    missing: str,
) -> None:
    """Client(credentials=) given an empty key: the SDK would have read its own variable in its place."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with LoopbackServer(make_app()) as server:
        policy = f'[targets.t]\n{target}\nendpoint = "{server.url}"\n'
        with _client(tmp_path, policy, credentials={vendor: given}) as client, pytest.raises(ConfigError) as raised:
            client.chat("t", "hello")
    assert server.requests == []
    message = str(raised.value)
    assert vendor in message and repr(missing) in message
    for value in variables.values():
        assert value not in message


# --- AWS: a key pair given is the whole AWS identity --------------------------------------------------------------

REGION = "us-east-1"
COHERE_BEDROCK_MODEL = "cohere.command-r-plus-v1:0"


@pytest.fixture
def aws_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """A TLS server for the AWS hosts, reached through an HTTPS proxy: the cohere SDK builds the AWS URL itself."""
    context, ca_file = aws_tls_context(tmp_path, REGION)
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "https_proxy", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    with LoopbackServer(CohereApp(), tls=context) as server, ConnectProxy(server.url) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        yield server
    assert server.errors == []


def _deployment_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The deployment's AWS identity, every way boto3 finds one: variables, a profile, a Bedrock API key."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDDEPLOYMENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "deployment-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "deployment-session")
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "deployment-bedrock-api-key")
    profiles = tmp_path / "aws-credentials"
    profiles.write_text(
        "[deployment]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n"
        "aws_session_token = profile-session\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(profiles))
    monkeypatch.setenv("AWS_PROFILE", "deployment")


def test_a_tenant_with_only_a_platform_key_never_calls_cohere_on_bedrock_with_the_deployments_aws_identity(
    aws_loopback: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _deployment_aws(monkeypatch, tmp_path)
    policy = f"""
[targets.co-bedrock]
offering = "cohere.bedrock"
model = "{COHERE_BEDROCK_MODEL}"
region = "{REGION}"

[tenants.acme]
classes.default = []
credentials = {{cohere = {{api_key = "ACME_CO_KEY"}}}}
"""
    with _client(tmp_path, policy, env={"ACME_CO_KEY": "co-ACME"}) as client, pytest.raises(ConfigError) as raised:
        client.chat("co-bedrock", "hello", tenant="acme")
    assert aws_loopback.requests == []
    message = str(raised.value)
    assert "cohere" in message and "'aws_access_key_id'" in message
    assert "AKIDDEPLOYMENT" not in message and "co-ACME" not in message


def test_a_cohere_aws_key_pair_given_is_signed_with_as_it_is_and_no_session_token_of_the_environments(
    aws_loopback: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("privsdk.outbound.wire.bedrock", reason="the guard reads Bedrock requests with boto3 support")
    _deployment_aws(monkeypatch, tmp_path)
    monkeypatch.setenv("PRIVSDK_USAGE", "none")
    target = Target("co-bedrock", "cohere.bedrock", COHERE_BEDROCK_MODEL, region=REGION)
    keys = {"aws_access_key_id": "AKIDGLOBEX", "aws_secret_access_key": "globex-secret"}
    adapter = open_adapter(target, AdapterOptions(timeout=5.0, credentials=keys))
    try:
        adapter.chat(ChatRequest((Message("user", "hello"),)), timeout=5.0)
    finally:
        adapter.close()
    (sent,) = aws_loopback.requests
    assert sent.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDGLOBEX/")
    assert "x-amz-security-token" not in sent.headers


@pytest.mark.parametrize(
    ("given", "signed_by"),
    [
        ({"aws_access_key_id": "AKIDTENANT", "aws_secret_access_key": "tenant-secret"}, "AKIDTENANT"),
        ({"aws_access_key_id": "", "aws_secret_access_key": ""}, None),
    ],
    ids=["key pair", "empty key pair"],
)
def test_bedrock_credentials_given_never_take_the_deployments_aws_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: dict[str, str], signed_by: str | None
) -> None:
    _deployment_aws(monkeypatch, tmp_path)
    with LoopbackServer(BedrockWire()) as server:
        policy = f"""
[targets.claude]
offering = "bedrock.runtime"
model = "anthropic.claude-3-haiku-20240307-v1:0"
region = "{REGION}"
endpoint = "{server.url}"
"""
        with _client(tmp_path, policy, credentials={"bedrock": given}) as client:
            if signed_by is None:
                with pytest.raises(ConfigError, match="aws_access_key_id") as raised:
                    client.chat("claude", "hello")
                assert "AKIDDEPLOYMENT" not in str(raised.value)
            else:
                client.chat("claude", "hello")
        assert server.errors == []
    if signed_by is None:
        assert server.requests == []
        return
    (sent,) = server.requests
    assert sigv4(sent.headers)["key"] == signed_by
    assert "x-amz-security-token" not in sent.headers


def test_cohere_on_oci_without_an_oci_identity_of_its_own_is_an_error() -> None:
    target = Target("co-oci", "cohere.oci", "cohere.command-a-03-2025", region="eu-frankfurt-1", project="ocid1.c")
    with pytest.raises(ConfigError, match="'oci_user_id'") as raised:
        open_adapter(target, AdapterOptions(credentials={"api_key": "co-ACME"}))
    assert "co-ACME" not in str(raised.value) and "oci_config_path" in str(raised.value)
