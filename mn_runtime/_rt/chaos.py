"""chaos: seeded perturbation of the scheduler's decisions, and deterministic replay.

Chaos mode is on when run() is given `chaos=SEED` (or $MN_CHAOS=SEED). `sched.chaos` then holds a
Chaos; every hook site in the runtime costs one `if sched.chaos is not None:` test when it is off.
A correct program stays correct under any of these perturbations (each is a schedule the plain
runtime could also produce); a racy one fails sooner. Go does the same under -race
(proc.go's randomizeScheduler: runnext demoted half the time, batches shuffled).

Decision points, and what chaos may do at each:
  execute (sched.py)        record the switch; flag g.preempt, so the G yields at its next runtime
                            call that checks it (a channel fast path, a mutex fast path, the end
                            of a syscall)
  exitsyscall (syscall.py)  flag g.preempt, so the G yields before it takes the call's result
  find_runnable             release delayed wake-ups whose delay is over; take a random G off the
    (findrunnable.py)       head of the global queue before the local queue (globrunq.take_at)
  before idling             release every delayed wake-up; in replay mode, fire the next timers
    (findrunnable.py)
  steal_work                skip a victim (the victim order itself is the per-M rng, seeded from
    (findrunnable.py)       the chaos seed)
  runqput (runq.py)         demote runnext to the ring; rotate the ring (random run queue order)
  goready (park.py)         hold the readied G back for a few schedules (a delayed wake-up)
  sysmon (sysmon.py)        flag a running G long before its 10 ms slice is over
  netpoll (netpoll.py)      wake the poller early (a spurious wake-up: timers are checked against
                            the clock again, so none fires early)

Replay mode (procs == 1)
------------------------
With one P, no real I/O and a seed, the order of G switches is a function of the seed alone, so a
failure found by a seed sweep replays. What would otherwise depend on the wall clock:
- sysmon: in replay mode it neither flags Gs (chaos flags them, from the seeded rng, at execute and
  exitsyscall) nor retakes Ps from syscalls (a syscall runs inline, holding the P's place; a
  syscall that waits for another goroutine would therefore hang: do not replay such programs).
- timers: the poller thread does not fire them (ReplayTimerHeap). The M fires them itself, one at a
  time, by a virtual clock that advances VIRTUAL_TICK per schedule and jumps to the next deadline
  when the M has nothing else to run. A timer's virtual deadline is the virtual time when it was
  set plus its duration rounded to the millisecond (ties: the order they were set). Real
  deadlines come from the wall clock, which advances with the program's own run time, so
  ordering by them would differ between runs. The M
  still waits for the real deadline, so no timer fires early; one may fire later than in a plain
  run (after a timer with an earlier virtual deadline), and the M may wait for a real deadline
  while other goroutines are runnable.
- delayed wake-ups count schedules, not seconds.
- the rngs: one for decisions on Ms, one for sysmon and one for the poller, so a spurious poller
  wake-up never shifts the Ms' sequence of draws.
With procs > 1 the perturbations still apply, but the interleaving depends on the OS's thread
scheduling and is not replayable.

Locks: `Chaos.lock` guards the Ms' rng, the delayed list and the switch record. It is a leaf: it is
taken with other runtime locks held (goready runs under channel locks) and nothing else is taken
under it. sysmon_rng and poll_rng are owned by their one thread each.
"""

from __future__ import annotations

import heapq
import random
import time
from typing import TYPE_CHECKING

from ..errors import Throw
from . import lock as _lock
from . import park
from .idle import injectglist
from .timers import MAX_POLL_WAIT, Timer, TimerHeap

if TYPE_CHECKING:
    from .g import G
    from .m import M
    from .p import P
    from .sched import Sched

__all__ = ["Chaos", "ReplayTimerHeap", "last"]

# Probabilities of each perturbation, per decision.
P_YIELD = 0.15  # flag g.preempt when a G starts running
P_SYSCALL_YIELD = 0.3  # flag g.preempt when a syscall returns
P_DEMOTE = 0.5  # runqput: put a runnext G on the ring instead (Go's randomizeScheduler)
P_ROTATE = 0.2  # runqput: rotate the ring before putting
P_GLOBAL = 0.1  # find_runnable: take a G from the global queue first
P_DELAY = 0.1  # goready: hold the G back
MAX_DELAY = 8  # schedules a held-back G waits at most
P_SKIP_VICTIM = 0.25  # steal_work: pass a victim by
P_SYSMON = 0.05  # per running P and sysmon tick: flag its G
P_SPURIOUS = 0.2  # per poller round: wake early
SPURIOUS_MAX = 5e-3  # seconds: the longest early wake-up when the poller had no deadline
GLOBAL_PICK = 64  # take the random global G from the first this many
IO_SLICE = 2e-3  # replay mode waits for a timer in slices this long while Gs wait on fds
VIRTUAL_QUANTUM = 1e-3  # replay mode rounds timer durations to this for ordering
VIRTUAL_TICK = 1e-5  # replay mode's virtual clock advances this much per schedule

_MASK = (1 << 64) - 1

# The Chaos of the most recent chaos run (None before any): lets a harness read its switch digest
# after run() returned.
last: Chaos | None = None


class ReplayTimerHeap(TimerHeap):
    """ReplayTimerHeap: the timer heap of replay mode, on a virtual clock, fired by the M.

    Heap keys are virtual deadlines: vnow (the key of the last timer fired) plus the timer's
    duration, rounded to VIRTUAL_QUANTUM; ties fire in the order the timers were set. t.when keeps
    the real deadline, and fire_next waits for it, so no timer fires early. The poller never fires
    these timers (its run_expired fires nothing) and is never woken for them (wait_timeout arms no
    deadline). Reuses TimerHeap's lock, lazy deletion and stale-entry accounting.
    """

    def __init__(self, sched: Sched) -> None:
        super().__init__(sched)
        self.vnow = 0.0
        self.lastnow = time.monotonic()  # the last clock reading handed out by now()
        self.now = self._replay_now

    def _replay_now(self) -> float:
        """_replay_now is this heap's now(): time.monotonic(), remembered (Chaos.now)."""
        t = time.monotonic()
        self.lastnow = t
        return t

    def _push(self, t: Timer, when: float) -> bool:
        # when is a real deadline, normally computed from Chaos.now() (mn.sleep does), whose last
        # reading gives back the exact duration asked for; rounded, it makes the virtual key.
        d = round(max(0.0, when - self.lastnow), 9)
        d = round(d / VIRTUAL_QUANTUM) * VIRTUAL_QUANTUM
        self._pushv(t, when, self.vnow + d)
        return False

    def _pushv(self, t: Timer, when: float, key: float) -> None:
        t.when = when
        t.pending = True
        self.counter += 1
        heapq.heappush(self.heap, (key, self.counter, t.gen, t))
        self.npending += 1

    def wait_timeout(self) -> float | None:
        return None

    def run_expired(self, now: float) -> int:
        return 0

    def fire_due(self, sched: Sched, vclock: float) -> bool:
        """fire_due (each schedule) advances the virtual clock to vclock and fires the earliest
        timer if that makes it due; True if one fired."""
        with self.lock:
            if vclock > self.vnow:
                self.vnow = vclock
            key = self.next_when()
            if key is None or key > self.vnow:
                return False
        return self.fire_next(sched)

    def fire_next(self, sched: Sched) -> bool:
        """fire_next (the M, out of work) waits for the real deadline of the timer with the
        earliest virtual key and fires it; False if no timer is pending."""
        while True:
            with self.lock:
                key = self.next_when()
                if key is None:
                    return False
                t = self.heap[0][3]
                left = t.when - time.monotonic()
                if left <= 0:
                    heapq.heappop(self.heap)
                    t.pending = False
                    self.npending -= 1
                    t.seq += 1
                    self.vnow = max(self.vnow, key)
                    if t.period > 0:
                        self._pushv(t, time.monotonic() + t.period, key + t.period)
                    break
            if sched.stopping:
                return True
            if sched.netpoll.backend.fds:
                # Real I/O may ready Gs meanwhile (not replayable anyway): do not sit on them.
                if sched.runq.q:
                    return True
                left = min(left, IO_SLICE)
            sched.done.wait(min(left, MAX_POLL_WAIT))
        t.f(t.arg)
        self.nfired += 1
        return True


class Chaos:
    """Chaos: the seeded decisions of one chaos run (see the module docstring)."""

    def __init__(self, seed: int, procs: int) -> None:
        self.seed = seed
        self.replay = procs == 1
        self.lock = _lock.new("chaos.lock")
        self.rng = random.Random(seed)
        self.sysmon_rng = random.Random(seed ^ 0x5EED_0001)
        self.poll_rng = random.Random(seed ^ 0x5EED_0002)
        self.tick = 0
        self.delayed: list[tuple[int, G]] = []
        # The switch record: how many G switches and a digest of the sequence of G ids run.
        self.nswitch = 0
        self.digest = 0
        self.switches: list[int] | None = None
        self.timers: ReplayTimerHeap | None = None
        # What chaos did (statistics; written under lock or by the owning thread).
        self.nyield = 0
        self.ndelay = 0
        self.ndemote = 0
        self.nrotate = 0
        self.nglobal = 0
        self.nskip = 0
        self.nsysmon = 0
        self.nspurious = 0

    def install(self, sched: Sched) -> None:
        """install attaches self to sched before any thread of it starts."""
        global last
        if sched.timers.pending():
            raise Throw("chaos.install: the scheduler already has timers")
        if self.replay and sched.timers.virtual is None:
            # (Under a VirtualClock timers are deterministic already: they fire at quiescence.)
            self.timers = ReplayTimerHeap(sched)
            sched.timers = self.timers
        sched.chaos = self
        last = self
        park.anypreempt = True  # chaos sets G preempt flags from the Ms (park.py's note)

    def now(self) -> float:
        """now is time.monotonic() for computing timer deadlines; in replay mode it remembers the
        reading, so ReplayTimerHeap can tell the exact duration a deadline was computed from (the
        G that reads it parks before any other G runs on the one P)."""
        t = time.monotonic()
        timers = self.timers
        if timers is not None:
            timers.lastnow = t
        return t

    def record(self, on: bool = True) -> None:
        """record keeps the full list of switched-to G ids in self.switches (tests, replays)."""
        with self.lock:
            self.switches = [] if on else None

    def stats(self) -> dict[str, int]:
        return {
            "seed": self.seed,
            "switches": self.nswitch,
            "digest": self.digest,
            "yields": self.nyield,
            "delayed_wakeups": self.ndelay,
            "runnext_demoted": self.ndemote,
            "runq_rotated": self.nrotate,
            "global_first": self.nglobal,
            "victims_skipped": self.nskip,
            "sysmon_flags": self.nsysmon,
            "spurious_wakeups": self.nspurious,
        }

    # --- hooks on Ms ---

    def on_execute(self, gp: G) -> None:
        """on_execute (sched.execute, gp about to run): record the switch; maybe ask for a yield."""
        with self.lock:
            self.nswitch += 1
            self.digest = (self.digest * 1_000_003 + gp.id) & _MASK
            if self.switches is not None:
                self.switches.append(gp.id)
            y = self.rng.random() < P_YIELD
            if y:
                self.nyield += 1
        if y:
            gp.preempt = True

    def after_syscall(self, gp: G) -> None:
        """after_syscall (exitsyscall, gp got its P back): maybe yield before the result."""
        with self.lock:
            y = self.rng.random() < P_SYSCALL_YIELD
            if y:
                self.nyield += 1
        if y:
            gp.preempt = True

    def runqput(self, p: P, next: bool) -> bool:
        """runqput (runq.runqput, p's owner): maybe demote runnext, maybe rotate p's ring.
        Returns the `next` to use."""
        with self.lock:
            rng = self.rng
            if next and rng.random() < P_DEMOTE:
                next = False
                self.ndemote += 1
            rot = rng.random() < P_ROTATE
            k = rng.randrange(1 << 16) if rot else 0
            if rot:
                self.nrotate += 1
        if rot:
            with p.lock:
                if p.runq:
                    p.runq.rotate(k % len(p.runq))
        return next

    def delay_ready(self, gp: G, m: M | None) -> bool:
        """delay_ready (goready, gp RUNNABLE): maybe hold gp back for a few schedules; True if held.

        Only a readier on an M with a P may hold a G back: that M will pass through find_runnable,
        which releases every held G before the M idles, so no M can sleep (or checkdead conclude
        a deadlock) while a G is held.
        """
        if m is None or m.p is None:
            return False
        with self.lock:
            if self.rng.random() >= P_DELAY:
                return False
            self.delayed.append((self.tick + 1 + self.rng.randrange(MAX_DELAY), gp))
            self.ndelay += 1
        return True

    def find_runnable(self, sched: Sched, p: P) -> G | None:
        """find_runnable (top of sched.find_runnable): release held Gs that are due; maybe return
        a G taken from the global queue's head, ahead of the local queue."""
        due: list[G] | None = None
        timers = self.timers
        if timers is not None and timers.npending:
            timers.fire_due(sched, self.tick * VIRTUAL_TICK)
        with self.lock:
            self.tick += 1
            if self.delayed:
                tick = self.tick
                due = [g for t, g in self.delayed if t <= tick]
                if due:
                    self.delayed = [(t, g) for t, g in self.delayed if t > tick]
            pick = -1.0
            if sched.runq.q and self.rng.random() < P_GLOBAL:  # racy hint; decided under sched.lock
                pick = self.rng.random()
        if due:
            injectglist(sched, due)
        if pick < 0:
            return None
        with sched.lock:
            gp = sched.runq.take_at(pick, GLOBAL_PICK)
            if gp is None:
                return None
        p.nglobal += 1
        with self.lock:
            self.nglobal += 1
        return gp

    def before_idle(self, sched: Sched) -> bool:
        """before_idle (find_runnable, nothing found): release every held G and, in replay mode,
        fire the next timers; True if that may have made work (look again)."""
        with self.lock:
            due = [g for _, g in self.delayed]
            self.delayed.clear()
        if due:
            injectglist(sched, due)
            return True
        if self.replay and not sched.stopping:
            timers = sched.timers
            if isinstance(timers, ReplayTimerHeap):
                return timers.fire_next(sched)
        return False

    def skip_victim(self) -> bool:
        """skip_victim (steal_work): pass this victim by."""
        with self.lock:
            s = self.rng.random() < P_SKIP_VICTIM
            if s:
                self.nskip += 1
        return s

    # --- hooks on sysmon and the poller (one thread each) ---

    def sysmon(self, sched: Sched) -> bool:
        """sysmon (sysmon.retake): True to skip retake (replay mode); else maybe flag running Gs."""
        if self.replay:
            return True
        rng = self.sysmon_rng
        for p in sched.allp:
            m = p.m
            gp = m.curg if m is not None else None
            if gp is not None and rng.random() < P_SYSMON:
                gp.preempt = True
                self.nsysmon += 1
        return False

    def poll_timeout(self, timeout: float | None) -> float | None:
        """poll_timeout (netpoll loop): maybe shorten the poller's wait (a spurious early wake-up)."""
        if self.replay:
            return timeout
        rng = self.poll_rng
        if rng.random() >= P_SPURIOUS:
            return timeout
        self.nspurious += 1
        if timeout is None:
            return rng.random() * SPURIOUS_MAX
        return timeout * rng.random()


def parse_seed(value: object, what: str) -> int:
    """parse_seed checks a chaos seed: an int from run(chaos=...), or $MN_CHAOS's text."""
    if isinstance(value, str) and what == "MN_CHAOS":
        try:
            value = int(value.strip(), 0)
        except ValueError:
            raise ValueError(f"{what} must be an integer seed, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int seed, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{what} must be a non-negative seed, got {value}")
    return value
