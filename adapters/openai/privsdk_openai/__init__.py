"""privsdk adapter for the ``openai`` SDK.

Serves OpenAI's API (``openai.api``), Azure OpenAI (``azure.openai``), Azure AI
Foundry models on their OpenAI-compatible endpoint (``azure.foundry``) and
self-hosted OpenAI-compatible servers (``selfhosted.*``). The target's settings
are checked here, without the SDK; ``openai`` itself is imported only when the
first adapter is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from privsdk_openai.config import OFFERINGS, check

if TYPE_CHECKING:
    from privsdk.adapter import Adapter, AdapterOptions
    from privsdk.policy import Target

__all__ = ["OFFERINGS", "adapter"]


def adapter(target: Target, options: AdapterOptions) -> Adapter:
    """The adapter for ``target``: a :class:`~privsdk.errors.ConfigError` for a setting it cannot use."""
    kind = check(target, options)
    from privsdk_openai.adapters import ADAPTERS

    return ADAPTERS[kind](target, options)
