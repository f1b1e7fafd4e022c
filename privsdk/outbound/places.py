"""Where a request goes: its origin and path placed on a catalogue offering, a geography and an account.

Two sources, in this order: the endpoints the policy declares (a self-hosted
server, a private endpoint, a corporate proxy with the real offering behind
it; every configured target's ``endpoint`` is declared too), then the host
patterns each offering lists in the catalogue (``{resource}.openai.azure.com``,
``bedrock-runtime.{aws_region}.amazonaws.com``). A host that neither knows is
placed nowhere, and the guard refuses the request.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import NamedTuple
from urllib.parse import unquote

from privsdk.catalogue import Catalogue
from privsdk.policy import Endpoint, Target


class Place(NamedTuple):
    """Where one request goes.

    ``offerings`` are the catalogue offerings the endpoint may serve (several
    when one host serves several, such as Vertex's Google and partner models;
    the model then narrows them). ``geography`` is what the host itself shows
    (``eu`` for ``eu.api.openai.com`` or ``europe-west4-aiplatform...``), None
    when it shows none; ``shows_geography`` says whether this kind of host can
    show one at all (``api.openai.com`` can, and shows none). ``region`` is the
    raw label (``eu-west-1``). ``account`` is the account the host names (an
    Azure resource) or a declared endpoint's account. ``endpoint`` is the
    declared endpoint's URL, or the origin.
    """

    offerings: tuple[str, ...]
    endpoint: str
    geography: str | None = None
    shows_geography: bool = False
    region: str | None = None
    #: What kind of label ``region`` is (``aws_region``, ``gcp_location``, ``geo``), for :func:`geography`.
    region_kind: str | None = None
    account: str | None = None
    declared: bool = False
    #: True when ``account`` is the one the host itself names (an Azure resource): no request can name another.
    shows_account: bool = False


#: AWS Region -> geography, by Region name or prefix (the longest match wins). London is not in the EEA,
#: Zurich is Switzerland: both are named for what they are, never folded into ``eu``.
_AWS = {
    "eu-west-2": "uk",
    "eu-central-2": "ch",
    "eu-": "eu",
    "us-gov-": "us",
    "us-": "us",
    "ca-": "ca",
    "ap-northeast-1": "jp",
    "ap-northeast-3": "jp",
    "ap-northeast-2": "kr",
    "ap-southeast-1": "sg",
    "ap-southeast-2": "au",
    "ap-southeast-4": "au",
    "ap-south-": "in",
    "sa-east-1": "br",
    "me-central-1": "ae",
}
#: Google Cloud location -> geography, likewise.
_GCP = {
    "europe-west2": "uk",
    "europe-west6": "ch",
    "europe-": "eu",
    "eu": "eu",
    "us-": "us",
    "us": "us",
    "northamerica-northeast": "ca",
    "asia-northeast1": "jp",
    "asia-northeast2": "jp",
    "asia-northeast3": "kr",
    "asia-southeast1": "sg",
    "asia-south1": "in",  # Mumbai; not a prefix: asia-southeast2 is Jakarta
    "asia-south2": "in",  # Delhi
    "australia-": "au",
    "southamerica-east1": "br",
}
#: Azure region (its programmatic name, as in ``{resource}.{azure_region}.models.ai.azure.com``) -> geography, by
#: name or prefix, from Microsoft's "Azure regions list" (https://learn.microsoft.com/azure/reliability/regions-list,
#: its Geography column). Norway (``norwayeast``, ``norwaywest``) is in the EEA but not the EU, and Azure's EU
#: deployment types speak of EU member states: privsdk takes the stricter reading and names it no geography, so
#: ``region=eu`` is not met there. Regions of geographies privsdk has no name for (Hong Kong's ``eastasia``, Qatar,
#: Israel, ...) are unknown (None) too.
_AZURE = {
    "eastus": "us",
    "westus": "us",
    "centralus": "us",
    "northcentralus": "us",
    "southcentralus": "us",
    "westcentralus": "us",
    "usgov": "us",
    "westeurope": "eu",
    "northeurope": "eu",
    "sweden": "eu",
    "france": "eu",
    "germany": "eu",
    "italy": "eu",
    "poland": "eu",
    "spain": "eu",
    "austria": "eu",
    "belgium": "eu",
    "uk": "uk",
    "switzerland": "ch",
    "canada": "ca",
    "australia": "au",
    "japan": "jp",
    "korea": "kr",
    "centralindia": "in",
    "southindia": "in",
    "westindia": "in",
    "jioindia": "in",
    "southeastasia": "sg",
    "uae": "ae",
    "brazilsouth": "br",  # not a prefix: Brazil US (brazilus) is another region
    "brazilsoutheast": "br",
}
_TABLES = {"aws_region": _AWS, "gcp_location": _GCP, "azure_region": _AZURE}


def geography(kind: str, region: str) -> str | None:
    """The geography of a cloud region label (``aws_region``, ``gcp_location``, ``azure_region``, ``geo``), None
    when unknown."""
    if kind == "geo":
        from privsdk.vocabulary import GEOGRAPHIES

        return region if region in GEOGRAPHIES else None
    table = _TABLES.get(kind)
    if table is None:
        return None
    best = ""  # the longest key that is the label or a prefix of it
    for prefix in table:
        if region.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return table.get(best)


class _Pattern(NamedTuple):
    regex: re.Pattern[str]
    offering: str
    fields: tuple[str, ...]


_FIELD = re.compile(r"\{(resource|aws_region|gcp_location|azure_region|geo)\}")
_GEO_FIELDS = ("aws_region", "gcp_location", "azure_region", "geo")
#: Host fields whose absence says nothing: a vendor's host without its ``{geo}`` or ``{gcp_location}``
#: (``api.openai.com``, ``aiplatform.googleapis.com``) serves no one geography, but an Azure host without its region
#: (``{resource}.services.ai.azure.com``) is a resource in a region the host does not show.
_SHOWN_ONLY_WHERE_PRESENT = ("azure_region",)


def _compile(pattern: str, offering: str) -> _Pattern:
    parts: list[str] = []
    fields: list[str] = []
    pos = 0
    for m in _FIELD.finditer(pattern):
        parts.append(re.escape(pattern[pos : m.start()]))
        parts.append(f"(?P<{m.group(1)}>[a-z0-9-]+?)" if m.group(1) != "resource" else "(?P<resource>[a-z0-9-]+)")
        fields.append(m.group(1))
        pos = m.end()
    parts.append(re.escape(pattern[pos:]))
    return _Pattern(re.compile("".join(parts)), offering, tuple(fields))


@functools.lru_cache(maxsize=8)
def _patterns(catalogue: Catalogue) -> tuple[_Pattern, ...]:
    """Every offering's host patterns, compiled once per catalogue (this loads every vendor's file)."""
    out: list[_Pattern] = []
    for vendor in catalogue.all_vendors():
        for offering in vendor.offerings.values():
            out.extend(_compile(p, offering.id) for p in offering.hosts)
    return tuple(out)


@functools.lru_cache(maxsize=256)
def region_kind(catalogue: Catalogue, offering: str) -> str | None:
    """What kind of region label the offering's vendor names (``aws_region`` for Bedrock, ``gcp_location`` for
    Vertex AI, ``azure_region``, ``geo``), from its catalogue hosts; None when its hosts name none (a self-hosted
    server). A request that names a region of its own (Vertex's ``locations/X``, a Bedrock model ARN) names this
    kind, and so does a target's ``region``.

    An offering whose own hosts name no region takes the one kind its vendor's other hosts name: Azure OpenAI's
    hosts (``{resource}.openai.azure.com``) show no region, but an Azure OpenAI target's ``eastus`` is an Azure
    region all the same, not a geography label. A vendor whose hosts name several kinds (Cohere's: AWS and Azure
    regions) lends none."""
    fields = {f for p in _patterns(catalogue) if p.offering == offering for f in p.fields}
    own = next((k for k in _GEO_FIELDS if k in fields), None)
    if own is not None:
        return own
    vendor = offering.partition(".")[0] + "."
    fields = {f for p in _patterns(catalogue) if p.offering.startswith(vendor) for f in p.fields}
    kinds = [k for k in _GEO_FIELDS if k in fields]
    return kinds[0] if len(kinds) == 1 else None


def target_account(catalogue: Catalogue, target: Target) -> str | None:
    """The account a configured target's requests carry, as the guard reads it from a request: the resource its
    ``endpoint`` host names (an Azure resource), else its ``project`` (a Google Cloud project, sent in a Vertex
    path; an OpenAI project, sent as the ``OpenAI-Project`` header); None when its config names none."""
    if target.endpoint:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(target.endpoint)
            host, port = parts.hostname, parts.port
        except ValueError:
            host = port = None
        if host:
            place = catalogue_place(catalogue, parts.scheme.lower(), host, origin_of(parts.scheme.lower(), host, port))
            if place is not None and place.shows_account:
                return place.account
    return target.project


def sent_to_plain_host(catalogue: Catalogue, endpoints: tuple[Endpoint, ...], target: Target) -> bool:
    """Whether the SDK sends a target that names neither endpoint nor region to a host that shows no geography: the
    one host of its offering that names none, when its others differ from it only by the geography they name
    (``api.openai.com`` beside ``{geo}.api.openai.com``, Mistral's likewise), and the policy declares no endpoint
    for the offering (a gateway the SDK may be pointed at instead). A decision by the target's name is then made for
    that host, as the guard's for a request to it is: ``openai:region=eu`` does not hold at ``api.openai.com``."""
    if target.endpoint or target.region or any(e.offering == target.offering for e in endpoints):
        return False
    offering = catalogue.offering(target.offering)
    hosts = offering.hosts if offering is not None else ()
    plain = [h for h in hosts if "{" not in h]
    others = [h for h in hosts if "{" in h]
    return len(plain) == 1 and bool(others) and all(h.count("{") == 1 and "{geo}" in h for h in others)


def catalogue_place(catalogue: Catalogue, scheme: str, host: str, origin: str) -> Place | None:
    """The place the catalogue's host patterns give ``host``, or None. Vendors are reached over https only.

    A fully qualified ``api.openai.com.`` is the same DNS name as ``api.openai.com``, and is placed as it.
    """
    if scheme != "https":
        return None
    return _catalogue_place(catalogue, dns_name(host), origin)


def dns_name(host: str) -> str:
    """``host`` lower-case, without the one trailing dot of a fully qualified name (the same DNS name)."""
    host = host.lower()
    return host[:-1] if host.endswith(".") and not host.endswith("..") else host


def origin_of(scheme: str, host: str, port: int | None) -> str:
    """``scheme://host[:port]`` as a policy declares it: an IPv6 address in brackets, the scheme's default port
    left out, the DNS name without its trailing dot."""
    host = dns_name(host.strip("[]"))
    default = {"https": 443, "http": 80}.get(scheme)
    shown = f":{port}" if port is not None and port != default else ""
    return f"{scheme}://[{host}]{shown}" if ":" in host else f"{scheme}://{host}{shown}"


@functools.lru_cache(maxsize=1024)
def _catalogue_place(catalogue: Catalogue, host: str, origin: str) -> Place | None:
    offerings: list[str] = []
    found: dict[str, str] = {}
    for p in _patterns(catalogue):
        m = p.regex.fullmatch(host)
        if m is None:
            continue
        if p.offering not in offerings:
            offerings.append(p.offering)
        for name in p.fields:
            found.setdefault(name, m.group(name))
    if not offerings:
        return None
    shows = any(
        f in _GEO_FIELDS and (f in found or f not in _SHOWN_ONLY_WHERE_PRESENT)
        for p in _patterns(catalogue)
        if p.offering in offerings
        for f in p.fields
    )
    kind = next((k for k in _GEO_FIELDS if k in found), None)
    region = found.get(kind) if kind else None
    return Place(
        offerings=tuple(offerings),
        endpoint=origin,
        geography=geography(kind, region) if kind and region else None,
        shows_geography=shows,
        region=region,
        region_kind=kind,
        account=found.get("resource"),
        shows_account="resource" in found,
    )


def _normal_origin(origin: str) -> str:
    """A request's origin as :func:`origin_of` writes it. An IPv6 address written without brackets (which cannot
    be split from its port) stays as it is: :func:`_declared` gives each IPv6 endpoint that spelling too."""
    scheme, _, authority = origin.partition("://")
    authority = authority.rpartition("@")[2]
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif authority.count(":") > 1:
        return f"{scheme.lower()}://{authority.lower()}"
    else:
        host, _, port = authority.partition(":")
    if port and not port.isdigit():
        return origin
    return origin_of(scheme.lower(), host, int(port) if port else None)


@functools.lru_cache(maxsize=64)
def _declared(endpoints: tuple[Endpoint, ...]) -> tuple[tuple[str, int, Endpoint, str], ...]:
    """Each endpoint's URL in the spellings a request's origin may take, with the length that ranks it and the
    URL as messages show it (as :func:`origin_of` writes it: a target's ``endpoint`` may hold user info).

    Declarations are compared as :func:`origin_of` writes them: ``https://host:443/x`` is ``https://host/x``,
    ``host.`` is ``host``, user info is no part of the place, and an IPv6 endpoint ``http://[::1]:8000`` also
    matches the bracketless ``http://::1:8000`` a request's origin may be written as.
    """
    from urllib.parse import urlsplit

    out: list[tuple[str, int, Endpoint, str]] = []
    for e in endpoints:
        try:
            parts = urlsplit(e.url)
            host, port = parts.hostname, parts.port
        except ValueError:
            host = port = None
        if not host:  # not a URL: matched as written, never shown
            out.append((e.url.rstrip("/"), len(e.url), e, "an endpoint that is not a URL"))
            continue
        path = parts.path.rstrip("/")
        canonical = origin_of(parts.scheme.lower(), host, port)
        out.append((canonical + path, len(canonical + path), e, canonical + path))
        if ":" in host:
            bare = canonical.replace("[", "", 1).replace("]", "", 1)
            out.append((bare + path, len(canonical + path), e, canonical + path))
    return tuple(out)


def check_declarations(endpoints: tuple[Endpoint, ...]) -> None:
    """Raise :class:`ConfigError` when one URL is declared twice for another offering or account (the same URL
    written two ways, ``http://GW:80/v1/`` and ``http://gw/v1``, is one): a request there could be judged as
    either, and which one won would hang on the order of the declarations."""
    seen: dict[str, Endpoint] = {}
    for base, _, e, shown in _declared(endpoints):
        first = seen.setdefault(base, e)
        if (first.offering, first.account) != (e.offering, e.account):
            from privsdk.errors import ConfigError

            def named(e: Endpoint) -> str:
                return e.offering + (f"@{e.account}" if e.account else "")

            raise ConfigError(
                f"{shown} is declared twice, as {named(first)} and as {named(e)}",
                hint="declare each endpoint once: PRIVSDK_ENDPOINTS, the policy file's [endpoints] and each "
                "target's endpoint all declare one",
            )


def declared_place(
    endpoints: Iterable[Endpoint], origin: str, path: str, fold: Callable[[str], str] | None = None
) -> Place | None:
    """The declared endpoint whose URL is the longest prefix of ``origin + path``, or None; with ``fold``, the
    longest prefix once both are folded by it (:func:`as_lenient_servers_route`)."""
    url = _normal_origin(origin) + path
    if fold is not None:
        url = fold(url)
    best: Endpoint | None = None
    rank = -1
    for base, length, e, _ in _declared(tuple(endpoints)):
        if fold is not None:
            base = fold(base)
        if (url == base or url.startswith(base if base.endswith("/") else base + "/")) and length > rank:
            best, rank = e, length
    if best is None:
        return None
    return Place(offerings=(best.offering,), endpoint=best.url, account=best.account, declared=True)


def as_lenient_servers_route(url: str) -> str:
    """``url`` as the most lenient server or gateway in front of a declared endpoint may route it: %-escapes
    decoded (twice: some decode again), Unicode folded to its compatibility form (a full-width solidus is "/"),
    letters in one case (ASP.NET Core, YARP and API Management match routes without case), cut at a NUL or a
    decoded "?" or "#", empty segments merged (nginx merges "//"), and each segment without the dots and spaces
    Windows servers drop from its end."""
    folded = unicodedata.normalize("NFKC", unquote(unquote(url))).casefold().replace("\\", "/")
    for stop in ("\x00", "?", "#"):
        folded = folded.partition(stop)[0]
    scheme, sep, rest = folded.partition("://")
    if not sep:  # an endpoint declared as something else than a URL
        scheme, rest = "", folded
    parts = [part.rstrip(". ") for part in rest.split("/")]
    return scheme + sep + "/".join(part for at, part in enumerate(parts) if part or at == len(parts) - 1)


def unplaced(endpoints: Iterable[Endpoint], scheme: str, host: str, port: int | None, path: str) -> str:
    """Why a request to ``scheme://host:port`` + ``path`` is placed nowhere, and what to declare.

    The origin is shown as a declaration writes it (an IPv6 address in brackets); the path is never shown
    (it can carry ids). When the policy declares endpoints at this origin, none of whose paths covers the
    request, the message names them instead of advising a declaration that exists.
    """
    origin = origin_of(scheme, host, port)
    here = sorted({shown for base, _, _, shown in _declared(tuple(endpoints)) if _same_origin(base, origin)})
    if here:
        return (
            f"{origin} is declared only under other paths: the policy declares {', '.join(here)}, and this "
            f"request's path is under none of them (declare the path prefix this SDK sends to, or the origin "
            f"alone to cover every path: PRIVSDK_ENDPOINTS={origin}=OFFERING, or [endpoints] in the policy file)"
        )
    return (
        f"{origin} is not an endpoint privsdk knows: the catalogue has no such host and the policy "
        f"declares no such endpoint (declare it: PRIVSDK_ENDPOINTS={origin}=OFFERING, or [endpoints] "
        "in the policy file)"
    )


def _same_origin(base: str, origin: str) -> bool:
    return base == origin or base.startswith(origin + "/")
