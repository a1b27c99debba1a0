"""select: goroutines selecting over random sets of send and receive cases while the channels
are closed mid-flight; every value sent is received exactly once."""

from __future__ import annotations

import mn_runtime as mn
from stress.report import Ctx

NAME = "select"
DOC = "select storm: random Send/Recv case sets, channels closed mid-flight; nothing lost or duplicated"
NCHAN = 8
NSEND = 12
NRECV = 12


async def sender(ctx: Ctx, chans: list[mn.Chan[int]], k: int) -> list[int]:
    rng = ctx.rng.__class__(ctx.seed * 1000 + k)
    live = list(range(len(chans)))
    sent: list[int] = []
    n = 0
    while live:
        pick = rng.sample(live, min(len(live), rng.randrange(1, 4)))
        v = (k << 32) | n
        n += 1
        try:
            await mn.select(*[mn.Send(chans[c], v) for c in pick])
        except mn.ChannelClosed:
            # Some chosen channel is closed: drop the closed ones (their close is final).
            live = [c for c in live if not chans[c].stats().get("closed", False)]
            continue
        sent.append(v)
    return sent


async def receiver(ctx: Ctx, chans: list[mn.Chan[int]], k: int) -> list[int]:
    rng = ctx.rng.__class__(ctx.seed * 1000 + 500 + k)
    live = list(range(len(chans)))
    got: list[int] = []
    while live:
        pick = rng.sample(live, min(len(live), rng.randrange(1, 5)))
        i, v, ok = await mn.select(*[mn.Recv(chans[c]) for c in pick])
        if ok:
            got.append(v)
        else:
            live.remove(pick[i])
    return got


async def closer(ctx: Ctx, chans: list[mn.Chan[int]]) -> None:
    order = list(range(len(chans)))
    ctx.rng.shuffle(order)
    for c in order:
        # Close one channel at a time over the run, while senders and receivers are mid-select.
        await mn.sleep(max(0.0, ctx.left() / (len(order) + 1)))
        chans[c].close()


async def main(ctx: Ctx) -> None:
    chans: list[mn.Chan[int]] = [mn.Chan(ctx.rng.choice((0, 0, 1, 4))) for _ in range(NCHAN)]
    ss = [mn.go(sender, ctx, chans, k) for k in range(NSEND)]
    rs = [mn.go(receiver, ctx, chans, k) for k in range(NRECV)]
    cl = mn.go(closer, ctx, chans)
    sent = [v for g in ss for v in await g.join()]
    got = [v for g in rs for v in await g.join()]
    await cl.join()
    ctx.check(len(got) == len(set(got)), f"select: {len(got) - len(set(got))} values received twice")
    ctx.check(sorted(sent) == sorted(got), f"select: sent {len(sent)} values, received {len(got)}")
    ctx.add(len(got))
