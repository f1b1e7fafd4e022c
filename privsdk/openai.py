"""``from privsdk import openai``: the openai package, with privsdk's guard in every client.

Replace ``import openai`` (or ``from openai import OpenAI``) and keep the code::

    from privsdk import openai            # was: import openai
    from privsdk.openai import OpenAI     # was: from openai import OpenAI

The client classes are openai's own, subclassed so that their transport
judges every request before it leaves (see :mod:`privsdk_openai.dropin`);
every other name -- types, exceptions, ``NOT_GIVEN``, ``pydantic_function_tool``,
the module-level client (``openai.api_key = ...``, ``openai.chat.completions``)
-- is openai's. A refusal raises :class:`PolicyViolation`, both a
:class:`privsdk.PolicyViolation` and an :class:`openai.OpenAIError`.
Needs the openai package (``pip install 'privsdk[openai]'``).
"""

from __future__ import annotations

import sys
from types import ModuleType as _ModuleType
from typing import Any

import openai as _openai
from openai import *  # noqa: F403  (every public name of openai, so that this module replaces it)
from openai._utils import LazyProxy
from privsdk_openai.dropin import *  # noqa: F403  (the drop-in classes replace openai's of the same names)
from privsdk_openai.dropin import __all__ as _dropin_all
from privsdk_openai.dropin import guard_client

__all__ = list(dict.fromkeys([*_openai.__all__, *_dropin_all]))

#: openai's module-level client's resources (``openai.chat``, ``openai.files``, ...): lazy proxies in openai.
#: ``type()``, not ``isinstance``: a proxy claims the class of the resource it stands for.
_MODULE_CLIENT = frozenset(
    name
    for name, value in vars(_openai).items()
    if issubclass(type(value), LazyProxy) and hasattr(_openai.OpenAI, name)
)


def __getattr__(name: str) -> Any:
    """openai's module attributes; its module-level client's resources through a guarded client."""
    if name in _MODULE_CLIENT:
        return getattr(guard_client(_openai._load_client()), name)
    return getattr(_openai, name)


#: openai's module-level settings (``openai.api_key = ...``): set here, they are set on openai itself.
_CONFIG = frozenset(
    {
        "api_key", "admin_api_key", "organization", "project", "webhook_secret", "base_url", "timeout",
        "max_retries", "default_headers", "default_query", "http_client", "api_type", "api_version",
        "azure_endpoint", "azure_ad_token", "azure_ad_token_provider", "bedrock_token_provider",
    }
)  # fmt: skip


class _Face(_ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _CONFIG:
            setattr(_openai, name, value)
        else:
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Face
