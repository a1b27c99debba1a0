"""gil: which CPython this is, as far as the scheduler cares (PEP 703).

On a build with the GIL, two Ms never run Python at the same time: a second P adds GIL hand-offs,
not parallelism, and only blocking calls given to `syscall` (which release the GIL) run in
parallel. On a free-threaded build (`python3.14t`, `Py_GIL_DISABLED`), every M with a P runs its
goroutines' Python in parallel. The GIL can still come back on a free-threaded build: an extension
module that does not declare free-threading support re-enables it when it is imported (CPython
warns then), and `PYTHON_GIL=1` or `-X gil=1` turn it on from the start. So the question "does
the GIL serialise my goroutines" is asked at run time, each time run() starts, not at import.

The default number of Ps follows the answer (docs/benchmarks.md, "Defaults", has the figures):
one P where the GIL is enabled, one P per CPU this process may run on where it is not.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import warnings

from . import lock as _lock

__all__ = ["default_procs", "free_threaded_build", "gil_enabled", "warn_if_gil_reenabled"]


def free_threaded_build() -> bool:
    """free_threaded_build: was this interpreter built without the GIL (PEP 703)?"""
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def gil_enabled() -> bool:
    """gil_enabled: is the GIL enabled now? Always True on a build with the GIL."""
    probe = getattr(sys, "_is_gil_enabled", None)
    return True if probe is None else bool(probe())


def ncpu() -> int:
    """ncpu: the CPUs this process may run on (its affinity mask), else os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_procs() -> int:
    """default_procs: procs for run() when neither procs= nor $MN_PROCS says: 1 with the GIL
    (measured best for Python-bound and I/O-bound work there), the CPU count without it."""
    return 1 if gil_enabled() else ncpu()


# _warned: run() warns about a re-enabled GIL once per process. Only run() reads and writes it,
# and run() refuses to start a second runtime while one runs, but two threads may call run() at
# the same moment (one of them then fails), so the test-and-set is under a lock.
_warnlock = _lock.plain("gil.warnlock")
_warned = False


def warn_if_gil_reenabled() -> bool:
    """warn_if_gil_reenabled warns once per process when this is a free-threaded build whose GIL
    is enabled (an extension module re-enabled it at import, or PYTHON_GIL=1): goroutines will
    not run in parallel. Returns whether it warned now."""
    global _warned
    if not free_threaded_build() or not gil_enabled():
        return False
    with _warnlock:
        if _warned:
            return False
        _warned = True
    warnings.warn(
        "mn_runtime: this is a free-threaded Python, but the GIL is enabled (an extension module "
        "that does not support free threading re-enabled it at import, or PYTHON_GIL=1): goroutines "
        "will not run Python in parallel; run with PYTHON_GIL=0 to force it off, or find the module "
        "in CPython's earlier RuntimeWarning",
        RuntimeWarning,
        stacklevel=3,
    )
    return True
