"""``privsdk usage``: summaries of a SQLite or JSONL store, as a table, JSON or CSV.

Figures per group (and in total):

* ``calls``: distinct request ids; ``attempts``: records with attempt >= 1;
* ``refusals``: refused calls (records with decision ``refuse``);
* ``reroutes``: calls whose decision was ``reroute`` (distinct request ids);
* ``retries``: attempts beyond the first of their call (attempt > 1);
* ``errors``: calls whose last attempt (in the group) ended in an error: a
  429 retried to success is a retry, not an error;
* ``input_tokens``, ``output_tokens``: sums over attempts that reported them;
* ``p50_latency_ms``, ``p95_latency_ms``: nearest-rank percentiles over attempts
  (a refusal makes no attempt and has no latency).

A call whose attempts fall into different groups (a fallback to another
target, or a retry after midnight with ``day``) counts as a call in each.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from privsdk.errors import ConfigError
from privsdk.usage.record import UsageRecord
from privsdk.usage.spec import Store

#: What --group-by accepts, and how each key is read from a record.
GROUP_KEYS: dict[str, Callable[[UsageRecord], str]] = {
    "tenant": lambda r: r.tenant,
    "data_class": lambda r: r.data_class,
    "target": lambda r: r.chosen_target or r.requested_target,
    "model": lambda r: r.model or "-",
    "day": lambda r: _day(r.time),
    "decision": lambda r: r.decision,
}
FIGURES = (
    "calls",
    "attempts",
    "refusals",
    "reroutes",
    "retries",
    "errors",
    "input_tokens",
    "output_tokens",
    "p50_latency_ms",
    "p95_latency_ms",
)
_DAYS: dict[int, str] = {}


def _day(seconds: float) -> str:
    number = int(seconds // 86400)
    day = _DAYS.get(number)
    if day is None:
        day = _DAYS[number] = time.strftime("%Y-%m-%d", time.gmtime(number * 86400))
    return day


def parse_group_by(text: str) -> tuple[str, ...]:
    """``tenant,model`` as a tuple of keys; an unknown key is a :class:`~privsdk.errors.ConfigError`."""
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    for key in keys:
        if key not in GROUP_KEYS:
            raise ConfigError(f"cannot group by {key!r}", where="--group-by", hint="keys: " + ", ".join(GROUP_KEYS))
    if len(set(keys)) != len(keys):
        raise ConfigError(f"a key is repeated in {text!r}", where="--group-by", hint="name each key once")
    return keys


class _Tally:
    __slots__ = ("attempts", "calls", "input", "last", "latencies", "output", "refusals", "reroutes", "retries")

    def __init__(self) -> None:
        self.calls: set[str] = set()
        self.reroutes: set[str] = set()
        self.attempts = self.refusals = self.retries = self.input = self.output = 0
        self.last: dict[str, tuple[int, bool]] = {}  # request id -> (its latest attempt, whether that failed)
        self.latencies: list[float] = []

    def add(self, r: UsageRecord) -> None:
        self.calls.add(r.request_id)
        if r.decision == "refuse":
            self.refusals += 1
        elif r.decision == "reroute":
            self.reroutes.add(r.request_id)
        if r.attempt >= 1:
            self.attempts += 1
            self.latencies.append(r.latency_ms)
            if r.attempt > 1:
                self.retries += 1
            if r.attempt >= self.last.get(r.request_id, (0, False))[0]:
                self.last[r.request_id] = (r.attempt, r.outcome == "error")
            self.input += r.input_tokens or 0
            self.output += r.output_tokens or 0

    def figures(self) -> dict[str, int | float | None]:
        lat = sorted(self.latencies)
        return {
            "calls": len(self.calls),
            "attempts": self.attempts,
            "refusals": self.refusals,
            "reroutes": len(self.reroutes),
            "retries": self.retries,
            "errors": sum(failed for _, failed in self.last.values()),
            "input_tokens": self.input,
            "output_tokens": self.output,
            "p50_latency_ms": percentile(lat, 50),
            "p95_latency_ms": percentile(lat, 95),
        }


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile of sorted values: the smallest value with p% of values at or below it."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


class Summary(NamedTuple):
    """Figures per group (group key values in ``group_by`` order), in total, and how many records were read."""

    group_by: tuple[str, ...]
    groups: list[tuple[tuple[str, ...], dict[str, int | float | None]]]
    total: dict[str, int | float | None]
    records: int


def summarise(records: Iterable[UsageRecord], group_by: Sequence[str]) -> Summary:
    """The figures of ``records``, per group of ``group_by`` keys, sorted by those keys."""
    readers = [GROUP_KEYS[k] for k in group_by]
    tallies: dict[tuple[str, ...], _Tally] = {}
    total = _Tally()
    count = 0
    for r in records:
        count += 1
        total.add(r)
        key = tuple(read(r) for read in readers)
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = _Tally()
        tally.add(r)
    groups = [(key, tallies[key].figures()) for key in sorted(tallies)]
    return Summary(tuple(group_by), groups, total.figures(), count)


def read_records(
    store: Store, *, since: float | None, until: float | None, tenant: str | None, where: str = "PRIVSDK_USAGE"
) -> tuple[Iterable[UsageRecord], Callable[[], int]]:
    """The store's records in ``[since, until)``, and a function telling, after reading, how many lines were damaged.

    ``where`` names what gave the store (``PRIVSDK_USAGE``, ``--store``) for the error about one of no local kind.
    """
    # Both readers check every record as the writer does before a sink, and skip and count one without a valid
    # time (a damaged line, a row another program wrote): the same values report the same from either store.
    if store.kind == "sqlite" and store.path:
        from privsdk.usage import sqlite
        from privsdk.usage.jsonl import Damage

        rows = Damage()
        records = sqlite.read(store.path, since=since, until=until, tenant=tenant, damage=rows)
        return not_a_database(store.path, records), lambda: rows.lines
    if store.kind == "jsonl" and store.path:
        from privsdk.usage import jsonl

        damage = jsonl.Damage()
        return jsonl.read(store.path, since=since, until=until, tenant=tenant, damage=damage), lambda: damage.lines
    raise ConfigError(
        f"the usage store is {store.kind}: there is nothing local to report on",
        where=where,
        hint="pass --store sqlite:///PATH or --store jsonl:///PATH (a backend behind OTLP has its own reports)",
    )


def not_a_database(path: str, records: Iterable[UsageRecord]) -> Iterator[UsageRecord]:
    """``records`` read from the SQLite store at ``path``; a file SQLite cannot read is a ConfigError."""
    import sqlite3

    try:
        yield from records
    except sqlite3.DatabaseError as exc:
        raise sqlite_store_error(path, exc) from None


def sqlite_store_error(path: str, exc: Exception) -> ConfigError:
    """The error for a --store that SQLite cannot read: most often a JSONL store read as SQLite."""
    return ConfigError(
        f"SQLite cannot read {path} as a usage store ({type(exc).__name__}: {exc})",
        hint=f"if it holds JSON lines, pass --store jsonl://{_absolute(path)}",
    )


def _absolute(path: str) -> str:
    import os

    return os.path.abspath(path)


# -- renderings -----------------------------------------------------------------------------------


def _cell(value: int | float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def to_json(summary: Summary, store: str, since: float | None, until: float | None) -> dict[str, Any]:
    from privsdk.usage.timespec import iso

    return {
        "store": store,
        "since": iso(since) if since is not None else None,
        "until": iso(until) if until is not None else None,
        "group_by": list(summary.group_by),
        "records": summary.records,
        "groups": [{**dict(zip(summary.group_by, key, strict=True)), **figures} for key, figures in summary.groups],
        "total": summary.total,
    }


def to_csv(summary: Summary) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*summary.group_by, *FIGURES])
    for key, figures in summary.groups:
        writer.writerow([*key, *("" if figures[f] is None else figures[f] for f in FIGURES)])
    return out.getvalue()


_HEADINGS = {
    "calls": "calls",
    "attempts": "attempts",
    "refusals": "refused",
    "reroutes": "rerouted",
    "retries": "retries",
    "errors": "errors",
    "input_tokens": "tokens in",
    "output_tokens": "tokens out",
    "p50_latency_ms": "p50 ms",
    "p95_latency_ms": "p95 ms",
}


def to_text(summary: Summary, title: str, colour: bool) -> str:
    """A table: one row per group, then the total; refusals and errors in red when ``colour``."""
    lines = [title]
    if not summary.records:
        return "\n".join([*lines, "no usage records"]) + "\n"
    keys = len(summary.group_by)
    head = [*summary.group_by, *(_HEADINGS[f] for f in FIGURES)]
    rows = [[*key, *(_cell(figures[f]) for f in FIGURES)] for key, figures in summary.groups]
    if keys and len(rows) > 1:  # with no grouping, or one group, that row is the total
        rows.append(["total", *[""] * (keys - 1), *(_cell(summary.total[f]) for f in FIGURES)])
    widths = [max(len(row[i]) for row in (head, *rows)) for i in range(len(head))]
    red = {keys + FIGURES.index("refusals"), keys + FIGURES.index("errors")}

    def line(row: list[str]) -> str:
        cells = []
        for i, text in enumerate(row):
            cell = text.ljust(widths[i]) if i < keys else text.rjust(widths[i])
            if colour and i in red and text not in ("0", "-") and row is not head:
                cell = f"\033[31m{cell}\033[0m"
            cells.append(cell)
        return "  ".join(cells).rstrip()

    lines.append(line(head))
    lines.extend(line(row) for row in rows)
    return "\n".join(lines) + "\n"
