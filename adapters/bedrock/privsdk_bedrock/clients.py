"""The botocore ``bedrock-runtime`` clients of one adapter: settings checked at construction, clients made on first use.

botocore fixes its read timeout per client, not per call, so an adapter keeps
one client per timeout it was asked for (rounded to two significant digits, so
a call budget counting down reuses clients), at most ``MAX_CLIENTS`` of them.
They share the adapter's botocore session, and every session shares one loader
of botocore's service models: loading them takes about 150 ms once per
process, a client then takes a few ms. Clients are what ``boto3.client``
returns; boto3's own session is skipped because it adds a search path to the
loader it is given, each time. Each client has privsdk's guard on its event system
(:mod:`privsdk.outbound.botocore_seam`). None of this touches the network.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from privsdk.adapter import credential_missing
from privsdk.catalogue.model import parse_model_arn
from privsdk.config import shown_key
from privsdk.errors import ConfigError
from privsdk.policy import Target

if TYPE_CHECKING:
    from privsdk.outbound.judge import Guard

CREDENTIAL_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "bearer_token")
#: botocore reads this for Bedrock API keys (``ScopedEnvTokenProvider``, signing name ``bedrock``).
BEARER_ENV = "AWS_BEARER_TOKEN_BEDROCK"
MAX_CLIENTS = 8


def resolve_region(target: Target, environ: Mapping[str, str] = os.environ) -> str:
    """The target's AWS Region: its ``region`` key, else its model ARN's, else ``AWS_REGION``, else
    ``AWS_DEFAULT_REGION``. A region that contradicts the ARN's is an error: the call would go elsewhere."""
    arn = parse_model_arn(target.model, "bedrock")
    if arn is not None and target.region not in (None, arn.region):
        raise ConfigError(
            f"target {target.name!r}: region {target.region!r} contradicts its model ARN's Region {arn.region!r}",
            where=f"targets.{target.name}.region",
            hint="drop region (the ARN's Region is used) or make the two agree",
        )
    region = (
        target.region or (arn.region if arn else None) or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    )
    if not region:
        raise ConfigError(
            f"target {target.name!r} ({target.offering}) has no AWS Region",
            where=f"targets.{target.name}.region",
            hint='set region = "eu-central-1" (or another Region) on the target, or AWS_REGION',
        )
    return region


def check_credentials(target: Target, credentials: Mapping[str, str], environ: Mapping[str, str] = os.environ) -> None:
    """Refuse, before any call, credentials botocore would reject or silently ignore."""
    where = f"credentials for target {target.name}"
    unknown = sorted(set(credentials) - set(CREDENTIAL_KEYS))
    if unknown:
        raise ConfigError(  # named only when it looks like a key's name: never a secret pasted in its place
            f"unknown Bedrock credential {shown_key(unknown[0])}", where=where, hint="use " + ", ".join(CREDENTIAL_KEYS)
        )
    keys = [k for k in ("aws_access_key_id", "aws_secret_access_key") if credentials.get(k)]
    if len(keys) == 1 or (credentials.get("aws_session_token") and not keys):
        raise ConfigError("an AWS key needs both aws_access_key_id and aws_secret_access_key", where=where)
    if keys and credentials.get("bearer_token"):
        raise ConfigError("give either an AWS key pair or bearer_token, not both", where=where)
    if credentials and not keys and not credentials.get("bearer_token"):
        # Credentials given are an account of their own: botocore's chain (AWS_* variables, AWS_PROFILE, ~/.aws,
        # instance roles, AWS_BEARER_TOKEN_BEDROCK) would sign with the deployment's.
        raise credential_missing(
            target,
            "bedrock",
            "aws_access_key_id",
            f"the AWS credential chain or {BEARER_ENV}",
            "aws_access_key_id and aws_secret_access_key, or bearer_token,",
        )
    bearer = credentials.get("bearer_token") or (not keys and environ.get(BEARER_ENV))
    if bearer and target.endpoint and not target.endpoint.startswith("https://"):
        raise ConfigError(
            "a Bedrock API key (bearer token) is only sent over https",
            where=f"targets.{target.name}.endpoint",
            hint="use an https:// endpoint, or AWS keys",
        )


def timeout_key(timeout: float) -> float:
    """``timeout`` to two significant digits: the client cache's key and the client's actual timeout."""
    return float(f"{timeout:.2g}")


_loader: Any = None
_loader_lock = threading.Lock()


def _shared_loader() -> Any:
    global _loader
    with _loader_lock:
        if _loader is None:
            from botocore.loaders import create_loader

            _loader = create_loader(os.environ.get("AWS_DATA_PATH"))
        return _loader


class _BearerToken:
    """A botocore token provider that always returns the API key it was given."""

    def __init__(self, token: str):
        from botocore.tokens import FrozenAuthToken

        self._token = FrozenAuthToken(token)

    def load_token(self, **kwargs: Any) -> Any:
        return self._token


class ClientPool:
    """The adapter's clients, one per timeout; thread-safe, and made lazily."""

    def __init__(self, target: Target, credentials: Mapping[str, str], guard: Guard | None = None):
        check_credentials(target, credentials)
        self._guard = guard
        self.region = resolve_region(target)
        self._endpoint = target.endpoint
        self._verify = target.option("ca_bundle")
        self._credentials = dict(credentials)
        self._lock = threading.Lock()
        self._session: Any = None
        self._clients: dict[float, Any] = {}

    def get(self, timeout: float) -> Any:
        """A client whose connect and read timeouts are ``timeout`` (rounded)."""
        key = timeout_key(timeout)
        client = self._clients.get(key)
        if client is not None:
            return client
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                if len(self._clients) >= MAX_CLIENTS:
                    # Not closed: a call on another thread may still be using it; its pool goes with it.
                    del self._clients[next(iter(self._clients))]
                client = self._clients[key] = self._create(key)
            return client

    def _create(self, timeout: float) -> Any:
        from botocore.config import Config

        config: dict[str, Any] = {
            "retries": {"total_max_attempts": 1, "mode": "standard"},  # privsdk owns retries
            "connect_timeout": timeout,
            "read_timeout": timeout,
        }
        kwargs: dict[str, Any] = {}
        creds = self._credentials
        if creds.get("bearer_token"):
            config["signature_version"] = "bearer"
        elif creds.get("aws_access_key_id"):
            # Explicit keys win over an AWS_BEARER_TOKEN_BEDROCK in the environment, which botocore would prefer.
            config["signature_version"] = "v4"
            kwargs = {
                k: creds[k] for k in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token") if creds.get(k)
            }
        if self._session is None:
            self._session = self._new_session()
        client = self._session.create_client(
            "bedrock-runtime",
            region_name=self.region,
            endpoint_url=self._endpoint,
            verify=self._verify,
            config=Config(**config),
            **kwargs,
        )
        # privsdk.Client's requests pass the same guard as any other boto3 client's: judged as sent, by the Client's
        # guard and with no rerouter (the Client reroutes by itself), which replace those instrument() put on the
        # client as the session built it.
        from privsdk.outbound.botocore_seam import guard_botocore
        from privsdk_bedrock.refusal import refuse

        return guard_botocore(client, refusal=refuse, guard=self._guard)

    def _new_session(self) -> Any:
        import botocore.session

        session = botocore.session.Session()
        session.register_component("data_loader", _shared_loader())
        token = self._credentials.get("bearer_token")
        if token:
            session.register_component("token_provider", _BearerToken(token))
        return session

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
