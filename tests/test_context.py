"""context tests: cancellation trees, deadlines through runtime timers, values, bad input."""

from __future__ import annotations

import time

import pytest

import mn_runtime as mn
from mn_runtime import context as mnctx

pytestmark = pytest.mark.concurrency


def test_background_never_done() -> None:
    async def main() -> None:
        bg = mnctx.background()
        assert bg.err() is None and bg.deadline() is None and bg.value("k") is None
        assert bg.done().try_recv() == (None, False, False)

    mn.run(main, procs=1)


def test_bad_input() -> None:
    with pytest.raises(TypeError, match="context parent must be"):
        mnctx.with_cancel(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a number of seconds"):
        mnctx.with_timeout(mnctx.background(), "1")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="need a running runtime"):
        mnctx.with_timeout(mnctx.background(), 1.0)


def test_cancel_tree(procs: int, switchinterval: float) -> None:
    """Cancelling a node cancels its whole subtree and nothing else; Gs parked on done() wake."""

    async def main() -> None:
        root, cancel_root = mnctx.with_cancel(mnctx.background())
        a, cancel_a = mnctx.with_cancel(root)
        b, _cancel_b = mnctx.with_cancel(root)
        a1, _ = mnctx.with_cancel(a)
        a2 = mnctx.with_value(a, "k", 42)
        a21, _ = mnctx.with_cancel(a2)
        assert a21.value("k") == 42 and a1.value("k") is None

        woke: mn.Chan[str] = mn.Chan(8)

        async def watch(name: str, ctx: mnctx.Context) -> None:
            await ctx.done().recv_ok()
            await woke.send(name)

        for name, ctx in [("a", a), ("a1", a1), ("a21", a21), ("b", b)]:
            mn.go(watch, name, ctx)
        await mn.sleep(0.002)
        cancel_a()
        got = sorted([await woke.recv() for _ in range(3)])
        assert got == ["a", "a1", "a21"]
        assert isinstance(a.err(), mnctx.Canceled) and isinstance(a21.err(), mnctx.Canceled)
        assert b.err() is None and root.err() is None
        assert woke.try_recv()[2] is False  # b still waits
        cancel_a()  # idempotent
        cancel_root()
        assert await woke.recv() == "b"
        assert isinstance(b.err(), mnctx.Canceled)
        # A child of a cancelled parent is born cancelled.
        c, _ = mnctx.with_cancel(root)
        assert isinstance(c.err(), mnctx.Canceled) and c.done().try_recv() == (None, False, True)

    mn.run(main, procs=procs)


def test_deadline(procs: int) -> None:
    async def main() -> None:
        t0 = time.monotonic()
        ctx, cancel = mnctx.with_timeout(mnctx.background(), 0.02)
        child, _ = mnctx.with_cancel(ctx)
        assert ctx.deadline() is not None and child.deadline() == ctx.deadline()
        await child.done().recv_ok()
        assert time.monotonic() - t0 >= 0.02
        assert isinstance(ctx.err(), mnctx.DeadlineExceeded)
        assert isinstance(child.err(), mnctx.DeadlineExceeded)
        with pytest.raises(TimeoutError, match="context deadline exceeded"):
            raise ctx.err()  # type: ignore[misc]
        cancel()  # after expiry: no effect
        assert isinstance(ctx.err(), mnctx.DeadlineExceeded)

        # A later child deadline is capped by the parent's; cancel stops the timer early.
        p, pcancel = mnctx.with_timeout(mnctx.background(), 5.0)
        c2, _ = mnctx.with_timeout(p, 10.0)
        assert c2.deadline() == p.deadline()
        pcancel()
        assert isinstance(c2.err(), mnctx.Canceled)
        # Already past: cancelled at once.
        d, _ = mnctx.with_deadline(mnctx.background(), time.monotonic() - 1)
        assert isinstance(d.err(), mnctx.DeadlineExceeded)

    mn.run(main, procs=procs)


def test_cancel_stops_timer_no_deadlock_masking() -> None:
    """A cancelled timeout leaves no pending timer: a deadlock afterwards is still reported."""

    async def main() -> None:
        _, cancel = mnctx.with_timeout(mnctx.background(), 30.0)
        cancel()
        await mn.Chan().recv()

    with pytest.raises(mn.Deadlock, match="chan receive"):
        mn.run(main, procs=1)


def test_concurrent_cancel_and_children(procs: int, switchinterval: float) -> None:
    """Children created while the parent is being cancelled on another M all end cancelled."""

    async def main() -> None:
        for _ in range(10):
            root, cancel = mnctx.with_cancel(mnctx.background())
            kids: list[mnctx.Context] = []

            async def spawn(root: mnctx.Context = root, kids: list[mnctx.Context] = kids) -> None:
                for _ in range(50):
                    kids.append(mnctx.with_cancel(root)[0])
                    await mn.gosched()

            g = mn.go(spawn)
            await mn.gosched()
            cancel()
            await g.join()
            assert all(isinstance(k.err(), mnctx.Canceled) for k in kids)
            assert all(k.done().try_recv() == (None, False, True) for k in kids)

    mn.run(main, procs=procs)
