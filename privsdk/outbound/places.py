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
from collections.abc import Iterable
from typing import NamedTuple

from privsdk.catalogue import Catalogue
from privsdk.policy import Endpoint


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
    "asia-south": "in",
    "australia-": "au",
    "southamerica-east1": "br",
}


def geography(kind: str, region: str) -> str | None:
    """The geography of a cloud region label (``aws_region``, ``gcp_location``, ``geo``), None when unknown."""
    if kind == "geo":
        from privsdk.vocabulary import GEOGRAPHIES

        return region if region in GEOGRAPHIES else None
    table = _AWS if kind == "aws_region" else _GCP if kind == "gcp_location" else None
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
_GEO_FIELDS = ("aws_region", "gcp_location", "geo")


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


def catalogue_place(catalogue: Catalogue, scheme: str, host: str, origin: str) -> Place | None:
    """The place the catalogue's host patterns give ``host``, or None. Vendors are reached over https only."""
    if scheme != "https":
        return None
    return _catalogue_place(catalogue, host, origin)


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
    shows = any(f in _GEO_FIELDS for p in _patterns(catalogue) if p.offering in offerings for f in p.fields)
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
    )


def declared_place(endpoints: Iterable[Endpoint], origin: str, path: str) -> Place | None:
    """The declared endpoint whose URL is the longest prefix of ``origin + path``, or None."""
    url = origin + path
    best: Endpoint | None = None
    for e in endpoints:
        base = e.url
        if (url == base or url.startswith(base if base.endswith("/") else base + "/")) and (
            best is None or len(base) > len(best.url)
        ):
            best = e
    if best is None:
        return None
    return Place(offerings=(best.offering,), endpoint=best.url, account=best.account, declared=True)
