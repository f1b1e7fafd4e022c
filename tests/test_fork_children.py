"""A child forked while another thread of its parent is inside privsdk: it sends its requests and writes its records.

A fork copies the parent's memory as it stands, in the middle of whatever its other threads were doing: a module the
usage writer was importing, an SQLite transaction the writer had open, a lock a thread held. Each test makes the
fork land there for certain (a thread held at that point until the fork is done), through the openai drop-in over a
loopback server; the usage tests fork in a fresh interpreter, whose imports and fork hooks are its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from privsdk import openai as dropin
from privsdk.outbound.judge import Guard
from tests.conftest import REPO, clean_env
from tests.guard_support import guard_env, usage_records
from tests.wire.openai import OpenAIWire
from tests.wire.server import LoopbackServer

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

KEY = "sk-fork"

#: The start of each script: a guarded client for the server at argv[1], and the call it makes.
CALLS = f"""
import os, sys, threading
from privsdk import openai
from privsdk.outbound.judge import Guard

client = openai.OpenAI(api_key={KEY!r}, base_url=sys.argv[1] + "/v1", max_retries=0)

def call():
    client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "Say hello."}}])
"""

#: The parent's writer opens its sink with the first record; the fork lands while the writer imports the sink's
#: module (held at the start of its body, the module already in sys.modules), if the writer imports it.
FORK_MID_IMPORT = (
    CALLS
    + """
import importlib.abc, importlib.machinery, json

module = sys.argv[2]
parent = os.getpid()
importers = []  # the threads that import the sink's module
held, go = threading.Event(), threading.Event()


class HoldTheWriter(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        thread = threading.current_thread().name
        if name != module or os.getpid() != parent:
            return None
        importers.append(thread)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if not thread.startswith("privsdk-usage"):
            return spec
        inner = spec.loader

        class Held(importlib.abc.Loader):
            def create_module(self, spec):
                return inner.create_module(spec)

            def exec_module(self, module):
                held.set()
                go.wait(10)
                inner.exec_module(module)

        spec.loader = Held()
        return spec


sys.meta_path.insert(0, HoldTheWriter())
call()  # the parent's first record: its writer opens the sink
if importers != ["MainThread"]:  # the writer thread imports it (or is about to): fork in the middle
    assert held.wait(10), importers
pid = os.fork()
if pid == 0:
    for _ in range(3):
        call()
    sys.exit(0)  # a normal exit: the exit hook writes the child's records
go.set()
_, status = os.waitpid(pid, 0)
Guard.default().flush(10)
print(json.dumps([status, importers]))
"""
)

#: The fork lands while the parent's writer is inside an SQLite transaction: held at its INSERT (after BEGIN
#: IMMEDIATE) until the fork begins. A fork hook registered after privsdk's runs before it, and lets the writer go.
FORK_MID_TRANSACTION = (
    CALLS
    + """
call()
recorder = Guard.default().recorder
assert recorder.flush(10)  # the sink is open
parent = os.getpid()
held, go = threading.Event(), threading.Event()


def hold(statement):
    if statement.startswith("INSERT") and os.getpid() == parent and not held.is_set():
        held.set()
        go.wait(10)


recorder._sink._conn.set_trace_callback(hold)  # the writer's own connection; the callback runs in the writer
call()
assert held.wait(10)
assert "privsdk.usage.writer" in sys.modules  # its fork hook came first, so this one runs before it
os.register_at_fork(before=go.set)
pid = os.fork()
if pid == 0:
    for _ in range(3):
        call()
    sys.exit(0)
go.set()
_, status = os.waitpid(pid, 0)
recorder.flush(10)
print(status)
"""
)


def _records(kind: str, store: Path) -> list[dict[str, Any]]:
    if kind == "jsonl":
        return [json.loads(line) for line in store.read_text().splitlines()]
    with contextlib.closing(sqlite3.connect(store)) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM usage_records")]


def _run(script: str, server: LoopbackServer, store: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(PRIVSDK_ENDPOINTS=f"{server.url}=openai.api", PRIVSDK_USAGE=store)
    return subprocess.run(
        [sys.executable, "-c", script, server.url, *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
def test_a_child_forked_while_the_writer_imports_its_sink_writes_its_records(tmp_path: Path, kind: str) -> None:
    """The writer thread imported the sink's module as it opened the sink: a child forked meanwhile had the module
    half-initialised in sys.modules, and every batch it wrote failed ("cannot import name 'SqliteSink' from partially
    initialized module"), or its writer waited for the import lock of a thread it does not have. Now the first
    record imports it, in its caller's thread, before the writer starts."""
    store = tmp_path / f"usage.{kind}"
    with LoopbackServer(OpenAIWire(key=KEY)) as server:
        done = _run(FORK_MID_IMPORT, server, f"{kind}://{store}", f"privsdk.usage.{kind}")
        assert len(server.requests) == 4
    assert done.returncode == 0, done.stderr
    records = _records(kind, store)
    assert len(records) == 4, done.stderr  # the parent's one, the child's three
    assert "usage sink failed" not in done.stderr, done.stderr
    assert json.loads(done.stdout) == [0, ["MainThread"]]  # the child exited 0; the writer thread imported nothing


def test_a_child_forked_in_the_middle_of_an_sqlite_write_writes_its_records(tmp_path: Path) -> None:
    """A child forked while its parent's writer was in an SQLite transaction inherited SQLite's in-process record
    of that transaction's locks, which no thread of the child releases: its own connection waited for them (30 s a
    batch), and its records were lost. Now a fork waits for the writer to leave its sink."""
    store = tmp_path / "usage.sqlite3"
    with LoopbackServer(OpenAIWire(key=KEY)) as server:
        done = _run(FORK_MID_TRANSACTION, server, f"sqlite://{store}")
        assert len(server.requests) == 5
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0"], done.stdout
    assert "usage sink failed" not in done.stderr, done.stderr
    assert len(_records("sqlite", store)) == 5  # the parent's two, the child's three


@contextlib.contextmanager
def _held(lock: Any) -> Iterator[None]:
    """``lock`` held by another thread (as while it builds the process-wide guard) until the block ends."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            taken.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join(10)


def _fork_and_call(url: str) -> int:
    """Fork; the child makes one request, writes its record and exits (0 if the request was answered). The child's
    exit status, or -1 when it had not ended within 10 s (it waited for a lock no thread of it would release)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: what this test is about
        pid = os.fork()
    if pid == 0:  # the child: never back into pytest
        code = 1
        try:
            client = dropin.OpenAI(api_key=KEY, base_url=f"{url}/v1", max_retries=0)
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello."}])
            Guard.default().flush(5)
            code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -1


@pytest.mark.parametrize("lock", ["the process-wide guard's", "a guard's recorder's"])
def test_a_child_forked_while_a_guard_lock_is_held_sends_its_first_request(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lock: str
) -> None:
    """Another thread held Guard._default_lock (building the process-wide guard: reading the policy and the
    catalogue) or a guard's _lock (opening its recorder) as the process forked: the child's first request waited for
    it for ever. The child now starts with fresh locks."""
    with LoopbackServer(OpenAIWire(key=KEY)) as server:
        usage = guard_env(monkeypatch, tmp_path, server)
        if lock == "the process-wide guard's":
            held = Guard._default_lock
        else:
            guard = Guard.default()
            assert guard._recorder is None  # opened with the first request, under the lock
            held = guard._lock
        with _held(held):
            code = _fork_and_call(server.url)
        assert code == 0, "the child hung on its first request" if code == -1 else f"the child exited {code}"
        assert len(server.requests) == 1
        (record,) = usage_records(usage, 1)
    assert record["outcome"] == "ok"
