"""Canaries: text planted in every field of a record, and in tags, never reaches any sink or log.

Each canary is text a careless caller could put where a name belongs: a prompt,
a system text, an error message with a quote, a long token, a credential with a
space. Each is written through every sink (SQLite, JSONL, OpenTelemetry in
memory and over OTLP/HTTP, an app's function), for every outcome, and then the
bytes of every file, export and log line are searched for it.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from privsdk.errors import TagError
from privsdk.usage import INVALID, Recorder, UsageRecord, check_tags, open_recorder
from privsdk.usage.otlp import OtlpSink
from tests.conftest import every_logger_at_debug
from tests.usage_collector import Collector, serve_collector
from tests.usage_support import rec

MARK = "CANARY"
#: Each is one canary: MARK, a number, and something that makes it no name (a space, a quote, a newline, length).
CANARIES = [
    f"{MARK}01 summarise the attached contract for me",
    f"{MARK}02\nYou are a helpful assistant.",
    f'{MARK}03"}}, "injected": true',
    f"{MARK}04" + "A" * 200,
    f"{MARK}05 sk-proj-0123456789abcdef",
    f"{MARK}06\tget_weather(city='Paris')",
    f"{MARK}07 Fehler: Ungültige Anfrage",
    f"{MARK}08 /home/ada/secret plans.pdf",
]
NAME_FIELDS = ["tenant", "data_class", "requested_target", "chosen_target", "vendor", "model"]
OUTCOMES: list[dict[str, Any]] = [
    {"outcome": "ok"},
    {"outcome": "error", "error_class": "vendor_error", "http_status": 500, "output_tokens": None},
    {"outcome": "error", "error_class": "content_refused", "http_status": 400},
    {"outcome": "cancelled", "error_class": None},
    {"outcome": "refused", "decision": "refuse", "attempt": 0, "chosen_target": None, "error_class": "policy"},
]


def canary_records() -> list[UsageRecord]:
    """Records with a canary in each name field, the unmet list, the request id, enums and tags, per outcome."""
    out = []
    for n, outcome in enumerate(OUTCOMES):
        for i, text in enumerate(CANARIES):
            field = NAME_FIELDS[(i + n) % len(NAME_FIELDS)]
            out.append(rec(**{**outcome, field: text}))
        pick = [CANARIES[(n + k) % len(CANARIES)] for k in range(6)]
        out.append(rec(**outcome, unmet=("zdr", pick[0])))
        out.append(rec(**outcome, request_id=pick[1]))
        out.append(rec(**outcome, tags=(("note", pick[2]),)))
        out.append(rec(**outcome, tags=((pick[3], "v"),)))
        out.append(rec(**{**outcome, "operation": pick[4], "decision": pick[5]}))
        out.append(rec(**outcome, model=pick[0].encode()))  # bytes, not a str
    return out


RECORDS = canary_records()


def assert_no_canary(data: bytes | str, where: str) -> None:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    assert MARK not in text, f"a canary reached {where}"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with every_logger_at_debug(caplog):
        yield caplog
    records = caplog.get_records("call")
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    assert_no_canary("\n".join(formatter.format(r) for r in records), "the logs")
    assert any(r.name == "privsdk.usage" for r in records)  # the replaced fields were reported, by name


def write_all(recorder: Recorder) -> Recorder:
    for r in RECORDS:
        recorder.record(r)
    assert recorder.flush(10)
    assert (recorder.written, recorder.failures, recorder.invalid) == (len(RECORDS), 0, len(RECORDS))
    return recorder


def test_tags_with_canaries_are_refused_without_echoing_them() -> None:
    """check_tags raises for canary keys and values, and the message holds no canary."""
    for text in CANARIES:
        for tags in ({"note": text}, {text: "v"}, {"note": "ok", "other": text}):
            with pytest.raises(TagError) as info:
                check_tags(tags)
            assert_no_canary(str(info.value), "a TagError message")
            assert_no_canary("".join(traceback.format_exception(info.value)), "a TagError's traceback")
            assert info.value.__cause__ is None and info.value.__context__ is None


def test_sqlite_files_hold_no_canary(tmp_path: Path, logs: pytest.LogCaptureFixture) -> None:
    """Neither the database nor its WAL and shared-memory files hold a canary, before or after close."""
    recorder = write_all(open_recorder(f"sqlite://{tmp_path}/usage.sqlite3"))
    files = list(tmp_path.iterdir())
    assert {f.name for f in files} >= {"usage.sqlite3", "usage.sqlite3-wal"}
    for f in files:
        assert_no_canary(f.read_bytes(), f.name)
    recorder.close()
    for f in tmp_path.iterdir():
        assert_no_canary(f.read_bytes(), f.name)
    assert INVALID.encode() in (tmp_path / "usage.sqlite3").read_bytes()


def test_jsonl_file_holds_no_canary(tmp_path: Path, logs: pytest.LogCaptureFixture) -> None:
    """The JSONL file holds one line per record and no canary."""
    path = tmp_path / "usage.jsonl"
    write_all(open_recorder(f"jsonl://{path}")).close()
    data = path.read_bytes()
    assert data.count(b"\n") == len(RECORDS)
    assert_no_canary(data, path.name)


def test_an_apps_function_gets_no_canary(logs: pytest.LogCaptureFixture) -> None:
    """A callable sink is handed checked records only."""
    got: list[UsageRecord] = []
    write_all(open_recorder(got.append)).close()
    assert len(got) == len(RECORDS)
    assert_no_canary(repr(got), "the app's function")


def test_opentelemetry_in_memory_holds_no_canary(logs: pytest.LogCaptureFixture) -> None:
    """No span name, attribute, status or metric point carries a canary."""
    spans, metrics = InMemorySpanExporter(), InMemoryMetricReader()
    write_all(Recorder(lambda: OtlpSink(span_exporter=spans, metric_reader=metrics))).close()
    finished = spans.get_finished_spans()
    assert len(finished) == len(RECORDS)
    for span in finished:
        assert_no_canary(span.to_json(), "a span")
    data = metrics.get_metrics_data()
    assert data is not None
    assert_no_canary(data.to_json(), "the metrics")


def test_otlp_http_export_holds_no_canary(monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture) -> None:
    """The bytes posted to an OTLP/HTTP collector hold no canary."""
    with serve_collector(monkeypatch) as collector:
        write_all(open_recorder("otlp")).close(10)
        posts: list[tuple[str, bytes]] = list(collector.posts)
    assert {path for path, _ in posts} == {"/v1/traces", "/v1/metrics"}
    for path, body in posts:
        assert_no_canary(body, path)
    assert isinstance(collector, Collector)
