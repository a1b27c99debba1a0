"""mn_runtime.time: every duration and deadline is valid (huge and infinite mean "never", NaN and
wrong types are refused with a clear error), wall-clock deadlines are caught, the relative
deadline form, and Go's helpers (tick, now, since, until)."""

from __future__ import annotations

import math
import threading
import time

import pytest

import mn_runtime as mn
from mn_runtime import context as mnctx
from mn_runtime._rt import timers as rttimers
from mn_runtime._rt.netpoll_epoll import _waitset

pytestmark = pytest.mark.concurrency

HUGE = (3e6, 1e12, 1e300, math.inf)  # 3e6 s is past epoll's ~24.8-day limit


# --- the checkers, without a runtime ---


def test_duration_checker() -> None:
    assert rttimers.duration("x", 1) == 1.0
    assert rttimers.duration("x", -2.5) == -2.5
    assert rttimers.duration("x", 3e6) == 3e6
    assert rttimers.duration("x", math.inf) is None
    assert rttimers.duration("x", rttimers.NEVER) is None
    with pytest.raises(ValueError, match="x got NaN seconds"):
        rttimers.duration("x", math.nan)
    for bad in ("1", None, True, [1]):
        with pytest.raises(TypeError, match="x needs a number of seconds"):
            rttimers.duration("x", bad)


def test_deadline_checker() -> None:
    now = time.monotonic()
    assert rttimers.deadline("d", now + 1, now) == now + 1
    assert rttimers.deadline("d", now - 5, now) == now - 5
    assert rttimers.deadline("d", -math.inf, now) == -math.inf
    assert rttimers.deadline("d", math.inf, now) is None
    assert rttimers.deadline("d", now + 2 * rttimers.NEVER, now) is None
    with pytest.raises(ValueError, match="NaN"):
        rttimers.deadline("d", math.nan, now)
    with pytest.raises(TypeError, match=r"d needs a deadline in time\.monotonic"):
        rttimers.deadline("d", "soon", now)
    with pytest.raises(ValueError, match=r"looks like time\.time\(\).*time\.monotonic\(\)"):
        rttimers.deadline("d", time.time() + 0.2, now)
    # A virtual clock starts at 0: a wall-clock deadline is caught there too.
    with pytest.raises(ValueError, match=r"time\.time\(\)"):
        rttimers.deadline("d", time.time(), 0.0)


def test_poller_clamps_epoll_timeout() -> None:
    """_waitset never hands epoll a timeout past its limit (it would raise OverflowError)."""
    import os
    import select

    ep = select.epoll()
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    try:
        ep.register(efd, select.EPOLLIN)
        os.eventfd_write(efd, 1)
        assert _waitset(ep, efd, 1e12) == (False, True)  # returns at once: the break is queued
    finally:
        ep.close()
        os.close(efd)
    assert rttimers.MAX_POLL_WAIT * 1000 < 2**31 - 1


# --- huge durations never crash the runtime ---


@pytest.mark.parametrize("seconds", HUGE)
def test_huge_timers_do_not_crash(seconds: float, procs: int) -> None:
    """Every kind of timer set far away (or never) leaves run() to finish normally."""

    async def sleeper() -> None:
        await mn.sleep(seconds)

    async def main() -> str:
        mn.go(sleeper)
        c = mn.after(seconds)
        t = mn.Timer(seconds)
        tk = mn.Ticker(seconds)
        mn.tick(seconds)
        ctx, cancel = mnctx.with_timeout(mnctx.background(), seconds)
        ln = mn.net.listen("tcp", "127.0.0.1:0")
        conn = await mn.net.dial("tcp", ln.addr, timeout=seconds)
        srv = await ln.accept()
        srv.set_read_deadline(mn.now() + seconds)
        conn.set_read_timeout(seconds)
        conn.set_write_timeout(seconds)
        await mn.sleep(0.03)  # the poller waits with those timers armed
        assert c.try_recv()[2] is False and t.c.try_recv()[2] is False
        assert ctx.err() is None
        await conn.write(b"x")
        assert await srv.read(1) == b"x"
        t.stop()
        tk.stop()
        cancel()
        for x in (conn, srv, ln):
            x.close()
        return "ok"

    assert mn.run(main, procs=procs) == "ok"


def test_sleep_forever_is_blocked_for_good() -> None:
    """A goroutine in sleep(inf) arms no timer: if everything else is blocked too, run() raises
    Deadlock naming the sleep, at once rather than after a timer that never comes."""

    async def main() -> None:
        await mn.sleep(math.inf)

    t0 = time.monotonic()
    with pytest.raises(mn.Deadlock) as ei:
        mn.run(main, procs=2)
    assert time.monotonic() - t0 < 5
    assert "sleep" in str(ei.value)

    async def main2() -> int:
        ch: mn.Chan[int] = mn.Chan()

        async def forever() -> None:
            await mn.sleep(math.inf)
            await ch.send(1)  # never reached

        mn.go(forever)
        return await ch.recv()

    with pytest.raises(mn.Deadlock):
        mn.run(main2, procs=1)


def test_sleep_forever_does_not_stop_main() -> None:
    async def forever() -> None:
        await mn.sleep(math.inf)

    async def main() -> int:
        for _ in range(3):
            mn.go(forever)
        await mn.sleep(0.01)
        return mn.num_goroutine()

    assert mn.run(main, procs=2) == 4


# --- bad inputs get clear errors ---


def test_nan_and_type_errors() -> None:
    async def main() -> list[str]:
        out = []
        ln = mn.net.listen("tcp", "127.0.0.1:0")
        conn = await mn.net.dial("tcp", ln.addr)
        calls = {
            "after": mn.after,
            "Timer": mn.Timer,
            "Ticker": mn.Ticker,
            "tick": mn.tick,
            "with_timeout": lambda v: mnctx.with_timeout(mnctx.background(), v),
            "with_deadline": lambda v: mnctx.with_deadline(mnctx.background(), v),
            "set_deadline": conn.set_deadline,
            "set_read_deadline": conn.set_read_deadline,
            "set_timeout": conn.set_timeout,
            "set_read_timeout": conn.set_read_timeout,
            "set_write_timeout": conn.set_write_timeout,
        }
        for f in calls.values():
            with pytest.raises(ValueError, match="NaN") as ei:
                f(math.nan)
            out.append(str(ei.value))
            with pytest.raises(TypeError, match="seconds") as ei2:
                f("1")
            out.append(str(ei2.value))
        with pytest.raises(ValueError, match="NaN"):
            await mn.sleep(math.nan)
        with pytest.raises(ValueError, match="NaN"):
            await mn.net.dial("tcp", ln.addr, timeout=math.nan)
        with pytest.raises(TypeError, match="seconds"):
            await mn.net.dial("tcp", ln.addr, timeout="5")  # type: ignore[arg-type]
        for bad in (0, -1):
            with pytest.raises(ValueError, match="positive interval"):
                mn.Ticker(bad)
            with pytest.raises(ValueError, match="positive interval"):
                mn.tick(bad)
        conn.close()
        ln.close()
        return out

    out = mn.run(main, procs=2)
    assert len(out) == 22
    assert "after() got NaN seconds" in out
    assert "set_read_timeout() needs a number of seconds, got str" in out


def test_wall_clock_deadline_is_refused() -> None:
    """A Go user's set_read_deadline(time.time() + 0.2) is a ValueError naming time.monotonic()."""

    async def main() -> int:
        ln = mn.net.listen("tcp", "127.0.0.1:0")
        conn = await mn.net.dial("tcp", ln.addr)
        n = 0
        for f in (
            conn.set_read_deadline,
            conn.set_write_deadline,
            conn.set_deadline,
            ln.set_deadline,
            lambda t: mnctx.with_deadline(mnctx.background(), t),
        ):
            with pytest.raises(ValueError, match=r"time\.time\(\).*time\.monotonic\(\)"):
                f(time.time() + 0.2)
            n += 1
        conn.close()
        ln.close()
        return n

    assert mn.run(main, procs=1) == 5


# --- the relative deadline form ---


def test_relative_timeouts(procs: int) -> None:
    async def main() -> list[str]:
        ln = mn.net.listen("tcp", "127.0.0.1:0")
        conn = await mn.net.dial("tcp", ln.addr)
        srv = await ln.accept()
        out = []
        t0 = time.monotonic()
        conn.set_read_timeout(0.05)
        with pytest.raises(mn.net.DeadlineExceeded):
            await conn.read(10)
        out.append(f"read timed out late enough: {time.monotonic() - t0 >= 0.05}")
        conn.set_read_timeout(None)  # clears
        await srv.write(b"hi")
        out.append((await conn.read(10)).decode())
        conn.set_timeout(-1)  # already past: both directions fail at once
        with pytest.raises(mn.net.DeadlineExceeded):
            await conn.write(b"x")
        with pytest.raises(mn.net.DeadlineExceeded):
            await conn.read(1)
        conn.set_timeout(math.inf)  # never: clears
        await conn.write(b"ok")
        out.append((await srv.read(10)).decode())
        ln.set_timeout(0.02)
        with pytest.raises(mn.net.DeadlineExceeded):
            await ln.accept()
        for x in (conn, srv, ln):
            x.close()
        return out

    assert mn.run(main, procs=procs) == ["read timed out late enough: True", "hi", "ok"]


def test_context_never_and_expired() -> None:
    async def main() -> tuple[object, object, object, object]:
        ctx, cancel = mnctx.with_timeout(mnctx.background(), math.inf)
        d1 = ctx.deadline()
        cancel()
        ctx2, _ = mnctx.with_deadline(mnctx.background(), -math.inf)
        ctx3, _ = mnctx.with_deadline(mnctx.background(), mn.now() + 0.01)
        await ctx3.done().recv_ok()
        return d1, ctx.err(), ctx2.err(), ctx3.err()

    d1, e1, e2, e3 = mn.run(main, procs=2)
    assert d1 is None
    assert e1 is mnctx.Canceled or isinstance(e1, mnctx.Canceled)
    for e in (e2, e3):
        assert e is mnctx.DeadlineExceeded or isinstance(e, mnctx.DeadlineExceeded)


# --- Go's helpers ---


def test_tick_now_since_until(procs: int) -> None:
    async def main() -> list[float]:
        t0 = mn.now()
        assert abs(t0 - time.monotonic()) < 1.0
        c = mn.tick(0.01)
        stamps = [await c.recv() for _ in range(4)]
        assert stamps == sorted(stamps) and stamps[0] >= t0 + 0.01
        assert mn.since(t0) >= 0.04
        assert mn.until(t0 + 100) > 90
        assert mn.until(t0) < 0
        return stamps

    assert len(mn.run(main, procs=procs)) == 4
    assert abs(mn.now() - time.monotonic()) < 1.0  # outside a run: time.monotonic()
    with pytest.raises(TypeError, match="since"):
        mn.since("now")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="until"):
        mn.until(None)  # type: ignore[arg-type]


def test_never_timer_stop_and_reset() -> None:
    async def main() -> list[object]:
        t = mn.Timer(math.inf)
        out: list[object] = [t.stop(), t.stop()]  # it was pending (forever), then not
        t.reset(math.inf)
        out.append(t.reset(0.005))  # the never-arming was pending
        await t.c.recv()
        out.append(t.stop())
        tk = mn.Ticker(math.inf)
        tk.reset(0.005)
        await tk.c.recv()
        tk.stop()
        return out

    assert mn.run(main, procs=2) == [True, False, True, False]


def test_time_module_is_the_one_home() -> None:
    """Everything timer related lives in mn_runtime.time; the old names still resolve."""
    from mn_runtime import time as mntime
    from mn_runtime import timechan

    for name in ("sleep", "after", "after_func", "tick", "Timer", "Ticker", "now", "since", "until", "VirtualClock"):
        assert getattr(mn, name) is getattr(mntime, name)
    assert timechan.Timer is mntime.Timer
    assert mn.runtime.sleep is mntime.sleep  # type: ignore[attr-defined]


def test_timer_callbacks_under_concurrent_stop(procs: int) -> None:
    """Many goroutines on several Ms start and stop timers at once: after stop() the channel
    stays empty whatever stop() reported; an unstopped timer delivers exactly once."""
    lk = threading.Lock()
    counts = {"stopped": 0, "fired": 0}

    async def worker(i: int, wg: mn.WaitGroup) -> None:
        try:
            for k in range(20):
                t = mn.Timer(0.001 * ((i + k) % 3))
                if (i + k) % 2:
                    stopped = t.stop()  # drains c either way (Go 1.23)
                    await mn.sleep(0.004)
                    assert t.c.try_recv()[2] is False
                    with lk:
                        counts["stopped" if stopped else "fired"] += 1
                    continue
                await t.c.recv()
                await mn.sleep(0.003)
                assert t.c.try_recv()[2] is False  # a one-shot timer delivers once
                with lk:
                    counts["fired"] += 1
        finally:
            wg.done()

    async def main() -> None:
        wg = mn.WaitGroup()
        wg.add(8)
        for i in range(8):
            mn.go(worker, i, wg)
        await wg.wait()

    mn.run(main, procs=procs)
    assert counts["stopped"] + counts["fired"] == 160


def test_after_func(procs: int) -> None:
    """after_func starts its function in a new goroutine when due; stop() before then prevents
    it; reset() after it fired runs it again; a failing function fails like any goroutine."""

    async def main() -> list[object]:
        got: mn.Chan[tuple[str, float]] = mn.Chan(4)
        t0 = mn.now()

        async def report(tag: str) -> None:
            await got.send((tag, mn.since(t0)))

        t1 = mn.after_func(2.0, report, "a")
        t2 = mn.after_func(1.0, report, tag="never")
        assert t2.stop() is True and t2.stop() is False
        tag, at = await got.recv()
        assert t1.stop() is False  # already started
        assert t1.reset(0.5) is False
        tag2, at2 = await got.recv()
        await mn.sleep(5.0)
        return [tag, at, tag2, at2, got.try_recv()[2]]

    assert mn.run(main, procs=procs, clock="virtual") == ["a", 2.0, "a", 2.5, False]


def test_after_func_inputs_and_failure() -> None:
    async def boom() -> None:
        raise KeyError("from after_func")

    async def main() -> None:
        with pytest.raises(TypeError, match="async function"):
            mn.after_func(1.0, print)
        with pytest.raises(ValueError, match="NaN"):
            mn.after_func(math.nan, boom)
        mn.after_func(0.01, boom)
        await mn.sleep(10.0)

    with pytest.raises(KeyError, match="from after_func"):
        mn.run(main, procs=2)
