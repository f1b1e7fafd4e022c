"""What privsdk.Client adds to a chat call, counted in CPU instructions, which do not jitter.

On a shared or virtual machine, timings of a ~1 ms SDK call drift by more than
privsdk's whole cost between runs (see overhead.py). Instruction counts from
``valgrind --tool=callgrind`` are the same run after run. A child process makes
N chat calls answered in memory (no sockets), either with the raw openai SDK
(its ``create``, as an app calls it, or its untyped ``post``, as privsdk's
adapter calls it) or through privsdk.Client with ``PRIVSDK_USAGE=none``; the
per-call count is
the difference between N=400 and N=200 runs divided by 200, so one-time costs
(imports, first calls) cancel out. The extra instructions are then turned into
µs at the raw call's own measured speed. The Client's count against ``create``
is what an app's call gains or pays by going through privsdk; against the
untyped ``post``, privsdk's own work.

When LiteLLM is importable, its ``completion`` is counted the same way,
handed the same in-memory SDK client. Needs valgrind (Debian's package);
takes about two minutes, ten with LiteLLM. Printed, never asserted.

Run: ``.venv/bin/python bench/instructions.py``, or with LiteLLM:
``uv run --with litellm python bench/instructions.py``.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from childenv import REPO, verdict

KEY, MODEL = "sk-bench", "gpt-4o-mini"
MESSAGES: Any = [{"role": "user", "content": "Summarise the report."}]
GOAL_US = 50.0
LITELLM_FACTOR = 50.0
DROPIN_GOAL_US, DROPIN_RATIO = 20.0, 1.02  # issue 9


def child(which: str, calls: int) -> None:
    """The measured process: set up both clients, warm up, then ``calls`` calls of one kind."""
    sys.path.insert(0, str(REPO))
    import openai
    from adapter_openai import RawOpenAI, in_memory
    from privsdk_openai.dropin import guard_client

    import privsdk
    from tests.wire.openai import OpenAIWire

    wire = OpenAIWire(key=KEY)
    memory = in_memory(wire)
    raw = RawOpenAI(api_key=KEY, base_url="http://bench.invalid/v1", max_retries=0, http_client=memory)
    ours = privsdk.Client(
        environ={},
        usage="none",
        credentials={"openai": {"api_key": KEY}},
        endpoints={"openai": "http://bench.invalid/v1"},
    )
    # The drop-in's own in-memory client (guarding wraps its transport in place), and the guard configured by the
    # environment alone, as an app that swapped its import would have it.
    os.environ.update({"PRIVSDK_ENDPOINTS": "http://bench.invalid=openai.api", "PRIVSDK_USAGE": "none"})
    dropin = guard_client(
        openai.OpenAI(api_key=KEY, base_url="http://bench.invalid/v1", max_retries=0, http_client=in_memory(wire))
    )
    plan = ours._core.plan(f"openai/{MODEL}", "chat", {})
    adapter: Any = ours._core.adapter(plan.tenant, plan.chain[0][0], "chat")
    # The adapter's SDK client answered in memory, through the Client's guard as every Client call is.
    adapter._client = adapter._client.with_options(http_client=adapter._http(lambda: in_memory(wire)))
    if which == "raw":
        call: Any = lambda: raw.chat.completions.create(model=MODEL, messages=MESSAGES)  # noqa: E731
    elif which == "untyped":  # the SDK call privsdk's adapter makes: public post, plain body, JSON answer
        body = {"model": MODEL, "messages": MESSAGES}
        call = lambda: raw.post("/chat/completions", body=body, cast_to=object)  # noqa: E731
    elif which == "litellm":  # LiteLLM drives the same in-memory SDK client it is handed
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm  # type: ignore[import-not-found, unused-ignore]  # only in the bench environment

        call = lambda: litellm.completion(  # noqa: E731
            model=f"openai/{MODEL}", messages=MESSAGES, client=raw, api_key=KEY, num_retries=0
        )
    elif which == "dropin":  # the same openai client with the guard in its transport (issue 9)
        call = lambda: dropin.chat.completions.create(model=MODEL, messages=MESSAGES)  # noqa: E731
    else:
        call = lambda: ours.chat(f"openai/{MODEL}", MESSAGES)  # noqa: E731
    # No garbage collection while counting: where a full collection lands between N=200 and N=400 depends on
    # every allocation before it, and one such collection adds some 15,000 instructions per call to a count.
    gc.collect()
    gc.disable()
    for _ in range(20 + calls):
        call()
    if which == "time":  # not under valgrind: the raw call's CPU time, to turn instructions into µs
        started = time.thread_time_ns()
        for _ in range(calls):
            raw.chat.completions.create(model=MODEL, messages=MESSAGES)
        print((time.thread_time_ns() - started) / calls / 1000)


def instructions(which: str, calls: int, out: Path) -> int:
    result = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--child",
            which,
            str(calls),
        ],
        capture_output=True,
        text=True,
        check=True,
        # One hash seed for every run: with random ones, dictionaries' layouts differ and counts move by ~20,000.
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"Collected : (\d+)", result.stderr)
    assert found, result.stderr[-2000:]
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=2, metavar=("KIND", "CALLS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    kinds = ["raw", "untyped", "client", "dropin"] + (["litellm"] if importlib.util.find_spec("litellm") else [])
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(2) as pool:
        runs = {
            (which, n): pool.submit(instructions, which, n, Path(tmp) / f"{which}{n}")
            for which in kinds
            for n in (200, 400)
        }
        counts = {key: future.result() for key, future in runs.items()}
    per_call = {which: (counts[(which, 400)] - counts[(which, 200)]) / 200 for which in kinds}
    raw_us = float(
        subprocess.run(
            [sys.executable, __file__, "--child", "time", "300"], capture_output=True, text=True, check=True
        ).stdout
    )
    extra = per_call["client"] - per_call["raw"]
    extra_us = extra / per_call["raw"] * raw_us
    own = per_call["client"] - per_call["untyped"]
    untyped = per_call["untyped"] - per_call["raw"]
    print("instructions per chat call, the SDK answered in memory (callgrind, N=400 minus N=200):")
    print(f"  raw openai SDK, create {per_call['raw']:11,.0f}")
    print(f"  SDK post, untyped     {per_call['untyped']:12,.0f}   {untyped:+,.0f} ({untyped / per_call['raw']:+.1%})")
    print(f"  privsdk.Client        {per_call['client']:12,.0f}   {extra:+,.0f} ({extra / per_call['raw']:+.1%})")
    print(f"  raw call's CPU time here: {raw_us:.0f} µs, so the Client's call costs {extra_us:+.1f} µs against it")
    own_us = own / per_call["raw"] * raw_us
    print(f"  privsdk's own work, the Client against the untyped post: {own:+,.0f} (about {own_us:+.1f} µs)")
    print(f"goal: privsdk adds <= {GOAL_US:g} µs per call: {verdict(extra_us <= GOAL_US)}")
    guarded = per_call["dropin"] - per_call["raw"]
    guarded_us = guarded / per_call["raw"] * raw_us
    print(f"  privsdk.openai drop-in {per_call['dropin']:11,.0f}   +{guarded:,.0f} ({guarded / per_call['raw']:.1%})")
    print(f"  so the guard in the drop-in adds about {guarded_us:.1f} µs")
    ok = verdict(guarded_us <= DROPIN_GOAL_US and per_call["dropin"] / per_call["raw"] <= DROPIN_RATIO)
    print(f"goal: the drop-in adds <= {DROPIN_GOAL_US:g} µs and costs <= {DROPIN_RATIO}x the raw call: {ok}")
    if "litellm" in per_call:
        litellm_extra = per_call["litellm"] - per_call["raw"]
        print(f"  LiteLLM completion    {per_call['litellm']:12,.0f}   +{litellm_extra:,.0f}")
        shown = f"{litellm_extra / extra:.0f}x" if extra > 0 else "privsdk adds nothing: its call costs less"
        ok = verdict(extra <= 0 or litellm_extra / extra >= LITELLM_FACTOR)
        print(f"goal: LiteLLM adds >= {LITELLM_FACTOR:g}x what privsdk adds: {ok} ({shown})")
        print(f"  (LiteLLM's addition over privsdk's own work: {litellm_extra / own:.0f}x)")
    else:
        print("LiteLLM is not installed here: run this script with `uv run --with litellm` to compare")


if __name__ == "__main__":
    main()
