"""netpoll: thousands of loopback connections with random early closes, resets and deadlines."""

from __future__ import annotations

import socket
import struct
import time

import mn_runtime as mn
from mn_runtime import net
from stress.report import Ctx

NAME = "netpoll"
DOC = "netpoll storm: 1000s of loopback conns, random closes/resets/deadlines; echoes exact, no fd left"
CONNS = 2000
BATCH = 250  # connections open at once


async def serve(c: net.Conn) -> None:
    try:
        while True:
            data = await c.read(65536)
            if not data:
                break
            await c.write(data)
    except (OSError, net.ClosedError):
        pass  # the client reset or closed: expected in this scenario
    finally:
        c.close()


async def acceptor(ln: net.Listener) -> int:
    n = 0
    while True:
        try:
            c = await ln.accept()
        except net.ClosedError:
            return n
        n += 1
        mn.go(serve, c)


async def client(ctx: Ctx, addr: object, k: int, kind: int) -> str:
    c = await net.dial("tcp", addr)
    try:
        if kind == 0:  # echo round trips, content checked
            for r in range(3):
                msg = f"{k}:{r}:".encode() * (1 + (k + r) % 50)
                await c.write(msg)
                got = b""
                while len(got) < len(msg):
                    chunk = await c.read(len(msg) - len(got))
                    if not chunk:
                        break
                    got += chunk
                ctx.check(got == msg, f"conn {k}: echo mismatch ({len(got)} of {len(msg)} bytes)")
            return "echo"
        if kind == 1:  # a read deadline with nothing to read: i/o timeout, then the conn still works
            c.set_read_deadline(time.monotonic() + 0.01)
            try:
                await c.read(10)
                ctx.check(False, f"conn {k}: read past its deadline returned")
            except net.DeadlineExceeded:
                pass
            c.set_read_deadline(None)
            await c.write(b"ok")
            ctx.check(await c.read(2) == b"ok", f"conn {k}: no echo after a deadline was cleared")
            return "deadline"
        if kind == 2:  # a reset: SO_LINGER 0 makes close send RST
            c._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await c.write(b"x" * 100)
            return "reset"
        return "close"  # kind 3: close at once, nothing sent
    finally:
        c.close()


async def main(ctx: Ctx) -> None:
    ln = net.listen("tcp", "127.0.0.1:0")
    addr = ln.local_addr if hasattr(ln, "local_addr") else ln._sock.getsockname()
    acc = mn.go(acceptor, ln)
    kinds: dict[str, int] = {}
    done = 0
    while done < CONNS and (not ctx.expired() or done == 0):
        gs = [mn.go(client, ctx, addr, done + i, ctx.rng.randrange(4)) for i in range(BATCH)]
        for g in gs:
            k = await g.join()
            kinds[k] = kinds.get(k, 0) + 1
        done += BATCH
        ctx.add(BATCH)
    ln.close()
    accepted = await acc.join()
    ctx.check(accepted == done, f"netpoll: {done} dials but {accepted} accepts")
    # Server goroutines end once their peer is gone; give them a bounded moment.
    end = time.monotonic() + 5.0
    while mn.num_goroutine() > 1 and time.monotonic() < end:
        await mn.sleep(0.01)
    ctx.note("conns", done)
    ctx.note("kinds", "/".join(f"{k}:{v}" for k, v in sorted(kinds.items())))
