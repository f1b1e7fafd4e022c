"""``from privsdk import mistralai`` in place of ``from mistralai import client as mistralai``.

``Mistral`` is ``mistralai.client.Mistral`` with privsdk's guard in its HTTP
transport (and the SDK's telemetry pinned off); every other name (``models``,
``errors``, ``RetryConfig``, ``SERVER_EU``...) is ``mistralai.client``'s own
object. ``guard_client``, ``instrument`` and ``uninstrument`` guard clients
built elsewhere. See docs/dropin-mistralai.md. Needs the privsdk-mistral
distribution (``pip install 'privsdk[mistral]'``).
"""

from __future__ import annotations

from typing import Any

from privsdk.outbound.constructors import dropin_dir as _dropin_dir

try:
    import mistralai.client as _vendor
    from privsdk_mistral.dropin import *  # noqa: F403
    from privsdk_mistral.dropin import __all__ as _dropin_names
except ImportError as exc:  # pragma: no cover - depends on what is installed
    from privsdk.errors import AdapterMissing

    raise AdapterMissing(
        "privsdk.mistralai needs the mistralai SDK and privsdk's mistral adapter", hint="pip install 'privsdk[mistral]'"
    ) from exc

__all__ = sorted(set(_dropin_names) | {n for n in dir(_vendor) if not n.startswith("_")})


def __getattr__(name: str) -> Any:
    """Every other public name is ``mistralai.client``'s own (``models``, ``errors``, ``RetryConfig``...)."""
    return getattr(_vendor, name)


__dir__ = _dropin_dir(globals(), "mistralai.client")
