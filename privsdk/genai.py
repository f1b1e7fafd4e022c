"""``from privsdk import genai`` replaces ``from google import genai``: the same SDK, guarded.

``genai.Client`` is google-genai's own ``Client`` (a subclass) whose every request passes privsdk's guard;
``genai.types``, ``genai.errors`` and every other name of ``google.genai`` are google-genai's own. A refused
request raises :class:`PolicyViolation`, both a :class:`privsdk.PolicyViolation` and a
``google.genai.errors.APIError``. :func:`guard_client` guards a client the app built itself;
:func:`instrument` guards every client created afterwards. Needs ``pip install 'privsdk[vertex]'``.
See docs/dropin-genai.md.
"""

from __future__ import annotations

from typing import Any

from google import genai as _genai
from google.genai import errors, types
from privsdk_vertex.dropin import SDK, Client, PolicyViolation, guard_client, instrument, uninstrument

from privsdk.outbound.constructors import dropin_dir as _dropin_dir

__all__ = ["SDK", "Client", "PolicyViolation", "errors", "guard_client", "instrument", "types", "uninstrument"]
__version__ = _genai.__version__


__dir__ = _dropin_dir(globals(), "google.genai")


def __getattr__(name: str) -> Any:
    """Every other name of ``google.genai`` (``interactions``, ``agents``, ``version``, ...), as the SDK has it."""
    return getattr(_genai, name)
