"""Scheduler integration tests: stealing, fairness, timers, syscall handoff, park/ready under
contention, shutdown. Each runs real Ms; concurrency tests also run under setswitchinterval(1e-6)."""

from __future__ import annotations

import contextvars
import hashlib
import math
import random
import threading
import time
from typing import Any

import pytest

import mn_runtime as mn
from mn_runtime._rt import tls as _tls
from mn_runtime._rt.g import G, WaitReason
from mn_runtime._rt.park import gopark, goready, preempt_requested
from mn_runtime._rt.timers import Timer, TimerHeap
from mn_runtime._rt.tls import tls

from .rtutil import Baton, num_fds, runtime_threads

pytestmark = pytest.mark.concurrency


def mid() -> int:
    m = tls.m
    assert m is not None
    return m.id


def spin(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i
    return x


def test_work_is_stolen(switchinterval: float) -> None:
    """Gs spawned by one G run on more than one M when procs=2, and the stats count steals."""

    async def child(seen: list[int]) -> None:
        spin(3000)
        seen.append(mid())
        spin(3000)
        seen.append(mid())

    async def yielding_child(seen: list[int]) -> None:
        spin(3000)
        seen.append(mid())
        await mn.gosched()
        spin(3000)
        seen.append(mid())

    async def main(n: int, fn: object) -> tuple[set[int], dict[str, object]]:
        seen: list[int] = []
        gs = [mn.go(fn, seen) for _ in range(n)]  # type: ignore[arg-type]
        for g in gs:
            await g.join()
        assert len(seen) == 2 * n
        return set(seen), mn.stats()

    for _ in range(3):
        # The ring holds all 200 and no G yields to the global queue: the other M can only get
        # work by stealing it. (With yielding children it may live off the global queue alone.)
        ms, st = mn.run(main, 200, child, procs=2)
        assert len(ms) >= 2, f"all Gs ran on one M: {ms}"
        assert st["steals"] > 0
        assert st["gs_run"] >= 201
    # A ring of 16 overflows: half goes to the global queue, which other Ms take from.
    ms, st = mn.run(main, 400, yielding_child, procs=2, runqsize=16)
    assert len(ms) >= 2, f"all Gs ran on one M: {ms}"
    assert st["global_takes"] > 0
    assert st["gs_run"] >= 801


def test_global_queue_not_starved_by_runnext_pingpong(procs: int) -> None:
    """Go's TestPingPongHog idea: two Gs handing each other the runnext slot forever must not
    starve a G waiting on the global queue; sysmon's preemption request gets it to run."""

    async def pinger(a: Baton, b: Baton, stop: list[bool], count: list[int]) -> None:
        # count is this pinger's own (pingers on other Ms have theirs): no shared `+=`.
        while not stop[0]:
            b.signal()
            await a.wait()
            count[0] += 1
        b.signal()

    async def ponger(a: Baton, b: Baton, stop: list[bool]) -> None:
        while not stop[0]:
            await b.wait()
            a.signal()
        a.signal()

    async def main() -> tuple[float, int, int]:
        stop = [False]
        counts: list[list[int]] = []
        pairs = []
        for _ in range(procs):  # one hogging pair per P
            a, b = Baton(), Baton()
            counts.append([0])
            pairs.append(mn.go(pinger, a, b, stop, counts[-1]))
            pairs.append(mn.go(ponger, a, b, stop))
        t0 = time.monotonic()
        await mn.sleep(0.02)  # wakes through the poller and the global queue
        late = time.monotonic() - t0
        stop[0] = True
        for g in pairs:
            await g.join()
        return late, [c[0] for c in counts], mn.stats()["preempt_requests"]

    late, counts, _preempts = mn.run(main, procs=procs)
    assert sum(counts) > 0, counts
    assert late < 1.0, f"main waited {late:.3f}s behind a runnext ping-pong pair"


def test_timers_fire_in_order_and_never_early(procs: int) -> None:
    rng = random.Random(7)
    delays = [i * 0.0004 for i in range(150)]
    rng.shuffle(delays)

    async def sleeper(d: float, log: list[tuple[float, float]], lock: threading.Lock) -> None:
        target = time.monotonic() + d
        await mn.sleep(d)
        now = time.monotonic()
        with lock:
            log.append((target, now))

    async def timed(d: float, log: list[tuple[float, float]], lock: threading.Lock) -> None:
        # A runtime timer armed for a deadline this G knows exactly (mn.sleep reads the clock
        # itself, a GIL hand-off after the caller's own reading).
        when = time.monotonic() + d
        t = Timer(goready, None)

        def commit(gp: G, _: object) -> bool:
            t.arg = gp
            s = _tls.cur
            assert s is not None
            s.timers.add(t, when)
            return True

        await gopark(commit, None, WaitReason.SLEEP)
        now = time.monotonic()
        with lock:
            log.append((when, now))

    async def main(fn: Any) -> list[tuple[float, float]]:
        log: list[tuple[float, float]] = []
        lock = threading.Lock()
        gs = [mn.go(fn, d, log, lock) for d in delays]
        for g in gs:
            await g.join()
        return log

    for fn in (sleeper, timed):
        log = mn.run(main, fn, procs=procs)
        assert len(log) == len(delays)
        for deadline, woke in log:
            assert woke >= deadline, f"timer fired {deadline - woke:.6f}s early"
    if procs == 1:
        # One M runs the Gs in the order the poller injected them: deadline order.
        deadlines = [t for t, _ in log]
        assert deadlines == sorted(deadlines), "timers fired out of deadline order"


def test_timerheap_when0_and_limit() -> None:
    """The heap's when0 hint (what Ms compare with the clock) follows the earliest live deadline,
    and run_expired(limit=1), the Ms' call, fires only the earliest due timer, skipping stopped
    ones."""
    h = TimerHeap(None)  # type: ignore[arg-type]  # never asked to wake a poller here
    fired: list[int] = []
    ts = [Timer(fired.append, i) for i in range(3)]
    h.add(ts[2], 30.0)
    h.add(ts[0], 10.0)
    h.add(ts[1], 20.0)
    assert h.when0 == 10.0
    assert h.stop(ts[0])  # lazy: the entry stays, when0 may stay early
    assert h.run_expired(25.0, 1) == 1 and fired == [1]
    assert h.when0 == 30.0
    assert h.run_expired(25.0) == 0 and h.when0 == 30.0
    assert h.run_expired(31.0) == 1 and fired == [1, 2]
    assert h.when0 == math.inf and h.nfired == 2 and h.pending() == 0


@pytest.mark.parametrize("procs_", [1, 2])
def test_timer_woken_g_runs_before_queued_gs(procs_: int, switchinterval: float) -> None:
    """A G woken by a timer runs within a few slices of its deadline, not behind every queued G
    (Go readies it into runnext). 80 workers keep the run queues full with 1 ms slices; the
    sleeper must run within 15 slices of its deadline. Measured: at most 4, the Ms firing due
    timers themselves (find_runnable); with only the poller firing them and its Gs at the front
    of the global queue, up to 46 at procs=2 (the poller waits for the GIL); with its Gs at the
    back, 79-83 at procs=1 and 32-94 at procs=2, the whole local ring."""
    workers, slices_each = 80, 3

    async def worker(state: dict[str, Any], lock: threading.Lock) -> None:
        for _ in range(slices_each):
            end = time.perf_counter() + 0.001
            while time.perf_counter() < end:
                pass
            with lock:
                state["slices"] += 1
                if state["due_at"] is None and time.monotonic() >= state["deadline"]:
                    state["due_at"] = state["slices"]
            await mn.gosched()

    async def sleeper(state: dict[str, Any], lock: threading.Lock) -> None:
        await mn.sleep(0.005)  # let every worker start and the queues fill
        d = 0.03
        with lock:
            state["deadline"] = time.monotonic() + d
        await mn.sleep(d)
        with lock:
            state["woke_at"] = state["slices"]

    async def main() -> dict[str, Any]:
        state: dict[str, Any] = {"slices": 0, "deadline": float("inf"), "due_at": None, "woke_at": None}
        lock = threading.Lock()
        gs = [mn.go(worker, state, lock) for _ in range(workers)]
        gs.append(mn.go(sleeper, state, lock))
        for g in gs:
            await g.join()
        return state

    for _ in range(3):
        state = mn.run(main, procs=procs_)
        assert state["slices"] == workers * slices_each
        assert state["due_at"] is not None and state["woke_at"] is not None, state
        late = state["woke_at"] - state["due_at"]
        assert late <= 15, f"the timer-woken G ran {late} slices after its deadline ({state})"


def test_syscall_handoff_lets_other_gs_run(switchinterval: float) -> None:
    """procs=1: while one G blocks in a syscall, its P is handed off and another G keeps running."""

    async def blocker() -> str:
        return await mn.syscall(time.sleep, 0.3)

    async def counter(stop: list[bool], n: list[int]) -> None:
        while not stop[0]:
            n[0] += 1
            await mn.gosched()

    async def main() -> tuple[int, dict[str, object], dict[str, object]]:
        stop, n = [False], [0]
        c = mn.go(counter, stop, n)
        b = mn.go(blocker)
        await mn.sleep(0.15)
        during = mn.stats()
        progressed = n[0]
        await b.join()
        stop[0] = True
        await c.join()
        return progressed, during, mn.stats()

    progressed, during, after = mn.run(main, procs=1)
    assert progressed > 50, "no G ran while the only P's M was in a syscall"
    assert after["handoffs"] >= 1
    assert during["threads"] > during["procs"], "Ms should outnumber Ps while one M is in a syscall"
    assert during["threads_in_syscall"] == 1


def test_ms_outnumber_ps_with_blocking_calls() -> None:
    async def blocker() -> None:
        await mn.syscall(time.sleep, 0.2)

    async def main() -> dict[str, object]:
        gs = [mn.go(blocker) for _ in range(4)]
        await mn.sleep(0.1)
        st = mn.stats()
        for g in gs:
            await g.join()
        return st

    st = mn.run(main, procs=2)
    assert st["threads_in_syscall"] == 4
    assert st["threads"] > st["procs"]


def test_syscall_result_and_exception_delivered() -> None:
    def boom() -> None:
        raise OSError(5, "boom")

    async def main() -> tuple[str, str]:
        h = await mn.syscall(lambda b: hashlib.sha256(b).hexdigest(), b"x" * 1000)
        try:
            await mn.syscall(boom)
        except OSError as e:
            return h, str(e)
        return h, ""

    h, err = mn.run(main, procs=2)
    assert h == hashlib.sha256(b"x" * 1000).hexdigest()
    assert err == "[Errno 5] boom"


@pytest.mark.parametrize("procs_", [1, 2, 4])
def test_no_lost_wakeups_park_ready(procs_: int, switchinterval: float) -> None:
    """10^5 park/ready hand-offs between Gs spread over Ms: every one is delivered (no lost
    wake-up would show as a hang, caught by the timeout, or as a Deadlock)."""
    pairs = 4
    rounds = 25_000

    async def a(x: Baton, y: Baton, n: list[int]) -> None:
        for _ in range(rounds):
            y.signal()
            await x.wait()
            n[0] += 1

    async def b(x: Baton, y: Baton, ms: set[int]) -> None:
        for _ in range(rounds):
            await y.wait()
            ms.add(mid())
            x.signal()

    async def main() -> tuple[list[int], set[int]]:
        counts: list[list[int]] = []
        ms: set[int] = set()
        gs = []
        for _ in range(pairs):
            x, y = Baton(), Baton()
            n = [0]
            counts.append(n)
            gs.append(mn.go(a, x, y, n))
            gs.append(mn.go(b, x, y, ms))
        for g in gs:
            await g.join()
        return [n[0] for n in counts], ms

    counts, _ms = mn.run(main, procs=procs_)
    assert counts == [rounds] * pairs


def test_deadlock_detected_with_listing() -> None:
    async def stuck() -> None:
        await Baton().wait()

    async def main() -> None:
        g = mn.go(stuck)
        await g.join()

    with pytest.raises(mn.Deadlock) as ei:
        mn.run(main, procs=2)
    text = str(ei.value)
    assert text.startswith("all goroutines are asleep - deadlock!")
    assert "goroutine 1 [goroutine join" in text
    assert "goroutine 2 [semacquire" in text
    assert "test_sched.py:" in text and "stuck" in text
    assert len(ei.value.goroutines) == 2


def test_sleeping_gs_are_not_a_deadlock() -> None:
    async def main() -> int:
        await mn.sleep(0.05)
        return 1

    assert mn.run(main, procs=2) == 1


def test_exception_in_goroutine_ends_run_with_its_id() -> None:
    async def bad() -> None:
        await mn.sleep(0.01)
        raise ValueError("bad value")

    async def main() -> None:
        mn.go(bad)
        await mn.sleep(5)

    t0 = time.monotonic()
    with pytest.raises(ValueError, match="bad value") as ei:
        mn.run(main, procs=2)
    assert time.monotonic() - t0 < 2
    assert any("goroutine 2" in n for n in getattr(ei.value, "__notes__", []))


def test_exception_in_main_propagates() -> None:
    async def main() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        mn.run(main, procs=1)


def test_run_returns_result_and_abandons_other_gs() -> None:
    finished: list[int] = []
    started: list[int] = []

    async def forever() -> None:
        started.append(1)
        try:
            await mn.sleep(100)
        finally:
            finished.append(1)

    async def main() -> str:
        for _ in range(5):
            mn.go(forever)
        while len(started) < 5:
            await mn.sleep(0.001)
        return "ok"

    assert mn.run(main, procs=2) == "ok"
    assert finished == [1] * 5  # abandoned coroutines were closed: their finally blocks ran


def test_no_thread_or_fd_left_behind(procs: int) -> None:
    before_fds = num_fds()
    before_threads = threading.active_count()

    async def nap() -> None:
        await mn.sleep(0.001)

    async def block() -> None:
        await mn.syscall(time.sleep, 0.01)

    async def main() -> None:
        gs = [mn.go(nap) for _ in range(50)]
        gs.append(mn.go(block))
        for g in gs:
            await g.join()

    for _ in range(3):
        mn.run(main, procs=procs)
    assert runtime_threads() == []
    assert threading.active_count() == before_threads
    assert num_fds() == before_fds


def test_run_waits_for_goroutine_in_syscall() -> None:
    """A G inside a blocking syscall cannot be interrupted: run() waits for the call to return,
    discards the result and never resumes the G, then returns with no thread left."""
    resumed: list[bool] = []

    async def blocker() -> None:
        await mn.syscall(time.sleep, 0.3)
        resumed.append(True)

    async def main() -> None:
        mn.go(blocker)
        await mn.sleep(0.05)

    t0 = time.monotonic()
    mn.run(main, procs=2)
    took = time.monotonic() - t0
    assert took >= 0.3
    assert resumed == []
    assert runtime_threads() == []


def test_contextvars_copied_from_creator() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def child() -> str:
        seen = var.get()
        var.set("child")
        return seen

    async def main() -> tuple[str, str, str]:
        var.set("main")
        g = mn.go(child)
        seen = await g.join()
        var.set("main2")
        g2 = mn.go(child)
        return seen, await g2.join(), var.get()

    assert mn.run(main, procs=2) == ("main", "main2", "main2")


def test_ctrl_c_stops_cleanly_and_reraises() -> None:
    import os
    import signal

    async def main() -> None:
        await mn.syscall(os.kill, os.getpid(), signal.SIGINT)
        await mn.sleep(10)

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        mn.run(main, procs=2)
    assert time.monotonic() - t0 < 5
    assert runtime_threads() == []


def test_preempt_request_after_long_slice() -> None:
    """A G that runs without runtime calls is flagged by sysmon once its slice is over and yields
    at its next one (here a syscall return), letting a waiting G run. The G computes until it is
    flagged, and at least 50 ms (five times the limit), but at most 5 s: on a loaded host
    sysmon's ticks come late, and only a sysmon that never flags it fails the test."""
    order: list[str] = []

    async def hog() -> None:
        t = time.monotonic()
        while time.monotonic() - t < 0.05 or (not preempt_requested() and time.monotonic() - t < 5.0):
            pass
        order.append("hog-call")
        await mn.syscall(lambda: None)
        order.append("hog-after")

    async def other() -> None:
        order.append("other")

    async def main() -> int:
        mn.go(other)  # in runnext, displaced to the ring by the next go()
        h = mn.go(hog)
        await h.join()
        return mn.stats()["preempt_requests"]

    npre = mn.run(main, procs=1)
    assert npre >= 1
    assert order.index("other") < order.index("hog-after")


def test_preempt_at_a_channel_operation_that_does_not_park() -> None:
    """A G that only does channel operations that never park (cap-1 send then recv) is flagged by
    sysmon and yields at one of them (preempt_requested), so main, readied by its timer, runs."""

    async def hog(ch: mn.Chan[int], stop: list[bool]) -> int:
        n = 0
        while not stop[0]:
            await ch.send(n)
            await ch.recv()
            n += 1
            if n >= 3_000_000:
                return -1  # never preempted: seconds of looping
        return n

    async def main() -> tuple[int, int]:
        stop = [False]
        h = mn.go(hog, mn.Chan(1), stop)
        await mn.sleep(0.05)  # hog holds the only P; this wake-up needs it to yield
        stop[0] = True
        return await h.join(), mn.stats()["preempt_requests"]

    for _ in range(3):
        n, npre = mn.run(main, procs=1)
        assert n > 0 and npre >= 1


def test_join_returns_value_and_done_flag() -> None:
    async def val(x: int) -> int:
        await mn.sleep(0.001)
        return x * 3

    async def main() -> tuple[list[int], bool, int, int]:
        gs = [mn.go(val, i) for i in range(20)]
        res = [await g.join() for g in gs]
        return res, all(g.done for g in gs), mn.num_goroutine(), mn.gomaxprocs()

    res, done, n, procs = mn.run(main, procs=3)
    assert res == [i * 3 for i in range(20)]
    assert done and n == 1 and procs == 3


def test_idle_runtime_uses_almost_no_cpu() -> None:
    """All Gs asleep: the Ms sleep on their locks, the poller in epoll_wait, sysmon in a long
    timed wait. The process must use under 2% of a core."""

    async def sleeper() -> None:
        await mn.sleep(2.0)

    async def main() -> float:
        gs = [mn.go(sleeper) for _ in range(100)]
        await mn.sleep(0.2)
        c0, t0 = time.process_time(), time.monotonic()
        await mn.sleep(1.0)
        c1, t1 = time.process_time(), time.monotonic()
        for g in gs:
            await g.join()
        return (c1 - c0) / (t1 - t0)

    share = mn.run(main, procs=4)
    assert share < 0.02, f"idle runtime used {share:.1%} of a core"


@pytest.mark.parametrize("procs_", [1, 2, 4])
def test_no_lost_wakeups_from_other_threads(procs_: int, switchinterval: float) -> None:
    """Plain OS threads ready parked Gs (goready from outside any M goes through the global queue
    and startm) 10^5 times in all, racing with the G's own park: none is lost or doubled."""
    nthreads = 4
    rounds = 25_000

    async def waiter(b: Baton, ping: threading.Semaphore, n: list[int]) -> None:
        for _ in range(rounds):
            ping.release()
            await b.wait()
            n[0] += 1

    def signaller(b: Baton, ping: threading.Semaphore) -> None:
        for _ in range(rounds):
            ping.acquire()
            b.signal()

    async def keeper(done: list[bool]) -> None:
        # Wake-ups from foreign threads are invisible to deadlock detection (as in Go); a pending
        # timer tells checkdead that something may still happen.
        while not done[0]:
            await mn.sleep(0.01)

    async def main() -> list[int]:
        counts = []
        gs = []
        threads = []
        done = [False]
        k = mn.go(keeper, done)
        for _ in range(nthreads):
            b, ping, n = Baton(), threading.Semaphore(0), [0]
            counts.append(n)
            gs.append(mn.go(waiter, b, ping, n))
            t = threading.Thread(target=signaller, args=(b, ping))
            t.start()
            threads.append(t)
        for g in gs:
            await g.join()
        for t in threads:
            await mn.syscall(t.join)
        done[0] = True
        await k.join()
        return [n[0] for n in counts]

    assert mn.run(main, procs=procs_) == [rounds] * nthreads


@pytest.mark.parametrize("fails", [False, True])
def test_syscall_outcome_survives_losing_the_p(fails: bool) -> None:
    """procs=1: while G1 blocks, its P is handed off to another M that runs a CPU-bound G2, so
    G1's M finds no P on return (exitsyscall0) and G1 waits on the global queue. Its result, or
    its exception, must still reach it when it runs again on another M."""

    def call() -> str:
        time.sleep(0.05)
        if fails:
            raise OSError(7, "late failure")
        return "late result"

    async def blocker() -> str:
        try:
            return await mn.syscall(call)
        except OSError as e:
            return f"caught {e}"

    async def hog() -> None:
        t = time.monotonic()
        while time.monotonic() - t < 0.2:
            pass

    async def main() -> tuple[str, int]:
        b = mn.go(blocker)
        await mn.sleep(0.01)  # blocker is now in its call; sysmon hands the P to this G's M
        h = mn.go(hog)
        res = await b.join()
        await h.join()
        return res, mn.stats()["handoffs"]

    res, handoffs = mn.run(main, procs=1)
    assert handoffs >= 1
    assert res == ("caught [Errno 7] late failure" if fails else "late result")


def test_spinning_m_does_not_spin_on_unstealable_runnext() -> None:
    """A G in the runnext slot of a running P is not stealable at once. A spinning M must not take
    it for stealable work and keep spinning (re-acquiring a P over and over) while the owner runs:
    it waits RUNNEXT_GRACE once and takes the G (runqgrab_stale), then finds nothing and sleeps."""
    from mn_runtime._rt.tracer import Tracer

    class CountProcStarts(Tracer):
        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.n = 0

        def proc_start(self, m: object, p: object) -> None:
            with self.lock:
                self.n += 1

    async def child() -> None:
        return None

    async def main() -> int:
        s = _tls.cur
        assert s is not None
        counter = CountProcStarts()
        s.tracer = counter
        mn.go(child)  # into our P's runnext; wakep starts the other M spinning
        t = time.monotonic()
        while time.monotonic() - t < 0.3:  # never yield: only a thief can run the child
            pass
        s.tracer = None
        return counter.n

    n = mn.run(main, procs=2)
    assert n < 20, f"the idle M acquired a P {n} times while nothing was stealable"


@pytest.mark.parametrize("nprocs", [2, 4])
def test_new_goroutine_not_stuck_behind_busy_parent(nprocs: int, switchinterval: float) -> None:
    """A child made by a G that then computes without awaiting sits in its P's runnext; with an
    idle P, a thief takes it once the owner has kept it RUNNEXT_GRACE (Go's runqgrab), so it starts
    within milliseconds, not when the parent next yields."""
    budget = 3.0  # the parent computes until the child starts, or this long

    async def child(t0: float, started: list[float]) -> None:
        started.append(time.monotonic() - t0)

    async def main() -> tuple[list[float], int]:
        delays: list[float] = []
        steals = 0
        for _ in range(3):
            started: list[float] = []  # appended by the child, read here: a list append is atomic
            st = mn.stats()
            before = st.steals + st.stuck_handoffs
            t0 = time.monotonic()
            mn.go(child, t0, started)
            while not started and time.monotonic() - t0 < budget:
                pass  # no runtime call: the parent's M never looks at its runnext
            delays.append(started[0] if started else math.inf)
            # A thief took the child, or (on a slow host, the parent past two slices) sysmon
            # handed it to the global queue.
            st = mn.stats()
            steals += st.steals + st.stuck_handoffs - before
            await mn.sleep(0.01)
        return delays, steals

    delays, steals = mn.run(main, procs=nprocs)
    # The owner kept the child from starting for the whole budget before; the grace is 1 ms and
    # the GIL's switch interval 5 ms, so 0.5 s is a margin for a loaded machine, not a target.
    assert max(delays) < 0.5, delays
    assert steals >= 3


@pytest.mark.parametrize("nprocs", [2, 4])
def test_readied_goroutine_not_stuck_behind_busy_readier(nprocs: int, switchinterval: float) -> None:
    """A G readied into runnext by a G that then computes without awaiting (goready wakes no one
    for runnext): sysmon sees the busy slice with work queued behind it and an idle P, wakes an M,
    and that thief takes the runnext G after its grace."""
    budget = 3.0

    async def busy(ch: mn.Chan[float], woke: list[float]) -> None:
        await ch.send(time.monotonic())  # readies main into this P's runnext
        t0 = time.monotonic()
        while not woke and time.monotonic() - t0 < budget:
            pass  # no runtime call

    async def main() -> float:
        ch: mn.Chan[float] = mn.Chan()
        woke: list[float] = []  # appended here, read by busy: a list append is atomic
        mn.go(busy, ch, woke)
        sent = await ch.recv()
        woke.append(time.monotonic())
        return woke[0] - sent

    delay = mn.run(main, procs=nprocs)
    # Slice 10 ms, grace 1 ms, the GIL's switch interval 5 ms: 0.5 s is a margin for a loaded host.
    assert delay < 0.5, delay
