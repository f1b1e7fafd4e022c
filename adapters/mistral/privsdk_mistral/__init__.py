"""privsdk adapter for the mistralai SDK: la Plateforme (``mistral.api``) and Mistral on Azure (``mistral.azure``).

Importing this package does not import ``mistralai``: an adapter's constructor does, on first use.
"""

from __future__ import annotations

from privsdk.adapter import Adapter, AdapterOptions
from privsdk.errors import ConfigError
from privsdk.policy import Target
from privsdk_mistral.client import MistralAPIAdapter, MistralAzureAdapter, MistralChatAdapter

__all__ = ["MistralAPIAdapter", "MistralAzureAdapter", "MistralChatAdapter", "adapter"]


def adapter(target: Target, options: AdapterOptions) -> Adapter:
    """The adapter for a ``mistral.*`` target. Builds the SDK client; no network."""
    if target.offering == "mistral.api":
        return MistralAPIAdapter(target, options)
    if target.offering == "mistral.azure":
        return MistralAzureAdapter(target, options)
    if target.offering == "mistral.vertex":
        # mistralai's MistralGCP needs the mistralai[gcp] extra (google-auth), which this distribution does not
        # install; failing here keeps a Vertex target from ever being sent anywhere else.
        raise ConfigError(
            f"target {target.name}: privsdk's mistral adapter does not serve mistral.vertex",
            hint="for Mistral models on Vertex AI use a vertex.partner target",
        )
    raise ConfigError(
        f"target {target.name}: privsdk's mistral adapter does not serve offering {target.offering!r}",
        hint="mistral.api or mistral.azure",
    )
