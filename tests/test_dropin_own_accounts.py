"""A tenant with its own credentials for a vendor has its own account there, and requests judged for it must carry
those credentials (privsdk.outbound.own_credentials).

The tenant's attestations for that vendor are its own account's (the deployment's do not apply to it). A drop-in
built with the app's key and called inside the tenant's ``privsdk.scope`` was allowed on them and sent on the app's
account. Each case runs the real SDK over HTTP against a loopback server of the vendor's wire protocol, configured
by the environment alone, and checks what the server received.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import privsdk
from privsdk.outbound.judge import Guard
from privsdk.outbound.outgoing import Outgoing
from privsdk.outbound.own_credentials import carried
from tests.wire.bedrock import BedrockWire
from tests.wire.cohere import CohereApp
from tests.wire.openai import OpenAIWire
from tests.wire.server import App, LoopbackServer, Recorded, Reply

APP_KEY, ACME_KEY = "sk-app-key", "sk-acme-own-key"
HELLO: Any = [{"role": "user", "content": "hello"}]


def configure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, endpoint: str, policy: str, **env: str) -> None:
    """The process-wide guard from a policy file and ``env``, with ``endpoint`` declared."""
    config = tmp_path / "privsdk.toml"
    config.write_text(policy, encoding="utf-8")
    for name, value in {
        "PRIVSDK_CONFIG": str(config),
        "PRIVSDK_USAGE": "none",
        "PRIVSDK_ENDPOINTS": endpoint,
        **env,
    }.items():
        monkeypatch.setenv(name, value)
    Guard.reset_default()


@pytest.fixture
def reset() -> Iterator[None]:
    yield
    Guard.reset_default()


def any_key(wire: OpenAIWire) -> App:
    """``wire``, taking any key: a test that sends on two accounts to one server still sees which key each carried."""

    def serve(request: Recorded) -> Reply:
        return wire(request._replace(headers={**request.headers, "authorization": f"Bearer {wire.key}"}))

    return serve


OPENAI_POLICY = """
[tenants.acme]
classes.default = ["zdr"]
attest.openai = ["zdr"]
credentials.openai = { api_key = "ACME_OPENAI_KEY" }

[tenants.other]
classes.default = ["no_training"]
"""


def test_a_drop_in_sent_with_another_key_than_the_tenants_own_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, reset: None
) -> None:
    from privsdk import openai as dropin

    with LoopbackServer(OpenAIWire(key=APP_KEY)) as app_server, LoopbackServer(OpenAIWire(key=ACME_KEY)) as own:
        for server in (app_server, own):
            configure(monkeypatch, tmp_path, f"{server.url}/v1=openai.api", OPENAI_POLICY, ACME_OPENAI_KEY=ACME_KEY)
            key = APP_KEY if server is app_server else ACME_KEY
            client = dropin.OpenAI(api_key=key, base_url=f"{server.url}/v1", max_retries=0)
            with privsdk.scope(tenant="acme"):
                if server is app_server:  # the app's key: acme's zdr is its own account's, not the app's
                    with pytest.raises(dropin.PolicyViolation, match="tenant 'acme' has its own openai account"):
                        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
                    assert server.requests == []
                else:  # acme's own key: its own attestation holds
                    client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
                    assert [r.headers["authorization"] for r in server.requests] == [f"Bearer {ACME_KEY}"]
            with privsdk.scope(tenant="other"):  # no credentials of its own: the deployment's account, as before
                if server is app_server:
                    client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
                else:  # ... which acme's key is not
                    with pytest.raises(dropin.PolicyViolation, match="carries a key of tenant 'acme'"):
                        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert len(app_server.requests) == 1 and len(own.requests) == 1


def test_a_request_carrying_the_tenants_key_beside_another_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, reset: None
) -> None:
    """The tenant's key in the Authorization header the SDK sets, the app's in an api-key header an extra header adds:
    which one the vendor reads is not the guard's to guess."""
    from privsdk import openai as dropin

    with LoopbackServer(OpenAIWire(key=ACME_KEY)) as server:
        configure(monkeypatch, tmp_path, f"{server.url}/v1=openai.api", OPENAI_POLICY, ACME_OPENAI_KEY=ACME_KEY)
        client = dropin.OpenAI(
            api_key=ACME_KEY, base_url=f"{server.url}/v1", max_retries=0, default_headers={"api-key": APP_KEY}
        )
        with privsdk.scope(tenant="acme"), pytest.raises(dropin.PolicyViolation, match="another key than its own"):
            client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        assert server.requests == []


def test_another_key_in_the_query_string_is_another_account_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, reset: None
) -> None:
    """Azure API Management takes a subscription key in the query string as well as in its header: the app's key
    there, beside the tenant's own in the header, would have the gateway serve the call on the app's subscription."""
    from privsdk import openai as dropin

    with LoopbackServer(OpenAIWire(key=ACME_KEY)) as server:
        configure(monkeypatch, tmp_path, f"{server.url}/v1=openai.api", OPENAI_POLICY, ACME_OPENAI_KEY=ACME_KEY)
        for query in ({"subscription-key": APP_KEY}, {"api-key": APP_KEY}):
            client = dropin.OpenAI(api_key=ACME_KEY, base_url=f"{server.url}/v1", max_retries=0, default_query=query)
            with privsdk.scope(tenant="acme"), pytest.raises(dropin.PolicyViolation, match="another key than its"):
                client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        assert server.requests == []


def test_a_partner_model_is_checked_against_the_account_that_serves_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, reset: None
) -> None:
    """A Cohere model on Azure AI Foundry runs on an Azure account, allowed on azure: attestations. The check read
    the offering's vendor (cohere) and let the app's Azure key through for a tenant with its own Azure account."""
    from privsdk import cohere as dropin

    policy = """
[tenants.acme]
classes.default = ["region=eu"]
attest.azure = ["deployment=regional_eu"]
credentials.azure = { api_key = "ACME_AZ_KEY" }
"""
    with LoopbackServer(CohereApp()) as server:
        configure(monkeypatch, tmp_path, f"{server.url}=cohere.azure", policy, ACME_AZ_KEY="acme-azure-key")
        for key in ("app-azure-key", "acme-azure-key"):
            client = dropin.ClientV2(api_key=key, base_url=server.url)
            with privsdk.scope(tenant="acme"):
                if key == "app-azure-key":
                    with pytest.raises(privsdk.PolicyViolation, match="its own azure account"):
                        client.chat(model="Cohere-command-a", messages=HELLO)
                    assert server.requests == []
                else:
                    client.chat(model="Cohere-command-a", messages=HELLO)
        assert [r.headers["authorization"] for r in server.requests] == ["Bearer acme-azure-key"]


def test_a_client_call_with_a_tenants_own_azure_key_for_a_partner_model_is_sent(tmp_path: Path, reset: None) -> None:
    """azure_api_key under credentials.cohere or credentials.mistral is the tenant's own Azure account: a Client call
    to a Cohere or Mistral model on Azure carries it, and was refused as carrying no Cohere or Mistral key."""
    from tests.wire.mistral import MistralApp

    with LoopbackServer(MistralApp()) as mistral, LoopbackServer(CohereApp()) as cohere:
        config = tmp_path / "privsdk.toml"
        config.write_text(
            f"""
[targets.m]
offering = "mistral.azure"
model = "mistral-large-2411"
endpoint = "{mistral.url}"

[targets.co]
offering = "cohere.azure"
model = "Cohere-command-a"
endpoint = "{cohere.url}"
deployment = "cohere-command-a-prod"

[tenants.acme]
classes.default = ["no_training"]
credentials.mistral = {{ azure_api_key = "ACME_AZ_KEY" }}
credentials.cohere = {{ azure_api_key = "ACME_AZ_KEY" }}
""",
            encoding="utf-8",
        )
        env = {"PRIVSDK_CONFIG": str(config), "ACME_AZ_KEY": "acme-azure-key"}
        with privsdk.Client(environ=env, usage="none", timeout=5) as client:
            for target in ("m", "co"):
                client.chat(target, "hello", tenant="acme")
    for server in (mistral, cohere):
        assert [r.headers["authorization"] for r in server.requests] == ["Bearer acme-azure-key"]


@pytest.mark.parametrize(
    ("credentials", "env"),
    [
        pytest.param(
            '{ aws_access_key_id = "ACME_AWS_ID", aws_secret_access_key = "ACME_AWS_SECRET" }',
            {"ACME_AWS_ID": "AKIDACME", "ACME_AWS_SECRET": "s"},
            id="AWS keys only",
        ),
        pytest.param(
            '{ oci_config_path = "ACME_OCI_CFG", oci_profile = "ACME_OCI_PROFILE" }',
            {"ACME_OCI_CFG": "/etc/acme/oci", "ACME_OCI_PROFILE": "A"},
            id="an OCI config file only",
        ),
    ],
)
def test_a_tenant_whose_own_cohere_credentials_hold_no_key_for_cohere_s_api_sends_nothing_to_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, reset: None, credentials: str, env: dict[str, str]
) -> None:
    """Its credentials.cohere make its Cohere account its own (attest.cohere is its own), yet hold no key a request
    to Cohere's own API could carry: AWS keys are its own Bedrock account, and an OCI config file exempts only an
    OCI-signed request (which cannot be told apart), never a bearer key, which was sent on the app's account."""
    from privsdk import cohere as dropin

    policy = f"""
[tenants.acme]
classes.default = ["zdr"]
attest.cohere = ["plan=paid", "training_opt_out", "zdr"]
credentials.cohere = {credentials}
"""
    with LoopbackServer(CohereApp()) as server:
        configure(monkeypatch, tmp_path, f"{server.url}=cohere.saas", policy, **env)
        client = dropin.ClientV2(api_key="co-app-key", base_url=server.url)
        with privsdk.scope(tenant="acme"), pytest.raises(privsdk.PolicyViolation, match="its own cohere account"):
            client.chat(model="command-r-plus", messages=HELLO)
        assert server.requests == []


def test_a_bedrock_request_signed_with_another_access_key_than_the_tenants_own_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, reset: None, no_machine_aws: None
) -> None:
    from botocore.config import Config

    import privsdk.boto3 as pboto3

    policy = """
[tenants.acme]
classes.default = ["no_training"]
credentials.bedrock = { aws_access_key_id = "ACME_AWS_ID", aws_secret_access_key = "ACME_AWS_SECRET" }
"""
    one = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)
    messages = [{"role": "user", "content": [{"text": "hello"}]}]
    with LoopbackServer(BedrockWire()) as server:
        configure(
            monkeypatch, tmp_path, f"{server.url}=bedrock.runtime", policy, ACME_AWS_ID="AKIDACME", ACME_AWS_SECRET="s"
        )
        for key_id in ("AKIDAPP", "AKIDACME"):
            client = pboto3.client(
                "bedrock-runtime",
                region_name="eu-central-1",
                endpoint_url=server.url,
                config=one,
                aws_access_key_id=key_id,
                aws_secret_access_key="s",
            )
            with privsdk.scope(tenant="acme"):
                if key_id == "AKIDAPP":
                    with pytest.raises(privsdk.PolicyViolation, match="own bedrock account"):
                        client.converse(modelId="anthropic.claude-3-haiku-20240307-v1:0", messages=messages)
                    assert server.requests == []
                else:
                    client.converse(modelId="anthropic.claude-3-haiku-20240307-v1:0", messages=messages)
        assert len(server.requests) == 1 and "Credential=AKIDACME/" in server.requests[0].headers["authorization"]


@pytest.mark.parametrize(
    ("headers", "query", "found"),
    [
        ({"authorization": "Bearer sk-1"}, "", {"sk-1"}),
        ({"authorization": "bearer  tok "}, "", {"tok"}),
        ({"api-key": "az-1"}, "", {"az-1"}),
        ({"x-goog-api-key": "g-1"}, "", {"g-1"}),
        ({"ocp-apim-subscription-key": "gw-1", "authorization": "Bearer sk-1"}, "", {"gw-1", "sk-1"}),
        ({}, "alt=sse&key=g-2", {"g-2"}),
        ({}, "api-version=2024-10-21&subscription-key=gw-2", {"gw-2"}),  # API Management's query alternative
        ({}, "API-KEY=az-2&Access_Token=ya29", {"az-2", "ya29"}),
        ({}, "X-Amz-Credential=AKID2%2F20261201%2Feu-west-1%2Fbedrock%2Faws4_request&X-Amz-Signature=s", {"AKID2"}),
        (
            {"authorization": "AWS4-HMAC-SHA256 Credential=AKID1/20261201/eu-central-1/bedrock/aws4_request, Sig=x"},
            "",
            {"AKID1"},
        ),
        (
            {"authorization": 'Signature version="1",keyId="ocid.tenancy/ocid.user/aa:bb",algorithm="rsa"'},
            "",
            {
                "ocid.tenancy",
                "ocid.user",
                "aa:bb",
            },
        ),
        ({}, "", set()),
    ],
)
def test_what_a_request_carries_to_identify_itself(headers: dict[str, str], query: str, found: set[str]) -> None:
    assert carried(Outgoing("test", "POST", "https", "h", None, "/", query, headers)) == found


def test_a_targets_attestations_say_nothing_of_a_tenants_own_account(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, reset: None
) -> None:
    """A target's attestations are the deployment's account's: a tenant with its own OpenAI account (its
    credentials), which attests nothing for it, was allowed under zdr on them, through the Client and a drop-in, and
    its requests sent. The deployment's own tenant keeps them."""
    from privsdk import openai as dropin

    with LoopbackServer(any_key(OpenAIWire(key=ACME_KEY))) as server:
        policy = f"""
default_tenant = "deployment"

[targets.oa-zdr]
offering = "openai.api"
model = "gpt-4o-mini"
endpoint = "{server.url}/v1"
attest = ["zdr"]

[tenants.deployment]
classes.default = ["zdr"]

[tenants.acme]
classes.default = ["zdr"]
credentials.openai = {{ api_key = "ACME_OPENAI_KEY" }}
"""
        env = {"ACME_OPENAI_KEY": ACME_KEY, "OPENAI_API_KEY": APP_KEY}
        configure(monkeypatch, tmp_path, f"{server.url}/v1=openai.api", policy, **env)
        with privsdk.Client() as client:
            with pytest.raises(privsdk.PolicyViolation, match="unmet: zdr"):
                client.chat("oa-zdr", "hello", tenant="acme")
            assert server.requests == []
            decision = client.chat("oa-zdr", "hello").decision  # the deployment's tenant
            assert decision is not None and decision.outcome == "allow"
        assert len(server.requests) == 1
        sdk = dropin.OpenAI(api_key=ACME_KEY, base_url=f"{server.url}/v1", max_retries=0)
        with privsdk.scope(tenant="acme"), pytest.raises(dropin.PolicyViolation, match="zdr"):
            sdk.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        assert len(server.requests) == 1


SHARED_POLICY = """
[attest]
openai = ["zdr"]

[tenants.acme]
classes.default = ["no_training"]
credentials.openai = { api_key = "ACME_OPENAI_KEY" }

[tenants.other]
classes.default = ["no_training", "zdr"]
"""


def test_a_request_for_another_tenant_carrying_a_tenants_own_key_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, reset: None
) -> None:
    """``other`` has no account of its own: the app's, attested zdr. A drop-in built with acme's own key and called
    in other's scope was allowed on the app's zdr and ran on acme's account, which attests none. The guard knows
    acme's key: such a request is refused, whoever it is judged for; the app's own key is sent as before."""
    from privsdk import openai as dropin

    with LoopbackServer(any_key(OpenAIWire())) as server:
        configure(monkeypatch, tmp_path, f"{server.url}/v1=openai.api", SHARED_POLICY, ACME_OPENAI_KEY=ACME_KEY)
        with_acme_key = dropin.OpenAI(api_key=ACME_KEY, base_url=f"{server.url}/v1", max_retries=0)
        with privsdk.scope(tenant="other"), pytest.raises(dropin.PolicyViolation) as caught:
            with_acme_key.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        assert "carries a key of tenant 'acme'" in str(caught.value) and ACME_KEY not in str(caught.value)
        assert server.requests == []
        with privsdk.scope(tenant="acme"):  # its own key, for itself: sent
            with_acme_key.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        with privsdk.scope(tenant="other"):  # the app's key, for a tenant without an account of its own: sent
            dropin.OpenAI(api_key=APP_KEY, base_url=f"{server.url}/v1", max_retries=0).chat.completions.create(
                model="gpt-4o-mini", messages=HELLO
            )
    assert [r.headers["authorization"] for r in server.requests] == [f"Bearer {ACME_KEY}", f"Bearer {APP_KEY}"]


def test_a_tenant_built_in_code_with_its_own_credentials_owns_its_account(tmp_path: Path) -> None:
    """A provider's ``Tenant`` with credentials but no ``own_accounts`` had the target's zdr (the deployment's
    account's) applied to its own account, and was sent; the same tenant as a ``TenantDocument`` was refused."""
    from privsdk.policy import Tenant
    from privsdk.tenants import TenantDocument, TenantStore
    from privsdk.vocabulary import parse_requirements

    with LoopbackServer(any_key(OpenAIWire())) as server:
        config = tmp_path / "privsdk.toml"
        config.write_text(
            f'[targets.mini]\noffering = "openai.api"\nmodel = "gpt-4o-mini"\nendpoint = "{server.url}/v1"\n'
            'attest = ["zdr"]\n',
            encoding="utf-8",
        )
        env = {"PRIVSDK_CONFIG": str(config), "ACME_OPENAI_KEY": ACME_KEY}

        def in_code(name: str) -> Tenant:
            requires = {"default": parse_requirements(["no_training", "zdr"])}
            return Tenant(name, requires, credentials=(("openai", (("api_key", "ACME_OPENAI_KEY"),)),))

        def document(name: str) -> TenantDocument:
            text = 'classes.default = ["no_training", "zdr"]\ncredentials.openai = { api_key = "ACME_OPENAI_KEY" }\n'
            return TenantDocument(text, "memory")

        for provider in (document, in_code):
            store = TenantStore(provider)
            credentials = {"openai": {"api_key": APP_KEY}}
            with (
                privsdk.Client(environ=env, usage="none", credentials=credentials, tenants=store) as client,
                pytest.raises(privsdk.PolicyViolation, match="unmet: zdr"),
            ):
                client.chat("mini", "hello", tenant="acme", max_attempts=1)
        assert server.requests == []


def test_a_tenant_stores_tenants_keys_are_known_to_every_guard_once_loaded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, reset: None
) -> None:
    """With a tenant store, each guard learnt a tenant's keys only from that tenant's own requests it judged, and only
    for their vendor: after acme's calls through a Client, a drop-in with acme's OpenAI key, or a mistralai client
    with its Mistral key, was sent for ``other``. A tenant's keys are now learnt as the store loads it, for every
    vendor, by every guard of the stores of that PRIVSDK_TENANTS value."""
    from privsdk import mistralai
    from privsdk import openai as dropin
    from tests.wire.mistral import MistralApp

    tenants = tmp_path / "tenants"
    tenants.mkdir()
    (tenants / "acme.toml").write_text(
        'classes.default = ["no_training"]\ncredentials.openai = { api_key = "ACME_OPENAI_KEY" }\n'
        'credentials.mistral = { api_key = "ACME_MISTRAL_KEY" }\n',
        encoding="utf-8",
    )
    (tenants / "other.toml").write_text('classes.default = ["no_training", "zdr"]\n', encoding="utf-8")
    with LoopbackServer(any_key(OpenAIWire())) as api, LoopbackServer(MistralApp("acme-mistral")) as mistral:
        policy = '[attest]\nopenai = ["zdr"]\nmistral = ["plan=scale", "zdr"]\n[targets.mini]\n'
        policy += f'offering = "openai.api"\nmodel = "gpt-4o-mini"\nendpoint = "{api.url}/v1"\n'
        configure(
            monkeypatch,
            tmp_path,
            f"{api.url}/v1=openai.api,{mistral.url}=mistral.api",
            policy,
            PRIVSDK_TENANTS=f"dir://{tenants}",
            ACME_OPENAI_KEY=ACME_KEY,
            ACME_MISTRAL_KEY="acme-mistral",
            OPENAI_API_KEY=APP_KEY,
        )
        with privsdk.Client() as client:  # the Client's guard loads acme, and learns its keys for the drop-ins'
            client.chat("mini", "hello", tenant="acme", max_attempts=1)
        with_acme_key = dropin.OpenAI(api_key=ACME_KEY, base_url=f"{api.url}/v1", max_retries=0)
        with_acme_mistral_key = mistralai.Mistral(api_key="acme-mistral", server_url=mistral.url)
        with privsdk.scope(tenant="other"):
            with pytest.raises(privsdk.PolicyViolation, match="carries a key of tenant 'acme'"):
                with_acme_key.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
            with pytest.raises(privsdk.PolicyViolation, match="carries a key of tenant 'acme'"):
                with_acme_mistral_key.chat.complete(model="mistral-large-latest", messages=HELLO)
        assert [r.headers["authorization"] for r in api.requests] == [f"Bearer {ACME_KEY}"]
        assert mistral.requests == []
