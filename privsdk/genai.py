"""``from privsdk import genai`` replaces ``from google import genai``: the same SDK, guarded.

``genai.Client`` is google-genai's own ``Client`` (a subclass) whose every request passes privsdk's guard;
``genai.types``, ``genai.errors`` and every other name of ``google.genai`` are google-genai's own. A refused
request raises :class:`PolicyViolation`, both a :class:`privsdk.PolicyViolation` and a
``google.genai.errors.APIError``. :func:`guard_client` guards a client the app built itself;
:func:`instrument` guards every client created afterwards. Needs google-genai, which privsdk's vertex extra
installs (``pip install 'privsdk[vertex]'``); without it, importing this module raises
:class:`privsdk.errors.AdapterMissing` with that command. Guide: https://privsdk.readthedocs.io/en/latest/dropin-genai/
"""

from __future__ import annotations

from privsdk.adapter import vendor_sdk_needed as _vendor_sdk_needed
from privsdk.outbound.constructors import SdkNames as _SdkNames
from privsdk.outbound.constructors import dropin_dir as _dropin_dir
from privsdk.outbound.constructors import star_names as _star_names

with _vendor_sdk_needed("vertex", __name__):
    import google.genai as _genai
    from google.genai import errors, types
    from privsdk_vertex.dropin import SDK, Client, PolicyViolation, guard_client, instrument, uninstrument
    from privsdk_vertex.dropin import twin_of as _twin_of

__all__ = ["SDK", "Client", "PolicyViolation", "errors", "guard_client", "instrument", "types", "uninstrument"]
__all__ += [name for name in _star_names(_genai) if name not in __all__]  # what `from google.genai import *` takes
__version__ = _genai.__version__


__dir__ = _dropin_dir(globals(), "google.genai")
#: Every other name of ``google.genai`` (``interactions``, ``agents``, ``version``, ...), as the SDK has it; its
#: submodules (``client``, ``models``, ``files``, ...) with guarded classes in place of google-genai's clients: the
#: guarded ``Client`` and ``BaseApiClient``, and a twin of each class built around an api client (``models.Models``,
#: ``client.AsyncClient``, ...) that guards the api client it is given.
__getattr__ = _SdkNames(_genai, _twin_of, __name__, "google.genai")
