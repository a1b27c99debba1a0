"""Chaos mode: seeded perturbation keeps correct programs correct, finds a race, and with procs=1
replays the same interleaving for the same seed."""

from __future__ import annotations

import functools
import hashlib
import inspect
import time
from typing import Any

import pytest

import mn_runtime as mn
from mn_runtime._rt import chaos as _chaos
from mn_runtime._rt import tls as _tls
from mn_runtime._rt.tracer import Tracer
from stress.examples import racy_bank


class SwitchRecorder(Tracer):
    """SwitchRecorder keeps the sequence of G ids that start running (go_start events)."""

    def __init__(self) -> None:
        self.starts: list[int] = []

    def go_start(self, m: Any, p: Any, g: Any) -> None:
        self.starts.append(g.id)


async def _leaf(i: int) -> int:
    if i % 3 == 0:
        await mn.sleep(0.001 * (i % 4))
    if i % 5 == 0:
        await mn.syscall(hashlib.sha1, str(i).encode())
    await mn.gosched()
    return i


async def _workload(n: int) -> tuple[int, list[int]]:
    """_workload spawns, yields, sleeps, syscalls and joins; returns (checksum, recorded starts)."""
    s = _tls.cur
    assert s is not None
    rec = SwitchRecorder()
    s.tracer = rec
    ch: mn.Chan[int] = mn.Chan(4)

    async def producer(k: int) -> None:
        for j in range(k):
            await ch.send(j)

    prod = mn.go(producer, 50)
    gs = [mn.go(_leaf, i) for i in range(n)]
    total = 0
    for _ in range(50):
        total += await ch.recv()
    for g in gs:
        total += await g.join()
    await prod.join()
    s.tracer = None
    return total, rec.starts


def _expected(n: int) -> int:
    return sum(range(n)) + sum(range(50))


@pytest.mark.parametrize("seed", [1, 7, 12345])
def test_replay_same_seed_same_switch_order(seed: int) -> None:
    runs = []
    for _ in range(3):
        total, starts = mn.run(_workload, 120, procs=1, chaos=seed)
        assert total == _expected(120)
        c = _chaos.last
        assert c is not None and c.seed == seed and c.replay
        runs.append((starts, c.nswitch, c.digest))
    assert len(runs[0][0]) > 200
    assert runs[0] == runs[1] == runs[2]


def test_different_seeds_give_different_interleavings() -> None:
    seqs = {tuple(mn.run(_workload, 60, procs=1, chaos=seed)[1]) for seed in range(6)}
    assert len(seqs) >= 5


def test_chaos_actually_perturbs() -> None:
    mn.run(_workload, 200, procs=1, chaos=3)
    st = _chaos.last.stats() if _chaos.last else {}
    for k in ("yields", "delayed_wakeups", "runnext_demoted", "runq_rotated", "global_first"):
        assert st[k] > 0, (k, st)


def _spy_on_chaos(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """_spy_on_chaos counts the Chaos objects made ("__init__") and the calls of every Chaos method
    the runtime's hook sites call (all but the harness's: install, record, stats, now)."""
    calls: dict[str, int] = {}

    def spy(name: str, fn: Any) -> Any:
        @functools.wraps(fn)
        def counted(*args: Any, **kwargs: Any) -> Any:
            calls[name] = calls.get(name, 0) + 1  # (a lost update under threads still leaves it > 0)
            return fn(*args, **kwargs)

        return counted

    for name, fn in list(vars(_chaos.Chaos).items()):
        if inspect.isfunction(fn) and (name == "__init__" or not name.startswith("_")):
            if name not in ("install", "record", "stats", "now"):
                monkeypatch.setattr(_chaos.Chaos, name, spy(name, fn))
    return calls


def test_no_chaos_means_no_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MN_CHAOS", raising=False)
    calls = _spy_on_chaos(monkeypatch)
    last = _chaos.last

    async def main() -> tuple[object, object, int]:
        s = _tls.cur
        assert s is not None
        total, _ = await _workload(120)
        return s.chaos, s.timers, total

    for procs in (1, 2):
        chaos, timers, total = mn.run(main, procs=procs)
        assert total == _expected(120)
        assert chaos is None and not isinstance(timers, _chaos.ReplayTimerHeap)
    # No Chaos was made and no hook site called one: every decision was the plain scheduler's.
    assert calls == {}
    assert _chaos.last is last
    # The same spies on a chaos run: one Chaos, its hooks called at the sites the plain runs passed.
    chaos, timers, total = mn.run(main, procs=1, chaos=3)
    assert total == _expected(120)
    assert chaos is _chaos.last and isinstance(timers, _chaos.ReplayTimerHeap)
    assert calls.pop("__init__") == 1
    assert calls.get("on_execute", 0) >= chaos.nswitch > 0, calls
    assert len(calls) >= 4, calls


@pytest.mark.concurrency
@pytest.mark.parametrize("seed", [2, 99])
def test_correct_programs_stay_correct(switchinterval: float, procs: int, seed: int) -> None:
    total, _ = mn.run(_workload, 150, procs=procs, chaos=seed)
    assert total == _expected(150)


@pytest.mark.concurrency
def test_steal_and_mutex_under_chaos(switchinterval: float, procs: int) -> None:
    counts = [0]

    async def worker(mu: mn.Mutex, k: int) -> int:
        for _ in range(k):
            async with mu:
                v = counts[0]
                await mn.gosched() if k % 2 else None
                counts[0] = v + 1
        return k

    async def main() -> int:
        mu = mn.Mutex()
        gs = [mn.go(worker, mu, 5 + i % 3) for i in range(60)]
        return sum([await g.join() for g in gs])

    for seed in range(3):
        counts[0] = 0
        assert mn.run(main, procs=procs, chaos=seed, runqsize=8) == counts[0]


@pytest.mark.concurrency
def test_timers_never_early_under_chaos(procs: int) -> None:
    early: list[float] = []

    async def sleeper(d: float) -> None:
        t0 = time.monotonic()
        await mn.sleep(d)
        if time.monotonic() < t0 + d:
            early.append(d)

    async def main() -> int:
        gs = [mn.go(sleeper, (i % 13) * 0.0007) for i in range(300)]
        for g in gs:
            await g.join()
        return mn.num_goroutine()

    for seed in (5, 6):
        assert mn.run(main, procs=procs, chaos=seed) == 1
    assert early == []


def test_replay_mode_timer_order_is_virtual_and_deterministic() -> None:
    async def main() -> list[int]:
        order: list[int] = []

        async def sleeper(i: int, d: float) -> None:
            await mn.sleep(d)
            order.append(i)

        gs = []
        for i in range(40):
            gs.append(mn.go(sleeper, i, ((i * 7) % 10) * 0.001))
            if i % 4 == 0:
                await mn.gosched()
        for g in gs:
            await g.join()
        return order

    a = mn.run(main, procs=1, chaos=11)
    b = mn.run(main, procs=1, chaos=11)
    assert a == b and sorted(a) == list(range(40))


def test_deadlock_still_detected_under_chaos() -> None:
    async def main() -> None:
        ch: mn.Chan[int] = mn.Chan()
        await ch.recv()

    for seed in range(3):
        with pytest.raises(mn.Deadlock):
            mn.run(main, procs=1, chaos=seed)


def test_env_var_turns_chaos_on(monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> int | None:
        s = _tls.cur
        assert s is not None
        return s.chaos.seed if s.chaos is not None else None

    monkeypatch.setenv("MN_CHAOS", "42")
    assert mn.run(main, procs=1) == 42
    assert mn.run(main, procs=1, chaos=7) == 7  # the argument wins
    monkeypatch.setenv("MN_CHAOS", "forty-two")
    with pytest.raises(ValueError, match="MN_CHAOS must be an integer seed, got 'forty-two'"):
        mn.run(main, procs=1)


@pytest.mark.parametrize(
    ("bad", "exc", "msg"),
    [("3", TypeError, "chaos must be an int seed, got str"), (True, TypeError, "got bool"), (-1, ValueError, "-1")],
)
def test_bad_chaos_argument(bad: object, exc: type[Exception], msg: str) -> None:
    async def main() -> None:
        return None

    with pytest.raises(exc, match=msg):
        mn.run(main, procs=1, chaos=bad)  # type: ignore[arg-type]


def test_racy_example_found_by_sweep_and_replayed() -> None:
    bad = racy_bank.sweep(range(20))
    assert bad, "chaos should break the racy example within 20 seeds"
    seed = bad[0]
    first = racy_bank.run_once(seed)
    assert not racy_bank.ok(first)
    for _ in range(3):
        assert racy_bank.run_once(seed) == first  # replay: the same wrong result every time
    good = next(s for s in range(20) if s not in bad)
    assert racy_bank.ok(racy_bank.run_once(good))


def test_racy_example_fixed_survives_the_sweep() -> None:
    assert racy_bank.sweep(range(20), fixed=True) == []
    assert racy_bank.sweep(range(5), procs=2, fixed=True) == []
