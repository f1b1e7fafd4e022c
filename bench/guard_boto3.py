"""What the botocore guard seam and the Bedrock wire reader add to a boto3 bedrock-runtime call.

Three figures, printed and never asserted:

1. ``READER.read`` alone on a typical Converse body (a short chat with a system prompt and a tool), on one
   carrying a 100 kB image, and on an InvokeModel embedding body: the per-request cost of reading what a
   request asks for (goal: a few µs for the typical body).
2. A boto3 ``converse`` answered in memory (a ``before-send`` handler returns the answer, so no socket is
   involved), bare and guarded, interleaved: what the seam adds per call (building the ``Outgoing``, reading
   it, metering the answer), with ``--guard pass`` a guard that reads and allows everything, and with
   ``--guard core`` privsdk's own ``Guard`` configured from the environment (needs the core guard).
3. The same for a ~50-frame ConverseStream answered in memory: per-call and per-frame cost of the meter.

With ``--instructions`` it counts instead, with ``valgrind --tool=callgrind``, the CPU instructions of N
in-memory ``converse`` calls (N=2n minus N=n, so that imports cancel out): bare, with the pass guard and
with the core guard (``PRIVSDK_USAGE=none``, the loopback-free default policy). Counts do not jitter on a
busy machine; they are turned into µs at the bare call's measured speed.

Run: ``.venv/bin/python bench/guard_boto3.py [--rounds N] [--per-round N] [--guard pass|core] [--instructions]``.
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from childenv import REPO
from timing import interleaved_medians, median_us, row

sys.path.insert(0, str(REPO))

from privsdk.outbound.outgoing import Asks, Outgoing
from privsdk.outbound.wire.bedrock import READER
from tests.wire.bedrock import _answer, stream_frames

MODEL = "eu.anthropic.claude-3-7-sonnet-20250219-v1:0"
REGION = "eu-central-1"
KEYS = {"aws_access_key_id": "AKIDFAKE", "aws_secret_access_key": "bench-secret"}
GOAL_US = 20.0
TOOLS = {"tools": [{"toolSpec": {"name": "weather", "inputSchema": {"json": {"type": "object"}}}}]}


def converse_body(words: int, image: bytes | None = None) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"text": " ".join(f"w{i}" for i in range(words))}]
    if image is not None:
        content.append({"image": {"format": "png", "source": {"bytes": base64.b64encode(image).decode()}}})
    return {
        "messages": [{"role": "user", "content": content}],
        "system": [{"text": "Answer briefly."}],
        "inferenceConfig": {"maxTokens": 200},
        "toolConfig": TOOLS,
    }


def outgoing(path: str, body: dict[str, Any]) -> Outgoing:
    host = f"bedrock-runtime.{REGION}.amazonaws.com"
    headers = {"content-type": "application/json", "authorization": "AWS4-HMAC-SHA256 ...", "x-amz-date": "x"}
    return Outgoing("boto3", "POST", "https", host, None, path, "", headers, json.dumps(body).encode())


class _PassGuard:
    """Reads every request with the wire reader and allows it: the seam's own cost, without a decision."""

    def check(self, out: Outgoing) -> _Pass:
        return _Pass(out, READER.read(out))


class _Pass:
    def __init__(self, out: Outgoing, asks: Asks) -> None:
        self.out, self.asks = out, asks

    def meter(self, status: int, headers: Any) -> Any:
        return READER.meter(self.out, self.asks, status, headers)

    def finish(self, status: int | None, tokens: tuple[int | None, int | None], exc: BaseException | None) -> None:
        pass


class _Raw:
    """What botocore reads an answer from (a urllib3 response), in memory."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield from self._chunks

    def close(self) -> None:
        pass


def answer_in_memory(client: Any, chunks: list[bytes], content_type: str) -> None:
    from botocore.awsrequest import AWSResponse

    def send(request: Any, **kwargs: Any) -> Any:
        headers = {"Content-Type": content_type, "x-amzn-RequestId": "bench"}
        return AWSResponse(request.url, 200, headers, _Raw(chunks))

    client.meta.events.register_last("before-send.bedrock-runtime", send)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--per-round", type=int, default=200)
    parser.add_argument("--guard", choices=("pass", "core"), default="pass")
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--calls", type=int, default=200, help="n for --instructions (2n minus n calls)")
    args = parser.parse_args()
    os.environ.update(
        AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true"
    )
    if args.instructions:
        instructions(args.calls)
        return

    print("1. READER.read, µs per request")
    path = "/model/eu.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse"
    typical = outgoing(path, converse_body(60))
    with_image = outgoing(path, converse_body(60, b"\x89PNG" + bytes(100_000)))
    embed = outgoing("/model/amazon.titan-embed-text-v2%3A0/invoke", {"inputText": "w " * 60})
    for label, out in (
        ("converse, 60 words + tool", typical),
        ("converse + 100 kB image", with_image),
        ("titan embed", embed),
    ):
        print(row(label, median_us(functools.partial(READER.read, out), calls=2000)))

    import boto3
    from botocore.config import Config
    from privsdk_bedrock.dropin import guard_client

    guard: Any = _PassGuard()
    if args.guard == "core":
        from privsdk.outbound.judge import Guard

        guard = Guard.default()
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    body = converse_body(60)
    answer = _answer(body, None)
    frames = stream_frames(answer)

    def client(chunks: list[bytes], content_type: str, guarded: bool) -> Any:
        made = boto3.client("bedrock-runtime", region_name=REGION, config=config, **KEYS)
        if guarded:
            guard_client(made, guard=guard)
        answer_in_memory(made, chunks, content_type)
        return made

    plain, guarded = (client([json.dumps(answer).encode()], "application/json", g) for g in (False, True))
    plain_s, guarded_s = (client(frames, "application/vnd.amazon.eventstream", g) for g in (False, True))
    kwargs = {"modelId": MODEL, **body}

    def stream(c: Any) -> Callable[[], int]:
        return lambda: sum(1 for _ in c.converse_stream(**kwargs)["stream"])

    calls: dict[str, Callable[[], object]] = {
        "converse": lambda: plain.converse(**kwargs),
        "converse, guarded": lambda: guarded.converse(**kwargs),
        "converse_stream": stream(plain_s),
        "converse_stream, guarded": stream(guarded_s),
    }
    medians = interleaved_medians(calls, rounds=args.rounds, per_round=args.per_round)
    print(f"\n2. boto3 converse answered in memory ({args.guard} guard), µs per call")
    print(row("converse", medians["converse"]))
    print(row("converse, guarded", medians["converse, guarded"], medians["converse"]))
    added = medians["converse, guarded"] - medians["converse"]
    print(f"   seam adds {added:.1f} µs per call (goal ≤ {GOAL_US:.0f} µs): {'PASS' if added <= GOAL_US else 'FAIL'}")
    print(f"\n3. converse_stream of {len(frames)} frames answered in memory, µs per call")
    print(row("converse_stream", medians["converse_stream"]))
    print(row("converse_stream, guarded", medians["converse_stream, guarded"], medians["converse_stream"]))
    per_frame = (medians["converse_stream, guarded"] - medians["converse_stream"]) / len(frames)
    print(f"   {per_frame:.2f} µs per frame")


def in_memory_client(mode: str) -> Any:
    """A bedrock-runtime client answering ``converse`` in memory: bare, or guarded by the pass or the core guard."""
    import boto3
    from botocore.config import Config
    from privsdk_bedrock.dropin import guard_client

    made = boto3.client("bedrock-runtime", region_name=REGION, config=Config(retries={"total_max_attempts": 1}), **KEYS)
    if mode == "pass":
        guard_client(made, guard=_PassGuard())
    elif mode == "core":
        guard_client(made)  # Guard.default(): the environment's policy; eu-central-1's host is in the catalogue
    answer_in_memory(made, [json.dumps(_answer(converse_body(60), None)).encode()], "application/json")
    return made


def _child(mode: str, calls: int) -> None:
    client = in_memory_client(mode)
    kwargs = {"modelId": MODEL, **converse_body(60)}
    for _ in range(calls):
        client.converse(**kwargs)


def instructions(calls: int) -> None:
    import re
    import subprocess
    import tempfile
    import time

    env = {**os.environ, "PRIVSDK_USAGE": "none", "PYTHONPATH": f"{REPO}/bench:{REPO}"}
    counts: dict[tuple[str, int], int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("bare", "pass", "core"):
            for n in (calls, 2 * calls):
                code = f"import guard_boto3; guard_boto3._child({mode!r}, {n})"
                out = subprocess.run(
                    ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.out", sys.executable, "-c", code],
                    env=env, capture_output=True, text=True, check=True,
                )  # fmt: skip
                found = re.search(r"Collected : (\d+)", out.stderr)
                assert found is not None, out.stderr[-500:]
                counts[mode, n] = int(found[1])
    per_call = {mode: (counts[mode, 2 * calls] - counts[mode, calls]) / calls for mode in ("bare", "pass", "core")}
    _child("bare", 50)
    start = time.perf_counter()
    _child("bare", 500)
    bare_us = (time.perf_counter() - start) / 500 * 1e6
    us_per_instruction = bare_us / per_call["bare"]
    print(f"instructions per in-memory converse call ({calls} calls, measured bare call {bare_us:.0f} µs)")
    for mode in ("bare", "pass", "core"):
        extra = per_call[mode] - per_call["bare"]
        line = f"  {mode:<6} {per_call[mode]:12,.0f}"
        if mode != "bare":
            line += f"   +{extra:10,.0f}  ≈ {extra * us_per_instruction:6.1f} µs"
        print(line)


if __name__ == "__main__":
    main()
