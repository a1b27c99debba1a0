"""sync: Go's sync package (WaitGroup, Mutex, RWMutex, Once, Cond) and a weighted FIFO Semaphore
(golang.org/x/sync/semaphore), all parking Gs through the runtime's gopark/goready.

Each primitive keeps its state under one private runtime lock (`_lk`, "sync.lock" in lock.LOCKS),
held only for a few lines and never across a park, and its waiters in a parking lot guarded by that
lock (`_rt/sema.py`): a waiter queues itself on the lot under `_lk` and parks with goparkunlock,
which releases `_lk` once the G is parked, so whoever wakes it takes `_lk` first and finds the G
already WAITING. A waker decides everything under `_lk` (often handing ownership straight to the
waiter, which then needs no retry: an unpark with handoff), takes the waiters off the lot, and
readies them after releasing `_lk`. An uncontended operation never touches the lot beyond reading
whether it is empty.

Every primitive reports its statistics: `stats()` returns a frozen snapshot (its state, the
waiters now, and the lot's counters of parks, unparks and hand-offs), taken under `_lk`.

Every operation that completes without parking checks g.preempt (cooperative preemption).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._rt import lock as _lock
from ._rt.g import G, WaitReason
from ._rt.park import gopark, goparkunlock, goready, gosched, preempt_requested
from ._rt.sema import ParkingLot, readyall
from ._rt.tls import tls

if TYPE_CHECKING:
    from ._rt.waitq import Sudog

__all__ = [
    "Cond",
    "CondStats",
    "Mutex",
    "MutexStats",
    "Once",
    "OnceStats",
    "RWMutex",
    "RWMutexStats",
    "Semaphore",
    "SemaphoreStats",
    "WaitGroup",
    "WaitGroupStats",
]

# A waiter that has waited longer than this puts a Mutex into starvation mode (Go's
# starvationThresholdNs).
STARVATION_THRESHOLD = 1e-3


def _curg(what: str) -> G:
    m = tls.m
    gp = m.curg if m is not None else None
    if gp is None:
        raise RuntimeError(f"{what} needs a goroutine: call it inside mn_runtime.run(main)")
    return gp


_newlock = _lock.new


@dataclass(frozen=True, slots=True)
class WaitGroupStats:
    """A WaitGroup's state and waits at one moment (WaitGroup.stats())."""

    count: int  # the counter
    waiters: int  # Gs parked in wait() now
    parks: int  # waits that parked, ever
    unparks: int  # waiters woken by the counter reaching zero, ever


@dataclass(frozen=True, slots=True)
class MutexStats:
    """A Mutex's state and waits at one moment (Mutex.stats())."""

    locked: bool
    starving: bool  # in starvation mode: unlock hands the mutex to the head waiter
    waiters: int  # Gs parked in lock() now
    parks: int  # parks in lock(), ever; a woken waiter that lost to a newcomer parks again
    unparks: int  # waiters woken by unlock, ever
    handoffs: int  # of those, the ones handed the mutex itself (starvation mode)


@dataclass(frozen=True, slots=True)
class RWMutexStats:
    """An RWMutex's state and waits at one moment (RWMutex.stats())."""

    readers: int  # readers holding the lock
    writer: bool  # a writer holds the lock
    readers_waiting: int
    writers_waiting: int
    parks: int  # readers' and writers' parks, ever
    unparks: int  # readers and writers handed the lock by an unlock, ever


@dataclass(frozen=True, slots=True)
class OnceStats:
    """A Once's state and waits at one moment (Once.stats())."""

    done: bool
    waiters: int  # Gs parked in do() while the function runs
    parks: int
    unparks: int


@dataclass(frozen=True, slots=True)
class CondStats:
    """A Cond's waits at one moment (Cond.stats())."""

    waiters: int  # Gs parked in wait() now
    parks: int  # waits, ever
    unparks: int  # waiters woken by signal or broadcast, ever


@dataclass(frozen=True, slots=True)
class SemaphoreStats:
    """A Semaphore's state and waits at one moment (Semaphore.stats())."""

    size: int
    held: int  # units acquired and not yet released
    waiters: int  # Gs parked in acquire() now
    parks: int  # acquires that parked, ever
    unparks: int  # waiters admitted by a release (each handed its units), ever


class WaitGroup:
    """WaitGroup waits for a collection of goroutines to finish (Go's sync.WaitGroup)."""

    __slots__ = ("_lk", "_lot", "_n")

    def __init__(self) -> None:
        self._lk = _newlock("sync.lock", "sync.WaitGroup")
        self._n = 0
        self._lot = ParkingLot(self._lk)

    def add(self, delta: int = 1) -> None:
        """add delta to the counter; at zero every waiter wakes. A negative counter raises ValueError."""
        if isinstance(delta, bool) or not isinstance(delta, int):
            raise TypeError(f"WaitGroup.add() needs an int, got {type(delta).__name__}")
        woken = None
        with self._lk:
            n = self._n + delta
            if n < 0:
                raise ValueError(f"sync: negative WaitGroup counter ({self._n} {delta:+d})")
            self._n = n
            if n == 0 and self._lot.first is not None:
                woken = self._lot.unpark_all()
        if woken:
            readyall(woken)

    def done(self) -> None:
        """done decrements the counter by one."""
        self.add(-1)

    @property
    def count(self) -> int:
        return self._n

    def stats(self) -> WaitGroupStats:
        """stats: the counter and the lot's counters, one consistent snapshot."""
        with self._lk:
            ls = self._lot.stats()
            return WaitGroupStats(self._n, ls.waiters, ls.parks, ls.unparks)

    async def wait(self) -> None:
        """wait parks until the counter is zero."""
        lk = self._lk
        lk.acquire()
        if self._n == 0:
            lk.release()
            if preempt_requested():
                await gosched()
            return
        try:
            gp = _curg("WaitGroup.wait()")
        except RuntimeError:
            lk.release()
            raise
        await self._lot.parkunlock(gp, WaitReason.SYNC_WAITGROUP_WAIT)


class Mutex:
    """Mutex: a mutual exclusion lock for goroutines (Go's sync.Mutex), not owned by a G.

    Normal mode: an unlock wakes one waiter (only if none is awake already), which then competes
    with newly arriving Gs; a woken waiter that loses goes back to the head of the queue. Once a
    waiter has waited over 1 ms the mutex enters starvation mode: unlock hands ownership straight
    to the head waiter and new arrivals queue at the tail. The mode ends when the waiter that gets
    the mutex is the last one or waited under 1 ms. Invariant (under _lk): in starvation mode with
    waiters, `locked` never becomes False (it is handed over instead). Neither lock nor unlock
    touches the parking lot while nobody waits (unlock reads only whether it is empty).
    """

    __slots__ = ("_lk", "_locked", "_lot", "_starving", "_woken")

    def __init__(self) -> None:
        self._lk = _newlock("sync.lock", "sync.Mutex")
        self._locked = False
        self._starving = False
        self._woken = False  # a waiter has been woken in normal mode and not yet retried
        self._lot = ParkingLot(self._lk)

    def locked(self) -> bool:
        return self._locked

    def try_lock(self) -> bool:
        """try_lock takes the mutex if it is free and nobody is owed it; never waits."""
        with self._lk:
            if self._locked or self._starving:
                return False
            self._locked = True
            return True

    async def lock(self) -> None:
        """lock parks until the mutex is ours."""
        lk = self._lk
        lk.acquire()
        if not self._locked and not self._starving:
            self._locked = True
            lk.release()
            if preempt_requested():
                await gosched()
            return
        try:
            gp = _curg("Mutex.lock()")
        except RuntimeError:
            lk.release()
            raise
        lot = self._lot
        sg = lot.park(gp)
        sg.waitstart = time.monotonic()
        while True:
            await goparkunlock(lk, WaitReason.SYNC_MUTEX_LOCK)
            lk.acquire()
            now = time.monotonic()
            if sg.success:
                # Starvation hand-off: the mutex is already ours.
                if lot.first is None or now - sg.waitstart < STARVATION_THRESHOLD:
                    self._starving = False
                lk.release()
                return
            self._woken = False
            if not self._locked:
                self._locked = True
                lk.release()
                return
            if now - sg.waitstart > STARVATION_THRESHOLD:
                self._starving = True
            lot.repark(sg, lifo=True)  # lost to a newcomer: first in line again (Go's lifo)

    def unlock(self) -> None:
        """unlock releases the mutex; unlocking an unlocked mutex raises RuntimeError."""
        lk = self._lk
        lk.acquire()
        if self._lot.first is None and self._locked and not self._starving:
            # Nobody waits: _unlock_locked's normal-mode path with nothing to wake, inlined.
            self._locked = False
            lk.release()
            return
        try:
            sg = self._unlock_locked()
        finally:
            lk.release()
        if sg is not None:
            goready(sg.g)

    def _unlock_locked(self) -> Sudog | None:
        """_unlock_locked (_lk held) releases or hands over the mutex; returns the sudog whose G
        the caller must ready after releasing _lk, or None."""
        if _lock.lockcheck:
            _lock.assert_held(self._lk, "Mutex._unlock_locked")
        if not self._locked:
            raise RuntimeError("sync: unlock of unlocked mutex")
        lot = self._lot
        if self._starving:
            sg = lot.unpark_one(handoff=True)
            if sg is not None:
                sg.success = True  # ownership passes directly; _locked stays True
                return sg
            self._starving = False
        self._locked = False
        if self._woken:
            return None
        sg = lot.unpark_one()
        if sg is not None:
            sg.success = False
            self._woken = True
        return sg

    def stats(self) -> MutexStats:
        """stats: the mutex's state and the lot's counters, one consistent snapshot."""
        with self._lk:
            ls = self._lot.stats()
            return MutexStats(self._locked, self._starving, ls.waiters, ls.parks, ls.unparks, ls.handoffs)

    async def __aenter__(self) -> Mutex:
        await self.lock()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.unlock()


class RWMutex:
    """RWMutex: many readers or one writer (Go's sync.RWMutex), with writer preference.

    A writer waiting blocks new readers, so readers cannot starve writers; when a writer unlocks,
    every reader that queued behind it is admitted before the next writer, so writers cannot starve
    readers either. Ownership is handed over under _lk: a woken G never retries.
    """

    __slots__ = ("_lk", "_readers", "_rlot", "_wlot", "_writer")

    def __init__(self) -> None:
        self._lk = _newlock("sync.lock", "sync.RWMutex")
        self._readers = 0  # readers holding the lock
        self._writer = False  # a writer holds the lock
        self._rlot = ParkingLot(self._lk)  # readers waiting for a writer to leave
        self._wlot = ParkingLot(self._lk)  # writers waiting for the lock

    async def rlock(self) -> None:
        lk = self._lk
        lk.acquire()
        if not self._writer and self._wlot.first is None:
            self._readers += 1
            lk.release()
            if preempt_requested():
                await gosched()
            return
        try:
            gp = _curg("RWMutex.rlock()")
        except RuntimeError:
            lk.release()
            raise
        await self._rlot.parkunlock(gp, WaitReason.SYNC_RWMUTEX_RLOCK)

    def runlock(self) -> None:
        sg = None
        with self._lk:
            if self._readers <= 0:
                raise RuntimeError("sync: RUnlock of unlocked RWMutex")
            self._readers -= 1
            if self._readers == 0 and self._wlot.first is not None:
                sg = self._wlot.unpark_one(handoff=True)
                self._writer = True
        if sg is not None:
            goready(sg.g)

    async def lock(self) -> None:
        lk = self._lk
        lk.acquire()
        if not self._writer and self._readers == 0 and self._wlot.first is None:
            self._writer = True
            lk.release()
            if preempt_requested():
                await gosched()
            return
        try:
            gp = _curg("RWMutex.lock()")
        except RuntimeError:
            lk.release()
            raise
        await self._wlot.parkunlock(gp, WaitReason.SYNC_RWMUTEX_LOCK)

    def unlock(self) -> None:
        woken = None
        with self._lk:
            if not self._writer:
                raise RuntimeError("sync: Unlock of unlocked RWMutex")
            self._writer = False
            if self._rlot.first is not None:
                woken = self._rlot.unpark_all(handoff=True)
                self._readers += len(woken)
            elif self._wlot.first is not None:
                woken = self._wlot.unpark(1, handoff=True)
                self._writer = True
        if woken:
            readyall(woken)

    def stats(self) -> RWMutexStats:
        """stats: who holds the lock, who waits, and both lots' counters, one snapshot."""
        with self._lk:
            r, w = self._rlot.stats(), self._wlot.stats()
            return RWMutexStats(
                self._readers, self._writer, r.waiters, w.waiters, r.parks + w.parks, r.unparks + w.unparks
            )

    def reader(self) -> _RLocker:
        """reader is an async context manager taking the read lock (`async with rw.reader():`)."""
        return _RLocker(self)

    async def __aenter__(self) -> RWMutex:
        await self.lock()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.unlock()


class _RLocker:
    __slots__ = ("rw",)

    def __init__(self, rw: RWMutex) -> None:
        self.rw = rw

    async def __aenter__(self) -> RWMutex:
        await self.rw.rlock()
        return self.rw

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.rw.runlock()


class Once:
    """Once runs a function exactly once (Go's sync.Once); callers that arrive while it runs wait
    for it to finish. As in Go, a function that raises still counts as done."""

    __slots__ = ("_done", "_lk", "_lot", "_running")

    def __init__(self) -> None:
        self._lk = _newlock("sync.lock", "sync.Once")
        self._done = False
        self._running = False
        self._lot = ParkingLot(self._lk)

    async def do(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """do calls fn(*args, **kwargs) (awaiting it if it is async) if no call of do has; else
        waits for that one. The arguments go to fn as mn.go passes them."""
        if not callable(fn):
            raise TypeError(f"Once.do() needs a callable, got {type(fn).__name__}")
        lk = self._lk
        lk.acquire()
        if self._done:
            lk.release()
            if preempt_requested():
                await gosched()
            return
        if self._running:
            try:
                gp = _curg("Once.do()")
            except RuntimeError:
                lk.release()
                raise
            await self._lot.parkunlock(gp, WaitReason.SYNC_ONCE)
            return
        self._running = True
        lk.release()
        try:
            r = fn(*args, **kwargs)
            if inspect.isawaitable(r):
                await r
        finally:
            with lk:
                self._done = True
                self._running = False
                woken = self._lot.unpark_all()
            readyall(woken)

    @property
    def done(self) -> bool:
        return self._done

    def stats(self) -> OnceStats:
        """stats: whether it is done, and the lot's counters, one consistent snapshot."""
        with self._lk:
            ls = self._lot.stats()
            return OnceStats(self._done, ls.waiters, ls.parks, ls.unparks)


class Cond:
    """Cond: goroutines wait for a condition under a Mutex (Go's sync.Cond).

    wait() must be called with the mutex held: the G queues itself and unlocks the mutex inside
    its park commit, so a signal between the unlock and the park cannot be lost; it relocks the
    mutex before returning.
    """

    __slots__ = ("_lk", "_lot", "mutex")

    def __init__(self, mutex: Mutex) -> None:
        if not isinstance(mutex, Mutex):
            raise TypeError(f"Cond() needs an mn.Mutex, got {type(mutex).__name__}")
        self.mutex = mutex
        self._lk = _newlock("sync.lock", "sync.Cond")
        self._lot = ParkingLot(self._lk)

    async def wait(self) -> None:
        gp = _curg("Cond.wait()")
        mu = self.mutex
        if not mu._locked:
            raise RuntimeError("sync: Cond.wait() with its mutex unlocked")
        self._lk.acquire()
        self._lot.park(gp)
        await gopark(_condcommit, self, WaitReason.SYNC_COND_WAIT)
        await mu.lock()

    def signal(self) -> None:
        """signal wakes one waiting G, if any."""
        with self._lk:
            sg = self._lot.unpark_one()
        if sg is not None:
            goready(sg.g)

    def broadcast(self) -> None:
        """broadcast wakes every waiting G."""
        with self._lk:
            woken = self._lot.unpark_all()
        readyall(woken)

    def stats(self) -> CondStats:
        """stats: the lot's counters, one consistent snapshot."""
        with self._lk:
            ls = self._lot.stats()
            return CondStats(ls.waiters, ls.parks, ls.unparks)


def _condcommit(gp: G, c: Cond) -> bool:
    """_condcommit (c._lk held): gp is WAITING and queued on c; release c._lk, then the mutex."""
    c._lk.release()
    mu = c.mutex
    with mu._lk:
        sg = mu._unlock_locked() if mu._locked else None
    if sg is not None:
        goready(sg.g)
    return True


class Semaphore:
    """Semaphore(n): a weighted semaphore with FIFO admission (golang.org/x/sync/semaphore).

    A waiter at the head that needs more than is free blocks those behind it, even small ones, so
    large requests are not starved.
    """

    __slots__ = ("_cur", "_lk", "_lot", "_size")

    def __init__(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"Semaphore size must be an int, got {type(n).__name__}")
        if n < 1:
            raise ValueError(f"Semaphore size must be >= 1, got {n}")
        self._size = n
        self._cur = 0
        self._lk = _newlock("sync.lock", "sync.Semaphore")
        self._lot = ParkingLot(self._lk)  # sudog.ticket: the units each waiter asked for

    def _check(self, w: int) -> None:
        if isinstance(w, bool) or not isinstance(w, int):
            raise TypeError(f"Semaphore weight must be an int, got {type(w).__name__}")
        if w < 1:
            raise ValueError(f"Semaphore weight must be >= 1, got {w}")

    def try_acquire(self, w: int = 1) -> bool:
        self._check(w)
        with self._lk:
            if self._size - self._cur >= w and self._lot.first is None:
                self._cur += w
                return True
            return False

    async def acquire(self, w: int = 1) -> None:
        """acquire w units, parking in FIFO order until they are free."""
        self._check(w)
        if w > self._size:
            raise ValueError(f"Semaphore: acquire of {w} exceeds the size {self._size}")
        lk = self._lk
        lk.acquire()
        if self._size - self._cur >= w and self._lot.first is None:
            self._cur += w
            lk.release()
            if preempt_requested():
                await gosched()
            return
        try:
            gp = _curg("Semaphore.acquire()")
        except RuntimeError:
            lk.release()
            raise
        self._lot.park(gp).ticket = w
        await goparkunlock(lk, WaitReason.SEMACQUIRE)
        # release admitted us: the w units were counted as ours before the goready.

    def release(self, w: int = 1) -> None:
        """release w units and admit waiters from the head while they fit."""
        self._check(w)
        woken = None
        with self._lk:
            if w > self._cur:
                raise ValueError(f"Semaphore: released {w} but only {self._cur} held")
            self._cur -= w
            lot = self._lot
            if lot.first is not None:
                woken = []
                # FIFO admission: stop at the first waiter that does not fit, even if a later,
                # smaller one would (so a large request is never starved by small ones).
                while (sg := lot.peek()) is not None and self._size - self._cur >= sg.ticket:
                    lot.unpark_one(handoff=True)
                    self._cur += sg.ticket
                    woken.append(sg)
        if woken:
            readyall(woken)

    def stats(self) -> SemaphoreStats:
        """stats: the units held and the lot's counters, one consistent snapshot."""
        with self._lk:
            ls = self._lot.stats()
            return SemaphoreStats(self._size, self._cur, ls.waiters, ls.parks, ls.unparks)

    async def __aenter__(self) -> Semaphore:
        await self.acquire()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
