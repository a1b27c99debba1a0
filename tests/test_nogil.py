"""Regression tests for races that the GIL hid: each names the check-then-act it covers.

Each fails on the code before its fix either every time (a window widened by a patched, slowed
step) or, where no step can be slowed from outside, often enough over its repetitions on the
free-threaded build; under the GIL they pass either way, which is why they run on both builds.
"""

from __future__ import annotations

import threading
import time

import pytest

import mn_runtime as mn
from mn_runtime import context as mnctx
from mn_runtime._rt import sysmon as _sysmon
from mn_runtime._rt import timers as _timers

from .rtutil import runtime_threads


def test_deadlock_found_when_the_poller_finishes_its_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The last M went idle while the poller was busy (checkdead skipped: the poller's batch
    might ready a G); the batch readied nobody. Then the poller must run checkdead itself, or
    run() waits forever (tests/test_context.py's cancelled timeout hung so on 3.14t).

    The poller's pass over the timers is slowed to 0.3 s, so main parks inside that window."""
    real = _timers.TimerHeap.run_expired
    slowed = threading.Event()

    def slow_run_expired(self: _timers.TimerHeap, now: float, limit: int = 0) -> int:
        if threading.current_thread().name == "mn-netpoll" and not slowed.is_set():
            slowed.set()
            time.sleep(0.3)
        return real(self, now, limit)

    monkeypatch.setattr(_timers.TimerHeap, "run_expired", slow_run_expired)

    async def main() -> None:
        _, cancel = mnctx.with_timeout(mnctx.background(), 30.0)  # wakes the poller (earlier timer)
        while not slowed.is_set():  # until the poller is inside its busy window
            await mn.syscall(time.sleep, 0.001)
        cancel()
        await mn.Chan().recv()

    t0 = time.monotonic()
    with pytest.raises(mn.Deadlock, match="chan receive"):
        mn.run(main, procs=1)
    assert slowed.is_set()
    assert time.monotonic() - t0 < 5
    assert runtime_threads() == []


@pytest.mark.parametrize("procs", [1, 2])
def test_sysmon_wakes_for_every_run(procs: int) -> None:
    """sysmon decided to sleep deeply (every P idle) while the first M took its P: without
    sched.lock around the decision, acquirep read `deep` before sysmon stored it, and sysmon slept
    through the run, up to a second (no preemption request for a long slice, no retake of a P
    in a syscall). Repeated: the window is a few instructions wide. The slice is 250 ms, 25 times
    the 10 ms limit and a quarter of the deep sleep, so that a busy host delaying sysmon's ticks
    cannot fail the test while the bug still does."""
    for _ in range(15):

        async def hog() -> int:
            t = time.monotonic()
            while time.monotonic() - t < 0.25:
                pass
            await mn.gosched()
            return mn.stats()["preempt_requests"]

        assert mn.run(hog, procs=procs) >= 1


def test_syscall_returning_after_stop_does_not_resume_its_goroutine(monkeypatch: pytest.MonkeyPatch) -> None:
    """exitsyscall's fast path (its P still waiting for it) must abandon the G when run() has
    stopped meanwhile, as the slow path does; it resumed it when sysmon had not retaken the P
    (as when sysmon slept through the run, above). sysmon's retake is switched off here, so the
    call always returns by the fast path (at procs=2, so main has a P to finish on meanwhile)."""
    monkeypatch.setattr(_sysmon.Sysmon, "retake", lambda self, now: 0)
    resumed: list[bool] = []
    lock = threading.Lock()

    async def blocker() -> None:
        await mn.syscall(time.sleep, 0.2)
        with lock:
            resumed.append(True)

    async def main() -> None:
        mn.go(blocker)
        await mn.sleep(0.02)

    for _ in range(3):
        mn.run(main, procs=2)
        with lock:
            assert resumed == []
        assert runtime_threads() == []


def test_poller_pass_before_main_is_queued(monkeypatch: pytest.MonkeyPatch) -> None:
    """The poller and sysmon start before run() queues main, and run checkdead after each pass:
    a pass finishing first saw no M and no G and threw "checkdead: no goroutines left but the
    runtime was not stopped" (seen under chaos, whose spurious poller wake-ups make such an early
    pass likely). Here the poller is woken and given 0.1 s before main is queued."""
    from mn_runtime._rt.sched import Sched

    real = Sched.newproc

    def late_main(self: Sched, *args: object, **kwargs: object) -> object:
        if kwargs.get("main"):
            self.netpoll.wakeup()
            time.sleep(0.1)
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Sched, "newproc", late_main)

    async def main() -> int:
        await mn.sleep(0.01)
        return 7

    for procs in (1, 2):
        assert mn.run(main, procs=procs) == 7
    assert runtime_threads() == []


class _SlowFromGoexit:
    """A lock that sleeps before taking itself when goexit takes it: widens the window between a
    G's exit becoming visible to join() and its removal from the G table."""

    def __init__(self, inner: threading.Lock) -> None:
        self.inner = inner

    def acquire(self, *args: object) -> bool:
        import sys

        if sys._getframe(2).f_code.co_name == "goexit":  # goexit -> GTable.remove -> acquire
            time.sleep(0.02)
        return self.inner.acquire(*args)  # type: ignore[arg-type]

    def release(self) -> None:
        self.inner.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_joined_goroutine_is_not_counted(procs: int) -> None:
    """num_goroutine() after join() must not count the joined G. goexit marked the G EXITED (join's
    fast path on another M returns) before removing it from allgs, so a program that joined all
    its children still counted one (tests/test_chaos.py's timer test saw 2 == 1 at procs=4)."""
    from mn_runtime._rt import tls as _tls

    async def child() -> None:
        await mn.gosched()

    async def main() -> list[int]:
        s = _tls.cur
        assert s is not None
        s.allgs.locks = [_SlowFromGoexit(lk) for lk in s.allgs.locks]  # type: ignore[misc]
        counts = []
        for _ in range(5):
            gs = [mn.go(child) for _ in range(4)]
            for g in gs:
                await g.join()
            counts.append(mn.num_goroutine())
        return counts

    assert mn.run(main, procs=procs) == [1] * 5


class _SlowScanAllp(list):  # type: ignore[type-arg]
    """sched.allp whose iteration by sysmon's clearpreempt, once it has scanned every P, waits
    (up to 1 s) for run() to start stopping and then for stop() to finish: the window between
    the scan and the store."""

    def __init__(self, ps: list[object], sched: object) -> None:
        super().__init__(ps)
        self.sched = sched

    def __iter__(self):  # type: ignore[no-untyped-def]
        import sys

        yield from list.__iter__(self)
        if sys._getframe(1).f_code.co_name == "clearpreempt":
            end = time.monotonic() + 1.0
            while not self.sched.stopping and time.monotonic() < end:  # type: ignore[attr-defined]
                time.sleep(0.001)
            if self.sched.stopping:  # type: ignore[attr-defined]
                time.sleep(0.05)  # until stop() has set the hint and the flags


def test_stop_preempt_request_survives_sysmon_recompute(monkeypatch: pytest.MonkeyPatch) -> None:
    """stop() asks running Gs to yield by setting park.anypreempt and their flags; sysmon's
    clearpreempt scanned the flags (none set), stop set them, and sysmon then stored False: a G
    whose channel operations never park never looked at its flag, and run() waited for its M for
    ever. Here the recompute runs on a thread of the test, with its scan-to-store window widened
    until stop() has run, while a G computes between channel operations that never park."""
    from mn_runtime._rt import park as _park
    from mn_runtime._rt import tls as _tls

    monkeypatch.setattr(_sysmon.Sysmon, "retake", lambda self, now: 0)  # stop() is the only requester

    def spin(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass

    async def hog(ch: mn.Chan[int]) -> None:
        while True:
            spin(0.3)  # the recompute stores its False while the hog computes
            await ch.send(1)
            await ch.recv()  # capacity 1: neither ever parks; only the hint can stop it

    async def main() -> None:
        s = _tls.cur
        assert s is not None
        mn.go(hog, mn.Chan(1))
        await mn.sleep(0.05)  # the hog runs on the other P
        s.allp = _SlowScanAllp(s.allp, s)
        _park.anypreempt = True  # as left by an earlier request that has been served
        threading.Thread(target=s.sysmon.clearpreempt, daemon=True).start()
        await mn.sleep(0.05)  # the recompute has scanned and waits; main ends, stop() runs

    done = threading.Event()
    t = threading.Thread(target=lambda: (mn.run(main, procs=2), done.set()), daemon=True)
    t.start()
    assert done.wait(10), "run() still waiting for the hog's M 10 s after main returned"
    t.join(5)


def test_exitsyscall_queues_its_g_in_the_hold_that_found_no_idle_p(monkeypatch: pytest.MonkeyPatch) -> None:
    """A syscall returned, its P retaken and no P idle: exitsyscall looked for an idle P in one
    sched.lock hold and queued the G on the global queue in another. The last running M could go
    idle in between (it found nothing), and the G then sat on the global queue with every M asleep
    (checkdead threw "runnable goroutines on the global queue but no M running", seen once in
    100 chaos runs at procs=4). The step between the two holds is slowed here."""
    from mn_runtime._rt import syscall as _syscall
    from mn_runtime._rt.g import GStatus

    real = _syscall.casgstatus

    def slow(gp: object, old: GStatus, new: GStatus) -> None:
        if old == GStatus.SYSCALL and new == GStatus.RUNNABLE:
            time.sleep(0.2)
        real(gp, old, new)  # type: ignore[arg-type]

    monkeypatch.setattr(_syscall, "casgstatus", slow)

    async def spinner() -> None:
        t = time.monotonic()
        while time.monotonic() - t < 0.15:
            pass  # holds the only P, taken over from main's syscall, until main's call returned

    async def main() -> int:
        g = mn.go(spinner)
        await mn.syscall(time.sleep, 0.05)
        await g.join()
        return 1

    assert mn.run(main, procs=1) == 1
