"""``from privsdk import openai``: the openai package, with privsdk's guard in every client.

Replace ``import openai`` (or ``from openai import OpenAI``) and keep the code::

    from privsdk import openai            # was: import openai
    from privsdk.openai import OpenAI     # was: from openai import OpenAI

The client classes (and openai's aliases of them, ``Client`` and
``AsyncClient``) are openai's own, subclassed so that their transport
judges every request before it leaves (see :mod:`privsdk_openai.dropin`);
every other name -- types, exceptions, ``NOT_GIVEN``, ``pydantic_function_tool``,
the module-level client (``openai.api_key = ...``, ``openai.chat.completions``)
-- is openai's. A refusal raises :class:`PolicyViolation`, both a
:class:`privsdk.PolicyViolation` and an :class:`openai.OpenAIError`.
Needs the openai SDK, which privsdk's openai extra installs
(``pip install 'privsdk[openai]'``); without it, importing this module raises
:class:`privsdk.errors.AdapterMissing` with that command.
"""

from __future__ import annotations

import sys
from types import ModuleType as _ModuleType
from typing import TYPE_CHECKING, Any

from privsdk.adapter import vendor_sdk_needed as _vendor_sdk_needed
from privsdk.outbound.constructors import SdkNames as _SdkNames
from privsdk.outbound.constructors import dropin_dir as _dropin_dir
from privsdk.outbound.constructors import star_names as _star_names

with _vendor_sdk_needed("openai", __name__):
    import openai as _openai
    from openai._base_client import BaseClient as _BaseClient
    from openai._utils import LazyProxy as _LazyProxy
    from privsdk_openai import dropin as _dropin

if TYPE_CHECKING:
    # For type checkers, every public name of openai; at run time they come from openai on first use
    # (__getattr__ below): resolving them all here would import parts of openai an app may never use.
    from openai import *  # noqa: F403

from privsdk_openai.dropin import *  # noqa: F403  (the drop-in classes, PolicyViolation, guard_client, instrument)

__all__ = list(dict.fromkeys([*_star_names(_openai), *_dropin.__all__]))


def __getattr__(name: str) -> Any:
    """openai's module attributes; a client class of openai's (``Client``, an alias of ``OpenAI``, or any other
    subclass of its base client) as its guarded counterpart; its module-level client's resources
    (``openai.chat``, ...) through a guarded client, which guards every httpx client it sends through, whatever
    the app assigns to ``openai.http_client`` afterwards. A resource there is a lazy proxy: ``type()``, not
    ``isinstance``, as a proxy claims its target's class."""
    value = _names(name)
    if issubclass(type(value), _LazyProxy) and hasattr(_openai.OpenAI, name):
        return getattr(_dropin.guard_client(_openai._load_client()), name)
    return value


def _guarded(cls: type[Any]) -> type[Any] | None:
    return _dropin.guarded_class(cls) if issubclass(cls, _BaseClient) else None


#: openai's names, with its submodules (``lib.azure``, ``_client``) handing out guarded classes too.
_names = _SdkNames(_openai, _guarded, __name__)


__dir__ = _dropin_dir(globals(), "openai")


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
