"""Lock acquisitions per operation, and which locks two Ms contend for (lock checking's counters).

    python -m stress.benchmarks.locks [--n 20000] [--procs 1,2]

Runs each operation N times under MN_DEBUG=lockcheck=1, where every runtime lock made through
`_rt/lock.new` (and every G's lock) is a CheckedLock that counts its acquisitions and the ones
that had to wait (mn_runtime/_rt/lock.py, lock_stats). Prints, per operation and procs, the
acquisitions per operation of each lock and the share of them that were contended. The counts are
exact; the contention shares depend on timing (lock checking slows every acquisition, which
widens the windows), so read them as "which lock", not "how much".

Operations:
  pingpong   one round trip between two Gs over two unbuffered channels
  buffered   one send and one receive on a buffered channel (no park)
  spawn      go() of a trivial G plus its join
  gosched    one gosched in each of 8 Gs (run queue put and get)
  fdpark     one socket read that parks in the netpoller until another G writes
  ... x2     two copies of the operation in parallel, half the operations each: where two Ms
             contend (a global lock on a hot path shows here at procs=2)
Locks that are plain threading.Locks (an M's park note, sync.py's object locks) are not counted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable

import mn_runtime as mn
from mn_runtime._rt import lock as _lock


async def _pingpong(n: int) -> None:
    a: mn.Chan[int] = mn.Chan()
    b: mn.Chan[int] = mn.Chan()

    async def pong() -> None:
        for _ in range(n):
            await b.send(await a.recv())

    g = mn.go(pong)
    for i in range(n):
        await a.send(i)
        await b.recv()
    await g.join()


async def _buffered(n: int) -> None:
    c: mn.Chan[int] = mn.Chan(1)
    for i in range(n):
        await c.send(i)
        await c.recv()


async def _nothing() -> None:
    return None


async def _spawn(n: int) -> None:
    for _ in range(n):
        await mn.go(_nothing).join()


async def _gosched(n: int) -> None:
    async def yielder(k: int) -> None:
        for _ in range(k):
            await mn.gosched()

    k = max(1, n // 8)
    gs = [mn.go(yielder, k) for _ in range(8)]
    for g in gs:
        await g.join()


async def _fdpark(n: int) -> None:
    import socket

    a, b = socket.socketpair()
    ra = mn.net.Conn(a)
    wb = mn.net.Conn(b)
    go_on: mn.Chan[None] = mn.Chan()

    async def writer() -> None:
        for _ in range(n):
            await go_on.recv()
            await mn.gosched()  # let the reader park first
            await wb.write(b"x")

    g = mn.go(writer)
    buf = bytearray(1)
    try:
        for _ in range(n):
            await go_on.send(None)
            await ra.readinto(buf)
        await g.join()
    finally:
        ra.close()
        wb.close()


def _twice(fn: Callable[[int], Awaitable[None]]) -> Callable[[int], Awaitable[None]]:
    """_twice: two copies of fn, n/2 operations each, in parallel (what two Ms contend on)."""

    async def both(n: int) -> None:
        gs = [mn.go(fn, max(1, n // 2)) for _ in range(2)]
        for g in gs:
            await g.join()

    return both


OPS: dict[str, tuple[Callable[[int], Awaitable[None]], int]] = {
    "pingpong": (_pingpong, 1),
    "buffered": (_buffered, 1),
    "spawn": (_spawn, 1),
    "gosched": (_gosched, 1),
    "fdpark": (_fdpark, 5),  # fewer: each round trip costs a write and a wake-up
    "pingpong x2": (_twice(_pingpong), 1),
    "spawn x2": (_twice(_spawn), 1),
    "gosched x2": (_twice(_gosched), 1),
}


def measure(op: str, n: int, procs: int) -> dict[str, tuple[float, float]]:
    """measure runs op n times at procs under lock checking; {lock: (per op, contended share)}."""
    fn, div = OPS[op]
    n = max(1, n // div)

    async def main() -> dict[str, tuple[int, int]]:
        await fn(max(1, n // 10))  # warm-up: channels, sudogs and Ms exist before counting
        _lock.lock_stats(reset=True)
        await fn(n)
        return _lock.lock_stats()

    old = os.environ.get("MN_DEBUG")
    os.environ["MN_DEBUG"] = "lockcheck=1"
    _lock.count_locks(True)
    try:
        counts = mn.run(main, procs=procs)
    finally:
        _lock.count_locks(False)
        if old is None:
            del os.environ["MN_DEBUG"]
        else:
            os.environ["MN_DEBUG"] = old
    return {name: (a / n, (c / a if a else 0.0)) for name, (a, c) in sorted(counts.items()) if a}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m stress.benchmarks.locks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20000, help="operations per measurement (default 20000)")
    ap.add_argument("--procs", default="1,2", help="comma-separated procs values (default 1,2)")
    ap.add_argument("--only", default="", help="comma-separated operations (default: all)")
    a = ap.parse_args(argv)
    ops = [o for o in a.only.split(",") if o] or list(OPS)
    procs = [int(x) for x in a.procs.split(",")]
    gil = "GIL enabled" if getattr(sys, "_is_gil_enabled", lambda: True)() else "free-threaded"
    print(f"lock acquisitions per operation ({sys.version.split()[0]}, {gil}, n={a.n})\n")
    print("| operation | procs | total per op | lock: per op (contended) |")
    print("|---|---|---|---|")
    for op in ops:
        for p in procs:
            r = measure(op, a.n, p)
            total = sum(v for v, _ in r.values())
            cells = ", ".join(f"{name} {v:.2f} ({c:.0%})" for name, (v, c) in r.items() if v >= 0.005)
            print(f"| {op} | {p} | {total:.2f} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
