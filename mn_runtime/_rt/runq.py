"""runq: the per-P local run queue, a bounded ring plus runnext (the global queue is globrunq.py).

Go's runqput/runqget/runqputslow/runqputbatch/runqgrab/runqsteal, with a deque and a lock standing
in for Go's lock-free ring. The contracts stay Go's:

- Only p's owner M puts on p's local queue; stealers only take (half, from the head).
- The ring holds at most `p.runqcap` Gs (RUNQ_SIZE, 256, as Go; tests shrink it). On overflow half
  of the ring plus the new G move to the global queue in one batch (runqputslow).
- runnext: only the owner puts a G there, and it may fill an EMPTY slot without the lock (goready's
  fast path): nobody else ever writes a G into it, and a thief only empties a full one. Every
  take (the owner's in runqget and execute, a thief's) and every replacement of a G (runqput's
  kick) is made under p.lock, so a G leaves runnext exactly once. A thief takes runnext from a P
  that is not RUNNING, or (Go's runqgrab) from a RUNNING one whose owner has kept the same G there
  for RUNNEXT_GRACE while running no other G: that owner is busy in one G's Python code (it
  computes without awaiting) and would leave the new G waiting behind it.
- Locks: p.lock ranks below sched.lock (lock.py's table), and no thread holds two p.locks at once
  (a steal takes from the victim under its lock, then fills its own).
- Owner: a P's ring and runnext change only here, except for three measured hot-path inlines of
  the same steps, each under the same contract: goready's fill of an empty runnext (park.py), and
  execute's and find_runnable's take of runnext (sched.py, findrunnable.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import Throw
from .p import P, PStatus

_RUNNING = PStatus.RUNNING

if TYPE_CHECKING:
    from .g import G
    from .sched import Sched

RUNQ_SIZE = 256

# RUNNEXT_GRACE: how long a thief waits before taking runnext from a running P whose owner has not
# moved on (Go's runqgrab sleeps 3 us; a Python owner's hand-off takes far longer than Go's, and a
# steal between a goready and the park after it would split a ping-pong pair across threads).
RUNNEXT_GRACE = 1e-3


def runqput(sched: Sched, p: P, gp: G, next: bool) -> bool:
    """runqput puts gp on p's local queue (in runnext if next); only p's owner M calls it.

    Returns True when a G landed where another M could steal it (ring or global queue), i.e. when
    waking an idle M might help; a G that only took the empty runnext slot returns False.
    park.goready writes the empty-runnext case out itself (the one copy of this function).
    """
    if sched.chaos is not None:
        next = sched.chaos.runqput(p, next)
    if next:
        if p.status is not _RUNNING:
            raise Throw(f"runqput: P {p.id} is {p.status.name}, not held by a running M")
        lock = p.lock
        if p.runnext is None:  # only the owner fills an empty slot: no lock (see above)
            p.runnext = gp
            return False
        lock.acquire()
        old = p.runnext  # a thief may have taken it meanwhile
        p.runnext = gp
        if old is None:
            lock.release()
            return False
        gp = old  # kick the old runnext to the tail of the ring
    else:
        lock = p.lock
        lock.acquire()  # hot path: acquire/release cost half of a with block
    q = p.runq
    if len(q) < p.runqcap:
        q.append(gp)
        lock.release()
        return True
    lock.release()
    runqputslow(sched, p, gp)
    return True


def runqputslow(sched: Sched, p: P, gp: G) -> None:
    """runqputslow moves half of p's full ring, plus gp, to the global queue in one batch."""
    with p.lock:
        n = len(p.runq) // 2
        batch = [p.runq.popleft() for _ in range(n)]
    batch.append(gp)
    with sched.lock:
        sched.runq.putbatch(batch)


def runqputbatch(sched: Sched, p: P, glist: list[G]) -> None:
    """runqputbatch puts glist on the tail of p's ring (only p's owner M calls it); what does not
    fit goes to the global queue (Go's runqputbatch)."""
    with p.lock:
        q = p.runq
        room = p.runqcap - len(q)
        if room >= len(glist):
            q.extend(glist)
            return
        q.extend(glist[:room])
    with sched.lock:
        sched.runq.putbatch(glist[room:])


def runqget(p: P) -> tuple[G | None, bool]:
    """runqget takes the next G from p's local queue: (g, inherit_time). Only p's owner calls it."""
    if p.runnext is None and not p.runq:  # owner-only reads: others never add
        return None, False
    lock = p.lock
    lock.acquire()
    gp = p.runnext  # under the lock: a thief may take it (see above)
    if gp is not None:
        p.runnext = None
        lock.release()
        return gp, True
    gp = p.runq.popleft() if p.runq else None
    lock.release()
    return gp, False


def runqstealable(p: P) -> bool:
    """runqstealable: would runqsteal (in its last round) find anything on p? A racy hint.

    The ring, or runnext of a P whose owner is not running. A spinning M must judge "is there work
    to steal" by this, not by runqempty: a runnext it may not take would keep it spinning for as
    long as the owner runs, burning the interpreter that the owner needs.
    """
    return bool(p.runq) or (p.runnext is not None and p.status is not _RUNNING)


def runqempty(p: P) -> bool:
    return p.runnext is None and not p.runq


def runqsteal(thief: P, victim: P, steal_runnext: bool) -> G | None:
    """runqsteal moves half of victim's ring to thief's (empty) ring and returns one G to run.

    runnext is taken only when steal_runnext is set and the victim is not running: a running
    owner is normally about to run it itself (runqgrab_stale takes it from one that is not).
    """
    with victim.lock:
        n = len(victim.runq)
        n -= n // 2
        if n == 0:
            gp = victim.runnext
            if gp is not None and steal_runnext and victim.status != PStatus.RUNNING:
                victim.runnext = None
                victim.nstolen += 1
                thief.nsteal += 1
                return gp
            return None
        batch = [victim.runq.popleft() for _ in range(n)]
        victim.nstolen += n
    gp = batch.pop()
    if batch:
        with thief.lock:
            if len(thief.runq) + len(batch) > thief.runqcap:
                raise Throw(f"runqsteal: P {thief.id} ring overflows ({len(thief.runq)}+{len(batch)})")
            thief.runq.extend(batch)
    thief.nsteal += 1
    return gp


def runqgrab_stale(thief: P, victim: P, gp: G, ngrun: int) -> G | None:
    """runqgrab_stale takes gp from victim's runnext if it is still there and victim's owner has
    run no other G since the thief saw it there with victim.ngrun == ngrun, RUNNEXT_GRACE ago
    (Go's runqgrab: a running owner that has not taken runnext in a moment is busy)."""
    with victim.lock:
        if victim.runnext is not gp or victim.ngrun != ngrun or victim.status is not _RUNNING:
            return None
        victim.runnext = None
        victim.nstolen += 1
    thief.nsteal += 1
    return gp


def runqdrain(p: P) -> list[G]:
    """runqdrain empties p's local queue, runnext first, for sysmon to hand to the other Ps when
    p's M has kept one G past its slice without reaching the runtime (sysmon.retake). Taking
    runnext from a RUNNING P is a thief's take under p.lock (see above), so only with procs > 1,
    where the owner takes runnext under the lock too."""
    with p.lock:
        gs = []
        rn = p.runnext
        if rn is not None:  # clear only a full slot: the owner fills an empty one without the lock
            gs.append(rn)
            p.runnext = None
        gs.extend(p.runq)
        p.runq.clear()
        p.nstolen += len(gs)
    return gs
