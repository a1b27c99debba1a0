"""sync tests: WaitGroup, Mutex (exclusion, starvation-mode fairness), RWMutex (writer preference
without starvation), Once, Cond, Semaphore; at several procs."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import mn_runtime as mn
from mn_runtime import sync as mnsync

pytestmark = pytest.mark.concurrency


def test_bad_input() -> None:
    async def main() -> None:
        wg = mn.WaitGroup()
        with pytest.raises(ValueError, match="negative WaitGroup counter"):
            wg.done()
        with pytest.raises(TypeError, match="needs an int"):
            wg.add(1.0)  # type: ignore[arg-type]
        mu = mn.Mutex()
        with pytest.raises(RuntimeError, match="unlock of unlocked mutex"):
            mu.unlock()
        rw = mn.RWMutex()
        with pytest.raises(RuntimeError, match="Unlock of unlocked RWMutex"):
            rw.unlock()
        with pytest.raises(RuntimeError, match="RUnlock of unlocked RWMutex"):
            rw.runlock()
        with pytest.raises(ValueError, match="size must be >= 1"):
            mn.Semaphore(0)
        sem = mn.Semaphore(2)
        with pytest.raises(ValueError, match="exceeds the size 2"):
            await sem.acquire(3)
        with pytest.raises(ValueError, match="released 1 but only 0 held"):
            sem.release()
        with pytest.raises(TypeError, match=r"Cond\(\) needs an mn\.Mutex"):
            mn.Cond(object())  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="mutex unlocked"):
            await mn.Cond(mu).wait()

    mn.run(main, procs=1)


def test_waitgroup(procs: int, switchinterval: float) -> None:
    async def main() -> int:
        wg = mn.WaitGroup()
        done: list[int] = []
        woke: mn.Chan[int] = mn.Chan(4)

        async def work(i: int) -> None:
            for _ in range(i % 3):
                await mn.gosched()
            done.append(i)
            wg.done()

        async def waiter(k: int) -> None:
            await wg.wait()
            await woke.send(len(done))

        wg.add(50)
        for k in range(4):
            mn.go(waiter, k)
        for i in range(50):
            mn.go(work, i)
        await wg.wait()
        counts = [await woke.recv() for _ in range(4)]
        assert counts == [50] * 4
        await wg.wait()  # at zero: returns at once
        return len(done)

    assert mn.run(main, procs=procs) == 50


def test_mutex_exclusion(procs: int, switchinterval: float) -> None:
    async def main() -> int:
        mu = mn.Mutex()
        state = {"n": 0, "inside": 0}

        async def worker() -> None:
            for _ in range(100):
                async with mu:
                    state["inside"] += 1
                    assert state["inside"] == 1
                    v = state["n"]
                    await mn.gosched()
                    state["n"] = v + 1
                    state["inside"] -= 1

        async with mn.Group() as g:
            for _ in range(6):
                g.go(worker)
        assert not mu.locked() and mu.try_lock() and not mu.try_lock()
        mu.unlock()
        return state["n"]

    assert mn.run(main, procs=procs) == 600


@pytest.mark.parametrize("procs", [1, 2])
def test_mutex_fairness(procs: int) -> None:
    """Go's TestMutexFairness: a G that re-locks at once after every unlock must not starve a
    second one; after 1 ms of waiting the mutex hands itself over (starvation mode)."""

    async def main() -> int:
        mu = mn.Mutex()
        stop = mn.Chan()
        hog_iters = 0

        async def hog() -> None:
            nonlocal hog_iters
            while True:
                await mu.lock()
                await mn.sleep(0.0002)
                mu.unlock()
                hog_iters += 1
                if stop.try_recv()[2]:
                    return

        g = mn.go(hog)
        for _ in range(10):
            await mn.sleep(0.0001)
            await mu.lock()
            mu.unlock()
            # Without starvation mode the hog wins every time; give up long before a timeout.
            assert hog_iters < 3000, "the waiter starved"
        stop.close()
        await g.join()
        return hog_iters

    assert mn.run(main, procs=procs) < 3000


def test_mutex_starvation_threshold_matters(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fairness test above can fail: without starvation mode the second G does starve."""
    monkeypatch.setattr(mnsync, "STARVATION_THRESHOLD", 1e9)

    async def main() -> int:
        mu = mn.Mutex()
        hog_iters = 0
        got = 0

        async def hog() -> None:
            nonlocal hog_iters
            while hog_iters < 300:
                await mu.lock()
                await mn.sleep(0.0001)
                mu.unlock()
                hog_iters += 1

        async def other() -> None:
            nonlocal got
            await mu.lock()
            got = hog_iters
            mu.unlock()

        g = mn.go(hog)
        await mn.sleep(0.001)
        await mn.go(other).join()
        await g.join()
        return got

    assert mn.run(main, procs=1) == 300  # the other G only got in after the hog was done


def test_rwmutex(procs: int, switchinterval: float) -> None:
    async def main() -> tuple[int, int]:
        rw = mn.RWMutex()
        state = {"readers": 0, "maxreaders": 0, "writer": False, "n": 0}
        # Readers hold the read lock together, on several Ms: their count is the test's own shared
        # state and needs its own lock (without the GIL `+= 1` from two threads loses updates).
        counted = threading.Lock()

        async def reader() -> None:
            for _ in range(30):
                async with rw.reader():
                    assert not state["writer"]
                    with counted:
                        state["readers"] += 1
                        state["maxreaders"] = max(state["maxreaders"], state["readers"])
                    await mn.gosched()
                    with counted:
                        state["readers"] -= 1

        async def writer() -> None:
            for _ in range(30):
                async with rw:
                    assert state["readers"] == 0 and not state["writer"]
                    state["writer"] = True
                    v = state["n"]
                    await mn.gosched()
                    state["n"] = v + 1
                    state["writer"] = False

        async with mn.Group() as g:
            for _ in range(4):
                g.go(reader)
            for _ in range(2):
                g.go(writer)
        return state["n"], state["maxreaders"]

    n, maxreaders = mn.run(main, procs=procs)
    assert n == 60 and maxreaders >= 1


def test_rwmutex_writer_preference() -> None:
    """A waiting writer blocks new readers; when it unlocks, the readers that queued run first."""

    async def main() -> list[str]:
        rw = mn.RWMutex()
        order: list[str] = []
        await rw.rlock()

        async def writer() -> None:
            await rw.lock()
            order.append("w")
            rw.unlock()

        async def reader(k: int) -> None:
            await rw.rlock()
            order.append(f"r{k}")
            rw.runlock()

        gw = mn.go(writer)
        while rw.stats().writers_waiting == 0:  # until the writer waits for our read lock
            await mn.sleep(0.0005)
        grs = []
        for k in range(3):
            grs.append(mn.go(reader, k))
            while rw.stats().readers_waiting <= k:  # new readers queue behind the writer
                await mn.sleep(0.0005)
        assert order == []
        rw.runlock()
        await gw.join()
        for gr in grs:
            await gr.join()
        return order

    order = mn.run(main, procs=2)
    # The writer first; the readers it released then run in whatever order the scheduler picks
    # (Go's Unlock readies them one by one, each into runnext).
    assert order[0] == "w" and sorted(order[1:]) == ["r0", "r1", "r2"]


def test_once(procs: int, switchinterval: float) -> None:
    async def main() -> list[int]:
        once = mn.Once()
        calls: list[int] = []
        seen: list[int] = []

        async def init() -> None:
            calls.append(1)
            await mn.sleep(0.005)  # others arrive while it runs and must wait for it

        async def user() -> None:
            await once.do(init)
            seen.append(len(calls))

        async with mn.Group() as g:
            for _ in range(8):
                g.go(user)
        assert once.done
        bad = mn.Once()
        with pytest.raises(ZeroDivisionError):
            await bad.do(lambda: 1 / 0)
        await bad.do(lambda: 1 / 0)  # counts as done, as Go
        # Arguments reach fn, as mn.go passes them; async functions too.
        got: list[Any] = []

        async def init_with(a: int, b: int, *, c: int) -> None:
            got.append((a, b, c))

        withargs = mn.Once()
        await withargs.do(init_with, 1, 2, c=3)
        await withargs.do(init_with, 4, 5, c=6)  # done already: not called again
        plain = mn.Once()
        await plain.do(got.append, "x")
        assert got == [(1, 2, 3), "x"]
        return seen

    assert mn.run(main, procs=procs) == [1] * 8


def test_cond(procs: int, switchinterval: float) -> None:
    async def main() -> list[int]:
        mu = mn.Mutex()
        cond = mn.Cond(mu)
        queue: list[int] = []
        got: list[int] = []
        done = mn.WaitGroup()
        ready = {"go": False}

        async def consumer() -> None:
            while True:
                await mu.lock()
                while not queue:
                    await cond.wait()
                v = queue.pop(0)
                mu.unlock()
                if v < 0:
                    break
                got.append(v)
            done.done()

        async def gate() -> None:
            await mu.lock()
            while not ready["go"]:
                await cond.wait()
            mu.unlock()
            done.done()

        done.add(6)
        for _ in range(3):
            mn.go(consumer)
            mn.go(gate)
        for i in range(200):
            async with mu:
                queue.append(i)
                cond.signal()
        async with mu:
            queue.extend([-1, -1, -1])
            ready["go"] = True
            cond.broadcast()
        await done.wait()
        return sorted(got)

    assert mn.run(main, procs=procs) == list(range(200))


def test_semaphore_weighted_fifo(procs: int, switchinterval: float) -> None:
    """Admission is strictly FIFO: a big request at the head holds back a small one that fits."""

    async def main() -> None:
        sem = mn.Semaphore(4)
        admitted: mn.Chan[int] = mn.Chan(8)
        weights = [3, 1, 2, 4, 1]
        release = [mn.Chan() for _ in weights]
        await sem.acquire(4)

        async def user(k: int) -> None:
            await sem.acquire(weights[k])
            await admitted.send(k)
            await release[k].recv_ok()
            sem.release(weights[k])

        for k in range(len(weights)):
            mn.go(user, k)
            while sem.stats().waiters <= k:  # queue them in this order, whatever the load
                await mn.sleep(0.0005)
        assert not sem.try_acquire(1)

        async def nothing_more() -> bool:
            await mn.sleep(0.005)
            return not admitted.try_recv()[2]

        sem.release(4)
        assert {await admitted.recv(), await admitted.recv()} == {0, 1}  # 3 + 1 fit
        assert await nothing_more()
        release[0].close()  # 3 free: 2 fits; then 3 (needs 4) blocks 4 (needs 1, would fit)
        assert await admitted.recv() == 2
        assert await nothing_more()
        release[1].close()
        release[2].close()
        assert await admitted.recv() == 3
        assert await nothing_more()
        release[3].close()
        assert await admitted.recv() == 4
        release[4].close()

    mn.run(main, procs=procs)
