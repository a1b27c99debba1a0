"""sema: the parking lot, one wait queue under every blocker that is not a channel (Go's sema.go
semaRoot; Trio's ParkingLot).

A ParkingLot is a WaitQ (waitq.py: a FIFO of sudogs, doubly linked for O(1) removal) that also
counts how it is used and knows the lock that guards it. It has no lock of its own: like Go's
semaRoot and Trio's ParkingLot it is guarded by its owner's lock, which it is given when it is made
and which every method below requires the caller to hold (a Mutex's `_lk`, an FD's `mu`, the
joined G's `lock`). With lock checking on (MN_DEBUG=lockcheck=1) each method asserts it. The owner
decides everything about its own state under that lock (who gets the mutex, how many units a
semaphore admits) and uses the lot only to remember who waits and in what order.

Parking goes through the one wake-up primitive (park.py), in two steps under the owner's lock:

    sg = lot.park(gp)                     # queue gp (the owner's lock held)
    await goparkunlock(lock, reason)      # park; the M releases the lock once gp is WAITING

(`await lot.parkunlock(gp, reason)` is both in one call), or a gopark whose commit queues the G
itself and then releases the lock (G.join's joincommit below, FD._lockcommit). Waking is two steps
the other way round: `unpark_one`/`unpark`/`unpark_all` take sudogs off under the lock, and the
caller readies their Gs with goready after releasing it (readyall). Because the waiter was queued
under the lock and parks before the lock is released, a waker always finds it WAITING.

Invariants, all under the owner's lock:
  - every sudog in the lot stands for a G that is WAITING, or about to be, in this lot's wait; it
    is never a select's (its G has one wait, so unpark never has to skip a lost select case);
  - parks == unparks + removes + len(lot) (`checkinv`, on every change with lock checking on); a
    sudog that is unparked and must wait again (a Mutex waiter that lost to a newcomer) is parked
    again with repark and counts a second park;
  - handoffs <= unparks: an unpark that handed the waiter what it waited for (a mutex's ownership,
    a semaphore's units) rather than only waking it to try again.

The lot extends WaitQ rather than holding one: a lot per Mutex or joined G is then one object,
made with one call, and its emptiness test on the hot paths is one attribute read,
`lot.first is None` (a Python call to __bool__ costs more than the rest of an uncontended
Mutex.unlock); read it under the lock like the rest. Owners use the methods below, never the
WaitQ's enqueue/dequeue/push_front, which skip the counters (checkinv would then fail).
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from ..errors import Throw
from . import lock as _lock
from .g import EXITED, G, WaitReason
from .park import goparkunlock, goready
from .waitq import Sudog, WaitQ, acquire_sudog

__all__ = ["JoinLot", "LotStats", "ParkingLot", "joincommit", "readyall"]


@dataclass(frozen=True, slots=True)
class LotStats:
    """LotStats: a snapshot of one parking lot's counters, taken under its owner's lock."""

    waiters: int  # sudogs in the lot now
    parks: int  # sudogs ever queued (a re-queued waiter counts again)
    unparks: int  # sudogs taken off by a waker
    handoffs: int  # unparks that handed the waiter what it waited for
    removes: int  # sudogs that left without a waker (remove)


class ParkingLot(WaitQ):
    """ParkingLot is a FIFO of parked Gs with O(1) removal and usage counters, guarded by its
    owner's lock `lock` (see the module docstring); every method needs that lock held.
    Iterating it yields its sudogs, head first, without taking them off."""

    __slots__ = ("lock", "nhandoffs", "nparks", "nremoves", "nunparks")

    def __init__(self, lock: Any) -> None:
        # WaitQ's three fields, set here rather than through its __init__: one call less per lot.
        self.first: Sudog | None = None
        self.last: Sudog | None = None
        self.n = 0
        self.lock = lock
        self.nparks = 0
        self.nunparks = 0
        self.nhandoffs = 0
        self.nremoves = 0

    def park(self, gp: G, sg: Sudog | None = None) -> Sudog:
        """park (lock held) queues gp at the tail and returns its sudog (sg if given, a sudog of
        gp's on no queue, else a new one); the caller then parks gp with a commit that releases
        the lock (goparkunlock(lock, reason) in the usual case)."""
        if _lock.lockcheck:
            _lock.assert_held(self.lock, "ParkingLot.park")
        if sg is None:
            sg = Sudog(gp)
        self.enqueue(sg)
        self.nparks += 1
        if _lock.lockcheck:
            self.checkinv("ParkingLot.park")
        return sg

    def repark(self, sg: Sudog, lifo: bool = False) -> None:
        """repark (lock held) queues again a sudog that was unparked and must wait once more: at
        the head with lifo (a woken Mutex waiter that lost to a newcomer keeps its turn, as Go's
        semacquire1 with lifo), else at the tail."""
        if _lock.lockcheck:
            _lock.assert_held(self.lock, "ParkingLot.repark")
        if sg.isselect:
            raise Throw("ParkingLot.repark: a select's sudog cannot wait in a parking lot")
        if lifo:
            self.push_front(sg)
        else:
            self.enqueue(sg)
        self.nparks += 1
        if _lock.lockcheck:
            self.checkinv("ParkingLot.repark")

    def parkunlock(self, gp: G, reason: WaitReason) -> Awaitable[None]:
        """parkunlock (lock held) queues gp and parks it; the lock is released once gp is WAITING
        (park, then goparkunlock). For owners that need nothing of the sudog afterwards."""
        self.park(gp)
        return goparkunlock(self.lock, reason)

    def peek(self) -> Sudog | None:
        """peek (lock held) is the head waiter without taking it (a semaphore's FIFO admission)."""
        return self.first

    def unpark_one(self, handoff: bool = False) -> Sudog | None:
        """unpark_one (lock held) takes the head waiter off, or returns None if there is none; the
        caller readies its G after releasing the lock. handoff: the waiter is given what it waited
        for (it will not retry), as Go's semrelease1(handoff); counted in the stats."""
        if _lock.lockcheck:
            _lock.assert_held(self.lock, "ParkingLot.unpark_one")
        sg = self.dequeue()
        if sg is not None:
            self.nunparks += 1
            if handoff:
                self.nhandoffs += 1
            if _lock.lockcheck:
                self.checkinv("ParkingLot.unpark_one")
        return sg

    def unpark(self, n: int = 1, handoff: bool = False) -> list[Sudog]:
        """unpark (lock held) takes up to n waiters off, head first; see unpark_one."""
        if n < 0:
            raise ValueError(f"ParkingLot.unpark: negative count {n}")
        out: list[Sudog] = []
        while len(out) < n:
            sg = self.unpark_one(handoff)
            if sg is None:
                break
            out.append(sg)
        return out

    def unpark_all(self, handoff: bool = False) -> list[Sudog]:
        """unpark_all (lock held) takes every waiter off, head first; see unpark_one."""
        if _lock.lockcheck:
            _lock.assert_held(self.lock, "ParkingLot.unpark_all")
        out: list[Sudog] = []
        while (sg := self.dequeue()) is not None:
            out.append(sg)
        self.nunparks += len(out)
        if handoff:
            self.nhandoffs += len(out)
        if _lock.lockcheck:
            self.checkinv("ParkingLot.unpark_all")
        return out

    def remove(self, sg: Sudog) -> bool:
        """remove (lock held) takes sg out of the lot in O(1), for a waiter that gives up (a
        timeout, a cancellation); False if sg is no longer here (a waker took it first, and its
        goready is coming)."""
        if _lock.lockcheck:
            _lock.assert_held(self.lock, "ParkingLot.remove")
        if not WaitQ.remove(self, sg):
            return False
        self.nremoves += 1
        if _lock.lockcheck:
            self.checkinv("ParkingLot.remove")
        return True

    def stats(self) -> LotStats:
        """stats (lock held) is a snapshot of the lot's counters."""
        return LotStats(self.n, self.nparks, self.nunparks, self.nhandoffs, self.nremoves)

    def checkinv(self, where: str) -> None:
        """checkinv (lock held) raises Throw if the lot's invariants do not hold (debug mode)."""
        n = self.n
        if (self.first is None) != (n == 0) or (self.last is None) != (n == 0):
            raise Throw(f"{where}: parking lot holds {n} sudogs but its ends say otherwise")
        if self.nparks != self.nunparks + self.nremoves + n:
            raise Throw(
                f"{where}: parking lot counters disagree: {self.nparks} parks != "
                f"{self.nunparks} unparks + {self.nremoves} removes + {n} waiting"
            )
        if self.nhandoffs > self.nunparks:
            raise Throw(f"{where}: {self.nhandoffs} handoffs out of {self.nunparks} unparks")


def readyall(sgs: list[Sudog], next: bool = True) -> None:
    """readyall readies the Gs of sudogs a lot unparked, in order; the lot's lock released."""
    for sg in sgs:
        goready(sg.g, next)


class JoinLot(ParkingLot):
    """JoinLot: the Gs parked in join() on one G, guarded by that G's lock. It exists only once
    someone joins (G.joiners is None until then) and is detached when the G exits.

    goexit detaches it under the G's lock (`joiners = EXITED`) and then, without the lock, calls
    its readyjoiners, which unparks and readies every joiner. No lock is needed then because
    nothing else can reach a detached lot: joincommit finds EXITED under the same lock and does
    not park, and a joiner that gave up (remove) must likewise find the lot still attached under
    that lock.
    """

    __slots__ = ()

    def __init__(self, lock: Any, sg: Sudog | None = None) -> None:
        """A JoinLot is made by the first join that has to wait, with that joiner's sudog sg
        already queued and counted: the same state as ParkingLot(lock) then park(gp, sg), in one
        call on the path of every waited-for join (tests/test_parkinglot.py checks they agree)."""
        self.lock = lock
        self.nunparks = self.nhandoffs = self.nremoves = 0
        if sg is None:
            self.first = self.last = None
            self.n = self.nparks = 0
            return
        if sg.q is not None:
            raise Throw("JoinLot: the first joiner's sudog is already on a queue")
        sg.q = self
        sg.next = sg.prev = None
        self.first = self.last = sg
        self.n = self.nparks = 1

    def readyjoiners(self) -> None:
        """readyjoiners (goexit, without the lock: the lot is detached, see above) unparks every
        joiner, head first, and readies each at the tail of the readier's ring (goready with
        next=False: an exit hands over no work). The whole queue leaves at once, with no
        dequeue call per joiner; each sudog is unlinked and back in its joiner's cache (see
        joincommit) before goready publishes the joiner."""
        sg = self.first
        self.first = self.last = None
        self.nunparks += self.n
        self.n = 0
        while sg is not None:
            nxt = sg.next
            sg.next = sg.prev = None
            sg.q = None
            g = sg.g
            g.sudog = sg
            goready(g, False)
            sg = nxt


def joincommit(gp: G, target: G) -> bool:
    """joincommit is the park commit of a join (mn.Goroutine.join): gp is WAITING; queue it on target's join lot under
    target's lock, or return False (resume at once) if target has exited meanwhile.

    The joiner waits with its cached sudog (waitq.acquire_sudog), which the JoinLot's drain puts
    back in its cache before readying it, so a join allocates no sudog. That breaks
    acquire_sudog's rule that only the G's own code touches gp.sudog, safely: this commit runs
    for gp while gp is parked, and the drain runs while gp is WAITING, before the goready whose
    lock orders the write before gp runs again; in between only the lot holds the sudog.
    """
    lock = target.lock
    lock.acquire()
    lot = target.joiners
    if lot is EXITED:
        lock.release()
        return False
    if lot is None:
        target.joiners = JoinLot(lock, acquire_sudog(gp, None, None))
    else:
        lot.park(gp, acquire_sudog(gp, None, None))
    lock.release()
    return True
