"""Lock checking (MN_DEBUG=lockcheck=1): the checker catches what it is for, and the runtime's own
code passes it on every stress scenario at several procs, on both builds."""

from __future__ import annotations

import pytest

import mn_runtime as mn
from mn_runtime._rt import idle
from mn_runtime._rt import lock as _lock
from mn_runtime._rt import tls as _tls
from mn_runtime.errors import Throw
from stress.report import format_result, run_scenario
from stress.scenarios import SCENARIOS


@pytest.fixture
def lockcheck(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MN_DEBUG", "lockcheck=1")


def test_rank_inversion_throws(lockcheck: None) -> None:
    async def main() -> str:
        s = _tls.cur
        assert s is not None
        p = s.allp[0]
        with p.lock:
            try:
                with s.lock:  # sched.lock ranks below p.lock: an inversion
                    pass
            except Throw as e:
                return str(e)
        return "no error"

    assert "lock order: taking sched.lock" in mn.run(main, procs=1)


def test_caller_holds_precondition_throws(lockcheck: None) -> None:
    async def main() -> str:
        s = _tls.cur
        assert s is not None
        try:
            idle.pidleget(s)  # its docstring: "sched.lock held"
        except Throw as e:
            return str(e)
        return "no error"

    assert (
        mn.run(main, procs=1)
        == "fatal error: pidleget: called without sched.lock held (mn_runtime internal error; please report it)"
    )


def test_lockcheck_counts_acquisitions(lockcheck: None) -> None:
    async def main() -> dict[str, tuple[int, int]]:
        c: mn.Chan[int] = mn.Chan(1)
        _lock.lock_stats(reset=True)
        for i in range(100):
            await c.send(i)
            await c.recv()
        return _lock.lock_stats()

    _lock.count_locks(True)
    try:
        counts = mn.run(main, procs=1)
    finally:
        _lock.count_locks(False)
    assert counts["chan.lock"][0] == 200


@pytest.mark.parametrize("procs", [2, 4])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenarios_pass_lock_checking(lockcheck: None, name: str, procs: int) -> None:
    r = run_scenario(SCENARIOS[name], 0.3, procs, seed=11, chaos=False, out=None)
    assert r.ok, format_result(r)
