"""Tenants from a store, shared adapters, and policies with thousands of tenants.

Calls go through the real openai SDK to the loopback OpenAI server. Expected
outcomes come from docs/configuration.md (tenant stores: cache, invalidation,
refusal of unknown tenants and failing stores, never another tenant's policy)
and the catalogue (openai.api keeps abuse logs unless ZDR is attested, and
offers no EU residency without ``openai:region=eu``, which requires ``openai:zdr``).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from privsdk import tomlcompat
from privsdk.adapter import BUILTIN
from privsdk.client import Client
from privsdk.config import load_policy
from privsdk.decision import decide
from privsdk.errors import AuthFailed, ConfigError, PolicyViolation
from privsdk.policy import Policy, Target, Tenant
from privsdk.tenants import DirectoryTenants, SqlTenants, TenantDocument, TenantStore
from privsdk.usage import UsageRecord
from privsdk.vocabulary import parse_requirements
from tests.conftest import REPO, run_cli
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer, Recorded, Reply

KEY, OTHER_KEY = "sk-shared", "sk-own"

POLICY = """
[attest]
openai = ["zdr"]

[targets.mini]
offering = "openai.api"
model = "gpt-4o-mini"
endpoint = "{url}/v1"
"""

ACME = 'classes.default = ["no_training", "zdr"]\n'
EU_ONLY = 'classes.default = ["no_training", "region=eu"]\n'  # openai.api offers no EU residency here


def _any_key(app: OpenAIWire, keys: set[str]) -> Callable[[Recorded], Reply]:
    """The OpenAI app taking any of ``keys`` (the server still records the header as sent)."""

    def serve(request: Recorded) -> Reply:
        if request.headers.get("authorization", "").removeprefix("Bearer ") in keys:
            request = request._replace(headers={**request.headers, "authorization": f"Bearer {app.key}"})
        return app(request)

    return serve


class World:
    """A loopback OpenAI server, a policy file with one target, and a directory of tenant files."""

    def __init__(self, tmp_path: Path):
        self.app = OpenAIWire(key=KEY)
        self.server = LoopbackServer(_any_key(self.app, {KEY, OTHER_KEY}))
        self.config = tmp_path / "privsdk.toml"
        self.tenants = tmp_path / "tenants"
        self.tenants.mkdir()
        self.records: list[UsageRecord] = []

    def write(self, name: str, text: str) -> None:
        (self.tenants / f"{name}.toml").write_text(text, encoding="utf-8")

    def client(self, tenants: Any = None, **environ: str) -> Client:
        return Client(
            environ={"PRIVSDK_CONFIG": str(self.config), **environ},
            usage=self.records.append,
            credentials={"openai": {"api_key": KEY}},
            timeout=2.0,
            tenants=tenants,
        )

    def __enter__(self) -> World:
        self.server.__enter__()
        self.config.write_text(POLICY.format(url=self.server.url), encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__()
        assert self.server.errors == []


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path) as w:
        yield w


class Counting:
    """A provider over a dict of TOML texts that counts its calls and can be made to fail."""

    def __init__(self, texts: dict[str, str]):
        self.texts = texts
        self.calls: list[str] = []
        self.failing: Exception | None = None

    def __call__(self, name: str) -> TenantDocument | None:
        self.calls.append(name)
        if self.failing is not None:
            raise self.failing
        text = self.texts.get(name)
        return None if text is None else TenantDocument(text, f"memory:{name}")


# -- the directory provider, end to end ----------------------------------------------------


def test_directory_tenants_serve_calls_and_unknown_tenants_are_refused(world: World) -> None:
    world.write("acme", ACME)
    world.write("eu", EU_ONLY)
    with world.client(DirectoryTenants(str(world.tenants))) as client:
        assert client.chat("mini", "hello", tenant="acme").text == world.app.text
        with pytest.raises(PolicyViolation, match="region=eu"):
            client.chat("mini", "hello", tenant="eu")
        with pytest.raises(PolicyViolation, match="unknown tenant 'nobody'"):
            client.chat("mini", "hello", tenant="nobody")
        with pytest.raises(PolicyViolation, match="names no tenant"):
            client.chat("mini", "hello")  # no default tenant: nothing falls back to one
        with pytest.raises(PolicyViolation, match="not a tenant name"):
            client.chat("mini", "hello", tenant="../tenants/acme")
        client.flush_usage()
    assert len(world.server.requests) == 1
    assert [(r.tenant, r.outcome) for r in world.records] == [
        ("acme", "ok"),
        ("eu", "refused"),
        ("-unknown", "refused"),  # a name the policy does not know is not recorded: the app passed it
        ("-", "refused"),  # no name: recorded under "-", which no tenant can be
        ("-unknown", "refused"),
    ]


def test_the_env_variable_names_a_directory_and_the_default_tenant(world: World) -> None:
    world.write("acme", ACME)
    with world.client(PRIVSDK_TENANTS=f"dir://{world.tenants}", PRIVSDK_TENANT="acme") as client:
        answer = client.chat("mini", "hello")
        assert answer.decision is not None and answer.decision.tenant == "acme"
        assert client.tenants is not None and list(client.tenants) == ["acme"]


def test_a_policy_file_with_tenants_and_a_store_is_a_config_error(world: World) -> None:
    world.config.write_text(POLICY.format(url=world.server.url) + '\n[tenants.acme]\nclasses.default = ["zdr"]\n')
    with pytest.raises(ConfigError, match=r"privsdk\.toml:\d+: the policy file defines tenants"):
        world.client(DirectoryTenants(str(world.tenants)))


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("ftp:///x", "dir:///PATH"),
        ("dir:///no/such/dir", "no directory"),
        ("sqlite:///no/such.db", "no SQLite file"),
        ("dir:///tmp?table=x", "unknown setting 'table'"),
    ],
)
def test_a_bad_store_variable_is_a_config_error(spec: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match="PRIVSDK_TENANTS") as info:
        load_policy({"PRIVSDK_TENANTS": spec})
    assert fragment in str(info.value)


@pytest.mark.parametrize("chosen", ["../x", "a b", "-", "acme\u200b"])
def test_privsdk_tenant_that_no_stored_tenant_can_be_named_is_a_config_error(world: World, chosen: str) -> None:
    """Accepted with a store (and by `privsdk check`, exit 0), then every call naming no tenant was refused."""
    env = {"PRIVSDK_TENANTS": f"dir://{world.tenants}", "PRIVSDK_TENANT": chosen}
    with pytest.raises(ConfigError, match=r"^PRIVSDK_TENANT: .* is not a tenant name"):
        load_policy(env)
    assert run_cli("check", **env).returncode == 2
    assert load_policy({**env, "PRIVSDK_TENANT": "acme"}).default_tenant == "acme"  # a name: looked up per call


# -- the cache and invalidation ------------------------------------------------------------


def test_the_cache_loads_a_tenant_once_until_it_is_invalidated(world: World) -> None:
    provider = Counting({"acme": ACME})
    store = TenantStore(provider)
    with world.client(store) as client:
        for _ in range(5):
            client.chat("mini", "hello", tenant="acme")
        assert provider.calls == ["acme"]
        provider.texts["acme"] = EU_ONLY  # the contract changed in the store ...
        client.chat("mini", "hello", tenant="acme")  # ... and the cache still holds the old one
        store.invalidate("acme")
        with pytest.raises(PolicyViolation, match="region=eu"):
            client.chat("mini", "hello", tenant="acme")
        assert provider.calls == ["acme", "acme"]
        provider.texts["acme"] = ACME
        store.invalidate_all()
        client.chat("mini", "hello", tenant="acme")
        assert provider.calls == ["acme", "acme", "acme"]


def test_unknown_tenants_are_cached_until_invalidated() -> None:
    provider = Counting({})
    policy = load_policy({}, tenants=provider)
    for _ in range(3):
        assert decide(policy, "openai/gpt-4o-mini", tenant="newco").outcome == "refuse"
    assert provider.calls == ["newco"]
    provider.texts["newco"] = ACME
    assert decide(policy, "openai/gpt-4o-mini", tenant="newco").outcome == "refuse"  # still cached
    assert isinstance(policy.tenants, TenantStore)
    policy.tenants.invalidate("newco")
    decision = decide(policy, "openai/gpt-4o-mini", tenant="newco")
    assert decision.tenant == "newco" and decision.requirements == ("no_training", "zdr")


def test_the_cache_is_bounded_and_drops_the_least_recently_used() -> None:
    provider = Counting({name: ACME for name in "abc"})
    store = TenantStore(provider, max_size=2)
    policy = load_policy({}, tenants=store)
    for name in "abab":
        decide(policy, "openai/gpt-4o-mini", tenant=name)
    decide(policy, "openai/gpt-4o-mini", tenant="c")  # drops a, the least recently used
    assert sorted(store) == ["b", "c"]
    decide(policy, "openai/gpt-4o-mini", tenant="b")
    decide(policy, "openai/gpt-4o-mini", tenant="a")
    assert provider.calls == ["a", "b", "c", "a"]


def test_entries_older_than_max_age_are_read_again() -> None:
    provider = Counting({"acme": ACME})
    policy = load_policy({}, tenants=TenantStore(provider, max_age_s=0.05))
    decide(policy, "openai/gpt-4o-mini", tenant="acme")
    decide(policy, "openai/gpt-4o-mini", tenant="acme")
    time.sleep(0.1)
    decide(policy, "openai/gpt-4o-mini", tenant="acme")
    assert provider.calls == ["acme", "acme"]


# -- failures refuse, never fall back ------------------------------------------------------


def test_a_failing_store_refuses_without_its_message_and_is_asked_again(world: World) -> None:
    provider = Counting({"acme": ACME})
    provider.failing = RuntimeError("could not connect to postgres://admin:hunter2@db/tenants")
    with world.client(provider) as client:
        with pytest.raises(PolicyViolation) as info:
            client.chat("mini", "hello", tenant="acme")
        message = str(info.value)
        assert "RuntimeError" in message and "hunter2" not in message and "postgres" not in message
        provider.failing = None  # the store is back: a failure is never cached
        assert client.chat("mini", "hello", tenant="acme").text == world.app.text
        client.flush_usage()
    assert [r.outcome for r in world.records] == ["refused", "ok"]
    assert len(world.server.requests) == 1
    assert client.tenants is not None and client.tenants.failures == 1


def test_an_empty_tenant_name_is_refused_never_privsdk_tenant() -> None:
    """With PRIVSDK_TENANT=acme, decide(tenant="") (and so a guarded request in such a scope) got acme's policy."""
    provider = Counting({"acme": ACME})
    policy = load_policy({"PRIVSDK_TENANT": "acme", "PRIVSDK_ATTEST": "openai:zdr"}, tenants=provider)
    assert decide(policy, "openai/gpt-4o-mini").tenant == "acme"
    decision = decide(policy, "openai/gpt-4o-mini", tenant="")
    assert decision.outcome == "refuse" and decision.tenant != "acme" and "names no tenant" in (decision.reason or "")


def test_a_provider_returning_another_tenant_is_refused(world: World) -> None:
    other = Tenant("globex", {"default": ()})
    with world.client(lambda name: other) as client, pytest.raises(PolicyViolation, match="'globex' when asked"):
        client.chat("mini", "hello", tenant="acme")
    assert world.server.requests == []


def test_a_bad_stored_policy_is_refused_with_its_place_and_reported_by_check(world: World) -> None:
    world.write("acme", ACME)
    world.write("bad", 'classes.default = ["no_training"]\nattest.openai = ["region=eu"]\n')
    with world.client(DirectoryTenants(str(world.tenants))) as client:
        with pytest.raises(PolicyViolation, match=r"bad\.toml:2: openai:region=eu requires openai:zdr"):
            client.chat("mini", "hello", tenant="bad")
        client.chat("mini", "hello", tenant="acme")
    env = {"PRIVSDK_CONFIG": str(world.config), "PRIVSDK_TENANTS": f"dir://{world.tenants}"}
    result = run_cli("check", **env)
    assert result.returncode == 2 and "bad.toml:2" in result.stderr
    (world.tenants / "bad.toml").unlink()
    result = run_cli("check", "--json", **env)
    assert result.returncode == 0
    assert {d["tenant"] for d in json.loads(result.stdout)} == {"acme"}


@pytest.mark.parametrize("empty", ["", "\n  \n", "\ufeff"])
def test_an_empty_stored_policy_is_refused_never_read_as_one_that_requires_nothing(
    world: World, tmp_path: Path, empty: str
) -> None:
    """An empty file is valid TOML that requires nothing: what a tenant's file reads as while it is being written,
    or once truncated. It is refused, in a directory and in a table; a tenant that requires nothing says so."""
    world.write("acme", ACME)
    world.write("writing", empty)
    db = tmp_path / "tenants.db"
    _tenant_table(db, [("writing", empty)])
    for store in (DirectoryTenants(str(world.tenants)), SqlTenants.sqlite(str(db))):
        with world.client(store) as client, pytest.raises(PolicyViolation, match="the stored policy is empty"):
            client.chat("mini", "hello", tenant="writing")
    assert len(world.server.requests) == 0
    world.write("writing", "classes.default = []\n")
    with world.client(DirectoryTenants(str(world.tenants))) as client:
        assert client.chat("mini", "hello", tenant="writing").text == world.app.text


@pytest.mark.parametrize("stored", ["# classes.default = []\n", 'on_violation = "refuse"\n'])
def test_a_stored_policy_that_says_nothing_of_classes_is_refused(world: World, tmp_path: Path, stored: str) -> None:
    """A file holding only a comment, or only on_violation, or a JSON row of {}, read as a tenant whose default
    class required nothing, and its request was sent."""
    world.write("acme", ACME)
    world.write("silent", stored)
    db = tmp_path / "tenants.db"
    _tenant_table(db, [("silent", "{}")])
    stores = (DirectoryTenants(str(world.tenants)), SqlTenants(lambda: sqlite3.connect(db), format="json"))
    for store in stores:
        with world.client(store) as client, pytest.raises(PolicyViolation, match="has no classes"):
            client.chat("mini", "hello", tenant="silent")
    assert len(world.server.requests) == 0


# -- the SQL provider ----------------------------------------------------------------------


def _tenant_table(path: Path, rows: list[tuple[str, str]], table: str = "privsdk_tenants") -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE {table} (name TEXT PRIMARY KEY, policy TEXT NOT NULL)")
        conn.executemany(f"INSERT INTO {table} VALUES (?, ?)", rows)
    conn.close()


def test_sqlite_tenants_as_toml_through_the_env_variable(world: World, tmp_path: Path) -> None:
    db = tmp_path / "tenants.db"
    _tenant_table(db, [("acme", ACME), ("eu", EU_ONLY)], table="customers")
    with world.client(PRIVSDK_TENANTS=f"sqlite://{db}?table=customers") as client:
        assert client.chat("mini", "hello", tenant="acme").text == world.app.text
        with pytest.raises(PolicyViolation, match="region=eu"):
            client.chat("mini", "hello", tenant="eu")
        with pytest.raises(PolicyViolation, match="no such tenant"):
            client.chat("mini", "hello", tenant="initech")
        assert client.tenants is not None and client.tenants.names() == ["acme", "eu"]


def test_sql_tenants_as_json_through_any_dbapi_connection(tmp_path: Path) -> None:
    db = tmp_path / "tenants.db"
    acme = {"classes": {"default": ["no_training"], "pii": ["zdr"]}, "on_violation": "refuse"}
    _tenant_table(db, [("acme", json.dumps(acme)), ("broken", "{not json")])
    provider = SqlTenants(lambda: sqlite3.connect(db, check_same_thread=False), format="json")
    policy = load_policy({"PRIVSDK_ATTEST": "openai:zdr"}, tenants=provider)
    decision = decide(policy, "openai/gpt-4o-mini", tenant="acme", data_class="pii")
    assert decision.outcome == "allow" and decision.requirements == ("zdr",)
    broken = decide(policy, "openai/gpt-4o-mini", tenant="broken")
    assert broken.outcome == "refuse" and "invalid JSON" in (broken.reason or "")


def test_a_json_tenant_that_gives_a_key_twice_is_refused(tmp_path: Path) -> None:
    """json.loads keeps the last of two equal keys: a row whose classes were written twice, the second time empty,
    was served with no requirement (TOML refuses the same document)."""
    db = tmp_path / "tenants.db"
    twice = '{"classes": {"default": ["zdr"]}, "classes": {"default": []}}'
    nested = '{"classes": {"default": ["zdr"], "default": []}}'
    _tenant_table(db, [("acme", twice), ("globex", nested)])
    provider = SqlTenants(lambda: sqlite3.connect(db, check_same_thread=False), format="json")
    policy = load_policy({}, tenants=provider)
    for tenant, key in (("acme", "classes"), ("globex", "default")):
        refused = decide(policy, "openai/gpt-4o-mini", tenant=tenant)
        assert refused.outcome == "refuse", refused
        assert f"a key is given twice in one object ('{key}')" in (refused.reason or ""), refused.reason


def test_a_sqlite_path_written_with_four_slashes_is_the_same_file(world: World, tmp_path: Path) -> None:
    """sqlite:////srv/t.db, as SQLAlchemy writes an absolute path: the file was found, then opened as the URI
    file://srv/..., whose 'srv' SQLite reads as an authority, and every call was refused with a bare
    OperationalError."""
    db = tmp_path / "tenants.db"
    _tenant_table(db, [("acme", ACME)])
    with world.client(PRIVSDK_TENANTS=f"sqlite:///{db}") as client:
        assert client.chat("mini", "hello", tenant="acme").text == world.app.text


def test_a_sql_name_matches_only_its_own_row_whatever_the_columns_comparison(tmp_path: Path) -> None:
    """SQL '=' follows the column's rules: an INTEGER id matched '07' and '7.0' for tenant 7, a NOCASE name 'ACME'
    for acme, and each alias was served with that row's policy (and invalidate('acme') left 'ACME' cached)."""
    db = tmp_path / "tenants.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE numbered (id INTEGER PRIMARY KEY, policy TEXT NOT NULL)")
        conn.execute("INSERT INTO numbered VALUES (7, ?)", (ACME,))
        conn.execute("CREATE TABLE named (name TEXT PRIMARY KEY COLLATE NOCASE, policy TEXT NOT NULL)")
        conn.execute("INSERT INTO named VALUES ('acme', ?)", (ACME,))
    conn.close()
    numbered = SqlTenants.sqlite(str(db), table="numbered", name_column="id")
    named = SqlTenants.sqlite(str(db), table="named")
    assert numbered.names() == ["7"] and named.names() == ["acme"]
    for provider, name, aliases in ((numbered, "7", ["07", "7.0", "7e0"]), (named, "acme", ["ACME", "Acme"])):
        policy = load_policy({"PRIVSDK_ATTEST": "openai:zdr"}, tenants=provider)
        assert decide(policy, "openai/gpt-4o-mini", tenant=name).outcome == "allow"
        for alias in aliases:
            decision = decide(policy, "openai/gpt-4o-mini", tenant=alias)
            assert decision.outcome == "refuse" and "no such tenant" in (decision.reason or ""), alias


def test_sql_names_are_identifiers_never_sql() -> None:
    with pytest.raises(ConfigError, match="bad table"):
        SqlTenants(lambda: sqlite3.connect(":memory:"), table="t; DROP TABLE x")


# -- concurrency ---------------------------------------------------------------------------


def test_threads_get_their_own_tenants_while_the_cache_is_invalidated() -> None:
    """Many threads decide for 40 tenants with different requirements while another invalidates: each
    decision carries exactly the asked tenant's requirements, never another's."""
    texts = {f"t{i}": f'classes.default = ["max_retention_days={i + 1}"]\n' for i in range(40)}
    provider = Counting(texts)
    store = TenantStore(provider, max_size=16)
    policy = load_policy({}, tenants=store)
    errors: list[str] = []
    stop = threading.Event()

    def work(seed: int) -> None:
        for n in range(400):
            name = f"t{(seed * 7 + n) % 40}"
            d = decide(policy, "openai/gpt-4o-mini", tenant=name)
            if d.tenant != name or d.requirements != (f"max_retention_days={int(name[1:]) + 1}",):
                errors.append(f"{name}: {d.tenant} {d.requirements}")

    def churn() -> None:
        while not stop.is_set():
            store.invalidate(f"t{int(time.monotonic() * 1000) % 40}")
            store.invalidate_all()
            time.sleep(0.001)

    churner = threading.Thread(target=churn)
    churner.start()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    churner.join()
    assert errors == []
    assert len(store._entries) <= 16


def test_a_load_that_races_an_invalidation_is_not_cached() -> None:
    """The store changed while it was being read: the answer serves that call only, the next call reads again."""
    release, started = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow(name: str) -> TenantDocument:
        calls.append(name)
        if len(calls) == 1:
            started.set()
            release.wait(5)
        return TenantDocument(ACME, "memory")

    store = TenantStore(slow)
    policy = load_policy({}, tenants=store)
    first = threading.Thread(target=decide, args=(policy, "openai/gpt-4o-mini"), kwargs={"tenant": "acme"})
    first.start()
    assert started.wait(5)
    store.invalidate("acme")
    release.set()
    first.join()
    decide(policy, "openai/gpt-4o-mini", tenant="acme")
    decide(policy, "openai/gpt-4o-mini", tenant="acme")
    assert calls == ["acme", "acme"]


# -- adapters shared by credentials ------------------------------------------------------


def test_tenants_with_the_same_credentials_share_one_sdk_client(world: World) -> None:
    world.config.write_text(
        POLICY.format(url=world.server.url)
        + "\n[tenants.a]\nclasses.default = []\n[tenants.b]\nclasses.default = []\n"
        + '[tenants.c]\nclasses.default = []\ncredentials.openai = { api_key = "C_KEY" }\n'
        + '[tenants.d]\nclasses.default = []\ncredentials.openai = { api_key = "D_KEY" }\n'
        + '[tenants.e]\nclasses.default = []\ncredentials.openai = { api_key = "E_KEY" }\n',
        encoding="utf-8",
    )
    environ = {"C_KEY": OTHER_KEY, "D_KEY": OTHER_KEY, "E_KEY": KEY + "-e"}
    with world.client(**environ) as client:
        core = client._core
        mini = core.target("mini")
        adapters = {name: core.adapter(name, mini, "chat") for name in "abcde"}
        assert adapters["a"] is adapters["b"]  # the client's key: one SDK client
        assert adapters["c"] is adapters["d"]  # two tenants' variables holding the same key: one SDK client
        assert adapters["e"] is not adapters["a"] and adapters["e"] is not adapters["c"]
        assert adapters["c"] is not adapters["a"]  # a tenant's own key never serves another
        assert len({id(a) for a in adapters.values()}) == 3
        for name in "abcd":
            client.chat("mini", "hello", tenant=name)
        with pytest.raises(AuthFailed):  # the server takes E's key from no one: it was sent as it is
            client.chat("mini", "hello", tenant="e", max_attempts=1)
    sent = [r.headers["authorization"] for r in world.server.requests]
    assert sent == [f"Bearer {k}" for k in (KEY, KEY, OTHER_KEY, OTHER_KEY, KEY + "-e")]


def test_a_reloaded_tenant_with_new_credentials_gets_the_matching_client(world: World) -> None:
    texts = {"acme": ACME}
    store = TenantStore(lambda name: TenantDocument(texts[name], "memory"))
    with world.client(store, ACME_KEY=OTHER_KEY) as client:
        client.chat("mini", "hello", tenant="acme")
        own_key = ACME + 'credentials.openai = { api_key = "ACME_KEY" }\n'
        texts["acme"] = own_key
        store.invalidate("acme")
        # Its own key is its own OpenAI account: the deployment's [attest] openai:zdr is not true of it ...
        with pytest.raises(PolicyViolation, match="unmet: zdr"):
            client.chat("mini", "hello", tenant="acme")
        texts["acme"] = own_key + 'attest.openai = ["zdr"]\n'  # ... until the tenant attests its own account
        store.invalidate("acme")
        client.chat("mini", "hello", tenant="acme")
    sent = [r.headers["authorization"] for r in world.server.requests]
    assert sent == [f"Bearer {KEY}", f"Bearer {OTHER_KEY}"]


def test_a_tenants_own_key_names_its_own_project_never_the_deployments(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The openai SDK fills OpenAI-Organization and OpenAI-Project from OPENAI_ORG_ID and OPENAI_PROJECT_ID (the
    deployment's): a tenant's own key went out naming the deployment's account. It names its own, or none."""
    monkeypatch.setenv("OPENAI_ORG_ID", "org-deployment")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_deployment")
    own = 'classes.default = ["no_training"]\ncredentials.openai = { api_key = "OWN_KEY"'
    texts = {"acme": own + " }\n", "globex": own + ', project = "GLOBEX_PROJECT" }\n'}
    store = TenantStore(lambda name: TenantDocument(texts[name], "memory"))
    with world.client(store, OWN_KEY=OTHER_KEY, GLOBEX_PROJECT="proj_globex") as client:
        client.chat("mini", "hello", tenant="acme")
        client.chat("mini", "hello", tenant="globex")
    sent = [
        (r.headers["authorization"], r.headers.get("openai-organization"), r.headers.get("openai-project"))
        for r in world.server.requests
    ]
    assert sent == [(f"Bearer {OTHER_KEY}", None, None), (f"Bearer {OTHER_KEY}", None, "proj_globex")]


# -- thousands of tenants ----------------------------------------------------------------


def test_one_contradiction_among_a_thousand_tenants_is_a_config_error_at_its_target(tmp_path: Path) -> None:
    """Pairs are not all checked one by one, but every contradiction is still found and placed."""
    lines = ["[targets.mini]", 'offering = "openai.api"', 'model = "gpt-4o-mini"', 'attest = ["region=eu"]  # <-']
    for i in range(1000):
        lines += [f"[tenants.t{i}]", 'classes.default = ["no_training"]']
        lines += ['attest.openai = ["zdr"]'] if i != 777 else ['attest.openai = ["baa"]']
    path = tmp_path / "many.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_policy({"PRIVSDK_CONFIG": str(path)})
    assert str(info.value).startswith(f"{path}:4: openai:region=eu requires openai:zdr")  # the target's attest line
    result = run_cli("check", PRIVSDK_CONFIG=str(path))
    assert result.returncode == 2 and "requires openai:zdr" in result.stderr
    path.write_text("\n".join(lines).replace('["baa"]', '["zdr", "baa"]'), encoding="utf-8")
    assert len(load_policy({"PRIVSDK_CONFIG": str(path)}).tenants) == 1000


def test_target_clashes_are_found_with_a_tenant_store_too(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        '[targets.eu]\noffering = "azure.openai"\nmodel = "gpt-4o"\n'
        'attest = ["deployment=data_zone_eu", "deployment=regional_us"]\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="cannot both hold"):
        load_policy({"PRIVSDK_CONFIG": str(path)}, tenants=Counting({}))


def test_a_policy_built_in_code_takes_a_tenant_store(world: World) -> None:
    policy = Policy(
        {"x": Tenant("x", {"default": ()})},
        "acme",
        {"mini": Target("mini", "openai.api", "gpt-4o-mini", endpoint=f"{world.server.url}/v1")},
    )
    store = TenantStore(lambda name: Tenant(name, {"default": parse_requirements(["no_training"])}))
    with Client(policy=policy, usage="none", credentials={"openai": {"api_key": KEY}}, tenants=store) as client:
        answer = client.chat("mini", "hello")
        assert answer.decision is not None and answer.decision.tenant == "acme"


@pytest.mark.parametrize("tenants", ["", "[tenants.default]\nclasses.default = []\n"])
def test_a_loaded_policys_own_default_tenant_is_no_default_of_a_store(world: World, tenants: str) -> None:
    """A policy file with no tenants has the implicit tenant "default" (with one, that one): given with a store
    (Client(policy=, tenants=)), a call that named no tenant ran as the store's "default". With a store there is no
    implicit default: such a call is refused, nothing sent, and a call that names the tenant is served."""
    world.config.write_text(POLICY.format(url=world.server.url) + tenants, encoding="utf-8")
    policy = load_policy({"PRIVSDK_CONFIG": str(world.config)})
    assert policy.default_tenant == "default"
    store = Counting({"default": 'classes.default = ["no_training"]\n'})
    with Client(
        policy=policy, usage=world.records.append, credentials={"openai": {"api_key": KEY}}, tenants=store
    ) as client:
        with pytest.raises(PolicyViolation, match="the call names no tenant"):
            client.chat("mini", "hello")
        assert world.server.requests == [] and store.calls == []
        client.chat("mini", "hello", tenant="default")
        assert len(world.server.requests) == 1


def test_an_invalidation_reaches_the_store_drop_ins_are_judged_by(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With PRIVSDK_TENANTS, a Client and the process-wide guard (drop-ins, instrument(), privsdk run) each build a
    store: client.tenants.invalidate() reloaded the tenant for the Client only, and the drop-in's requests went on
    being judged by the tenant's old, laxer policy. Stores of one PRIVSDK_TENANTS value now forget together."""
    from privsdk import openai as dropin
    from privsdk import scope
    from privsdk.outbound.judge import Guard

    world.write("acme", 'classes.default = ["no_training"]\n')
    env = {"PRIVSDK_CONFIG": str(world.config), "PRIVSDK_TENANTS": f"dir://{world.tenants}", "PRIVSDK_USAGE": "none"}
    for name, value in {**env, "PRIVSDK_ENDPOINTS": f"{world.server.url}/v1=openai.api"}.items():
        monkeypatch.setenv(name, value)
    Guard.reset_default()
    sdk = dropin.OpenAI(api_key=KEY, base_url=f"{world.server.url}/v1", max_retries=0)
    hello: Any = [{"role": "user", "content": "hi"}]
    with world.client(**env) as client, scope(tenant="acme"):
        client.chat("mini", "hi")
        sdk.chat.completions.create(model="gpt-4o-mini", messages=hello)
        assert len(world.server.requests) == 2
        guards = Guard.default().policy.tenants
        assert isinstance(guards, TenantStore) and client.tenants is not None and guards is not client.tenants
        for invalidate in (client.tenants.invalidate, guards.invalidate):
            world.write("acme", EU_ONLY)  # acme's contract now asks for EU residency, which openai.api lacks here
            invalidate("acme")
            with pytest.raises(PolicyViolation, match="unmet"):
                client.chat("mini", "hi")
            with pytest.raises(PolicyViolation, match="unmet"):
                sdk.chat.completions.create(model="gpt-4o-mini", messages=hello)
            assert len(world.server.requests) == 2
            world.write("acme", 'classes.default = ["no_training"]\n')
            invalidate("acme")
    Guard.reset_default()


# -- the first call looks no adapter up through every distribution's metadata ----------------


def test_builtin_adapters_match_their_entry_points() -> None:
    data = tomlcompat.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert data["project"]["entry-points"]["privsdk.adapters"] == BUILTIN


def test_the_first_call_reads_no_distribution_metadata(world: World) -> None:
    """A built-in adapter is imported, not looked up among entry points (which reads every distribution's metadata).

    The openai SDK imports importlib.metadata itself (and pydantic scans for its own plugins); what must not
    happen is privsdk's scan: ``entry_points(group="privsdk.adapters")``.
    """
    script = (
        "import importlib.metadata as md\n"
        "scans = []\n"
        "real = md.entry_points\n"
        "md.entry_points = lambda *a, **k: scans.append(k) or real(*a, **k)\n"
        "import privsdk\n"
        f"c = privsdk.Client(environ={{}}, usage='none', credentials={{'openai': {{'api_key': {KEY!r}}}}},"
        f" endpoints={{'openai': {world.server.url + '/v1'!r}}})\n"
        "print(c.chat('openai/gpt-4o-mini', 'hi').text)\n"
        "print(scans)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    text, scans = out.stdout.splitlines()
    assert text == world.app.text
    assert "privsdk.adapters" not in scans


# -- secrets in a store's configuration never reach a message ------------------------------------

PASTED_KEY = "CANARYkq3ZP0x9mT7bQ2vW8yL4nR6sA1dF5gH0j"  # an API key pasted where its variable's NAME belongs


def _texts(exc: BaseException) -> list[str]:
    texts = [str(exc), repr(exc), repr(exc.args)]
    decision = getattr(exc, "decision", None)
    if decision is not None:
        texts += [repr(decision), json.dumps(decision.to_json())]
    return texts


def test_a_key_pasted_as_a_stored_credentials_variable_is_never_shown(world: World) -> None:
    world.write("acme", ACME + f'credentials.openai = {{ api_key = "{PASTED_KEY}" }}\n')
    world.write("named", ACME + 'credentials.openai = { api_key = "NAMED_OPENAI_KEY" }\n')
    with world.client(DirectoryTenants(str(world.tenants))) as client:
        for _ in range(2):  # the first call, and the cached answer
            with pytest.raises(PolicyViolation) as caught:
                client.chat("mini", "hello", tenant="acme")
            for text in _texts(caught.value):
                assert "CANARY" not in text
            assert "credential 'api_key'" in str(caught.value)
            assert "credentials.openai.api_key" in str(caught.value)  # where to write the variable's name
        with pytest.raises(PolicyViolation, match="set NAMED_OPENAI_KEY in the environment"):
            client.chat("mini", "hello", tenant="named")  # a real variable's name is still named
    env = {"PRIVSDK_CONFIG": str(world.config), "PRIVSDK_TENANTS": f"dir://{world.tenants}"}
    for args in (
        ("check",),
        ("explain", "mini", "--tenant", "acme"),
        ("explain", "mini", "--tenant", "acme", "--json"),
    ):
        result = run_cli(*args, **env)
        assert result.returncode == 2 and "acme.toml" in result.stderr
        assert "CANARY" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        (
            "postgresql://app:CANARY-DBPASS@db.internal:5432/app",
            ["a postgresql:// store is not supported", "SqlTenants"],
        ),
        ("CANARY-DBPASS", ["not a store URL"]),
        ("sqlite:///tmp/t.db?table=t&password=CANARY-DBPASS", ["unknown setting 'password'", "table"]),
        ("sqlite:///tmp/t.db?table=t&CANARY-DBPASS=1", ["unknown setting (not shown)"]),
        ("sqlite://app:CANARY-DBPASS@db/app", ["takes a local path, not user:password@host"]),
        ("sqlite://app:pa/CANARY-DBPASS@db/app", ["takes a local path"]),
        ("sqlite:///tmp/t.db?table=CANARY-DBPASS", ["table setting is not a plain SQL identifier"]),
        ("sqlite:///tmp/t.db?format=CANARY-DBPASS", ["format setting must be toml or json"]),
        ("sqlite:///tmp/t.db?max_size=CANARY-DBPASS", ["max_size must be a whole number"]),
        ("dir:///tmp?max_age_s=nan", ["max_age_s must be a number of seconds"]),
        ("sqlite:///tmp/t.db?table&&CANARY-DBPASS", ["settings after '?' are not NAME=VALUE"]),
    ],
)
def test_a_store_variable_never_shows_a_password(spec: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_policy({"PRIVSDK_TENANTS": spec})
    assert str(info.value).startswith("PRIVSDK_TENANTS: ") and info.value.hint
    for fragment in fragments:
        assert fragment in str(info.value)
    for text in _texts(info.value):
        assert "CANARY" not in text


def test_a_store_variable_with_a_password_stays_out_of_the_cli_and_the_client() -> None:
    dsn = "postgresql://app:CANARY-DBPASS@db.internal:5432/app"
    result = run_cli("check", PRIVSDK_TENANTS=dsn)
    assert result.returncode == 2 and "PRIVSDK_TENANTS: a postgresql:// store" in result.stderr
    assert "CANARY" not in result.stdout + result.stderr
    with pytest.raises(ConfigError) as info:
        Client(environ={"PRIVSDK_TENANTS": dsn}, usage="none")
    for text in _texts(info.value):
        assert "CANARY" not in text


# -- a store whose table, column or file is wrong: a one-line error saying what -------------------------------------


def _broken_stores(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """PRIVSDK_TENANTS values of stores that fail, each with what the error must say."""
    db = tmp_path / "t.db"
    _tenant_table(db, [("acme", ACME)])
    not_a_db = tmp_path / "notdb.db"
    not_a_db.write_text("not a database\n", encoding="utf-8")
    return {
        "no table": (f"sqlite://{db}?table=tenants", f"table tenants does not exist in {db}"),
        "no column": (f"sqlite://{db}?name=tenant", "table privsdk_tenants in " + f"{db} has no column tenant"),
        "no policy column": (f"sqlite://{db}?policy=rules", "has no column rules"),
        "not a database": (f"sqlite://{not_a_db}", f"file {not_a_db} is not a SQLite database"),
    }


@pytest.mark.parametrize("case", ["no table", "no column", "no policy column", "not a database"])
def test_check_and_explain_say_what_is_wrong_with_a_store_without_a_traceback(tmp_path: Path, case: str) -> None:
    """privsdk check printed sqlite3's traceback and exited 1; explain said only "(OperationalError)"."""
    spec, says = _broken_stores(tmp_path)[case]
    check = run_cli("check", PRIVSDK_TENANTS=spec)
    assert check.returncode == 2 and "Traceback" not in check.stderr, check.stderr
    assert check.stderr.startswith("privsdk: configuration error: PRIVSDK_TENANTS: ") and says in check.stderr
    assert check.stderr.count("\n") == 1 and "(" in check.stderr  # one line, with how to fix it
    explain = run_cli("explain", "openai/gpt-4o", "--tenant", "acme", PRIVSDK_TENANTS=spec)
    assert explain.returncode == 2 and says in explain.stderr and "Traceback" not in explain.stderr


def test_a_table_that_is_missing_is_a_refusal_saying_so_at_the_call(tmp_path: Path) -> None:
    spec, says = _broken_stores(tmp_path)["no table"]
    client = Client(environ={"PRIVSDK_TENANTS": spec}, usage="none")
    with pytest.raises(PolicyViolation, match=says) as caught:
        client.chat("openai/gpt-4o-mini", "hello", tenant="acme")
    assert "CREATE TABLE tenants" in str(caught.value)


def test_a_driver_error_of_another_kind_is_still_named_by_its_class_only() -> None:
    """A driver's text can hold a connection string: only the shape mistakes privsdk recognises are worded."""

    class Boom(Exception):
        pass

    class Conn:
        def cursor(self) -> Any:
            raise Boom("postgresql://app:CANARY-DBPASS@db/app refused")

        def close(self) -> None:
            pass

    store = TenantStore(SqlTenants(Conn))
    reason = store.entry("acme").reason
    assert reason.endswith("(Boom)") and "CANARY" not in reason
