"""The contract between the core and an adapter, and how the core finds adapters.

An adapter binds one target to its vendor's SDK. It knows nothing of policy:
the client decides first and only then hands an allowed call to an adapter.
Adapters ship in the privsdk wheel (``privsdk_openai``, ...; each vendor's
SDK comes with an extra) and register under the entry-point group
``privsdk.adapters``, one entry per catalogue vendor they serve. The core
finds an adapter the first time a target of that vendor is used, so
``import privsdk`` loads no vendor SDK: privsdk's own adapters by importing
their module (:data:`BUILTIN`), other vendors' through the entry points,
whose lookup reads the metadata of every installed distribution (tens of
milliseconds), so only they pay for it.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from privsdk.errors import AdapterMissing, ConfigError, SdkMissing, Unsupported
from privsdk.policy import Target
from privsdk.types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    RerankRequest,
    RerankResponse,
    StreamEvent,
)

if TYPE_CHECKING:
    from privsdk.outbound.judge import Guard

ENTRY_POINT_GROUP = "privsdk.adapters"
DEFAULT_TIMEOUT_S = 60.0
_NO_CREDENTIALS: Mapping[str, str] = {}


class AdapterOptions(NamedTuple):
    """How the core wants an adapter built.

    ``timeout`` bounds every call, in seconds, when the call gives no bound of
    its own. ``credentials`` are vendor-specific (each adapter's README names
    its keys, such as ``api_key``); when empty, the SDK finds credentials the
    way it always does, in the vendor's own environment variables.
    ``guard`` judges every request the adapter's SDK client sends (the
    client's own guard; None means :meth:`Guard.default`): an adapter builds
    its SDK client with the guard in its transport, and lets a
    :class:`~privsdk.errors.PolicyViolation` from it pass unchanged.
    """

    timeout: float = DEFAULT_TIMEOUT_S
    credentials: Mapping[str, str] = _NO_CREDENTIALS
    guard: Guard | None = None


DEFAULT_OPTIONS = AdapterOptions()


class Adapter:
    """One target bound to its vendor SDK. Subclasses override what they support.

    ``operations`` lists the operations this target can do (``chat``,
    ``stream``, ``embed``, ``rerank``); the client checks it before any
    network, and the methods left as they are here raise :class:`Unsupported`.
    Every method takes ``timeout`` in seconds and must not run longer, turns
    the SDK's exceptions into :mod:`privsdk.errors` vendor errors, and leaves
    retries to the caller (the SDK's own are turned off).
    """

    #: The catalogue vendor this adapter serves, for messages.
    vendor: ClassVar[str] = "?"
    operations: frozenset[str] = frozenset()

    def __init__(self, target: Target, options: AdapterOptions = DEFAULT_OPTIONS):
        self.target = target
        self.options = options

    def unsupported(self, operation: str) -> Unsupported:
        """The error for an operation this target cannot do (raise it; nothing is sent)."""
        can = ", ".join(sorted(self.operations)) or "nothing"
        return Unsupported(f"{self.target.name} ({self.target.offering}) cannot {operation}; it can: {can}")

    def chat(self, request: ChatRequest, *, timeout: float) -> ChatResponse:
        raise self.unsupported("chat")

    async def achat(self, request: ChatRequest, *, timeout: float) -> ChatResponse:
        raise self.unsupported("chat")

    def stream(self, request: ChatRequest, *, timeout: float) -> Iterator[StreamEvent]:
        """Events of a streamed answer; the last is a :class:`~privsdk.types.StreamEnd`."""
        raise self.unsupported("stream")

    def astream(self, request: ChatRequest, *, timeout: float) -> AsyncIterator[StreamEvent]:
        raise self.unsupported("stream")

    def embed(self, request: EmbedRequest, *, timeout: float) -> EmbedResponse:
        raise self.unsupported("embed")

    async def aembed(self, request: EmbedRequest, *, timeout: float) -> EmbedResponse:
        raise self.unsupported("embed")

    def rerank(self, request: RerankRequest, *, timeout: float) -> RerankResponse:
        raise self.unsupported("rerank")

    async def arerank(self, request: RerankRequest, *, timeout: float) -> RerankResponse:
        raise self.unsupported("rerank")

    def close(self) -> None:
        """Release the SDK client's connections."""

    async def aclose(self) -> None:
        """Release the async SDK client's connections."""
        self.close()


AdapterFactory = Callable[[Target, AdapterOptions], Adapter]

#: Which distribution to install for each catalogue vendor, for the error when none is installed.
EXTRAS = {
    "openai": "openai",
    "azure": "openai",
    "selfhosted": "openai",
    "cohere": "cohere",
    "mistral": "mistral",
    "bedrock": "bedrock",
    "vertex": "vertex",
    "gemini": "vertex",
}

#: privsdk's own adapters: vendor -> "module:attribute", the same as their entry points. Tried first, by import.
BUILTIN = {
    "openai": "privsdk_openai:adapter",
    "azure": "privsdk_openai:adapter",
    "selfhosted": "privsdk_openai:adapter",
    "cohere": "privsdk_cohere:adapter",
    "mistral": "privsdk_mistral:adapter",
    "bedrock": "privsdk_bedrock:adapter",
    "vertex": "privsdk_vertex:adapter",
    "gemini": "privsdk_vertex:adapter",
}

#: Top-level modules of the vendor SDKs the extras install.
VENDOR_SDK_MODULES = frozenset({"openai", "cohere", "mistralai", "boto3", "botocore", "google"})

#: The modules each of privsdk's own adapters needs from its vendor SDK, by catalogue vendor.
SDK_MODULES: dict[str, tuple[str, ...]] = {
    "openai": ("openai",),
    "azure": ("openai",),
    "selfhosted": ("openai",),
    "cohere": ("cohere",),
    "mistral": ("mistralai",),
    "bedrock": ("boto3", "botocore"),
    "vertex": ("google.genai",),
    "gemini": ("google.genai",),
}

_factories: dict[str, AdapterFactory] = {}
_lock = threading.Lock()


def credential_missing(target: Target, vendor: str, key: str, fallback: str, add: str | None = None) -> ConfigError:
    """The error for credentials given (a tenant's own, or ``Client(credentials=)``) that lack ``key``.

    Credentials given are an account of their own: an adapter never completes them from what the SDK would read
    otherwise (``fallback``: the deployment's variables, the AWS chain, Application Default Credentials). Names the
    key, never a value; ``add`` is what the hint says to add (default: ``key``).
    """
    return ConfigError(
        f"target {target.name!r} ({target.offering}): the {vendor} credentials given have no {key!r}",
        where=f"targets.{target.name}",
        hint=f"add {add or key} to the tenant's credentials.{vendor} or to Client(credentials=); credentials that are "
        f"given never fall back to {fallback}",
    )


def adapter_factory(vendor: str) -> AdapterFactory:
    """The installed adapter for a catalogue vendor, loaded on first use."""
    factory = _factories.get(vendor)
    if factory is not None:
        return factory
    with _lock:
        if vendor not in _factories:
            found = _builtin(vendor)
            if found is None:
                from importlib.metadata import entry_points

                points = entry_points(group=ENTRY_POINT_GROUP, name=vendor)
                if not points:
                    raise AdapterMissing(
                        f"no privsdk adapter is installed for vendor {vendor!r}", hint=install_command(vendor)
                    )
                found = next(iter(points)).load()
            _factories[vendor] = found
        return _factories[vendor]


def _builtin(vendor: str) -> AdapterFactory | None:
    """privsdk's own adapter for ``vendor`` when its module is installed, else None."""
    spec = BUILTIN.get(vendor)
    if spec is None:
        return None
    module_name, _, attribute = spec.partition(":")
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # the adapter is installed but broken: say so, rather than "not installed"
        return None
    factory: AdapterFactory = getattr(module, attribute)
    return factory


def install_command(vendor: str) -> str:
    """The command that installs the adapter (and its SDK) for a catalogue vendor."""
    return f"pip install 'privsdk[{EXTRAS.get(vendor, vendor)}]'"


def missing_sdk_module(vendor: str) -> str | None:
    """The first module of ``vendor``'s SDK (:data:`SDK_MODULES`) that is not installed, else None.

    Found without importing the SDK (``google.genai`` imports the ``google`` namespace package, no more).
    """
    import importlib.util
    import sys

    for name in SDK_MODULES.get(vendor, ()):
        if name in sys.modules:
            continue
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):  # a parent package missing, or a finder that refuses the name
            return name
    return None


#: The vendor SDK (its distribution's name) each extra installs.
SDK_OF_EXTRA = {
    "openai": "openai",
    "cohere": "cohere",
    "mistral": "mistralai",
    "bedrock": "boto3",
    "vertex": "google-genai",
}


def sdk_missing(vendor: str, module: str, needed_by: str) -> SdkMissing:
    """The error for ``needed_by`` (``privsdk.openai``, privsdk's 'bedrock' adapter) without its vendor SDK."""
    extra = EXTRAS.get(vendor, vendor)
    sdk = SDK_OF_EXTRA.get(extra, f"the {vendor} SDK")
    error = SdkMissing(
        f"{needed_by} needs {sdk}, which is not installed (no module named {module!r})",
        hint=f"install it with privsdk's {extra} extra: {install_command(vendor)}",
    )
    error.name = module
    return error


@contextmanager
def vendor_sdk_needed(vendor: str, needed_by: str) -> Iterator[None]:
    """Around imports of a vendor SDK: its absence is :class:`AdapterMissing` naming the install command.

    Only a vendor SDK module that is not installed is turned into AdapterMissing; any other import error (an
    SDK of an unsupported version, a bug) passes as it is. The drop-in faces (``privsdk.openai``, ...) import
    their SDK inside it, and :func:`open_adapter` builds an adapter inside it.
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".", 1)[0] not in VENDOR_SDK_MODULES:
            raise
        raise sdk_missing(vendor, exc.name or "?", needed_by) from None


def adapter_installed(vendor: str) -> bool:
    """True when an adapter for ``vendor`` is installed, with its vendor SDK; loads no SDK.

    privsdk's own adapters all ship in its wheel (their entry points are always there): what an extra decides
    is whether their SDK is installed. Other adapters are found by their entry points.
    """
    if vendor in BUILTIN and _module_present(BUILTIN[vendor].partition(":")[0]):
        return missing_sdk_module(vendor) is None
    if vendor in _factories:
        return True
    from importlib.metadata import entry_points

    return bool(entry_points(group=ENTRY_POINT_GROUP, name=vendor))


def _module_present(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def open_adapter(target: Target, options: AdapterOptions = DEFAULT_OPTIONS) -> Adapter:
    """A new adapter for ``target``, from the adapter installed for its vendor.

    Every adapter of privsdk's ships in its wheel; its vendor SDK comes with an extra. An SDK that is not
    installed is :class:`AdapterMissing` naming the extra, here, before any call: some adapters import their
    SDK only when the first call needs it.
    """
    vendor = target.offering.split(".", 1)[0]
    needed_by = f"privsdk's {vendor!r} adapter"
    factory = adapter_factory(vendor)
    missing = missing_sdk_module(vendor)
    if missing is not None:
        raise sdk_missing(vendor, missing, needed_by)
    with vendor_sdk_needed(vendor, needed_by):
        return factory(target, options)
