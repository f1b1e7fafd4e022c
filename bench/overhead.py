"""What privsdk adds to a call, against the raw openai SDK, and what LiteLLM adds.

One loopback OpenAI server (tests/wire/openai.py). Timed in the same run, in turns:

- raw: ``openai.OpenAI(...).chat.completions.create`` with retries off (a client of a subclass that hides what
  guarding another client of the class installs on it: ``adapter_openai.RawOpenAI``);
- privsdk.Client: ``client.chat("openai/gpt-4o-mini", ...)``: decision, tenacity
  retry wrapper, adapter, and a usage record to the default sink (SQLite, in a
  temporary directory);
- the drop-in: ``privsdk.openai.OpenAI(...).chat.completions.create``;
- LiteLLM's ``completion``, when LiteLLM is importable. It is never a privsdk
  dependency: ``make bench`` runs this script with ``uv run --with litellm``.

Two figures per client: the wall-clock median (interleaved rounds), and the
median extra thread CPU time over back-to-back pairs with the raw call (the
loopback server runs in another thread and so drops out; the steadier figure on
a busy machine). Then the same pairs with the SDK answered in memory, for the
Client and for LiteLLM (handed an openai client on the same in-memory
transport): the goals are judged on these, both measured alike. Also a 50-chunk
stream: time to first chunk, and the extra cost per chunk, with the sync
clients and with the async ones. Goals: privsdk adds <= 50 µs per call, at
least 50 times less than LiteLLM adds. Printed, never asserted: the exit
status is 0.

Run: ``make bench``, or ``.venv/bin/python bench/overhead.py [--pairs N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from typing import Any

from adapter_openai import AsyncRawOpenAI, RawOpenAI, in_memory
from childenv import REPO, verdict
from timing import ADAPTER_CHUNK_GOAL_US, interleaved_medians, paired_rounds, paired_us, row

sys.path.insert(0, str(REPO))  # for tests.wire


import privsdk
import privsdk.openai
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer

KEY = "sk-bench"
MODEL = "gpt-4o-mini"
CALL_GOAL_US = 50.0
LITELLM_FACTOR = 50.0
MESSAGES: Any = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Summarise the report."}]


def clients(url: str, store: str) -> dict[str, Callable[[], object]]:
    raw = RawOpenAI(api_key=KEY, base_url=url, max_retries=0)
    ours = privsdk.Client(environ={}, usage=store, credentials={"openai": {"api_key": KEY}}, endpoints={"openai": url})
    # The drop-in is configured by the environment alone: the loopback server is declared as OpenAI's API.
    os.environ["PRIVSDK_ENDPOINTS"] = f"{url.rsplit('/v1', 1)[0]}=openai.api"
    os.environ["PRIVSDK_USAGE"] = store
    dropin = privsdk.openai.OpenAI(api_key=KEY, base_url=url, max_retries=0)
    calls: dict[str, Callable[[], object]] = {
        "raw openai SDK": lambda: raw.chat.completions.create(model=MODEL, messages=MESSAGES),
        "privsdk.Client": lambda: ours.chat(f"openai/{MODEL}", MESSAGES),
        "privsdk.openai drop-in": lambda: dropin.chat.completions.create(model=MODEL, messages=MESSAGES),
    }
    if importlib.util.find_spec("litellm") is not None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of the price list at import
        import litellm  # type: ignore[import-not-found, unused-ignore]  # only in the bench environment

        calls["LiteLLM completion"] = lambda: litellm.completion(
            model=f"openai/{MODEL}", messages=MESSAGES, api_base=url, api_key=KEY, num_retries=0
        )
    return calls


def streams(url: str, store: str) -> dict[str, Callable[[], Iterable[object]]]:
    """Open a stream, raw and through privsdk: the first chunk has arrived when the first ``next`` returns."""
    raw = RawOpenAI(api_key=KEY, base_url=url, max_retries=0)
    ours = privsdk.Client(environ={}, usage=store, credentials={"openai": {"api_key": KEY}}, endpoints={"openai": url})
    return {
        "raw openai SDK": lambda: raw.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        ),
        "privsdk.Client": lambda: ours.chat(f"openai/{MODEL}", MESSAGES, stream=True),
    }


def async_streams(url: str, store: str) -> tuple[Callable[[], int], Callable[[], int], Callable[[], None]]:
    """Read a stream to its end with the async clients, raw and through privsdk, each run to completion on one
    event loop (whose own cost is the same on both sides of a pair); and what closes both and the loop."""
    loop = asyncio.new_event_loop()
    raw = AsyncRawOpenAI(api_key=KEY, base_url=url, max_retries=0)
    ours = privsdk.AsyncClient(
        environ={}, usage=store, credentials={"openai": {"api_key": KEY}}, endpoints={"openai": url}
    )

    async def raw_stream() -> int:
        chunks = await raw.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        return len([c async for c in chunks])

    async def our_stream() -> int:
        return len([e async for e in await ours.chat(f"openai/{MODEL}", MESSAGES, stream=True)])

    async def close() -> None:
        await raw.close()
        await ours.aclose()
        await loop.shutdown_asyncgens()

    def done() -> None:
        loop.run_until_complete(close())
        loop.close()

    return lambda: loop.run_until_complete(raw_stream()), lambda: loop.run_until_complete(our_stream()), done


def drain(open_stream: Callable[[], Iterable[object]]) -> Callable[[], int]:
    return lambda: sum(1 for _ in open_stream())


def in_memory_extra(wire: OpenAIWire, store: Any, pairs: int) -> tuple[float, float]:
    """privsdk.Client's extra thread CPU per call when both it and the raw SDK are answered in-process (the median
    of five rounds of paired medians): against the SDK's ``create``, as an app calls it, and against its untyped
    ``post``, as the Client's adapter calls it (privsdk's own work).

    Without sockets and the server thread the raw call's own cost and jitter
    shrink, so the difference (decision, retry wrapper, usage record, adapter)
    stands out of the noise that the loopback figures carry.
    """
    memory = in_memory(wire)
    raw = RawOpenAI(api_key=KEY, base_url="http://bench.invalid/v1", max_retries=0, http_client=memory)
    ours = privsdk.Client(
        environ={},
        usage=store,
        credentials={"openai": {"api_key": KEY}},
        endpoints={"openai": "http://bench.invalid/v1"},
    )
    call = ours._core.plan(f"openai/{MODEL}", "chat", {})
    adapter: Any = ours._core.adapter(call.tenant, call.chain[0][0], "chat")
    # The adapter's SDK client, answered in memory too, through the Client's guard as every Client call is.
    adapter._client = adapter._client.with_options(http_client=adapter._http(lambda: in_memory(wire)))
    body = {"model": MODEL, "messages": MESSAGES}
    _, extra, _ = paired_rounds(
        lambda: raw.chat.completions.create(model=MODEL, messages=MESSAGES),
        lambda: ours.chat(f"openai/{MODEL}", MESSAGES),
        pairs,
    )
    _, own, _ = paired_rounds(
        lambda: raw.post("/chat/completions", body=body, cast_to=object),
        lambda: ours.chat(f"openai/{MODEL}", MESSAGES),
        pairs,
    )
    ours.close()
    return extra, own


def in_memory_litellm_extra(wire: OpenAIWire, pairs: int) -> float:
    """LiteLLM's extra thread CPU per call, answered in memory as :func:`in_memory_extra` answers privsdk.Client: it
    is handed an openai client on the same in-process transport (as bench/instructions.py hands it one)."""
    import litellm  # type: ignore[import-not-found, unused-ignore]  # only in the bench environment

    raw = RawOpenAI(api_key=KEY, base_url="http://bench.invalid/v1", max_retries=0, http_client=in_memory(wire))
    handed = RawOpenAI(api_key=KEY, base_url="http://bench.invalid/v1", max_retries=0, http_client=in_memory(wire))
    _, extra, _ = paired_rounds(
        lambda: raw.chat.completions.create(model=MODEL, messages=MESSAGES),
        lambda: litellm.completion(
            model=f"openai/{MODEL}", messages=MESSAGES, client=handed, api_key=KEY, num_retries=0
        ),
        pairs,
    )
    return extra


def first_chunk_us(stream: Callable[[], Iterable[object]], runs: int) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        events = iter(stream())
        next(events)
        samples.append((time.perf_counter() - t0) * 1e6)
        for _ in events:
            pass
    samples.sort()
    return samples[len(samples) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=400, help="back-to-back pairs per client (default 400)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved wall-clock rounds (default 5)")
    args = parser.parse_args()

    wire = OpenAIWire(key=KEY, model=MODEL)
    store = f"sqlite://{tempfile.mkdtemp(prefix='privsdk-bench-')}/usage.sqlite3"
    with LoopbackServer(wire) as server:
        url = f"{server.url}/v1"
        calls = clients(url, store)
        print(f"One chat call against a loopback OpenAI server (usage records to {store})")
        wall = interleaved_medians(calls, rounds=args.rounds, per_round=args.pairs // args.rounds)
        base = wall["raw openai SDK"]
        print("wall clock, median:")
        for label, us in wall.items():
            print(row(label, us, None if label.startswith("raw") else base))
        print("extra thread CPU time over the raw call, median of back-to-back pairs:")
        extra = {}
        for label, call in calls.items():
            if label.startswith("raw"):
                continue
            raw_us, extra[label] = paired_us(calls["raw openai SDK"], call, args.pairs)
            print(f"  {label:<40} raw {raw_us:8.1f} µs   +{extra[label]:8.1f} µs")
        print("extra thread CPU time, the SDK answered in memory (no sockets: the steadiest figure):")
        quiet, quiet_own = in_memory_extra(wire, "none", args.pairs * 3)
        ours, own = in_memory_extra(wire, store, args.pairs * 3)
        print(f"  {'':<40} {'against create':>16} {'against untyped post':>22}")
        print(f"  {'privsdk.Client, PRIVSDK_USAGE=none':<40} {quiet:+13.1f} µs {quiet_own:+19.1f} µs")
        print(f"  {'privsdk.Client, default SQLite store':<40} {ours:+13.1f} µs {own:+19.1f} µs")
        print("  (against create: what an app's call gains or pays; against the SDK's untyped post, which the Client's")
        print("   adapter sends through: privsdk's own work)")
        ok = verdict(ours <= CALL_GOAL_US)
        print(f"goal: privsdk adds <= {CALL_GOAL_US:g} µs per call: {ok} ({ours:+.1f} µs, usage records included)")
        print("  (timed figures drift by tens of µs on a shared machine: bench/instructions.py counts instructions)")
        if "LiteLLM completion" in extra:
            theirs = in_memory_litellm_extra(wire, args.pairs * 3 // 2)
            print(f"  {'LiteLLM completion, against create':<40} {theirs:+13.1f} µs")
            shown = f"{theirs / ours:.0f}x" if ours > 0 else "privsdk adds nothing: its call costs less"
            ok = verdict(ours <= 0 or theirs / ours >= LITELLM_FACTOR)
            print(f"goal: LiteLLM adds >= {LITELLM_FACTOR:g}x what privsdk adds: {ok} ({shown}, both in memory)")
            print(f"  (LiteLLM's addition over privsdk's own work: {theirs / max(own, 0.1):.0f}x)")
        else:
            print("LiteLLM is not installed here: `make bench` runs this script with it (uv run --with litellm)")

        wire.pieces = 50
        stream_calls = streams(url, store)
        print(f"\nA stream of {wire.pieces} text chunks")
        for label, call in stream_calls.items():
            print(row(f"{label}: time to first chunk", first_chunk_us(call, 50)))
        raw_us, extra_us = paired_us(
            drain(stream_calls["raw openai SDK"]), drain(stream_calls["privsdk.Client"]), args.pairs // 2
        )
        per_chunk = extra_us / wire.pieces
        print(f"  privsdk.Client extra thread CPU per stream: {extra_us:+.1f} µs, per chunk {per_chunk:+.2f} µs")
        raw_stream, our_stream, done = async_streams(url, store)
        raw_us, extra_us = paired_us(raw_stream, our_stream, args.pairs // 2)
        done()
        per_chunk = extra_us / wire.pieces
        print(f"  privsdk.AsyncClient extra thread CPU per stream: {extra_us:+.1f} µs, per chunk {per_chunk:+.2f} µs")
        print(f"  (the adapters' own per-chunk goal, <= {ADAPTER_CHUNK_GOAL_US:g} µs, is judged by bench/adapter_*.py)")


if __name__ == "__main__":
    main()
