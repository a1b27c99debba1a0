"""Timer channels: after, Timer (stop/reset), Ticker; in select with other channels."""

from __future__ import annotations

import time

import pytest

import mn_runtime as mn

pytestmark = pytest.mark.concurrency


def test_after_and_select_timeout(procs: int) -> None:
    async def main() -> None:
        t0 = time.monotonic()
        v = await mn.after(0.01).recv()
        assert v >= t0 + 0.01 and time.monotonic() - t0 >= 0.01
        never: mn.Chan[int] = mn.Chan()
        idx, v, ok = await mn.select(mn.Recv(never), mn.Recv(mn.after(0.005)))
        assert idx == 1 and ok
        assert never.stats()["recvq"] == 0  # the losing case left the queue

    mn.run(main, procs=procs)


def test_timer_stop_reset() -> None:
    async def main() -> None:
        t = mn.Timer(0.005)
        assert t.stop() is True and t.stop() is False
        await mn.sleep(0.015)
        assert t.c.try_recv()[2] is False  # stopped: never fired
        assert t.reset(0.005) is False
        await t.c.recv()
        assert t.stop() is False  # already fired
        # reset of a fired, undrained timer leaves no stale value
        t2 = mn.Timer(0.001)
        await mn.sleep(0.01)
        t2.reset(10.0)
        assert t2.c.try_recv()[2] is False
        t2.stop()

    mn.run(main, procs=2)


def test_ticker() -> None:
    async def main() -> int:
        tk = mn.Ticker(0.004)
        stamps = [await tk.c.recv() for _ in range(4)]
        assert stamps == sorted(stamps)
        tk.stop()
        await mn.sleep(0.015)
        assert tk.c.try_recv()[2] is False  # no tick after stop
        tk.reset(0.002)
        await tk.c.recv()
        tk.stop()
        return len(stamps)

    assert mn.run(main, procs=1) == 4


def test_stopped_ticker_lets_deadlock_show() -> None:
    async def main() -> None:
        tk = mn.Ticker(0.01)
        tk.stop()
        await mn.select()

    with pytest.raises(mn.Deadlock, match="select \\(no cases\\)"):
        mn.run(main, procs=1)


def test_bad_input() -> None:
    with pytest.raises(RuntimeError, match="needs a running runtime"):
        mn.after(1)

    async def main() -> None:
        with pytest.raises(ValueError, match="positive interval"):
            mn.Ticker(0)
        with pytest.raises(TypeError, match="number of seconds"):
            mn.Timer("1")  # type: ignore[arg-type]

    mn.run(main, procs=1)
