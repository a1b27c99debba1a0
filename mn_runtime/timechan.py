"""timechan: timers as channels (Go's time.After, time.Timer, time.Ticker).

Each is a runtime timer (sched.timers) whose function, on the poller thread, does a non-blocking
send of the firing instant (time.monotonic()) into a channel of capacity 1 (Go's sendTime): if
nobody has taken the previous tick the new one is dropped, so a slow reader of a Ticker sees
ticks skipped, never queued up.

As in Go 1.23, stop() and reset() also drain the channel, so no value from before the call is
received after it; stop() returns True if it prevented the timer from firing.
"""

from __future__ import annotations

import math
import threading
import time

from ._rt import sched as _sched
from ._rt.sched import Sched
from ._rt.timers import Timer as _RtTimer
from .chan import Chan

__all__ = ["Ticker", "Timer", "after"]


def _sendtime(c: Chan[float]) -> None:
    c.try_send(time.monotonic())


def _seconds(what: str, s: object, positive: bool = False) -> float:
    if isinstance(s, bool) or not isinstance(s, (int, float)):
        raise TypeError(f"{what} needs a number of seconds, got {type(s).__name__}")
    if math.isnan(s):
        raise ValueError(f"{what} got NaN seconds")
    if positive and s <= 0:
        raise ValueError(f"{what} needs a positive interval, got {s}")
    return float(s)


def _sched_cur(what: str) -> Sched:
    s = _sched.cur
    if s is None:
        raise RuntimeError(f"{what} needs a running runtime: call it inside mn_runtime.run(main)")
    return s


def after(seconds: float) -> Chan[float]:
    """after returns a channel that receives time.monotonic() once, `seconds` from now."""
    seconds = _seconds("after()", seconds)
    s = _sched_cur("after()")
    c: Chan[float] = Chan(1)
    s.timers.add(_RtTimer(_sendtime, c), time.monotonic() + max(seconds, 0.0))
    return c


class _ChanTimer:
    """_ChanTimer: a runtime timer sending into `c`, with stop/reset that leave no stale value.

    A timer fires outside the heap's lock (on the poller or an M), so a stop() can come between
    the heap taking the timer off and the send. `_stopped` and `_when` (under `_lk`) close that window:
    _fire sends only if the timer is not stopped and its current arming is due, so a firing that
    belongs to an arming before stop() or reset() is dropped.
    """

    __slots__ = ("_lk", "_s", "_stopped", "_t", "_when", "c")

    def __init__(self, what: str, seconds: float, period: float) -> None:
        self._s = _sched_cur(what)
        self._lk = threading.Lock()
        self.c: Chan[float] = Chan(1)
        self._stopped = False
        self._when = time.monotonic() + max(seconds, 0.0)
        self._t = _RtTimer(_fire, self, period)
        self._s.timers.add(self._t, self._when)

    def _stop(self) -> bool:
        with self._lk:
            self._stopped = True
            was = self._s.timers.stop(self._t)
            self.c.try_recv()
        return was

    def _reset(self, seconds: float, period: float) -> bool:
        with self._lk:
            was = self._s.timers.stop(self._t)
            self.c.try_recv()
            self._stopped = False
            self._when = time.monotonic() + max(seconds, 0.0)
            self._s.timers.reset(self._t, self._when, period)
        return was


def _fire(t: _ChanTimer) -> None:
    now = time.monotonic()
    with t._lk:
        if not t._stopped and now >= t._when:
            t.c.try_send(now)


class Timer(_ChanTimer):
    """Timer(seconds): `c` receives time.monotonic() once, `seconds` from now, unless stopped."""

    __slots__ = ()

    def __init__(self, seconds: float) -> None:
        super().__init__("Timer()", _seconds("Timer()", seconds), 0.0)

    def stop(self) -> bool:
        """stop prevents the timer from firing: True if it was still pending, False if it had
        already fired or been stopped. Drains c either way."""
        return self._stop()

    def reset(self, seconds: float) -> bool:
        """reset re-arms the timer for `seconds` from now; True if it was pending. Drains c."""
        return self._reset(_seconds("Timer.reset()", seconds), 0.0)


class Ticker(_ChanTimer):
    """Ticker(seconds): `c` receives time.monotonic() every `seconds` until stop()."""

    __slots__ = ()

    def __init__(self, seconds: float) -> None:
        seconds = _seconds("Ticker()", seconds, positive=True)
        super().__init__("Ticker()", seconds, seconds)

    def stop(self) -> None:
        """stop turns the ticker off; no tick is received after it returns."""
        self._stop()

    def reset(self, seconds: float) -> None:
        """reset stops the ticker and restarts it with period `seconds`."""
        seconds = _seconds("Ticker.reset()", seconds, positive=True)
        self._reset(seconds, seconds)
