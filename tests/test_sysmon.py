"""sysmon's pacing: how often the monitor thread wakes, counted in its ticks (no timing of speed).

Under the GIL every tick of sysmon takes the GIL from the Ms and from the threads that complete
futures, so how often it wakes is behaviour, not a detail: it ticks every 20 us only while a
syscall or a retake gives it something to do, backs off to 10 ms, and sleeps deeply once every P
has been idle for a whole tick. A P that goes busy again wakes it out of the deep sleep without
bringing back the short tick (Go's sysmon resets its delay only on a syscall's wake).
"""

from __future__ import annotations

import concurrent.futures as cf
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import mn_runtime as mn
from mn_runtime._rt import sysmon as _sysmon
from mn_runtime._rt import tls as _tls


def _sysmon_now() -> _sysmon.Sysmon:
    s = _tls.cur
    assert s is not None
    return s.sysmon


def _completer(q: queue.SimpleQueue[cf.Future[int] | None], delay: float) -> None:
    while (f := q.get()) is not None:
        time.sleep(delay)
        f.set_result(1)


async def _waits(q: queue.SimpleQueue[cf.Future[int] | None], n: int) -> int:
    """_waits: n waits on futures the completer finishes, while a goroutine waits on a listener
    (so an M out of work waits in epoll keeping its P, and the P counts as running)."""
    ln = mn.net.listen("tcp", "127.0.0.1:0")
    acceptor = mn.go(ln.accept)
    got = 0
    for _ in range(n):
        f: cf.Future[int] = cf.Future()
        q.put(f)
        got += await mn.wait_future(f)
    c = await mn.net.dial("tcp", f"127.0.0.1:{ln.addr[1]}")
    with c, await acceptor.join(), ln:
        return got


def _with_completer(main: Callable[[queue.SimpleQueue[cf.Future[int] | None]], Any], procs: int) -> Any:
    q: queue.SimpleQueue[cf.Future[int] | None] = queue.SimpleQueue()
    t = threading.Thread(target=_completer, args=(q, 0.012))
    t.start()
    try:
        return mn.run(main(q), procs=procs)
    finally:
        q.put(None)
        t.join()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", [1, 2])
def test_ps_going_idle_between_waits_do_not_bring_back_the_short_tick(procs: int) -> None:
    """Two goroutines wait, 20 times each, on futures a plain thread completes 12 ms later, while
    another waits on a listener: around every wait the last M out of work waits in epoll keeping
    its P (a running P) for 10 ms (findrunnable.MPOLL_BLOCK), then gives it up (every P idle)
    until the future's goready. When acquirep's wake reset sysmon's delay to 20 us (as a
    syscall's wake does), each wait cost about 60 ticks (thousands in all); now sysmon keeps its
    backed-off pace (bounded here by the back-off from the run's start, about 60 ticks, plus one
    tick per 5 ms)."""

    async def main(q: queue.SimpleQueue[cf.Future[int] | None]) -> tuple[int, int, float]:
        sm = _sysmon_now()
        ticks0, t0 = sm.ticks, time.monotonic()
        gs = [mn.go(_waits, q, 20) for _ in range(2)]
        total = 0
        for g in gs:
            total += await g.join()
        return total, sm.ticks - ticks0, time.monotonic() - t0

    total, ticks, elapsed = _with_completer(main, procs)
    assert total == 40
    assert ticks <= 70 + elapsed / 5e-3, f"{ticks} sysmon ticks in {elapsed:.3f} s"


@pytest.mark.timeout(60)
def test_idle_run_puts_sysmon_to_deep_sleep() -> None:
    """Every P idle, nothing scheduled for a whole tick: sysmon sleeps deeply (up to a second)
    rather than ticking every 10 ms through a quarter-second sleep."""

    async def main() -> int:
        await mn.sleep(0.05)
        sm = _sysmon_now()
        ticks0 = sm.ticks
        await mn.sleep(0.25)
        return sm.ticks - ticks0

    # 25 at the 10 ms pace; deep after the first quiet tick (the timer's wake-up is a schedule,
    # so a tick or two may pass before the quiet one).
    assert mn.run(main, procs=1) <= 6


@pytest.mark.timeout(60)
def test_syscall_wake_brings_back_the_short_tick() -> None:
    """After sysmon backed off to its 10 ms pace (the waits above), a syscall's wake resets it to
    the 20 us tick (Go's syscallWake), so a P held by a syscall is seen, and retaken, soon."""

    async def main(q: queue.SimpleQueue[cf.Future[int] | None]) -> tuple[float, float]:
        sm = _sysmon_now()
        await _waits(q, 20)
        before = sm.delay
        await mn.syscall(time.sleep, 0.02)
        return before, sm.delay

    before, after = _with_completer(main, 1)
    assert before == _sysmon.MAX_DELAY
    assert after == _sysmon.MIN_DELAY
