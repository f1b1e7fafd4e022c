"""boto3 with privsdk's guard on its Amazon Bedrock clients: ``from privsdk import boto3`` replaces ``import boto3``.

``privsdk.boto3.client("bedrock-runtime", ...)``, ``privsdk.boto3.Session``
and every other boto3 name work as in boto3; the clients of Bedrock services
judge each request before it is sent (see docs/dropin-boto3.md). Needs the
privsdk-bedrock adapter (``pip install 'privsdk[bedrock]'``), which brings boto3.
"""

from __future__ import annotations

from typing import Any

from privsdk_bedrock.dropin import *  # noqa: F403
from privsdk_bedrock.dropin import __all__ as __all__


def __getattr__(name: str) -> Any:
    """Any other name is boto3's own (``resource``, ``DEFAULT_SESSION``, ``setup_default_session``, ...)."""
    import boto3

    try:
        return getattr(boto3, name)
    except AttributeError:
        raise AttributeError(f"module 'privsdk.boto3' has no attribute {name!r}") from None
