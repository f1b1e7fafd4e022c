"""boto3 with privsdk's guard on every Amazon Bedrock client: ``from privsdk import boto3``.

:class:`Session` subclasses ``boto3.session.Session``: the clients it makes
for ``bedrock-runtime``, ``bedrock-agent-runtime`` and ``bedrock`` get the
guard on their event system (:mod:`privsdk.outbound.botocore_seam`), every
other service's clients are boto3's, untouched. The face module
:mod:`privsdk.boto3` builds every other way to make a client on it (``client``,
``resource``, its own default session) and forwards boto3's other names.

A refused request raises :class:`PolicyViolation`, which is also a
``botocore.exceptions.ClientError``. :func:`guard_client` guards a client the
app built; :func:`instrument` guards every Bedrock client any botocore
session creates from then on (boto3's default session, other
``boto3.Session`` objects, frameworks' clients), by wrapping
``botocore.session.Session.create_client``, and every one an aiobotocore
session creates (``aiobotocore.session.AioSession``, which aioboto3's sessions
use, makes its clients in its own ``_create_client`` coroutine);
:func:`uninstrument` restores them. aiobotocore itself is never imported here:
it is patched when the app has imported it (:mod:`privsdk_bedrock.aio` is what
``privsdk.instrument()`` calls once it has).
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import botocore.session

from privsdk.outbound.botocore_seam import guard_botocore, guards, service_id
from privsdk_bedrock.refusal import PolicyViolation, refuse

if TYPE_CHECKING:
    from privsdk.outbound.botocore_seam import Guard

# boto3 itself is imported on first use, never by importing this module: instrument() can run while boto3 is
# still being imported (its import of botocore is what starts it), when boto3's own modules are half made.

__all__ = [
    "PolicyViolation",
    "Session",  # noqa: F822 - made on first use by __getattr__
    "guard_client",
    "instrument",
    "is_instrumented",
    "uninstrument",
]


def guard_client(client: Any, *, guard: Guard | None = None) -> Any:
    """Guard a botocore/boto3 client of a Bedrock service or of SageMaker's runtime in place and return it; others
    are returned as they are.

    ``guard`` defaults to ``privsdk.outbound.judge.Guard.default()`` (configured from
    the environment). Guarding twice is harmless; on a client guarded already (one built under
    :func:`instrument`), a ``guard`` given replaces the one it had. A request the tenant reroutes is
    answered from the alternative in Bedrock's wire format (:mod:`privsdk_bedrock.reroute`),
    except from an aiobotocore client, where it is refused.
    """
    if guards(service_id(client)):
        from privsdk_bedrock import reroute

        guard_botocore(client, refusal=refuse, guard=guard, reroute=reroute.send)
    return client


_session_class: type | None = None


def _session() -> type:
    """``Session``: made on first use, as a subclass of the boto3 imported then."""
    global _session_class
    if _session_class is None:
        import boto3.session

        class Session(boto3.session.Session):  # type: ignore[misc]
            """``boto3.session.Session`` whose Bedrock clients are guarded."""

            def client(self, *args: Any, **kwargs: Any) -> Any:
                return guard_client(super().client(*args, **kwargs))

        Session.__module__, Session.__qualname__ = __name__, "Session"
        _session_class = Session
    return _session_class


def __getattr__(name: str) -> Any:
    if name == "Session":
        return _session()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_lock = threading.Lock()
_ORIGINAL = "_privsdk_original"


def _aio_session() -> type | None:
    """aiobotocore's ``AioSession`` once the app has imported it (None while ``aiobotocore.session`` is loading)."""
    return getattr(sys.modules.get("aiobotocore.session"), "AioSession", None)


def _wrap(owner: type, name: str, wrapper: Callable[[Any], Any]) -> None:
    """Replace ``owner.name`` with ``wrapper(current)``, which keeps the current one to restore; once."""
    current = getattr(owner, name)
    if not hasattr(current, _ORIGINAL):
        wrapped = functools.wraps(current)(wrapper(current))
        setattr(wrapped, _ORIGINAL, current)
        setattr(owner, name, wrapped)


def _restore(owner: type, name: str) -> None:
    original = getattr(getattr(owner, name), _ORIGINAL, None)
    if original is not None:
        setattr(owner, name, original)


def instrument(*, guard: Guard | None = None) -> None:
    """Guard every Bedrock client that any botocore or aiobotocore session creates from now on (idempotent).

    Clients made before the call are not touched: pass them to
    :func:`guard_client`. aiobotocore's sessions are covered if it is imported
    by then; ``privsdk.instrument()`` also covers it when it is imported later.
    """

    def create_client(current: Any) -> Any:
        def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
            return guard_client(current(self, *args, **kwargs), guard=guard)

        return create_client

    def create_aio_client(current: Any) -> Any:
        async def _create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
            return guard_client(await current(self, *args, **kwargs), guard=guard)

        return _create_client

    with _lock:
        _wrap(botocore.session.Session, "create_client", create_client)
        aio = _aio_session()
        if aio is not None:
            _wrap(aio, "_create_client", create_aio_client)


def uninstrument() -> None:
    """Undo :func:`instrument` for clients created afterwards; guarded clients stay guarded."""
    with _lock:
        _restore(botocore.session.Session, "create_client")
        aio = _aio_session()
        if aio is not None:
            _restore(aio, "_create_client")


def is_instrumented() -> bool:
    return hasattr(botocore.session.Session.create_client, _ORIGINAL)
