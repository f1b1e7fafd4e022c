"""Usage stores at their edges: a JSONL store behind a symlink, in a directory others write to, shipped by a log
collector; an OTLP export under a burst or failing; SQLite files privsdk did not write, or that were tampered with."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from privsdk.usage import Recorder, jsonl, open_recorder
from privsdk.usage.otlp import OtlpSink
from privsdk.usage.record import FIELDS
from privsdk.usage.sqlite import _INSERT, open_store
from tests.conftest import REPO, run_cli
from tests.usage_collector import serve_collector
from tests.usage_support import rec

DAY = 86400.0

# -- JSONL prune --------------------------------------------------------------------------------------


def _old_and_new(path: Path) -> None:
    """A JSONL store holding one record 200 days old (tenant ``oldtenant``) and one a day old (``newtenant``)."""
    now = time.time()
    lines = [jsonl.encode(rec(time=now - 200 * DAY, tenant="oldtenant")), jsonl.encode(rec(time=now - DAY))]
    path.write_text("".join(line + "\n" for line in lines))


def _linked_store(tmp_path: Path) -> tuple[Path, Path]:
    """A JSONL store whose path is a symlink to the real file on another volume: (link, real)."""
    real = tmp_path / "logvolume" / "usage-real.jsonl"
    real.parent.mkdir()
    _old_and_new(real)
    link = tmp_path / "usage.jsonl"
    link.symlink_to(real)
    return link, real


def test_a_prune_through_a_symlink_rewrites_the_file_it_names(tmp_path: Path) -> None:
    """`privsdk usage prune` on a path that is a symlink replaced the link by a new file: the link was gone, and
    every record it said it deleted stayed in the real file, where no later prune looked."""
    link, real = _linked_store(tmp_path)
    done = run_cli("usage", "prune", "--older-than", "90d", "--store", f"jsonl://{link}")
    assert done.returncode == 0 and done.stdout.startswith("deleted 1 usage record(s)"), done.stderr
    assert link.is_symlink() and link.readlink() == real
    assert "oldtenant" not in real.read_text() and len(real.read_text().splitlines()) == 1


def test_the_automatic_limit_through_a_symlink_keeps_the_link_and_its_records(tmp_path: Path) -> None:
    """The sink's automatic limit prunes the linked file too; the app's later records go on to that file."""
    link, real = _linked_store(tmp_path)
    with open_recorder(f"jsonl://{link}", max_age_days=90) as recorder:
        recorder.record(rec(time=time.time(), tenant="fresh"))
    assert link.is_symlink() and link.readlink() == real
    text = real.read_text()
    assert "oldtenant" not in text and "fresh" in text and len(text.splitlines()) == 2


def test_a_prune_never_writes_through_a_link_planted_beside_the_store(tmp_path: Path) -> None:
    """The prune's new file had a name known in advance (PATH.prune-PID) and was opened through whatever was there:
    anyone who may write in the store's directory could plant a symlink at it, and the prune overwrote the file it
    named with the records, then renamed the link over the store."""
    store = tmp_path / "usage.jsonl"
    _old_and_new(store)
    victim = tmp_path / "elsewhere" / "important.conf"
    victim.parent.mkdir()
    victim.write_text("precious=1\n")
    Path(f"{store}.prune-{os.getpid()}").symlink_to(victim)
    assert jsonl.prune(str(store), time.time() - 90 * DAY) == 1
    assert victim.read_text() == "precious=1\n"
    assert not store.is_symlink() and "oldtenant" not in store.read_text() and len(store.read_text().splitlines()) == 1


#: A prune in a process that may write no more than 4,096 bytes to a file: the new file cannot be written.
PRUNE_PAST_A_FILE_SIZE_LIMIT = """
import resource, signal, sys, time
from privsdk.usage import jsonl

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    jsonl.prune(sys.argv[1], time.time() - 90 * 86400)
except OSError as exc:
    print(type(exc).__name__)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_FSIZE")
def test_a_prune_that_fails_leaves_no_copy_of_the_records_behind(tmp_path: Path) -> None:
    """A prune that cannot write its new file (a full disk, a file size limit) leaves the store as it was, and no
    temporary file holding a copy of its records."""
    store = tmp_path / "usage.jsonl"
    now = time.time()
    lines = [jsonl.encode(rec(time=now - 200 * DAY))] + [jsonl.encode(rec(time=now - DAY)) for _ in range(100)]
    store.write_text("".join(line + "\n" for line in lines))
    before = store.read_bytes()
    done = subprocess.run(
        [sys.executable, "-c", PRUNE_PAST_A_FILE_SIZE_LIMIT, str(store)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "OSError"), done.stderr
    assert store.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["usage.jsonl"]


def test_a_pruned_store_keeps_its_permissions(tmp_path: Path) -> None:
    """A JSONL store made group-readable (0640) for a log collector's user became 0600 at its first prune: the
    collector could no longer read the records written after it."""
    store = tmp_path / "usage.jsonl"
    _old_and_new(store)
    store.chmod(0o640)
    done = run_cli("usage", "prune", "--older-than", "90d", "--store", f"jsonl://{store}")
    assert done.returncode == 0 and done.stdout.startswith("deleted 1 usage record(s)"), done.stderr
    assert stat.S_IMODE(store.stat().st_mode) == 0o640


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root may give a file away")
def test_a_store_pruned_by_root_keeps_its_owner_and_group(tmp_path: Path) -> None:
    """An administrator's prune (as root) of an app user's store left it root's: the app could no longer append."""
    store = tmp_path / "usage.jsonl"
    _old_and_new(store)
    os.chown(store, 12345, 23456)
    assert jsonl.prune(str(store), time.time() - 90 * DAY) == 1
    assert (store.stat().st_uid, store.stat().st_gid) == (12345, 23456)


# -- OpenTelemetry: what the recorder counts is what was exported -------------------------------------


class SlowExporter(SpanExporter):
    """Keeps the spans it exports, taking ``delay`` seconds per export (a collector across a network); an export
    holding a span of the tenant ``fail`` is refused whole."""

    def __init__(self, delay: float = 0.0, fail: str | None = None):
        self.delay = delay
        self.fail = fail
        self.exported: list[ReadableSpan] = []
        self.refused: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        time.sleep(self.delay)
        if any((span.attributes or {}).get("privsdk.tenant") == self.fail for span in spans):
            self.refused.extend(spans)
            return SpanExportResult.FAILURE
        self.exported.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _otlp_recorder(exporter: SpanExporter) -> tuple[Recorder, InMemoryMetricReader]:
    metrics = InMemoryMetricReader()
    return Recorder(lambda: OtlpSink(span_exporter=exporter, metric_reader=metrics), name="otlp"), metrics


def _durations(metrics: InMemoryMetricReader) -> int:
    """How many records the duration histogram counted."""
    data = metrics.get_metrics_data()
    assert data is not None
    return sum(
        point.count
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "gen_ai.client.operation.duration"
        for point in metric.data.data_points
        if isinstance(point, HistogramDataPoint)
    )


def test_a_burst_of_records_is_exported_whole_or_counted() -> None:
    """OpenTelemetry's BatchSpanProcessor holds 2,048 spans: a burst faster than the collector took them lost the
    rest ("Queue full, dropping Span."), while the recorder counted every record written and its flush said done."""
    exporter = SlowExporter(delay=0.5)
    recorder, metrics = _otlp_recorder(exporter)
    for _ in range(5000):
        recorder.record(rec(time=time.time()))
    assert recorder.flush(60)
    assert (recorder.written, recorder.failures, len(exporter.exported)) == (5000, 0, 5000)
    assert _durations(metrics) == 5000
    recorder.close()


def test_a_failed_export_is_counted_as_failed_records(caplog: pytest.LogCaptureFixture) -> None:
    """An export the exporter refused was OpenTelemetry's to log and the recorder's to ignore: its records were
    counted written. They are failures now, and only the exported ones are in the metrics."""
    exporter = SlowExporter(fail="globex")
    recorder, metrics = _otlp_recorder(exporter)
    for tenant in ("acme", "globex", "acme"):
        for _ in range(1000):
            recorder.record(rec(time=time.time(), tenant=tenant))
        assert recorder.flush(60)  # a batch of one tenant's records
        assert recorder.failures == (0 if tenant == "acme" and not exporter.refused else 1000)
    assert len(exporter.refused) == 1000
    assert (recorder.written, recorder.failures, len(exporter.exported)) == (2000, 1000, 2000)
    assert _durations(metrics) == 2000
    recorder.close()
    logged = [r.getMessage() for r in caplog.records if r.name == "privsdk.usage"]
    assert logged == [
        "privsdk usage: the otlp usage sink failed to write (ExportFailed); the app's calls do not fail (they wait "
        "only while the queue is full), and later failures are counted in Recorder.failures without being logged"
    ]


def test_spans_a_collector_refuses_are_counted_as_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    """PRIVSDK_USAGE=otlp against a collector that answers 400: every record is a failure, none is written."""
    with serve_collector(monkeypatch) as collector:
        collector.answer = 400
        recorder = open_recorder("otlp", linger=0)
        for _ in range(20):
            recorder.record(rec(time=time.time()))
        assert recorder.flush(30)
        recorder.close(10)
    traces = [ExportTraceServiceRequest.FromString(body) for path, body in collector.posts if path == "/v1/traces"]
    assert sum(len(s.spans) for t in traces for r in t.resource_spans for s in r.scope_spans) == 20
    assert (recorder.written, recorder.failures) == (0, 20)


# -- SQLite files privsdk did not write ---------------------------------------------------------------

#: A record's values, as a program other than privsdk might store them: no tags or unmet (NULL).
FOREIGN = [1772366400.0, "a" * 32, 1, "acme", "pii", "t", None, "allow", None, "chat", "openai", "gpt", "ok", None,
           200, 1, 2, 3.0, None, None]  # fmt: skip
#: A tenant and a model holding terminal escapes, a newline and text, as a tampered file might.
TAMPERED = [1772366400.0, "b" * 32, 1, "acme\x1b[2J\x1b[31mFAKE\nCANARY-7f3a prompt text", "pii", "t", None, "allow",
            "", "chat", "openai", "gpt\x1b]0;CANARY-title\x07", "ok", None, 200, 1, 2, 3.0, None, ""]  # fmt: skip


def _foreign_sqlite(path: Path, rows: list[list[Any]]) -> None:
    """An SQLite store another program made: privsdk's table and columns, without their types or NOT NULL."""
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TABLE usage_records (id INTEGER PRIMARY KEY, {', '.join(FIELDS)})")
    conn.execute("PRAGMA user_version = 1")
    conn.executemany(_INSERT, rows)
    conn.commit()
    conn.close()


def _same_in_jsonl(path: Path, rows: list[list[Any]]) -> None:
    """The same values as JSON lines; space-separated unmet and tags as a list and an object, NULL as null."""
    with path.open("w") as f:
        for row in rows:
            obj = {"v": 1, **dict(zip(FIELDS, row, strict=True))}
            if isinstance(obj["unmet"], str):
                obj["unmet"] = obj["unmet"].split()
            if isinstance(obj["tags"], str):
                obj["tags"] = dict(pair.split("=", 1) for pair in obj["tags"].split())
            f.write(json.dumps(obj) + "\n")


def _report(store: Path, *args: str) -> tuple[int, str, str]:
    done = run_cli("usage", "--store", str(store), *args)
    table = "--json" not in args and "--csv" not in args
    title_end = done.stdout.find("\n") + 1 if table else 0  # the table's title names the file
    return done.returncode, done.stdout[title_end:], done.stderr.replace(str(store), "STORE")


def test_a_foreign_sqlite_store_reports_as_the_same_jsonl_would(tmp_path: Path) -> None:
    """A row with NULL tags ended `privsdk usage` in a traceback (exit 1). It reads as a JSON line holding null
    there does: the record, with what breaks its type replaced; a row without a valid time is skipped and counted,
    as a damaged line is. The report is the same from either store."""
    no_time = [None, *FOREIGN[1:]]
    rows = [FOREIGN, no_time, [*FOREIGN[:1], "c" * 32, *FOREIGN[2:]]]
    _foreign_sqlite(tmp_path / "usage.sqlite3", rows)
    _same_in_jsonl(tmp_path / "usage.jsonl", rows)
    for args in ([], ["--json"], ["--group-by", "tenant,model,target"]):
        code, out, err = _report(tmp_path / "usage.sqlite3", *args)
        assert (code, err) == (0, "privsdk: skipped 1 damaged record(s) in STORE\n")
        if args == ["--json"]:
            report = json.loads(out)
            assert (report["records"], report["total"]["calls"]) == (2, 2)
            out = json.dumps({**report, "store": "STORE"})
            jsonl_code, jsonl_out, jsonl_err = _report(tmp_path / "usage.jsonl", *args)
            assert (jsonl_code, jsonl_err) == (code, err)
            assert json.dumps({**json.loads(jsonl_out), "store": "STORE"}) == out
        else:
            assert _report(tmp_path / "usage.jsonl", *args) == (code, out, err)


def test_a_tampered_sqlite_store_puts_no_escape_or_text_in_a_report(tmp_path: Path) -> None:
    """Values in an SQLite store reached the table and CSV as stored, terminal escapes and newlines included (the
    JSONL reader checked its lines; the SQLite reader did not). Each row is checked now: they read as <invalid>."""
    db = tmp_path / "usage.sqlite3"
    conn = open_store(str(db))  # privsdk's own schema: a file privsdk made, changed afterwards
    conn.execute(_INSERT, TAMPERED)
    conn.close()
    _same_in_jsonl(tmp_path / "usage.jsonl", [TAMPERED])
    for args in ([], ["--csv"], ["--csv", "--group-by", "tenant,model"], ["--tenant", "<invalid>", "--json"]):
        code, out, err = _report(db, *args)
        assert (code, err) == (0, "")
        assert "\x1b" not in out and "\x07" not in out and "CANARY" not in out and "prompt" not in out
        assert "<invalid>" in out
        if "--json" in args:
            assert json.loads(out)["records"] == 1
        else:
            assert _report(tmp_path / "usage.jsonl", *args) == (code, out, err)
