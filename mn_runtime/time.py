"""time: everything about time in one module (Go's time package, as far as the runtime backs it).

    await mn.sleep(0.5)                     # park this goroutine for half a second
    v = await mn.after(1.0).recv()          # a channel that receives once, a second from now
    t = mn.Timer(2.0); t.stop(); t.reset(3) # a stoppable one-shot timer (t.c)
    tk = mn.Ticker(0.1); await tk.c.recv()  # a channel that ticks every 0.1 s until tk.stop()
    for_ever = mn.tick(1.0)                 # a ticker channel that is never stopped
    mn.after_func(5.0, fn, x)               # fn(x) in a new goroutine 5 s from now (stop() cancels)
    t0 = mn.now(); ...; mn.since(t0)        # the runtime's clock, in seconds

The clock. `now()` is time.monotonic() seconds, or under `mn.run(main, clock="virtual")` (or a
VirtualClock) a virtual clock that starts at 0 and moves only when every goroutine is blocked and
the earliest thing that can wake one is a timer; then it jumps there (see docs/stress.md, "Virtual
time"). Every timer, sleep, context deadline and socket deadline is on this clock, so absolute
deadlines are `mn.now() + seconds` (which is time.monotonic() + seconds without virtual time).

Durations and deadlines. Every number is valid: a negative duration or a past deadline is already
due, math.inf (and anything 100 years or more away) means "never" (no timer is armed: a goroutine
in `sleep(math.inf)` is blocked for good, and counts as blocked for the deadlock detector). NaN is
a ValueError, a non-number a TypeError, and a deadline that looks like time.time() (wall-clock
seconds since 1970 instead of the monotonic clock) a ValueError that says so.

Timers as channels. A Timer, Ticker or after() sends the firing instant (on the runtime's clock)
into a channel of capacity 1 without blocking (Go's sendTime): if nobody took the previous tick,
the new one is dropped, so a slow reader of a Ticker sees ticks skipped, never queued up. As in Go
1.23, stop() and reset() also drain the channel, so no value from before the call is received after
it. Timer, Ticker and AfterFunc answer stop() and reset() alike: True if the call stopped a timer
that was still pending (a Ticker until it is stopped; a Timer or AfterFunc until it fires), False
if it had already fired or been stopped.
"""

from __future__ import annotations

import os
import time as _time
import types
from collections.abc import Awaitable, Callable
from typing import Any

from ._rt import awaitcheck as _awaitcheck
from ._rt import lock as _lock
from ._rt import tls as _tls
from ._rt.corofn import is_coroutine_function
from ._rt.g import G, WaitReason
from ._rt.park import goready
from ._rt.sched import Sched
from ._rt.timers import NEVER, VirtualClock, deadline, duration
from ._rt.timers import Timer as _RtTimer
from ._rt.tls import tls
from ._rt.traps import gosched_trap, park_trap
from .chan import Chan

__all__ = [
    "NEVER",
    "AfterFunc",
    "Ticker",
    "Timer",
    "VirtualClock",
    "after",
    "after_func",
    "now",
    "since",
    "sleep",
    "tick",
    "until",
]


def _sched_cur(what: str) -> Sched:
    s = _tls.cur
    if s is None:
        raise RuntimeError(f"{what} needs a running runtime: call it inside mn_runtime.run(main)")
    return s


# --- the clock ---


def now() -> float:
    """now is the runtime's clock in seconds: time.monotonic(), or the virtual clock's time under
    run(clock="virtual"). Outside a run() it is time.monotonic()."""
    s = _tls.cur
    return s.timers.now() if s is not None else _time.monotonic()


def since(t: float) -> float:
    """since is the time elapsed since t (a value of now()): now() - t."""
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        raise TypeError(f"since() needs a time from mn.now(), got {type(t).__name__}")
    return now() - t


def until(t: float) -> float:
    """until is the time left until the deadline t (on now()'s clock): t - now(); negative once
    t has passed."""
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        raise TypeError(f"until() needs a deadline on mn.now()'s clock, got {type(t).__name__}")
    return t - now()


def deadline_after(what: str, seconds: object) -> float | None:
    """deadline_after is the absolute deadline `seconds` from now on the runtime's clock, or None
    for "never" (None, math.inf, NEVER or more). The relative form of every deadline API."""
    if seconds is None:
        return None
    d = duration(what, seconds)
    return None if d is None else now() + d


def check_deadline(what: str, t: object) -> float | None:
    """check_deadline checks an absolute deadline (None, a number on now()'s clock): float, or
    None for no deadline (None, math.inf, NEVER or more away)."""
    if t is None:
        return None
    return deadline(what, t, now())


# --- sleep ---


def _wake_sleeper(gp: G) -> None:
    goready(gp)


def _sleepcommit(gp: G, arg: tuple[_RtTimer, float]) -> bool:
    """_sleepcommit (the M, gp now WAITING) arms the timer that readies gp."""
    t, when = arg
    t.arg = gp
    s = _tls.cur
    assert s is not None
    s.timers.add(t, when)
    return True


def _sleepforever(gp: G, arg: None) -> bool:
    """_sleepforever: a sleep that never ends arms nothing; gp stays parked for good."""
    return True


@types.coroutine
def _noop() -> Any:
    return
    yield  # pragma: no cover - makes this a generator


def sleep(seconds: float) -> Awaitable[None]:
    """sleep parks the goroutine for at least `seconds` on the runtime's clock; 0 yields like
    gosched, negative returns at once, math.inf (or 100 years or more) sleeps for good."""
    d = duration("sleep()", seconds)
    s = _tls.cur
    if s is None or tls.m is None:
        raise RuntimeError("this mn_runtime operation needs a running runtime: call it inside mn_runtime.run(main)")
    if _awaitcheck.enabled:  # python -X dev or MN_DEBUG=awaitcheck=1 (_rt/awaitcheck.py)
        return _awaitcheck.wrap(_sleep(s, d), "mn.sleep()")
    return _sleep(s, d)


def _sleep(s: Sched, d: float | None) -> Awaitable[None]:
    if d is None:
        return park_trap(_sleepforever, None, WaitReason.SLEEP)
    if d < 0:
        return _noop()
    if d == 0:
        return gosched_trap()
    # timers.now(): the clock the heap keys on (replay mode also notes the reading, chaos.py).
    return park_trap(_sleepcommit, (_RtTimer(_wake_sleeper, None), s.timers.now() + d), WaitReason.SLEEP)


# --- timers as channels ---


def _sendtime(arg: tuple[Chan[float], Sched]) -> None:
    c, s = arg
    c.try_send(s.timers.now())


def after(seconds: float) -> Chan[float]:
    """after returns a channel that receives now() once, `seconds` from now (never, for
    math.inf)."""
    d = duration("after()", seconds)
    s = _sched_cur("after()")
    c: Chan[float] = Chan(1)
    if d is not None:
        s.timers.add(_RtTimer(_sendtime, (c, s)), s.timers.now() + max(d, 0.0))
    return c


class _ChanTimer:
    """_ChanTimer: a runtime timer sending into `c`, with stop/reset that leave no stale value.

    A timer fires outside the heap's lock (on the poller or an M), so a stop() can come between
    the heap taking the timer off and the send. `_stopped` and `_when` (under `_lk`) close that
    window: _fire sends only if the timer is not stopped and its current arming is due, so a
    firing that belongs to an arming before stop() or reset() is dropped. `_when` is None for an
    arming that never fires (no runtime timer); it still counts as pending for stop().
    """

    __slots__ = ("_lk", "_s", "_stopped", "_t", "_when", "c")

    def __init__(
        self, what: str, seconds: float | None, period: float, fire: Callable[[Any], None] | None = None
    ) -> None:
        self._s = _sched_cur(what)
        self._lk = _lock.new("timer.lock")
        self.c: Chan[float] = Chan(1)
        self._stopped = False
        self._when: float | None = None
        self._t = _RtTimer(fire or _fire, self, period)
        with self._lk:
            self._arm(seconds, period)

    def _arm(self, seconds: float | None, period: float) -> None:
        """_arm (caller holds _lk; the runtime timer is not pending) arms for seconds from now."""
        if seconds is None:
            self._when = None
            return
        timers = self._s.timers
        self._when = timers.now() + max(seconds, 0.0)
        timers.reset(self._t, self._when, period)

    def _disarm(self) -> bool:
        """_disarm (caller holds _lk) stops the runtime timer and drains c; True if it was
        pending. A never-firing arming counts while not stopped, and so does a periodic one (a
        Ticker never expires: asked from its runtime timer, it could be off the heap while it
        fires)."""
        t = self._t
        was = self._s.timers.stop(t)
        if t.period > 0 or self._when is None:
            was = not self._stopped
        self.c.try_recv()
        return was

    def _stop(self) -> bool:
        with self._lk:
            was = self._disarm()
            self._stopped = True
        return was

    def _reset(self, seconds: float | None, period: float) -> bool:
        with self._lk:
            was = self._disarm()
            self._stopped = False
            self._arm(seconds, period)
        return was


def _fire(t: _ChanTimer) -> None:
    now = t._s.timers.now()
    with t._lk:
        if not t._stopped and t._when is not None and now >= t._when:
            t.c.try_send(now)


class Timer(_ChanTimer):
    """Timer(seconds): `c` receives now() once, `seconds` from now, unless stopped (Go's
    time.Timer; math.inf: a timer that never fires until reset)."""

    __slots__ = ()

    def __init__(self, seconds: float) -> None:
        super().__init__("Timer()", duration("Timer()", seconds), 0.0)

    def stop(self) -> bool:
        """stop prevents the timer from firing: True if it was still pending, False if it had
        already fired or been stopped. Drains c either way."""
        return self._stop()

    def reset(self, seconds: float) -> bool:
        """reset re-arms the timer for `seconds` from now; True if it was pending. Drains c."""
        return self._reset(duration("Timer.reset()", seconds), 0.0)


def _period(what: str, seconds: object) -> float | None:
    d = duration(what, seconds)
    if d is not None and d <= 0:
        raise ValueError(f"{what} needs a positive interval, got {seconds}")
    return d


class Ticker(_ChanTimer):
    """Ticker(seconds): `c` receives now() every `seconds` until stop() (Go's time.Ticker;
    math.inf: a ticker that never ticks until reset)."""

    __slots__ = ()

    def __init__(self, seconds: float) -> None:
        d = _period("Ticker()", seconds)
        super().__init__("Ticker()", d, d or 0.0)

    def stop(self) -> bool:
        """stop turns the ticker off: True if it was running, False if it had already been
        stopped (Timer.stop's answer: did this call stop it?). Drains c either way, so no tick is
        received after it returns."""
        return self._stop()

    def reset(self, seconds: float) -> bool:
        """reset stops the ticker and restarts it with period `seconds`; True if it was running
        (stop's answer). Drains c."""
        d = _period("Ticker.reset()", seconds)
        return self._reset(d, d or 0.0)


async def _call(fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    await fn(*args, **kwargs)


def _fire_func(t: AfterFunc) -> None:
    """_fire_func (where timers fire: the poller or an M) starts t's goroutine if t's current
    arming is due and not stopped. Making the G runs no user code: _call's coroutine starts
    when an M runs it, so a failing fn fails in its goroutine, as after go()."""
    now = t._s.timers.now()
    with t._lk:
        if t._stopped or t._when is None or now < t._when:
            return
        t._stopped = True  # fired: stop() now reports False, reset() re-arms
    t._s.newproc(_call(t._fn, t._args, t._kwargs), t._name, None, "after_func")


class AfterFunc(_ChanTimer):
    """AfterFunc(seconds, fn, *args, **kwargs): starts `fn(*args, **kwargs)` (an async function)
    as a new goroutine `seconds` from now, unless stopped (Go's time.AfterFunc). `c` is unused."""

    __slots__ = ("_args", "_fn", "_kwargs", "_name")

    def __init__(self, seconds: float, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> None:
        if not is_coroutine_function(fn):
            raise TypeError(f"after_func() needs an async function, got {type(fn).__name__}: {fn!r}")
        d = duration("after_func()", seconds)
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self._name = getattr(fn, "__qualname__", "after_func")
        super().__init__("after_func()", d, 0.0, _fire_func)

    def stop(self) -> bool:
        """stop prevents the call: True if it was still pending, False if fn already started or
        the timer was stopped. A goroutine already started is not stopped."""
        return self._stop()

    def reset(self, seconds: float) -> bool:
        """reset re-arms the timer for `seconds` from now (again after it fired); True if it was
        pending."""
        return self._reset(duration("AfterFunc.reset()", seconds), 0.0)


def after_func(seconds: float, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> AfterFunc:
    """after_func starts fn(*args, **kwargs) in its own goroutine `seconds` from now and returns
    the timer, whose stop() cancels the call (Go's time.AfterFunc)."""
    return AfterFunc(seconds, fn, *args, **kwargs)


def tick(seconds: float) -> Chan[float]:
    """tick returns a channel that receives now() every `seconds` for the rest of the run (Go's
    time.Tick): a Ticker nobody stops. Use Ticker when it must stop."""
    d = _period("tick()", seconds)
    return _ChanTimer("tick()", d, d or 0.0).c


def resolve_clock(clock: object) -> VirtualClock | None:
    """resolve_clock checks run()'s clock argument (default $MN_CLOCK): None or "real" for
    time.monotonic(), "virtual" for a fresh VirtualClock, or a VirtualClock (which keeps its time
    from one run to the next). Returns the VirtualClock, or None for the real clock."""
    if clock is None:
        env = os.environ.get("MN_CLOCK", "").strip()
        if not env:
            return None
        if env not in ("real", "virtual"):
            raise ValueError(f"MN_CLOCK must be 'real' or 'virtual', got {env!r}")
        clock = env
    if isinstance(clock, VirtualClock):
        return clock
    if isinstance(clock, str):
        if clock == "virtual":
            return VirtualClock()
        if clock == "real":
            return None
        raise ValueError(f"clock must be 'real', 'virtual' or a VirtualClock, got {clock!r}")
    raise TypeError(f"clock must be 'real', 'virtual' or a VirtualClock, got {type(clock).__name__}")
