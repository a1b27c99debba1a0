"""netpoll_epoll: the epoll backend of the netpoller (Go's netpoll_epoll.go).

Contract with netpoll.py: `poll(timeout, glist)` blocks in epoll_wait for at most timeout seconds
(None: no limit; 0: just look), and for each fd event calls `polldesc.netpollready(glist, pd,
mode)` with mode a bit set of MODE_READ and MODE_WRITE; it returns the number of fd events. An
eventfd registered level-triggered breaks the wait (`wakeup`, Go's netpollBreak); only the poller
thread drains it, so a non-blocking poll from an M leaves it for the poller. The backend knows
nothing of Gs or run queues: pollDescs translate readiness into readied Gs.

Each fd is registered once, edge-triggered, for both directions (EPOLLIN | EPOLLOUT | EPOLLRDHUP |
EPOLLET), as Go does. `fds` maps fd -> pollDesc under `lock`.
"""

from __future__ import annotations

import os
import select
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .g import G

MODE_READ = 1
MODE_WRITE = 2

_EV_READ = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
_EV_WRITE = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR
_EV_REGISTER = select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET


class EpollBackend:
    def __init__(self) -> None:
        self.ep = select.epoll()
        self.efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.ep.register(self.efd, select.EPOLLIN)
        self.lock = threading.Lock()
        self.fds: dict[int, Any] = {}
        self.break_pending = False
        self.closed = False

    def register(self, fd: int, pd: Any) -> None:
        """register adds fd, whose readiness pd tracks, to the epoll set (Go's netpollopen)."""
        with self.lock:
            if self.closed:
                raise OSError("netpoll: runtime is shutting down")
            self.fds[fd] = pd
            try:
                self.ep.register(fd, _EV_REGISTER)
            except OSError:
                del self.fds[fd]
                raise

    def deregister(self, fd: int) -> None:
        """deregister removes fd before it is closed (Go's netpollclose)."""
        with self.lock:
            self.fds.pop(fd, None)
            if self.closed:
                return
            try:
                self.ep.unregister(fd)
            except OSError:
                pass  # already closed elsewhere: the kernel dropped it from the set

    def lookup(self, fd: int) -> Any:
        with self.lock:
            return self.fds.get(fd)

    def poll(self, timeout: float | None, glist: list[G], drain: bool) -> int:
        """poll waits for events and hands each to its pollDesc; drain: this is the poller thread."""
        events = self.ep.poll(-1 if timeout is None else timeout, 256)
        n = 0
        for fd, ev in events:
            if fd == self.efd:
                if drain:
                    try:
                        os.eventfd_read(self.efd)
                    except BlockingIOError:
                        pass
                    with self.lock:
                        self.break_pending = False
                continue
            mode = 0
            if ev & _EV_READ:
                mode |= MODE_READ
            if ev & _EV_WRITE:
                mode |= MODE_WRITE
            pd = self.lookup(fd)
            if pd is not None and mode:
                from .polldesc import netpollready  # only fds registered by polldesc get here

                n += 1
                netpollready(glist, pd, mode)
        return n

    def wakeup(self) -> None:
        """wakeup breaks a blocked poll (Go's netpollBreak); coalesces until the poller drains."""
        with self.lock:
            if self.break_pending or self.closed:
                return
            self.break_pending = True
        try:
            os.eventfd_write(self.efd, 1)
        except OSError:
            pass  # closed during shutdown

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.fds.clear()
        self.ep.close()
        os.close(self.efd)
