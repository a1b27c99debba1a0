"""trace: what tracing costs. Ping-pong over an unbuffered channel and a gosched loop, with
tracing off, metrics on (MN_DEBUG=metrics=1) and a full execution trace, against asyncio in the
same run; then a trace of over 1M events is written and loaded back.

    python -m stress.benchmarks.trace [--runs 5] [--n 20000] [--big 1000000]

Reports the median of --runs runs per configuration, and ratios to tracing off. With tracing off
the only cost left is each event site's `if tracer is not None` test; the script times that test
and multiplies by the events per operation (counted from a trace) to bound it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import timeit

import mn_runtime as mn


async def _ponger(ch: mn.Chan[int], back: mn.Chan[int], n: int) -> None:
    for _ in range(n):
        await back.send(await ch.recv())


async def mn_pingpong(n: int) -> None:
    ch: mn.Chan[int] = mn.Chan()
    back: mn.Chan[int] = mn.Chan()
    g = mn.go(_ponger, ch, back, n)
    for i in range(n):
        await ch.send(i)
        await back.recv()
    await g.join()


async def _yielder(n: int) -> None:
    for _ in range(n):
        await mn.gosched()


async def mn_gosched(n: int) -> None:
    gs = [mn.go(_yielder, n // 2) for _ in range(2)]
    for g in gs:
        await g.join()


async def aio_pingpong(n: int) -> None:
    q1: asyncio.Queue[int] = asyncio.Queue(1)
    q2: asyncio.Queue[int] = asyncio.Queue(1)

    async def pong() -> None:
        for _ in range(n):
            await q2.put(await q1.get())

    t = asyncio.create_task(pong())
    for i in range(n):
        await q1.put(i)
        await q2.get()
    await t


def timed(fn, n: int, mode: str, procs: int, path: str) -> float:  # type: ignore[no-untyped-def]
    os.environ.pop("MN_DEBUG", None)
    os.environ.pop("MN_TRACE", None)
    if mode == "metrics":
        os.environ["MN_DEBUG"] = "metrics=1,sigdump=0"
    t0 = time.perf_counter()
    mn.run(fn, n, procs=procs, trace=path if mode == "trace" else None)
    dt = time.perf_counter() - t0
    os.environ.pop("MN_DEBUG", None)
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--big", type=int, default=1_000_000)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "t.json")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, n={a.n}, procs={a.procs}, runs={a.runs}")
    for name, fn in (("ping-pong (unbuffered chan)", mn_pingpong), ("gosched loop (2 Gs)", mn_gosched)):
        res: dict[str, list[float]] = {"off": [], "metrics": [], "trace": []}
        for _ in range(a.runs):  # interleaved, so drift hits every mode alike
            for mode in res:
                res[mode].append(timed(fn, a.n, mode, a.procs, path))
        aio = [0.0] * a.runs
        if fn is mn_pingpong:
            aio = []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                asyncio.run(aio_pingpong(a.n))
                aio.append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in res.items()}
        print(f"\n{name}:")
        for k, v in med.items():
            print(f"  tracing {k:<8} {a.n / v:10.0f} ops/s  {v * 1e6 / a.n:7.2f} us/op  x{v / med['off']:.3f} of off")
        if fn is mn_pingpong:
            m = statistics.median(aio)
            ratio = med["off"] / m
            print(f"  asyncio.Queue   {a.n / m:10.0f} ops/s  {m * 1e6 / a.n:7.2f} us/op  (mn off is x{ratio:.2f})")
        # Events per op, from the last trace; the cost of the off-path test per event site.
        with open(path) as f:
            nev = len(json.load(f)["traceEvents"])

        class S:
            tracer = None

        s = S()
        per = min(timeit.repeat("tr = s.tracer\nif tr is not None: pass", globals={"s": s}, number=1_000_000, repeat=5))
        per_site_ns = per * 1e3
        bound = (nev / a.n) * per_site_ns / (med["off"] * 1e9 / a.n)
        print(
            f"  off-path bound: {nev / a.n:.1f} trace events/op x {per_site_ns:.1f} ns per `tracer is None` test"
            f" = {100 * bound:.2f}% of an op"
        )
    # A big trace: a gosched loop long enough for a.big events, written and loaded back.
    n = a.big // 2
    t0 = time.perf_counter()
    mn.run(mn_gosched, n, procs=a.procs, trace=path)
    t1 = time.perf_counter()
    with open(path) as f:
        data = json.load(f)
    t2 = time.perf_counter()
    nev = len(data["traceEvents"])
    print(
        f"\nbig trace: {nev} events, {os.path.getsize(path) / 1e6:.0f} MB; run+write {t1 - t0:.1f} s,"
        f" json.load {t2 - t1:.1f} s"
    )
    assert nev >= a.big, nev
    os.remove(path)


if __name__ == "__main__":
    main()
