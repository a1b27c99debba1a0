"""The runtime's process pool (mn_runtime/procpool.py) through mn.offload: calls and replies framed
on a socket per worker, the worker's exceptions with their traceback, workers that die (running a
call, or idle) and their replacement, big frames, many goroutines sharing few workers, and run()
ending with calls running or waiting; every test checks that no process, thread or fd is left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import psutil
import pytest

import mn_runtime as mn
from mn_runtime import future as mnfuture
from mn_runtime.procpool import BrokenProcessPool, ProcPool, RemoteTraceback

from .rtutil import num_fds, runtime_threads

pytestmark = pytest.mark.concurrency

NWORKERS = 2


# Module-level functions: the pool's workers import them by name.
def square(x: int) -> int:
    return x * x


def getpid() -> int:
    return os.getpid()


def nap_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def raise_value_error(msg: str) -> None:
    raise ValueError(msg)


class Unpicklable(Exception):
    def __init__(self) -> None:
        super().__init__("cannot travel")
        self.lock = threading.Lock()


def raise_unpicklable() -> None:
    raise Unpicklable()


def exit_with(code: int) -> None:
    os._exit(code)


def nap_then_exit(seconds: float) -> None:
    time.sleep(seconds)
    os._exit(3)


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def echo_len(data: bytes) -> tuple[int, bytes]:
    return len(data), data[::-1]


def children() -> set[int]:
    return {c.pid for c in psutil.Process().children(recursive=True)}


@pytest.fixture(autouse=True)
def _two_workers(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Every test runs with a pool of NWORKERS, whatever the host's core count, and checks that
    run() left no process (of those made during the test), runtime thread or fd behind."""
    monkeypatch.setattr(mnfuture, "default_workers", lambda: NWORKERS)
    before, fds = children(), num_fds()
    yield
    left = children() - before
    assert not left, [psutil.Process(p).cmdline() for p in left]
    assert runtime_threads() == []
    assert num_fds() == fds


def test_results_exceptions_and_remote_traceback() -> None:
    async def main() -> None:
        assert [await mn.offload(square, i) for i in range(5)] == [0, 1, 4, 9, 16]
        assert await mn.offload(sorted, [3, 1, 2], reverse=True) == [3, 2, 1]
        with pytest.raises(ValueError, match="boom") as ei:
            await mn.offload(raise_value_error, "boom")
        cause = ei.value.__cause__
        assert isinstance(cause, RemoteTraceback)
        assert "raise_value_error" in str(cause) and "ValueError: boom" in str(cause)
        with pytest.raises(RuntimeError, match=r"Unpicklable: cannot travel \(the exception could not be pickled"):
            await mn.offload(raise_unpicklable)
        assert await mn.offload(square, 7) == 49  # the worker that raised goes on answering

    mn.run(main, procs=1)


def test_big_frames_cross_in_pieces() -> None:
    """A 3 MiB argument and result: both frames are many times the most one read asks for."""
    data = bytes(range(256)) * (3 * 4096)

    async def main() -> tuple[int, bytes]:
        r: tuple[int, bytes] = await mn.offload(echo_len, data)
        return r

    n, back = mn.run(main, procs=2)
    assert n == len(data) and back == data[::-1]


def pid_square_pad(x: int) -> tuple[int, int, bytes]:
    """pid_square_pad: replies of different sizes (up to 96 KiB), so that two replies queued on
    one worker's socket arrive in one read or split across reads."""
    return os.getpid(), x * x, b"p" * (x % 7 * 16384)


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_many_goroutines_share_the_workers(procs: int, switchinterval: float) -> None:
    """40 goroutines offload 3 calls each through 2 workers (each worker holds a running call and
    one queued behind it): every goroutine gets its own call's reply (checked call by call), and
    no more than 2 worker processes ever answer (workers start on demand and are reused)."""

    async def main() -> tuple[int, set[int]]:
        out: mn.Chan[tuple[int, int, int, int]] = mn.Chan(8)

        async def one(i: int) -> None:
            for k in range(3):
                v = 3 * i + k
                pid, sq, pad = await mn.offload(pid_square_pad, v)
                await out.send((v, sq, len(pad), pid))

        for i in range(40):
            mn.go(one, i)
        got = [await out.recv() for _ in range(120)]
        for v, sq, npad, _ in got:
            assert sq == v * v and npad == v % 7 * 16384, (v, sq, npad)
        return len({v for v, _, _, _ in got}), {pid for _, _, _, pid in got}

    n, pids = mn.run(main, procs=procs)
    assert n == 120
    assert 1 <= len(pids) <= NWORKERS and os.getpid() not in pids


@pytest.mark.parametrize("how", ["exit", "signal"])
def test_worker_dying_mid_call_fails_that_call_only(how: str) -> None:
    """A worker that dies running a call fails that call with BrokenProcessPool naming how it
    died; a call running on the other worker meanwhile returns, and a fresh worker takes later
    calls (the pool is not broken for good, unlike concurrent.futures' pool)."""

    async def main() -> tuple[int, int]:
        other = mn.go(mn.offload, nap_pid, 0.3)  # busy on the other worker while one dies
        await mn.sleep(0.05)
        fn, arg = (exit_with, (7,)) if how == "exit" else (kill_self, ())
        match = "exited with code 7" if how == "exit" else "was killed by signal 9"
        with pytest.raises(BrokenProcessPool, match=match + " while running the call"):
            await mn.offload(fn, *arg)
        before = await other.join()
        after = [await mn.offload(getpid) for _ in range(4)]
        assert all(isinstance(p, int) for p in after)
        return before, len(set(after) | {before})

    pid, npids = mn.run(main, procs=2)
    assert pid != os.getpid()
    assert npids <= NWORKERS  # the dead worker's slot went to one fresh worker


def test_goroutines_waiting_for_the_only_worker_get_a_fresh_one_when_it_dies(monkeypatch: pytest.MonkeyPatch) -> None:
    """One worker; its call kills it while 3 more goroutines wait for it (parked in the idle
    channel's receive). The dead worker's slot comes back empty and the first waiter starts a
    fresh worker in it: every waiter gets its answer, none waits forever."""
    monkeypatch.setattr(mnfuture, "default_workers", lambda: 1)

    async def main() -> list[int]:
        out: mn.Chan[int] = mn.Chan(3)

        async def later(i: int) -> None:
            await out.send(await mn.offload(square, i))

        async def dying() -> str:
            try:
                await mn.offload(nap_then_exit, 0.2)
            except BrokenProcessPool as e:
                return str(e)
            return "returned"

        d = mn.go(dying)
        await mn.sleep(0.05)
        for i in range(3):
            mn.go(later, i)
        assert "exited with code 3" in await d.join()
        return sorted([await out.recv() for _ in range(3)])

    assert mn.run(main, procs=2) == [0, 1, 4]


def test_idle_worker_killed_is_replaced_before_the_next_call() -> None:
    """A worker killed while idle (by the OOM killer, say) is found dead when the next call is
    written to it; that call never ran, so it goes to a fresh worker and succeeds."""

    async def main() -> tuple[int, int, int]:
        pid = await mn.offload(getpid)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while psutil.Process(pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            await mn.sleep(0.01)
        r = await mn.offload(square, 12)
        return pid, await mn.offload(getpid), r

    dead, pid, r = mn.run(main, procs=1)
    assert r == 144 and pid != dead


def test_run_end_waits_for_running_calls_and_abandons_waiting_ones() -> None:
    """main returns while 2 calls run (one per worker) and 4 more goroutines wait for a worker:
    run() returns once the running calls are done (their workers exit after them), the waiting
    goroutines are abandoned, and nothing is left behind (the fixture checks)."""
    started = time.monotonic()

    async def main() -> None:
        for _ in range(NWORKERS + 4):
            mn.go(mn.offload, nap_pid, 0.4)
        await mn.sleep(0.1)  # the first two calls are running

    mn.run(main, procs=2)
    assert time.monotonic() - started >= 0.4


def test_offload_after_run_end_began_is_refused() -> None:
    """A call that starts once stop() ran raises BrokenProcessPool rather than hanging."""

    async def main() -> None:
        pool = ProcPool(1)
        pool.stop()
        with pytest.raises(BrokenProcessPool, match="shut down"):
            await pool.call(b"", square)
        pool.close()

    mn.run(main, procs=1)


def test_bad_pool_size() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        ProcPool(0)


def test_program_without_main_guard_gets_a_clear_error(tmp_path: Any) -> None:
    """A script that calls mn.run at import, without `if __name__ == "__main__":`: each spawned
    worker re-runs it, and multiprocessing stops the worker at start-up. The call fails with
    BrokenProcessPool pointing at the guard, and the program ends (no hang, no process left)."""
    script = tmp_path / "noguard.py"
    script.write_text(
        "import mn_runtime as mn\n"
        "from concurrent.futures.process import BrokenProcessPool\n"
        "def square(x):\n"
        "    return x * x\n"
        "async def main():\n"
        "    try:\n"
        "        await mn.offload(square, 3)\n"
        "    except BrokenProcessPool as e:\n"
        "        print('BROKEN', e)\n"
        "mn.run(main)\n"
    )
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "BROKEN" in r.stdout and "if __name__ == '__main__':" in r.stdout, r.stdout
