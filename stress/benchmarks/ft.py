"""Scaling on a free-threaded CPython: mn_runtime at procs 1 and 2 against the peers a user would pick.

    .venv-ft/bin/python -m stress.benchmarks.ft [--runs 5] [--scale 1] [--only pure,echo] [--peers tonio,threads]
    .venv-ft/bin/python -m stress.benchmarks.ft --quick --runs 1          # smoke run, tiny sizes

Workloads (`--only` names), each at 1 and 2 workers (mn: procs=1 and procs=2):

- pure: 64 Gs, each a loop of arithmetic in slices with a yield between slices (seconds of work
  at procs=1, so that start-up does not dominate; `--scale` multiplies it).
- imbalanced: one G creates all 64, and each computes half of its work before its first yield, then
  the rest in slices: the second P must steal unstarted Gs and started ones.
- cpumixed: the CPU-mixed jobs of stress/benchmarks/core.py (sha256 through a blocking-call offload, a
  1 ms sleep, a Python loop), against the same jobs run sequentially on one thread.
- spawn (tasks/s), pingpong (round trips/s between two tasks over a channel or queue), fanout (1
  producer, 8 consumers, capacity 128; items/s), select (one task receiving from 4 channels fed
  by 4 producers; items/s), echo (C clients x R round trips of 64 bytes over loopback TCP, clients
  and server in one process; round trips/s).

Implementations (`--peers` names; mn_runtime always runs): asyncio (stdlib, one loop thread),
threads (plain threading), and the free-threaded runtimes from PyPI: pyroutine (pyroutine-rt),
mt_asyncio, tonio, runloom. A peer that is not installed is reported as such; a workload its API
has no way to express is "n/a" with the reason. docs/benchmarks.md ("Free-threaded build") says
how each peer is used.

Every measurement runs in a fresh subprocess (several peers keep one process-wide runtime whose
worker count is fixed at first use), with a timeout, so a hung peer costs one cell, not the run.
The rounds are interleaved: in each round every implementation runs once, in turn, so a noisy
stretch of a shared host hits all of them; each cell is the median of `--runs` rounds. The
figures are measured here and now; nothing is hard-coded.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import queue
import socket
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

WORKLOADS = ("pure", "imbalanced", "cpumixed", "spawn", "pingpong", "fanout", "select", "echo")
PEERS = ("asyncio", "threads", "pyroutine", "mt_asyncio", "tonio", "runloom")
# Import name -> PyPI distribution, for the "not installed" note.
PYPI = {"pyroutine": "pyroutine-rt", "mt_asyncio": "mt-asyncio", "tonio": "tonio", "runloom": "runloom"}

GS = 64  # goroutines in pure and imbalanced
WORK = 8_000  # loop iterations per slice: a slice is long next to a yield, short next to a run
SLICES = 40  # slices per G; GS x SLICES x WORK iterations is seconds of work on one core
FANOUT_CONSUMERS = 8
MSG = b"x" * 64

# (unit, higher_is_better) per workload
UNITS: dict[str, tuple[str, bool]] = {
    "pure": ("s", False),
    "imbalanced": ("s", False),
    "cpumixed": ("s", False),
    "spawn": ("tasks/s", True),
    "pingpong": ("round trips/s", True),
    "fanout": ("items/s", True),
    "select": ("items/s", True),
    "echo": ("round trips/s", True),
}


def sizes(quick: bool, scale: float) -> dict[str, int]:
    """sizes gives each workload's size; --quick makes every one tiny, --scale multiplies them."""
    base = {
        "slices": SLICES,
        "jobs": 64,
        "spawn": 100_000,
        "pingpong": 20_000,
        "fanout": 200_000,
        "select": 100_000,
        "clients": 100,
        "rounds": 200,
    }
    if quick:
        base = {
            "slices": 2,
            "jobs": 8,
            "spawn": 5_000,
            "pingpong": 2_000,
            "fanout": 10_000,
            "select": 5_000,
            "clients": 20,
            "rounds": 20,
        }
    out = {k: max(2, round(v * scale)) for k, v in base.items()}
    out["clients"] = base["clients"]  # --scale shortens the echo by its rounds, not its client count
    out["select"] -= out["select"] % 4
    return out


# --- the work inside a slice ---


def crunch(n: int) -> int:
    """crunch is the pure-Python arithmetic of one slice: no allocation beyond small ints, no shared
    object touched, so two threads running it contend for nothing but the cores."""
    x = 0
    for i in range(n):
        x += i * i & 0xFF
    return x


def first_chunk(slices: int) -> int:
    """first_chunk: how many slices' worth an imbalanced G computes before its first yield."""
    return slices // 2


# ===================== mn_runtime =====================


def mn_pure(workers: int, sz: dict[str, int], imbalanced: bool) -> float:
    import mn_runtime as mn

    slices = sz["slices"]
    head = first_chunk(slices) if imbalanced else 0

    async def g() -> None:
        if head:
            crunch(WORK * head)
            await mn.gosched()
        for _ in range(slices - head):
            crunch(WORK)
            await mn.gosched()

    async def main() -> None:
        hs = [mn.go(g) for _ in range(GS)]
        for h in hs:
            await h.join()

    t = time.perf_counter()
    mn.run(main, procs=workers)
    return time.perf_counter() - t


def mn_echo(workers: int, sz: dict[str, int]) -> tuple[float, dict[str, Any]]:
    from . import net

    dt, lat = net.run_mn(sz["clients"], sz["rounds"], workers, mpoll=True)
    return _echo_result(dt, lat, sz)


def _echo_result(dt: float, lat: list[float], sz: dict[str, int]) -> tuple[float, dict[str, Any]]:
    from . import net

    if len(lat) != sz["clients"] * sz["rounds"]:
        raise RuntimeError(f"echo: {len(lat)} round trips recorded, {sz['clients'] * sz['rounds']} expected")
    p50, p99 = net._pct(lat)
    return sz["clients"] * sz["rounds"] / dt, {"p50_ms": round(p50, 3), "p99_ms": round(p99, 3)}


def run_mn(workload: str, workers: int, sz: dict[str, int]) -> tuple[float, dict[str, Any]]:
    from . import chan, core

    if workload in ("pure", "imbalanced"):
        return mn_pure(workers, sz, workload == "imbalanced"), {}
    if workload == "cpumixed":
        return core.mn_jobs(sz["jobs"], workers), {}
    if workload == "spawn":
        return core.mn_spawn(sz["spawn"], workers), {}
    if workload == "pingpong":
        return chan.mn_pingpong(sz["pingpong"], workers), {}
    if workload == "fanout":
        counts: list[int] = []
        r = chan.mn_fanout(sz["fanout"], workers, counts)
        return r, {"per_consumer": counts}
    if workload == "select":
        return chan.mn_select(sz["select"], workers), {}
    if workload == "echo":
        return mn_echo(workers, sz)
    raise ValueError(f"unknown workload {workload!r}")


# ===================== stdlib asyncio and mt_asyncio =====================
# The same code runs on both: mt_asyncio's compat mode (mt_asyncio.asyncio.compat.install(), with
# the process runtime sized first by mt_asyncio.runtime(threads=N)) points the stdlib `asyncio`
# names at its own loop, the way its docs show for code written against `import asyncio`.


def aio_pure(sz: dict[str, int], imbalanced: bool) -> float:
    import asyncio

    slices = sz["slices"]
    head = first_chunk(slices) if imbalanced else 0

    async def g() -> None:
        if head:
            crunch(WORK * head)
            await asyncio.sleep(0)
        for _ in range(slices - head):
            crunch(WORK)
            await asyncio.sleep(0)

    async def main() -> None:
        ts = [asyncio.ensure_future(g()) for _ in range(GS)]
        for t in ts:
            await t

    t = time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - t


def aio_select(n: int) -> float:
    """aio_select: one task waits on a get() of each of 4 queues with asyncio.wait(FIRST_COMPLETED)
    and re-arms the get of a queue that still has items to come (counted per queue, so a getter is
    neither missing for a queue with items nor left waiting on a finished one)."""
    import asyncio

    per = n // 4

    async def main() -> float:
        qs: list[asyncio.Queue[int]] = [asyncio.Queue(16) for _ in range(4)]

        async def producer(q: asyncio.Queue[int]) -> None:
            for i in range(per):
                await q.put(i)

        prods = [asyncio.ensure_future(producer(q)) for q in qs]
        owed = [per] * 4
        getters: dict[asyncio.Future[int], int] = {asyncio.ensure_future(q.get()): k for k, q in enumerate(qs)}
        t = time.perf_counter()
        while getters:
            done, _ = await asyncio.wait(getters, return_when=asyncio.FIRST_COMPLETED)
            for f in done:
                k = getters.pop(f)
                owed[k] -= 1
                if owed[k]:
                    getters[asyncio.ensure_future(qs[k].get())] = k
        r = per * 4 / (time.perf_counter() - t)
        await asyncio.gather(*prods)
        return r

    return asyncio.run(main())


def run_aio(workload: str, workers: int, sz: dict[str, int]) -> tuple[float, dict[str, Any]]:
    from . import chan, core, net

    if workload in ("pure", "imbalanced"):
        return aio_pure(sz, workload == "imbalanced"), {}
    if workload == "cpumixed":
        return core.asyncio_jobs(sz["jobs"], 2), {}
    if workload == "spawn":
        return core.asyncio_spawn(sz["spawn"]), {}
    if workload == "pingpong":
        return chan.asyncio_pingpong(sz["pingpong"]), {}
    if workload == "fanout":
        counts: list[int] = []
        r = chan.asyncio_fanout(sz["fanout"], counts)
        return r, {"per_consumer": counts}
    if workload == "select":
        return aio_select(sz["select"]), {}
    if workload == "echo":
        dt, lat = net.run_asyncio(sz["clients"], sz["rounds"], False)
        return _echo_result(dt, lat, sz)
    raise ValueError(f"unknown workload {workload!r}")


# ===================== plain threads =====================


def threads_pure(workers: int, sz: dict[str, int], imbalanced: bool) -> float:
    """The 64 tasks on a pool of `workers` threads; a task runs to its end (a yield between slices
    has nothing to hand over to), so imbalanced is the same work in a different cut."""
    slices = sz["slices"]
    head = first_chunk(slices) if imbalanced else 0

    def g() -> None:
        if head:
            crunch(WORK * head)
        for _ in range(slices - head):
            crunch(WORK)

    t = time.perf_counter()
    with ThreadPoolExecutor(workers) as ex:
        for f in [ex.submit(g) for _ in range(GS)]:
            f.result()
    return time.perf_counter() - t


def threads_jobs(workers: int, jobs: int) -> float:
    from .core import _hash4, _pywork

    def job() -> None:
        _hash4()
        time.sleep(0.001)
        _pywork()

    t = time.perf_counter()
    with ThreadPoolExecutor(workers) as ex:
        for f in [ex.submit(job) for _ in range(jobs)]:
            f.result()
    return time.perf_counter() - t


def threads_spawn(n: int) -> float:
    """A thread per task, started then joined; a twentieth of the tasks of the others (starting a
    thread costs tens of microseconds, and milliseconds on a loaded host), reported per second."""
    n = max(100, n // 20)
    t = time.perf_counter()
    ts = [threading.Thread(target=int) for _ in range(n)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    return n / (time.perf_counter() - t)


def threads_pingpong(n: int) -> float:
    a: queue.Queue[int] = queue.Queue(1)
    b: queue.Queue[int] = queue.Queue(1)

    def pong() -> None:
        for _ in range(n):
            b.put(a.get())

    th = threading.Thread(target=pong)
    th.start()
    t = time.perf_counter()
    for i in range(n):
        a.put(i)
        b.get()
    r = n / (time.perf_counter() - t)
    th.join()
    return r


def threads_fanout(n: int) -> tuple[float, list[int]]:
    q: queue.Queue[int | None] = queue.Queue(128)
    got = [0] * FANOUT_CONSUMERS

    def consumer(k: int) -> None:
        m = 0
        while q.get() is not None:
            m += 1
        got[k] = m

    ts = [threading.Thread(target=consumer, args=(k,)) for k in range(FANOUT_CONSUMERS)]
    for th in ts:
        th.start()
    t = time.perf_counter()
    for i in range(n):
        q.put(i)
    for _ in ts:
        q.put(None)
    for th in ts:
        th.join()
    return n / (time.perf_counter() - t), got


def run_threads(workload: str, workers: int, sz: dict[str, int]) -> tuple[float, dict[str, Any]]:
    from . import net

    if workload in ("pure", "imbalanced"):
        return threads_pure(workers, sz, workload == "imbalanced"), {}
    if workload == "cpumixed":
        return threads_jobs(workers, sz["jobs"]), {}
    if workload == "spawn":
        return threads_spawn(sz["spawn"]), {}
    if workload == "pingpong":
        return threads_pingpong(sz["pingpong"]), {}
    if workload == "fanout":
        r, counts = threads_fanout(sz["fanout"])
        return r, {"per_consumer": counts}
    if workload == "echo":
        dt, lat = net.run_threads(sz["clients"], sz["rounds"])
        return _echo_result(dt, lat, sz)
    raise NotApplicable(workload)


def job_parts(workload: str) -> tuple[Callable[[], bytes], Callable[[], int]]:
    """job_parts: core's two halves of a CPU-mixed job, for a peer's runner to import before
    its runtime starts (not inside a fiber on a small stack). Importing core imports
    mn_runtime, so a peer's process imports it for the CPU-mixed jobs only; the other workloads
    get stand-ins they never call."""
    if workload != "cpumixed":
        return bytes, int
    from .core import _hash4, _pywork

    return _hash4, _pywork


# ===================== pyroutine (pyroutine-rt) =====================
# Greenlet-backed tasks on `set_max_procs(n)` worker threads; blocking-style code, no async/await.
# The whole run is one root task spawned from the main thread and joined there.


def run_pyroutine(workload: str, workers: int, sz: dict[str, int]) -> tuple[float, dict[str, Any]]:
    import pyroutine as pr

    hash4, pywork = job_parts(workload)
    pr.set_max_procs(workers)
    out: dict[str, Any] = {}

    def pure(imbalanced: bool) -> None:
        slices = sz["slices"]
        head = first_chunk(slices) if imbalanced else 0

        def g() -> None:
            if head:
                crunch(WORK * head)
                pr.yield_()
            for _ in range(slices - head):
                crunch(WORK)
                pr.yield_()

        pr.gather(*[pr.spawn(g) for _ in range(GS)])

    def jobs() -> None:
        def job() -> None:
            pr.run_blocking(hash4)
            pr.sleep(0.001)
            pywork()

        pr.gather(*[pr.spawn(job) for _ in range(sz["jobs"])])

    def spawn() -> None:
        ts = [pr.spawn(int) for _ in range(sz["spawn"])]
        for t in ts:
            t.join()

    def pingpong() -> None:
        n = sz["pingpong"]
        a, b = pr.Queue(1), pr.Queue(1)

        def pong() -> None:
            for _ in range(n):
                b.put(a.get())

        p = pr.spawn(pong)
        t = time.perf_counter()
        for i in range(n):
            a.put(i)
            b.get()
        out["rate"] = n / (time.perf_counter() - t)
        p.join()

    def fanout() -> None:
        n = sz["fanout"]
        q = pr.Queue(128)
        got = [0] * FANOUT_CONSUMERS

        def consumer(k: int) -> None:
            m = 0
            while q.get() is not None:
                m += 1
            got[k] = m

        cs = [pr.spawn(consumer, k) for k in range(FANOUT_CONSUMERS)]
        t = time.perf_counter()
        for i in range(n):
            q.put(i)
        for _ in cs:
            q.put(None)
        pr.gather(*cs)
        out["rate"] = n / (time.perf_counter() - t)
        out["per_consumer"] = got

    def echo() -> None:
        clients, rounds = sz["clients"], sz["rounds"]
        ln = pr.Socket()
        ln.bind(("127.0.0.1", 0))
        ln.listen(4096)
        port = ln.getsockname()[1]
        ready, start = pr.Queue(), pr.Queue()
        lat: list[float] = []
        lat_lock = threading.Lock()

        def handler(c: Any) -> None:
            ready.put(1)
            with c:
                while d := c.recv(65536):
                    c.sendall(d)

        def server() -> None:
            for _ in range(clients):
                c, _ = ln.accept()
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                pr.spawn(handler, c)

        def client() -> None:
            c = pr.Socket()
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.connect(("127.0.0.1", port))
            ready.put(1)
            start.get()
            mine: list[float] = []
            with c:
                for _ in range(rounds):
                    t = time.perf_counter()
                    c.sendall(MSG)
                    n = 0
                    while n < 64:
                        n += len(c.recv(64 - n))
                    mine.append(time.perf_counter() - t)
            with lat_lock:
                lat.extend(mine)

        srv = pr.spawn(server)
        cs = [pr.spawn(client) for _ in range(clients)]
        for _ in range(2 * clients):
            ready.get()
        t0 = time.perf_counter()
        for _ in range(clients):
            start.put(1)
        pr.gather(*cs)
        dt = time.perf_counter() - t0
        srv.join()
        ln.close()
        out["dt"], out["lat"] = dt, lat

    bodies: dict[str, Callable[[], None]] = {
        "pure": lambda: pure(False),
        "imbalanced": lambda: pure(True),
        "cpumixed": jobs,
        "spawn": spawn,
        "pingpong": pingpong,
        "fanout": fanout,
        "echo": echo,
    }
    if workload not in bodies:
        raise NotApplicable(workload)
    t = time.perf_counter()
    root = pr.spawn(bodies[workload])
    root.result()
    dt = time.perf_counter() - t
    return _result(workload, sz, dt, out)


def _result(workload: str, sz: dict[str, int], dt: float, out: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """_result turns a whole run's time dt (and what the body measured itself, in out) into the
    workload's figure."""
    if workload in ("pure", "imbalanced", "cpumixed"):
        return dt, {}
    if workload == "spawn":
        return sz["spawn"] / dt, {}
    if workload == "echo":
        return _echo_result(out["dt"], out["lat"], sz)
    extra = {"per_consumer": out["per_consumer"]} if "per_consumer" in out else {}
    return out["rate"], extra


# ===================== tonio (its async/await flavour, tonio.colored) =====================
# tonio.colored.run(coro, threads=n) once per process; spawn() schedules coroutines and returns an
# awaitable for their results; bounded channels; SocketStream/SocketListener for TCP.


def run_tonio(workload: str, workers: int, sz: dict[str, int]) -> tuple[float, dict[str, Any]]:
    import tonio.colored as tonio
    from tonio.colored.net import open_tcp_listeners, open_tcp_stream
    from tonio.colored.sync import channel

    hash4, pywork = job_parts(workload)
    out: dict[str, Any] = {}

    async def pure(imbalanced: bool) -> None:
        slices = sz["slices"]
        head = first_chunk(slices) if imbalanced else 0

        async def g() -> None:
            if head:
                crunch(WORK * head)
                await tonio.yield_now()
            for _ in range(slices - head):
                crunch(WORK)
                await tonio.yield_now()

        await tonio.spawn(*[g() for _ in range(GS)])

    async def jobs() -> None:
        async def job() -> None:
            await tonio.spawn_blocking(hash4)
            await tonio.sleep(0.001)
            pywork()

        await tonio.spawn(*[job() for _ in range(sz["jobs"])])

    async def nothing() -> None:
        return None

    async def spawn() -> None:
        await tonio.spawn(*[nothing() for _ in range(sz["spawn"])])

    async def pingpong() -> None:
        n = sz["pingpong"]
        a_tx, a_rx = channel.channel(1)
        b_tx, b_rx = channel.channel(1)

        async def pong() -> None:
            for _ in range(n):
                await b_tx.send(await a_rx.receive())

        p = tonio.spawn(pong())
        t = time.perf_counter()
        for i in range(n):
            await a_tx.send(i)
            await b_rx.receive()
        out["rate"] = n / (time.perf_counter() - t)
        await p

    async def fanout() -> None:
        n = sz["fanout"]
        tx, rx = channel.channel(128)
        got = [0] * FANOUT_CONSUMERS

        async def consumer(k: int) -> None:
            m = 0
            while True:
                try:
                    await rx.receive()
                except BrokenPipeError:  # closed and drained
                    break
                m += 1
            got[k] = m

        cs = tonio.spawn(*[consumer(k) for k in range(FANOUT_CONSUMERS)])
        t = time.perf_counter()
        for i in range(n):
            await tx.send(i)
        tx.close()
        await cs
        out["rate"] = n / (time.perf_counter() - t)
        out["per_consumer"] = got

    async def echo() -> None:
        clients, rounds = sz["clients"], sz["rounds"]
        (ln,) = await open_tcp_listeners(0, host="127.0.0.1", backlog=4096)
        port = ln.socket.getsockname()[1]
        lock = threading.Lock()
        left = [2 * clients]
        all_ready, start = tonio.Event(), tonio.Event()
        lat: list[float] = []

        def ready() -> None:
            with lock:
                left[0] -= 1
                if not left[0]:
                    all_ready.set()

        async def handler(s: Any) -> None:
            ready()
            while d := await s.receive_some(65536):
                await s.send_all(d)
            s.close()

        async def server() -> None:
            for _ in range(clients):
                tonio.spawn(handler(await ln.accept()))

        async def client() -> None:
            s = await open_tcp_stream("127.0.0.1", port)
            ready()
            await start.wait()
            mine: list[float] = []
            for _ in range(rounds):
                t = time.perf_counter()
                await s.send_all(MSG)
                n = 0
                while n < 64:
                    n += len(await s.receive_some(64 - n))
                mine.append(time.perf_counter() - t)
            s.close()
            with lock:
                lat.extend(mine)

        srv = tonio.spawn(server())
        cs = tonio.spawn(*[client() for _ in range(clients)])
        await all_ready.wait()
        t0 = time.perf_counter()
        start.set()
        await cs
        out["dt"], out["lat"] = time.perf_counter() - t0, lat
        await srv
        ln.close()

    bodies: dict[str, Callable[[], Any]] = {
        "pure": lambda: pure(False),
        "imbalanced": lambda: pure(True),
        "cpumixed": jobs,
        "spawn": spawn,
        "pingpong": pingpong,
        "fanout": fanout,
        "echo": echo,
    }
    if workload not in bodies:
        raise NotApplicable(workload)
    t = time.perf_counter()
    tonio.run(bodies[workload](), threads=workers)
    return _result(workload, sz, time.perf_counter() - t, out)


# ===================== runloom =====================
# runloom.run(n, main): n=1 is its single-thread scheduler, n>1 its M:N hubs; run returns when
# every fiber has finished. Blocking-style code: Chan(capacity), select, runloom.sync sockets.


def run_runloom(workload: str, workers: int, sz: dict[str, int]) -> tuple[float, dict[str, Any]]:
    import runloom
    import runloom.sync as rsync

    hash4, pywork = job_parts(workload)
    out: dict[str, Any] = {}

    def pure(imbalanced: bool) -> None:
        slices = sz["slices"]
        head = first_chunk(slices) if imbalanced else 0

        def g() -> None:
            if head:
                crunch(WORK * head)
                runloom.yield_now()
            for _ in range(slices - head):
                crunch(WORK)
                runloom.yield_now()

        for _ in range(GS):
            runloom.fiber(g)

    def jobs() -> None:
        def job() -> None:
            runloom.blocking(hash4)
            runloom.sleep(0.001)
            pywork()

        for _ in range(sz["jobs"]):
            runloom.fiber(job)

    def nothing() -> None:
        return None

    def spawn() -> None:
        for _ in range(sz["spawn"]):
            runloom.fiber(nothing)

    def pingpong() -> None:
        n = sz["pingpong"]
        a, b = runloom.Chan(0), runloom.Chan(0)

        def pong() -> None:
            for _ in range(n):
                b.send(a.recv()[0])

        runloom.fiber(pong)
        t = time.perf_counter()
        for i in range(n):
            a.send(i)
            b.recv()
        out["rate"] = n / (time.perf_counter() - t)

    def fanout() -> None:
        n = sz["fanout"]
        c = runloom.Chan(128)
        got = [0] * FANOUT_CONSUMERS
        wg = runloom.WaitGroup()

        def consumer(k: int) -> None:
            m = 0
            for _ in c:
                m += 1
            got[k] = m
            wg.done()

        wg.add(FANOUT_CONSUMERS)
        for k in range(FANOUT_CONSUMERS):
            runloom.fiber(consumer, k)
        t = time.perf_counter()
        for i in range(n):
            c.send(i)
        c.close()
        wg.wait()
        out["rate"] = n / (time.perf_counter() - t)
        out["per_consumer"] = got

    def select() -> None:
        per = sz["select"] // 4
        cs = [runloom.Chan(16) for _ in range(4)]

        def producer(c: Any) -> None:
            for i in range(per):
                c.send(i)

        for c in cs:
            runloom.fiber(producer, c)
        cases = [("recv", c) for c in cs]
        t = time.perf_counter()
        for _ in range(per * 4):
            runloom.select(cases)
        out["rate"] = per * 4 / (time.perf_counter() - t)

    def echo() -> None:
        clients, rounds = sz["clients"], sz["rounds"]
        ln = rsync.tcp_listen("127.0.0.1", 0, backlog=4096)
        port = ln.getsockname()[1]
        ready, done = runloom.WaitGroup(), runloom.WaitGroup()
        ready.add(2 * clients)
        done.add(clients)
        start = runloom.Chan(0)  # closed to let every client go at once
        lat: list[float] = []
        lat_lock = threading.Lock()

        def handler(c: Any) -> None:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            ready.done()
            while d := c.recv(65536):
                c.sendall(d)
            c.close()

        def server() -> None:
            for _ in range(clients):
                c, _ = ln.accept()
                runloom.fiber(handler, c)

        def client() -> None:
            c = rsync.tcp_connect("127.0.0.1", port)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            ready.done()
            start.recv()
            mine: list[float] = []
            for _ in range(rounds):
                t = time.perf_counter()
                c.sendall(MSG)
                n = 0
                while n < 64:
                    n += len(c.recv(64 - n))
                mine.append(time.perf_counter() - t)
            c.close()
            with lat_lock:
                lat.extend(mine)
            done.done()

        runloom.fiber(server)
        for _ in range(clients):
            runloom.fiber(client)
        ready.wait()
        t0 = time.perf_counter()
        start.close()
        done.wait()
        out["dt"], out["lat"] = time.perf_counter() - t0, lat
        ln.close()

    bodies: dict[str, Callable[[], None]] = {
        "pure": lambda: pure(False),
        "imbalanced": lambda: pure(True),
        "cpumixed": jobs,
        "spawn": spawn,
        "pingpong": pingpong,
        "fanout": fanout,
        "select": select,
        "echo": echo,
    }
    t = time.perf_counter()
    runloom.run(workers, bodies[workload])
    return _result(workload, sz, time.perf_counter() - t, out)


# ===================== one measurement (child process) =====================


class NotApplicable(Exception):
    """NotApplicable: the implementation's API has no way to express the workload."""


# Why a workload is n/a for an implementation (its API has no way to express it).
NA: dict[tuple[str, str], str] = {
    ("threads", "select"): "no select over queue.Queue in the stdlib",
    ("pyroutine", "select"): "no select in pyroutine 0.1 (on its roadmap)",
    ("tonio", "select"): "tonio.select races coroutines and cancels the losers; a bounded channel's "
    "receive is not cancel-safe",
}
# What an implementation without a worker knob runs on (shown in its 2-worker column).
SINGLE: dict[str, str] = {
    "asyncio": "one loop thread",
    "threads": "a thread per task",
    "sequential": "one thread",
}
# threads has a worker knob (a pool) for these: the tasks there are jobs, not connections or channels
THREADS_POOLED = ("pure", "imbalanced", "cpumixed")

RUNNERS: dict[str, Callable[[str, int, dict[str, int]], tuple[float, dict[str, Any]]]] = {
    "mn": run_mn,
    "asyncio": run_aio,
    "mt_asyncio": run_aio,
    "threads": run_threads,
    "pyroutine": run_pyroutine,
    "tonio": run_tonio,
    "runloom": run_runloom,
}


def gil_enabled() -> bool:
    """gil_enabled: sys._is_gil_enabled() where the build has it (3.13+); a build without it has the GIL."""
    f = getattr(sys, "_is_gil_enabled", None)
    return True if f is None else bool(f())


def one(impl: str, workload: str, workers: int, sz: dict[str, int]) -> dict[str, Any]:
    """one measurement, in this (fresh) process: the figure, and whether the GIL was enabled once
    the implementation was imported and once it had run."""
    if impl == "sequential":
        from .core import seq_jobs

        return {"value": seq_jobs(sz["jobs"]), "extra": {}, "gil_import": gil_enabled(), "gil_end": gil_enabled()}
    if impl == "mt_asyncio":
        import mt_asyncio
        import mt_asyncio.asyncio as masyncio

        masyncio.compat.install()
        mt_asyncio.runtime(threads=workers, context=True)
    elif impl == "mn":
        import mn_runtime  # noqa: F401
    elif impl in PYPI:
        importlib.import_module(impl)
    gil_import = gil_enabled()
    value, extra = RUNNERS[impl](workload, workers, sz)
    return {"value": value, "extra": extra, "gil_import": gil_import, "gil_end": gil_enabled()}


# ===================== driver (parent process) =====================


def installed(impl: str) -> bool:
    return impl not in PYPI or importlib.util.find_spec(impl) is not None


def settings(impl: str, workload: str) -> list[int]:
    """The worker counts impl is measured at for workload: 1 and 2 where it has a knob."""
    if impl in ("asyncio", "sequential") or (impl == "threads" and workload not in THREADS_POOLED):
        return [1]
    return [1, 2]


def measure(
    impl: str, workload: str, workers: int, sz: dict[str, int], timeout: float
) -> tuple[dict[str, Any] | None, str]:
    """measure runs one cell in a fresh interpreter; returns (result, "") or (None, why it failed)."""
    cmd = [sys.executable, "-m", "stress.benchmarks.ft", "--one", impl, workload, str(workers), json.dumps(sz)]
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or [f"exit status {p.returncode}"])[-1]
        return None, f"exit {p.returncode}: {last[:160]}"
    lines = p.stdout.strip().splitlines()
    if not lines:
        return None, "no output"
    res = json.loads(lines[-1])
    if res.get("na"):
        return None, "n/a: " + res["na"]
    return res, ""


def fmt(v: float, unit: str) -> str:
    return f"{v:.3f} s" if unit == "s" else f"{v:,.0f}/s"


def ratio(ours: float, theirs: float, higher_better: bool) -> float:
    """ratio > 1 means ours is better (faster, or a higher rate)."""
    return ours / theirs if higher_better else theirs / ours


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="interleaved rounds; each cell is their median")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every workload's size")
    ap.add_argument("--only", default=",".join(WORKLOADS), help="workloads, comma-separated")
    ap.add_argument("--peers", default=",".join(PEERS), help="peers, comma-separated (mn_runtime always runs)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    ap.add_argument("--timeout", type=float, default=0, help="seconds per measurement (default 120, quick 60)")
    ap.add_argument("--one", nargs=4, metavar=("IMPL", "WORKLOAD", "WORKERS", "SIZES"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        impl, workload, workers, sz = a.one[0], a.one[1], int(a.one[2]), json.loads(a.one[3])
        # The child ends with os._exit: once the figure (or the error) is out, no runtime's
        # leftover threads or exit hooks may hold the parent up until its timeout.
        try:
            res = one(impl, workload, workers, sz)
        except NotApplicable:
            res = {"na": NA.get((impl, workload), "not supported")}
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)
        print(json.dumps(res), flush=True)
        os._exit(0)

    if a.runs < 1:
        ap.error("--runs must be >= 1")
    if not a.scale > 0:
        ap.error("--scale must be > 0")
    only = [w for w in a.only.split(",") if w]
    bad = [w for w in only if w not in WORKLOADS]
    if bad:
        ap.error(f"unknown workload(s) {bad}; choose from {', '.join(WORKLOADS)}")
    peers = [p for p in a.peers.split(",") if p]
    bad = [p for p in peers if p not in PEERS]
    if bad:
        ap.error(f"unknown peer(s) {bad}; choose from {', '.join(PEERS)}")
    sz = sizes(a.quick, a.scale)
    timeout = a.timeout or (60.0 if a.quick else 120.0)
    impls = ["mn", *peers]
    missing = [p for p in peers if not installed(p)]
    present = [i for i in impls if i not in missing]
    print(
        f"python {sys.version.split()[0]}, GIL enabled: {gil_enabled()}, {os.cpu_count()} CPUs, "
        f"{a.runs} interleaved round(s), sizes {sz}",
        flush=True,
    )
    for p in missing:
        print(f"{p}: not installed (pip install {PYPI[p]})", flush=True)

    # results[(impl, workload, workers)] -> list of figures; failures -> first reason
    results: dict[tuple[str, str, int], list[float]] = {}
    extras: dict[tuple[str, str, int], dict[str, Any]] = {}
    failed: dict[tuple[str, str, int], str] = {}
    gil: dict[str, set[tuple[bool, bool]]] = {}
    t_all = time.perf_counter()
    for workload in only:
        cells = [
            (impl, workload, w)
            for impl in ([*present, "sequential"] if workload == "cpumixed" else present)
            for w in settings(impl, workload)
            if (impl, workload) not in NA
        ]
        for r in range(a.runs):
            for cell in cells:
                if cell in failed:
                    continue
                res, why = measure(*cell, sz, timeout)
                if res is None:
                    failed[cell] = why
                    print(f"  {cell[0]} {workload} workers={cell[2]}: {why}", flush=True)
                    continue
                results.setdefault(cell, []).append(res["value"])
                extras[cell] = res["extra"]
                gil.setdefault(cell[0], set()).add((res["gil_import"], res["gil_end"]))
            print(f"{workload}: round {r + 1}/{a.runs} done, {time.perf_counter() - t_all:.0f} s so far", flush=True)

    med = {k: statistics.median(v) for k, v in results.items()}
    print()
    print(
        f"python {sys.version.split()[0]} (GIL enabled: {gil_enabled()}), {os.cpu_count()} CPUs, "
        f"median of {a.runs} interleaved round(s), {time.perf_counter() - t_all:.0f} s in all\n"
    )
    if missing:
        print("Not installed (not in the table): " + ", ".join(f"{p} (pip install {PYPI[p]})" for p in missing) + "\n")
    print("| workload | implementation | 1 worker | 2 workers | 2 vs 1 | mn procs=2 vs it |")
    print("|---|---|---:|---:|---:|---:|")
    notes: list[str] = []
    for workload in only:
        unit, hb = UNITS[workload]
        title = {
            "pure": f"pure-Python, {GS} Gs x {sz['slices']} slices",
            "imbalanced": f"imbalanced, {GS} Gs from one G",
            "cpumixed": f"CPU-mixed, {sz['jobs']} jobs",
            "spawn": f"spawn {sz['spawn']:,}",
            "pingpong": f"ping-pong {sz['pingpong']:,}",
            "fanout": f"fan-out 1->{FANOUT_CONSUMERS}, {sz['fanout']:,} items",
            "select": f"select over 4, {sz['select']:,} items",
            "echo": f"echo {sz['clients']} clients x {sz['rounds']}",
        }[workload]
        mn2 = med.get(("mn", workload, 2))
        rows = [*impls, "sequential"] if workload == "cpumixed" else impls
        first = True
        for impl in rows:
            name = {"mn": "mn_runtime (procs)", "pyroutine": "pyroutine-rt"}.get(impl, impl)
            cols: list[str] = []
            if impl in missing:
                continue  # listed once, above the table
            if (impl, workload) in NA:
                cols = [f"n/a ({NA[(impl, workload)]})", "", "", ""]
            else:
                ws = settings(impl, workload)
                vals: list[float | None] = []
                for w in (1, 2):
                    cell = (impl, workload, w)
                    if w not in ws:
                        cols.append(f"- ({SINGLE.get(impl, 'no knob')})" if w == 2 else "-")
                        vals.append(None)
                    elif cell in med:
                        cols.append(fmt(med[cell], unit))
                        vals.append(med[cell])
                    else:
                        cols.append(f"failed: {failed.get(cell, 'no result')}")
                        vals.append(None)
                v1, v2 = vals
                cols.append(f"{ratio(v2, v1, hb):.2f}x" if v1 is not None and v2 is not None else "")
                peer = v2 if v2 is not None else v1
                if impl == "sequential" and mn2 is not None and peer is not None:
                    cols.append(f"{ratio(mn2, peer, hb):.2f}x (speed-up)")
                elif impl != "mn" and mn2 is not None and peer is not None:
                    cols.append(f"{ratio(mn2, peer, hb):.2f}x")
                else:
                    cols.append("")
                for w in ws:
                    ex = extras.get((impl, workload, w))
                    if ex:
                        notes.append(f"{title}, {name}, {w} worker(s): {ex}")
            print(f"| {title if first else ''} | {name} | " + " | ".join(cols) + " |")
            first = False

    def get(impl: str, workload: str, w: int) -> float | None:
        return med.get((impl, workload, w))

    print("\nTargets (free-threaded build, procs=2 on a 2-core machine; measured above, not asserted):")
    if a.quick:
        print("(--quick: the sizes are too small for these to say anything; a smoke run checks the plumbing)")
    checks: list[tuple[str, float | None, float]] = []
    for workload, target in (("pure", 1.9), ("imbalanced", 1.85)):
        m1, m2 = get("mn", workload, 1), get("mn", workload, 2)
        checks.append(
            (f"{workload}: procs=2 speed-up over procs=1 >= {target}x", m1 / m2 if m1 and m2 else None, target)
        )
    seq, m2 = get("sequential", "cpumixed", 1), get("mn", "cpumixed", 2)
    checks.append(("cpumixed: procs=2 speed-up over sequential >= 1.9x", seq / m2 if seq and m2 else None, 1.9))
    for workload in ("spawn", "pingpong", "fanout", "select", "echo"):
        m1, m2 = get("mn", workload, 1), get("mn", workload, 2)
        checks.append((f"{workload}: procs=2 no slower than procs=1", m2 / m1 if m1 and m2 else None, 1.0))
    m2 = get("mn", "spawn", 2)
    checks.append(("spawn: procs=2 at least 300,000 tasks/s (ratio to 300k)", m2 / 300_000 if m2 else None, 1.0))
    for workload, peer in (("pingpong", "tonio"), ("echo", "threads")):
        m2 = get("mn", workload, 2)
        p = get(peer, workload, 2) or get(peer, workload, 1)
        checks.append((f"{workload}: procs=2 ahead of {peer}", m2 / p if m2 and p else None, 1.0))
    for what, val, target in checks:
        if val is not None:  # (a workload left out by --only, or a cell that failed, has no line)
            print(f"- {what}: {val:.2f}x -> {'met' if val >= target else 'NOT met'}")

    print("\nBest peer per workload (any setting) against mn_runtime's better procs setting:")
    for workload in only:
        unit, hb = UNITS[workload]
        peer_cells = [(k, v) for k, v in med.items() if k[1] == workload and k[0] not in ("mn", "sequential")]
        ours = [v for k, v in med.items() if k[0] == "mn" and k[1] == workload]
        if not peer_cells or not ours:
            continue
        pick = max if hb else min
        (bi, _, bw), bv = pick(peer_cells, key=lambda kv: kv[1])
        mv = pick(ours)
        print(
            f"- {workload}: {bi} at {bw} worker(s) {fmt(bv, unit)}; mn_runtime {fmt(mv, unit)}, "
            f"{ratio(mv, bv, hb):.2f}x"
        )

    print("\nGIL enabled (after import, after the run), per implementation:")
    for impl in impls:
        if impl in gil:
            print(f"- {impl}: {sorted(gil[impl], key=str)}")
    if notes:
        print("\nNotes:")
        for n in notes:
            print(f"- {n}")


if __name__ == "__main__":
    main()
