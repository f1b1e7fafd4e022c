"""How fast privsdk decides: the first decision after import, warm decisions, cold decisions.

(a) First decision: in a fresh interpreter per run, ``import privsdk``, then ``load_policy()``
    and one ``decide(policy, "openai/gpt-4o-mini", "chat")``, which includes reading the one
    vendor catalogue file it needs. The goal ("first decision after import") applies to
    load_policy + decide with no config; import has its own goal (bench/import_time.py).
    Also run with ``PRIVSDK_CONFIG=privsdk/example_policy.toml``, whose validation loads the
    catalogue files of every vendor it names.
(b) Warm decisions per second on one core: a policy built from privsdk/example_policy.toml, the
    cache warmed, then ``decide`` in a loop over a fixed mix of tenants, data classes,
    targets (config names and vendor/model strings) and operations. Once with ``today``
    passed and once without it (``decide`` then reads the clock on every call).
(c) Cold decisions: the function under ``lru_cache`` called directly, so every call
    evaluates; and, for comparison, ``decide`` after clearing the cache on each call.

Figures are printed, never asserted: the exit status is 0 whatever they are.

Run: ``.venv/bin/python bench/decisions.py [--runs N] [--count N]`` (or ``make bench``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable

from childenv import REPO, child_envs, verdict

import privsdk
from privsdk import decision as decision_module
from privsdk.catalogue import default_catalogue
from privsdk.policy import Policy

EXAMPLE_CONFIG = REPO / "privsdk" / "example_policy.toml"
FIRST_DECISION_GOAL_MS = 20.0
WARM_GOAL_PER_S = 200_000

Key = tuple[str | None, str | None, str, str]  # tenant, data class, target, operation

# Runs in a fresh interpreter: prints the elapsed nanoseconds of each step as JSON.
_FIRST_DECISION_CHILD = """
import time
t0 = time.perf_counter_ns()
import privsdk
t1 = time.perf_counter_ns()
policy = privsdk.load_policy()
t2 = time.perf_counter_ns()
decision = privsdk.decide(policy, "openai/gpt-4o-mini", "chat")
t3 = time.perf_counter_ns()
import json
print(json.dumps({
    "import": t1 - t0, "load_policy": t2 - t1, "decide": t3 - t2, "total": t3 - t0,
    "outcome": decision.outcome,
    "vendors": sorted(privsdk.default_catalogue()._vendors),
}))
"""

# The (tenant, data class) pairs of privsdk/example_policy.toml, None meaning "the default".
_TENANT_CLASSES: tuple[tuple[str | None, str | None], ...] = (
    (None, None),
    ("acme", "default"),
    ("acme", "pii"),
    ("acme", "phi"),
    ("globex", None),
    ("globex", "default"),
)
_TARGETS: tuple[str, ...] = (
    "openai-mini",
    "azure-eu-gpt4o",
    "bedrock-eu-claude",
    "mistral-large",
    "cohere-command",
    "vertex-gemini-eu",
    "local-llama",
    "openai/gpt-4o-mini",
    "openai/gpt-4.1",
    "mistral/mistral-large-latest",
    "cohere/command-r-plus",
    "gemini/gemini-2.5-flash",
)
_OPERATIONS: tuple[str, ...] = ("chat", "chat", "chat", "stream", "stream", "embed")  # chat-heavy


def key_mix(size: int, seed: int = 2026) -> list[Key]:
    """``size`` keys drawn from every tenant/class x target x operation, in a fixed random order."""
    rng = random.Random(seed)
    return [(*rng.choice(_TENANT_CLASSES), rng.choice(_TARGETS), rng.choice(_OPERATIONS)) for _ in range(size)]


def pin_to_one_core() -> str:
    """Pin this process (and its children) to one CPU where the OS allows it."""
    if sys.platform == "linux":
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (single thread)"


# (a) ------------------------------------------------------------------------------------


def first_decision(runs: int, env: dict[str, str]) -> tuple[dict[str, float], list[str], str]:
    """Median milliseconds per step over ``runs`` fresh interpreters, the vendors loaded, the outcome."""
    steps: dict[str, list[float]] = {
        "import": [], "load_policy": [], "decide": [], "after_import": [], "total": [], "process": [],
    }  # fmt: skip
    vendors: list[str] = []
    outcome = ""
    cmd = [sys.executable, "-c", _FIRST_DECISION_CHILD]
    subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, check=True)  # warm-up: fills the bytecode cache
    for _ in range(runs):
        start = time.perf_counter_ns()
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=True)
        steps["process"].append((time.perf_counter_ns() - start) / 1e6)
        report = json.loads(proc.stdout)
        for name in ("import", "load_policy", "decide", "total"):
            steps[name].append(int(report[name]) / 1e6)
        steps["after_import"].append((int(report["load_policy"]) + int(report["decide"])) / 1e6)
        vendors = [str(v) for v in report["vendors"]]
        outcome = str(report["outcome"])
    return {name: statistics.median(values) for name, values in steps.items()}, vendors, outcome


def report_first_decision(label: str, runs: int, env: dict[str, str], goal: bool) -> None:
    med, vendors, outcome = first_decision(runs, env)
    line = (
        f"(a) first decision after import, {label}, median of {runs} fresh processes: {med['after_import']:.1f} ms "
        f"(load_policy {med['load_policy']:.1f} + decide {med['decide']:.1f}; with import {med['total']:.1f}); "
        f"{outcome}; vendor files loaded: {len(vendors)} ({', '.join(vendors)}); "
        f"whole process {med['process']:.0f} ms"
    )
    if goal:
        line += f"  goal <= {FIRST_DECISION_GOAL_MS:.0f} ms: {verdict(med['after_import'] <= FIRST_DECISION_GOAL_MS)}"
    else:
        line += "  (reported; the goal applies to the no-config case)"
    print(line)


# (b) ------------------------------------------------------------------------------------


def warm_loop_with_today(policy: Policy, keys: list[Key], laps: int, today: dt.date) -> int:
    decide = privsdk.decide
    start = time.perf_counter_ns()
    for _ in range(laps):
        for tenant, data_class, target, operation in keys:
            decide(policy, target, operation, tenant=tenant, data_class=data_class, today=today)
    return time.perf_counter_ns() - start


def warm_loop_without_today(policy: Policy, keys: list[Key], laps: int, today: dt.date) -> int:
    del today  # omitted on purpose: decide reads the clock on every call
    decide = privsdk.decide
    start = time.perf_counter_ns()
    for _ in range(laps):
        for tenant, data_class, target, operation in keys:
            decide(policy, target, operation, tenant=tenant, data_class=data_class)
    return time.perf_counter_ns() - start


def timed_repeats(loop: Callable[[], int], repeats: int) -> list[int]:
    """Nanoseconds of each of ``repeats`` calls of ``loop``, with the collector off."""
    results: list[int] = []
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            results.append(loop())
    finally:
        if was_enabled:
            gc.enable()
    return results


def report_warm(policy: Policy, keys: list[Key], count: int, repeats: int) -> None:
    today = dt.datetime.now(dt.timezone.utc).date()
    for tenant, data_class, target, operation in keys:  # warm the cache, both variants
        privsdk.decide(policy, target, operation, tenant=tenant, data_class=data_class, today=today)
        privsdk.decide(policy, target, operation, tenant=tenant, data_class=data_class)
    info = decision_module._decide.cache_info()
    outcomes = Counter(
        privsdk.decide(policy, tg, op, tenant=tn, data_class=dc, today=today).outcome for tn, dc, tg, op in keys
    )
    print(
        f"(b) key mix: {len(keys)} calls over {len(set(keys))} distinct keys "
        f"({', '.join(f'{n} {o}' for o, n in sorted(outcomes.items()))}); cache {info.currsize}/{info.maxsize}"
    )
    laps = max(1, count // len(keys))
    calls = laps * len(keys)
    variants: list[tuple[str, Callable[[Policy, list[Key], int, dt.date], int]]] = [
        ("today passed", warm_loop_with_today),
        ("today omitted (clock read per call)", warm_loop_without_today),
    ]
    for label, loop in variants:
        before = decision_module._decide.cache_info().misses
        times = timed_repeats(functools.partial(loop, policy, keys, laps, today), repeats)
        misses = decision_module._decide.cache_info().misses - before
        rates = [calls / (ns / 1e9) for ns in times]
        best, median = max(rates), statistics.median(rates)
        print(
            f"(b) warm decisions/s, {label}, {calls:,} calls x {repeats} repeats: "
            f"best {best:,.0f}/s, median {median:,.0f}/s ({1e6 / median:.2f} µs/call; cache misses {misses})  "
            f"goal >= {WARM_GOAL_PER_S:,}/s per core (median): {verdict(median >= WARM_GOAL_PER_S)}"
        )


# (c) ------------------------------------------------------------------------------------


def report_cold(policy: Policy, keys: list[Key], count: int, repeats: int) -> None:
    today = dt.datetime.now(dt.timezone.utc).date()
    catalogue = default_catalogue()
    uncached = decision_module._decide.__wrapped__
    no_features: frozenset[str] = frozenset()
    selected = keys[: max(1, min(count, len(keys)))]
    laps = max(1, count // len(selected))
    calls = laps * len(selected)

    def direct() -> int:
        start = time.perf_counter_ns()
        for _ in range(laps):
            for tenant, data_class, target, operation in selected:
                uncached(policy, catalogue, tenant, data_class, target, operation, no_features, today)
        return time.perf_counter_ns() - start

    def cleared() -> int:
        decide = privsdk.decide
        clear = decision_module._decide.cache_clear
        start = time.perf_counter_ns()
        for _ in range(laps):
            for tenant, data_class, target, operation in selected:
                clear()
                decide(policy, target, operation, tenant=tenant, data_class=data_class, today=today)
        return time.perf_counter_ns() - start

    for label, loop in (("_decide.__wrapped__ (no cache)", direct), ("decide after cache_clear()", cleared)):
        per_call = [ns / calls / 1000 for ns in timed_repeats(loop, repeats)]
        print(
            f"(c) cold decision, {label}, {calls:,} calls x {repeats} repeats: "
            f"best {min(per_call):.1f} µs, median {statistics.median(per_call):.1f} µs per decision"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=15, help="fresh processes for (a) (default 15)")
    parser.add_argument("--count", type=int, default=200_000, help="decide calls per warm repeat (default 200000)")
    parser.add_argument("--cold-count", type=int, default=10_000, help="calls per cold repeat (default 10000)")
    parser.add_argument("--repeats", type=int, default=7, help="repeats for (b) and (c) (default 7)")
    args = parser.parse_args(argv)
    runs: int = max(1, args.runs)
    count: int = max(1, args.count)
    cold_count: int = max(1, args.cold_count)
    repeats: int = max(1, args.repeats)

    print(f"python {sys.version.split()[0]} ({sys.executable}), {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="privsdk-bench-pyc-") as cache_dir:
        for config, extra in (
            ("no config", {}),
            ("PRIVSDK_CONFIG=privsdk/example_policy.toml", {"PRIVSDK_CONFIG": str(EXAMPLE_CONFIG)}),
        ):
            for label, env in child_envs(cache_dir, **extra):
                report_first_decision(f"{config}, {label}", runs, env, goal=not extra)

    print(f"(b), (c): one thread, {pin_to_one_core()}")

    policy = privsdk.load_policy(environ={"PRIVSDK_CONFIG": str(EXAMPLE_CONFIG)})
    keys = key_mix(1000)
    report_warm(policy, keys, count, repeats)
    report_cold(policy, keys, cold_count, repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
