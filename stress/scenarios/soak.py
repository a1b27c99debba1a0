"""soak: CPU and I/O mixed for the whole budget: a channel pipeline, loopback echo, timers,
syscalls and CPU goroutines. Run it long (docs/stress.md) for the RSS-growth check."""

from __future__ import annotations

import hashlib
import time

import mn_runtime as mn
from mn_runtime import net
from stress.report import Ctx

NAME = "soak"
DOC = "mixed CPU+I/O soak: pipeline, loopback echo, timers, syscalls; with --seconds >= 10 RSS must not grow"


async def cpu(ctx: Ctx) -> None:
    while not ctx.expired():
        h = hashlib.sha256()
        for i in range(50):
            h.update(i.to_bytes(4, "little"))
        ctx.add(1)
        await mn.gosched()


async def pipeline(ctx: Ctx) -> None:
    a: mn.Chan[int] = mn.Chan(16)
    b: mn.Chan[int] = mn.Chan(16)

    async def src() -> int:
        n = 0
        while not ctx.expired():
            await a.send(n)
            n += 1
        a.close()
        return n

    async def stage() -> None:
        async for v in a:
            await b.send(v * 2)
        b.close()

    s = mn.go(src)
    mn.go(stage)
    total = cnt = 0
    async for v in b:
        total += v
        cnt += 1
    n = await s.join()
    ctx.check(cnt == n and total == n * (n - 1), f"soak pipeline: {cnt} of {n} values, sum {total}")
    ctx.add(cnt)


async def echo(ctx: Ctx) -> None:
    ln = net.listen("tcp", "127.0.0.1:0")
    addr = ln._sock.getsockname()

    async def server() -> None:
        c = await ln.accept()
        while data := await c.read(4096):
            await c.write(data)
        c.close()

    srv = mn.go(server)
    c = await net.dial("tcp", addr)
    n = 0
    while not ctx.expired():
        msg = str(n).encode() * 10
        await c.write(msg)
        got = b""
        while len(got) < len(msg):
            got += await c.read(len(msg) - len(got))
        ctx.check(got == msg, "soak echo mismatch")
        n += 1
    c.close()
    await srv.join()
    ln.close()
    ctx.add(n)


async def ticks(ctx: Ctx) -> None:
    while not ctx.expired():
        t0 = time.monotonic()
        await mn.sleep(0.003)
        ctx.check(time.monotonic() >= t0 + 0.003, "soak: a sleep woke early")
        await mn.syscall(time.sleep, 0.001)
        ctx.add(1)


async def main(ctx: Ctx) -> None:
    gs = [mn.go(cpu, ctx) for _ in range(ctx.procs)]
    gs += [mn.go(pipeline, ctx), mn.go(echo, ctx), mn.go(ticks, ctx), mn.go(ticks, ctx)]
    for g in gs:
        await g.join()
