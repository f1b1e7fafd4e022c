"""Timing helpers the overhead bench scripts share: medians of many calls, ratios, printed rows."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable


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
