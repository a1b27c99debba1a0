"""polldesc: the per-fd half of the netpoller (Go's runtime/netpoll.go pollDesc).

A PollDesc tracks one registered fd. Its read and write semaphores `rg` and `wg` each hold one of:

  None      (pdNil)   nobody waits and no readiness is banked.
  PD_READY  (pdReady) the fd became ready (or was unblocked) with nobody waiting; the next
                      netpollblock consumes it (PD_READY -> None) and returns at once.
  PD_WAIT   (pdWait)  a G announced it will park (netpollblock) but its park has not committed yet.
  a G                 that G is parked on this direction (netpollblockcommit did PD_WAIT -> G).

Transitions (all under `pd.lock`, taken before only the timer heap's lock, by setdeadline; each is
Go's CAS done as compare-then-set under the lock):

  netpollblock:        None -> PD_WAIT, or PD_READY -> None (return: ready)
  netpollblockcommit:  PD_WAIT -> G (park stays), anything else -> park fails, G resumes
  after the park:      swap to None; PD_READY means "retry the syscall"
  netpollunblock(io):  None|PD_WAIT|G -> PD_READY, returning the G if there was one
  netpollunblock(!io): PD_WAIT|G -> None, returning the G (deadline or close)

A second G reaching netpollblock while the semaphore is PD_WAIT or a G is an internal error
(Throw "netpollblock: double wait"): fd.py serialises readers and writers, so it cannot happen
through the public API.

Invariants:
- Nothing counts the Gs parked on pollDescs (Go's atomic netpollWaiters would cost a lock hold per
  park and per wake here). Those who only need a hint ask whether any fd is registered
  (EpollBackend.fds); checkdead, which must be exact, asks `netpollwaiting`, which looks at every
  pollDesc. Its answer is stable when checkdead asks (every M idle, so no G is parking): only the
  poller thread and sysmon can then take a G off a semaphore, and each first says so under
  sched.lock (`netpoll.busy`, `sysmon.polling`) until the G is on the global queue.
- `rd`/`wd` are 0 (no deadline), -1 (expired) or an absolute time on the runtime's clock
  (sched.timers.now(): time.monotonic(), or a VirtualClock's; timers.py). A deadline timer
  carries (pd, seq) and acts only if `rseq`/`wseq` still equal seq: every change of a deadline and
  every close bumps the sequence, so a timer that fires late for an old deadline does nothing.
- Once `closing` is set it stays set; every waiter is woken and every later wait fails.
"""

from __future__ import annotations

import time
import types
from typing import TYPE_CHECKING, Any

from ..errors import Throw
from . import lock as _lock
from . import tls as _tls
from .g import G, WaitReason
from .netpoll import MODE_HUP, MODE_READ, MODE_WRITE
from .park import goready, goready_into
from .timers import NEVER, Timer
from .tls import tls
from .traps import PARK

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable

    from .sched import Sched

__all__ = [
    "PD_READY",
    "PD_WAIT",
    "POLL_ERR_CLOSING",
    "POLL_ERR_TIMEOUT",
    "POLL_NO_ERROR",
    "PollDesc",
    "netpollblock",
    "netpollcheckerr",
    "netpollready",
    "netpollunblock",
]


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_IO_WAIT = WaitReason.IO_WAIT

PD_READY: Any = _Sentinel("pdReady")
PD_WAIT: Any = _Sentinel("pdWait")

POLL_NO_ERROR = 0  # falsy: callers test `if err:`
POLL_ERR_CLOSING = 1
POLL_ERR_TIMEOUT = 2


class PollDesc:
    """PollDesc is the netpoller's state for one fd (Go's pollDesc); see the module docstring."""

    __slots__ = (
        "closer",
        "closing",
        "fd",
        "hup",
        "lock",
        "rd",
        "regseq",
        "rg",
        "rseq",
        "rt",
        "sched",
        "wd",
        "wg",
        "wseq",
        "wt",
    )

    def __init__(self, fd: int, sched: Sched | None = None) -> None:
        self.fd = fd
        self.sched = sched
        self.lock = _lock.new("pd.lock")
        self.rg: Any = None
        self.wg: Any = None
        self.closing = False
        # hup: an event said the peer hung up or the fd failed (MODE_HUP); set once, under lock,
        # before the event readies anyone. FD.io reads it for stream reads (see there).
        self.hup = False
        self.rseq = 0
        self.wseq = 0
        self.rd = 0.0
        self.wd = 0.0
        self.rt: Timer | None = None
        self.wt: Timer | None = None
        # regseq: the backend's registration number (netpoll_epoll.py uses it to tell events that
        # may predate this registration).
        self.regseq = 0
        # closer: closes the fd for good when the runtime shuts down with the fd still open.
        self.closer: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"<PollDesc fd={self.fd} rg={self.rg!r} wg={self.wg!r} closing={self.closing}>"


# --- waiters, for checkdead ---


def netpollwaiting(pds: Iterable[PollDesc]) -> bool:
    """netpollwaiting: does a G wait on (or about to park on) any of pds? Read without pd.lock,
    which is exact only when nobody can park or be readied meanwhile (checkdead, see above)."""
    for pd in pds:
        rg = pd.rg
        wg = pd.wg
        if (rg is not None and rg is not PD_READY) or (wg is not None and wg is not PD_READY):
            return True
    return False


# --- the state machine ---
# The semaphore of a mode is pd.rg (MODE_READ) or pd.wg (MODE_WRITE), read and written inline
# (`pd.rg if mode == MODE_READ else pd.wg`): a helper call would cost more than the transition.


def netpollcheckerr(pd: PollDesc, mode: int) -> int:
    """netpollcheckerr says whether a wait in mode must fail: closing, or deadline passed."""
    if pd.closing:
        return POLL_ERR_CLOSING
    if (pd.rd if mode == MODE_READ else pd.wd) < 0:
        return POLL_ERR_TIMEOUT
    return POLL_NO_ERROR


def netpollblockcommit(gp: G, arg: tuple[PollDesc, int]) -> bool:
    """netpollblockcommit runs on the M after gp parked: PD_WAIT -> gp, or False to resume gp."""
    pd, mode = arg
    lock = pd.lock
    lock.acquire()
    # Anything but PD_WAIT: readied or unblocked between netpollblock and the park.
    if mode == MODE_READ:
        ok = pd.rg is PD_WAIT
        if ok:
            pd.rg = gp
    else:
        ok = pd.wg is PD_WAIT
        if ok:
            pd.wg = gp
    lock.release()
    return ok


@types.coroutine
def netpollblock(pd: PollDesc, mode: int, waitio: bool = False) -> Generator[Any, Any, bool]:
    """netpollblock parks the running G until pd is ready in mode; True if it became ready.

    False means the G was woken by a deadline or a close (or not parked because one was already
    in force): the caller checks netpollcheckerr, as Go's poll_runtime_pollWait does. A
    generator-based coroutine that yields its PARK trap itself, without a gopark generator per
    park (corofn.py).
    """
    read = mode == MODE_READ
    lock = pd.lock
    lock.acquire()
    v = pd.rg if read else pd.wg
    if v is PD_READY:
        if read:
            pd.rg = None
        else:
            pd.wg = None
        lock.release()
        return True
    if v is not None:
        lock.release()
        raise Throw(f"netpollblock: double wait on fd {pd.fd} ({'read' if read else 'write'})")
    if read:
        pd.rg = PD_WAIT
    else:
        pd.wg = PD_WAIT
    park = waitio or not netpollcheckerr(pd, mode)
    lock.release()
    if park:
        yield (PARK, netpollblockcommit, (pd, mode), _IO_WAIT)
    lock.acquire()
    if read:
        old = pd.rg
        pd.rg = None
    else:
        old = pd.wg
        pd.wg = None
    lock.release()
    if old is not None and old is not PD_READY and old is not PD_WAIT:
        raise Throw(f"netpollblock: corrupted polldesc on fd {pd.fd}: {old!r} after wake-up")
    return old is PD_READY


def netpollunblock(pd: PollDesc, mode: int, ioready: bool) -> G | None:
    """netpollunblock (pd.lock held) releases mode's waiter; ioready banks readiness as PD_READY.

    Returns the parked G to ready, if any; the caller readies it after dropping pd.lock.
    """
    if _lock.lockcheck:
        _lock.assert_held(pd.lock, "netpollunblock")
    read = mode == MODE_READ
    old = pd.rg if read else pd.wg
    if old is PD_READY:
        return None
    if old is None and not ioready:
        return None  # nothing to wake; a deadline or close leaves no trace for a later wait
    new = PD_READY if ioready else None
    if read:
        pd.rg = new
    else:
        pd.wg = new
    if old is None or old is PD_WAIT:
        return None  # the G will find the new value in netpollblockcommit and not park
    return old  # type: ignore[no-any-return]


def netpollready(glist: list[G], pd: PollDesc, mode: int) -> None:
    """netpollready (called by the backend for an fd event) readies pd's waiters into glist."""
    rg = wg = None
    lock = pd.lock
    lock.acquire()
    try:
        if mode & MODE_HUP:
            pd.hup = True
        if mode & MODE_READ:
            rg = netpollunblock(pd, MODE_READ, True)
        # Nearly every event says writable too (epoll reports the whole mask at each edge), and
        # the write side usually has its readiness banked already: then there is nothing to do.
        if mode & MODE_WRITE and pd.wg is not PD_READY:
            wg = netpollunblock(pd, MODE_WRITE, True)
    finally:
        lock.release()
    if rg is not None:
        goready_into(glist, rg)
    if wg is not None:
        goready_into(glist, wg)


def _ready(gp: G | None) -> None:
    if gp is not None:
        goready(gp)


# --- deadlines (Go's poll_runtime_pollSetDeadline and netpolldeadlineimpl) ---


def _deadlinefired(arg: tuple[PollDesc, int, int]) -> None:
    """_deadlinefired is a deadline timer's function (poller thread): expire and wake, if current."""
    pd, mode, seq = arg
    with pd.lock:
        if pd.closing or seq != (pd.rseq if mode == MODE_READ else pd.wseq):
            return  # the deadline was moved, cleared or the pd closed since this timer was armed
        if mode == MODE_READ:
            pd.rd = -1.0
            pd.rt = None
        else:
            pd.wd = -1.0
            pd.wt = None
        gp = netpollunblock(pd, mode, False)
    _ready(gp)


def setdeadline(pd: PollDesc, mode: int, deadline: float | None) -> None:
    """setdeadline sets the read and/or write deadline of pd (mode a bit set) to an absolute
    time on the runtime's clock, or clears it (None, or NEVER or more away: timers.py). A parked
    G's timer is re-armed; a past deadline wakes it at once."""
    s = pd.sched
    timers = getattr(s, "timers", None)  # None without a runtime (or with a test's stand-in sched)
    now = timers.now() if timers is not None else time.monotonic()
    if deadline is not None and deadline - now >= NEVER:
        deadline = None
    wake: list[G] = []
    stop: list[Timer] = []
    with pd.lock:
        if pd.closing:
            return
        for m in (MODE_READ, MODE_WRITE):
            if not mode & m:
                continue
            if deadline is None:
                d = 0.0
            elif deadline <= now:
                d = -1.0
            else:
                d = deadline
            old = pd.rt if m == MODE_READ else pd.wt
            if old is not None:
                stop.append(old)
            if m == MODE_READ:
                pd.rseq += 1
                seq = pd.rseq
                pd.rd = d
            else:
                pd.wseq += 1
                seq = pd.wseq
                pd.wd = d
            t = None
            if d > 0 and s is not None:
                # A fresh Timer per deadline: its (pd, mode, seq) argument can never be seen half
                # updated by a poller thread that is firing the previous one.
                t = Timer(_deadlinefired, (pd, m, seq))
                s.timers.add(t, d)
            if m == MODE_READ:
                pd.rt = t
            else:
                pd.wt = t
            if d < 0:
                gp = netpollunblock(pd, m, False)
                if gp is not None:
                    wake.append(gp)
    if s is not None:
        for t in stop:
            s.timers.stop(t)
    for gp in wake:
        goready(gp)


# --- close (Go's poll_runtime_pollUnblock and poll_runtime_pollClose) ---


def evict(pd: PollDesc) -> None:
    """evict marks pd closing, wakes every G parked on it, and disarms its deadlines."""
    with pd.lock:
        if pd.closing:
            return
        pd.closing = True
        pd.rseq += 1
        pd.wseq += 1
        rg = netpollunblock(pd, MODE_READ, False)
        wg = netpollunblock(pd, MODE_WRITE, False)
        timers = [t for t in (pd.rt, pd.wt) if t is not None]
        pd.rt = pd.wt = None
    s = pd.sched
    if s is not None:
        for t in timers:
            s.timers.stop(t)
    _ready(rg)
    _ready(wg)


def pollclose(pd: PollDesc) -> None:
    """pollclose deregisters pd's fd (before the fd is closed); pd must be evicted with no waiter."""
    with pd.lock:
        if not pd.closing:
            raise Throw(f"pollclose: fd {pd.fd} closed without evict")
        for v in (pd.rg, pd.wg):
            if v is not None and v is not PD_READY:
                raise Throw(f"pollclose: fd {pd.fd} closed with a waiter ({v!r})")
    s = pd.sched
    if s is not None:
        s.netpoll.backend.deregister(pd.fd, pd)


def pollopen(fd: int, closer: Callable[[], None]) -> PollDesc:
    """pollopen registers fd with the running runtime's poller (Go's poll_runtime_pollOpen)."""
    s = _tls.cur
    if s is None or tls.m is None:
        raise RuntimeError("mn_runtime networking needs a running runtime: call it inside mn_runtime.run(main)")
    pd = PollDesc(fd, s)
    pd.closer = closer
    s.netpoll.backend.register(fd, pd)
    return pd
