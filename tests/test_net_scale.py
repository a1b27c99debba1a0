"""2000 connections with random closes and deadlines: every goroutine finishes, every outcome is
the planned one, and no fd is left behind (psutil num_fds before and after run())."""

from __future__ import annotations

import collections
import random
import time

import psutil
import pytest

import mn_runtime as mn
from mn_runtime.net import ClosedError, DeadlineExceeded

N = 2000
IDLE = 1.5  # the server's idle deadline: a client that sends nothing for this long is dropped


@pytest.mark.parametrize("procs", [1, 4])
def test_2000_connections_random_closes_and_deadlines(procs: int) -> None:
    rng = random.Random(20240611)
    kinds = ["echo", "early", "idle", "parked", "deadline"]
    plan = [rng.choice(kinds) for _ in range(N)]
    proc = psutil.Process()
    fds_before = proc.num_fds()

    # Each handler returns its outcome and the server goroutine alone counts them: a Counter
    # updated by handlers on several Ms loses increments without the GIL.
    async def handler(c: mn.net.Conn) -> str:
        with c:
            while True:
                c.set_read_deadline(time.monotonic() + IDLE)
                try:
                    d = await c.read(4096)
                except DeadlineExceeded:
                    return "server-timeout"
                except ConnectionResetError:
                    return "server-reset"
                if not d:
                    return "server-eof"
                await c.write(d)

    async def server(ln: mn.net.Listener, stats: collections.Counter[str]) -> None:
        hs = []
        while True:
            try:
                c = await ln.accept()
            except ClosedError:
                break
            hs.append(mn.go(handler, c))
        for h in hs:
            stats[await h.join()] += 1

    async def client(addr: object, kind: str, i: int) -> str:
        c = await mn.net.dial("tcp", addr)
        if kind == "early":
            c.close()
            return kind
        if kind == "echo":
            with c:
                for r in range(3):
                    msg = b"%d/%d:" % (i, r) + bytes(64)
                    await c.write(msg)
                    got = b""
                    while len(got) < len(msg):
                        got += await c.read(len(msg) - len(got))
                    assert got == msg
            return kind
        if kind == "idle":
            with c:
                assert await c.read(10) == b""  # the server's idle deadline closes us
            return kind
        if kind == "parked":
            reader = mn.go(_read_expect_closed, c)
            await mn.sleep(0.05)
            c.close()
            return await reader.join()
        c.set_read_deadline(time.monotonic() + 0.1)
        try:
            await c.read(10)
        except DeadlineExceeded:
            c.close()
            return kind
        return "no deadline"

    async def main() -> tuple[collections.Counter[str], collections.Counter[str], int]:
        stats: collections.Counter[str] = collections.Counter()
        ln = mn.net.listen("tcp", "127.0.0.1:0")
        srv = mn.go(server, ln, stats)
        cs = [mn.go(client, ln.addr, k, i) for i, k in enumerate(plan)]
        outcomes: collections.Counter[str] = collections.Counter()
        for g in cs:
            outcomes[await g.join()] += 1
        ln.close()
        await srv.join()
        return outcomes, stats, mn.num_goroutine()

    outcomes, stats, left = mn.run(main, procs=procs)
    assert outcomes == collections.Counter(plan)
    assert left == 1
    assert stats["server-timeout"] == plan.count("idle")
    assert stats["server-eof"] + stats["server-reset"] == N - plan.count("idle")
    assert proc.num_fds() == fds_before


async def _read_expect_closed(c: mn.net.Conn) -> str:
    try:
        await c.read(10)
    except ClosedError:
        return "parked"
    return "read returned"
