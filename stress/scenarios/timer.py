"""timer: a storm of timers (10^5 per round): none fires early, they fire in deadline order, a
stopped one never fires; and sleeping goroutines never wake early."""

from __future__ import annotations

import itertools
import threading
import time

import mn_runtime as mn
from mn_runtime._rt import tls as _tls
from mn_runtime._rt.timers import Timer
from stress.report import Ctx

NAME = "timer"
DOC = "timer storm: 10^5 timers per round, none early, deadline order kept, stopped ones silent"
NTIMERS = 100_000
NSLEEPERS = 2_000
SPAN = 0.2  # deadlines spread over this many seconds


class Fired:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[int, float, float]] = []  # (id, when, fired at)

    def fire(self, arg: tuple[int, float]) -> None:
        now = time.monotonic()
        with self.lock:
            self.events.append((arg[0], arg[1], now))


async def sleeper(ctx: Ctx, d: float, early: list[float]) -> None:
    t0 = time.monotonic()
    await mn.sleep(d)
    if time.monotonic() < t0 + d:
        early.append(d)


async def one_round(ctx: Ctx, n: int) -> None:
    sched = _tls.cur
    assert sched is not None
    rng = ctx.rng
    fired = Fired()
    base = time.monotonic() + 0.005
    timers = []
    for i in range(n):
        when = base + rng.random() * SPAN
        t = Timer(fired.fire, (i, when))
        sched.timers.add(t, when)
        timers.append(t)
    added = time.monotonic()  # timers due before this may fire before later ones were even added
    stopped = set()
    for i in rng.sample(range(n), n // 10):
        if sched.timers.stop(timers[i]):
            stopped.add(i)
    early: list[float] = []
    gs = [mn.go(sleeper, ctx, rng.random() * SPAN, early) for _ in range(NSLEEPERS)]
    for g in gs:
        await g.join()
    want = n - len(stopped)
    end = time.monotonic() + SPAN + 5.0
    while len(fired.events) < want and time.monotonic() < end:
        await mn.sleep(0.01)
    with fired.lock:
        ev = list(fired.events)
    ctx.check(len(ev) == want, f"timer round: {len(ev)} fired, want {want}")
    ctx.check(not any(i in stopped for i, _, _ in ev), "a stopped timer fired")
    ctx.check(len({i for i, _, _ in ev}) == len(ev), "a timer fired twice")
    ctx.check(all(at >= when for _, when, at in ev), "a timer fired before its deadline")
    ctx.check(early == [], f"{len(early)} sleepers woke early")
    # Replay mode orders timers by a virtual clock (mn_runtime/_rt/chaos.py), not by deadline.
    if not (sched.chaos is not None and sched.chaos.replay):
        whens = [w for _, w, _ in ev if w >= added]
        ctx.check(all(a <= b for a, b in itertools.pairwise(whens)), "timers fired out of deadline order")
    ctx.add(len(ev) + len(gs))


async def main(ctx: Ctx) -> None:
    n = NTIMERS if ctx.seconds >= 3 else NTIMERS // 10
    rounds = 0
    while not ctx.expired() or rounds == 0:
        await one_round(ctx, n)
        rounds += 1
    ctx.note("rounds", rounds)
