"""Timing helpers the overhead bench scripts share: medians of many calls, ratios, printed rows."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence


def median_us(call: Callable[[], object], *, calls: int = 300, warmup: int = 30) -> float:
    """The median wall time of ``call()`` in µs, after ``warmup`` untimed calls, with the GC paused."""
    for _ in range(warmup):
        call()
    samples = []
    gc.disable()
    try:
        for _ in range(calls):
            start = time.perf_counter_ns()
            call()
            samples.append(time.perf_counter_ns() - start)
    finally:
        gc.enable()
    return statistics.median(samples) / 1000


def interleaved_medians(
    calls: dict[str, Callable[[], object]], *, rounds: int = 5, per_round: int = 100
) -> dict[str, float]:
    """Median µs per label, timing the labels in turns so that drift in the machine hits all of them alike."""
    samples: dict[str, list[float]] = {label: [] for label in calls}
    for call in calls.values():
        median_us(call, calls=1, warmup=20)
    for _ in range(rounds):
        for label, call in calls.items():
            samples[label].append(median_us(call, calls=per_round, warmup=0))
    return {label: statistics.median(values) for label, values in samples.items()}


def row(label: str, us: float, base_us: float | None = None) -> str:
    """One printed line: the median, and the difference and ratio to ``base_us`` when given."""
    if base_us is None:
        return f"  {label:<40} {us:10.1f} µs"
    return f"  {label:<40} {us:10.1f} µs   +{us - base_us:8.1f} µs   ×{us / base_us:5.2f}"


def paired_us(raw: Callable[[], object], through: Callable[[], object], pairs: int) -> tuple[float, float]:
    """Median thread CPU µs of ``raw``, and the median of (``through`` - ``raw``) over back-to-back pairs.

    Thread CPU time counts only the calling thread, so a loopback server in
    another thread and other processes on the machine drop out. Each pair runs
    under the same momentary conditions (their order alternates), so the median
    difference holds steady where separate medians of each drift.
    """
    for _ in range(10):
        raw(), through()
    raw_ns: list[int] = []
    extra_ns: list[int] = []
    clock = time.thread_time_ns
    gc.collect()
    gc.disable()  # a collection landing in one call of a pair would dwarf what is measured
    try:
        _pairs(raw, through, pairs, raw_ns, extra_ns, clock)
    finally:
        gc.enable()
    return statistics.median(raw_ns) / 1000, statistics.median(extra_ns) / 1000


def paired_rounds(
    raw: Callable[[], object], through: Callable[[], object], pairs: int, rounds: int = 5
) -> tuple[float, float, list[float]]:
    """:func:`paired_us` in ``rounds`` rounds of ``pairs // rounds`` pairs: the median raw µs, the median of the
    rounds' extra µs, and each round's extra. One run's median moves by a few µs with what the machine does
    meanwhile; the rounds show how far."""
    results = [paired_us(raw, through, max(pairs // rounds, 1)) for _ in range(rounds)]
    extras = [extra for _, extra in results]
    return statistics.median(base for base, _ in results), statistics.median(extras), extras


def _pairs(
    raw: Callable[[], object],
    through: Callable[[], object],
    pairs: int,
    raw_ns: list[int],
    extra_ns: list[int],
    clock: Callable[[], int],
) -> None:
    for n in range(pairs):
        first, second = (raw, through) if n % 2 else (through, raw)
        t0 = clock()
        first()
        t1 = clock()
        second()
        t2 = clock()
        a, b = (t1 - t0, t2 - t1) if n % 2 else (t2 - t1, t1 - t0)
        raw_ns.append(a)
        extra_ns.append(b - a)


#: What an adapter may add to its SDK (issue 3's goals), judged by every bench/adapter_*.py.
ADAPTER_CALL_GOAL_US = 30.0
ADAPTER_CHUNK_GOAL_US = 2.0


def adapter_goals(per_call: Sequence[tuple[str, float]], per_chunk: Sequence[tuple[str, float]]) -> None:
    """Print the two goal lines; each is met only when every (label, µs) figure given for it is within the goal."""
    for what, goal, figures in (
        ("call", ADAPTER_CALL_GOAL_US, per_call),
        ("stream chunk", ADAPTER_CHUNK_GOAL_US, per_chunk),
    ):
        shown = ", ".join(f"{us:+.2f} µs {label}".rstrip() for label, us in figures)
        ok = "PASS" if all(us <= goal for _, us in figures) else "FAIL"
        print(f"goal: adapter adds <= {goal:g} µs per {what}: {shown}  {ok}")
