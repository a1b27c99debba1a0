"""netpoll_epoll: the epoll backend of the netpoller (Go's netpoll_epoll.go).

Implements netpoll.py's Backend contract: `wait(timeout, arm)` blocks the poller thread in epoll_wait for at most
timeout seconds (None: no limit) and says whether fd events are queued; `collect(glist)`, from any
thread, takes the queued fd events without blocking and for each calls `polldesc.netpollready(glist,
pd, mode)` with mode a bit set of MODE_READ, MODE_WRITE and MODE_HUP; it returns their number. An
eventfd registered level-triggered breaks the wait (`wakeup`, Go's netpollBreak); only the poller
thread drains it. The backend knows nothing of Gs or run queues: pollDescs translate readiness into
readied Gs. `fds` is also the runtime's hint that Gs may wait on the network (netpoll.py).

Each fd is registered once, edge-triggered, for both directions (EPOLLIN | EPOLLOUT | EPOLLRDHUP |
EPOLLET), as Go does. `fds` maps fd -> pollDesc under `lock`.

Two epoll sets. `ep` holds the fds; `outer` holds the eventfd and `ep` itself (an epoll fd is
readable while it has events queued). The poller thread waits on `outer`; Ms poll `ep` without
blocking. While `ep` is *armed* in `outer` the poller thread wakes for fd events; while disarmed it
wakes only for timers and breaks, and the running Ms pick fd events up themselves when they run
out of work (Go: only an M with nothing to do blocks in netpoll). Under the GIL this matters: a
poller thread woken for an event the running M is about to poll anyway needs the GIL to deliver
it, and the hand-offs cost more than the event. netpoll.py decides when to arm (every P idle).

Stale events. Go stores the pollDesc pointer and a sequence number in the epoll event, so an event
for a closed fd whose number was reused is recognised. Python's epoll gives back only the fd
number, so we use registration order instead: every register takes the next `regseq`, and each
poll notes `regseq` before it calls epoll_wait. An fd is always deregistered before it is closed,
and EPOLL_CTL_DEL drops its queued events, so an event returned by a wait that started after a
registration belongs to that registration. Only a pollDesc registered while the wait was in
progress is ambiguous: the event may belong to the previous holder of the number. Such an event
is not delivered; the fd is re-armed with EPOLL_CTL_MOD instead, which makes the kernel queue a
fresh edge if the fd is ready now, so a genuine event comes back on the next poll and none is lost.
"""

from __future__ import annotations

import os
import select
import time
from typing import TYPE_CHECKING, Any

from ..errors import Throw
from . import lock as _lock
from .netpoll import MODE_HUP, MODE_READ, MODE_WRITE
from .polldesc import netpollready, netpollwaiting
from .timers import MAX_POLL_WAIT

if TYPE_CHECKING:
    from .g import G

_EV_READ = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
_EV_WRITE = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR
_EV_HUP = select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
_EV_REGISTER = select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET


_EV_ANY = _EV_READ | _EV_WRITE | _EV_HUP


def _mode(ev: int) -> int:
    """_mode translates an epoll event mask into MODE_ bits."""
    mode = 0
    if ev & _EV_READ:
        mode |= (MODE_READ | MODE_HUP) if ev & _EV_HUP else MODE_READ
    if ev & _EV_WRITE:
        mode |= MODE_WRITE
    return mode


def _modes() -> dict[int, int]:
    """_modes: _mode of every combination of the bits it looks at (a few dozen), built once."""
    bits = [b for b in range(_EV_ANY.bit_length()) if _EV_ANY >> b & 1]
    table = {}
    for k in range(1 << len(bits)):
        ev = sum(1 << b for i, b in enumerate(bits) if k >> i & 1)
        table[ev] = _mode(ev)
    return table


# _MODES: read-only after import; collect looks up `ev & _EV_ANY` instead of testing bits per event.
_MODES = _modes()


class EpollBackend:
    def __init__(self) -> None:
        self.ep = select.epoll()
        self.efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.outer = select.epoll()
        self.outer.register(self.efd, select.EPOLLIN)
        self.outer.register(self.ep.fileno(), 0)  # disarmed until the poller arms it
        # mset: what an M that ran out of work waits on while it keeps its P (block): `ep`, and
        # `mefd`, an eventfd that breaks that wait (mbreak) when Gs are queued for it to run.
        self.mefd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.mset = select.epoll()
        self.mset.register(self.ep.fileno(), select.EPOLLIN)
        self.mset.register(self.mefd, select.EPOLLIN)
        # armed: whether the poller's wait includes fd events; written by the poller thread only
        # (netpoll.py decides under sched.lock and stores its decision in Netpoller.armed).
        self.armed = False
        self.lastpoll = 0.0  # time.monotonic() of the last look at `ep` (under lock)
        self.lock = _lock.new("netpoll.backend.lock")
        self.fds: dict[int, Any] = {}
        self.break_pending = False
        self.closed = False
        self.regseq = 0
        # mpoll: whether Ms poll epoll themselves (Go's netpoll(0) in findrunnable; netpoll.py
        # _mpoll); MN_NETPOLL_MPOLL=0 turns it off, so that the poller thread alone delivers
        # readiness. docs/benchmarks.md, Networking, has both measured.
        self.mpoll = os.environ.get("MN_NETPOLL_MPOLL", "1") != "0"
        self.nstale = 0  # ambiguous events re-armed instead of delivered (statistics)
        self.nevents = 0  # fd events handed to pollDescs, by any thread (under lock)

    def register(self, fd: int, pd: Any) -> None:
        """register adds fd, whose readiness pd tracks, to the epoll set (Go's netpollopen)."""
        with self.lock:
            if self.closed:
                raise OSError("netpoll: runtime is shutting down")
            if fd in self.fds:
                raise Throw(f"netpollopen: fd {fd} registered twice")
            self.regseq += 1
            pd.regseq = self.regseq
            self.fds[fd] = pd
            try:
                self.ep.register(fd, _EV_REGISTER)
            except OSError:
                del self.fds[fd]
                raise

    def deregister(self, fd: int, pd: Any = None) -> None:
        """deregister removes fd (tracked by pd, if given) before it is closed (Go's netpollclose)."""
        with self.lock:
            if pd is not None and self.fds.get(fd) is not pd:
                return  # already gone (the runtime shut down and closed it)
            self.fds.pop(fd, None)
            if self.closed:
                return
            try:
                self.ep.unregister(fd)
            except OSError:
                pass  # already closed elsewhere: the kernel dropped it from the set

    def waiting(self) -> bool:
        """waiting: does a G wait on some fd? Exact only for checkdead (polldesc.py, Invariants);
        sched.lock -> backend.lock, and no pd.lock."""
        with self.lock:
            return netpollwaiting(self.fds.values())

    def wait(self, timeout: float | None, arm: bool) -> bool:
        """wait blocks the poller thread for at most timeout seconds (None: no limit) until a
        break, or with arm until `ep` has fd events too; True if it has. The caller then collects
        them (after telling checkdead that it holds readied Gs, netpoll.py)."""
        if arm != self.armed:
            self.outer.modify(self.ep.fileno(), select.EPOLLIN if arm else 0)
            self.armed = arm
        events, broke = _waitset(self.outer, self.efd, -1 if timeout is None else timeout)
        if broke:
            with self.lock:
                self.break_pending = False
        return events

    def block(self, timeout: float) -> bool:
        """block waits at most timeout seconds for fd events or a break (mbreak), on the calling M;
        True if fd events are queued (the caller collects them). A break sent while nobody waits
        makes the next block return at once: a spurious wake-up, never a lost one."""
        return _waitset(self.mset, self.mefd, timeout)[0]

    def mbreak(self) -> None:
        """mbreak ends an M's block (Go's netpollBreak, for the M in netpoll)."""
        try:
            os.eventfd_write(self.mefd, 1)
        except OSError:
            pass  # closed during shutdown

    def collect(self, glist: list[G]) -> int:
        """collect takes the fd events queued in `ep` now, without blocking, and hands each to its
        pollDesc; returns how many. Any thread may call it (epoll_wait is thread-safe, and an
        edge-triggered event goes to one caller)."""
        with self.lock:
            seq = self.regseq
            self.lastpoll = time.monotonic()
        events = self.ep.poll(0, 256)
        if not events:
            return 0
        ready: list[tuple[Any, int]] = []
        fds = self.fds
        with self.lock:  # one hold for the whole batch: the lookups are short, the events many
            for fd, ev in events:
                mode = _MODES[ev & _EV_ANY]
                pd = fds.get(fd)
                if pd is None or not mode:
                    continue
                if pd.regseq > seq:
                    # Registered during this wait: maybe a previous holder's event. Re-arm.
                    self.nstale += 1
                    try:
                        self.ep.modify(fd, _EV_REGISTER)
                    except OSError:
                        pass  # closed meanwhile: nothing left to deliver
                    continue
                ready.append((pd, mode))
            self.nevents += len(ready)
        # pollDescs are readied outside the backend's lock (netpollready takes pd.lock, and a
        # pollDesc closed meanwhile only banks a readiness nobody waits for), as before.
        for pd, mode in ready:
            netpollready(glist, pd, mode)
        return len(ready)

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
        """close ends the backend at shutdown; fds still registered are closed too, so run() leaves
        no fd behind (their Gs are abandoned with the runtime)."""
        with self.lock:
            self.closed = True
            left = list(self.fds.values())
            self.fds.clear()
        for pd in left:
            closer = getattr(pd, "closer", None)
            if closer is not None:
                try:
                    closer()
                except OSError:
                    pass
        self.outer.close()
        self.mset.close()
        self.ep.close()
        os.close(self.efd)
        os.close(self.mefd)


def _waitset(eset: Any, efd: int, timeout: float) -> tuple[bool, bool]:
    """_waitset waits on eset, an epoll set holding `ep` and the eventfd efd, for at most timeout
    seconds (-1: no limit); returns (fd events queued in ep, broken by efd), efd drained.
    A timeout beyond MAX_POLL_WAIT is clamped to it (epoll_wait takes an int of milliseconds, about
    24.8 days at most; the caller looks at its timers again when the wait ends)."""
    if timeout > MAX_POLL_WAIT:
        timeout = MAX_POLL_WAIT
    events = broke = False
    for fd, _ in eset.poll(timeout, 2):
        if fd == efd:
            broke = True
            try:
                os.eventfd_read(efd)
            except BlockingIOError:
                pass
        else:
            events = True
    return events, broke
