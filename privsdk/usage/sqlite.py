"""The SQLite store (``PRIVSDK_USAGE=sqlite``): one table, WAL mode, many writers at once.

* **Many writers.** WAL mode lets readers run beside the one writer of the
  moment; each batch is one ``BEGIN IMMEDIATE`` transaction, and a writer that
  finds the database locked waits (``BUSY_TIMEOUT_S``) instead of failing, so
  threads and processes can share one file.
* **Crashes.** A process killed mid-batch leaves an uncommitted transaction,
  which SQLite rolls back on the next open: every committed record stays.
  ``synchronous=NORMAL`` keeps commits across a crash of the process; a power
  cut may lose the last few.
* **Schema.** ``PRAGMA user_version`` holds the schema version;
  :data:`MIGRATIONS` brings an older file up to date, once, under a write lock.
  A file from a newer privsdk is refused rather than misread.
* **Reading.** Only a sink creates or migrates a file: a report opens it
  read-only, and a report or a prune leaves a file without the table as it is.
  Every row read goes through the checks a record passes before a sink
  (:func:`privsdk.usage.sanitize.clean`), as every JSONL line does: a file
  another program wrote or changed can put no text, newline or terminal escape
  in a report, and a value of another type (a NULL, a BLOB) is replaced, never
  a crash. A row without a valid time is skipped and counted, like a damaged line.
* **Files.** The database is created readable by its owner only (0600) in a
  directory only the owner can enter (0700).
"""

from __future__ import annotations

import os
import pathlib
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from privsdk.usage import newer_schema
from privsdk.usage.record import FIELDS, SCHEMA_VERSION, UsageRecord
from privsdk.usage.retention import DAY_S, PRUNE_EVERY_S
from privsdk.usage.sanitize import NAME, clean
from privsdk.usage.spec import no_store
from privsdk.usage.writer import PartialWrite

if TYPE_CHECKING:
    from privsdk.usage.jsonl import Damage

BUSY_TIMEOUT_S = 30.0

#: Statements per schema version: MIGRATIONS[n] takes a file from version n to n + 1.
#: ``unmet`` and ``tags`` are space-separated tokens (``zdr region=eu``, ``team=search env=prod``):
#: no name, tag key or tag value can hold a space or, in a key, an ``=``.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE usage_records (
            id INTEGER PRIMARY KEY,
            time REAL NOT NULL,
            request_id TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            tenant TEXT NOT NULL,
            data_class TEXT NOT NULL,
            requested_target TEXT NOT NULL,
            chosen_target TEXT,
            decision TEXT NOT NULL,
            unmet TEXT NOT NULL,
            operation TEXT NOT NULL,
            vendor TEXT,
            model TEXT,
            outcome TEXT NOT NULL,
            error_class TEXT,
            http_status INTEGER,
            input_tokens INTEGER,
            output_tokens INTEGER,
            latency_ms REAL NOT NULL,
            first_chunk_ms REAL,
            tags TEXT NOT NULL
        )""",
        "CREATE INDEX usage_records_time ON usage_records (time)",
    ),
)
assert len(MIGRATIONS) == SCHEMA_VERSION
_INSERT = f"INSERT INTO usage_records ({', '.join(FIELDS)}) VALUES ({', '.join('?' * len(FIELDS))})"
#: Rows per INSERT statement: SQLite releases the interpreter lock around every statement it runs, and a
#: writer thread that takes it back once per row costs a CPU-bound app thread a lock hand-over each time.
#: 999 bound values is the smallest limit any SQLite has had.
_ROWS_PER_INSERT = 999 // len(FIELDS)
_ROW = f"({', '.join('?' * len(FIELDS))})"
_INSERT_MANY = f"INSERT INTO usage_records ({', '.join(FIELDS)}) VALUES " + ", ".join([_ROW] * _ROWS_PER_INSERT)
_SELECT = f"SELECT {', '.join(FIELDS)} FROM usage_records"
#: What one row's value can raise while SQLite binds or stores it (an integer past 64 bits, a type it cannot
#: bind, a constraint): the batch is then written row by row. Anything else (a locked or full database) is the
#: whole batch's failure.
_ROW_ERRORS = (OverflowError, sqlite3.InterfaceError, sqlite3.ProgrammingError, sqlite3.IntegrityError)

T = TypeVar("T")


class SqliteSink:
    """Writes batches to one SQLite file; used by one writer thread, any number of them per file."""

    def __init__(self, path: str, *, max_age_days: int | None = None):
        self.path = path
        self._conn = open_store(path)
        self._max_age_days = max_age_days
        self._next_prune = 0.0
        self._prune_due()

    def write(self, batch: Sequence[UsageRecord]) -> None:
        rows = [_row(r) for r in batch]
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")  # take the write lock now, waiting for it, rather than fail at the first insert
        try:
            try:
                full = len(rows) - len(rows) % _ROWS_PER_INSERT
                for i in range(0, full, _ROWS_PER_INSERT):
                    conn.execute(_INSERT_MANY, [v for row in rows[i : i + _ROWS_PER_INSERT] for v in row])
                if full < len(rows):
                    conn.executemany(_INSERT, rows[full:])
            except _ROW_ERRORS:
                # One row SQLite will not take (a value it cannot bind) must not cost the batch: start again,
                # one row at a time, and keep every row it takes.
                conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                written, first = self._rows_one_by_one(rows)
                conn.execute("COMMIT")
                if first is not None:
                    self._prune_due()
                    raise PartialWrite(written) from first
            else:
                conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._prune_due()

    def _rows_one_by_one(self, rows: list[tuple[Any, ...]]) -> tuple[int, BaseException | None]:
        """Insert ``rows`` one by one in the open transaction; the number inserted, and the first row's error."""
        written = 0
        first: BaseException | None = None
        for row in rows:
            try:
                self._conn.execute(_INSERT, row)  # a failed statement undoes itself alone, not the transaction
            except _ROW_ERRORS as exc:
                first = first or exc
            else:
                written += 1
        return written, first

    def _prune_due(self) -> None:
        if self._max_age_days and time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_EVERY_S
            delete_before(self._conn, time.time() - self._max_age_days * DAY_S)

    def flush(self) -> None:
        pass  # every batch is committed when write() returns

    def close(self) -> None:
        self._conn.close()


#: unmet and tags joined into their column text, per distinct value: few distinct values recur in most records.
_JOINED: dict[tuple[Any, ...], str] = {}


def _joined(items: tuple[Any, ...]) -> str:
    text = _JOINED.get(items)
    if text is None:
        text = " ".join(item if type(item) is str else f"{item[0]}={item[1]}" for item in items)
        if len(_JOINED) < 4096:
            _JOINED[items] = text
    return text


def _row(r: UsageRecord) -> tuple[Any, ...]:
    return (*r[:8], _joined(r.unmet), *r[9:19], _joined(r.tags))


def _record(row: tuple[Any, ...]) -> UsageRecord:
    """The record a row holds, unchecked: :func:`read` checks it. A ``unmet`` or ``tags`` column that is no text (a
    NULL or a BLOB, in a file privsdk did not write) is passed on as it is, for the checks to replace."""
    unmet, tags = row[8], row[19]
    if type(unmet) is str:
        unmet = tuple(unmet.split())
    if type(tags) is str:
        tags = tuple(tuple(pair.split("=", 1)) for pair in tags.split())
    return UsageRecord._make((*row[:8], unmet, *row[9:19], tags))


def open_store(path: str) -> sqlite3.Connection:
    """A writer's connection to the store at ``path``, made if missing, its schema brought up to date."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
    # Create the file before SQLite does, so that it is the owner's only whatever the umask.
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        _retry_while_busy(lambda: _migrate(conn, path))
        conn.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def _existing(path: str, *, mode: str) -> sqlite3.Connection | None:
    """A connection to the store at ``path`` as it is (``mode`` ``ro`` for a report, ``rw`` for a prune), or None
    when no sink has made its table yet.

    Reports and prunes never create, convert or migrate a file: an empty file (a JSONL store a prune emptied,
    read as SQLite by its name) must stay what it is, or its writers would append JSON lines to a database.
    """
    if not os.path.isfile(path):
        raise no_store(path)
    uri = f"{pathlib.Path(os.path.abspath(path)).as_uri()}?mode={mode}"
    conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        if _version(conn, path) == 0:  # a newer schema is refused there; none yet: the file holds no records
            conn.close()
            return None
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    version = _version(conn, path)
    if version == SCHEMA_VERSION:
        return
    # auto_vacuum only takes effect before the first table exists; INCREMENTAL lets prune give space back.
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _version(conn, path)  # another process may have migrated while this one waited for the lock
        for statements in MIGRATIONS[version:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _version(conn: sqlite3.Connection, path: str) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise newer_schema(path, version)
    return version


def _retry_while_busy(step: Callable[[], T]) -> T:
    """Run ``step``, again while another connection holds a lock SQLite's busy handler does not wait for.

    Switching a new file to WAL takes an exclusive lock without calling the
    busy handler, so processes opening one new store at once can see "database
    is locked" immediately.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.001
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def read(
    path: str,
    *,
    since: float | None = None,
    until: float | None = None,
    tenant: str | None = None,
    damage: Damage | None = None,
) -> Iterator[UsageRecord]:
    """The records in ``[since, until)`` (Unix seconds), of one tenant if given, oldest first.

    Each row is checked as a JSONL line is (:func:`privsdk.usage.jsonl.decode`), so that the same values read the
    same from either store: a field that breaks its type reads as ``<invalid>`` (or none), and a row without a valid
    time, which no check can replace, is skipped and counted in ``damage``.
    """
    conn = _existing(path, mode="ro")
    if conn is None:
        return
    try:
        clauses, params = _where(since, until)
        if tenant is not None and NAME.fullmatch(tenant):
            # Only narrows: a stored value equals a name exactly when its checked value does. Any other tenant
            # (``<invalid>``) is matched on the checked values alone, below.
            clauses.append("tenant = ?")
            params.append(tenant)
        sql = _SELECT + (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY time, id"
        for row in conn.execute(sql, params):
            rec, bad = clean(_record(row))
            if "time" in bad:
                if damage is not None:
                    damage.lines += 1
                continue
            if tenant is None or rec.tenant == tenant:
                yield rec
    finally:
        conn.close()


def _where(since: float | None, until: float | None) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if since is not None:
        clauses.append("time >= ?")
        params.append(since)
    if until is not None:
        clauses.append("time < ?")
        params.append(until)
    return clauses, params


def prune(path: str, before: float) -> int:
    """Delete the records older than ``before`` (Unix seconds); the number deleted."""
    conn = _existing(path, mode="rw")
    if conn is None:
        return 0
    try:
        return delete_before(conn, before)
    finally:
        conn.close()


def delete_before(conn: sqlite3.Connection, before: float) -> int:
    deleted = conn.execute("DELETE FROM usage_records WHERE time < ?", (before,)).rowcount
    if deleted:
        conn.execute("PRAGMA incremental_vacuum")  # give the freed pages back to the file system
    return deleted
