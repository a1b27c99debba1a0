"""A forgotten `await` of a generator-based operation (ch.send(), ch.recv(), ch.recv_ok(),
mn.sleep(), mn.gosched(), mn.syscall()) is reported at its call site under MN_DEBUG=awaitcheck=1
and python -X dev (mn_runtime/_rt/awaitcheck.py), and costs nothing otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

import mn_runtime as mn
from mn_runtime._rt import awaitcheck

OPS = ("Chan.send()", "Chan.recv()", "Chan.recv_ok()", "mn.sleep()", "mn.gosched()", "mn.syscall()")


async def _forgetful() -> list[int]:
    ch: mn.Chan[int] = mn.Chan(4)
    ch.send(1)  # forgotten: Chan.send()
    ch.recv()  # forgotten: Chan.recv()
    ch.recv_ok()  # forgotten: Chan.recv_ok()
    mn.sleep(0.001)  # forgotten: mn.sleep()
    mn.gosched()  # forgotten: mn.gosched()
    mn.syscall(time.sleep, 0)  # forgotten: mn.syscall()
    await ch.send(2)  # the awaited ones work as ever, with the check on or off
    g = mn.go(ch.send, 3)  # go() runs an operation itself: not a forgotten await
    await g.join()
    await mn.sleep(0)
    await mn.gosched()
    await mn.syscall(time.sleep, 0)
    got = [await ch.recv()]
    v, ok = await ch.recv_ok()
    return [*got, v] if ok else got


def _expected_lines() -> dict[str, int]:
    src = Path(__file__).read_text().splitlines()
    return {what: i + 1 for i, line in enumerate(src) for what in OPS if line.endswith(f"# forgotten: {what}")}


@pytest.mark.parametrize("nprocs", [1, 2])
def test_forgotten_await_warns_at_the_call_site(monkeypatch: pytest.MonkeyPatch, nprocs: int) -> None:
    monkeypatch.setenv("MN_DEBUG", "awaitcheck=1,sigdump=0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert mn.run(_forgetful, procs=nprocs) == [2, 3]
    got = {
        str(w.message).split(" was never awaited")[0]: w.lineno
        for w in caught
        if issubclass(w.category, RuntimeWarning) and "never awaited" in str(w.message)
    }
    assert got == _expected_lines(), got
    assert all(w.filename == __file__ for w in caught if "never awaited" in str(w.message))
    # Off again once run() returned: Chan's methods are the originals.
    assert not awaitcheck.enabled and not hasattr(mn.Chan.send, "__wrapped__")


def test_no_check_and_no_wrapper_by_default() -> None:
    """Off (the default), the operations are the plain generator-based coroutines: nothing to pay."""

    async def main() -> tuple[str, str]:
        ch: mn.Chan[int] = mn.Chan(1)
        op = ch.send(1)
        kind = type(op).__name__
        await op
        return kind, type(mn.gosched()).__name__

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kinds = mn.run(main, procs=1)
    assert kinds == ("generator", "generator")
    assert not [w for w in caught if "never awaited" in str(w.message)]


def test_dev_mode_turns_the_check_on(tmp_path: Path) -> None:
    prog = tmp_path / "prog.py"
    prog.write_text(
        "import mn_runtime as mn\n"
        "async def main():\n"
        "    ch = mn.Chan(1)\n"
        "    ch.send(1)\n"
        "    print('done', flush=True)\n"
        "mn.run(main, procs=1)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MN_DEBUG"}
    dev = subprocess.run([sys.executable, "-X", "dev", str(prog)], capture_output=True, text=True, env=env, timeout=60)
    assert dev.returncode == 0 and dev.stdout == "done\n", dev.stderr
    assert f"{prog}:4: RuntimeWarning: Chan.send() was never awaited; write `await ch.send(...)`" in dev.stderr
    plain = subprocess.run([sys.executable, str(prog)], capture_output=True, text=True, env=env, timeout=60)
    assert plain.returncode == 0 and "never awaited" not in plain.stderr
