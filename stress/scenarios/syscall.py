"""syscall: many goroutines in blocking calls at once; their Ps are handed off so CPU work goes on."""

from __future__ import annotations

import hashlib
import time

import mn_runtime as mn
from stress.report import Ctx

NAME = "syscall"
DOC = "syscall storm: blocking calls with P handoff; results exact, CPU Gs progress, Ms bounded"
BLOCKERS_PER_P = 4


def blocking(data: bytes) -> str:
    time.sleep(0.002)  # releases the GIL, as a real blocking call does
    return hashlib.sha256(data).hexdigest()


async def blocker(ctx: Ctx, k: int) -> int:
    n = 0
    while not ctx.expired():
        data = f"{k}:{n}".encode()
        got = await mn.syscall(blocking, data)
        ctx.check(got == hashlib.sha256(data).hexdigest(), f"syscall result for {data!r} is wrong")
        n += 1
        if n % 16 == 0:
            ctx.add(16)
    ctx.add(n % 16)
    return n


async def spinner(ctx: Ctx) -> int:
    n = 0
    while not ctx.expired():
        x = 0
        for i in range(2000):
            x += i
        n += 1
        await mn.gosched()
    return n


async def main(ctx: Ctx) -> None:
    nb = BLOCKERS_PER_P * ctx.procs
    bs = [mn.go(blocker, ctx, k) for k in range(nb)]
    ss = [mn.go(spinner, ctx) for _ in range(ctx.procs)]
    calls = sum([await g.join() for g in bs])
    spins = sum([await g.join() for g in ss])
    st = mn.stats()
    # Each M is either on a P or in a syscall: at most one per blocker plus one per P (+ slack for an
    # M between exitsyscall and its sleep).
    ctx.check(st["threads"] <= nb + ctx.procs + 2, f"{st['threads']} Ms for {nb} blockers and {ctx.procs} Ps")
    ctx.check(calls > 0, "no syscall completed")
    ctx.note("handoffs", st["handoffs"])
    ctx.note("spins", spins)
    ctx.note("Ms", st["threads"])
