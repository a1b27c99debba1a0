"""debug: looking at the scheduler from inside a program: stats(), schedtrace lines, goroutine dumps."""

from __future__ import annotations

import time
from typing import Any

from ._rt import sched as _sched
from ._rt.sched import Sched
from ._rt.stack import format_goroutine

__all__ = ["dump_goroutines", "schedtrace_line", "stats"]


def _cur() -> Sched:
    s = _sched.cur
    if s is None:
        raise RuntimeError("no mn_runtime is running: call this inside mn_runtime.run(main)")
    return s


def stats() -> dict[str, Any]:
    """stats returns a snapshot of scheduler counters (read without stopping the world, so fields
    are each exact but may be from slightly different instants)."""
    s = _cur()
    with s.lock:
        ms = list(s.allm)
        npidle = s.npidle
        nmidle = s.nmidle
        nmspinning = s.nmspinning
        globalq = len(s.runq)
    allp = s.allp
    np = s.netpoll
    return {
        "goroutines": len(s.allgs),
        "goroutines_created": s.ngcreated,
        "procs": s.procs,
        "idle_procs": npidle,
        "threads": len(ms),
        "idle_threads": nmidle,
        "spinning_threads": nmspinning,
        "threads_in_syscall": sum(1 for m in ms if m.insyscall),
        "global_runq": globalq,
        "runq": [len(p.runq) + (p.runnext is not None) for p in allp],
        "gs_run": sum(p.ngrun for p in allp),
        "steals": sum(p.nsteal for p in allp),
        "global_takes": sum(p.nglobal for p in allp),
        "syscalls": s.nsyscall,
        "handoffs": s.nhandoff,
        "preempt_requests": s.npreempt,
        "spinning_starts": s.nspinstart,
        "timers_fired": s.timers.nfired,
        "timers_pending": s.timers.pending(),
        "netpoll_wakeups": np.nwakeups,
        "netpoll_batches": np.nbatches,
        "netpoll_injected": np.ninjected,
        "netpoll_nonblocking": np.nnonblock,
        "per_p": [
            {
                "id": p.id,
                "status": p.status.name.lower(),
                "runq": len(p.runq),
                "runnext": p.runnext is not None,
                "gs_run": p.ngrun,
                "steals": p.nsteal,
                "stolen_from": p.nstolen,
                "global_takes": p.nglobal,
                "schedtick": p.schedtick,
                "syscalltick": p.syscalltick,
            }
            for p in allp
        ],
        "per_m": [{"id": m.id, "gs_run": m.ngrun, "in_syscall": m.insyscall, "p": m.p.id if m.p else None} for m in ms],
    }


_start = time.monotonic()


def schedtrace_line(s: Sched) -> str:
    """schedtrace_line is Go's GODEBUG=schedtrace line for s."""
    with s.lock:
        threads = len(s.allm)
        idle = s.npidle
        spinning = s.nmspinning
        idlethreads = s.nmidle
        globalq = len(s.runq)
    ms = int((time.monotonic() - _start) * 1000)
    runqs = " ".join(str(len(p.runq) + (p.runnext is not None)) for p in s.allp)
    return (
        f"SCHED {ms}ms: gomaxprocs={s.procs} idleprocs={idle} threads={threads}"
        f" spinningthreads={spinning} idlethreads={idlethreads} runqueue={globalq} [{runqs}]"
    )


def dump_goroutines() -> str:
    """dump_goroutines lists every goroutine: id, status or wait reason, how long, and its stack."""
    s = _cur()
    with s.allglock:
        gs = sorted(s.allgs.values(), key=lambda g: g.id)
    now = time.monotonic()
    return "\n\n".join(format_goroutine(g, now) for g in gs)
