"""debug: looking at the scheduler from inside a program: stats(), schedtrace lines, goroutine dumps.

MN_DEBUG (Go's GODEBUG for this runtime) is a comma-separated list of name=value settings read
when run() starts:

    schedtrace=MS   print a SCHED line to stderr every MS milliseconds
    scheddetail=1   with schedtrace: also one line per P, M and G
    metrics=1       measure scheduling latency and per-M busy time (reported by stats())
    sigdump=0       do not install the SIGQUIT/SIGUSR1 goroutine dump (on whenever MN_DEBUG is set)
    lockcheck=1     check the runtime's locks: holders, rank order, "X held" preconditions
                    (mn_runtime/_rt/lock.py); slower, for tests and bug hunts

While run() runs on the main thread, SIGQUIT (Ctrl-\\) prints every goroutine to stderr and exits
with status 2, as Go does; with MN_DEBUG set, SIGQUIT and SIGUSR1 print the dump and the program
goes on; sigdump=0 leaves both signals alone. A SIGQUIT handler the program installed itself is
kept.

MN_TRACE=FILE records an execution trace to FILE (see mn_runtime.trace).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ._rt import gil as _gil
from ._rt import tls as _tls
from ._rt.sched import Sched
from ._rt.snapshot import LatencyStats, MStats, NetpollStats, PStats, SchedStats, Snapshot
from ._rt.stack import format_goroutine
from ._rt.tracer import StatsTracer

__all__ = [
    "DebugSettings",
    "LatencyStats",
    "MStats",
    "NetpollStats",
    "PStats",
    "SchedStats",
    "Snapshot",
    "Stats",
    "dump_goroutines",
    "enable_metrics",
    "parse_mn_debug",
    "schedtrace_line",
    "stats",
]

_KNOWN = ("schedtrace", "scheddetail", "metrics", "sigdump", "lockcheck", "fulltb", "awaitcheck")


@dataclass
class DebugSettings:
    """DebugSettings: the parsed MN_DEBUG."""

    schedtrace: int = 0
    scheddetail: bool = False
    metrics: bool = False
    sigdump: bool = False
    lockcheck: bool = False
    # fulltb: keep mn_runtime's frames in a goroutine's traceback as run() raises it (_rt/tbfold.py).
    fulltb: bool = False
    # awaitcheck: report a forgotten await of ch.send(), mn.sleep() and co (_rt/awaitcheck.py);
    # also on under python -X dev.
    awaitcheck: bool = False
    raw: dict[str, int] = field(default_factory=dict)


def parse_mn_debug(text: str | None) -> DebugSettings:
    """parse_mn_debug reads "name=value,..." (MN_DEBUG); raises ValueError naming a bad setting."""
    out = DebugSettings()
    if not text or not text.strip():
        return out
    out.sigdump = True
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, eq, value = item.partition("=")
        name = name.strip()
        if name not in _KNOWN:
            raise ValueError(f"MN_DEBUG: unknown setting {name!r} (known: {', '.join(_KNOWN)})")
        if not eq:
            raise ValueError(f"MN_DEBUG: setting {name!r} needs a value, as in {name}=1")
        try:
            n = int(value)
        except ValueError:
            raise ValueError(f"MN_DEBUG: {name} must be a non-negative integer, got {value.strip()!r}") from None
        if n < 0:
            raise ValueError(f"MN_DEBUG: {name} must be a non-negative integer, got {n}")
        out.raw[name] = n
        if name == "schedtrace":
            out.schedtrace = n
        else:
            setattr(out, name, n != 0)
    return out


def _cur() -> Sched:
    s = _tls.cur
    if s is None:
        raise RuntimeError("no mn_runtime is running: call this inside mn_runtime.run(main)")
    return s


def _thread_cpu(ms: list[Any]) -> dict[int, float]:
    """_thread_cpu: CPU seconds (user+system) of each M's thread, keyed by M id, via psutil."""
    try:
        import psutil

        cpu = {t.id: t.user_time + t.system_time for t in psutil.Process().threads()}
    except Exception:  # psutil cannot read threads on this platform: report nothing
        return {}
    out = {}
    for m in ms:
        th = m.thread
        nid = getattr(th, "native_id", None) if th is not None else None
        if nid in cpu:
            out[m.id] = cpu[nid]
    return out


@dataclass(frozen=True, eq=False)
class Stats(Snapshot):
    """Stats: what `mn.stats()` returns, a snapshot of the scheduler's state and counters.

    Read as attributes (`s.goroutines`, `s.per_p[0].runq`) or as a mapping (`s["goroutines"]`);
    `s.to_dict()` gives plain dicts. Counters count since run() began. Each field is exact but
    they are read without stopping the world, so they may be from slightly different instants.
    """

    goroutines: int  #: goroutines that exist now (not finished)
    goroutines_created: int
    procs: int  #: Ps (GOMAXPROCS)
    gil_enabled: bool  #: False on a free-threaded build with the GIL off (Gs run in parallel)
    idle_procs: int
    threads: int  #: Ms (OS threads) made so far
    idle_threads: int
    spinning_threads: int  #: Ms looking for work to steal
    threads_in_syscall: int
    global_runq: int  #: Gs on the global run queue
    runq: list[int]  #: per P: Gs on its ring plus its runnext
    gs_run: int  #: schedules over all Ps
    steals: int
    global_takes: int
    syscalls: int
    handoffs: int  #: Ps handed to another M (a syscall ran long)
    stuck_handoffs: int  #: times sysmon moved a P's queued Gs to the global queue, its G stuck past its slice
    preempt_requests: int  #: Gs asked to yield after running over their slice
    spinning_starts: int
    timers_fired: int
    timers_fired_by_ms: int  #: of timers_fired, those fired by Ms looking for work
    timers_pending: int
    netpoll_wakeups: int  #: times the poller thread woke with fd events
    netpoll_batches: int
    netpoll_injected: int  #: Gs the poller thread readied
    netpoll_nonblocking: int  #: non-blocking polls by running Ms that found events
    netpoll_fd_events: int  #: fd events handed to pollDescs, by whoever polled
    #: netpoll_batch_sizes[i] counts injected batches of 2**i .. 2**(i+1)-1 Gs (the last: 128 and more)
    netpoll_batch_sizes: list[int]
    #: scheduling latency, measured only while metrics (MN_DEBUG=metrics=1) or a trace are on
    latency: LatencyStats | None
    per_p: list[PStats]
    per_m: list[MStats]


def stats() -> Stats:
    """stats returns a snapshot of scheduler counters (a `Stats`; read without stopping the world,
    so fields are each exact but may be from slightly different instants).

    `latency` (runnable -> running, µs: count, mean, p50, p90, p99, max, buckets) and each M's
    `busy_s` (wall time stepping Gs) are measured only while metrics are on (MN_DEBUG=metrics=1)
    or a trace is recorded; otherwise they are None. Each M's `cpu_s` (its thread's CPU time)
    is always there where psutil can read it.

    It composes the snapshots each structure makes of itself (the scheduler's, each P's, the
    poller's; see _rt/snapshot.py); only the sums over Ms, the timers' two counters and the
    goroutine count are read here.
    """
    s = _cur()
    sc, ms = s.stats()
    ps = [p.stats() for p in s.allp]
    npl = s.netpoll.stats()
    tr = s.tracer
    metrics = isinstance(tr, StatsTracer)
    cpu = _thread_cpu(ms)
    return Stats(
        goroutines=len(s.allgs),
        goroutines_created=s.allgs.created(s.allp),
        procs=s.procs,
        gil_enabled=_gil.gil_enabled(),
        idle_procs=sc.idle_procs,
        threads=sc.threads,
        idle_threads=sc.idle_threads,
        spinning_threads=sc.spinning_threads,
        threads_in_syscall=sum(1 for m in ms if m.insyscall),
        global_runq=sc.global_runq,
        runq=[p.runq + p.runnext for p in ps],
        gs_run=sum(p.gs_run for p in ps),
        steals=sum(p.steals for p in ps),
        global_takes=sum(p.global_takes for p in ps),
        syscalls=sum(m.nsyscall for m in ms),
        handoffs=sc.handoffs,
        stuck_handoffs=sc.stuck_handoffs,
        preempt_requests=sc.preempt_requests,
        spinning_starts=sc.spinning_starts,
        timers_fired=s.timers.nfired,
        timers_fired_by_ms=sum(m.ntimer for m in ms),
        timers_pending=s.timers.pending(),
        netpoll_wakeups=npl.wakeups,
        netpoll_batches=npl.batches,
        netpoll_injected=npl.injected,
        netpoll_nonblocking=sum(m.nnetpoll for m in ms),
        netpoll_fd_events=npl.fd_events,
        netpoll_batch_sizes=npl.batch_sizes,
        latency=LatencyStats(**tr.latency().summary()) if metrics else None,
        per_p=ps,
        per_m=[
            MStats(
                id=m.id,
                gs_run=m.ngrun,
                in_syscall=m.insyscall,
                p=m.p.id if m.p else None,
                busy_s=m.busy if metrics else None,
                cpu_s=cpu.get(m.id),
            )
            for m in ms
        ],
    )


def enable_metrics() -> None:
    """enable_metrics starts measuring scheduling latency and per-M busy time for the rest of the
    run (as MN_DEBUG=metrics=1 does from the start); a no-op while a trace or metrics are on."""
    from .trace import _startlock  # the lock every tracer install takes

    s = _cur()
    with _startlock:
        if s.tracer is None:
            s.tracer = StatsTracer()


# When the running runtime started (schedtrace's clock); one run() at a time per process.
_start = time.monotonic()


def schedtrace_line(s: Sched, detail: bool = False) -> str:
    """schedtrace_line is Go's GODEBUG=schedtrace output for s; with detail, scheddetail's lines."""
    with s.lock:
        threads = len(s.allm)
        idle = s.npidle
        spinning = s.nmspinning
        idlethreads = s.nmidle
        globalq = len(s.runq)
        ms = list(s.allm)
    elapsed = int((time.monotonic() - _start) * 1000)
    head = (
        f"SCHED {elapsed}ms: gomaxprocs={s.procs} idleprocs={idle} threads={threads}"
        f" spinningthreads={spinning} idlethreads={idlethreads} runqueue={globalq}"
        f" gil={'on' if _gil.gil_enabled() else 'off'}"
    )
    if not detail:
        return head + " [" + " ".join(str(p.runqsize()) for p in s.allp) + "]"
    lines = [head]
    for p in s.allp:
        m = p.m
        lines.append(
            f"  P{p.id}: status={int(p.status)} schedtick={p.schedtick} syscalltick={p.syscalltick}"
            f" m={m.id if m is not None else -1} runqsize={p.runqsize()} gs_run={p.ngrun} steals={p.nsteal}"
        )
    for m in ms:
        p = m.p
        g = m.curg
        lines.append(
            f"  M{m.id}: p={p.id if p is not None else -1} curg={g.id if g is not None else -1}"
            f" spinning={str(m.spinning).lower()} blocked={str(m.insyscall).lower()}"
        )
    gs = s.allgs.snapshot()
    for g in gs:
        gm = g.m
        lines.append(
            f"  G{g.id}: status={int(g.status)}({g.waitreason.value}) m={gm.id if gm is not None else -1} {g.name}"
        )
    return "\n".join(lines)


def dump_goroutines() -> str:
    """dump_goroutines lists every goroutine: id, status or wait reason and for how long, its
    suspended stack (file:line of each awaiting frame) and where it was created."""
    s = _cur()
    gs = s.allgs.snapshot()
    now = time.monotonic()
    from ._rt.park import current_g

    me = current_g()
    return "\n\n".join(format_goroutine(g, now, me) for g in gs)


# --- wiring into run() ---


@dataclass
class _Active:
    """_Active: what debug_start installed, for debug_stop to take down."""

    recorder: Any = None
    signals: dict[int, Any] = field(default_factory=dict)


def _print_err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _allgs_from_handler(s: Sched) -> list[Any]:
    """_allgs_from_handler lists the Gs for a signal handler's dump, sorted by id. The handler runs
    on the main thread between two bytecodes, possibly while that thread holds a shard lock of the
    G table (run() queueing main, or tearing down): it copies the table without the locks."""
    return s.allgs.snapshot(locked=False)


def _on_signal(signum: int, frame: Any) -> None:
    s = _tls.cur
    if s is None:
        return
    gs = _allgs_from_handler(s)
    now = time.monotonic()
    name = signal.Signals(signum).name
    body = "\n\n".join(format_goroutine(g, now) for g in gs)
    _print_err(f"{name}: goroutine dump\n\n{body}\n")


def _on_quit(signum: int, frame: Any) -> None:
    """_on_quit: SIGQUIT without MN_DEBUG, Go's default: print every goroutine, exit with status 2.
    os._exit, because a goroutine stuck in a loop would keep run()'s shutdown from ever returning."""
    s = _tls.cur
    body = ""
    if s is not None:
        gs = _allgs_from_handler(s)
        now = time.monotonic()
        body = "\n\n".join(format_goroutine(g, now) for g in gs)
    try:
        sys.stdout.flush()
    except Exception:  # a closed or broken stdout must not stop the dump
        pass
    _print_err(f"SIGQUIT: quit\n\n{body}\n")
    os._exit(2)


def debug_start(sched: Sched, schedtrace: float | None, trace: Any) -> _Active:
    """debug_start (run(), before any M starts) applies MN_DEBUG, MN_TRACE, schedtrace= and trace=.

    Arguments win over the environment. Raises ValueError/OSError for bad settings or an
    unwritable trace file, before anything runs.
    """
    global _start
    settings = parse_mn_debug(os.environ.get("MN_DEBUG"))
    if schedtrace is None and settings.schedtrace:
        schedtrace = settings.schedtrace
    if schedtrace is not None:
        if isinstance(schedtrace, bool) or not isinstance(schedtrace, (int, float)) or not schedtrace >= 0:
            raise ValueError(f"schedtrace must be a non-negative number of milliseconds, got {schedtrace!r}")
    if trace is None:
        trace = os.environ.get("MN_TRACE") or None
    active = _Active()
    _start = time.monotonic()
    if schedtrace:
        detail = settings.scheddetail
        sched.sysmon.schedtrace = schedtrace / 1000.0
        sched.sysmon.schedtrace_fn = lambda: _print_err(schedtrace_line(sched, detail))
    if trace is not None:
        from .trace import start_on

        active.recorder = start_on(sched, trace)
    elif settings.metrics:
        sched.tracer = StatsTracer()
    if threading.current_thread() is threading.main_thread():
        if settings.sigdump:
            for sig in (signal.SIGQUIT, signal.SIGUSR1):
                active.signals[sig] = signal.signal(sig, _on_signal)
        elif settings.raw.get("sigdump", 1) and signal.getsignal(signal.SIGQUIT) == signal.SIG_DFL:
            active.signals[signal.SIGQUIT] = signal.signal(signal.SIGQUIT, _on_quit)
    return active


def debug_stop(sched: Sched, active: _Active) -> None:
    """debug_stop (run(), after every M is joined) writes a trace still being recorded and puts
    back the signal handlers."""
    for sig, old in active.signals.items():
        signal.signal(sig, old)
    from .trace import Recorder

    if isinstance(sched.tracer, Recorder):
        from .trace import stop_on

        stop_on(sched)
