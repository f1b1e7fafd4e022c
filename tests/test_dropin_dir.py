"""``dir()`` of a drop-in module lists what the SDK module it replaces lists.

``from privsdk import openai`` stands for ``import openai``: IDE and REPL completion, and code that introspects
the module (``dir()``, ``inspect.getmembers``), must see the SDK's names, which the drop-in module serves through
its ``__getattr__``, and its own (``guard_client``, ``PolicyViolation``, ...).
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import warnings

import pytest

#: Each drop-in module, the SDK module it stands for, and names of its own.
DROPINS = [
    ("privsdk.openai", "openai", {"guard_client", "instrument", "PolicyViolation"}),
    ("privsdk.cohere", "cohere", {"guard_client", "instrument", "PolicyViolation"}),
    ("privsdk.mistralai", "mistralai.client", {"guard_client", "instrument", "PolicyViolation"}),
    ("privsdk.boto3", "boto3", {"guard_client", "instrument", "Session", "client"}),
    ("privsdk.genai", "google.genai", {"guard_client", "instrument", "PolicyViolation"}),
]

SDK_OF = {face: sdk for face, sdk, _ in DROPINS}


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


#: A path through a drop-in module's submodules to a client class, and the drop-in's own guarded class it must be
#: (as ``google.genai.client.Client`` is ``google.genai.Client``).
THROUGH_SUBMODULES = [
    ("privsdk.genai", "client.Client", "Client"),
    ("privsdk.cohere", "client_v2.ClientV2", "ClientV2"),
    ("privsdk.cohere", "client.Client", "Client"),
    ("privsdk.cohere", "aws_client.AwsClient", "AwsClient"),
    ("privsdk.mistralai", "sdk.Mistral", "Mistral"),
    ("privsdk.boto3", "session.Session", "Session"),
    ("privsdk.openai", "lib.azure.AzureOpenAI", "AzureOpenAI"),
    ("privsdk.openai", "lib.azure.AsyncAzureOpenAI", "AsyncAzureOpenAI"),
]


@pytest.mark.parametrize(
    ("face", "path", "name"), THROUGH_SUBMODULES, ids=[f"{t[0]}.{t[1]}" for t in THROUGH_SUBMODULES]
)
def test_a_client_class_reached_through_a_submodule_is_the_guarded_one(face: str, path: str, name: str) -> None:
    """The SDK's submodules were the SDK's own: ``privsdk.genai.client.Client`` sent unguarded."""
    module = importlib.import_module(face)
    found: object = module
    for part in path.split("."):
        found = getattr(found, part)
    assert found is getattr(module, name)


#: Each drop-in module's guarded client classes.
CLIENTS = {
    "privsdk.openai": ("OpenAI", "AsyncOpenAI", "AzureOpenAI", "AsyncAzureOpenAI"),
    "privsdk.cohere": ("ClientV2", "AsyncClientV2", "Client", "AsyncClient", "BedrockClientV2", "SagemakerClientV2"),
    "privsdk.mistralai": ("Mistral",),
    "privsdk.boto3": ("Session",),
    "privsdk.genai": ("Client",),
}


@pytest.mark.parametrize("face", CLIENTS)
def test_no_submodule_of_a_drop_in_hands_out_an_sdk_client_class(face: str) -> None:
    """Every public name of the drop-in module that is a submodule, and the submodules those hand out, one level
    down: none holds one of the SDK's own client classes that the drop-in guards."""
    import types

    module = importlib.import_module(face)
    raw = [getattr(module, name).__bases__[0] for name in CLIENTS[face]]
    seen = 0
    warnings.simplefilter("ignore", DeprecationWarning)  # reading every name reads deprecated ones (pytest resets it)
    for name in dir(module):
        sub = getattr(module, name, None) if name not in vars(module) or not name.startswith("_") else None
        if not isinstance(sub, types.ModuleType):
            continue
        for inner in [sub, *(getattr(sub, n, None) for n in dir(sub))]:
            if isinstance(inner, types.ModuleType):
                for n in dir(inner):
                    seen += 1
                    value = getattr(inner, n, None)
                    assert not any(value is cls for cls in raw), f"{face}: {inner.__name__}.{n}"
    assert seen > 0


@pytest.mark.parametrize(
    ("face", "sub"),
    [("privsdk.openai", "_client"), ("privsdk.openai", "lib.azure"), ("privsdk.cohere", "client_v2"),
     ("privsdk.mistralai", "sdk"), ("privsdk.genai", "client")],
)  # fmt: skip
def test_a_drop_in_module_is_no_package_that_runs_the_sdks_files_again(face: str, sub: str) -> None:
    """Handed the SDK's __path__, Python took a drop-in module for a package, and ``from privsdk.openai._client
    import OpenAI`` ran openai's file again under that name: a new class, unguarded. It is an ImportError."""
    module = importlib.import_module(face)
    assert not hasattr(module, "__path__")
    with pytest.raises(ModuleNotFoundError, match="is not a package"):
        importlib.import_module(f"{face}.{sub}")


def test_dir_of_privsdk_lists_its_public_names_each_of_which_resolves() -> None:
    """``dir(privsdk)`` listed its import machinery (``importlib``, ``TypeVar``, ``C``) and only the public names
    already loaded through its ``__getattr__``."""
    import privsdk

    assert dir(privsdk) == sorted(privsdk.__all__)
    assert {"Client", "guard", "instrument", "PolicyViolation", "scope"} <= set(dir(privsdk))
    assert all(getattr(privsdk, name) is not None for name in dir(privsdk))


def star_imported(module: str) -> dict[str, str]:
    """What ``from MODULE import *`` binds in a fresh process: each name and the qualified name of its value."""
    code = (
        "import json, warnings; warnings.simplefilter('ignore')\n"
        f"from {module} import *\n"
        "name = lambda v: getattr(v, '__module__', '') + '.' + getattr(v, '__qualname__', getattr(v, '__name__', ''))\n"
        "print(json.dumps({k: name(v) for k, v in dict(globals()).items()"
        " if not k.startswith('_') and k not in ('json', 'warnings', 'name')}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


@pytest.mark.parametrize("face", CLIENTS)
def test_a_star_import_takes_what_one_from_the_sdk_takes_with_the_guarded_classes(face: str) -> None:
    """``from privsdk.boto3 import *`` lacked 12 of boto3's names (resource, setup_default_session, session, ...)
    and ``from privsdk.genai import *`` 8 of google-genai's (interactions, agents, ...): their ``__all__`` named
    the drop-in's own names alone. Then, in a fresh process, it failed on google-genai's ``voices``, a submodule
    that google-genai's ``__all__`` names and a star import from it imports. Star-imported, a client class is still
    the guarded one. Each in a fresh process: what a star import takes depends on what was imported before."""
    raw, ours = star_imported(SDK_OF[face]), star_imported(face)
    missing = set(raw) - set(ours)
    assert not missing, sorted(missing)
    for name in CLIENTS[face]:
        if name in ours:
            assert not ours[name].startswith(SDK_OF[face].split(".")[0] + "."), (name, ours[name])
