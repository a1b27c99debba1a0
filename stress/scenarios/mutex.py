"""mutex: contention on a Mutex (a non-atomic update across an await inside the critical section)
and on a Semaphore (never more holders than its weight allows)."""

from __future__ import annotations

import threading

import mn_runtime as mn
from stress.report import Ctx

NAME = "mutex"
DOC = "mutex/semaphore contention: exact counter across awaits; semaphore holders never over capacity"
WORKERS = 32
SEM_N = 3


class Shared:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()  # guards holders/peak: Gs on different Ms update them
        self.holders = 0
        self.peak = 0


async def locker(ctx: Ctx, mu: mn.Mutex, sh: Shared) -> int:
    n = 0
    while not ctx.expired():
        async with mu:
            v = sh.count
            if n % 3 == 0:
                await mn.gosched()  # a lost update would show if the mutex let anyone in now
            sh.count = v + 1
        n += 1
    return n


async def semholder(ctx: Ctx, sem: mn.Semaphore, sh: Shared) -> int:
    n = 0
    while not ctx.expired():
        await sem.acquire()
        with sh.lock:
            sh.holders += 1
            sh.peak = max(sh.peak, sh.holders)
        await mn.gosched()
        with sh.lock:
            sh.holders -= 1
        sem.release()
        n += 1
    return n


async def main(ctx: Ctx) -> None:
    mu = mn.Mutex()
    sem = mn.Semaphore(SEM_N)
    sh, sh2 = Shared(), Shared()
    ls = [mn.go(locker, ctx, mu, sh) for _ in range(WORKERS)]
    ss = [mn.go(semholder, ctx, sem, sh2) for _ in range(WORKERS)]
    nl = sum([await g.join() for g in ls])
    ns = sum([await g.join() for g in ss])
    ctx.check(sh.count == nl, f"mutex: counter {sh.count} after {nl} locked increments")
    ctx.check(sh2.peak <= SEM_N, f"semaphore({SEM_N}) had {sh2.peak} holders at once")
    ctx.check(sh2.holders == 0, f"semaphore: {sh2.holders} holders left")
    ctx.add(nl + ns)
