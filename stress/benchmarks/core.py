"""Core scheduler benchmarks against asyncio (and threads), same run, same machine; medians.

    python -m stress.benchmarks.core [--runs 5] [--quick]

Prints one markdown table of medians and ratios (docs/benchmarks.md keeps a copy). Each figure is
measured here, now; nothing is hard-coded.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import mn_runtime as mn

# --- spawn 100k trivial Gs ---


async def _nothing() -> None:
    return None


def mn_spawn(n: int, procs: int = 1) -> float:
    async def main() -> None:
        gs = [mn.go(_nothing) for _ in range(n)]
        for g in gs:
            await g.join()

    t = time.perf_counter()
    mn.run(main, procs=procs)
    return n / (time.perf_counter() - t)


def asyncio_spawn(n: int) -> float:
    async def main() -> None:
        ts = [asyncio.ensure_future(_nothing()) for _ in range(n)]
        for t in ts:
            await t

    t = time.perf_counter()
    asyncio.run(main())
    return n / (time.perf_counter() - t)


# --- yield loop ---


def mn_yield(n: int, procs: int = 1) -> float:
    async def main() -> None:
        for _ in range(n):
            await mn.gosched()

    t = time.perf_counter()
    mn.run(main, procs=procs)
    return n / (time.perf_counter() - t)


def asyncio_yield(n: int) -> float:
    async def main() -> None:
        for _ in range(n):
            await asyncio.sleep(0)

    t = time.perf_counter()
    asyncio.run(main())
    return n / (time.perf_counter() - t)


def mn_yield_rr(n: int, gs: int = 10, procs: int = 1) -> float:
    """gs Gs each yielding n/gs times: every yield really switches to another G."""

    async def w() -> None:
        for _ in range(n // gs):
            await mn.gosched()

    async def main() -> None:
        hs = [mn.go(w) for _ in range(gs)]
        for h in hs:
            await h.join()

    t = time.perf_counter()
    mn.run(main, procs=procs)
    return n / (time.perf_counter() - t)


def asyncio_yield_rr(n: int, gs: int = 10) -> float:
    async def w() -> None:
        for _ in range(n // gs):
            await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(w() for _ in range(gs)))

    t = time.perf_counter()
    asyncio.run(main())
    return n / (time.perf_counter() - t)


# --- CPU-mixed jobs ---

BLOB = os.urandom(2 << 20)


def _hash4() -> bytes:
    h = b""
    for _ in range(4):
        h = hashlib.sha256(BLOB + h[:0]).digest()
    return h


def _pywork() -> int:
    x = 0
    for i in range(20_000):
        x ^= i * 7
    return x


def seq_jobs(jobs: int) -> float:
    t = time.perf_counter()
    for _ in range(jobs):
        _hash4()
        time.sleep(0.001)
        _pywork()
    return time.perf_counter() - t


def mn_jobs(jobs: int, procs: int = 2) -> float:
    async def job() -> None:
        await mn.syscall(_hash4)
        await mn.sleep(0.001)
        _pywork()

    async def main() -> None:
        gs = [mn.go(job) for _ in range(jobs)]
        for g in gs:
            await g.join()

    t = time.perf_counter()
    mn.run(main, procs=procs)
    return time.perf_counter() - t


def asyncio_jobs(jobs: int, workers: int = 2) -> float:
    async def job() -> None:
        await asyncio.to_thread(_hash4)
        await asyncio.sleep(0.001)
        _pywork()

    async def main() -> None:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(workers))
        await asyncio.gather(*(job() for _ in range(jobs)))

    t = time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - t


# --- pure-Python Gs, procs=2 vs procs=1 ---


def mn_pure(procs: int, gs: int = 200, work: int = 2_000) -> float:
    async def worker() -> None:
        for _ in range(10):
            x = 0
            for i in range(work):
                x += i
            await mn.gosched()

    async def main() -> None:
        hs = [mn.go(worker) for _ in range(gs)]
        for h in hs:
            await h.join()

    t = time.perf_counter()
    mn.run(main, procs=procs)
    return time.perf_counter() - t


def threads_pure(nthreads: int, gs: int = 200, work: int = 2_000) -> float:
    """threads_pure does mn_pure's work on nthreads plain threads, no runtime: what CPython's GIL
    itself charges for a second thread running Python, on this host, now."""

    def worker(share: int) -> None:
        for _ in range(share * 10):
            x = 0
            for i in range(work):
                x += i

    ts = [threading.Thread(target=worker, args=(gs // nthreads,)) for _ in range(nthreads)]
    t = time.perf_counter()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    return time.perf_counter() - t


# --- memory per parked G vs parked asyncio Task (fresh processes) ---

_MEM_CHILD = r"""
import sys, psutil, gc
n = int(sys.argv[2])
kind = sys.argv[1]
gc.collect()
base = psutil.Process().memory_info().rss
# Measure once every G or task has started and parked: each reports in before it parks, and the
# last one wakes main (a fixed sleep is not enough: 100k starts can take longer, and a timer's G
# may run before all of them).
if kind == "mn":
    import mn_runtime as mn
    from tests.rtutil import Baton
    async def parked(b, wg):
        wg.done()
        await b.wait()
    async def main():
        bs = [Baton() for _ in range(n)]
        wg = mn.WaitGroup()
        wg.add(n)
        gs = [mn.go(parked, b, wg) for b in bs]
        await wg.wait()
        gc.collect()
        rss = psutil.Process().memory_info().rss
        for b in bs:
            b.signal()
        for g in gs:
            await g.join()
        return rss
    rss = mn.run(main, procs=1)
    # Baton is test scaffolding (a lock + 2 fields); count it against us anyway.
else:
    import asyncio
    left = [n]
    async def parked(ev, all_in):
        left[0] -= 1
        if not left[0]:
            all_in.set()
        await ev.wait()
    async def main():
        evs = [asyncio.Event() for _ in range(n)]
        all_in = asyncio.Event()
        ts = [asyncio.ensure_future(parked(e, all_in)) for e in evs]
        await all_in.wait()
        gc.collect()
        rss = psutil.Process().memory_info().rss
        for e in evs:
            e.set()
        await asyncio.gather(*ts)
        return rss
    rss = asyncio.run(main())
print((rss - base) / n)
"""


def mem_per_parked(kind: str, n: int) -> float:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run(
        [sys.executable, "-c", _MEM_CHILD, kind, str(n)], cwd=root, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def median(fn: Callable[[], float], runs: int) -> float:
    return statistics.median(fn() for _ in range(runs))


def paired(ours: Callable[[], float], peer: Callable[[], float], runs: int) -> tuple[float, float]:
    """paired runs the two sides in turn, runs times, and returns their medians: a noisy stretch
    of a shared host then hits both sides alike instead of all runs of one."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(runs):
        a.append(ours())
        b.append(peer())
    return statistics.median(a), statistics.median(b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    a = ap.parse_args()
    r = a.runs
    n = 20_000 if a.quick else 100_000
    rows: list[tuple[str, str, str, str]] = []

    def row(name: str, ours: float, peer: float, unit: str, peername: str, higher_better: bool = True) -> None:
        ratio = ours / peer if higher_better else peer / ours
        rows.append((name, f"{ours:,.0f} {unit}", f"{peer:,.0f} {unit} ({peername})", f"{ratio:.2f}x"))
        print(rows[-1], flush=True)

    row(
        "spawn+finish 100k Gs, procs=1",
        *paired(lambda: mn_spawn(n), lambda: asyncio_spawn(n), r),
        "G/s",
        "asyncio tasks",
    )
    row(
        "spawn+finish 100k Gs, procs=2",
        *paired(lambda: mn_spawn(n, 2), lambda: asyncio_spawn(n), r),
        "G/s",
        "asyncio tasks",
    )
    row(
        "gosched loop, procs=1",
        *paired(lambda: mn_yield(n), lambda: asyncio_yield(n), r),
        "yields/s",
        "asyncio.sleep(0)",
    )
    row(
        "gosched round-robin, 10 Gs, procs=1",
        *paired(lambda: mn_yield_rr(n), lambda: asyncio_yield_rr(n), r),
        "yields/s",
        "asyncio.sleep(0), 10 tasks",
    )
    jobs = 16 if a.quick else 64
    seq = median(lambda: seq_jobs(jobs), max(1, r // 2))
    aio = median(lambda: asyncio_jobs(jobs, 2), r)
    for procs in (1, 2):
        ours = median(lambda procs=procs: mn_jobs(jobs, procs), r)
        rows.append(
            (
                f"CPU-mixed {jobs} jobs, procs={procs}: speed-up vs sequential",
                f"{ours:.3f} s",
                f"{seq:.3f} s (sequential)",
                f"{seq / ours:.2f}x",
            )
        )
        print(rows[-1], flush=True)
        rows.append(
            (
                f"CPU-mixed {jobs} jobs, procs={procs}: vs asyncio + to_thread (2 workers)",
                f"{ours:.3f} s",
                f"{aio:.3f} s (asyncio)",
                f"{aio / ours:.2f}x",
            )
        )
        print(rows[-1], flush=True)
    # The four pure-Python runs take turns, so the host's fast and slow stretches (docs/benchmarks.md)
    # hit the runtime and the plain-thread reference alike.
    pure: dict[str, list[float]] = {"mn2": [], "mn1": [], "th2": [], "th1": []}
    for _ in range(r):
        pure["mn2"].append(mn_pure(2))
        pure["mn1"].append(mn_pure(1))
        pure["th2"].append(threads_pure(2))
        pure["th1"].append(threads_pure(1))
    pm = {k: statistics.median(v) for k, v in pure.items()}
    rows.append(
        (
            "pure-Python Gs: procs=2 time / procs=1 time",
            f"{pm['mn2']:.3f} s",
            f"{pm['mn1']:.3f} s (procs=1)",
            f"{pm['mn2'] / pm['mn1']:.2f} (cost)",
        )
    )
    print(rows[-1], flush=True)
    rows.append(
        (
            "same work on plain threads: 2 threads / 1 thread (reference)",
            f"{pm['th2']:.3f} s",
            f"{pm['th1']:.3f} s (1 thread)",
            f"{pm['th2'] / pm['th1']:.2f} (cost)",
        )
    )
    print(rows[-1], flush=True)
    mn_mem = statistics.median(mem_per_parked("mn", n) for _ in range(3))
    aio_mem = statistics.median(mem_per_parked("asyncio", n) for _ in range(3))
    rows.append(
        (
            "RSS per parked G (100k)",
            f"{mn_mem:,.0f} B",
            f"{aio_mem:,.0f} B (asyncio Task)",
            f"{mn_mem / aio_mem:.2f} (of asyncio)",
        )
    )
    print(rows[-1], flush=True)
    print()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, median of {r} runs")
    print("| benchmark | mn_runtime | peer | ratio |")
    print("|---|---|---|---|")
    for x in rows:
        print("| " + " | ".join(x) + " |")


if __name__ == "__main__":
    main()
