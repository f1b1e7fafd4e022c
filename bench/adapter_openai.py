"""What the openai adapter adds to a call: the raw SDK call against the same call through the adapter.

Both answer from the OpenAI wire app (tests/wire/openai.py), so the vendor's side
is identical and the difference is the adapter's: building the request body,
mapping the answer, wrapping errors. Measured for a chat call and for a stream of
50 text chunks, as interleaved medians (bench/timing.py), over two transports:

- loopback HTTP (the tests' LoopbackServer): the real path, whose round trip
  jitters by far more than the goals on a busy machine;
- in memory (an httpx MockTransport calling the same wire app): the same SDK
  work minus the sockets, all in this thread, timed in thread CPU time as
  the median difference of back-to-back raw/adapter pairs, which a busy
  machine disturbs least. The same pairing of the raw call with itself shows
  the noise floor. The adapter's SDK client gets the transport through the
  SDK's public ``with_options(http_client=...)``.

Last, the adapter's own mapping alone (request and answer of a chat call, the
chunks of a stream, on answers the SDK already parsed): what the differences
above would be without noise.

Goals: the adapter adds <= 30 µs per call and <= 2 µs per stream chunk, judged on
the in-memory pairs (a stream's per-chunk figure includes its call's own cost).
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
    """The four timed calls: chat and a 50-chunk stream, raw and through the adapter.

    The raw calls read the answer's text as any caller of the SDK does; the
    adapter has to read it too, and on a freshly parsed SDK object reading is
    not free (about 0.3 µs an attribute on a busy machine).
    """

    def raw_chat() -> object:
        completion = client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0.2, timeout=10)
        return completion.choices[0].message.content

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

    return {
        "raw chat": raw_chat,
        "adapter chat": lambda: adapter.chat(REQUEST, timeout=10).text,
        "raw stream": raw_stream,
        "adapter stream": lambda: list(adapter.stream(REQUEST, timeout=10)),
    }


def report(us: dict[str, float]) -> None:
    print("loopback HTTP (wall time)")
    print(row("chat, raw SDK", us["raw chat"]))
    print(row("chat, through the adapter", us["adapter chat"], us["raw chat"]))
    print(row(f"stream of {CHUNKS} chunks, raw SDK", us["raw stream"]))
    print(row(f"stream of {CHUNKS} chunks, through the adapter", us["adapter stream"], us["raw stream"]))


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
    adapter._client = adapter._client.with_options(http_client=memory_client)  # type: ignore[attr-defined]
    timed = calls(client, adapter)
    chat_us, per_call = paired_us(timed["raw chat"], timed["adapter chat"], pairs=args.pairs)
    _, noise = paired_us(timed["raw chat"], timed["raw chat"], pairs=args.pairs)
    stream_us, per_stream = paired_us(timed["raw stream"], timed["adapter stream"], pairs=args.pairs // 5)
    completion = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True, stream_options=USAGE))
    memory_client.close()
    print("in memory (same SDK work, no sockets; thread CPU time, median of back-to-back pairs)")
    print(f"  {'chat, raw SDK':<40} {chat_us:10.1f} µs   adapter adds {per_call:+.1f} µs (raw vs raw: {noise:+.1f} µs)")
    print(f"  {f'stream of {CHUNKS} chunks, raw SDK':<40} {stream_us:10.1f} µs   adapter adds {per_stream:+.1f} µs")

    def mapping() -> object:
        convert.chat_params(REQUEST, max_tokens_field="max_completion_tokens", who="bench")
        return convert.chat_response(completion, "openai")

    def chunk_mapping() -> object:
        reader = convert.ChunkReader("openai", MODEL)
        for chunk in chunks:
            reader.feed(chunk)
        return reader.end()

    print("the adapter's own mapping alone, on answers the SDK already parsed (wall time)")
    print(row("request + answer of one chat call", median_us(mapping, calls=2000, warmup=200)))
    print(row(f"the {len(chunks)} chunks of one stream", median_us(chunk_mapping, calls=2000, warmup=200)))

    per_chunk = (per_stream - per_call) / CHUNKS  # the stream's extra, less what any call costs, per chunk
    adapter_goals([("", per_call)], [("", per_chunk)])


if __name__ == "__main__":
    main()
