"""``dir()`` of a drop-in module lists what the SDK module it replaces lists.

``from privsdk import openai`` stands for ``import openai``: IDE and REPL completion, and code that introspects
the module (``dir()``, ``inspect.getmembers``), must see the SDK's names, which the drop-in module serves through
its ``__getattr__``, and its own (``guard_client``, ``PolicyViolation``, ...).
"""

from __future__ import annotations

import importlib

import pytest

#: Each drop-in module, the SDK module it stands for, and names of its own.
DROPINS = [
    ("privsdk.openai", "openai", {"guard_client", "instrument", "PolicyViolation"}),
    ("privsdk.cohere", "cohere", {"guard_client", "instrument", "PolicyViolation"}),
    ("privsdk.mistralai", "mistralai.client", {"guard_client", "instrument", "PolicyViolation"}),
    ("privsdk.boto3", "boto3", {"guard_client", "instrument", "Session", "client"}),
    ("privsdk.genai", "google.genai", {"guard_client", "instrument", "PolicyViolation"}),
]


@pytest.mark.parametrize(("face", "sdk", "own"), DROPINS, ids=[d[0] for d in DROPINS])
def test_dir_of_a_drop_in_module_lists_the_sdk_modules_names_and_its_own(face: str, sdk: str, own: set[str]) -> None:
    module = importlib.import_module(face)
    vendor = importlib.import_module(sdk)
    listed = dir(module)
    assert listed == sorted(set(listed))
    missing = ({*dir(vendor), *getattr(vendor, "__all__", ())}) - set(listed)
    assert not missing, sorted(missing)[:10]
    assert own <= set(listed)
    assert set(module.__all__) <= set(listed)
