"""waitq: the sudog (a G waiting on something) and the FIFO wait queue (Go's runtime2.go sudog,
chan.go waitq).

A Sudog stands for one G in one wait: a G blocked in a channel send has one sudog on that
channel's sendq; a G in a select has one per case, each on its own channel's queue. The G's
parking code owns its sudogs until it enqueues them; from then on they belong to whichever
structure's lock guards the queue (a channel's, a mutex's).

WaitQ is a doubly linked list so any sudog can leave it in O(1) (a select's losing cases, a
semaphore waiter that gives up). Invariants, all under the owner's lock:
  - `sg.q is q` exactly while sg is linked into q; `q.n` counts those sudogs.
  - `q.first is None` iff `q.last is None` iff `q.n == 0`.
  - a sudog is on at most one queue.

Select sudogs (isselect) race with each other: several wakers, each holding only its own channel's
lock, may find sudogs of one select G. The first to win `g.selectdone.acquire(blocking=False)`
(an atomic test-and-set with or without the GIL) serves the select; `dequeue` drops the sudogs of
a select that another waker has already won (Go's waitq.dequeue), and the select removes the rest
itself once it runs again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import Throw
from .park import goready

if TYPE_CHECKING:
    from .g import G

__all__ = ["Sudog", "WaitQ", "acquire_sudog", "release_sudog"]


class Sudog:
    """Sudog is one G waiting in one queue: the element it sends or receives, and how it ended.

    `elem` is the value to send (sender) or the value received (written by the waker before
    goready); `success` is False when the wait ended by close rather than by a transfer (Go's
    sg.success); `caseidx` is the select case this sudog stands for (-1 outside select).
    """

    __slots__ = ("c", "caseidx", "elem", "g", "isselect", "next", "prev", "q", "success", "ticket", "waitstart")
    next: Sudog | None
    prev: Sudog | None
    ticket: int
    waitstart: float

    def __init__(self, g: G, elem: Any = None, c: Any = None, isselect: bool = False, caseidx: int = -1) -> None:
        self.g = g
        self.elem = elem
        self.c = c
        self.isselect = isselect
        self.caseidx = caseidx
        self.success = False
        # next and prev are set by whoever links sg into a queue and read only while `q` is set.
        # ticket (a semaphore's weight) and waitstart (a mutex waiter's start) are set by the
        # sync primitives that use them, before they enqueue the sudog.
        self.q: WaitQ | None = None

    def ready(self, success: bool) -> None:
        """ready ends the wait this sudog stands for: it records how (success: a transfer happened,
        not a close) and readies its G, whose g.param names this sudog (the case that won a
        select). Called after the queue's lock is released; the G reads what was written here once
        it runs again (the run queue goready puts it on orders the writes first)."""
        self.success = success
        g = self.g
        g.param = self
        goready(g)


class WaitQ:
    """WaitQ is a FIFO of sudogs with O(1) removal; every method needs the owner's lock held."""

    __slots__ = ("first", "last", "n")

    def __init__(self) -> None:
        self.first: Sudog | None = None
        self.last: Sudog | None = None
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def __bool__(self) -> bool:
        return self.first is not None

    def enqueue(self, sg: Sudog) -> None:
        """enqueue appends sg, which must be on no queue."""
        if sg.q is not None:
            raise Throw("waitq.enqueue: sudog already on a queue")
        sg.q = self
        sg.next = None
        last = self.last
        sg.prev = last
        if last is None:
            self.first = sg
        else:
            last.next = sg
        self.last = sg
        self.n += 1

    def push_front(self, sg: Sudog) -> None:
        """push_front puts sg at the head (a woken mutex waiter that lost the race, as Go's lifo)."""
        if sg.q is not None:
            raise Throw("waitq.push_front: sudog already on a queue")
        sg.q = self
        sg.prev = None
        first = self.first
        sg.next = first
        if first is None:
            self.last = sg
        else:
            first.prev = sg
        self.first = sg
        self.n += 1

    def remove(self, sg: Sudog) -> bool:
        """remove unlinks sg if it is on this queue; False if it already left (a waker took it)."""
        if sg.q is not self:
            if sg.q is not None:
                raise Throw("waitq.remove: sudog is on another queue")
            return False
        prev, nxt = sg.prev, sg.next
        if prev is None:
            self.first = nxt
        else:
            prev.next = nxt
        if nxt is None:
            self.last = prev
        else:
            nxt.prev = prev
        sg.next = sg.prev = None
        sg.q = None
        self.n -= 1
        return True

    def dequeue(self) -> Sudog | None:
        """dequeue takes the first sudog whose wait this caller may end.

        A select sudog is returned only if this caller won its G's selectdone flag; one whose
        select was already won by another waker is dropped from the queue and skipped.
        """
        while True:
            sg = self.first
            if sg is None:
                return None
            nxt = sg.next
            self.first = nxt
            if nxt is None:
                self.last = None
            else:
                nxt.prev = None
            sg.next = None
            sg.q = None
            self.n -= 1
            if sg.isselect:
                sel = sg.g.selectdone
                if sel is None:
                    raise Throw("waitq.dequeue: select sudog of a G with no selectdone flag")
                if not sel.acquire(blocking=False):
                    continue
            return sg

    def peek(self) -> Sudog | None:
        """peek is the first sudog without taking it (FIFO admission checks, e.g. semaphores)."""
        return self.first

    def __iter__(self) -> Any:
        sg = self.first
        while sg is not None:
            nxt = sg.next
            yield sg
            sg = nxt


def acquire_sudog(gp: G, elem: Any, c: Any) -> Sudog:
    """acquire_sudog returns a sudog for gp's next channel wait: gp's cached one, else a new one.

    Go keeps a per-P cache of sudogs (acquireSudog); a G here keeps one, because a G is in at
    most one non-select channel wait at a time and a per-G cache needs no lock. Only the G's own
    code calls this and release_sudog, so `gp.sudog` has one owner.
    """
    sg = gp.sudog
    if sg is None:
        return Sudog(gp, elem, c)
    gp.sudog = None
    sg.elem = elem
    sg.c = c
    sg.success = False
    return sg


def release_sudog(gp: G, sg: Sudog) -> None:
    """release_sudog gives sg back to gp's cache once gp's wait is over (Go's releaseSudog).

    The waker is done with sg by then: it writes the sudog before goready, and goready is the
    last thing it does with it.
    """
    if sg.q is not None or sg.isselect:
        raise Throw("release_sudog: sudog still on a queue or part of a select")
    sg.elem = sg.c = None  # drop the value and the channel: the cache must not keep them alive
    gp.sudog = sg
