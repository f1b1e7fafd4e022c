"""The usage records of calls that do not end by themselves: a stream the app stops (an asyncio task's cancellation,
Ctrl-C)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from privsdk.async_client import AsyncClient
from tests.test_client import Servers
from tests.wire.server import Drip


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
