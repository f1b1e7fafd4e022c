"""``from privsdk import mistralai`` in place of ``from mistralai import client as mistralai``.

``Mistral`` is ``mistralai.client.Mistral`` with privsdk's guard in its HTTP
transport (and the SDK's telemetry pinned off), and so is every resource class
an app can build by hand around a configuration (``chat.Chat``,
``embeddings.Embeddings``, ``basesdk.BaseSDK`` ...): a guarded subclass that
mistralai's own instances pass for. Every other name (``models``, ``errors``,
``RetryConfig``, ``SERVER_EU``...) is ``mistralai.client``'s own object.
``guard_client``, ``instrument`` and ``uninstrument`` guard clients built
elsewhere. Needs the mistralai SDK, which privsdk's mistral extra installs
(``pip install 'privsdk[mistral]'``); without it, importing this module raises
:class:`privsdk.errors.AdapterMissing` with that command. Guide:
https://privsdk.readthedocs.io/en/latest/dropin-mistralai/
"""

from __future__ import annotations

from privsdk.adapter import vendor_sdk_needed as _vendor_sdk_needed
from privsdk.outbound.constructors import SdkNames as _SdkNames
from privsdk.outbound.constructors import dropin_dir as _dropin_dir
from privsdk.outbound.constructors import star_names as _star_names

with _vendor_sdk_needed("mistral", __name__):
    import mistralai.client as _vendor
    from privsdk_mistral.dropin import *  # noqa: F403
    from privsdk_mistral.dropin import __all__ as _dropin_names
    from privsdk_mistral.dropin import twin_of as _twin_of

__all__ = sorted(set(_dropin_names) | set(_star_names(_vendor)))


#: Every other public name is ``mistralai.client``'s own (``models``, ``errors``, ``RetryConfig``...); its submodules
#: (``sdk``, ``chat``, ``embeddings``, ``basesdk``, ...) with the guarded classes in place of mistralai's: ``Mistral``,
#: and every resource class it builds (:func:`privsdk_mistral.dropin.twin_of`).
__getattr__ = _SdkNames(_vendor, _twin_of, __name__, "mistralai")


__dir__ = _dropin_dir(globals(), "mistralai.client")
