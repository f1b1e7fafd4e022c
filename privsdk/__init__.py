"""privsdk: one client over LLM vendor SDKs that checks, before a prompt leaves
the process, that the target's data guarantees meet the tenant's requirements.

Importing privsdk is cheap: it loads no vendor SDK and no catalogue file.
The names below are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, TypeVar

__version__ = "0.1.0"

#: Every error class of privsdk.errors (an app catches privsdk.RateLimited as it catches privsdk.PolicyViolation).
_ERRORS = (
    "PrivsdkError",
    "ConfigError",
    "CatalogueError",
    "AdapterMissing",
    "SdkMissing",
    "InvalidInput",
    "InvalidArgument",
    "ClientClosed",
    "Unsupported",
    "VendorError",
    "RateLimited",
    "Unavailable",
    "VendorTimeout",
    "ConnectionLost",
    "BadRequest",
    "AuthFailed",
    "NotFound",
    "ContentRefused",
    "UnexpectedError",
    "PolicyViolation",
    "TagError",
)
_EXPORTS = {
    **dict.fromkeys(_ERRORS, "privsdk.errors"),
    "CallOptions": "privsdk.client",
    "ChatOptions": "privsdk.client",
    "MessageLike": "privsdk.messages",
    "ToolLike": "privsdk.messages",
    "ToolChoice": "privsdk.types",
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
    "UsageRecord": "privsdk.usage.record",
    "Client": "privsdk.client",
    "AsyncClient": "privsdk.async_client",
    "scope": "privsdk.context",
    "propagate": "privsdk.context",
    "instrument": "privsdk.outbound",
    "uninstrument": "privsdk.outbound",
    "Guard": "privsdk.outbound.judge",
}

__all__ = [
    "AdapterMissing",
    "AsyncClient",
    "AuthFailed",
    "BadRequest",
    "CallOptions",
    "Catalogue",
    "CatalogueError",
    "ChatOptions",
    "Client",
    "ClientClosed",
    "ConfigError",
    "ConnectionLost",
    "ContentRefused",
    "Decision",
    "Guard",
    "InvalidArgument",
    "InvalidInput",
    "MessageLike",
    "NotFound",
    "Operation",
    "Policy",
    "PolicyViolation",
    "PrivsdkError",
    "RateLimited",
    "SdkMissing",
    "TagError",
    "Target",
    "Tenant",
    "ToolChoice",
    "ToolLike",
    "Unavailable",
    "UnexpectedError",
    "Unmet",
    "Unsupported",
    "UsageRecord",
    "VendorError",
    "VendorTimeout",
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
    from privsdk.client import CallOptions, ChatOptions, Client
    from privsdk.config import load_policy
    from privsdk.context import propagate, scope
    from privsdk.decision import Decision, Unmet, decide
    from privsdk.errors import (
        AdapterMissing,
        AuthFailed,
        BadRequest,
        CatalogueError,
        ClientClosed,
        ConfigError,
        ConnectionLost,
        ContentRefused,
        InvalidArgument,
        InvalidInput,
        NotFound,
        PolicyViolation,
        PrivsdkError,
        RateLimited,
        SdkMissing,
        TagError,
        Unavailable,
        UnexpectedError,
        Unsupported,
        VendorError,
        VendorTimeout,
    )
    from privsdk.messages import MessageLike, ToolLike
    from privsdk.outbound import instrument, uninstrument
    from privsdk.outbound.judge import Guard
    from privsdk.policy import Policy, Target, Tenant
    from privsdk.types import ToolChoice
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
