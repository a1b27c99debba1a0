"""future: goroutines waiting on work that runs outside the runtime (futures, processes, asyncio).

    result = await mn.wait_future(fut)              # any concurrent.futures.Future
    result = await mn.offload(fn, *args)            # fn in the runtime's process pool
    result = await mn.offload(fn, *args, executor=ex)   # any Executor (threads, a Dask client's)
    result = await mn.aio(coro)                     # an asyncio coroutine on the runtime's loop

wait_future parks the goroutine with the one wake-up primitive (park_trap / goready) and the future's
done callback readies it, from whatever thread completes the future. The wait's state machine,
under the wait's own lock (`_Wait.lock`), makes exactly one of two things happen per park:

  REGISTERING  the commit runs on the parking M (the G is already WAITING) and registers the
               done callback, and the context hook when a context is given.
  FIRED        a callback came while REGISTERING: it may have run synchronously inside
               add_done_callback (the future was already done) or on another thread. It does not
               ready the G; the commit sees FIRED and returns False, so the G resumes at once.
  PARKED       the commit found nothing fired and left the G parked; it counts the G in
               idle.nfuturewait (the deadlock detector's count of Gs a foreign thread will ready).
  WOKEN        the first callback after PARKED readied the G (goready) and took it off the count;
               every later callback (the context's after the future's, or the other way round)
               finds WOKEN and does nothing.
  DEAD         run() ended while the G was parked (or still registering): the G is abandoned with
               the rest, and a callback that comes later must not ready it.

goready runs under the wait's lock so that the teardown, which takes the same lock to mark a wait
DEAD, either sees the G already readied or stops every later goready: run() abandons the Gs after
the teardown, and a goready of an abandoned G would be an internal error on an executor's thread.

A context passed to wait_future is watched with a hook in its cancellation tree: an object with
`_cancel(remove, err)` that context.py's `_propagate` adds to the nearest cancelable ancestor's
children (Go's context.AfterFunc), so cancelling the context readies the G without a helper
goroutine. When the context wins, the future is cancelled (a future already running may not
allow it; its result is then dropped) and ctx.err() is raised.

The runtime owns two helpers per run(), both made on first use under the run's lock and torn down
by `shutdown`, which run() calls after stopping the scheduler and before abandoning the Gs, and
`close`, which it calls once the runtime's threads are joined:
  - a process pool (procpool.py) of up to `default_workers()` processes started with the 'spawn'
    method, driven by the netpoller: the offloading goroutine writes its call to a worker's socket
    and parks reading the reply, with no pool thread in between. `shutdown` stops new calls and
    tells every worker to exit after its running call; `close` waits for them (as run() waits for
    a syscall) and closes their sockets. It also stops multiprocessing's resource tracker process
    when the pool was what started it, so no process outlives run().
  - an asyncio event loop on a thread named "mn-aio"; `shutdown` cancels its tasks, runs them to
    their end, closes the loop and joins the thread.
Every future a G still waits on when run() ends is cancelled where the future allows it.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import threading
from collections.abc import Callable, Coroutine
from multiprocessing import resource_tracker
from typing import TYPE_CHECKING, Any

from ._rt import idle as _idle
from ._rt import lock as _lock
from ._rt import tls as _tls
from ._rt.corofn import is_coroutine_function
from ._rt.g import WaitReason
from ._rt.park import goready, gosched, preempt_requested
from ._rt.tls import tls
from ._rt.traps import park_trap
from .context import Context, _propagate
from .procpool import ProcPool
from .procpool import describe as _describe

if TYPE_CHECKING:
    from ._rt.g import G
    from ._rt.sched import Sched

__all__ = ["aio", "close", "default_workers", "offload", "shutdown", "wait_future"]

_FUTURE = WaitReason.FUTURE

# _Wait.state
_REGISTERING = 0
_FIRED = 1
_PARKED = 2
_WOKEN = 3
_DEAD = 4

# _Wait.why
_DONE = 1
_CTX = 2


def default_workers() -> int:
    """default_workers is the size of the runtime's process pool: os.cpu_count() (1 if unknown)."""
    return os.cpu_count() or 1


class _RunState:
    """_RunState is what one run() owns here: the Gs waiting on futures, the process pool and the
    asyncio loop. All fields change under `lock`; `closed` is set once, by shutdown."""

    __slots__ = ("closed", "lock", "loop", "loopthread", "pool", "sched", "trackerours", "waits")

    def __init__(self, sched: Sched) -> None:
        self.sched = sched
        self.lock = _lock.new("future.runstate")
        self.closed = False
        self.waits: set[_Wait] = set()
        self.pool: ProcPool | None = None
        self.trackerours = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.loopthread: threading.Thread | None = None

    def process_pool(self) -> ProcPool | None:
        """process_pool is the run's pool, made on first use; None once run() is ending."""
        with self.lock:
            if self.closed:
                return None
            if self.pool is None:
                # Starting a 'spawn' process starts multiprocessing's resource tracker if nobody
                # has; then it is ours to stop.
                self.trackerours = getattr(resource_tracker._resource_tracker, "_fd", None) is None
                self.pool = ProcPool(default_workers())
            return self.pool

    def aio_loop(self) -> asyncio.AbstractEventLoop | None:
        """aio_loop is the run's asyncio loop, its thread started on first use; None once run() is
        ending."""
        with self.lock:
            if self.closed:
                return None
            if self.loop is None:
                loop = asyncio.new_event_loop()
                t = threading.Thread(target=_loop_main, args=(loop,), name="mn-aio", daemon=True)
                t.start()
                self.loop = loop
                self.loopthread = t
            return self.loop


_statelock = _lock.plain("future.statelock")
_cur: _RunState | None = None  # the state of the latest run(); replaced when a new run uses it


def _state() -> _RunState:
    """_state is the running runtime's _RunState; RuntimeError outside a goroutine."""
    global _cur
    s = _tls.cur
    if s is None or tls.m is None or tls.m.curg is None:
        raise RuntimeError("this mn_runtime operation needs a goroutine: call it inside mn_runtime.run(main)")
    st = _cur  # one read of a reference; a stale one names another run's sched and is rechecked
    if st is not None and st.sched is s:
        return st
    with _statelock:
        st = _cur
        if st is None or st.sched is not s:
            st = _cur = _RunState(s)
        return st


class _Wait:
    """_Wait is one park of one G on one future; its state machine is in the module docstring."""

    __slots__ = ("error", "fut", "gp", "hook", "lock", "st", "state", "why")

    def __init__(self, st: _RunState, fut: Any, cc: Context | None) -> None:
        self.st = st
        self.fut = fut
        self.lock = _lock.new("future.wait")
        self.state = _REGISTERING
        self.why = 0
        self.gp: G | None = None
        self.error: Exception | None = None
        self.hook = _CtxHook(self) if cc is not None else None

    def fire(self, why: int) -> None:
        """fire is the future's done callback (why=_DONE) and the context's hook (why=_CTX); any
        thread, any number of times: the first call after the commit readies the G."""
        with self.lock:
            state = self.state
            if state is _PARKED:
                self.state = _WOKEN
                self.why = why
                assert self.gp is not None
                goready(self.gp)
            elif state is _REGISTERING:
                self.state = _FIRED
                self.why = why
        if state is _PARKED:
            # After goready: the G is queued (and an M woken for it) before the count drops.
            _idle.futurewait_readied()

    def done_callback(self, fut: Any) -> None:
        self.fire(_DONE)


class _CtxHook:
    """_CtxHook sits in a context's children (context.py's cancellation tree) and fires its wait
    when the context is cancelled; it is never cancelled on its own, so `remove` is always False."""

    __slots__ = ("w",)

    def __init__(self, w: _Wait) -> None:
        self.w = w

    def _cancel(self, remove: bool, err: Any) -> None:
        self.w.fire(_CTX)


def _unhook(cc: Context, hook: _CtxHook) -> None:
    """_unhook takes hook out of its context's children, as a child context leaves its parent."""
    p = cc._cancelable()
    if p is not None:
        with p._lk:
            if p._children is not None:
                p._children.discard(hook)  # type: ignore[arg-type]


def _commit(gp: G, arg: tuple[_Wait, Context | None]) -> bool:
    """_commit is wait_future's park commit: gp is WAITING; register the callbacks and keep gp
    parked (True), or resume it at once (False) when a callback already came."""
    w, cc = arg
    w.gp = gp
    st = w.st
    with st.lock:
        if st.closed:
            return True  # run() is ending: gp stays parked and is abandoned with the rest
        st.waits.add(w)
    try:
        w.fut.add_done_callback(w.done_callback)  # may call it right here, on this thread
        if cc is not None:
            assert w.hook is not None
            _propagate(cc, w.hook)  # type: ignore[arg-type]  # may fire it here if cc is done
    except Exception as e:  # a future that refuses the callback: the G resumes and raises it
        w.error = e
        with w.lock:
            if w.state is _REGISTERING:
                w.state = _FIRED
            return w.state is _DEAD
    with w.lock:
        if w.state is _FIRED:
            return False
        if w.state is _DEAD:
            return True
        w.state = _PARKED
        _idle.futurewait_add(1)
        return True


async def wait_future(fut: Any, ctx: Context | None = None) -> Any:
    """wait_future parks the goroutine until fut completes and returns its result (or raises its
    exception); fut is a concurrent.futures.Future or anything with add_done_callback() and
    result() in that contract, completed from any thread.

    With ctx, a cancelled or expired context ends the wait first: fut.cancel() is called and
    ctx.err() raised (Canceled or DeadlineExceeded). When run() ends, the futures goroutines still
    wait on are cancelled where they allow it.
    """
    if asyncio.isfuture(fut):
        raise TypeError(
            "wait_future() needs a concurrent.futures.Future; an asyncio future completes on its own"
            " event loop: await it in a coroutine run with mn.aio()"
        )
    if not callable(getattr(fut, "add_done_callback", None)) or not callable(getattr(fut, "result", None)):
        raise TypeError(
            "wait_future() needs a concurrent.futures.Future (or an object with add_done_callback()"
            f" and result()), got {type(fut).__name__}"
        )
    cc: Context | None = None
    if ctx is not None:
        if not isinstance(ctx, Context):
            raise TypeError(f"wait_future() ctx must be an mn.context.Context, got {type(ctx).__name__}")
        err = ctx.err()
        if err is not None:
            fut.cancel()
            raise err
        if ctx._cancelable() is not None:  # a context that can never be cancelled needs no hook
            cc = ctx
    st = _state()
    done = getattr(fut, "done", None)
    if done is not None and done():
        if preempt_requested():
            await gosched()
        return fut.result()
    w = _Wait(st, fut, cc)
    await park_trap(_commit, (w, cc), _FUTURE)
    with st.lock:
        st.waits.discard(w)
    if cc is not None:
        assert w.hook is not None
        _unhook(cc, w.hook)
    if w.error is not None:
        raise w.error
    if cc is not None and w.why == _CTX:
        fut.cancel()
        err = cc.err()
        assert err is not None
        raise err
    return fut.result()


def _pickle_call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    """_pickle_call pickles the call for the process pool, or raises a TypeError naming the part
    (the function, which argument) that cannot be pickled."""
    try:
        return pickle.dumps((fn, args, kwargs), pickle.HIGHEST_PROTOCOL)
    except Exception as e:
        parts: list[tuple[str, Any]] = [(f"the function {_describe(fn)!r}", fn)]
        parts += [(f"argument {i} ({type(a).__name__})", a) for i, a in enumerate(args)]
        parts += [(f"keyword argument {k!r} ({type(v).__name__})", v) for k, v in kwargs.items()]
        what = "the call"
        for desc, obj in parts:
            try:
                pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
            except Exception:
                what = desc
                break
        raise TypeError(
            f"offload(): {what} cannot be pickled to send it to the process pool ({type(e).__name__}: {e});"
            " define functions at module level, or pass an executor= that does not pickle"
        ) from e


async def _park_forever() -> Any:
    await park_trap(None, _nolock, _FUTURE)


class _NoLock:
    """_NoLock stands in for goparkunlock's lock when there is nothing to release."""

    def release(self) -> None:
        pass


_nolock = _NoLock()


async def offload(fn: Callable[..., Any], /, *args: Any, executor: Any = None, **kwargs: Any) -> Any:
    """offload runs fn(*args, **kwargs) in executor (any concurrent.futures.Executor: a thread
    pool, a process pool, a Dask client's get_executor()) and parks the goroutine until it returns.

    With no executor, fn runs in the runtime's process pool (`default_workers()` processes, started
    with 'spawn' on first use, shut down when run() returns): fn, its arguments and its result must
    be picklable (a TypeError says which part is not), and fn must be importable by name (defined at
    module level).
    """
    if not callable(fn):
        raise TypeError(f"offload() needs a callable, got {type(fn).__name__}")
    if is_coroutine_function(fn):
        raise TypeError(f"offload() runs plain functions; {_describe(fn)} is async: await it, or run it with mn.aio()")
    if executor is not None:
        submit = getattr(executor, "submit", None)
        if not callable(submit):
            raise TypeError(f"offload() executor must be a concurrent.futures.Executor, got {type(executor).__name__}")
        _state()
        return await wait_future(submit(fn, *args, **kwargs))
    pool = _state().process_pool()
    if pool is None:
        return await _park_forever()  # run() is ending; this G is abandoned with the rest
    return await pool.call(_pickle_call(fn, args, kwargs), fn)


async def aio(coro: Coroutine[Any, Any, Any], ctx: Context | None = None) -> Any:
    """aio runs the asyncio coroutine coro on the runtime's asyncio event loop (its own thread,
    started on first use, stopped when run() returns) and parks the goroutine until it finishes;
    it returns coro's result or raises its exception. With ctx, cancelling the context cancels the
    task and raises ctx.err()."""
    if not asyncio.iscoroutine(coro):
        raise TypeError(f"aio() needs an asyncio coroutine object (call the async function), got {type(coro).__name__}")
    try:
        loop = _state().aio_loop()
    except BaseException:
        coro.close()
        raise
    if loop is None:
        coro.close()
        return await _park_forever()  # run() is ending; this G is abandoned with the rest
    return await wait_future(asyncio.run_coroutine_threadsafe(coro, loop), ctx)


def _loop_main(loop: asyncio.AbstractEventLoop) -> None:
    """_loop_main is the "mn-aio" thread: run loop until shutdown stops it, then finish its tasks
    (cancelled, as asyncio.run does on its way out) and close it."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        try:
            tasks = asyncio.all_tasks(loop)
            for t in tasks:
                t.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _runstate(sched: Sched) -> _RunState | None:
    with _statelock:
        st = _cur
    return st if st is not None and st.sched is sched else None


def shutdown(sched: Sched) -> None:
    """shutdown ends what this module owns for the run of sched: run() calls it once the scheduler
    is stopped and before it abandons the Gs. Gs still parked on futures are marked DEAD (no
    callback readies them any more) and their futures cancelled; the asyncio loop's tasks are
    cancelled and its thread joined; the process pool takes no more calls and its workers exit
    after their running call (close() waits for them)."""
    st = _runstate(sched)
    if st is None:
        return
    with st.lock:
        st.closed = True
        waits = list(st.waits)
        st.waits.clear()
        pool = st.pool
        loop, st.loop = st.loop, None
        thread, st.loopthread = st.loopthread, None
    for w in waits:
        with w.lock:
            state = w.state
            if state is _PARKED or state is _REGISTERING:
                w.state = _DEAD
        if state is _PARKED:
            _idle.futurewait_add(-1)
        if state is _PARKED or state is _REGISTERING:
            w.fut.cancel()
    if loop is not None:
        assert thread is not None
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
    if pool is not None:
        pool.stop()


def close(sched: Sched) -> None:
    """close: run() calls it after shutdown, once the runtime's threads are joined (no M can touch
    the pool's sockets any more): it waits for the pool's workers to exit and closes their sockets,
    then stops multiprocessing's resource tracker if the pool started it."""
    st = _runstate(sched)
    if st is None:
        return
    with st.lock:
        pool, st.pool = st.pool, None
    if pool is not None:
        pool.close()
        if st.trackerours:
            stop = getattr(resource_tracker._resource_tracker, "_stop", None)
            if stop is not None:
                stop()
