"""What the cohere adapter adds to a cohere ClientV2 call, over real HTTP to a loopback Cohere API.

Times the same call made with a bare ``cohere.ClientV2`` (``chat`` / ``chat_stream``, retries off) and
through the adapter (``adapter.chat`` / ``adapter.stream``, which also build the request and convert the
answer), interleaved, as medians of many calls. The stream has ``--chunks`` server-sent events; the
per-chunk figure is the stream difference divided by the event count. Loopback HTTP jitters by more than the
adapter costs, and the adapter's SDK client sends through the guard (whose cost is the guard's, see
bench/dropin_openai.py), so the goals are judged on the adapter's own work timed alone, on objects the SDK
produced: building the request and converting the answer of one call, and converting one stream event.

Figures are printed, never asserted: the exit status is 0 whatever they are.

Run: ``.venv/bin/python bench/adapter_cohere.py [--rounds N] [--per-round N] [--chunks N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from typing import Any

from childenv import REPO
from guarded import guard_for
from timing import adapter_goals, interleaved_medians, median_us, row

sys.path.insert(0, str(REPO))

from privsdk_cohere.convert import StreamState, chat_body, chat_response

from privsdk.adapter import AdapterOptions, open_adapter
from privsdk.policy import Target
from privsdk.types import ChatRequest, Message
from tests.wire.cohere import CohereApp
from tests.wire.server import LoopbackServer

MODEL = "command-a-03-2025"
KEY = "bench-key"
TIMEOUT_S = 10.0
#: Events of a streamed text besides its content-delta events: message-start, content-start, content-end, message-end.
EVENTS_AROUND_TEXT = 4
PROMPT = "Say something long."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    # Many short rounds: on a busy machine, drift between long rounds outweighs what the adapter adds.
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--chunks", type=int, default=50)
    args = parser.parse_args()

    from cohere.client_v2 import ClientV2

    app = CohereApp(" ".join(f"w{i}" for i in range(args.chunks)), chunks=max(args.chunks - EVENTS_AROUND_TEXT, 1))
    request = ChatRequest((Message("user", PROMPT),))
    raw_messages: list[dict[str, Any]] = [{"role": "user", "content": PROMPT}]
    sdk_options: dict[str, Any] = {"timeout": TIMEOUT_S, "max_retries": 0}
    with LoopbackServer(app) as server, contextlib.ExitStack() as stack:
        sdk = ClientV2(api_key=KEY, base_url=server.url, timeout=TIMEOUT_S, max_retries=0)
        stack.enter_context(sdk)
        target = Target("bench", "cohere.saas", MODEL, endpoint=server.url)
        adapter = open_adapter(target, AdapterOptions(TIMEOUT_S, {"api_key": KEY}, guard=guard_for(target)))

        def sdk_chat() -> Any:
            return sdk.chat(model=MODEL, messages=raw_messages, request_options=sdk_options)  # type: ignore[arg-type]

        def sdk_stream() -> int:
            events = sdk.chat_stream(model=MODEL, messages=raw_messages, request_options=sdk_options)  # type: ignore[arg-type]
            return sum(1 for _ in events)

        calls: dict[str, Callable[[], object]] = {
            "chat: bare SDK": sdk_chat,
            "chat: adapter": lambda: adapter.chat(request, timeout=TIMEOUT_S),
            "stream: bare SDK": sdk_stream,
            "stream: adapter": lambda: sum(1 for _ in adapter.stream(request, timeout=TIMEOUT_S)),
        }
        us = interleaved_medians(calls, rounds=args.rounds, per_round=args.per_round)
        events = list(sdk.chat_stream(model=MODEL, messages=raw_messages, request_options=sdk_options))  # type: ignore[arg-type]
        response = sdk_chat()
        adapter.close()
        if server.errors:
            raise SystemExit(f"the loopback server rejected a request: {server.errors[0]}")

    chunks = len(events)
    chat_extra = us["chat: adapter"] - us["chat: bare SDK"]
    chunk_extra = (us["stream: adapter"] - us["stream: bare SDK"]) / chunks
    print(f"cohere adapter over loopback HTTP (median of {args.rounds} rounds × {args.per_round} calls)")
    print(row("chat: bare SDK", us["chat: bare SDK"]))
    print(row("chat: adapter", us["chat: adapter"], us["chat: bare SDK"]))
    print(row(f"stream of {chunks} events: bare SDK", us["stream: bare SDK"]))
    print(row(f"stream of {chunks} events: adapter", us["stream: adapter"], us["stream: bare SDK"]))

    def convert_call() -> object:
        chat_body(request)
        return chat_response(response, MODEL)

    def read_stream() -> object:
        state = StreamState(MODEL)
        return [state.feed(e) for e in events]

    alone_call = median_us(convert_call, calls=2000, warmup=200)
    alone_chunk = median_us(read_stream, calls=2000, warmup=200) / chunks
    print("The adapter's own work, timed alone")
    print(row("request + answer conversion of one call", alone_call))
    print(row("one stream event converted", alone_chunk))
    print(f"end to end over loopback (not judged: jitter, and the guard's own cost): call {chat_extra:+.2f} µs, "
          f"stream chunk {chunk_extra:+.2f} µs")  # fmt: skip
    adapter_goals([("alone", alone_call)], [("alone", alone_chunk)])


if __name__ == "__main__":
    main()
