"""What the Mistral adapter adds to a mistralai SDK call.

1. Over real HTTP to a loopback la Plateforme: the same call made with the bare SDK
   (``Mistral.chat.complete`` / ``chat.stream``) and through the adapter (``adapter.chat`` /
   ``adapter.stream``), interleaved, as medians of many calls. The SDK itself spends milliseconds per
   call and about a millisecond per stream chunk (it builds a pydantic model for every body it parses),
   so this shows the scale but jitters by more than the goals.
2. In process, where the goals are judged: the SDK client is replaced by one that hands back, at once,
   the response and stream events the real SDK parsed in part 1. The bare call of that client is
   timed against the adapter's method, so the difference is everything the adapter does around the SDK:
   building the arguments, the error guard, converting the answer, re-yielding each stream event.

Figures are printed, never asserted: the exit status is 0 whatever they are.

Run: ``.venv/bin/python bench/adapter_mistral.py [--rounds N] [--per-round N] [--chunks N]``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from childenv import REPO
from guarded import guard_for
from timing import adapter_goals, interleaved_medians, row

sys.path.insert(0, str(REPO))

from mistralai.client import Mistral
from privsdk_mistral import MistralChatAdapter

from privsdk.adapter import AdapterOptions, open_adapter
from privsdk.policy import Target
from privsdk.types import ChatRequest, Message
from tests.wire.mistral import MistralApp
from tests.wire.server import LoopbackServer

MODEL = "mistral-small-latest"
PROMPT = "Name three French cheeses."
MESSAGES: list[Any] = [{"role": "user", "content": PROMPT}]
REQUEST = ChatRequest((Message("user", PROMPT),))
TIMEOUT_S = 10.0
TIMEOUT_MS = int(TIMEOUT_S * 1000)


class _Events:
    """A parsed event stream, usable as the SDK's is: ``with stream as events: for event in events``."""

    def __init__(self, events: Sequence[Any]):
        self._events = events

    def __enter__(self) -> Iterator[Any]:
        return iter(self._events)

    def __exit__(self, *exc: object) -> None:
        return None


class _Answered:
    """Stands in for the SDK client after the HTTP is done: ``chat.complete`` and ``chat.stream`` hand
    back what the real SDK parsed."""

    def __init__(self, response: Any, events: Sequence[Any]):
        self.chat = self
        self._response = response
        self._events = events

    def complete(self, **kwargs: Any) -> Any:
        return self._response

    def stream(self, **kwargs: Any) -> _Events:
        return _Events(self._events)


def over_http(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """Part 1; returns one chat response and one stream's events as the real SDK parsed them."""
    with LoopbackServer(MistralApp("x" * args.chunks, chunks=args.chunks)) as server:
        sdk = Mistral(api_key="bench", server_url=server.url, retry_config=None)
        target = Target("bench", "mistral.api", MODEL, endpoint=server.url)
        adapter = open_adapter(
            target, AdapterOptions(timeout=TIMEOUT_S, credentials={"api_key": "bench"}, guard=guard_for(target))
        )

        def sdk_chat() -> Any:
            return sdk.chat.complete(model=MODEL, messages=MESSAGES, timeout_ms=TIMEOUT_MS)

        def sdk_stream() -> list[Any]:
            return list(sdk.chat.stream(model=MODEL, messages=MESSAGES, timeout_ms=TIMEOUT_MS))

        us = interleaved_medians(
            {
                "chat: bare SDK": sdk_chat,
                "chat: adapter": lambda: adapter.chat(REQUEST, timeout=TIMEOUT_S),
                "stream: bare SDK": sdk_stream,
                "stream: adapter": lambda: list(adapter.stream(REQUEST, timeout=TIMEOUT_S)),
            },
            rounds=args.rounds,
            per_round=args.per_round,
        )
        response, events = sdk_chat(), sdk_stream()
        adapter.close()
        if server.errors:
            raise SystemExit(f"the loopback server rejected a request: {server.errors[0]}")
    print(f"1. Over loopback HTTP (median of {args.rounds} rounds × {args.per_round} calls; jitter exceeds the goals)")
    print(row("chat: bare SDK", us["chat: bare SDK"]))
    print(row("chat: adapter", us["chat: adapter"], us["chat: bare SDK"]))
    print(row(f"stream of {len(events)} chunks: bare SDK", us["stream: bare SDK"]))
    print(row(f"stream of {len(events)} chunks: adapter", us["stream: adapter"], us["stream: bare SDK"]))
    return response, events


def in_process(response: Any, events: list[Any]) -> None:
    """Part 2: the adapter around an SDK client that answers at once."""
    answered = _Answered(response, events)
    adapter = open_adapter(Target("bench", "mistral.api", MODEL), AdapterOptions(credentials={"api_key": "bench"}))
    assert isinstance(adapter, MistralChatAdapter)
    adapter._sdk = answered

    def bare_stream() -> int:
        with answered.stream(model=MODEL, messages=MESSAGES, timeout_ms=TIMEOUT_MS) as parsed:
            return sum(1 for _ in parsed)

    calls: dict[str, Callable[[], object]] = {
        "chat: bare": lambda: answered.complete(model=MODEL, messages=MESSAGES, timeout_ms=TIMEOUT_MS),
        "chat: adapter": lambda: adapter.chat(REQUEST, timeout=TIMEOUT_S),
        "stream: bare": bare_stream,
        "stream: adapter": lambda: sum(1 for _ in adapter.stream(REQUEST, timeout=TIMEOUT_S)),
    }
    us = interleaved_medians(calls, rounds=7, per_round=400)
    per_call = us["chat: adapter"] - us["chat: bare"]
    per_chunk = (us["stream: adapter"] - us["stream: bare"]) / len(events)
    print("2. In process, the SDK client answering at once (median of 7 rounds × 400 calls)")
    print(row("chat: bare client call", us["chat: bare"]))
    print(row("chat: adapter", us["chat: adapter"], us["chat: bare"]))
    print(row(f"stream of {len(events)} chunks: bare client", us["stream: bare"]))
    print(row(f"stream of {len(events)} chunks: adapter", us["stream: adapter"], us["stream: bare"]))
    adapter_goals([("", per_call)], [("", per_chunk)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds over HTTP (default 5)")
    parser.add_argument("--per-round", type=int, default=15, help="calls per label per round over HTTP (default 15)")
    parser.add_argument("--chunks", type=int, default=50, help="text chunks in a stream (default 50)")
    in_process(*over_http(parser.parse_args()))


if __name__ == "__main__":
    main()
