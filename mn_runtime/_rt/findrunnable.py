"""findrunnable: where an M looks for its next G (Go's findRunnable and stealWork).

The order, the spinning rules and the race they close are in sched.py's essay; this module is the
code. find_runnable runs on an M that holds a P and may put the M to sleep (stopm) in between.
"""

from __future__ import annotations

from time import sleep as _sleep
from typing import TYPE_CHECKING

from .idle import acquirep, pidleget, pidleput, releasep, resetspinning, stopm
from .runq import RUNNEXT_GRACE, globrunqget, runqget, runqgrab_stale, runqsteal, runqstealable

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
    runtime is stopping.
    """
    blocked = False  # waited in epoll once already (at most once per call)
    while True:
        if sched.stopping:
            if m.p is not None:
                releasep(m)
            if m.spinning:
                m.spinning = False
                with sched.lock:
                    sched.nmspinning -= 1
            return None, False
        p = m.p
        assert p is not None
        if sched.chaos is not None:
            gp = sched.chaos.find_runnable(sched, p)
            if gp is not None:
                return found(sched, m, gp, False)
        if p.preempt:
            # The slice expired (sysmon's preemption request) while Gs kept handing it on through
            # runnext, each parking before it saw its flag. End the chain as Go's preemption
            # would: the runnext G goes to the global queue, behind whoever waits there.
            p.preempt = False
            with p.lock:
                gp = p.runnext
                p.runnext = None
            if gp is not None:
                with sched.lock:
                    sched.runq.append(gp)
        timers = sched.timers
        if timers.npending and not sched.ntimerg and sched.chaos is None and timers.when0 <= timers.now():
            # Go's checkTimers, after the slice's runnext was dealt with: fire the earliest due
            # timer here and run the G it readies (goready puts it in runnext) next, without
            # waiting for the poller thread to get the GIL. One at a time: a second one readied
            # into runnext would go ahead of the first. Not while Gs of timers the poller fired
            # (earlier) wait on the global queue, nor while it is firing more (firelock).
            fl = timers.firelock
            if fl.acquire(False):
                try:
                    n = timers.run_expired(timers.now(), 1)
                finally:
                    fl.release()
                m.ntimer += n
                if n:
                    gp, inherit = runqget(p)
                    if gp is not None:
                        return found(sched, m, gp, inherit)
        tick = p.schedtick % GLOBAL_POLL_TICKS == 0
        if tick or sched.ntimerg:
            if tick and sched.netpoll.backend.fds:
                # Look at the network now and then even with local work (Tokio's event_interval):
                # with many busy connections the queues never run dry, and Gs whose fds became
                # ready would otherwise wait for sysmon. They queue behind the global queue.
                sched.netpoll.poll_inject()
            if sched.runq:
                with sched.lock:
                    gp = globrunqget(sched, p, 1)
                if gp is not None:
                    return found(sched, m, gp, False)
        gp, inherit = runqget(p)
        if gp is not None:
            return found(sched, m, gp, inherit)
        if sched.runq:
            with sched.lock:
                gp = globrunqget(sched, p, 0)
            if gp is not None:
                return found(sched, m, gp, False)
        np = sched.netpoll
        if np.backend.fds:
            gp = np.poll_nonblocking(p)
            if gp is not None:
                return found(sched, m, gp, False)
            # Not under a VirtualClock: an M keeping its P holds the clock still (timers.py).
            if (
                not blocked
                and sched.procs - sched.npidle == 1
                and not m.spinning
                and sched.chaos is None
                and np.backend.mpoll
                and sched.timers.virtual is None
                and np.waiting()
            ):
                # The last running P, and Gs wait on fds: wait for them here, keeping the P.
                blocked = True
                gp = np.poll_blocking(p, MPOLL_BLOCK)
                if gp is not None:
                    return found(sched, m, gp, False)
                continue  # woken by a break, or nothing came: look at every queue again
        if sched.procs > 1 and (m.spinning or 2 * sched.nmspinning < sched.procs - sched.npidle):
            if not m.spinning:
                m.spinning = True
                with sched.lock:
                    sched.nmspinning += 1
            gp = steal_work(sched, m, p)
            if gp is not None:
                return found(sched, m, gp, False)
        if sched.chaos is not None and sched.chaos.before_idle(sched):
            continue  # released held wake-ups or fired timers (replay mode): look again
        # Nothing anywhere: give up the P (Go: the tail of findRunnable).
        with sched.lock:
            gp = globrunqget(sched, p, 0) if sched.runq and not sched.stopping else None
            if gp is None:
                releasep(m)
                pidleput(sched, p)
        if gp is not None:
            return found(sched, m, gp, False)
        if m.spinning:
            m.spinning = False
            with sched.lock:
                sched.nmspinning -= 1
            # Step 3 of the protocol: look at every queue once more after we stopped counting.
            if any(runqstealable(vp) for vp in sched.allp):
                with sched.lock:
                    p2 = pidleget(sched)
                    if p2 is not None:
                        sched.nmspinning += 1
                if p2 is not None:
                    acquirep(m, p2)
                    m.spinning = True
                    continue
        if not stopm(sched, m):
            return None, False


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
        if sched.runq:
            return None  # let find_runnable take it from the global queue
    if stale:
        _sleep(RUNNEXT_GRACE)  # the GIL is released meanwhile: the busy owner keeps computing
        for victim, gp, ngrun in stale:
            if sched.stopping or sched.runq:
                return None
            got = runqgrab_stale(p, victim, gp, ngrun)
            if got is not None:
                if tr is not None:
                    tr.steal(m, p, victim, 1)
                return got
    return None
