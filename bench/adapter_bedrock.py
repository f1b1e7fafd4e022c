"""What the Bedrock adapter adds to a boto3 bedrock-runtime call, over real HTTP to a loopback Bedrock runtime.

Times the same call made with a bare boto3 client (``converse`` / ``converse_stream``) and through the
adapter (``adapter.chat`` / ``adapter.stream``, which also build Converse's arguments and convert its
answer), interleaved, as medians of many calls. The stream has ``--chunks`` event-stream frames; the
per-chunk figure is the stream difference divided by the frame count. Loopback HTTP jitters by more than the
adapter costs, and the adapter's SDK client sends through the guard (whose cost is the guard's, see
bench/dropin_openai.py), so the goals are judged on the adapter's own work timed alone: converting the request
and the answer of one call, and reading one stream event, on objects botocore produced.

Figures are printed, never asserted: the exit status is 0 whatever they are.

Run: ``.venv/bin/python bench/adapter_bedrock.py [--rounds N] [--per-round N] [--chunks N]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from childenv import REPO
from guarded import guard_for
from timing import adapter_goals, interleaved_medians, median_us, row

sys.path.insert(0, str(REPO))

from privsdk_bedrock import convert

from privsdk.adapter import AdapterOptions, open_adapter
from privsdk.policy import Target
from privsdk.types import ChatRequest, Message
from tests.wire.bedrock import BedrockWire
from tests.wire.server import LoopbackServer

MODEL = "eu.anthropic.claude-3-7-sonnet-20250219-v1:0"
REGION = "eu-central-1"
KEYS = {"aws_access_key_id": "AKIDFAKE", "aws_secret_access_key": "bench-secret"}
TIMEOUT_S = 10.0
#: Frames of a ConverseStream besides the text deltas: messageStart, contentBlockStop, messageStop, metadata.
FRAMES_AROUND_TEXT = 4
#: Text deltas of the answer besides the prompt's words: "You said: " echoes the prompt.
WORDS_ADDED = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--per-round", type=int, default=40)
    parser.add_argument("--chunks", type=int, default=50)
    args = parser.parse_args()
    # The machine's AWS files and instance metadata stay out of the figures.
    os.environ.update(
        AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true"
    )

    import boto3
    from botocore.config import Config

    words = max(args.chunks - FRAMES_AROUND_TEXT - WORDS_ADDED, 1)
    prompt = " ".join(f"w{i}" for i in range(words))
    request = ChatRequest((Message("user", prompt),))
    raw_messages: list[dict[str, Any]] = [{"role": "user", "content": [{"text": prompt}]}]
    with LoopbackServer(BedrockWire()) as server:
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=TIMEOUT_S, read_timeout=TIMEOUT_S
        )
        sdk = boto3.client("bedrock-runtime", region_name=REGION, endpoint_url=server.url, config=config, **KEYS)
        target = Target("bench", "bedrock.runtime", MODEL, endpoint=server.url, region=REGION)
        adapter = open_adapter(target, AdapterOptions(timeout=TIMEOUT_S, credentials=KEYS, guard=guard_for(target)))

        def sdk_chat() -> Any:
            return sdk.converse(modelId=MODEL, messages=raw_messages)

        def sdk_stream() -> int:
            return sum(1 for _ in sdk.converse_stream(modelId=MODEL, messages=raw_messages)["stream"])

        calls: dict[str, Callable[[], object]] = {
            "chat: bare SDK": sdk_chat,
            "chat: adapter": lambda: adapter.chat(request, timeout=TIMEOUT_S),
            "stream: bare SDK": sdk_stream,
            "stream: adapter": lambda: sum(1 for _ in adapter.stream(request, timeout=TIMEOUT_S)),
        }
        us = interleaved_medians(calls, rounds=args.rounds, per_round=args.per_round)
        events = list(sdk.converse_stream(modelId=MODEL, messages=raw_messages)["stream"])
        response = sdk_chat()
        adapter.close()
        sdk.close()
        if server.errors:
            raise SystemExit(f"the loopback server rejected a request: {server.errors[0]}")

    chunks = len(events)
    chat_extra = us["chat: adapter"] - us["chat: bare SDK"]
    chunk_extra = (us["stream: adapter"] - us["stream: bare SDK"]) / chunks
    print(f"Bedrock adapter over loopback HTTP (median of {args.rounds} rounds × {args.per_round} calls)")
    print(row("chat: bare SDK", us["chat: bare SDK"]))
    print(row("chat: adapter", us["chat: adapter"], us["chat: bare SDK"]))
    print(row(f"stream of {chunks} frames: bare SDK", us["stream: bare SDK"]))
    print(row(f"stream of {chunks} frames: adapter", us["stream: adapter"], us["stream: bare SDK"]))

    def convert_call() -> object:
        convert.converse_kwargs(MODEL, request)
        return convert.chat_response(response, MODEL)

    def read_stream() -> object:
        return sum(1 for _ in convert.stream_events(events, MODEL))

    alone_call = median_us(convert_call, calls=2000, warmup=200)
    alone_chunk = median_us(read_stream, calls=2000, warmup=200) / chunks
    print("The adapter's own work, timed alone")
    print(row("request + answer conversion of one call", alone_call))
    print(row("one stream event read", alone_chunk))
    print(f"end to end over loopback (not judged: jitter, and the guard's own cost): call {chat_extra:+.2f} µs, "
          f"stream chunk {chunk_extra:+.2f} µs")  # fmt: skip
    adapter_goals([("alone", alone_call)], [("alone", alone_chunk)])


if __name__ == "__main__":
    main()
