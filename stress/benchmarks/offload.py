"""CPU-mixed work past one interpreter, and the cost of waiting on a future; medians of interleaved runs.

    python -m stress.benchmarks.offload [--runs 5] [--jobs 64] [--cpu-ms 10] [--rounds 5000]
                                        [--part 1|2|all] [--only mn1,mn2,mnppe,inline,mp]

Part 1, CPU-mixed jobs: each job is a pure-Python computation of about --cpu-ms (calibrated here,
now, on this interpreter), a 1 ms sleep and one loopback round trip (connect, 64 bytes there and
back) to an echo server in a subprocess. Contenders, each timed in turn within one pass, `--runs`
passes, median per contender:
  sequential             one job after another, blocking calls
  mn offload procs=1/2   the jobs as goroutines; the computation in mn.offload (the runtime's
                         spawn process pool, default_workers() processes), sleep and round trip
                         on the runtime
  mn offload to the PPE  the same at procs=1, the computation in asyncio's ProcessPoolExecutor
                         (mn.offload(..., executor=ppe), through wait_future): the pool alone
                         changes
  mn goroutines procs=2  the jobs as goroutines with the computation inline (parallel only on
                         the free-threaded build; under the GIL it shows what the GIL costs)
  asyncio + PPE          the jobs as asyncio tasks, the computation in loop.run_in_executor with
                         a ProcessPoolExecutor of as many 'spawn' workers
  multiprocessing.Pool   whole jobs (computation, sleep, blocking round trip) in Pool.map over as
                         many 'spawn' processes, no event loop
Process pools are started and warmed (every worker running) before the clock starts: the figures
are the steady state of a long-lived program; the mn pool's first-use cost is printed apart.

Part 2, wait_future itself: round trips per second of a trivial concurrent.futures.Future that a
plain thread completes (the goroutine makes the future, hands it to the thread over a
queue.SimpleQueue and waits): mn.wait_future (with and without a cancelable context) against
asyncio.wrap_future on a loop, and a plain thread blocking in Future.result(); and mn.aio of an
empty coroutine against asyncio.run_coroutine_threadsafe from a thread. Then the pool's own cost
per call: one goroutine calling a trivial function with mn.offload, one call after another,
against asyncio's run_in_executor on a ProcessPoolExecutor.

Prints markdown tables (docs/benchmarks.md keeps a copy). Nothing is hard-coded.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures as cf
import multiprocessing
import os
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import mn_runtime as mn
from mn_runtime import context as mnctx
from mn_runtime import future as mnfuture

MSG = b"x" * 64
HOST = "127.0.0.1"

_ECHO = r"""
import socket, sys, threading
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(1024)
print(ls.getsockname()[1], flush=True)
def serve(c):
    with c:
        while True:
            d = c.recv(65536)
            if not d:
                return
            c.sendall(d)
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def start_echo() -> tuple[subprocess.Popen[str], int]:
    p = subprocess.Popen([sys.executable, "-c", _ECHO], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    return p, int(p.stdout.readline())


# --- the job's parts (module level: the process pools import them by name) ---


def cpu(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i % 7
    return x


def calibrate(ms: float) -> int:
    """calibrate: the n for which cpu(n) takes about ms here (the fastest of a few tries, twice
    over, so one slow moment of the host does not set the size)."""
    n = 50_000
    for _ in range(2):
        best = min(_timed(cpu, n) for _ in range(5))
        n = max(1000, int(n * ms / 1000 / best))
    return n


def _timed(fn: Callable[..., Any], *args: Any) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def blocking_round_trip(port: int) -> None:
    with socket.create_connection((HOST, port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(MSG)
        got = 0
        while got < len(MSG):
            d = s.recv(len(MSG) - got)
            if not d:
                raise ConnectionError("echo server closed the connection")
            got += len(d)


def whole_job(n: int, port: int) -> int:
    r = cpu(n)
    time.sleep(0.001)
    blocking_round_trip(port)
    return r


def warm(dirname: str, n: int) -> int:
    """warm returns once n calls are running at the same time (each notes itself in dirname), so
    a pool that starts a worker per call while none is idle has all n workers up."""
    with open(os.path.join(dirname, str(os.getpid())), "w"):
        pass
    deadline = time.monotonic() + 60
    while len(os.listdir(dirname)) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"warm: {n} pool workers did not all start within 60 s")
        time.sleep(0.002)
    return os.getpid()


# --- part 1 contenders: each returns the seconds its jobs took ---


def run_sequential(jobs: int, n: int, port: int) -> float:
    t = time.perf_counter()
    for _ in range(jobs):
        whole_job(n, port)
    return time.perf_counter() - t


async def _mn_round_trip(port: int) -> None:
    c = await mn.net.dial("tcp", f"{HOST}:{port}")
    with c:
        await c.write(MSG)
        got = 0
        while got < len(MSG):
            d = await c.read(len(MSG) - got)
            if not d:
                raise ConnectionError("echo server closed the connection")
            got += len(d)


def run_mn(
    jobs: int, n: int, port: int, procs: int, offload: bool, executor: cf.Executor | None = None
) -> tuple[float, float]:
    """run_mn: (seconds for the jobs, seconds the pool took to start and warm) in one mn.run;
    with executor, the computation goes there (mn.offload(..., executor=)) instead of to the
    runtime's pool."""

    async def job() -> None:
        if executor is not None:
            await mn.offload(cpu, n, executor=executor)
        elif offload:
            await mn.offload(cpu, n)
        else:
            cpu(n)
        await mn.sleep(0.001)
        await _mn_round_trip(port)

    async def main() -> tuple[float, float]:
        warmup = 0.0
        if offload and executor is None:
            t = time.perf_counter()
            nw = mnfuture.default_workers()
            with tempfile.TemporaryDirectory() as d:
                ws = [mn.go(mn.offload, warm, d, nw) for _ in range(nw)]
                pids = {await g.join() for g in ws}
            assert len(pids) == nw, pids
            warmup = time.perf_counter() - t
        t = time.perf_counter()
        gs = [mn.go(job) for _ in range(jobs)]
        for g in gs:
            await g.join()
        return time.perf_counter() - t, warmup

    return mn.run(main, procs=procs)


def _spawn() -> Any:
    return multiprocessing.get_context("spawn")


def run_asyncio(jobs: int, n: int, port: int, ex: cf.Executor) -> float:
    async def job(loop: asyncio.AbstractEventLoop, ex: cf.Executor) -> None:
        await loop.run_in_executor(ex, cpu, n)
        await asyncio.sleep(0.001)
        r, w = await asyncio.open_connection(HOST, port)
        w.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        w.write(MSG)
        await r.readexactly(len(MSG))
        w.close()
        await w.wait_closed()

    async def main() -> float:
        loop = asyncio.get_running_loop()
        t = time.perf_counter()
        await asyncio.gather(*(job(loop, ex) for _ in range(jobs)))
        return time.perf_counter() - t

    return asyncio.run(main())


def run_mp_pool(jobs: int, n: int, port: int, pool: Any) -> float:
    t = time.perf_counter()
    pool.starmap(whole_job, [(n, port)] * jobs, chunksize=1)
    return time.perf_counter() - t


def parallel_ceiling(n: int, pool: Any, workers: int) -> float:
    """parallel_ceiling: how much faster the pool runs workers * 4 bare computations than this
    process does one after another, now; what the host's free cores allow."""
    k = workers * 4
    t = time.perf_counter()
    for _ in range(k):
        cpu(n)
    seq = time.perf_counter() - t
    t = time.perf_counter()
    pool.map(cpu, [n] * k, chunksize=1)
    return seq / (time.perf_counter() - t)


# Short names for --only (sequential and asyncio always run: the ratios are against them).
SHORT = {
    "mn1": "mn offload, procs=1",
    "mn2": "mn offload, procs=2",
    "mnppe": "mn offload to the ProcessPoolExecutor, procs=1",
    "inline": "mn goroutines (CPU inline), procs=2",
    "mp": "multiprocessing.Pool alone",
}


def part1(runs: int, jobs: int, cpu_ms: float, only: set[str] | None = None) -> None:
    workers = mnfuture.default_workers()
    n = calibrate(cpu_ms)
    job_ms = min(_timed(cpu, n) for _ in range(3)) * 1000
    echo, port = start_echo()
    # The peers' pools live through every pass, started and warmed here (mn's pool is per run()
    # and warmed inside run_mn, outside its clock).
    ppe = cf.ProcessPoolExecutor(workers, mp_context=_spawn())
    with tempfile.TemporaryDirectory() as d:
        assert len({f.result() for f in [ppe.submit(warm, d, workers) for _ in range(workers)]}) == workers
    mpool = _spawn().Pool(workers)
    with tempfile.TemporaryDirectory() as d:
        mpool.starmap(warm, [(d, workers)] * workers, chunksize=1)
    ft = not getattr(sys, "_is_gil_enabled", lambda: True)()
    contenders: dict[str, Callable[[], float]] = {
        "sequential": lambda: run_sequential(jobs, n, port),
        "mn offload, procs=1": lambda: _keep_warmup(run_mn(jobs, n, port, 1, True), "procs=1"),
        "mn offload, procs=2": lambda: _keep_warmup(run_mn(jobs, n, port, 2, True), "procs=2"),
        "mn offload to the ProcessPoolExecutor, procs=1": lambda: run_mn(jobs, n, port, 1, True, ppe)[0],
        "mn goroutines (CPU inline), procs=2": lambda: run_mn(jobs, n, port, 2, False)[0],
        "asyncio + run_in_executor(ProcessPoolExecutor)": lambda: run_asyncio(jobs, n, port, ppe),
        "multiprocessing.Pool alone": lambda: run_mp_pool(jobs, n, port, mpool),
    }
    if only is not None:
        keep = {SHORT[k] for k in only} | {"sequential", "asyncio + run_in_executor(ProcessPoolExecutor)"}
        contenders = {k: v for k, v in contenders.items() if k in keep}
    times: dict[str, list[float]] = {k: [] for k in contenders}
    ceiling: list[float] = []
    try:
        for _ in range(runs):
            for name, fn in contenders.items():
                times[name].append(fn())
            ceiling.append(parallel_ceiling(n, mpool, workers))
    finally:
        ppe.shutdown()
        mpool.close()
        mpool.join()
        echo.kill()
        echo.wait()
    med = {k: statistics.median(v) for k, v in times.items()}
    seq = med["sequential"]
    aio = med["asyncio + run_in_executor(ProcessPoolExecutor)"]
    print(
        f"\nCPU-mixed: {jobs} jobs of {job_ms:.1f} ms pure Python (cpu({n})) + 1 ms sleep + a loopback round trip;"
        f" {workers} pool workers; {'free-threaded' if ft else 'GIL'} build; median of {runs}\n"
    )
    # Per-pass ratios: each pass times every contender in turn, so a noisy stretch of the host
    # tends to hit a whole pass; the median of the per-pass ratios is steadier than the ratio of
    # the medians (both are printed).
    aioname = "asyncio + run_in_executor(ProcessPoolExecutor)"
    print(
        "| contender | seconds | vs sequential | vs asyncio + PPE"
        " | vs sequential, per pass (median) | vs asyncio, per pass (median) | runs (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for k, v in med.items():
        runs_s = " ".join(f"{x:.3f}" for x in times[k])
        pseq = statistics.median(a / b for a, b in zip(times["sequential"], times[k], strict=True))
        paio = statistics.median(a / b for a, b in zip(times[aioname], times[k], strict=True))
        print(f"| {k} | {v:.3f} | {seq / v:.2f}x | {aio / v:.2f}x | {pseq:.2f}x | {paio:.2f}x | {runs_s} |")
    print(
        f"\nParallel ceiling (the same computation, no I/O: {workers * 4} calls in the warm"
        f" multiprocessing.Pool against one after another in this process), per pass: "
        + " ".join(f"{c:.2f}x" for c in ceiling)
        + f", median {statistics.median(ceiling):.2f}x. No contender can beat it; on a host whose other"
        " load leaves fewer free cores than workers it falls toward 1x."
    )
    if _warmups:
        print(
            f"\nmn pool first use (start {workers} spawn workers, all running a call): "
            + ", ".join(f"{k} median {statistics.median(v):.2f} s" for k, v in _warmups.items())
        )


_warmups: dict[str, list[float]] = {}


def _keep_warmup(r: tuple[float, float], key: str) -> float:
    _warmups.setdefault(key, []).append(r[1])
    return r[0]


# --- part 2: the cost of one wait ---


def _completer(q: queue.SimpleQueue[cf.Future[int] | None]) -> None:
    while True:
        f = q.get()
        if f is None:
            return
        f.set_result(1)


def _with_completer(body: Callable[[queue.SimpleQueue[Any]], float]) -> float:
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()
    t = threading.Thread(target=_completer, args=(q,))
    t.start()
    try:
        return body(q)
    finally:
        q.put(None)
        t.join()


def mn_wait_rate(rounds: int, with_ctx: bool) -> float:
    def body(q: queue.SimpleQueue[Any]) -> float:
        async def main() -> float:
            ctx, cancel = mnctx.with_cancel(mnctx.background()) if with_ctx else (None, None)
            t = time.perf_counter()
            for _ in range(rounds):
                f: cf.Future[int] = cf.Future()
                q.put(f)
                await mn.wait_future(f, ctx)
            dt = time.perf_counter() - t
            if cancel is not None:
                cancel()
            return rounds / dt

        return mn.run(main, procs=1)

    return _with_completer(body)


def asyncio_wrap_rate(rounds: int) -> float:
    def body(q: queue.SimpleQueue[Any]) -> float:
        async def main() -> float:
            t = time.perf_counter()
            for _ in range(rounds):
                f: cf.Future[int] = cf.Future()
                q.put(f)
                await asyncio.wrap_future(f)
            return rounds / (time.perf_counter() - t)

        return asyncio.run(main())

    return _with_completer(body)


def thread_result_rate(rounds: int) -> float:
    def body(q: queue.SimpleQueue[Any]) -> float:
        t = time.perf_counter()
        for _ in range(rounds):
            f: cf.Future[int] = cf.Future()
            q.put(f)
            f.result()
        return rounds / (time.perf_counter() - t)

    return _with_completer(body)


async def _nop() -> int:
    return 1


def mn_aio_rate(rounds: int) -> float:
    async def main() -> float:
        await mn.aio(_nop())  # start the loop thread outside the clock
        t = time.perf_counter()
        for _ in range(rounds):
            await mn.aio(_nop())
        return rounds / (time.perf_counter() - t)

    return mn.run(main, procs=1)


def thread_rcts_rate(rounds: int) -> float:
    loop = asyncio.new_event_loop()
    th = threading.Thread(target=loop.run_forever)
    th.start()
    try:
        t = time.perf_counter()
        for _ in range(rounds):
            asyncio.run_coroutine_threadsafe(_nop(), loop).result()
        return rounds / (time.perf_counter() - t)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        th.join()
        loop.close()


def part2(runs: int, rounds: int) -> None:
    contenders: dict[str, Callable[[], float]] = {
        "mn.wait_future(f)": lambda: mn_wait_rate(rounds, False),
        "mn.wait_future(f, ctx)": lambda: mn_wait_rate(rounds, True),
        "asyncio: await asyncio.wrap_future(f)": lambda: asyncio_wrap_rate(rounds),
        "thread: f.result()": lambda: thread_result_rate(rounds),
        "mn.aio(empty coroutine)": lambda: mn_aio_rate(rounds // 4),
        "thread: run_coroutine_threadsafe(...).result()": lambda: thread_rcts_rate(rounds // 4),
    }
    rates: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(runs):
        for name, fn in contenders.items():
            rates[name].append(fn())
    med = {k: statistics.median(v) for k, v in rates.items()}
    base = med["asyncio: await asyncio.wrap_future(f)"]
    print(
        f"\nWaiting on a future completed by another thread: {rounds} round trips"
        f" (aio: {rounds // 4}); median of {runs}\n"
    )
    print("| waiter | round trips/s | vs asyncio.wrap_future | us per round trip |")
    print("|---|---|---|---|")
    for k, v in med.items():
        print(f"| {k} | {v:,.0f} | {v / base:.2f}x | {1e6 / v:.1f} |")
    part2_pool(runs, rounds // 5)


def _one() -> int:
    return 1


def mn_pool_rate(calls: int) -> float:
    async def main() -> float:
        await mn.offload(_one)  # start the worker outside the clock
        t = time.perf_counter()
        for _ in range(calls):
            await mn.offload(_one)
        return calls / (time.perf_counter() - t)

    return mn.run(main, procs=1)


def asyncio_pool_rate(calls: int, ex: cf.Executor) -> float:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        t = time.perf_counter()
        for _ in range(calls):
            await loop.run_in_executor(ex, _one)
        return calls / (time.perf_counter() - t)

    return asyncio.run(main())


def part2_pool(runs: int, calls: int) -> None:
    """part2_pool: one goroutine (or coroutine) calling a trivial function in a process pool, one
    call after another: the pool's own cost per call, which a computation of that length pays."""
    ppe = cf.ProcessPoolExecutor(mnfuture.default_workers(), mp_context=_spawn())
    ppe.submit(_one).result()
    contenders: dict[str, Callable[[], float]] = {
        "mn.offload(trivial), the runtime's pool": lambda: mn_pool_rate(calls),
        "asyncio: run_in_executor(ProcessPoolExecutor, trivial)": lambda: asyncio_pool_rate(calls, ppe),
    }
    rates: dict[str, list[float]] = {k: [] for k in contenders}
    try:
        for _ in range(runs):
            for name, fn in contenders.items():
                rates[name].append(fn())
    finally:
        ppe.shutdown()
    med = {k: statistics.median(v) for k, v in rates.items()}
    base = med["asyncio: run_in_executor(ProcessPoolExecutor, trivial)"]
    print(f"\nA trivial call in a process pool, one after another: {calls} calls; median of {runs}\n")
    print("| caller | calls/s | vs asyncio | us per call |")
    print("|---|---|---|---|")
    for k, v in med.items():
        print(f"| {k} | {v:,.0f} | {v / base:.2f}x | {1e6 / v:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=64)
    ap.add_argument("--cpu-ms", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=5000)
    ap.add_argument("--part", choices=["1", "2", "all"], default="all")
    ap.add_argument("--only", help=f"part 1: a comma-separated subset of {','.join(SHORT)} (with sequential, asyncio)")
    a = ap.parse_args()
    only = None
    if a.only:
        only = set(a.only.split(","))
        if not only <= SHORT.keys():
            ap.error(f"--only: unknown contenders {sorted(only - SHORT.keys())}; known: {','.join(SHORT)}")
    build = "free-threaded" if not getattr(sys, "_is_gil_enabled", lambda: True)() else "GIL"
    print(f"python {sys.version.split()[0]} ({build}), {os.cpu_count()} CPUs")
    if a.part in ("1", "all"):
        part1(a.runs, a.jobs, a.cpu_ms, only)
    if a.part in ("2", "all"):
        part2(a.runs, a.rounds)


if __name__ == "__main__":
    main()
