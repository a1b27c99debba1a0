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
    through the run, up to a second (no preemption request for a 60 ms slice, no retake of a P
    in a syscall). Repeated: the window is a few instructions wide. The slice is six times the
    10 ms limit so that a busy host delaying sysmon's tick cannot fail the test."""
    for _ in range(15):

        async def hog() -> int:
            t = time.monotonic()
            while time.monotonic() - t < 0.06:
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
