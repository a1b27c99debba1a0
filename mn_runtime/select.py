"""select: Go's select statement (runtime/select.go) over Chan.

    idx, value, ok = await mn.select(mn.Recv(a), mn.Send(b, v), default=False)

selectgo, step by step:
  1. Lock every distinct channel of the cases in one global order (by id(), which is unique among
     live objects, as Go sorts by hchan address), so two selects sharing channels on different Ms
     cannot deadlock, and a channel named by several cases is locked once.
  2. Poll the cases in a random order (the M's seeded rng, so `mn.run(seed=...)` replays it): the
     first ready case runs as the plain channel operation would, and the select returns. With
     `default=True` and nothing ready, unlock and return (-1, None, False).
  3. Otherwise enqueue one sudog per case (isselect, caseidx) on its channel's sendq or recvq, in
     the random poll order, and gopark with a commit that unlocks every channel. (Go enqueues in
     its lock order, which keeps the random order among cases of one channel: the first partner
     to come takes the first sudog, so two Sends on one channel must not queue in case order.)
     From then on any waker on any of those channels may end the wait; the first to win
     g.selectdone (waitq.dequeue) writes the sudog and g.param and readies the G; the others drop
     the sudogs they find.
  4. On wake-up, relock every channel and unlink the losing sudogs (O(1) each), then release the
     selectdone flag for the G's next select. g.param is the winning sudog: its caseidx is the
     case, success says whether a transfer happened or the channel was closed.

A case on None (`Recv(None)`) is never ready, as a nil channel in Go: setting a variable to None
disables its case. A select with no enabled cases and no default parks forever
("select (no cases)"), which the deadlock detector reports if nothing else can run.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from ._rt import lock as _lock
from ._rt.g import WaitReason
from ._rt.park import gopark, gosched, preempt_requested
from ._rt.tls import tls
from ._rt.waitq import Sudog
from .chan import Chan
from .errors import ChannelClosed, Throw

__all__ = ["Recv", "Send", "select"]


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


def _unlockall(gp: Any, locks: list[threading.Lock]) -> bool:
    """_unlockall is select's gopark commit (Go's selparkcommit): release every channel lock."""
    for lk in reversed(locks):
        lk.release()
    return True


def _never(gp: Any, arg: Any) -> bool:
    return True


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
    byid: dict[int, Chan[Any]] = {}
    for c in cases:
        if type(c) is not Recv and type(c) is not Send:
            raise TypeError(f"select() cases must be mn.Recv or mn.Send, got {type(c).__name__}: {c!r}")
        ch = c.ch
        if ch is not None:
            byid[id(ch)] = ch
    if not byid:
        if default:
            return -1, None, False
        await gopark(_never, None, WaitReason.SELECT_NO_CASES)
        raise Throw("selectgo: a select with no cases was woken")
    # 1. lock order
    locks = [byid[k].lock for k in sorted(byid)]
    n = len(cases)
    order = list(range(n))
    rng = m.rng if m is not None else random
    if n > 1:
        rng.shuffle(order)
    for lk in locks:
        lk.acquire()
    # 2. poll
    for i in order:
        c = cases[i]
        ch = c.ch
        if ch is None:
            continue
        if type(c) is Recv:
            sg = ch.sendq.dequeue()
            if sg is not None:
                v = ch._recv_from(sg)
                _unlockall(gp, locks)
                sg.ready(True)
                if preempt_requested():
                    await gosched()
                return i, v, True
            if ch.buf:
                v = ch.buf.popleft()
                _unlockall(gp, locks)
                if preempt_requested():
                    await gosched()
                return i, v, True
            if ch.closed:
                _unlockall(gp, locks)
                if preempt_requested():
                    await gosched()
                return i, None, False
        else:
            if ch.closed:
                _unlockall(gp, locks)
                raise ChannelClosed("send on closed channel")
            sg = ch.recvq.dequeue()
            if sg is not None:
                _unlockall(gp, locks)
                sg.elem = c.value  # type: ignore[union-attr]
                sg.ready(True)
                if preempt_requested():
                    await gosched()
                return i, None, True
            if len(ch.buf) < ch._cap:
                ch.buf.append(c.value)  # type: ignore[union-attr]
                _unlockall(gp, locks)
                if preempt_requested():
                    await gosched()
                return i, None, True
    if default:
        _unlockall(gp, locks)
        if preempt_requested():
            await gosched()
        return -1, None, False
    # 3. enqueue on every case and park
    sel = gp.selectdone
    if sel is None:
        sel = gp.selectdone = threading.Lock()
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
        for ch in byid.values():
            ch.checkinv("selectgo")
    gp.param = None
    await gopark(_unlockall, locks, WaitReason.SELECT)
    # 4. wake-up: the winner left its sudog in g.param; unlink the losers.
    win = gp.param
    gp.param = None
    for lk in locks:
        lk.acquire()
    for sg in sudogs:
        if sg is not win:
            q = sg.q
            if q is not None:
                q.remove(sg)
    _unlockall(gp, locks)
    # Every sudog is off every queue now, so no waker can test the flag any more: reset it.
    sel.release()
    if win is None:
        raise Throw("selectgo: woken without a winning case")
    idx = win.caseidx
    if type(cases[idx]) is Recv:
        return idx, win.elem, win.success
    if not win.success:
        raise ChannelClosed("send on closed channel")
    return idx, None, True
