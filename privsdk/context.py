"""The tenant, data class and tags that apply to calls made inside a block.

Held in a :mod:`contextvars` variable, so a scope set in one thread or asyncio
task is never seen by another: two tenants served at once by one process
never see each other's settings.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import types
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Generator,
    Iterator,
    Mapping,
)
from concurrent.futures import Executor, Future
from typing import Any, NamedTuple, NoReturn, ParamSpec, TypeVar, overload

P = ParamSpec("P")
R = TypeVar("R")

_NO_TAGS: Mapping[str, str] = {}


class Scope(NamedTuple):
    tenant: str | None = None
    data_class: str | None = None
    tags: Mapping[str, str] = _NO_TAGS


_current: contextvars.ContextVar[Scope] = contextvars.ContextVar("privsdk_scope", default=Scope())  # noqa: B039 - immutable


#: The scope in force here: the context variable's own getter, as every guarded request asks for it.
current: Callable[[], Scope] = _current.get


@contextlib.contextmanager
def scope(
    *, tenant: str | None = None, data_class: str | None = None, tags: Mapping[str, str] | None = None
) -> Iterator[Scope]:
    """Calls inside the block run for ``tenant`` and ``data_class`` unless a call names its own.

    Scopes nest: an inner scope keeps what it does not set, and its tags are
    added to the outer ones. ``with privsdk.scope(tenant="acme", data_class="pii"): ...``
    """
    if tenant is not None and not isinstance(tenant, str):
        _wrong("tenant", "a str, a tenant's name", tenant)
    if data_class is not None and not isinstance(data_class, str):
        _wrong("data_class", "a str, a data class's name", data_class)
    for name, value in (("tenant", tenant), ("data_class", data_class)):
        if value == "":  # would read as "none named" and give the outer scope's or the default's policy
            from privsdk.errors import InvalidArgument

            raise InvalidArgument(
                f"privsdk.scope({name}=) must be a {name.replace('_', ' ')}'s name, not an empty str (leave {name} "
                "out to keep the outer scope's)"
            )
    if tags is not None and not isinstance(tags, Mapping):
        _wrong("tags", "a dict of str to str, e.g. {'team': 'search'}", tags)
    outer = _current.get()
    merged = {**outer.tags, **tags} if tags else outer.tags
    if tags:
        from privsdk.usage.tags import check_tags

        check_tags(merged)  # a TagError here, at the app's own line: a request in the block must not raise one
    inner = Scope(
        tenant if tenant is not None else outer.tenant,
        data_class if data_class is not None else outer.data_class,
        merged,
    )
    token = _current.set(inner)
    try:
        yield inner
    finally:
        _current.reset(token)


def _wrong(name: str, shape: str, value: object) -> NoReturn:
    """A scope argument of a type it cannot take: an InvalidArgument naming it, never its value."""
    from privsdk.errors import InvalidArgument

    kind = type(value).__name__
    raise InvalidArgument(f"privsdk.scope({name}=) must be {shape}, not {'an' if kind[:1] in 'aeiou' else 'a'} {kind}")


Y = TypeVar("Y")
S = TypeVar("S")


@overload
def propagate(fn: Generator[Y, S, R]) -> Generator[Y, S, R]: ...
@overload
def propagate(fn: AsyncGenerator[Y, S]) -> AsyncGenerator[Y, S]: ...
@overload
def propagate(fn: Iterator[Y]) -> Iterator[Y]: ...
@overload
def propagate(fn: AsyncIterator[Y]) -> AsyncIterator[Y]: ...
@overload
def propagate(fn: Callable[P, R]) -> Callable[P, R]: ...
def propagate(fn: Any) -> Any:
    """``fn``, to run in another thread or executor with the scope in force here; or a stream (an iterator or an
    async iterator), to be read with it wherever and whenever it is read.

    A thread or a ``ThreadPoolExecutor`` worker starts without the caller's
    :func:`scope` (context variables do not follow), and a call there that names
    no tenant is refused when the policy file defines tenants without a
    ``default_tenant``. Wrap the function where the scope is set::

        with privsdk.scope(tenant="acme"):
            pool.submit(privsdk.propagate(summarise), doc)

    Each call of the wrapper runs in its own copy of the context taken now, so
    wrappers called at once in several threads never share or leak settings.

    A framework's stream (LangChain's ``stream`` / ``astream``, a chain's) sends its
    request only as it is read: read after the scope ended (a web handler that
    returns it), it is judged for the tenant in force then. Wrap it where the scope
    is set, and it is read in the context taken now::

        with privsdk.scope(tenant="acme"):
            return StreamingResponse(privsdk.propagate(chain.astream(question)))

    An async function (``async def``) gives an async function whose body runs in
    the copy, wherever it is awaited (a background job run after the handler's
    scope ended)::

        with privsdk.scope(tenant="acme"):
            background.add_task(privsdk.propagate(summarise_later), doc)
    """
    captured = contextvars.copy_context()
    if inspect.iscoroutinefunction(fn):
        # Calling it only makes the coroutine: its body runs when awaited, in the awaiting task's context, so each
        # of its steps is run in the copy here. An async wrapper, as frameworks (Starlette's background tasks) tell
        # an async job from a sync one by the function they are given.
        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            context = captured.copy()
            return await _stepped_in(context, context.run(fn, *args, **kwargs))

        return run_async
    if isinstance(fn, Iterator) and not isinstance(fn, Generator):
        fn = _each(fn)  # a generator, stepped in the context below: each next() of the iterator runs there
    elif isinstance(fn, AsyncIterator) and not isinstance(fn, AsyncGenerator):
        fn = _each_async(fn)
    if isinstance(fn, (Generator, AsyncGenerator)):
        return _read_in(captured, fn)

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        return captured.copy().run(fn, *args, **kwargs)

    return run


def _each(items: Iterator[Y]) -> Generator[Y, None, None]:
    yield from items


async def _each_async(items: AsyncIterator[Y]) -> AsyncGenerator[Y, None]:
    async for item in items:
        yield item


class CallersContextExecutor(Executor):
    """``inner``, running each function in the context of the code that submitted it: for the thread pools vendor
    SDKs send requests from by themselves (cohere's v1 ``embed`` batches, openai's ``upload_and_poll``). There the
    app's :func:`scope` would not be in force, and the guard would judge the request for another tenant (the
    default), whose policy may allow what the app's tenant refuses. :func:`propagate` is for the app's own pools.
    """

    def __init__(self, inner: Executor):
        self.inner = inner

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        return self.inner.submit(contextvars.copy_context().run, fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.inner.shutdown(wait, cancel_futures=cancel_futures)


def lazy_in_callers_context(method: Callable[P, R]) -> Callable[P, R]:
    """``method``, a vendor SDK's that returns a stream it sends requests for only as the stream is read (a
    generator, or a coroutine whose result is one): cohere's ``chat_stream``, mistralai's ``run_stream_async``,
    google-genai's ``generate_content_stream``. The stream is read in the context of the call, however much later
    and wherever it is read.

    Else a stream made inside :func:`scope` and read after it (a web handler that returns it for the framework to
    read) would be judged, sent and recorded for the tenant in force then (the default), whose policy may allow
    what the caller's tenant refuses.
    """
    import inspect  # here: it costs milliseconds to import, and only guarding a client calls this

    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def awaited(*args: P.args, **kwargs: P.kwargs) -> Any:
            context = contextvars.copy_context()
            return _read_in(context, await method(*args, **kwargs))

        awaited._privsdk = True  # type: ignore[attr-defined]
        return awaited  # type: ignore[return-value]

    @functools.wraps(method)
    def called(*args: P.args, **kwargs: P.kwargs) -> Any:
        return _read_in(contextvars.copy_context(), method(*args, **kwargs))

    called._privsdk = True  # type: ignore[attr-defined]  # so that guarding a client again wraps nothing twice
    return called


def streams_in_callers_context(owner: type, name: str, guarded: Callable[[Any], bool]) -> None:
    """Make ``owner.name`` (see :func:`lazy_in_callers_context`) read its streams in the context of the call, for
    the instances ``guarded`` says belong to a guarded client; the others' are left as the SDK makes them.
    Patched once, keeping the method's kind (a coroutine function stays one)."""
    import inspect

    original = getattr(owner, name)
    if getattr(original, "_privsdk", False):
        return
    lazy = lazy_in_callers_context(original)
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def awaited(self: Any, *args: Any, **kwargs: Any) -> Any:
            return await (lazy if guarded(self) else original)(self, *args, **kwargs)

        method: Any = awaited
    else:

        @functools.wraps(original)
        def called(self: Any, *args: Any, **kwargs: Any) -> Any:
            return (lazy if guarded(self) else original)(self, *args, **kwargs)

        method = called
    method._privsdk = True
    setattr(owner, name, method)


def _read_in(context: contextvars.Context, stream: Any) -> Any:
    if isinstance(stream, Generator):
        return _steps(context, stream)
    if isinstance(stream, AsyncGenerator):
        return _async_steps(context, stream)
    if isinstance(stream, Coroutine):  # a plain function's coroutine (mistralai wraps run_stream_async in one)
        return _then_read_in(context, stream)
    return stream


async def _then_read_in(context: contextvars.Context, coroutine: Coroutine[Any, Any, Any]) -> Any:
    return _read_in(context, await coroutine)


def _steps(context: contextvars.Context, stream: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
    """``stream``'s items, each taken in ``context``: ``yield from stream``, but stepping in ``context`` (what is
    sent or thrown in is passed on, as ``yield from`` would)."""
    step: Callable[[Any], Any] = stream.send
    value: Any = None
    try:
        while True:
            try:
                item = context.run(step, value)
            except StopIteration as end:
                return end.value
            try:
                value, step = (yield item), stream.send
            except GeneratorExit:
                raise
            except BaseException as exc:  # thrown in: the stream's to handle
                value, step = exc, stream.throw
    finally:
        context.run(stream.close)


async def _async_steps(context: contextvars.Context, stream: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
    """``stream``'s items, each taken in ``context`` (:func:`_stepped_in`): ``async for``, stepping in
    ``context``. Closing this closes ``stream`` (in ``context`` too), and a cancellation of the task that reads it
    reaches ``stream`` where it waits."""
    try:
        while True:
            try:
                item = await _stepped_in(context, stream.__anext__())
            except StopAsyncIteration:
                return
            yield item
    finally:
        await _stepped_in(context, stream.aclose())


@types.coroutine
def _stepped_in(context: contextvars.Context, awaitable: Awaitable[R]) -> Generator[Any, Any, R]:
    """``await awaitable``, with each of its steps run in ``context``.

    A coroutine runs in the context of the task that awaits it. This one drives ``awaitable`` itself, as the task
    would: each step is ``context.run`` of its ``send`` (or ``throw``), and what it yields (a future, a trap) is
    yielded on to the event loop, which wakes the task as ever. It is the same on every event loop (asyncio,
    trio, anything else that runs coroutines), so there is one way, never one per library: the loop's own
    machinery (a task per step, as ``asyncio.create_task(context=)``) exists on asyncio alone, and a task per step
    would also cost a task. A cancellation (asyncio throws it in; trio sends it in as the wake-up's outcome)
    reaches ``awaitable`` where it waits, as ``yield from`` would pass it on; ``context`` is entered only while a
    step runs, never across a wait, so nothing else that runs meanwhile finds it entered.
    """
    steps = awaitable.__await__()
    step: Callable[[Any], Any] = steps.send
    value: Any = None
    while True:
        try:
            yielded = context.run(step, value)
        except StopIteration as end:
            result: R = end.value
            return result
        try:
            value, step = (yield yielded), steps.send
        except BaseException as exc:  # thrown in (asyncio's cancellation), or GeneratorExit (this coroutine closed
            value, step = exc, steps.throw  # unfinished): ``awaitable``'s to handle where it waits, and clean up
