"""chan: Go's channels (runtime/chan.go) on the runtime's park/ready.

A Chan has one lock (`lock`) guarding everything below; invariants, true whenever it is free:
  - `buf` holds at most `cap` values (always empty for an unbuffered channel);
  - a receiver waits only while `buf` is empty, a sender only while `buf` is full (for cap 0:
    always, until a partner arrives);
  - at most one of `sendq` and `recvq` holds waiting sudogs, except on an unbuffered channel
    where one select has both a Recv and a Send case on it: then both queues may hold that
    select's sudogs, and only its (as Go's chan.go says). A second G arriving on either side
    pairs with it instead of waiting, and that select's own poll found no partner either;
  - once `closed`, both queues are empty and stay so (close wakes everyone; nobody enqueues on a
    closed channel).
"Waiting" leaves out the sudogs of a select that another channel's waker has already won: they
stay queued until that select unlinks them, and dequeue drops them (waitq.py). With lock checking
on (MN_DEBUG=lockcheck=1) every wait checks these invariants as it enqueues (checkinv).

The transfer is one locked step per direction, decided and done under the lock:
  - `_sendlocked` (Go's chansend from lock(&c.lock) on, with its send()): 1. closed: refuse;
    2. a receiver is parked: hand the value straight to it (write its sudog); 3. the buffer has
    room: append; 4. otherwise it would block.
  - `_recvlocked` (Go's chanrecv, with its recv()): 1. a sender is parked: take its value (for a
    buffered channel the sender is parked because the buffer is full: take the head of the buffer
    and move the sender's value to the tail, which keeps FIFO order); 2. a value is buffered: take
    it; 3. closed and drained: say so; 4. otherwise it would block.
The steps neither unlock nor wake anyone: their callers hold different locks (a channel's own, or
every channel of a select) and differ only in what they do when the step would block: send and
receive enqueue a sudog and gopark with a commit that releases the lock, try_send and try_recv
answer no, select goes on to its next case and, after the last, parks on all of them. Every
caller unlocks before it readies the partner the step served. try_send, try_recv and select's
pass 1 (select.py) call the steps, as Go's selectgo calls chan.go's send and recv; send and the
receive behind recv_ok, recv and `async for` carry an inlined copy, because a call per message is
the largest avoidable cost on the hottest path, and tests/test_chan_transfer.py checks that every
entry point does what its step does in every state a channel can be in.

The G that ends another G's wait writes that G's sudog and `g.param` before goready; goready
takes the G's lock, which orders those writes before the woken G reads them on whichever M it
resumes.

Every operation that completes without parking checks `g.preempt` and yields if sysmon asked
(cooperative preemption), so two Gs ping-ponging through a buffer cannot hold a P forever.
"""

from __future__ import annotations

import dataclasses
import types
from collections import deque
from collections.abc import Coroutine, Generator
from typing import Any, Generic, TypeVar

from ._rt import lock as _lock
from ._rt import park as _park
from ._rt.corofn import coroutine_function
from ._rt.g import WaitReason
from ._rt.park import preempt_requested
from ._rt.snapshot import Snapshot
from ._rt.tls import tls
from ._rt.traps import GOSCHED_TRAP, PARK
from ._rt.waitq import Sudog, WaitQ, acquire_sudog, release_sudog
from .errors import ChannelClosed, Throw

__all__ = ["Chan", "ChanStats"]

T = TypeVar("T")

_CHAN_SEND = WaitReason.CHAN_SEND
_CHAN_RECEIVE = WaitReason.CHAN_RECEIVE
# What _recv does when the channel is closed and drained: recv_ok's (None, False), recv's
# ChannelClosed, __anext__'s StopAsyncIteration. recv_ok's is 0: `if _mode` tells it apart.
_RECV_OK = 0
_RECV_RAISE = 1
_RECV_STOP = 2
# The receive step's answer for a closed, drained channel (one tuple, not one per receive).
_DRAINED: tuple[None, bool, None] = (None, False, None)
_NEEDG = "a blocking channel operation needs a goroutine: call it inside mn_runtime.run(main)"


@dataclasses.dataclass(frozen=True, eq=False)
class ChanStats(Snapshot):
    """What `Chan.stats()` returns (Go's hchan fields); attributes or `s["qcount"]`."""

    qcount: int  #: values buffered
    dataqsiz: int  #: the capacity
    sendq: int  #: sudogs on the send queue (parked senders, select cases included)
    recvq: int  #: sudogs on the receive queue
    closed: bool


class Chan(Generic[T]):
    """Chan(cap=0): a Go channel. Unbuffered (cap 0) channels are rendezvous points; buffered ones
    are FIFO queues of `cap` values. Safe to use from any goroutine on any M."""

    __slots__ = ("__weakref__", "_cap", "buf", "closed", "lock", "recvq", "sendq")

    def __init__(self, cap: int = 0) -> None:
        if isinstance(cap, bool) or not isinstance(cap, int):
            raise TypeError(f"Chan capacity must be an int, got {type(cap).__name__}")
        if cap < 0:
            raise ValueError(f"Chan capacity must be >= 0, got {cap} (makechan: size out of range)")
        self._cap = cap
        self.lock = _lock.new("chan.lock")
        self.buf: deque[Any] = deque()
        self.closed = False
        self.sendq = WaitQ()
        self.recvq = WaitQ()

    @property
    def cap(self) -> int:
        """The buffer size given at creation (0 for unbuffered)."""
        return self._cap

    def __len__(self) -> int:
        """The number of values buffered now (a racy snapshot, as Go's len(ch))."""
        return len(self.buf)

    def __repr__(self) -> str:
        st = " closed" if self.closed else ""
        return f"<Chan cap={self._cap} len={len(self.buf)}{st}>"

    def stats(self) -> ChanStats:
        """stats: a ChanStats snapshot (Go's hchan fields), read under the channel's lock."""
        with self.lock:
            return ChanStats(len(self.buf), self._cap, self.sendq.n, self.recvq.n, self.closed)

    # --- the locked steps: every send and every receive decides and transfers here ---

    def _sendlocked(self, v: T) -> Sudog | bool | None:
        """_sendlocked is the send step (Go's chansend from lock(&c.lock) on, with its send());
        c.lock held. It decides in Go's order and moves v, but neither unlocks nor wakes anyone:

          False    closed: nothing happened; the caller unlocks and raises ChannelClosed;
          a Sudog  a receiver was waiting: v is in its sudog; the caller unlocks, then sg.ready(True);
          True     v went into the buffer; the caller unlocks;
          None     it would block: nothing happened, and the lock is still the caller's to park
                   under or to release.
        """
        if _lock.lockcheck:
            _lock.assert_held(self.lock, "chansend")
        if self.closed:
            return False
        rq = self.recvq
        if rq.first is not None and (sg := rq.dequeue()) is not None:
            sg.elem = v
            return sg
        if len(self.buf) < self._cap:
            self.buf.append(v)
            return True
        return None

    def _recvlocked(self) -> tuple[Any, bool, Sudog | None] | None:
        """_recvlocked is the receive step (Go's chanrecv from lock(&c.lock) on, with its recv());
        c.lock held. It decides in Go's order and takes the value, but neither unlocks nor wakes:

          (v, True, sg)      a sender was waiting: v is the value received (for a buffered
                             channel the buffer's head, the sender's value moved to its tail, so
                             FIFO order holds); the caller unlocks, then sg.ready(True);
          (v, True, None)    v came from the buffer; the caller unlocks;
          (None, False, None)  closed and drained; the caller unlocks;
          None               it would block: nothing happened, the lock is still held.
        """
        if _lock.lockcheck:
            _lock.assert_held(self.lock, "chanrecv")
        sq = self.sendq
        if sq.first is not None and (sg := sq.dequeue()) is not None:
            if self._cap == 0:
                return sg.elem, True, sg
            buf = self.buf
            v = buf.popleft()
            buf.append(sg.elem)
            sg.elem = None
            return v, True, sg
        if self.buf:
            return self.buf.popleft(), True, None
        if self.closed:
            return _DRAINED
        return None

    # --- send (Go's chansend) ---

    @coroutine_function
    @types.coroutine
    def send(self, v: T) -> Generator[Any, Any, None]:
        """send v, parking until a receiver takes it (or buffer room frees up).

        Raises ChannelClosed("send on closed channel") if the channel is or becomes closed.
        """
        lock = self.lock
        lock.acquire()
        # _sendlocked, inlined (module docstring: no call per message on the hot path);
        # test_chan_transfer.py's TestInlineAgrees checks that the two do the same in every state.
        if self.closed:
            lock.release()
            raise ChannelClosed("send on closed channel")
        rq = self.recvq
        if rq.first is not None and (sg := rq.dequeue()) is not None:
            sg.elem = v
            lock.release()
            sg.ready(True)
        elif len(self.buf) < self._cap:
            self.buf.append(v)
            lock.release()
        else:
            m = tls.m
            gp = m.curg if m is not None else None
            if gp is None:
                lock.release()
                raise RuntimeError(_NEEDG)
            sg = acquire_sudog(gp, v, self)
            self.sendq.enqueue(sg)
            if _lock.lockcheck:
                self.checkinv("chansend")
            yield (PARK, None, lock, _CHAN_SEND)  # goparkunlock, without a generator of its own
            ok = sg.success
            release_sudog(gp, sg)
            if not ok:
                raise ChannelClosed("send on closed channel")
            return
        if _park.anypreempt and preempt_requested():  # the hint first: no call on the hot path
            yield GOSCHED_TRAP

    def try_send(self, v: T) -> bool:
        """try_send sends v if that can happen without waiting; False otherwise (Go's select with
        a default). Raises ChannelClosed on a closed channel. Callable from any thread."""
        lock = self.lock
        lock.acquire()
        r = self._sendlocked(v)
        lock.release()
        if r is None:
            return False
        if r is False:
            raise ChannelClosed("send on closed channel")
        if r is not True:
            r.ready(True)
        return True

    # --- receive (Go's chanrecv) ---

    @coroutine_function
    @types.coroutine
    def recv_ok(self, _mode: int = _RECV_OK) -> Generator[Any, Any, tuple[T | None, bool]]:
        """recv_ok receives a value: (value, True), or (None, False) once closed and drained.

        _mode is internal: this coroutine is also the receive behind recv and __anext__ (as
        `_recv`), and _mode says what they make of a closed, drained channel: recv_ok's
        (None, False) and values as (v, True) pairs (_RECV_OK), ChannelClosed (_RECV_RAISE) or
        StopAsyncIteration (_RECV_STOP). recv and __anext__ return this coroutine rather than
        awaiting it, and recv_ok is it: one coroutine per receive on the hottest path of every
        channel program instead of two or three.
        """
        lock = self.lock
        lock.acquire()
        # _recvlocked, inlined (module docstring: no call and no tuple per message on the hot
        # path); test_chan_transfer.py's TestInlineAgrees checks that the two do the same in
        # every state.
        sq = self.sendq
        if sq.first is not None and (sg := sq.dequeue()) is not None:
            if self._cap == 0:
                v = sg.elem
            else:
                buf = self.buf
                v = buf.popleft()
                buf.append(sg.elem)
                sg.elem = None
            lock.release()
            sg.ready(True)
        elif self.buf:
            v = self.buf.popleft()
            lock.release()
        elif self.closed:
            lock.release()
            if _mode == _RECV_OK:
                return None, False
            if _mode == _RECV_RAISE:
                raise ChannelClosed("receive from closed channel")
            raise StopAsyncIteration
        else:
            m = tls.m
            gp = m.curg if m is not None else None
            if gp is None:
                lock.release()
                raise RuntimeError(_NEEDG)
            sg = acquire_sudog(gp, None, self)
            self.recvq.enqueue(sg)
            if _lock.lockcheck:
                self.checkinv("chanrecv")
            yield (PARK, None, lock, _CHAN_RECEIVE)
            v, ok = sg.elem, sg.success
            release_sudog(gp, sg)
            if _mode == _RECV_OK:
                return v, ok
            if ok:
                return v  # type: ignore[no-any-return]
            if _mode == _RECV_RAISE:
                raise ChannelClosed("receive from closed channel")
            raise StopAsyncIteration
        if _park.anypreempt and preempt_requested():
            yield GOSCHED_TRAP
        if _mode:  # recv, __anext__
            return v  # type: ignore[return-value]
        return v, True

    # recv and __anext__ run recv_ok's coroutine under this name, which the await check
    # (awaitcheck.py, wrapping the public recv_ok) leaves alone.
    _recv = recv_ok

    @coroutine_function
    def recv(self) -> Coroutine[Any, Any, T]:
        """recv receives a value; raises ChannelClosed("receive from closed channel") once the
        channel is closed and drained (use recv_ok for Go's `v, ok := <-ch`)."""
        return self._recv(_RECV_RAISE)  # type: ignore[no-any-return]

    def try_recv(self) -> tuple[T | None, bool, bool]:
        """try_recv receives without waiting: (value, ok, received).

        received is False when a receive would block (nothing buffered, no sender, not closed);
        otherwise the receive happened and (value, ok) are as recv_ok's: (v, True) for a value,
        (None, False) for a closed, drained channel. Callable from any thread.
        """
        lock = self.lock
        lock.acquire()
        r = self._recvlocked()
        lock.release()
        if r is None:
            return None, False, False
        v, ok, sg = r
        if sg is not None:
            sg.ready(True)
        return v, ok, True

    def checkinv(self, where: str) -> None:
        """checkinv throws if the channel's invariants (module docstring) do not hold; lock held.
        Called only with lock checking on: it walks both queues."""
        if _lock.lockcheck:
            _lock.assert_held(self.lock, where)
        senders = [sg for sg in self.sendq if _waiting(sg)]
        receivers = [sg for sg in self.recvq if _waiting(sg)]
        bad = ""
        if len(self.buf) > self._cap:
            bad = f"{len(self.buf)} values buffered, cap {self._cap}"
        elif self.closed and (self.sendq.n or self.recvq.n):
            bad = "waiters queued on a closed channel"
        elif receivers and self.buf:
            bad = "a receiver waits while values are buffered"
        elif senders and len(self.buf) < self._cap:
            bad = "a sender waits while the buffer has room"
        elif senders and receivers and (self._cap or len({id(sg.g) for sg in senders + receivers}) != 1):
            bad = "senders and receivers wait at once, not all one select's cases"
        if bad:
            raise Throw(f"{where}: channel invariant broken: {bad}")

    # --- close (Go's closechan) ---

    def close(self) -> None:
        """close the channel: receivers drain what is buffered, then get (None, False); every
        parked receiver and sender wakes (senders raise). Closing twice raises ChannelClosed."""
        with self.lock:
            if self.closed:
                raise ChannelClosed("close of closed channel")
            self.closed = True
            woken: list[Sudog] = []
            while (sg := self.recvq.dequeue()) is not None:
                sg.elem = None
                woken.append(sg)
            while (sg := self.sendq.dequeue()) is not None:
                sg.elem = None
                woken.append(sg)
        # Ready outside the lock, as Go: the woken Gs will take it again at once.
        for sg in woken:
            sg.ready(False)

    # --- iteration: `async for v in ch` ends when the channel is closed and drained ---

    def __aiter__(self) -> Chan[T]:
        return self

    def __anext__(self) -> Coroutine[Any, Any, T]:
        return self._recv(_RECV_STOP)


def _waiting(sg: Sudog) -> bool:
    """_waiting: sg still stands for a wait (not a select case whose select another waker won)."""
    if not sg.isselect:
        return True
    sel = sg.g.selectdone
    return sel is not None and not sel.locked()
