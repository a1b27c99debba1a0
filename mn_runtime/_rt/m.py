"""m: the machine (M), an OS thread that runs Gs while it holds a P.

Ms are created on demand (startm) and never destroyed until run() ends; an M with nothing to do
sleeps on its own `park` lock (Go's m.park note): the lock is created held, `park.release()` is
notewakeup and `park.acquire()` is notesleep, a blocking wait that releases the GIL. Exactly one
wake-up per sleep: only whoever removes the M from sched.midle (under sched.lock) may release it.

Fields are owned by the M's own thread, except `nextp` and `spinning`, which the waker sets while the
M sleeps (the park lock orders those writes before the M reads them).
"""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING

from . import lock as _lock

if TYPE_CHECKING:
    from .g import G
    from .p import P


class M:
    __slots__ = (
        "busy",
        "curg",
        "id",
        "insyscall",
        "nextp",
        "ngrun",
        "nnetpoll",
        "nsyscall",
        "ntimer",
        "oldp",
        "p",
        "park",
        "rng",
        "spinning",
        "thread",
    )

    def __init__(self, mid: int, seed: int) -> None:
        self.id = mid
        self.thread: threading.Thread | None = None
        self.park = _lock.plain("m.park")
        self.park.acquire()
        self.p: P | None = None
        self.nextp: P | None = None
        self.oldp: P | None = None
        self.curg: G | None = None
        self.spinning = False
        # Seeded per M so steal victim order can be replayed (design habit 9).
        self.rng = random.Random(seed * 1_000_003 + mid)
        self.ngrun = 0
        self.busy = 0.0
        self.insyscall = False
        # Counters this M alone writes (no lock needed); stats() sums them over Ms.
        self.nsyscall = 0
        self.nnetpoll = 0  # non-blocking epoll polls that found work
        self.ntimer = 0  # timers fired in find_runnable (Go's checkTimers)

    def __repr__(self) -> str:
        return f"<M {self.id} p={self.p.id if self.p else None} curg={self.curg.id if self.curg else None}>"
