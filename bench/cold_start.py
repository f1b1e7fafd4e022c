"""The first call of a process: what finding the adapter costs, and the whole first call.

In fresh interpreters (bytecode cached), after ``import privsdk``:

- finding the openai adapter (``privsdk.adapter.adapter_factory("openai")``): privsdk's own
  adapters are imported by name, from a built-in table;
- for comparison, the entry-point lookup the core used before, and still uses for other
  vendors' adapters: ``importlib.metadata.entry_points(group="privsdk.adapters", name="openai")``,
  which reads the metadata of every installed distribution;
- the first ``Client.chat`` of the process against a loopback OpenAI server (the openai SDK's
  own import included), and the second;
- 300 tenants of one policy file, each making its first call: the time of a tenant's first
  call and the memory (RSS) each tenant adds, once with every tenant on the client's key
  (they share one SDK client) and once with each tenant's own key (one SDK client each).

Printed, never asserted. Run: ``.venv/bin/python bench/cold_start.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable

from childenv import REPO, child_envs

sys.path.insert(0, str(REPO))  # for tests.wire

from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer, Recorded, Reply

KEY = "sk-bench"

_CHILD = """
import json, sys, time
import privsdk, privsdk.adapter
out = {}
if sys.argv[1] == "entry_points":
    t0 = time.perf_counter()
    from importlib.metadata import entry_points
    found = entry_points(group="privsdk.adapters", name="openai")
    out["lookup"] = time.perf_counter() - t0
elif sys.argv[1] == "tenants":
    import os
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    n, own = int(sys.argv[4]), sys.argv[5] == "own"
    lines = ["[targets.mini]", 'offering = "openai.api"', 'model = "gpt-4o-mini"', f'endpoint = "{sys.argv[3]}"']
    env = {"PRIVSDK_CONFIG": sys.argv[6]}
    for i in range(n):
        lines += [f"[tenants.t{i}]", 'classes.default = ["no_training"]']
        if own:
            lines.append(f'credentials.openai = {{ api_key = "KEY_{i}" }}')
            env[f"KEY_{i}"] = f"{sys.argv[2]}-{i}"  # a key of its own: never shared
    with open(sys.argv[6], "w") as f:
        f.write(chr(10).join(lines))
    client = privsdk.Client(environ=env, usage="none", credentials={"openai": {"api_key": sys.argv[2]}})
    client.chat("mini", "hello", tenant="t0")
    client.chat("mini", "hello", tenant="t0")
    before, t0 = rss(), time.perf_counter()
    for i in range(1, n):
        client.chat("mini", "hello", tenant=f"t{i}")
    out["first_call"] = (time.perf_counter() - t0) / (n - 1)
    out["rss_per_tenant"] = (rss() - before) / (n - 1)
elif sys.argv[1] == "builtin":
    t0 = time.perf_counter()
    privsdk.adapter.adapter_factory("openai")
    out["lookup"] = time.perf_counter() - t0
else:
    client = privsdk.Client(environ={}, usage="none", credentials={"openai": {"api_key": sys.argv[2]}},
                            endpoints={"openai": sys.argv[3]})
    t0 = time.perf_counter()
    client.chat("openai/gpt-4o-mini", "hello")
    t1 = time.perf_counter()
    client.chat("openai/gpt-4o-mini", "hello")
    out["first"], out["second"] = t1 - t0, time.perf_counter() - t1
print(json.dumps(out))
"""


def any_key(app: OpenAIWire) -> Callable[[Recorded], Reply]:
    """The OpenAI app, taking every tenant's own key (``sk-bench-N``) as well as its own."""

    def serve(request: Recorded) -> Reply:
        if request.headers.get("authorization", "").startswith(f"Bearer {KEY}-"):
            request = request._replace(headers={**request.headers, "authorization": f"Bearer {KEY}"})
        return app(request)

    return serve


def run(env: dict[str, str], *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], env=env, capture_output=True, text=True, check=True, cwd=REPO
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="fresh processes per figure (default 10)")
    args = parser.parse_args()
    cache = tempfile.mkdtemp(prefix="privsdk-bench-cold-")
    (label, env), *_ = child_envs(os.path.join(cache, "pycache"))
    with LoopbackServer(any_key(OpenAIWire(key=KEY))) as server:
        url = f"{server.url}/v1"
        run(env, "call", KEY, url)  # writes the bytecode cache
        print(f"The first call of a process, median of {args.runs} fresh processes ({label}):")
        for kind, what in (
            ("builtin", "find the openai adapter (built-in table, by import)"),
            ("entry_points", "entry_points(group='privsdk.adapters') (every distribution's metadata)"),
        ):
            ms = statistics.median(run(env, kind)["lookup"] for _ in range(args.runs)) * 1000
            print(f"  {what:<75} {ms:8.2f} ms")
        calls = [run(env, "call", KEY, url) for _ in range(args.runs)]
        first = statistics.median(c["first"] for c in calls) * 1000
        second = statistics.median(c["second"] for c in calls) * 1000
        print(f"  {'first Client.chat (adapter found, openai SDK imported, client built)':<75} {first:8.2f} ms")
        print(f"  {'second Client.chat':<75} {second:8.2f} ms")
        n = 300
        for mode, what in (("shared", "every tenant on the client's key"), ("own", "each tenant with its own key")):
            found = run(env, "tenants", KEY, url, str(n), mode, os.path.join(cache, f"{mode}.toml"))
            print(
                f"  {n} tenants, {what:<35} first call {found['first_call'] * 1000:6.2f} ms, "
                f"memory {found['rss_per_tenant'] / 1024:7.1f} KiB per tenant"
            )


if __name__ == "__main__":
    main()
