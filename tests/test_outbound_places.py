"""Where a request goes: hosts placed on offerings, geographies and accounts, from catalogue data and the policy."""

from __future__ import annotations

import pytest

from privsdk.catalogue import Catalogue
from privsdk.config import load_policy
from privsdk.errors import ConfigError
from privsdk.outbound.places import Place, catalogue_place, declared_place, geography, region_kind, target_account
from privsdk.policy import Target


@pytest.mark.parametrize(
    ("host", "offerings", "geo", "shows", "account"),
    [
        ("api.openai.com", ("openai.api",), None, True, None),
        ("eu.api.openai.com", ("openai.api",), "eu", True, None),
        ("us.api.openai.com", ("openai.api",), "us", True, None),
        ("acme.openai.azure.com", ("azure.openai",), None, False, "acme"),
        ("acme.cognitiveservices.azure.com", ("azure.openai",), None, False, "acme"),
        ("acme.services.ai.azure.com", ("azure.openai", "azure.foundry", "cohere.azure", "mistral.azure"), None,
         False, "acme"),
        ("api.cohere.com", ("cohere.saas",), None, False, None),
        ("api.mistral.ai", ("mistral.api",), None, True, None),
        ("api.eu.mistral.ai", ("mistral.api",), "eu", True, None),
        ("bedrock-runtime.eu-west-1.amazonaws.com", ("bedrock.runtime", "cohere.bedrock"), "eu", True, None),
        ("bedrock-runtime.eu-west-2.amazonaws.com", ("bedrock.runtime", "cohere.bedrock"), "uk", True, None),
        ("bedrock-runtime-fips.us-gov-west-1.amazonaws.com", ("bedrock.runtime", "cohere.bedrock"), "us", True, None),
        ("bedrock-runtime.us-east-1.amazonaws.com", ("bedrock.runtime", "cohere.bedrock"), "us", True, None),
        ("vpce-0abc.bedrock-runtime.eu-central-1.vpce.amazonaws.com", ("bedrock.runtime",), "eu", True, "vpce-0abc"),
        ("europe-west4-aiplatform.googleapis.com", ("mistral.vertex", "vertex.gemini", "vertex.partner"), "eu", True,
         None),
        ("us-central1-aiplatform.googleapis.com", ("mistral.vertex", "vertex.gemini", "vertex.partner"), "us", True,
         None),
        ("aiplatform.googleapis.com", ("mistral.vertex", "vertex.gemini", "vertex.partner"), None, True, None),
        ("generativelanguage.googleapis.com", ("gemini.api",), None, False, None),
    ],
)  # fmt: skip
def test_catalogue_hosts(
    catalogue: Catalogue, host: str, offerings: tuple[str, ...], geo: str | None, shows: bool, account: str | None
) -> None:
    place = catalogue_place(catalogue, "https", host, f"https://{host}")
    assert place is not None
    assert sorted(place.offerings) == sorted(offerings)
    assert (place.geography, place.shows_geography, place.account) == (geo, shows, account)


@pytest.mark.parametrize(
    "host",
    [
        "api.openai.com.evil.example",
        "evil-api.openai.com",
        "openai.azure.com",
        "localhost",
        "127.0.0.1",
        "api.openai.co",
    ],
)
def test_unknown_hosts_are_placed_nowhere(catalogue: Catalogue, host: str) -> None:
    assert catalogue_place(catalogue, "https", host, f"https://{host}") is None


def test_vendor_hosts_over_plain_http_are_placed_nowhere(catalogue: Catalogue) -> None:
    assert catalogue_place(catalogue, "http", "api.openai.com", "http://api.openai.com") is None


@pytest.mark.parametrize(
    ("kind", "label", "geo"),
    [
        ("aws_region", "eu-central-1", "eu"),
        ("aws_region", "eu-central-2", "ch"),
        ("aws_region", "ap-northeast-1", "jp"),
        ("aws_region", "ap-northeast-2", "kr"),
        ("aws_region", "xx-nowhere-9", None),
        ("gcp_location", "europe-west2", "uk"),
        ("gcp_location", "europe-west9", "eu"),
        ("gcp_location", "global", None),
        ("gcp_location", "asia-northeast3", "kr"),
        ("geo", "eu", "eu"),
        ("geo", "mars", None),
    ],
)
def test_geographies(kind: str, label: str, geo: str | None) -> None:
    assert geography(kind, label) == geo


def test_declared_endpoints_from_the_environment_alone(catalogue: Catalogue) -> None:
    policy = load_policy(
        {"PRIVSDK_ENDPOINTS": "http://127.0.0.1:8000/v1=selfhosted.vllm, https://llm-proxy.corp=openai.api@proj_x"},
        catalogue,
    )
    vllm = declared_place(policy.endpoints, "http://127.0.0.1:8000", "/v1/chat/completions")
    assert vllm is not None and vllm.offerings == ("selfhosted.vllm",) and vllm.declared
    assert declared_place(policy.endpoints, "http://127.0.0.1:8000", "/v2/chat") is None  # outside the prefix
    assert declared_place(policy.endpoints, "http://127.0.0.1:8000", "/v1x/chat") is None
    proxy = declared_place(policy.endpoints, "https://llm-proxy.corp", "/v1/chat/completions")
    assert proxy is not None and proxy.offerings == ("openai.api",) and proxy.account == "proj_x"


def test_declared_endpoints_from_the_file(write_config, catalogue: Catalogue) -> None:  # type: ignore[no-untyped-def]
    path = write_config('[endpoints]\n"http://10.0.0.5:11434/v1" = "selfhosted.ollama"\n')
    policy = load_policy({"PRIVSDK_CONFIG": str(path)}, catalogue)
    place = declared_place(policy.endpoints, "http://10.0.0.5:11434", "/v1/chat/completions")
    assert place is not None and place.offerings == ("selfhosted.ollama",)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("https://api.openai.com/v1=selfhosted.vllm", "api.openai.com is the catalogue's host for openai.api"),
        ("http://127.0.0.1:8000=nosuch.offering", "unknown offering 'nosuch.offering'"),
        ("ftp://127.0.0.1=selfhosted.vllm", "is not a URL"),
        ("http://127.0.0.1:8000", "does not end in =OFFERING"),
    ],
)
def test_bad_declared_endpoints(catalogue: Catalogue, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_policy({"PRIVSDK_ENDPOINTS": value}, catalogue)
    assert message in str(caught.value)
    assert "PRIVSDK_ENDPOINTS" in str(caught.value)


@pytest.mark.parametrize(
    ("offering", "kind"),
    [
        ("azure.openai", "azure_region"),  # its hosts show none; its vendor's show Azure regions
        ("azure.foundry", "azure_region"),
        ("bedrock.runtime", "aws_region"),
        ("vertex.gemini", "gcp_location"),
        ("openai.api", "geo"),
        ("cohere.oci", None),  # Cohere's hosts name AWS and Azure regions: which an OCI region is, they cannot say
        ("selfhosted.vllm", None),
    ],
)
def test_the_kind_of_region_a_target_names(catalogue: Catalogue, offering: str, kind: str | None) -> None:
    assert region_kind(catalogue, offering) == kind


@pytest.mark.parametrize(
    ("target", "account"),
    [
        (Target("a", "azure.openai", "gpt-4o", endpoint="https://Contoso.openai.azure.com/"), "contoso"),
        (Target("f", "azure.foundry", "mistral-large-2411", endpoint="https://acme.services.ai.azure.com"), "acme"),
        (Target("g", "azure.openai", "gpt-4o", endpoint="https://gw.corp.example/azure"), None),
        (Target("v", "vertex.gemini", "gemini-2.5-flash", project="acme-prod"), "acme-prod"),
        (Target("o", "openai.api", "gpt-4o", project="proj_abc"), "proj_abc"),
        (Target("n", "openai.api", "gpt-4o"), None),
    ],
)
def test_a_targets_account_is_the_one_its_config_names(
    catalogue: Catalogue, target: Target, account: str | None
) -> None:
    """As the guard reads it from the target's requests: the resource its endpoint's host names, else its project."""
    assert target_account(catalogue, target) == account


def test_a_targets_endpoint_is_declared(write_config, catalogue: Catalogue) -> None:  # type: ignore[no-untyped-def]
    path = write_config(
        '[targets.local]\noffering = "selfhosted.vllm"\nmodel = "llama-3"\nendpoint = "http://127.0.0.1:9000/v1/"\n'
    )
    policy = load_policy({"PRIVSDK_CONFIG": str(path)}, catalogue)
    place = declared_place(policy.endpoints, "http://127.0.0.1:9000", "/v1/chat/completions")
    assert place is not None and place.offerings == ("selfhosted.vllm",)


@pytest.mark.parametrize("library", ["httpx", "httpx2"])
@pytest.mark.parametrize(
    "url",
    [
        "https://api.openai.com/v1/chat/completions",
        "https://API.OpenAI.com:443/v1/chat/completions?api-version=2024-10-21&x=%20y",
        "http://127.0.0.1:8000/v1/files/file-abc%2Fdef",
        "http://[::1]:9/v1/models",
        "https://xn--fiqs8s.example/openai/deployments/gpt4o/chat/completions",
        "https://acme.openai.azure.com",
    ],
)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"OpenAI-Project": "proj_a"},
        {"openai-organization": "org_b", "X-Other": "1"},
        {"OpenAI-Project": "", "OpenAI-Organization": "org_c"},
        [("OpenAI-Project", "proj_a"), ("openai-project", "proj_b")],
    ],
)
def test_the_seam_reads_httpx_requests_as_their_public_api_shows_them(library: str, url: str, headers: object) -> None:
    """The transport seam reads httpx's parsed URL and header list directly (a third of its cost otherwise):
    what it reads must be what httpx's public properties say, host as sent on the wire (IDNA stays encoded)."""
    http = pytest.importorskip(library)
    from privsdk.outbound.judge import _account
    from privsdk.outbound.outgoing import Asks
    from privsdk.outbound.transport import outgoing

    request = http.Request("POST", url, headers=headers, content=b"{}")
    out = outgoing(request, "openai", b"{}")
    public = request.url
    raw_path, _, raw_query = public.raw_path.decode("ascii").partition("?")
    assert (out.scheme, out.port, out.path, out.query) == (public.scheme, public.port, raw_path, raw_query)
    assert out.host == public.raw_host.decode("ascii")
    # An httpx without the parsed tuple (a later release may drop it) is read through the public properties alone.
    request.url = _PublicOnly(public)
    assert outgoing(request, "openai", b"{}") == out
    expected = request.headers.get("openai-project") or request.headers.get("openai-organization") or None
    assert _account(Place(("openai.api",), "https://api.openai.com"), Asks("chat"), out) == expected


class _PublicOnly:
    """An httpx URL seen through its public properties only."""

    def __init__(self, url: object) -> None:
        self._url = url

    def __getattr__(self, name: str) -> object:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._url, name)


# -- declarations in every spelling a URL takes ------------------------------------------------


def _judged(env: dict[str, str], catalogue: Catalogue, url: str, model: str = "llama-3.1-8b") -> tuple[str, object]:
    """The guard's outcome and place for a POST to ``url``, read from a real httpx request as the seam reads it."""
    import json

    import httpx

    from privsdk.outbound.judge import Guard
    from privsdk.outbound.transport import outgoing
    from privsdk.usage import open_recorder

    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
    out = outgoing(httpx.Request("POST", url, content=body), "openai", body)
    verdict = Guard(load_policy({"PRIVSDK_USAGE": "none", **env}, catalogue), catalogue=catalogue,
                    recorder=open_recorder("none")).judge(out)  # fmt: skip
    return verdict.decision.outcome, verdict.place


@pytest.mark.parametrize(
    ("declared", "url"),
    [
        ("http://[::1]:8000/v1", "http://[::1]:8000/v1/chat/completions"),
        ("http://[::1]/v1", "http://[::1]:80/v1/chat/completions"),
        ("https://llm-proxy.corp:443/v1", "https://llm-proxy.corp/v1/chat/completions"),
        ("https://llm-proxy.corp/v1", "https://llm-proxy.corp:443/v1/chat/completions"),
        ("http://svc:secret@127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1/chat/completions"),
        ("http://LLM.corp.:8000/v1", "http://llm.corp:8000/v1/chat/completions"),
        ("http://llm.corp:8000/v1", "http://llm.corp.:8000/v1/chat/completions"),
    ],
)
def test_a_declared_endpoint_matches_its_requests_however_the_url_is_spelled(
    catalogue: Catalogue, declared: str, url: str
) -> None:
    """An IPv6 host, the scheme's default port, user info and a trailing dot are the same place either way."""
    env = {"PRIVSDK_ENDPOINTS": f"{declared}=selfhosted.vllm", "PRIVSDK_REQUIRE": "private_deployment"}
    outcome, place = _judged(env, catalogue, url)
    assert outcome == "allow"
    assert isinstance(place, Place) and place.declared and place.offerings == ("selfhosted.vllm",)
    assert "secret" not in place.endpoint and "@" not in place.endpoint


def test_declared_ipv6_endpoints_match_origins_with_or_without_brackets(catalogue: Catalogue) -> None:
    policy = load_policy({"PRIVSDK_ENDPOINTS": "http://[::1]:8000/v1=selfhosted.vllm"}, catalogue)
    assert [e.url for e in policy.endpoints] == ["http://[::1]:8000/v1"]
    for origin in ("http://[::1]:8000", "http://::1:8000"):  # Outgoing.origin writes the host as it is
        place = declared_place(policy.endpoints, origin, "/v1/chat/completions")
        assert place is not None and place.offerings == ("selfhosted.vllm",)
    assert declared_place(policy.endpoints, "http://::1:8001", "/v1/chat/completions") is None
    assert declared_place(policy.endpoints, "http://[::2]:8000", "/v1/chat/completions") is None


def test_declarations_are_stored_as_requests_are_compared(catalogue: Catalogue) -> None:
    env = "https://svc:pw@Proxy.Corp.:443/openai/=openai.api,http://[::1]:80=selfhosted.vllm"
    policy = load_policy({"PRIVSDK_ENDPOINTS": env}, catalogue)
    assert [e.url for e in policy.endpoints] == ["https://proxy.corp/openai", "http://[::1]"]


def test_a_fully_qualified_vendor_host_is_the_vendor(catalogue: Catalogue) -> None:
    """api.openai.com. is the same DNS name as api.openai.com: placed as OpenAI, and never declarable as
    self-hosted (which would make OpenAI pass private_deployment)."""
    place = catalogue_place(catalogue, "https", "api.openai.com.", "https://api.openai.com.")
    assert place is not None and place.offerings == ("openai.api",)
    with pytest.raises(ConfigError, match=r"api\.openai\.com is the catalogue's host for openai\.api"):
        load_policy({"PRIVSDK_ENDPOINTS": "https://api.openai.com./v1=selfhosted.vllm"}, catalogue)
    env = {"PRIVSDK_REQUIRE": "private_deployment"}
    assert _judged(env, catalogue, "https://api.openai.com./v1/chat/completions", "gpt-4o")[0] == "refuse"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("http://::1:8000/v1=selfhosted.vllm", "an IPv6 address must be in brackets (write e.g. http://[::1]:8000/v1)"),
        ("http://[::1:8000/v1=selfhosted.vllm", "an IPv6 address goes in closed brackets"),
        ("http://127.0.0.1:http/v1=selfhosted.vllm", "the port is not a number"),
        ("http://127.0.0.1:8000/v1?token=CANARY-Q=selfhosted.vllm", "has no query string or fragment"),
        ("http:///v1=selfhosted.vllm", "names no host"),
    ],
)
def test_undeclarable_urls_are_refused_at_load_with_the_form_to_write(
    catalogue: Catalogue, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_policy({"PRIVSDK_ENDPOINTS": value}, catalogue)
    assert str(caught.value).startswith("PRIVSDK_ENDPOINTS: ")
    assert message in str(caught.value)
    assert "CANARY" not in str(caught.value)


def test_the_message_for_an_unplaced_request_gives_a_declarable_origin(catalogue: Catalogue) -> None:
    from privsdk.outbound.places import unplaced

    reason = unplaced((), "http", "::1", 8000, "/v1/chat/completions")
    assert "PRIVSDK_ENDPOINTS=http://[::1]:8000=OFFERING" in reason
    load_policy({"PRIVSDK_ENDPOINTS": "http://[::1]:8000=selfhosted.vllm"}, catalogue)  # what it says to write loads
    assert "PRIVSDK_ENDPOINTS=https://x.example=OFFERING" in unplaced((), "https", "x.example", None, "/v1")


def test_an_origin_declared_under_another_path_is_named_not_advised_again(catalogue: Catalogue) -> None:
    """A request outside the declared path prefix is told which prefix is declared, not to declare the origin."""
    from privsdk.outbound.places import unplaced

    policy = load_policy({"PRIVSDK_ENDPOINTS": "http://127.0.0.1:8000/v1beta=gemini.api"}, catalogue)
    assert declared_place(policy.endpoints, "http://127.0.0.1:8000", "/v1/models/gemini-2.5-flash:x") is None
    reason = unplaced(policy.endpoints, "http", "127.0.0.1", 8000, "/v1/models/gemini-2.5-flash:x")
    assert "declares http://127.0.0.1:8000/v1beta" in reason and "gemini-2.5-flash" not in reason
    assert "declares no such endpoint" not in reason


CANARY = "CANARY-PROXYPASS-3"


@pytest.mark.parametrize(
    "value",
    [
        f"https://svc:{CANARY}@llm-proxy.corp/openai=openai.apii",  # an offering typo
        f"https://svc:{CANARY}@llm-proxy.corp/openai?key={CANARY}=openai.api",
        f"https://svc:{CANARY}@llm-proxy.corp/openai",  # no =OFFERING
        f"ftp://svc:{CANARY}@llm-proxy.corp/openai=openai.api",
        f"https://svc:{CANARY}@api.openai.com/v1=selfhosted.vllm",
        f"https://svc:pa/{CANARY}@llm-proxy.corp/openai=openai.apii",  # a '/' in the password
    ],
)
def test_declared_endpoint_errors_never_show_user_info_or_query(catalogue: Catalogue, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_policy({"PRIVSDK_ENDPOINTS": value}, catalogue)
    error = caught.value
    assert str(error).startswith("PRIVSDK_ENDPOINTS: ") and error.hint
    for text in (str(error), repr(error), repr(error.args), error.message, error.hint or ""):
        assert CANARY not in text


def test_a_files_endpoint_errors_never_show_user_info(write_config, catalogue: Catalogue) -> None:  # type: ignore[no-untyped-def]
    for offering in ('"openai.apii"', "3"):
        path = write_config(f'[endpoints]\n"https://svc:{CANARY}@llm-proxy.corp/openai" = {offering}\n')
        with pytest.raises(ConfigError) as caught:
            load_policy({"PRIVSDK_CONFIG": str(path)}, catalogue)
        assert f"{path}:2" in str(caught.value) and "llm-proxy.corp/openai" in str(caught.value)
        assert CANARY not in str(caught.value) and CANARY not in repr(caught.value)


def test_the_unplaced_message_never_shows_a_declared_urls_user_info() -> None:
    """A target's ``endpoint`` is declared as written; the message names it without its user info."""
    from privsdk.outbound.places import unplaced
    from privsdk.policy import Endpoint

    declared = (Endpoint(f"http://svc:{CANARY}@127.0.0.1:8000/v1beta", "gemini.api"),)
    reason = unplaced(declared, "http", "127.0.0.1", 8000, "/v1/models")
    assert "declares http://127.0.0.1:8000/v1beta" in reason and CANARY not in reason
    assert declared_place(declared, "http://127.0.0.1:8000", "/v1beta/models") is not None
