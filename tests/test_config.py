"""``privsdk.config.load_policy``: the environment, the policy file, and every mistake as one clear ConfigError.

Expected values come from docs/configuration.md, privsdk/example_policy.toml and the
meaning of the catalogue (e.g. openai.api keeps abuse logs up to 30 days).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from privsdk.config import load_policy
from privsdk.decision import decide
from privsdk.errors import ConfigError
from privsdk.policy import Policy
from tests.conftest import EXAMPLE_CONFIG, EXAMPLE_TARGETS, run_cli

#: A comment put on the line a file error must point at (the loader ignores comments).
MARK = "# <-"


WriteConfig = Callable[[str], Path]


# -- helpers ------------------------------------------------------------------


def load(environ: dict[str, str]) -> Policy:
    """The policy for exactly these variables."""
    return load_policy(environ=environ, catalogue=None)


def load_file(path: Path, **env: str) -> Policy:
    """The policy for a file plus other PRIVSDK_* variables."""
    return load({"PRIVSDK_CONFIG": str(path), **env})


def config_error(environ: dict[str, str]) -> str:
    """The one-line message of the ConfigError these variables raise."""
    with pytest.raises(ConfigError) as info:
        load(environ)
    return str(info.value)


def requirements(policy: Policy, tenant: str, data_class: str) -> list[str]:
    """A data class's requirements as users write them."""
    return [str(r) for r in policy.tenants[tenant].classes[data_class]]


def marked_line(text: str) -> int:
    """The 1-based number of the only line carrying MARK."""
    lines = [n for n, line in enumerate(text.splitlines(), 1) if MARK in line]
    assert len(lines) == 1, "a file case must mark exactly one line"
    return lines[0]


# -- no PRIVSDK_CONFIG --------------------------------------------------------


@pytest.mark.parametrize(
    ("require", "expected"),
    [
        ("", []),
        ("zdr", ["zdr"]),
        ("no_training,zdr,region=eu", ["no_training", "zdr", "region=eu"]),
        (" no_training , max_retention_days=30 ", ["no_training", "max_retention_days=30"]),
    ],
)
def test_environment_only_gives_one_default_tenant_and_class(require: str, expected: list[str]) -> None:
    """Without a file there is one tenant 'default' whose class 'default' holds PRIVSDK_REQUIRE."""
    policy = load({"PRIVSDK_REQUIRE": require})
    assert list(policy.tenants) == ["default"]
    assert policy.default_tenant == "default"
    tenant = policy.tenants["default"]
    assert list(tenant.classes) == ["default"]
    assert tenant.default_class == "default"
    assert requirements(policy, "default", "default") == expected
    assert dict(policy.targets) == {}


@pytest.mark.parametrize(
    ("attest", "expected"),
    [
        ("openai:zdr", {"openai:zdr"}),
        ("openai:zdr,mistral:plan=scale,mistral:zdr", {"openai:zdr", "mistral:plan=scale", "mistral:zdr"}),
        (
            "cohere:plan=paid,cohere:training_opt_out,cohere:zdr,bedrock:region=eu",
            {"cohere:plan=paid", "cohere:training_opt_out", "cohere:zdr", "bedrock:region=eu"},
        ),
    ],
)
def test_privsdk_attest_lands_in_the_default_tenants_attest(attest: str, expected: set[str]) -> None:
    """PRIVSDK_ATTEST's vendor:attestation names become the default tenant's account attestations."""
    policy = load({"PRIVSDK_ATTEST": attest})
    assert policy.tenants["default"].attest == expected


@pytest.mark.parametrize(("value", "expected"), [("", "refuse"), ("refuse", "refuse"), ("reroute", "reroute")])
def test_privsdk_on_violation_sets_the_tenants_on_violation(value: str, expected: str) -> None:
    """PRIVSDK_ON_VIOLATION chooses refuse or reroute; refuse is the default."""
    env = {"PRIVSDK_ON_VIOLATION": value} if value else {}
    assert load(env).tenants["default"].on_violation == expected


@pytest.mark.parametrize("usage", ["sqlite", "sqlite:///tmp/x.db", "jsonl:///tmp/x.jsonl", "otlp", "none"])
def test_privsdk_usage_accepts_every_documented_form(usage: str) -> None:
    """Each documented PRIVSDK_USAGE form is accepted and kept on the policy."""
    assert load({"PRIVSDK_USAGE": usage}).usage == usage


def test_privsdk_usage_defaults_to_sqlite() -> None:
    """Without PRIVSDK_USAGE, usage records go to sqlite (the documented default)."""
    assert load({}).usage == "sqlite"


# -- bad environment values ---------------------------------------------------

ENV_ERRORS = [
    pytest.param(
        {"PRIVSDK_REQUIRE": "zdrr"},
        "PRIVSDK_REQUIRE",
        ["'zdrr'", "no_training", "max_retention_days=N", "hipaa_baa"],
        id="unknown-requirement",
    ),
    pytest.param(
        {"PRIVSDK_REQUIRE": "max_retention_days=abc"},
        "PRIVSDK_REQUIRE",
        ["'abc'", "max_retention_days=3"],  # shows a valid whole-number example
        id="retention-not-a-number",
    ),
    pytest.param(
        {"PRIVSDK_REQUIRE": "region=mars"},
        "PRIVSDK_REQUIRE",
        ["mars", "eu", "apac", "jp", "br"],
        id="unknown-geography",
    ),
    pytest.param(
        {"PRIVSDK_ON_VIOLATION": "ignore"},
        "PRIVSDK_ON_VIOLATION",
        ["'ignore'", "refuse", "reroute"],
        id="bad-on-violation",
    ),
    pytest.param(
        {"PRIVSDK_USAGE": "postgres://x"},
        "PRIVSDK_USAGE",
        ["postgres://x", "sqlite:///", "jsonl:///", "otlp", "none"],
        id="bad-usage",
    ),
    pytest.param(
        {"PRIVSDK_REQUIRES": "zdr"},
        "PRIVSDK_REQUIRES",
        ["PRIVSDK_CONFIG", "PRIVSDK_ATTEST", "PRIVSDK_TENANT", "PRIVSDK_USAGE"],
        id="misspelt-variable",
    ),
    pytest.param(
        {"PRIVSDK_ATTEST": "nosuch:zdr"},
        "PRIVSDK_ATTEST",
        ["'nosuch'", "openai", "mistral", "selfhosted"],
        id="attest-unknown-vendor",
    ),
    pytest.param(
        {"PRIVSDK_ATTEST": "mistral:scale"},
        "PRIVSDK_ATTEST",
        ["'scale'", "plan=scale", "training_opt_out"],
        id="attest-unknown-attestation",
    ),
    pytest.param(
        {"PRIVSDK_ATTEST": "openaizdr"},
        "PRIVSDK_ATTEST",
        ["'openaizdr'", "openai:zdr"],  # shows the vendor:name form
        id="attest-malformed",
    ),
    pytest.param(
        {"PRIVSDK_ATTEST": "openai:region=eu,openai:region=us"},
        "PRIVSDK_ATTEST",
        ["openai:region=eu", "openai:region=us"],
        id="attest-conflict",
    ),
    pytest.param(
        {"PRIVSDK_ATTEST": "mistral:zdr"},
        "PRIVSDK_ATTEST",
        ["mistral:zdr", "mistral:plan=scale"],
        id="attest-missing-prerequisite",
    ),
    pytest.param(
        {"PRIVSDK_TENANT": "nobody"},
        "PRIVSDK_TENANT",
        ["'nobody'", "default"],
        id="tenant-unknown-without-file",
    ),
    pytest.param(
        {"PRIVSDK_CONFIG": str(EXAMPLE_CONFIG), "PRIVSDK_TENANT": "nobody"},
        "PRIVSDK_TENANT",
        ["'nobody'", "acme", "globex"],
        id="tenant-not-in-file",
    ),
]


@pytest.mark.parametrize(("environ", "variable", "fragments"), ENV_ERRORS)
def test_bad_variable_names_the_variable_and_the_valid_choices(
    environ: dict[str, str], variable: str, fragments: list[str]
) -> None:
    """A bad PRIVSDK_* value is a ConfigError starting with the variable and listing what would be valid."""
    message = config_error(environ)
    assert message.startswith(f"{variable}: ")
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("days", ["²", "3²"])
def test_retention_with_a_non_ascii_digit_is_a_config_error(days: str) -> None:
    """max_retention_days with a character that only looks like a digit is a ConfigError, not a crash."""
    message = config_error({"PRIVSDK_REQUIRE": f"max_retention_days={days}"})
    assert message.startswith("PRIVSDK_REQUIRE: ")


# -- bad policy files ----------------------------------------------------------

FILE_ERRORS = [
    pytest.param(
        f'[tenants.acme]\nclasses.default = ["no_training"]\non_violation = refuse  {MARK}\n',
        ["invalid TOML"],
        id="toml-syntax",
    ),
    pytest.param(
        f'version = 2  {MARK}\n\n[tenants.acme]\nclasses.default = ["zdr"]\n',
        ["'version'", "attest", "targets", "tenants"],
        id="unknown-top-level-key",
    ),
    pytest.param(
        f'[tenants.acme]\nclasses.default = ["zdr"]\non_violaton = "refuse"  {MARK}\n',
        ["on_violaton", "on_violation", "default_class", "max_catalogue_age_days"],
        id="unknown-tenant-key",
    ),
    pytest.param(
        f'[targets.mini]\noffering = "openai.api"\nmodle = "gpt-4o-mini"  {MARK}\n',
        ["modle", "model", "offering", "endpoint"],
        id="unknown-target-key",
    ),
    pytest.param(
        f'[targets.mini]\noffering = "openai.chat"  {MARK}\nmodel = "gpt-4o-mini"\n',
        ["'openai.chat'", "openai.api", "azure.openai"],
        id="unknown-offering",
    ),
    pytest.param(
        f'[targets.claude]\noffering = "openai.api"\nmodel = "claude-3"  {MARK}\n',
        ["'claude-3'", "openai.api", "gpt-*"],
        id="model-not-served",
    ),
    pytest.param(
        f'[targets.eu]\noffering = "azure.openai"\nmodel = "gpt-4o"\nattest = ["zdr"]  {MARK}\n',
        ["'zdr'", "azure.openai", "azure:deployment=data_zone_eu"],
        id="target-attest-not-allowed",
    ),
    # a list written as one string: the example fits the key (it showed requirements for every key)
    pytest.param(
        f'[tenants.acme]\nclasses.default = "zdr"  {MARK}\n',
        ["must be a list of strings", '["no_training", "zdr"]'],
        id="classes-not-a-list",
    ),
    pytest.param(
        f'[attest]\nopenai = "zdr"  {MARK}\n',
        ["must be a list of strings", "the vendor's attestations"],
        id="attest-not-a-list",
    ),
    pytest.param(
        f'[tenants.acme]\nclasses.default = []\non_violation = "reroute"\nreroute."openai/*" = "azure-eu"  {MARK}\n',
        ["must be a list of strings", "names of [targets.NAME]"],
        id="reroute-not-a-list",
    ),
    pytest.param(
        f'[targets."openai/mini"]  {MARK}\noffering = "openai.api"\nmodel = "gpt-4o-mini"\n',
        ["'openai/mini'", "no '/'"],
        id="target-name-with-slash",
    ),
    pytest.param(
        '[targets.mini]\noffering = "openai.api"\nmodel = "gpt-4o-mini"\n\n'
        '[tenants.acme]\nclasses.default = []\non_violation = "reroute"\n'
        f'[tenants.acme.reroute]\n"openai/*" = ["azure-eu"]  {MARK}\n',
        ["'azure-eu'", "mini", "vendor/model"],
        id="reroute-alternative-unknown",
    ),
    pytest.param(
        f'[tenants.acme]\ndefault_class = "main"  {MARK}\nclasses.default = []\nclasses.pii = ["zdr"]\n',
        ["'main'", "default, pii"],
        id="default-class-not-a-class",
    ),
    pytest.param(
        f'[tenants.acme]\nclasses.default = []\non_violation = "ignore"  {MARK}\n',
        ["'ignore'", "refuse", "reroute"],
        id="bad-on-violation",
    ),
    pytest.param(
        f"[tenants.acme]\nclasses.default = []\nmax_catalogue_age_days = -1  {MARK}\n",
        ["max_catalogue_age_days"],
        id="negative-catalogue-age",
    ),
    pytest.param(
        '# An EU tenant\n\n[tenants.acme]\nclasses.default = ["no_training"]\n'
        f'classes.pii = ["no_training", "zdrr", "region=eu"]  {MARK}\n',
        ["'zdrr'", "no_training", "max_retention_days=N"],
        id="unknown-requirement-in-class",
    ),
    pytest.param(
        f'[attest]\nopenai = ["zdr"]\nmistral = ["scale"]  {MARK}\n',
        ["'scale'", "plan=scale", "training_opt_out"],
        id="unknown-account-attestation",
    ),
]


@pytest.mark.parametrize(("text", "fragments"), FILE_ERRORS)
def test_file_error_names_file_and_line(write_config: WriteConfig, text: str, fragments: list[str]) -> None:
    """A mistake in the policy file is a ConfigError starting with file:line of the offending line."""
    path = write_config(text)
    message = config_error({"PRIVSDK_CONFIG": str(path)})
    assert message.startswith(f"{path}:{marked_line(text)}: ")
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    "text",
    [
        # the bad key or value also appears earlier in the file: the error still names the bad line
        pytest.param(
            f'[attest]\nopenai = ["zdr"]\n\n[targets.eu]\noffering = "azure.openai"\nmodel = "gpt-4o"\n'
            f'attest = ["zdr"]  {MARK}\n',
            id="target-attest-also-in-account-attest",
        ),
        pytest.param(
            '[targets.claude-vertex]\noffering = "vertex.partner"\nmodel = "claude-3"\n\n'
            f'[targets.claude-openai]\noffering = "openai.api"\nmodel = "claude-3"  {MARK}\n',
            id="model-also-used-by-an-earlier-target",
        ),
        pytest.param(
            '[tenants.acme]\nclasses.default = []\non_violation = "reroute"\n\n'
            f'[tenants.globex]\nclasses.default = []\non_violation = "ignore"  {MARK}\n',
            id="on-violation-of-second-tenant",
        ),
        pytest.param(
            '[tenants.acme]\nclasses.default = []\ndefault_class = "default"\n\n'
            f'[tenants.globex]\nclasses.default = []\ndefault_class = "main"  {MARK}\n',
            id="default-class-of-second-tenant",
        ),
        pytest.param(
            "[tenants.acme]\nclasses.default = []\nmax_catalogue_age_days = 30\n\n"
            f"[tenants.globex]\nclasses.default = []\nmax_catalogue_age_days = -1  {MARK}\n",
            id="catalogue-age-of-second-tenant",
        ),
        # an unknown key written as a table prefix or a dotted key
        pytest.param(
            f'[attest]\nopenai = ["zdr"]\n\n[tenant.acme]  {MARK}\nclasses.default = ["zdr"]\n',
            id="top-level-typo-in-table-header",
        ),
        pytest.param(
            f'[tenants.acme]\nclasses.default = ["zdr"]\nclass.pii = ["zdr"]  {MARK}\n',
            id="tenant-typo-in-dotted-key",
        ),
    ],
)
def test_file_error_names_the_offending_line_not_an_earlier_mention(write_config: WriteConfig, text: str) -> None:
    """file:line names the line that is wrong, inside the table being checked, whatever else the file says."""
    path = write_config(text)
    assert config_error({"PRIVSDK_CONFIG": str(path)}).startswith(f"{path}:{marked_line(text)}: ")


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    """PRIVSDK_CONFIG naming no file is a ConfigError naming that path and the variable to fix."""
    missing = tmp_path / "nowhere.toml"
    message = config_error({"PRIVSDK_CONFIG": str(missing)})
    assert message.startswith(f"{missing}: ")
    assert "PRIVSDK_CONFIG" in message


NOT_UTF8 = b'[tenants.acme]\nclasses.default = ["zdr"]\n# caf\xe9 (latin-1)\n'


def test_non_utf8_file_names_the_file(tmp_path: Path) -> None:
    """A file that is not UTF-8 is a ConfigError naming the file and the encoding it needs."""
    path = tmp_path / "latin1.toml"
    path.write_bytes(NOT_UTF8)
    message = config_error({"PRIVSDK_CONFIG": str(path)})
    assert message.startswith(f"{path}")
    assert "UTF-8" in message


def test_non_utf8_file_names_the_line_of_the_bad_byte(tmp_path: Path) -> None:
    """A non-UTF-8 byte is reported at file:line of the line that holds it."""
    path = tmp_path / "latin1.toml"
    path.write_bytes(NOT_UTF8)
    assert config_error({"PRIVSDK_CONFIG": str(path)}).startswith(f"{path}:3: ")


# -- the file is the floor ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "env_require", "tenant", "data_class", "expected"),
    [
        pytest.param(
            '[tenants.acme]\nclasses.default = ["max_retention_days=7"]\n',
            "max_retention_days=30",
            "acme",
            "default",
            ["max_retention_days=7", "max_retention_days=30"],
            id="weaker-env-retention-kept-beside-file",
        ),
        pytest.param(
            '[tenants.acme]\nclasses.default = ["no_training", "zdr"]\n',
            "region=eu",
            "acme",
            "default",
            ["no_training", "zdr", "region=eu"],
            id="env-adds-to-file",
        ),
        pytest.param(
            '[tenants.acme]\ndefault_class = "general"\nclasses.general = ["no_training"]\nclasses.pii = ["zdr"]\n',
            "hipaa_baa",
            "acme",
            "general",
            ["no_training", "hipaa_baa"],
            id="added-to-the-tenants-own-default-class",
        ),
        pytest.param(
            '[tenants.acme]\ndefault_class = "general"\nclasses.general = ["no_training"]\nclasses.pii = ["zdr"]\n',
            "hipaa_baa",
            "acme",
            "pii",
            ["zdr"],
            id="other-classes-untouched",
        ),
    ],
)
def test_privsdk_require_adds_to_the_default_class_and_removes_nothing(
    write_config: WriteConfig, text: str, env_require: str, tenant: str, data_class: str, expected: list[str]
) -> None:
    """PRIVSDK_REQUIRE is added to each tenant's default class; the file's requirements all stay."""
    policy = load_file(write_config(text), PRIVSDK_REQUIRE=env_require)
    assert requirements(policy, tenant, data_class) == expected


def test_privsdk_require_reaches_every_tenant_of_the_example() -> None:
    """Every tenant's default class gains PRIVSDK_REQUIRE, on top of what the example file sets."""
    policy = load_file(EXAMPLE_CONFIG, PRIVSDK_REQUIRE="hipaa_baa")
    assert requirements(policy, "acme", "default") == ["no_training", "hipaa_baa"]
    assert requirements(policy, "globex", "default") == ["no_training", "max_retention_days=30", "hipaa_baa"]
    assert requirements(policy, "acme", "pii") == ["no_training", "zdr", "region=eu"]


@pytest.mark.parametrize(
    ("file_retention", "outcome"),
    [
        (None, "allow"),  # openai.api keeps abuse logs up to 30 days: a 30-day cap alone is met
        (7, "refuse"),  # the file's 7-day cap stays in force under the env's 30
    ],
)
def test_env_cannot_weaken_the_files_retention_cap(
    write_config: WriteConfig, file_retention: int | None, outcome: str
) -> None:
    """A 30-day PRIVSDK_REQUIRE next to a file's 7-day cap still refuses a 30-day-retention target."""
    reqs = f'"max_retention_days={file_retention}"' if file_retention is not None else ""
    path = write_config(f"[tenants.acme]\nclasses.default = [{reqs}]\n")
    policy = load_file(path, PRIVSDK_REQUIRE="max_retention_days=30")
    decision = decide(policy, "openai/gpt-4o-mini")
    assert decision.outcome == outcome
    if outcome == "refuse":
        assert [u.requirement for u in decision.unmet] == [f"max_retention_days={file_retention}"]


ACCOUNTS = """\
[attest]
openai = ["zdr"]
mistral = ["plan=scale"]

[tenants.acme]
classes.default = ["zdr"]

[tenants.globex]
classes.default = ["zdr"]
attest.openai = ["baa"]
"""


@pytest.mark.parametrize(
    ("tenant", "expected"),
    [
        ("acme", {"openai:zdr", "mistral:plan=scale", "cohere:plan=paid", "openai:modified_abuse_monitoring"}),
        ("globex", {"openai:baa", "mistral:plan=scale", "cohere:plan=paid"}),
    ],
)
def test_tenant_attest_replaces_the_defaults_for_its_vendor_only(
    write_config: WriteConfig, tenant: str, expected: set[str]
) -> None:
    """PRIVSDK_ATTEST adds to [attest] where the file allows it; a tenant's attest.openai replaces both for openai
    and nothing else."""
    policy = load_file(
        write_config("allow_env_attest = true\n" + ACCOUNTS),
        PRIVSDK_ATTEST="cohere:plan=paid,openai:modified_abuse_monitoring",
    )
    assert policy.tenants[tenant].attest == expected


@pytest.mark.parametrize(("tenant", "outcome"), [(None, "allow"), ("acme", "allow"), ("globex", "refuse")])
def test_tenant_own_account_decides_zdr(write_config: WriteConfig, tenant: str | None, outcome: str) -> None:
    """openai:zdr in [attest] lets the default tenant use gpt-4o-mini under zdr; globex's own account lacks it."""
    policy = load_file(write_config('default_tenant = "acme"\n' + ACCOUNTS))
    decision = decide(policy, "openai/gpt-4o-mini", tenant=tenant)
    assert decision.outcome == outcome
    assert decision.tenant == (tenant or "acme")
    if outcome == "refuse":
        assert [u.requirement for u in decision.unmet] == ["zdr"]


OWN_KEY = """\
allow_env_attest = true

[attest]
openai = ["zdr"]
mistral = ["plan=scale"]

[tenants.acme]
classes.default = ["zdr"]
credentials.openai = { api_key = "ACME_OPENAI_API_KEY" }

[tenants.globex]
classes.default = ["zdr"]
attest.openai = ["zdr"]
credentials.openai = { api_key = "GLOBEX_OPENAI_API_KEY" }

[tenants.initech]
classes.default = ["zdr"]
"""


def test_a_tenant_with_its_own_key_gets_none_of_the_deployments_attestations_for_that_vendor(
    write_config: WriteConfig,
) -> None:
    """Its own credentials.openai is its own OpenAI account: neither [attest].openai nor PRIVSDK_ATTEST's openai
    (both the deployment's account) holds for it; its own attest.openai does, and other vendors' defaults still do."""
    keys = {"ACME_OPENAI_API_KEY": "sk-acme", "GLOBEX_OPENAI_API_KEY": "sk-globex"}
    policy = load_file(write_config(OWN_KEY), PRIVSDK_ATTEST="openai:modified_abuse_monitoring", **keys)
    assert policy.tenants["acme"].attest == {"mistral:plan=scale"}
    assert policy.tenants["globex"].attest == {"openai:zdr", "mistral:plan=scale"}
    assert policy.tenants["initech"].attest == {"openai:zdr", "openai:modified_abuse_monitoring", "mistral:plan=scale"}
    outcomes = {t: decide(policy, "openai/gpt-4o-mini", tenant=t).outcome for t in ("acme", "globex", "initech")}
    assert outcomes == {"acme": "refuse", "globex": "allow", "initech": "allow"}


CROSS_ACCOUNTS = """
[attest]
bedrock = ["data_retention_mode=default", "region=eu"]
azure = ["deployment=regional_eu"]

[targets.cohere-br]
offering = "cohere.bedrock"
model = "cohere.command-r-v1:0"
region = "eu-west-1"

[targets.mistral-az]
offering = "mistral.azure"
model = "mistral-large-2411"
endpoint = "https://mis.services.ai.azure.com"

[tenants.aws_via_cohere]
classes.default = ["no_provider_sharing"]
credentials.cohere = { aws_access_key_id = "T_AWS_ID", aws_secret_access_key = "T_AWS_SECRET" }

[tenants.azure_via_mistral]
classes.default = ["region=eu"]
credentials.mistral = { azure_api_key = "T_AZ_KEY" }

[tenants.cohere_saas_key]
classes.default = ["region=eu"]
credentials.cohere = { api_key = "T_CO_KEY" }
"""


def test_a_tenants_own_aws_or_azure_key_under_cohere_or_mistral_is_its_own_bedrock_or_azure_account(
    write_config: WriteConfig,
) -> None:
    """credentials.cohere's AWS keys reach Cohere on the tenant's own Bedrock account, and credentials.mistral's
    azure_api_key Mistral on its own Azure resource; those offerings are attested as bedrock: and azure:, so the
    deployment's [attest].bedrock / .azure held for them and the calls were allowed. A key of the vendor's own
    API (cohere's api_key) leaves the other vendors' defaults as they were."""
    env = {"T_AWS_ID": "AKIAEXAMPLE", "T_AWS_SECRET": "x", "T_AZ_KEY": "k", "T_CO_KEY": "co"}
    policy = load_file(write_config(CROSS_ACCOUNTS), **env)
    assert policy.tenants["aws_via_cohere"].attest == {"azure:deployment=regional_eu"}
    assert policy.tenants["azure_via_mistral"].attest == {"bedrock:data_retention_mode=default", "bedrock:region=eu"}
    assert policy.tenants["cohere_saas_key"].attest == {
        "azure:deployment=regional_eu",
        "bedrock:data_retention_mode=default",
        "bedrock:region=eu",
    }
    assert decide(policy, "cohere-br", tenant="aws_via_cohere").outcome == "refuse"
    assert decide(policy, "mistral-az", tenant="azure_via_mistral").outcome == "refuse"
    assert decide(policy, "mistral-az", tenant="cohere_saas_key").outcome == "allow"


def test_an_empty_tenant_or_class_name_is_refused_never_the_default(write_config: WriteConfig) -> None:
    """decide(tenant="") decided for the default tenant, data_class="" for its default class: "" is a name no
    tenant or class has, not "none named"."""
    policy = load_file(write_config('default_tenant = "acme"\n' + ACCOUNTS))
    assert decide(policy, "openai/gpt-4o-mini").tenant == "acme"
    for tenant, data_class in (("", None), ("globex", "")):
        decision = decide(policy, "openai/gpt-4o-mini", tenant=tenant, data_class=data_class)
        assert decision.outcome == "refuse" and decision.tenant != "acme"
        assert "''" in (decision.reason or ""), decision.reason


# -- tenants and the example ----------------------------------------------------


@pytest.mark.parametrize(("chosen", "expected"), [(None, "acme"), ("acme", "acme"), ("globex", "globex")])
def test_privsdk_tenant_selects_the_default_tenant(chosen: str | None, expected: str) -> None:
    """PRIVSDK_TENANT picks the tenant used when a call names none; otherwise the file's default_tenant."""
    env = {"PRIVSDK_TENANT": chosen} if chosen else {}
    policy = load_file(EXAMPLE_CONFIG, **env)
    assert policy.default_tenant == expected
    assert decide(policy, "openai-mini").tenant == expected


def test_example_config_loads_its_tenants_and_targets() -> None:
    """privsdk/example_policy.toml loads: tenants acme and globex, the seven targets, their classes and rules."""
    policy = load_file(EXAMPLE_CONFIG)
    assert list(policy.tenants) == ["acme", "globex"]
    assert list(policy.targets) == EXAMPLE_TARGETS
    acme, globex = policy.tenants["acme"], policy.tenants["globex"]
    assert list(acme.classes) == ["default", "pii", "phi"]
    assert list(globex.classes) == ["default"]
    assert (acme.on_violation, globex.on_violation) == ("reroute", "refuse")
    assert {"openai:zdr", "openai:baa", "mistral:zdr"} <= acme.attest
    assert "openai:baa" in globex.attest and "openai:zdr" not in globex.attest
    assert policy.targets["azure-eu-gpt4o"].attest == {
        "azure:deployment=data_zone_eu",
        "azure:modified_abuse_monitoring",
    }


def test_privsdk_on_violation_overrides_the_file() -> None:
    """PRIVSDK_ON_VIOLATION applies to every tenant, whatever the file says."""
    policy = load_file(EXAMPLE_CONFIG, PRIVSDK_ON_VIOLATION="refuse")
    assert {t.on_violation for t in policy.tenants.values()} == {"refuse"}


# -- values that can hold secrets are never quoted ---------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("postgresql://app:CANARY-PW@db.internal:5432/app", "postgresql://db.internal:5432/app"),
        ("sqlite:///tmp/t.db?table=t&password=CANARY-PW", "sqlite:///tmp/t.db?..."),
        ("https://svc:pa/ss-CANARY-PW@proxy.corp/openai#CANARY-PW", "https://proxy.corp/openai?..."),
        ("svc:CANARY-PW@proxy.corp/x", "proxy.corp/x"),
        ("http://[::1]:8000/v1", "http://[::1]:8000/v1"),
        ("Bearer CANARY-PW://x", "the value (not shown: it is not a URL)"),
    ],
)
def test_shown_url_drops_user_info_query_and_fragment(value: str, shown: str) -> None:
    from privsdk.config import shown_url

    assert shown_url(value) == shown


def test_privsdk_usage_errors_never_show_user_info() -> None:
    message = config_error({"PRIVSDK_USAGE": "otlp://user:CANARY-PW@collector:4318?token=CANARY-PW"})
    assert message.startswith("PRIVSDK_USAGE: bad value 'otlp://collector:4318?...'")
    assert "CANARY" not in message


@pytest.mark.parametrize(
    ("env_name", "shown", "hint"),
    [
        ("ACME_COHERE_KEY", "ACME_COHERE_KEY", "set ACME_COHERE_KEY in the environment"),
        ("CANARYkq3ZP0x9mT7bQ2vW8yL4nR6sA1dF5gH0j", "not shown", "write the name of the variable that holds it"),
    ],
)
def test_a_missing_credential_names_its_variable_only_when_it_looks_like_one(
    env_name: str, shown: str, hint: str
) -> None:
    from privsdk.config import missing_credential

    error = missing_credential(
        "cohere", "api_key", env_name, where="t.toml", key_path="credentials.cohere.api_key", tenant="acme"
    )
    assert str(error).startswith("t.toml: tenant 'acme': cohere credential 'api_key' names ")
    assert shown in error.message and hint in (error.hint or "")
    if env_name.startswith("CANARY"):
        assert "CANARY" not in str(error) and "credentials.cohere.api_key" in str(error)


# -- what a call would refuse, loading refuses first (so `privsdk check` reports it) -------------------------------

LOAD_ERRORS = [
    pytest.param(
        f'[targets.x]\noffering = "openai.api"\nmodel = "gpt-4o"\noptions = {{ authh = "entra" }}  {MARK}\n',
        ["target 'x': option 'authh' means nothing for openai.api", "openai.api options: api"],
        id="option-misspelt",
    ),
    pytest.param(
        f'[targets.x]\noffering = "openai.api"\nmodel = "gpt-4o"\noptions = {{ api = "respones" }}  {MARK}\n',
        ["option api = 'respones' is not one openai.api takes", "chat_completions or responses"],
        id="option-value",
    ),
    pytest.param(
        f'[targets.x]\noffering = "openai.api"\nmodel = "gpt-4o"\noptions = {{ api = "sk-CANARY-1" }}  {MARK}\n',
        ["option api = a value (not shown)"],
        id="option-value-not-shown",
    ),
    pytest.param(
        f'[targets.x]\noffering = "cohere.saas"\nmodel = "command-r-plus"\noptions = {{ auth = "key" }}  {MARK}\n',
        ["option 'auth' means nothing for cohere.saas", "cohere.saas reads no options: remove options"],
        id="option-where-none-is-read",
    ),
    pytest.param(
        '[tenants.t]\nclasses.default = ["no_training"]\n'
        f'credentials.openai = {{ apikey = "ACME_OPENAI_API_KEY" }}  {MARK}\n',
        ["tenants.t.credentials.openai: 'apikey' is not a credential key for openai", "keys: api_key"],
        id="credential-key-misspelt",
    ),
    pytest.param(
        '[tenants.t]\nclasses.default = ["no_training"]\n'
        f'credentials.bedrock = {{ aws_access_key = "ACME_AWS_KEY_ID" }}  {MARK}\n',
        ["'aws_access_key' is not a credential key for bedrock", "aws_access_key_id, aws_secret_access_key"],
        id="credential-key-bedrock",
    ),
    pytest.param(
        f'[targets.x]\noffering = "openai.api"\nmodel = "gpt-4o"\nendpoint = "api.openai.com"  {MARK}\n',
        ["endpoint 'api.openai.com' is not a URL: it does not start with http:// or https://", "https://"],
        id="endpoint-without-scheme",
    ),
    pytest.param(
        '[targets.x]\noffering = "selfhosted.vllm"\nmodel = "llama"\n'
        f'endpoint = "http://user:sk-CANARY-2@10.0.0.5:80800/v1?key=CANARY"  {MARK}\n',
        ["endpoint 'http://10.0.0.5:80800/v1?...' is not a URL: the port is not a number from 0 to 65535"],
        id="endpoint-port",
    ),
    pytest.param(
        '[tenants.t]\nclasses.default = ["region=eu"]\n[targets.x]\noffering = "bedrock.runtime"\n'
        f'model = "anthropic.claude-3-haiku-20240307-v1:0"\nregion = "us-east-1"\nattest = ["region=eu"]  {MARK}\n',
        ["target 'x' declares region 'us-east-1' (us) but attests region=eu", "fix the target's region"],
        id="region-contradicts-its-attestation",
    ),
    pytest.param(
        '[attest]\nbedrock = ["region=eu"]\n[tenants.t]\nclasses.default = ["region=eu"]\n'
        f'[targets.x]  {MARK}\noffering = "bedrock.runtime"\nmodel = "anthropic.claude-3-haiku-20240307-v1:0"\n'
        'region = "us-east-1"\n',
        ["target 'x' declares region 'us-east-1' (us) but attests region=eu"],
        id="region-contradicts-the-account-attestation",
    ),
    pytest.param(  # sent as OpenAI-Project, where the guard refuses an organisation id: explain allowed it
        f'[targets.x]\noffering = "openai.api"\nmodel = "gpt-4o"\nproject = "org-approved"  {MARK}\n',
        ["target 'x': project 'org-approved' is not an OpenAI project id (proj_...)", "OPENAI_ORG_ID"],
        id="openai-project-an-organisation",
    ),
]


@pytest.mark.parametrize(("text", "fragments"), LOAD_ERRORS)
def test_a_setting_the_call_would_refuse_is_a_load_error(
    write_config: WriteConfig, text: str, fragments: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """privsdk.Client rejects these at the first call; loading the policy (and so `privsdk check`) rejects them."""
    path = write_config(text)
    message = config_error({"PRIVSDK_CONFIG": str(path)})
    assert message.startswith(f"{path}:{marked_line(text)}: "), message
    for fragment in fragments:
        assert fragment in message
    assert "CANARY" not in message
    from privsdk.cli import main

    monkeypatch.setenv("PRIVSDK_CONFIG", str(path))
    assert main(["check"]) == 2


def test_a_region_that_agrees_with_its_attestation_loads(write_config: WriteConfig) -> None:
    path = write_config(
        '[attest]\nbedrock = ["region=eu"]\n[tenants.t]\nclasses.default = ["region=eu"]\n'
        '[targets.x]\noffering = "bedrock.runtime"\nmodel = "anthropic.claude-3-haiku-20240307-v1:0"\n'
        'region = "eu-central-1"\noptions = { ca_bundle = "/etc/ssl/corp.pem" }\n'
        '[targets.y]\noffering = "azure.openai"\nmodel = "gpt-4o"\nendpoint = "https://contoso.openai.azure.com"\n'
        'options = { auth = "entra" }\n'
    )
    policy = load_file(path)
    assert decide(policy, "x", "chat", tenant="t").allowed


_SCOPED_TARGETS = {
    "vertex": (
        '[targets.v]\noffering = "vertex.gemini"\nmodel = "gemini-2.5-flash"\nproject = "acme"\n'
        'region = "us-central1"\n',
        "vertex",
        "region=eu",
        "acme",
    ),
    "azure": (
        '[targets.a]\noffering = "azure.openai"\nmodel = "gpt-4o"\nendpoint = "https://Contoso.openai.azure.com/"\n'
        'deployment = "d"\nregion = "eastus"\n',
        "azure",
        "deployment=regional_eu",
        "contoso",
    ),
}


@pytest.mark.parametrize("vendor", sorted(_SCOPED_TARGETS))
def test_a_region_attestation_scoped_to_the_targets_account_must_agree_with_its_region(
    vendor: str, write_config: WriteConfig
) -> None:
    """The load check read a target's account from Target.account, which only the guard sets (from a request):
    a region attestation scoped to the target's own project or resource skipped it, and `privsdk check` passed."""
    target, name, attest, account = _SCOPED_TARGETS[vendor]
    tenant = '[tenants.t]\nclasses.default = ["region=eu"]\n'
    path = write_config(f'[attest]\n{name} = ["{attest}@{account}"]\n' + target + tenant)
    with pytest.raises(ConfigError, match=f"declares region .* but attests {attest}"):
        load_file(path)
    assert run_cli("check", PRIVSDK_CONFIG=str(path), PRIVSDK_USAGE="none").returncode == 2
    # Scoped to another account, it says nothing of this target's.
    path = write_config(f'[attest]\n{name} = ["{attest}@someone-else"]\n' + target + tenant)
    assert load_file(path).targets


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("PRIVSDK_MAX_ATTEMPTS", "0", "a whole number, 1 or more"),
        ("PRIVSDK_MAX_ATTEMPTS", "three", "a whole number, 1 or more"),
        ("PRIVSDK_DEADLINE_S", "nan", "seconds, more than 0"),
        ("PRIVSDK_DEADLINE_S", "-5", "seconds, more than 0"),
        ("PRIVSDK_DEADLINE_S", "inf", "seconds, more than 0"),
        ("PRIVSDK_DEADLINE_S", "1_0", "in digits"),  # float() reads Python's digit separators
        ("PRIVSDK_DEADLINE_S", "1e-300", "from 0.01 to 86400"),  # every call would time out at once
        ("PRIVSDK_DEADLINE_S", "0.001", "from 0.01 to 86400"),
        ("PRIVSDK_USAGE_MAX_AGE_DAYS", "9" * 19, "up to 36500"),  # every record's prune failed: OverflowError
        ("PRIVSDK_DEBUG_CHAIN", "maybe", "1, true, yes or on; 0, false, no or off"),
        ("PRIVSDK_SDK_DEBUG_LOGS", "2", "1, true, yes or on; 0, false, no or off"),
    ],
)
def test_a_bad_limit_or_switch_is_a_load_error(
    variable: str, value: str, fragment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Client() refused these and `privsdk check` passed them; a switch's unknown spelling was silently off."""
    message = config_error({variable: value})
    assert message.startswith(f"{variable}: bad value {value!r}") and fragment in message
    from privsdk.cli import main

    monkeypatch.setenv(variable, value)
    assert main(["check"]) == 2


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({"PRIVSDK_USAGE_MAX_AGE_DAYS": "9" * 400}, "PRIVSDK_USAGE_MAX_AGE_DAYS: bad value '99999999999999999999'"),
        ({"PRIVSDK_USAGE_MAX_AGE_DAYS": "9" * 5000}, "PRIVSDK_USAGE_MAX_AGE_DAYS: bad value"),  # was a bare ValueError
        (
            {"PRIVSDK_TENANTS": "dir:///tmp?max_size=" + "9" * 5000},
            "PRIVSDK_TENANTS: max_size must be a whole number from 1 to",
        ),
        (
            {"PRIVSDK_TENANTS": "dir:///tmp?max_size=1&max_size=2"},
            "PRIVSDK_TENANTS: the dir:// store's setting max_size is given more than once",
        ),
        ({"PRIVSDK_TENANTS": "dir:///tmp?max_age_s=1e-300"}, "PRIVSDK_TENANTS: max_age_s must be a number of seconds"),
        ({"PRIVSDK_USAGE": "jsonl:////"}, "PRIVSDK_USAGE: a jsonl:/// usage store names a file"),
        ({"PRIVSDK_USAGE": "sqlite:///tmp/"}, "PRIVSDK_USAGE: a sqlite:/// usage store names a file"),
    ],
)
def test_a_number_out_of_range_or_a_store_path_with_no_file_is_a_load_error(environ: dict[str, str], says: str) -> None:
    """Each was accepted (then failed every usage record, or served a cache of any size) or raised a bare
    ValueError from int() past 4300 digits; each is a ConfigError naming the variable, its value cut short."""
    message = config_error(environ)
    assert message.startswith(says) and len(message) < 400, message


@pytest.mark.parametrize(
    ("value", "on"),
    [("1", True), ("true", True), ("Yes", True), (" ON ", True), ("", False), ("0", False), ("False", False),
     ("no", False), ("off", False)],
)  # fmt: skip
def test_one_reader_takes_the_usual_spellings_of_a_switch(value: str, on: bool) -> None:
    from privsdk.config import FLAGS, env_flag

    for variable in FLAGS:
        assert env_flag(variable, {variable: value}) is on
        load({variable: value})  # and loading accepts it
    assert env_flag("PRIVSDK_DEBUG_CHAIN", {}) is False


def test_the_option_and_credential_tables_agree_with_the_adapters() -> None:
    """Loading checks target options and credential keys with tables of its own (no adapter is imported to load a
    policy); they must say what the adapters themselves check when they are built."""
    from privsdk_bedrock.clients import CREDENTIAL_KEYS as BEDROCK_KEYS
    from privsdk_openai import config as openai_config
    from privsdk_vertex import CREDENTIAL_KEYS as VERTEX_KEYS

    from privsdk.catalogue import default_catalogue
    from privsdk.config import CREDENTIAL_KEYS, TARGET_OPTIONS

    cat = default_catalogue()
    assert set(CREDENTIAL_KEYS) == set(cat.vendor_names)
    assert set(TARGET_OPTIONS) <= {o for v in cat.all_vendors() for o in v.offerings}
    for offering, kind in openai_config.OFFERINGS.items():
        options = openai_config._OPTIONS[kind]
        assert TARGET_OPTIONS.get(offering, {}) == {k: tuple(v) for k, v in options.items()}, offering
        assert set(openai_config._CREDENTIALS[kind]) <= set(CREDENTIAL_KEYS[offering.partition(".")[0]]), offering
    assert CREDENTIAL_KEYS["bedrock"] == tuple(BEDROCK_KEYS)
    assert (CREDENTIAL_KEYS["vertex"], CREDENTIAL_KEYS["gemini"]) == (
        VERTEX_KEYS["vertex.gemini"],
        VERTEX_KEYS["gemini.api"],
    )


# -- a password in a URL is never shown, whatever characters it holds ------------------------------------------

#: Passwords holding each character that ends a URL's host early, or splits a PRIVSDK_ENDPOINTS entry.
PASSWORDS = ["S3cretCANARY?x9", "S3cretCANARY#x9", "S3cretCANARY/x9"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("https://proxyuser:S3cretCANARY?x9@llm-proxy.corp/v1", "https://... (not shown: "),
        ("https://proxyuser:S3cretCANARY#x9@llm-proxy.corp/v1", "https://... (not shown: "),
        ("https://llm-proxy.corp/v1?token=ab@S3cretCANARY", "https://... (not shown: "),
        ("https://proxyuser:S3cret@CANARY@llm-proxy.corp/v1", "https://llm-proxy.corp/v1"),
        ("https://llm-proxy.corp/v1?token=S3cretCANARY", "https://llm-proxy.corp/v1?..."),
    ],
)
def test_shown_url_strips_user_info_before_it_cuts_the_query(value: str, shown: str) -> None:
    """A password holding '?' or '#' was cut there, and its first part shown ('https://proxyuser:S3cret?...')."""
    from privsdk.config import shown_url

    assert shown_url(value).startswith(shown)
    assert "CANARY" not in shown_url(value) and "proxyuser" not in shown_url(value)


def _every_place_a_url_is_given(url: str, write_config: WriteConfig) -> list[str]:
    """The messages of the errors ``url`` raises as an endpoint: Client(endpoints=), PRIVSDK_ENDPOINTS, a target's
    endpoint, [endpoints], and privsdk explain --url."""
    import subprocess
    import sys

    from privsdk.client import Client
    from tests.conftest import clean_env

    messages = []
    for build in (
        lambda: Client(environ={}, usage="none", endpoints={"openai": url}),
        lambda: load({"PRIVSDK_ENDPOINTS": f"{url}=selfhosted.vllm"}),
        lambda: load_file(
            write_config(f'[targets.t]\noffering = "selfhosted.vllm"\nmodel = "m"\nendpoint = "{url}"\n')
        ),
        lambda: load_file(write_config(f'[endpoints]\n"{url}" = "selfhosted.vllm"\n')),
    ):
        with pytest.raises(ConfigError) as caught:
            build()
        messages.append(str(caught.value))
    done = subprocess.run(
        [sys.executable, "-m", "privsdk", "explain", "--url", url + "/chat/completions", "--model", "m"],
        env=clean_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    return [*messages, done.stderr]


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_password_holding_a_question_mark_hash_or_slash_is_never_shown(
    password: str, write_config: WriteConfig
) -> None:
    for message in _every_place_a_url_is_given(f"https://proxyuser:{password}@llm-proxy.corp.example/v1", write_config):
        assert "CANARY" not in message and "proxyuser" not in message, message
        assert "percent-encode" in message  # and says how to write it


@pytest.mark.parametrize(
    "value",
    [
        "https://proxyuser:S3cretCANARY,x9@llm-proxy.corp.example/v1=selfhosted.vllm",  # split at the ','
        "https://proxyuser:S3cretCANARY=x9@llm-proxy.corp.example/v1",  # =OFFERING forgotten: split at the password's
        "https://proxyuser:S3cretCANARY=x9.y@llm-proxy.corp.example",  # ... which then looks like OFFERING@ACCOUNT
        "http://127.0.0.1:8000/v1=selfhosted.vllm,S3cretCANARY",
    ],
)
def test_privsdk_endpoints_never_shows_a_piece_of_an_entry_that_split_wrong(value: str) -> None:
    """PRIVSDK_ENDPOINTS was split at ',' and '=' first, and the pieces shown ('https://proxyuser:S3cret is not
    URL=OFFERING')."""
    message = config_error({"PRIVSDK_ENDPOINTS": value})
    assert "CANARY" not in message and "proxyuser" not in message, message
    assert message.startswith("PRIVSDK_ENDPOINTS: entry ")
    assert "percent-encode" in message


def test_privsdk_endpoints_takes_a_password_holding_an_equals_sign() -> None:
    policy = load({"PRIVSDK_ENDPOINTS": "https://proxyuser:S3cret=x9@llm-proxy.corp.example/v1=selfhosted.vllm"})
    assert [(e.url, e.offering) for e in policy.endpoints] == [("https://llm-proxy.corp.example/v1", "selfhosted.vllm")]


@pytest.mark.parametrize("spec", ["openai.api@", "openai.api@ ", "openai.api@proj/x"])
def test_an_endpoint_scoped_to_an_empty_or_malformed_account_is_an_error(spec: str, write_config: WriteConfig) -> None:
    """PRIVSDK_ENDPOINTS=URL=openai.api@ was accepted (as no account) while PRIVSDK_ATTEST rejects the same form."""
    message = config_error({"PRIVSDK_ENDPOINTS": f"https://llm-proxy.corp.example/v1={spec}"})
    assert "account" in message and "openai.api@proj_abc" in message
    with pytest.raises(ConfigError, match="account"):
        load_file(write_config(f'[endpoints]\n"https://llm-proxy.corp.example/v1" = "{spec}"\n'))
    good = load({"PRIVSDK_ENDPOINTS": "https://llm-proxy.corp.example/v1=openai.api@proj_abc"})
    assert good.endpoints[0].account == "proj_abc"


@pytest.mark.parametrize(
    "value",
    [
        "http://gw.test/v1=selfhosted.vllm,http://gw.test/v1/=openai.api",
        "http://GW.test:80/v1=selfhosted.vllm,http://gw.test/v1=openai.api",
        "http://gw.test/v1=openai.api@proj_a,http://gw.test/v1=openai.api@proj_b",
        "http://gw.test/v1=openai.api,http://gw.test/v1=openai.api@proj_b",
    ],
)
def test_one_url_declared_for_two_offerings_or_accounts_is_an_error(value: str, write_config: WriteConfig) -> None:
    """The first of two declarations of one URL won, whichever it was: a request there was judged as self-hosted
    or as OpenAI by the order of PRIVSDK_ENDPOINTS' entries."""
    message = config_error({"PRIVSDK_ENDPOINTS": value})
    assert "http://gw.test/v1 is declared twice" in message and "declare each endpoint once" in message, message
    same = load({"PRIVSDK_ENDPOINTS": "http://gw.test/v1=selfhosted.vllm,http://gw.test:80/v1/=selfhosted.vllm"})
    assert {e.offering for e in same.endpoints} == {"selfhosted.vllm"}
    target = '[targets.local]\noffering = "selfhosted.vllm"\nmodel = "llama"\nendpoint = "http://gw.test/v1"\n'
    # A file's target declares its endpoint: the environment may not declare that URL again.
    with pytest.raises(ConfigError, match=r"which .* declares as selfhosted\.vllm: the environment may add endpoints"):
        load_file(write_config(target), PRIVSDK_ENDPOINTS="http://gw.test/v1=openai.api")


@pytest.mark.parametrize("spec", ["sqlite:///{dir}/x.db?k=v", "jsonl:///{dir}/x.jsonl#frag", "sqlite:///{dir}/x.db?"])
def test_a_usage_store_with_a_query_string_is_an_error_and_creates_no_file(spec: str, tmp_path: Path) -> None:
    """PRIVSDK_USAGE=sqlite:///x.db?k=v created a file named 'x.db?k=v'."""
    from privsdk.client import Client

    value = spec.format(dir=tmp_path)
    message = config_error({"PRIVSDK_USAGE": value})
    assert message.startswith("PRIVSDK_USAGE: ") and "no settings" in message and "k=v" not in message
    with pytest.raises(ConfigError, match=r"^Client\(usage=\): "):
        Client(environ={}, usage=value)
    assert list(tmp_path.iterdir()) == []


def test_a_policy_file_saved_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    """A file a Windows editor saved as 'UTF-8 with BOM' failed as "Invalid statement" without naming the BOM."""
    path = tmp_path / "privsdk.toml"
    path.write_text('[tenants.acme]\nclasses.default = ["zdr"]\n', encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert requirements(load_file(path), "acme", "default") == ["zdr"]
    path.write_text('[tenants.acme]\nclasses.default = ["zdrr"]\n', encoding="utf-8-sig")
    assert config_error({"PRIVSDK_CONFIG": str(path)}).startswith(f"{path}:2: unknown requirement 'zdrr'")


def test_a_policy_file_nested_too_deeply_is_a_configuration_error(write_config: WriteConfig) -> None:
    """TOML's parser recurses once per nested array: a file of arrays nested thousands deep escaped as a
    RecursionError at start-up."""
    path = write_config("[tenants.acme]\nclasses.default = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply") as caught:
        load_file(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    "declared",
    [
        "https://api.openai.com/v1=openai.api@proj_approved",
        "https://api.openai.com=openai.api@org-approved",
        "https://myres.openai.azure.com=azure.openai@otherres",
    ],
)
def test_an_account_declared_at_a_vendors_own_host_is_an_error(declared: str, write_config: WriteConfig) -> None:
    """At api.openai.com a request runs on the project its key or header names; an endpoint declared there for
    proj_approved lent that project's zdr attestation to every request naming none (with allow_env_attest = false,
    where PRIVSDK_ATTEST=openai:zdr is refused)."""
    message = config_error({"PRIVSDK_ENDPOINTS": declared})
    assert message.startswith("PRIVSDK_ENDPOINTS: endpoint ") and "vendor's own host" in message, message
    assert "leave '@ACCOUNT' out" in message
    url, _, spec = declared.rpartition("=")
    with pytest.raises(ConfigError, match="vendor's own host"):
        load_file(write_config(f'[endpoints]\n"{url}" = "{spec}"\n'))
    # The resource an Azure host names is its account: declaring that same one says nothing new.
    same = load({"PRIVSDK_ENDPOINTS": "https://myres.openai.azure.com=azure.openai@myres"})
    assert same.endpoints[0].account == "myres"


FLOOR = """\
[attest]
openai = ["zdr@proj_approved"]

[endpoints]
"https://gw.corp" = "openai.api"

[tenants.acme]
classes.default = ["no_training"]
"""


@pytest.mark.parametrize(
    ("declared", "fragment"),
    [
        # Under the file's gateway: the longest prefix would place its requests as a private deployment.
        ("https://gw.corp/v1=selfhosted.vllm", "never re-declare the file's"),
        ("https://gw.corp=openai.api@proj_approved", "never re-declare the file's"),
        # What works as an attestation, which the file does not let the environment add.
        ("https://proxy.corp/v1=openai.api@proj_approved", "an account (@proj_approved)"),
        ("http://10.0.0.7:8000/v1=selfhosted.vllm", "selfhosted.vllm, an offering reached only at an endpoint"),
        ("https://cohere.corp=cohere.private", "cohere.private, an offering reached only"),
    ],
)
def test_the_environments_endpoints_never_weaken_the_files(
    declared: str, fragment: str, write_config: WriteConfig
) -> None:
    """The file is the floor for endpoints too: PRIVSDK_ENDPOINTS re-declared part of the file's OpenAI gateway as
    self-hosted (meeting private_deployment), and scoped the file's attestations to an account of its choosing."""
    path = write_config(FLOOR)
    with pytest.raises(ConfigError) as info:
        load_file(path, PRIVSDK_ENDPOINTS=declared)
    message = str(info.value)
    assert message.startswith("PRIVSDK_ENDPOINTS: entry 1 of 1 ") and fragment in message, message
    if "never re-declare" not in fragment:
        assert "set allow_env_attest = true" in message
        allowed = load_file(write_config("allow_env_attest = true\n" + FLOOR), PRIVSDK_ENDPOINTS=declared)
        assert allowed.endpoints[-1].url == declared.rpartition("=")[0].rstrip("/")


def test_the_environment_still_adds_a_stand_in_for_a_vendor_under_a_file(write_config: WriteConfig) -> None:
    """What the examples and tests do: a stand-in judged by the vendor's own facts and the file's attestations."""
    policy = load_file(
        write_config(FLOOR),
        PRIVSDK_ENDPOINTS="http://127.0.0.1:8000/v1=openai.api,https://gw.corp/v1=openai.api",
    )
    assert [(e.url, e.offering) for e in policy.endpoints][-2:] == [
        ("http://127.0.0.1:8000/v1", "openai.api"),
        ("https://gw.corp/v1", "openai.api"),
    ]


@pytest.mark.parametrize("name", ["privsdk_require", "Privsdk_Require", "PRIVSDK_require"])
def test_a_privsdk_variable_in_another_case_is_an_error(name: str) -> None:
    """privsdk_require=zdr (a .env file, a container spec) was passed over, and the call it should refuse was sent."""
    message = config_error({name: "zdr"})
    assert message.startswith(f"{name}: is not a privsdk variable") and "written in capitals" in message, message
