"""lock: the runtime's mutexes, their ranks, and the checks debug mode adds (Go's lockrank.go).

Every runtime lock is a plain `threading.Lock` unless lock checking is on (`MN_DEBUG=lockcheck=1`,
read when run() starts): then `new` makes a `CheckedLock`, which knows its holder and its rank,
and raises `Throw` when a thread takes a lock ranked below one it already holds (a lock-order
inversion, the seed of a deadlock), releases a lock it does not hold, or re-takes one it holds.
Functions whose docstring says "X held" start with `if lock.lockcheck: lock.assert_held(X, ...)`:
one global read when checking is off.

`LOCKS` below is the one table of the runtime's locks and their ranks: `new(name)` takes its rank
from there, tests/test_lockcheck.py checks that every lock the code makes is in it and that
docs/design.md ("Locks") describes each. A thread may take a lock only while holding locks of lower
or equal rank; equal ranks are ordered by the code itself (select takes its channels' locks by
address), and the comment at each entry says which.

Locks that are released by another thread than the one that took them (an M's park note,
sysmon's note) are semaphores, not mutexes; they and the locks made at import time, before lock
checking can be switched on, stay plain `threading.Lock`s and are listed in `PLAIN`.
"""

from __future__ import annotations

import threading
from typing import Any

from ..errors import Throw

RANK_FIRE = 0
RANK_OBJECT = 10
RANK_SCHED = 20
RANK_P = 30
RANK_LEAF = 40

# LOCKS: every runtime mutex by name, with its rank. Outermost first.
LOCKS: dict[str, int] = {
    # From taking due timers off the heap until their Gs are queued.
    "timers.firelock": RANK_FIRE,
    # User-visible objects and their runtime state; their wake-ups take the ranks below. Two of
    # them are held at once only in select (channels by address) and by a Timer (its own lock,
    # then its channel's).
    "chan.lock": RANK_OBJECT,
    "sync.lock": RANK_OBJECT,  # Mutex, RWMutex, WaitGroup, Once, Cond, Semaphore
    "context.lock": RANK_OBJECT,
    "group.lock": RANK_OBJECT,
    "timer.lock": RANK_OBJECT,  # Timer, Ticker, after_func (mn_runtime.time)
    "future.wait": RANK_OBJECT,  # held across goready, so before g.lock and sched.lock
    "fd.mu": RANK_OBJECT,
    "pd.lock": RANK_OBJECT,
    # The scheduler: global queue, idle Ps and Ms, spinning count, stopping.
    "sched.lock": RANK_SCHED,
    # A P's ring, runnext and status; never two at once.
    "p.lock": RANK_P,
    # Leaves: nothing is taken under them.
    "g.lock": RANK_LEAF,
    "allglock": RANK_LEAF,
    "goidlock": RANK_LEAF,
    "timers.lock": RANK_LEAF,
    "netpoll.backend.lock": RANK_LEAF,
    "chaos.lock": RANK_LEAF,
    "tracer.hlock": RANK_LEAF,
    "trace.lock": RANK_LEAF,
    "future.runstate": RANK_LEAF,
    "procpool.lock": RANK_LEAF,
    "sysmon.notelock": RANK_LEAF,
}

# PLAIN: the runtime's locks that stay threading.Locks, and why.
PLAIN: dict[str, str] = {
    "m.park": "a semaphore: the waker releases it (m.py)",
    "sysmon.note": "a semaphore: the waker releases it (sysmon.py)",
    "select.done": "a test-and-set flag: wakers take it without blocking, its select releases it (select.py)",
    "idle.futurelock": "made at import time; a leaf, taken after sched.lock",
    "future.statelock": "made at import time; a leaf (the runtime-owned pool and loop)",
    "trace.startlock": "made at import time; taken outside every runtime lock",
    "runtime.runlock": "made at import time; taken by run() before any runtime lock exists",
    "gil.warnlock": "made at import time; a leaf",
}

# lockcheck: make CheckedLocks and run the assert_held checks. Set by configure() when run()
# starts, before the scheduler makes its locks; read racily (it changes only between runs).
lockcheck = False

_get_ident = threading.get_ident


class _Held(threading.local):
    def __init__(self) -> None:
        self.stack: list[CheckedLock] = []


_held = _Held()

# Every CheckedLock made while counting is on (count_locks), kept alive so that the counts of a
# channel's or a G's lock outlive the object; changed and read only under _registrylock.
_registrylock = threading.Lock()
_registry: list[CheckedLock] | None = None


class CheckedLock:
    """CheckedLock is a threading.Lock that knows its owner and rank (lock checking only)."""

    __slots__ = ("_lock", "nacquire", "name", "ncontended", "owner", "rank")

    def __init__(self, rank: int, name: str) -> None:
        self._lock = threading.Lock()
        self.rank = rank
        self.name = name
        self.owner = 0
        # Counted by the thread that took the lock, while it holds it: the lock guards its own
        # counters. ncontended: acquisitions that found the lock taken and had to wait.
        self.nacquire = 0
        self.ncontended = 0
        if _registry is not None:
            with _registrylock:
                _registry.append(self)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = _get_ident()
        if self.owner == me:
            raise Throw(f"lock: {self.name} taken twice by the same thread (self-deadlock)")
        stack = _held.stack
        if stack:
            top = max(stack, key=lambda lk: lk.rank)
            if top.rank > self.rank:
                raise Throw(
                    f"lock order: taking {self.name} (rank {self.rank}) while holding {top.name} (rank {top.rank})"
                )
        ok = self._lock.acquire(False)
        waited = not ok and blocking
        if waited:
            ok = self._lock.acquire(True, timeout)
        if ok:
            self.owner = me
            stack.append(self)
            self.nacquire += 1
            if waited:
                self.ncontended += 1
        return ok

    def release(self) -> None:
        if self.owner != _get_ident():
            raise Throw(f"lock: {self.name} released by a thread that does not hold it")
        self.owner = 0
        stack = _held.stack
        # Usually the last one taken; remove by identity wherever it is.
        for i in range(len(stack) - 1, -1, -1):
            if stack[i] is self:
                del stack[i]
                break
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def held(self) -> bool:
        """held: does the calling thread hold this lock?"""
        return self.owner == _get_ident()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<CheckedLock {self.name} rank={self.rank} owner={self.owner or None}>"


def new(name: str, label: str | None = None) -> Any:
    """new makes the runtime mutex `name` of LOCKS: a CheckedLock of its rank while checking
    (called `label` in its messages and lock_stats, e.g. "p3.lock"), else a threading.Lock."""
    rank = LOCKS.get(name)
    if rank is None:
        raise Throw(f"lock.new: {name!r} is not in lock.LOCKS (add it, with its rank)")
    if lockcheck:
        return CheckedLock(rank, label or name)
    return threading.Lock()


def plain(name: str) -> threading.Lock:
    """plain makes the lock `name` of PLAIN: always a threading.Lock (see PLAIN for why)."""
    if name not in PLAIN:
        raise Throw(f"lock.plain: {name!r} is not in lock.PLAIN (add it, saying why it is plain)")
    return threading.Lock()


def assert_held(lock: Any, fn: str) -> None:
    """assert_held raises Throw unless the calling thread holds lock (checking a CheckedLock only:
    a plain lock made before checking was turned on cannot tell its holder)."""
    if type(lock) is CheckedLock and not lock.held():
        raise Throw(f"{fn}: called without {lock.name} held")


def count_locks(on: bool) -> None:
    """count_locks starts (or stops and forgets) keeping every CheckedLock made from now on, for
    lock_stats; a measurement tool (stress/benchmarks/locks.py), with lock checking on."""
    global _registry
    with _registrylock:
        _registry = [] if on else None


def lock_stats(reset: bool = False) -> dict[str, tuple[int, int]]:
    """lock_stats sums the acquisitions and contended acquisitions of the CheckedLocks made since
    count_locks(True), by name: {name: (acquired, contended)}; with reset, zeroes them. Counters
    of a lock held right now by another thread may be a step behind."""
    with _registrylock:
        locks = list(_registry or ())
    out: dict[str, tuple[int, int]] = {}
    for lk in locks:
        a, c = out.get(lk.name, (0, 0))
        out[lk.name] = (a + lk.nacquire, c + lk.ncontended)
        if reset:
            with lk._lock:  # its holder counts under it: a reset must not race an increment
                lk.nacquire = lk.ncontended = 0
    return out


def configure(on: bool) -> None:
    """configure turns lock checking on or off for the run about to start (run(), MN_DEBUG)."""
    global lockcheck
    lockcheck = on
