"""privsdk adapter for the ``google-genai`` SDK.

Serves Gemini and Google's embedding models on Vertex AI (``vertex.gemini``)
and the Gemini Developer API (``gemini.api``). The target's settings are
checked here, without the SDK, so a configuration mistake never waits for the
second it takes to import ``google.genai``; the SDK is imported when the first
adapter is built. ``vertex.partner`` (Claude, Llama, Mistral on Vertex) is
refused: those models speak their makers' own APIs, not ``generateContent``.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from privsdk.adapter import credential_missing
from privsdk.config import shown_key
from privsdk.errors import ConfigError

if TYPE_CHECKING:
    from privsdk.adapter import Adapter, AdapterOptions
    from privsdk.policy import Target

__all__ = ["CREDENTIAL_KEYS", "adapter"]

#: The ``options.credentials`` keys each offering reads.
CREDENTIAL_KEYS = {"vertex.gemini": ("access_token",), "gemini.api": ("api_key",)}
#: Vertex locations are region names (``europe-west4``), multi-regions (``eu``, ``us``) or ``global``;
#: anything else would be spliced into the host name and the resource path.
_LOCATION = re.compile(r"[a-z][a-z0-9-]{0,62}")
#: Where google-genai looks for a Gemini API key, in its order.
_API_KEY_ENV = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
_PROJECT = re.compile(r"[a-z0-9][a-z0-9.:-]{0,127}")


def adapter(target: Target, options: AdapterOptions) -> Adapter:
    """The adapter for ``target``: a :class:`~privsdk.errors.ConfigError` for a target it cannot serve."""
    offering = target.offering
    if offering == "vertex.gemini":
        _check_credentials(target, options)
        project = _setting(target, "project", target.project, "GOOGLE_CLOUD_PROJECT", _PROJECT)
        location = _setting(target, "region", target.region, "GOOGLE_CLOUD_LOCATION", _LOCATION)
        from privsdk_vertex.gemini import VertexGemini

        return VertexGemini(target, options, project=project, location=location)
    if offering == "gemini.api":
        _check_credentials(target, options)
        for key, value in (("project", target.project), ("region", target.region)):
            if value:
                raise ConfigError(
                    f"target {target.name!r} (gemini.api) cannot set {key}: the Gemini Developer API has none",
                    where=f"targets.{target.name}.{key}",
                    hint="use offering vertex.gemini to choose a Google Cloud project and location",
                )
        if not (options.credentials.get("api_key") or any(os.environ.get(env) for env in _API_KEY_ENV)):
            raise ConfigError(
                f"target {target.name!r} (gemini.api) has no API key",
                where=f"targets.{target.name}",
                hint="set credentials api_key, or " + " or ".join(_API_KEY_ENV),
            )
        from privsdk_vertex.gemini import GeminiApi

        return GeminiApi(target, options)
    if offering == "vertex.partner":
        raise ConfigError(
            f"target {target.name!r}: partner models on Vertex AI (vertex.partner) are not reachable yet: "
            "privsdk's vertex adapter serves Google's own models only",
            where=f"targets.{target.name}.offering",
            hint="use vertex.gemini, or the partner's own offering where privsdk has one",
        )
    raise ConfigError(
        f"target {target.name!r}: privsdk's vertex adapter does not serve offering {offering!r}",
        where=f"targets.{target.name}.offering",
        hint="valid: " + ", ".join(CREDENTIAL_KEYS),
    )


def _check_credentials(target: Target, options: AdapterOptions) -> None:
    valid = CREDENTIAL_KEYS[target.offering]
    unknown = sorted(set(options.credentials) - set(valid))
    if unknown:
        raise ConfigError(
            f"target {target.name!r} ({target.offering}) cannot use credential keys "
            f"{', '.join(shown_key(k) for k in unknown)}",
            where=f"targets.{target.name}",
            hint="valid: " + ", ".join(valid),
        )
    (key,) = valid
    if options.credentials and not options.credentials.get(key):
        # Credentials given are an account of their own: the SDK would otherwise take the deployment's
        # (GOOGLE_API_KEY / GEMINI_API_KEY, or Application Default Credentials).
        vendor = target.offering.split(".", 1)[0]
        fallback = "Application Default Credentials" if vendor == "vertex" else " or ".join(_API_KEY_ENV)
        raise credential_missing(target, vendor, key, fallback)


def _setting(target: Target, key: str, own: str | None, env: str, shape: re.Pattern[str]) -> str:
    """A Vertex project or location: the target's own, else the SDK's environment variable."""
    value = own or os.environ.get(env)
    where = env if value and not own else f"targets.{target.name}.{key}"
    if not value:
        hint = f"set {key} in the target, or {env}"
        raise ConfigError(f"target {target.name!r} (vertex.gemini) has no {key}", where=where, hint=hint)
    if not shape.fullmatch(value):
        raise ConfigError(
            f"target {target.name!r} (vertex.gemini) has an invalid {key} {value!r}",
            where=where,
            hint="a Vertex location such as europe-west4, eu, us or global" if key == "region" else "a project id",
        )
    return value
