"""_rt: the runtime's internals. Go's names for Go's mechanisms; see sched.py for the essay.

The modules stand on floors, bottom up. A module imports only from its own floor or below (and
from mn_runtime.errors, under every floor), so the package has no import cycle and each floor can
be read, and tested, knowing only those beneath it. tests/test_floors.py holds the rule, and also
asks every import made inside a function to say why in a comment above it.

  leaves     tls (the current runtime, per-thread state), lock (ranks, checks), traps (the one
             yield to the scheduler), corofn, gil, tbfold, snapshot, interrupt, awaitcheck
  objects    g (G and its status machine), m, p, allgs (the G table), timers (the timer heap),
             tracer, stack (goroutine dumps)
  queues     runq (a P's ring and runnext), globrunq (the global run queue)
  idle       idle (idle Ps and Ms, wakep, startm/stopm, handoffp, injectglist, checkdead)
  park       park (gopark/goready), waitq (sudogs, FIFO wait queues), sema (the parking lot)
  services   netpoll (modes, backend contract, poller thread), polldesc, netpoll_epoll, fd,
             syscall, sysmon, chaos, findrunnable
  scheduler  sched (Sched: the essay, newproc, goexit, execute, schedule)

The public modules (chan, select, sync, net, time, ...) stand above all of these.
"""

from __future__ import annotations

FLOORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("leaves", ("tls", "lock", "traps", "corofn", "gil", "tbfold", "snapshot", "interrupt", "awaitcheck")),
    ("objects", ("g", "m", "p", "allgs", "timers", "tracer", "stack")),
    ("queues", ("runq", "globrunq")),
    ("idle", ("idle",)),
    ("park", ("park", "waitq", "sema")),
    ("services", ("netpoll", "polldesc", "netpoll_epoll", "fd", "syscall", "sysmon", "chaos", "findrunnable")),
    ("scheduler", ("sched",)),
)
