"""tracer: the event sink interface the scheduler calls when tracing is on, and the metrics tracer.

The scheduler holds `sched.tracer`, None when tracing is off, and every event site costs one
`if tracer is not None:` test. Event names follow Go's tracer (GoCreate, GoStart, GoBlock, ...).
Methods may be called from any M, the poller thread or sysmon, concurrently: an implementation
keeps its buffers per thread or takes its own lock.

Where each event comes from, and what the G's state is then:

  go_create(g, parent)          newproc, before g is queued (g becomes runnable)
  go_start(m, p, g)             execute: g is RUNNING on m with p (also after a park whose commit
                                found the wait already over)
  go_end(m, g)                  g's coroutine returned; g is DEAD
  go_sched(m, g, preempted)     g yielded (gosched or preemption); g is RUNNABLE, not yet queued
  go_park(m, g, reason)         g is WAITING; its commit has not run yet
  go_unblock(g, readier)        goready: g is RUNNABLE, not yet queued; readier is the G running
                                on the calling M, None on the poller thread or between Gs
  go_syscall(m, g)              entersyscall: g is in SYSCALL, m has let go of its P
  go_sysexit(m, g, handed_off)  exitsyscall: g goes on running on m when m.curg is g, else it
                                was put on the global queue (RUNNABLE) and m goes to sleep
  proc_start / proc_stop        acquirep / releasep
  steal(m, thief, victim, n)    m took n Gs from victim (one of them to run now)
  handoff(p, reason)            handoffp, on sysmon or an M: p's M sits in a syscall
  netpoll_inject(n, fds, tms)   the poller thread injects a batch of n readied Gs
  preempt(g, p)                 sysmon asked g, running on p, to yield

`StatsTracer` is the cheapest useful tracer: it measures scheduling latency (runnable -> running)
into a histogram and each M's busy time (wall time spent stepping Gs). It is installed when
MN_DEBUG asks for metrics, and the execution tracer (mn_runtime/trace.py) builds on it, so
`mn.stats()` reports latency whenever either is on. Costs are per thread and lock-free: each
thread writes only its own histogram; readers sum them racily (each count is exact, the sum may
mix instants, as every other counter in stats()).
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING, Any

from . import lock as _lock

if TYPE_CHECKING:
    from .g import G
    from .m import M
    from .p import P

__all__ = ["LatencyHistogram", "StatsTracer", "Tracer"]


class Tracer:
    """Tracer: no-op base; subclasses override what they record."""

    def go_create(self, g: G, parent: G | None) -> None: ...
    def go_start(self, m: M, p: P, g: G) -> None: ...
    def go_end(self, m: M, g: G) -> None: ...
    def go_sched(self, m: M, g: G, preempted: bool) -> None: ...
    def go_park(self, m: M, g: G, reason: Any) -> None: ...
    def go_unblock(self, g: G, readier: G | None) -> None: ...
    def go_syscall(self, m: M, g: G) -> None: ...
    def go_sysexit(self, m: M, g: G, handed_off: bool) -> None: ...
    def proc_start(self, m: M, p: P) -> None: ...
    def proc_stop(self, m: M, p: P) -> None: ...
    def steal(self, m: M, thief: P, victim: P, n: int) -> None: ...
    def handoff(self, p: P, reason: str) -> None: ...
    def netpoll_inject(self, n: int, fd_events: int, timers: int) -> None: ...
    def preempt(self, g: G, p: P) -> None: ...


# Histogram buckets: SUB buckets per power of two of nanoseconds, so a percentile read from the
# histogram is within 2**(1/SUB) (19%) of the true value. NBUCKETS covers up to 2**40 ns (18 min).
SUB = 4
NBUCKETS = 40 * SUB


def bucket_of(ns: float) -> int:
    """bucket_of maps a latency in ns to its histogram bucket (0 holds everything under 1 ns)."""
    if ns < 1.0:
        return 0
    return min(int(math.log2(ns) * SUB) + 1, NBUCKETS - 1)


def bucket_upper_ns(i: int) -> float:
    """bucket_upper_ns is the largest latency bucket i holds."""
    return 2.0 ** (i / SUB)


class LatencyHistogram:
    """LatencyHistogram: bucket counts plus exact count/sum/max; merged from per-thread copies."""

    __slots__ = ("counts", "max_ns", "n", "sum_ns")

    def __init__(self) -> None:
        self.counts = [0] * NBUCKETS
        self.n = 0
        self.sum_ns = 0.0
        self.max_ns = 0.0

    def add(self, ns: float) -> None:
        self.counts[bucket_of(ns)] += 1
        self.n += 1
        self.sum_ns += ns
        if ns > self.max_ns:
            self.max_ns = ns

    def merge(self, other: LatencyHistogram) -> None:
        for i, c in enumerate(other.counts):
            if c:
                self.counts[i] += c
        self.n += other.n
        self.sum_ns += other.sum_ns
        self.max_ns = max(self.max_ns, other.max_ns)

    def percentile(self, q: float) -> float:
        """percentile returns the upper bound (ns) of the bucket holding the q-quantile (0 < q <= 1)."""
        if self.n == 0:
            return 0.0
        rank = max(1, math.ceil(q * self.n))
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                return min(bucket_upper_ns(i), self.max_ns)
        return self.max_ns

    def summary(self) -> dict[str, Any]:
        """summary: count, mean/p50/p90/p99/max in microseconds, and the non-empty buckets."""
        us = 1e-3
        return {
            "count": self.n,
            "mean_us": (self.sum_ns / self.n * us) if self.n else 0.0,
            "p50_us": self.percentile(0.50) * us,
            "p90_us": self.percentile(0.90) * us,
            "p99_us": self.percentile(0.99) * us,
            "max_us": self.max_ns * us,
            "buckets_us": [(bucket_upper_ns(i) * us, c) for i, c in enumerate(self.counts) if c],
        }


class _PerThread(threading.local):
    hist: LatencyHistogram | None = None


class StatsTracer(Tracer):
    """StatsTracer measures scheduling latency and per-M busy time.

    g.runnabletime is stamped wherever a G becomes runnable, before it is queued (so the queue's
    lock publishes it to the M that takes the G). m.busy is written only by m's own thread;
    `self.mstart[m.id]` is that M's current slice start, also written only by m.
    """

    def __init__(self) -> None:
        self.clock = time.perf_counter
        self.tls = _PerThread()
        self.hlock = _lock.new("tracer.hlock")
        self.hists: list[LatencyHistogram] = []
        self.mstart: dict[int, float] = {}

    def _hist(self) -> LatencyHistogram:
        h = self.tls.hist
        if h is None:
            h = LatencyHistogram()
            with self.hlock:
                self.hists.append(h)
            self.tls.hist = h
        return h

    def latency(self) -> LatencyHistogram:
        """latency merges every thread's histogram (racy read; each count exact)."""
        total = LatencyHistogram()
        with self.hlock:
            hs = list(self.hists)
        for h in hs:
            total.merge(h)
        return total

    def _stop(self, m: M, now: float) -> None:
        t0 = self.mstart.pop(m.id, None)
        if t0 is not None:
            m.busy += now - t0

    def go_create(self, g: G, parent: G | None) -> None:
        g.runnabletime = self.clock()

    def go_start(self, m: M, p: P, g: G) -> None:
        now = self.clock()
        t = g.runnabletime
        if t:
            # A G resumed after a failed park commit never left the M: no latency to count.
            g.runnabletime = 0.0
            self._hist().add((now - t) * 1e9)
        self.mstart[m.id] = now

    def go_end(self, m: M, g: G) -> None:
        self._stop(m, self.clock())

    def go_sched(self, m: M, g: G, preempted: bool) -> None:
        now = self.clock()
        self._stop(m, now)
        g.runnabletime = now

    def go_park(self, m: M, g: G, reason: Any) -> None:
        self._stop(m, self.clock())

    def go_unblock(self, g: G, readier: G | None) -> None:
        g.runnabletime = self.clock()

    def go_syscall(self, m: M, g: G) -> None:
        self._stop(m, self.clock())

    def go_sysexit(self, m: M, g: G, handed_off: bool) -> None:
        now = self.clock()
        if m.curg is g:
            self.mstart[m.id] = now  # g goes on running here
        else:
            g.runnabletime = now
