"""Virtual time: run(main, clock="virtual") starts the clock at 0 and moves it only when every
goroutine is blocked and a timer is the next thing that can wake one; then it jumps there.
Hours of sleeps take milliseconds, in the order real time gives; deadlock detection still works;
real sockets mix with it; with procs=1 and a chaos seed two runs are the same run."""

from __future__ import annotations

import math
import threading
import time

import pytest

import mn_runtime as mn
from mn_runtime import context as mnctx
from mn_runtime._rt import chaos as rtchaos

pytestmark = pytest.mark.concurrency


def _sleepers(scale: float, lk: threading.Lock, out: list[int], steps: int = 3) -> object:
    """_sleepers: 12 goroutines each sleep a different multiple of scale in `steps` steps, then
    report; main waits for all and returns the total virtual (or real) time it took."""

    async def sleeper(i: int, wg: mn.WaitGroup) -> None:
        d = ((i * 7) % 12 + 1) * scale  # a permutation of 1..12 times scale
        for _ in range(steps):
            await mn.sleep(d / steps)
        with lk:
            out.append(i)
        wg.done()

    async def main() -> float:
        t0 = mn.now()
        wg = mn.WaitGroup()
        wg.add(12)
        for i in range(12):
            mn.go(sleeper, i, wg)
        await wg.wait()
        return mn.since(t0)

    return main


def test_an_hour_of_sleeps_takes_milliseconds(procs: int, switchinterval: float) -> None:
    lk = threading.Lock()
    out: list[int] = []
    t0 = time.monotonic()
    elapsed = mn.run(_sleepers(300.0, lk, out), procs=procs, clock="virtual")
    real = time.monotonic() - t0
    assert elapsed == pytest.approx(3600.0)  # the longest sleeper: 12 * 300 s
    assert real < 5.0
    assert out == sorted(range(12), key=lambda i: (i * 7) % 12)


def test_same_order_as_real_time() -> None:
    """The same program, in real time (scaled down) and virtual time (scaled up): same order.
    (One sleep each: at procs=1 timers fire, and their Gs run, in deadline order however late the
    loaded machine wakes them, so the real-time order is exact too.)"""
    lk = threading.Lock()
    real_out: list[int] = []
    virt_out: list[int] = []
    mn.run(_sleepers(0.02, lk, real_out, steps=1), procs=1)
    mn.run(_sleepers(1000.0, lk, virt_out, steps=1), procs=1, clock="virtual")
    assert real_out == virt_out == sorted(range(12), key=lambda i: (i * 7) % 12)


def test_timeouts_and_timers(procs: int) -> None:
    async def main() -> list[object]:
        out: list[object] = []
        never: mn.Chan[int] = mn.Chan()
        t0 = mn.now()
        idx, _, _ = await mn.select(mn.Recv(never), mn.Recv(mn.after(5.0)))
        out.append((idx, mn.since(t0)))
        t = mn.Timer(10.0)
        assert t.stop() is True
        t.reset(2.5)
        fired = await t.c.recv()
        out.append(fired - t0)
        out.append(mn.now() - t0)
        await mn.sleep(0)  # a yield, not a wait: the clock stays
        out.append(mn.now() - t0)
        return out

    assert mn.run(main, procs=procs, clock="virtual") == [(1, 5.0), 7.5, 7.5, 7.5]


def test_ticker_ticks_exactly(procs: int) -> None:
    async def main() -> list[float]:
        t0 = mn.now()
        tk = mn.Ticker(0.25)
        stamps = [await tk.c.recv() - t0 for _ in range(8)]
        tk.stop()
        c = mn.tick(60.0)
        stamps.append(await c.recv() - t0)
        return stamps

    assert mn.run(main, procs=procs, clock="virtual") == [0.25 * k for k in range(1, 9)] + [62.0]


def test_context_deadline_program(procs: int, switchinterval: float) -> None:
    """A worker polls once a second until its 30 s context expires: 29 polls, at virtual 30 s."""

    async def worker(ctx: mnctx.Context, res: mn.Chan[tuple[int, float]]) -> None:
        t0 = mn.now()
        n = 0
        while True:
            idx, _, _ = await mn.select(mn.Recv(ctx.done()), mn.Recv(mn.after(1.0)))
            if idx == 0:
                break
            n += 1
        await res.send((n, mn.since(t0)))

    async def main() -> tuple[int, float, bool]:
        ctx, cancel = mnctx.with_timeout(mnctx.background(), 30.0)
        res: mn.Chan[tuple[int, float]] = mn.Chan()
        mn.go(worker, ctx, res)
        n, took = await res.recv()
        err = ctx.err()
        cancel()
        return n, took, err is mnctx.DeadlineExceeded or isinstance(err, mnctx.DeadlineExceeded)

    t0 = time.monotonic()
    assert mn.run(main, procs=procs, clock="virtual") == (29, 30.0, True)
    assert time.monotonic() - t0 < 5.0


def test_deadlock_still_detected(procs: int) -> None:
    """Blocked with no timer left is a deadlock, not an endless jump: here after the timers ran
    out, and with sleep(inf), which arms none."""

    async def main() -> None:
        ch: mn.Chan[int] = mn.Chan()
        await mn.sleep(100.0)
        await ch.recv()

    t0 = time.monotonic()
    with pytest.raises(mn.Deadlock):
        mn.run(main, procs=procs, clock="virtual")

    async def main2() -> None:
        await mn.sleep(math.inf)

    with pytest.raises(mn.Deadlock, match="sleep"):
        mn.run(main2, procs=procs, clock="virtual")
    assert time.monotonic() - t0 < 5.0


def test_loopback_socket_with_timers(procs: int) -> None:
    """Real fds and virtual timers: a read deadline expires at virtual 5 s while the server
    sleeps 10 virtual seconds before it answers; a listener blocked in accept() forever does not
    stop the clock from moving while the rest wait on timers."""

    async def server(ln: mn.net.Listener) -> None:
        conn = await ln.accept()
        await mn.sleep(10.0)
        await conn.write(b"late")
        assert await conn.read(10) == b""
        conn.close()

    async def idle_listener(ln: mn.net.Listener) -> None:
        try:
            await ln.accept()  # nobody ever connects
        except mn.net.ClosedError:
            pass

    async def main() -> list[object]:
        out: list[object] = []
        ln = mn.net.listen("tcp", "127.0.0.1:0")
        idle = mn.net.listen("tcp", "127.0.0.1:0")
        mn.go(server, ln)
        mn.go(idle_listener, idle)
        t0 = mn.now()
        conn = await mn.net.dial("tcp", ln.addr, timeout=1.0)
        conn.set_read_timeout(5.0)
        with pytest.raises(mn.net.DeadlineExceeded):
            await conn.read(10)
        out.append(mn.since(t0))
        conn.set_read_deadline(t0 + 20.0)
        out.append(await conn.read(10))
        out.append(mn.since(t0))
        tk = mn.Ticker(3600.0)
        for _ in range(24):  # a day of hourly ticks with two fds waited on
            await tk.c.recv()
        tk.stop()
        out.append(mn.since(t0))
        conn.close()
        ln.close()
        idle.close()
        return out

    t0 = time.monotonic()
    out = mn.run(main, procs=procs, clock="virtual")
    assert out[0] == 5.0 and out[1] == b"late" and out[2] == 10.0
    assert out[3] == 10.0 + 24 * 3600.0
    assert time.monotonic() - t0 < 10.0


def test_syscall_holds_the_clock() -> None:
    """The clock does not jump while a goroutine is inside mn.syscall: the 1 s (virtual) sleeper
    wakes only after the 0.1 s (real) blocking call returned."""
    lk = threading.Lock()
    state = {"done": False}

    def blocking() -> None:
        time.sleep(0.1)
        with lk:
            state["done"] = True

    async def caller(wg: mn.WaitGroup) -> None:
        await mn.syscall(blocking)
        wg.done()

    async def main() -> tuple[bool, float]:
        wg = mn.WaitGroup()
        wg.add(1)
        mn.go(caller, wg)
        t0 = mn.now()
        await mn.sleep(1.0)
        with lk:
            seen = state["done"]
        await wg.wait()
        return seen, mn.since(t0)

    assert mn.run(main, procs=2, clock="virtual") == (True, 1.0)


def _chaotic() -> object:
    """_chaotic: producers, consumers and timers mixed, with a result that records the order."""

    async def producer(i: int, ch: mn.Chan[tuple[int, int]]) -> None:
        for k in range(6):
            await mn.sleep(0.5 * ((i + k) % 3))
            await ch.send((i, k))

    async def main() -> tuple[list[tuple[int, int]], float]:
        ch: mn.Chan[tuple[int, int]] = mn.Chan(2)
        for i in range(4):
            mn.go(producer, i, ch)
        got = []
        tk = mn.Ticker(0.7)
        while len(got) < 24:
            idx, v, _ = await mn.select(mn.Recv(ch), mn.Recv(tk.c))
            if idx == 0:
                got.append(v)
            else:
                await mn.gosched()
        tk.stop()
        return got, mn.now()

    return main


def test_deterministic_with_chaos_seed() -> None:
    """procs=1, a chaos seed and virtual time: two runs switch goroutines in the same order
    (the chaos switch digest) and return the same result; another seed still gives a valid run."""
    runs = []
    for _ in range(2):
        res = mn.run(_chaotic(), procs=1, chaos=1234, clock="virtual")
        last = rtchaos.last
        assert last is not None
        runs.append((res, last.nswitch, last.digest))
    assert runs[0] == runs[1]
    assert runs[0][1] > 24
    got, _ = mn.run(_chaotic(), procs=1, chaos=99, clock="virtual")
    assert sorted(got) == sorted((i, k) for i in range(4) for k in range(6))


def test_virtual_clock_object() -> None:
    vc = mn.VirtualClock(start=100.0)

    async def main() -> float:
        await mn.sleep(50.0)
        await mn.after(0.5).recv()
        return mn.now()

    assert mn.run(main, procs=1, clock=vc) == 150.5
    assert vc.now() == 150.5 and vc.jumps == 2
    assert mn.run(main, procs=1, clock=vc) == 201.0  # the clock keeps its time between runs
    with pytest.raises(ValueError, match="clock must be"):
        mn.run(main, clock="fake")
    with pytest.raises(TypeError, match="clock must be"):
        mn.run(main, clock=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        mn.VirtualClock(start=math.nan)
    with pytest.raises(ValueError, match="io_grace"):
        mn.VirtualClock(io_grace=5)


def test_virtual_clock_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> float:
        await mn.sleep(7200.0)
        return mn.now()

    monkeypatch.setenv("MN_CLOCK", "virtual")
    assert mn.run(main, procs=1) == 7200.0
    monkeypatch.setenv("MN_CLOCK", "bogus")
    with pytest.raises(ValueError, match="MN_CLOCK"):
        mn.run(main, procs=1)


def test_io_grace_zero_still_moves() -> None:
    """io_grace=0: the clock jumps as soon as the poller found the fds quiet, once."""

    async def main() -> float:
        ln = mn.net.listen("tcp", "127.0.0.1:0")
        conn = await mn.net.dial("tcp", ln.addr)
        srv = await ln.accept()
        srv.set_read_timeout(30.0)
        with pytest.raises(mn.net.DeadlineExceeded):
            await srv.read(1)
        for x in (conn, srv, ln):
            x.close()
        return mn.now()

    vc = mn.VirtualClock(io_grace=0)
    assert mn.run(main, procs=2, clock=vc) == 30.0


@pytest.mark.parametrize("procs_", [1, 2, 4])
def test_chaos_and_virtual_time_at_any_procs(procs_: int) -> None:
    """Chaos perturbations with virtual time stay correct at every procs (replayable at 1 only);
    timers already due when set (after(0), a past deadline) fire without a jump."""

    async def main() -> tuple[list[tuple[int, int]], float]:
        got, end = await _chaotic()()  # type: ignore[operator]
        t = mn.now()
        await mn.after(0).recv()
        ctx, _ = mnctx.with_deadline(mnctx.background(), t - 1)
        await ctx.done().recv_ok()
        assert mn.now() == t
        return got, end

    got, end = mn.run(main, procs=procs_, chaos=7, clock="virtual")
    assert sorted(got) == sorted((i, k) for i in range(4) for k in range(6))
    assert end > 0
