"""``from privsdk import cohere`` in place of ``import cohere``: the same module, with guarded clients.

The client classes (``ClientV2``, ``AsyncClientV2``, ``Client``, ``AsyncClient``,
the Bedrock and SageMaker clients) are the cohere SDK's own, with privsdk's
guard in their HTTP transport; every other name (types, errors, submodules)
is cohere's own object. ``guard_client``, ``instrument`` and ``uninstrument``
guard clients built elsewhere. Needs the cohere SDK, which privsdk's cohere
extra installs (``pip install 'privsdk[cohere]'``); without it, importing this
module raises :class:`privsdk.errors.AdapterMissing` with that command. Guide:
https://privsdk.readthedocs.io/en/latest/dropin-cohere/
"""

from __future__ import annotations

from privsdk.adapter import vendor_sdk_needed as _vendor_sdk_needed
from privsdk.outbound.constructors import SdkNames as _SdkNames
from privsdk.outbound.constructors import dropin_dir as _dropin_dir
from privsdk.outbound.constructors import star_names as _star_names

with _vendor_sdk_needed("cohere", __name__):
    import cohere as _vendor
    from privsdk_cohere.dropin import *  # noqa: F403
    from privsdk_cohere.dropin import __all__ as _dropin_names
    from privsdk_cohere.dropin import twin_of as _twin_of

__all__ = sorted(set(_dropin_names) | set(_star_names(_vendor)))


#: Every other public name is cohere's own (``cohere.types``, ``cohere.errors``, ``cohere.ChatMessageV2``...); its
#: submodules (``client_v2``, ``aws_client``, ``v2.client``, ...) with guarded classes in place of cohere's clients:
#: the clients above, and the resource clients an app may build around a client wrapper (``core`` stays cohere's).
__getattr__ = _SdkNames(_vendor, _twin_of, __name__)


__dir__ = _dropin_dir(globals(), "cohere")
