"""Parking lot tests (_rt/sema.py): the lot as a pure structure first, without a runtime or threads
(order of park/unpark/repark, O(1) removal, counters and their invariants, the debug lock check),
then the blockers built on it (sync's primitives and their stats(), goroutine join, the fd lock
queues) under a running runtime at procs 1, 2 and 4."""

from __future__ import annotations

import contextvars
import dataclasses
import os
import random
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

import mn_runtime as mn
from mn_runtime._rt import lock as _lock
from mn_runtime._rt import sema
from mn_runtime._rt.fd import MODE_WRITE
from mn_runtime._rt.g import EXITED, G
from mn_runtime._rt.sema import JoinLot, LotStats, ParkingLot
from mn_runtime._rt.waitq import Sudog
from mn_runtime.errors import Throw

# --- the pure structure ---


async def _nop() -> None:
    return None


def mkg(i: int) -> G:
    coro = _nop()
    coro.close()
    return G(i, coro, contextvars.copy_context(), f"g{i}")


def ids(sgs: list[Sudog]) -> list[int]:
    return [sg.g.id for sg in sgs]


def queued(lot: ParkingLot) -> list[int]:
    return [sg.g.id for sg in lot]


def test_park_unpark_fifo() -> None:
    lk = threading.Lock()
    lot = ParkingLot(lk)
    with lk:
        assert not lot and len(lot) == 0 and lot.peek() is None
        sgs = [lot.park(mkg(i)) for i in range(1, 6)]
        assert [sg.g.id for sg in sgs] == [1, 2, 3, 4, 5] and len(lot) == 5 and lot
        assert lot.peek() is sgs[0]
        assert ids([s for s in [lot.unpark_one()] if s is not None]) == [1]
        assert ids(lot.unpark(2)) == [2, 3]
        assert ids(lot.unpark_all()) == [4, 5]
        assert lot.unpark_one() is None and lot.unpark(3) == [] and lot.unpark_all() == []
        assert lot.unpark(0) == []
        with pytest.raises(ValueError, match="negative count"):
            lot.unpark(-1)
        assert lot.stats() == LotStats(waiters=0, parks=5, unparks=5, handoffs=0, removes=0)
        lot.checkinv("test")
        # A sudog that has left holds no links into the lot.
        assert all(sg.q is None for sg in sgs)


def test_unpark_more_than_queued_and_handoff_counts() -> None:
    lk = threading.Lock()
    lot = ParkingLot(lk)
    with lk:
        for i in range(3):
            lot.park(mkg(i))
        assert ids(lot.unpark(10, handoff=True)) == [0, 1, 2]
        lot.park(mkg(3))
        lot.park(mkg(4))
        assert lot.unpark_one(handoff=False) is not None
        assert len(lot.unpark_all(handoff=True)) == 1
        assert lot.stats() == LotStats(waiters=0, parks=5, unparks=5, handoffs=4, removes=0)
        lot.checkinv("test")


def test_repark_at_head_or_tail() -> None:
    """A woken waiter that must wait again keeps its turn at the head (lifo, the Mutex case), or
    goes to the back; either way it counts a second park."""
    lk = threading.Lock()
    lot = ParkingLot(lk)
    with lk:
        for i in range(1, 4):
            lot.park(mkg(i))
        sg = lot.unpark_one()
        assert sg is not None and sg.g.id == 1 and queued(lot) == [2, 3]
        lot.repark(sg, lifo=True)
        assert queued(lot) == [1, 2, 3]
        sg = lot.unpark_one()
        assert sg is not None
        lot.repark(sg)
        assert queued(lot) == [2, 3, 1]
        assert lot.stats() == LotStats(waiters=3, parks=5, unparks=2, handoffs=0, removes=0)
        lot.checkinv("test")
        with pytest.raises(Throw, match="already on a queue"):
            lot.repark(lot.first)  # type: ignore[arg-type]
        sel = Sudog(mkg(9), isselect=True)
        with pytest.raises(Throw, match="select's sudog"):
            lot.repark(sel)


def test_remove_any_position() -> None:
    lk = threading.Lock()
    lot = ParkingLot(lk)
    with lk:
        sgs = [lot.park(mkg(i)) for i in range(6)]
        assert lot.remove(sgs[3]) and queued(lot) == [0, 1, 2, 4, 5]  # middle
        assert lot.remove(sgs[0]) and queued(lot) == [1, 2, 4, 5]  # head
        assert lot.remove(sgs[5]) and queued(lot) == [1, 2, 4]  # tail
        assert not lot.remove(sgs[3])  # already gone: a second remove is a no-op
        sg = lot.unpark_one()
        assert sg is sgs[1]
        assert not lot.remove(sg)  # a waker took it first: its goready is coming
        assert lot.peek() is sgs[2] and lot.last is sgs[4]
        assert lot.stats() == LotStats(waiters=2, parks=6, unparks=1, handoffs=0, removes=3)
        lot.checkinv("test")
        other = ParkingLot(lk)
        with pytest.raises(Throw, match="on another queue"):
            other.remove(sgs[2])
        assert lot.remove(sgs[2]) and lot.remove(sgs[4])
        assert not lot and lot.first is None and lot.last is None
        lot.checkinv("test")


def _line_events(fn: Callable[[], Any]) -> int:
    """_line_events counts the Python lines fn executes in the runtime's files (sema.py, waitq.py):
    the same count for a short and a long lot means no step walks the lot."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if not frame.f_code.co_filename.endswith(("sema.py", "waitq.py")):
            return None
        if event == "line":
            count += 1
        return tracer

    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(old)
    return count


@pytest.mark.parametrize("where", ["head", "middle", "tail"])
def test_remove_park_unpark_are_o1(where: str) -> None:
    """Every operation on a lot does a constant amount of work, whatever its length: counted in
    executed lines (deterministic, unlike a timing), for lots of 4 and of 4,000 waiters."""
    lk = threading.Lock()
    costs: dict[str, list[int]] = {"park": [], "remove": [], "unpark": [], "repark": []}
    with lk:
        for n in (4, 4000):
            lot = ParkingLot(lk)
            sgs = [lot.park(mkg(i)) for i in range(n)]
            victim = {"head": sgs[0], "middle": sgs[n // 2], "tail": sgs[-1]}[where]
            g = mkg(n)
            costs["park"].append(_line_events(lambda lot=lot, g=g: lot.park(g)))
            costs["remove"].append(_line_events(lambda lot=lot, v=victim: lot.remove(v)))
            got: list[Sudog | None] = []
            costs["unpark"].append(_line_events(lambda lot=lot, got=got: got.append(lot.unpark_one())))
            sg = got[0]
            assert sg is not None
            costs["repark"].append(_line_events(lambda lot=lot, sg=sg: lot.repark(sg, lifo=True)))
            assert len(lot) == n
            lot.checkinv("test")
    for op, (small, big) in costs.items():
        assert small == big > 0, f"{op} costs {small} lines on a lot of 4 and {big} on 4,000"


def test_counters_match_a_model_under_random_operations() -> None:
    """A seeded random walk of every operation against a list model: order, length and counters
    agree after each step, and the invariants hold (parks == unparks + removes + waiters)."""
    rnd = random.Random(1515)
    lk = threading.Lock()
    lot = ParkingLot(lk)
    model: list[Sudog] = []
    out: list[Sudog] = []  # unparked, may be reparked
    parks = unparks = handoffs = removes = 0
    nextid = 0
    with lk:
        for _ in range(3000):
            op = rnd.random()
            if op < 0.35:
                nextid += 1
                model.append(lot.park(mkg(nextid)))
                parks += 1
            elif op < 0.5 and out:
                sg = out.pop(rnd.randrange(len(out)))
                lifo = rnd.random() < 0.5
                lot.repark(sg, lifo=lifo)
                model.insert(0, sg) if lifo else model.append(sg)
                parks += 1
            elif op < 0.65:
                ho = rnd.random() < 0.5
                sg = lot.unpark_one(handoff=ho)
                assert sg is (model.pop(0) if model else None)
                if sg is not None:
                    out.append(sg)
                    unparks += 1
                    handoffs += ho
            elif op < 0.75:
                k = rnd.randrange(4)
                got = lot.unpark(k)
                assert got == model[:k]
                del model[:k]
                out.extend(got)
                unparks += len(got)
            elif op < 0.78:
                got = lot.unpark_all(handoff=True)
                assert got == model
                model.clear()
                out.extend(got)
                unparks += len(got)
                handoffs += len(got)
            elif model or out:
                # Mostly a waiter still queued; sometimes one that already left (a lost race).
                pool = model if model and (not out or rnd.random() < 0.8) else out
                sg = pool[rnd.randrange(len(pool))]
                here = sg in model
                assert lot.remove(sg) is here
                if here:
                    model.remove(sg)
                    removes += 1
            assert list(lot) == model and len(lot) == len(model)
            assert lot.stats() == LotStats(len(model), parks, unparks, handoffs, removes)
            lot.checkinv("test")
    assert parks > 500 and unparks > 500 and removes > 100 and handoffs > 100


def test_checkinv_catches_broken_counters() -> None:
    lk = threading.Lock()
    lot = ParkingLot(lk)
    with lk:
        lot.park(mkg(1))
        lot.nunparks += 1
        with pytest.raises(Throw, match=r"counters disagree: 1 parks != 1 unparks \+ 0 removes \+ 1 waiting"):
            lot.checkinv("test")
        lot.nunparks -= 1
        lot.nhandoffs = 1
        with pytest.raises(Throw, match="1 handoffs out of 0 unparks"):
            lot.checkinv("test")
        lot.nhandoffs = 0
        lot.n = 0
        with pytest.raises(Throw, match="its ends say otherwise"):
            lot.checkinv("test")


def test_stats_snapshot_is_frozen() -> None:
    st = ParkingLot(threading.Lock()).stats()
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.waiters = 1  # type: ignore[misc]


def test_lockcheck_asserts_the_owners_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """With lock checking on, every operation on a lot asserts that the caller holds the lot's
    owner lock (the lot has none of its own)."""
    monkeypatch.setattr(_lock, "lockcheck", True)
    lk = _lock.CheckedLock(_lock.RANK_OBJECT, "test.owner")
    lot = ParkingLot(lk)
    with pytest.raises(Throw, match=r"ParkingLot\.park: called without test\.owner held"):
        lot.park(mkg(1))
    with lk:
        sg = lot.park(mkg(1))
    for name, call in [
        ("unpark_one", lot.unpark_one),
        ("unpark_all", lot.unpark_all),
        ("remove", lambda: lot.remove(sg)),
        ("repark", lambda: lot.repark(sg)),
    ]:
        with pytest.raises(Throw, match=rf"ParkingLot\.{name}: called without test\.owner held"):
            call()
    with lk:
        assert lot.remove(sg)
        assert lot.stats() == LotStats(0, 1, 0, 0, 1)


def test_join_lot_made_with_its_first_joiner_agrees_with_park() -> None:
    """JoinLot(lock, sg), the first waited-for join's one-call lot, is the state ParkingLot's
    park would make: same links, counts and stats, and it goes on like any lot."""
    lk = threading.Lock()
    g1, g2 = mkg(1), mkg(2)
    a = JoinLot(lk, Sudog(g1))
    b = JoinLot(lk)
    with lk:
        sb = b.park(g1)
    sa = a.first
    assert sa is not None and a.last is sa and sa.q is a and sa.next is None and sa.prev is None
    assert (b.first, b.last, sb.q, sb.next, sb.prev) == (sb, sb, b, None, None)
    assert a.stats() == b.stats() == LotStats(1, 1, 0, 0, 0) and a.n == b.n == 1
    with lk:
        a.park(g2)
        a.checkinv("test")
        assert [sg.g.id for sg in a] == [1, 2]
    with pytest.raises(Throw, match="already on a queue"):
        JoinLot(lk, sa)


def test_join_lot_drains_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """goexit's contract: readyjoiners on a detached JoinLot unparks every joiner, head first, puts
    each sudog back in its joiner's cache and readies it at the ring's tail (next=False); the lot
    is empty after and counted every unpark."""
    readied: list[tuple[int, bool, bool]] = []
    monkeypatch.setattr(sema, "goready", lambda g, next=True: readied.append((g.id, next, g.sudog is not None)))
    lot = JoinLot(threading.Lock())
    with lot.lock:
        for i in range(1, 5):
            lot.park(mkg(i))
    lot.readyjoiners()
    assert readied == [(i, False, True) for i in range(1, 5)]
    assert lot.first is None and lot.stats() == LotStats(0, 4, 4, 0, 0)
    lot.readyjoiners()
    assert len(readied) == 4


# --- integration: the blockers built on the lot, on a running runtime ---


async def _until(cond: Callable[[], bool], what: str) -> None:
    """_until polls cond (a condition other goroutines make true) with short sleeps."""
    for _ in range(20000):
        if cond():
            return
        await mn.sleep(0.0005)
    raise AssertionError(f"timed out waiting until {what}")


def _gof(h: Any) -> G:
    """_gof: the runtime's G behind a goroutine handle (the handle may be the G itself)."""
    return getattr(h, "_g", h)


def test_mutex_stats_count_parks_and_unparks(procs: int) -> None:
    async def main() -> None:
        mu = mn.Mutex()
        n = 8
        done = 0
        await mu.lock()
        assert mu.stats() == mn.sync.MutexStats(True, False, 0, 0, 0, 0)

        async def worker() -> None:
            nonlocal done
            await mu.lock()
            done += 1  # under mu
            mu.unlock()

        gs = [mn.go(worker) for _ in range(n)]
        await _until(lambda: mu.stats().waiters == n, "every worker waits")
        st = mu.stats()
        assert (st.locked, st.waiters, st.parks, st.unparks) == (True, n, n, 0)
        mu.unlock()
        for g in gs:
            await g.join()
        st = mu.stats()
        assert done == n
        assert not st.locked and st.waiters == 0
        # Conservation: every park was answered by an unpark (a woken waiter that lost to a
        # newcomer parks again and is counted again).
        assert st.parks == st.unparks >= n and st.handoffs <= st.unparks

    mn.run(main, procs=procs)


def test_mutex_starvation_handoff_is_counted() -> None:
    """A woken waiter that loses to a newcomer after waiting over 1 ms puts the mutex into
    starvation mode, re-parks at the head, and the next unlock hands the mutex to it. procs=1
    makes the race deterministic: the unlocker re-locks before the woken G can run."""

    async def main() -> None:
        mu = mn.Mutex()
        got: list[str] = []
        await mu.lock()

        async def waiter() -> None:
            await mu.lock()
            got.append("waiter")
            mu.unlock()

        g = mn.go(waiter)
        await _until(lambda: mu.stats().waiters == 1, "the waiter parks")
        await mn.sleep(0.003)  # well past the 1 ms threshold
        mu.unlock()  # wakes it (normal mode) ...
        await mu.lock()  # ... and takes the mutex back before it runs: it loses
        await _until(lambda: mu.stats().parks == 2, "the woken waiter parks again")
        st = mu.stats()
        assert st.starving and st.waiters == 1 and st.unparks == 1 and st.handoffs == 0
        got.append("main")
        mu.unlock()  # starvation mode: handed straight to the waiter
        await g.join()
        st = mu.stats()
        assert got == ["main", "waiter"]
        assert st == mn.sync.MutexStats(False, False, 0, 2, 2, 1)

    mn.run(main, procs=1)


def test_mutex_counter_conserved_under_contention(procs: int, switchinterval: float) -> None:
    """Many Gs on several Ms increment a counter under the Mutex, parking on it; repeated, since a
    lost wake-up or a double hand-off would show only now and then. The count is exact, and the
    lot's counters balance."""

    async def main() -> tuple[int, mn.sync.MutexStats]:
        mu = mn.Mutex()
        state = {"n": 0, "inside": 0}

        async def worker() -> None:
            for i in range(60):
                async with mu:
                    state["inside"] += 1
                    assert state["inside"] == 1
                    v = state["n"]
                    if i % 3 == 0:
                        await mn.gosched()  # hold it across a yield: others must park
                    state["n"] = v + 1
                    state["inside"] -= 1

        async with mn.Group() as g:
            for _ in range(6):
                g.go(worker)
        return state["n"], mu.stats()

    for _ in range(3):
        n, st = mn.run(main, procs=procs)
        assert n == 360
        assert not st.locked and st.waiters == 0 and st.parks == st.unparks > 0


def test_semaphore_stats_and_conservation(procs: int, switchinterval: float) -> None:
    async def main() -> mn.sync.SemaphoreStats:
        sem = mn.Semaphore(5)
        mu = threading.Lock()  # the test's own state, shared by Gs on several Ms
        held = {"now": 0, "peak": 0}

        async def user(k: int) -> None:
            w = 1 + k % 3
            for _ in range(20):
                await sem.acquire(w)
                with mu:
                    held["now"] += w
                    held["peak"] = max(held["peak"], held["now"])
                await mn.gosched()
                with mu:
                    held["now"] -= w
                sem.release(w)

        await sem.acquire(5)  # everyone queues first: parks are certain
        gs = [mn.go(user, k) for k in range(8)]
        await _until(lambda: sem.stats().waiters == 8, "every user waits")
        st = sem.stats()
        assert (st.size, st.held, st.waiters, st.parks, st.unparks) == (5, 5, 8, 8, 0)
        sem.release(5)
        for g in gs:
            await g.join()
        assert held == {"now": 0, "peak": held["peak"]} and 1 <= held["peak"] <= 5
        return sem.stats()

    st = mn.run(main, procs=procs)
    assert st.held == 0 and st.waiters == 0 and st.parks == st.unparks >= 8


def test_waitgroup_cond_once_rwmutex_stats(procs: int) -> None:
    async def main() -> None:
        n = 5
        wg = mn.WaitGroup()
        wg.add(1)
        ws = [mn.go(wg.wait) for _ in range(n)]
        await _until(lambda: wg.stats().waiters == n, "every G waits on the WaitGroup")
        assert wg.stats() == mn.sync.WaitGroupStats(1, n, n, 0)
        wg.done()
        for g in ws:
            await g.join()
        assert wg.stats() == mn.sync.WaitGroupStats(0, 0, n, n)

        mu = mn.Mutex()
        cond = mn.Cond(mu)
        go_on = False

        async def cwait() -> None:
            async with mu:
                while not go_on:
                    await cond.wait()

        cs = [mn.go(cwait) for _ in range(n)]
        await _until(lambda: cond.stats().waiters == n, "every G waits on the Cond")
        async with mu:
            cond.signal()  # wakes one, which finds go_on False and waits again
        await _until(lambda: cond.stats().parks == n + 1, "the signalled G waits again")
        async with mu:
            go_on = True
            cond.broadcast()
        for g in cs:
            await g.join()
        assert cond.stats() == mn.sync.CondStats(0, n + 1, n + 1)

        once = mn.Once()
        release = mn.Chan()
        first = mn.go(once.do, release.recv)
        await _until(lambda: once.stats().parks == 0 and not once.done and once._running, "do runs")
        os_ = [mn.go(once.do, release.recv) for _ in range(n)]
        await _until(lambda: once.stats().waiters == n, "every other do waits")
        await release.send(None)
        await first.join()
        for g in os_:
            await g.join()
        assert once.stats() == mn.sync.OnceStats(True, 0, n, n)

        rw = mn.RWMutex()
        await rw.rlock()
        wr = mn.go(rw.lock)
        await _until(lambda: rw.stats().writers_waiting == 1, "the writer waits")
        rs = [mn.go(rw.rlock) for _ in range(n)]
        await _until(lambda: rw.stats().readers_waiting == n, "new readers queue behind it")
        assert rw.stats() == mn.sync.RWMutexStats(1, False, n, 1, n + 1, 0)
        rw.runlock()  # hands the lock to the writer
        await wr.join()
        assert rw.stats() == mn.sync.RWMutexStats(0, True, n, 0, n + 1, 1)
        rw.unlock()  # hands it to every waiting reader at once
        for g in rs:
            await g.join()
        assert rw.stats() == mn.sync.RWMutexStats(n, False, 0, 0, n + 1, n + 1)
        for _ in range(n):
            rw.runlock()

    mn.run(main, procs=procs)


def test_join_parks_on_the_targets_lot(procs: int, switchinterval: float) -> None:
    """Joiners of a running G park on its join lot (made by the first joiner that waits); its exit
    readies all of them with its result and leaves EXITED. A G nobody waits for gets no lot, and
    joining a finished G does not make one."""

    async def main() -> None:
        gate = mn.Chan()

        async def target() -> int:
            await gate.recv()
            return 42

        t = mn.go(target)
        tg = _gof(t)
        assert tg.joiners is None  # the cheap path: no lot until someone waits
        results: list[int] = []
        rlock = threading.Lock()

        async def joiner() -> None:
            r = await t.join()
            with rlock:
                results.append(r)

        n = 6
        js = [mn.go(joiner) for _ in range(n)]

        def parked() -> bool:
            with tg.lock:
                lot = tg.joiners
                return isinstance(lot, JoinLot) and len(lot) == n

        await _until(parked, "every joiner parks on the target's lot")
        lot = tg.joiners
        assert isinstance(lot, JoinLot) and lot.lock is tg.lock
        await gate.send(None)
        for j in js:
            await j.join()
        assert results == [42] * n
        assert tg.joiners is EXITED
        assert lot.stats() == LotStats(0, n, n, 0, 0)

        async def quick() -> str:
            return "q"

        q = mn.go(quick)
        qg = _gof(q)
        await _until(lambda: q.done, "quick finishes")
        assert qg.joiners is EXITED  # finished before anyone joined: never had a lot
        assert await q.join() == "q"  # the fast path: no park, no lot
        assert qg.joiners is EXITED

    for _ in range(3):
        mn.run(main, procs=procs)


def _pipe() -> tuple[Any, Any]:
    r, w = os.pipe()
    return mn.net.wrap_fd(r), mn.net.wrap_fd(w)


def test_fd_write_lock_queue(procs: int) -> None:
    """Writers of one pipe queue for its write lock on the fd's lot, which hands the lock to each
    in turn: every write lands whole (no interleaving), in the order they queued, and the lot's
    counters balance (every unpark a hand-off)."""

    async def main() -> None:
        rd, wr = _pipe()
        n, size = 4, 200_000  # far over a pipe's buffer: each writer parks holding the lock
        fd = wr._fd
        assert fd.waiters[MODE_WRITE] is None  # no lot until a G has to queue

        async def writer(k: int) -> None:
            await wr.write(bytes([65 + k]) * size)

        first = mn.go(writer, 0)
        await _until(lambda: fd.state & MODE_WRITE != 0, "the first writer holds the lock")
        gs = [first]
        for k in range(1, n):
            gs.append(mn.go(writer, k))
            await _until(lambda k=k: fd.waiters[MODE_WRITE] is not None and len(fd.waiters[MODE_WRITE]) == k, "queued")
        lot = fd.waiters[MODE_WRITE]
        assert lot is not None
        with fd.mu:
            assert lot.stats() == LotStats(n - 1, n - 1, 0, 0, 0)
        data = bytearray()
        while len(data) < n * size:
            data += await rd.read(1 << 20)
        for g in gs:
            await g.join()
        assert bytes(data) == b"".join(bytes([65 + k]) * size for k in range(n))
        with fd.mu:
            assert lot.stats() == LotStats(0, n - 1, n - 1, n - 1, 0)
            assert fd.state & (MODE_WRITE << 3) == 0  # the wait bit is clear with the lot empty
        rd.close()
        wr.close()

    mn.run(main, procs=procs)


def test_fd_close_wakes_queued_lockers(procs: int) -> None:
    """Closing an fd with writers queued for its lock: the holder's wait fails with ClosedError,
    then each queued writer is handed the lock, sees the fd closing and fails the same way."""

    async def main() -> None:
        rd, wr = _pipe()
        fd = wr._fd
        errs: list[str] = []
        elock = threading.Lock()

        async def writer() -> None:
            try:
                await wr.write(b"x" * 200_000)
            except mn.ClosedError as e:
                with elock:
                    errs.append(str(e))

        gs = [mn.go(writer) for _ in range(4)]
        await _until(lambda: fd.waiters[MODE_WRITE] is not None and len(fd.waiters[MODE_WRITE]) == 3, "queued")
        lot = fd.waiters[MODE_WRITE]
        assert lot is not None
        wr.close()
        for g in gs:
            await g.join()
        assert errs == ["use of closed network connection"] * 4
        with fd.mu:
            assert lot.stats() == LotStats(0, 3, 3, 3, 0)
        assert fd.closed
        rd.close()

    mn.run(main, procs=procs)


@pytest.mark.mn(procs=[1, 2, 4], chaos_seeds=6)
async def test_blockers_under_chaos() -> None:
    """The blockers on the lot under seeded chaos (random delays of readies, preemption, steals;
    docs/stress.md): a Mutex-guarded count, Semaphore holders bounded by its size, a WaitGroup and
    joins, all exact, and every lot's counters balanced. A failure names its replayable seed."""
    mu = mn.Mutex()
    sem = mn.Semaphore(2)
    wg = mn.WaitGroup()
    state = {"n": 0, "holders": 0, "peak": 0}
    guard = threading.Lock()  # the semaphore holders' count: Gs on several Ms change it

    async def worker(k: int) -> int:
        for _ in range(15):
            async with mu:
                v = state["n"]
                await mn.gosched()
                state["n"] = v + 1
            async with sem:
                with guard:
                    state["holders"] += 1
                    state["peak"] = max(state["peak"], state["holders"])
                await mn.gosched()
                with guard:
                    state["holders"] -= 1
        wg.done()
        return k

    wg.add(6)
    gs = [mn.go(worker, k) for k in range(6)]
    await wg.wait()
    assert [await g.join() for g in gs] == list(range(6))
    assert state["n"] == 90 and state["holders"] == 0 and 1 <= state["peak"] <= 2
    m, s, w = mu.stats(), sem.stats(), wg.stats()
    assert not m.locked and m.waiters == 0 and m.parks == m.unparks
    assert s.held == 0 and s.waiters == 0 and s.parks == s.unparks
    assert w.count == 0 and w.waiters == 0 and w.parks == w.unparks
