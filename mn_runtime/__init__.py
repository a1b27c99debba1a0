"""mn_runtime: a Go-like M:N runtime for Python coroutines.

import mn_runtime as mn

async def main():
    g = mn.go(worker, 1)
    return await g.join()

mn.run(main, procs=4)
"""

from __future__ import annotations

from . import context, net, trace
from .chan import Chan
from .debug import Stats, dump_goroutines, stats
from .errors import (
    Canceled,
    ChannelClosed,
    ClosedError,
    ContextDeadlineExceeded,
    DeadlineExceeded,
    Deadlock,
    IOTimeout,
)
from .future import aio, offload, wait_future
from .group import Group
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
from .select import Recv, Send, select
from .sync import Cond, Mutex, Once, RWMutex, Semaphore, WaitGroup
from .time import Ticker, Timer, VirtualClock, after, after_func, now, since, tick, until

# mn_runtime.time (everything about time) stays out of __all__: `from mn_runtime import *` must not
# shadow the standard library's time module.
__all__ = [
    "Canceled",
    "Chan",
    "ChannelClosed",
    "ClosedError",
    "Cond",
    "ContextDeadlineExceeded",
    "DeadlineExceeded",
    "Deadlock",
    "Goroutine",
    "Group",
    "IOTimeout",
    "Mutex",
    "Once",
    "RWMutex",
    "Recv",
    "Semaphore",
    "Send",
    "Stats",
    "Ticker",
    "Timer",
    "VirtualClock",
    "WaitGroup",
    "after",
    "after_func",
    "aio",
    "context",
    "current",
    "dump_goroutines",
    "go",
    "gomaxprocs",
    "gosched",
    "net",
    "now",
    "num_goroutine",
    "offload",
    "run",
    "select",
    "since",
    "sleep",
    "stats",
    "syscall",
    "tick",
    "trace",
    "until",
    "wait_future",
]

__version__ = "0.1.0"
