"""sched: the scheduler. Read this essay next to Go's src/runtime/proc.go.

G, M, P
-------
A G is a goroutine: a Python coroutine and its status (g.py). An M is an OS thread (m.py). A P is a
logical processor (p.py): it holds a local run queue, and an M must hold a P to run Gs. There are
exactly `procs` Ps (GOMAXPROCS) and as many Ms as needed: an M that enters a blocking syscall lets
go of its P, and another M may run Gs on it meanwhile, so Ms can outnumber Ps.

Running a G means stepping its coroutine with `send` until it yields a trap (traps.py): gosched puts
it on the global queue, park moves it to WAITING and runs the park's commit, syscall runs a blocking
call on this M with the P released. A coroutine that returns makes the G DEAD; one that raises ends
the runtime (Go: an unrecovered panic ends the program).

Where an M finds work (find_runnable), in order:
  1. every 61st schedule tick, one G from the global queue (fairness: two Gs handing each other the
     runnext slot must not starve it);
  2. the local runnext slot, then the local ring;
  3. the global queue (a batch: one to run, a share onto the local ring);
  4. stealing: up to 4 rounds over all other Ps in a random order, taking half of a victim's ring
     (its runnext only in the last round, and only from a P whose owner is not running);
  5. nothing: release the P, sleep (stopm) until startm hands this M a P again.
Gs readied by timers and the netpoller arrive through the global queue (injectglist), which also
wakes idle Ms for them.

The spinning protocol (Go's "spinning M"): an M looking for work to steal is spinning. At most
half of the busy Ps have a spinning M. When work is added and a P is idle, wakep starts one M
spinning, but only if none is spinning already: a spinning M will find the work anyway.
  1. Submitting work: put the G on a queue, then wakep() (which checks nmspinning, then npidle).
  2. A spinning M that finds work stops spinning (nmspinning -= 1) and calls wakep() in turn, so
     a burst of work fans out one M at a time instead of waking them all.
  3. A spinning M that finds nothing releases its P to the idle list, decrements nmspinning, then
     looks at every P's queue again; if one has work it takes an idle P and spins again.
  4. Only then does it sleep.
Step 3 closes the race with step 1: a submitter that saw nmspinning > 0 skipped wakep, so the
spinner must look again after it has stopped counting as spinning. Under the GIL a spin costs the
running Ms their interpreter time, so our spin is only these bounded rounds; an M never busy-waits.

Where mn_runtime differs from Go, and why:
- Queues are deques under locks, not lock-free rings (design guide); contracts are Go's.
- Readying a G into an empty runnext slot does not wake another M (Tokio's LIFO-slot rule): the
  readier will run it next anyway, and every needless wake-up costs a GIL hand-off. A G that lands
  in the ring or the global queue still calls wakep. newproc always calls wakep, as Go.
- Preemption is cooperative: sysmon flags a G that ran over 10 ms and the G yields at its next
  runtime call. A coroutine that never awaits cannot be stopped.
- Timers live in one heap owned by the poller thread, not per P: the poller thread blocks in
  epoll_wait with the earliest deadline as its timeout (netpoll.py).

Locks and what they stand in for
--------------------------------
- sched.lock guards the global queue, the idle P and M lists, nmspinning, and stopping. Go reads
  nmspinning and npidle atomically in wakep; we read them racily as a hint and decide under the
  lock.
- p.lock guards a P's ring, runnext and status (Go: atomics on runqhead/runqtail and pp.status).
- g.lock guards a G's status and joiners (Go: atomic CAS on gp.atomicstatus).
- Order: sched.lock before p.lock; g.lock is a leaf. Never two p.locks at once.
- The M park lock (m.py) is the memory barrier between the waker writing m.nextp and the M reading it.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections import deque
from collections.abc import Coroutine
from typing import Any

from ..errors import Deadlock, Throw
from . import stack
from .chaos import Chaos
from .g import DEAD, IDLE, RUNNABLE, RUNNING, WAITING, G, GStatus, WaitReason, casgstatus
from .m import M
from .p import P, PStatus
from .park import goready
from .runq import RUNQ_SIZE, globrunqget, runqempty, runqget, runqput, runqsteal
from .syscall import syscall
from .tls import tls
from .tracer import Tracer
from .traps import GOSCHED, PARK, SYSCALL

_ZERO = WaitReason.ZERO

# The one runtime of this process (None when none runs); see runtime.py.
cur: Sched | None = None

STEAL_ROUNDS = 4
GLOBAL_POLL_TICKS = 61
MAX_MS = 10_000


def _coprimes(n: int) -> list[int]:
    from math import gcd

    return [i for i in range(1, n + 1) if gcd(i, n) == 1]


class Sched:
    """Sched is the scheduler state shared by every M (Go's schedt plus allp/allm/allgs)."""

    def __init__(self, procs: int, *, runqcap: int = RUNQ_SIZE, seed: int = 0) -> None:
        self.procs = procs
        self.seed = seed
        self.lock = threading.Lock()
        self.runq: deque[G] = deque()
        self.allp = [P(i, runqcap) for i in range(procs)]
        self.coprimes = _coprimes(procs)
        self.pidle: list[P] = []
        self.npidle = 0
        self.midle: list[M] = []
        self.nmidle = 0
        self.nmspinning = 0
        self.allm: list[M] = []
        self.stopping = False
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.allglock = threading.Lock()
        self.allgs: dict[int, G] = {}
        self.goidgen = 0
        self.maing: G | None = None
        # Gs parked on a pollDesc; maintained by polldesc.py under sched.lock; checkdead reads it.
        self.nnetpollwait = 0
        self.tracer: Tracer | None = None
        # Chaos mode (chaos.py): None when off; set by run() before any thread starts.
        self.chaos: Chaos | None = None
        # Counters written under sched.lock or by one thread; read racily by stats().
        self.nhandoff = 0
        self.npreempt = 0
        self.nsyscall = 0
        self.ngcreated = 0
        self.nspinstart = 0
        from .netpoll import Netpoller
        from .sysmon import Sysmon
        from .timers import TimerHeap

        self.timers = TimerHeap(self)
        self.netpoll = Netpoller(self)
        self.sysmon = Sysmon(self)

    # --- G creation and exit ---

    def newproc(self, coro: Coroutine[Any, Any, Any], name: str, parent: G | None, where: str, main: bool = False) -> G:
        """newproc makes a G for coro and puts it in the caller's runnext (Go's newproc).

        main marks run()'s G, whose exit ends the runtime; it is recorded before the G is queued,
        since an M may run it to completion before newproc returns.
        """
        ctx = contextvars.copy_context()
        with self.allglock:
            self.goidgen += 1
            gp = G(self.goidgen, coro, ctx, name)
            self.allgs[gp.id] = gp
            self.ngcreated += 1
        if parent is not None:
            gp.parentid = parent.id
        gp.createdat = where
        if main:
            self.maing = gp
        tr = self.tracer
        if tr is not None:
            tr.go_create(gp, parent)
        casgstatus(gp, IDLE, RUNNABLE)
        m = tls.m
        if m is not None and m.p is not None:
            runqput(self, m.p, gp, True)
            wakep(self)
        else:
            injectglist(self, [gp])
        return gp

    def goexit(self, m: M, gp: G, result: Any) -> None:
        """goexit ends gp after its coroutine returned result, and readies its joiners."""
        casgstatus(gp, RUNNING, DEAD)
        with gp.lock:
            gp.result = result
            joiners = gp.joiners
            gp.joiners = None
        gp.coro = None
        m.curg = None
        with self.allglock:
            del self.allgs[gp.id]
        tr = self.tracer
        if tr is not None:
            tr.go_end(m, gp)
        if joiners:
            for j in joiners:
                goready(j)
        if gp is self.maing:
            self.stop(result=result)

    def gopanic(self, m: M, gp: G, exc: BaseException) -> None:
        """gopanic ends the runtime with exc, raised from gp (Go: an unrecovered panic)."""
        m.curg = None
        gp.status = GStatus.DEAD  # the G is gone; no transition of its can be observed any more
        if not isinstance(exc, Throw):
            exc.add_note(f"raised in goroutine {gp.id} ({gp.name}), created at {gp.createdat or '?'}")
        self.stop(error=exc)

    # --- the run loop ---

    def schedule(self, m: M) -> None:
        """schedule runs Gs on m until the runtime stops; m holds a P on entry."""
        while True:
            gp, inherit = find_runnable(self, m)
            if gp is None:
                return
            self.execute(m, gp, inherit)

    def execute(self, m: M, gp: G, inherit: bool) -> None:
        """execute steps gp's coroutine on m until it parks, yields, syscalls or ends.

        When gp parks and its P's runnext holds a G that find_runnable would pick next anyway (no
        expired slice, no fairness poll due, no chaos), execute switches to it directly: the
        readied G inherits the slice without a round trip through schedule (Go's runnext hand-off,
        minus the call overhead that dominates a switch in Python).
        """
        p = m.p
        assert p is not None
        if not inherit:
            p.schedtick += 1
        tr = self.tracer
        chaos = self.chaos
        while True:  # one pass per G run on this M without returning to schedule
            casgstatus(gp, RUNNABLE, RUNNING)
            p.ngrun += 1
            m.ngrun += 1
            gp.preempt = False
            if chaos is not None:
                chaos.on_execute(gp)
            gp.m = m
            m.curg = gp
            if tr is not None:
                tr.go_start(m, p, gp)
            coro = gp.coro
            assert coro is not None
            run = gp.ctx.run
            step: Any = coro.send
            # A syscall's result (or exception) held while gp waited for a P; usually None.
            val: Any = gp.sendval
            if val is not None:
                gp.sendval = None
            if gp.sendexc is not None:
                step = coro.throw
                val = gp.sendexc
                gp.sendexc = None
            while True:
                try:
                    trap = run(step, val)
                except StopIteration as e:
                    self.goexit(m, gp, e.value)
                    return
                except BaseException as e:  # any escape ends the runtime, as a panic
                    self.gopanic(m, gp, e)
                    return
                step = coro.send
                val = None
                if type(trap) is tuple:
                    kind = trap[0]
                    if kind is PARK:
                        casgstatus(gp, RUNNING, WAITING)
                        gp.waitreason = trap[3]
                        m.curg = None
                        if tr is not None:
                            tr.go_park(m, gp, trap[3])
                        commit = trap[1]
                        if commit is None or commit(gp, trap[2]):
                            break
                        # The commit found the wait already satisfied: resume at once (Go's
                        # park_m with a failed waitunlockf).
                        casgstatus(gp, WAITING, RUNNABLE)
                        casgstatus(gp, RUNNABLE, RUNNING)
                        gp.waitreason = _ZERO
                        m.curg = gp
                        if tr is not None:
                            tr.go_start(m, p, gp)
                        continue
                    if kind is GOSCHED:
                        if p.runnext is None and not p.runq and not self.runq and chaos is None:
                            # Nothing else is runnable here or on the global queue, so schedule()
                            # would pick gp again: start its next slice without the round trip.
                            if tr is not None:
                                tr.go_sched(m, gp, gp.preempt)
                                tr.go_start(m, p, gp)
                            gp.preempt = False
                            p.schedtick += 1
                            p.ngrun += 1
                            m.ngrun += 1
                            if not self.stopping:
                                continue
                        casgstatus(gp, RUNNING, RUNNABLE)
                        m.curg = None
                        if tr is not None:
                            tr.go_sched(m, gp, gp.preempt)
                        with self.lock:
                            self.runq.append(gp)
                        return
                    if kind is SYSCALL:
                        ok, val, exc = syscall(self, m, gp, trap[1], trap[2], trap[3])
                        if exc is not None:
                            step = coro.throw
                            val = exc
                        if not ok:
                            return  # gp went to the global queue; m lost its P or the runtime stops
                        p = m.p
                        assert p is not None
                        if gp.preempt and exc is None:
                            # Honour a preemption request that came during the call (Go re-arms
                            # it in exitsyscall): yield before handing the result over.
                            casgstatus(gp, RUNNING, RUNNABLE)
                            m.curg = None
                            gp.sendval = val
                            if tr is not None:
                                tr.go_sched(m, gp, True)
                            with self.lock:
                                self.runq.append(gp)
                            return
                        continue
                step = coro.throw
                val = TypeError(
                    f"goroutine {gp.id} awaited {trap!r}, which is not an mn_runtime operation;"
                    " asyncio/trio awaitables cannot be awaited inside mn_runtime goroutines"
                )
            # gp parked. Hand the slice to runnext if that is what find_runnable would do.
            if (
                p.runnext is None
                or p.preempt
                or chaos is not None
                or self.stopping
                or (p.schedtick % GLOBAL_POLL_TICKS == 0 and self.runq)
            ):
                return
            gp = p.runnext  # the owner's alone while p is RUNNING (runq.py)
            p.runnext = None

    # --- stopping ---

    def stop(self, result: Any = None, error: BaseException | None = None) -> None:
        """stop ends the runtime: the first call's outcome wins; wakes every sleeping thread."""
        with self.lock:
            if self.stopping:
                return
            self.stopping = True
            self.result = result
            self.error = error
            idle = self.midle[:]
            self.midle.clear()
            self.nmidle = 0
            for m in idle:
                m.nextp = None
        for m in idle:
            m.park.release()
        self.netpoll.wakeup()
        self.sysmon.wake()
        self.done.set()


# --- Ps and Ms ---


def acquirep(m: M, p: P) -> None:
    """acquirep associates p with m; p must be IDLE and unowned."""
    with p.lock:
        if p.status != PStatus.IDLE or p.m is not None:
            raise Throw(f"acquirep: P {p.id} is {p.status.name}, owned by {p.m!r}")
        p.status = PStatus.RUNNING
        p.m = m
    m.p = p
    s = cur
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
    s = cur
    if s is not None and s.tracer is not None:
        s.tracer.proc_stop(m, p)
    return p


def pidleput(sched: Sched, p: P) -> None:
    """pidleput puts p on the idle list; sched.lock held, p IDLE with an empty run queue."""
    if not runqempty(p):
        raise Throw(f"pidleput: P {p.id} has a non-empty run queue")
    if p.status != PStatus.IDLE:
        raise Throw(f"pidleput: P {p.id} is {p.status.name}")
    sched.pidle.append(p)
    sched.npidle += 1


def pidleget(sched: Sched) -> P | None:
    """pidleget takes a P off the idle list; sched.lock held."""
    if not sched.pidle:
        return None
    sched.npidle -= 1
    return sched.pidle.pop()


def mstart(sched: Sched, m: M) -> None:
    """mstart is an M thread's body: take the P it was started with and schedule until the end."""
    tls.m = m
    tls.sched = sched
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
    cannot see queued work with every M asleep while the wake-up is on its way.
    """
    if sched.stopping:
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


def resetspinning(sched: Sched, m: M) -> None:
    """resetspinning: m stopped spinning because it found work; pass the baton (step 2)."""
    m.spinning = False
    with sched.lock:
        sched.nmspinning -= 1
        if sched.nmspinning < 0:
            raise Throw("resetspinning: negative nmspinning")
    wakep(sched)


def handoffp(sched: Sched, p: P, reason: str) -> None:
    """handoffp finds a new owner for p, whose M is in a syscall (Go's handoffp)."""
    sched.nhandoff += 1
    tr = sched.tracer
    if tr is not None:
        tr.handoff(p, reason)
    if not runqempty(p) or sched.runq:
        startm(sched, p, False)
        return
    with sched.lock:
        if sched.nmspinning + sched.npidle == 0:
            sched.nmspinning += 1
            spin = True
        else:
            spin = False
            if not sched.runq:
                pidleput(sched, p)
                return
    startm(sched, p, spin)


def injectglist(sched: Sched, glist: list[G]) -> None:
    """injectglist puts runnable Gs on the global queue in one batch and starts Ms for them."""
    if not glist:
        return
    picked = []
    with sched.lock:
        sched.runq.extend(glist)
        for _ in range(min(len(glist), sched.npidle)):
            r = startm_locked(sched, None, False)
            if r is None:
                break
            picked.append(r)
    for r in picked:
        mwake(*r)


# --- finding work ---


def find_runnable(sched: Sched, m: M) -> tuple[G | None, bool]:
    """find_runnable returns the next G for m to run and whether it inherits the time slice.

    m holds a P on entry and on a non-None return; it may sleep in between (stopm). None means the
    runtime is stopping.
    """
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
                if m.spinning:
                    resetspinning(sched, m)
                return gp, False
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
        if p.schedtick % GLOBAL_POLL_TICKS == 0 and sched.runq:
            with sched.lock:
                gp = globrunqget(sched, p, 1)
            if gp is not None:
                if m.spinning:
                    resetspinning(sched, m)
                return gp, False
        gp, inherit = runqget(p)
        if gp is not None:
            if m.spinning:
                resetspinning(sched, m)
            return gp, inherit
        if sched.runq:
            with sched.lock:
                gp = globrunqget(sched, p, 0)
            if gp is not None:
                if m.spinning:
                    resetspinning(sched, m)
                return gp, False
        if sched.netpoll.has_waiters():
            gp = sched.netpoll.poll_nonblocking(p)
            if gp is not None:
                if m.spinning:
                    resetspinning(sched, m)
                return gp, False
        if sched.procs > 1 and (m.spinning or 2 * sched.nmspinning < sched.procs - sched.npidle):
            if not m.spinning:
                m.spinning = True
                with sched.lock:
                    sched.nmspinning += 1
            gp = steal_work(sched, m, p)
            if gp is not None:
                resetspinning(sched, m)
                return gp, False
        if sched.chaos is not None and sched.chaos.before_idle(sched):
            continue  # released held wake-ups or fired timers (replay mode): look again
        # Nothing anywhere: give up the P (Go: the tail of findRunnable).
        with sched.lock:
            gp = globrunqget(sched, p, 0) if sched.runq and not sched.stopping else None
            if gp is None:
                releasep(m)
                pidleput(sched, p)
        if gp is not None:
            if m.spinning:
                resetspinning(sched, m)
            return gp, False
        if m.spinning:
            m.spinning = False
            with sched.lock:
                sched.nmspinning -= 1
            # Step 3 of the protocol: look at every queue once more after we stopped counting.
            if any(not runqempty(vp) for vp in sched.allp):
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


def steal_work(sched: Sched, m: M, p: P) -> G | None:
    """steal_work tries STEAL_ROUNDS times to steal from every other P, in a random order."""
    allp = sched.allp
    n = len(allp)
    rng = m.rng
    tr = sched.tracer
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
            if runqempty(victim):
                continue
            before = len(p.runq)
            gp = runqsteal(p, victim, last)
            if gp is not None:
                if tr is not None:
                    tr.steal(m, p, victim, len(p.runq) - before + 1)
                return gp
        if sched.runq:
            return None  # let find_runnable take it from the global queue
    return None


# --- deadlock ---


def checkdead(sched: Sched) -> Deadlock | None:
    """checkdead reports a deadlock when no M runs and nothing can ever ready a G.

    sched.lock held. Called whenever an M goes idle (Go: from mput). Ms in syscalls count as
    running; timers and Gs parked on pollDescs can still ready Gs, so they rule a deadlock out.
    """
    if sched.stopping or sched.nmidle < len(sched.allm):
        return None
    if sched.runq:
        raise Throw(f"checkdead: {len(sched.runq)} runnable goroutines on the global queue but no M running")
    if sched.timers.pending() or sched.nnetpollwait or sched.netpoll.busy:
        return None
    with sched.allglock:
        gs = list(sched.allgs.values())
    if not gs:
        raise Throw("checkdead: no goroutines left but the runtime was not stopped")
    return Deadlock([stack.format_goroutine(g) for g in sorted(gs, key=lambda g: g.id)])


def where(depth: int = 2) -> str:
    """where names the caller's caller as file:line, for "created by" in goroutine dumps."""
    try:
        f = sys._getframe(depth)
    except ValueError:
        return "?"
    return f"{f.f_code.co_filename}:{f.f_lineno}"
