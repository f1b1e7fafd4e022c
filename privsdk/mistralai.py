"""``from privsdk import mistralai`` in place of ``from mistralai import client as mistralai``.

``Mistral`` is ``mistralai.client.Mistral`` with privsdk's guard in its HTTP
transport (and the SDK's telemetry pinned off); every other name (``models``,
``errors``, ``RetryConfig``, ``SERVER_EU``...) is ``mistralai.client``'s own
object. ``guard_client``, ``instrument`` and ``uninstrument`` guard clients
built elsewhere. Needs the mistralai SDK, which privsdk's mistral extra
installs (``pip install 'privsdk[mistral]'``); without it, importing this
module raises :class:`privsdk.errors.AdapterMissing` with that command. Guide:
https://privsdk.readthedocs.io/en/latest/dropin-mistralai/
"""

from __future__ import annotations

from typing import Any

from privsdk.adapter import vendor_sdk_needed as _vendor_sdk_needed
from privsdk.outbound.constructors import dropin_dir as _dropin_dir

with _vendor_sdk_needed("mistral", __name__):
    import mistralai.client as _vendor
    from privsdk_mistral.dropin import *  # noqa: F403
    from privsdk_mistral.dropin import __all__ as _dropin_names

__all__ = sorted(set(_dropin_names) | {n for n in dir(_vendor) if not n.startswith("_")})


def __getattr__(name: str) -> Any:
    """Every other public name is ``mistralai.client``'s own (``models``, ``errors``, ``RetryConfig``...)."""
    return getattr(_vendor, name)


__dir__ = _dropin_dir(globals(), "mistralai.client")
