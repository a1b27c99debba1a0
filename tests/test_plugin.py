"""The pytest plugin (mn_runtime.pytest_plugin): the marker, procs parametrization, chaos seeds and
their replay command, leftover goroutines, deadlocks, timeouts with the dump, pytest-timeout, and
the fixtures. Most tests run an inner pytest with the `pytester` fixture; the last few are the
project's own runtime tests written with the marker."""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import mn_runtime as mn

pytest_plugins = ["pytester"]

INSTALLED = any(e.name == "mn_runtime" for e in entry_points(group="pytest11"))
# Where the package is installed without its entry point (a plain checkout on sys.path), load the
# plugin by module name; where the entry point exists it loads itself, as it will for users.
PLUGIN = [] if INSTALLED else ["-p", "mn_runtime.pytest_plugin"]

RACY = """
import pytest
import mn_runtime as mn

@pytest.mark.mn(procs=1, chaos_seeds=SEEDS)
async def test_booking():
    free = [10]
    log = mn.Chan(6)

    async def book():
        if free[0] >= 2:           # check
            await log.send(2)      # an await between check and act
            free[0] -= 2           # act

    gs = [mn.go(book) for _ in range(6)]
    for g in gs:
        await g.join()
    assert free[0] >= 0, f"overbooked: {free[0]}"
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*PLUGIN, "-p", "no:cacheprovider", *args)


def test_entry_point_is_declared() -> None:
    text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert '[project.entry-points.pytest11]\nmn_runtime = "mn_runtime.pytest_plugin"' in text


def test_procs_parametrize_and_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import mn_runtime as mn

        @pytest.mark.mn(procs=[1, 2, 4])
        async def test_ps(mn_procs):
            assert mn.gomaxprocs() == mn_procs
            ch = mn.Chan()
            mn.go(ch.send, mn_procs)
            assert await ch.recv() == mn_procs

        @pytest.mark.mn(procs=2)
        async def test_one(tmp_path, mn_procs):
            assert mn_procs == 2 and tmp_path.exists()

        @pytest.mark.mn(procs=[1, 3])
        def test_sync_with_mn_run(mn_run, mn_procs):
            async def main():
                return mn.gomaxprocs()
            assert mn_run(main) == mn_procs

        def test_plain():
            assert True
        """
    )
    r = run(pytester, "-v")
    r.assert_outcomes(passed=7)
    out = r.stdout.str()
    for ident in ("test_ps[procs=1]", "test_ps[procs=2]", "test_ps[procs=4]", "test_one[procs=2]"):
        assert ident in out
    assert "test_sync_with_mn_run[procs=3] PASSED" in out


def test_mn_procs_option_and_marker_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import mn_runtime as mn

        @pytest.mark.mn
        async def test_default(mn_procs):
            assert mn.gomaxprocs() == mn_procs
        """
    )
    r = run(pytester, "-v", "--mn-procs", "1,2")
    r.assert_outcomes(passed=2)
    assert "test_default[procs=2] PASSED" in r.stdout.str()
    r = run(pytester, "--mn-procs", "0")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    assert "each procs value must be an int >= 1" in r.stderr.str()


def test_bad_marker_is_a_collection_error_not_a_session_abort(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a="""
        import pytest

        @pytest.mark.mn(procs=[1, 0])
        async def test_zero_procs():
            pass
        """,
        test_b="""
        import pytest

        @pytest.mark.mn(chaos_seeds=-1, timeout="soon")
        async def test_bad_seeds():
            pass

        @pytest.mark.mn(procs=1)
        async def test_fine():
            pass
        """,
        test_c="""
        import pytest

        @pytest.mark.mn(procs=1)
        async def test_fine():
            pass
        """,
    )
    r = run(pytester, "--continue-on-collection-errors")
    r.assert_outcomes(passed=1, errors=2)  # test_c runs; test_a and test_b are collection errors
    err = r.stdout.str()
    assert "test_zero_procs: procs: each procs value must be an int >= 1, got 0" in err
    assert "chaos_seeds must be a non-negative int, got -1" in err


def test_goroutine_exception_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import mn_runtime as mn

        async def worker():
            raise KeyError("lost in a goroutine")

        @pytest.mark.mn(procs=2)
        async def test_it():
            g = mn.go(worker)
            await g.join()
        """
    )
    r = run(pytester)
    r.assert_outcomes(failed=1)
    assert "KeyError: 'lost in a goroutine'" in r.stdout.str()


def test_chaos_seeds_find_the_race_and_the_replay_fails_again(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_racy=RACY.replace("SEEDS", "12"))
    r = run(pytester)
    r.assert_outcomes(failed=1)
    out = r.stdout.str()
    m = re.search(
        r"failed under chaos seed (\d+) at procs=1; replay: python -m pytest '([^']+)' --mn-chaos-seed (\d+)", out
    )
    assert m, out
    seed, nodeid = int(m.group(1)), m.group(2)
    assert int(m.group(3)) == seed
    assert "overbooked" in out
    assert "mn_runtime chaos seed" in out  # the report's own section
    # The replay command: the same test under that one seed fails the same way, twice.
    for _ in range(2):
        again = run(pytester, nodeid, "--mn-chaos-seed", str(seed))
        again.assert_outcomes(failed=1)
        assert f"failed under chaos seed {seed} at procs=1" in again.stdout.str()
        assert "overbooked" in again.stdout.str()


def test_fixed_program_passes_every_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import mn_runtime as mn

        SEEN = []

        @pytest.mark.mn(procs=[1, 2])
        async def test_booking(mn_procs):
            free = [10]
            log = mn.Chan(6)
            mu = mn.Mutex()

            async def book():
                async with mu:
                    if free[0] >= 2:
                        await log.send(2)
                        free[0] -= 2

            gs = [mn.go(book) for _ in range(6)]
            for g in gs:
                await g.join()
            assert free[0] == 0
            SEEN.append(mn_procs)

        def test_count():
            assert SEEN == [1] * 15 + [2] * 15
        """
    )
    r = run(pytester, "--mn-chaos-seeds", "15", "--mn-seed-start", "100")
    r.assert_outcomes(passed=3)


def test_leftover_goroutines_fail_with_their_dump(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import mn_runtime as mn

        async def waiter(ch):
            await ch.recv()

        @pytest.mark.mn(procs=1, leak_timeout=0.2)
        async def test_leaks():
            mn.go(waiter, mn.Chan())

        @pytest.mark.mn(procs=1, leak_check=False)
        async def test_leaks_allowed():
            mn.go(waiter, mn.Chan())

        @pytest.mark.mn(procs=2, leak_timeout=15)
        async def test_finishing_goroutines_are_waited_for():
            async def slow():
                await mn.sleep(0.05)
            mn.go(slow)
        """
    )
    r = run(pytester)
    r.assert_outcomes(failed=1, passed=2)
    out = r.stdout.str()
    assert "LeakedGoroutines: the test returned and left 1 goroutine(s) behind" in out
    assert "[chan receive" in out and "waiter" in out
    assert re.search(r"test_leftover_goroutines_fail_with_their_dump\.py:9", out), out  # where it was created


def test_deadlock_fails_with_the_dump(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import mn_runtime as mn

        @pytest.mark.mn(procs=2)
        async def test_stuck():
            a, b = mn.Chan(), mn.Chan()
            async def other():
                await b.recv()
                await a.send(1)
            mn.go(other)
            await a.recv()
        """
    )
    r = run(pytester)
    r.assert_outcomes(failed=1)
    out = r.stdout.str()
    assert "Deadlock: all goroutines are asleep - deadlock!" in out
    assert "goroutine 1 [chan receive" in out and "test_stuck" in out and "other" in out


def test_timeout_fails_with_the_dump_before_pytest_timeout(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import mn_runtime as mn

        async def waiter(ch):
            await ch.recv()

        @pytest.mark.mn(procs=1, timeout=0.5)
        async def test_own_timeout():
            mn.go(waiter, mn.Chan())
            await mn.sleep(60)

        @pytest.mark.timeout(5)
        @pytest.mark.mn(procs=2)
        async def test_pytest_timeout():
            mn.go(waiter, mn.Chan())
            await mn.sleep(60)
        """
    )
    r = run(pytester)
    r.assert_outcomes(failed=2)
    out = r.stdout.str()
    assert "test_own_timeout[procs=1] ran past its timeout of 0.5s" in out
    assert re.search(r"test_pytest_timeout\[procs=2\] ran past its timeout of [23]\.?\d*s", out), out
    assert "from pytest-timeout" not in out
    assert out.count("[chan receive") >= 2 and out.count("[sleep") >= 2


def test_run_keywords_pass_through(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import mn_runtime as mn

        async def hop():
            await mn.gosched()

        @pytest.mark.mn(procs=1, runqsize=4, trace="t.json")
        async def test_small_ring():
            gs = [mn.go(hop) for _ in range(20)]
            for g in gs:
                await g.join()

        @pytest.mark.mn(procs=1, no_such_option=1)
        async def test_bad():
            pass
        """
    )
    r = run(pytester)
    r.assert_outcomes(passed=1, failed=1)
    assert "run() got an unexpected keyword argument 'no_such_option'" in r.stdout.str()
    assert '"traceEvents"' in (pytester.path / "t.json").read_text()


# --- the project's own tests, written with the marker (they need the plugin loaded) ---

needs_plugin = pytest.mark.skipif(not INSTALLED, reason="the pytest11 entry point is not installed: pip install -e .")


@needs_plugin
@pytest.mark.mn(procs=[1, 2, 4], chaos_seeds=3)
async def test_unbuffered_pipeline_delivers_in_order(mn_procs: int) -> None:
    ch: mn.Chan = mn.Chan()

    async def produce() -> None:
        for i in range(200):
            await ch.send(i)
        ch.close()

    mn.go(produce)
    got = [v async for v in ch]
    assert got == list(range(200))


@needs_plugin
@pytest.mark.mn(procs=[1, 2, 4], chaos_seeds=3)
async def test_mutex_counter_is_exact(mn_procs: int) -> None:
    mu = mn.Mutex()
    wg = mn.WaitGroup()
    box = [0]

    async def inc() -> None:
        for _ in range(50):
            async with mu:
                v = box[0]
                await mn.gosched()
                box[0] = v + 1
        wg.done()

    wg.add(8)
    for _ in range(8):
        mn.go(inc)
    await wg.wait()
    assert box[0] == 400
