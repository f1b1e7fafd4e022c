"""Tenant policies from a store: a provider the app hands privsdk, and a bounded cache in front of it.

For apps whose tenants live in a database and change while the app runs. A
*provider* is any callable that takes a tenant's name and returns that
tenant's policy, or None when there is no such tenant:

* a :class:`~privsdk.policy.Tenant` built in code, or
* a :class:`TenantDocument`: the text of what a ``[tenants.NAME]`` table of the
  policy file holds (TOML, or the same keys as JSON), which privsdk checks
  exactly as it checks the file, with the file's ``[attest]``, targets and the
  ``PRIVSDK_*`` variables applied.

Ready-made providers: :class:`DirectoryTenants` (one TOML file per tenant) and
:class:`SqlTenants` (a table, through ``sqlite3`` or any DB-API connection).

:class:`TenantStore` caches what the provider returns (least recently used
entries go first past ``max_size``; ``max_age_s`` bounds how old an entry may
get) and is how the app says a tenant changed: :meth:`TenantStore.invalidate`
for one name, :meth:`TenantStore.invalidate_all` for every one.

Fail closed: a name the provider does not know, a provider that raises or
returns what is not a policy (a provider's Tenant or TenantDocument may hold
any types: the config checks them when it builds the tenant), or a stored
policy that does not check is a refused call (a
:class:`~privsdk.errors.PolicyViolation`, recorded like any refusal). Nothing
falls back to another tenant or to a default.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, NamedTuple, Protocol

from privsdk.errors import ConfigError
from privsdk.outbound.outgoing import shown_name
from privsdk.policy import Tenant

#: What a tenant's name may be: the names the policy file allows (and never a path). Every pattern here is used with
#: fullmatch: ``$`` would also match before a trailing newline, letting ``"acme\n"`` through to ``DIR/acme\n.toml``.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DEFAULT_MAX_SIZE = 10_000


class TenantDocument(NamedTuple):
    """One tenant's stored policy: what a ``[tenants.NAME]`` table holds, as TOML or JSON text.

    ``origin`` names where it came from in error messages (a file path, or
    ``table privsdk_tenants, name 'acme'``).
    """

    text: str
    origin: str
    format: Literal["toml", "json"] = "toml"


#: A provider: the tenant's policy by name, or None when there is no such tenant. It may raise.
TenantProvider = Callable[[str], "Tenant | TenantDocument | None"]
#: Turns what a provider returned for a name into a checked Tenant, or raises ConfigError (set by the config).
TenantBuilder = Callable[[str, "Tenant | TenantDocument"], Tenant]


class Entry:
    """One cached answer: a tenant, or the reason there is none. Hashed by identity: a reloaded
    tenant is a new entry, so decisions cached for the old one are never used for it."""

    __slots__ = ("loaded", "reason", "tenant")

    def __init__(self, tenant: Tenant | None, reason: str, loaded: float):
        self.tenant = tenant
        self.reason = reason
        self.loaded = loaded


class TenantStore(Mapping[str, Tenant]):
    """A provider and a bounded cache of the tenants it returned. Thread-safe.

    Looking a name up loads it through the provider on a miss; ``tenant in
    store`` and ``store[name]`` do the same. Iterating gives the names cached
    now, never the whole store (:meth:`names` asks the provider, where it can list).

    ``max_size``: tenants kept, least recently used dropped first. ``max_age_s``:
    reload an entry older than this (None: keep it until invalidated or dropped).
    Unknown names are cached too, so that a flood of calls for a missing tenant
    does not reach the store: :meth:`invalidate` a name after adding the tenant.
    A provider that raises is not cached: the next call asks it again.
    """

    def __init__(
        self, provider: TenantProvider, *, max_size: int = DEFAULT_MAX_SIZE, max_age_s: float | None = None
    ) -> None:
        if max_size < 1 or (max_age_s is not None and max_age_s <= 0):
            raise ValueError("max_size must be at least 1 and max_age_s more than 0")
        self.provider = provider
        self.max_size = max_size
        self.max_age_s = max_age_s
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0  # bumped by every invalidation: a load that started before it is not cached
        self._build: TenantBuilder | None = None
        self._context: object = None
        #: Counters, read at any time: provider calls, and those that raised.
        self.loads = 0
        self.failures = 0
        #: The stores an invalidation reaches: this one, and every other one built from the same PRIVSDK_TENANTS
        #: value (a Client's, and the process-wide guard's that drop-ins use), which hold the same tenants.
        self._siblings: weakref.WeakValueDictionary[int, TenantStore] | None = None
        #: Each loaded tenant's own keys, tokens and ids -> its name (privsdk.outbound.own_credentials.learn), which
        #: the guard refuses on a request judged for another tenant. Shared by the stores of one PRIVSDK_TENANTS value.
        self.key_owners: dict[str, str] = {}

    def bind(self, build: TenantBuilder, context: object) -> None:
        """Set how stored policies become tenants (privsdk's config does it; ``context`` identifies the policy).

        A store serves the policies of one configuration: binding it again with an
        equal context is a no-op, with another one a ConfigError.
        """
        with self._lock:
            if self._build is not None and self._context != context:
                raise ConfigError(
                    "this TenantStore already serves a client with another configuration",
                    hint="give each configuration its own TenantStore (they may share the provider)",
                )
            if self._build is None:
                self._build, self._context = build, context

    # -- lookups ---------------------------------------------------------------------------

    def entry(self, name: str) -> Entry:
        """The cached entry for ``name``, loaded when missing or too old. Never raises."""
        entries = self._entries
        found = entries.get(name)
        if found is not None and (self.max_age_s is None or time.monotonic() - found.loaded < self.max_age_s):
            try:  # noqa: SIM105 - the call path: try is cheaper than contextlib.suppress
                entries.move_to_end(name)  # most recently used: the last to be dropped
            except KeyError:  # invalidated meanwhile by another thread; this call still has its answer
                pass
            return found
        return self._load(name)

    def _load(self, name: str) -> Entry:
        now = time.monotonic()
        if not name:
            reason = "the call names no tenant: tenants come from a tenant store (name one, or set PRIVSDK_TENANT)"
            return Entry(None, reason, now)
        # Quoted only in a tenant name's shape and length: the app may pass any text (a prompt pasted in the wrong
        # place, a request's field), and a reason is what a refusal says.
        shown = shown_name(name, "tenant name", NAME)
        if not NAME.fullmatch(name):
            return Entry(None, f"unknown tenant {shown}", now)
        generation = self._generation
        self.loads += 1
        try:
            found = self.provider(name)
        except ConfigError as exc:
            self.failures += 1
            if isinstance(self.provider, _OWN_PROVIDERS):  # privsdk's own message: names the place, holds no secret
                return Entry(None, f"the tenant store failed to load tenant {shown}: {exc}", now)
            # An app's provider that raised privsdk's ConfigError (parse_requirements of a stored value, say): its
            # text quotes what it was given, so the class only, as for any other exception.
            return Entry(None, f"the tenant store failed to load tenant {shown} ({type(exc).__name__})", now)
        except Exception as exc:  # the text may hold a connection string or the store's data: the class only
            self.failures += 1
            return Entry(None, f"the tenant store failed to load tenant {shown} ({type(exc).__name__})", now)
        if found is None:
            entry = Entry(None, f"unknown tenant {shown}: the tenant store has no such tenant", now)
        else:
            build = self._build
            try:
                if build is None:
                    raise ConfigError(
                        "the tenant store is not attached to a policy", hint="pass it as Client(tenants=)"
                    )
                entry = Entry(build(name, found), "", now)
            except ConfigError as exc:
                entry = Entry(None, f"tenant {shown}: {exc}", now)
        with self._lock:
            if generation == self._generation:  # else: invalidated while loading; answer this call only
                self._entries[name] = entry
                self._entries.move_to_end(name)
                while len(self._entries) > self.max_size:
                    self._entries.popitem(last=False)
        return entry

    def get(self, name: str, default: Any = None) -> Any:
        """The tenant named ``name``, or ``default`` when the store has none (or failed)."""
        tenant = self.entry(name).tenant
        return default if tenant is None else tenant

    def __getitem__(self, name: str) -> Tenant:
        tenant = self.entry(name).tenant
        if tenant is None:
            raise KeyError(name)
        return tenant

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.entry(name).tenant is not None

    def __iter__(self) -> Iterator[str]:
        """The names of the tenants cached now."""
        return iter([name for name, entry in list(self._entries.items()) if entry.tenant is not None])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def names(self) -> list[str]:
        """Every tenant the provider can list (``privsdk check`` uses it), else the cached ones."""
        lister = getattr(self.provider, "names", None)
        return list(lister()) if callable(lister) else list(self)

    # -- invalidation ----------------------------------------------------------------------

    def invalidate(self, name: str) -> None:
        """Forget ``name``: its next call reads the provider again (call it when a tenant's contract changes).
        Stores built from the same ``PRIVSDK_TENANTS`` value forget it too."""
        for store in self._stores():
            store._forget(name)

    def invalidate_all(self) -> None:
        """Forget every tenant: each one's next call reads the provider again. Stores built from the same
        ``PRIVSDK_TENANTS`` value forget theirs too."""
        for store in self._stores():
            store._forget(None)

    def _stores(self) -> tuple[TenantStore, ...]:
        return (self,) if self._siblings is None else tuple(self._siblings.values())

    def _forget(self, name: str | None) -> None:
        """Forget ``name`` (None: every tenant)."""
        with self._lock:
            self._generation += 1
            if name is None:
                self._entries.clear()
            else:
                self._entries.pop(name, None)

    def __repr__(self) -> str:
        return f"TenantStore({self.provider!r}, cached={len(self._entries)}, max_size={self.max_size})"


def as_store(tenants: TenantStore | TenantProvider) -> TenantStore:
    """A store for ``Client(tenants=...)``: the store itself, or a provider wrapped in a default one."""
    return tenants if isinstance(tenants, TenantStore) else TenantStore(tenants)


# -- ready-made providers ----------------------------------------------------------------------


class DirectoryTenants:
    """One TOML file per tenant: ``DIR/NAME.toml`` holds what ``[tenants.NAME]`` would hold in the policy file.

    Files are read when a tenant is first used (and again after invalidation); a
    missing file is an unknown tenant. Names are checked before any path is made,
    so a name can never reach outside ``DIR``.
    """

    def __init__(self, path: str):
        if not os.path.isdir(path):
            raise ConfigError(
                f"no directory {path!r} for tenant files", hint="create it, with one NAME.toml file per tenant"
            )
        # Fixed now: a relative path joined at each load would follow the process's working directory to another
        # directory's tenants.
        self.path = os.path.abspath(path)

    def __call__(self, name: str) -> TenantDocument | None:
        if not NAME.fullmatch(name):
            return None
        file = name + ".toml"
        path = os.path.join(self.path, file)
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return None
        # A case-insensitive filesystem (macOS, Windows) opens acme.toml for ACME: only the file of that exact name
        # is the tenant's (a listing per load: loads are cached).
        if file not in os.listdir(self.path):
            return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError("the file is not UTF-8 text", where=path, hint="save it as a UTF-8 TOML file") from None
        return TenantDocument(text, path)

    def names(self) -> list[str]:
        """Every tenant with a file."""
        return sorted(
            f[: -len(".toml")] for f in os.listdir(self.path) if f.endswith(".toml") and NAME.fullmatch(f[:-5])
        )

    def __repr__(self) -> str:
        return f"DirectoryTenants({self.path!r})"


class Connection(Protocol):
    """The part of a DB-API 2.0 connection privsdk uses."""

    def cursor(self) -> Any: ...

    def close(self) -> None: ...


_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%(name)s", "numeric": ":1", "named": ":name"}


class SqlTenants:
    """Tenants as rows of a table: a name column and a policy column.

    The policy column holds what ``[tenants.NAME]`` would hold in the policy
    file, as TOML text (``format="toml"``, the default) or JSON (``format="json"``),
    e.g. a row (``acme``, ``classes.default = ["no_training", "zdr"]``).

    ``connect`` opens a DB-API connection (``lambda: sqlite3.connect(path)``,
    ``lambda: psycopg.connect(dsn)``); each thread opens its own, once, and a
    connection that fails is closed and opened again on the next load.
    ``paramstyle`` is the driver module's (``sqlite3``: ``qmark``; psycopg:
    ``pyformat``). Table and column names must be plain identifiers. Apps that
    store tenants another way pass their own function as the provider.
    """

    def __init__(
        self,
        connect: Callable[[], Connection],
        *,
        table: str = "privsdk_tenants",
        name_column: str = "name",
        policy_column: str = "policy",
        format: Literal["toml", "json"] = "toml",
        paramstyle: str = "qmark",
    ):
        for what, value in (("table", table), ("name_column", name_column), ("policy_column", policy_column)):
            if not _IDENTIFIER.fullmatch(value):
                raise ConfigError(f"bad {what} {value!r}", hint="a plain SQL identifier: letters, digits, '_'")
        if format not in ("toml", "json"):
            raise ConfigError(f"bad format {format!r}", hint="toml or json")
        if paramstyle not in _PLACEHOLDERS:
            raise ConfigError(f"bad paramstyle {paramstyle!r}", hint="one of " + ", ".join(_PLACEHOLDERS))
        self.connect = connect
        self.table = table
        self.name_column = name_column
        self.policy_column = policy_column
        #: Where the table lives, as errors name it (the SQLite file's path; None for a connection made in code).
        self.place: str | None = None
        self.format: Literal["toml", "json"] = format
        self._paramstyle = paramstyle
        self._query = (
            f"SELECT {name_column}, {policy_column} FROM {table} WHERE {name_column} = {_PLACEHOLDERS[paramstyle]}"
        )
        self._list = f"SELECT {name_column} FROM {table} ORDER BY {name_column}"
        self._local = threading.local()

    @classmethod
    def sqlite(cls, path: str, **options: Any) -> SqlTenants:
        """A SQLite file, opened read-only (privsdk never writes to it)."""
        import sqlite3
        import urllib.parse

        if not os.path.isfile(path):
            raise ConfigError(f"no SQLite file {path!r} for tenants", hint="create it with the tenants table")
        # A path may start with '//' (sqlite:////srv/t.db, as SQLAlchemy writes an absolute path): the same file
        # to the system, but in a URI an authority, which SQLite refuses.
        absolute = "/" + os.path.abspath(path).lstrip("/") if os.name == "posix" else os.path.abspath(path)
        uri = "file:" + urllib.parse.quote(absolute) + "?mode=ro"
        store = cls(lambda: sqlite3.connect(uri, uri=True, check_same_thread=False), **options)
        store.place = path
        return store

    def _run(self, sql: str, params: Any) -> list[Any]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.connect()
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(sql, params) if params is not None else cursor.execute(sql)
                return list(cursor.fetchall())
            finally:
                cursor.close()
        except Exception as exc:
            self._local.conn = None
            with contextlib.suppress(Exception):  # already failing; the first error is the one that matters
                conn.close()
            problem = self._problem(exc)
            if problem is not None:
                raise problem from None
            raise

    def _problem(self, exc: Exception) -> ConfigError | None:
        """A ConfigError saying what is wrong with the table when ``exc`` is a mistake of the store's shape (no such
        table or column, a file that is no database); None for anything else, which callers name by its class
        (a driver's message can hold a connection string or the store's data).

        Read from SQLite's own messages and from the SQLSTATE a PostgreSQL driver sets; nothing of the message is
        quoted but the names of privsdk's own query, which the options set.
        """
        import sys

        sqlite3 = sys.modules.get("sqlite3")
        text = str(exc) if sqlite3 is not None and isinstance(exc, sqlite3.Error) else ""
        state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
        in_place = f" in {self.place}" if self.place else ""
        file = f"file {self.place}" if self.place else "file"
        columns = (self.name_column, self.policy_column)
        if text.startswith("no such table") or state == "42P01":
            return ConfigError(
                f"the tenant store's table {self.table} does not exist{in_place}",
                hint=f"create it: CREATE TABLE {self.table} ({columns[0]} TEXT PRIMARY KEY, {columns[1]} TEXT NOT "
                "NULL); or name the table that holds the tenants (table=NAME)",
            )
        if text.startswith("no such column") or state == "42703":
            missing = text.rpartition(":")[2].strip()
            what = f"no column {missing}" if missing in columns else "not the columns " + " and ".join(columns)
            return ConfigError(
                f"the tenant store's table {self.table}{in_place} has {what}",
                hint=f"give it columns {columns[0]} (the tenant's name) and {columns[1]} (its policy), or name the "
                "columns it has (name=COLUMN&policy=COLUMN in PRIVSDK_TENANTS; name_column=, policy_column= in code)",
            )
        if "not a database" in text:
            return ConfigError(
                f"the tenant store's {file} is not a SQLite database",
                hint="point the store at the SQLite file that holds the tenants table",
            )
        if text.startswith("unable to open database file"):
            return ConfigError(
                f"the tenant store's SQLite {file} cannot be opened",
                hint="check that the file exists and that this process may read it",
            )
        return None

    def __call__(self, name: str) -> TenantDocument | None:
        params: Any = {"name": name} if self._paramstyle in ("named", "pyformat") else (name,)
        # SQL '=' follows the column's rules: a NOCASE name matches 'ACME' for 'acme', an INTEGER one '07' for 7.
        # Only the row whose name is the one asked for, exactly as names() lists it, is that tenant's.
        rows = [row for row in self._run(self._query, params) if _stored_name(row[0]) == name]
        if not rows:
            return None
        if len(rows) > 1:
            raise ConfigError(f"table {self.table} has {len(rows)} rows for tenant {name!r}", hint="keep one per name")
        text = rows[0][1]
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8")
        if not isinstance(text, str):
            raise ConfigError(f"table {self.table}: tenant {name!r}'s policy is not text")
        return TenantDocument(text, f"table {self.table}, tenant {name!r}", self.format)

    def names(self) -> list[str]:
        """Every tenant in the table."""
        return [name for row in self._run(self._list, None) if (name := _stored_name(row[0])) is not None]

    def __repr__(self) -> str:
        return f"SqlTenants(table={self.table!r}, format={self.format!r})"


def _stored_name(value: object) -> str | None:
    """A name column's value as the tenant name it is: text as it is, a whole number in decimal (an INTEGER id)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


#: A scheme as an error may name it; anything else before "://" is not shown.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{0,15}")
#: The largest cache a PRIVSDK_TENANTS max_size asks for.
MAX_SIZE = 100_000_000
#: Seconds as a setting or an environment variable writes them: digits with an optional decimal part. float()
#: also reads ``1_0``, ``1e-300``, ``inf`` and ``nan``, none of them a number of seconds a person writes.
SECONDS = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9})?")
#: A setting's name as an error may name it (settings are short lower-case words).
_SETTING = re.compile(r"[a-z][a-z0-9_]{0,23}")


#: The providers privsdk ships, whose ConfigErrors name a place and never quote what is stored.
_OWN_PROVIDERS = (DirectoryTenants, SqlTenants)


def parse_tenants_spec(spec: str) -> TenantStore:
    """``PRIVSDK_TENANTS``: ``dir:///PATH`` or ``sqlite:///PATH[?table=T&name=C&policy=C&format=toml|json]``;
    both also take ``max_size=N`` and ``max_age_s=S`` for the cache.

    Errors never quote the value: a connection string can hold a password (``postgresql://app:PW@db``,
    ``...?password=PW``). They name the scheme, the setting or the part that is wrong, and the expected form.
    """
    import urllib.parse

    from privsdk.docs_url import page

    def bad(message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(message, where="PRIVSDK_TENANTS", hint=hint or form)

    form = f"use dir:///PATH or sqlite:///PATH?table=NAME (see {page('configuration', 'tenant-stores')})"
    scheme, sep, rest = spec.partition("://")
    if not sep:
        raise bad("the value is not a store URL (not shown)")
    if scheme not in ("dir", "sqlite"):
        shown = f"{scheme}://" if _SCHEME.fullmatch(scheme) else "this kind of"
        raise bad(
            f"a {shown} store is not supported (the value is not shown: it may hold a password)",
            f"{form}; for another database, pass a provider in code: Client(tenants=SqlTenants(connect))",
        )
    path, _, query = rest.partition("?")
    if "@" in path and ":" in path.rpartition("@")[0]:  # user:password@host, which these stores never take
        raise bad(
            f"a {scheme}:// store takes a local path, not user:password@host (the value is not shown)",
            f"{form}; keep passwords out of this variable",
        )
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise bad(f"the {scheme}:// store's settings after '?' are not NAME=VALUE&... (not shown)") from None
    params = dict(pairs)
    if len(params) < len(pairs):  # which one holds would be dict()'s choice, not the writer's
        twice = next(key for key, _ in pairs if sum(k == key for k, _ in pairs) > 1)
        name = twice if _SETTING.fullmatch(twice) else "(not shown)"
        raise bad(f"the {scheme}:// store's setting {name} is given more than once", "give each setting once")
    path = urllib.parse.unquote(path)
    if not path:
        raise bad(f"the {scheme}:// store names no path")
    cache: dict[str, Any] = {}
    if "max_size" in params:
        size = params.pop("max_size")
        # The length first: int() refuses 4300 digits with a bare ValueError.
        if not (size.isascii() and size.isdigit() and len(size) <= 9 and 1 <= int(size) <= MAX_SIZE):
            raise bad(f"max_size must be a whole number from 1 to {MAX_SIZE}", "the most tenants kept in the cache")
        cache["max_size"] = int(size)
    if "max_age_s" in params:
        age = params.pop("max_age_s")
        if not SECONDS.fullmatch(age) or float(age) <= 0:  # float() would also read 1_0, 1e-300, inf
            raise bad(
                "max_age_s must be a number of seconds, more than 0, in digits (e.g. 300 or 0.5)",
                "how long a cached tenant is kept",
            )
        cache["max_age_s"] = float(age)
    allowed = {"dir": set(), "sqlite": {"table", "name", "policy", "format"}}[scheme]
    unknown = sorted(set(params) - allowed)
    if unknown:
        valid = ", ".join(sorted(allowed | {"max_size", "max_age_s"}))
        name = repr(unknown[0]) if _SETTING.fullmatch(unknown[0]) else "(not shown)"
        raise bad(f"unknown setting {name} for a {scheme}:// store", f"{scheme}:// takes: {valid}")
    for key in ("table", "name", "policy"):
        if key in params and not _IDENTIFIER.fullmatch(params[key]):
            raise bad(
                f"the sqlite:// store's {key} setting is not a plain SQL identifier (not shown)",
                "letters, digits, '_'",
            )
    fmt = params.get("format", "toml")
    if fmt not in ("toml", "json"):
        raise bad("the sqlite:// store's format setting must be toml or json", "format=toml or format=json")
    try:
        provider: TenantProvider
        if scheme == "dir":
            provider = DirectoryTenants(path)
        else:
            provider = SqlTenants.sqlite(
                path,
                table=params.get("table", "privsdk_tenants"),
                name_column=params.get("name", "name"),
                policy_column=params.get("policy", "policy"),
                format="json" if fmt == "json" else "toml",
            )
        store = TenantStore(provider, **cache)
    except ConfigError as exc:
        raise exc.at("PRIVSDK_TENANTS") from None
    with _SPEC_LOCK:
        store._siblings = _SPEC_STORES.setdefault(spec, weakref.WeakValueDictionary())
        sibling = next(iter(store._siblings.values()), None)
        if sibling is not None:  # the keys a Client's store learnt, the drop-ins' guard knows, and the other way round
            store.key_owners = sibling.key_owners
        store._siblings[id(store)] = store  # by id: a Mapping has no hash
    return store


#: PRIVSDK_TENANTS value -> the live stores built from it (each client's, the process-wide guard's), which one
#: invalidation reaches: each store is bound to its own configuration, so they cannot be one store.
_SPEC_STORES: dict[str, weakref.WeakValueDictionary[int, TenantStore]] = {}
_SPEC_LOCK = threading.Lock()


__all__ = [
    "DirectoryTenants",
    "SqlTenants",
    "TenantDocument",
    "TenantProvider",
    "TenantStore",
    "as_store",
    "parse_tenants_spec",
]
