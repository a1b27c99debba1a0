"""snapshot: the one shape of every statistics snapshot the runtime hands out, and the snapshots
of the runtime's own structures.

Each structure reports its own counters, read where they are kept: `P.stats()` (PStats),
`Netpoller.stats()` (NetpollStats), the scheduler's counters (SchedStats), `Chan.stats()`, and
the sync primitives' `stats()`. `mn.stats()` (mn_runtime.debug) composes the runtime's into one
`Stats`. Each is a frozen dataclass built on `Snapshot`: typed fields read as attributes
(`s.goroutines`, `s.per_p[0].runq`), and the same values read as a read-only mapping
(`s["goroutines"]`, `dict(s)`, `for key in s`), which is what these calls returned before they
were typed. `to_dict()` gives plain dicts and lists all the way down (for JSON).

This module is a leaf: it imports nothing from the runtime, so any floor of `_rt` can build its
snapshot here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["LatencyStats", "MStats", "NetpollStats", "PStats", "SchedStats", "Snapshot"]


class Snapshot(Mapping[str, Any]):
    """Snapshot: a frozen dataclass whose fields also read as a mapping (a subclass is decorated
    with @dataclasses.dataclass(frozen=True, eq=False); equality is the mapping's, so a snapshot
    equals a dict with the same items)."""

    __slots__ = ()
    _names: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _fieldnames(cls) -> tuple[str, ...]:
        names = cls.__dict__.get("_names")
        if not names:
            names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
            cls._names = names
        return names

    def __getitem__(self, key: str) -> Any:
        if key in self._fieldnames():
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._fieldnames())

    def __len__(self) -> int:
        return len(self._fieldnames())

    def to_dict(self) -> dict[str, Any]:
        """to_dict: the snapshot as plain dicts and lists (nested snapshots too)."""
        return {k: _plain(getattr(self, k)) for k in self._fieldnames()}


def _plain(v: Any) -> Any:
    if isinstance(v, Snapshot):
        return v.to_dict()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


@dataclass(frozen=True, eq=False)
class LatencyStats(Snapshot):
    """Scheduling latency (runnable -> running) in microseconds, over every schedule since
    metrics or a trace started."""

    count: int  #: schedules measured
    mean_us: float
    p50_us: float
    p90_us: float
    p99_us: float
    max_us: float
    #: (upper bound in µs, count) for each non-empty bucket of the histogram
    buckets_us: list[tuple[float, int]]


@dataclass(frozen=True, eq=False)
class PStats(Snapshot):
    """One P (logical processor): its run queue now and its counters since run() began
    (`P.stats()`)."""

    id: int
    status: str  #: "idle", "running" or "syscall"
    runq: int  #: Gs on its local ring
    runnext: bool  #: a G waits in its runnext slot
    gs_run: int  #: Gs it has run (schedules, hand-offs included)
    steals: int  #: steals it made from other Ps
    stolen_from: int  #: Gs other Ps took from it
    global_takes: int  #: Gs it took from the global queue
    schedtick: int
    syscalltick: int


@dataclass(frozen=True, eq=False)
class MStats(Snapshot):
    """One M (OS thread)."""

    id: int
    gs_run: int  #: Gs it has run
    in_syscall: bool  #: inside a blocking mn.syscall() now
    p: int | None  #: the id of the P it holds, or None
    busy_s: float | None  #: wall time stepping Gs (None unless metrics or a trace are on)
    cpu_s: float | None  #: its thread's CPU time (None where psutil cannot read it)


@dataclass(frozen=True, eq=False)
class NetpollStats(Snapshot):
    """The poller (`Netpoller.stats()`): its thread's rounds and the fd events of every poll."""

    wakeups: int  #: times the poller thread woke from its wait
    batches: int  #: batches of readied Gs it injected
    injected: int  #: Gs the poller thread readied
    fd_events: int  #: fd events handed to pollDescs, by whoever polled (the thread or an M)
    #: batch_sizes[i] counts injected batches of 2**i .. 2**(i+1)-1 Gs (the last: 128 and more)
    batch_sizes: list[int]


@dataclass(frozen=True, eq=False)
class SchedStats(Snapshot):
    """The scheduler's own state and counters, read in one hold of sched.lock (so they agree
    with each other)."""

    idle_procs: int  #: Ps on the idle list
    threads: int  #: Ms made so far
    idle_threads: int
    spinning_threads: int  #: Ms looking for work to steal
    global_runq: int  #: Gs on the global run queue
    handoffs: int  #: Ps handed to another M (a syscall ran long)
    stuck_handoffs: int  #: times sysmon moved a stuck P's queued Gs to the global queue
    preempt_requests: int  #: Gs asked to yield after running over their slice
    spinning_starts: int
