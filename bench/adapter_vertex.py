"""What the Vertex adapter adds to a google-genai SDK call (Gemini on Vertex AI).

1. Over real HTTP to a loopback Vertex AI: the same call made with the bare SDK
   (``client.models.generate_content`` / ``generate_content_stream``, given the dict arguments the
   adapter gives it) and through the adapter (``adapter.chat`` / ``adapter.stream``), interleaved, as
   medians of many calls. The SDK spends about a millisecond per call before any byte is sent and tens
   of µs per chunk (pydantic validation, its dict converters), so this shows the scale but jitters by
   more than the goals.
2. In process, where the goals are judged: the SDK's ``models`` is replaced by one that hands back, at
   once, the response and chunks the real SDK parsed in part 1. The bare call of that stand-in is timed
   against the adapter's method, so the difference is everything the adapter does around the SDK:
   mapping the request to the SDK's content and config dicts, the error guard, converting the answer,
   turning each chunk into events.

Figures are printed, never asserted: the exit status is 0 whatever they are.

Run: ``.venv/bin/python bench/adapter_vertex.py [--rounds N] [--per-round N] [--chunks N]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from childenv import REPO
from timing import adapter_goals, interleaved_medians, row

sys.path.insert(0, str(REPO))

from google import genai
from google.genai import types as gt
from google.oauth2.credentials import Credentials
from privsdk_vertex.gemini import VertexGemini

from privsdk import genai as privsdk_genai
from privsdk.adapter import AdapterOptions, open_adapter
from privsdk.policy import Target
from privsdk.types import ChatRequest, Message
from tests.wire.server import LoopbackServer
from tests.wire.vertex import TOKEN, GeminiApp

MODEL = "gemini-2.5-flash"
PROJECT, LOCATION = "bench-project", "europe-west4"
PROMPT = "Name three French cheeses."
REQUEST = ChatRequest((Message("user", PROMPT),))
#: The bare SDK's arguments, as the adapter gives them: dicts, and one request per call.
CONTENTS: list[gt.ContentDict] = [{"role": "user", "parts": [{"text": PROMPT}]}]
CONFIG: gt.GenerateContentConfigDict = {
    "automatic_function_calling": {"disable": True},
    "automatic_continuation": False,
}
TIMEOUT_S = 10.0


class _Answered:
    """Stands in for ``client.models`` after the HTTP is done: hands back what the real SDK parsed."""

    def __init__(self, response: Any, chunks: Sequence[Any]):
        self._response = response
        self._chunks = chunks

    def generate_content(self, **kwargs: Any) -> Any:
        return self._response

    def generate_content_stream(self, **kwargs: Any) -> Iterator[Any]:
        yield from self._chunks


def _text(chunk: gt.GenerateContentResponse) -> str | None:
    """What a bare-SDK user reads of a chunk (``chunk.text`` would also warn on non-text parts)."""
    return chunk.candidates[0].content.parts[0].text  # type: ignore[index,union-attr]


def over_http(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """Part 1; returns one chat response and one stream's chunks as the real SDK parsed them."""
    with LoopbackServer(GeminiApp("x" * args.chunks, chunks=args.chunks)) as server:
        # The adapter's and the drop-in's clients are guarded: the loopback server is a declared endpoint.
        os.environ["PRIVSDK_ENDPOINTS"] = f"{server.url}=vertex.gemini"
        os.environ.setdefault("PRIVSDK_USAGE", "none")
        options = gt.HttpOptions(
            base_url=server.url, timeout=int(TIMEOUT_S * 1000), retry_options=gt.HttpRetryOptions(attempts=1)
        )

        def client(module: Any, **http: Any) -> Any:
            return module.Client(
                vertexai=True,
                project=PROJECT,
                location=LOCATION,
                credentials=Credentials(token=TOKEN),  # type: ignore[no-untyped-call]
                http_options=options.model_copy(update=http),
            )

        sdk = client(genai)
        dropin = client(privsdk_genai)  # the same SDK client, guarded
        adapter = open_adapter(
            Target("bench", "vertex.gemini", MODEL, endpoint=server.url, project=PROJECT, region=LOCATION),
            AdapterOptions(timeout=TIMEOUT_S, credentials={"access_token": TOKEN}),
        )

        def sdk_chat() -> Any:
            return sdk.models.generate_content(model=MODEL, contents=CONTENTS, config=CONFIG)

        def chat_of(c: Any) -> Callable[[], Any]:
            return lambda: c.models.generate_content(model=MODEL, contents=CONTENTS, config=CONFIG)

        def sdk_stream() -> list[Any]:
            chunks = list(sdk.models.generate_content_stream(model=MODEL, contents=CONTENTS, config=CONFIG))
            for chunk in chunks:
                _text(chunk)
            return chunks

        us = interleaved_medians(
            {
                "chat: bare SDK": sdk_chat,
                "chat: drop-in (privsdk.genai)": chat_of(dropin),
                "chat: adapter": lambda: adapter.chat(REQUEST, timeout=TIMEOUT_S),
                "stream: bare SDK": sdk_stream,
                "stream: adapter": lambda: list(adapter.stream(REQUEST, timeout=TIMEOUT_S)),
            },
            rounds=args.rounds,
            per_round=args.per_round,
        )
        response, chunks = sdk_chat(), sdk_stream()
        adapter.close()
        sdk.close()
        if server.errors:
            raise SystemExit(f"the loopback server rejected a request: {server.errors[0]}")
    print(f"1. Over loopback HTTP (median of {args.rounds} rounds × {args.per_round} calls; jitter exceeds the goals)")
    print(row("chat: bare SDK", us["chat: bare SDK"]))
    print(row("chat: drop-in (privsdk.genai)", us["chat: drop-in (privsdk.genai)"], us["chat: bare SDK"]))
    print(row("chat: adapter", us["chat: adapter"], us["chat: bare SDK"]))
    print(row(f"stream of {len(chunks)} chunks: bare SDK", us["stream: bare SDK"]))
    print(row(f"stream of {len(chunks)} chunks: adapter", us["stream: adapter"], us["stream: bare SDK"]))
    return response, chunks


def in_process(response: Any, chunks: list[Any]) -> None:
    """Part 2: the adapter around an SDK ``models`` that answers at once."""
    answered = _Answered(response, chunks)
    target = Target("bench", "vertex.gemini", MODEL, project=PROJECT, region=LOCATION)
    adapter = open_adapter(target, AdapterOptions(timeout=TIMEOUT_S, credentials={"access_token": TOKEN}))
    assert isinstance(adapter, VertexGemini)
    adapter._models = answered  # type: ignore[assignment]

    def bare_stream() -> int:
        return sum(1 for chunk in answered.generate_content_stream(model=MODEL, contents=CONTENTS, config=CONFIG))

    calls: dict[str, Callable[[], object]] = {
        "chat: bare": lambda: answered.generate_content(model=MODEL, contents=CONTENTS, config=CONFIG),
        "chat: adapter": lambda: adapter.chat(REQUEST, timeout=TIMEOUT_S),
        "stream: bare": bare_stream,
        "stream: adapter": lambda: sum(1 for _ in adapter.stream(REQUEST, timeout=TIMEOUT_S)),
    }
    us = interleaved_medians(calls, rounds=7, per_round=400)
    per_call = us["chat: adapter"] - us["chat: bare"]
    # The stream's own per-call work (the request mapping, the last event) is not per chunk.
    per_chunk = (us["stream: adapter"] - us["stream: bare"] - per_call) / len(chunks)
    print("2. In process, the SDK's models answering at once (median of 7 rounds × 400 calls)")
    print(row("chat: bare models call", us["chat: bare"]))
    print(row("chat: adapter", us["chat: adapter"], us["chat: bare"]))
    print(row(f"stream of {len(chunks)} chunks: bare models", us["stream: bare"]))
    print(row(f"stream of {len(chunks)} chunks: adapter", us["stream: adapter"], us["stream: bare"]))
    adapter_goals([("", per_call)], [("", per_chunk)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds over HTTP (default 5)")
    parser.add_argument("--per-round", type=int, default=15, help="calls per label per round over HTTP (default 15)")
    parser.add_argument("--chunks", type=int, default=50, help="text chunks in a stream (default 50)")
    in_process(*over_http(parser.parse_args()))


if __name__ == "__main__":
    main()
