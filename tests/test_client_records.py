"""The usage records of calls that do not end by themselves: a stream the app stops (an asyncio task's cancellation,
Ctrl-C), a call whose deadline passes on its first target, a stream still open when the recorder closes (the
client's close, interpreter exit). Each record is of a request that was sent, and each request sent has one."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from privsdk.async_client import AsyncClient
from privsdk.client import Client
from privsdk.errors import VendorTimeout
from tests.test_client import Servers
from tests.wire.server import Delay, Drip

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    with Servers(tmp_path) as s:
        yield s


def outcomes(servers: Servers) -> list[tuple[int, str | None, str, str | None]]:
    return [(r.attempt, r.chosen_target, r.outcome, r.error_class) for r in servers.records]


# -- a stream the app stops while it waits for the next event ---------------------------------------------------


def test_cancelling_the_task_that_reads_an_async_stream_records_it_cancelled(servers: Servers) -> None:
    servers.openai.fail(Drip(1.0))  # a slow model: each event on time for the read timeout (2 s)

    async def run() -> None:
        client = AsyncClient(**servers.client_args())
        try:
            stream = await client.chat("openai-mini", "hello", stream=True)

            async def read() -> None:
                async for _ in stream:
                    pass

            task = asyncio.ensure_future(read())
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await client.aclose()

    asyncio.run(run())
    assert outcomes(servers) == [(1, "openai-mini", "cancelled", None)]


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="SIGINT reaches the main thread")
def test_ctrl_c_while_a_stream_waits_for_its_next_event_records_it_cancelled(servers: Servers) -> None:
    servers.openai.fail(Drip(1.0))
    with servers.client() as client:
        stream = client.chat("openai-mini", "hello", stream=True)
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                for _ in stream:
                    pass
        finally:
            timer.join()
        client.flush_usage()
    assert outcomes(servers) == [(1, "openai-mini", "cancelled", None)]


# -- the deadline ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["chat", "stream", "async chat", "async stream"])
def test_a_deadline_that_passes_on_the_first_target_ends_the_call_there(servers: Servers, kind: str) -> None:
    """The first target does not answer before the deadline: no fallback is tried (there is no time left to send it
    anything), the call raises the first target's timeout, and the records hold that attempt alone."""
    late = {"deadline_s": 1.0, "stream": kind.endswith("stream")}
    if kind.startswith("async"):

        async def run() -> VendorTimeout:
            client = AsyncClient(**servers.client_args())
            try:
                await client.chat("openai-mini", "warm up")
                await client.chat("openai-mini", "warm up", data_class="pii")  # rerouted to azure-eu
                late_answer(servers, client)
                with pytest.raises(VendorTimeout) as caught:
                    await client.chat("openai-mini", "hello", **late)  # type: ignore[call-overload]
                return caught.value
            finally:
                await client.aclose()

        error = asyncio.run(run())
    else:
        with servers.client() as client:
            client.chat("openai-mini", "warm up")
            client.chat("openai-mini", "warm up", data_class="pii")  # rerouted to azure-eu
            late_answer(servers, client)
            with pytest.raises(VendorTimeout) as caught:
                client.chat("openai-mini", "hello", **late)  # type: ignore[call-overload]
            error = caught.value
    assert error.vendor == "openai"
    assert servers.seen() == {"openai": 1, "azure": 0, "cohere": 0}
    assert outcomes(servers) == [(1, "openai-mini", "error", "timeout")]


def late_answer(servers: Servers, client: Client | AsyncClient) -> None:
    """After the warm-up calls (both targets' SDK clients are built): forget them; openai's next answer comes after
    the deadline."""
    client.flush_usage()
    for server in (servers.openai, servers.azure):
        server.requests.clear()
    servers.records.clear()
    servers.openai.fail(Delay(1.5))


def test_a_cold_clients_deadline_is_not_spent_building_its_sdk_client(servers: Servers) -> None:
    """Building the SDK's client (some 20 ms here, with its module imported already; the import adds a second) is not
    the vendor's answer: a short deadline still lets the first attempt go, and nothing is recorded that was not sent."""
    with servers.client() as client:
        with contextlib.suppress(VendorTimeout):  # the loopback server may answer later than that
            client.chat("openai-mini", "hello", deadline_s=0.01)
        client.flush_usage()
    deadline = time.monotonic() + 2
    while not servers.openai.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert servers.seen() == {"openai": 1, "azure": 0, "cohere": 0}
    assert [(r.attempt, r.chosen_target) for r in servers.records] == [(1, "openai-mini")]


# -- a stream still open when the recorder closes --------------------------------------------------------------------


def test_a_stream_open_when_the_client_closes_is_recorded_cancelled(servers: Servers) -> None:
    client = servers.client()
    stream = client.chat("openai-mini", "hello", stream=True)
    next(stream)
    client.close()
    assert outcomes(servers) == [(1, "openai-mini", "cancelled", None)]
    assert client._core.recorder.dropped == 0
    del stream  # dropped after the close: recorded once, already


def test_the_recorder_holds_an_open_stream_weakly(servers: Servers) -> None:
    """What lets the recorder end an open stream's record costs the stream nothing: dropped, it goes at once."""
    with servers.client() as client:
        stream = client.chat("openai-mini", "hello", stream=True)
        next(stream)
        dropped = weakref.ref(stream)
        del stream
        gc.collect()
        assert dropped() is None
    assert outcomes(servers) == [(1, "openai-mini", "cancelled", None)]


_AT_EXIT = """
import asyncio, sys
sys.path.insert(0, {root!r})
import privsdk
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer

server = LoopbackServer(OpenAIWire(key="sk-x")).__enter__()
options = dict(environ={{"PRIVSDK_USAGE": "jsonl://" + sys.argv[1]}}, credentials={{"openai": {{"api_key": "sk-x"}}}},
               endpoints={{"openai": server.url + "/v1"}})
if sys.argv[2] == "sync":
    client = privsdk.Client(**options)
    stream = client.chat("openai/gpt-4o-mini", "hello", stream=True)
    next(stream)
else:
    async def main():
        client = privsdk.AsyncClient(**options)
        stream = await client.chat("openai/gpt-4o-mini", "hello", stream=True)
        await anext(stream)
        return client, stream
    client, stream = asyncio.run(main())
print(len(server.requests))
"""


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_stream_left_open_at_interpreter_exit_is_recorded_cancelled(tmp_path: Path, kind: str) -> None:
    """A script keeps a stream in a module global and exits: the request was sent, and its record is written
    before the recorder closes at exit (not dropped as one that came after the close)."""
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(_AT_EXIT.format(root=str(ROOT))))
    records = tmp_path / "usage.jsonl"
    done = subprocess.run(
        [sys.executable, str(script), str(records), kind], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1" and "privsdk usage" not in done.stderr
    found = [json.loads(line) for line in records.read_text().splitlines()]
    assert [(r["operation"], r["outcome"], r["error_class"]) for r in found] == [("stream", "cancelled", None)]
