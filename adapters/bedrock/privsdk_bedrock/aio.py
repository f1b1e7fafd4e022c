"""aiobotocore's Bedrock clients (aiobotocore's own, aioboto3's), guarded: what ``privsdk.instrument()`` calls
once the app imports aiobotocore.

The guard is botocore's (:mod:`privsdk.outbound.botocore_seam`), on the client's
event emitter, which aiobotocore awaits; :mod:`privsdk_bedrock.dropin` wraps
``AioSession._create_client`` beside botocore's ``create_client``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from privsdk_bedrock.dropin import guard_client, is_instrumented, uninstrument
from privsdk_bedrock.dropin import instrument as _instrument

if TYPE_CHECKING:
    from privsdk.outbound.botocore_seam import Guard

__all__ = ["guard_client", "instrument", "is_instrumented", "uninstrument"]


def instrument(*, guard: Guard | None = None) -> None:
    """:func:`privsdk_bedrock.dropin.instrument`, with aiobotocore's sessions loaded first (the app has imported
    aiobotocore, or is importing ``aiobotocore.session``, which has run by the time this is called)."""
    import aiobotocore.session  # noqa: F401 - loads AioSession, which the drop-in patches

    _instrument(guard=guard)
