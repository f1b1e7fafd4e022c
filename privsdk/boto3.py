"""boto3 with privsdk's guard on its Amazon Bedrock clients: ``from privsdk import boto3`` replaces ``import boto3``.

``privsdk.boto3.client("bedrock-runtime", ...)``, ``privsdk.boto3.Session``
and every other boto3 name work as in boto3; the clients of Bedrock services (and of SageMaker's runtime)
judge each request before it is sent (guide:
https://privsdk.readthedocs.io/en/latest/dropin-boto3/). Needs boto3, which
privsdk's bedrock extra installs (``pip install 'privsdk[bedrock]'``); without
it, importing this module raises :class:`privsdk.errors.AdapterMissing` with that command.

Every way this module offers to make a client goes through the guarded
``Session``: ``client``, ``resource``, ``Session``, ``session.Session`` and the
default session (``setup_default_session``, ``DEFAULT_SESSION``). The default
session is this module's own, as boto3's is boto3's: ``import boto3`` and its
default session are left as they are.
"""

from __future__ import annotations

import sys
from typing import Any

from privsdk.adapter import vendor_sdk_needed as _vendor_sdk_needed
from privsdk.outbound.constructors import SdkNames as _SdkNames
from privsdk.outbound.constructors import star_names as _star_names
from privsdk.outbound.constructors import swap_for as _swap_for

with _vendor_sdk_needed("bedrock", __name__):
    import boto3 as _boto3
    import boto3.session as _boto3_session
    from privsdk_bedrock.dropin import (
        PolicyViolation,
        Session,
        guard_client,
        instrument,
        is_instrumented,
        uninstrument,
    )

__all__ = [
    "PolicyViolation",
    "Session",
    "client",
    "guard_client",
    "instrument",
    "is_instrumented",
    "uninstrument",
]
__all__ += [name for name in _star_names(_boto3) if name not in __all__]  # what `from boto3 import *` takes

#: The drop-in's default session, made on first use (boto3 keeps its own in ``boto3.DEFAULT_SESSION``).
DEFAULT_SESSION: Any = None


def setup_default_session(**kwargs: Any) -> None:
    """``boto3.setup_default_session``, for this module's default session (a guarded ``Session``)."""
    global DEFAULT_SESSION
    DEFAULT_SESSION = Session(**kwargs)


def _get_default_session() -> Any:
    if DEFAULT_SESSION is None:
        setup_default_session()
    return DEFAULT_SESSION


def client(*args: Any, **kwargs: Any) -> Any:
    """``boto3.client(...)`` on this module's default session: its Bedrock clients are guarded."""
    return _get_default_session().client(*args, **kwargs)


def resource(*args: Any, **kwargs: Any) -> Any:
    """``boto3.resource(...)`` on this module's default session (a resource's client is made by ``client``)."""
    return _get_default_session().resource(*args, **kwargs)


#: Any other name is boto3's own (``exceptions``, ``set_stream_logger``, ``__version__``, ...); its submodules with
#: the guarded ``Session`` in place of boto3's.
__getattr__ = _SdkNames(_boto3, _swap_for(Session), __name__)
#: ``boto3.session``, whose ``Session`` is the guarded one (``from privsdk.boto3.session import Session`` too).
session = sys.modules[f"{__name__}.session"] = __getattr__.view(_boto3_session)


def __dir__() -> list[str]:
    from privsdk.outbound.constructors import dropin_dir

    return dropin_dir(globals(), "boto3")()
