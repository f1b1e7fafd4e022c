"""A request is judged as the server it reaches will read it, not only as privsdk reads it.

Three ways the request judged and the request served came apart, each shown with the real openai SDK (the
drop-in, over real HTTP) against loopback servers that route as some real ones do:

- **Case.** ASP.NET Core, YARP and Azure API Management match routes without regard to case. Azure's route
  ``/OpenAI/deployments/gpt-5.5/...`` was read as plain chat on the body's model, not as the deployment it names;
  and a gateway that declares ``/openai`` as OpenAI and its catch-all as the tenant's own vLLM served ``/OpenAI/v1``
  from OpenAI, judged as the catch-all.
- **Other spellings** a lenient server folds (a decoded ``%20`` or full-width solidus, a trailing dot) likewise put a
  path under another declared endpoint than the one judged: refused, judged only here.
- **httpcore's extensions.** httpcore writes ``extensions["target"]`` as its request line in place of the URL's path,
  and asks TLS for ``extensions["sni_hostname"]``: an app's event hook that set either sent a request the guard had
  judged by its URL. Such a request is refused (and recorded), unless the extension says what the URL says.

Every refusal sent nothing: each server counts what it received.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from privsdk import openai
from privsdk.errors import PolicyViolation
from privsdk.outbound.judge import Guard
from privsdk.outbound.outgoing import Outgoing
from tests.guard_support import records
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer, Recorded, Reply

KEY = "sk-judged"
CANARY = "canary-5d1e record"
MESSAGES = [{"role": "user", "content": CANARY}]


class CaseBlindServer:
    """An OpenAI-protocol server that routes as ASP.NET Core does, without regard to case."""

    def __init__(self) -> None:
        self.wire = OpenAIWire(key=KEY)

    def __call__(self, request: Recorded) -> Reply:
        return self.wire(request._replace(path=request.path.lower()))


class Gateway:
    """A gateway that sends ``/openai/...`` (in any case) to OpenAI and everything else to the tenant's own vLLM."""

    def __init__(self) -> None:
        self.wire = OpenAIWire(key=KEY)
        self.to_openai: list[str] = []
        self.to_vllm: list[str] = []

    def __call__(self, request: Recorded) -> Reply:
        if request.path.lower().startswith("/openai/"):
            self.to_openai.append(request.path)
            return self.wire(request._replace(path=request.path[len("/openai") :]))
        self.to_vllm.append(request.path)
        return self.wire(request)


@pytest.fixture
def azure(usage: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """A case-blind gateway in front of an Azure OpenAI resource; the tenant requires ZDR, which Azure's modified
    abuse monitoring gives every deployment but those that cache prompts for a day (gpt-5.5)."""
    with LoopbackServer(CaseBlindServer()) as server:
        monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{server.url}=azure.openai")
        monkeypatch.setenv("PRIVSDK_REQUIRE", "zdr")
        monkeypatch.setenv("PRIVSDK_ATTEST", "azure:modified_abuse_monitoring")
        Guard.reset_default()
        yield server


@pytest.fixture
def gateway(usage: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LoopbackServer, Gateway]]:
    app = Gateway()
    with LoopbackServer(app) as server:
        monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{server.url}=selfhosted.vllm,{server.url}/openai=openai.api")
        monkeypatch.setenv("PRIVSDK_REQUIRE", "private_deployment")
        Guard.reset_default()
        yield server, app


def chat(client: Any, flavour: str) -> Any:
    if flavour == "sync":
        return client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    async def main() -> Any:
        async with client:
            return await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    return asyncio.run(main())


def azure_client(base_url: str, flavour: str) -> Any:
    kind = openai.AzureOpenAI if flavour == "sync" else openai.AsyncAzureOpenAI
    return kind(base_url=base_url, api_key=KEY, api_version="2024-10-21", max_retries=0)


# -- case --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("prefix", ["/openai", "/OpenAI", "/OPENAI"])
def test_an_azure_deployment_is_judged_in_whatever_case_its_route_is_written(
    azure: LoopbackServer, usage: Path, prefix: str, flavour: str
) -> None:
    """The deployment in the path runs, whatever model the body names: gpt-5.5 is refused under zdr however the
    route is spelt (it was sent as chat on the body's gpt-4o under /OpenAI/), and gpt-4o is served."""
    refused = azure_client(f"{azure.url}{prefix}/deployments/gpt-5.5", flavour)
    with pytest.raises(PolicyViolation) as caught:
        chat(refused, flavour)
    assert "azure/gpt-5.5" in str(caught.value) and "zdr" in str(caught.value)
    assert azure.requests == []
    served = chat(azure_client(f"{azure.url}{prefix}/deployments/gpt-4o", flavour), flavour)
    assert isinstance(served, openai.types.chat.ChatCompletion) and served.choices[0].message.content
    [sent] = azure.requests
    assert sent.path == f"{prefix}/deployments/gpt-4o/chat/completions" and sent.json()["messages"] == MESSAGES
    assert [(r["decision"], r["outcome"]) for r in records(usage)] == [("refuse", "refused"), ("allow", "ok")]


@pytest.mark.parametrize("route", ["openai", "OpenAI"])
def test_a_partner_deployment_on_azures_own_host_is_judged_in_any_case(route: str) -> None:
    """On a Foundry host, the deployment Mistral-Large-2411 is a partner model that no Azure BAA covers."""
    guard = Guard(environ={"PRIVSDK_REQUIRE": "hipaa_baa", "PRIVSDK_ATTEST": "azure:baa", "PRIVSDK_USAGE": "none"})
    body = json.dumps({"model": "gpt-4o", "messages": MESSAGES}).encode()
    path = f"/{route}/deployments/Mistral-Large-2411/chat/completions"
    out = Outgoing("openai", "POST", "https", "contoso.services.ai.azure.com", None, path, "api-version=1", {}, body)
    decision = guard.judge(out).decision
    assert decision.outcome == "refuse" and decision.target.endswith("/Mistral-Large-2411")
    assert "hipaa_baa" in str(decision.reason)


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("prefix", ["/OpenAI", "/OPENAI"])
def test_a_declared_prefix_in_another_case_is_refused_not_judged_as_the_catch_all(
    gateway: tuple[LoopbackServer, Gateway], usage: Path, prefix: str, flavour: str
) -> None:
    server, app = gateway
    kind = openai.OpenAI if flavour == "sync" else openai.AsyncOpenAI
    with pytest.raises(PolicyViolation) as caught:
        chat(kind(base_url=f"{server.url}{prefix}/v1", api_key=KEY, max_retries=0), flavour)
    message = str(caught.value)
    assert "falls under another declared endpoint" in message and "letters in either case" in message
    assert CANARY not in message
    assert server.requests == [] and app.to_openai == []
    # The catch-all itself is the tenant's vLLM: served.
    chat(kind(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0), flavour)
    assert app.to_vllm == ["/v1/chat/completions"] and app.to_openai == []
    assert [r["outcome"] for r in records(usage)] == ["refused", "ok"]


@pytest.mark.parametrize(
    "prefix",
    [
        "/openai./v1",  # a dot Windows servers drop from a segment's end
        "/openai%20/v1",  # a space, decoded
        "/openai%2520/v1",  # the same, escaped twice
        "/%EF%BC%8Fopenai/v1",  # a full-width solidus, "/" once folded (NFKC)
        "/Open%41I/v1",  # an escaped capital
    ],
)
def test_other_spellings_a_lenient_server_folds_are_refused(prefix: str) -> None:
    gateway = "http://gateway.internal:8080"
    guard = Guard(
        environ={
            "PRIVSDK_ENDPOINTS": f"{gateway}=selfhosted.vllm,{gateway}/openai=openai.api",
            "PRIVSDK_REQUIRE": "private_deployment",
            "PRIVSDK_USAGE": "none",
        }
    )
    body = json.dumps({"model": "gpt-4o", "messages": MESSAGES}).encode()
    out = Outgoing("openai", "POST", "http", "gateway.internal", 8080, prefix + "/chat/completions", "", {}, body)
    decision = guard.judge(out).decision
    assert decision.outcome == "refuse"
    reason = str(decision.reason)
    assert "another declared endpoint" in reason or "%-escape" in reason
    # As declared, and on the catch-all, the same request is judged where it goes.
    plain = guard.judge(out._replace(path="/v1/chat/completions")).decision
    assert plain.outcome == "allow"
    assert str(guard.judge(out._replace(path="/openai/v1/chat/completions")).decision.reason).endswith(
        "unmet: private_deployment"
    )


# -- httpcore's extensions ---------------------------------------------------------------------------------------


def hooked(server: LoopbackServer, flavour: str, extension: str, value: Any) -> Any:
    """An OpenAI client for the gateway's catch-all whose event hook sets an httpcore extension on each request;
    ``value`` is the extension's value, or a function of the request that gives it."""

    def hook(request: Any) -> None:
        request.extensions[extension] = value(request) if callable(value) else value

    async def ahook(request: Any) -> None:
        hook(request)

    if flavour == "sync":
        http: Any = openai.DefaultHttpxClient(event_hooks={"request": [hook]})
        return openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0, http_client=http)
    http = openai.DefaultAsyncHttpxClient(event_hooks={"request": [ahook]})
    return openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0, http_client=http)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_an_event_hook_that_sends_another_target_is_refused_before_a_byte(
    gateway: tuple[LoopbackServer, Gateway], usage: Path, flavour: str
) -> None:
    """The hook routes the request to the gateway's OpenAI route; the guard had judged the catch-all."""
    server, app = gateway
    client = hooked(server, flavour, "target", lambda request: b"/openai" + request.url.raw_path)
    with pytest.raises(PolicyViolation) as caught:
        chat(client, flavour)
    assert "'target' extension" in str(caught.value) and CANARY not in str(caught.value)
    assert server.requests == [] and app.to_openai == []
    [record] = records(usage)
    assert (record["decision"], record["outcome"]) == ("refuse", "refused")


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_target_or_tls_name_that_says_what_the_url_says_is_sent(
    gateway: tuple[LoopbackServer, Gateway], usage: Path, flavour: str
) -> None:
    server, app = gateway
    chat(hooked(server, flavour, "target", lambda request: request.url.raw_path), flavour)
    chat(hooked(server, flavour, "sni_hostname", "127.0.0.1"), flavour)
    assert app.to_vllm == ["/v1/chat/completions"] * 2
    assert [r["outcome"] for r in records(usage)] == ["ok", "ok"]


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_an_event_hook_that_names_another_host_to_tls_is_refused_before_a_byte(
    gateway: tuple[LoopbackServer, Gateway], usage: Path, flavour: str
) -> None:
    """A shared front end (a CDN) routes an https request by the name TLS asks for: another host than judged."""
    server, _ = gateway
    with pytest.raises(PolicyViolation) as caught:
        chat(hooked(server, flavour, "sni_hostname", "api.openai.com"), flavour)
    assert "'sni_hostname' extension" in str(caught.value)
    assert server.requests == []
    [record] = records(usage)
    assert record["outcome"] == "refused"


@pytest.mark.parametrize(
    ("protocol", "sdk", "host", "path", "body"),
    [
        ("openai", "openai", "api.openai.com", "/v1/chat/completions",
         b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"canary7dup"}],"store":true,"store":false}'),
        ("openai", "openai", "api.openai.com", "/v1/responses",
         b'{"model":"gpt-4o-mini","input":"canary7dup","store":false,"tools":[{"type":"web_search"}],"tools":[]}'),
        ("mistral", "mistralai", "api.mistral.ai", "/v1/chat/completions",
         b'{"model":"mistral-small-latest","messages":[{"role":"user","content":"canary7dup","role":"system"}]}'),
        ("cohere", "cohere", "api.cohere.com", "/v2/chat",
         b'{"model":"command-r","messages":[{"role":"user","content":"canary7dup"}],"model":"command-a-03-2025"}'),
        ("google", "genai", "generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash:generateContent",
         b'{"contents":[{"parts":[{"text":"canary7dup"}]}],"tools":[{"googleSearch":{}}],"tools":[]}'),
        ("bedrock", "boto3", "bedrock-runtime.eu-west-1.amazonaws.com",
         "/model/anthropic.claude-3-haiku-20240307-v1:0/converse",
         b'{"messages":[{"role":"user","content":[{"text":"canary7dup"}]}],"toolConfig":{"tools":[]},"toolConfig":null}'),
    ],
    ids=["openai chat", "openai responses", "mistral nested", "cohere model", "gemini tools", "bedrock converse"],
)  # fmt: skip
def test_a_body_that_names_a_field_twice_is_unreadable_in_every_protocol(
    protocol: str, sdk: str, host: str, path: str, body: bytes
) -> None:
    """Python's json keeps the last of two values, another parser the first, or refuses the body: privsdk cannot
    tell which the vendor acts on, so no reader reads such a body (the stricter reading). The same body with each
    key once reads."""
    from privsdk.outbound.outgoing import Unreadable
    from privsdk.outbound.wire import reader

    headers = {"content-type": "application/json"}
    with pytest.raises(Unreadable, match="names a field twice") as caught:
        reader(protocol).read(Outgoing(sdk, "POST", "https", host, None, path, "", headers, body))
    assert "canary7dup" not in str(caught.value)
    once = json.dumps(json.loads(body)).encode()  # the last value of each: a body with each key once
    assert reader(protocol).read(Outgoing(sdk, "POST", "https", host, None, path, "", headers, once)) is not None
