"""Building a :class:`~privsdk.policy.Policy` from the environment and a TOML file.

The file is the floor a deployment relies on: environment variables may add
requirements and attestations, never remove or weaken what the file sets.
Every mistake is a :class:`~privsdk.errors.ConfigError` that names the
variable, or the file and line, and the valid choices.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from privsdk import tomlcompat
from privsdk.catalogue import Catalogue, Offering, default_catalogue
from privsdk.catalogue.model import parse_model_arn
from privsdk.docs_url import page
from privsdk.errors import ConfigError
from privsdk.policy import DEFAULT_MAX_CATALOGUE_AGE_DAYS, Endpoint, Policy, Target, Tenant, owned_accounts
from privsdk.tenants import NAME as TENANT_NAME
from privsdk.tenants import SECONDS, TenantDocument, TenantProvider, TenantStore, as_store, parse_tenants_spec
from privsdk.usage import SPEC as USAGE_SPEC
from privsdk.usage import SPEC_HINT as USAGE_SPEC_HINT
from privsdk.usage import require_otlp
from privsdk.vocabulary import Requirement, parse_requirement, parse_requirements

if TYPE_CHECKING:
    from privsdk.resilience import Limits

#: Every variable privsdk reads. Any other ``PRIVSDK_*`` name is an error, so a typo never goes unnoticed.
ENV_VARS: dict[str, str] = {
    "PRIVSDK_CONFIG": "path of the TOML policy file",
    "PRIVSDK_REQUIRE": "comma list of requirements added to every tenant's default data class",
    "PRIVSDK_ATTEST": "comma list of vendor:attestation added to the default accounts (with a policy file: "
    "only if the file sets allow_env_attest = true)",
    "PRIVSDK_TENANT": "the tenant whose policy applies when a call names none",
    "PRIVSDK_TENANTS": "a tenant store: dir:///PATH (one TOML file per tenant) or sqlite:///PATH?table=NAME",
    "PRIVSDK_ON_VIOLATION": "refuse or reroute, for every tenant",
    "PRIVSDK_USAGE": "where usage records go: sqlite (default), sqlite:///PATH, jsonl:///PATH, otlp, none",
    "PRIVSDK_USAGE_MAX_AGE_DAYS": "delete usage records older than this many days (default: keep them)",
    "PRIVSDK_MAX_ATTEMPTS": "attempts per target for one call, retries included (default 3)",
    "PRIVSDK_DEADLINE_S": "seconds one call may take in all, retries and fallbacks included (default 120)",
    "PRIVSDK_ENDPOINTS": "comma list of URL=OFFERING[@ACCOUNT]: endpoints the catalogue does not know "
    "(self-hosted servers, private endpoints, proxies), added to the file's [endpoints]",
    "PRIVSDK_DEBUG_CHAIN": "1 keeps the vendor SDK's exception as the cause of privsdk errors (debugging only: "
    "its text can hold the prompt)",
    "PRIVSDK_SDK_DEBUG_LOGS": "1 leaves the vendor SDKs' loggers alone (debugging only: their records can hold "
    "prompts, outputs and headers)",
}
ON_VIOLATION = ("refuse", "reroute")
#: What a list-of-strings error shows as an example, for the key it is: requirements, attestations, or targets.
_REQUIREMENTS = '["no_training", "zdr"]'
_ATTESTATIONS = '["zdr", "region=eu"], with the vendor\'s attestations'
_ALTERNATIVES = '["azure-eu", "mistral/mistral-large-latest"], names of [targets.NAME] or VENDOR/MODEL'
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_TOP_KEYS = ("attest", "targets", "tenants", "default_tenant", "allow_env_attest", "endpoints")
_TARGET_KEYS = ("offering", "model", "attest", "endpoint", "deployment", "region", "project", "api_version", "options")
_TENANT_KEYS = (
    "classes",
    "default_class",
    "on_violation",
    "attest",
    "reroute",
    "max_catalogue_age_days",
    "credentials",
)
#: The ``options`` each offering's adapter reads: option -> its valid values (None: any non-empty string). An
#: offering not listed reads none. The adapters check the same (tests/test_config.py compares the tables), but
#: only when a call opens one: here, loading the policy (and ``privsdk check``) reports a misspelt option.
TARGET_OPTIONS: dict[str, dict[str, tuple[str, ...] | None]] = {
    "openai.api": {"api": ("chat_completions", "responses")},
    "azure.openai": {"auth": ("key", "entra")},
    "azure.foundry": {"auth": ("key", "entra")},
    "bedrock.runtime": {"ca_bundle": None},
}
#: The keys of a tenant's ``credentials.<vendor>`` that the adapters serving the vendor's offerings read.
CREDENTIAL_KEYS: dict[str, tuple[str, ...]] = {
    "openai": ("api_key", "organization", "project"),
    "azure": ("api_key", "azure_ad_token"),
    "selfhosted": ("api_key",),
    "cohere": (
        "api_key", "azure_api_key", "private_api_key", "aws_access_key_id", "aws_secret_access_key",
        "aws_session_token", "oci_config_path", "oci_profile", "oci_user_id", "oci_fingerprint", "oci_tenancy_id",
        "oci_private_key_path", "oci_private_key_content",
    ),
    "mistral": ("api_key", "azure_api_key"),
    "bedrock": ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "bearer_token"),
    "vertex": ("access_token",),
    "gemini": ("api_key",),
}  # fmt: skip
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: What follows the last '=' of a PRIVSDK_ENDPOINTS entry: OFFERING[@ACCOUNT] (an offering id is vendor.name).
_OFFERING_SPEC = re.compile(r"^[a-z][a-z0-9_]*\.[A-Za-z0-9_.\-]+(@.*)?$")
#: An option's value shown in an error: a plain word (``respones``), never what could be a pasted secret.
_PLAIN_WORD = re.compile(r"^[a-z][a-z0-9_.\-]{0,31}$")


#: What a key privsdk reads looks like (``api_key``, ``aws_session_token``, ``ca_bundle``): lower-case words joined
#: by '_'. A key that does not (``sk-...``, ``AKIA...``: a secret pasted where its name belongs) is never shown.
_KEY_NAME = re.compile(r"[a-z][a-z0-9]{0,11}(?:_[a-z0-9]{1,12}){0,5}")


def looks_like_key(key: object) -> bool:
    """Whether ``key`` looks like the name of a key privsdk reads, so an error may quote it."""
    return isinstance(key, str) and len(key) <= 40 and _KEY_NAME.fullmatch(key) is not None


def shown_key(key: object) -> str:
    """A key quoted for an error message when it looks like a name; else a placeholder (a pasted secret?)."""
    return repr(key) if looks_like_key(key) else "(a key not shown: is a secret pasted there?)"


def url_problem(url: str) -> str | None:
    """What keeps ``url`` from being an ``http(s)://host[:port]/...`` URL, in words; None when nothing does.

    The words never quote the URL (it may hold user info or a query with a key): show it with :func:`shown_url`.
    """
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
        hostname = parts.hostname
    except ValueError as exc:  # an unclosed '[', or characters no host can hold; urllib's text may quote the URL
        if "IPv6" in str(exc):
            return "an IPv6 address goes in closed brackets, [::1]" + _userinfo_hint(url)
        return "its host is not valid" + _userinfo_hint(url)
    if parts.scheme.lower() not in ("http", "https"):
        return "it does not start with http:// or https://"
    if parts.netloc.rpartition("@")[2].count(":") > 1 and "[" not in parts.netloc:
        return "an IPv6 address must be in brackets (write e.g. http://[::1]:8000/v1)"
    if not hostname:
        return "it names no host" + _userinfo_hint(url)
    try:
        parts.port  # noqa: B018  (reading it checks it)
    except ValueError:
        return "the port is not a number from 0 to 65535" + _userinfo_hint(url)
    return None


#: What a variable name usually looks like (OPENAI_API_KEY). A value that is a valid name but not like this one
#: (SKLIVE8F3A..., a key pasted where its variable's name belongs) is never printed in an error.
_CONVENTIONAL_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]{0,31}(_[A-Z0-9]{1,32}){1,8}$")


def shown_env_name(value: object) -> str:
    """``value`` quoted for an error message when it looks like a variable name; else a placeholder."""
    if isinstance(value, str) and _CONVENTIONAL_ENV_NAME.match(value):
        return value
    return "a value that does not look like a variable name (not shown: is a secret pasted there?)"


def missing_credential(
    vendor: str, key: str, env_name: str, *, where: str | None, key_path: str, tenant: str | None = None
) -> ConfigError:
    """The error for a tenant's credential whose variable is not set, from a policy file or a tenant store alike.

    ``env_name`` is shown only when it looks like a variable name (:func:`shown_env_name`): a key pasted where
    its variable's name belongs never reaches the message. ``key_path`` is where the name is written
    (``tenants.acme.credentials.openai.api_key``, or ``credentials.openai.api_key`` in a tenant's own document).
    """
    shown = shown_env_name(env_name)
    prefix = f"tenant {tenant!r}: " if tenant is not None else ""
    return ConfigError(
        f"{prefix}{vendor} credential {key!r} names {shown}, which is not set",
        where=where,
        hint=f"set {shown} in the environment"
        if shown == env_name
        else f"write the name of the variable that holds it at {key_path}",
    )


#: What a URL's scheme looks like; anything else before "://" is not shown.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]{0,15}$")


def shown_url(value: str) -> str:
    """``value``, a URL or connection string, as an error message may show it: without user info
    (``user:password@``), query string or fragment, which can hold credentials (``?password=``).

    User info goes first, up to the last '@': a password may hold '/', '?' or '#' unencoded, and cutting at those
    first would show the part of it before them. A '?' or '#' before the last '@' leaves it unknown where the
    user info ends and the query begins (a password holding '?', or a query holding '@'): then nothing after the
    scheme is shown.
    """
    text = value.strip()
    scheme, sep, rest = text.partition("://")
    if sep and not _SCHEME.match(scheme):
        return "the value (not shown: it is not a URL)"
    if not sep:
        rest = text
    head = scheme + sep if sep else ""
    before, at, after = rest.rpartition("@")
    if at:
        if "?" in before or "#" in before:
            return head + "... (not shown: its user info or query holds '?', '#' or '@')"
        rest = after  # user info, even a password holding '/' (everything to the last '@')
    main = rest
    for mark in "?#":
        main = main.partition(mark)[0]
    return head + main + ("?..." if len(main) < len(rest) else "")


def _userinfo_hint(url: str) -> str:
    """Words to add to the problem of a URL that holds an '@' past where its host ends: a password holding '/',
    '?' or '#' unencoded ends the host early, and the URL is read wrong. Empty when that cannot be the cause."""
    from urllib.parse import urlsplit

    rest = url.strip().partition("://")[2]
    if "@" not in rest:
        return ""
    try:
        netloc = urlsplit(url.strip()).netloc
    except ValueError:
        netloc = ""
    if rest.count("@") <= netloc.count("@"):
        return ""
    return " (if it holds a user name and password, percent-encode '/', '?', '#' and '@' in them: %2F, %3F, %23, %40)"


def load_policy(
    environ: Mapping[str, str] | None = None,
    catalogue: Catalogue | None = None,
    tenants: TenantStore | TenantProvider | None = None,
) -> Policy:
    """The policy in force: ``PRIVSDK_CONFIG``'s file (if any) plus the other ``PRIVSDK_*`` variables.

    With a tenant store (``tenants``, else ``PRIVSDK_TENANTS``) tenants come from
    it, one by one as calls name them, and the file may hold no ``[tenants]``.
    """
    env = os.environ if environ is None else environ
    cat = catalogue or default_catalogue()
    # Compared in any case: privsdk_require (a .env file, a container spec) is a misspelt PRIVSDK_REQUIRE, which
    # privsdk would never read, so the requirement it was meant to set would pass without a word.
    unknown = sorted(k for k in env if k.upper().startswith("PRIVSDK_") and k not in ENV_VARS)
    if unknown:
        raise ConfigError(
            "is not a privsdk variable",
            where=unknown[0],
            hint="privsdk reads, written in capitals: " + ", ".join(ENV_VARS),
        )

    usage = usage_spec(env)
    usage_max_age_days(env)
    max_attempts(env)
    deadline_s(env)
    for flag in FLAGS:
        env_flag(flag, env)
    on_violation = env.get("PRIVSDK_ON_VIOLATION", "").strip()
    if on_violation and on_violation not in ON_VIOLATION:
        raise ConfigError(f"bad value {on_violation!r}", where="PRIVSDK_ON_VIOLATION", hint="use refuse or reroute")
    try:
        env_reqs = parse_requirements(_items(env, "PRIVSDK_REQUIRE"))
    except ConfigError as exc:
        raise exc.at("PRIVSDK_REQUIRE") from None
    env_attest = _account_attestations(_items(env, "PRIVSDK_ATTEST"), cat, "PRIVSDK_ATTEST")

    spec = _named(env, "PRIVSDK_TENANTS", "the tenant store (PRIVSDK_TENANTS=dir:///srv/tenants)")
    store = as_store(tenants) if tenants is not None else parse_tenants_spec(spec) if spec else None

    path = _named(env, "PRIVSDK_CONFIG", "the policy file (PRIVSDK_CONFIG=privsdk.toml)")
    doc = _Document.read(path) if path else _Document.empty()
    policy = doc.build(cat, env_reqs, env_attest, on_violation or None, usage, store, env)
    env_endpoints = _items(env, "PRIVSDK_ENDPOINTS")
    if env_endpoints:
        declared = []
        for number, item in enumerate(env_endpoints, start=1):
            # An entry split at the wrong ',' or '=' (one inside a password) has pieces that are parts of the
            # password: unless it splits into a URL and an offering, no piece of it is shown.
            url, eq, offering = item.rpartition("=")
            entry = f"entry {number} of {len(env_endpoints)}"
            fix = (
                "write URL=OFFERING[@ACCOUNT] entries separated by ',', e.g. http://127.0.0.1:8000/v1=selfhosted.vllm; "
                "leave user info out (it plays no part here), or percent-encode a ',' or '=' in it (%2C, %3D)"
            )
            if not eq or not _OFFERING_SPEC.match(offering.strip()):
                raise ConfigError(
                    f"{entry} does not end in =OFFERING (not shown: it may hold a password)",
                    where="PRIVSDK_ENDPOINTS",
                    hint=fix,
                )
            problem = url_problem(url)
            if problem is not None:
                raise ConfigError(
                    f"{entry}: what comes before its last '=' is not a URL: {problem} (not shown: it may hold a "
                    "password)",
                    where="PRIVSDK_ENDPOINTS",
                    hint=fix,
                )
            try:
                declared.append(endpoint(url, offering, cat))
            except ConfigError as exc:
                raise exc.at("PRIVSDK_ENDPOINTS") from None
            if doc.from_file:
                _env_endpoint_under_a_file(declared[-1], entry, policy.endpoints, doc, cat)
        policy = Policy(
            policy.tenants, policy.default_tenant, policy.targets, policy.origin, policy.usage,
            policy.endpoints + tuple(declared),
        )  # fmt: skip

    chosen = env.get("PRIVSDK_TENANT", "").strip()
    if chosen and store is not None:  # looked up per call, like any tenant of the store
        if not TENANT_NAME.fullmatch(chosen):  # no store can hold it: every call naming no tenant would be refused
            shown = repr(chosen) if len(chosen) <= 64 and chosen.isprintable() else "(not shown)"
            raise ConfigError(
                f"{shown} is not a tenant name",
                where="PRIVSDK_TENANT",
                hint="a tenant's name: letters, digits, '_', '-', '.', starting with a letter or digit; never a path",
            )
        policy = Policy(policy.tenants, chosen, policy.targets, policy.origin, policy.usage, policy.endpoints)
    elif chosen:
        if chosen not in policy.tenants:
            raise ConfigError(policy.unknown_tenant(chosen), where="PRIVSDK_TENANT")
        policy = Policy(policy.tenants, chosen, policy.targets, policy.origin, policy.usage, policy.endpoints)
    return policy


def load_limits(environ: Mapping[str, str] | None = None) -> Limits:
    """Retry limits from ``PRIVSDK_MAX_ATTEMPTS`` and ``PRIVSDK_DEADLINE_S``."""
    from privsdk.resilience import Limits  # only clients need it, not the decision path

    env = os.environ if environ is None else environ
    limits = Limits()
    attempts = max_attempts(env)
    if attempts is not None:
        limits = limits._replace(max_attempts=attempts)
    seconds = deadline_s(env)
    if seconds is not None:
        limits = limits._replace(deadline_s=seconds)
    return limits


def _whole_number(value: str, where: str, low: int, high: int, hint: str) -> int:
    """``value`` (a variable's, stripped) as a whole number from ``low`` to ``high``, written in plain digits, else a
    ConfigError at ``where``. Its length is checked before it is read: int() refuses 4300 digits with a ValueError."""
    if not (value.isascii() and value.isdigit() and len(value) <= len(str(high)) and low <= int(value) <= high):
        raise ConfigError(f"bad value {value[:20]!r}", where=where, hint=hint)
    return int(value)


#: PRIVSDK_DEADLINE_S's range: below 10 ms no call can finish; above a day it is no limit.
_DEADLINE_RANGE = (0.01, 86_400.0)


def max_attempts(environ: Mapping[str, str] | None = None) -> int | None:
    """``PRIVSDK_MAX_ATTEMPTS``, checked (:func:`load_policy` checks it too, so ``privsdk check`` reports it)."""
    env = os.environ if environ is None else environ
    attempts = env.get("PRIVSDK_MAX_ATTEMPTS", "").strip()
    if not attempts:
        return None
    return _whole_number(attempts, "PRIVSDK_MAX_ATTEMPTS", 1, 999_999_999, "a whole number, 1 or more, e.g. 3")


def deadline_s(environ: Mapping[str, str] | None = None) -> float | None:
    """``PRIVSDK_DEADLINE_S``, checked: seconds, from 0.01 to 86400, in plain decimal digits."""
    env = os.environ if environ is None else environ
    deadline = env.get("PRIVSDK_DEADLINE_S", "").strip()
    if not deadline:
        return None
    low, high = _DEADLINE_RANGE
    if not SECONDS.fullmatch(deadline) or not low <= float(deadline) <= high:
        raise ConfigError(
            f"bad value {deadline[:20]!r}",
            where="PRIVSDK_DEADLINE_S",
            hint="seconds, more than 0: from 0.01 to 86400, in digits with an optional decimal point, e.g. 30 or 2.5",
        )
    return float(deadline)


#: The switches privsdk reads (each off unless set to a true value, see :func:`env_flag`).
FLAGS = ("PRIVSDK_DEBUG_CHAIN", "PRIVSDK_SDK_DEBUG_LOGS")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """A true/false variable: ``1``, ``true``, ``yes``, ``on`` turn it on; unset, empty, ``0``, ``false``, ``no``,
    ``off`` leave it off (any case); anything else is a ConfigError, so a switch is never silently ignored.

    The one reader of every boolean ``PRIVSDK_*`` variable (:data:`FLAGS`).
    """
    env = os.environ if environ is None else environ
    raw = env.get(name, "").strip()
    value = raw.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    shown = repr(raw[:20]) if raw.isascii() and raw.isprintable() else "(not shown)"
    raise ConfigError(f"bad value {shown}", where=name, hint="1, true, yes or on; 0, false, no or off to leave it off")


def usage_spec(environ: Mapping[str, str] | None = None) -> str:
    """``PRIVSDK_USAGE``, checked: where usage records go (default ``sqlite``)."""
    env = os.environ if environ is None else environ
    usage = env.get("PRIVSDK_USAGE", "sqlite").strip() or "sqlite"
    if not USAGE_SPEC.match(usage):
        raise ConfigError(f"bad value {shown_url(usage)!r}", where="PRIVSDK_USAGE", hint=USAGE_SPEC_HINT)
    check_usage_path(usage, "PRIVSDK_USAGE")
    if usage == "otlp":  # checked as the policy loads (a drop-in client built), not at the first record
        require_otlp("PRIVSDK_USAGE")
    return usage


def check_usage_path(spec: str, where: str) -> None:
    """A ``sqlite:///PATH`` or ``jsonl:///PATH`` usage store whose PATH holds a query string or a fragment is a
    ConfigError placed at ``where``: the file would be created under a name ending in ``?k=v``, and no setting
    is read from there."""
    kind, sep, path = spec.strip().partition(":///")
    if sep and kind in ("sqlite", "jsonl") and (path.endswith(("/", "\\")) or os.path.isdir("/" + path)):
        # Records go to a file: a directory (jsonl:////, sqlite:///var/lib/) fails every record at its write.
        raise ConfigError(
            f"a {kind}:/// usage store names a file, and this path names a directory (not shown)",
            where=where,
            hint=f"write {kind}:///PATH with the file's name at its end, e.g. {kind}:///var/lib/app/usage."
            + ("sqlite3" if kind == "sqlite" else "jsonl"),
        )
    if sep and kind in ("sqlite", "jsonl") and ("?" in path or "#" in path):
        raise ConfigError(
            f"a {kind}:/// usage store takes a file path and no settings: the part from '?' or '#' on would become "
            "part of the file's name (not shown)",
            where=where,
            hint=f"write {kind}:///PATH with nothing after the path, e.g. {kind}:///var/lib/app/usage."
            + ("sqlite3" if kind == "sqlite" else "jsonl"),
        )


#: The longest PRIVSDK_USAGE_MAX_AGE_DAYS: 100 years.
MAX_USAGE_AGE_DAYS = 36_500


def usage_max_age_days(environ: Mapping[str, str] | None = None) -> int | None:
    """``PRIVSDK_USAGE_MAX_AGE_DAYS``, checked: the automatic limit on usage records' age; None keeps them all."""
    env = os.environ if environ is None else environ
    value = env.get("PRIVSDK_USAGE_MAX_AGE_DAYS", "").strip()
    if not value:
        return None
    # A bound: records are pruned by time.time() - days * 86400, which a float holds only so far.
    return _whole_number(
        value,
        "PRIVSDK_USAGE_MAX_AGE_DAYS",
        1,
        MAX_USAGE_AGE_DAYS,
        f"a whole number of days, 1 or more, up to {MAX_USAGE_AGE_DAYS} (100 years); unset keeps every record",
    )


def _items(env: Mapping[str, str], name: str) -> list[str]:
    """The comma list in ``env[name]``; one that holds commas and nothing else is a ConfigError (an empty value
    adds nothing, as when the variable is unset)."""
    value = env.get(name, "")
    items = [p.strip() for p in value.split(",") if p.strip()]
    if not items and value.strip():
        raise ConfigError("holds commas and no item", where=name, hint="list items separated by ',', or unset it")
    return items


def _named(env: Mapping[str, str], name: str, what: str) -> str:
    """The path or URL in ``env[name]`` ("" when unset). Set to nothing, it is a ConfigError: a value lost on the
    way (``PRIVSDK_CONFIG=$POLICY_FILE`` with POLICY_FILE unset), which read as unset would drop the policy it
    names without a word."""
    value = env.get(name)
    if value is not None and not value.strip():
        raise ConfigError("is set but empty", where=name, hint=f"name {what}, or unset the variable")
    return (value or "").strip()


#: The byte order mark some editors put at the start of a UTF-8 file (Notepad did until 2019): read past it.
_BOM = "\ufeff"


def _parse_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomlcompat.loads(text.removeprefix(_BOM))
    except tomlcompat.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        raise ConfigError(
            f"invalid TOML: {msg.split(' (at line')[0]}",
            where=f"{where}:{m.group(1)}" if m else where,
            hint=f"see {page('configuration')} for the file's shape",
        ) from None
    except RecursionError:  # the parser recurses once per nested array or table
        raise ConfigError(
            "the policy is nested too deeply to read",
            where=where,
            hint=f"a policy is a few tables of strings and lists of strings: see {page('configuration')}",
        ) from None


class _DuplicateKey(ValueError):
    """A JSON object that gives one key twice; ``shown`` names the key when it is a plain word."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.shown = f" ({key!r})" if _PLAIN_WORD.fullmatch(key) else ""


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict, refusing a key given twice: json's own keeps the last, so a stored tenant whose
    ``classes`` is written twice would be judged by whichever came last, where TOML refuses the document."""
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return data


class _Document:
    """A parsed policy file that remembers its text, to point errors at lines."""

    def __init__(self, origin: str, text: str, data: dict[str, Any], prefix: tuple[str, ...] = ()) -> None:
        self.origin = origin
        self.prefix = prefix  # a tenant's own document: its keys are those of [tenants.NAME]
        self.text = text
        self.data = data
        self._lines: list[str] | None = None
        self._headers: list[tuple[int, tuple[str, ...]]] | None = None
        self._parsed: dict[tuple[str, ...], tuple[Requirement, ...]] = {}
        #: A tenant's attest table, as written, and the vendors it has its own credentials for -> its attestations
        #: with the file's defaults merged in.
        self._attests: dict[
            tuple[tuple[tuple[str, tuple[str, ...]], ...], tuple[str, ...]], tuple[frozenset[str], frozenset[str]]
        ] = {}

    @property
    def lines(self) -> list[str]:
        """The file's lines, split only when an error needs a position."""
        if self._lines is None:
            self._lines = self.text.splitlines()
        return self._lines

    def where(self, *keys: str) -> Callable[[], str]:
        """:meth:`at` for later: positions cost a scan of the file, so only an error computes one."""
        return lambda: self.at(*keys)

    #: False for the environment alone: no file sets the floor.
    from_file = True

    @classmethod
    def empty(cls) -> _Document:
        doc = cls("environment", "", {})
        doc.from_file = False
        return doc

    @classmethod
    def read(cls, path: str) -> _Document:
        where = path
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the policy file ({exc.strerror})",
                where=where,
                hint="set PRIVSDK_CONFIG to an existing TOML file",
            ) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise ConfigError(
                "the file is not UTF-8 text", where=f"{where}:{line}", hint="save it as a UTF-8 TOML file"
            ) from None
        text = text.removeprefix(_BOM)  # Windows editors start UTF-8 files with one; TOML has no place for it
        return cls(where, text, _parse_toml(text, where))

    @classmethod
    def tenant_document(cls, name: str, found: TenantDocument) -> _Document:
        """A tenant's document from a tenant store, its keys placed as if under ``[tenants.NAME]``.

        A provider is the app's code, and NamedTuple checks no types: what it built is checked here, and named by
        type only (the text is the stored policy, which may hold anything).
        """
        text, origin, fmt = found
        if not isinstance(origin, str):
            raise ConfigError(
                f"the TenantDocument's origin is {type(origin).__name__}, not str",
                hint="origin names where the policy is stored, e.g. 'table tenants, tenant acme'",
            )
        if not isinstance(text, str):
            raise ConfigError(
                f"the stored policy is {type(text).__name__}, not str",
                where=origin,
                hint="a TenantDocument holds the policy as str: decode bytes first, e.g. raw.decode('utf-8')",
            )
        if fmt not in ("toml", "json"):
            shown = repr(fmt) if isinstance(fmt, str) and _PLAIN_WORD.fullmatch(fmt) else "(not shown)"
            raise ConfigError(
                f"the TenantDocument's format {shown} is not toml or json", where=origin, hint='format="toml" or "json"'
            )
        import json

        text = text.removeprefix(_BOM)
        if not text.strip():
            # Valid TOML that requires nothing: what a file being written (or truncated) reads as. A tenant that
            # requires nothing says so.
            raise ConfigError(
                "the stored policy is empty",
                where=origin,
                hint="write a tenant's policy whole (to another name, then rename it over); one that requires "
                "nothing says so: classes.default = []",
            )
        try:
            data = _parse_toml(text, origin) if fmt == "toml" else json.loads(text, object_pairs_hook=_json_object)
        except _DuplicateKey as exc:
            raise ConfigError(
                f"invalid JSON: a key is given twice in one object{exc.shown}",
                where=origin,
                hint="give each key once (TOML refuses the same; JSON parsers differ on which one wins)",
            ) from None
        except ValueError as exc:  # JSON's (TOML's is a ConfigError already): its text quotes the document
            raise ConfigError(f"invalid JSON: {type(exc).__name__}", where=origin) from None
        except RecursionError:  # JSON's parser recurses once per nested array or object (TOML's: _parse_toml)
            raise ConfigError(
                "the policy is nested too deeply to read",
                where=origin,
                hint="a tenant's policy is a few tables of lists of strings (see the policy file's [tenants.NAME])",
            ) from None
        if not isinstance(data, dict):
            raise ConfigError("the tenant's JSON must be an object", where=origin)
        doc = cls(origin, text, data, ("tenants", name))
        doc.stored = True
        return doc

    def at(self, *keys: str) -> str:
        """``file:line`` of the key path ``keys`` (table names, then a key or a value).

        The last name is looked for inside the deepest table of the path that has a
        ``[header]`` (so an error in a second tenant never points at the first), as a
        key (``name =``, ``a.name =``) or a quoted value; failing that, the header
        line; failing that, the file alone.
        """
        start, end, header = 0, len(self.lines), None
        for depth in range(len(keys), 0, -1):
            header = self._header(keys[:depth])
            if header is not None:
                start = header
                end = next((i for i in range(header + 1, len(self.lines)) if _HEADER.match(self.lines[i])), end)
                break
        for needle in reversed(keys):
            key = re.compile(rf"""^\s*(?:[\w"'\-]+\s*\.\s*)*["']?{re.escape(needle)}["']?\s*[.=]""")
            value = re.compile(rf"""["']{re.escape(needle)}["']""")
            for pattern in (key, value):
                for i in range(start, end):
                    if pattern.search(self.lines[i].split("#", 1)[0]):
                        return f"{self.origin}:{i + 1}"
        return f"{self.origin}:{header + 1}" if header is not None else self.origin

    def _header(self, path: tuple[str, ...]) -> int | None:
        """The line index of the ``[header]`` for ``path``, else of the first header below it."""
        if self._headers is None:  # parsed once, the first time an error needs a position
            # A tenant's own document starts inside its [tenants.NAME] table, as if that header were line 1.
            self._headers = [(0, self.prefix)] if self.prefix else []
            for i, line in enumerate(self.lines):
                m = _HEADER.match(line)
                if m:
                    names = tuple(n.strip().strip("\"'") for n in m.group(1).split("."))
                    self._headers.append((i, (*self.prefix, *names)))
        below = None
        for i, names in self._headers:
            if names == path:
                return i
            if below is None and names[: len(path)] == path:
                below = i
        return below

    def fail(self, message: str, *keys: str, hint: str | None = None) -> ConfigError:
        return ConfigError(message, where=self.at(*keys), hint=hint)

    #: A tenant's document from a tenant store: what it holds is the store's data (a secret pasted in the wrong
    #: place, another system's text), so its errors name the key path and what is wrong, never a value. The policy
    #: file is the operator's own: its errors quote what they find wrong.
    stored = False

    def shown(self, value: object) -> str:
        """``value`` as an error names it: quoted from the policy file, never from a stored policy."""
        return "(a value not shown: stored data)" if self.stored else repr(value)

    def key(self, key: str) -> str:
        """One key as an error names it: a stored policy's only when it looks like a key's name."""
        return key if not self.stored or looks_like_key(key) else "(a key not shown)"

    def dotted(self, keys: Iterable[str]) -> str:
        """A key path as an error names it (a stored policy's own keys through :meth:`key`)."""
        return ".".join(k if i < len(self.prefix) else self.key(k) for i, k in enumerate(keys))

    def placed(self, exc: ConfigError, what: str, *keys: str) -> ConfigError:
        """``exc``, the check of one value written at ``keys`` (the value last), placed at its line. From a stored
        policy its words, which quote the value, give way to ``what``; its hint names the valid choices."""
        if not self.stored:
            return exc.at(self.at(*keys))
        return ConfigError(f"{self.dotted(keys[:-1])}: {what}", where=self.at(*keys), hint=exc.hint)

    # -- shapes ---------------------------------------------------------------

    def table(self, value: Any, *keys: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{self.dotted(keys)} must be a table", *keys)
        return value

    def strings(self, value: Any, *keys: str, example: str) -> list[str]:
        """``value``, a list of strings; else an error whose hint writes ``example``, a list of what the key holds."""
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{self.dotted(keys)} must be a list of strings", *keys, hint=f"write e.g. {example}")
        return value

    def string(self, value: Any, *keys: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(f"{self.dotted(keys)} must be a non-empty string", *keys)
        return value

    def only(self, value: dict[str, Any], allowed: tuple[str, ...], *keys: str) -> None:
        for key in value:
            if key not in allowed:
                where = ".".join((*keys, key)) if keys else key
                shown = self.dotted((*keys, key)) if self.stored else repr(where)
                raise self.fail(f"unknown key {shown}", *keys, key, hint="valid keys: " + ", ".join(allowed))

    def name(self, value: str, kind: str, *keys: str) -> str:
        if not _NAME.fullmatch(value) or "/" in value:  # fullmatch: "$" lets a trailing newline through
            raise self.fail(
                f"bad {kind} name {self.shown(value)}",
                *keys,
                value,
                hint="use letters, digits, '_', '-', '.'; no '/' (reserved for vendor/model)",
            )
        return value

    # -- the policy -----------------------------------------------------------

    def build(
        self,
        cat: Catalogue,
        env_reqs: tuple[Requirement, ...],
        env_attest: frozenset[str],
        on_violation: str | None,
        usage: str,
        store: TenantStore | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Policy:
        data = self.data
        self.only(data, _TOP_KEYS)
        allow_env_attest = data.get("allow_env_attest", False)
        if not isinstance(allow_env_attest, bool):
            raise self.fail("allow_env_attest must be true or false", "allow_env_attest")
        if env_attest and self.from_file and not allow_env_attest:
            # The file is the floor for attestations as for requirements: an attestation lifts guarantees.
            raise ConfigError(
                f"{self.origin} does not let the environment add attestations",
                where="PRIVSDK_ATTEST",
                hint="declare them in the file's [attest] table, or set allow_env_attest = true at its top",
            )
        # The top-level keys first, in the order a file usually has them; then the tables.
        raw_tenants = self.table(data.get("tenants", {}), "tenants")
        # Calls that name no tenant get the file's default_tenant (or its only tenant), never just the first listed.
        default_tenant: str | None = None
        if "default_tenant" in data:
            default_tenant = self.string(data["default_tenant"], "default_tenant")
            if default_tenant not in raw_tenants:
                raise self.fail(
                    f"default_tenant {default_tenant!r} is not one of the file's tenants",
                    "default_tenant",
                    hint="tenants: " + (", ".join(raw_tenants) or "none: define [tenants.NAME]"),
                )
        base_attest = self.attest_table(data.get("attest", {}), cat, "attest") | env_attest
        if env_attest:
            _check_combination(base_attest, cat, lambda: f"{self.at('attest')} with PRIVSDK_ATTEST", None)
        targets = {
            self.name(name, "target", "targets", name): self.target(name, self.table(raw, "targets", name), cat)
            for name, raw in self.table(data.get("targets", {}), "targets").items()
        }
        endpoints = []
        for url, offering in self.table(data.get("endpoints", {}), "endpoints").items():
            if not isinstance(offering, str) or not offering:
                raise ConfigError(
                    f"endpoints: the offering declared for {shown_url(url)} must be a non-empty string",
                    where=self.at("endpoints", url),
                    hint='write e.g. "http://127.0.0.1:8000/v1" = "selfhosted.vllm"',
                )
            try:
                endpoints.append(endpoint(url, offering, cat))
            except ConfigError as exc:
                raise exc.at(self.at("endpoints", url)) from None
        if store is not None:
            if raw_tenants:
                raise self.fail(
                    "the policy file defines tenants, but tenants come from a tenant store",
                    "tenants",
                    hint="move each [tenants.NAME] table into the store, or drop PRIVSDK_TENANTS / tenants=",
                )
            check_pairs([Tenant("", {}, attest=base_attest)], targets.values(), cat, self._target_where)
            context = _StoreContext(
                cat, base_attest, env_reqs, on_violation, targets, environ or {}, self.origin, store.key_owners
            )
            store.bind(context.build, context.key())
            return Policy(store, None, targets, self.origin, usage, tuple(endpoints))
        if not raw_tenants:  # the environment's policy alone: PRIVSDK_REQUIRE adds to its default class
            raw_tenants = {"default": {"classes": {"default": []}}}
        if len(raw_tenants) == 1:  # one tenant: no call can mean another
            default_tenant = next(iter(raw_tenants))
        tenants: dict[str, Tenant] = {}
        for name, raw in raw_tenants.items():
            self.name(name, "tenant", "tenants", name)
            tenant = self.tenant(
                name, self.table(raw, "tenants", name), cat, base_attest, env_reqs, on_violation, targets
            )
            tenants[name] = tenant
        check_pairs(tenants.values(), targets.values(), cat, self._target_where)
        return Policy(tenants, default_tenant, targets, self.origin, usage, tuple(endpoints))

    def _target_where(self, target: Target) -> Callable[[], str]:
        return self.where("targets", target.name, "attest")  # the target's attest line, else its header

    def attest_table(self, raw: Any, cat: Catalogue, *keys: str) -> frozenset[str]:
        """``{vendor = ["key", ...]}`` as qualified names, each checked against the catalogue."""
        out: list[str] = []
        for vendor, items in self.table(raw, *keys).items():
            for item in self.strings(items, *keys, vendor, example=_ATTESTATIONS):
                try:
                    out.append(_account_attestation(f"{vendor}:{item}", cat))
                except ConfigError as exc:
                    what = "an item is not an attestation of that vendor"
                    raise self.placed(exc, what, *keys, vendor, item) from None
        names = frozenset(out)
        _check_combination(names, cat, self.where(*keys), None)
        return names

    def target(self, name: str, raw: dict[str, Any], cat: Catalogue) -> Target:
        keys = ("targets", name)
        self.only(raw, _TARGET_KEYS, *keys)
        offering_id = self.string(raw.get("offering"), *keys, "offering")
        offering = cat.offering(offering_id)
        if offering is None:
            known = [o for v in cat.all_vendors() for o in v.offerings]
            raise self.fail(
                f"target {name!r}: unknown offering {offering_id!r}",
                *keys,
                offering_id,
                hint="offerings: " + ", ".join(known),
            )
        model = self.string(raw.get("model"), *keys, "model")
        if not offering.serves_model(model):
            why = offering.unserved(model)  # an id the catalogue knows to refuse (a fine-tuned model), and why
            raise self.fail(
                f"target {name!r}: {why or f'{offering_id} serves no model {model!r}'}",
                *keys,
                model,
                hint="model globs: " + ", ".join(offering.models),
            )
        attest = frozenset(
            _target_attestation(item, offering, self.where(*keys, item))
            for item in self.strings(raw.get("attest", []), *keys, "attest", example=_ATTESTATIONS)
        )
        extra: dict[str, Any] = {k: self.string(raw[k], *keys, k) for k in _TARGET_KEYS[3:-1] if k in raw}
        arn = parse_model_arn(model, offering.arn_service) if offering.arn_service else None
        # The ARN names the Region: a target's own region may only repeat it.
        if arn is not None and extra.setdefault("region", arn.region) != arn.region:
            raise self.fail(
                f"target {name!r}: region {extra['region']!r} contradicts its model ARN's Region {arn.region!r}",
                *keys,
                "region",
                hint="drop region (the ARN's Region is used) or make the two agree",
            )
        if offering_id.startswith("openai.") and not extra.get("project", "proj_").startswith("proj_"):
            # Sent as the OpenAI-Project header, which the guard refuses to read an organisation id (org-...) from.
            raise self.fail(
                f"target {name!r}: project {self.shown(extra['project'])} is not an OpenAI project id (proj_...)",
                *keys,
                "project",
                hint="write the project id as OpenAI shows it in Settings; an organisation is named by "
                "OPENAI_ORG_ID, and an attestation for it is scoped openai:KEY@org-ID",
            )
        if "endpoint" in extra:
            problem = url_problem(extra["endpoint"])
            if problem is not None:
                raise self.fail(
                    f"target {name!r}: endpoint {shown_url(extra['endpoint'])!r} is not a URL: {problem}",
                    *keys,
                    "endpoint",
                    hint='write the scheme and the host, e.g. endpoint = "https://contoso.openai.azure.com" or '
                    '"http://127.0.0.1:8000/v1"',
                )
        options = tuple(
            sorted(
                (k, self.string(v, *keys, "options", k))
                for k, v in self.table(raw.get("options", {}), *keys, "options").items()
            )
        )
        self.check_options(name, offering_id, options)
        return Target(name=name, offering=offering_id, model=model, attest=attest, options=options, **extra)

    def check_options(self, name: str, offering_id: str, options: tuple[tuple[str, str], ...]) -> None:
        """Each of a target's ``options`` must be one its offering's adapter reads, with a value it takes."""
        keys = ("targets", name, "options")
        valid = TARGET_OPTIONS.get(offering_id, {})
        for key, value in options:
            if key not in valid:
                raise self.fail(
                    f"target {name!r}: option {shown_key(key)} means nothing for {offering_id}",
                    *keys,
                    key,
                    hint=f"{offering_id} options: {', '.join(valid)}"
                    if valid
                    else f"{offering_id} reads no options: remove options",
                )
            allowed = valid[key]
            if allowed is not None and value not in allowed:
                shown = repr(value) if _PLAIN_WORD.match(value) else "a value (not shown)"
                raise self.fail(
                    f"target {name!r}: option {key} = {shown} is not one {offering_id} takes",
                    *keys,
                    key,
                    hint=f"{key}: " + " or ".join(allowed),
                )

    def tenant(
        self,
        name: str,
        raw: dict[str, Any],
        cat: Catalogue,
        base_attest: frozenset[str],
        env_reqs: tuple[Requirement, ...],
        on_violation: str | None,
        targets: Mapping[str, Target],
    ) -> Tenant:
        keys = ("tenants", name)
        self.only(raw, _TENANT_KEYS, *keys)
        if "classes" not in raw:
            # A tenant table whose classes line was lost (commented out, a stored file being written) must not read
            # as one that requires nothing: a tenant that requires nothing says so.
            raise self.fail(
                f"tenant {name!r} has no classes, so what it requires is not said",
                *keys,
                hint='write classes.default = ["no_training", ...], or classes.default = [] for a tenant that '
                "requires nothing",
            )
        classes: dict[str, tuple[Requirement, ...]] = {}
        for cls, items in self.table(raw["classes"], *keys, "classes").items():
            self.name(cls, "data class", *keys, "classes", cls)
            items = self.strings(items, *keys, "classes", cls, example=_REQUIREMENTS)
            known = self._parsed.get(tuple(items))  # tenants repeat the same few lists
            if known is None:
                for item in items:
                    try:
                        parse_requirement(item)
                    except ConfigError as exc:
                        what = "an item is not a requirement as privsdk writes them"
                        raise self.placed(exc, what, *keys, "classes", cls, item) from None
                known = self._parsed[tuple(items)] = parse_requirements(items)
            classes[cls] = known
        default_class = self.string(raw.get("default_class", "default"), *keys, "default_class")
        if default_class not in classes:
            raise self.fail(
                f"tenant {name!r}: default_class {self.shown(default_class)} is not one of its classes",
                *keys,
                "default_class",
                hint="classes: " + ", ".join(map(self.key, classes)),
            )
        # The environment adds to the default class; adding can only make a policy stricter.
        classes[default_class] = classes[default_class] + tuple(r for r in env_reqs if r not in classes[default_class])

        file_violation = raw.get("on_violation", "refuse")
        if file_violation not in ON_VIOLATION:
            raise self.fail(
                f"tenant {name!r}: bad on_violation {self.shown(file_violation)}",
                *keys,
                "on_violation",
                hint="use refuse or reroute",
            )
        max_age = raw.get("max_catalogue_age_days", DEFAULT_MAX_CATALOGUE_AGE_DAYS)
        if not isinstance(max_age, int) or isinstance(max_age, bool) or max_age < 0:
            raise self.fail(
                f"tenant {name!r}: max_catalogue_age_days must be a whole number of days",
                *keys,
                "max_catalogue_age_days",
            )

        # A tenant's own list for a vendor, or its own credentials with it, means its own account with that vendor:
        # only its own attestations hold for it, never the deployment's ([attest] or PRIVSDK_ATTEST).
        credentials = self.credentials(raw.get("credentials", {}), cat, *keys, "credentials")
        raw_attest = self.table(raw.get("attest", {}), *keys, "attest")
        written = tuple(
            (v, tuple(self.strings(items, *keys, "attest", v, example=_ATTESTATIONS)))
            for v, items in raw_attest.items()
        )
        cache_key = (written, owned_accounts(credentials))
        attests = self._attests.get(cache_key)  # tenants repeat the same few tables
        if attests is None:
            own = self.attest_table(raw_attest, cat, *keys, "attest")
            own_vendors = frozenset({a.partition(":")[0] for a in own} | set(raw_attest) | set(cache_key[1]))
            attest = own | frozenset(a for a in base_attest if a.partition(":")[0] not in own_vendors)
            _check_combination(attest, cat, self.where(*keys, "attest"), None)
            attests = self._attests[cache_key] = (attest, own_vendors)
        attest, own_vendors = attests

        reroute: list[tuple[str, tuple[str, ...]]] = []
        for pattern, alts in self.table(raw.get("reroute", {}), *keys, "reroute").items():
            alternatives = tuple(self.strings(alts, *keys, "reroute", pattern, example=_ALTERNATIVES))
            for alt in alternatives:
                if alt not in targets and "/" not in alt:
                    raise self.fail(
                        f"tenant {name!r}: reroute alternative {self.shown(alt)} is not a target",
                        *keys,
                        "reroute",
                        pattern,
                        alt,
                        hint="targets: " + (", ".join(targets) or "none") + ", or vendor/model",
                    )
            reroute.append((pattern, alternatives))
        return Tenant(
            name=name,
            classes=classes,
            default_class=default_class,
            on_violation=on_violation or file_violation,  # type: ignore[arg-type]
            attest=attest,
            reroute=tuple(reroute),
            max_catalogue_age_days=max_age,
            credentials=credentials,
            own_accounts=own_vendors,
        )

    def credentials(self, raw: Any, cat: Catalogue, *keys: str) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
        """``{vendor = {key = "ENV_VAR"}}``: which environment variable holds each of a tenant's own credentials."""
        out = []
        for vendor, table in self.table(raw, *keys).items():
            if cat.vendor(vendor) is None:
                # A vendor is named as a key is (openai, cohere): anything else (AKIA...) may be a pasted secret.
                raise self.fail(
                    f"unknown vendor {vendor!r}" if looks_like_key(vendor) else "unknown vendor (the key is not shown)",
                    *keys,
                    vendor,
                    hint="vendors: " + ", ".join(cat.vendor_names),
                )
            pairs = []
            valid = CREDENTIAL_KEYS.get(vendor)
            for key, env_name in self.table(table, *keys, vendor).items():
                if valid is not None and key not in valid:
                    raise self.fail(
                        f"{self.dotted((*keys, vendor))}: {shown_key(key)} is not a credential key for {vendor}",
                        *keys,
                        vendor,
                        key,
                        hint=f"{vendor} credential keys: {', '.join(valid)}",
                    )
                if not isinstance(env_name, str) or not _ENV_NAME.fullmatch(env_name):
                    raise self.fail(
                        f"{self.dotted((*keys, vendor, key))} must name an environment variable",
                        *keys,
                        vendor,
                        key,
                        hint='write e.g. api_key = "ACME_OPENAI_API_KEY"; secrets never go in the file',
                    )
                pairs.append((key, env_name))
            out.append((vendor, tuple(sorted(pairs))))
        return tuple(sorted(out))


def _env_endpoint_under_a_file(
    declared: Endpoint, entry: str, in_file: tuple[Endpoint, ...], doc: _Document, cat: Catalogue
) -> None:
    """Refuse a ``PRIVSDK_ENDPOINTS`` entry that would weaken the policy file: the file is the floor.

    The environment may add endpoints (a stand-in or a proxy for a vendor's offering, judged by that vendor's facts)
    but never re-declare a URL the file declares, nor one under it (the longest declared prefix places a request).
    Unless the file sets ``allow_env_attest = true``, it may not declare what works as an attestation either: an
    account (the file's attestations scoped to it would hold for requests that name none) or an offering reached only
    at a declared endpoint (a self-hosted server or private deployment, whose facts make it private).
    """
    from urllib.parse import urlsplit

    from privsdk.outbound.places import declared_place

    parts = urlsplit(declared.url)
    place = declared_place(in_file, f"{parts.scheme}://{parts.netloc}", parts.path or "/")
    if place is not None and (place.offerings[0], place.account) != (declared.offering, declared.account):
        raise ConfigError(
            f"{entry} declares {declared.url}, at or under {place.endpoint}, which {doc.origin} declares as "
            f"{place.offerings[0]}{'@' + place.account if place.account else ''}: the environment may add endpoints, "
            "never re-declare the file's",
            where="PRIVSDK_ENDPOINTS",
            hint="change the file's [endpoints], or declare another URL",
        )
    if doc.data.get("allow_env_attest") is True:
        return
    offering = cat.offering(declared.offering)
    if declared.account is not None or (offering is not None and not offering.hosts):
        what = (
            f"an account (@{declared.account}), which would scope the file's attestations to requests that name none"
            if declared.account is not None
            else f"{declared.offering}, an offering reached only at an endpoint declared for it, whose facts make "
            "it private as an attestation would"
        )
        raise ConfigError(
            f"{entry} declares {what}; {doc.origin} does not let the environment add attestations",
            where="PRIVSDK_ENDPOINTS",
            hint="declare the endpoint in the file's [endpoints], or set allow_env_attest = true at its top",
        )


def endpoint(url: str, offering_spec: str, cat: Catalogue) -> Endpoint:
    """A declared endpoint ``url`` for ``OFFERING[@ACCOUNT]``, checked, its URL as requests are compared with it.

    The URL must be http(s) with a host; the offering must exist; and a URL on a host the catalogue
    already places must name one of that host's own offerings (a self-hosted offering declared at
    api.openai.com would turn OpenAI into a "private deployment"). The host is compared as the DNS name it
    is: lower-case, without a fully qualified name's trailing dot; an IPv6 address is written in brackets;
    the scheme's default port and any user info are no part of it (and user info is never shown).
    """
    from urllib.parse import urlsplit

    from privsdk.outbound.places import catalogue_place, dns_name, origin_of

    offering_id, at, account = (p.strip() for p in offering_spec.partition("@"))
    if at and not (_NAME.match(account) and len(account) <= 128):
        what = repr(offering_id) if _NAME.match(offering_id) and len(offering_id) <= 48 else "an offering"
        raise ConfigError(
            f"endpoint for {what}: the account after '@' is empty or not an account name",
            hint="write OFFERING@ACCOUNT, e.g. openai.api@proj_abc (an OpenAI project or organisation id, an Azure "
            "resource name, a Google Cloud project id), or OFFERING alone",
        )
    url = url.strip().rstrip("/")
    shown = shown_url(url)
    form = "write scheme://host[:port][/path], e.g. http://127.0.0.1:8000/v1 or http://[::1]:8000/v1"
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # an unclosed '[': its text is the URL's, never shown
        raise ConfigError(f"bad endpoint URL {shown!r}{_userinfo_hint(url)}", hint=form) from None
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"bad endpoint URL {shown!r}: the scheme must be http or https", hint=form)
    authority = parts.netloc.rpartition("@")[2]
    if authority.count(":") > 1 and not authority.startswith("["):
        raise ConfigError(
            f"bad endpoint URL {shown!r}: an IPv6 address must be in brackets", hint="write e.g. http://[::1]:8000/v1"
        )
    host = dns_name(hostname or "")
    if not host:
        raise ConfigError(f"bad endpoint URL {shown!r}: it names no host{_userinfo_hint(url)}", hint=form)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(
            f"bad endpoint URL {shown!r}: the port is not a number from 0 to 65535{_userinfo_hint(url)}", hint=form
        ) from None
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ConfigError(
            f"bad endpoint URL {shown!r}: a declared endpoint has no query string or fragment (not shown)", hint=form
        )
    offering = cat.offering(offering_id)
    origin = origin_of(parts.scheme, host, port)
    path = parts.path.rstrip("/")
    if offering is None:
        known = [o for v in cat.all_vendors() for o in v.offerings]
        what = repr(offering_id) if _NAME.match(offering_id) and len(offering_id) <= 48 else "(not shown)"
        raise ConfigError(f"endpoint {origin}{path}: unknown offering {what}", hint="offerings: " + ", ".join(known))
    place = catalogue_place(cat, "https", host, origin)
    if place is not None and offering_id not in place.offerings:
        raise ConfigError(
            f"endpoint {origin}{path}: {host} is the catalogue's host for {', '.join(place.offerings)}, "
            f"not {offering_id}",
            hint="declare the offering that really serves this host, or use the endpoint of your own server",
        )
    if place is not None and account and account != place.account:
        # At the vendor's own host the account is the one the request names (its key's default project, its
        # OpenAI-Project header, the Azure resource in the host): a declared one would lend its attestations to
        # every request that names none.
        raise ConfigError(
            f"endpoint {origin}{path}: {host} is the vendor's own host, where a request runs on the account it "
            "names (its key, its project header, the resource in its host), never on a declared one",
            hint="leave '@ACCOUNT' out here; an account is declared only for a proxy or gateway that adds it to "
            "what it forwards",
        )
    return Endpoint(origin + path, offering_id, account or None)


class _StoreContext:
    """What a tenant from a tenant store is built with: the same rules as a tenant of the file."""

    def __init__(
        self,
        cat: Catalogue,
        base_attest: frozenset[str],
        env_reqs: tuple[Requirement, ...],
        on_violation: str | None,
        targets: Mapping[str, Target],
        environ: Mapping[str, str],
        origin: str,
        key_owners: dict[str, str],
    ):
        self.key_owners = key_owners  # the store's: each tenant built learns its keys there
        self.cat = cat
        self.base_attest = base_attest
        self.env_reqs = env_reqs
        self.on_violation = on_violation
        self.targets = targets
        self.environ = environ
        self.origin = origin

    def key(self) -> tuple[object, ...]:
        """Equal for equal configurations: one store may serve several clients of one configuration."""
        return (id(self.cat), self.base_attest, self.env_reqs, self.on_violation, tuple(self.targets.items()))

    def build(self, name: str, found: Tenant | TenantDocument) -> Tenant:
        """``found`` as a checked Tenant named ``name``, or a ConfigError naming the stored document's place."""
        if isinstance(found, TenantDocument):
            doc = _Document.tenant_document(name, found)
            tenant = doc.tenant(
                name,
                doc.data,
                self.cat,
                self.base_attest,
                self.env_reqs,
                self.on_violation,
                self.targets,
            )
            origin = found.origin
        elif isinstance(found, Tenant):
            if found.name != name:  # never serve one tenant's policy for another
                raise ConfigError(f"the tenant store returned tenant {found.name!r} when asked for {name!r}")
            _check_tenant_types(found)
            origin = f"the tenant store's tenant {name!r}"
            _check_combination(found.attest, self.cat, origin, None)
            tenant = found
        else:
            raise ConfigError(
                f"the tenant store returned a {type(found).__name__}",
                hint="a provider returns a Tenant, a TenantDocument, or None for an unknown tenant",
            )
        check_pairs([tenant], self.targets.values(), self.cat, lambda t: lambda: f"{origin}, with target {t.name!r}")
        for vendor, pairs in tenant.credentials:
            for key, env_name in pairs:
                if not self.environ.get(env_name):
                    raise missing_credential(
                        vendor, key, env_name, where=origin, key_path=f"credentials.{vendor}.{key}"
                    )
        if tenant.credentials:  # known from now on to every guard of the store's, for any request of any tenant
            from privsdk.outbound.own_credentials import learn

            learn(self.key_owners, tenant, self.environ)
        return tenant


def _pairs(value: object, second: Callable[[object], bool]) -> bool:
    """Whether ``value`` is a tuple of ``(str, X)`` pairs, each X passing ``second``."""
    return isinstance(value, tuple) and all(
        isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str) and second(pair[1]) for pair in value
    )


def _strings_tuple(value: object) -> bool:
    return isinstance(value, tuple) and all(isinstance(item, str) for item in value)


def _check_tenant_types(tenant: Tenant) -> None:
    """A ConfigError unless each field of ``tenant``, which a provider built in code, has the type Tenant declares.

    NamedTuple checks nothing, and a value of another type would fail deep in a decision (a str where the
    requirements go) as a raw exception, not a refusal. The field is named; its value, the app's data, never is.
    """
    classes = tenant.classes
    if not isinstance(classes, Mapping) or not all(
        isinstance(reqs, tuple) and all(isinstance(r, Requirement) for r in reqs) for reqs in classes.values()
    ):
        raise ConfigError(
            "classes must map each data class to a tuple of requirements",
            hint="e.g. classes={'default': privsdk.vocabulary.parse_requirements(['no_training', 'zdr'])}",
        )
    if not all(isinstance(cls, str) and _NAME.fullmatch(cls) and "/" not in cls for cls in classes):
        raise ConfigError("classes names a data class that is not a name", hint="use letters, digits, '_', '-', '.'")
    if not isinstance(tenant.default_class, str) or tenant.default_class not in classes:
        raise ConfigError("default_class must be one of its classes", hint="classes: " + (", ".join(classes) or "none"))
    if tenant.on_violation not in ON_VIOLATION:
        raise ConfigError("on_violation must be refuse or reroute", hint="on_violation='refuse' or 'reroute'")
    if not isinstance(tenant.attest, frozenset) or not all(isinstance(a, str) for a in tenant.attest):
        raise ConfigError("attest must be a frozenset of attestations", hint="e.g. attest=frozenset({'openai:zdr'})")
    if not _pairs(tenant.reroute, _strings_tuple):
        raise ConfigError(
            "reroute must be a tuple of (target, alternatives) pairs, the alternatives a tuple of target names",
            hint="e.g. reroute=(('gpt-4o', ('azure-eu',)),)",
        )
    age = tenant.max_catalogue_age_days
    if not isinstance(age, int) or isinstance(age, bool) or age < 0:
        raise ConfigError(
            "max_catalogue_age_days must be a whole number of days", hint="e.g. max_catalogue_age_days=90"
        )
    if not _pairs(tenant.credentials, lambda keys: _pairs(keys, lambda env_name: isinstance(env_name, str))):
        raise ConfigError(
            "credentials must be a tuple of (vendor, ((key, variable name), ...)) pairs",
            hint="e.g. credentials=(('openai', (('api_key', 'ACME_OPENAI_API_KEY'),)),)",
        )


def attach_tenants(
    policy: Policy,
    tenants: TenantStore | TenantProvider,
    catalogue: Catalogue | None = None,
    environ: Mapping[str, str] | None = None,
) -> Policy:
    """``policy`` (built in code) with its tenants taken from a tenant store instead.

    Stored tenants get no attestations or requirements beyond their own: a policy
    built in code has no ``[attest]`` or ``PRIVSDK_*`` additions to give them. Its
    ``default_tenant`` is kept only when it names none of its own tenants.
    """
    cat = catalogue or default_catalogue()
    store = as_store(tenants)
    env = environ or os.environ
    context = _StoreContext(cat, frozenset(), (), None, policy.targets, env, policy.origin, store.key_owners)
    store.bind(context.build, context.key())
    # A default that names one of the policy's own tenants (a file with none has the implicit "default", a file
    # with one has that one) named a tenant the store replaces: with a store there is no implicit default, so
    # calls that name no tenant are refused. A default the policy has no tenant for can only mean the store's.
    default = policy.default_tenant if policy.default_tenant not in policy.tenants else None
    return Policy(store, default, policy.targets, policy.origin, policy.usage, policy.endpoints)


def _account_attestation(text: str, cat: Catalogue) -> str:
    """Check ``vendor:key[@account]`` against the vendor's catalogue; return it normalised."""
    text, at, account = text.partition("@")
    if at:
        account = account.strip()
        if not _NAME.match(account):
            raise ConfigError(
                f"attestation scope {text.strip()}@... names no account",
                hint="write vendor:key@ACCOUNT, e.g. openai:zdr@proj_abc (an OpenAI project or organisation id, "
                "an Azure resource name, a Google Cloud project id)",
            )
        vendor = text.partition(":")[0].strip()
        if vendor not in _SCOPED_VENDORS:
            raise ConfigError(
                f"{text.strip()} cannot be scoped to an account: its requests carry no account identity",
                hint="account scopes work for: " + ", ".join(_SCOPED_VENDORS),
            )
        if vendor == "openai" and not account.startswith(_OPENAI_ACCOUNT_KINDS):
            # A scope names one kind of account: a project is matched with OpenAI-Project, an organisation with
            # OpenAI-Organization. A name of neither shape could be met by a header of the other kind.
            raise ConfigError(
                f"attestation scope {text.strip()}@{account} names neither an OpenAI project (proj_...) nor an "
                "organisation (org-...)",
                hint="write openai:KEY@proj_ID for a project or openai:KEY@org-ID for an organisation, as OpenAI "
                "shows them in Settings",
            )
        if vendor == "azure":  # a resource's name is a DNS label, which the guard reads from the host lower-cased
            account = account.lower()
        elif vendor == "vertex" and account != account.lower():  # never a project id, which is lower-case
            raise ConfigError(
                f"attestation scope {text.strip()}@{account} is not a Google Cloud project id, which is lower-case",
                hint="write the project id as the Google Cloud console shows it, e.g. vertex:KEY@my-project",
            )
        return _account_attestation(text, cat) + "@" + account
    vendor, colon, key = (p.strip() for p in text.partition(":"))
    if not colon or not vendor or not key:
        raise ConfigError(f"attestation {text!r} is not vendor:name", hint="write e.g. openai:zdr, mistral:plan=scale")
    found = cat.vendor(vendor)
    if found is None:
        raise ConfigError(
            f"unknown vendor {vendor!r} in attestation {text!r}", hint="vendors: " + ", ".join(cat.vendor_names)
        )
    if key not in found.attestation_keys:
        raise ConfigError(
            f"{vendor} has no attestation {key!r}",
            hint=f"{vendor} attestations: " + ", ".join(sorted(found.attestation_keys)),
        )
    return f"{vendor}:{key}"


#: Vendors whose requests show an account: the OpenAI project or organisation header, the Azure resource
#: host, the Google Cloud project in a Vertex path.
_SCOPED_VENDORS = ("openai", "azure", "vertex")
#: The shapes of OpenAI's account ids: a project's (sent as OpenAI-Project) and an organisation's (OpenAI-Organization).
_OPENAI_ACCOUNT_KINDS = ("proj_", "org-")


def _account_attestations(items: list[str], cat: Catalogue, where: str) -> frozenset[str]:
    try:
        names = frozenset(_account_attestation(i, cat) for i in items)
    except ConfigError as exc:
        raise exc.at(where) from None
    _check_combination(names, cat, where, None)
    return names


def _target_attestation(item: str, offering: Offering, where: Callable[[], str]) -> str:
    """A target's attestation, qualified; it must be one this offering allows."""
    matches = [q for q in offering.attestations if q == item or q.partition(":")[2] == item]
    if len(matches) != 1:
        problem = "is ambiguous here: qualify it" if matches else "is not allowed"
        raise ConfigError(
            f"attestation {item!r} {problem} for offering {offering.id}",
            where=where(),
            hint="allowed: " + (", ".join(sorted(offering.attestations)) or "none"),
        )
    return matches[0]


def check_pairs(
    tenants: Iterable[Tenant],
    targets: Iterable[Target],
    cat: Catalogue,
    where: Callable[[Target], Callable[[], str]],
) -> None:
    """Check every tenant's attestations together with every target's, without checking every pair.

    Only the attestations of the vendors a target's offering knows can clash with
    the target's own or be required by them (a tenant's own set is checked when it
    is built), so each target is checked once per distinct slice of tenants'
    attestations for those vendors: a handful, however many tenants share them.
    The first contradiction, in tenant then target order, is a ConfigError placed
    at the target (``where(target)`` gives its position, computed only then).
    """
    by_vendors: dict[frozenset[str], list[Target]] = {}
    for target in targets:
        offering = cat.offering(target.offering)
        names = {*target.attest, *(offering.attestations if offering else ())}
        if offering is not None:
            names.update(r for a in offering.attestations.values() for r in a.requires)
        by_vendors.setdefault(frozenset(n.partition(":")[0] for n in names), []).append(target)
    groups = [(vendors, group, set[frozenset[str]]()) for vendors, group in by_vendors.items()]
    checked: set[frozenset[str]] = set()
    for tenant in tenants:
        if tenant.attest in checked:  # the checks depend on the attestations alone, and tenants share a few sets
            continue
        checked.add(tenant.attest)
        for vendors, group, seen in groups:
            part = frozenset(a for a in tenant.attest if a.partition(":")[0] in vendors)
            if part in seen:
                continue
            seen.add(part)
            for target in group:
                _check_combination(part | target.attest, cat, where(target), cat.offering(target.offering))
                _check_region(target, part, cat, where(target))


def _check_region(target: Target, attest: frozenset[str], cat: Catalogue, where: Callable[[], str]) -> None:
    """A target whose own region lies outside the geography its region attestation claims (its own, or its
    tenant's account's) is a configuration error here, before any call is refused for it."""
    from privsdk.decision import _region_contradiction, for_account
    from privsdk.outbound.places import target_account

    # Target.account is set by the guard from a request; at load, the account is the one the target's config names.
    account = target.account or target_account(cat, target)
    reason = _region_contradiction(target, for_account(attest | target.attest, account), cat)
    if reason is not None:
        raise ConfigError(reason.removeprefix("configuration error: "), where=where())


def _check_combination(
    names: frozenset[str], cat: Catalogue, where: str | Callable[[], str], offering: Offering | None
) -> None:
    """Two values of one key, or an attestation without the ones it requires, are errors.

    ``where`` may be a function: it is called only when there is an error to place.
    """
    checked = (names, cat, offering.id if offering else None)
    if checked in _COMBINATIONS_OK:  # thousands of tenants share a few sets of attestations
        return
    if not isinstance(where, str):
        try:
            _check_combination(names, cat, "", offering)
        except ConfigError as exc:
            raise ConfigError(exc.message, where=where(), hint=exc.hint) from None
        return
    groups: dict[tuple[str, str, str], str] = {}
    for name in sorted(names):
        vendor, _, key = name.partition(":")
        key, _, account = key.partition("@")
        group = (vendor, key.partition("=")[0], account)
        if group in groups:
            raise ConfigError(
                f"{groups[group]} and {name} cannot both hold", where=where, hint="declare one value per vendor account"
            )
        groups[group] = name
    for name in sorted(names):
        bare, at, account = name.partition("@")
        for req in _requires(bare, cat, offering):
            if req not in names and req + at + account not in names:
                raise ConfigError(
                    f"{name} requires {req}, which is not declared",
                    where=where,
                    hint=f"add {req} if it is true of the account, or remove {name}",
                )
    if len(_COMBINATIONS_OK) > 4096:
        _COMBINATIONS_OK.clear()
    _COMBINATIONS_OK.add(checked)


#: Sets of attestations found consistent, per catalogue (hashed by identity) and offering.
_COMBINATIONS_OK: set[tuple[frozenset[str], Catalogue, str | None]] = set()


def _requires(name: str, cat: Catalogue, offering: Offering | None) -> tuple[str, ...]:
    if offering is not None:
        att = offering.attestations.get(name)
        return att.requires if att else ()
    vendor = cat.vendor(name.partition(":")[0])
    for off in vendor.offerings.values() if vendor else ():
        if name in off.attestations:
            return off.attestations[name].requires
    return ()
