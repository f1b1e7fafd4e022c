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
        'model = "eu.anthropic.claude-3-7-sonnet-20250219-v1:0"',
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
t0 = time.perf_counter()
client = privsdk.Client(usage="none")
t1 = time.perf_counter()
print(json.dumps({"load_s": t1 - t0, "tenants": len(client.policy.tenants)}))
"""


def load_seconds(path: str, env: dict[str, str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _CHILD],
            env={**env, "PRIVSDK_CONFIG": path},
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        samples.append(float(json.loads(out.stdout)["load_s"]))
    return statistics.median(samples)


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
        seconds[(tenants, targets)] = s = load_seconds(path, env, args.runs)
        size_kib = os.path.getsize(path) / 1024
        print(f"  {tenants:>6} tenants x {targets:>3} targets ({size_kib:8.0f} KiB)  {s * 1000:9.1f} ms")
    ratio = seconds[(2_000, 200)] / seconds[(10, 10)]
    print(f"goal: 2,000 x 200 within {RATIO_GOAL:g}x of 10 x 10: {verdict(ratio <= RATIO_GOAL)} ({ratio:.1f}x)")
    s = seconds[(10_000, 10)]
    print(f"goal: 10,000 tenants load in < {TENANTS_GOAL_S:g} s: {verdict(s < TENANTS_GOAL_S)} ({s:.2f} s)")
    per = memory_per_tenant(policy_file(directory, 10_000, 10), 10_000)
    print(f"memory per loaded tenant (tracemalloc, 10,000 tenants): {per / 1024:.2f} KiB")


if __name__ == "__main__":
    main()
