"""The PRIVSDK_USAGE value, the default store's place, the SQLite and JSONL stores, and retention."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from privsdk.config import load_policy, usage_max_age_days
from privsdk.errors import ConfigError
from privsdk.usage import INVALID, Store, UsageRecord, default_store_path, jsonl, open_recorder, parse_spec, sqlite
from privsdk.usage.record import FIELDS
from privsdk.usage.retention import DAY_S, prune
from tests.usage_support import T0, rec

# -- where records go -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("none", Store("none")),
        ("otlp", Store("otlp")),
        ("sqlite:///var/lib/app/usage.db", Store("sqlite", "/var/lib/app/usage.db")),
        ("jsonl:///var/log/privsdk.jsonl", Store("jsonl", "/var/log/privsdk.jsonl")),
        ("sqlite:///C:/data/usage.db", Store("sqlite", "C:/data/usage.db")),
        (" jsonl:///tmp/x.jsonl ", Store("jsonl", "/tmp/x.jsonl")),
    ],
)
def test_specs_parse_like_file_urls(spec: str, expected: Store) -> None:
    """sqlite:///PATH and jsonl:///PATH name an absolute path as file:/// does (a Windows drive too)."""
    assert parse_spec(spec) == expected


def test_sqlite_alone_is_the_default_store() -> None:
    """``sqlite`` resolves to the default path under the user's data directory."""
    env = {"HOME": "/home/ada", "XDG_DATA_HOME": "/data"}
    assert parse_spec("sqlite", environ=env).path == default_store_path(env) == "/data/privsdk/usage.sqlite3"


@pytest.mark.parametrize(
    ("platform", "env", "path"),
    [
        ("linux", {"HOME": "/home/ada"}, "/home/ada/.local/share/privsdk/usage.sqlite3"),
        ("linux", {"HOME": "/home/ada", "XDG_DATA_HOME": "/xdg"}, "/xdg/privsdk/usage.sqlite3"),
        ("linux", {"HOME": "/home/ada", "XDG_DATA_HOME": "rel/dir"}, "/home/ada/.local/share/privsdk/usage.sqlite3"),
        ("darwin", {"HOME": "/Users/ada"}, "/Users/ada/Library/Application Support/privsdk/usage.sqlite3"),
        ("win32", {"LOCALAPPDATA": r"C:\Users\ada\AppData\Local"}, r"C:\Users\ada\AppData\Local\privsdk\usage.sqlite3"),
        ("win32", {"USERPROFILE": r"C:\Users\ada"}, r"C:\Users\ada\AppData\Local\privsdk\usage.sqlite3"),
    ],
)
def test_default_store_path_per_platform(platform: str, env: dict[str, str], path: str) -> None:
    """XDG_DATA_HOME (absolute only) or ~/.local/share; ~/Library/Application Support; %LOCALAPPDATA%."""
    assert default_store_path(env, platform) == path


def test_max_age_days_is_checked_with_the_other_variables() -> None:
    """PRIVSDK_USAGE_MAX_AGE_DAYS is a known variable: whole days, 1 or more; a bad value names the variable."""
    assert usage_max_age_days({}) is None
    assert usage_max_age_days({"PRIVSDK_USAGE_MAX_AGE_DAYS": " 90 "}) == 90
    assert load_policy({"PRIVSDK_USAGE_MAX_AGE_DAYS": "30"}).usage == "sqlite"
    for bad in ("0", "-1", "7d", "1.5", "²"):
        with pytest.raises(ConfigError, match="PRIVSDK_USAGE_MAX_AGE_DAYS") as info:
            load_policy({"PRIVSDK_USAGE_MAX_AGE_DAYS": bad})
        assert "whole number" in str(info.value)


# -- SQLite -----------------------------------------------------------------------------------------


def write_sqlite(path: Path, records: Sequence[UsageRecord], max_age_days: int | None = None) -> None:
    sink = sqlite.SqliteSink(str(path), max_age_days=max_age_days)
    sink.write(records)
    sink.close()


def test_sqlite_store_is_wal_private_and_versioned(tmp_path: Path) -> None:
    """A new store is in WAL mode with incremental auto-vacuum, schema version 1, 0600 in a 0700 directory."""
    path = tmp_path / "new" / "usage.sqlite3"
    write_sqlite(path, [rec()])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    columns = [row[1] for row in conn.execute("PRAGMA table_info(usage_records)")]
    assert columns == ["id", *FIELDS]
    conn.close()


def test_sqlite_round_trip_keeps_every_field(tmp_path: Path) -> None:
    """What goes in comes back equal: None, tuples of names and tags included; reopening migrates nothing."""
    path = tmp_path / "u.db"
    records = [
        rec(),
        rec(
            attempt=0,
            chosen_target=None,
            decision="refuse",
            unmet=(),
            vendor=None,
            model=None,
            outcome="refused",
            error_class="policy",
            http_status=None,
            input_tokens=None,
            output_tokens=None,
            latency_ms=0.0,
            tags=(),
        ),
        rec(operation="stream", first_chunk_ms=12.25, tags=(("a", "1"), ("b.c", "x:y/z@w+v")), time=T0 + 1),
    ]
    write_sqlite(path, records)
    write_sqlite(path, [])  # a second open of a current store
    assert list(sqlite.read(str(path))) == records


def test_sqlite_refuses_a_store_from_a_newer_privsdk(tmp_path: Path) -> None:
    """A file whose schema version is newer than this privsdk's is refused, not misread."""
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    with pytest.raises(ConfigError, match="schema version 7"):
        list(sqlite.read(str(path)))


def test_sqlite_read_filters_by_time_and_tenant(tmp_path: Path) -> None:
    """read() returns records in [since, until) of one tenant, oldest first."""
    path = tmp_path / "u.db"
    records = [rec(time=T0 + i, tenant="acme" if i % 2 else "globex") for i in range(10)]
    write_sqlite(path, list(reversed(records)))
    got = list(sqlite.read(str(path), since=T0 + 2, until=T0 + 8, tenant="acme"))
    assert got == [records[3], records[5], records[7]]


def test_reading_a_missing_store_is_a_config_error_and_creates_nothing(tmp_path: Path) -> None:
    """Reports and prunes never create a store."""
    for read in (sqlite.read, jsonl.read):
        with pytest.raises(ConfigError, match="no usage store"):
            list(read(str(tmp_path / "missing")))
    assert list(tmp_path.iterdir()) == []


# -- JSONL ------------------------------------------------------------------------------------------


def test_jsonl_lines_are_json_objects_that_start_with_the_version(tmp_path: Path) -> None:
    """One object per line, keys in field order after "v", tags as an object; decode gives the record back."""
    path = tmp_path / "u.jsonl"
    records = [rec(), rec(chosen_target=None, vendor=None, model=None, tags=(), first_chunk_ms=3.5)]
    sink = jsonl.JsonlSink(str(path))
    sink.write(records)
    sink.close()
    lines = path.read_text().splitlines()
    objects = [json.loads(line) for line in lines]
    assert all(line.startswith('{"v":1,') for line in lines)
    assert list(objects[0]) == ["v", *FIELDS]
    assert objects[0]["tags"] == {"team": "search"} and objects[0]["unmet"] == ["zdr", "region=eu"]
    assert objects[1]["chosen_target"] is None and objects[1]["tags"] == {}
    assert [jsonl.decode(line) for line in lines] == records
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_jsonl_survives_a_partial_line_left_by_a_killed_writer(tmp_path: Path) -> None:
    """A cut-off last line neither swallows the next record nor stops the reader; the damage is counted."""
    path = tmp_path / "u.jsonl"
    first, second, third = rec(attempt=1), rec(attempt=2), rec(attempt=3)
    path.write_text(jsonl.encode(first) + "\n" + jsonl.encode(second)[:40])  # a write cut short
    sink = jsonl.JsonlSink(str(path))
    sink.write([third])
    sink.close()
    damage = jsonl.Damage()
    assert list(jsonl.read(str(path), damage=damage)) == [first, third]
    assert damage.lines == 1
    glued = jsonl.encode(second)[:40] + jsonl.encode(third)  # had the newline been missed
    assert jsonl.decode(glued) == third


def test_jsonl_reader_skips_foreign_lines_and_refuses_newer_ones(tmp_path: Path) -> None:
    """Lines that are no records are skipped and counted, never guessed at; a record of a newer schema is refused
    (as SQLite refuses a newer file), never left out of a report as if damaged."""
    path = tmp_path / "u.jsonl"
    good = rec()
    path.write_text("\n".join(["not json", "[1, 2]", json.dumps({"hello": 1}), jsonl.encode(good)]))
    damage = jsonl.Damage()
    assert list(jsonl.read(str(path), damage=damage)) == [good]
    assert damage.lines == 3
    newer = json.loads(jsonl.encode(good)) | {"v": 2}
    with path.open("a") as f:
        f.write("\n" + jsonl.encode(good)[:40] + json.dumps(newer))  # glued to a cut-off line: newer all the same
    with pytest.raises(ConfigError, match="has schema version 2; this privsdk reads up to 1"):
        list(jsonl.read(str(path)))


def test_jsonl_reader_checks_records_like_the_writer(tmp_path: Path) -> None:
    """A hand-edited line with free text in a name field is read back with the marker, never the text."""
    path = tmp_path / "u.jsonl"
    obj = json.loads(jsonl.encode(rec())) | {"tenant": "CANARY-31 some words"}
    path.write_text(json.dumps(obj) + "\n")
    (got,) = jsonl.read(str(path))
    assert got.tenant == INVALID


# -- retention --------------------------------------------------------------------------------------


def aged(days: list[float]) -> list[UsageRecord]:
    now = time.time()
    return [rec(time=now - d * DAY_S, attempt=i) for i, d in enumerate(days, 1)]


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
def test_prune_deletes_exactly_the_old_records(tmp_path: Path, kind: str) -> None:
    """prune(before) deletes the records older than before and keeps every other one intact."""
    path = tmp_path / f"u.{kind}"
    records = aged([100, 91, 89, 10, 0])
    if kind == "sqlite":
        write_sqlite(path, records)
    else:
        sink = jsonl.JsonlSink(str(path))
        sink.write(records)
        sink.close()
    store = Store(kind, str(path))  # type: ignore[arg-type]
    assert prune(store, time.time() - 90 * DAY_S) == 2
    read = sqlite.read if kind == "sqlite" else jsonl.read
    assert list(read(str(path))) == records[2:]
    assert prune(store, time.time() - 90 * DAY_S) == 0


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
def test_the_automatic_limit_prunes_when_a_sink_opens(tmp_path: Path, kind: str) -> None:
    """A recorder with max_age_days deletes older records when its sink opens (and hourly after)."""
    path = tmp_path / f"u.{kind}"
    old = aged([40, 31, 29])
    with open_recorder(f"{kind}://{path}") as recorder:
        for r in old:
            recorder.record(r)
    with open_recorder(f"{kind}://{path}", max_age_days=30) as recorder:
        recorder.record(rec(time=time.time()))
    read = sqlite.read if kind == "sqlite" else jsonl.read
    assert [r.attempt for r in read(str(path))] == [3, 1]


def test_pruning_jsonl_while_writers_append_loses_no_record(tmp_path: Path) -> None:
    """Writers that append while prunes rewrite the file reopen the new file: every recent record survives."""
    path = tmp_path / "u.jsonl"
    stop = threading.Event()
    recent: list[int] = []
    reopened = []

    def append() -> None:
        writer = jsonl.JsonlSink(str(path))
        first = writer._inode
        i = 0
        while not stop.is_set() or i < 100:
            i += 1
            # An old record with each recent one, so that every prune has something to delete and rewrites.
            writer.write([rec(attempt=i, time=time.time() - 100 * DAY_S), rec(attempt=i, time=time.time())])
            recent.append(i)
        reopened.append(writer._inode != first)
        writer.close()

    thread = threading.Thread(target=append)
    thread.start()
    deleted = rewrites = 0
    deadline = time.monotonic() + 30
    while rewrites < 5 and time.monotonic() < deadline:  # a rewrite needs a write since the last: they interleave
        n = jsonl.prune(str(path), time.time() - DAY_S) if path.exists() else 0
        deleted += n
        rewrites += n > 0
        time.sleep(0.001)
    stop.set()
    thread.join(10)
    deleted += jsonl.prune(str(path), time.time() - DAY_S)
    assert deleted == len(recent)  # every old record, once
    assert reopened == [True]
    assert sorted(r.attempt for r in jsonl.read(str(path))) == recent
    assert os.listdir(tmp_path) == ["u.jsonl"]  # no temporary file left behind


# -- one bad row costs only itself -------------------------------------------------------------------------------


def test_sqlite_keeps_every_row_of_a_batch_but_one_it_cannot_store(tmp_path: Path) -> None:
    """A record the writer's checks let through is always storable; a sink given one that is not (an integer past
    SQLite's 64 bits) writes the others row by row and says how many, rather than lose the batch."""
    from privsdk.usage.writer import PartialWrite

    path = str(tmp_path / "usage.sqlite3")
    sink = sqlite.SqliteSink(path)
    batch = [rec(input_tokens=i) for i in range(5)]
    batch[2] = rec(input_tokens=10**20)
    with pytest.raises(PartialWrite) as info:
        sink.write(batch)
    assert info.value.written == 4 and isinstance(info.value.__cause__, OverflowError)
    sink.write([rec(input_tokens=9)])  # the sink goes on
    sink.close()
    assert [r.input_tokens for r in sqlite.read(path)] == [0, 1, 3, 4, 9]


def test_jsonl_keeps_every_line_of_a_batch_but_one_it_cannot_encode(tmp_path: Path) -> None:
    from privsdk.usage.writer import PartialWrite

    path = tmp_path / "usage.jsonl"
    sink = jsonl.JsonlSink(str(path))
    with pytest.raises(PartialWrite) as info:
        sink.write([rec(tenant="a"), rec(tenant="caf\u00e9"), rec(tenant="c")])
    assert info.value.written == 2
    with pytest.raises(PartialWrite) as info:
        sink.write([rec(tenant="caf\u00e9")])
    assert info.value.written == 0
    sink.close()
    assert [r.tenant for r in jsonl.read(str(path))] == ["a", "c"]


def test_a_recorder_loses_no_record_of_a_batch_with_an_absurd_count(tmp_path: Path) -> None:
    """Through the recorder, as the app's calls reach it: the count is none, every record is written."""
    path = tmp_path / "usage.sqlite3"
    with open_recorder(f"sqlite://{path}", linger=60) as recorder:
        for count in (1, 10**20, 3, 2**64, 5):
            recorder.record(rec(input_tokens=count, attempt=count))
        assert recorder.flush(10)
        assert (recorder.written, recorder.failures, recorder.invalid) == (5, 0, 2)
    assert [(r.input_tokens, r.attempt) for r in sqlite.read(str(path))] == [
        (1, 1),
        (None, 0),
        (3, 3),
        (None, 0),
        (5, 5),
    ]


# -- a store's spec in an error ------------------------------------------------------------------------------------

SECRET = "S3cretCANARY"
SECRET_SPECS = [
    f"postgresql://usage_writer:{SECRET}@db.internal/usage",
    f"https://otel.example/v1/traces?api_key={SECRET}",
    f"sqlite:///var/lib/app/usage.db?key={SECRET}",
    f"jsonl:///var/log/usage.jsonl#{SECRET}",
    f"sqlite://usage_writer:{SECRET}@db/usage",
    f"Bearer {SECRET}",
    f"{SECRET}://x",
]


@pytest.mark.parametrize("spec", SECRET_SPECS)
def test_a_bad_spec_is_named_by_its_scheme_and_where_it_came_from(spec: str) -> None:
    """A connection string can hold a password or a key: an error shows the scheme at most, and names the variable,
    argument or option the value came from."""
    for where, call in (
        ("usage", lambda: open_recorder(spec)),
        ("PRIVSDK_USAGE", lambda: parse_spec(spec)),
        ("--store", lambda: parse_spec(spec, where="--store")),
    ):
        with pytest.raises(ConfigError) as info:
            call()
        assert str(info.value).startswith(f"{where}: bad value ") and SECRET not in str(info.value)
    scheme = spec.partition("://")[0]
    if scheme in ("postgresql", "https", "sqlite", "jsonl"):
        assert f"{scheme}://..." in str(info.value)


def test_a_spec_that_is_no_string_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^usage: a int is not a usage store"):
        open_recorder(42)  # type: ignore[arg-type]
