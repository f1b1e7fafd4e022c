"""Which offerings this adapter serves and which target settings each one reads, checked without the SDK."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from privsdk.config import shown_key
from privsdk.errors import ConfigError

if TYPE_CHECKING:
    from privsdk.adapter import AdapterOptions
    from privsdk.policy import Target

Kind = Literal["openai", "openai_responses", "azure", "foundry", "selfhosted"]

#: Offering -> the kind of client it needs.
OFFERINGS: Mapping[str, Kind] = {
    "openai.api": "openai",
    "azure.openai": "azure",
    "azure.foundry": "foundry",
    "selfhosted.openai_compatible": "selfhosted",
    "selfhosted.vllm": "selfhosted",
    "selfhosted.ollama": "selfhosted",
}

#: Per kind: the target ``options`` keys read, each with its valid values (the first is the default).
_OPTIONS: Mapping[Kind, Mapping[str, tuple[str, ...]]] = {
    "openai": {"api": ("chat_completions", "responses")},
    "azure": {"auth": ("key", "entra")},
    "foundry": {"auth": ("key", "entra")},
    "selfhosted": {},
}
#: Per kind: the ``options.credentials`` keys read.
_CREDENTIALS: Mapping[Kind, frozenset[str]] = {
    "openai": frozenset({"api_key", "organization", "project"}),
    "azure": frozenset({"api_key", "azure_ad_token"}),
    "foundry": frozenset({"api_key", "azure_ad_token"}),
    "selfhosted": frozenset({"api_key"}),
}


def where(target: Target) -> str:
    return f"targets.{target.name}"


def check(target: Target, options: AdapterOptions) -> Kind:
    """The kind of adapter ``target`` needs, after checking every setting this adapter reads."""
    kind = OFFERINGS.get(target.offering)
    if kind is None:
        raise ConfigError(
            f"the openai adapter does not serve offering {target.offering!r}",
            where=where(target),
            hint="valid: " + ", ".join(OFFERINGS),
        )
    valid = _OPTIONS[kind]
    for key, value in target.options:
        if key not in valid:
            raise ConfigError(
                f"option {key!r} means nothing for {target.offering}",
                where=where(target),
                hint="valid: " + (", ".join(valid) or "no options"),
            )
        if value not in valid[key]:
            raise ConfigError(
                f"option {key} = {value!r} is not valid", where=where(target), hint="valid: " + ", ".join(valid[key])
            )
    unknown = sorted(set(options.credentials) - _CREDENTIALS[kind])
    if unknown:
        raise ConfigError(
            f"credential keys {', '.join(shown_key(k) for k in unknown)} mean nothing for {target.offering}",
            where=where(target),
            hint="valid: " + ", ".join(sorted(_CREDENTIALS[kind])),
        )
    if kind in ("azure", "foundry"):
        entra = target.option("auth") == "entra"
        wrong = "api_key" if entra else "azure_ad_token"
        if wrong in options.credentials:
            raise ConfigError(
                f"credential {wrong!r} does not go with option auth = {'entra' if entra else 'key'}",
                where=where(target),
                hint='auth = "entra" takes azure_ad_token, auth = "key" (the default) takes api_key',
            )
    if kind in ("foundry", "selfhosted") and not target.endpoint:
        raise ConfigError(
            f"{target.offering} needs the server's URL",
            where=where(target),
            hint="set endpoint, e.g. endpoint = "
            + (
                '"http://host:8000/v1"'
                if kind == "selfhosted"
                else '"https://RESOURCE.services.ai.azure.com/openai/v1"'
            ),
        )
    if kind == "openai" and target.region and target.endpoint:
        raise ConfigError(
            "region and endpoint both choose the host", where=where(target), hint="set one: region picks OpenAI's own"
        )
    if kind == "openai" and target.option("api") == "responses":
        return "openai_responses"
    return kind
