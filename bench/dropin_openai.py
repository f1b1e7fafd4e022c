"""What the openai drop-in adds to a call: the raw SDK call against the same call with the guard in its transport.

Both clients are openai's own and answer from the OpenAI wire app in memory (an
httpx2 MockTransport, as bench/adapter_openai.py does), so the difference is the
guard's alone: reading the request (OpenAI wire reader), placing its host and
deciding (``PRIVSDK_USAGE=none``: no record, so nothing to meter; the records'
own cost is bench/usage.py's). Timed in thread CPU as the median difference of
back-to-back raw/drop-in pairs (in five rounds: the median of the rounds' medians, and
each round's), for a chat call and for a 50-chunk stream with
``include_usage``. Then the same chat call over loopback HTTP, where the raw
call includes its socket, without records and with SQLite records (the answer
metered for its tokens); then the wire reader alone on a small and on a large
request, and its meter on a streamed answer. ``bench/instructions.py`` counts
the drop-in's instructions beside the raw call's.

Goals (issue 9): the guard adds <= 20 µs per request; the drop-in call costs
<= 1.02x the raw SDK call. Printed, never asserted: the exit status is 0.

Run: ``.venv/bin/python bench/dropin_openai.py [--pairs N]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
from typing import Any

from adapter_openai import RawOpenAI, in_memory
from childenv import REPO
from timing import median_us, paired_rounds, paired_us, row

sys.path.insert(0, str(REPO))  # for tests.wire

import openai
from privsdk_openai.dropin import guard_client

from privsdk.outbound.judge import Guard
from privsdk.outbound.outgoing import Outgoing
from privsdk.outbound.wire.openai import READER
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer

KEY = "sk-bench"
MODEL = "gpt-4o-mini"
BASE = "http://bench.invalid"
MESSAGES: Any = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Summarise the report."}]
GUARD_GOAL_US = 20.0
RATIO_GOAL = 1.02
ROUNDS = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=4000)
    pairs = parser.parse_args().pairs
    os.environ.update({"PRIVSDK_ENDPOINTS": f"{BASE}=openai.api", "PRIVSDK_USAGE": "none"})
    Guard.reset_default()
    wire = OpenAIWire(key=KEY)
    wire.pieces = 50
    raw = RawOpenAI(api_key=KEY, base_url=f"{BASE}/v1", max_retries=0, http_client=in_memory(wire))
    ours = guard_client(openai.OpenAI(api_key=KEY, base_url=f"{BASE}/v1", max_retries=0, http_client=in_memory(wire)))

    def chat(client: openai.OpenAI) -> object:
        return client.chat.completions.create(model=MODEL, messages=MESSAGES).choices[0].message.content

    def stream(client: openai.OpenAI) -> object:
        chunks = client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        return [c.choices[0].delta.content for c in chunks if c.choices]

    print("openai drop-in: extra thread CPU per call over the raw SDK (in-memory transport, paired medians)")
    print(f"  (the median of {ROUNDS} rounds; each round's figure in brackets)")
    for label, call, n in (("chat", chat, pairs), ("stream, 50 chunks", stream, pairs // 4)):
        base, extra, each = paired_rounds(functools.partial(call, raw), functools.partial(call, ours), n, ROUNDS)
        _, floor = paired_us(functools.partial(call, raw), functools.partial(call, raw), n // ROUNDS)
        _line(label, base, extra, floor, each)

    print("the same over loopback HTTP (a real socket and server thread), thread CPU, paired medians")
    with LoopbackServer(OpenAIWire(key=KEY)) as server:
        for usage in ("none", f"sqlite://{tempfile.mkdtemp(prefix='privsdk-bench-')}/usage.sqlite3"):
            os.environ.update({"PRIVSDK_ENDPOINTS": f"{server.url}=openai.api", "PRIVSDK_USAGE": usage})
            Guard.reset_default()
            raw = RawOpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
            ours = guard_client(openai.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0))
            base, extra, each = paired_rounds(functools.partial(chat, raw), functools.partial(chat, ours), pairs // 2)
            _, floor = paired_us(functools.partial(chat, raw), functools.partial(chat, raw), pairs // 2 // ROUNDS)
            _line("chat, usage " + usage.partition(":")[0], base, extra, floor, each)
            raw.close()
            ours.close()
        Guard.reset_default()

    print("OpenAI wire reader alone")
    small = json.dumps({"model": MODEL, "messages": MESSAGES}).encode()
    large = json.dumps(
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": "x" * 2000}] * 20,
            "tools": [{"type": "function", "function": {"name": f"f{i}", "parameters": {}}} for i in range(5)],
            "stream": True,
        }
    ).encode()
    for label, body in (("read, small chat", small), ("read, 40 kB chat with tools", large)):
        out = Outgoing("openai", "POST", "https", "api.openai.com", None, "/v1/chat/completions", "", {}, body)
        us = median_us(functools.partial(READER.read, out), calls=3000, warmup=300)
        parse = median_us(functools.partial(json.loads, body), calls=3000, warmup=300)
        print(row(label, us, parse) + "   (vs json.loads of the body)")
    reply = wire(
        _recorded({"model": MODEL, "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}})
    )
    assert reply.chunks is not None
    chunks = list(reply.chunks)

    def meter() -> object:
        m = READER.meter(out, READER.read(out), 200, {"content-type": "text/event-stream"})
        assert m is not None
        for chunk in chunks:
            m.feed(chunk)
        return m.tokens()

    out = Outgoing("openai", "POST", "https", "api.openai.com", None, "/v1/chat/completions", "", {}, small)
    us = median_us(meter, calls=1000, warmup=100)
    print(row(f"read + meter a {len(chunks)}-chunk stream", us) + f"   ({us / len(chunks):.2f} µs a chunk)")


def _line(label: str, base: float, extra: float, floor: float, each: list[float]) -> None:
    verdict = "ok" if extra <= GUARD_GOAL_US and (base + extra) / base <= RATIO_GOAL else "over"
    rounds = " ".join(f"{e:+.1f}" for e in each)
    print(
        f"  {label:<22} raw {base:8.1f} µs   guard +{extra:6.1f} µs [{rounds}]   ×{(base + extra) / base:5.3f}"
        f"   (noise floor {floor:+.1f} µs)   goal <= {GUARD_GOAL_US:.0f} µs and ×{RATIO_GOAL}: {verdict}"
    )


def _recorded(body: dict[str, Any]) -> Any:
    from tests.wire.server import Recorded

    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    return Recorded("POST", "/v1/chat/completions", {}, headers, json.dumps(body).encode())


if __name__ == "__main__":
    main()
