"""``from privsdk import cohere`` in place of ``import cohere``: the same module, with guarded clients.

The client classes (``ClientV2``, ``AsyncClientV2``, ``Client``, ``AsyncClient``,
the Bedrock and SageMaker clients) are the cohere SDK's own, with privsdk's
guard in their HTTP transport; every other name (types, errors, submodules)
is cohere's own object. ``guard_client``, ``instrument`` and ``uninstrument``
guard clients built elsewhere. See docs/dropin-cohere.md. Needs the
privsdk-cohere distribution (``pip install 'privsdk[cohere]'``).
"""

from __future__ import annotations

from typing import Any

from privsdk.outbound.constructors import dropin_dir as _dropin_dir

try:
    import cohere as _vendor
    from privsdk_cohere.dropin import *  # noqa: F403
    from privsdk_cohere.dropin import __all__ as _dropin_names
except ImportError as exc:  # pragma: no cover - depends on what is installed
    from privsdk.errors import AdapterMissing

    raise AdapterMissing(
        "privsdk.cohere needs the cohere SDK and privsdk's cohere adapter", hint="pip install 'privsdk[cohere]'"
    ) from exc

__all__ = sorted(set(_dropin_names) | set(getattr(_vendor, "__all__", ())))


def __getattr__(name: str) -> Any:
    """Every other public name is cohere's own (``cohere.types``, ``cohere.errors``, ``cohere.ChatMessageV2``...)."""
    return getattr(_vendor, name)


__dir__ = _dropin_dir(globals(), "cohere")
