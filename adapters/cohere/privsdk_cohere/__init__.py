"""privsdk adapter for the cohere SDK: Cohere's platform, private deployments, and Cohere models on
Azure AI Foundry, Amazon Bedrock, Amazon SageMaker and OCI Generative AI.

Importing this package loads no part of the SDK: :func:`adapter` imports it when a target is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from privsdk.adapter import Adapter, AdapterOptions
    from privsdk.policy import Target

__all__ = ["adapter"]


def adapter(target: Target, options: AdapterOptions) -> Adapter:
    """The adapter for a ``cohere.*`` target: checks its settings and builds the SDK client, with no network."""
    from privsdk_cohere.offerings import open_target

    return open_target(target, options)
