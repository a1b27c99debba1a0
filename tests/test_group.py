"""Group tests (errgroup semantics): waiting, first error cancels ctx and is raised with the
others as notes, limit, body exceptions."""

from __future__ import annotations

import threading

import pytest

import mn_runtime as mn
from mn_runtime import context as mnctx

pytestmark = pytest.mark.concurrency


def test_group_waits_for_all(procs: int, switchinterval: float) -> None:
    async def main() -> int:
        total = mn.Chan(100)

        async def work(i: int) -> None:
            for _ in range(i % 4):
                await mn.gosched()
            await total.send(i)

        async with mn.Group() as g:
            for i in range(50):
                g.go(work, i)
        assert isinstance(g.ctx.err(), mnctx.Canceled)  # released on exit, as errgroup.Wait
        s = 0
        while (r := total.try_recv())[2]:
            s += r[0]
        return s

    assert mn.run(main, procs=procs) == sum(range(50))


def test_group_first_error_cancels(procs: int, switchinterval: float) -> None:
    async def main() -> None:
        stopped: list[int] = []

        async def waiter(i: int, ctx: mnctx.Context) -> None:
            await ctx.done().recv_ok()
            stopped.append(i)

        async def fail(msg: str, ctx: mnctx.Context | None) -> None:
            if ctx is not None:
                await ctx.done().recv_ok()  # fail only after the first failure cancelled ctx
            raise ValueError(msg)

        with pytest.raises(ValueError, match="first") as ei:
            async with mn.Group() as g:
                for i in range(5):
                    g.go(waiter, i, g.ctx)
                g.go(fail, "second", g.ctx)
                g.go(fail, "first", None)
        assert sorted(stopped) == list(range(5))
        assert isinstance(g.ctx.err(), mnctx.Canceled)
        assert [str(e) for e in g.errors] == ["first", "second"]
        assert ei.value.__notes__ == ["also raised in group: ValueError: second"]

    mn.run(main, procs=procs)


def test_group_limit(procs: int, switchinterval: float) -> None:
    async def main() -> tuple[int, list[int]]:
        state = {"running": 0, "max": 0}
        order: list[int] = []
        lock = threading.Lock()  # the workers run on several Ms: no GIL makes `+=` atomic

        async def work(i: int) -> None:
            with lock:
                state["running"] += 1
                state["max"] = max(state["max"], state["running"])
                order.append(i)
            await mn.sleep(0.001)
            with lock:
                state["running"] -= 1

        async with mn.Group(limit=3) as g:
            for i in range(12):
                g.go(work, i)
        return state["max"], order

    mx, order = mn.run(main, procs=procs)
    assert mx == 3 and sorted(order) == list(range(12))


def test_group_body_exception_cancels_and_waits() -> None:
    async def main() -> None:
        finished: list[bool] = []

        async def child(ctx: mnctx.Context) -> None:
            await ctx.done().recv_ok()
            finished.append(True)

        with pytest.raises(KeyError):
            async with mn.Group() as g:
                g.go(child, g.ctx)
                raise KeyError("body")
        assert finished == [True]

    mn.run(main, procs=2)


def test_group_wait_and_parent(procs: int) -> None:
    async def main() -> None:
        parent, cancel = mnctx.with_cancel(mnctx.background())
        g = mn.Group(parent=parent)

        async def child() -> None:
            await g.ctx.done().recv_ok()

        g.go(child)
        cancel()  # cancelling the parent stops the group's children
        await g.wait()
        assert g.errors == []

    mn.run(main, procs=procs)


def test_group_bad_input() -> None:
    with pytest.raises(ValueError, match="limit must be >= 1"):
        mn.Group(limit=0)
    with pytest.raises(TypeError, match="limit must be an int"):
        mn.Group(limit="3")  # type: ignore[arg-type]


def test_group_goroutines_named_after_the_users_function() -> None:
    """A deadlock report lists a Group's goroutines by the user's function, created where g.go was
    called, with the user's frames and none of the runtime's (Group._run, Chan.recv)."""

    async def stuck_worker(ch: mn.Chan[int]) -> None:
        await ch.recv()

    async def main() -> None:
        ch: mn.Chan[int] = mn.Chan()
        async with mn.Group() as g:
            g.go(stuck_worker, ch)

    with pytest.raises(mn.Deadlock) as ei:
        mn.run(main, procs=2)
    listing = "\n\n".join(ei.value.goroutines)
    assert "Group._run" not in listing and "_recv" not in listing, listing
    block = next(b for b in ei.value.goroutines if "stuck_worker" in b.splitlines()[0])
    assert block.splitlines()[0].endswith("stuck_worker")
    assert "test_group.py" in block and "created by goroutine 1" in block
