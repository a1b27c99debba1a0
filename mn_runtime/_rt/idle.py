"""idle: idle Ps and Ms, and waking them (Go's pidleput/pidleget, mput/mget, startm, stopm,
wakep, handoffp, injectglist, checkdead; Tokio keeps the same concept in its `idle` module).

An idle P sits on sched.pidle with an empty run queue; an idle M sleeps on its park lock and sits on
sched.midle. Both lists, npidle/nmidle and nmspinning change only under sched.lock. The spinning
protocol these functions implement is written out in sched.py's essay.

A decision to wake an M is made under sched.lock (startm_locked), and the M leaves sched.midle in the
same critical section, so checkdead never sees queued work with every M asleep while a wake-up is on
its way; the thread is started or woken after the lock is released (mwake).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ..errors import Deadlock, Throw
from . import lock as _lock
from . import stack
from . import tls as _tls
from .m import M
from .p import P, PStatus
from .runq import runqempty, runqputbatch
from .tls import tls

if TYPE_CHECKING:
    from .g import G
    from .sched import Sched

MAX_MS = 10_000

# nfuturewait counts the Gs parked in wait_future (mn_runtime/future.py). Such a G is readied by a
# future's done callback, which runs on a thread the runtime does not own (an executor's worker
# thread, a process pool's result thread, the asyncio loop thread, a cluster client's), so, as a G
# in a syscall, it is not stuck forever while every M is idle: checkdead rules a deadlock out while
# the count is not zero. future.py adds one in the park's commit, while the parking M still runs
# (so no checkdead can see the G parked and the count not yet raised), and takes it off only after
# goready has queued the G (so no checkdead can see the count at zero before the G is runnable),
# through futurewait_readied, which then runs checkdead itself. Callbacks run on any thread and
# checkdead runs under sched.lock, so the count changes and is read under futurelock, taken after
# sched.lock when both are held and never the other way round.
futurelock = _lock.plain("idle.futurelock")
nfuturewait = 0


def futurewait_add(delta: int) -> None:
    """futurewait_add changes nfuturewait by delta: +1 when a G parks on a future, -1 when run()
    abandons it; any thread."""
    global nfuturewait
    with futurelock:
        nfuturewait += delta
        if nfuturewait < 0:
            raise Throw("futurewait_add: negative count of goroutines waiting on futures")


def futurewait_readied() -> None:
    """futurewait_readied takes a G that goready has just queued off nfuturewait, and re-runs
    checkdead when every M is idle: an M that went idle between that goready and now saw the
    count still raised and skipped its check, while the readied G may have run and blocked for
    good meanwhile (with free threading this happens; under the GIL it is rare). Any thread.

    The idle test is made after the count drops, without sched.lock (the common case, an M woken
    for the G and still running, then costs no sched.lock): an M that goes idle writes nmidle and
    then takes futurelock in checkdead. If its futurelock hold came before ours, ours orders its
    nmidle write before our read, and we see it idle; if after, its checkdead saw the count
    already dropped and judged for itself. A batch producer (the poller thread, tls.glist set) has
    not queued the G yet and re-runs checkdead itself once its batch is queued (netpoll.py,
    _setbusy), so it only takes the count off."""
    futurewait_add(-1)
    s = _tls.cur
    if s is None or tls.glist is not None or s.nmidle < len(s.allm):
        return
    with s.lock:
        dead = checkdead(s)
    if dead is not None:
        s.stop(error=dead)


def acquirep(m: M, p: P) -> None:
    """acquirep associates p with m; p must be IDLE and unowned."""
    with p.lock:
        if p.status != PStatus.IDLE or p.m is not None:
            raise Throw(f"acquirep: P {p.id} is {p.status.name}, owned by {p.m!r}")
        p.status = PStatus.RUNNING
        p.m = m
    m.p = p
    s = _tls.cur
    if s is not None:
        if s.sysmon.deep:
            s.sysmon.wake()
        if s.tracer is not None:
            s.tracer.proc_start(m, p)


def releasep(m: M) -> P:
    """releasep dissociates m from its P and returns the P, now IDLE."""
    p = m.p
    if p is None or p.m is not m or p.status != PStatus.RUNNING:
        raise Throw(f"releasep: M {m.id} does not hold a running P ({p!r})")
    with p.lock:
        p.status = PStatus.IDLE
        p.m = None
    m.p = None
    s = _tls.cur
    if s is not None and s.tracer is not None:
        s.tracer.proc_stop(m, p)
    return p


def pidleput(sched: Sched, p: P) -> None:
    """pidleput puts p on the idle list; sched.lock held, p IDLE with an empty run queue."""
    if _lock.lockcheck:
        _lock.assert_held(sched.lock, "pidleput")
    if not runqempty(p):
        raise Throw(f"pidleput: P {p.id} has a non-empty run queue")
    if p.status != PStatus.IDLE:
        raise Throw(f"pidleput: P {p.id} is {p.status.name}")
    sched.pidle.append(p)
    sched.npidle += 1
    if sched.npidle == sched.procs and sched.netpoll.backend.fds and not sched.netpoll.armed:
        # The last running P stops: from now on only the poller thread can notice fd events.
        sched.netpoll.wakeup()


def pidleget(sched: Sched) -> P | None:
    """pidleget takes a P off the idle list; sched.lock held."""
    if _lock.lockcheck:
        _lock.assert_held(sched.lock, "pidleget")
    if not sched.pidle:
        return None
    sched.npidle -= 1
    return sched.pidle.pop()


def mstart(sched: Sched, m: M) -> None:
    """mstart is an M thread's body: take the P it was started with and schedule until the end."""
    tls.m = m
    try:
        p = m.nextp
        m.nextp = None
        if p is not None:
            acquirep(m, p)
            sched.schedule(m)
    except BaseException as e:  # a runtime bug; surface it from run()
        sched.stop(error=e)
    finally:
        tls.m = None


def newm(sched: Sched, p: P, spinning: bool) -> M:
    """newm registers a new M (sched.lock held); the caller starts its thread after unlocking."""
    if _lock.lockcheck:
        _lock.assert_held(sched.lock, "newm")
    if len(sched.allm) >= MAX_MS:
        raise Throw(f"newm: thread limit exceeded ({MAX_MS} Ms, most of them in syscalls)")
    m = M(len(sched.allm), sched.seed)
    m.nextp = p
    m.spinning = spinning
    m.thread = threading.Thread(target=mstart, args=(sched, m), name=f"mn-M{m.id}", daemon=True)
    sched.allm.append(m)
    return m


def startm(sched: Sched, p: P | None, spinning: bool) -> None:
    """startm hands p (or an idle P) to an idle M, or a new one (Go's startm).

    With spinning, the caller has already counted the M in nmspinning; if no P can be had the
    count is given back.
    """
    with sched.lock:
        picked = startm_locked(sched, p, spinning)
    if picked is not None:
        mwake(*picked)


def startm_locked(sched: Sched, p: P | None, spinning: bool) -> tuple[M, bool] | None:
    """startm_locked is startm's decision, made under sched.lock: it takes p (or an idle P) and an
    idle M (or registers a new one) and returns (m, is_new) for mwake to start after unlocking.

    Deciding under the lock matters: from then on the M no longer counts as idle, so checkdead
    cannot see queued work with every M asleep while the wake-up is on its way. sched.lock held.
    """
    if _lock.lockcheck:
        _lock.assert_held(sched.lock, "startm_locked")
    if sched.stopping:
        if spinning:
            sched.nmspinning -= 1  # the M counted for this start will not spin: give it back
        return None
    if p is None:
        p = pidleget(sched)
        if p is None:
            if spinning:
                sched.nmspinning -= 1
            return None
    if sched.midle:
        m = sched.midle.pop()
        sched.nmidle -= 1
        m.nextp = p
        m.spinning = spinning
        return m, False
    return newm(sched, p, spinning), True


def mwake(m: M, new: bool) -> None:
    """mwake starts a new M's thread or wakes a sleeping one (Go's newm / notewakeup)."""
    if new:
        assert m.thread is not None
        m.thread.start()
    else:
        m.park.release()


def stopm(sched: Sched, m: M) -> bool:
    """stopm puts m to sleep until startm hands it a P; False when the runtime stops instead."""
    if m.p is not None or m.spinning:
        raise Throw(f"stopm: M {m.id} still holds a P or is spinning")
    with sched.lock:
        if sched.stopping:
            return False
        sched.midle.append(m)
        sched.nmidle += 1
        dead = checkdead(sched)
    if dead is not None:
        sched.stop(error=dead)
    m.park.acquire()
    p = m.nextp
    if p is None:
        return False
    m.nextp = None
    acquirep(m, p)
    return True


def wakep(sched: Sched) -> None:
    """wakep starts a spinning M if there is an idle P and no M is spinning already."""
    if sched.nmspinning or not sched.npidle:  # racy hint; decided again under the lock
        return
    with sched.lock:
        if sched.nmspinning or not sched.npidle:
            return
        sched.nmspinning += 1
        sched.nspinstart += 1
    startm(sched, None, True)


def startspinning(sched: Sched, m: M) -> None:
    """startspinning: m, out of local work, counts as spinning while it looks to steal."""
    m.spinning = True
    with sched.lock:
        sched.nmspinning += 1


def dropspinning(sched: Sched, m: M) -> None:
    """dropspinning: m stops counting as spinning without passing the baton (it found nothing,
    or the runtime stops); step 3 of the protocol then has m look at every queue once more."""
    m.spinning = False
    with sched.lock:
        sched.nmspinning -= 1
        if sched.nmspinning < 0:
            raise Throw("dropspinning: negative nmspinning")


def pidlegetspinning(sched: Sched) -> P | None:
    """pidlegetspinning takes an idle P for an M that will spin with it, counting the M as
    spinning in the same sched.lock hold (the protocol's step 3, when a queue turned out to have
    work); None if no P is idle."""
    with sched.lock:
        p = pidleget(sched)
        if p is not None:
            sched.nmspinning += 1
    return p


def resetspinning(sched: Sched, m: M) -> None:
    """resetspinning: m stopped spinning because it found work; pass the baton (step 2)."""
    dropspinning(sched, m)
    wakep(sched)


def handoffp(sched: Sched, p: P, reason: str) -> None:
    """handoffp finds a new owner for p, whose M is in a syscall (Go's handoffp)."""
    sched.nhandoff += 1
    tr = sched.tracer
    if tr is not None:
        tr.handoff(p, reason)
    if not runqempty(p) or sched.runq.q:
        startm(sched, p, False)
        return
    with sched.lock:
        if sched.nmspinning + sched.npidle == 0:
            sched.nmspinning += 1
            spin = True
        else:
            spin = False
            if not sched.runq.q:
                pidleput(sched, p)
                return
    startm(sched, p, spin)


def injectglist(sched: Sched, glist: list[G], timers: bool = False, p: P | None = None) -> None:
    """injectglist puts runnable Gs on the global queue in one batch and starts Ms for them.

    timers: the Gs were readied by timers; they go to the front of the queue, behind the timers'
    Gs already there (so timers' Gs keep their firing order), and every P looks there at its
    next schedule (globrunq.py, timers first).

    p: the caller's own P (an M that polled the network itself). As Go's injectglist, only as many
    Gs as there are idle Ps go to the global queue, each with an M started for it; the rest go on
    p's ring, where p runs them without a trip through sched.lock and the global queue, and where
    spinning Ms can steal them.
    """
    if not glist:
        return
    if p is not None:
        n = min(len(glist), sched.npidle)  # racy read, as Go's atomic load: a hint of who can help
        if n < len(glist):
            runqputbatch(sched, p, glist[n:] if n else glist)
        if not n:
            return
        glist = glist[:n]
    picked = []
    with sched.lock:
        if timers:
            sched.runq.puttimers(glist)
        else:
            sched.runq.putbatch(glist)
        brk = sched.mpolling
        for _ in range(min(len(glist), sched.npidle)):
            r = startm_locked(sched, None, False)
            if r is None:
                break
            picked.append(r)
    if brk:
        sched.netpoll.backend.mbreak()
    for r in picked:
        mwake(*r)


def checkdead(sched: Sched) -> Deadlock | None:
    """checkdead reports a deadlock when no M runs and nothing can ever ready a G.

    sched.lock held. Called whenever an M goes idle (Go: from mput). Ms in syscalls count as
    running; timers and Gs parked on pollDescs can still ready Gs, so they rule a deadlock out, and
    so do Gs waiting on futures (nfuturewait), which a thread outside the runtime completes.
    """
    if _lock.lockcheck:
        _lock.assert_held(sched.lock, "checkdead")
    if sched.stopping or not sched.allm or sched.nmidle < len(sched.allm):
        # No M yet: run() has not queued main (the poller and sysmon start first and call this
        # after their passes). Queueing main registers its M in the same sched.lock hold.
        return None
    if sched.runq.q:
        raise Throw(f"checkdead: {len(sched.runq)} runnable goroutines on the global queue but no M running")
    if sched.netpoll.busy or sched.sysmon.polling:
        return None
    vc = sched.timers.virtual
    pending = sched.timers.pending()
    if pending and vc is None:
        return None
    if not pending and sched.netpoll.waiting():
        return None
    with futurelock:
        if nfuturewait:
            return None
    if pending:
        # Virtual time (pending reaches here only with a VirtualClock): nothing runs, nothing
        # outside the runtime can ready a G, and a timer can: the clock moves on to it (or waits
        # for Gs on fds to stay quiet first). Deciding under sched.lock keeps it exact (timers.py).
        assert vc is not None
        vc.idle_locked(sched, sched.netpoll.fdquiet)
        return None
    gs = sched.allgs.snapshot()
    if not gs:
        raise Throw("checkdead: no goroutines left but the runtime was not stopped")
    return Deadlock([stack.format_goroutine(g) for g in sorted(gs, key=lambda g: g.id)])
