"""Reading and pruning the stores an app's real calls filled: a report never changes a store, refuses records of a
newer schema, names where the store came from, and the automatic limit finds every old record wherever it is.

The records come from the openai drop-in calling a loopback stand-in of OpenAI's API, configured by environment
as a deployed app is (``PRIVSDK_ENDPOINTS``, ``PRIVSDK_USAGE``, ``PRIVSDK_USAGE_MAX_AGE_DAYS``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from privsdk import openai as dropin
from privsdk.cli import main
from privsdk.outbound.judge import Guard
from privsdk.usage.retention import DAY_S
from tests.guard_support import reset_default_guard
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer

KEY = "sk-usage-store"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(OpenAIWire(key=KEY)) as running:
        yield running


def app_calls(monkeypatch: pytest.MonkeyPatch, server: LoopbackServer, usage: str, calls: int, **env: str) -> None:
    """``calls`` chat completions through the drop-in, as an app whose PRIVSDK_USAGE is ``usage`` makes them."""
    monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{server.url}=openai.api")
    monkeypatch.setenv("PRIVSDK_USAGE", usage)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_default_guard()
    client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
    for _ in range(calls):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    Guard.default().flush(5)
    monkeypatch.delenv("PRIVSDK_USAGE")
    monkeypatch.delenv("PRIVSDK_USAGE_MAX_AGE_DAYS", raising=False)


def report(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = main(["usage", *args])
    out = capsys.readouterr()
    return code, json.loads(out.out) if code == 0 and "--json" in args else out.out, out.err


# -- a report never creates, converts or migrates a store -----------------------------------------------------------


@pytest.mark.parametrize("emptied", [b"", b"\n\n"], ids=["empty", "blank-lines"])
def test_a_report_on_an_emptied_jsonl_store_leaves_it_what_it_is(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    server: LoopbackServer,
    emptied: bytes,
) -> None:
    """app-usage.log, a JSONL store a prune emptied, is reported empty by a bare path (and when empty even as
    sqlite:///, which a blank line is not) and stays as it was: the app's next records are JSON lines in a JSONL
    file, and the next report finds them."""
    log = tmp_path / "app-usage.log"
    log.write_bytes(emptied)
    for store in [str(log)] + ([f"sqlite://{log}"] if emptied == b"" else []):
        code, result, err = report(capsys, "--store", store, "--json")
        assert code == 0 and result["records"] == 0, err
        code, out, err = report(capsys, "prune", "--store", store, "--older-than", "1d")
        assert code == 0 and out.startswith("deleted 0 usage record(s)"), err
        assert log.read_bytes() == emptied  # no SQLite schema written into it
    app_calls(monkeypatch, server, f"jsonl://{log}", 2)
    code, result, err = report(capsys, "--store", str(log), "--json")
    assert code == 0 and result["total"]["calls"] == 2 and err == ""


def test_a_report_opens_an_sqlite_store_read_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], server: LoopbackServer
) -> None:
    """A report reads the app's SQLite store read-only, beside the app's writer that still has it open."""
    db = tmp_path / "usage.sqlite3"
    app_calls(monkeypatch, server, f"sqlite://{db}", 3)
    before = db.read_bytes()
    code, result, err = report(capsys, "--store", f"sqlite://{db}", "--json")
    assert code == 0 and result["total"]["calls"] == 3, err
    assert db.read_bytes() == before


# -- records of a newer schema are refused, as SQLite refuses a newer file ------------------------------------------


def newer_line(line: str, **fields: Any) -> str:
    """``line`` as a newer privsdk would write it: schema version 2 with a field this privsdk does not know."""
    obj = json.loads(line) | {"v": 2, "request_id": "f" * 32, "cached_tokens": 0} | fields
    return json.dumps(obj, separators=(",", ":"))


def test_a_report_refuses_jsonl_records_of_a_newer_schema(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], server: LoopbackServer
) -> None:
    """A store shared with a newer privsdk (a rolling upgrade) is refused with the version and what to do, never
    reported without the newer records; a prune by hand refuses it too and leaves the file as it was."""
    path = tmp_path / "usage.jsonl"
    app_calls(monkeypatch, server, f"jsonl://{path}", 2)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, newer_line(lines[0])]) + "\n")
    written = path.read_bytes()
    for command in (["--json"], ["prune", "--older-than", "1m"]):
        code, out, err = report(capsys, *command, "--store", f"jsonl://{path}")
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert f"usage store {path} has schema version 2; this privsdk reads up to 1" in err
        assert "upgrade privsdk" in err
    assert path.read_bytes() == written


# -- the automatic limit prunes every old record, not only a first one -----------------------------------------------


def test_the_automatic_limit_finds_old_records_after_young_ones(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server: LoopbackServer
) -> None:
    """Lines are in write order, not time order (a host with a slow clock, several hosts, an app's own records):
    PRIVSDK_USAGE_MAX_AGE_DAYS deletes each record older than the limit when the sink opens, as SQLite does. A line
    of a newer privsdk, whose age this one cannot read, and a damaged line are kept."""
    path = tmp_path / "usage.jsonl"
    app_calls(monkeypatch, server, f"jsonl://{path}", 1)
    (young,) = path.read_text().splitlines()
    old = json.loads(young) | {"time": time.time() - 5 * DAY_S}
    kept = [newer_line(young, time=old["time"]), '{"v":1,"time":12']
    path.write_text("\n".join([young, json.dumps(old, separators=(",", ":")), *kept]) + "\n")
    app_calls(monkeypatch, server, f"jsonl://{path}", 1, PRIVSDK_USAGE_MAX_AGE_DAYS="2")
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and lines[0] == young and lines[1:3] == kept
    assert json.loads(lines[3])["time"] > time.time() - 60  # the second call's record


# -- errors name where the store came from --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["otlp", "none"])
def test_a_store_with_nothing_local_is_named_where_it_came_from(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """--store otlp is --store's mistake; PRIVSDK_USAGE=otlp without --store is the variable's."""
    code, _, err = report(capsys, "--store", kind)
    assert code == 2 and err.startswith(f"privsdk: configuration error: --store: the usage store is {kind}:"), err
    monkeypatch.setenv("PRIVSDK_USAGE", kind)
    code, _, err = report(capsys)
    assert code == 2 and err.startswith(f"privsdk: configuration error: PRIVSDK_USAGE: the usage store is {kind}:")
    # prune too: it named no source at all
    code, _, err = report(capsys, "prune", "--older-than", "1d")
    assert code == 2 and err.startswith(f"privsdk: configuration error: PRIVSDK_USAGE: cannot prune a {kind} store")
    code, _, err = report(capsys, "prune", "--older-than", "1d", "--store", kind)
    assert code == 2 and err.startswith(f"privsdk: configuration error: --store: cannot prune a {kind} store")
