"""spawn: a storm of short goroutines (up to 10^6), each of which must run exactly once."""

from __future__ import annotations

import mn_runtime as mn
from stress.report import Ctx

NAME = "spawn"
DOC = "spawn storm: up to 10^6 short goroutines, each runs exactly once (per-G slots, WaitGroup)"
TARGET = 1_000_000
BATCH = 10_000


async def child(hits: list[int], i: int, wg: mn.WaitGroup) -> None:
    hits[i] += 1  # slot i belongs to this G alone; a second run would show as 2
    wg.done()


async def spawner(ctx: Ctx, n: int) -> int:
    hits = [0] * n
    wg = mn.WaitGroup()
    wg.add(n)
    for i in range(n):
        mn.go(child, hits, i, wg)
    await wg.wait()
    ctx.check(sum(hits) == n and max(hits) == 1, f"spawn batch of {n}: {n - hits.count(1)} Gs ran != once")
    ctx.add(n)
    return n


async def main(ctx: Ctx) -> None:
    total = 0
    nsp = max(1, ctx.procs)
    while total < TARGET and not ctx.expired():
        gs = [mn.go(spawner, ctx, BATCH // nsp) for _ in range(nsp)]
        for g in gs:
            total += await g.join()
    ctx.note("goroutines", total)
