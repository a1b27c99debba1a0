"""fd: blocking-style I/O on a non-blocking fd (Go's internal/poll.FD and its fdMutex).

Every operation is optimistic (Go's fd.Read loop): try the system call on the non-blocking fd; only
on EAGAIN park in netpollblock until the netpoller reports the fd ready, then try again. A byte is
never read twice or lost: readiness only ever causes a retry, and the data itself moves only in
the system call.

An FD is shared by the Gs that use it, and three rules keep that safe (Go's fdMutex):
- References. Each operation holds a reference from start to finish. `close` marks the FD closing,
  evicts the pollDesc (waking every G parked on it with ClosedError) and leaves the fd open until
  the last reference is dropped; only then is it deregistered and closed. So no system call can
  ever run on an fd number that was closed and reused behind its back.
- Serialisation. Readers queue on the read lock and writers on the write lock (FIFO), so at most
  one G waits per pollDesc semaphore: a "double wait" there is a runtime bug, not a user error,
  and a `write` of a large buffer is never interleaved with another.
- Deadlines are checked before the first attempt (a deadline in the past fails at once even if
  data is waiting, as in Go) and after every wake-up.

All of that is one integer, `state`, as Go's fdMutex keeps it in one word: the read and write lock
bits (equal to MODE_READ and MODE_WRITE, so `state & mode` is "mode's lock is held"), the closing
bit, a bit per direction saying that Gs queue for its lock, and the reference count above them.
Go changes the word with CAS loops; here every change is made under `mu`, a leaf lock, which also
guards `closed` and the two lock queues: parking lots (sema.py) guarded by `mu`, made the first time
a G has to queue for that direction's lock, with the invariant (under mu) that mode's wait bit is
set exactly while waiters[mode] holds a G. An operation that finds its lock free and the FD open takes
it with one read and one write of `state` under one hold of `mu`, and gives it back the same way.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

from ..errors import ClosedError, Throw
from ..errors import IOTimeout as DeadlineExceeded
from . import lock as _lock
from . import park as _park
from .g import G, WaitReason
from .netpoll import MODE_READ, MODE_WRITE
from .park import gopark, goready, gosched, preempt_requested
from .polldesc import (
    POLL_ERR_CLOSING,
    evict,
    netpollblock,
    netpollcheckerr,
    pollclose,
    pollopen,
    setdeadline,
)
from .sema import ParkingLot

__all__ = ["FD", "MODE_READ", "MODE_WRITE", "ClosedError", "DeadlineExceeded"]


def _pollerr(code: int) -> OSError:
    return ClosedError() if code == POLL_ERR_CLOSING else DeadlineExceeded()


# fdMutex state bits (Go's mutexRLock, mutexWLock, mutexClosed, mutexRWait/mutexWWait, mutexRef).
_RLOCK = MODE_READ
_WLOCK = MODE_WRITE
_CLOSING = 4
_RWAIT = MODE_READ << 3  # the wait bit of a mode is mode << 3
_WWAIT = MODE_WRITE << 3
_REF = 32  # one reference; state // _REF is the count
_UNLOCK_SLOW = _CLOSING | _RWAIT | _WWAIT  # unlock must hand the lock on or may close the fd


class FD:
    """FD is one non-blocking fd registered with the netpoller; `sock` is its socket, if any."""

    __slots__ = ("closed", "drained", "fd", "mu", "pd", "sock", "state", "waiters")

    def __init__(self, fd: int, sock: socket.socket | None = None) -> None:
        self.fd = fd
        self.sock = sock
        self.mu = _lock.new("fd.mu")
        self.state = 0
        # closed: the fd itself was closed (after closing and the last reference).
        self.closed = False
        # waiters[mode]: the parking lot of the Gs queued for the read (1) or write (2) lock,
        # guarded by mu; None until a G first queues there (most fds never see two Gs contend
        # for one direction). Index 0 is unused.
        self.waiters: list[ParkingLot | None] = [None, None, None]
        # drained: the last stream read (io with stream) got fewer bytes than it asked for, so
        # the socket was empty then; owned by the holder of the read lock.
        self.drained = False
        if sock is not None:
            sock.setblocking(False)
        else:
            os.set_blocking(fd, False)
        self.pd = pollopen(fd, self._shutdownclose)

    @property
    def closing(self) -> bool:
        """closing: close() was called (the fd itself may still be open for a last operation)."""
        return bool(self.state & _CLOSING)

    # --- references and the per-direction locks ---

    async def lock(self, mode: int) -> None:
        """lock takes a reference and mode's lock (FIFO); raises ClosedError once closing.

        The I/O loops call _trylock themselves first, without this coroutine, and lock only when
        it fails; a lock freed in between is taken here or by _lockcommit, without parking.
        """
        with self.mu:
            s = self.state
            if s & _CLOSING:
                raise ClosedError()
            if not s & mode:
                self.state = s + mode + _REF
                return
            self.state = s + _REF  # the reference is held while queued
        await gopark(self._lockcommit, mode, WaitReason.SEMACQUIRE)
        # unlock handed the lock to us.
        if self.state & _CLOSING:
            self.unlock(mode)
            raise ClosedError()

    def _trylock(self, mode: int) -> bool:
        """_trylock is lock's fast path: a reference and mode's lock if free and not closing."""
        mu = self.mu
        mu.acquire()  # hot path (every I/O call): acquire/release cost half of a with block
        s = self.state
        if s & (mode | _CLOSING):
            mu.release()
            return False
        self.state = s + mode + _REF
        mu.release()
        return True

    def _lockcommit(self, gp: G, mode: int) -> bool:
        """_lockcommit is lock's park commit: gp is WAITING; queue it for mode's lock under mu,
        or take the lock for it and resume it at once if the lock was freed meanwhile."""
        with self.mu:
            s = self.state
            if not s & mode:
                self.state = s | mode
                return False
            lot = self.waiters[mode]
            if lot is None:
                lot = self.waiters[mode] = ParkingLot(self.mu)
            lot.park(gp)
            self.state = s | (mode << 3)
            return True

    def unlock(self, mode: int) -> None:
        """unlock hands mode's lock to the next waiter and drops the reference; the last reference
        of a closing FD closes the fd."""
        mu = self.mu
        mu.acquire()
        s = self.state
        if not s & _UNLOCK_SLOW and s & mode:
            self.state = s - mode - _REF  # no waiter, not closing: the common case
            mu.release()
            return
        nxt: G | None = None
        try:
            if not s & mode:
                what = "read" if mode == MODE_READ else "write"
                raise Throw(f"fd.unlock: fd {self.fd} unlocks a {what} lock it does not hold")
            if s & (mode << 3):
                lot = self.waiters[mode]
                sg = lot.unpark_one(handoff=True) if lot is not None else None
                if sg is None:
                    raise Throw(f"fd.unlock: fd {self.fd} has its wait bit set for mode {mode} and no waiter")
                nxt = sg.g  # ownership passes directly: the lock bit stays set
                if lot.first is None:
                    s &= ~(mode << 3)
            else:
                s -= mode
            destroy = self._decref(s)
        finally:
            mu.release()
        if nxt is not None:
            goready(nxt)
        if destroy:
            self._destroy()

    def incref(self) -> None:
        """incref takes a reference without a direction lock (close_write, getsockopt)."""
        with self.mu:
            if self.state & _CLOSING:
                raise ClosedError()
            self.state += _REF

    def decref(self) -> None:
        with self.mu:
            destroy = self._decref(self.state)
        if destroy:
            self._destroy()

    def _decref(self, s: int) -> bool:
        """_decref (mu held) stores state s less one reference; True if the caller must now close
        the fd (closing, and that was the last reference)."""
        if _lock.lockcheck:
            _lock.assert_held(self.mu, "fd.decref")
        if s < _REF:
            raise Throw(f"fd.decref: negative reference count on fd {self.fd}")
        s -= _REF
        self.state = s
        destroy = s & _CLOSING != 0 and s < _REF and not self.closed
        if destroy:
            self.closed = True
        return destroy

    def close(self) -> None:
        """close wakes every G using the fd with ClosedError; the fd itself is closed when the last
        of them lets go. Closing twice does nothing."""
        with self.mu:
            s = self.state
            if s & _CLOSING:
                return
            self.state = s | _CLOSING
            destroy = s < _REF and not self.closed
            if destroy:
                self.closed = True
        evict(self.pd)
        if destroy:
            self._destroy()

    def _destroy(self) -> None:
        pollclose(self.pd)
        self._sysclose()

    def _sysclose(self) -> None:
        if self.sock is not None:
            self.sock.close()
        else:
            os.close(self.fd)

    def _shutdownclose(self) -> None:
        """_shutdownclose: the runtime is ending with this fd open; its Gs are gone with it."""
        with self.mu:
            self.state |= _CLOSING
            if self.closed:
                return
            self.closed = True
        self._sysclose()

    # --- waiting ---

    async def wait(self, mode: int) -> None:
        """wait parks until the fd is ready in mode (the caller holds a reference and mode's lock)."""
        pd = self.pd
        while not await netpollblock(pd, mode):
            err = netpollcheckerr(pd, mode)
            if err:
                raise _pollerr(err)

    def checkerr(self, mode: int) -> None:
        """checkerr raises if a wait in mode would fail now (Go's pd.prepare)."""
        err = netpollcheckerr(self.pd, mode)
        if err:
            raise _pollerr(err)

    def set_deadline(self, mode: int, deadline: float | None) -> None:
        with self.mu:
            if self.closing:
                raise ClosedError()
        setdeadline(self.pd, mode, deadline)

    # --- the operation loop ---

    async def io(self, mode: int, fn: Callable[..., Any], *args: Any, stream: int = 0) -> Any:
        """io runs fn(*args) until it does not raise BlockingIOError, parking on EAGAIN.

        stream > 0 marks a stream socket's read (recv or recv_into) of up to that many bytes,
        which skips the system call that would fail. Such a read that returns fewer bytes than it
        asked for (but not 0, end of stream) has emptied the socket's receive queue. The fd is
        registered edge-triggered, so any byte that arrives after that read brings a new epoll
        event, and the next read waits for that event first (netpollblock returns at once if it
        was already banked as PD_READY) instead of trying recv and failing with EAGAIN, as nginx
        does after a short recv on an edge-triggered socket. A spurious wake-up only costs the
        loop one EAGAIN; a byte cannot be missed, because it could only have arrived after the
        short read, with its edge.

        An end of stream or an error can be pending behind the last byte with no event to come
        (the FIN came with the data, and its event was delivered before the read): once an event
        has said so (pd.hup, set before that event readied anyone), reads always try the call,
        as nginx's pending_eof. A stale False read here is harmless: the event that sets it has
        then not yet been delivered, and will bank PD_READY or wake the waiter. Datagrams and
        other fds pass no stream: a short read there says nothing about what is queued.
        `drained` belongs to whoever holds the read lock.
        """
        if not self._trylock(mode):
            await self.lock(mode)
        try:
            self.checkerr(mode)
            pd = self.pd
            parked = stream > 0 and self.drained
            if parked:
                self.drained = False
            while True:
                if parked:
                    # FD.wait, written out on purpose: one coroutine less per park on every
                    # stream's path (its cost in instructions: docs/benchmarks.md, Networking).
                    while not await netpollblock(pd, mode):
                        err = netpollcheckerr(pd, mode)
                        if err:
                            raise _pollerr(err)
                try:
                    r = fn(*args)
                    break
                except (BlockingIOError, InterruptedError):
                    parked = True
            if stream:
                n = r if type(r) is int else len(r)
                self.drained = 0 < n < stream and not pd.hup
        finally:
            self.unlock(mode)
        if not parked and _park.anypreempt and preempt_requested():  # completed without parking (see park.py)
            await gosched()
        return r

    async def write_all(self, data: bytes | bytearray | memoryview, send: Callable[[Any], int]) -> int:
        """write_all writes all of data with send (a partial-write call), parking on EAGAIN; the write
        lock is held throughout so concurrent writes never interleave."""
        # bytes go to send as they are; anything else (and bytes after a partial write) through a
        # byte-format memoryview, so slicing never copies.
        view: Any = data if type(data) is bytes else memoryview(data).cast("B")
        total = len(view)
        if not self._trylock(MODE_WRITE):
            await self.lock(MODE_WRITE)
        try:
            self.checkerr(MODE_WRITE)
            parked = False
            off = 0
            while off < total:
                try:
                    if off:
                        if type(view) is bytes:
                            view = memoryview(view)
                        off += send(view[off:])
                    else:
                        off += send(view)
                    continue
                except (BlockingIOError, InterruptedError):
                    pass
                parked = True
                await self.wait(MODE_WRITE)
        finally:
            self.unlock(MODE_WRITE)
        if not parked and _park.anypreempt and preempt_requested():
            await gosched()
        return total
