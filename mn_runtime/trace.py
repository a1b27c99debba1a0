"""trace: the execution tracer. Records what every M ran, and writes Chrome trace-event JSON.

    mn.run(main, trace="out.json")          # or MN_TRACE=out.json, or inside a program:
    mn.trace.start("out.json"); ...; mn.trace.stop()

Open the file in https://ui.perfetto.dev or chrome://tracing. What it shows:
- process "Ms": one track per M (OS thread). A slice per stretch of a G running there, named
  "G<id> <function>", with its P, why it stopped (end, yield, preempted, park: <reason>, syscall)
  and its scheduling latency (runnable -> running) in the args; "syscall" slices while the M
  sits in a blocking call; instant events for steals and parks.
- process "Ps": one track per P, the same G slices seen from the processor's side.
- process "runtime": the netpoll thread (a slice per injected batch) and sysmon (handoffs,
  preemption requests).
- flow arrows from the G (or netpoll batch) that readied a G to the readied G's next slice,
  and from a G to each G it created.

Recording appends a tuple to the calling thread's own buffer (no lock on the hot path: each
buffer has one writer). Everything else (pairing starts with ends, flows, JSON) happens at stop.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from ._rt import lock as _lock
from ._rt import tls as _tls
from ._rt.tls import tls
from ._rt.tracer import StatsTracer

if TYPE_CHECKING:
    from ._rt.g import G
    from ._rt.m import M
    from ._rt.p import P
    from ._rt.sched import Sched

__all__ = ["Recorder", "is_tracing", "start", "stop"]

# Raw event kinds (first item of each buffered tuple).
START, END, SYSCALL, SYSEXIT, FLOW, STEAL, HANDOFF, INJECT, PREEMPT, PROCSTART, PROCSTOP = range(11)

# Track ids inside the "runtime" process for threads that are not Ms.
PID_M, PID_P, PID_RT = 1, 2, 3
TID_NETPOLL, TID_SYSMON, TID_OTHER = 0, 1, 2
BEFORE_TRACE = -2.0  # a START's latency field: the slice began before the trace did


class _Buf:
    """_Buf: one thread's events; written only by that thread."""

    __slots__ = ("events", "index", "nflow", "track")

    def __init__(self, index: int, track: tuple[int, int]) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.index = index
        self.nflow = 0
        self.track = track


class _Local(threading.local):
    buf: _Buf | None = None


class Recorder(StatsTracer):
    """Recorder: the execution tracer (also a StatsTracer, so stats() has latency meanwhile)."""

    def __init__(self, path: str | os.PathLike[str], procs: int) -> None:
        super().__init__()
        self.path = os.fspath(path)
        # Open now so a bad path fails before anything runs, not after.
        self.file: IO[str] | None = open(self.path, "w", encoding="utf-8")
        self.procs = procs
        self.local = _Local()
        self.lock = _lock.new("trace.lock")
        self.bufs: list[_Buf] = []
        self.t0 = self.clock()
        self.wall0 = time.time()
        self.nevents = 0

    # --- recording (hot when tracing is on) ---

    def _buf(self) -> _Buf:
        b = self.local.buf
        if b is None:
            m = tls.m
            if m is not None:
                track = (PID_M, m.id)
            else:
                name = threading.current_thread().name
                tid = TID_NETPOLL if name == "mn-netpoll" else TID_SYSMON if name == "mn-sysmon" else TID_OTHER
                track = (PID_RT, tid)
            with self.lock:
                b = _Buf(len(self.bufs), track)
                self.bufs.append(b)
            self.local.buf = b
        return b

    def _flow(self, g: G, kind: int, readier: int) -> None:
        b = self._buf()
        b.nflow += 1
        # The flow id names its writer thread, so ids are unique without a shared counter; the low
        # bit is the kind (0 readied, 1 created), which the receiving end needs for its category.
        fid = (b.index << 33) | (b.nflow << 1) | kind
        g.traceseq = fid
        b.events.append((FLOW, self.clock(), fid, readier, g.id))

    def go_create(self, g: G, parent: G | None) -> None:
        super().go_create(g, parent)
        if parent is not None:
            self._flow(g, 1, parent.id)

    def go_start(self, m: M, p: P, g: G) -> None:
        lat = g.runnabletime
        super().go_start(m, p, g)
        now = self.mstart[m.id]
        fid = g.traceseq
        g.traceseq = 0
        self._buf().events.append((START, now, g.id, g.name, p.id, (now - lat) if lat else -1.0, fid))

    def go_end(self, m: M, g: G) -> None:
        super().go_end(m, g)
        self._buf().events.append((END, self.clock(), g.id, "end"))

    def go_sched(self, m: M, g: G, preempted: bool) -> None:
        super().go_sched(m, g, preempted)
        self._buf().events.append((END, g.runnabletime, g.id, "preempted" if preempted else "yield"))

    def go_park(self, m: M, g: G, reason: Any) -> None:
        super().go_park(m, g, reason)
        self._buf().events.append((END, self.clock(), g.id, f"park: {reason}"))

    def go_unblock(self, g: G, readier: G | None) -> None:
        super().go_unblock(g, readier)
        rid = readier.id if readier is not None else 0
        g.readiedby = rid
        self._flow(g, 0, rid)

    def go_syscall(self, m: M, g: G) -> None:
        super().go_syscall(m, g)
        self._buf().events.append((SYSCALL, self.clock(), g.id))

    def go_sysexit(self, m: M, g: G, handed_off: bool) -> None:
        super().go_sysexit(m, g, handed_off)
        now = self.clock()
        p = m.p
        cont = m.curg is g and p is not None
        self._buf().events.append((SYSEXIT, now, g.id, g.name, p.id if cont and p else -1, handed_off, cont))

    def proc_start(self, m: M, p: P) -> None:
        self._buf().events.append((PROCSTART, self.clock(), p.id))

    def proc_stop(self, m: M, p: P) -> None:
        self._buf().events.append((PROCSTOP, self.clock(), p.id))

    def steal(self, m: M, thief: P, victim: P, n: int) -> None:
        self._buf().events.append((STEAL, self.clock(), thief.id, victim.id, n))

    def handoff(self, p: P, reason: str) -> None:
        self._buf().events.append((HANDOFF, self.clock(), p.id, reason))

    def netpoll_inject(self, n: int, fd_events: int, timers: int) -> None:
        self._buf().events.append((INJECT, self.clock(), n, fd_events, timers))

    def preempt(self, g: G, p: P) -> None:
        self._buf().events.append((PREEMPT, self.clock(), g.id, p.id))

    # --- writing ---

    def write(self) -> int:
        """write converts the buffers to trace events and writes the file; returns how many events."""
        f = self.file
        if f is None:
            raise RuntimeError("trace already written")
        self.file = None
        with self.lock:
            bufs = [(b.track, list(b.events)) for b in self.bufs]
        try:
            self.nevents = write_trace(f, bufs, self.t0, self.clock(), self.procs, self.wall0)
        finally:
            f.close()
        return self.nevents


_startlock = _lock.plain("trace.startlock")


def _running() -> Sched:
    s = _tls.cur
    if s is None:
        raise RuntimeError("mn_runtime.trace needs a running runtime: call it inside mn_runtime.run(main)")
    return s


def start_on(s: Sched, path: str | os.PathLike[str]) -> Recorder:
    """start_on installs a Recorder on s (used by run() for trace= and MN_TRACE)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"trace path must be a str or os.PathLike, got {type(path).__name__}")
    with _startlock:
        if isinstance(s.tracer, Recorder):
            raise RuntimeError(f"a trace is already being recorded to {s.tracer.path!r}; stop it first")
        rec = Recorder(path, s.procs)
        s.tracer = rec
    return rec


def start(path: str | os.PathLike[str]) -> None:
    """start records an execution trace of the running runtime to path (written at stop())."""
    rec = start_on(_running(), path)
    m = tls.m
    g = m.curg if m is not None else None
    if m is not None and g is not None and m.p is not None:
        # The caller's slice began before the trace; the M found no tracer when it started the G
        # and records none of this slice's events, so the slice is opened here and closed by the
        # M's next recorded event.
        rec._buf().events.append((START, rec.t0, g.id, g.name, m.p.id, BEFORE_TRACE, 0))


def stop() -> int:
    """stop ends the trace started by start() (or by run's trace=) and writes it; returns the number
    of events written."""
    return stop_on(_running())


def stop_on(s: Sched) -> int:
    with _startlock:
        rec = s.tracer
        if not isinstance(rec, Recorder):
            raise RuntimeError("no trace is being recorded: call mn_runtime.trace.start(path) first")
        s.tracer = None
    return rec.write()


def is_tracing() -> bool:
    """is_tracing tells whether the running runtime records an execution trace."""
    s = _tls.cur
    return s is not None and isinstance(s.tracer, Recorder)


# --- conversion to Chrome trace events (runs once, at stop) ---

_FLOWCAT = ("readied", "created")


class _Writer:
    """_Writer streams trace events to a file as JSON objects, one per line, counting them."""

    def __init__(self, f: IO[str], t0: float) -> None:
        self.f = f
        self.t0 = t0
        self.n = 0
        self.chunk: list[str] = []

    def us(self, t: float) -> float:
        return round((t - self.t0) * 1e6, 3)

    def emit(self, ev: str) -> None:
        self.chunk.append(ev)
        self.n += 1
        if len(self.chunk) >= 4096:
            self.flush()

    def flush(self) -> None:
        if self.chunk:
            sep = ",\n" if self.n > len(self.chunk) else ""
            self.f.write(sep + ",\n".join(self.chunk))
            self.chunk.clear()

    def meta(self, pid: int, tid: int | None, what: str, name: str, sort: int) -> None:
        t = f',"tid":{tid}' if tid is not None else ""
        self.emit(f'{{"ph":"M","pid":{pid}{t},"name":"{what}_name","args":{{"name":{json.dumps(name)}}}}}')
        self.emit(f'{{"ph":"M","pid":{pid}{t},"name":"{what}_sort_index","args":{{"sort_index":{sort}}}}}')

    def slice(self, pid: int, tid: int, ts: float, dur: float, name: str, cat: str, args: str) -> None:
        self.emit(
            f'{{"ph":"X","pid":{pid},"tid":{tid},"ts":{ts},"dur":{max(0.0, round(dur, 3))},'
            f'"name":{name},"cat":"{cat}","args":{{{args}}}}}'
        )

    def instant(self, pid: int, tid: int, ts: float, name: str, cat: str, args: str) -> None:
        self.emit(
            f'{{"ph":"i","s":"t","pid":{pid},"tid":{tid},"ts":{ts},"name":{json.dumps(name)},'
            f'"cat":"{cat}","args":{{{args}}}}}'
        )

    def flow(self, ph: str, pid: int, tid: int, ts: float, fid: int) -> None:
        bp = ',"bp":"e"' if ph == "f" else ""
        cat = _FLOWCAT[fid & 1]
        self.emit(f'{{"ph":"{ph}","pid":{pid},"tid":{tid},"ts":{ts},"id":{fid},"name":"{cat}","cat":"{cat}"{bp}}}')


def _gname(gid: int, name: str) -> str:
    return json.dumps(f"G{gid} {name}")


def write_trace(
    f: IO[str],
    bufs: list[tuple[tuple[int, int], list[tuple[Any, ...]]]],
    t0: float,
    tend: float,
    procs: int,
    wall0: float,
) -> int:
    """write_trace turns each thread's raw events into trace events and writes the JSON object.

    Per M track the raw events are already in time order (one writer, a monotonic clock), so a
    START opens a slice and the next END/SYSCALL closes it: slices on a track never overlap.
    A flow start must lie inside a slice of its track; one recorded between slices gets a
    zero-length "ready" slice of its own.
    """
    w = _Writer(f, t0)
    f.write('{"displayTimeUnit":"ms","traceEvents":[\n')
    w.meta(PID_M, None, "process", "Ms (OS threads running Gs)", 0)
    w.meta(PID_P, None, "process", "Ps (processors)", 1)
    w.meta(PID_RT, None, "process", "runtime threads", 2)
    for i in range(procs):
        w.meta(PID_P, i, "thread", f"P{i}", i)
    # Slices per P, to clamp at the end: (start, end, gid, name, args).
    pslices: list[list[tuple[float, float, str, str]]] = [[] for _ in range(procs)]
    counts = {"gs_run": 0, "steals": 0, "handoffs": 0, "netpoll_injects": 0, "preempt_requests": 0}
    seen: set[tuple[int, int]] = set()
    for (pid, tid), events in bufs:
        if (pid, tid) not in seen:
            seen.add((pid, tid))
            if pid == PID_M:
                w.meta(pid, tid, "thread", f"M{tid}", tid)
            else:
                w.meta(pid, tid, "thread", ("netpoll", "sysmon", "other")[tid], tid)
        _Track(w, pid, tid, pslices, counts).run(events, tend)
    for i, sl in enumerate(pslices):
        sl.sort(key=lambda s: s[0])
        for j, (a, b, name, args) in enumerate(sl):
            if j + 1 < len(sl) and sl[j + 1][0] < b:
                b = sl[j + 1][0]  # the P changed hands a moment before the old M noted it
            w.slice(PID_P, i, a, b - a, name, "g", args)
    w.flush()
    other = {"procs": procs, "start_unix": wall0, "duration_us": w.us(tend), **counts}
    f.write(f'\n],"otherData":{json.dumps(other)}}}\n')
    return w.n


class _Track:
    """_Track turns one thread's raw events, in time order, into trace events: a START opens a
    slice and the next END/SYSCALL closes it, so slices on a track never overlap. One method per
    raw event kind (`on[kind]`); flows of the netpoll thread wait for the batch that injects them.
    """

    def __init__(
        self,
        w: _Writer,
        pid: int,
        tid: int,
        pslices: list[list[tuple[float, float, str, str]]],
        counts: dict[str, int],
    ) -> None:
        self.w = w
        self.pid = pid
        self.tid = tid
        self.pslices = pslices
        self.counts = counts
        # open: the slice in progress (start µs, kind, gid, name, p, args) or None.
        self.open: tuple[float, str, int, str, int, str] | None = None
        self.last: tuple[float, float] | None = None  # the last closed slice (start, end) in µs
        self.pending_flows: list[tuple[float, int]] = []  # netpoll thread: flows of the batch being built
        self.on: dict[Any, Callable[[float, tuple[Any, ...]], None]] = {
            START: self.start,
            END: self.end,
            SYSCALL: self.syscall,
            SYSEXIT: self.sysexit,
            FLOW: self.flow,
            STEAL: self.steal,
            HANDOFF: self.handoff,
            INJECT: self.inject,
            PREEMPT: self.preempt,
            # PROCSTART/PROCSTOP: kept in the buffers for future views, not drawn.
        }

    def run(self, events: list[tuple[Any, ...]], tend: float) -> None:
        us = self.w.us
        on = self.on
        for ev in events:
            f = on.get(ev[0])
            if f is not None:
                f(us(ev[1]), ev)
        if self.open is not None:
            self.close(us(tend), "trace stopped")
        w, pid, tid = self.w, self.pid, self.tid
        for fts, fid in self.pending_flows:  # readied but not injected before stop
            w.slice(pid, tid, fts, 0.0, '"ready"', "ready", "")
            w.flow("s", pid, tid, fts, fid)

    def close(self, ts: float, why: str) -> None:
        assert self.open is not None
        a, kind, gid, name, p, args = self.open
        w, pid, tid = self.w, self.pid, self.tid
        if kind == "g":
            full = f'"g":{gid},"p":{p},"end":{json.dumps(why)}{args}'
            gname = _gname(gid, name)
            w.slice(pid, tid, a, ts - a, gname, "g", full)
            if 0 <= p < len(self.pslices):
                self.pslices[p].append((a, ts, gname, f'"g":{gid},"m":{tid},"end":{json.dumps(why)}{args}'))
        else:
            extra = why if why.startswith(",") else ""  # a syscall slice's why is its extra args
            w.slice(pid, tid, a, ts - a, json.dumps(f"syscall G{gid}"), "syscall", f'"g":{gid}{extra}')
        self.last = (a, ts)
        self.open = None

    def start(self, ts: float, ev: tuple[Any, ...]) -> None:
        _, _, gid, name, p, lat, fid = ev
        if self.open is not None:
            self.close(ts, "unknown")  # started before the trace: its end went unrecorded
        if lat == BEFORE_TRACE:
            extra = ',"before_trace":true'
        elif lat < 0:
            # Not made runnable since its last slice: its park's commit found the wait already
            # over and the M resumed it at once; not a new schedule (p.ngrun does not count it).
            extra = ',"resumed":"park satisfied at once"'
        else:
            self.counts["gs_run"] += 1
            extra = f',"latency_us":{round(lat * 1e6, 3)}'
        self.open = (ts, "g", gid, name, p, extra)
        if fid:
            self.w.flow("f", self.pid, self.tid, ts, fid)

    def end(self, ts: float, ev: tuple[Any, ...]) -> None:
        _, _, gid, why = ev
        if self.open is None:
            self.open = (0.0, "g", gid, "?", -1, ',"before_trace":true')
        self.close(ts, why)
        if why.startswith("park"):
            self.w.instant(self.pid, self.tid, ts, why, "park", f'"g":{gid}')

    def syscall(self, ts: float, ev: tuple[Any, ...]) -> None:
        if self.open is not None:
            self.close(ts, "syscall")
        self.open = (ts, "s", ev[2], "", -1, "")

    def sysexit(self, ts: float, ev: tuple[Any, ...]) -> None:
        _, _, gid, name, p, handed_off, cont = ev
        if self.open is not None:
            self.close(ts, f',"handed_off":{"true" if handed_off else "false"}')
        if cont:
            self.open = (ts, "g", gid, name, p, ',"resumed":"after syscall"')

    def flow(self, ts: float, ev: tuple[Any, ...]) -> None:
        fid = ev[2]
        w, pid, tid = self.w, self.pid, self.tid
        if pid == PID_RT and tid == TID_NETPOLL:
            self.pending_flows.append((ts, fid))
            return
        last = self.last
        if self.open is not None:
            fts = ts
        elif last is not None and ts - last[1] < 1.0:
            fts = max(last[0], round(last[1] - 0.001, 3))  # just ended: bind to that slice
        else:
            w.slice(pid, tid, ts, 0.0, '"ready"', "ready", f'"g":{ev[4]},"readier":{ev[3]}')
            fts = ts
        w.flow("s", pid, tid, fts, fid)

    def steal(self, ts: float, ev: tuple[Any, ...]) -> None:
        _, _, thief, victim, n = ev
        self.counts["steals"] += 1
        args = f'"thief":{thief},"victim":{victim},"n":{n}'
        self.w.instant(self.pid, self.tid, ts, f"steal {n} from P{victim}", "steal", args)

    def handoff(self, ts: float, ev: tuple[Any, ...]) -> None:
        _, _, p, reason = ev
        self.counts["handoffs"] += 1
        w = self.w
        w.instant(
            self.pid, self.tid, ts, f"handoff P{p} ({reason})", "handoff", f'"p":{p},"reason":{json.dumps(reason)}'
        )
        if 0 <= p < len(self.pslices):
            w.instant(PID_P, p, ts, f"handoff ({reason})", "handoff", f'"p":{p}')

    def inject(self, ts: float, ev: tuple[Any, ...]) -> None:
        _, _, n, nfd, ntm = ev
        self.counts["netpoll_injects"] += 1
        w, pid, tid = self.w, self.pid, self.tid
        flows = self.pending_flows
        a = flows[0][0] if flows else ts
        w.slice(
            pid, tid, a, ts - a, json.dumps(f"netpoll inject {n}"), "netpoll", f'"n":{n},"fds":{nfd},"timers":{ntm}'
        )
        for fts, fid in flows:
            w.flow("s", pid, tid, fts, fid)
        flows.clear()

    def preempt(self, ts: float, ev: tuple[Any, ...]) -> None:
        _, _, gid, p = ev
        self.counts["preempt_requests"] += 1
        self.w.instant(self.pid, self.tid, ts, f"preempt G{gid}", "preempt", f'"g":{gid},"p":{p}')
