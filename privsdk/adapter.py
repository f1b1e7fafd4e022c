"""The contract between the core and an adapter, and how the core finds adapters.

An adapter binds one target to its vendor's SDK. It knows nothing of policy:
the client decides first and only then hands an allowed call to an adapter.
Adapters ship in the privsdk wheel (``privsdk_openai``, ...; each vendor's
SDK comes with an extra) and register under the entry-point group
``privsdk.adapters``, one entry per catalogue vendor they serve. The core looks an entry up the first time a
target of that vendor is used, so ``import privsdk`` loads no vendor SDK.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from privsdk.errors import AdapterMissing, Unsupported
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

#: Top-level modules of the vendor SDKs the extras install.
VENDOR_SDK_MODULES = frozenset({"openai", "cohere", "mistralai", "boto3", "botocore", "google"})

_factories: dict[str, AdapterFactory] = {}
_lock = threading.Lock()


def adapter_factory(vendor: str) -> AdapterFactory:
    """The installed adapter for a catalogue vendor, loaded on first use."""
    factory = _factories.get(vendor)
    if factory is not None:
        return factory
    with _lock:
        if vendor not in _factories:
            from importlib.metadata import entry_points

            found = entry_points(group=ENTRY_POINT_GROUP, name=vendor)
            if not found:
                raise AdapterMissing(
                    f"no privsdk adapter is installed for vendor {vendor!r}", hint=install_command(vendor)
                )
            _factories[vendor] = next(iter(found)).load()
        return _factories[vendor]


def install_command(vendor: str) -> str:
    """The command that installs the adapter (and its SDK) for a catalogue vendor."""
    return f"pip install 'privsdk[{EXTRAS.get(vendor, vendor)}]'"


def adapter_installed(vendor: str) -> bool:
    """True when an adapter for ``vendor`` is installed; looks at the entry points without loading any SDK."""
    if vendor in _factories:
        return True
    from importlib.metadata import entry_points

    return bool(entry_points(group=ENTRY_POINT_GROUP, name=vendor))


def open_adapter(target: Target, options: AdapterOptions = DEFAULT_OPTIONS) -> Adapter:
    """A new adapter for ``target``, from the adapter installed for its vendor."""
    vendor = target.offering.split(".", 1)[0]
    try:
        return adapter_factory(vendor)(target, options)
    except ModuleNotFoundError as exc:
        # Every adapter ships in the privsdk wheel; its vendor SDK comes with an extra. Name the extra,
        # not a traceback from deep inside the adapter.
        if (exc.name or "").split(".", 1)[0] not in VENDOR_SDK_MODULES:
            raise
        extra = EXTRAS.get(vendor, vendor)
        raise AdapterMissing(
            f"the SDK that privsdk's {vendor!r} adapter uses ({exc.name}) is not installed",
            hint=f"pip install 'privsdk[{extra}]'",
        ) from None
