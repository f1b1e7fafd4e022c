"""The ``privsdk`` command as a user runs it: exit codes, the JSON contract, messages, listings.

Expected outcomes come from docs/configuration.md, the example policy (privsdk/example_policy.toml) and the
catalogue's meaning (e.g. openai.api keeps abuse logs 30 days unless ZDR is
attested, and files/batch/stored responses keep data whatever is attested).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from privsdk.catalogue import default_catalogue
from privsdk.cli import main
from privsdk.config import load_policy
from privsdk.decision import decide
from tests.conftest import EXAMPLE_CONFIG, EXAMPLE_TARGETS, clean_env, run_cli

EXAMPLE = {"PRIVSDK_CONFIG": str(EXAMPLE_CONFIG)}
ZDR_ATTESTED = {"PRIVSDK_REQUIRE": "zdr", "PRIVSDK_ATTEST": "openai:zdr"}
CONTRACT_KEYS = {"decision", "target", "chosen", "unmet", "catalogue_as_of"}
UNMET_KEYS = {"requirement", "offered", "source"}
OUTCOMES = {"allow", "reroute", "refuse"}
SEVEN_FACTS = {
    "no_training",
    "retention_days",
    "no_human_review",
    "no_provider_sharing",
    "private_deployment",
    "regions",
    "hipaa_baa",
}
VENDORS = {"azure", "bedrock", "cohere", "gemini", "mistral", "openai", "selfhosted", "vertex"}
EXAMPLE_CLASSES = {"acme": ["default", "pii", "phi"], "globex": ["default"]}
EXAMPLE_ROWS = sum(len(classes) for classes in EXAMPLE_CLASSES.values()) * len(EXAMPLE_TARGETS)  # 4 x 7 = 28
SUMMARY = re.compile(r"^(\d+) allowed, (\d+) rerouted, (\d+) refused$", re.MULTILINE)
ANSI = "\x1b["


# -- helpers ------------------------------------------------------------------


def explain_json(*args: str, **env: str) -> tuple[int, dict[str, Any]]:
    """Exit status and decision object of ``privsdk explain ARGS --json``."""
    result = run_cli("explain", *args, "--json", **env)
    decision: dict[str, Any] = json.loads(result.stdout)
    return result.returncode, decision


def openai_retention_source() -> str:
    """Where the catalogue sources openai.api's (30-day) retention."""
    offering = default_catalogue().offering("openai.api")
    assert offering is not None
    return offering.facts["retention_days"].source.ref


def run_with_colour_env(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m privsdk ARGS`` with NO_COLOR unset unless ``env`` sets it."""
    full = clean_env(**env)
    if "NO_COLOR" not in env:
        del full["NO_COLOR"]
    full["TERM"] = "xterm"
    return subprocess.run(
        [sys.executable, "-m", "privsdk", *args], env=full, capture_output=True, text=True, timeout=60, check=False
    )


def summary_counts(text: str) -> tuple[int, int, int]:
    """The (allowed, rerouted, refused) numbers of ``privsdk check``'s summary line."""
    found = SUMMARY.search(text)
    assert found, f"no summary line in:\n{text}"
    allowed, rerouted, refused = (int(n) for n in found.groups())
    return allowed, rerouted, refused


def targets_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    """``privsdk targets --json ARGS``, run in-process."""
    assert main(["targets", "--json", *args]) == 0
    listing: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return listing


# -- explain: the JSON contract and exit codes ----------------------------------


def test_explain_json_contract_without_config() -> None:
    """With no configuration, explain --json allows a public model and prints the documented keys."""
    code, decision = explain_json("openai/gpt-4o-mini")
    assert code == 0
    assert decision.keys() >= CONTRACT_KEYS
    assert decision["decision"] == "allow"
    assert decision["target"] == "openai/gpt-4o-mini"
    assert decision["unmet"] == []
    assert isinstance(decision["catalogue_as_of"], str)
    assert dt.date.fromisoformat(decision["catalogue_as_of"]).isoformat() == decision["catalogue_as_of"]


@pytest.mark.parametrize(
    ("args", "env", "code", "outcome", "unmet"),
    [
        pytest.param(("openai/gpt-4o-mini",), {}, 0, "allow", [], id="allow-nothing-required"),
        pytest.param(("openai/gpt-4o-mini",), ZDR_ATTESTED, 0, "allow", [], id="allow-zdr-attested"),
        pytest.param(
            ("openai-mini", "--tenant", "acme", "--data-class", "pii"),
            EXAMPLE,
            0,
            "reroute",
            ["region=eu"],  # openai.api promises no residency; zdr and no_training hold with [attest] openai zdr
            id="reroute",
        ),
        pytest.param(("openai/gpt-4o-mini",), {"PRIVSDK_REQUIRE": "zdr"}, 3, "refuse", ["zdr"], id="refuse"),
        pytest.param(("nosuch/model",), {}, 3, "refuse", [], id="refuse-unknown-vendor"),
    ],
)
def test_explain_exit_status_follows_the_decision(
    args: tuple[str, ...], env: dict[str, str], code: int, outcome: str, unmet: list[str]
) -> None:
    """explain exits 0 on allow and reroute, 3 on refuse, and lists what the requested target lacks."""
    status, decision = explain_json(*args, **env)
    assert (status, decision["decision"]) == (code, outcome)
    assert [u["requirement"] for u in decision["unmet"]] == unmet
    for item in decision["unmet"]:
        assert item.keys() >= UNMET_KEYS


def test_reroute_names_the_first_compliant_alternative() -> None:
    """acme's pii call to openai-mini goes to azure-eu-gpt4o, its first alternative (EU data zone, no retention)."""
    _, decision = explain_json("openai-mini", "--tenant", "acme", "--data-class", "pii", **EXAMPLE)
    assert decision["chosen"] == "azure-eu-gpt4o"


def test_refusal_cites_an_https_source_for_the_unmet_requirement() -> None:
    """A zdr refusal for openai/gpt-4o-mini cites the web page the catalogue read, with nothing chosen."""
    _, decision = explain_json("openai/gpt-4o-mini", PRIVSDK_REQUIRE="zdr")
    (unmet,) = decision["unmet"]
    assert unmet["requirement"] == "zdr"
    assert unmet["source"].startswith("https://")
    assert unmet["source"] == openai_retention_source()
    assert decision["chosen"] is None


def test_unknown_vendor_refuses_naming_the_vendor() -> None:
    """A vendor privsdk has no catalogue for is refused (exit 3), with a reason naming it."""
    code, decision = explain_json("nosuch/model")
    assert code == 3
    assert decision["decision"] == "refuse"
    assert "nosuch" in decision["reason"]


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(("--operation", "batch"), id="batch-is-not-covered-by-zdr"),
        pytest.param(("--feature", "stored_responses"), id="stored-responses-keep-data"),
    ],
)
def test_zdr_does_not_cover_operations_and_features_that_keep_data(extra: tuple[str, ...]) -> None:
    """With openai:zdr attested, zdr still refuses batch and stored responses (they keep data until deleted)."""
    code, decision = explain_json("openai/gpt-4o-mini", *extra, **ZDR_ATTESTED)
    assert (code, decision["decision"]) == (3, "refuse")
    assert [u["requirement"] for u in decision["unmet"]] == ["zdr"]


def test_explain_text_names_the_unmet_requirement_and_its_source() -> None:
    """Human output of a refusal says which requirement is unmet and where the catalogue read why."""
    result = run_cli("explain", "openai/gpt-4o-mini", PRIVSDK_REQUIRE="zdr")
    assert result.returncode == 3
    assert re.search(r"unmet\W+zdr\b", result.stdout)
    assert openai_retention_source() in result.stdout


# -- user mistakes: exit 2, one line, no traceback --------------------------------

BINARY = random.Random(20261122).randbytes(512)
MISTAKES = [
    pytest.param(("explain", "openai/gpt-4o-mini"), {"PRIVSDK_REQUIRE": "zdrr"}, None, "PRIVSDK_REQUIRE", id="require"),
    pytest.param(("explain", "openai/gpt-4o-mini"), {"PRIVSDK_REQUIRES": "zdr"}, None, "PRIVSDK_REQUIRES", id="typo"),
    pytest.param(
        ("explain", "openai/gpt-4o-mini"), {"PRIVSDK_ATTEST": "mistral:zdr"}, None, "mistral:plan=scale", id="attest"
    ),
    pytest.param(("explain", "openai/gpt-4o-mini", "--tenant", "nosuch"), {}, None, "--tenant", id="tenant"),
    pytest.param(("explain", "openai-mini", "--tenant", "initech"), EXAMPLE, None, "acme", id="tenant-in-file"),
    pytest.param(
        ("explain", "openai-mini", "--tenant", "globex", "--data-class", "pii"),
        EXAMPLE,
        None,
        "--data-class",
        id="data-class",
    ),
    pytest.param(("explain", "openai/gpt-4o-mini", "--operation", "chatt"), {}, None, "chatt", id="operation"),
    pytest.param(("explain", "openai/gpt-4o-mini", "--feature", "storage"), {}, None, "storage", id="feature"),
    pytest.param(("check", "--tenant", "initech"), EXAMPLE, None, "--tenant", id="check-tenant"),
    pytest.param(("check", "--operation", "chatt"), EXAMPLE, None, "chatt", id="check-operation"),
    pytest.param(("check",), {"PRIVSDK_CONFIG": "/nonexistent/privsdk.toml"}, None, "/nonexistent", id="no-file"),
    pytest.param(("check",), {}, b'[tenants.acme\nclasses.default = ["zdr"]\n', "privsdk.toml:1", id="bad-toml"),
    pytest.param(("check",), {}, BINARY, "privsdk.toml", id="binary-file"),
    pytest.param(
        ("explain", "openai/gpt-4o-mini"),
        {"PRIVSDK_REQUIRE": "max_retention_days=²"},
        None,
        "PRIVSDK_REQUIRE",
        id="superscript-digit",
    ),
]


@pytest.mark.parametrize(("args", "env", "config", "fragment"), MISTAKES)
def test_user_mistake_exits_2_with_one_message_and_no_traceback(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], config: bytes | None, fragment: str
) -> None:
    """Every user mistake exits 2 with 'privsdk: configuration error: ...' naming the culprit, never a traceback."""
    if config is not None:
        path = tmp_path / "privsdk.toml"
        path.write_bytes(config)
        env = {**env, "PRIVSDK_CONFIG": str(path)}
    result = run_cli(*args, **env)
    assert "Traceback" not in result.stderr
    assert result.returncode == 2
    assert result.stderr.startswith("privsdk: configuration error:")
    assert fragment in result.stderr
    assert result.stdout == ""


def test_no_subcommand_exits_2() -> None:
    """``python -m privsdk`` alone is a usage error (exit 2) with no traceback."""
    result = run_cli()
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["explain", "check", "targets"])
def test_every_subcommand_help_has_examples(capsys: pytest.CaptureFixture[str], command: str) -> None:
    """``privsdk COMMAND --help`` exits 0 and shows worked examples."""
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "examples:" in capsys.readouterr().out


# -- check ----------------------------------------------------------------------


def test_check_text_lists_every_tenant_class_and_target() -> None:
    """check with the example prints each tenant, data class and target, and a summary adding up to 28 rows."""
    result = run_cli("check", **EXAMPLE)
    assert result.returncode == 0
    for tenant, classes in EXAMPLE_CLASSES.items():
        assert tenant in result.stdout
        for data_class in classes:
            assert data_class in result.stdout
    for target in EXAMPLE_TARGETS:
        assert target in result.stdout
    assert sum(summary_counts(result.stdout)) == EXAMPLE_ROWS


def test_check_without_targets_shows_the_attestations_and_how_to_judge_a_request(
    tmp_path: Path,
) -> None:
    """A policy for the drop-ins has no targets: check only said to define some (quickstart step 1)."""
    path = tmp_path / "zdr.toml"
    path.write_text('[tenants.default]\nclasses.default = ["zdr"]\n[attest]\nopenai = ["zdr@proj_approved"]\n')
    result = run_cli("check", PRIVSDK_CONFIG=str(path))
    assert result.returncode == 0
    out = result.stdout
    assert "attests: openai:zdr@proj_approved" in out and "requires zdr" in out
    assert "privsdk explain --url URL" in out


def test_check_json_is_one_decision_per_tenant_class_and_target() -> None:
    """check --json holds one decision object for every tenant x data class x target of the example."""
    result = run_cli("check", "--json", **EXAMPLE)
    assert result.returncode == 0
    decisions: list[dict[str, Any]] = json.loads(result.stdout)
    assert len(decisions) == EXAMPLE_ROWS
    for d in decisions:
        assert d.keys() >= CONTRACT_KEYS
        assert d["decision"] in OUTCOMES
    expected = {
        (tenant, cls, target)
        for tenant, classes in EXAMPLE_CLASSES.items()
        for cls, target in itertools.product(classes, EXAMPLE_TARGETS)
    }
    assert {(d["tenant"], d["data_class"], d["target"]) for d in decisions} == expected


def test_check_summary_agrees_with_check_json_and_explain() -> None:
    """The summary counts are the outcomes of check --json, which agree with explain for the same call."""
    text = run_cli("check", **EXAMPLE).stdout
    decisions: list[dict[str, Any]] = json.loads(run_cli("check", "--json", **EXAMPLE).stdout)
    counts = Counter(d["decision"] for d in decisions)
    assert summary_counts(text) == (counts["allow"], counts["reroute"], counts["refuse"])
    (row,) = (d for d in decisions if (d["tenant"], d["data_class"], d["target"]) == ("acme", "pii", "openai-mini"))
    _, explained = explain_json("openai-mini", "--tenant", "acme", "--data-class", "pii", **EXAMPLE)
    assert (
        (row["decision"], row["chosen"])
        == (explained["decision"], explained["chosen"])
        == ("reroute", "azure-eu-gpt4o")
    )


@pytest.mark.parametrize(
    "args",
    [pytest.param(("explain", "openai/gpt-4o-mini"), id="explain"), pytest.param(("check",), id="check")],
)
@pytest.mark.parametrize(
    ("env", "coloured"),
    [
        pytest.param({"FORCE_COLOR": "1"}, True, id="force-color"),
        pytest.param({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False, id="no-color-wins"),
        pytest.param({}, False, id="not-a-terminal"),
    ],
)
def test_colour_follows_force_color_and_no_color(args: tuple[str, ...], env: dict[str, str], coloured: bool) -> None:
    """Outcomes are coloured with FORCE_COLOR, never with NO_COLOR, and not when output is piped."""
    result = run_with_colour_env(*args, **EXAMPLE, **env)
    assert result.returncode == 0
    assert (ANSI in result.stdout) is coloured


# -- targets --------------------------------------------------------------------


def test_targets_json_lists_every_vendor_with_sourced_facts(capsys: pytest.CaptureFixture[str]) -> None:
    """targets --json covers every vendor file; each offering states all seven facts with how, source and date."""
    listing = targets_json(capsys)
    assert {v["vendor"] for v in listing} == VENDORS
    for vendor in listing:
        assert vendor["offerings"], f"{vendor['vendor']} lists no offering"
        for offering in vendor["offerings"]:
            assert set(offering["facts"]) == SEVEN_FACTS, offering["id"]
            for name, fact in offering["facts"].items():
                where = f"{offering['id']}.{name}"
                assert "value" in fact, where
                assert fact["how"], where
                assert fact["source"]["ref"], where
                dt.date.fromisoformat(fact["as_of"])


def test_targets_vendor_filters_the_listing(capsys: pytest.CaptureFixture[str]) -> None:
    """targets --vendor mistral lists mistral only."""
    assert [v["vendor"] for v in targets_json(capsys, "--vendor", "mistral")] == ["mistral"]


def test_targets_unknown_vendor_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """targets --vendor nosuch is a configuration error naming the option and the known vendors."""
    assert main(["targets", "--vendor", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("privsdk: configuration error:")
    assert "--vendor" in err
    assert all(vendor in err for vendor in VENDORS)


def test_targets_markdown_prints_a_table_header(capsys: pytest.CaptureFixture[str]) -> None:
    """targets --markdown prints a Markdown table: a header row followed by its separator row."""
    assert main(["targets", "--markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    headers = [i for i, line in enumerate(lines) if line.startswith("| offering |")]
    assert headers
    for i in headers:
        assert re.fullmatch(r"(\|-{3,})+\|", lines[i + 1])


@pytest.mark.parametrize(
    ("header", "shown"),
    [
        ("Authorization: Bearer sk-CANARY-KEY-4", "bad --header 'Authorization': not NAME=VALUE"),
        ("sk-CANARY-KEY-4", "bad --header: not NAME=VALUE"),
        ("=Bearer sk-CANARY-KEY-4", "bad --header: not NAME=VALUE"),
    ],
)
def test_explain_header_errors_never_show_the_value(
    capsys: pytest.CaptureFixture[str], header: str, shown: str
) -> None:
    """A header written NAME: VALUE (as curl takes it) is refused naming the header and the form, never its value."""
    url = "https://api.openai.com/v1/chat/completions"
    assert main(["explain", "--url", url, "--header", header]) == 2
    captured = capsys.readouterr()
    assert shown in captured.err and "write NAME=VALUE with '='" in captured.err
    assert "CANARY" not in captured.out + captured.err


# -- bad input is a one-line configuration error (exit 2), never a traceback ----------------------------------------


def _jsonl_store(path: Path) -> None:
    """A JSONL usage store as privsdk writes it, under a name that does not say JSONL."""
    from privsdk.usage.jsonl import JsonlSink
    from tests.usage_support import rec

    sink = JsonlSink(str(path))
    sink.write([rec(), rec(tenant="globex")])
    sink.close()


def test_a_bare_store_path_is_read_as_what_it_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PRIVSDK_USAGE=jsonl:///.../app-usage.log is a JSONL store whatever its name: --store PATH reads it as such."""
    monkeypatch.chdir(tmp_path)
    _jsonl_store(tmp_path / "app-usage.log")
    assert main(["usage", "--store", "app-usage.log", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == 2
    assert main(["usage", "prune", "--store", "app-usage.log", "--older-than", "1d"]) == 0
    assert "deleted 2 usage record(s)" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["usage"], ["usage", "prune", "--older-than", "30d"]])
def test_a_file_sqlite_cannot_read_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    _jsonl_store(tmp_path / "app-usage.log")
    (tmp_path / "broken.sqlite3").write_text("not a database")
    for store in (f"sqlite://{tmp_path}/app-usage.log", str(tmp_path / "broken.sqlite3")):
        assert main([*command, "--store", store]) == 2
        err = capsys.readouterr().err
        assert err.startswith("privsdk: configuration error: SQLite cannot read ") and err.count("\n") == 1, err
        assert "file is not a database" in err and "pass --store jsonl:///" in err


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://10.0.0.5:80800/v1/chat/completions", "the port is not a number from 0 to 65535"),
        ("https://[::1/v1/chat/completions", "an IPv6 address goes in closed brackets"),
        ("https://user:sk-CANARY@[::1/v1/chat/completions?key=CANARY", "an IPv6 address goes in closed brackets"),
        ("http://user:sk-CANARY@host:99999/v1?api_key=CANARY", "the port is not a number"),
        ("ftp://user:sk-CANARY@host/v1", "it does not start with http:// or https://"),
        ("api.openai.com/v1/chat/completions", "it does not start with http:// or https://"),
    ],
)
def test_a_bad_explain_url_is_named_without_its_credentials(
    capsys: pytest.CaptureFixture[str], url: str, problem: str
) -> None:
    assert main(["explain", "--url", url, "--model", "gpt-4o-mini"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("privsdk: configuration error: --url: bad URL ") and err.count("\n") == 1, err
    assert problem in err and "write e.g. https://api.openai.com/v1/chat/completions" in err
    assert "CANARY" not in err


@pytest.mark.parametrize(
    "command",
    [
        ["usage", "--since", "99999999d"],
        ["usage", "--until", "9" * 5000 + "d"],
        ["usage", "prune", "--older-than", "99999999999w"],
    ],
)
def test_a_duration_too_long_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    assert main([*command, "--store", str(tmp_path / "empty.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "is too long (at most 365000d, about a thousand years)" in err and err.count("\n") == 1, err


def test_a_time_out_of_range_is_a_configuration_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    assert main(["usage", "--since", "9999-12-31T23:59:59-05:00", "--store", str(tmp_path / "empty.jsonl")]) == 2
    assert "--since: time '9999-12-31T23:59:59-05:00' is out of range" in capsys.readouterr().err
    assert main(["usage", "--since", "0001-01-01", "--store", str(tmp_path / "empty.jsonl"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["since"] == "0001-01-01T00:00:00Z"


@pytest.mark.parametrize("age", ["0d", "0m", "00w"])
def test_prune_refuses_an_age_of_zero_as_the_automatic_limit_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, age: str
) -> None:
    """PRIVSDK_USAGE_MAX_AGE_DAYS=0 is refused; so is --older-than 0d, which would delete every record."""
    _jsonl_store(tmp_path / "usage.jsonl")
    assert main(["usage", "prune", "--older-than", age, "--store", str(tmp_path / "usage.jsonl")]) == 2
    err = capsys.readouterr().err
    assert f"--older-than: '{age}' would delete every usage record (give an age of 1m or more" in err
    assert len((tmp_path / "usage.jsonl").read_text().splitlines()) == 2
    monkeypatch.setenv("PRIVSDK_USAGE_MAX_AGE_DAYS", "0")
    assert main(["usage", "prune", "--store", str(tmp_path / "usage.jsonl")]) == 2
    assert "PRIVSDK_USAGE_MAX_AGE_DAYS: bad value '0'" in capsys.readouterr().err


# -- a closed pipe, a usage store Client() refuses, explain --url's arguments, --help's examples -------------------


def test_output_piped_to_a_reader_that_stops_ends_quietly() -> None:
    """`privsdk targets --json | head -1` ended in a BrokenPipeError traceback."""
    done = subprocess.run(
        f"{sys.executable} -m privsdk targets --json | head -1",
        shell=True, env=clean_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.stdout == "[\n"
    assert done.stderr == "", done.stderr
    status = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{sys.executable} -m privsdk targets --json | head -1 >/dev/null"],
        env=clean_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert status.returncode == 141 and status.stderr == ""  # as a program ended by SIGPIPE


def test_check_reports_a_usage_store_the_client_would_refuse() -> None:
    """PRIVSDK_USAGE=otlp without the otlp extra: Client() raised ConfigError, while check exited 0."""
    code = (
        "import sys; sys.modules['opentelemetry'] = None  # the otlp extra is not installed\n"
        "from privsdk.cli import main; sys.exit(main(['check']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=clean_env(PRIVSDK_USAGE="otlp"), capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("privsdk: configuration error: PRIVSDK_USAGE: otlp needs opentelemetry")
    assert "pip install 'privsdk[otlp]'" in done.stderr


URL = "https://api.openai.com/v1/chat/completions"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--body", "{bad CANARY"], "--body: not JSON"),
        (["--body", '["CANARY"]'], "--body: a JSON array where a request body (a JSON object) belongs"),
        (["--body", '{"model": "gpt-4o"}', "--model", "gpt-4o-mini"], "--model: --model and the body's model differ"),
        ([], "--url: this request has a body the guard reads"),
        (["--model", "gpt-4o-mini", "--operation", "embed"], "--operation cannot go with --url"),
        (["--model", "gpt-4o-mini", "--feature", "stored_responses"], "--feature cannot go with --url"),
        (["openai/gpt-4o-mini", "--model", "gpt-4o-mini"], "TARGET cannot go with --url"),
    ],
    ids=["bad json", "not an object", "two models", "no body", "operation", "feature", "target"],
)
def test_explain_url_arguments_that_cannot_hold_are_bad_arguments_not_refusals(args: list[str], says: str) -> None:
    """`--body '{bad'` was a refusal (exit 3) "the body ... is not a JSON object", the same text as for a missing
    --model; --operation was silently ignored with --url."""
    result = run_cli("explain", "--url", URL, *args, PRIVSDK_REQUIRE="zdr")
    assert result.returncode == 2, result.stdout + result.stderr
    assert says in result.stderr and "CANARY" not in result.stderr


def test_explain_url_reads_features_from_the_body_with_the_model() -> None:
    code, decision = explain_json("--url", URL, "--body", '{"store": true}', "--model", "gpt-4o-mini")
    assert (code, decision["model"], decision["features"]) == (0, "gpt-4o-mini", ["stored_responses"])
    code, decision = explain_json(
        "--url",
        "https://bedrock-runtime.eu-central-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1:0/converse",
    )  # the model is in the path: no body needed
    assert code == 0 and decision["model"] == "anthropic.claude-3-haiku-20240307-v1:0"


def test_explain_url_at_a_declared_bedrock_endpoint_says_the_signature_shows_the_region() -> None:
    """A declared Bedrock endpoint (a VPC endpoint) shows no Region: boto3's signature does, and the guard refused
    what explain, given none, allowed. Explain says so, and agrees once given one."""
    env = {
        "PRIVSDK_ENDPOINTS": "https://vpce-1.example=bedrock.runtime",
        "PRIVSDK_REQUIRE": "region=eu",
        "PRIVSDK_ATTEST": "bedrock:region=eu",
    }
    url = "https://vpce-1.example/model/anthropic.claude-3-haiku-20240307-v1:0/converse"
    unsigned = run_cli("explain", "--url", url, **env)
    assert unsigned.returncode == 0 and "note: no Region shown" in unsigned.stdout
    signature = "Authorization=AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/bedrock/aws4_request, Signature=x"
    signed = run_cli("explain", "--url", url, "--header", signature, **env)
    assert signed.returncode == 3 and "region=eu" in signed.stdout and "note:" not in signed.stdout


FOUNDRY = "https://acme.services.ai.azure.com"


def test_explain_url_on_a_host_of_several_protocols_needs_the_sdk() -> None:
    """explain judged a cohere request to an Azure AI Foundry resource as OpenAI's protocol (the host's first
    offering's), and refused it with "unknown path shape /v1/chat/...", where the cohere SDK's guard sends it."""
    url, env = f"{FOUNDRY}/v2/chat", {"PRIVSDK_REQUIRE": "no_training"}
    code, decision = explain_json("--url", url, "--model", "Cohere-command-a", **env)
    assert code == 3 and "--sdk openai|cohere|mistralai" in decision["reason"]
    assert decision["requirements"] == ["no_training"] and decision["request_operation"] is None
    code, decision = explain_json("--url", url, "--model", "Cohere-command-a", "--sdk", "cohere", **env)
    assert (code, decision["request_operation"], decision["model"]) == (0, "chat", "Cohere-command-a")
    code, decision = explain_json("--url", url, "--model", "Cohere-command-a", "--sdk", "openai", **env)
    assert code == 3 and "unknown path shape /v2/chat for the OpenAI protocol" in decision["reason"]
    # A host that one protocol serves needs no --sdk.
    assert explain_json("--url", URL, "--model", "gpt-4o-mini", **env)[0] == 0


def test_explain_text_of_a_refusal_says_what_is_required_and_that_the_request_was_not_read() -> None:
    """A refusal of a request that could not be read said "operation other" and "requires: nothing"."""
    result = run_cli("explain", "--url", f"{FOUNDRY}/v2/chat", "--model", "m", PRIVSDK_REQUIRE="no_training")
    assert result.returncode == 3
    assert "operation not read" in result.stdout and "requires: no_training" in result.stdout
    assert "operation other" not in result.stdout and "requires: nothing" not in result.stdout


def test_explain_sends_a_header_given_twice_as_an_sdk_sends_it() -> None:
    """explain kept the last of two OpenAI-Project headers, and allowed what the guard, which reads both, refuses."""
    env = {"PRIVSDK_REQUIRE": "zdr", "PRIVSDK_ATTEST": "openai:zdr@proj_approved"}
    twice = ["--header", "OpenAI-Project=proj_other", "--header", "openai-project=proj_approved"]
    code, decision = explain_json("--url", URL, "--model", "gpt-4o-mini", *twice, **env)
    assert (code, decision["account"]) == (3, "proj_other, proj_approved")
    code, decision = explain_json("--url", URL, "--model", "gpt-4o-mini", *twice[2:], **env)
    assert (code, decision["account"]) == (0, "proj_approved")


def test_explain_sdk_names_are_the_seams_own() -> None:
    from privsdk_cohere import dropin as cohere
    from privsdk_mistral import dropin as mistral
    from privsdk_openai import dropin as openai
    from privsdk_vertex import dropin as vertex

    from privsdk.outbound import botocore_seam
    from privsdk.outbound.wire import SDKS

    seams = {m.SDK for m in (cohere, mistral, openai, vertex)} | {botocore_seam.SDK}
    assert set(SDKS) == seams
    assert main(["explain", "openai/gpt-4o-mini", "--sdk", "openai"]) == 2  # --sdk goes with --url only


def _help_examples(command: str) -> list[str]:
    from privsdk import cli

    epilog = {
        "explain": cli.EXPLAIN_EXAMPLES,
        "check": cli.CHECK_EXAMPLES,
        "targets": cli.TARGETS_EXAMPLES,
        "example-policy": cli.EXAMPLE_POLICY_EXAMPLES,
    }[command]
    lines = epilog.split("examples:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    return [line.strip().split("  (")[0].strip() for line in lines if line.strip()]


@pytest.mark.parametrize("command", ["explain", "check", "targets", "example-policy"])
def test_every_help_example_runs_as_written_for_a_pip_user(tmp_path: Path, command: str) -> None:
    """The explain example named target eu-gpt4o (it is azure-eu-gpt4o), and every example used
    examples/privsdk.toml, which a user who installed with pip does not have. The help says to write privsdk.toml
    with `privsdk example-policy`, and after that command, as the help gives it, every example runs."""
    from privsdk import cli

    examples = _help_examples(command)
    assert examples
    if any("privsdk.toml" in example for example in examples) and command != "example-policy":
        write = "privsdk example-policy > privsdk.toml"
        assert write in cli.POLICY_FILE_NOTE
        examples.insert(0, write)
    for example in examples:
        assert "examples/" not in example, example
        done = subprocess.run(
            ["bash", "-c", example.replace("privsdk ", f"{sys.executable} -m privsdk ", 1)],
            cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode in (0, 3), f"{example}: {done.stderr}"
        assert "unknown target" not in done.stdout + done.stderr, example


def test_targets_say_how_fine_tuned_models_are_judged(capsys: pytest.CaptureFixture[str]) -> None:
    """targets lists each offering's fine-tuned model rule with its source: OpenAI's judged as the base model's
    family, Mistral's refused; offerings without a rule say none."""
    offerings = {o["id"]: o for v in targets_json(capsys) for o in v["offerings"]}
    assert offerings["openai.api"]["fine_tuned"]["served"] is True
    assert offerings["mistral.api"]["fine_tuned"]["served"] is False
    for name in ("openai.api", "mistral.api"):
        tuned = offerings[name]["fine_tuned"]
        assert tuned["prefix"] == "ft:" and tuned["source"]["ref"] and tuned["note"], name
        dt.date.fromisoformat(tuned["as_of"])
    assert offerings["cohere.saas"]["fine_tuned"] is None
    assert main(["targets", "--vendor", "mistral"]) == 0
    text = capsys.readouterr().out
    assert "fine-tuned models (ft:BASE:...): refused [MIS-ZDR, " in text


def test_example_policy_prints_the_packaged_policy_which_loads(tmp_path: Path) -> None:
    """A pip user had no example policy: the README and --help used examples/privsdk.toml from the source.
    `privsdk example-policy` prints the one in the package, which loads as the examples say."""
    done = run_cli("example-policy")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout == EXAMPLE_CONFIG.read_text(encoding="utf-8")
    (tmp_path / "privsdk.toml").write_text(done.stdout, encoding="utf-8")
    policy = load_policy({"PRIVSDK_CONFIG": str(tmp_path / "privsdk.toml")})
    assert (list(policy.tenants), policy.default_tenant, list(policy.targets)) == (
        ["acme", "globex"],
        "acme",
        EXAMPLE_TARGETS,
    )


def test_an_unknown_tenant_without_a_policy_file_says_privsdk_config_is_unset(tmp_path: Path) -> None:
    """A pip user's first `--tenant globex` said only "no tenant 'globex' in environment (tenants: default)"."""
    for done in (
        run_cli("explain", "openai/gpt-4o-mini", "--tenant", "globex"),
        run_cli("explain", "openai/gpt-4o-mini", PRIVSDK_TENANT="globex"),
    ):
        assert done.returncode == 2 and "unknown tenant 'globex'" in done.stderr, done.stderr
        assert "PRIVSDK_CONFIG names no policy file" in done.stderr and "privsdk example-policy" in done.stderr
    refusal = decide(load_policy({}), "openai/gpt-4o-mini", tenant="globex")
    assert refusal.outcome == "refuse" and "PRIVSDK_CONFIG names no policy file" in (refusal.reason or "")
    done = run_cli("explain", "openai/gpt-4o-mini", "--tenant", "globx", **EXAMPLE)
    assert done.returncode == 2 and f"unknown tenant 'globx' (tenants of {EXAMPLE_CONFIG}: acme, globex)" in done.stderr
    assert "PRIVSDK_CONFIG names" not in done.stderr


def test_an_unknown_target_without_a_policy_file_says_privsdk_config_is_unset() -> None:
    """A pip user's `privsdk explain openai-mini` (the README's target) said "not a target in environment"."""
    done = run_cli("explain", "openai-mini")
    assert done.returncode == 3 and "unknown target 'openai-mini': PRIVSDK_CONFIG names no policy file" in done.stdout
    assert "vendor/model (openai/gpt-4o-mini)" in done.stdout and "privsdk example-policy" in done.stdout
    done = run_cli("explain", "openai-mni", **EXAMPLE)
    assert done.returncode == 3 and f"not a target in {EXAMPLE_CONFIG} (targets: openai-mini, " in done.stdout
    assert "PRIVSDK_CONFIG names" not in done.stdout


def test_output_that_cannot_be_written_is_one_line_not_a_traceback() -> None:
    """`privsdk example-policy > /dev/full` ended in a traceback (OSError: No space left on device)."""
    with open(os.devnull if not os.path.exists("/dev/full") else "/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "privsdk", "example-policy"], stdout=full, stderr=subprocess.PIPE, text=True,
            env=clean_env(), timeout=60, check=False,
        )  # fmt: skip
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == "privsdk: No space left on device"


def test_the_main_help_lists_every_variable_privsdk_reads() -> None:
    """`privsdk --help` named 6 of the variables; it lists every one of config.ENV_VARS, with what it holds."""
    from privsdk.config import ENV_VARS

    shown = run_cli("--help").stdout
    assert len(ENV_VARS) >= 13
    for name, meaning in ENV_VARS.items():
        line = next(line for line in shown.splitlines() if line.strip().startswith(name + " "))
        assert line.split(name, 1)[1].strip() == meaning[: len(line.split(name, 1)[1].strip())], name


@pytest.mark.parametrize(
    ("args", "said_by"),
    [
        (("explain", "openai/gpt-4o", "--bogus"), "privsdk explain"),
        (("check", "--bogus"), "privsdk check"),
        (("usage", "prune", "--bogus"), "privsdk usage prune"),
    ],
)
def test_an_unknown_option_is_said_by_its_subcommand_with_its_usage(args: tuple[str, ...], said_by: str) -> None:
    """An unknown option after a subcommand printed privsdk's own usage line (``privsdk [-h] [--version] COMMAND``),
    which does not say what the subcommand takes."""
    done = run_cli(*args)
    assert done.returncode == 2
    assert done.stderr.startswith(f"usage: {said_by} [-h]")
    assert f"{said_by}: error: unrecognized arguments: --bogus" in done.stderr
