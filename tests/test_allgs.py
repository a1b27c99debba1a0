"""The G table (allgs.GTable) as a pure structure, then under Ms spawning on several Ps."""

from __future__ import annotations

import threading
import types

import pytest

import mn_runtime as mn
from mn_runtime._rt.allgs import IDBATCH, NSHARD, GTable


def _p() -> types.SimpleNamespace:
    return types.SimpleNamespace(goidcache=0, goidcacheend=0)


def test_ids_unique_in_order_per_p_and_counted() -> None:
    t = GTable()
    p1, p2 = _p(), _p()
    a = [t.newid(p1) for _ in range(3)]
    b = [t.newid(p2) for _ in range(3)]
    c = t.newid(None)
    assert a == [1, 2, 3] and b == [IDBATCH + 1, IDBATCH + 2, IDBATCH + 3] and c == 2 * IDBATCH + 1
    assert t.created([p1, p2]) == 7  # the ids still cached in the Ps are not counted
    more = [t.newid(p1) for _ in range(IDBATCH)]  # runs past p1's batch: a new one
    assert len(set(a + b + [c] + more)) == 7 + IDBATCH
    assert t.created([p1, p2]) == 7 + IDBATCH


def test_add_remove_snapshot_take_all() -> None:
    t = GTable()
    gs = [types.SimpleNamespace(id=i) for i in (5, 1, 5 + NSHARD, 3)]
    for g in gs:
        t.add(g)  # type: ignore[arg-type]
    assert len(t) == 4
    assert [g.id for g in t.snapshot()] == [1, 3, 5, 5 + NSHARD]
    assert [g.id for g in t.snapshot(locked=False)] == [1, 3, 5, 5 + NSHARD]
    t.remove(gs[0])  # type: ignore[arg-type]
    assert [g.id for g in t.snapshot()] == [1, 3, 5 + NSHARD]
    with pytest.raises(KeyError):
        t.remove(gs[0])  # type: ignore[arg-type]
    assert sorted(g.id for g in t.take_all()) == [1, 3, 5 + NSHARD]
    assert len(t) == 0


def test_threads_hand_out_distinct_ids() -> None:
    t = GTable()
    got: list[list[int]] = [[] for _ in range(4)]

    def worker(k: int) -> None:
        p = _p()  # each thread owns its "P", as an M owns its P's cache
        for _ in range(5000):
            got[k].append(t.newid(p if k % 2 else None))

    ths = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    ids = [i for g in got for i in g]
    assert len(set(ids)) == len(ids) == 20000


@pytest.mark.concurrency
def test_spawning_on_several_ms_keeps_the_table_exact(procs: int, switchinterval: float) -> None:
    async def leaf() -> None:
        await mn.gosched()

    async def spawner(n: int) -> list[int]:
        gs = [mn.go(leaf) for _ in range(n)]
        for g in gs:
            await g.join()
        return [g.id for g in gs]

    async def main() -> tuple[list[int], int, int]:
        ss = [mn.go(spawner, 500) for _ in range(4)]
        ids: list[int] = []
        for s in ss:
            ids += await s.join()
        st = mn.stats()
        return ids + [s.id for s in ss], st.goroutines, st.goroutines_created

    ids, left, created = mn.run(main, procs=procs)
    assert len(set(ids)) == len(ids) == 2004
    assert left == 1  # main
    assert created == 2005
