"""The global run queue as a pure structure (globrunq.py), without threads: batch sizes, the
timers-first rule, chaos's random take, its invariant check, and its lock asserted in debug mode."""

from __future__ import annotations

import threading

import pytest

from mn_runtime._rt import lock as _lock
from mn_runtime._rt.globrunq import GlobRunq
from mn_runtime._rt.idle import injectglist
from mn_runtime._rt.p import P
from mn_runtime.errors import Throw

from .test_runq import FakeSched, mkg


def ids(q: GlobRunq) -> list[int]:
    return [g.id for g in q.q]


def test_put_and_putbatch_keep_fifo_order_and_count() -> None:
    lk = threading.Lock()
    q = GlobRunq(lk)
    with lk:
        q.put(mkg(1))
        q.putbatch([mkg(2), mkg(3)])
        q.put(mkg(4))
    assert ids(q) == [1, 2, 3, 4] and len(q) == 4 and q.nput == 4
    with lk:
        got = [q.get(P(0, 8), 4, 1) for _ in range(5)]
    assert [g.id if g is not None else None for g in got] == [1, 2, 3, 4, None]


def test_get_batch_is_fair_share() -> None:
    s = FakeSched(procs=4)
    p = P(0, 8)
    with s.lock:
        s.runq.putbatch([mkg(i) for i in range(20)])
        g = s.runq.get(p, s.procs, 0)
    assert g is not None and g.id == 0 and p.nglobal == 1
    # min(len, len/procs + 1, cap/2) = min(20, 6, 4) = 4: one to run, three onto the ring.
    assert [x.id for x in p.runq] == [1, 2, 3]
    assert len(s.runq) == 16
    with s.lock:
        g = s.runq.get(P(1, 8), s.procs, 1)
    assert g is not None and g.id == 4 and len(s.runq) == 15


def test_get_never_overfills_the_ring() -> None:
    s = FakeSched(procs=1)
    p = P(0, 8)
    with s.lock:
        s.runq.putbatch([mkg(i) for i in range(20)])
    p.runq.extend(mkg(100 + i) for i in range(7))  # one free slot
    with s.lock:
        g = s.runq.get(p, 1, 0)
    assert g is not None and g.id == 0 and len(p.runq) == 8 and len(s.runq) == 18


def test_timers_gs_go_to_the_front_in_firing_order() -> None:
    """injectglist(timers=True) puts timers' Gs at the front of the global queue, behind timers' Gs
    already there, and counts them in ntimerg; get takes them first and counts down."""
    s = FakeSched(procs=1)
    injectglist(s, [mkg(1), mkg(2)])  # type: ignore[arg-type]
    injectglist(s, [mkg(10), mkg(11)], timers=True)  # type: ignore[arg-type]
    injectglist(s, [mkg(12)], timers=True)  # type: ignore[arg-type]
    assert ids(s.runq) == [10, 11, 12, 1, 2]
    assert s.runq.ntimerg == 3
    with s.lock:
        g = s.runq.get(P(0, 8), 1, 1)
    assert g is not None and g.id == 10 and s.runq.ntimerg == 2
    with s.lock:
        g = s.runq.get(P(1, 8), 1, 0)
    # A batch (min(4, 4/1 + 1, 8/2) = 4) passes the timers' Gs and one more: the count reaches 0.
    assert g is not None and g.id == 11 and s.runq.ntimerg == 0
    injectglist(s, [mkg(13)], timers=True)  # type: ignore[arg-type]
    assert ids(s.runq) == [13] and s.runq.ntimerg == 1
    with s.lock:
        g = s.runq.get(P(2, 8), 1, 0)
        s.runq.check()
    assert g is not None and g.id == 13 and s.runq.ntimerg == 0 and not s.runq.q


def test_take_at_picks_within_the_window_and_keeps_the_timers_count() -> None:
    lk = threading.Lock()
    q = GlobRunq(lk)
    with lk:
        q.puttimers([mkg(1), mkg(2)])
        q.putbatch([mkg(3), mkg(4), mkg(5)])
        g = q.take_at(0.0, 2)  # the first of the first two: a timers' G
        assert g is not None and g.id == 1 and q.ntimerg == 1
        g = q.take_at(0.99, 3)  # the third of the first three: not a timers' G
        assert g is not None and g.id == 4 and q.ntimerg == 1
        assert ids(q) == [2, 3, 5]
        with pytest.raises(Throw, match="outside"):
            q.take_at(1.0, 3)
        for _ in range(3):
            assert q.take_at(0.5, 8) is not None
        assert q.take_at(0.5, 8) is None and q.ntimerg == 0
        q.check()


def test_check_sees_a_broken_timers_count() -> None:
    lk = threading.Lock()
    q = GlobRunq(lk)
    q.ntimerg = 2  # corrupted on purpose: timers' Gs counted with none queued
    with lk, pytest.raises(Throw, match="ntimerg 2 with 0"):
        q.check()


def test_lockcheck_asserts_sched_lock_held() -> None:
    """Under MN_DEBUG=lockcheck=1 every change must hold the lock the queue was made with."""
    _lock.configure(True)
    try:
        lk = _lock.new("sched.lock")
        q = GlobRunq(lk)
        with pytest.raises(Throw, match="globrunqput"):
            q.put(mkg(1))
        with lk:
            q.put(mkg(1))
            assert q.get(P(0, 8), 1, 0) is not None
        with pytest.raises(Throw, match="globrunqget"):
            q.get(P(0, 8), 1, 0)
    finally:
        _lock.configure(False)


def test_only_globrunq_changes_the_global_queue() -> None:
    """The owner rule: no module of the runtime changes the global queue's deque itself."""
    import ast
    import pathlib

    import mn_runtime

    root = pathlib.Path(mn_runtime.__file__).parent
    bad = []
    for f in sorted(root.rglob("*.py")):
        if f.name == "globrunq.py":
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("append", "appendleft", "extend", "insert", "pop", "popleft", "clear", "remove")
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "q"
                and isinstance(node.value.value, ast.Attribute)
                and node.value.value.attr == "runq"
            ):
                bad.append(f"{f.relative_to(root)}:{node.lineno}")
            if isinstance(node, ast.Attribute) and node.attr == "ntimerg" and isinstance(node.ctx, ast.Store):
                bad.append(f"{f.relative_to(root)}:{node.lineno} writes ntimerg")
    assert bad == []
