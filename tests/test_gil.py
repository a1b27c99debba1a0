"""The GIL, as the runtime sees it: the default procs, the re-enabled-GIL warning, the reports."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import mn_runtime as mn
from mn_runtime._rt import gil


def test_default_procs_follows_the_gil(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MN_PROCS", raising=False)

    async def main() -> int:
        return mn.gomaxprocs()

    expected = 1 if gil.gil_enabled() else gil.ncpu()
    assert mn.run(main) == expected
    monkeypatch.setenv("MN_PROCS", "3")
    assert mn.run(main) == 3
    assert mn.run(main, procs=2) == 2


def test_build_and_gil_agree_with_sys() -> None:
    if not hasattr(sys, "_is_gil_enabled"):
        assert gil.gil_enabled() and not gil.free_threaded_build()
    else:
        assert gil.gil_enabled() == sys._is_gil_enabled()
    if not gil.free_threaded_build():
        assert gil.gil_enabled()


_PROG = textwrap.dedent(
    """
    import warnings
    import mn_runtime as mn

    async def main():
        return mn.stats()["gil_enabled"]

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        a = mn.run(main, procs=2)
        b = mn.run(main, procs=2)
    print(a, b, sum("GIL is enabled" in str(x.message) for x in w))
    """
)


def _run_prog(gilvar: str) -> str:
    env = dict(os.environ, PYTHON_GIL=gilvar)
    out = subprocess.run([sys.executable, "-c", _PROG], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(not gil.free_threaded_build(), reason="needs a free-threaded CPython (PYTHON_GIL)")
def test_reenabled_gil_warns_once() -> None:
    """PYTHON_GIL=1 stands in for an extension module re-enabling the GIL at import: run() warns
    once per process that goroutines will not run in parallel, and stats() says the GIL is on."""
    assert _run_prog("1") == "True True 1"
    assert _run_prog("0") == "False False 0"


def test_gil_build_does_not_warn() -> None:
    if gil.free_threaded_build():
        pytest.skip("a GIL build only")
    out = subprocess.run([sys.executable, "-c", _PROG], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True True 0"
