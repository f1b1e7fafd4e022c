"""What a tenant store hands privsdk is checked at the boundary: anything that is not a policy is a refusal.

A provider is the app's code and a stored policy is data anyone with write access to the store could have made:
arrays nested thousands deep, a Tenant whose fields hold the wrong types, a TenantDocument of bytes or of an
unknown format. Each must be a :class:`PolicyViolation` recorded as refused (docs/configuration.md, tenant stores:
"fail closed"), whose message says what is wrong and never quotes the stored data, never a raw Python exception.
A tenant name with a trailing newline is no tenant name. Calls go through the real openai SDK to the loopback
OpenAI server.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from privsdk.config import load_policy
from privsdk.errors import ConfigError, PolicyViolation
from privsdk.policy import Tenant
from privsdk.tenants import DirectoryTenants, SqlTenants, TenantDocument, TenantStore
from privsdk.vocabulary import parse_requirements
from tests.conftest import run_cli
from tests.test_tenant_stores import ACME, World

SECRET = "CANARY-STORED"
ZDR = parse_requirements(["zdr"])


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with World(tmp_path) as loopback:
        yield loopback


def refused(world: World, tenants: Any, name: str) -> str:
    """Call as ``name`` with ``tenants``: the call must be refused, nothing sent, one refusal recorded."""
    with world.client(tenants) as client:
        with pytest.raises(PolicyViolation) as caught:
            client.chat("mini", "hello", tenant=name)
        client.flush_usage()
    assert world.server.requests == []
    assert [r.outcome for r in world.records] == ["refused"]
    message = str(caught.value)
    assert SECRET not in message
    return message


# -- stored documents nested too deeply ----------------------------------------------------


def test_a_tenant_file_nested_too_deeply_is_refused(world: World) -> None:
    world.write("deep", "classes.default = " + "[" * 3000 + "]" * 3000 + "\n")
    message = refused(world, DirectoryTenants(str(world.tenants)), "deep")
    assert "deep.toml" in message and "nested too deeply" in message


def test_a_json_row_nested_too_deeply_is_refused(world: World, tmp_path: Path) -> None:
    db = tmp_path / "tenants.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE privsdk_tenants (name TEXT PRIMARY KEY, policy TEXT NOT NULL)")
        conn.execute(
            "INSERT INTO privsdk_tenants VALUES (?, ?)",
            ("deep", '{"classes": {"default": ' + "[" * 100_000 + "]" * 100_000 + "}}"),
        )
    conn.close()
    message = refused(world, SqlTenants.sqlite(str(db), format="json"), "deep")
    assert "tenant 'deep'" in message and "nested too deeply" in message


# -- what a provider in code returns -------------------------------------------------------


@pytest.mark.parametrize(
    ("tenant", "says"),
    [
        (Tenant("acme", {"default": SECRET}), "classes"),  # type: ignore[dict-item]
        (Tenant("acme", {"default": [SECRET]}), "classes"),  # type: ignore[dict-item]
        (Tenant("acme", {"default": (SECRET,)}), "classes"),  # type: ignore[dict-item]
        (Tenant("acme", [SECRET]), "classes"),  # type: ignore[arg-type]
        (Tenant("acme", {SECRET + "\n": ZDR}), "classes"),
        (Tenant("acme", {"default": ZDR}, default_class="pii"), "default_class"),
        (Tenant("acme", {"default": ZDR}, on_violation=SECRET), "on_violation"),  # type: ignore[arg-type]
        (Tenant("acme", {"default": ZDR}, attest=SECRET), "attest"),  # type: ignore[arg-type]
        (Tenant("acme", {"default": ZDR}, attest={"openai:zdr"}), "attest"),  # type: ignore[arg-type]
        (Tenant("acme", {"default": ZDR}, reroute={"mini": (SECRET,)}), "reroute"),  # type: ignore[arg-type]
        (Tenant("acme", {"default": ZDR}, reroute=(("mini", SECRET),)), "reroute"),  # type: ignore[arg-type]
        (Tenant("acme", {"default": ZDR}, max_catalogue_age_days="7"), "max_catalogue_age_days"),  # type: ignore[arg-type]
        (Tenant("acme", {"default": ZDR}, credentials={"openai": SECRET}), "credentials"),  # type: ignore[arg-type]
        (Tenant("acme", {"default": ZDR}, credentials=(("openai", ((SECRET,),)),)), "credentials"),  # type: ignore[arg-type]
    ],
    ids=[
        "class a str",
        "class a list",
        "class of str",
        "classes a list",
        "class name",
        "default_class",
        "on_violation",
        "attest a str",
        "attest a set",
        "reroute a dict",
        "reroute alternatives",
        "max age a str",
        "credentials a dict",
        "credentials pairs",
    ],
)
def test_a_tenant_with_fields_of_the_wrong_type_is_refused(world: World, tenant: Tenant, says: str) -> None:
    message = refused(world, {"acme": tenant}.get, "acme")
    assert f"tenant 'acme': {says} " in message


@pytest.mark.parametrize(
    ("document", "says"),
    [
        (TenantDocument(b'classes.default = ["zdr"]', "row acme"), "policy is bytes, not str"),  # type: ignore[arg-type]
        (TenantDocument(123, "row acme"), "policy is int, not str"),  # type: ignore[arg-type]
        (TenantDocument(ACME, 123), "origin is int, not str"),  # type: ignore[arg-type]
        (TenantDocument(ACME, "row acme", "yaml"), "format 'yaml'"),  # type: ignore[arg-type]
        (TenantDocument(ACME, "row acme", SECRET), "format (not shown)"),  # type: ignore[arg-type]
    ],
    ids=["bytes", "int", "origin", "yaml", "format not shown"],
)
def test_a_tenant_document_that_is_not_one_is_refused(world: World, document: TenantDocument, says: str) -> None:
    message = refused(world, {"acme": document}.get, "acme")
    assert says in message


@pytest.mark.parametrize("error", [RecursionError(SECRET), ValueError(SECRET), KeyError(SECRET)])
def test_a_provider_that_raises_is_refused_by_the_class_of_its_error(world: World, error: Exception) -> None:
    def provider(name: str) -> TenantDocument:
        raise error

    message = refused(world, provider, "acme")
    assert message.endswith(f"({type(error).__name__})")


def test_a_config_error_an_apps_provider_raises_is_named_by_its_class(world: World) -> None:
    """A provider that builds its tenants in code, as docs/configuration.md shows, checks a stored value with
    parse_requirements: the ConfigError it raises quotes the value (a key pasted in the wrong column, say)."""

    def provider(name: str) -> Tenant:
        return Tenant(name, {"default": parse_requirements(["no_training", SECRET])})

    message = refused(world, provider, "acme")
    assert message.endswith("(ConfigError)"), message


def test_a_good_tenant_in_code_still_serves(world: World) -> None:
    tenant = Tenant("acme", {"default": ZDR, "pii": ZDR}, attest=frozenset({"openai:zdr"}), reroute=(("x", ("mini",)),))
    with world.client({"acme": tenant}.get) as client:
        assert client.chat("mini", "hello", tenant="acme").text == world.app.text


# -- a stored policy's values are never quoted ----------------------------------------------

#: A tenant that requires nothing says so: the values below are wrong on their own.
CLASSES = "classes.default = []\n"
STORED_VALUES = [
    pytest.param(
        f'classes.default = ["zdr", "{SECRET}"]',
        "tenants.v.classes.default: an item is not a requirement",
        "valid requirements: no_training",
        id="requirement",
    ),
    pytest.param(
        CLASSES + f'attest.openai = ["{SECRET}"]',
        "tenants.v.attest.openai: an item is not an attestation",
        "openai attestations: baa",
        id="attestation",
    ),
    pytest.param(
        CLASSES + f'attest.{SECRET} = ["zdr"]',
        "tenants.v.attest.(a key not shown)",
        "vendors: ",
        id="attestation-vendor",
    ),
    pytest.param(
        CLASSES + f'on_violation = "{SECRET}"',
        "bad on_violation (a value not shown",
        "refuse or reroute",
        id="on-violation",
    ),
    pytest.param(
        CLASSES + f'default_class = "{SECRET}"',
        "default_class (a value not shown",
        "classes: default",
        id="default-class",
    ),
    pytest.param(
        CLASSES + f'reroute."openai/*" = ["{SECRET}"]',
        "reroute alternative (a value not shown",
        "targets: mini",
        id="reroute",
    ),
    pytest.param(f"{SECRET} = 1", "unknown key tenants.v.(a key not shown)", "valid keys: classes", id="unknown-key"),
]


def test_a_stored_credentials_vendor_that_looks_like_a_key_id_is_not_quoted(world: World) -> None:
    """An AWS access key id where the vendor goes looks like an environment variable's name (capitals and digits):
    it was quoted, while the same key under attest was not."""
    key_id = "AKIACANARY7STORED"
    text = f'classes.default = ["zdr"]\ncredentials = {{{key_id} = {{api_key = "ACME_KEY"}}}}'
    message = refused(world, TenantStore(lambda name: TenantDocument(text, "table t, tenant 'v'")), "v")
    assert key_id not in message and "unknown vendor (the key is not shown)" in message, message


@pytest.mark.parametrize(("text", "says", "hint"), STORED_VALUES)
def test_a_stored_policys_wrong_value_is_named_by_its_place_never_quoted(
    world: World, tmp_path: Path, text: str, says: str, hint: str
) -> None:
    """Each quoted the stored value (a secret pasted in the wrong place, say) in the refusal and `privsdk check`;
    the policy file, the operator's own, still quotes what it finds wrong."""
    message = refused(world, TenantStore(lambda name: TenantDocument(text, "table t, tenant 'v'")), "v")
    assert says in message and hint in message, message
    config = tmp_path / "privsdk.toml"
    config.write_text(f"[targets.mini]\noffering = 'openai.api'\nmodel = 'gpt-4o-mini'\n[tenants.v]\n{text}\n")
    with pytest.raises(ConfigError) as caught:
        load_policy({"PRIVSDK_CONFIG": str(config)})
    assert SECRET in str(caught.value)


def test_check_never_quotes_a_stored_value(world: World, tmp_path: Path) -> None:
    db = tmp_path / "tenants.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE privsdk_tenants (name TEXT PRIMARY KEY, policy TEXT NOT NULL)")
        conn.execute("INSERT INTO privsdk_tenants VALUES ('v', ?)", (f'classes.default = ["{SECRET}"]',))
    conn.close()
    result = run_cli("check", PRIVSDK_CONFIG=str(world.config), PRIVSDK_TENANTS=f"sqlite://{db}")
    assert result.returncode == 2 and "tenants.v.classes.default: an item is not a requirement" in result.stderr
    assert SECRET not in result.stdout + result.stderr


# -- tenant names ---------------------------------------------------------------------------


def test_a_name_with_a_trailing_newline_is_no_tenant_name(world: World) -> None:
    world.write("acme", ACME)
    asked: list[str] = []

    def provider(name: str) -> TenantDocument | None:
        asked.append(name)
        return DirectoryTenants(str(world.tenants))(name)

    message = refused(world, TenantStore(provider), "acme\n")
    assert "not a tenant name" in message and asked == []
    assert DirectoryTenants(str(world.tenants))("acme\n") is None  # no DIR/acme\n.toml is ever opened
    (world.tenants / "acme\n.toml").write_text(ACME, encoding="utf-8")
    assert DirectoryTenants(str(world.tenants)).names() == ["acme"]


def test_a_policy_file_tenant_named_with_a_trailing_newline_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "privsdk.toml"
    config.write_text('[tenants."acme\\n"]\nclasses.default = ["zdr"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="bad tenant name"):
        load_policy({"PRIVSDK_CONFIG": str(config)})


def test_sql_identifiers_with_a_trailing_newline_are_refused() -> None:
    with pytest.raises(ConfigError, match="bad table"):
        SqlTenants(lambda: sqlite3.connect(":memory:"), table="tenants\n")


def test_a_relative_tenant_directory_stays_the_one_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``PRIVSDK_TENANTS=dir://tenants`` was joined to the working directory at each load: after a ``chdir`` and an
    invalidation, the same store read another directory's tenants (here one that requires nothing)."""
    from privsdk.decision import decide

    for root, text in (
        ("first", 'classes.default = ["no_training", "region=eu"]\n'),
        ("second", "classes.default = []\n"),
    ):
        (tmp_path / root / "tenants").mkdir(parents=True)
        (tmp_path / root / "tenants" / "acme.toml").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path / "first")
    policy = load_policy({"PRIVSDK_TENANTS": "dir://tenants"})
    assert decide(policy, "openai/gpt-4o-mini", tenant="acme").outcome == "refuse"
    monkeypatch.chdir(tmp_path / "second")
    assert isinstance(policy.tenants, TenantStore)
    policy.tenants.invalidate("acme")
    assert decide(policy, "openai/gpt-4o-mini", tenant="acme").outcome == "refuse"
