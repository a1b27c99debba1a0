"""park: the one wake-up primitive under everything that waits (Go's gopark/goready).

    await gopark(commit, arg, reason)      # in the G that waits
    goready(g)                             # anywhere else, exactly once per park

goparkunlock(lock, reason) is gopark whose commit only releases `lock`, the usual case (a channel,
a mutex): its trap carries the lock and no commit, and the M releases the lock itself, saving a
Python call per park (Go's goparkunlock and parkunlock_c).

gopark yields a PARK trap. The M that steps the coroutine, once the coroutine is suspended, moves
the G to WAITING and only then calls commit(g, arg). A waiter registers itself under some lock (a
channel's, a pollDesc's) and passes a commit that releases that lock: whoever wants to wake it must
take the lock first, by which time the G is WAITING, so a goready from another M can never come
before the park it answers. commit returns True to stay parked, or False when it found the wait
already over, and the G resumes at once.

goready moves the G to RUNNABLE (a second goready for one park throws in casgstatus) and puts it
where it will run soon: in the readier's runnext when the readier is a G on an M with a P (the
readied G inherits the time slice, as Go), in the poller thread's batch when called from there,
or on the global queue otherwise.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable

from . import tls as _tls
from .g import RUNNABLE, WAITING, G, WaitReason, badgstatus
from .idle import injectglist, wakep
from .runq import runqput
from .tls import tls
from .traps import gosched_trap as gosched
from .traps import park_trap as gopark

__all__ = ["current_g", "gopark", "goparkunlock", "goready", "goready_into", "gosched", "preempt_requested"]


def goready(gp: G, next: bool = True) -> None:
    """goready makes gp, parked by gopark, runnable again; exactly once per gopark.

    next=False queues gp at the tail of the readier's ring instead of its runnext slot (Go's
    ready(gp, next)): for a wake-up that hands over no work, where gp should not jump ahead of Gs
    that are already runnable.
    """
    lk = gp.lock
    lk.acquire()
    if gp.status is not WAITING:  # casgstatus(gp, WAITING, RUNNABLE), inlined (see g.py)
        lk.release()
        badgstatus(gp, WAITING, RUNNABLE)
    gp.status = RUNNABLE
    lk.release()
    s = _tls.cur
    if s is None:
        return  # the runtime is gone; gp is abandoned with the rest
    m = tls.m
    if s.tracer is not None or s.chaos is not None:  # one test on the common path for both hooks
        tr = s.tracer
        if tr is not None:
            tr.go_unblock(gp, m.curg if m is not None else None)
        if s.chaos is not None and s.chaos.delay_ready(gp, m):
            return
    if m is not None:
        p = m.p
        if p is not None:
            if next and p.runnext is None and s.chaos is None:
                # runqput's first case, kept here on purpose: the readier's own P (m.p is set only
                # while m holds it RUNNING, so runnext is m's alone), an empty slot, no wakep. The
                # call it saves decides the ping-pong target's margin (docs/benchmarks.md, the
                # runqput inline).
                p.runnext = gp
                return
            if runqput(s, p, gp, next):
                wakep(s)
            return
    glist = tls.glist
    if glist is not None:
        glist.append(gp)
        return
    injectglist(s, [gp])


def goparkunlock(lock: threading.Lock, reason: WaitReason) -> Awaitable[None]:
    """goparkunlock parks the running G and then releases lock, which the caller holds and under
    which it registered the G as a waiter (Go's goparkunlock)."""
    return gopark(None, lock, reason)


def current_g() -> G | None:
    """current_g is the G running on this thread, or None off the runtime's Ms."""
    m = tls.m
    return m.curg if m is not None else None


def preempt_requested() -> bool:
    """preempt_requested: sysmon asked the running G to yield (cooperative preemption).

    Every runtime operation that completes without parking ends with
    `if preempt_requested(): await gosched()`, so Gs that never park still give up the P at their
    next runtime call. A plain function, not a coroutine: the common answer costs no allocation.
    The answer is nearly always no, so it first reads `anypreempt`, a module-wide hint, and looks
    up the running G only when some G may have been asked; the per-message paths (channel
    operations, fd reads and writes) read the hint themselves before calling.
    """
    if not anypreempt:
        return False
    m = tls.m
    if m is None:
        return False
    gp = m.curg
    return gp is not None and gp.preempt


# anypreempt: a racy hint for preempt_requested, False only while no G running on a P has its
# preempt flag set. Whoever sets a G's flag sets the hint first (sysmon.retake, chaos, stop);
# sysmon recomputes it each tick from the flags of the Gs on the Ps (sysmon.clearpreempt), except
# in chaos mode, which sets flags from the Ms and so keeps it set for the whole run. A stale True
# costs one lookup. A False could be stale only for a flag set between the recompute's scan and
# its store: sysmon's own flags are set by sysmon itself, and stop() sets its flags under
# sched.lock, which the recompute holds from scan to store, so no request is lost.
anypreempt = False


def goready_into(glist: list[G], gp: G) -> None:
    """goready_into readies gp into a batch the caller injects itself (Go's netpoll toRun list)."""
    lk = gp.lock
    lk.acquire()
    if gp.status is not WAITING:  # casgstatus(gp, WAITING, RUNNABLE), inlined as in goready
        lk.release()
        badgstatus(gp, WAITING, RUNNABLE)
    gp.status = RUNNABLE
    lk.release()
    s = _tls.cur
    if s is not None and s.tracer is not None:
        m = tls.m
        s.tracer.go_unblock(gp, m.curg if m is not None else None)
    glist.append(gp)
