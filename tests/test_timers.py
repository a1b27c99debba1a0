"""The timer heap as a pure structure (timers.py), without a runtime or threads: add/stop/reset
and their results, firing order, run_expired's limit, periodic re-arming, the poller wake-up
contract, the clocks, and the checks of durations and deadlines. The heap's `sched` is a stand-in
with the one thing TimerHeap reads: `netpoll.wakeup`, recorded."""

from __future__ import annotations

import math
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from mn_runtime._rt.timers import (
    MAX_POLL_WAIT,
    NEVER,
    WALL_GAP,
    RealClock,
    Timer,
    TimerHeap,
    VirtualClock,
    deadline,
    duration,
)
from mn_runtime.errors import Throw


def mkheap() -> tuple[TimerHeap, list[str]]:
    wakes: list[str] = []
    sched: Any = SimpleNamespace(netpoll=SimpleNamespace(wakeup=lambda: wakes.append("wake")))
    return TimerHeap(sched), wakes


def mktimers(fired: list[Any], *names: Any, period: float = 0.0) -> list[Timer]:
    return [Timer(fired.append, n, period) for n in names]


def test_fires_in_deadline_order_ties_in_add_order() -> None:
    h, wakes = mkheap()
    fired: list[Any] = []
    ts = mktimers(fired, "c", "a", "t1", "t2", "t3", "b")
    for t, when in zip(ts, (3.0, 1.0, 2.0, 2.0, 2.0, 1.5), strict=True):
        h.add(t, when)
    assert h.pending() == 6 and h.when0 == 1.0
    assert h.run_expired(10.0) == 6
    assert fired == ["a", "b", "t1", "t2", "t3", "c"]
    assert h.pending() == 0 and h.nfired == 6 and h.when0 == math.inf
    assert all(not t.pending and t.seq == 1 for t in ts)
    assert wakes == []  # the poller never slept: no add had to break its wait


def test_run_expired_fires_only_due_timers_and_at_most_limit() -> None:
    h, _ = mkheap()
    fired: list[Any] = []
    for i, t in enumerate(mktimers(fired, *range(6))):
        h.add(t, float(i))
    assert h.run_expired(-0.5) == 0 and fired == []
    assert h.run_expired(2.0, limit=2) == 2 and fired == [0, 1]  # 2 was due too: the limit held it
    assert h.when0 == 2.0 and h.pending() == 4
    assert h.run_expired(2.0) == 1 and fired == [0, 1, 2]  # a deadline equal to now is due
    assert h.run_expired(4.5, limit=5) == 2 and fired == [0, 1, 2, 3, 4]
    assert h.when0 == 5.0 and h.pending() == 1 and h.nfired == 5


def test_stop_returns_whether_it_prevented_the_firing() -> None:
    h, _ = mkheap()
    fired: list[Any] = []
    a, b, never_added = mktimers(fired, "a", "b", "x")
    h.add(a, 1.0)
    h.add(b, 2.0)
    assert h.stop(a) is True and h.pending() == 1 and h.nstale == 1
    assert h.stop(a) is False and h.stop(never_added) is False and h.pending() == 1
    assert h.when0 == 1.0  # stale entries may leave when0 early, never late
    assert h.run_expired(5.0) == 1 and fired == ["b"] and a.seq == 0
    assert h.nstale == 0 and h.heap == [] and h.when0 == math.inf
    assert h.stop(b) is False  # fired already


def test_reset_rearms_and_returns_whether_it_was_pending() -> None:
    h, _ = mkheap()
    fired: list[Any] = []
    a, b = mktimers(fired, "a", "b")
    assert h.reset(a, 5.0) is False and a.pending and h.pending() == 1
    assert h.reset(a, 1.0) is True and h.pending() == 1 and a.when == 1.0
    h.add(b, 0.5)
    assert h.reset(b, 3.0, period=10.0) is True and b.period == 10.0
    assert h.run_expired(2.0) == 1 and fired == ["a"]  # a once, at its new time
    assert h.run_expired(4.0) == 1 and fired == ["a", "b"]  # b not at 0.5, and re-armed at 13
    assert b.pending and b.when == 13.0 and h.pending() == 1
    assert h.run_expired(12.0) == 0 and fired == ["a", "b"]


def test_add_of_a_pending_timer_throws() -> None:
    h, _ = mkheap()
    fired: list[Any] = []
    (t,) = mktimers(fired, "t")
    h.add(t, 1.0)
    with pytest.raises(Throw, match="addtimer: timer already pending"):
        h.add(t, 2.0)
    assert h.pending() == 1 and len(h.heap) == 1 and t.when == 1.0
    assert h.run_expired(1.0) == 1
    h.add(t, 2.0)  # fired, so no longer pending: it may be added again
    assert h.run_expired(2.0) == 1 and fired == ["t", "t"] and t.seq == 2


def test_periodic_timer_rearms_at_when_plus_period_skipping_missed_ticks() -> None:
    h, _ = mkheap()
    fired: list[Any] = []
    (t,) = mktimers(fired, "tick", period=1.0)
    h.add(t, 10.0)
    assert h.run_expired(10.0) == 1 and t.when == 11.0 and t.pending and h.pending() == 1
    assert h.run_expired(10.9) == 0
    assert h.run_expired(11.0) == 1 and t.when == 12.0
    assert h.run_expired(14.5) == 1 and t.when == 15.0  # 13 and 14 were missed: fired once
    assert t.seq == 3 and fired == ["tick"] * 3 and h.when0 == 15.0
    assert h.stop(t) is True and h.run_expired(100.0) == 0 and t.seq == 3
    (u,) = mktimers(fired, "u", period=0.5)
    h.add(u, 0.0)
    assert h.run_expired(10.0) == 1 and u.when == 10.5  # 20 ticks behind: still fired once


def test_callbacks_run_outside_the_lock_and_may_use_the_heap() -> None:
    """f runs after the lock is released: it may stop or add timers. A timer taken off in the
    same batch fires anyway (stop says False: it was no longer pending); one added by f waits
    for the next call."""
    h, _ = mkheap()
    order: list[str] = []
    later = Timer(lambda _: order.append("later"), None)

    def first(_: object) -> None:
        assert not h.lock.locked()
        order.append("first")
        assert h.stop(second) is False
        h.add(later, 0.0)

    second = Timer(lambda _: order.append("second"), None)
    h.add(Timer(first, None), 1.0)
    h.add(second, 1.0)
    assert h.run_expired(1.0) == 2 and order == ["first", "second"]
    assert h.pending() == 1 and h.when0 == 0.0
    assert h.run_expired(1.0) == 1 and order == ["first", "second", "later"]


def test_heap_is_rebuilt_when_more_than_half_is_stale() -> None:
    h, _ = mkheap()
    fired: list[Any] = []
    ts = mktimers(fired, *range(100))
    for i, t in enumerate(ts):
        h.add(t, float(i))
    for t in ts[:64]:
        h.stop(t)
    assert len(h.heap) == 100 and h.nstale == 64  # 64 stale: below the floor, lazily kept
    h.stop(ts[64])
    assert len(h.heap) == 35 and h.nstale == 0 and h.pending() == 35
    assert h.run_expired(1000.0) == 35 and fired == list(range(65, 100))


def test_next_when_drops_stale_tops() -> None:
    h, _ = mkheap()
    a, b = mktimers([], "a", "b")
    h.add(a, 1.0)
    h.add(b, 2.0)
    h.stop(a)
    with h.lock:
        assert h.next_when() == 2.0
    assert len(h.heap) == 1 and h.nstale == 0
    h.stop(b)
    with h.lock:
        assert h.next_when() is None
    assert h.heap == [] and h.nstale == 0


def test_an_add_earlier_than_the_pollers_wakeup_breaks_its_wait() -> None:
    h, wakes = mkheap()
    fired: list[Any] = []
    a, b, c, d = mktimers(fired, "a", "b", "c", "d")
    assert h.wait_timeout() is None and h.sleep_until == math.inf  # asleep, no deadline
    t0 = time.monotonic()
    h.add(a, t0 + 100)
    assert wakes == ["wake"]  # any deadline beats "never"
    got = h.wait_timeout()
    assert got is not None and 99.0 < got <= 100.0 and h.sleep_until == t0 + 100
    h.add(b, t0 + 200)
    assert wakes == ["wake"]  # later than its wake-up: the poller will see it in time
    h.add(c, t0 + 50)
    assert wakes == ["wake", "wake"]
    assert h.reset(b, t0 + 10) is True and wakes == ["wake"] * 3
    assert h.reset(b, t0 + 300) is True and wakes == ["wake"] * 3
    h.awake()
    h.add(d, t0 + 1)  # the poller is awake: it looks at the heap before it sleeps again
    assert wakes == ["wake"] * 3 and h.sleep_until == -math.inf


def test_wait_timeout_clamps_and_skips_stale_deadlines() -> None:
    h, _ = mkheap()
    fired: list[Any] = []
    a, b = mktimers(fired, "a", "b")
    h.add(a, time.monotonic() - 5)
    assert h.wait_timeout() == 0.0  # past: do not wait
    h.stop(a)
    h.add(b, time.monotonic() + 10 * MAX_POLL_WAIT)
    assert h.wait_timeout() == MAX_POLL_WAIT and h.sleep_until == b.when


def test_virtual_clock_stands_still_and_adds_never_wake_the_poller() -> None:
    h, wakes = mkheap()
    vc = VirtualClock(5.0)
    vc.fire = vc.wantquiet = True  # left over from an earlier run
    h.set_clock(vc)
    assert h.virtual is vc and h.clock is vc and vc.fire is False and vc.wantquiet is False
    assert h.now() == 5.0
    time.sleep(0.01)
    assert h.now() == 5.0 and vc.now() == 5.0 and vc.jumps == 0
    fired: list[Any] = []
    (t,) = mktimers(fired, "t")
    h.add(t, 7.0)
    assert h.wait_timeout() is None and h.sleep_until == math.inf  # never a real timeout
    h.add(Timer(fired.append, "u"), 6.0)
    assert wakes == []
    h.set_clock(RealClock())
    assert h.virtual is None and h.now() == pytest.approx(time.monotonic(), abs=1.0)


def fake_poller(h: TimerHeap, waiting: bool) -> tuple[Any, list[str]]:
    wakes: list[str] = []
    np = SimpleNamespace(waiting=lambda: waiting, thread=None, wakeup=lambda: wakes.append("wake"))
    return SimpleNamespace(lock=threading.Lock(), netpoll=np, timers=h), wakes


@pytest.mark.parametrize(("when", "now", "jumps"), [(7.0, 7.0, 1), (3.0, 5.0, 0)])
def test_idle_locked_jumps_to_the_earliest_deadline(when: float, now: float, jumps: int) -> None:
    h, _ = mkheap()
    vc = VirtualClock(5.0)
    h.set_clock(vc)
    h.add(Timer(print, None), 9.0)
    h.add(Timer(print, None), when)
    s, wakes = fake_poller(h, waiting=False)
    vc.idle_locked(s, fdquiet=False)
    assert (vc.now(), vc.jumps, vc.fire, wakes) == (now, jumps, True, ["wake"])
    assert vc.take_fire() is True and vc.take_fire() is False
    for t in [e[3] for e in h.heap]:
        h.stop(t)
    vc.idle_locked(s, fdquiet=False)  # no timer pending: nothing to jump to, nothing to fire
    assert (vc.now(), vc.jumps, vc.fire, vc.wantquiet, wakes) == (now, jumps, False, False, ["wake"])


def test_idle_locked_with_gs_on_fds_asks_for_a_quiet_watch_first() -> None:
    h, _ = mkheap()
    vc = VirtualClock(5.0)
    h.set_clock(vc)
    h.add(Timer(print, None), 8.0)
    s, wakes = fake_poller(h, waiting=True)
    vc.idle_locked(s, fdquiet=False)
    assert (vc.now(), vc.jumps, vc.fire, vc.wantquiet, wakes) == (5.0, 0, False, True, ["wake"])
    assert vc.take_wantquiet() is True and vc.take_wantquiet() is False
    s.netpoll.thread = threading.current_thread()  # the poller itself: no wake-up of itself
    vc.idle_locked(s, fdquiet=False)
    assert vc.wantquiet is True and wakes == ["wake"]
    vc.idle_locked(s, fdquiet=True)  # the fds stayed quiet: now it jumps
    assert (vc.now(), vc.jumps, vc.fire, wakes) == (8.0, 1, True, ["wake", "wake"])


def test_clocks() -> None:
    a = RealClock.now()
    b = time.monotonic()
    assert a <= b <= RealClock.now() and RealClock.virtual is False and repr(RealClock()) == "RealClock()"
    vc = VirtualClock(start=2, io_grace=0)
    assert vc.now() == 2.0 and type(vc.now()) is float and vc.io_grace == 0.0 and vc.virtual is True
    assert repr(vc) == "VirtualClock(now=2.0, jumps=0)"
    with pytest.raises(TypeError, match="VirtualClock start must be a number of seconds, got bool"):
        VirtualClock(True)
    with pytest.raises(TypeError, match="VirtualClock io_grace must be a number of seconds, got str"):
        VirtualClock(0.0, "1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="VirtualClock start must be finite, got inf"):
        VirtualClock(math.inf)
    with pytest.raises(ValueError, match=r"io_grace must be between 0 and 1 second, got 1\.5"):
        VirtualClock(0.0, 1.5)


@pytest.mark.parametrize(
    ("s", "want"),
    [(1, 1.0), (0, 0.0), (-2, -2.0), (0.25, 0.25), (NEVER - 1, NEVER - 1), (NEVER, None), (math.inf, None)],
)
def test_duration_values(s: float, want: float | None) -> None:
    got = duration("sleep", s)
    assert got == want and (want is None or type(got) is float)


def test_duration_rejects_nan_and_non_numbers() -> None:
    with pytest.raises(ValueError, match=r"^sleep got NaN seconds$"):
        duration("sleep", math.nan)
    for bad, name in (("1", "str"), (True, "bool"), (None, "NoneType")):
        with pytest.raises(TypeError, match=rf"^sleep needs a number of seconds, got {name}$"):
            duration("sleep", bad)


def test_deadline_values() -> None:
    assert deadline("d", 5, 0.0) == 5.0 and type(deadline("d", 5, 0.0)) is float
    assert deadline("d", -math.inf, 100.0) == -math.inf  # expired, not an error
    assert deadline("d", 1.0, 100.0) == 1.0
    assert deadline("d", math.inf, 100.0) is None
    assert deadline("d", 100.0 + NEVER, 100.0) is None
    assert deadline("d", 100.0 + NEVER - 1, 100.0) == 100.0 + NEVER - 1
    far_from_wall = time.time() + 2 * WALL_GAP  # far beyond the clock, but not time.time()
    assert deadline("d", far_from_wall, 0.0) == far_from_wall


def test_deadline_refuses_wall_clock_nan_and_non_numbers() -> None:
    for now in (time.monotonic(), 0.0):  # the real clock and a fresh virtual one
        with pytest.raises(ValueError, match=r"d got .* which looks like time\.time\(\): deadlines are time\.mono"):
            deadline("d", time.time() + 5, now)
    with pytest.raises(ValueError, match=r"^d got a NaN deadline$"):
        deadline("d", math.nan, 0.0)
    for bad, name in (("1", "str"), (False, "bool")):
        with pytest.raises(TypeError, match=rf"^d needs a deadline in time\.monotonic\(\) seconds, got {name}$"):
            deadline("d", bad, 0.0)
