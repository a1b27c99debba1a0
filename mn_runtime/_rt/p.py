"""p: the logical processor (P). An M must hold a P to run Gs (Go's runtime2.go, type p).

PStatus, one paragraph each:

IDLE     on the scheduler's idle list (sched.pidle), held by no M; its run queue is empty.
RUNNING  held by an M that is running Gs or looking for them.
SYSCALL  its M entered a blocking call; the M does not own it any more but may take it back in
         exitsyscall if nobody did first. sysmon may retake it (SYSCALL -> IDLE) and hand it off.

Invariants: `status`, `runq` and `runnext` change only under `lock`; only the owning M puts Gs on
`runq`/`runnext` (others only take, by stealing), so the owner may read emptiness without the lock.
Counters (`schedtick`, `ngrun`, `nsteal`, `nglobal`) are written by the owning M only, `nstolen` by
thieves under this P's `lock`, and `sysmontick` and `preempt` by sysmon (the owner clears `preempt`);
others read them racily, as hints or for stats().
"""

from __future__ import annotations

import enum
from collections import deque
from typing import TYPE_CHECKING

from . import lock as _lock
from .snapshot import PStats

if TYPE_CHECKING:
    from .g import G
    from .m import M

__all__ = ["P", "PStatus"]


class PStatus(enum.IntEnum):
    IDLE = 0
    RUNNING = 1
    SYSCALL = 2


class P:
    __slots__ = (
        "goidcache",
        "goidcacheend",
        "id",
        "lock",
        "m",
        "nglobal",
        "ngrun",
        "nsteal",
        "nstolen",
        "preempt",
        "runnext",
        "runq",
        "runqcap",
        "schedtick",
        "status",
        "syscalltick",
        "sysmontick",
    )

    def __init__(self, pid: int, runqcap: int) -> None:
        self.id = pid
        self.status = PStatus.IDLE
        self.lock = _lock.new("p.lock", f"p{pid}.lock")
        self.runq: deque[G] = deque()
        self.runqcap = runqcap
        # runnext: a G readied by the running G runs next and inherits its time slice.
        self.runnext: G | None = None
        self.m: M | None = None
        # schedtick counts schedules (not runnext hand-offs); syscalltick counts syscalls. sysmon
        # compares them between ticks to tell a long-running G or a long syscall.
        self.schedtick = 0
        self.syscalltick = 0
        self.sysmontick: tuple[int, float, int, float] = (0, 0.0, 0, 0.0)
        self.ngrun = 0
        self.nsteal = 0
        self.nstolen = 0
        # G ids this P may hand out without the id lock: goidcache up to goidcacheend (exclusive),
        # written by the owner M only (Go's pp.goidcache; allgs.GTable.newid).
        self.goidcache = 0
        self.goidcacheend = 0
        self.nglobal = 0
        # preempt: sysmon found the current slice over its time (set with the G's flag); the
        # owner's next schedule starts a new slice and polls the global queue first.
        self.preempt = False

    def runqsize(self) -> int:
        return len(self.runq) + (self.runnext is not None)

    def stats(self) -> PStats:
        """stats: this P's snapshot (PStats), from any thread. Read without the lock, as the
        invariants above allow for readers other than the owner: each field exact, from slightly
        different instants."""
        return PStats(
            id=self.id,
            status=self.status.name.lower(),
            runq=len(self.runq),
            runnext=self.runnext is not None,
            gs_run=self.ngrun,
            steals=self.nsteal,
            stolen_from=self.nstolen,
            global_takes=self.nglobal,
            schedtick=self.schedtick,
            syscalltick=self.syscalltick,
        )

    def __repr__(self) -> str:
        return f"<P {self.id} {self.status.name} runq={len(self.runq)} runnext={self.runnext is not None}>"
