"""The stress runner: every scenario passes a short run with its invariants checked, leaks are
accounted, and a violated invariant makes the runner exit 1 with the reproducing seed."""

from __future__ import annotations

import io
import types

import pytest

import mn_runtime as mn
from stress import __main__ as cli
from stress.report import Ctx, format_result, run_scenario
from stress.scenarios import SCENARIOS

# Scenarios whose short run fits a unit test (the netpoll and soak ones open sockets by the
# hundred and run in .ci/run's stress pass instead).
QUICK = ["spawn", "chan", "select", "steal", "timer", "syscall", "mutex"]


def test_list_names_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in ("spawn", "chan", "select", "steal", "timer", "syscall", "netpoll", "mutex", "soak"):
        assert name in out


@pytest.mark.concurrency
@pytest.mark.parametrize("name", QUICK)
def test_scenario_short_run_keeps_invariants(name: str, procs: int) -> None:
    r = run_scenario(SCENARIOS[name], 0.3, procs, seed=7, chaos=False, out=None)
    assert r.ok, format_result(r)
    assert r.ops > 0 and r.checks > 0
    # The peaks include a sample taken inside the run (report._wrapper), when the process has the
    # threads it had before, plus the monitor, the poller, sysmon and an M per P (Ms start as work
    # is queued, and every quick scenario keeps more Gs runnable than there are Ps); the poller's
    # epoll and eventfd are open.
    assert r.peak_threads >= r.threads_start + 3 + procs, format_result(r)
    assert r.peak_fds >= r.fds_start + 2, format_result(r)
    # RSS in bytes: an interpreter with mn_runtime loaded, which a 0.3 s run grows by megabytes.
    assert r.rss_start >= 16 << 20, r.rss_start
    assert r.peak_rss <= r.rss_start + (256 << 20), format_result(r)


@pytest.mark.parametrize("name", ["select", "mutex", "timer"])
def test_scenario_under_chaos_replay(name: str) -> None:
    r = run_scenario(SCENARIOS[name], 0.3, 1, seed=5, chaos=True, out=None)
    assert r.ok, format_result(r)


def _broken() -> types.ModuleType:
    mod = types.ModuleType("broken")

    async def forever() -> None:
        await mn.sleep(30)

    async def main(ctx: Ctx) -> None:
        mn.go(forever)  # a goroutine left behind: the runner must notice
        ctx.check(1 + 1 == 3, "arithmetic is broken")

    mod.NAME = "broken"  # type: ignore[attr-defined]
    mod.DOC = "always fails"  # type: ignore[attr-defined]
    mod.main = main  # type: ignore[attr-defined]
    return mod


def test_violation_exits_1_with_seed(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(SCENARIOS, "broken", _broken())
    assert cli.main(["--scenario", "broken", "--seconds", "0.2", "--procs", "2", "--seed", "4242"]) == 1
    out = capsys.readouterr().out
    assert "arithmetic is broken" in out
    assert "1 goroutines still exist" in out
    assert "python -m stress --scenario broken --seconds 0.2 --procs 2 --seed 4242" in out


def test_progress_line_and_leak_checks() -> None:
    buf = io.StringIO()
    r = run_scenario(SCENARIOS["spawn"], 1.2, 2, seed=1, chaos=False, out=buf)
    assert r.ok, format_result(r)
    assert "[spawn]" in buf.getvalue() and "rss=" in buf.getvalue()
    assert r.checks >= 3  # the scenario's own, plus goroutines, threads and fds after run()


@pytest.mark.parametrize("bad", [["--scenario", "nope"], ["--seconds", "0"], ["--procs", "0"]])
def test_bad_arguments(bad: list[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(bad)
    assert e.value.code == 2
