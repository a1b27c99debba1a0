"""sync: Go's sync package (WaitGroup, Mutex, RWMutex, Once, Cond) and a weighted FIFO Semaphore
(golang.org/x/sync/semaphore), all parking Gs through the runtime's gopark/goready.

Each primitive keeps its state and its wait queue under one private `threading.Lock` (`_lk`), held
only for a few lines and never across a park: a waiter enqueues its sudog under `_lk` and parks
with goparkunlock, which releases `_lk` once the G is parked, so whoever wakes it takes `_lk`
first and finds the G already WAITING. A waker decides everything under `_lk` (often handing
ownership straight to the waiter, which then needs no retry) and calls goready after releasing it.

Every operation that completes without parking checks g.preempt (cooperative preemption).
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ._rt.g import G, WaitReason
from ._rt.park import gopark, goparkunlock, goready, gosched, preempt_requested
from ._rt.tls import tls
from ._rt.waitq import Sudog, WaitQ

__all__ = ["Cond", "Mutex", "Once", "RWMutex", "Semaphore", "WaitGroup"]

# A waiter that has waited longer than this puts a Mutex into starvation mode (Go's
# starvationThresholdNs).
STARVATION_THRESHOLD = 1e-3


def _curg(what: str) -> G:
    m = tls.m
    gp = m.curg if m is not None else None
    if gp is None:
        raise RuntimeError(f"{what} needs a goroutine: call it inside mn_runtime.run(main)")
    return gp


def _readyall(sgs: list[Sudog]) -> None:
    for sg in sgs:
        goready(sg.g)


class WaitGroup:
    """WaitGroup waits for a collection of goroutines to finish (Go's sync.WaitGroup)."""

    __slots__ = ("_lk", "_n", "_waiters")

    def __init__(self) -> None:
        self._lk = threading.Lock()
        self._n = 0
        self._waiters = WaitQ()

    def add(self, delta: int = 1) -> None:
        """add delta to the counter; at zero every waiter wakes. A negative counter raises ValueError."""
        if isinstance(delta, bool) or not isinstance(delta, int):
            raise TypeError(f"WaitGroup.add() needs an int, got {type(delta).__name__}")
        woken: list[Sudog] = []
        with self._lk:
            n = self._n + delta
            if n < 0:
                raise ValueError(f"sync: negative WaitGroup counter ({self._n} {delta:+d})")
            self._n = n
            if n == 0:
                while (sg := self._waiters.dequeue()) is not None:
                    woken.append(sg)
        _readyall(woken)

    def done(self) -> None:
        """done decrements the counter by one."""
        self.add(-1)

    @property
    def count(self) -> int:
        return self._n

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
        self._waiters.enqueue(Sudog(gp))
        await goparkunlock(lk, WaitReason.SYNC_WAITGROUP_WAIT)


class Mutex:
    """Mutex: a mutual exclusion lock for goroutines (Go's sync.Mutex), not owned by a G.

    Normal mode: an unlock wakes one waiter (only if none is awake already), which then competes
    with newly arriving Gs; a woken waiter that loses goes back to the head of the queue. Once a
    waiter has waited over 1 ms the mutex enters starvation mode: unlock hands ownership straight
    to the head waiter and new arrivals queue at the tail. The mode ends when the waiter that gets
    the mutex is the last one or waited under 1 ms. Invariant (under _lk): in starvation mode with
    waiters, `locked` never becomes False (it is handed over instead).
    """

    __slots__ = ("_lk", "_locked", "_starving", "_waiters", "_woken")

    def __init__(self) -> None:
        self._lk = threading.Lock()
        self._locked = False
        self._starving = False
        self._woken = False  # a waiter has been woken in normal mode and not yet retried
        self._waiters = WaitQ()

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
        sg = Sudog(gp)
        sg.waitstart = time.monotonic()
        self._waiters.enqueue(sg)
        while True:
            await goparkunlock(lk, WaitReason.SYNC_MUTEX_LOCK)
            lk.acquire()
            now = time.monotonic()
            if sg.success:
                # Starvation hand-off: the mutex is already ours.
                if not self._waiters or now - sg.waitstart < STARVATION_THRESHOLD:
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
            self._waiters.push_front(sg)

    def unlock(self) -> None:
        """unlock releases the mutex; unlocking an unlocked mutex raises RuntimeError."""
        with self._lk:
            sg = self._unlock_locked()
        if sg is not None:
            goready(sg.g)

    def _unlock_locked(self) -> Sudog | None:
        """_unlock_locked (with _lk held) releases or hands over the mutex; returns whom to ready."""
        if not self._locked:
            raise RuntimeError("sync: unlock of unlocked mutex")
        if self._starving:
            sg = self._waiters.dequeue()
            if sg is not None:
                sg.success = True  # ownership passes directly; _locked stays True
                return sg
            self._starving = False
        self._locked = False
        if self._woken:
            return None
        sg = self._waiters.dequeue()
        if sg is not None:
            sg.success = False
            self._woken = True
        return sg

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

    __slots__ = ("_lk", "_readers", "_rwait", "_writer", "_wwait")

    def __init__(self) -> None:
        self._lk = threading.Lock()
        self._readers = 0  # readers holding the lock
        self._writer = False  # a writer holds the lock
        self._rwait = WaitQ()
        self._wwait = WaitQ()

    async def rlock(self) -> None:
        lk = self._lk
        lk.acquire()
        if not self._writer and not self._wwait:
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
        self._rwait.enqueue(Sudog(gp))
        await goparkunlock(lk, WaitReason.SYNC_RWMUTEX_RLOCK)

    def runlock(self) -> None:
        sg = None
        with self._lk:
            if self._readers <= 0:
                raise RuntimeError("sync: RUnlock of unlocked RWMutex")
            self._readers -= 1
            if self._readers == 0:
                sg = self._wwait.dequeue()
                if sg is not None:
                    self._writer = True
        if sg is not None:
            goready(sg.g)

    async def lock(self) -> None:
        lk = self._lk
        lk.acquire()
        if not self._writer and self._readers == 0 and not self._wwait:
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
        self._wwait.enqueue(Sudog(gp))
        await goparkunlock(lk, WaitReason.SYNC_RWMUTEX_LOCK)

    def unlock(self) -> None:
        woken: list[Sudog] = []
        with self._lk:
            if not self._writer:
                raise RuntimeError("sync: Unlock of unlocked RWMutex")
            self._writer = False
            while (sg := self._rwait.dequeue()) is not None:
                self._readers += 1
                woken.append(sg)
            if not woken:
                sg = self._wwait.dequeue()
                if sg is not None:
                    self._writer = True
                    woken.append(sg)
        _readyall(woken)

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

    __slots__ = ("_done", "_lk", "_running", "_waiters")

    def __init__(self) -> None:
        self._lk = threading.Lock()
        self._done = False
        self._running = False
        self._waiters = WaitQ()

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
            self._waiters.enqueue(Sudog(gp))
            await goparkunlock(lk, WaitReason.SYNC_ONCE)
            return
        self._running = True
        lk.release()
        try:
            r = fn(*args, **kwargs)
            if inspect.isawaitable(r):
                await r
        finally:
            woken: list[Sudog] = []
            with lk:
                self._done = True
                self._running = False
                while (sg := self._waiters.dequeue()) is not None:
                    woken.append(sg)
            _readyall(woken)

    @property
    def done(self) -> bool:
        return self._done


class Cond:
    """Cond: goroutines wait for a condition under a Mutex (Go's sync.Cond).

    wait() must be called with the mutex held: the G queues itself and unlocks the mutex inside
    its park commit, so a signal between the unlock and the park cannot be lost; it relocks the
    mutex before returning.
    """

    __slots__ = ("_lk", "_waiters", "mutex")

    def __init__(self, mutex: Mutex) -> None:
        if not isinstance(mutex, Mutex):
            raise TypeError(f"Cond() needs an mn.Mutex, got {type(mutex).__name__}")
        self.mutex = mutex
        self._lk = threading.Lock()
        self._waiters = WaitQ()

    async def wait(self) -> None:
        gp = _curg("Cond.wait()")
        mu = self.mutex
        if not mu._locked:
            raise RuntimeError("sync: Cond.wait() with its mutex unlocked")
        self._lk.acquire()
        self._waiters.enqueue(Sudog(gp))
        await gopark(_condcommit, self, WaitReason.SYNC_COND_WAIT)
        await mu.lock()

    def signal(self) -> None:
        """signal wakes one waiting G, if any."""
        with self._lk:
            sg = self._waiters.dequeue()
        if sg is not None:
            goready(sg.g)

    def broadcast(self) -> None:
        """broadcast wakes every waiting G."""
        woken: list[Sudog] = []
        with self._lk:
            while (sg := self._waiters.dequeue()) is not None:
                woken.append(sg)
        _readyall(woken)


def _condcommit(gp: G, c: Cond) -> bool:
    """_condcommit: gp is WAITING and queued on c; release c's lock, then the mutex."""
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

    __slots__ = ("_cur", "_lk", "_size", "_waiters")

    def __init__(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"Semaphore size must be an int, got {type(n).__name__}")
        if n < 1:
            raise ValueError(f"Semaphore size must be >= 1, got {n}")
        self._size = n
        self._cur = 0
        self._lk = threading.Lock()
        self._waiters = WaitQ()

    def _check(self, w: int) -> None:
        if isinstance(w, bool) or not isinstance(w, int):
            raise TypeError(f"Semaphore weight must be an int, got {type(w).__name__}")
        if w < 1:
            raise ValueError(f"Semaphore weight must be >= 1, got {w}")

    def try_acquire(self, w: int = 1) -> bool:
        self._check(w)
        with self._lk:
            if self._size - self._cur >= w and not self._waiters:
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
        if self._size - self._cur >= w and not self._waiters:
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
        sg = Sudog(gp)
        sg.ticket = w
        self._waiters.enqueue(sg)
        await goparkunlock(lk, WaitReason.SEMACQUIRE)

    def release(self, w: int = 1) -> None:
        """release w units and admit waiters from the head while they fit."""
        self._check(w)
        woken: list[Sudog] = []
        with self._lk:
            if w > self._cur:
                raise ValueError(f"Semaphore: released {w} but only {self._cur} held")
            self._cur -= w
            while (sg := self._waiters.peek()) is not None and self._size - self._cur >= sg.ticket:
                self._waiters.remove(sg)
                self._cur += sg.ticket
                woken.append(sg)
        _readyall(woken)

    async def __aenter__(self) -> Semaphore:
        await self.acquire()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
