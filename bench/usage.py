"""What usage records cost: on the call path, and when written without pause to SQLite and JSONL.

(a) Call path: one ``Recorder.record()`` call, timed call by call while the writer
    thread runs, (1) with a short sleep between calls, as calls come in an app, and
    (2) back to back, where the caller shares the interpreter lock with a busy writer.
    Also building the record (``UsageRecord(...)`` with ``new_request_id()``), which
    the client pays as well. Goal: record() <= 10 µs (median, paced).
(b) Sustained throughput, one process: ``--count`` records given to one recorder as
    fast as one thread can, until ``flush()`` returns; SQLite and JSONL. Goal:
    >= 50,000 records/s. Also the writer's own work (check every record, then the
    sink's write of 1,000-record batches) with no queue and no caller beside it.
(c) Many processes: ``--processes`` processes each write ``--count / processes``
    records into one SQLite store and one JSONL file at the same time (timed from a
    common start signal to the last process's end). Reported, no goal.

Figures are printed, never asserted: the exit status is 0 whatever they are.

Run: ``.venv/bin/python bench/usage.py [--count N] [--calls N] [--processes N]``.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from childenv import REPO, verdict
from timing import median_us

from privsdk.usage import Recorder, UsageRecord, new_request_id, open_recorder
from privsdk.usage.jsonl import JsonlSink
from privsdk.usage.sanitize import clean
from privsdk.usage.sqlite import SqliteSink
from privsdk.usage.writer import Sink

CALL_PATH_GOAL_US = 10.0
THROUGHPUT_GOAL_PER_S = 50_000

_TENANTS = ("acme", "globex", "initech")
_TARGETS = (("openai-mini", "openai", "gpt-4o-mini"), ("azure-eu-gpt4o", "azure", "gpt-4o"))


def make(i: int) -> UsageRecord:
    """A realistic record: a few tenants and targets, a fresh request id, token counts and latency."""
    target, vendor, model = _TARGETS[i % len(_TARGETS)]
    return UsageRecord(
        time=time.time(),
        request_id=new_request_id(),
        attempt=1,
        tenant=_TENANTS[i % len(_TENANTS)],
        data_class="pii",
        requested_target=target,
        chosen_target=target,
        decision="allow",
        unmet=(),
        operation="chat",
        vendor=vendor,
        model=model,
        outcome="ok",
        error_class=None,
        http_status=200,
        input_tokens=100 + i % 50,
        output_tokens=20 + i % 30,
        latency_ms=250.0 + i % 100,
        first_chunk_ms=None,
        tags=(("team", "search"),),
    )


# (a) ------------------------------------------------------------------------------------


def per_call_ns(recorder: Recorder, records: list[UsageRecord], pause_s: float) -> list[int]:
    """Nanoseconds of each record() call, with ``pause_s`` of sleep between calls; the collector off."""
    record = recorder.record
    samples = []
    gc.disable()
    try:
        for r in records:
            start = time.perf_counter_ns()
            record(r)
            samples.append(time.perf_counter_ns() - start)
            if pause_s:
                time.sleep(pause_s)
    finally:
        gc.enable()
    return samples


def report_call_path(directory: str, calls: int) -> None:
    build_us = median_us(lambda: make(7), calls=5000, warmup=500)
    print(f"(a) building a record (UsageRecord + new_request_id): median {build_us:.2f} µs")
    for kind in ("sqlite", "jsonl"):
        recorder = open_recorder(f"{kind}://{directory}/call-path.{kind}")
        recorder.record(make(0))
        recorder.flush()  # the writer thread is running and its sink is open
        for label, pause in (("paced, 0.1 ms sleep between calls", 0.0001), ("back to back", 0.0)):
            samples = sorted(per_call_ns(recorder, [make(i) for i in range(calls)], pause))
            median = statistics.median(samples) / 1000
            p99 = samples[int(len(samples) * 0.99)] / 1000
            mean = statistics.fmean(samples) / 1000
            goal = f"  goal <= {CALL_PATH_GOAL_US:.0f} µs (median): {verdict(median <= CALL_PATH_GOAL_US)}"
            print(
                f"(a) record() into {kind}, {label}, {calls:,} calls: median {median:.2f} µs, p99 {p99:.1f} µs, "
                f"mean {mean:.2f} µs" + (goal if pause else "  (reported)")
            )
            recorder.flush()
        recorder.close()


# (b) ------------------------------------------------------------------------------------


def report_throughput(directory: str, count: int) -> None:
    records = [make(i) for i in range(count)]
    for kind in ("sqlite", "jsonl"):
        recorder = open_recorder(f"{kind}://{directory}/throughput.{kind}")
        start = time.perf_counter()
        for r in records:
            recorder.record(r)
        recorder.flush()
        elapsed = time.perf_counter() - start
        recorder.close()
        assert recorder.written == count and recorder.failures == 0
        rate = count / elapsed
        print(
            f"(b) sustained, {kind}, {count:,} records through record() until flush(): {rate:,.0f} records/s "
            f"({1e6 / rate:.1f} µs per record)  goal >= {THROUGHPUT_GOAL_PER_S:,}/s: "
            f"{verdict(rate >= THROUGHPUT_GOAL_PER_S)}"
        )
    sinks: dict[str, Callable[[str], Sink]] = {"sqlite": SqliteSink, "jsonl": JsonlSink}
    for kind, open_sink in sinks.items():
        sink = open_sink(f"{directory}/writer-only.{kind}")
        start = time.perf_counter()
        for i in range(0, count, 1000):
            sink.write([clean(r)[0] for r in records[i : i + 1000]])
        elapsed = time.perf_counter() - start
        sink.close()
        print(f"(b) the writer's work alone, {kind}, check + write in 1,000-record batches: {count / elapsed:,.0f}/s")


# (c) ------------------------------------------------------------------------------------

_WRITER = """
import os, sys, time
sys.path.insert(0, sys.argv[5])
from usage import make
from privsdk.usage import open_recorder
kind, path, go, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
records = [make(i) for i in range(count)]
recorder = open_recorder(f"{kind}://{path}")
open(go + f".ready{os.getpid()}", "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
for r in records:
    recorder.record(r)
recorder.close()
assert recorder.written == count, recorder.failures
"""


def report_processes(directory: str, count: int, processes: int) -> None:
    per = max(1, count // processes)
    for kind in ("sqlite", "jsonl"):
        path, go = f"{directory}/shared.{kind}", f"{directory}/go-{kind}"
        bench_dir = str(REPO / "bench")
        procs = [
            subprocess.Popen([sys.executable, "-c", _WRITER, kind, path, go, str(per), bench_dir], cwd=REPO)
            for _ in range(processes)
        ]
        while sum(name.startswith(f"go-{kind}.ready") for name in os.listdir(directory)) < processes:
            time.sleep(0.01)
        start = time.perf_counter()
        open(go, "w").close()
        for p in procs:
            p.wait()
        elapsed = time.perf_counter() - start
        ok = all(p.returncode == 0 for p in procs)
        print(
            f"(c) {processes} processes x {per:,} records into one {kind} store at once: "
            f"{processes * per / elapsed:,.0f} records/s overall{'' if ok else '  (a writer FAILED)'}  (reported)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=200_000, help="records for (b) and (c) (default 200000)")
    parser.add_argument("--calls", type=int, default=20_000, help="record() calls timed in (a) (default 20000)")
    parser.add_argument("--processes", type=int, default=4, help="writer processes for (c) (default 4)")
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]} ({sys.executable}), {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="privsdk-bench-usage-") as directory:
        report_call_path(directory, max(100, args.calls))
        report_throughput(directory, max(1000, args.count))
        report_processes(directory, max(1000, args.count), max(1, args.processes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
