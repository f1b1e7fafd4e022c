"""How each ``cohere.*`` offering gets its SDK client, checked at construction so a bad target fails before any call.

Every client is built with privsdk's guard in its transport (the Client's guard, ``options.guard``), so the
request the SDK really sends is judged at the same place as any other cohere client's.

- ``cohere.saas``: ``ClientV2`` on api.cohere.com (or ``target.endpoint``, else ``CO_API_URL``).
- ``cohere.private``: ``ClientV2`` on the deployment's URL (``target.endpoint``, required).
- ``cohere.azure``: ``ClientV2`` on the Azure AI Foundry deployment's URL with its key, as Cohere's docs show.
- ``cohere.bedrock`` / ``cohere.sagemaker``: the SDK's AWS client (SigV4 through boto3); no streaming, see README.
- ``cohere.oci``: ``OciClientV2`` (needs the ``oci`` package); no rerank, the SDK maps only chat and embed.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from privsdk.adapter import AdapterOptions, credential_missing
from privsdk.errors import AdapterMissing, ConfigError
from privsdk.policy import Target
from privsdk_cohere.cohere_adapter import CohereAdapter
from privsdk_cohere.dropin import guard_client

if TYPE_CHECKING:
    from cohere.client_v2 import ClientV2

_ALL = frozenset({"chat", "stream", "embed", "rerank"})
#: The SDK's AWS clients decode Bedrock/SageMaker event streams for API v1 only: a v2 chat_stream fails.
_AWS = frozenset({"chat", "embed", "rerank"})
#: OciClientV2 maps chat and embed to OCI actions; rerank needs a dedicated endpoint it does not address.
_OCI = frozenset({"chat", "stream", "embed"})
_SAAS_KEY_VARIABLES = ("CO_API_KEY", "COHERE_API_KEY")  # the SDK reads these, in this order


def open_target(target: Target, options: AdapterOptions) -> CohereAdapter:
    build = _BUILDERS.get(target.offering)
    if build is None:
        raise ConfigError(
            f"target {target.name!r}: the cohere adapter does not serve offering {target.offering!r}",
            hint="one of: " + ", ".join(_BUILDERS),
        )
    return build(target, options)


def _saas(target: Target, options: AdapterOptions) -> CohereAdapter:
    # CO_API_URL is read here: the SDK reads it once, when cohere.client_v2 is first imported.
    endpoint = target.endpoint or os.environ.get("CO_API_URL") or None
    key = _key(target, options, "api_key", _SAAS_KEY_VARIABLES)
    return _platform(target, options, key, endpoint, target.model)


def _private(target: Target, options: AdapterOptions) -> CohereAdapter:
    endpoint = _endpoint(target, "the private deployment's URL")
    # Cohere's docs leave the key blank for private deployments (the SDK then sends no Authorization); a gateway
    # in front may want one. Never the platform key: it is a secret of another account.
    return _platform(target, options, options.credentials.get("private_api_key", ""), endpoint, target.model)


def _azure(target: Target, options: AdapterOptions) -> CohereAdapter:
    endpoint = _endpoint(
        target, "the Azure AI Foundry deployment's target URI, e.g. https://NAME.REGION.models.ai.azure.com"
    )
    key = _key(target, options, "azure_api_key", ("AZURE_API_KEY",))  # never the Cohere platform key
    return _platform(target, options, key, endpoint, target.deployment or target.model)


def _platform(target: Target, options: AdapterOptions, key: str, base_url: str | None, model: str) -> CohereAdapter:
    from cohere.client_v2 import AsyncClientV2, ClientV2

    settings: dict[str, Any] = {
        "api_key": key,
        "base_url": base_url,
        "timeout": options.timeout,
        "max_retries": 0,
        "log_warning_experimental_features": False,
    }
    return CohereAdapter(
        target,
        options,
        client=guard_client(ClientV2(**settings), guard=options.guard, reroutes=False),
        model=model,
        operations=_ALL,
        new_async_client=lambda: guard_client(AsyncClientV2(**settings), guard=options.guard, reroutes=False),
    )


def _key(target: Target, options: AdapterOptions, credential: str, variables: tuple[str, ...]) -> str:
    """The key ``credential`` of the credentials given; only when none were given, the first of ``variables`` set.

    Credentials given are an account of their own (a tenant's, or ``Client(credentials=)``): one without this key
    must not borrow the deployment's account from the environment, so that is a :class:`ConfigError`.
    """
    if options.credentials:
        key = options.credentials.get(credential)
        if not key:
            raise credential_missing(target, "cohere", credential, variables[0])
        return key
    key = next((os.environ[v] for v in variables if v in os.environ), None)
    if not key:
        raise ConfigError(
            f"target {target.name!r} ({target.offering}) has no API key",
            hint=f"set {variables[0]}, or give credentials {credential}",
        )
    return key


def _endpoint(target: Target, what: str) -> str:
    if not target.endpoint:
        raise ConfigError(f"target {target.name!r} ({target.offering}) needs endpoint", hint=f"set endpoint to {what}")
    return target.endpoint


def _aws(service: str) -> Callable[[Target, AdapterOptions], CohereAdapter]:
    def build(target: Target, options: AdapterOptions) -> CohereAdapter:
        if target.endpoint:
            # The SDK builds the AWS URL from the region alone; an endpoint it cannot honour must not be dropped.
            raise ConfigError(
                f"target {target.name!r} ({target.offering}): the cohere SDK's {service} client cannot use an endpoint",
                hint="remove endpoint" + (", or use offering bedrock.runtime" if service == "bedrock" else ""),
            )
        try:
            import boto3  # not a dependency of the cohere SDK: its AWS clients import it when built
        except ImportError as exc:
            raise _missing(target, "boto3") from exc

        creds = options.credentials
        keys = {
            "aws_access_key_id": creds.get("aws_access_key_id"),
            "aws_secret_access_key": creds.get("aws_secret_access_key"),
            "aws_session_token": creds.get("aws_session_token"),
        }
        if creds:
            # Credentials given are an account of their own: without a key pair, boto3 would take the deployment's
            # from its chain (AWS_* variables, AWS_PROFILE, ~/.aws, instance roles). With the pair, the session
            # holds those keys and the token given, if any, and reads no AWS_SESSION_TOKEN or profile's keys.
            for name in ("aws_access_key_id", "aws_secret_access_key"):
                if not keys[name]:
                    raise credential_missing(
                        target,
                        "cohere",
                        name,
                        "the AWS credential chain",
                        "aws_access_key_id and aws_secret_access_key",
                    )
        session = boto3.Session(region_name=target.region, **keys)
        if session.region_name is None:
            raise ConfigError(
                f"target {target.name!r} ({target.offering}) has no AWS region", hint="set region, or AWS_REGION"
            )
        if session.get_credentials() is None:
            raise ConfigError(
                f"target {target.name!r} ({target.offering}) has no AWS credentials",
                hint="give credentials aws_access_key_id and aws_secret_access_key, or set up the AWS credential chain",
            )
        client: ClientV2
        if service == "bedrock":
            from cohere import BedrockClientV2

            client = BedrockClientV2(
                aws_access_key=keys["aws_access_key_id"],
                aws_secret_key=keys["aws_secret_access_key"],
                aws_session_token=keys["aws_session_token"],
                aws_region=session.region_name,
                timeout=options.timeout,
            )
        else:
            # SagemakerClientV2 adds only a fine-tuning helper, whose construction sets AWS_DEFAULT_REGION in
            # os.environ and builds two boto3 clients: its base class is the same client without that.
            from cohere.aws_client import AwsClientV2

            client = AwsClientV2(
                aws_access_key=keys["aws_access_key_id"],
                aws_secret_key=keys["aws_secret_access_key"],
                aws_session_token=keys["aws_session_token"],
                aws_region=session.region_name,
                timeout=options.timeout,
                service="sagemaker",
            )
        # The guard judges the AWS host the signing hook writes.
        guard_client(client, guard=options.guard, reroutes=False)
        # SageMaker addresses an endpoint by name: the deployment, else the model.
        model = target.model if service == "bedrock" else target.deployment or target.model
        return CohereAdapter(target, options, client=client, model=model, operations=_AWS)

    return build


def _missing(target: Target, package: str) -> AdapterMissing:
    return AdapterMissing(
        f"target {target.name!r} ({target.offering}) needs the {package} package, which is not installed",
        hint=f"pip install {package}",
    )


def _oci(target: Target, options: AdapterOptions) -> CohereAdapter:
    creds = options.credentials
    if creds and not any(creds.get(k) for k in ("oci_user_id", "oci_config_path", "oci_profile")):
        # Credentials given are an account of their own: with none of these, the SDK would sign with the
        # deployment's ~/.oci/config, profile DEFAULT.
        raise credential_missing(
            target,
            "cohere",
            "oci_user_id",
            "~/.oci/config's DEFAULT profile",
            "oci_user_id with oci_fingerprint, oci_tenancy_id and a private key, or oci_config_path or oci_profile,",
        )
    if importlib.util.find_spec("oci") is None:
        raise _missing(target, "oci")
    if not target.project:
        raise ConfigError(
            f"target {target.name!r} (cohere.oci) needs project", hint="set project to the OCI compartment OCID"
        )
    from cohere.oci_client import OciClientV2

    try:
        client = OciClientV2(
            oci_config_path=creds.get("oci_config_path"),
            oci_profile=creds.get("oci_profile"),
            oci_user_id=creds.get("oci_user_id"),
            oci_fingerprint=creds.get("oci_fingerprint"),
            oci_tenancy_id=creds.get("oci_tenancy_id"),
            oci_private_key_path=creds.get("oci_private_key_path"),
            oci_private_key_content=creds.get("oci_private_key_content"),
            oci_region=target.region,
            oci_compartment_id=target.project,
            timeout=options.timeout,
        )
    except Exception as exc:  # a missing ~/.oci/config, a bad key file, no region: the OCI SDK's own errors
        raise ConfigError(
            f"target {target.name!r} (cohere.oci): the OCI client could not be built ({type(exc).__name__})",
            hint="check region and the OCI credentials (~/.oci/config or credentials oci_*)",
        ) from exc
    guard_client(client, guard=options.guard, reroutes=False)
    return CohereAdapter(target, options, client=client, model=target.model, operations=_OCI)


_BUILDERS: dict[str, Callable[[Target, AdapterOptions], CohereAdapter]] = {
    "cohere.saas": _saas,
    "cohere.private": _private,
    "cohere.azure": _azure,
    "cohere.bedrock": _aws("bedrock"),
    "cohere.sagemaker": _aws("sagemaker"),
    "cohere.oci": _oci,
}
