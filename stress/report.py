"""report: running one scenario under watch, and what comes out of it.

A scenario is a module in stress/scenarios with NAME, DOC and `async def main(ctx: Ctx)`. It runs
as mn.run(main) while a monitor thread samples the process (psutil: threads, fds, RSS) every
SAMPLE seconds and prints a progress line every second. Afterwards the runner checks the leak
invariants itself: every goroutine finished before main returned, and no thread or fd is left once
run() has returned. A soak (seconds >= SOAK_MIN) also checks that RSS did not grow after warm-up.
"""

from __future__ import annotations

import gc
import random
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TextIO

import psutil

import mn_runtime as mn

SAMPLE = 0.1  # seconds between psutil samples
SOAK_MIN = 10.0  # runs at least this long check RSS growth after warm-up
RSS_SLACK = 1.25  # the late RSS may be at most this times the post-warm-up RSS...
RSS_SLACK_BYTES = 48 << 20  # ...plus this (allocator noise, interned objects, caches)
LEAK_WAIT = 2.0  # seconds to wait for the OS to show threads and fds gone after run()


class Ctx:
    """Ctx: what a scenario gets: its budget, its seed, and counters for the report.

    Counters are updated by goroutines on any M, so they change only under `lock` (correct with
    or without the GIL); scenarios batch their `add` calls to keep that cheap.
    """

    def __init__(self, seconds: float, procs: int, seed: int, chaos: bool) -> None:
        self.seconds = seconds
        self.procs = procs
        self.seed = seed
        self.chaos = chaos
        self.rng = random.Random(seed)
        self.start = time.monotonic()
        self.deadline = self.start + seconds
        self.lock = threading.Lock()
        self.ops = 0
        self.checks = 0
        self.violations: list[str] = []
        self.notes: dict[str, Any] = {}

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def add(self, n: int = 1) -> None:
        with self.lock:
            self.ops += n

    def check(self, ok: bool, what: str) -> bool:
        """check counts an invariant check; a false one is recorded as a violation (what failed)."""
        with self.lock:
            self.checks += 1
            if not ok:
                self.violations.append(what)
        return ok

    def note(self, key: str, value: Any) -> None:
        with self.lock:
            self.notes[key] = value


@dataclass
class Result:
    name: str
    seconds: float
    ops: int = 0
    checks: int = 0
    violations: list[str] = field(default_factory=list)
    threads_start: int = 0  # the process's threads, fds and RSS just before run()
    fds_start: int = 0
    rss_start: int = 0
    peak_threads: int = 0  # peaks of the samples, one of them taken inside the run (_wrapper)
    peak_fds: int = 0
    peak_rss: int = 0
    rss_warm: int = 0
    rss_end: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations


def _fds(proc: psutil.Process) -> int:
    try:
        return proc.num_fds()
    except (AttributeError, psutil.Error):  # not on this platform
        return 0


class Monitor:
    """Monitor samples the process on its own thread (started and joined by run_scenario)."""

    def __init__(self, ctx: Ctx, name: str, out: TextIO | None) -> None:
        self.ctx = ctx
        self.name = name
        self.out = out
        self.proc = psutil.Process()
        self.stop_ev = threading.Event()
        self.samples: list[tuple[float, int, int, int]] = []  # (t, threads, fds, rss)
        self.lastops = 0  # ops at the last progress line
        self.thread = threading.Thread(target=self.loop, name="stress-monitor", daemon=True)

    def sample(self) -> tuple[float, int, int, int]:
        s = (time.monotonic(), self.proc.num_threads(), _fds(self.proc), self.proc.memory_info().rss)
        self.samples.append(s)
        return s

    def loop(self) -> None:
        nextline = time.monotonic() + 1.0
        while not self.stop_ev.wait(SAMPLE):
            s = self.sample()
            if s[0] >= nextline:
                nextline += 1.0
                self.line(s)

    def line(self, s: tuple[float, int, int, int]) -> None:
        """line prints one progress line: every second while the scenario runs, and once at stop."""
        if self.out is None:
            return
        t, th, fds, rss = s
        with self.ctx.lock:
            ops, checks = self.ctx.ops, self.ctx.checks
        print(
            f"[{self.name}] {t - self.ctx.start:5.1f}s ops={ops} (+{ops - self.lastops}) checks={checks}"
            f" threads={th} fds={fds} rss={rss >> 20}MiB",
            file=self.out,
            flush=True,
        )
        self.lastops = ops

    def start(self) -> None:
        self.sample()
        self.thread.start()

    def stop(self) -> None:
        self.stop_ev.set()
        self.thread.join()
        self.line(self.sample())


async def _wrapper(scn: ModuleType, ctx: Ctx, mon: Monitor) -> None:
    await scn.main(ctx)
    # One sample inside the run, with every M the scenario started still alive: a scenario that
    # ends before the monitor's first tick would otherwise show the peaks of the process outside.
    mon.sample()
    # A goroutine that signalled a WaitGroup (or readied its joiner) may still be finishing on
    # another M: give stragglers a bounded moment; a leaked one stays.
    end = time.monotonic() + LEAK_WAIT
    while mn.num_goroutine() > 1 and time.monotonic() < end:
        await mn.sleep(0.001)
    n = mn.num_goroutine()
    ctx.check(n == 1, f"{n - 1} goroutines still exist when the scenario's main returns")


def _settle(baseline: int, probe: Any) -> int:
    """_settle waits (bounded) until probe() is back to baseline; returns its last value."""
    end = time.monotonic() + LEAK_WAIT
    v = probe()
    while v > baseline and time.monotonic() < end:
        time.sleep(0.02)
        v = probe()
    return int(v)


def run_scenario(
    scn: ModuleType, seconds: float, procs: int, seed: int, chaos: bool, out: TextIO | None = sys.stdout
) -> Result:
    """run_scenario runs one scenario under watch and returns its result (never raises)."""
    gc.collect()
    proc = psutil.Process()
    threads0 = threading.active_count()
    fds0 = _fds(proc)
    ctx = Ctx(seconds, procs, seed, chaos)
    mon = Monitor(ctx, scn.NAME, out)
    mon.start()
    try:
        mn.run(_wrapper, scn, ctx, mon, procs=procs, seed=seed, chaos=seed if chaos else None)
    except BaseException as e:  # a scenario that raises has broken an invariant (or the runtime has)
        if isinstance(e, KeyboardInterrupt):
            raise
        ctx.check(False, f"run() raised {type(e).__name__}: {e}\n{traceback.format_exc()}")
    finally:
        mon.stop()
    gc.collect()
    threads = _settle(threads0, threading.active_count)
    ctx.check(threads <= threads0, f"{threads - threads0} threads left after run() returned")
    fds = _settle(fds0, lambda: _fds(proc))
    ctx.check(fds <= fds0, f"{fds - fds0} fds left open after run() returned")
    res = Result(scn.NAME, time.monotonic() - ctx.start)
    s = mon.samples
    _, res.threads_start, res.fds_start, res.rss_start = s[0]
    res.peak_threads = max(x[1] for x in s)
    res.peak_fds = max(x[2] for x in s)
    res.peak_rss = max(x[3] for x in s)
    if seconds >= SOAK_MIN and len(s) > 10:
        warm = [x[3] for x in s if x[0] - ctx.start >= seconds / 3]
        if warm:
            res.rss_warm = warm[0]
            late = [x[3] for x in s if x[0] - ctx.start >= 2 * seconds / 3] or warm[-1:]
            res.rss_end = max(late)
            limit = res.rss_warm * RSS_SLACK + RSS_SLACK_BYTES
            ctx.check(
                res.rss_end <= limit,
                f"RSS grew after warm-up: {res.rss_warm >> 20} MiB -> {res.rss_end >> 20} MiB"
                f" (limit {int(limit) >> 20} MiB)",
            )
    res.ops, res.checks, res.violations, res.notes = ctx.ops, ctx.checks, list(ctx.violations), dict(ctx.notes)
    return res


def format_result(r: Result) -> str:
    status = "ok" if r.ok else f"FAILED ({len(r.violations)} violations)"
    line = (
        f"{r.name:<8} {status:<10} {r.seconds:6.1f}s ops={r.ops:<9} checks={r.checks:<8}"
        f" peak threads={r.peak_threads} fds={r.peak_fds} rss={r.peak_rss >> 20}MiB"
    )
    if r.rss_warm:
        line += f" rss after warm-up {r.rss_warm >> 20}->{r.rss_end >> 20}MiB"
    if r.notes:
        line += " " + " ".join(f"{k}={v}" for k, v in sorted(r.notes.items()))
    for v in r.violations[:10]:
        line += "\n    violated: " + v
    if len(r.violations) > 10:
        line += f"\n    ... and {len(r.violations) - 10} more"
    return line
