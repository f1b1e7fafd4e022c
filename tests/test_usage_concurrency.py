"""Nothing lost: many processes and threads writing one store at once, and a writer killed with SIGKILL mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from privsdk.usage import jsonl, open_recorder, sqlite
from tests.conftest import REPO, clean_env
from tests.usage_support import numbered, rec, record_id

PROCESSES, THREADS, PER_THREAD = 8, 4, 500

# One writer process: waits for the go file so that all start together, then 4 threads write to both stores.
WRITER = """
import os, sys, threading, time
from privsdk.usage import open_recorder
from tests.usage_support import rec, record_id
number, sqlite_path, jsonl_path, go, threads, per_thread = sys.argv[1:]
stores = [open_recorder(spec, batch_size=50) for spec in (f"sqlite://{sqlite_path}", f"jsonl://{jsonl_path}")]
open(f"{go}.ready{number}", "w").close()
while not os.path.exists(go):
    time.sleep(0.005)

def write(thread):
    for i in range(int(per_thread)):
        r = rec(request_id=record_id(int(number), thread, i), attempt=thread + 1, input_tokens=i)
        for store in stores:
            store.record(r)

workers = [threading.Thread(target=write, args=(t,)) for t in range(int(threads))]
for w in workers:
    w.start()
for w in workers:
    w.join()
for store in stores:
    store.close()
    assert (store.failures, store.invalid, store.dropped) == (0, 0, 0), store.name
"""


def test_many_processes_and_threads_lose_nothing(tmp_path: Path) -> None:
    """8 processes x 4 threads write one SQLite store and one JSONL file at once: every record is there, once."""
    db, lines, go = tmp_path / "usage.sqlite3", tmp_path / "usage.jsonl", tmp_path / "go"
    args = [str(db), str(lines), str(go), str(THREADS), str(PER_THREAD)]
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(n), *args], cwd=REPO, env=clean_env(), stderr=subprocess.PIPE
        )
        for n in range(PROCESSES)
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"go.ready{n}").exists() for n in range(PROCESSES)) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    for w in writers:
        _, err = w.communicate(timeout=120)
        assert w.returncode == 0, err.decode()
    expected = {record_id(p, t, i) for p in range(PROCESSES) for t in range(THREADS) for i in range(PER_THREAD)}
    for name, records in (("sqlite", list(sqlite.read(str(db)))), ("jsonl", list(jsonl.read(str(lines))))):
        assert len(records) == PROCESSES * THREADS * PER_THREAD, name
        assert {r.request_id for r in records} == expected, name
        for r in records:  # every record readable and whole
            assert r == rec(request_id=r.request_id, attempt=r.attempt, input_tokens=r.input_tokens), name
        # each writer thread's records are in the order it wrote them
        order = Counter[tuple[str, int]]()
        for r in records:
            key = (r.request_id[:8], r.attempt)
            assert r.input_tokens == order[key], name
            order[key] += 1
    assert lines.read_bytes().count(b"\n") == PROCESSES * THREADS * PER_THREAD


# Writes records 0, 1, 2, ... and prints how many are committed after each flush, until it is killed.
KILLED = """
import sys
from privsdk.usage import open_recorder
from tests.usage_support import numbered
recorder = open_recorder(sys.argv[1], batch_size=100, linger=0)
i = 0
while True:
    for _ in range(200):
        recorder.record(numbered(i))
        i += 1
    recorder.flush()
    print(i, flush=True)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
def test_a_writer_killed_mid_run_leaves_every_committed_record(tmp_path: Path, kind: str) -> None:
    """SIGKILL while batches are being written: the store opens, holds every committed record whole, and takes more."""
    path = tmp_path / f"usage.{kind}"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED, f"{kind}://{path}"], cwd=REPO, env=clean_env(), stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    committed = 0
    for _ in range(5):
        committed = int(child.stdout.readline())
    os.kill(child.pid, signal.SIGKILL)
    child.wait(30)
    assert child.returncode == -signal.SIGKILL
    read = sqlite.read if kind == "sqlite" else jsonl.read
    survivors = list(read(str(path)))
    assert len(survivors) >= committed
    assert survivors[:committed] == [numbered(i) for i in range(committed)]
    assert all(r == numbered(r.input_tokens or 0) for r in survivors)  # later ones, if any, are whole too
    with open_recorder(f"{kind}://{path}") as recorder:
        recorder.record(numbered(10**6))
    assert list(read(str(path)))[-1] == numbered(10**6)
