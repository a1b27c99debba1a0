"""The wait queue as a pure structure (waitq.py), without a runtime: the invariants its header
states, FIFO order, push_front, O(1) removal, the select skip in dequeue, and the per-G sudog
cache. Only the first-waker-wins test uses threads: that property is about threads."""

from __future__ import annotations

import threading

import pytest

from mn_runtime._rt import tls as _tls
from mn_runtime._rt.g import G, GStatus, casgstatus
from mn_runtime._rt.waitq import Sudog, WaitQ, acquire_sudog, release_sudog
from mn_runtime.errors import Throw

from .test_runq import mkg


def check(q: WaitQ) -> list[int]:
    """check verifies q's header invariants by walking it both ways; returns the G ids in order."""
    fwd: list[Sudog] = []
    sg, prev = q.first, None
    while sg is not None:
        assert sg.q is q and sg.prev is prev
        fwd.append(sg)
        prev, sg = sg, sg.next
    assert q.last is prev
    back: list[Sudog] = []
    sg = q.last
    while sg is not None:
        back.append(sg)
        sg = sg.prev
    assert back == fwd[::-1]
    assert q.n == len(q) == len(fwd)
    assert (q.first is None) == (q.last is None) == (q.n == 0) == (not q)
    return [s.g.id for s in fwd]


def sgs(*ids: int) -> list[Sudog]:
    return [Sudog(mkg(i), elem=f"v{i}") for i in ids]


def filled(*ids: int) -> tuple[WaitQ, list[Sudog]]:
    q = WaitQ()
    s = sgs(*ids)
    for sg in s:
        q.enqueue(sg)
    return q, s


def test_empty_queue() -> None:
    q = WaitQ()
    assert check(q) == [] and q.dequeue() is None and q.peek() is None and list(q) == []


def test_enqueue_is_fifo_and_dequeue_unlinks() -> None:
    q, s = filled(1, 2, 3)
    assert check(q) == [1, 2, 3] and q.peek() is s[0] and q.n == 3
    got = []
    while (sg := q.dequeue()) is not None:
        assert sg.q is None and sg.next is None and sg.prev is None
        got.append(sg.g.id)
        check(q)
    assert got == [1, 2, 3] and q.n == 0 and q.first is None and q.last is None


def test_push_front_goes_ahead_of_everyone() -> None:
    q = WaitQ()
    a, b, c, d = sgs(1, 2, 3, 4)
    q.push_front(a)  # onto an empty queue: first and last
    assert q.first is a and q.last is a and check(q) == [1]
    q.enqueue(b)
    q.push_front(c)
    q.enqueue(d)
    assert check(q) == [3, 1, 2, 4]
    assert [q.dequeue().g.id for _ in range(4)] == [3, 1, 2, 4]  # type: ignore[union-attr]


@pytest.mark.parametrize(("victim", "rest"), [(0, [2, 3, 4]), (1, [1, 3, 4]), (3, [1, 2, 3]), (2, [1, 2, 4])])
def test_remove_head_middle_tail(victim: int, rest: list[int]) -> None:
    q, s = filled(1, 2, 3, 4)
    assert q.remove(s[victim]) is True
    sg = s[victim]
    assert sg.q is None and sg.next is None and sg.prev is None
    assert check(q) == rest and q.n == 3
    assert q.remove(sg) is False  # already left: a waker took it
    assert check(q) == rest
    q.enqueue(sg)  # unlinked cleanly: it may queue again, at the tail
    assert check(q) == [*rest, victim + 1]


def test_remove_only_element_empties_the_queue() -> None:
    q, (a,) = filled(1)
    assert q.remove(a) is True
    assert check(q) == [] and q.first is None and q.last is None


def test_remove_of_a_sudog_never_queued_is_false() -> None:
    q, _ = filled(1, 2)
    (stranger,) = sgs(9)
    assert q.remove(stranger) is False and check(q) == [1, 2]


def test_remove_from_the_wrong_queue_throws() -> None:
    q1, (a, _) = filled(1, 2)
    q2 = WaitQ()
    with pytest.raises(Throw, match=r"waitq\.remove: sudog is on another queue"):
        q2.remove(a)
    assert check(q1) == [1, 2] and check(q2) == [] and a.q is q1


@pytest.mark.parametrize("op", ["enqueue", "push_front"])
@pytest.mark.parametrize("same", [True, False])
def test_a_linked_sudog_cannot_join_a_queue(op: str, same: bool) -> None:
    q1, (_, b, _) = filled(1, 2, 3)
    q2, _ = filled(7)
    target = q1 if same else q2
    with pytest.raises(Throw, match=rf"waitq\.{op}: sudog already on a queue"):
        getattr(target, op)(b)
    assert check(q1) == [1, 2, 3] and check(q2) == [7] and b.q is q1


def selectg(gid: int, won: bool) -> G:
    g = mkg(gid)
    g.selectdone = threading.Lock()
    if won:
        assert g.selectdone.acquire(blocking=False)  # another waker already won this select
    return g


def test_dequeue_skips_selects_already_won_and_wins_the_others() -> None:
    lost = selectg(1, won=True)
    free = selectg(2, won=False)
    q = WaitQ()
    s_lost = Sudog(lost, isselect=True, caseidx=0)
    s_plain = Sudog(mkg(3))
    s_free = Sudog(free, isselect=True, caseidx=1)
    s_lost2 = Sudog(lost, isselect=True, caseidx=2)
    for sg in (s_lost, s_free, s_lost2, s_plain):
        q.enqueue(sg)
    got = q.dequeue()
    assert got is s_free and got.caseidx == 1
    assert free.selectdone is not None and free.selectdone.acquire(blocking=False) is False  # now won by us
    assert s_lost.q is None and s_lost.next is None  # dropped on the way, counted out
    assert check(q) == [1, 3] and q.n == 2
    assert q.dequeue() is s_plain  # the other won sudog is skipped; a plain one is taken as is
    assert s_lost2.q is None and check(q) == [] and q.dequeue() is None


def test_one_select_on_two_queues_is_served_once() -> None:
    g = selectg(5, won=False)
    q1, q2 = WaitQ(), WaitQ()
    a, b = Sudog(g, isselect=True, caseidx=0), Sudog(g, isselect=True, caseidx=1)
    q1.enqueue(a)
    q2.enqueue(b)
    (other,) = sgs(6)
    q2.enqueue(other)
    assert q1.dequeue() is a
    assert q2.dequeue() is other  # b's select was won through q1
    assert check(q1) == [] and check(q2) == [] and b.q is None


def test_dequeue_of_a_select_sudog_without_a_flag_throws() -> None:
    q = WaitQ()
    q.enqueue(Sudog(mkg(1), isselect=True, caseidx=0))
    with pytest.raises(Throw, match=r"waitq\.dequeue: select sudog of a G with no selectdone flag"):
        q.dequeue()


def test_first_waker_wins_across_threads() -> None:
    """Two wakers, each on its own queue holding one sudog of the same select, dequeue at once:
    exactly one gets a sudog, every time."""
    for _ in range(200):
        g = selectg(1, won=False)
        qs = [WaitQ(), WaitQ()]
        for i, q in enumerate(qs):
            q.enqueue(Sudog(g, isselect=True, caseidx=i))
        got: list[Sudog | None] = [None, None]
        barrier = threading.Barrier(2)

        def waker(i: int, qs: list[WaitQ], got: list[Sudog | None], barrier: threading.Barrier) -> None:
            barrier.wait()
            got[i] = qs[i].dequeue()

        ts = [threading.Thread(target=waker, args=(i, qs, got, barrier)) for i in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert sum(sg is not None for sg in got) == 1, got
        assert check(qs[0]) == [] and check(qs[1]) == []


def test_iteration_in_order_survives_removing_the_current_sudog() -> None:
    q, _ = filled(1, 2, 3, 4, 5)
    assert [sg.g.id for sg in q] == [1, 2, 3, 4, 5]
    seen = []
    for sg in q:  # a select's cleanup removes its sudogs while walking
        seen.append(sg.g.id)
        if sg.g.id % 2:
            assert q.remove(sg) is True
    assert seen == [1, 2, 3, 4, 5] and check(q) == [2, 4]


def test_sudog_cache_reuses_one_sudog_per_g() -> None:
    g = mkg(1)
    assert g.sudog is None
    sg = acquire_sudog(g, "x", "chan1")
    assert (sg.g, sg.elem, sg.c, sg.isselect, sg.caseidx, sg.success, sg.q) == (g, "x", "chan1", False, -1, False, None)
    assert g.sudog is None  # a fresh one: nothing was cached
    sg.success = True
    release_sudog(g, sg)
    assert g.sudog is sg and sg.elem is None and sg.c is None  # the cache keeps no value alive
    again = acquire_sudog(g, "y", "chan2")
    assert again is sg and g.sudog is None
    assert (again.elem, again.c, again.success) == ("y", "chan2", False)
    other = acquire_sudog(g, "z", None)  # the cache is empty while the first is in use
    assert other is not sg


def test_release_sudog_refuses_a_linked_or_select_sudog() -> None:
    g = mkg(1)
    sg = acquire_sudog(g, None, None)
    q = WaitQ()
    q.enqueue(sg)
    with pytest.raises(Throw, match="release_sudog: sudog still on a queue or part of a select"):
        release_sudog(g, sg)
    assert g.sudog is None
    q.remove(sg)
    sel = Sudog(g, isselect=True, caseidx=0)
    with pytest.raises(Throw, match="release_sudog"):
        release_sudog(g, sel)
    assert g.sudog is None


def test_ready_records_the_outcome_and_readies_the_g_once() -> None:
    assert _tls.cur is None  # no runtime: goready only moves the G's status
    g = mkg(1)
    casgstatus(g, GStatus.RUNNABLE, GStatus.RUNNING)
    casgstatus(g, GStatus.RUNNING, GStatus.WAITING)
    sg = Sudog(g, elem=42, caseidx=3)
    sg.ready(True)
    assert sg.success is True and g.param is sg and g.status is GStatus.RUNNABLE
    with pytest.raises(Throw, match=r"bad transition WAITING -> RUNNABLE \(status is RUNNABLE\)"):
        Sudog(g).ready(False)  # a second wake-up of one park
