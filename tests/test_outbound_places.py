"""Where a request goes: hosts placed on offerings, geographies and accounts, from catalogue data and the policy."""

from __future__ import annotations

import pytest

from privsdk.catalogue import Catalogue
from privsdk.config import load_policy
from privsdk.errors import ConfigError
from privsdk.outbound.places import Place, catalogue_place, declared_place, geography


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
        ("ftp://127.0.0.1=selfhosted.vllm", "bad endpoint URL"),
        ("http://127.0.0.1:8000", "is not URL=OFFERING"),
    ],
)
def test_bad_declared_endpoints(catalogue: Catalogue, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_policy({"PRIVSDK_ENDPOINTS": value}, catalogue)
    assert message in str(caught.value)
    assert "PRIVSDK_ENDPOINTS" in str(caught.value)


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
