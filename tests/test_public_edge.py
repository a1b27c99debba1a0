"""The public edge: what users hold of a goroutine (a small Goroutine handle, not the runtime's G),
mn.go and Group.go taking the same arguments, Timer/Ticker/AfterFunc.stop answering alike, and
mn.stats() composed of the snapshots each structure makes of itself."""

from __future__ import annotations

import functools
import math
import re
from typing import Any

import pytest

import mn_runtime as mn
from mn_runtime import debug
from mn_runtime._rt.g import G
from mn_runtime.runtime import _gof

# --- mn.Goroutine ---


def test_goroutine_is_a_small_handle(procs: int) -> None:
    """go() and current() give a Goroutine handle: id, name, done, join(); equal for one goroutine;
    nothing of the G's internals (status, lock, coroutine, sudog) on it."""

    async def child(x: int) -> tuple[int, Any]:
        await mn.sleep(0.001)
        return x * 2, mn.current()

    async def main() -> list[Any]:
        me = mn.current()
        g = mn.go(child, 21)
        before = (g.done, repr(g))
        value, inside = await g.join()
        return [me, g, inside, before, value, g.done, await g.join(), mn.current()]

    me, g, inside, before, value, done, again, me2 = mn.run(main, procs=procs)
    assert type(g) is mn.Goroutine and type(me) is mn.Goroutine and type(_gof(g)) is G
    assert me.id == 1 and g.id > 1 and g.name.endswith("child")
    assert before[0] is False and before[1].startswith(f"<Goroutine {g.id} ") and "child" in before[1]
    assert (value, done, again[0]) == (42, True, 42)  # join() again answers at once
    assert inside == g and hash(inside) == hash(g) and inside is not g and g != me and me == me2
    assert repr(g).endswith(" dead>")
    assert not hasattr(g, "__dict__")
    for internal in ("status", "lock", "coro", "sudog", "result", "joiners", "waitreason", "param"):
        assert not hasattr(g, internal), internal
    with pytest.raises(AttributeError):
        g.id = 7  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"come from mn\.go"):
        mn.Goroutine()


def test_goroutine_join_is_one_coroutine() -> None:
    """join() is the handle's own coroutine, which parks on the goroutine's join lot itself:
    joining through a handle adds no wrapper frame."""

    async def main() -> str:
        g = mn.go(_twice, 1)
        j = g.join()
        code = j.cr_code
        assert await j == 2
        return code is mn.Goroutine.join.__code__

    assert mn.run(main, procs=1) is True


# --- mn.go and Group.go take the same arguments ---


async def _twice(x: int, *, k: int = 1, sink: list[int] | None = None) -> int:
    if sink is not None:
        sink.append(2 * x * k)
    return 2 * x * k


class _Callable:
    def __init__(self, sink: list[int]) -> None:
        self.sink = sink

    async def run(self, x: int) -> int:
        self.sink.append(x + 100)
        return x + 100

    def __call__(self, x: int, *, k: int = 1) -> Any:
        return _twice(x, k=k, sink=self.sink)


def _plain(x: int) -> int:
    return x


def _spawn_forms(sink: list[int]) -> list[tuple[Any, tuple[Any, ...], dict[str, Any]]]:
    """_spawn_forms: every way of naming a goroutine's work, each recording its result in sink."""
    c = _Callable(sink)
    return [
        (_twice, (3,), {"sink": sink}),  # an async function
        (_twice, (3,), {"k": 5, "sink": sink}),  # with keywords
        (_twice(4, sink=sink), (), {}),  # a coroutine object
        (c.run, (1,), {}),  # a bound async method
        (c, (2,), {"k": 3}),  # a callable returning a coroutine
        (functools.partial(_twice, k=10, sink=sink), (1,), {}),  # a partial
    ]


def test_go_and_group_go_take_the_same_arguments(procs: int) -> None:
    async def main() -> tuple[list[int], list[int], list[int]]:
        by_go: list[int] = []
        joined = [await mn.go(fn, *a, **kw).join() for fn, a, kw in _spawn_forms(by_go)]
        by_group: list[int] = []
        async with mn.Group(limit=2) as grp:
            for fn, a, kw in _spawn_forms(by_group):
                grp.go(fn, *a, **kw)
        return joined, by_go, by_group

    joined, by_go, by_group = mn.run(main, procs=procs)
    want = [6, 30, 8, 101, 12, 20]
    assert joined == by_go == want and sorted(by_group) == sorted(want)


@pytest.mark.parametrize(
    ("fn", "args", "msg"),
    [
        (42, (), "needs an async function or a coroutine object, got int: 42"),
        (_plain, (1,), "got the plain function '_plain'; define it with 'async def'"),
        ("coro+args", (1,), "arguments given with a coroutine object"),
        (_Callable.__call__, (None, 1), None),  # a plain function returning a coroutine: refused as such
    ],
)
def test_go_and_group_go_refuse_alike(fn: Any, args: tuple[Any, ...], msg: str | None) -> None:
    """The same bad argument gets the same TypeError from both, naming the one called."""

    async def main() -> list[str]:
        out = []
        for who in ("go", "Group.go"):
            f = _twice(1) if fn == "coro+args" else fn
            grp = mn.Group()
            call = mn.go if who == "go" else grp.go
            with pytest.raises(TypeError) as ei:
                call(f, *args)
            out.append(str(ei.value))
            await grp.wait()
        return out

    by_go, by_group = mn.run(main, procs=1)
    assert by_go.startswith("go()") and by_group.startswith("Group.go()")
    assert by_go.removeprefix("go()") == by_group.removeprefix("Group.go()")
    if msg is not None:
        assert msg in by_go


def test_go_and_group_go_outside_a_runtime_close_the_coroutine() -> None:
    import gc
    import warnings

    for call, who in ((mn.go, "mn_runtime.go()"), (mn.Group().go, "Group.go()")):
        coro = _twice(1)
        with pytest.raises(RuntimeError, match=re.escape(f"{who} called outside a running runtime")):
            call(coro)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # "coroutine ... was never awaited" would be an error
            assert coro.cr_frame is None  # closed
            del coro
            gc.collect()


def test_group_go_reports_the_failure_of_a_coroutine_object() -> None:
    async def boom() -> None:
        raise KeyError("from a coroutine object")

    async def main() -> str:
        try:
            async with mn.Group(limit=1) as grp:
                grp.go(boom())
        except KeyError as e:
            return str(e)
        return ""

    assert mn.run(main, procs=2) == "'from a coroutine object'"


# --- Timer, Ticker and AfterFunc answer stop() alike ---


def test_stop_answers_alike(procs: int) -> None:
    """stop() is True when the call stopped a pending timer, False when it had already fired or
    been stopped: Timer, Ticker (pending until stopped) and AfterFunc alike; reset() says the
    same of the arming it replaced."""

    async def nothing() -> None:
        pass

    async def main() -> list[object]:
        out: list[object] = []
        for make in (lambda: mn.Timer(10.0), lambda: mn.Ticker(10.0), lambda: mn.after_func(10.0, nothing)):
            t = make()
            out.append((t.stop(), t.stop(), t.reset(10.0), t.reset(10.0), t.stop()))
        tk = mn.Ticker(0.001)
        await tk.c.recv()
        await tk.c.recv()
        out.append((tk.stop(), tk.stop()))  # a ticker that ticked is still running until stopped
        never = mn.Ticker(math.inf)
        out.append((never.stop(), never.stop()))
        tm = mn.Timer(0.001)
        await tm.c.recv()
        out.append((tm.stop(), tm.stop()))  # fired: nothing left to stop
        return out

    same = (True, False, False, True, True)
    assert mn.run(main, procs=procs) == [same, same, same, (True, False), (True, False), (False, False)]


# --- stats: each structure's own snapshot, composed by mn.stats() ---

_STATS_FIELDS = {
    "goroutines",
    "goroutines_created",
    "procs",
    "gil_enabled",
    "idle_procs",
    "threads",
    "idle_threads",
    "spinning_threads",
    "threads_in_syscall",
    "global_runq",
    "runq",
    "gs_run",
    "steals",
    "global_takes",
    "syscalls",
    "handoffs",
    "stuck_handoffs",
    "preempt_requests",
    "spinning_starts",
    "timers_fired",
    "timers_fired_by_ms",
    "timers_pending",
    "netpoll_wakeups",
    "netpoll_batches",
    "netpoll_injected",
    "netpoll_nonblocking",
    "netpoll_fd_events",
    "netpoll_batch_sizes",
    "latency",
    "per_p",
    "per_m",
}


def test_stats_composes_each_structures_own_snapshot() -> None:
    from mn_runtime._rt import tls as _tls

    async def main() -> tuple[Any, ...]:
        s = _tls.cur
        assert s is not None
        await mn.syscall(lambda: None)
        st = mn.stats()
        ps = [p.stats() for p in s.allp]
        npl = s.netpoll.stats()
        c: mn.Chan[int] = mn.Chan(2)
        await c.send(1)
        return st, ps, npl, c.stats()

    st, ps, npl, cs = mn.run(main, procs=2)
    assert set(st) == _STATS_FIELDS
    assert isinstance(ps[0], debug.PStats) and isinstance(npl, debug.NetpollStats)
    assert [p.id for p in st.per_p] == [p.id for p in ps] == [0, 1]
    assert sum(p.gs_run for p in ps) >= st.gs_run >= 1 and st.runq == [p.runq + p.runnext for p in st.per_p]
    assert npl.wakeups >= st.netpoll_wakeups and len(npl.batch_sizes) == len(st.netpoll_batch_sizes) == 8
    assert st.syscalls >= 1 and cs == {"qcount": 1, "dataqsiz": 2, "sendq": 0, "recvq": 0, "closed": False}
    sc = debug.SchedStats(**{k: st[k] for k in debug.SchedStats._fieldnames()})
    assert sc.threads == st.threads == len(st.per_m)
