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
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import lock as _lock

if TYPE_CHECKING:
    from .sched import Sched


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
        self.lock = _lock.new(_lock.RANK_LEAF, "timers.lock")
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
        self.firelock = _lock.new(_lock.RANK_FIRE, "timers.firelock")

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
        return when < self.sleep_until

    def add(self, t: Timer, when: float) -> None:
        """add arms t, which must not be pending (Go's addtimer)."""
        with self.lock:
            if t.pending:
                from ..errors import Throw

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
        timeout for epoll_wait: None to wait without one."""
        with self.lock:
            when = self.next_when()
            self.sleep_until = math.inf if when is None else when
        if when is None:
            return None
        return max(0.0, when - time.monotonic())

    def awake(self) -> None:
        with self.lock:
            self.sleep_until = -math.inf
