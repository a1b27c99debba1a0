"""chan: many producers and consumers on shared channels; every value arrives exactly once."""

from __future__ import annotations

import mn_runtime as mn
from stress.report import Ctx

NAME = "chan"
DOC = "channel storm: many producers/consumers, buffered and unbuffered; exact count and checksum"
CHUNK = 256


async def producer(ctx: Ctx, ch: mn.Chan[int], base: int) -> tuple[int, int]:
    n = s = 0
    while not ctx.expired():
        for i in range(CHUNK):
            v = base + n + i
            await ch.send(v)
            s += v * v
        n += CHUNK
    return n, s


async def consumer(ch: mn.Chan[int]) -> tuple[int, int]:
    n = s = 0
    async for v in ch:
        n += 1
        s += v * v
    return n, s


async def one(ctx: Ctx, cap: int, np: int, nc: int) -> None:
    ch: mn.Chan[int] = mn.Chan(cap)
    ps = [mn.go(producer, ctx, ch, k << 40) for k in range(np)]
    cs = [mn.go(consumer, ch) for _ in range(nc)]
    sent = [await g.join() for g in ps]
    ch.close()
    got = [await g.join() for g in cs]
    ns, ss = sum(x[0] for x in sent), sum(x[1] for x in sent)
    nr, sr = sum(x[0] for x in got), sum(x[1] for x in got)
    ctx.check(ns == nr, f"chan cap={cap}: sent {ns} values, received {nr}")
    ctx.check(ss == sr, f"chan cap={cap}: checksum of received values differs from sent")
    ctx.add(nr)


async def main(ctx: Ctx) -> None:
    # Three channels at once: unbuffered, small and large buffers, with uneven producer/consumer counts.
    gs = [mn.go(one, ctx, 0, 8, 3), mn.go(one, ctx, 4, 3, 9), mn.go(one, ctx, 1024, 16, 16)]
    for g in gs:
        await g.join()
