"""timers: the runtime's timer heap (Go's time.go, one heap not per P).

A Timer calls f(arg) when `when` (time.monotonic() seconds) has passed, then again every `period`
seconds if period > 0, on whichever thread notices first: the poller thread, which sleeps in
epoll_wait until the earliest deadline (goready collects the Gs it readies into its batch), or an
M looking for work (find_runnable, Go's checkTimers), whose P then runs the readied G next. f must
not block: it readies Gs or does a non-blocking channel send.

Any thread may add, stop or reset a timer; the heap and every Timer's `pending`/`gen` change only
under `TimerHeap.lock`. Stopping or resetting is lazy: the entry stays in the heap with a stale
generation and is skipped when it reaches the top; the heap is rebuilt when more than half of it
is stale. A timer added earlier than the poller's current wake-up time breaks its epoll_wait
(netpollBreak), so no timer waits behind a later one.

A timer never fires early: epoll_wait's millisecond timeout is rounded up, and the poller checks
the clock again before firing.

The clock. Deadlines are seconds on the heap's clock, `TimerHeap.now()`: time.monotonic() by
default (RealClock), or a VirtualClock under `run(clock="virtual")`. A VirtualClock stands still
while anything runs; it moves only in `VirtualClock.idle_locked`, which checkdead calls under
sched.lock when every M is idle, nothing is queued, neither the poller nor sysmon is handing Gs
over, and timers are pending: it jumps to the earliest deadline and asks the poller to fire what
is due (the `fire` request, taken under sched.lock by the poller as it marks itself busy). Under
that lock "nothing can run" is exact (idle.py, checkdead), so the clock never jumps while a G is
about to run. While a G waits on an fd the jump also waits until the poller, armed for fd events,
has seen none for `io_grace` real seconds (netpoll.py): real I/O keeps real time.

Durations and deadlines (`duration`, `deadline`): every number is valid. NaN is a ValueError, a
non-number a TypeError; math.inf, and anything NEVER or more seconds away, means "never": no timer
is armed, so a G that waits for it is blocked for good (checkdead counts it). What the poller
passes to epoll_wait is clamped to MAX_POLL_WAIT (epoll's limit is about 24.8 days). A deadline
that looks like time.time() (WALL_GAP or more beyond the clock, and within WALL_GAP of
time.time()) is a ValueError naming time.monotonic(): the usual slip of Go users.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import Throw
from . import lock as _lock

if TYPE_CHECKING:
    from .sched import Sched

# NEVER: a duration or deadline this many seconds away (100 years) or more never comes.
NEVER = 100 * 365.25 * 86400.0
# WALL_GAP: a deadline this far beyond the clock and this close to time.time() was computed from
# the wall clock (ten years: monotonic clocks count from boot, time.time() from 1970).
WALL_GAP = 10 * 365.25 * 86400.0
# MAX_POLL_WAIT: the longest single wait the poller asks epoll for; it then looks again.
MAX_POLL_WAIT = 86400.0
# IO_GRACE: VirtualClock's default real wait for fd events before it jumps while Gs wait on fds.
IO_GRACE = 2e-3


def duration(what: str, s: object) -> float | None:
    """duration checks a number of seconds: float, or None for "never" (inf, or NEVER or more).
    Negative durations are valid (already past)."""
    if isinstance(s, bool) or not isinstance(s, (int, float)):
        raise TypeError(f"{what} needs a number of seconds, got {type(s).__name__}")
    s = float(s)
    if math.isnan(s):
        raise ValueError(f"{what} got NaN seconds")
    if s >= NEVER:
        return None
    return s


def deadline(what: str, t: object, now: float) -> float | None:
    """deadline checks an absolute deadline on a clock that reads `now`: float, or None for
    "never" (inf, or NEVER or more seconds after now). -inf and past values are valid (expired)."""
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        raise TypeError(f"{what} needs a deadline in time.monotonic() seconds, got {type(t).__name__}")
    t = float(t)
    if math.isnan(t):
        raise ValueError(f"{what} got a NaN deadline")
    if t - now >= WALL_GAP and abs(t - time.time()) < WALL_GAP:
        raise ValueError(
            f"{what} got {t!r}, which looks like time.time(): deadlines are time.monotonic() seconds"
            " (mn.now() under virtual time); use mn.now() + seconds, or the relative form"
        )
    if t - now >= NEVER:
        return None
    return t


class RealClock:
    """RealClock: the runtime's default clock, time.monotonic(). Stateless."""

    virtual = False

    @staticmethod
    def now() -> float:
        return time.monotonic()

    def __repr__(self) -> str:
        return "RealClock()"


class VirtualClock:
    """VirtualClock: a clock that moves only when every goroutine is blocked and the earliest
    thing that can wake one is a timer; then it jumps to that timer's deadline (module docstring).

    `mn.run(main, clock=VirtualClock())` (or `clock="virtual"`) runs under it. `now()` starts at
    `start` and may be read after run() returned; `jumps` counts the jumps. `io_grace`: how long
    (real seconds) fd events must stay away before the clock jumps while a goroutine waits on an
    fd. One run at a time may use a clock.

    Locks: `_now`, `jumps`, `fire` and `wantquiet` change only under sched.lock; `_now`
    also only under the timer heap's lock, so a G computing a deadline from now() on a running M
    reads a value no jump can change under it (no jump happens while an M runs). Reads of `_now`
    are single attribute loads.
    """

    virtual = True

    def __init__(self, start: float = 0.0, io_grace: float = IO_GRACE) -> None:
        for name, v in (("start", start), ("io_grace", io_grace)):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"VirtualClock {name} must be a number of seconds, got {type(v).__name__}")
        if not math.isfinite(start):
            raise ValueError(f"VirtualClock start must be finite, got {start!r}")
        if not 0 <= io_grace <= 1:
            raise ValueError(f"VirtualClock io_grace must be between 0 and 1 second, got {io_grace!r}")
        self._now = float(start)
        self.io_grace = float(io_grace)
        self.jumps = 0
        self.fire = False  # a jump asked the poller to fire the timers now due (under sched.lock)
        # wantquiet: idle_locked asks the poller to watch the fds for io_grace (under sched.lock).
        self.wantquiet = False

    def now(self) -> float:
        """now is the virtual time in seconds."""
        return self._now

    def idle_locked(self, sched: Sched, fdquiet: bool) -> None:
        """idle_locked is the clock's decision at quiescence: caller holds sched.lock, and checkdead
        found every M idle, nothing queued, the poller and sysmon idle, and timers pending.

        If a G waits on an fd and the poller has not just watched the fds stay quiet for io_grace
        (fdquiet), the poller is woken to do that first (its next round calls back here). Otherwise
        the clock jumps to the earliest deadline (if it is not already there) and the poller is
        asked to fire what is due."""
        if _lock.lockcheck:
            _lock.assert_held(sched.lock, "VirtualClock.idle_locked")
        np = sched.netpoll
        if not fdquiet and np.waiting():
            self.wantquiet = True
            # The poller takes the request at the top of its next round. Called by the poller
            # itself (the end of its round), no wake-up: one would end its quiet watch at once,
            # unquiet, and the round after would ask again, for ever.
            if threading.current_thread() is not np.thread:
                np.wakeup()
            return
        timers = sched.timers
        with timers.lock:
            when = timers.next_when()
            if when is None:
                return
            if when > self._now:
                self._now = when
                self.jumps += 1
        self.fire = True
        np.wakeup()

    def take_wantquiet(self) -> bool:
        """take_wantquiet (the poller; caller holds sched.lock) takes the request to watch the fds."""
        w = self.wantquiet
        self.wantquiet = False
        return w

    def take_fire(self) -> bool:
        """take_fire (the poller; caller holds sched.lock) takes the request to fire due timers."""
        f = self.fire
        self.fire = False
        return f

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now!r}, jumps={self.jumps})"


Clock = RealClock | VirtualClock


class Timer:
    """Timer: f(arg) at `when`, then every `period` seconds if period > 0 (Go's runtime timer)."""

    __slots__ = ("arg", "f", "gen", "pending", "period", "seq", "when")

    def __init__(self, f: Callable[[Any], None], arg: Any, period: float = 0.0) -> None:
        self.f = f
        self.arg = arg
        self.when = 0.0
        self.period = period
        self.pending = False  # in the heap with a live generation (guarded by TimerHeap.lock)
        self.gen = 0
        self.seq = 0  # times fired; for observers


class TimerHeap:
    def __init__(self, sched: Sched) -> None:
        self.sched = sched
        self.lock = _lock.new("timers.lock")
        self.heap: list[tuple[float, int, int, Timer]] = []
        self.npending = 0
        self.nstale = 0
        self.counter = 0
        # When the poller will next look at the heap by itself; math.inf while it sleeps without
        # a deadline, -math.inf while it is awake (so adds need not break its wait).
        self.sleep_until = -math.inf
        self.nfired = 0
        # when0: the earliest deadline in the heap (math.inf if none), maintained under the lock and
        # read racily by Ms (Go's pp.timer0When); stale entries may leave it early, never late.
        self.when0 = math.inf
        # firelock is held by the thread firing timers from the moment it takes them off the heap
        # until their Gs are on a run queue, so timers fired later cannot be queued ahead of
        # timers fired earlier: firing order is deadline order, and so is run order. The poller
        # waits for it; an M only tries it and skips its check if it is taken. It is the outermost
        # lock: its holder takes the heap's lock, pollDesc, channel, G and run-queue locks.
        self.firelock = _lock.new("timers.firelock")
        # The clock deadlines are on (module docstring); set before any thread starts.
        self.clock: Clock = RealClock()
        self.virtual: VirtualClock | None = None
        self.now: Callable[[], float] = time.monotonic

    def set_clock(self, clock: Clock) -> None:
        """set_clock puts the heap on clock; run() calls it before any thread of the runtime starts."""
        self.clock = clock
        self.virtual = clock if isinstance(clock, VirtualClock) else None
        self.now = clock.now
        if self.virtual is not None:
            # A clock reused from an earlier run() keeps its time, not that run's requests.
            self.virtual.fire = self.virtual.wantquiet = False

    def pending(self) -> int:
        """pending counts timers that will still fire (checkdead reads it racily under sched.lock)."""
        return self.npending

    def _push(self, t: Timer, when: float) -> bool:
        """_push (lock held) arms t for when; True if the poller must be woken to honour it."""
        if _lock.lockcheck:
            _lock.assert_held(self.lock, "addtimer")
        t.when = when
        t.pending = True
        self.counter += 1
        heapq.heappush(self.heap, (when, self.counter, t.gen, t))
        self.npending += 1
        if when < self.when0:
            self.when0 = when
        # Under a VirtualClock the poller fires only at quiescence (VirtualClock.idle_locked), so
        # an add never breaks its wait: which G a due timer readies, and when, stays deterministic.
        return when < self.sleep_until and self.virtual is None

    def add(self, t: Timer, when: float) -> None:
        """add arms t, which must not be pending (Go's addtimer)."""
        with self.lock:
            if t.pending:
                raise Throw("addtimer: timer already pending")
            wake = self._push(t, when)
        if wake:
            self.sched.netpoll.wakeup()

    def stop(self, t: Timer) -> bool:
        """stop disarms t; True if it was pending, i.e. it will now not fire (Go's deltimer)."""
        with self.lock:
            if not t.pending:
                return False
            self._drop(t)
            return True

    def reset(self, t: Timer, when: float, period: float | None = None) -> bool:
        """reset re-arms t for when; True if it was pending before (Go's modtimer)."""
        with self.lock:
            was = t.pending
            if was:
                self._drop(t)
            if period is not None:
                t.period = period
            wake = self._push(t, when)
        if wake:
            self.sched.netpoll.wakeup()
        return was

    def _drop(self, t: Timer) -> None:
        """_drop (lock held) disarms t lazily: its heap entry goes stale."""
        if _lock.lockcheck:
            _lock.assert_held(self.lock, "deltimer")
        t.pending = False
        t.gen += 1
        self.npending -= 1
        self.nstale += 1
        if self.nstale > 64 and self.nstale > len(self.heap) // 2:
            self.heap = [e for e in self.heap if e[2] == e[3].gen and e[3].pending]
            heapq.heapify(self.heap)
            self.nstale = 0

    def next_when(self) -> float | None:
        """next_when (lock held) drops stale entries off the top and returns the earliest deadline."""
        if _lock.lockcheck:
            _lock.assert_held(self.lock, "next_when")
        heap = self.heap
        while heap:
            when, _, gen, t = heap[0]
            if gen == t.gen and t.pending:
                return when
            heapq.heappop(heap)
            self.nstale -= 1
        return None

    def run_expired(self, now: float, limit: int = 0) -> int:
        """run_expired calls f for every timer due by now (at most limit of them, 0: no limit), in
        deadline order, on the calling thread (the poller, or an M in find_runnable); returns how
        many. Each due timer is taken off the heap under the lock, so it fires on one thread only."""
        due: list[Timer] = []
        with self.lock:
            heap = self.heap
            while heap and heap[0][0] <= now and not (limit and len(due) >= limit):
                when, _, gen, t = heapq.heappop(heap)
                if gen != t.gen or not t.pending:
                    self.nstale -= 1
                    continue
                t.pending = False
                self.npending -= 1
                t.seq += 1
                if t.period > 0:
                    # Skip ticks missed while the poller was late, as Go's runOneTimer does.
                    nxt = when + t.period * (1 + int((now - when) // t.period))
                    self._push(t, nxt)
                due.append(t)
            when = self.next_when()
            self.when0 = math.inf if when is None else when
            self.nfired += len(due)
        for t in due:
            t.f(t.arg)
        return len(due)

    def wait_timeout(self) -> float | None:
        """wait_timeout (poller) marks the poller asleep until the earliest deadline, returned as a
        timeout for epoll_wait: None to wait without one, at most MAX_POLL_WAIT. Under a
        VirtualClock always None: the clock does not move while the poller waits."""
        with self.lock:
            when = self.next_when()
            if self.virtual is not None:
                when = None
            self.sleep_until = math.inf if when is None else when
        if when is None:
            return None
        return min(max(0.0, when - self.now()), MAX_POLL_WAIT)

    def awake(self) -> None:
        with self.lock:
            self.sleep_until = -math.inf
