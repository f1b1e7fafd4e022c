"""A guarded stream that one thread closes (``response.close()``) while another reads it: the reader gets what the
SDK gives for a stream closed under it (httpx's error, the SDK's, or the end of the stream), never an error of
privsdk's own, and the request has one usage record.

The race is made certain, not hoped for: a profile hook (``sys.setprofile``, in the reader's thread alone) holds the
reader at a chosen point of the guard's metered body while the other thread closes the stream.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import httpx2
import openai
import pytest

from privsdk import openai as dropin
from privsdk.outbound import transport
from tests.guard_support import guard_env, usage_records
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer

KEY = "sk-close-race"
MODEL = "gpt-4o-mini"
#: What the SDK raises for a stream closed under its reader, when it does not simply end.
SDK_ERRORS = (httpx2.StreamClosed, httpx2.ReadError, openai.APIConnectionError)


def _close_while_held(stream: Any, at: Callable[[FrameType], bool]) -> tuple[bool, BaseException | None]:
    """Read ``stream`` in a thread held at the first call that ``at`` picks, close it from this thread meanwhile,
    then let the reader go on: whether the hold came, and what the reader's loop raised (None: it ended)."""
    held, closed = threading.Event(), threading.Event()
    outcome: list[BaseException | None] = []

    def hold(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and not held.is_set() and at(frame):
            held.set()
            closed.wait(10)

    def read() -> None:
        sys.setprofile(hold)
        try:
            for _ in stream:
                pass
            outcome.append(None)
        except BaseException as exc:  # what the app's loop would get
            outcome.append(exc)
        finally:
            sys.setprofile(None)

    reader = threading.Thread(target=read)
    reader.start()
    came = held.wait(10)
    stream.response.close()
    closed.set()
    reader.join(10)
    assert not reader.is_alive()
    return came, outcome[0]


@pytest.mark.parametrize(
    ("where", "rounds"),
    [
        # Between two chunks: the reader has the second chunk and asks _kept_for where to keep it. The close has
        # handed the kept chunks to the writer: an `assert` there raised AssertionError in the reader, every time.
        ("between two chunks", 1),
        # Before the first chunk: the reader's body starts after the close (httpx checked that the response was open
        # just before). It kept the first chunk in the list the close had let go of: AttributeError on None. Only
        # when that chunk had come with the headers (else the closed connection raises first, as it should): about
        # one stream in three here, hence ten.
        ("before the first chunk", 10),
    ],
)
def test_a_stream_closed_by_another_thread_under_its_reader(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str, rounds: int
) -> None:
    kept_for = transport._kept_for.__code__

    def at(frame: FrameType) -> bool:
        if where == "between two chunks":
            return frame.f_code is kept_for
        return frame.f_code.co_qualname == "_seam.<locals>.Metered.__iter__"

    with LoopbackServer(OpenAIWire(key=KEY)) as server:
        usage = guard_env(monkeypatch, tmp_path, server)
        client = dropin.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
        for _ in range(rounds):
            stream = client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "Say hello."}],
                stream=True,
                stream_options={"include_usage": True},
            )
            came, error = _close_while_held(stream, at)
            assert came, f"the reader never came {where}"
            assert error is None or isinstance(error, SDK_ERRORS), repr(error)
        records = usage_records(usage, rounds)
        assert len(server.requests) == rounds
    assert len(records) == rounds and len({r["request_id"] for r in records}) == rounds  # one record per request
    assert {(r["operation"], r["outcome"]) for r in records} == {("stream", "cancelled")}
