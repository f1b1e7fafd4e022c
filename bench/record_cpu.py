"""What a usage record costs an app whose thread is busy computing (CPU-bound), not idle.

The app thread runs ``--calls`` iterations of a pure-Python computation (about 20 µs), once
alone and once with a ``Recorder.record()`` after each, while the recorder's writer thread
writes to SQLite (or JSONL) in the same process and competes for the interpreter lock. The cost
per call is the difference of the two loops' wall-clock time divided by the calls: whatever the
writer takes from the app thread (its own Python work, lock hand-overs, wake-ups) counts.
Measured with the default switch interval (5 ms) and a short one (0.5 ms). Goal: <= 10 µs per
call. Wall-clock figures swing on a machine that other jobs share, so the process's CPU time
per record (both threads, from the first record until ``flush()`` returns, minus the loop
alone) is printed too: it does not depend on what else runs. Printed, never asserted.

Run: ``.venv/bin/python bench/record_cpu.py [--calls N] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

from childenv import verdict
from usage import make

from privsdk.usage import UsageRecord, open_recorder

GOAL_US = 10.0


def work() -> int:
    """About 20 µs of pure Python: the app's own computation between two calls."""
    total = 0
    for i in range(400):
        total += i * i
    return total


def loop(records: list[UsageRecord] | None, calls: int, record: object = None) -> float:
    """Seconds for ``calls`` iterations of work(), each followed by ``record(rec)`` when given."""
    start = time.perf_counter()
    if records is None or record is None:
        for _ in range(calls):
            work()
    else:
        put = record  # a bound method, looked up once
        for rec in records:
            work()
            put(rec)  # type: ignore[operator]
    return time.perf_counter() - start


def measure(kind: str, directory: str, calls: int, rounds: int) -> tuple[list[float], list[float]]:
    """Extra wall-clock µs per call, and extra process CPU µs per call, one figure per round."""
    recorder = open_recorder(f"{kind}://{directory}/cpu.{kind}")
    recorder.record(make(0))
    recorder.flush()
    extra, cpu = [], []
    for _ in range(rounds):
        records = [make(i) for i in range(calls)]
        c0 = time.process_time()
        alone = loop(None, calls)
        c1 = time.process_time()
        with_records = loop(records, calls, recorder.record)
        recorder.flush()
        c2 = time.process_time()
        extra.append((with_records - alone) / calls * 1e6)
        cpu.append(((c2 - c1) - (c1 - c0)) / calls * 1e6)
    recorder.close()
    assert recorder.failures == 0
    return extra, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per loop (default 20,000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, alone and with records in turns (default 5)")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="privsdk-bench-cpu-")
    start = time.perf_counter()
    work()
    alone_us = (time.perf_counter() - start) * 1e6
    print(f"A CPU-bound app thread (work() ~{alone_us:.0f} µs) recording after each of {args.calls:,} calls:")
    default_interval = sys.getswitchinterval()
    for interval in (default_interval, 0.0005):
        sys.setswitchinterval(interval)
        for kind in ("sqlite", "jsonl"):
            extra, cpu = measure(kind, directory, args.calls, args.rounds)
            median = statistics.median(extra)
            print(
                f"  {kind:<6} switch interval {interval * 1000:4.1f} ms: +{median:6.2f} µs per call "
                f"(rounds: {', '.join(f'{e:+.1f}' for e in extra)})  goal <= {GOAL_US:g} µs: "
                f"{verdict(median <= GOAL_US)}; process CPU +{statistics.median(cpu):.2f} µs per record"
            )
    sys.setswitchinterval(default_interval)


if __name__ == "__main__":
    main()
