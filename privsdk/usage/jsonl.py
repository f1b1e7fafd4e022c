"""The JSONL store (``PRIVSDK_USAGE=jsonl:///PATH``): one JSON object per line, appended by many processes.

* **Many writers.** The file is opened with ``O_APPEND``, each batch is one
  ``write()``, and where ``fcntl`` exists (not on Windows) a writer holds an
  ``flock`` on the file while it appends: the lines of concurrent writers never
  interleave.
* **Crashes.** A writer killed in the middle of a write can leave a partial
  last line. The next batch starts on a new line when the file does not end
  with one, and the reader skips a damaged line, recovering a whole record
  glued to its end (every line starts with ``{"v":``, which no field can hold).
* **Pruning.** :func:`prune` holds the same lock while it writes the kept
  lines to a new file and renames it into place; a writer that then finds the
  path naming another file reopens it. So pruning loses no record being
  written. (On Windows, prune only while no process writes.) The automatic
  limit looks at every line, when the sink opens and then hourly, without the
  lock, and rewrites only when a record is too old: lines are in write order,
  not in time order. A path that is a symbolic link has the file it names
  rewritten, and the new file keeps the old one's permissions (and owner and
  group, where the process may set them); it is made under a random name,
  exclusively, so that no link planted beside the store redirects the write.
* **Versions.** A line of a newer schema is refused by a report or a prune by
  hand (as SQLite refuses a newer file), never counted as damage and left out.
* **Files.** Created readable by its owner only (0600).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import time
from collections.abc import Iterator, Sequence
from typing import Any

from privsdk.usage import newer_schema
from privsdk.usage.record import FIELDS, SCHEMA_VERSION, UsageRecord
from privsdk.usage.retention import DAY_S, PRUNE_EVERY_S
from privsdk.usage.sanitize import clean
from privsdk.usage.spec import no_store
from privsdk.usage.writer import PartialWrite

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

#: Every line starts with this: the schema version comes first.
LINE_START = '{"v":'
_TAGS = FIELDS.index("tags")


def encode(r: UsageRecord) -> str:
    """One checked record as a JSON object, without the newline: ``{"v":1,"time":...,"unmet":[...],"tags":{...}}``.

    Written out by hand, about four times faster than :mod:`json`: a checked record's strings are names, ids
    and tag values that hold no quote, backslash or control character, so none needs escaping, and its
    numbers are finite, so ``repr`` writes them as JSON does. Only records that passed
    :func:`privsdk.usage.sanitize.clean` may be given.
    """
    unmet = ",".join([f'"{u}"' for u in r.unmet])
    tags = ",".join([f'"{k}":"{v}"' for k, v in r.tags])
    return (
        f'{{"v":{SCHEMA_VERSION},"time":{r.time!r},"request_id":"{r.request_id}","attempt":{r.attempt},'
        f'"tenant":"{r.tenant}","data_class":"{r.data_class}","requested_target":"{r.requested_target}",'
        f'"chosen_target":{_text(r.chosen_target)},"decision":"{r.decision}","unmet":[{unmet}],'
        f'"operation":"{r.operation}","vendor":{_text(r.vendor)},"model":{_text(r.model)},'
        f'"outcome":"{r.outcome}","error_class":{_text(r.error_class)},"http_status":{_number(r.http_status)},'
        f'"input_tokens":{_number(r.input_tokens)},"output_tokens":{_number(r.output_tokens)},'
        f'"latency_ms":{r.latency_ms!r},"first_chunk_ms":{_number(r.first_chunk_ms)},"tags":{{{tags}}}}}'
    )


def _text(value: str | None) -> str:
    return "null" if value is None else f'"{value}"'


def _number(value: float | None) -> str:
    return "null" if value is None else repr(value)


def decode(line: str | bytes) -> UsageRecord | None:
    """The record on one line, checked like any record before a sink; None for a damaged or foreign line, and
    for a line of a newer schema (:func:`newer_version` tells those apart)."""
    obj = _line_object(line)
    version = obj.get("v") if obj is not None else None
    if obj is None or type(version) is not int or not 1 <= version <= SCHEMA_VERSION:
        return None  # not a usage record, or one from a newer privsdk that this one cannot read
    tags = obj.get("tags")
    values = [obj.get(f) for f in FIELDS]
    values[_TAGS] = tuple(tags.items()) if isinstance(tags, dict) else tags
    rec, bad = clean(UsageRecord._make(values))
    return None if "time" in bad else rec


def newer_version(line: str | bytes) -> int | None:
    """The schema version of a record a newer privsdk wrote on ``line``, which this one cannot read; else None."""
    obj = _line_object(line)
    version = obj.get("v") if obj is not None else None
    return version if type(version) is int and version > SCHEMA_VERSION else None


def _line_object(line: str | bytes) -> dict[str, Any] | None:
    obj = _object(line)
    if obj is None:
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        start = text.rfind(LINE_START)
        obj = _object(text[start:]) if start > 0 else None  # a partial line with a whole record glued to it
    return obj


def _object(text: str | bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


class JsonlSink:
    """Appends batches to one JSONL file; any number of processes may append to it at once."""

    def __init__(self, path: str, *, max_age_days: int | None = None):
        self.path = path
        self._max_age_days = max_age_days
        self._next_prune = 0.0
        self._fd = -1
        self._inode = (0, 0)
        self._open()
        self._prune_due()

    def _open(self) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), mode=0o700, exist_ok=True)
        # Read as well as append: a batch reads the last byte to know whether the file ends a line.
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        st = os.fstat(self._fd)
        self._inode = (st.st_dev, st.st_ino)

    def write(self, batch: Sequence[UsageRecord]) -> None:
        failed: Exception | None = None
        lines: list[str] = []
        try:
            data = ("\n".join([encode(r) for r in batch]) + "\n").encode("ascii")
        except (ValueError, TypeError) as exc:  # a record that is no checked record: never the batch's loss
            failed = exc
            lines = _each(batch)
            if not lines:
                raise PartialWrite(0) from exc
            data = ("\n".join(lines) + "\n").encode("ascii")
        self._lock()
        try:
            # Under the lock no other writer is half-way through a write, so a last line without its
            # newline was left by a killed writer: never glue a record to it.
            if fcntl is not None and not _ends_with_newline(self._fd):
                data = b"\n" + data
            _write_all(self._fd, data)
        finally:
            _unlock(self._fd)
        self._prune_due()
        if failed is not None:
            raise PartialWrite(len(lines)) from failed

    def _lock(self) -> None:
        """Hold the lock on the file the path names now, reopening if a prune replaced it.

        Exclusive, although O_APPEND alone keeps whole writes apart: while a large write is under way its
        partial end is visible to other processes, and the newline check above must not see it.
        """
        if fcntl is None:
            return
        while True:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            if _inode_at(self.path) == self._inode:
                return
            _unlock(self._fd)
            os.close(self._fd)
            self._open()

    def _prune_due(self) -> None:
        if self._max_age_days and time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_EVERY_S
            cutoff = time.time() - self._max_age_days * DAY_S
            # Lines are in write order, not time order (several hosts, clocks, an app's own records): look at
            # every one, without the writers' lock, and rewrite the file under it only when one is too old.
            if _holds_record_before(self.path, cutoff):
                prune(self.path, cutoff, keep_newer=True)  # lines of a newer privsdk: their age is not ours to read

    def flush(self) -> None:
        pass  # every batch is in the file when write() returns

    def close(self) -> None:
        os.close(self._fd)


def _each(batch: Sequence[UsageRecord]) -> list[str]:
    """The lines of the records of ``batch`` that encode, one by one."""
    lines = []
    for r in batch:
        try:
            line = encode(r)
            line.encode("ascii")
        except (ValueError, TypeError):
            continue
        lines.append(line)
    return lines


def _ends_with_newline(fd: int) -> bool:
    size = os.fstat(fd).st_size
    if size == 0 or not hasattr(os, "pread"):
        return True
    return os.pread(fd, 1, size - 1) == b"\n"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _inode_at(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


#: The start of a line this privsdk's :func:`encode` wrote, up to the record's time (a positive float's repr).
_TIME = re.compile(rb'\{"v":%d,"time":([0-9]+\.[0-9]+(?:e[+-]?[0-9]+)?|[0-9]+e[+-]?[0-9]+),' % SCHEMA_VERSION)


def _holds_record_before(path: str, cutoff: float) -> bool:
    """Whether a record in ``path`` is older than ``cutoff``. Cheap enough to run at each open and hourly: the time
    of a line :func:`encode` wrote is read by a regular expression, some 25 times faster than decoding it; any
    other line is decoded."""
    try:
        with open(path, "rb") as f:
            for line in f:
                match = _TIME.match(line)
                if match is not None:
                    if float(match[1]) < cutoff:
                        return True
                elif line.strip():
                    rec = decode(line)
                    if rec is not None and rec.time < cutoff:
                        return True
    except FileNotFoundError:
        pass
    return False


class Damage:
    """What a read skipped: lines that held no record (a write cut short by a killed process, or foreign text)."""

    def __init__(self) -> None:
        self.lines = 0


def read(
    path: str,
    *,
    since: float | None = None,
    until: float | None = None,
    tenant: str | None = None,
    damage: Damage | None = None,
) -> Iterator[UsageRecord]:
    """The records in ``[since, until)`` (Unix seconds), of one tenant if given, in file order."""
    if not os.path.isfile(path):
        raise no_store(path)
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            rec = decode(line)
            if rec is None:
                _refuse_newer(path, line)  # as SQLite refuses a newer file: never a report that leaves them out
                if damage is not None:
                    damage.lines += 1
                continue
            if (
                (since is None or rec.time >= since)
                and (until is None or rec.time < until)
                and (tenant is None or rec.tenant == tenant)
            ):
                yield rec


def _refuse_newer(path: str, line: bytes) -> None:
    version = newer_version(line)
    if version is not None:
        raise newer_schema(path, version)


def prune(path: str, before: float, *, keep_newer: bool = False) -> int:
    """Delete the records older than ``before`` (Unix seconds) by rewriting the file; the number deleted.

    Lines that hold no record are kept: their age is unknown. A line of a newer schema is a ConfigError (a
    prune by hand refuses what it cannot read, as a report does), or with ``keep_newer`` (a sink's automatic
    limit, which must not fail the writes of an older privsdk sharing the file) kept.

    When ``path`` is a symbolic link (to a log volume, say), the file it names is rewritten and the link stays:
    replacing the link by a new file would leave every deleted record in the file it named.
    """
    if not os.path.isfile(path):
        raise no_store(path)
    while True:  # lock the file the path names, even if another prune replaces it meanwhile
        real = os.path.realpath(path)
        fd = os.open(real, os.O_RDONLY)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        st = os.fstat(fd)
        if fcntl is None or _inode_at(real) == (st.st_dev, st.st_ino):
            break
        os.close(fd)
    try:
        with os.fdopen(os.dup(fd), "rb") as f:
            lines = f.read().splitlines(keepends=True)
        kept = []
        for line in lines:
            rec = decode(line) if line.strip() else None
            if rec is None and line.strip() and not keep_newer:
                _refuse_newer(path, line)
            if rec is None or rec.time >= before:
                kept.append(line if line.endswith(b"\n") or not line.strip() else line + b"\n")
        deleted = sum(1 for line in lines if line.strip()) - sum(1 for line in kept if line.strip())
        if deleted:
            _replace(real, b"".join(kept), st)
        return deleted
    finally:
        os.close(fd)  # releases the lock, after the rename: writers waiting for it then see the new file


def _replace(real: str, data: bytes, old: os.stat_result) -> None:
    """Put ``data`` in place of the file ``real``, by a new file beside it renamed over it.

    The new file's name is random and it is created exclusively, never through a link: a directory others can
    write to (a shared log volume) could otherwise hold a link planted at a name known in advance, and the prune
    would overwrite the file it names. The new file keeps the old one's permissions (a log collector's group may
    read it) and, where this process may set them, its owner and group.
    """
    temp = f"{real}.prune-{os.urandom(8).hex()}"
    out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        try:
            _keep_owner_and_mode(out, old)
            _write_all(out, data)
            os.fsync(out)
        finally:
            os.close(out)
        os.replace(temp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)  # never leave a copy of the records behind
        raise


def _keep_owner_and_mode(fd: int, old: os.stat_result) -> None:
    if hasattr(os, "fchown"):  # not on Windows
        try:
            os.fchown(fd, old.st_uid, old.st_gid)
        except PermissionError:  # another user's file: its group, at least, if this process is in that group
            with contextlib.suppress(PermissionError):
                os.fchown(fd, -1, old.st_gid)
    # After the owner: a change of owner may clear the set-id bits.
    if hasattr(os, "fchmod"):
        os.fchmod(fd, stat.S_IMODE(old.st_mode))
