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
  0. timers that are due fire here and ready their Gs into this P's runnext (Go's checkTimers);
  1. every 61st schedule tick, one G from the global queue (fairness: two Gs handing each other the
     runnext slot must not starve it), and at every tick while Gs readied by timers wait at its
     front (the poller thread fired them; Go readies a timer's G into runnext, so it runs after
     the current G);
  2. the local runnext slot, then the local ring;
  3. the global queue (a batch: one to run, a share onto the local ring);
  4. the network, without blocking (Go's netpoll(0)); and if this is the last running P and Gs
     wait on fds, a wait in epoll of up to 10 ms that keeps the P (Go's blocking netpoll);
  5. stealing: up to 4 rounds over all other Ps in a random order, taking half of a victim's ring
     (its runnext only in the last round, and only from a P whose owner is not running or has
     kept that G there for RUNNEXT_GRACE while running no other G: runq.py, runqgrab_stale);
  6. nothing: release the P, sleep (stopm) until startm hands this M a P again.
Gs readied by timers and the poller thread arrive through the global queue (injectglist), which
also wakes idle Ms for them (and breaks an M's wait in epoll); timers' Gs go to its front.

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
- Timers live in one heap, not per P: the poller thread blocks in epoll_wait with the earliest
  deadline as its timeout (netpoll.py), and Ms fire due timers when they look for work.

Locks and what they stand in for
--------------------------------
- sched.lock guards the global queue, the idle P and M lists, nmspinning, and stopping. Go reads
  nmspinning and npidle atomically in wakep; we read them racily as a hint and decide under the
  lock.
- p.lock guards a P's ring, runnext and status (Go: atomics on runqhead/runqtail and pp.status).
- g.lock guards a G's status and joiners (Go: atomic CAS on gp.atomicstatus), except the two
  moves only the G's owner makes (g.py).
- The order in which they may be taken, and every other lock, is the one table in lock.py (LOCKS).
- The M park lock (m.py) is the memory barrier between the waker writing m.nextp and the M reading it.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Coroutine
from math import gcd
from time import monotonic as _monotonic
from typing import Any

from ..errors import Throw
from . import lock as _lock
from . import park as _park
from .allgs import GTable
from .chaos import Chaos
from .findrunnable import GLOBAL_POLL_TICKS, find_runnable
from .g import DEAD, EXITED, RUNNABLE, RUNNING, WAITING, ZERO_REASON, G, abandon, badgstatus, casgstatus
from .globrunq import GlobRunq
from .idle import (
    injectglist,
    wakep,
)
from .m import M
from .netpoll import Netpoller
from .p import P
from .runq import RUNQ_SIZE, runqget, runqput
from .snapshot import SchedStats
from .stack import createdat_text
from .syscall import syscall
from .sysmon import Sysmon
from .timers import TimerHeap
from .tracer import Tracer
from .traps import GOSCHED, PARK, SYSCALL

_copy_context = contextvars.copy_context

# LOSTPANICS_NAMED: how many of the goroutine errors dropped after the first run()'s note names.
LOSTPANICS_NAMED = 3


def _coprimes(n: int) -> list[int]:
    return [i for i in range(1, n + 1) if gcd(i, n) == 1]


def badtrap(gp: G, trap: object) -> TypeError:
    """badtrap: the error thrown into gp, which awaited something that is not a runtime trap."""
    return TypeError(
        f"goroutine {gp.id} awaited {trap!r}, which is not an mn_runtime operation;"
        " asyncio/trio awaitables cannot be awaited inside mn_runtime goroutines"
    )


class Sched:
    """Sched is the scheduler state shared by every M (Go's schedt plus allp/allm/allgs)."""

    def __init__(self, procs: int, *, runqcap: int = RUNQ_SIZE, seed: int = 0) -> None:
        self.procs = procs
        self.seed = seed
        self.lock = _lock.new("sched.lock")
        self.runq = GlobRunq(self.lock)  # the global run queue (globrunq.py), under lock
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
        # Goroutines that raised after another outcome had ended the runtime (under sched.lock):
        # how many, and the first few named, for the note run() adds to the error it raises.
        self.nlostpanics = 0
        self.lostpanics: list[str] = []
        self.allgs = GTable()  # every G not yet exited, and the ids handed out (allgs.py)
        self.maing: G | None = None
        # mpolling: how many Ms that ran out of work wait in epoll keeping their P (Go's blocking
        # netpoll in findrunnable; netpoll.py, poll_blocking; normally at most one, but the "last
        # running P" test is racy). Under sched.lock: whoever queues Gs on the global queue with
        # nobody running reads it in the same hold and breaks that wait.
        self.mpolling = 0
        # now: sysmon's clock, time.monotonic() at its last tick (at most its 10 ms sleep old while
        # any P runs), 0.0 while it sleeps long because none does. The park path stamps
        # g.waitsince with it: a clock read per park is a measurable part of a channel round
        # trip (docs/benchmarks.md), and Go's waitsince is approximate too (stamped at the next GC).
        self.now = 0.0
        self.tracer: Tracer | None = None
        # Chaos mode (chaos.py): None when off; set by run() before any thread starts.
        self.chaos: Chaos | None = None
        # Counters written under sched.lock or by one thread; read racily by stats().
        self.nhandoff = 0
        self.nstuckhandoff = 0  # Ps whose queue sysmon handed on, their G stuck (sysmon only)
        self.npreempt = 0
        self.nspinstart = 0
        self.timers = TimerHeap(self)
        self.netpoll = Netpoller(self)
        self.sysmon = Sysmon(self)

    def stats(self) -> tuple[SchedStats, list[M]]:
        """stats: the scheduler's own snapshot, and its Ms, read in one hold of self.lock (the
        idle counts and the global queue are guarded by it; the counters are written under it or
        by one thread). mn.stats() composes it with the Ps', the poller's and the Ms' own."""
        with self.lock:
            ms = list(self.allm)
            snap = SchedStats(
                idle_procs=self.npidle,
                threads=len(ms),
                idle_threads=self.nmidle,
                spinning_threads=self.nmspinning,
                global_runq=len(self.runq),
                handoffs=self.nhandoff,
                stuck_handoffs=self.nstuckhandoff,
                preempt_requests=self.npreempt,
                spinning_starts=self.nspinstart,
            )
        return snap, ms

    # --- G creation and exit ---

    def newproc(
        self, coro: Coroutine[Any, Any, Any], name: str, m: M | None, where: Any, pc: int = 0, main: bool = False
    ) -> G:
        """newproc makes a G for coro and puts it in the runnext of m's P (Go's newproc).

        m is the calling M (its running G is the parent), or None when run() starts main. where
        and pc are where go() was called (the caller's code object and instruction offset, or a
        label and 0; stack.createdat_text renders them). main marks run()'s G, whose exit ends
        the runtime; it is recorded before the G is queued, since an M may run it to completion
        before newproc returns.
        """
        parent = m.curg if m is not None else None
        # Born RUNNABLE (g.py, IDLE): no other thread sees gp before allgs and the queue publish it.
        gp = G(0, coro, _copy_context(), name, where, pc, parent.id if parent is not None else 0)
        allgs = self.allgs
        gp.id = allgs.newid(m.p if m is not None else None)  # m.p's cache: m is its owner
        allgs.add(gp)
        if main:
            self.maing = gp
        tr = self.tracer
        if tr is not None:
            tr.go_create(gp, parent)
        if m is not None and m.p is not None:
            runqput(self, m.p, gp, True)
            wakep(self)
        else:
            injectglist(self, [gp])
        return gp

    def goexit(self, m: M, gp: G, result: Any) -> None:
        """goexit ends gp after its coroutine returned result, and readies its joiners.

        gp leaves allgs before it is marked EXITED: a joiner that sees EXITED (join's fast path
        reads it under gp.lock, on another M) must find num_goroutine() without gp.
        """
        if gp.status is not RUNNING:  # the owner's check; the move itself is under gp.lock below
            badgstatus(gp, RUNNING, DEAD)
        self.allgs.remove(gp)
        lock = gp.lock
        lock.acquire()
        if gp.status is not RUNNING:  # casgstatus(gp, RUNNING, DEAD), inlined: one lock hold
            lock.release()  # for the move, the result and the joiners
            badgstatus(gp, RUNNING, DEAD)
        gp.status = DEAD
        gp.result = result
        joiners = gp.joiners
        gp.joiners = EXITED
        lock.release()
        # Break gp's reference cycles (its cached sudog and the last one that woke it point back
        # at gp), so a finished G is freed by reference counting, not left to the cycle collector.
        gp.coro = None
        gp.sudog = None
        gp.param = None
        m.curg = None
        tr = self.tracer
        if tr is not None:
            tr.go_end(m, gp)
        if joiners is not None and joiners is not EXITED:
            joiners.readyjoiners()  # type: ignore[union-attr]
        if gp is self.maing:
            self.stop(result=result)

    def gopanic(self, m: M, gp: G, exc: BaseException) -> None:
        """gopanic ends the runtime with exc, raised from gp (Go: an unrecovered panic)."""
        m.curg = None
        abandon(gp)
        if not isinstance(exc, Throw):
            exc.add_note(f"raised in goroutine {gp.id} ({gp.name}), created at {createdat_text(gp) or '?'}")
        if not self.stop(error=exc):
            # Another outcome won: run() raises that one and names how many others it dropped.
            with self.lock:
                self.nlostpanics += 1
                if len(self.lostpanics) < LOSTPANICS_NAMED:
                    self.lostpanics.append(f"{type(exc).__name__} in goroutine {gp.id} ({gp.name})")

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

        When gp parks or ends and find_runnable would pick the next G from this P's local queue
        anyway (no expired slice, no fairness poll due, no chaos, not stopping), execute goes on
        with it directly: a runnext G inherits the slice (Go's runnext hand-off), a ring G starts
        a new one. It is the G schedule would run, minus the calls that dominate a switch in
        Python.
        """
        p = m.p
        assert p is not None
        if not inherit:
            p.schedtick += 1
        tr = self.tracer
        chaos = self.chaos
        thieves = self.procs > 1  # with one P nobody can steal runnext: no lock to take it
        grq = self.runq  # read racily as a hint here; changed only under self.lock
        while True:  # one pass per G run on this M without returning to schedule
            if gp.status is not RUNNABLE:  # casgstatus(gp, RUNNABLE, RUNNING), owner's move (g.py)
                badgstatus(gp, RUNNABLE, RUNNING)
            gp.status = RUNNING
            p.ngrun += 1
            m.ngrun += 1
            gp.preempt = False
            if chaos is not None:
                chaos.on_execute(gp)
            gp.m = m
            m.curg = gp
            if tr is not None:
                tr.go_start(m, p, gp)
            coro: Any = gp.coro  # not None: only goexit and abandon clear it, and gp is RUNNABLE
            run = gp.ctx.run
            send = coro.send  # one bound method per resume, not one per trap
            step: Any = send
            val: Any = None
            resume = gp.resume  # a syscall's outcome held while gp waited for a P; usually None
            if resume is not None:
                gp.resume = None
                val, exc = resume
                if exc is not None:
                    step = coro.throw
                    val = exc
            while True:
                try:
                    trap = run(step, val)
                except StopIteration as e:
                    self.goexit(m, gp, e.value)
                    break
                except BaseException as e:  # any escape ends the runtime, as a panic
                    self.gopanic(m, gp, e)
                    return
                step = send
                val = None
                if type(trap) is tuple:
                    kind = trap[0]
                    if kind is PARK:
                        _, commit, arg, reason = trap
                        if gp.status is not RUNNING:  # casgstatus(gp, RUNNING, WAITING), owner's move
                            badgstatus(gp, RUNNING, WAITING)
                        gp.status = WAITING
                        gp.waitreason = reason
                        gp.waitsince = self.now or _monotonic()  # read only by dumps
                        m.curg = None
                        if tr is not None:
                            tr.go_park(m, gp, reason)
                        if commit is None:  # goparkunlock: the commit is releasing the lock
                            arg.release()
                            break
                        if commit(gp, arg):
                            break
                        self.parkfailed(m, p, gp)
                        continue
                    if kind is GOSCHED:
                        if p.runnext is None and not p.runq and not grq.q and chaos is None and not self.stopping:
                            # The measured hot path of a yield: nothing else is runnable here or
                            # on the global queue, so schedule() would pick gp again; its next
                            # slice starts without the round trip.
                            if tr is not None:
                                tr.go_sched(m, gp, gp.preempt)
                                tr.go_start(m, p, gp)
                            gp.preempt = False
                            p.schedtick += 1
                            p.ngrun += 1
                            m.ngrun += 1
                            continue
                        self.goschedimpl(m, gp, gp.preempt)
                        return
                    if kind is SYSCALL:
                        ok, val, exc = syscall(self, m, gp, trap[1], trap[2], trap[3])
                        if exc is not None:
                            step = coro.throw
                            val = exc
                        if not ok or not self.syscallreturned(m, gp, val, exc):
                            return
                        p = m.p
                        assert p is not None
                        continue
                step = coro.throw
                val = badtrap(gp, trap)
            # gp parked or exited. Go on with the G find_runnable would pick, if that is the
            # local queue's: runnext inherits the slice; a ring G starts a new one. The one place
            # that takes find_runnable's common case without calling it.
            if p.preempt or chaos is not None or self.stopping:
                return
            if p.runnext is not None:
                if (p.schedtick % GLOBAL_POLL_TICKS == 0 or grq.ntimerg) and grq.q:
                    return
                if not thieves:
                    gp = p.runnext
                    p.runnext = None
                    continue
                # Taken under p.lock: a thief may take runnext from an owner that kept it too long
                # (runq.py, runqgrab_stale), so read-and-clear must be one step against it.
                lk = p.lock
                lk.acquire()
                gp = p.runnext
                p.runnext = None
                lk.release()
                if gp is None:
                    return
                continue
            if not p.runq or p.schedtick % GLOBAL_POLL_TICKS == 0 or grq.ntimerg:
                return
            gp, _ = runqget(p)
            if gp is None:
                return
            p.schedtick += 1

    # --- execute's rare traps, out of its loop ---

    def parkfailed(self, m: M, p: P, gp: G) -> None:
        """parkfailed: gp's park commit found its wait already satisfied, so gp, WAITING, resumes
        on m at once (Go's park_m with a failed waitunlockf)."""
        casgstatus(gp, WAITING, RUNNABLE)
        casgstatus(gp, RUNNABLE, RUNNING)
        gp.waitreason = ZERO_REASON
        m.curg = gp
        tr = self.tracer
        if tr is not None:
            tr.go_start(m, p, gp)

    def syscallreturned(self, m: M, gp: G, val: Any, exc: BaseException | None) -> bool:
        """syscallreturned: gp's blocking call is over and m kept (or got back) a P. True: gp goes
        on. False: a preemption request came during the call (Go re-arms it in exitsyscall), so
        gp yields before its result is handed over (held in gp.resume) and m schedules."""
        if gp.preempt and exc is None:
            gp.resume = (val, None)
            self.goschedimpl(m, gp, True)
            return False
        return True

    def goschedimpl(self, m: M, gp: G, preempted: bool) -> None:
        """goschedimpl: gp, running on m, yields to the back of the global queue (Go's goschedImpl)."""
        casgstatus(gp, RUNNING, RUNNABLE)
        m.curg = None
        tr = self.tracer
        if tr is not None:
            tr.go_sched(m, gp, preempted)
        with self.lock:
            self.runq.put(gp)

    # --- stopping ---

    def stop(self, result: Any = None, error: BaseException | None = None) -> bool:
        """stop ends the runtime: the first call's outcome wins (True for that call); wakes every
        sleeping thread."""
        with self.lock:
            if self.stopping:
                return False
            self.stopping = True
            self.result = result
            self.error = error
            idle = self.midle[:]
            self.midle.clear()
            self.nmidle = 0
            for m in idle:
                m.nextp = None
            # Ask every running G to yield at its next runtime call, not only at its next park or
            # gosched: its M then sees stopping and exits (the hint first, as sysmon.retake
            # does). Under sched.lock: sysmon's clearpreempt decides under it too, so it cannot
            # scan before these flags are set and clear the hint after.
            _park.anypreempt = True
            for p in self.allp:
                pm = p.m  # racy reads: a G that just left its P yields at its next trap anyway
                gp = pm.curg if pm is not None else None
                if gp is not None:
                    gp.preempt = True
        for m in idle:
            m.park.release()
        self.netpoll.wakeup()
        self.netpoll.backend.mbreak()
        self.sysmon.wake()
        self.done.set()
        return True
