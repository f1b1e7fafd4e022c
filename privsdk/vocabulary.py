"""The words tenants write: requirements, operations and geographies.

Every name here appears in configuration files, environment variables and
CLI output, so the spelling is part of the public contract.
"""

from __future__ import annotations

import enum
from typing import ClassVar

from privsdk.errors import ConfigError


class Operation(str, enum.Enum):
    """What a call does. Guarantees can differ per operation (files and batch keep data)."""

    CHAT = "chat"
    STREAM = "stream"
    EMBED = "embed"
    RERANK = "rerank"
    FILES = "files"
    BATCH = "batch"
    FINE_TUNE = "fine_tune"
    # Endpoint families the transport guard recognises in a request's path. The catalogue
    # gives no offering facts for them, so a request to one is refused (fail closed).
    ASSISTANTS = "assistants"
    VECTOR_STORES = "vector_stores"
    IMAGES = "images"
    AUDIO = "audio"
    MODERATION = "moderation"
    REALTIME = "realtime"
    RESPONSES_STATE = "responses_state"
    OTHER = "other"
    #: Listing models carries no content: allowed on any endpoint the guard can place.
    MODELS = "models"


OPERATIONS: tuple[str, ...] = tuple(op.value for op in Operation)
#: Operations whose requests carry no content, so no requirement applies to them.
CONTENT_FREE_OPERATIONS: frozenset[str] = frozenset({"models"})

#: Geographies a ``region=`` requirement or attestation may name. Each is a
#: legal area, not a cloud region: ``eu`` is the EEA (plus Switzerland where a
#: vendor groups it so), ``apac`` is a vendor-defined Asia-Pacific area that is
#: not the same promise as any one country in it.
GEOGRAPHIES: tuple[str, ...] = (
    "eu",
    "us",
    "uk",
    "ch",
    "ca",
    "au",
    "jp",
    "kr",
    "in",
    "sg",
    "ae",
    "br",
    "apac",
)
#: The geographies a host can show inside an area a vendor defines: a request served in Tokyo is served in APAC (the
#: AWS Regions privsdk places there). What the area may hold besides (AWS's APAC may take in the UAE) is no country
#: a host in it shows, so none is listed.
WITHIN: dict[str, frozenset[str]] = {"apac": frozenset({"au", "jp", "kr", "in", "sg"})}


class _Requirement:
    """Common behaviour of the requirement types: immutable, compared by kind and value.

    Plain slotted classes rather than dataclasses: creating a dataclass costs
    about 0.7 ms at import, and these are on the path of the first decision.
    """

    __slots__ = ()
    fact: ClassVar[str]  # the catalogue fact the requirement reads

    def _args(self) -> tuple[object, ...]:
        return ()

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._args() == other._args()

    def __hash__(self) -> int:
        return hash((type(self), self._args()))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self._args()))})"


class NoTraining(_Requirement):
    """``no_training``: the vendor does not use this account's inputs or outputs
    (prompts, completions, embeddings inputs, files) to train or improve any
    model, either by default or through a setting the tenant attests."""

    __slots__ = ()
    fact = "no_training"

    def __str__(self) -> str:
        return "no_training"


class ZeroDataRetention(_Requirement):
    """``zdr``: nothing of the content (prompt, output, files) is kept at rest
    once the call returns, abuse-monitoring logs included. Holds only where the
    offering's retention is zero days for this account and operation."""

    __slots__ = ()
    fact = "retention_days"

    def __str__(self) -> str:
        return "zdr"


class MaxRetentionDays(_Requirement):
    """``max_retention_days=N``: the vendor keeps content for at most ``N`` days
    (abuse logs included). Content kept "until deleted" never meets it."""

    __slots__ = ("days",)
    fact = "retention_days"
    days: int

    def __init__(self, days: int) -> None:
        object.__setattr__(self, "days", days)

    def _args(self) -> tuple[object, ...]:
        return (self.days,)

    def __str__(self) -> str:
        return f"max_retention_days={self.days}"


class NoHumanReview(_Requirement):
    """``no_human_review``: no person at the vendor (or its model provider) can
    read the content, flagged content included."""

    __slots__ = ()
    fact = "no_human_review"

    def __str__(self) -> str:
        return "no_human_review"


class NoProviderSharing(_Requirement):
    """``no_provider_sharing``: when a platform hosts another maker's model
    (Claude on Bedrock, Mistral on Azure), the maker never receives the content.
    A first-party API meets it: there is no other maker."""

    __slots__ = ()
    fact = "no_provider_sharing"

    def __str__(self) -> str:
        return "no_provider_sharing"


class PrivateDeployment(_Requirement):
    """``private_deployment``: inference runs on infrastructure the tenant
    controls (its own VPC, on-premises, a self-hosted endpoint)."""

    __slots__ = ()
    fact = "private_deployment"

    def __str__(self) -> str:
        return "private_deployment"


class Region(_Requirement):
    """``region=eu`` or ``region=eu|us``: processing and storage of content stay
    inside the listed geographies. An offering that may process anywhere
    ("global") never meets it."""

    __slots__ = ("geographies",)
    fact = "regions"
    geographies: frozenset[str]

    def __init__(self, geographies: frozenset[str]) -> None:
        object.__setattr__(self, "geographies", geographies)

    def _args(self) -> tuple[object, ...]:
        return (self.geographies,)

    def __str__(self) -> str:
        return "region=" + "|".join(sorted(self.geographies))


class HipaaBaa(_Requirement):
    """``hipaa_baa``: a HIPAA Business Associate Agreement covers this offering
    for this account (signed with the vendor, or the operator's own coverage
    for a self-hosted endpoint)."""

    __slots__ = ()
    fact = "hipaa_baa"

    def __str__(self) -> str:
        return "hipaa_baa"


Requirement = (
    NoTraining
    | ZeroDataRetention
    | MaxRetentionDays
    | NoHumanReview
    | NoProviderSharing
    | PrivateDeployment
    | Region
    | HipaaBaa
)

_FLAGS: dict[str, Requirement] = {
    "no_training": NoTraining(),
    "zdr": ZeroDataRetention(),
    "no_human_review": NoHumanReview(),
    "no_provider_sharing": NoProviderSharing(),
    "private_deployment": PrivateDeployment(),
    "hipaa_baa": HipaaBaa(),
}

#: Every requirement form, as a user would write it.
REQUIREMENT_NAMES: tuple[str, ...] = (*_FLAGS, "max_retention_days=N", "region=GEO[|GEO...]")


def parse_requirement(text: str) -> Requirement:
    """Parse one requirement as written in config or ``PRIVSDK_REQUIRE``.

    Raises :class:`ConfigError` naming the valid forms when ``text`` is not one.
    """
    name, sep, value = text.strip().partition("=")
    name = name.strip()
    value = value.strip()
    if not sep and name in _FLAGS:
        return _FLAGS[name]
    if name == "max_retention_days" and sep:
        if not (value.isascii() and value.isdigit()):  # "²".isdigit() is True, and int() rejects it
            raise ConfigError(
                f"max_retention_days needs a whole number of days, got {value!r}",
                hint="write e.g. max_retention_days=30",
            )
        return MaxRetentionDays(int(value))
    if name == "region" and sep:
        geos = frozenset(g.strip() for g in value.split("|"))
        unknown = sorted(g for g in geos if g not in GEOGRAPHIES)
        if unknown or not value:
            raise ConfigError(
                f"unknown geography {', '.join(unknown) or repr(value)} in {text.strip()!r}",
                hint="valid geographies: " + ", ".join(GEOGRAPHIES),
            )
        return Region(geos)
    if name in _FLAGS:
        raise ConfigError(f"requirement {name!r} takes no value, got {text.strip()!r}", hint=f"write just {name}")
    raise ConfigError(
        f"unknown requirement {text.strip()!r}",
        hint="valid requirements: " + ", ".join(REQUIREMENT_NAMES),
    )


def parse_requirements(items: list[str] | tuple[str, ...]) -> tuple[Requirement, ...]:
    """Parse a list of requirements, dropping exact repeats and keeping order."""
    out: list[Requirement] = []
    for item in items:
        req = parse_requirement(item)
        if req not in out:
            out.append(req)
    return tuple(out)


def parse_operation(text: str) -> Operation:
    """Parse an operation name; unknown names are a :class:`ConfigError`."""
    try:
        return Operation(text)
    except ValueError:
        raise ConfigError(f"unknown operation {text!r}", hint="valid operations: " + ", ".join(OPERATIONS)) from None


#: Request features that change what a vendor keeps, beyond the operation itself.
#: A catalogue limit can name them; :func:`privsdk.decision.decide` takes the set in use.
FEATURES: dict[str, str] = {
    "stored_responses": "Responses-style API state kept by the vendor (store=true, conversations)",
    "background": "background / asynchronous response mode polled later",
    "prompt_caching": "explicit or extended prompt/context caching held by the vendor",
    "hosted_tools": "vendor-hosted tool containers (code interpreter, hosted shell)",
    "web_search": "the vendor's web search tool",
    "audio_output": "audio generated by the model (chat audio output, speech), which the vendor keeps for a while",
    "grounding_search": "grounding with Google Search",
    "grounding_maps": "grounding with Google Maps",
    "session_resumption": "Live API session resumption",
    "request_response_logging": "vendor-side request/response logging (e.g. Vertex to BigQuery)",
    "image_output": "images generated by the model",
    "file_inputs": "files, images or audio sent as input (CSAM-flagged image and file inputs can be kept for review)",
    "file_search": "the vendor's hosted file search over stored files or vector stores",
}


#: Features that make a vendor keep content past the call, or send it to another service. An offering whose
#: catalogue entry has no limit naming such a feature cannot be judged with it in use (privsdk fails closed);
#: the others (content types such as file inputs, generated images) change a fact only where a limit says so.
STATEFUL_FEATURES: frozenset[str] = frozenset(FEATURES) - {"file_inputs", "image_output"}


def parse_feature(text: str) -> str:
    """Check a feature name; unknown names are a :class:`ConfigError`."""
    if text not in FEATURES:
        raise ConfigError(f"unknown feature {text!r}", hint="valid features: " + ", ".join(FEATURES))
    return text
