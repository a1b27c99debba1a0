"""mn_runtime: a Go-like M:N runtime for Python coroutines.

import mn_runtime as mn

async def main():
    g = mn.go(worker, 1)
    return await g.join()

mn.run(main, procs=4)
"""

from __future__ import annotations

from .debug import dump_goroutines, stats
from .errors import ChannelClosed, Deadlock
from .runtime import (
    Goroutine,
    current,
    go,
    gomaxprocs,
    gosched,
    num_goroutine,
    run,
    sleep,
    syscall,
)

__all__ = [
    "ChannelClosed",
    "Deadlock",
    "Goroutine",
    "current",
    "dump_goroutines",
    "go",
    "gomaxprocs",
    "gosched",
    "num_goroutine",
    "run",
    "sleep",
    "stats",
    "syscall",
]

__version__ = "0.1.0"
