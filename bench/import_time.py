"""How long ``import privsdk`` takes, and what it pulls in.

Each measurement runs in a fresh interpreter (``python -X importtime -c "import privsdk"``)
and reads the cumulative microseconds of the top-level ``privsdk`` line. Then what
``import privsdk.openai`` adds to the ``import openai`` it makes (issue 9's goal). A second fresh
interpreter lists the modules the import loaded and checks that no vendor SDK was imported
(or even looked for) and that no catalogue TOML file was parsed.

Prints one line per measurement with its goal and PASS/FAIL. Timing goals are reported,
never asserted: the exit status is non-zero only when a vendor SDK was imported or looked
for, or a catalogue file was parsed, which do not depend on machine load.

Run: ``.venv/bin/python bench/import_time.py [--runs N]`` (or ``make bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

from childenv import REPO, child_envs, verdict

IMPORT_GOAL_MS = 50.0
DROPIN_GOAL_MS = 30.0  # issue 9: import privsdk.openai adds at most this over the import openai inside it
VENDOR_SDKS: tuple[str, ...] = (
    "openai",
    "cohere",
    "mistralai",
    "boto3",
    "botocore",
    "vertexai",
    "google.genai",
    "google.cloud.aiplatform",
)
_IMPORTTIME_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|( *)(\S+)\s*$")

# Runs in a fresh interpreter. A meta-path finder placed first records every attempt to
# import a vendor SDK (and returns None, so the import proceeds as usual): an SDK that
# privsdk tries to import shows up even when it is not installed on this machine.
_MODULES_CHILD = """
import sys
before = set(sys.modules)
vendors = tuple(sys.argv[1].split(","))
attempted = []

def _is_vendor(name):
    return any(name == v or name.startswith(v + ".") for v in vendors)

class _Watch:
    def find_spec(self, name, path=None, target=None):
        if _is_vendor(name):
            attempted.append(name)
        return None

sys.meta_path.insert(0, _Watch())
import privsdk
after = set(sys.modules)
import json
loaded = sorted(after - before)
vendors_loaded = sorted(m for m in after if _is_vendor(m))
catalogue_vendors = None
if "privsdk.catalogue" in sys.modules:
    catalogue_vendors = sorted(sys.modules["privsdk.catalogue"].default_catalogue()._vendors)
print(json.dumps({
    "loaded": loaded,
    "vendors_loaded": vendors_loaded,
    "vendors_attempted": sorted(set(attempted)),
    "loader_imported": "privsdk.catalogue.loader" in after,
    "toml_parser_imported": sorted(m for m in ("tomllib", "tomli") if m in after),
    "catalogue_vendors_loaded": catalogue_vendors,
}))
"""


def importtime(statement: str, env: dict[str, str]) -> list[tuple[int, int, str]]:
    """``python -X importtime -c statement`` in a fresh interpreter: (cumulative µs, nesting depth, module) per
    line, in the order printed (a module's line after those of the modules it imported)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = [_IMPORTTIME_LINE.match(line) for line in proc.stderr.splitlines()]
    # The name column is indented by one space, and two more for each level of nesting.
    return [(int(m.group(2)), (len(m.group(3)) - 1) // 2, m.group(4)) for m in found if m is not None]


def import_time_us(env: dict[str, str]) -> int:
    """Cumulative microseconds of the ``privsdk`` line of ``-X importtime``, in a fresh interpreter."""
    for cumulative, _, module in importtime("import privsdk", env):
        if module == "privsdk":
            return cumulative
    raise RuntimeError("no 'privsdk' line in -X importtime output")


def dropin_extra_us(env: dict[str, str]) -> int:
    """What ``import privsdk.openai`` costs beyond the ``import openai`` it makes, in a fresh interpreter: openai is
    imported first, then ``import privsdk.openai`` is timed alone. (Subtracting the ``openai`` line of
    ``-X importtime`` from privsdk's leaned high by what the two share: privsdk imported ``typing``,
    ``importlib.abc`` and what they pull in before openai did, and -X importtime counted it to privsdk.)"""
    statement = (
        "import time, openai; t = time.perf_counter(); import privsdk.openai; "
        "print(round((time.perf_counter() - t) * 1e6))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", statement], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    return int(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20, help="fresh interpreters to time (default 20)")
    args = parser.parse_args(argv)
    runs: int = max(1, args.runs)

    print(f"python {sys.version.split()[0]} ({sys.executable}), {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="privsdk-bench-pyc-") as cache_dir:
        envs = child_envs(cache_dir)
        for label, env in envs:
            import_time_us(env)  # warm-up, not counted: fills the bytecode cache
            samples_ms = [import_time_us(env) / 1000 for _ in range(runs)]
            median_ms = statistics.median(samples_ms)
            print(
                f"import privsdk (-X importtime, cumulative), {label}, {runs} fresh processes: "
                f"median {median_ms:.1f} ms, min {min(samples_ms):.1f} ms, max {max(samples_ms):.1f} ms  "
                f"goal <= {IMPORT_GOAL_MS:.0f} ms (median): {verdict(median_ms <= IMPORT_GOAL_MS)}"
            )
        env = envs[0][1]
        dropin_extra_us(env)  # warm-up, not counted
        extras_ms = [dropin_extra_us(env) / 1000 for _ in range(max(3, runs // 4))]
        median_ms = statistics.median(extras_ms)
        print(
            f"import privsdk.openai over the import openai inside it, {len(extras_ms)} fresh processes: "
            f"median +{median_ms:.1f} ms, min +{min(extras_ms):.1f} ms, max +{max(extras_ms):.1f} ms  "
            f"goal <= {DROPIN_GOAL_MS:.0f} ms (median): {verdict(median_ms <= DROPIN_GOAL_MS)}"
        )
        return check_modules(env)


def check_modules(env: dict[str, str]) -> int:
    """Report what ``import privsdk`` loads; 1 if it imports (or looks for) a vendor SDK or parses the catalogue."""
    proc = subprocess.run(
        [sys.executable, "-c", _MODULES_CHILD, ",".join(VENDOR_SDKS)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(proc.stdout)
    loaded: list[str] = report["loaded"]
    vendors_loaded: list[str] = report["vendors_loaded"]
    vendors_attempted: list[str] = report["vendors_attempted"]
    loader_imported: bool = report["loader_imported"]
    toml_parsers: list[str] = report["toml_parser_imported"]
    catalogue_vendors: list[str] | None = report["catalogue_vendors_loaded"]

    own = [m for m in loaded if m == "privsdk" or m.startswith("privsdk.")]
    print(f"modules loaded by import privsdk: {len(loaded)} ({len(own)} of privsdk: {', '.join(own)})")
    print(f"  others: {', '.join(m for m in loaded if m not in own) or 'none'}")

    no_vendor = not vendors_loaded and not vendors_attempted
    print(
        f"vendor SDKs imported: {', '.join(vendors_loaded) or 'none'}; "
        f"looked for: {', '.join(vendors_attempted) or 'none'}  "
        f"goal: none of {', '.join(VENDOR_SDKS)}: {verdict(no_vendor)}"
    )

    no_toml = not loader_imported and not catalogue_vendors
    print(
        f"catalogue: privsdk.catalogue.loader imported: {'yes' if loader_imported else 'no'}; "
        f"TOML parser imported: {', '.join(toml_parsers) or 'none'}; "
        f"vendor files loaded: {', '.join(catalogue_vendors or []) or 'none'}  "
        f"goal: no catalogue file parsed: {verdict(no_toml)}"
    )
    return 0 if no_vendor and no_toml else 1


if __name__ == "__main__":
    sys.exit(main())
