"""globrunq: the global run queue (Go's sched.runq with globrunqput, globrunqputhead,
globrunqputbatch and globrunqget; Tokio's inject queue).

Overflow from a P's ring, Gs readied by the poller thread and by timers, a G leaving a syscall with
no P to return to, a G that yielded (gosched) and the runnext of a preempted slice all arrive here;
Ps take from it in batches.

Invariants:
  - `q` changes only through the methods below, each called with sched.lock held (checked under
    MN_DEBUG=lockcheck=1). Anyone may read `q` without the lock as a hint (`if grq.q:`), as Go
    reads sched.runqsize: the decision is then made again under the lock.
  - Timers first: the first `ntimerg` Gs of `q` were readied by timers, in firing order. While
    ntimerg > 0 every schedule looks here before its own queue, so a timer-woken G runs after the
    current G (Go readies a timer's G into runnext) and not a fairness tick later. ntimerg may
    overcount for a moment (a batch taken from the front), never undercount; it is 0 when `q` is.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from ..errors import Throw
from . import lock as _lock

if TYPE_CHECKING:
    from .g import G
    from .p import P

__all__ = ["GlobRunq"]


class GlobRunq:
    """GlobRunq is the runtime's one global run queue; `lock` is sched.lock, which guards it."""

    __slots__ = ("lock", "nput", "ntimerg", "q")

    def __init__(self, lock: Any) -> None:
        self.lock = lock
        self.q: deque[G] = deque()
        self.ntimerg = 0
        self.nput = 0  # Gs ever put here (statistics, under lock)

    def __len__(self) -> int:
        return len(self.q)

    def put(self, gp: G) -> None:
        """put adds gp at the tail (Go's globrunqput). sched.lock held."""
        if _lock.lockcheck:
            _lock.assert_held(self.lock, "globrunqput")
        self.q.append(gp)
        self.nput += 1

    def putbatch(self, glist: list[G]) -> None:
        """putbatch adds glist at the tail in order, in one step (Go's globrunqputbatch).
        sched.lock held."""
        if _lock.lockcheck:
            _lock.assert_held(self.lock, "globrunqputbatch")
        self.q.extend(glist)
        self.nput += len(glist)

    def puttimers(self, glist: list[G]) -> None:
        """puttimers adds Gs that timers readied at the front, behind the timers' Gs already
        there, so that they leave in firing order and before everything else (the timers-first
        rule above; Go's globrunqputhead keeps them ahead of the rest). sched.lock held."""
        if _lock.lockcheck:
            _lock.assert_held(self.lock, "globrunqputhead")
        q = self.q
        at = min(self.ntimerg, len(q))
        if at == len(q):
            q.extend(glist)
        else:
            for i, gp in enumerate(glist):
                q.insert(at + i, gp)
        self.ntimerg = at + len(glist)
        self.nput += len(glist)

    def get(self, p: P, procs: int, max: int) -> G | None:
        """get takes a batch for p (Go's globrunqget): one G to run, the rest onto p's ring; None
        if the queue is empty. The batch is at most max (0: no limit), a fair share
        (len/procs + 1) and half of p's ring capacity, as Go. sched.lock held (p.lock is taken
        under it, the lock order)."""
        if _lock.lockcheck:
            _lock.assert_held(self.lock, "globrunqget")
        q = self.q
        if not q:
            return None
        n = min(len(q), len(q) // procs + 1, p.runqcap // 2)
        if max > 0:
            n = min(n, max)
        gp = q.popleft()
        p.nglobal += 1
        taken = 1
        if n > 1:
            with p.lock:
                ring = p.runq
                k = min(n - 1, p.runqcap - len(ring))
                if k > 0:
                    ring.extend([q.popleft() for _ in range(k)])
                    taken += k
        self._took(taken)
        return gp

    def take_at(self, frac: float, within: int) -> G | None:
        """take_at removes and returns the G at position frac * min(len, within) (0 <= frac < 1):
        chaos's random pick among the first `within`, which breaks the queue's FIFO order on
        purpose. None if the queue is empty. sched.lock held."""
        if _lock.lockcheck:
            _lock.assert_held(self.lock, "globrunq.take_at")
        q = self.q
        if not q:
            return None
        if not 0.0 <= frac < 1.0:
            raise Throw(f"globrunq.take_at: position {frac} outside [0, 1)")
        i = int(frac * min(len(q), within))
        gp = q[i]
        del q[i]
        if i < self.ntimerg:
            self.ntimerg -= 1
        elif not q:
            self.ntimerg = 0
        return gp

    def _took(self, n: int) -> None:
        """_took: n Gs left from the front; they were timers' Gs first (ntimerg's rule)."""
        if self.ntimerg:
            left = self.ntimerg - n
            self.ntimerg = left if left > 0 and self.q else 0

    def check(self) -> None:
        """check raises Throw if an invariant above is broken (tests, debug). sched.lock held."""
        if _lock.lockcheck:
            _lock.assert_held(self.lock, "globrunq.check")
        if self.ntimerg < 0 or (self.ntimerg and not self.q):
            raise Throw(f"globrunq: ntimerg {self.ntimerg} with {len(self.q)} Gs queued")
