"""Whether a request is sent with a tenant's own credentials, when the tenant has its own account at a vendor.

A tenant's own ``credentials.<vendor>`` mean its own account with that vendor: its attestations there are its own,
and the deployment's do not apply to it (docs/configuration.md). A request judged for that tenant must then carry
one of those credentials. Sent with another key (an app's drop-in built with the app's key inside the tenant's
``privsdk.scope``, an SDK that took a key from its environment), it runs on an account the tenant's attestations do
not speak of: the guard refuses it.

What a request carries is compared with what the tenant's credentials hold, and every one must be the tenant's: a
bearer token; an ``api-key``, ``x-api-key``, ``x-goog-api-key`` or ``Ocp-Apim-Subscription-Key`` (Azure API
Management's) header, or a query parameter that holds an API key or token (``key``, ``subscription-key``, ...:
:data:`~privsdk.outbound.outgoing.KEY_PARAMETERS`); the access key id of an AWS Signature Version 4, in its
header or a presigned query; the tenancy, user and key fingerprint of an OCI signature. Credentials that are never
sent as such (an OCI config file's path or profile) cannot be compared: a request signed with an OCI key, for a
tenant whose own account is named only so, is not checked; any other request for it is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl

from privsdk.outbound.outgoing import KEY_PARAMETERS, Outgoing
from privsdk.policy import Tenant, account_vendor

#: Credential keys whose value a request carries as it is (the key, token or id the vendor identifies it by).
_SENT = frozenset(
    {
        "api_key", "azure_api_key", "private_api_key", "azure_ad_token", "bearer_token", "access_token",
        "aws_access_key_id", "oci_user_id", "oci_tenancy_id", "oci_fingerprint",
    }
)  # fmt: skip
#: Credential keys that name an account but never travel as such: where they are all a tenant gives, no request
#: can be compared with them.
_UNCOMPARED = frozenset({"oci_config_path", "oci_profile", "oci_private_key_path", "oci_private_key_content"})
#: How an OCI request signature's Authorization header starts.
_OCI = "Signature "
#: Headers that hold an API key or token as they are.
_KEY_HEADERS = ("api-key", "x-api-key", "x-goog-api-key", "ocp-apim-subscription-key")
#: A presigned AWS request's query parameter: ``AKID/DATE/REGION/SERVICE/aws4_request``, as in the header.
_AWS_QUERY_CREDENTIAL = "x-amz-credential"


def learn(owners: dict[str, str], tenant: Tenant, environ: Mapping[str, str]) -> None:
    """Note in ``owners`` (key -> tenant name) every key, token and id that stands for an account of ``tenant``'s own
    (read from ``environ``): a request judged for another tenant, or for none, that carries one would run on it.
    Keyed by the value alone, whatever the vendor: an AWS access key id is that AWS account's at Bedrock and at
    SageMaker alike."""
    for _, pairs in tenant.credentials:
        for key, env_name in pairs:
            if key in _SENT:
                value = environ.get(env_name)
                if value and value.strip():
                    owners[value.strip()] = tenant.name


def owner(owners: Mapping[str, str], out: Outgoing) -> str | None:
    """The tenant whose own account a key ``out`` carries stands for (``owners``, from :func:`learn`), if any."""
    return next((owners[key] for key in carried(out) if key in owners), None)


def owns(tenant: Tenant, vendor: str) -> bool:
    """Whether ``tenant``'s own credentials stand for an account of its own at ``vendor`` (an attestation vendor)."""
    return bool(tenant.credentials) and vendor in tenant.owned()


def own_keys(tenant: Tenant, vendor: str, environ: Mapping[str, str]) -> tuple[set[str], bool]:
    """The keys, tokens and ids that stand for ``tenant``'s own account at ``vendor`` (read from ``environ``, where
    its credentials name them), and whether it names that account by credentials that never travel as such."""
    own: set[str] = set()
    uncompared = False
    for cred_vendor, pairs in tenant.credentials:
        for key, env_name in pairs:
            if account_vendor(cred_vendor, key) != vendor:
                continue
            if key in _SENT:
                value = environ.get(env_name)
                if value:
                    own.add(value)
            elif key in _UNCOMPARED:
                uncompared = True
    return own, uncompared


def foreign(out: Outgoing, own: set[str], uncompared: bool) -> bool:
    """Whether ``out``, judged for a tenant with its own account at a vendor, carries none of the credentials that
    stand for that account (``own`` and ``uncompared``, from :func:`own_keys`)."""
    if not own and uncompared and out.headers.get("authorization", "").startswith(_OCI):
        return False  # signed with an OCI key the tenant names by its config file only: it cannot be told apart
    # Every key the request carries must be the tenant's: which of two the vendor reads (a bearer token beside an
    # api-key header, say) is the vendor's choice, not the guard's to guess. With no key of its own for this
    # vendor, whatever the request carries is another's.
    sent = carried(out)
    return not sent or not sent <= own


def carried(out: Outgoing) -> set[str]:
    """The keys, tokens and ids ``out`` identifies itself by to the vendor."""
    found = set()
    headers = out.headers
    auth = headers.get("authorization")
    if auth:
        scheme, _, rest = auth.strip().partition(" ")
        if scheme.lower() == "bearer":
            found.add(rest.strip())
        elif scheme.startswith("AWS4-"):  # Credential=AKID/DATE/REGION/SERVICE/aws4_request, ...
            credential = rest.partition("Credential=")[2]
            found.add(credential.partition("/")[0])
        elif scheme + " " == _OCI:  # OCI: keyId="TENANCY/USER/FINGERPRINT", ...
            key_id = rest.partition('keyId="')[2].partition('"')[0]
            found.update(key_id.split("/"))
        else:
            found.add(auth.strip())
    for name in _KEY_HEADERS:
        value = headers.get(name)
        if value:
            found.add(value.strip())
    if out.query:
        for name, value in parse_qsl(out.query):
            name = name.lower()
            if name in KEY_PARAMETERS:  # a parameter of another meaning by such a name refuses, never sends
                found.add(value.strip())
            elif name == _AWS_QUERY_CREDENTIAL:
                found.add(value.partition("/")[0])
    found.discard("")
    return found
