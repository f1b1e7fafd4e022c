"""``privsdk usage``: the report's figures against a store of known records, its formats and options, and prune."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from privsdk.cli import main
from privsdk.usage import UsageRecord, open_recorder
from privsdk.usage.report import percentile
from privsdk.usage.retention import DAY_S
from tests.conftest import run_cli
from tests.usage_support import T0, rec

HOUR = 3600.0
ID = {name: f"{n:032x}" for n, name in enumerate("ABCDE", 1)}


def known_records() -> list[UsageRecord]:
    """Five calls whose figures are worked out by hand in the tests below (T0 is 2026-03-01 12:00 UTC).

    A acme/pii allowed, one attempt. B acme/pii rerouted: a 429, then success. C acme/default refused.
    D globex/default allowed: two errors, then success just after midnight. E globex/default refused two days before.
    """
    allow = {"decision": "allow", "unmet": (), "requested_target": "openai-mini", "chosen_target": "openai-mini"}
    globex = {**allow, "tenant": "globex", "data_class": "default", "chosen_target": "cohere-command"}
    globex.update(requested_target="cohere-command", vendor="cohere", model="command-r")
    refused = {"attempt": 0, "decision": "refuse", "chosen_target": None, "vendor": None, "model": None}
    refused.update(outcome="refused", error_class="policy", http_status=None, latency_ms=0.0)
    refused.update(input_tokens=None, output_tokens=None)
    failed = {"outcome": "error", "input_tokens": None, "output_tokens": None}
    d = {**globex, "request_id": ID["D"]}
    return [
        rec(**allow, request_id=ID["A"], model="gpt-4o-mini", latency_ms=10.0, input_tokens=100, output_tokens=20),
        rec(request_id=ID["B"], attempt=1, **failed, error_class="rate_limited", http_status=429, latency_ms=30.0),
        rec(request_id=ID["B"], attempt=2, time=T0 + 1, latency_ms=50.0, input_tokens=200, output_tokens=40),
        rec(**refused, request_id=ID["C"], data_class="default", time=T0 + 2),
        rec(**d, **failed, time=T0 + 12 * HOUR - 2, error_class="unavailable", latency_ms=70.0),
        rec(**d, **failed, attempt=2, time=T0 + 12 * HOUR - 1, error_class="timeout", latency_ms=90.0),
        rec(**d, attempt=3, time=T0 + 12 * HOUR + 1, latency_ms=20.0, input_tokens=10, output_tokens=5),
        rec(**{**globex, **refused}, request_id=ID["E"], time=T0 - 2 * DAY_S),
    ]  # fmt: skip


def figures(calls: int, attempts: int, refusals: int, reroutes: int, retries: int, errors: int,
            tokens: tuple[int, int], p50: float | None, p95: float | None) -> dict[str, Any]:  # fmt: skip
    return {
        "calls": calls,
        "attempts": attempts,
        "refusals": refusals,
        "reroutes": reroutes,
        "retries": retries,
        "errors": errors,
        "input_tokens": tokens[0],
        "output_tokens": tokens[1],
        "p50_latency_ms": p50,
        "p95_latency_ms": p95,
    }


# Worked out by hand from known_records(). Latencies of attempts: A 10; B 30, 50; D 70, 90, 20.
# Errors count calls whose last attempt failed: B and D were retried to success, so none in these groups.
TOTAL = figures(5, 6, 2, 1, 3, 0, (310, 65), 30.0, 90.0)
ACME = figures(3, 3, 1, 1, 1, 0, (300, 60), 30.0, 50.0)
GLOBEX = figures(2, 3, 1, 0, 2, 0, (10, 5), 70.0, 90.0)


@pytest.fixture(params=["sqlite", "jsonl"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    spec = f"{request.param}://{tmp_path}/usage.{request.param}"
    with open_recorder(spec) as recorder:
        for r in known_records():
            recorder.record(r)
    return spec


def report(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["usage", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def report_json(capsys: pytest.CaptureFixture[str], store: str, *args: str) -> dict[str, Any]:
    code, out, err = report(capsys, "--store", store, "--json", *args)
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def test_figures_by_tenant_match_the_known_records(capsys: pytest.CaptureFixture[str], store: str) -> None:
    """Calls, attempts, refusals, reroutes, retries, errors, tokens and p50/p95 per tenant and in total."""
    result = report_json(capsys, store)
    assert result["records"] == 8 and result["group_by"] == ["tenant"]
    assert result["groups"] == [{"tenant": "acme", **ACME}, {"tenant": "globex", **GLOBEX}]
    assert result["total"] == TOTAL


def test_figures_by_day_count_a_call_in_each_day_it_touched(capsys: pytest.CaptureFixture[str], store: str) -> None:
    """Days are UTC dates; D's third attempt falls after midnight; a day of refusals has no latency."""
    result = report_json(capsys, store, "--group-by", "day")
    assert result["groups"] == [
        {"day": "2026-02-27", **figures(1, 0, 1, 0, 0, 0, (0, 0), None, None)},
        {"day": "2026-03-01", **figures(4, 5, 1, 1, 2, 1, (300, 60), 50.0, 90.0)},  # D's attempts that day failed
        {"day": "2026-03-02", **figures(1, 1, 0, 0, 1, 0, (10, 5), 20.0, 20.0)},
    ]


def test_group_keys_combine(capsys: pytest.CaptureFixture[str], store: str) -> None:
    """--group-by takes a comma list; target is the chosen target, or the requested one when refused."""
    result = report_json(capsys, store, "--group-by", "decision,target,model")
    keys = [(g["decision"], g["target"], g["model"], g["calls"]) for g in result["groups"]]
    assert keys == [
        ("allow", "cohere-command", "command-r", 1),
        ("allow", "openai-mini", "gpt-4o-mini", 1),
        ("refuse", "cohere-command", "-", 1),
        ("refuse", "openai-mini", "-", 1),
        ("reroute", "azure-eu-gpt4o", "gpt-4o", 1),
    ]
    by_class = report_json(capsys, store, "--group-by", "data_class")["groups"]
    assert [(g["data_class"], g["calls"], g["refusals"]) for g in by_class] == [("default", 3, 2), ("pii", 2, 0)]


def test_since_until_and_tenant_filter_the_records(capsys: pytest.CaptureFixture[str], store: str) -> None:
    """--since is inclusive, --until exclusive, both UTC; --tenant keeps one tenant."""
    result = report_json(capsys, store, "--since", "2026-03-01", "--until", "2026-03-02T00:00:00Z")
    assert (result["records"], result["since"], result["until"]) == (6, "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z")
    assert result["total"] == figures(4, 5, 1, 1, 2, 1, (300, 60), 50.0, 90.0)  # D ended that day failed
    result = report_json(capsys, store, "--tenant", "globex", "--group-by", "")
    assert result["groups"] == [GLOBEX] and result["total"] == GLOBEX


def test_csv_has_a_header_and_the_same_figures_as_json(capsys: pytest.CaptureFixture[str], store: str) -> None:
    """--csv prints one row per group with the JSON's figures; an empty percentile is an empty cell."""
    code, out, _ = report(capsys, "--store", store, "--csv", "--group-by", "tenant,day")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    groups = report_json(capsys, store, "--group-by", "tenant,day")["groups"]
    assert len(rows) == len(groups) == 4
    for row, group in zip(rows, groups, strict=True):
        assert row == {k: "" if v is None else str(v) for k, v in group.items()}


def test_the_table_shows_groups_and_a_total(capsys: pytest.CaptureFixture[str], store: str) -> None:
    """The default output is a table: a title, a header, a row per tenant and a total row."""
    code, out, _ = report(capsys, "--store", store)
    assert code == 0
    title, header, acme, globex, total = out.splitlines()
    assert title.endswith(": 8 records, 5 calls") and header.split()[:3] == ["tenant", "calls", "attempts"]
    assert acme.split() == ["acme", "3", "3", "1", "1", "1", "0", "300", "60", "30.0", "50.0"]
    assert globex.split()[:2] == ["globex", "2"] and total.split() == [
        "total",
        "5",
        "6",
        "2",
        "1",
        "3",
        "0",
        "310",
        "65",
        "30.0",
        "90.0",
    ]
    assert "\033[" not in out


def test_colour_marks_refusals_and_errors_only_when_asked(
    capsys: pytest.CaptureFixture[str], store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FORCE_COLOR paints non-zero refusals and errors red; NO_COLOR wins."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert "\033[31m" in report(capsys, "--store", store)[1]
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\033[" not in report(capsys, "--store", store)[1]


def test_the_store_defaults_to_privsdk_usage(
    capsys: pytest.CaptureFixture[str], store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --store the report reads the store PRIVSDK_USAGE names; a bare path works as --store too."""
    monkeypatch.setenv("PRIVSDK_USAGE", store)
    code, out, _ = report(capsys, "--json")
    assert code == 0 and json.loads(out)["total"] == TOTAL
    path = store.split("://", 1)[1]
    assert report_json(capsys, path)["total"] == TOTAL


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["--since", "yesterday"], {}, "--since"),
        (["--until", "7x"], {}, "--until"),
        (["--since", "1d", "--until", "2d"], {}, "is not before"),
        (["--group-by", "tenant,prompt"], {}, "'prompt'"),
        (["--group-by", "day,day"], {}, "repeated"),
        (["--store", "/nonexistent/usage.sqlite3"], {}, "no usage store"),
        ([], {"PRIVSDK_USAGE": "otlp"}, "nothing local"),
        ([], {"PRIVSDK_USAGE": "kafka://x"}, "PRIVSDK_USAGE"),
        (["prune"], {}, "--older-than"),
        (["prune", "--older-than", "90 days"], {}, "bad duration"),
    ],
)
def test_mistakes_exit_2_with_one_message(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    fragment: str,
    tmp_path: Path,
) -> None:
    """Every user mistake is one 'privsdk: configuration error' line naming the culprit, and exit status 2."""
    monkeypatch.setenv("PRIVSDK_USAGE", f"sqlite://{tmp_path}/absent.db")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, out, err = report(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith("privsdk: configuration error:") and fragment in err
    assert list(tmp_path.iterdir()) == []  # no store was created by looking


@pytest.mark.parametrize("args", [["--help"], ["prune", "--help"]])
def test_help_has_examples(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    """``privsdk usage --help`` and ``privsdk usage prune --help`` show worked examples."""
    with pytest.raises(SystemExit) as info:
        main(["usage", *args])
    assert info.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_prune_deletes_old_records_and_the_report_agrees(
    capsys: pytest.CaptureFixture[str], store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prune --older-than deletes by age; without it PRIVSDK_USAGE_MAX_AGE_DAYS gives the age."""
    now = time.time()
    with open_recorder(store) as recorder:
        recorder.record(rec(time=now - 3600))
    # The known records are from 2026-03-01 and before: an age up to that day keeps them.
    days = int((now - (T0 - 2 * DAY_S)) / DAY_S)
    code, out, _ = report(capsys, "prune", "--store", store, "--older-than", f"{days + 1}d")
    assert code == 0 and out.startswith("deleted 0 usage record(s)")
    code, out, _ = report(capsys, "prune", "--store", store, "--older-than", f"{days}d")
    assert code == 0 and out.startswith("deleted 1 usage record(s)")  # E, two days before T0
    monkeypatch.setenv("PRIVSDK_USAGE_MAX_AGE_DAYS", "1")
    code, out, _ = report(capsys, "prune", "--store", store)
    assert code == 0 and out.startswith("deleted 7 usage record(s)")
    assert report_json(capsys, store)["records"] == 1


def test_percentile_is_nearest_rank() -> None:
    """The smallest value with at least p% of the values at or below it."""
    values = [float(v) for v in range(1, 21)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == (10.0, 19.0, 20.0)
    assert percentile([7.0], 95) == 7.0 and percentile([], 50) is None


@pytest.mark.parametrize(
    "spec",
    [
        "postgresql://usage_writer:S3cretCANARY@db.internal/usage",
        "https://otel.example/v1/traces?api_key=S3cretCANARY",
        "sqlite:///var/lib/app/usage.db?key=S3cretCANARY",
    ],
)
@pytest.mark.parametrize("command", [[], ["prune", "--older-than", "30d"]], ids=["report", "prune"])
def test_a_store_spec_is_never_shown_past_its_scheme(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, spec: str, command: list[str]
) -> None:
    """--store takes what PRIVSDK_USAGE takes; a value it cannot use may hold a password or key, and the one-line
    error names --store and the value's scheme only."""
    code, out, err = report(capsys, *command, "--store", spec)
    assert code == 2 and out == ""
    assert err.startswith("privsdk: configuration error: --store: ") and "CANARY" not in err
    assert f"{spec.partition('://')[0]}:/" in err


def test_before_the_apps_first_call_usage_reports_and_prunes_nothing_without_error(tmp_path: Path) -> None:
    """`privsdk usage` and `privsdk usage prune` before any call exited 2 ("no usage store"): an app creates its
    store (the default, or PRIVSDK_USAGE's) at its first call. They print an empty report or prune nothing, say why
    on stderr, and create nothing. A file named by --store must exist: a typo there would look like an empty store."""
    home = tmp_path / "home"
    home.mkdir()
    later = tmp_path / "later.jsonl"
    for env in ({"HOME": str(home), "XDG_DATA_HOME": ""}, {"HOME": str(home), "PRIVSDK_USAGE": f"jsonl://{later}"}):
        text, as_json = run_cli("usage", **env), run_cli("usage", "--json", **env)
        pruned = run_cli("usage", "prune", "--older-than", "90d", **env)
        for done in (text, as_json, pruned):
            assert done.returncode == 0, done.stderr
            assert "no usage recorded yet" in done.stderr, done.stderr
        shown = ".local/share/privsdk/usage.sqlite3" if "PRIVSDK_USAGE" not in env else str(later)
        assert shown in text.stderr and ": 0 records, 0 calls" in text.stdout
        assert (json.loads(as_json.stdout)["records"], json.loads(as_json.stdout)["total"]["calls"]) == (0, 0)
    assert list(home.rglob("*")) == [] and not later.exists()  # looking created no store
    named = tmp_path / "named.sqlite3"
    for done in (
        run_cli("usage", "--store", str(named)),
        run_cli("usage", "prune", "--older-than", "1d", "--store", str(named)),
    ):
        assert done.returncode == 2 and "no usage store" in done.stderr, done.stderr
    assert not named.exists()
    # A store no app could have created (a path through a file) is not "nothing recorded yet": the reader's error.
    (tmp_path / "afile").write_text("")
    for args in (["usage"], ["usage", "prune", "--older-than", "1d"]):
        done = run_cli(*args, PRIVSDK_USAGE=f"sqlite://{tmp_path}/afile/usage.sqlite3")
        assert done.returncode == 2 and "no usage recorded yet" not in done.stderr, done.stderr
