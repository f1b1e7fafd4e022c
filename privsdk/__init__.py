"""privsdk: one client over LLM vendor SDKs that checks, before a prompt leaves
the process, that the target's data guarantees meet the tenant's requirements.

Importing privsdk is cheap: it loads no vendor SDK and no catalogue file.
The names below are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, TypeVar

__version__ = "0.1.0"

_EXPORTS = {
    "ConfigError": "privsdk.errors",
    "PrivsdkError": "privsdk.errors",
    "Decision": "privsdk.decision",
    "Unmet": "privsdk.decision",
    "decide": "privsdk.decision",
    "Policy": "privsdk.policy",
    "Target": "privsdk.policy",
    "Tenant": "privsdk.policy",
    "load_policy": "privsdk.config",
    "Catalogue": "privsdk.catalogue",
    "default_catalogue": "privsdk.catalogue",
    "Operation": "privsdk.vocabulary",
    "parse_requirement": "privsdk.vocabulary",
    "parse_requirements": "privsdk.vocabulary",
    "TagError": "privsdk.errors",
    "UsageRecord": "privsdk.usage.record",
    "Client": "privsdk.client",
    "AsyncClient": "privsdk.async_client",
    "scope": "privsdk.context",
    "propagate": "privsdk.context",
    "PolicyViolation": "privsdk.errors",
    "VendorError": "privsdk.errors",
    "instrument": "privsdk.outbound",
    "uninstrument": "privsdk.outbound",
    "Guard": "privsdk.outbound.judge",
}

__all__ = [
    "AsyncClient",
    "Catalogue",
    "Client",
    "ConfigError",
    "Decision",
    "Guard",
    "Operation",
    "Policy",
    "PolicyViolation",
    "PrivsdkError",
    "TagError",
    "Target",
    "Tenant",
    "Unmet",
    "UsageRecord",
    "VendorError",
    "__version__",
    "decide",
    "default_catalogue",
    "guard",
    "instrument",
    "load_policy",
    "parse_requirement",
    "parse_requirements",
    "propagate",
    "scope",
    "uninstrument",
]

if TYPE_CHECKING:
    from privsdk.async_client import AsyncClient
    from privsdk.catalogue import Catalogue, default_catalogue
    from privsdk.client import Client
    from privsdk.config import load_policy
    from privsdk.context import propagate, scope
    from privsdk.decision import Decision, Unmet, decide
    from privsdk.errors import ConfigError, PolicyViolation, PrivsdkError, TagError, VendorError
    from privsdk.outbound import instrument, uninstrument
    from privsdk.outbound.judge import Guard
    from privsdk.policy import Policy, Target, Tenant
    from privsdk.usage.record import UsageRecord
    from privsdk.vocabulary import Operation, parse_requirement, parse_requirements


C = TypeVar("C")


def guard(client: C) -> C:
    """Guard a vendor SDK client the app already built, in place, and return it.

    Takes a client of openai (``OpenAI``, ``AsyncOpenAI``, ``AzureOpenAI`` ...), cohere, mistralai,
    boto3/botocore (``bedrock-runtime`` and the other Bedrock services) or google-genai. Every request it
    sends from now on is judged by the process-wide guard (``PRIVSDK_*`` environment). Anything else is a
    :class:`~privsdk.errors.InvalidArgument` (a ``TypeError`` too) naming its type.
    """
    from privsdk import outbound

    if outbound._sdk_of(type(client)) is None:
        from privsdk.errors import InvalidArgument

        raise InvalidArgument(
            "privsdk.guard() takes a client of openai, cohere, mistralai, boto3 or google-genai, "
            f"not {type(client).__module__}.{type(client).__qualname__}"
        )
    return outbound.guard(client)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'privsdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, loaded or not (the module's own globals hold its import machinery)."""
    return sorted(__all__)
