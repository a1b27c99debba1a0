"""findrunnable: where an M looks for its next G (Go's findRunnable and stealWork).

The order, the spinning rules and the race they close are in sched.py's essay; this module is the
code. find_runnable runs on an M that holds a P and may put the M to sleep (stopm) in between.
"""

from __future__ import annotations

from time import sleep as _sleep
from typing import TYPE_CHECKING

from .idle import (
    acquirep,
    dropspinning,
    pidlegetspinning,
    pidleput,
    releasep,
    resetspinning,
    startspinning,
    stopm,
)
from .runq import RUNNEXT_GRACE, runqget, runqgrab_stale, runqsteal, runqstealable

if TYPE_CHECKING:
    from .g import G
    from .m import M
    from .p import P
    from .sched import Sched

STEAL_ROUNDS = 4
GLOBAL_POLL_TICKS = 61
# MPOLL_BLOCK: how long the M of the last running P waits in epoll, keeping its P, before it
# gives the P up (Netpoller.poll_blocking).
MPOLL_BLOCK = 10e-3


def find_runnable(sched: Sched, m: M) -> tuple[G | None, bool]:
    """find_runnable returns the next G for m to run and whether it inherits the time slice.

    m holds a P on entry and on a non-None return; it may sleep in between (stopm). None means the
    runtime is stopping. Each rung below is a step of sched.py's essay, in its order.
    """
    polled = False  # waited in epoll once already (at most once per call)
    while True:
        if sched.stopping:
            return stopfinding(sched, m)
        p = m.p
        assert p is not None
        chaos = sched.chaos
        if chaos is not None:
            gp = chaos.find_runnable(sched, p)
            if gp is not None:
                return found(sched, m, gp, False)
        if p.preempt:
            endslice(sched, p)
        # Each rung's cheap test stands before its call: most schedules find work on a low rung,
        # and a Python call per rung passed would cost more than the test.
        grq = sched.runq
        if sched.timers.npending:
            gp, inherit = checktimers(sched, m, p)  # 0. timers due now
            if gp is not None:
                return found(sched, m, gp, inherit)
        if grq.ntimerg or p.schedtick % GLOBAL_POLL_TICKS == 0:
            gp = fairness(sched, p)  # 1. the fairness tick, and timers' Gs on the global queue
            if gp is not None:
                return found(sched, m, gp, False)
        gp, inherit = runqget(p)  # 2. runnext, then the ring
        if gp is not None:
            return found(sched, m, gp, inherit)
        if grq.q:
            gp = globrunqbatch(sched, p)  # 3. the global queue
            if gp is not None:
                return found(sched, m, gp, False)
        np = sched.netpoll
        if np.backend.fds:
            gp = np.poll_nonblocking(p)  # 4. the network, without blocking
            if gp is not None:
                return found(sched, m, gp, False)
            if not polled and lastp(sched, m):  # 4. ... or, on the last running P, blocking
                polled = True
                gp = np.poll_blocking(p, MPOLL_BLOCK)
                if gp is not None:
                    return found(sched, m, gp, False)
                continue  # woken by a break, or nothing came: look at every queue again
        gp = spinandsteal(sched, m, p)  # 5. steal
        if gp is not None:
            return found(sched, m, gp, False)
        if chaos is not None and chaos.before_idle(sched):
            continue  # released held wake-ups or fired timers (replay mode): look again
        gp = dropp(sched, m, p)  # 6. nothing: give the P up, unless the global queue has work
        if gp is not None:
            return found(sched, m, gp, False)
        if recheck(sched, m):  # 6. ... the spinning protocol's step 3: look once more
            continue
        if not stopm(sched, m):
            return None, False


def stopfinding(sched: Sched, m: M) -> tuple[None, bool]:
    """stopfinding: the runtime stops; m lets go of its P and of its spinning count."""
    if m.p is not None:
        releasep(m)
    if m.spinning:
        dropspinning(sched, m)
    return None, False


def endslice(sched: Sched, p: P) -> None:
    """endslice: p's slice expired (sysmon's preemption request) while Gs kept handing it on
    through runnext, each parking before it saw its flag. End the chain as Go's preemption would:
    the runnext G goes to the global queue, behind whoever waits there."""
    p.preempt = False
    with p.lock:
        gp = p.runnext
        p.runnext = None
    if gp is not None:
        with sched.lock:
            sched.runq.put(gp)


def checktimers(sched: Sched, m: M, p: P) -> tuple[G | None, bool]:
    """checktimers (step 0, Go's checkTimers, after the slice's runnext was dealt with) fires the
    earliest due timer here and returns the G it readied into p's runnext, to run next without
    waiting for the poller thread. One at a time: a second one readied into runnext would go
    ahead of the first. Not while Gs of timers the poller fired (earlier) wait on the global
    queue, nor while it is firing more (firelock), nor under chaos (its timers are its own).
    The caller has seen timers pending."""
    timers = sched.timers
    if sched.runq.ntimerg or sched.chaos is not None or timers.when0 > timers.now():
        return None, False
    fl = timers.firelock
    if not fl.acquire(False):
        return None, False
    try:
        n = timers.run_expired(timers.now(), 1)
    finally:
        fl.release()
    m.ntimer += n
    return runqget(p) if n else (None, False)


def fairness(sched: Sched, p: P) -> G | None:
    """fairness (step 1): every GLOBAL_POLL_TICKS-th schedule, one G from the global queue (two Gs
    handing each other runnext must not starve it), and at every schedule while timers' Gs wait
    at its front. The tick also looks at the network with local work (Tokio's event_interval):
    with many busy connections the queues never run dry, and Gs whose fds became ready would
    otherwise wait for sysmon. They queue behind the global queue. The caller has seen the tick
    or timers' Gs."""
    grq = sched.runq
    if p.schedtick % GLOBAL_POLL_TICKS == 0 and sched.netpoll.backend.fds:
        sched.netpoll.poll_inject()
    if not grq.q:
        return None
    with sched.lock:
        return grq.get(p, sched.procs, 1)


def globrunqbatch(sched: Sched, p: P) -> G | None:
    """globrunqbatch (step 3): a batch from the global queue, one G to run, a share onto p's ring;
    the caller has seen Gs there (a hint: they may be gone by the time sched.lock is held)."""
    with sched.lock:
        return sched.runq.get(p, sched.procs, 0)


def lastp(sched: Sched, m: M) -> bool:
    """lastp: may m wait in epoll keeping its P (step 4's blocking half)? Only the M of the last
    running P, not spinning, while Gs wait on fds; not under chaos, nor under a VirtualClock (an M
    keeping its P holds the clock still, timers.py), nor when Ms do not poll (MN_NETPOLL_MPOLL=0)."""
    np = sched.netpoll
    return (
        sched.procs - sched.npidle == 1
        and not m.spinning
        and sched.chaos is None
        and np.backend.mpoll
        and sched.timers.virtual is None
        and np.waiting()
    )


def spinandsteal(sched: Sched, m: M, p: P) -> G | None:
    """spinandsteal (step 5): m starts spinning, if fewer than half the busy Ps have a spinning M
    (the protocol's cap), and steals."""
    if sched.procs == 1 or (not m.spinning and 2 * sched.nmspinning >= sched.procs - sched.npidle):
        return None
    if not m.spinning:
        startspinning(sched, m)
    return steal_work(sched, m, p)


def dropp(sched: Sched, m: M, p: P) -> G | None:
    """dropp (step 6, the tail of Go's findRunnable): nothing anywhere, so m gives p up to the
    idle list, unless the global queue has a G after all (decided in the same sched.lock hold)."""
    grq = sched.runq
    with sched.lock:
        gp = None if sched.stopping else grq.get(p, sched.procs, 0)
        if gp is None:
            releasep(m)
            pidleput(sched, p)
    return gp


def recheck(sched: Sched, m: M) -> bool:
    """recheck: a spinning m stops counting as spinning, then looks at every P's queue once more
    (the spinning protocol's step 3, which closes the race with a submitter that skipped wakep
    because it saw m spinning). True if m took an idle P and spins again."""
    if not m.spinning:
        return False
    dropspinning(sched, m)
    if not any(runqstealable(vp) for vp in sched.allp):
        return False
    p2 = pidlegetspinning(sched)
    if p2 is None:
        return False
    acquirep(m, p2)
    m.spinning = True
    return True


def found(sched: Sched, m: M, gp: G, inherit: bool) -> tuple[G, bool]:
    """found hands gp to m; a spinning m stops spinning and passes the baton (protocol step 2)."""
    if m.spinning:
        resetspinning(sched, m)
    return gp, inherit


def steal_work(sched: Sched, m: M, p: P) -> G | None:
    """steal_work tries STEAL_ROUNDS times to steal from every other P, in a random order.

    In the last round it notes the runnext Gs of running Ps; if it found nothing else it waits
    RUNNEXT_GRACE once and takes one whose owner has run no other G meanwhile (runq.py: that owner
    is busy in one G's code and the new G would wait behind it).
    """
    allp = sched.allp
    n = len(allp)
    rng = m.rng
    tr = sched.tracer
    stale: list[tuple[P, G, int]] = []
    for rnd in range(STEAL_ROUNDS):
        last = rnd == STEAL_ROUNDS - 1
        pos = rng.randrange(n)
        inc = rng.choice(sched.coprimes)
        for _ in range(n):
            if sched.stopping:
                return None
            victim = allp[pos]
            pos = (pos + inc) % n
            if victim is p:
                continue
            if sched.chaos is not None and sched.chaos.skip_victim():
                continue
            if not runqstealable(victim):
                if last and sched.chaos is None:
                    rn = victim.runnext  # racy hint; runqgrab_stale checks under the lock
                    if rn is not None:
                        stale.append((victim, rn, victim.ngrun))
                continue
            before = len(p.runq)
            gp = runqsteal(p, victim, last)
            if gp is not None:
                if tr is not None:
                    tr.steal(m, p, victim, len(p.runq) - before + 1)
                return gp
        if sched.runq.q:
            return None  # let find_runnable take it from the global queue
    if stale:
        _sleep(RUNNEXT_GRACE)  # the GIL is released meanwhile: the busy owner keeps computing
        for victim, gp, ngrun in stale:
            if sched.stopping or sched.runq.q:
                return None
            got = runqgrab_stale(p, victim, gp, ngrun)
            if got is not None:
                if tr is not None:
                    tr.steal(m, p, victim, 1)
                return got
    return None
