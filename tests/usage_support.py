"""What the usage-record tests share: a record factory and a sink that keeps what it is given.

Light on purpose (privsdk.usage only): the writer processes of the concurrency tests import it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from privsdk.usage import UsageRecord
from privsdk.usage.record import new_request_id

#: A fixed start time (2026-03-01T12:00:00Z) so that day groups and pruning ages are known.
T0 = 1772366400.0


def rec(**fields: Any) -> UsageRecord:
    """A valid record of one successful chat attempt; ``fields`` override any field."""
    base: dict[str, Any] = {
        "time": T0,
        "request_id": new_request_id(),
        "attempt": 1,
        "tenant": "acme",
        "data_class": "pii",
        "requested_target": "openai-mini",
        "chosen_target": "azure-eu-gpt4o",
        "decision": "reroute",
        "unmet": ("zdr", "region=eu"),
        "operation": "chat",
        "vendor": "azure",
        "model": "gpt-4o",
        "outcome": "ok",
        "error_class": None,
        "http_status": 200,
        "input_tokens": 12,
        "output_tokens": 34,
        "latency_ms": 56.5,
        "first_chunk_ms": None,
        "tags": (("team", "search"),),
    }
    base.update(fields)
    return UsageRecord(**base)


class KeepSink:
    """A sink that keeps every batch; ``gate``, when given, holds each write until it is set."""

    def __init__(self, gate: threading.Event | None = None, fail: BaseException | None = None):
        self.batches: list[list[UsageRecord]] = []
        self.gate = gate
        self.fail = fail
        self.flushes = 0
        self.closed = False

    @property
    def records(self) -> list[UsageRecord]:
        return [r for batch in self.batches for r in batch]

    def write(self, batch: Sequence[UsageRecord]) -> None:
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail is not None:
            raise self.fail
        self.batches.append(list(batch))

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        self.closed = True


def record_id(process: int, thread: int, i: int) -> str:
    """A request id that says which process, thread and record wrote it."""
    return f"{process:08x}{thread:08x}{i:016x}"


def numbered(i: int) -> UsageRecord:
    """Record number ``i``: its content follows from the number, so a survivor can be checked whole."""
    return rec(request_id=f"{i:032x}", time=T0 + i, input_tokens=i, output_tokens=i % 7, latency_ms=i / 8)
