"""runtime: starting the runtime and goroutines (mn.run, mn.go) and asking it about itself.

`run(main)` builds a scheduler with `procs` Ps, starts the poller and sysmon threads, runs main as
goroutine 1 and returns main's result once it returns. Then every other goroutine is abandoned (its
coroutine is closed, so `finally` blocks run but cannot await), every runtime thread is joined and
every runtime fd closed. An M inside a blocking `syscall` cannot be interrupted: run() waits for the
call to return, discards its result, and only then returns. Ctrl-C is the exception: run() then
waits for such an M only a moment, and raises KeyboardInterrupt (_rt/interrupt.py).
"""

from __future__ import annotations

import inspect
import os
import sys
import types
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn

from ._rt import awaitcheck as _awaitcheck
from ._rt import chaos as _chaos
from ._rt import gil as _gil
from ._rt import interrupt as _interrupt
from ._rt import lock as _lock
from ._rt import tbfold as _tbfold
from ._rt import tls as _tls
from ._rt.corofn import is_coroutine, is_coroutine_function
from ._rt.g import EXITED as _EXITED
from ._rt.g import G, GStatus, WaitReason, abandon
from ._rt.idle import pidleput
from ._rt.runq import RUNQ_SIZE
from ._rt.sched import Sched
from ._rt.sema import joincommit as _joincommit
from ._rt.tls import tls
from ._rt.traps import gosched_trap, syscall_trap
from ._rt.traps import park_trap as _park_trap
from .time import VirtualClock, resolve_clock, sleep  # sleep lives with the rest of time

__all__ = [
    "Goroutine",
    "current",
    "go",
    "gomaxprocs",
    "gosched",
    "num_goroutine",
    "run",
    "sleep",
    "syscall",
]


_JOIN = WaitReason.JOIN


class Goroutine:
    """Goroutine: the handle mn.go() and mn.current() return for a goroutine.

        g = mn.go(worker, 1)
        g.id, g.name, g.done   # its number, its function's name, whether it has finished
        result = await g.join()  # wait for it to finish; its function's result

    A handle is all users see of a goroutine: the runtime's own record of it (its status, lock,
    coroutine, cached sudog) stays inside mn_runtime._rt. Two handles of the same goroutine are
    equal (mn.current() inside it == what go() returned), and a handle keeps that record alive,
    so join() answers however late it is called. Handles come only from mn.go() and
    mn.current(); constructing one directly is a TypeError.
    """

    # One slot: go() makes a handle per goroutine, so it is the cheapest object Python has with
    # an attribute (no __dict__, no __init__ call; see _handle).
    __slots__ = ("_g",)

    _g: G

    def __new__(cls, *args: Any, **kwargs: Any) -> Goroutine:
        raise TypeError("mn_runtime.Goroutine handles come from mn.go() and mn.current()")

    @property
    def id(self) -> int:
        """The goroutine's number: 1 for run()'s main, then increasing (Go's goid)."""
        return self._g.id

    @property
    def name(self) -> str:
        """The qualified name of the goroutine's function."""
        return self._g.name

    @property
    def done(self) -> bool:
        """True once the goroutine's function has returned (or the runtime abandoned it)."""
        return self._g.done

    async def join(self) -> Any:
        """join: `await g.join()` waits for the goroutine to finish and returns its function's
        result."""
        # The goroutine's join lot (sema.JoinLot) holds the waiters; nothing to park on once it
        # has exited: its result is read under its lock, which goexit holds as it stores the
        # result and detaches the lot.
        g = self._g
        lock = g.lock
        while True:
            lock.acquire()
            done = g.joiners is _EXITED
            result = g.result
            lock.release()
            if done:
                return result
            await _park_trap(_joincommit, g, _JOIN)

    def __eq__(self, other: object) -> bool:
        if type(other) is not Goroutine:
            return NotImplemented
        return self._g is other._g

    def __hash__(self) -> int:
        return hash(self._g)

    def __repr__(self) -> str:
        g = self._g
        return f"<Goroutine {g.id} {g.name} {g.status.name.lower()}>"


_new_object = object.__new__


def _handle(gp: G) -> Goroutine:
    """_handle: a Goroutine handle for gp (go() inlines this body)."""
    h = _new_object(Goroutine)
    h._g = gp
    return h


def _gof(h: Goroutine) -> G:
    """_gof: the runtime's G behind a handle, for mn_runtime's own tools (dumps, the pytest
    plugin, tests that look inside); not part of the public API."""
    return h._g


_runlock = _lock.plain("runtime.runlock")


def _resolve_procs(procs: object) -> int:
    if procs is None:
        env = os.environ.get("MN_PROCS")
        if env:
            try:
                procs = int(env)
            except ValueError:
                raise ValueError(f"MN_PROCS must be a positive integer, got {env!r}") from None
        else:
            procs = _gil.default_procs()
    if isinstance(procs, bool) or not isinstance(procs, int):
        raise TypeError(f"procs must be an int, got {type(procs).__name__}")
    if procs < 1:
        raise ValueError(f"procs must be at least 1, got {procs}")
    return procs


_CO_COROUTINE = inspect.CO_COROUTINE
_FunctionType = types.FunctionType
_getframe = sys._getframe


def _make_coro(fn: object, args: tuple[Any, ...], kwargs: dict[str, Any], who: str) -> Coroutine[Any, Any, Any]:
    """_make_coro calls fn(*args, **kwargs) for a coroutine, or refuses fn with a TypeError saying why.

    go() handles the common case (a plain async def function) itself, before calling this.
    """
    if type(fn) is _awaitcheck.Op:  # mn.go(ch.send(v)) with the await check on
        fn = _awaitcheck.take(fn)
    if is_coroutine(fn):
        if args or kwargs:
            fn.close()
            raise TypeError(f"{who}(): arguments given with a coroutine object; pass the async function instead")
        return fn
    if not callable(fn):
        raise TypeError(f"{who}() needs an async function or a coroutine object, got {type(fn).__name__}: {fn!r}")
    if not is_coroutine_function(fn) and isinstance(
        fn, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.BuiltinMethodType)
    ):
        raise TypeError(
            f"{who}() needs an async function or a coroutine object, got the plain function"
            f" {getattr(fn, '__qualname__', fn)!r}; define it with 'async def' or run it with mn.syscall()"
        )
    coro = fn(*args, **kwargs)
    if type(coro) is _awaitcheck.Op:  # mn.go(ch.send, v) with the await check on: go runs it
        coro = _awaitcheck.take(coro)
    if not is_coroutine(coro):
        raise TypeError(f"{who}(): calling {fn!r} returned {type(coro).__name__}, not a coroutine")
    return coro


def _runtime() -> Sched:
    s = _tls.cur
    if s is None or tls.m is None:
        raise RuntimeError("this mn_runtime operation needs a running runtime: call it inside mn_runtime.run(main)")
    return s


def run(
    main: Callable[..., Awaitable[Any]] | Coroutine[Any, Any, Any],
    *args: Any,
    procs: int | None = None,
    seed: int | None = None,
    runqsize: int | None = None,
    schedtrace: float | None = None,
    chaos: int | None = None,
    trace: str | os.PathLike[str] | None = None,
    clock: str | VirtualClock | None = None,
) -> Any:
    """run main(*args) as goroutine 1 on `procs` Ps and return its result.

    procs defaults to $MN_PROCS, else 1 where the GIL is enabled and the CPU count where it is not
    (free-threaded Python; see mn_runtime/_rt/gil.py). seed fixes the scheduler's random choices
    (steal victim order). runqsize shrinks the per-P ring (tests use it to reach overflow and
    stealing paths). schedtrace prints a scheduler summary to stderr every that many milliseconds.
    An exception escaping any goroutine ends run() by raising it, with the goroutine named in a note.
    chaos (default $MN_CHAOS) is a seed that turns on chaos mode: the scheduler perturbs its
    decisions, seeded, so races show up sooner; with procs=1 a seed replays the same interleaving
    (see mn_runtime/_rt/chaos.py). It also becomes the default seed.
    trace (default $MN_TRACE) records an execution trace to that file, written when run() ends
    (see mn_runtime.trace); $MN_DEBUG holds further settings (see mn_runtime.debug).
    clock (default $MN_CLOCK) is "real" (time.monotonic()), or "virtual" or a VirtualClock: a clock
    that starts at 0 and jumps to the next timer whenever every goroutine is blocked, so timers,
    sleeps and deadlines cost no real time (mn_runtime.time; docs/stress.md, "Virtual time").
    """
    if tls.m is not None:
        raise RuntimeError("mn_runtime.run() called from inside a goroutine; start more work with mn_runtime.go()")
    procs = _resolve_procs(procs)
    _gil.warn_if_gil_reenabled()
    if runqsize is None:
        runqsize = RUNQ_SIZE
    elif isinstance(runqsize, bool) or not isinstance(runqsize, int) or runqsize < 2:
        raise ValueError(f"runqsize must be an int >= 2, got {runqsize!r}")
    if chaos is None and os.environ.get("MN_CHAOS"):
        chaos = _chaos.parse_seed(os.environ["MN_CHAOS"], "MN_CHAOS")
    elif chaos is not None:
        chaos = _chaos.parse_seed(chaos, "chaos")
    if seed is None:
        seed = chaos if chaos is not None else int.from_bytes(os.urandom(4), "little")
    vclock = resolve_clock(clock)
    coro = _make_coro(main, args, {}, "run")
    if not _runlock.acquire(blocking=False):
        coro.close()
        raise RuntimeError("another mn_runtime.run() is already active in this process")
    try:
        result, err = _run(coro, procs, seed, runqsize, schedtrace, chaos, trace, vclock)
    finally:
        _runlock.release()
    if err is not None:
        # Raised here, not in _run: the traceback shows one runtime frame above the goroutine's.
        raise err
    return result


def _run(
    coro: Coroutine[Any, Any, Any],
    procs: int,
    seed: int,
    runqsize: int,
    schedtrace: float | None,
    chaos: int | None = None,
    trace: str | os.PathLike[str] | None = None,
    vclock: VirtualClock | None = None,
) -> tuple[Any, BaseException | None]:
    """_run runs the scheduler until main ends, and returns (main's result, the error to raise)."""
    from . import future as _future
    from .debug import debug_start, debug_stop, parse_mn_debug

    try:
        settings = parse_mn_debug(os.environ.get("MN_DEBUG"))
        _lock.configure(settings.lockcheck)  # before any lock is made
        _awaitcheck.configure(settings.awaitcheck or sys.flags.dev_mode)
    except ValueError:
        coro.close()
        raise
    sched = Sched(procs, runqcap=runqsize, seed=seed)
    if vclock is not None:
        sched.timers.set_clock(vclock)  # before chaos.install, which looks at it
    if chaos is not None:
        _chaos.Chaos(chaos, procs).install(sched)
    with sched.lock:
        for p in reversed(sched.allp):
            pidleput(sched, p)
    try:
        dbg = debug_start(sched, schedtrace, trace)
    except BaseException:
        sched.netpoll.close()
        coro.close()
        raise
    _tls.cur = sched
    interrupted: KeyboardInterrupt | None = None
    try:
        try:
            sched.netpoll.start()
            sched.sysmon.start()
            sched.newproc(coro, getattr(coro, "__qualname__", "main"), None, "run", main=True)
            _interrupt.wait_done(sched)
        except KeyboardInterrupt as e:  # Ctrl-C (_rt/interrupt.py), here or while threads start
            interrupted = e
            _interrupt.begin(sched, e)
    finally:
        sched.stop()
        try:
            _future.shutdown(sched)  # the process pool, the asyncio loop, Gs parked on futures
            interrupted = _shutdown(sched, interrupted)
        finally:
            try:
                try:
                    _future.close(sched)  # the pool's workers and sockets, once no M can touch them
                finally:
                    debug_stop(sched, dbg)
            finally:
                _tls.cur = None
                _interrupt.end()
                _awaitcheck.configure(False)
                # The scheduler's parts point back at it (a cycle only the collector frees): keep
                # no G in it, so main's G and what it references go by reference counting.
                sched.maing = None
    err = interrupted if interrupted is not None else sched.error
    if err is not None and sched.nlostpanics:
        err.add_note(_lostpanics_note(sched))
    if err is not None and not settings.fulltb:
        _tbfold.fold(err)
    return sched.result, err


def _lostpanics_note(sched: Sched) -> str:
    """_lostpanics_note: the note naming the goroutine errors that came after the one run() raises."""
    n = sched.nlostpanics
    named = "; ".join(sched.lostpanics)
    more = f"; and {n - len(sched.lostpanics)} more" if n > len(sched.lostpanics) else ""
    return f"{n} other goroutine{'s' if n != 1 else ''} raised after this one ended the run: {named}{more}"


def _shutdown(sched: Sched, interrupted: KeyboardInterrupt | None) -> KeyboardInterrupt | None:
    """_shutdown joins every runtime thread, closes the poller's fds and abandons the Gs left.

    After a Ctrl-C (interrupted, or one during the wait) it gives up on Ms still busy after a
    grace period, throws KeyboardInterrupt into the Gs left, and returns the KeyboardInterrupt for
    run() to raise: the one that came out of main, with main's frames (_rt/interrupt.py).
    """
    with sched.lock:
        ms = list(sched.allm)
    alive, interrupted = _interrupt.join_ms(sched, ms, interrupted)
    if interrupted is not None:
        return _abandon_interrupted(sched, alive, interrupted)
    sched.sysmon.join()
    sched.netpoll.join()
    sched.netpoll.close()
    left = sched.allgs.take_all()
    for gp in left:
        abandon(gp)
        coro = gp.coro
        gp.coro = None
        if coro is not None:
            try:
                coro.close()
            except BaseException:  # an abandoned G's finally may not await
                pass
    return None


def _abandon_interrupted(sched: Sched, alive: list[Any], interrupted: KeyboardInterrupt) -> KeyboardInterrupt:
    """_abandon_interrupted ends run() after Ctrl-C: Gs left get KeyboardInterrupt, main first;
    Gs still running on an abandoned M (alive) are left to it."""
    sched.sysmon.join()  # both leave their loops at once when the runtime stops
    sched.netpoll.join()
    sched.netpoll.close()  # an abandoned M never polls again: it is past its G's trap or in a syscall
    busy = {id(m.curg) for m in alive}
    left = sched.allgs.take_all()
    left.sort(key=lambda gp: gp is not sched.maing)
    out: KeyboardInterrupt | None = None
    nsys = 0
    for gp in left:
        if id(gp) in busy and gp.status is GStatus.RUNNING:
            continue
        if gp.status is GStatus.SYSCALL:
            nsys += 1
        abandon(gp)
        e = _interrupt.throw_into(gp)
        if gp is sched.maing and isinstance(e, KeyboardInterrupt):
            out = e
    if out is None:
        out = interrupted.with_traceback(None)
    if alive:
        out.add_note(
            f"mn_runtime: abandoned {len(alive)} thread(s) still busy {_interrupt.INTERRUPT_GRACE} s"
            f" after the interrupt ({nsys} inside a blocking syscall)"
        )
    return out


def go(fn: Callable[..., Awaitable[Any]] | Coroutine[Any, Any, Any], *args: Any, **kwargs: Any) -> Goroutine:
    """go starts fn(*args, **kwargs) as a new goroutine and returns its Goroutine handle.

    fn is an async function (or any callable returning a coroutine), or a coroutine object given
    without arguments. Group.go takes the same arguments, checked by the same code (_newcoro).
    """
    s = _tls.cur
    m = tls.m
    if s is None or m is None:
        _outside(fn, "mn_runtime.go")
    if type(fn) is _FunctionType and fn.__code__.co_flags & _CO_COROUTINE:
        # _newcoro's first case, inlined: the common case, an async def function, checks nothing.
        coro = fn(*args, **kwargs)
        name = fn.__qualname__
    else:
        coro, name = _newcoro(fn, args, kwargs, "go")
    # Where go() was called, as (code, instruction offset): reading f_lineno here would cost more
    # than the rest of newproc; stack.createdat_text renders it only when a dump needs it.
    f = _getframe(1)
    h = _new_object(Goroutine)  # _handle's body, inlined
    h._g = s.newproc(coro, name, m, f.f_code, f.f_lasti)
    return h


def _newcoro(
    fn: object, args: tuple[Any, ...], kwargs: dict[str, Any], who: str
) -> tuple[Coroutine[Any, Any, Any], str]:
    """_newcoro: the coroutine a new goroutine runs, fn(*args, **kwargs) or fn itself, and the
    name dumps and error notes give the goroutine; a TypeError saying why for anything else.
    The one check of what mn.go() and Group.go() take (who names the caller in errors)."""
    if type(fn) is _FunctionType and fn.__code__.co_flags & _CO_COROUTINE:
        return fn(*args, **kwargs), fn.__qualname__
    coro = _make_coro(fn, args, kwargs, who)
    return coro, getattr(fn, "__qualname__", None) or getattr(coro, "__qualname__", "?")


def _outside(fn: object, who: str) -> NoReturn:
    """_outside: go() or Group.go() called with no runtime on this thread; fn, if a coroutine
    object, is closed (it will never run, and would warn that it was never awaited)."""
    if is_coroutine(fn):
        fn.close()  # type: ignore[attr-defined]
    raise RuntimeError(f"{who}() called outside a running runtime: call it inside mn_runtime.run(main)")


def gosched() -> Awaitable[None]:
    """gosched yields the processor: the current goroutine goes to the back of the global queue."""
    if tls.m is None:
        _runtime()  # raises the error that says why
    if _awaitcheck.enabled:
        return _awaitcheck.wrap(gosched_trap(), "mn.gosched()")
    return gosched_trap()


def syscall(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Awaitable[Any]:
    """syscall runs the blocking call fn(*args, **kwargs) on this goroutine's thread, letting its
    P go to another thread meanwhile, and returns fn's result (or raises its exception)."""
    if not callable(fn):
        raise TypeError(f"syscall() needs a callable, got {type(fn).__name__}")
    if is_coroutine_function(fn):
        raise TypeError(f"syscall() runs blocking functions; {fn.__qualname__} is async: await it directly")
    _runtime()
    if _awaitcheck.enabled:
        return _awaitcheck.wrap(syscall_trap(fn, args, kwargs), "mn.syscall()")
    return syscall_trap(fn, args, kwargs)


def current() -> Goroutine:
    """current returns the handle of the running goroutine (equal to the one go() returned)."""
    m = tls.m
    if m is None or _tls.cur is None:
        _runtime()  # raises the error that says why
    assert m is not None and m.curg is not None
    return _handle(m.curg)


def num_goroutine() -> int:
    """num_goroutine counts goroutines that exist (not yet finished)."""
    return len(_runtime().allgs)


def gomaxprocs() -> int:
    """gomaxprocs is the number of Ps, fixed for the life of a run()."""
    return _runtime().procs
