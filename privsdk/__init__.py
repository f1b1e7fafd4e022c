"""privsdk: one client over LLM vendor SDKs that checks, before a prompt leaves
the process, that the target's data guarantees meet the tenant's requirements.

Importing privsdk is cheap: it loads no vendor SDK and no catalogue file.
The names below are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
}

__all__ = [
    "Catalogue",
    "ConfigError",
    "Decision",
    "Operation",
    "Policy",
    "PrivsdkError",
    "Target",
    "Tenant",
    "Unmet",
    "__version__",
    "decide",
    "default_catalogue",
    "load_policy",
    "parse_requirement",
    "parse_requirements",
]

if TYPE_CHECKING:
    from privsdk.catalogue import Catalogue, default_catalogue
    from privsdk.config import load_policy
    from privsdk.decision import Decision, Unmet, decide
    from privsdk.errors import ConfigError, PrivsdkError
    from privsdk.policy import Policy, Target, Tenant
    from privsdk.vocabulary import Operation, parse_requirement, parse_requirements


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'privsdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
