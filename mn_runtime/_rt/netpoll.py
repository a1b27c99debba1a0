"""netpoll: the poller thread, which turns fd readiness and expired timers into runnable Gs.

One thread per runtime (Go runs netpoll from findrunnable and sysmon; under the GIL a dedicated
thread that sleeps in epoll_wait, a system call that releases the GIL, costs nothing while idle).
Each round:
  1. wait in the backend (netpoll_epoll.py) until an fd event, a break, or the earliest timer;
  2. collect every G readied by fd events (netpollready) and by timers fired into one batch;
  3. inject the batch into the global queue in one step and start idle Ms for it (injectglist);
     the Gs timers readied go to its front, which every P looks at next (globrunq.py).

`busy` is set under sched.lock from before the poller takes its first G off a semaphore until its
whole batch is queued, so checkdead does not mistake that moment for a deadlock.

An M that runs out of work first polls the backend without blocking (poll_nonblocking, Go's
netpoll(0) in findrunnable) when any fd is registered: a G whose fd is already ready then runs on
that M without a round trip through this thread. (Go asks its count of waiting Gs instead; keeping
one here would cost a lock hold per park and per wake, polldesc.py.)
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from .idle import checkdead, injectglist
from .snapshot import NetpollStats
from .tls import tls

if TYPE_CHECKING:
    from .g import G
    from .p import P
    from .polldesc import PollDesc
    from .sched import Sched

# --- The poller's modes, and the backend contract (Go's netpoll.go head) ---

# An fd event is a bit set of modes. pollDesc semaphores exist for MODE_READ (pd.rg) and
# MODE_WRITE (pd.wg); MODE_HUP rides along with MODE_READ when the peer hung up or the fd failed:
# a read then returns at once, with no further event to come.
MODE_READ = 1
MODE_WRITE = 2
MODE_HUP = 4


class Backend(Protocol):
    """Backend is what the poller needs of the OS's readiness interface (Go's netpollinit,
    netpollopen, netpollclose, netpoll, netpollBreak). netpoll_epoll.py is the one there is.

    The backend knows nothing of Gs or run queues: it hands each fd event to its pollDesc
    (polldesc.netpollready), which readies the Gs. `fds` maps fd -> pollDesc under `lock` and is
    also the runtime's hint that Gs may wait on the network.
    """

    lock: Any
    fds: dict[int, PollDesc]
    mpoll: bool  # whether Ms poll the backend themselves (Go's netpoll(0) in findrunnable)
    lastpoll: float  # time.monotonic() of the last look at the fds (under lock)
    nevents: int  # fd events handed to pollDescs (statistics, under lock)

    def register(self, fd: int, pd: PollDesc) -> None:
        """register starts watching fd for pd, both directions, edge-triggered (netpollopen)."""

    def deregister(self, fd: int, pd: PollDesc | None = None) -> None:
        """deregister stops watching fd, before it is closed; its queued events are dropped."""

    def wait(self, timeout: float | None, arm: bool) -> bool:
        """wait: the poller thread sleeps until a break, the timeout, or with arm an fd event;
        True if fd events are queued."""

    def block(self, timeout: float) -> bool:
        """block: an M that keeps its P waits for fd events or an mbreak; True if events queued."""

    def collect(self, glist: list[G]) -> int:
        """collect hands every queued fd event to its pollDesc without blocking (any thread),
        which readies waiting Gs into glist; returns the number of events."""

    def waiting(self) -> bool:
        """waiting: does a G wait on some registered fd? (checkdead's question)"""

    def wakeup(self) -> None:
        """wakeup breaks the poller thread's wait (netpollBreak); coalesced."""

    def mbreak(self) -> None:
        """mbreak breaks an M's block."""

    def close(self) -> None:
        """close releases the backend's fds; later registers raise OSError."""


def new_backend() -> Backend:
    """new_backend makes the platform's backend when a runtime starts."""
    # The one import from a higher floor: the backend implements the contract above and imports
    # the modes from here (Go picks its netpoll_*.go by build tags). Made when a runtime starts.
    from .netpoll_epoll import EpollBackend

    return EpollBackend()


class Netpoller:
    def __init__(self, sched: Sched) -> None:
        self.sched = sched
        self.backend = new_backend()
        self.busy = False
        # armed: the poller's current wait includes fd events (decided under sched.lock).
        self.armed = False
        # fdquiet: under a VirtualClock, the poller's last wait watched the fds for the clock's
        # io_grace and saw no event; true only inside the sched.lock hold of its _setbusy(False),
        # where checkdead lets the clock jump although Gs wait on fds (timers.py, VirtualClock).
        self.fdquiet = False
        self.thread = threading.Thread(target=self.loop, name="mn-netpoll", daemon=True)
        # Statistics, written by the poller thread only, read racily (Ms count their own polls).
        self.nwakeups = 0
        self.nbatches = 0
        self.ninjected = 0
        self.nfdevents = 0
        self.batchsizes: list[int] = [0] * 8  # histogram by powers of two: 1, 2-3, 4-7, ...

    def start(self) -> None:
        self.thread.start()

    def wakeup(self) -> None:
        self.backend.wakeup()

    def waiting(self) -> bool:
        """waiting: does a G wait on some fd? Exact only for checkdead (polldesc.py, Invariants);
        sched.lock -> backend.lock, and no pd.lock."""
        return self.backend.waiting()

    def _setbusy(self, busy: bool, fdquiet: bool = False) -> bool:
        """_setbusy marks the poller busy (collecting and queueing Gs) or done with its batch.

        Done re-runs checkdead in the same sched.lock hold: an M that went idle while the poller
        was busy skipped its deadlock check (the batch might have readied a G), so when the batch
        readied nobody, the poller is the last one who can notice that nothing ever will.
        Busy returns whether a VirtualClock asked for due timers to be fired (taken in the same
        hold); fdquiet is passed on to that clock's decision (see `fdquiet` above).
        """
        sched = self.sched
        vc = sched.timers.virtual
        fire = False
        with sched.lock:
            self.busy = busy
            if busy:
                fire = vc is not None and vc.take_fire()
                dead = None
            else:
                self.fdquiet = fdquiet
                dead = checkdead(sched)
                self.fdquiet = False
        if dead is not None:
            sched.stop(error=dead)
        return fire

    def loop(self) -> None:
        sched = self.sched
        timers = sched.timers
        glist: list[G] = []
        tls.glist = glist
        try:
            while not sched.stopping:
                timeout = timers.wait_timeout()
                if sched.chaos is not None:
                    timeout = sched.chaos.poll_timeout(timeout)
                with sched.lock:
                    # Wait for fd events only while no P runs: a running M polls them itself
                    # when it runs out of work (and sysmon does after 10 ms). pidleput breaks
                    # this wait when the last P goes idle, so the decision is never stale.
                    # MN_NETPOLL_MPOLL=0: Ms never poll, so the poller always watches fds.
                    arm = self.armed = sched.npidle == sched.procs or not self.backend.mpoll
                    # Virtual time with Gs on fds: when the clock asks, watch them for io_grace
                    # real seconds; if nothing comes, checkdead may let it jump (timers.py).
                    vc = timers.virtual
                    watch = vc is not None and vc.take_wantquiet() and arm
                if watch:
                    assert vc is not None
                    timeout = vc.io_grace
                t0 = time.monotonic() if watch else 0.0
                events = self.backend.wait(timeout, arm)
                quiet = watch and not events and time.monotonic() - t0 >= (timeout or 0.0)
                timers.awake()
                self.nwakeups += 1
                if sched.stopping:
                    break
                # busy before the first G leaves a semaphore, until the last is queued (checkdead).
                fire = self._setbusy(True)
                firelock = timers.firelock
                firelock.acquire()  # until the timers' Gs are queued (timers.py)
                try:
                    nfd = self.backend.collect(glist) if events else 0
                    nfdg = len(glist)  # Gs readied by fd events; timers append theirs after them
                    # Under a VirtualClock timers fire here only when a jump asked for it. The
                    # clock's own now(): replay mode's heap notes each of its now() readings.
                    ntimers = timers.run_expired(timers.clock.now()) if vc is None or fire else 0
                    if glist:
                        self._account(len(glist))
                        tr = sched.tracer
                        if tr is not None:
                            tr.netpoll_inject(len(glist), nfd, ntimers)
                        if nfdg:
                            injectglist(sched, glist[:nfdg])
                        if len(glist) > nfdg:
                            injectglist(sched, glist[nfdg:], timers=True)
                        glist.clear()
                    self.nfdevents += nfd
                finally:
                    firelock.release()
                    self._setbusy(False, quiet)
        except BaseException as e:  # a runtime bug; surface it from run()
            sched.stop(error=e)
        finally:
            tls.glist = None

    def _account(self, n: int) -> None:
        self.nbatches += 1
        self.ninjected += n
        self.batchsizes[min(n.bit_length() - 1, 7)] += 1

    def _mpoll(self) -> list[G]:
        """_mpoll: an M looks at epoll without blocking (Go's netpoll(0)); the Gs it readied."""
        glist: list[G] = []
        backend = self.backend
        if backend.mpoll:
            backend.collect(glist)
        if glist:
            m = tls.m
            if m is not None:
                m.nnetpoll += 1
        return glist

    def poll_nonblocking(self, p: P) -> G | None:
        """poll_nonblocking: an M out of work takes ready fds itself; one G to run, rest injected."""

        glist = self._mpoll()
        if not glist:
            return None
        gp = glist.pop()
        if glist:
            injectglist(self.sched, glist, p=p)
        return gp

    def poll_blocking(self, p: P, timeout: float) -> G | None:
        """poll_blocking: the M of the last running P, out of work while Gs wait on fds, waits in
        epoll for at most timeout seconds keeping its P, then runs what it finds (Go's blocking
        netpoll in findrunnable). None: nothing came, or a break (Gs queued on the global queue).

        Under the GIL this is what makes a request/response server cheap between bursts: without
        it the M gives up its P and sleeps, the poller thread is armed, and each new request
        costs a wake-up of the poller, a GIL hand-off, the M's wake-up and another hand-off (two
        context switches per burst, measured with redis-benchmark). Here the M wakes in epoll
        itself, as asyncio's loop and Go's M do. Gs queued by anyone else while it waits (timers
        the poller thread fires, a syscall's G with no P to return to, sysmon's poll) break the
        wait: injectglist and exitsyscall read `sched.mpolling` in the same sched.lock hold that
        queues them. The wait is bounded, so an idle program gives its P up after it.
        """
        sched = self.sched
        with sched.lock:
            if sched.runq.q or sched.stopping:
                return None
            sched.mpolling += 1
        try:
            events = self.backend.block(timeout)
        finally:
            with sched.lock:
                sched.mpolling -= 1
        return self.poll_nonblocking(p) if events else None

    def poll_inject(self) -> None:
        """poll_inject: an M with work looks at the network anyway and queues what is ready on the
        global queue (called every GLOBAL_POLL_TICKS schedules while fds are registered).

        Not on the M's own ring, unlike poll_nonblocking's: this P still has work, and Gs it
        readied onto its ring would run ahead of everything on the global queue, which it serves
        only every 61st schedule. Busy connections would then keep their ring to themselves and
        starve the rest (a 1000-client echo ran in waves of ~256 clients).
        """

        glist = self._mpoll()
        if glist:
            injectglist(self.sched, glist)

    def stats(self) -> NetpollStats:
        """stats: the poller's snapshot (NetpollStats), from any thread. The thread's counters
        are read racily (it alone writes them), the backend's under its lock."""
        backend = self.backend
        with backend.lock:
            nevents = backend.nevents
        return NetpollStats(
            wakeups=self.nwakeups,
            batches=self.nbatches,
            injected=self.ninjected,
            fd_events=nevents,
            batch_sizes=list(self.batchsizes),
        )

    def join(self) -> None:
        if self.thread.is_alive():
            self.thread.join()

    def close(self) -> None:
        self.backend.close()
