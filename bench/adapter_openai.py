"""What the openai adapter adds to a call: the raw SDK call against the same call through the adapter.

All answer from the OpenAI wire app (tests/wire/openai.py), so the vendor's side
is identical. Two raw calls: the SDK's own ``create``, as an app makes it (typed
request transform, typed answer), and the SDK's public ``post`` with the answer
untyped, which is how the adapter sends (privsdk_openai.adapters). The adapter's
own work (building the request body, mapping the answer, wrapping errors) is
its difference from the untyped call; its difference from ``create`` is what an
app's call gains or pays by going through it. Measured for a chat call and for a
stream of 50 text chunks, as interleaved medians (bench/timing.py), over two
transports:

- loopback HTTP (the tests' LoopbackServer): the real path, whose round trip
  jitters by far more than the goals on a busy machine;
- in memory (an httpx MockTransport calling the same wire app): the same SDK
  work minus the sockets, all in this thread, timed in thread CPU time as
  the median difference of back-to-back raw/adapter pairs, which a busy
  machine disturbs least. The same pairing of the raw call with itself shows
  the noise floor. The adapter is handed an SDK client like the raw one (a
  client of its own on the same in-memory transport, unguarded), so the
  difference is the adapter's alone: the guard's cost is bench/dropin_openai.py's.

Last, the adapter's own mapping alone (request and answer of a chat call, the
chunks of a stream, on the answers' JSON): what the differences above would be
without noise.

Goals: the adapter adds <= 30 µs per call and <= 2 µs per stream chunk of its own
work, judged on the in-memory pairs with the untyped call (a stream's per-chunk
figure includes its call's own cost).
Printed, never asserted: the exit status is 0 whatever the figures.

Run: ``.venv/bin/python bench/adapter_openai.py [--rounds N] [--pairs N]``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from childenv import REPO
from guarded import guard_for
from timing import adapter_goals, interleaved_medians, median_us, paired_us, row

sys.path.insert(0, str(REPO))  # for tests.wire

import httpx2
import openai
from privsdk_openai import convert

from privsdk.adapter import Adapter, AdapterOptions, open_adapter
from privsdk.policy import Target
from privsdk.types import ChatRequest, Message
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer, answered_in_memory

KEY = "sk-bench"
MODEL = "gpt-4o-mini"
CHUNKS = 50
PROMPT = "Summarise the quarterly report in three sentences."
REQUEST = ChatRequest((Message("system", "Be brief."), Message("user", PROMPT)), temperature=0.2)
USAGE: Any = {"include_usage": True}
MESSAGES: Any = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]


class RawOpenAI(openai.OpenAI):
    """``openai.OpenAI`` as in an app that has guarded no client.

    Guarding a client makes its ``_client`` attribute a data descriptor on its class
    (``privsdk.outbound.transport.keep_guarded``), which every client of that class then reads through, guarded or
    not. This subclass's plain class attribute hides it, so that the raw call measured beside a guarded one pays
    nothing of privsdk's.
    """

    _client: Any = None


class AsyncRawOpenAI(openai.AsyncOpenAI):
    """:class:`RawOpenAI` for ``openai.AsyncOpenAI``."""

    _client: Any = None


def in_memory(wire: OpenAIWire) -> httpx2.Client:
    """An httpx client whose every request is answered by ``wire`` in-process."""
    return httpx2.Client(transport=answered_in_memory(wire, httpx2))


def calls(client: openai.OpenAI, adapter: Adapter) -> dict[str, Callable[[], object]]:
    """The six timed calls: chat and a 50-chunk stream, through ``create``, through the untyped ``post`` and through
    the adapter.

    Each reads the answer's text as its caller would; the adapter has to read it too, and on a freshly parsed SDK
    object reading is not free (about 0.3 µs an attribute on a busy machine).
    """

    def raw_chat() -> object:
        completion = client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0.2, timeout=10)
        return completion.choices[0].message.content

    def untyped_chat() -> object:
        body = {"model": MODEL, "messages": MESSAGES, "temperature": 0.2}
        completion: Any = client.post("/chat/completions", body=body, options={"timeout": 10}, cast_to=object)
        return completion["choices"][0]["message"]["content"]

    def raw_stream() -> object:
        chunks = client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,
            temperature=0.2,
            stream=True,
            stream_options=USAGE,
            timeout=10,
        )
        return [chunk.choices[0].delta.content for chunk in chunks if chunk.choices]

    def untyped_stream() -> object:
        body = {"model": MODEL, "messages": MESSAGES, "temperature": 0.2, "stream": True, "stream_options": USAGE}
        chunks: Any = client.post(
            "/chat/completions",
            body=body,
            options={"timeout": 10},
            cast_to=object,
            stream=True,
            stream_cls=openai.Stream[object],
        )
        return [chunk["choices"][0]["delta"].get("content") for chunk in chunks if chunk["choices"]]

    return {
        "raw chat": raw_chat,
        "untyped chat": untyped_chat,
        "adapter chat": lambda: adapter.chat(REQUEST, timeout=10).text,
        "raw stream": raw_stream,
        "untyped stream": untyped_stream,
        "adapter stream": lambda: list(adapter.stream(REQUEST, timeout=10)),
    }


def report(us: dict[str, float]) -> None:
    print("loopback HTTP (wall time)")
    for kind, what in (("chat", "chat"), ("stream", f"stream of {CHUNKS} chunks")):
        print(row(f"{what}, SDK create", us[f"raw {kind}"]))
        print(row(f"{what}, SDK post, untyped", us[f"untyped {kind}"], us[f"raw {kind}"]))
        print(row(f"{what}, through the adapter", us[f"adapter {kind}"], us[f"untyped {kind}"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="loopback rounds of 8 calls per label")
    parser.add_argument("--pairs", type=int, default=800, help="in-memory chat pairs (streams: a fifth)")
    args = parser.parse_args()

    wire = OpenAIWire(key=KEY, model=MODEL)
    wire.text = "word " * CHUNKS
    wire.pieces = CHUNKS
    options = AdapterOptions(timeout=10.0, credentials={"api_key": KEY})
    print(f"openai adapter overhead (openai {openai.__version__})")

    with LoopbackServer(wire) as server:
        base_url = server.url + "/v1"
        client = RawOpenAI(api_key=KEY, base_url=base_url, max_retries=0)
        target = Target("bench", "openai.api", MODEL, endpoint=base_url)
        adapter = open_adapter(target, options._replace(guard=guard_for(target)))
        loopback = interleaved_medians(calls(client, adapter), rounds=args.rounds, per_round=8)
        adapter.close()
        client.close()
    assert server.errors == [], server.errors
    report(loopback)

    memory_client = in_memory(wire)
    client = RawOpenAI(api_key=KEY, base_url="http://bench.invalid/v1", max_retries=0, http_client=memory_client)
    adapter = open_adapter(Target("bench", "openai.api", MODEL, endpoint="http://bench.invalid/v1"), options)
    # Guarding an SDK client's copy guards its http client in place, which would guard the raw calls too.
    adapter._client = RawOpenAI(  # type: ignore[attr-defined]
        api_key=KEY, base_url="http://bench.invalid/v1", max_retries=0, http_client=in_memory(wire)
    )
    timed = calls(client, adapter)
    _, noise = paired_us(timed["raw chat"], timed["raw chat"], pairs=args.pairs)
    chat_us, typed = paired_us(timed["raw chat"], timed["adapter chat"], pairs=args.pairs)
    untyped_us, per_call = paired_us(timed["untyped chat"], timed["adapter chat"], pairs=args.pairs)
    stream_us, typed_stream = paired_us(timed["raw stream"], timed["adapter stream"], pairs=args.pairs // 5)
    _, per_stream = paired_us(timed["untyped stream"], timed["adapter stream"], pairs=args.pairs // 5)
    completion = client.post("/chat/completions", body={"model": MODEL, "messages": MESSAGES}, cast_to=object)
    chunks: list[Any] = list(
        client.post(
            "/chat/completions",
            body={"model": MODEL, "messages": MESSAGES, "stream": True, "stream_options": USAGE},
            cast_to=object,
            stream=True,
            stream_cls=openai.Stream[object],
        )
    )
    memory_client.close()
    print("in memory (same SDK work, no sockets; thread CPU time, median of back-to-back pairs)")
    for label, base_us, extra_us in (
        ("chat, SDK create", chat_us, typed),
        ("chat, SDK post, untyped", untyped_us, per_call),
        (f"stream of {CHUNKS} chunks, SDK create", stream_us, typed_stream),
        (f"stream of {CHUNKS} chunks, SDK post, untyped", None, per_stream),
    ):
        shown = f"{base_us:10.1f} µs" if base_us is not None else " " * 13
        print(f"  {label:<45} {shown}   adapter adds {extra_us:+.1f} µs")
    print(f"  (create against itself: {noise:+.1f} µs)")

    def mapping() -> object:
        convert.chat_params(REQUEST, max_tokens_field="max_completion_tokens", who="bench")
        return convert.chat_response(completion, "openai", MODEL)

    def chunk_mapping() -> object:
        reader = convert.ChunkReader("openai", MODEL)
        for chunk in chunks:
            reader.feed(chunk)
        return reader.end()

    print("the adapter's own mapping alone, on the answers' JSON (wall time)")
    print(row("request + answer of one chat call", median_us(mapping, calls=2000, warmup=200)))
    print(row(f"the {len(chunks)} chunks of one stream", median_us(chunk_mapping, calls=2000, warmup=200)))

    per_chunk = (per_stream - per_call) / CHUNKS  # the stream's extra, less what any call costs, per chunk
    adapter_goals([("", per_call)], [("", per_chunk)])


if __name__ == "__main__":
    main()
