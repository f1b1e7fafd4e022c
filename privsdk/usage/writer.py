"""The recorder: takes usage records on the call path and writes them to a sink from a background thread.

``record()`` only appends to a queue (well under a microsecond when the queue
has room). One writer thread per recorder drains the queue in batches, checks
every record (:func:`privsdk.usage.sanitize.clean`) and hands the batch to the
sink: one SQLite transaction, one ``write()`` to a JSONL file, or spans and
metrics for OpenTelemetry.

* **Deferred records.** ``record_later(build, *args)`` queues the arguments
  and the writer calls ``build(*args)`` for the record: privsdk's own records
  (the client's and the guard's) cost the call path one tuple, and building
  them runs off it.
* **Batching.** While records come, the writer wakes every ``linger`` seconds
  (sooner when a batch is full, or someone flushes or closes) and writes what
  has gathered: ``record()`` never wakes it, because waking a thread costs the
  caller, and a busy (CPU-bound) caller the most, as the woken writer then takes
  the interpreter lock from it once per record. After about a second with no
  record the writer sleeps until the next one, which wakes it (once).
* **Back-pressure.** When the queue holds ``queue_size`` records, ``record()``
  blocks until the writer has taken some: records are never dropped for speed.
* **Failures.** A sink that raises never fails the app's call: the batch is
  counted in ``failures`` and the first failure of each kind is logged once on
  the ``privsdk.usage`` logger. The next batch tries again (reopening the sink).
* **Exit.** An ``atexit`` hook closes every recorder, writing what is queued
  (bounded by ``exit_timeout`` seconds). Closing first ends the records of
  what the recorder holds (:meth:`Recorder.hold`: requests in flight, open
  streams), and waits (a second at most) for the readers of those another
  thread has just read to their end to queue theirs. A record that comes
  while the writer stops is written by the close itself.
* **Fork.** A child process never uses its parent's writer thread or sink (an
  SQLite connection must not cross a fork): after ``fork()`` the child starts
  with an empty queue, and opens its own sink on its first record. Records the
  parent had queued stay the parent's to write. Two things a child inherits
  could still stop it writing: a module the writer thread was importing (left
  half-initialised in the child), and the in-process lock state of an SQLite
  transaction (a lock the child's own connection would wait for, which no one
  in the child releases). So the writer thread of a SQLite or JSONL sink never
  imports (the first record imports the sink's module, in its caller's thread,
  before the writer starts; OpenTelemetry's exporters are too slow to import on
  the app's call path), and ``fork()`` waits (``FORK_WAIT_S`` at most) until no
  writer is in its sink.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from privsdk.docs_url import page
from privsdk.usage import require_otlp
from privsdk.usage.record import UsageRecord
from privsdk.usage.sanitize import clean
from privsdk.usage.spec import parse_spec

QUEUE_SIZE = 10_000
BATCH_SIZE = 1_000
LINGER_S = 0.05
#: Empty ``linger`` periods after which the writer stops polling and sleeps until a record wakes it.
IDLE_POLLS = 20
EXIT_TIMEOUT_S = 5.0
#: How long a close waits, at most, for the readers of streams that have just ended to queue their records.
HELD_WAIT_S = 1.0
#: How long a fork() waits, at most, for the writers in their sinks to come out (see _before_fork).
FORK_WAIT_S = 1.0
LOGGER = "privsdk.usage"


class Sink(Protocol):
    """Where a recorder's writer thread puts checked records. Opened, used and closed in that thread only."""

    def write(self, batch: Sequence[UsageRecord]) -> None:
        """Write the batch, or raise. :class:`PartialWrite` says how many were written before a failure."""

    def flush(self) -> None:
        """Push out anything the sink buffers itself (the metric readers of the otlp sink)."""

    def close(self) -> None: ...


class PartialWrite(Exception):
    """Raised by a sink that wrote ``written`` records of a batch and failed on the others; the cause is chained."""

    def __init__(self, written: int):
        super().__init__(f"{written} records written")
        self.written = written


class CallableSink:
    """Hands each record to an app's function; one record's failure does not stop the others."""

    def __init__(self, function: Callable[[UsageRecord], None]):
        self.function = function

    def write(self, batch: Sequence[UsageRecord]) -> None:
        first: Exception | None = None
        written = 0
        for rec in batch:
            try:
                self.function(rec)
                written += 1
            except Exception as exc:
                first = first or exc
        if first is not None:
            raise PartialWrite(written) from first

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class _Flush:
    """A marker in the queue: the writer sets ``done`` once every record queued before it is written."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()
#: What every writer may import at its first batch, whatever its sink: ``random``, for the request ids that
#: deferred records draw as the writer builds them (:func:`privsdk.usage.record.new_request_id`).
_WRITER_IMPORTS = ("random",)
_RECORDERS: weakref.WeakSet[Recorder] = weakref.WeakSet()
#: Sinks a forked child inherited: kept referenced so that the child never closes its parent's connection.
_ABANDONED: list[object] = []


class _Pending(Protocol):
    """What :meth:`Recorder.hold` keeps: something with a record still to give, which it gives when asked."""

    def _abandoned(self) -> None: ...


class Recorder:
    """Takes :class:`~privsdk.usage.UsageRecord` values on the call path; a background thread writes them.

    ``open_sink`` is called in the writer thread when the first batch is ready
    (and again after a failure); ``imports`` names the modules it needs, which
    the first record imports before it starts the writer. ``name`` names the sink in log messages, and
    ``show_errors`` says whether a failure's message may be logged: true for
    sinks whose errors are about files and databases, false for the app's own
    function, whose exception text privsdk knows nothing about.

    Counters, read at any time: ``written`` and ``failures`` (records), ``invalid``
    (records that had a field replaced, see :mod:`privsdk.usage.sanitize`),
    ``dropped`` (records that arrived after :meth:`close`).
    """

    #: False for a recorder that drops every record, so that callers need not build one.
    keeps = True

    def __init__(
        self,
        open_sink: Callable[[], Sink],
        *,
        name: str = "custom",
        show_errors: bool = False,
        queue_size: int = QUEUE_SIZE,
        batch_size: int = BATCH_SIZE,
        linger: float = LINGER_S,
        exit_timeout: float = EXIT_TIMEOUT_S,
        imports: Sequence[str] = (),
    ):
        if queue_size < 1 or batch_size < 1 or linger < 0:
            raise ValueError("queue_size and batch_size must be at least 1, linger at least 0")
        self._open_sink = open_sink
        #: Imported by _start, in the first record's thread: the writer thread must never import (see _start).
        self._imports = (*imports, *_WRITER_IMPORTS)
        self.name = name
        self._show_errors = show_errors
        self._queue_size = queue_size
        self._batch_size = min(batch_size, queue_size)
        self._linger = linger
        self._exit_timeout = exit_timeout
        self._closed = False  # close() has begun: records still come in, until ...
        self._shut = False  # ... it has ended: later records are dropped (and counted)
        self._forked = False
        self._reset()
        _RECORDERS.add(self)

    def _reset(self) -> None:
        """A fresh, idle state: at construction, and in a child after fork (where the parent's locks may be held)."""
        self._queue: deque[object] = deque()
        self._wake = threading.Event()
        self._space = threading.Condition(threading.Lock())
        self._lock = threading.Lock()
        self._live = False  # a writer thread is running and takes records
        self._idle = False  # the writer sleeps until a record comes; record() must wake it (once)
        self._urgent = False  # skip the linger: a batch is full, or someone flushes or closes
        self._waiters = 0
        self._thread: threading.Thread | None = None
        self._sink: Sink | None = None
        #: Held by whoever is in the sink (opening, writing, flushing or closing it); a fork() waits for it.
        self._in_sink = threading.RLock()
        self._warned: set[str] = set()
        #: What :meth:`hold` keeps: weak references, each gone from the set with its object (``discard`` is C code).
        self._held: set[weakref.ref[_Pending]] = set()
        self._let_go = self._held.discard
        self.written = 0
        self.failures = 0
        self.invalid = 0
        self.dropped = 0

    # -- the call path -------------------------------------------------------------------------

    def record(self, rec: UsageRecord) -> None:
        """Queue ``rec`` for the writer. Blocks only while the queue is full; never raises for a sink's failure."""
        if not self._live:
            self._record_cold(rec)
            return
        queue = self._queue
        if len(queue) >= self._batch_size:
            self._crowded()
        queue.append(rec)
        if self._idle:
            self._idle = False
            self._wake.set()

    def record_later(self, build: Callable[..., UsageRecord], *args: Any) -> None:
        """Queue ``build(*args)``, which the writer thread calls for the record. ``build`` must be cheap and never
        raise; one that does costs its record (counted in ``failures``), never the app's call."""
        self.record((build, args))  # type: ignore[arg-type]  # the queue holds both; _drain tells them apart

    def _crowded(self) -> None:
        """A batch is ready: wake the writer now; when the queue is full, wait for room (back-pressure)."""
        if not self._urgent:
            self._urgent = True
            self._wake.set()
        if len(self._queue) < self._queue_size or threading.current_thread() is self._thread:
            return  # the writer itself (a callable sink that records) must never wait for itself
        with self._space:
            self._waiters += 1
            try:
                while len(self._queue) >= self._queue_size and self._live:
                    self._urgent = True
                    self._wake.set()
                    self._space.wait(0.1)
            finally:
                self._waiters -= 1

    def _record_cold(self, rec: UsageRecord) -> None:
        """The first record (start the writer), or one after close (count it as dropped)."""
        with self._lock:
            if self._shut:
                self.dropped += 1
                self._warn("closed", "a usage record arrived after the recorder was closed and was not written")
                return
            if self._closed:  # closing: the closer writes what is queued once its writer has stopped
                self._queue.append(rec)
                return
            if not self._live:
                self._start()
        if self._live:
            self.record(rec)
        else:  # no thread could be started (interpreter shutdown): write in the caller's thread
            with self._lock:
                self._queue.append(rec)
                self._drain()  # as the writer would: a deferred record is built, anything else counted

    def _start(self) -> None:
        # What the writer would import with its first batch is imported here, before it starts: a fork() that
        # caught the writer thread importing would leave the child the module half-initialised in sys.modules (its
        # import lock held by a thread the child does not have), and every batch of the child would fail to import
        # it ("partially initialized module"). An import that fails here fails again, counted, in the writer.
        for module in self._imports:
            with contextlib.suppress(Exception):
                __import__(module)
        thread = threading.Thread(target=self._run, name=f"privsdk-usage-{self.name}", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # "can't create new thread at interpreter shutdown"
            return
        self._thread = thread
        self._live = True
        mp_util = sys.modules.get("multiprocessing.util")
        if mp_util is not None and (self._forked or _in_multiprocessing_child()):
            # A multiprocessing worker (fork, forkserver) ends with os._exit, which skips atexit; this finalizer
            # runs instead, whether the recorder came with the fork or was opened in the worker.
            mp_util.Finalize(None, _close_ref, args=(weakref.ref(self),), exitpriority=10)

    def hold(self, pending: _Pending) -> weakref.ref[_Pending] | None:
        """Weakly keep ``pending``, whose record is still to come (a request in flight, an open stream), until it is
        queued (:meth:`let_go` the reference this returns): :meth:`close` first has it give that record
        (``pending._abandoned()``). Else a stream still open at interpreter exit (a module global) would give it
        only when dropped, after the exit hook had closed the recorder, and it would be lost."""
        ref = weakref.ref(pending, self._let_go)
        self._held.add(ref)
        return ref

    def let_go(self, ref: weakref.ref[_Pending]) -> None:
        """``ref``'s record is queued (what :meth:`hold` returned)."""
        self._let_go(ref)

    def _end_held(self, timeout: float | None) -> None:
        held = self._held.copy()  # a copy: other threads may open streams meanwhile
        for ref in held:
            pending = ref()
            if pending is not None:
                with contextlib.suppress(Exception):  # one broken stream must not cost the others their records
                    pending._abandoned()
        # A stream another thread has just read to its end gave nothing to _abandoned(): its reader records it. Wait
        # until it has queued that record (let_go), or the record would come after the writer's stop, and be lost.
        deadline = time.monotonic() + min(timeout if timeout is not None else HELD_WAIT_S, HELD_WAIT_S)
        while not held.isdisjoint(self._held) and time.monotonic() < deadline:
            time.sleep(0.001)

    # -- flush and close -----------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record queued before this call is written (or has failed). False on timeout."""
        thread = self._thread
        if not self._live or thread is None or thread is threading.current_thread():
            return True
        marker = _Flush()
        self._queue.append(marker)
        self._urgent = True
        self._wake.set()
        return marker.done.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued, stop the writer and close the sink. Later records are counted in ``dropped``."""
        if not self._closed:
            self._end_held(timeout)  # their records first, while they can be written
        with self._lock:
            if self._closed:
                return
            self._closed = True
            live = self._live
        thread = self._thread
        if live and thread is not None and thread is not threading.current_thread():
            self._queue.append(_STOP)
            self._live = False
            self._urgent = True
            self._wake.set()
            thread.join(timeout)
            with self._lock:
                self._shut = True
            if thread.is_alive():
                return  # still writing; it closes the sink when done
            if self._queue:
                # Records that came as the writer stopped: a stream another thread read to its end while the held
                # ones were ended, its record queued after the stop (or once records went to _record_cold).
                # The writer is gone; write them here, in a sink of this thread's own.
                self._drain()
                self._close_sink()
        else:
            with self._lock:
                self._shut = True
            self._live = False
            if self._sink is not None:  # written in the caller's thread, or the writer closes itself
                self._close_sink()
        late = sum(1 for item in self._queue if type(item) is UsageRecord or type(item) is tuple)
        if late:
            self.dropped += late
            self._warn("closed", "usage records arrived while the recorder was closing and were not written")
        self._queue.clear()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        queue, wake = self._queue, self._wake
        stop = False
        quiet = IDLE_POLLS  # start asleep: the first record wakes the writer
        while not stop:
            if not self._urgent:
                if quiet >= IDLE_POLLS and not queue:
                    self._idle = True  # published before the queue is looked at: record() appends, then reads it
                    if not queue:
                        wake.wait()
                    self._idle = False
                    wake.clear()
                if not self._urgent:
                    wake.wait(self._linger)  # let records gather into one batch: one transaction, one write
                    wake.clear()
            if not queue and not self._urgent:
                quiet += 1
                continue
            quiet = 0
            self._urgent = False
            try:
                stop = self._drain()
            except Exception as exc:  # a bug here must not end the thread: record() would then block for ever
                self._warn(f"drain:{type(exc).__name__}", f"the usage writer failed ({type(exc).__name__}); it goes on")
                stop = self._closed and not queue
        self._close_sink()

    def _drain(self) -> bool:
        """Write everything queued; True once the stop marker was seen."""
        queue, size = self._queue, self._batch_size
        batch: list[UsageRecord] = []
        stop = False
        while queue:
            item = queue.popleft()
            if type(item) is tuple:  # record_later's (build, args): the record it builds, None if it failed
                item = self._build(item)
                if item is None:
                    continue
            if isinstance(item, UsageRecord):
                batch.append(item)
                if len(batch) >= size:
                    self._write(batch)
                    batch = []
            elif type(item) is _Flush:
                self._write(batch)
                batch = []
                self._call_sink("flush")
                item.done.set()
            elif item is _STOP:
                stop = True
            else:
                self.invalid += 1
                self._warn("type", f"record() was given a {type(item).__name__}, not a UsageRecord; it was ignored")
        self._write(batch)
        return stop

    def _build(self, item: tuple[Any, ...]) -> object:
        try:
            build, args = item
            return build(*args)
        except Exception as exc:
            self.failures += 1
            self._warn(f"build:{type(exc).__name__}", f"a usage record could not be built ({type(exc).__name__})")
            return None

    def _write(self, batch: list[UsageRecord]) -> None:
        if self._waiters:
            with self._space:
                self._space.notify_all()
        if not batch:
            return
        records = []
        for rec in batch:
            try:
                checked, bad = clean(rec)
            except Exception:  # a value so odd that checking it raises (an __eq__ that fails): never written
                self.invalid += 1
                self.failures += 1
                self._warn("unreadable", "a usage record could not be checked and was not written")
                continue
            if bad:
                self.invalid += 1
                self._warn(
                    "invalid:" + ",".join(bad),
                    f"usage record field(s) {', '.join(bad)} held a value their type does not allow; "
                    f"replaced (see {page('usage-records')})",
                )
            records.append(checked)
        if not records:
            return
        try:
            with self._in_sink:
                if self._sink is None:
                    self._sink = self._open_sink()
                self._sink.write(records)
        except Exception as exc:
            written = exc.written if isinstance(exc, PartialWrite) else 0
            self.written += written
            self.failures += len(records) - written
            self._warn_failure("write", exc)
            if not isinstance(exc, PartialWrite):
                self._drop_sink()  # reopen for the next batch: a file may be back, a lock released
            return
        self.written += len(records)

    def _call_sink(self, method: str) -> None:
        if self._sink is not None:
            try:
                with self._in_sink:
                    getattr(self._sink, method)()
            except Exception as exc:
                self._warn_failure(method, exc)

    def _close_sink(self) -> None:
        self._call_sink("close")
        self._sink = None

    def _drop_sink(self) -> None:
        sink, self._sink = self._sink, None
        if sink is not None:
            with contextlib.suppress(Exception), self._in_sink:  # already failing; the first failure was logged
                sink.close()

    # -- reporting -----------------------------------------------------------------------------

    def _warn_failure(self, action: str, exc: BaseException) -> None:
        cause = exc.__cause__ if isinstance(exc, PartialWrite) and exc.__cause__ else exc
        detail = f"{type(cause).__name__}: {cause}" if self._show_errors else type(cause).__name__
        self._warn(
            f"{action}:{type(cause).__name__}",
            f"the {self.name} usage sink failed to {action} ({detail}); the app's calls do not fail (they wait only "
            "while the queue is full), and later failures are counted in Recorder.failures without being logged",
        )

    def _warn(self, key: str, message: str) -> None:
        """Log ``message`` once per ``key``. Messages name fields and sinks, never a record's values."""
        if key in self._warned:
            return
        self._warned.add(key)
        try:
            import logging  # only on this rare path: importing logging costs milliseconds
        except ImportError:  # the interpreter is shutting down (a record that came after the exit hook)
            sys.stderr.write(f"privsdk usage: {message}\n")
            return
        logging.getLogger(LOGGER).warning("privsdk usage: %s", message)

    def _forget_parent(self) -> None:
        """In a child after fork: drop the parent's thread, queue and sink; start afresh on the next record."""
        if self._sink is not None:
            _ABANDONED.append(self._sink)
        self._forked = True
        self._reset()


def _in_multiprocessing_child() -> bool:
    """Whether this process is a worker that multiprocessing started (a parent process it knows of)."""
    mp = sys.modules.get("multiprocessing")
    return mp is not None and mp.parent_process() is not None


class NullRecorder(Recorder):
    """``PRIVSDK_USAGE=none``: keeps nothing, costs one method call."""

    keeps = False

    def __init__(self) -> None:
        super().__init__(_no_sink, name="none")

    def record(self, rec: UsageRecord) -> None:
        pass

    def record_later(self, build: Callable[..., UsageRecord], *args: Any) -> None:
        pass

    def hold(self, pending: _Pending) -> None:
        return None

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, timeout: float | None = None) -> None:
        self._closed = True


def _no_sink() -> Sink:
    raise AssertionError("PRIVSDK_USAGE=none opens no sink")


def open_recorder(
    spec: str | Callable[[UsageRecord], None],
    *,
    where: str = "usage",
    max_age_days: int | None = None,
    queue_size: int = QUEUE_SIZE,
    batch_size: int = BATCH_SIZE,
    linger: float = LINGER_S,
    exit_timeout: float = EXIT_TIMEOUT_S,
) -> Recorder:
    """A recorder for a ``PRIVSDK_USAGE`` value, or for a function that takes each record.

    ``max_age_days`` (``PRIVSDK_USAGE_MAX_AGE_DAYS``) makes SQLite and JSONL
    sinks delete records older than that many days, when they open and hourly.
    Nothing is opened here: the writer thread opens the sink with the first batch.
    A bad ``spec``, or ``otlp`` without the ``otlp`` extra installed, is a
    :class:`~privsdk.errors.ConfigError` placed at ``where``: where the value came from (the ``usage``
    argument by default; ``PRIVSDK_USAGE`` for the variable's value). It names a bad spec by its scheme alone.
    """
    options: dict[str, Any] = {
        "queue_size": queue_size,
        "batch_size": batch_size,
        "linger": linger,
        "exit_timeout": exit_timeout,
    }
    if callable(spec):
        function = spec
        return Recorder(lambda: CallableSink(function), name="callable", **options)
    store = parse_spec(spec, where=where)
    if store.kind == "none":
        return NullRecorder()
    if store.kind == "otlp":
        require_otlp(where)
        # OpenTelemetry's exporters take 0.3-0.7 s to import: not on the app's first call but in the writer
        # thread, at the cost of a child forked during that import (docs/usage-records.md, "Fork").
        return Recorder(_open_otlp, name="otlp", **options)
    path = store.path
    assert path is not None
    if store.kind == "sqlite":
        return Recorder(
            lambda: _open_sqlite(path, max_age_days),
            name=f"sqlite {path}",
            show_errors=True,
            imports=("privsdk.usage.sqlite",),
            **options,
        )
    return Recorder(
        lambda: _open_jsonl(path, max_age_days),
        name=f"jsonl {path}",
        show_errors=True,
        imports=("privsdk.usage.jsonl",),
        **options,
    )


def _open_sqlite(path: str, max_age_days: int | None) -> Sink:
    from privsdk.usage.sqlite import SqliteSink

    return SqliteSink(path, max_age_days=max_age_days)


def _open_jsonl(path: str, max_age_days: int | None) -> Sink:
    from privsdk.usage.jsonl import JsonlSink

    return JsonlSink(path, max_age_days=max_age_days)


def _open_otlp() -> Sink:
    from privsdk.usage.otlp import OtlpSink

    return OtlpSink()


def _close_ref(ref: weakref.ref[Recorder]) -> None:
    recorder = ref()
    if recorder is not None:
        recorder.close(recorder._exit_timeout)


@atexit.register
def _close_all() -> None:
    """At interpreter exit, write what every recorder still holds."""
    for recorder in list(_RECORDERS):
        recorder.close(recorder._exit_timeout)


#: The sink locks that this thread's fork() in progress holds (another thread may fork meanwhile).
_forking = threading.local()


def _before_fork() -> None:
    """Wait until no writer is in its sink, ``FORK_WAIT_S`` at most, and keep it out until the fork is done: a
    child forked in the middle of an SQLite transaction inherits its in-process lock state, and its own connection
    would wait for a lock that no thread of the child will ever release. A writer is in its sink for one batch,
    usually milliseconds; one that takes longer (waiting for a database another process keeps locked, for an OTLP
    collector) is waited for no longer than that, and the fork goes on."""
    deadline = time.monotonic() + FORK_WAIT_S
    held = _forking.held = []
    for recorder in list(_RECORDERS):
        lock = recorder._in_sink
        if lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            held.append(lock)


def _after_fork_in_parent() -> None:
    for lock in getattr(_forking, "held", ()):
        lock.release()
    _forking.held = []


def _after_fork_in_child() -> None:
    _forking.held = []  # the parent's locks: the child's recorders start with their own
    for recorder in list(_RECORDERS):
        recorder._forget_parent()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)
