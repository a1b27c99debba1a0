"""select: Go's select statement (runtime/select.go) over Chan.

    idx, value, ok = await mn.select(mn.Recv(a), mn.Send(b, v), default=False)

selectgo, step by step; select() runs them in this order, each a function below named after Go's:
  1. `_lockorder`: the locks of the distinct channels of the cases in one global order (by id(),
     which is unique among live objects, as Go sorts by hchan address), so two selects sharing
     channels on different Ms cannot deadlock, and a channel named by several cases is locked
     once. `_pollorder`: a random order of the cases (the M's seeded rng, so `mn.run(seed=...)`
     replays it). `_sellock` takes the locks.
  2. Pass 1, `_poll`: the cases in poll order, each through its channel's locked step
     (`Chan._recvlocked`, `Chan._sendlocked`: the one transfer that every send and receive
     makes, chan.py); the first that can proceed runs, and the select returns. With
     `default=True` and nothing ready, unlock and return (-1, None, False).
  3. Pass 2, `_enqueue`: otherwise one sudog per case (isselect, caseidx) on its channel's sendq or
     recvq, in poll order, and gopark with a commit that unlocks every channel (`_selunlock`,
     Go's selparkcommit). (Go enqueues in lock order, which for several cases on one channel
     is their poll order; queuing in case order instead would hand the first partner to come the
     first Send of a channel every time.) From then on any waker on any of those channels may end
     the wait; the first to win g.selectdone (waitq.dequeue) writes the sudog and g.param and
     readies the G; the others drop the sudogs they find.
  4. Pass 3, `_dequeue`: on wake-up, relock every channel and unlink the losing sudogs (O(1)
     each), then release the selectdone flag for the G's next select. g.param is the winning
     sudog: its caseidx is the case, success says whether a transfer happened or the channel was
     closed.

A case on None (`Recv(None)`) is never ready, as a nil channel in Go: setting a variable to None
disables its case. A select with no enabled cases and no default parks forever
("select (no cases)"), which the deadlock detector reports if nothing else can run.
"""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING, Any

from ._rt import lock as _lock
from ._rt import park as _park
from ._rt.g import WaitReason
from ._rt.park import gopark, gosched, preempt_requested
from ._rt.tls import tls
from ._rt.waitq import Sudog
from .chan import Chan
from .errors import ChannelClosed, Throw

if TYPE_CHECKING:
    from ._rt.g import G

__all__ = ["Recv", "Send", "select"]

# What a select with a default returns when no case is ready.
_NONE_READY = (-1, None, False)


class Recv:
    """Recv(ch): a select case receiving from ch; chosen, it gives (index, value, ok)."""

    __slots__ = ("ch",)

    def __init__(self, ch: Chan[Any] | None) -> None:
        if ch is not None and not isinstance(ch, Chan):
            raise TypeError(f"Recv() needs a Chan or None, got {type(ch).__name__}")
        self.ch = ch

    def __repr__(self) -> str:
        return f"Recv({self.ch!r})"


class Send:
    """Send(ch, value): a select case sending value on ch; chosen, it gives (index, None, True)."""

    __slots__ = ("ch", "value")

    def __init__(self, ch: Chan[Any] | None, value: Any) -> None:
        if ch is not None and not isinstance(ch, Chan):
            raise TypeError(f"Send() needs a Chan or None, got {type(ch).__name__}")
        self.ch = ch
        self.value = value

    def __repr__(self) -> str:
        return f"Send({self.ch!r}, {self.value!r})"


def _lockorder(cases: tuple[Recv | Send, ...]) -> list[threading.Lock]:
    """_lockorder checks that every case is a Recv or a Send and returns the locks of their
    distinct channels in lock order (Go's lockorder): by the lock's id(), unique among live
    objects, as Go sorts by hchan address. Each channel has its own lock, so this orders the
    channels, and a channel named by several cases is locked once. Empty when every case is on
    None."""
    locks = []
    for c in cases:
        t = type(c)
        if t is not Recv and t is not Send:
            raise TypeError(f"select() cases must be mn.Recv or mn.Send, got {t.__name__}: {c!r}")
        ch = c.ch
        if ch is not None:
            locks.append(ch.lock)
    if len(locks) > 1:
        locks = sorted(set(locks), key=id)
    return locks


def _pollorder(n: int, rng: random.Random) -> list[int]:
    """_pollorder is a uniformly random permutation of the n case indices (Go's pollorder: an
    inside-out Fisher-Yates shuffle), drawn from the M's seeded rng so that `mn.run(seed=...)`
    replays it."""
    order = list(range(n))
    rnd = rng.random
    for i in range(1, n):
        j = int(rnd() * (i + 1))
        order[i] = order[j]
        order[j] = i
    return order


def _sellock(locks: list[threading.Lock]) -> None:
    """_sellock takes every channel lock of a select, in lock order (Go's sellock)."""
    for lk in locks:
        lk.acquire()


def _selunlock(gp: G | None, locks: list[threading.Lock]) -> bool:
    """_selunlock releases every channel lock of a select, in reverse lock order (Go's selunlock);
    it is also the gopark commit of a select that waits (Go's selparkcommit), hence gp and the
    True (stay parked)."""
    for lk in reversed(locks):
        lk.release()
    return True


def _never(gp: Any, arg: Any) -> bool:
    return True


def _poll(gp: G, cases: tuple[Recv | Send, ...], order: list[int], locks: list[threading.Lock]) -> Any:
    """_poll is selectgo's pass 1: the first case in poll order that can proceed now runs through
    its channel's locked step (Chan._recvlocked, Chan._sendlocked), as the plain operation would.
    Every channel lock held. On a hit it releases them, readies the partner it served and returns
    (index, value, ok); a Send on a closed channel releases them and raises ChannelClosed. None:
    no case is ready, and the locks are still held."""
    if _lock.lockcheck:
        for lk in locks:
            _lock.assert_held(lk, "selectgo")
    for i in order:
        c = cases[i]
        ch = c.ch
        if ch is None:
            continue
        if type(c) is Recv:
            r = ch._recvlocked()
            if r is not None:
                _selunlock(gp, locks)
                v, ok, sg = r
                if sg is not None:
                    sg.ready(True)
                return i, v, ok
        else:
            r = ch._sendlocked(c.value)  # type: ignore[union-attr]
            if r is not None:
                _selunlock(gp, locks)
                if r is False:
                    raise ChannelClosed("send on closed channel")
                if r is not True:
                    r.ready(True)
                return i, None, True
    return None


def _enqueue(gp: G, cases: tuple[Recv | Send, ...], order: list[int]) -> list[Sudog]:
    """_enqueue is selectgo's pass 2: one select sudog per enabled case on its channel's recvq or
    sendq, in poll order (module docstring, step 3); every channel lock held, and pass 1 found no
    case ready. Returns the sudogs, for pass 3."""
    if gp.selectdone is None:
        gp.selectdone = _lock.plain("select.done")
    sudogs: list[Sudog] = []
    for i in order:
        c = cases[i]
        ch = c.ch
        if ch is None:
            continue
        if type(c) is Recv:
            sg = Sudog(gp, None, ch, True, i)
            ch.recvq.enqueue(sg)
        else:
            sg = Sudog(gp, c.value, ch, True, i)  # type: ignore[union-attr]
            ch.sendq.enqueue(sg)
        sudogs.append(sg)
    if _lock.lockcheck:
        for sg in sudogs:
            sg.c.checkinv("selectgo")
    gp.param = None
    return sudogs


def _dequeue(gp: G, sudogs: list[Sudog], win: Sudog | None, locks: list[threading.Lock]) -> None:
    """_dequeue is selectgo's pass 3, once the select's G runs again: relock every channel, unlink
    the losing sudogs (O(1) each; a waker may have dropped some already), unlock, and release
    gp.selectdone for the G's next select. Locks not held on entry."""
    _sellock(locks)
    for sg in sudogs:
        if sg is not win:
            q = sg.q
            if q is not None:
                q.remove(sg)
    _selunlock(gp, locks)
    # Every sudog is off every queue now, so no waker can test the flag any more: reset it.
    gp.selectdone.release()  # type: ignore[union-attr]


def _result(cases: tuple[Recv | Send, ...], win: Sudog | None) -> tuple[int, Any, bool]:
    """_result is what a select that waited returns, from the winning sudog (g.param): a Recv case
    gives the value received, or (None, False) if its channel was closed; a Send case raises
    ChannelClosed if its channel was closed instead of taking the value."""
    if win is None:
        raise Throw("selectgo: woken without a winning case")
    idx = win.caseidx
    if type(cases[idx]) is Recv:
        return idx, win.elem, win.success
    if not win.success:
        raise ChannelClosed("send on closed channel")
    return idx, None, True


async def select(*cases: Recv | Send, default: bool = False) -> tuple[int, Any, bool]:
    """select waits until one of cases can proceed, runs it and returns (index, value, ok).

    A Recv case gives (i, value, True), or (i, None, False) when its channel is closed; a Send case
    gives (i, None, True) and raises ChannelClosed if its channel is closed when chosen. Ready
    cases are chosen uniformly at random. With default=True and no case ready: (-1, None, False).
    """
    m = tls.m
    gp = m.curg if m is not None else None
    if gp is None:
        raise RuntimeError("select() needs a goroutine: call it inside mn_runtime.run(main)")
    locks = _lockorder(cases)
    if not locks:
        if default:
            return -1, None, False
        await gopark(_never, None, WaitReason.SELECT_NO_CASES)
        raise Throw("selectgo: a select with no cases was woken")
    order = _pollorder(len(cases), m.rng)
    _sellock(locks)
    r = _poll(gp, cases, order, locks)  # pass 1
    if r is None:
        if not default:
            sudogs = _enqueue(gp, cases, order)  # pass 2
            await gopark(_selunlock, locks, WaitReason.SELECT)
            win = gp.param  # the winner's sudog
            gp.param = None
            _dequeue(gp, sudogs, win, locks)  # pass 3
            return _result(cases, win)
        _selunlock(gp, locks)
        r = _NONE_READY
    if _park.anypreempt and preempt_requested():
        await gosched()
    return r  # type: ignore[no-any-return]
