"""Channel benchmarks against asyncio, uvloop and trio: same run, same machine, medians, ratios.

    python -m stress.benchmarks.chan [--runs 5] [--quick] [--only pingpong,fanout,select]

1. ping-pong: two Gs bounce a value over two unbuffered channels (round trips/s), mn at procs=1
   and procs=2, vs two asyncio tasks over asyncio.Queue(1) (plain loop and uvloop) and two trio
   tasks over memory channels of size 0.
2. fan-out: 1 producer, 8 consumers, capacity 128, 200k items (items/s, and how many items each
   consumer got) vs asyncio.Queue(128).
3. select: one G selects over 4 channels fed by 4 producers (received items/s) vs one asyncio
   task doing asyncio.wait(FIRST_COMPLETED) on a get() of each of 4 queues.

Every figure is measured in this run; each row is the median of `--runs` runs, the kinds of run
interleaved so that machine noise hits all of them alike.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable

import mn_runtime as mn

# --- 1. ping-pong ---


def mn_pingpong(n: int, procs: int) -> float:
    async def main() -> float:
        a: mn.Chan[int] = mn.Chan()
        b: mn.Chan[int] = mn.Chan()

        async def pong() -> None:
            for _ in range(n):
                await b.send(await a.recv())

        mn.go(pong)
        t = time.perf_counter()
        for i in range(n):
            await a.send(i)
            await b.recv()
        return n / (time.perf_counter() - t)

    return float(mn.run(main, procs=procs))


def asyncio_pingpong(n: int, loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None) -> float:
    async def main() -> float:
        a: asyncio.Queue[int] = asyncio.Queue(1)
        b: asyncio.Queue[int] = asyncio.Queue(1)

        async def pong() -> None:
            for _ in range(n):
                await b.put(await a.get())

        task = asyncio.ensure_future(pong())
        t = time.perf_counter()
        for i in range(n):
            await a.put(i)
            await b.get()
        r = n / (time.perf_counter() - t)
        await task
        return r

    if loop_factory is None:
        return asyncio.run(main())
    loop = loop_factory()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def uvloop_pingpong(n: int) -> float:
    import uvloop

    return asyncio_pingpong(n, uvloop.new_event_loop)


def trio_pingpong(n: int) -> float:
    import trio

    async def main() -> float:
        a_s, a_r = trio.open_memory_channel[int](0)
        b_s, b_r = trio.open_memory_channel[int](0)
        res = 0.0

        async def pong() -> None:
            for _ in range(n):
                await b_s.send(await a_r.receive())

        async def ping() -> None:
            nonlocal res
            t = time.perf_counter()
            for i in range(n):
                await a_s.send(i)
                await b_r.receive()
            res = n / (time.perf_counter() - t)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pong)
            nursery.start_soon(ping)
        return res

    return trio.run(main)


# --- 2. fan-out: 1 producer, 8 consumers ---


def mn_fanout(n: int, procs: int, counts: list[int]) -> float:
    async def main() -> tuple[float, list[int]]:
        c: mn.Chan[int] = mn.Chan(128)
        got = [0] * 8
        wg = mn.WaitGroup()

        async def consumer(k: int) -> None:
            m = 0
            async for _ in c:
                m += 1
            got[k] = m
            wg.done()

        wg.add(8)
        for k in range(8):
            mn.go(consumer, k)
        t = time.perf_counter()
        for i in range(n):
            await c.send(i)
        c.close()
        await wg.wait()
        return n / (time.perf_counter() - t), got

    rate, got = mn.run(main, procs=procs)
    counts[:] = got
    return float(rate)


def asyncio_fanout(n: int, counts: list[int]) -> float:
    async def main() -> tuple[float, list[int]]:
        q: asyncio.Queue[int | None] = asyncio.Queue(128)
        got = [0] * 8

        async def consumer(k: int) -> None:
            m = 0
            while (await q.get()) is not None:
                m += 1
            got[k] = m

        tasks = [asyncio.ensure_future(consumer(k)) for k in range(8)]
        t = time.perf_counter()
        for i in range(n):
            await q.put(i)
        for _ in range(8):
            await q.put(None)
        await asyncio.gather(*tasks)
        return n / (time.perf_counter() - t), got

    rate, got = asyncio.run(main())
    counts[:] = got
    return rate


# --- 3. select over 4 channels ---


def mn_select(n: int, procs: int) -> float:
    async def main() -> float:
        cs: list[mn.Chan[int]] = [mn.Chan(16) for _ in range(4)]

        async def producer(c: mn.Chan[int]) -> None:
            for i in range(n // 4):
                await c.send(i)

        for c in cs:
            mn.go(producer, c)
        cases = [mn.Recv(c) for c in cs]
        t = time.perf_counter()
        for _ in range(n // 4 * 4):
            await mn.select(*cases)
        return n / (time.perf_counter() - t)

    return float(mn.run(main, procs=procs))


def asyncio_select(n: int) -> float:
    async def main() -> float:
        qs: list[asyncio.Queue[int]] = [asyncio.Queue(16) for _ in range(4)]

        async def producer(q: asyncio.Queue[int]) -> None:
            for i in range(n // 4):
                await q.put(i)

        prods = [asyncio.ensure_future(producer(q)) for q in qs]
        getters: dict[asyncio.Future[int], int] = {asyncio.ensure_future(q.get()): k for k, q in enumerate(qs)}
        owed = [n // 4] * 4  # items each queue still owes: its getter is re-armed until none is left
        t = time.perf_counter()
        while getters:
            done, _ = await asyncio.wait(getters, return_when=asyncio.FIRST_COMPLETED)
            for f in done:
                k = getters.pop(f)
                owed[k] -= 1
                if owed[k]:
                    getters[asyncio.ensure_future(qs[k].get())] = k
        r = n / (time.perf_counter() - t)
        for f in getters:
            f.cancel()
        await asyncio.gather(*prods, return_exceptions=True)
        return r

    return asyncio.run(main())


# --- driver ---


def _median(fs: list[Callable[[], float]], runs: int) -> list[float]:
    res: list[list[float]] = [[] for _ in fs]
    for _ in range(runs):
        for i, f in enumerate(fs):
            res[i].append(f())
    return [statistics.median(r) for r in res]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument("--only", default="pingpong,fanout,select")
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    scale = 10 if args.quick else 1
    rows: list[tuple[str, float, str]] = []

    if "pingpong" in only:
        n = 20_000 // scale
        fs: list[tuple[str, Callable[[], float]]] = [
            ("mn procs=1", lambda: mn_pingpong(n, 1)),
            ("mn procs=2", lambda: mn_pingpong(n, 2)),
            ("asyncio Queue(1)", lambda: asyncio_pingpong(n)),
        ]
        for name, mod in (("uvloop Queue(1)", "uvloop"), ("trio memory channel(0)", "trio")):
            try:
                __import__(mod)
            except ImportError:
                continue
            fs.append((name, (lambda: uvloop_pingpong(n)) if mod == "uvloop" else (lambda: trio_pingpong(n))))
        meds = _median([f for _, f in fs], args.runs)
        base = meds[2]
        for (name, _), m in zip(fs, meds, strict=True):
            rows.append((f"ping-pong {n} round trips: {name}", m, f"{m / base:.2f}x asyncio"))

    if "fanout" in only:
        n = 200_000 // scale
        c1: list[int] = []
        c2: list[int] = []
        ca: list[int] = []
        meds = _median(
            [lambda: mn_fanout(n, 1, c1), lambda: mn_fanout(n, 2, c2), lambda: asyncio_fanout(n, ca)], args.runs
        )
        for name, m, counts in (
            ("mn procs=1", meds[0], c1),
            ("mn procs=2", meds[1], c2),
            ("asyncio Queue(128)", meds[2], ca),
        ):
            rows.append(
                (f"fan-out 1->8 cap 128, {n} items: {name}", m, f"{m / meds[2]:.2f}x asyncio; per consumer {counts}")
            )

    if "select" in only:
        n = 100_000 // scale
        meds = _median([lambda: mn_select(n, 1), lambda: mn_select(n, 2), lambda: asyncio_select(n)], args.runs)
        for name, m in zip(("mn select procs=1", "mn select procs=2", "asyncio.wait on 4 gets"), meds, strict=True):
            rows.append((f"select over 4 channels, {n} items: {name}", m, f"{m / meds[2]:.2f}x asyncio"))

    print(f"python {sys.version.split()[0]}, runs={args.runs} (median)\n")
    print("| benchmark | ops/s | ratio |")
    print("|---|---:|---|")
    for name, m, ratio in rows:
        print(f"| {name} | {m:,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
