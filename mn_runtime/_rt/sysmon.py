"""sysmon: the system monitor thread, which runs without a P (Go's sysmon).

Each tick it
- retakes Ps whose M has been in a syscall for a whole tick while there is other work to do, or
  for over 10 ms whatever (retake -> handoffp);
- asks a G that has run for over 10 ms without a schedule to yield (cooperative preemption: the G
  sees g.preempt at its next runtime call), and if Gs wait queued behind it on its P while a P is
  idle, wakes an M to steal them (a G that never makes a runtime call would keep them waiting);
- drives schedtrace when it is on.
It sleeps 20 us between ticks while it finds something to do, and after 50 idle ticks doubles the
sleep up to 10 ms. When every P is idle, and none has scheduled a G or entered a syscall since the
last tick, there is nothing to retake or preempt, so it sleeps up to a second (Go's sysmonwait)
until acquirep wakes it. Only a syscall's wake (entersyscall, when sysmon sleeps long) means work
for a short tick and resets the sleep to 20 us, as Go's syscallWake does; acquirep's wake only ends
the deep sleep, and sysmon goes on at the pace it had. Both rules are for a program whose Ps go
idle and busy again every few milliseconds (goroutines waiting on a process pool, a timer, a peer):
without them each such wait woke this thread and brought back the 20 us tick, a thread taking the
GIL every few tens of microseconds from the Ms and from the threads that complete futures. Its wait
is one timed acquire of a lock: no Condition, no busy loop.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from . import lock as _lock
from . import park as _park
from .idle import checkdead, handoffp, injectglist, wakep
from .p import PStatus
from .runq import runqdrain, runqempty

if TYPE_CHECKING:
    from .g import G
    from .p import P
    from .sched import Sched

FORCE_PREEMPT_NS = 10e-3  # seconds a G may run before it is asked to yield (Go's forcePreemptNS)
# STUCK_NS: seconds after which a G that has not yielded is taken to hold its M outside the runtime,
# and its P's queued Gs go to the global queue (retake).
STUCK_NS = 2 * FORCE_PREEMPT_NS
MIN_DELAY = 20e-6
MAX_DELAY = 10e-3
DEEP_DELAY = 1.0
NETPOLL_EVERY = 10e-3  # seconds without a look at epoll before sysmon looks itself


class Sysmon:
    def __init__(self, sched: Sched) -> None:
        self.sched = sched
        # note is held while no wake-up is pending; wake() releases it once (pending guards
        # against a second release), and the loop's timed acquire both waits and re-arms it.
        self.note = _lock.plain("sysmon.note")
        self.note.acquire()
        self.notelock = _lock.new("sysmon.notelock")
        self.pending = False
        self.syscallwake = False  # the pending wake-up came from a syscall (under notelock)
        self.delay = MIN_DELAY
        # deep: sleeping long because every P is idle; acquirep wakes it (Go's sysmonwait).
        self.deep = False
        self.lastact = -1  # the Ps' schedules and syscalls counted at the last tick
        self.thread = threading.Thread(target=self.loop, name="mn-sysmon", daemon=True)
        self.schedtrace = 0.0  # seconds between schedtrace lines; 0 = off
        self.schedtrace_fn: object = None
        self.ticks = 0
        self.nnetpoll = 0  # Gs readied by sysmon's own network polls
        self.polling = False

    def start(self) -> None:
        self.thread.start()

    def wake(self, syscall: bool = False) -> None:
        with self.notelock:
            if syscall:
                self.syscallwake = True
            if self.pending:
                return
            self.pending = True
            self.note.release()

    def note_syscall(self) -> None:
        """note_syscall: a syscall began; shorten a long sleep so it is seen within a tick."""
        if self.delay > 1e-3 or self.deep:
            self.wake(syscall=True)

    def loop(self) -> None:
        sched = self.sched
        idle = 0
        nexttrace = time.monotonic() + self.schedtrace if self.schedtrace else 0.0
        while not sched.stopping:
            if idle == 0:
                self.delay = MIN_DELAY
            elif idle > 50:
                self.delay = min(self.delay * 2, MAX_DELAY)
            delay = self.delay
            # Decided under sched.lock, where pidleget takes a P: either a P is taken first and
            # sysmon sees it, or deep is set first and that P's acquirep sees deep and wakes
            # sysmon. Without the lock (or the GIL making the two lines one step) acquirep could
            # read deep between the test and the store and sysmon would sleep through the P's
            # whole run: no preemption requests, no syscall retakes for up to DEEP_DELAY.
            # Racy reads of counters each P's owner writes: a hint that something ran since.
            act = sum(p.schedtick + p.syscalltick for p in sched.allp)
            with sched.lock:
                deep = self.deep = sched.npidle == sched.procs and act == self.lastact and not self.schedtrace
            self.lastact = act
            if deep:
                # Nothing runs and nothing is in a syscall: no P to retake, no G to preempt.
                delay = DEEP_DELAY
                sched.now = 0.0  # no tick for a while: parks read the clock themselves
            woke = self.note.acquire(timeout=delay)
            self.deep = False
            syscallwake = False
            if woke:
                with self.notelock:
                    self.pending = False
                    syscallwake, self.syscallwake = self.syscallwake, False
            if sched.stopping:
                break
            if woke and deep and not syscallwake:
                continue  # acquirep ended the deep sleep: sleep the usual delay, then tick
            now = time.monotonic()
            sched.now = now
            self.ticks += 1
            n = self.retake(now)
            if _park.anypreempt and sched.chaos is None:
                self.clearpreempt()
            if n + self.netpoll(now) or syscallwake:
                idle = 0
            else:
                idle += 1
            if nexttrace and now >= nexttrace:
                nexttrace = now + self.schedtrace
                fn = self.schedtrace_fn
                if callable(fn):
                    fn()

    def netpoll(self, now: float) -> int:
        """netpoll polls the network when Gs wait on fds, the poller thread is not watching them
        (some P runs), and no M has looked for 10 ms (Go's sysmon does the same); returns how many
        Gs it readied, injected into the global queue."""
        sched = self.sched
        np = sched.netpoll
        if not np.backend.fds or np.armed or now - np.backend.lastpoll < NETPOLL_EVERY:
            return 0

        glist: list[G] = []
        # polling tells checkdead (under sched.lock) that readied Gs may be in transit here.
        with sched.lock:
            self.polling = True
        try:
            np.backend.collect(glist)
            if glist:
                self.nnetpoll += len(glist)
                injectglist(sched, glist)
        finally:
            with sched.lock:
                self.polling = False
                dead = checkdead(sched)  # an M that went idle meanwhile skipped it (netpoll.py)
            if dead is not None:
                sched.stop(error=dead)
        return len(glist)

    def clearpreempt(self) -> None:
        """clearpreempt recomputes park.anypreempt: is a G on some P still asked to yield?

        The scan and the store are one step under sched.lock, as stop()'s setting of the hint
        and the flags: otherwise stop could set them between the scan and the store, and the
        cleared hint would hide its flags from every G that only takes fast paths (run() then
        waits for an M that never looks). Once stopping, the hint stays set.
        """
        sched = self.sched
        with sched.lock:
            if sched.stopping:
                return
            for p in sched.allp:
                m = p.m
                gp = m.curg if m is not None else None
                if gp is not None and gp.preempt:
                    return
            _park.anypreempt = False

    def retake(self, now: float) -> int:
        """retake hands off Ps stuck in syscalls and flags Gs over their slice; returns how many."""

        sched = self.sched
        if sched.chaos is not None and sched.chaos.sysmon(sched):
            return 0  # replay mode: the seeded chaos decides preemptions instead of the clock
        n = 0
        for p in sched.allp:
            schedtick, schedwhen, syscalltick, syscallwhen = p.sysmontick
            status = p.status
            if status == PStatus.SYSCALL:
                t = p.syscalltick
                if t != syscalltick:
                    p.sysmontick = (schedtick, schedwhen, t, now)
                    continue
                # Keep the P while there is nothing for it to do and other Ms could help, unless
                # the syscall has gone on for over 10 ms (Go's retake).
                if runqempty(p) and sched.nmspinning + sched.npidle > 0 and syscallwhen + 10e-3 > now:
                    continue
                with p.lock:
                    ok = p.status == PStatus.SYSCALL and p.syscalltick == t
                    if ok:
                        p.status = PStatus.IDLE
                if ok:
                    n += 1
                    handoffp(sched, p, "syscall")
            elif status == PStatus.RUNNING:
                t = p.schedtick
                if t != schedtick:
                    p.sysmontick = (t, now, syscalltick, syscallwhen)
                elif schedwhen + FORCE_PREEMPT_NS <= now:
                    m = p.m
                    gp = m.curg if m is not None else None
                    if gp is not None and not gp.preempt:
                        _park.anypreempt = True  # before the flag: park.py's note
                        gp.preempt = True
                        p.preempt = True
                        sched.npreempt += 1
                        n += 1
                        tr = sched.tracer
                        if tr is not None:
                            tr.preempt(gp, p)
                    # A G that computes without runtime calls never sees that request, and Gs
                    # queued behind it on this P (a G it readied into runnext, which wakes no
                    # one) would wait for it: wake an idle P's M to steal them (runnext after its
                    # grace, runq.runqgrab_stale). A chain of runnext hand-offs lands here too,
                    # once per slice, and the thief leaves it alone (its owner moves on).
                    if (p.runnext is not None or p.runq) and sched.npidle and not sched.nmspinning:
                        wakep(sched)
                        n += 1
                    if schedwhen + STUCK_NS <= now and sched.procs > 1 and (p.runnext is not None or p.runq):
                        # The G ignored its request for a whole slice more: it holds its M in
                        # Python or C code that never reaches the runtime (a loop without awaits,
                        # time.sleep called directly). Its P's queue would wait behind it, and
                        # thieves take only half of a ring at a time and only from when they run
                        # dry: hand it all to the global queue, where every P looks.
                        if self.handoff_stuck(p):
                            n += 1
        return n

    def handoff_stuck(self, p: P) -> bool:
        """handoff_stuck moves p's local queue to the global queue (retake, p's G stuck); whether
        there was anything to move. Between the drain and the injection the Gs are on no queue, so
        sysmon announces them in transit under sched.lock (`polling`, as for its network polls):
        the stuck owner may go idle meanwhile, and checkdead must not take the moment for a
        deadlock; it runs again once they are queued."""
        sched = self.sched
        with sched.lock:
            self.polling = True
        gs: list[G] = []
        try:
            gs = runqdrain(p)
            if gs:
                sched.nstuckhandoff += 1
                injectglist(sched, gs)
        finally:
            with sched.lock:
                self.polling = False
                dead = checkdead(sched)
            if dead is not None:
                sched.stop(error=dead)
        return bool(gs)

    def join(self) -> None:
        if self.thread.is_alive():
            self.thread.join()
