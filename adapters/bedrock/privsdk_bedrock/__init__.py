"""privsdk adapter for Amazon Bedrock through boto3's ``bedrock-runtime`` client.

Serves the catalogue offering ``bedrock.runtime``: chat and streams through
Converse for every chat model (model ids, cross-Region inference profiles such
as ``eu.anthropic...``, ARNs), embeddings and rerank through InvokeModel for
the Titan and Cohere families. boto3 is imported when the first call needs a
client, never by importing this package or building an adapter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from privsdk.errors import ConfigError

if TYPE_CHECKING:
    from privsdk.adapter import Adapter, AdapterOptions
    from privsdk.policy import Target

__all__ = ["OFFERING", "adapter"]

OFFERING = "bedrock.runtime"


def adapter(target: Target, options: AdapterOptions) -> Adapter:
    """The adapter for a ``bedrock.runtime`` target; a ConfigError for missing Region or bad credentials."""
    if target.offering != OFFERING:
        raise ConfigError(
            f"privsdk's bedrock adapter serves {OFFERING}, not {target.offering}",
            where=f"targets.{target.name}.offering",
            hint="cohere.bedrock targets are served by privsdk's cohere adapter (pip install 'privsdk[cohere]')",
        )
    from privsdk_bedrock.runtime import BedrockAdapter

    return BedrockAdapter(target, options)
