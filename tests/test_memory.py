"""What run() leaves behind: finished goroutines are freed by reference counting alone (no cycle
for the collector), and errors from several goroutines are all accounted for."""

from __future__ import annotations

import gc
import threading

import psutil
import pytest

import mn_runtime as mn
from mn_runtime._rt import gil
from mn_runtime._rt.g import G
from mn_runtime._rt.waitq import Sudog


def _count(*types: type) -> int:
    return sum(1 for o in gc.get_objects() if type(o) in types)


async def _parker(i: int, ch: mn.Chan[int], wg: mn.WaitGroup, mu: mn.Mutex) -> None:
    await ch.send(i)  # parks: a sudog, readied by the receiver
    async with mu:
        await mn.sleep(0)
    wg.done()


async def _workload(n: int) -> int:
    ch: mn.Chan[int] = mn.Chan()
    wg = mn.WaitGroup()
    mu = mn.Mutex()
    wg.add(n)
    for i in range(n):
        mn.go(_parker, i, ch, wg, mu)
    total = 0
    for _ in range(n):
        total += await ch.recv()
    await wg.wait()
    return total


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_finished_goroutines_freed_without_gc(procs: int) -> None:
    n = 20_000
    mn.run(_workload, 100, procs=procs)  # warm-up: module state, first-use caches
    gc.collect()
    gc.disable()
    try:
        before = _count(G, Sudog)
        assert mn.run(_workload, n, procs=procs) == n * (n - 1) // 2
        # Without gc.collect(): every G and sudog of the run is gone by reference counting.
        assert _count(G, Sudog) == before
    finally:
        gc.enable()


@pytest.mark.skipif(not gil.gil_enabled(), reason="RSS returns to the OS on the GIL build's allocator (see docs)")
def test_rss_after_run_without_gc() -> None:
    n = 100_000
    proc = psutil.Process()
    mn.run(_workload, 1000, procs=1)
    gc.collect()
    gc.disable()
    try:
        r0 = proc.memory_info().rss
        mn.run(_workload, n, procs=1)
        grown = proc.memory_info().rss - r0
    finally:
        gc.enable()
    # The run's peak is far larger (every G parked at once); what stays is the allocator's pools.
    assert grown < 32 << 20, f"RSS grew by {grown >> 20} MiB after run() returned"


def test_other_goroutine_errors_are_counted_in_the_note() -> None:
    """Two goroutines raise at the same moment on two Ms (a thread barrier makes it so): run()
    raises one and its notes name the other."""
    barrier = threading.Barrier(2, timeout=10)

    async def boom(k: int) -> None:
        await mn.gosched()
        barrier.wait()  # blocks this M's thread until the other G is running on the other M
        raise ValueError(f"boom {k}")

    async def main() -> None:
        for k in range(2):
            mn.go(boom, k)
        await mn.Chan().recv()

    with pytest.raises(ValueError, match="boom") as info:
        mn.run(main, procs=2)
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "1 other goroutine raised after this one ended the run: ValueError in goroutine" in notes, notes
