"""The recorder: batching off the call path, back-pressure, flush and close, failures, exit and fork."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from privsdk.errors import ConfigError
from privsdk.usage import Recorder, UsageRecord, open_recorder
from privsdk.usage.writer import NullRecorder
from tests.conftest import REPO, clean_env
from tests.usage_support import KeepSink, rec


def keep(sink: KeepSink, **options: Any) -> Recorder:
    return Recorder(lambda: sink, **options)


def test_records_reach_the_sink_in_order_and_in_batches() -> None:
    """A burst of records arrives complete and in order, in batches no larger than batch_size."""
    sink = KeepSink()
    recorder = keep(sink, batch_size=100, linger=0.05)
    sent = [rec(attempt=i) for i in range(1, 1001)]
    for r in sent:
        recorder.record(r)
    assert recorder.flush(5)
    assert sink.records == sent
    assert max(len(b) for b in sink.batches) <= 100
    assert len(sink.batches) <= 20  # batched, not one write per record
    assert (recorder.written, recorder.failures, recorder.invalid) == (1000, 0, 0)
    assert sink.flushes == 1
    recorder.close()
    assert sink.closed


def test_record_does_not_wait_for_the_sink() -> None:
    """record() returns while the sink is still busy with an earlier batch."""
    gate = threading.Event()
    sink = KeepSink(gate=gate)
    recorder = keep(sink, queue_size=1000, linger=0)
    start = time.perf_counter()
    for i in range(1, 101):
        recorder.record(rec(attempt=i))
    elapsed = time.perf_counter() - start
    assert not sink.batches and elapsed < 1.0
    gate.set()
    assert recorder.flush(5) and len(sink.records) == 100
    recorder.close()


def test_a_full_queue_blocks_the_caller_and_loses_nothing() -> None:
    """With the sink stuck, record() blocks once the queue is full; when the sink resumes, every record arrives."""
    gate = threading.Event()
    sink = KeepSink(gate=gate)
    recorder = keep(sink, queue_size=10, batch_size=5, linger=0)
    done = threading.Event()
    progress = []

    def produce() -> None:
        for i in range(1, 101):
            recorder.record(rec(attempt=i))
            progress.append(i)
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    time.sleep(0.3)
    assert not done.is_set()  # back-pressure: the producer waits
    assert len(progress) <= 10 + 5 + 1  # the queue, the batch in the stuck sink, and the one waiting
    gate.set()
    producer.join(10)
    assert done.is_set()
    assert recorder.flush(5)
    assert [r.attempt for r in sink.records] == list(range(1, 101))
    recorder.close()


def test_flush_times_out_while_the_sink_is_stuck() -> None:
    """flush(timeout) returns False when the sink does not finish in time, True once it has."""
    gate = threading.Event()
    sink = KeepSink(gate=gate)
    recorder = keep(sink, linger=0)
    recorder.record(rec())
    assert recorder.flush(0.2) is False
    gate.set()
    assert recorder.flush(5) is True
    recorder.close()


def test_a_failing_sink_never_fails_the_caller_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """Sink errors are counted and logged once on privsdk.usage; record() and flush() go on; the sink is retried."""
    sink = KeepSink(fail=OSError(28, "No space left on device"))
    opened = []

    def open_sink() -> KeepSink:
        opened.append(1)
        return sink

    recorder = Recorder(open_sink, name="test", show_errors=True, linger=0)
    with caplog.at_level(logging.WARNING, logger="privsdk.usage"):
        for _ in range(3):
            recorder.record(rec())
            assert recorder.flush(5)
        sink.fail = None
        recorder.record(rec())
        assert recorder.flush(5)
    assert (recorder.failures, recorder.written) == (3, 1)
    assert len(opened) == 4  # reopened after each failure
    messages = [r.getMessage() for r in caplog.records if r.name == "privsdk.usage"]
    assert len(messages) == 1
    assert "test usage sink failed to write" in messages[0] and "No space left" in messages[0]
    recorder.close()


def test_an_apps_function_failing_on_one_record_does_not_lose_the_others(caplog: pytest.LogCaptureFixture) -> None:
    """A callable sink that raises for one record still gets the rest; only the error's type is logged."""
    got: list[UsageRecord] = []

    def collect(r: UsageRecord) -> None:
        if r.attempt == 2:
            raise ValueError("CANARY-9001 the app's own message")
        got.append(r)

    recorder = open_recorder(collect, linger=0.05)
    with caplog.at_level(logging.WARNING, logger="privsdk.usage"):
        for i in range(1, 5):
            recorder.record(rec(attempt=i))
        assert recorder.flush(5)
    assert [r.attempt for r in got] == [1, 3, 4]
    assert (recorder.written, recorder.failures) == (3, 1)
    assert "ValueError" in caplog.text and "CANARY-9001" not in caplog.text
    recorder.close()


def test_close_writes_what_is_queued_and_later_records_are_counted_as_dropped(caplog: pytest.LogCaptureFixture) -> None:
    """close() drains the queue and closes the sink; a record after close is not written, and close is idempotent."""
    sink = KeepSink()
    recorder = keep(sink, linger=5)  # a long linger: only close() makes the writer write now
    for i in range(1, 6):
        recorder.record(rec(attempt=i))
    start = time.perf_counter()
    recorder.close()
    assert time.perf_counter() - start < 2
    assert len(sink.records) == 5 and sink.closed
    with caplog.at_level(logging.WARNING, logger="privsdk.usage"):
        recorder.record(rec())
    assert (recorder.dropped, len(sink.records)) == (1, 5)
    assert "after the recorder was closed" in caplog.text
    recorder.close()


class _Stream:
    """What a recorder holds: an open stream, whose ``_abandoned`` records it when the recorder closes, unless its
    reader has just ended it and records it itself (``claimed``)."""

    def __init__(self, recorder: Recorder, attempt: int, *, claimed: bool = False):
        self.recorder, self.attempt, self.claimed = recorder, attempt, claimed
        self.ref = recorder.hold(self)
        self.asked = threading.Event()

    def _abandoned(self) -> None:
        self.asked.set()
        if not self.claimed:
            self.recorded()

    def recorded(self) -> None:
        self.recorder.record(rec(attempt=self.attempt))
        assert self.ref is not None
        self.recorder.let_go(self.ref)


def test_close_waits_for_the_reader_of_a_stream_it_just_ended_to_queue_its_record() -> None:
    """A stream another thread has read to its end as the recorder closes gives nothing when abandoned: its reader
    is about to record it. close() waits for that record (it came after the writer's stop, and was dropped), and
    not for streams it ended itself."""
    sink = KeepSink()
    recorder = keep(sink)
    recorder.record(rec(attempt=1))  # the writer is running
    ended_here = _Stream(recorder, 2)
    being_ended = _Stream(recorder, 3, claimed=True)
    closing = threading.Thread(target=recorder.close)
    closing.start()
    assert being_ended.asked.wait(5)
    time.sleep(0.05)  # the reader is slow to queue its record: long enough for close() to have stopped the writer
    being_ended.recorded()
    closing.join(5)
    assert not closing.is_alive()
    assert sorted(r.attempt for r in sink.records) == [1, 2, 3]
    assert (recorder.dropped, ended_here.asked.is_set(), sink.closed) == (0, True, True)


def test_a_record_queued_as_the_writer_stops_is_written_by_close() -> None:
    """A record that comes after close() began (not held: a non-streamed request ending in another thread) is
    written, by close itself once the writer has gone; one after close() has ended is dropped and counted."""
    gate = threading.Event()
    sink = KeepSink(gate=gate)
    recorder = keep(sink, linger=0)
    recorder.record(rec(attempt=1))
    closing = threading.Thread(target=recorder.close)
    closing.start()
    while not recorder._closed:
        time.sleep(0.001)
    recorder.record(rec(attempt=2))  # the writer is stuck in the sink: this goes in the queue after its stop
    gate.set()
    closing.join(5)
    assert [r.attempt for r in sink.records] == [1, 2] and recorder.dropped == 0
    recorder.record(rec(attempt=3))
    assert recorder.dropped == 1 and len(sink.records) == 2


def test_a_value_that_is_not_a_record_is_ignored_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    """record() given something else (a bug in a caller) costs nothing and never reaches the sink."""
    sink = KeepSink()
    recorder = keep(sink, linger=0)
    with caplog.at_level(logging.WARNING, logger="privsdk.usage"):
        recorder.record({"prompt": "CANARY-7"})  # type: ignore[arg-type]
        recorder.record(rec())
        assert recorder.flush(5)
    assert (recorder.invalid, len(sink.records)) == (1, 1)
    assert "dict" in caplog.text and "CANARY-7" not in caplog.text
    recorder.close()


def test_a_deferred_record_is_built_in_the_writer_thread_and_in_queue_order(caplog: pytest.LogCaptureFixture) -> None:
    """record_later() hands the building to the writer thread: the records arrive in the order they were queued,
    checked like any other; a build that raises costs its own record only, and its message is not logged."""
    sink = KeepSink()
    recorder = keep(sink, linger=0)
    builders: list[str] = []

    def build(attempt: int) -> UsageRecord:
        builders.append(threading.current_thread().name)
        return rec(attempt=attempt, tenant="bad tenant" if attempt == 3 else "acme")

    def broken(attempt: int) -> UsageRecord:
        raise ValueError(f"CANARY-58 while building {attempt}")

    with caplog.at_level(logging.WARNING, logger="privsdk.usage"):
        recorder.record_later(build, 1)
        recorder.record(rec(attempt=2))
        recorder.record_later(build, 3)
        recorder.record_later(broken, 4)
        recorder.record(("CANARY-58", "not", "a pair"))  # type: ignore[arg-type]  # a caller's bug: no build at all
        recorder.record_later(build, 5)
        assert recorder.flush(5)
    assert [r.attempt for r in sink.records] == [1, 2, 3, 5]
    assert sink.records[2].tenant == "<invalid>"  # clean() checked the built record like any other
    writer = recorder._thread
    assert writer is not None and writer is not threading.current_thread()
    assert builders and set(builders) == {writer.name}
    assert (recorder.written, recorder.failures, recorder.invalid) == (4, 2, 1)
    assert "could not be built (ValueError)" in caplog.text and "CANARY-58" not in caplog.text
    recorder.close()
    recorder.record_later(build, 6)
    assert recorder.dropped == 1 and len(sink.records) == 4


IMPORTS = """
import sys, privsdk
assert "privsdk.usage" not in sys.modules
from privsdk.usage import check_tags, open_recorder
recorder = open_recorder(sys.argv[1])
print(" ".join(m for m in ("sqlite3", "logging", "uuid", "json", "opentelemetry") if m in sys.modules))
"""


@pytest.mark.parametrize("spec", ["sqlite", "jsonl:///tmp/x.jsonl", "none"])
def test_importing_and_opening_a_recorder_stays_light(spec: str) -> None:
    """import privsdk loads no usage module; a recorder loads no sqlite3, logging, uuid or OpenTelemetry until used."""
    out = subprocess.run(
        [sys.executable, "-c", IMPORTS, spec], cwd=REPO, env=clean_env(), capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == []


def test_a_record_that_cannot_be_checked_is_not_written_and_the_writer_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A field whose hash raises makes the check fail: that record is counted, the next one is written."""

    class Explosive:
        def __hash__(self) -> int:
            raise RuntimeError("CANARY-55 from a field")

    sink = KeepSink()
    recorder = keep(sink, linger=0)
    with caplog.at_level(logging.WARNING, logger="privsdk.usage"):
        recorder.record(rec(tenant=Explosive()))
        recorder.record(rec(attempt=2))
        assert recorder.flush(5)
    assert [r.attempt for r in sink.records] == [2]
    assert (recorder.written, recorder.failures, recorder.invalid) == (1, 1, 1)
    assert "could not be checked" in caplog.text and "CANARY-55" not in caplog.text
    recorder.close()


def test_none_keeps_nothing_and_starts_no_thread() -> None:
    """PRIVSDK_USAGE=none: a recorder whose record() does nothing."""
    before = threading.active_count()
    recorder = open_recorder("none")
    assert isinstance(recorder, NullRecorder)
    recorder.record(rec())
    assert recorder.flush(1) and threading.active_count() == before
    assert (recorder.written, recorder.failures) == (0, 0)
    recorder.close()


def test_bad_specs_and_a_missing_otlp_extra_are_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """A spec privsdk does not know, or otlp without OpenTelemetry installed, is a ConfigError naming where the value
    came from: the argument (``usage``) by default, the variable when the caller says so."""
    with pytest.raises(ConfigError, match=r"^usage: bad value postgres://\.\.\. ") as info:
        open_recorder("postgres://x")
    assert "PRIVSDK_USAGE" not in str(info.value)  # the app passed it: no variable was set
    with pytest.raises(ConfigError, match=r"^PRIVSDK_USAGE: "):
        open_recorder("postgres://x", where="PRIVSDK_USAGE")
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"^usage: .*privsdk\[otlp\]"):
        open_recorder("otlp")
    with pytest.raises(ConfigError, match=r"^PRIVSDK_USAGE: .*privsdk\[otlp\]"):
        open_recorder("otlp", where="PRIVSDK_USAGE")


def test_without_a_thread_records_are_written_in_the_callers_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """When no thread can start (interpreter shutdown), record() writes at once instead of losing the record."""
    sink = KeepSink()
    recorder = keep(sink)

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    recorder.record(rec())
    recorder.record_later(lambda attempt: rec(attempt=attempt), 2)
    assert [r.attempt for r in sink.records] == [1, 2] and recorder.written == 2
    recorder.close()
    assert sink.closed


EXIT_CHILD = """
import sys
from privsdk.usage import open_recorder
from tests.usage_support import rec
recorder = open_recorder(sys.argv[1], linger=60)
for i in range(1, 251):
    recorder.record(rec(attempt=i))
# no flush, no close: the atexit hook writes what is queued
"""


def test_records_are_written_at_interpreter_exit(tmp_path: Path) -> None:
    """A process that exits with records still queued (a 60 s linger) writes them all before it ends."""
    store = tmp_path / "exit.jsonl"
    subprocess.run(
        [sys.executable, "-c", EXIT_CHILD, f"jsonl://{store}"], cwd=REPO, env=clean_env(), check=True, timeout=60
    )
    lines = store.read_text().splitlines()
    assert [json.loads(line)["attempt"] for line in lines] == list(range(1, 251))


LATE_CHILD = """
import sys
from privsdk.usage import open_recorder
from tests.usage_support import rec
recorder = open_recorder(sys.argv[1])
record = rec(attempt=1)
class Late:  # a module global collected after the exit hook closed the recorder, as a drop-in stream left open
    def __del__(self):
        recorder.record(record)
late = Late()
"""


def test_a_record_after_the_exit_hook_is_a_warning_not_a_traceback(tmp_path: Path) -> None:
    """The warning for a record the closed recorder dropped imported logging at shutdown, which failed: a
    traceback ('sys.meta_path is None') instead of the warning."""
    store = tmp_path / "late.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", LATE_CHILD, f"jsonl://{store}"], cwd=REPO, env=clean_env(), capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0
    assert "Traceback" not in done.stderr and "ImportError" not in done.stderr, done.stderr
    assert "privsdk usage: " in done.stderr and "after the recorder was closed" in done.stderr, done.stderr


def _child_records(recorder: Recorder) -> None:
    """Runs in a forked child (fork hands the parent's objects over as they are, unpickled): uses the recorder it
    inherited, and ends without closing it. (Finding it among every live recorder picked up others, left by
    earlier tests and not yet collected.)"""
    assert not recorder._queue  # the parent's queued records are not the child's to write
    for i in range(101, 104):
        recorder.record(rec(attempt=i))


def _child_opens_its_own(spec: str) -> None:
    """Runs in a multiprocessing worker: opens a recorder there, records, and ends without closing it."""
    recorder = open_recorder(spec, linger=60)
    for i in range(201, 204):
        recorder.record(rec(attempt=i))


@pytest.mark.parametrize(
    "method", [m for m in ("fork", "forkserver", "spawn") if m in multiprocessing.get_all_start_methods()]
)
def test_a_worker_that_opens_its_own_recorder_writes_its_records(tmp_path: Path, method: str) -> None:
    """fork and forkserver workers end with os._exit, which skips atexit: a recorder opened in the worker (not
    inherited) lost what it had queued."""
    store = tmp_path / f"{method}.jsonl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context: Any = multiprocessing.get_context(method)
        child = context.Process(target=_child_opens_its_own, args=(f"jsonl://{store}",))
        child.start()
        child.join(60)
    assert child.exitcode == 0
    assert sorted(json.loads(line)["attempt"] for line in store.read_text().splitlines()) == [201, 202, 203]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_writes_its_own_records_and_never_the_parents(tmp_path: Path) -> None:
    """After fork, the child starts with an empty queue and its own sink; parent and child records each land once."""
    store = tmp_path / "fork.jsonl"
    spec = f"jsonl://{store}"
    recorder = open_recorder(spec, linger=60)  # the parent's records stay queued across the fork
    recorder.record(rec(attempt=1))
    recorder.flush(5)  # the parent's writer thread and open file exist before the fork
    for i in range(2, 6):
        recorder.record(rec(attempt=i))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: what this test is about
        child = multiprocessing.get_context("fork").Process(target=_child_records, args=(recorder,))
        child.start()
        child.join(30)
    assert child.exitcode == 0
    recorder.close()
    attempts = sorted(json.loads(line)["attempt"] for line in store.read_text().splitlines())
    assert attempts == [1, 2, 3, 4, 5, 101, 102, 103]
