"""How loading a policy scales with tenants and targets, and what each tenant costs in memory.

Writes policy files with N tenants x M targets (a realistic mix: default accounts and tenants
with their own, several data classes, reroute lists, targets over every vendor) and times, in a
fresh interpreter per size, building ``privsdk.Client`` from the file (``load_policy`` included,
the file read and checked), after ``import privsdk``. Also the memory a loaded tenant holds
(``tracemalloc``, 10,000 tenants), and a tenant store: first lookup (store read and checked) and
warm decisions through the cache. Goal: 2,000 tenants x 200 targets within 100x of 10 x 10;
10,000 tenants load in under 1 s. Printed, never asserted.

Run: ``.venv/bin/python bench/policy_load.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from childenv import REPO, child_envs, verdict

SIZES = ((10, 10), (100, 10), (1_000, 10), (10_000, 10), (100, 100), (2_000, 200))
RATIO_GOAL = 100.0
TENANTS_GOAL_S = 1.0

_TARGETS = (
    ('offering = "openai.api"', 'model = "gpt-4o-mini"'),
    (
        'offering = "azure.openai"',
        'model = "gpt-4o"',
        'endpoint = "https://x.openai.azure.com"',
        'deployment = "d"',
        'attest = ["deployment=data_zone_eu", "modified_abuse_monitoring"]',
    ),
    (
        'offering = "bedrock.runtime"',
        'model = "anthropic.claude-3-haiku-20240307-v1:0"',  # in-Region, as in example_policy.toml (eu.* is eu|uk|ch)
        'region = "eu-central-1"',
        'attest = ["region=eu"]',
    ),
    ('offering = "mistral.api"', 'model = "mistral-large-latest"'),
    ('offering = "cohere.saas"', 'model = "command-r-plus"'),
    (
        'offering = "vertex.gemini"',
        'model = "gemini-2.5-flash"',
        'project = "p"',
        'region = "europe-west4"',
        'attest = ["region=eu"]',
    ),
    (
        'offering = "selfhosted.vllm"',
        'model = "llama-3.1-8b-instruct"',
        'endpoint = "http://llm:8000/v1"',
        'attest = ["no_request_logging", "region=eu"]',
    ),
)
_TENANTS = (
    [
        'on_violation = "reroute"',
        'classes.default = ["no_training"]',
        'classes.pii = ["no_training", "zdr", "region=eu"]',
        'reroute."openai/*" = ["t1", "t6"]',
    ],
    ['classes.default = ["no_training", "max_retention_days=30"]', 'attest.openai = ["baa"]'],
    ['classes.default = ["no_training"]', 'classes.phi = ["zdr", "hipaa_baa"]', 'attest.mistral = ["plan=scale"]'],
)


def policy_text(tenants: int, targets: int) -> str:
    """A policy file with ``tenants`` tenants and ``targets`` targets."""
    out = ["[attest]", 'openai = ["zdr", "baa"]', 'mistral = ["plan=scale", "zdr"]', ""]
    for i in range(targets):
        out += [f"[targets.t{i}]", *_TARGETS[i % len(_TARGETS)], ""]
    for i in range(tenants):
        out += [f"[tenants.tenant{i}]", *_TENANTS[i % len(_TENANTS)], ""]
    return "\n".join(out)


_CHILD = """
import json, sys, time
import privsdk
t0, c0 = time.perf_counter(), time.process_time()
client = privsdk.Client(usage="none")
t1, c1 = time.perf_counter(), time.process_time()
print(json.dumps({"load_s": t1 - t0, "cpu_s": c1 - c0, "tenants": len(client.policy.tenants)}))
"""


def load_seconds(path: str, env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median wall-clock and CPU seconds of building the client (CPU time: steadier on a shared machine)."""
    samples, cpu = [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _CHILD],
            env={**env, "PRIVSDK_CONFIG": path},
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        found = json.loads(out.stdout)
        samples.append(float(found["load_s"]))
        cpu.append(float(found["cpu_s"]))
    return statistics.median(samples), statistics.median(cpu)


def memory_per_tenant(path: str, tenants: int) -> float:
    """Bytes a loaded tenant holds: tracemalloc's peak-free size of the policy, over the tenant count."""
    import tracemalloc

    from privsdk.config import load_policy

    load_policy({"PRIVSDK_CONFIG": policy_file(tempfile.mkdtemp(), 10, 10)})  # modules and catalogue loaded
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    policy = load_policy({"PRIVSDK_CONFIG": path})
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    size = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert len(policy.tenants) == tenants
    return size / tenants


def store_figures(directory: str, tenants: int) -> None:
    """A tenant store of ``tenants`` files: loading the policy, a tenant's first decision, warm decisions."""
    import time

    from privsdk.config import load_policy
    from privsdk.decision import decide
    from privsdk.tenants import TenantStore

    folder = os.path.join(directory, "tenants")
    os.makedirs(folder, exist_ok=True)
    for i in range(tenants):
        with open(os.path.join(folder, f"tenant{i}.toml"), "w", encoding="utf-8") as f:
            f.write("\n".join(_TENANTS[i % len(_TENANTS)]).replace('["t1", "t6"]', '["openai/gpt-4o"]') + "\n")
    path = os.path.join(directory, "store-policy.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(policy_text(0, 10).replace('["t1", "t6"]', '["openai/gpt-4o"]'))
    env = {"PRIVSDK_CONFIG": path, "PRIVSDK_TENANTS": f"dir://{folder}?max_size={tenants}"}
    t0 = time.process_time()
    policy = load_policy(env)
    loaded = time.process_time() - t0
    store = policy.tenants
    assert isinstance(store, TenantStore)
    t0 = time.process_time()
    for i in range(tenants):
        decide(policy, "t0", tenant=f"tenant{i}")
    first = (time.process_time() - t0) / tenants
    assert store.loads == tenants
    print(f"tenant store, {tenants:,} tenant files (PRIVSDK_TENANTS=dir://...), CPU time:")
    print(f"  load_policy (no tenant read yet)                          {loaded * 1000:9.1f} ms")
    print(f"  a tenant's first decision (file read and checked)         {first * 1e6:9.1f} µs")
    for active in (1_000, tenants):
        names = [f"tenant{i}" for i in range(active)]
        for name in names:
            decide(policy, "t0", tenant=name)
        t0 = time.process_time()
        for _ in range(3):
            for name in names:
                decide(policy, "t0", tenant=name)
        warm = (time.process_time() - t0) / (3 * active)
        note = "" if active <= 8192 else "  (more than the 8,192 decisions cached: each decided again)"
        print(f"  a decision, the tenant cached, {active:>6,} tenants in turn      {warm * 1e6:9.1f} µs{note}")
    assert store.loads == tenants


def policy_file(directory: str, tenants: int, targets: int) -> str:
    path = os.path.join(directory, f"policy-{tenants}x{targets}.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(policy_text(tenants, targets))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per size (default 3)")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="privsdk-bench-policy-")
    (label, env), *_ = child_envs(os.path.join(directory, "pycache"))
    subprocess.run([sys.executable, "-c", "import privsdk.client, privsdk.config"], env=env, check=True, cwd=REPO)
    print(f"privsdk.Client(...) from a policy file, median of {args.runs} fresh processes ({label}):")
    seconds = {}
    for tenants, targets in SIZES:
        path = policy_file(directory, tenants, targets)
        wall, seconds[(tenants, targets)] = load_seconds(path, env, args.runs)
        size_kib = os.path.getsize(path) / 1024
        print(
            f"  {tenants:>6} tenants x {targets:>3} targets ({size_kib:6.0f} KiB)  "
            f"wall {wall * 1000:8.1f} ms   CPU {seconds[(tenants, targets)] * 1000:8.1f} ms"
        )
    ratio = seconds[(2_000, 200)] / seconds[(10, 10)]
    print(f"goal (CPU): 2,000 x 200 within {RATIO_GOAL:g}x of 10 x 10: {verdict(ratio <= RATIO_GOAL)} ({ratio:.1f}x)")
    s = seconds[(10_000, 10)]
    print(f"goal (CPU): 10,000 tenants load in < {TENANTS_GOAL_S:g} s: {verdict(s < TENANTS_GOAL_S)} ({s:.2f} s)")
    per = memory_per_tenant(policy_file(directory, 10_000, 10), 10_000)
    print(f"memory per loaded tenant (tracemalloc, 10,000 tenants): {per / 1024:.2f} KiB")
    store_figures(directory, 10_000)


if __name__ == "__main__":
    main()
